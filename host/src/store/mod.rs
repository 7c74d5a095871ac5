//! The local content-addressed blob store: pulled layers and configs, and
//! layers kiln builds, kept by digest and reused across builds.
//!
//! Safe for concurrent builds: a blob is written to a private temporary
//! file, verified against the digest and size it must have, then renamed
//! into place, so a reader only ever sees complete, verified blobs. All
//! access goes through a `cap_std::fs::Dir`.
//!
//! Layout: `<root>/blobs/sha256/<hex>` (the OCI layout's blob layout) and
//! `<root>/tmp/` for writes in progress.

use crate::image::{Digest, HashingWriter};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store directory could not be opened or created.
    #[error("cannot open the blob store at {}", path.display())]
    Open {
        /// The store root.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading or writing a blob failed.
    #[error("blob store I/O on {what}")]
    Io {
        /// The blob or file.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A blob's content does not match the digest it was fetched for.
    #[error("blob {expected} failed verification: content hashes to {actual}")]
    DigestMismatch {
        /// The digest it should have.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// A blob's size does not match its descriptor.
    #[error("blob {digest} failed verification: {actual} bytes, expected {expected}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// Size from the descriptor.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// The blob is not in the store.
    #[error("blob {0} is not in the store")]
    Missing(Digest),
}

/// A content-addressed blob store.
#[derive(Debug)]
pub struct BlobStore {
    root: Dir,
    path: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl BlobStore {
    /// Opens (creating if needed) the store at `path`.
    ///
    /// # Ambient Authority
    ///
    /// Opens `path` on the host filesystem; everything after goes through
    /// the opened directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        Dir::create_ambient_dir_all(path, ambient_authority()).map_err(open_err)?;
        let root = Dir::open_ambient_dir(path, ambient_authority()).map_err(open_err)?;
        root.create_dir_all("blobs/sha256").map_err(open_err)?;
        root.create_dir_all("tmp").map_err(open_err)?;
        Ok(Self {
            root,
            path: path.to_path_buf(),
        })
    }

    /// Where the store is, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn blob_path(digest: &Digest) -> String {
        format!("blobs/{}/{}", digest.algorithm(), digest.hex())
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.root.is_file(Self::blob_path(digest))
    }

    /// The blob's size, if present.
    pub fn size(&self, digest: &Digest) -> Result<u64, StoreError> {
        match self.root.metadata(Self::blob_path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::Missing(digest.clone()))
            }
            Err(source) => Err(StoreError::Io {
                what: digest.to_string(),
                source,
            }),
        }
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        self.root.open(Self::blob_path(digest)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::Missing(digest.clone())
            } else {
                StoreError::Io {
                    what: digest.to_string(),
                    source: e,
                }
            }
        })
    }

    /// Reads a whole (small) blob, such as a config or manifest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        self.root.read(Self::blob_path(digest)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::Missing(digest.clone())
            } else {
                StoreError::Io {
                    what: digest.to_string(),
                    source: e,
                }
            }
        })
    }

    /// Starts writing a blob; [`BlobWriter::commit`] verifies and publishes it.
    pub fn writer(&self) -> Result<BlobWriter<'_>, StoreError> {
        let name = format!(
            "tmp/{}-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed),
            std::thread::current()
                .name()
                .unwrap_or("t")
                .replace('/', "_")
        );
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        let file = self
            .root
            .open_with(&name, &opts)
            .map_err(|source| StoreError::Io {
                what: name.clone(),
                source,
            })?;
        Ok(BlobWriter {
            store: self,
            tmp: Some(name),
            out: Some(HashingWriter::new(io::BufWriter::with_capacity(
                1 << 20,
                file,
            ))),
        })
    }

    /// Stores `bytes` and returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(|source| StoreError::Io {
            what: "a new blob".into(),
            source,
        })?;
        Ok(w.commit(None, None)?.0)
    }
}

/// A blob being written: hashed as it goes, published on [`commit`](Self::commit),
/// removed if dropped uncommitted.
pub struct BlobWriter<'a> {
    store: &'a BlobStore,
    tmp: Option<String>,
    out: Option<HashingWriter<io::BufWriter<File>>>,
}

impl BlobWriter<'_> {
    /// Verifies the content against `expected` digest and size (when given)
    /// and moves it into place. Returns the digest and size.
    pub fn commit(
        mut self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64), StoreError> {
        let tmp = self.tmp.take().expect("a writer commits once");
        let out = self.out.take().expect("a writer commits once");
        let (buf, digest, size) = out.finish();
        let io_err = |source| StoreError::Io {
            what: tmp.clone(),
            source,
        };
        let file = buf.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
        drop(file);
        let fail = |e: StoreError| {
            let _ = self.store.root.remove_file(&tmp);
            Err(e)
        };
        if let Some(want) = expected
            && *want != digest
        {
            return fail(StoreError::DigestMismatch {
                expected: want.clone(),
                actual: digest,
            });
        }
        if let Some(want) = expected_size
            && want != size
        {
            return fail(StoreError::SizeMismatch {
                digest,
                expected: want,
                actual: size,
            });
        }
        let dest = BlobStore::blob_path(&digest);
        if let Err(source) = self.store.root.rename(&tmp, &self.store.root, &dest) {
            let _ = self.store.root.remove_file(&tmp);
            return Err(StoreError::Io { what: dest, source });
        }
        Ok((digest, size))
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.as_mut().expect("not yet committed").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().expect("not yet committed").flush()
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            drop(self.out.take());
            let _ = self.store.root.remove_file(tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(&dir.path().join("store")).unwrap();
        (dir, s)
    }

    #[test]
    fn put_read_and_verify() {
        let (_d, s) = store();
        let d = s.put(b"hello").unwrap();
        assert_eq!(d, Digest::sha256_of(b"hello"));
        assert!(s.contains(&d));
        assert_eq!(s.read_blob(&d).unwrap(), b"hello");
        assert_eq!(s.size(&d).unwrap(), 5);
    }

    #[test]
    fn mismatches_leave_nothing_behind() {
        let (_d, s) = store();
        let want = Digest::sha256_of(b"other");
        let mut w = s.writer().unwrap();
        w.write_all(b"hello").unwrap();
        assert!(matches!(
            w.commit(Some(&want), None),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!s.contains(&want));
        let mut w = s.writer().unwrap();
        w.write_all(b"hello").unwrap();
        assert!(matches!(
            w.commit(None, Some(4)),
            Err(StoreError::SizeMismatch { .. })
        ));
        assert!(!s.contains(&Digest::sha256_of(b"hello")));
        let mut w = s.writer().unwrap();
        w.write_all(b"dropped").unwrap();
        drop(w);
        assert_eq!(s.root.read_dir("tmp").unwrap().count(), 0);
    }
}

//! The layer writer: typed tar entries streamed through hashing and
//! compression into the blob store.

use super::SnapshotError;
pub use crate::image::manifest::MediaTypes;
use crate::image::media::Compression;
use crate::image::{Digest, HashingWriter};
use crate::store::{BlobStore, BlobWriter};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// How new layers are compressed, with the level.
///
/// Kaniko's `--compression gzip|zstd` and `--compression-level` map onto
/// [`LayerCompression::gzip`] and [`LayerCompression::zstd`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// A plain tar (OCI media types only).
    None,
    /// gzip (deflate) at `level` 0 (store) to 9.
    Gzip {
        /// 0..=9.
        level: u32,
    },
    /// zstd at `level` 1 to 22 (OCI media types only).
    Zstd {
        /// 1..=22.
        level: i32,
    },
}

impl LayerCompression {
    /// gzip's default level, Go's `gzip.DefaultCompression`.
    pub const GZIP_DEFAULT_LEVEL: u32 = 6;
    /// zstd's default level.
    pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

    /// gzip at a Kaniko `--compression-level`: a level of 0 or below
    /// (Kaniko's default is -1) picks the default level 6, as Kaniko only
    /// passes levels above 0 on; 1..=9 are used as given.
    pub fn gzip(kaniko_level: i32) -> Result<Self, SnapshotError> {
        if kaniko_level <= 0 {
            return Ok(Self::Gzip {
                level: Self::GZIP_DEFAULT_LEVEL,
            });
        }
        let level = kaniko_level.unsigned_abs();
        Self::Gzip { level }.validated()
    }

    /// zstd at a Kaniko `--compression-level`: 0 or below picks the default
    /// level 3; 1..=22 are used as given.
    pub fn zstd(kaniko_level: i32) -> Result<Self, SnapshotError> {
        if kaniko_level <= 0 {
            return Ok(Self::Zstd {
                level: Self::ZSTD_DEFAULT_LEVEL,
            });
        }
        Self::Zstd {
            level: kaniko_level,
        }
        .validated()
    }

    fn validated(self) -> Result<Self, SnapshotError> {
        match self {
            Self::Gzip { level } if level > 9 => Err(SnapshotError::CompressionLevel {
                algorithm: "gzip",
                level: level.into(),
                min: 0,
                max: 9,
            }),
            Self::Zstd { level } if !(1..=22).contains(&level) => {
                Err(SnapshotError::CompressionLevel {
                    algorithm: "zstd",
                    level: level.into(),
                    min: 1,
                    max: 22,
                })
            }
            _ => Ok(self),
        }
    }

    /// How blobs of this kind are compressed.
    pub fn compression(self) -> Compression {
        match self {
            Self::None => Compression::None,
            Self::Gzip { .. } => Compression::Gzip,
            Self::Zstd { .. } => Compression::Zstd,
        }
    }

    /// The layer media type for this compression in the `media` family;
    /// Docker's types have no zstd layer.
    pub fn media_type(self, media: MediaTypes) -> Result<&'static str, SnapshotError> {
        media
            .layer(self.compression())
            .ok_or(SnapshotError::NoDockerMediaType {
                compression: "zstd",
            })
    }
}

/// A written layer: what a manifest descriptor and the config's
/// `rootfs.diff_ids` need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Digest of the (compressed) blob, as stored.
    pub digest: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
    /// The layer media type.
    pub media_type: &'static str,
}

/// Metadata of one layer entry.
///
/// `mode` holds the permission bits with setuid, setgid and sticky
/// (`0o7777`); file type bits are ignored, the helper called gives the
/// type. `mtime` is in seconds since the Unix epoch. Extended attributes are
/// written as PAX `SCHILY.xattr.<name>` records in name order; the one that
/// matters most for images is `security.capability`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Extended attributes by name.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl EntryMeta {
    /// Metadata with the given mode, owned by root, mtime 0, no xattrs.
    pub fn with_mode(mode: u32) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }
}

/// Special files: FIFOs and device nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialFile {
    /// A named pipe.
    Fifo,
    /// A character device.
    Char {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    Block {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// The compressing stage of the chain.
enum Compressor<'s> {
    None(BlobWriter<'s>),
    Gzip(flate2::write::GzEncoder<BlobWriter<'s>>),
    Zstd(zstd::stream::write::Encoder<'static, BlobWriter<'s>>),
}

impl<'s> Compressor<'s> {
    fn finish(self) -> io::Result<BlobWriter<'s>> {
        match self {
            Self::None(w) => Ok(w),
            Self::Gzip(w) => w.finish(),
            Self::Zstd(w) => w.finish(),
        }
    }
}

impl Write for Compressor<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::None(w) => w.write(buf),
            Self::Gzip(w) => w.write(buf),
            Self::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::None(w) => w.flush(),
            Self::Gzip(w) => w.flush(),
            Self::Zstd(w) => w.flush(),
        }
    }
}

/// Writes one layer: typed entries in, a verified blob in the store out.
///
/// The tar stream passes through a [`HashingWriter`] (the diff_id), the
/// compressor and the store's [`BlobWriter`] (the blob digest and size); no
/// stage holds more than its buffer. Dropping the writer without
/// [`finish`](Self::finish) leaves nothing in the store.
///
/// After any error the writer is poisoned: the stream may hold a partial
/// entry, so later calls and `finish` fail with [`SnapshotError::Poisoned`].
pub struct LayerWriter<'s> {
    tar: tar::Builder<HashingWriter<Compressor<'s>>>,
    media_type: &'static str,
    mtime_clamp: Option<u64>,
    poisoned: bool,
    /// When the layer was started, for the log line that ends it.
    started: std::time::Instant,
}

impl<'s> LayerWriter<'s> {
    /// Starts a layer in `store`, compressed as `compression`, with the
    /// layer media type of the `media` family.
    ///
    /// Defaults: no mtime clamp (see [`clamp_mtime`](Self::clamp_mtime)).
    /// Docker media types with zstd or no compression are refused: Docker's
    /// schema 2 has no such layer types.
    pub fn new(
        store: &'s BlobStore,
        compression: LayerCompression,
        media: MediaTypes,
    ) -> Result<Self, SnapshotError> {
        let compression = compression.validated()?;
        let media_type = compression.media_type(media)?;
        let blob = store.writer().map_err(SnapshotError::Store)?;
        let compressor = match compression {
            LayerCompression::None => Compressor::None(blob),
            // No time and no OS in the gzip header (flate2's defaults, set
            // here so that equal tars always give equal blobs).
            LayerCompression::Gzip { level } => Compressor::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(blob, flate2::Compression::new(level)),
            ),
            LayerCompression::Zstd { level } => {
                Compressor::Zstd(zstd::stream::write::Encoder::new(blob, level).map_err(
                    |source| SnapshotError::Io {
                        path: "(zstd encoder)".into(),
                        source,
                    },
                )?)
            }
        };
        Ok(Self {
            tar: tar::Builder::new(HashingWriter::new(compressor)),
            media_type,
            mtime_clamp: None,
            poisoned: false,
            started: std::time::Instant::now(),
        })
    }

    /// Clamps every later entry's mtime to at most `epoch` seconds
    /// (`SOURCE_DATE_EPOCH` semantics: `mtime = min(mtime, epoch)`). An
    /// epoch of 0 sets every mtime to 0, as Kaniko's `--reproducible` does.
    pub fn clamp_mtime(&mut self, epoch: u64) -> &mut Self {
        self.mtime_clamp = Some(epoch);
        self
    }

    /// Adds a directory. Its name gets a trailing `/`.
    pub fn add_dir(
        &mut self,
        path: impl AsRef<Path>,
        meta: &EntryMeta,
    ) -> Result<(), SnapshotError> {
        let name = entry_name(path.as_ref(), true)?;
        self.entry(
            &name,
            tar::EntryType::Directory,
            meta,
            0,
            None,
            None,
            io::empty(),
        )
    }

    /// Adds a regular file of `size` bytes read from `content`. Reading
    /// stops at `size` bytes; fewer is an error (the file changed).
    pub fn add_file(
        &mut self,
        path: impl AsRef<Path>,
        meta: &EntryMeta,
        size: u64,
        content: impl Read,
    ) -> Result<(), SnapshotError> {
        let name = entry_name(path.as_ref(), false)?;
        self.entry(
            &name,
            tar::EntryType::Regular,
            meta,
            size,
            None,
            None,
            content,
        )
    }

    /// Adds a symbolic link to `target`, kept byte for byte (it may be
    /// absolute or contain `..`: it is resolved when the image runs, never
    /// here).
    pub fn add_symlink(
        &mut self,
        path: impl AsRef<Path>,
        meta: &EntryMeta,
        target: impl AsRef<Path>,
    ) -> Result<(), SnapshotError> {
        let name = entry_name(path.as_ref(), false)?;
        let target = target.as_ref().as_os_str().as_bytes();
        if target.is_empty() || target.contains(&0) {
            return Err(invalid(
                &name,
                "a symlink target must be non-empty without NUL",
            ));
        }
        self.entry(
            &name,
            tar::EntryType::Symlink,
            meta,
            0,
            Some(target),
            None,
            io::empty(),
        )
    }

    /// Adds a hard link to `target`, an entry earlier in this layer (or in
    /// a lower one), named the way [`add_file`](Self::add_file) names it.
    pub fn add_hardlink(
        &mut self,
        path: impl AsRef<Path>,
        meta: &EntryMeta,
        target: impl AsRef<Path>,
    ) -> Result<(), SnapshotError> {
        let name = entry_name(path.as_ref(), false)?;
        let target = entry_name(target.as_ref(), false)?;
        self.entry(
            &name,
            tar::EntryType::Link,
            meta,
            0,
            Some(&target),
            None,
            io::empty(),
        )
    }

    /// Adds a FIFO or a device node.
    pub fn add_special(
        &mut self,
        path: impl AsRef<Path>,
        meta: &EntryMeta,
        kind: SpecialFile,
    ) -> Result<(), SnapshotError> {
        let name = entry_name(path.as_ref(), false)?;
        let (ty, dev) = match kind {
            SpecialFile::Fifo => (tar::EntryType::Fifo, None),
            SpecialFile::Char { major, minor } => (tar::EntryType::Char, Some((major, minor))),
            SpecialFile::Block { major, minor } => (tar::EntryType::Block, Some((major, minor))),
        };
        self.entry(&name, ty, meta, 0, None, dev, io::empty())
    }

    /// Adds a whiteout for `path`: an empty file `.wh.<name>` beside it
    /// that deletes `path` (and everything under it) from lower layers.
    /// Mode 0, owned by root, mtime 0, as Kaniko writes them.
    pub fn add_whiteout(&mut self, path: impl AsRef<Path>) -> Result<(), SnapshotError> {
        let name = entry_name(path.as_ref(), false)?;
        let (dir, base) = match name.iter().rposition(|&b| b == b'/') {
            Some(i) => (&name[..=i], &name[i + 1..]),
            None => (&name[..0], &name[..]),
        };
        if base.starts_with(b".wh.") {
            return Err(invalid(&name, "a whiteout cannot whiteout a whiteout name"));
        }
        let mut wh = dir.to_vec();
        wh.extend_from_slice(b".wh.");
        wh.extend_from_slice(base);
        self.entry(
            &wh,
            tar::EntryType::Regular,
            &EntryMeta::default(),
            0,
            None,
            None,
            io::empty(),
        )
    }

    /// Adds an opaque whiteout for directory `dir`: `dir/.wh..wh..opq`,
    /// which hides everything lower layers hold under `dir`.
    pub fn add_opaque_whiteout(&mut self, dir: impl AsRef<Path>) -> Result<(), SnapshotError> {
        let mut name = entry_name(dir.as_ref(), true)?;
        name.extend_from_slice(b".wh..wh..opq");
        self.entry(
            &name,
            tar::EntryType::Regular,
            &EntryMeta::default(),
            0,
            None,
            None,
            io::empty(),
        )
    }

    /// Ends the tar stream, finishes compression and commits the blob.
    pub fn finish(self) -> Result<Layer, SnapshotError> {
        if self.poisoned {
            return Err(SnapshotError::Poisoned);
        }
        let io_err = |source| SnapshotError::Io {
            path: "(end of layer)".into(),
            source,
        };
        let hashing = self.tar.into_inner().map_err(io_err)?;
        let (compressor, diff_id, uncompressed_size) = hashing.finish();
        let blob = compressor.finish().map_err(io_err)?;
        let (digest, size) = blob.commit(None, None).map_err(SnapshotError::Store)?;
        tracing::debug!(
            %digest,
            %diff_id,
            size,
            uncompressed_size,
            elapsed_us = self.started.elapsed().as_micros(),
            "layer written"
        );
        Ok(Layer {
            digest,
            diff_id,
            size,
            uncompressed_size,
            media_type: self.media_type,
        })
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one private funnel for every entry kind"
    )]
    fn entry(
        &mut self,
        name: &[u8],
        ty: tar::EntryType,
        meta: &EntryMeta,
        size: u64,
        link: Option<&[u8]>,
        dev: Option<(u32, u32)>,
        content: impl Read,
    ) -> Result<(), SnapshotError> {
        if self.poisoned {
            return Err(SnapshotError::Poisoned);
        }
        let mtime = match self.mtime_clamp {
            Some(epoch) => meta.mtime.min(epoch),
            None => meta.mtime,
        };
        let (header, pax) = header_for(name, ty, meta, mtime, size, link, dev)?;
        // Nothing is written yet; from here on the writer is poisoned until
        // the entry is complete.
        self.poisoned = true;
        let io_err = |source| SnapshotError::Io {
            path: lossy(name),
            source,
        };
        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut xh = tar::Header::new_ustar();
            set_bytes(
                &mut xh.as_ustar_mut().expect("ustar").name,
                b"././@PaxHeader",
            );
            xh.set_mode(0o644);
            xh.set_uid(0);
            xh.set_gid(0);
            xh.set_mtime(0);
            xh.set_size(records.len() as u64);
            xh.set_entry_type(tar::EntryType::XHeader);
            xh.set_cksum();
            self.tar.append(&xh, &records[..]).map_err(io_err)?;
        }
        let mut exact = ExactReader {
            inner: content.take(size),
            read: 0,
        };
        self.tar.append(&header, &mut exact).map_err(io_err)?;
        if exact.read != size {
            return Err(SnapshotError::ShortFile {
                path: lossy(name),
                expected: size,
                actual: exact.read,
            });
        }
        self.poisoned = false;
        Ok(())
    }
}

/// Counts what was read, so a short file is caught (the tar crate pads
/// whatever it gets, which would shift every later header).
struct ExactReader<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Largest value of an 8-byte octal header field (7 digits).
const MAX_OCTAL_8: u64 = 0o7777777;
/// Largest value of a 12-byte octal header field (11 digits).
const MAX_OCTAL_12: u64 = 0o77777777777;

/// The ustar header of an entry, and the PAX records for what the header
/// cannot hold (keys sorted, as Go's archive/tar writes them).
fn header_for(
    name: &[u8],
    ty: tar::EntryType,
    meta: &EntryMeta,
    mtime: u64,
    size: u64,
    link: Option<&[u8]>,
    dev: Option<(u32, u32)>,
) -> Result<(tar::Header, BTreeMap<String, Vec<u8>>), SnapshotError> {
    let mut pax = BTreeMap::new();
    let mut header = tar::Header::new_ustar();
    {
        let ustar = header.as_ustar_mut().expect("a ustar header");
        match split_ustar(name) {
            Some((prefix, base)) => {
                set_bytes(&mut ustar.prefix, prefix);
                set_bytes(&mut ustar.name, base);
            }
            None => {
                pax.insert("path".to_string(), name.to_vec());
                set_bytes(&mut ustar.name, &ascii_truncated(name, 100));
            }
        }
        if let Some(link) = link {
            if link.is_ascii() && link.len() <= 100 {
                set_bytes(&mut ustar.linkname, link);
            } else {
                pax.insert("linkpath".to_string(), link.to_vec());
                set_bytes(&mut ustar.linkname, &ascii_truncated(link, 100));
            }
        }
    }
    header.set_entry_type(ty);
    header.set_mode(meta.mode & 0o7777);
    let mut numeric = |key: &str, value: u64, max: u64| {
        if value > max {
            pax.insert(key.to_string(), value.to_string().into_bytes());
            0
        } else {
            value
        }
    };
    let uid = numeric("uid", meta.uid, MAX_OCTAL_8);
    let gid = numeric("gid", meta.gid, MAX_OCTAL_8);
    let hsize = numeric("size", size, MAX_OCTAL_12);
    let hmtime = numeric("mtime", mtime, MAX_OCTAL_12);
    header.set_uid(uid);
    header.set_gid(gid);
    header.set_size(hsize);
    header.set_mtime(hmtime);
    let (major, minor) = dev.unwrap_or((0, 0));
    header
        .set_device_major(major)
        .and_then(|()| header.set_device_minor(minor))
        .map_err(|source| SnapshotError::Io {
            path: lossy(name),
            source,
        })?;
    for (key, value) in &meta.xattrs {
        if key.is_empty() || key.contains(['=', '\n', '\0']) {
            return Err(SnapshotError::InvalidXattr {
                path: lossy(name),
                name: key.clone(),
            });
        }
        pax.insert(format!("SCHILY.xattr.{key}"), value.clone());
    }
    header.set_cksum();
    Ok((header, pax))
}

/// Splits a name into ustar `prefix` and `name` fields, or `None` when it
/// needs a PAX `path` record (too long, or not ASCII: Go's archive/tar
/// keeps ustar fields ASCII, and so do we, for the same readers).
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= 100 {
        return Some((&name[..0], name));
    }
    // Split at a '/' so that the prefix fits 155 bytes and the rest 100;
    // a directory's trailing '/' stays with the name part.
    let search_end = name.len().saturating_sub(1).min(156);
    let i = name[..search_end].iter().rposition(|&b| b == b'/')?;
    let (prefix, rest) = (&name[..i], &name[i + 1..]);
    (!prefix.is_empty() && prefix.len() <= 155 && !rest.is_empty() && rest.len() <= 100)
        .then_some((prefix, rest))
}

/// A stand-in for a header field whose real value is in a PAX record.
fn ascii_truncated(bytes: &[u8], max: usize) -> Vec<u8> {
    bytes
        .iter()
        .take(max)
        .map(|&b| if b.is_ascii() && b != 0 { b } else { b'_' })
        .collect()
}

fn set_bytes(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    field[..value.len()].copy_from_slice(value);
}

/// PAX records: `"<len> <key>=<value>\n"`, `len` counting the whole record.
fn pax_records(pax: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in pax {
        let rest = key.len() + value.len() + 3;
        let mut len = rest + 1;
        while rest + len.to_string().len() != len {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// The entry name for `path`: relative (a leading `/` is dropped), `.`
/// and empty components dropped, `..` refused, directories ending in `/`.
fn entry_name(path: &Path, dir: bool) -> Result<Vec<u8>, SnapshotError> {
    let raw = path.as_os_str().as_bytes();
    if raw.contains(&0) {
        return Err(invalid(raw, "a path cannot contain NUL"));
    }
    let mut out = Vec::with_capacity(raw.len() + 1);
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(invalid(raw, "a path cannot contain `..`")),
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(part);
            }
        }
    }
    if out.is_empty() {
        return Err(invalid(raw, "the root has no entry of its own"));
    }
    if dir {
        out.push(b'/');
    }
    Ok(out)
}

fn invalid(path: &[u8], reason: &'static str) -> SnapshotError {
    SnapshotError::InvalidPath {
        path: lossy(path),
        reason,
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

//! Temporary files and directories beside a destination, renamed into
//! place once complete and flushed, removed if anything fails first.

use super::OutputError;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(super) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OutputError {
    let path = path.to_path_buf();
    move |source| OutputError::Io {
        action,
        path,
        source,
    }
}

/// `<dir>/<prefix><name><suffix>-<pid>-<n>`: unique per process and call.
fn sibling(dest: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let unique = format!(
        "{prefix}{name}{suffix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    dest.with_file_name(unique)
}

/// The directory a path is in (`.` for a bare name).
pub(super) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Flushes a directory's entries (a rename in it) to disk.
pub(super) fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

/// A file being written beside its destination.
pub(super) struct TempFile {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl TempFile {
    /// Creates `.<name>.tmp-<pid>-<n>` beside `dest` with `mode` (less the umask).
    pub(super) fn beside(dest: &Path, mode: u32) -> Result<Self, OutputError> {
        let path = sibling(dest, ".", ".tmp");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .map_err(io_err("create", &path))?;
        Ok(Self {
            path,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Where the temporary file is, for messages.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The writer.
    pub(super) fn writer(&mut self) -> &mut BufWriter<File> {
        self.out.as_mut().expect("not yet committed")
    }

    /// Flushes, syncs and renames the file over `dest`, then syncs the directory.
    pub(super) fn commit(mut self, dest: &Path) -> Result<(), OutputError> {
        let out = self.out.take().expect("commits once");
        let file = out.into_inner().map_err(|e| OutputError::Io {
            action: "write",
            path: self.path.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err("sync", &self.path))?;
        drop(file);
        fs::rename(&self.path, dest).map_err(io_err("rename into place", dest))?;
        // Renamed: nothing left to clean up.
        self.path = PathBuf::new();
        sync_dir(parent_of(dest))
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        drop(self.out.take());
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `dest` atomically.
pub(super) fn write_file(dest: &Path, mode: u32, bytes: &[u8]) -> Result<(), OutputError> {
    let mut tmp = TempFile::beside(dest, mode)?;
    let path = tmp.path().to_path_buf();
    tmp.write_all(bytes).map_err(io_err("write", &path))?;
    tmp.commit(dest)
}

/// A directory being built beside its destination, removed with
/// everything in it unless renamed into place.
pub(super) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<name>.tmp-<pid>-<n>` beside `dest`.
    pub(super) fn beside(dest: &Path) -> Result<Self, OutputError> {
        let path = sibling(dest, "", ".tmp");
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(io_err("create", &path))?;
        Ok(Self { path })
    }

    /// The directory.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the directory to `dest`, which must not exist (or be an
    /// empty directory), then syncs the parent.
    pub(super) fn commit(mut self, dest: &Path) -> Result<(), OutputError> {
        sync_dir(&self.path)?;
        fs::rename(&self.path, dest).map_err(io_err("rename into place", dest))?;
        self.path = PathBuf::new();
        sync_dir(parent_of(dest))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

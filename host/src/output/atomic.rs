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
        match fs::rename(&self.path, dest) {
            Ok(()) => {
                // Renamed: nothing left to clean up.
                self.path = PathBuf::new();
                sync_dir(parent_of(dest))
            }
            // A bind-mounted file (Kubernetes' /dev/termination-log) cannot
            // be renamed over: copy the finished content into it instead.
            Err(e) if e.kind() == io::ErrorKind::ResourceBusy && dest.is_file() => {
                tracing::debug!(path = %dest.display(), "destination is busy (a mount point); writing it in place");
                let mut from = File::open(&self.path).map_err(io_err("read", &self.path))?;
                let mut to = OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(dest)
                    .map_err(io_err("open", dest))?;
                io::copy(&mut from, &mut to).map_err(io_err("write", dest))?;
                to.sync_all().map_err(io_err("sync", dest))
            }
            Err(e) => Err(io_err("rename into place", dest)(e)),
        }
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

/// A user-named output file (`--tar-path`, the digest files): atomic where
/// the destination allows it, written in place where it cannot be replaced.
///
/// - A symlink at the destination is followed (the file it names is
///   written, as Kaniko's `os.Create` would), not replaced.
/// - A destination that exists and is not a regular file (`/dev/stdout`, a
///   FIFO, a device) is written in place.
/// - An existing regular file in a directory where kiln cannot create
///   files, or that is a mount point (Kubernetes' `/dev/termination-log`,
///   a `--digest-file` Kaniko's README suggests), is written in place.
/// - Anything else gets a temporary file beside it, renamed over it.
pub(super) enum OutputFile {
    /// Written beside, renamed into place.
    Atomic {
        /// The temporary file.
        tmp: TempFile,
        /// The resolved destination.
        dest: PathBuf,
    },
    /// Written directly.
    InPlace {
        /// The open destination.
        out: BufWriter<File>,
        /// The resolved destination.
        dest: PathBuf,
        /// Whether it is a regular file (then it is synced on commit).
        regular: bool,
    },
}

impl OutputFile {
    /// Opens the output for `dest`; a new file gets `mode` (less the umask).
    pub(super) fn create(dest: &Path, mode: u32) -> Result<Self, OutputError> {
        let target = fs::canonicalize(dest).unwrap_or_else(|_| dest.to_path_buf());
        match fs::metadata(&target) {
            Ok(m) if m.is_dir() => {
                return Err(OutputError::Io {
                    action: "write",
                    path: dest.to_path_buf(),
                    source: io::ErrorKind::IsADirectory.into(),
                });
            }
            Ok(m) if !m.is_file() => return Self::in_place(target, false),
            _ => {}
        }
        match TempFile::beside(&target, mode) {
            Ok(tmp) => Ok(Self::Atomic { tmp, dest: target }),
            Err(OutputError::Io { source, .. })
                if target.is_file()
                    && matches!(
                        source.kind(),
                        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                tracing::debug!(path = %target.display(), "cannot create files beside the destination; writing it in place");
                Self::in_place(target, true)
            }
            Err(e) => Err(e),
        }
    }

    fn in_place(dest: PathBuf, regular: bool) -> Result<Self, OutputError> {
        let file = OpenOptions::new()
            .write(true)
            .truncate(regular)
            .open(&dest)
            .map_err(io_err("open", &dest))?;
        Ok(Self::InPlace {
            out: BufWriter::with_capacity(1 << 20, file),
            dest,
            regular,
        })
    }

    /// Where bytes go now, for messages.
    pub(super) fn path(&self) -> &Path {
        match self {
            Self::Atomic { tmp, .. } => tmp.path(),
            Self::InPlace { dest, .. } => dest,
        }
    }

    /// Finishes the output: renames it into place, or flushes it.
    pub(super) fn commit(self) -> Result<(), OutputError> {
        match self {
            Self::Atomic { tmp, dest } => tmp.commit(&dest),
            Self::InPlace { out, dest, regular } => {
                let file = out.into_inner().map_err(|e| OutputError::Io {
                    action: "write",
                    path: dest.clone(),
                    source: e.into_error(),
                })?;
                if regular {
                    file.sync_all().map_err(io_err("sync", &dest))?;
                }
                Ok(())
            }
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Atomic { tmp, .. } => tmp.write(buf),
            Self::InPlace { out, .. } => out.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Atomic { tmp, .. } => tmp.flush(),
            Self::InPlace { out, .. } => out.flush(),
        }
    }
}

/// Writes `bytes` to the user-named output `dest` (see [`OutputFile`]).
pub(super) fn write_output_file(dest: &Path, mode: u32, bytes: &[u8]) -> Result<(), OutputError> {
    let mut out = OutputFile::create(dest, mode)?;
    let path = out.path().to_path_buf();
    out.write_all(bytes).map_err(io_err("write", &path))?;
    out.commit()
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

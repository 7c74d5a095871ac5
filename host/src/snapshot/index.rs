//! The metadata index of a build root, and the paths it never looks at.
//!
//! [`Index::scan`] walks the root through directory handles opened from the
//! root's `Dir` (`openat` with `O_NOFOLLOW | O_DIRECTORY`, `fstatat` with
//! `AT_SYMLINK_NOFOLLOW`), so it never follows a symlink and never leaves the
//! root. The walk runs on a few threads sharing a queue of directories.

use super::SnapshotError;
use crate::rootfs::Root;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

/// The extended attribute the index records (file capabilities).
pub(crate) const CAPABILITY_XATTR: &str = "security.capability";

/// Paths a scan never indexes and a layer never carries.
///
/// Two kinds of entries, with Kaniko's ignore-list semantics
/// (`pkg/util/fs_util.go`):
///
/// - a *path* ignores itself and everything under it, component-wise
///   (`/var/run` ignores `/var/run/x` but not `/var/runner`);
/// - a *prefix* ignores every path whose text starts with it (Kaniko's
///   `PrefixMatchOnly`, used for `/tmp/apt-key-gpghome*`).
///
/// Paths are image paths; a leading `/` is optional. The parent directories
/// of an ignored path are indexed as usual.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreSet {
    paths: Vec<Vec<u8>>,
    prefixes: Vec<Vec<u8>>,
}

impl IgnoreSet {
    /// An empty set: everything is indexed.
    pub fn new() -> Self {
        Self::default()
    }

    /// The defaults of a RUN step: `/proc`, `/sys` and `/dev` (the sandbox
    /// mounts its own there), and `/var/run` when `ignore_var_run` is true
    /// (Kaniko's `--ignore-var-run`, true by default). Host-provided files
    /// (`/etc/resolv.conf`, `/etc/hosts`), mount targets and
    /// `--ignore-path` entries are added with [`add_path`](Self::add_path).
    pub fn defaults(ignore_var_run: bool) -> Self {
        let mut set = Self::new();
        set.add_path("/proc").add_path("/sys").add_path("/dev");
        if ignore_var_run {
            set.add_path("/var/run");
        }
        set
    }

    /// Ignores `path` and everything under it.
    pub fn add_path(&mut self, path: impl AsRef<Path>) -> &mut Self {
        let p = normalize(path.as_ref());
        if !p.is_empty() && !self.paths.contains(&p) {
            self.paths.push(p);
        }
        self
    }

    /// Ignores every path whose text starts with `prefix` (after the leading
    /// `/`, which is optional).
    pub fn add_prefix(&mut self, prefix: impl AsRef<Path>) -> &mut Self {
        let raw = prefix.as_ref().as_os_str().as_bytes();
        let p = raw.strip_prefix(b"/").unwrap_or(raw).to_vec();
        if !p.is_empty() && !self.prefixes.contains(&p) {
            self.prefixes.push(p);
        }
        self
    }

    /// Whether `path` (an image path, leading `/` optional) is ignored.
    pub fn is_ignored(&self, path: impl AsRef<Path>) -> bool {
        self.matches(&normalize(path.as_ref()))
    }

    /// Whether a normalized relative path is ignored.
    pub(crate) fn matches(&self, rel: &[u8]) -> bool {
        self.paths
            .iter()
            .any(|p| rel.starts_with(p) && (rel.len() == p.len() || rel[p.len()] == b'/'))
            || self.prefixes.iter().any(|p| rel.starts_with(p))
    }
}

/// A relative path without `/` at either end, `.` or empty components.
/// `..` is kept as written (it can only make a path that matches nothing).
fn normalize(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for c in path
        .as_os_str()
        .as_bytes()
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
    {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    out
}

/// What kind of file an index entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
}

/// The metadata of one path, as `lstat` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file type.
    pub kind: FileKind,
    /// Permission bits with setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Size in bytes (the target's length for a symlink).
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Status change time, nanoseconds since the Unix epoch.
    pub ctime_ns: i128,
    /// Inode number.
    pub ino: u64,
    /// Device of the filesystem holding the inode.
    pub dev: u64,
    /// Number of hard links.
    pub nlink: u64,
    /// Device number of a device node (0 otherwise).
    pub rdev: u64,
    /// Target of a symlink, byte for byte.
    pub link_target: Option<Vec<u8>>,
    /// The `security.capability` extended attribute of a regular file.
    pub capability: Option<Vec<u8>>,
}

/// A snapshot of a root's metadata: one [`Entry`] per path, keyed by the
/// relative `/`-separated path (the root itself has no entry), sorted by
/// bytes, so a parent always comes before its children. No content is
/// read or hashed.
///
/// Sockets are not indexed: a layer cannot carry them (Docker and BuildKit
/// leave them out too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    entries: Vec<(Vec<u8>, Entry)>,
    /// What the scan left out; [`diff`](super::diff) leaves it out of both
    /// sides, so a path ignored in one step only is never reported.
    ignore: IgnoreSet,
}

impl Index {
    /// Walks `root` and records every path not in `ignore`.
    ///
    /// Directories are shared between worker threads (up to the available
    /// parallelism, at most 8) through a queue; each worker descends
    /// depth-first and offers subdirectories to idle workers. A path that
    /// disappears during the walk is left out; any other error fails the
    /// scan, naming the path.
    pub fn scan(root: &Root, ignore: &IgnoreSet) -> Result<Index, SnapshotError> {
        Self::walk(root, ignore, None)
    }

    /// Like [`scan`](Self::scan), reusing what `previous` (the index of the
    /// step before) knows: a regular file whose inode, device and change
    /// time are unchanged keeps its recorded `security.capability` instead
    /// of opening the file to read it again (setting or removing an xattr
    /// moves the change time, so nothing is missed). This leaves one
    /// `fstatat` per path, the cost of a step that changed little.
    pub fn rescan(
        root: &Root,
        ignore: &IgnoreSet,
        previous: &Index,
    ) -> Result<Index, SnapshotError> {
        Self::walk(root, ignore, Some(previous))
    }

    fn walk(
        root: &Root,
        ignore: &IgnoreSet,
        previous: Option<&Index>,
    ) -> Result<Index, SnapshotError> {
        let started = std::time::Instant::now();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        // The root's own handle may be `O_PATH`; reading needs a real one.
        let root_fd: OwnedFd = rustix::fs::openat(
            root.dir(),
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(scan_err(b"", "open"))?;
        let shared = Shared {
            state: Mutex::new(Queue {
                dirs: vec![Job {
                    parent: None,
                    fd: Some(root_fd),
                    rel: Vec::new(),
                }],
                busy: 0,
                failed: false,
            }),
            wake: Condvar::new(),
            threads,
        };
        let results: Vec<Result<Vec<Indexed>, SnapshotError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| s.spawn(|| worker(&shared, ignore, previous)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut entries = Vec::new();
        for r in results {
            entries.extend(r?);
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        tracing::debug!(
            root = %root.path().display(),
            entries = entries.len(),
            elapsed_us = started.elapsed().as_micros(),
            "root indexed"
        );
        Ok(Index {
            entries,
            ignore: ignore.clone(),
        })
    }

    /// The number of indexed paths.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was indexed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of `path` (relative, `/`-separated, a leading `/` allowed).
    pub fn get(&self, path: impl AsRef<Path>) -> Option<&Entry> {
        self.get_bytes(&normalize(path.as_ref()))
    }

    pub(crate) fn get_bytes(&self, rel: &[u8]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|(p, _)| p.as_slice().cmp(rel))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// Every path with its entry, sorted by the path's bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&Path, &Entry)> {
        self.entries
            .iter()
            .map(|(p, e)| (Path::new(OsStr::from_bytes(p)), e))
    }

    /// The ignore set the scan used.
    pub fn ignore(&self) -> &IgnoreSet {
        &self.ignore
    }

    pub(crate) fn raw(&self) -> &[(Vec<u8>, Entry)] {
        &self.entries
    }
}

/// One indexed path: relative bytes and metadata.
type Indexed = (Vec<u8>, Entry);

/// A directory to read: either already open (`fd`), or `rel`'s last
/// component to open relative to `parent`.
struct Job {
    parent: Option<Arc<OwnedFd>>,
    fd: Option<OwnedFd>,
    rel: Vec<u8>,
}

struct Queue {
    dirs: Vec<Job>,
    /// Workers holding a job.
    busy: usize,
    /// A worker failed: everybody stops.
    failed: bool,
}

struct Shared {
    state: Mutex<Queue>,
    wake: Condvar,
    threads: usize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next job, or `None` when the walk is over.
    fn next(&self, finished_one: bool) -> Option<Job> {
        let mut q = self.lock();
        if finished_one {
            q.busy -= 1;
        }
        loop {
            if q.failed {
                self.wake.notify_all();
                return None;
            }
            if let Some(job) = q.dirs.pop() {
                q.busy += 1;
                return Some(job);
            }
            if q.busy == 0 {
                self.wake.notify_all();
                return None;
            }
            q = self.wake.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Stops the other workers if this one panics, so none waits for it.
struct PanicGuard<'s>(&'s Shared);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().failed = true;
            self.0.wake.notify_all();
        }
    }
}

fn worker(
    shared: &Shared,
    ignore: &IgnoreSet,
    previous: Option<&Index>,
) -> Result<Vec<Indexed>, SnapshotError> {
    let _guard = PanicGuard(shared);
    let mut out = Vec::new();
    let mut finished = false;
    while let Some(job) = shared.next(finished) {
        finished = true;
        // Depth-first on a local stack; work is handed to the shared queue
        // while it runs low, so idle workers always find something.
        let mut local = vec![job];
        while let Some(job) = local.pop() {
            let mut subdirs = Vec::new();
            if let Err(e) = read_dir(job, ignore, previous, &mut out, &mut subdirs) {
                shared.lock().failed = true;
                shared.wake.notify_all();
                return Err(e);
            }
            for sub in subdirs {
                let mut q = shared.lock();
                if q.dirs.len() < shared.threads && q.busy < shared.threads {
                    q.dirs.push(sub);
                    drop(q);
                    shared.wake.notify_one();
                } else {
                    drop(q);
                    local.push(sub);
                }
            }
        }
    }
    Ok(out)
}

fn scan_err<'a>(rel: &'a [u8], action: &'static str) -> impl FnOnce(Errno) -> SnapshotError + 'a {
    move |e| SnapshotError::Scan {
        path: image_path(rel),
        action,
        source: io::Error::from(e),
    }
}

/// `/a/b` for `a/b`, `/` for the root.
pub(crate) fn image_path(rel: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(rel))
}

/// Reads one directory: records its entries in `out`, queues its
/// subdirectories in `subdirs`.
fn read_dir(
    job: Job,
    ignore: &IgnoreSet,
    previous: Option<&Index>,
    out: &mut Vec<(Vec<u8>, Entry)>,
    subdirs: &mut Vec<Job>,
) -> Result<(), SnapshotError> {
    let fd = match (job.fd, &job.parent) {
        (Some(fd), _) => fd,
        (None, Some(parent)) => {
            let name = last_component(&job.rel);
            match rustix::fs::openat(
                parent,
                OsStr::from_bytes(name),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // Removed or replaced since it was listed.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(()),
                Err(e) => return Err(scan_err(&job.rel, "open directory")(e)),
            }
        }
        (None, None) => return Ok(()),
    };
    let fd = Arc::new(fd);
    let mut dir = rustix::fs::Dir::read_from(&*fd).map_err(scan_err(&job.rel, "read directory"))?;
    while let Some(item) = dir.read() {
        let item = item.map_err(scan_err(&job.rel, "read directory"))?;
        let name = item.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let mut rel = Vec::with_capacity(job.rel.len() + 1 + name.len());
        rel.extend_from_slice(&job.rel);
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name);
        if ignore.matches(&rel) {
            continue;
        }
        let name = OsStr::from_bytes(name);
        let st = match rustix::fs::statat(&*fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(scan_err(&rel, "stat")(e)),
        };
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => FileKind::Regular,
            FileType::Directory => FileKind::Directory,
            FileType::Symlink => FileKind::Symlink,
            FileType::Fifo => FileKind::Fifo,
            FileType::CharacterDevice => FileKind::CharDevice,
            FileType::BlockDevice => FileKind::BlockDevice,
            FileType::Socket | FileType::Unknown => continue,
        };
        let link_target = if kind == FileKind::Symlink {
            match rustix::fs::readlinkat(&*fd, name, Vec::new()) {
                Ok(t) => Some(t.into_bytes()),
                Err(Errno::NOENT | Errno::INVAL) => continue,
                Err(e) => return Err(scan_err(&rel, "read link")(e)),
            }
        } else {
            None
        };
        let (mtime_ns, ctime_ns) = (
            ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
        );
        let (ino, dev) = (st.st_ino as u64, st.st_dev as u64);
        let known = previous
            .and_then(|p| p.get_bytes(&rel))
            .filter(|e| e.kind == kind && e.ino == ino && e.dev == dev && e.ctime_ns == ctime_ns);
        let capability = match known {
            _ if kind != FileKind::Regular => None,
            Some(e) => e.capability.clone(),
            None => read_capability(&fd, name).map_err(scan_err(&rel, "read capabilities of"))?,
        };
        let entry = Entry {
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: st.st_size as u64,
            mtime_ns,
            ctime_ns,
            ino,
            dev,
            nlink: st.st_nlink as u64,
            rdev: st.st_rdev as u64,
            link_target,
            capability,
        };
        if kind == FileKind::Directory {
            subdirs.push(Job {
                parent: Some(Arc::clone(&fd)),
                fd: None,
                rel: rel.clone(),
            });
        }
        out.push((rel, entry));
    }
    Ok(())
}

fn ns(secs: i64, nsec: i64) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nsec)
}

fn last_component(rel: &[u8]) -> &[u8] {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => &rel[i + 1..],
        None => rel,
    }
}

/// `security.capability` of regular file `name` in `dir`, read through a
/// descriptor opened without following a symlink. A file kiln may not open
/// (not root, no read permission) has no capability as far as the index
/// knows; its change time still catches a capability being set.
pub(crate) fn read_capability(dir: &OwnedFd, name: &OsStr) -> Result<Option<Vec<u8>>, Errno> {
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::ACCESS | Errno::PERM | Errno::LOOP | Errno::NXIO) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; 64];
    loop {
        match rustix::fs::fgetxattr(&fd, CAPABILITY_XATTR, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::NODATA | Errno::NOTSUP) => return Ok(None),
            Err(Errno::RANGE) if buf.len() < 64 * 1024 => {
                let len = buf.len() * 4;
                buf.resize(len, 0);
            }
            Err(e) => return Err(e),
        }
    }
}

//! What a step changed (two [`Index`]es compared), and that change written
//! as a layer.
//!
//! # What is compared
//!
//! A path is changed when its type, mode, owner, size, mtime, ctime, inode,
//! link count, device number, symlink target or `security.capability`
//! differs. No content is read: ctime catches a file rewritten with the
//! same size and its mtime restored (nothing but the kernel can set ctime),
//! and `setxattr` moves ctime too.
//!
//! # How the layer is written
//!
//! Entries go out in path byte order, so a directory always precedes what
//! it holds, with a whiteout at the place of the path it deletes:
//!
//! - every ancestor directory of a changed or deleted path is written with
//!   its metadata (as containerd's and BuildKit's differs do), so the layer
//!   alone recreates the directories' modes and owners;
//! - regular files sharing an inode are written once, the later paths as
//!   tar hard links to the first (within this layer only);
//! - symlinks verbatim, FIFOs and device nodes as special entries,
//!   `security.capability` as a PAX `SCHILY.xattr` record;
//! - a deleted path becomes `.wh.<name>`. A deleted directory hides what it
//!   held, so its children are not listed. A directory deleted and created
//!   again gets per-path whiteouts for what is gone, never an opaque
//!   whiteout: that is what containerd's differ writes, it is exact when the
//!   new directory keeps some old names, and it needs no second walk.
//!   When a directory is replaced by a non-directory, the new entry replaces
//!   the whole subtree when applied, so no whiteout is written under it.
//!
//! # Limits
//!
//! - Timestamps come from the kernel's clock tick: a change made within the
//!   same tick as the previous scan, keeping size, mode and inode, could go
//!   unseen. Between two RUN steps far more than a tick passes, and Linux
//!   6.13+ gives ext4, xfs, btrfs and tmpfs fine-grained times when they are
//!   queried. (Kaniko compares mtimes only and misses more.)
//! - The root directory has no entry: its own mode or owner is not recorded
//!   (a layer has no entry for `/` either). Sockets are not indexed.
//! - A changed file kiln cannot open (unprivileged, no read permission)
//!   fails [`write_layer`], naming it.

use super::index::{CAPABILITY_XATTR, Entry, FileKind, Index, image_path};
use super::{EntryMeta, LayerWriter, SnapshotError, SpecialFile};
use crate::rootfs::Root;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a step changed. Paths are relative and `/`-separated, sorted by
/// their bytes (parents before children).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Paths that are new or whose metadata changed.
    pub added_or_modified: Vec<PathBuf>,
    /// Paths that are gone. Pruned: under a deleted directory (or one
    /// replaced by a non-directory) nothing else is listed.
    pub deleted: Vec<PathBuf>,
}

impl Changes {
    /// Whether nothing changed (the step gets an empty layer).
    pub fn is_empty(&self) -> bool {
        self.added_or_modified.is_empty() && self.deleted.is_empty()
    }
}

/// Whether `a` and `b` describe different files or metadata.
///
/// A directory's ctime is not compared: adding or removing an entry moves
/// its mtime too (which is compared), while the sandbox's short-lived
/// placeholders (`/etc/resolv.conf`, mount targets) move only its ctime
/// once their parent's times are put back. Directory content and metadata
/// changes are still caught by mtime, mode, owner and nlink.
fn differs(a: &Entry, b: &Entry) -> bool {
    let dir = a.kind == FileKind::Directory && b.kind == FileKind::Directory;
    a.kind != b.kind
        || a.mode != b.mode
        || a.uid != b.uid
        || a.gid != b.gid
        || a.size != b.size
        || a.mtime_ns != b.mtime_ns
        || (!dir && a.ctime_ns != b.ctime_ns)
        || a.ino != b.ino
        || a.nlink != b.nlink
        || a.rdev != b.rdev
        || a.link_target != b.link_target
        || a.capability != b.capability
}

/// What changed from `before` to `after`.
///
/// A path ignored by the ignore set of either scan is left out of both
/// sides, so a mount target ignored during one step only is neither added
/// nor deleted.
pub fn diff(before: &Index, after: &Index) -> Changes {
    let same_ignore = before.ignore() == after.ignore();
    let keep = |p: &[u8]| same_ignore || !(before.ignore().matches(p) || after.ignore().matches(p));
    let (b, a) = (before.raw(), after.raw());
    let (mut i, mut j) = (0, 0);
    let mut changed = Vec::new();
    let mut gone: Vec<&[u8]> = Vec::new();
    while i < b.len() || j < a.len() {
        let ord = match (b.get(i), a.get(j)) {
            (Some(x), Some(y)) => x.0.cmp(&y.0),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match ord {
            Ordering::Less => {
                if keep(&b[i].0) {
                    gone.push(&b[i].0);
                }
                i += 1;
            }
            Ordering::Greater => {
                if keep(&a[j].0) {
                    changed.push(path_of(&a[j].0));
                }
                j += 1;
            }
            Ordering::Equal => {
                if differs(&b[i].1, &a[j].1) && keep(&a[j].0) {
                    changed.push(path_of(&a[j].0));
                }
                i += 1;
                j += 1;
            }
        }
    }
    // A deleted path is listed only when every ancestor is still a
    // directory: otherwise a deleted ancestor's whiteout, or the entry that
    // replaced it, removes it already.
    let deleted = gone
        .into_iter()
        .filter(|p| {
            ancestors(p).all(|anc| {
                after
                    .get_bytes(anc)
                    .is_some_and(|e| e.kind == FileKind::Directory)
            })
        })
        .map(path_of)
        .collect();
    Changes {
        added_or_modified: changed,
        deleted,
    }
}

fn path_of(rel: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(rel))
}

/// The proper ancestors of a relative path, nearest last (`a`, `a/b` for
/// `a/b/c`); the root is not one.
fn ancestors(rel: &[u8]) -> impl Iterator<Item = &[u8]> {
    rel.iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .map(move |(i, _)| &rel[..i])
}

/// One entry of the layer to write.
enum Item<'i> {
    Present(&'i Entry),
    Whiteout,
}

/// Writes `changes` (from [`diff`] against `after`) as a layer: added and
/// modified paths read from `root` with the metadata `after` recorded,
/// their ancestor directories, and whiteouts for deleted paths. See the
/// module documentation for the rules.
///
/// File content is streamed from the root; a file that shrank since the
/// scan fails with [`SnapshotError::ShortFile`]. A changed path missing from
/// `after` is an [`SnapshotError::InvalidPath`].
pub fn write_layer(
    root: &Root,
    after: &Index,
    changes: &Changes,
    writer: &mut LayerWriter<'_>,
) -> Result<(), SnapshotError> {
    let mut items: BTreeMap<&[u8], Item<'_>> = BTreeMap::new();
    let mut parents: BTreeSet<&[u8]> = BTreeSet::new();
    for p in &changes.added_or_modified {
        let rel = rel_bytes(p);
        let entry = after
            .get_bytes(rel)
            .ok_or_else(|| SnapshotError::InvalidPath {
                path: image_path(rel),
                reason: "it is not in the index of the root",
            })?;
        items.insert(rel, Item::Present(entry));
        parents.extend(ancestors(rel));
    }
    for p in &changes.deleted {
        let rel = rel_bytes(p);
        items.insert(rel, Item::Whiteout);
        parents.extend(ancestors(rel));
    }
    for p in parents {
        if let Some(e) = after.get_bytes(p).filter(|e| e.kind == FileKind::Directory) {
            items.entry(p).or_insert(Item::Present(e));
        }
    }

    let mut reader = Reader { root, cached: None };
    let mut first_link: HashMap<(u64, u64), &[u8]> = HashMap::new();
    for (rel, item) in items {
        let path = Path::new(OsStr::from_bytes(rel));
        let entry = match item {
            Item::Whiteout => {
                writer.add_whiteout(path)?;
                continue;
            }
            Item::Present(e) => e,
        };
        let meta = entry_meta(entry);
        match entry.kind {
            FileKind::Directory => writer.add_dir(path, &meta)?,
            FileKind::Regular => {
                if entry.nlink > 1 {
                    if let Some(first) = first_link.get(&(entry.dev, entry.ino)) {
                        writer.add_hardlink(path, &meta, Path::new(OsStr::from_bytes(first)))?;
                        continue;
                    }
                    first_link.insert((entry.dev, entry.ino), rel);
                }
                let file = reader.open(rel)?;
                writer.add_file(path, &meta, entry.size, io::BufReader::new(file))?;
            }
            FileKind::Symlink => {
                let target = entry.link_target.as_deref().unwrap_or_default();
                writer.add_symlink(path, &meta, Path::new(OsStr::from_bytes(target)))?;
            }
            FileKind::Fifo => writer.add_special(path, &meta, SpecialFile::Fifo)?,
            FileKind::CharDevice => writer.add_special(
                path,
                &meta,
                SpecialFile::Char {
                    major: rustix::fs::major(entry.rdev as _),
                    minor: rustix::fs::minor(entry.rdev as _),
                },
            )?,
            FileKind::BlockDevice => writer.add_special(
                path,
                &meta,
                SpecialFile::Block {
                    major: rustix::fs::major(entry.rdev as _),
                    minor: rustix::fs::minor(entry.rdev as _),
                },
            )?,
        }
    }
    Ok(())
}

fn rel_bytes(p: &Path) -> &[u8] {
    let b = p.as_os_str().as_bytes();
    b.strip_prefix(b"/").unwrap_or(b)
}

/// The tar metadata of an index entry: mtime in whole seconds (before the
/// epoch counts as 0), the capability as an xattr.
fn entry_meta(e: &Entry) -> EntryMeta {
    let secs = e.mtime_ns.div_euclid(1_000_000_000);
    let mut meta = EntryMeta {
        mode: e.mode,
        uid: e.uid.into(),
        gid: e.gid.into(),
        mtime: u64::try_from(secs).unwrap_or(0),
        ..EntryMeta::default()
    };
    if let Some(cap) = &e.capability {
        meta.xattrs.insert(CAPABILITY_XATTR.to_owned(), cap.clone());
    }
    meta
}

/// Opens files of the root for reading, keeping the last parent directory
/// open (entries come in path order, so siblings share it).
struct Reader<'r> {
    root: &'r Root,
    cached: Option<(Vec<u8>, OwnedFd)>,
}

impl Reader<'_> {
    fn open(&mut self, rel: &[u8]) -> Result<std::fs::File, SnapshotError> {
        let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&rel[..0], rel),
        };
        let err = |action: &'static str| {
            move |e: Errno| SnapshotError::Scan {
                path: image_path(rel),
                action,
                source: io::Error::from(e),
            }
        };
        if self.cached.as_ref().is_none_or(|(p, _)| p != parent) {
            let fd = open_dir(self.root, parent).map_err(err("open the directory of"))?;
            self.cached = Some((parent.to_vec(), fd));
        }
        let (_, dir) = self.cached.as_ref().expect("cached above");
        let fd = rustix::fs::openat(
            dir,
            OsStr::from_bytes(name),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err("open"))?;
        Ok(std::fs::File::from(fd))
    }
}

/// Opens the directory `rel` of the root one component at a time, never
/// following a symlink.
fn open_dir(root: &Root, rel: &[u8]) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut cur = rustix::fs::openat(root.dir(), ".", flags, Mode::empty())?;
    for comp in rel.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if comp == b"." || comp == b".." {
            return Err(Errno::INVAL);
        }
        cur = rustix::fs::openat(&cur, OsStr::from_bytes(comp), flags, Mode::empty())?;
    }
    Ok(cur)
}

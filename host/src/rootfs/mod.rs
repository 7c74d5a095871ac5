//! The build root: a `cap_std::fs::Dir` that every layer unpack, COPY/ADD,
//! ownership change and user lookup goes through.
//!
//! COPY and ADD (module `copy`, [`copy_into`]) read a build context or
//! another root and write here, returning the exact [`ChangeSet`].
//!
//! May use: `image` (media types), `plan` (the typed COPY), `dockerfile`
//! (`.dockerignore` and Go glob matching). Never: paths outside its `Dir`, the
//! network, tokio. The code is synchronous; async callers use
//! `spawn_blocking`.
//!
//! # Containment
//!
//! Paths inside the image are resolved by [`Root::resolve`] with chroot
//! semantics: symlinks, absolute or relative, are followed *inside* the root
//! and `..` never climbs above it. The walk opens one component at a time
//! with `O_NOFOLLOW` from a directory handle (module `walk`), so the kernel
//! never follows an image symlink on kiln's behalf; the final component of
//! every create/remove/link is a single name relative to a handle.
//!
//! # Layers
//!
//! [`Root::apply_layer`] applies one layer tar (plain, gzip or zstd) as the
//! OCI image spec's "Applying Changesets" says, streaming, with whiteouts
//! and opaque directories handled the way containerd does. What a hostile
//! layer gets:
//!
//! | entry | outcome |
//! |---|---|
//! | absolute name `/etc/x` | leading `/` stripped, lands at `etc/x` (as every runtime does) |
//! | `a/../b` | cleaned lexically to `b` |
//! | `../x`, `a/../../x` (climbs above the root) | refused: [`RootfsError::UnsafeEntry`] |
//! | `evil -> /` then `evil/etc/passwd` | the symlink is followed inside the root: lands at `etc/passwd` |
//! | hard link to `/etc/shadow` | names the root's own `etc/shadow`; error if it does not exist there |
//! | hard link to `../../outside` | refused: [`RootfsError::UnsafeEntry`] |
//! | hard link to a directory | refused: [`RootfsError::Hardlink`] |
//! | `.wh...` / `.wh..` | refused: [`RootfsError::UnsafeEntry`] |
//! | symlink loop in a parent | [`RootfsError::Resolve`] caused by [`ResolveError::Loop`] |
//! | `.wh.`-prefixed parent directory (aufs metadata) | skipped, one report line |
//! | NUL in a name | refused |
//! | component longer than the filesystem allows | the kernel's `ENAMETOOLONG`, naming the entry |

mod archive;
mod copy;
mod unpack;
mod users;
mod walk;

pub use copy::{ChangeSet, CopyError, CopyRequest, CopySource, copy_into};
pub use unpack::LayerReport;
pub use users::{lookup_group, lookup_user};
pub use walk::ResolveError;

use crate::image::media::Compression;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use walk::{Missing, Name};

/// Errors of the build root.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The root directory could not be created or opened.
    #[error("cannot open the build root at {}", path.display())]
    Open {
        /// The root on the host.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// [`Root::create`] was given a directory that is not empty.
    #[error("cannot create the build root at {}: the directory is not empty", path.display())]
    NotEmpty {
        /// The root on the host.
        path: PathBuf,
    },
    /// The layer stream could not be read (decompression or tar framing).
    #[error("cannot read the layer tar{}", after.as_ref().map(|a| format!(" after entry {a}")).unwrap_or_default())]
    ReadLayer {
        /// The last entry read completely, if any.
        after: Option<String>,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A layer entry that could reach outside the root or is malformed.
    #[error("layer entry {entry} is refused: {reason}")]
    UnsafeEntry {
        /// The entry's name as in the tar.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A hard link entry whose target cannot be linked.
    #[error("layer entry {entry} is a hard link to {target}, which {reason}")]
    Hardlink {
        /// The entry's name as in the tar.
        entry: String,
        /// The link target as in the tar.
        target: String,
        /// What is wrong with the target.
        reason: String,
    },
    /// Applying a layer entry failed.
    #[error("cannot {action} layer entry {entry}")]
    Entry {
        /// The entry's name as in the tar.
        entry: String,
        /// What was being done.
        action: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A path could not be resolved inside the root.
    #[error("cannot resolve {path} inside the root")]
    Resolve {
        /// The path being resolved (image path or layer entry).
        path: String,
        /// Why.
        #[source]
        source: ResolveError,
    },
    /// A filesystem operation on a resolved path failed.
    #[error("cannot {action} {path} inside the root")]
    Io {
        /// The image path.
        path: String,
        /// What was being done.
        action: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A user name that is not in the root's `/etc/passwd`.
    #[error("unable to find user {user}: no matching entry in {file} of the build root")]
    UnknownUser {
        /// The name asked for.
        user: String,
        /// The file looked in.
        file: &'static str,
    },
    /// A group name that is not in the root's `/etc/group`.
    #[error("unable to find group {group}: no matching entry in {file} of the build root")]
    UnknownGroup {
        /// The name asked for.
        group: String,
        /// The file looked in.
        file: &'static str,
    },
    /// A user spec that cannot be parsed.
    #[error("invalid user spec {spec:?}: {reason}")]
    InvalidUser {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// How a [`Root`] applies what needs privileges.
#[derive(Debug, Clone, Default)]
pub struct RootOptions {
    /// Behave as an unprivileged user even when running as root: do not
    /// attempt `chown`, device nodes or `security.capability`, and report
    /// them as skipped. When `false` (the default) kiln tries and falls back
    /// the same way when the kernel refuses (`EPERM`).
    pub unprivileged: bool,
}

/// The build root.
#[derive(Debug)]
pub struct Root {
    dir: Dir,
    path: PathBuf,
    options: RootOptions,
}

impl Root {
    /// Creates the root at `path`, which must not exist or be an empty
    /// directory; missing parents are created.
    ///
    /// # Ambient Authority
    ///
    /// Creates and opens `path` on the host filesystem; everything after goes
    /// through the opened directory.
    pub fn create(path: &Path) -> Result<Self, RootfsError> {
        let open_err = |source| RootfsError::Open {
            path: path.to_path_buf(),
            source,
        };
        Dir::create_ambient_dir_all(path, ambient_authority()).map_err(open_err)?;
        let root = Self::open(path)?;
        if root.dir.entries().map_err(open_err)?.next().is_some() {
            return Err(RootfsError::NotEmpty {
                path: path.to_path_buf(),
            });
        }
        Ok(root)
    }

    /// Opens an existing root at `path`.
    ///
    /// # Ambient Authority
    ///
    /// Opens `path` on the host filesystem; everything after goes through the
    /// opened directory.
    pub fn open(path: &Path) -> Result<Self, RootfsError> {
        let dir = Dir::open_ambient_dir(path, ambient_authority()).map_err(|source| {
            RootfsError::Open {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(Self {
            dir,
            path: path.to_path_buf(),
            options: RootOptions::default(),
        })
    }

    /// Replaces the options (see [`RootOptions`]).
    pub fn with_options(mut self, options: RootOptions) -> Self {
        self.options = options;
        self
    }

    /// The options in effect.
    pub fn options(&self) -> &RootOptions {
        &self.options
    }

    /// The root directory handle.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Where the root is on the host, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies one layer blob, compressed per `compression`, on top of what
    /// is in the root. Streams: the layer is never held whole in memory.
    pub fn apply_layer(
        &self,
        blob: impl Read,
        compression: Compression,
    ) -> Result<LayerReport, RootfsError> {
        unpack::apply(self, blob, compression)
    }

    /// Resolves `path` (absolute, as inside the image; a relative path is
    /// taken from `/`) with chroot semantics: symlinks, absolute or relative,
    /// are followed inside the root, `..` never climbs above it, and at most
    /// 40 symlinks are followed per step. Components that do not exist are
    /// kept as written. Returns the relative path of the real location (`.`
    /// for the root).
    pub fn resolve(&self, path: &str) -> Result<PathBuf, RootfsError> {
        let comps = walk::resolve_path(&self.dir, path.as_bytes()).map_err(|source| {
            RootfsError::Resolve {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok(walk::rel_path(&comps))
    }

    /// WORKDIR: creates `path` and its missing parents (mode 0755, owned by
    /// `owner` or 0:0), resolving symlinks inside the root (so `/var/run/x`
    /// with `/var/run -> /run` creates `/run/x`). Returns the directories it
    /// created as image paths (`/a`, `/a/b`), empty when all existed.
    pub fn mkdir_all(
        &self,
        path: &str,
        owner: Option<(u32, u32)>,
    ) -> Result<Vec<String>, RootfsError> {
        Ok(self.mkdir_all_handle(path, owner)?.1)
    }

    /// [`Root::mkdir_all`], also returning the handle on the directory.
    fn mkdir_all_handle(
        &self,
        path: &str,
        owner: Option<(u32, u32)>,
    ) -> Result<(walk::Resolved, Vec<String>), RootfsError> {
        let (uid, gid) = owner.unwrap_or((0, 0));
        let mut created = Vec::new();
        let mut chown_ok = !self.options.unprivileged;
        let mut on_create = |d: &Dir, at: &str| -> io::Result<()> {
            if chown_ok {
                match rustix::fs::fchown(
                    d,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                ) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::PERM | rustix::io::Errno::INVAL) => {
                        tracing::warn!(
                            path = at,
                            uid,
                            gid,
                            "cannot chown a new directory: not permitted"
                        );
                        chown_ok = false;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            rustix::fs::fchmod(d, rustix::fs::Mode::from(0o755))?;
            created.push(at.to_owned());
            Ok(())
        };
        let (resolved, _) = walk::walk_dir(
            &self.dir,
            path.as_bytes(),
            &mut Missing::Create(&mut on_create),
        )
        .map_err(|source| RootfsError::Resolve {
            path: path.to_owned(),
            source,
        })?;
        Ok((resolved, created))
    }

    /// Metadata of the entry at `path`, a real path (as in a
    /// [`ChangeSet`]): no component is followed if it is a symlink, so a
    /// path through a symlink reads as absent. `None` when absent.
    pub fn lstat(&self, path: &str) -> Result<Option<EntryStat>, RootfsError> {
        let Some((dir, name)) = self.plain_parent(path)? else {
            return Ok(None);
        };
        let Some(name) = name else {
            let st = rustix::fs::fstat(&dir).map_err(|e| RootfsError::Io {
                path: path.to_owned(),
                action: "stat",
                source: e.into(),
            })?;
            return Ok(Some(EntryStat::from_stat(&st, None)));
        };
        let n = Name::new(&name).ok_or_else(|| RootfsError::Io {
            path: path.to_owned(),
            action: "stat",
            source: io::ErrorKind::InvalidInput.into(),
        })?;
        let io_err = |action, source| RootfsError::Io {
            path: path.to_owned(),
            action,
            source,
        };
        let Some(st) = walk::lstat(&dir, n).map_err(|e| io_err("stat", e))? else {
            return Ok(None);
        };
        let target =
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink {
                let t = rustix::fs::readlinkat(&dir, n.as_os_str(), Vec::new())
                    .map_err(|e| io_err("read the link", e.into()))?;
                Some(PathBuf::from(OsStr::from_bytes(t.as_bytes())))
            } else {
                None
            };
        Ok(Some(EntryStat::from_stat(&st, target)))
    }

    /// Opens the regular file at `path`, a real path (no component is
    /// followed if it is a symlink).
    pub fn open_file(&self, path: &str) -> Result<cap_std::fs::File, RootfsError> {
        let io_err = |source| RootfsError::Io {
            path: path.to_owned(),
            action: "open",
            source,
        };
        let (dir, name) = self
            .plain_parent(path)?
            .ok_or_else(|| io_err(io::ErrorKind::NotFound.into()))?;
        let name = name.ok_or_else(|| io_err(io::ErrorKind::IsADirectory.into()))?;
        dir.open_with(
            Path::new(&name),
            cap_std::fs::OpenOptions::new()
                .read(true)
                .custom_flags_nofollow(),
        )
        .map_err(io_err)
    }

    /// The parent directory of a real path, opened without following any
    /// symlink, and the final name (`None` for the root itself).
    fn plain_parent(
        &self,
        path: &str,
    ) -> Result<Option<(Dir, Option<std::ffi::OsString>)>, RootfsError> {
        let comps: Vec<&[u8]> = walk::split(path.as_bytes()).collect();
        let io_err = |source| RootfsError::Io {
            path: path.to_owned(),
            action: "open the parent of",
            source,
        };
        if comps.iter().any(|c| *c == b"..") {
            return Err(io_err(io::ErrorKind::InvalidInput.into()));
        }
        let Some((last, parents)) = comps.split_last() else {
            return Ok(Some((self.dir.try_clone().map_err(io_err)?, None)));
        };
        let parent = parents.join(&b'/');
        let Some(dir) = walk::open_plain_dir(&self.dir, Path::new(OsStr::from_bytes(&parent)))
            .map_err(io_err)?
        else {
            return Ok(None);
        };
        Ok(Some((dir, Some(OsStr::from_bytes(last).to_os_string()))))
    }

    /// Reads a file inside the root (symlinks resolved inside), e.g.
    /// `/etc/passwd`.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, RootfsError> {
        self.read_file_opt(path)?.ok_or_else(|| RootfsError::Io {
            path: path.to_owned(),
            action: "read",
            source: io::Error::from(io::ErrorKind::NotFound),
        })
    }

    /// Like [`Root::read_file`], with `None` when the file does not exist.
    pub(crate) fn read_file_opt(&self, path: &str) -> Result<Option<Vec<u8>>, RootfsError> {
        let comps = walk::resolve_path(&self.dir, path.as_bytes()).map_err(|source| {
            RootfsError::Resolve {
                path: path.to_owned(),
                source,
            }
        })?;
        let io_err = |source| RootfsError::Io {
            path: path.to_owned(),
            action: "read",
            source,
        };
        let Some((last, parent)) = comps.split_last() else {
            return Err(io_err(io::Error::from(io::ErrorKind::IsADirectory)));
        };
        let parent = walk::rel_path(parent);
        let Some(dir) = walk::open_plain_dir(&self.dir, &parent).map_err(io_err)? else {
            return Ok(None);
        };
        let name = Name::new(last).ok_or_else(|| io_err(io::ErrorKind::InvalidInput.into()))?;
        let file = match dir.open_with(
            name,
            cap_std::fs::OpenOptions::new()
                .read(true)
                .custom_flags_nofollow(),
        ) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        let mut buf = Vec::new();
        let mut file = file;
        file.read_to_end(&mut buf).map_err(io_err)?;
        Ok(Some(buf))
    }
}

/// What kind of entry an [`EntryStat`] describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link, with its target byte for byte.
    Symlink(PathBuf),
    /// A named pipe.
    Fifo,
    /// A character device (`rdev`).
    Char(u64),
    /// A block device (`rdev`).
    Block(u64),
    /// A socket or anything else a layer cannot carry.
    Other,
}

/// The metadata of one entry of the root, as [`Root::lstat`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryStat {
    /// The kind.
    pub kind: EntryKind,
    /// Permission, set-id and sticky bits (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Nanoseconds of the modification time.
    pub mtime_nsec: i64,
    /// Hard link count.
    pub nlink: u64,
    /// Device of the inode.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl EntryStat {
    fn from_stat(st: &rustix::fs::Stat, target: Option<PathBuf>) -> Self {
        use rustix::fs::FileType;
        let kind = match (FileType::from_raw_mode(st.st_mode), target) {
            (FileType::Directory, _) => EntryKind::Dir,
            (FileType::RegularFile, _) => EntryKind::File,
            (FileType::Symlink, Some(t)) => EntryKind::Symlink(t),
            (FileType::Fifo, _) => EntryKind::Fifo,
            (FileType::CharacterDevice, _) => EntryKind::Char(st.st_rdev),
            (FileType::BlockDevice, _) => EntryKind::Block(st.st_rdev),
            _ => EntryKind::Other,
        };
        Self {
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: st.st_mtime,
            mtime_nsec: i64::try_from(st.st_mtime_nsec).unwrap_or(0),
            nlink: st.st_nlink,
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// `O_NOFOLLOW` on cap-std open options.
trait NoFollow {
    fn custom_flags_nofollow(&mut self) -> &mut Self;
}

impl NoFollow for cap_std::fs::OpenOptions {
    fn custom_flags_nofollow(&mut self) -> &mut Self {
        use cap_std::fs::OpenOptionsExt;
        self.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
    }
}

/// The display form of a raw tar name.
fn lossy(b: &[u8]) -> String {
    OsStr::from_bytes(b).to_string_lossy().into_owned()
}

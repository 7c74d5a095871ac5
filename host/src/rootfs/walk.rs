//! Path resolution inside the root with chroot semantics.
//!
//! Every lookup walks one component at a time from a directory handle:
//! directories are opened with `O_NOFOLLOW | O_DIRECTORY`, a symlink is read
//! with `readlinkat` and its target spliced into the components still to
//! walk (an absolute target restarts at the root), and `..` pops back to the
//! parent handle, never above the root. The kernel never follows a symlink
//! for us, so a link in the image can only lead somewhere inside the root.
//! Operations on the final component take a [`Name`]: one component, never
//! `.`, `..`, empty, or containing `/` or NUL.

use cap_std::fs::Dir;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// How many symlinks one resolution may follow, as Linux's `MAXSYMLINKS`.
pub(crate) const MAX_SYMLINKS: u32 = 40;

/// One path component that is safe to hand to an `*at` syscall relative to a
/// directory handle: it names an entry of that directory and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Name<'a>(&'a OsStr);

impl<'a> Name<'a> {
    /// Checks that `s` is a single ordinary component.
    pub(crate) fn new(s: &'a OsStr) -> Option<Self> {
        let b = s.as_bytes();
        let ok = !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&0);
        ok.then_some(Self(s))
    }

    /// The component.
    pub(crate) fn as_os_str(&self) -> &'a OsStr {
        self.0
    }
}

impl AsRef<std::path::Path> for Name<'_> {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(self.0)
    }
}

/// Why a resolution inside the root failed.
#[derive(Debug)]
pub enum ResolveError {
    /// More than 40 symlinks were followed (Linux's `MAXSYMLINKS`).
    Loop {
        /// The image path at which the limit was hit.
        at: String,
    },
    /// A component that must be a directory is something else.
    NotADirectory {
        /// The image path of that component.
        at: String,
    },
    /// A component does not exist (and was not to be created).
    NotFound {
        /// The image path of the missing component.
        at: String,
    },
    /// The filesystem refused.
    Io {
        /// The image path being looked at.
        at: String,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Loop { at } => write!(
                f,
                "too many levels of symbolic links (more than {MAX_SYMLINKS}) at {at}"
            ),
            Self::NotADirectory { at } => write!(f, "{at} is not a directory"),
            Self::NotFound { at } => write!(f, "{at} does not exist"),
            Self::Io { at, .. } => write!(f, "cannot look up {at}"),
        }
    }
}

impl std::error::Error for ResolveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What to do with a component that does not exist.
pub(crate) enum Missing<'a> {
    /// Fail with [`ResolveError::NotFound`].
    Fail,
    /// Create it as a directory; the callback sets owner and mode on the new
    /// handle and learns its image path.
    Create(&'a mut dyn FnMut(&Dir, &str) -> io::Result<()>),
    /// Stop touching the filesystem and append the rest lexically (what
    /// `resolve` does for paths that do not exist yet).
    Lexical,
}

/// A resolved directory: its handle and its path relative to the root.
pub(crate) struct Resolved {
    /// Handle of the directory (a clone of the root handle for the root).
    pub(crate) dir: Dir,
    /// Components from the root, free of symlinks, `.` and `..`.
    pub(crate) components: Vec<OsString>,
}

impl Resolved {
    /// The relative path (empty for the root).
    pub(crate) fn rel(&self) -> PathBuf {
        self.components.iter().collect()
    }
}

/// The relative path of `components` (`.` for none).
pub(crate) fn rel_path(components: &[OsString]) -> PathBuf {
    if components.is_empty() {
        PathBuf::from(".")
    } else {
        components.iter().collect()
    }
}

/// The image path ("/a/b") of `components`.
pub(crate) fn image_path(components: &[OsString]) -> String {
    let mut s = String::new();
    for c in components {
        s.push('/');
        s.push_str(&c.to_string_lossy());
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// Splits a path into components as bytes, skipping empty ones and `.`.
pub(crate) fn split(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

/// Opens `name` in `dir` as a directory without following a symlink.
pub(crate) fn open_dir_nofollow(dir: &Dir, name: Name<'_>) -> io::Result<Dir> {
    let fd = rustix::fs::openat(
        dir,
        name.as_os_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(Dir::from(fd))
}

/// Opens a directory by a relative path of plain components, following no
/// symlink at all: `None` when any component is missing, not a directory, or
/// a symlink.
pub(crate) fn open_plain_dir(root: &Dir, rel: &std::path::Path) -> io::Result<Option<Dir>> {
    let mut cur: Option<Dir> = None;
    for comp in split(rel.as_os_str().as_bytes()) {
        let Some(name) = Name::new(OsStr::from_bytes(comp)) else {
            return Ok(None);
        };
        let next = match open_dir_nofollow(cur.as_ref().unwrap_or(root), name) {
            Ok(d) => d,
            Err(e) if is_not_plain_dir(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        cur = Some(next);
    }
    match cur {
        Some(d) => Ok(Some(d)),
        None => Ok(Some(root.try_clone()?)),
    }
}

fn is_not_plain_dir(e: &io::Error) -> bool {
    matches!(
        Errno::from_io_error(e),
        Some(Errno::NOENT | Errno::NOTDIR | Errno::LOOP)
    )
}

/// Reads the target of `name` in `dir` if it is a symlink.
fn read_link(dir: &Dir, name: Name<'_>) -> io::Result<Option<Vec<u8>>> {
    match rustix::fs::readlinkat(dir, name.as_os_str(), Vec::new()) {
        Ok(t) => Ok(Some(t.into_bytes())),
        // Not a symlink, or nothing there at all.
        Err(Errno::INVAL | Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether `name` in `dir` exists (without following a symlink).
pub(crate) fn lstat(dir: &Dir, name: Name<'_>) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Walks `path` from `root` with chroot semantics and returns the directory
/// it names. With `follow_last == false` the caller has split off the final
/// component already, so every component here must end up a directory.
///
/// With [`Missing::Lexical`], the returned handle is the deepest existing
/// directory and `tail` holds the components that do not exist.
pub(crate) fn walk_dir(
    root: &Dir,
    path: &[u8],
    missing: &mut Missing<'_>,
) -> Result<(Resolved, Vec<OsString>), ResolveError> {
    // Components still to walk, in reverse order so the next is at the end.
    let mut pending: Vec<OsString> = split(path)
        .rev()
        .map(|c| OsString::from_vec(c.to_vec()))
        .collect();
    // The real path walked so far and a handle on its directory (`None` for
    // the root). Only the deepest handle is kept, so a deep path costs one
    // descriptor; `..` reopens its parent from the root, plain directory by
    // plain directory, which never leaves the root.
    let mut names: Vec<OsString> = Vec::new();
    let mut cur: Option<Dir> = None;
    let mut tail: Vec<OsString> = Vec::new();
    let mut links = 0u32;
    let here = |names: &[OsString], extra: Option<&OsStr>| {
        let mut comps: Vec<OsString> = names.to_vec();
        comps.extend(extra.map(OsStr::to_os_string));
        image_path(&comps)
    };

    while let Some(comp) = pending.pop() {
        let bytes = comp.as_bytes();
        if bytes.is_empty() || bytes == b"." {
            continue;
        }
        if bytes == b".." {
            if tail.pop().is_none() && names.pop().is_some() {
                cur = if names.is_empty() {
                    None
                } else {
                    let parent = rel_path(&names);
                    let reopened =
                        open_plain_dir(root, &parent).map_err(|source| ResolveError::Io {
                            at: image_path(&names),
                            source,
                        })?;
                    Some(reopened.ok_or_else(|| ResolveError::NotFound {
                        at: image_path(&names),
                    })?)
                };
            }
            continue;
        }
        if !tail.is_empty() {
            tail.push(comp);
            continue;
        }
        let Some(name) = Name::new(&comp) else {
            return Err(ResolveError::Io {
                at: here(&names, Some(&comp)),
                source: io::Error::from(io::ErrorKind::InvalidInput),
            });
        };
        let here_dir = cur.as_ref().unwrap_or(root);
        match open_dir_nofollow(here_dir, name) {
            Ok(d) => {
                names.push(comp);
                cur = Some(d);
                continue;
            }
            Err(e) => match Errno::from_io_error(&e) {
                Some(Errno::LOOP | Errno::NOTDIR) => {}
                Some(Errno::NOENT) => {
                    match missing {
                        Missing::Fail => {
                            return Err(ResolveError::NotFound {
                                at: here(&names, Some(&comp)),
                            });
                        }
                        Missing::Lexical => {
                            tail.push(comp);
                        }
                        Missing::Create(on_create) => {
                            let at = here(&names, Some(&comp));
                            let io_err = |source| ResolveError::Io {
                                at: at.clone(),
                                source,
                            };
                            match rustix::fs::mkdirat(here_dir, name.as_os_str(), Mode::from(0o755))
                            {
                                Ok(()) | Err(Errno::EXIST) => {}
                                Err(e) => return Err(io_err(e.into())),
                            }
                            let d = open_dir_nofollow(here_dir, name).map_err(io_err)?;
                            on_create(&d, &at).map_err(io_err)?;
                            names.push(comp);
                            cur = Some(d);
                        }
                    }
                    continue;
                }
                _ => {
                    return Err(ResolveError::Io {
                        at: here(&names, Some(&comp)),
                        source: e,
                    });
                }
            },
        }
        // Not a directory: a symlink to follow, or a non-directory.
        let target = read_link(here_dir, name).map_err(|source| ResolveError::Io {
            at: here(&names, Some(&comp)),
            source,
        })?;
        let Some(target) = target else {
            return Err(ResolveError::NotADirectory {
                at: here(&names, Some(&comp)),
            });
        };
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(ResolveError::Loop {
                at: here(&names, Some(&comp)),
            });
        }
        if target.first() == Some(&b'/') {
            names.clear();
            cur = None;
        }
        pending.extend(split(&target).rev().map(|c| OsString::from_vec(c.to_vec())));
    }

    let components = names;
    let dir = match cur {
        Some(d) => d,
        None => root.try_clone().map_err(|source| ResolveError::Io {
            at: "/".into(),
            source,
        })?,
    };
    Ok((Resolved { dir, components }, tail))
}

/// Resolves a full path, the final component included, with chroot
/// semantics: returns the components of the real location. Components that
/// do not exist are kept as given; a non-directory is fine as the final
/// component only.
pub(crate) fn resolve_path(root: &Dir, path: &[u8]) -> Result<Vec<OsString>, ResolveError> {
    let mut comps: Vec<&[u8]> = split(path).collect();
    // `..` right after the final real name would walk through it; handle
    // paths whose last component is `..` by resolving the whole as a dir.
    let Some(last) = comps.pop() else {
        return Ok(Vec::new());
    };
    if last == b".." {
        let (r, tail) = walk_dir(root, path, &mut Missing::Lexical)?;
        let mut c = r.components;
        c.extend(tail);
        return Ok(c);
    }
    let parent = comps.join(&b'/');
    let (parent_r, tail) = walk_dir(root, &parent, &mut Missing::Lexical)?;
    let mut out = parent_r.components;
    let last = OsStr::from_bytes(last);
    if !tail.is_empty() {
        out.extend(tail);
        out.push(last.to_os_string());
        return Ok(out);
    }
    let Some(name) = Name::new(last) else {
        out.push(last.to_os_string());
        return Ok(out);
    };
    // Follow the final component if it is a symlink, sharing the budget of
    // one resolution by re-walking the joined path with the target spliced.
    let mut links = 0u32;
    let mut dir = parent_r.dir;
    let mut base = out;
    let mut name_buf = name.as_os_str().to_os_string();
    loop {
        let name = Name::new(&name_buf).expect("checked component");
        let target = read_link(&dir, name).map_err(|source| ResolveError::Io {
            at: image_path(&[base.clone(), vec![name_buf.clone()]].concat()),
            source,
        })?;
        let Some(target) = target else {
            base.push(name_buf);
            return Ok(base);
        };
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(ResolveError::Loop {
                at: image_path(&[base, vec![name_buf]].concat()),
            });
        }
        // Rebuild "<base>/<target>" and resolve its parent again.
        let mut joined: Vec<u8> = if target.first() == Some(&b'/') {
            Vec::new()
        } else {
            image_path(&base).into_bytes()
        };
        joined.push(b'/');
        joined.extend_from_slice(&target);
        let mut tcomps: Vec<&[u8]> = split(&joined).collect();
        let Some(tlast) = tcomps.pop() else {
            return Ok(Vec::new());
        };
        if tlast == b".." {
            let (r, tail) = walk_dir(root, &joined, &mut Missing::Lexical)?;
            let mut c = r.components;
            c.extend(tail);
            return Ok(c);
        }
        let tparent = tcomps.join(&b'/');
        let (r, tail) = walk_dir(root, &tparent, &mut Missing::Lexical)?;
        let mut c = r.components;
        let tlast = OsStr::from_bytes(tlast).to_os_string();
        if !tail.is_empty() || Name::new(&tlast).is_none() {
            c.extend(tail);
            c.push(tlast);
            return Ok(c);
        }
        dir = r.dir;
        base = c;
        name_buf = tlast;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_plain_components() {
        for ok in ["a", ".a", "..a", "a..", ".wh.x"] {
            assert!(Name::new(OsStr::new(ok)).is_some(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "/", "a\0"] {
            assert!(Name::new(OsStr::new(bad)).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn split_skips_empty_and_dot() {
        let v: Vec<&[u8]> = split(b"//a/./b//..//").collect();
        assert_eq!(v, [&b"a"[..], b"b", b".."]);
        assert_eq!(image_path(&[]), "/");
        assert_eq!(image_path(&["a".into(), "b".into()]), "/a/b");
    }
}

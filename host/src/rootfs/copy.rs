//! COPY and ADD into the build root, with BuildKit's semantics (the
//! Dockerfile frontend's `dispatchCopy` and fsutil's `copy.Copy`), knowing
//! exactly what changed.
//!
//! # Sources
//!
//! - A path is taken from the root of the source (the build context, or the
//!   `--from` stage or image): a leading `/` and `..` are clamped to it, a
//!   trailing `/` is ignored.
//! - Wildcards (`*`, `?`, `[…]`, `\` escapes) follow Go's `filepath.Match`
//!   per path segment. As in BuildKit a wildcard that matches nothing copies
//!   nothing (no error); a literal path that does not exist is an error
//!   naming it.
//! - `.dockerignore`d context paths are invisible, to wildcards too.
//! - The source path's symlinks, the final one included, are followed inside
//!   the source. In the build context a symlink whose target leaves the
//!   context (an absolute target, or `..` above the context root) is an
//!   error; the host file is never read. In a `--from` root, symlinks are
//!   resolved chroot-style, as the image would see them. Symlinks *inside*
//!   a copied directory are copied as symlinks, never followed.
//! - A directory source copies its contents. The top destination directory
//!   keeps its own metadata (or, when created, is 0755 owned by `--chown`);
//!   every copied entry below gets the source's metadata.
//!
//! # Metadata
//!
//! Modes and modification times come from the source. Owners: `--chown`
//! when given; otherwise 0:0 for context files (BuildKit resets the
//! context's owners) and the source owners for `--from`. `--chmod` applies
//! to every copied file and directory (not to created parents, nor to
//! archive contents). Parents of the destination that do not exist are
//! created 0755 and owned by `--chown` (or 0:0), like fsutil's `MkdirAll`.
//! Hard links among copied files stay hard links.
//!
//! # ADD
//!
//! A local source file that is a tar archive (plain, gzip, bzip2, xz or
//! zstd, recognized by content) is extracted into the destination directory
//! like `tar -x` (union with what is there; owners from the tar unless
//! `--chown`; modes and times from the tar); `--unpack=false` copies it as
//! a file. URL and Git sources need the network, which this module never
//! uses: the build fetches them into a directory and copies them from there
//! as context sources; given here they are [`CopyError::NotSupported`].
//!
//! # Change set
//!
//! [`ChangeSet`] lists every path created or modified (real paths, with
//! symlinks of the destination resolved), with all their ancestor
//! directories, parents first: what a layer for the step must hold. No walk
//! of the root is needed.

use super::walk::{self, Name};
use super::{Root, RootfsError, archive, unpack};
use crate::dockerfile::glob::{self, BadPattern};
use crate::dockerfile::ignore::{IgnoreError, IgnoreMatcher};
use crate::plan::instruction::{Copy, Source};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use rustix::fs::{AtFlags, FileType, Gid, Mode, Stat, Timespec, Timestamps, Uid};
use rustix::io::Errno;
use std::collections::{BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

/// Where COPY reads from: the build context (a host directory, with its
/// `.dockerignore`), or another stage's or image's root.
#[derive(Debug, Clone, Copy)]
pub enum CopySource<'a> {
    /// The build context.
    Context {
        /// The context directory.
        dir: &'a Dir,
        /// Its `.dockerignore`.
        ignore: &'a IgnoreMatcher,
    },
    /// The root of another stage or of an image (`--from`).
    Root(&'a Root),
}

/// One COPY or ADD to execute.
#[derive(Debug, Clone, Copy)]
pub struct CopyRequest<'a> {
    /// The instruction.
    pub copy: &'a Copy,
    /// Where its sources are read.
    pub source: CopySource<'a>,
    /// The stage's WORKDIR, for a relative destination.
    pub workdir: &'a str,
    /// `--chown`, resolved by the caller against the *target* root.
    pub chown: Option<(u32, u32)>,
    /// The time given to files that have no source time (heredocs), seconds
    /// since the epoch.
    pub mtime_now: i64,
}

/// What a COPY or ADD changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Image paths (`/a/b`) created or modified, with their ancestor
    /// directories, parents first, without `/` itself.
    pub paths: Vec<String>,
}

/// Errors of COPY and ADD. Each names the source as written; the executor
/// adds the instruction's line.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A literal source that does not exist (or is `.dockerignore`d).
    #[error("{src}: not found")]
    NotFound {
        /// The source as written.
        src: String,
    },
    /// A context symlink whose target leaves the context.
    #[error("{src}: the symlink {link} points outside the build context")]
    OutsideContext {
        /// The source as written.
        src: String,
        /// The symlink, relative to the context.
        link: String,
    },
    /// Too many symlinks while resolving a source.
    #[error("{src}: too many levels of symbolic links")]
    SymlinkLoop {
        /// The source as written.
        src: String,
    },
    /// A malformed wildcard.
    #[error("{src}: invalid wildcard pattern")]
    BadPattern {
        /// The source as written.
        src: String,
        /// Why.
        #[source]
        source: BadPattern,
    },
    /// A malformed `--exclude` pattern.
    #[error("invalid --exclude pattern")]
    Exclude(#[source] IgnoreError),
    /// Several sources need a directory destination.
    #[error(
        "when using {keyword} with more than one source file, the destination must be a directory and end with a /"
    )]
    MultipleSources {
        /// `COPY` or `ADD`.
        keyword: &'static str,
    },
    /// A source kind this module does not fetch.
    #[error("{src}: {what} sources are not supported yet")]
    NotSupported {
        /// The source as written.
        src: String,
        /// `URL` or `Git`.
        what: &'static str,
    },
    /// The destination has the wrong kind of entry.
    #[error("cannot copy {src} to {dest}: {reason}")]
    Conflict {
        /// The source as written.
        src: String,
        /// The destination path in the image.
        dest: String,
        /// What is in the way.
        reason: &'static str,
    },
    /// Reading the source failed.
    #[error("cannot {action} {path} while copying {src}")]
    Source {
        /// The source as written.
        src: String,
        /// The path in the source.
        path: String,
        /// What was being done.
        action: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing into the build root failed.
    #[error("cannot {action} {path} in the build root while copying {src}")]
    Dest {
        /// The source as written.
        src: String,
        /// The image path.
        path: String,
        /// What was being done.
        action: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A build root operation failed (resolving the destination, creating
    /// its parents, extracting an archive).
    #[error("cannot copy {src}")]
    Root {
        /// The source as written.
        src: String,
        /// Why.
        #[source]
        source: RootfsError,
    },
}

/// Executes one COPY or ADD into `root` and returns what changed.
pub fn copy_into(root: &Root, req: &CopyRequest<'_>) -> Result<ChangeSet, CopyError> {
    let c = req.copy;
    let keyword = if c.add { "ADD" } else { "COPY" };
    for s in &c.sources {
        match s {
            Source::Url(u) => {
                return Err(CopyError::NotSupported {
                    src: u.clone(),
                    what: "URL",
                });
            }
            Source::Git(g) => {
                return Err(CopyError::NotSupported {
                    src: g.clone(),
                    what: "Git",
                });
            }
            _ => {}
        }
    }
    let exclude = if c.exclude.is_empty() {
        None
    } else {
        Some(IgnoreMatcher::from_lines(&c.exclude).map_err(CopyError::Exclude)?)
    };
    let (dest, dest_as_dir) = dest_path(req.workdir, &c.dest);
    let src = match req.source {
        CopySource::Context { dir, ignore } => Src {
            dir,
            ignore: (!ignore.is_empty()).then_some(ignore),
            context: true,
        },
        CopySource::Root(r) => Src {
            dir: r.dir(),
            ignore: None,
            context: false,
        },
    };
    let mut cx = Copier {
        root,
        req,
        src,
        exclude,
        changes: BTreeSet::new(),
        inodes: HashMap::new(),
        chown_ok: !root.options().unprivileged,
        cur: String::new(),
    };

    // Resolve every source before writing anything.
    let mut items = Vec::new();
    for s in &c.sources {
        match s {
            Source::Path(p) if c.parents => items.push(Item::Parents(p.clone())),
            Source::Path(p) => cx.expand(p, &mut items)?,
            Source::Heredoc(i) => items.push(Item::Heredoc(*i)),
            Source::Url(_) | Source::Git(_) => {}
        }
    }
    if c.sources.len() > 1 && !dest_as_dir {
        return Err(CopyError::MultipleSources { keyword });
    }
    let dest_is_dir = dest_as_dir || cx.is_existing_dir(&dest);
    if items.len() > 1 && !dest_is_dir {
        return Err(CopyError::MultipleSources { keyword });
    }

    for item in items {
        match item {
            Item::Heredoc(i) => {
                let h = &c.heredocs[i];
                cx.cur = format!("<<{}", h.name);
                let target = if dest_is_dir {
                    join_image(&dest, &h.name)
                } else {
                    dest.clone()
                };
                cx.heredoc(&target, h.content.as_bytes())?;
            }
            Item::Parents(p) => {
                cx.cur = p.clone();
                cx.parents(&p, &dest)?;
            }
            Item::Path {
                src: written,
                real,
                name,
            } => {
                cx.cur = written;
                cx.path_item(&real, &name, &dest, dest_is_dir)?;
            }
        }
    }
    Ok(cx.finish())
}

/// The absolute destination and whether it names a directory (trailing
/// `/`, or `.`/`..` as its last component).
fn dest_path(workdir: &str, dest: &str) -> (String, bool) {
    let as_dir = dest.ends_with('/')
        || dest == "."
        || dest == ".."
        || dest.ends_with("/.")
        || dest.ends_with("/..");
    let abs = if dest.starts_with('/') {
        dest.to_owned()
    } else {
        join_image(if workdir.is_empty() { "/" } else { workdir }, dest)
    };
    (abs, as_dir)
}

fn join_image(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// BuildKit's `containsWildcards`: `*`, `?` or `[`, `\` escaping the next
/// character.
fn contains_wildcards(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'*' | b'?' | b'[' => return true,
            b'\\' => i += 1,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Lexical clean of a source path taken from the source root: `.` dropped,
/// `..` never above the root.
fn clean_components(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_owned()),
        }
    }
    out
}

fn rel_string(comps: &[OsString]) -> String {
    comps
        .iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A resolved source.
enum Item {
    /// A path in the source: `real` (symlinks followed), copied as `name`.
    Path {
        src: String,
        real: Vec<OsString>,
        name: OsString,
    },
    /// A heredoc, by index.
    Heredoc(usize),
    /// A `--parents` source, resolved while copying.
    Parents(String),
}

/// The source filesystem.
struct Src<'a> {
    dir: &'a Dir,
    ignore: Option<&'a IgnoreMatcher>,
    context: bool,
}

impl Src<'_> {
    fn ignored(&self, rel: &str, is_dir: bool) -> bool {
        match self.ignore {
            Some(m) if m.is_excluded(rel) => !is_dir || m.can_skip_dir(rel),
            _ => false,
        }
    }
}

/// Whether `rel` is excluded by `m` (a directory only when nothing below
/// it can be re-included).
fn excluded(m: Option<&IgnoreMatcher>, rel: &str, is_dir: bool) -> bool {
    match m {
        Some(m) if m.is_excluded(rel) => !is_dir || m.can_skip_dir(rel),
        _ => false,
    }
}

fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

struct Copier<'a> {
    root: &'a Root,
    req: &'a CopyRequest<'a>,
    src: Src<'a>,
    exclude: Option<IgnoreMatcher>,
    /// Real paths changed, as components.
    changes: BTreeSet<Vec<OsString>>,
    /// Source inode → the first destination written for it.
    inodes: HashMap<(u64, u64), Vec<OsString>>,
    chown_ok: bool,
    /// The source being copied, for messages.
    cur: String,
}

impl Copier<'_> {
    fn finish(self) -> ChangeSet {
        let mut all: BTreeSet<Vec<OsString>> = BTreeSet::new();
        for c in self.changes {
            for n in 1..=c.len() {
                all.insert(c[..n].to_vec());
            }
        }
        ChangeSet {
            paths: all.iter().map(|c| walk::image_path(c)).collect(),
        }
    }

    fn record_image_path(&mut self, p: &str) {
        let comps: Vec<OsString> = walk::split(p.as_bytes())
            .map(|c| OsStr::from_bytes(c).to_os_string())
            .collect();
        if !comps.is_empty() {
            self.changes.insert(comps);
        }
    }

    fn src_err(&self, path: &[OsString], action: &'static str) -> impl Fn(io::Error) -> CopyError {
        let src = self.cur.clone();
        let path = format!("/{}", rel_string(path));
        move |source| CopyError::Source {
            src: src.clone(),
            path: path.clone(),
            action,
            source,
        }
    }

    fn dest_err(&self, path: &[OsString], action: &'static str) -> impl Fn(io::Error) -> CopyError {
        let src = self.cur.clone();
        let path = walk::image_path(path);
        move |source| CopyError::Dest {
            src: src.clone(),
            path: path.clone(),
            action,
            source,
        }
    }

    fn root_err(&self) -> impl Fn(RootfsError) -> CopyError {
        let src = self.cur.clone();
        move |source| CopyError::Root {
            src: src.clone(),
            source,
        }
    }

    fn conflict(&self, dest: &[OsString], reason: &'static str) -> CopyError {
        CopyError::Conflict {
            src: self.cur.clone(),
            dest: walk::image_path(dest),
            reason,
        }
    }

    fn is_existing_dir(&self, dest: &str) -> bool {
        let Ok(real) = self.root.resolve(dest) else {
            return false;
        };
        walk::open_plain_dir(self.root.dir(), &real)
            .ok()
            .flatten()
            .is_some()
    }

    // ------------------------------------------------------------ sources

    /// Resolves `path` (cleaned components) in the source, following every
    /// symlink. `Ok(None)` when something is missing.
    fn resolve_src(
        &self,
        written: &str,
        path: &[String],
    ) -> Result<Option<Vec<OsString>>, CopyError> {
        let mut pending: Vec<OsString> = path.iter().rev().map(OsString::from).collect();
        let mut names: Vec<OsString> = Vec::new();
        let mut links = 0u32;
        while let Some(c) = pending.pop() {
            let b = c.as_bytes();
            if b.is_empty() || b == b"." {
                continue;
            }
            if b == b".." {
                if names.pop().is_none() && self.src.context {
                    return Err(CopyError::OutsideContext {
                        src: written.to_owned(),
                        link: rel_string(&names),
                    });
                }
                continue;
            }
            let Some(parent) = walk::open_plain_dir(self.src.dir, &walk::rel_path(&names))
                .map_err(self.src_err(&names, "open"))?
            else {
                return Ok(None);
            };
            let Some(name) = Name::new(&c) else {
                return Ok(None);
            };
            let Some(st) = walk::lstat(&parent, name).map_err(self.src_err(&names, "inspect"))?
            else {
                return Ok(None);
            };
            if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                names.push(c);
                continue;
            }
            links += 1;
            if links > walk::MAX_SYMLINKS {
                return Err(CopyError::SymlinkLoop {
                    src: written.to_owned(),
                });
            }
            let mut link_path = names.clone();
            link_path.push(c.clone());
            let target = rustix::fs::readlinkat(&parent, name.as_os_str(), Vec::new())
                .map_err(|e| self.src_err(&link_path, "read the link")(e.into()))?;
            let target = target.as_bytes();
            if target.first() == Some(&b'/') {
                if self.src.context {
                    return Err(CopyError::OutsideContext {
                        src: written.to_owned(),
                        link: rel_string(&link_path),
                    });
                }
                names.clear();
            }
            // `..` in a target that climbs above the context is caught above
            // (it pops an empty `names`).
            if self.src.context {
                let depth = names.len();
                let mut d = depth as i64;
                for part in walk::split(target) {
                    if part == b".." {
                        d -= 1;
                    } else {
                        d += 1;
                    }
                    if d < 0 {
                        return Err(CopyError::OutsideContext {
                            src: written.to_owned(),
                            link: rel_string(&link_path),
                        });
                    }
                }
            }
            pending.extend(
                walk::split(target)
                    .rev()
                    .map(|p| OsStr::from_bytes(p).to_os_string()),
            );
        }
        if let Some(ig) = self.src.ignore
            && !names.is_empty()
            && ig.is_excluded(&rel_string(&names))
        {
            return Ok(None);
        }
        Ok(Some(names))
    }

    /// Expands one source path (wildcards included) into items.
    fn expand(&self, written: &str, items: &mut Vec<Item>) -> Result<(), CopyError> {
        let comps = clean_components(written);
        let split = comps.iter().position(|c| contains_wildcards(c));
        let Some(split) = split else {
            let not_found = || CopyError::NotFound {
                src: written.to_owned(),
            };
            if let Some(ig) = self.src.ignore
                && !comps.is_empty()
                && ig.is_excluded(&comps.join("/"))
            {
                return Err(not_found());
            }
            let real = self.resolve_src(written, &comps)?.ok_or_else(not_found)?;
            let name = comps
                .last()
                .map(OsString::from)
                .unwrap_or_else(|| OsString::from("."));
            items.push(Item::Path {
                src: written.to_owned(),
                real,
                name,
            });
            return Ok(());
        };
        for seg in &comps[split..] {
            glob::validate(seg).map_err(|source| CopyError::BadPattern {
                src: written.to_owned(),
                source,
            })?;
        }
        let Some(base) = self.resolve_src(written, &comps[..split])? else {
            return Ok(());
        };
        let mut found = Vec::new();
        self.match_segments(written, &base, &comps[split..], &mut Vec::new(), &mut found)?;
        for (real, rel) in found {
            let name = real.last().cloned().unwrap_or_default();
            let mut real_src = base.clone();
            real_src.extend(real);
            // A symlink match is followed like a literal source.
            let comps: Vec<String> = real_src
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            let Some(real) = self.resolve_src(written, &comps)? else {
                continue;
            };
            let st_dir = self.stat_src(&real)?.is_some_and(|s| is_dir(&s));
            if excluded(self.exclude.as_ref(), &rel, st_dir) {
                continue;
            }
            items.push(Item::Path {
                src: written.to_owned(),
                real,
                name,
            });
        }
        Ok(())
    }

    /// Matches `segs` below the real directory `base` (+ `rel`), depth first
    /// in name order; a matched directory is not descended into.
    fn match_segments(
        &self,
        written: &str,
        base: &[OsString],
        segs: &[String],
        rel: &mut Vec<OsString>,
        found: &mut Vec<(Vec<OsString>, String)>,
    ) -> Result<(), CopyError> {
        let Some((seg, rest)) = segs.split_first() else {
            return Ok(());
        };
        let mut here = base.to_vec();
        here.extend(rel.iter().cloned());
        let Some(dir) = walk::open_plain_dir(self.src.dir, &walk::rel_path(&here))
            .map_err(self.src_err(&here, "open"))?
        else {
            return Ok(());
        };
        for (name, st) in sorted_entries(&dir).map_err(self.src_err(&here, "list"))? {
            let name_s = name.to_string_lossy();
            let m = glob::go_match(seg, &name_s).map_err(|source| CopyError::BadPattern {
                src: written.to_owned(),
                source,
            })?;
            if !m {
                continue;
            }
            let mut full = here.clone();
            full.push(name.clone());
            if self.src.ignored(&rel_string(&full), is_dir(&st)) {
                continue;
            }
            rel.push(name.clone());
            if rest.is_empty() {
                found.push((rel.clone(), rel_string(rel)));
            } else if is_dir(&st) {
                self.match_segments(written, base, rest, rel, found)?;
            }
            rel.pop();
        }
        Ok(())
    }

    /// `lstat` of a real source path (`None` if absent).
    fn stat_src(&self, real: &[OsString]) -> Result<Option<Stat>, CopyError> {
        let Some((last, parent)) = real.split_last() else {
            return rustix::fs::fstat(self.src.dir)
                .map(Some)
                .map_err(|e| self.src_err(real, "inspect")(e.into()));
        };
        let Some(pdir) = walk::open_plain_dir(self.src.dir, &walk::rel_path(parent))
            .map_err(self.src_err(real, "open"))?
        else {
            return Ok(None);
        };
        let Some(name) = Name::new(last) else {
            return Ok(None);
        };
        walk::lstat(&pdir, name).map_err(self.src_err(real, "inspect"))
    }

    // ------------------------------------------------------- destinations

    /// Creates `dir` and its missing parents (0755, `--chown`), recording
    /// what was created; returns the handle and real components.
    fn ensure_dir(&mut self, dir: &str) -> Result<(Dir, Vec<OsString>), CopyError> {
        let (resolved, created) = self
            .root
            .mkdir_all_handle(dir, self.req.chown)
            .map_err(|e| match e {
                RootfsError::Resolve {
                    source: walk::ResolveError::NotADirectory { at },
                    ..
                } => CopyError::Conflict {
                    src: self.cur.clone(),
                    dest: at,
                    reason: "a parent of the destination is not a directory",
                },
                e => self.root_err()(e),
            })?;
        for c in created {
            self.record_image_path(&c);
        }
        Ok((resolved.dir, resolved.components))
    }

    /// The parent handle and final name of a file destination, its parents
    /// created. The final component is resolved if it is a symlink.
    fn place(&mut self, target: &str) -> Result<(Dir, Vec<OsString>), CopyError> {
        let real = self.root.resolve(target).map_err(self.root_err())?;
        let comps: Vec<OsString> = walk::split(real.as_os_str().as_bytes())
            .map(|c| OsStr::from_bytes(c).to_os_string())
            .collect();
        if comps.is_empty() {
            return Err(self.conflict(&comps, "the destination is the root directory"));
        }
        let parent = walk::image_path(&comps[..comps.len() - 1]);
        let (dir, mut pcomps) = self.ensure_dir(&parent)?;
        pcomps.push(comps[comps.len() - 1].clone());
        Ok((dir, pcomps))
    }

    fn path_item(
        &mut self,
        real: &[OsString],
        name: &OsStr,
        dest: &str,
        dest_is_dir: bool,
    ) -> Result<(), CopyError> {
        let st = self.stat_src(real)?.ok_or_else(|| CopyError::NotFound {
            src: self.cur.clone(),
        })?;
        if is_dir(&st) {
            let sdir = walk::open_plain_dir(self.src.dir, &walk::rel_path(real))
                .map_err(self.src_err(real, "open"))?
                .ok_or_else(|| CopyError::NotFound {
                    src: self.cur.clone(),
                })?;
            let (ddir, dcomps) = self.ensure_dir(dest)?;
            return self.copy_children(&sdir, real, "", &ddir, &dcomps);
        }
        let (last, parent) = real.split_last().expect("a file is not the source root");
        let sparent = walk::open_plain_dir(self.src.dir, &walk::rel_path(parent))
            .map_err(self.src_err(real, "open"))?
            .ok_or_else(|| CopyError::NotFound {
                src: self.cur.clone(),
            })?;
        let sname = Name::new(last).expect("a resolved component");
        if self.req.copy.add
            && self.req.copy.unpack != Some(false)
            && FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
        {
            let mut f = sparent
                .open_with(
                    sname,
                    OpenOptions::new().read(true).custom_flags(nofollow()),
                )
                .map_err(self.src_err(real, "open"))?;
            if let Some(format) = archive::sniff(&mut f).map_err(self.src_err(real, "read"))? {
                let (_, dcomps) = self.ensure_dir(dest)?;
                let reader = archive::decoder(format, f).map_err(self.src_err(real, "read"))?;
                let written = unpack::extract(self.root, reader, dcomps, self.req.chown)
                    .map_err(self.root_err())?;
                for p in written {
                    let comps: Vec<OsString> = p.iter().map(OsStr::to_os_string).collect();
                    if !comps.is_empty() {
                        self.changes.insert(comps);
                    }
                }
                return Ok(());
            }
        }
        let target = if dest_is_dir {
            join_image(dest, &name.to_string_lossy())
        } else {
            dest.to_owned()
        };
        let (ddir, dcomps) = self.place(&target)?;
        let dname = dcomps.last().cloned().expect("placed");
        self.copy_node(&sparent, sname, &st, real, "", &ddir, &dname, dcomps)
    }

    fn heredoc(&mut self, target: &str, content: &[u8]) -> Result<(), CopyError> {
        let (ddir, dcomps) = self.place(target)?;
        let dname = dcomps.last().cloned().expect("placed");
        let name = Name::new(&dname).expect("a resolved component");
        self.clear_for_file(&ddir, name, &dcomps)?;
        let mut f = ddir
            .open_with(
                name,
                OpenOptions::new().write(true).create_new(true).mode(0o600),
            )
            .map_err(self.dest_err(&dcomps, "create"))?;
        f.write_all(content)
            .map_err(self.dest_err(&dcomps, "write"))?;
        let mode = self
            .req
            .copy
            .chmod
            .as_ref()
            .map_or(0o644, |m| m.apply(0o644, false) & 0o7777);
        let owner = self.req.chown.unwrap_or((0, 0));
        self.chown_fd(&f, owner, &dcomps)?;
        rustix::fs::fchmod(&f, Mode::from(mode))
            .map_err(|e| self.dest_err(&dcomps, "chmod")(e.into()))?;
        let t = Timespec {
            tv_sec: self.req.mtime_now,
            tv_nsec: 0,
        };
        rustix::fs::futimens(&f, &times(t))
            .map_err(|e| self.dest_err(&dcomps, "set times of")(e.into()))?;
        self.changes.insert(dcomps);
        Ok(())
    }

    // ------------------------------------------------------------ --parents

    fn parents(&mut self, written: &str, dest: &str) -> Result<(), CopyError> {
        let (pivot, pattern) = match written.split_once("/./") {
            Some((p, rest)) => (p.to_owned(), rest.to_owned()),
            None => ("/".to_owned(), written.to_owned()),
        };
        let pattern: Vec<String> = clean_components(&pattern);
        let pivot_comps = clean_components(&pivot);
        for seg in &pattern {
            if seg != "**" {
                glob::validate(seg).map_err(|source| CopyError::BadPattern {
                    src: written.to_owned(),
                    source,
                })?;
            }
        }
        let required =
            !contains_wildcards(&pivot) && !pattern.iter().any(|s| contains_wildcards(s));
        let not_found = || CopyError::NotFound {
            src: written.to_owned(),
        };
        let Some(base) = self.resolve_src(written, &pivot_comps)? else {
            return if required { Err(not_found()) } else { Ok(()) };
        };
        let (ddir, dcomps) = self.ensure_dir(dest)?;
        let Some(sdir) = walk::open_plain_dir(self.src.dir, &walk::rel_path(&base))
            .map_err(self.src_err(&base, "open"))?
        else {
            return if required { Err(not_found()) } else { Ok(()) };
        };
        let mut matched = false;
        self.parents_walk(
            &sdir,
            &base,
            &pattern,
            &mut Vec::new(),
            &ddir,
            &dcomps,
            &mut matched,
        )?;
        if required && !matched {
            return Err(not_found());
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments, reason = "the walk's state, passed down")]
    fn parents_walk(
        &mut self,
        sdir: &Dir,
        sreal: &[OsString],
        pattern: &[String],
        rel: &mut Vec<(OsString, Stat)>,
        droot: &Dir,
        droot_comps: &[OsString],
        matched: &mut bool,
    ) -> Result<(), CopyError> {
        for (name, st) in sorted_entries(sdir).map_err(self.src_err(sreal, "list"))? {
            let mut real = sreal.to_vec();
            real.push(name.clone());
            let dir = is_dir(&st);
            if self.src.ignored(&rel_string(&real), dir) {
                continue;
            }
            let mut path: Vec<String> = rel
                .iter()
                .map(|(n, _)| n.to_string_lossy().into_owned())
                .collect();
            path.push(name.to_string_lossy().into_owned());
            if excluded(self.exclude.as_ref(), &path.join("/"), dir) {
                continue;
            }
            match match_parents(pattern, &path) {
                PMatch::No => {}
                PMatch::Partial => {
                    if dir {
                        let sub =
                            walk::open_dir_nofollow(sdir, Name::new(&name).expect("a listed name"))
                                .map_err(self.src_err(&real, "open"))?;
                        rel.push((name.clone(), st));
                        self.parents_walk(&sub, &real, pattern, rel, droot, droot_comps, matched)?;
                        rel.pop();
                    }
                }
                PMatch::Full => {
                    *matched = true;
                    // The parents, created with the source's metadata.
                    let mut ddir = droot
                        .try_clone()
                        .map_err(self.dest_err(droot_comps, "open"))?;
                    let mut dcomps = droot_comps.to_vec();
                    for (pname, pst) in rel.iter() {
                        dcomps.push(pname.clone());
                        let n = Name::new(pname).expect("a listed name");
                        match walk::lstat(&ddir, n).map_err(self.dest_err(&dcomps, "inspect"))? {
                            Some(s) if is_dir(&s) => {}
                            Some(_) => {
                                return Err(self.conflict(&dcomps, "it is not a directory"));
                            }
                            None => {
                                rustix::fs::mkdirat(&ddir, n.as_os_str(), Mode::from(0o700))
                                    .map_err(|e| self.dest_err(&dcomps, "create")(e.into()))?;
                                let d = walk::open_dir_nofollow(&ddir, n)
                                    .map_err(self.dest_err(&dcomps, "open"))?;
                                self.apply_meta_fd(&d, pst, true, &dcomps)?;
                                self.changes.insert(dcomps.clone());
                            }
                        }
                        ddir = walk::open_dir_nofollow(&ddir, n)
                            .map_err(self.dest_err(&dcomps, "open"))?;
                    }
                    dcomps.push(name.clone());
                    let excl_rel = path[..path.len() - 1].join("/");
                    self.copy_node(
                        sdir,
                        Name::new(&name).expect("a listed name"),
                        &st,
                        &real,
                        &excl_rel,
                        &ddir,
                        &name,
                        dcomps,
                    )?;
                }
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ copying

    /// Copies the entries of the source directory `sdir` (real path
    /// `sreal`) into `ddir` (real components `dcomps`).
    fn copy_children(
        &mut self,
        sdir: &Dir,
        sreal: &[OsString],
        excl_rel: &str,
        ddir: &Dir,
        dcomps: &[OsString],
    ) -> Result<(), CopyError> {
        for (name, st) in sorted_entries(sdir).map_err(self.src_err(sreal, "list"))? {
            let mut real = sreal.to_vec();
            real.push(name.clone());
            let dir = is_dir(&st);
            if self.src.ignored(&rel_string(&real), dir) {
                continue;
            }
            let child_rel = if excl_rel.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{excl_rel}/{}", name.to_string_lossy())
            };
            if excluded(self.exclude.as_ref(), &child_rel, dir) {
                continue;
            }
            let mut d = dcomps.to_vec();
            d.push(name.clone());
            self.copy_node(
                sdir,
                Name::new(&name).expect("a listed name"),
                &st,
                &real,
                excl_rel,
                ddir,
                &name,
                d,
            )?;
        }
        Ok(())
    }

    /// Copies one entry (recursively for a directory) with its metadata.
    /// `excl_rel` is the `--exclude` path of its parent.
    #[allow(clippy::too_many_arguments, reason = "source and destination sides")]
    fn copy_node(
        &mut self,
        sdir: &Dir,
        sname: Name<'_>,
        st: &Stat,
        sreal: &[OsString],
        excl_rel: &str,
        ddir: &Dir,
        dname: &OsStr,
        dcomps: Vec<OsString>,
    ) -> Result<(), CopyError> {
        let dn = Name::new(dname).ok_or_else(|| self.conflict(&dcomps, "not a plain name"))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                match walk::lstat(ddir, dn).map_err(self.dest_err(&dcomps, "inspect"))? {
                    Some(s) if is_dir(&s) => {}
                    Some(_) => {
                        return Err(
                            self.conflict(&dcomps, "cannot copy a directory onto a non-directory")
                        );
                    }
                    None => rustix::fs::mkdirat(ddir, dn.as_os_str(), Mode::from(0o700))
                        .map_err(|e| self.dest_err(&dcomps, "create")(e.into()))?,
                }
                let sub_d =
                    walk::open_dir_nofollow(ddir, dn).map_err(self.dest_err(&dcomps, "open"))?;
                let sub_s =
                    walk::open_dir_nofollow(sdir, sname).map_err(self.src_err(sreal, "open"))?;
                let child_rel = if excl_rel.is_empty() {
                    dname.to_string_lossy().into_owned()
                } else {
                    format!("{excl_rel}/{}", sname.as_os_str().to_string_lossy())
                };
                self.copy_children(&sub_s, sreal, &child_rel, &sub_d, &dcomps)?;
                self.apply_meta_fd(&sub_d, st, true, &dcomps)?;
            }
            FileType::RegularFile => {
                self.clear_for_file(ddir, dn, &dcomps)?;
                if st.st_nlink > 1
                    && let Some(first) = self.inodes.get(&(st.st_dev, st.st_ino)).cloned()
                {
                    let (fl, fp) = first.split_last().expect("a file path");
                    let fdir = walk::open_plain_dir(self.root.dir(), &walk::rel_path(fp))
                        .map_err(self.dest_err(&first, "open"))?
                        .ok_or_else(|| self.conflict(&first, "the hard link target vanished"))?;
                    rustix::fs::linkat(&fdir, fl, ddir, dn.as_os_str(), AtFlags::empty())
                        .map_err(|e| self.dest_err(&dcomps, "create hard link")(e.into()))?;
                    self.changes.insert(dcomps);
                    return Ok(());
                }
                let mut from = sdir
                    .open_with(
                        sname,
                        OpenOptions::new().read(true).custom_flags(nofollow()),
                    )
                    .map_err(self.src_err(sreal, "open"))?;
                let mut to = ddir
                    .open_with(
                        dn,
                        OpenOptions::new().write(true).create_new(true).mode(0o600),
                    )
                    .map_err(self.dest_err(&dcomps, "create"))?;
                io::copy(&mut from, &mut to).map_err(self.dest_err(&dcomps, "write"))?;
                self.apply_meta_fd(&to, st, false, &dcomps)?;
                if st.st_nlink > 1 {
                    self.inodes.insert((st.st_dev, st.st_ino), dcomps.clone());
                }
            }
            FileType::Symlink => {
                self.clear_for_file(ddir, dn, &dcomps)?;
                let target = rustix::fs::readlinkat(sdir, sname.as_os_str(), Vec::new())
                    .map_err(|e| self.src_err(sreal, "read the link")(e.into()))?;
                rustix::fs::symlinkat(target.as_c_str(), ddir, dn.as_os_str())
                    .map_err(|e| self.dest_err(&dcomps, "create symlink")(e.into()))?;
                let owner = self.owner_of(st);
                if self.chown_ok {
                    match rustix::fs::chownat(
                        ddir,
                        dn.as_os_str(),
                        Some(Uid::from_raw(owner.0)),
                        Some(Gid::from_raw(owner.1)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    ) {
                        Ok(()) => {}
                        Err(e) => self.chown_failed(e, &dcomps)?,
                    }
                }
                rustix::fs::utimensat(
                    ddir,
                    dn.as_os_str(),
                    &times(mtime_of(st)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.dest_err(&dcomps, "set times of")(e.into()))?;
            }
            ft @ (FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice) => {
                self.clear_for_file(ddir, dn, &dcomps)?;
                match rustix::fs::mknodat(ddir, dn.as_os_str(), ft, Mode::from(0o600), st.st_rdev) {
                    Ok(()) => {}
                    Err(Errno::PERM) => {
                        tracing::warn!(
                            path = %walk::image_path(&dcomps),
                            "device node not copied: not permitted"
                        );
                        return Ok(());
                    }
                    Err(e) => return Err(self.dest_err(&dcomps, "create node")(e.into())),
                }
                let f = walk::open_plain_dir(
                    self.root.dir(),
                    &walk::rel_path(&dcomps[..dcomps.len() - 1]),
                )
                .map_err(self.dest_err(&dcomps, "open"))?
                .ok_or_else(|| self.conflict(&dcomps, "its directory vanished"))?;
                let owner = self.owner_of(st);
                if self.chown_ok
                    && let Err(e) = rustix::fs::chownat(
                        &f,
                        dn.as_os_str(),
                        Some(Uid::from_raw(owner.0)),
                        Some(Gid::from_raw(owner.1)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                {
                    self.chown_failed(e, &dcomps)?;
                }
                rustix::fs::chmodat(
                    &f,
                    dn.as_os_str(),
                    Mode::from(self.mode_of(st, false)),
                    AtFlags::empty(),
                )
                .map_err(|e| self.dest_err(&dcomps, "chmod")(e.into()))?;
            }
            _ => {
                tracing::warn!(
                    path = %walk::image_path(&dcomps),
                    "socket not copied: not supported"
                );
                return Ok(());
            }
        }
        self.changes.insert(dcomps);
        Ok(())
    }

    /// Makes room for a non-directory at `name`: a directory there is an
    /// error, anything else is removed.
    fn clear_for_file(
        &self,
        dir: &Dir,
        name: Name<'_>,
        dcomps: &[OsString],
    ) -> Result<(), CopyError> {
        match walk::lstat(dir, name).map_err(self.dest_err(dcomps, "inspect"))? {
            None => Ok(()),
            Some(s) if is_dir(&s) => {
                Err(self.conflict(dcomps, "cannot replace a directory with a file"))
            }
            Some(_) => dir
                .remove_file(name)
                .map_err(self.dest_err(dcomps, "replace")),
        }
    }

    fn owner_of(&self, st: &Stat) -> (u32, u32) {
        match self.req.chown {
            Some(o) => o,
            None if self.src.context => (0, 0),
            None => (st.st_uid, st.st_gid),
        }
    }

    fn mode_of(&self, st: &Stat, dir: bool) -> u32 {
        let mode = st.st_mode & 0o7777;
        match &self.req.copy.chmod {
            Some(m) => m.apply(mode, dir) & 0o7777,
            None => mode,
        }
    }

    /// Owner, mode and times of a copied entry, in that order (chown clears
    /// set-id bits).
    fn apply_meta_fd(
        &mut self,
        fd: impl std::os::fd::AsFd,
        st: &Stat,
        dir: bool,
        dcomps: &[OsString],
    ) -> Result<(), CopyError> {
        let owner = self.owner_of(st);
        self.chown_fd(&fd, owner, dcomps)?;
        rustix::fs::fchmod(&fd, Mode::from(self.mode_of(st, dir)))
            .map_err(|e| self.dest_err(dcomps, "chmod")(e.into()))?;
        rustix::fs::futimens(&fd, &times(mtime_of(st)))
            .map_err(|e| self.dest_err(dcomps, "set times of")(e.into()))?;
        Ok(())
    }

    fn chown_fd(
        &mut self,
        fd: impl std::os::fd::AsFd,
        (uid, gid): (u32, u32),
        dcomps: &[OsString],
    ) -> Result<(), CopyError> {
        if !self.chown_ok {
            return Ok(());
        }
        match rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))) {
            Ok(()) => Ok(()),
            Err(e) => self.chown_failed(e, dcomps),
        }
    }

    fn chown_failed(&mut self, e: Errno, dcomps: &[OsString]) -> Result<(), CopyError> {
        if matches!(e, Errno::PERM | Errno::INVAL) {
            tracing::warn!(
                path = %walk::image_path(dcomps),
                "cannot set owners of copied files: not permitted; keeping the current ones"
            );
            self.chown_ok = false;
            Ok(())
        } else {
            Err(self.dest_err(dcomps, "chown")(e.into()))
        }
    }
}

/// `--parents` pattern matching (fsutil's include patterns): per segment
/// with Go `filepath.Match`, `**` standing for any number of segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PMatch {
    /// Cannot match this path or anything below it.
    No,
    /// Something below this directory may match.
    Partial,
    /// This path matches: copy it whole.
    Full,
}

fn match_parents(pat: &[String], path: &[String]) -> PMatch {
    let Some((p, prest)) = pat.split_first() else {
        return if path.is_empty() {
            PMatch::Full
        } else {
            PMatch::No
        };
    };
    let Some((n, nrest)) = path.split_first() else {
        return if pat.iter().all(|p| p == "**") {
            PMatch::Full
        } else {
            PMatch::Partial
        };
    };
    if p == "**" {
        let a = match_parents(prest, path);
        let b = match_parents(pat, nrest);
        return match (a, b) {
            (PMatch::Full, _) | (_, PMatch::Full) => PMatch::Full,
            (PMatch::Partial, _) | (_, PMatch::Partial) => PMatch::Partial,
            _ => PMatch::No,
        };
    }
    if glob::go_match(p, n).unwrap_or(false) {
        match_parents(prest, nrest)
    } else {
        PMatch::No
    }
}

/// Entries of `dir` with their `lstat`, sorted by name.
fn sorted_entries(dir: &Dir) -> io::Result<Vec<(OsString, Stat)>> {
    let mut out = Vec::new();
    for ent in dir.entries()? {
        let name = ent?.file_name();
        let Some(n) = Name::new(&name) else { continue };
        if let Some(st) = walk::lstat(dir, n)? {
            out.push((name, st));
        }
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

fn mtime_of(st: &Stat) -> Timespec {
    Timespec {
        tv_sec: st.st_mtime,
        tv_nsec: st.st_mtime_nsec as _,
    }
}

fn times(t: Timespec) -> Timestamps {
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn parents_patterns() {
        assert_eq!(match_parents(&v("a/*.txt"), &v("a")), PMatch::Partial);
        assert_eq!(match_parents(&v("a/*.txt"), &v("a/x.txt")), PMatch::Full);
        assert_eq!(match_parents(&v("a/*.txt"), &v("b")), PMatch::No);
        assert_eq!(match_parents(&v("**/x.txt"), &v("a/b/x.txt")), PMatch::Full);
        assert_eq!(match_parents(&v("**/x.txt"), &v("a/b")), PMatch::Partial);
        assert_eq!(match_parents(&v("a"), &v("a")), PMatch::Full);
    }

    #[test]
    fn wildcards_and_dest() {
        assert!(contains_wildcards("a*"));
        assert!(!contains_wildcards("a\\*"));
        assert_eq!(dest_path("/w", "x"), ("/w/x".into(), false));
        assert_eq!(dest_path("/w/", "x/"), ("/w/x/".into(), true));
        assert_eq!(dest_path("/w", "."), ("/w/.".into(), true));
        assert_eq!(clean_components("/../a/./b/"), vec!["a", "b"]);
    }
}

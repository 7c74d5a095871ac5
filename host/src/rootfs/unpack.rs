//! Applying a layer tar to the root.
//!
//! Follows the OCI image spec's "Applying Changesets" and containerd's
//! `archive.Apply`:
//!
//! - an existing entry is removed before a new one is written in its place,
//!   except that an existing directory stays (and merges) when the new entry
//!   is a directory;
//! - `.wh.<name>` removes `<name>` from the same directory; `.wh..wh..opq`
//!   empties its directory of everything not written by this layer *so far
//!   or later*: as containerd does, it is applied when met and spares every
//!   path this layer has already unpacked, and entries after it land on the
//!   emptied directory. Whiteout entries never land in the root;
//! - ownership is applied before the mode (chown clears setuid/setgid) and
//!   `security.capability` after both (chown clears it too);
//! - directory modes and mtimes are applied at the end of the layer, after
//!   their content is written.

use super::walk::{self, Missing, Name, Resolved};
use super::{Root, RootfsError, lossy};
use crate::image::media::Compression;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use rustix::fs::{AtFlags, FileType, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::{self, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use tar::EntryType;

/// What applying a layer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerReport {
    /// Tar entries read (whiteouts included).
    pub entries: u64,
    /// What was skipped and why, one line each (each kind of skip is
    /// reported once, with a count and the first entry it hit).
    pub skipped: Vec<String>,
}

const WHITEOUT: &[u8] = b".wh.";
const WHITEOUT_META: &[u8] = b".wh..wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
const CAPABILITY_XATTR: &str = "security.capability";
const PAX_XATTR: &str = "SCHILY.xattr.";

/// A kind of skip, counted, reported once.
#[derive(Default)]
struct Skip {
    count: u64,
    first: Option<String>,
}

impl Skip {
    fn hit(&mut self, entry: &str) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(entry.to_owned());
        }
    }

    fn line(&self, what: &str, why: &str, out: &mut Vec<String>) {
        if let Some(first) = &self.first {
            out.push(format!(
                "{what}: {} entr{} (first: {first}): {why}",
                self.count,
                if self.count == 1 { "y" } else { "ies" }
            ));
        }
    }
}

#[derive(Default)]
struct Skips {
    ownership: Skip,
    devices: Skip,
    capability: Skip,
    xattrs: Skip,
    aufs_meta: Skip,
    unsupported: Skip,
}

/// Mode and mtime of a directory, applied at the end of the layer.
struct DirAttrs {
    mode: u32,
    mtime: Option<Timespec>,
}

/// Per-layer state.
struct Unpacker<'r> {
    root: &'r Root,
    /// Real paths (relative) this layer wrote, with their ancestors: what an
    /// opaque marker spares.
    unpacked: HashSet<PathBuf>,
    /// Directories whose mode and mtime are due at the end.
    dirs: BTreeMap<PathBuf, DirAttrs>,
    skips: Skips,
    /// Whether to try `chown` (cleared by `EPERM`).
    chown: bool,
    /// Whether to try `mknod` for devices.
    mknod: bool,
    /// Whether to try setting `security.capability`.
    caps: bool,
    /// Why privileged operations are skipped, for the report.
    why: &'static str,
    /// Components prepended to every entry name (ADD extracts under its
    /// destination); empty for layers.
    prefix: Vec<OsString>,
    /// An ADD archive rather than a layer: `.wh.` names are plain files.
    archive: bool,
    /// `ADD --chown`: replaces the owners the tar gives.
    owner_override: Option<(u32, u32)>,
}

pub(super) fn apply(
    root: &Root,
    blob: impl Read,
    compression: Compression,
) -> Result<LayerReport, RootfsError> {
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(BufReader::with_capacity(128 * 1024, blob)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            128 * 1024,
            blob,
        ))),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(blob).map_err(|source| {
                RootfsError::ReadLayer {
                    after: None,
                    source,
                }
            })?)
        }
    };
    let mut u = Unpacker::new(root, Vec::new(), false, None);
    let mut archive = tar::Archive::new(reader);
    let mut report = LayerReport::default();
    let mut last: Option<String> = None;
    let read_err = |last: &Option<String>, source| RootfsError::ReadLayer {
        after: last.clone(),
        source,
    };
    for entry in archive.entries().map_err(|e| read_err(&last, e))? {
        let entry = entry.map_err(|e| read_err(&last, e))?;
        report.entries += 1;
        let name = lossy(&entry.path_bytes());
        u.entry(entry, &name)?;
        last = Some(name);
    }
    u.finish_dirs()?;
    u.report(&mut report.skipped);
    for line in &report.skipped {
        tracing::warn!(root = %root.path.display(), "layer: {line}");
    }
    Ok(report)
}

/// Extracts a plain (already decompressed) tar archive under the real
/// directory `prefix` of the root, as `ADD` does with a local archive: like
/// `tar -x` into an existing tree (no whiteouts), owners from the tar unless
/// `owner` overrides them. Returns the real paths (relative to the root)
/// written, with their ancestors.
pub(super) fn extract(
    root: &Root,
    reader: impl Read,
    prefix: Vec<OsString>,
    owner: Option<(u32, u32)>,
) -> Result<HashSet<PathBuf>, RootfsError> {
    let mut u = Unpacker::new(root, prefix, true, owner);
    let mut archive = tar::Archive::new(BufReader::with_capacity(128 * 1024, reader));
    let mut last: Option<String> = None;
    let read_err = |last: &Option<String>, source| RootfsError::ReadLayer {
        after: last.clone(),
        source,
    };
    for entry in archive.entries().map_err(|e| read_err(&last, e))? {
        let entry = entry.map_err(|e| read_err(&last, e))?;
        let name = lossy(&entry.path_bytes());
        u.entry(entry, &name)?;
        last = Some(name);
    }
    u.finish_dirs()?;
    let mut skipped = Vec::new();
    u.report(&mut skipped);
    for line in &skipped {
        tracing::warn!(root = %root.path.display(), "archive: {line}");
    }
    Ok(u.unpacked)
}

impl<'r> Unpacker<'r> {
    fn new(
        root: &'r Root,
        prefix: Vec<OsString>,
        archive: bool,
        owner_override: Option<(u32, u32)>,
    ) -> Self {
        let privileged = !root.options.unprivileged;
        Unpacker {
            root,
            unpacked: HashSet::new(),
            dirs: BTreeMap::new(),
            skips: Skips::default(),
            chown: privileged,
            mknod: privileged,
            caps: privileged,
            why: if privileged {
                "not permitted"
            } else {
                "unprivileged mode"
            },
            prefix,
            archive,
            owner_override,
        }
    }
}

/// The components of an entry name: leading `/` stripped, `.` dropped,
/// `..` applied lexically; climbing above the root is refused.
fn normalize(raw: &[u8]) -> Result<Vec<OsString>, String> {
    if raw.contains(&0) {
        return Err("the name contains a NUL byte".into());
    }
    let mut out: Vec<OsString> = Vec::new();
    for c in walk::split(raw) {
        if c == b".." {
            if out.pop().is_none() {
                return Err("the name climbs above the root with ..".into());
            }
        } else {
            out.push(OsStr::from_bytes(c).to_os_string());
        }
    }
    Ok(out)
}

fn join_bytes(comps: &[OsString]) -> Vec<u8> {
    comps
        .iter()
        .map(|c| c.as_bytes())
        .collect::<Vec<_>>()
        .join(&b'/')
}

/// Metadata an entry carries in PAX records.
#[derive(Default)]
struct Pax {
    mtime: Option<Timespec>,
    capability: Option<Vec<u8>>,
    other_xattrs: bool,
}

/// Parses a PAX time `[-]secs[.frac]`.
fn parse_pax_time(v: &str) -> Option<Timespec> {
    let (neg, v) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nsec: i64 = digits.parse().ok()?;
    Some(match (neg, nsec) {
        (false, _) => Timespec {
            tv_sec: secs,
            tv_nsec: nsec,
        },
        (true, 0) => Timespec {
            tv_sec: -secs,
            tv_nsec: 0,
        },
        (true, n) => Timespec {
            tv_sec: -secs - 1,
            tv_nsec: 1_000_000_000 - n,
        },
    })
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, mut e: tar::Entry<'_, R>, name: &str) -> Result<(), RootfsError> {
        let kind = e.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            return Ok(());
        }
        let unsafe_entry = |reason: String| RootfsError::UnsafeEntry {
            entry: name.to_owned(),
            reason,
        };
        let mut comps = normalize(&e.path_bytes()).map_err(unsafe_entry)?;
        if comps.is_empty() {
            // The root itself ("./"): nothing to create, as containerd.
            return Ok(());
        }
        if !self.prefix.is_empty() {
            comps.splice(0..0, self.prefix.iter().cloned());
        }
        let Some((base, parents)) = comps.split_last() else {
            return Ok(());
        };
        let base_b = base.as_bytes();
        if self.archive {
            // `tar -x`: no whiteouts, every name is a plain name.
        } else if parents.iter().any(|p| p.as_bytes().starts_with(WHITEOUT)) {
            self.skips.aufs_meta.hit(name);
            return Ok(());
        } else if base_b == OPAQUE {
            return self.opaque(parents, name);
        } else if base_b.starts_with(WHITEOUT_META) {
            self.skips.aufs_meta.hit(name);
            return Ok(());
        } else if let Some(target) = base_b.strip_prefix(WHITEOUT) {
            let target = OsStr::from_bytes(target);
            let Some(target) = Name::new(target) else {
                return Err(unsafe_entry(format!(
                    "the whiteout names {:?}, which is not a plain name",
                    target.to_string_lossy()
                )));
            };
            return self.whiteout(parents, target, name);
        }
        let base = Name::new(base).ok_or_else(|| unsafe_entry("not a plain name".into()))?;

        let pax = self.pax(&mut e, name)?;
        let parent = self.parent(parents, name, true)?;
        let rel = parent.rel().join(base.as_os_str());
        let h = e.header();
        let mode = h.mode().map_err(|source| self.bad_header(name, source))? & 0o7777;
        let uid = h.uid().map_err(|source| self.bad_header(name, source))?;
        let gid = h.gid().map_err(|source| self.bad_header(name, source))?;
        let owner = match self.owner_override {
            Some(o) => o,
            None => (
                u32::try_from(uid)
                    .map_err(|_| unsafe_entry(format!("uid {uid} is out of range")))?,
                u32::try_from(gid)
                    .map_err(|_| unsafe_entry(format!("gid {gid} is out of range")))?,
            ),
        };
        let mtime = match pax.mtime {
            Some(t) => Some(t),
            None => h.mtime().ok().map(|s| Timespec {
                tv_sec: i64::try_from(s).unwrap_or(i64::MAX),
                tv_nsec: 0,
            }),
        };
        if pax.other_xattrs {
            self.skips.xattrs.hit(name);
        }
        let dir = &parent.dir;
        let io_err = |action: &'static str| {
            move |source: io::Error| RootfsError::Entry {
                entry: name.to_owned(),
                action,
                source,
            }
        };

        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.clear(dir, base, false).map_err(io_err("replace"))?;
                let mut file = dir
                    .open_with(
                        base,
                        OpenOptions::new().write(true).create_new(true).mode(0o600),
                    )
                    .map_err(io_err("create"))?;
                io::copy(&mut e, &mut file).map_err(io_err("write"))?;
                self.owner_fd(&file, owner, name)?;
                rustix::fs::fchmod(&file, Mode::from(mode))
                    .map_err(|e| io_err("chmod")(e.into()))?;
                if let Some(cap) = &pax.capability {
                    self.capability(&file, cap, name)?;
                }
                if let Some(t) = mtime {
                    rustix::fs::futimens(&file, &times(t))
                        .map_err(|e| io_err("set times of")(e.into()))?;
                }
            }
            EntryType::Directory => {
                let existing = walk::lstat(dir, base).map_err(io_err("inspect"))?;
                let is_dir = existing
                    .as_ref()
                    .is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
                if !is_dir {
                    self.clear(dir, base, true).map_err(io_err("replace"))?;
                    match rustix::fs::mkdirat(dir, base.as_os_str(), Mode::from(0o700)) {
                        Ok(()) => {}
                        Err(e) => return Err(io_err("create directory")(e.into())),
                    }
                }
                let d = walk::open_dir_nofollow(dir, base).map_err(io_err("open directory"))?;
                self.owner_fd(&d, owner, name)?;
                // The mode comes at the end, so that a read-only directory
                // stays writable while this layer fills it.
                self.dirs.insert(rel.clone(), DirAttrs { mode, mtime });
                if pax.capability.is_some() {
                    self.skips.capability.hit(name);
                }
            }
            EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("the symlink has no target".into()))?
                    .into_owned();
                if target.contains(&0) || target.is_empty() {
                    return Err(unsafe_entry(
                        "the symlink target is empty or contains NUL".into(),
                    ));
                }
                self.clear(dir, base, false).map_err(io_err("replace"))?;
                rustix::fs::symlinkat(OsStr::from_bytes(&target), dir, base.as_os_str())
                    .map_err(|e| io_err("create symlink")(e.into()))?;
                self.owner_at(dir, base, owner, name)?;
                if let Some(t) = mtime {
                    rustix::fs::utimensat(
                        dir,
                        base.as_os_str(),
                        &times(t),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| io_err("set times of")(e.into()))?;
                }
            }
            EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("the hard link has no target".into()))?
                    .into_owned();
                self.hardlink(dir, base, &target, name)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ft = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                if ft != FileType::Fifo && !self.mknod {
                    self.skips.devices.hit(name);
                    return Ok(());
                }
                let dev = if ft == FileType::Fifo {
                    0
                } else {
                    let major = h.device_major().ok().flatten().unwrap_or(0);
                    let minor = h.device_minor().ok().flatten().unwrap_or(0);
                    rustix::fs::makedev(major, minor)
                };
                self.clear(dir, base, false).map_err(io_err("replace"))?;
                match rustix::fs::mknodat(dir, base.as_os_str(), ft, Mode::from(0o600), dev) {
                    Ok(()) => {}
                    Err(Errno::PERM) if ft != FileType::Fifo => {
                        self.mknod = false;
                        self.skips.devices.hit(name);
                        return Ok(());
                    }
                    Err(e) => return Err(io_err("create node")(e.into())),
                }
                self.owner_at(dir, base, owner, name)?;
                // Just created by us in a directory only this unpack
                // writes: not a symlink, so following is moot.
                rustix::fs::chmodat(dir, base.as_os_str(), Mode::from(mode), AtFlags::empty())
                    .map_err(|e| io_err("chmod")(e.into()))?;
                if let Some(t) = mtime {
                    rustix::fs::utimensat(
                        dir,
                        base.as_os_str(),
                        &times(t),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| io_err("set times of")(e.into()))?;
                }
            }
            _ => {
                self.skips.unsupported.hit(name);
                return Ok(());
            }
        }
        self.mark(&rel);
        Ok(())
    }

    fn bad_header(&self, name: &str, source: io::Error) -> RootfsError {
        RootfsError::Entry {
            entry: name.to_owned(),
            action: "read the header of",
            source,
        }
    }

    /// Records `rel` and its ancestors as written by this layer.
    fn mark(&mut self, rel: &Path) {
        let mut p = Some(rel);
        while let Some(cur) = p {
            if cur.as_os_str().is_empty() || !self.unpacked.insert(cur.to_path_buf()) {
                break;
            }
            p = cur.parent();
        }
    }

    fn pax<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, name: &str) -> Result<Pax, RootfsError> {
        let mut pax = Pax::default();
        let Some(exts) = e.pax_extensions().map_err(|source| RootfsError::Entry {
            entry: name.to_owned(),
            action: "read the PAX records of",
            source,
        })?
        else {
            return Ok(pax);
        };
        for ext in exts {
            let ext = ext.map_err(|source| RootfsError::Entry {
                entry: name.to_owned(),
                action: "read the PAX records of",
                source,
            })?;
            let Ok(key) = ext.key() else { continue };
            if key == "mtime" {
                pax.mtime = ext.value().ok().and_then(parse_pax_time);
            } else if let Some(x) = key.strip_prefix(PAX_XATTR) {
                if x == CAPABILITY_XATTR {
                    pax.capability = Some(ext.value_bytes().to_vec());
                } else {
                    pax.other_xattrs = true;
                }
            }
        }
        Ok(pax)
    }

    /// Resolves (creating missing directories) the parent of an entry.
    fn parent(
        &mut self,
        parents: &[OsString],
        name: &str,
        create: bool,
    ) -> Result<Resolved, RootfsError> {
        let path = join_bytes(parents);
        let mut created: Vec<String> = Vec::new();
        let mut on_create = |_: &Dir, at: &str| -> io::Result<()> {
            created.push(at.to_owned());
            Ok(())
        };
        let mut missing = if create {
            Missing::Create(&mut on_create)
        } else {
            Missing::Fail
        };
        let (r, _) = walk::walk_dir(&self.root.dir, &path, &mut missing).map_err(|source| {
            RootfsError::Resolve {
                path: format!("the parent of layer entry {name}"),
                source,
            }
        })?;
        for at in created {
            self.mark(Path::new(at.trim_start_matches('/')));
        }
        Ok(r)
    }

    /// Removes what is at `name` unless it is a directory and a directory is
    /// wanted (then it merges).
    fn clear(&mut self, dir: &Dir, name: Name<'_>, want_dir: bool) -> io::Result<()> {
        let Some(st) = walk::lstat(dir, name)? else {
            return Ok(());
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            if !want_dir {
                dir.remove_dir_all(name)?;
            }
        } else {
            dir.remove_file(name)?;
        }
        Ok(())
    }

    fn whiteout(
        &mut self,
        parents: &[OsString],
        target: Name<'_>,
        name: &str,
    ) -> Result<(), RootfsError> {
        let parent = match self.parent(parents, name, false) {
            Ok(p) => p,
            Err(RootfsError::Resolve {
                source: walk::ResolveError::NotFound { .. },
                ..
            }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let st = walk::lstat(&parent.dir, target).map_err(|source| RootfsError::Entry {
            entry: name.to_owned(),
            action: "inspect the target of whiteout",
            source,
        })?;
        if let Some(st) = st {
            let res = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                parent.dir.remove_dir_all(target)
            } else {
                parent.dir.remove_file(target)
            };
            res.map_err(|source| RootfsError::Entry {
                entry: name.to_owned(),
                action: "apply whiteout",
                source,
            })?;
        }
        Ok(())
    }

    fn opaque(&mut self, parents: &[OsString], name: &str) -> Result<(), RootfsError> {
        let parent = match self.parent(parents, name, false) {
            Ok(p) => p,
            Err(RootfsError::Resolve {
                source: walk::ResolveError::NotFound { .. },
                ..
            }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let rel = parent.rel();
        self.empty_lower(&parent.dir, &rel)
            .map_err(|source| RootfsError::Entry {
                entry: name.to_owned(),
                action: "apply opaque whiteout",
                source,
            })
    }

    /// Removes everything under `dir` that this layer did not write.
    fn empty_lower(&self, dir: &Dir, rel: &Path) -> io::Result<()> {
        for ent in dir.entries()? {
            let ent = ent?;
            let fname = ent.file_name();
            let Some(child) = Name::new(&fname) else {
                continue;
            };
            let path = rel.join(&fname);
            let is_dir = ent.file_type()?.is_dir();
            if self.unpacked.contains(&path) {
                if is_dir {
                    let sub = walk::open_dir_nofollow(dir, child)?;
                    self.empty_lower(&sub, &path)?;
                }
            } else if is_dir {
                dir.remove_dir_all(child)?;
            } else {
                dir.remove_file(child)?;
            }
        }
        Ok(())
    }

    fn hardlink(
        &mut self,
        dir: &Dir,
        base: Name<'_>,
        target: &[u8],
        name: &str,
    ) -> Result<(), RootfsError> {
        let target_s = lossy(target);
        let link_err = |reason: String| RootfsError::Hardlink {
            entry: name.to_owned(),
            target: target_s.clone(),
            reason,
        };
        let mut tcomps = normalize(target).map_err(|reason| RootfsError::UnsafeEntry {
            entry: name.to_owned(),
            reason: format!("its hard link target {target_s} is refused: {reason}"),
        })?;
        if !self.prefix.is_empty() && !tcomps.is_empty() {
            tcomps.splice(0..0, self.prefix.iter().cloned());
        }
        let Some((tbase, tparents)) = tcomps.split_last() else {
            return Err(link_err("is the root directory".into()));
        };
        let tbase = Name::new(tbase).ok_or_else(|| link_err("is not a plain name".into()))?;
        let tparent = match self.parent(tparents, name, false) {
            Ok(p) => p,
            Err(RootfsError::Resolve { source, .. }) => {
                return Err(link_err(format!(
                    "cannot be resolved inside the root: {source}"
                )));
            }
            Err(e) => return Err(e),
        };
        let tst = walk::lstat(&tparent.dir, tbase)
            .map_err(|source| RootfsError::Entry {
                entry: name.to_owned(),
                action: "inspect the hard link target of",
                source,
            })?
            .ok_or_else(|| link_err("does not exist in the root".into()))?;
        if FileType::from_raw_mode(tst.st_mode) == FileType::Directory {
            return Err(link_err("is a directory".into()));
        }
        if let Some(st) = walk::lstat(dir, base).map_err(|source| RootfsError::Entry {
            entry: name.to_owned(),
            action: "inspect",
            source,
        })? && st.st_dev == tst.st_dev
            && st.st_ino == tst.st_ino
        {
            return Ok(());
        }
        self.clear(dir, base, false)
            .map_err(|source| RootfsError::Entry {
                entry: name.to_owned(),
                action: "replace",
                source,
            })?;
        rustix::fs::linkat(
            &tparent.dir,
            tbase.as_os_str(),
            dir,
            base.as_os_str(),
            AtFlags::empty(),
        )
        .map_err(|e| RootfsError::Entry {
            entry: name.to_owned(),
            action: "create hard link",
            source: e.into(),
        })?;
        Ok(())
    }

    fn owner_fd(
        &mut self,
        fd: impl AsFd,
        (uid, gid): (u32, u32),
        name: &str,
    ) -> Result<(), RootfsError> {
        if !self.chown {
            if (uid, gid) != current_ids() {
                self.skips.ownership.hit(name);
            }
            return Ok(());
        }
        match rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))) {
            Ok(()) => Ok(()),
            Err(e) => self.chown_failed(e, name),
        }
    }

    fn owner_at(
        &mut self,
        dir: &Dir,
        base: Name<'_>,
        (uid, gid): (u32, u32),
        name: &str,
    ) -> Result<(), RootfsError> {
        if !self.chown {
            if (uid, gid) != current_ids() {
                self.skips.ownership.hit(name);
            }
            return Ok(());
        }
        match rustix::fs::chownat(
            dir,
            base.as_os_str(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(()) => Ok(()),
            Err(e) => self.chown_failed(e, name),
        }
    }

    fn chown_failed(&mut self, e: Errno, name: &str) -> Result<(), RootfsError> {
        if matches!(e, Errno::PERM | Errno::INVAL) {
            self.chown = false;
            self.skips.ownership.hit(name);
            Ok(())
        } else {
            Err(RootfsError::Entry {
                entry: name.to_owned(),
                action: "chown",
                source: e.into(),
            })
        }
    }

    fn capability(&mut self, fd: impl AsFd, value: &[u8], name: &str) -> Result<(), RootfsError> {
        if !self.caps {
            self.skips.capability.hit(name);
            return Ok(());
        }
        match rustix::fs::fsetxattr(fd, CAPABILITY_XATTR, value, XattrFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::PERM | Errno::NOTSUP | Errno::ACCESS) => {
                self.caps = false;
                self.skips.capability.hit(name);
                Ok(())
            }
            Err(e) => Err(RootfsError::Entry {
                entry: name.to_owned(),
                action: "set security.capability on",
                source: e.into(),
            }),
        }
    }

    /// Applies directory modes and mtimes, deepest first, once their content
    /// is written. A directory removed or replaced later in the layer is
    /// skipped.
    fn finish_dirs(&mut self) -> Result<(), RootfsError> {
        for (rel, attrs) in self.dirs.iter().rev() {
            let err = |action: &'static str| {
                move |source: io::Error| RootfsError::Io {
                    path: format!("/{}", rel.display()),
                    action,
                    source,
                }
            };
            let Some(d) =
                walk::open_plain_dir(&self.root.dir, rel).map_err(err("open directory"))?
            else {
                continue;
            };
            rustix::fs::fchmod(&d, Mode::from(attrs.mode))
                .map_err(|e| err("chmod directory")(e.into()))?;
            if let Some(t) = attrs.mtime {
                rustix::fs::futimens(&d, &times(t))
                    .map_err(|e| err("set times of directory")(e.into()))?;
            }
        }
        Ok(())
    }

    fn report(&self, out: &mut Vec<String>) {
        let s = &self.skips;
        s.ownership.line("ownership not applied", self.why, out);
        s.devices.line("device nodes not created", self.why, out);
        s.capability
            .line("security.capability not set", self.why, out);
        s.xattrs.line(
            "extended attributes ignored",
            "only security.capability is applied",
            out,
        );
        s.aufs_meta.line(
            "aufs metadata skipped",
            "names under .wh..wh. or inside a .wh. directory never land in the root",
            out,
        );
        s.unsupported.line(
            "entries of unsupported type skipped",
            "not a file, directory, link, device or fifo",
            out,
        );
    }
}

fn times(t: Timespec) -> Timestamps {
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn current_ids() -> (u32, u32) {
    (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Result<Vec<String>, String> {
        normalize(s.as_bytes()).map(|v| v.into_iter().map(|c| c.into_string().unwrap()).collect())
    }

    #[test]
    fn entry_names_are_normalized_or_refused() {
        assert_eq!(norm("/etc//passwd").unwrap(), ["etc", "passwd"]);
        assert_eq!(norm("./a/./b/").unwrap(), ["a", "b"]);
        assert_eq!(norm("a/../b").unwrap(), ["b"]);
        assert!(norm("./").unwrap().is_empty());
        assert!(norm("../x").unwrap_err().contains("climbs above"));
        assert!(norm("a/../../x").is_err());
        assert!(norm("/..").is_err());
        assert!(normalize(b"a\0b").unwrap_err().contains("NUL"));
    }

    #[test]
    fn pax_times() {
        let t = |s| parse_pax_time(s).map(|t| (t.tv_sec, t.tv_nsec));
        assert_eq!(t("1400000000"), Some((1_400_000_000, 0)));
        assert_eq!(t("1400000000.5"), Some((1_400_000_000, 500_000_000)));
        assert_eq!(t("1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(t("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(t("-3"), Some((-3, 0)));
        assert_eq!(t(""), None);
        assert_eq!(t("1.x"), None);
        assert_eq!(t("abc"), None);
    }
}

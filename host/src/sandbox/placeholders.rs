//! Mount points created in the root for one step, and removed after it.

use super::{MountSpec, SandboxError, SandboxSpec};
use crate::rootfs::Root;
use rustix::fs::{Timespec, Timestamps};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Host files bound over the same path inside the root.
pub(super) const HOST_FILES: [&str; 2] = ["/etc/resolv.conf", "/etc/hosts"];

/// What [`prepare`] created, to undo it.
#[derive(Debug, Default)]
pub(super) struct Created {
    /// (image path, real relative path, is a directory), in creation order.
    items: Vec<(String, PathBuf, bool)>,
    /// Pre-existing parents we created entries in: relative path →
    /// (times before, mtime after our creations).
    parents: BTreeMap<PathBuf, (Timestamps, Option<Timespec>)>,
}

impl Created {
    /// The image paths created.
    pub(super) fn paths(&self) -> Vec<String> {
        self.items.iter().map(|(p, _, _)| p.clone()).collect()
    }

    /// Removes every placeholder that is still empty, children first, and
    /// puts back the parents' times when nothing else changed them.
    pub(super) fn cleanup(self, root: &Path) {
        let Ok(root) = Root::open(root) else { return };
        let dir = root.dir();
        let restore: Vec<(&PathBuf, &Timestamps)> = self
            .parents
            .iter()
            .filter(|(rel, (_, after))| after.is_some() && mtime(&root, rel) == *after)
            .map(|(rel, (before, _))| (rel, before))
            .collect();
        for (image_path, rel, is_dir) in self.items.iter().rev() {
            let removed = if *is_dir {
                dir.remove_dir(rel)
            } else {
                match dir.symlink_metadata(rel) {
                    Ok(m) if m.is_file() && m.len() == 0 => dir.remove_file(rel),
                    Ok(_) => Err(std::io::Error::other("not an empty file")),
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = removed {
                tracing::debug!(path = %image_path, error = %e, "placeholder kept");
            }
        }
        for (rel, before) in restore {
            // By name from the root: cap-std opens directories O_PATH,
            // where futimens fails.
            let path = if rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                rel.as_path()
            };
            let _ = rustix::fs::utimensat(dir, path, before, rustix::fs::AtFlags::SYMLINK_NOFOLLOW);
        }
    }
}

fn times(root: &Root, rel: &Path) -> Option<Timestamps> {
    let st = stat_rel(root, rel)?;
    Some(Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    })
}

fn mtime(root: &Root, rel: &Path) -> Option<Timespec> {
    times(root, rel).map(|t| t.last_modification)
}

fn stat_rel(root: &Root, rel: &Path) -> Option<rustix::fs::Stat> {
    let d = if rel.as_os_str().is_empty() || rel == Path::new(".") {
        root.dir().try_clone().ok()?
    } else {
        root.dir().open_dir(rel).ok()?
    };
    rustix::fs::fstat(&d).ok()
}

/// Creates every missing mount point the namespaces mode needs.
pub(super) fn prepare(spec: &SandboxSpec, created: &mut Created) -> Result<(), SandboxError> {
    let root = Root::open(&spec.root).map_err(|e| SandboxError::Placeholder {
        path: "/".to_owned(),
        root: spec.root.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut wanted: Vec<(String, bool)> = vec![("/proc".into(), true), ("/dev".into(), true)];
    for host in HOST_FILES {
        if Path::new(host).is_file() {
            wanted.push((host.to_owned(), false));
        }
    }
    for m in &spec.mounts {
        let is_dir = match m {
            MountSpec::Tmpfs { .. } => true,
            MountSpec::Bind { source, .. } => source.is_dir(),
        };
        wanted.push((m.target().to_owned(), is_dir));
    }
    for (path, is_dir) in wanted {
        ensure(&root, &path, is_dir, created).map_err(|source| SandboxError::Placeholder {
            path: path.clone(),
            root: spec.root.clone(),
            source,
        })?;
    }
    for (rel, (_, after)) in created.parents.iter_mut() {
        *after = mtime(&root, rel);
    }
    Ok(())
}

fn ensure(root: &Root, path: &str, is_dir: bool, created: &mut Created) -> std::io::Result<()> {
    let to_io = |e: crate::rootfs::RootfsError| std::io::Error::other(e.to_string());
    let rel = root.resolve(path).map_err(to_io)?;
    if root.dir().symlink_metadata(&rel).is_ok() {
        return Ok(());
    }
    let parent_image = match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".to_owned(),
        Some((p, _)) => p.to_owned(),
    };
    let note_parent = |created: &mut Created, rel_parent: PathBuf| {
        if !created.parents.contains_key(&rel_parent)
            && !created.items.iter().any(|(_, r, _)| *r == rel_parent)
            && let Some(t) = times(root, &rel_parent)
        {
            created.parents.insert(rel_parent, (t, None));
        }
    };
    if is_dir {
        // Find the deepest existing ancestor first, for its times.
        let existing = deepest_existing(root, path).map_err(to_io)?;
        note_parent(created, existing);
        for made in root.mkdir_all(path, None).map_err(to_io)? {
            let rel = root.resolve(&made).map_err(to_io)?;
            created.items.push((made, rel, true));
        }
    } else {
        let existing = deepest_existing(root, &parent_image).map_err(to_io)?;
        note_parent(created, existing);
        for made in root.mkdir_all(&parent_image, None).map_err(to_io)? {
            let rel = root.resolve(&made).map_err(to_io)?;
            created.items.push((made, rel, true));
        }
        let rel = root.resolve(path).map_err(to_io)?;
        let parent_rel = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        note_parent(created, parent_rel);
        root.dir().open_with(
            &rel,
            cap_std::fs::OpenOptions::new().write(true).create_new(true),
        )?;
        created.items.push((path.to_owned(), rel, false));
    }
    Ok(())
}

/// The real relative path of the deepest ancestor of `path` that exists.
fn deepest_existing(root: &Root, path: &str) -> Result<PathBuf, crate::rootfs::RootfsError> {
    let mut p = path.trim_end_matches('/').to_owned();
    loop {
        let rel = root.resolve(if p.is_empty() { "/" } else { &p })?;
        if p.is_empty() || root.dir().symlink_metadata(&rel).is_ok() {
            return Ok(rel);
        }
        match p.rsplit_once('/') {
            Some((head, _)) => p = head.to_owned(),
            None => p.clear(),
        }
    }
}

//! A layer from a known change set (COPY, ADD, WORKDIR): no walk of the
//! root, only the listed paths are read back.

use super::{EntryMeta, LayerWriter, SnapshotError, SpecialFile};
use crate::rootfs::{ChangeSet, EntryKind, Root};
use std::collections::HashMap;

/// Writes the paths of `changes` as layer entries: metadata and content read
/// back from `root`, symlinks verbatim, and files that are hard links of an
/// earlier file of the set as hard links to it. A path that no longer
/// exists is skipped. Paths are expected parents first, as
/// [`crate::rootfs::copy_into`] returns them.
pub fn write_changes(
    root: &Root,
    changes: &ChangeSet,
    writer: &mut LayerWriter<'_>,
) -> Result<(), SnapshotError> {
    let mut seen: HashMap<(u64, u64), &str> = HashMap::new();
    for path in &changes.paths {
        let root_err = |source| SnapshotError::Root {
            path: path.clone(),
            source,
        };
        let Some(st) = root.lstat(path).map_err(root_err)? else {
            continue;
        };
        let meta = EntryMeta {
            mode: st.mode,
            uid: u64::from(st.uid),
            gid: u64::from(st.gid),
            mtime: u64::try_from(st.mtime).unwrap_or(0),
            xattrs: Default::default(),
        };
        match st.kind {
            EntryKind::Dir => writer.add_dir(path, &meta)?,
            EntryKind::File => {
                if st.nlink > 1 {
                    if let Some(first) = seen.get(&(st.dev, st.ino)) {
                        writer.add_hardlink(path, &meta, first)?;
                        continue;
                    }
                    seen.insert((st.dev, st.ino), path);
                }
                let file = root.open_file(path).map_err(root_err)?;
                writer.add_file(path, &meta, st.size, file)?;
            }
            EntryKind::Symlink(target) => writer.add_symlink(path, &meta, target)?,
            EntryKind::Fifo => writer.add_special(path, &meta, SpecialFile::Fifo)?,
            EntryKind::Char(rdev) => writer.add_special(
                path,
                &meta,
                SpecialFile::Char {
                    major: rustix::fs::major(rdev),
                    minor: rustix::fs::minor(rdev),
                },
            )?,
            EntryKind::Block(rdev) => writer.add_special(
                path,
                &meta,
                SpecialFile::Block {
                    major: rustix::fs::major(rdev),
                    minor: rustix::fs::minor(rdev),
                },
            )?,
            EntryKind::Other => {
                tracing::warn!(path = %path, "not written to the layer: a socket or unknown type");
            }
        }
    }
    Ok(())
}

//! Change detection after a RUN step: scan a real root, change it the ways
//! a RUN can, scan again, diff, write the layer, read it back with the
//! `tar` crate, and apply it onto a fresh copy of the "before" tree with
//! `Root::apply_layer`: the result must equal the "after" tree.
//!
//! Ownership and `security.capability` need root; those parts are checked
//! only when the test runs as root (the CI container does).

use kiln::image::media::Compression;
use kiln::rootfs::Root;
use kiln::snapshot::{
    Changes, FileKind, IgnoreSet, Index, LayerCompression, LayerWriter, MediaTypes, diff,
    write_layer,
};
use kiln::store::BlobStore;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tar::EntryType;

/// A v2 `vfs_cap_data`: effective, permitted = CAP_NET_BIND_SERVICE.
const CAP: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, // magic: revision 2, effective flag
    0x00, 0x04, 0x00, 0x00, // permitted (low 32 bits): bit 10
    0x00, 0x00, 0x00, 0x00, // inheritable (low)
    0x00, 0x00, 0x00, 0x00, // permitted (high)
    0x00, 0x00, 0x00, 0x00, // inheritable (high)
];

const MTIME: i64 = 1_600_000_000;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn write(root: &Path, rel: &str, data: &[u8], mode: u32) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    set_mtime(&p, MTIME);
}

fn set_mtime(p: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// The "before" tree; built the same way twice (once to change, once to
/// apply the layer onto).
fn build_before(root: &Path) {
    fs::create_dir_all(root).unwrap();
    write(root, "etc/conf", b"hello\n", 0o644);
    write(root, "etc/same", b"aaaa", 0o644);
    write(root, "bin/tool", b"#!/bin/sh\n", 0o755);
    write(root, "bin/owned", b"owned", 0o644);
    write(root, "bin/cap", b"\x7fELF", 0o755);
    write(root, "data/old-name", b"moved", 0o644);
    write(root, "data/remove-me", b"bye", 0o644);
    write(root, "tree/a/b/deep", b"deep", 0o644);
    write(root, "tree/a/file", b"f", 0o644);
    write(root, "swap-file", b"was a file", 0o644);
    write(root, "swap-dir/child", b"child", 0o644);
    write(root, "keep/untouched", b"same", 0o600);
    write(root, "proc/cpuinfo", b"ignored", 0o444);
    write(root, "var/run/old.pid", b"1", 0o644);
    std::os::unix::fs::symlink("../etc/conf", root.join("keep/link")).unwrap();
}

/// The changes a RUN step might make.
fn change(root: &Path) {
    // New file in a new directory.
    write(root, "new/file", b"new content", 0o640);
    // Same size, mtime restored: only ctime tells.
    let same = root.join("etc/same");
    fs::write(&same, b"bbbb").unwrap();
    set_mtime(&same, MTIME);
    // chmod, chown.
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o700)).unwrap();
    if is_root() {
        std::os::unix::fs::lchown(root.join("bin/owned"), Some(1000), Some(1001)).unwrap();
        rustix::fs::setxattr(
            root.join("bin/cap"),
            "security.capability",
            &CAP,
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
    } else {
        // Keep the expected change set the same without privileges.
        fs::set_permissions(root.join("bin/owned"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(root.join("bin/cap"), fs::Permissions::from_mode(0o750)).unwrap();
    }
    // Rename, delete a file, delete a tree.
    fs::rename(root.join("data/old-name"), root.join("data/new-name")).unwrap();
    fs::remove_file(root.join("data/remove-me")).unwrap();
    fs::remove_dir_all(root.join("tree")).unwrap();
    // File replaced by a directory, directory by a symlink.
    fs::remove_file(root.join("swap-file")).unwrap();
    write(root, "swap-file/inner", b"inner", 0o644);
    fs::remove_dir_all(root.join("swap-dir")).unwrap();
    std::os::unix::fs::symlink("etc", root.join("swap-dir")).unwrap();
    // A hard link pair.
    write(root, "links/one", b"linked", 0o644);
    fs::hard_link(root.join("links/one"), root.join("links/two")).unwrap();
    // A FIFO.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from(0o600),
        0,
    )
    .unwrap();
    // Ignored places.
    write(root, "proc/junk", b"x", 0o644);
    write(root, "var/run/new.pid", b"2", 0o644);
    fs::remove_file(root.join("var/run/old.pid")).unwrap();
}

fn paths(v: &[&str]) -> Vec<PathBuf> {
    v.iter().map(PathBuf::from).collect()
}

fn ignore() -> IgnoreSet {
    IgnoreSet::defaults(true)
}

#[derive(Debug, PartialEq)]
struct Seen {
    path: String,
    kind: EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    link: Option<String>,
    pax: BTreeMap<String, Vec<u8>>,
    data: Vec<u8>,
}

fn read_layer(store: &BlobStore, digest: &kiln::image::Digest) -> Vec<Seen> {
    let blob = store.read_blob(digest).unwrap();
    let mut ar = tar::Archive::new(&blob[..]);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut pax = BTreeMap::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for ext in exts {
                let ext = ext.unwrap();
                pax.insert(ext.key().unwrap().to_string(), ext.value_bytes().to_vec());
            }
        }
        let h = e.header();
        let mut seen = Seen {
            path: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap()),
            pax,
            data: Vec::new(),
        };
        e.read_to_end(&mut seen.data).unwrap();
        out.push(seen);
    }
    out
}

/// What a tree holds, for comparing two trees: per path, type, mode, owner,
/// size, content, link target, capability, nlink, and mtime in seconds for
/// regular files (a layer carries whole seconds; directory times are left
/// out since applying a layer touches them).
fn tree(root: &Path, ignore: &IgnoreSet) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if ignore.is_ignored(&r) {
                continue;
            }
            let p = root.join(&r);
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let mut desc = format!(
                "mode={:o} uid={} gid={}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            );
            if ft.is_dir() {
                desc.insert_str(0, "dir ");
                stack.push(r.clone());
            } else if ft.is_symlink() {
                desc = format!("symlink -> {}", fs::read_link(&p).unwrap().display());
            } else if ft.is_fifo() {
                desc.insert_str(0, "fifo ");
            } else {
                let cap = rustix::fs::lgetxattr(&p, "security.capability", &mut [0u8; 64][..])
                    .unwrap_or(0);
                desc = format!(
                    "file {desc} size={} nlink={} mtime={} cap={cap} content={:?}",
                    m.len(),
                    m.nlink(),
                    m.mtime(),
                    String::from_utf8_lossy(&fs::read(&p).unwrap()),
                );
            }
            out.insert(r.to_string_lossy().into_owned(), desc);
        }
    }
    out
}

#[test]
fn every_kind_of_change_round_trips_through_a_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("root");
    build_before(&dir);
    let root = Root::open(&dir).unwrap();
    let before = Index::scan(&root, &ignore()).unwrap();
    assert!(before.get("proc").is_none() && before.get("proc/cpuinfo").is_none());
    assert!(before.get("var/run").is_none());
    assert_eq!(before.get("var").unwrap().kind, FileKind::Directory);
    assert_eq!(
        before.get("/keep/link").unwrap().link_target.as_deref(),
        Some(&b"../etc/conf"[..])
    );

    // Timestamps come from a coarse clock; let it move on.
    std::thread::sleep(std::time::Duration::from_millis(20));
    change(&dir);
    let after = Index::scan(&root, &ignore()).unwrap();
    // A rescan that reuses the previous index sees exactly the same.
    assert_eq!(Index::rescan(&root, &ignore(), &before).unwrap(), after);
    let changes = diff(&before, &after);
    assert_eq!(
        changes,
        Changes {
            added_or_modified: paths(&[
                "bin/cap",
                "bin/owned",
                "bin/tool",
                "data",
                "data/new-name",
                "etc/same",
                "links",
                "links/one",
                "links/two",
                "new",
                "new/file",
                "pipe",
                "swap-dir",
                "swap-file",
                "swap-file/inner",
            ]),
            deleted: paths(&["data/old-name", "data/remove-me", "tree"]),
        }
    );
    let same_before = before.get("etc/same").unwrap();
    let same_after = after.get("etc/same").unwrap();
    assert_eq!(same_before.size, same_after.size);
    assert_eq!(same_before.mtime_ns, same_after.mtime_ns);
    assert_ne!(same_before.ctime_ns, same_after.ctime_ns);

    // The layer.
    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&store_dir.path().join("store")).unwrap();
    let mut w = LayerWriter::new(&store, LayerCompression::None, MediaTypes::Oci).unwrap();
    write_layer(&root, &after, &changes, &mut w).unwrap();
    let layer = w.finish().unwrap();
    let seen = read_layer(&store, &layer.digest);
    let root_owned = is_root();
    let summary: Vec<(String, EntryType, u32, Option<String>)> = seen
        .iter()
        .map(|s| (s.path.clone(), s.kind, s.mode, s.link.clone()))
        .collect();
    let e =
        |p: &str, k: EntryType, m: u32, l: Option<&str>| (p.to_owned(), k, m, l.map(str::to_owned));
    let reg = EntryType::Regular;
    let dirt = EntryType::Directory;
    assert_eq!(
        summary,
        vec![
            e("bin/", dirt, 0o755, None),
            e("bin/cap", reg, if root_owned { 0o755 } else { 0o750 }, None),
            e(
                "bin/owned",
                reg,
                if root_owned { 0o644 } else { 0o600 },
                None
            ),
            e("bin/tool", reg, 0o700, None),
            e("data/", dirt, 0o755, None),
            e("data/new-name", reg, 0o644, None),
            e("data/.wh.old-name", reg, 0, None),
            e("data/.wh.remove-me", reg, 0, None),
            e("etc/", dirt, 0o755, None),
            e("etc/same", reg, 0o644, None),
            e("links/", dirt, 0o755, None),
            e("links/one", reg, 0o644, None),
            e("links/two", EntryType::Link, 0o644, Some("links/one")),
            e("new/", dirt, 0o755, None),
            e("new/file", reg, 0o640, None),
            e("pipe", EntryType::Fifo, 0o600, None),
            e("swap-dir", EntryType::Symlink, 0o777, Some("etc")),
            e("swap-file/", dirt, 0o755, None),
            e("swap-file/inner", reg, 0o644, None),
            e(".wh.tree", reg, 0, None),
        ]
    );
    let by_path: BTreeMap<&str, &Seen> = seen.iter().map(|s| (s.path.as_str(), s)).collect();
    assert_eq!(by_path["etc/same"].data, b"bbbb");
    assert_eq!(by_path["new/file"].data, b"new content");
    assert!(by_path["links/two"].data.is_empty());
    if root_owned {
        assert_eq!(
            (by_path["bin/owned"].uid, by_path["bin/owned"].gid),
            (1000, 1001)
        );
        assert_eq!(
            by_path["bin/cap"]
                .pax
                .get("SCHILY.xattr.security.capability"),
            Some(&CAP.to_vec())
        );
    }
    for s in &seen {
        if s.path != "bin/cap" {
            assert!(s.pax.is_empty(), "{} has no PAX records", s.path);
        }
        assert!(
            !s.path.starts_with("proc") && !s.path.starts_with("var"),
            "{}",
            s.path
        );
    }

    // Round trip: the "before" tree plus the layer is the "after" tree.
    let copy_dir = tmp.path().join("copy");
    build_before(&copy_dir);
    let copy = Root::open(&copy_dir).unwrap();
    let blob = store.open_blob(&layer.digest).unwrap();
    copy.apply_layer(blob, Compression::None).unwrap();
    let want = tree(&dir, &ignore());
    let got = tree(&copy_dir, &ignore());
    assert_eq!(got, want);
    assert!(want.len() >= 20, "{want:#?}");
    assert!(want["links/two"].contains("nlink=2"));
    assert!(want["swap-dir"].contains("symlink -> etc"));
    assert!(!want.contains_key("tree") && !want.contains_key("data/remove-me"));
    if root_owned {
        assert!(want["bin/cap"].contains("cap=20"), "{}", want["bin/cap"]);
        assert!(want["bin/owned"].contains("uid=1000 gid=1001"));
    }
}

#[test]
fn a_step_without_changes_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    build_before(tmp.path());
    let root = Root::open(tmp.path()).unwrap();
    let a = Index::scan(&root, &ignore()).unwrap();
    // Reading files changes nothing the index records.
    fs::read(tmp.path().join("etc/conf")).unwrap();
    let b = Index::scan(&root, &ignore()).unwrap();
    assert_eq!(a.len(), b.len());
    let changes = diff(&a, &b);
    assert!(changes.is_empty(), "{changes:?}");

    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&store_dir.path().join("store")).unwrap();
    let mut w = LayerWriter::new(&store, LayerCompression::None, MediaTypes::Oci).unwrap();
    write_layer(&root, &b, &changes, &mut w).unwrap();
    let layer = w.finish().unwrap();
    assert!(read_layer(&store, &layer.digest).is_empty());
}

#[test]
fn ignored_paths_never_appear_and_a_step_only_ignore_deletes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    build_before(tmp.path());
    write(tmp.path(), "root/.cache/pip/x", b"cached", 0o644);
    write(tmp.path(), "tmp/apt-key-gpghome.Xyz/k", b"k", 0o600);
    let root = Root::open(tmp.path()).unwrap();
    let before = Index::scan(&root, &IgnoreSet::defaults(false)).unwrap();
    // --ignore-var-run=false: /var/run is indexed.
    assert!(before.get("var/run/old.pid").is_some());

    // The step mounts a cache at /root/.cache and writes into ignored paths.
    let mut step = IgnoreSet::defaults(false);
    step.add_path("/root/.cache")
        .add_path("/etc/resolv.conf")
        .add_prefix("/tmp/apt-key-gpghome");
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(tmp.path(), "root/.cache/pip/y", b"more", 0o644);
    write(
        tmp.path(),
        "etc/resolv.conf",
        b"nameserver 10.0.0.1\n",
        0o644,
    );
    fs::remove_file(tmp.path().join("tmp/apt-key-gpghome.Xyz/k")).unwrap();
    let after = Index::scan(&root, &step).unwrap();
    assert!(after.get("root/.cache").is_none());
    assert!(after.get("tmp/apt-key-gpghome.Xyz").is_none());
    assert!(after.get("root").is_some());
    let changes = diff(&before, &after);
    // /etc changed (a new entry), but the file itself is ignored; the
    // cache directory is neither deleted nor added.
    assert_eq!(
        changes,
        Changes {
            added_or_modified: paths(&["etc"]),
            deleted: vec![],
        }
    );
}

#[test]
fn ignore_set_semantics() {
    let mut s = IgnoreSet::defaults(true);
    s.add_path("opt/x/").add_prefix("/tmp/apt-key-gpghome");
    for yes in [
        "/proc",
        "proc/1/status",
        "/var/run",
        "/var/run/docker.sock",
        "/opt/x",
        "/opt/x/y",
        "/tmp/apt-key-gpghome",
        "/tmp/apt-key-gpghome.abc/pubring",
        "//dev//null",
    ] {
        assert!(s.is_ignored(yes), "{yes}");
    }
    for no in [
        "/",
        "/var",
        "/var/runner",
        "/procfs",
        "/opt/xy",
        "/tmp",
        "/sysroot",
    ] {
        assert!(!s.is_ignored(no), "{no}");
    }
    assert!(!IgnoreSet::defaults(false).is_ignored("/var/run/x"));
}

#[test]
fn names_that_are_not_utf8_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("d")).unwrap();
    let root = Root::open(tmp.path()).unwrap();
    let before = Index::scan(&root, &IgnoreSet::new()).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9");
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(tmp.path().join("d").join(name), b"latin-1").unwrap();
    let after = Index::scan(&root, &IgnoreSet::new()).unwrap();
    let changes = diff(&before, &after);
    assert_eq!(
        changes.added_or_modified,
        vec![PathBuf::from("d"), Path::new("d").join(name)]
    );
    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&store_dir.path().join("store")).unwrap();
    let mut w = LayerWriter::new(&store, LayerCompression::None, MediaTypes::Oci).unwrap();
    write_layer(&root, &after, &changes, &mut w).unwrap();
    let layer = w.finish().unwrap();
    let blob = store.read_blob(&layer.digest).unwrap();
    let mut ar = tar::Archive::new(&blob[..]);
    let names: Vec<Vec<u8>> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path_bytes().into_owned())
        .collect();
    assert_eq!(names, vec![b"d/".to_vec(), b"d/caf\xe9".to_vec()]);
}

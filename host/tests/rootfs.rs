//! Layer unpack into the build root, with crafted tars: every feature, and a
//! corpus of hostile layers that must stay inside the root.
//!
//! Tests that need privileges (chown, mknod, security.capability) check the
//! effective uid and test the fallback when not root. One test re-runs this
//! binary as uid 65534 with `setpriv` to exercise the real unprivileged path.

use kiln::image::media::Compression;
use kiln::rootfs::{ResolveError, Root, RootOptions, RootfsError, lookup_group, lookup_user};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

// ---------------------------------------------------------------- helpers

/// A tar written entry by entry with raw names, so that names the tar crate
/// refuses (`../x`, `/abs`) can be written too.
struct Tar {
    b: tar::Builder<Vec<u8>>,
}

#[derive(Clone)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

impl Default for Meta {
    fn default() -> Self {
        Self {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
        }
    }
}

impl Tar {
    fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn raw(
        &mut self,
        kind: EntryType,
        name: &[u8],
        link: &[u8],
        meta: &Meta,
        data: &[u8],
    ) -> &mut Self {
        let mut pax: Vec<(&str, &[u8])> = Vec::new();
        if name.len() > 100 {
            pax.push(("path", name));
        }
        if link.len() > 100 {
            pax.push(("linkpath", link));
        }
        if !pax.is_empty() {
            self.b.append_pax_extensions(pax).unwrap();
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(meta.mode);
        h.set_uid(meta.uid);
        h.set_gid(meta.gid);
        h.set_mtime(meta.mtime);
        {
            let old = h.as_old_mut();
            let n = name.len().min(100);
            old.name[..n].copy_from_slice(&name[..n]);
            let l = link.len().min(100);
            old.linkname[..l].copy_from_slice(&link[..l]);
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.b
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(
            EntryType::Regular,
            name.as_bytes(),
            b"",
            &Meta::default(),
            data,
        )
    }

    fn file_meta(&mut self, name: &str, data: &[u8], meta: Meta) -> &mut Self {
        self.raw(EntryType::Regular, name.as_bytes(), b"", &meta, data)
    }

    fn dir(&mut self, name: &str) -> &mut Self {
        let meta = Meta {
            mode: 0o755,
            ..Meta::default()
        };
        self.raw(EntryType::Directory, name.as_bytes(), b"", &meta, b"")
    }

    fn dir_meta(&mut self, name: &str, meta: Meta) -> &mut Self {
        self.raw(EntryType::Directory, name.as_bytes(), b"", &meta, b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let meta = Meta {
            mode: 0o777,
            ..Meta::default()
        };
        self.raw(
            EntryType::Symlink,
            name.as_bytes(),
            target.as_bytes(),
            &meta,
            b"",
        )
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            EntryType::Link,
            name.as_bytes(),
            target.as_bytes(),
            &Meta::default(),
            b"",
        )
    }

    fn device(&mut self, kind: EntryType, name: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o666);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_path(name).unwrap();
        h.set_cksum();
        self.b.append(&h, &b""[..]).unwrap();
        self
    }

    fn bytes(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

/// A root inside a scratch directory, with a sentinel file next to it (and
/// one two levels up) that no layer may touch.
struct Fixture {
    _tmp: tempfile::TempDir,
    outer: PathBuf,
    root_path: PathBuf,
    root: Root,
}

const SENTINEL: &[u8] = b"sentinel: must never change\n";

impl Fixture {
    fn new() -> Self {
        Self::with_options(RootOptions::default())
    }

    fn with_options(options: RootOptions) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        // outer/ holds the sentinels; outer/a/root is the root, so `../..`
        // from the root reaches outer/.
        let outer = tmp.path().join("outer");
        fs::create_dir_all(outer.join("a")).unwrap();
        fs::write(outer.join("sentinel"), SENTINEL).unwrap();
        fs::write(outer.join("a/sentinel"), SENTINEL).unwrap();
        let root_path = outer.join("a/root");
        let root = Root::create(&root_path).unwrap().with_options(options);
        Self {
            _tmp: tmp,
            outer,
            root_path,
            root,
        }
    }

    fn apply(&self, tar: &[u8]) -> Result<kiln::rootfs::LayerReport, RootfsError> {
        self.root.apply_layer(tar, Compression::None)
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root_path.join(rel)
    }

    /// Asserts nothing outside the root changed: the sentinels are intact
    /// and outer/ and outer/a hold only what the fixture put there.
    fn assert_outside_untouched(&self) {
        for s in ["sentinel", "a/sentinel"] {
            let p = self.outer.join(s);
            let m = fs::symlink_metadata(&p).unwrap();
            assert!(m.file_type().is_file(), "{s} replaced");
            assert_eq!(m.nlink(), 1, "{s} was hard linked");
            assert_eq!(fs::read(&p).unwrap(), SENTINEL, "{s} changed");
        }
        let mut outer: Vec<_> = fs::read_dir(&self.outer)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        outer.sort();
        assert_eq!(outer, ["a", "sentinel"]);
        let mut a: Vec<_> = fs::read_dir(self.outer.join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        a.sort();
        assert_eq!(a, ["root", "sentinel"]);
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- features

fn sample_layer() -> Vec<u8> {
    Tar::new()
        .dir("etc/")
        .file("etc/hostname", b"kiln\n")
        .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
        .symlink("etc/rel", "../hostname")
        .hardlink("etc/hostname2", "etc/hostname")
        .file("usr/bin/tool", b"#!/bin/sh\n")
        .bytes()
}

fn check_sample(f: &Fixture) {
    assert_eq!(fs::read(f.p("etc/hostname")).unwrap(), b"kiln\n");
    assert_eq!(
        fs::read_link(f.p("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    assert_eq!(
        fs::read_link(f.p("etc/rel")).unwrap(),
        Path::new("../hostname")
    );
    let a = fs::metadata(f.p("etc/hostname")).unwrap();
    let b = fs::metadata(f.p("etc/hostname2")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2);
    // A missing parent is created as a directory.
    assert!(fs::metadata(f.p("usr/bin")).unwrap().is_dir());
    f.assert_outside_untouched();
}

#[test]
fn plain_gzip_and_zstd_layers_unpack_the_same() {
    let tar = sample_layer();
    let f = Fixture::new();
    let r = f.apply(&tar).unwrap();
    assert_eq!(r.entries, 6);
    check_sample(&f);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let f = Fixture::new();
    f.root.apply_layer(&gz[..], Compression::Gzip).unwrap();
    check_sample(&f);

    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let f = Fixture::new();
    f.root.apply_layer(&zst[..], Compression::Zstd).unwrap();
    check_sample(&f);
}

#[test]
fn corrupt_stream_is_a_read_error() {
    let f = Fixture::new();
    let err = f
        .root
        .apply_layer(&b"not gzip at all"[..], Compression::Gzip)
        .unwrap_err();
    assert!(matches!(err, RootfsError::ReadLayer { .. }), "{err:?}");
    let mut tar = sample_layer();
    tar.truncate(700);
    let err = Fixture::new().apply(&tar).unwrap_err();
    assert!(matches!(err, RootfsError::ReadLayer { .. }), "{err:?}");
}

#[test]
fn modes_owners_and_special_bits() {
    let f = Fixture::new();
    let tar = Tar::new()
        .file_meta(
            "bin/su",
            b"x",
            Meta {
                mode: 0o4755,
                uid: 1000,
                gid: 1001,
                ..Meta::default()
            },
        )
        .file_meta(
            "bin/wall",
            b"x",
            Meta {
                mode: 0o2755,
                uid: 0,
                gid: 5,
                ..Meta::default()
            },
        )
        .dir_meta(
            "tmp",
            Meta {
                mode: 0o1777,
                ..Meta::default()
            },
        )
        .dir_meta(
            "ro",
            Meta {
                mode: 0o555,
                uid: 7,
                gid: 7,
                ..Meta::default()
            },
        )
        .file(
            "ro/inside",
            b"written before the directory became read-only",
        )
        .file_meta(
            "secret",
            b"s",
            Meta {
                mode: 0o000,
                ..Meta::default()
            },
        )
        .bytes();
    let r = f.apply(&tar).unwrap();
    let mode = |p: &str| fs::symlink_metadata(f.p(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("bin/su"), 0o4755);
    assert_eq!(mode("bin/wall"), 0o2755);
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("ro"), 0o555);
    assert_eq!(mode("secret"), 0o000);
    assert_eq!(
        fs::read(f.p("ro/inside")).unwrap(),
        b"written before the directory became read-only"
    );
    if is_root() {
        let m = fs::metadata(f.p("bin/su")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1001));
        let m = fs::metadata(f.p("ro")).unwrap();
        assert_eq!((m.uid(), m.gid()), (7, 7));
        assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    }
}

#[test]
fn unprivileged_mode_skips_ownership_with_one_line() {
    let f = Fixture::with_options(RootOptions { unprivileged: true });
    let mut t = Tar::new();
    for i in 0..5 {
        t.file_meta(
            &format!("f{i}"),
            b"x",
            Meta {
                mode: 0o4755,
                uid: 1000 + i,
                gid: 1000,
                ..Meta::default()
            },
        );
    }
    t.device(EntryType::Char, "dev/null", 1, 3);
    t.raw(EntryType::Fifo, b"run/fifo", b"", &Meta::default(), b"");
    t.pax(&[(
        "SCHILY.xattr.security.capability",
        b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    )]);
    t.file("bin/ping", b"x");
    let r = f.apply(&t.bytes()).unwrap();
    let own: Vec<_> = r
        .skipped
        .iter()
        .filter(|l| l.starts_with("ownership"))
        .collect();
    assert_eq!(own.len(), 1, "{:?}", r.skipped);
    assert!(own[0].contains("5 entries (first: f0)"), "{}", own[0]);
    assert!(
        r.skipped
            .iter()
            .any(|l| l.starts_with("device nodes not created: 1 entry (first: dev/null)"))
    );
    assert!(
        r.skipped
            .iter()
            .any(|l| l.starts_with("security.capability not set: 1 entry (first: bin/ping)"))
    );
    assert!(!f.p("dev/null").exists());
    // Fifos need no privilege.
    assert!(
        fs::symlink_metadata(f.p("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    // The mode, setuid included, is still applied.
    assert_eq!(
        fs::metadata(f.p("f3")).unwrap().permissions().mode() & 0o7777,
        0o4755
    );
}

#[test]
fn mtimes_of_files_symlinks_and_directories() {
    let f = Fixture::new();
    let m = |mtime| Meta {
        mode: 0o755,
        mtime,
        ..Meta::default()
    };
    let tar = Tar::new()
        .dir_meta("d", m(1_000_000_000))
        .file_meta("d/f", b"x", m(1_100_000_000))
        .raw(EntryType::Symlink, b"d/l", b"f", &m(1_200_000_000), b"")
        .dir_meta("d/sub", m(1_300_000_000))
        .file("d/sub/late", b"written after the directory entry")
        .pax(&[("mtime", b"1400000000.123456789")])
        .file("d/precise", b"p")
        .bytes();
    f.apply(&tar).unwrap();
    let mt = |p: &str| {
        let m = fs::symlink_metadata(f.p(p)).unwrap();
        (m.mtime(), m.mtime_nsec())
    };
    assert_eq!(
        mt("d"),
        (1_000_000_000, 0),
        "directory mtime is set after its content"
    );
    assert_eq!(mt("d/f"), (1_100_000_000, 0));
    assert_eq!(
        mt("d/l"),
        (1_200_000_000, 0),
        "symlink mtime, not its target's"
    );
    assert_eq!(mt("d/sub"), (1_300_000_000, 0));
    assert_eq!(mt("d/precise"), (1_400_000_000, 123_456_789));
}

#[test]
fn security_capability_xattr_is_set_and_others_ignored() {
    let f = Fixture::new();
    // VFS_CAP_REVISION_2, cap_net_raw (13) permitted.
    let cap: &[u8] = &[
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let tar = Tar::new()
        .pax(&[
            ("SCHILY.xattr.security.capability", cap),
            ("SCHILY.xattr.user.note", b"hi"),
        ])
        .file_meta(
            "bin/ping",
            b"elf",
            Meta {
                mode: 0o755,
                ..Meta::default()
            },
        )
        .pax(&[("SCHILY.xattr.user.other", b"x")])
        .file("other", b"o")
        .bytes();
    let r = f.apply(&tar).unwrap();
    let x: Vec<_> = r
        .skipped
        .iter()
        .filter(|l| l.starts_with("extended attributes ignored"))
        .collect();
    assert_eq!(x.len(), 1, "{:?}", r.skipped);
    assert!(x[0].contains("2 entries (first: bin/ping)"));
    if is_root() {
        let mut buf = vec![0u8; 64];
        let n = rustix::fs::getxattr(f.p("bin/ping").as_path(), "security.capability", &mut buf)
            .unwrap();
        assert_eq!(&buf[..n], cap);
    }
}

#[test]
fn device_nodes_and_fifos() {
    let f = Fixture::new();
    let mut h = Tar::new();
    h.device(EntryType::Char, "dev/null", 1, 3);
    h.raw(
        EntryType::Fifo,
        b"run/initctl",
        b"",
        &Meta {
            mode: 0o600,
            ..Meta::default()
        },
        b"",
    );
    let r = f.apply(&h.bytes()).unwrap();
    let fifo = fs::symlink_metadata(f.p("run/initctl")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.permissions().mode() & 0o777, 0o600);
    let dev = fs::symlink_metadata(f.p("dev/null"));
    match dev {
        Ok(m) => {
            assert!(m.file_type().is_char_device());
            assert_eq!(m.rdev(), rustix::fs::makedev(1, 3));
            assert_eq!(m.permissions().mode() & 0o777, 0o666);
        }
        Err(_) => assert!(
            r.skipped
                .iter()
                .any(|l| l.starts_with("device nodes not created")),
            "{:?}",
            r.skipped
        ),
    }
}

#[test]
fn replacing_files_directories_and_links() {
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .file("a", b"file a")
            .dir("b")
            .file("b/lower", b"lower")
            .dir("c")
            .file("c/lower", b"lower")
            .symlink("d", "/c")
            .bytes(),
    )
    .unwrap();
    f.apply(
        &Tar::new()
            .dir("a") // file replaced by a directory
            .file("a/x", b"x")
            .file("b", b"dir replaced by a file")
            .dir("c") // directory merges
            .file("c/upper", b"upper")
            .file("d", b"symlink replaced by a file, not written through")
            .bytes(),
    )
    .unwrap();
    assert!(f.p("a").is_dir());
    assert_eq!(fs::read(f.p("a/x")).unwrap(), b"x");
    assert_eq!(fs::read(f.p("b")).unwrap(), b"dir replaced by a file");
    assert_eq!(ls(&f.p("c")), ["lower", "upper"]);
    assert!(fs::symlink_metadata(f.p("d")).unwrap().is_file());
    assert_eq!(fs::read(f.p("c/lower")).unwrap(), b"lower");
}

#[test]
fn whiteouts_remove_lower_entries_and_never_land() {
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .file("a/b", b"b")
            .file("a/c", b"c")
            .file("a/deep/x", b"x")
            .file("top", b"t")
            .bytes(),
    )
    .unwrap();
    let r = f
        .apply(
            &Tar::new()
                .file("a/.wh.b", b"")
                .file("a/.wh.deep", b"")
                .file(".wh.top", b"")
                .file(".wh.never-existed", b"")
                .file("a/x.wh.y", b"a regular file whose name has .wh. inside")
                .file("a/z/.wh.nothing", b"")
                .bytes(),
        )
        .unwrap();
    assert_eq!(ls(&f.p("a")), ["c", "x.wh.y"]);
    assert!(!f.p("top").exists());
    assert!(
        !f.p("a/z").exists(),
        "a whiteout does not create its directory"
    );
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert_eq!(ls(&f.root_path), ["a"]);
}

#[test]
fn opaque_directory_respects_order_within_the_layer() {
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .file("d/old1", b"o")
            .file("d/sub/old2", b"o")
            .file("d/keep/old3", b"o")
            .file("e/old", b"o")
            .bytes(),
    )
    .unwrap();
    f.apply(
        &Tar::new()
            .dir("d")
            .file("d/before", b"written before the marker")
            .file(
                "d/keep/new",
                b"a lower directory written into by this layer",
            )
            .file("d/.wh..wh..opq", b"")
            .file("d/after", b"written after the marker")
            // Marker first: everything of this layer comes after it.
            .file("e/.wh..wh..opq", b"")
            .file("e/new", b"n")
            .bytes(),
    )
    .unwrap();
    assert_eq!(ls(&f.p("d")), ["after", "before", "keep"]);
    assert_eq!(
        ls(&f.p("d/keep")),
        ["new"],
        "lower content of a kept directory goes too"
    );
    assert_eq!(ls(&f.p("e")), ["new"]);
}

#[test]
fn aufs_metadata_is_skipped() {
    let f = Fixture::new();
    let r = f
        .apply(
            &Tar::new()
                .dir(".wh..wh.plnk")
                .file(".wh..wh.plnk/123.456", b"x")
                .file(".wh..wh.aufs", b"")
                .file("ok", b"ok")
                .bytes(),
        )
        .unwrap();
    assert_eq!(ls(&f.root_path), ["ok"]);
    assert_eq!(r.skipped.len(), 1, "{:?}", r.skipped);
    assert!(r.skipped[0].starts_with("aufs metadata skipped: 3 entries"));
}

// ---------------------------------------------------------------- hostile layers

#[test]
fn hostile_dotdot_names_are_refused() {
    for name in [
        "../x",
        "a/../../x",
        "./../sentinel",
        "a/b/../../../sentinel",
        "/../x",
    ] {
        let f = Fixture::new();
        let err = f
            .apply(&Tar::new().file(name, b"evil").bytes())
            .unwrap_err();
        match &err {
            RootfsError::UnsafeEntry { entry, reason } => {
                assert_eq!(entry, name);
                assert!(reason.contains("climbs above the root"), "{reason}");
            }
            other => panic!("{name}: {other:?}"),
        }
        f.assert_outside_untouched();
        assert!(ls(&f.root_path).is_empty(), "{name}");
    }
}

#[test]
fn dotdot_inside_the_root_is_cleaned() {
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .file("a/../b", b"b")
            .file("./c/./d", b"d")
            .bytes(),
    )
    .unwrap();
    assert_eq!(ls(&f.root_path), ["b", "c"]);
    f.assert_outside_untouched();
}

#[test]
fn absolute_names_are_made_relative() {
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .file("/abs/file", b"a")
            .file("//etc//x", b"x")
            .bytes(),
    )
    .unwrap();
    assert_eq!(fs::read(f.p("abs/file")).unwrap(), b"a");
    assert_eq!(fs::read(f.p("etc/x")).unwrap(), b"x");
    f.assert_outside_untouched();
}

#[test]
fn symlink_to_slash_then_write_through_it_lands_inside() {
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .symlink("evil", "/")
            .file("evil/etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
            .symlink("evil2", "../../..")
            .file("evil2/sentinel", b"overwritten?")
            .symlink("deep/evil3", "../../../../../../a")
            .file("deep/evil3/sentinel", b"overwritten?")
            .bytes(),
    )
    .unwrap();
    assert_eq!(
        fs::read(f.p("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(fs::read(f.p("sentinel")).unwrap(), b"overwritten?");
    assert_eq!(fs::read(f.p("a/sentinel")).unwrap(), b"overwritten?");
    // The links themselves are stored verbatim.
    assert_eq!(fs::read_link(f.p("evil2")).unwrap(), Path::new("../../.."));
    f.assert_outside_untouched();
}

#[test]
fn symlink_then_file_of_the_same_name_replaces_the_link() {
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .symlink("s", "../../sentinel")
            .file("s", b"must not be written through the link")
            .bytes(),
    )
    .unwrap();
    assert!(fs::symlink_metadata(f.p("s")).unwrap().is_file());
    f.assert_outside_untouched();
}

#[test]
fn hardlinks_to_host_paths_stay_inside() {
    // To /etc/shadow: the root has none, so it is an error, not the host's.
    let f = Fixture::new();
    let err = f
        .apply(&Tar::new().hardlink("shadow", "/etc/shadow").bytes())
        .unwrap_err();
    assert!(
        matches!(&err, RootfsError::Hardlink { reason, .. } if reason.contains("does not exist")),
        "{err:?}"
    );
    f.assert_outside_untouched();

    // With the root's own /etc/shadow, it links to that.
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .file("etc/shadow", b"root:*:1::::::\n")
            .hardlink("shadow", "/etc/shadow")
            .bytes(),
    )
    .unwrap();
    assert_eq!(
        fs::metadata(f.p("shadow")).unwrap().ino(),
        fs::metadata(f.p("etc/shadow")).unwrap().ino()
    );
    if let Ok(host) = fs::metadata("/etc/shadow") {
        assert_ne!(host.ino(), fs::metadata(f.p("shadow")).unwrap().ino());
    }

    // Climbing out by name is refused.
    for target in ["../../sentinel", "a/../../sentinel"] {
        let f = Fixture::new();
        let err = f
            .apply(&Tar::new().hardlink("x", target).bytes())
            .unwrap_err();
        assert!(
            matches!(&err, RootfsError::UnsafeEntry { .. }),
            "{target}: {err:?}"
        );
        f.assert_outside_untouched();
    }

    // Climbing out through a symlink resolves inside the root.
    let f = Fixture::new();
    let err = f
        .apply(
            &Tar::new()
                .symlink("up", "../..")
                .hardlink("x", "up/sentinel")
                .bytes(),
        )
        .unwrap_err();
    assert!(matches!(&err, RootfsError::Hardlink { .. }), "{err:?}");
    f.assert_outside_untouched();
}

#[test]
fn hardlink_to_a_directory_or_symlink() {
    let f = Fixture::new();
    let err = f
        .apply(&Tar::new().dir("d").hardlink("x", "d").bytes())
        .unwrap_err();
    assert!(
        matches!(&err, RootfsError::Hardlink { reason, .. } if reason.contains("is a directory")),
        "{err:?}"
    );
    // A hard link to a symlink links the symlink itself, as tar does.
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .symlink("l", "../../sentinel")
            .hardlink("l2", "l")
            .hardlink("l2", "l") // again: same inode, nothing to do
            .bytes(),
    )
    .unwrap();
    assert_eq!(
        fs::read_link(f.p("l2")).unwrap(),
        Path::new("../../sentinel")
    );
    f.assert_outside_untouched();
}

#[test]
fn hostile_whiteouts_are_contained() {
    for name in [".wh...", "a/.wh...", ".wh..", "a/.wh.."] {
        let f = Fixture::new();
        fs::create_dir(f.p("a")).unwrap();
        let err = f.apply(&Tar::new().file(name, b"").bytes()).unwrap_err();
        assert!(
            matches!(&err, RootfsError::UnsafeEntry { .. }),
            "{name}: {err:?}"
        );
        f.assert_outside_untouched();
        assert!(f.p("a").is_dir());
    }
    // Through a symlink that climbs: resolved inside, removes the root's own.
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .file("sentinel", b"the root's own")
            .symlink("up", "../../..")
            .file("up/.wh.sentinel", b"")
            .file("../x/.wh.y", b"")
            .bytes(),
    )
    .unwrap_err();
    assert!(!f.p("sentinel").exists());
    f.assert_outside_untouched();
    // Opaque through a climbing symlink empties only the root.
    let f = Fixture::new();
    f.apply(&Tar::new().file("lower", b"l").bytes()).unwrap();
    f.apply(
        &Tar::new()
            .symlink("up", "../..")
            .file("up/.wh..wh..opq", b"")
            .bytes(),
    )
    .unwrap();
    assert_eq!(ls(&f.root_path), ["up"]);
    f.assert_outside_untouched();
}

#[test]
fn symlink_loops_are_a_clear_error() {
    let f = Fixture::new();
    let err = f
        .apply(
            &Tar::new()
                .symlink("loop1", "loop2")
                .symlink("loop2", "/loop1")
                .file("loop1/x", b"x")
                .bytes(),
        )
        .unwrap_err();
    match &err {
        RootfsError::Resolve { path, source } => {
            assert!(path.contains("loop1/x"), "{path}");
            assert!(matches!(source, ResolveError::Loop { .. }), "{source:?}");
            let msg = std::error::Error::source(&err).unwrap().to_string();
            assert!(msg.contains("too many levels of symbolic links"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    f.assert_outside_untouched();
    let err = f.root.resolve("/loop1").unwrap_err();
    assert!(matches!(
        err,
        RootfsError::Resolve {
            source: ResolveError::Loop { .. },
            ..
        }
    ));
}

#[test]
fn huge_names() {
    // A component longer than NAME_MAX: the kernel's error, naming the entry.
    let f = Fixture::new();
    let long = format!("dir/{}", "n".repeat(300));
    let err = f.apply(&Tar::new().file(&long, b"x").bytes()).unwrap_err();
    assert!(err.to_string().contains(&long), "{err}");
    f.assert_outside_untouched();

    // A path far beyond PATH_MAX made of short components lands inside:
    // the walk goes one component at a time.
    let f = Fixture::new();
    let deep: Vec<String> = (0..60)
        .map(|i| format!("{i:03}{}", "d".repeat(97)))
        .collect();
    let deep = deep.join("/") + "/leaf";
    assert!(deep.len() > 6000);
    f.apply(&Tar::new().file(&deep, b"deep").bytes()).unwrap();
    let got = f.root.read_file(&format!("/{deep}")).unwrap();
    assert_eq!(got, b"deep");
    f.assert_outside_untouched();
}

#[test]
fn nul_in_a_pax_name_is_refused() {
    let f = Fixture::new();
    let tar = Tar::new()
        .pax(&[("path", b"a\0b")])
        .file("placeholder", b"x")
        .bytes();
    let err = f.apply(&tar).unwrap_err();
    assert!(matches!(&err, RootfsError::UnsafeEntry { .. }), "{err:?}");
}

// ---------------------------------------------------------------- resolve, mkdir_all, read_file

#[test]
fn resolve_follows_symlinks_inside_the_root() {
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .dir("run")
            .symlink("var/run", "/run")
            .symlink("var/lock", "../run/lock")
            .symlink("escape", "../../../../etc")
            .symlink("abs", "/usr/bin")
            .file("usr/bin/sh", b"sh")
            .bytes(),
    )
    .unwrap();
    let r = |p| f.root.resolve(p).unwrap();
    assert_eq!(r("/var/run/x"), Path::new("run/x"));
    assert_eq!(r("/var/lock"), Path::new("run/lock"));
    assert_eq!(r("/escape/passwd"), Path::new("etc/passwd"));
    assert_eq!(r("/../../.."), Path::new("."));
    assert_eq!(r("/"), Path::new("."));
    assert_eq!(r("/abs/sh"), Path::new("usr/bin/sh"));
    assert_eq!(r("/abs"), Path::new("usr/bin"));
    assert_eq!(r("/missing/../usr"), Path::new("usr"));
    // `..` after a symlink climbs from where the link led, as the kernel does.
    assert_eq!(r("/var/run/../usr/bin/../bin/sh"), Path::new("usr/bin/sh"));
    assert_eq!(r("/usr/bin/../../.."), Path::new("."));
    assert_eq!(r("usr/./bin/../bin/sh"), Path::new("usr/bin/sh"));
    let err = f.root.resolve("/usr/bin/sh/x").unwrap_err();
    assert!(matches!(
        err,
        RootfsError::Resolve {
            source: ResolveError::NotADirectory { .. },
            ..
        }
    ));
}

#[test]
fn mkdir_all_creates_through_symlinks() {
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .dir("run")
            .symlink("var/run", "/run")
            .file("file", b"f")
            .bytes(),
    )
    .unwrap();
    let created = f
        .root
        .mkdir_all("/var/run/app/data", Some((1000, 1000)))
        .unwrap();
    assert_eq!(created, ["/run/app", "/run/app/data"]);
    let m = fs::metadata(f.p("run/app/data")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o755);
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (1000, 1000));
    }
    assert!(f.root.mkdir_all("/run/app", None).unwrap().is_empty());
    let err = f.root.mkdir_all("/file/sub", None).unwrap_err();
    assert!(matches!(
        err,
        RootfsError::Resolve {
            source: ResolveError::NotADirectory { .. },
            ..
        }
    ));
    let created = f.root.mkdir_all("/../../outside", None).unwrap();
    assert_eq!(created, ["/outside"]);
    f.assert_outside_untouched();
}

#[test]
fn read_file_through_symlinks() {
    let f = Fixture::new();
    f.apply(
        &Tar::new()
            .file("real/passwd", b"root:x:0:0::/root:/bin/sh\n")
            .symlink("etc", "real")
            .symlink("link", "/etc/passwd")
            .symlink("outside", "../../sentinel")
            .bytes(),
    )
    .unwrap();
    assert_eq!(
        f.root.read_file("/etc/passwd").unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(
        f.root.read_file("/link").unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    // ../../sentinel resolves to the root's /sentinel, which does not exist.
    let err = f.root.read_file("/outside").unwrap_err();
    assert!(matches!(err, RootfsError::Io { .. }), "{err:?}");
}

#[test]
fn create_refuses_a_non_empty_directory() {
    let f = Fixture::new();
    fs::write(f.p("x"), b"x").unwrap();
    let err = Root::create(&f.root_path).unwrap_err();
    assert!(matches!(err, RootfsError::NotEmpty { .. }));
    assert!(Root::open(&f.root_path).is_ok());
}

// ---------------------------------------------------------------- users

#[test]
fn user_and_group_lookup() {
    let f = Fixture::new();
    // No files: only numeric ids work.
    assert_eq!(lookup_user(&f.root, "1000").unwrap(), (1000, 0, vec![]));
    assert_eq!(lookup_user(&f.root, "1000:50").unwrap(), (1000, 50, vec![]));
    let err = lookup_user(&f.root, "app").unwrap_err();
    assert!(err.to_string().contains("/etc/passwd"), "{err}");

    f.apply(
        &Tar::new()
            .file(
                "etc/passwd",
                b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n# comment\nsvc:x:2000:2001::/:/bin/false\n",
            )
            .file(
                "etc/group",
                b"root:x:0:\nwheel:x:10:root,app\napp:x:1000:\ndocker:x:999:app, svc\nsvcgrp:x:2001:\n",
            )
            .bytes(),
    )
    .unwrap();
    assert_eq!(lookup_user(&f.root, "").unwrap(), (0, 0, vec![]));
    assert_eq!(lookup_user(&f.root, "root").unwrap(), (0, 0, vec![10]));
    assert_eq!(
        lookup_user(&f.root, "app").unwrap(),
        (1000, 1000, vec![10, 999])
    );
    assert_eq!(
        lookup_user(&f.root, "1000").unwrap(),
        (1000, 1000, vec![10, 999])
    );
    assert_eq!(
        lookup_user(&f.root, "svc").unwrap(),
        (2000, 2001, vec![999])
    );
    assert_eq!(
        lookup_user(&f.root, "app:docker").unwrap(),
        (1000, 999, vec![])
    );
    assert_eq!(
        lookup_user(&f.root, "app:4242").unwrap(),
        (1000, 4242, vec![])
    );
    assert_eq!(lookup_user(&f.root, "4242").unwrap(), (4242, 0, vec![]));
    assert_eq!(
        lookup_user(&f.root, "4242:wheel").unwrap(),
        (4242, 10, vec![])
    );
    let err = lookup_user(&f.root, "nobody").unwrap_err();
    assert!(
        matches!(&err, RootfsError::UnknownUser { user, file } if user == "nobody" && *file == "/etc/passwd")
    );
    let err = lookup_user(&f.root, "app:nogroup").unwrap_err();
    assert!(
        matches!(&err, RootfsError::UnknownGroup { group, file } if group == "nogroup" && *file == "/etc/group")
    );
    assert!(matches!(
        lookup_user(&f.root, "app:"),
        Err(RootfsError::InvalidUser { .. })
    ));
    assert!(matches!(
        lookup_user(&f.root, "99999999999"),
        Err(RootfsError::InvalidUser { .. })
    ));
    assert_eq!(lookup_group(&f.root, "docker").unwrap(), 999);
    assert_eq!(lookup_group(&f.root, "77").unwrap(), 77);
    assert!(lookup_group(&f.root, "none").is_err());
}

// ---------------------------------------------------------------- a real unprivileged user

const CHILD_ENV: &str = "KILN_ROOTFS_UNPRIVILEGED_CHILD";

/// Runs only inside the child started by `as_an_ordinary_user`.
#[test]
fn unprivileged_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    assert!(!is_root());
    let root = Root::create(&Path::new(&dir).join("root")).unwrap();
    let mut t = Tar::new();
    t.file_meta(
        "bin/su",
        b"x",
        Meta {
            mode: 0o4755,
            uid: 0,
            gid: 0,
            ..Meta::default()
        },
    );
    t.file_meta("etc/a", b"a", Meta::default());
    t.device(EntryType::Char, "dev/null", 1, 3);
    t.dir_meta(
        "ro",
        Meta {
            mode: 0o555,
            ..Meta::default()
        },
    );
    t.file("ro/inside", b"i");
    let r = root.apply_layer(&t.bytes()[..], Compression::None).unwrap();
    assert_eq!(r.skipped.len(), 2, "{:?}", r.skipped);
    assert!(
        r.skipped[0].starts_with("ownership not applied: 4 entries (first: bin/su): not permitted"),
        "{:?}",
        r.skipped
    );
    assert!(
        r.skipped[1].starts_with("device nodes not created: 1 entry (first: dev/null)"),
        "{:?}",
        r.skipped
    );
    let m = fs::metadata(Path::new(&dir).join("root/bin/su")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(
        fs::read(Path::new(&dir).join("root/ro/inside")).unwrap(),
        b"i"
    );
}

#[test]
fn as_an_ordinary_user() {
    if !is_root() || std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let Ok(setpriv) = which("setpriv") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    rustix::fs::chown(
        tmp.path(),
        Some(rustix::fs::Uid::from_raw(65534)),
        Some(rustix::fs::Gid::from_raw(65534)),
    )
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args([
            "--exact",
            "unprivileged_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, tmp.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

fn which(name: &str) -> Result<PathBuf, ()> {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(())
}

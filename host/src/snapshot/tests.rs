use super::*;
use crate::image::{Digest, HashingReader, media};
use crate::store::BlobStore;
use std::collections::BTreeMap;
use std::io::{self, Read};

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = BlobStore::open(&dir.path().join("store")).unwrap();
    (dir, s)
}

/// The uncompressed tar of a layer, after checking digest, size and diff_id.
fn uncompressed(store: &BlobStore, layer: &Layer) -> Vec<u8> {
    let blob = store.read_blob(&layer.digest).unwrap();
    assert_eq!(Digest::sha256_of(&blob), layer.digest);
    assert_eq!(blob.len() as u64, layer.size);
    let mut tar = Vec::new();
    match media::layer_compression(layer.media_type).unwrap() {
        media::Compression::None => tar = blob,
        media::Compression::Gzip => {
            flate2::read::GzDecoder::new(&blob[..])
                .read_to_end(&mut tar)
                .unwrap();
        }
        media::Compression::Zstd => {
            zstd::stream::read::Decoder::new(&blob[..])
                .unwrap()
                .read_to_end(&mut tar)
                .unwrap();
        }
    }
    assert_eq!(Digest::sha256_of(&tar), layer.diff_id);
    assert_eq!(tar.len() as u64, layer.uncompressed_size);
    tar
}

#[derive(Debug, PartialEq)]
struct Seen {
    path: Vec<u8>,
    raw_name: Vec<u8>,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<Vec<u8>>,
    pax: BTreeMap<String, Vec<u8>>,
    data: Vec<u8>,
}

fn entries(tar_bytes: &[u8]) -> Vec<Seen> {
    let mut ar = tar::Archive::new(tar_bytes);
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
        assert_eq!(h.username_bytes(), Some(&b""[..]), "uname is empty");
        assert_eq!(h.groupname_bytes(), Some(&b""[..]), "gname is empty");
        assert!(h.as_ustar().is_some(), "ustar headers");
        let raw_name = h.as_ustar().unwrap().name.to_vec();
        let raw_name = raw_name.split(|&b| b == 0).next().unwrap().to_vec();
        let mut seen = Seen {
            path: e.path_bytes().into_owned(),
            raw_name,
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: e.header().uid().unwrap(),
            gid: e.header().gid().unwrap(),
            mtime: e.header().mtime().unwrap(),
            link: e.link_name_bytes().map(|l| l.into_owned()),
            pax,
            data: Vec::new(),
        };
        // tar 0.4 reports the PAX uid/gid/mtime through the header only when
        // reading with the PAX-aware accessors; take them from the records.
        for (key, field) in [("uid", &mut seen.uid), ("gid", &mut seen.gid)] {
            if let Some(v) = seen.pax.get(key) {
                *field = std::str::from_utf8(v).unwrap().parse().unwrap();
            }
        }
        e.read_to_end(&mut seen.data).unwrap();
        out.push(seen);
    }
    out
}

fn meta(mode: u32, uid: u64, gid: u64, mtime: u64) -> EntryMeta {
    EntryMeta {
        mode,
        uid,
        gid,
        mtime,
        xattrs: BTreeMap::new(),
    }
}

fn sample(store: &BlobStore, compression: LayerCompression, media: MediaTypes) -> Layer {
    let mut w = LayerWriter::new(store, compression, media).unwrap();
    w.add_dir("etc", &meta(0o755, 0, 0, 1_700_000_000)).unwrap();
    let hosts = b"127.0.0.1 localhost\n";
    w.add_file(
        "/etc/hosts",
        &meta(0o644, 1000, 1000, 1_700_000_001),
        hosts.len() as u64,
        &hosts[..],
    )
    .unwrap();
    w.add_file("etc/setuid", &meta(0o4755, 0, 0, 1), 0, io::empty())
        .unwrap();
    w.add_symlink("etc/link", &meta(0o777, 0, 0, 2), "/abs/../target")
        .unwrap();
    w.add_hardlink("etc/hard", &meta(0o644, 1000, 1000, 3), "etc/hosts")
        .unwrap();
    w.add_special("etc/fifo", &meta(0o600, 0, 0, 4), SpecialFile::Fifo)
        .unwrap();
    w.add_whiteout("etc/gone").unwrap();
    w.add_opaque_whiteout("var/cache").unwrap();
    w.finish().unwrap()
}

#[test]
fn round_trip_in_each_compression() {
    let (_d, s) = store();
    for (compression, media_type) in [
        (LayerCompression::None, media::OCI_LAYER_TAR),
        (LayerCompression::gzip(-1).unwrap(), media::OCI_LAYER_GZIP),
        (LayerCompression::zstd(-1).unwrap(), media::OCI_LAYER_ZSTD),
        (LayerCompression::Gzip { level: 1 }, media::OCI_LAYER_GZIP),
        (LayerCompression::Zstd { level: 19 }, media::OCI_LAYER_ZSTD),
    ] {
        let layer = sample(&s, compression, MediaTypes::Oci);
        assert_eq!(layer.media_type, media_type);
        let seen = entries(&uncompressed(&s, &layer));
        let names: Vec<_> = seen
            .iter()
            .map(|e| String::from_utf8(e.path.clone()).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "etc/",
                "etc/hosts",
                "etc/setuid",
                "etc/link",
                "etc/hard",
                "etc/fifo",
                "etc/.wh.gone",
                "var/cache/.wh..wh..opq"
            ]
        );
        assert_eq!(
            seen[0].raw_name, b"etc/",
            "directories keep the trailing slash"
        );
        assert_eq!(seen[0].kind, tar::EntryType::Directory);
        assert_eq!((seen[0].mode, seen[0].mtime), (0o755, 1_700_000_000));
        assert_eq!(seen[1].data, b"127.0.0.1 localhost\n");
        assert_eq!((seen[1].uid, seen[1].gid), (1000, 1000));
        assert_eq!(seen[2].mode, 0o4755);
        assert_eq!(seen[3].kind, tar::EntryType::Symlink);
        assert_eq!(seen[3].link.as_deref(), Some(&b"/abs/../target"[..]));
        assert_eq!(seen[4].kind, tar::EntryType::Link);
        assert_eq!(seen[4].link.as_deref(), Some(&b"etc/hosts"[..]));
        assert_eq!(seen[5].kind, tar::EntryType::Fifo);
        for wh in &seen[6..] {
            assert_eq!(wh.kind, tar::EntryType::Regular);
            assert_eq!((wh.mode, wh.uid, wh.gid, wh.mtime), (0, 0, 0, 0));
            assert!(wh.data.is_empty());
        }
        assert!(seen.iter().all(|e| e.pax.is_empty()), "nothing needed PAX");
    }
}

#[test]
fn same_input_same_digests() {
    let (_d, s) = store();
    for compression in [
        LayerCompression::None,
        LayerCompression::Gzip { level: 9 },
        LayerCompression::Zstd { level: 3 },
    ] {
        let a = sample(&s, compression, MediaTypes::Oci);
        let b = sample(&s, compression, MediaTypes::Oci);
        assert_eq!(a, b);
    }
    let docker = sample(&s, LayerCompression::Gzip { level: 6 }, MediaTypes::Docker);
    let oci = sample(&s, LayerCompression::Gzip { level: 6 }, MediaTypes::Oci);
    assert_eq!(docker.media_type, media::DOCKER_LAYER_GZIP);
    assert_eq!(
        (&docker.digest, &docker.diff_id),
        (&oci.digest, &oci.diff_id)
    );
}

#[test]
fn pax_records_for_xattrs_long_names_and_large_ids() {
    let (_d, s) = store();
    let mut w = LayerWriter::new(&s, LayerCompression::None, MediaTypes::Oci).unwrap();
    let cap = vec![
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let mut m = meta(0o755, 0, 0, 0);
    m.xattrs.insert("security.capability".into(), cap.clone());
    // (Values may hold any byte; the tar crate's reader splits records at
    // newlines, so this test keeps them out.)
    m.xattrs.insert("user.note".into(), b"a=b c".to_vec());
    w.add_file("usr/bin/ping", &m, 3, &b"elf"[..]).unwrap();
    let long_dir = "d".repeat(120);
    let splittable = format!("{long_dir}/file");
    w.add_file(&splittable, &meta(0o644, 0, 0, 0), 0, io::empty())
        .unwrap();
    let unsplittable = "x".repeat(300);
    w.add_file(&unsplittable, &meta(0o644, 0, 0, 0), 0, io::empty())
        .unwrap();
    w.add_dir("caf\u{e9}", &meta(0o755, 0, 0, 0)).unwrap();
    w.add_symlink("s", &meta(0o777, 0, 0, 0), "t".repeat(150))
        .unwrap();
    w.add_file(
        "big-ids",
        &meta(0o644, 3_000_000, 4_000_000, 0),
        0,
        io::empty(),
    )
    .unwrap();
    let layer = w.finish().unwrap();
    let tar_bytes = uncompressed(&s, &layer);
    let seen = entries(&tar_bytes);
    assert_eq!(seen[0].pax.len(), 2);
    assert_eq!(seen[0].pax["SCHILY.xattr.security.capability"], cap);
    assert_eq!(seen[0].pax["SCHILY.xattr.user.note"], b"a=b c");
    assert_eq!(seen[1].path, splittable.as_bytes());
    assert!(seen[1].pax.is_empty(), "ustar prefix holds the directory");
    assert_eq!(seen[2].path, unsplittable.as_bytes());
    assert_eq!(seen[2].pax["path"], unsplittable.as_bytes());
    assert_eq!(seen[3].path, "caf\u{e9}/".as_bytes());
    assert_eq!(seen[3].pax["path"], "caf\u{e9}/".as_bytes());
    assert_eq!(seen[4].link.as_deref(), Some("t".repeat(150).as_bytes()));
    assert_eq!((seen[5].uid, seen[5].gid), (3_000_000, 4_000_000));

    // GNU tar reads the same names and the capability.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.tar");
    std::fs::write(&path, &tar_bytes).unwrap();
    let out = std::process::Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "-tvf"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&unsplittable), "{listing}");
    assert!(listing.contains(&splittable), "{listing}");
    assert!(listing.contains("3000000/4000000"), "{listing}");
}

#[test]
fn mtime_clamp() {
    let (_d, s) = store();
    let mut w = LayerWriter::new(&s, LayerCompression::None, MediaTypes::Oci).unwrap();
    w.clamp_mtime(1_000_000_000);
    w.add_dir("new", &meta(0o755, 0, 0, 2_000_000_000)).unwrap();
    w.add_dir("old", &meta(0o755, 0, 0, 5)).unwrap();
    let layer = w.finish().unwrap();
    let seen = entries(&uncompressed(&s, &layer));
    assert_eq!(seen[0].mtime, 1_000_000_000);
    assert_eq!(seen[1].mtime, 5);
}

/// The gzip header has no time (MTIME 0) and no OS (255), so equal
/// entries written at different times give the same blob.
#[test]
fn gzip_layers_carry_no_time() {
    let (_d, s) = store();
    let write = |s: &BlobStore| {
        let mut w =
            LayerWriter::new(s, LayerCompression::Gzip { level: 6 }, MediaTypes::Oci).unwrap();
        w.clamp_mtime(0);
        w.add_file("f", &meta(0o644, 0, 0, 1_700_000_000), 2, &b"hi"[..])
            .unwrap();
        w.finish().unwrap()
    };
    let first = write(&s);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = write(&s);
    assert_eq!(first, second);
    let blob = s.read_blob(&first.digest).unwrap();
    assert_eq!(&blob[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&blob[4..8], &[0, 0, 0, 0], "gzip MTIME is set");
    assert_eq!(blob[9], 255, "gzip OS is set");
    assert_eq!(entries(&uncompressed(&s, &first))[0].mtime, 0);
}

#[test]
fn multi_megabyte_layer_streams() {
    let (_d, s) = store();
    const SIZE: u64 = 8 << 20;
    let mut w = LayerWriter::new(&s, LayerCompression::Gzip { level: 1 }, MediaTypes::Oci).unwrap();
    // The content comes from a reader, and the layer goes to the store file:
    // nothing in the chain holds it whole.
    let content = io::repeat(b'k').take(SIZE);
    w.add_file("big", &meta(0o644, 0, 0, 0), SIZE, content)
        .unwrap();
    let layer = w.finish().unwrap();
    assert_eq!(layer.uncompressed_size, 512 + SIZE + 1024);
    assert!(layer.size < SIZE / 10);
    let blob = s.open_blob(&layer.digest).unwrap();
    let mut blob_hash = HashingReader::new(blob);
    let mut tar_hash = HashingReader::new(flate2::read::GzDecoder::new(&mut blob_hash));
    io::copy(&mut tar_hash, &mut io::sink()).unwrap();
    assert_eq!(
        tar_hash.finish(),
        (layer.diff_id.clone(), layer.uncompressed_size)
    );
    assert_eq!(blob_hash.finish(), (layer.digest.clone(), layer.size));
}

#[test]
fn short_file_poisons_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = BlobStore::open(&dir.path().join("store")).unwrap();
    let mut w = LayerWriter::new(&s, LayerCompression::Gzip { level: 6 }, MediaTypes::Oci).unwrap();
    let err = w
        .add_file("f", &meta(0o644, 0, 0, 0), 10, &b"short"[..])
        .unwrap_err();
    assert!(
        matches!(
            err,
            SnapshotError::ShortFile {
                expected: 10,
                actual: 5,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        w.add_dir("d", &meta(0o755, 0, 0, 0)),
        Err(SnapshotError::Poisoned)
    ));
    assert!(matches!(w.finish(), Err(SnapshotError::Poisoned)));
    let tmp = std::fs::read_dir(dir.path().join("store/tmp"))
        .unwrap()
        .count();
    let blobs = std::fs::read_dir(dir.path().join("store/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!((tmp, blobs), (0, 0));
}

#[test]
fn compression_settings() {
    assert_eq!(
        LayerCompression::gzip(-1).unwrap(),
        LayerCompression::Gzip { level: 6 }
    );
    assert_eq!(
        LayerCompression::gzip(0).unwrap(),
        LayerCompression::Gzip { level: 6 }
    );
    assert_eq!(
        LayerCompression::gzip(9).unwrap(),
        LayerCompression::Gzip { level: 9 }
    );
    assert!(LayerCompression::gzip(10).is_err());
    assert_eq!(
        LayerCompression::zstd(-1).unwrap(),
        LayerCompression::Zstd { level: 3 }
    );
    assert_eq!(
        LayerCompression::zstd(22).unwrap(),
        LayerCompression::Zstd { level: 22 }
    );
    assert!(LayerCompression::zstd(23).is_err());
    let (_d, s) = store();
    // Docker's media types have no zstd layer; uncompressed is
    // `application/vnd.docker.image.rootfs.diff.tar`.
    assert!(matches!(
        LayerWriter::new(&s, LayerCompression::Zstd { level: 3 }, MediaTypes::Docker),
        Err(SnapshotError::NoDockerMediaType { .. })
    ));
    assert_eq!(
        LayerCompression::None
            .media_type(MediaTypes::Docker)
            .unwrap(),
        crate::image::media::DOCKER_LAYER_TAR
    );
    assert!(matches!(
        LayerWriter::new(&s, LayerCompression::Gzip { level: 12 }, MediaTypes::Oci),
        Err(SnapshotError::CompressionLevel { .. })
    ));
}

#[test]
fn invalid_paths_and_xattrs() {
    let (_d, s) = store();
    let mut w = LayerWriter::new(&s, LayerCompression::None, MediaTypes::Oci).unwrap();
    let m = meta(0o644, 0, 0, 0);
    for bad in ["../x", "a/../b", "/", "", "./"] {
        assert!(
            matches!(
                w.add_file(bad, &m, 0, io::empty()),
                Err(SnapshotError::InvalidPath { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        w.add_hardlink("x", &m, "../etc/shadow"),
        Err(SnapshotError::InvalidPath { .. })
    ));
    let mut with_bad_xattr = m.clone();
    with_bad_xattr.xattrs.insert("a=b".into(), vec![]);
    assert!(matches!(
        w.add_file("x", &with_bad_xattr, 0, io::empty()),
        Err(SnapshotError::InvalidXattr { .. })
    ));
    // Path errors are found before anything is written: the writer is usable.
    w.add_file("/./a//b/", &m, 0, io::empty()).unwrap();
    let layer = w.finish().unwrap();
    let seen = entries(&uncompressed(&s, &layer));
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, b"a/b");
}

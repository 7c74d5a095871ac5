//! Each output written from a small image built with the layer writer,
//! then read back with the real `skopeo` and `umoci`.

use super::*;
use crate::image::media;
use crate::snapshot::{EntryMeta, LayerCompression, LayerWriter, MediaTypes};
use serde_json::{Value, json};
use std::fs;
use std::path::Path;
use std::process::Command;

struct Fixture {
    dir: tempfile::TempDir,
    store: BlobStore,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("store")).unwrap();
        Self { dir, store }
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Two layers: the first makes /etc with two files, the second adds a
    /// file and whites one of the first out. `marker` makes images differ.
    fn image(&self, compression: LayerCompression, marker: &str) -> ImageBlobs {
        let dir = EntryMeta::with_mode(0o755);
        let file = EntryMeta::with_mode(0o644);
        let mut w = LayerWriter::new(&self.store, compression, MediaTypes::Oci).unwrap();
        w.add_dir("etc", &dir).unwrap();
        let hello = format!("hello from kiln {marker}\n");
        w.add_file("etc/hello", &file, hello.len() as u64, hello.as_bytes())
            .unwrap();
        w.add_file("etc/gone", &file, 3, &b"bye"[..]).unwrap();
        w.add_symlink("etc/link", &EntryMeta::with_mode(0o777), "hello")
            .unwrap();
        let l1 = w.finish().unwrap();
        let mut w = LayerWriter::new(&self.store, compression, MediaTypes::Oci).unwrap();
        w.add_dir("etc", &dir).unwrap();
        w.add_file("etc/second", &file, 6, &b"second"[..]).unwrap();
        w.add_whiteout("etc/gone").unwrap();
        let l2 = w.finish().unwrap();
        let layers: Vec<LayerRef> = [l1, l2]
            .into_iter()
            .map(|l| LayerRef {
                digest: l.digest,
                diff_id: l.diff_id,
                size: l.size,
                media_type: l.media_type.to_string(),
            })
            .collect();
        let config = serde_json::to_vec(&json!({
            "created": "1970-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Labels": {"marker": marker}},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
            "history": [{"created_by": "layer 1"}, {"created_by": "layer 2"}],
        }))
        .unwrap();
        let config_digest = Digest::sha256_of(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size})).collect::<Vec<_>>(),
        }))
        .unwrap();
        ImageBlobs {
            manifest_digest: Digest::sha256_of(&manifest),
            manifest,
            manifest_media_type: media::OCI_MANIFEST.into(),
            config,
            config_digest,
            layers,
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed for this test ({e})"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run_fails(cmd: &str, args: &[&str]) -> bool {
    !Command::new(cmd)
        .args(args)
        .output()
        .unwrap()
        .status
        .success()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Names in `dir` that look like kiln's temporaries.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains(".tmp-") {
            found.push(name.clone());
        }
        if e.file_type().unwrap().is_dir() {
            found.extend(
                leftovers(&e.path())
                    .into_iter()
                    .map(|n| format!("{name}/{n}")),
            );
        }
    }
    found
}

/// The config an OCI layout written by skopeo holds for its only image.
fn layout_config(dir: &Path) -> Value {
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.strip_prefix("sha256:").unwrap())
    };
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(&fs::read(blob(m)).unwrap()).unwrap();
    let c = manifest["config"]["digest"].as_str().unwrap();
    serde_json::from_slice(&fs::read(blob(c)).unwrap()).unwrap()
}

fn diff_ids(image: &ImageBlobs) -> Vec<String> {
    image.layers.iter().map(|l| l.diff_id.to_string()).collect()
}

#[test]
fn docker_archive_reads_back_with_skopeo() {
    let f = Fixture::new();
    for compression in [
        LayerCompression::Gzip { level: 6 },
        LayerCompression::Zstd { level: 3 },
        LayerCompression::None,
    ] {
        let image = f.image(compression, "archive");
        let tags = docker_archive_repo_tags(&["registry.example.com/team/app:v1".into()]).unwrap();
        let path = f.out("image.tar");
        write_docker_archive(&path, &image, &f.store, &tags).unwrap();

        // The layout go-containerregistry writes.
        let mut ar = tar::Archive::new(fs::File::open(&path).unwrap());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut want = vec![image.config_digest.to_string()];
        want.extend(
            image
                .layers
                .iter()
                .map(|l| format!("{}.tar.gz", l.digest.hex())),
        );
        want.push("manifest.json".into());
        assert_eq!(names, want);

        let inspect: Value = serde_json::from_str(&run(
            "skopeo",
            &["inspect", &format!("docker-archive:{}", s(&path))],
        ))
        .unwrap();
        assert_eq!(inspect["Labels"]["marker"], "archive");
        // The tag in RepoTags selects the image.
        run(
            "skopeo",
            &[
                "inspect",
                &format!(
                    "docker-archive:{}:registry.example.com/team/app:v1",
                    s(&path)
                ),
            ],
        );
        // Copying decompresses and checks every layer against its diff_id.
        let oci = f.out("copied");
        run(
            "skopeo",
            &[
                "copy",
                "-q",
                &format!("docker-archive:{}", s(&path)),
                &format!("oci:{}:copied", s(&oci)),
            ],
        );
        assert_eq!(
            layout_config(&oci)["rootfs"]["diff_ids"],
            json!(diff_ids(&image))
        );
        fs::remove_dir_all(&oci).unwrap();
    }
    assert!(leftovers(f.dir.path()).is_empty());
}

#[test]
fn docker_archive_dedups_layers_and_replaces_files() {
    let f = Fixture::new();
    let mut image = f.image(LayerCompression::Gzip { level: 6 }, "dup");
    // The same layer twice (an empty RUN, say) is stored once.
    image.layers.push(image.layers[0].clone());
    let path = f.out("dup.tar");
    fs::write(&path, b"an older file").unwrap();
    write_docker_archive(&path, &image, &f.store, &[]).unwrap();
    let mut ar = tar::Archive::new(fs::File::open(&path).unwrap());
    assert_eq!(ar.entries().unwrap().count(), 4);
    let mut ar = tar::Archive::new(fs::File::open(&path).unwrap());
    let manifest: Value = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_str() == Some("manifest.json"))
        .map(|e| serde_json::from_reader(e).unwrap())
        .unwrap();
    assert_eq!(manifest[0]["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(manifest[0]["RepoTags"], json!([]));
    // Not a regular file: streamed in place.
    write_docker_archive(Path::new("/dev/null"), &image, &f.store, &[]).unwrap();
    assert!(leftovers(f.dir.path()).is_empty());
}

#[test]
fn oci_layout_reads_back_with_skopeo_and_umoci() {
    let f = Fixture::new();
    let image = f.image(LayerCompression::Gzip { level: 6 }, "one");
    let layout = f.out("nested/layout");
    write_oci_layout(&layout, &image, &f.store, Some("v1")).unwrap();

    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        index["manifests"][0]["annotations"][REF_NAME_ANNOTATION],
        "v1"
    );
    let inspect: Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("oci:{}:v1", s(&layout))],
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], image.manifest_digest.to_string());
    assert_eq!(inspect["Labels"]["marker"], "one");

    let bundle = f.out("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:v1", s(&layout)),
            s(&bundle),
        ],
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/hello")).unwrap(),
        "hello from kiln one\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/second")).unwrap(),
        "second"
    );
    assert_eq!(
        fs::read_link(rootfs.join("etc/link")).unwrap(),
        Path::new("hello")
    );
    assert!(!rootfs.join("etc/gone").exists(), "the whiteout applied");

    // Writing again into the existing layout replaces the index (as Kaniko
    // does) and keeps the old blobs.
    let second = f.image(LayerCompression::Gzip { level: 6 }, "two");
    write_oci_layout(&layout, &second, &f.store, None).unwrap();
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        index["manifests"][0]["digest"],
        second.manifest_digest.to_string()
    );
    assert!(index["manifests"][0].get("annotations").is_none());
    assert!(
        layout
            .join("blobs/sha256")
            .join(image.manifest_digest.hex())
            .is_file()
    );
    // With one manifest and no name, skopeo takes the only image.
    let inspect: Value =
        serde_json::from_str(&run("skopeo", &["inspect", &format!("oci:{}", s(&layout))])).unwrap();
    assert_eq!(inspect["Labels"]["marker"], "two");
    assert!(run_fails(
        "skopeo",
        &["inspect", &format!("oci:{}:v1", s(&layout))]
    ));
    assert!(leftovers(f.dir.path()).is_empty());
}

#[test]
fn oci_layout_with_zstd_layers() {
    let f = Fixture::new();
    let image = f.image(LayerCompression::Zstd { level: 3 }, "zstd");
    let layout = f.out("zstd-layout");
    write_oci_layout(&layout, &image, &f.store, Some("z")).unwrap();
    let raw: Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", "--raw", &format!("oci:{}:z", s(&layout))],
    ))
    .unwrap();
    assert_eq!(raw["layers"][0]["mediaType"], media::OCI_LAYER_ZSTD);
    // skopeo verifies every blob it copies against its digest.
    let copy = f.out("zstd-copy");
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:z", s(&layout)),
            &format!("oci:{}:z", s(&copy)),
        ],
    );
    assert_eq!(
        layout_config(&copy)["rootfs"]["diff_ids"],
        json!(diff_ids(&image))
    );
    // skopeo will not turn zstd layers into a docker-archive; the
    // docker-archive test decompresses zstd layers against their diff_ids.
    // (umoci 0.4.7 as packaged here refuses zstd layers by media type.)
}

#[test]
fn failures_leave_no_partial_output() {
    let f = Fixture::new();
    let good = f.image(LayerCompression::Gzip { level: 6 }, "good");
    let mut broken = good.clone();
    // A layer missing from the store: the write fails midway, after the
    // config and the first layer went out.
    broken.layers.push(LayerRef {
        digest: Digest::sha256_of(b"not in the store"),
        diff_id: Digest::sha256_of(b"x"),
        size: 16,
        media_type: media::OCI_LAYER_GZIP.into(),
    });

    let tar_path = f.out("broken.tar");
    let err = write_docker_archive(&tar_path, &broken, &f.store, &[]).unwrap_err();
    assert!(matches!(err, OutputError::Store { .. }), "{err}");
    assert!(!tar_path.exists());
    // An existing archive survives a failed rewrite.
    write_docker_archive(&tar_path, &good, &f.store, &[]).unwrap();
    let before = fs::read(&tar_path).unwrap();
    write_docker_archive(&tar_path, &broken, &f.store, &[]).unwrap_err();
    assert_eq!(fs::read(&tar_path).unwrap(), before);

    // A store blob of the wrong size is caught before it is copied.
    let mut wrong_size = good.clone();
    wrong_size.layers[0].size += 1;
    assert!(matches!(
        write_docker_archive(&f.out("size.tar"), &wrong_size, &f.store, &[]),
        Err(OutputError::BlobSize { .. })
    ));
    let mut wrong_config = good.clone();
    wrong_config.config.push(b' ');
    assert!(matches!(
        write_oci_layout(&f.out("cfg"), &wrong_config, &f.store, None),
        Err(OutputError::DigestMismatch { what: "config", .. })
    ));

    // A fresh layout: nothing at the path, no temporary directory.
    let layout = f.out("broken-layout");
    write_oci_layout(&layout, &broken, &f.store, Some("x")).unwrap_err();
    assert!(!layout.exists());
    // An existing layout keeps its index.
    write_oci_layout(&layout, &good, &f.store, Some("x")).unwrap();
    let index = fs::read(layout.join("index.json")).unwrap();
    write_oci_layout(&layout, &broken, &f.store, Some("y")).unwrap_err();
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), index);

    // Unwritable places.
    let file = f.out("a-file");
    fs::write(&file, b"").unwrap();
    for target in [file.join("image.tar"), f.out("missing-dir/image.tar")] {
        let err = write_docker_archive(&target, &good, &f.store, &[]).unwrap_err();
        assert!(
            matches!(
                err,
                OutputError::Io {
                    action: "create",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert!(matches!(
        write_oci_layout(&file, &good, &f.store, None),
        Err(OutputError::NotADirectory { .. })
    ));
    assert!(matches!(
        write_oci_layout(&file.join("layout"), &good, &f.store, None),
        Err(OutputError::Io { .. })
    ));
    if !rustix::process::geteuid().is_root() {
        use std::os::unix::fs::PermissionsExt;
        let ro = f.out("read-only");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        assert!(write_docker_archive(&ro.join("i.tar"), &good, &f.store, &[]).is_err());
        assert!(write_oci_layout(&ro.join("l"), &good, &f.store, None).is_err());
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
    }
    assert_eq!(leftovers(f.dir.path()), Vec::<String>::new());
}

#[test]
fn digest_files_in_kaniko_formats() {
    let f = Fixture::new();
    let digest = Digest::sha256_of(b"manifest");
    let (d, n, t) = (
        f.out("new/dir/digest"),
        f.out("name-digest"),
        f.out("name-tag-digest"),
    );
    let destinations = ["ubuntu".to_string(), "gcr.io/p/app:v2".to_string()];
    write_digest_files(Some(&d), Some(&n), Some(&t), &destinations, &digest).unwrap();
    assert_eq!(fs::read_to_string(&d).unwrap(), digest.to_string());
    assert_eq!(
        fs::read_to_string(&n).unwrap(),
        format!("index.docker.io/library/ubuntu@{digest}\ngcr.io/p/app@{digest}\n")
    );
    assert_eq!(
        fs::read_to_string(&t).unwrap(),
        format!("index.docker.io/library/ubuntu:latest@{digest}\ngcr.io/p/app:v2@{digest}\n")
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&f.out("new/dir")), 0o700);
        assert_eq!(mode(&d) & 0o600, 0o600);
    }

    // Nothing is written when a destination is invalid.
    let other = f.out("other");
    assert!(matches!(
        write_digest_files(Some(&other), Some(&n), None, &["Bad:Name:".into()], &digest),
        Err(OutputError::Destination { .. })
    ));
    assert!(!other.exists());
    assert!(matches!(
        write_digest_files(None, Some(&n), None, &[], &digest),
        Err(OutputError::NoDestinations { .. })
    ));
    // A symlink is written through, not replaced; a device is written in place.
    let target = f.out("real-digest");
    let link = f.out("digest-link");
    fs::write(&target, b"old").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    write_digest_files(Some(&link), None, None, &[], &digest).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), digest.to_string());
    write_digest_files(Some(Path::new("/dev/null")), None, None, &[], &digest).unwrap();
    assert!(!Path::new("/dev/null").is_file());

    let url = Path::new("https://bucket.example/digest?X-Amz-Signature=secret");
    let err = write_digest_files(Some(url), None, None, &[], &digest).unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(leftovers(f.dir.path()).is_empty());
}

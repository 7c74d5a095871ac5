//! Reproducible builds (`--reproducible`, `SOURCE_DATE_EPOCH`), one layer
//! per stage (`--single-snapshot`) and paths left out of snapshots
//! (`--ignore-path`), checked on real builds: OCI layouts read back with
//! GNU tar and unpacked with umoci.

use kiln_tests::images::push_busybox;
use kiln_tests::registry::Registry;
use kiln_tests::tools::{self, require};
use kiln_tests::{Build, Run};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

const TOOLS: &[&str] = &["docker-registry", "skopeo", "umoci", "busybox", "tar"];

/// COPY of context files, a WORKDIR, a RUN that writes files and a heredoc.
const DOCKERFILE: &str = "ARG BASE
FROM $BASE
COPY old.txt new.txt /app/
COPY dir /app/dir
WORKDIR /work/sub
RUN echo built > out.txt && mkdir -p /data
RUN <<EOF
set -e
echo from heredoc > /data/heredoc
EOF
CMD [\"sh\"]
";

/// 2020-09-13T12:26:40Z: before the test epoch, kept as it is.
const OLD_MTIME: u64 = 1_600_000_000;
/// 2033-05-18T03:33:20Z: after the test epoch, clamped.
const NEW_MTIME: u64 = 2_000_000_000;
const EPOCH: u64 = 1_700_000_000;

/// A build dir whose context holds files with fixed, varied mtimes.
fn new_build(name: &str, dockerfile: &str) -> Build {
    let b = Build::new(name, dockerfile);
    let ctx = b.dir.join("ctx");
    let set = |rel: &str, content: &str, mtime: u64| {
        let path = ctx.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
            .unwrap();
    };
    set("old.txt", "old\n", OLD_MTIME);
    set("new.txt", "new\n", NEW_MTIME);
    set("dir/a", "a\n", OLD_MTIME + 5);
    set("dir/sub/b", "b\n", NEW_MTIME + 5);
    b.env(
        "KILN_LOG",
        std::env::var("KILN_TEST_LOG").unwrap_or_default(),
    )
}

/// Builds `b` into `<dir>/layout` with `BASE` set to the registry's busybox.
fn build(reg: &Registry, b: &Build, extra: &[&str]) -> Run {
    let layout = b.path("layout");
    let host = reg.host();
    let base_arg = format!("BASE={}", reg.image_ref("base/busybox:1"));
    let mut args = vec![
        "--no-push",
        "--insecure-registry",
        &host,
        "--oci-layout-path",
        layout.to_str().unwrap(),
        "--destination",
        "local/repro:t",
        "--build-arg",
        &base_arg,
    ];
    args.extend_from_slice(extra);
    b.run(&args)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap();
    layout.join("blobs").join(alg).join(hex)
}

/// The layout's one manifest: its digest and its JSON.
fn manifest(layout: &Path) -> (String, Value) {
    let index = read_json(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = read_json(&blob_path(layout, &digest));
    (digest, manifest)
}

fn config(layout: &Path) -> Value {
    let (_, m) = manifest(layout);
    read_json(&blob_path(layout, m["config"]["digest"].as_str().unwrap()))
}

fn layer_digests(layout: &Path) -> Vec<String> {
    let (_, m) = manifest(layout);
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// `(name, "YYYY-MM-DD HH:MM:SS" in UTC)` of every entry of a gzip layer,
/// as GNU tar lists them.
fn layer_entries(layout: &Path, digest: &str) -> Vec<(String, String)> {
    let out = tools::run_stdout(
        Command::new("tar")
            .env("TZ", "UTC")
            .arg("-tvzf")
            .arg(blob_path(layout, digest))
            .arg("--full-time"),
    );
    out.lines()
        .map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            assert!(parts.len() >= 6, "unexpected tar listing line {line:?}");
            (parts[5..].join(" "), format!("{} {}", parts[3], parts[4]))
        })
        .collect()
}

/// The base image's layer digests, as the registry serves them.
fn base_layers(reg: &Registry) -> Vec<String> {
    let m = tools::skopeo_inspect_raw(&reg.docker_ref("base/busybox:1"), &reg.access());
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn reproducible_builds_give_the_same_digest() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    let first = new_build("repro-1", DOCKERFILE);
    let r = build(&reg, &first, &["--reproducible"]);
    assert_eq!(r.code, 0, "{r:?}");
    // Another second, another store, another context directory.
    std::thread::sleep(Duration::from_millis(1100));
    let second = new_build("repro-2", DOCKERFILE);
    let r = build(&reg, &second, &["--reproducible"]);
    assert_eq!(r.code, 0, "{r:?}");

    let (d1, m1) = manifest(&first.path("layout"));
    let (d2, m2) = manifest(&second.path("layout"));
    assert_eq!(d1, d2, "manifests differ:\n{m1}\n{m2}");
    let cfg = config(&first.path("layout"));
    // Kaniko's --reproducible: the epoch is 0.
    assert_eq!(cfg["created"], "1970-01-01T00:00:00Z", "{cfg}");
    // Every new layer's entries have mtime 0.
    let base = base_layers(&reg);
    let layers = layer_digests(&first.path("layout"));
    assert_eq!(&layers[..base.len()], &base[..], "base layers changed");
    for digest in &layers[base.len()..] {
        for (name, time) in layer_entries(&first.path("layout"), digest) {
            assert_eq!(time, "1970-01-01 00:00:00", "{name} in {digest}");
        }
    }

    // Without --reproducible the times are real, so the digest differs.
    let third = new_build("repro-3", DOCKERFILE);
    let r = build(&reg, &third, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let (d3, _) = manifest(&third.path("layout"));
    assert_ne!(d1, d3);
}

#[test]
fn source_date_epoch_clamps_mtimes_and_sets_created() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    let epoch = EPOCH.to_string();
    let from_env = new_build("sde-env", DOCKERFILE).env("SOURCE_DATE_EPOCH", epoch.clone());
    let r = build(&reg, &from_env, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let layout = from_env.path("layout");

    let cfg = config(&layout);
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z", "{cfg}");
    let history = cfg["history"].as_array().unwrap();
    let new_entries: Vec<&Value> = history
        .iter()
        .filter(|h| h["comment"] == "buildkit.dockerfile.v0")
        .collect();
    assert!(!new_entries.is_empty(), "{cfg}");
    for h in new_entries {
        assert_eq!(h["created"], "2023-11-14T22:13:20Z", "{h}");
    }

    let base = base_layers(&reg);
    let layers = layer_digests(&layout);
    assert_eq!(&layers[..base.len()], &base[..], "base layers changed");
    let mut seen = std::collections::BTreeMap::new();
    for digest in &layers[base.len()..] {
        for (name, time) in layer_entries(&layout, digest) {
            assert!(
                time.as_str() <= "2023-11-14 22:13:20",
                "{name} in {digest} has mtime {time}"
            );
            seen.insert(name, time);
        }
    }
    // BuildKit's clamp: older times are kept, newer ones become the epoch.
    assert_eq!(seen["app/old.txt"], "2020-09-13 12:26:40", "{seen:?}");
    assert_eq!(seen["app/new.txt"], "2023-11-14 22:13:20", "{seen:?}");
    assert_eq!(seen["app/dir/a"], "2020-09-13 12:26:45", "{seen:?}");
    assert_eq!(seen["app/dir/sub/b"], "2023-11-14 22:13:20", "{seen:?}");
    assert_eq!(seen["data/heredoc"], "2023-11-14 22:13:20", "{seen:?}");

    // The same epoch as a build arg gives the same image.
    std::thread::sleep(Duration::from_millis(1100));
    let from_arg = new_build("sde-arg", DOCKERFILE);
    let arg = format!("SOURCE_DATE_EPOCH={epoch}");
    let r = build(&reg, &from_arg, &["--build-arg", &arg]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(manifest(&layout).0, manifest(&from_arg.path("layout")).0);

    // A malformed epoch is a usage error.
    let bad = new_build("sde-bad", DOCKERFILE).env("SOURCE_DATE_EPOCH", "yesterday");
    let r = build(&reg, &bad, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("SOURCE_DATE_EPOCH"), "{}", r.stderr);
}

#[test]
fn single_snapshot_makes_one_layer_with_the_same_tree() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    let dockerfile = format!("{DOCKERFILE}RUN rm /app/new.txt\nUSER 1000\n");
    let normal = new_build("single-normal", &dockerfile);
    let r = build(&reg, &normal, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let single = new_build("single-one", &dockerfile);
    let r = build(&reg, &single, &["--single-snapshot"]);
    assert_eq!(r.code, 0, "{r:?}");

    let base = base_layers(&reg);
    let layers = layer_digests(&single.path("layout"));
    assert_eq!(layers.len(), base.len() + 1, "{layers:?}");
    assert_eq!(&layers[..base.len()], &base[..]);

    let cfg = config(&single.path("layout"));
    assert_eq!(
        cfg["rootfs"]["diff_ids"].as_array().unwrap().len(),
        layers.len()
    );
    // One new history entry with a layer: the last filesystem step's.
    let history = cfg["history"].as_array().unwrap();
    let new_layers: Vec<&Value> = history
        .iter()
        .filter(|h| h["comment"] == "buildkit.dockerfile.v0" && h["empty_layer"] != true)
        .collect();
    assert_eq!(new_layers.len(), 1, "{cfg}");
    assert!(
        new_layers[0]["created_by"]
            .as_str()
            .unwrap()
            .contains("rm /app/new.txt"),
        "{cfg}"
    );
    assert_eq!(
        history.iter().filter(|h| h["empty_layer"] != true).count(),
        layers.len(),
        "{cfg}"
    );

    let normal_tree = tools::file_tree(&tools::umoci_unpack(
        &normal.path("layout"),
        "t",
        &normal.path("unpacked"),
    ));
    let single_tree = tools::file_tree(&tools::umoci_unpack(
        &single.path("layout"),
        "t",
        &single.path("unpacked"),
    ));
    assert!(single_tree.contains_key("data/heredoc"));
    assert!(single_tree.contains_key("work/sub/out.txt"));
    assert!(!single_tree.contains_key("app/new.txt"));
    let diffs: Vec<_> = normal_tree
        .keys()
        .chain(single_tree.keys())
        .filter(|k| normal_tree.get(*k) != single_tree.get(*k))
        .collect();
    assert!(diffs.is_empty(), "trees differ at {diffs:?}");
}

#[test]
fn ignored_paths_stay_out_of_every_layer() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    let dockerfile = "ARG BASE\nFROM $BASE\nRUN mkdir -p /opt/ignored /opt/kept && echo x > /opt/ignored/f && echo y > /opt/kept/f\n";
    for (name, extra) in [
        ("ignore-path", &["--ignore-path=/opt/ignored"][..]),
        (
            "ignore-path-single",
            &["--ignore-path=/opt/ignored", "--single-snapshot"][..],
        ),
    ] {
        let b = new_build(name, dockerfile);
        let r = build(&reg, &b, extra);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        let layout = b.path("layout");
        let base = base_layers(&reg);
        let layers = layer_digests(&layout);
        assert_eq!(layers.len(), base.len() + 1, "{name}: {layers:?}");
        let names: Vec<String> = layer_entries(&layout, &layers[base.len()])
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(names.iter().any(|n| n == "opt/kept/f"), "{name}: {names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with("opt/ignored")),
            "{name}: {names:?}"
        );
    }
}

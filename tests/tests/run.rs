//! RUN steps really run, in the sandbox, against the build root: layers of
//! what they change, mounts that never reach a layer, failures that name
//! the line, and nothing escaping to the host.

use kiln_tests::Build;
use kiln_tests::images::{BUSYBOX_TEST_REPO, push_busybox};
use kiln_tests::registry::Registry;
use kiln_tests::tools::{self, Access, require};
use std::path::Path;

const TOOLS: &[&str] = &["docker-registry", "skopeo", "umoci", "busybox"];

fn access() -> Access {
    Access::default()
}

/// Builds `dockerfile` (with `BASE` set to a busybox image) into an OCI
/// layout and unpacks it with umoci; returns the build and the rootfs.
fn build_and_unpack(
    reg: &Registry,
    name: &str,
    dockerfile: &str,
    extra: &[&str],
) -> (Build, kiln_tests::Run, Option<std::path::PathBuf>) {
    let b = Build::new(name, dockerfile);
    let r = b.run_to_layout(reg, extra);
    let rootfs = (r.code == 0).then(|| b.unpack());
    (b, r, rootfs)
}

#[test]
fn run_steps_make_layers_of_their_changes() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, BUSYBOX_TEST_REPO);
    let (b, r, rootfs) = build_and_unpack(
        &reg,
        "run-layers",
        "ARG BASE\nFROM $BASE\nRUN echo hi > /hello.txt && mkdir /d && touch /d/f /d/g\nRUN rm /d/f\nUSER app\nRUN id -u > /tmp/uid\nRUN true\nRUN <<EOF\nset -e\necho from heredoc > /tmp/heredoc\nEOF\n",
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let rootfs = rootfs.unwrap();
    assert_eq!(
        std::fs::read_to_string(rootfs.join("hello.txt")).unwrap(),
        "hi\n"
    );
    assert!(
        !rootfs.join("d/f").exists(),
        "the whiteout of /d/f was not applied"
    );
    assert!(rootfs.join("d/g").exists());
    assert_eq!(
        std::fs::read_to_string(rootfs.join("tmp/uid")).unwrap(),
        "1000\n"
    );
    let tree = tools::file_tree(&rootfs);
    assert_eq!(tree["tmp/uid"].uid, 1000);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("tmp/heredoc")).unwrap(),
        "from heredoc\n"
    );
    // Nothing of the sandbox's own mounts is in the image.
    for p in ["proc/1", "dev/null", "etc/resolv.conf"] {
        assert!(!tree.contains_key(p), "{p} leaked into the image");
    }
    // `RUN true` changed nothing: an empty layer in history, as BuildKit.
    let cfg =
        tools::skopeo_inspect_config(&format!("oci:{}:t", b.path("layout").display()), &access());
    let history = cfg["history"].as_array().unwrap();
    let run_true = history
        .iter()
        .find(|h| {
            h["created_by"]
                .as_str()
                .unwrap_or("")
                .contains("/bin/sh -c true")
        })
        .expect("history of RUN true");
    assert_eq!(run_true["empty_layer"], true, "{run_true}");
    // busybox + 4 RUN layers.
    assert_eq!(
        cfg["rootfs"]["diff_ids"].as_array().unwrap().len(),
        5,
        "{cfg}"
    );
}

#[test]
fn a_failing_run_names_line_exit_code_and_output() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, BUSYBOX_TEST_REPO);
    let (b, r, _) = build_and_unpack(
        &reg,
        "run-fail",
        "ARG BASE\nFROM $BASE\nRUN echo first line && echo oops >&2 && exit 3\n",
        &[],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("Dockerfile:3: RUN"), "{}", r.stderr);
    assert!(r.stderr.contains("exited with code 3"), "{}", r.stderr);
    assert!(r.stderr.contains("oops"), "{}", r.stderr);
    assert!(
        !b.path("layout").exists(),
        "a failed build left an output behind"
    );
}

#[test]
fn secrets_and_caches_never_reach_a_layer() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, BUSYBOX_TEST_REPO);
    let secret_value = "s3cret-value-4711";
    // The step proves it saw the secret by its hash; the value itself is in
    // no file kiln is given but the secret file.
    let dockerfile = "ARG BASE\nFROM $BASE\nRUN --mount=type=secret,id=tok --mount=type=cache,target=/cache \\\n    sha256sum /run/secrets/tok | cut -d' ' -f1 > /secret.sum && echo x >> /cache/n && wc -l < /cache/n > /count\n";
    let secret_file = std::env::temp_dir().join(format!("kiln-secret-{}", std::process::id()));
    std::fs::write(&secret_file, secret_value).unwrap();
    let secret_arg = format!("id=tok,src={}", secret_file.display());
    let (b, r, rootfs) =
        build_and_unpack(&reg, "run-mounts", dockerfile, &["--secret", &secret_arg]);
    assert_eq!(r.code, 0, "{r:?}");
    let rootfs = rootfs.unwrap();
    assert_eq!(
        std::fs::read_to_string(rootfs.join("count"))
            .unwrap()
            .trim(),
        "1"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("secret.sum"))
            .unwrap()
            .trim(),
        kiln_tests::sha256_hex(secret_value.as_bytes())
    );
    assert!(!rootfs.join("run/secrets/tok").exists());
    assert!(!rootfs.join("cache/n").exists());
    // No blob of the image contains the secret.
    for entry in tools::walk(&b.path("layout").join("blobs")) {
        if entry.is_file() {
            let bytes = std::fs::read(&entry).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(secret_value),
                "{} holds the secret",
                entry.display()
            );
        }
    }
    assert!(!r.stderr.contains(secret_value));

    // The cache mount keeps its content for the next build (same store).
    let b2 = Build::new("run-mounts-again", dockerfile)
        .env("KILN_STORE_DIR", b.path("store").display().to_string());
    let r = b2.run_to_layout(&reg, &["--secret", &secret_arg]);
    assert_eq!(r.code, 0, "{r:?}");
    let rootfs = b2.unpack();
    assert_eq!(
        std::fs::read_to_string(rootfs.join("count"))
            .unwrap()
            .trim(),
        "2"
    );

    // A required secret that was not given fails clearly.
    let (_, r, _) = build_and_unpack(
        &reg,
        "run-no-secret",
        "ARG BASE\nFROM $BASE\nRUN --mount=type=secret,id=tok,required true\n",
        &[],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("secret \"tok\" is required"),
        "{}",
        r.stderr
    );
    let _ = std::fs::remove_file(secret_file);
}

#[test]
fn run_cannot_reach_the_host() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, BUSYBOX_TEST_REPO);
    // A credential file of the executor, outside the build root.
    let creds = std::env::temp_dir().join(format!("kiln-executor-creds-{}", std::process::id()));
    std::fs::write(&creds, "executor-credential").unwrap();
    let marker = format!("kiln-left-running-{}", std::process::id());
    let dockerfile = format!(
        "ARG BASE\nFROM $BASE\nRUN ! cat {creds} && echo written > /etc/host-marker\nRUN sleep 1000 {marker} > /dev/null 2>&1 & echo started\n",
        creds = creds.display()
    );
    // `sleep 1000 <marker>` fails in busybox (bad number), so use sh -c with the marker in argv.
    let dockerfile = dockerfile.replace(
        &format!("sleep 1000 {marker}"),
        &format!("sh -c 'sleep 1000' {marker}"),
    );
    let (_b, r, rootfs) = build_and_unpack(&reg, "run-host", &dockerfile, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let rootfs = rootfs.unwrap();
    assert!(rootfs.join("etc/host-marker").exists());
    assert!(
        !Path::new("/etc/host-marker").exists(),
        "RUN wrote to the host"
    );
    // Nothing the step left running survives it.
    let survivors: Vec<_> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.unwrap().path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(&marker))
        .collect();
    assert!(
        survivors.is_empty(),
        "a process of the RUN step survived it"
    );
    let _ = std::fs::remove_file(creds);
}

#[test]
fn chroot_isolation_runs_steps_too() {
    if !require(TOOLS) || !tools::is_root() {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, BUSYBOX_TEST_REPO);
    let (_b, r, rootfs) = build_and_unpack(
        &reg,
        "run-chroot",
        "ARG BASE\nFROM $BASE\nRUN echo chrooted > /mode\n",
        &["--isolation", "chroot"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(rootfs.unwrap().join("mode")).unwrap(),
        "chrooted\n"
    );
}

#[test]
fn insecure_steps_keep_capabilities_only_when_allowed() {
    if !require(TOOLS) || !tools::is_root() {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, BUSYBOX_TEST_REPO);
    let dockerfile = "ARG BASE\nFROM $BASE\nRUN grep CapEff /proc/self/status > /default-caps\nRUN --security=insecure grep CapEff /proc/self/status > /insecure-caps\n";
    let (_b, r, _) = build_and_unpack(&reg, "run-insecure-denied", dockerfile, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("--allow security.insecure"),
        "{}",
        r.stderr
    );
    let (_b, r, rootfs) = build_and_unpack(
        &reg,
        "run-insecure",
        dockerfile,
        &["--allow", "security.insecure"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let rootfs = rootfs.unwrap();
    let caps = |f: &str| {
        let text = std::fs::read_to_string(rootfs.join(f)).unwrap();
        u64::from_str_radix(text.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let (default, insecure) = (caps("default-caps"), caps("insecure-caps"));
    // CAP_SYS_ADMIN (21) only in the insecure step.
    assert_eq!(default & (1 << 21), 0, "default caps {default:x}");
    assert_ne!(insecure & (1 << 21), 0, "insecure caps {insecure:x}");
}

#[test]
fn run_mounts_another_image() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, BUSYBOX_TEST_REPO);
    let image = reg.image_ref(BUSYBOX_TEST_REPO);
    let dockerfile = format!(
        "ARG BASE\nFROM $BASE\nRUN --mount=from={image},source=/etc,target=/other cp /other/passwd /passwd-from-image\n"
    );
    let (_b, r, rootfs) = build_and_unpack(&reg, "run-mount-image", &dockerfile, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let rootfs = rootfs.unwrap();
    let copied = std::fs::read_to_string(rootfs.join("passwd-from-image")).unwrap();
    assert!(copied.contains("app:x:1000:1000"), "{copied}");
    assert!(!rootfs.join("other").exists());
}

//! Differential tests: corpus cases built by kiln and by Debian's buildah
//! (`buildah build --isolation chroot --storage-driver vfs`) must give the
//! same file tree (type, mode, owner, size, content digest, link target,
//! nlink), for the cases where buildah agrees with BuildKit.
//!
//! Known buildah-only artifacts are left out of the comparison: the empty
//! mount points it leaves in the image (`/dev`, `/proc`, `/sys`, `/run`)
//! and the files it bind-mounts for RUN (`/etc/hosts`, `/etc/resolv.conf`,
//! `/etc/hostname`). BuildKit leaves none of them, and neither does kiln.

use kiln_tests::Build;
use kiln_tests::images::{BUSYBOX_TEST_REPO, push_busybox};
use kiln_tests::registry::Registry;
use kiln_tests::tools::{self, Entry, require};
use std::collections::BTreeMap;
use std::path::Path;

/// Cases where buildah 1.28 and BuildKit agree.
const CASES: &[&str] = &[
    "add-plain",
    "add-tar",
    "copy-chmod-octal",
    "copy-chown-numeric",
    "copy-dir-contents",
    "copy-file-rename",
    "copy-file-to-dir",
    "copy-from-index",
    "copy-symlink-kept",
    "copy-toplevel-symlink",
    "copy-wildcard",
    "dockerignore",
    "multistage",
    "replace-dir-with-file",
    "run-delete",
    "run-env-arg",
    "run-hardlink",
    "run-user",
    "run-workdir",
    "setuid",
];

const BUILDAH_ONLY: &[&str] = &[
    "dev",
    "proc",
    "sys",
    "run",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/hostname",
];

fn comparable(tree: BTreeMap<String, Entry>) -> BTreeMap<String, Entry> {
    tree.into_iter()
        .filter(|(p, _)| {
            !BUILDAH_ONLY
                .iter()
                .any(|b| p == b || p.starts_with(&format!("{b}/")))
        })
        .collect()
}

fn buildah_tree(
    case: &str,
    ctx: &Path,
    base: &str,
    dir: &Path,
) -> Result<BTreeMap<String, Entry>, String> {
    let storage = |cmd: &mut std::process::Command| {
        cmd.arg("--root")
            .arg(dir.join("buildah-root"))
            .arg("--runroot")
            .arg(dir.join("buildah-runroot"))
            .args(["--storage-driver", "vfs"]);
    };
    let tag = format!("localhost/kiln-diff-{case}:t");
    let mut build = std::process::Command::new("buildah");
    storage(&mut build);
    build
        .args([
            "build",
            "--isolation",
            "chroot",
            "--tls-verify=false",
            "-q",
            "--build-arg",
        ])
        .arg(format!("BASE={base}"))
        .args(["-t", &tag])
        .arg(ctx);
    tools::try_run(&mut build)?;
    let layout = dir.join("buildah-layout");
    let mut push = std::process::Command::new("buildah");
    storage(&mut push);
    push.args(["push", "-q", &tag])
        .arg(format!("oci:{}:t", layout.display()));
    tools::try_run(&mut push)?;
    Ok(tools::file_tree(&tools::umoci_unpack(
        &layout,
        "t",
        &dir.join("buildah-unpacked"),
    )))
}

#[test]
fn kiln_and_buildah_build_the_same_trees() {
    if !require(&["docker-registry", "skopeo", "umoci", "busybox", "buildah"]) || !tools::is_root()
    {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, BUSYBOX_TEST_REPO);
    let base = reg.image_ref(BUSYBOX_TEST_REPO);
    let mut failures = Vec::new();
    for case in CASES {
        let b = Build::from_corpus(&format!("diff-{case}"), case);
        let ctx = b.dir.join("ctx");
        let r = b.run_to_layout(&reg, &[]);
        if r.code != 0 {
            failures.push(format!("{case}: kiln failed: {}", r.stderr));
            continue;
        }
        let kiln = comparable(tools::file_tree(&b.unpack()));
        let buildah = match buildah_tree(case, &ctx, &base, &b.dir) {
            Ok(t) => comparable(t),
            Err(e) => {
                failures.push(format!("{case}: buildah failed: {e}"));
                continue;
            }
        };
        let mut diffs = Vec::new();
        for (path, e) in &kiln {
            match buildah.get(path) {
                Some(o) if o == e => {}
                Some(o) => diffs.push(format!("{path}: kiln {e:?} buildah {o:?}")),
                None => diffs.push(format!("{path}: only kiln has it")),
            }
        }
        for path in buildah.keys().filter(|p| !kiln.contains_key(*p)) {
            diffs.push(format!("{path}: only buildah has it"));
        }
        if !diffs.is_empty() {
            failures.push(format!("{case}:\n    {}", diffs.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

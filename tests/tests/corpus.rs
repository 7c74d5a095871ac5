//! The Dockerfile corpus (`tests/corpus/<case>/`): each case is a context
//! with a Dockerfile (its base is `ARG BASE`, a busybox image in a local
//! registry) and an `expect` file describing the resulting image the way
//! BuildKit builds it. Every case is built with kiln, unpacked with umoci
//! and checked; all failures are reported together.
//!
//! `expect` lines (`#` starts a comment):
//! - `file <path> <mode> <uid> <gid> <"content" as JSON string | *>`
//! - `dir <path> <mode> <uid> <gid>`
//! - `link <path> <target>`
//! - `nlink <path> <n>`
//! - `absent <path>`
//! - `config <JSON pointer into the image config> <JSON value>`
//! - `layers <n>` (layers in the image, the base's included)

use kiln_tests::images::{BUSYBOX_TEST_REPO, push_busybox};
use kiln_tests::registry::Registry;
use kiln_tests::tools::{self, Access, Kind, require};
use kiln_tests::{Build, workspace};
use serde_json::Value;
use std::path::Path;

fn check_case(reg: &Registry, case: &Path) -> Result<(), String> {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let b = Build::from_corpus(&format!("corpus-{name}"), &name);
    let r = b.run_to_layout(reg, &[]);
    if r.code != 0 {
        return Err(format!("build failed ({}): {}", r.code, r.stderr));
    }
    let rootfs = b.unpack();
    let layout = b.path("layout");
    let tree = tools::file_tree(&rootfs);
    let image = format!("oci:{}:t", layout.display());
    let config = tools::skopeo_inspect_config(&image, &Access::default());
    let expect =
        std::fs::read_to_string(case.join("expect")).map_err(|e| format!("expect: {e}"))?;
    let mut errors = Vec::new();
    for (n, line) in expect.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.splitn(6, ' ');
        let kind = words.next().unwrap_or_default();
        let path = words.next().unwrap_or_default();
        let at = format!("expect:{}: {line}", n + 1);
        let entry = tree.get(path);
        let mode = |m: &str| u32::from_str_radix(m, 8).map_err(|e| format!("{at}: bad mode: {e}"));
        match kind {
            "file" | "dir" => {
                let Some(e) = entry else {
                    errors.push(format!("{at}: missing"));
                    continue;
                };
                let want_kind = if kind == "file" {
                    Kind::File
                } else {
                    Kind::Dir
                };
                let (m, uid, gid) = (words.next(), words.next(), words.next());
                let (Some(m), Some(uid), Some(gid)) = (m, uid, gid) else {
                    return Err(format!("{at}: expected <mode> <uid> <gid>"));
                };
                let got = (e.kind, e.mode, e.uid.to_string(), e.gid.to_string());
                let want = (want_kind, mode(m)?, uid.to_string(), gid.to_string());
                if got != want {
                    errors.push(format!(
                        "{at}: got {:?} {:o} {}:{}",
                        e.kind, e.mode, e.uid, e.gid
                    ));
                }
                if kind == "file"
                    && let Some(content) = words.next()
                    && content != "*"
                {
                    let want: String =
                        serde_json::from_str(content).map_err(|e| format!("{at}: {e}"))?;
                    let got = std::fs::read_to_string(rootfs.join(path)).unwrap_or_default();
                    if got != want {
                        errors.push(format!("{at}: content {got:?}"));
                    }
                }
            }
            "link" => match entry {
                Some(e) if e.kind == Kind::Symlink && e.link_target.as_deref() == words.next() => {}
                other => errors.push(format!("{at}: got {other:?}")),
            },
            "nlink" => {
                let want: u64 = words
                    .next()
                    .unwrap_or("0")
                    .parse()
                    .map_err(|e| format!("{at}: {e}"))?;
                if entry.map(|e| e.nlink) != Some(want) {
                    errors.push(format!("{at}: got {:?}", entry.map(|e| e.nlink)));
                }
            }
            "absent" => {
                if entry.is_some() {
                    errors.push(format!("{at}: present"));
                }
            }
            "config" => {
                let want: Value =
                    serde_json::from_str(line.splitn(3, ' ').nth(2).unwrap_or_default())
                        .map_err(|e| format!("{at}: {e}"))?;
                let got = config.pointer(path).cloned().unwrap_or(Value::Null);
                if got != want {
                    errors.push(format!("{at}: got {got}"));
                }
            }
            "layers" => {
                let want: usize = path.parse().map_err(|e| format!("{at}: {e}"))?;
                let got = config["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len);
                if got != want {
                    errors.push(format!("{at}: got {got}"));
                }
            }
            other => return Err(format!("{at}: unknown check {other:?}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n  "))
    }
}

#[test]
fn dockerfile_corpus_builds_like_buildkit() {
    if !require(&["docker-registry", "skopeo", "umoci", "busybox"]) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, BUSYBOX_TEST_REPO);
    let root = workspace().join("tests/corpus");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 25, "the corpus has {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            check_case(&reg, c)
                .err()
                .map(|e| format!("{}:\n  {e}", c.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

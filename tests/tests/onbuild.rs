//! ONBUILD triggers run in downstream builds: from a pushed base image and
//! from a parent stage of the same Dockerfile, before the stage's own
//! instructions, reading the downstream build's context, with history
//! entries of the instructions they are and no `OnBuild` carried further.

use kiln_tests::Build;
use kiln_tests::images::push_busybox;
use kiln_tests::registry::Registry;
use kiln_tests::tools::{self, Access, require};
use std::path::PathBuf;

const TOOLS: &[&str] = &["docker-registry", "skopeo", "umoci", "busybox"];

fn log_env(b: Build) -> Build {
    b.env(
        "KILN_LOG",
        std::env::var("KILN_TEST_LOG").unwrap_or_default(),
    )
}

/// Builds into an OCI layout, unpacks it with umoci and reads its config.
fn build_layout(b: &Build, args: &[&str]) -> (PathBuf, serde_json::Value) {
    let layout = b.path("layout");
    let mut all = vec![
        "--no-push",
        "--oci-layout-path",
        layout.to_str().unwrap(),
        "--destination",
        "local/onbuild:t",
    ];
    all.extend_from_slice(args);
    let r = b.run(&all);
    assert_eq!(r.code, 0, "{r:?}");
    let rootfs = tools::umoci_unpack(&layout, "t", &b.path("unpacked"));
    let cfg =
        tools::skopeo_inspect_config(&format!("oci:{}:t", layout.display()), &Access::default());
    (rootfs, cfg)
}

fn history(cfg: &serde_json::Value) -> Vec<String> {
    cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or("").to_string())
        .collect()
}

fn env(cfg: &serde_json::Value) -> Vec<String> {
    cfg["config"]["Env"]
        .as_array()
        .map(|a| a.iter().map(|e| e.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn read(rootfs: &std::path::Path, path: &str) -> String {
    std::fs::read_to_string(rootfs.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn triggers_of_a_pushed_base_image_run_in_the_downstream_build() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    let host = reg.host();

    // The base records its triggers and runs none of them.
    let base_ref = reg.image_ref("onbuild/base:1");
    let base = log_env(Build::new(
        "onbuild-base",
        "ARG BASE\nFROM $BASE\nENV APP=/app\n\
         ONBUILD COPY app.txt $APP/\n\
         ONBUILD RUN echo built > /app/marker\n\
         ONBUILD ENV FROM_TRIGGER=yes\n\
         ONBUILD COPY --from=assets /assets.txt /app/\n",
    ));
    let busybox = format!("BASE={}", reg.image_ref("base/busybox:1"));
    let r = base.run(&[
        "--insecure-registry",
        &host,
        "--build-arg",
        &busybox,
        "--destination",
        &base_ref,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let base_cfg = tools::skopeo_inspect_config(&format!("docker://{base_ref}"), &reg.access());
    assert_eq!(
        base_cfg["config"]["OnBuild"],
        serde_json::json!([
            "COPY app.txt $APP/",
            "RUN echo built > /app/marker",
            "ENV FROM_TRIGGER=yes",
            "COPY --from=assets /assets.txt /app/"
        ])
    );

    // The child: triggers first, reading the child's context and a stage
    // of the child's Dockerfile (needed only through the trigger, on a base
    // not pulled until the triggers are known), then its own instructions,
    // which see the trigger's ENV.
    let child = log_env(Build::new(
        "onbuild-child",
        &format!(
            "FROM {} AS assets\nRUN echo asset > /assets.txt\nFROM {base_ref}\nRUN test \"$FROM_TRIGGER\" = yes && cat /app/app.txt /app/marker > /app/seen\n",
            reg.image_ref("base/busybox:1")
        ),
    ));
    tools::write(&child.dir.join("ctx/app.txt"), "from the child context\n");
    let (rootfs, cfg) = build_layout(&child, &["--insecure-registry", &host]);
    assert_eq!(read(&rootfs, "app/app.txt"), "from the child context\n");
    assert_eq!(read(&rootfs, "app/marker"), "built\n");
    assert_eq!(read(&rootfs, "app/assets.txt"), "asset\n");
    assert_eq!(read(&rootfs, "app/seen"), "from the child context\nbuilt\n");
    assert!(env(&cfg).contains(&"FROM_TRIGGER=yes".to_string()), "{cfg}");
    assert!(
        cfg["config"].get("OnBuild").is_none_or(|o| o.is_null()),
        "triggers carried further: {cfg}"
    );
    // History: the triggers as the instructions they are, before the
    // child's own RUN; each made a layer.
    let h = history(&cfg);
    let at = |needle: &str| {
        h.iter()
            .position(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("no history entry with {needle:?} in {h:#?}"))
    };
    let copy = at("COPY app.txt /app/");
    let run = at("echo built > /app/marker");
    let env_at = at("ENV FROM_TRIGGER=yes");
    let own = at("cat /app/app.txt");
    assert!(copy < run && run < env_at && env_at < own, "{h:#?}");
    // busybox + base (none: ENV only) + COPY + RUN + COPY + the child's RUN.
    assert_eq!(
        cfg["rootfs"]["diff_ids"].as_array().unwrap().len(),
        5,
        "{cfg}"
    );
}

#[test]
fn triggers_of_a_parent_stage_run_in_the_stage_built_on_it() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    let host = reg.host();
    let b = log_env(Build::new(
        "onbuild-stage",
        "ARG BASE\nFROM $BASE AS base\nARG GREETING=hello\n\
         ONBUILD COPY app.txt /app/\n\
         ONBUILD RUN echo $GREETING > /app/greeting\n\
         ONBUILD WORKDIR /w/${GREETING}\n\
         RUN test ! -e /app\n\
         FROM base AS mid\nRUN pwd > /pwd\n\
         FROM mid\nRUN test ! -e /again\n",
    ));
    tools::write(&b.dir.join("ctx/app.txt"), "app\n");
    let busybox = format!("BASE={}", reg.image_ref("base/busybox:1"));
    let (rootfs, cfg) = build_layout(&b, &["--insecure-registry", &host, "--build-arg", &busybox]);
    assert_eq!(read(&rootfs, "app/app.txt"), "app\n");
    assert_eq!(read(&rootfs, "app/greeting"), "hello\n");
    // The trigger's WORKDIR, expanded with the parent's ARG, reached the
    // stage's own RUN.
    assert_eq!(read(&rootfs, "pwd"), "/w/hello\n");
    assert_eq!(cfg["config"]["WorkingDir"], "/w/hello", "{cfg}");
    assert!(
        cfg["config"].get("OnBuild").is_none_or(|o| o.is_null()),
        "{cfg}"
    );
    // The triggers ran once: in `mid`, not again in the last stage.
    let h = history(&cfg);
    assert_eq!(
        h.iter()
            .filter(|c| c.contains("COPY app.txt /app/"))
            .count(),
        1,
        "{h:#?}"
    );
    assert!(h.iter().any(|c| c == "WORKDIR /w/hello"), "{h:#?}");
}

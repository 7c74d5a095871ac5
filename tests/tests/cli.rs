//! The `kiln` binary as users call it: dry-run plans of the examples,
//! Kaniko's flags and the `executor` name, errors and exit codes.

use kiln_tests::{kiln, kiln_bin, run_program, scratch};

#[test]
fn dry_run_prints_the_plan_of_the_hello_example() {
    let r = kiln(&[
        "build",
        "--dry-run",
        "--context",
        "examples/hello",
        "--dockerfile",
        "examples/hello/Dockerfile",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = &r.stdout;
    assert!(out.contains("plan for examples/hello/Dockerfile"), "{out}");
    assert!(
        out.contains("ignore:   examples/hello/.dockerignore (3 patterns)"),
        "{out}"
    );
    assert!(out.contains("order:    0 \"build\" -> 1"), "{out}");
    // Expanded FROM, with its source line.
    assert!(out.contains(" 7  FROM busybox:1.36"), "{out}");
    // Mount flags are shown typed, after expansion.
    assert!(
        out.contains("--mount=type=cache,target=/var/cache/build"),
        "{out}"
    );
    // The heredoc source is named, its body expanded from the ARG.
    assert!(out.contains("COPY <<EOF out/hello.sh"), "{out}");
}

#[test]
fn dry_run_json_with_target_and_build_args() {
    let r = kiln(&[
        "build",
        "--dry-run",
        "--format=json",
        "-c",
        "dir://examples/multi-target",
        "-f",
        "examples/multi-target/Dockerfile",
        "--target",
        "release",
        "--build-arg",
        "VERSION=2.0",
        "--build-arg=ALPINE=alpine:3.19",
        "--custom-platform",
        "linux/arm64",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON plan");
    let plan = &doc["plan"];
    assert_eq!(plan["order"], serde_json::json!([0, 1, 3]));
    assert_eq!(plan["target_platform"]["architecture"], "arm64");
    assert_eq!(plan["stages"][0]["base"]["value"], "alpine:3.19");
    assert_eq!(plan["stages"][2]["needed"], false);
    let release = &plan["stages"][3]["steps"];
    let label = release
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["instruction"]["instruction"] == "label")
        .expect("a LABEL step");
    assert_eq!(
        label["instruction"]["pairs"][0],
        serde_json::json!(["org.opencontainers.image.version", "2.0"])
    );
}

#[test]
fn unused_build_arg_warns() {
    let r = kiln(&[
        "build",
        "--dry-run",
        "--context",
        "examples/hello",
        "--dockerfile",
        "examples/hello/Dockerfile",
        "--build-arg",
        "NOT_DECLARED=1",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("warning: build args not consumed"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("NOT_DECLARED"), "{}", r.stderr);
}

#[test]
fn help_lists_kaniko_flags() {
    let r = kiln(&["build", "--help"]);
    assert_eq!(r.code, 0);
    for flag in [
        "--context",
        "--dockerfile",
        "--destination",
        "--cache-repo",
        "--no-push",
        "--tar-path",
        "--oci-layout-path",
        "--registry-mirror",
        "--snapshot-mode",
        "--single-snapshot",
        "--reproducible",
        "--build-arg",
        "--target",
        "--custom-platform",
        "--dry-run",
    ] {
        assert!(r.stdout.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn invoked_as_executor_it_is_kiln_build() {
    let dir = scratch("executor-name");
    let link = dir.join("executor");
    std::os::unix::fs::symlink(kiln_bin(), &link).unwrap();
    let r = run_program(
        &link,
        &[
            "--context=examples/hello",
            "--dockerfile=examples/hello/Dockerfile",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("plan for examples/hello/Dockerfile"));
}

#[test]
fn flags_not_built_yet_are_refused_by_name() {
    let r = kiln(&[
        "build",
        "--context",
        "examples/hello",
        "--destination",
        "127.0.0.1:5000/x:1",
        "--cache=true",
        "--cache-ttl=1h",
        "--single-snapshot",
    ]);
    assert_eq!(r.code, 6, "{r:?}");
    assert!(
        r.stderr.contains("--cache is not supported yet"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("--cache-ttl is not supported yet"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("--single-snapshot"), "{}", r.stderr);
    assert!(!r.stderr.contains("--destination"), "{}", r.stderr);
    let r = kiln(&["build", "--context", "tar://ctx.tar.gz", "--dry-run"]);
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("tar://"), "{}", r.stderr);
}

#[test]
fn dockerfile_errors_show_location_and_caret() {
    let dir = scratch("bad-dockerfile");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=cache true\nRNU echo\n",
    )
    .unwrap();
    let ctx = dir.to_str().unwrap();
    let r = kiln(&["build", "--dry-run", "--context", ctx]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .contains("Dockerfile:3:1: unknown instruction \"RNU\" (did you mean \"RUN\"?)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("3 | RNU echo"), "{}", r.stderr);
    assert!(r.stderr.contains("  | ^^^"), "{}", r.stderr);
}

#[test]
fn missing_dockerfile_names_the_paths_tried() {
    let dir = scratch("no-dockerfile");
    let r = kiln(&[
        "build",
        "--dry-run",
        "--context",
        dir.to_str().unwrap(),
        "--dockerfile",
        "nope.Dockerfile",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .contains("Dockerfile \"nope.Dockerfile\" not found"),
        "{}",
        r.stderr
    );
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let dir = scratch("specific-ignore");
    std::fs::write(dir.join("build.Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    std::fs::write(dir.join("build.Dockerfile.dockerignore"), "a\nb\n").unwrap();
    std::fs::write(dir.join(".dockerignore"), "c\n").unwrap();
    let ctx = dir.to_str().unwrap();
    let df = dir.join("build.Dockerfile");
    let r = kiln(&[
        "build",
        "--dry-run",
        "--format=json",
        "--context",
        ctx,
        "--dockerfile",
        df.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["ignore_patterns"], serde_json::json!(["a", "b"]));
}

#[test]
fn building_needs_a_destination_or_no_push() {
    let r = kiln(&[
        "build",
        "--context",
        "examples/hello",
        "--dockerfile",
        "examples/hello/Dockerfile",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no --destination given"), "{}", r.stderr);
}

#[test]
fn version_subcommand() {
    let r = kiln(&["version"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("kiln "));
}

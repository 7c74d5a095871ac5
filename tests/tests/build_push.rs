//! `kiln build` of FROM + metadata Dockerfiles against real registries
//! (Debian's docker-registry, plain and TLS + htpasswd), checked with
//! independent clients (skopeo, umoci).

use kiln_tests::Build;
use kiln_tests::images::{push_busybox, push_multi_arch};
use kiln_tests::registry::Registry;
use kiln_tests::tools::{self, Access, require, skopeo_inspect, skopeo_inspect_config};
use serde_json::{Value, json};
use std::path::Path;

const TOOLS: &[&str] = &[
    "docker-registry",
    "skopeo",
    "umoci",
    "openssl",
    "htpasswd",
    "busybox",
];

fn plain_access() -> Access {
    Access {
        tls_verify: false,
        cert_dir: None,
        creds: None,
    }
}

fn config_of(image: &str, access: &Access) -> Value {
    skopeo_inspect_config(image, access)
}

#[test]
fn metadata_instructions_build_and_push_to_a_plain_registry() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    let base = reg.image_ref("base/busybox:1");
    push_busybox(&reg, "base/busybox:1");
    let b = Build::new(
        "metadata",
        r#"ARG BASE
FROM ${BASE} AS base
ENV APP_HOME=/srv/app PATH=/srv/app/bin:$PATH
LABEL org.opencontainers.image.title="kiln test" version=1
USER app
WORKDIR $APP_HOME
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD ["/bin/true"]
SHELL ["/bin/sh", "-ec"]
CMD echo hello

FROM base
LABEL stage=final
ONBUILD RUN echo downstream
"#,
    );
    let dest = reg.image_ref("out/app:1");
    let host = reg.host();
    let r = b.run(&[
        "--destination",
        &dest,
        "--insecure-registry",
        &host,
        "--build-arg",
        &format!("BASE={base}"),
        "--label",
        "extra=yes",
    ]);
    assert_eq!(r.code, 0, "{r:?}");

    let access = plain_access();
    let image = format!("docker://{dest}");
    let cfg = config_of(&image, &access);
    let c = &cfg["config"];
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"APP_HOME=/srv/app"), "{env:?}");
    assert!(
        env.contains(
            &"PATH=/srv/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ),
        "{env:?}"
    );
    assert_eq!(c["User"], "app");
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["ExposedPorts"], json!({"53/udp": {}, "8080/tcp": {}}));
    assert_eq!(c["Volumes"], json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["Shell"], json!(["/bin/sh", "-ec"]));
    assert_eq!(c["Cmd"], json!(["/bin/sh", "-ec", "echo hello"]));
    assert_eq!(c["OnBuild"], json!(["RUN echo downstream"]));
    assert_eq!(c["Healthcheck"]["Test"], json!(["CMD", "/bin/true"]));
    assert_eq!(c["Healthcheck"]["Interval"], json!(5_000_000_000u64));
    assert_eq!(c["Healthcheck"]["Retries"], json!(2));
    let labels = &c["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "kiln test");
    assert_eq!(labels["stage"], "final");
    assert_eq!(labels["extra"], "yes");
    // Inherited from the base image.
    assert_eq!(labels["org.kiln.test.image"], "busybox");
    assert_eq!(cfg["architecture"], kiln_tests::images::host_arch());
    assert_eq!(cfg["os"], "linux");
    // busybox's layer plus the WORKDIR layer; history accounts for both.
    let diff_ids = cfg["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids.len(), 2, "{cfg}");
    let history = cfg["history"].as_array().unwrap();
    let layered = history
        .iter()
        .filter(|h| h["empty_layer"] != json!(true))
        .count();
    assert_eq!(layered, 2, "{history:?}");
    assert!(
        history
            .iter()
            .any(|h| h["created_by"] == "WORKDIR /srv/app"),
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .any(|h| h["created_by"] == "EXPOSE map[53/udp:{} 8080/tcp:{}]"
                || h["created_by"].as_str().unwrap_or("").starts_with("EXPOSE"))
    );

    // The manifest is OCI and the image unpacks with umoci; the WORKDIR
    // directory belongs to USER app (1000:1000), as BuildKit makes it.
    let raw = tools::skopeo_inspect_raw(&image, &access);
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let layout = b.path("layout");
    tools::skopeo_copy(
        &image,
        &format!("oci:{}:t", layout.display()),
        &tools::CopyOptions {
            src: access.clone(),
            ..Default::default()
        },
    );
    let rootfs = tools::umoci_unpack(&layout, "t", &b.path("unpacked"));
    let tree = tools::file_tree(&rootfs);
    let app = &tree["srv/app"];
    assert_eq!((app.uid, app.gid, app.mode), (1000, 1000, 0o755), "{app:?}");
    assert!(tree.contains_key("bin/busybox"));
}

#[test]
fn tls_registry_with_auth_from_docker_config() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_tls_auth("kiln", "s3cr3t:pass");
    push_busybox(&reg, "base/busybox:1");
    let base = reg.image_ref("base/busybox:1");
    let dest = reg.image_ref("out/tls:1");
    let ca = reg.ca_cert_path().unwrap().display().to_string();
    let cert_flag = format!("{}={ca}", reg.host());
    let b = Build::new(
        "tls",
        &format!("FROM {base}\nLABEL tls=yes\nCMD [\"/bin/sh\"]\n"),
    )
    .env(
        "DOCKER_CONFIG",
        reg.docker_config_dir().display().to_string(),
    );
    let r = b.run(&["--destination", &dest, "--registry-certificate", &cert_flag]);
    assert_eq!(r.code, 0, "{r:?}");
    let cfg = config_of(&format!("docker://{dest}"), &reg.access());
    assert_eq!(cfg["config"]["Labels"]["tls"], "yes");

    // Without the CA: a clear error that suggests --registry-certificate.
    let r = b.run(&["--destination", &dest]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains(&reg.host()), "{}", r.stderr);
    assert!(r.stderr.contains("--registry-certificate"), "{}", r.stderr);

    // A wrong password: names the registry and where the credentials came
    // from, never the password.
    let bad = b.path("bad-docker-config");
    std::fs::create_dir_all(&bad).unwrap();
    let auth = base64_encode("kiln:wrong-password-123");
    std::fs::write(
        bad.join("config.json"),
        json!({"auths": {reg.host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let b = b.env("DOCKER_CONFIG", bad.display().to_string());
    let r = b.run(&["--destination", &dest, "--registry-certificate", &cert_flag]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains(&reg.host()), "{}", r.stderr);
    assert!(r.stderr.contains("config.json"), "{}", r.stderr);
    assert!(!r.stderr.contains("wrong-password-123"), "{}", r.stderr);
    assert!(!r.stderr.contains(&auth), "{}", r.stderr);
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn no_push_writes_tarball_layout_and_digest_files() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    let base = reg.image_ref("base/busybox:1");
    let b = Build::new(
        "outputs",
        &format!("FROM {base}\nWORKDIR /opt/work\nENTRYPOINT [\"/bin/busybox\"]\n"),
    );
    let tar = b.path("image.tar");
    let layout = b.path("layout");
    let digest_file = b.path("digest");
    let name_digest = b.path("name-digest");
    let name_tag_digest = b.path("name-tag-digest");
    let host = reg.host();
    let r = b.run(&[
        "--no-push",
        "--destination",
        "example.com/team/app:v1",
        "--insecure-registry",
        &host,
        "--tar-path",
        tar.to_str().unwrap(),
        "--oci-layout-path",
        layout.to_str().unwrap(),
        "--digest-file",
        digest_file.to_str().unwrap(),
        "--image-name-with-digest-file",
        name_digest.to_str().unwrap(),
        "--image-name-tag-with-digest-file",
        name_tag_digest.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let digest = std::fs::read_to_string(&digest_file).unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(
        std::fs::read_to_string(&name_digest).unwrap().trim(),
        format!("example.com/team/app@{digest}")
    );
    assert_eq!(
        std::fs::read_to_string(&name_tag_digest).unwrap().trim(),
        format!("example.com/team/app:v1@{digest}")
    );

    let access = plain_access();
    let archive = skopeo_inspect(&format!("docker-archive:{}", tar.display()), &access);
    assert_eq!(archive["Layers"].as_array().unwrap().len(), 2, "{archive}");
    let oci = skopeo_inspect(&format!("oci:{}", layout.display()), &access);
    assert_eq!(oci["Digest"], digest);
    let rootfs = tools::umoci_unpack(&layout, "v1", &b.path("unpacked"));
    assert!(rootfs.join("opt/work").is_dir());
    assert!(rootfs.join("bin/busybox").is_file());
}

#[test]
fn pull_by_digest_and_platform_selection() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    let multi = push_multi_arch(&reg, "base/multi:1");
    let by_digest = format!("{}@{}", reg.image_ref("base/multi"), multi.index);
    let b = Build::new("platform", &format!("FROM {by_digest}\nLABEL built=yes\n"));
    let dest = reg.image_ref("out/multi:arm64");
    let host = reg.host();
    let r = b.run(&[
        "--destination",
        &dest,
        "--insecure-registry",
        &host,
        "--custom-platform",
        "linux/arm64",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let cfg = config_of(&format!("docker://{dest}"), &plain_access());
    assert_eq!(cfg["architecture"], "arm64");
    assert_eq!(cfg["config"]["Labels"]["arch"], "arm64");
    assert_eq!(cfg["config"]["Labels"]["built"], "yes");

    // A platform the index does not have: a clear registry error.
    let r = b.run(&[
        "--destination",
        &dest,
        "--insecure-registry",
        &host,
        "--platform",
        "linux/s390x",
    ]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("linux/s390x"), "{}", r.stderr);
}

#[test]
fn scratch_image_and_docker_media_types() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    let b = Build::new(
        "scratch",
        "FROM scratch\nLABEL only=metadata\nCMD [\"/app\"]\n",
    );
    let dest = reg.image_ref("out/scratch:1");
    let host = reg.host();
    let r = b.run(&[
        "--destination",
        &dest,
        "--insecure-registry",
        &host,
        "--image-format",
        "docker",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let image = format!("docker://{dest}");
    let raw = tools::skopeo_inspect_raw(&image, &plain_access());
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        raw["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(raw["layers"].as_array().map_or(0, Vec::len), 0);
    let cfg = config_of(&image, &plain_access());
    assert_eq!(cfg["config"]["Labels"]["only"], "metadata");
}

#[test]
fn workdir_that_exists_makes_no_layer_and_zstd_layers() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    let base = reg.image_ref("base/busybox:1");
    let b = Build::new(
        "workdir",
        &format!("FROM {base}\nWORKDIR /tmp\nWORKDIR /new/dir\n"),
    );
    let dest = reg.image_ref("out/wd:1");
    let host = reg.host();
    let r = b.run(&[
        "--destination",
        &dest,
        "--insecure-registry",
        &host,
        "--compression",
        "zstd",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let image = format!("docker://{dest}");
    let cfg = config_of(&image, &plain_access());
    let history = cfg["history"].as_array().unwrap();
    let tmp = history
        .iter()
        .find(|h| h["created_by"] == "WORKDIR /tmp")
        .unwrap();
    assert_eq!(tmp["empty_layer"], true);
    let new = history
        .iter()
        .find(|h| h["created_by"] == "WORKDIR /new/dir")
        .unwrap();
    assert_ne!(new["empty_layer"], true);
    let raw = tools::skopeo_inspect_raw(&image, &plain_access());
    let layers = raw["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(
        layers[1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    // zstd needs OCI media types.
    let r = b.run(&[
        "--destination",
        &dest,
        "--insecure-registry",
        &host,
        "--compression",
        "zstd",
        "--image-format",
        "docker",
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("zstd"), "{}", r.stderr);
}

#[test]
fn unsupported_instructions_fail_before_anything_is_written() {
    let b = Build::new(
        "unsupported",
        "FROM scratch\nLABEL a=b\nRUN --security=insecure echo hi\n",
    );
    let tar = b.path("out.tar");
    let r = b.run(&["--no-push", "--tar-path", tar.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(
            "Dockerfile:3: RUN --security=insecure needs the security.insecure entitlement: pass --allow security.insecure"
        ),
        "{}",
        r.stderr
    );
    assert!(!tar.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&b.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("out.tar"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn missing_base_image_and_missing_destination() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    let b = Build::new(
        "missing",
        &format!("FROM {}\n", reg.image_ref("nope/missing:1")),
    );
    let host = reg.host();
    let tar = b.path("out.tar");
    let r = b.run(&[
        "--no-push",
        "--insecure-registry",
        &host,
        "--tar-path",
        tar.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
    assert!(!Path::new(&tar).exists());
    let r = b.run(&[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--no-push"), "{}", r.stderr);
}

#[test]
fn docker_schema2_and_zstd_bases_are_pulled_and_unpacked() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    // The same image with Docker schema 2 media types, copied by skopeo.
    tools::skopeo_copy(
        &reg.docker_ref("base/busybox:1"),
        &reg.docker_ref("base/busybox:v2s2"),
        &tools::CopyOptions {
            src: plain_access(),
            dest: plain_access(),
            format: Some("v2s2".into()),
            ..Default::default()
        },
    );
    let raw = tools::skopeo_inspect_raw(&reg.docker_ref("base/busybox:v2s2"), &plain_access());
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let host = reg.host();
    let b = Build::new(
        "v2s2",
        &format!(
            "FROM {}\nWORKDIR /from-v2s2\n",
            reg.image_ref("base/busybox:v2s2")
        ),
    );
    let zstd_image = reg.image_ref("out/zstd:1");
    let r = b.run(&[
        "--destination",
        &zstd_image,
        "--insecure-registry",
        &host,
        "--compression",
        "zstd",
    ]);
    assert_eq!(r.code, 0, "{r:?}");

    // A base whose top layer is zstd must be unpacked to make the next
    // WORKDIR: the unpacked tree has both directories.
    let b2 = Build::new(
        "zstd-base",
        &format!("FROM {zstd_image}\nWORKDIR /from-zstd\n"),
    );
    let layout = b2.path("layout");
    let r = b2.run(&[
        "--no-push",
        "--insecure-registry",
        &host,
        "--oci-layout-path",
        layout.to_str().unwrap(),
        "--destination",
        "local/zstd:t",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let raw = tools::skopeo_inspect_raw(&format!("oci:{}:t", layout.display()), &plain_access());
    let types: Vec<&str> = raw["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.v1.tar+gzip"
        ]
    );
}

#[test]
fn copy_and_add_build_layers_like_buildkit() {
    if !require(TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    let base = reg.image_ref("base/busybox:1");
    let b = Build::new(
        "copy",
        &format!(
            r#"FROM {base} AS build
WORKDIR /src
COPY app/ ./app/
COPY --chmod=0755 <<EOF /usr/local/bin/hello
#!/bin/sh
echo hello
EOF

FROM {base}
COPY --from=build --chown=app:staff /src/app /opt/app
COPY --from=build /usr/local/bin/hello /usr/local/bin/
ADD bundle.tar /opt/bundle/
COPY *.txt /notes/
"#
        ),
    );
    let ctx = b.dir.join("ctx");
    std::fs::create_dir_all(ctx.join("app/sub")).unwrap();
    std::fs::write(ctx.join("app/main.sh"), "echo main\n").unwrap();
    std::fs::write(ctx.join("app/sub/data"), "data\n").unwrap();
    std::fs::write(ctx.join("app/secret.key"), "never copied\n").unwrap();
    std::os::unix::fs::symlink("main.sh", ctx.join("app/link")).unwrap();
    std::fs::write(ctx.join("a.txt"), "a\n").unwrap();
    std::fs::write(ctx.join("b.txt"), "b\n").unwrap();
    std::fs::write(ctx.join(".dockerignore"), "app/*.key\n").unwrap();
    let bundle = b.dir.join("bundle-src");
    std::fs::create_dir_all(bundle.join("inner")).unwrap();
    std::fs::write(bundle.join("inner/file"), "from the tar\n").unwrap();
    tools::run(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(&bundle)
            .arg("-cf")
            .arg(ctx.join("bundle.tar"))
            .arg("inner"),
    );

    let layout = b.path("layout");
    let host = reg.host();
    let r = b.run(&[
        "--no-push",
        "--insecure-registry",
        &host,
        "--oci-layout-path",
        layout.to_str().unwrap(),
        "--destination",
        "local/copy:t",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let rootfs = tools::umoci_unpack(&layout, "t", &b.path("unpacked"));
    let tree = tools::file_tree(&rootfs);
    let entry = |p: &str| {
        tree.get(p)
            .unwrap_or_else(|| panic!("{p} missing from the image"))
    };
    // COPY --from with --chown: names resolved from the target's passwd/group.
    let main = entry("opt/app/main.sh");
    assert_eq!((main.uid, main.gid), (1000, 50), "{main:?}");
    assert_eq!(entry("opt/app/sub/data").uid, 1000);
    assert_eq!(
        entry("opt/app/link").link_target.as_deref(),
        Some("main.sh")
    );
    // .dockerignore'd files never reach the image.
    assert!(!tree.contains_key("opt/app/secret.key"));
    // Heredoc with --chmod, copied on from the build stage.
    let hello = entry("usr/local/bin/hello");
    assert_eq!(hello.mode, 0o755);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("usr/local/bin/hello")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
    // ADD extracts a local tar; wildcards copy each match.
    assert_eq!(
        std::fs::read_to_string(rootfs.join("opt/bundle/inner/file")).unwrap(),
        "from the tar\n"
    );
    assert!(tree.contains_key("notes/a.txt") && tree.contains_key("notes/b.txt"));
    // busybox + COPY --from, COPY --from, ADD, COPY: five layers.
    let raw = tools::skopeo_inspect_raw(&format!("oci:{}:t", layout.display()), &plain_access());
    assert_eq!(raw["layers"].as_array().unwrap().len(), 5, "{raw}");

    // A context symlink that points outside the context fails clearly and
    // never copies the host file.
    let bad = Build::new("copy-escape", "FROM scratch\nCOPY escape /x\n");
    std::os::unix::fs::symlink("/etc/hostname", bad.dir.join("ctx/escape")).unwrap();
    let tar = bad.path("out.tar");
    let r = bad.run(&["--no-push", "--tar-path", tar.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("Dockerfile:2: COPY failed"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("escape"), "{}", r.stderr);
    assert!(!tar.exists());
}

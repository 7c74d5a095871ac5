//! The harness itself: real registries, base images pushed with skopeo,
//! umoci unpacks and the file-tree walker. Each test skips cleanly when a
//! tool is missing, unless `$KILN_REQUIRE_TOOLS` is set (as in CI).

use kiln_tests::Registry;
use kiln_tests::images::{
    busybox_layer, busybox_layout, busybox_rootfs, host_arch, push_busybox, push_multi_arch,
};
use kiln_tests::tools::{
    self, Access, Kind, file_tree, require, skopeo_inspect, skopeo_inspect_config,
    skopeo_inspect_raw, try_skopeo_inspect, umoci_unpack,
};

const REGISTRY_TOOLS: &[&str] = &[
    "docker-registry",
    "curl",
    "skopeo",
    "busybox",
    "tar",
    "gzip",
];
const TLS_TOOLS: &[&str] = &["openssl", "htpasswd"];

#[test]
fn plain_registry_accepts_a_busybox_push() {
    if !require(REGISTRY_TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    assert_eq!(reg.get("/v2/").0, 200, "{}", reg.log());
    let digest = push_busybox(&reg, "busybox:latest");
    assert!(digest.starts_with("sha256:"), "{digest}");

    let image = reg.docker_ref("busybox:latest");
    let info = skopeo_inspect(&image, &reg.access());
    assert_eq!(info["Digest"], digest.as_str());
    assert_eq!(info["Architecture"], host_arch());
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Layers"][0], busybox_layer().digest.as_str());

    let manifest = skopeo_inspect_raw(&image, &reg.access());
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let config = skopeo_inspect_config(&image, &reg.access());
    assert_eq!(config["config"]["Cmd"][0], "/bin/sh");
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        busybox_layer().diff_id.as_str()
    );
}

#[test]
fn plain_registry_has_deletes_enabled_and_listens_on_loopback_only() {
    if !require(REGISTRY_TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    let log = reg.log();
    assert!(
        log.contains(&format!("listening on 127.0.0.1:{}", reg.port())),
        "{log}"
    );
    let listeners = listening_addresses(reg.port());
    assert_eq!(
        listeners,
        ["0100007F"],
        "only 127.0.0.1 listens on the port"
    );
    let digest = push_busybox(&reg, "del:1");
    let (status, body) = reg.request("DELETE", &format!("/v2/del/manifests/{digest}"));
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    assert_eq!(reg.get(&format!("/v2/del/manifests/{digest}")).0, 404);
}

#[test]
fn tls_registry_rejects_a_wrong_password_and_accepts_the_right_one() {
    if !require(REGISTRY_TOOLS) || !require(TLS_TOOLS) {
        return;
    }
    let reg = Registry::start_tls_auth("kiln", "s3cret-pass");
    assert!(reg.base_url().starts_with("https://"));
    let image = reg.docker_ref("secure/busybox:1");

    let wrong = Access {
        creds: Some(("kiln".into(), "wrong".into())),
        ..reg.access()
    };
    let options = tools::CopyOptions {
        dest: wrong.clone(),
        ..Default::default()
    };
    let layout = tempfile::tempdir().unwrap();
    busybox_layout(layout.path(), "t");
    let src = format!("oci:{}:t", layout.path().display());
    let err = tools::try_skopeo_copy(&src, &image, &options).unwrap_err();
    assert!(err.contains("unauthorized") || err.contains("401"), "{err}");
    assert!(
        !format!("{wrong:?}").contains("wrong"),
        "Debug hides passwords"
    );

    let digest = push_busybox(&reg, "secure/busybox:1");
    assert_eq!(
        skopeo_inspect(&image, &reg.access())["Digest"],
        digest.as_str()
    );
    let err = try_skopeo_inspect(&image, &wrong, &[]).unwrap_err();
    assert!(err.contains("unauthorized") || err.contains("401"), "{err}");
    let no_ca = Access {
        cert_dir: None,
        ..reg.access()
    };
    let err = try_skopeo_inspect(&image, &no_ca, &[]).unwrap_err();
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn docker_config_dir_holds_working_credentials() {
    if !require(REGISTRY_TOOLS) || !require(TLS_TOOLS) {
        return;
    }
    let reg = Registry::start_tls_auth("user1", "pw:with:colons");
    push_busybox(&reg, "cfg:1");
    let dir = reg.docker_config_dir();
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    // "user1:pw:with:colons" in standard base64.
    assert_eq!(
        config["auths"][reg.host()]["auth"],
        "dXNlcjE6cHc6d2l0aDpjb2xvbnM="
    );
    // skopeo reads the same file format through --authfile.
    let anonymous = Access {
        creds: None,
        ..reg.access()
    };
    let out = tools::run_stdout(
        std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=true", "--cert-dir"])
            .arg(reg.cert_dir().unwrap())
            .arg("--authfile")
            .arg(dir.join("config.json"))
            .arg(reg.docker_ref("cfg:1")),
    );
    assert!(out.contains("schemaVersion"), "{out}");
    assert!(try_skopeo_inspect(&reg.docker_ref("cfg:1"), &anonymous, &[]).is_err());
}

#[test]
fn multi_arch_index_has_two_platforms() {
    if !require(REGISTRY_TOOLS) {
        return;
    }
    let reg = Registry::start_plain();
    let pushed = push_multi_arch(&reg, "multi:1");
    let index = skopeo_inspect_raw(&reg.docker_ref("multi:1"), &reg.access());
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for m in manifests {
        let arch = m["platform"]["architecture"].as_str().unwrap();
        let platform = format!("linux/{arch}");
        assert_eq!(m["digest"], pushed.manifests[&platform].as_str());
        let by_digest = reg.docker_ref(&format!("multi@{}", m["digest"].as_str().unwrap()));
        let config = skopeo_inspect_config(&by_digest, &reg.access());
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["config"]["Labels"]["arch"], arch);
    }
    let mut platforms: Vec<_> = pushed.manifests.keys().cloned().collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let path = format!("/v2/multi/manifests/{}", pushed.index);
    let accept = "Accept: application/vnd.oci.image.index.v1+json";
    let (status, body) = reg.request_with("GET", &path, &[accept]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        index
    );
}

#[test]
fn umoci_unpacks_the_busybox_layout_to_the_tree_it_was_made_from() {
    if !require(&["umoci", "busybox", "tar", "gzip"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    busybox_layout(&layout, "latest");
    let rootfs = umoci_unpack(&layout, "latest", &tmp.path().join("bundle"));
    let unpacked = file_tree(&rootfs);

    let busybox = &unpacked["bin/busybox"];
    assert_eq!(busybox.kind, Kind::File);
    assert_eq!(busybox.mode, 0o755);
    assert_eq!(
        unpacked["bin/sh"].link_target.as_deref(),
        Some("/bin/busybox")
    );
    assert_eq!(unpacked["tmp"].mode, 0o1777);
    assert_eq!(unpacked["root"].mode, 0o700);
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("app:x:1000:1000:"), "{passwd}");

    let original = tmp.path().join("original");
    busybox_rootfs(&original);
    let made = file_tree(&original);
    if tools::is_root() {
        assert_eq!(unpacked["home/app"].uid, 1000);
        assert_eq!(unpacked["home/app"].gid, 1000);
        assert_eq!(made, unpacked, "umoci's unpack differs from the rootfs");
    } else {
        let strip = |t: &std::collections::BTreeMap<String, tools::Entry>| {
            t.iter()
                .map(|(k, e)| (k.clone(), (e.kind, e.mode, e.sha256.clone())))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&made), strip(&unpacked));
    }
}

#[test]
fn busybox_layer_is_cached_and_matches_its_digest() {
    if !require(&["busybox", "tar", "gzip"]) {
        return;
    }
    let layer = busybox_layer();
    assert!(layer.path.starts_with(kiln_tests::cache_dir()));
    let bytes = std::fs::read(&layer.path).unwrap();
    assert_eq!(bytes.len() as u64, layer.size);
    let entry = file_tree(layer.path.parent().unwrap());
    assert_eq!(
        entry["layer.tar.gz"].sha256.as_deref(),
        Some(layer.digest.as_str())
    );
}

#[test]
fn parallel_registries_get_distinct_ports_and_die_on_drop() {
    if !require(REGISTRY_TOOLS) {
        return;
    }
    let registries: Vec<Registry> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(Registry::start_plain)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ports: Vec<u16> = registries.iter().map(Registry::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    drop(registries);
    for port in ports {
        let connect = std::net::TcpStream::connect(("127.0.0.1", port));
        assert!(
            connect.is_err(),
            "registry on {port} still listens after drop"
        );
    }
}

#[test]
fn missing_tools_skip_or_fail_as_kiln_require_tools_says() {
    let strict = std::env::var_os(tools::REQUIRE_TOOLS_ENV).is_some();
    let result = std::panic::catch_unwind(|| require(&["kiln-no-such-tool"]));
    match result {
        Ok(available) => {
            assert!(
                !strict,
                "must panic when ${} is set",
                tools::REQUIRE_TOOLS_ENV
            );
            assert!(!available);
        }
        Err(_) => assert!(strict, "panicked without ${}", tools::REQUIRE_TOOLS_ENV),
    }
}

/// Hex local addresses (as in /proc/net/tcp{,6}) of sockets listening on
/// `port`.
fn listening_addresses(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (addr, local_port) = fields[1].split_once(':').unwrap();
            let listening = fields[3] == "0A";
            if listening && u16::from_str_radix(local_port, 16).unwrap() == port {
                found.push(addr.to_owned());
            }
        }
    }
    found
}

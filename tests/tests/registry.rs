//! `kiln::registry` against a real registry (Debian's docker-registry, via
//! the harness): pulls by tag and digest into the blob store, index platform
//! selection, pushes with blob skipping and cross-repository mounts, TLS with
//! a registry certificate and basic auth from a Docker config, and the errors
//! for a wrong password and an unknown CA.

use base64::Engine as _;
use kiln::image::{Digest, HashingReader, Platform, parse_platform};
use kiln::registry::auth::Keychain;
use kiln::registry::{Registry, RegistryError, RegistryOptions, parse_reference};
use kiln::store::BlobStore;
use kiln_tests::Registry as TestRegistry;
use kiln_tests::images::{host_arch, push_busybox, push_multi_arch};
use kiln_tests::tools::require;
use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TOOLS: &[&str] = &[
    "docker-registry",
    "curl",
    "skopeo",
    "busybox",
    "tar",
    "gzip",
];
const TLS_TOOLS: &[&str] = &["openssl", "htpasswd"];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn host_platform() -> Platform {
    parse_platform(&format!("linux/{}", host_arch())).unwrap()
}

/// Options for the plain-HTTP test registry.
fn plain_options(reg: &TestRegistry) -> RegistryOptions {
    RegistryOptions {
        insecure_registries: vec![reg.host()],
        retry_initial_delay: Duration::from_millis(50),
        ..Default::default()
    }
}

fn keychain(config_dir: &Path) -> Keychain {
    Keychain::with_config_paths(vec![config_dir.join("config.json")])
}

/// The error and all its causes, as a user would see them.
fn chain(e: &RegistryError) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// Hashes a blob in the store from its bytes.
fn stored_digest(store: &BlobStore, d: &Digest) -> (Digest, u64) {
    let mut r = HashingReader::new(store.open_blob(d).unwrap());
    std::io::copy(&mut r, &mut std::io::sink()).unwrap();
    r.finish()
}

#[test]
fn pull_by_tag_and_by_digest_verifies_blobs_into_the_store() {
    if !require(TOOLS) {
        return;
    }
    let reg = TestRegistry::start_plain();
    let pushed = push_busybox(&reg, "busybox:latest");
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let registry = Registry::new(plain_options(&reg), keychain(&reg.docker_config_dir()));
    let rt = runtime();

    let reference = parse_reference(&reg.image_ref("busybox")).unwrap();
    let img = rt
        .block_on(registry.pull(&reference, &host_platform(), &store))
        .unwrap();
    assert_eq!(img.reference.to_string(), reg.image_ref("busybox:latest"));
    assert_eq!(img.digest.to_string(), pushed);
    assert_eq!(img.index_digest, None);
    assert_eq!(Digest::sha256_of(&img.manifest_bytes), img.digest);
    assert_eq!(
        img.manifest_media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert!(store.contains(&img.digest));
    assert_eq!(
        stored_digest(&store, &img.config_digest).0,
        img.config_digest
    );
    assert_eq!(
        store.read_blob(&img.config_digest).unwrap(),
        img.config_bytes
    );
    assert!(!img.layers.is_empty());
    for layer in &img.layers {
        let d: Digest = layer.digest().to_string().parse().unwrap();
        assert_eq!(stored_digest(&store, &d), (d.clone(), layer.size()));
    }

    // By digest, and by tag+digest: the same image, found in the store.
    for text in [
        reg.image_ref(&format!("busybox@{pushed}")),
        reg.image_ref(&format!("busybox:nonexistent-tag@{pushed}")),
    ] {
        let r = parse_reference(&text).unwrap();
        let again = rt
            .block_on(registry.pull(&r, &host_platform(), &store))
            .unwrap();
        assert_eq!(again.digest, img.digest, "{text}");
        assert_eq!(again.layers, img.layers);
    }

    // A digest the registry does not have, and a tag it does not have.
    let missing = Digest::sha256_of(b"no such manifest");
    for text in [
        reg.image_ref(&format!("busybox@{missing}")),
        reg.image_ref("busybox:nope"),
        reg.image_ref("nothere:1"),
    ] {
        let r = parse_reference(&text).unwrap();
        let e = rt
            .block_on(registry.pull(&r, &host_platform(), &store))
            .unwrap_err();
        assert!(matches!(e, RegistryError::NotFound { .. }), "{text}: {e:?}");
        assert_eq!(
            e.to_string(),
            format!("image {r} not found in {}", reg.host())
        );
    }
}

#[test]
fn index_selects_the_manifest_for_the_platform() {
    if !require(TOOLS) {
        return;
    }
    let reg = TestRegistry::start_plain();
    let multi = push_multi_arch(&reg, "multi:1");
    push_busybox(&reg, "busybox:1");
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let registry = Registry::new(plain_options(&reg), keychain(&reg.docker_config_dir()));
    let rt = runtime();
    let r = parse_reference(&reg.image_ref("multi:1")).unwrap();

    for platform in ["linux/amd64", "linux/arm64", "linux/arm64/v8"] {
        let p = parse_platform(platform).unwrap();
        let img = rt.block_on(registry.pull(&r, &p, &store)).unwrap();
        let want = &multi.manifests[&p.to_string()];
        assert_eq!(&img.digest.to_string(), want, "{platform}");
        assert_eq!(
            img.index_digest.as_ref().map(ToString::to_string),
            Some(multi.index.clone())
        );
        let config: serde_json::Value = serde_json::from_slice(&img.config_bytes).unwrap();
        assert_eq!(config["architecture"], p.architecture.as_str());
        assert!(store.contains(&multi.index.parse().unwrap()));
    }

    let e = rt
        .block_on(registry.pull(&r, &parse_platform("linux/s390x").unwrap(), &store))
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, RegistryError::NoMatchingPlatform { .. }),
        "{e:?}"
    );
    assert!(
        msg.contains("linux/s390x") && msg.contains("linux/amd64, linux/arm64"),
        "{msg}"
    );

    // A single-platform image asked for on another platform.
    let other = if host_arch() == "amd64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    let r = parse_reference(&reg.image_ref("busybox:1")).unwrap();
    let e = rt
        .block_on(registry.pull(&r, &parse_platform(other).unwrap(), &store))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "image {r} from {} is for platform {}, not the requested {other}",
            reg.host(),
            host_platform()
        )
    );
}

#[test]
fn push_skips_existing_blobs_and_mounts_across_repositories() {
    if !require(TOOLS) {
        return;
    }
    let reg = TestRegistry::start_plain();
    push_busybox(&reg, "base/busybox:1");
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let registry = Registry::new(plain_options(&reg), keychain(&reg.docker_config_dir()));
    let rt = runtime();
    let src = parse_reference(&reg.image_ref("base/busybox:1")).unwrap();
    let img = rt
        .block_on(registry.pull(&src, &host_platform(), &store))
        .unwrap();

    // To another repository: layers mounted from base/busybox, config too
    // (exists check, then upload), manifest and an extra tag.
    let mut to_push = img.to_push();
    to_push.extra_tags = vec!["also".into()];
    let dest = parse_reference(&reg.image_ref("app/copy:1")).unwrap();
    let log_before = reg.log().len();
    let digest = rt.block_on(registry.push(&dest, &to_push, &store)).unwrap();
    assert_eq!(digest, img.digest);
    let log = reg.log()[log_before..].to_owned();
    for layer in &img.layers {
        let mount = format!(
            "mount={}&from=base%2Fbusybox HTTP/1.1\" 201",
            layer.digest().to_string().replace(':', "%3A")
        );
        assert!(
            log.contains(&mount),
            "no successful mount of {} in the registry log:\n{log}",
            layer.digest()
        );
    }
    for tag in ["1", "also"] {
        let (status, body) = reg.request_with(
            "GET",
            &format!("/v2/app/copy/manifests/{tag}"),
            &["Accept: application/vnd.oci.image.manifest.v1+json"],
        );
        assert_eq!(status, 200, "{tag}");
        assert_eq!(body, img.manifest_bytes, "{tag}");
    }
    for layer in &img.layers {
        let (status, _) = reg.request("HEAD", &format!("/v2/app/copy/blobs/{}", layer.digest()));
        assert_eq!(status, 200);
    }

    // Again, under a new tag: every blob exists, nothing is uploaded.
    let before = reg.log().len();
    let dest2 = parse_reference(&reg.image_ref("app/copy:2")).unwrap();
    let digest2 = rt
        .block_on(registry.push(&dest2, &to_push, &store))
        .unwrap();
    assert_eq!(digest2, digest);
    let log = reg.log()[before..].to_owned();
    assert!(
        !log.contains("blobs/uploads"),
        "blobs were uploaded although they exist:\n{log}"
    );

    // To a fresh repository without a mount source: uploaded from the store.
    let mut plain = img.to_push();
    for l in &mut plain.layers {
        l.mount_from = None;
    }
    let dest3 = parse_reference(&reg.image_ref("fresh/copy:1")).unwrap();
    assert_eq!(
        rt.block_on(registry.push(&dest3, &plain, &store)).unwrap(),
        digest
    );
    let pulled = rt
        .block_on(registry.pull(&dest3, &host_platform(), &store))
        .unwrap();
    assert_eq!(pulled.digest, digest);
}

fn tls_options(reg: &TestRegistry) -> RegistryOptions {
    RegistryOptions {
        registry_certificates: vec![(reg.host(), reg.ca_cert_path().unwrap().to_path_buf())],
        retry_initial_delay: Duration::from_millis(50),
        ..Default::default()
    }
}

#[test]
fn tls_with_registry_certificate_and_basic_auth() {
    if !require(TOOLS) || !require(TLS_TOOLS) {
        return;
    }
    let reg = TestRegistry::start_tls_auth("kiln", "tls-secret-pw");
    let pushed = push_busybox(&reg, "busybox:1");
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let registry = Registry::new(tls_options(&reg), keychain(&reg.docker_config_dir()));
    let rt = runtime();
    let r = parse_reference(&reg.image_ref("busybox:1")).unwrap();
    let img = rt
        .block_on(registry.pull(&r, &host_platform(), &store))
        .unwrap();
    assert_eq!(img.digest.to_string(), pushed);
    let dest = parse_reference(&reg.image_ref("pushed/busybox:1")).unwrap();
    assert_eq!(
        rt.block_on(registry.push(&dest, &img.to_push(), &store))
            .unwrap(),
        img.digest
    );

    // --skip-tls-verify-pull also reaches it, without the CA.
    let skip = Registry::new(
        RegistryOptions {
            skip_tls_verify_pull: true,
            ..Default::default()
        },
        keychain(&reg.docker_config_dir()),
    );
    rt.block_on(skip.pull(&r, &host_platform(), &store))
        .unwrap();
}

#[test]
fn wrong_password_names_host_and_source_but_not_the_password() {
    if !require(TOOLS) || !require(TLS_TOOLS) {
        return;
    }
    let reg = TestRegistry::start_tls_auth("kiln", "right-pw");
    push_busybox(&reg, "busybox:1");
    let cfg = tempfile::tempdir().unwrap();
    let wrong = "Wr0ng-Passw0rd-xyz";
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("kiln:{wrong}"));
    std::fs::write(
        cfg.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let registry = Registry::new(tls_options(&reg), keychain(cfg.path()));
    let rt = runtime();
    let r = parse_reference(&reg.image_ref("busybox:1")).unwrap();
    let e = rt
        .block_on(registry.pull(&r, &host_platform(), &store))
        .unwrap_err();
    assert!(matches!(e, RegistryError::Auth { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("authentication to {} failed using ", reg.host())),
        "{msg}"
    );
    let config_path: PathBuf = cfg.path().join("config.json");
    assert!(msg.contains(&config_path.display().to_string()), "{msg}");
    let everything = format!("{} {e:?}", chain(&e));
    assert!(!everything.contains(wrong), "{everything}");
    assert!(!everything.contains(&auth), "{everything}");

    // The push side says the same.
    let dest = parse_reference(&reg.image_ref("other/busybox:1")).unwrap();
    let fake = kiln::registry::ImageToPush {
        manifest_bytes: b"{}".to_vec(),
        manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        config: serde_json::from_str(&format!(
            r#"{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}}"#,
            store.put(b"{}").unwrap()
        ))
        .unwrap(),
        layers: vec![],
        extra_tags: vec![],
    };
    let e = rt
        .block_on(registry.push(&dest, &fake, &store))
        .unwrap_err();
    assert!(matches!(e, RegistryError::Auth { .. }), "{e:?}");
    assert!(!format!("{} {e:?}", chain(&e)).contains(wrong));
}

#[test]
fn unknown_ca_suggests_registry_certificate() {
    if !require(TOOLS) || !require(TLS_TOOLS) {
        return;
    }
    let reg = TestRegistry::start_tls_auth("kiln", "pw-unknown-ca");
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let registry = Registry::new(
        RegistryOptions {
            retry_initial_delay: Duration::from_millis(50),
            image_download_retry: 2,
            ..Default::default()
        },
        keychain(&reg.docker_config_dir()),
    );
    let rt = runtime();
    let r = parse_reference(&reg.image_ref("busybox:1")).unwrap();
    let e = rt
        .block_on(registry.pull(&r, &host_platform(), &store))
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::UnknownAuthority { .. }),
        "{}",
        chain(&e)
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("--registry-certificate {}=<ca.pem>", reg.host())),
        "{msg}"
    );
    assert!(msg.contains("--skip-tls-verify"), "{msg}");
}

#[test]
fn registry_map_and_mirror_serve_docker_hub_pulls() {
    if !require(TOOLS) {
        return;
    }
    let reg = TestRegistry::start_plain();
    let pushed = push_busybox(&reg, "library/busybox:1");
    push_busybox(&reg, "hub/library/busybox:2");
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let rt = runtime();

    // --registry-mirror: `busybox:1` is looked up as library/busybox there.
    let mirror = Registry::new(
        RegistryOptions {
            registry_mirrors: vec![reg.host()],
            ..plain_options(&reg)
        },
        keychain(&reg.docker_config_dir()),
    );
    let r = parse_reference("busybox:1").unwrap();
    let img = rt
        .block_on(mirror.pull(&r, &host_platform(), &store))
        .unwrap();
    assert_eq!(img.digest.to_string(), pushed);
    assert_eq!(img.reference.to_string(), "docker.io/library/busybox:1");
    assert_eq!(img.source.to_string(), reg.image_ref("library/busybox:1"));

    // --registry-map with a repository prefix.
    let map = Registry::new(
        RegistryOptions {
            registry_maps: vec![("index.docker.io".into(), format!("{}/hub", reg.host()))],
            ..plain_options(&reg)
        },
        keychain(&reg.docker_config_dir()),
    );
    let r = parse_reference("busybox:2").unwrap();
    let img = rt.block_on(map.pull(&r, &host_platform(), &store)).unwrap();
    assert_eq!(
        img.source.to_string(),
        reg.image_ref("hub/library/busybox:2")
    );

    // Missing there, and no fallback to Docker Hub allowed.
    let strict = Registry::new(
        RegistryOptions {
            registry_mirrors: vec![reg.host()],
            skip_default_registry_fallback: true,
            ..plain_options(&reg)
        },
        keychain(&reg.docker_config_dir()),
    );
    let r = parse_reference("busybox:missing").unwrap();
    let e = rt
        .block_on(strict.pull(&r, &host_platform(), &store))
        .unwrap_err();
    assert!(matches!(e, RegistryError::NoMappedRegistry { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "image docker.io/library/busybox:missing not found on any mapped registry ({}) \
             and the default registry fallback is disabled",
            reg.host()
        )
    );
}

//! Registry options (Kaniko's registry flags) and what they mean for one
//! host: plain HTTP or HTTPS, TLS verification, extra CAs, client
//! certificates; and the registries a pull is tried against (mirrors and
//! `--registry-map`).

use super::reference::DOCKER_HUB;
use oci_client::Reference;
use std::path::PathBuf;
use std::time::Duration;

/// How kiln talks to registries. The CLI builds this from Kaniko's flags;
/// each field names its flag. [`RegistryOptions::default`] is Kaniko's
/// default: HTTPS with verification everywhere, no mirrors, no retries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `--insecure`: push over plain HTTP.
    pub insecure: bool,
    /// `--insecure-pull`: pull over plain HTTP.
    pub insecure_pull: bool,
    /// `--insecure-registry` (repeatable): hosts reached over plain HTTP for
    /// both pull and push.
    pub insecure_registries: Vec<String>,
    /// `--skip-tls-verify`: do not verify TLS certificates when pushing.
    pub skip_tls_verify: bool,
    /// `--skip-tls-verify-pull`: do not verify TLS certificates when pulling.
    pub skip_tls_verify_pull: bool,
    /// `--skip-tls-verify-registry` (repeatable): hosts whose certificates
    /// are not verified, for pull and push.
    pub skip_tls_verify_registries: Vec<String>,
    /// `--registry-certificate host=path` (repeatable): an extra CA
    /// certificate (PEM) trusted for that host.
    pub registry_certificates: Vec<(String, PathBuf)>,
    /// `--registry-client-cert host=cert,key` (repeatable): a TLS client
    /// certificate and key (PEM) presented to that host. The registry
    /// client cannot present one yet: a host with one configured fails
    /// with [`RegistryError::ClientCertificateUnsupported`](super::RegistryError::ClientCertificateUnsupported).
    pub registry_client_certs: Vec<(String, PathBuf, PathBuf)>,
    /// `--registry-mirror` (repeatable): registries (`host[/prefix]`) tried
    /// in order for Docker Hub pulls before Docker Hub itself. Kaniko turns
    /// each into `--registry-map index.docker.io=<mirror>`; so does kiln.
    pub registry_mirrors: Vec<String>,
    /// `--skip-default-registry-fallback`: when every mirror or mapped
    /// registry fails, fail instead of trying the original registry.
    pub skip_default_registry_fallback: bool,
    /// `--registry-map from=to` (repeatable): pulls from registry `from` are
    /// tried against `to` (`host[/prefix]`; the prefix is put in front of
    /// the repository), in the order given, before `from` itself.
    pub registry_maps: Vec<(String, String)>,
    /// `--image-download-retry`: how many times a failed pull request is
    /// retried.
    pub image_download_retry: u32,
    /// `--push-retry`: how many times a failed push request is retried.
    pub push_retry: u32,
    /// First delay between retries; doubled each time up to
    /// [`retry_max_delay`](Self::retry_max_delay). Not a Kaniko flag
    /// (Kaniko waits 1s, 2s, 4s...). Default 1s.
    pub retry_initial_delay: Duration,
    /// Longest delay between retries. Default 30s.
    pub retry_max_delay: Duration,
    /// Layers downloaded (or uploaded) at once. Default 3.
    pub max_concurrent_transfers: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            insecure: false,
            insecure_pull: false,
            insecure_registries: Vec::new(),
            skip_tls_verify: false,
            skip_tls_verify_pull: false,
            skip_tls_verify_registries: Vec::new(),
            registry_certificates: Vec::new(),
            registry_client_certs: Vec::new(),
            registry_mirrors: Vec::new(),
            skip_default_registry_fallback: false,
            registry_maps: Vec::new(),
            image_download_retry: 0,
            push_retry: 0,
            retry_initial_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(30),
            max_concurrent_transfers: 3,
        }
    }
}

/// Whether a host is contacted to pull or to push; the two take different
/// flags (`--insecure-pull` vs `--insecure`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Pulling images.
    Pull,
    /// Pushing images.
    Push,
}

/// The connection settings for one host and operation, resolved from
/// [`RegistryOptions`]. One oci-client `Client` is built (and cached) per
/// distinct host and settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostSettings {
    /// Plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// Accept any TLS certificate.
    pub skip_tls_verify: bool,
    /// Extra CA certificates (PEM files) to trust.
    pub ca_certificates: Vec<PathBuf>,
    /// A client certificate and key to present.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Whether `host` (as written in a reference) is the `listed` host of a
/// flag. Docker Hub answers to several names.
fn same_host(listed: &str, host: &str) -> bool {
    let canon = |h: &str| {
        let h = h.trim_end_matches('/');
        let h = h
            .strip_prefix("https://")
            .or_else(|| h.strip_prefix("http://"))
            .unwrap_or(h);
        if is_docker_hub(h) {
            DOCKER_HUB.to_owned()
        } else {
            h.to_ascii_lowercase()
        }
    };
    canon(listed) == canon(host)
}

/// Whether `host` is one of Docker Hub's names.
pub(crate) fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

impl RegistryOptions {
    /// The settings for contacting `host` to `op`.
    pub fn settings_for(&self, host: &str, op: Operation) -> HostSettings {
        let listed = |list: &[String]| list.iter().any(|h| same_host(h, host));
        let (insecure, skip) = match op {
            Operation::Pull => (self.insecure_pull, self.skip_tls_verify_pull),
            Operation::Push => (self.insecure, self.skip_tls_verify),
        };
        HostSettings {
            plain_http: insecure || listed(&self.insecure_registries),
            skip_tls_verify: skip || listed(&self.skip_tls_verify_registries),
            ca_certificates: self
                .registry_certificates
                .iter()
                .filter(|(h, _)| same_host(h, host))
                .map(|(_, p)| p.clone())
                .collect(),
            client_cert: self
                .registry_client_certs
                .iter()
                .find(|(h, _, _)| same_host(h, host))
                .map(|(_, c, k)| (c.clone(), k.clone())),
        }
    }

    /// The references a pull of `reference` tries, in order: each
    /// `--registry-map` target for its registry, then each
    /// `--registry-mirror` for Docker Hub images, then (unless
    /// `--skip-default-registry-fallback` and at least one was listed) the
    /// reference itself. The `bool` is true for the reference itself.
    pub fn pull_candidates(&self, reference: &Reference) -> Vec<(Reference, bool)> {
        let registry = reference.registry();
        let mut targets: Vec<&str> = self
            .registry_maps
            .iter()
            .filter(|(from, _)| same_host(from, registry))
            .map(|(_, to)| to.as_str())
            .collect();
        if is_docker_hub(registry) {
            targets.extend(self.registry_mirrors.iter().map(String::as_str));
        }
        let mut out: Vec<(Reference, bool)> = targets
            .iter()
            .map(|to| (remap(reference, to), false))
            .collect();
        if out.is_empty() || !self.skip_default_registry_fallback {
            out.push((reference.clone(), true));
        }
        out
    }
}

/// `reference` moved to `to` = `host[/prefix]`, as Kaniko's
/// `--registry-map` does: the prefix goes in front of the repository
/// (which keeps Docker Hub's `library/`).
fn remap(reference: &Reference, to: &str) -> Reference {
    let to = to
        .strip_prefix("https://")
        .or_else(|| to.strip_prefix("http://"))
        .unwrap_or(to)
        .trim_end_matches('/');
    let (host, prefix) = match to.split_once('/') {
        Some((h, p)) => (h, format!("{}/", p.trim_matches('/'))),
        None => (to, String::new()),
    };
    let repository = format!("{prefix}{}", reference.repository());
    match (reference.tag(), reference.digest()) {
        (Some(t), Some(d)) => {
            Reference::with_tag_and_digest(host.into(), repository, t.into(), d.into())
        }
        (None, Some(d)) => Reference::with_digest(host.into(), repository, d.into()),
        (t, None) => Reference::with_tag(host.into(), repository, t.unwrap_or("latest").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_are_https_verified() {
        let o = RegistryOptions::default();
        let s = o.settings_for("r.example:5000", Operation::Pull);
        assert_eq!(
            s,
            HostSettings {
                plain_http: false,
                skip_tls_verify: false,
                ca_certificates: vec![],
                client_cert: None
            }
        );
    }

    #[test]
    fn pull_and_push_flags_are_separate() {
        let o = RegistryOptions {
            insecure: true,
            skip_tls_verify_pull: true,
            ..Default::default()
        };
        let pull = o.settings_for("a.example", Operation::Pull);
        let push = o.settings_for("a.example", Operation::Push);
        assert!(!pull.plain_http && pull.skip_tls_verify);
        assert!(push.plain_http && !push.skip_tls_verify);
    }

    #[test]
    fn per_registry_lists() {
        let o = RegistryOptions {
            insecure_registries: vec!["127.0.0.1:5000".into()],
            skip_tls_verify_registries: vec!["docker.io".into()],
            registry_certificates: vec![
                ("ca.example".into(), "/ca1.pem".into()),
                ("other.example".into(), "/x.pem".into()),
                ("ca.example".into(), "/ca2.pem".into()),
            ],
            registry_client_certs: vec![("m.example".into(), "/c.pem".into(), "/k.pem".into())],
            ..Default::default()
        };
        for op in [Operation::Pull, Operation::Push] {
            assert!(o.settings_for("127.0.0.1:5000", op).plain_http);
            assert!(!o.settings_for("127.0.0.1:5001", op).plain_http);
            assert!(o.settings_for("index.docker.io", op).skip_tls_verify);
            assert!(!o.settings_for("quay.io", op).skip_tls_verify);
        }
        assert_eq!(
            o.settings_for("ca.example", Operation::Pull)
                .ca_certificates,
            vec![PathBuf::from("/ca1.pem"), PathBuf::from("/ca2.pem")]
        );
        assert_eq!(
            o.settings_for("m.example", Operation::Push).client_cert,
            Some(("/c.pem".into(), "/k.pem".into()))
        );
        assert_eq!(
            o.settings_for("ca.example", Operation::Push).client_cert,
            None
        );
    }

    #[test]
    fn mirrors_and_maps() {
        let o = RegistryOptions {
            registry_mirrors: vec!["mirror.gcr.io".into()],
            registry_maps: vec![
                ("index.docker.io".into(), "reg.example/hub".into()),
                ("quay.io".into(), "q.example".into()),
            ],
            ..Default::default()
        };
        let c = o.pull_candidates(&r("busybox:1.36"));
        let names: Vec<String> = c.iter().map(|(r, _)| r.to_string()).collect();
        assert_eq!(
            names,
            [
                "reg.example/hub/library/busybox:1.36",
                "mirror.gcr.io/library/busybox:1.36",
                "docker.io/library/busybox:1.36"
            ]
        );
        assert_eq!(c.iter().filter(|(_, orig)| *orig).count(), 1);
        let d = "sha256:".to_owned() + &"a".repeat(64);
        let c = o.pull_candidates(&r(&format!("quay.io/org/app@{d}")));
        assert_eq!(c[0].0.to_string(), format!("q.example/org/app@{d}"));
        assert_eq!(c.len(), 2);
        let c = o.pull_candidates(&r("ghcr.io/org/app:1"));
        assert_eq!(c.len(), 1);
        assert!(c[0].1);

        let strict = RegistryOptions {
            skip_default_registry_fallback: true,
            ..o.clone()
        };
        let c = strict.pull_candidates(&r("busybox"));
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|(_, orig)| !orig));
        // Nothing mapped: the fallback switch does not apply.
        assert_eq!(strict.pull_candidates(&r("ghcr.io/org/app:1")).len(), 1);
    }
}

//! Pulling an image: manifest (through an index for the platform), config
//! and layers, each streamed into the blob store and verified against its
//! digest and size before it is used.

use super::client::Session;
use super::error::Target;
use super::options::Operation;
use super::platform;
use super::retry::RetryPolicy;
use super::{Registry, RegistryError, blocking};
use crate::image::{Digest, Platform, media};
use crate::store::{BlobStore, StoreError};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::Reference;
use oci_client::client::LayerDescriptor;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use std::io::Write;

/// Manifest media types kiln asks for.
const ACCEPT: &[&str] = &[
    media::OCI_MANIFEST,
    media::DOCKER_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST_LIST,
];

/// An image pulled into the blob store. Every blob it names (config,
/// layers) and the manifests are in the store, verified.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The reference asked for, normalised (`docker.io/library/busybox:latest`).
    pub reference: Reference,
    /// Where it came from: the reference itself, or its mirror / mapped
    /// registry.
    pub source: Reference,
    /// The digest of the image manifest.
    pub digest: Digest,
    /// The digest of the index (manifest list) it was chosen from, if any.
    pub index_digest: Option<Digest>,
    /// The manifest. Docker schema 2 manifests are read into the OCI type
    /// as they are: descriptors keep their Docker media types.
    pub manifest: ImageManifest,
    /// The manifest's media type (OCI or Docker).
    pub manifest_media_type: String,
    /// The manifest exactly as served (its digest is [`digest`](Self::digest)).
    pub manifest_bytes: Vec<u8>,
    /// The config's digest.
    pub config_digest: Digest,
    /// The config bytes.
    pub config_bytes: Vec<u8>,
    /// The layer descriptors, base first.
    pub layers: Vec<Descriptor>,
}

impl Registry {
    /// Pulls `reference` for `platform` into `store`.
    ///
    /// Docker Hub images go to the mirrors first and any reference to its
    /// `--registry-map` targets first (see
    /// [`RegistryOptions::pull_candidates`](super::RegistryOptions::pull_candidates)).
    /// An index (manifest list) is resolved to the manifest for `platform`
    /// with containerd's matching rules; a single manifest whose config is
    /// for another platform is an error. Blobs already in the store are not
    /// downloaded again; a few layers download at once.
    #[tracing::instrument(skip_all, fields(image = %reference, platform = %platform))]
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: &Platform,
        store: &BlobStore,
    ) -> Result<PulledImage, RegistryError> {
        let candidates = self.options.pull_candidates(reference);
        let mut tried = Vec::new();
        let mut last = None;
        for (candidate, original) in &candidates {
            match self.pull_from(reference, candidate, platform, store).await {
                Ok(img) => return Ok(img),
                Err(e) if *original => return Err(e),
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "pulling {candidate} failed; trying the next registry"
                    );
                    tried.push(candidate.resolve_registry().to_owned());
                    last = Some(e);
                }
            }
        }
        let cause = last.expect("at least one candidate is tried");
        Err(RegistryError::NoMappedRegistry {
            reference: reference.to_string(),
            tried: tried.join(", "),
            cause: Box::new(cause),
        })
    }

    async fn pull_from(
        &self,
        reference: &Reference,
        remote: &Reference,
        platform: &Platform,
        store: &BlobStore,
    ) -> Result<PulledImage, RegistryError> {
        let policy = self.policy(Operation::Pull);
        let session = self.session(remote, Operation::Pull, &[]).await?;
        let t = &session.target;
        let shown = remote.to_string();

        let (bytes, digest) = fetch_manifest(&session, remote, None, policy, store).await?;
        let mut media_type = manifest_media_type(&bytes, t, &shown)?;
        let (manifest_bytes, manifest_digest, index_digest) = if media::is_index(&media_type) {
            let index: ImageIndex = parse(&bytes, "index", t, &shown)?;
            let Some(entry) = platform::select(index.manifests(), platform) else {
                let available: Vec<String> = index
                    .manifests()
                    .iter()
                    .filter_map(platform::descriptor_platform)
                    .map(|p| p.to_string())
                    .collect();
                return Err(RegistryError::NoMatchingPlatform {
                    reference: shown,
                    host: t.host.clone(),
                    platform: platform.to_string(),
                    available: if available.is_empty() {
                        "none".to_owned()
                    } else {
                        available.join(", ")
                    },
                });
            };
            let entry_digest = descriptor_digest(entry, t, &shown)?;
            let child = remote.clone_with_digest(entry_digest.to_string());
            let (child_bytes, child_digest) = fetch_manifest(
                &session,
                &child,
                Some((&entry_digest, entry.size())),
                policy,
                store,
            )
            .await?;
            media_type = manifest_media_type(&child_bytes, t, &shown)?;
            (child_bytes, child_digest, Some(digest))
        } else {
            (bytes, digest, None)
        };
        if !media::is_manifest(&media_type) {
            return Err(RegistryError::UnsupportedMediaType {
                what: "manifest".to_owned(),
                reference: shown,
                host: t.host.clone(),
                media_type,
            });
        }
        let manifest: ImageManifest = parse(&manifest_bytes, "manifest", t, &shown)?;

        let config = manifest.config();
        let config_digest = descriptor_digest(config, t, &shown)?;
        fetch_blob(&session, remote, config, "config", policy, store).await?;
        let config_bytes = blocking(|| store.read_blob(&config_digest))
            .map_err(|e| t.store_error(format!("config {config_digest}"), e))?;
        if index_digest.is_none() {
            check_config_platform(&config_bytes, platform, t, &shown)?;
        }

        for layer in manifest.layers() {
            if media::layer_compression(layer.media_type().as_ref()).is_none() {
                return Err(RegistryError::UnsupportedMediaType {
                    what: format!("layer {}", layer.digest()),
                    reference: shown,
                    host: t.host.clone(),
                    media_type: layer.media_type().to_string(),
                });
            }
        }
        let session = &session;
        futures_util::stream::iter(manifest.layers())
            .map(|layer| fetch_blob(session, remote, layer, "layer", policy, store))
            .buffer_unordered(self.options.max_concurrent_transfers.max(1))
            .try_collect::<Vec<()>>()
            .await?;

        tracing::info!(digest = %manifest_digest, source = %remote, "pulled");
        Ok(PulledImage {
            reference: reference.clone(),
            source: remote.clone(),
            digest: manifest_digest,
            index_digest,
            layers: manifest.layers().clone(),
            manifest,
            manifest_media_type: media_type,
            manifest_bytes,
            config_digest,
            config_bytes,
        })
    }
}

/// The media type a manifest says it has; OCI manifests may leave it out,
/// then `manifests` means an index.
fn manifest_media_type(bytes: &[u8], t: &Target, shown: &str) -> Result<String, RegistryError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let p: Probe = parse(bytes, "manifest", t, shown)?;
    if p.schema_version != Some(2) {
        return Err(RegistryError::Invalid {
            what: "manifest",
            reference: shown.to_owned(),
            host: t.host.clone(),
            reason: format!(
                "schemaVersion is {:?}, kiln reads only schema 2",
                p.schema_version
            ),
        });
    }
    Ok(match p.media_type {
        Some(m) => m,
        None if p.manifests.is_some() => media::OCI_INDEX.to_owned(),
        None => media::OCI_MANIFEST.to_owned(),
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    t: &Target,
    shown: &str,
) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Invalid {
        what,
        reference: shown.to_owned(),
        host: t.host.clone(),
        reason: e.to_string(),
    })
}

fn descriptor_digest(d: &Descriptor, t: &Target, shown: &str) -> Result<Digest, RegistryError> {
    d.digest()
        .to_string()
        .parse()
        .map_err(|e: crate::image::DigestError| RegistryError::Invalid {
            what: "manifest",
            reference: shown.to_owned(),
            host: t.host.clone(),
            reason: e.to_string(),
        })
}

/// Fetches a manifest or index, checks it against the reference's digest
/// (or `expected` digest and size), stores it, and returns it with its
/// digest.
async fn fetch_manifest(
    s: &Session,
    r: &Reference,
    expected: Option<(&Digest, u64)>,
    policy: RetryPolicy,
    store: &BlobStore,
) -> Result<(Vec<u8>, Digest), RegistryError> {
    let shown = r.to_string();
    let bytes = policy
        .run("fetching a manifest", || async {
            s.client
                .oci
                .pull_manifest_raw(r, &s.auth, ACCEPT)
                .await
                .map(|(b, _)| b)
                .map_err(|e| s.target.manifest_error(&shown, e))
        })
        .await?;
    let digest = Digest::sha256_of(&bytes);
    let wanted: Option<Digest> = match (expected, r.digest()) {
        (Some((d, _)), _) => Some(d.clone()),
        (None, Some(d)) => {
            Some(
                d.parse()
                    .map_err(|e: crate::image::DigestError| RegistryError::Invalid {
                        what: "reference",
                        reference: shown.clone(),
                        host: s.target.host.clone(),
                        reason: e.to_string(),
                    })?,
            )
        }
        (None, None) => None,
    };
    if let Some(w) = &wanted
        && *w != digest
    {
        return Err(RegistryError::ManifestDigestMismatch {
            reference: shown,
            host: s.target.host.clone(),
            actual: digest,
        });
    }
    let size = expected.map(|(_, n)| n).unwrap_or(bytes.len() as u64);
    blocking(|| {
        let mut w = store.writer()?;
        w.write_all(&bytes).map_err(|source| StoreError::Io {
            what: format!("manifest {digest}"),
            source,
        })?;
        w.commit(Some(&digest), Some(size))
    })
    .map_err(|e| s.target.store_error(format!("manifest {digest}"), e))?;
    Ok((bytes.to_vec(), digest))
}

/// Streams a blob into the store unless it is there already; the store
/// verifies digest and size before publishing it.
async fn fetch_blob(
    s: &Session,
    r: &Reference,
    d: &Descriptor,
    kind: &str,
    policy: RetryPolicy,
    store: &BlobStore,
) -> Result<(), RegistryError> {
    let t = &s.target;
    let digest = descriptor_digest(d, t, &r.to_string())?;
    let size = d.size();
    if store.contains(&digest) && store.size(&digest).ok() == Some(size) {
        tracing::debug!(%digest, "{kind} already in the store");
        return Ok(());
    }
    let what = format!("{kind} {digest}");
    let digest_text = digest.to_string();
    policy
        .run(&format!("fetching {what}"), || async {
            let ld = LayerDescriptor {
                digest: &digest_text,
                urls: d.urls(),
            };
            let mut stream = s
                .client
                .oci
                .pull_blob_stream(r, &ld)
                .await
                .map_err(|e| t.error(format!("fetching {what}"), e))?;
            let mut w = blocking(|| store.writer()).map_err(|e| t.store_error(what.clone(), e))?;
            let mut received = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|cause| RegistryError::Transfer {
                    digest: digest.clone(),
                    host: t.host.clone(),
                    repository: t.repository.clone(),
                    cause,
                })?;
                received += chunk.len() as u64;
                if received > size {
                    // Stop a registry that sends more than the descriptor says.
                    return Err(t.store_error(
                        what.clone(),
                        StoreError::SizeMismatch {
                            digest: digest.clone(),
                            expected: size,
                            actual: received,
                        },
                    ));
                }
                blocking(|| w.write_all(&chunk)).map_err(|source| {
                    t.store_error(
                        what.clone(),
                        StoreError::Io {
                            what: what.clone(),
                            source,
                        },
                    )
                })?;
            }
            blocking(|| w.commit(Some(&digest), Some(size)))
                .map_err(|e| t.store_error(what.clone(), e))?;
            Ok(())
        })
        .await?;
    tracing::debug!(%digest, size, "{kind} fetched");
    Ok(())
}

/// A single-platform image must be for the requested platform (or one it
/// runs). A config without `os`/`architecture` is not judged.
fn check_config_platform(
    config: &[u8],
    wanted: &Platform,
    t: &Target,
    shown: &str,
) -> Result<(), RegistryError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    let p: Probe = parse(config, "config", t, shown)?;
    let (Some(os), Some(arch)) = (p.os, p.architecture) else {
        return Ok(());
    };
    if os.is_empty() || arch.is_empty() {
        return Ok(());
    }
    let actual = Platform {
        os,
        architecture: arch,
        variant: p.variant.filter(|v| !v.is_empty()),
    }
    .normalize();
    if platform::matches(wanted, &actual) {
        Ok(())
    } else {
        Err(RegistryError::PlatformMismatch {
            reference: shown.to_owned(),
            host: t.host.clone(),
            requested: wanted.to_string(),
            actual: actual.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::parse_platform;

    fn target() -> Target {
        Target {
            host: "r.example".into(),
            repository: "app".into(),
            credential_source: "none".into(),
        }
    }

    #[test]
    fn media_types_of_manifests() {
        let t = target();
        let m = |s: &str| manifest_media_type(s.as_bytes(), &t, "r.example/app:1");
        assert_eq!(
            m(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#)
                .unwrap(),
            media::DOCKER_MANIFEST
        );
        assert_eq!(
            m(r#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            media::OCI_INDEX
        );
        assert_eq!(
            m(r#"{"schemaVersion":2,"layers":[]}"#).unwrap(),
            media::OCI_MANIFEST
        );
        let e = m(r#"{"schemaVersion":1,"fsLayers":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.example/app:1") && e.contains("schema"), "{e}");
        assert!(m("not json").is_err());
    }

    #[test]
    fn docker_manifest_keeps_media_types() {
        let json = r#"{
          "schemaVersion": 2,
          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469,
                     "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111"},
          "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2,
                      "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222"}]
        }"#;
        let m: ImageManifest = parse(json.as_bytes(), "manifest", &target(), "x").unwrap();
        assert_eq!(m.config().media_type().as_ref(), media::DOCKER_CONFIG);
        assert_eq!(
            m.layers()[0].media_type().as_ref(),
            media::DOCKER_LAYER_GZIP
        );
    }

    #[test]
    fn config_platform() {
        let t = target();
        let amd64 = parse_platform("linux/amd64").unwrap();
        let arm64 = parse_platform("linux/arm64").unwrap();
        let cfg = br#"{"os":"linux","architecture":"amd64","rootfs":{}}"#;
        assert!(check_config_platform(cfg, &amd64, &t, "r.example/app:1").is_ok());
        let e = check_config_platform(cfg, &arm64, &t, "r.example/app:1")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "image r.example/app:1 from r.example is for platform linux/amd64, not the \
             requested linux/arm64"
        );
        let cfg = br#"{"os":"linux","architecture":"arm64","variant":"v8"}"#;
        assert!(check_config_platform(cfg, &arm64, &t, "x").is_ok());
        assert!(check_config_platform(br#"{}"#, &arm64, &t, "x").is_ok());
    }
}

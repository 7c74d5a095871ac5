//! Image manifests and indexes (manifest lists): the types as registries
//! store them, and pure functions that build one and return its bytes,
//! digest and media type.
//!
//! Field order and omission follow the Go structs of the OCI image spec
//! (`specs-go/v1`: `Manifest`, `Index`, `Descriptor`, `Platform`), and the
//! bytes are indented with two spaces, as BuildKit writes manifests
//! (`json.MarshalIndent(mfst, "", "  ")` in
//! `exporter/containerimage/writer.go`).
//!
//! OCI media types are the default. Docker schema 2 types switch together:
//! manifest, config and layer types. Docker has no zstd layer type, so zstd
//! layers need OCI types.

use super::gojson;
use super::media::{self, Compression};
use super::{Digest, Platform};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which family of media types a manifest uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaTypes {
    /// `application/vnd.oci.image.*` (the default).
    #[default]
    Oci,
    /// Docker schema 2 (`application/vnd.docker.distribution.manifest.v2+json`...).
    Docker,
}

impl MediaTypes {
    /// The manifest media type.
    pub fn manifest(self) -> &'static str {
        match self {
            Self::Oci => media::OCI_MANIFEST,
            Self::Docker => media::DOCKER_MANIFEST,
        }
    }

    /// The index / manifest list media type.
    pub fn index(self) -> &'static str {
        match self {
            Self::Oci => media::OCI_INDEX,
            Self::Docker => media::DOCKER_MANIFEST_LIST,
        }
    }

    /// The config media type.
    pub fn config(self) -> &'static str {
        match self {
            Self::Oci => media::OCI_CONFIG,
            Self::Docker => media::DOCKER_CONFIG,
        }
    }

    /// The layer media type for a compression; `None` for zstd with Docker
    /// types, which have no zstd layer type.
    pub fn layer(self, compression: Compression) -> Option<&'static str> {
        match (self, compression) {
            (Self::Oci, Compression::None) => Some(media::OCI_LAYER_TAR),
            (Self::Oci, Compression::Gzip) => Some(media::OCI_LAYER_GZIP),
            (Self::Oci, Compression::Zstd) => Some(media::OCI_LAYER_ZSTD),
            (Self::Docker, Compression::None) => Some(media::DOCKER_LAYER_TAR),
            (Self::Docker, Compression::Gzip) => Some(media::DOCKER_LAYER_GZIP),
            (Self::Docker, Compression::Zstd) => None,
        }
    }
}

/// Why a manifest or index could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// zstd layers with Docker media types.
    #[error(
        "layer {digest} is zstd-compressed, which Docker media types cannot describe: use OCI media types or gzip"
    )]
    ZstdNeedsOci {
        /// The layer.
        digest: Digest,
    },
    /// The bytes are not a manifest or index.
    #[error("invalid {what} JSON")]
    Parse {
        /// `manifest` or `index`.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// `mediaType`.
    pub media_type: String,
    /// `digest`.
    pub digest: Digest,
    /// `size` in bytes.
    pub size: u64,
    /// `urls` (foreign layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// `annotations`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `data`: the content inline, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// `platform` (entries of an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
    /// `artifactType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor of `media_type` for content with `digest` and `size`.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            data: None,
            platform: None,
            artifact_type: None,
        }
    }
}

/// The `platform` of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorPlatform {
    /// `architecture`.
    pub architecture: String,
    /// `os`.
    pub os: String,
    /// `os.version`.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// `os.features`.
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// `variant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl From<&Platform> for DescriptorPlatform {
    fn from(p: &Platform) -> Self {
        Self {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            os_version: None,
            os_features: Vec::new(),
            variant: p.variant.clone(),
        }
    }
}

/// An image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// `schemaVersion`: 2.
    pub schema_version: u32,
    /// `mediaType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// `artifactType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// `config`.
    pub config: Descriptor,
    /// `layers`, bottom first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// `subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// `annotations`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// `schemaVersion`: 2.
    pub schema_version: u32,
    /// `mediaType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// `artifactType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// `manifests`.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// `subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// `annotations`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads a manifest.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ManifestError> {
        serde_json::from_slice(bytes).map_err(|source| ManifestError::Parse {
            what: "manifest",
            source,
        })
    }
}

impl Index {
    /// Reads an index or manifest list.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ManifestError> {
        serde_json::from_slice(bytes).map_err(|source| ManifestError::Parse {
            what: "index",
            source,
        })
    }
}

/// A layer to list in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Digest of the (compressed) blob.
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
    /// How the blob is compressed; picks the media type.
    pub compression: Compression,
    /// Layer annotations (written as given).
    pub annotations: BTreeMap<String, String>,
}

/// A serialized manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The bytes to store and push.
    pub bytes: Vec<u8>,
    /// Their digest.
    pub digest: Digest,
    /// Their media type.
    pub media_type: &'static str,
}

impl Built {
    /// A descriptor of these bytes (for an index entry, or a tag).
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }
}

/// The descriptor of a config blob with the config media type of `types`.
pub fn config_descriptor(types: MediaTypes, config_bytes: &[u8]) -> Descriptor {
    Descriptor::new(
        types.config(),
        Digest::sha256_of(config_bytes),
        config_bytes.len() as u64,
    )
}

/// Builds a manifest of `config` (see [`config_descriptor`]) and `layers`,
/// bottom first. The config descriptor's media type is set from `types`.
/// Fails for a zstd layer with Docker types.
pub fn build_manifest(
    types: MediaTypes,
    config: &Descriptor,
    layers: &[Layer],
    annotations: &BTreeMap<String, String>,
) -> Result<Built, ManifestError> {
    let layers = layers
        .iter()
        .map(|l| {
            let media_type =
                types
                    .layer(l.compression)
                    .ok_or_else(|| ManifestError::ZstdNeedsOci {
                        digest: l.digest.clone(),
                    })?;
            let mut d = Descriptor::new(media_type, l.digest.clone(), l.size);
            d.annotations = l.annotations.clone();
            Ok(d)
        })
        .collect::<Result<Vec<_>, ManifestError>>()?;
    let mut config = config.clone();
    config.media_type = types.config().to_owned();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(types.manifest().to_owned()),
        artifact_type: None,
        config,
        layers,
        subject: None,
        annotations: annotations.clone(),
    };
    Ok(built(&manifest, types.manifest()))
}

/// Builds an index (OCI) or manifest list (Docker) of `manifests`, each
/// usually with a `platform`.
pub fn build_index(
    types: MediaTypes,
    manifests: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Built {
    let index = Index {
        schema_version: 2,
        media_type: Some(types.index().to_owned()),
        artifact_type: None,
        manifests: manifests.to_vec(),
        subject: None,
        annotations: annotations.clone(),
    };
    built(&index, types.index())
}

fn built<T: Serialize>(value: &T, media_type: &'static str) -> Built {
    let bytes = gojson::to_vec_indent(value)
        .expect("a manifest always serializes: string keys, no fallible fields");
    Built {
        digest: Digest::sha256_of(&bytes),
        bytes,
        media_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    fn layer(n: u8, compression: Compression) -> Layer {
        Layer {
            digest: d(n),
            size: 100 + u64::from(n),
            compression,
            annotations: BTreeMap::new(),
        }
    }

    const CONFIG: &[u8] = br#"{"architecture":"amd64","config":{},"os":"linux","rootfs":{"type":"layers","diff_ids":null}}"#;

    #[test]
    fn oci_manifest_bytes_and_digest() {
        let cfg = config_descriptor(MediaTypes::Oci, CONFIG);
        let m = build_manifest(
            MediaTypes::Oci,
            &cfg,
            &[layer(1, Compression::Gzip), layer(2, Compression::Zstd)],
            &BTreeMap::new(),
        )
        .unwrap();
        let want = format!(
            r#"{{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {{
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "{}",
    "size": {}
  }},
  "layers": [
    {{
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "{}",
      "size": 101
    }},
    {{
      "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
      "digest": "{}",
      "size": 102
    }}
  ]
}}"#,
            Digest::sha256_of(CONFIG),
            CONFIG.len(),
            d(1),
            d(2)
        );
        assert_eq!(String::from_utf8(m.bytes.clone()).unwrap(), want);
        assert_eq!(m.digest, Digest::sha256_of(want.as_bytes()));
        assert_eq!(m.media_type, media::OCI_MANIFEST);
        let back = Manifest::from_bytes(&m.bytes).unwrap();
        assert_eq!(back.layers.len(), 2);
        assert_eq!(back.config.size, CONFIG.len() as u64);
    }

    #[test]
    fn docker_types_switch_together() {
        let cfg = config_descriptor(MediaTypes::Oci, CONFIG);
        let m = build_manifest(
            MediaTypes::Docker,
            &cfg,
            &[layer(1, Compression::Gzip), layer(3, Compression::None)],
            &BTreeMap::new(),
        )
        .unwrap();
        let back = Manifest::from_bytes(&m.bytes).unwrap();
        assert_eq!(m.media_type, media::DOCKER_MANIFEST);
        assert_eq!(back.media_type.as_deref(), Some(media::DOCKER_MANIFEST));
        assert_eq!(back.config.media_type, media::DOCKER_CONFIG);
        assert_eq!(back.layers[0].media_type, media::DOCKER_LAYER_GZIP);
        assert_eq!(back.layers[1].media_type, media::DOCKER_LAYER_TAR);
        let e = build_manifest(
            MediaTypes::Docker,
            &cfg,
            &[layer(1, Compression::Zstd)],
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("zstd"), "{e}");
    }

    #[test]
    fn annotations_and_index() {
        let cfg = config_descriptor(MediaTypes::Oci, CONFIG);
        let mut ann = BTreeMap::new();
        ann.insert(
            "org.opencontainers.image.title".to_owned(),
            "a & b".to_owned(),
        );
        let mut l = layer(1, Compression::Gzip);
        l.annotations.insert("x".into(), "y".into());
        let m = build_manifest(MediaTypes::Oci, &cfg, &[l], &ann).unwrap();
        let text = String::from_utf8(m.bytes.clone()).unwrap();
        assert!(
            text.contains(
                "\"size\": 101,\n      \"annotations\": {\n        \"x\": \"y\"\n      }\n    }"
            ),
            "{text}"
        );
        assert!(text.ends_with("  ],\n  \"annotations\": {\n    \"org.opencontainers.image.title\": \"a \\u0026 b\"\n  }\n}"), "{text}");

        let mut entry = m.descriptor();
        entry.platform = Some(DescriptorPlatform::from(
            &crate::image::parse_platform("linux/arm/v7").unwrap(),
        ));
        let mut ref_ann = BTreeMap::new();
        ref_ann.insert(
            "org.opencontainers.image.ref.name".to_owned(),
            "latest".to_owned(),
        );
        entry.annotations = ref_ann;
        let idx = build_index(MediaTypes::Oci, &[entry], &BTreeMap::new());
        let want = format!(
            r#"{{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {{
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "{}",
      "size": {},
      "annotations": {{
        "org.opencontainers.image.ref.name": "latest"
      }},
      "platform": {{
        "architecture": "arm",
        "os": "linux",
        "variant": "v7"
      }}
    }}
  ]
}}"#,
            m.digest,
            m.bytes.len()
        );
        assert_eq!(String::from_utf8(idx.bytes.clone()).unwrap(), want);
        assert_eq!(idx.digest, Digest::sha256_of(want.as_bytes()));
        assert_eq!(idx.media_type, media::OCI_INDEX);
        let back = Index::from_bytes(&idx.bytes).unwrap();
        assert_eq!(back.manifests[0].digest, m.digest);

        let list = build_index(MediaTypes::Docker, &[m.descriptor()], &BTreeMap::new());
        assert_eq!(list.media_type, media::DOCKER_MANIFEST_LIST);
        assert!(
            String::from_utf8(list.bytes)
                .unwrap()
                .contains(media::DOCKER_MANIFEST_LIST)
        );
    }

    #[test]
    fn empty_layers_written_as_empty_list() {
        let cfg = config_descriptor(MediaTypes::Oci, CONFIG);
        let m = build_manifest(MediaTypes::Oci, &cfg, &[], &BTreeMap::new()).unwrap();
        assert!(
            String::from_utf8(m.bytes)
                .unwrap()
                .contains("\"layers\": []")
        );
        assert!(Manifest::from_bytes(b"{").is_err());
    }
}

//! Pure OCI data: digests, platforms, media types, timestamps, image configs
//! ([`config`]), manifests and indexes ([`manifest`]). Configs and manifests
//! are written byte for byte as Go's `encoding/json` writes them, so digests
//! match BuildKit's for the same content.
//!
//! May use nothing else in kiln; does no I/O.

pub mod config;
mod digest;
mod gojson;
pub mod manifest;
pub mod media;
mod platform;
mod time;

pub use config::{ConfigError, ContainerConfig, Healthcheck, History, ImageConfig, RootFs};
pub use digest::{Digest, DigestError, HashingReader, HashingWriter, Sha256};
pub use manifest::{
    Built, Descriptor, DescriptorPlatform, Index, Layer, Manifest, ManifestError, MediaTypes,
    build_index, build_manifest, config_descriptor,
};
pub use platform::{Platform, PlatformError, parse_platform};
pub use time::{Timestamp, TimestampError};

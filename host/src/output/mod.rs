//! Outputs of a build besides the push: the docker-archive tarball
//! (Kaniko's `--tar-path`), the OCI image layout (`--oci-layout-path`) and
//! the digest files (`--digest-file`, `--image-name-with-digest-file`,
//! `--image-name-tag-with-digest-file`).
//!
//! Each writer takes an assembled image as [`ImageBlobs`]: the manifest and
//! config bytes, and layers that are blobs in the [`BlobStore`]. Layers
//! stream from the store to the output; nothing holds a layer whole.
//!
//! # Atomicity
//!
//! A failed build or write leaves no half-written output behind. Files are
//! written to a temporary file beside the destination (same directory, so
//! the same filesystem), flushed to disk with `fsync`, then renamed over the
//! destination; on error the temporary file is removed. A new OCI layout is
//! built in a temporary directory beside it and renamed into place. An
//! existing layout is updated the way Kaniko updates it (see
//! [`write_oci_layout`]): blobs are added one by one, each atomically, and
//! `index.json` is replaced last, so a reader sees the old image or the new
//! one, never a mix.
//!
//! Where a user-named file cannot be replaced by a rename, it is written in
//! place instead, as Kaniko would: a destination that is not a regular file
//! (`--tar-path=/dev/stdout`, a pipe), a mount point or a file in a
//! directory kiln cannot create files in (`--digest-file=/dev/termination-log`
//! in Kubernetes). A symlink at the destination is followed, not replaced.
//!
//! # Ambient Authority
//!
//! These writers open user-given paths on the host filesystem with
//! `std::fs`. That is their job: outputs live outside the build root, which
//! is reached only through a `cap_std::fs::Dir` elsewhere. Blobs are read
//! through the store's own directory handle.
//!
//! May use `image` and `store`; pushing to registries comes with the
//! `registry` module.

mod atomic;
mod digest_files;
mod docker_archive;
mod oci_layout;
#[cfg(test)]
mod tests;

pub use digest_files::{DUMMY_DESTINATION, docker_archive_repo_tags, write_digest_files};
pub use docker_archive::write_docker_archive;
pub use oci_layout::{REF_NAME_ANNOTATION, write_oci_layout};

use crate::image::Digest;
use crate::store::{BlobStore, StoreError};
use std::io;
use std::path::PathBuf;

/// An assembled image: manifest and config in memory, layers in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBlobs {
    /// The manifest bytes, exactly as pushed.
    pub manifest: Vec<u8>,
    /// The manifest's digest (the image digest).
    pub manifest_digest: Digest,
    /// The manifest's media type (OCI or Docker schema 2).
    pub manifest_media_type: String,
    /// The config bytes.
    pub config: Vec<u8>,
    /// The config's digest (the image ID).
    pub config_digest: Digest,
    /// The layers, base first, as the manifest lists them.
    pub layers: Vec<LayerRef>,
}

/// A layer of an [`ImageBlobs`]: a blob in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// The blob's digest.
    pub digest: Digest,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The layer media type.
    pub media_type: String,
}

impl ImageBlobs {
    /// Checks the manifest and config bytes against their digests.
    pub fn verify(&self) -> Result<(), OutputError> {
        for (what, bytes, digest) in [
            ("manifest", &self.manifest, &self.manifest_digest),
            ("config", &self.config, &self.config_digest),
        ] {
            let actual = Digest::sha256_of(bytes);
            if actual != *digest {
                return Err(OutputError::DigestMismatch {
                    what,
                    expected: digest.clone(),
                    actual,
                });
            }
        }
        Ok(())
    }
}

/// Errors of writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A filesystem operation on an output path failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done: `create`, `write`, `rename`, ...
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A blob the image needs could not be read from the store.
    #[error("cannot read blob {digest} from the blob store")]
    Store {
        /// The blob.
        digest: Digest,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A blob in the store has another size than the image says.
    #[error("blob {digest} in the store is {actual} bytes, the image says {expected}")]
    BlobSize {
        /// The blob.
        digest: Digest,
        /// The size in the image.
        expected: u64,
        /// The size in the store.
        actual: u64,
    },
    /// The manifest or config bytes do not match their digest.
    #[error("image {what} does not match its digest {expected}: the bytes hash to {actual}")]
    DigestMismatch {
        /// `manifest` or `config`.
        what: &'static str,
        /// The digest given.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// The OCI layout path exists and is not a directory.
    #[error("oci layout path {} exists and is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// An OCI layout reference name that the image spec does not allow.
    #[error(
        "invalid oci layout reference name {name:?}: expected components of letters and digits joined by '/', '-', '.', '_', ':', '@' or '+'"
    )]
    RefName {
        /// The name.
        name: String,
    },
    /// A destination that is not an image reference with an optional tag.
    #[error("invalid destination {destination:?}: {reason}")]
    Destination {
        /// The destination as given.
        destination: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A name-with-digest file was asked for without any destination.
    #[error("{flag} needs at least one destination")]
    NoDestinations {
        /// The flag's name.
        flag: &'static str,
    },
    /// Kaniko PUTs digest files whose path is an `https://` URL; kiln does
    /// not (the URL, which may be pre-signed, is left out of the message).
    #[error("{flag}: writing to an https url is not supported; give a file path")]
    UrlNotSupported {
        /// The flag's name.
        flag: &'static str,
    },
    /// The docker-archive manifest could not be encoded.
    #[error("cannot encode {what}")]
    Json {
        /// What.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Opens a layer blob after checking its size against the image.
fn open_layer(store: &BlobStore, layer: &LayerRef) -> Result<cap_std::fs::File, OutputError> {
    let store_err = |source| OutputError::Store {
        digest: layer.digest.clone(),
        source,
    };
    let actual = store.size(&layer.digest).map_err(store_err)?;
    if actual != layer.size {
        return Err(OutputError::BlobSize {
            digest: layer.digest.clone(),
            expected: layer.size,
            actual,
        });
    }
    store.open_blob(&layer.digest).map_err(store_err)
}

//! Pushing an image from the blob store: each blob is skipped when the
//! registry has it, mounted from another repository when one is known,
//! else streamed from the store in one PUT; the manifest goes last, then
//! each extra tag.

use super::client::Session;
use super::options::Operation;
use super::pull::PulledImage;
use super::retry::RetryPolicy;
use super::{Registry, RegistryError, blocking};
use crate::image::Digest;
use crate::store::{BlobStore, StoreError};
use futures_util::{Stream, StreamExt, TryStreamExt};
use oci_client::Reference;
use oci_client::errors::OciDistributionError;
use oci_spec::image::Descriptor;
use tokio::io::AsyncReadExt;

/// A layer to push, and where on the destination registry it may already
/// be (so it can be mounted rather than uploaded).
#[derive(Debug, Clone)]
pub struct LayerToPush {
    /// The layer's descriptor; the blob is in the store.
    pub descriptor: Descriptor,
    /// A repository on the destination registry that has this blob, such
    /// as the base image's repository.
    pub mount_from: Option<String>,
}

/// An image to push: its manifest and the descriptors of the blobs it
/// names, all of which are in the blob store.
#[derive(Debug, Clone)]
pub struct ImageToPush {
    /// The manifest, exactly as it will be served.
    pub manifest_bytes: Vec<u8>,
    /// Its media type (OCI or Docker manifest).
    pub manifest_media_type: String,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<LayerToPush>,
    /// More tags in the destination repository that get the same manifest.
    pub extra_tags: Vec<String>,
}

impl PulledImage {
    /// This image, to push elsewhere; its layers may be mounted from the
    /// repository it was pulled from when that is on the destination
    /// registry.
    pub fn to_push(&self) -> ImageToPush {
        let from = self.source.repository().to_owned();
        ImageToPush {
            manifest_bytes: self.manifest_bytes.clone(),
            manifest_media_type: self.manifest_media_type.clone(),
            config: self.manifest.config().clone(),
            layers: self
                .layers
                .iter()
                .map(|d| LayerToPush {
                    descriptor: d.clone(),
                    mount_from: Some(from.clone()),
                })
                .collect(),
            extra_tags: Vec::new(),
        }
    }
}

impl Registry {
    /// Pushes `image` from `store` to `destination` and returns the
    /// manifest digest.
    #[tracing::instrument(skip_all, fields(destination = %destination))]
    pub async fn push(
        &self,
        destination: &Reference,
        image: &ImageToPush,
        store: &BlobStore,
    ) -> Result<Digest, RegistryError> {
        let policy = self.policy(Operation::Push);
        let mut mounts: Vec<String> = image
            .layers
            .iter()
            .filter_map(|l| l.mount_from.clone())
            .filter(|r| r != destination.repository())
            .collect();
        mounts.sort();
        mounts.dedup();
        let session = self.session(destination, Operation::Push, &mounts).await?;
        let t = &session.target;

        let mut blobs: Vec<(&Descriptor, Option<&str>)> = vec![(&image.config, None)];
        for l in &image.layers {
            if !blobs
                .iter()
                .any(|(d, _)| d.digest() == l.descriptor.digest())
            {
                blobs.push((&l.descriptor, l.mount_from.as_deref()));
            }
        }
        let session_ref = &session;
        futures_util::stream::iter(blobs)
            .map(|(d, from)| push_blob(session_ref, destination, d, from, policy, store))
            .buffer_unordered(self.options.max_concurrent_transfers.max(1))
            .try_collect::<Vec<()>>()
            .await?;

        let digest = Digest::sha256_of(&image.manifest_bytes);
        if let Some(want) = destination.digest()
            && want != digest.to_string()
        {
            return Err(RegistryError::ManifestDigestMismatch {
                reference: destination.to_string(),
                host: t.host.clone(),
                actual: digest,
            });
        }
        let content_type = reqwest::header::HeaderValue::from_str(&image.manifest_media_type)
            .map_err(|e| RegistryError::Invalid {
                what: "manifest media type",
                reference: destination.to_string(),
                host: t.host.clone(),
                reason: e.to_string(),
            })?;
        let mut targets = vec![destination.clone()];
        targets.extend(image.extra_tags.iter().map(|tag| {
            Reference::with_tag(
                destination.registry().to_owned(),
                destination.repository().to_owned(),
                tag.clone(),
            )
        }));
        for target in &targets {
            policy
                .run(&format!("pushing the manifest {target}"), || async {
                    session
                        .client
                        .oci
                        .push_manifest_raw(
                            target,
                            image.manifest_bytes.clone(),
                            content_type.clone(),
                        )
                        .await
                        .map_err(|e| t.error(format!("pushing the manifest as {target}"), e))
                })
                .await?;
            tracing::info!(%digest, destination = %target, "pushed");
        }
        Ok(digest)
    }
}

/// Pushes one blob unless the registry has it.
async fn push_blob(
    s: &Session,
    dest: &Reference,
    d: &Descriptor,
    mount_from: Option<&str>,
    policy: RetryPolicy,
    store: &BlobStore,
) -> Result<(), RegistryError> {
    let t = &s.target;
    let digest: Digest =
        d.digest()
            .to_string()
            .parse()
            .map_err(|e: crate::image::DigestError| RegistryError::Invalid {
                what: "descriptor",
                reference: dest.to_string(),
                host: t.host.clone(),
                reason: e.to_string(),
            })?;
    let what = format!("blob {digest}");
    let digest_text = digest.to_string();
    let missing = |cause| RegistryError::MissingBlob {
        what: what.clone(),
        host: t.host.clone(),
        repository: t.repository.clone(),
        cause: Box::new(cause),
    };
    let size = blocking(|| store.size(&digest)).map_err(missing)?;
    if size != d.size() {
        return Err(missing(StoreError::SizeMismatch {
            digest: digest.clone(),
            expected: d.size(),
            actual: size,
        }));
    }

    let exists = policy
        .run(&format!("checking {what}"), || async {
            s.client
                .oci
                .blob_exists(dest, &digest_text)
                .await
                .map_err(|e| t.error(format!("checking for {what}"), e))
        })
        .await?;
    if exists {
        tracing::debug!(%digest, "{what} already in the repository");
        return Ok(());
    }

    if let Some(from) = mount_from.filter(|f| *f != dest.repository()) {
        let source = Reference::with_digest(
            dest.registry().to_owned(),
            from.to_owned(),
            digest_text.clone(),
        );
        match s.client.oci.mount_blob(dest, &source, &digest_text).await {
            Ok(()) => {
                tracing::info!(%digest, from, "mounted {what}");
                return Ok(());
            }
            Err(e) => {
                tracing::debug!(%digest, from, error = %e, "mount declined; uploading");
            }
        }
    }

    policy
        .run(&format!("uploading {what}"), || async {
            let file = blocking(|| store.open_blob(&digest)).map_err(missing)?;
            let file = tokio::fs::File::from_std(file.into_std());
            s.client
                .oci
                .push_blob_stream(dest, file_stream(file), &digest_text, Some(size))
                .await
                .map_err(|e| t.error(format!("uploading {what}"), e))
        })
        .await?;
    tracing::debug!(%digest, size, "uploaded {what}");
    Ok(())
}

/// A file as a stream of chunks, read as the upload consumes them.
fn file_stream(
    file: tokio::fs::File,
) -> impl Stream<Item = Result<bytes::Bytes, OciDistributionError>> + Send + 'static {
    futures_util::stream::try_unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 256 * 1024];
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((bytes::Bytes::from(buf), f)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_stream_yields_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let d = store.put(&data).unwrap();
        let f = tokio::fs::File::from_std(store.open_blob(&d).unwrap().into_std());
        let chunks: Vec<bytes::Bytes> = file_stream(f).try_collect().await.unwrap();
        assert!(chunks.len() >= 3);
        assert_eq!(chunks.concat(), data);
    }
}

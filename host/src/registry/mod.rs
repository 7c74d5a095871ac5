//! Talking to registries: references, credentials, pull and push, mirrors
//! and `--registry-map`, retries. Async (tokio), over `oci-client`.
//!
//! May use `image` and `store`; never the rootfs.
//!
//! Start at [`Registry`]: [`Registry::pull`] resolves a reference for a
//! platform and streams the manifest, config and layers into a
//! [`BlobStore`](crate::store::BlobStore), verifying each against its
//! digest and size; [`Registry::push`] sends an image from the store,
//! skipping blobs the registry has and mounting those another repository
//! on it has. [`RegistryOptions`] carries Kaniko's registry flags.
//!
//! What oci-client 0.18 cannot do, and what kiln does about it:
//! - TLS client certificates: not supported; a host with
//!   `--registry-client-cert` fails with
//!   [`RegistryError::ClientCertificateUnsupported`] rather than connecting
//!   without one.
//! - `Retry-After`: its errors carry the status but not the headers, so
//!   429s from registry requests back off exponentially instead; the token
//!   endpoint (kiln's own request) honours it.
//! - Identity tokens: kiln does the OAuth2 refresh-token grant itself.
//! - Cross-repository mounts on registries with token auth: oci-client asks
//!   for a token scoped to the destination only, so such a registry may
//!   decline the mount; kiln then uploads the blob.

pub mod auth;
mod client;
mod error;
mod options;
mod platform;
mod pull;
mod push;
mod reference;
mod retry;

pub use error::RegistryError;
pub use oci_client::Reference;
pub use options::{HostSettings, Operation, RegistryOptions};
pub use pull::PulledImage;
pub use push::{ImageToPush, LayerToPush};
pub use reference::parse_reference;

use auth::Keychain;
use client::HostClient;
use retry::RetryPolicy;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A registry client for a build: options, credentials, and one connection
/// pool per registry host and settings.
pub struct Registry {
    options: RegistryOptions,
    keychain: Keychain,
    clients: tokio::sync::Mutex<HashMap<(String, HostSettings), Arc<HostClient>>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry client with `options`, finding credentials in `keychain`.
    pub fn new(options: RegistryOptions, keychain: Keychain) -> Self {
        Self {
            options,
            keychain,
            clients: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    fn policy(&self, op: Operation) -> RetryPolicy {
        RetryPolicy {
            retries: match op {
                Operation::Pull => self.options.image_download_retry,
                Operation::Push => self.options.push_retry,
            },
            initial: self.options.retry_initial_delay,
            max: self.options.retry_max_delay,
        }
    }
}

/// Runs blocking filesystem work (blob store writes) from async code
/// without stalling the runtime's other tasks where the runtime allows.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

//! The registry module's error type and the classification of failures
//! (which are worth a retry, which are authentication failures, which mean
//! an unknown certificate authority).

use crate::image::Digest;
use crate::store::StoreError;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use std::error::Error as StdError;
use std::path::PathBuf;
use std::time::Duration;

/// Errors of registry operations. Every variant names the registry host
/// (and the repository or reference where one is involved); credentials
/// never appear, only where they came from.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An image reference that does not parse.
    #[error("invalid image reference {reference:?}")]
    InvalidReference {
        /// The text given.
        reference: String,
        /// Why it does not parse.
        #[source]
        cause: oci_client::ParseError,
    },
    /// The registry refused the credentials (401/403, or the token
    /// endpoint said no).
    #[error("authentication to {host} failed using {credential_source} (repository {repository})")]
    Auth {
        /// The registry host.
        host: String,
        /// The repository the request was for.
        repository: String,
        /// Where the credentials came from (never the secret).
        credential_source: String,
        /// The registry's answer.
        #[source]
        cause: Box<dyn StdError + Send + Sync>,
    },
    /// The manifest (tag or digest) does not exist.
    #[error("image {reference} not found in {host}")]
    NotFound {
        /// The reference asked for.
        reference: String,
        /// The registry host.
        host: String,
        /// The registry's answer.
        #[source]
        cause: Box<OciDistributionError>,
    },
    /// The registry's TLS certificate is signed by an authority kiln does
    /// not trust.
    #[error(
        "the TLS certificate of {host} is signed by an unknown authority: pass \
         --registry-certificate {host}=<ca.pem> to trust its CA (or --skip-tls-verify \
         for a test registry)"
    )]
    UnknownAuthority {
        /// The registry host.
        host: String,
        /// The TLS failure.
        #[source]
        cause: Box<dyn StdError + Send + Sync>,
    },
    /// A request to the registry failed.
    #[error("{operation} on {host}/{repository} failed")]
    Request {
        /// What was being done, e.g. `fetching manifest latest`.
        operation: String,
        /// The registry host.
        host: String,
        /// The repository.
        repository: String,
        /// The failure.
        #[source]
        cause: Box<OciDistributionError>,
    },
    /// A blob or manifest download broke off mid-stream.
    #[error("downloading {digest} from {host}/{repository} failed")]
    Transfer {
        /// The blob.
        digest: Digest,
        /// The registry host.
        host: String,
        /// The repository.
        repository: String,
        /// The I/O failure.
        #[source]
        cause: std::io::Error,
    },
    /// Content from the registry did not match its digest or size, or
    /// could not be stored.
    #[error("{what} from {host}/{repository} could not be verified and stored")]
    Store {
        /// What was being stored, e.g. `layer sha256:...`.
        what: String,
        /// The registry host.
        host: String,
        /// The repository.
        repository: String,
        /// The store's verdict.
        #[source]
        cause: Box<StoreError>,
    },
    /// A manifest's bytes do not hash to the digest they were asked for.
    #[error("manifest of {reference} from {host} hashes to {actual}, not to the requested digest")]
    ManifestDigestMismatch {
        /// The reference asked for.
        reference: String,
        /// The registry host.
        host: String,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// A manifest, index or config that is not valid JSON of its kind.
    #[error("{what} of {reference} from {host} is invalid: {reason}")]
    Invalid {
        /// `manifest`, `index`, `config`...
        what: &'static str,
        /// The reference.
        reference: String,
        /// The registry host.
        host: String,
        /// What is wrong.
        reason: String,
    },
    /// A media type kiln cannot use where it was found.
    #[error("{what} of {reference} from {host} has unsupported media type {media_type:?}")]
    UnsupportedMediaType {
        /// `manifest`, `layer sha256:...`.
        what: String,
        /// The reference.
        reference: String,
        /// The registry host.
        host: String,
        /// The media type.
        media_type: String,
    },
    /// An index lists no manifest for the requested platform.
    #[error(
        "no manifest for platform {platform} in {reference} from {host} (available: {available})"
    )]
    NoMatchingPlatform {
        /// The reference.
        reference: String,
        /// The registry host.
        host: String,
        /// The platform asked for.
        platform: String,
        /// The platforms the index offers.
        available: String,
    },
    /// A single-platform image is for another platform than the one asked for.
    #[error(
        "image {reference} from {host} is for platform {actual}, not the requested {requested}"
    )]
    PlatformMismatch {
        /// The reference.
        reference: String,
        /// The registry host.
        host: String,
        /// The platform asked for.
        requested: String,
        /// The platform of the image's config.
        actual: String,
    },
    /// Every mapped registry failed and falling back to the original one is
    /// disabled (`--skip-default-registry-fallback`).
    #[error(
        "image {reference} not found on any mapped registry ({tried}) and the default \
         registry fallback is disabled"
    )]
    NoMappedRegistry {
        /// The reference.
        reference: String,
        /// The registries tried.
        tried: String,
        /// The last failure.
        #[source]
        cause: Box<RegistryError>,
    },
    /// A `--registry-certificate` file could not be read or parsed.
    #[error("cannot use registry certificate {} for {host}", path.display())]
    Certificate {
        /// The registry host.
        host: String,
        /// The certificate file.
        path: PathBuf,
        /// Why.
        #[source]
        cause: Box<dyn StdError + Send + Sync>,
    },
    /// A client certificate (`--registry-client-cert`) was given for a
    /// host, but the registry client cannot present one.
    #[error(
        "--registry-client-cert for {host} cannot be honoured: the registry client \
         (oci-client 0.18) has no way to present a TLS client certificate"
    )]
    ClientCertificateUnsupported {
        /// The registry host.
        host: String,
    },
    /// The HTTP client for a host could not be built.
    #[error("cannot set up the HTTP client for {host}")]
    Client {
        /// The registry host.
        host: String,
        /// Why.
        #[source]
        cause: Box<dyn StdError + Send + Sync>,
    },
    /// Looking up credentials failed.
    #[error("cannot look up credentials for {host}")]
    Credentials {
        /// The registry host.
        host: String,
        /// Why.
        #[source]
        cause: Box<super::auth::AuthError>,
    },
    /// Exchanging an identity token for an access token failed.
    #[error("exchanging the identity token from {credential_source} at {realm} for {host} failed")]
    TokenExchange {
        /// The registry host.
        host: String,
        /// The token endpoint.
        realm: String,
        /// Where the identity token came from.
        credential_source: String,
        /// HTTP status, when the endpoint answered.
        status: Option<u16>,
        /// `Retry-After` of a 429/503 answer.
        retry_after: Option<Duration>,
        /// Why.
        #[source]
        cause: Option<Box<dyn StdError + Send + Sync>>,
    },
    /// A blob to push is not in the local store.
    #[error("cannot push {what} to {host}/{repository}: not readable from the blob store")]
    MissingBlob {
        /// The blob.
        what: String,
        /// The registry host.
        host: String,
        /// The repository.
        repository: String,
        /// Why.
        #[source]
        cause: Box<StoreError>,
    },
}

/// Whether a failure is worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transience {
    /// Do not retry (4xx, auth, verification, configuration).
    Permanent,
    /// Retry, after `Retry-After` when the registry sent one.
    Transient(Option<Duration>),
}

impl RegistryError {
    /// Whether retrying might help: 5xx, 429, 408, dropped connections and
    /// timeouts; never 4xx, authentication or verification failures.
    pub(crate) fn transience(&self) -> Transience {
        match self {
            Self::Request { cause, .. } => classify(cause),
            Self::Transfer { .. } => Transience::Transient(None),
            Self::TokenExchange {
                status,
                retry_after,
                cause,
                ..
            } => match status {
                Some(code) => status_transience(*code, *retry_after),
                None => match cause {
                    Some(c) if is_unknown_authority(c.as_ref()) => Transience::Permanent,
                    _ => Transience::Transient(None),
                },
            },
            _ => Transience::Permanent,
        }
    }
}

fn status_transience(code: u16, retry_after: Option<Duration>) -> Transience {
    match code {
        429 | 408 | 500..=599 => Transience::Transient(retry_after),
        _ => Transience::Permanent,
    }
}

/// Classifies an oci-client failure. oci-client does not expose response
/// headers with its errors, so `Retry-After` is not known here.
pub(crate) fn classify(e: &OciDistributionError) -> Transience {
    match e {
        OciDistributionError::ServerError { code, .. } => status_transience(*code, None),
        OciDistributionError::RegistryError { envelope, .. } => {
            if envelope
                .errors
                .iter()
                .any(|e| e.code == OciErrorCode::Toomanyrequests)
            {
                Transience::Transient(None)
            } else {
                Transience::Permanent
            }
        }
        OciDistributionError::RequestError(r) => {
            if let Some(status) = r.status() {
                return status_transience(status.as_u16(), None);
            }
            if is_unknown_authority(r) || is_tls_failure(r) {
                return Transience::Permanent;
            }
            if r.is_timeout() || r.is_connect() || r.is_request() || r.is_body() {
                Transience::Transient(None)
            } else {
                Transience::Permanent
            }
        }
        OciDistributionError::IoError(_) => Transience::Transient(None),
        _ => Transience::Permanent,
    }
}

/// Whether a failure is the registry refusing credentials.
pub(crate) fn is_auth_failure(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => true,
        OciDistributionError::ServerError { code, .. } => matches!(code, 401 | 403),
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        OciDistributionError::RequestError(r) => {
            matches!(r.status().map(|s| s.as_u16()), Some(401 | 403))
        }
        _ => false,
    }
}

/// Whether a manifest request failed because the manifest does not exist.
pub(crate) fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::RequestError(r) => r.status().map(|s| s.as_u16()) == Some(404),
        _ => false,
    }
}

/// Walks an error's chain looking for rustls' verdict that the peer's
/// certificate chains to no trusted root.
pub(crate) fn is_unknown_authority(e: &(dyn StdError + 'static)) -> bool {
    chain_mentions(
        e,
        &["unknownissuer", "unknown issuer", "unknown_ca", "unknownca"],
    )
}

fn is_tls_failure(e: &(dyn StdError + 'static)) -> bool {
    chain_mentions(
        e,
        &["invalid peer certificate", "certificate", "tls handshake"],
    )
}

fn chain_mentions(e: &(dyn StdError + 'static), needles: &[&str]) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = format!("{err} {err:?}").to_lowercase();
        if needles.iter().any(|n| text.contains(n)) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Where a request went and with which credentials, to turn oci-client
/// failures into [`RegistryError`]s that say so.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The registry host contacted.
    pub(crate) host: String,
    /// The repository.
    pub(crate) repository: String,
    /// Where the credentials came from.
    pub(crate) credential_source: String,
}

impl Target {
    /// Maps an oci-client failure of `operation`.
    pub(crate) fn error(&self, operation: String, cause: OciDistributionError) -> RegistryError {
        if is_auth_failure(&cause) {
            return RegistryError::Auth {
                host: self.host.clone(),
                repository: self.repository.clone(),
                credential_source: self.credential_source.clone(),
                cause: Box::new(cause),
            };
        }
        if let OciDistributionError::RequestError(r) = &cause
            && is_unknown_authority(r)
        {
            return RegistryError::UnknownAuthority {
                host: self.host.clone(),
                cause: Box::new(cause),
            };
        }
        RegistryError::Request {
            operation,
            host: self.host.clone(),
            repository: self.repository.clone(),
            cause: Box::new(cause),
        }
    }

    /// Maps a failure to fetch the manifest of `reference`: a missing
    /// manifest becomes [`RegistryError::NotFound`].
    pub(crate) fn manifest_error(
        &self,
        reference: &str,
        cause: OciDistributionError,
    ) -> RegistryError {
        if is_not_found(&cause) {
            return RegistryError::NotFound {
                reference: reference.to_owned(),
                host: self.host.clone(),
                cause: Box::new(cause),
            };
        }
        self.error(format!("fetching the manifest of {reference}"), cause)
    }

    pub(crate) fn store_error(&self, what: String, cause: StoreError) -> RegistryError {
        RegistryError::Store {
            what,
            host: self.host.clone(),
            repository: self.repository.clone(),
            cause: Box::new(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::{OciEnvelope, OciError};

    fn envelope(code: OciErrorCode) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: String::new(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "https://r.example/v2/".into(),
        }
    }

    fn server(code: u16) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "https://r.example/v2/x/blobs/y".into(),
            message: String::new(),
        }
    }

    #[test]
    fn retry_classification() {
        for code in [500, 502, 503, 504, 429, 408] {
            assert_eq!(
                classify(&server(code)),
                Transience::Transient(None),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 405] {
            assert_eq!(classify(&server(code)), Transience::Permanent, "{code}");
        }
        assert_eq!(
            classify(&envelope(OciErrorCode::Toomanyrequests)),
            Transience::Transient(None)
        );
        assert_eq!(
            classify(&envelope(OciErrorCode::Unauthorized)),
            Transience::Permanent
        );
        assert_eq!(
            classify(&OciDistributionError::UnauthorizedError { url: "u".into() }),
            Transience::Permanent
        );
        assert_eq!(
            classify(&OciDistributionError::IoError(std::io::Error::other(
                "connection reset"
            ))),
            Transience::Transient(None)
        );
        assert_eq!(
            status_transience(429, Some(Duration::from_secs(7))),
            Transience::Transient(Some(Duration::from_secs(7)))
        );
    }

    #[test]
    fn auth_and_not_found() {
        assert!(is_auth_failure(&server(401)));
        assert!(is_auth_failure(&server(403)));
        assert!(is_auth_failure(&envelope(OciErrorCode::Denied)));
        assert!(!is_auth_failure(&server(500)));
        assert!(is_not_found(&envelope(OciErrorCode::ManifestUnknown)));
        assert!(is_not_found(&server(404)));
        assert!(!is_not_found(&envelope(OciErrorCode::Denied)));
        let t = Target {
            host: "r.example".into(),
            repository: "team/app".into(),
            credential_source: "/home/u/.docker/config.json".into(),
        };
        let e = t.error("fetching x".into(), server(401));
        assert_eq!(e.transience(), Transience::Permanent);
        assert_eq!(
            e.to_string(),
            "authentication to r.example failed using /home/u/.docker/config.json \
             (repository team/app)"
        );
        let e = t.manifest_error(
            "r.example/team/app:1",
            envelope(OciErrorCode::ManifestUnknown),
        );
        assert_eq!(
            e.to_string(),
            "image r.example/team/app:1 not found in r.example"
        );
    }

    #[test]
    fn unknown_authority_in_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other(
            "invalid peer certificate: UnknownIssuer",
        ));
        assert!(is_unknown_authority(&e));
        assert!(!is_unknown_authority(&std::io::Error::other("reset")));
    }
}

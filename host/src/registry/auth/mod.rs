//! Registry credentials: where they come from and what they are.
//!
//! Placeholder with the agreed API so `registry` compiles; the real module
//! (Docker `config.json`, credential helpers) lands from branch `auth` and
//! replaces this file at merge.

use std::fmt;
use std::path::PathBuf;

/// A credential for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credentials.
    Anonymous,
    /// Username and password (HTTP basic, or the token endpoint's basic auth).
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
    /// An identity (refresh) token for the OAuth2 token endpoint.
    IdentityToken {
        /// The user the token belongs to.
        username: String,
        /// The refresh token.
        token: String,
    },
    /// A registry (bearer) token used as is.
    RegistryToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Self::IdentityToken { username, .. } => {
                write!(f, "IdentityToken({username}, <redacted>)")
            }
            Self::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

/// Where a credential came from, for messages; never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSource(String);

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Credential lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Placeholder variant.
    #[error("credential lookup for {0} failed")]
    Lookup(String),
}

/// Finds credentials for registries.
#[derive(Debug, Clone, Default)]
pub struct Keychain {
    paths: Vec<PathBuf>,
}

impl Keychain {
    /// The keychain of the environment.
    pub fn from_env() -> Self {
        Self::default()
    }

    /// A keychain reading the given Docker config files.
    pub fn with_config_paths(paths: Vec<PathBuf>) -> Self {
        Self { paths }
    }

    /// The credential for `registry` and where it came from.
    pub fn resolve(&self, registry: &str) -> Result<(Credential, CredentialSource), AuthError> {
        let _ = (&self.paths, registry);
        Ok((
            Credential::Anonymous,
            CredentialSource("placeholder".to_owned()),
        ))
    }
}

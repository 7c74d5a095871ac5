//! Registry credentials, found exactly where Kaniko users put them: a Docker
//! `config.json` (`auths`, `credHelpers`, `credsStore`) and
//! `docker-credential-<name>` helpers.
//!
//! # Which config file
//!
//! Kaniko's executor (v1.24, the last release) resolves credentials with
//! go-containerregistry's `authn.DefaultKeychain` (v0.20.4), which reads
//! **one** config file through the docker CLI's `config.Load`; files are
//! never merged. Its image sets `DOCKER_CONFIG=/kaniko/.docker/`. The rule,
//! as [`Keychain::from_env`] implements it:
//!
//! 1. `DOCKER_CONFIG` set (non-empty): `$DOCKER_CONFIG/config.json` is the
//!    config, and `~/.docker/config.json` is **never read**. If
//!    `$DOCKER_CONFIG/config.json` does not exist:
//!    - and `~/.docker/config.json` exists, the result is anonymous access
//!      (go-containerregistry sees "a docker config exists", and
//!      `config.Load($DOCKER_CONFIG)` then loads an empty config);
//!    - otherwise the Podman files of step 3 are tried.
//!
//!    kiln also accepts `DOCKER_CONFIG` naming a file rather than a
//!    directory (Kaniko's `util.DockerConfLocation` allowed it, #1409); that
//!    file is then the config.
//! 2. `DOCKER_CONFIG` unset: `$HOME/.docker/config.json`, else (kiln's
//!    addition, for images that mount the secret at Kaniko's path without
//!    setting `DOCKER_CONFIG`) `/kaniko/.docker/config.json`.
//! 3. Then Podman's auth file, read as a Docker config:
//!    `$REGISTRY_AUTH_FILE`, then `$XDG_RUNTIME_DIR/containers/auth.json`.
//!
//! The first of these files that exists is the config, even when it has
//! nothing for the registry asked about; later files are not consulted.
//! [`Keychain::with_config_paths`] takes such a list directly, with the same
//! first-existing-file rule.
//!
//! # Within the file
//!
//! As the docker CLI's `ConfigFile::GetAuthConfig`: the registry's
//! `credHelpers` entry if there is one, else `credsStore`, else the `auths`
//! entry. A configured helper wins even over an `auths` entry for the same
//! registry; if the helper has nothing stored ("credentials not found in
//! native keychain") the access is anonymous, not an error, and the `auths`
//! entry is not used. An empty `credHelpers` value opts that registry out of
//! `credsStore`.
//!
//! Docker Hub (`docker.io`, `index.docker.io`, `registry-1.docker.io`) is
//! looked up under `https://index.docker.io/v1/`, and that is the server URL
//! its helper is asked about. `auths` and `credHelpers` keys match exactly
//! first, then by host: a key with a scheme or path (`http://host:5000/`,
//! `https://index.docker.io/v1/`) names the host in it. The docker CLI only
//! does the host match for `auths` and not for Docker Hub aliases; kiln's
//! looser match accepts every config the CLI accepts.
//!
//! Kaniko also compiles in helpers for GCR, ECR, ACR, GitLab and
//! DigitalOcean. kiln does not: name them in `credHelpers` and their
//! binaries (`docker-credential-ecr-login`, …) run from `PATH` like any
//! other helper.
//!
//! # Differences from Kaniko worth knowing
//!
//! - A malformed `auths` entry is an error only when it is the entry used;
//!   the docker CLI rejects the whole file.
//! - Repository-scoped keys (`ghcr.io/org`) are not looked up by repository;
//!   they match their host like any key with a path.
//! - `DOCKER_AUTH_CONFIG` (docker CLI 28.3+, not in Kaniko) is not read.
//!
//! # Secrets
//!
//! No error, log line, [`CredentialSource`] or `Debug` output holds a
//! password or token: `Debug` for [`Credential`] shows the variant and
//! username only, and errors name the registry, the file and the entry key
//! or helper, never a value.

mod config;
mod helper;

pub use config::{EntryProblem, ShapeProblem};
pub use helper::{HelperFailure, HelperOutputProblem};

use config::{ConfigFile, HelperVia, ParseError};
use helper::{Answer, RunError};
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where Kaniko's image mounts the config: `DOCKER_CONFIG=/kaniko/.docker/`.
pub const KANIKO_CONFIG_PATH: &str = "/kaniko/.docker/config.json";

/// How long a credential helper may take before it is killed.
pub const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Config files larger than this are refused (a mounted secret is tiny).
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// A credential for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credentials: anonymous access (and the registry's token dance
    /// without a username).
    Anonymous,
    /// A username and password (`auth`, or `username` + `password`, or a
    /// helper's `Username` + `Secret`).
    Basic {
        /// The username.
        username: String,
        /// The password; may contain `:`.
        password: String,
    },
    /// An identity token (OAuth2 refresh token) from `identitytoken` or a
    /// helper returning username `<token>`.
    IdentityToken {
        /// The username stored next to `identitytoken` (often empty); empty
        /// for a helper's `<token>` answer, as the docker CLI leaves it.
        username: String,
        /// The refresh token.
        token: String,
    },
    /// A bearer token to send as-is (`registrytoken` in config.json).
    RegistryToken(String),
}

impl Credential {
    /// Whether this is [`Credential::Anonymous`].
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credential::Anonymous)
    }
}

/// Shows the variant and username, never a password or token.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
            Credential::IdentityToken { username, .. } => f
                .debug_struct("IdentityToken")
                .field("username", username)
                .finish_non_exhaustive(),
            Credential::RegistryToken(_) => f.write_str("RegistryToken(..)"),
        }
    }
}

/// Where a credential came from, or where kiln looked and found none;
/// its `Display` is meant for logs and error messages and holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSource {
    registry: String,
    kind: SourceKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SourceKind {
    /// An `auths` entry.
    Auths { config: PathBuf, key: String },
    /// A credential helper; `found` is false when it had nothing stored.
    Helper { origin: HelperOrigin, found: bool },
    /// Nothing applied; what was looked at, in order.
    Nothing { looked: Vec<Looked> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Looked {
    /// The file does not exist (or is not a file).
    Missing(PathBuf),
    /// The file was read and has nothing for the registry.
    NoEntry(PathBuf),
}

impl CredentialSource {
    /// The registry the credential is for, as it was asked about.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The config file that supplied the credential or named its helper;
    /// `None` when nothing matched.
    pub fn config_file(&self) -> Option<&Path> {
        match &self.kind {
            SourceKind::Auths { config, .. } => Some(config),
            SourceKind::Helper { origin, .. } => Some(&origin.config),
            SourceKind::Nothing { .. } => None,
        }
    }

    /// The helper binary (`docker-credential-<name>`) that was asked, if any.
    pub fn helper(&self) -> Option<&str> {
        match &self.kind {
            SourceKind::Helper { origin, .. } => Some(&origin.binary),
            _ => None,
        }
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SourceKind::Auths { config, key } => {
                write!(f, "{} (auths {key:?})", config.display())
            }
            SourceKind::Helper {
                origin,
                found: true,
            } => write!(f, "{origin}"),
            SourceKind::Helper {
                origin,
                found: false,
            } => write!(f, "{origin}: no credentials stored for {:?}", self.registry),
            SourceKind::Nothing { looked } => {
                write!(
                    f,
                    "no credentials found for {:?} (looked in: ",
                    self.registry
                )?;
                if looked.is_empty() {
                    f.write_str("no config files")?;
                }
                for (i, looked) in looked.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match looked {
                        Looked::Missing(path) => write!(f, "{} (no such file)", path.display())?,
                        Looked::NoEntry(path) => write!(
                            f,
                            "{} (no auths entry, credHelpers or credsStore for it)",
                            path.display()
                        )?,
                    }
                }
                f.write_str(")")
            }
        }
    }
}

/// A credential helper and the config key that chose it, e.g.
/// `credential helper docker-credential-ecr-login (credHelpers in /kaniko/.docker/config.json)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperOrigin {
    binary: String,
    via: HelperVia,
    config: PathBuf,
}

impl fmt::Display for HelperOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "credential helper {} ({} in {})",
            self.binary,
            self.via,
            self.config.display()
        )
    }
}

/// Errors of credential lookup. Each names the registry and the config file
/// or helper involved, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A config file exists but could not be read.
    #[error("cannot read registry credentials config {} (for registry {registry})", path.display())]
    ReadConfig {
        /// The config file.
        path: PathBuf,
        /// The registry being resolved.
        registry: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A config file is not JSON.
    #[error("registry credentials config {} is not valid JSON (for registry {registry})", path.display())]
    ParseConfig {
        /// The config file.
        path: PathBuf,
        /// The registry being resolved.
        registry: String,
        /// The syntax error (a position, never content).
        #[source]
        source: serde_json::Error,
    },
    /// A config file is JSON but not shaped like a Docker config.
    #[error("registry credentials config {} is malformed (for registry {registry})", path.display())]
    ConfigShape {
        /// The config file.
        path: PathBuf,
        /// The registry being resolved.
        registry: String,
        /// What is wrong.
        #[source]
        source: ShapeProblem,
    },
    /// The `auths` entry for the registry cannot be used (malformed base64
    /// in `auth`, a field of the wrong type, …).
    #[error("auths entry {key:?} in {} for registry {registry} is malformed", path.display())]
    MalformedEntry {
        /// The config file.
        path: PathBuf,
        /// The entry's key in `auths`.
        key: String,
        /// The registry being resolved.
        registry: String,
        /// What is wrong.
        #[source]
        source: EntryProblem,
    },
    /// A helper name in `credHelpers`/`credsStore` is not a plain name.
    #[error(
        "credential helper name {name:?} ({via} in {}) for registry {registry} is not a plain name",
        path.display()
    )]
    InvalidHelperName {
        /// The name as configured.
        name: String,
        /// `credHelpers` or `credsStore`.
        via: String,
        /// The config file.
        path: PathBuf,
        /// The registry being resolved.
        registry: String,
    },
    /// The helper binary is not on the helper `PATH`.
    #[error("{origin} for registry {registry}: {} not found on PATH ({search_path})", origin.binary)]
    HelperNotFound {
        /// The helper and the config that named it.
        origin: HelperOrigin,
        /// The registry being resolved.
        registry: String,
        /// The `PATH` that was searched.
        search_path: String,
    },
    /// The helper could not be started or waited for.
    #[error("{origin} could not be run for registry {registry}")]
    HelperRun {
        /// The helper and the config that named it.
        origin: HelperOrigin,
        /// The registry being resolved.
        registry: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The helper exited with an error other than "not found".
    #[error("{origin} failed for registry {registry}")]
    HelperFailed {
        /// The helper and the config that named it.
        origin: HelperOrigin,
        /// The registry being resolved.
        registry: String,
        /// Exit status and the helper's message (trimmed, cut short).
        #[source]
        source: HelperFailure,
    },
    /// The helper did not finish in time and was killed.
    #[error("{origin} did not answer within {}s for registry {registry} and was killed", timeout.as_secs_f64())]
    HelperTimedOut {
        /// The helper and the config that named it.
        origin: HelperOrigin,
        /// The registry being resolved.
        registry: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The helper succeeded but printed something unusable.
    #[error("{origin} returned unusable output for registry {registry}")]
    HelperOutput {
        /// The helper and the config that named it.
        origin: HelperOrigin,
        /// The registry being resolved.
        registry: String,
        /// What is wrong (never the output itself).
        #[source]
        source: HelperOutputProblem,
    },
}

/// Finds registry credentials the way Kaniko does: the config files to
/// consider, in order, and how to run credential helpers.
///
/// Cheap to clone; every [`resolve`](Keychain::resolve) re-reads the files,
/// so a rotated secret is picked up.
#[derive(Debug, Clone)]
pub struct Keychain {
    config_paths: Vec<PathBuf>,
    helper_path: Option<OsString>,
    helper_timeout: Duration,
}

impl Keychain {
    /// The config files Kaniko would consider, from the environment:
    /// `$DOCKER_CONFIG/config.json` when `DOCKER_CONFIG` is set, else
    /// `~/.docker/config.json` then `/kaniko/.docker/config.json`, then
    /// Podman's auth files. The exact rule, including `DOCKER_CONFIG` set
    /// with no file in it, is in the [module docs](self).
    ///
    /// Helpers are looked up on the process `PATH` at resolve time and get
    /// [`DEFAULT_HELPER_TIMEOUT`].
    ///
    /// # Ambient Authority
    ///
    /// Reads the process environment and checks whether
    /// `~/.docker/config.json` exists.
    pub fn from_env() -> Self {
        let paths = config_paths_from(|name| std::env::var_os(name), |path| path.is_file());
        Keychain::with_config_paths(paths)
    }

    /// A keychain over exactly these config files: the first that exists is
    /// the config (later ones are not merged in). Helpers are looked up on
    /// the process `PATH` and get [`DEFAULT_HELPER_TIMEOUT`].
    pub fn with_config_paths(paths: Vec<PathBuf>) -> Self {
        Keychain {
            config_paths: paths,
            helper_path: None,
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
        }
    }

    /// Looks `docker-credential-*` helpers up in this `PATH`-style list
    /// instead of the process `PATH` (only absolute directories count).
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> Self {
        self.helper_path = Some(path.into());
        self
    }

    /// Kills a helper that takes longer than this (default 30 s).
    pub fn with_helper_timeout(mut self, timeout: Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }

    /// The config files considered, in order.
    pub fn config_paths(&self) -> &[PathBuf] {
        &self.config_paths
    }

    /// Credentials for a registry host as written in references
    /// (`127.0.0.1:5000`, `docker.io`, `ghcr.io`; a scheme or path is
    /// ignored). Anonymous when nothing matches, with a source that lists
    /// what was looked at.
    ///
    /// Blocks: reads files and may run a helper for up to the helper
    /// timeout. From async code, call it in `tokio::task::spawn_blocking`.
    ///
    /// # Ambient Authority
    ///
    /// Reads the config files and runs helper binaries from the helper
    /// `PATH`, with the process environment.
    pub fn resolve(&self, registry: &str) -> Result<(Credential, CredentialSource), AuthError> {
        let key = config::lookup_key(registry);
        let host = config::normalized_host(registry);
        let mut looked = Vec::new();
        for path in &self.config_paths {
            let Some(config) = read_config(path, registry)? else {
                looked.push(Looked::Missing(path.clone()));
                continue;
            };
            if let Some(found) = self.resolve_in(&config, path, registry, &key, &host)? {
                tracing::debug!(registry, source = %found.1, "registry credentials resolved");
                return Ok(found);
            }
            looked.push(Looked::NoEntry(path.clone()));
            break;
        }
        let source = CredentialSource {
            registry: registry.to_owned(),
            kind: SourceKind::Nothing { looked },
        };
        tracing::debug!(registry, source = %source, "no registry credentials; anonymous");
        Ok((Credential::Anonymous, source))
    }

    /// Resolves within one config file; `None` when it has nothing at all
    /// for the registry.
    fn resolve_in(
        &self,
        config: &ConfigFile,
        path: &Path,
        registry: &str,
        key: &str,
        host: &str,
    ) -> Result<Option<(Credential, CredentialSource)>, AuthError> {
        let source = |kind| CredentialSource {
            registry: registry.to_owned(),
            kind,
        };
        if let Some((name, via)) = config.helper_for(key, host)
            && !name.is_empty()
        {
            let (credential, origin, found) = self.run_helper(name, via, path, registry, key)?;
            return Ok(Some((
                credential,
                source(SourceKind::Helper { origin, found }),
            )));
        }
        match config.auth_for(key, host) {
            Ok(Some((entry_key, credential))) => Ok(Some((
                credential,
                source(SourceKind::Auths {
                    config: path.to_owned(),
                    key: entry_key.to_owned(),
                }),
            ))),
            Ok(None) => Ok(None),
            Err((entry_key, problem)) => Err(AuthError::MalformedEntry {
                path: path.to_owned(),
                key: entry_key.to_owned(),
                registry: registry.to_owned(),
                source: problem,
            }),
        }
    }

    fn run_helper(
        &self,
        name: &str,
        via: HelperVia,
        config: &Path,
        registry: &str,
        server_url: &str,
    ) -> Result<(Credential, HelperOrigin, bool), AuthError> {
        if name.contains('/') || name.chars().any(char::is_control) {
            return Err(AuthError::InvalidHelperName {
                name: name.to_owned(),
                via: via.to_string(),
                path: config.to_owned(),
                registry: registry.to_owned(),
            });
        }
        let origin = HelperOrigin {
            binary: helper::binary_name(name),
            via,
            config: config.to_owned(),
        };
        let search = self
            .helper_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        let Some(program) = helper::find_on_path(&origin.binary, &search) else {
            return Err(AuthError::HelperNotFound {
                registry: registry.to_owned(),
                search_path: search.to_string_lossy().into_owned(),
                origin,
            });
        };
        let registry = registry.to_owned();
        match helper::get(&program, server_url, self.helper_timeout) {
            Ok(Answer::Found { username, secret }) => {
                let credential = if username == helper::TOKEN_USERNAME {
                    Credential::IdentityToken {
                        username: String::new(),
                        token: secret,
                    }
                } else {
                    Credential::Basic {
                        username,
                        password: secret,
                    }
                };
                Ok((credential, origin, true))
            }
            Ok(Answer::NotFound) => Ok((Credential::Anonymous, origin, false)),
            Err(RunError::Spawn(source) | RunError::Wait(source)) => Err(AuthError::HelperRun {
                origin,
                registry,
                source,
            }),
            Err(RunError::Failed(source)) => Err(AuthError::HelperFailed {
                origin,
                registry,
                source,
            }),
            Err(RunError::TimedOut) => Err(AuthError::HelperTimedOut {
                origin,
                registry,
                timeout: self.helper_timeout,
            }),
            Err(RunError::BadOutput(source)) => Err(AuthError::HelperOutput {
                origin,
                registry,
                source,
            }),
        }
    }
}

/// Reads and parses one config file; `None` when it does not exist or is
/// not a regular file (go-containerregistry's `fileExists`).
fn read_config(path: &Path, registry: &str) -> Result<Option<ConfigFile>, AuthError> {
    let read_error = |source| AuthError::ReadConfig {
        path: path.to_owned(),
        registry: registry.to_owned(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Ok(None),
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(read_error(error)),
    }
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut text))
        .map_err(read_error)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(read_error(io::Error::other(format!(
            "larger than {MAX_CONFIG_BYTES} bytes"
        ))));
    }
    match ConfigFile::parse(&text) {
        Ok(config) => Ok(Some(config)),
        Err(ParseError::Json(source)) => Err(AuthError::ParseConfig {
            path: path.to_owned(),
            registry: registry.to_owned(),
            source,
        }),
        Err(ParseError::Shape(source)) => Err(AuthError::ConfigShape {
            path: path.to_owned(),
            registry: registry.to_owned(),
            source,
        }),
    }
}

/// The config files to consider, from environment variables and a
/// file-exists check (the rule in the module docs).
fn config_paths_from(
    var: impl Fn(&str) -> Option<OsString>,
    is_file: impl Fn(&Path) -> bool,
) -> Vec<PathBuf> {
    let var = |name: &str| var(name).filter(|value| !value.is_empty());
    let home_config = var("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"));
    let mut podman = Vec::new();
    if let Some(file) = var("REGISTRY_AUTH_FILE") {
        podman.push(PathBuf::from(file));
    }
    if let Some(runtime) = var("XDG_RUNTIME_DIR") {
        podman.push(PathBuf::from(runtime).join("containers/auth.json"));
    }
    let mut paths = Vec::new();
    match var("DOCKER_CONFIG") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            paths.push(if is_file(&dir) {
                dir
            } else {
                dir.join("config.json")
            });
            // go-containerregistry only falls back to Podman's files when
            // no docker config exists at all; an existing home config that
            // DOCKER_CONFIG hides still counts as existing.
            if !home_config.as_deref().is_some_and(&is_file) {
                paths.extend(podman);
            }
        }
        None => {
            paths.extend(home_config);
            paths.push(PathBuf::from(KANIKO_CONFIG_PATH));
            paths.extend(podman);
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn paths(env: &[(&str, &str)], files: &[&str]) -> Vec<String> {
        let env: HashMap<String, OsString> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        let files: HashSet<PathBuf> = files.iter().map(PathBuf::from).collect();
        config_paths_from(|name| env.get(name).cloned(), |path| files.contains(path))
            .into_iter()
            .map(|path| path.display().to_string())
            .collect()
    }

    #[test]
    fn docker_config_unset_reads_home_then_kaniko_then_podman() {
        let got = paths(
            &[
                ("HOME", "/root"),
                ("REGISTRY_AUTH_FILE", "/auth.json"),
                ("XDG_RUNTIME_DIR", "/run/user/0"),
            ],
            &[],
        );
        assert_eq!(
            got,
            [
                "/root/.docker/config.json",
                KANIKO_CONFIG_PATH,
                "/auth.json",
                "/run/user/0/containers/auth.json"
            ]
        );
        assert_eq!(paths(&[], &[]), [KANIKO_CONFIG_PATH]);
        // Empty variables count as unset.
        assert_eq!(
            paths(&[("DOCKER_CONFIG", ""), ("HOME", "")], &[]),
            [KANIKO_CONFIG_PATH]
        );
    }

    #[test]
    fn docker_config_set_hides_home() {
        // Kaniko's image: DOCKER_CONFIG=/kaniko/.docker/.
        let got = paths(
            &[
                ("HOME", "/root"),
                ("DOCKER_CONFIG", "/kaniko/.docker/"),
                ("REGISTRY_AUTH_FILE", "/auth.json"),
            ],
            &[],
        );
        assert_eq!(got, [KANIKO_CONFIG_PATH, "/auth.json"]);
        // With a home config present, go-containerregistry loads only
        // $DOCKER_CONFIG/config.json; if it is missing the result is
        // anonymous, and neither home nor Podman's file is read.
        let got = paths(
            &[
                ("HOME", "/root"),
                ("DOCKER_CONFIG", "/cfg"),
                ("REGISTRY_AUTH_FILE", "/auth.json"),
            ],
            &["/root/.docker/config.json"],
        );
        assert_eq!(got, ["/cfg/config.json"]);
    }

    #[test]
    fn docker_config_may_name_a_file() {
        let got = paths(
            &[("DOCKER_CONFIG", "/secret/cfg.json")],
            &["/secret/cfg.json"],
        );
        assert_eq!(got, ["/secret/cfg.json"]);
    }

    #[test]
    fn credential_debug_hides_secrets() {
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            Credential::Basic {
                username: "bob".into(),
                password: "hunter2".into()
            },
            Credential::IdentityToken {
                username: "bob".into(),
                token: "refresh-xyz".into()
            },
            Credential::RegistryToken("bearer-xyz".into()),
            Credential::Anonymous,
        );
        assert!(shown.contains("bob") && shown.contains("Basic"), "{shown}");
        for secret in ["hunter2", "refresh-xyz", "bearer-xyz"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn sources_display_where_and_what_was_looked_at() {
        let auths = CredentialSource {
            registry: "127.0.0.1:5000".into(),
            kind: SourceKind::Auths {
                config: "/root/.docker/config.json".into(),
                key: "127.0.0.1:5000".into(),
            },
        };
        assert_eq!(
            auths.to_string(),
            r#"/root/.docker/config.json (auths "127.0.0.1:5000")"#
        );
        let helper = CredentialSource {
            registry: "1.dkr.ecr.us-east-1.amazonaws.com".into(),
            kind: SourceKind::Helper {
                origin: HelperOrigin {
                    binary: "docker-credential-ecr-login".into(),
                    via: HelperVia::CredHelpers,
                    config: KANIKO_CONFIG_PATH.into(),
                },
                found: true,
            },
        };
        assert_eq!(
            helper.to_string(),
            "credential helper docker-credential-ecr-login (credHelpers in /kaniko/.docker/config.json)"
        );
        let nothing = CredentialSource {
            registry: "ghcr.io".into(),
            kind: SourceKind::Nothing {
                looked: vec![
                    Looked::Missing("/a/config.json".into()),
                    Looked::NoEntry("/b/config.json".into()),
                ],
            },
        };
        assert_eq!(
            nothing.to_string(),
            "no credentials found for \"ghcr.io\" (looked in: /a/config.json (no such file), \
             /b/config.json (no auths entry, credHelpers or credsStore for it))"
        );
    }
}

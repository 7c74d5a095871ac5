//! One Docker `config.json` (or Podman `auth.json`): its `auths`,
//! `credHelpers` and `credsStore`, and how a registry host is matched
//! against their keys.
//!
//! The file is parsed into a [`serde_json::Value`] first and the fields are
//! picked out by hand: serde's typed errors quote the offending value
//! (`invalid type: string "..."`), and the offending value may be a secret.
//! Field names match case-insensitively, an exact match first, as Go's
//! `encoding/json` (which the docker CLI uses) does.

use super::Credential;
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The `auths` key Docker Hub credentials are stored under, for
/// historical reasons (docker CLI `configfile.getAuthConfigKey`,
/// go-containerregistry `authn.DefaultAuthKey`).
pub(super) const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The host names that mean Docker Hub in references.
const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// Strips an optional scheme and any path from a registry address:
/// `https://index.docker.io/v1/` → `index.docker.io`, `http://host:5000/` →
/// `host:5000`, `ghcr.io` → `ghcr.io` (docker CLI
/// `credentials.ConvertToHostname`). User info (`user@host`) is dropped.
pub(super) fn strip_to_host(address: &str) -> &str {
    let address = address.trim();
    let rest = match address.find("://") {
        Some(i) => &address[i + 3..],
        None => address,
    };
    let host = rest.split('/').next().unwrap_or_default();
    host.rsplit_once('@').map_or(host, |(_, host)| host)
}

/// The host an address names, lowercased, with Docker Hub's aliases folded
/// into `index.docker.io`; two keys name the same registry when these agree.
pub(super) fn normalized_host(address: &str) -> String {
    let host = strip_to_host(address).to_ascii_lowercase();
    if DOCKER_HUB_HOSTS.contains(&host.as_str()) {
        DOCKER_HUB_HOSTS[1].to_owned()
    } else {
        host
    }
}

/// The key the docker CLI looks a registry up by, and the server URL a
/// credential helper is asked about: `https://index.docker.io/v1/` for
/// Docker Hub, the host (with port) as written for everything else.
pub(super) fn lookup_key(registry: &str) -> String {
    let host = strip_to_host(registry);
    if DOCKER_HUB_HOSTS.contains(&host.to_ascii_lowercase().as_str()) {
        DOCKER_HUB_KEY.to_owned()
    } else {
        host.to_owned()
    }
}

/// What is wrong with the shape of a config file as a whole. Names fields
/// and keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeProblem(String);

/// What is wrong with one `auths` entry. Never holds any part of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    /// The entry is not a JSON object.
    #[error("the entry is not a JSON object")]
    NotAnObject,
    /// A field that must be a string is not.
    #[error("field `{0}` is not a string")]
    NotAString(&'static str),
    /// `auth` is not valid base64.
    #[error("field `auth` is not valid base64")]
    AuthNotBase64,
    /// `auth` decodes to bytes that are not UTF-8.
    #[error("field `auth` does not decode to UTF-8 text")]
    AuthNotUtf8,
    /// `auth` does not decode to `username:password`.
    #[error("field `auth` does not decode to `username:password` (no colon)")]
    AuthNoColon,
    /// `auth` decodes to an empty username.
    #[error("field `auth` decodes to an empty username")]
    AuthEmptyUsername,
}

/// Which config key selected a credential helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HelperVia {
    /// `credHelpers`, for this registry.
    CredHelpers,
    /// `credsStore`, the default for every registry.
    CredsStore,
}

impl fmt::Display for HelperVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HelperVia::CredHelpers => "credHelpers",
            HelperVia::CredsStore => "credsStore",
        })
    }
}

/// A parsed config file.
#[derive(Debug, Default)]
pub(super) struct ConfigFile {
    auths: BTreeMap<String, Value>,
    creds_store: String,
    cred_helpers: BTreeMap<String, String>,
}

/// Looks a field up the way Go's `encoding/json` does: the exact name,
/// else the first name equal to it ignoring ASCII case.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// A string field; JSON `null` and a missing field are empty, as in Go.
fn string_field<'a>(
    object: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, &'static str> {
    match field(object, name) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(name),
    }
}

impl ConfigFile {
    /// Parses the text of a config file. Empty (or all-whitespace) text is
    /// an empty config, as the docker CLI treats it.
    pub(super) fn parse(text: &[u8]) -> Result<Self, ParseError> {
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(ConfigFile::default());
        }
        let value: Value = serde_json::from_slice(text).map_err(ParseError::Json)?;
        let Value::Object(top) = value else {
            return Err(shape("the top level is not a JSON object"));
        };
        let mut config = ConfigFile::default();
        match field(&top, "auths") {
            None | Some(Value::Null) => {}
            Some(Value::Object(auths)) => {
                config.auths = auths.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            }
            Some(_) => return Err(shape("`auths` is not a JSON object")),
        }
        config.creds_store = string_field(&top, "credsStore")
            .map_err(|_| shape("`credsStore` is not a string"))?
            .to_owned();
        match field(&top, "credHelpers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(helpers)) => {
                for (host, helper) in helpers {
                    let Value::String(helper) = helper else {
                        return Err(shape(&format!(
                            "`credHelpers` entry {host:?} is not a string"
                        )));
                    };
                    config.cred_helpers.insert(host.clone(), helper.clone());
                }
            }
            Some(_) => return Err(shape("`credHelpers` is not a JSON object")),
        }
        Ok(config)
    }

    /// The credential helper for a registry, and which key chose it:
    /// its `credHelpers` entry if it has one, else `credsStore` (docker CLI
    /// `getConfiguredCredentialStore`). An empty `credHelpers` value is
    /// returned as is: it opts the registry out of `credsStore`.
    pub(super) fn helper_for(&self, key: &str, host: &str) -> Option<(&str, HelperVia)> {
        let helper = self.cred_helpers.get(key).or_else(|| {
            self.cred_helpers
                .iter()
                .find(|(k, _)| k.as_str() != key && normalized_host(k) == host)
                .map(|(_, helper)| helper)
        });
        match helper {
            Some(helper) => Some((helper, HelperVia::CredHelpers)),
            None if !self.creds_store.is_empty() => {
                Some((&self.creds_store, HelperVia::CredsStore))
            }
            None => None,
        }
    }

    /// The first `auths` entry for a registry that holds a credential: the
    /// entry under `key` exactly, then entries whose key names the same
    /// host (with or without scheme and path), in key order. Empty entries
    /// (`{}`, as `docker login` writes next to a `credsStore`) are skipped.
    pub(super) fn auth_for(
        &self,
        key: &str,
        host: &str,
    ) -> Result<Option<(&str, Credential)>, (&str, EntryProblem)> {
        let exact = self.auths.get_key_value(key);
        let same_host = self
            .auths
            .iter()
            .filter(|(k, _)| k.as_str() != key && normalized_host(k) == host);
        for (entry_key, entry) in exact.into_iter().chain(same_host) {
            match decode_entry(entry) {
                Ok(Some(credential)) => return Ok(Some((entry_key, credential))),
                Ok(None) => {}
                Err(problem) => return Err((entry_key, problem)),
            }
        }
        Ok(None)
    }
}

fn shape(what: &str) -> ParseError {
    ParseError::Shape(ShapeProblem(what.to_owned()))
}

/// Why a config file could not be parsed.
#[derive(Debug)]
pub(super) enum ParseError {
    /// Not JSON. serde_json's syntax errors name a position, never content.
    Json(serde_json::Error),
    /// JSON, but not shaped like a config file.
    Shape(ShapeProblem),
}

/// The base64 the docker CLI accepts in `auth`: standard alphabet, padding
/// required, non-zero trailing bits tolerated (Go's `base64.StdEncoding`).
const AUTH_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// Turns one `auths` entry into a credential (`None` when it holds none).
///
/// Within an entry: `registrytoken` wins, then `identitytoken`, then the
/// username and password, where `auth` (base64 `user:password`, split at
/// the first colon) overrides the `username` and `password` fields, as the
/// docker CLI's `LoadFromReader` does.
pub(super) fn decode_entry(entry: &Value) -> Result<Option<Credential>, EntryProblem> {
    let Value::Object(entry) = entry else {
        return if entry.is_null() {
            Ok(None)
        } else {
            Err(EntryProblem::NotAnObject)
        };
    };
    let text = |name| string_field(entry, name).map_err(EntryProblem::NotAString);
    let auth = text("auth")?;
    let (mut username, mut password) = (text("username")?.to_owned(), text("password")?.to_owned());
    if !auth.is_empty() {
        // Go's decoder skips newlines; so do we.
        let cleaned: String = auth.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        let bytes = AUTH_BASE64
            .decode(cleaned.as_bytes())
            .map_err(|_| EntryProblem::AuthNotBase64)?;
        let decoded = String::from_utf8(bytes).map_err(|_| EntryProblem::AuthNotUtf8)?;
        let (user, pass) = decoded.split_once(':').ok_or(EntryProblem::AuthNoColon)?;
        if user.is_empty() {
            return Err(EntryProblem::AuthEmptyUsername);
        }
        username = user.to_owned();
        password = pass.trim_matches('\0').to_owned();
    }
    let registry_token = text("registrytoken")?;
    let identity_token = text("identitytoken")?;
    Ok(if !registry_token.is_empty() {
        Some(Credential::RegistryToken(registry_token.to_owned()))
    } else if !identity_token.is_empty() {
        Some(Credential::IdentityToken {
            username,
            token: identity_token.to_owned(),
        })
    } else if !username.is_empty() || !password.is_empty() {
        Some(Credential::Basic { username, password })
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn basic(user: &str, pass: &str) -> Credential {
        Credential::Basic {
            username: user.into(),
            password: pass.into(),
        }
    }

    fn entry(json: &str) -> Result<Option<Credential>, EntryProblem> {
        decode_entry(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn hosts_are_stripped_of_scheme_and_path() {
        assert_eq!(
            strip_to_host("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(strip_to_host("http://host:5000/"), "host:5000");
        assert_eq!(
            strip_to_host("registry.example.com"),
            "registry.example.com"
        );
        assert_eq!(strip_to_host("quay.io/myorg/app"), "quay.io");
        assert_eq!(strip_to_host("https://user@host:443/x"), "host:443");
        assert_eq!(
            normalized_host("HTTPS://Registry-1.Docker.IO/"),
            "index.docker.io"
        );
        assert_eq!(normalized_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn docker_hub_aliases_use_the_historical_key() {
        for hub in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "Docker.IO",
        ] {
            assert_eq!(lookup_key(hub), DOCKER_HUB_KEY, "{hub}");
        }
        assert_eq!(lookup_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(lookup_key("ghcr.io"), "ghcr.io");
    }

    #[test]
    fn auth_field_splits_at_the_first_colon() {
        let auth = STANDARD.encode("bob:pa:ss:word");
        let json = format!(r#"{{"auth":"{auth}"}}"#);
        assert_eq!(entry(&json).unwrap(), Some(basic("bob", "pa:ss:word")));
    }

    #[test]
    fn auth_field_overrides_username_and_password() {
        let auth = STANDARD.encode("alice:fromauth");
        let json = format!(r#"{{"auth":"{auth}","username":"x","password":"y"}}"#);
        assert_eq!(entry(&json).unwrap(), Some(basic("alice", "fromauth")));
    }

    #[test]
    fn username_and_password_fields() {
        let got = entry(r#"{"username":"u","password":"p","email":"e@x"}"#).unwrap();
        assert_eq!(got, Some(basic("u", "p")));
        // Field names match case-insensitively, as Go's encoding/json does.
        let got = entry(r#"{"Username":"u","Password":"p"}"#).unwrap();
        assert_eq!(got, Some(basic("u", "p")));
    }

    #[test]
    fn tokens_take_precedence_within_an_entry() {
        let auth = STANDARD.encode("u:p");
        let json = format!(r#"{{"auth":"{auth}","identitytoken":"idt"}}"#);
        assert_eq!(
            entry(&json).unwrap(),
            Some(Credential::IdentityToken {
                username: "u".into(),
                token: "idt".into()
            })
        );
        let json = format!(r#"{{"auth":"{auth}","identitytoken":"idt","registrytoken":"rt"}}"#);
        assert_eq!(
            entry(&json).unwrap(),
            Some(Credential::RegistryToken("rt".into()))
        );
    }

    #[test]
    fn empty_entries_hold_no_credential() {
        assert_eq!(entry("{}").unwrap(), None);
        assert_eq!(entry(r#"{"auth":"","email":"x"}"#).unwrap(), None);
        assert_eq!(entry("null").unwrap(), None);
    }

    #[test]
    fn malformed_auth_is_a_typed_problem() {
        assert_eq!(entry(r#"{"auth":"%%%"}"#), Err(EntryProblem::AuthNotBase64));
        // Missing padding is rejected, as Go's StdEncoding rejects it.
        let unpadded = STANDARD.encode("u:pw").trim_end_matches('=').to_owned();
        let json = format!(r#"{{"auth":"{unpadded}"}}"#);
        assert_eq!(entry(&json), Err(EntryProblem::AuthNotBase64));
        let json = format!(r#"{{"auth":"{}"}}"#, STANDARD.encode("nocolon"));
        assert_eq!(entry(&json), Err(EntryProblem::AuthNoColon));
        let json = format!(r#"{{"auth":"{}"}}"#, STANDARD.encode(":pw"));
        assert_eq!(entry(&json), Err(EntryProblem::AuthEmptyUsername));
        let json = format!(r#"{{"auth":"{}"}}"#, STANDARD.encode([b'u', b':', 0xff]));
        assert_eq!(entry(&json), Err(EntryProblem::AuthNotUtf8));
        assert_eq!(
            entry(r#"{"password":7}"#),
            Err(EntryProblem::NotAString("password"))
        );
        assert_eq!(entry(r#""str""#), Err(EntryProblem::NotAnObject));
    }

    #[test]
    fn auth_with_newlines_and_nul_padding_decodes() {
        let encoded = STANDARD.encode("u:pw\0\0");
        let (a, b) = encoded.split_at(4);
        let json = format!(r#"{{"auth":"{a}\n{b}"}}"#);
        assert_eq!(entry(&json).unwrap(), Some(basic("u", "pw")));
    }

    #[test]
    fn parse_rejects_wrong_shapes_without_quoting_values() {
        for text in [
            r#"[]"#,
            r#"{"auths":"secret-value"}"#,
            r#"{"credsStore":["secret-value"]}"#,
            r#"{"credHelpers":{"h":7}}"#,
            r#"{"credHelpers":"secret-value"}"#,
        ] {
            match ConfigFile::parse(text.as_bytes()) {
                Err(ParseError::Shape(problem)) => {
                    assert!(!problem.0.contains("secret-value"), "{problem}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            ConfigFile::parse(b"{\"auths\": {"),
            Err(ParseError::Json(_))
        ));
        assert!(ConfigFile::parse(b"  \n").is_ok());
    }

    #[test]
    fn helper_precedence_and_opt_out() {
        let config = ConfigFile::parse(
            br#"{"credsStore":"store","credHelpers":{"ghcr.io":"gh","opt.out":"","https://with.scheme/":"s"}}"#,
        )
        .unwrap();
        assert_eq!(
            config.helper_for("ghcr.io", "ghcr.io"),
            Some(("gh", HelperVia::CredHelpers))
        );
        assert_eq!(
            config.helper_for("other.io", "other.io"),
            Some(("store", HelperVia::CredsStore))
        );
        assert_eq!(
            config.helper_for("opt.out", "opt.out"),
            Some(("", HelperVia::CredHelpers))
        );
        assert_eq!(
            config.helper_for("with.scheme", "with.scheme"),
            Some(("s", HelperVia::CredHelpers))
        );
        let none = ConfigFile::parse(br#"{"auths":{}}"#).unwrap();
        assert_eq!(none.helper_for("ghcr.io", "ghcr.io"), None);
    }

    #[test]
    fn auths_match_exact_key_first_then_same_host() {
        let a = STANDARD.encode("exact:1");
        let b = STANDARD.encode("scheme:2");
        let text = format!(
            r#"{{"auths":{{"http://host:5000/":{{"auth":"{b}"}},"host:5000":{{"auth":"{a}"}},"empty.io":{{}},"https://empty.io":{{"auth":"{b}"}}}}}}"#
        );
        let config = ConfigFile::parse(text.as_bytes()).unwrap();
        let (key, credential) = config.auth_for("host:5000", "host:5000").unwrap().unwrap();
        assert_eq!((key, credential), ("host:5000", basic("exact", "1")));
        // An empty exact entry falls through to the same host with a scheme.
        let (key, credential) = config.auth_for("empty.io", "empty.io").unwrap().unwrap();
        assert_eq!(
            (key, credential),
            ("https://empty.io", basic("scheme", "2"))
        );
        assert!(config.auth_for("nope.io", "nope.io").unwrap().is_none());
    }
}

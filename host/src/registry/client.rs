//! One oci-client `Client` per registry host and settings, credentials
//! turned into oci-client's `RegistryAuth`, and the OAuth2 refresh-token
//! grant for identity tokens (which oci-client does not implement).

use super::auth::Credential;
use super::error::{Target, is_unknown_authority};
use super::options::{HostSettings, Operation};
use super::{Registry, RegistryError};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use std::sync::Arc;
use std::time::Duration;

const USER_AGENT: &str = concat!("kiln/", env!("CARGO_PKG_VERSION"));

/// The clients for one host with one set of settings.
pub(crate) struct HostClient {
    /// The registry protocol client.
    pub(crate) oci: Client,
    /// A plain HTTP client with the same TLS settings, for the token
    /// endpoint.
    http: reqwest::Client,
    /// `http` or `https`.
    scheme: &'static str,
}

/// A client, the credentials to use with it, and what to name in errors.
pub(crate) struct Session {
    /// The host's clients.
    pub(crate) client: Arc<HostClient>,
    /// The credentials in oci-client's form.
    pub(crate) auth: RegistryAuth,
    /// Host, repository and credential source for errors.
    pub(crate) target: Target,
}

/// Splits a PEM file into its certificates.
fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(BEGIN) {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let end = start + end + END.len();
        out.push(format!("{}\n", &rest[start..end]).into_bytes());
        rest = &rest[end..];
    }
    out
}

async fn build(host: &str, settings: &HostSettings) -> Result<HostClient, RegistryError> {
    if settings.client_cert.is_some() {
        return Err(RegistryError::ClientCertificateUnsupported {
            host: host.to_owned(),
        });
    }
    let mut oci_certs = Vec::new();
    let mut http_certs = Vec::new();
    for path in &settings.ca_certificates {
        let cert_err =
            |cause: Box<dyn std::error::Error + Send + Sync>| RegistryError::Certificate {
                host: host.to_owned(),
                path: path.clone(),
                cause,
            };
        let pem = tokio::fs::read(path)
            .await
            .map_err(|e| cert_err(Box::new(e)))?;
        let certs = pem_certificates(&pem);
        if certs.is_empty() {
            return Err(cert_err("no PEM certificate in the file".into()));
        }
        for c in certs {
            http_certs.push(reqwest::Certificate::from_pem(&c).map_err(|e| cert_err(Box::new(e)))?);
            oci_certs.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: c,
            });
        }
    }
    let config = ClientConfig {
        protocol: if settings.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        accept_invalid_certificates: settings.skip_tls_verify,
        // A single streamed PUT per blob: the blob streams from the store
        // with its Content-Length, never held in memory.
        use_monolithic_push: true,
        extra_root_certificates: oci_certs,
        // kiln chooses index entries itself (see `platform`).
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(Duration::from_secs(300)),
        user_agent: USER_AGENT,
        ..Default::default()
    };
    let client_err = |cause: Box<dyn std::error::Error + Send + Sync>| RegistryError::Client {
        host: host.to_owned(),
        cause,
    };
    // `Client::new` would fall back to a default client on error; kiln
    // wants the error.
    let oci = Client::try_from(config).map_err(|e| client_err(Box::new(e)))?;
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(settings.skip_tls_verify)
        .tls_certs_merge(http_certs)
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| client_err(Box::new(e)))?;
    Ok(HostClient {
        oci,
        http,
        scheme: if settings.plain_http { "http" } else { "https" },
    })
}

impl Registry {
    /// The cached client for `host` with the settings `op` gives it.
    async fn host_client(
        &self,
        host: &str,
        op: Operation,
    ) -> Result<Arc<HostClient>, RegistryError> {
        let settings = self.options.settings_for(host, op);
        let key = (host.to_owned(), settings);
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let client = Arc::new(build(host, &key.1).await?);
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// A client for `reference`'s registry, authenticated for `op` on its
    /// repository (and, for pushes, for pulling from `mount_from`
    /// repositories where the token service allows it).
    pub(crate) async fn session(
        &self,
        reference: &Reference,
        op: Operation,
        mount_from: &[String],
    ) -> Result<Session, RegistryError> {
        let host = reference.resolve_registry().to_owned();
        let client = self.host_client(&host, op).await?;
        // Reads files and may run a credential helper.
        let (credential, source) = super::blocking(|| self.keychain.resolve(reference.registry()))
            .map_err(|cause| RegistryError::Credentials {
                host: host.clone(),
                cause: Box::new(cause),
            })?;
        let target = Target {
            host: host.clone(),
            repository: reference.repository().to_owned(),
            credential_source: source.to_string(),
        };
        let policy = self.policy(op);
        let auth = match credential {
            Credential::Anonymous => RegistryAuth::Anonymous,
            Credential::Basic { username, password } => RegistryAuth::Basic(username, password),
            Credential::RegistryToken(token) => RegistryAuth::Bearer(token),
            Credential::IdentityToken { token, .. } => {
                let mut scopes = vec![scope(reference.repository(), op)];
                scopes.extend(mount_from.iter().map(|r| scope(r, Operation::Pull)));
                let access = policy
                    .run("exchanging the identity token", || {
                        exchange_identity_token(&client, &host, &token, &scopes, &target)
                    })
                    .await?;
                RegistryAuth::Bearer(access)
            }
        };
        let ops: &[RegistryOperation] = match op {
            Operation::Pull => &[RegistryOperation::Pull],
            Operation::Push => &[RegistryOperation::Pull, RegistryOperation::Push],
        };
        for o in ops {
            policy
                .run("authenticating", || async {
                    client
                        .oci
                        .auth(reference, &auth, *o)
                        .await
                        .map(|_| ())
                        .map_err(|e| target.error("authenticating".to_owned(), e))
                })
                .await?;
        }
        Ok(Session {
            client,
            auth,
            target,
        })
    }
}

/// A token scope for `repository`.
fn scope(repository: &str, op: Operation) -> String {
    match op {
        Operation::Pull => format!("repository:{repository}:pull"),
        Operation::Push => format!("repository:{repository}:pull,push"),
    }
}

/// `realm` and `service` of a `WWW-Authenticate: Bearer ...` challenge.
pub(crate) fn parse_bearer_challenge(header: &str) -> Option<(String, Option<String>)> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut s = params.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_owned(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        match key.as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some((realm?, service))
}

/// `application/x-www-form-urlencoded` encoding.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The OAuth2 refresh-token grant: finds the token endpoint from the
/// registry's challenge and trades the identity token for an access token
/// with the given scopes.
async fn exchange_identity_token(
    client: &HostClient,
    host: &str,
    refresh_token: &str,
    scopes: &[String],
    target: &Target,
) -> Result<String, RegistryError> {
    let ping = format!("{}://{host}/v2/", client.scheme);
    let fail = |realm: &str,
                status: Option<u16>,
                retry_after: Option<Duration>,
                cause: Option<Box<dyn std::error::Error + Send + Sync>>| {
        RegistryError::TokenExchange {
            host: host.to_owned(),
            realm: realm.to_owned(),
            credential_source: target.credential_source.clone(),
            status,
            retry_after,
            cause,
        }
    };
    let resp = client.http.get(&ping).send().await.map_err(|e| {
        if is_unknown_authority(&e) {
            RegistryError::UnknownAuthority {
                host: host.to_owned(),
                cause: Box::new(e),
            }
        } else {
            fail(&ping, None, None, Some(Box::new(e)))
        }
    })?;
    let challenge = resp
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|h| h.to_str().ok())
        .and_then(parse_bearer_challenge);
    let Some((realm, service)) = challenge else {
        return Err(fail(
            &ping,
            Some(resp.status().as_u16()),
            None,
            Some("the registry did not answer with a Bearer challenge, so an identity token cannot be used".into()),
        ));
    };
    let scope = scopes.join(" ");
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", "kiln"),
        ("refresh_token", refresh_token),
        ("scope", scope.as_str()),
    ];
    if let Some(s) = &service {
        form.push(("service", s.as_str()));
    }
    let resp = client
        .http
        .post(&realm)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form_encode(&form))
        .send()
        .await
        .map_err(|e| fail(&realm, None, None, Some(Box::new(e))))?;
    let status = resp.status();
    if status.as_u16() == 401 || status.as_u16() == 403 {
        return Err(RegistryError::Auth {
            host: host.to_owned(),
            repository: target.repository.clone(),
            credential_source: target.credential_source.clone(),
            cause: format!("the token endpoint {realm} answered {status}").into(),
        });
    }
    if !status.is_success() {
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(fail(&realm, Some(status.as_u16()), retry_after, None));
    }
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        access_token: Option<String>,
        token: Option<String>,
    }
    let body: TokenResponse = resp
        .json()
        .await
        .map_err(|e| fail(&realm, None, None, Some(Box::new(e))))?;
    body.access_token.or(body.token).ok_or_else(|| {
        fail(
            &realm,
            Some(status.as_u16()),
            None,
            Some("the token endpoint's answer has no access_token".into()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_bearer_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some((
                "https://auth.docker.io/token".to_owned(),
                Some("registry.docker.io".to_owned())
            ))
        );
        assert_eq!(
            parse_bearer_challenge(r#"bearer realm="https://r/t""#),
            Some(("https://r/t".to_owned(), None))
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="Registry""#), None);
        assert_eq!(parse_bearer_challenge("Bearer service=x"), None);
    }

    #[test]
    fn forms_and_scopes() {
        assert_eq!(
            form_encode(&[
                ("scope", "repository:a/b:pull,push repository:c:pull"),
                ("t", "x=y&z")
            ]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush+repository%3Ac%3Apull&t=x%3Dy%26z"
        );
        assert_eq!(scope("a/b", Operation::Push), "repository:a/b:pull,push");
        assert_eq!(scope("a/b", Operation::Pull), "repository:a/b:pull");
    }

    #[test]
    fn pem_split() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";
        let certs = pem_certificates(pem);
        assert_eq!(certs.len(), 2);
        assert!(String::from_utf8_lossy(&certs[1]).contains("BBBB"));
        assert!(pem_certificates(b"nothing").is_empty());
    }
}

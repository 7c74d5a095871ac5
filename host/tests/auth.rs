//! Registry credentials end to end: real config files in temp dirs and real
//! `docker-credential-*` helper scripts, run from a helper `PATH` given to
//! the keychain (the process environment is never changed).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kiln::registry::auth::{AuthError, Credential, Keychain};
use std::error::Error;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The secrets used below; none may ever show up in an error or source.
const SECRETS: [&str; 6] = [
    "pa:ss-s3cret",
    "plain-s3cret",
    "identity-s3cret",
    "bearer-s3cret",
    "helper-s3cret",
    "refresh-s3cret",
];

fn write_config(dir: &Path, name: &str, json: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, json).unwrap();
    path
}

/// Writes an executable `docker-credential-<name>` shell script.
fn write_helper(dir: &Path, name: &str, body: &str) {
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An error's message with all its causes, and its Debug form.
fn shown(error: &AuthError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    format!("{text}\n{error:?}")
}

fn assert_no_secrets(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "secret {secret:?} leaked: {text}");
    }
}

fn basic(username: &str, password: &str) -> Credential {
    Credential::Basic {
        username: username.into(),
        password: password.into(),
    }
}

/// A config with every `auths` shape.
fn auths_config(dir: &Path) -> PathBuf {
    let auth = STANDARD.encode("alice:pa:ss-s3cret");
    let hub = STANDARD.encode("hubuser:plain-s3cret");
    write_config(
        dir,
        "config.json",
        &format!(
            r#"{{
  "auths": {{
    "https://index.docker.io/v1/": {{"auth": "{hub}"}},
    "127.0.0.1:5000": {{"auth": "{auth}"}},
    "registry.example.com": {{"username": "bob", "password": "plain-s3cret"}},
    "http://insecure.local:5000/": {{"username": "carol", "password": "plain-s3cret"}},
    "identity.example.com": {{"auth": "{auth}", "identitytoken": "identity-s3cret"}},
    "token.example.com": {{"registrytoken": "bearer-s3cret"}},
    "empty.example.com": {{}}
  }}
}}"#
        ),
    )
}

#[test]
fn auths_entries_of_every_shape() {
    let dir = tempfile::tempdir().unwrap();
    let config = auths_config(dir.path());
    let keychain = Keychain::with_config_paths(vec![config.clone()]);

    let (credential, source) = keychain.resolve("127.0.0.1:5000").unwrap();
    assert_eq!(credential, basic("alice", "pa:ss-s3cret"));
    assert_eq!(
        source.to_string(),
        format!(r#"{} (auths "127.0.0.1:5000")"#, config.display())
    );
    assert_eq!(source.config_file(), Some(config.as_path()));

    let (credential, _) = keychain.resolve("registry.example.com").unwrap();
    assert_eq!(credential, basic("bob", "plain-s3cret"));

    // A key with scheme and trailing slash matches the bare host.
    let (credential, source) = keychain.resolve("insecure.local:5000").unwrap();
    assert_eq!(credential, basic("carol", "plain-s3cret"));
    assert!(
        source
            .to_string()
            .contains(r#"(auths "http://insecure.local:5000/")"#)
    );

    let (credential, _) = keychain.resolve("identity.example.com").unwrap();
    assert_eq!(
        credential,
        Credential::IdentityToken {
            username: "alice".into(),
            token: "identity-s3cret".into()
        }
    );
    let (credential, _) = keychain.resolve("token.example.com").unwrap();
    assert_eq!(
        credential,
        Credential::RegistryToken("bearer-s3cret".into())
    );

    for hub in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
        let (credential, source) = keychain.resolve(hub).unwrap();
        assert_eq!(credential, basic("hubuser", "plain-s3cret"), "{hub}");
        assert!(source.to_string().contains("https://index.docker.io/v1/"));
        assert_no_secrets(&format!("{source} {source:?} {credential:?}"));
    }

    // An empty entry and an unknown host are anonymous, and say where
    // kiln looked.
    for host in ["empty.example.com", "ghcr.io"] {
        let (credential, source) = keychain.resolve(host).unwrap();
        assert!(credential.is_anonymous(), "{host}");
        let text = source.to_string();
        assert!(text.starts_with("no credentials found"), "{text}");
        assert!(text.contains(&config.display().to_string()), "{text}");
    }
}

#[test]
fn docker_hub_key_written_as_a_host_also_matches() {
    let dir = tempfile::tempdir().unwrap();
    let auth = STANDARD.encode("hubuser:plain-s3cret");
    let config = write_config(
        dir.path(),
        "config.json",
        &format!(r#"{{"auths":{{"docker.io":{{"auth":"{auth}"}}}}}}"#),
    );
    let keychain = Keychain::with_config_paths(vec![config]);
    let (credential, _) = keychain.resolve("registry-1.docker.io").unwrap();
    assert_eq!(credential, basic("hubuser", "plain-s3cret"));
}

#[test]
fn the_first_existing_file_is_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing/config.json");
    let auth = STANDARD.encode("first:plain-s3cret");
    let first = write_config(
        dir.path(),
        "first.json",
        &format!(r#"{{"auths":{{"a.example.com":{{"auth":"{auth}"}}}}}}"#),
    );
    let auth = STANDARD.encode("second:plain-s3cret");
    let second = write_config(
        dir.path(),
        "second.json",
        &format!(r#"{{"auths":{{"b.example.com":{{"auth":"{auth}"}}}}}}"#),
    );
    let keychain = Keychain::with_config_paths(vec![missing.clone(), first.clone(), second]);

    let (credential, _) = keychain.resolve("a.example.com").unwrap();
    assert_eq!(credential, basic("first", "plain-s3cret"));

    // The second file is not merged in: Kaniko reads one config.
    let (credential, source) = keychain.resolve("b.example.com").unwrap();
    assert!(credential.is_anonymous());
    assert_eq!(
        source.to_string(),
        format!(
            "no credentials found for \"b.example.com\" (looked in: {} (no such file), {} \
             (no auths entry, credHelpers or credsStore for it))",
            missing.display(),
            first.display()
        )
    );

    // No file at all: anonymous, listing every path.
    let keychain = Keychain::with_config_paths(vec![missing.clone()]);
    let (credential, source) = keychain.resolve("b.example.com").unwrap();
    assert!(credential.is_anonymous());
    assert!(source.to_string().contains(&missing.display().to_string()));
}

#[test]
fn malformed_configs_name_file_and_registry_but_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    // `!` is not base64; the rest is a secret that must not be echoed.
    let config = write_config(
        dir.path(),
        "config.json",
        r#"{"auths":{"127.0.0.1:5000":{"auth":"!pa:ss-s3cret"},"ok.example.com":{"username":"u","password":"plain-s3cret"}}}"#,
    );
    let keychain = Keychain::with_config_paths(vec![config.clone()]);
    let error = keychain.resolve("127.0.0.1:5000").unwrap_err();
    assert!(
        matches!(error, AuthError::MalformedEntry { .. }),
        "{error:?}"
    );
    let text = shown(&error);
    assert!(text.contains(&config.display().to_string()), "{text}");
    assert!(text.contains("127.0.0.1:5000"), "{text}");
    assert!(text.contains("base64"), "{text}");
    assert_no_secrets(&text);
    // Other entries of the same file still work.
    let (credential, _) = keychain.resolve("ok.example.com").unwrap();
    assert_eq!(credential, basic("u", "plain-s3cret"));

    let broken = write_config(
        dir.path(),
        "broken.json",
        r#"{"auths":{"x":{"password":"plain-s3cret"}"#,
    );
    let error = Keychain::with_config_paths(vec![broken.clone()])
        .resolve("x")
        .unwrap_err();
    assert!(matches!(error, AuthError::ParseConfig { .. }), "{error:?}");
    let text = shown(&error);
    assert!(text.contains(&broken.display().to_string()), "{text}");
    assert_no_secrets(&text);

    let wrong_type = write_config(
        dir.path(),
        "wrong.json",
        r#"{"auths":{"x":{"password":["plain-s3cret"]}}}"#,
    );
    let error = Keychain::with_config_paths(vec![wrong_type])
        .resolve("x")
        .unwrap_err();
    assert!(shown(&error).contains("`password` is not a string"));
    assert_no_secrets(&shown(&error));
}

/// A helper that knows two servers and reports the rest as not found;
/// it checks it was called as `get` and reads the server URL from stdin.
const KNOWING_HELPER: &str = r#"
[ "$1" = get ] || { echo "unexpected action $1" >&2; exit 2; }
url=$(cat)
case "$url" in
  127.0.0.1:5000) printf '{"ServerURL":"%s","Username":"helperuser","Secret":"helper-s3cret"}' "$url" ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-s3cret"}' "$url" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#;

#[test]
fn helpers_answer_found_token_and_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    write_helper(&bin, "kilntest", KNOWING_HELPER);
    let config = write_config(
        dir.path(),
        "config.json",
        r#"{"credHelpers":{"127.0.0.1:5000":"kilntest"},"credsStore":"kilntest"}"#,
    );
    let keychain = Keychain::with_config_paths(vec![config.clone()]).with_helper_path(&bin);

    let (credential, source) = keychain.resolve("127.0.0.1:5000").unwrap();
    assert_eq!(credential, basic("helperuser", "helper-s3cret"));
    assert_eq!(
        source.to_string(),
        format!(
            "credential helper docker-credential-kilntest (credHelpers in {})",
            config.display()
        )
    );
    assert_eq!(source.helper(), Some("docker-credential-kilntest"));

    // Docker Hub: the helper is asked about https://index.docker.io/v1/,
    // and `<token>` makes the secret an identity token.
    let (credential, source) = keychain.resolve("docker.io").unwrap();
    assert_eq!(
        credential,
        Credential::IdentityToken {
            username: String::new(),
            token: "refresh-s3cret".into()
        }
    );
    assert!(source.to_string().contains("credsStore in"));

    // "credentials not found in native keychain" is anonymous, not an error.
    let (credential, source) = keychain.resolve("ghcr.io").unwrap();
    assert!(credential.is_anonymous());
    assert!(
        source
            .to_string()
            .ends_with("no credentials stored for \"ghcr.io\""),
        "{source}"
    );
    assert_no_secrets(&format!("{source:?}"));
}

#[test]
fn precedence_is_cred_helpers_then_creds_store_then_auths() {
    let dir = tempfile::tempdir().unwrap();
    write_helper(
        dir.path(),
        "perhost",
        r#"printf '{"Username":"perhost","Secret":"helper-s3cret"}'"#,
    );
    write_helper(
        dir.path(),
        "store",
        r#"printf '{"Username":"store","Secret":"helper-s3cret"}'"#,
    );
    let auth = STANDARD.encode("fromauths:plain-s3cret");
    let config = write_config(
        dir.path(),
        "config.json",
        &format!(
            r#"{{
  "auths": {{
    "a.example.com": {{"auth": "{auth}"}},
    "b.example.com": {{"auth": "{auth}"}},
    "c.example.com": {{"auth": "{auth}"}}
  }},
  "credHelpers": {{"a.example.com": "perhost", "c.example.com": ""}},
  "credsStore": "store"
}}"#
        ),
    );
    let keychain = Keychain::with_config_paths(vec![config]).with_helper_path(dir.path());
    let user = |host| match keychain.resolve(host).unwrap().0 {
        Credential::Basic { username, .. } => username,
        other => panic!("{host}: {other:?}"),
    };
    assert_eq!(user("a.example.com"), "perhost");
    // credsStore beats the auths entry of the same host.
    assert_eq!(user("b.example.com"), "store");
    // An empty credHelpers value opts the host out of credsStore.
    assert_eq!(user("c.example.com"), "fromauths");
    assert_eq!(user("elsewhere.example.com"), "store");
}

#[test]
fn failing_helpers_are_errors_naming_the_helper() {
    let dir = tempfile::tempdir().unwrap();
    write_helper(
        dir.path(),
        "fails",
        "cat >/dev/null; echo 'vault is sealed' >&2; exit 3",
    );
    // A broken helper that prints credentials and still fails.
    write_helper(
        dir.path(),
        "leaky",
        r#"printf '{"Username":"u","Secret":"helper-s3cret"}'; exit 1"#,
    );
    write_helper(dir.path(), "garbage", "echo 'helper-s3cret is not json'");
    let config = write_config(
        dir.path(),
        "config.json",
        r#"{"credHelpers":{"fails.io":"fails","leaky.io":"leaky","garbage.io":"garbage","nosuch.io":"nosuch","bad.io":"../evil"}}"#,
    );
    let keychain = Keychain::with_config_paths(vec![config.clone()]).with_helper_path(dir.path());

    let error = keychain.resolve("fails.io").unwrap_err();
    assert!(matches!(error, AuthError::HelperFailed { .. }), "{error:?}");
    let text = shown(&error);
    for expected in [
        "docker-credential-fails",
        "fails.io",
        "exit status: 3",
        "vault is sealed",
        &config.display().to_string(),
    ] {
        assert!(text.contains(expected), "{expected:?} missing: {text}");
    }

    let error = keychain.resolve("leaky.io").unwrap_err();
    assert!(matches!(error, AuthError::HelperFailed { .. }), "{error:?}");
    assert_no_secrets(&shown(&error));

    let error = keychain.resolve("garbage.io").unwrap_err();
    assert!(matches!(error, AuthError::HelperOutput { .. }), "{error:?}");
    assert_no_secrets(&shown(&error));

    let error = keychain.resolve("nosuch.io").unwrap_err();
    assert!(
        matches!(error, AuthError::HelperNotFound { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("docker-credential-nosuch not found on PATH"),
        "{text}"
    );
    assert!(text.contains(&dir.path().display().to_string()), "{text}");

    let error = keychain.resolve("bad.io").unwrap_err();
    assert!(
        matches!(error, AuthError::InvalidHelperName { .. }),
        "{error:?}"
    );
}

#[test]
fn a_hanging_helper_is_killed_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    write_helper(dir.path(), "hangs", "sleep 60");
    let config = write_config(dir.path(), "config.json", r#"{"credsStore":"hangs"}"#);
    let keychain = Keychain::with_config_paths(vec![config])
        .with_helper_path(dir.path())
        .with_helper_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let error = keychain.resolve("slow.example.com").unwrap_err();
    assert!(
        matches!(error, AuthError::HelperTimedOut { .. }),
        "{error:?}"
    );
    // Killed with its process group: no wait for `sleep 60`.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let text = error.to_string();
    assert!(text.contains("docker-credential-hangs"), "{text}");
    assert!(text.contains("slow.example.com"), "{text}");
}

#[test]
fn a_helper_whose_child_keeps_the_pipes_open_times_out() {
    let dir = tempfile::tempdir().unwrap();
    // The helper exits at once, but a background child holds stdout.
    write_helper(dir.path(), "detached", "sleep 60 &\nexit 0");
    let config = write_config(dir.path(), "config.json", r#"{"credsStore":"detached"}"#);
    let keychain = Keychain::with_config_paths(vec![config])
        .with_helper_path(dir.path())
        .with_helper_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let error = keychain.resolve("slow.example.com").unwrap_err();
    assert!(
        matches!(error, AuthError::HelperTimedOut { .. }),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF
//! distribution registry v2.8) on `127.0.0.1:<free port>`, storing blobs in a
//! temporary directory, with deletes enabled.
//!
//! [`Registry::start_plain`] serves plain HTTP without auth;
//! [`Registry::start_tls_auth`] serves HTTPS with a certificate signed by a
//! throw-away CA (made with the `openssl` CLI) and htpasswd basic auth (made
//! with `htpasswd -Bbn`).
//!
//! The registry runs under a small `sh` watchdog that reads the harness's
//! end of a pipe: when the [`Registry`] is dropped (also while unwinding
//! from a panic) or the test process dies in any way, the pipe closes and
//! the watchdog kills the registry. A registry kept in a `static` therefore
//! does not outlive the test binary either.

use std::collections::HashSet;
use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::tools::{Access, mkdir, run, write};

/// How long a registry may take to listen and answer `GET /v2/`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How many ports are tried when another process takes the chosen one.
const PORT_ATTEMPTS: usize = 10;

/// A running registry; killed when dropped.
pub struct Registry {
    // Declared first so it is dropped (the registry killed) before the
    // directory it stores into is removed.
    _watchdog: Watchdog,
    port: u16,
    tls: Option<Tls>,
    credentials: Option<(String, String)>,
    dir: tempfile::TempDir,
}

/// Certificates of a TLS registry.
struct Tls {
    ca_cert: PathBuf,
    cert_dir: PathBuf,
}

impl fmt::Debug for Registry {
    // The password stays out of debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("host", &self.host())
            .field("tls", &self.tls.is_some())
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts a registry serving plain HTTP without authentication.
    pub fn start_plain() -> Self {
        Self::start(None, None)
    }

    /// Starts a registry serving HTTPS (certificate for `127.0.0.1` and
    /// `localhost`, signed by a fresh CA: see [`Registry::ca_cert_path`])
    /// that requires basic auth as `user`/`password`.
    pub fn start_tls_auth(user: &str, password: &str) -> Self {
        Self::start(Some(()), Some((user.to_owned(), password.to_owned())))
    }

    fn start(tls: Option<()>, credentials: Option<(String, String)>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kiln-registry-")
            .tempdir()
            .expect("creating the registry's temp dir");
        let tls = tls.map(|()| make_tls(dir.path()));
        let htpasswd = credentials
            .as_ref()
            .map(|(u, p)| make_htpasswd(dir.path(), u, p));
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let settings = Settings {
                dir: dir.path(),
                port,
                tls: tls.is_some(),
                htpasswd: htpasswd.as_deref(),
            };
            match launch(&settings) {
                Ok(process) => {
                    let registry = Self {
                        _watchdog: process,
                        port,
                        tls,
                        credentials,
                        dir,
                    };
                    registry.wait_until_ready();
                    return registry;
                }
                Err(log) => last_log = log,
            }
        }
        panic!(
            "docker-registry found no free port in {PORT_ATTEMPTS} attempts; last log:\n{last_log}"
        );
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port the registry listens on (on 127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True for a registry started with [`Registry::start_tls_auth`].
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `host()/repo_tag`, e.g. `127.0.0.1:41234/busybox:latest`: the form
    /// kiln's `--destination` and image references take.
    pub fn image_ref(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host())
    }

    /// `docker://host()/repo_tag`: the form skopeo takes.
    pub fn docker_ref(&self, repo_tag: &str) -> String {
        format!("docker://{}", self.image_ref(repo_tag))
    }

    /// `http://host()` or `https://host()`.
    pub fn base_url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// How skopeo reaches this registry: TLS verification with
    /// [`Registry::cert_dir`] and the credentials for a TLS registry, no
    /// verification (plain HTTP) and anonymous otherwise.
    pub fn access(&self) -> Access {
        Access {
            tls_verify: self.is_tls(),
            cert_dir: self.cert_dir().map(Path::to_path_buf),
            creds: self.credentials.clone(),
        }
    }

    /// PEM file of the CA that signed the server certificate (TLS only).
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_cert.as_path())
    }

    /// A directory holding only the CA certificate as `ca.crt`, the layout
    /// of skopeo's `--cert-dir` and Docker's `certs.d/<host>/` (TLS only).
    pub fn cert_dir(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.cert_dir.as_path())
    }

    /// The user and password the registry requires, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Writes a Docker `config.json` whose `auths` has this registry's
    /// credentials (base64 `user:password` in `auth`; empty `auths` for a
    /// registry without auth) and returns its directory, for
    /// `DOCKER_CONFIG`. The directory lives as long as the registry.
    pub fn docker_config_dir(&self) -> PathBuf {
        let dir = self.dir.path().join("docker-config");
        mkdir(&dir);
        let mut auths = serde_json::Map::new();
        if let Some((user, password)) = self.credentials() {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            auths.insert(self.host(), serde_json::json!({ "auth": auth }));
        }
        let config = serde_json::json!({ "auths": auths });
        write(&dir.join("config.json"), config.to_string());
        dir
    }

    /// The registry's own log so far (useful in assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `GET <base_url><path>` with the registry's CA and credentials, by
    /// `curl`. Returns the HTTP status and body; panics when curl cannot
    /// connect at all.
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        self.request("GET", path)
    }

    /// Sends `method` (e.g. `DELETE`, `HEAD`) to `<base_url><path>` like
    /// [`Registry::get`].
    pub fn request(&self, method: &str, path: &str) -> (u16, Vec<u8>) {
        self.request_with(method, path, &[])
    }

    /// Like [`Registry::request`] with extra request headers such as
    /// `"Accept: application/vnd.oci.image.index.v1+json"` (the registry
    /// answers 404 for an index whose media type the client does not
    /// accept).
    pub fn request_with(&self, method: &str, path: &str, headers: &[&str]) -> (u16, Vec<u8>) {
        self.try_request(method, path, headers)
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}", self.host()))
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
    ) -> Result<(u16, Vec<u8>), String> {
        let body = self.dir.path().join(format!("curl-body-{}", unique()));
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--max-time", "10", "-X", method, "-o"])
            .arg(&body)
            .args(["-w", "%{http_code}"]);
        if method == "HEAD" {
            curl.arg("-I");
        }
        for header in headers {
            curl.arg("-H").arg(header);
        }
        if let Some(ca) = self.ca_cert_path() {
            curl.arg("--cacert").arg(ca);
        }
        if let Some((user, password)) = self.credentials() {
            curl.arg("-u").arg(format!("{user}:{password}"));
        }
        curl.arg(format!("{}{path}", self.base_url()));
        let out = crate::tools::try_run(&mut curl)?;
        let status = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("curl printed no status: {e}"))?;
        let bytes = std::fs::read(&body).unwrap_or_default();
        let _ = std::fs::remove_file(&body);
        Ok((status, bytes))
    }

    /// Polls `GET /v2/` until it answers 200 (with the credentials, over
    /// verified TLS for a TLS registry).
    fn wait_until_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let answer = self.try_request("GET", "/v2/", &[]);
            if let Ok((200, _)) = answer {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry on {} did not answer GET /v2/ with 200 (last: {answer:?}); log:\n{}",
                self.host(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What one launch of the registry needs.
struct Settings<'a> {
    dir: &'a Path,
    port: u16,
    tls: bool,
    htpasswd: Option<&'a Path>,
}

/// A process id unique within this test binary, for file names.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A port that was free a moment ago and that this process has not handed
/// out before. Another process may still take it first: `launch` notices.
fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        if given.insert(port) {
            return port;
        }
    }
}

/// The registry's `config.yml`.
fn config_yaml(s: &Settings<'_>) -> String {
    let data = s.dir.join("data");
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n\
         storage:\n  filesystem:\n    rootdirectory: \"{}\"\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: \"127.0.0.1:{}\"\n  secret: kiln-tests-{}\n",
        data.display(),
        s.port,
        s.port
    );
    if s.tls {
        yaml += &format!(
            "  tls:\n    certificate: \"{}\"\n    key: \"{}\"\n",
            s.dir.join("server.crt").display(),
            s.dir.join("server.key").display()
        );
    }
    if let Some(htpasswd) = s.htpasswd {
        yaml += &format!(
            "auth:\n  htpasswd:\n    realm: kiln-tests\n    path: \"{}\"\n",
            htpasswd.display()
        );
    }
    yaml
}

/// The watchdog: starts the registry, kills it once stdin reaches EOF (the
/// harness dropped the pipe or died), and exits with the registry's status.
const WATCHDOG_SH: &str = r#"exec 3<&0
/usr/bin/docker-registry serve "$1" </dev/null >>"$2" 2>&1 &
reg=$!
{ read -r _ <&3; kill -KILL "$reg" 2>/dev/null; } &
watch=$!
wait "$reg"
code=$?
kill "$watch" 2>/dev/null
exit "$code"
"#;

/// Starts the registry and waits until it listens. `Err` carries the log
/// when it exited because the port was taken.
fn launch(s: &Settings<'_>) -> Result<Watchdog, String> {
    let config = s.dir.join("config.yml");
    write(&config, config_yaml(s));
    let log = s.dir.join("registry.log");
    write(&log, "");
    let child = Command::new("/bin/sh")
        .args(["-c", WATCHDOG_SH, "kiln-registry"])
        .arg(&config)
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting /bin/sh for docker-registry");
    let mut process = Watchdog::new(child);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        // Logged only after the listening socket is bound: the port is ours.
        if text.contains("listening on") {
            return Ok(process);
        }
        if let Some(status) = process.try_wait() {
            if text.contains("address already in use") {
                return Err(text);
            }
            panic!("docker-registry exited with {status} while starting; log:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "docker-registry did not listen within {START_TIMEOUT:?}; log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The watchdog shell and the pipe whose closing kills the registry.
struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    fn new(mut child: Child) -> Self {
        let stdin = child.stdin.take();
        Self { child, stdin }
    }

    fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("polling docker-registry")
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // EOF on the watchdog's stdin: it kills the registry and exits.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes a CA and a server certificate for 127.0.0.1 and localhost in
/// `dir` with the `openssl` CLI.
fn make_tls(dir: &Path) -> Tls {
    let ca_key = dir.join("ca.key");
    let ca_cert = dir.join("ca.crt");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let ext = dir.join("server.ext");
    run(openssl_req(&ca_key)
        .arg("-x509")
        .arg("-out")
        .arg(&ca_cert)
        .args(["-subj", "/CN=kiln-tests CA", "-days", "2"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
    run(openssl_req(&key)
        .arg("-out")
        .arg(&csr)
        .args(["-subj", "/CN=127.0.0.1"]));
    write(
        &ext,
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    );
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(&ca_cert)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-CAcreateserial")
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(dir.join("server.crt")));
    let cert_dir = dir.join("certs");
    mkdir(&cert_dir);
    std::fs::copy(&ca_cert, cert_dir.join("ca.crt")).expect("copying ca.crt into certs/");
    Tls { ca_cert, cert_dir }
}

/// `openssl req -new` with a fresh P-256 key written to `key`.
fn openssl_req(key: &Path) -> Command {
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-new", "-nodes", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout"])
        .arg(key);
    cmd
}

/// Writes a bcrypt htpasswd file for one user and returns its path.
fn make_htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    let path = dir.join("htpasswd");
    let out = run(Command::new("htpasswd").args(["-Bbn", user, password]));
    write(&path, out.stdout);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_reported_for_a_retry() {
        if !crate::tools::require(&["docker-registry"]) {
            return;
        }
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            dir: dir.path(),
            port: taken.local_addr().unwrap().port(),
            tls: false,
            htpasswd: None,
        };
        let log = launch(&settings).err().expect("the port is taken");
        assert!(log.contains("address already in use"), "{log}");
    }
}

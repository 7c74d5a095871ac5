//! ADD's remote sources: files over `http://`/`https://` and Git
//! repositories, fetched into a private scratch directory and then copied by
//! [`rootfs::copy_into`] as if they were local, with BuildKit's semantics.
//!
//! # URLs
//!
//! The body is streamed into the blob store and verified against
//! `--checksum=sha256:<hex>` before anything is written into the build root.
//! The file is then materialised with mode 0600 and the modification time of
//! the `Last-Modified` header (the epoch without one), named after the last
//! segment of the URL path (`__unnamed__` when there is none): that name is
//! used when the destination is a directory, as in BuildKit's Dockerfile
//! frontend. Remote archives are copied as files unless `--unpack=true`.
//! Redirects are followed (at most 10); any other answer than 2xx is an
//! error naming the URL and the status.
//!
//! # Git
//!
//! BuildKit's forms: `https://host/org/repo.git#ref:subdir`,
//! `git@host:org/repo.git#ref`, `git://…`, `ssh://…`, and the query form
//! `…/repo.git?ref=…&subdir=…&checksum=…&keep-git-dir=…` (also `tag=` and
//! `branch=`). The `git` CLI fetches the ref into a fresh repository (depth
//! 1 when the server allows it, else the full history) and checks it out;
//! `--checksum` is a prefix of the commit that must match `HEAD`. `.git` is
//! dropped unless `--keep-git-dir`. Files are 0644, or 0755 when git has
//! the executable bit; directories 0755; owners 0:0 unless `--chown` (what
//! copying a context source gives). The checkout time is kept as the files'
//! modification time.
//!
//! # Order of sources
//!
//! An ADD that mixes local and remote sources copies the local ones first,
//! then the remote ones, each group in the order written.
//!
//! Userinfo and query strings of URLs never appear in errors or logs.

use crate::dockerfile::ignore::IgnoreMatcher;
use crate::image::Digest;
use crate::plan::{self, Source};
use crate::rootfs::{self, ChangeSet, CopyError, CopyRequest, CopySource, Root};
use crate::store::{BlobStore, StoreError};
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

const USER_AGENT: &str = concat!("kiln/", env!("CARGO_PKG_VERSION"));
const MAX_REDIRECTS: usize = 10;
static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Why a remote source could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The request failed (connection, TLS, too many redirects, body).
    #[error("cannot download {url}")]
    Http {
        /// The URL, without userinfo or query.
        url: String,
        /// Why (without the URL).
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a status other than 2xx.
    #[error("cannot download {url}: the server answered {status}")]
    Status {
        /// The URL, without userinfo or query.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
    },
    /// `--checksum` is not a sha256 digest.
    #[error("ADD --checksum={checksum} for {url}: only sha256 digests are supported")]
    ChecksumAlgorithm {
        /// The URL, without userinfo or query.
        url: String,
        /// As given.
        checksum: String,
    },
    /// The download does not match `--checksum`.
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    Checksum {
        /// The URL, without userinfo or query.
        url: String,
        /// `--checksum`.
        expected: String,
        /// The digest of what was downloaded.
        actual: String,
    },
    /// The blob store failed.
    #[error("cannot store the download of {url}")]
    Store {
        /// The URL, without userinfo or query.
        url: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The scratch directory could not be written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A Git source that cannot be understood.
    #[error("invalid Git source {src}: {reason}")]
    GitSource {
        /// The source, without userinfo or query.
        src: String,
        /// What is wrong.
        reason: String,
    },
    /// `git` could not be started.
    #[error("cannot run git (is it installed?)")]
    GitSpawn(#[source] io::Error),
    /// A `git` command failed.
    #[error("git {step} failed for {url}: {output}")]
    Git {
        /// The repository, without userinfo.
        url: String,
        /// Which step.
        step: &'static str,
        /// The last lines git printed, with the URL's userinfo removed.
        output: String,
    },
    /// The commit does not match `--checksum`.
    #[error("checksum mismatch for {url}: expected commit {expected}, got {actual}")]
    GitChecksum {
        /// The repository, without userinfo.
        url: String,
        /// `--checksum`.
        expected: String,
        /// `git rev-parse HEAD`.
        actual: String,
    },
    /// The subdirectory is not in the checkout.
    #[error("{url}: subdirectory {subdir:?} not found at {reference}")]
    GitSubdir {
        /// The repository, without userinfo.
        url: String,
        /// The subdirectory.
        subdir: String,
        /// The ref.
        reference: String,
    },
}

/// The remote sources of one ADD, fetched into a scratch directory that is
/// removed when this is dropped.
#[derive(Debug)]
pub(crate) struct Fetched {
    scratch: PathBuf,
    dir: cap_std::fs::Dir,
    no_ignore: IgnoreMatcher,
    /// The instruction with its local sources only, if it has any.
    local: Option<plan::Copy>,
    /// The instruction with its remote sources, as paths in `scratch`.
    remote: plan::Copy,
}

impl Drop for Fetched {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.scratch) {
            tracing::warn!(path = %self.scratch.display(), error = %e, "cannot remove the download directory");
        }
    }
}

/// Fetches the URL and Git sources of `copy` into a new directory under
/// `work_dir`. `None` when it has none (nothing to do).
///
/// # Ambient Authority
///
/// Uses the network, runs `git`, and writes below `work_dir`.
pub(crate) async fn fetch_remote(
    copy: &plan::Copy,
    store: &BlobStore,
    work_dir: &Path,
) -> Result<Option<Fetched>, FetchError> {
    if !copy
        .sources
        .iter()
        .any(|s| matches!(s, Source::Url(_) | Source::Git(_)))
    {
        return Ok(None);
    }
    let scratch = work_dir.join(format!(
        "remote-{}-{}",
        std::process::id(),
        SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let io_err = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(&scratch).map_err(io_err("create", &scratch))?;
    let dir = cap_std::fs::Dir::open_ambient_dir(&scratch, cap_std::ambient_authority())
        .map_err(io_err("open", &scratch))?;
    let mut fetched = Fetched {
        scratch: scratch.clone(),
        dir,
        no_ignore: IgnoreMatcher::from_lines::<_, &str>([]).expect("no patterns"),
        local: None,
        remote: plan::Copy {
            sources: Vec::new(),
            // BuildKit extracts remote archives only when asked to.
            unpack: Some(copy.unpack == Some(true)),
            parents: false,
            ..copy.clone()
        },
    };
    let mut local = Vec::new();
    let mut client = None;
    for (i, s) in copy.sources.iter().enumerate() {
        let slot = scratch.join(i.to_string());
        match s {
            Source::Path(_) | Source::Heredoc(_) => local.push(s.clone()),
            Source::Url(u) => {
                std::fs::create_dir(&slot).map_err(io_err("create", &slot))?;
                let client = match &client {
                    Some(c) => c,
                    None => client.insert(http_client()?),
                };
                let name = download(client, store, u, copy.checksum.as_deref(), &slot).await?;
                fetched
                    .remote
                    .sources
                    .push(Source::Path(format!("{i}/{name}")));
            }
            Source::Git(g) => {
                let git = GitSource::parse(g)?;
                let keep = copy.keep_git_dir || git.keep_git_dir;
                let checksum = copy.checksum.as_deref().or(git.checksum.as_deref());
                let repo = slot.join("repo");
                tokio::task::block_in_place(|| git.checkout(&repo, checksum, keep))?;
                let mut path = format!("{i}/repo");
                if !git.subdir.is_empty() {
                    path.push('/');
                    path.push_str(&git.subdir);
                }
                fetched.remote.sources.push(Source::Path(path));
            }
        }
    }
    if !local.is_empty() {
        fetched.local = Some(plan::Copy {
            sources: local,
            ..copy.clone()
        });
    }
    Ok(Some(fetched))
}

impl Fetched {
    /// Runs the ADD: its local sources from `req.source`, then the fetched
    /// ones; returns what changed.
    pub(crate) fn copy_into(
        &self,
        root: &Root,
        req: &CopyRequest<'_>,
    ) -> Result<ChangeSet, CopyError> {
        let dest = &req.copy.dest;
        let dest_as_dir = dest.ends_with('/')
            || dest == "."
            || dest == ".."
            || dest.ends_with("/.")
            || dest.ends_with("/..");
        if req.copy.sources.len() > 1 && !dest_as_dir {
            return Err(CopyError::MultipleSources { keyword: "ADD" });
        }
        let mut changes = BTreeSet::new();
        let mut merge = |set: ChangeSet| {
            for p in set.paths {
                changes.insert(
                    p.split('/')
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                );
            }
        };
        if let Some(local) = &self.local {
            merge(rootfs::copy_into(
                root,
                &CopyRequest {
                    copy: local,
                    ..*req
                },
            )?);
        }
        merge(rootfs::copy_into(
            root,
            &CopyRequest {
                copy: &self.remote,
                source: CopySource::Context {
                    dir: &self.dir,
                    ignore: &self.no_ignore,
                },
                ..*req
            },
        )?);
        Ok(ChangeSet {
            paths: changes
                .into_iter()
                .map(|c| format!("/{}", c.join("/")))
                .collect(),
        })
    }
}

// ------------------------------------------------------------------ HTTP

fn http_client() -> Result<reqwest::Client, FetchError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .user_agent(USER_AGENT)
        .build()
        .map_err(FetchError::Client)
}

/// Downloads `url` into `slot/<name>` (mode 0600, mtime from
/// `Last-Modified`) after verifying `checksum`; returns the name.
async fn download(
    client: &reqwest::Client,
    store: &BlobStore,
    url: &str,
    checksum: Option<&str>,
    slot: &Path,
) -> Result<String, FetchError> {
    let shown = redact(url);
    let expected = match checksum {
        None => None,
        Some(c) => match c.parse::<Digest>() {
            Ok(d) if c.starts_with("sha256:") => Some(d),
            _ => {
                return Err(FetchError::ChecksumAlgorithm {
                    url: shown,
                    checksum: c.to_owned(),
                });
            }
        },
    };
    tracing::info!(url = %shown, "ADD: downloading");
    let http_err = |e: reqwest::Error| FetchError::Http {
        url: shown.clone(),
        source: e.without_url(),
    };
    let mut resp = client.get(url).send().await.map_err(http_err)?;
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            url: shown,
            status: resp.status(),
        });
    }
    let mtime = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .unwrap_or(0);
    let store_err = |source| FetchError::Store {
        url: shown.clone(),
        source,
    };
    let mut w = store.writer().map_err(store_err)?;
    while let Some(chunk) = resp.chunk().await.map_err(http_err)? {
        w.write_all(&chunk).map_err(|source| {
            store_err(StoreError::Io {
                what: "a download".into(),
                source,
            })
        })?;
    }
    let digest = match w.commit(expected.as_ref(), None) {
        Ok((d, _)) => d,
        Err(StoreError::DigestMismatch { expected, actual }) => {
            return Err(FetchError::Checksum {
                url: shown,
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Err(e) => return Err(store_err(e)),
    };
    let name = file_name(url);
    let path = slot.join(&name);
    let io_err = |action| {
        let path = path.clone();
        move |source| FetchError::Io {
            action,
            path,
            source,
        }
    };
    let mut blob = store.open_blob(&digest).map_err(store_err)?;
    let mut file = std::fs::File::create_new(&path).map_err(io_err("create"))?;
    io::copy(&mut blob, &mut file).map_err(io_err("write"))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io_err("chmod"))?;
    let t = if mtime >= 0 {
        UNIX_EPOCH + Duration::from_secs(mtime.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(mtime.unsigned_abs())
    };
    file.set_modified(t).map_err(io_err("set the time of"))?;
    tracing::debug!(url = %shown, %digest, "ADD: downloaded");
    Ok(name)
}

/// The file name BuildKit's frontend gives a URL source: the last segment
/// of its path, percent-decoded, or `__unnamed__`.
fn file_name(url: &str) -> String {
    let path = reqwest::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    let decoded = percent_decode(&path);
    let base = decoded
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    if base.is_empty() || base == "." || base == ".." {
        "__unnamed__".to_owned()
    } else {
        base.to_owned()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` without userinfo and without its query string, for messages.
pub(crate) fn redact(url: &str) -> String {
    let (before_frag, frag) = match url.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (url, None),
    };
    let no_query = before_frag.split('?').next().unwrap_or(before_frag);
    let mut out = match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => no_query.to_owned(),
    };
    if let Some(f) = frag {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Seconds since the epoch of an HTTP date (IMF-fixdate, RFC 850 or
/// asctime, as Go's `http.ParseTime`).
fn parse_http_date(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let s = s.trim();
    let (day, month, year, time) = if let Some((_, rest)) = s.split_once(", ") {
        let parts: Vec<&str> = rest.split([' ', '-']).collect();
        match parts.as_slice() {
            // Sun, 06 Nov 1994 08:49:37 GMT
            [d, m, y, t, "GMT"] if y.len() == 4 => (*d, *m, y.parse::<i64>().ok()?, *t),
            // Sunday, 06-Nov-94 08:49:37 GMT
            [d, m, y, t, "GMT"] if y.len() == 2 => {
                let y: i64 = y.parse().ok()?;
                (*d, *m, if y < 70 { 2000 + y } else { 1900 + y }, *t)
            }
            _ => return None,
        }
    } else {
        // Sun Nov  6 08:49:37 1994
        let parts: Vec<&str> = s.split_whitespace().collect();
        match parts.as_slice() {
            [_, m, d, t, y] => (*d, *m, y.parse::<i64>().ok()?, *t),
            _ => return None,
        }
    };
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, se] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *mi > 59 || *se > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ------------------------------------------------------------------- Git

/// A parsed Git source.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GitSource {
    /// What `git` fetches from.
    remote: String,
    /// The ref (branch, tag or commit); empty = the remote's HEAD.
    reference: String,
    /// The subdirectory to copy; empty = all.
    subdir: String,
    /// `checksum=` of the query form.
    checksum: Option<String>,
    /// `keep-git-dir=` of the query form.
    keep_git_dir: bool,
}

impl GitSource {
    fn parse(src: &str) -> Result<Self, FetchError> {
        let bad = |reason: &str| FetchError::GitSource {
            src: redact(src),
            reason: reason.to_owned(),
        };
        let (rest, fragment) = match src.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (src, None),
        };
        // The query form applies to URLs with a scheme; an scp-like
        // `git@host:path` keeps `?` as part of the path.
        let (remote, query) = match rest.split_once('?') {
            Some((r, q)) if rest.contains("://") => (r, Some(q)),
            _ => (rest, None),
        };
        let mut out = GitSource {
            remote: remote.to_owned(),
            reference: String::new(),
            subdir: String::new(),
            checksum: None,
            keep_git_dir: false,
        };
        if let Some(f) = fragment {
            let (r, sub) = f.split_once(':').unwrap_or((f, ""));
            out.reference = r.to_owned();
            out.subdir = sub.to_owned();
        }
        if let Some(q) = query {
            if fragment.is_some() {
                return Err(bad("use either a #ref:subdir fragment or query parameters"));
            }
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let v = percent_decode(v);
                match k {
                    "ref" | "tag" | "branch" => {
                        if !out.reference.is_empty() {
                            return Err(bad("more than one of ref=, tag=, branch="));
                        }
                        out.reference = match k {
                            "tag" => format!("refs/tags/{v}"),
                            "branch" => format!("refs/heads/{v}"),
                            _ => v,
                        };
                    }
                    "subdir" => out.subdir = v,
                    "checksum" | "commit" => out.checksum = Some(v),
                    "keep-git-dir" => {
                        out.keep_git_dir = match v.as_str() {
                            "" | "true" | "1" => true,
                            "false" | "0" => false,
                            _ => return Err(bad("keep-git-dir= takes true or false")),
                        }
                    }
                    _ => return Err(bad(&format!("unknown query parameter {k:?}"))),
                }
            }
        }
        out.subdir = out.subdir.trim_matches('/').to_owned();
        if out.subdir.split('/').any(|c| c == "..") {
            return Err(bad("the subdirectory must stay inside the repository"));
        }
        if out.reference.starts_with('-') || out.remote.starts_with('-') {
            return Err(bad("a ref or URL cannot start with '-'"));
        }
        Ok(out)
    }

    /// Fetches and checks out into `repo` (which must not exist).
    fn checkout(&self, repo: &Path, checksum: Option<&str>, keep: bool) -> Result<(), FetchError> {
        let shown = redact(&self.remote);
        std::fs::create_dir_all(repo).map_err(|source| FetchError::Io {
            action: "create",
            path: repo.to_path_buf(),
            source,
        })?;
        tracing::info!(url = %shown, reference = %self.reference, "ADD: fetching Git repository");
        let git = |step: &'static str, args: &[&str]| -> Result<String, FetchError> {
            let out = Command::new("git")
                .arg("-C")
                .arg(repo)
                .args([
                    "-c",
                    "advice.detachedHead=false",
                    "-c",
                    "init.defaultBranch=main",
                ])
                .args(args)
                .env("GIT_TERMINAL_PROMPT", "0")
                .env("GIT_ASKPASS", "true")
                .env("LC_ALL", "C")
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(FetchError::GitSpawn)?;
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned());
            }
            let text = String::from_utf8_lossy(&out.stderr).replace(&self.remote, &shown);
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let output = lines[lines.len().saturating_sub(3)..].join("; ");
            Err(FetchError::Git {
                url: shown.clone(),
                step,
                output,
            })
        };
        git("init", &["init", "-q"])?;
        git("remote add", &["remote", "add", "origin", &self.remote])?;
        let want = if self.reference.is_empty() {
            "HEAD"
        } else {
            &self.reference
        };
        // Shallow first; dumb HTTP and servers that refuse a commit as a
        // want need the full history.
        let shallow = git(
            "fetch",
            &["fetch", "-q", "--depth", "1", "--no-tags", "origin", want],
        );
        let target = match shallow {
            Ok(_) => "FETCH_HEAD".to_owned(),
            Err(first) => {
                tracing::debug!(error = %first, "shallow fetch failed, fetching everything");
                match git("fetch", &["fetch", "-q", "--no-tags", "origin", want]) {
                    Ok(_) => "FETCH_HEAD".to_owned(),
                    Err(e) if !is_hex(want) => return Err(e),
                    Err(_) => {
                        git(
                            "fetch",
                            &[
                                "fetch",
                                "-q",
                                "origin",
                                "+refs/heads/*:refs/remotes/origin/*",
                                "+refs/tags/*:refs/tags/*",
                            ],
                        )?;
                        want.to_owned()
                    }
                }
            }
        };
        git("checkout", &["checkout", "-q", "--detach", &target])?;
        let head = git("rev-parse", &["rev-parse", "HEAD"])?;
        if let Some(c) = checksum {
            let c = c.to_ascii_lowercase();
            if c.is_empty() || !head.starts_with(&c) {
                return Err(FetchError::GitChecksum {
                    url: shown,
                    expected: c,
                    actual: head,
                });
            }
        }
        tracing::debug!(url = %shown, commit = %head, "ADD: checked out");
        if !self.subdir.is_empty() {
            let sub = repo.join(&self.subdir);
            if !sub.is_dir() && !sub.is_file() {
                return Err(FetchError::GitSubdir {
                    url: shown,
                    subdir: self.subdir.clone(),
                    reference: want.to_owned(),
                });
            }
        }
        if !keep {
            let g = repo.join(".git");
            std::fs::remove_dir_all(&g).map_err(|source| FetchError::Io {
                action: "remove",
                path: g,
                source,
            })?;
        }
        normalise_modes(repo, true)
    }
}

fn is_hex(s: &str) -> bool {
    s.len() >= 7 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Files 0644 or 0755 (any executable bit), directories 0755, as BuildKit's
/// Git source; `.git` at the top is left as git made it.
fn normalise_modes(dir: &Path, top: bool) -> Result<(), FetchError> {
    let io_err = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(io_err("chmod", dir))?;
    for entry in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path();
        if top && entry.file_name() == ".git" {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(io_err("inspect", &path))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            normalise_modes(&path, false)?;
        } else if ft.is_file() {
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(io_err("chmod", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_strips_userinfo_and_query() {
        assert_eq!(
            redact("https://user:secret@example.com/a/b.tgz?token=x#frag"),
            "https://example.com/a/b.tgz#frag"
        );
        assert_eq!(redact("http://h:8080"), "http://h:8080");
        assert_eq!(redact("git@github.com:o/r.git"), "git@github.com:o/r.git");
    }

    #[test]
    fn file_names_follow_the_url_path() {
        assert_eq!(file_name("https://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(file_name("https://h/a/some%20file"), "some file");
        assert_eq!(file_name("https://h/a/dir/"), "dir");
        assert_eq!(file_name("https://h"), "__unnamed__");
        assert_eq!(file_name("https://h/"), "__unnamed__");
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn git_sources() {
        let g = GitSource::parse("https://h/o/r.git#v1.0:sub/dir").unwrap();
        assert_eq!(g.remote, "https://h/o/r.git");
        assert_eq!(g.reference, "v1.0");
        assert_eq!(g.subdir, "sub/dir");
        let g = GitSource::parse("git@github.com:o/r.git#main").unwrap();
        assert_eq!(g.remote, "git@github.com:o/r.git");
        assert_eq!(g.reference, "main");
        assert_eq!(g.subdir, "");
        let g = GitSource::parse("git://h/r").unwrap();
        assert_eq!((g.remote.as_str(), g.reference.as_str()), ("git://h/r", ""));
        let g = GitSource::parse(
            "https://h/o/r.git?tag=v2&subdir=docs&keep-git-dir=true&checksum=abc123",
        )
        .unwrap();
        assert_eq!(g.remote, "https://h/o/r.git");
        assert_eq!(g.reference, "refs/tags/v2");
        assert_eq!(g.subdir, "docs");
        assert!(g.keep_git_dir);
        assert_eq!(g.checksum.as_deref(), Some("abc123"));
        assert!(GitSource::parse("https://h/o/r.git?ref=a#b").is_err());
        assert!(GitSource::parse("https://h/o/r.git?bogus=1").is_err());
        assert!(GitSource::parse("https://h/o/r.git#main:../up").is_err());
        let e = GitSource::parse("https://u:pw@h/o/r.git?bogus=1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw"), "{e}");
    }
}

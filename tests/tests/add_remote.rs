//! ADD with remote sources: files over HTTP and Git repositories, served
//! from 127.0.0.1 by the test itself (a small file server, Git's dumb HTTP
//! protocol, and `git daemon` for `git://`). Never the host network.

use kiln_tests::Build;
use kiln_tests::http::{FileServer, LAST_MODIFIED_EPOCH};
use kiln_tests::tools::{self, require};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLS: &[&str] = &["umoci", "git", "tar"];

/// Builds `dockerfile` into an OCI layout and unpacks it; the rootfs when
/// the build succeeded.
fn build(name: &str, dockerfile: &str) -> (Build, kiln_tests::Run, Option<PathBuf>) {
    build_with(name, dockerfile, &[])
}

/// [`build`] with extra files in the context.
fn build_with(
    name: &str,
    dockerfile: &str,
    files: &[(&str, &str)],
) -> (Build, kiln_tests::Run, Option<PathBuf>) {
    let b = Build::new(name, dockerfile);
    for (path, content) in files {
        tools::write(&b.dir.join("ctx").join(path), content);
    }
    let b = b
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env(
            "KILN_LOG",
            std::env::var("KILN_TEST_LOG").unwrap_or_default(),
        );
    let layout = b.path("layout");
    let r = b.run(&[
        "--no-push",
        "--oci-layout-path",
        layout.to_str().unwrap(),
        "--destination",
        "local/add:t",
    ]);
    let rootfs = (r.code == 0).then(|| tools::umoci_unpack(&layout, "t", &b.path("unpacked")));
    (b, r, rootfs)
}

fn git(dir: &Path, args: &[&str]) -> String {
    tools::run_stdout(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(["-c", "init.defaultBranch=main", "-c", "tag.gpgSign=false"])
            .args(["-c", "commit.gpgSign=false"])
            .args(args),
    )
    .trim()
    .to_string()
}

/// A bare repository `<srv>/repo.git` (ready for dumb HTTP) with a tag
/// `v1` and one more commit on `main`; returns the v1 and main commits.
fn make_repo(work: &Path, srv: &Path) -> (String, String) {
    let src = work.join("repo-src");
    tools::mkdir(&src);
    git(&src, &["init", "-q"]);
    tools::write(&src.join("README"), "top\n");
    tools::mkdir(&src.join("sub"));
    tools::write(&src.join("sub/a.txt"), "v1\n");
    tools::write(&src.join("sub/run.sh"), "#!/bin/sh\necho run\n");
    std::fs::set_permissions(
        src.join("sub/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o775),
    )
    .unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-q", "-m", "one"]);
    git(&src, &["tag", "-a", "-m", "v1", "v1"]);
    let v1 = git(&src, &["rev-parse", "HEAD"]);
    tools::write(&src.join("sub/a.txt"), "v2\n");
    git(&src, &["commit", "-q", "-am", "two"]);
    let main = git(&src, &["rev-parse", "HEAD"]);
    tools::mkdir(srv);
    tools::run(
        Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(&src)
            .arg(srv.join("repo.git")),
    );
    git(&srv.join("repo.git"), &["update-server-info"]);
    (v1, main)
}

/// Files for the HTTP tests: a text file and a gzipped tar.
fn make_files(srv: &Path) {
    tools::mkdir(&srv.join("files"));
    tools::write(&srv.join("files/hello.txt"), "hello over http\n");
    let t = srv.join("tar-src");
    tools::mkdir(&t.join("inner"));
    tools::write(&t.join("inner/file"), "inside the archive\n");
    tools::run(
        Command::new("tar")
            .arg("-C")
            .arg(&t)
            .arg("-czf")
            .arg(srv.join("files/archive.tar.gz"))
            .arg("inner"),
    );
}

#[test]
fn add_url_names_modes_times_checksum_and_unpack() {
    if !require(TOOLS) {
        return;
    }
    let srv = kiln_tests::scratch("add-remote-http-srv");
    make_files(&srv);
    let server = FileServer::start(&srv);
    let hello = server.url("/files/hello.txt");
    let sum = kiln_tests::sha256_hex(b"hello over http\n");
    let dockerfile = format!(
        "FROM scratch\n\
         ADD {hello} /dl/\n\
         ADD {hello}?x=1 /renamed.txt\n\
         ADD --chmod=644 --chown=5:6 {redirect} /perm/\n\
         ADD {tgz} /archives/\n\
         ADD --unpack=true {tgz} /unpacked/\n\
         ADD --checksum=sha256:{sum} {hello} /checked\n\
         ADD local.txt {hello} /mixed/\n",
        redirect = server.url("/redirect/files/hello.txt"),
        tgz = server.url("/files/archive.tar.gz"),
    );
    let (_b, r, rootfs) = build_with("add-url", &dockerfile, &[("local.txt", "local\n")]);
    assert_eq!(r.code, 0, "{r:?}");
    let rootfs = rootfs.unwrap();
    let tree = tools::file_tree(&rootfs);
    let dl = &tree["dl/hello.txt"];
    assert_eq!(dl.mode, 0o600, "{dl:?}");
    assert_eq!(dl.sha256.as_deref(), Some(format!("sha256:{sum}").as_str()));
    assert_eq!(
        std::fs::metadata(rootfs.join("dl/hello.txt"))
            .unwrap()
            .mtime(),
        LAST_MODIFIED_EPOCH,
        "mtime from Last-Modified"
    );
    assert_eq!(tree["dl"].mode, 0o755);
    // A file destination takes the destination's name.
    assert_eq!(tree["renamed.txt"].mode, 0o600);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("renamed.txt")).unwrap(),
        "hello over http\n"
    );
    // Redirects are followed; --chmod and --chown apply.
    let perm = &tree["perm/hello.txt"];
    assert_eq!(perm.mode, 0o644);
    if tools::is_root() {
        assert_eq!((perm.uid, perm.gid), (5, 6));
        assert_eq!((dl.uid, dl.gid), (0, 0));
    }
    // A remote archive is copied as a file unless --unpack=true.
    assert_eq!(tree["archives/archive.tar.gz"].mode, 0o600);
    assert!(!tree.contains_key("archives/inner"));
    assert_eq!(
        std::fs::read_to_string(rootfs.join("unpacked/inner/file")).unwrap(),
        "inside the archive\n"
    );
    assert!(!tree.contains_key("unpacked/archive.tar.gz"));
    assert_eq!(
        std::fs::read_to_string(rootfs.join("checked")).unwrap(),
        "hello over http\n"
    );
    // Local and remote sources in one ADD.
    assert_eq!(tree["mixed/local.txt"].mode, 0o644);
    assert_eq!(tree["mixed/hello.txt"].mode, 0o600);
}

#[test]
fn add_url_checksum_mismatch_and_404_fail_clearly_without_secrets() {
    if !require(TOOLS) {
        return;
    }
    let srv = kiln_tests::scratch("add-remote-http-fail-srv");
    make_files(&srv);
    let server = FileServer::start(&srv);
    let hello = server.url("/files/hello.txt");
    let wrong = "0".repeat(64);
    let actual = kiln_tests::sha256_hex(b"hello over http\n");

    let (b, r, _) = build(
        "add-url-checksum",
        &format!("FROM scratch\nADD --checksum=sha256:{wrong} {hello}?token=hunter2 /x\n"),
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("Dockerfile:2: ADD failed"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&hello), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("sha256:{wrong}")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("sha256:{actual}")),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    assert!(!b.path("layout").join("index.json").exists());

    let with_user = server
        .url("/missing.txt?token=hunter2")
        .replace("http://", "http://user:s3cret@");
    let (b, r, _) = build(
        "add-url-404",
        &format!("FROM scratch\nADD {with_user} /x\n"),
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("404"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&server.url("/missing.txt")),
        "{}",
        r.stderr
    );
    for secret in ["s3cret", "hunter2", "user:"] {
        assert!(!r.stderr.contains(secret), "{secret} leaked: {}", r.stderr);
    }
    assert!(!b.path("layout").join("index.json").exists());
}

#[test]
fn add_git_over_dumb_http_refs_subdirs_keep_git_dir_and_checksum() {
    if !require(TOOLS) {
        return;
    }
    let srv = kiln_tests::scratch("add-remote-git-srv");
    let (v1, main) = make_repo(&srv.join("work"), &srv.join("www"));
    let server = FileServer::start(&srv.join("www"));
    let repo = server.url("/repo.git");
    let dockerfile = format!(
        "FROM scratch\n\
         ADD {repo}#v1:sub /src/\n\
         ADD --keep-git-dir {repo}#v1 /full/\n\
         ADD {repo} /head\n\
         ADD --checksum={short} {repo}?ref=v1&subdir=sub /q/\n",
        short = &v1[..12],
    );
    let (_b, r, rootfs) = build("add-git", &dockerfile);
    assert_eq!(r.code, 0, "{r:?}");
    let rootfs = rootfs.unwrap();
    let tree = tools::file_tree(&rootfs);
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap();
    assert_eq!(read("src/a.txt"), "v1\n");
    assert_eq!(tree["src/a.txt"].mode, 0o644);
    assert_eq!(tree["src/run.sh"].mode, 0o755);
    assert!(!tree.contains_key("src/README"));
    assert!(!tree.contains_key("src/.git"));
    assert_eq!(read("full/README"), "top\n");
    assert_eq!(tree["full/.git"].kind, tools::Kind::Dir);
    assert!(!tree.contains_key("head/.git"));
    assert_eq!(read("head/sub/a.txt"), "v2\n");
    assert_eq!(read("q/a.txt"), "v1\n");
    if tools::is_root() {
        assert_eq!((tree["src/a.txt"].uid, tree["src/a.txt"].gid), (0, 0));
    }

    // A commit that does not match --checksum stops the build.
    let (b, r, _) = build(
        "add-git-checksum",
        &format!("FROM scratch\nADD --checksum={v1} {repo}#main /x/\n"),
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("checksum mismatch"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&v1) && r.stderr.contains(&main),
        "{}",
        r.stderr
    );
    assert!(!b.path("layout").join("index.json").exists());

    // A ref that does not exist names the repository.
    let (_b, r, _) = build(
        "add-git-noref",
        &format!("FROM scratch\nADD {repo}#no-such-ref /x/\n"),
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("git fetch failed"), "{}", r.stderr);
    assert!(r.stderr.contains(&repo), "{}", r.stderr);
}

/// `git daemon` on 127.0.0.1, killed on drop.
struct GitDaemon {
    child: std::process::Child,
    port: u16,
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git_daemon(base: &Path) -> Option<GitDaemon> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("git")
        .args([
            "daemon",
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let d = GitDaemon { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(d);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

#[test]
fn add_git_over_git_protocol() {
    if !require(TOOLS) {
        return;
    }
    let srv = kiln_tests::scratch("add-remote-gitd-srv");
    let (v1, _) = make_repo(&srv.join("work"), &srv.join("www"));
    let Some(d) = git_daemon(&srv.join("www")) else {
        tools::require(&["git-daemon"]);
        return;
    };
    let url = format!("git://127.0.0.1:{}/repo.git", d.port);
    let (_b, r, rootfs) = build(
        "add-gitd",
        &format!("FROM scratch\nADD --checksum={v1} {url}#v1:sub /src\n"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let rootfs = rootfs.unwrap();
    assert_eq!(
        std::fs::read_to_string(rootfs.join("src/a.txt")).unwrap(),
        "v1\n"
    );
    assert_eq!(tools::file_tree(&rootfs)["src/run.sh"].mode, 0o755);
}

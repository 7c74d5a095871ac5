//! Thin wrappers over the independent tools the harness judges kiln with:
//! running commands, checking that tools are installed, `skopeo`, `umoci`,
//! and a file-tree walker for comparing unpacked root filesystems.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Environment variable that turns a missing tool into a test failure
/// instead of a skip. `.ci/run` sets it.
pub const REQUIRE_TOOLS_ENV: &str = "KILN_REQUIRE_TOOLS";

/// Full path of `tool`, searched in `$PATH` and the sbin directories.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// True when every tool in `tools` is installed.
///
/// When one is missing: with `$KILN_REQUIRE_TOOLS` set this panics (CI must
/// never skip silently); otherwise it prints why the test is skipped and
/// returns false, and the test should return early:
///
/// ```no_run
/// if !kiln_tests::tools::require(&["skopeo", "docker-registry"]) {
///     return;
/// }
/// ```
pub fn require(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let hint = "install them with scripts/setup.sh";
    if std::env::var_os(REQUIRE_TOOLS_ENV).is_some() {
        panic!("missing tools {missing:?} and ${REQUIRE_TOOLS_ENV} is set: {hint}");
    }
    #[expect(clippy::print_stderr, reason = "a skipped test says why")]
    {
        eprintln!(
            "SKIPPED: missing tools {missing:?} ({hint}; set ${REQUIRE_TOOLS_ENV} to fail instead)"
        );
    }
    false
}

/// True when the tests run as root (uid 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Runs `cmd`, returning its output, or the output's stderr as the error
/// when it exits non-zero. Panics only when the program cannot be started.
pub fn try_run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("starting {:?}: {e}", cmd.get_program()));
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{:?} exited with {}: {}{}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

/// Runs `cmd` and panics with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    try_run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `cmd` and returns its stdout as text, panicking when it fails.
pub fn run_stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// Writes `contents` to `path`, panicking with the path on failure.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Creates `path` and its parents, panicking with the path on failure.
pub fn mkdir(path: &Path) {
    std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
}

/// How skopeo reaches a registry (see [`crate::Registry::access`]).
#[derive(Clone, Default)]
pub struct Access {
    /// Require HTTPS and verify the certificate; false also allows plain
    /// HTTP.
    pub tls_verify: bool,
    /// Directory with the CA certificate (`*.crt`).
    pub cert_dir: Option<PathBuf>,
    /// User and password; `None` is anonymous.
    pub creds: Option<(String, String)>,
}

impl std::fmt::Debug for Access {
    // The password stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("tls_verify", &self.tls_verify)
            .field("cert_dir", &self.cert_dir)
            .field("user", &self.creds.as_ref().map(|c| &c.0))
            .finish_non_exhaustive()
    }
}

impl Access {
    /// Appends skopeo's flags for this access, each prefixed by `prefix`
    /// (`""`, `"src-"` or `"dest-"`).
    fn add_args(&self, cmd: &mut Command, prefix: &str) {
        cmd.arg(format!("--{prefix}tls-verify={}", self.tls_verify));
        if let Some(dir) = &self.cert_dir {
            cmd.arg(format!("--{prefix}cert-dir")).arg(dir);
        }
        match &self.creds {
            Some((user, password)) => cmd
                .arg(format!("--{prefix}creds"))
                .arg(format!("{user}:{password}")),
            None => cmd.arg(format!("--{prefix}no-creds")),
        };
    }
}

/// `skopeo inspect <image_ref>` (e.g. `docker://127.0.0.1:5000/busybox:1`
/// or `oci:/path:tag`), parsed. For an image index it shows this
/// machine's platform.
pub fn skopeo_inspect(image_ref: &str, access: &Access) -> serde_json::Value {
    try_skopeo_inspect(image_ref, access, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// `skopeo inspect --raw`: the manifest or index exactly as stored.
pub fn skopeo_inspect_raw(image_ref: &str, access: &Access) -> serde_json::Value {
    try_skopeo_inspect(image_ref, access, &["--raw"]).unwrap_or_else(|e| panic!("{e}"))
}

/// `skopeo inspect --config --raw`: the image config blob exactly as
/// stored (for an index: of this machine's platform).
pub fn skopeo_inspect_config(image_ref: &str, access: &Access) -> serde_json::Value {
    try_skopeo_inspect(image_ref, access, &["--config", "--raw"]).unwrap_or_else(|e| panic!("{e}"))
}

/// `skopeo inspect` with `extra` flags; `Err` holds skopeo's message.
pub fn try_skopeo_inspect(
    image_ref: &str,
    access: &Access,
    extra: &[&str],
) -> Result<serde_json::Value, String> {
    let mut cmd = Command::new("skopeo");
    cmd.arg("inspect").args(extra);
    if image_ref.starts_with("docker://") {
        access.add_args(&mut cmd, "");
    }
    let out = try_run(cmd.arg(image_ref))?;
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("skopeo inspect {image_ref} printed no JSON: {e}"))
}

/// Options of [`skopeo_copy`].
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// Access to the source registry (for `docker://` sources).
    pub src: Access,
    /// Access to the destination registry (for `docker://` destinations).
    pub dest: Access,
    /// `--all`: copy every manifest of an index.
    pub all: bool,
    /// `--preserve-digests`: fail rather than change a digest.
    pub preserve_digests: bool,
    /// `--format oci|v2s2`: manifest type at the destination.
    pub format: Option<String>,
}

/// `skopeo copy <src> <dst>` and the digest of the written manifest (from
/// `--digestfile`). Panics with skopeo's message when it fails.
pub fn skopeo_copy(src: &str, dst: &str, options: &CopyOptions) -> String {
    try_skopeo_copy(src, dst, options).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`skopeo_copy`]; `Err` holds skopeo's message.
pub fn try_skopeo_copy(src: &str, dst: &str, options: &CopyOptions) -> Result<String, String> {
    let tmp = tempfile::tempdir().expect("temp dir for skopeo's digest file");
    let digest_file = tmp.path().join("digest");
    let mut cmd = Command::new("skopeo");
    cmd.args(["--insecure-policy", "copy", "--retry-times", "0"])
        .arg("--digestfile")
        .arg(&digest_file);
    if src.starts_with("docker://") {
        options.src.add_args(&mut cmd, "src-");
    }
    if dst.starts_with("docker://") {
        options.dest.add_args(&mut cmd, "dest-");
    }
    if options.all {
        cmd.arg("--all");
    }
    if options.preserve_digests {
        cmd.arg("--preserve-digests");
    }
    if let Some(format) = &options.format {
        cmd.args(["--format", format]);
    }
    try_run(cmd.args([src, dst]))?;
    let digest = std::fs::read_to_string(&digest_file).unwrap_or_default();
    Ok(digest.trim().to_owned())
}

/// `umoci unpack --image <oci_layout>:<tag> <dest_dir>` (with `--rootless`
/// unless running as root); `dest_dir` must not exist yet. Returns the
/// unpacked root filesystem, `<dest_dir>/rootfs`.
pub fn umoci_unpack(oci_layout: &Path, tag: &str, dest_dir: &Path) -> PathBuf {
    let mut cmd = Command::new("umoci");
    cmd.arg("unpack");
    if !is_root() {
        cmd.arg("--rootless");
    }
    cmd.arg("--image")
        .arg(format!("{}:{tag}", oci_layout.display()))
        .arg(dest_dir);
    run(&mut cmd);
    dest_dir.join("rootfs")
}

/// Every path under `dir`, `dir` first, parents before children, sorted;
/// symlinks are listed, never followed.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut paths = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < paths.len() {
        let path = paths[i].clone();
        i += 1;
        let meta = std::fs::symlink_metadata(&path)
            .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
        if !meta.is_dir() {
            continue;
        }
        let mut children: Vec<PathBuf> = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("listing {}: {e}", path.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        children.sort();
        paths.extend(children);
    }
    paths.sort();
    paths
}

/// The type of a file-tree entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Character device (also overlay whiteouts, 0:0).
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
}

/// One entry of [`file_tree`], from `lstat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What it is.
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Length of a file's contents or of a symlink's target; 0 otherwise.
    pub size: u64,
    /// `sha256:<hex>` of a regular file's contents.
    pub sha256: Option<String>,
    /// A symlink's target, as stored.
    pub link_target: Option<String>,
    /// Hard-link count (for directories it depends on the filesystem).
    pub nlink: u64,
    /// Device number of character and block devices; 0 otherwise.
    pub rdev: u64,
}

/// Every entry under `dir`, keyed by its path relative to `dir` (`bin`,
/// `bin/busybox`, ...; `dir` itself is not included). Symlinks are
/// described, never followed.
pub fn file_tree(dir: &Path) -> std::collections::BTreeMap<String, Entry> {
    walk(dir)
        .into_iter()
        .skip(1)
        .map(|path| {
            let rel = path.strip_prefix(dir).expect("walked paths are under dir");
            (rel.to_string_lossy().into_owned(), entry(&path))
        })
        .collect()
}

fn entry(path: &Path) -> Entry {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let meta =
        std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_char_device() {
        Kind::CharDevice
    } else if ft.is_block_device() {
        Kind::BlockDevice
    } else if ft.is_fifo() {
        Kind::Fifo
    } else {
        Kind::Socket
    };
    let link_target = (kind == Kind::Symlink).then(|| {
        let target =
            std::fs::read_link(path).unwrap_or_else(|e| panic!("readlink {}: {e}", path.display()));
        target.to_string_lossy().into_owned()
    });
    let device = matches!(kind, Kind::CharDevice | Kind::BlockDevice);
    Entry {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: if matches!(kind, Kind::File | Kind::Symlink) {
            meta.len()
        } else {
            0
        },
        sha256: (kind == Kind::File).then(|| crate::images::sha256_file(path)),
        link_target,
        nlink: meta.nlink(),
        rdev: if device { meta.rdev() } else { 0 },
    }
}

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
pub(crate) fn write(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Creates `path` and its parents, panicking with the path on failure.
pub(crate) fn mkdir(path: &Path) {
    std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
}

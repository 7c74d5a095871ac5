//! End-to-end test support for kiln: the built binary, the examples,
//! scratch directories, and real services and tools to judge kiln with.
//!
//! Tests run the real `kiln` binary. It is found at `$KILN_BIN`, else in the
//! workspace's target directory (built by `cargo test --workspace`, which
//! compiles every binary before running any test), else it is built once.
//!
//! The harness around it uses only independent tools (installed by
//! `scripts/setup.sh`), never kiln's own code:
//!
//! - [`registry`]: [`Registry`] runs Debian's `docker-registry` (CNCF
//!   distribution v2.8) on `127.0.0.1:<free port>`, plain HTTP or HTTPS with
//!   basic auth; killed on drop and when the test process dies.
//! - [`images`]: a reproducible busybox base image (rootfs from Debian's
//!   `busybox-static`, layer by GNU tar and gzip, OCI layout JSON written by
//!   hand), single- and two-platform, pushed with `skopeo copy`; the layer
//!   is cached in [`cache_dir`].
//! - [`tools`]: [`tools::require`] (skip a test cleanly when a tool is
//!   missing, or fail when `$KILN_REQUIRE_TOOLS` is set, as in CI), command
//!   runners, and wrappers over `skopeo` and `umoci`.
//!
//! Tests run in parallel threads; every registry picks its own port and
//! temp dir, so tests may start as many as they need.

pub mod bench;
pub mod http;
pub mod images;
pub mod registry;
pub mod tools;

pub use registry::Registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The target directory: `$CARGO_TARGET_DIR`, else `target/` in the
/// workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// Where expensive test inputs (base image layers) are kept between runs:
/// `<target>/e2e-cache/`. Entries are keyed by content; delete the
/// directory to rebuild them.
pub fn cache_dir() -> PathBuf {
    target_dir().join("e2e-cache")
}

/// Path of the `kiln` binary under test.
pub fn kiln_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("KILN_BIN") {
            return PathBuf::from(p);
        }
        let target = target_dir();
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let bin = target.join(profile).join("kiln");
        if !bin.is_file() {
            let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            build
                .args(["build", "-p", "kiln", "--bin", "kiln"])
                .current_dir(workspace());
            if profile == "release" {
                build.arg("--release");
            }
            let status = build.status().expect("running cargo build");
            assert!(status.success(), "cargo build of kiln failed");
        }
        bin
    })
    .clone()
}

/// The result of running kiln.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `kiln` with `args` in the workspace root.
pub fn kiln(args: &[&str]) -> Run {
    run_program(&kiln_bin(), args, &[])
}

/// Runs `program` with `args` and extra environment in the workspace root.
pub fn run_program(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(workspace())
        .env_remove("KILN_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
        .into()
}

/// A fresh scratch directory `<target>/e2e-scratch/<name>`, removed first
/// if it exists. Names must be unique across tests that run in parallel.
pub fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("e2e-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

/// A build directory with a Dockerfile and its own blob store.
pub struct Build {
    /// The build dir: `ctx/` (the context) and whatever tests put beside it.
    pub dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Build {
    /// A scratch build dir named `name` whose context holds `dockerfile`.
    pub fn new(name: &str, dockerfile: &str) -> Self {
        let dir = scratch(&format!("build-push-{name}"));
        std::fs::create_dir_all(dir.join("ctx")).unwrap();
        std::fs::write(dir.join("ctx/Dockerfile"), dockerfile).unwrap();
        let env = vec![
            (
                "KILN_STORE_DIR".to_string(),
                dir.join("store").display().to_string(),
            ),
            // No credentials unless a test gives some.
            (
                "DOCKER_CONFIG".to_string(),
                dir.join("no-docker-config").display().to_string(),
            ),
        ];
        Self { dir, env }
    }

    /// Sets an environment variable for kiln.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// The context directory.
    pub fn ctx(&self) -> String {
        self.dir.join("ctx").display().to_string()
    }

    /// A path in the build dir (outside the context).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A build whose context is a copy (symlinks and modes kept) of the
    /// corpus case `tests/corpus/<case>`, without its `expect` file.
    pub fn from_corpus(name: &str, case: &str) -> Self {
        let b = Build::new(name, "");
        let ctx = b.dir.join("ctx");
        std::fs::remove_dir_all(&ctx).expect("removing the empty context");
        tools::run(
            Command::new("cp")
                .arg("-a")
                .arg(workspace().join("tests/corpus").join(case))
                .arg(&ctx),
        );
        let _ = std::fs::remove_file(ctx.join("expect"));
        b
    }

    /// Builds with `BASE` set to the busybox image in `registry` (pushed as
    /// [`images::BUSYBOX_TEST_REPO`]) into the OCI layout `<dir>/layout`
    /// (tag `t`), nothing pushed; `extra` flags are added.
    pub fn run_to_layout(&self, registry: &Registry, extra: &[&str]) -> Run {
        let host = registry.host();
        let layout = self.path("layout");
        let base = format!("BASE={}", registry.image_ref(images::BUSYBOX_TEST_REPO));
        let mut args = vec![
            "--no-push",
            "--insecure-registry",
            &host,
            "--build-arg",
            &base,
            "--oci-layout-path",
            layout.to_str().expect("UTF-8 path"),
            "--destination",
            "local/test:t",
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Unpacks the layout [`run_to_layout`](Self::run_to_layout) wrote with
    /// umoci; returns the rootfs.
    pub fn unpack(&self) -> PathBuf {
        tools::umoci_unpack(&self.path("layout"), "t", &self.path("unpacked"))
    }

    /// Runs `kiln build --context <ctx> <extra>`.
    pub fn run(&self, extra: &[&str]) -> Run {
        let ctx = self.ctx();
        let mut args = vec!["build", "--context", &ctx];
        args.extend_from_slice(extra);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        run_program(&kiln_bin(), &args, &env)
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

//! Running a RUN step against a build root, never against the host.
//!
//! This module is synchronous; async callers use `spawn_blocking`. The kiln
//! process is threaded, so it never `fork()`s: [`run`] starts a fresh copy of
//! the kiln binary (`/proc/self/exe __kiln-sandbox-init`, see
//! [`SandboxSpec::init_program`]) with `std::process::Command`. That *init*
//! is single-threaded; it reads a JSON [`SandboxSpec`] from its stdin (a Unix
//! socket, also used to report setup failures back), sets up the isolation
//! and starts the command. The binary's `main` hands over to [`init_main`]
//! before parsing flags or starting threads (see [`is_init_invocation`]).
//!
//! May use: `rootfs` (to create mount points inside the root with chroot
//! semantics), `plan::values::Network`. Never: the image config, the
//! registry, the cache.
//!
//! # Isolation modes
//!
//! [`probe`] picks the strongest mode the environment allows, in this order.
//!
//! ## [`Isolation::Namespaces`]
//!
//! The init unshares mount, pid, ipc and uts namespaces (plus a user
//! namespace when kiln is not root, mapping the caller's uid and gid to 0
//! with `setgroups` denied; plus a network namespace with only `lo` up for
//! `--network=none`) and starts a second copy of itself, which is pid 1 of
//! the new pid namespace. Pid 1 makes every mount private, bind-mounts the
//! root onto itself and, while the host's root is still visible (the kernel
//! binds only from mounts of this namespace, and mounts a new `/proc` in a
//! user namespace only beside a visible one), mounts a fresh `/proc`, a
//! tmpfs `/dev` holding `null`, `zero`, `full`, `random`, `urandom` and
//! `tty` bound from the host's, `/dev/shm` (tmpfs), `/dev/pts` (a new devpts
//! instance, when the kernel allows it) and the `fd`/`stdin`/`stdout`/
//! `stderr` symlinks, binds the host's `/etc/resolv.conf` and `/etc/hosts`
//! read-only, then the caller's [`MountSpec`]s. Every target is resolved
//! with `openat2(RESOLVE_IN_ROOT)`, so a symlink or `..` in the image cannot
//! redirect a mount outside the root. Then it `pivot_root`s into the root
//! and detaches the host's root. It sets the hostname,
//! limits the capability bounding set to BuildKit's default set without
//! `CAP_MKNOD` (no `CAP_SYS_ADMIN`, `CAP_DAC_READ_SEARCH`, `CAP_SYS_MODULE`,
//! ...), switches to the step's groups, gid and uid, sets `no_new_privs` and
//! starts the command as pid 2 with `/dev/null` as stdin. Pid 1 reaps every
//! process and exits with the command's status; the kernel then kills
//! whatever is left in the namespace, so a `sleep 1000 &` does not outlive
//! the step. `--network=default` and `--network=host` share the host network.
//! Pid 1 is the kiln binary: `/proc/1/exe` inside the step names the host's
//! kiln executable (readable, never writable while it runs).
//! As real root no user namespace is used; the capability limits above are
//! what keeps the step from the host. `RLIMIT_NPROC`
//! ([`SandboxSpec::max_processes`]) binds non-root steps and every step in a
//! user namespace; the kernel exempts the host's uid 0, and kiln sets no
//! pids cgroup.
//!
//! Unprivileged (user namespace with a single-id map), only uid 0 and gid 0
//! exist inside: a step with another `USER` fails with
//! [`SandboxError::UnmappedUser`], and supplementary groups cannot be set.
//!
//! ## [`Isolation::Chroot`]
//!
//! For a hardened pod that keeps `CAP_SYS_CHROOT` but may not mount. The
//! init becomes a child subreaper, `chroot`s into the root, drops the
//! capability bounding set (as above, and also `CAP_SYS_CHROOT`, which
//! would let root leave a chroot), switches ids, sets `no_new_privs` and
//! starts the command; when the command exits it kills every descendant that
//! is still running. What a RUN sees there:
//!
//! - the root's own `/proc`, `/dev`, `/sys` directories, which are empty
//!   unless the image ships files there: no fresh `/proc` (`ps` and
//!   `/proc/self` do not work), no `/dev/null` unless the image has a node;
//! - the root's own `/etc/resolv.conf` and `/etc/hosts` (nothing from the
//!   host), but the host's network, hostname, pid and ipc namespaces: other
//!   processes of the pod are visible to `kill` with the same uid;
//! - no [`MountSpec`]: a spec with mounts is refused with
//!   [`SandboxError::MountsUnsupported`]; the executor must copy such files
//!   in and out itself.
//!
//! ## [`Isolation::HostRoot`]
//!
//! Kaniko's model: `/` of a throw-away container *is* the build root, and
//! [`SandboxSpec::root`] must be `/`. The init only changes directory, ids
//! and environment and starts the command; descendants are killed when it
//! ends, as in chroot mode. **Nothing is isolated**: the command can read
//! everything the kiln process can. Run kiln so that its binary, its state
//! directory and its credentials (`config.json`, secret files) are outside
//! the part of the filesystem that is snapshotted and are not readable by the
//! step's user, or do not use this mode. It is for containers that exist only
//! to run one build.
//!
//! # Placeholders
//!
//! A mount needs a mount point. When `/proc`, `/dev`, `/etc/resolv.conf`,
//! `/etc/hosts` or a [`MountSpec`] target is missing in the root, [`run`]
//! creates an empty directory or file there first (through the root's
//! capability handle) and removes it after the step when it is still empty,
//! restoring the parent's times when nothing else changed it. The paths are
//! listed in [`RunOutcome::placeholders`] so a snapshot can ignore them.

mod init;
mod placeholders;
mod sys;

use crate::plan::values::Network;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

pub use init::init_main;

/// `argv[1]` that makes the kiln binary act as the sandbox init.
pub const INIT_ARG: &str = "__kiln-sandbox-init";

/// `argv[1]` of the second init stage (pid 1 of the new pid namespace).
const PID1_ARG: &str = "__kiln-sandbox-pid1";

/// How many trailing output lines a failure carries.
const TAIL_LINES: usize = 20;

/// True when this process was started as the sandbox init; the binary must
/// then call [`init_main`] before doing anything else.
pub fn is_init_invocation() -> bool {
    std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == INIT_ARG || a == PID1_ARG)
}

/// How a RUN step is isolated from the host (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Mount, pid, ipc, uts (+ user, + network) namespaces and `pivot_root`.
    Namespaces,
    /// `chroot` only.
    Chroot,
    /// No isolation: the build root is `/` of a throw-away container.
    HostRoot,
}

impl Isolation {
    /// The flag spelling: `namespaces`, `chroot`, `host-root`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Namespaces => "namespaces",
            Self::Chroot => "chroot",
            Self::HostRoot => "host-root",
        }
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something to mount inside the root for one step. Sources are prepared by
/// the caller; nothing mounted is ever part of the root directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum MountSpec {
    /// A fresh tmpfs at `target` (an absolute path inside the image).
    Tmpfs {
        /// Where, inside the image.
        target: String,
        /// Size limit in bytes; the kernel's default (half the RAM) if unset.
        size: Option<u64>,
    },
    /// A host file or directory bound at `target`: a context directory, a
    /// stage root, a cache directory, a secret file (which the caller
    /// writes with mode 0400 into a private directory).
    Bind {
        /// The host path.
        source: PathBuf,
        /// Where, inside the image.
        target: String,
        /// Whether the step may write through the mount.
        read_only: bool,
    },
}

impl MountSpec {
    /// The target path inside the image.
    pub fn target(&self) -> &str {
        match self {
            Self::Tmpfs { target, .. } | Self::Bind { target, .. } => target,
        }
    }
}

/// Everything the init needs to run one step.
///
/// `Debug` prints environment variable names only: values may be secrets.
#[derive(Clone, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// The build root directory on the host (`/` for host-root).
    pub root: PathBuf,
    /// The command line, already shell-wrapped by the caller.
    pub args: Vec<String>,
    /// The complete environment of the command.
    pub env: Vec<(String, String)>,
    /// The working directory inside the image; it must exist.
    pub cwd: String,
    /// User id of the command.
    pub uid: u32,
    /// Group id of the command.
    pub gid: u32,
    /// Supplementary groups of the command.
    pub groups: Vec<u32>,
    /// Hostname inside the step (namespaces mode only).
    pub hostname: String,
    /// `RUN --network`.
    #[serde(with = "network_serde")]
    pub network: Network,
    /// Extra mounts (namespaces mode only).
    pub mounts: Vec<MountSpec>,
    /// How to isolate the step.
    pub isolation: Isolation,
    /// `RLIMIT_NPROC` for the step's user (not enforced for uid 0 outside a
    /// user namespace: the kernel exempts the host's root).
    pub max_processes: Option<u64>,
    /// `RUN --security=insecure`: keep every capability and do not set
    /// `no_new_privs` (BuildKit's privileged step; kiln allows it only with
    /// `--allow security.insecure`).
    #[serde(default)]
    pub insecure: bool,
    /// The program started as the init: the kiln binary.
    #[serde(skip, default = "default_init_program")]
    pub init_program: PathBuf,
}

fn default_init_program() -> PathBuf {
    PathBuf::from("/proc/self/exe")
}

impl SandboxSpec {
    /// A spec for `args` in `root` with these defaults: empty environment,
    /// cwd `/`, uid 0, gid 0, no supplementary groups, hostname `kiln`,
    /// default network, no mounts, namespaces isolation, no process limit,
    /// init program `/proc/self/exe`.
    pub fn new(root: impl Into<PathBuf>, args: Vec<String>) -> Self {
        Self {
            root: root.into(),
            args,
            env: Vec::new(),
            cwd: "/".to_owned(),
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            hostname: "kiln".to_owned(),
            network: Network::Default,
            mounts: Vec::new(),
            isolation: Isolation::Namespaces,
            max_processes: None,
            insecure: false,
            init_program: default_init_program(),
        }
    }
}

impl std::fmt::Debug for SandboxSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env_names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("SandboxSpec")
            .field("root", &self.root)
            .field("args", &self.args)
            .field("env_names", &env_names)
            .field("cwd", &self.cwd)
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("groups", &self.groups)
            .field("hostname", &self.hostname)
            .field("network", &self.network)
            .field("mounts", &self.mounts)
            .field("isolation", &self.isolation)
            .field("max_processes", &self.max_processes)
            .field("insecure", &self.insecure)
            .field("init_program", &self.init_program)
            .finish()
    }
}

mod network_serde {
    use crate::plan::values::{Network, parse_network};
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(n: &Network, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(n.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Network, D::Error> {
        let s = String::deserialize(d)?;
        parse_network(&s).map_err(serde::de::Error::custom)
    }
}

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The command's stdout.
    Stdout,
    /// The command's stderr.
    Stderr,
}

/// One line the command printed (without its newline; invalid UTF-8 is
/// replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// Where it was printed.
    pub stream: Stream,
    /// The text.
    pub text: String,
}

/// What a successful step left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The isolation the step ran with.
    pub isolation: Isolation,
    /// Mount points created in the root for the step (image paths, parents
    /// first). They are removed again after the step when still empty; a
    /// snapshot must ignore them either way.
    pub placeholders: Vec<String>,
}

/// Why a step could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The command ran and exited with a non-zero status.
    #[error("the command exited with code {code}")]
    Failed {
        /// Exit code (128 + signal number when killed by a signal).
        code: i32,
        /// The last lines of output, stdout and stderr interleaved.
        last_lines: Vec<String>,
    },
    /// The init could not set up the isolation or start the command.
    #[error("{message}")]
    Setup {
        /// What failed and what was expected.
        message: String,
        /// The kernel's error, when there was one.
        #[source]
        source: Option<io::Error>,
    },
    /// The step's user does not exist in an unprivileged user namespace.
    #[error(
        "cannot run as uid {uid} gid {gid}: kiln runs unprivileged and its user namespace maps only uid 0 and gid 0; run as root or use USER root"
    )]
    UnmappedUser {
        /// Requested uid.
        uid: u32,
        /// Requested gid.
        gid: u32,
    },
    /// Mounts were asked for in a mode that cannot mount.
    #[error("RUN --mount is not available with --isolation={isolation}: it cannot mount")]
    MountsUnsupported {
        /// The mode.
        isolation: Isolation,
    },
    /// Host-root isolation runs against `/` only.
    #[error("host-root isolation runs the step against / but the build root is {root}")]
    HostRootNotSlash {
        /// The root given.
        root: PathBuf,
    },
    /// The spec cannot be run at all.
    #[error("invalid sandbox spec: {reason}")]
    InvalidSpec {
        /// What is wrong.
        reason: String,
    },
    /// Mount points could not be prepared inside the root.
    #[error("cannot prepare mount point {path} in the build root {root}")]
    Placeholder {
        /// The image path.
        path: String,
        /// The root.
        root: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The init program could not be started or talked to.
    #[error("cannot start the sandbox init {program}")]
    Spawn {
        /// The init program.
        program: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The init died without an exit status (killed by a signal before it
    /// could start the command) or the pipes broke.
    #[error("the sandbox init {program} failed while {action}")]
    Init {
        /// The init program.
        program: PathBuf,
        /// What the parent was doing.
        action: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A setup failure reported by the init over its stdin socket, one JSON
/// object per line.
#[derive(Debug, Serialize, Deserialize)]
struct Report {
    /// What failed (lowercase, complete sentence without final period).
    message: String,
    /// The raw errno, if the kernel said no.
    errno: Option<i32>,
    /// Set for [`SandboxError::UnmappedUser`].
    unmapped: Option<(u32, u32)>,
}

impl Report {
    fn into_error(self) -> SandboxError {
        if let Some((uid, gid)) = self.unmapped {
            return SandboxError::UnmappedUser { uid, gid };
        }
        SandboxError::Setup {
            message: self.message,
            source: self.errno.map(io::Error::from_raw_os_error),
        }
    }
}

/// Picks the strongest isolation this environment allows, starting
/// `/proc/self/exe` to try (see [`probe_with`]).
pub fn probe() -> Isolation {
    probe_with(Path::new("/proc/self/exe"))
}

/// Picks the strongest isolation, trying namespaces in a child started from
/// `init_program` (the kiln binary): namespaces if the child can unshare and
/// mount (`/proc` in a new pid namespace), else chroot if this process has
/// `CAP_SYS_CHROOT`, else host-root.
pub fn probe_with(init_program: &Path) -> Isolation {
    let ok = Command::new(init_program)
        .args([INIT_ARG, "probe"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Isolation::Namespaces;
    }
    if sys::has_effective_cap(rustix::thread::CapabilitySet::SYS_CHROOT) {
        return Isolation::Chroot;
    }
    Isolation::HostRoot
}

/// Runs one step: starts the init, streams every output line to `output`
/// as it comes, waits, and returns the outcome; a non-zero exit is
/// [`SandboxError::Failed`] with the last lines of output.
#[tracing::instrument(skip_all, fields(isolation = %spec.isolation, root = %spec.root.display()))]
pub fn run(
    spec: &SandboxSpec,
    output: &mut dyn FnMut(OutputLine),
) -> Result<RunOutcome, SandboxError> {
    validate(spec)?;
    let mut created = placeholders::Created::default();
    if spec.isolation == Isolation::Namespaces {
        placeholders::prepare(spec, &mut created)?;
    }
    let result = run_init(spec, output);
    let placeholders = created.paths();
    created.cleanup(&spec.root);
    result?;
    Ok(RunOutcome {
        isolation: spec.isolation,
        placeholders,
    })
}

fn validate(spec: &SandboxSpec) -> Result<(), SandboxError> {
    let invalid = |reason: String| Err(SandboxError::InvalidSpec { reason });
    if spec.args.is_empty() {
        return invalid("the command line is empty".to_owned());
    }
    if !spec.cwd.starts_with('/') {
        return invalid(format!(
            "the working directory {} is not absolute",
            spec.cwd
        ));
    }
    for m in &spec.mounts {
        if !m.target().starts_with('/') || m.target() == "/" {
            return invalid(format!(
                "the mount target {} is not an absolute path below /",
                m.target()
            ));
        }
    }
    match spec.isolation {
        Isolation::Namespaces => Ok(()),
        Isolation::Chroot | Isolation::HostRoot if !spec.mounts.is_empty() => {
            Err(SandboxError::MountsUnsupported {
                isolation: spec.isolation,
            })
        }
        Isolation::HostRoot if spec.root != Path::new("/") => Err(SandboxError::HostRootNotSlash {
            root: spec.root.clone(),
        }),
        Isolation::Chroot | Isolation::HostRoot => Ok(()),
    }
}

fn run_init(spec: &SandboxSpec, output: &mut dyn FnMut(OutputLine)) -> Result<(), SandboxError> {
    let program = spec.init_program.clone();
    let init_err = |action: &'static str| {
        let program = program.clone();
        move |source| SandboxError::Init {
            program,
            action,
            source,
        }
    };
    let (mut control, child_end) = UnixStream::pair().map_err(|source| SandboxError::Spawn {
        program: program.clone(),
        source,
    })?;
    let mut child = Command::new(&program)
        .arg(INIT_ARG)
        .env_clear()
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(child_end)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SandboxError::Spawn {
            program: program.clone(),
            source,
        })?;
    // The spec goes over the socket, never on the command line or in the
    // environment of the init, where other processes could read it.
    let json = serde_json::to_vec(spec).map_err(|e| SandboxError::InvalidSpec {
        reason: format!("cannot encode it: {e}"),
    })?;
    let sent = control
        .write_all(&json)
        .and_then(|()| control.shutdown(std::net::Shutdown::Write));
    let (tx, rx) = mpsc::channel();
    let readers = [
        spawn_reader(child.stdout.take(), Stream::Stdout, tx.clone()),
        spawn_reader(child.stderr.take(), Stream::Stderr, tx),
    ];
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    for line in rx {
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.text.clone());
        output(line);
    }
    for r in readers.into_iter().flatten() {
        let _ = r.join();
    }
    let status = child.wait().map_err(init_err("waiting for it"))?;
    let mut reports = String::new();
    control
        .read_to_string(&mut reports)
        .map_err(init_err("reading its reports"))?;
    if let Some(line) = reports.lines().find(|l| !l.trim().is_empty()) {
        let report: Report = serde_json::from_str(line).map_err(|e| SandboxError::Init {
            program: program.clone(),
            action: "reading its reports",
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        return Err(report.into_error());
    }
    sent.map_err(init_err("sending the spec"))?;
    let code = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => -1,
    };
    if code != 0 {
        return Err(SandboxError::Failed {
            code,
            last_lines: tail.into(),
        });
    }
    Ok(())
}

fn spawn_reader(
    pipe: Option<impl Read + Send + 'static>,
    stream: Stream,
    tx: mpsc::Sender<OutputLine>,
) -> Option<std::thread::JoinHandle<()>> {
    let pipe = pipe?;
    Some(std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if buf.last() == Some(&b'\n') {
                        buf.pop();
                    }
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if tx.send(OutputLine { stream, text }).is_err() {
                        break;
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_without_init_program() {
        let mut spec = SandboxSpec::new("/r", vec!["/bin/sh".into(), "-c".into(), "true".into()]);
        spec.network = Network::None;
        spec.init_program = PathBuf::from("/elsewhere/kiln");
        spec.mounts.push(MountSpec::Tmpfs {
            target: "/tmp".into(),
            size: Some(1 << 20),
        });
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains("\"network\":\"none\""), "{json}");
        let back: SandboxSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back.network, Network::None);
        assert_eq!(back.mounts, spec.mounts);
        assert_eq!(back.init_program, PathBuf::from("/proc/self/exe"));
    }

    #[test]
    fn debug_hides_env_values() {
        let mut spec = SandboxSpec::new("/r", vec!["true".into()]);
        spec.env.push(("TOKEN".into(), "s3cr3t".into()));
        let dbg = format!("{spec:?}");
        assert!(dbg.contains("TOKEN"));
        assert!(!dbg.contains("s3cr3t"));
    }

    #[test]
    fn validation_refuses_mounts_without_namespaces() {
        let mut spec = SandboxSpec::new("/r", vec!["true".into()]);
        spec.isolation = Isolation::Chroot;
        spec.mounts.push(MountSpec::Tmpfs {
            target: "/tmp".into(),
            size: None,
        });
        assert!(matches!(
            validate(&spec),
            Err(SandboxError::MountsUnsupported { .. })
        ));
        spec.mounts.clear();
        spec.isolation = Isolation::HostRoot;
        assert!(matches!(
            validate(&spec),
            Err(SandboxError::HostRootNotSlash { .. })
        ));
        spec.args.clear();
        assert!(matches!(
            validate(&spec),
            Err(SandboxError::InvalidSpec { .. })
        ));
    }

    #[test]
    fn report_maps_to_typed_errors() {
        let r = Report {
            message: "cannot mount /proc".into(),
            errno: Some(1),
            unmapped: None,
        };
        let e = r.into_error();
        assert_eq!(e.to_string(), "cannot mount /proc");
        assert!(std::error::Error::source(&e).is_some());
    }
}

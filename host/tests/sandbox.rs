//! The sandbox against a real root built from the host's static busybox,
//! with the real `kiln` binary as init, in every isolation mode this
//! machine allows: namespaces as root, namespaces as an unprivileged user
//! (the test re-executes itself under `setpriv`), chroot as root, host-root.

#![expect(clippy::print_stderr, reason = "skips are reported on stderr")]

use kiln::plan::values::Network;
use kiln::sandbox::{self, Isolation, MountSpec, OutputLine, SandboxError, SandboxSpec, Stream};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

const KILN: &str = env!("CARGO_BIN_EXE_kiln");
const BUSYBOX: &str = "/bin/busybox";
/// Set in the re-executed, unprivileged copy of a test.
const UNPRIV_ENV: &str = "KILN_SANDBOX_TEST_UNPRIVILEGED";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// `<tmp>/root` with busybox and its applets in /bin, /etc/passwd with
    /// root and user 1000, /etc/group, /tmp, /work; `<tmp>/sentinel` next
    /// to it, outside the root.
    fn new() -> Option<Self> {
        if !Path::new(BUSYBOX).is_file() {
            eprintln!("skipping: {BUSYBOX} (busybox-static) is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("root");
        for d in ["bin", "etc", "tmp", "work", "root"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
        let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                symlink("busybox", root.join("bin").join(applet)).unwrap();
            }
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/work:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
        std::fs::write(dir.path().join("sentinel"), "host secret\n").unwrap();
        Some(Self { dir })
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn sentinel(&self) -> PathBuf {
        self.dir.path().join("sentinel")
    }

    fn spec(&self, isolation: Isolation, script: &str) -> SandboxSpec {
        let mut spec = SandboxSpec::new(
            self.root(),
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        );
        spec.env = vec![
            ("PATH".into(), "/bin".into()),
            ("GREETING".into(), "hello from env".into()),
        ];
        spec.isolation = isolation;
        spec.init_program = PathBuf::from(KILN);
        spec
    }
}

/// Runs and returns stdout lines; panics with the error otherwise.
fn run_ok(spec: &SandboxSpec) -> (Vec<String>, sandbox::RunOutcome) {
    let mut out = Vec::new();
    let outcome = sandbox::run(spec, &mut |l: OutputLine| {
        if l.stream == Stream::Stdout {
            out.push(l.text);
        } else {
            out.push(format!("stderr: {}", l.text));
        }
    })
    .unwrap_or_else(|e| panic!("{spec:?}: {e} ({:?})", std::error::Error::source(&e)));
    (out, outcome)
}

fn host_has_marker(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
    })
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The checks every mode must pass.
fn common_checks(fx: &Fixture, isolation: Isolation, uid: u32) {
    // Output is captured, env and cwd are applied.
    let mut spec = fx.spec(isolation, "echo hi; echo \"$GREETING\"; pwd; id -u; id -g");
    spec.cwd = "/work".into();
    spec.uid = uid;
    spec.gid = uid;
    let (out, outcome) = run_ok(&spec);
    let uid_s = uid.to_string();
    assert_eq!(
        out,
        [
            "hi",
            "hello from env",
            "/work",
            uid_s.as_str(),
            uid_s.as_str()
        ]
    );
    assert_eq!(outcome.isolation, isolation);

    // Exit codes propagate with the last lines of output.
    let spec = fx.spec(
        isolation,
        "i=0; while [ $i -lt 30 ]; do echo line$i; i=$((i+1)); done; exit 3",
    );
    match sandbox::run(&spec, &mut |_| {}) {
        Err(SandboxError::Failed { code, last_lines }) => {
            assert_eq!(code, 3);
            assert_eq!(last_lines.len(), 20);
            assert_eq!(last_lines.last().map(String::as_str), Some("line29"));
        }
        other => panic!("expected a failure, got {other:?}"),
    }

    // Writes land in the root, never in the host's /etc.
    let name = format!("kiln-sandbox-test-{}", std::process::id());
    let spec = fx.spec(isolation, &format!("echo written > /etc/{name}"));
    run_ok(&spec);
    assert_eq!(
        std::fs::read_to_string(fx.root().join("etc").join(&name)).unwrap(),
        "written\n"
    );
    assert!(!Path::new("/etc").join(&name).exists());

    // A file outside the root is invisible.
    let sentinel = fx.sentinel();
    let spec = fx.spec(
        isolation,
        &format!(
            "cat {} > /tmp/leak 2>&1; cat /tmp/leak; ls /",
            sentinel.display()
        ),
    );
    let (out, _) = run_ok(&spec);
    assert!(!out.iter().any(|l| l.contains("host secret")), "{out:?}");
    assert!(out.iter().any(|l| l.contains("No such file")), "{out:?}");

    // A process left running does not outlive the step.
    let marker = format!("kiln-marker-{}-{}", std::process::id(), isolation.as_str());
    let spec = fx.spec(
        isolation,
        &format!(
            "rm -f /tmp/bgup; sh -c 'echo up > /tmp/bgup; sleep 1000; true {marker}' </etc/passwd >/tmp/bg 2>&1 & \
             n=0; while [ ! -s /tmp/bgup ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; \
             [ -s /tmp/bgup ] && echo started"
        ),
    );
    let (out, _) = run_ok(&spec);
    assert_eq!(out, ["started"]);
    assert!(!host_has_marker(&marker), "{marker} survived the step");
}

#[test]
fn namespaces_as_root() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let Some(fx) = Fixture::new() else { return };
    common_checks(&fx, Isolation::Namespaces, 1000);
    namespace_checks(&fx);

    // The process limit holds and a bounded fork storm ends with the step.
    let marker = format!("kiln-storm-{}", std::process::id());
    let mut spec = fx.spec(
        Isolation::Namespaces,
        &format!(
            "i=0; while [ $i -lt 200 ]; do sh -c 'sleep 1000; true {marker}' 2>/dev/null & i=$((i+1)); done; echo done"
        ),
    );
    spec.uid = 1000;
    spec.gid = 1000;
    spec.max_processes = Some(64);
    // 200 processes do not fit under a limit of 64: the shell cannot fork.
    match sandbox::run(&spec, &mut |_| {}) {
        Err(SandboxError::Failed { last_lines, .. }) => {
            assert!(
                last_lines.iter().any(|l| l.contains("fork")),
                "{last_lines:?}"
            );
        }
        other => panic!("the storm was not limited: {other:?}"),
    }
    assert!(!host_has_marker(&marker), "a storm process survived");
}

/// Checks that only namespaces mode passes, for root and unprivileged.
fn namespace_checks(fx: &Fixture) {
    // Our own pid 1 and a fresh /proc.
    let spec = fx.spec(
        Isolation::Namespaces,
        "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$; hostname",
    );
    let (out, outcome) = run_ok(&spec);
    assert!(out[0].contains("__kiln-sandbox-pid1"), "{out:?}");
    assert_eq!(out[1], "2");
    assert_eq!(out[2], "kiln");
    // Mount points created for the step are gone again.
    assert!(
        outcome.placeholders.contains(&"/proc".to_owned()),
        "{outcome:?}"
    );
    assert!(!fx.root().join("proc").exists());
    assert!(!fx.root().join("dev").exists());
    assert!(!fx.root().join("etc/resolv.conf").exists());

    // /dev is minimal and usable.
    let spec = fx.spec(
        Isolation::Namespaces,
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c; ls /dev | tr '\\n' ' '",
    );
    let (out, _) = run_ok(&spec);
    assert_eq!(out[0].trim(), "4");
    for d in ["null", "zero", "urandom", "shm", "fd"] {
        assert!(out[1].split(' ').any(|x| x == d), "{d} missing: {out:?}");
    }

    // --network=none has only lo, and it is up.
    let mut spec = fx.spec(
        Isolation::Namespaces,
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; cat /sys/class/net/lo/operstate 2>/dev/null; ip link show lo | head -1",
    );
    spec.network = Network::None;
    let (out, _) = run_ok(&spec);
    assert_eq!(out[0], "lo", "{out:?}");
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[1].contains("UP"), "{out:?}");

    // The host's resolv.conf is visible read-only and never lands in the root.
    if Path::new("/etc/resolv.conf").is_file() {
        let spec = fx.spec(
            Isolation::Namespaces,
            "cat /etc/resolv.conf > /dev/null && echo readable; (echo x >> /etc/resolv.conf) 2>/dev/null || echo read-only",
        );
        let (out, _) = run_ok(&spec);
        assert_eq!(out, ["readable", "read-only"]);
    }

    // Bind and tmpfs mounts at their targets; nothing lands in the root.
    let src = tempfile::tempdir().unwrap();
    std::fs::set_permissions(src.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(src.path().join("input.txt"), "from the context\n").unwrap();
    let mut spec = fx.spec(
        Isolation::Namespaces,
        "cat /mnt/ctx/input.txt; echo tmp > /scratch/file && cat /scratch/file; \
         (echo no > /mnt/ctx/w) 2>/dev/null || echo ro; echo yes > /cache/c && echo rw",
    );
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    spec.mounts = vec![
        MountSpec::Bind {
            source: src.path().to_path_buf(),
            target: "/mnt/ctx".into(),
            read_only: true,
        },
        MountSpec::Tmpfs {
            target: "/scratch".into(),
            size: Some(1 << 20),
        },
        MountSpec::Bind {
            source: cache.path().to_path_buf(),
            target: "/cache".into(),
            read_only: false,
        },
    ];
    let (out, outcome) = run_ok(&spec);
    assert_eq!(out, ["from the context", "tmp", "ro", "rw"]);
    assert_eq!(
        std::fs::read_to_string(cache.path().join("c")).unwrap(),
        "yes\n"
    );
    for p in ["/mnt", "/mnt/ctx", "/scratch", "/cache"] {
        assert!(outcome.placeholders.contains(&p.to_owned()), "{outcome:?}");
        assert!(!fx.root().join(&p[1..]).exists(), "{p} left in the root");
    }

    // A missing working directory is a clear setup error.
    let mut spec = fx.spec(Isolation::Namespaces, "true");
    spec.cwd = "/nonexistent".into();
    let err = sandbox::run(&spec, &mut |_| {}).unwrap_err();
    assert!(
        err.to_string()
            .contains("the working directory /nonexistent does not exist"),
        "{err}"
    );
}

#[test]
fn namespaces_unprivileged() {
    if std::env::var_os(UNPRIV_ENV).is_some() {
        let Some(fx) = Fixture::new() else { return };
        assert!(!is_root());
        common_checks(&fx, Isolation::Namespaces, 0);
        namespace_checks(&fx);
        let mut spec = fx.spec(Isolation::Namespaces, "true");
        spec.uid = 1000;
        let err = sandbox::run(&spec, &mut |_| {}).unwrap_err();
        assert!(
            matches!(err, SandboxError::UnmappedUser { uid: 1000, .. }),
            "{err}"
        );
        assert_eq!(sandbox::probe_with(Path::new(KILN)), Isolation::Namespaces);
        return;
    }
    if !is_root() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipping: needs root and setpriv to drop to an unprivileged user");
        return;
    }
    let me = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(me)
        .args([
            "--exact",
            "namespaces_unprivileged",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(UNPRIV_ENV, "1")
        .env("TMPDIR", "/tmp")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "unprivileged run failed:\n{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
fn chroot_as_root() {
    if !is_root() {
        eprintln!("skipping: needs root (CAP_SYS_CHROOT)");
        return;
    }
    let Some(fx) = Fixture::new() else { return };
    // Busybox sh opens /dev/null for background jobs; a chroot has only
    // what the image has, so give it a stand-in (an empty regular file).
    std::fs::create_dir(fx.root().join("dev")).unwrap();
    std::fs::write(fx.root().join("dev/null"), "").unwrap();
    common_checks(&fx, Isolation::Chroot, 1000);
    // No fresh /proc, nothing mounted, no placeholders.
    let spec = fx.spec(Isolation::Chroot, "ls /proc 2>&1 | head -1; echo end");
    let (out, outcome) = run_ok(&spec);
    assert!(out[0].contains("No such file"), "{out:?}");
    assert!(outcome.placeholders.is_empty());
    // Mounts are refused.
    let mut spec = fx.spec(Isolation::Chroot, "true");
    spec.mounts.push(MountSpec::Tmpfs {
        target: "/tmp".into(),
        size: None,
    });
    assert!(matches!(
        sandbox::run(&spec, &mut |_| {}),
        Err(SandboxError::MountsUnsupported { .. })
    ));
}

#[test]
fn host_root() {
    let Some(fx) = Fixture::new() else { return };
    // Host-root runs against / itself: only harmless commands here.
    let mut spec = fx.spec(Isolation::HostRoot, "echo hi; pwd; echo \"$GREETING\"");
    spec.root = PathBuf::from("/");
    spec.env[0].1 = "/usr/bin:/bin".into();
    spec.args[0] = "/bin/sh".into();
    spec.cwd = "/tmp".into();
    let me = rustix::process::geteuid().as_raw();
    spec.uid = me;
    spec.gid = rustix::process::getegid().as_raw();
    let (out, _) = run_ok(&spec);
    assert_eq!(out, ["hi", "/tmp", "hello from env"]);

    let marker = format!("kiln-marker-{}-hostroot", std::process::id());
    spec.args[2] = format!("sh -c 'sleep 1000; true {marker}' >/dev/null 2>&1 & exit 4");
    assert!(matches!(
        sandbox::run(&spec, &mut |_| {}),
        Err(SandboxError::Failed { code: 4, .. })
    ));
    assert!(!host_has_marker(&marker));

    spec.root = fx.root();
    assert!(matches!(
        sandbox::run(&spec, &mut |_| {}),
        Err(SandboxError::HostRootNotSlash { .. })
    ));
}

#[test]
fn probe_finds_namespaces_here() {
    // This machine allows namespaces; the ladder must find them.
    assert_eq!(sandbox::probe_with(Path::new(KILN)), Isolation::Namespaces);
}

//! The sandbox init: a freshly exec'd, single-threaded copy of kiln.
//!
//! Stage 1 (`__kiln-sandbox-init`) reads the spec from its stdin socket. In
//! namespaces mode it unshares, then starts stage 2 (`__kiln-sandbox-pid1`),
//! pid 1 of the new pid namespace, which builds the root's mounts, switches
//! ids and runs the command. In chroot and host-root modes stage 1 does the
//! work itself. Setup failures go back over the socket as a [`Report`]; the
//! command's output goes straight to the inherited stdout and stderr.

use super::placeholders::HOST_FILES;
use super::{INIT_ARG, Isolation, MountSpec, PID1_ARG, Report, SandboxSpec, sys};
use crate::plan::values::Network;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::process::{Pid, Signal, WaitOptions};
use rustix::thread::UnshareFlags;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

/// Exit code of the init when it reports a setup failure.
const SETUP_FAILED: i32 = 125;

/// Host device nodes bound into the step's `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Entry point of the init; never returns. The kiln binary calls it first
/// thing when [`super::is_init_invocation`] is true, before any thread
/// starts.
pub fn init_main() -> ! {
    let mut args = std::env::args_os().skip(1);
    let stage = args.next();
    let probe = args.next().is_some_and(|a| a == "probe");
    let code = match (stage, probe) {
        (Some(s), true) if s == INIT_ARG => probe_stage1(),
        (Some(s), true) if s == PID1_ARG => probe_pid1(),
        (Some(s), false) if s == PID1_ARG => pid1_main(),
        _ => stage1_main(),
    };
    std::process::exit(code)
}

/// The channel back to the parent.
struct Reporter(Option<UnixStream>);

impl Reporter {
    fn fail(&mut self, message: String, errno: Option<i32>) -> i32 {
        self.send(&Report {
            message,
            errno,
            unmapped: None,
        })
    }

    fn send(&mut self, report: &Report) -> i32 {
        if let (Some(sock), Ok(mut line)) = (self.0.as_mut(), serde_json::to_vec(report)) {
            line.push(b'\n');
            let _ = sock.write_all(&line);
        }
        SETUP_FAILED
    }
}

fn errno_of(e: &std::io::Error) -> Option<i32> {
    e.raw_os_error()
}

/// Reads the spec from stdin (to EOF), keeps the socket as the report
/// channel (close-on-exec) and puts `/dev/null` on stdin.
fn take_spec() -> Result<(SandboxSpec, Reporter), i32> {
    let stdin = std::io::stdin();
    let report_fd = rustix::io::fcntl_dupfd_cloexec(stdin.as_fd(), 3).ok();
    let mut reporter = Reporter(report_fd.map(UnixStream::from));
    let mut json = Vec::new();
    if let Err(e) = stdin.lock().read_to_end(&mut json) {
        return Err(reporter.fail(
            "cannot read the sandbox spec from the parent".into(),
            errno_of(&e),
        ));
    }
    let spec: SandboxSpec = match serde_json::from_slice(&json) {
        Ok(s) => s,
        Err(e) => {
            return Err(reporter.fail(format!("cannot decode the sandbox spec: {e}"), None));
        }
    };
    let devnull = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty());
    match devnull.and_then(|fd| rustix::stdio::dup2_stdin(&fd)) {
        Ok(()) => Ok((spec, reporter)),
        Err(e) => Err(reporter.fail(
            "cannot open the host's /dev/null".into(),
            Some(e.raw_os_error()),
        )),
    }
}

fn exit_code(status: rustix::process::WaitStatus) -> i32 {
    status
        .exit_status()
        .or_else(|| status.terminating_signal().map(|s| 128 + s))
        .unwrap_or(SETUP_FAILED)
}

fn stage1_main() -> i32 {
    let (spec, mut rep) = match take_spec() {
        Ok(v) => v,
        Err(code) => return code,
    };
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    match spec.isolation {
        Isolation::Namespaces => namespaces_stage1(&spec, &mut rep),
        Isolation::Chroot => supervise(&spec, &mut rep, true),
        Isolation::HostRoot => supervise(&spec, &mut rep, false),
    }
}

/// Namespaces wanted for `network`, plus a user namespace when not root.
fn namespace_flags(network: Network, rootless: bool) -> UnshareFlags {
    let mut flags =
        UnshareFlags::NEWNS | UnshareFlags::NEWPID | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS;
    if rootless {
        flags |= UnshareFlags::NEWUSER;
    }
    if network == Network::None {
        flags |= UnshareFlags::NEWNET;
    }
    flags
}

/// Unshares and writes the id maps; the message says what to do instead.
fn enter_namespaces(network: Network) -> Result<(), (String, Option<i32>)> {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let rootless = uid != 0;
    let flags = namespace_flags(network, rootless);
    if let Err(e) = sys::unshare_namespaces(flags) {
        let message = if rootless && matches!(e, Errno::PERM | Errno::NOSPC | Errno::INVAL) {
            "cannot create a user namespace: unprivileged user namespaces are disabled \
             (sysctl kernel.unprivileged_userns_clone=0 or user.max_user_namespaces=0) or \
             forbidden by a seccomp profile; use --isolation=chroot"
                .to_owned()
        } else {
            "cannot create mount, pid, ipc and uts namespaces: the kernel refused \
             (a container without CAP_SYS_ADMIN or a seccomp profile forbids unshare); \
             use --isolation=chroot"
                .to_owned()
        };
        return Err((message, Some(e.raw_os_error())));
    }
    if rootless && let Err(e) = sys::write_single_id_maps(uid, gid) {
        return Err((
            format!("cannot map uid {uid} and gid {gid} to root in the new user namespace"),
            errno_of(&e),
        ));
    }
    Ok(())
}

fn namespaces_stage1(spec: &SandboxSpec, rep: &mut Reporter) -> i32 {
    let rootless = !rustix::process::geteuid().is_root();
    if rootless && (spec.uid != 0 || spec.gid != 0) {
        return rep.send(&Report {
            message: String::new(),
            errno: None,
            unmapped: Some((spec.uid, spec.gid)),
        });
    }
    if let Err((message, errno)) = enter_namespaces(spec.network) {
        return rep.fail(message, errno);
    }
    let (mut to_pid1, pid1_end) = match UnixStream::pair() {
        Ok(p) => p,
        Err(e) => return rep.fail("cannot create a socket pair".into(), errno_of(&e)),
    };
    let child = Command::new("/proc/self/exe")
        .arg(PID1_ARG)
        .env_clear()
        .stdin(Stdio::from(OwnedFd::from(pid1_end)))
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            return rep.fail(
                "cannot start pid 1 of the new pid namespace".into(),
                errno_of(&e),
            );
        }
    };
    let sent = serde_json::to_vec(spec)
        .map_err(std::io::Error::other)
        .and_then(|json| to_pid1.write_all(&json))
        .and_then(|()| to_pid1.shutdown(std::net::Shutdown::Write));
    // Relay pid 1's reports until it exits (its end is close-on-exec).
    let mut reports = Vec::new();
    let _ = to_pid1.read_to_end(&mut reports);
    if let Some(sock) = rep.0.as_mut() {
        let _ = sock.write_all(&reports);
    }
    let pid = Pid::from_child(&child);
    let code = match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
        Ok(Some((_, status))) => exit_code(status),
        _ => SETUP_FAILED,
    };
    if let Err(e) = sent
        && reports.is_empty()
    {
        return rep.fail("cannot send the spec to pid 1".into(), errno_of(&e));
    }
    code
}

fn fd_path(fd: &OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Flags a read-only remount of a bind mount must keep: in a user namespace
/// the kernel refuses to clear `nosuid`, `nodev` or `noexec` once locked.
fn locked_flags(fd: &OwnedFd) -> MountFlags {
    use rustix::fs::StatVfsMountFlags as F;
    let Ok(st) = rustix::fs::fstatvfs(fd) else {
        return MountFlags::empty();
    };
    let mut out = MountFlags::empty();
    for (from, to) in [
        (F::NOSUID, MountFlags::NOSUID),
        (F::NODEV, MountFlags::NODEV),
        (F::NOEXEC, MountFlags::NOEXEC),
        (F::NOATIME, MountFlags::NOATIME),
        (F::NODIRATIME, MountFlags::NODIRATIME),
        (F::RELATIME, MountFlags::RELATIME),
    ] {
        if st.f_flag.contains(from) {
            out |= to;
        }
    }
    out
}

fn remount_read_only(target: &str, locked: MountFlags) -> Result<(), Errno> {
    rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY | locked, "")
}

type Step = Result<(), (String, Option<i32>)>;

fn step<T>(r: Result<T, Errno>, what: impl FnOnce() -> String) -> Result<T, (String, Option<i32>)> {
    r.map_err(|e| (what(), Some(e.raw_os_error())))
}

/// A mount target inside the root, resolved with chroot semantics
/// (`RESOLVE_IN_ROOT`: symlinks and `..` never leave the root), as an
/// `O_PATH` handle whose `/proc/self/fd` path `mount` accepts.
fn target_in(rootfd: &OwnedFd, path: &str) -> Result<OwnedFd, (String, Option<i32>)> {
    use rustix::fs::ResolveFlags;
    step(
        rustix::fs::openat2(
            rootfd,
            path.trim_start_matches('/'),
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ),
        || format!("cannot find the mount point {path} in the build root"),
    )
}

/// Builds the step's filesystem view: private mounts, the root bound onto
/// itself, /proc, /dev, host files and the caller's mounts, all while the
/// host's root is still visible (the kernel binds only from mounts of this
/// namespace and mounts a new /proc in a user namespace only next to a
/// visible one), then `pivot_root` and detach the host's root.
fn build_mounts(spec: &SandboxSpec) -> Step {
    let root = spec.root.to_string_lossy().into_owned();
    step(
        rustix::mount::mount_change(
            "/",
            MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
        ),
        || "cannot make the mounts of the new mount namespace private".into(),
    )?;
    step(rustix::mount::mount_bind_recursive(&*root, &*root), || {
        format!("cannot bind-mount the build root {root} onto itself")
    })?;
    let rootfd = step(
        rustix::fs::open(
            &*root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ),
        || format!("cannot open the build root {root}"),
    )?;
    let proc_dir = target_in(&rootfd, "/proc")?;
    step(
        rustix::mount::mount(
            "proc",
            fd_path(&proc_dir).as_str(),
            "proc",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            None,
        ),
        || "cannot mount a fresh /proc in the new pid namespace".into(),
    )?;
    mount_dev(&rootfd)?;
    for f in HOST_FILES {
        if !std::path::Path::new(f).is_file() {
            continue;
        }
        let target = target_in(&rootfd, f)?;
        step(
            rustix::mount::mount_bind(f, fd_path(&target).as_str()),
            || format!("cannot bind the host's {f} into the root"),
        )?;
        let mounted = target_in(&rootfd, f)?;
        let locked = locked_flags(&mounted);
        step(
            remount_read_only(fd_path(&mounted).as_str(), locked),
            || format!("cannot make {f} read-only"),
        )?;
    }
    for m in &spec.mounts {
        let target = target_in(&rootfd, m.target())?;
        let at = fd_path(&target);
        match m {
            MountSpec::Tmpfs { target, size } => {
                let data = size.map(|s| format!("size={s}"));
                let data_c = data.as_deref().map(std::ffi::CString::new).transpose();
                let data_c = data_c.map_err(|_| ("invalid tmpfs size".to_owned(), None))?;
                step(
                    rustix::mount::mount(
                        "tmpfs",
                        at.as_str(),
                        "tmpfs",
                        MountFlags::NOSUID | MountFlags::NODEV,
                        data_c.as_deref(),
                    ),
                    || format!("cannot mount a tmpfs at {target}"),
                )?;
            }
            MountSpec::Bind {
                source,
                target,
                read_only,
            } => {
                step(
                    rustix::mount::mount_bind_recursive(source.as_path(), at.as_str()),
                    || format!("cannot bind-mount {} onto {target}", source.display()),
                )?;
                if *read_only {
                    let mounted = target_in(&rootfd, target)?;
                    let locked = locked_flags(&mounted);
                    step(
                        remount_read_only(fd_path(&mounted).as_str(), locked),
                        || format!("cannot make the mount at {target} read-only"),
                    )?;
                }
            }
        }
    }
    drop(rootfd);
    step(rustix::process::chdir(&*root), || {
        format!("cannot enter the build root {root}")
    })?;
    step(rustix::process::pivot_root(".", "."), || {
        format!("cannot pivot_root into the build root {root}")
    })?;
    step(rustix::mount::unmount(".", UnmountFlags::DETACH), || {
        "cannot detach the host's root after pivot_root".into()
    })?;
    step(rustix::process::chdir("/"), || {
        "cannot enter the new root".into()
    })?;
    Ok(())
}

/// A tmpfs `/dev` with the host's harmless devices, `/dev/shm`, `/dev/pts`
/// and the usual symlinks.
fn mount_dev(rootfd: &OwnedFd) -> Step {
    let dev = target_in(rootfd, "/dev")?;
    step(
        rustix::mount::mount(
            "tmpfs",
            fd_path(&dev).as_str(),
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NOEXEC,
            Some(c"mode=755,size=65536k"),
        ),
        || "cannot mount a tmpfs on /dev".into(),
    )?;
    // Re-open: the handle above is the directory under the new tmpfs.
    let dev = target_in(rootfd, "/dev")?;
    for name in DEVICES {
        let host = format!("/dev/{name}");
        if !std::path::Path::new(&host).exists() {
            continue;
        }
        let node = step(
            rustix::fs::openat(
                &dev,
                name,
                OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from(0o666),
            ),
            || format!("cannot create {host} in the root"),
        )?;
        step(
            rustix::mount::mount_bind(host.as_str(), fd_path(&node).as_str()),
            || format!("cannot bind the host's {host}"),
        )?;
    }
    let mkdir = |name: &str| {
        step(rustix::fs::mkdirat(&dev, name, Mode::from(0o755)), || {
            format!("cannot create /dev/{name}")
        })?;
        target_in(rootfd, &format!("/dev/{name}"))
    };
    let shm = mkdir("shm")?;
    step(
        rustix::mount::mount(
            "shm",
            fd_path(&shm).as_str(),
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            Some(c"mode=1777,size=65536k"),
        ),
        || "cannot mount a tmpfs on /dev/shm".into(),
    )?;
    let pts = mkdir("pts")?;
    // A private devpts is a convenience (`script`, `ssh -t`); go without it
    // where the kernel refuses.
    if rustix::mount::mount(
        "devpts",
        fd_path(&pts).as_str(),
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        Some(c"newinstance,ptmxmode=0666,mode=0620"),
    )
    .is_ok()
    {
        let _ = rustix::fs::symlinkat("pts/ptmx", &dev, "ptmx");
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        step(rustix::fs::symlinkat(to, &dev, link), || {
            format!("cannot create /dev/{link}")
        })?;
    }
    Ok(())
}

fn pid1_main() -> i32 {
    let (spec, mut rep) = match take_spec() {
        Ok(v) => v,
        Err(code) => return code,
    };
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    if spec.network == Network::None
        && let Err(e) = sys::loopback_up()
    {
        return rep.fail(
            "cannot bring up lo in the new network namespace".into(),
            errno_of(&e),
        );
    }
    if let Err((message, errno)) = build_mounts(&spec) {
        return rep.fail(message, errno);
    }
    if let Err(e) = rustix::system::sethostname(spec.hostname.as_bytes()) {
        return rep.fail(
            format!("cannot set the hostname to {}", spec.hostname),
            Some(e.raw_os_error()),
        );
    }
    if let Err((message, errno)) = become_user(&spec, true, has_single_id_map()) {
        return rep.fail(message, errno);
    }
    let child = match start_command(&spec) {
        Ok(c) => c,
        Err((message, errno)) => return rep.fail(message, errno),
    };
    drop(rep);
    // Reap everything; orphans are re-parented to us. When we exit, the
    // kernel kills whatever is left in the pid namespace.
    let ours = Pid::from_child(&child);
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid == ours => return exit_code(status),
            Ok(_) => {}
            Err(Errno::INTR) => {}
            Err(_) => return SETUP_FAILED,
        }
    }
}

/// True when this process runs in a user namespace that maps a single id
/// (the unprivileged case: only uid 0 exists inside).
fn has_single_id_map() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
        let lines: Vec<&str> = m.lines().collect();
        lines.len() == 1 && lines[0].split_whitespace().nth(2) == Some("1")
    })
}

/// Limits capabilities and processes, switches groups, gid and uid, sets
/// `no_new_privs`. `single_id_map`: only uid/gid 0 exist and `setgroups`
/// is denied.
fn become_user(spec: &SandboxSpec, keep_chroot: bool, single_id_map: bool) -> Step {
    if let Some(max) = spec.max_processes {
        let limit = rustix::process::Rlimit {
            current: Some(max),
            maximum: Some(max),
        };
        step(
            rustix::process::setrlimit(rustix::process::Resource::Nproc, limit),
            || format!("cannot limit the step to {max} processes"),
        )?;
    }
    // `RUN --security=insecure`: the step keeps every capability the
    // sandbox has (BuildKit's privileged mode); only the ids change.
    if !spec.insecure {
        step(sys::limit_bounding_set(keep_chroot), || {
            "cannot limit the capability bounding set".into()
        })?;
    }
    use rustix::thread::{Gid, Uid};
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    let privileged = euid == 0 && !single_id_map;
    if privileged {
        let groups: Vec<Gid> = spec.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        step(rustix::thread::set_thread_groups(&groups), || {
            format!("cannot set the supplementary groups {:?}", spec.groups)
        })?;
    }
    if spec.gid != egid {
        let g = Gid::from_raw(spec.gid);
        step(rustix::thread::set_thread_res_gid(g, g, g), || {
            format!("cannot switch to gid {}", spec.gid)
        })?;
    }
    if spec.uid != euid {
        let u = Uid::from_raw(spec.uid);
        step(rustix::thread::set_thread_res_uid(u, u, u), || {
            format!("cannot switch to uid {}", spec.uid)
        })?;
    }
    if spec.insecure {
        return Ok(());
    }
    if rustix::process::geteuid().is_root() {
        step(sys::limit_capability_sets(keep_chroot), || {
            "cannot limit the capability sets".into()
        })?;
    }
    step(rustix::thread::set_no_new_privs(true), || {
        "cannot set no_new_privs".into()
    })?;
    Ok(())
}

fn start_command(spec: &SandboxSpec) -> Result<std::process::Child, (String, Option<i32>)> {
    match std::fs::metadata(&spec.cwd) {
        Ok(m) if m.is_dir() => {}
        _ => {
            return Err((
                format!(
                    "the working directory {} does not exist in the build root (WORKDIR creates it)",
                    spec.cwd
                ),
                None,
            ));
        }
    }
    let (program, rest) = spec
        .args
        .split_first()
        .ok_or(("empty command line".to_owned(), None))?;
    Command::new(program)
        .args(rest)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            (
                format!("cannot start {program} in the build root"),
                errno_of(&e),
            )
        })
}

/// Chroot and host-root: run the command as a child of this subreaper and
/// kill every descendant left when it exits.
fn supervise(spec: &SandboxSpec, rep: &mut Reporter, chroot: bool) -> i32 {
    let children = match rustix::fs::open(
        "/proc/thread-self/children",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            return rep.fail(
                "cannot open /proc/thread-self/children to track the step's processes".into(),
                Some(e.raw_os_error()),
            );
        }
    };
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        return rep.fail(
            "cannot become a child subreaper".into(),
            Some(e.raw_os_error()),
        );
    }
    if chroot {
        let root = spec.root.to_string_lossy().into_owned();
        let entered = rustix::process::chdir(&*root)
            .and_then(|()| rustix::process::chroot("."))
            .and_then(|()| rustix::process::chdir("/"));
        if let Err(e) = entered {
            return rep.fail(
                format!("cannot chroot into the build root {root}: CAP_SYS_CHROOT is needed"),
                Some(e.raw_os_error()),
            );
        }
    }
    let euid = rustix::process::geteuid().as_raw();
    if euid != 0 && (spec.uid != euid || spec.gid != rustix::process::getegid().as_raw()) {
        return rep.fail(
            format!(
                "cannot run as uid {} gid {}: kiln is not root (uid {euid})",
                spec.uid, spec.gid
            ),
            None,
        );
    }
    if let Err((message, errno)) = become_user(spec, false, false) {
        return rep.fail(message, errno);
    }
    // Keep the step from ptracing this process and using its handles.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let child = match start_command(spec) {
        Ok(c) => c,
        Err((message, errno)) => return rep.fail(message, errno),
    };
    let ours = Pid::from_child(&child);
    let mut code = None;
    loop {
        if code.is_some() {
            for pid in read_children(&children) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid == ours => code = Some(exit_code(status)),
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => break,
        }
    }
    code.unwrap_or(SETUP_FAILED)
}

fn read_children(fd: &OwnedFd) -> Vec<Pid> {
    let mut buf = vec![0u8; 65536];
    let n = rustix::io::pread(fd, &mut buf, 0).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter_map(Pid::from_raw)
        .collect()
}

/// `__kiln-sandbox-init probe`: can namespaces be set up here?
fn probe_stage1() -> i32 {
    if enter_namespaces(Network::Default).is_err() {
        return 1;
    }
    match Command::new("/proc/self/exe")
        .args([PID1_ARG, "probe"])
        .env_clear()
        .status()
    {
        Ok(s) if s.success() => 0,
        _ => 1,
    }
}

/// Pid 1 of the probe: private mounts and a fresh /proc on a scratch tmpfs.
fn probe_pid1() -> i32 {
    let ok = rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .and_then(|()| rustix::mount::mount("tmpfs", "/tmp", "tmpfs", MountFlags::empty(), None))
    .and_then(|()| rustix::fs::mkdir("/tmp/proc", Mode::from(0o755)))
    .and_then(|()| rustix::mount::mount("proc", "/tmp/proc", "proc", MountFlags::empty(), None));
    i32::from(ok.is_err())
}

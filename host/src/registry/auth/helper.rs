//! Running a `docker-credential-<name>` helper, as the docker CLI does
//! (docker-credential-helpers `client.Get`): `docker-credential-<name> get`
//! with the server URL on stdin and `{"ServerURL","Username","Secret"}` on
//! stdout; on failure the helper prints a message and exits non-zero, and
//! the message `credentials not found in native keychain` means "nothing
//! stored", which is not an error.
//!
//! The helper runs in its own process group so that a timeout kills it and
//! everything it started (a shell script's `sleep`, say), and its output is
//! read on threads with a deadline, so a grandchild that keeps the pipes
//! open cannot hang the build either.

use serde_json::Value;
use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// What helpers print, on stdout, when they hold nothing for a server
/// (docker-credential-helpers `credentials.errCredentialsNotFoundMessage`).
const NOT_FOUND_MESSAGE: &str = "credentials not found in native keychain";

/// The username by which a helper says its secret is an identity token
/// (docker CLI `credentials.tokenUsername`).
pub(super) const TOKEN_USERNAME: &str = "<token>";

/// At most this much of a helper's output is kept; the rest is drained.
const MAX_OUTPUT: u64 = 1 << 20;

/// At most this many bytes of a failing helper's message go into an error.
const MAX_MESSAGE: usize = 512;

/// The file name of the helper called `name` in a config file.
pub(super) fn binary_name(name: &str) -> String {
    format!("docker-credential-{name}")
}

/// Finds `binary` in the absolute directories of a `PATH`-style list.
///
/// Relative and empty entries are skipped: a helper is never run from the
/// current directory (Go's `exec.LookPath` refuses them too, `ErrDot`).
pub(super) fn find_on_path(binary: &str, search: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// What a helper answered.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// Stored credentials (either may be empty).
    Found {
        /// `Username`; [`TOKEN_USERNAME`] when `secret` is an identity token.
        username: String,
        /// `Secret`.
        secret: String,
    },
    /// The helper holds nothing for this server.
    NotFound,
}

/// A helper that ran and failed: its exit status and what it said.
#[derive(Debug, thiserror::Error)]
pub struct HelperFailure {
    status: ExitStatus,
    message: String,
}

impl fmt::Display for HelperFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Why a helper's successful output cannot be used. Names the problem,
/// never the output (which holds the secret).
#[derive(Debug, thiserror::Error)]
pub enum HelperOutputProblem {
    /// The output is not JSON (serde_json's syntax errors give a position,
    /// never content).
    #[error("the output is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// The output is JSON but not an object.
    #[error("the output is not a JSON object")]
    NotAnObject,
    /// A field is not a string.
    #[error("field `{0}` is not a string")]
    NotAString(&'static str),
}

/// Why running a helper failed.
#[derive(Debug)]
pub(super) enum RunError {
    /// It could not be started.
    Spawn(io::Error),
    /// Waiting for it failed.
    Wait(io::Error),
    /// It exited non-zero with something other than "not found".
    Failed(HelperFailure),
    /// It did not finish within the timeout and was killed.
    TimedOut,
    /// It succeeded but its output is unusable.
    BadOutput(HelperOutputProblem),
}

/// Runs `program get` with `server_url` on stdin, killing it (and its
/// process group) if it is not done within `timeout`.
pub(super) fn get(program: &Path, server_url: &str, timeout: Duration) -> Result<Answer, RunError> {
    let deadline = Instant::now() + timeout;
    let mut command = Command::new(program);
    command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = spawn(&mut command).map_err(RunError::Spawn)?;

    if let Some(mut stdin) = child.stdin.take() {
        // A helper may exit without reading; the broken pipe is its business.
        // The URL is far smaller than a pipe buffer, so this never blocks.
        let _ = stdin.write_all(server_url.as_bytes());
    }
    let (sender, receiver) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        read_on_thread(stdout, Stream::Stdout, sender.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        read_on_thread(stderr, Stream::Stderr, sender);
    }

    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(error) => {
                kill(&mut child);
                return Err(RunError::Wait(error));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            kill(&mut child);
            return Err(RunError::TimedOut);
        }
        thread::sleep((deadline - now).min(Duration::from_millis(10)));
    };

    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(remaining) {
            Ok((Stream::Stdout, bytes)) => stdout = bytes,
            Ok((Stream::Stderr, bytes)) => stderr = bytes,
            // The helper exited but something it started holds the pipes.
            Err(mpsc::RecvTimeoutError::Timeout) => {
                kill(&mut child);
                return Err(RunError::TimedOut);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }

    if status.success() {
        return parse_answer(&stdout).map_err(RunError::BadOutput);
    }
    let says_not_found = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .any(|line| line.trim() == NOT_FOUND_MESSAGE)
    };
    if says_not_found(&stdout) || says_not_found(&stderr) {
        return Ok(Answer::NotFound);
    }
    Err(RunError::Failed(HelperFailure {
        status,
        message: failure_message(&stdout, &stderr),
    }))
}

/// Spawns, retrying briefly on `ETXTBSY`: a helper script that was just
/// written (by an installer, or a test) can be briefly "busy" while another
/// thread's fork still holds the writer's descriptor.
fn spawn(command: &mut Command) -> io::Result<Child> {
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(error)
                if error.raw_os_error() == Some(rustix::io::Errno::TXTBSY.raw_os_error())
                    && tries < 20 =>
            {
                tries += 1;
                thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

fn read_on_thread(
    mut pipe: impl Read + Send + 'static,
    stream: Stream,
    sender: mpsc::Sender<(Stream, Vec<u8>)>,
) {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        // Read errors end the output early; what was read still counts.
        let _ = (&mut pipe).take(MAX_OUTPUT).read_to_end(&mut bytes);
        let _ = io::copy(&mut pipe, &mut io::sink());
        // The receiver is gone when the helper timed out; nothing to do.
        let _ = sender.send((stream, bytes));
    });
}

/// Kills the helper's process group (it leads its own), then the helper,
/// and reaps it.
fn kill(child: &mut Child) {
    let group = rustix::process::Pid::from_child(child);
    // Errors mean the group is already gone.
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

fn parse_answer(stdout: &[u8]) -> Result<Answer, HelperOutputProblem> {
    let value: Value = serde_json::from_slice(stdout).map_err(HelperOutputProblem::NotJson)?;
    let Value::Object(object) = value else {
        return Err(HelperOutputProblem::NotAnObject);
    };
    // Go's encoding/json: exact name first, then any ASCII case.
    let text = |name: &'static str| {
        let value = object.get(name).or_else(|| {
            object
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value)
        });
        match value {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(HelperOutputProblem::NotAString(name)),
        }
    };
    let username = text("Username")?;
    let secret = text("Secret")?;
    if username.is_empty() && secret.is_empty() {
        return Ok(Answer::NotFound);
    }
    Ok(Answer::Found { username, secret })
}

/// What a failing helper said, trimmed and cut short. Helpers write their
/// error to stdout (docker-credential-helpers `credentials.Serve`) or to
/// stderr; stderr wins when both have text. By protocol neither holds the
/// secret, but stdout that looks like a credential answer is left out all
/// the same, and the message is cut to [`MAX_MESSAGE`] bytes.
fn failure_message(stdout: &[u8], stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let stdout = String::from_utf8_lossy(stdout);
    let stderr = stderr.trim();
    let stdout = stdout.trim();
    let text = if !stderr.is_empty() {
        stderr
    } else if stdout.to_ascii_lowercase().contains("secret") {
        "(output withheld: it looks like credentials)"
    } else {
        stdout
    };
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.len() <= MAX_MESSAGE {
        return one_line;
    }
    let mut end = MAX_MESSAGE;
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &one_line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_and_empty_answers_mean_not_found() {
        let got = parse_answer(br#"{"ServerURL":"h","Username":"u","Secret":"s"}"#).unwrap();
        assert_eq!(
            got,
            Answer::Found {
                username: "u".into(),
                secret: "s".into()
            }
        );
        let got = parse_answer(br#"{"username":"<token>","secret":"t"}"#).unwrap();
        assert_eq!(
            got,
            Answer::Found {
                username: TOKEN_USERNAME.into(),
                secret: "t".into()
            }
        );
        assert_eq!(
            parse_answer(br#"{"ServerURL":"h"}"#).unwrap(),
            Answer::NotFound
        );
    }

    #[test]
    fn bad_answers_never_quote_the_output() {
        for output in [
            &br#"{"Username":"u","Secret":12345678}"#[..],
            br#"["topsecret"]"#,
            br#"{"Secret":"topsecret""#,
            b"topsecret",
        ] {
            let problem = parse_answer(output).unwrap_err();
            let shown = format!("{problem} {problem:?}");
            assert!(!shown.contains("topsecret"), "{shown}");
            assert!(!shown.contains("12345678"), "{shown}");
        }
    }

    #[test]
    fn failure_messages_are_trimmed_cut_and_withhold_credentials() {
        assert_eq!(failure_message(b"  out\n", b""), "out");
        assert_eq!(failure_message(b"out", b"err\nmore\n"), "err more");
        let long = "x".repeat(4000);
        let cut = failure_message(b"", long.as_bytes());
        assert!(cut.len() <= MAX_MESSAGE + '…'.len_utf8());
        let leaked = failure_message(br#"{"Username":"u","Secret":"hunter2"}"#, b"");
        assert!(!leaked.contains("hunter2"), "{leaked}");
    }

    #[test]
    fn path_lookup_skips_relative_and_non_executable_entries() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("docker-credential-plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let search = std::env::join_paths([Path::new("relative"), dir.path()]).unwrap();
        assert_eq!(find_on_path("docker-credential-plain", &search), None);
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            find_on_path("docker-credential-plain", &search),
            Some(plain)
        );
        assert_eq!(find_on_path("docker-credential-absent", &search), None);
    }
}

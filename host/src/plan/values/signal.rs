//! `STOPSIGNAL`, after BuildKit's `dispatchStopSignal`
//! (`dockerfile2llb/convert.go`), which checks the expanded value with
//! `github.com/moby/sys/signal.ParseSignal` (the Linux table) and then stores
//! the value **as written** in the image config.

use super::ValueError;
use super::go::parse_int;

/// Signal names without the `SIG` prefix, as in moby/sys `SignalMap` for
/// Linux (`RTMIN+n` and `RTMAX-n` included).
const NAMES: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMIN+1",
    "RTMIN+2", "RTMIN+3", "RTMIN+4", "RTMIN+5", "RTMIN+6", "RTMIN+7", "RTMIN+8", "RTMIN+9",
    "RTMIN+10", "RTMIN+11", "RTMIN+12", "RTMIN+13", "RTMIN+14", "RTMIN+15", "RTMAX-14", "RTMAX-13",
    "RTMAX-12", "RTMAX-11", "RTMAX-10", "RTMAX-9", "RTMAX-8", "RTMAX-7", "RTMAX-6", "RTMAX-5",
    "RTMAX-4", "RTMAX-3", "RTMAX-2", "RTMAX-1", "RTMAX",
];

/// Checks a `STOPSIGNAL` value and returns the text to store in the image
/// config's `StopSignal`: the input, unchanged (BuildKit does not normalise
/// `term` to `SIGTERM` or names to numbers).
///
/// Accepted, like `signal.ParseSignal`: any integer Go's `strconv.Atoi`
/// reads other than 0 (an optional sign is allowed, and BuildKit does not
/// range-check it, so `-5` and `99` pass), or a Linux signal name in any
/// case, with or without one `SIG` prefix (`SIGTERM`, `term`,
/// `SIGRTMIN+3`, `RTMAX-2`).
pub fn parse_signal(s: &str) -> Result<String, ValueError> {
    if let Some(n) = parse_int(s, 64) {
        if n == 0 {
            return Err(ValueError::new(format!(
                "invalid signal \"{s}\": expected a signal name such as SIGTERM or a non-zero number"
            )));
        }
        return Ok(s.to_owned());
    }
    let upper = s.to_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if NAMES.contains(&name) {
        Ok(s.to_owned())
    } else {
        Err(ValueError::new(format!(
            "invalid signal \"{s}\": expected a signal name such as SIGTERM or a non-zero number"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_verbatim() {
        for s in [
            "SIGTERM",
            "TERM",
            "term",
            "sigkill",
            "SigQuit",
            "9",
            "+9",
            "-5",
            "99",
            "SIGRTMIN+3",
            "rtmax-14",
            "SIGRTMAX",
            "SIGCLD",
        ] {
            assert_eq!(parse_signal(s).unwrap(), s);
        }
    }

    #[test]
    fn rejected() {
        for s in [
            "",
            "0",
            "-0",
            "SIG",
            "SIGSIGTERM",
            "SIGRTMIN+16",
            "RTMAX-15",
            "SIGFOO",
            " TERM",
            "9 ",
            "99999999999999999999",
            "SIGINFO",
        ] {
            let e = parse_signal(s).unwrap_err().to_string();
            assert!(e.starts_with("invalid signal"), "{s}: {e}");
            assert!(e.contains("expected"));
        }
    }
}

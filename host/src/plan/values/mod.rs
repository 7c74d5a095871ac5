//! Typed values of instruction flags: `RUN --mount`, `--network`,
//! `--security`, `--chmod`, `--chown`, platforms, durations and the
//! `HEALTHCHECK` options, `EXPOSE` ports and `STOPSIGNAL`.
//!
//! Every parser here takes the text of one flag value (or one word) and
//! checks it with BuildKit's rules. Variable expansion is the caller's job,
//! with one exception: [`parse_mount`] splits the raw `--mount` value into
//! CSV fields first and expands each field value through a callback, because
//! that is the order BuildKit uses. Pure: no I/O.

mod chmod;
mod chown;
mod duration;
mod expose;
mod go;
mod mount;
mod run;
mod signal;

pub use crate::image::Platform;
pub use chmod::{Chmod, SymbolicMode, parse_chmod};
pub use chown::{Chown, IdOrName, parse_chown};
pub use duration::{HealthcheckFlags, HealthcheckOptions, format_go_duration, parse_go_duration};
pub use expose::{Expose, ExposeWarning, parse_expose};
pub use mount::{CacheSharing, Mount, MountType, parse_mount};

/// Parses a platform (`linux/arm64`, `linux/arm/v7`, …) with containerd's
/// normalisation; see [`crate::image::parse_platform`].
pub fn parse_platform(s: &str) -> Result<Platform, ValueError> {
    crate::image::parse_platform(s).map_err(|e| ValueError::new(e.to_string()))
}
pub use run::{Network, Security, parse_network, parse_security};
pub use signal::parse_signal;

/// A flag value that does not follow BuildKit's rules.
///
/// The message is lowercase, has no final period and says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    message: String,
}

impl ValueError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message, as [`Display`](std::fmt::Display) prints it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_parser_panics(s in "\\PC*") {
            let _ = parse_mount(&s, &mut |v| Ok(v.to_owned()));
            let _ = parse_mount(&s, &mut |_| Err("boom".to_owned()));
            let _ = parse_network(&s);
            let _ = parse_security(&s);
            if let Ok(c) = parse_chmod(&s) {
                let _ = c.apply(0o100644, false);
                let _ = c.apply(0o040755, true);
            }
            let _ = parse_chown(&s);
            if let Ok(p) = parse_platform(&s) {
                let _ = p.to_string();
            }
            if let Ok(d) = parse_go_duration(&s) {
                let _ = format_go_duration(d);
            }
            let _ = HealthcheckOptions::parse(&HealthcheckFlags {
                interval: Some(&s),
                timeout: Some(&s),
                start_period: Some(&s),
                start_interval: Some(&s),
                retries: Some(&s),
            });
            let _ = parse_expose(&s);
            let _ = parse_signal(&s);
        }

        #[test]
        fn no_parser_panics_on_flag_like_text(s in "[a-zA-Z0-9=,\"/:.+\\-$ ()%_]{0,40}") {
            let _ = parse_mount(&s, &mut |v| Ok(v.to_owned()));
            if let Ok(c) = parse_chmod(&s) {
                let _ = c.apply(0o7777, true);
            }
            let _ = parse_chown(&s);
            let _ = parse_platform(&s);
            if let Ok(d) = parse_go_duration(&s) {
                let _ = format_go_duration(d);
            }
            let _ = parse_expose(&s);
            let _ = parse_signal(&s);
        }

        #[test]
        fn go_duration_round_trips(nanos in 0u64..=i64::MAX as u64) {
            let d = std::time::Duration::from_nanos(nanos);
            let text = format_go_duration(d);
            prop_assert_eq!(parse_go_duration(&text).unwrap(), d);
        }
    }
}

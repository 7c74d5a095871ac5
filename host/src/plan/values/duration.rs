//! Go durations (`time.ParseDuration`, `Duration.String`) and the
//! `HEALTHCHECK` options, after BuildKit's `parseHealthcheck` and
//! `parseOptInterval` (`instructions/parse.go`).

use std::time::Duration;

use super::ValueError;
use super::go::parse_int;

const NANOS_PER_UNIT: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{00b5}s", 1_000), // U+00B5 MICRO SIGN
    ("\u{03bc}s", 1_000), // U+03BC GREEK SMALL LETTER MU
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const LIMIT: u64 = 1 << 63;

/// Go's `time.ParseDuration`, returning the sign and the magnitude in
/// nanoseconds (at most 2^63 for a negative value, 2^63 - 1 otherwise).
fn parse_signed(orig: &str) -> Result<(bool, u64), String> {
    let invalid = || format!("invalid duration \"{orig}\"");
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next()
        && (c == '-' || c == '+')
    {
        neg = c == '-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok((false, 0));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &b[..int_len] {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        s = &s[int_len..];
        // Fraction.
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        let has_dot = s.starts_with('.');
        if has_dot {
            s = &s[1..];
            let fb = s.as_bytes();
            frac_len = fb.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &fb[..frac_len] {
                if overflow {
                    continue;
                }
                if frac > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = frac * 10 + u64::from(c - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                frac = y;
                scale *= 10.0;
            }
            s = &s[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            // ".s" or "."
            return Err(invalid());
        }
        // Unit: everything up to the next digit or dot.
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("missing unit in duration \"{orig}\""));
        }
        let unit_text = &s[..unit_len];
        s = &s[unit_len..];
        let Some(&(_, unit)) = NANOS_PER_UNIT.iter().find(|(name, _)| *name == unit_text) else {
            return Err(format!(
                "unknown unit \"{unit_text}\" in duration \"{orig}\""
            ));
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            // Go computes this in float64; so do we, for identical rounding.
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if !neg && total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok((neg && total != 0, total))
}

/// Parses a Go duration such as `300ms`, `1.5h`, `2h45m`, `30s` or `0`.
///
/// Units are `ns`, `us` (or `µs`, `μs`), `ms`, `s`, `m`, `h`; every number
/// needs a unit except a lone `0`; the total must fit in Go's `int64`
/// nanoseconds. A negative duration is an error here (`-0s` is zero).
pub fn parse_go_duration(s: &str) -> Result<Duration, ValueError> {
    match parse_signed(s) {
        Ok((false, nanos)) => Ok(Duration::from_nanos(nanos)),
        Ok((true, _)) => Err(ValueError::new(format!(
            "negative duration \"{s}\": expected zero or more"
        ))),
        Err(e) => Err(ValueError::new(format!(
            "{e}: expected a Go duration such as 300ms, 30s, 1m30s or 1.5h"
        ))),
    }
}

/// Formats a duration the way Go's `Duration.String` does: `0s`, `1.5µs`,
/// `300ms`, `30s`, `1m30s`, `1h0m0s`, `2h45m0.5s`.
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000_000_000 {
        let (unit, prec) = if nanos < 1_000 {
            ("ns", 0)
        } else if nanos < 1_000_000 {
            ("\u{00b5}s", 3)
        } else {
            ("ms", 6)
        };
        return format!("{}{unit}", fixed(nanos, prec));
    }
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    let mut out = String::new();
    let hours = secs / 3600;
    let minutes = (secs / 60) % 60;
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if secs >= 60 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&fixed((secs % 60) * 1_000_000_000 + frac, 9));
    out.push('s');
    out
}

/// `value / 10^prec` with the fraction's trailing zeros (and a bare dot)
/// left out, as Go's `fmtFrac` + `fmtInt`.
fn fixed(value: u128, prec: u32) -> String {
    let div = 10u128.pow(prec);
    let int = value / div;
    let frac = value % div;
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// The raw `HEALTHCHECK` flag values, already expanded; `None` or `""` means
/// the flag was not given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthcheckFlags<'a> {
    /// `--interval`.
    pub interval: Option<&'a str>,
    /// `--timeout`.
    pub timeout: Option<&'a str>,
    /// `--start-period`.
    pub start_period: Option<&'a str>,
    /// `--start-interval`.
    pub start_interval: Option<&'a str>,
    /// `--retries`.
    pub retries: Option<&'a str>,
}

/// Checked `HEALTHCHECK` options.
///
/// `None` means the flag was absent or empty. In the image config BuildKit
/// writes 0 for both an absent flag and an explicit `0`, and the runtime
/// then uses its defaults (interval and timeout 30s, start period 0s, start
/// interval 5s, retries 3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthcheckOptions {
    /// `--interval`: 0 or at least 1ms.
    pub interval: Option<Duration>,
    /// `--timeout`: 0 or at least 1ms.
    pub timeout: Option<Duration>,
    /// `--start-period`: 0 or at least 1ms.
    pub start_period: Option<Duration>,
    /// `--start-interval`: 0 or at least 1ms.
    pub start_interval: Option<Duration>,
    /// `--retries`: a non-negative 32-bit integer.
    pub retries: Option<u32>,
}

impl HealthcheckOptions {
    /// Checks the flags with BuildKit's rules, in BuildKit's order
    /// (interval, timeout, start-period, start-interval, retries).
    ///
    /// Durations use Go's syntax and must be 0 or at least 1ms (a negative
    /// duration is "less than 1ms"; `-0s` is 0). Retries are parsed like
    /// Go's `strconv.ParseInt(v, 10, 32)` (a `+` sign is allowed) and must
    /// not be negative.
    pub fn parse(flags: &HealthcheckFlags<'_>) -> Result<Self, ValueError> {
        let interval = opt_interval("interval", flags.interval)?;
        let timeout = opt_interval("timeout", flags.timeout)?;
        let start_period = opt_interval("start-period", flags.start_period)?;
        let start_interval = opt_interval("start-interval", flags.start_interval)?;
        let retries = match flags.retries.filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => {
                let n = parse_int(v, 32).ok_or_else(|| {
                    ValueError::new(format!(
                        "invalid value \"{v}\" for --retries: expected a whole number"
                    ))
                })?;
                if n < 0 {
                    return Err(ValueError::new(format!(
                        "--retries cannot be negative ({n}): expected 0 or more"
                    )));
                }
                Some(n as u32)
            }
        };
        Ok(Self {
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        })
    }
}

fn opt_interval(name: &str, value: Option<&str>) -> Result<Option<Duration>, ValueError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let (neg, nanos) = parse_signed(v).map_err(|e| {
        ValueError::new(format!(
            "{e} for --{name}: expected a Go duration such as 30s, 1m30s or 1.5h"
        ))
    })?;
    if nanos == 0 {
        return Ok(Some(Duration::ZERO));
    }
    if neg || nanos < 1_000_000 {
        return Err(ValueError::new(format!(
            "--{name} cannot be less than 1ms: expected 0 or at least 1ms, got \"{v}\""
        )));
    }
    Ok(Some(Duration::from_nanos(nanos)))
}

impl HealthcheckOptions {
    fn fields(&self) -> [(&'static str, Option<String>); 5] {
        let d = |v: Option<Duration>| v.map(format_go_duration);
        [
            ("interval", d(self.interval)),
            ("timeout", d(self.timeout)),
            ("start-period", d(self.start_period)),
            ("start-interval", d(self.start_interval)),
            ("retries", self.retries.map(|r| r.to_string())),
        ]
    }
}

/// The options as flags, e.g. `--interval=5s --retries=2`; empty when none.
impl std::fmt::Display for HealthcheckOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .fields()
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("--{k}={v}")))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

/// Durations as Go prints them (`30s`), absent options left out.
impl serde::Serialize for HealthcheckOptions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fields = self.fields();
        let mut map =
            serializer.serialize_map(Some(fields.iter().filter(|(_, v)| v.is_some()).count()))?;
        for (k, v) in fields {
            if let Some(v) = v {
                map.serialize_entry(k, &v)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Duration {
        parse_go_duration(s).unwrap()
    }

    #[test]
    fn parse_valid() {
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("+0"), Duration::ZERO);
        assert_eq!(d("-0"), Duration::ZERO);
        assert_eq!(d("-0s"), Duration::ZERO);
        assert_eq!(d("0s"), Duration::ZERO);
        assert_eq!(d("300ms"), Duration::from_millis(300));
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("+30s"), Duration::from_secs(30));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d("2h45m"), Duration::from_secs(2 * 3600 + 45 * 60));
        assert_eq!(d("1h30m10.5s"), Duration::from_millis(5_410_500));
        assert_eq!(d("10ns"), Duration::from_nanos(10));
        assert_eq!(d("10us"), Duration::from_micros(10));
        assert_eq!(d("10µs"), Duration::from_micros(10));
        assert_eq!(d("10μs"), Duration::from_micros(10));
        assert_eq!(d(".5s"), Duration::from_millis(500));
        assert_eq!(d("5.s"), Duration::from_secs(5));
        assert_eq!(d("1s1s"), Duration::from_secs(2));
        assert_eq!(d("0.000000001s"), Duration::from_nanos(1));
        assert_eq!(d("1.0000000001s"), Duration::from_secs(1));
        assert_eq!(
            d("9223372036854775807ns"),
            Duration::from_nanos(i64::MAX as u64)
        );
        assert_eq!(
            d("2562047h47m16.854775807s"),
            Duration::from_nanos(i64::MAX as u64)
        );
    }

    #[test]
    fn parse_invalid() {
        for bad in [
            "",
            "-",
            "+",
            "s",
            "1",
            "00",
            "1.5",
            ".",
            ".s",
            "1x",
            "1 s",
            " 1s",
            "1s ",
            "1S",
            "1H",
            "1d",
            "1hh",
            "-1s",
            "-1ns",
            "9223372036854775808ns",
            "2562048h",
            "99999999999999999999s",
            "1e3s",
            "one",
        ] {
            let e = parse_go_duration(bad).unwrap_err().to_string();
            assert!(e.contains("expected"), "{bad}: {e}");
        }
        assert!(
            parse_go_duration("1d")
                .unwrap_err()
                .to_string()
                .contains("unknown unit \"d\"")
        );
        assert!(
            parse_go_duration("1")
                .unwrap_err()
                .to_string()
                .contains("missing unit")
        );
        assert!(
            parse_go_duration("-5s")
                .unwrap_err()
                .to_string()
                .starts_with("negative duration")
        );
    }

    #[test]
    fn format() {
        for (nanos, want) in [
            (0u64, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_000, "1µs"),
            (1_500, "1.5µs"),
            (1_000_000, "1ms"),
            (1_500_000, "1.5ms"),
            (300_000_000, "300ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (30_000_000_000, "30s"),
            (60_000_000_000, "1m0s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (9_900_500_000_000, "2h45m0.5s"),
            (i64::MAX as u64, "2562047h47m16.854775807s"),
        ] {
            assert_eq!(format_go_duration(Duration::from_nanos(nanos)), want);
        }
    }

    fn hc(flags: HealthcheckFlags<'_>) -> Result<HealthcheckOptions, ValueError> {
        HealthcheckOptions::parse(&flags)
    }

    #[test]
    fn healthcheck_valid() {
        assert_eq!(
            hc(HealthcheckFlags::default()).unwrap(),
            HealthcheckOptions::default()
        );
        let o = hc(HealthcheckFlags {
            interval: Some("5m"),
            timeout: Some("3s"),
            start_period: Some("0"),
            start_interval: Some("1ms"),
            retries: Some("+3"),
        })
        .unwrap();
        assert_eq!(o.interval, Some(Duration::from_secs(300)));
        assert_eq!(o.timeout, Some(Duration::from_secs(3)));
        assert_eq!(o.start_period, Some(Duration::ZERO));
        assert_eq!(o.start_interval, Some(Duration::from_millis(1)));
        assert_eq!(o.retries, Some(3));
        // Empty values are "not given"; -0s is zero.
        let o = hc(HealthcheckFlags {
            interval: Some(""),
            timeout: Some("-0s"),
            retries: Some(""),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(o.interval, None);
        assert_eq!(o.timeout, Some(Duration::ZERO));
        assert_eq!(o.retries, None);
        let o = hc(HealthcheckFlags {
            retries: Some("0"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(o.retries, Some(0));
        let o = hc(HealthcheckFlags {
            retries: Some("2147483647"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(o.retries, Some(i32::MAX as u32));
    }

    #[test]
    fn healthcheck_invalid() {
        let e = |flags: HealthcheckFlags<'_>| hc(flags).unwrap_err().to_string();
        let msg = e(HealthcheckFlags {
            interval: Some("500us"),
            ..Default::default()
        });
        assert!(
            msg.starts_with("--interval cannot be less than 1ms"),
            "{msg}"
        );
        let msg = e(HealthcheckFlags {
            timeout: Some("-1s"),
            ..Default::default()
        });
        assert!(
            msg.starts_with("--timeout cannot be less than 1ms"),
            "{msg}"
        );
        let msg = e(HealthcheckFlags {
            start_period: Some("10"),
            ..Default::default()
        });
        assert!(msg.contains("for --start-period"), "{msg}");
        let msg = e(HealthcheckFlags {
            start_interval: Some("0.5ms"),
            ..Default::default()
        });
        assert!(msg.starts_with("--start-interval cannot"), "{msg}");
        let msg = e(HealthcheckFlags {
            retries: Some("-1"),
            ..Default::default()
        });
        assert!(
            msg.starts_with("--retries cannot be negative (-1)"),
            "{msg}"
        );
        for bad in ["three", "1.5", "2147483648", " 3"] {
            let msg = e(HealthcheckFlags {
                retries: Some(bad),
                ..Default::default()
            });
            assert!(msg.contains("for --retries"), "{bad}: {msg}");
        }
        // Order: the interval is checked before the retries.
        let msg = e(HealthcheckFlags {
            interval: Some("x"),
            retries: Some("-1"),
            ..Default::default()
        });
        assert!(msg.contains("--interval"), "{msg}");
    }
}

//! Timestamps as Go's `time.Time` writes them in JSON (RFC 3339 with
//! nanoseconds, trailing zeros of the fraction dropped), which is what image
//! configs and their history carry.

use std::fmt;
use std::str::FromStr;

/// An instant with the UTC offset it was written with, as Go's `time.Time`
/// keeps it. Years 1 to 9999 only (what RFC 3339 can spell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (UTC).
    secs: i64,
    /// Nanoseconds within the second.
    nanos: u32,
    /// Offset from UTC in seconds (0 is written `Z`).
    offset: i32,
}

/// A string that is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {text:?}: expected RFC 3339, e.g. 2024-01-02T03:04:05Z")]
pub struct TimestampError {
    text: String,
}

/// Seconds from 0001-01-01T00:00:00Z to the Unix epoch.
const MIN_SECS: i64 = -62_135_596_800;
/// Seconds from the Unix epoch to 9999-12-31T23:59:59Z.
const MAX_SECS: i64 = 253_402_300_799;

impl Timestamp {
    /// The instant `secs` seconds and `nanos` nanoseconds after the Unix
    /// epoch, in UTC; `None` outside years 1 to 9999 or with `nanos` of a
    /// second or more.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Self> {
        ((MIN_SECS..=MAX_SECS).contains(&secs) && nanos < 1_000_000_000).then_some(Self {
            secs,
            nanos,
            offset: 0,
        })
    }

    /// Seconds since the Unix epoch.
    pub fn unix_secs(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// The same instant in UTC (what `SOURCE_DATE_EPOCH` gives).
    pub fn to_utc(self) -> Self {
        Self { offset: 0, ..self }
    }

    /// Whether this instant is after `other` (offsets ignored, as Go's
    /// `Time.After`).
    pub fn is_after(&self, other: &Self) -> bool {
        (self.secs, self.nanos) > (other.secs, other.nanos)
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `time.RFC3339Nano` layout.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.secs + i64::from(self.offset);
        let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
        let sod = local.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        if self.offset == 0 {
            f.write_str("Z")
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let abs = self.offset.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60)
        }
    }
}

/// RFC 3339 as Go's `time.Time.UnmarshalJSON` reads it: `T` separator,
/// optional fraction of 1 to 9 digits, `Z` or `±hh:mm`.
impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, TimestampError> {
        parse(text).ok_or_else(|| TimestampError {
            text: text.to_owned(),
        })
    }
}

fn parse(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = b.get(r)?;
        if s.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(s).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y = i64::from(y);
    if y < 1 || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let digits = end - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(start..end)? * 10u32.pow((9 - digits) as u32);
        i = end;
    }
    let rest = &b[i..];
    let offset = if rest == b"Z" {
        0
    } else if rest.len() == 6 && matches!(rest[0], b'+' | b'-') && rest[3] == b':' {
        let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
        if oh > 23 || om > 59 {
            return None;
        }
        let v = (oh * 3600 + om * 60) as i32;
        if rest[0] == b'-' { -v } else { v }
    } else {
        return None;
    };
    let local =
        days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s) - i64::from(offset);
    Some(Timestamp {
        secs: local,
        nanos,
        offset,
    })
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> String {
        s.parse::<Timestamp>().unwrap().to_string()
    }

    #[test]
    fn go_rfc3339nano() {
        let t = Timestamp::from_unix(0, 0).unwrap();
        assert_eq!(t.to_string(), "1970-01-01T00:00:00Z");
        let t = Timestamp::from_unix(1_700_000_000, 120_000_000).unwrap();
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.12Z");
        assert_eq!(rt("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00Z");
        assert_eq!(rt("2024-02-29T23:59:59.000Z"), "2024-02-29T23:59:59Z");
        assert_eq!(
            rt("2023-05-10T12:34:56.123456789+02:00"),
            "2023-05-10T12:34:56.123456789+02:00"
        );
        let t: Timestamp = "2023-05-10T12:34:56+02:00".parse().unwrap();
        assert_eq!(t.to_utc().to_string(), "2023-05-10T10:34:56Z");
        assert_eq!(
            rt("1969-12-31T23:59:59.5-00:30"),
            "1969-12-31T23:59:59.5-00:30"
        );
        assert_eq!(rt("9999-12-31T23:59:59Z"), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn ordering_ignores_offsets() {
        let a: Timestamp = "2023-05-10T12:00:00+02:00".parse().unwrap();
        let b: Timestamp = "2023-05-10T10:30:00Z".parse().unwrap();
        assert!(b.is_after(&a) && !a.is_after(&b));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "2023-05-10",
            "2023-05-10 12:00:00Z",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-01-01T24:00:00Z",
            "2023-01-01T00:00:00",
            "2023-01-01T00:00:00.Z",
            "2023-01-01T00:00:00.1234567890Z",
            "2023-01-01T00:00:00+0100",
            "0000-01-01T00:00:00Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
        assert!(Timestamp::from_unix(MAX_SECS + 1, 0).is_none());
        assert!(Timestamp::from_unix(0, 1_000_000_000).is_none());
    }
}

//! Small re-implementations of the Go standard-library helpers BuildKit uses
//! on flag values (`strconv.ParseUint`, `ParseInt`, `ParseBool`,
//! `path.Clean`, `path.Base`), so that edge cases (signs, empty strings,
//! overflow) match.

/// `strconv.ParseUint(s, radix, bits)`: no sign, no prefix, no underscores,
/// at least one digit, value fits in `bits` bits.
pub(super) fn parse_uint(s: &str, radix: u32, bits: u32) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let max = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut v: u64 = 0;
    for c in s.chars() {
        let d = c.to_digit(radix)?;
        v = v.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
        if v > max {
            return None;
        }
    }
    Some(v)
}

/// `strconv.ParseInt(s, 10, bits)`: an optional `+` or `-`, then decimal
/// digits; the value must fit in a signed `bits`-bit integer.
pub(super) fn parse_int(s: &str, bits: u32) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_uint(digits, 10, 64)?;
    let limit = 1u64 << (bits - 1);
    if neg {
        if magnitude > limit {
            return None;
        }
        // `limit` is at most 2^63, which is exactly representable as -i64::MIN.
        Some((magnitude as i128).wrapping_neg() as i64)
    } else {
        if magnitude >= limit {
            return None;
        }
        i64::try_from(magnitude).ok()
    }
}

/// `strconv.ParseBool`.
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `path.Clean`: lexical clean-up of a slash-separated path.
pub(super) fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// `path.Base`: the last element of a slash-separated path.
pub(super) fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_owned();
    }
    match trimmed.rfind('/') {
        Some(i) => trimmed[i + 1..].to_owned(),
        None => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_uint_matches_go() {
        assert_eq!(parse_uint("755", 8, 32), Some(0o755));
        assert_eq!(parse_uint("8", 8, 32), None);
        assert_eq!(parse_uint("+1", 10, 32), None);
        assert_eq!(parse_uint("", 10, 32), None);
        assert_eq!(parse_uint("4294967295", 10, 32), Some(u64::from(u32::MAX)));
        assert_eq!(parse_uint("4294967296", 10, 32), None);
        assert_eq!(parse_uint("0o7", 8, 32), None);
        assert_eq!(parse_uint("1_0", 10, 32), None);
    }

    #[test]
    fn parse_int_matches_go() {
        assert_eq!(parse_int("-1", 32), Some(-1));
        assert_eq!(parse_int("+7", 32), Some(7));
        assert_eq!(parse_int("-2147483648", 32), Some(-2147483648));
        assert_eq!(parse_int("-2147483649", 32), None);
        assert_eq!(parse_int("2147483647", 32), Some(2147483647));
        assert_eq!(parse_int("2147483648", 32), None);
        assert_eq!(parse_int("-9223372036854775808", 64), Some(i64::MIN));
        assert_eq!(parse_int("9223372036854775807", 64), Some(i64::MAX));
        assert_eq!(parse_int("9223372036854775808", 64), None);
        assert_eq!(parse_int("-", 32), None);
        assert_eq!(parse_int("", 32), None);
        assert_eq!(parse_int("--1", 32), None);
    }

    #[test]
    fn parse_bool_matches_go() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "yes", "tRUE", "on", " true"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn path_clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("//", "/"),
            ("/a/b/", "/a/b"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("./a/./b", "a/b"),
            ("a/b/../../..", ".."),
            ("../../a", "../../a"),
            ("/cache/", "/cache"),
        ] {
            assert_eq!(path_clean(input), want, "{input}");
        }
    }

    #[test]
    fn path_base_matches_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("///", "/"),
            ("/run/secrets/token", "token"),
            ("token", "token"),
            ("/a/b/", "b"),
        ] {
            assert_eq!(path_base(input), want, "{input}");
        }
    }
}

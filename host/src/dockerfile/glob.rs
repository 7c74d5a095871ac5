//! Go's `filepath.Match` pattern syntax, used by `.dockerignore` and by
//! COPY/ADD source wildcards.
//!
//! This is a faithful re-implementation of Go's `path/filepath.Match` on Unix
//! (escaping enabled, `/` as the separator), written from its documented
//! grammar and observable behaviour:
//!
//! ```text
//! pattern:          { term }
//! term:             '*'    any run of non-'/' characters (possibly empty)
//!                   '?'    exactly one non-'/' character
//!                   '[' [ '^' ] { character-range } ']'
//!                          a non-empty character class; '^' negates it
//!                   c      the character c itself (c is not '*', '?', '\\', '[')
//!                   '\\' c the character c itself
//! character-range:  c      (c is not '\\', '-', ']')
//!                   '\\' c
//!                   lo '-' hi   any character between lo and hi inclusive
//! ```
//!
//! Details that matter for compatibility:
//!
//! - `!` does **not** negate a class: `[!x]` is the set `{!, x}`.
//! - A class may match `/` (`a[^x]b` matches `a/b`); only `*` and `?` stop
//!   at `/`.
//! - A `]` or `-` directly inside a class must be escaped; `[]]`, `[-a]`,
//!   `[a-]` and `[]` are errors. A `]` outside a class is a literal.
//! - Like Go since 1.16, a malformed pattern is reported even when the match
//!   fails early: the rest of the pattern is still checked. Whether a pattern
//!   is malformed therefore never depends on the name ([`validate`]).
//! - Reversed ranges such as `[z-a]` are accepted and match nothing.
//! - Matching works on characters, not bytes. (Go's `*` skips bytes, so in
//!   Go a class after a `*` can match the tail of a multi-byte character;
//!   that byte-level accident is deliberately not reproduced.)

/// A pattern that Go's `filepath.Match` rejects with `ErrBadPattern`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern {pattern:?}: {reason}")]
pub struct BadPattern {
    /// The whole pattern, as given.
    pub pattern: String,
    /// What is wrong with it, lowercase.
    pub reason: String,
}

/// The reasons a pattern can be malformed.
const UNTERMINATED_CLASS: &str = "unterminated character class";
const EMPTY_CLASS: &str = "empty character class";
const BARE_DASH: &str = "unescaped '-' in character class";
const NO_RANGE_END: &str = "character range has no upper bound before ']'";
const TRAILING_BACKSLASH: &str = "trailing backslash escapes nothing";

/// Whether `name` matches the shell pattern `pattern` as a whole, exactly
/// like Go's `filepath.Match` on Unix.
///
/// The only error is [`BadPattern`]; it is returned for every malformed
/// pattern, whatever `name` is.
pub fn go_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_chars(&p, &n).map_err(|reason| BadPattern {
        pattern: pattern.to_owned(),
        reason: reason.to_owned(),
    })
}

/// Checks that `pattern` is well-formed, i.e. that [`go_match`] will never
/// return an error for it.
pub fn validate(pattern: &str) -> Result<(), BadPattern> {
    go_match(pattern, "").map(|_| ())
}

/// Whether `pattern` contains any character that [`go_match`] treats
/// specially (`*`, `?`, `[` or `\`), like Go's unexported `hasMeta` on Unix.
/// A pattern without them matches only itself.
pub fn has_meta(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '\\'])
}

/// A character class, parsed: `^` negation plus inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Class {
    pub(crate) negated: bool,
    pub(crate) ranges: Vec<(char, char)>,
}

impl Class {
    /// Whether the class accepts `c`.
    pub(crate) fn matches(&self, c: char) -> bool {
        let inside = self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        inside != self.negated
    }
}

/// Parses a class whose opening `[` has already been consumed. Returns the
/// class and what follows its closing `]`.
pub(crate) fn parse_class(mut chunk: &[char]) -> Result<(Class, &[char]), &'static str> {
    let negated = chunk.first() == Some(&'^');
    if negated {
        chunk = &chunk[1..];
    }
    let mut ranges = Vec::new();
    loop {
        if chunk.first() == Some(&']') && !ranges.is_empty() {
            return Ok((Class { negated, ranges }, &chunk[1..]));
        }
        let lo = class_char(chunk, EMPTY_CLASS)?;
        chunk = lo.1;
        let mut hi = lo.0;
        // `class_char` guarantees something follows.
        if chunk[0] == '-' {
            let h = class_char(&chunk[1..], NO_RANGE_END)?;
            hi = h.0;
            chunk = h.1;
        }
        ranges.push((lo.0, hi));
    }
}

/// Reads one possibly escaped character inside a class (Go's `getEsc`). The
/// class must continue after it. `on_bracket` is the reason to give when a
/// bare `]` appears where a character is needed.
fn class_char<'a>(
    chunk: &'a [char],
    on_bracket: &'static str,
) -> Result<(char, &'a [char]), &'static str> {
    let mut rest = match chunk.first() {
        None => return Err(UNTERMINATED_CLASS),
        Some('-') => return Err(BARE_DASH),
        Some(']') => return Err(on_bracket),
        Some(_) => chunk,
    };
    if rest[0] == '\\' {
        rest = &rest[1..];
        if rest.is_empty() {
            return Err(UNTERMINATED_CLASS);
        }
    }
    let c = rest[0];
    rest = &rest[1..];
    if rest.is_empty() {
        return Err(UNTERMINATED_CLASS);
    }
    Ok((c, rest))
}

/// Go's `Match` algorithm over characters. Errors carry only the reason.
fn match_chars(mut pattern: &[char], mut name: &[char]) -> Result<bool, &'static str> {
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // Trailing `*` takes the rest of the name unless it crosses a `/`.
            return Ok(!name.contains(&'/'));
        }
        // Try the chunk right here. A non-final chunk takes the leftmost
        // position (the next `*` can absorb the difference); the final one
        // must use up the name.
        if let Some(t) = match_chunk(chunk, name)?
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        if star {
            // Let the star swallow one more character at a time, never `/`.
            let mut i = 0;
            while i < name.len() && name[i] != '/' {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'chunks;
                }
                i += 1;
            }
        }
        // No match; still report a malformed remainder, as Go does.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, &[])?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the next chunk: leading stars (collapsed into one flag), then
/// everything up to the next `*` that is outside a class. `\` protects the
/// character after it.
fn scan_chunk(pattern: &[char]) -> (bool, &[char], &[char]) {
    let stars = pattern.iter().take_while(|&&c| c == '*').count();
    let pattern = &pattern[stars..];
    let mut in_class = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            '\\' if i + 1 < pattern.len() => i += 1,
            '[' => in_class = true,
            ']' => in_class = false,
            '*' if !in_class => break,
            _ => {}
        }
        i += 1;
    }
    (stars > 0, &pattern[..i], &pattern[i..])
}

/// Matches a star-free chunk against the start of `s`, returning what is
/// left of `s` on success. After a mismatch the rest of the chunk is still
/// parsed so that syntax errors are reported regardless of `s`.
fn match_chunk<'a>(
    mut chunk: &[char],
    mut s: &'a [char],
) -> Result<Option<&'a [char]>, &'static str> {
    let mut failed = false;
    while let Some(&first) = chunk.first() {
        if s.is_empty() {
            failed = true;
        }
        match first {
            '[' => {
                let (class, rest) = parse_class(&chunk[1..])?;
                chunk = rest;
                if !failed {
                    if !class.matches(s[0]) {
                        failed = true;
                    }
                    s = &s[1..];
                }
            }
            '?' => {
                chunk = &chunk[1..];
                if !failed {
                    if s[0] == '/' {
                        failed = true;
                    }
                    s = &s[1..];
                }
            }
            _ => {
                if first == '\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(TRAILING_BACKSLASH);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `None` means Go returns `ErrBadPattern`.
    const CASES: &[(&str, &str, Option<bool>)] = &[
        // Literals and the whole-name rule.
        ("abc", "abc", Some(true)),
        ("abc", "abcd", Some(false)),
        ("abc", "ab", Some(false)),
        ("", "", Some(true)),
        ("", "a", Some(false)),
        ("a]b", "a]b", Some(true)),
        ("a-b", "a-b", Some(true)),
        ("^", "^", Some(true)),
        ("!", "!", Some(true)),
        // `*`.
        ("*", "", Some(true)),
        ("*", "abc", Some(true)),
        ("*", "a/b", Some(false)),
        ("*c", "abc", Some(true)),
        ("a*", "a", Some(true)),
        ("a*", "a/b", Some(false)),
        ("a*/b", "abc/b", Some(true)),
        ("a*/b", "a/c/b", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
        ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
        ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
        ("**", "abc", Some(true)),
        ("**", "a/b", Some(false)),
        ("*x", "xxx", Some(true)),
        ("*.go", ".go", Some(true)),
        // `?`.
        ("a?c", "abc", Some(true)),
        ("a?c", "ac", Some(false)),
        ("a?c", "a/c", Some(false)),
        ("?", "ü", Some(true)),
        ("??", "ü", Some(false)),
        // Classes and ranges.
        ("[abc]", "b", Some(true)),
        ("[abc]", "d", Some(false)),
        ("ab[c]", "abc", Some(true)),
        ("ab[b-d]", "abc", Some(true)),
        ("ab[e-g]", "abc", Some(false)),
        ("[a-cx-z]", "y", Some(true)),
        ("[a-cx-z]", "m", Some(false)),
        ("[z-a]", "m", Some(false)),
        ("[α-ω]", "λ", Some(true)),
        ("[α-ω]", "a", Some(false)),
        ("[[]", "[", Some(true)),
        ("[*]", "*", Some(true)),
        ("[*]", "a", Some(false)),
        ("a[^x]b", "a/b", Some(true)),
        ("a[/]b", "a/b", Some(true)),
        // Negation is `^`, never `!`.
        ("ab[^c]", "abc", Some(false)),
        ("ab[^b-d]", "abc", Some(false)),
        ("ab[^e-g]", "abc", Some(true)),
        ("[^a]", "ü", Some(true)),
        ("[!x]", "!", Some(true)),
        ("[!x]", "x", Some(true)),
        ("[!x]", "y", Some(false)),
        ("[^^]", "^", Some(false)),
        ("[^^]", "a", Some(true)),
        ("[a^]", "^", Some(true)),
        // Escapes, outside and inside classes.
        ("a\\*b", "a*b", Some(true)),
        ("a\\*b", "ab", Some(false)),
        ("a\\*b", "axb", Some(false)),
        ("a\\?b", "a?b", Some(true)),
        ("a\\?b", "axb", Some(false)),
        ("\\a", "a", Some(true)),
        ("\\\\", "\\", Some(true)),
        ("\\[", "[", Some(true)),
        ("[\\]]", "]", Some(true)),
        ("[\\-]", "-", Some(true)),
        ("[x\\-]", "-", Some(true)),
        ("[x\\-]", "x", Some(true)),
        ("[x\\-]", "z", Some(false)),
        ("[\\-x]", "-", Some(true)),
        ("[\\-x]", "a", Some(false)),
        ("[a\\-z]", "m", Some(false)),
        ("[\\^]", "^", Some(true)),
        ("[\\a-\\c]", "b", Some(true)),
        ("[\\]-a]", "^", Some(true)),
        ("[a-\\]]", "b", Some(false)),
        // Malformed patterns.
        ("[", "a", None),
        ("[", "", None),
        ("[^", "a", None),
        ("[^bc", "a", None),
        ("a[", "a", None),
        ("a[", "x", None),
        ("a[b", "ab", None),
        ("[]", "a", None),
        ("[]a]", "]", None),
        ("[^]", "a", None),
        ("[-]", "-", None),
        ("[-a]", "-", None),
        ("[x-]", "x", None),
        ("[a-b-c]", "a", None),
        ("[\\", "a", None),
        ("[\\]", "]", None),
        ("[a-\\", "a", None),
        ("\\", "a", None),
        ("\\", "", None),
        ("a\\", "a", None),
        ("[x", "x", None),
        // Reported even though the match fails before the bad part.
        ("x[", "a", None),
        ("x\\", "a", None),
        ("a*x[", "abc", None),
        ("*x", "xxx", Some(true)),
        ("[]", "", None),
        ("*[", "a", None),
        ("a/*[", "b/c", None),
        ("*[]", "", None),
        ("[a]*[", "b", None),
        // A star inside a class does not split the pattern.
        ("[*x]*", "x", Some(true)),
    ];

    #[test]
    fn go_match_table() {
        let mut failures = Vec::new();
        for &(pattern, name, want) in CASES {
            let got = go_match(pattern, name).ok();
            if got != want {
                failures.push(format!(
                    "{pattern:?} vs {name:?}: got {got:?}, want {want:?}"
                ));
            }
            if validate(pattern).is_ok() != want.is_some() {
                failures.push(format!("validate({pattern:?}) disagrees"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn errors_name_pattern_and_reason() {
        let err = go_match("a[b", "x").unwrap_err();
        assert_eq!(err.pattern, "a[b");
        assert_eq!(err.reason, UNTERMINATED_CLASS);
        assert_eq!(
            err.to_string(),
            "syntax error in pattern \"a[b\": unterminated character class"
        );
        assert_eq!(validate("x\\").unwrap_err().reason, TRAILING_BACKSLASH);
        assert_eq!(validate("[]").unwrap_err().reason, EMPTY_CLASS);
        assert_eq!(validate("[-a]").unwrap_err().reason, BARE_DASH);
        assert_eq!(validate("[a-]").unwrap_err().reason, NO_RANGE_END);
    }

    #[test]
    fn has_meta_matches_go() {
        for p in ["*", "a?", "[x]", "a\\b", "]["] {
            assert!(has_meta(p), "{p}");
        }
        for p in ["", "abc", "a]b", "a-b/c", "!x", "{a,b}"] {
            assert!(!has_meta(p), "{p}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(pattern in "[a-c*?\\[\\]^!\\\\/-]{0,12}|\\PC{0,16}", name in "[a-c/-]{0,10}|\\PC{0,16}") {
            let _ = go_match(&pattern, &name);
        }

        #[test]
        fn validity_does_not_depend_on_name(pattern in "[a-c*?\\[\\]^\\\\/-]{0,10}", name in "[a-c/]{0,8}") {
            prop_assert_eq!(go_match(&pattern, &name).is_ok(), validate(&pattern).is_ok());
        }

        #[test]
        fn meta_free_patterns_match_only_themselves(pattern in "[a-c/.]{0,8}", name in "[a-c/.]{0,8}") {
            prop_assert_eq!(go_match(&pattern, &name).unwrap(), pattern == name);
        }
    }
}

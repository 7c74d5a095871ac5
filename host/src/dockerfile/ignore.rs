//! The `.dockerignore` matcher (BuildKit's "modern" pattern matcher).
//!
//! Reading follows moby's `ignorefile.ReadAll` and `patternmatcher.New`;
//! matching follows `PatternMatcher.MatchesOrParentMatches`:
//!
//! 1. A line whose first column is `#` is a comment (a UTF-8 BOM at the very
//!    start is dropped first). Every other line is trimmed and skipped when
//!    empty. A leading `!` marks an exception; blanks after it are trimmed.
//!    The rest is cleaned like Go's `filepath.Clean` and one leading `/` is
//!    dropped. The result then goes through the matcher's own preparation
//!    (trim, clean, split off `!`) exactly as BuildKit does, so even odd lines
//!    such as `/ !x` behave the same. A lone `!` and a pattern that Go's
//!    `filepath.Match` rejects are errors.
//! 2. One pattern is Go `filepath.Match` syntax ([`super::glob`]) plus `**`,
//!    which stands for any number (including zero) of whole directories:
//!    `**/` (or `**` before something else) matches an empty string or any
//!    string ending in `/`, and a trailing `**` matches anything. BuildKit's
//!    shortcuts are kept, with their quirks: a pattern that is a literal
//!    followed by `**` is a plain prefix test (`foo/**` does not match `foo`,
//!    `foo**` matches `foobar`), and a pattern that is `**` followed by a
//!    literal is a plain suffix test (`**foo` matches `xfoo`).
//! 3. Patterns are anchored at the context root. A pattern matches a path if
//!    it matches the path itself or any ancestor directory of it.
//! 4. The last pattern that matches decides: plain means excluded, `!` means
//!    included; no match means included. The context root is never excluded.
//!
//! Deliberate differences from BuildKit, which compiles patterns to Go
//! regular expressions: an escaped letter (`\d`, `\b`, …) is that letter,
//! not a regexp class or assertion; a class is read with `filepath.Match`
//! rules only (`[*]` is the set `{*}`, `[[:alpha:]]` is not a POSIX class);
//! and `**` also crosses newlines in names. A reversed range such as `[z-a]`,
//! which BuildKit only rejects when it first matches a path (failing the
//! build), is rejected when the file is read.

use super::glob::{self, Class, parse_class};

/// Why a `.dockerignore` file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// An exception `!` with no path after it (after trimming and cleaning).
    #[error("line {line}: exception {text:?} has no path after '!'")]
    EmptyException {
        /// 1-based line number.
        line: usize,
        /// The line as written, trimmed.
        text: String,
    },
    /// A pattern that Go's `filepath.Match` (or BuildKit) rejects.
    #[error("line {line}: bad pattern {text:?}: {reason}")]
    BadPattern {
        /// 1-based line number.
        line: usize,
        /// The line as written, trimmed.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A parsed `.dockerignore` file: decides which paths of a build context are
/// left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

/// One cleaned pattern line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// The cleaned pattern with `!` for exceptions, as [`IgnoreMatcher::patterns`] shows it.
    display: String,
    /// A `!` line: a match re-includes.
    exception: bool,
    /// How the pattern is tested.
    kind: Kind,
}

/// BuildKit's four ways of testing a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// No wildcard at all: the path must equal this.
    Exact(String),
    /// A literal followed by a final `**`: the path must start with this.
    Prefix(String),
    /// A leading `**` followed by a literal: the path must end with this
    /// (or, if it starts with `/`, equal it without the `/`).
    Suffix(String),
    /// Anything else.
    Tokens(Vec<Token>),
}

/// One element of a general pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// This character.
    Lit(char),
    /// `?`: one character other than `/`.
    One,
    /// `[...]`: one character in (or not in) the class, `/` included.
    Class(Class),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**/`, or `**` before more pattern: nothing, or anything ending in `/`.
    Dirs,
    /// A final `**`: anything.
    Rest,
}

impl IgnoreMatcher {
    /// Reads `.dockerignore` text (comments in column 1 only, trimming, `!`
    /// exceptions, path cleaning, leading `/` dropped).
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        Self::from_lines(text.lines())
    }

    /// Builds a matcher from already-split pattern lines (the same per-line
    /// processing as [`IgnoreMatcher::parse`]; line numbers in errors count
    /// from 1 over all lines given, comments and blank ones included).
    pub fn from_lines<I: IntoIterator<Item = S>, S: AsRef<str>>(
        lines: I,
    ) -> Result<Self, IgnoreError> {
        let mut patterns = Vec::new();
        for (index, line) in lines.into_iter().enumerate() {
            let mut line = line.as_ref();
            if index == 0 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            if let Some(pattern) = Pattern::from_line(index + 1, line)? {
                patterns.push(pattern);
            }
        }
        Ok(Self { patterns })
    }

    /// Whether there are no patterns at all (nothing is ever excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context root, `/`-separated, no
    /// leading `/`) is excluded. The path is cleaned first; the root itself
    /// (`""` or `.`) is never excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let Some(path) = normalize(path) else {
            return false;
        };
        self.deciding_pattern(&path)
            .is_some_and(|index| !self.patterns[index].exception)
    }

    /// For a context walk: whether a directory can be skipped entirely (it is
    /// excluded and no `!` exception pattern could re-include anything below
    /// it). `false` is always safe; it only costs a deeper walk.
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        let Some(dir) = normalize(dir) else {
            return false;
        };
        let Some(last) = self.deciding_pattern(&dir) else {
            return false;
        };
        if self.patterns[last].exception {
            return false;
        }
        // Everything below `dir` is matched by pattern `last` through its
        // ancestor `dir`, and no later pattern matches `dir` or its
        // ancestors. So only a later exception that matches something
        // strictly below `dir` can bring a path back.
        let below = format!("{dir}/");
        !self.patterns[last + 1..]
            .iter()
            .any(|p| p.exception && p.could_match_below(&below))
    }

    /// The cleaned patterns in file order, exceptions with their `!` prefix.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.display.as_str())
    }

    /// The index of the last pattern that matches `path` (already
    /// normalized) or one of its ancestor directories.
    fn deciding_pattern(&self, path: &str) -> Option<usize> {
        self.patterns
            .iter()
            .rposition(|p| p.matches(path) || ancestors(path).any(|a| p.matches(a)))
    }
}

/// The Dockerfile-specific ignore file name for a Dockerfile path, e.g.
/// `"build.Dockerfile"` -> `"build.Dockerfile.dockerignore"`: the
/// Dockerfile's own file name plus `.dockerignore`. The file lives next to
/// the Dockerfile and, when present, replaces the context's root
/// `.dockerignore`. Only the last component of a path is used, so
/// `"docker/app.Dockerfile"` gives `"app.Dockerfile.dockerignore"`.
pub fn dockerfile_specific_ignore_name(dockerfile_file_name: &str) -> String {
    let trimmed = dockerfile_file_name.trim_end_matches('/');
    let base = trimmed.rsplit('/').next().unwrap_or_default();
    format!("{base}.dockerignore")
}

impl Pattern {
    /// Turns one line into a pattern, or `None` for comments and lines that
    /// end up empty.
    fn from_line(line: usize, raw: &str) -> Result<Option<Self>, IgnoreError> {
        if raw.starts_with('#') {
            return Ok(None);
        }
        let text = raw.trim();
        if text.is_empty() {
            return Ok(None);
        }
        // Stage 1, as the ignore file reader does it.
        let (invert, body) = match text.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, text),
        };
        let mut read = String::new();
        if invert {
            read.push('!');
        }
        if !body.is_empty() {
            let cleaned = clean(body);
            match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => read.push_str(rest),
                _ => read.push_str(&cleaned),
            }
        }
        // Stage 2, as the pattern matcher prepares each pattern it is given.
        let trimmed = read.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let cleaned = clean(trimmed);
        let (exception, pattern) = match cleaned.strip_prefix('!') {
            Some("") => {
                return Err(IgnoreError::EmptyException {
                    line,
                    text: text.to_owned(),
                });
            }
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        };
        let bad = |reason: String| IgnoreError::BadPattern {
            line,
            text: text.to_owned(),
            reason,
        };
        glob::validate(pattern).map_err(|e| bad(e.reason))?;
        let kind = compile(pattern).map_err(bad)?;
        Ok(Some(Self {
            display: cleaned.clone(),
            exception,
            kind,
        }))
    }

    /// Whether the pattern matches `path` itself.
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact(literal) => path == literal,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Tokens(tokens) => {
                let states = run(tokens, path.chars());
                states[accept_state(tokens)]
            }
        }
    }

    /// Whether the pattern could match some path that starts with `below`
    /// (a directory followed by `/`) and continues past it. May answer
    /// `true` when unsure; never answers `false` wrongly.
    fn could_match_below(&self, below: &str) -> bool {
        match &self.kind {
            Kind::Exact(literal) => literal.len() > below.len() && literal.starts_with(below),
            Kind::Prefix(prefix) => prefix.starts_with(below) || below.starts_with(prefix.as_str()),
            Kind::Suffix(_) => true,
            Kind::Tokens(tokens) => {
                let states = run(tokens, below.chars());
                let accept = accept_state(tokens);
                // The accept state alone has nowhere to go: it would need
                // the path to end right at the `/`.
                states
                    .iter()
                    .enumerate()
                    .any(|(state, &live)| live && state != accept)
            }
        }
    }
}

/// Compiles a validated, cleaned pattern the way BuildKit classifies it:
/// exact, prefix, suffix or general.
fn compile(pattern: &str) -> Result<Kind, String> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        General,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut detected = Detected::Exact;
    let mut tokens = Vec::new();
    let mut at = 0;
    let mut first = true;
    while at < chars.len() {
        let c = chars[at];
        at += 1;
        match c {
            '*' if chars.get(at) == Some(&'*') => {
                at += 1;
                if chars.get(at) == Some(&'/') {
                    at += 1;
                }
                if at == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        tokens.push(Token::Rest);
                        detected = Detected::General;
                    }
                } else {
                    tokens.push(Token::Dirs);
                    detected = Detected::General;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                detected = Detected::General;
            }
            '?' => {
                tokens.push(Token::One);
                detected = Detected::General;
            }
            '\\' => match chars.get(at) {
                Some(&escaped) => {
                    at += 1;
                    tokens.push(Token::Lit(escaped));
                    detected = Detected::General;
                }
                // Unreachable after validation; a lone `\` is then literal.
                None => tokens.push(Token::Lit('\\')),
            },
            '[' => {
                detected = Detected::General;
                match parse_class(&chars[at..]) {
                    Ok((class, rest)) => {
                        if let Some(&(lo, hi)) = class.ranges.iter().find(|(lo, hi)| lo > hi) {
                            return Err(format!("character range {lo}-{hi} is reversed"));
                        }
                        at = chars.len() - rest.len();
                        tokens.push(Token::Class(class));
                    }
                    // Unreachable after validation.
                    Err(reason) => return Err(reason.to_owned()),
                }
            }
            ']' => {
                tokens.push(Token::Lit(']'));
                detected = Detected::General;
            }
            other => tokens.push(Token::Lit(other)),
        }
        first = false;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact(pattern.to_owned()),
        Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_owned()),
        Detected::Suffix => Kind::Suffix(pattern[2..].to_owned()),
        Detected::General => Kind::Tokens(tokens),
    })
}

/// States of the token automaton: `2 * i` means "the first `i` tokens are
/// done", `2 * i + 1` means "inside token `i`, a `Dirs` that has consumed
/// something not yet ending in `/`".
fn accept_state(tokens: &[Token]) -> usize {
    2 * tokens.len()
}

/// Runs the token automaton over `input` and returns the live states.
fn run(tokens: &[Token], input: impl Iterator<Item = char>) -> Vec<bool> {
    let size = 2 * tokens.len() + 2;
    let mut states = vec![false; size];
    states[0] = true;
    skip_empty(tokens, &mut states);
    let mut next = vec![false; size];
    for c in input {
        next.fill(false);
        for (i, token) in tokens.iter().enumerate() {
            let done = states[2 * i];
            let inside = states[2 * i + 1];
            if !done && !inside {
                continue;
            }
            match token {
                Token::Lit(x) if done && *x == c => next[2 * i + 2] = true,
                Token::One if done && c != '/' => next[2 * i + 2] = true,
                Token::Class(class) if done && class.matches(c) => next[2 * i + 2] = true,
                Token::Star if done && c != '/' => next[2 * i] = true,
                Token::Rest if done => next[2 * i] = true,
                Token::Dirs => {
                    next[2 * i + 1] = true;
                    if c == '/' {
                        next[2 * i + 2] = true;
                    }
                }
                _ => {}
            }
        }
        skip_empty(tokens, &mut next);
        std::mem::swap(&mut states, &mut next);
        if !states.contains(&true) {
            break;
        }
    }
    states
}

/// Lets tokens that can match nothing be passed over.
fn skip_empty(tokens: &[Token], states: &mut [bool]) {
    for (i, token) in tokens.iter().enumerate() {
        if states[2 * i] && matches!(token, Token::Star | Token::Dirs | Token::Rest) {
            states[2 * i + 2] = true;
        }
    }
}

/// The proper ancestor directories of a normalized path, shortest first:
/// `a/b/c` gives `a`, `a/b`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(|(at, _)| &path[..at])
}

/// Cleans a path to match against; `None` for the context root.
fn normalize(path: &str) -> Option<String> {
    let cleaned = clean(path);
    let relative = cleaned.trim_start_matches('/');
    (!relative.is_empty() && relative != ".").then(|| relative.to_owned())
}

/// Go's `filepath.Clean` on Unix: collapses `//`, drops `.` elements,
/// resolves `..` lexically (never above the root of a rooted path) and
/// drops a trailing `/`; an empty result is `.`.
fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn matcher(lines: &[&str]) -> IgnoreMatcher {
        IgnoreMatcher::from_lines(lines).unwrap()
    }

    #[test]
    fn clean_follows_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "/"),
            ("a/", "a"),
            ("a//b", "a/b"),
            ("./a/./b/.", "a/b"),
            ("a/../b", "b"),
            ("a/..", "."),
            ("../a", "../a"),
            ("a/../../b", "../b"),
            ("/../a", "/a"),
            ("/a/../..", "/"),
            ("!/", "!"),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }

    #[test]
    fn parse_reads_lines() {
        let m = IgnoreMatcher::parse(
            "\u{feff}# comment\r\n\n  *.log  \r\n #not-a-comment\n!  keep.log\n/abs/./x/\n\t\n",
        )
        .unwrap();
        assert_eq!(
            m.patterns().collect::<Vec<_>>(),
            ["*.log", "#not-a-comment", "!keep.log", "abs/x"]
        );
        assert!(m.is_excluded("a.log"));
        assert!(!m.is_excluded("keep.log"));
        assert!(m.is_excluded("#not-a-comment"));
        assert!(m.is_excluded("abs/x/y"));
        assert!(!m.is_excluded("abs"));
        assert!(IgnoreMatcher::parse("").unwrap().is_empty());
        assert!(IgnoreMatcher::parse("# only\n\n").unwrap().is_empty());
        assert!(!IgnoreMatcher::parse("x").unwrap().is_empty());
    }

    #[test]
    fn bom_only_counts_on_the_first_line() {
        let m = matcher(&["\u{feff}#c", "\u{feff}x"]);
        // The second line keeps its BOM, which is not whitespace in Go either.
        assert_eq!(m.patterns().collect::<Vec<_>>(), ["\u{feff}x"]);
    }

    #[test]
    fn buildkit_two_stage_preparation() {
        // The reader strips `/`, then the matcher trims again and sees `!`.
        let m = matcher(&["/ !foo"]);
        assert_eq!(m.patterns().collect::<Vec<_>>(), ["!foo"]);
        // `/` alone stays `/` and can never match.
        let m = matcher(&["/"]);
        assert_eq!(m.patterns().collect::<Vec<_>>(), ["/"]);
        assert!(!m.is_excluded("a"));
        // `.` and `..`-escapes never match inside the context.
        assert!(!matcher(&[".", "../x"]).is_excluded("x"));
        // A pattern that becomes blank after the reader strips `/` is dropped.
        assert!(matcher(&["/\t/"]).is_empty());
    }

    #[test]
    fn errors_name_line_and_pattern() {
        assert_eq!(
            IgnoreMatcher::parse("a\n\n  !  \n").unwrap_err(),
            IgnoreError::EmptyException {
                line: 3,
                text: "!".to_owned()
            }
        );
        let err = IgnoreMatcher::parse("# c\nok\n  src/[a-\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: bad pattern \"src/[a-\": unterminated character class"
        );
        // `!/` cleans down to a lone `!`.
        assert!(matches!(
            IgnoreMatcher::parse("!/").unwrap_err(),
            IgnoreError::EmptyException { line: 1, .. }
        ));
        assert!(matches!(
            IgnoreMatcher::parse("x\\").unwrap_err(),
            IgnoreError::BadPattern { line: 1, .. }
        ));
        let err = IgnoreMatcher::parse("[z-a]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: bad pattern \"[z-a]\": character range z-a is reversed"
        );
    }

    #[test]
    fn double_star_forms() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "a", true),
            ("**", "a/b/c", true),
            ("**/x", "x", true),
            ("**/x", "a/b/x", true),
            ("**/x", "ax", false),
            ("**x", "a/bx", true),
            ("**.go", "a/b.go", true),
            ("**/*.go", "a/b/c.go", true),
            ("**/*.go", "c.go", true),
            ("**/*.go", "a/c.txt", false),
            ("foo/**", "foo", false),
            ("foo/**", "foo/a/b", true),
            ("foo**", "foobar", true),
            ("f?o/**", "fxo", false),
            ("f?o/**", "fxo/y", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/xb", false),
            ("a**b", "ab", true),
            ("a**b", "ax/b", true),
            ("a**b", "axb", false),
            ("a/**/*/c", "a/b/c", true),
            ("a/**/*/c", "a/c", false),
            ("**/a/**", "x/a/y", true),
            ("**/a/**", "x/a", false),
            ("***x", "yx", true),
            ("***x", "a/b/yx", true),
            ("*/**/z", "a/z", true),
        ];
        for &(pattern, path, want) in cases {
            let m = matcher(&[pattern]);
            let got = m.patterns[0].matches(path);
            assert_eq!(got, want, "{pattern:?} on {path:?}");
        }
    }

    #[test]
    fn ancestors_and_last_match() {
        let m = matcher(&["docs", "!docs/keep", "docs/keep/secret*"]);
        assert!(m.is_excluded("docs"));
        assert!(m.is_excluded("docs/a/b"));
        assert!(!m.is_excluded("docs/keep"));
        assert!(!m.is_excluded("docs/keep/x"));
        assert!(m.is_excluded("docs/keep/secret.txt"));
        assert!(m.is_excluded("docs/keep/secret.d/x"));
        assert!(!m.is_excluded(""));
        assert!(!m.is_excluded("."));
        // Paths are cleaned before matching.
        assert!(m.is_excluded("./docs//a/"));
        assert!(!matcher(&["**"]).is_excluded("/"));
    }

    #[test]
    fn a_class_may_match_a_slash() {
        let m = matcher(&["a[^x]b"]);
        assert!(m.is_excluded("a/b"));
        assert!(!m.is_excluded("axb"));
    }

    #[test]
    fn skipping_directories() {
        let m = matcher(&["node_modules", "target"]);
        assert!(m.can_skip_dir("node_modules"));
        assert!(m.can_skip_dir("target/debug"));
        assert!(!m.can_skip_dir("src"));
        assert!(!m.can_skip_dir(""));

        let m = matcher(&["*", "!src/**/*.rs", "!docs/README.md", "!**/keep"]);
        assert!(!m.can_skip_dir("src"));
        assert!(!m.can_skip_dir("docs"));
        // `**/keep` could be below anything.
        assert!(!m.can_skip_dir("target"));

        let m = matcher(&["*", "!src/**/*.rs", "!docs/README.md", "!dist**"]);
        assert!(m.can_skip_dir("target"));
        assert!(m.can_skip_dir("docs/sub"));
        assert!(!m.can_skip_dir("src/a/b"));
        assert!(!m.can_skip_dir("dist"));
        assert!(!m.can_skip_dir("distfiles"));
        // Excluded by `*`, but an exception reaches below it.
        assert!(m.is_excluded("src"));
        assert!(!m.can_skip_dir("src"));

        // An exception before the deciding pattern cannot bring anything back.
        let m = matcher(&["!build/keep", "build"]);
        assert!(m.can_skip_dir("build"));
        // ... but one after it can.
        let m = matcher(&["build", "!build/keep"]);
        assert!(!m.can_skip_dir("build"));
        assert!(m.can_skip_dir("build/other"));
        // An exception matching only the directory itself is decided already.
        let m = matcher(&["b*", "!bin", "bin"]);
        assert!(m.can_skip_dir("bin"));
        // Exact exceptions need a strictly longer path below the directory.
        let m = matcher(&["a", "!a/b"]);
        assert!(!m.can_skip_dir("a"));
        assert!(m.can_skip_dir("a/c"));
        assert!(!m.can_skip_dir("a/b"));
    }

    #[test]
    fn specific_ignore_name() {
        assert_eq!(
            dockerfile_specific_ignore_name("build.Dockerfile"),
            "build.Dockerfile.dockerignore"
        );
        assert_eq!(
            dockerfile_specific_ignore_name("Dockerfile"),
            "Dockerfile.dockerignore"
        );
        assert_eq!(
            dockerfile_specific_ignore_name("docker/app.Dockerfile"),
            "app.Dockerfile.dockerignore"
        );
    }

    proptest! {
        #[test]
        fn parse_and_match_never_panic(
            text in "([ !#/.*?\\[\\]^\\\\a-c-]{0,10}\n){0,4}|\\PC{0,40}",
            path in "[a-c/.]{0,10}|\\PC{0,20}",
        ) {
            if let Ok(m) = IgnoreMatcher::parse(&text) {
                let _ = m.is_excluded(&path);
                let _ = m.can_skip_dir(&path);
                let _ = m.patterns().count();
            }
        }

        #[test]
        fn skipped_dirs_hide_only_excluded_paths(
            lines in proptest::collection::vec("!?[ab*/]{1,6}", 1..5),
            dir in "[ab]{1,2}(/[ab]{1,2})?",
            rest in "[ab]{1,2}(/[ab]{1,2}){0,2}",
        ) {
            if let Ok(m) = IgnoreMatcher::from_lines(&lines)
                && m.can_skip_dir(&dir)
            {
                let below = format!("{dir}/{rest}");
                prop_assert!(m.is_excluded(&below), "{:?} {} {}", lines, dir, below);
            }
        }
    }
}

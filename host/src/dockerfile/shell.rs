//! BuildKit's shell-word processor: quote removal, escapes and `$VAR` /
//! `${VAR…}` expansion.
//!
//! This is what the Dockerfile frontend applies to instruction arguments
//! (`ENV`, `ARG`, `COPY`, `WORKDIR`, …) and, in a "raw" mode, to the
//! instruction line when it looks for heredoc markers. It is pure: it reads
//! only the word it is given and the [`Env`] it is handed.
//!
//! The behaviour follows BuildKit's `frontend/dockerfile/shell` package
//! (conformance data and a prose description live in
//! `shared/conformance/README.md` §2):
//!
//! - outside quotes the escape character makes the next character literal;
//!   `'…'` is fully literal; `"…"` expands `$…` and only lets the escape
//!   character escape `"`, `$` and itself;
//! - `$NAME`, `${NAME}` and `${NAME<op>WORD}` with `-`, `:-`, `+`, `:+`,
//!   `?`, `:?`, `#`, `##`, `%`, `%%`, `/PAT/REPL` and `//PAT/REPL`;
//!   everything else (`:=`, `${#v}`, `${v:1:2}`, …) is an error;
//! - in word-list mode ([`Lexer::process_words`]) the result is split at
//!   unquoted whitespace, including whitespace produced by an unquoted
//!   expansion;
//! - `<<` and `<<-` followed by blanks are kept together with the word that
//!   follows, so that `RUN cat << EOF` still exposes the heredoc marker
//!   `<< EOF` as one word.
//!
//! ```
//! use std::collections::HashMap;
//! use kiln::dockerfile::shell::Lexer;
//!
//! let env = HashMap::from([("P".to_string(), "/usr/local/app.tar.gz".to_string())]);
//! let lexer = Lexer::new('\\');
//! assert_eq!(lexer.process_word("${P##*/}", &env).unwrap(), "app.tar.gz");
//! assert_eq!(lexer.process_words("a 'b c' ${P%%.*}", &env).unwrap(),
//!            ["a", "b c", "/usr/local/app"]);
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where variable values come from. Names are case-sensitive (Unix rules).
pub trait Env {
    /// The value of `name`, or `None` when it is unset. A variable that is
    /// set to the empty string returns `Some("")`.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// A list of pairs; when a name occurs more than once the last one wins.
impl Env for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

/// A list of pairs; when a name occurs more than once the last one wins.
impl<const N: usize> Env for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// A list of pairs; when a name occurs more than once the last one wins.
impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A list of pairs; when a name occurs more than once the last one wins.
impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// The environment in which every variable is unset.
impl Env for () {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// A word that could not be processed: an unterminated quote, a missing
/// `}`, an unsupported `${…}` form, an invalid pattern, or a `${v?msg}`
/// check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShellError {
    /// What is wrong and what was expected; lowercase, no final period.
    pub message: String,
    /// Character (not byte) offset into the word of the construct that
    /// failed: the opening quote, the `$` of a substitution, or the
    /// offending modifier character.
    pub offset: usize,
}

impl ShellError {
    fn new(offset: usize, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            offset,
        }
    }
}

/// The result of [`Lexer::process_word_with_matches`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    /// The processed word.
    pub result: String,
    /// Variable names that were looked up and found (possibly empty).
    pub matched: BTreeSet<String>,
    /// Variable names that were looked up and are unset.
    pub unmatched: BTreeSet<String>,
}

/// BuildKit's shell-word processor with its escape character and options.
///
/// All options default to `false`; they mirror the fields of BuildKit's
/// `shell.Lex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset_env: bool,
    skip_process_quotes: bool,
}

impl Default for Lexer {
    /// A lexer with the default escape character `\` and no options.
    fn default() -> Self {
        Self::new('\\')
    }
}

impl Lexer {
    /// A lexer using `escape` as its escape character (`\` by default in
    /// Dockerfiles, `` ` `` with `# escape=``). Defaults: quotes and escape
    /// characters are removed, unset variables expand to the empty string,
    /// quotes are interpreted.
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }

    /// Keep the quote characters `'` and `"` in the output (their meaning
    /// is still applied).
    pub fn raw_quotes(mut self, yes: bool) -> Self {
        self.raw_quotes = yes;
        self
    }

    /// Keep escape characters in the output (the escaped character is still
    /// taken literally).
    pub fn raw_escapes(mut self, yes: bool) -> Self {
        self.raw_escapes = yes;
        self
    }

    /// Leave `$VAR`, `${VAR}` and `${VAR<op>WORD}` of unset names as
    /// written instead of expanding them.
    pub fn skip_unset_env(mut self, yes: bool) -> Self {
        self.skip_unset_env = yes;
        self
    }

    /// Treat `'` and `"` as ordinary characters.
    pub fn skip_process_quotes(mut self, yes: bool) -> Self {
        self.skip_process_quotes = yes;
        self
    }

    /// Process `word` as one word: quotes removed, escapes applied,
    /// variables expanded, whitespace kept as is.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ShellError> {
        Ok(self.run(word, env)?.0)
    }

    /// Process `word` and split the result into words at unquoted
    /// whitespace (including whitespace that comes out of an unquoted
    /// variable expansion). Empty words are dropped.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        Ok(self.run(word, env)?.1)
    }

    /// Like [`Lexer::process_word`], but also reports which variable names
    /// were looked up and found (`matched`) and looked up but unset
    /// (`unmatched`) — the plan uses this to warn about unused build args
    /// and undefined variables.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<Expansion, ShellError> {
        let mut run = Run::new(self, word, env);
        let (result, _) = run.process_top()?;
        Ok(Expansion {
            result,
            matched: run.matched,
            unmatched: run.unmatched,
        })
    }

    fn run(&self, word: &str, env: &dyn Env) -> Result<(String, Vec<String>), ShellError> {
        Run::new(self, word, env).process_top()
    }
}

/// The word-list builder: characters that come from unquoted text or
/// unquoted expansions split at whitespace, everything else is kept.
#[derive(Default)]
struct Words {
    current: String,
    done: Vec<String>,
    /// Something (possibly an empty quoted string) was added since the last
    /// split; mirrors BuildKit, where only this state lets whitespace split.
    in_word: bool,
}

impl Words {
    fn push_splitting(&mut self, c: char) {
        if !c.is_whitespace() {
            self.push_raw(c);
        } else if self.in_word && !self.current.is_empty() {
            self.done.push(std::mem::take(&mut self.current));
            self.in_word = false;
        }
    }

    fn push_splitting_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.push_splitting(c));
    }

    fn push_raw(&mut self, c: char) {
        self.current.push(c);
        self.in_word = true;
    }

    fn push_raw_str(&mut self, s: &str) {
        self.current.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

/// One processing run over one word.
struct Run<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    chars: Vec<char>,
    pos: usize,
    /// Whether escape characters are currently kept; `${v#…}`, `${v%…}` and
    /// `${v/…/…}` turn it on for their operands, `${v-…}` and friends off.
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

/// The parts of a processed (sub)word: the text and its word split.
type Processed = (String, Vec<String>);

impl<'a> Run<'a> {
    fn new(lexer: &'a Lexer, word: &str, env: &'a dyn Env) -> Self {
        Self {
            lexer,
            env,
            chars: word.chars().collect(),
            pos: 0,
            raw_escapes: lexer.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn process_top(&mut self) -> Result<Processed, ShellError> {
        let raw = self.lexer.raw_escapes;
        // Without a stop character the end of input is the normal end.
        Ok(self.process_until(None, raw)?.unwrap_or_default())
    }

    /// Process up to (and consuming) `stop`, or to the end of input when
    /// `stop` is `None`. `Ok(None)` means the end of input came first.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<Option<Processed>, ShellError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.process_until_inner(stop);
        self.raw_escapes = saved;
        result
    }

    fn process_until_inner(&mut self, stop: Option<char>) -> Result<Option<Processed>, ShellError> {
        let mut out = String::new();
        let mut words = Words::default();
        let quotes = !self.lexer.skip_process_quotes;
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok(Some((out, words.finish())));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                    words.push_splitting_str(&value);
                }
                '\'' if quotes => {
                    let text = self.single_quoted()?;
                    out.push_str(&text);
                    words.push_raw_str(&text);
                }
                '"' if quotes => {
                    let text = self.double_quoted()?;
                    out.push_str(&text);
                    words.push_raw_str(&text);
                }
                '<' => {
                    let text = self.heredoc_arrows();
                    out.push_str(&text);
                    words.push_raw_str(&text);
                }
                _ => {
                    self.pos += 1;
                    if c != self.lexer.escape {
                        out.push(c);
                        words.push_splitting(c);
                        continue;
                    }
                    if self.raw_escapes {
                        out.push(c);
                        words.push_raw(c);
                    }
                    // An escape character at the very end is dropped.
                    let Some(escaped) = self.next_char() else {
                        break;
                    };
                    out.push(escaped);
                    words.push_raw(escaped);
                }
            }
        }
        Ok(match stop {
            Some(_) => None,
            None => Some((out, words.finish())),
        })
    }

    /// `'…'`: everything literal up to the next `'`.
    fn single_quoted(&mut self) -> Result<String, ShellError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next_char() {
                None => return Err(self.unterminated_quote(start, '\'')),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `"…"`: `$` expands; the escape character escapes only `"`, `$` and
    /// itself and is kept literally before anything else.
    fn double_quoted(&mut self) -> Result<String, ShellError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(self.unterminated_quote(start, '"')),
                Some('"') => {
                    self.pos += 1;
                    if self.lexer.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(c) => {
                    self.pos += 1;
                    if c != self.lexer.escape {
                        out.push(c);
                        continue;
                    }
                    match self.peek() {
                        // Dropped; the loop then reports the missing quote.
                        None => {}
                        Some(next) if next == '"' || next == '$' || next == self.lexer.escape => {
                            if self.raw_escapes {
                                out.push(c);
                            }
                            self.pos += 1;
                            out.push(next);
                        }
                        Some(_) => {
                            // Not an escape: the character stays. (BuildKit
                            // writes it twice in raw-escape mode; we do not.)
                            out.push(c);
                        }
                    }
                }
            }
        }
    }

    /// `<<`, `<<-` and the blanks after them stay glued to the next word,
    /// so the parser can find `<< EOF` style heredoc markers.
    fn heredoc_arrows(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.pos += 1;
        let mut out = "<<".to_string();
        if self.peek() == Some('-') {
            self.pos += 1;
            out.push('-');
        }
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            self.pos += 1;
            out.push(c);
        }
        out
    }

    /// A name after `$` or `${`: a run of digits, one special parameter
    /// character, or letters/digits/underscores. Empty if none of these.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    name.push(d);
                }
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                name.push(c);
            }
            _ => {
                while let Some(c) = self.peek().filter(|&c| c.is_alphanumeric() || c == '_') {
                    self.pos += 1;
                    name.push(c);
                }
            }
        }
        name
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(value) => {
                self.matched.insert(name.to_string());
                Some(value.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// `$NAME` or `${…}`, with the scanner on the `$`.
    fn dollar(&mut self) -> Result<String, ShellError> {
        let start = self.pos;
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(self.missing_brace(start)),
            Some('{' | '}' | ':') => {
                return Err(self.bad_substitution(
                    start,
                    self.pos,
                    "expected a variable name after '${'",
                ));
            }
            Some(_) => {}
        }
        let name = self.name();
        let op_pos = self.pos;
        let Some(op) = self.next_char() else {
            return Err(self.missing_brace(start));
        };
        match op {
            '}' => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => self.modifier(start, op_pos, name, op),
            '/' => self.replace(start, name),
            // Like BuildKit, an empty name is only rejected here: `${+x}`
            // looks up the (never set) empty name.
            _ if name.is_empty() => {
                Err(self.bad_substitution(start, op_pos, "expected a variable name after '${'"))
            }
            _ => Err(self.unsupported(start, op_pos, &op.to_string())),
        }
    }

    /// `${NAME<op>WORD}` for the default, alternative, check and trim
    /// operators; the scanner is just after `op`.
    fn modifier(
        &mut self,
        start: usize,
        op_pos: usize,
        name: String,
        op: char,
    ) -> Result<String, ShellError> {
        let (colon, op) = if op == ':' {
            match self.next_char() {
                Some(next) => (true, next),
                None => return Err(self.missing_brace(start)),
            }
        } else {
            (false, op)
        };
        let spelled = if colon {
            format!(":{op}")
        } else {
            op.to_string()
        };
        let trim = op == '#' || op == '%';
        if colon && trim {
            return Err(self.unsupported(start, op_pos, &spelled));
        }
        // Like BuildKit, the word is processed before the operator is
        // validated, so an unset name left as written (skip_unset_env) also
        // passes through forms such as `${v:=x}` untouched.
        let Some((word, _)) = self.process_until(Some('}'), trim)? else {
            return Err(self.missing_brace(start));
        };
        let value = self.lookup(&name);
        if value.is_none() && self.lexer.skip_unset_env {
            return Ok(format!("${{{name}{spelled}{word}}}"));
        }
        let empty = value.as_deref().is_none_or(str::is_empty);
        let absent = value.is_none() || (colon && empty);
        match op {
            '-' => Ok(if absent {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if absent { String::new() } else { word }),
            '?' => {
                if !absent {
                    return Ok(value.unwrap_or_default());
                }
                let message = if !word.is_empty() {
                    word
                } else if value.is_none() {
                    "is not allowed to be unset".to_string()
                } else {
                    "is not allowed to be empty".to_string()
                };
                Err(ShellError::new(start, format!("{name}: {message}")))
            }
            '#' | '%' => {
                // A doubled operator (`##`, `%%`) asks for the longest match.
                let (longest, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let pattern = Pattern::parse(pattern)
                    .map_err(|e| self.invalid_pattern(start, pattern, &e))?;
                let value: Vec<char> = value.unwrap_or_default().chars().collect();
                Ok(if op == '#' {
                    match pattern.match_prefix(&value, longest) {
                        Some(end) => value[end..].iter().collect(),
                        None => value.iter().collect(),
                    }
                } else {
                    match pattern.match_suffix(&value, longest) {
                        Some(begin) => value[..begin].iter().collect(),
                        None => value.iter().collect(),
                    }
                })
            }
            _ => Err(self.unsupported(start, op_pos, &spelled)),
        }
    }

    /// `${NAME/PATTERN/REPL}` and `${NAME//PATTERN/REPL}`; the scanner is
    /// just after the first `/`.
    fn replace(&mut self, start: usize, name: String) -> Result<String, ShellError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let Some((pattern, _)) = self.process_until(Some('/'), true)? else {
            let text = self.chars[start..].iter().collect::<String>();
            return Err(ShellError::new(
                start,
                format!("missing '/' between pattern and replacement in {text:?}"),
            ));
        };
        let Some((replacement, _)) = self.process_until(Some('}'), true)? else {
            return Err(self.missing_brace(start));
        };
        let Some(value) = self.lookup(&name) else {
            if self.lexer.skip_unset_env {
                let slashes = if all { "//" } else { "/" };
                return Ok(format!("${{{name}{slashes}{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let compiled =
            Pattern::parse(&pattern).map_err(|e| self.invalid_pattern(start, &pattern, &e))?;
        let value: Vec<char> = value.chars().collect();
        Ok(if all {
            compiled.replace_all(&value, &replacement)
        } else {
            match compiled.find(&value, 0) {
                Some((from, to)) => {
                    let mut out: String = value[..from].iter().collect();
                    out.push_str(&replacement);
                    out.extend(&value[to..]);
                    out
                }
                None => value.iter().collect(),
            }
        })
    }

    /// The text of the substitution starting at `start`, up to its
    /// matching `}` (or the end of the word), for error messages.
    fn substitution_text(&self, start: usize) -> String {
        let mut depth = 0usize;
        let mut text = String::new();
        for &c in &self.chars[start..] {
            text.push(c);
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        text
    }

    fn unterminated_quote(&self, start: usize, quote: char) -> ShellError {
        let word: String = self.chars.iter().collect();
        ShellError::new(
            start,
            format!("unterminated quote: expected a closing {quote} in {word:?}"),
        )
    }

    fn missing_brace(&self, start: usize) -> ShellError {
        let text: String = self.chars[start..].iter().collect();
        ShellError::new(start, format!("missing '}}' in {text:?}"))
    }

    fn bad_substitution(&self, start: usize, offset: usize, what: &str) -> ShellError {
        ShellError::new(
            offset,
            format!(
                "bad substitution: {what} in {}",
                self.substitution_text(start)
            ),
        )
    }

    fn unsupported(&self, start: usize, offset: usize, modifier: &str) -> ShellError {
        self.bad_substitution(start, offset, &format!("unsupported modifier '{modifier}'"))
    }

    fn invalid_pattern(&self, start: usize, pattern: &str, why: &str) -> ShellError {
        ShellError::new(
            start,
            format!(
                "invalid pattern {pattern:?} in {}: {why}",
                self.substitution_text(start)
            ),
        )
    }
}

/// One element of a `${v#…}` / `${v/…/…}` pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// This exact character.
    Char(char),
    /// `?`: any one character except a newline.
    One,
    /// `*`: any run of characters without a newline.
    Any,
}

/// A shell pattern as BuildKit supports it: `*`, `?`, `\*`, `\?`, `\\`
/// and literal characters; no bracket expressions. BuildKit compiles the
/// pattern into a Go regular expression, whose `.` does not match a
/// newline; `*` and `?` therefore stop at newlines here too.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern(Vec<Token>);

impl Pattern {
    /// Parse `text`, where `\` escapes `*`, `?` and `\`, and is dropped in
    /// front of `/` and `}` (which must be escaped inside `${…}`).
    fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Any,
                '?' => Token::One,
                '\\' => match chars.next() {
                    Some(e @ ('*' | '?' | '\\' | '/' | '}')) => Token::Char(e),
                    Some(e) => {
                        return Err(format!(
                            "invalid escape '\\{e}', expected one of \\*, \\?, \\\\, \\/ or \\}}"
                        ));
                    }
                    None => {
                        return Err("expected a character after the final '\\'".to_string());
                    }
                },
                c => Token::Char(c),
            });
        }
        Ok(Self(tokens))
    }

    /// Every end position `e` such that the pattern matches
    /// `value[start..e]`, as a boolean table indexed by position.
    fn ends(tokens: &[Token], value: &[char], start: usize) -> Vec<bool> {
        let n = value.len();
        let mut reach = vec![false; n + 1];
        reach[start] = true;
        for token in tokens {
            let mut next = vec![false; n + 1];
            match *token {
                Token::Char(c) => {
                    for i in start..n {
                        next[i + 1] = reach[i] && value[i] == c;
                    }
                }
                Token::One => {
                    for i in start..n {
                        next[i + 1] = reach[i] && value[i] != '\n';
                    }
                }
                Token::Any => {
                    let mut live = false;
                    for i in start..=n {
                        live = reach[i] || (live && value[i - 1] != '\n');
                        next[i] = live;
                    }
                }
            }
            reach = next;
            if !reach.contains(&true) {
                break;
            }
        }
        reach
    }

    /// The end of the shortest (or longest) match anchored at `start`.
    fn match_at(tokens: &[Token], value: &[char], start: usize, longest: bool) -> Option<usize> {
        let ends = Self::ends(tokens, value, start);
        let mut hits = (start..=value.len()).filter(|&e| ends[e]);
        if longest {
            hits.next_back()
        } else {
            hits.next()
        }
    }

    /// End of the shortest/longest prefix of `value` matching the pattern.
    fn match_prefix(&self, value: &[char], longest: bool) -> Option<usize> {
        Self::match_at(&self.0, value, 0, longest)
    }

    /// Start of the shortest/longest suffix of `value` matching the
    /// pattern, found by matching the reversed pattern on the reversed
    /// value.
    fn match_suffix(&self, value: &[char], longest: bool) -> Option<usize> {
        let tokens: Vec<Token> = self.0.iter().rev().copied().collect();
        let reversed: Vec<char> = value.iter().rev().copied().collect();
        Self::match_at(&tokens, &reversed, 0, longest).map(|len| value.len() - len)
    }

    /// The leftmost match starting at or after `from`, longest at that
    /// start (BuildKit's wildcards are greedy in `${v/…/…}`).
    fn find(&self, value: &[char], from: usize) -> Option<(usize, usize)> {
        // One pass tracking, for every position, the earliest start from
        // which the tokens seen so far reach it; then the longest end for
        // the earliest start overall.
        const NONE: usize = usize::MAX;
        let n = value.len();
        let mut earliest: Vec<usize> = (0..=n).map(|i| if i >= from { i } else { NONE }).collect();
        for token in &self.0 {
            let mut next = vec![NONE; n + 1];
            match *token {
                Token::Char(c) => {
                    for i in 0..n {
                        if value[i] == c {
                            next[i + 1] = earliest[i];
                        }
                    }
                }
                Token::One => {
                    for i in 0..n {
                        if value[i] != '\n' {
                            next[i + 1] = earliest[i];
                        }
                    }
                }
                Token::Any => {
                    let mut carried = NONE;
                    for i in 0..=n {
                        if i > 0 && value[i - 1] == '\n' {
                            carried = NONE;
                        }
                        carried = carried.min(earliest[i]);
                        next[i] = carried;
                    }
                }
            }
            earliest = next;
        }
        let start = earliest.iter().copied().min().filter(|&s| s != NONE)?;
        Self::match_at(&self.0, value, start, true).map(|end| (start, end))
    }

    /// Replace every non-overlapping match, the way Go's
    /// `Regexp.ReplaceAllString` does: an empty match right after a
    /// previous match is skipped, and the replacement is a Go template in
    /// which `$0` / `${0}` is the match, `$$` a dollar, and any other
    /// `$name` empty.
    fn replace_all(&self, value: &[char], replacement: &str) -> String {
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= value.len() {
            let Some((from, to)) = self.find(value, search) else {
                break;
            };
            out.extend(&value[last_end..from]);
            if to > last_end || from == 0 {
                expand_go_template(&mut out, replacement, &value[from..to]);
            }
            last_end = to;
            search = if to > search { to } else { search + 1 };
        }
        out.extend(&value[last_end..]);
        out
    }
}

/// Append Go's `regexp` template expansion of `template` to `out`, for a
/// regular expression whose only group is the whole match.
fn expand_go_template(out: &mut String, template: &str, matched: &[char]) {
    let is_name_char = |c: char| c == '_' || c.is_alphanumeric();
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (braced, body) = match after.strip_prefix('{') {
            Some(body) => (true, body),
            None => (false, after),
        };
        let len = body
            .char_indices()
            .find(|&(_, c)| !is_name_char(c))
            .map_or(body.len(), |(i, _)| i);
        let name = &body[..len];
        let mut tail = &body[len..];
        let well_formed = !name.is_empty()
            && (!braced || {
                let closed = tail.strip_prefix('}');
                closed.inspect(|t| tail = t).is_some()
            });
        if !well_formed {
            // Not a reference: the dollar is literal text.
            out.push('$');
            rest = after;
            continue;
        }
        if name == "0" {
            out.extend(matched);
        }
        rest = tail;
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [
            ("V", "foobarbaz"),
            ("E", ""),
            ("S", "a  b"),
            ("P", "/usr/local/bin/app.tar.gz"),
            ("NL", "a\nb"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn word(input: &str) -> Result<String, ShellError> {
        Lexer::new('\\').process_word(input, &env())
    }

    fn words(input: &str) -> Vec<String> {
        Lexer::new('\\').process_words(input, &env()).unwrap()
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(word(r#"a\ b"#).unwrap(), "a b");
        assert_eq!(word(r#""a\tb""#).unwrap(), r"a\tb");
        assert_eq!(word(r#""a\"b\$V\\""#).unwrap(), r#"a"b$V\"#);
        assert_eq!(word(r"'\$V'").unwrap(), r"\$V");
        assert_eq!(word(r"end\").unwrap(), "end");
        assert_eq!(word(r#""\"#).unwrap_err().offset, 0);
    }

    #[test]
    fn backtick_escape() {
        let lexer = Lexer::new('`');
        assert_eq!(
            lexer.process_word(r"C:\dir` x", &env()).unwrap(),
            r"C:\dir x"
        );
        assert_eq!(lexer.process_word("\"`$V``\"", &env()).unwrap(), "$V`");
        assert_eq!(
            lexer.process_word(r#""\$V""#, &env()).unwrap(),
            r"\foobarbaz"
        );
    }

    #[test]
    fn names() {
        assert_eq!(word("$V.x").unwrap(), "foobarbaz.x");
        assert_eq!(word("$1a").unwrap(), "a");
        assert_eq!(word("$@@").unwrap(), "@");
        assert_eq!(word("$").unwrap(), "$");
        assert_eq!(word("a$ b").unwrap(), "a$ b");
    }

    #[test]
    fn errors_say_what_was_expected() {
        let e = word("${foo").unwrap_err();
        assert_eq!(e.message, r#"missing '}' in "${foo""#);
        assert_eq!(e.offset, 0);
        let e = word("ab${v:=w}").unwrap_err();
        assert_eq!(
            e.message,
            "bad substitution: unsupported modifier ':=' in ${v:=w}"
        );
        assert_eq!(e.offset, 5);
        let e = word("${U:?must be set}").unwrap_err();
        assert_eq!(e.message, "U: must be set");
        assert_eq!(
            word("${E:?}").unwrap_err().message,
            "E: is not allowed to be empty"
        );
        assert_eq!(
            word("${U?}").unwrap_err().message,
            "U: is not allowed to be unset"
        );
        let e = word("x'abc").unwrap_err();
        assert_eq!(e.offset, 1);
        assert_eq!(
            e.message,
            r#"unterminated quote: expected a closing ' in "x'abc""#
        );
        assert_eq!(
            word("${}").unwrap_err().message,
            "bad substitution: expected a variable name after '${' in ${}"
        );
        assert_eq!(
            word("${V/bar}").unwrap_err().message,
            r#"missing '/' between pattern and replacement in "${V/bar}""#
        );
        assert!(
            word(r"${V#\a}")
                .unwrap_err()
                .message
                .contains("invalid escape")
        );
        assert_eq!(ShellError::new(0, "x").to_string(), "x");
    }

    #[test]
    fn colon_trim_is_rejected_even_when_skipping_unset() {
        let lexer = Lexer::new('\\').skip_unset_env(true);
        assert!(lexer.process_word("${U:#x}", &env()).is_err());
        assert_eq!(lexer.process_word("${U:=x}", &env()).unwrap(), "${U:=x}");
        assert!(lexer.process_word("${U=x}", &env()).is_err());
    }

    #[test]
    fn skip_unset_env_leaves_references() {
        let lexer = Lexer::new('\\').skip_unset_env(true);
        let got = lexer.process_word("$U ${U} ${U:-d} ${U//a/b} $V", &env());
        assert_eq!(got.unwrap(), "$U ${U} ${U:-d} ${U//a/b} foobarbaz");
    }

    #[test]
    fn raw_modes() {
        let lexer = Lexer::new('\\').raw_quotes(true).raw_escapes(true);
        assert_eq!(
            lexer
                .process_word(r#"'a b' "c\"d" e\ f "\t""#, &env())
                .unwrap(),
            r#"'a b' "c\"d" e\ f "\t""#
        );
        let words = lexer.process_words(r#"x 'a b' "c d""#, &env()).unwrap();
        assert_eq!(words, ["x", "'a b'", "\"c d\""]);
        let lexer = Lexer::new('\\').skip_process_quotes(true);
        assert_eq!(lexer.process_words("'a b'", &env()).unwrap(), ["'a", "b'"]);
    }

    #[test]
    fn heredoc_arrows_stay_with_their_word() {
        assert_eq!(words("cat << EOF > f"), ["cat", "<< EOF", ">", "f"]);
        assert_eq!(words("cat <<- \tEOF"), ["cat", "<<- \tEOF"]);
        assert_eq!(words("3<<EOF a<b"), ["3<<EOF", "a<b"]);
        assert_eq!(word("a << b").unwrap(), "a << b");
        let raw = Lexer::new('\\')
            .raw_quotes(true)
            .raw_escapes(true)
            .skip_unset_env(true);
        let got = raw.process_words("<<'EOT' <<-\"X\" cmd $U", &()).unwrap();
        assert_eq!(got, ["<<'EOT'", "<<-\"X\"", "cmd", "$U"]);
    }

    #[test]
    fn word_splitting() {
        assert_eq!(words("a${S}b"), ["aa", "bb"]);
        assert_eq!(words("a\"${S}\"b"), ["aa  bb"]);
        assert_eq!(words("'' x \"\""), ["x"]);
        assert_eq!(words("a${U:-x y}b"), ["ax", "yb"]);
    }

    #[test]
    fn patterns() {
        assert_eq!(word("${P#*/}").unwrap(), "usr/local/bin/app.tar.gz");
        assert_eq!(word("${P##*/}").unwrap(), "app.tar.gz");
        assert_eq!(word("${P%.*}").unwrap(), "/usr/local/bin/app.tar");
        assert_eq!(word("${P%%.*}").unwrap(), "/usr/local/bin/app");
        assert_eq!(word("${V%%}").unwrap(), "foobarbaz");
        assert_eq!(word(r"${V/\}/x}").unwrap(), "foobarbaz");
        assert_eq!(word("${V/*/x}").unwrap(), "x");
        assert_eq!(word("${V//?/x}").unwrap(), "xxxxxxxxx");
        // `*` and `?` do not cross newlines (Go regexp `.`).
        assert_eq!(word("${NL#*b}").unwrap(), "a\nb");
        assert_eq!(word("${NL//?/x}").unwrap(), "x\nx");
    }

    #[test]
    fn replace_all_follows_go() {
        // Empty pattern: a match before every character and at the end.
        assert_eq!(word("${V//}").unwrap_err().offset, 0);
        assert_eq!(word("${V///x}").unwrap(), "xfxoxoxbxaxrxbxaxzx");
        assert_eq!(word("${V/''/x}").unwrap(), "xfoobarbaz");
        // Go template in the replace-all replacement only.
        assert_eq!(word("${V//o/'[$0]'}").unwrap(), "f[o][o]barbaz");
        assert_eq!(word("${V/o/'[$0]'}").unwrap(), "f[$0]obarbaz");
        assert_eq!(word("${V//o/'$$'}").unwrap(), "f$$barbaz");
        assert_eq!(word("${V//o/'$1x'}").unwrap(), "fbarbaz");
        assert_eq!(word("${V//o/'${0}.$.'}").unwrap(), "fo.$.o.$.barbaz");
    }

    #[test]
    fn matches_are_reported() {
        let got = Lexer::new('\\')
            .process_word_with_matches("$V ${E:-x} ${U} $1", &env())
            .unwrap();
        assert_eq!(got.result, "foobarbaz x  ");
        assert_eq!(got.matched, BTreeSet::from(["V".into(), "E".into()]));
        assert_eq!(got.unmatched, BTreeSet::from(["U".into(), "1".into()]));
    }

    #[test]
    fn env_impls() {
        let pairs = [("A", "1"), ("A", "2")];
        assert_eq!(Env::get(&pairs, "A"), Some("2"));
        assert_eq!(Env::get(&pairs[..], "B"), None);
        let map = BTreeMap::from([("A".to_string(), String::new())]);
        assert_eq!(Lexer::default().process_word("${A-x}", &map).unwrap(), "");
        let map = HashMap::from([("A".to_string(), "v".to_string())]);
        assert_eq!(Lexer::default().process_word("$A", &map).unwrap(), "v");
    }

    proptest::proptest! {
        /// Arbitrary input never panics, in either mode, with either escape
        /// character and any combination of options.
        #[test]
        fn never_panics(
            input in r#"([\\`'"$\{\}:/#%?*+=<>\- \t\nabVPSE0-9]|\PC){0,40}"#,
            backtick: bool,
            options: [bool; 4],
        ) {
            let lexer = Lexer::new(if backtick { '`' } else { '\\' })
                .raw_quotes(options[0])
                .raw_escapes(options[1])
                .skip_unset_env(options[2])
                .skip_process_quotes(options[3]);
            let env = env();
            let word = lexer.process_word(&input, &env);
            let words = lexer.process_words(&input, &env);
            let with_matches = lexer.process_word_with_matches(&input, &env);
            proptest::prop_assert_eq!(word.is_ok(), words.is_ok());
            if let Ok(expansion) = with_matches {
                proptest::prop_assert_eq!(Some(expansion.result), word.ok());
            }
        }

        /// Arbitrary strings (any characters) never panic either.
        #[test]
        fn never_panics_on_any_string(input in proptest::prelude::any::<String>()) {
            let env = env();
            let _ = Lexer::new('\\').process_word(&input, &env);
            let _ = Lexer::new('`').raw_escapes(true).process_words(&input, &env);
        }
    }
}

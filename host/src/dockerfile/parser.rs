//! The Dockerfile parser: physical lines → directives, comments,
//! continuations and heredocs → one [`Node`] per instruction.
//!
//! This is the *syntax* stage only, matching BuildKit's
//! `frontend/dockerfile/parser` (the conformance data in
//! `shared/conformance/buildkit-parser` pins it down): instruction names are
//! not checked here, flags are not validated and nothing is expanded. The
//! rules are written out in `shared/conformance/README.md` §1.

use super::error::{ParseError, Span};
use super::shell::{Env, Lexer};

/// Parser directives found at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Directives {
    /// `# syntax=` value.
    pub syntax: Option<String>,
    /// `# escape=` value; `\` when absent.
    pub escape: char,
    /// `# check=` value, unparsed.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Self {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Heredoc {
    /// The terminator word.
    pub name: String,
    /// File descriptor prefix (`3<<EOF`), 0 when absent.
    pub fd: u32,
    /// Whether the body is expanded at build time (delimiter not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body when used.
    pub chomp: bool,
    /// The raw body, each line followed by `\n` (a CR before it is kept).
    pub content: String,
}

impl Heredoc {
    /// The body as the instruction uses it: with `<<-`, leading tabs removed
    /// from every line.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// One instruction as the parser sees it: nothing typed or expanded yet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    /// The keyword as written (`From`, `RUN`…).
    pub keyword: String,
    /// Leading `--flags`, quotes removed.
    pub flags: Vec<String>,
    /// Arguments after the instruction rules of BuildKit's parser.
    pub args: Vec<String>,
    /// Whether the arguments came from a JSON array.
    pub json: bool,
    /// Heredocs, in the order they appear on the line. For ONBUILD they are
    /// kept here, on the outer node, as BuildKit does.
    pub heredocs: Vec<Heredoc>,
    /// For ONBUILD: the nested instruction.
    pub inner: Option<Box<Node>>,
    /// The assembled logical line, continuations joined, keyword included.
    pub original: String,
    /// First physical line (1-based).
    pub start_line: usize,
    /// Last physical line consumed (1-based), heredoc bodies included.
    pub end_line: usize,
    /// The keyword's position.
    pub span: Span,
    /// Where the text after the flags starts.
    pub args_span: Span,
    /// The logical line and where its pieces sit in the file.
    #[serde(skip)]
    pos: Positions,
}

/// A logical line with the map back to physical positions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Positions {
    line: String,
    segments: Vec<Segment>,
}

impl Node {
    /// The span of the first occurrence of `needle` in the instruction's
    /// logical line, mapped back to its physical line and column.
    pub fn locate(&self, needle: &str) -> Option<Span> {
        if needle.is_empty() {
            return None;
        }
        let at = self.pos.line.find(needle)?;
        let map = PosMap {
            segments: &self.pos.segments,
            line: &self.pos.line,
        };
        Some(map.span(at, needle.chars().count()))
    }

    /// The instruction name in lower case (`run`, `copy`, …).
    pub fn name(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    /// The node in the `result` format of BuildKit's parser tests, e.g.
    /// `(copy ["--from=x"] "a" "b")`.
    pub fn dump(&self) -> String {
        let mut out = format!("({}", self.name());
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            out.push_str(&format!(" [{}]", flags.join(" ")));
        }
        if let Some(inner) = &self.inner {
            out.push(' ');
            out.push_str(&inner.dump());
        }
        for a in &self.args {
            out.push(' ');
            out.push_str(&go_quote(a));
        }
        out.push(')');
        out
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dockerfile {
    /// The file name errors are reported against.
    pub file: String,
    /// Directives from the top of the file.
    pub directives: Directives,
    /// Instructions in file order.
    pub nodes: Vec<Node>,
    /// Non-fatal findings, such as empty continuation lines.
    pub warnings: Vec<ParseWarning>,
    /// The physical lines, for error displays.
    #[serde(skip)]
    pub lines: Vec<String>,
}

/// A non-fatal finding of the parser (BuildKit prints these as warnings).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParseWarning {
    /// Where.
    pub span: Span,
    /// What, lowercase.
    pub message: String,
}

impl Dockerfile {
    /// First line of the first instruction and last line of the last one.
    pub fn line_range(&self) -> (usize, usize) {
        match (self.nodes.first(), self.nodes.last()) {
            (Some(a), Some(b)) => (a.start_line, b.end_line),
            _ => (0, 0),
        }
    }

    /// Makes an error at `span` of this file, with the source line attached.
    pub fn error(&self, span: Span, message: impl Into<String>) -> ParseError {
        make_error(&self.file, &self.lines, span, message.into())
    }

    /// The whole file in the `result` format of BuildKit's parser tests.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            out.push_str(&n.dump());
            out.push('\n');
        }
        out
    }
}

fn make_error(file: &str, lines: &[String], span: Span, message: String) -> ParseError {
    let source_line = span
        .line
        .checked_sub(1)
        .and_then(|i| lines.get(i))
        .cloned()
        .unwrap_or_default();
    ParseError {
        file: file.to_string(),
        span,
        message,
        source_line,
    }
}

/// Instructions whose names the parser recognises; the rest parse as
/// "unknown" and are reported by the planner with a suggestion.
const HEREDOC_CAPABLE: [&str; 3] = ["run", "copy", "add"];

/// Parses Dockerfile bytes. `file` is the name errors are reported against.
///
/// ```
/// let df = kiln::dockerfile::parse(b"FROM busybox\nRUN echo hi\n", "Dockerfile").unwrap();
/// assert_eq!(df.dump(), "(from \"busybox\")\n(run \"echo hi\")\n");
/// ```
pub fn parse(input: &[u8], file: &str) -> Result<Dockerfile, ParseError> {
    let text = match std::str::from_utf8(input) {
        Ok(t) => t,
        Err(e) => {
            let good = &input[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            return Err(ParseError {
                file: file.to_string(),
                span: Span::new(line, col, 1),
                message: "the Dockerfile is not valid UTF-8 text".into(),
                source_line: String::from_utf8_lossy(&input[line_start..])
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut raw_lines: Vec<&str> = text.split('\n').collect();
    // A final "\n" does not start another line.
    if raw_lines.last() == Some(&"") {
        raw_lines.pop();
    }
    let lines: Vec<String> = raw_lines
        .iter()
        .map(|l| l.trim_end_matches(['\r', '\n']).to_string())
        .collect();
    Parser {
        file,
        raw_lines: &raw_lines,
        lines: &lines,
        directives: Directives::default(),
        seen_directives: Vec::new(),
        parsing_directives: true,
        warnings: Vec::new(),
    }
    .run()
    .map(|(directives, nodes, warnings)| Dockerfile {
        file: file.to_string(),
        directives,
        nodes,
        warnings,
        lines: lines.clone(),
    })
}

/// A piece of a logical line: where it starts in the logical line and
/// where that text sits in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    logical: usize,
    line: usize,
    col: usize,
}

struct Parser<'a> {
    file: &'a str,
    raw_lines: &'a [&'a str],
    lines: &'a [String],
    directives: Directives,
    seen_directives: Vec<String>,
    parsing_directives: bool,
    warnings: Vec<ParseWarning>,
}

type Parsed = (Directives, Vec<Node>, Vec<ParseWarning>);

impl Parser<'_> {
    fn err(&self, span: Span, message: String) -> ParseError {
        make_error(self.file, self.lines, span, message)
    }

    fn run(mut self) -> Result<Parsed, ParseError> {
        let mut nodes = Vec::new();
        let mut i = 0;
        while i < self.lines.len() {
            let lineno = i + 1;
            let physical = &self.lines[i];
            i += 1;
            let stripped = physical.trim_start();
            let lead = physical.chars().count() - stripped.chars().count();
            self.directive(stripped, lineno, lead)?;
            let first = if is_comment(stripped) { "" } else { stripped };
            let (mut line, mut end) = self.trim_continuation(first);
            if end && line.is_empty() {
                continue;
            }
            let start_line = lineno;
            let mut segments = vec![Segment {
                logical: 0,
                line: lineno,
                col: lead + 1,
            }];
            while !end && i < self.lines.len() {
                let cont_no = i + 1;
                let cont = &self.lines[i];
                i += 1;
                self.directive(cont, cont_no, 0)?;
                if is_comment(cont) {
                    continue;
                }
                if cont.trim().is_empty() {
                    self.warnings.push(ParseWarning {
                        span: Span::new(cont_no, 1, 1),
                        message: "empty continuation line".into(),
                    });
                    continue;
                }
                let (text, e) = self.trim_continuation(cont);
                segments.push(Segment {
                    logical: line.len(),
                    line: cont_no,
                    col: 1,
                });
                line.push_str(&text);
                end = e;
            }
            let map = PosMap {
                segments: &segments,
                line: &line,
            };
            let mut node = self.node_from_line(&line, &map)?;
            node.start_line = start_line;
            node.end_line = i;
            if node.can_contain_heredoc() && line.contains("<<") {
                for mut heredoc in heredocs_from_line(&line) {
                    let mut terminated = false;
                    while i < self.raw_lines.len() {
                        let raw = self.raw_lines[i];
                        i += 1;
                        let mut candidate = raw.trim_end_matches(['\r', '\n']);
                        if heredoc.chomp {
                            candidate = candidate.trim_start_matches('\t');
                        }
                        if candidate == heredoc.name {
                            terminated = true;
                            break;
                        }
                        heredoc.content.push_str(raw);
                        heredoc.content.push('\n');
                    }
                    if !terminated {
                        return Err(self.err(
                            node.args_span,
                            format!(
                                "unterminated heredoc: no line reading {:?} before the end of the file",
                                heredoc.name
                            ),
                        ));
                    }
                    node.heredocs.push(heredoc);
                }
                node.end_line = i;
            }
            nodes.push(node);
        }
        if nodes.is_empty() {
            return Err(self.err(
                Span::new(1, 1, 1),
                "file with no instructions: expected at least a FROM instruction".into(),
            ));
        }
        Ok((self.directives, nodes, self.warnings))
    }

    /// Recognises `# key=value` directives while they may still appear.
    fn directive(&mut self, line: &str, lineno: usize, lead: usize) -> Result<(), ParseError> {
        if !self.parsing_directives {
            return Ok(());
        }
        let Some((key, value)) = parse_directive(line) else {
            self.parsing_directives = false;
            return Ok(());
        };
        let lower = key.to_ascii_lowercase();
        if !matches!(lower.as_str(), "syntax" | "escape" | "check") {
            self.parsing_directives = false;
            return Ok(());
        }
        let span = Span::new(lineno, lead + 1, line.chars().count().max(1));
        if self.seen_directives.contains(&lower) {
            return Err(self.err(
                span,
                format!("only one {lower} parser directive can be used"),
            ));
        }
        self.seen_directives.push(lower.clone());
        match lower.as_str() {
            "escape" => match value {
                "\\" => self.directives.escape = '\\',
                "`" => self.directives.escape = '`',
                other => {
                    return Err(self.err(
                        span,
                        format!("invalid escape token {other:?}: expected \\ or `"),
                    ));
                }
            },
            "syntax" => self.directives.syntax = Some(value.to_string()),
            _ => self.directives.check = Some(value.to_string()),
        }
        Ok(())
    }

    /// Removes a trailing continuation escape; returns the text and whether
    /// the logical line ends here.
    fn trim_continuation(&self, line: &str) -> (String, bool) {
        let esc = self.directives.escape;
        let body = line.trim_end_matches([' ', '\t']);
        let Some(before) = body.strip_suffix(esc) else {
            return (line.to_string(), true);
        };
        if before.ends_with(esc) {
            // `\\` at the end is an escaped escape, not a continuation.
            return (line.to_string(), true);
        }
        (before.to_string(), false)
    }

    fn node_from_line(&self, line: &str, map: &PosMap<'_>) -> Result<Node, ParseError> {
        let trimmed_start = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        let (keyword, rest) = match trimmed.find(is_ws) {
            Some(p) => (&trimmed[..p], trimmed[p..].trim_start_matches(is_ws)),
            None => (trimmed, ""),
        };
        let kw_span = map.span(trimmed_start, keyword.chars().count());
        let rest_offset = trimmed_start + (trimmed.len() - rest.len());
        let (flags, rest_after_flags) = extract_flags(rest);
        let args_offset = rest_offset + (rest.len() - rest_after_flags.len());
        let args_text = rest_after_flags.trim();
        let args_offset =
            args_offset + (rest_after_flags.len() - rest_after_flags.trim_start().len());
        let args_span = map.span(args_offset, args_text.chars().count());
        let mut node = Node {
            keyword: keyword.to_string(),
            flags,
            args: Vec::new(),
            json: false,
            heredocs: Vec::new(),
            inner: None,
            original: line.to_string(),
            start_line: kw_span.line,
            end_line: kw_span.line,
            span: kw_span,
            args_span,
            pos: Positions {
                line: line.to_string(),
                segments: map.segments.to_vec(),
            },
        };
        let name = node.name();
        let escape = self.directives.escape;
        let bad = |msg: String| self.err(args_span.or(kw_span), msg);
        match name.as_str() {
            "run" | "cmd" | "entrypoint" | "shell" => {
                if !args_text.is_empty() {
                    match parse_json(args_text) {
                        Json::Strings(v) => {
                            node.args = v;
                            node.json = true;
                        }
                        Json::NotStrings => {
                            return Err(bad(format!(
                                "{} expects a JSON array of strings in exec form",
                                name.to_uppercase()
                            )));
                        }
                        Json::Invalid => node.args = vec![args_text.to_string()],
                    }
                }
            }
            "add" | "copy" | "volume" => match parse_json(args_text) {
                Json::Strings(v) => {
                    node.args = v;
                    node.json = true;
                }
                Json::NotStrings => {
                    return Err(bad(format!(
                        "{} expects a JSON array of strings",
                        name.to_uppercase()
                    )));
                }
                Json::Invalid => node.args = split_ascii_ws(args_text),
            },
            "from" | "expose" => node.args = split_ascii_ws(args_text),
            "maintainer" | "stopsignal" | "user" | "workdir" => {
                if !args_text.is_empty() {
                    node.args = vec![args_text.to_string()];
                }
            }
            "arg" => node.args = split_words(args_text, escape),
            "env" | "label" => node.args = parse_name_val(args_text, escape, &name, bad)?,
            "healthcheck" => {
                let sep = args_text
                    .find(char::is_whitespace)
                    .unwrap_or(args_text.len());
                if sep > 0 {
                    let typ = &args_text[..sep];
                    let cmd = args_text[sep..].trim_start();
                    node.args.push(typ.to_string());
                    if !cmd.is_empty() {
                        match parse_json(cmd) {
                            Json::Strings(v) => {
                                node.args.extend(v);
                                node.json = true;
                            }
                            Json::NotStrings => {
                                return Err(bad(
                                    "HEALTHCHECK expects a JSON array of strings in exec form"
                                        .into(),
                                ));
                            }
                            Json::Invalid => node.args.push(cmd.to_string()),
                        }
                    }
                }
            }
            "onbuild" => {
                if !args_text.is_empty() {
                    let sub = PosMap {
                        segments: map.segments,
                        line: map.line,
                    };
                    // The inner line is parsed with its own flags; offsets
                    // are kept relative to the outer logical line.
                    let mut inner = self.node_from_line_at(line, args_offset, &sub)?;
                    inner.start_line = node.start_line;
                    node.inner = Some(Box::new(inner));
                }
            }
            _ => node.args = vec![String::new()],
        }
        Ok(node)
    }

    fn node_from_line_at(
        &self,
        line: &str,
        offset: usize,
        map: &PosMap<'_>,
    ) -> Result<Node, ParseError> {
        // Blank out the prefix so offsets stay valid for the caret display.
        let mut shifted = " ".repeat(offset);
        shifted.push_str(&line[offset..]);
        let mut node = self.node_from_line(&shifted, map)?;
        node.original = line[offset..].trim().to_string();
        Ok(node)
    }
}

impl Node {
    fn can_contain_heredoc(&self) -> bool {
        let target = self.inner.as_deref().unwrap_or(self);
        !target.json && HEREDOC_CAPABLE.contains(&target.name().as_str())
    }
}

trait SpanExt {
    fn or(self, other: Span) -> Span;
}

impl SpanExt for Span {
    fn or(self, other: Span) -> Span {
        if self.len == 0 { other } else { self }
    }
}

/// Maps byte offsets of a logical line back to physical line and column.
struct PosMap<'a> {
    segments: &'a [Segment],
    line: &'a str,
}

impl PosMap<'_> {
    fn span(&self, offset: usize, len: usize) -> Span {
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.logical <= offset)
            .copied()
            .unwrap_or(Segment {
                logical: 0,
                line: 1,
                col: 1,
            });
        let within = self
            .line
            .get(seg.logical..offset)
            .map_or(0, |s| s.chars().count());
        Span::new(seg.line, seg.col + within, len)
    }
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r')
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// `# key = value` (BuildKit's directive regex, by hand).
fn parse_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches([' ', '\t']);
    let key_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let key = &rest[..key_len];
    let value = rest[key_len..]
        .trim_start_matches([' ', '\t'])
        .strip_prefix('=')?
        .trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    Some((key, value))
}

/// Splits leading `--flag` words off `line` (BuildKit's
/// `extractBuilderFlags`): quotes are removed inside a flag and `\` keeps
/// the next character. Returns the flags and the rest of the line.
fn extract_flags(line: &str) -> (Vec<String>, &str) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut chars = line.char_indices().peekable();
    loop {
        let Some((pos, ch)) = chars.next() else {
            if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
                flags.push(word);
            }
            return (flags, "");
        };
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            if !line[pos..].starts_with("--") {
                return (flags, &line[pos..]);
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (flags, &line[pos..]);
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                    continue;
                }
                if ch == '\\' {
                    match chars.next() {
                        Some((_, next)) => word.push(next),
                        None => continue,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                    continue;
                }
                if ch == '\\' {
                    match chars.next() {
                        Some((_, next)) => word.push(next),
                        None => phase = Phase::Word,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Spaces => unreachable!("handled above"),
        }
    }
}

enum Json {
    Strings(Vec<String>),
    NotStrings,
    Invalid,
}

fn parse_json(text: &str) -> Json {
    let text = text.trim_start();
    if !text.starts_with('[') {
        return Json::Invalid;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(text) {
        Ok(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Strings(out)
        }
        Err(_) => Json::Invalid,
    }
}

fn split_ascii_ws(text: &str) -> Vec<String> {
    text.split(is_ws)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// BuildKit's quote-aware word split (`parseWords`): quotes and escapes are
/// kept in the words.
pub(crate) fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if let Some(q) = quote {
            if ch == q {
                quote = None;
                word.push(ch);
                continue;
            }
            if ch == escape && q != '\'' {
                match chars.next() {
                    Some(next) => {
                        word.push(ch);
                        word.push(next);
                    }
                    None => quote = None,
                }
                continue;
            }
            word.push(ch);
            continue;
        }
        if !in_word {
            if ch.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        if ch.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
            word.push(ch);
            continue;
        }
        if ch == escape {
            match chars.next() {
                Some(next) => {
                    word.push(ch);
                    word.push(next);
                }
                None => continue,
            }
            continue;
        }
        word.push(ch);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// ENV and LABEL: `key=value …` triples, or the legacy `KEY value` form.
fn parse_name_val(
    text: &str,
    escape: char,
    name: &str,
    bad: impl Fn(String) -> ParseError,
) -> Result<Vec<String>, ParseError> {
    let words = split_words(text, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let Some(p) = text.find(is_ws) else {
            return Err(bad(format!(
                "{} must have two arguments: expected {} <key>=<value>",
                name.to_uppercase(),
                name.to_uppercase()
            )));
        };
        let key = &text[..p];
        let value = text[p..].trim_start_matches(is_ws);
        return Ok(vec![key.to_string(), value.to_string(), String::new()]);
    }
    let mut out = Vec::with_capacity(words.len() * 3);
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(bad(format!(
                "syntax error: can't find = in {w:?}; expected the form name=value"
            )));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Finds the heredoc markers of a logical line (shell-lexed in raw mode).
fn heredocs_from_line(line: &str) -> Vec<Heredoc> {
    let raw = Lexer::new('\\')
        .raw_quotes(true)
        .raw_escapes(true)
        .skip_unset_env(true);
    let Ok(words) = raw.process_words(line, &NoEnv) else {
        return Vec::new();
    };
    words.iter().filter_map(|w| parse_heredoc(w)).collect()
}

/// `[digits]<<[-][ws]rest` with no `<` in rest.
fn parse_heredoc(word: &str) -> Option<Heredoc> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let after = word[digits..].strip_prefix("<<")?;
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let fd = if digits == 0 {
        0
    } else {
        word[..digits].parse().ok()?
    };
    let lexer = Lexer::new('\\').skip_unset_env(true);
    let words = lexer.process_words(rest, &NoEnv).ok()?;
    let raw_words = lexer.raw_quotes(true).process_words(rest, &NoEnv).ok()?;
    if words.len() != 1 || raw_words.len() != 1 {
        return None;
    }
    Some(Heredoc {
        expand: words[0] == raw_words[0],
        name: words.into_iter().next()?,
        fd,
        chomp,
        content: String::new(),
    })
}

/// Go's `strconv.Quote`: `\a \b \f \n \r \t \v \\ \"` escaped, other
/// control characters as `\xHH`, other non-printable characters as
/// `\uHHHH`/`\UHHHHHHHH`, printable ones as they are.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.IsPrint`, without Unicode's tables of unassigned code
/// points (those count as printable here): control and format characters,
/// separators other than the space, private-use characters and
/// non-characters are not printable.
fn go_is_print(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() {
        return false;
    }
    let not_print: &[(u32, u32)] = &[
        (0xa0, 0xa0),
        (0xad, 0xad),
        (0x600, 0x605),
        (0x61c, 0x61c),
        (0x6dd, 0x6dd),
        (0x70f, 0x70f),
        (0x890, 0x891),
        (0x8e2, 0x8e2),
        (0x1680, 0x1680),
        (0x180e, 0x180e),
        (0x2000, 0x200f),
        (0x2028, 0x202f),
        (0x205f, 0x2064),
        (0x2066, 0x206f),
        (0x3000, 0x3000),
        (0xd800, 0xf8ff),
        (0xfeff, 0xfeff),
        (0xfff9, 0xfffb),
        (0xfffe, 0xffff),
        (0x110bd, 0x110bd),
        (0x110cd, 0x110cd),
        (0x13430, 0x1343f),
        (0x1bca0, 0x1bca3),
        (0x1d173, 0x1d17a),
        (0xe0001, 0xe0001),
        (0xe0020, 0xe007f),
        (0xf0000, 0x10ffff),
    ];
    !not_print.iter().any(|&(lo, hi)| (lo..=hi).contains(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(text: &str) -> String {
        parse(text.as_bytes(), "Dockerfile").unwrap().dump()
    }

    #[test]
    fn flags_and_double_dash() {
        assert_eq!(
            dump("COPY --from=build --chown=\"a b\" x /y\n"),
            "(copy [\"--from=build\" \"--chown=a b\"] \"x\" \"/y\")\n"
        );
        assert_eq!(dump("COPY -- --a b\n"), "(copy \"--a\" \"b\")\n");
    }

    #[test]
    fn unknown_instruction_keeps_one_empty_arg() {
        assert_eq!(dump("FOO bar baz\n"), "(foo \"\")\n");
    }

    #[test]
    fn onbuild_nests() {
        assert_eq!(
            dump("ONBUILD COPY --from=x a b\nONBUILD\n"),
            "(onbuild (copy [\"--from=x\"] \"a\" \"b\"))\n(onbuild)\n"
        );
    }

    #[test]
    fn spans_point_at_keyword_and_args() {
        let df = parse(b"FROM a\n  RUN \\\n   echo hi\n", "Dockerfile").unwrap();
        let run = &df.nodes[1];
        assert_eq!(run.span, Span::new(2, 3, 3));
        assert_eq!((run.start_line, run.end_line), (2, 3));
        assert_eq!(run.args_span.line, 3);
        assert_eq!(run.args_span.col, 4);
    }

    #[test]
    fn repeated_directive_is_an_error() {
        let e = parse(b"# escape=`\n# escape=\\\nFROM a\n", "Dockerfile").unwrap_err();
        assert_eq!(e.span.line, 2);
        assert!(e.message.contains("only one escape"), "{e}");
    }

    #[test]
    fn unterminated_heredoc_names_the_terminator() {
        let e = parse(b"FROM a\nRUN <<EOT\necho\n", "Dockerfile").unwrap_err();
        assert!(e.message.contains("\"EOT\""), "{e}");
        assert_eq!(e.span.line, 2);
    }

    #[test]
    fn chomp_body_strips_tabs() {
        let df = parse(b"FROM a\nRUN <<-E\n\t\tx\n\ty\n\tE\n", "Dockerfile").unwrap();
        assert_eq!(df.nodes[1].heredocs[0].body(), "x\ny\n");
    }

    #[test]
    fn invalid_utf8_is_located() {
        let e = parse(b"FROM a\nRUN \xff\n", "Dockerfile").unwrap_err();
        assert_eq!((e.span.line, e.span.col), (2, 5));
    }

    #[test]
    fn error_render_has_caret() {
        let e = parse(b"FROM a\nENV PATH\n", "Dockerfile").unwrap_err();
        let r = e.render();
        assert!(r.starts_with("Dockerfile:2:5: "), "{r}");
        assert!(r.contains("2 | ENV PATH\n  |     ^^^^"), "{r}");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse(&bytes, "Dockerfile");
        }

        #[test]
        fn never_panics_on_dockerfile_like_text(
            text in "((FROM|RUN|COPY|ADD|ENV|ARG|LABEL|ONBUILD|HEALTHCHECK|CMD|SHELL|# escape=`|# syntax=x|#|\\\\|`|<<-?|EOF|--[a-z]+=?|[ \"'\n\r\t$={}\\[\\],a-z0-9-])){0,80}"
        ) {
            if let Ok(df) = parse(text.as_bytes(), "Dockerfile") {
                for n in &df.nodes {
                    let _ = n.dump();
                    let _ = n.locate("a");
                }
            }
        }
    }
}

//! Instruction flags (`--from=x`, `--link`, `--mount=…`) with BuildKit's
//! rules: each instruction declares the flags it takes; booleans accept
//! `--f`, `--f=true` and `--f=false`; string flags need a value and may be
//! given once; list flags may repeat.

use std::collections::BTreeMap;

/// The kind of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    String,
    List,
}

/// The flags of one instruction, after checking against its declaration.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
}

/// Every flag any instruction takes, to tell "misplaced" from "unknown".
const ALL_FLAGS: &[(&str, &str)] = &[
    ("from", "COPY"),
    ("chown", "COPY and ADD"),
    ("chmod", "COPY and ADD"),
    ("link", "COPY and ADD"),
    ("parents", "COPY"),
    ("exclude", "COPY and ADD"),
    ("checksum", "ADD"),
    ("keep-git-dir", "ADD"),
    ("unpack", "ADD"),
    ("mount", "RUN"),
    ("network", "RUN"),
    ("security", "RUN"),
    ("device", "RUN (Dockerfile labs channel only)"),
    ("platform", "FROM"),
    ("interval", "HEALTHCHECK"),
    ("timeout", "HEALTHCHECK"),
    ("start-period", "HEALTHCHECK"),
    ("start-interval", "HEALTHCHECK"),
    ("retries", "HEALTHCHECK"),
];

/// Why a flag list was rejected; the caller adds the location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlagError {
    /// Index of the offending flag in the node's flag list.
    pub(crate) index: usize,
    pub(crate) message: String,
}

impl Flags {
    /// Checks `raw` (`--name[=value]` words) against `declared`.
    pub(crate) fn parse(
        instruction: &str,
        raw: &[String],
        declared: &[(&'static str, Kind)],
    ) -> Result<Self, FlagError> {
        let mut values: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for (index, word) in raw.iter().enumerate() {
            let err = |message: String| FlagError { index, message };
            let body = word.strip_prefix("--").unwrap_or(word);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(decl, kind)) = declared.iter().find(|(n, _)| *n == name) else {
                return Err(err(unknown_flag_message(instruction, name, declared)));
            };
            let entry = values.entry(decl).or_default();
            match kind {
                Kind::Bool => {
                    let v = match value {
                        None => "true",
                        Some(v) if v.eq_ignore_ascii_case("true") => "true",
                        Some(v) if v.eq_ignore_ascii_case("false") => "false",
                        Some(v) => {
                            return Err(err(format!(
                                "invalid value {v:?} for --{name}: expected true or false"
                            )));
                        }
                    };
                    if !entry.is_empty() {
                        return Err(err(format!("duplicate flag --{name}")));
                    }
                    entry.push(v.to_string());
                }
                Kind::String | Kind::List => {
                    let Some(v) = value else {
                        return Err(err(format!(
                            "missing a value on flag --{name}: expected --{name}=<value>"
                        )));
                    };
                    if kind == Kind::String && !entry.is_empty() {
                        return Err(err(format!(
                            "duplicate flag --{name}: it may be given once"
                        )));
                    }
                    entry.push(v.to_string());
                }
            }
        }
        Ok(Self { values })
    }

    /// A string flag's value, if given.
    pub(crate) fn string(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// A boolean flag: `None` when absent.
    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }

    /// All values of a list flag, in order.
    pub(crate) fn list(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }
}

fn unknown_flag_message(instruction: &str, name: &str, declared: &[(&str, Kind)]) -> String {
    let accepted = if declared.is_empty() {
        format!("{instruction} takes no flags")
    } else {
        let names: Vec<String> = declared.iter().map(|(n, _)| format!("--{n}")).collect();
        format!("{instruction} accepts {}", names.join(", "))
    };
    match ALL_FLAGS.iter().find(|(n, _)| *n == name) {
        Some((_, owner)) => {
            format!(
                "flag --{name} is not valid for {instruction}: it belongs to {owner}; {accepted}"
            )
        }
        None => format!("unknown flag --{name} for {instruction}: {accepted}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPY: &[(&str, Kind)] = &[
        ("from", Kind::String),
        ("link", Kind::Bool),
        ("exclude", Kind::List),
    ];

    fn raw(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_each_kind() {
        let f = Flags::parse(
            "COPY",
            &raw(&["--from=a", "--link", "--exclude=x", "--exclude=y"]),
            COPY,
        )
        .unwrap();
        assert_eq!(f.string("from"), Some("a"));
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.list("exclude"), ["x", "y"]);
        let f = Flags::parse("COPY", &raw(&["--link=FALSE"]), COPY).unwrap();
        assert_eq!(f.bool("link"), Some(false));
    }

    #[test]
    fn rejects_bad_flags_naming_them() {
        let e = Flags::parse("COPY", &raw(&["--from"]), COPY).unwrap_err();
        assert!(
            e.message.contains("missing a value on flag --from"),
            "{}",
            e.message
        );
        let e = Flags::parse("COPY", &raw(&["--from=a", "--from=b"]), COPY).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(e.message.contains("duplicate flag --from"));
        let e = Flags::parse("COPY", &raw(&["--mount=type=cache"]), COPY).unwrap_err();
        assert!(
            e.message
                .contains("--mount is not valid for COPY: it belongs to RUN"),
            "{}",
            e.message
        );
        let e = Flags::parse("CMD", &raw(&["--bogus"]), &[]).unwrap_err();
        assert_eq!(
            e.message,
            "unknown flag --bogus for CMD: CMD takes no flags"
        );
        let e = Flags::parse("COPY", &raw(&["--link=maybe"]), COPY).unwrap_err();
        assert!(e.message.contains("expected true or false"));
    }
}

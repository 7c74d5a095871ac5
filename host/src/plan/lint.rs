//! Build checks: BuildKit's named lint rules that kiln can judge from the
//! Dockerfile alone, and the `# check=` directive (and the
//! `BUILDKIT_DOCKERFILE_CHECK` build arg) that skips rules or turns their
//! findings into errors.
//!
//! Rule names and meanings follow BuildKit's rule docs
//! (`frontend/dockerfile/docs/rules/`); the messages are ours.

/// The rules kiln reports, by BuildKit name.
pub const RULES: &[&str] = &[
    "ConsistentInstructionCasing",
    "DuplicateStageName",
    "ExposeInvalidFormat",
    "ExposeProtoCasing",
    "FromAsCasing",
    "JSONArgsRecommended",
    "LegacyKeyValueFormat",
    "MaintainerDeprecated",
    "MultipleInstructionsDisallowed",
    "NoEmptyContinuation",
    "RedundantTargetPlatform",
    "SecretsUsedInArgOrEnv",
    "StageNameCasing",
    "UndefinedArgInFrom",
    "UndefinedVar",
    "WorkdirRelativePath",
];

/// What `# check=` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// Rules not to report.
    pub skip: Vec<String>,
    /// `skip=all`.
    pub skip_all: bool,
    /// `error=true`: findings fail the build.
    pub error: bool,
}

impl CheckConfig {
    /// Parses `skip=<rules|all>;error=<bool>;experimental=<rules|all>`.
    /// Keys are case-insensitive; `experimental` is accepted (kiln has no
    /// experimental rules).
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut config = CheckConfig::default();
        for part in value.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((key, val)) = part.split_once('=') else {
                return Err(format!(
                    "invalid check directive {part:?}: expected key=value (skip=, error= or experimental=)"
                ));
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    for rule in val.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                        if rule.eq_ignore_ascii_case("all") {
                            config.skip_all = true;
                        } else {
                            config.skip.push(rule.to_string());
                        }
                    }
                }
                "error" => {
                    config.error = match val.trim().to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => {
                            return Err(format!(
                                "invalid check directive error={other:?}: expected true or false"
                            ));
                        }
                    }
                }
                "experimental" => {}
                other => {
                    return Err(format!(
                        "invalid check directive key {other:?}: expected skip, error or experimental"
                    ));
                }
            }
        }
        Ok(config)
    }

    /// Whether findings of `rule` are reported.
    pub fn reports(&self, rule: &str) -> bool {
        !self.skip_all && !self.skip.iter().any(|s| s.eq_ignore_ascii_case(rule))
    }
}

/// BuildKit's `SecretsUsedInArgOrEnv` test: a name part (split at `_`)
/// that is a secret-ish word, unless it also says "public".
pub fn looks_secret(name: &str) -> bool {
    const WORDS: [&str; 10] = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    let lower = name.to_ascii_lowercase();
    if lower.split('_').any(|p| p == "public") {
        return false;
    }
    lower.split('_').any(|p| WORDS.contains(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_check_directive() {
        let c = CheckConfig::parse("skip=JSONArgsRecommended,StageNameCasing;error=true").unwrap();
        assert!(c.error);
        assert!(!c.reports("jsonargsrecommended"));
        assert!(c.reports("UndefinedVar"));
        assert!(CheckConfig::parse("skip=all").unwrap().skip_all);
        assert!(CheckConfig::parse("error=maybe").is_err());
        assert!(CheckConfig::parse("bogus=1").is_err());
        assert!(CheckConfig::parse("skip").is_err());
    }

    #[test]
    fn secret_names() {
        assert!(looks_secret("API_TOKEN"));
        assert!(looks_secret("aws_secret_access_key"));
        assert!(looks_secret("PASSWORD"));
        assert!(!looks_secret("PUBLIC_KEY"));
        assert!(!looks_secret("TOKENIZER"));
        assert!(!looks_secret("VERSION"));
    }
}

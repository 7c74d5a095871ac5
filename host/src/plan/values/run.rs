//! `RUN --network` and `RUN --security`, after BuildKit's
//! `instructions/commands_runnetwork.go` and `commands_runsecurity.go`.
//! Both values are matched exactly (case-sensitive) and are not expanded.

use super::ValueError;

/// `RUN --network=<mode>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// `default` (also when the flag is absent): the builder's usual network.
    #[default]
    Default,
    /// `none`: no network, only loopback.
    None,
    /// `host`: the host's network namespace (BuildKit requires the
    /// `network.host` entitlement).
    Host,
}

impl Network {
    /// The flag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::None => "none",
            Self::Host => "host",
        }
    }
}

/// Parses a `--network` value: `default`, `none` or `host`, lowercase only.
pub fn parse_network(s: &str) -> Result<Network, ValueError> {
    match s {
        "default" => Ok(Network::Default),
        "none" => Ok(Network::None),
        "host" => Ok(Network::Host),
        _ => Err(ValueError::new(format!(
            "invalid network mode \"{s}\": expected one of default, none, host"
        ))),
    }
}

/// `RUN --security=<mode>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// `sandbox` (also when the flag is absent).
    #[default]
    Sandbox,
    /// `insecure`: full privileges (BuildKit requires the
    /// `security.insecure` entitlement).
    Insecure,
}

impl Security {
    /// The flag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Insecure => "insecure",
        }
    }
}

/// Parses a `--security` value: `sandbox` or `insecure`, lowercase only.
pub fn parse_security(s: &str) -> Result<Security, ValueError> {
    match s {
        "sandbox" => Ok(Security::Sandbox),
        "insecure" => Ok(Security::Insecure),
        _ => Err(ValueError::new(format!(
            "security \"{s}\" is not valid: expected sandbox or insecure"
        ))),
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network() {
        assert_eq!(parse_network("default").unwrap(), Network::Default);
        assert_eq!(parse_network("none").unwrap(), Network::None);
        assert_eq!(parse_network("host").unwrap(), Network::Host);
        assert_eq!(Network::default(), Network::Default);
        for bad in ["", "Host", "NONE", "bridge", " none"] {
            let e = parse_network(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid network mode"), "{e}");
            assert!(e.contains("expected one of default, none, host"));
        }
        assert_eq!(Network::Host.as_str(), "host");
    }

    #[test]
    fn security() {
        assert_eq!(parse_security("sandbox").unwrap(), Security::Sandbox);
        assert_eq!(parse_security("insecure").unwrap(), Security::Insecure);
        assert_eq!(Security::default(), Security::Sandbox);
        for bad in ["", "Insecure", "privileged"] {
            let e = parse_security(bad).unwrap_err().to_string();
            assert!(
                e.contains("is not valid: expected sandbox or insecure"),
                "{e}"
            );
        }
        assert_eq!(Security::Insecure.as_str(), "insecure");
    }
}

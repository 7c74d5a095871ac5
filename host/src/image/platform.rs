//! Platform specifiers (`--platform`, `FROM --platform`, `TARGETPLATFORM`),
//! after `github.com/containerd/platforms` `Parse` followed by `Normalize`,
//! which is what BuildKit applies to `--platform` build options.

use std::fmt;

/// A platform string that is not `os[/arch[/variant]]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PlatformError {
    message: String,
}

impl PlatformError {
    fn new(message: String) -> Self {
        Self { message }
    }
}

/// An OCI platform: `os/architecture[/variant]`, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Platform {
    /// `linux`, `windows`, `darwin`, ... (lowercase).
    pub os: String,
    /// Go's `GOARCH` spelling: `amd64`, `arm64`, `arm`, `386`, ...
    pub architecture: String,
    /// `v7`, `v6`, `v9`, ...; `None` when empty. `arm` always has one
    /// (`v7` by default); `arm64` never carries `v8`.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform kiln runs on, from [`std::env::consts`], in Go's
    /// spelling (`x86_64` is `amd64`, `aarch64` is `arm64`, `arm` is
    /// `arm/v7`).
    pub fn host() -> Self {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let little = cfg!(target_endian = "little");
        let arch = match std::env::consts::ARCH {
            "x86" => "386",
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "loongarch64" => "loong64",
            "powerpc" => "ppc",
            "powerpc64" if little => "ppc64le",
            "powerpc64" => "ppc64",
            "mips" if little => "mipsle",
            "mips64" if little => "mips64le",
            "wasm32" => "wasm",
            other => other,
        };
        Self {
            os: os.to_owned(),
            architecture: arch.to_owned(),
            variant: None,
        }
        .normalize()
    }

    /// `TARGETOS`/`BUILDOS`.
    pub fn os(&self) -> &str {
        &self.os
    }

    /// `TARGETARCH`/`BUILDARCH`.
    pub fn arch(&self) -> &str {
        &self.architecture
    }

    /// `TARGETVARIANT`/`BUILDVARIANT`: empty when there is no variant.
    pub fn variant(&self) -> &str {
        self.variant.as_deref().unwrap_or("")
    }

    /// containerd's `Normalize`: lowercase, `macos` is `darwin`, and the
    /// architecture aliases (see [`parse_platform`]).
    pub fn normalize(self) -> Self {
        let os = normalize_os(&self.os);
        let (architecture, variant) =
            normalize_arch(&self.architecture, self.variant.as_deref().unwrap_or(""));
        Self {
            os,
            architecture,
            variant: (!variant.is_empty()).then_some(variant),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Parses a platform specifier like containerd's `platforms.Parse` and
/// normalises it like `platforms.Normalize`.
///
/// * `os/arch[/variant]`; each part matches `[A-Za-z0-9_.-]+`; at most three
///   parts; `*` is rejected;
/// * one part: a known OS (`linux`, `windows`, `darwin`, ...) gets the host
///   architecture; otherwise it must be a known architecture and gets the
///   host OS; anything else is an error;
/// * with two or three parts the architecture is *not* checked against a
///   list (`linux/foo` is valid);
/// * normalisation lowercases everything and maps `macos` to `darwin`,
///   `x86_64`/`x86-64` to `amd64` (variant `v1` dropped), `aarch64` to
///   `arm64` (variant `8`/`v8`/`v8.0` dropped, `9`/`9.0`/`v9.0` to `v9`),
///   `i386` to `386`, `armhf` to `arm/v7`, `armel` to `arm/v6`, and gives
///   `arm` the variant `v7` unless one of `5`, `6`, `8` (made `v5`...) or
///   another is given. containerd does **not** map `i486`-`i686`: alone
///   they are unknown, after an OS they stay as written;
/// * an OS version or feature list in parentheses (`windows(10.0.17763)`)
///   is rejected: kiln does not support them.
pub fn parse_platform(s: &str) -> Result<Platform, PlatformError> {
    let invalid =
        |detail: String| PlatformError::new(format!("invalid platform \"{s}\": {detail}"));
    if s.contains('*') {
        return Err(invalid("wildcards are not supported".to_owned()));
    }
    let parts: Vec<&str> = s.splitn(4, '/').collect();
    let os_part = parts[0];
    let os_name = match os_part.split_once('(') {
        None => os_part,
        Some((name, rest)) => {
            let well_formed = is_os_name(name) && rest.strip_suffix(')').is_some_and(is_os_options);
            if !well_formed {
                return Err(invalid(format!(
                    "\"{os_part}\" is an invalid OS component: expected letters, digits, \
                     \"_\" or \"-\", optionally followed by (version+features)"
                )));
            }
            if rest != ")" {
                return Err(invalid(
                    "OS versions and features are not supported: expected os[/arch[/variant]]"
                        .to_owned(),
                ));
            }
            name
        }
    };
    if !is_os_name(os_name) {
        return Err(invalid(format!(
            "\"{os_part}\" is an invalid OS component: expected letters, digits, \"_\" or \"-\""
        )));
    }
    for part in &parts[1..] {
        if part.is_empty()
            || !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(invalid(format!(
                "\"{part}\" is an invalid component: expected letters, digits, \"_\", \".\" or \"-\""
            )));
        }
    }
    let os = normalize_os(os_name);
    let platform = match parts.len() {
        1 => {
            if is_known_os(&os) {
                let host = Platform::host();
                Platform {
                    os,
                    architecture: host.architecture,
                    variant: host.variant,
                }
            } else {
                let (arch, _) = normalize_arch(os_part, "");
                if !is_known_arch(&arch) {
                    return Err(invalid(
                        "unknown operating system or architecture: expected an OS such as \
                         linux, an architecture such as amd64, or os/arch[/variant]"
                            .to_owned(),
                    ));
                }
                let (architecture, variant) = normalize_arch(os_part, "");
                Platform {
                    os: Platform::host().os,
                    architecture,
                    variant: Some(variant),
                }
            }
        }
        2 => Platform {
            os,
            architecture: parts[1].to_owned(),
            variant: None,
        },
        3 => Platform {
            os,
            architecture: parts[1].to_owned(),
            variant: Some(parts[2].to_owned()),
        },
        _ => {
            return Err(invalid(
                "too many components: expected os[/arch[/variant]]".to_owned(),
            ));
        }
    };
    Ok(platform.normalize())
}

fn is_os_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// The inside of containerd's `(version+feature+...)`.
fn is_os_options(s: &str) -> bool {
    let ok = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'%' | b'-'))
    };
    let mut pieces = s.split('+');
    let version = pieces.next().unwrap_or("");
    ok(version) && pieces.all(|f| !f.is_empty() && ok(f))
}

fn normalize_os(os: &str) -> String {
    let os = os.to_lowercase();
    if os == "macos" {
        "darwin".to_owned()
    } else {
        os
    }
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_lowercase();
    let variant = variant.to_lowercase();
    match arch.as_str() {
        "i386" => ("386".to_owned(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".to_owned(), v)
        }
        "aarch64" | "arm64" => {
            let v = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".to_owned(),
                _ => variant,
            };
            ("arm64".to_owned(), v)
        }
        "armhf" => ("arm".to_owned(), "v7".to_owned()),
        "armel" => ("arm".to_owned(), "v6".to_owned()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".to_owned(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".to_owned(), v)
        }
        _ => (arch, variant),
    }
}

fn is_known_os(os: &str) -> bool {
    matches!(
        os,
        "aix"
            | "android"
            | "darwin"
            | "dragonfly"
            | "freebsd"
            | "hurd"
            | "illumos"
            | "ios"
            | "js"
            | "linux"
            | "nacl"
            | "netbsd"
            | "openbsd"
            | "plan9"
            | "solaris"
            | "windows"
            | "zos"
    )
}

fn is_known_arch(arch: &str) -> bool {
    matches!(
        arch,
        "386"
            | "amd64"
            | "amd64p32"
            | "arm"
            | "armbe"
            | "arm64"
            | "arm64be"
            | "ppc64"
            | "ppc64le"
            | "loong64"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "mips64p32"
            | "mips64p32le"
            | "ppc"
            | "riscv"
            | "riscv64"
            | "s390"
            | "s390x"
            | "sparc"
            | "sparc64"
            | "wasm"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        parse_platform(s).unwrap().to_string()
    }

    #[test]
    fn full_forms() {
        assert_eq!(p("linux/amd64"), "linux/amd64");
        assert_eq!(p("Linux/X86_64"), "linux/amd64");
        assert_eq!(p("linux/x86-64"), "linux/amd64");
        assert_eq!(p("linux/amd64/v1"), "linux/amd64");
        assert_eq!(p("linux/amd64/v3"), "linux/amd64/v3");
        assert_eq!(p("linux/aarch64"), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("linux/arm64/8"), "linux/arm64");
        assert_eq!(p("linux/arm64/9"), "linux/arm64/v9");
        assert_eq!(p("linux/arm"), "linux/arm/v7");
        assert_eq!(p("linux/arm/7"), "linux/arm/v7");
        assert_eq!(p("linux/arm/v6"), "linux/arm/v6");
        assert_eq!(p("linux/arm/5"), "linux/arm/v5");
        assert_eq!(p("linux/armhf"), "linux/arm/v7");
        assert_eq!(p("linux/armel"), "linux/arm/v6");
        assert_eq!(p("linux/i386"), "linux/386");
        assert_eq!(p("linux/i686"), "linux/i686");
        assert_eq!(p("macos/arm64"), "darwin/arm64");
        assert_eq!(p("windows/amd64"), "windows/amd64");
        assert_eq!(p("linux/riscv64"), "linux/riscv64");
        assert_eq!(p("linux/ppc64le"), "linux/ppc64le");
        assert_eq!(p("linux/s390x"), "linux/s390x");
        assert_eq!(p("linux/foo/Bar"), "linux/foo/bar");
        assert_eq!(p("linux()/amd64"), "linux/amd64");
    }

    #[test]
    fn accessors() {
        let pl = parse_platform("linux/arm/v6").unwrap();
        assert_eq!((pl.os(), pl.arch(), pl.variant()), ("linux", "arm", "v6"));
        let pl = parse_platform("linux/amd64").unwrap();
        assert_eq!(pl.variant(), "");
        assert_eq!(pl.variant, None);
    }

    #[test]
    fn one_part_forms() {
        let host = Platform::host();
        let pl = parse_platform("linux").unwrap();
        assert_eq!(pl.os, "linux");
        assert_eq!(pl.architecture, host.architecture);
        assert_eq!(pl.variant, host.variant);
        let pl = parse_platform("Windows").unwrap();
        assert_eq!(pl.os, "windows");
        for (arch, want) in [
            ("amd64", "amd64"),
            ("x86_64", "amd64"),
            ("aarch64", "arm64"),
            ("arm64", "arm64"),
            ("i386", "386"),
            ("s390x", "s390x"),
        ] {
            let pl = parse_platform(arch).unwrap();
            assert_eq!(pl.os, host.os, "{arch}");
            assert_eq!(pl.architecture, want, "{arch}");
            assert_eq!(pl.variant, None, "{arch}");
        }
        let pl = parse_platform("armhf").unwrap();
        assert_eq!((pl.architecture.as_str(), pl.variant()), ("arm", "v7"));
        let pl = parse_platform("armel").unwrap();
        assert_eq!((pl.architecture.as_str(), pl.variant()), ("arm", "v6"));
        let pl = parse_platform("arm").unwrap();
        assert_eq!(pl.variant(), "v7");
    }

    #[test]
    fn host() {
        let h = Platform::host();
        assert!(!h.os.is_empty() && !h.architecture.is_empty());
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        assert_eq!(h.to_string(), "linux/amd64");
        #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
        assert_eq!(h.to_string(), "linux/arm64");
        assert_eq!(h.clone().normalize(), h);
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "/",
            "linux/",
            "/amd64",
            "linux//v7",
            "linux/amd64/",
            "linux/amd64/v8/x",
            "linux/*",
            "i686",
            "foo",
            "linux/am d64",
            "li.nux/amd64",
            "windows(10.0.17763)/amd64",
            "windows(10.0+win32k)",
            "windows(/amd64",
            "linux(a b)/amd64",
            "linux/arm64(x)",
        ] {
            let e = parse_platform(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid platform"), "{bad}: {e}");
            assert!(
                e.contains("expected") || e.contains("not supported"),
                "{bad}: {e}"
            );
        }
        assert!(
            parse_platform("windows(10.0.17763)/amd64")
                .unwrap_err()
                .to_string()
                .contains("not supported")
        );
    }
}

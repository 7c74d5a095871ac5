//! `COPY`/`ADD --chown=<user>[:<group>]`, after BuildKit's `llb.WithUser`
//! (`client/llb/fileop.go`), which never rejects a value.

use std::fmt;

use super::ValueError;
use super::go::parse_int;

/// A user or group, by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(untagged)]
pub enum IdOrName {
    /// A numeric id.
    Id(u32),
    /// A name to look up in the destination image's `/etc/passwd` or
    /// `/etc/group`.
    Name(String),
}

impl fmt::Display for IdOrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// A parsed `--chown` value.
///
/// How BuildKit resolves it (solver `readUser`, Linux), for whoever applies
/// it:
///
/// * user by id, no group: gid = uid;
/// * user by name, no group: uid and gid from the user's `/etc/passwd` line;
/// * a name that is not found (or a missing `/etc/passwd`/`/etc/group`)
///   resolves to 0 **without an error**.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Chown {
    /// The part before the first `:`.
    pub user: IdOrName,
    /// The part after the first `:`, if there is a `:`.
    pub group: Option<IdOrName>,
}

/// Parses a non-empty `--chown` value the way `llb.WithUser` does.
///
/// * split at the first `:` (`a:b:c` is user `a`, group `b:c`);
/// * `root` is id 0 without a lookup;
/// * a part Go's `strconv.ParseInt(part, 10, 32)` accepts is an id: a sign is
///   allowed and a negative id wraps to 32 bits as BuildKit's
///   `uint32(...)` does (`-1` is 4294967295);
/// * an empty part is id 0 (BuildKit marshals an empty name as id 0), so
///   `:staff` is user 0 and `1000:` is group 0;
/// * anything else is a name.
///
/// BuildKit treats an empty `--chown=` as "no chown"; this function reports
/// it as an error, so the caller must test for emptiness first.
pub fn parse_chown(s: &str) -> Result<Chown, ValueError> {
    if s.is_empty() {
        return Err(ValueError::new(
            "empty --chown value: expected <user>[:<group>]",
        ));
    }
    let (user, group) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    Ok(Chown {
        user: id_or_name(user),
        group: group.map(id_or_name),
    })
}

fn id_or_name(part: &str) -> IdOrName {
    if part == "root" || part.is_empty() {
        return IdOrName::Id(0);
    }
    match parse_int(part, 32) {
        // Two's-complement wrap, as Go's uint32(int) conversion.
        Some(n) => IdOrName::Id(n as i32 as u32),
        None => IdOrName::Name(part.to_owned()),
    }
}

impl fmt::Display for Chown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}:{g}", self.user),
            None => write!(f, "{}", self.user),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> IdOrName {
        IdOrName::Name(s.to_owned())
    }

    #[test]
    fn forms() {
        let c = parse_chown("1000:1000").unwrap();
        assert_eq!(c.user, IdOrName::Id(1000));
        assert_eq!(c.group, Some(IdOrName::Id(1000)));

        let c = parse_chown("app").unwrap();
        assert_eq!(c.user, name("app"));
        assert_eq!(c.group, None);

        let c = parse_chown("app:staff").unwrap();
        assert_eq!((c.user, c.group), (name("app"), Some(name("staff"))));

        let c = parse_chown("root:root").unwrap();
        assert_eq!((c.user, c.group), (IdOrName::Id(0), Some(IdOrName::Id(0))));

        let c = parse_chown("1000").unwrap();
        assert_eq!((c.user, c.group), (IdOrName::Id(1000), None));

        let c = parse_chown("app:1001").unwrap();
        assert_eq!((c.user, c.group), (name("app"), Some(IdOrName::Id(1001))));
    }

    #[test]
    fn edge_cases() {
        let c = parse_chown(":staff").unwrap();
        assert_eq!((c.user, c.group), (IdOrName::Id(0), Some(name("staff"))));
        let c = parse_chown("1000:").unwrap();
        assert_eq!(c.group, Some(IdOrName::Id(0)));
        let c = parse_chown("a:b:c").unwrap();
        assert_eq!(c.group, Some(name("b:c")));
        assert_eq!(parse_chown("-1").unwrap().user, IdOrName::Id(u32::MAX));
        assert_eq!(parse_chown("+5").unwrap().user, IdOrName::Id(5));
        // Beyond int32: not a number for BuildKit, so a name.
        assert_eq!(parse_chown("3000000000").unwrap().user, name("3000000000"));
        assert_eq!(parse_chown("Root").unwrap().user, name("Root"));
        let e = parse_chown("").unwrap_err().to_string();
        assert!(e.contains("expected <user>[:<group>]"), "{e}");
        assert_eq!(IdOrName::Id(7).to_string(), "7");
        assert_eq!(name("x").to_string(), "x");
    }
}

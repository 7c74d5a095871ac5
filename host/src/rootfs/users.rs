//! `USER` and `--chown` lookups in the root's `/etc/passwd` and `/etc/group`,
//! with BuildKit's semantics (runc's `GetExecUser`):
//!
//! - `uid:gid`, both numeric, is taken as is without reading any file;
//! - a numeric user is looked up by uid; when absent from `/etc/passwd` (or
//!   the file is absent) the uid is used with gid 0;
//! - a user name must be in `/etc/passwd`;
//! - without a group, the gid is the user's primary gid and the
//!   supplementary groups are the `/etc/group` entries listing the user;
//! - with a group (name or gid) there are no supplementary groups; a numeric
//!   group absent from `/etc/group` is used as is, a name must be there.

use super::{Root, RootfsError};

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        Some(PasswdEntry { name, uid, gid })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let gid = f.next()?.parse().ok()?;
        let members = f
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        Some(GroupEntry { name, gid, members })
    })
}

fn read_text(root: &Root, path: &str) -> Result<Option<String>, RootfsError> {
    Ok(root
        .read_file_opt(path)?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

fn numeric(s: &str) -> Option<u32> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Resolves a user spec `name|uid[:group|gid]` against the root's
/// `/etc/passwd` and `/etc/group`: returns uid, gid and supplementary gids.
/// An empty spec is root (0, 0). See the module docs for the rules.
pub fn lookup_user(root: &Root, spec: &str) -> Result<(u32, u32, Vec<u32>), RootfsError> {
    if spec.is_empty() {
        return Ok((0, 0, Vec::new()));
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let invalid = |reason| RootfsError::InvalidUser {
        spec: spec.to_owned(),
        reason,
    };
    if user.is_empty() {
        return Err(invalid("the user part is empty"));
    }
    if group == Some("") {
        return Err(invalid("the group part is empty"));
    }
    let looks_numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if looks_numeric(user) && numeric(user).is_none() {
        return Err(invalid("the uid is out of range"));
    }
    if let Some(g) = group
        && looks_numeric(g)
        && numeric(g).is_none()
    {
        return Err(invalid("the gid is out of range"));
    }
    if let (Some(uid), Some(gid)) = (numeric(user), group.and_then(numeric)) {
        return Ok((uid, gid, Vec::new()));
    }

    let passwd = read_text(root, PASSWD)?;
    let found = passwd.as_deref().and_then(|text| {
        passwd_entries(text)
            .find(|e| match numeric(user) {
                Some(uid) => e.uid == uid,
                None => e.name == user,
            })
            .map(|e| (e.name.to_owned(), e.uid, e.gid))
    });
    let (matched_name, uid, mut gid) = match (found, numeric(user)) {
        (Some((name, uid, gid)), _) => (Some(name), uid, gid),
        (None, Some(uid)) => (None, uid, 0),
        (None, None) => {
            return Err(RootfsError::UnknownUser {
                user: user.to_owned(),
                file: PASSWD,
            });
        }
    };

    let mut sgids = Vec::new();
    match group {
        Some(g) => gid = lookup_group(root, g)?,
        None => {
            if let Some(name) = matched_name
                && let Some(text) = read_text(root, GROUP)?
            {
                sgids = group_entries(&text)
                    .filter(|e| e.members.contains(&name.as_str()))
                    .map(|e| e.gid)
                    .collect();
            }
        }
    }
    Ok((uid, gid, sgids))
}

/// Resolves a group `name|gid` against the root's `/etc/group`. A gid is
/// used as is, without reading the file.
pub fn lookup_group(root: &Root, group: &str) -> Result<u32, RootfsError> {
    if group.is_empty() {
        return Err(RootfsError::InvalidUser {
            spec: group.to_owned(),
            reason: "the group is empty",
        });
    }
    if group.bytes().all(|b| b.is_ascii_digit()) {
        return numeric(group).ok_or(RootfsError::InvalidUser {
            spec: group.to_owned(),
            reason: "the gid is out of range",
        });
    }
    read_text(root, GROUP)?
        .as_deref()
        .and_then(|text| group_entries(text).find(|e| e.name == group).map(|e| e.gid))
        .ok_or_else(|| RootfsError::UnknownGroup {
            group: group.to_owned(),
            file: GROUP,
        })
}

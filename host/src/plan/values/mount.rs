//! `RUN --mount=<csv>`, after BuildKit's `instructions/commands_runmount.go`
//! (parsing and checks) and `dockerfile2llb/convert_runmount.go`,
//! `convert_secrets.go`, `convert_ssh.go` (defaults).

use std::fmt;

use super::ValueError;
use super::go::{parse_bool, parse_uint, path_base, path_clean};

/// The kind of a `RUN --mount`; `type=` (case-insensitive), default `bind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// `type=bind`: a read-only (unless `rw`) view of the build context or
    /// of another stage or image; writes are discarded.
    Bind,
    /// `type=cache`: a persistent cache directory shared between builds.
    Cache,
    /// `type=tmpfs`: an empty tmpfs.
    Tmpfs,
    /// `type=secret`: a build secret as a file and/or an environment variable.
    Secret,
    /// `type=ssh`: an SSH agent socket.
    Ssh,
}

impl MountType {
    /// The `type=` spelling: `bind`, `cache`, `tmpfs`, `secret`, `ssh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Cache => "cache",
            Self::Tmpfs => "tmpfs",
            Self::Secret => "secret",
            Self::Ssh => "ssh",
        }
    }
}

impl fmt::Display for MountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How concurrent builds share one cache mount (`sharing=`, case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheSharing {
    /// `shared` (the default): concurrent writers use the same directory.
    #[default]
    Shared,
    /// `private`: a concurrent writer gets a new, empty directory.
    Private,
    /// `locked`: a concurrent writer waits for the first one to finish.
    Locked,
}

impl CacheSharing {
    /// The `sharing=` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Private => "private",
            Self::Locked => "locked",
        }
    }
}

/// One parsed `RUN --mount`, with BuildKit's defaults filled in where they do
/// not depend on the build state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mount {
    /// `type=`.
    pub mount_type: MountType,
    /// `from=`: a stage name, stage index, image or named context. `None`
    /// means the build context for `bind` and an empty scratch directory for
    /// `cache`. Never contains a variable reference (`$` other than as the
    /// last character is an error).
    pub from: Option<String>,
    /// `source=`/`src=`: a path in `from`; `None` if empty. For `secret` it
    /// is folded into [`id`](Self::id) (BuildKit treats it as the id).
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=` as written; `None` if empty.
    ///
    /// * `bind`, `cache`, `tmpfs`: BuildKit does **not** require it: a missing
    ///   or relative target is joined to the working directory, see
    ///   [`resolved_target`](Self::resolved_target).
    /// * `secret`: defaults to `/run/secrets/<basename of id>`, unless `env=`
    ///   is set and no target was given (then the secret is only an
    ///   environment variable and this is `None`).
    /// * `ssh`: `None` when not given; the caller picks
    ///   `/run/buildkit/ssh_agent.<N>` (N = index among the ssh mounts).
    pub target: Option<String>,
    /// Resolved read-only flag: `ro`/`rw` if given, else `true` for `bind`,
    /// `secret` and `ssh`, `false` for `cache` and `tmpfs`.
    pub read_only: bool,
    /// `id=`, resolved per type:
    ///
    /// * `cache`: `id=` or else `path.Clean(target)` (target as written, not
    ///   joined to the working directory). Always `Some`.
    /// * `secret`: `source=`, else `id=`, else the basename of `target`.
    ///   Always `Some`.
    /// * `ssh`: `id=` or else `default`. Always `Some`.
    /// * `bind`, `tmpfs`: `id=` if given (BuildKit ignores it).
    pub id: Option<String>,
    /// `sharing=`; only `cache` mounts may set it.
    pub sharing: CacheSharing,
    /// `required`/`required=<bool>` (`secret` and `ssh` only): fail when the
    /// secret or agent is missing instead of skipping the mount.
    pub required: bool,
    /// `env=` (`secret` only in effect): expose the secret as this
    /// environment variable. Kept verbatim, so `Some("")` is possible.
    pub env: Option<String>,
    /// `mode=` (octal) exactly as given; see [`file_mode`](Self::file_mode)
    /// for the default.
    pub mode: Option<u32>,
    /// `uid=`, `cache`/`secret`/`ssh` only.
    pub uid: Option<u32>,
    /// `gid=`, `cache`/`secret`/`ssh` only.
    pub gid: Option<u32>,
    /// `size=` of a `tmpfs` mount in bytes (binary units: `64m` = 64 MiB);
    /// `None` means unlimited.
    pub size_limit: Option<u64>,
}

impl Mount {
    /// The mode of the mounted file, socket or cache directory: `mode=` or
    /// the type's default (`secret` 0400, `ssh` 0600, `cache` 0755); `None`
    /// for `bind` and `tmpfs`.
    ///
    /// For `cache`, BuildKit only creates the directory with this mode (and
    /// `uid`/`gid`) in a `/cache` sub-path when one of `mode`, `uid` or `gid`
    /// was given and `source` is empty; see [`has_file_info`](Self::has_file_info).
    pub fn file_mode(&self) -> Option<u32> {
        let default = match self.mount_type {
            MountType::Secret => 0o400,
            MountType::Ssh => 0o600,
            MountType::Cache => 0o755,
            MountType::Bind | MountType::Tmpfs => return None,
        };
        Some(self.mode.unwrap_or(default))
    }

    /// Whether any of `mode`, `uid`, `gid` was given.
    pub fn has_file_info(&self) -> bool {
        self.mode.is_some() || self.uid.is_some() || self.gid.is_some()
    }

    /// The mount point of a `bind`, `cache` or `tmpfs` mount, as BuildKit
    /// computes it: an absolute target is used as written (not cleaned); an
    /// empty or relative one is joined to `workdir` (and cleaned). A result
    /// of exactly `/` is an error.
    pub fn resolved_target(&self, workdir: &str) -> Result<String, ValueError> {
        let target = self.target.as_deref().unwrap_or("");
        let resolved = if path_clean(target).starts_with('/') {
            target.to_owned()
        } else {
            path_clean(&format!("/{workdir}/{target}"))
        };
        if resolved == "/" {
            return Err(ValueError::new(format!(
                "invalid mount target \"{resolved}\": expected a directory other than /"
            )));
        }
        Ok(resolved)
    }
}

const ALL_KEYS: &str = "type, from, source, target, readonly, id, sharing, required, size, mode, \
                        uid, gid, src, dst, destination, ro, rw, readwrite, env";

/// Parses one `--mount` value with BuildKit's rules.
///
/// `value` is the flag value *before* variable expansion: it is split into
/// CSV fields (commas separate fields, a field may be double-quoted, `""`
/// inside quotes is a quote), keys are matched case-insensitively, and
/// `expand` is called on the value of every `key=value` field, in order,
/// including `from=` (BuildKit does, after first rejecting any `$` in `from`
/// that is not its last character). Bare keys (`ro`, `rw`, `readonly`,
/// `readwrite`, `required`) are not expanded. An `Err` from `expand` is
/// returned as the error message.
///
/// Like BuildKit, `required` and `size` are checked against the type known
/// *when the field is read*, so `type=` must come before them.
pub fn parse_mount(
    value: &str,
    expand: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Mount, ValueError> {
    let fields = csv_fields(value)
        .map_err(|e| ValueError::new(format!("failed to parse csv mounts: {e}")))?;

    // BuildKit's parse-time pass: `from` may not use variables.
    for field in &fields {
        if let Some((key, val)) = field.split_once('=')
            && key.eq_ignore_ascii_case("from")
            && val.find('$').is_some_and(|i| i != val.len() - 1)
        {
            return Err(ValueError::new(format!(
                "\"{key}\" doesn't support variable expansion, define alias stage instead"
            )));
        }
    }

    let mut st = State::default();
    for field in &fields {
        st.field(field, expand)?;
    }
    st.finish()
}

#[derive(Default)]
struct State {
    mount_type: Option<MountType>,
    from: String,
    source: String,
    target: String,
    read_only: Option<bool>,
    id: String,
    sharing: Option<CacheSharing>,
    required: bool,
    env: Option<String>,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size_limit: Option<u64>,
}

impl State {
    fn ty(&self) -> MountType {
        self.mount_type.unwrap_or(MountType::Bind)
    }

    fn required_allowed(&self, key: &str) -> Result<(), ValueError> {
        match self.ty() {
            MountType::Secret | MountType::Ssh => Ok(()),
            other => Err(ValueError::new(format!(
                "unexpected key \"{key}\" for mount type \"{other}\": \
                 expected type=secret or type=ssh before it"
            ))),
        }
    }

    fn field(
        &mut self,
        field: &str,
        expand: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<(), ValueError> {
        let Some((raw_key, raw_value)) = field.split_once('=') else {
            match field.to_lowercase().as_str() {
                "readonly" | "ro" => self.read_only = Some(true),
                "readwrite" | "rw" => self.read_only = Some(false),
                "required" => {
                    self.required_allowed("required")?;
                    self.required = true;
                }
                _ => {
                    return Err(ValueError::new(format!(
                        "invalid field \"{field}\": expected a key=value pair \
                         (only ro, rw, readonly, readwrite and required may stand alone)"
                    )));
                }
            }
            return Ok(());
        };
        let key = raw_key.to_lowercase();
        let value = expand(raw_value).map_err(ValueError::new)?;
        let bool_value = |key: &str, value: &str| {
            parse_bool(value).ok_or_else(|| {
                ValueError::new(format!(
                    "invalid value \"{value}\" for {key}: expected true or false"
                ))
            })
        };
        match key.as_str() {
            "type" => {
                self.mount_type = Some(match value.to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(ValueError::new(format!(
                            "unsupported mount type \"{value}\": \
                             expected one of bind, cache, tmpfs, secret, ssh"
                        )));
                    }
                });
            }
            "from" => self.from = value,
            "source" | "src" => self.source = value,
            "target" | "dst" | "destination" => self.target = value,
            "readonly" | "ro" => self.read_only = Some(bool_value(&key, &value)?),
            "readwrite" | "rw" => self.read_only = Some(!bool_value(&key, &value)?),
            "required" => {
                self.required_allowed(&key)?;
                self.required = bool_value(&key, &value)?;
            }
            "size" => {
                if self.ty() != MountType::Tmpfs {
                    return Err(ValueError::new(format!(
                        "unexpected key \"size\" for mount type \"{}\": \
                         expected type=tmpfs before it",
                        self.ty()
                    )));
                }
                self.size_limit = Some(ram_in_bytes(&value).ok_or_else(|| {
                    ValueError::new(format!(
                        "invalid value \"{value}\" for size: \
                         expected a size such as 512k, 64m or 1g"
                    ))
                })?);
            }
            "id" => self.id = value,
            "sharing" => {
                self.sharing = Some(match value.to_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => {
                        return Err(ValueError::new(format!(
                            "unsupported sharing value \"{value}\": \
                             expected one of shared, private, locked"
                        )));
                    }
                });
            }
            "mode" => {
                let mode = parse_uint(&value, 8, 32).ok_or_else(|| {
                    ValueError::new(format!(
                        "invalid value \"{value}\" for mode: expected an octal number"
                    ))
                })?;
                self.mode = Some(mode as u32);
            }
            "uid" | "gid" => {
                let id = parse_uint(&value, 10, 32).ok_or_else(|| {
                    ValueError::new(format!(
                        "invalid value \"{value}\" for {key}: expected a decimal number"
                    ))
                })? as u32;
                if key == "uid" {
                    self.uid = Some(id);
                } else {
                    self.gid = Some(id);
                }
            }
            "env" => self.env = Some(value),
            _ => {
                return Err(ValueError::new(format!(
                    "unexpected key \"{key}\" in \"{field}\": expected one of {ALL_KEYS}"
                )));
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Mount, ValueError> {
        let ty = self.ty();
        let file_info_allowed = matches!(ty, MountType::Secret | MountType::Ssh | MountType::Cache);
        if !file_info_allowed {
            for (name, set) in [
                ("mode", self.mode.is_some()),
                ("uid", self.uid.is_some()),
                ("gid", self.gid.is_some()),
            ] {
                if set {
                    return Err(ValueError::new(format!(
                        "{name} not allowed for \"{ty}\" type mounts: \
                         expected type=cache, type=secret or type=ssh"
                    )));
                }
            }
        }
        let read_only = self
            .read_only
            .unwrap_or(!matches!(ty, MountType::Cache | MountType::Tmpfs));

        if ty == MountType::Secret {
            if !self.from.is_empty() {
                return Err(ValueError::new(
                    "secret mount should not have a from: expected id or source only",
                ));
            }
            if self.sharing.is_some() {
                return Err(ValueError::new(
                    "secret mount should not define sharing: only cache mounts take it",
                ));
            }
            if self.source.is_empty() && self.target.is_empty() && self.id.is_empty() {
                return Err(ValueError::new(
                    "invalid secret mount: expected one of source, target or id",
                ));
            }
            if !self.source.is_empty() && !self.id.is_empty() {
                return Err(ValueError::new(
                    "invalid secret mount: both source and id can't be set",
                ));
            }
        }
        if self.sharing.is_some() && ty != MountType::Cache {
            return Err(ValueError::new(format!(
                "invalid cache sharing set for {ty} mount: expected type=cache"
            )));
        }
        if ty == MountType::Ssh && !self.source.is_empty() {
            return Err(ValueError::new(
                "ssh mount does not support source: expected id or target",
            ));
        }

        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        let (id, target, source) = match ty {
            MountType::Cache => {
                let id = if self.id.is_empty() {
                    path_clean(&self.target)
                } else {
                    self.id
                };
                (Some(id), non_empty(self.target), non_empty(self.source))
            }
            MountType::Secret => {
                let id = if !self.source.is_empty() {
                    self.source.clone()
                } else if !self.id.is_empty() {
                    self.id
                } else {
                    path_base(&self.target)
                };
                let target = if !self.target.is_empty() {
                    Some(self.target)
                } else if self.env.is_none() {
                    Some(format!("/run/secrets/{}", path_base(&id)))
                } else {
                    None
                };
                (Some(id), target, non_empty(self.source))
            }
            MountType::Ssh => {
                let id = non_empty(self.id).unwrap_or_else(|| "default".to_owned());
                (Some(id), non_empty(self.target), None)
            }
            MountType::Bind | MountType::Tmpfs => (
                non_empty(self.id),
                non_empty(self.target),
                non_empty(self.source),
            ),
        };

        Ok(Mount {
            mount_type: ty,
            from: non_empty(self.from),
            source,
            target,
            read_only,
            id,
            sharing: self.sharing.unwrap_or_default(),
            required: self.required,
            env: self.env,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            size_limit: self.size_limit,
        })
    }
}

/// Splits one line the way `github.com/tonistiigi/go-csvvalue` does (the
/// `encoding/csv` rules for a single record): `,` separates fields, a field
/// that starts with `"` is quoted and `""` inside it is a literal quote, a
/// quote anywhere in an unquoted field is an error, one trailing `\n` or
/// `\r\n` is ignored, and an empty line is an error.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let line = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .unwrap_or(line);
    if line.is_empty() {
        return Err("empty value: expected comma-separated key=value fields".to_owned());
    }
    let bytes = line.as_bytes();
    let mut fields = Vec::new();
    let mut pos = 0;
    loop {
        if bytes.get(pos) != Some(&b'"') {
            let rest = &line[pos..];
            let end = rest.find(',');
            let field = &rest[..end.unwrap_or(rest.len())];
            if let Some(j) = field.find('"') {
                return Err(format!(
                    "parse error on line 1, column {}: bare \" in non-quoted field",
                    pos + j + 1
                ));
            }
            fields.push(field.to_owned());
            match end {
                Some(i) => pos += i + 1,
                None => return Ok(fields),
            }
            continue;
        }
        // Quoted field.
        pos += 1;
        let mut field = String::new();
        loop {
            let Some(i) = line[pos..].find('"') else {
                return Err(format!(
                    "parse error on line 1, column {}: extraneous or missing \" in quoted field",
                    pos + 1
                ));
            };
            field.push_str(&line[pos..pos + i]);
            pos += i + 1;
            match bytes.get(pos) {
                Some(b'"') => {
                    field.push('"');
                    pos += 1;
                }
                Some(b',') => {
                    fields.push(std::mem::take(&mut field));
                    pos += 1;
                    break;
                }
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(_) => {
                    return Err(format!(
                        "parse error on line 1, column {pos}: extraneous or missing \" in quoted field"
                    ));
                }
            }
        }
    }
}

/// `units.RAMInBytes` from `github.com/docker/go-units`: a non-negative
/// decimal number, an optional space, then an optional case-insensitive
/// suffix `b`, or `k`/`m`/`g`/`t`/`p` (powers of 1024) optionally followed
/// by `b` or `ib`.
fn ram_in_bytes(s: &str) -> Option<u64> {
    let sep = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (num, suffix) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size = go_parse_float(num)?;
    if size < 0.0 {
        return None;
    }
    if suffix.is_empty() {
        return Some(size as u64);
    }
    if suffix.len() > 3 {
        return None;
    }
    // Go lowercases with Unicode rules (the Kelvin sign becomes `k`).
    let suffix = suffix.to_lowercase();
    let sb = suffix.as_bytes();
    if sb[0] == b'b' {
        return (sb.len() == 1).then_some(size as u64);
    }
    let mul: f64 = match sb[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        b'p' => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    match sb.len() {
        2 if sb[1] != b'b' => return None,
        3 if &sb[1..] != b"ib" => return None,
        _ => {}
    }
    Some((size * mul) as u64)
}

/// The subset of Go's `strconv.ParseFloat` that decimal sizes use: Rust's
/// float syntax, minus the spellings Go rejects (`infinity`, `nan` and `inf`
/// cannot reach here because the number must end in a digit, a dot or a
/// space). Hexadecimal floats, which Go also accepts, are rejected.
fn go_parse_float(s: &str) -> Option<f64> {
    if s.bytes()
        .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E'))
    {
        return None;
    }
    s.parse().ok()
}

/// The mount in `--mount` CSV form, with every resolved field that is set,
/// e.g. `type=cache,target=/root/.cache,id=/root/.cache,sharing=locked`.
impl fmt::Display for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![format!("type={}", self.mount_type)];
        let mut opt = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        };
        opt("from", &self.from);
        opt("source", &self.source);
        opt("target", &self.target);
        opt("id", &self.id);
        opt("env", &self.env);
        let default_ro = matches!(
            self.mount_type,
            MountType::Bind | MountType::Secret | MountType::Ssh
        );
        if self.read_only != default_ro {
            parts.push(if self.read_only {
                "ro".into()
            } else {
                "rw".into()
            });
        }
        if self.sharing != CacheSharing::Shared {
            parts.push(format!("sharing={}", self.sharing.as_str()));
        }
        if self.required {
            parts.push("required".into());
        }
        if let Some(m) = self.mode {
            parts.push(format!("mode={m:04o}"));
        }
        if let Some(u) = self.uid {
            parts.push(format!("uid={u}"));
        }
        if let Some(g) = self.gid {
            parts.push(format!("gid={g}"));
        }
        if let Some(s) = self.size_limit {
            parts.push(format!("size={s}"));
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(v: &str) -> Result<String, String> {
        Ok(v.to_owned())
    }

    fn parse(s: &str) -> Result<Mount, ValueError> {
        parse_mount(s, &mut ident)
    }

    fn err(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    #[test]
    fn csv_rules() {
        assert_eq!(csv_fields("a,b").unwrap(), ["a", "b"]);
        assert_eq!(csv_fields("a,").unwrap(), ["a", ""]);
        assert_eq!(csv_fields(",").unwrap(), ["", ""]);
        assert_eq!(
            csv_fields("\"target=/a,b\",ro").unwrap(),
            ["target=/a,b", "ro"]
        );
        assert_eq!(csv_fields("\"a\"\"b\"").unwrap(), ["a\"b"]);
        assert_eq!(csv_fields("\"\"").unwrap(), [""]);
        assert_eq!(csv_fields("a\n").unwrap(), ["a"]);
        assert_eq!(csv_fields("a\r\n").unwrap(), ["a"]);
        assert!(csv_fields("").is_err());
        assert!(csv_fields("\n").is_err());
        assert!(csv_fields("a\"b").unwrap_err().contains("bare \""));
        assert!(
            csv_fields("\"ab")
                .unwrap_err()
                .contains("extraneous or missing")
        );
        assert!(
            csv_fields("\"a\"b")
                .unwrap_err()
                .contains("extraneous or missing")
        );
        // A quote only opens a quoted field at the start of the field.
        assert!(csv_fields("target=\"/a\"").is_err());
    }

    #[test]
    fn bind_defaults() {
        let m = parse("target=/src").unwrap();
        assert_eq!(m.mount_type, MountType::Bind);
        assert_eq!(m.target.as_deref(), Some("/src"));
        assert!(m.read_only);
        assert_eq!(m.from, None);
        assert_eq!(m.source, None);
        assert_eq!(m.id, None);
        assert_eq!(m.file_mode(), None);
        assert!(!m.required);
    }

    #[test]
    fn bind_keys_and_aliases() {
        let m = parse("type=bind,src=/x,dst=/y,from=build,rw").unwrap();
        assert_eq!(m.source.as_deref(), Some("/x"));
        assert_eq!(m.target.as_deref(), Some("/y"));
        assert_eq!(m.from.as_deref(), Some("build"));
        assert!(!m.read_only);
        let m = parse("source=a,destination=/b,readwrite=true").unwrap();
        assert_eq!(m.source.as_deref(), Some("a"));
        assert_eq!(m.target.as_deref(), Some("/b"));
        assert!(!m.read_only);
        assert!(parse("target=/b,rw=false").unwrap().read_only);
        assert!(parse("target=/b,readonly=0").is_ok_and(|m| !m.read_only));
        assert!(parse("target=/b,ro=T").unwrap().read_only);
        // Keys and types are case-insensitive; values are not.
        let m = parse("TYPE=Cache,Target=/Go,RO").unwrap();
        assert_eq!(m.mount_type, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/Go"));
        assert!(m.read_only);
        // The last occurrence wins.
        assert_eq!(
            parse("target=/a,target=/b").unwrap().target.as_deref(),
            Some("/b")
        );
        // bind ignores id and env, like BuildKit.
        assert!(parse("target=/a,id=x,env=Y").is_ok());
    }

    #[test]
    fn target_is_optional_and_relative_to_workdir() {
        let m = parse("source=.").unwrap();
        assert_eq!(m.target, None);
        assert_eq!(m.resolved_target("/app").unwrap(), "/app");
        assert!(m.resolved_target("/").is_err());
        let m = parse("target=sub/../dir").unwrap();
        assert_eq!(m.resolved_target("/w").unwrap(), "/w/dir");
        let m = parse("target=/abs/./x/").unwrap();
        assert_eq!(m.resolved_target("/w").unwrap(), "/abs/./x/");
        assert!(parse("target=/").unwrap().resolved_target("/w").is_err());
    }

    #[test]
    fn cache_defaults() {
        let m = parse("type=cache,target=/root/.cache/").unwrap();
        assert_eq!(m.mount_type, MountType::Cache);
        assert!(!m.read_only);
        assert_eq!(m.id.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing, CacheSharing::Shared);
        assert_eq!(m.file_mode(), Some(0o755));
        assert!(!m.has_file_info());
        let m =
            parse("type=cache,target=rel/dir,id=go,sharing=LOCKED,mode=0700,uid=1000,gid=1001,ro")
                .unwrap();
        assert_eq!(m.id.as_deref(), Some("go"));
        assert_eq!(m.sharing, CacheSharing::Locked);
        assert_eq!(m.mode, Some(0o700));
        assert_eq!(m.file_mode(), Some(0o700));
        assert_eq!((m.uid, m.gid), (Some(1000), Some(1001)));
        assert!(m.has_file_info());
        assert!(m.read_only);
        assert_eq!(
            parse("type=cache,target=/a,sharing=private")
                .unwrap()
                .sharing,
            CacheSharing::Private
        );
        // No target: id is path.Clean("") = ".".
        assert_eq!(parse("type=cache").unwrap().id.as_deref(), Some("."));
        // mode is not bounded to 07777 by BuildKit, only to 32 bits.
        assert_eq!(
            parse("type=cache,target=/a,mode=777777").unwrap().mode,
            Some(0o777777)
        );
    }

    #[test]
    fn tmpfs() {
        let m = parse("type=tmpfs,target=/t,size=64m").unwrap();
        assert!(!m.read_only);
        assert_eq!(m.size_limit, Some(64 << 20));
        assert_eq!(m.file_mode(), None);
        assert_eq!(parse("type=tmpfs,target=/t").unwrap().size_limit, None);
        for (size, bytes) in [
            ("1024", 1024),
            ("1k", 1024),
            ("1KB", 1024),
            ("1KiB", 1024),
            ("1.5g", 3 << 29),
            ("10 m", 10 << 20),
            ("2b", 2),
            ("0", 0),
            ("1e3", 1000),
            ("1.", 1),
            (".5k", 512),
        ] {
            assert_eq!(
                parse(&format!("type=tmpfs,target=/t,size={size}"))
                    .unwrap()
                    .size_limit,
                Some(bytes),
                "{size}"
            );
        }
        for bad in [
            "", "m", "-1", "1x", "1kbb", "1kx", "1bb", " 1", "1 0m", "1mib ",
        ] {
            let e = err(&format!("type=tmpfs,target=/t,size={bad}"));
            assert!(e.contains("for size"), "{bad}: {e}");
        }
    }

    #[test]
    fn secret_defaults() {
        let m = parse("type=secret,id=aws").unwrap();
        assert_eq!(m.id.as_deref(), Some("aws"));
        assert_eq!(m.target.as_deref(), Some("/run/secrets/aws"));
        assert!(m.read_only);
        assert!(!m.required);
        assert_eq!(m.file_mode(), Some(0o400));

        let m = parse("type=secret,target=/root/.npmrc,required").unwrap();
        assert_eq!(m.id.as_deref(), Some(".npmrc"));
        assert_eq!(m.target.as_deref(), Some("/root/.npmrc"));
        assert!(m.required);

        let m = parse("type=secret,source=tok,mode=0440,uid=1,gid=2").unwrap();
        assert_eq!(m.id.as_deref(), Some("tok"));
        assert_eq!(m.target.as_deref(), Some("/run/secrets/tok"));
        assert_eq!(m.file_mode(), Some(0o440));

        // env only: no file.
        let m = parse("type=secret,id=tok,env=TOKEN").unwrap();
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        assert_eq!(m.target, None);
        // env and target: both.
        let m = parse("type=secret,id=tok,env=TOKEN,target=/t").unwrap();
        assert_eq!(m.target.as_deref(), Some("/t"));
        // id with slashes: the default target uses its basename.
        let m = parse("type=secret,id=a/b").unwrap();
        assert_eq!(m.target.as_deref(), Some("/run/secrets/b"));
        assert!(!parse("type=secret,id=x,required=false").unwrap().required);
    }

    #[test]
    fn secret_errors() {
        assert!(err("type=secret").contains("one of source, target or id"));
        assert!(err("type=secret,source=a,id=b").contains("both source and id"));
        assert!(err("type=secret,id=a,from=x").contains("should not have a from"));
        assert!(err("type=secret,id=a,sharing=shared").contains("should not define sharing"));
    }

    #[test]
    fn ssh_defaults() {
        let m = parse("type=ssh").unwrap();
        assert_eq!(m.id.as_deref(), Some("default"));
        assert_eq!(m.target, None);
        assert!(m.read_only);
        assert_eq!(m.file_mode(), Some(0o600));
        let m = parse("type=ssh,id=github,target=/s.sock,required=true,mode=0666").unwrap();
        assert_eq!(m.id.as_deref(), Some("github"));
        assert_eq!(m.target.as_deref(), Some("/s.sock"));
        assert!(m.required);
        assert_eq!(m.file_mode(), Some(0o666));
        assert!(err("type=ssh,source=x").contains("ssh mount does not support source"));
    }

    #[test]
    fn field_order_matters_for_required_and_size() {
        assert!(parse("type=secret,id=a,required").is_ok());
        let e = err("required,type=secret,id=a");
        assert!(e.contains("\"required\"") && e.contains("\"bind\""), "{e}");
        assert!(err("required=true,type=ssh").contains("\"required\""));
        assert!(parse("type=tmpfs,size=1m,target=/t").is_ok());
        assert!(err("size=1m,type=tmpfs,target=/t").contains("\"size\""));
        assert!(err("type=cache,target=/a,size=1m").contains("expected type=tmpfs"));
        assert!(err("type=cache,target=/a,required").contains("expected type=secret"));
    }

    #[test]
    fn errors_name_the_key() {
        let e = err("target=/a,foo=bar");
        assert!(
            e.starts_with("unexpected key \"foo\" in \"foo=bar\": expected one of type"),
            "{e}"
        );
        assert!(err("target=/a,foo").contains("invalid field \"foo\""));
        assert!(err("target=/a,").contains("invalid field \"\""));
        assert!(err("=x").contains("unexpected key \"\""));
        assert!(err("type=volume").contains("unsupported mount type \"volume\""));
        assert!(err("type=cache,sharing=all").contains("unsupported sharing value \"all\""));
        assert!(err("target=/a,ro=yes").contains("invalid value \"yes\" for ro"));
        assert!(err("target=/a,rw=2").contains("for rw"));
        assert!(err("type=secret,id=a,required=maybe").contains("for required"));
        assert!(err("type=cache,mode=888").contains("for mode"));
        assert!(err("type=cache,mode=").contains("for mode"));
        assert!(err("type=cache,uid=-1").contains("for uid"));
        assert!(err("type=cache,uid=+1").contains("for uid"));
        assert!(err("type=cache,gid=4294967296").contains("for gid"));
        assert!(err("target=/a,mode=0755").starts_with("mode not allowed for \"bind\""));
        assert!(err("type=tmpfs,target=/a,uid=0").starts_with("uid not allowed for \"tmpfs\""));
        assert!(err("target=/a,gid=0").starts_with("gid not allowed"));
        assert!(err("target=/a,sharing=locked").contains("invalid cache sharing set for bind"));
        assert!(err("").starts_with("failed to parse csv mounts"));
        assert!(err("target=\"/a\"").starts_with("failed to parse csv mounts"));
        for e in [
            err("target=/a,foo=bar"),
            err("type=volume"),
            err("type=secret"),
        ] {
            assert!(!e.ends_with('.'), "{e}");
            assert_eq!(e.chars().next().map(char::is_lowercase), Some(true), "{e}");
        }
    }

    #[test]
    fn expansion() {
        let mut seen = Vec::new();
        let mut expand = |v: &str| {
            seen.push(v.to_owned());
            Ok(v.replace("$DIR", "/cache"))
        };
        let m = parse_mount("type=cache,target=$DIR,from=base,ro", &mut expand).unwrap();
        assert_eq!(m.target.as_deref(), Some("/cache"));
        assert_eq!(m.id.as_deref(), Some("/cache"));
        // Every key=value value goes through expand, `from` included; bare keys do not.
        assert_eq!(seen, ["cache", "$DIR", "base"]);

        // The type itself may come from a variable.
        let m = parse_mount("type=$T,target=/x", &mut |v| {
            Ok(if v == "$T" { "tmpfs".into() } else { v.into() })
        })
        .unwrap();
        assert_eq!(m.mount_type, MountType::Tmpfs);

        // Expansion errors are returned, before key checks.
        let e = parse_mount("foo=$X", &mut |_| Err("undefined X".into())).unwrap_err();
        assert_eq!(e.to_string(), "undefined X");
    }

    #[test]
    fn from_rejects_variables() {
        let e = err("from=$STAGE,target=/a");
        assert!(
            e.contains("\"from\" doesn't support variable expansion"),
            "{e}"
        );
        assert!(err("target=/a,FROM=a${B}").contains("doesn't support variable expansion"));
        // Checked before anything else, even before an invalid type.
        assert!(err("type=nope,from=$X").contains("variable expansion"));
        // A trailing `$` is allowed.
        assert_eq!(
            parse("from=stage$,target=/a").unwrap().from.as_deref(),
            Some("stage$")
        );
    }

    #[test]
    fn quoted_fields() {
        let m = parse("\"target=/a,b\",\"source=x\"\"y\"").unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
        assert_eq!(m.source.as_deref(), Some("x\"y"));
    }
}

//! Typed instructions: what each Dockerfile instruction means once its flags
//! are checked and its arguments expanded.

use super::values::{Chmod, Chown, HealthcheckOptions, Mount, Network, Security};
use serde::Serialize;

/// A command of RUN, CMD, ENTRYPOINT or HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "form", content = "value", rename_all = "lowercase")]
pub enum Command {
    /// Shell form: run through the stage's `SHELL`.
    Shell(String),
    /// Exec form: the JSON array as given.
    Exec(Vec<String>),
}

impl Command {
    /// Human-readable form: shell text, or the JSON array.
    pub fn display(&self) -> String {
        match self {
            Command::Shell(s) => s.clone(),
            Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
        }
    }
}

/// A heredoc body carried by RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeredocBody {
    /// The terminator name; COPY/ADD use it as the file name.
    pub name: String,
    /// File descriptor prefix (`3<<EOF`), 0 when absent.
    pub fd: u32,
    /// The body after `<<-` tab stripping and, for COPY/ADD with an
    /// unquoted delimiter, variable expansion.
    pub content: String,
    /// Whether the delimiter was unquoted.
    pub expand: bool,
}

/// A source of COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Source {
    /// A path or wildcard in the context or the `--from` filesystem.
    Path(String),
    /// A heredoc: index into the instruction's `heredocs`.
    Heredoc(usize),
    /// A remote file (`http://`, `https://`), ADD only.
    Url(String),
    /// A Git repository, ADD only.
    Git(String),
}

/// Where COPY `--from` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum CopyFrom {
    /// Another stage, by index.
    Stage(usize),
    /// An image reference.
    Image(String),
}

/// COPY and ADD (`add` tells them apart; ADD-only fields are empty for COPY).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// Whether this is ADD.
    pub add: bool,
    /// Sources in order.
    pub sources: Vec<Source>,
    /// Destination, as written after expansion (relative to WORKDIR if not absolute).
    pub dest: String,
    /// `--from`.
    pub from: Option<CopyFrom>,
    /// `--chown`.
    pub chown: Option<Chown>,
    /// `--chmod`.
    pub chmod: Option<Chmod>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// ADD `--checksum`.
    pub checksum: Option<String>,
    /// ADD `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// ADD `--unpack`: `None` = BuildKit's default (local archives only).
    pub unpack: Option<bool>,
    /// Heredoc sources.
    pub heredocs: Vec<HeredocBody>,
}

/// RUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The command.
    pub command: Command,
    /// Heredocs attached to the line, in order.
    pub heredocs: Vec<HeredocBody>,
    /// `--mount` options, expanded and validated.
    pub mounts: Vec<Mount>,
    /// `--network`.
    pub network: Network,
    /// `--security`.
    pub security: Security,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the inherited check.
    None,
    /// `HEALTHCHECK [opts] CMD …`.
    Cmd {
        /// The test command.
        command: Command,
        /// The options.
        options: HealthcheckOptions,
    },
}

/// One typed instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "lowercase")]
pub enum Instruction {
    /// `ADD` or `COPY`.
    Copy(Copy),
    /// `RUN`.
    Run(Run),
    /// `ENV k=v …`, expanded.
    Env {
        /// Pairs in order.
        pairs: Vec<(String, String)>,
    },
    /// `ARG name[=default] …` with the value each has in this build.
    Arg {
        /// Name, value in effect (build arg or default), default as written.
        args: Vec<ArgDecl>,
    },
    /// `LABEL k=v …`, expanded.
    Label {
        /// Pairs in order.
        pairs: Vec<(String, String)>,
    },
    /// `CMD`.
    Cmd {
        /// The command.
        command: Command,
    },
    /// `ENTRYPOINT`.
    Entrypoint {
        /// The command.
        command: Command,
    },
    /// `EXPOSE`, as config keys (`80/tcp`).
    Expose {
        /// Ports.
        ports: Vec<String>,
    },
    /// `USER`.
    User {
        /// `user[:group]`, expanded.
        user: String,
    },
    /// `WORKDIR`.
    Workdir {
        /// The path, expanded (relative paths are resolved against the previous WORKDIR when run).
        path: String,
    },
    /// `VOLUME`.
    Volume {
        /// Paths.
        paths: Vec<String>,
    },
    /// `STOPSIGNAL`.
    Stopsignal {
        /// The signal as stored in the config.
        signal: String,
    },
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `SHELL`.
    Shell {
        /// The shell and its arguments.
        shell: Vec<String>,
    },
    /// `ONBUILD`: the trigger, stored unexpanded in the image config.
    Onbuild {
        /// The trigger instruction text.
        trigger: String,
    },
    /// `MAINTAINER` (deprecated): sets the image author.
    Maintainer {
        /// The author.
        name: String,
    },
}

/// An `ARG` declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    /// Name.
    pub name: String,
    /// Default written in the Dockerfile, expanded.
    pub default: Option<String>,
    /// Value in effect: the build arg, else the inherited global value, else the default.
    pub value: Option<String>,
}

impl Instruction {
    /// The keyword, upper-case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::Copy(c) if c.add => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Run(_) => "RUN",
            Instruction::Env { .. } => "ENV",
            Instruction::Arg { .. } => "ARG",
            Instruction::Label { .. } => "LABEL",
            Instruction::Cmd { .. } => "CMD",
            Instruction::Entrypoint { .. } => "ENTRYPOINT",
            Instruction::Expose { .. } => "EXPOSE",
            Instruction::User { .. } => "USER",
            Instruction::Workdir { .. } => "WORKDIR",
            Instruction::Volume { .. } => "VOLUME",
            Instruction::Stopsignal { .. } => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell { .. } => "SHELL",
            Instruction::Onbuild { .. } => "ONBUILD",
            Instruction::Maintainer { .. } => "MAINTAINER",
        }
    }

    /// The heredoc bodies the instruction carries (RUN scripts, COPY/ADD
    /// file contents after expansion).
    pub fn heredocs(&self) -> &[HeredocBody] {
        match self {
            Instruction::Copy(c) => &c.heredocs,
            Instruction::Run(r) => &r.heredocs,
            _ => &[],
        }
    }

    /// One line showing the instruction after expansion, e.g.
    /// `COPY --from=0 --chown=app /src/out /app/`.
    pub fn display(&self) -> String {
        self.display_with(&|i| i.to_string())
    }

    /// Like [`display`](Self::display), naming stages with `stage_name`
    /// (used for `COPY --from`).
    pub fn display_with(&self, stage_name: &dyn Fn(usize) -> String) -> String {
        let kw = self.keyword();
        let kv = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={}", quote_if_needed(v)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let body = match self {
            Instruction::Copy(c) => {
                let mut parts = Vec::new();
                match &c.from {
                    Some(CopyFrom::Stage(i)) => parts.push(format!("--from={}", stage_name(*i))),
                    Some(CopyFrom::Image(r)) => parts.push(format!("--from={r}")),
                    None => {}
                }
                if let Some(ch) = &c.chown {
                    parts.push(format!("--chown={ch}"));
                }
                if let Some(m) = &c.chmod {
                    parts.push(format!("--chmod={m}"));
                }
                for (on, name) in [
                    (c.link, "--link"),
                    (c.parents, "--parents"),
                    (c.keep_git_dir, "--keep-git-dir"),
                ] {
                    if on {
                        parts.push(name.to_string());
                    }
                }
                if let Some(u) = c.unpack {
                    parts.push(format!("--unpack={u}"));
                }
                if let Some(sum) = &c.checksum {
                    parts.push(format!("--checksum={sum}"));
                }
                parts.extend(c.exclude.iter().map(|e| format!("--exclude={e}")));
                for s in &c.sources {
                    parts.push(match s {
                        Source::Path(p) | Source::Url(p) | Source::Git(p) => quote_if_needed(p),
                        Source::Heredoc(i) => format!("<<{}", c.heredocs[*i].name),
                    });
                }
                parts.push(quote_if_needed(&c.dest));
                parts.join(" ")
            }
            Instruction::Run(r) => {
                let mut parts: Vec<String> =
                    r.mounts.iter().map(|m| format!("--mount={m}")).collect();
                if r.network != Network::Default {
                    parts.push(format!("--network={}", r.network));
                }
                if r.security != Security::Sandbox {
                    parts.push(format!("--security={}", r.security));
                }
                parts.push(r.command.display());
                parts.join(" ")
            }
            Instruction::Env { pairs } | Instruction::Label { pairs } => kv(pairs),
            Instruction::Arg { args } => args
                .iter()
                .map(|a| match &a.value {
                    Some(v) => format!("{}={}", a.name, quote_if_needed(v)),
                    None => a.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Instruction::Cmd { command } | Instruction::Entrypoint { command } => command.display(),
            Instruction::Expose { ports } => ports.join(" "),
            Instruction::User { user } => user.clone(),
            Instruction::Workdir { path } => path.clone(),
            Instruction::Volume { paths } => serde_json::to_string(paths).unwrap_or_default(),
            Instruction::Stopsignal { signal } => signal.clone(),
            Instruction::Healthcheck(Healthcheck::None) => "NONE".into(),
            Instruction::Healthcheck(Healthcheck::Cmd { command, options }) => {
                let opts = options.to_string();
                if opts.is_empty() {
                    format!("CMD {}", command.display())
                } else {
                    format!("{opts} CMD {}", command.display())
                }
            }
            Instruction::Shell { shell } => serde_json::to_string(shell).unwrap_or_default(),
            Instruction::Onbuild { trigger } => trigger.clone(),
            Instruction::Maintainer { name } => name.clone(),
        };
        if body.is_empty() {
            kw.to_string()
        } else {
            format!("{kw} {body}")
        }
    }
}

fn quote_if_needed(s: &str) -> String {
    if !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

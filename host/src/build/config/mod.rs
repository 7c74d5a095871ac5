//! The image config of a stage, built instruction by instruction the way
//! BuildKit's Dockerfile frontend and image exporter build it.
//!
//! Sources of truth (moby/buildkit): `frontend/dockerfile/dockerfile2llb/
//! convert.go` (the `dispatch*` functions, `commitToHistory`, `withShell`,
//! `runCommandString`, `addEnv`), `convert_copy.go` (the COPY/ADD history
//! line), `convert_expose.go`, `image.go` (`emptyImage`), `util/system/
//! path.go` (`NormalizeWorkdir`), and `exporter/containerimage/writer.go`
//! (`normalizeLayersAndHistory`, `patchImageConfig`: history and `created`
//! times, `SOURCE_DATE_EPOCH`, `rootfs`).
//!
//! A [`ConfigBuilder`] starts from a base image config
//! ([`ConfigBuilder::from_image`]), from nothing ([`ConfigBuilder::scratch`])
//! or from an earlier stage ([`ConfigBuilder::from_stage`]). Metadata
//! instructions go through [`ConfigBuilder::apply`], which changes the config
//! and writes the history entry. Instructions that change the filesystem
//! (RUN, COPY, ADD, and WORKDIR other than `/`, which BuildKit turns into a
//! `mkdir` layer) come back as [`Applied::Filesystem`] with the history line
//! BuildKit writes; the executor does the work and then calls
//! [`ConfigBuilder::add_history`]. [`ConfigBuilder::finish`] sets the diff
//! IDs, the platform, `--label`s and the times.

use crate::dockerfile::go_quote;
use crate::image::{
    Digest, Healthcheck as ConfigHealthcheck, History, ImageConfig, Platform, Timestamp,
};
use crate::plan::{Command, Copy, Healthcheck, Instruction, Run, Source};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `comment` BuildKit's Dockerfile frontend puts on each history entry.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The `comment` BuildKit's exporter puts on entries it adds for layers the
/// history did not account for.
pub const EXPORTER_HISTORY_COMMENT: &str = "buildkit.exporter.image.v0";

/// `PATH` BuildKit gives a stage whose image has none (not on Windows).
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why an instruction could not be applied to the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `VOLUME ""`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
}

/// What [`ConfigBuilder::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Applied {
    /// The config changed and the history entry is written.
    Done,
    /// The instruction changes the filesystem: do it, then call
    /// [`ConfigBuilder::add_history`] with `created_by` and whether a layer
    /// was made. For WORKDIR the directory to create (with parents, mode
    /// 0755, owned by [`ConfigBuilder::user`]) is
    /// [`ConfigBuilder::working_dir`].
    Filesystem {
        /// The history line, as BuildKit writes it.
        created_by: String,
    },
}

/// The config of one stage, as its instructions are applied.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    image: ImageConfig,
    /// How many history entries came from the base image; their times are
    /// kept as they are, even with `SOURCE_DATE_EPOCH`.
    base_history: usize,
    /// The base's ONBUILD triggers, to run before the stage's instructions.
    triggers: Vec<String>,
    /// ARGs declared in the stage (and the stages it builds on): name and
    /// value, in declaration order.
    args: Vec<(String, Option<String>)>,
    /// The environment RUN sees: the config's `Env`, then ENV and ARG
    /// values in order (BuildKit's LLB state env).
    env: Vec<(String, String)>,
    /// Whether CMD was given in this stage (ENTRYPOINT keeps it then).
    cmd_set: bool,
    /// `--platform`, when given explicitly.
    target_platform: Option<Platform>,
    /// `--label`s, which win over LABEL.
    build_labels: BTreeMap<String, String>,
}

impl ConfigBuilder {
    /// Starts from a base image's config, as BuildKit does for `FROM
    /// <image>`:
    ///
    /// * only the fields BuildKit's Go types know are kept (`container_config`,
    ///   `docker_version`, `config.Hostname`... are dropped), and `created`
    ///   is cleared;
    /// * `OnBuild` is taken out: see [`base_onbuild_triggers`](Self::base_onbuild_triggers);
    /// * `PATH` is appended to `Env` when missing (except on Windows);
    /// * `WorkingDir` is normalised as if given to WORKDIR.
    pub fn from_image(base: &ImageConfig) -> Self {
        let mut image = base.clone();
        image.extra.clear();
        image.config.extra.clear();
        for h in &mut image.history {
            h.extra.clear();
        }
        image.created = None;
        let triggers = std::mem::take(&mut image.config.on_build);
        let base_history = image.history.len();
        let mut b = Self::with_image(image, base_history);
        b.triggers = triggers;
        b
    }

    /// Starts from nothing, as BuildKit does for `FROM scratch`: the
    /// platform, `WorkingDir` `/`, and `Env` with the default `PATH` (none
    /// on Windows).
    pub fn scratch(platform: &Platform) -> Self {
        let mut image = ImageConfig::for_platform(platform);
        image.config.working_dir = "/".to_owned();
        if platform.os != "windows" {
            image.config.env = vec![format!("PATH={DEFAULT_PATH_ENV}")];
        }
        Self::with_image(image, 0)
    }

    /// Starts from the current state of an earlier stage (`FROM <stage>`):
    /// its config, history and declared ARGs carry over; the ONBUILD
    /// triggers it declared become this stage's
    /// [`base_onbuild_triggers`](Self::base_onbuild_triggers) and are
    /// cleared from the config; `--label`s and `--platform` do not carry
    /// over.
    pub fn from_stage(parent: &ConfigBuilder) -> Self {
        let mut image = parent.image.clone();
        let triggers = std::mem::take(&mut image.config.on_build);
        let mut b = Self::with_image(image, parent.base_history);
        b.triggers = triggers;
        b.args = parent.args.clone();
        b.env = parent.env.clone();
        b
    }

    fn with_image(mut image: ImageConfig, base_history: usize) -> Self {
        // dispatchStages: PATH is always set, except on Windows.
        if image.os != "windows" && image.env("PATH").is_none() {
            image.config.env.push(format!("PATH={DEFAULT_PATH_ENV}"));
        }
        // dispatchStages re-dispatches the base WorkingDir through WORKDIR
        // (without a history entry).
        if !image.config.working_dir.is_empty() {
            let wd = &image.config.working_dir;
            image.config.working_dir = normalize_workdir(wd, wd);
        }
        let env = image.env_pairs();
        Self {
            image,
            base_history,
            triggers: Vec::new(),
            args: Vec::new(),
            env,
            cmd_set: false,
            target_platform: None,
            build_labels: BTreeMap::new(),
        }
    }

    /// Sets the platform given with `--platform`. At
    /// [`finish`](Self::finish), `os` and `architecture` are replaced by
    /// it, and `variant` too when it has one or the OS/architecture differ
    /// (BuildKit's `finalizeResultImage`). Without it the base image's
    /// platform stays.
    pub fn with_target_platform(mut self, platform: &Platform) -> Self {
        self.target_platform = Some(platform.clone());
        self
    }

    /// Sets `--label`s: merged into `Labels` at [`finish`](Self::finish),
    /// over LABEL values of the same key.
    pub fn with_build_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.build_labels = labels;
        self
    }

    /// The base's ONBUILD triggers, as written after `ONBUILD`, in order.
    /// The executor parses and runs them before the stage's own
    /// instructions; they are not in the new config's `OnBuild`.
    pub fn base_onbuild_triggers(&self) -> &[String] {
        &self.triggers
    }

    /// The config so far (no times, diff IDs or `--label`s yet).
    pub fn config(&self) -> &ImageConfig {
        &self.image
    }

    /// `WorkingDir` now.
    pub fn working_dir(&self) -> &str {
        &self.image.config.working_dir
    }

    /// `User` now (empty for the image default).
    pub fn user(&self) -> &str {
        &self.image.config.user
    }

    /// The environment a RUN sees now: `Env`, with ARG values of the stage
    /// (BuildKit's build state environment).
    pub fn run_env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The argv of a CMD/ENTRYPOINT/RUN command: exec form as given; shell
    /// form as `SHELL` (default `/bin/sh -c`, `cmd /S /C` on Windows) plus
    /// the text (BuildKit's `withShell`).
    pub fn command_args(&self, command: &Command) -> Vec<String> {
        match command {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => self.with_shell(s.clone()),
        }
    }

    fn with_shell(&self, text: String) -> Vec<String> {
        let mut shell = if self.image.config.shell.is_empty() {
            default_shell(&self.image.os)
        } else {
            self.image.config.shell.clone()
        };
        shell.push(text);
        shell
    }

    /// The argv BuildKit runs for a RUN, heredocs included
    /// (`dispatchRun`):
    ///
    /// * a single heredoc alone on the line (`RUN <<EOF`) whose body starts
    ///   with `#!` runs as a file: the argv is the shell plus
    ///   `/dev/pipes/<name>`, and the executor must provide that file
    ///   (the body, mode 0755);
    /// * a single heredoc alone otherwise runs its body through the shell;
    /// * other heredoc lines pass the line, then each body and terminator,
    ///   to the shell.
    pub fn run_args(&self, run: &Run) -> Vec<String> {
        let Command::Shell(line) = &run.command else {
            return self.command_args(&run.command);
        };
        if run.heredocs.is_empty() {
            return self.with_shell(line.clone());
        }
        if is_lone_heredoc(line) {
            let doc = &run.heredocs[0];
            if self.image.os != "windows" && doc.content.starts_with("#!") {
                return self.with_shell(format!("/dev/pipes/{}", doc.name));
            }
            return self.with_shell(doc.content.clone());
        }
        let mut text = line.clone();
        for doc in &run.heredocs {
            text.push('\n');
            text.push_str(&doc.content);
            text.push_str(&doc.name);
        }
        self.with_shell(text)
    }

    /// The history line of a RUN: `RUN [|n K=V…] <argv> # buildkit`, where
    /// the `K=V` are the stage's declared ARGs with the value the build
    /// environment has for them (`runCommandString`).
    pub fn run_created_by(&self, run: &Run) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for (name, value) in &self.args {
            let v = self
                .env
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .or(value.as_deref())
                .unwrap_or("");
            let kv = format!("{name}={v}");
            match index.get(name.as_str()) {
                Some(&i) => parts[i] = kv,
                None => {
                    index.insert(name, parts.len());
                    parts.push(kv);
                }
            }
        }
        if !parts.is_empty() {
            parts.insert(0, format!("|{}", parts.len()));
        }
        parts.extend(self.run_args(run));
        format!("RUN {} # buildkit", parts.join(" "))
    }

    /// The history line of a COPY or ADD (`dispatchCopy`): the keyword,
    /// `--parents`, `--chown`, `--chmod` when given, the path sources, then
    /// `<<name` for each heredoc source, then the destination, then
    /// `# buildkit`. `--from`, `--link` and the ADD-only flags are not in it.
    pub fn copy_created_by(&self, copy: &Copy) -> String {
        let mut s = String::from(if copy.add { "ADD" } else { "COPY" });
        if copy.parents {
            s.push_str(" --parents");
        }
        if let Some(c) = &copy.chown {
            s.push_str(&format!(" --chown={c}"));
        }
        if let Some(m) = &copy.chmod {
            s.push_str(&format!(" --chmod={m}"));
        }
        for src in &copy.sources {
            if let Source::Path(p) | Source::Url(p) | Source::Git(p) = src {
                s.push(' ');
                s.push_str(p);
            }
        }
        for src in &copy.sources {
            if let Source::Heredoc(i) = src
                && let Some(doc) = copy.heredocs.get(*i)
            {
                s.push_str(" <<");
                s.push_str(&doc.name);
            }
        }
        s.push(' ');
        s.push_str(&copy.dest);
        s.push_str(" # buildkit");
        s
    }

    /// Applies one instruction with BuildKit's rules (each arm names the
    /// BuildKit function it follows).
    pub fn apply(&mut self, instruction: &Instruction) -> Result<Applied, ConfigError> {
        let cfg = &mut self.image.config;
        let created_by = match instruction {
            Instruction::Run(run) => {
                return Ok(Applied::Filesystem {
                    created_by: self.run_created_by(run),
                });
            }
            Instruction::Copy(copy) => {
                return Ok(Applied::Filesystem {
                    created_by: self.copy_created_by(copy),
                });
            }
            // dispatchEnv + addEnv: replace in place, else append.
            Instruction::Env { pairs } => {
                let mut line = String::from("ENV");
                for (k, v) in pairs {
                    line.push_str(&format!(" {k}={v}"));
                    add_env(&mut cfg.env, k, v);
                    set_env(&mut self.env, k, v);
                }
                line
            }
            // dispatchArg: history only; the value joins the RUN environment.
            Instruction::Arg { args } => {
                let mut parts = Vec::new();
                for a in args {
                    match &a.value {
                        Some(v) => {
                            set_env(&mut self.env, &a.name, v);
                            parts.push(format!("{}={v}", a.name));
                        }
                        None => parts.push(a.name.clone()),
                    }
                    self.args.push((a.name.clone(), a.value.clone()));
                }
                format!("ARG {}", parts.join(" "))
            }
            // dispatchLabel.
            Instruction::Label { pairs } => {
                let mut line = String::from("LABEL");
                for (k, v) in pairs {
                    cfg.labels.insert(k.clone(), v.clone());
                    line.push_str(&format!(" {k}={v}"));
                }
                line
            }
            // dispatchCmd: ArgsEscaped is set for both forms.
            Instruction::Cmd { command } => {
                let args = self.command_args(command);
                let cfg = &mut self.image.config;
                cfg.cmd = args.clone();
                cfg.args_escaped = true;
                self.cmd_set = true;
                format!("CMD {}", go_quote_list(&args))
            }
            // dispatchEntrypoint: an inherited CMD is reset, a CMD of this
            // stage is kept.
            Instruction::Entrypoint { command } => {
                let args = self.command_args(command);
                let cfg = &mut self.image.config;
                cfg.entrypoint = args.clone();
                if !self.cmd_set {
                    cfg.cmd.clear();
                }
                format!("ENTRYPOINT {}", go_quote_list(&args))
            }
            // dispatchHealthcheck (+ instructions.parseHealthcheck).
            Instruction::Healthcheck(hc) => {
                let config = match hc {
                    Healthcheck::None => ConfigHealthcheck {
                        test: vec!["NONE".to_owned()],
                        ..ConfigHealthcheck::default()
                    },
                    Healthcheck::Cmd { command, options } => {
                        let test = match command {
                            Command::Exec(v) => std::iter::once("CMD".to_owned())
                                .chain(v.iter().cloned())
                                .collect(),
                            Command::Shell(s) => vec!["CMD-SHELL".to_owned(), s.clone()],
                        };
                        ConfigHealthcheck {
                            test,
                            interval: nanos(options.interval),
                            timeout: nanos(options.timeout),
                            start_period: nanos(options.start_period),
                            start_interval: nanos(options.start_interval),
                            retries: i64::from(options.retries.unwrap_or(0)),
                        }
                    }
                };
                let line = format!("HEALTHCHECK {}", go_healthcheck(&config));
                cfg.healthcheck = Some(config);
                line
            }
            // dispatchExpose.
            Instruction::Expose { ports } => {
                cfg.exposed_ports.extend(ports.iter().cloned());
                format!("EXPOSE {}", go_list(ports))
            }
            // dispatchUser.
            Instruction::User { user } => {
                cfg.user = user.clone();
                format!("USER {user}")
            }
            // dispatchWorkdir: a layer (mkdir) unless the result is `/`.
            Instruction::Workdir { path } => {
                let wd = normalize_workdir(&cfg.working_dir, path);
                cfg.working_dir = wd.clone();
                let line = format!("WORKDIR {wd}");
                if wd != "/" {
                    return Ok(Applied::Filesystem { created_by: line });
                }
                line
            }
            // dispatchVolume.
            Instruction::Volume { paths } => {
                if paths.iter().any(String::is_empty) {
                    return Err(ConfigError::EmptyVolume);
                }
                cfg.volumes.extend(paths.iter().cloned());
                format!("VOLUME {}", go_list(paths))
            }
            // dispatchStopSignal.
            Instruction::Stopsignal { signal } => {
                cfg.stop_signal = signal.clone();
                format!("STOPSIGNAL {signal}")
            }
            // dispatchShell.
            Instruction::Shell { shell } => {
                cfg.shell = shell.clone();
                format!("SHELL {}", go_list(shell))
            }
            // dispatchOnbuild: no history entry.
            Instruction::Onbuild { trigger } => {
                cfg.on_build.push(trigger.clone());
                return Ok(Applied::Done);
            }
            // dispatchMaintainer.
            Instruction::Maintainer { name } => {
                self.image.author = name.clone();
                format!("MAINTAINER {name}")
            }
        };
        self.push_history(created_by, false, None);
        Ok(Applied::Done)
    }

    /// Records the history entry of a step that changed the filesystem
    /// (the `created_by` of [`Applied::Filesystem`]); `layer` says whether
    /// it made a layer. A layer is stamped with the current time, as
    /// BuildKit stamps a layer when it is made.
    pub fn add_history(&mut self, created_by: impl Into<String>, layer: bool) {
        let at = layer.then(now);
        self.push_history(created_by.into(), layer, at);
    }

    /// Like [`add_history`](Self::add_history), with the layer's time given.
    pub fn add_history_at(&mut self, created_by: impl Into<String>, layer: bool, at: Timestamp) {
        self.push_history(created_by.into(), layer, Some(at));
    }

    /// Marks the history entry at `index` (a position in
    /// `config().history`) as the one that made a layer, stamped now. With
    /// `--single-snapshot` the stage's one layer is known only at its end
    /// and belongs to its last filesystem step. An index past the end
    /// changes nothing.
    pub fn mark_layer(&mut self, index: usize) {
        if let Some(h) = self.image.history.get_mut(index) {
            h.empty_layer = false;
            h.created = Some(now());
        }
    }

    fn push_history(&mut self, created_by: String, layer: bool, created: Option<Timestamp>) {
        self.image.history.push(History {
            created,
            created_by,
            comment: HISTORY_COMMENT.to_owned(),
            empty_layer: !layer,
            ..History::default()
        });
    }

    /// The final config. `diff_ids` are all layers of the image, the base's
    /// first. `epoch` is `SOURCE_DATE_EPOCH` (or a reproducible build's
    /// fixed time): the new history entries and `created` get it; the base
    /// image's entries keep theirs. Without it, entries without a time get
    /// the time of the next new layer (or of the previous one after the
    /// first), and `created` is the last entry's time.
    pub fn finish(self, diff_ids: Vec<Digest>, epoch: Option<Timestamp>) -> ImageConfig {
        self.finish_at(diff_ids, epoch, now())
    }

    fn finish_at(
        mut self,
        diff_ids: Vec<Digest>,
        epoch: Option<Timestamp>,
        now: Timestamp,
    ) -> ImageConfig {
        let mut image = std::mem::take(&mut self.image);
        // finalizeResultImage: --label wins over LABEL.
        image
            .config
            .labels
            .extend(std::mem::take(&mut self.build_labels));
        if let Some(target) = &self.target_platform {
            let same = target.os == image.os && target.architecture == image.architecture;
            image.os = target.os.clone();
            image.architecture = target.architecture.clone();
            if target.variant.is_some() || !same {
                image.variant = target.variant.clone().unwrap_or_default();
            }
            if !same {
                image.os_version.clear();
            }
        }
        let normal = image.platform().normalize();
        image.os = normal.os;
        image.architecture = normal.architecture;
        image.variant = normal.variant.unwrap_or_default();

        // dispatch*: with an epoch, commitToHistory stamps every new entry.
        if let Some(e) = epoch {
            for h in &mut image.history[self.base_history..] {
                h.created = Some(e);
            }
        }
        normalize_history(&mut image.history, diff_ids.len(), now);
        // patchImageConfig: clamp new entries to the epoch.
        if let Some(e) = epoch {
            let start = self.base_history.min(image.history.len());
            for h in &mut image.history[start..] {
                if h.created.is_none_or(|c| c.is_after(&e)) {
                    h.created = Some(e);
                }
            }
        }
        image.rootfs.kind = "layers".to_owned();
        image.rootfs.diff_ids = (!diff_ids.is_empty()).then_some(diff_ids);
        // patchImageConfig: `created` is the last history time; Go writes
        // `null` when there is none.
        image.created = image.history.iter().rev().find_map(|h| h.created);
        if image.created.is_none() {
            image
                .extra
                .insert("created".to_owned(), serde_json::Value::Null);
        }
        image
    }
}

/// `normalizeLayersAndHistory` of BuildKit's image exporter.
fn normalize_history(history: &mut Vec<History>, layers: usize, now: Timestamp) {
    let mut counted = history.iter().filter(|h| !h.empty_layer).count();
    if counted > layers {
        // More layer entries than layers: the topmost become empty.
        let mut l = 0;
        for h in history.iter_mut() {
            if l >= layers {
                h.empty_layer = true;
            }
            if !h.empty_layer {
                l += 1;
            }
        }
        counted = layers;
    }
    for _ in counted..layers {
        history.push(History {
            created: Some(now),
            comment: EXPORTER_HISTORY_COMMENT.to_owned(),
            ..History::default()
        });
    }
    for h in history.iter_mut() {
        if !h.empty_layer && h.created.is_none() {
            h.created = Some(now);
        }
    }
    // The first new layer's time, else the last time there is.
    let mut created = None;
    let mut gap = false;
    for h in history.iter() {
        match h.created {
            Some(t) => {
                created = Some(t);
                if gap {
                    break;
                }
            }
            None => gap = true,
        }
    }
    let mut gap = false;
    for h in history.iter_mut() {
        match h.created {
            Some(t) => {
                if gap {
                    created = Some(t);
                }
            }
            None => {
                gap = true;
                h.created = created;
            }
        }
    }
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Timestamp::from_unix(d.as_secs() as i64, d.subsec_nanos())
        .unwrap_or_else(|| Timestamp::from_unix(0, 0).expect("the Unix epoch is in range"))
}

fn nanos(d: Option<Duration>) -> i64 {
    d.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn default_shell(os: &str) -> Vec<String> {
    let s: &[&str] = if os == "windows" {
        &["cmd", "/S", "/C"]
    } else {
        &["/bin/sh", "-c"]
    };
    s.iter().map(|s| (*s).to_owned()).collect()
}

/// `parser.MustParseHeredoc(args[0]) != nil`: the whole line is one heredoc
/// word (`<<EOF`, `<<-"EOF"`, `3<<EOF`).
fn is_lone_heredoc(line: &str) -> bool {
    let rest = line.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    !rest.is_empty() && !rest.contains('<') && !rest.contains(char::is_whitespace)
}

/// `addEnv`: replace the first entry with the key, else append.
fn add_env(env: &mut Vec<String>, k: &str, v: &str) {
    let entry = format!("{k}={v}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(key, _)| key) == k)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

fn set_env(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    match env.iter_mut().find(|(key, _)| key == k) {
        Some(e) => e.1 = v.to_owned(),
        None => env.push((k.to_owned(), v.to_owned())),
    }
}

/// BuildKit's `system.NormalizeWorkdir` for Unix: an absolute path is kept
/// as written (not cleaned); a relative one is joined to the current one
/// (Go's `path.Join`, which cleans); an empty one keeps the current one.
fn normalize_workdir(current: &str, requested: &str) -> String {
    let parent = if current.is_empty() {
        "/".to_owned()
    } else if current.starts_with('/') {
        current.to_owned()
    } else {
        go_path_join("/", current)
    };
    if requested.is_empty() {
        return parent;
    }
    if requested.starts_with('/') {
        requested.to_owned()
    } else {
        go_path_join(&parent, requested)
    }
}

/// Go's `path.Join(a, b)` for a non-empty `a`: joined, then `path.Clean`ed.
fn go_path_join(a: &str, b: &str) -> String {
    go_path_clean(&format!("{a}/{b}"))
}

/// Go's `path.Clean`.
fn go_path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

/// Go's `fmt.Sprintf("%v", []string)`: `[a b c]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Go's `fmt.Sprintf("%q", []string)`: `["a" "b"]`.
fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `fmt.Sprintf("%+v", HealthcheckConfig)`.
fn go_healthcheck(h: &ConfigHealthcheck) -> String {
    let d = |n: i64| {
        if n < 0 {
            format!(
                "-{}",
                crate::plan::values::format_go_duration(Duration::from_nanos(n.unsigned_abs()))
            )
        } else {
            crate::plan::values::format_go_duration(Duration::from_nanos(n as u64))
        }
    };
    format!(
        "{{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        go_list(&h.test),
        d(h.interval),
        d(h.timeout),
        d(h.start_period),
        d(h.start_interval),
        h.retries
    )
}

#[cfg(test)]
mod tests;

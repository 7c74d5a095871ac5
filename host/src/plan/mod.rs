//! From a parsed [`Dockerfile`] to a build [`Plan`]: typed and validated
//! instructions, ARG scoping, stages, and the stages a `--target` needs.
//!
//! Pure: no network, no filesystem. May use [`crate::dockerfile`] only.
//! Variables are expanded here, with BuildKit's rules for which arguments
//! of which instruction are expanded (`shared/reference/dockerfile-features.md`
//! §3). The environment a stage starts with comes from its base: a previous
//! stage is known; an image's `ENV` is known only once the image is pulled,
//! so the executor plans again with [`PlanOptions::image_env`] filled in,
//! while `--dry-run` plans with what the Dockerfile alone says.

mod flags;
pub mod instruction;
pub mod lint;
mod render;
pub mod values;

use crate::dockerfile::shell::{Env, Lexer};
use crate::dockerfile::{Dockerfile, Node, ParseError, Span};
use flags::{FlagError, Flags, Kind};
pub use instruction::{
    ArgDecl, Command, Copy, CopyFrom, Healthcheck, HeredocBody, Instruction, Run, Source,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use values::{Network, Platform, Security};

/// What the planner needs besides the Dockerfile.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `--build-arg` values (bare `KEY` already looked up in the environment).
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build; the last stage when `None`.
    pub target: Option<String>,
    /// The platform the image is built for (`--platform`/`--custom-platform`).
    pub target_platform: Platform,
    /// The platform kiln runs on.
    pub build_platform: Platform,
    /// `ENV` of base images, keyed by the reference as written after
    /// expansion; images not listed are treated as having no `ENV`.
    pub image_env: BTreeMap<String, Vec<(String, String)>>,
    /// `OnBuild` triggers of base images (their config's trigger texts, in
    /// order), keyed like [`image_env`](Self::image_env). Each stage on
    /// such an image starts with these, planned as if they stood right
    /// after its FROM; images not listed have none.
    pub image_triggers: BTreeMap<String, Vec<String>>,
}

impl PlanOptions {
    /// Options for building the last stage for the host platform, with no
    /// build args.
    pub fn new() -> Self {
        Self {
            build_args: BTreeMap::new(),
            target: None,
            target_platform: Platform::host(),
            build_platform: Platform::host(),
            image_env: BTreeMap::new(),
            image_triggers: BTreeMap::new(),
        }
    }
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Errors of planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// An error in the Dockerfile, with its location.
    #[error(transparent)]
    Dockerfile(#[from] ParseError),
    /// `--target` names no stage.
    #[error("--target {target:?} names no stage of {file}: {}", describe_stages(.stages))]
    UnknownTarget {
        /// The Dockerfile.
        file: String,
        /// What the user asked for.
        target: String,
        /// Stage names that exist.
        stages: Vec<String>,
    },
    /// An ONBUILD trigger of a stage's base cannot be parsed or planned.
    /// It has no line in the Dockerfile: the error names the base and the
    /// trigger text instead.
    #[error("stage {stage}: ONBUILD trigger {trigger:?} of {base}: {reason}")]
    Trigger {
        /// The stage that runs the trigger.
        stage: String,
        /// `base image <ref>` or `stage <name>`.
        base: String,
        /// The trigger, as stored.
        trigger: String,
        /// What is wrong, lowercase.
        reason: String,
    },
}

fn describe_stages(stages: &[String]) -> String {
    if stages.is_empty() {
        "it has no named stages (name one with FROM <image> AS <name>)".into()
    } else {
        format!("its stages are {}", stages.join(", "))
    }
}

/// A non-fatal finding, shown as a warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The BuildKit check rule, for findings of a named rule.
    pub rule: Option<String>,
    /// Where in the Dockerfile, when it is about a line.
    pub span: Option<Span>,
    /// What, lowercase.
    pub message: String,
}

impl Warning {
    /// `file:line:col: ` when the warning is about a line, else empty.
    pub fn location(&self, file: &str) -> String {
        self.span
            .map(|s| format!("{file}:{}:{}: ", s.line, s.col))
            .unwrap_or_default()
    }

    /// The rule (when a named check found it) and the message:
    /// `UndefinedVar: usage of undefined variable $X …`.
    pub fn text(&self) -> String {
        match &self.rule {
            Some(rule) => format!("{rule}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An image reference, as written after expansion.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// One instruction of a stage, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// First line in the Dockerfile.
    pub line: usize,
    /// Last line (heredocs and continuations included).
    pub end_line: usize,
    /// The instruction as written (logical line), or the trigger text.
    pub source: String,
    /// The typed, expanded instruction.
    pub instruction: Instruction,
    /// Whether this step is an ONBUILD trigger of the stage's base: the
    /// triggers come first, in order, with the FROM line as their line.
    pub onbuild: bool,
}

/// One build stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// Position among the stages (what `--from=<n>` counts).
    pub index: usize,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// What the stage starts from.
    pub base: Base,
    /// `FROM --platform`, when given.
    pub platform: Option<Platform>,
    /// The FROM line.
    pub line: usize,
    /// Whether the target needs this stage.
    pub needed: bool,
    /// Stages this one reads (base, `COPY --from`, `RUN --mount=from`).
    pub depends_on: Vec<usize>,
    /// Whether the whole environment the stage expands with was known:
    /// false for a base image whose ENV was not given in
    /// [`PlanOptions::image_env`], where unknown variables stay as written.
    pub env_known: bool,
    /// The base's ONBUILD triggers (marked [`Step::onbuild`]), then the
    /// instructions after FROM.
    pub steps: Vec<Step>,
}

impl Stage {
    /// `name` or `#index`, for messages.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("#{}", self.index),
        }
    }
}

/// A resolved build plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The Dockerfile's name.
    pub file: String,
    /// The platform built for.
    pub target_platform: Platform,
    /// The platform kiln runs on.
    pub build_platform: Platform,
    /// ARGs declared before the first FROM, with their values.
    pub global_args: Vec<ArgDecl>,
    /// Every stage, in file order.
    pub stages: Vec<Stage>,
    /// The target stage.
    pub target: usize,
    /// Needed stages in an order where each comes after what it reads.
    pub order: Vec<usize>,
    /// Warnings: unused build args, undefined variables, deprecated forms.
    pub warnings: Vec<Warning>,
}

impl Plan {
    /// The stage a `--from=` / `--mount=from=` value names: an index, or a
    /// stage name (case-insensitive); `None` means it names an image.
    pub fn stage_index(&self, reference: &str) -> Option<usize> {
        let names: Vec<Option<String>> = self.stages.iter().map(|s| s.name.clone()).collect();
        resolve_stage_ref(reference, &names, self.stages.len())
    }
}

/// Build args every build has without an ARG: they do not count as unused
/// and the proxy ones reach RUN without being declared.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

const KNOWN_INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Plans `dockerfile` with `options`.
///
/// ```
/// use kiln::plan::{plan, PlanOptions};
/// let df = kiln::dockerfile::parse(b"FROM busybox AS a\nFROM a\nRUN true\n", "Dockerfile").unwrap();
/// let p = plan(&df, &PlanOptions::new()).unwrap();
/// assert_eq!(p.order, vec![0, 1]);
/// ```
pub fn plan(dockerfile: &Dockerfile, options: &PlanOptions) -> Result<Plan, PlanError> {
    Planner::new(dockerfile, options).run()
}

/// The variables visible to an expansion, in the order they were set; a
/// later entry replaces an earlier one of the same name.
#[derive(Debug, Clone, Default)]
struct Scope {
    vars: Vec<(String, String)>,
}

impl Scope {
    fn set(&mut self, key: &str, value: &str) {
        if let Some(slot) = self.vars.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value.to_string();
        } else {
            self.vars.push((key.to_string(), value.to_string()));
        }
    }
}

impl Env for Scope {
    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to do with variables that are not set when expanding.
#[derive(Clone, Copy)]
enum Undefined<'a> {
    /// Expand to empty, say nothing.
    Ignore,
    /// A FROM line: report names not declared as global ARGs.
    InFrom,
    /// A stage whose environment is known: report names not declared.
    InStage(&'a BTreeSet<String>),
    /// A stage on an image whose ENV is unknown: keep `$NAME` as written.
    KeepUnknown,
}

/// Per-stage state while walking instructions.
#[derive(Debug, Clone, Default)]
struct StageState {
    scope: Scope,
    /// ARG names declared in the stage, with or without a value.
    declared: BTreeSet<String>,
    /// Whether an absolute WORKDIR was set in this stage or its parents.
    absolute_workdir: bool,
    /// Whether everything in the stage's environment is known (no image
    /// base with unknown ENV), so undefined variables can be reported.
    env_known: bool,
}

struct Planner<'a> {
    df: &'a Dockerfile,
    opts: &'a PlanOptions,
    lexer: Lexer,
    warnings: Vec<Warning>,
    used_build_args: BTreeSet<String>,
    /// Final state of each stage, for `FROM <stage>`.
    end_states: Vec<StageState>,
}

/// A stage while it is collected: its FROM node and instruction nodes.
struct RawStage<'a> {
    from: &'a Node,
    nodes: Vec<&'a Node>,
}

impl<'a> Planner<'a> {
    fn new(df: &'a Dockerfile, opts: &'a PlanOptions) -> Self {
        Self {
            df,
            opts,
            lexer: Lexer::new(df.directives.escape),
            warnings: Vec::new(),
            used_build_args: BTreeSet::new(),
            end_states: Vec::new(),
        }
    }

    fn err(&self, span: Span, message: impl Into<String>) -> PlanError {
        PlanError::Dockerfile(self.df.error(span, message))
    }

    fn warn(&mut self, span: Option<Span>, message: impl Into<String>) {
        self.warnings.push(Warning {
            rule: None,
            span,
            message: message.into(),
        });
    }

    /// A finding of a named build-check rule.
    fn lint(&mut self, rule: &'static str, span: Span, message: impl Into<String>) {
        debug_assert!(
            lint::RULES.contains(&rule),
            "{rule} is listed in lint::RULES"
        );
        self.warnings.push(Warning {
            rule: Some(rule.to_string()),
            span: Some(span),
            message: message.into(),
        });
    }

    fn run(mut self) -> Result<Plan, PlanError> {
        self.check_directives();
        for w in &self.df.warnings {
            self.lint("NoEmptyContinuation", w.span, w.message.clone());
        }
        self.lint_casing();
        // Split into the global part (before the first FROM) and stages.
        let mut globals: Vec<&Node> = Vec::new();
        let mut raw_stages: Vec<RawStage<'_>> = Vec::new();
        for node in &self.df.nodes {
            let name = node.name();
            if !KNOWN_INSTRUCTIONS.contains(&name.to_uppercase().as_str()) {
                return Err(self.unknown_instruction(node));
            }
            if name == "from" {
                raw_stages.push(RawStage {
                    from: node,
                    nodes: Vec::new(),
                });
            } else if let Some(stage) = raw_stages.last_mut() {
                stage.nodes.push(node);
            } else if name == "arg" {
                globals.push(node);
            } else {
                return Err(self.err(
                    node.span,
                    format!(
                        "{} before the first FROM: only ARG instructions may come before FROM",
                        node.keyword.to_uppercase()
                    ),
                ));
            }
        }
        if raw_stages.is_empty() {
            let span = self.df.nodes.first().map(|n| n.span).unwrap_or_default();
            return Err(self.err(
                span,
                "no FROM instruction: expected FROM <image> to start a stage",
            ));
        }

        let global_scope = self.global_scope(&globals)?;
        let global_args = global_scope.1;
        let global_scope = global_scope.0;

        // First pass: FROM lines, names and bases (FROM may name earlier stages only).
        let mut stages: Vec<Stage> = Vec::new();
        for (index, raw) in raw_stages.iter().enumerate() {
            let stage = self.plan_from(index, raw.from, &global_scope, &stages)?;
            stages.push(stage);
        }
        let names: Vec<Option<String>> = stages.iter().map(|s| s.name.clone()).collect();
        for (i, name) in names.iter().enumerate() {
            if let Some(n) = name
                && names[..i].iter().any(|m| m.as_deref() == Some(n))
            {
                self.lint(
                    "DuplicateStageName",
                    raw_stages[i].from.span,
                    format!("duplicate stage name {n:?}: stage names should be unique; references resolve to the first stage with this name"),
                );
            }
        }

        // Second pass: instructions, in file order (a stage's base is always earlier).
        for (index, raw) in raw_stages.iter().enumerate() {
            let mut state = self.initial_state(&stages[index]);
            self.lint_stage(&raw.nodes);
            let mut steps = Vec::with_capacity(raw.nodes.len());
            let mut deps = Vec::new();
            if let Base::Stage(b) = stages[index].base {
                deps.push(b);
            }
            // The base's ONBUILD triggers run first, as if they stood right
            // after FROM: same scope, and their ENV/ARG reach what follows.
            let (base, triggers) = self.base_triggers(&stages, index);
            for text in triggers {
                let instruction = self.plan_trigger(
                    &text,
                    &base,
                    raw.from,
                    &mut state,
                    &stages,
                    &names,
                    index,
                    &global_args,
                )?;
                deps.extend(stage_reads(&instruction, &names, stages.len()));
                steps.push(Step {
                    line: raw.from.start_line,
                    end_line: raw.from.end_line,
                    source: text,
                    instruction,
                    onbuild: true,
                });
            }
            for node in &raw.nodes {
                let instruction =
                    self.plan_instruction(node, &mut state, &stages, &names, index, &global_args)?;
                deps.extend(stage_reads(&instruction, &names, stages.len()));
                steps.push(Step {
                    line: node.start_line,
                    end_line: node.end_line,
                    source: node.original.trim().to_string(),
                    instruction,
                    onbuild: false,
                });
            }
            deps.sort_unstable();
            deps.dedup();
            stages[index].depends_on = deps;
            stages[index].env_known = state.env_known;
            stages[index].steps = steps;
            self.end_states.push(state);
        }

        // Target and the stages it needs.
        let target = match &self.opts.target {
            None => stages.len() - 1,
            Some(t) => {
                let lower = t.to_lowercase();
                stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(lower.as_str()))
                    .ok_or_else(|| PlanError::UnknownTarget {
                        file: self.df.file.clone(),
                        target: t.clone(),
                        stages: stages.iter().filter_map(|s| s.name.clone()).collect(),
                    })?
            }
        };
        let order = self.build_order(&stages, target, &raw_stages)?;
        for &i in &order {
            stages[i].needed = true;
        }
        self.check_unused_build_args(&stages, &raw_stages, &globals);
        self.apply_checks()?;
        Ok(Plan {
            file: self.df.file.clone(),
            target_platform: self.opts.target_platform.clone(),
            build_platform: self.opts.build_platform.clone(),
            global_args,
            stages,
            target,
            order,
            warnings: self.warnings,
        })
    }

    /// `ConsistentInstructionCasing`: keywords should all be upper or all
    /// lower case, following the majority.
    fn lint_casing(&mut self) {
        let nodes: Vec<&Node> = self.df.nodes.iter().collect();
        let upper = nodes
            .iter()
            .filter(|n| n.keyword == n.keyword.to_uppercase())
            .count();
        let lower = nodes
            .iter()
            .filter(|n| n.keyword == n.keyword.to_lowercase())
            .count();
        let want_upper = upper >= lower;
        for n in nodes {
            let ok = if want_upper {
                n.keyword == n.keyword.to_uppercase()
            } else {
                n.keyword == n.keyword.to_lowercase()
            };
            if !ok {
                self.lint(
                    "ConsistentInstructionCasing",
                    n.span,
                    format!(
                        "instruction '{}' should match the case of the majority ({})",
                        n.keyword,
                        if want_upper { "uppercase" } else { "lowercase" }
                    ),
                );
            }
        }
    }

    /// `MultipleInstructionsDisallowed`: only the last CMD, ENTRYPOINT or
    /// HEALTHCHECK of a stage counts.
    fn lint_stage(&mut self, nodes: &[&Node]) {
        for kw in ["cmd", "entrypoint", "healthcheck"] {
            let of_kind: Vec<&&Node> = nodes.iter().filter(|n| n.name() == kw).collect();
            if let Some((_, earlier)) = of_kind.split_last() {
                for n in earlier {
                    self.lint(
                        "MultipleInstructionsDisallowed",
                        n.span,
                        format!(
                            "multiple {} instructions in one stage: only the last one is used",
                            kw.to_uppercase()
                        ),
                    );
                }
            }
        }
    }

    fn lint_secret_name(&mut self, node: &Node, kw: &str, name: &str) {
        if lint::looks_secret(name) {
            self.lint(
                "SecretsUsedInArgOrEnv",
                node.locate(name).unwrap_or(node.span),
                format!("do not use {kw} for sensitive data ({kw} {name:?}): use RUN --mount=type=secret instead"),
            );
        }
    }

    /// Applies `# check=` (or the `BUILDKIT_DOCKERFILE_CHECK` build arg):
    /// drops skipped rules and, with `error=true`, fails on what is left.
    fn apply_checks(&mut self) -> Result<(), PlanError> {
        let (value, from_arg) = match self.opts.build_args.get("BUILDKIT_DOCKERFILE_CHECK") {
            Some(v) => (Some(v.clone()), true),
            None => (self.df.directives.check.clone(), false),
        };
        let Some(value) = value else {
            return Ok(());
        };
        let config = lint::CheckConfig::parse(&value).map_err(|e| {
            if from_arg {
                self.err(
                    Span::default(),
                    format!("build arg BUILDKIT_DOCKERFILE_CHECK: {e}"),
                )
            } else {
                let line = self
                    .df
                    .lines
                    .iter()
                    .position(|l| l.to_ascii_lowercase().contains("check"))
                    .map_or(1, |i| i + 1);
                self.err(Span::new(line, 1, 1), e)
            }
        })?;
        self.warnings
            .retain(|w| w.rule.as_deref().is_none_or(|r| config.reports(r)));
        if config.error {
            let mut rules: Vec<&str> = self
                .warnings
                .iter()
                .filter_map(|w| w.rule.as_deref())
                .collect();
            rules.sort_unstable();
            rules.dedup();
            if let Some(first) = self.warnings.iter().find(|w| w.rule.is_some()) {
                return Err(self.err(
                    first.span.unwrap_or_default(),
                    format!(
                        "lint violations found for rules: {} (check=error=true); the first: {}",
                        rules.join(", "),
                        first.message
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_directives(&mut self) {
        if let Some(syntax) = &self.df.directives.syntax {
            let image = syntax.split('@').next().unwrap_or_default();
            let name = image.split(':').next().unwrap_or_default();
            let known = matches!(
                name,
                "docker/dockerfile"
                    | "docker.io/docker/dockerfile"
                    | "docker.io/docker/dockerfile-upstream"
                    | "docker/dockerfile-upstream"
            );
            if !known {
                self.warn(
                    Some(Span::new(1, 1, 1)),
                    format!(
                        "syntax directive {syntax:?} asks for an external frontend: kiln uses its built-in Dockerfile frontend instead"
                    ),
                );
            }
        }
    }

    fn unknown_instruction(&self, node: &Node) -> PlanError {
        let upper = node.keyword.to_uppercase();
        let suggestion = KNOWN_INSTRUCTIONS
            .iter()
            .map(|k| (edit_distance(k, &upper), *k))
            .min()
            .filter(|(d, _)| *d <= 2.max(upper.len() / 3))
            .map(|(_, k)| format!(" (did you mean {k:?}?)"))
            .unwrap_or_default();
        self.err(
            node.span,
            format!(
                "unknown instruction {:?}{suggestion}: expected one of {}",
                node.keyword,
                KNOWN_INSTRUCTIONS.join(", ")
            ),
        )
    }

    /// Global ARGs: values for FROM lines, and the declarations to report.
    fn global_scope(&mut self, globals: &[&Node]) -> Result<(Scope, Vec<ArgDecl>), PlanError> {
        let mut scope = Scope::default();
        for (k, v) in self.platform_args() {
            scope.set(&k, &v);
        }
        let mut decls = Vec::new();
        for node in globals {
            Flags::parse("ARG", &node.flags, &[]).map_err(|e| self.flag_error(node, e))?;
            for arg in self.parse_arg(node, &scope, &[])? {
                if let Some(v) = &arg.value {
                    scope.set(&arg.name, v);
                }
                self.lint_secret_name(node, "ARG", &arg.name);
                decls.push(arg);
            }
        }
        Ok((scope, decls))
    }

    /// The automatic platform args (global scope; redeclare to use in a stage).
    fn platform_args(&self) -> Vec<(String, String)> {
        let t = &self.opts.target_platform;
        let b = &self.opts.build_platform;
        let mut v = vec![
            ("TARGETPLATFORM".to_string(), t.to_string()),
            ("TARGETOS".into(), t.os().to_string()),
            ("TARGETARCH".into(), t.arch().to_string()),
            ("TARGETVARIANT".into(), t.variant().to_string()),
            ("BUILDPLATFORM".into(), b.to_string()),
            ("BUILDOS".into(), b.os().to_string()),
            ("BUILDARCH".into(), b.arch().to_string()),
            ("BUILDVARIANT".into(), b.variant().to_string()),
        ];
        if let Some(t) = &self.opts.target {
            v.push(("TARGETSTAGE".into(), t.clone()));
        }
        v
    }

    fn is_predefined(&self, name: &str) -> bool {
        PROXY_ARGS.contains(&name)
            || self.platform_args().iter().any(|(k, _)| k == name)
            || name == "TARGETSTAGE"
            || name == "SOURCE_DATE_EPOCH"
            || name.starts_with("BUILDKIT_")
    }

    /// `ARG a=1 b`: names and defaults expanded, values from build args,
    /// then the inherited `globals`, then the default.
    fn parse_arg(
        &mut self,
        node: &Node,
        scope: &Scope,
        globals: &[ArgDecl],
    ) -> Result<Vec<ArgDecl>, PlanError> {
        if node.args.is_empty() {
            return Err(self.err(
                node.span,
                "ARG requires at least one argument: expected ARG <name>[=<default>]",
            ));
        }
        let mut out = Vec::new();
        for word in &node.args {
            let (name, default) = match word.split_once('=') {
                Some((n, d)) => (n, Some(d)),
                None => (word.as_str(), None),
            };
            let name = self.expand(node, name, scope)?;
            if name.is_empty() {
                return Err(self.err(node.args_span, format!("ARG name is empty in {word:?}")));
            }
            let default = match default {
                Some(d) => Some(self.expand(node, d, scope)?),
                None => None,
            };
            let value = if let Some(v) = self.opts.build_args.get(&name) {
                self.used_build_args.insert(name.clone());
                Some(v.clone())
            } else if default.is_none() {
                globals
                    .iter()
                    .find(|g| g.name == name)
                    .and_then(|g| g.value.clone())
                    .or_else(|| {
                        self.platform_args()
                            .into_iter()
                            .find(|(k, _)| *k == name)
                            .map(|(_, v)| v)
                    })
            } else {
                default.clone()
            };
            out.push(ArgDecl {
                name,
                default,
                value,
            });
        }
        Ok(out)
    }

    fn plan_from(
        &mut self,
        index: usize,
        node: &Node,
        globals: &Scope,
        earlier: &[Stage],
    ) -> Result<Stage, PlanError> {
        let flags = Flags::parse("FROM", &node.flags, &[("platform", Kind::String)])
            .map_err(|e| self.flag_error(node, e))?;
        let (image, name) = match node.args.as_slice() {
            [image] => (image, None),
            [image, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => (image, Some(name)),
            _ => {
                return Err(self.err(
                    node.args_span.or_span(node.span),
                    "FROM requires either one or three arguments: expected FROM <image> [AS <name>]",
                ));
            }
        };
        if let Some(n) = name {
            if n.chars().any(|c| c.is_uppercase()) {
                self.lint(
                    "StageNameCasing",
                    node.locate(n).unwrap_or(node.span),
                    format!("stage name {n:?} should be lowercase"),
                );
            }
            let as_kw = &node.args[1];
            let from_upper = node.keyword == node.keyword.to_uppercase();
            let from_lower = node.keyword == node.keyword.to_lowercase();
            if (from_upper && *as_kw != as_kw.to_uppercase())
                || (from_lower && *as_kw != as_kw.to_lowercase())
            {
                self.lint(
                    "FromAsCasing",
                    node.locate(as_kw).unwrap_or(node.span),
                    format!(
                        "'{as_kw}' and '{}' keywords' casing do not match",
                        node.keyword
                    ),
                );
            }
        }
        let name = match name {
            None => None,
            Some(n) => {
                let lower = n.to_lowercase();
                if !valid_stage_name(&lower) {
                    return Err(self.err(
                        node.args_span,
                        format!(
                            "invalid name for build stage: {n:?}: a name starts with a letter and has only letters, digits, '-', '_' and '.'"
                        ),
                    ));
                }
                Some(lower)
            }
        };
        let expanded = self.expand_with(node, image, globals, Undefined::InFrom)?;
        if expanded.is_empty() {
            return Err(self.err(
                node.args_span,
                format!("base name ({image}) should not be blank: expected an image reference after expansion"),
            ));
        }
        let lower = expanded.to_lowercase();
        let base = if let Some(i) = earlier
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            Base::Stage(i)
        } else if lower == "scratch" {
            Base::Scratch
        } else {
            Base::Image(expanded)
        };
        let platform = match flags.string("platform") {
            None => None,
            Some(p) => {
                if matches!(p, "$TARGETPLATFORM" | "${TARGETPLATFORM}") {
                    self.lint(
                        "RedundantTargetPlatform",
                        node.locate(p).unwrap_or(node.span),
                        "setting the platform to $TARGETPLATFORM in FROM is redundant: it is the default",
                    );
                }
                let p = self.expand_with(node, p, globals, Undefined::InFrom)?;
                Some(
                    values::parse_platform(&p)
                        .map_err(|e| self.err(node.span, format!("FROM --platform: {e}")))?,
                )
            }
        };
        Ok(Stage {
            index,
            name,
            base,
            platform,
            line: node.start_line,
            needed: false,
            depends_on: Vec::new(),
            env_known: false,
            steps: Vec::new(),
        })
    }

    fn initial_state(&self, stage: &Stage) -> StageState {
        match &stage.base {
            Base::Scratch => StageState {
                env_known: true,
                ..StageState::default()
            },
            Base::Stage(i) => self.end_states[*i].clone(),
            Base::Image(r) => match self.opts.image_env.get(r) {
                Some(env) => {
                    let mut scope = Scope::default();
                    for (k, v) in env {
                        scope.set(k, v);
                    }
                    StageState {
                        scope,
                        env_known: true,
                        ..StageState::default()
                    }
                }
                None => StageState::default(),
            },
        }
    }

    /// The ONBUILD triggers a stage starts with, and how its base is named
    /// in messages: an image's from [`PlanOptions::image_triggers`], a
    /// parent stage's own ONBUILD instructions (never the ones its base
    /// ran: triggers do not carry over a second time).
    fn base_triggers(&self, stages: &[Stage], index: usize) -> (String, Vec<String>) {
        match &stages[index].base {
            Base::Scratch => (String::new(), Vec::new()),
            Base::Image(r) => (
                format!("base image {r}"),
                self.opts.image_triggers.get(r).cloned().unwrap_or_default(),
            ),
            Base::Stage(b) => (
                format!("stage {}", stages[*b].label()),
                stages[*b]
                    .steps
                    .iter()
                    .filter(|s| !s.onbuild)
                    .filter_map(|s| match &s.instruction {
                        Instruction::Onbuild { trigger } => Some(trigger.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
        }
    }

    /// Parses one trigger text as a Dockerfile line and plans it in the
    /// stage's current scope. Errors name the base and the trigger (the
    /// trigger has no line of its own); warnings point at the FROM line.
    #[allow(
        clippy::too_many_arguments,
        reason = "the same pieces plan_instruction takes, plus the trigger's origin"
    )]
    fn plan_trigger(
        &mut self,
        text: &str,
        base: &str,
        from: &Node,
        state: &mut StageState,
        stages: &[Stage],
        names: &[Option<String>],
        current: usize,
        globals: &[ArgDecl],
    ) -> Result<Instruction, PlanError> {
        let fail = |reason: String| PlanError::Trigger {
            stage: stages[current].label(),
            base: base.to_string(),
            trigger: text.to_string(),
            reason,
        };
        let parsed = crate::dockerfile::parse(text.as_bytes(), "ONBUILD trigger")
            .map_err(|e| fail(e.message))?;
        let [node] = parsed.nodes.as_slice() else {
            return Err(fail(format!(
                "a trigger must be exactly one instruction, found {}",
                parsed.nodes.len()
            )));
        };
        let upper = node.keyword.to_uppercase();
        match upper.as_str() {
            "ONBUILD" => {
                return Err(fail(
                    "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string(),
                ));
            }
            "FROM" | "MAINTAINER" => {
                return Err(fail(format!("{upper} isn't allowed as an ONBUILD trigger")));
            }
            k if !KNOWN_INSTRUCTIONS.contains(&k) => {
                return Err(match self.unknown_instruction(node) {
                    PlanError::Dockerfile(e) => fail(e.message),
                    other => other,
                });
            }
            _ => {}
        }
        let first_warning = self.warnings.len();
        let planned = self
            .plan_instruction(node, state, stages, names, current, globals)
            .map_err(|e| match e {
                PlanError::Dockerfile(e) => fail(e.message),
                other => other,
            });
        for w in &mut self.warnings[first_warning..] {
            w.span = Some(from.span);
            w.message = format!("ONBUILD trigger {text:?} of {base}: {}", w.message);
        }
        planned
    }

    fn flag_error(&self, node: &Node, e: FlagError) -> PlanError {
        // Point at the flag itself: find its text in the logical line.
        let flag = node.flags.get(e.index).map(String::as_str).unwrap_or("");
        let name = flag.split('=').next().unwrap_or(flag);
        let span = locate(node, name).unwrap_or(node.span);
        self.err(span, e.message)
    }

    /// Expands one word in single-word mode, reporting nothing.
    fn expand(&mut self, node: &Node, word: &str, scope: &Scope) -> Result<String, PlanError> {
        self.expand_with(node, word, scope, Undefined::Ignore)
    }

    fn expand_with(
        &mut self,
        node: &Node,
        word: &str,
        scope: &Scope,
        undefined: Undefined<'_>,
    ) -> Result<String, PlanError> {
        // Where the base image's ENV is unknown (a dry run), variables that
        // might come from it are left as written instead of guessed empty.
        let lexer = self
            .lexer
            .skip_unset_env(matches!(undefined, Undefined::KeepUnknown));
        let x = lexer.process_word_with_matches(word, scope).map_err(|e| {
            self.err(
                locate(node, word).unwrap_or(node.args_span.or_span(node.span)),
                format!("cannot expand {word:?}: {e}"),
            )
        })?;
        let span = locate(node, word).unwrap_or(node.span);
        for name in &x.unmatched {
            if self.is_predefined(name) {
                continue;
            }
            match undefined {
                Undefined::InFrom if !self.global_declared(name) => self.lint(
                    "UndefinedArgInFrom",
                    span,
                    format!("FROM argument ${name} is not declared: declare it with ARG before the first FROM"),
                ),
                Undefined::InStage(declared) if !declared.contains(name) => self.lint(
                    "UndefinedVar",
                    span,
                    format!("usage of undefined variable ${name}: it expands to an empty string"),
                ),
                _ => {}
            }
        }
        Ok(x.result)
    }

    /// Expands in a stage: undefined variables are reported when the
    /// stage's whole environment is known, and kept as written otherwise.
    fn expand_in(
        &mut self,
        node: &Node,
        word: &str,
        state: &StageState,
    ) -> Result<String, PlanError> {
        let mode = if state.env_known {
            Undefined::InStage(&state.declared)
        } else {
            Undefined::KeepUnknown
        };
        self.expand_with(node, word, &state.scope, mode)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; the pieces are independent"
    )]
    fn plan_instruction(
        &mut self,
        node: &Node,
        state: &mut StageState,
        stages: &[Stage],
        names: &[Option<String>],
        current: usize,
        globals: &[ArgDecl],
    ) -> Result<Instruction, PlanError> {
        let name = node.name();
        let kw = name.to_uppercase();
        let no_flags =
            |this: &Self| Flags::parse(&kw, &node.flags, &[]).map_err(|e| this.flag_error(node, e));
        let need_args = |this: &Self, what: &str| -> Result<(), PlanError> {
            if node.args.is_empty()
                || (node.args.len() == 1 && node.args[0].is_empty() && !node.json)
            {
                Err(this.err(
                    node.args_span.or_span(node.span),
                    format!("{kw} requires {what}"),
                ))
            } else {
                Ok(())
            }
        };
        Ok(match name.as_str() {
            "from" => unreachable!("FROM starts a stage"),
            "arg" => {
                no_flags(self)?;
                let args = self.parse_arg(node, &state.scope, globals)?;
                for a in &args {
                    if let Some(v) = &a.value {
                        state.scope.set(&a.name, v);
                    }
                    state.declared.insert(a.name.clone());
                    self.lint_secret_name(node, "ARG", &a.name);
                }
                Instruction::Arg { args }
            }
            "env" | "label" => {
                no_flags(self)?;
                need_args(self, "at least one argument: expected <key>=<value>")?;
                let mut pairs = Vec::new();
                for triple in node.args.chunks(3) {
                    let key = self.expand_in(node, &triple[0], state)?;
                    let value = self.expand_in(node, &triple[1], state)?;
                    if key.is_empty() {
                        return Err(self.err(node.args_span, format!("{kw} names an empty key")));
                    }
                    pairs.push((key, value));
                }
                if node.args.get(2).is_some_and(String::is_empty) {
                    self.lint(
                        "LegacyKeyValueFormat",
                        node.span,
                        format!("\"{kw} key=value\" should be used instead of the legacy \"{kw} key value\" form"),
                    );
                }
                if name == "env" {
                    for (k, v) in &pairs {
                        state.scope.set(k, v);
                        state.declared.insert(k.clone());
                        self.lint_secret_name(node, "ENV", k);
                    }
                    Instruction::Env { pairs }
                } else {
                    Instruction::Label { pairs }
                }
            }
            "run" => self.plan_run(node, state, stages.len())?,
            "copy" | "add" => self.plan_copy(node, state, names, stages.len(), current)?,
            "cmd" | "entrypoint" => {
                no_flags(self)?;
                if !node.json {
                    self.lint(
                        "JSONArgsRecommended",
                        node.span,
                        format!("JSON arguments recommended for {kw} to prevent unintended behavior related to OS signals: {kw} [\"executable\", \"arg\"]"),
                    );
                }
                let command = command_of(node);
                if name == "cmd" {
                    Instruction::Cmd { command }
                } else {
                    Instruction::Entrypoint { command }
                }
            }
            "shell" => {
                no_flags(self)?;
                if !node.json {
                    return Err(self.err(
                        node.args_span.or_span(node.span),
                        "SHELL requires the arguments to be in JSON form: expected SHELL [\"executable\", \"parameters\"]",
                    ));
                }
                if node.args.is_empty() {
                    return Err(self.err(
                        node.args_span.or_span(node.span),
                        "SHELL requires at least one argument",
                    ));
                }
                Instruction::Shell {
                    shell: node.args.clone(),
                }
            }
            "expose" => {
                no_flags(self)?;
                need_args(
                    self,
                    "at least one argument: expected EXPOSE <port>[/<protocol>]",
                )?;
                let mut ports = Vec::new();
                for p in &node.args {
                    let p = self.expand_in(node, p, state)?;
                    let parsed = values::parse_expose(&p).map_err(|e| {
                        self.err(locate(node, &p).unwrap_or(node.args_span), e.to_string())
                    })?;
                    for w in parsed.warnings {
                        self.lint(w.rule(), node.args_span.or_span(node.span), w.to_string());
                    }
                    for port in parsed.ports {
                        if !ports.contains(&port) {
                            ports.push(port);
                        }
                    }
                }
                Instruction::Expose { ports }
            }
            "user" | "workdir" | "stopsignal" | "maintainer" => {
                no_flags(self)?;
                need_args(self, "exactly one argument")?;
                let raw = &node.args[0];
                match name.as_str() {
                    "user" => Instruction::User {
                        user: self.expand_in(node, raw, state)?,
                    },
                    "workdir" => {
                        let path = self.expand_in(node, raw, state)?;
                        if !path.starts_with('/') && !state.absolute_workdir {
                            self.lint(
                                "WorkdirRelativePath",
                                node.args_span.or_span(node.span),
                                format!("relative WORKDIR {path:?} depends on the base image's working directory: use an absolute path"),
                            );
                        }
                        state.absolute_workdir |= path.starts_with('/');
                        if path.is_empty() {
                            return Err(
                                self.err(node.args_span, "WORKDIR path is empty after expansion")
                            );
                        }
                        Instruction::Workdir { path }
                    }
                    "stopsignal" => {
                        let s = self.expand_in(node, raw, state)?;
                        let signal = values::parse_signal(&s)
                            .map_err(|e| self.err(node.args_span, e.to_string()))?;
                        Instruction::Stopsignal { signal }
                    }
                    _ => {
                        self.lint(
                            "MaintainerDeprecated",
                            node.span,
                            "MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors=<name> instead",
                        );
                        Instruction::Maintainer { name: raw.clone() }
                    }
                }
            }
            "volume" => {
                no_flags(self)?;
                need_args(self, "at least one argument: expected VOLUME <path>…")?;
                let mut paths = Vec::new();
                for p in &node.args {
                    let p = self.expand_in(node, p, state)?;
                    if p.is_empty() {
                        return Err(self.err(
                            node.args_span,
                            "VOLUME specified can not be an empty string",
                        ));
                    }
                    paths.push(p);
                }
                Instruction::Volume { paths }
            }
            "healthcheck" => self.plan_healthcheck(node)?,
            "onbuild" => {
                no_flags(self)?;
                let Some(inner) = &node.inner else {
                    return Err(self.err(
                        node.span,
                        "ONBUILD requires at least one argument: expected ONBUILD <instruction>",
                    ));
                };
                match inner.name().as_str() {
                    "onbuild" => {
                        return Err(self.err(
                            inner.span,
                            "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                        ));
                    }
                    "from" | "maintainer" => {
                        return Err(self.err(
                            inner.span,
                            format!(
                                "{} isn't allowed as an ONBUILD trigger",
                                inner.keyword.to_uppercase()
                            ),
                        ));
                    }
                    n if !KNOWN_INSTRUCTIONS.contains(&n.to_uppercase().as_str()) => {
                        let e = self.unknown_instruction(inner);
                        self.warn(
                            Some(inner.span),
                            format!("ONBUILD trigger will fail when it runs: {e}"),
                        );
                    }
                    _ => {}
                }
                // As BuildKit stores it: the line, then each heredoc's body
                // and terminator.
                let mut trigger = inner.original.trim().to_string();
                for doc in &node.heredocs {
                    trigger.push('\n');
                    trigger.push_str(&doc.content);
                    trigger.push_str(&doc.name);
                }
                Instruction::Onbuild { trigger }
            }
            _ => unreachable!("unknown instructions are rejected before planning"),
        })
    }

    fn plan_run(
        &mut self,
        node: &Node,
        state: &StageState,
        stage_count: usize,
    ) -> Result<Instruction, PlanError> {
        let flags = Flags::parse(
            "RUN",
            &node.flags,
            &[
                ("mount", Kind::List),
                ("network", Kind::String),
                ("security", Kind::String),
            ],
        )
        .map_err(|e| self.flag_error(node, e))?;
        if node.args.is_empty() {
            return Err(self.err(
                node.span,
                "RUN requires at least one argument: expected RUN <command>",
            ));
        }
        let mut mounts = Vec::new();
        for m in flags.list("mount") {
            let span = locate(node, m).unwrap_or(node.span);
            let mut expand_error = None;
            let mut expand = |w: &str| -> Result<String, String> {
                match self.lexer.process_word(w, &state.scope) {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        expand_error = Some(e.to_string());
                        Err(e.to_string())
                    }
                }
            };
            let mount = values::parse_mount(m, &mut expand).map_err(|e| {
                let msg = expand_error.clone().unwrap_or_else(|| e.to_string());
                self.err(span, format!("RUN --mount: {msg}"))
            })?;
            if let Some(from) = &mount.from
                && let Ok(i) = from.parse::<usize>()
                && i >= stage_count
            {
                return Err(self.err(span, format!("RUN --mount from={i}: invalid stage index {i}: the Dockerfile has {stage_count} stages")));
            }
            mounts.push(mount);
        }
        let network = match flags.string("network") {
            None => Network::Default,
            Some(v) => values::parse_network(v).map_err(|e| {
                self.err(
                    locate(node, "--network").unwrap_or(node.span),
                    e.to_string(),
                )
            })?,
        };
        let security = match flags.string("security") {
            None => Security::Sandbox,
            Some(v) => values::parse_security(v).map_err(|e| {
                self.err(
                    locate(node, "--security").unwrap_or(node.span),
                    e.to_string(),
                )
            })?,
        };
        let heredocs = node
            .heredocs
            .iter()
            .map(|h| HeredocBody {
                name: h.name.clone(),
                fd: h.fd,
                content: h.body(),
                expand: h.expand,
            })
            .collect();
        Ok(Instruction::Run(Run {
            command: command_of(node),
            heredocs,
            mounts,
            network,
            security,
        }))
    }

    fn plan_copy(
        &mut self,
        node: &Node,
        state: &StageState,
        names: &[Option<String>],
        stage_count: usize,
        current: usize,
    ) -> Result<Instruction, PlanError> {
        let add = node.name() == "add";
        let kw = if add { "ADD" } else { "COPY" };
        let declared: &[(&'static str, Kind)] = if add {
            &[
                ("chown", Kind::String),
                ("chmod", Kind::String),
                ("link", Kind::Bool),
                ("exclude", Kind::List),
                ("checksum", Kind::String),
                ("keep-git-dir", Kind::Bool),
                ("unpack", Kind::Bool),
            ]
        } else {
            &[
                ("from", Kind::String),
                ("chown", Kind::String),
                ("chmod", Kind::String),
                ("link", Kind::Bool),
                ("parents", Kind::Bool),
                ("exclude", Kind::List),
            ]
        };
        let flags =
            Flags::parse(kw, &node.flags, declared).map_err(|e| self.flag_error(node, e))?;
        if node.args.len() < 2 {
            return Err(self.err(
                node.args_span.or_span(node.span),
                format!(
                    "{kw} requires at least two arguments, but only {} provided: expected {kw} <source>… <destination>",
                    if node.args.is_empty() { "none was".to_string() } else { "one was".to_string() }
                ),
            ));
        }
        let (srcs, dest) = node.args.split_at(node.args.len() - 1);
        let dest_raw = &dest[0];
        if !node.json && heredoc_name(dest_raw).is_some() {
            return Err(self.err(
                locate(node, dest_raw).unwrap_or(node.args_span),
                format!("{kw} cannot accept a heredoc as a destination"),
            ));
        }
        let dest = self.expand_in(node, dest_raw, state)?;
        let mut sources = Vec::new();
        let mut heredocs = Vec::new();
        for src in srcs {
            if !node.json
                && let Some(hname) = heredoc_name(src)
            {
                let doc = node.heredocs.iter().find(|h| h.name == hname);
                let (raw, expand_it) = match doc {
                    Some(h) => (h.body(), h.expand),
                    None => (String::new(), false),
                };
                let content = if expand_it {
                    let lx = Lexer::new('\\').skip_process_quotes(true);
                    lx.process_word(&raw, &state.scope).map_err(|e| {
                        self.err(
                            node.args_span,
                            format!("cannot expand heredoc {hname:?}: {e}"),
                        )
                    })?
                } else {
                    raw
                };
                heredocs.push(HeredocBody {
                    name: hname,
                    fd: doc.map_or(0, |h| h.fd),
                    content,
                    expand: expand_it,
                });
                sources.push(Source::Heredoc(heredocs.len() - 1));
                continue;
            }
            let s = self.expand_in(node, src, state)?;
            let span = locate(node, src).unwrap_or(node.args_span);
            if is_url(&s) || is_git(&s) {
                if !add {
                    return Err(self.err(
                        span,
                        format!("COPY cannot read a URL or Git source ({s}): use ADD instead"),
                    ));
                }
                sources.push(if is_git(&s) {
                    Source::Git(s)
                } else {
                    Source::Url(s)
                });
            } else {
                sources.push(Source::Path(s));
            }
        }
        if sources.len() > 1 && !dest.ends_with('/') && !dest.is_empty() {
            // BuildKit checks this when copying, against the real destination;
            // a non-wildcard multi-source COPY can be caught now.
            let wild = sources
                .iter()
                .any(|s| matches!(s, Source::Path(p) if crate::dockerfile::glob::has_meta(p)));
            if !wild {
                return Err(self.err(
                    locate(node, dest_raw).unwrap_or(node.args_span),
                    format!("when using {kw} with more than one source file, the destination must be a directory and end with a /"),
                ));
            }
        }
        let from = match flags.string("from") {
            None => None,
            Some(f) => {
                let span = locate(node, "--from").unwrap_or(node.span);
                if f.contains('$') {
                    return Err(self.err(
                        span,
                        format!("COPY --from={f:?} may not use variables: define a stage with FROM instead"),
                    ));
                }
                if let Ok(i) = f.parse::<usize>() {
                    if i >= stage_count {
                        return Err(self.err(span, format!("COPY --from={i}: invalid stage index {i}: the Dockerfile has {stage_count} stages")));
                    }
                    if i == current {
                        return Err(self.err(
                            span,
                            format!(
                                "COPY --from={i} names the stage it is in: circular dependency"
                            ),
                        ));
                    }
                    Some(CopyFrom::Stage(i))
                } else if let Some(i) = resolve_stage_ref(f, names, stage_count) {
                    if i == current {
                        return Err(self.err(
                            span,
                            format!(
                                "COPY --from={f} names the stage it is in: circular dependency"
                            ),
                        ));
                    }
                    Some(CopyFrom::Stage(i))
                } else {
                    Some(CopyFrom::Image(f.to_string()))
                }
            }
        };
        let chown = self.typed_flag(node, state, &flags, "chown", values::parse_chown)?;
        let chmod = self.typed_flag(node, state, &flags, "chmod", values::parse_chmod)?;
        let checksum = match flags.string("checksum") {
            None => None,
            Some(c) => {
                let span = locate(node, "--checksum").unwrap_or(node.span);
                let c = self.expand_in(node, c, state)?;
                if sources.len() != 1 {
                    return Err(self.err(span, "ADD --checksum takes exactly one source"));
                }
                match &sources[0] {
                    Source::Url(_) => {
                        if !valid_digest(&c) {
                            return Err(self.err(span, format!("ADD --checksum={c:?}: expected <algorithm>:<hex>, e.g. sha256:…")));
                        }
                    }
                    Source::Git(_) => {}
                    _ => {
                        return Err(
                            self.err(span, "ADD --checksum applies to URL and Git sources only")
                        );
                    }
                }
                Some(c)
            }
        };
        let mut exclude = Vec::new();
        for e in flags.list("exclude") {
            let e = self.expand_in(node, e, state)?;
            crate::dockerfile::glob::validate(&e).map_err(|err| {
                self.err(
                    locate(node, "--exclude").unwrap_or(node.span),
                    format!("--exclude: {err}"),
                )
            })?;
            exclude.push(e);
        }
        Ok(Instruction::Copy(Copy {
            add,
            sources,
            dest,
            from,
            chown,
            chmod,
            link: flags.bool("link").unwrap_or(false),
            parents: flags.bool("parents").unwrap_or(false),
            exclude,
            checksum,
            keep_git_dir: flags.bool("keep-git-dir").unwrap_or(false),
            unpack: flags.bool("unpack"),
            heredocs,
        }))
    }

    /// A string flag's value, expanded in the stage and parsed; errors
    /// point at the flag.
    fn typed_flag<T>(
        &mut self,
        node: &Node,
        state: &StageState,
        flags: &Flags,
        name: &str,
        parse: impl Fn(&str) -> Result<T, values::ValueError>,
    ) -> Result<Option<T>, PlanError> {
        let Some(raw) = flags.string(name) else {
            return Ok(None);
        };
        let value = self.expand_in(node, raw, state)?;
        parse(&value).map(Some).map_err(|e| {
            let span = locate(node, &format!("--{name}")).unwrap_or(node.span);
            self.err(span, e.to_string())
        })
    }

    fn plan_healthcheck(&mut self, node: &Node) -> Result<Instruction, PlanError> {
        let flags = Flags::parse(
            "HEALTHCHECK",
            &node.flags,
            &[
                ("interval", Kind::String),
                ("timeout", Kind::String),
                ("start-period", Kind::String),
                ("start-interval", Kind::String),
                ("retries", Kind::String),
            ],
        )
        .map_err(|e| self.flag_error(node, e))?;
        let Some(typ) = node.args.first() else {
            return Err(self.err(node.span, "HEALTHCHECK requires an argument: expected HEALTHCHECK NONE or HEALTHCHECK [options] CMD <command>"));
        };
        if typ.eq_ignore_ascii_case("none") {
            if node.args.len() > 1 {
                return Err(self.err(node.args_span, "HEALTHCHECK NONE takes no arguments"));
            }
            if !node.flags.is_empty() {
                return Err(self.err(node.span, "HEALTHCHECK NONE takes no options"));
            }
            return Ok(Instruction::Healthcheck(Healthcheck::None));
        }
        if !typ.eq_ignore_ascii_case("cmd") {
            return Err(self.err(
                node.args_span,
                format!("unknown type {typ:?} in HEALTHCHECK: expected CMD or NONE"),
            ));
        }
        if node.args.len() < 2 {
            return Err(self.err(node.args_span, "HEALTHCHECK CMD requires a command"));
        }
        let command = if node.json {
            Command::Exec(node.args[1..].to_vec())
        } else {
            Command::Shell(node.args[1].clone())
        };
        let options = values::HealthcheckOptions::parse(&values::HealthcheckFlags {
            interval: flags.string("interval"),
            timeout: flags.string("timeout"),
            start_period: flags.string("start-period"),
            start_interval: flags.string("start-interval"),
            retries: flags.string("retries"),
        })
        .map_err(|e| self.err(node.span, format!("HEALTHCHECK: {e}")))?;
        Ok(Instruction::Healthcheck(Healthcheck::Cmd {
            command,
            options,
        }))
    }

    /// The needed stages from `target`, dependencies first; errors on cycles.
    fn build_order(
        &self,
        stages: &[Stage],
        target: usize,
        raw: &[RawStage<'_>],
    ) -> Result<Vec<usize>, PlanError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            None,
            Active,
            Done,
        }
        fn visit(
            i: usize,
            stages: &[Stage],
            marks: &mut [Mark],
            order: &mut Vec<usize>,
            path: &mut Vec<usize>,
        ) -> Result<(), Vec<usize>> {
            match marks[i] {
                Mark::Done => return Ok(()),
                Mark::Active => {
                    let start = path.iter().position(|&p| p == i).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(i);
                    return Err(cycle);
                }
                Mark::None => {}
            }
            marks[i] = Mark::Active;
            path.push(i);
            for &d in &stages[i].depends_on {
                visit(d, stages, marks, order, path)?;
            }
            path.pop();
            marks[i] = Mark::Done;
            order.push(i);
            Ok(())
        }
        let cycle_error = |cycle: Vec<usize>| {
            let names: Vec<String> = cycle.iter().map(|&i| stages[i].label()).collect();
            self.err(
                raw[cycle[0]].from.span,
                format!("circular dependency between stages: {}", names.join(" -> ")),
            )
        };
        // Like BuildKit, a cycle is an error even among stages the target
        // does not need.
        let mut marks = vec![Mark::None; stages.len()];
        for i in 0..stages.len() {
            visit(i, stages, &mut marks, &mut Vec::new(), &mut Vec::new()).map_err(cycle_error)?;
        }
        let mut marks = vec![Mark::None; stages.len()];
        let mut order = Vec::new();
        visit(target, stages, &mut marks, &mut order, &mut Vec::new()).map_err(cycle_error)?;
        Ok(order)
    }

    fn check_unused_build_args(
        &mut self,
        stages: &[Stage],
        raw: &[RawStage<'_>],
        globals: &[&Node],
    ) {
        // Declarations in unneeded stages do not consume a build arg.
        let mut declared: BTreeSet<String> = BTreeSet::new();
        let _ = (raw, globals);
        for s in stages.iter().filter(|s| s.needed) {
            for step in &s.steps {
                if let Instruction::Arg { args } = &step.instruction {
                    declared.extend(args.iter().map(|a| a.name.clone()));
                }
            }
        }
        let unused: Vec<String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !declared.contains(*k) && !self.is_predefined(k))
            .filter(|k| !self.global_declared(k))
            .cloned()
            .collect();
        if !unused.is_empty() {
            self.warn(
                None,
                format!(
                    "build args not consumed by any ARG of the stages built: {}",
                    unused.join(", ")
                ),
            );
        }
    }

    fn global_declared(&self, name: &str) -> bool {
        self.df
            .nodes
            .iter()
            .take_while(|n| n.name() != "from")
            .any(|n| n.args.iter().any(|a| a.split('=').next() == Some(name)))
    }
}

/// The stages an instruction reads: `COPY --from=<stage>` and
/// `RUN --mount=from=<stage>`.
fn stage_reads(instruction: &Instruction, names: &[Option<String>], count: usize) -> Vec<usize> {
    match instruction {
        Instruction::Copy(Copy {
            from: Some(CopyFrom::Stage(s)),
            ..
        }) => vec![*s],
        Instruction::Run(run) => run
            .mounts
            .iter()
            .filter_map(|m| m.from.as_deref())
            .filter_map(|from| resolve_stage_ref(from, names, count))
            .collect(),
        _ => Vec::new(),
    }
}

fn command_of(node: &Node) -> Command {
    if node.json {
        Command::Exec(node.args.clone())
    } else {
        Command::Shell(node.args.first().cloned().unwrap_or_default())
    }
}

fn resolve_stage_ref(name: &str, names: &[Option<String>], count: usize) -> Option<usize> {
    if let Ok(i) = name.parse::<usize>() {
        return (i < count).then_some(i);
    }
    let lower = name.to_lowercase();
    names
        .iter()
        .position(|n| n.as_deref() == Some(lower.as_str()))
}

/// `<<NAME`, `<<-NAME`, `<<"NAME"` as a COPY/ADD source word.
fn heredoc_name(word: &str) -> Option<String> {
    let rest = word.strip_prefix("<<")?;
    let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let name: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
    Some(name.replace('\\', ""))
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn is_git(s: &str) -> bool {
    if s.starts_with("git@") || s.starts_with("git://") || s.starts_with("ssh://") {
        return true;
    }
    if is_url(s) {
        let path = s.split(['#', '?']).next().unwrap_or(s);
        return path.ends_with(".git");
    }
    false
}

fn valid_digest(s: &str) -> bool {
    match s.split_once(':') {
        Some((alg, hex)) => {
            !alg.is_empty()
                && alg
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && !hex.is_empty()
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn locate(node: &Node, needle: &str) -> Option<Span> {
    node.locate(needle)
}

trait SpanOr {
    fn or_span(self, other: Span) -> Span;
}

impl SpanOr for Span {
    fn or_span(self, other: Span) -> Span {
        if self.len == 0 { other } else { self }
    }
}

/// Edit distance counting a swap of neighbours as one edit (optimal
/// string alignment), for "did you mean": `RNU` is one edit from `RUN`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests;

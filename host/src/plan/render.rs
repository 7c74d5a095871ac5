//! The human-readable form of a [`Plan`], as `kiln build --dry-run` shows it.

use super::{Base, Plan};
use std::fmt::Write as _;

impl Plan {
    /// The plan as text: target and order, then every stage with its
    /// expanded instructions and their source lines, then warnings.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let target = &self.stages[self.target];
        let _ = writeln!(out, "plan for {}", self.file);
        let _ = writeln!(
            out,
            "  platform: {} (building on {})",
            self.target_platform, self.build_platform
        );
        let _ = writeln!(out, "  target:   stage {}", self.stage_title(target.index));
        let order: Vec<String> = self.order.iter().map(|&i| self.stage_title(i)).collect();
        let _ = writeln!(out, "  order:    {}", order.join(" -> "));
        if self.stages.iter().any(|s| s.needed && !s.env_known) {
            let _ = writeln!(
                out,
                "  note:     base image ENV is not read in a dry run; variables it may set are shown as written"
            );
        }
        if !self.global_args.is_empty() {
            let args: Vec<String> = self
                .global_args
                .iter()
                .map(|a| match &a.value {
                    Some(v) => format!("{}={v}", a.name),
                    None => format!("{} (unset)", a.name),
                })
                .collect();
            let _ = writeln!(out, "  global args: {}", args.join(", "));
        }
        let width = self
            .stages
            .iter()
            .flat_map(|s| s.steps.iter().map(|st| st.line))
            .chain(self.stages.iter().map(|s| s.line))
            .max()
            .unwrap_or(1)
            .to_string()
            .len();
        for stage in &self.stages {
            let base = match &stage.base {
                Base::Scratch => "scratch".to_string(),
                Base::Image(r) => r.clone(),
                Base::Stage(i) => format!("stage {}", self.stage_title(*i)),
            };
            let platform = stage
                .platform
                .as_ref()
                .map(|p| format!(" --platform={p}"))
                .unwrap_or_default();
            let needed = if stage.needed {
                "needed"
            } else {
                "skipped: the target does not need it"
            };
            let _ = writeln!(
                out,
                "\nstage {} ({needed})\n  {:>width$}  FROM{platform} {base}",
                self.stage_title(stage.index),
                stage.line,
            );
            let name_of = |i: usize| self.stages[i].name.clone().unwrap_or_else(|| i.to_string());
            for step in &stage.steps {
                let text = step.instruction.display_with(&name_of);
                let mut lines = text.lines();
                let first = lines.next().unwrap_or_default();
                let trigger = if step.onbuild {
                    "(base's ONBUILD) "
                } else {
                    ""
                };
                let _ = writeln!(out, "  {:>width$}  {trigger}{first}", step.line);
                for more in lines {
                    let _ = writeln!(out, "  {:>width$}  {more}", "");
                }
                let docs = step.instruction.heredocs();
                for doc in docs {
                    if docs.len() > 1 {
                        let _ = writeln!(out, "  {:>width$}  <<{}", "", doc.name);
                    }
                    for line in doc.content.lines() {
                        let _ = writeln!(out, "  {:>width$}  | {line}", "");
                    }
                }
            }
        }
        out
    }

    /// `0 "build"` or `1`.
    fn stage_title(&self, index: usize) -> String {
        match &self.stages[index].name {
            Some(n) => format!("{index} {n:?}"),
            None => index.to_string(),
        }
    }
}

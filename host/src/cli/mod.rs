//! Command-line interface: clap flags with Kaniko's spellings, exit codes.
//!
//! This module turns flags into the options the library takes and reports
//! results; it holds no logic worth testing on its own. It is the only
//! place that prints and the only user of `anyhow`-style reporting.

mod args;

use anyhow::Context as _;
use args::{BuildArgs, Command, ContextSource, Exit, LogFormat, LogLevel, OutputFormat};
use kiln::build::{InputError, load_inputs};
use kiln::dockerfile::{self, ParseError};
use kiln::plan::{self, PlanError, PlanOptions, values};
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Runs the command line and returns the process exit code.
pub(crate) fn main() -> ExitCode {
    let cli = args::parse_cli();
    match cli.command {
        Command::Version => {
            let _ = writeln!(std::io::stdout(), "kiln {}", env!("CARGO_PKG_VERSION"));
            Exit::Success.into()
        }
        Command::Build(build) => {
            init_logging(build.verbosity, build.log_format, build.log_timestamp);
            match run_build(&build) {
                Ok(()) => Exit::Success.into(),
                // A closed pipe (`kiln … | head`) is the reader's choice.
                Err(failure) if failure.broken_pipe => Exit::Success.into(),
                Err(failure) => {
                    let _ = writeln!(std::io::stderr(), "{}", failure.message);
                    failure.exit.into()
                }
            }
        }
    }
}

/// A failed command: what to tell the user and which exit code to use.
struct Failure {
    exit: Exit,
    message: String,
    broken_pipe: bool,
}

impl Failure {
    fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            broken_pipe: false,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        let broken_pipe = e.chain().any(|c| {
            let kind = c
                .downcast_ref::<std::io::Error>()
                .map(std::io::Error::kind)
                .or_else(|| {
                    c.downcast_ref::<serde_json::Error>()
                        .and_then(|j| j.io_error_kind())
                });
            kind == Some(std::io::ErrorKind::BrokenPipe)
        });
        Failure {
            broken_pipe,
            ..Failure::new(Exit::Failure, format!("error: {e:#}"))
        }
    }
}

fn init_logging(level: LogLevel, format: LogFormat, timestamps: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("KILN_LOG").unwrap_or_else(|_| EnvFilter::new(level.as_filter()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(format == LogFormat::Color)
        .with_target(false);
    let result = match (format, timestamps) {
        (LogFormat::Json, _) => builder.json().try_init(),
        (_, true) => builder.try_init(),
        (_, false) => builder.without_time().try_init(),
    };
    // A second initialisation (tests) is harmless.
    let _ = result;
}

fn run_build(build: &BuildArgs) -> Result<(), Failure> {
    let unsupported = build.not_yet_supported();
    if !unsupported.is_empty() {
        let mut lines = Vec::new();
        for flag in &unsupported {
            lines.push(match *flag {
                "--context" => format!(
                    "error: --context {:?} is not supported yet: kiln reads local directory contexts only (scheme {})",
                    build.context,
                    build.unsupported_context_scheme().unwrap_or("unknown")
                ),
                "--dockerfile" => format!(
                    "error: --dockerfile {:?} is not supported yet: kiln reads a local Dockerfile only",
                    build.dockerfile
                ),
                other => format!("error: {other} is not supported yet"),
            });
        }
        return Err(Failure::new(Exit::NotSupported, lines.join("\n")));
    }
    let context = match ContextSource::parse(&build.context) {
        ContextSource::LocalDir(dir) => dir.to_string(),
        _ => unreachable!("non-local contexts are reported as not supported above"),
    };
    let inputs = load_inputs(Path::new(&context), &build.dockerfile).map_err(|e| match e {
        InputError::DockerfileNotFound { .. } | InputError::ContextMissing { .. } => {
            Failure::new(Exit::Dockerfile, format!("error: {e}"))
        }
        other => Failure::from(anyhow::Error::new(other)),
    })?;
    let file_name = display_path(&inputs.dockerfile_path);
    let df = dockerfile::parse(&inputs.dockerfile, &file_name).map_err(dockerfile_failure)?;

    let mut options = PlanOptions::new();
    if let Some(p) = &build.custom_platform {
        options.target_platform = values::parse_platform(p).map_err(|e| {
            Failure::new(Exit::Usage, format!("error: --custom-platform {p:?}: {e}"))
        })?;
    }
    for arg in &build.build_arg {
        if let Some(v) = arg.resolve(|k| std::env::var(k).ok()) {
            options.build_args.insert(arg.key.clone(), v);
        }
    }
    options.target = build.target.clone();
    let plan = plan::plan(&df, &options).map_err(|e| match e {
        PlanError::Dockerfile(e) => dockerfile_failure(e),
        other => Failure::new(Exit::Dockerfile, format!("error: {other}")),
    })?;

    let mut stderr = std::io::stderr();
    for w in &plan.warnings {
        let at = match w.span {
            Some(s) => format!("{}:{}:{}: ", plan.file, s.line, s.col),
            None => String::new(),
        };
        let rule = w
            .rule
            .as_deref()
            .map(|r| format!("{r}: "))
            .unwrap_or_default();
        let _ = writeln!(stderr, "{at}warning: {rule}{}", w.message);
    }

    if !build.dry_run {
        return Err(Failure::new(
            Exit::NotSupported,
            "error: building images is not supported yet: use --dry-run to print the plan",
        ));
    }
    let mut stdout = std::io::stdout().lock();
    match build.format {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "plan": plan,
                "dockerfile": display_path(&inputs.dockerfile_path),
                "context": display_path(&inputs.context),
                "ignore_file": inputs.ignore_file.as_deref().map(display_path),
                "ignore_patterns": inputs.ignore.patterns().collect::<Vec<_>>(),
            });
            serde_json::to_writer_pretty(&mut stdout, &doc).context("writing the plan")?;
            writeln!(stdout).context("writing the plan")?;
        }
        OutputFormat::Text => {
            let mut text = plan.to_text();
            if let Some(f) = &inputs.ignore_file {
                let n = inputs.ignore.patterns().count();
                text = text.replacen(
                    "\n  target:",
                    &format!(
                        "\n  ignore:   {} ({n} patterns)\n  target:",
                        display_path(f)
                    ),
                    1,
                );
            }
            stdout
                .write_all(text.as_bytes())
                .context("writing the plan")?;
        }
    }
    Ok(())
}

fn dockerfile_failure(e: ParseError) -> Failure {
    Failure::new(
        Exit::Dockerfile,
        format!("error: {}", e.render().trim_end()),
    )
}

fn display_path(p: &Path) -> String {
    p.display().to_string()
}

//! Command-line interface: clap flags with Kaniko's spellings, exit codes.
//!
//! This module turns flags into the options the library takes and reports
//! results; it holds no logic worth testing on its own. It is the only
//! place that prints and the only user of `anyhow`-style reporting.

mod args;

use anyhow::Context as _;
use args::{
    BuildArgs, Command, Compression, ContextSource, Entitlement, Exit, ImageFormat, IsolationArg,
    LogFormat, LogLevel, OutputFormat,
};
use kiln::build::{BuildError, BuildOptions, InputError, Secret, load_inputs};
use kiln::dockerfile::{self, ParseError};
use kiln::image::manifest::MediaTypes;
use kiln::plan::{self, PlanError, PlanOptions, values};
use kiln::registry::RegistryOptions;
use kiln::sandbox::Isolation;
use kiln::snapshot::LayerCompression;
use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
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
        .with_ansi(format == LogFormat::Color && std::io::stderr().is_terminal())
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
    let platform = match &build.custom_platform {
        None => None,
        Some(p) => Some(values::parse_platform(p).map_err(|e| {
            Failure::new(Exit::Usage, format!("error: --custom-platform {p:?}: {e}"))
        })?),
    };
    let mut build_args = BTreeMap::new();
    for arg in &build.build_arg {
        if let Some(v) = arg.resolve(|k| std::env::var(k).ok()) {
            build_args.insert(arg.key.clone(), v);
        }
    }
    // As buildx: SOURCE_DATE_EPOCH from the environment is a build arg
    // unless one is given.
    if !build_args.contains_key(SOURCE_DATE_EPOCH)
        && let Ok(v) = std::env::var(SOURCE_DATE_EPOCH)
    {
        build_args.insert(SOURCE_DATE_EPOCH.to_string(), v);
    }
    if build.dry_run {
        return dry_run(build, &context, platform, build_args);
    }
    if build.destination.is_empty() && !build.no_push {
        return Err(Failure::new(
            Exit::Usage,
            "error: no --destination given: name where to push the image, or use --no-push (with --tar-path or --oci-layout-path to keep it)",
        ));
    }
    let options = build_options(build, context, platform, build_args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime
        .block_on(kiln::build::run(&options))
        .map_err(build_failure)?;
    tracing::info!(
        "built {} ({} layers){}",
        outcome.digest,
        outcome.layers,
        if outcome.pushed.is_empty() {
            String::new()
        } else {
            format!(", pushed to {}", outcome.pushed.join(", "))
        }
    );
    Ok(())
}

/// `--dry-run`: parse, plan and print the plan; nothing is pulled.
fn dry_run(
    build: &BuildArgs,
    context: &str,
    platform: Option<values::Platform>,
    build_args: BTreeMap<String, String>,
) -> Result<(), Failure> {
    let inputs = load_inputs(Path::new(context), &build.dockerfile).map_err(input_failure)?;
    let file_name = display_path(&inputs.dockerfile_path);
    let df = dockerfile::parse(&inputs.dockerfile, &file_name).map_err(dockerfile_failure)?;

    let mut options = PlanOptions::new();
    if let Some(p) = platform {
        options.target_platform = p;
    }
    options.build_args = build_args;
    options.target = build.target.clone();
    let plan = plan::plan(&df, &options).map_err(plan_failure)?;

    let mut stderr = std::io::stderr();
    for w in &plan.warnings {
        let _ = writeln!(stderr, "{}warning: {}", w.location(&plan.file), w.text());
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

const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// `SOURCE_DATE_EPOCH` from the build args: decimal seconds since the Unix
/// epoch; empty is unset, as in BuildKit.
fn source_date_epoch(build_args: &BTreeMap<String, String>) -> Result<Option<u64>, Failure> {
    let Some(v) = build_args.get(SOURCE_DATE_EPOCH).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    v.parse::<u64>()
        .ok()
        .filter(|&e| {
            i64::try_from(e)
                .ok()
                .and_then(|e| kiln::image::Timestamp::from_unix(e, 0))
                .is_some()
        })
        .map(Some)
        .ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                format!("error: SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970"),
            )
        })
}

/// Turns the flags into the library's build options.
fn build_options(
    build: &BuildArgs,
    context: String,
    platform: Option<values::Platform>,
    build_args: BTreeMap<String, String>,
) -> Result<BuildOptions, Failure> {
    let compression = match build.compression {
        Compression::Gzip => LayerCompression::gzip(build.compression_level),
        Compression::Zstd => LayerCompression::zstd(build.compression_level),
    }
    .map_err(|e| Failure::new(Exit::Usage, format!("error: --compression-level: {e}")))?;
    let media_types = match build.image_format {
        Some(ImageFormat::Docker) => MediaTypes::Docker,
        Some(ImageFormat::Oci) | None => MediaTypes::Oci,
    };
    let registry = RegistryOptions {
        insecure: build.insecure,
        insecure_pull: build.insecure_pull,
        insecure_registries: build.insecure_registry.clone(),
        skip_tls_verify: build.skip_tls_verify,
        skip_tls_verify_pull: build.skip_tls_verify_pull,
        skip_tls_verify_registries: build.skip_tls_verify_registry.clone(),
        registry_certificates: build
            .registry_certificate
            .iter()
            .map(|kv| (kv.key.clone(), PathBuf::from(&kv.value)))
            .collect(),
        registry_mirrors: build.registry_mirror.clone(),
        skip_default_registry_fallback: build.skip_default_registry_fallback,
        registry_maps: build
            .registry_map
            .iter()
            .flat_map(|m| m.0.iter().map(|kv| (kv.key.clone(), kv.value.clone())))
            .collect(),
        image_download_retry: build.image_download_retry,
        push_retry: build.push_retry,
        ..RegistryOptions::default()
    };
    let work_parent = if build.kaniko_dir == Path::new("/kaniko") {
        std::env::temp_dir()
    } else {
        build.kaniko_dir.clone()
    };
    let work_dir = work_parent.join(format!("kiln-build-{}", std::process::id()));
    let store = store_dir();
    let source_date_epoch = source_date_epoch(&build_args)?;
    Ok(BuildOptions {
        context: PathBuf::from(context),
        dockerfile: build.dockerfile.clone(),
        build_args,
        target: build.target.clone(),
        platform,
        labels: build
            .label
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect(),
        destinations: build.destination.clone(),
        no_push: build.no_push,
        tar_path: build.tar_path.clone(),
        oci_layout_path: build.oci_layout_path.clone(),
        digest_file: build.digest_file.clone(),
        image_name_with_digest_file: build.image_name_with_digest_file.clone(),
        image_name_tag_with_digest_file: build.image_name_tag_with_digest_file.clone(),
        compression,
        media_types,
        registry,
        store_dir: store.clone(),
        cache_mount_dir: store
            .parent()
            .map_or_else(|| store.join("cache-mounts"), |p| p.join("cache-mounts")),
        work_dir,
        isolation: match build.isolation {
            IsolationArg::Auto => None,
            IsolationArg::Namespaces => Some(Isolation::Namespaces),
            IsolationArg::Chroot => Some(Isolation::Chroot),
            IsolationArg::HostRoot => Some(Isolation::HostRoot),
        },
        secrets: build
            .secret
            .iter()
            .map(|s| Secret::parse(s))
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::new(Exit::Usage, format!("error: {e}")))?,
        ignore_paths: build.ignore_path.clone(),
        ignore_var_run: build.ignore_var_run,
        allow_insecure: build.allow.contains(&Entitlement::SecurityInsecure),
        reproducible: build.reproducible,
        source_date_epoch,
        single_snapshot: build.single_snapshot,
    })
}

/// Where blobs are kept between builds: `$KILN_STORE_DIR`, else
/// `$XDG_CACHE_HOME/kiln/store`, else `~/.cache/kiln/store`, else a
/// directory under the system temp dir.
fn store_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KILN_STORE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("kiln/store");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".cache/kiln/store");
    }
    std::env::temp_dir().join(format!("kiln-store-{}", rustix::process::getuid().as_raw()))
}

fn input_failure(e: InputError) -> Failure {
    match e {
        InputError::DockerfileNotFound { .. } | InputError::ContextMissing { .. } => {
            Failure::new(Exit::Dockerfile, format!("error: {e}"))
        }
        other => Failure::from(anyhow::Error::new(other)),
    }
}

fn plan_failure(e: PlanError) -> Failure {
    match e {
        PlanError::Dockerfile(e) => dockerfile_failure(e),
        other => Failure::new(Exit::Dockerfile, format!("error: {other}")),
    }
}

/// The exit code and message of a failed build.
fn build_failure(e: BuildError) -> Failure {
    match e {
        BuildError::Inputs(e) => input_failure(e),
        BuildError::Dockerfile(e) => dockerfile_failure(e),
        BuildError::Plan(e) => plan_failure(e),
        e @ (BuildError::Registry(_) | BuildError::Destination { .. }) => {
            Failure::new(Exit::Registry, format!("error: {}", chain(&e)))
        }
        e @ BuildError::NotSupported { .. } => {
            Failure::new(Exit::NotSupported, format!("error: {}", chain(&e)))
        }
        e => Failure::new(Exit::Failure, format!("error: {}", chain(&e))),
    }
}

/// An error and its causes, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(SOURCE_DATE_EPOCH.to_string(), v.to_string())])
    }

    #[test]
    fn source_date_epoch_from_build_args() {
        let ok = |a: &BTreeMap<String, String>| source_date_epoch(a).ok().flatten();
        assert_eq!(ok(&BTreeMap::new()), None);
        assert_eq!(ok(&args("")), None);
        assert!(source_date_epoch(&args("")).is_ok());
        assert_eq!(ok(&args("1700000000")), Some(1_700_000_000));
        assert_eq!(ok(&args("0")), Some(0));
        for bad in ["-1", "1.5", "yesterday", "99999999999999"] {
            let Err(e) = source_date_epoch(&args(bad)) else {
                panic!("{bad} was accepted");
            };
            assert_eq!(e.exit, Exit::Usage, "{bad}");
            assert!(e.message.contains("SOURCE_DATE_EPOCH"), "{}", e.message);
        }
    }
}

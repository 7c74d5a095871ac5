//! Flag definitions: every `/kaniko/executor` flag with Kaniko's spelling,
//! plus kiln's own.
//!
//! Kaniko parses its flags with cobra/pflag, so this module copies pflag's
//! conventions where they differ from clap's defaults:
//!
//! * booleans accept `--flag`, `--flag=true` and `--flag=false` (any spelling
//!   Go's `strconv.ParseBool` accepts), but not `--flag false`;
//! * giving a single-valued flag twice is not an error, the last one wins;
//! * repeatable flags append one value per occurrence and never split on
//!   commas (Kaniko's `multiArg`), except `--registry-map`, whose values may
//!   hold several `;`-separated mappings;
//! * durations use Go syntax (`336h`, `1h30m`, `90s`).
//!
//! When the binary is started under the name `executor` (as
//! `/kaniko/executor`), [`parse_cli`] reads the arguments as `kiln build …`.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Process exit codes of `kiln`, also used when it stands in for
/// `/kaniko/executor`.
///
/// | code | meaning |
/// |---:|---|
/// | 0 | success (also for `--help` and `version`) |
/// | 1 | the build failed, or an internal error |
/// | 2 | usage error: unknown flag, bad flag value, missing argument |
/// | 3 | the Dockerfile could not be parsed or planned |
/// | 4 | registry or authentication error |
/// | 5 | a build policy denied the build |
/// | 6 | a flag or feature that kiln does not support yet was requested |
///
/// Kaniko itself exits with 1 on every error (including bad flags) and
/// passes on the exit status of a failing `RUN`; kiln reports a failing
/// `RUN` as 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Exit {
    /// The command did what was asked.
    Success = 0,
    /// The build failed, or kiln hit an internal error.
    Failure = 1,
    /// The command line was invalid; clap exits with this code on its own.
    Usage = 2,
    /// The Dockerfile could not be parsed or planned.
    Dockerfile = 3,
    /// A registry refused a request, or authentication failed.
    Registry = 4,
    /// A build policy denied the build.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "returned once build policies run")
    )]
    PolicyDenied = 5,
    /// A flag or feature was requested that kiln does not support yet.
    NotSupported = 6,
}

impl Exit {
    /// The numeric process exit status.
    pub(crate) const fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// kiln's command line.
#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Build OCI images from Dockerfiles without a daemon or privileges",
    long_about = "Build OCI images from Dockerfiles without a daemon or privileges.\n\n\
                  `kiln build` accepts the flags of Kaniko's /kaniko/executor; started \
                  under the name `executor`, kiln behaves as `kiln build`."
)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// kiln's subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build an image from a Dockerfile (takes every Kaniko executor flag)
    #[command(args_override_self = true)]
    Build(Box<BuildArgs>),
    /// Print the version of kiln
    Version,
}

/// Reads the process's own command line (see [`try_parse_from`]); prints
/// help, version or usage errors and exits like clap does (usage errors exit
/// with [`Exit::Usage`]).
pub(crate) fn parse_cli() -> Cli {
    match try_parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    }
}

/// Parses a command line whose first item is the program name.
///
/// If the program's file name is `executor` (kiln installed as
/// `/kaniko/executor`), the rest is read as `kiln build <rest>`, except that
/// `executor version` means `kiln version` and `executor help [cmd]` shows
/// the help of `build` (or of `cmd`).
pub(crate) fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    Cli::try_parse_from(executor_argv(args.into_iter().map(Into::into).collect()))
}

/// Rewrites `executor …` into the equivalent `kiln` command line.
fn executor_argv(mut args: Vec<OsString>) -> Vec<OsString> {
    let Some(program) = args.first() else {
        return args;
    };
    if Path::new(program).file_name() != Some("executor".as_ref()) {
        return args;
    }
    let first = args.get(1).and_then(|arg| arg.to_str());
    match first {
        Some("version") => {}
        Some("help") if args.len() == 2 => args.push("build".into()),
        Some("help") => {}
        _ => args.insert(1, "build".into()),
    }
    args
}

// ---------------------------------------------------------------------------
// Defaults (shared by the flag definitions and `not_yet_supported`).

const DEFAULT_DOCKERFILE: &str = "Dockerfile";
const DEFAULT_CONTEXT: &str = "/workspace/";
const DEFAULT_KANIKO_DIR: &str = "/kaniko";
const DEFAULT_CACHE_DIR: &str = "/cache";
/// Kaniko's `--cache-ttl` default: two weeks.
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(336 * 3600);
const DEFAULT_COMPRESSION_LEVEL: i32 = -1;

// Help headings.
const H_CONTEXT: &str = "Context";
const H_OUTPUT: &str = "Destinations/outputs";
const H_REGISTRY: &str = "Registry/auth/TLS";
const H_CACHE: &str = "Cache";
const H_SNAPSHOT: &str = "Snapshot/filesystem";
const H_BUILD: &str = "Build args/target/platform";
const H_LOGGING: &str = "Logging/misc";
const H_KILN: &str = "kiln";

/// The flags whose features kiln implements, by long name. A flag set to a
/// non-default value that is missing here makes [`BuildArgs::not_yet_supported`]
/// name it. To support a flag, add it here.
const SUPPORTED_FLAGS: &[&str] = &[
    "--context",
    "--dockerfile",
    "--build-arg",
    "--target",
    "--custom-platform",
    "--dry-run",
    "--format",
    "--verbosity",
    "--log-format",
    "--log-timestamp",
    "--no-push",
    "--skip-unused-stages",
    // Outputs.
    "--destination",
    "--tar-path",
    "--oci-layout-path",
    "--digest-file",
    "--image-name-with-digest-file",
    "--image-name-tag-with-digest-file",
    "--label",
    "--compression",
    "--compression-level",
    "--image-format",
    "--push-retry",
    // Registries.
    "--insecure",
    "--skip-tls-verify",
    "--insecure-pull",
    "--skip-tls-verify-pull",
    "--insecure-registry",
    "--skip-tls-verify-registry",
    "--registry-certificate",
    "--registry-mirror",
    "--registry-map",
    "--skip-default-registry-fallback",
    "--image-download-retry",
    "--kaniko-dir",
    // Execution.
    "--secret",
    "--ignore-path",
    "--ignore-var-run",
    "--isolation",
    "--allow",
    // Snapshots.
    "--reproducible",
    "--single-snapshot",
    "--snapshot-mode",
];

/// Flags of `kiln build`: Kaniko's executor flags and kiln's own.
///
/// Fields are named after the long flag. Defaults match Kaniko v1.24.0.
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    // ----- Context ---------------------------------------------------------
    /// Dockerfile to build: a path, absolute or relative to the context, or an http(s) URL
    #[arg(
        short = 'f',
        long,
        value_name = "PATH",
        default_value = DEFAULT_DOCKERFILE,
        help_heading = H_CONTEXT
    )]
    pub(crate) dockerfile: String,

    /// Build context: a directory (optionally `dir://`), or `tar://`, `gs://`, `s3://`, `git://`, `https://` sources
    #[arg(
        short = 'c',
        long,
        value_name = "CONTEXT",
        default_value = DEFAULT_CONTEXT,
        help_heading = H_CONTEXT
    )]
    pub(crate) context: String,

    /// Sub-directory of a remote build context to use as the context
    #[arg(long, value_name = "PATH", help_heading = H_CONTEXT)]
    pub(crate) context_sub_path: Option<String>,

    /// GCS bucket holding the build context as a tarball (legacy; use --context gs://…)
    #[arg(short = 'b', long, value_name = "BUCKET", hide = true, help_heading = H_CONTEXT)]
    pub(crate) bucket: Option<String>,

    /// Git option for a git:// context: branch=NAME, single-branch=BOOL, recurse-submodules=BOOL or insecure-skip-tls=BOOL; repeatable
    #[arg(
        long,
        value_name = "KEY=VALUE",
        action = ArgAction::Append,
        value_parser = parse_git_option,
        help_heading = H_CONTEXT
    )]
    pub(crate) git: Vec<KeyValue>,

    // ----- Destinations / outputs -------------------------------------------
    /// Image reference to push the result to; repeatable, required unless --no-push is given
    #[arg(
        short = 'd',
        long,
        value_name = "IMAGE",
        action = ArgAction::Append,
        help_heading = H_OUTPUT
    )]
    pub(crate) destination: Vec<String>,

    /// Build the image but do not push it
    #[arg(
        long,
        env = "KANIKO_NO_PUSH",
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool_or_empty,
        help_heading = H_OUTPUT
    )]
    pub(crate) no_push: bool,

    /// Write the image as a docker-archive tarball to this path
    #[arg(long, alias = "tarPath", value_name = "PATH", help_heading = H_OUTPUT)]
    pub(crate) tar_path: Option<PathBuf>,

    /// Write the image as an OCI image layout to this directory
    #[arg(long, value_name = "PATH", help_heading = H_OUTPUT)]
    pub(crate) oci_layout_path: Option<PathBuf>,

    /// Write the digest of the built image to this file
    #[arg(long, value_name = "PATH", help_heading = H_OUTPUT)]
    pub(crate) digest_file: Option<PathBuf>,

    /// Write the pushed image's name@digest to this file
    #[arg(long, value_name = "PATH", help_heading = H_OUTPUT)]
    pub(crate) image_name_with_digest_file: Option<PathBuf>,

    /// Write the pushed image's name:tag@digest to this file
    #[arg(long, value_name = "PATH", help_heading = H_OUTPUT)]
    pub(crate) image_name_tag_with_digest_file: Option<PathBuf>,

    /// Label to add to the image config; repeatable
    #[arg(
        long,
        value_name = "KEY=VALUE",
        action = ArgAction::Append,
        value_parser = parse_key_value,
        help_heading = H_OUTPUT
    )]
    pub(crate) label: Vec<KeyValue>,

    /// Annotation to add to the image manifest; repeatable (Kaniko forks)
    #[arg(
        long,
        value_name = "KEY=VALUE",
        action = ArgAction::Append,
        value_parser = parse_key_value,
        help_heading = H_OUTPUT
    )]
    pub(crate) annotation: Vec<KeyValue>,

    /// Compression algorithm for new layers
    #[arg(
        long,
        value_enum,
        value_name = "ALGORITHM",
        default_value_t = Compression::Gzip,
        help_heading = H_OUTPUT
    )]
    pub(crate) compression: Compression,

    /// Compression level for new layers; -1 picks the algorithm's default
    #[arg(
        long,
        value_name = "LEVEL",
        default_value_t = DEFAULT_COMPRESSION_LEVEL,
        allow_negative_numbers = true,
        help_heading = H_OUTPUT
    )]
    pub(crate) compression_level: i32,

    /// Media types of the image; by default those of the base image are kept (Kaniko forks)
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = H_OUTPUT)]
    pub(crate) image_format: Option<ImageFormat>,

    /// Strip timestamps from the image so that identical inputs give identical digests
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_OUTPUT
    )]
    pub(crate) reproducible: bool,

    /// Number of times to retry a failed push
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = H_OUTPUT)]
    pub(crate) push_retry: u32,

    /// Treat a push refused because the tag is immutable as success
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_OUTPUT
    )]
    pub(crate) push_ignore_immutable_tag_errors: bool,

    /// Do not check up front that the destinations accept a push
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_OUTPUT
    )]
    pub(crate) skip_push_permission_check: bool,

    // ----- Registry / auth / TLS --------------------------------------------
    /// Push over plain HTTP
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_REGISTRY
    )]
    pub(crate) insecure: bool,

    /// Push without verifying the registry's TLS certificate
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_REGISTRY
    )]
    pub(crate) skip_tls_verify: bool,

    /// Pull over plain HTTP
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_REGISTRY
    )]
    pub(crate) insecure_pull: bool,

    /// Pull without verifying the registry's TLS certificate
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_REGISTRY
    )]
    pub(crate) skip_tls_verify_pull: bool,

    /// Registry to push to and pull from over plain HTTP; repeatable
    #[arg(
        long,
        value_name = "REGISTRY",
        action = ArgAction::Append,
        help_heading = H_REGISTRY
    )]
    pub(crate) insecure_registry: Vec<String>,

    /// Registry to push to and pull from without TLS verification; repeatable
    #[arg(
        long,
        value_name = "REGISTRY",
        action = ArgAction::Append,
        help_heading = H_REGISTRY
    )]
    pub(crate) skip_tls_verify_registry: Vec<String>,

    /// CA certificate to trust for a registry, as REGISTRY=/path/to/ca.crt; repeatable
    #[arg(
        long,
        value_name = "REGISTRY=PATH",
        action = ArgAction::Append,
        value_parser = parse_key_value,
        help_heading = H_REGISTRY
    )]
    pub(crate) registry_certificate: Vec<KeyValue>,

    /// Client certificate for mutual TLS with a registry, as REGISTRY=/path/cert,/path/key; repeatable
    #[arg(
        long,
        value_name = "REGISTRY=CERT,KEY",
        action = ArgAction::Append,
        value_parser = parse_key_value,
        help_heading = H_REGISTRY
    )]
    pub(crate) registry_client_cert: Vec<KeyValue>,

    /// Pull-through mirror to try before docker.io; repeatable
    #[arg(
        long,
        env = "KANIKO_REGISTRY_MIRROR",
        value_name = "REGISTRY",
        action = ArgAction::Append,
        help_heading = H_REGISTRY
    )]
    pub(crate) registry_mirror: Vec<String>,

    /// Registry remapping as ORIGINAL=MIRROR, several joined with `;`; repeatable
    #[arg(
        long,
        env = "KANIKO_REGISTRY_MAP",
        value_name = "ORIGINAL=MIRROR[;…]",
        action = ArgAction::Append,
        value_parser = parse_registry_map,
        help_heading = H_REGISTRY
    )]
    pub(crate) registry_map: Vec<RegistryMap>,

    /// Do not fall back to the original registry when no mirror has the image
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_REGISTRY
    )]
    pub(crate) skip_default_registry_fallback: bool,

    /// Number of times to retry a failed base-image download
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = H_REGISTRY)]
    pub(crate) image_download_retry: u32,

    /// Credential helper to use (env, google, ecr, acr, gitlab); repeatable, all by default (Kaniko forks)
    #[arg(
        long,
        value_name = "HELPER",
        action = ArgAction::Append,
        help_heading = H_REGISTRY
    )]
    pub(crate) credential_helpers: Vec<String>,

    /// Azure container registry configuration file (legacy, accepted for compatibility)
    #[arg(long, value_name = "PATH", hide = true, help_heading = H_REGISTRY)]
    pub(crate) azure_container_registry_config: Option<PathBuf>,

    // ----- Cache -------------------------------------------------------------
    /// Reuse and store layers in the layer cache
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_CACHE
    )]
    pub(crate) cache: bool,

    /// Repository for cached layers (default: <destination>/cache); `oci:/path` stores an OCI layout
    #[arg(long, value_name = "REPO", help_heading = H_CACHE)]
    pub(crate) cache_repo: Option<String>,

    /// Local directory of base images prepared by the cache warmer
    #[arg(
        long,
        value_name = "PATH",
        default_value = DEFAULT_CACHE_DIR,
        help_heading = H_CACHE
    )]
    pub(crate) cache_dir: PathBuf,

    /// Age after which cached layers are ignored, as a Go duration such as 6h or 90m
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "336h",
        value_parser = parse_go_duration,
        help_heading = H_CACHE
    )]
    pub(crate) cache_ttl: Duration,

    /// Cache layers created by RUN
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        value_parser = parse_go_bool,
        help_heading = H_CACHE
    )]
    pub(crate) cache_run_layers: bool,

    /// Cache layers created by COPY
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_CACHE
    )]
    pub(crate) cache_copy_layers: bool,

    /// Read from the layer cache but do not push new layers to it
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_CACHE
    )]
    pub(crate) no_push_cache: bool,

    /// Keep compressed layers in memory while caching: faster, but uses more memory
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        value_parser = parse_go_bool,
        help_heading = H_CACHE
    )]
    pub(crate) compressed_caching: bool,

    // ----- Snapshot / filesystem ---------------------------------------------
    /// Kaniko's change detection mode; in kiln all three are the same metadata walk (mode, owner, size, mtime, ctime, inode, nlink, link target), which finds everything full's content hashing would, without reading file contents
    #[arg(
        long,
        alias = "snapshotMode",
        value_enum,
        value_name = "MODE",
        default_value_t = SnapshotMode::Full,
        help_heading = H_SNAPSHOT
    )]
    pub(crate) snapshot_mode: SnapshotMode,

    /// Take one snapshot per stage, at its end, instead of one per instruction
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_SNAPSHOT
    )]
    pub(crate) single_snapshot: bool,

    /// Find files changed by RUN from file metadata instead of a full snapshot (experimental)
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_SNAPSHOT
    )]
    pub(crate) use_new_run: bool,

    /// Add a layer for every instruction, even those that only change metadata
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_SNAPSHOT
    )]
    pub(crate) force_build_metadata: bool,

    /// Number of times to retry extracting a base image's filesystem
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = H_SNAPSHOT)]
    pub(crate) image_fs_extract_retry: u32,

    /// Remove the build's root filesystem when the build ends
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_SNAPSHOT
    )]
    pub(crate) cleanup: bool,

    /// Remove leftovers of a previous build's root filesystem before building (Kaniko forks)
    #[arg(
        long,
        env = "KANIKO_PRE_CLEANUP",
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool_or_empty,
        help_heading = H_SNAPSHOT
    )]
    pub(crate) pre_cleanup: bool,

    /// Keep the build context available across stages (Kaniko forks)
    #[arg(
        long,
        env = "KANIKO_PRESERVE_CONTEXT",
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool_or_empty,
        help_heading = H_SNAPSHOT
    )]
    pub(crate) preserve_context: bool,

    /// Unpack the final filesystem even when every layer came from the cache (Kaniko forks)
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_SNAPSHOT
    )]
    pub(crate) materialize: bool,

    /// Path to leave out of snapshots; repeatable
    #[arg(
        long,
        value_name = "PATH",
        action = ArgAction::Append,
        help_heading = H_SNAPSHOT
    )]
    pub(crate) ignore_path: Vec<PathBuf>,

    /// Leave /var/run out of snapshots; set to false to keep it in the image
    #[arg(
        long,
        alias = "whitelist-var-run",
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        value_parser = parse_go_bool,
        help_heading = H_SNAPSHOT
    )]
    pub(crate) ignore_var_run: bool,

    /// Kaniko's working directory
    #[arg(
        long,
        env = "KANIKO_DIR",
        value_name = "PATH",
        default_value = DEFAULT_KANIKO_DIR,
        help_heading = H_SNAPSHOT
    )]
    pub(crate) kaniko_dir: PathBuf,

    // ----- Build args / target / platform -------------------------------------
    /// Build argument as KEY=VALUE, or KEY to take the value from the environment; repeatable
    #[arg(
        long,
        value_name = "KEY[=VALUE]",
        action = ArgAction::Append,
        value_parser = parse_build_arg,
        help_heading = H_BUILD
    )]
    pub(crate) build_arg: Vec<BuildArg>,

    /// Stage to build; by default the last stage
    #[arg(long, value_name = "STAGE", help_heading = H_BUILD)]
    pub(crate) target: Option<String>,

    /// Platform of the image, as os/arch[/variant]; by default the host's
    #[arg(
        long,
        visible_alias = "platform",
        alias = "customPlatform",
        value_name = "PLATFORM",
        help_heading = H_BUILD
    )]
    pub(crate) custom_platform: Option<String>,

    /// Build only the stages the target needs (kiln always does; accepted for compatibility)
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_BUILD
    )]
    pub(crate) skip_unused_stages: bool,

    /// Build secret as id=ID[,type=file|env][,src=PATH][,env=VAR]; repeatable (Kaniko forks)
    #[arg(
        long,
        value_name = "SPEC",
        action = ArgAction::Append,
        help_heading = H_BUILD
    )]
    pub(crate) secret: Vec<String>,

    // ----- Logging / misc ----------------------------------------------------
    /// Log level
    #[arg(
        short = 'v',
        long,
        value_enum,
        ignore_case = true,
        value_name = "LEVEL",
        default_value_t = LogLevel::Info,
        help_heading = H_LOGGING
    )]
    pub(crate) verbosity: LogLevel,

    /// Log format
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Color,
        help_heading = H_LOGGING
    )]
    pub(crate) log_format: LogFormat,

    /// Add timestamps to log lines
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_LOGGING
    )]
    pub(crate) log_timestamp: bool,

    /// Build even when not running inside a container (Kaniko's safety check)
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_LOGGING
    )]
    pub(crate) force: bool,

    // ----- kiln ---------------------------------------------------------------
    /// Print the build plan instead of building
    #[arg(
        long,
        alias = "dryrun",
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = parse_go_bool,
        help_heading = H_KILN
    )]
    pub(crate) dry_run: bool,

    /// Format of the --dry-run plan
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = OutputFormat::Text,
        help_heading = H_KILN
    )]
    pub(crate) format: OutputFormat,

    /// How RUN steps are isolated from the host: namespaces (user, mount, pid,
    /// ipc, uts), chroot (only CAP_SYS_CHROOT, no mounts), host-root (Kaniko's
    /// model: the build root is / of a throw-away container), or auto to
    /// probe them in that order
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        default_value_t = IsolationArg::Auto,
        help_heading = H_KILN
    )]
    pub(crate) isolation: IsolationArg,

    /// Grant an entitlement, as buildx does: security.insecure lets RUN
    /// --security=insecure keep every capability; network.host is accepted
    /// (RUN --network=host needs no grant in kiln)
    #[arg(long, value_enum, value_name = "ENTITLEMENT", help_heading = H_KILN)]
    pub(crate) allow: Vec<Entitlement>,
}

impl BuildArgs {
    /// Every flag by long name, with whether it is set to something other
    /// than its default. Each flag appears exactly once (a test checks this
    /// against the clap definition).
    fn flags_in_use(&self) -> Vec<(&'static str, bool)> {
        vec![
            // Context
            ("--dockerfile", self.dockerfile != DEFAULT_DOCKERFILE),
            ("--context", self.context != DEFAULT_CONTEXT),
            (
                "--context-sub-path",
                is_set(self.context_sub_path.as_deref()),
            ),
            ("--bucket", is_set(self.bucket.as_deref())),
            ("--git", !self.git.is_empty()),
            // Destinations / outputs
            ("--destination", !self.destination.is_empty()),
            ("--no-push", self.no_push),
            ("--tar-path", self.tar_path.is_some()),
            ("--oci-layout-path", self.oci_layout_path.is_some()),
            ("--digest-file", self.digest_file.is_some()),
            (
                "--image-name-with-digest-file",
                self.image_name_with_digest_file.is_some(),
            ),
            (
                "--image-name-tag-with-digest-file",
                self.image_name_tag_with_digest_file.is_some(),
            ),
            ("--label", !self.label.is_empty()),
            ("--annotation", !self.annotation.is_empty()),
            ("--compression", self.compression != Compression::Gzip),
            (
                "--compression-level",
                self.compression_level != DEFAULT_COMPRESSION_LEVEL,
            ),
            ("--image-format", self.image_format.is_some()),
            ("--reproducible", self.reproducible),
            ("--push-retry", self.push_retry != 0),
            (
                "--push-ignore-immutable-tag-errors",
                self.push_ignore_immutable_tag_errors,
            ),
            (
                "--skip-push-permission-check",
                self.skip_push_permission_check,
            ),
            // Registry / auth / TLS
            ("--insecure", self.insecure),
            ("--skip-tls-verify", self.skip_tls_verify),
            ("--insecure-pull", self.insecure_pull),
            ("--skip-tls-verify-pull", self.skip_tls_verify_pull),
            ("--insecure-registry", !self.insecure_registry.is_empty()),
            (
                "--skip-tls-verify-registry",
                !self.skip_tls_verify_registry.is_empty(),
            ),
            (
                "--registry-certificate",
                !self.registry_certificate.is_empty(),
            ),
            (
                "--registry-client-cert",
                !self.registry_client_cert.is_empty(),
            ),
            (
                "--registry-mirror",
                self.registry_mirror.iter().any(|m| !m.is_empty()),
            ),
            (
                "--registry-map",
                self.registry_map.iter().any(|m| !m.0.is_empty()),
            ),
            (
                "--skip-default-registry-fallback",
                self.skip_default_registry_fallback,
            ),
            ("--image-download-retry", self.image_download_retry != 0),
            ("--credential-helpers", !self.credential_helpers.is_empty()),
            (
                "--azure-container-registry-config",
                self.azure_container_registry_config.is_some(),
            ),
            // Cache
            ("--cache", self.cache),
            ("--cache-repo", is_set(self.cache_repo.as_deref())),
            (
                "--cache-dir",
                self.cache_dir != Path::new(DEFAULT_CACHE_DIR),
            ),
            ("--cache-ttl", self.cache_ttl != DEFAULT_CACHE_TTL),
            ("--cache-run-layers", !self.cache_run_layers),
            ("--cache-copy-layers", self.cache_copy_layers),
            ("--no-push-cache", self.no_push_cache),
            ("--compressed-caching", !self.compressed_caching),
            // Snapshot / filesystem
            ("--snapshot-mode", self.snapshot_mode != SnapshotMode::Full),
            ("--single-snapshot", self.single_snapshot),
            ("--use-new-run", self.use_new_run),
            ("--force-build-metadata", self.force_build_metadata),
            ("--image-fs-extract-retry", self.image_fs_extract_retry != 0),
            ("--cleanup", self.cleanup),
            ("--pre-cleanup", self.pre_cleanup),
            ("--preserve-context", self.preserve_context),
            ("--materialize", self.materialize),
            ("--ignore-path", !self.ignore_path.is_empty()),
            ("--ignore-var-run", !self.ignore_var_run),
            (
                "--kaniko-dir",
                self.kaniko_dir != Path::new(DEFAULT_KANIKO_DIR),
            ),
            // Build args / target / platform
            ("--build-arg", !self.build_arg.is_empty()),
            ("--target", is_set(self.target.as_deref())),
            ("--custom-platform", is_set(self.custom_platform.as_deref())),
            ("--skip-unused-stages", self.skip_unused_stages),
            ("--secret", !self.secret.is_empty()),
            // Logging / misc
            ("--verbosity", self.verbosity != LogLevel::Info),
            ("--log-format", self.log_format != LogFormat::Color),
            ("--log-timestamp", self.log_timestamp),
            ("--force", self.force),
            // kiln
            ("--dry-run", self.dry_run),
            ("--format", self.format != OutputFormat::Text),
            ("--isolation", self.isolation != IsolationArg::Auto),
            ("--allow", !self.allow.is_empty()),
        ]
    }

    /// Long names (`--flag`) of the flags set to a non-default value whose
    /// feature kiln does not implement yet, in help order.
    ///
    /// Besides the flags missing from the supported list this names
    /// `--context` when the context is not a local directory (see
    /// [`BuildArgs::unsupported_context_scheme`]) and `--dockerfile` when the
    /// Dockerfile is a URL.
    pub(crate) fn not_yet_supported(&self) -> Vec<&'static str> {
        self.flags_in_use()
            .into_iter()
            .filter(|&(name, in_use)| {
                let value_unsupported = match name {
                    "--context" => self.unsupported_context_scheme().is_some(),
                    "--dockerfile" => is_url(&self.dockerfile),
                    _ => false,
                };
                in_use && (value_unsupported || !SUPPORTED_FLAGS.contains(&name))
            })
            .map(|(name, _)| name)
            .collect()
    }

    /// The scheme of `--context` (such as `"tar://"`) when it names a
    /// remote or archive context that kiln cannot read yet, or a scheme
    /// nobody knows (such as `"ftp://"`); `None` for a local directory, with
    /// or without `dir://`.
    pub(crate) fn unsupported_context_scheme(&self) -> Option<&str> {
        match ContextSource::parse(&self.context) {
            ContextSource::LocalDir(_) => None,
            ContextSource::NotSupported(scheme) => Some(scheme),
            // Kaniko rejects unknown schemes as well.
            ContextSource::Unknown(scheme) => Some(scheme),
        }
    }
}

/// Where `--context` points, by its scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContextSource<'a> {
    /// A local directory; the `dir://` prefix, if any, is removed.
    LocalDir(&'a str),
    /// A scheme Kaniko understands and kiln does not support yet:
    /// `tar://`, `gs://`, `s3://`, `git://` or `https://`.
    NotSupported(&'static str),
    /// A scheme Kaniko does not know either (the full `xyz://` prefix).
    Unknown(&'a str),
}

/// Context schemes that Kaniko reads and kiln does not yet.
const UNSUPPORTED_CONTEXT_SCHEMES: &[&str] = &["tar://", "gs://", "s3://", "git://", "https://"];

impl<'a> ContextSource<'a> {
    /// Classifies a `--context` value the way Kaniko does: everything up to
    /// the first `://` is the scheme; no `://` means a local directory.
    pub(crate) fn parse(context: &'a str) -> Self {
        let Some(end) = context.find("://") else {
            return ContextSource::LocalDir(context);
        };
        let (scheme, rest) = context.split_at(end + 3);
        if scheme == "dir://" {
            return ContextSource::LocalDir(rest);
        }
        match UNSUPPORTED_CONTEXT_SCHEMES.iter().find(|s| **s == scheme) {
            Some(known) => ContextSource::NotSupported(known),
            None => ContextSource::Unknown(scheme),
        }
    }
}

fn is_set(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

fn is_url(path: &str) -> bool {
    path.starts_with("http://") || path.starts_with("https://")
}

// ---------------------------------------------------------------------------
// Value types.

/// A `KEY=VALUE` flag value, split at the first `=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyValue {
    /// Text before the first `=`.
    pub(crate) key: String,
    /// Text after the first `=` (may contain further `=`).
    pub(crate) value: String,
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// One `--build-arg`: `KEY=VALUE`, or a bare `KEY` whose value comes from
/// the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildArg {
    /// The ARG name.
    pub(crate) key: String,
    /// The value given on the command line; `None` for a bare `KEY`.
    pub(crate) value: Option<String>,
}

impl BuildArg {
    /// The value to use: the given one, or else `lookup(key)`. A bare `KEY`
    /// that is not in the environment gives `None`: the build arg is left
    /// unset, as `docker build` and BuildKit do, so the ARG default applies.
    pub(crate) fn resolve(&self, lookup: impl FnOnce(&str) -> Option<String>) -> Option<String> {
        match &self.value {
            Some(value) => Some(value.clone()),
            None => lookup(&self.key),
        }
    }
}

/// One `--registry-map` value: zero or more `ORIGINAL=MIRROR` pairs
/// (several joined with `;`; an empty value holds none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegistryMap(pub(crate) Vec<KeyValue>);

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Compression {
    /// gzip, readable everywhere
    Gzip,
    /// zstd, smaller and faster but needs a recent runtime
    Zstd,
}

/// `--image-format` (Kaniko forks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ImageFormat {
    /// Docker v2 schema 2 media types
    Docker,
    /// OCI media types
    Oci,
}

/// `--snapshot-mode`. kiln accepts Kaniko's three modes and runs the same
/// metadata walk for each: a content change moves the file's ctime, so the
/// walk finds what `full`'s hashing finds, and more than `redo` and `time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SnapshotMode {
    /// Kaniko: hash contents and metadata. kiln: the metadata walk (ctime catches content changes)
    Full,
    /// Kaniko: compare mode, mtime, size, owner. kiln: the same metadata walk
    Redo,
    /// Kaniko: compare mtimes only. kiln: the same metadata walk
    Time,
}

/// `--verbosity`, logrus's levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogLevel {
    /// Everything, including very detailed tracing
    Trace,
    /// Debugging details
    Debug,
    /// Progress of the build
    Info,
    /// Warnings and errors only
    #[value(alias = "warning")]
    Warn,
    /// Errors only
    Error,
    /// Fatal errors only
    Fatal,
    /// Panics only
    Panic,
}

impl LogLevel {
    /// The tracing filter directive for this level (fatal and panic map to
    /// error, the most severe level tracing has).
    pub(crate) fn as_filter(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error | Self::Fatal | Self::Panic => "error",
        }
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Plain text
    Text,
    /// Text with colours
    Color,
    /// One JSON object per line
    Json,
}

/// `--allow`: an entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Entitlement {
    /// RUN --security=insecure: every capability, no no_new_privs
    #[value(name = "security.insecure")]
    SecurityInsecure,
    /// RUN --network=host (always allowed in kiln)
    #[value(name = "network.host")]
    NetworkHost,
}

/// `--isolation`: how RUN is isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum IsolationArg {
    /// Probe: namespaces, else chroot, else host-root
    Auto,
    /// User (when not root), mount, pid, ipc and uts namespaces with pivot_root
    Namespaces,
    /// chroot only, for pods without mount privileges
    Chroot,
    /// Run against / itself, as Kaniko does, in a throw-away container
    HostRoot,
}

/// `--format`: how `--dry-run` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Human-readable text
    Text,
    /// JSON
    Json,
}

// ---------------------------------------------------------------------------
// Value parsers.

/// Go's `strconv.ParseBool`, which pflag uses for boolean flags.
fn parse_go_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("expected true or false, got {value:?}")),
    }
}

/// [`parse_go_bool`], but an empty value (an empty environment variable)
/// means false, as in Kaniko's environment handling.
fn parse_go_bool_or_empty(value: &str) -> Result<bool, String> {
    if value.is_empty() {
        Ok(false)
    } else {
        parse_go_bool(value)
    }
}

fn parse_key_value(value: &str) -> Result<KeyValue, String> {
    match value.split_once('=') {
        Some((key, val)) if !key.is_empty() => Ok(KeyValue {
            key: key.to_owned(),
            value: val.to_owned(),
        }),
        _ => Err(format!("expected KEY=VALUE, got {value:?}")),
    }
}

fn parse_git_option(value: &str) -> Result<KeyValue, String> {
    let kv = parse_key_value(value)?;
    match kv.key.as_str() {
        "branch" => {}
        "single-branch" | "recurse-submodules" | "insecure-skip-tls" => {
            parse_go_bool(&kv.value).map_err(|e| format!("{}: {e}", kv.key))?;
        }
        other => {
            return Err(format!(
                "unknown git option {other:?}; expected branch, single-branch, \
                 recurse-submodules or insecure-skip-tls"
            ));
        }
    }
    Ok(kv)
}

fn parse_build_arg(value: &str) -> Result<BuildArg, String> {
    let (key, val) = match value.split_once('=') {
        Some((key, val)) => (key, Some(val.to_owned())),
        None => (value, None),
    };
    if key.is_empty() {
        return Err(format!("expected KEY=VALUE or KEY, got {value:?}"));
    }
    Ok(BuildArg {
        key: key.to_owned(),
        value: val,
    })
}

fn parse_registry_map(value: &str) -> Result<RegistryMap, String> {
    if value.is_empty() {
        return Ok(RegistryMap(Vec::new()));
    }
    value
        .split(';')
        .map(parse_key_value)
        .collect::<Result<_, _>>()
        .map(RegistryMap)
}

/// Go's `time.ParseDuration`, limited to non-negative durations.
///
/// A duration is a sequence of decimal numbers, each with an optional
/// fraction and a required unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), such
/// as `336h`, `1h30m` or `1.5s`; a bare `0` is also accepted.
pub(crate) fn parse_go_duration(text: &str) -> Result<Duration, String> {
    const MAX_NANOS: u128 = i64::MAX as u128;
    let invalid = || format!("invalid duration {text:?} (examples: 6h, 1h30m, 90s)");

    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let negative = text.starts_with('-');
    if unsigned == "0" {
        return Ok(Duration::ZERO);
    }
    if unsigned.is_empty() {
        return Err(invalid());
    }

    let mut rest = unsigned;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_digits, after) = rest.split_at(int_len);
        let (frac_digits, after) = match after.strip_prefix('.') {
            Some(after) => {
                let len = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                after.split_at(len)
            }
            None => ("", after),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(format!("missing unit in duration {text:?}")),
            _ => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        let int: u128 = if int_digits.is_empty() {
            0
        } else {
            int_digits.parse().map_err(|_| invalid())?
        };
        // Digits beyond nanosecond precision cannot matter; drop them so the
        // arithmetic stays in range.
        let frac_digits = &frac_digits[..frac_digits.len().min(18)];
        let frac_nanos = if frac_digits.is_empty() {
            0
        } else {
            let frac: u128 = frac_digits.parse().map_err(|_| invalid())?;
            let scale = 10u128.pow(u32::try_from(frac_digits.len()).map_err(|_| invalid())?);
            frac * unit_nanos / scale
        };
        total = int
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(frac_nanos))
            .and_then(|n| n.checked_add(total))
            .filter(|n| *n <= MAX_NANOS)
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
        rest = after;
    }
    if negative && total != 0 {
        return Err(format!("duration {text:?} must not be negative"));
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| invalid())?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| invalid())?;
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        try_parse_from(args.iter().copied())
    }

    fn build(args: &[&str]) -> BuildArgs {
        let mut argv = vec!["kiln", "build"];
        argv.extend_from_slice(args);
        match parse(&argv)
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
            .command
        {
            Command::Build(b) => *b,
            other => panic!("expected build, got {other:?}"),
        }
    }

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn realistic_kaniko_command_line() {
        let b = build(&[
            "--context=dir:///workspace",
            "--dockerfile=Dockerfile",
            "--destination=reg/x:1",
            "-d",
            "reg/x:2",
            "--cache=true",
            "--cache-repo=reg/cache",
            "--no-push",
            "--tar-path=/out.tar",
            "--build-arg",
            "A=1",
            "--build-arg",
            "B",
        ]);
        assert_eq!(b.context, "dir:///workspace");
        assert_eq!(
            ContextSource::parse(&b.context),
            ContextSource::LocalDir("/workspace")
        );
        assert_eq!(b.dockerfile, "Dockerfile");
        assert_eq!(b.destination, ["reg/x:1", "reg/x:2"]);
        assert!(b.cache);
        assert_eq!(b.cache_repo.as_deref(), Some("reg/cache"));
        assert!(b.no_push);
        assert_eq!(b.tar_path.as_deref(), Some(Path::new("/out.tar")));
        assert_eq!(
            b.build_arg,
            [
                BuildArg {
                    key: "A".into(),
                    value: Some("1".into())
                },
                BuildArg {
                    key: "B".into(),
                    value: None
                },
            ]
        );
        assert_eq!(b.not_yet_supported(), ["--cache", "--cache-repo"]);
        assert_eq!(b.unsupported_context_scheme(), None);
    }

    #[test]
    fn executor_program_name_means_build() {
        let cli = parse(&["/kaniko/executor", "-c", "/src", "--no-push"]).unwrap();
        let Command::Build(b) = cli.command else {
            panic!("expected build");
        };
        assert_eq!(b.context, "/src");
        assert!(b.no_push);

        let cli = parse(&["executor", "version"]).unwrap();
        assert!(matches!(cli.command, Command::Version));
        let cli = parse(&["kiln", "version"]).unwrap();
        assert!(matches!(cli.command, Command::Version));

        // Only the file name counts, and only an exact `executor`.
        assert!(parse(&["/usr/bin/kiln", "-c", "/src"]).is_err());
        assert!(parse(&["/bin/executor2", "-c", "/src"]).is_err());

        // `executor help` shows the build flags, like Kaniko.
        let err = parse(&["executor", "help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(err.to_string().contains("--destination"));
        let err = parse(&["executor", "--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(err.to_string().contains("--destination"));
        assert!(!err.to_string().contains("--bucket"));
        assert!(
            !err.to_string()
                .contains("--azure-container-registry-config")
        );
    }

    #[test]
    fn deprecated_and_alias_spellings() {
        let b = build(&[
            "--tarPath=/t.tar",
            "--snapshotMode",
            "redo",
            "--customPlatform=linux/arm64",
            "--whitelist-var-run=false",
            "--dryrun",
        ]);
        assert_eq!(b.tar_path.as_deref(), Some(Path::new("/t.tar")));
        assert_eq!(b.snapshot_mode, SnapshotMode::Redo);
        assert_eq!(b.custom_platform.as_deref(), Some("linux/arm64"));
        assert!(!b.ignore_var_run);
        assert!(b.dry_run);

        let b = build(&["--platform", "linux/amd64"]);
        assert_eq!(b.custom_platform.as_deref(), Some("linux/amd64"));
        let b = build(&["--custom-platform=linux/riscv64"]);
        assert_eq!(b.custom_platform.as_deref(), Some("linux/riscv64"));
    }

    #[test]
    fn booleans_follow_pflag() {
        assert!(build(&["--cache"]).cache);
        assert!(build(&["--cache=true"]).cache);
        assert!(build(&["--cache=1"]).cache);
        assert!(build(&["--cache=T"]).cache);
        assert!(!build(&["--cache=false"]).cache);
        assert!(!build(&["--cache=False"]).cache);
        assert!(!build(&["--cache=0"]).cache);
        assert!(!build(&["--ignore-var-run=false"]).ignore_var_run);
        assert!(!build(&["--cache-run-layers=false"]).cache_run_layers);
        assert!(!build(&["--compressed-caching=f"]).compressed_caching);
        // The last occurrence wins.
        assert!(!build(&["--cache", "--cache=false"]).cache);
        // `--flag false` is not a value for the flag (pflag agrees).
        assert!(parse(&["kiln", "build", "--cache", "false"]).is_err());
        assert!(parse(&["kiln", "build", "--cache=yes"]).is_err());
    }

    #[test]
    fn defaults_match_kaniko() {
        let b = build(&[]);
        assert_eq!(b.context, "/workspace/");
        assert_eq!(b.dockerfile, "Dockerfile");
        assert_eq!(b.snapshot_mode, SnapshotMode::Full);
        assert_eq!(b.cache_dir, Path::new("/cache"));
        assert_eq!(b.cache_ttl, Duration::from_secs(336 * 3600));
        assert_eq!(b.compression, Compression::Gzip);
        assert_eq!(b.compression_level, -1);
        assert_eq!(b.verbosity, LogLevel::Info);
        assert_eq!(b.log_format, LogFormat::Color);
        assert!(b.ignore_var_run);
        assert!(b.cache_run_layers);
        assert!(b.compressed_caching);
        assert!(!b.cache && !b.cache_copy_layers && !b.reproducible && !b.dry_run);
        assert_eq!(b.format, OutputFormat::Text);
        assert!(b.destination.is_empty() && b.build_arg.is_empty());
        assert_eq!(b.target, None);
        // These defaults may come from the environment (KANIKO_DIR,
        // KANIKO_NO_PUSH, …) when the test runs inside a Kaniko image.
        if std::env::var_os("KANIKO_DIR").is_none() {
            assert_eq!(b.kaniko_dir, Path::new("/kaniko"));
        }
        if std::env::vars_os().all(|(k, _)| !k.to_string_lossy().starts_with("KANIKO_")) {
            assert!(b.not_yet_supported().is_empty());
        }
    }

    #[test]
    fn repeatable_flags_do_not_split_on_commas() {
        let b = build(&[
            "--destination=a,b",
            "--label=k=v,w",
            "--label",
            "x=",
            "--insecure-registry=r1,r2",
            "--insecure-registry=r3",
            "--skip-tls-verify-registry=s",
            "--registry-certificate=reg=/ca.crt",
            "--registry-client-cert=reg=/c.crt,/c.key",
            "--registry-mirror=m1",
            "--registry-mirror=m2",
            "--ignore-path=/a,/b",
            "--ignore-path=/c",
        ]);
        assert_eq!(b.destination, ["a,b"]);
        assert_eq!(b.label, [kv("k", "v,w"), kv("x", "")]);
        assert_eq!(b.insecure_registry, ["r1,r2", "r3"]);
        assert_eq!(b.skip_tls_verify_registry, ["s"]);
        assert_eq!(b.registry_certificate, [kv("reg", "/ca.crt")]);
        assert_eq!(b.registry_client_cert, [kv("reg", "/c.crt,/c.key")]);
        assert_eq!(b.registry_mirror, ["m1", "m2"]);
        assert_eq!(b.ignore_path, [PathBuf::from("/a,/b"), PathBuf::from("/c")]);
        assert!(parse(&["kiln", "build", "--label=novalue"]).is_err());
        assert!(parse(&["kiln", "build", "--registry-certificate=reg"]).is_err());
    }

    #[test]
    fn registry_map_splits_on_semicolons() {
        let b = build(&[
            "--registry-map=index.docker.io=m1;gcr.io=m2",
            "--registry-map=q=r",
        ]);
        assert_eq!(
            b.registry_map,
            [
                RegistryMap(vec![kv("index.docker.io", "m1"), kv("gcr.io", "m2")]),
                RegistryMap(vec![kv("q", "r")]),
            ]
        );
        assert!(parse(&["kiln", "build", "--registry-map=a=b;"]).is_err());
        assert_eq!(
            build(&["--registry-map="]).registry_map,
            [RegistryMap(vec![])]
        );
    }

    #[test]
    fn single_valued_flags_last_one_wins() {
        let b = build(&["-c", "/a", "--context=/b", "-f", "x", "--dockerfile", "y"]);
        assert_eq!(b.context, "/b");
        assert_eq!(b.dockerfile, "y");
    }

    #[test]
    fn enumerated_values() {
        assert_eq!(build(&["-v", "debug"]).verbosity, LogLevel::Debug);
        assert_eq!(build(&["--verbosity=WARNING"]).verbosity, LogLevel::Warn);
        assert_eq!(build(&["--log-format=json"]).log_format, LogFormat::Json);
        assert_eq!(
            build(&["--compression=zstd"]).compression,
            Compression::Zstd
        );
        assert_eq!(build(&["--compression-level=-1"]).compression_level, -1);
        assert_eq!(build(&["--compression-level", "9"]).compression_level, 9);
        assert_eq!(
            build(&["--snapshot-mode=time"]).snapshot_mode,
            SnapshotMode::Time
        );
        assert_eq!(build(&["--format=json"]).format, OutputFormat::Json);
        assert_eq!(
            build(&["--image-format=oci"]).image_format,
            Some(ImageFormat::Oci)
        );
        assert!(parse(&["kiln", "build", "--snapshot-mode=fast"]).is_err());
        assert!(parse(&["kiln", "build", "--compression=xz"]).is_err());
        assert!(parse(&["kiln", "build", "--log-format=Color"]).is_err());
    }

    #[test]
    fn git_options() {
        let b = build(&["--git", "branch=main", "--git=single-branch=true"]);
        assert_eq!(b.git, [kv("branch", "main"), kv("single-branch", "true")]);
        assert!(parse(&["kiln", "build", "--git=single-branch=maybe"]).is_err());
        assert!(parse(&["kiln", "build", "--git=main"]).is_err());
    }

    #[test]
    fn build_args() {
        let b = build(&["--build-arg=A=x=y", "--build-arg", "B", "--build-arg=C="]);
        let env = |key: &str| (key == "B").then(|| "from-env".to_owned());
        let resolved: Vec<_> = b
            .build_arg
            .iter()
            .map(|a| (a.key.as_str(), a.resolve(env)))
            .collect();
        assert_eq!(
            resolved,
            [
                ("A", Some("x=y".to_owned())),
                ("B", Some("from-env".to_owned())),
                ("C", Some(String::new()))
            ]
        );
        assert_eq!(b.build_arg[1].resolve(|_| None), None);
        assert!(parse(&["kiln", "build", "--build-arg=", "x"]).is_err());
        assert!(parse(&["kiln", "build", "--build-arg==1"]).is_err());
    }

    #[test]
    fn go_durations() {
        let d = |s| parse_go_duration(s);
        assert_eq!(d("336h"), Ok(Duration::from_secs(336 * 3600)));
        assert_eq!(d("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(d("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(d("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(d(".5m"), Ok(Duration::from_secs(30)));
        assert_eq!(d("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(d("3us"), Ok(Duration::from_micros(3)));
        assert_eq!(d("3µs"), Ok(Duration::from_micros(3)));
        assert_eq!(d("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(d("0"), Ok(Duration::ZERO));
        assert_eq!(d("+2m"), Ok(Duration::from_secs(120)));
        assert_eq!(d("-0s"), Ok(Duration::ZERO));
        for bad in ["", "h", "1", "1d", "1hm", "-1h", ".h", "1..5s", "3000000h"] {
            assert!(d(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            build(&["--cache-ttl=6h"]).cache_ttl,
            Duration::from_secs(6 * 3600)
        );
        assert!(parse(&["kiln", "build", "--cache-ttl=2"]).is_err());
    }

    #[test]
    fn not_yet_supported_names_unsupported_flags_only() {
        let b = build(&[
            "-c",
            "/src",
            "-f",
            "/src/Dockerfile.prod",
            "--build-arg=A=1",
            "--target=final",
            "--platform=linux/arm64",
            "--dry-run",
            "--format=json",
            "-v",
            "debug",
            "--log-format=text",
            "--log-timestamp",
            "--no-push",
            "--skip-unused-stages",
        ]);
        assert_eq!(b.not_yet_supported(), Vec::<&str>::new());

        let b = build(&[
            "--destination=reg/x:1",
            "--reproducible",
            "--cache-ttl=1h",
            "--registry-client-cert=reg=/c,/k",
        ]);
        assert_eq!(
            b.not_yet_supported(),
            ["--registry-client-cert", "--cache-ttl"]
        );
        // Snapshot flags are supported, whatever their value.
        let b = build(&[
            "--reproducible",
            "--single-snapshot",
            "--snapshot-mode=time",
        ]);
        assert!(b.not_yet_supported().is_empty());

        // Setting a flag to its default is not a request for the feature.
        let b = build(&[
            "--cache=false",
            "--ignore-var-run=true",
            "--snapshot-mode=full",
            "--cache-ttl=336h",
        ]);
        assert!(b.not_yet_supported().is_empty());
        // Turning a default-on feature off is.
        let b = build(&["--ignore-var-run=false", "--compressed-caching=false"]);
        assert_eq!(b.not_yet_supported(), ["--compressed-caching"]);

        // Supported flags with values kiln cannot handle yet.
        let b = build(&[
            "--context=git://github.com/x/y#main",
            "-f",
            "https://x/Dockerfile",
        ]);
        assert_eq!(b.not_yet_supported(), ["--dockerfile", "--context"]);
        assert_eq!(b.unsupported_context_scheme(), Some("git://"));
    }

    #[test]
    fn context_schemes() {
        for (ctx, scheme) in [
            ("tar://stdin", "tar://"),
            ("tar:///ctx.tar.gz", "tar://"),
            ("gs://bucket/ctx.tar.gz", "gs://"),
            ("s3://bucket/ctx.tar.gz", "s3://"),
            ("git://github.com/o/r.git#refs/heads/main", "git://"),
            (
                "https://acct.blob.core.windows.net/c/ctx.tar.gz",
                "https://",
            ),
        ] {
            assert_eq!(
                ContextSource::parse(ctx),
                ContextSource::NotSupported(scheme)
            );
            assert_eq!(
                build(&["-c", ctx]).unsupported_context_scheme(),
                Some(scheme)
            );
        }
        assert_eq!(
            ContextSource::parse("/workspace/"),
            ContextSource::LocalDir("/workspace/")
        );
        assert_eq!(
            ContextSource::parse("dir://ctx"),
            ContextSource::LocalDir("ctx")
        );
        assert_eq!(ContextSource::parse("."), ContextSource::LocalDir("."));
        assert_eq!(
            ContextSource::parse("ftp://x"),
            ContextSource::Unknown("ftp://")
        );
        assert_eq!(
            build(&["-c", "ftp://x"]).unsupported_context_scheme(),
            Some("ftp://")
        );
    }

    /// Every flag of `kiln build` is accounted for in `flags_in_use`, and
    /// the supported list names only real flags.
    #[test]
    fn every_flag_is_classified() {
        let cli = Cli::command();
        let build_cmd = cli.find_subcommand("build").expect("build subcommand");
        let mut defined: Vec<String> = build_cmd
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help")
            .map(|l| format!("--{l}"))
            .collect();
        defined.sort();
        let b = build(&[]);
        let mut classified: Vec<String> = b
            .flags_in_use()
            .into_iter()
            .map(|(n, _)| n.to_owned())
            .collect();
        classified.sort();
        assert_eq!(defined, classified);
        for flag in SUPPORTED_FLAGS {
            assert!(defined.iter().any(|d| d == flag), "{flag} is not a flag");
        }
    }

    /// All Kaniko v1.24.0 executor spellings are accepted, hidden ones stay
    /// hidden, and help lines are sentences without a final period.
    #[test]
    fn kaniko_flag_names_and_help() {
        let cli = Cli::command();
        let build_cmd = cli.find_subcommand("build").expect("build subcommand");
        let mut names: Vec<String> = Vec::new();
        for arg in build_cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                names.push(long.to_owned());
            }
            names.extend(
                arg.get_all_aliases()
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_owned),
            );
            if arg.get_long() != Some("help") {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                assert!(!help.is_empty(), "{arg} has no help");
                assert!(!help.ends_with('.'), "{arg}: help ends with a period");
                assert!(
                    help.chars().next().is_some_and(char::is_uppercase),
                    "{arg}: {help}"
                );
                assert!(arg.get_help_heading().is_some(), "{arg} has no heading");
            }
        }
        let kaniko = [
            "dockerfile",
            "context",
            "context-sub-path",
            "bucket",
            "destination",
            "snapshot-mode",
            "custom-platform",
            "build-arg",
            "insecure",
            "skip-tls-verify",
            "insecure-pull",
            "skip-tls-verify-pull",
            "push-retry",
            "push-ignore-immutable-tag-errors",
            "image-fs-extract-retry",
            "image-download-retry",
            "kaniko-dir",
            "tar-path",
            "single-snapshot",
            "reproducible",
            "target",
            "no-push",
            "no-push-cache",
            "cache-repo",
            "cache-dir",
            "digest-file",
            "image-name-with-digest-file",
            "image-name-tag-with-digest-file",
            "oci-layout-path",
            "compression",
            "compression-level",
            "cache",
            "compressed-caching",
            "cleanup",
            "cache-ttl",
            "insecure-registry",
            "skip-tls-verify-registry",
            "registry-certificate",
            "registry-client-cert",
            "registry-map",
            "registry-mirror",
            "skip-default-registry-fallback",
            "ignore-var-run",
            "label",
            "skip-unused-stages",
            "use-new-run",
            "git",
            "cache-copy-layers",
            "cache-run-layers",
            "ignore-path",
            "force-build-metadata",
            "skip-push-permission-check",
            "snapshotMode",
            "customPlatform",
            "tarPath",
            "whitelist-var-run",
            "verbosity",
            "log-format",
            "log-timestamp",
            "force",
            "azure-container-registry-config",
        ];
        assert_eq!(kaniko.len(), 61);
        for name in kaniko {
            assert!(names.iter().any(|n| n == name), "--{name} missing");
        }
        let short = |c| {
            build_cmd
                .get_arguments()
                .find(|a| a.get_short() == Some(c))
                .and_then(|a| a.get_long())
        };
        assert_eq!(short('f'), Some("dockerfile"));
        assert_eq!(short('c'), Some("context"));
        assert_eq!(short('b'), Some("bucket"));
        assert_eq!(short('d'), Some("destination"));
        assert_eq!(short('v'), Some("verbosity"));
        for hidden in ["bucket", "azure-container-registry-config"] {
            let arg = build_cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(hidden))
                .unwrap();
            assert!(arg.is_hide_set(), "--{hidden} should be hidden");
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Exit::Success.code(), 0);
        assert_eq!(Exit::Failure.code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
        assert_eq!(Exit::Dockerfile.code(), 3);
        assert_eq!(Exit::Registry.code(), 4);
        assert_eq!(Exit::PolicyDenied.code(), 5);
        assert_eq!(Exit::NotSupported.code(), 6);
        let err = parse(&["kiln", "build", "--no-such-flag"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(Exit::Usage.code()));
    }
}

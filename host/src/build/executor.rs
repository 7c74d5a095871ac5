//! Runs a build: pull the bases the target needs, lay them out in build
//! roots, apply each stage's instructions, assemble the image and deliver it.
//!
//! The flow: plan, pull every base (and `COPY --from` image) the needed
//! stages use, plan again with their ENV and ONBUILD triggers, then per
//! stage in dependency order: unpack the root lazily (only when a step
//! touches the filesystem), run each step — metadata through
//! [`ConfigBuilder::apply`], WORKDIR/COPY/ADD with an exact change set, RUN
//! in the sandbox with a metadata diff — and write a layer per step (or one
//! per stage with `--single-snapshot`). What kiln cannot do yet stops the
//! build with [`BuildError::NotSupported`] naming the line, never silently
//! skipping it.

use super::config::{Applied, ConfigBuilder, ConfigError};
use super::{InputError, load_inputs};
use crate::dockerfile::ignore::IgnoreMatcher;
use crate::dockerfile::{self, ParseError};
use crate::image::manifest::{self, Layer as ManifestLayer, MediaTypes};
use crate::image::{Digest, ImageConfig, Platform, media};
use crate::output::{self, ImageBlobs, LayerRef, OutputError};
use crate::plan::{self, Base, CopyFrom, Instruction, Plan, PlanError, PlanOptions};
use crate::registry::auth::Keychain;
use crate::registry::{
    ImageToPush, LayerToPush, PulledImage, Registry, RegistryError, RegistryOptions,
    parse_reference,
};
use crate::rootfs::{self, CopyError, CopyRequest, CopySource, Root, RootfsError};
use crate::sandbox::{self, Isolation, MountSpec, SandboxError, SandboxSpec};
use crate::snapshot::{
    EntryMeta, IgnoreSet, Index, LayerCompression, LayerWriter, SnapshotError, write_changes,
    write_layer,
};
use crate::store::{BlobStore, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything a build needs to know, from the command line.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// `--dockerfile` as given.
    pub dockerfile: String,
    /// `--build-arg`s, resolved.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--custom-platform`/`--platform`; the host's when `None`.
    pub platform: Option<Platform>,
    /// `--label`s: they win over LABEL.
    pub labels: BTreeMap<String, String>,
    /// `--destination`s.
    pub destinations: Vec<String>,
    /// `--no-push`.
    pub no_push: bool,
    /// `--tar-path`.
    pub tar_path: Option<PathBuf>,
    /// `--oci-layout-path`.
    pub oci_layout_path: Option<PathBuf>,
    /// `--digest-file`.
    pub digest_file: Option<PathBuf>,
    /// `--image-name-with-digest-file`.
    pub image_name_with_digest_file: Option<PathBuf>,
    /// `--image-name-tag-with-digest-file`.
    pub image_name_tag_with_digest_file: Option<PathBuf>,
    /// `--compression` and `--compression-level`.
    pub compression: LayerCompression,
    /// `--image-format`: OCI (default) or Docker media types.
    pub media_types: MediaTypes,
    /// Registry flags.
    pub registry: RegistryOptions,
    /// Where pulled and built blobs are kept (reused across builds).
    pub store_dir: PathBuf,
    /// A scratch directory for build roots; removed when the build ends.
    pub work_dir: PathBuf,
    /// How RUN is isolated; probed (namespaces, else chroot, else
    /// host-root) when `None`.
    pub isolation: Option<Isolation>,
    /// `--secret id=…,src=…|env=…`: what `RUN --mount=type=secret` reads.
    pub secrets: Vec<Secret>,
    /// `--ignore-path`: never part of a RUN layer.
    pub ignore_paths: Vec<PathBuf>,
    /// `--ignore-var-run`: leave `/var/run` out of RUN layers.
    pub ignore_var_run: bool,
    /// Where the cache mounts (`RUN --mount=type=cache`) keep their content
    /// between builds.
    pub cache_mount_dir: PathBuf,
    /// `--allow security.insecure`: `RUN --security=insecure` may run with
    /// every capability the sandbox has.
    pub allow_insecure: bool,
    /// `--reproducible` (Kaniko): without [`source_date_epoch`](Self::source_date_epoch),
    /// the build's epoch is 0.
    pub reproducible: bool,
    /// `SOURCE_DATE_EPOCH` (BuildKit), seconds since the Unix epoch: every
    /// new layer entry's mtime is clamped to it (`min(mtime, epoch)`), and
    /// the config's `created` and new history entries are this time.
    pub source_date_epoch: Option<u64>,
    /// `--single-snapshot`: one layer per stage, of everything its steps
    /// changed over its base, instead of one per step.
    pub single_snapshot: bool,
}

impl BuildOptions {
    /// The build's epoch: `SOURCE_DATE_EPOCH`, else 0 with
    /// `--reproducible` (as Kaniko), else none (times are the real ones).
    pub fn epoch(&self) -> Option<u64> {
        self.source_date_epoch.or(self.reproducible.then_some(0))
    }
}

/// A build secret given on the command line. Its value never reaches a
/// layer, the history, a log line or an error.
#[derive(Clone)]
pub struct Secret {
    /// The id `RUN --mount=type=secret,id=…` names.
    pub id: String,
    /// Where the value comes from.
    pub source: SecretSource,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Where a secret's value is read.
#[derive(Clone)]
pub enum SecretSource {
    /// A file on the host.
    File(PathBuf),
    /// An environment variable of kiln's process.
    Env(String),
}

impl Secret {
    /// Parses `id=x,src=path`, `id=x,env=VAR`, `id=x` (env var `x`), as
    /// BuildKit's `--secret` does.
    pub fn parse(text: &str) -> Result<Secret, String> {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        let mut kind = None;
        for field in text.split(',') {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| format!("invalid --secret field {field:?}: expected key=value"))?;
            match k {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" => kind = Some(v.to_string()),
                other => {
                    return Err(format!(
                        "invalid --secret key {other:?}: expected id, src, env or type"
                    ));
                }
            }
        }
        let id = id
            .or_else(|| {
                src.as_deref()
                    .and_then(|p| Path::new(p).file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .ok_or("--secret needs id=<id>")?;
        let source = match (src, env, kind.as_deref()) {
            (Some(p), None, None | Some("file")) => SecretSource::File(PathBuf::from(p)),
            (None, Some(e), None | Some("env")) => SecretSource::Env(e),
            (None, None, Some("env")) => SecretSource::Env(id.clone()),
            (None, None, _) => SecretSource::Env(id.clone()),
            _ => {
                return Err(format!(
                    "--secret id={id}: give either src=<file> or env=<variable>"
                ));
            }
        };
        Ok(Secret { id, source })
    }
}

/// What a finished build produced.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The image manifest digest.
    pub digest: Digest,
    /// The manifest media type.
    pub manifest_media_type: String,
    /// Destinations pushed to.
    pub pushed: Vec<String>,
    /// Layers in the image (base layers included).
    pub layers: usize,
    /// The plan that was built.
    pub plan: Plan,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile or context could not be read.
    #[error(transparent)]
    Inputs(#[from] InputError),
    /// The Dockerfile is invalid.
    #[error(transparent)]
    Dockerfile(#[from] ParseError),
    /// The plan could not be made.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(Box<RegistryError>),
    /// A destination is not a valid image reference.
    #[error("invalid --destination {destination:?}")]
    Destination {
        /// As given.
        destination: String,
        /// Why.
        #[source]
        source: Box<RegistryError>,
    },
    /// Something the build needs is not built into kiln yet.
    #[error("{file}:{line}: {what} is not supported yet")]
    NotSupported {
        /// The Dockerfile.
        file: String,
        /// The instruction's line.
        line: usize,
        /// What.
        what: String,
    },
    /// The ONBUILD triggers in the plan are not the ones the base's config
    /// carries (an internal inconsistency; never silently skipped).
    #[error("{file}:{line}: the ONBUILD triggers of the base of stage {stage} were not planned")]
    Triggers {
        /// The Dockerfile.
        file: String,
        /// The stage's FROM line.
        line: usize,
        /// The stage.
        stage: String,
    },
    /// The image config could not be updated.
    #[error("{file}:{line}: {source}")]
    Config {
        /// The Dockerfile.
        file: String,
        /// The instruction's line.
        line: usize,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// A base image's manifest and config disagree, or a digest is malformed.
    #[error("image {reference} is inconsistent: {reason}")]
    InvalidImage {
        /// The image.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The base image config is not valid JSON of an image config.
    #[error("base image {reference} has an invalid config")]
    BaseConfig {
        /// The image.
        reference: String,
        /// Why.
        #[source]
        source: crate::image::config::ConfigError,
    },
    /// Laying out or changing a build root failed.
    #[error("build root of stage {stage}")]
    Rootfs {
        /// The stage.
        stage: String,
        /// Why.
        #[source]
        source: RootfsError,
    },
    /// A COPY or ADD failed.
    #[error("{file}:{line}: {keyword} failed")]
    Copy {
        /// The Dockerfile.
        file: String,
        /// The instruction's line.
        line: usize,
        /// COPY or ADD.
        keyword: &'static str,
        /// Why.
        #[source]
        source: Box<CopyError>,
    },
    /// An ADD URL or Git source could not be fetched.
    #[error("{file}:{line}: ADD failed")]
    Fetch {
        /// The Dockerfile.
        file: String,
        /// The instruction's line.
        line: usize,
        /// Why.
        #[source]
        source: Box<super::fetch::FetchError>,
    },
    /// The build context could not be opened.
    #[error("cannot open the build context {}", path.display())]
    Context {
        /// The context directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing a layer failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The blob store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The manifest could not be built.
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    /// Writing an output failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The scratch directory could not be made.
    #[error("cannot create the work directory {}", path.display())]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The Dockerfile asks for a privilege the command line did not grant.
    #[error(
        "{file}:{line}: {what} needs the {entitlement} entitlement: pass --allow {entitlement}"
    )]
    Entitlement {
        /// The Dockerfile.
        file: String,
        /// The instruction's line.
        line: usize,
        /// What asked for it.
        what: &'static str,
        /// The entitlement.
        entitlement: &'static str,
    },
    /// A RUN step exited non-zero.
    #[error("{file}:{line}: RUN {command} exited with code {code}{}", tail(.last_lines))]
    RunFailed {
        /// The Dockerfile.
        file: String,
        /// The instruction's line.
        line: usize,
        /// The command, shortened.
        command: String,
        /// Its exit code.
        code: i32,
        /// The last lines it printed.
        last_lines: Vec<String>,
    },
    /// A RUN step could not be started.
    #[error("{file}:{line}: RUN could not run")]
    Sandbox {
        /// The Dockerfile.
        file: String,
        /// The instruction's line.
        line: usize,
        /// Why.
        #[source]
        source: Box<SandboxError>,
    },
    /// A RUN mount could not be prepared.
    #[error("{file}:{line}: RUN --mount: {reason}")]
    Mount {
        /// The Dockerfile.
        file: String,
        /// The instruction's line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A blocking task panicked or was cancelled.
    #[error("internal error: a build task stopped unexpectedly")]
    Join(#[from] tokio::task::JoinError),
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; last output:\n  {}", lines.join("\n  "))
    }
}

impl From<RegistryError> for BuildError {
    fn from(e: RegistryError) -> Self {
        BuildError::Registry(Box::new(e))
    }
}

/// A stage's result: its config so far, its layers and its build root.
struct StageResult {
    config: ConfigBuilder,
    layers: Vec<StageLayer>,
    root: Option<Arc<Root>>,
    /// The root's metadata after the last RUN, when nothing changed it since.
    index: Option<Index>,
}

/// A layer of a stage's image, with where it can be mounted from on push.
#[derive(Debug, Clone)]
struct StageLayer {
    digest: Digest,
    diff_id: Digest,
    size: u64,
    media_type: String,
    mount_from: Option<(String, String)>,
}

impl From<crate::snapshot::Layer> for StageLayer {
    fn from(layer: crate::snapshot::Layer) -> Self {
        StageLayer {
            digest: layer.digest,
            diff_id: layer.diff_id,
            size: layer.size,
            media_type: layer.media_type.to_string(),
            mount_from: None,
        }
    }
}

/// Removes the work directory when the build ends, however it ends.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a build.
///
/// Must run on a multi-threaded tokio runtime: filesystem work (unpacking,
/// copying, snapshots, the sandbox) runs in `block_in_place` or
/// `spawn_blocking` beside the network transfers.
///
/// # Ambient Authority
///
/// Reads the context and Dockerfile, writes the store, the work directory
/// and the outputs at the paths in `opts`.
pub async fn run(opts: &BuildOptions) -> Result<BuildOutcome, BuildError> {
    let inputs = load_inputs(&opts.context, &opts.dockerfile)?;
    let file = inputs.dockerfile_path.display().to_string();
    let df = dockerfile::parse(&inputs.dockerfile, &file)?;
    let mut plan_opts = PlanOptions::new();
    plan_opts.build_args = opts.build_args.clone();
    plan_opts.target = opts.target.clone();
    if let Some(p) = &opts.platform {
        plan_opts.target_platform = p.clone();
    }
    let first = plan::plan(&df, &plan_opts)?;
    for w in &first.warnings {
        log_warning(w, &file);
    }
    check_supported(&first, &file, opts.allow_insecure)?;

    let store = Arc::new(tokio::task::block_in_place(|| {
        BlobStore::open(&opts.store_dir)
    })?);
    let registry = Registry::new(opts.registry.clone(), Keychain::from_env());

    // Pull the bases the needed stages start from, then plan again with
    // their ENV and ONBUILD triggers; a trigger's COPY --from can make
    // another stage needed, whose base is pulled in the next round.
    let mut pulled: HashMap<(String, String), Arc<PulledImage>> = HashMap::new();
    let mut image_configs: HashMap<(String, String), ImageConfig> = HashMap::new();
    let mut plan = first.clone();
    while pull_bases(&plan, &registry, &store, &mut pulled).await? > 0 {
        for (key, image) in &pulled {
            if image_configs.contains_key(key) {
                continue;
            }
            let config = ImageConfig::from_bytes(&image.config_bytes).map_err(|source| {
                BuildError::BaseConfig {
                    reference: image.reference.to_string(),
                    source,
                }
            })?;
            plan_opts
                .image_env
                .insert(key.0.clone(), config.env_pairs());
            plan_opts
                .image_triggers
                .insert(key.0.clone(), config.config.on_build.clone());
            image_configs.insert(key.clone(), config);
        }
        plan = plan::plan(&df, &plan_opts)?;
    }
    check_supported(&plan, &file, opts.allow_insecure)?;
    // What only the bases' ENV and triggers revealed.
    for w in plan.warnings.iter().filter(|w| !first.warnings.contains(w)) {
        log_warning(w, &file);
    }

    // Images COPY --from and RUN --mount=from read, for the target platform.
    let mut copy_images: HashMap<String, Arc<PulledImage>> = HashMap::new();
    for &i in &plan.order {
        for step in &plan.stages[i].steps {
            let refs: Vec<&String> = match &step.instruction {
                Instruction::Copy(plan::Copy {
                    from: Some(CopyFrom::Image(r)),
                    ..
                }) => vec![r],
                Instruction::Run(run) => run
                    .mounts
                    .iter()
                    .filter_map(|m| m.from.as_ref())
                    .filter(|f| plan.stage_index(f).is_none())
                    .collect(),
                _ => Vec::new(),
            };
            for r in refs {
                if copy_images.contains_key(r) {
                    continue;
                }
                let reference = parse_reference(r)?;
                tracing::info!("pulling {reference} for COPY --from / RUN --mount=from");
                let image = registry
                    .pull(&reference, &plan.target_platform, &store)
                    .await?;
                copy_images.insert(r.clone(), Arc::new(image));
            }
        }
    }

    std::fs::create_dir_all(&opts.work_dir).map_err(|source| BuildError::WorkDir {
        path: opts.work_dir.clone(),
        source,
    })?;
    let _cleanup = WorkDir(opts.work_dir.clone());

    let context_dir =
        cap_std::fs::Dir::open_ambient_dir(&inputs.context, cap_std::ambient_authority()).map_err(
            |source| BuildError::Context {
                path: inputs.context.clone(),
                source,
            },
        )?;
    let mut image_roots: HashMap<String, Arc<Root>> = HashMap::new();
    let needs_run = plan.order.iter().any(|&i| {
        plan.stages[i]
            .steps
            .iter()
            .any(|s| matches!(s.instruction, Instruction::Run(_)))
    });
    let isolation = match opts.isolation {
        Some(i) => i,
        None if needs_run => {
            let i = tokio::task::block_in_place(sandbox::probe);
            tracing::info!("RUN isolation: {i} (probed)");
            i
        }
        None => Isolation::Namespaces,
    };
    // Proxy build args reach RUN without an ARG, as in BuildKit.
    let proxies: Vec<(String, String)> = plan::PROXY_ARGS
        .iter()
        .filter_map(|k| opts.build_args.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();

    let mut results: HashMap<usize, StageResult> = HashMap::new();
    for &i in &plan.order {
        let stage = &plan.stages[i];
        let platform = stage
            .platform
            .clone()
            .unwrap_or_else(|| plan.target_platform.clone());
        let label = stage.label();
        let (mut config, layers) = match &stage.base {
            Base::Scratch => (ConfigBuilder::scratch(&plan.target_platform), Vec::new()),
            Base::Image(r) => {
                let key = (r.clone(), platform.to_string());
                let image = &pulled[&key];
                let config = ConfigBuilder::from_image(&image_configs[&key]);
                (config, base_layers(image, &image_configs[&key])?)
            }
            Base::Stage(b) => {
                let parent = &results[b];
                (
                    ConfigBuilder::from_stage(&parent.config),
                    parent.layers.clone(),
                )
            }
        };
        if opts.platform.is_some() {
            config = config.with_target_platform(&plan.target_platform);
        }
        check_triggers_planned(stage, &config, &file)?;
        let mut result = StageResult {
            config,
            layers,
            root: None,
            index: None,
        };
        let snapshot = !opts.single_snapshot;
        let mut single = StageSnapshot::default();
        let changes_files = |s: &plan::Step| {
            matches!(
                s.instruction,
                Instruction::Run(_) | Instruction::Copy(_) | Instruction::Workdir { .. }
            )
        };
        if opts.single_snapshot && stage.steps.iter().any(changes_files) {
            let root_path = opts.work_dir.join(format!("stage-{i}"));
            single
                .start(&mut result, &store, &root_path, &label, opts)
                .await?;
        }
        for step in &stage.steps {
            match result
                .config
                .apply(&step.instruction)
                .map_err(|source| BuildError::Config {
                    file: file.clone(),
                    line: step.line,
                    source,
                })? {
                Applied::Done => {}
                Applied::Filesystem { created_by } => match &step.instruction {
                    Instruction::Run(run) => {
                        // Roots that RUN --mount=from=<stage> reads.
                        let mut from_roots: HashMap<String, Arc<Root>> = HashMap::new();
                        for m in &run.mounts {
                            let Some(from) = &m.from else { continue };
                            let root = match plan.stage_index(from) {
                                Some(j) => {
                                    let parent =
                                        results.get_mut(&j).expect("stages are built in order");
                                    let path = opts.work_dir.join(format!("stage-{j}"));
                                    root_of(parent, &store, &path, &plan.stages[j].label()).await?
                                }
                                None => {
                                    image_root(&mut image_roots, &copy_images, from, &store, opts)
                                        .await?
                                }
                            };
                            from_roots.insert(from.clone(), root);
                        }
                        let root_path = opts.work_dir.join(format!("stage-{i}"));
                        let layer = run_step(
                            &mut result,
                            RunJob {
                                run,
                                file: &file,
                                line: step.line,
                                stage: &label,
                                context: &inputs.context,
                                from_roots: &from_roots,
                                isolation,
                                proxies: &proxies,
                                snapshot,
                            },
                            &store,
                            &root_path,
                            opts,
                        )
                        .await?;
                        let made = layer.is_some();
                        if let Some(l) = layer {
                            result.layers.push(l);
                        }
                        single.add_history(&mut result.config, created_by, made);
                    }
                    Instruction::Copy(copy) => {
                        let source_root = match &copy.from {
                            None => None,
                            Some(CopyFrom::Stage(j)) => {
                                let parent = results.get_mut(j).expect("stages are built in order");
                                let path = opts.work_dir.join(format!("stage-{j}"));
                                Some(
                                    root_of(parent, &store, &path, &plan.stages[*j].label())
                                        .await?,
                                )
                            }
                            Some(CopyFrom::Image(r)) => Some(
                                image_root(&mut image_roots, &copy_images, r, &store, opts).await?,
                            ),
                        };
                        let root_path = opts.work_dir.join(format!("stage-{i}"));
                        let layer = copy_layer(
                            &mut result,
                            CopyJob {
                                copy,
                                source_root,
                                context: &context_dir,
                                ignore: &inputs.ignore,
                                file: &file,
                                line: step.line,
                                snapshot,
                            },
                            &store,
                            &root_path,
                            &label,
                            opts,
                        )
                        .await?;
                        let made = layer.is_some();
                        if let Some(l) = layer {
                            result.layers.push(l);
                        }
                        result.index = None;
                        single.add_history(&mut result.config, created_by, made);
                    }
                    Instruction::Workdir { .. } => {
                        let layer = workdir_layer(
                            &mut result,
                            &store,
                            &opts.work_dir.join(format!("stage-{i}")),
                            &label,
                            opts,
                            snapshot,
                        )
                        .await?;
                        let made = layer.is_some();
                        if let Some(l) = layer {
                            result.layers.push(l);
                        }
                        result.index = None;
                        single.add_history(&mut result.config, created_by, made);
                    }
                    other => {
                        return Err(BuildError::NotSupported {
                            file: file.clone(),
                            line: step.line,
                            what: other.keyword().to_string(),
                        });
                    }
                },
            }
        }
        single.finish(&mut result, &store, opts)?;
        results.insert(i, result);
    }

    let target = results
        .remove(&plan.target)
        .expect("the target stage is built last");
    let image = assemble(target, &store, opts)?;
    deliver(&image, &store, &registry, opts, plan).await
}

fn log_warning(w: &plan::Warning, file: &str) {
    tracing::warn!("{}{}", w.location(file), w.text());
}

/// Pulls the base images of the stages `plan` needs that are not pulled
/// yet, for each stage's platform; returns how many it pulled.
async fn pull_bases(
    plan: &Plan,
    registry: &Registry,
    store: &BlobStore,
    pulled: &mut HashMap<(String, String), Arc<PulledImage>>,
) -> Result<usize, BuildError> {
    let mut count = 0;
    for &i in &plan.order {
        let stage = &plan.stages[i];
        if let Base::Image(r) = &stage.base {
            let platform = stage
                .platform
                .clone()
                .unwrap_or_else(|| plan.target_platform.clone());
            let key = (r.clone(), platform.to_string());
            if pulled.contains_key(&key) {
                continue;
            }
            let reference = parse_reference(r)?;
            tracing::info!("pulling {reference} for {platform}");
            let image = registry.pull(&reference, &platform, store).await?;
            tracing::info!("pulled {} as {}", image.reference, image.digest);
            pulled.insert(key, Arc::new(image));
            count += 1;
        }
    }
    Ok(count)
}

/// The base's ONBUILD triggers run as the stage's first steps, planned
/// from the same config: a plan made without them would skip them
/// silently, so a mismatch stops the build.
fn check_triggers_planned(
    stage: &plan::Stage,
    config: &ConfigBuilder,
    file: &str,
) -> Result<(), BuildError> {
    let planned: Vec<&str> = stage
        .steps
        .iter()
        .filter(|s| s.onbuild)
        .map(|s| s.source.as_str())
        .collect();
    if planned == config.base_onbuild_triggers() {
        Ok(())
    } else {
        Err(BuildError::Triggers {
            file: file.to_string(),
            line: stage.line,
            stage: stage.label(),
        })
    }
}

/// The unpacked root of an image `COPY --from` or `RUN --mount=from` reads
/// (pulled before the stages run), unpacked once per build.
async fn image_root(
    roots: &mut HashMap<String, Arc<Root>>,
    images: &HashMap<String, Arc<PulledImage>>,
    reference: &str,
    store: &Arc<BlobStore>,
    opts: &BuildOptions,
) -> Result<Arc<Root>, BuildError> {
    if let Some(root) = roots.get(reference) {
        return Ok(root.clone());
    }
    let image = &images[reference];
    let config =
        ImageConfig::from_bytes(&image.config_bytes).map_err(|source| BuildError::BaseConfig {
            reference: reference.to_string(),
            source,
        })?;
    let mut holder = StageResult {
        config: ConfigBuilder::from_image(&config),
        layers: base_layers(image, &config)?,
        root: None,
        index: None,
    };
    let path = opts.work_dir.join(format!("image-{}", roots.len()));
    let root = root_of(&mut holder, store, &path, reference).await?;
    roots.insert(reference.to_string(), root.clone());
    Ok(root)
}

/// Fails early, naming the line, when a needed stage uses what kiln cannot
/// run yet.
fn check_supported(plan: &Plan, file: &str, allow_insecure: bool) -> Result<(), BuildError> {
    for &i in &plan.order {
        for step in &plan.stages[i].steps {
            if let Instruction::Run(run) = &step.instruction
                && run.security == plan::values::Security::Insecure
                && !allow_insecure
            {
                return Err(BuildError::Entitlement {
                    file: file.to_string(),
                    line: step.line,
                    what: "RUN --security=insecure",
                    entitlement: "security.insecure",
                });
            }
        }
    }
    Ok(())
}

fn base_layers(image: &PulledImage, config: &ImageConfig) -> Result<Vec<StageLayer>, BuildError> {
    let diff_ids = config.diff_ids();
    if diff_ids.len() != image.layers.len() {
        return Err(BuildError::InvalidImage {
            reference: image.reference.to_string(),
            reason: format!(
                "the config lists {} diff_ids for {} layers",
                diff_ids.len(),
                image.layers.len()
            ),
        });
    }
    let repository = (
        image.source.resolve_registry().to_string(),
        image.source.repository().to_string(),
    );
    image
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            let digest: Digest =
                d.digest()
                    .to_string()
                    .parse()
                    .map_err(|_| BuildError::InvalidImage {
                        reference: image.reference.to_string(),
                        reason: format!("layer digest {} is not valid", d.digest()),
                    })?;
            Ok(StageLayer {
                digest,
                diff_id: diff_id.clone(),
                size: d.size(),
                media_type: d.media_type().to_string(),
                mount_from: Some(repository.clone()),
            })
        })
        .collect()
}

/// The stage's build root, unpacked from its layers the first time it is
/// needed.
async fn root_of(
    result: &mut StageResult,
    store: &Arc<BlobStore>,
    path: &Path,
    stage: &str,
) -> Result<Arc<Root>, BuildError> {
    if let Some(root) = &result.root {
        return Ok(root.clone());
    }
    let layers = result.layers.clone();
    let store = store.clone();
    let path = path.to_path_buf();
    let stage_name = stage.to_string();
    let root = tokio::task::spawn_blocking(move || -> Result<Root, BuildError> {
        let rootfs_err = |source| BuildError::Rootfs {
            stage: stage_name.clone(),
            source,
        };
        let root = Root::create(&path).map_err(rootfs_err)?;
        for l in &layers {
            let compression =
                media::layer_compression(&l.media_type).unwrap_or(media::Compression::Gzip);
            let blob = store.open_blob(&l.digest)?;
            let report = root
                .apply_layer(std::io::BufReader::new(blob), compression)
                .map_err(rootfs_err)?;
            for line in report.skipped {
                tracing::warn!("layer {}: {line}", l.digest.short());
            }
        }
        Ok(root)
    })
    .await??;
    let root = Arc::new(root);
    result.root = Some(root.clone());
    Ok(root)
}

/// WORKDIR: creates the directory (and missing parents) owned by the
/// current USER, and makes a layer of what it created — none when it
/// existed, as BuildKit's diff would be empty. Without `snapshot`
/// (`--single-snapshot`) it only creates the directory.
async fn workdir_layer(
    result: &mut StageResult,
    store: &Arc<BlobStore>,
    root_path: &Path,
    stage: &str,
    opts: &BuildOptions,
    snapshot: bool,
) -> Result<Option<StageLayer>, BuildError> {
    let root = root_of(result, store, root_path, stage).await?;
    let dir = result.config.working_dir().to_string();
    let user = result.config.user().to_string();
    let store = store.clone();
    let compression = opts.compression;
    let media_types = opts.media_types;
    let epoch = opts.epoch();
    let stage = stage.to_string();
    tokio::task::spawn_blocking(move || -> Result<Option<StageLayer>, BuildError> {
        let rootfs_err = |source| BuildError::Rootfs {
            stage: stage.clone(),
            source,
        };
        let owner = if user.is_empty() {
            None
        } else {
            let (uid, gid, _) = rootfs::lookup_user(&root, &user).map_err(rootfs_err)?;
            Some((uid, gid))
        };
        let created = root.mkdir_all(&dir, owner).map_err(rootfs_err)?;
        if created.is_empty() || !snapshot {
            return Ok(None);
        }
        let mtime = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut writer = new_layer(&store, compression, media_types, epoch)?;
        for path in &created {
            let mut meta = EntryMeta::with_mode(0o755);
            meta.mtime = mtime;
            if let Some((uid, gid)) = owner {
                meta.uid = u64::from(uid);
                meta.gid = u64::from(gid);
            }
            writer.add_dir(path, &meta)?;
        }
        Ok(Some(writer.finish()?.into()))
    })
    .await?
}

/// One RUN to execute and what it may read.
struct RunJob<'a> {
    run: &'a plan::Run,
    file: &'a str,
    line: usize,
    stage: &'a str,
    context: &'a Path,
    from_roots: &'a HashMap<String, Arc<Root>>,
    isolation: Isolation,
    proxies: &'a [(String, String)],
    /// Whether the step gets its own layer (not with `--single-snapshot`).
    snapshot: bool,
}

/// RUN: prepares the mounts, runs the command in the sandbox, and makes a
/// layer of what changed in the root (none when nothing did).
async fn run_step(
    result: &mut StageResult,
    job: RunJob<'_>,
    store: &Arc<BlobStore>,
    root_path: &Path,
    opts: &BuildOptions,
) -> Result<Option<StageLayer>, BuildError> {
    let root = root_of(result, store, root_path, job.stage).await?;
    let rootfs_err = |source| BuildError::Rootfs {
        stage: job.stage.to_string(),
        source,
    };
    let mount_err = |reason: String| BuildError::Mount {
        file: job.file.to_string(),
        line: job.line,
        reason,
    };
    let user = result.config.user().to_string();
    let (uid, gid, groups) = if user.is_empty() {
        (0, 0, Vec::new())
    } else {
        rootfs::lookup_user(&root, &user).map_err(rootfs_err)?
    };
    let mut args = result.config.run_args(job.run);
    let mut env: Vec<(String, String)> = result.config.run_env().to_vec();
    for (k, v) in job.proxies {
        if !env.iter().any(|(e, _)| e == k) {
            env.push((k.clone(), v.clone()));
        }
    }
    let cwd = match result.config.working_dir() {
        "" => "/".to_string(),
        wd => wd.to_string(),
    };
    // Files only this step sees: secrets, heredoc scripts.
    let private = opts.work_dir.join(format!("run-{}", job.line));
    std::fs::create_dir_all(&private).map_err(|source| BuildError::WorkDir {
        path: private.clone(),
        source,
    })?;
    let mut mounts = Vec::new();
    let mut ssh_index = 0;
    for (n, m) in job.run.mounts.iter().enumerate() {
        use plan::values::MountType;
        let target = |default: &str| -> Result<String, BuildError> {
            m.resolved_target(&cwd)
                .map(|t| if t.is_empty() { default.to_string() } else { t })
                .map_err(|e| mount_err(e.to_string()))
        };
        match m.mount_type {
            MountType::Tmpfs => mounts.push(MountSpec::Tmpfs {
                target: target("")?,
                size: m.size_limit,
            }),
            MountType::Cache => {
                let id = m.id.clone().unwrap_or_default();
                let dir = opts
                    .cache_mount_dir
                    .join(crate::image::Digest::sha256_of(id.as_bytes()).short());
                std::fs::create_dir_all(&dir).map_err(|e| {
                    mount_err(format!(
                        "cannot create the cache directory {}: {e}",
                        dir.display()
                    ))
                })?;
                if m.uid.is_some() || m.gid.is_some() || m.mode.is_some() {
                    let _ = rustix::fs::chown(
                        &dir,
                        m.uid.map(rustix::fs::Uid::from_raw),
                        m.gid.map(rustix::fs::Gid::from_raw),
                    );
                    let _ = rustix::fs::chmod(
                        &dir,
                        rustix::fs::Mode::from_raw_mode(m.mode.unwrap_or(0o755)),
                    );
                }
                mounts.push(MountSpec::Bind {
                    source: dir,
                    target: target("")?,
                    read_only: m.read_only,
                });
            }
            MountType::Bind => {
                let relative = m.source.as_deref().unwrap_or(".");
                let mut source = match &m.from {
                    None => contained(job.context, relative).map_err(mount_err)?,
                    // A stage or image root: its symlinks resolve inside it,
                    // as they would for a step running there.
                    Some(f) => {
                        let root = &job.from_roots[f];
                        let inside = root.resolve(relative).map_err(|e| {
                            mount_err(format!("bind source {relative:?} in {f}: {e}"))
                        })?;
                        root.path().join(inside)
                    }
                };
                if !m.read_only {
                    // `rw`: the step may write, and its writes are thrown
                    // away (BuildKit): it gets a private copy.
                    let copy = private.join(format!("bind-{n}"));
                    copy_tree(&source, &copy).map_err(|e| {
                        mount_err(format!("cannot copy the bind source for rw: {e}"))
                    })?;
                    source = copy;
                }
                mounts.push(MountSpec::Bind {
                    source,
                    target: target("")?,
                    read_only: m.read_only,
                });
            }
            MountType::Secret => {
                let id = m.id.clone().unwrap_or_default();
                let Some(secret) = opts.secrets.iter().find(|s| s.id == id) else {
                    if m.required {
                        return Err(mount_err(format!(
                            "secret {id:?} is required but was not given: pass --secret id={id},src=<file>"
                        )));
                    }
                    continue;
                };
                let value = match &secret.source {
                    SecretSource::File(p) => std::fs::read(p).map_err(|e| {
                        mount_err(format!(
                            "cannot read secret {id:?} from {}: {e}",
                            p.display()
                        ))
                    })?,
                    SecretSource::Env(var) => std::env::var_os(var)
                        .map(|v| v.into_encoded_bytes())
                        .ok_or_else(|| {
                            mount_err(format!(
                                "secret {id:?}: environment variable {var} is not set"
                            ))
                        })?,
                };
                if let Some(var) = &m.env {
                    env.push((var.clone(), String::from_utf8_lossy(&value).into_owned()));
                }
                if let Some(t) = &m.target {
                    let file = private.join(format!("secret-{n}"));
                    write_private(
                        &file,
                        &value,
                        m.file_mode().unwrap_or(0o400),
                        m.uid.unwrap_or(uid),
                        m.gid.unwrap_or(gid),
                    )
                    .map_err(|e| mount_err(format!("cannot prepare secret {id:?}: {e}")))?;
                    let target = if t.starts_with('/') {
                        t.clone()
                    } else {
                        format!("{cwd}/{t}")
                    };
                    mounts.push(MountSpec::Bind {
                        source: file,
                        target,
                        read_only: true,
                    });
                }
            }
            MountType::Ssh => {
                let Some(sock) = std::env::var_os("SSH_AUTH_SOCK") else {
                    if m.required {
                        return Err(mount_err(
                            "an ssh mount is required but SSH_AUTH_SOCK is not set".to_string(),
                        ));
                    }
                    continue;
                };
                let target = m
                    .target
                    .clone()
                    .unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{ssh_index}"));
                ssh_index += 1;
                env.push(("SSH_AUTH_SOCK".to_string(), target.clone()));
                mounts.push(MountSpec::Bind {
                    source: PathBuf::from(sock),
                    target,
                    read_only: true,
                });
            }
        }
    }
    // A lone heredoc starting with #! runs as a file at /dev/pipes/<name>.
    if let Some(script) = args.last().and_then(|a| a.strip_prefix("/dev/pipes/"))
        && let Some(doc) = job.run.heredocs.iter().find(|d| d.name == script)
    {
        let file = private.join(format!("pipe-{script}"));
        write_private(&file, doc.content.as_bytes(), 0o755, uid, gid)
            .map_err(|e| mount_err(format!("cannot prepare the heredoc script: {e}")))?;
        mounts.push(MountSpec::Bind {
            source: file,
            target: format!("/dev/pipes/{script}"),
            read_only: true,
        });
    }
    if !mounts.is_empty() && job.isolation != Isolation::Namespaces {
        return Err(BuildError::NotSupported {
            file: job.file.to_string(),
            line: job.line,
            what: format!("RUN mounts with --isolation={}", job.isolation),
        });
    }
    if args.is_empty() {
        args.push("/bin/sh".into());
    }

    let ignore = ignore_set(opts);
    // With --single-snapshot the stage's end takes the one snapshot.
    let before = if job.snapshot {
        Some(match result.index.take() {
            Some(index) => index,
            None => tokio::task::block_in_place(|| Index::scan(&root, &ignore))?,
        })
    } else {
        None
    };
    let mut spec = SandboxSpec::new(root.path(), args.clone());
    spec.env = env;
    spec.cwd = cwd;
    spec.uid = uid;
    spec.gid = gid;
    spec.groups = groups;
    spec.network = job.run.network;
    spec.mounts = mounts.clone();
    spec.isolation = job.isolation;
    spec.insecure = job.run.security == plan::values::Security::Insecure;
    let prefix = format!("[{} {}]", job.stage, job.line);
    let outcome = tokio::task::block_in_place(|| {
        sandbox::run(&spec, &mut |line| tracing::info!("{prefix} {}", line.text))
    });
    let _ = std::fs::remove_dir_all(&private);
    let outcome = outcome.map_err(|e| match e {
        SandboxError::Failed { code, last_lines } => BuildError::RunFailed {
            file: job.file.to_string(),
            line: job.line,
            command: shorten(&args.join(" ")),
            code,
            last_lines,
        },
        other => BuildError::Sandbox {
            file: job.file.to_string(),
            line: job.line,
            source: Box::new(other),
        },
    })?;
    let Some(before) = before else {
        return Ok(None);
    };
    let mut after_ignore = ignore.clone();
    for p in outcome
        .placeholders
        .iter()
        .map(String::as_str)
        .chain(mounts.iter().map(MountSpec::target))
    {
        after_ignore.add_path(p);
    }
    let (after, layer) = tokio::task::block_in_place(|| -> Result<_, BuildError> {
        let after = Index::rescan(&root, &after_ignore, &before)?;
        let changes = crate::snapshot::diff(&before, &after);
        if changes.is_empty() {
            return Ok((after, None));
        }
        let mut writer = new_layer(store, opts.compression, opts.media_types, opts.epoch())?;
        write_layer(&root, &after, &changes, &mut writer)?;
        Ok((after, Some(writer.finish()?)))
    })?;
    result.index = Some(after);
    Ok(layer.map(StageLayer::from))
}

/// A writer for a new layer of this build, with mtimes clamped to the
/// build's epoch when there is one.
fn new_layer<'s>(
    store: &'s BlobStore,
    compression: LayerCompression,
    media_types: MediaTypes,
    epoch: Option<u64>,
) -> Result<LayerWriter<'s>, SnapshotError> {
    let mut writer = LayerWriter::new(store, compression, media_types)?;
    if let Some(epoch) = epoch {
        writer.clamp_mtime(epoch);
    }
    Ok(writer)
}

/// What a snapshot of a RUN step (or of a whole stage) never carries:
/// `/proc`, `/sys`, `/dev`, `/var/run` unless `--ignore-var-run=false`,
/// and the `--ignore-path`s.
fn ignore_set(opts: &BuildOptions) -> IgnoreSet {
    let mut ignore = IgnoreSet::defaults(opts.ignore_var_run);
    for p in &opts.ignore_paths {
        ignore.add_path(p);
    }
    ignore
}

/// `base/relative` in the build context, refusing to leave it (lexically
/// and through symlinks).
fn contained(base: &Path, relative: &str) -> Result<PathBuf, String> {
    let base = base
        .canonicalize()
        .map_err(|e| format!("cannot open {}: {e}", base.display()))?;
    let joined = base.join(relative.trim_start_matches('/'));
    let real = joined
        .canonicalize()
        .map_err(|e| format!("bind source {relative:?} not found: {e}"))?;
    if real.starts_with(&base) {
        Ok(real)
    } else {
        Err(format!(
            "bind source {relative:?} leaves its context or stage"
        ))
    }
}

/// Copies a host file or directory tree (symlinks as symlinks, modes and
/// owners kept) for a writable bind mount whose writes are discarded.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let meta = std::fs::symlink_metadata(from)?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
        return Ok(());
    }
    if ft.is_dir() {
        std::fs::create_dir(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if ft.is_file() {
        std::fs::copy(from, to)?;
    } else {
        // Devices, fifos and sockets are not copied into a scratch mount.
        return Ok(());
    }
    // Owner first: chown clears set-id bits, which the mode then restores.
    let _ = rustix::fs::chown(
        to,
        Some(rustix::fs::Uid::from_raw(meta.uid())),
        Some(rustix::fs::Gid::from_raw(meta.gid())),
    );
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    Ok(())
}

/// Writes a file only this step reads (a secret or a script), with its
/// mode and owner set before anyone can open it.
fn write_private(path: &Path, bytes: &[u8], mode: u32, uid: u32, gid: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    let _ = rustix::fs::fchown(
        &f,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    );
    rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(mode))?;
    Ok(())
}

fn shorten(text: &str) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() > 80 {
        format!("{}…", one_line.chars().take(80).collect::<String>())
    } else {
        one_line
    }
}

/// One COPY or ADD to run: the instruction and where it reads.
struct CopyJob<'a> {
    copy: &'a plan::Copy,
    source_root: Option<Arc<Root>>,
    context: &'a cap_std::fs::Dir,
    ignore: &'a IgnoreMatcher,
    file: &'a str,
    line: usize,
    /// Whether the step gets its own layer (not with `--single-snapshot`).
    snapshot: bool,
}

/// COPY/ADD: copies into the stage's root and makes a layer of exactly
/// what it changed (no walk of the root); none with `--single-snapshot`.
async fn copy_layer(
    result: &mut StageResult,
    job: CopyJob<'_>,
    store: &Arc<BlobStore>,
    root_path: &Path,
    stage: &str,
    opts: &BuildOptions,
) -> Result<Option<StageLayer>, BuildError> {
    let root = root_of(result, store, root_path, stage).await?;
    let keyword = if job.copy.add { "ADD" } else { "COPY" };
    let copy_err = |source| BuildError::Copy {
        file: job.file.to_string(),
        line: job.line,
        keyword,
        source: Box::new(source),
    };
    let rootfs_err = |source| BuildError::Rootfs {
        stage: stage.to_string(),
        source,
    };
    let chown = match &job.copy.chown {
        None => None,
        Some(c) => {
            let (uid, gid, _) = rootfs::lookup_user(&root, &c.to_string()).map_err(rootfs_err)?;
            Some((uid, gid))
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let source = match &job.source_root {
        Some(r) => CopySource::Root(r),
        None => CopySource::Context {
            dir: job.context,
            ignore: job.ignore,
        },
    };
    let request = CopyRequest {
        copy: job.copy,
        source,
        workdir: result.config.working_dir(),
        chown,
        mtime_now: i64::try_from(now).unwrap_or(i64::MAX),
    };
    // URL and Git sources are fetched into a scratch directory first.
    let remote = super::fetch::fetch_remote(job.copy, store, &opts.work_dir)
        .await
        .map_err(|source| BuildError::Fetch {
            file: job.file.to_string(),
            line: job.line,
            source: Box::new(source),
        })?;
    let changes = tokio::task::block_in_place(|| match &remote {
        Some(r) => r.copy_into(&root, &request),
        None => rootfs::copy_into(&root, &request),
    })
    .map_err(|e| match e {
        CopyError::NotSupported { .. } => BuildError::NotSupported {
            file: job.file.to_string(),
            line: job.line,
            what: e.to_string(),
        },
        other => copy_err(other),
    })?;
    if !job.snapshot {
        return Ok(None);
    }
    let layer = tokio::task::block_in_place(|| -> Result<_, BuildError> {
        let mut writer = new_layer(store, opts.compression, opts.media_types, opts.epoch())?;
        write_changes(&root, &changes, &mut writer)?;
        Ok(writer.finish()?)
    })?;
    Ok(Some(layer.into()))
}

/// The config's time for the build's epoch.
fn epoch_time(epoch: Option<u64>) -> Option<crate::image::Timestamp> {
    epoch
        .and_then(|e| i64::try_from(e).ok())
        .and_then(|e| crate::image::Timestamp::from_unix(e, 0))
}

/// `--single-snapshot` of one stage: the index of its root before its
/// first filesystem step, and the history entry of its last one.
#[derive(Default)]
struct StageSnapshot {
    before: Option<Index>,
    last_step: Option<usize>,
}

impl StageSnapshot {
    /// At the stage's start: unpacks its root and scans it.
    async fn start(
        &mut self,
        result: &mut StageResult,
        store: &Arc<BlobStore>,
        root_path: &Path,
        stage: &str,
        opts: &BuildOptions,
    ) -> Result<(), BuildError> {
        let root = root_of(result, store, root_path, stage).await?;
        let ignore = ignore_set(opts);
        self.before = Some(tokio::task::block_in_place(|| Index::scan(&root, &ignore))?);
        Ok(())
    }

    /// Records a filesystem step's history entry (remembering it as the
    /// last one with `--single-snapshot`).
    fn add_history(&mut self, config: &mut ConfigBuilder, created_by: String, layer: bool) {
        if self.before.is_some() {
            self.last_step = Some(config.config().history.len());
        }
        config.add_history(created_by, layer);
    }

    /// At the stage's end: one layer of everything its steps changed, the
    /// history entry of the last filesystem step marked as its own.
    fn finish(
        self,
        result: &mut StageResult,
        store: &BlobStore,
        opts: &BuildOptions,
    ) -> Result<(), BuildError> {
        let (Some(before), Some(last_step), Some(root)) =
            (self.before, self.last_step, result.root.clone())
        else {
            return Ok(());
        };
        let layer = tokio::task::block_in_place(|| -> Result<_, BuildError> {
            let after = Index::rescan(&root, &ignore_set(opts), &before)?;
            let changes = crate::snapshot::diff(&before, &after);
            if changes.is_empty() {
                return Ok(None);
            }
            let mut writer = new_layer(store, opts.compression, opts.media_types, opts.epoch())?;
            write_layer(&root, &after, &changes, &mut writer)?;
            Ok(Some(writer.finish()?))
        })?;
        if let Some(layer) = layer {
            result.layers.push(layer.into());
            result.config.mark_layer(last_step);
        }
        result.index = None;
        Ok(())
    }
}

/// The assembled image: blobs in the store, and what pushing needs.
struct Assembled {
    blobs: ImageBlobs,
    layers: Vec<StageLayer>,
    config_descriptor: manifest::Descriptor,
}

fn assemble(
    target: StageResult,
    store: &BlobStore,
    opts: &BuildOptions,
) -> Result<Assembled, BuildError> {
    let diff_ids = target.layers.iter().map(|l| l.diff_id.clone()).collect();
    let config = target
        .config
        .with_build_labels(opts.labels.clone())
        .finish(diff_ids, epoch_time(opts.epoch()));
    let config_bytes = config.to_bytes();
    let config_digest = store.put(&config_bytes)?;
    let config_descriptor = manifest::config_descriptor(opts.media_types, &config_bytes);
    let manifest_layers: Vec<ManifestLayer> = target
        .layers
        .iter()
        .map(|l| ManifestLayer {
            digest: l.digest.clone(),
            size: l.size,
            compression: media::layer_compression(&l.media_type)
                .unwrap_or(media::Compression::Gzip),
            annotations: BTreeMap::new(),
        })
        .collect();
    let built = manifest::build_manifest(
        opts.media_types,
        &config_descriptor,
        &manifest_layers,
        &BTreeMap::new(),
    )?;
    store.put(&built.bytes)?;
    let manifest_doc = manifest::Manifest::from_bytes(&built.bytes)?;
    let layer_refs = target
        .layers
        .iter()
        .zip(&manifest_doc.layers)
        .map(|(l, d)| LayerRef {
            digest: l.digest.clone(),
            diff_id: l.diff_id.clone(),
            size: l.size,
            media_type: d.media_type.clone(),
        })
        .collect();
    Ok(Assembled {
        blobs: ImageBlobs {
            manifest: built.bytes,
            manifest_digest: built.digest,
            manifest_media_type: built.media_type.to_string(),
            config: config_bytes,
            config_digest,
            layers: layer_refs,
        },
        layers: target.layers,
        config_descriptor,
    })
}

async fn deliver(
    image: &Assembled,
    store: &BlobStore,
    registry: &Registry,
    opts: &BuildOptions,
    plan: Plan,
) -> Result<BuildOutcome, BuildError> {
    let destinations: Vec<_> = opts
        .destinations
        .iter()
        .map(|d| {
            parse_reference(d).map_err(|source| BuildError::Destination {
                destination: d.clone(),
                source: Box::new(source),
            })
        })
        .collect::<Result<_, _>>()?;
    let blobs = &image.blobs;
    if let Some(path) = &opts.tar_path {
        let tags = output::docker_archive_repo_tags(&opts.destinations)?;
        tokio::task::block_in_place(|| output::write_docker_archive(path, blobs, store, &tags))?;
        tracing::info!("wrote {}", path.display());
    }
    if let Some(path) = &opts.oci_layout_path {
        let ref_name = destinations
            .first()
            .and_then(|d| d.tag().map(str::to_string));
        tokio::task::block_in_place(|| {
            output::write_oci_layout(path, blobs, store, ref_name.as_deref())
        })?;
        tracing::info!("wrote OCI layout {}", path.display());
    }
    let mut pushed = Vec::new();
    if !opts.no_push {
        for dest in &destinations {
            let to_push = ImageToPush {
                manifest_bytes: blobs.manifest.clone(),
                manifest_media_type: blobs.manifest_media_type.clone(),
                config: oci_descriptor(
                    &image.config_descriptor.media_type,
                    &blobs.config_digest,
                    blobs.config.len() as u64,
                )?,
                layers: image
                    .layers
                    .iter()
                    .zip(&blobs.layers)
                    .map(|(l, r)| {
                        Ok(LayerToPush {
                            descriptor: oci_descriptor(&r.media_type, &l.digest, l.size)?,
                            mount_from: l.mount_from.as_ref().and_then(|(host, repo)| {
                                (host == dest.resolve_registry()).then(|| repo.clone())
                            }),
                        })
                    })
                    .collect::<Result<_, BuildError>>()?,
                extra_tags: Vec::new(),
            };
            let digest = registry.push(dest, &to_push, store).await?;
            tracing::info!("pushed {dest} ({digest})");
            pushed.push(dest.to_string());
        }
    }
    output::write_digest_files(
        opts.digest_file.as_deref(),
        opts.image_name_with_digest_file.as_deref(),
        opts.image_name_tag_with_digest_file.as_deref(),
        &opts.destinations,
        &blobs.manifest_digest,
    )?;
    Ok(BuildOutcome {
        digest: blobs.manifest_digest.clone(),
        manifest_media_type: blobs.manifest_media_type.clone(),
        pushed,
        layers: image.layers.len(),
        plan,
    })
}

fn oci_descriptor(
    media_type: &str,
    digest: &Digest,
    size: u64,
) -> Result<oci_spec::image::Descriptor, BuildError> {
    let d: oci_spec::image::Digest =
        digest
            .to_string()
            .parse()
            .map_err(|_| BuildError::InvalidImage {
                reference: digest.to_string(),
                reason: "digest not accepted by oci-spec".into(),
            })?;
    Ok(oci_spec::image::Descriptor::new(
        oci_spec::image::MediaType::from(media_type),
        size,
        d,
    ))
}

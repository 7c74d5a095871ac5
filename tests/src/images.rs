//! Base images built independently of kiln: a busybox root filesystem from
//! Debian's `busybox-static`, packed by the GNU `tar` and `gzip` CLIs into an
//! OCI image layout whose JSON is written here, and pushed with `skopeo`.
//! [`layout_from_rootfs`] does the same for any root filesystem (the pull
//! benchmark packs a `debootstrap` tree with it).
//!
//! Everything is reproducible: fixed mtimes ([`FIXED_MTIME`]), fixed owners
//! in the tar (root, except `/home/app` which is 1000:1000 whoever runs the
//! tests), sorted entries, `gzip -n`. The same busybox binary therefore
//! always gives the same layer and manifest digests. The busybox layer is
//! cached under `target/e2e-cache/`, keyed by the busybox binary's sha256
//! and [`RECIPE`].
//!
//! The image: `/bin/busybox` with one symlink to it per applet (the paths of
//! `busybox --list-full`: `/bin`, `/sbin`, `/usr/bin`, `/usr/sbin`),
//! `/etc/passwd` (root 0, nobody 65534, app 1000), `/etc/group` (root 0,
//! staff 50 with member app, nogroup 65534, app 1000), `/tmp` (1777),
//! `/root` (0700), `/home/app` (1000:1000). Config: `Env` PATH, `Cmd`
//! `["/bin/sh"]`, label `org.kiln.test.image=busybox`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::registry::Registry;
use crate::tools::{self, CopyOptions, mkdir, run, run_stdout, write};

/// Where tests push the busybox base image ([`push_busybox`]) when they
/// build with `ARG BASE` (see `Build::run_to_layout`).
pub const BUSYBOX_TEST_REPO: &str = "base/busybox:1";

/// Modification time of every file of the base images (2023-11-14T22:13:20Z).
pub const FIXED_MTIME: i64 = 1_700_000_000;
/// [`FIXED_MTIME`] as the images' `created` time.
pub const FIXED_CREATED: &str = "2023-11-14T22:13:20Z";
/// Version of the image recipe; part of the cache key. Bump it when the
/// rootfs or the tar flags change.
pub const RECIPE: &str = "busybox-v1";
/// `PATH` in the images' config.
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
                      app:x:1000:1000:app:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\nstaff:x:50:app\nnogroup:x:65534:\napp:x:1000:\n";

/// A compressed layer blob on disk with its digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The `tar.gz` file.
    pub path: PathBuf,
    /// `sha256:<hex>` of the compressed blob (the manifest's layer digest).
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar (the config's diff_id).
    pub diff_id: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
}

/// Digests of a pushed (or laid out) multi-platform image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiArch {
    /// Digest of the OCI image index.
    pub index: String,
    /// Manifest digest per platform: `"linux/amd64"` and `"linux/arm64"`.
    pub manifests: BTreeMap<String, String>,
}

/// The OCI architecture name of this machine (`amd64`, `arm64`, ...).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Builds the busybox root filesystem (see the module docs) in `dir`,
/// which must be empty or absent. `/home/app` is chowned to 1000:1000 only
/// when running as root.
pub fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "etc", "home/app", "root", "tmp"] {
        mkdir(&dir.join(d));
    }
    let busybox = busybox_path();
    std::fs::copy(&busybox, dir.join("bin/busybox"))
        .unwrap_or_else(|e| panic!("copying {}: {e}", busybox.display()));
    set_mode(&dir.join("bin/busybox"), 0o755);
    for applet in applets(&busybox) {
        let link = dir.join(&applet);
        mkdir(link.parent().expect("applet paths have a parent"));
        std::os::unix::fs::symlink("/bin/busybox", &link)
            .unwrap_or_else(|e| panic!("linking {}: {e}", link.display()));
    }
    write(&dir.join("etc/passwd"), PASSWD);
    write(&dir.join("etc/group"), GROUP);
    set_modes(dir);
    if tools::is_root() {
        std::os::unix::fs::lchown(dir.join("home/app"), Some(1000), Some(1000))
            .expect("chowning home/app");
    }
    set_mtimes(dir);
}

/// The busybox layer, built once per content key and cached under
/// `target/e2e-cache/busybox-<key>/`.
pub fn busybox_layer() -> Layer {
    static LAYER: OnceLock<Layer> = OnceLock::new();
    LAYER.get_or_init(cached_busybox_layer).clone()
}

/// Writes an OCI image layout in `layout` (created if absent; other tags
/// in it are kept) holding the busybox image for this machine's
/// architecture under `tag`. Returns the manifest digest.
pub fn busybox_layout(layout: &Path, tag: &str) -> String {
    layout_from_layers(layout, tag, &[busybox_layer()], &BUSYBOX)
}

/// What an image's config says besides its layers.
#[derive(Clone, Copy, Debug)]
pub struct ImageMeta<'a> {
    /// Value of the `org.kiln.test.image` label, e.g. `busybox`.
    pub name: &'a str,
    /// The config's `Cmd`.
    pub cmd: &'a [&'a str],
}

/// The busybox image's config.
pub const BUSYBOX: ImageMeta<'static> = ImageMeta {
    name: "busybox",
    cmd: &["/bin/sh"],
};

/// Writes an OCI image layout in `layout` (created if absent; other tags
/// in it are kept) holding a linux image for this machine's architecture
/// made of `layers`, base first, under `tag`. Config: `Env` PATH, `Cmd`
/// and the label `org.kiln.test.image` from `meta`, fixed `created`
/// times. Returns the manifest digest.
pub fn layout_from_layers(
    layout: &Path,
    tag: &str,
    layers: &[Layer],
    meta: &ImageMeta<'_>,
) -> String {
    let oci = Layout::open(layout);
    let desc = oci.image(host_arch(), layers, meta, BTreeMap::new());
    oci.tag(tag, desc.clone());
    digest_of(&desc)
}

/// Packs the root filesystem `rootfs` into one gzip layer and writes an
/// OCI image layout in `layout` holding it under `tag` (see
/// [`layout_from_layers`]; the label is `meta.name`). The layer is made by
/// GNU tar with names sorted and without `./`, owners and modes as they are
/// on disk (`--numeric-owner`), mtimes kept, then `gzip -n -6`; it is built
/// in `layout/.work/` and moved into the layout's blobs. Returns the
/// manifest digest and the layer.
pub fn layout_from_rootfs(
    rootfs: &Path,
    layout: &Path,
    tag: &str,
    meta: &ImageMeta<'_>,
) -> (String, Layer) {
    let work = layout.join(".work");
    mkdir(&work);
    let tar = work.join("layer.tar");
    run(Command::new("tar")
        .arg("--create")
        .arg("--file")
        .arg(&tar)
        .args(["--format=gnu", "--sort=name", "--numeric-owner"])
        .arg("-C")
        .arg(rootfs)
        .args(top_level_names(rootfs)));
    let layer = gzip_layer(&tar, &work.join("layer.tar.gz"));
    let digest = layout_from_layers(layout, tag, std::slice::from_ref(&layer), meta);
    let layer = Layer {
        path: layout
            .join("blobs/sha256")
            .join(layer.digest.trim_start_matches("sha256:")),
        ..layer
    };
    std::fs::remove_dir_all(&work).unwrap_or_else(|e| panic!("removing {}: {e}", work.display()));
    (digest, layer)
}

/// Writes an OCI image layout in `layout` with an image index under `tag`:
/// `linux/amd64` and `linux/arm64` manifests. Both carry the same busybox
/// layer (an amd64 binary: run neither on the wrong machine) plus a layer
/// with `/arch` holding the architecture and a newline, and a label
/// `arch=<architecture>` so platform selection is observable.
pub fn multi_arch_layout(layout: &Path, tag: &str) -> MultiArch {
    let oci = Layout::open(layout);
    let work = tempfile::tempdir().expect("temp dir for the arch layers");
    let mut descs = Vec::new();
    let mut manifests = BTreeMap::new();
    for arch in ["amd64", "arm64"] {
        let layers = [busybox_layer(), arch_layer(work.path(), arch)];
        let labels = BTreeMap::from([("arch".to_owned(), arch.to_owned())]);
        let mut desc = oci.image(arch, &layers, &BUSYBOX, labels);
        desc["platform"] = json!({ "architecture": arch, "os": "linux" });
        manifests.insert(format!("linux/{arch}"), digest_of(&desc));
        descs.push(desc);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": descs,
    });
    let desc = oci.blob(MEDIA_INDEX, &index);
    let index = digest_of(&desc);
    oci.tag(tag, desc);
    MultiArch { index, manifests }
}

/// Pushes the busybox image to `registry` as `repo_tag` (e.g.
/// `busybox:latest`) with `skopeo copy`, and returns the pushed manifest
/// digest.
pub fn push_busybox(registry: &Registry, repo_tag: &str) -> String {
    let layout = tempfile::tempdir().expect("temp dir for an OCI layout");
    let digest = busybox_layout(layout.path(), "push");
    let pushed = push(layout.path(), registry, repo_tag, false);
    assert_eq!(pushed, digest, "skopeo changed the manifest digest");
    pushed
}

/// Pushes the two-platform image of [`multi_arch_layout`] to `registry` as
/// `repo_tag` with `skopeo copy --all`, and returns its digests.
pub fn push_multi_arch(registry: &Registry, repo_tag: &str) -> MultiArch {
    let layout = tempfile::tempdir().expect("temp dir for an OCI layout");
    let multi = multi_arch_layout(layout.path(), "push");
    let pushed = push(layout.path(), registry, repo_tag, true);
    assert_eq!(pushed, multi.index, "skopeo changed the index digest");
    multi
}

fn push(layout: &Path, registry: &Registry, repo_tag: &str, all: bool) -> String {
    let options = CopyOptions {
        dest: registry.access(),
        all,
        preserve_digests: true,
        ..CopyOptions::default()
    };
    let src = format!("oci:{}:push", layout.display());
    tools::skopeo_copy(&src, &registry.docker_ref(repo_tag), &options)
}

const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// An OCI image layout directory being written.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn open(dir: &Path) -> Self {
        mkdir(&dir.join("blobs/sha256"));
        write(&dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#);
        if !dir.join("index.json").exists() {
            let index = json!({ "schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [] });
            write(&dir.join("index.json"), index.to_string());
        }
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Stores `value` as JSON and returns its descriptor.
    fn blob(&self, media_type: &str, value: &Value) -> Value {
        let bytes = serde_json::to_vec(value).expect("serializing JSON");
        let hex = sha256_hex(&bytes);
        write(&self.dir.join("blobs/sha256").join(&hex), &bytes);
        json!({ "mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len() })
    }

    /// Stores a layer file and returns its descriptor.
    fn layer(&self, layer: &Layer) -> Value {
        let hex = layer.digest.trim_start_matches("sha256:");
        let dest = self.dir.join("blobs/sha256").join(hex);
        if !dest.exists() {
            std::fs::copy(&layer.path, &dest)
                .unwrap_or_else(|e| panic!("copying {}: {e}", layer.path.display()));
        }
        json!({ "mediaType": MEDIA_LAYER, "digest": layer.digest, "size": layer.size })
    }

    /// Stores config and manifest of a linux/`arch` image and returns the
    /// manifest's descriptor.
    fn image(
        &self,
        arch: &str,
        layers: &[Layer],
        meta: &ImageMeta<'_>,
        mut labels: BTreeMap<String, String>,
    ) -> Value {
        labels.insert("org.kiln.test.image".into(), meta.name.into());
        let config = json!({
            "created": FIXED_CREATED,
            "architecture": arch,
            "os": "linux",
            "config": { "Env": [PATH_ENV], "Cmd": meta.cmd, "Labels": labels },
            "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>() },
            "history": layers.iter().map(|_| json!({ "created": FIXED_CREATED, "created_by": "kiln-tests images.rs" })).collect::<Vec<_>>(),
        });
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": self.blob(MEDIA_CONFIG, &config),
            "layers": layers.iter().map(|l| self.layer(l)).collect::<Vec<_>>(),
        });
        self.blob(MEDIA_MANIFEST, &manifest)
    }

    /// Points `tag` in `index.json` at `desc`, replacing an older entry.
    fn tag(&self, tag: &str, mut desc: Value) {
        let path = self.dir.join("index.json");
        let text = std::fs::read_to_string(&path).expect("reading index.json");
        let mut index: Value = serde_json::from_str(&text).expect("parsing index.json");
        let manifests = index["manifests"].as_array_mut().expect("manifests array");
        manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != tag);
        desc["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
        manifests.push(desc);
        write(&path, index.to_string());
    }
}

fn digest_of(desc: &Value) -> String {
    desc["digest"]
        .as_str()
        .expect("descriptor digest")
        .to_owned()
}

/// `/bin/busybox` of Debian's busybox-static.
fn busybox_path() -> PathBuf {
    tools::which("busybox").expect("busybox is installed (busybox-static)")
}

/// Applet paths relative to `/`, without busybox itself.
fn applets(busybox: &Path) -> Vec<String> {
    run_stdout(Command::new(busybox).arg("--list-full"))
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_owned())
        .filter(|l| !l.is_empty() && l != "bin/busybox")
        .collect()
}

/// Directories 0755 (`/tmp` 1777, `/root` 0700), files 0644 but busybox.
fn set_modes(dir: &Path) {
    for d in [
        "bin", "etc", "home", "home/app", "sbin", "usr", "usr/bin", "usr/sbin",
    ] {
        if dir.join(d).exists() {
            set_mode(&dir.join(d), 0o755);
        }
    }
    set_mode(dir, 0o755);
    set_mode(&dir.join("tmp"), 0o1777);
    set_mode(&dir.join("root"), 0o700);
    set_mode(&dir.join("etc/passwd"), 0o644);
    set_mode(&dir.join("etc/group"), 0o644);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Sets every mtime and atime under `dir` (symlinks themselves, not their
/// targets) to [`FIXED_MTIME`].
fn set_mtimes(dir: &Path) {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
    let time = Timespec {
        tv_sec: FIXED_MTIME,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    for path in crate::tools::walk(dir) {
        utimensat(CWD, &path, &times, AtFlags::SYMLINK_NOFOLLOW)
            .unwrap_or_else(|e| panic!("setting the mtime of {}: {e}", path.display()));
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex_string(&Sha256::digest(bytes))
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file's contents, `sha256:<hex>`.
pub(crate) fn sha256_file(path: &Path) -> String {
    let mut file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    format!("sha256:{}", hex_string(&hasher.finalize()))
}

/// The cache entry for this busybox and recipe, built if absent.
fn cached_busybox_layer() -> Layer {
    let key = sha256_hex(format!("{RECIPE} {}", sha256_file(&busybox_path())).as_bytes());
    let entry = crate::cache_dir().join(format!("busybox-{}", &key[..16]));
    if !entry.join("layer.json").exists() {
        build_cache_entry(&entry);
    }
    let text = std::fs::read_to_string(entry.join("layer.json")).expect("reading layer.json");
    let meta: Value = serde_json::from_str(&text).expect("parsing layer.json");
    Layer {
        path: entry.join("layer.tar.gz"),
        digest: meta["digest"].as_str().expect("digest").to_owned(),
        diff_id: meta["diff_id"].as_str().expect("diff_id").to_owned(),
        size: meta["size"].as_u64().expect("size"),
    }
}

/// Builds the layer in a temp dir beside `entry` and renames it into
/// place, so parallel test binaries never see a half-written entry.
fn build_cache_entry(entry: &Path) {
    let parent = entry.parent().expect("cache entries have a parent");
    mkdir(parent);
    let work = tempfile::tempdir_in(parent).expect("temp dir in the e2e cache");
    let rootfs = work.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let tar = work.path().join("layer.tar");
    tar_rootfs(&rootfs, &tar);
    let built = work.path().join("entry");
    mkdir(&built);
    let layer = gzip_layer(&tar, &built.join("layer.tar.gz"));
    let meta = json!({ "digest": layer.digest, "diff_id": layer.diff_id, "size": layer.size });
    write(&built.join("layer.json"), meta.to_string());
    // Losing the race to another process is fine: its entry is identical.
    let _ = std::fs::rename(&built, entry);
}

/// Packs `rootfs` into `tar` with GNU tar: sorted names without `./`,
/// fixed mtimes, numeric owners root, and `home/app` 1000:1000.
fn tar_rootfs(rootfs: &Path, tar: &Path) {
    let top = top_level_names(rootfs);
    run(tar_cmd(tar, "--create", 0)
        .arg("--exclude=home/app")
        .arg("-C")
        .arg(rootfs)
        .args(&top));
    run(tar_cmd(tar, "--append", 1000)
        .arg("--no-recursion")
        .arg("-C")
        .arg(rootfs)
        .arg("home/app"));
}

/// The names directly under `rootfs`, sorted: what tar is given so its
/// entry names have no `./` prefix.
fn top_level_names(rootfs: &Path) -> Vec<std::ffi::OsString> {
    let mut top: Vec<std::ffi::OsString> = std::fs::read_dir(rootfs)
        .unwrap_or_else(|e| panic!("listing {}: {e}", rootfs.display()))
        .map(|e| e.expect("rootfs entry").file_name())
        .collect();
    top.sort();
    top
}

/// `tar <op> --file tar` with the reproducible flags and owner `id:id`.
fn tar_cmd(tar: &Path, op: &str, id: u32) -> Command {
    let mut cmd = Command::new("tar");
    cmd.arg(op)
        .arg("--file")
        .arg(tar)
        .args(["--format=gnu", "--sort=name", "--numeric-owner"])
        .arg(format!("--owner={id}"))
        .arg(format!("--group={id}"))
        .arg(format!("--mtime=@{FIXED_MTIME}"));
    cmd
}

/// Compresses `tar` into `gz` with `gzip -n` and returns the layer.
fn gzip_layer(tar: &Path, gz: &Path) -> Layer {
    let out =
        std::fs::File::create(gz).unwrap_or_else(|e| panic!("creating {}: {e}", gz.display()));
    run(Command::new("gzip")
        .args(["-n", "-6", "-c"])
        .arg(tar)
        .stdout(out));
    Layer {
        path: gz.to_path_buf(),
        digest: sha256_file(gz),
        diff_id: sha256_file(tar),
        size: std::fs::metadata(gz).expect("layer size").len(),
    }
}

/// A layer with one file `/arch` holding `arch` and a newline, written
/// under `dir/<arch>/`.
fn arch_layer(dir: &Path, arch: &str) -> Layer {
    let work = dir.join(arch);
    mkdir(&work.join("root"));
    write(&work.join("root/arch"), format!("{arch}\n"));
    set_mode(&work.join("root/arch"), 0o644);
    let tar = work.join("layer.tar");
    run(tar_cmd(&tar, "--create", 0)
        .arg("-C")
        .arg(work.join("root"))
        .arg("arch"));
    gzip_layer(&tar, &work.join("layer.tar.gz"))
}

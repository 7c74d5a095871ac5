//! `bench_pull`: pulling and unpacking a Debian minbase image with kiln,
//! against `skopeo copy` + `umoci unpack` of the same image, in one run
//! (`make bench-pull`).
//!
//! Setup, cached under `target/bench-cache/` (delete a directory there to
//! rebuild it):
//!
//! - `minbase-rootfs/`: `debootstrap --variant=minbase bookworm` from the
//!   Debian mirror apt uses on this machine (`$KILN_BENCH_MIRROR` overrides
//!   it), with apt's downloaded packages and package lists removed as the
//!   official Debian images do. Needs root.
//! - `minbase-layout/`: that tree as one gzip layer (GNU tar, sorted,
//!   numeric owners) in an OCI image layout, tag `minbase`
//!   ([`kiln_tests::images::layout_from_rootfs`]).
//!
//! Each run starts a local registry ([`Registry::start_plain`]), pushes the
//! image with skopeo as `debian:minbase`, then measures `--rounds` rounds
//! (default 5) after one untimed warm-up round; within a round kiln and the
//! reference run one after the other, in alternating order, each in fresh
//! directories (a fresh `KILN_STORE_DIR`, so every kiln round pulls):
//!
//! - kiln: `kiln build --no-push --insecure-registry <host>` of
//!   `FROM <host>/debian:minbase` + `WORKDIR /kiln-bench-dir`: pull, verify,
//!   unpack the base into a build root (the WORKDIR needs it), one small
//!   layer, and removal of the build root at the end;
//! - reference: `skopeo copy docker://<host>/debian:minbase oci:<dir>:t`,
//!   then `umoci unpack --image <dir>:t <bundle>` (`--rootless` unless
//!   root).
//!
//! Every process starts after a `sync` (not timed); the directories of all
//! rounds are removed only at the end, so that no measured process pays
//! for the writeback or the deletions of another. Wall times are measured
//! around each process, CPU time (user + system) and peak RSS by GNU time
//! (`%U %S %M`); the ratio is of median wall times, the reference's per
//! round being skopeo's plus umoci's. It prints a table and writes it as JSON to
//! `target/bench-pull.json` (or `--json <path>`). kiln is `$KILN_BIN`, else
//! `target/release/kiln`. The rounds' directories (kiln's store and build
//! root, skopeo's layout, umoci's bundle) are under
//! `target/bench-scratch/`, or `<DIR>/kiln-bench-scratch/` with
//! `--scratch <DIR>` (e.g. a tmpfs, to leave the disk out).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark reports on the terminal"
)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use kiln_tests::images::{ImageMeta, layout_from_rootfs};
use kiln_tests::tools::{self, CopyOptions, mkdir, run, write};
use kiln_tests::{Registry, target_dir};
use serde_json::{Value, json};

/// Debian release the image is made of.
const SUITE: &str = "bookworm";
/// Tag in the cached layout and in the registry.
const TAG: &str = "minbase";
/// The image's config.
const DEBIAN: ImageMeta<'static> = ImageMeta {
    name: "debian-minbase",
    cmd: &["bash"],
};
/// GNU time, for peak RSS.
const GNU_TIME: &str = "/usr/bin/time";
/// The goals of issue 3.
const GOAL_RATIO: f64 = 1.0;
const GOAL_RSS_MIB: f64 = 100.0;

fn main() {
    let args = Args::parse();
    for tool in [
        "debootstrap",
        "skopeo",
        "umoci",
        "docker-registry",
        "tar",
        "gzip",
    ] {
        assert!(
            tools::which(tool).is_some(),
            "{tool} is not installed: run scripts/setup.sh"
        );
    }
    assert!(
        Path::new(GNU_TIME).is_file(),
        "{GNU_TIME} is missing (Debian package `time`): run scripts/setup.sh"
    );
    let kiln = std::env::var_os("KILN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("release/kiln"));
    assert!(
        kiln.is_file(),
        "{} is missing: build it with `cargo build --release --bin kiln`",
        kiln.display()
    );

    let cache = target_dir().join("bench-cache");
    mkdir(&cache);
    let rootfs = ensure_rootfs(&cache);
    let (layout, image) = ensure_layout(&cache, &rootfs);

    let registry = Registry::start_plain();
    let options = CopyOptions {
        dest: registry.access(),
        preserve_digests: true,
        ..CopyOptions::default()
    };
    let image_ref = registry.image_ref(&format!("debian:{TAG}"));
    let pushed = tools::skopeo_copy(
        &format!("oci:{}:{TAG}", layout.display()),
        &format!("docker://{image_ref}"),
        &options,
    );
    assert_eq!(
        pushed, image["manifest"],
        "skopeo changed the manifest digest"
    );
    eprintln!("bench: pushed {image_ref} ({pushed})");

    let scratch = args
        .scratch
        .clone()
        .unwrap_or_else(|| target_dir().join("bench-scratch"));
    let _ = std::fs::remove_dir_all(&scratch);
    let context = scratch.join("context");
    mkdir(&context);
    write(
        &context.join("Dockerfile"),
        format!("FROM {image_ref}\nWORKDIR /kiln-bench-dir\n"),
    );
    let bench = Bench {
        kiln,
        layer_hex: image["layer"]
            .as_str()
            .expect("layer digest")
            .trim_start_matches("sha256:")
            .to_owned(),
        host: registry.host(),
        image_ref,
        context,
        scratch: scratch.clone(),
    };

    eprintln!("bench: warm-up round (not counted)");
    bench.kiln_round("warm-up");
    bench.reference_round("warm-up");
    let mut rounds = Vec::new();
    for r in 0..args.rounds {
        let name = format!("round-{r}");
        let (kiln, reference) = if r % 2 == 0 {
            let k = bench.kiln_round(&name);
            (k, bench.reference_round(&name))
        } else {
            let reference = bench.reference_round(&name);
            (bench.kiln_round(&name), reference)
        };
        eprintln!(
            "bench: {name}: kiln {} | skopeo {} + umoci {}",
            kiln.show(),
            reference.skopeo.show(),
            reference.umoci.show()
        );
        rounds.push((kiln, reference));
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let report = report(&image, &rounds, &scratch);
    print_table(&report);
    let json_path = args
        .json
        .unwrap_or_else(|| target_dir().join("bench-pull.json"));
    let text = serde_json::to_string_pretty(&report).expect("serializing the report");
    write(&json_path, text + "\n");
    println!("written to {}", json_path.display());
}

/// Command-line arguments.
struct Args {
    rounds: usize,
    json: Option<PathBuf>,
    scratch: Option<PathBuf>,
}

impl Args {
    fn parse() -> Self {
        let mut args = Self {
            rounds: 5,
            json: None,
            scratch: None,
        };
        let mut it = std::env::args_os().skip(1);
        while let Some(a) = it.next() {
            match a.to_str() {
                Some("--rounds") => {
                    args.rounds = it
                        .next()
                        .and_then(|v| v.to_str()?.parse().ok())
                        .filter(|&n| n > 0)
                        .expect("--rounds takes a positive number");
                }
                Some("--json") => {
                    args.json = Some(PathBuf::from(it.next().expect("--json takes a path")));
                }
                Some("--scratch") => {
                    let dir = it.next().expect("--scratch takes a directory");
                    args.scratch = Some(PathBuf::from(dir).join("kiln-bench-scratch"));
                }
                _ => panic!(
                    "unknown argument {a:?}; usage: bench_pull [--rounds N] [--json PATH] [--scratch DIR]"
                ),
            }
        }
        args
    }
}

/// One process: wall time and CPU time (user + system) in seconds, peak
/// RSS in KiB.
#[derive(Clone, Copy, Debug)]
struct Sample {
    wall: f64,
    cpu: f64,
    rss_kib: u64,
    /// kiln's run in phases (see [`phases`]).
    phases: Option<Phases>,
}

/// Where a kiln run's wall time went, in seconds.
#[derive(Clone, Copy, Debug)]
struct Phases {
    pull: f64,
    unpack: f64,
    finish: f64,
}

/// skopeo and umoci of one round.
#[derive(Clone, Copy, Debug)]
struct Reference {
    skopeo: Sample,
    umoci: Sample,
}

impl Sample {
    fn show(&self) -> String {
        let phases = self
            .phases
            .map(|p| {
                format!(
                    " [pull {:.3}s, unpack {:.3}s, rest {:.3}s]",
                    p.pull, p.unpack, p.finish
                )
            })
            .unwrap_or_default();
        format!(
            "{:.3}s{phases} (cpu {:.3}s) {:.1} MiB",
            self.wall,
            self.cpu,
            mib(self.rss_kib)
        )
    }
}

impl Reference {
    fn wall(&self) -> f64 {
        self.skopeo.wall + self.umoci.wall
    }

    fn cpu(&self) -> f64 {
        self.skopeo.cpu + self.umoci.cpu
    }
}

struct Bench {
    kiln: PathBuf,
    /// Hex of the base layer's digest.
    layer_hex: String,
    host: String,
    image_ref: String,
    context: PathBuf,
    scratch: PathBuf,
}

impl Bench {
    /// A fresh directory `<scratch>/<round>/<what>` (its parent made).
    fn fresh(&self, round: &str, what: &str) -> PathBuf {
        let dir = self.scratch.join(round).join(what);
        let _ = std::fs::remove_dir_all(&dir);
        mkdir(dir.parent().expect("under the scratch dir"));
        dir
    }

    fn kiln_round(&self, round: &str) -> Sample {
        let store = self.fresh(round, "kiln-store");
        let tmp = self.fresh(round, "kiln-tmp");
        mkdir(&tmp);
        let mut cmd = Command::new(&self.kiln);
        cmd.arg("build")
            .arg("--no-push")
            .arg("--insecure-registry")
            .arg(&self.host)
            .arg("--context")
            .arg(&self.context)
            .arg("--dockerfile")
            .arg(self.context.join("Dockerfile"))
            .env("KILN_STORE_DIR", &store)
            // The build root goes under the temp dir: keep it beside the
            // reference's bundle, on the same filesystem, and fresh.
            .env("TMPDIR", &tmp)
            // Info, and the debug line that ends each layer written: the
            // timestamps of "pulled ..." and "layer written" split the run.
            .env("KILN_LOG", "info,kiln::snapshot=debug");
        let (mut sample, lines) = measure(cmd, &self.scratch.join(round));
        sample.phases = phases(&lines, sample.wall);
        assert!(
            store.join("blobs/sha256").join(&self.layer_hex).is_file(),
            "kiln stored no base layer in {}",
            store.display()
        );
        sample
    }

    fn reference_round(&self, round: &str) -> Reference {
        let oci = self.fresh(round, "oci");
        let bundle = self.fresh(round, "bundle");
        let mut skopeo = Command::new("skopeo");
        skopeo
            .args(["--insecure-policy", "copy", "--retry-times", "0"])
            .arg("--src-tls-verify=false")
            .arg("--src-no-creds")
            .arg(format!("docker://{}", self.image_ref))
            .arg(format!("oci:{}:t", oci.display()));
        let (skopeo, _) = measure(skopeo, &self.scratch.join(round));
        let mut umoci = Command::new("umoci");
        umoci.arg("unpack");
        if !tools::is_root() {
            umoci.arg("--rootless");
        }
        umoci
            .arg("--image")
            .arg(format!("{}:t", oci.display()))
            .arg(&bundle);
        let (umoci, _) = measure(umoci, &self.scratch.join(round));
        assert!(
            bundle.join("rootfs/usr/bin/bash").is_file(),
            "umoci unpacked no rootfs in {}",
            bundle.display()
        );
        Reference { skopeo, umoci }
    }
}

/// Runs `cmd` under GNU time, panicking with its output when it fails.
/// Returns the sample and the lines of its standard error, each with the
/// time since the start when it was read.
///
/// Dirty pages are written back first (`sync`, not timed), so that no
/// process pays for the writeback of what ran before it.
fn measure(cmd: Command, dir: &Path) -> (Sample, Vec<(f64, String)>) {
    mkdir(dir);
    let rss_file = dir.join("rss");
    let mut timed = Command::new(GNU_TIME);
    timed
        .args(["-f", "%U %S %M", "-o"])
        .arg(&rss_file)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    timed.stdout(Stdio::null()).stderr(Stdio::piped());
    rustix::fs::sync();
    let start = Instant::now();
    let mut child = timed
        .spawn()
        .unwrap_or_else(|e| panic!("starting {:?}: {e}", cmd.get_program()));
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut lines = Vec::new();
    let mut line = Vec::new();
    while stderr.read_until(b'\n', &mut line).expect("reading stderr") > 0 {
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        lines.push((start.elapsed().as_secs_f64(), text));
        line.clear();
    }
    let status = child.wait().expect("waiting for the measured process");
    let wall = start.elapsed().as_secs_f64();
    if !status.success() {
        let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        panic!(
            "{:?} exited with {status}:\n{}",
            cmd.get_program(),
            text.join("\n")
        );
    }
    let text = std::fs::read_to_string(&rss_file).expect("reading GNU time's output");
    let fields: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [user, system, rss_kib] = fields[..] else {
        panic!("GNU time wrote no CPU times and peak RSS: {text:?}");
    };
    let _ = std::fs::remove_file(&rss_file);
    let sample = Sample {
        wall,
        cpu: user + system,
        rss_kib: rss_kib as u64,
        phases: None,
    };
    (sample, lines)
}

/// kiln's run split at the log lines that end the pull (`pulled <ref> as
/// <digest>`) and the WORKDIR layer (`layer written`): pull, unpack (with
/// the tiny layer), and the rest (image assembly, removal of the build
/// root, exit). `None` when a line is missing.
fn phases(lines: &[(f64, String)], wall: f64) -> Option<Phases> {
    let at = |pred: &dyn Fn(&str) -> bool| lines.iter().find(|(_, l)| pred(l)).map(|(t, _)| *t);
    let pulled = at(&|l: &str| l.contains("INFO pulled ") && l.contains(" as sha256:"))?;
    let written = at(&|l: &str| l.contains("layer written"))?;
    Some(Phases {
        pull: pulled,
        unpack: written - pulled,
        finish: wall - written,
    })
}

/// `minbase-rootfs/`, made by debootstrap when absent.
fn ensure_rootfs(cache: &Path) -> PathBuf {
    let rootfs = cache.join("minbase-rootfs");
    if rootfs.is_dir() {
        return rootfs;
    }
    assert!(
        tools::is_root(),
        "debootstrap needs root to make {}",
        rootfs.display()
    );
    // A new rootfs makes the layout stale.
    let _ = std::fs::remove_dir_all(cache.join("minbase-layout"));
    let partial = cache.join("minbase-rootfs.partial");
    let _ = std::fs::remove_dir_all(&partial);
    let mirror = mirror();
    eprintln!(
        "bench: debootstrap --variant=minbase {SUITE} {} {mirror} (a few minutes)",
        partial.display()
    );
    run(Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(SUITE)
        .arg(&partial)
        .arg(&mirror));
    minimize(&partial);
    std::fs::rename(&partial, &rootfs)
        .unwrap_or_else(|e| panic!("renaming {}: {e}", partial.display()));
    rootfs
}

/// Removes apt's downloaded packages and package lists, as the official
/// Debian images do.
fn minimize(rootfs: &Path) {
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let dir = rootfs.join(dir);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let e = e.expect("directory entry");
            if e.file_type().expect("file type").is_file() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    for f in [
        "var/cache/apt/pkgcache.bin",
        "var/cache/apt/srcpkgcache.bin",
    ] {
        let _ = std::fs::remove_file(rootfs.join(f));
    }
}

/// `$KILN_BENCH_MIRROR`, else the first Debian mirror apt's sources list
/// for [`SUITE`], else `http://deb.debian.org/debian`.
fn mirror() -> String {
    if let Some(m) = std::env::var_os("KILN_BENCH_MIRROR") {
        return m.to_string_lossy().into_owned();
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| Some(e.ok()?.path())).collect();
        more.sort();
        files.extend(more);
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|text| apt_mirror(&text, SUITE))
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_owned())
}

/// The first URI serving `suite` in a one-line or deb822 sources file.
fn apt_mirror(text: &str, suite: &str) -> Option<String> {
    // One-line style: `deb [options] uri suite components...`.
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("deb ") else {
            continue;
        };
        // Options may hold spaces: the URI follows the closing `]`.
        let rest = match rest.trim_start().strip_prefix('[') {
            Some(options) => match options.split_once(']') {
                Some((_, rest)) => rest,
                None => continue,
            },
            None => rest,
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.get(1) == Some(&suite) {
            return Some(words[0].to_owned());
        }
    }
    // deb822 style: stanzas with `URIs:` and `Suites:`.
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(str::trim))
        };
        let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) else {
            continue;
        };
        if field("Types:").is_some_and(|t| !t.split_whitespace().any(|t| t == "deb")) {
            continue;
        }
        if suites.split_whitespace().any(|s| s == suite) {
            return uris.split_whitespace().next().map(str::to_owned);
        }
    }
    None
}

/// `minbase-layout/` and its description (`image.json`), made when absent.
fn ensure_layout(cache: &Path, rootfs: &Path) -> (PathBuf, Value) {
    let layout = cache.join("minbase-layout");
    let meta_path = layout.join("image.json");
    if !meta_path.is_file() {
        let partial = cache.join("minbase-layout.partial");
        let _ = std::fs::remove_dir_all(&partial);
        eprintln!("bench: packing {} into an OCI layout", rootfs.display());
        let (manifest, layer) = layout_from_rootfs(rootfs, &partial, TAG, &DEBIAN);
        let entries = tools::walk(rootfs).len() - 1;
        let meta = json!({
            "suite": SUITE,
            "manifest": manifest,
            "layer": layer.digest,
            "layer_bytes": layer.size,
            "tar_bytes": tar_size(&layer.path),
            "entries": entries,
        });
        write(&partial.join("image.json"), meta.to_string());
        let _ = std::fs::remove_dir_all(&layout);
        std::fs::rename(&partial, &layout)
            .unwrap_or_else(|e| panic!("renaming {}: {e}", partial.display()));
    }
    let text = std::fs::read_to_string(&meta_path).expect("reading image.json");
    (
        layout,
        serde_json::from_str(&text).expect("parsing image.json"),
    )
}

/// Uncompressed size of a gzip file (`gzip -dc | wc -c`, without a shell).
fn tar_size(gz: &Path) -> u64 {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .arg(gz)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting gzip -dc");
    let mut out = child.stdout.take().expect("gzip's stdout");
    let n = std::io::copy(&mut out, &mut std::io::sink()).expect("reading gzip -dc");
    assert!(
        child.wait().expect("waiting for gzip").success(),
        "gzip -dc failed"
    );
    n
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn stats(samples: &[Sample]) -> Value {
    json!({
        "wall_s": samples.iter().map(|s| round3(s.wall)).collect::<Vec<_>>(),
        "median_s": round3(median(samples.iter().map(|s| s.wall).collect())),
        "min_s": round3(samples.iter().map(|s| s.wall).fold(f64::INFINITY, f64::min)),
        "cpu_s": samples.iter().map(|s| round3(s.cpu)).collect::<Vec<_>>(),
        "median_cpu_s": round3(median(samples.iter().map(|s| s.cpu).collect())),
        "peak_rss_kib": samples.iter().map(|s| s.rss_kib).collect::<Vec<_>>(),
        "max_peak_rss_mib": round1(mib(samples.iter().map(|s| s.rss_kib).max().unwrap_or(0))),
        "median_phases_s": phase_medians(samples),
    })
}

/// Medians of kiln's phases, when every sample has them.
fn phase_medians(samples: &[Sample]) -> Value {
    let phases: Option<Vec<Phases>> = samples.iter().map(|s| s.phases).collect();
    match phases {
        Some(p) if !p.is_empty() => json!({
            "pull": round3(median(p.iter().map(|p| p.pull).collect())),
            "unpack": round3(median(p.iter().map(|p| p.unpack).collect())),
            "rest": round3(median(p.iter().map(|p| p.finish).collect())),
        }),
        _ => Value::Null,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn report(image: &Value, rounds: &[(Sample, Reference)], scratch: &Path) -> Value {
    let kiln: Vec<Sample> = rounds.iter().map(|r| r.0).collect();
    let skopeo: Vec<Sample> = rounds.iter().map(|r| r.1.skopeo).collect();
    let umoci: Vec<Sample> = rounds.iter().map(|r| r.1.umoci).collect();
    let reference: Vec<f64> = rounds.iter().map(|r| r.1.wall()).collect();
    let reference_cpu: Vec<f64> = rounds.iter().map(|r| r.1.cpu()).collect();
    let kiln_median = median(kiln.iter().map(|s| s.wall).collect());
    let reference_median = median(reference.clone());
    let ratio = kiln_median / reference_median;
    let kiln_rss = mib(kiln.iter().map(|s| s.rss_kib).max().unwrap_or(0));
    json!({
        "image": image,
        "rounds": rounds.len(),
        "scratch": scratch.display().to_string(),
        "kiln": stats(&kiln),
        "skopeo_copy": stats(&skopeo),
        "umoci_unpack": stats(&umoci),
        "reference": {
            "wall_s": reference.iter().map(|&w| round3(w)).collect::<Vec<_>>(),
            "median_s": round3(reference_median),
            "min_s": round3(reference.iter().copied().fold(f64::INFINITY, f64::min)),
            "cpu_s": reference_cpu.iter().map(|&c| round3(c)).collect::<Vec<_>>(),
            "median_cpu_s": round3(median(reference_cpu.clone())),
        },
        "ratio": round3(ratio),
        "goal": { "ratio_at_most": GOAL_RATIO, "kiln_peak_rss_mib_under": GOAL_RSS_MIB },
        "met": {
            "time": ratio <= GOAL_RATIO,
            "rss": kiln_rss < GOAL_RSS_MIB,
        },
    })
}

fn print_table(r: &Value) {
    let image = &r["image"];
    println!();
    println!(
        "pull + unpack of debian:{TAG} ({SUITE} minbase: {} entries, layer {:.1} MiB gzip, {:.1} MiB tar), median of {} rounds",
        image["entries"],
        image["layer_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
        image["tar_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
        r["rounds"]
    );
    println!();
    println!(
        "| {:<28} | {:>10} | {:>14} | {:>14} |",
        "", "median (s)", "median CPU (s)", "peak RSS (MiB)"
    );
    println!("|{:-<30}|{:->12}|{:->16}|{:->16}|", "", "", "", "");
    let row = |name: &str, s: &Value| {
        let rss = s["max_peak_rss_mib"]
            .as_f64()
            .map(|m| format!("{m:.1}"))
            .unwrap_or_default();
        println!(
            "| {:<28} | {:>10.3} | {:>14.3} | {:>14} |",
            name,
            s["median_s"].as_f64().unwrap_or(f64::NAN),
            s["median_cpu_s"].as_f64().unwrap_or(f64::NAN),
            rss
        );
    };
    row("kiln build (pull + unpack)", &r["kiln"]);
    row("skopeo copy", &r["skopeo_copy"]);
    row("umoci unpack", &r["umoci_unpack"]);
    row("skopeo + umoci", &r["reference"]);
    let p = &r["kiln"]["median_phases_s"];
    if !p.is_null() {
        println!();
        println!(
            "kiln's run, medians: pull {:.3}s, unpack {:.3}s, rest (assembly, build root removal, exit) {:.3}s",
            p["pull"].as_f64().unwrap_or(f64::NAN),
            p["unpack"].as_f64().unwrap_or(f64::NAN),
            p["rest"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!();
    println!(
        "kiln / (skopeo + umoci) = {:.3} (goal <= {GOAL_RATIO}: {}); kiln peak RSS {:.1} MiB (goal < {GOAL_RSS_MIB}: {})",
        r["ratio"].as_f64().unwrap_or(f64::NAN),
        if r["met"]["time"] == true {
            "met"
        } else {
            "NOT met"
        },
        r["kiln"]["max_peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
        if r["met"]["rss"] == true {
            "met"
        } else {
            "NOT met"
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mirror_in_one_line_and_deb822_sources() {
        let one_line = "# comment\ndeb-src http://src/debian bookworm main\n\
                        deb [arch=amd64 signed-by=/k.gpg] http://one/debian bookworm main\n";
        assert_eq!(
            apt_mirror(one_line, "bookworm").as_deref(),
            Some("http://one/debian")
        );
        let plain = "deb http://plain/debian bookworm main contrib\n";
        assert_eq!(
            apt_mirror(plain, "bookworm").as_deref(),
            Some("http://plain/debian")
        );
        let deb822 = "Types: deb\nURIs: http://sec/debian-security\nSuites: bookworm-security\n\n\
                      Types: deb\n# note\nURIs: http://main/debian\nSuites: bookworm bookworm-updates\n\
                      Components: main\n";
        assert_eq!(
            apt_mirror(deb822, "bookworm").as_deref(),
            Some("http://main/debian")
        );
        assert_eq!(apt_mirror(deb822, "trixie"), None);
    }

    #[test]
    fn phases_split_at_the_pull_and_layer_lines() {
        let lines = vec![
            (
                0.1,
                " INFO pulling 127.0.0.1:5000/debian:minbase for linux/amd64".to_owned(),
            ),
            (
                0.5,
                " INFO pulled 127.0.0.1:5000/debian:minbase as sha256:ab".to_owned(),
            ),
            (2.0, "DEBUG layer written digest=sha256:cd".to_owned()),
        ];
        let p = phases(&lines, 2.25).expect("both lines are there");
        assert_eq!((p.pull, p.unpack, p.finish), (0.5, 1.5, 0.25));
        assert!(phases(&lines[..2], 2.25).is_none());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}

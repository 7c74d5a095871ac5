//! `bench_pull`: pulling and unpacking a Debian minbase image with kiln,
//! against `skopeo copy` + `umoci unpack` of the same image, in one run
//! (`make bench-pull`).
//!
//! Setup, cached under `target/bench-cache/` (delete a directory there to
//! rebuild it): the minbase image of [`kiln_tests::bench`] (debootstrap,
//! needs root the first time).
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

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_tests::bench::{
    SUITE, Sample, TAG, measure, median, mib, push_minbase, release_kiln, require_tools, round3,
    stats,
};
use kiln_tests::tools::{self, mkdir, write};
use kiln_tests::{Registry, target_dir};
use serde_json::{Value, json};

/// The goals of issue 3.
const GOAL_RATIO: f64 = 1.0;
const GOAL_RSS_MIB: f64 = 100.0;

fn main() {
    let args = Args::parse();
    require_tools(&[
        "debootstrap",
        "skopeo",
        "umoci",
        "docker-registry",
        "tar",
        "gzip",
    ]);
    let kiln = release_kiln();
    let registry = Registry::start_plain();
    let kiln_tests::bench::Pushed { image_ref, image } = push_minbase(&registry);

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
    kiln_tests::bench::write_report(&report, args.json, "bench-pull.json");
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

/// Where a kiln run's wall time went, in seconds.
#[derive(Clone, Copy, Debug)]
struct Phases {
    pull: f64,
    unpack: f64,
    finish: f64,
}

/// kiln's run: the process and its phases (see [`phases`]).
#[derive(Clone, Copy, Debug)]
struct KilnRun {
    sample: Sample,
    phases: Option<Phases>,
}

impl KilnRun {
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
        format!("{}{phases}", self.sample.show())
    }
}

/// skopeo and umoci of one round.
#[derive(Clone, Copy, Debug)]
struct Reference {
    skopeo: Sample,
    umoci: Sample,
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

    fn kiln_round(&self, round: &str) -> KilnRun {
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
        let (sample, lines) = measure(&cmd, &self.scratch.join(round));
        let phases = phases(&lines, sample.wall);
        assert!(
            store.join("blobs/sha256").join(&self.layer_hex).is_file(),
            "kiln stored no base layer in {}",
            store.display()
        );
        KilnRun { sample, phases }
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
        let (skopeo, _) = measure(&skopeo, &self.scratch.join(round));
        let mut umoci = Command::new("umoci");
        umoci.arg("unpack");
        if !tools::is_root() {
            umoci.arg("--rootless");
        }
        umoci
            .arg("--image")
            .arg(format!("{}:t", oci.display()))
            .arg(&bundle);
        let (umoci, _) = measure(&umoci, &self.scratch.join(round));
        assert!(
            bundle.join("rootfs/usr/bin/bash").is_file(),
            "umoci unpacked no rootfs in {}",
            bundle.display()
        );
        Reference { skopeo, umoci }
    }
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

/// Medians of kiln's phases, when every sample has them.
fn phase_medians(runs: &[KilnRun]) -> Value {
    let phases: Option<Vec<Phases>> = runs.iter().map(|r| r.phases).collect();
    match phases {
        Some(p) if !p.is_empty() => json!({
            "pull": round3(median(p.iter().map(|p| p.pull).collect())),
            "unpack": round3(median(p.iter().map(|p| p.unpack).collect())),
            "rest": round3(median(p.iter().map(|p| p.finish).collect())),
        }),
        _ => Value::Null,
    }
}

fn report(image: &Value, rounds: &[(KilnRun, Reference)], scratch: &Path) -> Value {
    let kiln_runs: Vec<KilnRun> = rounds.iter().map(|r| r.0).collect();
    let kiln: Vec<Sample> = kiln_runs.iter().map(|r| r.sample).collect();
    let skopeo: Vec<Sample> = rounds.iter().map(|r| r.1.skopeo).collect();
    let umoci: Vec<Sample> = rounds.iter().map(|r| r.1.umoci).collect();
    let reference: Vec<f64> = rounds.iter().map(|r| r.1.wall()).collect();
    let reference_cpu: Vec<f64> = rounds.iter().map(|r| r.1.cpu()).collect();
    let kiln_median = median(kiln.iter().map(|s| s.wall).collect());
    let reference_median = median(reference.clone());
    let ratio = kiln_median / reference_median;
    let kiln_rss = mib(kiln.iter().map(|s| s.rss_kib).max().unwrap_or(0));
    let mut kiln_stats = stats(&kiln);
    kiln_stats["median_phases_s"] = phase_medians(&kiln_runs);
    json!({
        "image": image,
        "rounds": rounds.len(),
        "scratch": scratch.display().to_string(),
        "kiln": kiln_stats,
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
}

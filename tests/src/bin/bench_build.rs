//! `bench_build`: building Dockerfiles on a Debian minbase base with kiln
//! and with `buildah build --isolation chroot --storage-driver vfs
//! --layers`, side by side in one run (`make bench-build`).
//!
//! The base is the minbase image of [`kiln_tests::bench`] (cached under
//! `target/bench-cache/`; debootstrap needs root the first time), pushed
//! to a local registry ([`Registry::start_plain`]) as `debian:minbase`.
//! Both tools pull it over plain HTTP in every round (fresh stores).
//!
//! - **(a) steps** and **(b) whole build**: [`SMALL`], a RUN that writes
//!   10,000 small files (100 directories of 100), then three RUNs that
//!   each rewrite one of them. `--rounds` rounds (default 3) after one
//!   untimed warm-up round, kiln and buildah alternating which goes first.
//!   Per step, kiln's snapshot cost is read from its debug log
//!   (`KILN_LOG=info,kiln::snapshot=debug`, `--log-timestamp`): from the
//!   start of the walk after the RUN (`root indexed` with its
//!   `elapsed_us`) to the end of the layer (`layer written`), i.e. walk +
//!   diff + tar + gzip + commit to the store. The step's wall time (sandbox
//!   start to layer written) is given for both tools: kiln's from one
//!   `layer written` to the next, buildah's from one `STEP` line to the
//!   next (its RUN and its vfs commit of the layer).
//! - **(c) peak RSS with a 1 GiB layer**: [`BIG`], `RUN head -c 1GiB
//!   /dev/urandom > /big`: random bytes, incompressible, so the gzip layer
//!   is as large as the data and the compressor does its most work.
//!   `--big-rounds` rounds (default 1), no warm-up; `--no-big` skips it.
//!
//! Wall times are measured around each process, CPU time and peak RSS by
//! GNU time (`%U %S %M`; the peak is the largest of the process and the
//! descendants it waited for). Every process starts after a `sync`; each
//! round's directories are removed after it, untimed. The table is printed
//! and written as JSON to `target/bench-build.json` (or `--json <path>`).
//! kiln is `$KILN_BIN`, else `target/release/kiln`, with its default
//! `--isolation auto`. The rounds run under `target/bench-build-scratch/`,
//! or `<DIR>/kiln-bench-build/` with `--scratch <DIR>`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark reports on the terminal"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_tests::bench::{
    Sample, TAG, measure, median, mib, push_minbase, release_kiln, require_tools, round1, round3,
    stats,
};
use kiln_tests::tools::{mkdir, write};
use kiln_tests::{Registry, target_dir};
use serde_json::{Value, json};

/// (a)/(b): 10,000 small files, then three one-file steps. `{base}` is the
/// base image's reference.
const SMALL: &str = "FROM {base}\n\
RUN mkdir /data && for d in $(seq 0 99); do mkdir /data/$d; \
for f in $(seq 0 99); do echo \"$d $f\" > /data/$d/$f; done; done\n\
RUN echo one > /data/1/1\n\
RUN echo two > /data/50/50\n\
RUN echo three > /data/99/99\n";
/// Names of [`SMALL`]'s RUN steps.
const SMALL_STEPS: [&str; 4] = [
    "RUN 10,000 files",
    "RUN one file (1)",
    "RUN one file (2)",
    "RUN one file (3)",
];
/// (c): a 1 GiB layer of random bytes.
const BIG: &str = "FROM {base}\nRUN head -c 1073741824 /dev/urandom > /big\n";
/// What [`BIG`]'s layer holds, for the report.
const BIG_KIND: &str = "1 GiB from /dev/urandom (incompressible)";

/// The goals of issue 4.
const GOAL_STEP_MS: f64 = 50.0;
const GOAL_RATIO: f64 = 0.8;
const GOAL_RSS_MIB: f64 = 150.0;

fn main() {
    let args = Args::parse();
    require_tools(&[
        "debootstrap",
        "skopeo",
        "docker-registry",
        "buildah",
        "tar",
        "gzip",
    ]);
    let kiln = release_kiln();
    let registry = Registry::start_plain();
    let pushed = push_minbase(&registry);

    let scratch = args
        .scratch
        .clone()
        .unwrap_or_else(|| target_dir().join("bench-build-scratch"));
    let _ = std::fs::remove_dir_all(&scratch);
    let bench = Bench {
        kiln,
        host: registry.host(),
        scratch: scratch.clone(),
    };
    let small = bench.context("small", SMALL, &pushed.image_ref);

    eprintln!("bench: warm-up round (not counted)");
    bench.kiln_round(&small, "warm-up");
    bench.buildah_round(&small, "warm-up");
    let mut rounds = Vec::new();
    for r in 0..args.rounds {
        let name = format!("round-{r}");
        let (k, b) = if r % 2 == 0 {
            let k = bench.kiln_round(&small, &name);
            (k, bench.buildah_round(&small, &name))
        } else {
            let b = bench.buildah_round(&small, &name);
            (bench.kiln_round(&small, &name), b)
        };
        eprintln!(
            "bench: {name}: kiln {} snapshots {:?} ms | buildah {} steps {:?} ms",
            k.sample.show(),
            k.snapshot_ms.iter().map(|&m| round1(m)).collect::<Vec<_>>(),
            b.sample.show(),
            b.step_ms.iter().map(|&m| round1(m)).collect::<Vec<_>>(),
        );
        rounds.push((k, b));
    }

    let mut big = Vec::new();
    if args.big_rounds > 0 {
        let context = bench.context("big", BIG, &pushed.image_ref);
        for r in 0..args.big_rounds {
            let name = format!("big-{r}");
            let k = bench.kiln_round(&context, &name);
            let b = bench.buildah_round(&context, &name);
            eprintln!(
                "bench: {name}: kiln {} | buildah {}",
                k.sample.show(),
                b.sample.show()
            );
            big.push((k, b));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let report = report(&pushed.image, &rounds, &big, &scratch);
    print_table(&report);
    kiln_tests::bench::write_report(&report, args.json, "bench-build.json");
}

/// Command-line arguments.
struct Args {
    rounds: usize,
    big_rounds: usize,
    json: Option<PathBuf>,
    scratch: Option<PathBuf>,
}

impl Args {
    fn parse() -> Self {
        let mut args = Self {
            rounds: 3,
            big_rounds: 1,
            json: None,
            scratch: None,
        };
        let number = |v: Option<std::ffi::OsString>, what: &str| -> usize {
            v.and_then(|v| v.to_str()?.parse().ok())
                .unwrap_or_else(|| panic!("{what} takes a number"))
        };
        let mut it = std::env::args_os().skip(1);
        while let Some(a) = it.next() {
            match a.to_str() {
                Some("--rounds") => {
                    args.rounds = number(it.next(), "--rounds");
                    assert!(args.rounds > 0, "--rounds takes a positive number");
                }
                Some("--big-rounds") => args.big_rounds = number(it.next(), "--big-rounds"),
                Some("--no-big") => args.big_rounds = 0,
                Some("--json") => {
                    args.json = Some(PathBuf::from(it.next().expect("--json takes a path")));
                }
                Some("--scratch") => {
                    let dir = it.next().expect("--scratch takes a directory");
                    args.scratch = Some(PathBuf::from(dir).join("kiln-bench-build"));
                }
                _ => panic!(
                    "unknown argument {a:?}; usage: bench_build [--rounds N] [--big-rounds N | --no-big] [--json PATH] [--scratch DIR]"
                ),
            }
        }
        args
    }
}

/// A kiln build: the process, and per RUN step its snapshot cost, the
/// walk's part of it, and its wall time in milliseconds (see
/// [`kiln_steps`]).
#[derive(Clone, Debug)]
struct KilnRun {
    sample: Sample,
    snapshot_ms: Vec<f64>,
    walk_ms: Vec<f64>,
    step_ms: Vec<f64>,
    /// The isolation kiln reported.
    isolation: Option<String>,
}

/// A buildah build: the process, and per RUN step its wall time in
/// milliseconds (see [`buildah_steps`]).
#[derive(Clone, Debug)]
struct BuildahRun {
    sample: Sample,
    step_ms: Vec<f64>,
}

struct Bench {
    kiln: PathBuf,
    host: String,
    scratch: PathBuf,
}

impl Bench {
    /// A context directory `<scratch>/context-<name>` with `dockerfile`,
    /// `{base}` replaced by `base`.
    fn context(&self, name: &str, dockerfile: &str, base: &str) -> PathBuf {
        let dir = self.scratch.join(format!("context-{name}"));
        mkdir(&dir);
        write(&dir.join("Dockerfile"), dockerfile.replace("{base}", base));
        dir
    }

    /// A fresh directory `<scratch>/<round>/<what>`.
    fn fresh(&self, round: &str, what: &str) -> PathBuf {
        let dir = self.scratch.join(round).join(what);
        let _ = std::fs::remove_dir_all(&dir);
        mkdir(&dir);
        dir
    }

    fn kiln_round(&self, context: &Path, round: &str) -> KilnRun {
        let store = self.fresh(round, "kiln-store");
        let tmp = self.fresh(round, "kiln-tmp");
        let mut cmd = Command::new(&self.kiln);
        cmd.arg("build")
            .arg("--no-push")
            .arg("--log-timestamp")
            .arg("--insecure-registry")
            .arg(&self.host)
            .arg("--context")
            .arg(context)
            .arg("--dockerfile")
            .arg(context.join("Dockerfile"))
            .env("KILN_STORE_DIR", &store)
            // The build root goes under the temp dir.
            .env("TMPDIR", &tmp)
            .env("KILN_LOG", "info,kiln::snapshot=debug");
        let (sample, lines) = measure(&cmd, &self.scratch.join(round));
        self.keep_log(round, "kiln", &lines);
        let KilnSteps {
            snapshot_ms,
            walk_ms,
            step_ms,
        } = kiln_steps(&lines);
        assert!(
            !snapshot_ms.is_empty(),
            "kiln wrote no layer:\n{}",
            text(&lines)
        );
        let isolation = lines.iter().find_map(|(_, l)| {
            l.split_once("RUN isolation: ")
                .map(|(_, i)| i.trim().to_owned())
        });
        self.remove(round, &["kiln-store", "kiln-tmp"]);
        KilnRun {
            sample,
            snapshot_ms,
            walk_ms,
            step_ms,
            isolation,
        }
    }

    fn buildah_round(&self, context: &Path, round: &str) -> BuildahRun {
        let root = self.fresh(round, "buildah-root");
        let runroot = self.fresh(round, "buildah-runroot");
        let tmp = self.fresh(round, "buildah-tmp");
        let mut cmd = Command::new("buildah");
        cmd.arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(["--storage-driver", "vfs", "build"])
            .args(["--isolation", "chroot", "--layers", "--tls-verify=false"])
            .arg("--file")
            .arg(context.join("Dockerfile"))
            .args(["--tag", "localhost/kiln-bench:latest"])
            .arg(context)
            .env("TMPDIR", &tmp);
        let (sample, lines) = measure(&cmd, &self.scratch.join(round));
        self.keep_log(round, "buildah", &lines);
        let step_ms = buildah_steps(&lines);
        self.remove(round, &["buildah-root", "buildah-runroot", "buildah-tmp"]);
        BuildahRun { sample, step_ms }
    }

    /// Keeps a run's output in `target/bench-build-logs/<round>-<tool>.log`,
    /// each line with the seconds since the start when it was read.
    fn keep_log(&self, round: &str, tool: &str, lines: &[(f64, String)]) {
        let dir = target_dir().join("bench-build-logs");
        mkdir(&dir);
        let text: String = lines
            .iter()
            .map(|(t, l)| format!("{t:9.3} {l}\n"))
            .collect();
        write(&dir.join(format!("{round}-{tool}.log")), text);
    }

    /// Removes a round's directories (untimed).
    fn remove(&self, round: &str, what: &[&str]) {
        for w in what {
            let dir = self.scratch.join(round).join(w);
            std::fs::remove_dir_all(&dir)
                .unwrap_or_else(|e| panic!("removing {}: {e}", dir.display()));
        }
    }
}

fn text(lines: &[(f64, String)]) -> String {
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    text.join("\n")
}

/// Seconds since midnight of a log line's leading RFC 3339 timestamp
/// (`2026-01-02T03:04:05.123456Z ...`).
fn timestamp(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?;
    let (_, time) = stamp.split_once('T')?;
    let time = time.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// The value of `key=<number>` in a log line.
fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))?
        .parse()
        .ok()
}

/// Per layer kiln wrote, in milliseconds.
#[derive(Debug, Default)]
struct KilnSteps {
    /// From the start of the last walk before the layer (`root indexed`
    /// minus its `elapsed_us`) to `layer written`, by kiln's own
    /// timestamps: walk, diff, tar, compression, commit.
    snapshot_ms: Vec<f64>,
    /// That walk's `elapsed_us`.
    walk_ms: Vec<f64>,
    /// From the previous `layer written` (or `pulled` for the first) to
    /// this one: the whole step.
    step_ms: Vec<f64>,
}

fn kiln_steps(lines: &[(f64, String)]) -> KilnSteps {
    let mut out = KilnSteps::default();
    let mut walk = None;
    let mut step_start = None;
    for (_, line) in lines {
        let Some(t) = timestamp(line) else {
            continue;
        };
        if line.contains(" pulled ") && line.contains(" as sha256:") {
            step_start = Some(t);
        } else if line.contains("root indexed") {
            walk = field(line, "elapsed_us").map(|us| (t - us / 1e6, us / 1e3));
        } else if line.contains("layer written") {
            if let Some((start, ms)) = walk.take() {
                out.snapshot_ms.push((t - start) * 1000.0);
                out.walk_ms.push(ms);
            }
            if let Some(s) = step_start {
                out.step_ms.push((t - s) * 1000.0);
            }
            step_start = Some(t);
        }
    }
    out
}

/// Per RUN step of a buildah build, in milliseconds, as read: from its
/// `STEP n/m: RUN` line to the next `STEP` line, or for the last step to
/// the `--> <id>` line that follows `COMMIT` (its layer committed).
fn buildah_steps(lines: &[(f64, String)]) -> Vec<f64> {
    let mut steps = Vec::new();
    let mut start: Option<f64> = None;
    let mut committing = false;
    for (t, line) in lines {
        let is_step = line.starts_with("STEP ");
        committing |= line.starts_with("COMMIT");
        if is_step || (committing && line.starts_with("-->")) {
            if let Some(s) = start.take() {
                steps.push((t - s) * 1000.0);
            }
            if is_step && line.contains(": RUN ") {
                start = Some(*t);
            }
        }
    }
    steps
}

/// Per-step medians over rounds.
fn step_medians(per_round: &[Vec<f64>]) -> Vec<f64> {
    let n = per_round.iter().map(Vec::len).min().unwrap_or(0);
    (0..n)
        .map(|i| median(per_round.iter().map(|r| r[i]).collect()))
        .collect()
}

fn report(
    image: &Value,
    rounds: &[(KilnRun, BuildahRun)],
    big: &[(KilnRun, BuildahRun)],
    scratch: &Path,
) -> Value {
    let kiln: Vec<Sample> = rounds.iter().map(|r| r.0.sample).collect();
    let buildah: Vec<Sample> = rounds.iter().map(|r| r.1.sample).collect();
    let snapshots: Vec<Vec<f64>> = rounds.iter().map(|r| r.0.snapshot_ms.clone()).collect();
    let kiln_steps: Vec<Vec<f64>> = rounds.iter().map(|r| r.0.step_ms.clone()).collect();
    let buildah_steps: Vec<Vec<f64>> = rounds.iter().map(|r| r.1.step_ms.clone()).collect();
    let walks: Vec<Vec<f64>> = rounds.iter().map(|r| r.0.walk_ms.clone()).collect();
    let snapshot_medians = step_medians(&snapshots);
    let walk_medians = step_medians(&walks);
    let kiln_step_medians = step_medians(&kiln_steps);
    let buildah_step_medians = step_medians(&buildah_steps);
    let steps: Vec<Value> = SMALL_STEPS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let per_round = |v: &[Vec<f64>]| -> Vec<f64> {
                v.iter()
                    .filter_map(|r| r.get(i))
                    .map(|&m| round1(m))
                    .collect()
            };
            json!({
                "step": name,
                "kiln_snapshot_ms": per_round(&snapshots),
                "kiln_median_snapshot_ms": snapshot_medians.get(i).map(|&m| round1(m)),
                "kiln_walk_ms": per_round(&walks),
                "kiln_median_walk_ms": walk_medians.get(i).map(|&m| round1(m)),
                "kiln_step_ms": per_round(&kiln_steps),
                "kiln_median_step_ms": kiln_step_medians.get(i).map(|&m| round1(m)),
                "buildah_step_ms": per_round(&buildah_steps),
                "buildah_median_step_ms": buildah_step_medians.get(i).map(|&m| round1(m)),
            })
        })
        .collect();
    let one_file_max = snapshot_medians
        .get(1..)
        .unwrap_or_default()
        .iter()
        .copied()
        .fold(0.0, f64::max);
    let ratio = median(kiln.iter().map(|s| s.wall).collect())
        / median(buildah.iter().map(|s| s.wall).collect());
    let big_kiln: Vec<Sample> = big.iter().map(|r| r.0.sample).collect();
    let big_buildah: Vec<Sample> = big.iter().map(|r| r.1.sample).collect();
    let big_rss = mib(big_kiln.iter().map(|s| s.rss_kib).max().unwrap_or(0));
    let small_rss = mib(kiln.iter().map(|s| s.rss_kib).max().unwrap_or(0));
    json!({
        "image": image,
        "rounds": rounds.len(),
        "scratch": scratch.display().to_string(),
        "kiln_isolation": rounds.first().and_then(|r| r.0.isolation.clone()),
        "small": {
            "dockerfile": SMALL,
            "steps": steps,
            "kiln": stats(&kiln),
            "buildah": stats(&buildah),
            "ratio": round3(ratio),
        },
        "big": if big.is_empty() { Value::Null } else { json!({
            "dockerfile": BIG,
            "layer": BIG_KIND,
            "rounds": big.len(),
            "kiln": stats(&big_kiln),
            "buildah": stats(&big_buildah),
            "kiln_snapshot_ms": big.iter().map(|r| r.0.snapshot_ms.iter().map(|&m| round1(m)).collect::<Vec<_>>()).collect::<Vec<_>>(),
        })},
        "goal": {
            "one_file_snapshot_ms_under": GOAL_STEP_MS,
            "ratio_at_most": GOAL_RATIO,
            "kiln_peak_rss_mib_under": GOAL_RSS_MIB,
        },
        "met": {
            "one_file_snapshot": one_file_max < GOAL_STEP_MS,
            "time": ratio <= GOAL_RATIO,
            "rss": if big.is_empty() { Value::Null } else { json!(big_rss.max(small_rss) < GOAL_RSS_MIB) },
        },
    })
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn met(v: &Value) -> &'static str {
    match v.as_bool() {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    }
}

fn print_table(r: &Value) {
    let small = &r["small"];
    println!();
    println!(
        "(a) per RUN step, median of {} rounds (debian:{TAG} + 10,000 files; kiln isolation {})",
        r["rounds"],
        r["kiln_isolation"].as_str().unwrap_or("?")
    );
    println!();
    println!(
        "| {:<18} | {:>18} | {:>13} | {:>15} | {:>18} |",
        "step", "kiln snapshot (ms)", "of it walk", "kiln step (ms)", "buildah step (ms)"
    );
    println!(
        "|{:-<20}|{:->20}|{:->15}|{:->17}|{:->20}|",
        "", "", "", "", ""
    );
    for s in small["steps"].as_array().into_iter().flatten() {
        println!(
            "| {:<18} | {:>18.1} | {:>13.1} | {:>15.1} | {:>18.1} |",
            s["step"].as_str().unwrap_or(""),
            f(&s["kiln_median_snapshot_ms"]),
            f(&s["kiln_median_walk_ms"]),
            f(&s["kiln_median_step_ms"]),
            f(&s["buildah_median_step_ms"]),
        );
    }
    println!();
    println!("(b) whole build, median of {} rounds", r["rounds"]);
    println!();
    println!(
        "| {:<28} | {:>10} | {:>14} | {:>14} |",
        "", "median (s)", "median CPU (s)", "peak RSS (MiB)"
    );
    println!("|{:-<30}|{:->12}|{:->16}|{:->16}|", "", "", "", "");
    let row = |name: &str, s: &Value| {
        println!(
            "| {:<28} | {:>10.3} | {:>14.3} | {:>14.1} |",
            name,
            f(&s["median_s"]),
            f(&s["median_cpu_s"]),
            f(&s["max_peak_rss_mib"]),
        );
    };
    row("kiln build", &small["kiln"]);
    row("buildah build (vfs)", &small["buildah"]);
    let big = &r["big"];
    if !big.is_null() {
        println!();
        println!(
            "(c) {}, {} round(s): {}",
            BIG.lines().nth(1).unwrap_or(""),
            big["rounds"],
            BIG_KIND
        );
        println!();
        row("kiln build (1 GiB layer)", &big["kiln"]);
        row("buildah build (1 GiB layer)", &big["buildah"]);
    }
    println!();
    println!(
        "one-file snapshots: {} (goal < {GOAL_STEP_MS} ms); kiln / buildah = {:.3} ({}, goal <= {GOAL_RATIO}); kiln peak RSS {} (goal < {GOAL_RSS_MIB} MiB)",
        met(&r["met"]["one_file_snapshot"]),
        f(&small["ratio"]),
        met(&r["met"]["time"]),
        met(&r["met"]["rss"]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kiln_steps_from_the_debug_log() {
        let lines: Vec<(f64, String)> = [
            "2026-01-02T03:04:05.000000Z  INFO pulled h/debian:minbase as sha256:ab",
            "2026-01-02T03:04:05.500000Z DEBUG root indexed root=/r entries=10 elapsed_us=100000",
            "2026-01-02T03:04:06.000000Z DEBUG root indexed root=/r entries=20 elapsed_us=20000",
            "2026-01-02T03:04:06.030000Z DEBUG layer written digest=sha256:cd size=1 elapsed_us=9",
            "2026-01-02T03:04:06.130000Z DEBUG root indexed root=/r entries=20 elapsed_us=10000",
            "2026-01-02T03:04:06.150000Z DEBUG layer written digest=sha256:ef size=1 elapsed_us=9",
        ]
        .iter()
        .map(|l| (0.0, (*l).to_owned()))
        .collect();
        let steps = kiln_steps(&lines);
        let ms = |v: &[f64]| v.iter().map(|m| m.round()).collect::<Vec<_>>();
        assert_eq!(ms(&steps.snapshot_ms), [50.0, 30.0]);
        assert_eq!(ms(&steps.walk_ms), [20.0, 10.0]);
        assert_eq!(ms(&steps.step_ms), [1030.0, 120.0]);
    }

    #[test]
    fn buildah_steps_from_its_output() {
        let lines: Vec<(f64, String)> = [
            (0.0, "STEP 1/3: FROM h/debian:minbase"),
            (1.0, "STEP 2/3: RUN echo a"),
            (1.5, "--> 123"),
            (2.0, "STEP 3/3: RUN echo b"),
            (2.1, "COMMIT localhost/kiln-bench:latest"),
            (2.25, "--> 456"),
        ]
        .iter()
        .map(|(t, l)| (*t, (*l).to_owned()))
        .collect();
        assert_eq!(buildah_steps(&lines), [1000.0, 250.0]);
    }
}

//! Pieces the benchmarks (`bench_pull`, `bench_build`) share: the Debian
//! minbase image they start from, cached under `target/bench-cache/`, and
//! measuring a process with GNU time.
//!
//! - [`ensure_rootfs`]: `minbase-rootfs/`, `debootstrap --variant=minbase
//!   bookworm` from the Debian mirror apt uses on this machine
//!   (`$KILN_BENCH_MIRROR` overrides it), with apt's downloaded packages and
//!   package lists removed as the official Debian images do. Needs root.
//! - [`ensure_layout`]: `minbase-layout/`, that tree as one gzip layer (GNU
//!   tar, sorted, numeric owners) in an OCI image layout, tag [`TAG`]
//!   ([`crate::images::layout_from_rootfs`]), with `image.json` describing
//!   it.
//! - [`push_minbase`]: both of the above, pushed with skopeo to a registry
//!   as `debian:minbase`.
//! - [`measure`]: runs a process under GNU time after a `sync`, and returns
//!   its wall time, CPU time and peak RSS, and its standard error's lines
//!   with the time each was read.

#![allow(
    clippy::print_stderr,
    reason = "benchmarks report their setup steps on the terminal"
)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::images::{ImageMeta, layout_from_rootfs};
use crate::tools::{self, CopyOptions, mkdir, run, write};
use crate::{Registry, target_dir};

/// Debian release the image is made of.
pub const SUITE: &str = "bookworm";
/// Tag in the cached layout and in the registry.
pub const TAG: &str = "minbase";
/// The image's config.
pub const DEBIAN: ImageMeta<'static> = ImageMeta {
    name: "debian-minbase",
    cmd: &["bash"],
};
/// GNU time, for CPU times and peak RSS.
pub const GNU_TIME: &str = "/usr/bin/time";

/// Panics with a hint unless `tools` and GNU time are installed.
pub fn require_tools(tools: &[&str]) {
    for tool in tools {
        assert!(
            tools::which(tool).is_some(),
            "{tool} is not installed: run scripts/setup.sh"
        );
    }
    assert!(
        Path::new(GNU_TIME).is_file(),
        "{GNU_TIME} is missing (Debian package `time`): run scripts/setup.sh"
    );
}

/// The kiln binary to measure: `$KILN_BIN`, else `target/release/kiln`.
pub fn release_kiln() -> PathBuf {
    let kiln = std::env::var_os("KILN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("release/kiln"));
    assert!(
        kiln.is_file(),
        "{} is missing: build it with `cargo build --release --bin kiln`",
        kiln.display()
    );
    kiln
}

/// The minbase image, pushed.
#[derive(Debug)]
pub struct Pushed {
    /// `<host>/debian:minbase`.
    pub image_ref: String,
    /// The layout's `image.json`: suite, manifest and layer digests, layer
    /// and tar sizes, number of entries.
    pub image: Value,
}

/// Makes (or reuses) the cached minbase image and pushes it to `registry`
/// as `debian:minbase`.
pub fn push_minbase(registry: &Registry) -> Pushed {
    let cache = target_dir().join("bench-cache");
    mkdir(&cache);
    let rootfs = ensure_rootfs(&cache);
    let (layout, image) = ensure_layout(&cache, &rootfs);
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
    Pushed { image_ref, image }
}

/// One process: wall time and CPU time (user + system) in seconds, peak
/// RSS in KiB.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Wall time, measured around the process.
    pub wall: f64,
    /// User + system CPU time (GNU time `%U + %S`).
    pub cpu: f64,
    /// Peak RSS (GNU time `%M`).
    pub rss_kib: u64,
}

impl Sample {
    /// `1.234s (cpu 0.567s) 12.3 MiB`.
    pub fn show(&self) -> String {
        format!(
            "{:.3}s (cpu {:.3}s) {:.1} MiB",
            self.wall,
            self.cpu,
            mib(self.rss_kib)
        )
    }
}

/// Runs `cmd` under GNU time, panicking with its output when it fails.
/// Returns the sample and the lines of its standard output and error (one
/// pipe), each with the time since the start when it was read. GNU time's
/// output goes to a file in `dir`.
///
/// Dirty pages are written back first (`sync`, not timed), so that no
/// process pays for the writeback of what ran before it.
pub fn measure(cmd: &Command, dir: &Path) -> (Sample, Vec<(f64, String)>) {
    mkdir(dir);
    let rss_file = dir.join("rss");
    let mut timed = Command::new(GNU_TIME);
    timed
        .args(["-f", "%U %S %M", "-o"])
        .arg(&rss_file)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(cwd) = cmd.get_current_dir() {
        timed.current_dir(cwd);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let (reader, writer) = std::io::pipe().expect("making a pipe");
    timed
        .stdin(Stdio::null())
        .stdout(writer.try_clone().expect("duplicating a pipe"))
        .stderr(writer);
    rustix::fs::sync();
    let start = Instant::now();
    let mut child = timed
        .spawn()
        .unwrap_or_else(|e| panic!("starting {:?}: {e}", cmd.get_program()));
    // The pipe ends when the child closes it: drop the parent's copies.
    drop(timed);
    let mut stderr = BufReader::new(reader);
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
    };
    (sample, lines)
}

/// `minbase-rootfs/` in `cache`, made by debootstrap when absent.
pub fn ensure_rootfs(cache: &Path) -> PathBuf {
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
pub fn apt_mirror(text: &str, suite: &str) -> Option<String> {
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

/// `minbase-layout/` in `cache` and its description (`image.json`), made
/// from `rootfs` when absent.
pub fn ensure_layout(cache: &Path, rootfs: &Path) -> (PathBuf, Value) {
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
        .stdout(Stdio::piped())
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

/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The median (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Rounded to 3 decimals.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Rounded to 1 decimal.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Wall and CPU times (each, median, minimum) and peak RSS (each, maximum)
/// of `samples`, as JSON.
pub fn stats(samples: &[Sample]) -> Value {
    json!({
        "wall_s": samples.iter().map(|s| round3(s.wall)).collect::<Vec<_>>(),
        "median_s": round3(median(samples.iter().map(|s| s.wall).collect())),
        "min_s": round3(samples.iter().map(|s| s.wall).fold(f64::INFINITY, f64::min)),
        "cpu_s": samples.iter().map(|s| round3(s.cpu)).collect::<Vec<_>>(),
        "median_cpu_s": round3(median(samples.iter().map(|s| s.cpu).collect())),
        "peak_rss_kib": samples.iter().map(|s| s.rss_kib).collect::<Vec<_>>(),
        "max_peak_rss_mib": round1(mib(samples.iter().map(|s| s.rss_kib).max().unwrap_or(0))),
    })
}

/// Writes `report` as pretty JSON to `path`, or to `target/<default_name>`,
/// and says where.
#[expect(clippy::print_stdout, reason = "benchmarks report on stdout")]
pub fn write_report(report: &Value, path: Option<PathBuf>, default_name: &str) {
    let path = path.unwrap_or_else(|| target_dir().join(default_name));
    let text = serde_json::to_string_pretty(report).expect("serializing the report");
    write(&path, text + "\n");
    println!("written to {}", path.display());
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
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}

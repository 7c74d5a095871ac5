//! Benchmark: parse, and parse + plan, a generated 2,000-line Dockerfile
//! with heredocs, continuations, ARG/ENV expansion and several stages.
//!
//! Run with `make bench` (or `cargo bench -p kiln --bench frontend`).

use criterion::{Criterion, criterion_group, criterion_main};
use kiln::dockerfile::parse;
use kiln::plan::{PlanOptions, plan};
use std::hint::black_box;

/// A Dockerfile of at least `lines` lines, mixing every construct the
/// parser and planner handle.
fn big_dockerfile(lines: usize) -> String {
    let mut out =
        String::from("# syntax=docker/dockerfile:1\nARG BASE=busybox:1.36\nARG VERSION=1.0\n");
    let mut stage = 0;
    while out.lines().count() < lines {
        out.push_str(&format!("\nFROM ${{BASE}} AS stage{stage}\n"));
        out.push_str("ARG VERSION\nENV APP_HOME=/opt/app PATH=/opt/app/bin:$PATH\n");
        out.push_str("WORKDIR $APP_HOME\nLABEL version=\"${VERSION}\" stage=\"s${VERSION%%.*}\"\n");
        for i in 0..4 {
            out.push_str(&format!(
                "RUN --mount=type=cache,target=/var/cache/s{i} \\\n    echo step {i} && \\\n    mkdir -p /opt/app/{i} \\\n    && touch /opt/app/{i}/done\n"
            ));
        }
        out.push_str(
            "COPY <<EOF /opt/app/config.ini\n[app]\nhome=${APP_HOME}\nversion=${VERSION}\nEOF\n",
        );
        out.push_str("RUN <<-EOT sh\n\tset -e\n\techo heredoc\n\tEOT\n");
        if stage > 0 {
            out.push_str(&format!(
                "COPY --from=stage{} --chown=1000:1000 --chmod=u=rwX,go=rX /opt/app/ /opt/prev/\n",
                stage - 1
            ));
        }
        out.push_str("EXPOSE 8080/tcp 9000-9002\nHEALTHCHECK --interval=10s CMD [\"/bin/true\"]\n");
        out.push_str("USER 1000:1000\nCMD [\"/opt/app/bin/run\"]\n");
        stage += 1;
    }
    out
}

fn frontend(c: &mut Criterion) {
    let text = big_dockerfile(2000);
    let lines = text.lines().count();
    assert!(lines >= 2000, "generated {lines} lines");
    let options = PlanOptions::new();
    c.bench_function(&format!("parse {lines}-line Dockerfile"), |b| {
        b.iter(|| parse(black_box(text.as_bytes()), "Dockerfile").unwrap())
    });
    c.bench_function(&format!("parse+plan {lines}-line Dockerfile"), |b| {
        b.iter(|| {
            let df = parse(black_box(text.as_bytes()), "Dockerfile").unwrap();
            plan(&df, &options).unwrap()
        })
    });
}

criterion_group!(benches, frontend);
criterion_main!(benches);

//! Benchmark: change detection on a root of 10,000 small files (100
//! directories of 100 files, as a RUN that unpacks a package tree leaves).
//!
//! - `scan`: a full `Index::scan`;
//! - `one_file_step`: one file rewritten, then `Index::rescan` + diff
//!   against the index of the step before (the per-RUN cost the issue
//!   budgets at 50 ms);
//! - `one_file_step_with_layer`: the same plus writing the (gzip) layer.
//!
//! Run with `cargo bench -p kiln --bench snapshot`.

use criterion::{Criterion, criterion_group, criterion_main};
use kiln::rootfs::Root;
use kiln::snapshot::{
    IgnoreSet, Index, LayerCompression, LayerWriter, MediaTypes, diff, write_layer,
};
use kiln::store::BlobStore;
use std::hint::black_box;
use std::path::Path;

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 100;

fn populate(root: &Path) {
    for d in 0..DIRS {
        let dir = root.join(format!("usr/share/pkg{d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..FILES_PER_DIR {
            std::fs::write(dir.join(format!("file{f:03}.txt")), format!("{d}/{f}\n")).unwrap();
        }
    }
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    populate(tmp.path());
    let root = Root::open(tmp.path()).unwrap();
    let ignore = IgnoreSet::defaults(true);
    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&store_dir.path().join("store")).unwrap();

    let mut g = c.benchmark_group("snapshot_10k_files");
    g.sample_size(30);
    g.bench_function("scan", |b| {
        b.iter(|| black_box(Index::scan(&root, &ignore).unwrap()))
    });

    let target = tmp.path().join("usr/share/pkg042/file007.txt");
    let mut prev = Index::scan(&root, &ignore).unwrap();
    let mut n = 0u64;
    g.bench_function("one_file_step", |b| {
        b.iter(|| {
            n += 1;
            std::fs::write(&target, format!("changed {n}\n")).unwrap();
            let next = Index::rescan(&root, &ignore, &prev).unwrap();
            let changes = diff(&prev, &next);
            assert!(!changes.is_empty());
            prev = next;
            black_box(changes)
        })
    });
    g.bench_function("one_file_step_with_layer", |b| {
        b.iter(|| {
            n += 1;
            std::fs::write(&target, format!("changed {n}\n")).unwrap();
            let next = Index::rescan(&root, &ignore, &prev).unwrap();
            let changes = diff(&prev, &next);
            let mut w =
                LayerWriter::new(&store, LayerCompression::gzip(-1).unwrap(), MediaTypes::Oci)
                    .unwrap();
            write_layer(&root, &next, &changes, &mut w).unwrap();
            prev = next;
            black_box(w.finish().unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

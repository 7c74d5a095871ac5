//! Locating the shared conformance data.

use std::path::{Path, PathBuf};

/// `$KILN_CONFORMANCE_DIR`, else `shared/conformance` beside the checkout.
/// Panics when the folder is missing so a bad checkout cannot pass vacuously.
pub(crate) fn conformance_dir() -> PathBuf {
    let dir = std::env::var_os("KILN_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"));
    assert!(
        dir.is_dir(),
        "conformance data not found at {}: set KILN_CONFORMANCE_DIR or check out shared/ beside the repository",
        dir.display()
    );
    dir
}

/// The sub-directories of `dir`, sorted by name.
pub(crate) fn sorted_subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

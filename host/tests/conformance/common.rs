//! Shared helpers for the conformance tests.

use std::path::{Path, PathBuf};

/// The folder holding the shared conformance data: `$KILN_CONFORMANCE_DIR`
/// if set, else `shared/conformance` next to the repository checkout.
/// Panics if it does not exist, so a bad checkout cannot pass vacuously.
pub(crate) fn conformance_dir() -> PathBuf {
    let dir = match std::env::var_os("KILN_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
    };
    assert!(
        dir.is_dir(),
        "conformance data folder {} does not exist; set KILN_CONFORMANCE_DIR to the shared/conformance folder",
        dir.display()
    );
    dir
}

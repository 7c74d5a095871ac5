//! Helpers shared by the conformance modules.

use std::path::{Path, PathBuf};

/// The shared conformance folder: `$KILN_CONFORMANCE_DIR` if set, else
/// `shared/conformance` next to the checkout. Panics when the folder does not
/// exist, so that a bad checkout cannot pass vacuously.
pub(crate) fn conformance_dir() -> PathBuf {
    let dir = match std::env::var_os("KILN_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
    };
    assert!(
        dir.is_dir(),
        "conformance data folder {} does not exist; set KILN_CONFORMANCE_DIR to the \
         shared/conformance folder",
        dir.display()
    );
    dir
}

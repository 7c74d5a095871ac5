//! Layer tars: the entries a build step changed, written as a tar stream
//! (with whiteouts), compressed, hashed and stored as a blob in one pass.
//!
//! [`LayerWriter`] is the writing end. Its typed helpers take explicit
//! metadata, so what lands in the tar is decided here and nowhere else:
//! ustar headers with PAX records where ustar cannot say it (long or
//! non-ASCII paths, large ids, sizes or times, extended attributes as
//! `SCHILY.xattr.*`), empty user and group names, no access or change
//! times, directories named with a trailing `/`. With an mtime clamp
//! (`SOURCE_DATE_EPOCH`) every entry's mtime is at most the epoch, so equal
//! inputs give equal digests.
//!
//! Data flows through one chain, never held whole in memory:
//!
//! ```text
//! tar::Builder → HashingWriter (diff_id) → gzip | zstd | none → BlobWriter (digest, size)
//! ```
//!
//! # Change detection
//!
//! After a RUN step, [`Index::scan`] records every path's metadata (a
//! parallel walk through the root's `Dir`, no content read), [`diff`]
//! compares it with the index kept from the step before, and
//! [`write_layer`] streams what changed into a [`LayerWriter`]:
//!
//! ```text
//! Index::scan (before) … RUN … Index::rescan (after, reusing before) → diff → Changes → write_layer
//! ```
//!
//! [`IgnoreSet`] names what is never indexed nor written (`/proc`, `/sys`,
//! `/dev`, `/var/run`, host-provided files, mount targets, `--ignore-path`).
//!
//! May use `rootfs`, `image` and `store`; never the network.

mod changes;
mod diff;
mod index;
mod layer;
#[cfg(test)]
mod tests;

pub use changes::write_changes;
pub use diff::{Changes, diff, write_layer};
pub use index::{Entry, FileKind, IgnoreSet, Index};
pub use layer::{EntryMeta, Layer, LayerCompression, LayerWriter, MediaTypes, SpecialFile};

use crate::rootfs::RootfsError;
use crate::store::StoreError;
use std::io;

/// Errors of writing layers.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The blob store refused the layer.
    #[error("cannot store the layer blob")]
    Store(#[source] StoreError),
    /// Writing an entry (or finishing the stream) failed.
    #[error("cannot write layer entry {path}")]
    Io {
        /// The entry's path in the layer, or what was being done.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Walking or reading the build root failed.
    #[error("cannot {action} {path} in the build root")]
    Scan {
        /// The image path.
        path: String,
        /// What was being done.
        action: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A path that cannot name an entry of a layer.
    #[error("invalid layer path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An extended attribute name that a PAX record cannot carry.
    #[error("invalid extended attribute name {name:?} on {path}")]
    InvalidXattr {
        /// The entry.
        path: String,
        /// The attribute name.
        name: String,
    },
    /// A file's content was shorter than the size given for it (it changed
    /// while the layer was written).
    #[error("layer entry {path} has {actual} bytes, {expected} were declared")]
    ShortFile {
        /// The entry.
        path: String,
        /// The declared size.
        expected: u64,
        /// Bytes the reader gave.
        actual: u64,
    },
    /// A compression level outside the algorithm's range.
    #[error("{algorithm} compression level {level} is out of range {min}..={max}")]
    CompressionLevel {
        /// `gzip` or `zstd`.
        algorithm: &'static str,
        /// The level given.
        level: i64,
        /// The lowest level.
        min: i64,
        /// The highest level.
        max: i64,
    },
    /// Docker's media types have no layer type for this compression.
    #[error("docker media types have no {compression} layer type; use oci media types")]
    NoDockerMediaType {
        /// `zstd` or `uncompressed`.
        compression: &'static str,
    },
    /// A changed path could not be read back from the build root.
    #[error("cannot read {path} from the build root")]
    Root {
        /// The image path.
        path: String,
        /// Why.
        #[source]
        source: RootfsError,
    },
    /// An earlier call failed, so the layer is incomplete and cannot be finished.
    #[error("the layer writer failed earlier; the layer is incomplete")]
    Poisoned,
}

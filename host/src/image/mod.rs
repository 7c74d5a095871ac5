//! Pure OCI data: digests, platforms, media types, and (as the registry and
//! build work lands) image configs, manifests and indexes.
//!
//! May use nothing else in kiln; does no I/O.

mod digest;
pub mod media;
mod platform;

pub use digest::{Digest, DigestError, HashingReader, HashingWriter, Sha256};
pub use platform::{Platform, PlatformError, parse_platform};

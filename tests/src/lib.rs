//! End-to-end test support for kiln: locating the built binary, the
//! examples and the shared conformance data.

//! Conformance data from ../shared/conformance, read at test time.
mod common;
mod ignore;

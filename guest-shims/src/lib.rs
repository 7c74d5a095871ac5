//! The guest side of kiln's policy contract.
//!
//! Policy modules are WebAssembly components that kiln runs in a sandbox at
//! each checkpoint of a build (see `shared/reference/policy-design.md` and the
//! design notes in the workspace). This crate will hold what every policy
//! links: the typed request documents per checkpoint, helpers to build
//! findings, and the export macro over the one WIT world kept in `wit/`.
//!
//! It is empty until the policy engine lands; the workspace builds it so the
//! layout is fixed from the start.

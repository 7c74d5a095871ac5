//! Talking to OCI registries: references, credentials, pull and push.
//!
//! May use `image`; never the rootfs, the sandbox or the Dockerfile.
//!
//! Start with [`auth`]: registry credentials read exactly as Kaniko (and the
//! docker CLI) read them, from `config.json` and credential helpers.

pub mod auth;

//! kiln builds OCI container images from Dockerfiles without a daemon and
//! without privileges, and judges every build with WebAssembly policies.
//!
//! # Module map
//!
//! Read in data-flow order:
//!
//! | module | owns | may use |
//! |---|---|---|
//! | [`dockerfile`] | lexer, parser, shell-word expansion, `.dockerignore`; pure, no I/O | nothing else in kiln |
//! | [`plan`] | typed instructions, ARG scoping, stages, `--target` pruning, build-arg checks, build checks; pure | `dockerfile`, `image` |
//! | [`image`] | digests, platforms, media types, OCI configs and manifests; pure | nothing else in kiln |
//! | [`registry`] | references, credentials, pull/push, mirrors, retries; async over `oci-client` | `image`, `store` |
//! | [`store`] | the local content-addressed blob store (verify, then rename into place) | `image` |
//! | [`rootfs`] | the build root as a `cap_std::fs::Dir`: streaming layer unpack (whiteouts, links, modes, owners), chroot-style path resolution, WORKDIR, user lookup, COPY/ADD with an exact change set (context with `.dockerignore` or `--from` root; ADD archive extraction) | `image`, `plan`, `dockerfile` (ignore, glob) |
//! | [`snapshot`] | change detection after RUN (metadata index, diff, ignore set) and layer tars: typed entries, whiteouts, PAX, mtime clamp → compress → digest → store; layers from COPY/ADD change sets | `rootfs`, `image`, `store` |
//! | [`sandbox`] | RUN: namespaces, chroot or host-root isolation through a re-exec'd init; mounts | `rootfs`, `plan` (network mode) |
//! | [`output`] | docker-archive tarball, OCI image layout, digest files; atomic on disk | `image`, `store` |
//! | [`build`] | the executor: reads inputs, drives the modules above | all of the above |
//!
//! Modules still to come, in the order the design's data flow uses them:
//! `cache` and `policy` (the wasmtime host).
//!
//! The binary's `cli` module (in `src/cli/`, not part of this library) turns
//! flags into the options these modules take and is the only place that uses
//! `anyhow`.
//!
//! # Data flow so far
//!
//! ```text
//! Dockerfile bytes --dockerfile::parse--> Dockerfile { nodes with spans }
//!   --plan::Planner::plan(options)--> Plan { stages, needed stages, expanded instructions }
//! ```
//!
//! ```
//! let text = b"ARG BASE=busybox\nFROM $BASE AS build\nRUN echo hi\n";
//! let ast = kiln::dockerfile::parse(text, "Dockerfile").unwrap();
//! assert_eq!(ast.nodes.len(), 3);
//! ```

pub mod build;
pub mod dockerfile;
pub mod image;
pub mod output;
pub mod plan;
pub mod registry;
pub mod rootfs;
pub mod sandbox;
pub mod snapshot;
pub mod store;

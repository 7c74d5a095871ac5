//! From a parsed [`Dockerfile`](crate::dockerfile::Dockerfile) to a build
//! plan: typed and validated instructions, ARG scoping, stages and the stages
//! a `--target` needs. Pure: no network, no filesystem.

pub mod values;

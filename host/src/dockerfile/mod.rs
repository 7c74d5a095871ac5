//! Reading Dockerfiles exactly as BuildKit does. Pure: no I/O beyond the
//! text it is given, and nothing else from kiln.
//!
//! - [`parse`] turns bytes into a [`Dockerfile`]: directives, then one
//!   [`Node`] per instruction with its flags, arguments, heredocs and span.
//! - [`shell`] is BuildKit's word processor: quotes, escapes and `$VAR`
//!   expansion with every modifier.
//! - [`ignore`] is the `.dockerignore` matcher; [`glob`] is Go's
//!   `filepath.Match`, which both `.dockerignore` and COPY wildcards use.
//! - [`error`] holds the error types; every error can name `file:line:col`.

pub mod error;
pub mod glob;
pub mod ignore;
mod parser;
pub mod shell;

pub use error::{ParseError, Span};
pub use parser::{Directives, Dockerfile, Heredoc, Node, go_quote, parse};

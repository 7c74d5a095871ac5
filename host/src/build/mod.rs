//! The executor that drives a build. For now it gathers the inputs a plan
//! needs: the Dockerfile, found the way Kaniko finds it, and the
//! `.dockerignore` that applies to it.
//!
//! May use every other module; nothing uses it but the binary.
//!
//! [`config`] builds the image config of a stage the way BuildKit does.

pub mod config;
mod executor;
mod fetch;

pub use fetch::FetchError;

pub use executor::{BuildError, BuildOptions, BuildOutcome, Secret, SecretSource, run};

use crate::dockerfile::ignore::{IgnoreError, IgnoreMatcher, dockerfile_specific_ignore_name};
use std::path::{Path, PathBuf};

/// What a build reads before planning.
#[derive(Debug)]
pub struct Inputs {
    /// The context directory.
    pub context: PathBuf,
    /// Where the Dockerfile was found.
    pub dockerfile_path: PathBuf,
    /// The Dockerfile's bytes.
    pub dockerfile: Vec<u8>,
    /// The ignore file that applies, if any.
    pub ignore_file: Option<PathBuf>,
    /// Its patterns (empty when there is none).
    pub ignore: IgnoreMatcher,
}

/// Why the inputs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The context directory does not exist.
    #[error("build context {} is not a directory: expected --context to name a local directory", path.display())]
    ContextMissing {
        /// The path given.
        path: PathBuf,
    },
    /// No Dockerfile at any of the places Kaniko looks.
    #[error("Dockerfile {name:?} not found: tried {}", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and "))]
    DockerfileNotFound {
        /// What the user gave.
        name: String,
        /// The paths tried, in order.
        tried: Vec<PathBuf>,
    },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The ignore file is invalid.
    #[error("invalid ignore file {}", path.display())]
    Ignore {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: IgnoreError,
    },
}

/// Reads the Dockerfile and ignore file for a build.
///
/// `dockerfile` is taken as Kaniko takes `--dockerfile`: a path that
/// exists as given (absolute, or relative to the working directory) is
/// used; otherwise it is looked up relative to the context. The ignore file
/// is `<Dockerfile>.dockerignore` beside the Dockerfile when that exists
/// (BuildKit's Dockerfile-specific ignore file), else `.dockerignore` at the
/// context root.
///
/// # Ambient Authority
///
/// Reads the host filesystem at the paths the user gave.
pub fn load_inputs(context: &Path, dockerfile: &str) -> Result<Inputs, InputError> {
    if !context.is_dir() {
        return Err(InputError::ContextMissing {
            path: context.to_path_buf(),
        });
    }
    let given = PathBuf::from(dockerfile);
    let in_context = context.join(dockerfile);
    let dockerfile_path = if given.is_file() {
        given
    } else if in_context.is_file() {
        in_context
    } else {
        let mut tried = vec![given];
        if !Path::new(dockerfile).is_absolute() {
            tried.push(in_context);
        }
        return Err(InputError::DockerfileNotFound {
            name: dockerfile.to_string(),
            tried,
        });
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| InputError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let bytes = read(&dockerfile_path)?;
    let specific = dockerfile_path
        .file_name()
        .map(|n| dockerfile_specific_ignore_name(&n.to_string_lossy()))
        .map(|n| dockerfile_path.with_file_name(n));
    let ignore_file = specific
        .filter(|p| p.is_file())
        .or_else(|| Some(context.join(".dockerignore")).filter(|p| p.is_file()));
    let ignore = match &ignore_file {
        None => IgnoreMatcher::parse("").map_err(|source| InputError::Ignore {
            path: context.join(".dockerignore"),
            source,
        })?,
        Some(path) => {
            let text = String::from_utf8_lossy(&read(path)?).into_owned();
            IgnoreMatcher::parse(&text).map_err(|source| InputError::Ignore {
                path: path.clone(),
                source,
            })?
        }
    };
    Ok(Inputs {
        context: context.to_path_buf(),
        dockerfile_path,
        dockerfile: bytes,
        ignore_file,
        ignore,
    })
}

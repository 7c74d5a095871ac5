//! Command-line interface: clap flags with Kaniko's spellings, exit codes.

mod args;

use std::process::ExitCode;

use args::{Command, Exit};

/// Runs the command line and returns the process exit code.
pub(crate) fn main() -> ExitCode {
    let cli = args::parse_cli();
    match cli.command {
        Command::Version => Exit::Success.into(),
        Command::Build(build) if !build.not_yet_supported().is_empty() => Exit::NotSupported.into(),
        Command::Build(_) => Exit::Success.into(),
    }
}

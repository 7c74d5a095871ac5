//! Command-line interface: clap flags with Kaniko's spellings, exit codes.

use std::process::ExitCode;

/// Runs the command line and returns the process exit code.
pub(crate) fn main() -> ExitCode {
    ExitCode::SUCCESS
}

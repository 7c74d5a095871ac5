//! The `kiln` binary: a thin shell around the library.
//!
//! All flag handling lives in [`cli`]; this file only hands over the exit code.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

//! The `kiln` binary: a thin shell around the library.
//!
//! All flag handling lives in [`cli`]; this file only hands over the exit code.

mod cli;

fn main() -> std::process::ExitCode {
    // The sandbox init must take over before flags are parsed or any
    // thread starts: it unshares namespaces and forks.
    if kiln::sandbox::is_init_invocation() {
        kiln::sandbox::init_main();
    }
    cli::main()
}

//! `tally`: the command-line entry point, a thin clap layer over the library.
//!
//! Exit statuses (see `tally::exit`): 0 ok; 1 the run failed (kernel non-zero status, a
//! conservation check failed, an expectation failed); 2 config or usage error, nothing booted;
//! 3 timeout; 4 environment error (QEMU or the kernel image missing).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let arguments = cli::Cli::parse();
    match cli::dispatch(arguments) {
        Ok(status) => ExitCode::from(status),
        Err(failure) => {
            // Every line of a many-line message carries the prefix, so that each one reads as
            // the tool's (a config error lists one problem per line).
            for line in failure.to_string().lines() {
                eprintln!("tally: {line}");
            }
            ExitCode::from(failure.status)
        }
    }
}

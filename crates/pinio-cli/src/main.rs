//! `pinio`: benchmark zero-copy IO against copy IO, see which backends work
//! here, and echo data through a device.

mod bench;
mod crash_test;
mod echo;
mod info;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Zero-copy, DMA-style IO: benchmarks and tools.
#[derive(Parser)]
#[command(name = "pinio", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compare zero-copy backends against copy IO on a scratch file (the main job).
    Bench(bench::BenchArgs),
    /// List backends, whether they work on this machine, and their limits.
    Info(info::InfoArgs),
    /// Write a pattern through a device and read it back, comparing.
    Echo(echo::EchoArgs),
    /// Check every crash state of a crash log (recorded with record:<log>:<selection>).
    CrashTest(crash_test::CrashTestArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Bench(a) => bench::run(a),
        Command::Info(a) => info::run(a),
        Command::Echo(a) => echo::run(a),
        Command::CrashTest(a) => crash_test::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pinio: {e}");
            let mut src = std::error::Error::source(&*e);
            while let Some(s) = src {
                eprintln!("  caused by: {s}");
                src = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

/// The error type of the commands.
pub type CliResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

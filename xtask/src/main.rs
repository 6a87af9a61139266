//! `cargo xtask`: pinio's developer tasks.
//!
//! The host kernel of pinio's machines cannot load modules and has no VFIO,
//! so everything kernel-side runs in a QEMU guest booting a kernel that this
//! tool builds. See `docs/guest.md`.

mod bench;
mod cli;
mod cmd;
mod cpio;
mod deps;
mod guest_build;
mod guest_cli;
mod guest_lanes;
mod guest_tests;
mod hotplug;
mod initramfs;
mod kconfig;
mod kernel;
mod kmod;
mod logscan;
mod package_check;
mod paths;
mod progress;
mod qemu;
mod qmp;
mod shell;
mod soak;
mod stall;
mod test_count;
mod vm;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    let paths = paths::Paths::discover()?;
    match cli.command {
        cli::Command::Kernel(args) => {
            if args.print_dir {
                let kernel = kernel::Kernel::locate(&paths, args.variant)?;
                println!("{}", kernel.dir.display());
            } else {
                deps::ensure()?;
                let kernel = kernel::ensure_built(&paths, args.variant)?;
                println!("{}", kernel.dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Kmod(args) => {
            deps::ensure()?;
            let kernel = kernel::ensure_built(&paths, args.variant)?;
            let built = kmod::build_all(&paths, &kernel)?;
            for ko in &built {
                println!("{}", ko.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Vm(cli::VmCommand::Run(args)) => vm::run_command(&paths, &args),
        cli::Command::Vm(cli::VmCommand::Bench(args)) => bench::run(&paths, &args),
        cli::Command::Vm(cli::VmCommand::Soak(args)) => soak::run(&paths, &args),
        cli::Command::Test(args) => guest_tests::run(&paths, &args),
        cli::Command::PackageCheck => package_check::command(&paths),
    }
}

//! Command-line interface of `cargo xtask`.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// pinio developer tasks: guest kernel, QEMU runner, guest tests and benches.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build (or reuse) the guest kernel; prints its build directory.
    Kernel(KernelArgs),
    /// Build the out-of-tree kernel modules (kmod/ and the smoke module).
    Kmod(VariantArgs),
    /// Boot the guest.
    #[command(subcommand)]
    Vm(VmCommand),
    /// Host tests, then every guest test in boots of the `test` kernel side by side.
    Test(TestArgs),
    /// Every crate is publishable or `publish = false`: metadata, then
    /// `cargo package --workspace --no-verify` (also a stage of `test`).
    PackageCheck,
}

#[derive(Subcommand)]
pub enum VmCommand {
    /// Run one command in the guest and exit with its status.
    Run(RunArgs),
    /// Build and run the guest benchmarks; results go to target/guest-bench/.
    Bench(BenchArgs),
    /// Every guest backend busy for minutes on the test kernel (not CI):
    /// data verified, pins balanced, no kernel report (docs/reliability.md).
    Soak(SoakArgs),
}

/// Which kernel configuration to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Variant {
    /// Debug checks on (KASAN, lockdep, DEBUG_VM, ...): every guest test.
    Test,
    /// No debug checks: benchmarks only.
    Bench,
}

impl Variant {
    /// The name used in file names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Test => "test",
            Variant::Bench => "bench",
        }
    }
}

#[derive(Args)]
pub struct VariantArgs {
    /// Kernel variant.
    #[arg(long, value_enum, default_value = "test")]
    pub variant: Variant,
}

#[derive(Args)]
pub struct KernelArgs {
    /// Kernel variant.
    #[arg(long, value_enum, default_value = "test")]
    pub variant: Variant,
    /// Only print the build directory (no install, no build).
    #[arg(long)]
    pub print_dir: bool,
}

#[derive(Args)]
pub struct RunArgs {
    /// Kernel variant.
    #[arg(long, value_enum, default_value = "test")]
    pub variant: Variant,
    /// Report kernel problems but still exit with the command's status.
    #[arg(long)]
    pub keep_going: bool,
    /// Kill the guest after this many seconds (counts as a failure).
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// After this many seconds without console output, ask QEMU what the
    /// guest is doing and make its kernel print every task's stack and
    /// power off (for a guest that hangs without a word).
    #[arg(long, value_name = "SECS")]
    pub stall_after: Option<u64>,
    /// Do not build and load kmod/'s module.
    #[arg(long)]
    pub no_module: bool,
    /// Also load the smoke module with these parameters (e.g. `warn=1`).
    #[arg(long, value_name = "PARAMS")]
    pub smoke_module: Option<String>,
    /// The command to run in the guest, with its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Kernel variant.
    #[arg(long, value_enum, default_value = "bench")]
    pub variant: Variant,
    /// Kill the guest after this many seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
}

#[derive(Args)]
pub struct SoakArgs {
    /// Kernel variant (the debug kernel by default: KASAN, lockdep).
    #[arg(long, value_enum, default_value = "test")]
    pub variant: Variant,
    /// How long the backends run.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Worker threads per backend.
    #[arg(long, default_value_t = 3)]
    pub threads: usize,
    /// Seconds between report lines (operations, RSS, MemAvailable, pinned pages).
    #[arg(long, default_value_t = 30)]
    pub report_secs: u64,
    /// Backends, comma-separated (default: kmod,edu,nvme,copy,uring).
    #[arg(long)]
    pub backends: Option<String>,
    /// Seed (hex) instead of a fresh one.
    #[arg(long)]
    pub seed: Option<String>,
}

#[derive(Args)]
pub struct TestArgs {
    /// Skip the host tests (`cargo test --workspace`).
    #[arg(long)]
    pub no_host: bool,
    /// Skip the guest tests.
    #[arg(long)]
    pub no_guest: bool,
    /// Kill the guest after this many seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
    /// Boot this many guests side by side, each running its share of the
    /// guest tests (each guest has its own kernel, devices and pin counters,
    /// so the tests' checks cannot see each other).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=4))]
    pub guests: u32,
}

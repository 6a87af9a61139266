//! The `kvlog` example (`../kvlog.rs`, unchanged) as a binary target, built
//! only with the `guest-tests` feature, for tests/guest_kvlog.rs.
//!
//! xtask builds a guest test alone (`cargo test --no-run --test
//! guest_kvlog`), and cargo then builds the package's binaries for it (and
//! names them in `CARGO_BIN_EXE_<name>`) but not its examples: this target
//! is how the test gets a kvlog built from the same source, statically,
//! with the same flags.

#[path = "../kvlog.rs"]
mod kvlog;

fn main() -> std::process::ExitCode {
    kvlog::main()
}

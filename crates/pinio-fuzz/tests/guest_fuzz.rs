//! The interface fuzzer of `/dev/pinio`, run in the guest by `cargo xtask test`.
//!
//! Prints its seed first (so it is in the console log whatever happens next), then runs phase
//! one (sequential calls checked against the model) and phase two (threads racing on one open
//! file), between a pin guard and a kernel-log watch. Replay: `PINIO_FUZZ_SEED=<seed>`; more
//! calls: `PINIO_FUZZ_CALLS=<n>` or `PINIO_FUZZ_LONG=1` (docs/reliability.md).

use pinio_fuzz::fuzz::{self, Config};
use pinio_fuzz::harness::{checked, require_guest};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            println!("guest_fuzz: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "guest_fuzz: seed {:#x} (replay with PINIO_FUZZ_SEED={:#x}), {} calls, {} race rounds",
        cfg.seed, cfg.seed, cfg.calls, cfg.race_rounds
    );
    let mut report = None;
    let result = require_guest("/dev/pinio").and_then(|()| {
        checked(|| {
            report = Some(fuzz::run(&cfg)?);
            Ok(())
        })
    });
    match (result, report) {
        (Ok(()), Some(r)) => {
            println!("{}", r.table().trim_end());
            println!(
                "guest_fuzz: PASS seed {:#x}: {} calls ({} address-space changes), 0 kernel reports, 0 pins leaked, \
                 {} echo bytes compared, at most {} pages pinned, {:.1} s",
                cfg.seed,
                r.calls,
                r.address_space_changes,
                r.echo_bytes_checked,
                r.max_pinned_pages,
                r.elapsed.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        (Err(e), _) => {
            println!("guest_fuzz: FAIL seed {:#x}: {e}", cfg.seed);
            ExitCode::FAILURE
        }
        (Ok(()), None) => {
            println!("guest_fuzz: FAIL seed {:#x}: the run produced no report", cfg.seed);
            ExitCode::FAILURE
        }
    }
}

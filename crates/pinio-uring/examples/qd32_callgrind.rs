//! Runs N 4 KiB random O_DIRECT reads at QD32 through one of the two loops
//! of the `qd32_vs_raw` bench, for counting user-space instructions per IO
//! with callgrind (deterministic, unlike timings on a shared machine):
//!
//! ```text
//! cargo build --release -p pinio-uring --example qd32_callgrind
//! for m in raw pinio; do for n in 2000 12000; do
//!   valgrind --tool=callgrind --callgrind-out-file=cg.$m.$n target/release/examples/qd32_callgrind $m $n
//! done; done
//! ```
//!
//! Instructions per IO = (Ir(12000) - Ir(2000)) / 10000, which cancels the
//! set-up cost. `PINIO_BENCH_DIR` chooses where the 1 GiB scratch file lives.

#[path = "../benches/common/qd32.rs"]
mod qd32;

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "pinio".into());
    let ios: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let dir = std::env::var_os("PINIO_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let path = qd32::scratch_file(&dir);
    let done = match mode.as_str() {
        "raw" => qd32::RawLoop::new(&path).run(ios),
        "pinio" => qd32::PinioLoop::new(&path).run(ios),
        other => {
            eprintln!("unknown mode {other:?}: use raw or pinio");
            std::process::exit(2);
        }
    };
    println!("{mode}: {done} IOs");
}

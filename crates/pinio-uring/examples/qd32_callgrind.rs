//! Runs N 4 KiB random O_DIRECT reads at QD32 through one of the loops of
//! `benches/common/qd32.rs`, for counting user-space instructions per IO
//! with callgrind (deterministic, unlike timings on a shared machine).
//! Modes:
//!
//! - `raw`: the hand-written io-uring loop;
//! - `pinio`: pinio as a user holding the concrete `UringQueue` writes this
//!   loop (reads into the same slices again): `wait_rearm`, each completed
//!   slice checked in place and re-armed at its next offset;
//! - `pinio-batch`: the concrete queue, `wait` into a reused vector, then
//!   one `push_batch` of the drained completions mapped to their refills;
//! - `pinio-op`: the concrete queue, one inherent `push` per refill;
//! - `pinio-dyn-batch`: `Box<dyn Queue>`, one `Queue::push_batch` per batch;
//! - `pinio-dyn`: one `Queue::push` per refill through `Box<dyn Queue>`
//!   (the loop measured before the batch interface).
//!
//! ```text
//! cargo build --release -p pinio-uring --example qd32_callgrind
//! for m in raw pinio pinio-batch pinio-op pinio-dyn-batch pinio-dyn; do for n in 2000 12000; do
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
        "pinio" => qd32::PinioBatchLoop::new(&path).run_rearm(ios),
        "pinio-batch" => qd32::PinioBatchLoop::new(&path).run(ios),
        "pinio-op" => qd32::PinioBatchLoop::new(&path).run_per_op(ios),
        "pinio-dyn-batch" => qd32::PinioLoop::new(&path).run_batched(ios),
        "pinio-dyn" => qd32::PinioLoop::new(&path).run(ios),
        other => {
            eprintln!("unknown mode {other:?}: use raw, pinio, pinio-batch, pinio-op, pinio-dyn-batch or pinio-dyn");
            std::process::exit(2);
        }
    };
    println!("{mode}: {done} IOs");
}

//! Locked-memory exhaustion, in a child process whose thread has dropped
//! CAP_IPC_LOCK (so io_uring charges registrations to RLIMIT_MEMLOCK) and
//! whose soft limit is 8 MiB. Each parent test re-runs this test binary,
//! selecting the `child` test and the scenario through an environment
//! variable, and checks that the child reached its end.
//!
//! io_uring charges RLIMIT_MEMLOCK per user (`user->locked_vm`), so the
//! children of concurrent tests would share one charge: the parent tests
//! run one at a time.

mod common;

use common::Scratch;
use pinio_core::{Device, DmaBuf, Error, Op, Queue, Registration};
use pinio_uring::{RegistrationPolicy, UringDevice, UringOptions, UringRegistrar, memlock};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LIMIT: u64 = 8 << 20;
const BIG: usize = 64 << 20;
/// What one process registers in the late-release scenarios: two of these
/// do not fit under [`LIMIT`] at once.
const HOLD: usize = 6 << 20;
const ENV: &str = "PINIO_URING_MEMLOCK_CHILD";

/// One scenario at a time (they share this user's io_uring charge).
static SERIAL: Mutex<()> = Mutex::new(());

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Removes CAP_IPC_LOCK (14) from the calling thread's effective set.
fn drop_cap_ipc_lock() {
    let mut hdr = CapHeader { version: 0x2008_0522, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget with a v3 header fills two CapData entries.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut CapHeader, data.as_mut_ptr()) };
    assert_eq!(r, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << 14);
    // SAFETY: capset reads the header and two CapData entries.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    assert_eq!(r, 0, "capset: {}", std::io::Error::last_os_error());
    assert!(!memlock::has_cap_ipc_lock());
}

/// Lowers the soft RLIMIT_MEMLOCK to 8 MiB (never raises it).
fn limit_memlock() {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) }, 0);
    if rl.rlim_cur == libc::RLIM_INFINITY || rl.rlim_cur > LIMIT {
        rl.rlim_cur = LIMIT;
        // SAFETY: valid in-pointer; lowering the soft limit is always allowed.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rl) }, 0);
    }
}

/// This test binary, running only the `child` test as `scenario`.
fn child_command(scenario: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["child", "--exact", "--ignored", "--nocapture", "--test-threads=1"]).env(ENV, scenario);
    c
}

fn run_child(policy: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let out = child_command(policy).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child ({policy}) failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("MEMLOCK-CHILD-OK {policy}")),
        "child ({policy}) did not finish:\n{stdout}\n{stderr}"
    );
    if policy == "fallback" {
        assert_eq!(stderr.matches("pinio-uring: warning").count(), 1, "warned exactly once:\n{stderr}");
    }
}

#[test]
fn memlock_exhaustion_fails_clearly_under_policy_fail() {
    run_child("fail");
}

#[test]
fn memlock_exhaustion_falls_back_under_policy_fallback() {
    run_child("fallback");
}

/// A registration right after another process of this user exited with
/// registrations succeeds: the kernel releases the exited process's charge
/// asynchronously (io_ring_exit_work), and registration waits for it.
#[test]
fn registering_right_after_another_process_exits_succeeds() {
    run_child("after-exit");
}

/// A refusal caused by another process's charge says so, after the wait.
#[test]
fn a_charge_held_by_another_process_is_named_in_the_error() {
    run_child("held-elsewhere");
}

#[test]
#[ignore = "run by the memlock_* tests in a child process"]
fn child() {
    let Ok(scenario) = std::env::var(ENV) else { return };
    drop_cap_ipc_lock();
    limit_memlock();
    match scenario.as_str() {
        "fail" | "fallback" => policies(&scenario),
        "hold-exit" | "hold-wait" => hold(&scenario),
        "after-exit" => after_exit(),
        "held-elsewhere" => held_elsewhere(),
        other => panic!("unknown scenario {other}"),
    }
    println!("MEMLOCK-CHILD-OK {scenario}");
}

/// A uring domain of this (unprivileged) thread with `HOLD` bytes
/// registered, or the error.
fn register_hold() -> (pinio_core::Domain, Result<pinio_core::Region, pinio_core::RegisterError>) {
    let domain = UringRegistrar::domain(Default::default()).unwrap();
    let r = domain.register(DmaBuf::new(HOLD).unwrap());
    (domain, r)
}

/// Registers `HOLD` bytes, says so, and exits without unregistering: at
/// once (`hold-exit`), or when stdin closes (`hold-wait`).
fn hold(scenario: &str) {
    let (_domain, region) = register_hold();
    let region = region.unwrap_or_else(|e| panic!("the holder could not register: {e}"));
    assert!(region.key().is_registered());
    println!("HELD");
    std::io::stdout().flush().unwrap();
    if scenario == "hold-wait" {
        let _ = std::io::stdin().lines().count();
    }
    // No destructor runs: the rings are closed by the exit itself.
    std::process::exit(0);
}

/// Spawns a holder, waits for its exit, and registers at once.
fn after_exit() {
    for round in 0..10 {
        let out = child_command("hold-exit").output().unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("HELD"),
            "holder failed: {out:?}"
        );
        let start = Instant::now();
        let (_domain, r) = register_hold();
        let took = start.elapsed();
        if let Err(e) = &r {
            panic!("round {round}: registering right after the holder exited failed after {took:?}: {e}");
        }
        println!("round {round}: registered {took:?} after the holder exited");
    }
}

/// With a holder alive, the registration fails after the wait, naming the
/// other holder; a second refusal right after does not wait again.
fn held_elsewhere() {
    let mut holder = child_command("hold-wait").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    // Its lines, read on a thread so that a holder that never says HELD
    // fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = holder.stdout.take().unwrap();
    let reader =
        std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).for_each(|l| drop(tx.send(l))));
    let held = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(30)).ok()).any(|l| l.ends_with("HELD"));
    if !held {
        let _ = holder.kill();
        panic!("the holder did not register");
    }
    let start = Instant::now();
    let (domain, r) = register_hold();
    let took = start.elapsed();
    let e = r.expect_err("6 MiB + 6 MiB do not fit under 8 MiB");
    let msg = e.to_string();
    assert!(matches!(e.error, Error::MemlockLimit { requested, locked: 0, .. } if requested == HOLD as u64), "{msg}");
    assert!(msg.contains("charged elsewhere") && msg.contains("just exited"), "{msg}");
    assert!(took >= Duration::from_millis(150), "waited {took:?} for a late release first");
    let gave_up = Instant::now();
    let e = domain.register(DmaBuf::new(HOLD).unwrap()).expect_err("still held");
    // A wait lasts until its deadline while refusals persist, so a second
    // refusal that waited took LATE_RELEASE_WAIT at least; one that did not
    // wait is one attempt (the attempts are counted in memlock.rs's unit
    // test). Only a refusal within the quiet period is meant not to wait.
    let second = gave_up.elapsed();
    if second < memlock::QUIET_AFTER_WAIT {
        assert!(
            second < memlock::LATE_RELEASE_WAIT,
            "a refusal right after a fruitless wait does not wait again: {second:?}"
        );
    }
    assert!(matches!(e.error, Error::MemlockLimit { .. }), "{}", e.error);
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    reader.join().unwrap();
}

fn policies(policy: &str) {
    let limit = memlock::memlock_limit().unwrap();
    assert!(limit <= LIMIT);
    let file = Scratch::new(&format!("memlock-{policy}"), 16 << 20);
    let registration = if policy == "fail" { RegistrationPolicy::Fail } else { RegistrationPolicy::Fallback };
    let opts = UringOptions { registration, ..UringOptions::default() };
    let dev = UringDevice::open(&file.path, opts.clone()).unwrap();
    assert_eq!(dev.capabilities().max_pinned_bytes, Some(limit));

    // A small region fits under the limit and is registered.
    let small = dev.register(DmaBuf::new(1 << 20).unwrap()).unwrap();
    assert!(matches!(small.key().registration, Registration::Own(_)), "{:?}", small.key());

    let big = dev.register(DmaBuf::new(BIG).unwrap());
    match registration {
        RegistrationPolicy::Fail => {
            let e = big.expect_err("64 MiB cannot be registered under an 8 MiB limit");
            match e.error {
                Error::MemlockLimit { requested, limit: l, locked } => {
                    assert_eq!((requested, l, locked), (BIG as u64, limit, 1 << 20));
                }
                ref other => panic!("expected MemlockLimit, got {other}"),
            }
            let msg = e.to_string();
            assert!(msg.contains(&BIG.to_string()) && msg.contains(&limit.to_string()), "{msg}");
            assert_eq!(e.buf.len(), BIG, "the buffer comes back");
            // The arena is registered at open, so open itself fails.
            let arena = UringOptions { arena_bytes: BIG, ..opts };
            let e = UringDevice::open(&file.path, arena).unwrap_err();
            assert!(matches!(e, Error::MemlockLimit { requested, .. } if requested == BIG as u64), "{e}");
            assert_eq!(dev.stats().unregistered_fallbacks, 0);
        }
        RegistrationPolicy::Fallback => {
            let big = big.expect("the fallback policy hands out the region unregistered");
            assert_eq!(big.key().registration, Registration::None);
            let mut q = dev.queue(8).unwrap();
            let mut w = big.slice(0, 8 << 20).unwrap();
            w.copy_from_slice(&pinio_core::conformance::pattern(1, 8 << 20));
            let (n, w) = q.write_at(w, 4 << 20).unwrap();
            assert_eq!(n, 8 << 20);
            let (n, r) = q.read_at(big.slice(8 << 20, 8 << 20).unwrap(), 4 << 20).unwrap();
            assert_eq!(n, 8 << 20);
            assert!(r[..] == w[..], "data survives the unregistered path");
            // The small region still uses its fixed buffer.
            let (n, _s) = q.read_at(small.slice(0, 4096).unwrap(), 0).unwrap();
            assert_eq!(n, 4096);
            let s = dev.stats();
            assert_eq!(s.unregistered_fallbacks, 2, "{s}");
            assert_eq!(s.bytes_pinned, 1 << 20, "{s}");
            // `wait_rearm`: re-arming the unregistered slice counts again,
            // re-arming the registered one does not.
            let mut rq = dev.uring_queue(2).unwrap();
            let first =
                [Op::read(big.slice(16 << 20, 4096).unwrap(), 0, 0), Op::read(small.slice(4096, 4096).unwrap(), 0, 1)];
            assert_eq!(rq.push_batch(first).unwrap(), 2);
            let mut rearmed = 0;
            while rq.in_flight() > 0 {
                rq.wait_rearm(1, |done| {
                    assert_eq!(done.result().unwrap(), 4096);
                    let tag = done.tag();
                    if tag < 2 {
                        done.rearm(4096, tag + 2).unwrap();
                        rearmed += 1;
                    } else {
                        drop(done.into_completion());
                    }
                })
                .unwrap();
            }
            assert_eq!(rearmed, 2);
            let s = dev.stats();
            assert_eq!(s.unregistered_fallbacks, 4, "2 before, 1 push and 1 re-arm of the big slice: {s}");
            // A second refusal does not warn again; an arena falls back too.
            let again = dev.register(DmaBuf::new(BIG).unwrap()).unwrap();
            assert_eq!(again.key().registration, Registration::None);
            let arena_dev = UringDevice::open(&file.path, UringOptions { arena_bytes: BIG, ..opts }).unwrap();
            let piece = arena_dev.alloc(4096).unwrap();
            assert_eq!(
                piece.key().registration,
                Registration::None,
                "the arena fell back: its pieces are unregistered"
            );
            let mut q2 = arena_dev.queue(2).unwrap();
            q2.read_at(piece.slice(0, 4096).unwrap(), 0).unwrap();
            assert_eq!(arena_dev.stats().unregistered_fallbacks, 1);
            // Another file of that domain uses the unregistered pieces too.
            let second = UringDevice::open_in(arena_dev.domain(), &file.path, UringOptions::default()).unwrap();
            let mut q3 = second.queue(2).unwrap();
            q3.read_at(piece.slice(0, 4096).unwrap(), 4096).unwrap();
            assert_eq!(second.stats().unregistered_fallbacks, 1);
        }
    }
}

//! The fault matrix: every fault of `fault:<rules>:<selection>` on every
//! host backend (copy, uring). Each must end in the typed outcome the rule
//! names (an `Error::Io` with its errno in the operation's completion, a
//! short count, a late or reordered completion, a failed flush), every
//! slice handed back whole, and nothing leaked: after the queue is dropped
//! every region unregisters, and the domain's pins equal its unpins.

use pinio::{Completion, Device, FlushMode, Op, Queue, Region};
use std::path::PathBuf;

const EIO: i32 = 5;
const ENOSPC: i32 = 28;
const BLOCK: usize = 4096;

/// A scratch file in /var/tmp (uring opens it with O_DIRECT), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = PathBuf::from(format!("/var/tmp/pinio-fault-{}-{name}.dat", std::process::id()));
        std::fs::write(&p, vec![0u8; 64 * BLOCK]).expect("scratch file");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn backends() -> Vec<&'static str> {
    let mut v = vec!["copy"];
    if pinio::available_backends().contains(&pinio::BackendKind::Uring) {
        v.push("uring");
    }
    v
}

/// Runs `body` on `fault:<rules>:<backend>:<scratch>`, then checks that
/// nothing leaked.
fn with_device(backend: &str, rules: &str, body: impl FnOnce(&dyn Device, &Region, &mut dyn Queue)) {
    let s = Scratch::new(&format!("{backend}-{}", rules.replace(['@', '=', ',', '%', '.'], "_")));
    let spec = format!("fault:{rules}:{backend}:{}", s.0.display());
    let dev = pinio::open(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let region = dev.alloc(16 * BLOCK).unwrap();
    let mut q = dev.queue(8).unwrap();
    body(&*dev, &region, &mut *q);
    assert_eq!(q.in_flight(), 0, "{spec}: the body collects every completion");
    drop(q);
    assert_eq!(region.live_slices(), 0, "{spec}: a slice was not handed back");
    region.unregister().unwrap_or_else(|e| panic!("{spec}: region still busy: {e:?}"));
    let st = dev.stats();
    assert_eq!(st.pins, st.unpins, "{spec}: pins {} unpins {}", st.pins, st.unpins);
}

/// Pushes one write of `blocks` blocks per entry (slot i of the region at
/// device block 2*i), waits for all, and returns the completions in the
/// order they came.
fn writes(region: &Region, q: &mut dyn Queue, blocks: &[usize]) -> Vec<Completion> {
    for (i, &n) in blocks.iter().enumerate() {
        let mut s = region.slice(i * 2 * BLOCK, n * BLOCK).unwrap();
        s.fill(i as u8 + 1);
        q.push(Op::write(s, (i * 2 * BLOCK) as u64, i as u64)).unwrap();
    }
    q.submit().unwrap();
    let mut out = Vec::new();
    while out.len() < blocks.len() {
        q.wait(blocks.len() - out.len(), &mut out).unwrap();
    }
    out
}

fn errno(c: &Completion) -> Option<i32> {
    c.result.as_ref().err().and_then(|e| e.raw_os_error())
}

#[test]
fn injected_errors_fail_only_the_chosen_operation_with_its_errno() {
    for backend in backends() {
        for (rules, want) in [("write@2=eio", EIO), ("write@2=enospc", ENOSPC), ("io@2=eio", EIO)] {
            with_device(backend, rules, |_, region, q| {
                let mut out = writes(region, q, &[1, 1, 1, 1]);
                out.sort_by_key(|c| c.tag);
                for c in &out {
                    if c.tag == 1 {
                        assert_eq!(errno(c), Some(want), "{backend} {rules}: {:?}", c.result);
                        let msg = c.result.as_ref().unwrap_err().to_string();
                        assert!(msg.contains("injected fault") && msg.contains("#2"), "{msg}");
                    } else {
                        assert_eq!(c.result.as_ref().ok(), Some(&BLOCK), "{backend} {rules}: tag {}", c.tag);
                    }
                    assert_eq!(c.slice.len(), BLOCK);
                }
            });
        }
    }
}

#[test]
fn an_injected_write_error_never_reaches_the_device() {
    for backend in backends() {
        with_device(backend, "write@1=eio", |_, region, q| {
            let out = writes(region, q, &[1]);
            assert_eq!(errno(&out[0]), Some(EIO));
            drop(out);
            let (n, s) = q.read_at(region.slice(0, BLOCK).unwrap(), 0).unwrap();
            assert_eq!(n, BLOCK);
            assert!(s.iter().all(|&b| b == 0), "{backend}: the failed write's bytes are on the device");
        });
    }
}

#[test]
fn failed_reads_and_flushes_are_typed_errors() {
    for backend in backends() {
        with_device(backend, "read@1=eio,flush@1=eio,flush@3=enospc", |_, region, q| {
            let e = q.read_at(region.slice(0, BLOCK).unwrap(), 0).unwrap_err();
            assert_eq!(e.error.raw_os_error(), Some(EIO), "{backend}: {}", e.error);
            assert_eq!(e.slice.map(|s| s.len()), Some(BLOCK), "the slice comes back with the error");
            let e = q.flush(FlushMode::Data).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(EIO), "{backend}: {e}");
            q.flush(FlushMode::Data).unwrap();
            assert_eq!(q.flush(FlushMode::All).unwrap_err().raw_os_error(), Some(ENOSPC));
            q.flush(FlushMode::Data).unwrap();
            // The second read is not chosen.
            let (n, _) = q.read_at(region.slice(0, BLOCK).unwrap(), 0).unwrap();
            assert_eq!(n, BLOCK);
        });
    }
}

#[test]
fn a_short_transfer_moves_half_and_hands_the_whole_slice_back() {
    for backend in backends() {
        with_device(backend, "write@1=short,read@1=short", |_, region, q| {
            let mut s = region.slice(0, 4 * BLOCK).unwrap();
            s.fill(0xAB);
            let (n, s) = q.write_at(s, 0).unwrap();
            assert_eq!((n, s.len()), (2 * BLOCK, 4 * BLOCK), "{backend}: half written, the whole slice back");
            drop(s);
            let (n, s) = q.read_at(region.slice(0, 4 * BLOCK).unwrap(), 0).unwrap();
            assert_eq!((n, s.len()), (2 * BLOCK, 4 * BLOCK), "{backend}: half read, the whole slice back");
            assert!(s[..2 * BLOCK].iter().all(|&b| b == 0xAB));
            drop(s);
            let (n, s) = q.read_at(region.slice(0, 4 * BLOCK).unwrap(), 0).unwrap();
            assert_eq!(n, 4 * BLOCK);
            assert!(
                s[..2 * BLOCK].iter().all(|&b| b == 0xAB) && s[2 * BLOCK..].iter().all(|&b| b == 0),
                "{backend}: only the first half reached the device"
            );
        });
        // Halves are whole units of the device's alignment; a single unit
        // cannot be halved: nothing moves, Ok(0).
        with_device(backend, "write@1=short,write@2=short", |dev, region, q| {
            let c = dev.capabilities();
            let unit = c.offset_align.max(c.len_align).max(c.mem_align).max(1) as usize;
            let (n, s) = q.write_at(region.slice(0, BLOCK).unwrap(), 0).unwrap();
            assert_eq!((n, s.len()), (BLOCK / 2 / unit * unit, BLOCK), "{backend}: unit {unit}");
            drop(s);
            let (n, s) = q.write_at(region.slice(0, unit).unwrap(), 0).unwrap();
            assert_eq!((n, s.len()), (0, unit), "{backend}: one unit");
        });
    }
}

#[test]
fn delayed_and_reordered_completions_come_late_and_never_hang_a_wait() {
    for backend in backends() {
        with_device(backend, "write@1=delay3", |_, region, q| {
            let out = writes(region, q, &[1, 1, 1]);
            assert_eq!(out.len(), 3);
            assert_eq!(out.last().map(|c| c.tag), Some(0), "{backend}: the delayed completion comes last");
            assert!(out.iter().all(|c| c.result.is_ok()));
        });
        with_device(backend, "write@1=reorder", |_, region, q| {
            let out = writes(region, q, &[1, 1]);
            let tags: Vec<u64> = out.iter().map(|c| c.tag).collect();
            assert_eq!(tags, [1, 0], "{backend}: the first write's completion after the second's");
        });
        // Alone in the queue, a delayed completion still comes to a wait.
        with_device(backend, "write@1=delay50", |_, region, q| {
            let (n, _) = q.write_at(region.slice(0, BLOCK).unwrap(), 0).unwrap();
            assert_eq!(n, BLOCK);
        });
    }
}

#[test]
fn random_faults_follow_the_seed() {
    for backend in backends() {
        let mut runs = Vec::new();
        for _ in 0..2 {
            let mut failed = Vec::new();
            with_device(backend, "io%0.3=eio,seed=42", |_, region, q| {
                for i in 0..40u64 {
                    let r = q.write_at(region.slice(0, BLOCK).unwrap(), (i % 8) * BLOCK as u64);
                    if let Err(e) = r {
                        assert_eq!(e.error.raw_os_error(), Some(EIO));
                        assert!(e.slice.is_some());
                        failed.push(i);
                    }
                }
            });
            runs.push(failed);
        }
        assert_eq!(runs[0], runs[1], "{backend}: the same seed fails the same operations");
        assert!(!runs[0].is_empty() && runs[0].len() < 40, "{backend}: p = 0.3 of 40: {:?}", runs[0]);
    }
}

#[test]
fn a_refused_operation_is_refused_by_the_device_rules_not_by_a_fault() {
    for backend in backends() {
        with_device(backend, "write@1+=eio", |dev, region, q| {
            let size = dev.size();
            let r = q.push(Op::write(region.slice(0, BLOCK).unwrap(), size, 0));
            let rej = r.expect_err("a write past the end is refused at push");
            assert!(matches!(rej.error, pinio::Error::OutOfBounds { .. }), "{backend}: {}", rej.error);
            drop(rej);
            let e = q.write_at(region.slice(0, BLOCK).unwrap(), 0).unwrap_err();
            assert_eq!(e.error.raw_os_error(), Some(EIO), "the next valid write is the first one counted");
        });
    }
}

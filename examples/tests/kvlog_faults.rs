//! kvlog under every fault of `fault:<rules>:<selection>`, on copy and
//! uring: a load that meets a failed write, a short write or a failed
//! flush stops with a device error (exit 3) naming the injected fault;
//! delayed and reordered completions change nothing; and in every case the
//! store reopens cleanly without the fault layer, with every acknowledged
//! (`durable k`) record there. Reads that fail make `verify` stop with a
//! device error, never a wrong answer.

use std::process::Output;

mod support;
use support::{Scratch, text};

fn run(args: &[&str]) -> Output {
    support::run("kvlog", args)
}

const KEYS: u64 = 200;
const BATCH: u64 = 10;

/// (rules, whether the load completes).
const FAULTS: &[(&str, bool)] = &[
    ("write@5=eio", false),
    ("write@9=enospc", false),
    ("write@7=short", false),
    ("flush@4=eio", false),
    ("flush@6=enospc", false),
    ("write%0.1=eio,seed=8", false),
    ("io%0.3=delay3,seed=1", true),
    ("write%0.5=reorder,seed=2", true),
    ("io%0.2=delay,write%0.3=reorder,seed=4", true),
];

#[test]
fn every_acknowledged_record_survives_every_fault_and_the_store_reopens() {
    let backends: &[&str] =
        if pinio::available_backends().contains(&pinio::BackendKind::Uring) { &["copy", "uring"] } else { &["copy"] };
    for backend in backends {
        for (i, &(rules, completes)) in FAULTS.iter().enumerate() {
            let s = Scratch::new("kvlog-fault", &format!("{backend}-{i}"));
            let spec = format!("fault:{rules}:{backend}:{}", s.0.display());
            let o = run(&[
                "load",
                &spec,
                "--keys",
                &KEYS.to_string(),
                "--value-size",
                "100",
                "--batch",
                &BATCH.to_string(),
            ]);
            let acked = String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.strip_prefix("durable ")?.parse::<u64>().ok())
                .max();
            if completes {
                assert!(o.status.success(), "{spec}: {}", text(&o));
                assert_eq!(acked, Some(KEYS - 1), "{spec}");
            } else {
                assert_eq!(o.status.code(), Some(3), "{spec}: a device error: {}", text(&o));
                let why = if rules.contains("short") { "a short write" } else { "injected fault" };
                assert!(
                    String::from_utf8_lossy(&o.stderr).contains(why),
                    "{spec}: the error names the fault: {}",
                    text(&o)
                );
                assert!(acked.is_none_or(|k| k < KEYS - 1), "{spec}: stopped early");
            }
            let plain = format!("{backend}:{}", s.0.display());
            let v = run(&["verify", &plain]);
            if acked.is_none() && !v.status.success() {
                // Nothing was acknowledged, not even the store: a fault
                // before the superblock's flush leaves no store, which
                // verify must say, not mistake for damage.
                assert_eq!(v.status.code(), Some(1), "{spec}: {}", text(&v));
                assert!(String::from_utf8_lossy(&v.stderr).contains("no kvlog store"), "{spec}: {}", text(&v));
                continue;
            }
            assert!(v.status.success(), "{spec}: the store reopens cleanly: {}", text(&v));
            let recovered: u64 = String::from_utf8_lossy(&v.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("recovered ")?.parse().ok())
                .unwrap_or(0);
            let need = acked.map_or(0, |k| k + 1);
            assert!(recovered >= need, "{spec}: {recovered} keys recovered, {need} were acknowledged");
        }
    }
}

#[test]
fn failing_reads_stop_verify_with_a_device_error() {
    let s = Scratch::new("kvlog-fault", "reads");
    let plain = format!("copy:{}", s.0.display());
    let o = run(&["load", &plain, "--keys", "100", "--value-size", "100", "--batch", "10"]);
    assert!(o.status.success(), "{}", text(&o));
    for rules in ["read@1=eio", "read@2=eio", "read@2=short", "read%0.5=enospc,seed=5"] {
        let v = run(&["verify", &format!("fault:{rules}:{plain}")]);
        assert_eq!(v.status.code(), Some(3), "{rules}: {}", text(&v));
        assert!(
            String::from_utf8_lossy(&v.stderr).contains("injected fault")
                || String::from_utf8_lossy(&v.stderr).contains("short read"),
            "{rules}: {}",
            text(&v)
        );
        assert!(
            !String::from_utf8_lossy(&v.stdout).contains("bad "),
            "{rules}: a failed read is not bad data: {}",
            text(&v)
        );
    }
    // Delays and reorders of reads change nothing.
    let v = run(&["verify", &format!("fault:read%0.5=delay2,read%0.3=reorder,seed=6:{plain}")]);
    assert!(v.status.success(), "{}", text(&v));
}

//! Test fixture shared by the report, plot and page tests.

use super::contender::{Cache, Contender, Engine};
use super::report::Results;
use super::runner::Sample;
use super::workload::Workload;

/// Results of two workloads on three configurations, three repeats each.
pub(crate) fn sample_results() -> Results {
    let workloads: Vec<Workload> =
        ["randread-4k-qd1", "randread-4k-qd32", "read-1m-qd4"].iter().map(|s| Workload::parse(s).unwrap()).collect();
    let contenders = vec![
        Contender {
            label: "uring fixed",
            engine: Engine::Pinio { backend: "uring", direct: true, fixed_buffers: true },
            cache: Cache::Bypassed,
        },
        Contender {
            label: "copy cold",
            engine: Engine::Pinio { backend: "copy", direct: false, fixed_buffers: false },
            cache: Cache::Cold,
        },
        Contender {
            label: "fio uring fixed",
            engine: Engine::Fio { args: &[], honours_depth: true },
            cache: Cache::Bypassed,
        },
    ];
    let mut r = Results::new(&workloads, &contenders);
    for rep in 0..3u64 {
        for (wi, w) in workloads.iter().enumerate() {
            for ci in 0..contenders.len() {
                let ops = (1000 + 300 * rep) * (ci as u64 + 1) * (wi as u64 + 1);
                r.add(
                    wi,
                    ci,
                    Sample {
                        ops,
                        bytes: ops * w.block as u64,
                        secs: 1.0,
                        cpu_secs: 0.2 + 0.1 * ci as f64,
                        user_secs: 0.05,
                        sys_secs: 0.15 + 0.1 * ci as f64,
                        bytes_copied: (ci < 2).then_some(ops * w.block as u64 * ci as u64 * 2),
                        lat_p50_us: 10.0 * (wi + 1) as f64,
                        lat_p99_us: 40.0 * (wi + 1) as f64 + rep as f64,
                        lat_p999_us: 90.0,
                    },
                );
            }
        }
    }
    r
}

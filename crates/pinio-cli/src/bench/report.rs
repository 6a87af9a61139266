//! Aggregation of samples into the table and the JSON file.

use super::contender::Contender;
use super::runner::Sample;
use super::workload::Workload;
use crate::CliResult;
use std::fmt::Write;

/// Every sample, by workload and configuration.
pub struct Results {
    workloads: Vec<Workload>,
    contenders: Vec<Contender>,
    samples: Vec<Vec<Vec<Sample>>>,
}

/// `(numerator label, denominator label, description, metric)`.
type Comparison = (&'static str, &'static str, &'static str, fn(&Sample) -> f64);

/// One side-by-side comparison.
pub struct Ratio {
    pub workload: String,
    pub what: &'static str,
    pub spread: Spread,
}

/// Median, min and max of one metric over the repeats.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(mut v: Vec<f64>) -> Spread {
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Spread { median, min: v[0], max: v[n - 1] }
    }

    pub fn noisy(&self, margin: f64) -> bool {
        self.median > 0.0 && (self.max - self.min) / self.median > margin
    }
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

impl Results {
    pub fn new(workloads: &[Workload], contenders: &[Contender]) -> Results {
        let samples = workloads.iter().map(|_| contenders.iter().map(|_| Vec::new()).collect()).collect();
        Results { workloads: workloads.to_vec(), contenders: contenders.to_vec(), samples }
    }

    pub fn add(&mut self, w: usize, c: usize, s: Sample) {
        self.samples[w][c].push(s);
    }

    fn spread(&self, w: usize, c: usize, f: impl Fn(&Sample) -> f64) -> Spread {
        Spread::of(self.samples[w][c].iter().map(f).collect())
    }

    /// For each configuration, `(block size, median of f)` over the workloads
    /// in direction `dir`, keeping the deepest queue per block size.
    pub fn lines(&self, dir: pinio::Direction, f: fn(&Sample) -> f64) -> Vec<(String, Vec<(f64, f64)>)> {
        let mut out = Vec::new();
        for (ci, c) in self.contenders.iter().enumerate() {
            let mut best: std::collections::BTreeMap<usize, (usize, f64)> = Default::default();
            for (wi, w) in self.workloads.iter().enumerate() {
                if w.dir != dir || self.samples[wi][ci].is_empty() {
                    continue;
                }
                let m = self.spread(wi, ci, f).median;
                let e = best.entry(w.block).or_insert((w.depth, m));
                if w.depth >= e.0 {
                    *e = (w.depth, m);
                }
            }
            if !best.is_empty() {
                out.push((c.label.to_string(), best.into_iter().map(|(b, (_, m))| (b as f64, m)).collect()));
            }
        }
        out
    }

    /// The human-readable table.
    pub fn table(&self, noise: f64) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<18} {:<16} {:>22} {:>8} {:>10} {:>10} {:>13} {:>14}",
            "workload", "backend", "IOPS [min-max]", "GB/s", "p50 us", "p99 us", "CPU ns/byte", "CPU-copied B/B"
        );
        let mut noisy = Vec::new();
        for (wi, w) in self.workloads.iter().enumerate() {
            for (ci, c) in self.contenders.iter().enumerate() {
                let iops = self.spread(wi, ci, Sample::iops);
                let gbps = self.spread(wi, ci, Sample::gbps);
                let p50 = self.spread(wi, ci, |s| s.lat_p50_us);
                let p99 = self.spread(wi, ci, |s| s.lat_p99_us);
                let cpu = self.spread(wi, ci, Sample::cpu_ns_per_byte);
                let copied = if self.samples[wi][ci].iter().all(|s| s.bytes_copied.is_some()) {
                    format!("{:.2}", self.spread(wi, ci, |s| s.bytes_copied.unwrap_or(0) as f64 / s.bytes.max(1) as f64).median)
                } else {
                    "n/a".to_string()
                };
                let flag = if iops.noisy(noise) { "*" } else { " " };
                if iops.noisy(noise) {
                    noisy.push(format!("{w} on {c}"));
                }
                let _ = writeln!(
                    t,
                    "{:<18} {:<16} {:>21}{flag} {:>8.3} {:>10.1} {:>10.1} {:>13.4} {:>14}",
                    w.to_string(),
                    c.label,
                    format!("{} [{}-{}]", human(iops.median), human(iops.min), human(iops.max)),
                    gbps.median,
                    p50.median,
                    p99.median,
                    cpu.median,
                    copied
                );
            }
        }
        if !noisy.is_empty() {
            let _ = writeln!(
                t,
                "* noisy: in {} of {} rows the repeats differ by more than {:.0}% of the median; trust the per-repeat ratios below, or rerun with more --repeats",
                noisy.len(),
                self.workloads.len() * self.contenders.len(),
                noise * 100.0
            );
        }
        let ratios = self.ratios();
        if !ratios.is_empty() {
            let _ = writeln!(t, "\nratios within each repeat (median [min-max] over repeats):");
            for r in ratios {
                let _ = writeln!(t, "  {:<18} {:<44} {:.2}x [{:.2}-{:.2}]", r.workload, r.what, r.spread.median, r.spread.min, r.spread.max);
            }
        }
        t
    }

    fn find(&self, label: &str) -> Option<usize> {
        self.contenders.iter().position(|c| c.label == label)
    }

    /// The comparisons pinio's goals are stated in, each taken within one
    /// repeat (both sides ran back to back), then summarised over repeats.
    pub fn ratios(&self) -> Vec<Ratio> {
        let pairs: [Comparison; 4] = [
            ("uring fixed", "fio uring fixed", "IOPS, uring fixed / fio uring fixed", Sample::iops),
            ("uring fixed", "uring plain", "IOPS, uring fixed / uring plain", Sample::iops),
            ("uring fixed", "copy cold", "CPU per byte, uring fixed / copy cold", Sample::cpu_ns_per_byte),
            ("uring fixed", "copy hot", "CPU per byte, uring fixed / copy hot", Sample::cpu_ns_per_byte),
        ];
        let mut out = Vec::new();
        for (wi, w) in self.workloads.iter().enumerate() {
            for (a, b, what, f) in pairs {
                let (Some(a), Some(b)) = (self.find(a), self.find(b)) else { continue };
                let v: Vec<f64> = self.samples[wi][a].iter().zip(&self.samples[wi][b]).map(|(x, y)| f(x) / f(y)).filter(|r| r.is_finite()).collect();
                if !v.is_empty() {
                    out.push(Ratio { workload: w.to_string(), what, spread: Spread::of(v) });
                }
            }
        }
        out
    }

    /// Every sample and the method, as JSON.
    pub fn json(&self, args: &super::BenchArgs) -> CliResult<String> {
        let mut rows = Vec::new();
        for (wi, w) in self.workloads.iter().enumerate() {
            for (ci, c) in self.contenders.iter().enumerate() {
                rows.push(serde_json::json!({
                    "workload": w.to_string(),
                    "spec": w,
                    "backend": c,
                    "samples": self.samples[wi][ci],
                    "iops_median": self.spread(wi, ci, Sample::iops).median,
                    "cpu_ns_per_byte_median": self.spread(wi, ci, Sample::cpu_ns_per_byte).median,
                }));
            }
        }
        let ratios: Vec<_> = self
            .ratios()
            .into_iter()
            .map(|r| serde_json::json!({"workload": r.workload, "what": r.what, "median": r.spread.median, "min": r.spread.min, "max": r.spread.max}))
            .collect();
        let doc = serde_json::json!({
            "ratios": ratios,
            "tool": "pinio bench",
            "version": env!("CARGO_PKG_VERSION"),
            "size_mib": args.size_mib,
            "secs": args.secs,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "results": rows,
        });
        Ok(serde_json::to_string_pretty(&doc)?)
    }
}

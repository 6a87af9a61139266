//! Aggregation of samples into the table, the JSON file and the HTML page.

use super::contender::Contender;
use super::escape::esc;
use super::runner::Sample;
use super::workload::{Pattern, Workload};
use crate::CliResult;
use pinio::Direction;
use std::fmt::Write;

/// The one line under the table that explains its words.
pub const LEGEND: &str = "cold: buffered copy IO with the file dropped from the page cache before each run (and each sequential pass), so reads go to the disk; \
hot: buffered IO (copy, or io_uring into fixed buffers: \"uring buf hot\") with the whole file already in the page cache, so reads are memory copies and the device is out of the way; \
usr/sys us/IO: CPU time per IO in user space and in the kernel (whole process; fio's own figures for fio rows); IO/CPU-s: IOs per second of CPU time; \
CPU-copied B/B: bytes the CPU copied per byte moved (0 = zero-copy, the device moved the data; buffered copy IO shows 2: page cache to bounce buffer to your buffer; n/a: fio does not report it)";

/// A workload as a reader says it: `4K rand read QD32`, `1M seq write QD4`.
pub fn workload_label(w: &Workload) -> String {
    let size = if w.block.is_multiple_of(1 << 20) {
        format!("{}M", w.block >> 20)
    } else if w.block.is_multiple_of(1024) {
        format!("{}K", w.block >> 10)
    } else {
        format!("{}B", w.block)
    };
    let pattern = match w.pattern {
        Pattern::Random => "rand",
        Pattern::Sequential => "seq",
    };
    let dir = match w.dir {
        Direction::Read => "read",
        Direction::Write => "write",
    };
    let jobs = if w.jobs > 1 { format!(" x{} threads", w.jobs) } else { String::new() };
    format!("{size} {pattern} {dir} QD{}{jobs}", w.depth)
}

/// One row of the table, formatted.
struct Row {
    workload: String,
    label: String,
    backend: &'static str,
    iops: Spread,
    gbps: f64,
    p50: f64,
    p99: f64,
    cpu: f64,
    usr_us: f64,
    sys_us: f64,
    per_cpu_sec: f64,
    copied: String,
    noisy: bool,
}

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
    pub what: String,
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

    /// The workloads, in the order they ran.
    pub fn workloads(&self) -> &[Workload] {
        &self.workloads
    }

    /// The configurations, in the order they ran.
    pub fn contenders(&self) -> &[Contender] {
        &self.contenders
    }

    #[cfg(test)]
    pub fn contenders_mut(&mut self) -> &mut [Contender] {
        &mut self.contenders
    }

    /// Every repeat of workload `w` on configuration `c`.
    pub fn samples(&self, w: usize, c: usize) -> &[Sample] {
        &self.samples[w][c]
    }

    /// The most repeats any cell has.
    pub fn repeats(&self) -> usize {
        self.samples.iter().flatten().map(Vec::len).max().unwrap_or(0)
    }

    fn rows(&self, noise: f64) -> Vec<Row> {
        let mut rows = Vec::new();
        for (wi, w) in self.workloads.iter().enumerate() {
            for (ci, c) in self.contenders.iter().enumerate() {
                if self.samples[wi][ci].is_empty() {
                    continue;
                }
                let iops = self.spread(wi, ci, Sample::iops);
                let copied = if self.samples[wi][ci].iter().all(|s| s.bytes_copied.is_some()) {
                    format!(
                        "{:.2}",
                        self.spread(wi, ci, |s| s.bytes_copied.unwrap_or(0) as f64 / s.bytes.max(1) as f64).median
                    )
                } else {
                    "n/a".to_string()
                };
                rows.push(Row {
                    workload: w.to_string(),
                    label: workload_label(w),
                    backend: c.label,
                    iops,
                    gbps: self.spread(wi, ci, Sample::gbps).median,
                    p50: self.spread(wi, ci, |s| s.lat_p50_us).median,
                    p99: self.spread(wi, ci, |s| s.lat_p99_us).median,
                    cpu: self.spread(wi, ci, Sample::cpu_ns_per_byte).median,
                    usr_us: self.spread(wi, ci, Sample::user_us_per_io).median,
                    sys_us: self.spread(wi, ci, Sample::sys_us_per_io).median,
                    per_cpu_sec: self.spread(wi, ci, Sample::ios_per_cpu_sec).median,
                    copied,
                    noisy: iops.noisy(noise),
                });
            }
        }
        rows
    }

    fn noisy_note(&self, noisy: usize, noise: f64) -> Option<String> {
        (noisy > 0).then(|| {
            format!(
                "* noisy: in {} of {} rows the repeats differ by more than {:.0}% of the median; trust the per-repeat ratios below, or rerun with more --repeats",
                noisy,
                self.workloads.len() * self.contenders.len(),
                noise * 100.0
            )
        })
    }

    /// The human-readable table.
    pub fn table(&self, noise: f64) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<21} {:<25} {:>22} {:>8} {:>10} {:>10} {:>13} {:>10} {:>10} {:>10} {:>14}",
            "workload",
            "backend",
            "IOPS [min-max]",
            "GB/s",
            "p50 us",
            "p99 us",
            "CPU ns/byte",
            "usr us/IO",
            "sys us/IO",
            "IO/CPU-s",
            "CPU-copied B/B"
        );
        let rows = self.rows(noise);
        for r in &rows {
            let flag = if r.noisy { "*" } else { " " };
            let _ = writeln!(
                t,
                "{:<21} {:<25} {:>21}{flag} {:>8.3} {:>10.1} {:>10.1} {:>13.4} {:>10.3} {:>10.3} {:>10} {:>14}",
                r.workload,
                r.backend,
                format!("{} [{}-{}]", human(r.iops.median), human(r.iops.min), human(r.iops.max)),
                r.gbps,
                r.p50,
                r.p99,
                r.cpu,
                r.usr_us,
                r.sys_us,
                human(r.per_cpu_sec),
                r.copied
            );
        }
        let _ = writeln!(t, "{LEGEND}");
        if let Some(note) = self.noisy_note(rows.iter().filter(|r| r.noisy).count(), noise) {
            let _ = writeln!(t, "{note}");
        }
        let ratios = self.ratios();
        if !ratios.is_empty() {
            let _ = writeln!(t, "\nratios within each repeat (median [min-max] over repeats):");
            for r in ratios {
                let _ = writeln!(
                    t,
                    "  {:<21} {:<60} {:.2}x [{:.2}-{:.2}]",
                    r.workload, r.what, r.spread.median, r.spread.min, r.spread.max
                );
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
        let pairs: [Comparison; 11] = [
            ("uring fixed", "fio uring fixed", "IOPS, uring fixed / fio uring fixed", Sample::iops),
            ("uring buf hot", "fio uring buf hot", "IOPS, uring buf hot / fio uring buf hot", Sample::iops),
            ("uring buf hot", "fio uring buf hot", "IOPS per CPU-second, uring buf hot / fio", Sample::ios_per_cpu_sec),
            ("uring buf hot", "fio uring buf hot", "user CPU per IO, uring buf hot / fio", Sample::user_us_per_io),
            ("uring buf hot", "fio uring buf hot", "system CPU per IO, uring buf hot / fio", Sample::sys_us_per_io),
            ("uring buf hot", "fio uring buf hot batched", "IOPS, uring buf hot / fio batched", Sample::iops),
            (
                "uring buf hot",
                "fio uring buf hot batched",
                "IOPS per CPU-second, uring buf hot / fio batched",
                Sample::ios_per_cpu_sec,
            ),
            (
                "uring buf hot",
                "fio uring buf hot batched",
                "user CPU per IO, uring buf hot / fio batched",
                Sample::user_us_per_io,
            ),
            ("uring fixed", "uring plain", "IOPS, uring fixed / uring plain", Sample::iops),
            ("uring fixed", "copy cold", "CPU per byte, uring fixed / copy cold", Sample::cpu_ns_per_byte),
            ("uring fixed", "copy hot", "CPU per byte, uring fixed / copy hot", Sample::cpu_ns_per_byte),
        ];
        let mut out = Vec::new();
        for (wi, w) in self.workloads.iter().enumerate() {
            for (a, b, what, f) in pairs {
                let (Some(a), Some(b)) = (self.find(a), self.find(b)) else { continue };
                let v: Vec<f64> = self.samples[wi][a]
                    .iter()
                    .zip(&self.samples[wi][b])
                    .map(|(x, y)| f(x) / f(y))
                    .filter(|r| r.is_finite())
                    .collect();
                if !v.is_empty() {
                    out.push(Ratio { workload: w.to_string(), what: what.to_string(), spread: Spread::of(v) });
                }
            }
            out.extend(self.scaling(wi));
        }
        out
    }

    /// For a workload of several threads: its IOPS against the same
    /// workload on one thread, per configuration, within each repeat.
    fn scaling(&self, wi: usize) -> Vec<Ratio> {
        let w = &self.workloads[wi];
        let single = Workload { jobs: 1, ..*w };
        let Some(si) =
            (w.jobs > 1).then(|| self.workloads.iter().position(|o| o.to_string() == single.to_string())).flatten()
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (ci, c) in self.contenders.iter().enumerate() {
            let v: Vec<f64> = self.samples[wi][ci]
                .iter()
                .zip(&self.samples[si][ci])
                .map(|(x, y)| x.iops() / y.iops())
                .filter(|r| r.is_finite())
                .collect();
            if !v.is_empty() {
                let what = format!("IOPS, {} threads / 1 thread, {}", w.jobs, c.label);
                out.push(Ratio { workload: w.to_string(), what, spread: Spread::of(v) });
            }
        }
        out
    }

    /// Every sample and the method, as JSON.
    pub fn json(&self, args: &super::BenchArgs) -> CliResult<String> {
        let mut rows = Vec::new();
        for (wi, w) in self.workloads.iter().enumerate() {
            for (ci, c) in self.contenders.iter().enumerate() {
                if self.samples[wi][ci].is_empty() {
                    continue; // a configuration that does not run this workload
                }
                rows.push(serde_json::json!({
                    "workload": w.to_string(),
                    "label": workload_label(w),
                    "spec": w,
                    "backend": c,
                    "samples": self.samples[wi][ci],
                    "iops_median": self.spread(wi, ci, Sample::iops).median,
                    "cpu_ns_per_byte_median": self.spread(wi, ci, Sample::cpu_ns_per_byte).median,
                    "user_us_per_io_median": self.spread(wi, ci, Sample::user_us_per_io).median,
                    "sys_us_per_io_median": self.spread(wi, ci, Sample::sys_us_per_io).median,
                    "ios_per_cpu_sec_median": self.spread(wi, ci, Sample::ios_per_cpu_sec).median,
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

    /// The page `results.html`: `method` (one sentence on how the numbers
    /// were taken), the table with its legend, the ratios and `svg` inlined.
    /// Self-contained (no external file, script or font) and written as
    /// XHTML-compatible markup, so it is well-formed XML as well as HTML.
    pub fn html(&self, method: &str, noise: f64, svg: &str) -> String {
        let mut h = String::new();
        h.push_str(concat!(
            "<!DOCTYPE html>\n",
            "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n",
            "<head>\n<meta charset=\"utf-8\"/>\n<title>pinio bench results</title>\n<style>\n",
            "body { font-family: sans-serif; margin: 2em; color: #222222; background: #ffffff; }\n",
            "table { border-collapse: collapse; margin: 1em 0; }\n",
            "th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #dddddd; text-align: left; }\n",
            "td { white-space: nowrap; }\n",
            "th { background: #f2f2f2; }\n",
            "td.n { text-align: right; font-variant-numeric: tabular-nums; }\n",
            "tr.noisy td { background: #fff3dd; }\n",
            "code { color: #555555; font-size: 0.9em; }\n",
            "p.legend { color: #444444; font-size: 0.9em; max-width: 75em; }\n",
            "figure { margin: 1em 0; }\n",
            "figure svg { max-width: 100%; height: auto; }\n",
            "</style>\n</head>\n<body>\n",
            "<h1>pinio bench results</h1>\n",
        ));
        let _ = writeln!(h, "<p>{}</p>", esc(method));
        h.push_str("<table>\n<thead><tr><th>workload</th><th>backend</th><th>IOPS [min–max]</th><th>GB/s</th><th>p50 µs</th><th>p99 µs</th><th>CPU ns/byte</th><th>usr µs/IO</th><th>sys µs/IO</th><th>IO/CPU-s</th><th>CPU-copied B/B</th></tr></thead>\n<tbody>\n");
        let rows = self.rows(noise);
        for r in &rows {
            let _ = writeln!(
                h,
                "<tr{}><td>{}<br/><code>{}</code></td><td>{}</td><td class=\"n\">{}{} [{}–{}]</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.4}</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                if r.noisy { " class=\"noisy\"" } else { "" },
                esc(&r.label),
                esc(&r.workload),
                esc(r.backend),
                if r.noisy { "* " } else { "" },
                human(r.iops.median),
                human(r.iops.min),
                human(r.iops.max),
                r.gbps,
                r.p50,
                r.p99,
                r.cpu,
                r.usr_us,
                r.sys_us,
                human(r.per_cpu_sec),
                esc(&r.copied),
            );
        }
        h.push_str("</tbody>\n</table>\n");
        let _ = writeln!(h, "<p class=\"legend\">{}</p>", esc(LEGEND));
        if let Some(note) = self.noisy_note(rows.iter().filter(|r| r.noisy).count(), noise) {
            let _ = writeln!(h, "<p class=\"legend\">{}</p>", esc(&note));
        }
        let ratios = self.ratios();
        if !ratios.is_empty() {
            h.push_str("<h2>Ratios within each repeat</h2>\n<table>\n<thead><tr><th>workload</th><th>comparison</th><th>median</th><th>[min–max] over repeats</th></tr></thead>\n<tbody>\n");
            for r in ratios {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{:.2}×</td><td class=\"n\">[{:.2}–{:.2}]</td></tr>",
                    esc(&r.workload),
                    esc(&r.what),
                    r.spread.median,
                    r.spread.min,
                    r.spread.max
                );
            }
            h.push_str("</tbody>\n</table>\n");
        }
        h.push_str("<h2>Plots</h2>\n<figure>\n");
        h.push_str(svg.trim_end());
        h.push_str("\n<figcaption>Each marker is the median over the repeats, the bar through it spans the smallest to the largest repeat; the axes are logarithmic. Hover a marker for its numbers.</figcaption>\n</figure>\n");
        h.push_str("<p>Every sample: <a href=\"results.json\">results.json</a>; the plot alone: <a href=\"results.svg\">results.svg</a>.</p>\n</body>\n</html>\n");
        h
    }
}

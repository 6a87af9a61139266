//! Running a checker on crash images: what `pinio crash-test` does.

use super::history::History;
use super::image::DurableImage;
use super::shrink::shrink;
use super::state::{CrashState, Describe, DescribeExtra, Generator};
use crate::log::LogReader;
use pinio_core::{Error, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct CrashTest {
    /// The crash log.
    pub log: PathBuf,
    /// The check, run through `sh -c` with `{image}` replaced by an image's
    /// path (and `{state}` by the state's index, `{epoch}` by the number of
    /// completed flushes it is after); exit status 0 means the state passed.
    pub check: String,
    /// How many states.
    pub states: u64,
    /// The seed.
    pub seed: u64,
    /// Only this state (to reproduce one).
    pub only: Option<u64>,
    /// The atomic unit of the device, in bytes: writes tear at its boundaries.
    pub sector: u64,
    /// Checks run at once.
    pub jobs: usize,
    /// Where images are written (one per job, reused).
    pub dir: PathBuf,
    /// How many failing states to shrink.
    pub shrink: usize,
    /// A check running longer fails its state.
    pub timeout: Duration,
    /// Also the states before the first completed flush (when the
    /// application was promised nothing yet).
    pub from_start: bool,
}

/// A failing state.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The state.
    pub state: CrashState,
    /// What the check said: exit status and the end of its output.
    pub output: String,
    /// The state shrunk to the fewest writes that still fail, if shrunk.
    pub shrunk: Option<CrashState>,
    /// Where the shrunk state's image was kept.
    pub image: Option<PathBuf>,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// States checked.
    pub checked: u64,
    /// The failing ones, by index.
    pub failures: Vec<Failure>,
    /// Time taken.
    pub elapsed: Duration,
    /// The history the states came from.
    pub history: History,
}

/// The outcome of one check.
struct Verdict {
    passed: bool,
    output: String,
}

impl CrashTest {
    /// Runs the test, printing progress and every failure to `out`.
    pub fn run(&self, out: &mut dyn Write) -> Result<Report> {
        let started = Instant::now();
        if !self.check.contains("{image}") {
            return Err(Error::Unsupported {
                what: format!("the check {:?} without {{image}}", self.check),
                hint: "put {image} where the check takes the image's path, e.g. 'kvlog verify copy:{image}'".into(),
            });
        }
        if self.sector == 0 || !self.sector.is_power_of_two() {
            return Err(Error::Unsupported {
                what: format!("an atomic unit of {} bytes", self.sector),
                hint: "give a power of two, e.g. 512 or 4096".into(),
            });
        }
        let log = LogReader::read(&self.log)?;
        let h = History::from_log(&log);
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(format!("creating {}", self.dir.display()), e))?;
        let g = if self.from_start {
            Generator::from_start(&h, self.seed, self.sector)
        } else {
            Generator::new(&h, self.seed, self.sector)
        };
        let say = |out: &mut dyn Write, s: String| {
            let _ = writeln!(out, "{s}");
            let _ = out.flush();
        };
        let end = if h.closed {
            "closed cleanly".to_string()
        } else {
            format!("not closed: {}", h.tail.as_deref().unwrap_or("ends without END (the recording process stopped)"))
        };
        say(
            out,
            format!(
                "crash-test: {}: {} writes, {} flushes ({} completed), {} epochs, device {} bytes ({}), log {end}",
                self.log.display(),
                h.writes.len(),
                h.flushes.len(),
                h.epochs.len() - 1,
                h.epochs.len(),
                h.header.device_size,
                h.header.description
            ),
        );
        let indices: Vec<u64> = match self.only {
            Some(i) => vec![i],
            None => (0..self.states).collect(),
        };
        let from = g.epochs().first().map_or(0, |&k| k);
        say(
            out,
            format!(
                "crash-test: {} states, seed {}, {}-byte atomic unit, epochs {from}..{} ({} deterministic states before sampling), {} jobs",
                indices.len(),
                self.seed,
                self.sector,
                h.epochs.len().saturating_sub(1),
                g.fixed_states(),
                self.jobs
            ),
        );
        let mut by_epoch: BTreeMap<usize, Vec<CrashState>> = BTreeMap::new();
        for &i in &indices {
            let s = g.state(i);
            by_epoch.entry(s.epoch).or_default().push(s);
        }
        let failures = Mutex::new(Vec::new());
        let mut img = DurableImage::base(&h, self.sector);
        let (total, mut checked, mut reported) = (indices.len(), 0usize, 0usize);
        for (&k, states) in &by_epoch {
            while img.epoch() == usize::MAX || img.epoch() < k {
                let next = if img.epoch() == usize::MAX { 0 } else { img.epoch() + 1 };
                img.advance_to(&h, next);
            }
            let next = AtomicUsize::new(0);
            let jobs = self.jobs.max(1).min(states.len());
            let result: Result<()> = std::thread::scope(|sc| {
                let handles: Vec<_> = (0..jobs)
                    .map(|j| {
                        let (img, h, next, failures) = (&img, &h, &next, &failures);
                        sc.spawn(move || -> Result<()> {
                            let path = self.dir.join(format!("crash-image-{}-{j}.img", std::process::id()));
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                let Some(s) = states.get(i) else { break };
                                img.materialize(h, s, &path)?;
                                let v = self.check_one(&path, s)?;
                                if !v.passed {
                                    failures.lock().unwrap_or_else(|e| e.into_inner()).push(Failure {
                                        state: s.clone(),
                                        output: v.output,
                                        shrunk: None,
                                        image: None,
                                    });
                                }
                            }
                            let _ = std::fs::remove_file(&path);
                            Ok(())
                        })
                    })
                    .collect();
                for t in handles {
                    t.join().unwrap_or_else(|_| {
                        Err(Error::Unsupported {
                            what: "a crash-test worker panicked".into(),
                            hint: "a bug in pinio-crash".into(),
                        })
                    })?;
                }
                Ok(())
            });
            result?;
            // Progress in tenths, for long runs.
            checked += states.len();
            if total >= 1000 && checked * 10 / total > reported && checked < total {
                reported = checked * 10 / total;
                let failed = failures.lock().map_or(0, |f| f.len());
                say(
                    out,
                    format!(
                        "crash-test: {checked} of {total} states checked, {failed} failed so far ({:.1} s)",
                        started.elapsed().as_secs_f64()
                    ),
                );
            }
        }
        let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
        failures.sort_by_key(|f| f.state.index);
        for (n, f) in failures.iter_mut().enumerate() {
            say(out, format!("FAIL state {} (seed {}): {}", f.state.index, self.seed, Describe(&h, &f.state)));
            let mut flags = String::new();
            if self.sector != 512 {
                flags += &format!(" --sector {}", self.sector);
            }
            if self.from_start {
                flags += " --from-start";
            }
            say(
                out,
                format!(
                    "  reproduce: pinio crash-test --log {} --check '{}' --seed {} --state {}{flags}",
                    self.log.display(),
                    self.check,
                    self.seed,
                    f.state.index
                ),
            );
            for line in f.output.lines() {
                say(out, format!("  | {line}"));
            }
            if n < self.shrink {
                let img = DurableImage::of_epoch(&h, self.sector, f.state.epoch);
                let path = self.dir.join(format!("crash-shrink-{}.img", std::process::id()));
                let mut failed_to_run = None;
                let small = shrink(&f.state, |c| {
                    if failed_to_run.is_some() {
                        return false;
                    }
                    match img.materialize(&h, c, &path).and_then(|_| self.check_one(&path, c)) {
                        Ok(v) => !v.passed,
                        Err(e) => {
                            failed_to_run = Some(e);
                            false
                        }
                    }
                });
                if let Some(e) = failed_to_run {
                    return Err(e);
                }
                let keep = self.dir.join(format!("crash-state-{}-seed-{}.img", f.state.index, self.seed));
                img.materialize(&h, &small, &keep)?;
                let _ = std::fs::remove_file(&path);
                say(
                    out,
                    format!(
                        "  shrunk to {} of its {} later writes (image kept: {}):",
                        small.extra.len(),
                        f.state.extra.len(),
                        keep.display()
                    ),
                );
                if small.extra.is_empty() {
                    say(out, "    none: the durable image alone fails".to_string());
                }
                for x in &small.extra {
                    say(out, format!("    {}", DescribeExtra(&h, x, self.sector)));
                }
                f.shrunk = Some(small);
                f.image = Some(keep);
            }
        }
        let checked = indices.len() as u64;
        let elapsed = started.elapsed();
        say(
            out,
            format!(
                "crash-test: {checked} states, {} passed, {} failed, in {:.1} s",
                checked - failures.len() as u64,
                failures.len(),
                elapsed.as_secs_f64()
            ),
        );
        Ok(Report { checked, failures, elapsed, history: h })
    }

    fn check_one(&self, image: &Path, s: &CrashState) -> Result<Verdict> {
        let cmd = self
            .check
            .replace("{image}", &image.display().to_string())
            .replace("{state}", &s.index.to_string())
            .replace("{epoch}", &s.epoch.to_string());
        run_shell(&cmd, self.timeout, &self.dir)
    }
}

/// Runs `cmd` through `sh -c` in its own process group, with its output
/// captured; kills the group after `timeout`.
fn run_shell(cmd: &str, timeout: Duration, dir: &Path) -> Result<Verdict> {
    use std::os::unix::process::CommandExt;
    let out_path = dir.join(
        format!("crash-check-{}-{:?}.out", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""),
    );
    let out_file =
        std::fs::File::create(&out_path).map_err(|e| Error::io(format!("creating {}", out_path.display()), e))?;
    let err_file = out_file.try_clone().map_err(|e| Error::io("duplicating the output file", e))?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io(format!("running sh -c {cmd:?}"), e))?;
    let started = Instant::now();
    let mut nap = Duration::from_micros(100);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if started.elapsed() > timeout => {
                let pid = child.id() as i32;
                // SAFETY: kill(2) with the negated id of the process group
                // this function just created for the child (process_group(0)
                // makes the child its leader); it touches no memory.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
            Ok(None) => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(5));
            }
            Err(e) => return Err(Error::io(format!("waiting for sh -c {cmd:?}"), e)),
        }
    };
    // The check's output, with control characters escaped (a checker may
    // print damaged bytes it found).
    let bytes = std::fs::read(&out_path).unwrap_or_default();
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .flat_map(|c| if c.is_control() && c != '\n' { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect();
    let _ = std::fs::remove_file(&out_path);
    let tail: Vec<&str> = text.lines().collect();
    let tail = tail[tail.len().saturating_sub(8)..].join("\n");
    Ok(match status {
        Some(st) if st.success() => Verdict { passed: true, output: String::new() },
        Some(st) => Verdict { passed: false, output: format!("{cmd}: {st}\n{tail}") },
        None => Verdict { passed: false, output: format!("{cmd}: killed after {} s\n{tail}", timeout.as_secs_f64()) },
    })
}

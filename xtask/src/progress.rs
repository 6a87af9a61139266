//! Long-running host commands (kernel make) with a progress line and a log file.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

/// Runs `cmd`, appending its output to `log`, showing a spinner with the
/// latest output line (or a status line every minute when not on a terminal).
/// On failure prints the last lines of the log and fails naming the log.
pub fn run_logged(cmd: &mut Command, what: &str, log: &Path) -> Result<()> {
    let mut log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open log file {}", log.display()))?;
    writeln!(log_file, "### {}", crate::cmd::describe(cmd))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{}`", crate::cmd::describe(cmd)))?;
    let (tx, rx) = mpsc::channel::<String>();
    let out = child.stdout.take().context("child stdout")?;
    let err = child.stderr.take().context("child stderr")?;
    let readers = [spawn_reader(out, tx.clone()), spawn_reader(err, tx)];

    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix} {wide_msg}").expect("static template"),
        );
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };
    eprintln!("xtask: {what} (log: {})", log.display());
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut lines = 0u64;
    let mut tail: std::collections::VecDeque<String> = Default::default();
    for line in rx {
        lines += 1;
        writeln!(log_file, "{line}")?;
        if tail.len() == 40 {
            tail.pop_front();
        }
        tail.push_back(line.clone());
        bar.set_message(format!("{lines} steps · {}", line.trim()));
        if !tty && last_report.elapsed() >= Duration::from_secs(60) {
            eprintln!("xtask: {what}: {} s, {lines} steps, at: {}", start.elapsed().as_secs(), line.trim());
            last_report = Instant::now();
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait().context("waiting for the build")?;
    bar.finish_and_clear();
    if !status.success() {
        eprintln!("xtask: last lines of {}:", log.display());
        for line in &tail {
            eprintln!("  {line}");
        }
        bail!("{what} failed ({status}); full log: {}", log.display());
    }
    eprintln!("xtask: {what}: done in {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

fn spawn_reader(src: impl Read + Send + 'static, tx: mpsc::Sender<String>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(src);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

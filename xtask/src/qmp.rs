//! A small client of QEMU's machine protocol (QMP, JSON lines on a unix
//! socket): the hotplug bridge and the stall diagnosis both speak it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// How long one command may take before QEMU counts as not answering.
const ANSWER: Duration = Duration::from_secs(30);

/// A QMP connection, past the capabilities handshake.
pub struct Qmp {
    out: UnixStream,
    input: BufReader<UnixStream>,
    /// Events QEMU sent, in order, not yet taken by [`Qmp::take_events`].
    events: Vec<Value>,
}

impl Qmp {
    /// Connects and negotiates capabilities.
    pub fn connect(socket: &Path) -> Result<Self> {
        let out = UnixStream::connect(socket).with_context(|| format!("connecting to QMP at {}", socket.display()))?;
        let input = BufReader::new(out.try_clone()?);
        let mut qmp = Self { out, input, events: Vec::new() };
        let greeting = qmp.message(Instant::now() + ANSWER)?;
        if greeting.get("QMP").is_none() {
            bail!("QMP greeting expected, got {greeting}");
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    /// The next message before `deadline` (events are also kept).
    pub fn message(&mut self, deadline: Instant) -> Result<Value> {
        let mut line = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("QMP: no message in time");
            }
            self.out.set_read_timeout(Some(left))?;
            line.clear();
            match self.input.read_line(&mut line) {
                Ok(0) => bail!("QMP: QEMU closed the monitor"),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    continue;
                }
                Err(e) => return Err(e).context("reading QMP"),
            }
            let v: Value = serde_json::from_str(line.trim()).with_context(|| format!("QMP sent {line:?}"))?;
            if v.get("event").is_some() {
                self.events.push(v.clone());
            }
            return Ok(v);
        }
    }

    /// Runs a command; its `return` value, or its `error` as an error.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let msg = json!({ "execute": command, "arguments": arguments });
        self.out.write_all(format!("{msg}\n").as_bytes())?;
        let deadline = Instant::now() + ANSWER;
        loop {
            let v = self.message(deadline)?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                bail!("{command}: {}", e["desc"].as_str().unwrap_or("error"));
            }
        }
    }

    /// A human monitor command's text output (e.g. `info registers -a`).
    pub fn human(&mut self, command_line: &str) -> Result<String> {
        let r = self.execute("human-monitor-command", json!({ "command-line": command_line }))?;
        Ok(r.as_str().unwrap_or_default().to_string())
    }

    /// The events received so far, oldest first; they are not returned again.
    pub fn take_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.events)
    }
}

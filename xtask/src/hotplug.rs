//! Hot-unplug and hot-plug on request of a guest test: QEMU's monitor
//! (QMP, on a unix socket) driven by a host thread that serves requests the
//! guest writes into the run directory over 9p (docs/guest.md, "Hotplug").
//!
//! The guest writes `<run>/hotplug/<name>.req` (one line, e.g. `unplug
//! nvme`) — to `<name>.tmp` first, then renamed, so the host never reads
//! half a request — and waits for `<name>.resp`: `ok <what happened>` or
//! `error <why>`. Only the devices QEMU's command line names here can be
//! unplugged and plugged back, with the same properties.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The directory of requests inside a run directory.
pub const DIR: &str = "hotplug";

/// How often the host looks for a request.
const POLL: Duration = Duration::from_millis(100);
/// How long `plug` waits for QEMU to finish a pending unplug (it does once
/// the guest powered the slot off, i.e. after the guest released the device).
const UNPLUG_DONE: Duration = Duration::from_secs(120);

/// A device a guest may unplug and plug back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pluggable {
    /// The NVMe controller, behind its own `pcie-root-port`.
    Nvme,
}

impl Pluggable {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "nvme" => Some(Self::Nvme),
            _ => None,
        }
    }

    /// QEMU's `id` of the device.
    pub fn id(self) -> &'static str {
        match self {
            Self::Nvme => "nvme",
        }
    }

    /// The `-device` properties (also `device_add`'s arguments).
    pub fn properties(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Self::Nvme => vec![
                ("driver", "nvme"),
                ("id", "nvme"),
                ("bus", "nvme-port"),
                ("drive", "nvme0"),
                ("serial", "pinio0001"),
            ],
        }
    }

    /// The `-device` argument: `driver,key=value,...`.
    pub fn device_arg(self) -> String {
        let props = self.properties();
        let mut s = props[0].1.to_string();
        for (k, v) in &props[1..] {
            s.push_str(&format!(",{k}={v}"));
        }
        s
    }
}

/// One request line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `device_del`: QEMU asks the guest to release the device (PCIe native
    /// hotplug: the attention button); answered once QEMU accepted it.
    Unplug(Pluggable),
    /// `device_add` with the original properties, after QEMU finished the
    /// unplug (`DEVICE_DELETED`); answered once QEMU accepted it.
    Plug(Pluggable),
}

impl Request {
    /// Parses `unplug nvme` / `plug nvme`.
    pub fn parse(line: &str) -> Result<Self> {
        let mut w = line.split_whitespace();
        let (verb, dev, rest) = (w.next(), w.next(), w.next());
        let dev = dev.and_then(Pluggable::parse);
        match (verb, dev, rest) {
            (Some("unplug"), Some(d), None) => Ok(Self::Unplug(d)),
            (Some("plug"), Some(d), None) => Ok(Self::Plug(d)),
            _ => bail!("not a request: {line:?} (expected `unplug nvme` or `plug nvme`)"),
        }
    }
}

/// A QMP connection and what the bridge has seen through it.
struct Qmp {
    conn: crate::qmp::Qmp,
    /// Ids of devices QEMU reported deleted (`DEVICE_DELETED`), not yet plugged back.
    deleted: HashSet<String>,
    /// Ids of devices whose `device_del` QEMU accepted, not yet plugged back.
    unplugged: HashSet<String>,
}

impl Qmp {
    fn connect(socket: &Path) -> Result<Self> {
        Ok(Self { conn: crate::qmp::Qmp::connect(socket)?, deleted: HashSet::new(), unplugged: HashSet::new() })
    }

    /// Notes the `DEVICE_DELETED` events received so far.
    fn note_events(&mut self) {
        for v in self.conn.take_events() {
            if v.get("event").and_then(Value::as_str) == Some("DEVICE_DELETED")
                && let Some(id) = v["data"]["device"].as_str()
            {
                self.deleted.insert(id.to_string());
            }
        }
    }

    fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let r = self.conn.execute(command, arguments);
        self.note_events();
        r
    }

    /// Waits until QEMU reports `id` deleted.
    fn wait_deleted(&mut self, id: &str, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        self.note_events();
        while !self.deleted.contains(id) {
            let got = self.conn.message(deadline);
            self.note_events();
            match got {
                Ok(_) => {}
                Err(e) if Instant::now() >= deadline => {
                    bail!("QEMU did not finish unplugging {id} within {} s ({e})", within.as_secs())
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn serve(&mut self, req: Request) -> Result<String> {
        match req {
            Request::Unplug(d) => {
                self.deleted.remove(d.id());
                self.execute("device_del", json!({ "id": d.id() }))?;
                self.unplugged.insert(d.id().to_string());
                Ok(format!("device_del {} accepted", d.id()))
            }
            Request::Plug(d) => {
                let t = Instant::now();
                if self.unplugged.contains(d.id()) {
                    self.wait_deleted(d.id(), UNPLUG_DONE)?;
                }
                let waited = t.elapsed();
                let args: serde_json::Map<String, Value> =
                    d.properties().into_iter().map(|(k, v)| (k.to_string(), Value::from(v))).collect();
                self.execute("device_add", Value::Object(args))?;
                self.deleted.remove(d.id());
                self.unplugged.remove(d.id());
                Ok(format!(
                    "device_add {} accepted (QEMU had finished the unplug {} ms after the request)",
                    d.id(),
                    waited.as_millis()
                ))
            }
        }
    }
}

/// The host side: a thread serving the guest's requests until dropped.
pub struct Bridge {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bridge {
    /// Serves requests found in `run_dir/hotplug` through QEMU's QMP socket
    /// (connected at the first request, so a boot that makes none never
    /// talks to the monitor).
    pub fn start(run_dir: &Path, socket: PathBuf) -> Result<Self> {
        let dir = run_dir.join(DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut qmp: Option<Qmp> = None;
            while !flag.load(Ordering::Acquire) {
                for name in pending(&dir) {
                    let answer = serve_one(&dir, &name, &socket, &mut qmp);
                    eprintln!("xtask: hotplug request {name}: {answer}");
                    if let Err(e) = respond(&dir, &name, &answer) {
                        eprintln!("xtask: hotplug: cannot answer {name}: {e:#}");
                    }
                }
                std::thread::sleep(POLL);
            }
        });
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Names of the requests waiting, oldest name first.
fn pending(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".req").map(str::to_string))
        .collect();
    names.sort();
    names
}

fn serve_one(dir: &Path, name: &str, socket: &Path, qmp: &mut Option<Qmp>) -> String {
    let req = dir.join(format!("{name}.req"));
    let result = std::fs::read_to_string(&req)
        .with_context(|| format!("reading {}", req.display()))
        .and_then(|text| Request::parse(text.trim()))
        .and_then(|r| {
            if qmp.is_none() {
                *qmp = Some(Qmp::connect(socket)?);
            }
            let q = qmp.as_mut().expect("connected above");
            q.serve(r)
        });
    let _ = std::fs::remove_file(&req);
    match result {
        Ok(s) => format!("ok {s}"),
        Err(e) => {
            if e.to_string().starts_with("QMP:") {
                *qmp = None; // reconnect at the next request
            }
            format!("error {e:#}")
        }
    }
}

fn respond(dir: &Path, name: &str, answer: &str) -> Result<()> {
    let tmp = dir.join(format!("{name}.resp-tmp"));
    std::fs::write(&tmp, format!("{answer}\n"))?;
    std::fs::rename(&tmp, dir.join(format!("{name}.resp")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    #[test]
    fn requests_parse_and_unknown_ones_are_refused() {
        assert_eq!(Request::parse("unplug nvme").unwrap(), Request::Unplug(Pluggable::Nvme));
        assert_eq!(Request::parse(" plug   nvme ").unwrap(), Request::Plug(Pluggable::Nvme));
        for bad in ["", "unplug", "unplug edu", "plug nvme now", "device_del nvme", "UNPLUG nvme"] {
            assert!(Request::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_device_argument_is_the_properties() {
        assert_eq!(Pluggable::Nvme.device_arg(), "nvme,id=nvme,bus=nvme-port,drive=nvme0,serial=pinio0001");
    }

    /// Against a fake QMP server: the handshake, `device_del`, and `plug`
    /// waiting for the `DEVICE_DELETED` event before `device_add`.
    #[test]
    fn the_bridge_serves_a_request_file_over_qmp() {
        let dir = std::env::temp_dir().join(format!("pinio-hotplug-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("qmp.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut out = s.try_clone().unwrap();
            let mut input = BufReader::new(s);
            writeln!(out, r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#).unwrap();
            let mut seen = Vec::new();
            let mut line = String::new();
            while input.read_line(&mut line).unwrap() > 0 {
                let v: Value = serde_json::from_str(&line).unwrap();
                line.clear();
                let cmd = v["execute"].as_str().unwrap().to_string();
                if cmd == "device_del" {
                    writeln!(out, r#"{{"return": {{}}}}"#).unwrap();
                    writeln!(out, r#"{{"event": "DEVICE_DELETED", "data": {{"device": "nvme", "path": "/machine/peripheral/nvme"}}}}"#).unwrap();
                } else if cmd == "qmp_capabilities" || (cmd == "device_add" && v["arguments"]["bus"] == "nvme-port") {
                    writeln!(out, r#"{{"return": {{}}}}"#).unwrap();
                } else {
                    writeln!(out, r#"{{"error": {{"class": "GenericError", "desc": "no"}}}}"#).unwrap();
                }
                seen.push(cmd);
            }
            seen
        });
        let bridge = Bridge::start(&dir, socket).unwrap();
        let ask = |name: &str, line: &str| -> String {
            let d = dir.join(DIR);
            std::fs::write(d.join(format!("{name}.tmp")), line).unwrap();
            std::fs::rename(d.join(format!("{name}.tmp")), d.join(format!("{name}.req"))).unwrap();
            let resp = d.join(format!("{name}.resp"));
            let deadline = Instant::now() + Duration::from_secs(30);
            while !resp.exists() {
                assert!(Instant::now() < deadline, "no answer to {line}");
                std::thread::sleep(Duration::from_millis(20));
            }
            std::fs::read_to_string(resp).unwrap()
        };
        assert!(ask("1", "unplug nvme").starts_with("ok device_del nvme"));
        assert!(ask("2", "plug nvme").starts_with("ok device_add nvme"));
        assert!(ask("3", "unplug edu").starts_with("error not a request"));
        drop(bridge);
        assert_eq!(server.join().unwrap(), ["qmp_capabilities", "device_del", "device_add"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! A flush started without waiting (`Queue::start_flush`, then
//! `poll_flush`, as async code runs it) through `record:` is logged as a
//! flush call and its return, and through `fault:` fails by rule, on every
//! host backend (uring returns `Running` and finishes in `poll_flush`).

use pinio::FlushProgress;
use pinio::crash::log::{LogReader, Record};
use pinio::{FlushMode, Queue};
use std::path::PathBuf;

const BLOCK: usize = 4096;

fn backends() -> Vec<&'static str> {
    let mut v = vec!["copy"];
    if pinio::available_backends().contains(&pinio::BackendKind::Uring) {
        v.push("uring");
    }
    v
}

fn scratch(name: &str) -> (PathBuf, PathBuf) {
    let base = format!("/var/tmp/pinio-record-sf-{}-{name}", std::process::id());
    let (dat, log) = (PathBuf::from(format!("{base}.dat")), PathBuf::from(format!("{base}.log")));
    std::fs::write(&dat, vec![0u8; 8 * BLOCK]).unwrap();
    (dat, log)
}

fn finish(q: &mut dyn Queue, first: pinio::Result<FlushProgress>) -> pinio::Result<()> {
    let mut p = first?;
    while p == FlushProgress::Running {
        std::thread::sleep(std::time::Duration::from_micros(200));
        p = q.poll_flush()?;
    }
    Ok(())
}

#[test]
fn a_started_flush_is_logged_when_it_returns() {
    for backend in backends() {
        let (dat, log) = scratch(backend);
        let dev = pinio::open(&format!("record:{}:{backend}:{}", log.display(), dat.display())).unwrap();
        let region = dev.alloc(BLOCK).unwrap();
        let mut q = dev.queue(4).unwrap();
        let (_, s) = q.write_at(region.slice(0, BLOCK).unwrap(), 0).unwrap();
        let first = q.start_flush(FlushMode::Data);
        finish(&mut *q, first).unwrap();
        drop((s, q, region, dev));
        let l = LogReader::read(&log).unwrap();
        let tail: Vec<&Record> = l.records.iter().filter(|r| !matches!(r, Record::Base { .. })).collect();
        assert!(
            matches!(tail[2], Record::Flush { .. }) && matches!(tail[3], Record::Flushed { result: 0, .. }),
            "{backend}: {tail:?}"
        );
        let h = pinio::crash::crash::History::from_log(&l);
        assert_eq!(h.epochs.len(), 2, "{backend}: the write is durable after the started flush");
        assert_eq!(h.epochs[1].newly_durable, [0]);
        let _ = std::fs::remove_file(&dat);
        let _ = std::fs::remove_file(&log);
    }
}

#[test]
fn a_started_flush_fails_by_rule() {
    for backend in backends() {
        let (dat, log) = scratch(&format!("fault-{backend}"));
        let dev = pinio::open(&format!("fault:flush@1=eio:{backend}:{}", dat.display())).unwrap();
        let mut q = dev.queue(4).unwrap();
        let e = q.start_flush(FlushMode::Data).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5), "{backend}: {e}");
        let second = q.start_flush(FlushMode::Data);
        finish(&mut *q, second).unwrap();
        let _ = std::fs::remove_file(&dat);
        let _ = std::fs::remove_file(&log);
    }
}

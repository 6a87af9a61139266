//! `record:<log>:<selection>` over copy and uring: the log holds the
//! device's contents before recording (non-zero blocks), every write's
//! segments with their bytes and offset, completions and flushes in order;
//! reads are forwarded and not logged; and the durable image the crash-state
//! generator builds from the log is byte for byte the file the device wrote.

use pinio::FlushMode;
use pinio::crash::crash::{CrashState, DurableImage, History, StateKind};
use pinio::crash::log::{LogReader, Record};
use std::path::PathBuf;

const BLOCK: usize = 4096;

struct Scratch(PathBuf, PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let base = format!("/var/tmp/pinio-record-{}-{name}", std::process::id());
        Scratch(PathBuf::from(format!("{base}.dat")), PathBuf::from(format!("{base}.log")))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(&self.1);
    }
}

#[test]
fn the_log_replays_to_the_device_contents() {
    let mut backends = vec!["copy"];
    if pinio::available_backends().contains(&pinio::BackendKind::Uring) {
        backends.push("uring");
    }
    for backend in backends {
        let s = Scratch::new(backend);
        // Before recording: block 1 holds 0x11, block 5 0x55, the rest zeros.
        let mut before = vec![0u8; 16 * BLOCK];
        before[BLOCK..2 * BLOCK].fill(0x11);
        before[5 * BLOCK..6 * BLOCK].fill(0x55);
        std::fs::write(&s.0, &before).unwrap();
        let spec = format!("record:{}:{backend}:{}", s.1.display(), s.0.display());
        let dev = pinio::open(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert!(dev.describe().starts_with("record:"), "{}", dev.describe());
        let region = dev.alloc(4 * BLOCK).unwrap();
        let mut q = dev.queue(4).unwrap();
        let mut a = region.slice(0, BLOCK).unwrap();
        a.fill(0xAA);
        let (_, a) = q.write_at(a, 0).unwrap();
        // A vectored write: two segments at blocks 8 and 9.
        let (mut b, mut c) = (region.slice(BLOCK, BLOCK).unwrap(), region.slice(2 * BLOCK, BLOCK).unwrap());
        b.fill(0xBB);
        c.fill(0xCC);
        let (n, segs) = q.writev_at(vec![b, c], 8 * BLOCK as u64).unwrap();
        assert_eq!((n, segs.len()), (2 * BLOCK, 2));
        q.flush(FlushMode::Data).unwrap();
        let (_, a) = q.read_at(a, 5 * BLOCK as u64).unwrap();
        assert!(a.iter().all(|&x| x == 0x55));
        drop((a, segs, q, region, dev));

        let log = LogReader::read(&s.1).unwrap();
        assert!(log.closed && log.tail.is_none(), "{backend}: {:?}", log.tail);
        let base: Vec<(u64, usize)> = log
            .records
            .iter()
            .filter_map(|r| if let Record::Base { offset, data } = r { Some((*offset, data.len())) } else { None })
            .collect();
        assert_eq!(base, [(BLOCK as u64, BLOCK), (5 * BLOCK as u64, BLOCK)], "{backend}: only the non-zero blocks");
        let writes: Vec<(u64, Vec<u32>)> = log
            .records
            .iter()
            .filter_map(|r| {
                if let Record::Write { dev_offset, segments, .. } = r {
                    Some((*dev_offset, segments.clone()))
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(
            writes,
            [(0, vec![BLOCK as u32]), (8 * BLOCK as u64, vec![BLOCK as u32, BLOCK as u32])],
            "{backend}: reads are not logged"
        );
        let kinds: Vec<&str> = log
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Base { .. } => None,
                Record::Write { .. } => Some("write"),
                Record::Done { .. } => Some("done"),
                Record::Flush { .. } => Some("flush"),
                Record::Flushed { .. } => Some("flushed"),
                Record::End { .. } => Some("end"),
            })
            .collect();
        assert_eq!(kinds, ["write", "done", "write", "done", "flush", "flushed", "end"], "{backend}");

        let h = History::from_log(&log);
        assert_eq!(h.epochs.len(), 2);
        let img = DurableImage::of_epoch(&h, 512, 1);
        let out = s.1.with_extension("img");
        img.materialize(&h, &CrashState { index: 0, epoch: 1, kind: StateKind::Durable, extra: Vec::new() }, &out)
            .unwrap();
        let (want, got) = (std::fs::read(&s.0).unwrap(), std::fs::read(&out).unwrap());
        std::fs::remove_file(&out).unwrap();
        assert_eq!(want.len(), got.len());
        assert!(want == got, "{backend}: the durable image differs from the file");
    }
}

#[test]
fn a_short_vectored_write_hands_every_segment_back() {
    let s = Scratch::new("short-vectored");
    std::fs::write(&s.0, vec![0u8; 16 * BLOCK]).unwrap();
    let dev = pinio::open(&format!("fault:write@1=short:copy:{}", s.0.display())).unwrap();
    let region = dev.alloc(4 * BLOCK).unwrap();
    let mut q = dev.queue(4).unwrap();
    let segs: Vec<_> = (0..4).map(|i| region.slice(i * BLOCK, BLOCK).unwrap()).collect();
    let (n, segs) = q.writev_at(segs, 0).unwrap();
    assert_eq!(n, 2 * BLOCK, "the first half of four segments");
    assert_eq!(
        segs.iter().map(|s| (s.offset(), s.len())).collect::<Vec<_>>(),
        (0..4).map(|i| (i * BLOCK, BLOCK)).collect::<Vec<_>>()
    );
    drop((segs, q));
    region.unregister().unwrap();
}

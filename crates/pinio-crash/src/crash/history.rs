//! From a crash log to what the flush contract says about every write:
//! when it became durable, and until then, when it may have landed.

use crate::log::{LogHeader, RESULT_REJECTED, ReadLog, Record};

/// A write of the log.
#[derive(Debug, Clone)]
pub struct WriteEvent {
    /// Its id in the log.
    pub id: u64,
    /// The queue it was pushed to.
    pub queue: u32,
    /// Device offset of its first byte.
    pub offset: u64,
    /// Its bytes (every segment, in order).
    pub data: Vec<u8>,
    /// Its segments' lengths.
    pub segments: Vec<u32>,
    /// Index of its `WRITE` record among the log's events.
    pub pushed: usize,
    /// Index of its `DONE` record and its result, if the log has one.
    pub done: Option<(usize, i64)>,
    /// The epoch from which it is durable, if it ever is.
    pub durable_from: Option<usize>,
}

impl WriteEvent {
    /// Whether it completed successfully (all its bytes).
    pub fn succeeded(&self) -> bool {
        matches!(self.done, Some((_, n)) if n >= 0 && n as usize == self.data.len())
    }

    /// Whether the queue refused it (it never reached the device).
    pub fn rejected(&self) -> bool {
        matches!(self.done, Some((_, RESULT_REJECTED)))
    }
}

/// A flush of the log.
#[derive(Debug, Clone)]
pub struct FlushEvent {
    /// Its id in the log.
    pub id: u64,
    /// The queue it was called on.
    pub queue: u32,
    /// Index of its `FLUSH` record.
    pub called: usize,
    /// Index of its `FLUSHED` record and its result, if it returned.
    pub returned: Option<(usize, i64)>,
}

/// The time between two successful flushes: what is durable in it, and
/// which writes may have landed on top.
#[derive(Debug, Clone)]
pub struct Epoch {
    /// The flush (index in [`History::flushes`]) whose success began it;
    /// `None` for epoch 0, before any.
    pub flush: Option<usize>,
    /// The event index where it ends (the next successful flush's return,
    /// or the end of the log).
    pub end: usize,
    /// Writes that became durable when it began, in the order they are
    /// applied (by completion).
    pub newly_durable: Vec<usize>,
    /// Writes pushed before it ends and not durable in it: each may or may
    /// not be on the device after a crash in this epoch.
    pub window: Vec<usize>,
}

/// A crash log, interpreted.
#[derive(Debug, Clone)]
pub struct History {
    /// The log's header.
    pub header: LogHeader,
    /// The device's contents before recording (non-zero blocks).
    pub base: Vec<(u64, Vec<u8>)>,
    /// Every write, in push order.
    pub writes: Vec<WriteEvent>,
    /// Every flush, in call order.
    pub flushes: Vec<FlushEvent>,
    /// Epoch 0, then one per successful flush.
    pub epochs: Vec<Epoch>,
    /// Events (records other than `BASE` and `END`) in the log.
    pub events: usize,
    /// Whether the log was closed cleanly.
    pub closed: bool,
    /// Why the log ends early, if it does.
    pub tail: Option<String>,
}

impl History {
    /// Interprets `log`.
    ///
    /// The rule, from [`pinio_core::Queue::flush`]: a flush that returned
    /// `Ok` made durable every write whose completion the application had
    /// received, on any queue, before the flush was called, and every write
    /// pushed to the flush's own queue before the call; of those, the ones
    /// that succeeded are durable from then on. A write that failed, or
    /// that no successful flush covered, may or may not be on the device
    /// after a crash, whole or torn.
    pub fn from_log(log: &ReadLog) -> History {
        let mut h = History {
            header: log.header.clone(),
            base: Vec::new(),
            writes: Vec::new(),
            flushes: Vec::new(),
            epochs: Vec::new(),
            events: 0,
            closed: log.closed,
            tail: log.tail.clone(),
        };
        let mut write_at = std::collections::HashMap::new();
        let mut flush_at = std::collections::HashMap::new();
        for r in &log.records {
            let ev = h.events;
            match r {
                Record::Base { offset, data } => {
                    h.base.push((*offset, data.clone()));
                    continue;
                }
                Record::End { .. } => continue,
                Record::Write { id, queue, dev_offset, segments, data } => {
                    write_at.insert(*id, h.writes.len());
                    h.writes.push(WriteEvent {
                        id: *id,
                        queue: *queue,
                        offset: *dev_offset,
                        data: data.clone(),
                        segments: segments.clone(),
                        pushed: ev,
                        done: None,
                        durable_from: None,
                    });
                }
                Record::Done { id, result } => {
                    if let Some(&w) = write_at.get(id) {
                        h.writes[w].done = Some((ev, *result));
                    }
                }
                Record::Flush { id, queue, .. } => {
                    flush_at.insert(*id, h.flushes.len());
                    h.flushes.push(FlushEvent { id: *id, queue: *queue, called: ev, returned: None });
                }
                Record::Flushed { id, result } => {
                    if let Some(&f) = flush_at.get(id) {
                        h.flushes[f].returned = Some((ev, *result));
                    }
                }
            }
            h.events += 1;
        }
        h.build_epochs();
        h
    }

    fn build_epochs(&mut self) {
        let mut ok: Vec<usize> =
            (0..self.flushes.len()).filter(|&f| matches!(self.flushes[f].returned, Some((_, 0)))).collect();
        ok.sort_by_key(|&f| self.flushes[f].returned.map_or(usize::MAX, |(at, _)| at));
        let starts: Vec<(Option<usize>, usize)> = std::iter::once((None, 0))
            .chain(ok.iter().map(|&f| (Some(f), self.flushes[f].returned.map_or(0, |r| r.0))))
            .collect();
        for (k, &(flush, _)) in starts.iter().enumerate() {
            let end = starts.get(k + 1).map_or(self.events, |s| s.1);
            let mut newly = Vec::new();
            if let Some(f) = flush {
                let fl = self.flushes[f].clone();
                for (i, w) in self.writes.iter_mut().enumerate() {
                    if w.durable_from.is_some() || !w.succeeded() {
                        continue;
                    }
                    let reaped_before = w.done.is_some_and(|(at, _)| at < fl.called);
                    let pushed_here = w.queue == fl.queue && w.pushed < fl.called;
                    if reaped_before || pushed_here {
                        w.durable_from = Some(k);
                        newly.push(i);
                    }
                }
            }
            let writes = &self.writes;
            newly.sort_by_key(|&i| (writes[i].done.map_or(usize::MAX, |d| d.0), writes[i].pushed));
            let window = (0..writes.len())
                .filter(|&i| {
                    let w = &writes[i];
                    w.pushed < end && !w.rejected() && w.durable_from.is_none_or(|d| d > k)
                })
                .collect();
            self.epochs.push(Epoch { flush, end, newly_durable: newly, window });
        }
    }

    /// The time a write lands in the durable image: its completion (or,
    /// without one, the end of the log).
    pub fn durable_time(&self, w: usize) -> f64 {
        let w = &self.writes[w];
        w.done.map_or(self.events, |d| d.0) as f64
    }

    /// The latest time write `w` may land in a crash in epoch `k`: its
    /// completion, or the epoch's end if it was still in flight then.
    pub fn latest_time(&self, w: usize, k: usize) -> f64 {
        let end = self.epochs[k].end;
        let wr = &self.writes[w];
        wr.done.map_or(end, |d| d.0.min(end)) as f64
    }

    /// Writes durable in epoch `k`.
    pub fn durable_count(&self, k: usize) -> usize {
        self.epochs[..=k].iter().map(|e| e.newly_durable.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crash::{CrashState, DurableImage, Extra, StateKind};
    use crate::log::{LogHeader, ReadLog, Record};

    fn w(id: u64, queue: u32, off: u64, byte: u8) -> Record {
        Record::Write { id, queue, dev_offset: off, segments: vec![512], data: vec![byte; 512] }
    }

    fn done(id: u64, result: i64) -> Record {
        Record::Done { id, result }
    }

    fn log(records: Vec<Record>) -> ReadLog {
        let header = LogHeader {
            device_size: 4096,
            offset_align: 512,
            len_align: 512,
            persistence: 2,
            description: "test".into(),
        };
        ReadLog { header, records, closed: true, tail: None }
    }

    #[test]
    fn a_flush_covers_what_was_reaped_anywhere_and_what_its_own_queue_pushed() {
        let h = History::from_log(&log(vec![
            w(1, 0, 0, 1), // reaped on queue 0 before the flush: durable
            done(1, 512),
            w(2, 1, 512, 2),  // pushed to queue 1, reaped after the flush call: durable
            w(3, 0, 1024, 3), // pushed to queue 0, not reaped when queue 1 flushes: not
            w(4, 1, 1536, 4), // failed: never durable
            done(4, -5),
            Record::Flush { id: 5, queue: 1, mode: 0 },
            done(2, 512),
            Record::Flushed { id: 5, result: 0 },
            done(3, 512),
            Record::Flush { id: 6, queue: 0, mode: 0 }, // fails: makes nothing durable
            Record::Flushed { id: 6, result: -5 },
            w(7, 0, 2048, 7),
            Record::Flush { id: 8, queue: 1, mode: 0 }, // covers 3 (reaped before), not 7 (queue 0, unreaped)
            Record::Flushed { id: 8, result: 0 },
            done(7, 512),
        ]));
        assert_eq!(h.epochs.len(), 3);
        let ids = |v: &[usize]| v.iter().map(|&i| h.writes[i].id).collect::<Vec<_>>();
        assert_eq!(ids(&h.epochs[1].newly_durable), [1, 2]);
        assert_eq!(ids(&h.epochs[1].window), [3, 4, 7]);
        assert_eq!(ids(&h.epochs[2].newly_durable), [3]);
        assert_eq!(ids(&h.epochs[2].window), [4, 7]);
        assert_eq!(ids(&h.epochs[0].window), [1, 2, 3, 4]);
    }

    #[test]
    fn a_write_that_happened_before_a_durable_one_stays_under_it() {
        let h = History::from_log(&log(vec![
            w(1, 0, 0, 1),
            done(1, -5), // failed: may have landed, but before write 2 was even pushed
            w(2, 0, 0, 2),
            done(2, 512),
            Record::Flush { id: 3, queue: 0, mode: 0 },
            Record::Flushed { id: 3, result: 0 },
        ]));
        let img = DurableImage::of_epoch(&h, 512, 1);
        let p = std::env::temp_dir().join(format!("pinio-crash-hb-{}", std::process::id()));
        let early = Extra { write: 0, time: h.latest_time(0, 1), torn: None };
        img.materialize(&h, &CrashState { index: 0, epoch: 1, kind: StateKind::Sampled, extra: vec![early] }, &p)
            .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert!(bytes[..512].iter().all(|&b| b == 2), "the older write does not overwrite the durable one");
        std::fs::remove_file(&p).unwrap();
    }
}

//! The durable image of an epoch, in memory, and crash images written
//! from it to files.

use super::history::History;
use super::pieces::pieces;
use super::state::CrashState;
use pinio_core::{Error, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Granularity of the record of which parts of the device were written.
const BLOCK: u64 = 4096;

/// The device as the durable writes of an epoch left it, with, for every
/// atomic unit (sector), the time of the write that set it last, so that a
/// write which may land later is kept under a durable one it happened
/// before.
#[derive(Debug, Clone)]
pub struct DurableImage {
    data: Vec<u8>,
    stamp: Vec<f64>,
    touched: Vec<bool>,
    sector: u64,
    epoch: usize,
}

impl DurableImage {
    /// The device before recording began (epoch "-1": nothing applied).
    /// Its size is the device's when recording began, or the end of the
    /// furthest write if a write went past it (a file that grew).
    pub fn base(h: &History, sector: u64) -> DurableImage {
        let furthest = h.writes.iter().map(|w| w.offset + w.data.len() as u64).max().unwrap_or(0);
        let size = h.header.device_size.max(furthest);
        let mut img = DurableImage {
            data: vec![0; size as usize],
            stamp: vec![0.0; size.div_ceil(sector) as usize],
            touched: vec![false; size.div_ceil(BLOCK) as usize],
            sector,
            epoch: usize::MAX,
        };
        for (off, bytes) in &h.base {
            img.put(*off, bytes, None);
        }
        img
    }

    /// The image of epoch `k`, built from scratch.
    pub fn of_epoch(h: &History, sector: u64, k: usize) -> DurableImage {
        let mut img = DurableImage::base(h, sector);
        for e in 0..=k {
            img.advance_to(h, e);
        }
        img
    }

    /// The epoch applied last (`usize::MAX` for none).
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Applies epoch `k`'s newly durable writes; epochs must come in order.
    pub fn advance_to(&mut self, h: &History, k: usize) {
        for &w in &h.epochs[k].newly_durable {
            let t = h.durable_time(w);
            let wr = &h.writes[w];
            self.put(wr.offset, &wr.data, Some(t));
        }
        self.epoch = k;
    }

    fn put(&mut self, off: u64, bytes: &[u8], t: Option<f64>) {
        let end = (off + bytes.len() as u64).min(self.data.len() as u64);
        if off >= end {
            return;
        }
        self.data[off as usize..end as usize].copy_from_slice(&bytes[..(end - off) as usize]);
        if let Some(t) = t {
            for s in off / self.sector..end.div_ceil(self.sector) {
                self.stamp[s as usize] = t;
            }
        }
        for b in off / BLOCK..end.div_ceil(BLOCK) {
            self.touched[b as usize] = true;
        }
    }

    /// Writes the crash image of `state` (this image plus its later
    /// writes) to `path`, a sparse file of the device's size.
    pub fn materialize(&self, h: &History, state: &CrashState, path: &Path) -> Result<()> {
        let ctx = |what: &str| format!("{what} crash image {}", path.display());
        let f = File::create(path).map_err(|e| Error::io(ctx("creating"), e))?;
        f.set_len(self.data.len() as u64).map_err(|e| Error::io(ctx("sizing"), e))?;
        let mut b = 0;
        while b < self.touched.len() {
            if !self.touched[b] {
                b += 1;
                continue;
            }
            let start = b;
            while b < self.touched.len() && self.touched[b] {
                b += 1;
            }
            let (s, e) = (start as u64 * BLOCK, (b as u64 * BLOCK).min(self.data.len() as u64));
            f.write_all_at(&self.data[s as usize..e as usize], s).map_err(|e| Error::io(ctx("writing"), e))?;
        }
        let mut extra: Vec<_> = state.extra.iter().collect();
        extra.sort_by(|a, b| a.time.total_cmp(&b.time));
        for x in extra {
            let w = &h.writes[x.write];
            for (i, (off, len)) in pieces(w.offset, w.data.len() as u64, self.sector).enumerate() {
                if x.torn.as_ref().is_some_and(|keep| !keep.get(i).copied().unwrap_or(false)) {
                    continue;
                }
                let sector = (off / self.sector) as usize;
                if self.stamp.get(sector).is_some_and(|&t| t > x.time) {
                    // A durable write that happened after it covers this unit.
                    continue;
                }
                if off + len > self.data.len() as u64 {
                    continue;
                }
                let at = (off - w.offset) as usize;
                f.write_all_at(&w.data[at..at + len as usize], off).map_err(|e| Error::io(ctx("writing"), e))?;
            }
        }
        Ok(())
    }
}

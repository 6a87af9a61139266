//! The fuzzer's model of the module: per open file, its regions, its pinned page count, its
//! outstanding descriptors in submission order, and its file position.

use std::collections::VecDeque;

/// Limits the module reported through INFO (module parameters).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) page: u64,
    pub(crate) dev_mem: u64,
    pub(crate) cap_pages: u64,
    pub(crate) depth: u32,
    pub(crate) max_batch: u32,
}

/// Device memory `[0, ECHO_WINDOW)` belongs to the echo check; nothing else writes there.
pub(crate) const ECHO_WINDOW: u64 = 64 << 10;

/// A registered region as the model knows it.
#[derive(Debug, Clone)]
pub(crate) struct RegionM {
    pub(crate) id: u32,
    pub(crate) len: u64,
    pub(crate) access: u32,
    pub(crate) pages: u64,
}

/// A descriptor submitted and not yet reaped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub(crate) tag: u64,
    pub(crate) len: u64,
    pub(crate) region: u32,
}

/// One session (open file description) of `/dev/pinio`.
#[derive(Debug, Default)]
pub(crate) struct SessionM {
    /// Descriptors open on it (dup'ed ones share the session).
    pub(crate) fds: Vec<i32>,
    pub(crate) regions: Vec<RegionM>,
    /// Ids this session unregistered (never reused by the module).
    pub(crate) stale: Vec<u32>,
    /// The id the next REGISTER gets.
    pub(crate) next_id: u32,
    /// Submitted, not yet reaped, oldest first; completions come back in this order.
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) pinned: u64,
    /// File position for read/write.
    pub(crate) pos: i64,
}

impl SessionM {
    pub(crate) fn new(fd: i32) -> SessionM {
        SessionM { fds: vec![fd], next_id: 1, ..SessionM::default() }
    }

    pub(crate) fn region(&self, id: u32) -> Option<&RegionM> {
        self.regions.iter().find(|r| r.id == id)
    }

    /// Descriptors of region `id` submitted and not reaped (a superset of those in flight).
    pub(crate) fn pending_on(&self, id: u32) -> usize {
        self.pending.iter().filter(|p| p.region == id).count()
    }

    /// Records a successful REGISTER.
    pub(crate) fn add_region(&mut self, id: u32, len: u64, access: u32, pages: u64) {
        self.regions.push(RegionM { id, len, access, pages });
        self.pinned += pages;
        self.next_id = id.wrapping_add(1);
    }

    /// Records a successful UNREGISTER.
    pub(crate) fn remove_region(&mut self, id: u32) {
        if let Some(i) = self.regions.iter().position(|r| r.id == id) {
            let r = self.regions.swap_remove(i);
            self.pinned -= r.pages;
            if self.stale.len() < 64 {
                self.stale.push(id);
            }
        }
    }
}

/// Pages a buffer `[addr, addr + len)` touches (`len > 0`, no wrap).
pub(crate) fn pages_spanned(addr: u64, len: u64, page: u64) -> u64 {
    (addr + len - 1) / page - addr / page + 1
}

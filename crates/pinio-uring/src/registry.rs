//! The device's registered-buffer table, and how it reaches every ring.
//!
//! One small ring per device, the *table ring*, never carries IO: it only
//! owns a sparse table of [`SLOTS`] buffer slots. Each region takes one slot
//! (`IORING_REGISTER_BUFFERS_UPDATE`), so memory is pinned and charged to
//! `RLIMIT_MEMLOCK` once, however many queues use it. Every ring that does IO
//! (a queue, a zero-copy sender) *subscribes*: it gets a copy of the whole
//! table (`IORING_REGISTER_CLONE_BUFFERS`, which shares the kernel's pinned
//! buffers by reference count instead of pinning again), and the copy is
//! refreshed in every subscriber, under the registry lock, each time a slot
//! is filled or emptied. So when [`Registry::register`] returns, every ring
//! can use the slot, and when [`Registry::unregister`] returns no ring holds
//! the pages any more.

use crate::UringError;
use io_uring::IoUring;
use io_uring::types::CloneBuffersFlags;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};

/// Size of the registered-buffer table: regions registered at once.
pub const SLOTS: u32 = 1024;

/// Why a registration failed.
#[derive(Debug)]
pub(crate) enum RegisterFailure {
    /// `ENOMEM`, which for a ring created without `CAP_IPC_LOCK` means the
    /// locked-memory limit; `locked` is what this registry had registered.
    Memlock { locked: u64 },
    /// Anything else.
    Other(UringError),
}

struct State {
    free: Vec<u16>,
    subscribers: Vec<(u64, Arc<IoUring>)>,
    next_subscriber: u64,
    locked: u64,
}

/// The table ring and its slots.
pub(crate) struct Registry {
    table: IoUring,
    state: Mutex<State>,
}

impl Registry {
    /// Makes the table ring with an empty sparse table.
    pub(crate) fn new() -> Result<Registry, UringError> {
        let table = IoUring::builder().dontfork().build(1).map_err(|source| UringError::Setup { entries: 1, source })?;
        table
            .submitter()
            .register_buffers_sparse(SLOTS)
            .map_err(|source| UringError::RegisterBuffer { addr: 0, len: 0, source })?;
        let free = (0..SLOTS as u16).rev().collect();
        Ok(Registry { table, state: Mutex::new(State { free, subscribers: Vec::new(), next_subscriber: 1, locked: 0 }) })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is only changed by complete assignments; a panic while
        // holding the lock cannot leave it half-updated.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `len` bytes at `addr` into a free slot and publishes it to
    /// every subscriber; returns the slot.
    ///
    /// # Safety
    ///
    /// `addr..addr+len` must be anonymous memory that stays mapped until
    /// [`Registry::unregister`] of the returned slot (the kernel keeps the
    /// pages pinned, but IO through the slot reaches those pages).
    pub(crate) unsafe fn register(&self, addr: *mut u8, len: usize) -> Result<u16, RegisterFailure> {
        let mut st = self.state();
        let Some(slot) = st.free.pop() else {
            return Err(RegisterFailure::Other(UringError::SlotsExhausted { slots: SLOTS }));
        };
        let iov = libc::iovec { iov_base: addr.cast(), iov_len: len };
        // SAFETY: the caller guarantees the memory stays valid while the
        // slot holds it; the slot is free, so nothing else refers to it.
        let r = unsafe { self.table.submitter().register_buffers_update(slot as u32, &[iov], None) };
        if let Err(source) = r {
            st.free.push(slot);
            if source.raw_os_error() == Some(libc::ENOMEM) {
                return Err(RegisterFailure::Memlock { locked: st.locked });
            }
            return Err(RegisterFailure::Other(UringError::RegisterBuffer { addr: addr as u64, len: len as u64, source }));
        }
        if let Err(e) = self.publish(&st) {
            // Take the slot back out so that no ring is left half-updated.
            let _ = self.clear(slot);
            let _ = self.publish(&st);
            st.free.push(slot);
            return Err(RegisterFailure::Other(e));
        }
        st.locked += len as u64;
        Ok(slot)
    }

    /// Empties `slot` in the table and in every subscriber, which unpins its
    /// memory. No operation may be in flight on it.
    pub(crate) fn unregister(&self, slot: u16, len: usize) -> Result<(), UringError> {
        let mut st = self.state();
        self.clear(slot)?;
        let published = self.publish(&st);
        st.locked = st.locked.saturating_sub(len as u64);
        st.free.push(slot);
        published
    }

    fn clear(&self, slot: u16) -> Result<(), UringError> {
        let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
        // SAFETY: a null iovec empties the slot; no memory is handed over.
        unsafe { self.table.submitter().register_buffers_update(slot as u32, &[empty], None) }
            .map(drop)
            .map_err(|source| UringError::UnregisterBuffer { slot, source })
    }

    /// Copies the whole table into every subscriber.
    fn publish(&self, st: &State) -> Result<(), UringError> {
        st.subscribers.iter().try_for_each(|(_, ring)| self.copy_into(ring))
    }

    fn copy_into(&self, ring: &IoUring) -> Result<(), UringError> {
        // nr = 0 with both offsets 0 clones the entire table; DST_REPLACE
        // swaps out whatever table the ring had. Cloning the whole range
        // avoids the kernel bug fixed by commit 525916ce4966 (6.18-stable),
        // which dropped destination entries after a partial cloned range.
        ring.submitter()
            .register_buffers_clone_offset(self.table.as_raw_fd(), 0, 0, 0, CloneBuffersFlags::DST_REPLACE)
            .map_err(|source| UringError::CloneBuffers { source })
    }

    /// Gives `ring` the current table and keeps it up to date until
    /// [`Registry::unsubscribe`] with the returned id.
    pub(crate) fn subscribe(&self, ring: Arc<IoUring>) -> Result<u64, UringError> {
        let mut st = self.state();
        self.copy_into(&ring)?;
        let id = st.next_subscriber;
        st.next_subscriber += 1;
        st.subscribers.push((id, ring));
        Ok(id)
    }

    /// Stops updating subscriber `id` and releases the registry's handle on
    /// its ring.
    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut st = self.state();
        st.subscribers.retain(|(i, _)| *i != id);
    }
}

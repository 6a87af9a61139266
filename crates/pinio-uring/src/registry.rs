//! A domain's registered-buffer table, and how it reaches every ring.
//!
//! One small ring per domain, the *table ring*, never carries IO: it only
//! owns a sparse table of [`SLOTS`] buffer slots. Each region takes one slot
//! (`IORING_REGISTER_BUFFERS_UPDATE`), so memory is pinned and charged to
//! `RLIMIT_MEMLOCK` once, however many queues of however many files of the
//! domain use it. Every ring that does IO (a queue of any file of the
//! domain, a zero-copy sender) *subscribes*: it gets a copy of the whole
//! table (`IORING_REGISTER_CLONE_BUFFERS`, which shares the kernel's pinned
//! buffers by reference count instead of pinning again), and the copy is
//! refreshed in every subscriber, under the registry lock, each time a slot
//! is filled or emptied. So when [`Registry::register`] returns, every ring
//! can use the slot, and when [`Registry::unregister`] returns no ring holds
//! the pages any more.
//!
//! Kernels before 6.13 cannot clone a table into a ring that has one. There
//! the registry falls back to [`Sharing::PerRing`]: the same slot is
//! registered in every subscriber's own sparse table, which pins (and
//! charges the memory limit) once per ring. The environment variable
//! `PINIO_URING_NO_CLONE=1` forces this mode, for testing it.

use crate::UringError;
use io_uring::types::CloneBuffersFlags;
use io_uring::{IoUring, Submitter, cqueue, squeue};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A ring the table can be given to, whatever its entry sizes: the rings
/// of this crate's queues (64-byte SQEs) and the 128-byte-SQE, 32-byte-CQE
/// rings of NVMe passthrough (`pinio-nvme-uring`) alike.
pub trait TableRing: Send + Sync {
    /// The ring's registration interface.
    fn submitter(&self) -> Submitter<'_>;
}

impl<S: squeue::EntryMarker, C: cqueue::EntryMarker> TableRing for IoUring<S, C> {
    fn submitter(&self) -> Submitter<'_> {
        IoUring::submitter(self)
    }
}

/// Size of the registered-buffer table: regions registered at once.
pub const SLOTS: u32 = 1024;

/// How subscribers get the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sharing {
    /// `IORING_REGISTER_CLONE_BUFFERS` (Linux 6.13+): pinned once.
    Clone,
    /// Each subscriber registers every slot itself: pinned once per ring.
    PerRing,
}

/// Why a registration failed.
#[derive(Debug)]
pub(crate) enum RegisterFailure {
    /// `ENOMEM`, which for a ring created without `CAP_IPC_LOCK` means the
    /// locked-memory limit; `locked` is what this registry had registered,
    /// charged `rings` times (1 when rings share the table by cloning; the
    /// table ring and every subscriber in [`Sharing::PerRing`] mode).
    Memlock { locked: u64, rings: u64 },
    /// Anything else.
    Other(UringError),
}

struct State {
    free: Vec<u16>,
    /// `(address, length)` of each slot's buffer; `(0, 0)` when empty.
    slots: Vec<(usize, usize)>,
    subscribers: Vec<(u64, Arc<dyn TableRing>)>,
    next_subscriber: u64,
    locked: u64,
}

/// The table ring and its slots.
pub(crate) struct Registry {
    table: IoUring,
    sharing: Sharing,
    state: Mutex<State>,
    /// Bumped (under the state lock) after every change of the table, for
    /// the rings that fetch it themselves ([`Registry::refresh`]) instead
    /// of subscribing.
    generation: AtomicU64,
}

fn iovec(addr: usize, len: usize) -> libc::iovec {
    libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: len }
}

/// Puts `(addr, len)` (or nothing, for `(0, 0)`) into `slot` of `ring`.
///
/// # Safety
///
/// A non-empty range must stay mapped while the slot holds it.
unsafe fn update(ring: &dyn TableRing, slot: u16, (addr, len): (usize, usize)) -> io::Result<()> {
    // SAFETY: forwarded from the caller; a null iovec empties the slot.
    unsafe { ring.submitter().register_buffers_update(slot as u32, &[iovec(addr, len)], None) }.map(drop)
}

impl Registry {
    /// Makes the table ring with an empty sparse table, and finds out
    /// whether the kernel can clone it.
    pub(crate) fn new() -> Result<Registry, UringError> {
        let table =
            IoUring::builder().dontfork().build(1).map_err(|source| UringError::Setup { entries: 1, source })?;
        table.submitter().register_buffers_sparse(SLOTS).map_err(|source| UringError::RegisterBuffer {
            addr: 0,
            len: 0,
            source,
        })?;
        let forced = std::env::var_os("PINIO_URING_NO_CLONE").is_some_and(|v| v == "1");
        let sharing = if forced || !can_clone(&table) { Sharing::PerRing } else { Sharing::Clone };
        let state = State {
            free: (0..SLOTS as u16).rev().collect(),
            slots: vec![(0, 0); SLOTS as usize],
            subscribers: Vec::new(),
            next_subscriber: 1,
            locked: 0,
        };
        Ok(Registry { table, sharing, state: Mutex::new(state), generation: AtomicU64::new(0) })
    }

    /// How subscribers get the table.
    pub(crate) fn sharing(&self) -> Sharing {
        self.sharing
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
        let buf = (addr as usize, len);
        let failure = |st: &State, source: io::Error| {
            if source.raw_os_error() == Some(libc::ENOMEM) {
                let rings = match self.sharing {
                    Sharing::Clone => 1,
                    Sharing::PerRing => 1 + st.subscribers.len() as u64,
                };
                RegisterFailure::Memlock { locked: st.locked, rings }
            } else {
                RegisterFailure::Other(UringError::RegisterBuffer { addr: addr as u64, len: len as u64, source })
            }
        };
        // SAFETY: the caller keeps the memory mapped while the slot holds
        // it; the slot is free, so nothing else refers to it (the DMA
        // ownership rule, pinio_core::domain).
        if let Err(e) = unsafe { update(&self.table, slot, buf) } {
            st.free.push(slot);
            return Err(failure(&st, e));
        }
        st.slots[slot as usize] = buf;
        if let Err(e) = self.publish(&st, slot) {
            // Empty the slot again everywhere, so that no ring is left
            // half-updated.
            st.slots[slot as usize] = (0, 0);
            // SAFETY: emptying a slot hands no memory to the kernel.
            let _ = unsafe { update(&self.table, slot, (0, 0)) };
            let _ = self.publish(&st, slot);
            st.free.push(slot);
            return Err(match e {
                PublishError::Clone(e) => RegisterFailure::Other(e),
                PublishError::Update(source) => failure(&st, source),
            });
        }
        st.locked += len as u64;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(slot)
    }

    /// Empties `slot` in the table and in every subscriber, which unpins its
    /// memory. No operation may be in flight on it.
    pub(crate) fn unregister(&self, slot: u16, len: usize) -> Result<(), UringError> {
        let mut st = self.state();
        // SAFETY: emptying a slot hands no memory to the kernel.
        unsafe { update(&self.table, slot, (0, 0)) }.map_err(|source| UringError::UnregisterBuffer { slot, source })?;
        st.slots[slot as usize] = (0, 0);
        self.generation.fetch_add(1, Ordering::Release);
        let published = self.publish(&st, slot);
        st.locked = st.locked.saturating_sub(len as u64);
        st.free.push(slot);
        published.map_err(|e| match e {
            PublishError::Clone(e) => e,
            PublishError::Update(source) => UringError::UnregisterBuffer { slot, source },
        })
    }

    /// Brings `slot` of every subscriber in line with the table.
    fn publish(&self, st: &State, slot: u16) -> Result<(), PublishError> {
        for (_, ring) in &st.subscribers {
            match self.sharing {
                Sharing::Clone => self.copy_into(&**ring).map_err(PublishError::Clone)?,
                Sharing::PerRing => {
                    // SAFETY: the slot's buffer (if any) is the table's, which
                    // the caller of `register` keeps mapped while it is held
                    // (the DMA ownership rule, pinio_core::domain).
                    unsafe { update(&**ring, slot, st.slots[slot as usize]) }.map_err(PublishError::Update)?
                }
            }
        }
        Ok(())
    }

    fn copy_into(&self, ring: &dyn TableRing) -> Result<(), UringError> {
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
    pub(crate) fn subscribe<R: TableRing + 'static>(&self, ring: Arc<R>) -> Result<u64, UringError> {
        let ring: Arc<dyn TableRing> = ring;
        let mut st = self.state();
        match self.sharing {
            Sharing::Clone => self.copy_into(&*ring)?,
            Sharing::PerRing => {
                let err = |source| UringError::RegisterBuffer { addr: 0, len: 0, source };
                ring.submitter().register_buffers_sparse(SLOTS).map_err(err)?;
                for (slot, &(addr, len)) in st.slots.iter().enumerate().filter(|(_, s)| s.1 > 0) {
                    // the buffer is the table's: its owner keeps it
                    // mapped until `unregister`, which empties the slot in
                    // every subscriber before returning (the DMA ownership
                    // rule, pinio_core::domain).
                    // SAFETY: the slot's buffer stays mapped while any subscriber holds it (argued above).
                    unsafe { update(&*ring, slot as u16, (addr, len)) }
                        .map_err(|source| UringError::RegisterBuffer { addr: addr as u64, len: len as u64, source })?;
                }
            }
        }
        let id = st.next_subscriber;
        st.next_subscriber += 1;
        st.subscribers.push((id, ring));
        Ok(id)
    }

    /// How many times the table has changed: a ring that fetched it at
    /// generation `g` ([`Registry::refresh`]) is current while this is `g`.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Copies the whole table into `ring` now, for a ring that is not
    /// subscribed (a single-issuer ring accepts registrations only from its
    /// issuer thread, so it fetches the table itself before it submits);
    /// returns the generation it now holds. Only in [`Sharing::Clone`].
    pub(crate) fn refresh(&self, ring: &IoUring) -> Result<u64, UringError> {
        let _st = self.state();
        let generation = self.generation.load(Ordering::Acquire);
        self.copy_into(ring)?;
        Ok(generation)
    }

    /// Rings subscribed right now.
    pub(crate) fn rings(&self) -> usize {
        self.state().subscribers.len()
    }

    /// Stops updating subscriber `id` and releases the registry's handle on
    /// its ring.
    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut st = self.state();
        st.subscribers.retain(|(i, _)| *i != id);
    }
}

enum PublishError {
    Clone(UringError),
    Update(io::Error),
}

/// Whether this kernel clones a buffer table into a ring that has one
/// (`IORING_REGISTER_CLONE_BUFFERS` with `IORING_REGISTER_DST_REPLACE`, 6.13+).
fn can_clone(table: &IoUring) -> bool {
    let Ok(probe) = IoUring::<io_uring::squeue::Entry>::builder().dontfork().build(1) else { return false };
    if probe.submitter().register_buffers_sparse(1).is_err() {
        return false;
    }
    probe.submitter().register_buffers_clone_offset(table.as_raw_fd(), 0, 0, 0, CloneBuffersFlags::DST_REPLACE).is_ok()
}

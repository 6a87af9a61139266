// SPDX-License-Identifier: GPL-2.0

//! Charging pinned pages against the owner's `RLIMIT_MEMLOCK`.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h) (`account_locked_vm`).
//!
//! Long-term pins keep memory unswappable exactly like `mlock`, so, like RDMA and VFIO, a
//! registration is charged to the pinning process's mm and refused with `ENOMEM` when
//! `RLIMIT_MEMLOCK` would be exceeded (tasks with `CAP_IPC_LOCK` are exempt). RDMA charges
//! `mm->pinned_vm` through inline `atomic64_*` helpers that the Rust bindings do not export;
//! `account_locked_vm` (the VFIO type1 choice) is an exported function with the same limit and
//! the same exemption, and it shows in `VmLck` of `/proc/PID/status`.

use kernel::{bindings, mm::Mm, prelude::*, sync::aref::ARef, task::Task};

/// A charge of `pages` pages to `mm->locked_vm`, returned on drop.
///
/// A charge can be split (one `account_locked_vm` for a vectored REGISTER of many regions, each
/// region then holding its share) and shares of the same mm merged back (one uncharge for a
/// vectored UNREGISTER), so the number of pages charged and uncharged always balances while the
/// `mmap_lock` is taken once per system call rather than once per region.
///
/// # Invariants
///
/// `pages` pages were added to `mm->locked_vm` (by `account_locked_vm(mm, n, true)` for this
/// charge, or for a charge it was split from or merged with) and are subtracted exactly once,
/// in [`Drop`] (nothing when `pages` is 0). `mm` holds an `mmgrab` reference, so the
/// `mm_struct` stays valid even after the process exits.
pub(crate) struct LockedVmCharge {
    mm: ARef<Mm>,
    pages: usize,
}

impl LockedVmCharge {
    /// Charges `pages` pages to the current process. `ENOMEM` over `RLIMIT_MEMLOCK`; `ESRCH` for
    /// a task without an address space (a kernel thread).
    pub(crate) fn charge_current(pages: usize) -> Result<Self> {
        // `current->mm` is read by C (`get_task_mm`), not through `Task::mm()`: with
        // CONFIG_SCHEDSTATS off, bindgen drops the 64-byte alignment of the then-empty
        // `struct sched_statistics` and the Rust view of `task_struct` reads `mm` 48 bytes too
        // early (docs/reliability.md). pinio's guest kernels turn SCHEDSTATS on, which fixes the
        // layout, but the module must stay correct on kernels built without it.
        // SAFETY: `get_task_mm` takes `task_lock` of the current task and returns its `mm` with
        // an `mmget` reference, or null for a task without one.
        let raw = unsafe { bindings::get_task_mm(Task::current_raw()) };
        if raw.is_null() {
            return Err(ESRCH);
        }
        // SAFETY: `raw` is a live `mm_struct` (we hold the `mmget` reference); `ARef::from`
        // takes an `mmgrab` reference of its own.
        let mm: ARef<Mm> = ARef::from(unsafe { Mm::from_raw(raw) });
        // SAFETY: Returns the `mmget` reference of `get_task_mm`; the task still uses its address
        // space, so this is never the last user.
        unsafe { bindings::mmput(raw) };
        // SAFETY: `mm` is a valid `mm_struct` (we hold an `mmgrab` reference); `account_locked_vm`
        // takes its `mmap_lock` for writing and may sleep, which is allowed in this process
        // context; no lock of ours is held by the callers.
        let ret = unsafe { bindings::account_locked_vm(mm.as_raw(), pages as c_ulong, true) };
        kernel::error::to_result(ret)?;
        // INVARIANT: the charge was just taken.
        Ok(Self { mm, pages })
    }
}

impl LockedVmCharge {
    /// Moves `pages` pages of this charge into a new charge of the same mm (an `mmgrab`, no
    /// accounting call). `EINVAL` if this charge holds fewer pages.
    pub(crate) fn split(&mut self, pages: usize) -> Result<Self> {
        let rest = self.pages.checked_sub(pages).ok_or(EINVAL)?;
        // INVARIANT: the `pages` pages move from `self` to the new charge; the total is unchanged.
        self.pages = rest;
        Ok(Self {
            mm: self.mm.clone(),
            pages,
        })
    }

    /// Gives up this charge as its parts: the mm and the number of pages charged to it, which the
    /// caller now owns and must return with [`LockedVmCharge::from_parts`] (in one piece or
    /// several).
    pub(crate) fn into_parts(self) -> (ARef<Mm>, usize) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so `mm` is moved out exactly once (its
        // reference goes to the caller).
        let mm = unsafe { core::ptr::read(&this.mm) };
        (mm, this.pages)
    }

    /// A charge of `pages` pages of `mm` given up by [`LockedVmCharge::into_parts`].
    ///
    /// # Safety
    ///
    /// `pages` pages of a charge to `mm` given up with [`LockedVmCharge::into_parts`] must be
    /// owned by the caller: not yet returned by another charge made this way.
    pub(crate) unsafe fn from_parts(mm: ARef<Mm>, pages: usize) -> Self {
        // INVARIANT: per the contract the pages are charged to `mm` and owned by nobody else.
        Self { mm, pages }
    }

    /// Adds `other` to this charge if both are charged to the same mm; hands it back otherwise.
    pub(crate) fn merge(&mut self, mut other: Self) -> core::result::Result<(), Self> {
        if self.mm.as_raw() != other.mm.as_raw() {
            return Err(other);
        }
        // INVARIANT: the pages move from `other` (left empty, its drop uncharges nothing) to
        // `self`, both of the same mm; the total is unchanged.
        self.pages += other.pages;
        other.pages = 0;
        Ok(())
    }
}

impl Drop for LockedVmCharge {
    fn drop(&mut self) {
        if self.pages == 0 {
            return;
        }
        // Like VFIO: once the address space is torn down (the file is closed by an exiting
        // process after `exit_mm`), its counters are dead and are left alone.
        let Some(live) = self.mm.mmget_not_zero() else {
            return;
        };
        // SAFETY: By the type invariants `pages` were charged to this mm, which is valid and has
        // users (`live` holds an `mmget` reference); an uncharge never fails and ignores the
        // limit; we are in process context (release, ioctl or workqueue) and may sleep.
        unsafe { bindings::account_locked_vm(live.as_raw(), self.pages as c_ulong, false) };
    }
}

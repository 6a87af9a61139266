// SPDX-License-Identifier: GPL-2.0

//! Guest smoke module for pinio's test platform.
//!
//! Loading and unloading it proves that the guest kernel accepts out-of-tree
//! Rust modules built by `cargo xtask kmod`. With `warn=1` its init triggers a
//! kernel `WARN`, which `cargo xtask vm run` must detect and report: this is
//! how the platform's report scanning is tested.
//!
//! Its init also checks that the Rust bindings lay out `struct task_struct`
//! as C does, by reading `current->mm` both ways: bindgen gets the layout
//! wrong when `CONFIG_SCHEDSTATS` is off (docs/reliability.md), and the guest
//! kernels turn it on for that reason.

use kernel::{bindings, prelude::*, task::Task};

module! {
    type: PinioSmoke,
    name: "pinio_smoke",
    authors: ["pinio developers"],
    description: "pinio guest platform smoke test module",
    license: "GPL",
    params: {
        warn: bool {
            default: false,
            description: "Trigger a kernel WARN during init (tests report scanning)",
        },
    },
}

struct PinioSmoke;

impl kernel::Module for PinioSmoke {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded\n");
        check_task_struct_layout()?;
        if module_parameters::warn.value() {
            pr_info!("triggering a WARN on request (warn=1)\n");
            kernel::warn_on!(true);
        }
        Ok(PinioSmoke)
    }
}

/// Fails with `EINVAL` unless the Rust view of `current->mm` is the pointer C
/// returns for it.
fn check_task_struct_layout() -> Result {
    let task = Task::current_raw();
    // SAFETY: `task` is the current task, alive while we run in its context
    // (module init runs in the `insmod` process); the read is a plain pointer
    // load at the offset the bindings give for `mm`.
    let rust_view = unsafe { core::ptr::addr_of!((*task).mm).read() };
    // SAFETY: `get_task_mm` takes `task_lock` of a live task and returns its
    // `mm` with an `mmget` reference, or null for a task without one.
    let c_view = unsafe { bindings::get_task_mm(task) };
    if !c_view.is_null() {
        // SAFETY: returns the `mmget` reference taken just above; the task
        // still uses this address space, so it is not the last user.
        unsafe { bindings::mmput(c_view) };
    }
    if rust_view != c_view {
        pr_err!(
            "task_struct layout mismatch: Rust reads current->mm as {:p}, C as {:p} \
             (is CONFIG_SCHEDSTATS on?)\n",
            rust_view,
            c_view
        );
        return Err(EINVAL);
    }
    pr_info!("task_struct layout agrees with C (current->mm)\n");
    Ok(())
}

impl Drop for PinioSmoke {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Guest smoke module for pinio's test platform.
//!
//! Loading and unloading it proves that the guest kernel accepts out-of-tree
//! Rust modules built by `cargo xtask kmod`. With `warn=1` its init triggers a
//! kernel `WARN`, which `cargo xtask vm run` must detect and report: this is
//! how the platform's report scanning is tested.

use kernel::prelude::*;

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
        pr_info!("pinio_smoke: loaded\n");
        if module_parameters::warn.value() {
            pr_info!("pinio_smoke: triggering a WARN on request (warn=1)\n");
            kernel::warn_on!(true);
        }
        Ok(PinioSmoke)
    }
}

impl Drop for PinioSmoke {
    fn drop(&mut self) {
        pr_info!("pinio_smoke: unloaded\n");
    }
}

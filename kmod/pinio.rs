// SPDX-License-Identifier: GPL-2.0

//! pinio: an echo device with a DMA engine over user pages pinned with `pin_user_pages`.
//!
//! - `/dev/pinio` (mode 0600): REGISTER pins a user buffer long-term (`FOLL_PIN |
//!   FOLL_LONGTERM`, plus `FOLL_WRITE` when the device may write it) and charges it to
//!   `RLIMIT_MEMLOCK`; SUBMIT queues batches of descriptors that a kernel worker (the "DMA
//!   engine") runs by copying between the pinned pages (`kmap_local_page`) and the on-board
//!   device memory; completion records are reaped with REAP and signalled through `poll`;
//!   `pread`/`pwrite` are the copy path (`copy_{to,from}_user`) into the same device memory.
//! - `/dev/Sample` (mode 0600): the get_user_pages demonstration, see `sample.rs`.
//!
//! The ABI is `crates/pinio-kmod/src/abi.rs`, shared verbatim with userspace; docs/kmod.md
//! describes the protocol and the design.

#[allow(dead_code, unreachable_pub)]
#[path = "../crates/pinio-kmod/src/abi.rs"]
mod abi;
mod abi_bytes;
mod accounting;
mod completion_ring;
mod devmem;
mod limits;
mod misc;
mod one_or_many;
mod pinio_fops;
mod pinned;
mod region;
mod region_table;
mod sample;
mod session;

use kernel::prelude::*;

module! {
    type: PinioModule,
    name: "pinio",
    authors: ["pinio developers"],
    description: "Echo DMA device over pinned user pages, and /dev/Sample",
    license: "GPL",
    params: {
        mem_size: usize {
            default: 16777216,
            description: "Bytes of device memory (1..=1 GiB, default 16 MiB)",
        },
        max_pinned_pages: usize {
            default: 65536,
            description: "Most pages one open file of /dev/pinio may keep pinned (default 65536)",
        },
        queue_depth: u32 {
            default: 256,
            description: "Descriptors per open file submitted and not yet reaped (1..=4096)",
        },
    },
}

/// The module: `/dev/pinio` and `/dev/Sample`.
#[pin_data]
struct PinioModule {
    #[pin]
    pinio: pinio_fops::PinioDevice,
    #[pin]
    sample: misc::MiscRegistration,
}

impl kernel::InPlaceModule for PinioModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let dev = limits::Limits::from_params().and_then(devmem::DeviceMemory::new);
        try_pin_init!(Self {
            pinio <- try_pin_init!(pinio_fops::PinioDevice {
                // Initialised before `misc` is registered (see `PinioDevice` invariants).
                dev: dev?,
                misc <- misc::MiscRegistration::register(c"pinio", 0o600, &pinio_fops::PINIO_FOPS),
            }),
            sample <- misc::MiscRegistration::register(c"Sample", 0o600, &sample::SAMPLE_FOPS),
        })
    }
}

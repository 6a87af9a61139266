//! Kill and drop scenarios for the VFIO backend's mappings (a VFIO domain of pinio-vfio with
//! QEMU's edu device, pinio-edu): the pages VFIO pins for IOMMU mappings (`VFIO_IOMMU_MAP_DMA`,
//! counted in the same vmstat counters) must all be released when the process is killed with DMA
//! in flight, and when the device, queues, regions and the domain are dropped in any order. Uses
//! the public APIs of pinio-vfio and pinio-edu only.

use pinio_core::{Device, Op};
use pinio_edu::{EduDevice, EduOptions};
use pinio_fuzz::harness::{Scenario, run};
use pinio_fuzz::proc::{Exit, Pipe, fork};
use pinio_fuzz::vmstat::PinGuard;
use pinio_fuzz::{FuzzError, ensure};
use pinio_vfio::{PciAddress, VfioDomainOptions, VfioRegistrar};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    if std::env::var_os("PINIO_GUEST").is_none() {
        println!("guest_vfio_scenarios: PINIO_GUEST is unset: run with `cargo xtask test`");
        return ExitCode::FAILURE;
    }
    run(
        "guest_vfio_scenarios",
        &[
            Scenario {
                name: "vfio_sigkill_with_mappings_and_dma_in_flight_releases_every_pin",
                run: sigkill_with_mappings,
            },
            Scenario { name: "vfio_drop_in_any_order_releases_every_pin", run: drop_in_any_order },
            Scenario {
                name: "vfio_domain_outliving_its_device_keeps_its_mappings_then_releases_every_pin",
                run: domain_outlives_device,
            },
        ],
    )
}

/// The address of QEMU's edu (1234:11e8) on the guest's PCI bus.
fn edu_addr() -> Result<PciAddress, FuzzError> {
    // Listed without a fault in the kernel's readdir: this process uses VFIO.
    pinio_vfio::Sysfs::system()
        .first_with_ids(0x1234, 0x11e8)
        .ok_or_else(|| FuzzError::Check("no edu (1234:11e8) on the PCI bus; QEMU needs -device edu".into()))
}

fn c<T>(what: &str, r: Result<T, impl std::fmt::Display>) -> Result<T, FuzzError> {
    r.map_err(|e| FuzzError::Check(format!("{what}: {e}")))
}

fn open_edu() -> Result<EduDevice, FuzzError> {
    c("opening edu through VFIO", EduDevice::open(&edu_addr()?, EduOptions::default()))
}

/// Region sizes (bytes) registered by both scenarios: 1 + 16 + 256 pages.
const SIZES: [usize; 3] = [4096, 64 << 10, 1 << 20];

/// A child maps three regions into the IOMMU, queues edu DMA on them and is killed while the
/// engine runs: every page VFIO pinned for it is released, and edu works again for the next user.
fn sigkill_with_mappings() -> Result<(), FuzzError> {
    let page = pinio_fuzz::mapping::page_size() as i64;
    let pages: i64 = SIZES.iter().map(|&s| s as i64 / page).sum();
    for round in 0..3u64 {
        let guard = PinGuard::start()?;
        let ready = Pipe::new()?;
        let child = fork(|| {
            let edu = open_edu()?;
            let regions: Vec<_> = SIZES.iter().map(|&s| c("alloc", edu.alloc(s))).collect::<Result<_, _>>()?;
            let mut q = c("queue", edu.queue(4))?;
            for (i, r) in regions.iter().enumerate() {
                let s = c("slice", r.slice(0, 4096))?;
                c("push", q.push(Op::write(s, 0, i as u64)).map_err(|r| r.error))?;
            }
            c("submit", q.submit())?;
            ready.send(1)?;
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })?;
        ensure!(ready.recv()? == Some(1), "round {round}: child did not get its mappings and DMA going");
        let alive = guard.delta()?;
        ensure!(alive >= pages, "round {round}: {alive} pages pinned while the child holds {pages} pages of mappings");
        std::thread::sleep(Duration::from_millis(round * 40));
        child.kill();
        let exit = child.wait()?;
        ensure!(exit == Exit::Signal(libc::SIGKILL), "round {round}: child ended with {exit:?}");
        guard.finish()?;
    }
    // The device is usable again: one round trip in this process.
    let edu = open_edu()?;
    let r = c("alloc", edu.alloc(4096))?;
    let mut q = c("queue", edu.queue(1))?;
    let mut s = c("slice", r.slice(0, 64))?;
    s.fill(0x5a);
    let (_, s) = c("write", q.write_at(s, 0))?;
    let (_, s) = c("read", q.read_at(s, 0))?;
    ensure!(s.iter().all(|&b| b == 0x5a), "edu round trip after the kills returned other bytes");
    Ok(())
}

/// Mappings stay pinned exactly while a handle (device, region or slice) or an operation in
/// flight keeps them, whatever order things are dropped in; then every page is released.
fn drop_in_any_order() -> Result<(), FuzzError> {
    let page = pinio_fuzz::mapping::page_size() as i64;
    for order in 0..3 {
        let guard = PinGuard::start()?;
        let edu = open_edu()?;
        let base = guard.delta()?; // pages VFIO itself keeps for an open device (if any)
        let regions: Vec<_> = SIZES.iter().map(|&s| c("alloc", edu.alloc(s))).collect::<Result<_, _>>()?;
        let pages: i64 = SIZES.iter().map(|&s| s as i64 / page).sum();
        guard.expect_alive(base + pages)?;
        let mut q = c("queue", edu.queue(4))?;
        for (i, r) in regions.iter().enumerate() {
            let s = c("slice", r.slice(4096 * (i % 2), 4096))?;
            c("push", q.push(Op::read(s, 0, i as u64)).map_err(|r| r.error))?;
        }
        c("submit", q.submit())?;
        match order {
            0 => {
                // Queue first (waits for its DMA), then regions, then the device.
                drop(q);
                drop(regions);
                guard.expect_alive(base)?;
                drop(edu);
            }
            1 => {
                // Device and regions first: the queue's operations keep their slices' mappings.
                drop(edu);
                drop(regions);
                drop(q);
            }
            _ => {
                // Regions one by one, checking the count after each.
                let mut left = pages;
                let mut regions = regions;
                drop(q);
                while let Some(r) = regions.pop() {
                    left -= r.len() as i64 / page;
                    drop(r);
                    guard.expect_alive(base + left)?;
                }
                drop(edu);
            }
        }
        guard.finish()?;
    }
    Ok(())
}

/// A domain handle and its regions outlive the device: the mappings stay (the container keeps the
/// device's group), the device can be opened in the domain again and DMA into the old regions, and
/// when the regions and the handle go every page is released and the group is free again.
fn domain_outlives_device() -> Result<(), FuzzError> {
    let page = pinio_fuzz::mapping::page_size() as i64;
    let guard = PinGuard::start()?;
    let domain = c("a VFIO domain", VfioRegistrar::domain(VfioDomainOptions::default()))?;
    let edu = c("opening edu in the domain", EduDevice::open_in(&domain, &edu_addr()?, EduOptions::default()))?;
    let base = guard.delta()?;
    let regions: Vec<_> = SIZES.iter().map(|&s| c("alloc", domain.alloc(s))).collect::<Result<_, _>>()?;
    let pages: i64 = SIZES.iter().map(|&s| s as i64 / page).sum();
    guard.expect_alive(base + pages)?;
    {
        let mut q = c("queue", edu.queue(2))?;
        let mut s = c("slice", regions[0].slice(0, 64))?;
        s.fill(0xa5);
        c("write", q.write_at(s, 0))?;
    }
    drop(edu);
    guard.expect_alive(base + pages)?;
    ensure!(
        matches!(EduDevice::open(&edu_addr()?, EduOptions::default()), Err(ref e) if e.to_string().contains("already in use")),
        "another domain opened the edu that this domain still holds"
    );
    let edu = c("reopening edu in the domain", EduDevice::open_in(&domain, &edu_addr()?, EduOptions::default()))?;
    let mut q = c("queue", edu.queue(2))?;
    let (_, back) = c("read into a region made before", q.read_at(c("slice", regions[2].slice(4096, 64))?, 0))?;
    ensure!(back.iter().all(|&b| b == 0xa5), "edu's buffer did not reach a region registered before it was reopened");
    drop((back, q, edu));
    drop(regions);
    guard.expect_alive(base)?;
    drop(domain);
    guard.finish()?;
    // The group is free: a new domain gets the device.
    drop(open_edu()?);
    Ok(())
}

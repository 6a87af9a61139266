//! The controller: registers, reset, enable, shutdown, and the admin queue
//! pair (NVMe Base Specification 1.4, section 7.6.1, "Initialization").

use crate::cmd::{CQE_BYTES, Cqe, SQE_BYTES, Sqe};
use crate::dma::DmaMem;
use crate::error::NvmeError;
use crate::regs::{self, Cap};
use crate::ring::{CqRing, SqRing};
use pinio_core::Domain;
use pinio_vfio::VfioPci;
use std::sync::atomic::{Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Entries of the admin submission and completion queues.
pub(crate) const ADMIN_ENTRIES: u16 = 32;

/// The admin queue pair and a 4 KiB buffer for Identify data.
struct Admin {
    sq: DmaMem,
    cq: DmaMem,
    buf: DmaMem,
    sq_ring: SqRing,
    cq_ring: CqRing,
    next_cid: u16,
}

/// One NVMe controller behind VFIO.
///
/// Field order is drop order: the controller is shut down (in `Drop`)
/// while the admin queue memory is still mapped; the memory goes next.
pub(crate) struct Controller {
    pci: Arc<VfioPci>,
    cap: Cap,
    page: u64,
    admin: Mutex<Admin>,
    admin_timeout: Duration,
    bdf: String,
}

impl Controller {
    /// Resets the controller, sets up the admin queue pair in memory mapped
    /// into `domain`'s container, and enables it with memory pages of
    /// `page` bytes.
    pub(crate) fn bring_up(
        pci: Arc<VfioPci>,
        domain: &Domain,
        page: u64,
        admin_timeout: Duration,
    ) -> Result<Controller, NvmeError> {
        let bdf = pci.bdf().to_string();
        let bar = pci.bar0();
        if bar.size() < regs::DOORBELL_BASE + 8 {
            return Err(NvmeError::Unsupported {
                bdf,
                what: format!("BAR0 is only {:#x} bytes, too small for the admin doorbells", bar.size()),
            });
        }
        let cap = Cap::decode(bar.read64(regs::CAP));
        if !cap.nvm_command_set {
            return Err(NvmeError::Unsupported { bdf, what: "CAP.CSS does not list the NVM command set".into() });
        }
        if page < cap.min_page || page > cap.max_page {
            let what = format!(
                "the host page size {page} is outside the controller's memory page sizes {}..={}",
                cap.min_page, cap.max_page
            );
            return Err(NvmeError::Unsupported { bdf, what });
        }
        let entries = ADMIN_ENTRIES.min(cap.max_queue_entries.min(4096) as u16);
        let admin = Admin {
            sq: DmaMem::new(domain, entries as usize * SQE_BYTES).map_err(core_to_nvme)?,
            cq: DmaMem::new(domain, entries as usize * CQE_BYTES).map_err(core_to_nvme)?,
            buf: DmaMem::new(domain, 4096).map_err(core_to_nvme)?,
            sq_ring: SqRing::new(entries),
            cq_ring: CqRing::new(entries),
            next_cid: 0,
        };
        let ctrl = Controller { pci, cap, page, admin: Mutex::new(admin), admin_timeout, bdf };
        ctrl.enable()?;
        Ok(ctrl)
    }

    fn admin(&self) -> MutexGuard<'_, Admin> {
        self.admin.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The decoded CAP register.
    pub(crate) fn cap(&self) -> Cap {
        self.cap
    }

    /// The memory page size in use.
    pub(crate) fn page(&self) -> u64 {
        self.page
    }

    /// The controller's version as `(major, minor, tertiary)`.
    pub(crate) fn version(&self) -> (u16, u8, u8) {
        regs::version(self.pci.bar0().read32(regs::VS))
    }

    /// The PCI address.
    pub(crate) fn bdf(&self) -> &str {
        &self.bdf
    }

    /// Reads the 32-bit register at `off`.
    pub(crate) fn read32(&self, off: usize) -> u32 {
        self.pci.bar0().read32(off)
    }

    /// Rings a doorbell.
    pub(crate) fn doorbell(&self, off: usize, value: u16) {
        // Entries written to memory must be visible before the controller
        // sees the doorbell.
        fence(Ordering::SeqCst);
        self.pci.bar0().write32(off, value as u32);
    }

    /// Whether the doorbell of queue pair `qid` lies inside BAR0.
    pub(crate) fn has_doorbells(&self, qid: u16) -> bool {
        regs::cq_head_doorbell(qid, self.cap.dstrd) + 4 <= self.pci.bar0().size()
    }

    fn wait_csts(&self, what: &'static str, done: impl Fn(u32) -> bool) -> Result<(), NvmeError> {
        // CAP.TO is the worst case; emulated controllers on a loaded host
        // get at least 2 s.
        let ms = self.cap.timeout_ms.max(2000);
        let deadline = Instant::now() + Duration::from_millis(ms);
        loop {
            let csts = self.read32(regs::CSTS);
            if done(csts) {
                return Ok(());
            }
            // All ones: the device fell off the bus.
            if csts & regs::CSTS_CFS != 0 && csts != u32::MAX && what == "become ready" {
                return Err(NvmeError::Fatal { bdf: self.bdf.clone(), csts });
            }
            if Instant::now() > deadline {
                return Err(NvmeError::Timeout { bdf: self.bdf.clone(), what, ms, csts });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// CC.EN = 0 and wait for CSTS.RDY = 0: every queue is gone afterwards.
    pub(crate) fn disable(&self) -> Result<(), NvmeError> {
        let bar = self.pci.bar0();
        let cc = bar.read32(regs::CC);
        if cc & regs::CC_EN != 0 {
            bar.write32(regs::CC, cc & !regs::CC_EN);
        }
        self.wait_csts("become not ready after CC.EN was cleared", |c| c & regs::CSTS_RDY == 0)
    }

    /// Resets the controller and enables it with fresh admin queues.
    fn enable(&self) -> Result<(), NvmeError> {
        self.disable()?;
        let bar = self.pci.bar0();
        let mut a = self.admin();
        a.sq.zero();
        a.cq.zero();
        let entries = (a.sq.len() / SQE_BYTES).min(a.cq.len() / CQE_BYTES).min(ADMIN_ENTRIES as usize) as u16;
        a.sq_ring = SqRing::new(entries);
        a.cq_ring = CqRing::new(entries);
        // No INTMS write: MSI-X is enabled before the controller (the
        // device then raises nothing on INTx), and the specification
        // leaves INTMS undefined under MSI-X.
        bar.write32(regs::AQA, regs::aqa(entries as u32, entries as u32));
        // Two dword writes: some controllers reject 8-byte MMIO.
        for (reg, iova) in [(regs::ASQ, a.sq.iova()), (regs::ACQ, a.cq.iova())] {
            bar.write32(reg, iova as u32);
            bar.write32(reg + 4, (iova >> 32) as u32);
        }
        drop(a);
        bar.write32(regs::CC, regs::cc_enable(self.page));
        self.wait_csts("become ready", |c| c & regs::CSTS_RDY != 0)
    }

    /// Resets the controller (CC.EN 1 -> 0 -> 1) and sets the admin queues
    /// up again. Every I/O queue is destroyed by the reset.
    pub(crate) fn reset(&self) -> Result<(), NvmeError> {
        self.enable()
    }

    /// Runs one admin command and waits for its completion. `describe`
    /// names it in errors.
    pub(crate) fn admin_cmd(&self, mut sqe: Sqe, describe: impl FnOnce() -> String) -> Result<Cqe, NvmeError> {
        let mut a = self.admin();
        let cid = a.next_cid;
        a.next_cid = a.next_cid.wrapping_add(1);
        sqe.set_cid(cid);
        let Some(slot) = a.sq_ring.push() else {
            // Only one command is ever outstanding under the lock, so the
            // ring cannot fill; a misbehaving controller could make it.
            return Err(NvmeError::AdminTimeout {
                bdf: self.bdf.clone(),
                command: "submission (admin queue full)",
                ms: 0,
            });
        };
        a.sq.write_sqe(slot, &sqe);
        self.doorbell(regs::sq_tail_doorbell(0, self.cap.dstrd), a.sq_ring.tail());
        let deadline = Instant::now() + self.admin_timeout;
        let mut spins = 0u32;
        loop {
            let head = a.cq_ring.head();
            if a.cq_ring.is_new(a.cq.cqe_phase(head)) {
                let cqe = a.cq.read_cqe(head);
                a.cq_ring.advance();
                a.sq_ring.set_head(cqe.sq_head);
                self.doorbell(regs::cq_head_doorbell(0, self.cap.dstrd), a.cq_ring.head());
                if cqe.cid != cid {
                    // A completion of an earlier command that timed out.
                    continue;
                }
                return match cqe.status {
                    None => Ok(cqe),
                    Some(status) => Err(NvmeError::Command { command: describe(), status }),
                };
            }
            if Instant::now() > deadline {
                let command = admin_name(sqe.opcode());
                return Err(NvmeError::AdminTimeout {
                    bdf: self.bdf.clone(),
                    command,
                    ms: self.admin_timeout.as_millis() as u64,
                });
            }
            spins += 1;
            if spins < 200 {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// Runs Identify with `cns` for `nsid` and returns the 4096 bytes.
    pub(crate) fn identify(&self, cns: u32, nsid: u32) -> Result<Vec<u8>, NvmeError> {
        let buf_iova = self.admin().buf.iova();
        let what = if cns == crate::cmd::cns::CONTROLLER {
            "Identify Controller".to_string()
        } else {
            format!("Identify Namespace {nsid}")
        };
        self.admin_cmd(Sqe::identify(0, cns, nsid, buf_iova), || what)?;
        Ok(self.admin().buf.copy_out(0, 4096))
    }

    /// Shutdown notification (CC.SHN = normal), then wait for CSTS.SHST to
    /// say complete, then disable.
    pub(crate) fn shutdown(&self) -> Result<(), NvmeError> {
        let bar = self.pci.bar0();
        let cc = bar.read32(regs::CC);
        if cc & regs::CC_EN == 0 {
            return Ok(());
        }
        bar.write32(regs::CC, (cc & !regs::CC_SHN_MASK) | regs::CC_SHN_NORMAL);
        let r = self.wait_csts("complete its shutdown", |c| c & regs::CSTS_SHST_MASK == regs::CSTS_SHST_COMPLETE);
        let cc = bar.read32(regs::CC);
        bar.write32(regs::CC, cc & !(regs::CC_EN | regs::CC_SHN_MASK));
        r.and_then(|_| self.wait_csts("become not ready after shutdown", |c| c & regs::CSTS_RDY == 0))
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        // Errors cannot be returned from Drop. If the shutdown times out the
        // controller is still disabled (CC.EN = 0), which stops its DMA.
        let _ = self.shutdown();
    }
}

fn admin_name(opcode: u8) -> &'static str {
    use crate::cmd::admin_op::*;
    match opcode {
        DELETE_SQ => "Delete I/O Submission Queue",
        CREATE_SQ => "Create I/O Submission Queue",
        DELETE_CQ => "Delete I/O Completion Queue",
        CREATE_CQ => "Create I/O Completion Queue",
        IDENTIFY => "Identify",
        SET_FEATURES => "Set Features",
        _ => "admin command",
    }
}

/// An error from allocating the driver's own DMA memory.
pub(crate) fn core_to_nvme(source: pinio_core::Error) -> NvmeError {
    NvmeError::DriverMemory { source }
}

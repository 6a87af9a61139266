//! SUBMIT, REAP and the echo check of the bytes the DMA engine moves.

use super::Fuzzer;
use super::arena::{as_bytes, slice_bytes};
use super::expect::Expect;
use super::model::{ECHO_WINDOW, Pending, RegionM};
use super::wild::wild_addr;
use crate::FuzzError;
use crate::mapping::Mapping;
use crate::raw;
use crate::rng::Rng;
use pinio_kmod::abi;

/// Size of the echo session's buffer.
const ECHO_BUF: usize = 64 << 10;

/// The echo session: its own open file, buffer and device-memory window, used synchronously.
pub(crate) struct Echo {
    pub(crate) fd: i32,
    buf: Mapping,
    region: u32,
}

impl Echo {
    pub(crate) fn new(fd: i32) -> Result<Echo, FuzzError> {
        let buf = Mapping::rw(ECHO_BUF)?;
        let mut args =
            abi::RegisterArgs { addr: buf.addr(), len: ECHO_BUF as u64, access: abi::ACCESS_ALL, region_id: 0 };
        raw::ioctl_on(fd, abi::PINIO_IOC_REGISTER, &mut args).map_err(|e| FuzzError::Setup {
            what: "REGISTER of the echo buffer".into(),
            errno: e,
            hint: "memory limits?",
        })?;
        Ok(Echo { fd, buf, region: args.region_id })
    }
}

/// A descriptor the module must accept on `r`.
fn valid_desc(rng: &mut Rng, tag: u64, r: &RegionM, dev_mem: u64, max_len: u64) -> abi::Desc {
    let dir = match r.access {
        abi::ACCESS_DEVICE_READ => abi::DIR_TO_DEVICE,
        abi::ACCESS_DEVICE_WRITE => abi::DIR_FROM_DEVICE,
        _ => *rng.pick(&[abi::DIR_TO_DEVICE, abi::DIR_FROM_DEVICE]),
    };
    let len = rng.skewed_len(r.len.min(max_len));
    abi::Desc {
        tag,
        region_offset: rng.below(r.len - len + 1),
        dev_offset: rng.range(ECHO_WINDOW, dev_mem - len),
        len,
        region_id: r.id,
        dir,
    }
}

impl Fuzzer {
    fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    pub(crate) fn submit(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (si, fd) = self.pick_fd(rng);
        if self.sessions[si].regions.is_empty() {
            return self.register(rng);
        }
        let depth = self.lim.depth as usize;
        let pending = self.sessions[si].pending.len();
        let roll = rng.below(100);
        let huge = roll < 4;
        let n = if huge { self.lim.max_batch as usize } else { rng.range(1, 8) as usize };
        let max_len = if huge { 512 } else { 16 << 10 };
        let mut descs = Vec::with_capacity(n);
        for _ in 0..n {
            let tag = self.tag();
            let r = rng.pick(&self.sessions[si].regions).clone();
            descs.push(valid_desc(rng, tag, &r, self.lim.dev_mem, max_len));
        }
        let room = pending + n <= depth;
        let (expect, kind) = match roll {
            0..=59 => (if room { Expect::value(n as i64) } else { Expect::err(libc::EAGAIN) }, "valid".to_string()),
            60..=79 => {
                let at = rng.index(n);
                let (errno, what) = self.spoil(rng, si, &mut descs[at]);
                (if room { Expect::err(errno) } else { Expect::err(libc::EAGAIN) }, format!("desc {at} {what}"))
            }
            80..=84 => return self.submit_bad_count(rng, fd, &descs),
            85..=89 => {
                // The descriptor array runs into an inaccessible page.
                let bytes = slice_bytes(&descs);
                let cut = rng.below(bytes.len() as u64) as usize;
                let at = self.scratch.place_before_guard(&bytes[..cut]);
                let mut args = abi::SubmitArgs { descs: at, count: n as u32, flags: 0 };
                let got = raw::ioctl_on(fd, abi::PINIO_IOC_SUBMIT, &mut args);
                let call = format!("SUBMIT({fd}, {n} descs, array cut after {cut} bytes by a guard page)");
                self.verify("SUBMIT", call, &Expect::err(libc::EFAULT), got)?;
                return Ok(());
            }
            90..=94 => {
                let a = wild_addr(rng);
                let (arg, what) = if rng.chance(1, 2) {
                    (a, "arg")
                } else {
                    let mut args = abi::SubmitArgs { descs: a, count: n as u32, flags: 0 };
                    let got = raw::ioctl_on(fd, abi::PINIO_IOC_SUBMIT, &mut args);
                    let call = format!("SUBMIT({fd}, descs {a:#x}, count {n})");
                    self.verify("SUBMIT", call, &Expect::err(libc::EFAULT), got)?;
                    return Ok(());
                };
                // SAFETY: A wild address is never memory of this process.
                let got = unsafe { raw::ioctl(fd, abi::PINIO_IOC_SUBMIT, arg) };
                self.verify("SUBMIT", format!("SUBMIT({fd}, {what} {arg:#x})"), &Expect::err(libc::EFAULT), got)?;
                return Ok(());
            }
            _ => {
                // Exactly one descriptor too many for the queue.
                let over = depth - pending + 1;
                if pending == 0 || over > self.lim.max_batch as usize {
                    return self.reap(rng);
                }
                let r = rng.pick(&self.sessions[si].regions).clone();
                let descs: Vec<abi::Desc> = (0..over).map(|_| valid_desc(rng, 0, &r, self.lim.dev_mem, 64)).collect();
                let mut args = abi::SubmitArgs { descs: descs.as_ptr() as u64, count: over as u32, flags: 0 };
                let got = raw::ioctl_on(fd, abi::PINIO_IOC_SUBMIT, &mut args);
                let call = format!("SUBMIT({fd}, {over} descs with {pending} of {depth} outstanding)");
                self.verify("SUBMIT", call, &Expect::err(libc::EAGAIN), got)?;
                return Ok(());
            }
        };
        let mut args = abi::SubmitArgs { descs: descs.as_ptr() as u64, count: n as u32, flags: 0 };
        let got = raw::ioctl_on(fd, abi::PINIO_IOC_SUBMIT, &mut args);
        let call = format!("SUBMIT({fd}, {n} descs, {pending} outstanding) {kind}");
        let got = self.check("SUBMIT", call, &expect, got)?;
        if got.is_ok() {
            let s = &mut self.sessions[si];
            s.pending.extend(descs.iter().map(|d| Pending { tag: d.tag, len: d.len, region: d.region_id }));
        }
        Ok(())
    }

    /// Makes one field of `d` invalid; returns the errno the module must answer and what was done.
    fn spoil(&self, rng: &mut Rng, si: usize, d: &mut abi::Desc) -> (i32, String) {
        let s = &self.sessions[si];
        let r = s.region(d.region_id).cloned().expect("descriptors name live regions");
        match rng.below(7) {
            0 => {
                d.dir = *rng.pick(&[0, 3, 4, u32::MAX, 0x8000_0001]);
                (libc::EINVAL, format!("dir {}", d.dir))
            }
            1 => {
                d.len = 0;
                (libc::EINVAL, "len 0".into())
            }
            2 => {
                let live: Vec<u32> = s.regions.iter().map(|r| r.id).collect();
                let mut id =
                    if !s.stale.is_empty() && rng.chance(1, 2) { *rng.pick(&s.stale) } else { rng.next_u64() as u32 };
                if live.contains(&id) {
                    id = 0;
                }
                d.region_id = id;
                (libc::ENOENT, format!("unknown region {id}"))
            }
            3 if r.access != abi::ACCESS_ALL => {
                d.dir = if r.access == abi::ACCESS_DEVICE_READ { abi::DIR_FROM_DEVICE } else { abi::DIR_TO_DEVICE };
                (libc::EACCES, format!("dir {} on a region with access {}", d.dir, r.access))
            }
            4 => {
                if rng.chance(1, 2) {
                    d.region_offset = r.len - d.len + rng.range(1, 1 << 20);
                } else {
                    d.region_offset = u64::MAX - rng.below(d.len);
                }
                (libc::ERANGE, format!("region offset {:#x} len {:#x} in {:#x}", d.region_offset, d.len, r.len))
            }
            5 => {
                d.len = *rng.pick(&[u64::MAX, r.len + 1, 1 << 40]);
                d.region_offset = 0;
                (libc::ERANGE, format!("len {:#x} in a region of {:#x}", d.len, r.len))
            }
            _ => {
                if rng.chance(1, 2) {
                    d.dev_offset = self.lim.dev_mem - d.len + rng.range(1, 1 << 20);
                } else {
                    d.dev_offset = u64::MAX - rng.below(d.len);
                }
                (libc::ERANGE, format!("device offset {:#x} len {:#x}", d.dev_offset, d.len))
            }
        }
    }

    fn submit_bad_count(&mut self, rng: &mut Rng, fd: i32, descs: &[abi::Desc]) -> Result<(), FuzzError> {
        let (count, flags) = match rng.below(4) {
            0 => (0, 0),
            1 => (self.lim.max_batch + 1, 0),
            2 => (*rng.pick(&[u32::MAX, 1 << 31, 1 << 20]), 0),
            _ => (descs.len() as u32, rng.range(1, u64::from(u32::MAX)) as u32),
        };
        let mut args = abi::SubmitArgs { descs: descs.as_ptr() as u64, count, flags };
        let got = raw::ioctl_on(fd, abi::PINIO_IOC_SUBMIT, &mut args);
        self.verify(
            "SUBMIT",
            format!("SUBMIT({fd}, count {count}, flags {flags:#x})"),
            &Expect::err(libc::EINVAL),
            got,
        )?;
        Ok(())
    }

    /// Checks records against the session's outstanding descriptors, oldest first, and consumes
    /// them from the model.
    fn consume(&mut self, si: usize, call: &str, records: &[abi::CompletionRecord]) -> Result<(), FuzzError> {
        for (i, rec) in records.iter().enumerate() {
            let Some(p) = self.sessions[si].pending.pop_front() else {
                return Err(self.oracle(
                    call.into(),
                    "no record: nothing outstanding".into(),
                    format!("record {i} {rec:?}"),
                ));
            };
            let want = abi::CompletionRecord { tag: p.tag, bytes: p.len, status: 0, reserved: 0 };
            if *rec != want {
                return Err(self.oracle(
                    call.into(),
                    format!("record {i} {want:?} (submission order)"),
                    format!("{rec:?}"),
                ));
            }
        }
        Ok(())
    }

    /// REAP into a buffer of ours with `max` records, waiting for `min`; checks and consumes.
    fn reap_into(&mut self, si: usize, fd: i32, max: u32, min: u32) -> Result<usize, FuzzError> {
        let pending = self.sessions[si].pending.len();
        let mut out = vec![abi::CompletionRecord::default(); max as usize];
        let mut args = abi::ReapArgs { records: out.as_mut_ptr() as u64, max, min, count: 0, reserved: 0 };
        let got = raw::ioctl_on(fd, abi::PINIO_IOC_REAP, &mut args);
        let call = format!("REAP({fd}, max {max}, min {min}) with {pending} outstanding");
        let got = self.check("REAP", call.clone(), &Expect::ok(), got)?;
        let n = got.unwrap_or(0) as usize;
        let least = (min as usize).min(max as usize).min(pending);
        if n != args.count as usize || n > max as usize || n < least || n > pending {
            return Err(self.oracle(
                call,
                format!("between {least} and {} records, count field equal", (max as usize).min(pending)),
                format!("{n} records, count field {}", args.count),
            ));
        }
        self.consume(si, &call, &out[..n])?;
        Ok(n)
    }

    /// After POLLIN: a REAP that does not wait must return at least one record.
    pub(crate) fn reap_expecting_some(&mut self, si: usize, fd: i32) -> Result<(), FuzzError> {
        let n = self.reap_into(si, fd, 64, 0)?;
        if n == 0 {
            return Err(self.oracle(
                format!("REAP({fd}) after POLLIN"),
                "at least one record".into(),
                "0 records".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn reap(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let (si, fd) = self.pick_fd(rng);
        let pending = self.sessions[si].pending.len() as u64;
        match rng.below(100) {
            0..=59 => {
                let max = if rng.chance(1, 8) { self.lim.depth } else { rng.range(1, 64) as u32 };
                let min = if pending > 0 && rng.chance(1, 2) { rng.range(1, pending) as u32 } else { 0 };
                self.reap_into(si, fd, max, min)?;
            }
            60..=69 => {
                let mut out = [abi::CompletionRecord::default(); 4];
                let (max, reserved) =
                    if rng.chance(1, 2) { (0, 0) } else { (4, rng.range(1, u64::from(u32::MAX)) as u32) };
                let mut args = abi::ReapArgs { records: out.as_mut_ptr() as u64, max, min: 0, count: 0, reserved };
                let got = raw::ioctl_on(fd, abi::PINIO_IOC_REAP, &mut args);
                let call = format!("REAP({fd}, max {max}, reserved {reserved:#x})");
                self.verify("REAP", call, &Expect::err(libc::EINVAL), got)?;
            }
            70..=79 => {
                let a = wild_addr(rng);
                let mut args =
                    abi::ReapArgs { records: a, max: rng.range(1, 64) as u32, min: 0, count: 0, reserved: 0 };
                let got = raw::ioctl_on(fd, abi::PINIO_IOC_REAP, &mut args);
                // EFAULT if a record was ready, else 0 records; either way none is lost.
                let call = format!("REAP({fd}, records {a:#x}) with {pending} outstanding");
                self.verify("REAP", call, &Expect::value(0).or_err(libc::EFAULT), got)?;
            }
            80..=89 => {
                // Room for `k` whole records, then a guard page: the record after them straddles it.
                let k = rng.below(4) as usize;
                let size = std::mem::size_of::<abi::CompletionRecord>();
                let at = self.scratch.ends_at_guard(k * size + 8);
                let max = (k + rng.range(1, 3) as usize) as u32;
                let mut args = abi::ReapArgs { records: at, max, min: 0, count: 0, reserved: 0 };
                let got = raw::ioctl_on(fd, abi::PINIO_IOC_REAP, &mut args);
                let call =
                    format!("REAP({fd}, max {max}, room for {k} before a guard page) with {pending} outstanding");
                let expect = if k == 0 { Expect::value(0).or_err(libc::EFAULT) } else { Expect::ok() };
                let got = self.check("REAP", call.clone(), &expect, got)?;
                let n = got.unwrap_or(0) as usize;
                if n > k {
                    return Err(self.oracle(call, format!("at most {k} records"), format!("{n}")));
                }
                let bytes = self.scratch.read_back(at, n * size);
                let records: Vec<abi::CompletionRecord> = bytes
                    .chunks_exact(size)
                    // SAFETY: `chunk` has exactly `size_of::<CompletionRecord>()` bytes, a plain
                    // `repr(C)` integer struct valid for any bit pattern; read unaligned.
                    .map(|c| unsafe { std::ptr::read_unaligned(c.as_ptr() as *const abi::CompletionRecord) })
                    .collect();
                self.consume(si, &call, &records)?;
            }
            90..=94 => {
                let a = wild_addr(rng);
                // SAFETY: A wild address is never memory of this process.
                let got = unsafe { raw::ioctl(fd, abi::PINIO_IOC_REAP, a) };
                self.verify("REAP", format!("REAP({fd}, arg {a:#x})"), &Expect::err(libc::EFAULT), got)?;
            }
            _ => self.reap_read_only_arg(si, fd)?,
        }
        Ok(())
    }

    /// REAP whose argument is readable but not writable: the module cannot report how many
    /// records it wrote, so it must not consume any (docs/kmod.md: "no record is lost").
    fn reap_read_only_arg(&mut self, si: usize, fd: i32) -> Result<(), FuzzError> {
        let pending = self.sessions[si].pending.len();
        let records = self.scratch.ends_at_guard(2 * self.lim.page as usize);
        let args = abi::ReapArgs { records, max: 8, min: 0, count: 0, reserved: 0 };
        self.scratch.set_read_only(as_bytes(&args))?;
        // SAFETY: The argument is the read-only scratch page; records land in the writable scratch
        // pages, which nothing else references.
        let got = unsafe { raw::ioctl(fd, abi::PINIO_IOC_REAP, self.scratch.read_only()) };
        let call = format!("REAP({fd}, read-only arg) with {pending} outstanding");
        self.verify("REAP", call.clone(), &Expect::err(libc::EFAULT), got)?;
        let mut info = abi::Info::default();
        let got = raw::ioctl_on(fd, abi::PINIO_IOC_INFO, &mut info);
        self.verify("INFO", format!("INFO({fd}) after a REAP that failed"), &Expect::value(0), got)?;
        if info.outstanding as usize != pending {
            return Err(self.oracle(
                call,
                format!("no record consumed: {pending} outstanding"),
                format!("{} outstanding: records were consumed and lost", info.outstanding),
            ));
        }
        Ok(())
    }

    /// The echo check: bytes written to the buffer go to device memory and come back into another
    /// part of the buffer, through the DMA engine or the copy path, and must be equal.
    pub(crate) fn echo(&mut self, rng: &mut Rng) -> Result<(), FuzzError> {
        let fd = self.echo.fd;
        let n = rng.skewed_len(8 << 10) as usize;
        let src = rng.index(ECHO_BUF / 2 - n + 1);
        let dst = ECHO_BUF / 2 + rng.index(ECHO_BUF / 2 - n + 1);
        let x = rng.below(ECHO_WINDOW - n as u64 + 1);
        let base = self.echo.buf.addr();
        {
            // SAFETY: The echo buffer is always readable and writable and only this code uses it;
            // no DMA on it is in flight between echo calls.
            let bytes = unsafe { self.echo.buf.bytes() };
            rng.fill(&mut bytes[src..src + n]);
            bytes[dst..dst + n].fill(0);
        }
        let copy_in = rng.chance(1, 3);
        let copy_out = rng.chance(1, 3);
        let mut descs = Vec::new();
        if copy_in {
            let got = raw::pwrite(fd, base + src as u64, n, x as i64);
            self.verify("pwrite", format!("echo pwrite({n} bytes at {x:#x})"), &Expect::value(n as i64), got)?;
        } else {
            let tag = self.tag();
            let d = abi::Desc {
                tag,
                region_offset: src as u64,
                dev_offset: x,
                len: n as u64,
                region_id: self.echo.region,
                dir: abi::DIR_TO_DEVICE,
            };
            descs.push(d);
        }
        if !copy_out {
            let tag = self.tag();
            let d = abi::Desc {
                tag,
                region_offset: dst as u64,
                dev_offset: x,
                len: n as u64,
                region_id: self.echo.region,
                dir: abi::DIR_FROM_DEVICE,
            };
            descs.push(d);
        }
        if !descs.is_empty() {
            let k = descs.len();
            let mut args = abi::SubmitArgs { descs: descs.as_ptr() as u64, count: k as u32, flags: 0 };
            let got = raw::ioctl_on(fd, abi::PINIO_IOC_SUBMIT, &mut args);
            self.verify(
                "SUBMIT",
                format!("echo SUBMIT({k} descs, {n} bytes at {x:#x})"),
                &Expect::value(k as i64),
                got,
            )?;
            let mut out = vec![abi::CompletionRecord::default(); k];
            let mut args =
                abi::ReapArgs { records: out.as_mut_ptr() as u64, max: k as u32, min: k as u32, count: 0, reserved: 0 };
            let got = raw::ioctl_on(fd, abi::PINIO_IOC_REAP, &mut args);
            self.verify("REAP", format!("echo REAP(min {k})"), &Expect::value(k as i64), got)?;
            for (d, rec) in descs.iter().zip(&out) {
                let want = abi::CompletionRecord { tag: d.tag, bytes: d.len, status: 0, reserved: 0 };
                if *rec != want {
                    return Err(self.oracle("echo REAP".into(), format!("{want:?}"), format!("{rec:?}")));
                }
            }
        }
        if copy_out {
            // SAFETY: `[base + dst, +n)` is inside the echo buffer, which nothing else uses now.
            let got = unsafe { raw::pread(fd, base + dst as u64, n, x as i64) };
            self.verify("pread", format!("echo pread({n} bytes at {x:#x})"), &Expect::value(n as i64), got)?;
        }
        // SAFETY: As above: no DMA on the echo buffer is in flight any more.
        let bytes = unsafe { self.echo.buf.bytes() };
        let mismatch = (0..n).find(|&i| bytes[src + i] != bytes[dst + i]).map(|i| (i, bytes[src + i], bytes[dst + i]));
        if let Some((first, want, got)) = mismatch {
            let how = format!(
                "{} in, {} out",
                if copy_in { "pwrite" } else { "DMA" },
                if copy_out { "pread" } else { "DMA" }
            );
            return Err(self.oracle(
                format!("echo of {n} bytes via device offset {x:#x} ({how})"),
                format!("byte {first} = {want:#04x}"),
                format!("{got:#04x}"),
            ));
        }
        self.report.echo_bytes_checked += n as u64;
        Ok(())
    }
}

//! Phase two: threads racing on one open file of `/dev/pinio`.
//!
//! Each round opens a file, registers four regions of one buffer, and starts four threads:
//! a submitter (batches on whatever ids are current, reaping when the queue is full), an
//! unregisterer (UNREGISTER then REGISTER again, against the submitter's descriptors), a
//! reaper (REAP that waits for records the submitter may take first), and a chaos thread
//! (INFO, poll, `dup`/`close` of duplicates, `MAP_FIXED` over the registered buffer, then
//! `close` of the file while the others are inside their calls). Answers must stay within the
//! documented errnos (plus `EBADF` once the file is closed); a REAP still blocked 10 s after the
//! other threads finished fails the round (it waits for records that can never come).

use super::Report;
use crate::mapping::Mapping;
use crate::raw::{self, Answer};
use crate::rng::Rng;
use crate::{Errno, FuzzError};
use pinio_kmod::abi;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Regions per round.
const REGIONS: usize = 4;
/// Buffer per round.
const BUF: usize = 256 << 10;

/// State shared by the threads of one round.
struct Shared {
    fd: i32,
    base: u64,
    /// (offset in the buffer, length) of each region slot.
    spans: [(u64, u64); REGIONS],
    ids: [AtomicU32; REGIONS],
    closed: AtomicBool,
    stop: AtomicBool,
    reaper: AtomicU64,
    calls: Mutex<Report>,
    seed: u64,
    round: u64,
}

impl Shared {
    /// Records an answer; fails if it is not success or one of `allowed` (EBADF is always allowed:
    /// the chaos thread closes the file at any moment).
    fn answer(
        &self,
        op: &'static str,
        what: &dyn Fn() -> String,
        got: &Answer,
        allowed: &[i32],
    ) -> Result<(), FuzzError> {
        let mut r = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        r.calls += 1;
        let key = match got {
            Ok(_) => "ok".to_string(),
            Err(e) => e.name(),
        };
        *r.by_op.entry(op).or_default().entry(key).or_default() += 1;
        drop(r);
        match got {
            Err(e) if e.0 != libc::EBADF && !allowed.contains(&e.0) => Err(self.fail(what(), got)),
            _ => Ok(()),
        }
    }

    fn fail(&self, call: String, got: &Answer) -> FuzzError {
        let allowed = "success or a documented errno".to_string();
        FuzzError::Oracle {
            seed: self.seed,
            index: self.round,
            call: format!("race round {}: {call}", self.round),
            expected: allowed,
            got: super::expect::show(got),
            trace: String::from("  (threads: no sequential trace)"),
        }
    }
}

extern "C" fn on_sigusr1(_: i32) {}

/// Installs a no-op SIGUSR1 handler without `SA_RESTART`, so a blocked REAP returns `EINTR`.
fn install_interrupt() -> Result<(), FuzzError> {
    // SAFETY: A zeroed sigaction with a valid handler address and an empty mask; `on_sigusr1`
    // is async-signal-safe (does nothing).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) != 0 {
            return Err(FuzzError::setup("sigaction(SIGUSR1)", "cannot install a signal handler"));
        }
    }
    Ok(())
}

/// Runs `cfg.race_rounds` rounds, and more (up to ten times as many) until `before` (calls of
/// phase one) plus the calls of these rounds reach [`super::MIN_TOTAL_CALLS`].
pub fn run(cfg: &super::Config, before: u64, rng: &mut Rng) -> Result<Report, FuzzError> {
    install_interrupt()?;
    let mut total = Report::default();
    let started = Instant::now();
    let mut round = 0;
    while round < cfg.race_rounds
        || (before + total.calls < super::MIN_TOTAL_CALLS && round < cfg.race_rounds.max(1) * 10)
    {
        let r = one_round(cfg, round, rng.fork())?;
        total.merge(&r);
        round += 1;
    }
    println!(
        "fuzz: phase two done: {} rounds, {} calls in {:.1} s",
        round,
        total.calls,
        started.elapsed().as_secs_f64()
    );
    Ok(total)
}

fn one_round(cfg: &super::Config, round: u64, mut rng: Rng) -> Result<Report, FuzzError> {
    let seed = cfg.seed;
    let fd = raw::open(&cfg.device, libc::O_RDWR).map_err(|e| FuzzError::Setup {
        what: "open /dev/pinio".into(),
        errno: e,
        hint: "is pinio.ko loaded?",
    })? as i32;
    let mut buf = Mapping::rw(BUF)?;
    // SAFETY: The buffer was just mapped readable and writable.
    rng.fill(unsafe { buf.bytes() });
    let mut spans = [(0u64, 0u64); REGIONS];
    let ids: [AtomicU32; REGIONS] = Default::default();
    for (i, span) in spans.iter_mut().enumerate() {
        let off = rng.below(BUF as u64 / 2);
        let len = rng.range(1, BUF as u64 - off);
        *span = (off, len);
        let mut args = abi::RegisterArgs { addr: buf.addr() + off, len, access: abi::ACCESS_ALL, region_id: 0 };
        raw::ioctl_on(fd, abi::PINIO_IOC_REGISTER, &mut args).map_err(|e| FuzzError::Setup {
            what: "REGISTER in a race round".into(),
            errno: e,
            hint: "memory limits?",
        })?;
        ids[i].store(args.region_id, Ordering::SeqCst);
    }
    let shared = Shared {
        fd,
        base: buf.addr(),
        spans,
        ids,
        closed: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        reaper: AtomicU64::new(0),
        calls: Mutex::new(Report::default()),
        seed,
        round,
    };
    let buf = Mutex::new(buf);
    let (r1, r2, r3, r4) = (rng.fork(), rng.fork(), rng.fork(), rng.fork());
    let result: Result<(), FuzzError> = std::thread::scope(|s| {
        let sub = s.spawn(|| submitter(&shared, r1));
        let unr = s.spawn(|| unregisterer(&shared, r2));
        let rea = s.spawn(|| reaper(&shared, r3));
        let cha = s.spawn(|| chaos(&shared, &buf, r4));
        let mut results = vec![join(sub), join(unr), join(cha)];
        shared.stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut hung = false;
        while !rea.is_finished() {
            if Instant::now() > deadline {
                hung = true;
                let t = shared.reaper.load(Ordering::SeqCst) as libc::pthread_t;
                // SAFETY: `t` is the reaper thread, alive until `rea` is joined below.
                unsafe { libc::pthread_kill(t, libc::SIGUSR1) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        results.push(join(rea));
        if hung {
            results.push(Err(FuzzError::Check(format!(
                "race round {round} of seed {seed:#x}: a REAP with min > 0 stayed blocked 10 s after every other thread \
                 had finished: it waited for records another REAP had already taken (interrupted with SIGUSR1)"
            ))));
        }
        results.into_iter().collect()
    });
    if !shared.closed.load(Ordering::SeqCst) {
        let _ = raw::close(fd);
    }
    result?;
    let report = shared.calls.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(report)
}

fn join(h: std::thread::ScopedJoinHandle<'_, Result<(), FuzzError>>) -> Result<(), FuzzError> {
    h.join().unwrap_or_else(|_| Err(FuzzError::Check("a race thread panicked".into())))
}

fn submitter(sh: &Shared, mut rng: Rng) -> Result<(), FuzzError> {
    let mut out = vec![abi::CompletionRecord::default(); 64];
    for i in 0..150u64 {
        let n = rng.range(1, 8) as usize;
        let mut descs = Vec::with_capacity(n);
        for k in 0..n {
            let slot = rng.index(REGIONS);
            let (_, len) = sh.spans[slot];
            let l = rng.skewed_len(len.min(32 << 10));
            descs.push(abi::Desc {
                tag: i * 8 + k as u64,
                region_offset: rng.below(len - l + 1),
                dev_offset: super::model::ECHO_WINDOW + rng.below(1 << 20),
                len: l,
                region_id: sh.ids[slot].load(Ordering::SeqCst),
                dir: *rng.pick(&[abi::DIR_TO_DEVICE, abi::DIR_FROM_DEVICE]),
            });
        }
        let mut args = abi::SubmitArgs { descs: descs.as_ptr() as u64, count: n as u32, flags: 0 };
        let got = raw::ioctl_on(sh.fd, abi::PINIO_IOC_SUBMIT, &mut args);
        sh.answer("race-SUBMIT", &|| format!("SUBMIT({n})"), &got, &[libc::EAGAIN, libc::ENOENT])?;
        if got == Err(Errno(libc::EAGAIN)) || rng.chance(1, 4) {
            let mut a = abi::ReapArgs { records: out.as_mut_ptr() as u64, max: 64, min: 0, count: 0, reserved: 0 };
            let got = raw::ioctl_on(sh.fd, abi::PINIO_IOC_REAP, &mut a);
            sh.answer("race-REAP", &|| "REAP(min 0)".into(), &got, &[])?;
            check_records(sh, &out, &got)?;
        }
    }
    Ok(())
}

fn check_records(sh: &Shared, out: &[abi::CompletionRecord], got: &Answer) -> Result<(), FuzzError> {
    let n = got.as_ref().map_or(0, |&n| n as usize);
    if let Some(bad) = out[..n.min(out.len())].iter().find(|r| r.status != 0 || r.bytes == 0 || r.reserved != 0) {
        return Err(sh
            .fail("REAP".into(), &Ok(bad.status as i64))
            .with_detail(format!("record {bad:?}: descriptors were valid")));
    }
    Ok(())
}

impl FuzzError {
    fn with_detail(self, detail: String) -> FuzzError {
        match self {
            FuzzError::Oracle { seed, index, call, expected, trace, .. } => {
                FuzzError::Oracle { seed, index, call, expected, got: detail, trace }
            }
            other => other,
        }
    }
}

fn unregisterer(sh: &Shared, mut rng: Rng) -> Result<(), FuzzError> {
    for _ in 0..100 {
        let slot = rng.index(REGIONS);
        let id = sh.ids[slot].load(Ordering::SeqCst);
        let mut args = abi::UnregisterArgs { region_id: id, reserved: 0 };
        let got = raw::ioctl_on(sh.fd, abi::PINIO_IOC_UNREGISTER, &mut args);
        sh.answer("race-UNREGISTER", &|| format!("UNREGISTER({id})"), &got, &[libc::EBUSY, libc::ENOENT])?;
        if got.is_ok() || got == Err(Errno(libc::ENOENT)) {
            let (off, len) = sh.spans[slot];
            let mut r = abi::RegisterArgs { addr: sh.base + off, len, access: abi::ACCESS_ALL, region_id: 0 };
            let got = raw::ioctl_on(sh.fd, abi::PINIO_IOC_REGISTER, &mut r);
            sh.answer("race-REGISTER", &|| format!("REGISTER({len:#x})"), &got, &[])?;
            sh.ids[slot].store(if got.is_ok() { r.region_id } else { 0 }, Ordering::SeqCst);
        }
        if rng.chance(1, 3) {
            std::thread::yield_now();
        }
    }
    Ok(())
}

fn reaper(sh: &Shared, mut rng: Rng) -> Result<(), FuzzError> {
    // SAFETY: pthread_self has no preconditions.
    sh.reaper.store(unsafe { libc::pthread_self() } as u64, Ordering::SeqCst);
    let mut out = vec![abi::CompletionRecord::default(); 16];
    while !sh.stop.load(Ordering::SeqCst) {
        let min = rng.range(1, 4) as u32;
        let mut a = abi::ReapArgs { records: out.as_mut_ptr() as u64, max: 16, min, count: 0, reserved: 0 };
        let got = raw::ioctl_on(sh.fd, abi::PINIO_IOC_REAP, &mut a);
        if got == Err(Errno(libc::EINTR)) && sh.stop.load(Ordering::SeqCst) {
            // Interrupted by the watchdog: the round reports it.
            return Ok(());
        }
        sh.answer("race-REAP", &|| format!("REAP(min {min})"), &got, &[])?;
        check_records(sh, &out, &got)?;
        if got.is_err() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

fn chaos(sh: &Shared, buf: &Mutex<Mapping>, mut rng: Rng) -> Result<(), FuzzError> {
    let close_after = rng.range(5, 60);
    let mut dups = Vec::new();
    for i in 0..close_after {
        match rng.below(4) {
            0 => {
                let mut info = abi::Info::default();
                let got = raw::ioctl_on(sh.fd, abi::PINIO_IOC_INFO, &mut info);
                sh.answer("race-INFO", &|| "INFO".into(), &got, &[])?;
                if got.is_ok() && (info.outstanding > info.queue_depth || info.pinned_pages > info.max_pinned_pages) {
                    return Err(sh.fail(format!("INFO inconsistent: {info:?}"), &got));
                }
            }
            1 => {
                let got = raw::poll(sh.fd, 0);
                sh.answer("race-poll", &|| "poll".into(), &got, &[])?;
            }
            2 => {
                if dups.len() < 2 || rng.chance(1, 2) {
                    let got = raw::dup(sh.fd);
                    sh.answer("race-dup", &|| "dup".into(), &got, &[])?;
                    if let Ok(d) = got {
                        dups.push(d as i32);
                    }
                } else if let Some(d) = dups.pop() {
                    let got = raw::close(d);
                    sh.answer("race-close", &|| "close(dup)".into(), &got, &[])?;
                }
            }
            _ => {
                // Replace pages under the registrations: they stay pinned, the address space moves on.
                let page = crate::mapping::page_size();
                let pages = BUF / page;
                let at = rng.index(pages);
                let n = rng.range(1, (pages - at) as u64) as usize;
                let mut m = buf.lock().unwrap_or_else(|p| p.into_inner());
                m.replace(at * page, n * page, libc::PROT_READ | libc::PROT_WRITE)?;
                sh.calls.lock().unwrap_or_else(|p| p.into_inner()).address_space_changes += 1;
            }
        }
        if i % 8 == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(500)));
        }
    }
    // Close while the others are (likely) inside ioctls; the last reference goes with their calls.
    let got = raw::close(sh.fd);
    sh.closed.store(true, Ordering::SeqCst);
    sh.answer("race-close", &|| "close(fd)".into(), &got, &[])?;
    for d in dups {
        let got = raw::close(d);
        sh.answer("race-close", &|| "close(dup)".into(), &got, &[])?;
    }
    Ok(())
}

//! The two loops compared by the `qd32_vs_raw` bench and the `qd32_callgrind`
//! example: 4 KiB random O_DIRECT reads at queue depth 32 on one file,
//! through a hand-written io-uring loop and through the pinio uring backend.
//!
//! Both loops do the same work per IO: one registered buffer area split in
//! `QD` 4 KiB buffers, the file registered as fixed file 0, `READ_FIXED`,
//! one `io_uring_enter` per wait (submitting the refills pushed since the
//! last one and waiting for at least one completion), every available
//! completion reaped, and one refill pushed per completion. The rings are
//! set up the same way (default flags, 128 entries).
#![allow(dead_code)]

use io_uring::{IoUring, opcode, types};
use pinio_core::{Completion, Device, DmaBuf, Op, Queue, Region, Slice};
use pinio_uring::{UringDevice, UringOptions, UringQueue};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Queue depth.
pub const QD: usize = 32;
/// Block size.
pub const BS: usize = 4096;
/// Size of the scratch file.
pub const FILE_LEN: u64 = 1 << 30;

/// The scratch file: `dir/pinio-qd32-bench.dat`, `FILE_LEN` bytes of
/// written pseudo-random data, made once and reused.
pub fn scratch_file(dir: &Path) -> PathBuf {
    let path = dir.join("pinio-qd32-bench.dat");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == FILE_LEN) {
        return path;
    }
    eprintln!("writing {} MiB to {} ...", FILE_LEN >> 20, path.display());
    let mut f = File::create(&path).expect("create the scratch file");
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..FILE_LEN >> 20 {
        for w in buf.chunks_exact_mut(8) {
            w.copy_from_slice(&rng.next().to_le_bytes());
        }
        f.write_all(&buf).expect("write the scratch file");
    }
    f.sync_all().expect("sync the scratch file");
    path
}

/// xorshift64: the offsets of both loops come from the same sequence.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A random `BS`-aligned offset inside the file.
    pub fn offset(&mut self) -> u64 {
        (self.next() % (FILE_LEN / BS as u64)) * BS as u64
    }
}

/// The hand-written io-uring loop.
pub struct RawLoop {
    ring: IoUring,
    _file: File,
    bufs: DmaBuf,
    rng: Rng,
}

impl RawLoop {
    pub fn new(path: &Path) -> RawLoop {
        let file = File::options().read(true).custom_flags(libc::O_DIRECT).open(path).expect("open O_DIRECT");
        let ring = IoUring::builder().dontfork().build(128).expect("io_uring_setup");
        let mut bufs = DmaBuf::new(QD * BS).unwrap();
        let iov = libc::iovec { iov_base: bufs.as_mut_ptr().cast(), iov_len: bufs.len() };
        // SAFETY: `bufs` lives in `self` as long as the ring.
        unsafe { ring.submitter().register_buffers(&[iov]) }.expect("register_buffers");
        ring.submitter().register_files(&[file.as_raw_fd()]).expect("register_files");
        RawLoop { ring, _file: file, bufs, rng: Rng(0x9e37_79b9_7f4a_7c15) }
    }

    fn push(&mut self, i: usize) {
        // SAFETY: buffer `i` of the registered area, not in flight (each
        // index is in at most one SQE at a time).
        let ptr = unsafe { self.bufs.as_mut_ptr().add(i * BS) };
        let sqe = opcode::ReadFixed::new(types::Fixed(0), ptr, BS as u32, 0)
            .offset(self.rng.offset())
            .build()
            .user_data(i as u64);
        // SAFETY: the buffer and file stay registered while the ring lives;
        // at most QD < 128 entries are queued.
        unsafe { self.ring.submission().push(&sqe) }.expect("SQ has room");
    }

    /// Runs `ios` reads; returns how many completed.
    pub fn run(&mut self, ios: u64) -> u64 {
        let prime = (ios as usize).min(QD);
        for i in 0..prime {
            self.push(i);
        }
        let (mut issued, mut done) = (prime as u64, 0u64);
        let mut refill = [0usize; QD];
        while done < ios {
            self.ring.submit_and_wait(1).expect("io_uring_enter");
            let mut n = 0;
            for cqe in self.ring.completion() {
                assert_eq!(cqe.result(), BS as i32, "read failed");
                refill[n] = cqe.user_data() as usize;
                n += 1;
            }
            done += n as u64;
            for &i in &refill[..n] {
                if issued < ios {
                    self.push(i);
                    issued += 1;
                }
            }
        }
        done
    }
}

/// The same loop through pinio's uring backend and its `Queue` trait object,
/// one `push` per refill (`run`) or one `push_batch` per reaped batch
/// (`run_batched`).
pub struct PinioLoop {
    dev: UringDevice,
    q: Box<dyn Queue>,
    _region: Region,
    idle: Vec<Slice>,
    out: Vec<Completion>,
    rng: Rng,
}

impl PinioLoop {
    pub fn new(path: &Path) -> PinioLoop {
        let opts = UringOptions { writable: false, ..UringOptions::default() };
        let dev = UringDevice::open(path, opts).expect("open the uring device");
        let q = dev.queue(QD).expect("queue");
        let region = dev.alloc(QD * BS).expect("alloc");
        let idle = (0..QD).map(|i| region.slice(i * BS, BS).unwrap()).collect();
        PinioLoop { dev, q, _region: region, idle, out: Vec::with_capacity(QD), rng: Rng(0x9e37_79b9_7f4a_7c15) }
    }

    pub fn device(&self) -> &UringDevice {
        &self.dev
    }

    /// Runs `ios` reads; returns how many completed.
    pub fn run(&mut self, ios: u64) -> u64 {
        let prime = (ios as usize).min(QD);
        for _ in 0..prime {
            let s = self.idle.pop().expect("all slices are idle between runs");
            let off = self.rng.offset();
            self.q.push(Op::read(s, off, 0)).expect("push");
        }
        let (mut issued, mut done) = (prime as u64, 0u64);
        while done < ios {
            self.q.wait(1, &mut self.out).expect("wait");
            for c in self.out.drain(..) {
                assert_eq!(*c.result.as_ref().expect("read failed"), BS);
                done += 1;
                if issued < ios {
                    let off = self.rng.offset();
                    self.q.push(Op::read(c.slice, off, 0)).expect("push");
                    issued += 1;
                } else {
                    self.idle.push(c.slice);
                }
            }
        }
        done
    }
}

impl PinioLoop {
    /// `run`, pushing each reaped batch's refills with one
    /// `Queue::push_batch` through the trait object.
    pub fn run_batched(&mut self, ios: u64) -> u64 {
        let prime = (ios as usize).min(QD);
        let rng = &mut self.rng;
        let first = self.idle.drain(self.idle.len() - prime..).map(|s| Op::read(s, rng.offset(), 0));
        self.q.push_batch(&mut { first }).expect("push");
        let (mut issued, mut done) = (prime as u64, 0u64);
        while done < ios {
            self.q.wait(1, &mut self.out).expect("wait");
            done += self.out.len() as u64;
            let (rng, idle, mut left) = (&mut self.rng, &mut self.idle, ios - issued);
            let mut ops = self.out.drain(..).filter_map(|c| {
                assert_eq!(*c.result.as_ref().expect("read failed"), BS);
                if left == 0 {
                    idle.push(c.slice);
                    return None;
                }
                left -= 1;
                Some(Op::read(c.slice, rng.offset(), 0))
            });
            issued += self.q.push_batch(&mut ops).expect("push") as u64;
        }
        done
    }
}

/// The same loop as a user holding the concrete queue writes it:
/// `UringQueue`'s inherent methods (resolved statically, inlined), one
/// `push_batch` of the refills per reaped batch.
pub struct PinioBatchLoop {
    _dev: UringDevice,
    q: UringQueue,
    _region: Region,
    idle: Vec<Slice>,
    out: Vec<Completion>,
    rng: Rng,
}

impl PinioBatchLoop {
    pub fn new(path: &Path) -> PinioBatchLoop {
        let opts = UringOptions { writable: false, ..UringOptions::default() };
        let dev = UringDevice::open(path, opts).expect("open the uring device");
        let q = dev.uring_queue(QD).expect("queue");
        let region = dev.alloc(QD * BS).expect("alloc");
        let idle = (0..QD).map(|i| region.slice(i * BS, BS).unwrap()).collect();
        PinioBatchLoop {
            _dev: dev,
            q,
            _region: region,
            idle,
            out: Vec::with_capacity(QD),
            rng: Rng(0x9e37_79b9_7f4a_7c15),
        }
    }

    /// Runs `ios` reads; returns how many completed.
    pub fn run(&mut self, ios: u64) -> u64 {
        let prime = (ios as usize).min(QD);
        let rng = &mut self.rng;
        let first = self.idle.drain(self.idle.len() - prime..).map(|s| Op::read(s, rng.offset(), 0));
        self.q.push_batch(first).expect("push");
        let (mut issued, mut done) = (prime as u64, 0u64);
        while done < ios {
            self.q.wait(1, &mut self.out).expect("wait");
            let n = self.out.len();
            done += n as u64;
            let refill = n.min((ios - issued) as usize);
            let rng = &mut self.rng;
            let ops = self.out.drain(..refill).map(|c| {
                assert_eq!(*c.result.as_ref().expect("read failed"), BS);
                Op::read(c.slice, rng.offset(), 0)
            });
            issued += self.q.push_batch(ops).expect("push") as u64;
            self.idle.extend(self.out.drain(..).map(|c| c.slice));
        }
        done
    }

    /// `run` with one inherent `UringQueue::push` per refill.
    pub fn run_per_op(&mut self, ios: u64) -> u64 {
        let prime = (ios as usize).min(QD);
        for _ in 0..prime {
            let s = self.idle.pop().expect("all slices are idle between runs");
            let off = self.rng.offset();
            self.q.push(Op::read(s, off, 0)).expect("push");
        }
        let (mut issued, mut done) = (prime as u64, 0u64);
        while done < ios {
            self.q.wait(1, &mut self.out).expect("wait");
            for c in self.out.drain(..) {
                assert_eq!(*c.result.as_ref().expect("read failed"), BS);
                done += 1;
                if issued < ios {
                    let off = self.rng.offset();
                    self.q.push(Op::read(c.slice, off, 0)).expect("push");
                    issued += 1;
                } else {
                    self.idle.push(c.slice);
                }
            }
        }
        done
    }

    /// `run` with `UringQueue::wait_rearm`: each completed slice read again
    /// in place at the next offset.
    pub fn run_rearm(&mut self, ios: u64) -> u64 {
        let prime = (ios as usize).min(QD);
        let rng = &mut self.rng;
        let first = self.idle.drain(self.idle.len() - prime..).map(|s| Op::read(s, rng.offset(), 0));
        self.q.push_batch(first).expect("push");
        let (mut issued, mut done) = (prime as u64, 0u64);
        while done < ios {
            let (rng, idle) = (&mut self.rng, &mut self.idle);
            self.q
                .wait_rearm(1, |r| {
                    assert_eq!(r.result().expect("read failed"), BS);
                    done += 1;
                    if issued < ios {
                        r.rearm(rng.offset(), 0).expect("rearm");
                        issued += 1;
                    } else {
                        idle.push(r.into_completion().slice);
                    }
                })
                .expect("wait");
        }
        done
    }
}

//! Guest tests of the vectored registration ioctls, `PINIO_IOC_REGISTER_VEC` and
//! `PINIO_IOC_UNREGISTER_VEC`: a round trip with DMA through the regions, every errno in its
//! documented order, all or nothing on every error (no region, no pinned page, no pin and no
//! locked-memory charge left behind), one charge against `RLIMIT_MEMLOCK` for the sum, and
//! adjacent regions pinned together but unpinned and uncharged one by one.
//! After each test every FOLL_PIN taken is released and the kernel logged no warning.
//!
//! Run by `cargo xtask test` in the guest with pinio.ko loaded (PINIO_GUEST=1).

mod common;

use common::{Checked, DEV, Mapping, fill, pins_outstanding, vm_lck_kb};
use pinio_kmod::abi::{self, Desc, RegisterArgs, UnregisterArgs};
use pinio_kmod::sys::PinioFd;

const PAGE: usize = 4096;

fn open() -> PinioFd {
    PinioFd::open(DEV).expect("open /dev/pinio")
}

fn errno<T: std::fmt::Debug>(r: Result<T, pinio_kmod::KmodError>) -> i32 {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.errno().unwrap_or_else(|| panic!("no errno in {e}")),
    }
}

fn reg(addr: u64, len: u64, access: u32) -> RegisterArgs {
    RegisterArgs { addr, len, access, region_id: 0 }
}

/// One ACCESS_ALL region per page of `pages`, page `p` at `base + p * PAGE`.
fn one_page_regions(base: u64, pages: std::ops::Range<usize>) -> Vec<RegisterArgs> {
    pages.map(|p| reg(base + (p * PAGE) as u64, PAGE as u64, abi::ACCESS_ALL)).collect()
}

fn unreg(ids: &[u32]) -> Vec<UnregisterArgs> {
    ids.iter().map(|&region_id| UnregisterArgs { region_id, reserved: 0 }).collect()
}

/// Asserts the session holds no region and no pinned page.
fn empty(fd: &PinioFd, what: &str) {
    let info = fd.info().unwrap();
    assert_eq!((info.regions, info.pinned_pages), (0, 0), "{what}: something stayed registered");
}

/// Submits `descs` and reaps as many records, each of which must have succeeded.
fn run(fd: &PinioFd, descs: &[Desc]) {
    assert_eq!(fd.submit(descs).expect("submit"), descs.len());
    let mut got = Vec::with_capacity(descs.len());
    while got.len() < descs.len() {
        let want = (descs.len() - got.len()) as u32;
        fd.reap(&mut got, want).expect("reap");
    }
    assert!(got.iter().all(|c| c.status == 0 && c.bytes > 0), "{got:?}");
}

#[test]
fn vectored_round_trip_pins_each_entry_and_dma_reaches_it() {
    let c = Checked::start();
    let fd = open();
    let pins0 = pins_outstanding();
    let mut m = Mapping::rw(80 * PAGE);
    fill(m.bytes(), 1);
    // 64 one-page regions, then unaligned and multi-page ones, and one overlapping another:
    // each entry is a registration of its own, as 64 + 3 REGISTERs would make.
    let mut entries = one_page_regions(m.addr(), 0..64);
    entries.push(reg(m.addr() + 64 * PAGE as u64 + 100, 3 * PAGE as u64, abi::ACCESS_ALL)); // 4 pages
    entries.push(reg(m.addr() + 70 * PAGE as u64, 10 * PAGE as u64, abi::ACCESS_DEVICE_READ));
    entries.push(reg(m.addr(), 2 * PAGE as u64, abi::ACCESS_DEVICE_WRITE)); // overlaps 0 and 1
    let pages: u64 = 64 + 4 + 10 + 2;
    assert_eq!(fd.register_vec(&mut entries).unwrap(), entries.len());
    let ids: Vec<u32> = entries.iter().map(|e| e.region_id).collect();
    // Ids are handed out in array order, consecutive, never 0.
    assert!(ids[0] != 0 && ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    let info = fd.info().unwrap();
    assert_eq!((info.regions as usize, info.pinned_pages), (entries.len(), pages));
    assert_eq!(pins_outstanding() - pins0, pages as i64, "one FOLL_PIN per page of each entry");

    // DMA through region 5 (one page) and the unaligned one: device memory -> region -> device.
    let pattern: Vec<u8> = (0..PAGE).map(|i| (i * 7 + 3) as u8).collect();
    assert_eq!(fd.pwrite(&pattern, 0).unwrap(), PAGE);
    run(
        &fd,
        &[
            Desc {
                tag: 1,
                region_offset: 0,
                dev_offset: 0,
                len: PAGE as u64,
                region_id: ids[5],
                dir: abi::DIR_FROM_DEVICE,
            },
            Desc { tag: 2, region_offset: 10, dev_offset: 0, len: 200, region_id: ids[64], dir: abi::DIR_FROM_DEVICE },
        ],
    );
    assert_eq!(&m.bytes()[5 * PAGE..6 * PAGE], &pattern[..], "region 5 is the sixth page");
    let at = 64 * PAGE + 100 + 10;
    assert_eq!(&m.bytes()[at..at + 200], &pattern[..200], "the unaligned region starts at its address");
    // Access bits are per entry: the read-only region refuses device writes.
    let bad = Desc { tag: 3, region_offset: 0, dev_offset: 0, len: 8, region_id: ids[65], dir: abi::DIR_FROM_DEVICE };
    assert_eq!(errno(fd.submit(&[bad])), libc::EACCES);

    // Unregister in another order than registered, in two calls.
    let (a, b): (Vec<u32>, Vec<u32>) = ids.iter().rev().partition(|id| *id % 2 == 0);
    assert_eq!(fd.unregister_vec(&unreg(&a)).unwrap(), a.len());
    assert_eq!(fd.info().unwrap().regions as usize, b.len());
    assert_eq!(fd.unregister_vec(&unreg(&b)).unwrap(), b.len());
    empty(&fd, "after unregistering everything");
    assert_eq!(pins_outstanding(), pins0);
    // The ids are gone: single UNREGISTER of one is ENOENT.
    assert_eq!(errno(fd.unregister(ids[0])), libc::ENOENT);
    // A single REGISTER continues after the vector's ids.
    let next = fd.register(m.addr(), 1, abi::ACCESS_ALL).unwrap();
    assert_eq!(next, ids[ids.len() - 1] + 1);
    fd.unregister(next).unwrap();
    drop(fd);
    c.finish();
}

#[test]
fn every_bad_register_vec_gets_its_errno_and_registers_nothing() {
    let c = Checked::start();
    let fd = open();
    let info = fd.info().unwrap();
    let m = Mapping::rw(8 * PAGE);
    let ro_map = Mapping::new(PAGE, libc::PROT_READ);
    // Kept reserved for the whole test (see guest_abi.rs): never mapped by anyone else.
    let hole = Mapping::new(PAGE, libc::PROT_NONE);
    let good = reg(m.addr(), PAGE as u64, abi::ACCESS_ALL);
    let check = |what: &str, mut entries: Vec<RegisterArgs>, want: i32| {
        let pins = pins_outstanding();
        assert_eq!(errno(fd.register_vec(&mut entries)), want, "{what}");
        empty(&fd, what);
        assert_eq!(pins_outstanding(), pins, "{what}: a pin was left behind");
        assert!(entries.iter().all(|e| e.region_id == 0), "{what}: an id was reported");
    };

    // The call itself.
    let mut one = [good];
    // SAFETY: `one` is ours; the kernel refuses before reading or writing it.
    unsafe {
        assert_eq!(errno(fd.register_vec_raw(one.as_mut_ptr() as u64, 0, 0)), libc::EINVAL, "count 0");
        assert_eq!(
            errno(fd.register_vec_raw(one.as_mut_ptr() as u64, abi::MAX_VEC + 1, 0)),
            libc::EINVAL,
            "count above MAX_VEC"
        );
        assert_eq!(errno(fd.register_vec_raw(one.as_mut_ptr() as u64, 1, 1)), libc::EINVAL, "flags");
        // EINVAL for the count comes before EFAULT for the array.
        assert_eq!(errno(fd.register_vec_raw(hole.addr(), 0, 0)), libc::EINVAL, "count 0, bad array");
        assert_eq!(errno(fd.register_vec_raw(hole.addr(), 1, 0)), libc::EFAULT, "unreadable array");
        assert_eq!(errno(fd.register_vec_raw(u64::MAX - 8, 2, 0)), libc::EFAULT, "array address wraps");
        assert_eq!(errno(fd.register_vec_raw(0xffff_8000_0000_0000, 1, 0)), libc::EFAULT, "array at a kernel address");
    }
    empty(&fd, "bad calls");

    // Entries, checked in array order before anything is pinned or charged: a zero length after
    // an unmapped entry is EINVAL, not EFAULT.
    check("zero length last", vec![good, good, reg(m.addr(), 0, abi::ACCESS_ALL)], libc::EINVAL);
    check("no access bits", vec![good, reg(m.addr(), 8, 0)], libc::EINVAL);
    check("unknown access bits", vec![good, reg(m.addr(), 8, 0x40)], libc::EINVAL);
    check("wrapping range", vec![good, reg(m.addr(), u64::MAX - 10, abi::ACCESS_ALL)], libc::EOVERFLOW);
    check("unmapped, then zero length", vec![reg(hole.addr(), 8, abi::ACCESS_ALL), reg(m.addr(), 0, 1)], libc::EINVAL);
    // The cap applies to the sum: two entries each under it, together over it.
    let half = info.max_pinned_pages / 2 + 1;
    check(
        "the sum over the cap",
        vec![reg(m.addr(), half * PAGE as u64, abi::ACCESS_ALL), reg(m.addr(), half * PAGE as u64, abi::ACCESS_ALL)],
        libc::ENOSPC,
    );
    // Pinning errors: everything pinned before the failing entry is released again.
    check("unmapped last", vec![good, good, reg(hole.addr(), PAGE as u64, abi::ACCESS_ALL)], libc::EFAULT);
    check(
        "read-only mapping for device writes",
        vec![good, reg(ro_map.addr(), PAGE as u64, abi::ACCESS_DEVICE_WRITE)],
        libc::EFAULT,
    );
    check("kernel address", vec![good, reg(0xffff_8000_0000_0000, 8, abi::ACCESS_ALL)], libc::EFAULT);
    // A read-only mapping may be registered for device reads, in a vector too.
    let mut ok = [good, reg(ro_map.addr(), PAGE as u64, abi::ACCESS_DEVICE_READ)];
    fd.register_vec(&mut ok).unwrap();
    fd.unregister_vec(&unreg(&[ok[0].region_id, ok[1].region_id])).unwrap();
    empty(&fd, "read-only mapping for device reads");

    // An array the kernel can read but not write back: the regions were registered, then the
    // ids could not be reported, so they are unregistered again (their ids are used up).
    let ro_entries = Mapping::new(PAGE, libc::PROT_READ | libc::PROT_WRITE);
    let arr = ro_entries.ptr.cast::<RegisterArgs>();
    // SAFETY: The mapping holds a page, room for two entries; we own it.
    unsafe {
        arr.write(good);
        arr.add(1).write(reg(m.addr() + PAGE as u64, 2 * PAGE as u64, abi::ACCESS_ALL));
        assert_eq!(libc::mprotect(ro_entries.ptr.cast(), PAGE, libc::PROT_READ), 0);
    }
    let before = fd.register(m.addr(), 1, abi::ACCESS_ALL).unwrap();
    fd.unregister(before).unwrap();
    let pins = pins_outstanding();
    // SAFETY: The array is our read-only page; the kernel fails to write it.
    assert_eq!(errno(unsafe { fd.register_vec_raw(arr as u64, 2, 0) }), libc::EFAULT, "read-only array");
    empty(&fd, "read-only array");
    assert_eq!(pins_outstanding(), pins, "read-only array: a pin was left behind");
    let after = fd.register(m.addr(), 1, abi::ACCESS_ALL).unwrap();
    assert_eq!(after, before + 3, "the two ids of the unreported regions are used up");
    fd.unregister(after).unwrap();

    // The fuller path: a vector of MAX_VEC one-byte entries on one page.
    let mut many: Vec<RegisterArgs> = (0..abi::MAX_VEC as u64).map(|i| reg(m.addr() + i, 1, abi::ACCESS_ALL)).collect();
    assert_eq!(fd.register_vec(&mut many).unwrap(), many.len());
    assert_eq!(fd.info().unwrap().pinned_pages, u64::from(abi::MAX_VEC));
    let all: Vec<u32> = many.iter().map(|e| e.region_id).collect();
    assert_eq!(fd.unregister_vec(&unreg(&all)).unwrap(), all.len());
    empty(&fd, "MAX_VEC entries");
    drop(fd);
    c.finish();
}

#[test]
fn every_bad_unregister_vec_gets_its_errno_and_unregisters_nothing() {
    let c = Checked::start();
    let fd = open();
    let m = Mapping::rw(8 * PAGE);
    let hole = Mapping::new(PAGE, libc::PROT_NONE);
    let mut entries = one_page_regions(m.addr(), 0..4);
    fd.register_vec(&mut entries).unwrap();
    let ids: Vec<u32> = entries.iter().map(|e| e.region_id).collect();
    // Another open file's region, with an id this file has not handed out (ids are per file:
    // the other file's first four are 1..=4 too).
    let other = open();
    let mut theirs = [reg(m.addr(), PAGE as u64, abi::ACCESS_ALL); 5];
    other.register_vec(&mut theirs).unwrap();
    let foreign = theirs[4].region_id;
    assert!(!ids.contains(&foreign));
    let check = |what: &str, list: Vec<UnregisterArgs>, want: i32| {
        assert_eq!(errno(fd.unregister_vec(&list)), want, "{what}");
        let info = fd.info().unwrap();
        assert_eq!((info.regions, info.pinned_pages), (4, 4), "{what}: a region was unregistered");
    };

    let list = unreg(&ids);
    assert_eq!(errno(fd.unregister_vec_raw(list.as_ptr() as u64, 0, 0)), libc::EINVAL, "count 0");
    assert_eq!(errno(fd.unregister_vec_raw(list.as_ptr() as u64, abi::MAX_VEC + 1, 0)), libc::EINVAL, "count");
    assert_eq!(errno(fd.unregister_vec_raw(list.as_ptr() as u64, 4, 2)), libc::EINVAL, "flags");
    assert_eq!(errno(fd.unregister_vec_raw(hole.addr(), 1, 0)), libc::EFAULT, "unreadable array");

    let mut reserved = unreg(&ids);
    reserved[3].reserved = 1;
    check("reserved set", reserved, libc::EINVAL);
    check("an id twice", unreg(&[ids[0], ids[1], ids[0]]), libc::EINVAL);
    // The duplicate check comes before the lookups.
    check("unknown id and an id twice", unreg(&[ids[0], 999_999, ids[0]]), libc::EINVAL);
    check("unknown id last", unreg(&[ids[0], ids[1], 999_999]), libc::ENOENT);
    check("id 0", unreg(&[ids[2], 0]), libc::ENOENT);
    check("another open file's region", unreg(&[ids[0], foreign]), libc::ENOENT);

    // EBUSY while DMA on one of them is in flight: keep the engine busy with a long batch.
    let busy = ids[2];
    let batch: Vec<Desc> = (0..fd.info().unwrap().queue_depth as u64)
        .map(|i| Desc {
            tag: i,
            region_offset: 0,
            dev_offset: 0,
            len: PAGE as u64,
            region_id: busy,
            dir: abi::DIR_FROM_DEVICE,
        })
        .collect();
    fd.submit(&batch).unwrap();
    match fd.unregister_vec(&unreg(&ids)) {
        Err(e) => {
            assert_eq!(e.errno(), Some(libc::EBUSY), "{e}");
            assert_eq!(fd.info().unwrap().regions, 4, "EBUSY unregistered some regions");
        }
        // The engine may have finished the whole batch already.
        Ok(n) => {
            assert_eq!(n, 4);
            fd.register_vec(&mut entries).unwrap();
        }
    }
    let mut got = Vec::with_capacity(batch.len());
    while got.len() < batch.len() {
        let want = (batch.len() - got.len()) as u32;
        fd.reap(&mut got, want).unwrap();
    }
    let ids: Vec<u32> = entries.iter().map(|e| e.region_id).collect();
    assert_eq!(fd.unregister_vec(&unreg(&ids)).unwrap(), 4);
    empty(&fd, "after the errors");
    let their_ids: Vec<u32> = theirs.iter().map(|e| e.region_id).collect();
    other.unregister_vec(&unreg(&their_ids)).unwrap();
    drop((fd, other));
    c.finish();
}

#[test]
fn a_vector_is_charged_to_rlimit_memlock_as_one_sum() {
    let c = Checked::start();
    let m = Mapping::rw(1 << 20);
    let hole = Mapping::new(PAGE, libc::PROT_NONE);
    let fd = open();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&fd));
    // Each entry fits the 64 KiB limit, the two together do not.
    let mut over = [reg(m.addr(), 40 << 10, abi::ACCESS_ALL), reg(m.addr() + (64 << 10), 40 << 10, abi::ACCESS_ALL)];
    let mut fits = [reg(m.addr(), 16 << 10, abi::ACCESS_ALL), reg(m.addr() + (64 << 10), 16 << 10, abi::ACCESS_ALL)];
    let mut faults = [reg(m.addr(), 16 << 10, abi::ACCESS_ALL), reg(hole.addr(), PAGE as u64, abi::ACCESS_ALL)];
    let mut unregs = [UnregisterArgs::default(); 2];
    let vec_of = |p: *mut RegisterArgs| abi::VecArgs { entries: p as u64, count: 2, flags: 0 };
    let (fits_p, unregs_p) = (fits.as_mut_ptr(), unregs.as_mut_ptr());
    let (mut a_over, mut a_fits, mut a_faults) =
        (vec_of(over.as_mut_ptr()), vec_of(fits_p), vec_of(faults.as_mut_ptr()));
    let mut a_unreg = abi::VecArgs { entries: unregs_p as u64, count: 2, flags: 0 };
    // SAFETY: The child makes raw system calls on memory prepared before fork, then `_exit`s with
    // a code naming the first failed check.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: See above.
        unsafe {
            let lim = libc::rlimit { rlim_cur: 64 << 10, rlim_max: 64 << 10 };
            // Without CAP_IPC_LOCK (an unprivileged uid) the limit applies.
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 || libc::setuid(65534) != 0 {
                libc::_exit(10);
            }
            let before = vm_lck_kb();
            let errno = || *libc::__errno_location();
            if libc::ioctl(raw, abi::PINIO_IOC_REGISTER_VEC as _, &mut a_over) != -1 || errno() != libc::ENOMEM {
                libc::_exit(11); // 80 KiB in two entries over a 64 KiB limit must be ENOMEM
            }
            if vm_lck_kb() != before {
                libc::_exit(12); // a refused vector charges nothing
            }
            if libc::ioctl(raw, abi::PINIO_IOC_REGISTER_VEC as _, &mut a_faults) != -1 || errno() != libc::EFAULT {
                libc::_exit(13); // the second entry is unmapped
            }
            if vm_lck_kb() != before {
                libc::_exit(14); // the first entry's pages were pinned and charged, then returned
            }
            if libc::ioctl(raw, abi::PINIO_IOC_REGISTER_VEC as _, &mut a_fits) != 2 {
                libc::_exit(15); // 32 KiB fits
            }
            if vm_lck_kb() != before + 32 {
                libc::_exit(16); // and is charged: VmLck grows by 32 kB
            }
            // Through the pointers the kernel wrote and will read.
            (*unregs_p).region_id = (*fits_p).region_id;
            (*unregs_p.add(1)).region_id = (*fits_p.add(1)).region_id;
            if libc::ioctl(raw, abi::PINIO_IOC_UNREGISTER_VEC as _, &mut a_unreg) != 2 || vm_lck_kb() != before {
                libc::_exit(17); // unregistering returns the whole charge
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: Waits for our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "RLIMIT_MEMLOCK check failed in the child (exit code names the check)");
    empty(&fd, "after the child");
    drop((fd, m, hole));
    c.finish();
}

#[test]
fn close_releases_vectored_regions() {
    let c = Checked::start();
    let pins0 = pins_outstanding();
    let m = Mapping::rw(64 * PAGE);
    let fd = open();
    let mut entries = one_page_regions(m.addr(), 0..64);
    fd.register_vec(&mut entries).unwrap();
    assert_eq!(pins_outstanding() - pins0, 64);
    drop(fd);
    assert_eq!(pins_outstanding(), pins0, "close left pins behind");
    c.finish();
}

#[test]
fn adjacent_regions_are_pinned_together_and_released_one_by_one() {
    let c = Checked::start();
    let pins0 = pins_outstanding();
    let lck0 = vm_lck_kb();
    let mut m = Mapping::rw(20 * PAGE);
    fill(m.bytes(), 2);
    // Pages 0..16 are 16 adjacent one-page regions (the module pins them as one run); page 16
    // is made read-only and registered for device reads after them, which must not join the
    // writable run (a writable pin of it would fail with EFAULT).
    // SAFETY: Page 16 lies inside the mapping `m` owns.
    assert_eq!(unsafe { libc::mprotect((m.addr() + 16 * PAGE as u64) as *mut _, PAGE, libc::PROT_READ) }, 0);
    let mut entries = one_page_regions(m.addr(), 0..16);
    entries.push(reg(m.addr() + 16 * PAGE as u64, PAGE as u64, abi::ACCESS_DEVICE_READ));
    let fd = open();
    assert_eq!(fd.register_vec(&mut entries).unwrap(), 17);
    let ids: Vec<u32> = entries.iter().map(|e| e.region_id).collect();
    assert_eq!(pins_outstanding() - pins0, 17);
    assert_eq!(vm_lck_kb() - lck0, 17 * 4);

    // The device writes region 7, then region 7 alone is unregistered: its page is unpinned and
    // uncharged, its neighbours stay registered and usable.
    let pattern: Vec<u8> = (0..PAGE).map(|i| (i * 13 + 5) as u8).collect();
    assert_eq!(fd.pwrite(&pattern, 0).unwrap(), PAGE);
    let from_dev = |tag, id| Desc {
        tag,
        region_offset: 0,
        dev_offset: 0,
        len: PAGE as u64,
        region_id: id,
        dir: abi::DIR_FROM_DEVICE,
    };
    run(&fd, &[from_dev(1, ids[7])]);
    assert_eq!(&m.bytes()[7 * PAGE..8 * PAGE], &pattern[..]);
    fd.unregister(ids[7]).unwrap();
    assert_eq!(pins_outstanding() - pins0, 16, "region 7's page is unpinned");
    assert_eq!(vm_lck_kb() - lck0, 16 * 4, "and uncharged");
    assert_eq!(errno(fd.unregister(ids[7])), libc::ENOENT);
    let to_dev = |tag, id| Desc {
        tag,
        region_offset: 0,
        dev_offset: PAGE as u64,
        len: PAGE as u64,
        region_id: id,
        dir: abi::DIR_TO_DEVICE,
    };
    assert_eq!(errno(fd.submit(&[to_dev(2, ids[7])])), libc::ENOENT);
    run(&fd, &[from_dev(3, ids[6]), from_dev(4, ids[8]), to_dev(5, ids[16])]);
    assert_eq!(&m.bytes()[6 * PAGE..7 * PAGE], &pattern[..], "the region before it still works");
    assert_eq!(&m.bytes()[8 * PAGE..9 * PAGE], &pattern[..], "the region after it still works");
    let mut back = vec![0u8; PAGE];
    assert_eq!(fd.pread(&mut back, PAGE as u64).unwrap(), PAGE);
    assert_eq!(&back[..], &m.bytes()[16 * PAGE..17 * PAGE], "the read-only region was read");
    // Regions 0..7 in one call (one stretch of the run), then the rest at close.
    assert_eq!(fd.unregister_vec(&unreg(&ids[..7])).unwrap(), 7);
    assert_eq!(pins_outstanding() - pins0, 9);
    assert_eq!(vm_lck_kb() - lck0, 9 * 4);
    let info = fd.info().unwrap();
    assert_eq!((info.regions, info.pinned_pages), (9, 9));
    drop(fd);
    assert_eq!(pins_outstanding(), pins0, "close released the rest of the run");
    assert_eq!(vm_lck_kb(), lck0, "and its charge");
    drop(m);
    c.finish();
}

#[test]
fn lookups_stay_right_as_runs_come_and_go() {
    let c = Checked::start();
    let pins0 = pins_outstanding();
    let mut m = Mapping::rw(64 * PAGE);
    fill(m.bytes(), 3);
    let fd = open();
    // Runs of every shape, interleaved: single REGISTERs (one-region runs) and vectors of
    // adjacent pages (one run each), then most of them unregistered in an order that empties
    // runs at the front, in the middle and at the back, so the module's table frees and
    // compacts slots while the rest must still be found by id.
    let mut live: Vec<(u32, usize)> = Vec::new(); // (id, page)
    for round in 0..4 {
        for i in 0..4 {
            let page = round * 16 + i;
            live.push((fd.register(m.addr() + (page * PAGE) as u64, PAGE as u64, abi::ACCESS_ALL).unwrap(), page));
        }
        let first = round * 16 + 4;
        let mut entries = one_page_regions(m.addr(), first..first + 12);
        fd.register_vec(&mut entries).unwrap();
        live.extend(entries.iter().zip(first..).map(|(e, p)| (e.region_id, p)));
    }
    assert_eq!(live.len(), 64);
    let mut gone = Vec::new();
    for (n, (id, page)) in live.clone().into_iter().enumerate() {
        // Keep every fifth region, and everything of round 2's vector but its ends.
        let keep = n % 5 == 0 || (36..47).contains(&page);
        if !keep {
            fd.unregister(id).unwrap();
            gone.push(id);
        }
    }
    live.retain(|(id, _)| !gone.contains(id));
    let info = fd.info().unwrap();
    assert_eq!((info.regions as usize, info.pinned_pages as usize), (live.len(), live.len()));
    assert_eq!(pins_outstanding() - pins0, live.len() as i64);
    for id in &gone {
        assert_eq!(errno(fd.unregister(*id)), libc::ENOENT, "region {id} was unregistered");
    }
    // Every region left is found by its id and reaches its own page.
    let pattern: Vec<u8> = (0..PAGE).map(|i| (i * 3 + 1) as u8).collect();
    assert_eq!(fd.pwrite(&pattern, 0).unwrap(), PAGE);
    let descs: Vec<Desc> = live
        .iter()
        .enumerate()
        .map(|(tag, &(id, _))| Desc {
            tag: tag as u64,
            region_offset: 0,
            dev_offset: 0,
            len: PAGE as u64,
            region_id: id,
            dir: abi::DIR_FROM_DEVICE,
        })
        .collect();
    for chunk in descs.chunks(16) {
        run(&fd, chunk);
    }
    for &(_, page) in &live {
        assert_eq!(&m.bytes()[page * PAGE..(page + 1) * PAGE], &pattern[..], "page {page}");
    }
    let ids: Vec<u32> = live.iter().map(|(id, _)| *id).collect();
    assert_eq!(fd.unregister_vec(&unreg(&ids)).unwrap(), ids.len());
    empty(&fd, "after unregistering the rest");
    assert_eq!(pins_outstanding(), pins0);
    drop((fd, m));
    c.finish();
}

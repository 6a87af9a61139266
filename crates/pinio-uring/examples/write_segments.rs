//! Why registered buffers made 1 MiB O_DIRECT writes slower than plain ones
//! (issue 15): the block requests each write becomes. 1 MiB sequential
//! writes at QD4 through the uring queue with (a) a registered region of
//! 4 KiB pages (what `Device::alloc` makes), (b) plain unregistered
//! buffers, (c) a registered region of transparent huge pages, alternating;
//! for each: IOPS and the disk's completed write requests per write (from
//! `/sys/block/<disk>/stat`, so the disk must be otherwise quiet-ish).
//!
//! ```text
//! cargo run --release -p pinio-uring --example write_segments -- FILE DISK [SECS] [REPEATS]
//! # e.g. FILE=/var/tmp/pinio-bench-1024M.dat DISK=vda (the scratch file is overwritten)
//! ```
//!
//! A fixed buffer reaches the block layer as one bio_vec per registered
//! folio; 4 KiB pages give 256 of them per MiB, one more than a virtio disk
//! with `max_segments` 254 takes, so every write is split in two requests.
//! Plain buffers are pinned per IO and physically contiguous pages merge
//! into fewer segments; huge pages make one segment per 2 MiB folio.

use pinio_core::{Device, DmaBuf, HugePages, Op, Region};
use pinio_uring::{UringDevice, UringOptions};
use std::time::{Duration, Instant};

const BLOCK: usize = 1 << 20;
const DEPTH: usize = 4;

fn disk_writes(disk: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string(format!("/sys/block/{disk}/stat"))?;
    // Field 5 (index 4): writes completed.
    Ok(stat.split_whitespace().nth(4).ok_or("short stat")?.parse()?)
}

fn run(dev: &UringDevice, region: &Region, disk: &str, secs: f64) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let span = dev.capabilities().device_size / BLOCK as u64;
    let mut q = dev.queue(DEPTH)?;
    let mut next = 0u64;
    let mut off = || {
        let o = next % span * BLOCK as u64;
        next += 1;
        o
    };
    for i in 0..DEPTH {
        q.push(Op::write(region.slice(i * BLOCK, BLOCK)?, off(), i as u64))?;
    }
    let (w0, t0) = (disk_writes(disk)?, Instant::now());
    let mut ios = 0u64;
    let mut out = Vec::with_capacity(DEPTH);
    while t0.elapsed() < Duration::from_secs_f64(secs) {
        out.clear();
        q.wait(1, &mut out)?;
        for c in out.drain(..) {
            c.result?;
            ios += 1;
            q.push(Op::write(c.slice, off(), c.tag)).map_err(|r| r.error)?;
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    while q.in_flight() > 0 {
        out.clear();
        q.wait(q.in_flight(), &mut out)?;
        ios += out.len() as u64;
    }
    let requests = disk_writes(disk)? - w0;
    Ok((ios as f64 / elapsed, requests as f64 / ios as f64))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: write_segments FILE DISK [SECS] [REPEATS]")?;
    let disk = args.next().ok_or("usage: write_segments FILE DISK [SECS] [REPEATS]")?;
    let secs: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2.0);
    let repeats: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let fixed = UringDevice::open(&path, UringOptions::default())?;
    let plain = UringDevice::open(&path, UringOptions { fixed_buffers: false, ..UringOptions::default() })?;
    let small = fixed.alloc(DEPTH * BLOCK)?;
    let huge =
        fixed.register(DmaBuf::builder(DEPTH * BLOCK).huge_pages(HugePages::Transparent).populate(true).build()?)?;
    let unregistered = plain.alloc(DEPTH * BLOCK)?;
    let cases: [(&str, &UringDevice, &Region); 3] = [
        ("fixed, 4 KiB pages", &fixed, &small),
        ("plain", &plain, &unregistered),
        ("fixed, huge pages", &fixed, &huge),
    ];
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); cases.len()];
    for rep in 0..repeats {
        for k in 0..cases.len() {
            let i = (rep + k) % cases.len();
            let (_, dev, region) = cases[i];
            results[i].push(run(dev, region, &disk, secs)?);
        }
    }
    println!(
        "1 MiB sequential O_DIRECT writes, QD{DEPTH}, {secs} s per run, {repeats} interleaved repeats: median [min-max]"
    );
    for (i, (name, _, _)) in cases.iter().enumerate() {
        let mut iops: Vec<f64> = results[i].iter().map(|r| r.0).collect();
        let mut reqs: Vec<f64> = results[i].iter().map(|r| r.1).collect();
        iops.sort_by(|a, b| a.total_cmp(b));
        reqs.sort_by(|a, b| a.total_cmp(b));
        let m = |v: &[f64]| v[v.len() / 2];
        println!(
            "  {name:<20} IOPS {:7.0} [{:.0}-{:.0}]   disk write requests per write {:.2} [{:.2}-{:.2}]",
            m(&iops),
            iops[0],
            iops[iops.len() - 1],
            m(&reqs),
            reqs[0],
            reqs[reqs.len() - 1]
        );
    }
    Ok(())
}

//! Mirroring: one registered region written to two files of one domain.
//!
//! ```sh
//! cargo run --release -p pinio-examples --example mirror              # uring, scratch files in /var/tmp
//! cargo run --release -p pinio-examples --example mirror -- copy      # the same on the copy backend
//! cargo run --release -p pinio-examples --example mirror -- uring:/var/tmp/a uring:/var/tmp/b
//! ```
//!
//! The two files are opened in one [`pinio::Domain`] (`pinio::open`, then
//! `pinio::open_in(first.domain(), …)`): the region is registered (pinned)
//! once and both files' queues accept its slices. Each block is written from
//! the same slice to both files, with no CPU copy between them; then both
//! files are read back into a second region and compared with what was
//! written. With no arguments the example makes its scratch files under
//! `/var/tmp` (a real file system: O_DIRECT needs one) and removes them.
//! It prints each device's statistics and, last, the bytes the CPU copied
//! in total: `bytes_copied 0` on a zero-copy backend.
use pinio::{Completion, Device, Op, Queue, Slice};

const BLOCK: usize = 64 << 10;
const BLOCKS: usize = 16;
const DEPTH: usize = 8;

/// Pushes every op in `ops` through `q`, keeping up to `DEPTH` in flight;
/// returns the slices by tag, each checked to have moved all its bytes.
fn run_all(q: &mut dyn Queue, ops: Vec<Op>) -> pinio::Result<Vec<Slice>> {
    let n = ops.len();
    let mut slices: Vec<Option<Slice>> = (0..n).map(|_| None).collect();
    let mut pending = ops.into_iter();
    let mut done: Vec<Completion> = Vec::new();
    let mut finished = 0;
    while finished < n {
        while q.in_flight() < DEPTH {
            let Some(op) = pending.next() else { break };
            q.push(op).map_err(|r| r.error)?;
        }
        done.clear();
        q.wait(1, &mut done)?;
        for c in done.drain(..) {
            let moved = c.result?;
            if moved != c.slice.len() {
                return Err(pinio::Error::Unsupported {
                    what: format!("a short transfer ({moved} of {} bytes)", c.slice.len()),
                    hint: "the files must be at least BLOCK * BLOCKS bytes".into(),
                });
            }
            slices[c.tag as usize] = Some(c.slice);
            finished += 1;
        }
    }
    Ok(slices.into_iter().map(|s| s.expect("every tag completed once")).collect())
}

/// Removes the scratch files when the example made them, however it ends.
struct Scratch(Vec<std::path::PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut scratch = Scratch(Vec::new());
    let specs: Vec<String> = match args.as_slice() {
        [a, b] => vec![a.clone(), b.clone()],
        [] | [_] => {
            let backend = args.first().map_or("uring", String::as_str);
            (0..2)
                .map(|i| {
                    let p = std::path::PathBuf::from(format!("/var/tmp/pinio-mirror-{}-{i}.dat", std::process::id()));
                    std::fs::File::create(&p)?.set_len((BLOCK * BLOCKS) as u64)?;
                    scratch.0.push(p.clone());
                    Ok(format!("{backend}:{}", p.display()))
                })
                .collect::<std::io::Result<_>>()?
        }
        _ => return Err("usage: mirror [BACKEND | SPEC_A SPEC_B]".into()),
    };
    let first = pinio::open(&specs[0])?;
    let second = pinio::open_in(first.domain(), &specs[1])?;
    println!("domain: {:?}", first.domain());
    let devices: [&dyn Device; 2] = [&*first, &*second];

    // One registration, used by both files.
    let src = first.domain().alloc(BLOCK * BLOCKS)?;
    let mut blocks: Vec<Slice> = (0..BLOCKS).map(|i| src.slice(i * BLOCK, BLOCK)).collect::<Result<_, _>>()?;
    for (i, b) in blocks.iter_mut().enumerate() {
        b.iter_mut().enumerate().for_each(|(j, x)| *x = (i * 31 + j * 7 + j / 4096) as u8);
    }
    let expected: Vec<Vec<u8>> = blocks.iter().map(|b| b.to_vec()).collect();
    for dev in devices {
        let mut q = dev.queue(DEPTH)?;
        let ops = blocks.into_iter().enumerate().map(|(i, s)| Op::write(s, (i * BLOCK) as u64, i as u64)).collect();
        blocks = run_all(&mut *q, ops)?;
    }

    // Read both files back into one other region of the domain and compare.
    let dst = second.alloc(BLOCK * BLOCKS)?;
    for dev in devices {
        let mut q = dev.queue(DEPTH)?;
        let reads = (0..BLOCKS).map(|i| Ok(Op::read(dst.slice(i * BLOCK, BLOCK)?, (i * BLOCK) as u64, i as u64)));
        let back = run_all(&mut *q, reads.collect::<pinio::Result<_>>()?)?;
        if let Some(i) = (0..BLOCKS).find(|&i| back[i][..] != expected[i][..]) {
            return Err(format!("{}: block {i} differs from what was written", dev.describe()).into());
        }
    }
    drop(blocks);

    let mut copied = 0;
    for dev in devices {
        let s = dev.stats();
        println!("{}\n  {s}", dev.describe());
        copied += s.bytes_copied;
    }
    println!(
        "both files verified: {} bytes each, from one registration ({} pins in the domain)",
        BLOCK * BLOCKS,
        first.domain().stats().pins
    );
    println!("bytes_copied {copied}");
    Ok(())
}

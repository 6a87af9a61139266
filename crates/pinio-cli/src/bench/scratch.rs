//! The scratch file every backend reads: real data, written, never
//! fallocated (direct reads of unwritten extents may skip the device).

use crate::CliResult;
use rand::{RngCore, SeedableRng, rngs::StdRng};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Creates (or reuses, when it exists with the right size) `pinio-bench-<size>.dat` in `dir`.
pub fn ensure(dir: &Path, size: u64, progress: &indicatif::ProgressBar) -> CliResult<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(format!("pinio-bench-{}M.dat", size >> 20));
    if std::fs::metadata(&path).map(|m| m.len() == size).unwrap_or(false) {
        return Ok(path);
    }
    progress.set_message(format!("writing scratch file {} ({} MiB of random data)", path.display(), size >> 20));
    let tmp = path.with_extension("partial");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let mut rng = StdRng::seed_from_u64(0x91a10);
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < size {
        rng.fill_bytes(&mut block);
        let n = block.len().min((size - written) as usize);
        f.write_all(&block[..n])?;
        written += n as u64;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Drops the file's pages from the page cache (`POSIX_FADV_DONTNEED`).
pub fn drop_cache(path: &Path) -> CliResult {
    let f = File::open(path)?;
    // SAFETY: fadvise on an open fd has no memory-safety preconditions.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if r != 0 {
        return Err(format!("posix_fadvise(DONTNEED) on {}: errno {r}", path.display()).into());
    }
    Ok(())
}

/// Reads the whole file once through the page cache so it is resident.
pub fn warm_cache(path: &Path) -> CliResult {
    let mut f = File::open(path)?;
    std::io::copy(&mut f, &mut std::io::sink())?;
    Ok(())
}

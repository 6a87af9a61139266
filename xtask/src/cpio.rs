//! A minimal writer for the `newc` cpio format the kernel unpacks as initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst).

use std::io::Write;

use anyhow::Result;

/// What an archive entry is.
pub enum Kind<'a> {
    Dir,
    File(&'a [u8]),
    CharDev {
        major: u32,
        minor: u32,
    },
    /// A symbolic link to the given target.
    Symlink(&'a str),
}

/// Writes entries of a newc archive; call [`Writer::finish`] at the end.
pub struct Writer<W: Write> {
    out: W,
    ino: u32,
    written: usize,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Self { out, ino: 1, written: 0 }
    }

    /// Adds one entry; `path` has no leading slash; `perm` are the permission bits.
    pub fn add(&mut self, path: &str, perm: u32, kind: Kind<'_>) -> Result<()> {
        let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match kind {
            Kind::Dir => (0o040000 | perm, &[], (0, 0)),
            Kind::File(data) => (0o100000 | perm, data, (0, 0)),
            Kind::CharDev { major, minor } => (0o020000 | perm, &[], (major, minor)),
            Kind::Symlink(target) => (0o120000 | perm, target.as_bytes(), (0, 0)),
        };
        self.entry(path, mode, data, rdev)
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) -> Result<()> {
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: fixed, so the archive is reproducible
            u32::try_from(data.len())?,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1)?,
            0, // check
        ];
        self.ino += 1;
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08X}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    /// Writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.entry("TRAILER!!!", 0, &[], (0, 0))?;
        Ok(self.out)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len();
        Ok(())
    }

    fn pad(&mut self) -> Result<()> {
        let rem = self.written % 4;
        if rem != 0 {
            self.put(&[0u8; 3][..4 - rem])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_and_alignment() {
        let mut w = Writer::new(Vec::new());
        w.add("init", 0o755, Kind::File(b"#!x\n")).unwrap();
        let out = w.finish().unwrap();
        assert!(out.starts_with(b"070701"));
        // header 110 bytes + "init\0" = 115 -> padded to 116, then 4 data bytes
        assert_eq!(&out[116..120], b"#!x\n");
        assert_eq!(out.len() % 4, 0);
        let trailer = out.windows(10).any(|w| w == b"TRAILER!!!");
        assert!(trailer);
        // mode field of the first entry: regular file 0755
        assert_eq!(&out[14..22], b"000081ED");
    }

    #[test]
    fn symlink_stores_its_target_as_data() {
        let mut w = Writer::new(Vec::new());
        w.add("bin/sh", 0o777, Kind::Symlink("/bin/busybox")).unwrap();
        let out = w.finish().unwrap();
        assert_eq!(&out[14..22], b"0000A1FF");
        // header 110 + "bin/sh\0" = 117 -> 120
        assert_eq!(&out[120..132], b"/bin/busybox");
    }

    #[test]
    fn char_device_numbers() {
        let mut w = Writer::new(Vec::new());
        w.add("dev/console", 0o600, Kind::CharDev { major: 5, minor: 1 }).unwrap();
        let out = w.finish().unwrap();
        // rdevmajor is field 10 (0-based 9): offset 6 + 9*8
        assert_eq!(&out[78..86], b"00000005");
        assert_eq!(&out[86..94], b"00000001");
    }
}

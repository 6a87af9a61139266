//! Channels: disjoint windows of the echo device's on-board memory, each one a device of its
//! session's domain.
//!
//! A channel is written after the device node in a location:
//!
//! | location | window |
//! |---|---|
//! | `/dev/pinio` | the whole device memory |
//! | `/dev/pinio@4M+4M` | `len` bytes from `base`: `@BASE+LEN` |
//! | `/dev/pinio#1/2` | part 1 (from 0) of 2 equal parts: `#INDEX/COUNT` |
//!
//! `BASE` and `LEN` are decimal or `0x` hexadecimal, with an optional binary suffix `K`, `M` or
//! `G` (KiB, MiB, GiB). `COUNT` equal parts are `mem_size / COUNT` bytes each (any remainder at
//! the end of the memory belongs to no part). In a selection string the location follows the
//! backend: `kmod:/dev/pinio#0/2`.
//!
//! The device address space of a channel is `0..len`; its queues translate device offset `o` to
//! `base + o` in the module's descriptors.

use pinio_core::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Which part of the device memory a [`Channel`] names, before it is resolved against the
/// memory's size ([`Channel::window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    /// The whole device memory (the default channel).
    Whole,
    /// `len` bytes from `base` (`@BASE+LEN`).
    Range {
        /// First byte of the window in device memory.
        base: u64,
        /// Length of the window in bytes.
        len: u64,
    },
    /// Part `index` of `count` equal parts (`#INDEX/COUNT`), `index < count`.
    Part {
        /// Which part, from 0.
        index: u64,
        /// How many parts the memory is cut into, at least 1.
        count: u64,
    },
}

/// A channel of the echo device: its device node and its part of the device memory.
///
/// ```
/// use pinio_kmod::{Channel, Span, Window};
/// let c: Channel = "/dev/pinio#1/2".parse()?;
/// assert_eq!(c.span, Span::Part { index: 1, count: 2 });
/// assert_eq!(c.window(16 << 20)?, Window { base: 8 << 20, len: 8 << 20 });
/// assert_eq!(Channel::parse("/dev/pinio@4M+0x1000")?.window(16 << 20)?, Window { base: 4 << 20, len: 4096 });
/// assert_eq!(Channel::parse("/dev/pinio@4M+4M")?.to_string(), "/dev/pinio@4M+4M");
/// # Ok::<(), pinio_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Channel {
    /// The device node (`/dev/pinio`).
    pub path: PathBuf,
    /// The part of its memory.
    pub span: Span,
}

/// A resolved channel: bytes `[base, base + len)` of device memory, `len > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// First byte in device memory.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Window {
    /// One past the last byte (`base + len`; a resolved window never overflows).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }

    /// Whether the two windows share a byte.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.base < other.end() && other.base < self.end()
    }

    /// The device-memory offset of offset `offset` of the channel. The caller has checked
    /// `offset + n <= len` (the device's bounds), so the sum stays inside device memory.
    #[inline]
    pub fn translate(&self, offset: u64) -> u64 {
        self.base + offset
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", Size(self.base), Size(self.end()))
    }
}

fn invalid(location: &str, reason: impl Into<String>) -> Error {
    Error::InvalidTarget { spec: format!("kmod:{location}"), reason: reason.into() }
}

/// Parses `123`, `0x1f`, `4K`, `2M`, `1G`, `0x10M`.
fn parse_size(location: &str, what: &str, s: &str) -> Result<u64> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let (digits, radix) = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (digits, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(invalid(
            location,
            format!("{what} {s:?} is not a number (decimal or 0x hex, optional K/M/G suffix)"),
        ));
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .and_then(|v| v.checked_mul(1u64 << shift))
        .ok_or_else(|| invalid(location, format!("{what} {s:?} does not fit in 64 bits")))
}

fn parse_count(location: &str, what: &str, s: &str) -> Result<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(location, format!("{what} {s:?} is not a decimal number")));
    }
    s.parse::<u64>().map_err(|_| invalid(location, format!("{what} {s:?} does not fit in 64 bits")))
}

impl Channel {
    /// The whole device memory of `path`.
    pub fn whole(path: impl Into<PathBuf>) -> Channel {
        Channel { path: path.into(), span: Span::Whole }
    }

    /// Parses a location (`/dev/pinio`, `/dev/pinio@BASE+LEN`, `/dev/pinio#INDEX/COUNT`); a
    /// location that does not parse is [`Error::InvalidTarget`].
    pub fn parse(location: &str) -> Result<Channel> {
        let split = location.rfind(['@', '#']);
        let Some(at) = split else {
            if location.is_empty() {
                return Err(invalid(location, "no device node (expected e.g. /dev/pinio)"));
            }
            return Ok(Channel::whole(location));
        };
        let (path, rest) = (&location[..at], &location[at + 1..]);
        if path.is_empty() {
            return Err(invalid(location, "no device node before the channel (expected e.g. /dev/pinio#0/2)"));
        }
        let span = if location.as_bytes()[at] == b'@' {
            let Some((base, len)) = rest.split_once('+') else {
                return Err(invalid(location, "a channel range is @BASE+LEN (e.g. @4M+4M)"));
            };
            Span::Range { base: parse_size(location, "base", base)?, len: parse_size(location, "length", len)? }
        } else {
            let Some((index, count)) = rest.split_once('/') else {
                return Err(invalid(location, "a channel part is #INDEX/COUNT (e.g. #1/2)"));
            };
            let (index, count) = (parse_count(location, "index", index)?, parse_count(location, "count", count)?);
            if count == 0 {
                return Err(invalid(location, "a memory cannot be cut into 0 parts"));
            }
            if index >= count {
                return Err(invalid(location, format!("part {index} of {count} does not exist (parts count from 0)")));
            }
            Span::Part { index, count }
        };
        Ok(Channel { path: PathBuf::from(path), span })
    }

    /// The device node.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The window of a device memory of `mem_size` bytes this channel names:
    /// [`Error::ZeroLength`] for an empty one, [`Error::OutOfBounds`] for one reaching past the
    /// end of the memory.
    pub fn window(&self, mem_size: u64) -> Result<Window> {
        let (base, len) = match self.span {
            Span::Whole => (0, mem_size),
            Span::Range { base, len } => (base, len),
            Span::Part { index, count } => {
                let part = mem_size / count.max(1);
                (index.saturating_mul(part), part)
            }
        };
        if len == 0 {
            return Err(Error::ZeroLength { what: "channel" });
        }
        match base.checked_add(len) {
            Some(end) if end <= mem_size => Ok(Window { base, len }),
            _ => Err(Error::OutOfBounds { what: "echo device memory (channel)", offset: base, len, limit: mem_size }),
        }
    }
}

impl FromStr for Channel {
    type Err = Error;

    fn from_str(s: &str) -> Result<Channel> {
        Channel::parse(s)
    }
}

/// A byte count written the way the parser reads it: with the largest exact K/M/G suffix.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
            if v != 0 && v.trailing_zeros() >= shift {
                return write!(f, "{}{suffix}", v >> shift);
            }
        }
        write!(f, "{v}")
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        match self.span {
            Span::Whole => Ok(()),
            Span::Range { base, len } => write!(f, "@{}+{}", Size(base), Size(len)),
            Span::Part { index, count } => write!(f, "#{index}/{count}"),
        }
    }
}

/// The windows open in one session, kept disjoint.
#[derive(Debug, Default)]
pub(crate) struct ChannelTable {
    /// `base -> end` of every open window; no two overlap.
    open: BTreeMap<u64, u64>,
}

impl ChannelTable {
    /// Claims `w`, or names the open window it overlaps.
    pub(crate) fn claim(&mut self, w: Window) -> std::result::Result<(), Window> {
        // Windows are disjoint, so only the last one starting before `w` ends can overlap it.
        if let Some((&base, &end)) = self.open.range(..w.end()).next_back()
            && end > w.base
        {
            return Err(Window { base, len: end - base });
        }
        self.open.insert(w.base, w.end());
        Ok(())
    }

    /// Frees a window [`ChannelTable::claim`] granted.
    pub(crate) fn release(&mut self, w: Window) {
        if self.open.get(&w.base) == Some(&w.end()) {
            self.open.remove(&w.base);
        }
    }

    /// How many windows are open.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MEM: u64 = 16 << 20;

    fn invalid_reason(s: &str) -> String {
        match Channel::parse(s) {
            Err(Error::InvalidTarget { reason, .. }) => reason,
            other => panic!("{s:?}: expected InvalidTarget, got {other:?}"),
        }
    }

    #[test]
    fn locations_parse() {
        assert_eq!(Channel::parse("/dev/pinio").unwrap(), Channel::whole("/dev/pinio"));
        let c = Channel::parse("/dev/pinio@0x1000+4K").unwrap();
        assert_eq!(c.span, Span::Range { base: 4096, len: 4096 });
        assert_eq!(Channel::parse("/dev/pinio@1m+2G").unwrap().span, Span::Range { base: 1 << 20, len: 2 << 30 });
        assert_eq!(Channel::parse("/dev/pinio@7+9").unwrap().span, Span::Range { base: 7, len: 9 });
        assert_eq!(Channel::parse("/dev/pinio#3/4").unwrap().span, Span::Part { index: 3, count: 4 });
        // The last '@' or '#' starts the channel: the path may hold others.
        let c = Channel::parse("/tmp/a#b/pinio@0+1").unwrap();
        assert_eq!((c.path(), c.span), (Path::new("/tmp/a#b/pinio"), Span::Range { base: 0, len: 1 }));
    }

    #[test]
    fn bad_locations_say_what_is_wrong() {
        assert!(invalid_reason("").contains("no device node"));
        assert!(invalid_reason("@0+1").contains("no device node"));
        assert!(invalid_reason("/dev/pinio@4M").contains("@BASE+LEN"));
        assert!(invalid_reason("/dev/pinio@x+1").contains("base \"x\" is not a number"));
        assert!(invalid_reason("/dev/pinio@0+0x").contains("length \"0x\" is not a number"));
        assert!(invalid_reason("/dev/pinio@0+-1").contains("not a number"));
        assert!(invalid_reason("/dev/pinio@0+99999999999999999999").contains("64 bits"));
        assert!(invalid_reason("/dev/pinio@0+17179869184G").contains("64 bits"));
        assert!(invalid_reason("/dev/pinio#1").contains("#INDEX/COUNT"));
        assert!(invalid_reason("/dev/pinio#2/2").contains("does not exist"));
        assert!(invalid_reason("/dev/pinio#0/0").contains("0 parts"));
        assert!(invalid_reason("/dev/pinio#a/2").contains("index"));
        let e = Channel::parse("/dev/pinio#1").unwrap_err().to_string();
        assert!(e.contains("kmod:/dev/pinio#1"), "{e}");
    }

    #[test]
    fn windows_resolve_against_the_memory() {
        let w = |s: &str| Channel::parse(s).unwrap().window(MEM);
        assert_eq!(w("/dev/pinio").unwrap(), Window { base: 0, len: MEM });
        assert_eq!(w("/dev/pinio#0/2").unwrap(), Window { base: 0, len: MEM / 2 });
        assert_eq!(w("/dev/pinio#1/2").unwrap(), Window { base: MEM / 2, len: MEM / 2 });
        assert_eq!(w("/dev/pinio#2/3").unwrap(), Window { base: 2 * (MEM / 3), len: MEM / 3 });
        assert_eq!(w("/dev/pinio@15M+1M").unwrap(), Window { base: 15 << 20, len: 1 << 20 });
        assert!(
            matches!(w("/dev/pinio@15M+2M"), Err(Error::OutOfBounds { offset, len, limit, .. }) if offset == 15 << 20 && len == 2 << 20 && limit == MEM)
        );
        assert!(matches!(w("/dev/pinio@16M+1"), Err(Error::OutOfBounds { .. })));
        assert!(matches!(w("/dev/pinio@0xffffffffffffffff+2"), Err(Error::OutOfBounds { .. })), "overflowing end");
        assert!(matches!(w("/dev/pinio@0+0"), Err(Error::ZeroLength { what: "channel" })));
        // More parts than bytes: every part is empty.
        assert!(matches!(Channel::parse("/dev/pinio#0/5").unwrap().window(4), Err(Error::ZeroLength { .. })));
        assert!(matches!(Channel::whole("/dev/pinio").window(0), Err(Error::ZeroLength { .. })));
    }

    #[test]
    fn translation_adds_the_base() {
        let w = Window { base: 8 << 20, len: 4096 };
        assert_eq!(w.translate(0), 8 << 20);
        assert_eq!(w.translate(4095), (8 << 20) + 4095);
        assert_eq!(w.to_string(), "[8M, 8196K)");
    }

    #[test]
    fn the_table_refuses_overlaps_and_frees() {
        let mut t = ChannelTable::default();
        let (a, b) = (Window { base: 0, len: 8 }, Window { base: 8, len: 8 });
        t.claim(a).unwrap();
        t.claim(b).unwrap();
        assert_eq!(
            t.claim(Window { base: 7, len: 2 }),
            Err(b),
            "reaches into both: the last one starting before its end"
        );
        assert_eq!(t.claim(Window { base: 7, len: 1 }), Err(a));
        assert_eq!(t.claim(Window { base: 15, len: 100 }), Err(b));
        assert_eq!(t.claim(Window { base: 0, len: 16 }), Err(b));
        t.release(a);
        assert_eq!(t.len(), 1);
        t.claim(Window { base: 2, len: 6 }).unwrap();
        // Releasing a window that was never granted changes nothing.
        t.release(Window { base: 2, len: 1 });
        assert_eq!(t.len(), 2);
    }

    fn span() -> impl Strategy<Value = Span> {
        prop_oneof![
            Just(Span::Whole),
            (any::<u64>(), any::<u64>()).prop_map(|(base, len)| Span::Range { base, len }),
            (0u64..64, 0u32..20).prop_map(|(k, s)| Span::Range { base: k << s, len: (k + 1) << s }),
            (1u64..1000)
                .prop_flat_map(|count| (0..count, Just(count)))
                .prop_map(|(index, count)| Span::Part { index, count }),
        ]
    }

    proptest! {
        #[test]
        fn display_parses_back(span in span()) {
            let c = Channel { path: PathBuf::from("/dev/pinio"), span };
            prop_assert_eq!(Channel::parse(&c.to_string()).unwrap(), c);
        }

        #[test]
        fn a_resolved_window_lies_in_the_memory(span in span(), mem in 0u64..(1 << 40)) {
            if let Ok(w) = (Channel { path: PathBuf::from("/dev/pinio"), span }).window(mem) {
                prop_assert!(w.len > 0 && w.base.checked_add(w.len).is_some_and(|end| end <= mem));
                prop_assert!(w.translate(w.len - 1) < mem);
            }
        }

        #[test]
        fn parts_are_disjoint_and_equal(count in 1u64..64, mem in 1u64..(1 << 30)) {
            let ws: Vec<_> = (0..count)
                .filter_map(|index| Channel { path: "/dev/pinio".into(), span: Span::Part { index, count } }.window(mem).ok())
                .collect();
            prop_assert!(ws.is_empty() || ws.len() as u64 == count);
            let mut t = ChannelTable::default();
            for w in &ws {
                prop_assert_eq!(w.len, mem / count);
                prop_assert!(t.claim(*w).is_ok());
            }
        }

        #[test]
        fn the_table_grants_exactly_the_disjoint_windows(ws in proptest::collection::vec((0u64..200, 1u64..40), 1..30)) {
            let mut t = ChannelTable::default();
            let mut granted: Vec<Window> = Vec::new();
            for (base, len) in ws {
                let w = Window { base, len };
                let clash = granted.iter().find(|g| g.overlaps(&w)).copied();
                match t.claim(w) {
                    Ok(()) => { prop_assert!(clash.is_none(), "{w} granted over {clash:?}"); granted.push(w); }
                    Err(open) => { prop_assert!(open.overlaps(&w) && granted.contains(&open)); }
                }
            }
            prop_assert_eq!(t.len(), granted.len());
            for g in granted.drain(..) {
                t.release(g);
            }
            prop_assert_eq!(t.len(), 0);
        }
    }
}

//! The C view of [`crate::abi`]: renders `kmod/tests/pinio_uapi.h` and the ABI tables of
//! docs/kmod.md from the one Rust ABI file.
//!
//! Rust has no reflection, so this module keeps an explicit description of the ABI
//! ([`STRUCTS`], [`CONST_GROUPS`], [`IOCTLS`]) that is tied to the real items so it cannot drift:
//!
//! - every listed field is checked at compile time to exist with exactly the listed Rust type,
//!   and its offset ([`core::mem::offset_of!`]) and its structure's size are read from the real
//!   structure, never typed in;
//! - every constant value is read from [`crate::abi`] itself;
//! - [`check`] parses the text of `abi.rs` and fails if it has a public item, a structure or a
//!   field (name, type, order) the description lacks, or if a structure has padding;
//! - the doc comments of the C header are the doc comments of `abi.rs`, taken from its text.
//!
//! `crates/pinio-kmod/tests/abi_header.rs` compares the header and docs/kmod.md with the output
//! of this module byte for byte and compiles the header with `cc`; regenerate both with
//! `PINIO_BLESS=1 cargo test -p pinio-kmod --test abi_header`.
//!
//! `abi.rs` itself stays `core`-only because the kernel module compiles it; this module is
//! userspace only.

use crate::abi;
use core::mem::{align_of, offset_of, size_of};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The text of `abi.rs`, the source of the doc comments and of the completeness check.
pub const ABI_SOURCE: &str = include_str!("abi.rs");

/// The command that regenerates the files rendered by this module.
pub const BLESS_COMMAND: &str = "PINIO_BLESS=1 cargo test -p pinio-kmod --test abi_header";

/// A Rust integer type allowed in an ABI structure, with its C spelling.
trait CType {
    const NAME: &'static str;
}

impl CType for u32 {
    const NAME: &'static str = "uint32_t";
}

impl CType for u64 {
    const NAME: &'static str = "uint64_t";
}

impl CType for i32 {
    const NAME: &'static str = "int32_t";
}

/// One field of an ABI structure.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Field name, the same in Rust and C.
    pub name: &'static str,
    /// Rust type as listed in the description (checked to be the field's type).
    pub rust_type: &'static str,
    /// C type (`uint32_t`, `uint64_t`, `int32_t`).
    pub c_type: &'static str,
    /// `offset_of!` of the real field.
    pub offset: usize,
    /// Size of the field's type.
    pub size: usize,
    /// Alignment of the field's type in Rust.
    pub align: usize,
}

/// One `#[repr(C)]` structure of the ABI.
#[derive(Clone, Copy, Debug)]
pub struct Struct {
    /// Name in [`crate::abi`].
    pub rust_name: &'static str,
    /// C name, without `struct`.
    pub c_name: &'static str,
    /// `size_of` of the real structure.
    pub size: usize,
    /// `align_of` of the real structure (in Rust, on this target).
    pub align: usize,
    /// The fields, in declaration order.
    pub fields: &'static [Field],
}

/// How a constant is spelled in C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spelling {
    /// Decimal, `1u`.
    Decimal,
    /// Hexadecimal, `0xB7u`.
    Hex,
    /// A single bit, `(1u << 1)`.
    Bit,
    /// The OR of the [`Spelling::Bit`] constants of its group.
    BitMask,
}

/// A constant of the ABI.
#[derive(Clone, Copy, Debug)]
pub struct Const {
    /// Name in [`crate::abi`].
    pub rust_name: &'static str,
    /// C name: the Rust name prefixed with `PINIO_`.
    pub c_name: &'static str,
    /// The value, read from [`crate::abi`].
    pub value: u32,
    /// How the header spells it.
    pub spelling: Spelling,
}

/// An ioctl command of the ABI.
#[derive(Clone, Copy, Debug)]
pub struct Ioctl {
    /// Name, the same in Rust and C.
    pub name: &'static str,
    /// The number, read from [`crate::abi`].
    pub value: u32,
    /// Rust name of the argument structure.
    pub arg: &'static str,
    /// `size_of` the argument structure.
    pub arg_size: usize,
}

macro_rules! structs {
    ($($s:ident => $c:literal { $($f:ident: $t:ty),* $(,)? })*) => {
        /// The structures of [`crate::abi`], in source order.
        pub const STRUCTS: &[Struct] = &[$(
            Struct {
                rust_name: stringify!($s),
                c_name: $c,
                size: size_of::<abi::$s>(),
                align: align_of::<abi::$s>(),
                fields: &[$(Field {
                    name: stringify!($f),
                    rust_type: stringify!($t),
                    c_type: <$t as CType>::NAME,
                    offset: offset_of!(abi::$s, $f),
                    size: size_of::<$t>(),
                    align: align_of::<$t>(),
                }),*],
            },
        )*];
        // Each listed type is exactly the type of the field (compile error otherwise).
        $($(const _: fn(&abi::$s) -> &$t = |s| &s.$f;)*)*
    };
}

structs! {
    Info => "pinio_info" {
        abi_version: u32,
        page_size: u32,
        dev_mem_size: u64,
        max_pinned_pages: u64,
        pinned_pages: u64,
        queue_depth: u32,
        max_batch: u32,
        outstanding: u32,
        regions: u32,
    }
    RegisterArgs => "pinio_register" { addr: u64, len: u64, access: u32, region_id: u32 }
    UnregisterArgs => "pinio_unregister" { region_id: u32, reserved: u32 }
    VecArgs => "pinio_vec" { entries: u64, count: u32, flags: u32 }
    Desc => "pinio_desc" { tag: u64, region_offset: u64, dev_offset: u64, len: u64, region_id: u32, dir: u32 }
    SubmitArgs => "pinio_submit" { descs: u64, count: u32, flags: u32 }
    CompletionRecord => "pinio_completion" { tag: u64, bytes: u64, status: i32, reserved: u32 }
    ReapArgs => "pinio_reap" { records: u64, max: u32, min: u32, count: u32, reserved: u32 }
}

macro_rules! konst {
    ($name:ident, $spelling:ident) => {
        Const {
            rust_name: stringify!($name),
            c_name: concat!("PINIO_", stringify!($name)),
            value: abi::$name,
            spelling: Spelling::$spelling,
        }
    };
}

/// The constants of the C header, in groups (a blank line between groups).
pub const CONST_GROUPS: &[&[Const]] = &[
    &[konst!(ABI_VERSION, Decimal), konst!(IOC_MAGIC, Hex)],
    &[konst!(ACCESS_DEVICE_READ, Bit), konst!(ACCESS_DEVICE_WRITE, Bit), konst!(ACCESS_ALL, BitMask)],
    &[konst!(DIR_TO_DEVICE, Decimal), konst!(DIR_FROM_DEVICE, Decimal)],
    &[konst!(MAX_VEC, Decimal)],
];

/// Public constants of `abi.rs` that the header does not define, with their C equivalent: the
/// generic ioctl directions come from `<linux/ioctl.h>`.
pub const PROVIDED_BY_LINUX: &[(&str, &str, u32)] = &[
    ("IOC_NONE", "_IOC_NONE", abi::IOC_NONE),
    ("IOC_WRITE", "_IOC_WRITE", abi::IOC_WRITE),
    ("IOC_READ", "_IOC_READ", abi::IOC_READ),
];

macro_rules! ioctl {
    ($name:ident, $arg:ident) => {
        Ioctl { name: stringify!($name), value: abi::$name, arg: stringify!($arg), arg_size: size_of::<abi::$arg>() }
    };
}

/// The ioctl commands, with their argument structure.
pub const IOCTLS: &[Ioctl] = &[
    ioctl!(PINIO_IOC_INFO, Info),
    ioctl!(PINIO_IOC_REGISTER, RegisterArgs),
    ioctl!(PINIO_IOC_UNREGISTER, UnregisterArgs),
    ioctl!(PINIO_IOC_SUBMIT, SubmitArgs),
    ioctl!(PINIO_IOC_REAP, ReapArgs),
    ioctl!(PINIO_IOC_REGISTER_VEC, VecArgs),
    ioctl!(PINIO_IOC_UNREGISTER_VEC, VecArgs),
];

/// The fields of an ioctl number (generic Linux encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoctlFields {
    /// Direction, `IOC_READ | IOC_WRITE` bits.
    pub dir: u32,
    /// Type byte.
    pub ty: u32,
    /// Command number.
    pub nr: u32,
    /// Argument size in bytes.
    pub size: usize,
}

impl Ioctl {
    /// Splits the number into its fields.
    pub fn fields(&self) -> IoctlFields {
        IoctlFields {
            dir: self.value >> 30,
            ty: (self.value >> 8) & 0xff,
            nr: self.value & 0xff,
            size: ((self.value >> 16) & 0x3fff) as usize,
        }
    }

    /// The C macro that builds the number: `_IOR`, `_IOW` or `_IOWR`.
    pub fn c_macro(&self) -> &'static str {
        match self.fields().dir {
            d if d == abi::IOC_READ => "_IOR",
            d if d == abi::IOC_WRITE => "_IOW",
            d if d == abi::IOC_READ | abi::IOC_WRITE => "_IOWR",
            _ => "_IO",
        }
    }

    /// `_IOR(<magic>, 0x01, struct pinio_info)`.
    fn encoding(&self, magic: &str) -> String {
        format!("{}({magic}, 0x{:02X}, struct {})", self.c_macro(), self.fields().nr, struct_named(self.arg).c_name)
    }
}

fn struct_named(rust_name: &str) -> &'static Struct {
    STRUCTS.iter().find(|s| s.rust_name == rust_name).unwrap_or_else(|| panic!("no ABI structure {rust_name}"))
}

fn consts() -> impl Iterator<Item = &'static Const> {
    CONST_GROUPS.iter().flat_map(|g| g.iter())
}

// ---------------------------------------------------------------------------------------------
// Reading abi.rs

#[derive(Debug, Default)]
struct SourceField {
    name: String,
    ty: String,
    docs: Vec<String>,
}

#[derive(Debug, Default)]
struct SourceStruct {
    name: String,
    docs: Vec<String>,
    fields: Vec<SourceField>,
}

#[derive(Debug, Default)]
struct Source {
    spdx: String,
    consts: Vec<(String, Vec<String>)>,
    structs: Vec<SourceStruct>,
}

impl Source {
    fn const_docs(&self, name: &str) -> &[String] {
        self.consts.iter().find(|(n, _)| n == name).map_or(&[], |(_, d)| d)
    }

    fn strukt(&self, name: &str) -> Option<&SourceStruct> {
        self.structs.iter().find(|s| s.name == name)
    }
}

/// Parses the public items of `abi.rs` line by line (it is written in a plain, regular style).
fn parse(src: &str) -> Result<Source, Vec<String>> {
    let mut out = Source::default();
    let mut errors = Vec::new();
    let mut docs: Vec<String> = Vec::new();
    let mut attrs: Vec<String> = Vec::new();
    let mut current: Option<SourceStruct> = None;
    for (i, raw) in src.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if n == 1 {
            if !raw.starts_with("// SPDX-License-Identifier: ") {
                errors.push("abi.rs:1: expected the SPDX line".to_owned());
            }
            out.spdx = raw.to_owned();
        }
        if let Some(doc) = line.strip_prefix("///") {
            docs.push(doc.strip_prefix(' ').unwrap_or(doc).to_owned());
            continue;
        }
        if line.starts_with("#[") {
            attrs.push(line.to_owned());
            continue;
        }
        if let Some(s) = current.as_mut() {
            if line == "}" {
                out.structs.extend(current.take());
            } else if let Some(rest) = line.strip_prefix("pub ") {
                match rest.strip_suffix(',').and_then(|r| r.split_once(':')) {
                    Some((name, ty)) => s.fields.push(SourceField {
                        name: name.trim().to_owned(),
                        ty: ty.trim().to_owned(),
                        docs: std::mem::take(&mut docs),
                    }),
                    None => errors.push(format!("abi.rs:{n}: cannot read the field `{line}`")),
                }
            } else if !line.is_empty() && !line.starts_with("//") {
                errors.push(format!("abi.rs:{n}: unexpected line in `struct {}`: `{line}`", s.name));
            }
            docs.clear();
            attrs.clear();
            continue;
        }
        if line.starts_with("pub const fn ") {
            // The encoding helpers: not part of the C header.
        } else if let Some(rest) = line.strip_prefix("pub const ") {
            match rest.split_once(':') {
                Some((name, _)) => out.consts.push((name.trim().to_owned(), std::mem::take(&mut docs))),
                None => errors.push(format!("abi.rs:{n}: cannot read the constant `{line}`")),
            }
        } else if let Some(rest) = line.strip_prefix("pub struct ") {
            match rest.strip_suffix('{') {
                Some(name) => {
                    if !attrs.iter().any(|a| a == "#[repr(C)]") {
                        errors.push(format!("abi.rs:{n}: `struct {}` is not #[repr(C)]", name.trim()));
                    }
                    current = Some(SourceStruct {
                        name: name.trim().to_owned(),
                        docs: std::mem::take(&mut docs),
                        fields: Vec::new(),
                    });
                }
                None => errors.push(format!("abi.rs:{n}: cannot read the structure `{line}`")),
            }
        } else if line.starts_with("pub ") {
            errors.push(format!("abi.rs:{n}: abi_c.rs does not know how to render `{line}` in C"));
        }
        docs.clear();
        attrs.clear();
    }
    if let Some(s) = current {
        errors.push(format!("abi.rs: `struct {}` is not closed", s.name));
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Checks the description of this module against `abi.rs` and the real items: every public
/// constant and structure is described, every field is listed with its type and in order, no
/// structure has padding, every ioctl number encodes its argument's size, and every doc link
/// resolves. Returns the list of problems.
pub fn check() -> Result<(), Vec<String>> {
    let src = parse(ABI_SOURCE)?;
    let mut errors = Vec::new();

    // Structures: the same ones, in source order, with the same fields.
    let described: Vec<&str> = STRUCTS.iter().map(|s| s.rust_name).collect();
    let in_source: Vec<&str> = src.structs.iter().map(|s| s.name.as_str()).collect();
    if described != in_source {
        errors.push(format!("structures: abi.rs has {in_source:?}, abi_c.rs STRUCTS lists {described:?}"));
    }
    for s in STRUCTS {
        let Some(ss) = src.strukt(s.rust_name) else { continue };
        let described: Vec<(&str, &str)> = s.fields.iter().map(|f| (f.name, f.rust_type)).collect();
        let in_source: Vec<(&str, &str)> = ss.fields.iter().map(|f| (f.name.as_str(), f.ty.as_str())).collect();
        if described != in_source {
            errors.push(format!(
                "struct {}: abi.rs has the fields {in_source:?}, abi_c.rs STRUCTS lists {described:?}",
                s.rust_name
            ));
        }
        // Naturally aligned, in order, without padding: the same layout in C, on 32 and 64 bits.
        let mut end = 0;
        for f in s.fields {
            if f.offset != end {
                errors.push(format!(
                    "{}.{} is at offset {}, expected {end} (padding or order)",
                    s.rust_name, f.name, f.offset
                ));
            }
            if f.offset % f.align != 0 {
                errors.push(format!("{}.{} at offset {} is not naturally aligned", s.rust_name, f.name, f.offset));
            }
            end = f.offset + f.size;
        }
        if end != s.size {
            errors.push(format!("struct {} is {} bytes, its fields end at {end} (padding)", s.rust_name, s.size));
        }
        if ss.docs.is_empty() || ss.fields.iter().any(|f| f.docs.is_empty()) {
            errors.push(format!("struct {}: every structure and field needs a doc comment", s.rust_name));
        }
    }

    // Constants: every public constant of abi.rs is rendered exactly once or provided by Linux.
    let mut described = BTreeSet::new();
    let rendered = consts().map(|c| c.rust_name).chain(IOCTLS.iter().map(|i| i.name));
    for name in rendered.chain(PROVIDED_BY_LINUX.iter().map(|p| p.0)) {
        if !described.insert(name) {
            errors.push(format!("constant {name} is described twice in abi_c.rs"));
        }
    }
    let in_source: BTreeSet<&str> = src.consts.iter().map(|(n, _)| n.as_str()).collect();
    for missing in in_source.difference(&described) {
        errors.push(format!("constant {missing} of abi.rs is missing from abi_c.rs (CONST_GROUPS or IOCTLS)"));
    }
    for extra in described.difference(&in_source) {
        errors.push(format!("constant {extra} of abi_c.rs is not a `pub const` line of abi.rs"));
    }
    for c in consts() {
        if c.spelling == Spelling::Bit && !c.value.is_power_of_two() {
            errors.push(format!("{} = {:#x} is not a single bit", c.rust_name, c.value));
        }
    }
    for g in CONST_GROUPS {
        for c in g.iter().filter(|c| c.spelling == Spelling::BitMask) {
            let bits = g.iter().filter(|b| b.spelling == Spelling::Bit).fold(0, |acc, b| acc | b.value);
            if c.value & !bits != 0 || c.value == 0 {
                errors.push(format!("{} = {:#x} is not an OR of the bits of its group", c.rust_name, c.value));
            }
        }
    }

    // ioctls: the number is the generic encoding of (direction, magic, nr, argument size).
    for i in IOCTLS {
        let f = i.fields();
        if f.ty != abi::IOC_MAGIC || f.size != i.arg_size || f.dir == abi::IOC_NONE {
            errors.push(format!("{} = {:#x} does not encode IOC_MAGIC and the size of {}", i.name, i.value, i.arg));
        }
        if abi::ioc(f.dir, f.ty, f.nr, f.size) != i.value {
            errors.push(format!("{} = {:#x} does not round-trip through abi::ioc", i.name, i.value));
        }
        if !STRUCTS.iter().any(|s| s.rust_name == i.arg) {
            errors.push(format!("{}: argument {} is not in STRUCTS", i.name, i.arg));
        }
    }

    // Doc links resolve and no doc comment is missing.
    for (name, docs) in &src.consts {
        if described.contains(name.as_str()) && docs.is_empty() {
            errors.push(format!("constant {name} needs a doc comment"));
        }
        if let Err(e) = c_doc(docs) {
            errors.push(format!("{name}: {e}"));
        }
    }
    for s in &src.structs {
        for docs in std::iter::once(&s.docs).chain(s.fields.iter().map(|f| &f.docs)) {
            if let Err(e) = c_doc(docs) {
                errors.push(format!("struct {}: {e}", s.name));
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn source() -> Source {
    if let Err(errors) = check() {
        panic!(
            "crates/pinio-kmod/src/abi_c.rs no longer describes crates/pinio-kmod/src/abi.rs; update its tables:\n  {}",
            errors.join("\n  ")
        );
    }
    parse(ABI_SOURCE).unwrap_or_else(|e| panic!("{e:?}"))
}

// ---------------------------------------------------------------------------------------------
// Doc comments to C

/// The C spelling of a name written in code style in a doc comment of abi.rs, if it is an ABI
/// item: `ABI_VERSION` -> `PINIO_ABI_VERSION`, `Info` -> `struct pinio_info`,
/// `Info::max_batch` -> `pinio_info.max_batch`, `ACCESS_*` -> `PINIO_ACCESS_*`.
fn c_name_of(name: &str) -> Option<String> {
    if let Some(c) = consts().find(|c| c.rust_name == name) {
        return Some(c.c_name.to_owned());
    }
    if let Some(i) = IOCTLS.iter().find(|i| i.name == name) {
        return Some(i.name.to_owned());
    }
    if let Some(p) = PROVIDED_BY_LINUX.iter().find(|p| p.0 == name) {
        return Some(p.1.to_owned());
    }
    if let Some(s) = STRUCTS.iter().find(|s| s.rust_name == name) {
        return Some(format!("struct {}", s.c_name));
    }
    if let Some((s, f)) = name.split_once("::") {
        let s = STRUCTS.iter().find(|x| x.rust_name == s)?;
        let f = s.fields.iter().find(|x| x.name == f)?;
        return Some(format!("{}.{}", s.c_name, f.name));
    }
    let prefix = name.strip_suffix('*')?;
    consts().any(|c| c.rust_name.starts_with(prefix)).then(|| format!("PINIO_{name}"))
}

/// Turns the lines of a Rust doc comment into C comment lines: intra-doc links and code spans
/// naming ABI items become their C names; other code spans lose their backquotes.
fn c_doc(lines: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let mut c = String::new();
        let mut rest = line.as_str();
        while let Some(start) = rest.find(['`', '[']) {
            c.push_str(&rest[..start]);
            let tail = &rest[start..];
            let (name, link, after) = if let Some(t) = tail.strip_prefix("[`") {
                let end = t.find("`]").ok_or_else(|| format!("unclosed doc link in `{line}`"))?;
                (&t[..end], true, &t[end + 2..])
            } else if let Some(t) = tail.strip_prefix('`') {
                let end = t.find('`').ok_or_else(|| format!("unclosed code span in `{line}`"))?;
                (&t[..end], false, &t[end + 1..])
            } else {
                c.push('[');
                rest = &tail[1..];
                continue;
            };
            match c_name_of(name) {
                Some(cn) => {
                    if cn.starts_with("struct ") && c.ends_with(" an ") {
                        c.truncate(c.len() - " an ".len());
                        c.push_str(" a ");
                    }
                    c.push_str(&cn);
                }
                None if link => return Err(format!("doc link [`{name}`] names no item of the C ABI")),
                None => c.push_str(name),
            }
            rest = after;
        }
        c.push_str(rest);
        if c.contains("*/") || c.contains("/*") {
            return Err(format!("doc comment `{line}` would break a C comment"));
        }
        out.push(c);
    }
    Ok(out)
}

fn c_comment(out: &mut String, indent: &str, lines: &[String]) {
    match lines {
        [] => {}
        [one] => {
            let _ = writeln!(out, "{indent}/* {one} */");
        }
        _ => {
            let _ = writeln!(out, "{indent}/*");
            for l in lines {
                let _ = writeln!(out, "{indent} * {l}");
            }
            let _ = writeln!(out, "{indent} */");
        }
    }
}

fn docs_of(lines: &[String]) -> Vec<String> {
    c_doc(lines).unwrap_or_else(|e| panic!("{e}"))
}

fn c_value(group: &[Const], c: &Const) -> String {
    match c.spelling {
        Spelling::Decimal => format!("{}u", c.value),
        Spelling::Hex => format!("0x{:X}u", c.value),
        Spelling::Bit => format!("(1u << {})", c.value.trailing_zeros()),
        Spelling::BitMask => {
            let bits = group.iter().filter(|b| b.spelling == Spelling::Bit && c.value & b.value != 0);
            format!("({})", bits.map(|b| b.c_name).collect::<Vec<_>>().join(" | "))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outputs

/// The full text of `kmod/tests/pinio_uapi.h`.
///
/// # Panics
///
/// If the description of this module no longer matches `abi.rs` (see [`check`]).
pub fn c_header() -> String {
    let src = source();
    let mut h = String::new();
    let _ = writeln!(h, "{}", src.spdx);
    let _ = writeln!(
        h,
        "/*
 * The /dev/pinio ABI (version {}) for C clients.
 *
 * Generated from crates/pinio-kmod/src/abi.rs, the source of truth, by
 * pinio_kmod::abi_c::c_header(): do not edit. crates/pinio-kmod/tests/abi_header.rs checks
 * this file and docs/kmod.md against abi.rs; regenerate them with
 * {BLESS_COMMAND}
 */
#ifndef PINIO_UAPI_H
#define PINIO_UAPI_H

#include <linux/ioctl.h>
#include <stdint.h>",
        abi::ABI_VERSION
    );
    for g in CONST_GROUPS {
        h.push('\n');
        for c in *g {
            c_comment(&mut h, "", &docs_of(src.const_docs(c.rust_name)));
            let _ = writeln!(h, "#define {} {}", c.c_name, c_value(g, c));
        }
    }
    for s in STRUCTS {
        let ss = src.strukt(s.rust_name).expect("checked");
        h.push('\n');
        c_comment(&mut h, "", &docs_of(&ss.docs));
        let _ = writeln!(h, "struct {} {{ /* {} bytes */", s.c_name, s.size);
        for (f, sf) in s.fields.iter().zip(&ss.fields) {
            c_comment(&mut h, "\t", &docs_of(&sf.docs));
            let _ = writeln!(h, "\t{} {};", f.c_type, f.name);
        }
        let _ = writeln!(h, "}};");
    }
    h.push('\n');
    let magic = consts().find(|c| c.value == abi::IOC_MAGIC && c.rust_name == "IOC_MAGIC").expect("IOC_MAGIC");
    for i in IOCTLS {
        c_comment(&mut h, "", &docs_of(src.const_docs(i.name)));
        let _ = writeln!(h, "#define {} {} /* 0x{:08X} */", i.name, i.encoding(magic.c_name), i.value);
    }
    h.push('\n');
    let _ = writeln!(h, "/* The sizes of abi.rs; the ioctl numbers encode them. */");
    for s in STRUCTS {
        let _ =
            writeln!(h, "_Static_assert(sizeof(struct {0}) == {1}, \"struct {0} is {1} bytes\");", s.c_name, s.size);
    }
    h.push('\n');
    let _ = writeln!(h, "#endif /* PINIO_UAPI_H */");
    h
}

/// The markdown table of the ioctl commands for docs/kmod.md: name, encoding, number, argument.
pub fn ioctl_table_md() -> String {
    let mut t = String::from("| name | encoding | number | argument |\n|---|---|---|---|\n");
    let magic = format!("0x{:X}", abi::IOC_MAGIC);
    for i in IOCTLS {
        let s = struct_named(i.arg);
        let _ = writeln!(
            t,
            "| `{}` | `{}` | `0x{:08X}` | `struct {}` ({} bytes) |",
            i.name,
            i.encoding(&magic),
            i.value,
            s.c_name,
            s.size
        );
    }
    t
}

/// The markdown table of the structures for docs/kmod.md: C name, Rust name, size, fields with
/// their offsets.
pub fn struct_table_md() -> String {
    let mut t = String::from("| C | Rust (`pinio_kmod::abi`) | size | fields (offset) |\n|---|---|---|---|\n");
    for s in STRUCTS {
        let fields: Vec<String> = s.fields.iter().map(|f| format!("`{}` ({})", f.name, f.offset)).collect();
        let _ = writeln!(t, "| `struct {}` | `{}` | {} | {} |", s.c_name, s.rust_name, s.size, fields.join(", "));
    }
    t
}

/// A C translation unit that includes `pinio_uapi.h` and statically asserts that every constant,
/// ioctl number, structure size, field offset and field type equals the Rust one (alignment only
/// on LP64 targets: `uint64_t` is 4-aligned in i386 structures, with the same offsets).
pub fn c_layout_check() -> String {
    let mut c = String::from(
        "/* Generated by pinio_kmod::abi_c::c_layout_check(): pinio_uapi.h against abi.rs. */\n\
         #include <stddef.h>\n#include <stdint.h>\n#include \"pinio_uapi.h\"\n\n",
    );
    for k in consts() {
        let _ = writeln!(c, "_Static_assert({0} == {1}u, \"{0}\");", k.c_name, k.value);
    }
    for i in IOCTLS {
        let _ = writeln!(c, "_Static_assert({0} == 0x{1:08X}u, \"{0}\");", i.name, i.value);
    }
    for (_, name, value) in PROVIDED_BY_LINUX {
        let _ = writeln!(c, "_Static_assert({name} == {value}u, \"{name}\");");
    }
    for s in STRUCTS {
        let _ = writeln!(c, "\n_Static_assert(sizeof(struct {0}) == {1}, \"sizeof(struct {0})\");", s.c_name, s.size);
        let _ = writeln!(
            c,
            "#ifdef __LP64__\n_Static_assert(_Alignof(struct {0}) == {1}, \"_Alignof(struct {0})\");\n#endif",
            s.c_name, s.align
        );
        for f in s.fields {
            let _ = writeln!(
                c,
                "_Static_assert(offsetof(struct {0}, {1}) == {2}, \"offsetof(struct {0}, {1})\");",
                s.c_name, f.name, f.offset
            );
            let _ = writeln!(
                c,
                "_Static_assert(_Generic(((struct {0} *)0)->{1}, {2}: 1, default: 0), \"{0}.{1} is {2}\");",
                s.c_name, f.name, f.c_type
            );
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_matches_abi_rs() {
        if let Err(e) = check() {
            panic!("{}", e.join("\n"));
        }
    }

    #[test]
    fn parser_sees_every_item() {
        let src = parse(ABI_SOURCE).unwrap();
        assert_eq!(src.structs.len(), STRUCTS.len());
        assert!(src.consts.iter().any(|(n, _)| n == "PINIO_IOC_REAP"));
        assert!(src.spdx.starts_with("// SPDX-License-Identifier: "));
    }

    #[test]
    fn parser_rejects_unknown_items_and_bad_fields() {
        let bad = "// SPDX-License-Identifier: MIT\npub enum E { A }\n#[repr(C)]\npub struct S {\n    x: u32,\n}\n";
        let errors = parse(bad).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            parse("// SPDX-License-Identifier: MIT\npub struct T {\n    pub a: u32,\n}\n").unwrap_err()[0]
                .contains("repr(C)")
        );
    }

    #[test]
    fn doc_links_become_c_names() {
        let d = |s: &str| c_doc(&[s.to_owned()]).unwrap().remove(0);
        assert_eq!(d("fills an [`Info`]."), "fills a struct pinio_info.");
        assert_eq!(d("[`ReapArgs::min`] of `max`"), "pinio_reap.min of max");
        assert_eq!(d("set of `ACCESS_*` bits, [`ABI_VERSION`]"), "set of PINIO_ACCESS_* bits, PINIO_ABI_VERSION");
        assert_eq!(d("1..=[`Info::max_batch`]"), "1..=pinio_info.max_batch");
        assert!(c_doc(&["[`Nope`]".to_owned()]).is_err());
        assert!(c_doc(&["a `*/` b".to_owned()]).is_err());
    }

    #[test]
    fn ioctl_fields_decode() {
        let info = IOCTLS[0];
        assert_eq!(info.fields(), IoctlFields { dir: abi::IOC_READ, ty: abi::IOC_MAGIC, nr: 1, size: 48 });
        assert_eq!(info.c_macro(), "_IOR");
    }
}

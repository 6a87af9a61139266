//! The C header `kmod/tests/pinio_uapi.h` and the ABI tables and header of docs/kmod.md are
//! generated from `crates/pinio-kmod/src/abi.rs` (through `pinio_kmod::abi_c`); this test checks
//! them byte for byte and compiles the header with `cc` against the Rust layout.
//!
//! After an ABI change, regenerate them with
//! `PINIO_BLESS=1 cargo test -p pinio-kmod --test abi_header`.

use pinio_kmod::abi_c::{self, BLESS_COMMAND};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bless() -> bool {
    std::env::var_os("PINIO_BLESS").is_some_and(|v| v == "1")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Rewrites `path` with `want` under `PINIO_BLESS=1`, otherwise fails on the first difference.
fn compare_or_bless(rel: &str, have: &str, want: &str) {
    if have == want {
        return;
    }
    let path = repo().join(rel);
    if bless() {
        std::fs::write(&path, want).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        eprintln!("blessed {rel}");
        return;
    }
    let (h, w): (Vec<&str>, Vec<&str>) = (have.lines().collect(), want.lines().collect());
    let line = h.iter().zip(&w).position(|(a, b)| a != b).unwrap_or(h.len().min(w.len()));
    panic!(
        "{rel} is not what crates/pinio-kmod/src/abi.rs generates (first difference at line {}):\n  \
         file:      {:?}\n  generated: {:?}\n\
         If abi.rs changed on purpose, regenerate it with\n  {BLESS_COMMAND}\nand review the diff.",
        line + 1,
        h.get(line).copied().unwrap_or("<end of file>"),
        w.get(line).copied().unwrap_or("<end of text>"),
    );
}

#[test]
fn description_matches_abi_rs() {
    if let Err(errors) = abi_c::check() {
        panic!("pinio_kmod::abi_c no longer describes abi.rs:\n  {}", errors.join("\n  "));
    }
}

#[test]
fn c_header_is_generated_from_abi_rs() {
    let rel = "kmod/tests/pinio_uapi.h";
    compare_or_bless(rel, &read(&repo().join(rel)), &abi_c::c_header());
}

/// The generated blocks of docs/kmod.md, each between `<!-- abi:NAME:begin -->` and
/// `<!-- abi:NAME:end -->` lines.
fn doc_blocks() -> [(&'static str, String); 3] {
    [
        ("ioctls", abi_c::ioctl_table_md()),
        ("structs", abi_c::struct_table_md()),
        ("header", format!("```c\n{}```\n", abi_c::c_header())),
    ]
}

/// Replaces the text between each pair of markers with its generated block.
fn splice_docs(doc: &str) -> String {
    let mut out = doc.to_owned();
    for (name, block) in doc_blocks() {
        let (begin, end) = (format!("<!-- abi:{name}:begin -->\n"), format!("<!-- abi:{name}:end -->"));
        let b = out.find(&begin).unwrap_or_else(|| panic!("docs/kmod.md lacks the line {begin:?}")) + begin.len();
        let e =
            b + out[b..].find(&end).unwrap_or_else(|| panic!("docs/kmod.md lacks the line {end:?} after {begin:?}"));
        assert!(out[e + end.len()..].find(&begin).is_none(), "docs/kmod.md has {begin:?} twice");
        out.replace_range(b..e, &block);
    }
    out
}

#[test]
fn docs_abi_section_is_generated_from_abi_rs() {
    let rel = "docs/kmod.md";
    let have = read(&repo().join(rel));
    compare_or_bless(rel, &have, &splice_docs(&have));
}

#[test]
fn splice_replaces_only_between_markers() {
    let doc = "a\n<!-- abi:ioctls:begin -->\nold\n<!-- abi:ioctls:end -->\nb\n<!-- abi:structs:begin -->\n\
               <!-- abi:structs:end -->\n<!-- abi:header:begin -->\nx\ny\n<!-- abi:header:end -->\nc\n";
    let new = splice_docs(doc);
    assert!(new.starts_with("a\n<!-- abi:ioctls:begin -->\n| name |"));
    assert!(new.contains("|\n<!-- abi:ioctls:end -->\nb\n"));
    assert!(new.ends_with("#endif /* PINIO_UAPI_H */\n```\n<!-- abi:header:end -->\nc\n"));
    assert_eq!(splice_docs(&new), new);
}

fn cc_available() -> bool {
    Command::new("cc").arg("--version").output().is_ok_and(|o| o.status.success())
}

fn run_cc(what: &str, args: &[&str], file: &Path) -> Result<(), String> {
    let include = repo().join("kmod/tests");
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-D_GNU_SOURCE"])
        .args(args)
        .arg("-I")
        .arg(&include)
        .arg(file)
        .output()
        .map_err(|e| format!("running cc: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("cc {args:?} {what} failed:\n{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// The header is valid C and has, in C, the sizes, offsets, field types, constants and ioctl
/// numbers of abi.rs: on this target and, if the compiler can, on 32-bit x86. The C programs of
/// kmod/tests still compile against it.
#[test]
fn c_compiler_agrees_with_rust_layout() {
    if !cc_available() {
        eprintln!("note: no `cc` found; skipping the C compilation of kmod/tests/pinio_uapi.h");
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("abi_header");
    std::fs::create_dir_all(&dir).unwrap();
    let check = dir.join("pinio_uapi_check.c");
    std::fs::write(&check, abi_c::c_layout_check()).unwrap();
    run_cc("pinio_uapi_check.c", &["-pedantic"], &check).unwrap_or_else(|e| panic!("{e}"));

    // 32-bit callers: same sizes and offsets (freestanding: no 32-bit libc headers needed).
    let probe = dir.join("probe32.c");
    std::fs::write(&probe, "#include <stdint.h>\n#include <linux/ioctl.h>\n").unwrap();
    let m32 = ["-m32", "-ffreestanding", "-pedantic"];
    if run_cc("probe", &m32, &probe).is_ok() {
        run_cc("pinio_uapi_check.c", &m32, &check).unwrap_or_else(|e| panic!("{e}"));
    } else {
        eprintln!("note: `cc -m32` cannot compile here; skipping the 32-bit layout check");
    }

    // Every C program of kmod/tests that uses the header still compiles (as xtask builds them).
    for e in std::fs::read_dir(repo().join("kmod/tests")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "c") && read(&p).contains("\"pinio_uapi.h\"") {
            run_cc(&p.display().to_string(), &[], &p).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

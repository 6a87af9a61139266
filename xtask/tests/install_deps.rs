//! `xtask/scripts/install-deps.sh --print-sources ROOT`: the extra apt
//! sources are derived from the machine's own Debian source (deb822 or
//! one-line), never from a fixed host.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install-deps.sh");

/// A fresh root directory holding `files` (path relative to the root, content).
fn root(files: &[(&str, &str)]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pinio-install-deps-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("etc/apt/sources.list.d")).unwrap();
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

fn print_sources(root: &Path) -> Output {
    let out = Command::new("bash").arg(SCRIPT).arg("--print-sources").arg(root).output().unwrap();
    let _ = std::fs::remove_dir_all(root);
    out
}

/// The printed file, which must succeed.
fn derived(files: &[(&str, &str)]) -> String {
    let out = print_sources(&root(files));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// The value of `field` in a one-stanza deb822 text.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::trim))
}

const DEBIAN_SOURCES: &str = "\
Types: deb
# a comment inside the stanza
URIs: http://apt-cacher:3142/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://apt-cacher:3142/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

#[test]
fn deb822_main_archive_not_security() {
    let out = derived(&[("etc/apt/sources.list.d/debian.sources", DEBIAN_SOURCES)]);
    assert_eq!(field(&out, "Types"), Some("deb"), "{out}");
    assert_eq!(field(&out, "URIs"), Some("http://apt-cacher:3142/debian"), "{out}");
    assert_eq!(field(&out, "Suites"), Some("bookworm-backports trixie trixie-backports"), "{out}");
    assert_eq!(field(&out, "Components"), Some("main"), "{out}");
    assert_eq!(field(&out, "Signed-By"), Some("/usr/share/keyrings/debian-archive-keyring.gpg"), "{out}");
    assert!(out.contains("/etc/apt/sources.list.d/debian.sources"), "names where it came from: {out}");
}

#[test]
fn deb822_details() {
    // Field names in any case, continuation lines, several URIs, a disabled
    // stanza and a deb-src-only stanza first, and this script's own output
    // file (which must not feed itself).
    let sources = "\
Types: deb
URIs: http://disabled.invalid/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: http://src-only.invalid/debian
Suites: bookworm
Components: main

types: deb deb-src
uris: http://one.invalid/debian
  http://two.invalid/debian
suites: bookworm
  bookworm-updates
components: contrib main
";
    let own = "Types: deb\nURIs: http://stale.invalid/debian\nSuites: bookworm\nComponents: main\n";
    let out = derived(&[
        ("etc/apt/sources.list.d/a.sources", sources),
        ("etc/apt/sources.list.d/pinio-extra.sources", own),
        ("etc/apt/sources.list.d/ignored.sources.disabled", own),
    ]);
    assert_eq!(field(&out, "URIs"), Some("http://one.invalid/debian http://two.invalid/debian"), "{out}");
    assert_eq!(field(&out, "Signed-By"), None, "no keyring was named, so none is: {out}");
}

#[test]
fn deb822_inline_key_is_kept() {
    let sources = "\
Types: deb
URIs: http://apt-cacher:3142/debian
Suites: bookworm
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8lsD9K5ZS7mn2zsHcKbQs
 -----END PGP PUBLIC KEY BLOCK-----
";
    let out = derived(&[("etc/apt/sources.list.d/debian.sources", sources)]);
    assert!(
        out.contains("Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8lsD9K5ZS7mn2zsHcKbQs\n -----END PGP PUBLIC KEY BLOCK-----\n"),
        "{out}"
    );
}

#[test]
fn one_line_with_signed_by_and_proxy() {
    let list = "\
# deb http://commented.invalid/debian bookworm main
deb-src http://apt-cacher:3142/debian bookworm main
deb http://apt-cacher:3142/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-bookworm-stable.gpg] http://apt-cacher:3142/debian bookworm main contrib # trailing comment
";
    let out = derived(&[("etc/apt/sources.list", list)]);
    assert_eq!(field(&out, "URIs"), Some("http://apt-cacher:3142/debian"), "{out}");
    assert_eq!(field(&out, "Signed-By"), Some("/usr/share/keyrings/debian-archive-bookworm-stable.gpg"), "{out}");
    assert!(out.contains("/etc/apt/sources.list;"), "{out}");
}

#[test]
fn one_line_in_sources_list_d_with_spaced_options() {
    let out = derived(&[(
        "etc/apt/sources.list.d/local.list",
        "deb [ signed-by=/etc/apt/keyrings/local.gpg ] https://cache.invalid:8443/debian/ bookworm main\n",
    )]);
    assert_eq!(field(&out, "URIs"), Some("https://cache.invalid:8443/debian/"), "{out}");
    assert_eq!(field(&out, "Signed-By"), Some("/etc/apt/keyrings/local.gpg"), "{out}");
}

#[test]
fn debian_keyring_wins_over_a_third_party_using_the_codename() {
    let list = "\
deb [signed-by=/etc/apt/keyrings/vendor.gpg] https://vendor.invalid/apt bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://apt-cacher:3142/debian bookworm main
";
    let out = derived(&[("etc/apt/sources.list", list)]);
    assert_eq!(field(&out, "URIs"), Some("http://apt-cacher:3142/debian"), "{out}");
}

#[test]
fn codename_comes_from_os_release() {
    let out = derived(&[
        ("etc/os-release", "NAME=\"Debian GNU/Linux\"\nVERSION_CODENAME=trixie\n"),
        (
            "etc/apt/sources.list",
            "deb http://old.invalid/debian bookworm main\ndeb http://new.invalid/debian trixie main\n",
        ),
    ]);
    assert_eq!(field(&out, "URIs"), Some("http://new.invalid/debian"), "{out}");
}

#[test]
fn no_debian_source_is_a_clear_error() {
    for files in [
        vec![
            (
                "etc/apt/sources.list.d/debian.sources",
                "Types: deb\nURIs: http://apt-cacher:3142/debian-security\nSuites: bookworm-security\nComponents: main\n",
            ),
            ("etc/apt/sources.list.d/docker.list", "deb https://docker.invalid/linux/debian bookworm stable\n"),
            (
                "etc/apt/sources.list.d/nodesource.sources",
                "Types: deb\nURIs: https://node.invalid/node_20.x\nSuites: nodistro\nComponents: main\n",
            ),
        ],
        vec![],
    ] {
        let out = print_sources(&root(&files));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "succeeded with {files:?}");
        assert!(out.stdout.is_empty(), "printed a file: {}", String::from_utf8_lossy(&out.stdout));
        for what in [
            "found no apt source for Debian's main archive",
            "suite bookworm",
            "component main",
            "URIs:",
            "Suites: bookworm",
        ] {
            assert!(stderr.contains(what), "{what:?} missing from: {stderr}");
        }
    }
}

#[test]
fn script_names_no_archive_host() {
    let text = std::fs::read_to_string(SCRIPT).unwrap().to_lowercase();
    for host in ["deb.debian", "debian.org", "ftp.", "mirror", "http://", "https://"] {
        assert!(!text.contains(host), "install-deps.sh contains {host:?}");
    }
}

//! `cargo xtask package-check`, also a stage of `cargo xtask test`: every
//! workspace crate either says `publish = false` or could be published as
//! it is: it has the metadata a registry page needs, its dependencies on
//! other workspace crates carry a version, and
//! `cargo package --workspace --no-verify` succeeds.
//!
//! The crates are read from `cargo metadata`, so a crate added to the
//! workspace is checked without registering it anywhere.

use std::path::Path;

use anyhow::{Result, bail};
use serde_json::Value;

use crate::paths::Paths;

/// Category slugs the registry accepts (a subset of its list: the ones
/// that can describe a pinio crate). An unknown slug is silently dropped
/// at publication, so it is refused here.
const CATEGORIES: &[&str] = &[
    "api-bindings",
    "asynchronous",
    "command-line-utilities",
    "concurrency",
    "data-structures",
    "database",
    "database-implementations",
    "development-tools",
    "development-tools::profiling",
    "development-tools::testing",
    "embedded",
    "filesystem",
    "hardware-support",
    "memory-management",
    "network-programming",
    "os",
    "os::linux-apis",
    "os::unix-apis",
];

/// The most keywords (and categories) a registry accepts per crate.
const MAX_KEYWORDS: usize = 5;
const MAX_CATEGORIES: usize = 5;

/// Runs the metadata checks and `cargo package`; fails naming every problem.
pub fn run(paths: &Paths) -> Result<()> {
    let meta = crate::guest_build::metadata(paths)?;
    let problems = lint(&meta);
    if !problems.is_empty() {
        bail!(
            "{} crate metadata problem(s) (each publishable crate needs description, license, readme, \
             keywords, categories, rust-version; internal crates say `publish = false`):\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        );
    }
    let publishable = publishable_names(&meta);
    eprintln!(
        "xtask: package check: metadata of {} publishable crates complete ({})",
        publishable.len(),
        publishable.join(", ")
    );
    package(paths)
}

/// `cargo package --workspace --no-verify`, offline first (the index cache of
/// any earlier build suffices), then online if the offline run failed.
fn package(paths: &Paths) -> Result<()> {
    let attempt = |offline: bool| -> Result<std::process::Output> {
        let mut cmd = crate::paths::cargo();
        cmd.args(["package", "--workspace", "--no-verify", "--allow-dirty", "--quiet", "--manifest-path"])
            .arg(paths.repo.join("Cargo.toml"));
        if offline {
            cmd.arg("--offline");
        }
        Ok(cmd.stdin(std::process::Stdio::null()).output()?)
    };
    let mut out = attempt(true)?;
    if !out.status.success() {
        out = attempt(false)?;
    }
    if out.status.success() {
        eprintln!("xtask: package check: `cargo package --workspace --no-verify` succeeded");
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> =
        stderr.lines().filter(|l| !l.trim().is_empty() && !l.contains("warning: manifest has no")).collect();
    bail!(
        "`cargo package --workspace --no-verify` failed ({}){}:\n  {}",
        out.status,
        hint(&stderr),
        errors.join("\n  ")
    )
}

/// What to do about a failure `cargo package` reported.
fn hint(stderr: &str) -> &'static str {
    if stderr.contains("does not specify a version") {
        "; give the workspace crate a version next to its path in the root Cargo.toml's [workspace.dependencies], \
         e.g. `pinio-x = { version = \"0.1.0\", path = \"crates/pinio-x\" }`"
    } else if stderr.contains("no matching package named") || stderr.contains("failed to select a version") {
        "; a dependency could not be resolved: is the registry reachable, or is a workspace crate it needs marked `publish = false`?"
    } else {
        ""
    }
}

fn is_publishable(pkg: &Value) -> bool {
    // `publish = false` reads as an empty list of registries; absent is null.
    !pkg["publish"].as_array().is_some_and(|r| r.is_empty())
}

fn publishable_names(meta: &Value) -> Vec<String> {
    packages(meta).filter(|p| is_publishable(p)).filter_map(|p| p["name"].as_str().map(str::to_string)).collect()
}

fn packages(meta: &Value) -> impl Iterator<Item = &Value> {
    meta["packages"].as_array().into_iter().flatten()
}

/// Every problem with the workspace's crates, one line each, naming the
/// crate, the field and what to write.
pub fn lint(meta: &Value) -> Vec<String> {
    let internal: Vec<&str> =
        packages(meta).filter(|p| !is_publishable(p)).filter_map(|p| p["name"].as_str()).collect();
    let mut problems = Vec::new();
    for pkg in packages(meta).filter(|p| is_publishable(p)) {
        let name = pkg["name"].as_str().unwrap_or("?");
        let mut say = |what: String| problems.push(format!("{name}: {what}"));
        let text = |key: &str| pkg[key].as_str().map(str::trim).filter(|s| !s.is_empty());
        if text("description").is_none() {
            say("no `description`".into());
        }
        if text("license").is_none() && text("license_file").is_none() {
            say("no `license` (e.g. `license.workspace = true`)".into());
        }
        if text("rust_version").is_none() {
            say("no `rust-version` (e.g. `rust-version.workspace = true`)".into());
        }
        match text("readme") {
            None => say("no `readme` (a README.md beside its Cargo.toml describing the crate)".into()),
            Some(readme) => {
                let dir = pkg["manifest_path"].as_str().map(Path::new).and_then(Path::parent);
                if dir.is_some_and(|d| !d.join(readme).is_file()) {
                    say(format!("`readme = \"{readme}\"` names a file that does not exist"));
                }
            }
        }
        for key in ["repository", "homepage", "documentation"] {
            if let Some(url) = text(key)
                && is_placeholder(url)
            {
                say(format!("`{key} = \"{url}\"` is a placeholder: remove it or make it true"));
            }
        }
        let keywords = strings(&pkg["keywords"]);
        if keywords.is_empty() || keywords.len() > MAX_KEYWORDS {
            say(format!("`keywords` has {} entries; give 1 to {MAX_KEYWORDS}", keywords.len()));
        }
        for k in &keywords {
            if !valid_keyword(k) {
                say(format!(
                    "keyword \"{k}\" is not accepted (ASCII letters, digits, `-`, `_`, `+`, starting with a letter, at most 20)"
                ));
            }
        }
        let categories = strings(&pkg["categories"]);
        if categories.is_empty() || categories.len() > MAX_CATEGORIES {
            say(format!("`categories` has {} entries; give 1 to {MAX_CATEGORIES}", categories.len()));
        }
        for c in &categories {
            if !CATEGORIES.contains(&c.as_str()) {
                say(format!(
                    "category \"{c}\" is not a registry category slug (known here: {})",
                    CATEGORIES.join(", ")
                ));
            }
        }
        for dep in pkg["dependencies"].as_array().into_iter().flatten() {
            // Dev-dependencies without a version are dropped from the package; others are kept.
            if dep["kind"].as_str() == Some("dev") {
                continue;
            }
            let dname = dep["name"].as_str().unwrap_or("?");
            if dep["path"].is_string() && dep["req"].as_str().is_none_or(|r| r == "*") {
                say(format!(
                    "depends on `{dname}` by path without a version: add `version = \"...\"` next to its `path` \
                     (in [workspace.dependencies])"
                ));
            }
            if internal.contains(&dname) {
                say(format!("depends on `{dname}`, which is `publish = false`"));
            }
        }
    }
    problems
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

/// A registry keyword: ASCII alphanumerics, `-`, `_`, `+`; a letter first; at most 20 characters.
fn valid_keyword(k: &str) -> bool {
    k.len() <= 20
        && k.starts_with(|c: char| c.is_ascii_alphabetic())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
}

/// A URL on a reserved or example host (RFC 2606), never a true home of the project.
fn is_placeholder(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url).split(['/', ':']).next().unwrap_or("").to_ascii_lowercase();
    let reserved_tld = [".invalid", ".example", ".test", ".localhost"].iter().any(|t| host.ends_with(t));
    let example = host.split('.').rev().nth(1).is_some_and(|second| second == "example");
    host.is_empty() || reserved_tld || example
}

/// `cargo xtask package-check` on its own.
pub fn command(paths: &Paths) -> Result<std::process::ExitCode> {
    run(paths)?;
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A publishable package with complete metadata; its readme is this file's crate's Cargo.toml
    /// (any existing file does).
    fn good(name: &str) -> Value {
        json!({
            "name": name,
            "description": "d",
            "license": "MIT OR Apache-2.0",
            "rust_version": "1.95",
            "readme": "Cargo.toml",
            "manifest_path": concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            "keywords": ["zero-copy", "dma"],
            "categories": ["os::linux-apis"],
            "publish": null,
            "dependencies": [],
        })
    }

    fn lint_one(pkg: Value) -> Vec<String> {
        lint(&json!({ "packages": [pkg] }))
    }

    #[test]
    fn complete_metadata_passes() {
        assert_eq!(lint_one(good("a")), Vec::<String>::new());
    }

    #[test]
    fn each_missing_field_is_named() {
        for (key, expect) in [
            ("description", "no `description`"),
            ("license", "no `license`"),
            ("rust_version", "no `rust-version`"),
            ("readme", "no `readme`"),
        ] {
            let mut p = good("a");
            p[key] = Value::Null;
            let problems = lint_one(p);
            assert!(problems.iter().any(|m| m.starts_with("a: ") && m.contains(expect)), "{key}: {problems:?}");
        }
    }

    #[test]
    fn missing_readme_file_is_refused() {
        let mut p = good("a");
        p["readme"] = json!("NO-SUCH-README.md");
        assert!(lint_one(p)[0].contains("does not exist"));
    }

    #[test]
    fn placeholder_repository_is_refused() {
        for url in ["https://example.invalid/pinio", "https://example.com/x", "http://foo.example/"] {
            let mut p = good("a");
            p["repository"] = json!(url);
            assert!(lint_one(p)[0].contains("placeholder"), "{url}");
        }
        assert!(!is_placeholder("https://git.kernel.org/pub/scm/linux"));
        assert!(!is_placeholder("https://examples.org/"));
    }

    #[test]
    fn keywords_and_categories_are_checked() {
        let mut p = good("a");
        p["keywords"] = json!(["a", "b", "c", "d", "e", "f"]);
        assert!(lint_one(p)[0].contains("`keywords` has 6 entries"));
        let mut p = good("a");
        p["keywords"] = json!(["has space"]);
        assert!(lint_one(p)[0].contains("keyword \"has space\""));
        let mut p = good("a");
        p["categories"] = json!(["os::linux"]);
        assert!(lint_one(p)[0].contains("category \"os::linux\""));
        let mut p = good("a");
        p["categories"] = json!([]);
        assert!(lint_one(p)[0].contains("`categories` has 0"));
    }

    #[test]
    fn path_dependency_needs_a_version() {
        let mut p = good("a");
        p["dependencies"] = json!([
            { "name": "b", "kind": null, "req": "*", "path": "/w/crates/b" },
            { "name": "c", "kind": "dev", "req": "*", "path": "/w/crates/c" },
            { "name": "d", "kind": null, "req": "^0.1.0", "path": "/w/crates/d" },
        ]);
        let problems = lint_one(p);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`b` by path without a version"));
    }

    #[test]
    fn internal_crates_are_exempt_but_not_depended_on() {
        let internal = json!({ "name": "xtask", "publish": [], "dependencies": [] });
        let mut p = good("a");
        p["dependencies"] = json!([{ "name": "xtask", "kind": null, "req": "^0.1", "path": "/w/xtask" }]);
        let problems = lint(&json!({ "packages": [internal, p] }));
        assert_eq!(problems, vec!["a: depends on `xtask`, which is `publish = false`".to_string()]);
    }

    #[test]
    fn hints_name_the_fix() {
        assert!(hint("dependency `pinio-core` does not specify a version").contains("[workspace.dependencies]"));
        assert_eq!(hint("something else"), "");
    }

    /// The workspace as it is: every crate added to it is covered by this test.
    #[test]
    fn this_workspace_passes() {
        let paths = Paths::discover().unwrap();
        let meta = crate::guest_build::metadata(&paths).unwrap();
        let problems = lint(&meta);
        assert!(problems.is_empty(), "crate metadata problems:\n  {}", problems.join("\n  "));
        for internal in ["xtask", "pinio-benches", "pinio-examples"] {
            let pkg = packages(&meta).find(|p| p["name"] == internal).unwrap();
            assert!(!is_publishable(pkg), "{internal} must say publish = false");
        }
    }
}

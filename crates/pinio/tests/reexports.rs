//! The facade re-exports the whole model of `pinio-core`, each item inline
//! with an example: `src/model.rs` lists them one by one (a glob re-export
//! would lose the examples in rustdoc), so this test fails when an item is
//! added to `pinio-core` and not to the facade.

const CORE_LIB: &str = include_str!("../../pinio-core/src/lib.rs");
const MODEL: &str = include_str!("../src/model.rs");

/// Names `pinio-core` exports: `pub use a::{B, C};`, `pub use a::B;`, `pub mod m;`
/// (modules behind a feature the facade does not enable are left out).
fn core_exports() -> Vec<String> {
    let mut names = Vec::new();
    let mut gated = false;
    for line in CORE_LIB.lines().map(str::trim) {
        if line.starts_with("#[cfg(feature") {
            gated = true;
            continue;
        }
        if let Some(m) = line.strip_prefix("pub mod ").and_then(|r| r.strip_suffix(';')) {
            if !gated {
                names.push(m.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("pub use ").and_then(|r| r.strip_suffix(';')) {
            let list = rest.split_once('{').map_or_else(
                || rest.rsplit("::").next().unwrap_or(rest).to_string(),
                |(_, l)| l.trim_end_matches('}').to_string(),
            );
            names.extend(list.split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()));
        }
        gated = false;
    }
    names
}

/// The names `model.rs` re-exports, each with the doc comment above it.
fn model_exports() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut doc = String::new();
    for line in MODEL.lines().map(str::trim) {
        if let Some(d) = line.strip_prefix("///") {
            doc.push_str(d);
            doc.push('\n');
        } else if let Some(rest) = line.strip_prefix("pub use pinio_core::").and_then(|r| r.strip_suffix(';')) {
            for n in rest.trim_matches(['{', '}']).split(',') {
                out.push((n.trim().to_string(), doc.clone()));
            }
            doc.clear();
        } else if !line.starts_with("#[") {
            doc.clear();
        }
    }
    out
}

#[test]
fn every_core_item_is_reexported() {
    let core = core_exports();
    assert!(core.len() > 30, "parsed too few exports of pinio-core: {core:?}");
    let model: Vec<String> = model_exports().into_iter().map(|(n, _)| n).collect();
    let missing: Vec<&String> = core.iter().filter(|n| !model.contains(n)).collect();
    assert!(missing.is_empty(), "pinio-core exports these, the facade's src/model.rs does not: {missing:?}");
}

#[test]
fn every_reexported_type_has_a_running_example() {
    for (name, doc) in model_exports() {
        if name == "domain" {
            continue; // a module whose own docs are the rule it states
        }
        assert!(doc.contains("# Example") && doc.contains("```"), "{name} has no example in src/model.rs");
        let runs = doc
            .split("```")
            .skip(1)
            .step_by(2)
            .any(|block| !block.starts_with("no_run") && !block.starts_with("ignore"));
        assert!(runs, "{name}'s example does not run (copy runs on every host)");
    }
}

//! Kernel configuration fragments and the check that every requested option
//! survived `make olddefconfig`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

/// What a fragment asks for one option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    /// `CONFIG_X=value`
    Value(String),
    /// `# CONFIG_X is not set`
    Off,
}

/// One requested option and the fragment that asked for it.
#[derive(Clone, Debug)]
pub struct Request {
    pub name: String,
    pub want: Want,
    pub source: String,
}

/// Parses fragments in merge order; a later fragment overrides an earlier one.
pub fn requests(fragments: &[(String, String)]) -> Vec<Request> {
    let mut by_name: BTreeMap<String, Request> = BTreeMap::new();
    for (source, text) in fragments {
        for line in text.lines().map(str::trim) {
            let parsed = if let Some(rest) = line.strip_prefix("# ") {
                rest.strip_suffix(" is not set")
                    .filter(|name| name.starts_with("CONFIG_"))
                    .map(|name| (name.to_string(), Want::Off))
            } else if line.starts_with("CONFIG_") {
                line.split_once('=').map(|(name, value)| (name.to_string(), Want::Value(value.to_string())))
            } else {
                None
            };
            if let Some((name, want)) = parsed {
                let source = source.clone();
                by_name.insert(name.clone(), Request { name, want, source });
            }
        }
    }
    by_name.into_values().collect()
}

/// The options set in a `.config` (`CONFIG_X=value` lines only).
pub fn parse_dot_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Fails, naming each option, unless every request holds in `dot_config`.
pub fn check(requests: &[Request], dot_config: &str) -> Result<()> {
    let actual = parse_dot_config(dot_config);
    let mut problems = Vec::new();
    for req in requests {
        let got = actual.get(&req.name);
        let ok = match (&req.want, got) {
            (Want::Value(want), Some(got)) => want == got,
            (Want::Value(_), None) => false,
            (Want::Off, None) => true,
            (Want::Off, Some(got)) => got == "n",
        };
        if !ok {
            let want = match &req.want {
                Want::Value(v) => format!("{}={v}", req.name),
                Want::Off => format!("{} off", req.name),
            };
            let got = got.map_or("not set".to_string(), |v| format!("{}={v}", req.name));
            problems.push(format!("  {want} (asked by {}) but .config has {got}", req.source));
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} requested kernel option(s) did not stick after olddefconfig \
             (a dependency is missing or the option does not exist in this kernel):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(src: &str, text: &str) -> (String, String) {
        (src.to_string(), text.to_string())
    }

    #[test]
    fn later_fragment_overrides() {
        let reqs = requests(&[
            frag("base", "CONFIG_A=y\n# comment\nCONFIG_B=y\n"),
            frag("overlay", "# CONFIG_A is not set\n"),
        ]);
        let a = reqs.iter().find(|r| r.name == "CONFIG_A").unwrap();
        assert_eq!(a.want, Want::Off);
        assert_eq!(a.source, "overlay");
        assert_eq!(reqs.len(), 2);
    }

    #[test]
    fn check_names_missing_options() {
        let reqs = requests(&[frag("base", "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n")]);
        assert!(check(&reqs, "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n").is_ok());
        let err = check(&reqs, "CONFIG_A=y\nCONFIG_C=y\n").unwrap_err().to_string();
        assert!(err.contains("CONFIG_B=y"), "{err}");
        assert!(err.contains("CONFIG_C off"), "{err}");
        assert!(!err.contains("CONFIG_A=y (asked"), "{err}");
    }

    #[test]
    fn value_mismatch_fails() {
        let reqs = requests(&[frag("base", "CONFIG_NR=4\n")]);
        assert!(check(&reqs, "CONFIG_NR=2\n").is_err());
    }
}

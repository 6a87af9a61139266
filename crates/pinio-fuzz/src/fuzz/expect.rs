//! What the model expects of one call: a success (any value or an exact one) and/or errnos.

use crate::Errno;
use crate::raw::Answer;
use std::fmt;

/// The answers a call may give according to the ABI and the model.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expect {
    /// `Some(None)`: any success; `Some(Some(v))`: exactly `v`; `None`: success not allowed.
    ok: Option<Option<i64>>,
    errs: Vec<i32>,
}

impl Expect {
    /// Success with any value.
    pub(crate) fn ok() -> Expect {
        Expect { ok: Some(None), errs: Vec::new() }
    }

    /// Success with exactly `v`.
    pub(crate) fn value(v: i64) -> Expect {
        Expect { ok: Some(Some(v)), errs: Vec::new() }
    }

    /// Exactly this errno.
    pub(crate) fn err(e: i32) -> Expect {
        Expect { ok: None, errs: vec![e] }
    }

    /// Also allow errno `e` (timing-dependent outcomes).
    pub(crate) fn or_err(mut self, e: i32) -> Expect {
        self.errs.push(e);
        self
    }

    /// Whether `got` is one of the expected answers.
    pub(crate) fn admits(&self, got: &Answer) -> bool {
        match got {
            Ok(v) => match self.ok {
                Some(None) => true,
                Some(Some(want)) => *v == want,
                None => false,
            },
            Err(e) => self.errs.contains(&e.0),
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self.ok {
            Some(None) => parts.push("success".to_string()),
            Some(Some(v)) => parts.push(format!("success {v}")),
            None => {}
        }
        parts.extend(self.errs.iter().map(|&e| Errno(e).name()));
        f.write_str(&parts.join(" or "))
    }
}

/// Prints an answer like the expectation above.
pub(crate) fn show(got: &Answer) -> String {
    match got {
        Ok(v) => format!("success {v}"),
        Err(e) => e.to_string(),
    }
}

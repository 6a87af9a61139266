// SPDX-License-Identifier: GPL-2.0

//! A list that keeps a single element inline.
//!
//! Most registrations are one region: their per-region bookkeeping then costs no allocation of
//! its own, while a vectored registration of thousands of regions takes one allocation for all.

use core::ops::{Deref, DerefMut};
use kernel::prelude::*;

/// One element inline, or many in one `KVVec`.
pub(crate) enum OneOrMany<T> {
    /// Exactly one element.
    One(T),
    /// Any number of elements, in one allocation.
    Many(KVVec<T>),
}

impl<T> OneOrMany<T> {
    /// The list `f(0), f(1), ..., f(n - 1)`; `EINVAL` for `n == 0`, `ENOMEM`, or the first error
    /// of `f`.
    pub(crate) fn from_fn(n: usize, mut f: impl FnMut(usize) -> Result<T>) -> Result<Self> {
        match n {
            0 => Err(EINVAL),
            1 => Ok(Self::One(f(0)?)),
            _ => {
                let mut v = KVVec::with_capacity(n, GFP_KERNEL)?;
                for i in 0..n {
                    // Cannot fail for want of room: the capacity is `n`.
                    v.push_within_capacity(f(i)?).map_err(|_| ENOMEM)?;
                }
                Ok(Self::Many(v))
            }
        }
    }
}

impl<T> Deref for OneOrMany<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Self::One(x) => core::slice::from_ref(x),
            Self::Many(v) => v,
        }
    }
}

impl<T> DerefMut for OneOrMany<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Self::One(x) => core::slice::from_mut(x),
            Self::Many(v) => v,
        }
    }
}

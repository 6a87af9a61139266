//! The slice pool: many threads taking and giving back, dropped slices made
//! anew, blocking and async takes woken by a give, foreign slices refused.

use pinio_core::conformance::{CountingRegistrar, block_on};
use pinio_core::{Slice, SlicePool};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

fn pool(slices: usize, len: usize) -> SlicePool {
    let (domain, _) = CountingRegistrar::domain();
    SlicePool::new(domain.alloc(slices * len).unwrap(), len).unwrap()
}

/// A waker that unparks the thread that polls.
#[test]
fn threads_share_one_pool_and_never_hold_the_same_bytes() {
    let p = Arc::new(pool(16, 512));
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                for round in 0..2_000u32 {
                    let mut s = p.take_blocking(None).expect("no timeout");
                    let mark = t.wrapping_mul(31).wrapping_add(round as u8);
                    s.fill(mark);
                    std::thread::yield_now();
                    assert!(s.iter().all(|&b| b == mark), "another thread wrote slice bytes this thread held");
                    p.give(s).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(p.available(), 16);
}

#[test]
fn dropped_slices_are_made_anew_and_foreign_ones_refused() {
    let p = pool(4, 4096);
    let taken: Vec<Slice> = (0..4).map(|_| p.take().unwrap()).collect();
    assert!(p.take().is_none());
    drop(taken);
    assert_eq!(p.available(), 0, "the pool does not see drops until it runs dry");
    let again: Vec<Slice> = (0..4).map(|_| p.take().expect("dropped slices come back")).collect();
    let other = pool(1, 4096);
    let foreign = other.take().unwrap();
    let foreign = p.give(foreign).expect_err("a slice of another pool");
    other.give(foreign).unwrap();
    let region = p.region().clone();
    drop(again);
    let odd = region.slice(100, 4096).unwrap();
    assert!(p.give(odd).is_err(), "a slice at an offset that is not the pool's");
}

#[test]
fn blocking_and_async_takes_wake_on_give() {
    let p = Arc::new(pool(1, 4096));
    let held = p.take().unwrap();
    assert!(p.take_blocking(Some(Duration::from_millis(20))).is_none(), "times out while empty");
    let giver = {
        let p = p.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            p.give(held).unwrap();
        })
    };
    let s = block_on(p.take_async());
    giver.join().unwrap();
    let giver = {
        let p = p.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            p.give(s).unwrap();
        })
    };
    let s = p.take_blocking(Some(Duration::from_secs(10))).expect("woken by the give");
    giver.join().unwrap();
    p.give(s).unwrap();
}

proptest! {
    /// Any sequence of takes, gives and drops keeps the pool's books: what is
    /// ready plus what is held never exceeds the capacity, and once everything
    /// held is given back or dropped, every slice can be taken again.
    #[test]
    fn lease_bookkeeping_balances(actions in prop::collection::vec(0u8..3, 1..200)) {
        let p = pool(8, 256);
        let mut held: Vec<Slice> = Vec::new();
        for a in actions {
            match a {
                0 => if let Some(s) = p.take() { held.push(s) },
                1 => if let Some(s) = held.pop() { p.give(s).unwrap() },
                _ => { held.pop(); }
            }
            prop_assert!(p.available() + held.len() <= p.capacity());
        }
        held.clear();
        let all: Vec<Slice> = (0..8).filter_map(|_| p.take()).collect();
        prop_assert_eq!(all.len(), 8);
    }
}

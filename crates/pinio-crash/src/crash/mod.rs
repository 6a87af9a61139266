//! Crash states from a crash log, and a checker run on each.
//!
//! [`History`] reads what the flush contract says about every logged
//! write; [`Generator`] picks states (deterministic from a seed);
//! [`DurableImage`] materializes them as image files; [`CrashTest`] runs a
//! check on each and [`shrink`] reduces a failing state to the fewest
//! writes that still fail. `pinio crash-test` is a command line over
//! [`CrashTest`].

mod history;
mod image;
mod pieces;
mod run;
mod shrink;
mod state;

pub use history::{Epoch, FlushEvent, History, WriteEvent};
pub use image::DurableImage;
pub use pieces::pieces;
pub use run::{CrashTest, Failure, Report};
pub use shrink::shrink;
pub use state::{CrashState, Describe, DescribeExtra, Extra, Generator, StateKind};

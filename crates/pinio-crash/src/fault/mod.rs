//! The fault-injecting wrapper: `fault:<rules>:<selection>` ([`rules`]).

mod device;
mod queue;
pub mod rules;
mod state;

pub use device::FaultDevice;
pub use rules::{Fault, FaultPlan, OpKind, Rule, When};

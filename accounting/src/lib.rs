//! Tally's memory ledger (work in progress): charge sets, frame ledger, policies, reports.
#![no_std]
#![forbid(unsafe_code)]

pub mod event;
pub mod ids;

pub use event::{Candidates, ChargeEvent, Decision, EventKind, Policies, Policy, PolicyKey};
pub use ids::*;

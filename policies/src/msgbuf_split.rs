//! The `msgbuf = split` policy: sender and receiver pay half a message buffer each (2048 bytes; a remainder would go to the sender).
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "split";

/// `msgbuf = split`: sender and receiver pay half a message buffer each (2048 bytes; a remainder would go to the sender).
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgbufSplit;

/// The one instance the registry hands out.
pub static POLICY: MsgbufSplit = MsgbufSplit;

impl Policy for MsgbufSplit {
    fn key(&self) -> PolicyKey {
        PolicyKey::Msgbuf
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, _event: &ChargeEvent) -> Decision {
        Decision::Split
    }

    fn fixed(&self, _what: EventKind) -> Option<Decision> {
        Some(Decision::Split)
    }
}

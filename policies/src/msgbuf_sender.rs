//! The `msgbuf = sender` policy: the sender's set pays for a kernel message buffer.
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "sender";

/// `msgbuf = sender`: the sender's set pays for a kernel message buffer.
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgbufSender;

/// The one instance the registry hands out.
pub static POLICY: MsgbufSender = MsgbufSender;

impl Policy for MsgbufSender {
    fn key(&self) -> PolicyKey {
        PolicyKey::Msgbuf
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, _event: &ChargeEvent) -> Decision {
        Decision::Sender
    }

    fn fixed(&self, _what: EventKind) -> Option<Decision> {
        Some(Decision::Sender)
    }
}

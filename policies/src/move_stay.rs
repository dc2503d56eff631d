//! The `move = stay` policy: when a domain moves to another charge set, the charges it holds stay with its old set until freed; only what it causes from then on is charged to the new one (cgroup v2).
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).
//! Which charges a domain "holds" is the ledger's rule (`accounting::Ledger::move_domain`).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "stay";

/// `move = stay`: when a domain moves to another charge set, the charges it holds stay with its old set until freed; only what it causes from then on is charged to the new one (cgroup v2).
#[derive(Clone, Copy, Debug, Default)]
pub struct MoveStay;

/// The one instance the registry hands out.
pub static POLICY: MoveStay = MoveStay;

impl Policy for MoveStay {
    fn key(&self) -> PolicyKey {
        PolicyKey::Move
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, _event: &ChargeEvent) -> Decision {
        Decision::Stay
    }

    fn fixed(&self, _what: EventKind) -> Option<Decision> {
        Some(Decision::Stay)
    }
}

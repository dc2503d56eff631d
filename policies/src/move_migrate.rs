//! The `move = migrate` policy: when a domain moves to another charge set, every charge it holds in its old set goes with it, checked against the new set's limits, all or nothing (cgroup v1 `move_charge_at_immigrate`).
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).
//! Which charges a domain "holds" is the ledger's rule (`accounting::Ledger::move_domain`).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "migrate";

/// `move = migrate`: when a domain moves to another charge set, every charge it holds in its old set goes with it, checked against the new set's limits, all or nothing (cgroup v1 `move_charge_at_immigrate`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MoveMigrate;

/// The one instance the registry hands out.
pub static POLICY: MoveMigrate = MoveMigrate;

impl Policy for MoveMigrate {
    fn key(&self) -> PolicyKey {
        PolicyKey::Move
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, _event: &ChargeEvent) -> Decision {
        Decision::Migrate
    }

    fn fixed(&self, _what: EventKind) -> Option<Decision> {
        Some(Decision::Migrate)
    }
}

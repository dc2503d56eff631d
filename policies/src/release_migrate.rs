//! The `release = migrate` policy: when the paying sharer of a still-shared frame leaves, the charge moves to the first surviving sharer (or, under split, the survivors' shares are recomputed); if that would push a survivor over a limit, the charge stays.
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "migrate";

/// `release = migrate`: when the paying sharer of a still-shared frame leaves, the charge moves to the first surviving sharer (or, under split, the survivors' shares are recomputed); if that would push a survivor over a limit, the charge stays.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReleaseMigrate;

/// The one instance the registry hands out.
pub static POLICY: ReleaseMigrate = ReleaseMigrate;

impl Policy for ReleaseMigrate {
    fn key(&self) -> PolicyKey {
        PolicyKey::Release
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

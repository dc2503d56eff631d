//! The `cow = holder` policy: the set that paid for the original also pays for the private copy a writer gets; sharing charges nothing new.
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "holder";

/// `cow = holder`: the set that paid for the original also pays for the private copy a writer gets; sharing charges nothing new.
#[derive(Clone, Copy, Debug, Default)]
pub struct CowHolder;

/// The one instance the registry hands out.
pub static POLICY: CowHolder = CowHolder;

impl Policy for CowHolder {
    fn key(&self) -> PolicyKey {
        PolicyKey::Cow
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, _event: &ChargeEvent) -> Decision {
        Decision::Holder
    }

    fn fixed(&self, _what: EventKind) -> Option<Decision> {
        Some(Decision::Holder)
    }
}

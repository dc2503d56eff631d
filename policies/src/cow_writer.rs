//! The `cow = writer` policy: the domain that writes to a shared frame pays for its private copy (Linux memcg); sharing charges nothing new.
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "writer";

/// `cow = writer`: the domain that writes to a shared frame pays for its private copy (Linux memcg); sharing charges nothing new.
#[derive(Clone, Copy, Debug, Default)]
pub struct CowWriter;

/// The one instance the registry hands out.
pub static POLICY: CowWriter = CowWriter;

impl Policy for CowWriter {
    fn key(&self) -> PolicyKey {
        PolicyKey::Cow
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, _event: &ChargeEvent) -> Decision {
        Decision::Writer
    }

    fn fixed(&self, _what: EventKind) -> Option<Decision> {
        Some(Decision::Writer)
    }
}

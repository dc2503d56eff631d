//! The `cow = split` policy: a frame shared by n domains is charged 4096/n to each sharer's set (remainder to the first, the original holder), against their limits; a private copy is paid whole by its writer.
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "split";

/// `cow = split`: a frame shared by n domains is charged 4096/n to each sharer's set (remainder to the first, the original holder), against their limits; a private copy is paid whole by its writer.
#[derive(Clone, Copy, Debug, Default)]
pub struct CowSplit;

/// The one instance the registry hands out.
pub static POLICY: CowSplit = CowSplit;

impl Policy for CowSplit {
    fn key(&self) -> PolicyKey {
        PolicyKey::Cow
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

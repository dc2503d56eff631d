//! The `kernel = self` policy: a spawned domain's kernel objects (its control block and
//! capability table) are paid by its own charge set (seL4-like: the objects are the domain's).
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "self";

/// `kernel = self`: a domain's own set pays for its kernel objects.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelSelf;

/// The one instance the registry hands out.
pub static POLICY: KernelSelf = KernelSelf;

impl Policy for KernelSelf {
    fn key(&self) -> PolicyKey {
        PolicyKey::Kernel
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, _event: &ChargeEvent) -> Decision {
        Decision::Owner
    }

    fn fixed(&self, _what: EventKind) -> Option<Decision> {
        Some(Decision::Owner)
    }
}

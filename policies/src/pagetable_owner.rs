//! The `pagetable = owner` policy: the owner of the address space pays for its page-table frames.
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "owner";

/// `pagetable = owner`: the owner of the address space pays for its page-table frames.
#[derive(Clone, Copy, Debug, Default)]
pub struct PageTableOwner;

/// The one instance the registry hands out.
pub static POLICY: PageTableOwner = PageTableOwner;

impl Policy for PageTableOwner {
    fn key(&self) -> PolicyKey {
        PolicyKey::PageTable
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

//! The `pagetable = causer` policy: the domain whose action made a page table necessary (e.g. the sender of an out-of-line region) pays for it.
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "causer";

/// `pagetable = causer`: the domain whose action made a page table necessary (e.g. the sender of an out-of-line region) pays for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct PageTableCauser;

/// The one instance the registry hands out.
pub static POLICY: PageTableCauser = PageTableCauser;

impl Policy for PageTableCauser {
    fn key(&self) -> PolicyKey {
        PolicyKey::PageTable
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, _event: &ChargeEvent) -> Decision {
        Decision::Causer
    }

    fn fixed(&self, _what: EventKind) -> Option<Decision> {
        Some(Decision::Causer)
    }
}

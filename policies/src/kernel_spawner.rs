//! The `kernel = spawner` policy: a spawned domain's kernel objects (its control block and
//! capability table) are paid by the set of the domain that spawned it, as Linux charges a
//! forked child's kernel stack and slab to the forker's memory cgroup. A domain the boot config
//! starts has no spawner: its own set pays.
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "spawner";

/// `kernel = spawner`: the spawner's set pays for the kernel objects of the domain it spawns.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelSpawner;

/// The one instance the registry hands out.
pub static POLICY: KernelSpawner = KernelSpawner;

impl Policy for KernelSpawner {
    fn key(&self) -> PolicyKey {
        PolicyKey::Kernel
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

//! The `msgbuf = kernel` policy: the built-in `kernel` reserve set pays for message buffers (still reported, with the sender as causer).
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "kernel";

/// `msgbuf = kernel`: the built-in `kernel` reserve set pays for message buffers (still reported, with the sender as causer).
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgbufKernel;

/// The one instance the registry hands out.
pub static POLICY: MsgbufKernel = MsgbufKernel;

impl Policy for MsgbufKernel {
    fn key(&self) -> PolicyKey {
        PolicyKey::Msgbuf
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, _event: &ChargeEvent) -> Decision {
        Decision::Kernel
    }

    fn fixed(&self, _what: EventKind) -> Option<Decision> {
        Some(Decision::Kernel)
    }
}

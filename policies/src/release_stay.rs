//! The `release = stay` policy: when the paying sharer of a still-shared frame leaves, its set keeps paying until the frame is freed (like memcg).
//!
//! Invariant: pure — the decision depends on nothing but the event (here, not even on it).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "stay";

/// `release = stay`: when the paying sharer of a still-shared frame leaves, its set keeps paying until the frame is freed (like memcg).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReleaseStay;

/// The one instance the registry hands out.
pub static POLICY: ReleaseStay = ReleaseStay;

impl Policy for ReleaseStay {
    fn key(&self) -> PolicyKey {
        PolicyKey::Release
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, _event: &ChargeEvent) -> Decision {
        Decision::Stay
    }

    fn fixed(&self, _what: EventKind) -> Option<Decision> {
        Some(Decision::Stay)
    }
}

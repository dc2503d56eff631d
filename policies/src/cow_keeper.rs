//! The `cow = keeper` policy: the keeper of the frame's holder decides who pays for a
//! copy-on-write copy (KeyKOS: a segment's keeper defines what happens on a fault). Before the
//! copy the kernel sends the holder's keeper a charge query and the writer waits; the keeper
//! answers with a charge set it holds a capability to, which then pays (within its limits, or
//! the copy is denied, atomically). A holder without a keeper, a keeper that answers wrongly or
//! not within the bounded time: the fallback, this key's default `writer`, counted in the
//! writer's report (`keeper_choices`). Sharing charges nothing new (as `writer`).
//!
//! Invariant: pure — the decision depends only on the event (the set the keeper named, if any,
//! is in its candidates).

use accounting::{ChargeEvent, Decision, EventKind, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "keeper";

/// `cow = keeper`: the set the holder's keeper names pays for a copy; else the writer.
#[derive(Clone, Copy, Debug, Default)]
pub struct CowKeeper;

/// The one instance the registry hands out.
pub static POLICY: CowKeeper = CowKeeper;

impl Policy for CowKeeper {
    fn key(&self) -> PolicyKey {
        PolicyKey::Cow
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn fixed(&self, what: EventKind) -> Option<Decision> {
        // Sharing never splits; a copy's payer depends on the event.
        (what == EventKind::Share).then_some(Decision::Writer)
    }

    fn decide(&self, event: &ChargeEvent) -> Decision {
        match event.what {
            EventKind::CowCopy if event.candidates.chosen.is_some() => Decision::Chosen,
            _ => Decision::Writer,
        }
    }

    fn asks_keeper(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::{Candidates, Headroom, Kind, SetId};

    fn event(what: EventKind, chosen: Option<SetId>) -> ChargeEvent {
        ChargeEvent {
            what,
            kind: Kind::Cow,
            causer: None,
            candidates: Candidates {
                holder: Some(SetId(1)),
                writer: Some(SetId(2)),
                chosen,
                ..Candidates::default()
            },
            sharers: 2,
            headroom: Headroom::UNKNOWN,
        }
    }

    #[test]
    fn the_keepers_set_pays_for_a_copy_else_the_writer() {
        assert_eq!(
            POLICY.decide(&event(EventKind::CowCopy, Some(SetId(3)))),
            Decision::Chosen
        );
        assert_eq!(
            POLICY.decide(&event(EventKind::CowCopy, None)),
            Decision::Writer
        );
        // Sharing never splits, whatever a keeper said.
        assert_eq!(
            POLICY.decide(&event(EventKind::Share, Some(SetId(3)))),
            Decision::Writer
        );
        assert!(POLICY.asks_keeper());
    }
}

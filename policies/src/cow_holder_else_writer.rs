//! The `cow = holder-else-writer` policy: the set that paid for the original pays for the
//! private copy a writer gets, unless that charge would exceed one of its limits or
//! sub-limits (or an ancestor's); then the writer pays. Sharing charges nothing new (as
//! `holder`). A holder at its limit no longer stops the writer: the writer takes the cost.
//!
//! Invariant: pure — the decision depends only on the event's kind and headroom.

use accounting::{ChargeEvent, Decision, EventKind, Headroom, Policy, PolicyKey, FRAME_BYTES};

/// The config name of this policy.
pub const NAME: &str = "holder-else-writer";

/// `cow = holder-else-writer`: the holder pays for a copy when it has room, else the writer.
#[derive(Clone, Copy, Debug, Default)]
pub struct CowHolderElseWriter;

/// The one instance the registry hands out.
pub static POLICY: CowHolderElseWriter = CowHolderElseWriter;

impl Policy for CowHolderElseWriter {
    fn key(&self) -> PolicyKey {
        PolicyKey::Cow
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn fixed(&self, what: EventKind) -> Option<Decision> {
        // Sharing never splits; a copy's payer depends on the event.
        (what == EventKind::Share).then_some(Decision::Holder)
    }

    fn decide(&self, event: &ChargeEvent) -> Decision {
        match event.what {
            EventKind::CowCopy if !Headroom::fits(event.headroom.holder, FRAME_BYTES) => {
                Decision::Writer
            }
            _ => Decision::Holder,
        }
    }

    fn needs_headroom(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::{Candidates, Kind, SetId};

    fn event(what: EventKind, holder_room: u64) -> ChargeEvent {
        ChargeEvent {
            what,
            kind: Kind::Cow,
            causer: None,
            candidates: Candidates {
                holder: Some(SetId(1)),
                writer: Some(SetId(2)),
                ..Candidates::default()
            },
            sharers: 2,
            headroom: Headroom {
                holder: holder_room,
                ..Headroom::UNKNOWN
            },
        }
    }

    #[test]
    fn the_holder_pays_for_copies_while_it_has_room_then_the_writer() {
        assert_eq!(
            POLICY.decide(&event(EventKind::CowCopy, Headroom::UNLIMITED)),
            Decision::Holder
        );
        assert_eq!(
            POLICY.decide(&event(EventKind::CowCopy, FRAME_BYTES)),
            Decision::Holder
        );
        assert_eq!(
            POLICY.decide(&event(EventKind::CowCopy, FRAME_BYTES - 1)),
            Decision::Writer
        );
        // Sharing never splits, whatever the room.
        assert_eq!(POLICY.decide(&event(EventKind::Share, 0)), Decision::Holder);
    }
}

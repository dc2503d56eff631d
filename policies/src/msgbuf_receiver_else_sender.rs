//! The `msgbuf = receiver-else-sender` policy: the receiver pays for a message buffer unless
//! the charge would exceed one of its limits or sub-limits (or an ancestor's); then the sender
//! pays. A receiver at its `msgbuf` sub-limit no longer turns a message away: its sender takes
//! the cost (and is denied only if it, too, is at a limit).
//!
//! Invariant: pure — the decision depends only on the event's headroom.

use accounting::{ChargeEvent, Decision, Headroom, Policy, PolicyKey, FRAME_BYTES};

/// The config name of this policy.
pub const NAME: &str = "receiver-else-sender";

/// `msgbuf = receiver-else-sender`: the receiver pays when it has room, else the sender.
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgbufReceiverElseSender;

/// The one instance the registry hands out.
pub static POLICY: MsgbufReceiverElseSender = MsgbufReceiverElseSender;

impl Policy for MsgbufReceiverElseSender {
    fn key(&self) -> PolicyKey {
        PolicyKey::Msgbuf
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, event: &ChargeEvent) -> Decision {
        if Headroom::fits(event.headroom.receiver, FRAME_BYTES) {
            Decision::Receiver
        } else {
            Decision::Sender
        }
    }

    fn needs_headroom(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::{Candidates, EventKind, Kind, SetId};

    fn event(receiver_room: u64) -> ChargeEvent {
        ChargeEvent {
            what: EventKind::Msgbuf,
            kind: Kind::Msgbuf,
            causer: None,
            candidates: Candidates {
                sender: Some(SetId(1)),
                receiver: Some(SetId(2)),
                ..Candidates::default()
            },
            sharers: 0,
            headroom: Headroom {
                receiver: receiver_room,
                ..Headroom::UNKNOWN
            },
        }
    }

    #[test]
    fn the_receiver_pays_while_it_has_room_then_the_sender() {
        assert_eq!(
            POLICY.decide(&event(Headroom::UNLIMITED)),
            Decision::Receiver
        );
        assert_eq!(POLICY.decide(&event(FRAME_BYTES)), Decision::Receiver);
        assert_eq!(POLICY.decide(&event(FRAME_BYTES - 1)), Decision::Sender);
        assert_eq!(POLICY.decide(&event(0)), Decision::Sender);
        assert!(POLICY.needs_headroom());
    }
}

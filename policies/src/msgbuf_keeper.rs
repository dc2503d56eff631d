//! The `msgbuf = keeper` policy: the sender's keeper decides who pays for a transient message
//! buffer (two-stage transfer). Before the buffer is charged the kernel sends the sender's
//! keeper a charge query and the send waits (it is retried from the beginning when the answer
//! comes, as every restartable send is); the keeper answers with a charge set it holds a
//! capability to, which then pays (within its limits, or the send is refused, atomically). A
//! sender without a keeper, a keeper that answers wrongly or not within the bounded time: the
//! fallback, this key's default `sender`, counted in the sender's report (`keeper_choices`).
//!
//! Invariant: pure — the decision depends only on the event.

use accounting::{ChargeEvent, Decision, Policy, PolicyKey};

/// The config name of this policy.
pub const NAME: &str = "keeper";

/// `msgbuf = keeper`: the set the sender's keeper names pays for a buffer; else the sender.
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgbufKeeper;

/// The one instance the registry hands out.
pub static POLICY: MsgbufKeeper = MsgbufKeeper;

impl Policy for MsgbufKeeper {
    fn key(&self) -> PolicyKey {
        PolicyKey::Msgbuf
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn decide(&self, event: &ChargeEvent) -> Decision {
        match event.candidates.chosen {
            Some(_) => Decision::Chosen,
            None => Decision::Sender,
        }
    }

    fn asks_keeper(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::{Candidates, EventKind, Headroom, Kind, SetId};

    #[test]
    fn the_keepers_set_pays_for_a_buffer_else_the_sender() {
        let mut event = ChargeEvent {
            what: EventKind::Msgbuf,
            kind: Kind::Msgbuf,
            causer: None,
            candidates: Candidates {
                sender: Some(SetId(1)),
                receiver: Some(SetId(2)),
                ..Candidates::default()
            },
            sharers: 0,
            headroom: Headroom::UNKNOWN,
        };
        assert_eq!(POLICY.decide(&event), Decision::Sender);
        event.candidates.chosen = Some(SetId(3));
        assert_eq!(POLICY.decide(&event), Decision::Chosen);
        assert!(POLICY.asks_keeper());
    }
}

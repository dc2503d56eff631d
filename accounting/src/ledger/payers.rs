//! Payer decisions: asking the policies who pays for a page table, a message buffer, a
//! share or a copy-on-write copy, and checking the answer against the event's roles.

use super::*;

impl<'a> Ledger<'a> {
    /// `policy`'s decision on the event `event` makes, for an event of kind `what`: read from
    /// the table of fixed decisions ([`Policy::fixed`]) when the policy makes one for `what`
    /// (and the fast paths are on), without building the event; else asked.
    #[inline(always)]
    pub(super) fn decision(
        &self,
        policy: &dyn Policy,
        what: EventKind,
        event: impl FnOnce() -> ChargeEvent,
    ) -> Decision {
        match self.fixed_decision(what) {
            Some(decision) if self.fast() => decision,
            _ => policy.decide(&event()),
        }
    }

    /// The decision the policy for `what` makes for every such event, if it makes one (the
    /// table [`Policy::fixed`] filled when the policies were set).
    #[inline(always)]
    pub(super) fn fixed_decision(&self, what: EventKind) -> Option<Decision> {
        Decision::ALL
            .get(usize::from(self.fixed[what.index()]).wrapping_sub(1))
            .copied()
    }

    /// Whether the policy for `what` makes `decision` for every such event: one compare of
    /// the table [`Policy::fixed`] filled (no decoding), for the straight-line paths.
    #[inline(always)]
    pub(super) fn fixed_is(&self, what: EventKind, decision: Decision) -> bool {
        self.fixed[what.index()] == decision as u8 + 1
    }

    /// The headroom of the holder, writer, sender and receiver sets given (out of line: only
    /// policies that ask pay for it).
    #[inline(never)]
    fn headrooms(
        &self,
        kind: Kind,
        [holder, writer, sender, receiver]: [Option<SetId>; 4],
    ) -> Headroom {
        let room =
            |set: Option<SetId>| set.map_or(Headroom::UNLIMITED, |set| self.headroom(set, kind));
        Headroom {
            holder: room(holder),
            writer: room(writer),
            sender: room(sender),
            receiver: room(receiver),
        }
    }

    /// How many more bytes of `kind` `set` could be charged before its limit or sub-limit, or
    /// an ancestor's, is reached; [`Headroom::UNLIMITED`] when nothing on the way limits it.
    pub(super) fn headroom(&self, set: SetId, kind: Kind) -> u64 {
        let mut room = Headroom::UNLIMITED;
        let mut cursor = Some(set);
        while let Some(id) = cursor {
            let Some(set) = self.sets.get(id.index()) else {
                break;
            };
            let limits = [
                set.kind_limit_bytes[kind.index()]
                    .map(|limit| limit.saturating_sub(set.subtree_of(kind.index()))),
                set.limit_bytes
                    .map(|limit| limit.saturating_sub(set.subtree_bytes())),
            ];
            for here in limits.into_iter().flatten() {
                room = room.min(here);
            }
            cursor = set.parent;
        }
        room
    }

    pub(super) fn page_table_payer(
        &self,
        owner: DomainId,
        causer: DomainId,
    ) -> Result<SetId, Error> {
        let owner_set = self.domain_set(owner)?;
        let causer_set = self.domain_set(causer)?;
        let event = || ChargeEvent {
            what: EventKind::PageTable,
            kind: Kind::PageTables,
            causer: Some(causer),
            candidates: Candidates {
                owner: Some(owner_set),
                creator: Some(causer_set),
                ..Candidates::default()
            },
            sharers: 0,
            headroom: Headroom::UNKNOWN,
        };
        match self.decision(self.policies.pagetable, EventKind::PageTable, event) {
            Decision::Owner => Ok(owner_set),
            Decision::Causer => Ok(causer_set),
            _ => Err(Error::BadDecision),
        }
    }

    /// The payer of `domain`'s kernel object per the `kernel` policy: its own set, or its
    /// spawner's (its own at boot).
    pub(super) fn kernel_object_payer(
        &self,
        domain: DomainId,
        spawner: Option<DomainId>,
    ) -> Result<SetId, Error> {
        let own = self.domain_set(domain)?;
        let spawner_set = match spawner {
            Some(spawner) => self.domain_set(spawner)?,
            None => own,
        };
        let event = || ChargeEvent {
            what: EventKind::KernelObject,
            kind: Kind::Kernel,
            causer: Some(spawner.unwrap_or(domain)),
            candidates: Candidates {
                owner: Some(own),
                creator: Some(spawner_set),
                ..Candidates::default()
            },
            sharers: 0,
            headroom: Headroom::UNKNOWN,
        };
        match self.decision(self.policies.kernel, EventKind::KernelObject, event) {
            Decision::Owner => Ok(own),
            Decision::Causer => Ok(spawner_set),
            _ => Err(Error::BadDecision),
        }
    }

    /// The payers of a new message buffer per the `msgbuf` policy, into `slots` (emptied
    /// first), and whether they split it.
    pub(super) fn msgbuf_slots(
        &self,
        sender: DomainId,
        receiver: DomainId,
        slots: &mut SlotList,
    ) -> Result<bool, Error> {
        let sender_set = self.domain_set(sender)?;
        let receiver_set = self.domain_set(receiver)?;
        let headroom = if self.policies.msgbuf.needs_headroom() {
            self.headrooms(
                Kind::Msgbuf,
                [None, None, Some(sender_set), Some(receiver_set)],
            )
        } else {
            Headroom::UNKNOWN
        };
        let event = ChargeEvent {
            what: EventKind::Msgbuf,
            kind: Kind::Msgbuf,
            causer: Some(sender),
            candidates: Candidates {
                sender: Some(sender_set),
                receiver: Some(receiver_set),
                creator: Some(sender_set),
                chosen: self.chosen_set(sender, Kind::Msgbuf),
                ..Candidates::default()
            },
            sharers: 0,
            headroom,
        };
        slots.clear();
        let slot = |set| Slot { set, domain: None };
        let split = match self.policies.msgbuf.decide(&event) {
            Decision::Sender => {
                let _ = slots.push(slot(sender_set));
                false
            }
            Decision::Receiver => {
                let _ = slots.push(slot(receiver_set));
                false
            }
            Decision::Kernel => {
                let _ = slots.push(slot(SetId::KERNEL));
                false
            }
            Decision::Split => {
                let _ = slots.push(slot(sender_set));
                let _ = slots.push(slot(receiver_set));
                true
            }
            Decision::Chosen => {
                let _ = slots.push(slot(event.candidates.chosen.ok_or(Error::BadDecision)?));
                false
            }
            _ => return Err(Error::BadDecision),
        };
        Ok(split)
    }

    /// Validates `domain` sharing `frame` (whose entry is `entry`): the frame as it is and the
    /// slot the sharer gets.
    #[inline(always)]
    pub(super) fn share_view(
        &self,
        frame: FrameIndex,
        entry: FrameEntry,
        domain: DomainId,
    ) -> Result<(View<'_>, Slot), Error> {
        mapped_kind(frame, entry)?;
        let set = self.domain_set(domain)?;
        let view = self.view(entry).ok_or(Error::FrameFree(frame))?;
        if view.position(domain).is_some() {
            return Err(Error::AlreadyMapped(frame, domain));
        }
        Ok((
            view,
            Slot {
                set,
                domain: Some(domain),
            },
        ))
    }

    /// The `cow` policy's decision on sharing `view` with `slot`: whether it splits the frame
    /// (a split frame stays split either way); [`Error::TooManySharers`] when it has no room
    /// for one more.
    #[inline(always)]
    pub(super) fn share_split(&self, view: &View<'_>, slot: Slot) -> Result<bool, Error> {
        let event = || ChargeEvent {
            what: EventKind::Share,
            kind: view.kind,
            causer: slot.domain,
            candidates: Candidates {
                holder: view.holder(),
                creator: Some(slot.set),
                ..Candidates::default()
            },
            sharers: 0,
            headroom: Headroom::UNKNOWN,
        };
        let split = match self.decision(self.policies.cow, EventKind::Share, event) {
            Decision::Split => true,
            Decision::Writer | Decision::Holder => false,
            _ => return Err(Error::BadDecision),
        };
        if view.slots().len() >= MAX_SHARERS {
            return Err(Error::TooManySharers);
        }
        Ok(split)
    }

    /// [`Ledger::share_view`] and [`Ledger::share_split`]: the frame, the new slot and
    /// whether the policy splits it.
    #[inline(always)]
    pub(super) fn share_decision(
        &self,
        frame: FrameIndex,
        entry: FrameEntry,
        domain: DomainId,
    ) -> Result<(View<'_>, Slot, bool), Error> {
        let (view, slot) = self.share_view(frame, entry, domain)?;
        let split = self.share_split(&view, slot)?;
        Ok((view, slot, split))
    }

    /// Validates a copy-on-write copy of `original` by `writer` and names its payer.
    #[inline(always)]
    pub(super) fn cow_copy_payer(
        &self,
        original: FrameIndex,
        writer: DomainId,
    ) -> Result<SetId, Error> {
        let entry = self.require_mapped(original)?;
        let writer_set = self.domain_set(writer)?;
        let mut one = Slot::NONE;
        let slots = self.slots(&entry, &mut one);
        // One pass: whether the writer maps it, and how many do.
        let (mut maps, mut sharers) = (false, 0u32);
        for slot in slots {
            if let Some(domain) = slot.domain {
                sharers += 1;
                maps |= domain == writer;
            }
        }
        if !maps {
            return Err(Error::NotMapped(original, writer));
        }
        if sharers < 2 {
            return Err(Error::NotShared(original));
        }
        let holder = slots.first().map_or(writer_set, |slot| slot.set);
        let event = || ChargeEvent {
            what: EventKind::CowCopy,
            kind: Kind::Cow,
            causer: Some(writer),
            candidates: Candidates {
                holder: Some(holder),
                writer: Some(writer_set),
                creator: Some(writer_set),
                chosen: self.chosen_set(writer, Kind::Cow),
                ..Candidates::default()
            },
            sharers,
            headroom: if self.policies.cow.needs_headroom() {
                self.headrooms(Kind::Cow, [Some(holder), Some(writer_set), None, None])
            } else {
                Headroom::UNKNOWN
            },
        };
        match self.decision(self.policies.cow, EventKind::CowCopy, event) {
            Decision::Writer | Decision::Split => Ok(writer_set),
            Decision::Holder => Ok(holder),
            Decision::Chosen => self.chosen_set(writer, Kind::Cow).ok_or(Error::BadDecision),
            _ => Err(Error::BadDecision),
        }
    }
}

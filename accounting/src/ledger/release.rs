//! Departures and frees, never denied by a limit: the `release` policy decides what happens
//! to the charge of a domain that leaves a frame others still map (general path; the common
//! cases are in [`super::fast`]).

use super::*;

impl<'a> Ledger<'a> {
    /// `domain` unmaps `frame` (also on exit). If it was the last mapper the frame is
    /// uncharged from everyone and [`Unmapped::Freed`]; otherwise the `release` policy decides
    /// what happens to a charge the domain's set paid. Never denied by a limit: a migration
    /// that would not fit stays instead. Fails with [`Error::PoolFull`] only when the frame
    /// needs a new sharer list and the pool is exhausted (then nothing changed).
    pub fn unmap(&mut self, frame: FrameIndex, domain: DomainId) -> Result<Unmapped, Error> {
        let result = self.depart(frame, domain)?;
        self.emit(|| TraceRecord::Unmap { frame, domain });
        Ok(result)
    }

    /// Frees a frame no domain maps (page table, kernel object, message buffer): uncharged
    /// from every payer. Mapped frames are freed by their last [`Ledger::unmap`].
    pub fn free(&mut self, frame: FrameIndex) -> Result<(), Error> {
        let entry = self.entry(frame)?;
        let kind = match entry.usage() {
            FrameUse::Free => return Err(Error::FrameFree(frame)),
            FrameUse::Boot => return Err(Error::BootFrame(frame)),
            FrameUse::Charged(kind) if kind.is_mapped() => return Err(Error::WrongKind(frame)),
            FrameUse::Charged(kind) => kind,
        };
        if let Some((payer, _)) = entry.inline_slot().filter(|_| self.fast()) {
            // Fast path (agrees with `transition` to no slots): one payer, paying all of it.
            self.uncharge(payer, kind, FRAME_BYTES, entry.causer());
            self.frames[frame.index()] = FrameEntry::FREE;
            self.frames_in_use = checked_sub(self.frames_in_use, 1);
        } else {
            self.transition(frame, entry, kind, entry.causer(), false, &[])?;
        }
        self.emit(|| TraceRecord::Free { frame });
        Ok(())
    }

    /// Whether moving `bytes` of `kind` from set `from` to set `to` fits every limit on the
    /// way from `to` to the root (net of the bytes leaving `from`, in the subtrees holding
    /// both); no denial is counted.
    pub(super) fn fits_move(&self, from: SetId, to: SetId, kind: Kind, bytes: u64) -> bool {
        let index = kind.index();
        let mut cursor = Some(to);
        while let Some(set_id) = cursor {
            let set = &self.sets[set_id.index()];
            if self.is_within(from, set_id, set.depth) {
                // This set and its ancestors hold both ends: nothing changes there.
                return true;
            }
            if set.kind_limit_bytes[index]
                .is_some_and(|limit| set.subtree_of(index).saturating_add(bytes) > limit)
                || set
                    .limit_bytes
                    .is_some_and(|limit| set.subtree_bytes().saturating_add(bytes) > limit)
            {
                return false;
            }
            cursor = set.parent;
        }
        true
    }

    /// [`Ledger::depart`] in general.
    #[inline(never)]
    pub(super) fn depart_slow(
        &mut self,
        frame: FrameIndex,
        domain: DomainId,
        entry: FrameEntry,
    ) -> Result<Unmapped, Error> {
        let kind = mapped_kind(frame, entry)?;
        self.domain(domain)?;
        let view = self.view(entry).ok_or(Error::FrameFree(frame))?;
        let (split, causer) = (view.split, view.causer);
        let slots = view.slots();
        let position = view
            .position(domain)
            .ok_or(Error::NotMapped(frame, domain))?;
        if mappers(slots) == 1 {
            self.transition(frame, entry, kind, causer, split, &[])?;
            return Ok(Unmapped::Freed);
        }
        if !split {
            if position != 0 {
                // Not the payer: it just leaves; the charge does not move.
                if let [holder, _] = *slots {
                    self.store(frame, entry, kind, false, causer, &[holder]);
                } else {
                    let mut stay = SlotList::new();
                    let _ = stay.extend_from_slice(slots);
                    stay.remove(position);
                    self.pool_room(entry, &stay)?;
                    self.store(frame, entry, kind, false, causer, &stay);
                }
                return Ok(Unmapped::StillMapped);
            }
            // The payer leaves, but its set still maps the frame through another domain: the
            // charge is where it belongs already.
            let payer = slots[0].set;
            if let Some(other) = (1..slots.len())
                .find(|&index| slots[index].domain.is_some() && slots[index].set == payer)
            {
                let mut stay = SlotList::new();
                let _ = stay.extend_from_slice(slots);
                stay[0].domain = slots[other].domain;
                stay.remove(other);
                self.pool_room(entry, &stay)?;
                self.store(frame, entry, kind, false, causer, &stay);
                return Ok(Unmapped::StillMapped);
            }
        }
        // The departing domain's set pays (all, or a share): the release policy decides.
        let mut migrate = SlotList::new();
        let _ = migrate.extend_from_slice(slots);
        migrate.remove(position);
        if !split {
            if let Some(first) = migrate.iter().position(|slot| slot.domain.is_some()) {
                let survivor = migrate.remove(first);
                // Just removed one: room for it.
                let _ = migrate.insert(0, survivor);
            }
        }
        let event = ChargeEvent {
            what: EventKind::Release,
            kind,
            causer: Some(domain),
            candidates: Candidates {
                holder: view.holder(),
                departing: Some(slots[position].set),
                surviving: migrate
                    .iter()
                    .find(|slot| slot.domain.is_some())
                    .map(|slot| slot.set),
                ..Candidates::default()
            },
            sharers: 0,
            headroom: Headroom::UNKNOWN,
        };
        let new = if self.policies.release.decide(&event) == Decision::Migrate
            && self.fits(slots, &migrate, split, kind, causer)
        {
            migrate
        } else {
            let mut stay = SlotList::new();
            let _ = stay.extend_from_slice(slots);
            stay[position].domain = None;
            stay
        };
        self.transition(frame, entry, kind, causer, split, &new)?;
        Ok(Unmapped::StillMapped)
    }

    /// Whether moving a frame from `old` to `new` slots fits every limit (no denial is
    /// counted).
    pub(super) fn fits(
        &self,
        old: &[Slot],
        new: &[Slot],
        split: bool,
        kind: Kind,
        causer: Option<DomainId>,
    ) -> bool {
        let mut net = NetChange::new();
        net_change(&mut net, old, split, new, split);
        let mut charges = Charges::new();
        for &(set, delta) in net.iter() {
            if add_charge(&mut charges, set, kind, delta, causer).is_err() {
                return false;
            }
        }
        self.check(&charges).is_ok()
    }
}

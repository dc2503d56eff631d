//! The fast paths: straight-line code for the common plans (one new frame, one share, one
//! copy-on-write copy, a fault's page and tables) and departures (the only mapper leaving; a
//! non-paying sharer leaving; one of two sharers leaving). Each names the general function it
//! must agree with; the differential test (`tests::differential`) runs random operation
//! sequences with these forced off and requires identical snapshots, denials and traces.

use super::*;

impl<'a> Ledger<'a> {
    /// Whether the fast paths may run: always, unless the `differential` feature's test turned
    /// them off to compare every decision with the general path's.
    #[inline(always)]
    pub(super) fn fast(&self) -> bool {
        #[cfg(feature = "differential")]
        {
            self.general_only == 0
        }
        #[cfg(not(feature = "differential"))]
        {
            true
        }
    }

    /// Turns every fast path off (`true`) or on again: the differential test runs random
    /// operation sequences both ways and requires identical snapshots, denials and traces.
    #[cfg(feature = "differential")]
    pub fn set_general_only(&mut self, general_only: bool) {
        self.general_only = u8::from(general_only);
    }

    /// Reserves a plan of one share (under `cow = writer` or `holder` it charges nothing)
    /// when the pool has the list it may need to spare; false (having changed nothing) when
    /// the general path must decide. Agrees with [`Ledger::reserve_plan`] (`plan_share`).
    #[inline(always)]
    pub(super) fn reserve_one_share(
        &mut self,
        frame: FrameIndex,
        domain: DomainId,
        plan: &Plan<'_>,
    ) -> Result<bool, Error> {
        let (entry, slot, splits) = self.share_checked(frame, domain)?;
        if self.pool.unused_lists() <= POOL_DEPARTURE_RESERVE {
            return Ok(false);
        }
        if splits || entry.is_split() {
            let mut net = NetChange::new();
            self.share_net(&mut net, entry, slot);
            let (kind, causer) = (mapped_kind(frame, entry)?, entry.causer());
            let mut charges = Charges::new();
            for &(set, delta) in net.iter() {
                add_charge(&mut charges, set, kind, delta, causer)?;
            }
            if let Err(denial) = self.check(&charges) {
                return Err(self.deny(denial, plan));
            }
        }
        self.resolved.set_splits(0, splits);
        self.resolved.set_plan(false, false);
        Ok(true)
    }

    /// The charge of a copy-on-write copy, validated in [`Ledger::reserve_plan`]'s order
    /// (not yet checked against the limits).
    #[inline(always)]
    fn copy_charge(
        &self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
    ) -> Result<Charge, Error> {
        if original == copy {
            return Err(Error::BadPlan);
        }
        let payer = self.cow_copy_payer(original, writer)?;
        self.require_free(copy)?;
        // The writer's departure may need a sharer list.
        if self.pool.unused_lists() <= POOL_DEPARTURE_RESERVE {
            return Err(Error::PoolFull);
        }
        Ok(Charge {
            set: payer,
            kind: Kind::Cow,
            bytes: FRAME_BYTES as i64,
            causer: Some(writer),
        })
    }

    /// Reserves a plan of one copy-on-write copy (a write fault), checked in
    /// [`Ledger::reserve_plan`]'s order.
    #[inline(always)]
    pub(super) fn reserve_one_copy(
        &mut self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
        plan: &Plan<'_>,
    ) -> Result<(), Error> {
        let charge = self.copy_charge(original, copy, writer)?;
        self.resolved.payer[0] = charge.set;
        self.resolved.set_plan(true, false);
        if let Err(denial) = self.check_one(&charge) {
            return Err(self.deny(denial, plan));
        }
        Ok(())
    }

    /// A copy-on-write copy without a plan: [`Ledger::reserve_one_copy`] and
    /// [`Ledger::commit_one_copy`] at once, deciding as `apply` of the plan `[CowCopy]` (which
    /// [`Ledger::cow_copy`] runs instead with the fast paths off).
    #[inline]
    pub(super) fn copy_page(
        &mut self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
    ) -> Result<(), Error> {
        if self.copy_from_pair(original, copy, writer) {
            return Ok(());
        }
        self.copy_any(original, copy, writer)
    }

    /// [`Ledger::copy_page`] of a copy [`Ledger::copy_from_pair`] did not make.
    #[inline(never)]
    fn copy_any(
        &mut self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
    ) -> Result<(), Error> {
        let charge = self.copy_charge(original, copy, writer)?;
        if let Err(denial) = self.charge_frame(charge.set, Kind::Cow, Some(writer)) {
            return Err(self.copy_denied(denial, original, copy, writer));
        }
        self.store_new(copy, Kind::Cow, Some(writer), charge.set, Some(writer));
        let result = self.depart(original, writer);
        debug_assert!(result.is_ok(), "reserved copy-on-write departure failed");
        if self.traced() {
            self.emit_plan(&Plan::one(Op::CowCopy {
                original,
                copy,
                writer,
            }));
        }
        Ok(())
    }

    /// [`Ledger::copy_page`] of the usual copy: `original` whole and mapped by exactly two
    /// domains, the writer the second (the sharer that does not pay), and the `cow` policy's
    /// decision fixed. The original's sharer list is read once: the payer from it and the
    /// decision table, the copy charged (no limit anywhere and no trace: else `copy_any`
    /// decides and traces) and stored, and the writer's departure made as
    /// [`Ledger::depart`]'s fast path makes it (the holder maps the frame alone again, still
    /// paying). False, having changed nothing, for any other copy and for
    /// any error or denial (the general checks then name and count it). Public and inlined:
    /// the kernel's write fault tries it first and calls [`Ledger::cow_copy`] only when it
    /// returns false (a call would cost the fault more in saved registers than the copy's
    /// charge itself).
    #[inline(always)]
    pub fn copy_from_pair(
        &mut self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
    ) -> bool {
        self.copied_from_pair(original, copy, writer).is_some()
    }

    /// [`Ledger::copy_from_pair`], `None` for "not done".
    #[inline(always)]
    fn copied_from_pair(
        &mut self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
    ) -> Option<()> {
        // With a limit anywhere, or a trace, `copy_any` checks it or traces the copy (out of
        // line, so that this path keeps its values in registers).
        if self.unusual != 0 {
            return None;
        }
        let writer_pays = self.fixed_is(EventKind::CowCopy, Decision::Writer)
            || self.fixed_is(EventKind::CowCopy, Decision::Split);
        let holder_pays = self.fixed_is(EventKind::CowCopy, Decision::Holder);
        let writer_set = self.domains.get(writer.index())?.set;
        // The frame table borrowed once: both entries checked, then both written, without
        // a second bounds check.
        let frames = &mut *self.frames;
        let entry = *frames.get(original.index())?;
        let list = entry.mapped_unsplit_list()?;
        let [holder, sharer] = *self.pool.get_listed(list) else {
            return None;
        };
        let holder_domain = holder.domain?;
        // (`copy` free and `original` in use: not the same frame; the general path names
        // `copy == original`.)
        if sharer.domain != Some(writer) {
            return None;
        }
        let payer = match (writer_pays, holder_pays) {
            (true, _) => writer_set,
            (false, true) => holder.set,
            (false, false) => return None,
        };
        // (`used_lists` never exceeds the pool: the compare of `unused_lists` without its
        // subtraction.)
        if !frames.get(copy.index())?.is_free()
            || self.pool.used_lists() >= SHARER_LISTS - POOL_DEPARTURE_RESERVE
        {
            return None;
        }
        frames[copy.index()] =
            FrameEntry::inline(Kind::Cow, false, Some(writer), payer, Some(writer));
        frames[original.index()] = entry.listed_to_inline(holder.set, holder_domain);
        self.frames_in_use += 1;
        self.charge_inline(payer, Kind::Cow, FRAME_BYTES, Some(writer));
        // Last: freeing the list (its last reference) is a call, and little is live here.
        self.pool.release_listed(list);
        Some(())
    }

    /// [`Ledger::copy_page`] denied: counted, and traced as its plan would be.
    #[cold]
    #[inline(never)]
    fn copy_denied(
        &mut self,
        denial: Denial,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
    ) -> Error {
        self.deny(
            denial,
            &Plan::one(Op::CowCopy {
                original,
                copy,
                writer,
            }),
        )
    }

    /// Reserves a plan of one `Share` if the frame stays whole (the usual case under
    /// `cow = writer` or `holder`: only the sharer list changes, nothing is charged) and the
    /// pool has lists to spare: validation and the policy's decision, in the order
    /// [`Ledger::reserve_plan`] makes them. False (having changed nothing) when that general
    /// path must decide.
    #[inline(always)]
    pub(super) fn reserve_whole_share(
        &mut self,
        frame: FrameIndex,
        domain: DomainId,
    ) -> Result<bool, Error> {
        let (entry, _, splits) = self.share_checked(frame, domain)?;
        Ok(!(splits || entry.is_split() || self.pool.unused_lists() <= POOL_DEPARTURE_RESERVE))
    }

    /// Validates `domain` sharing `frame` as [`Ledger::reserve_plan`] does, in the same order
    /// (the frame, the domain, not mapped by it yet, the policy's decision, room for one more
    /// sharer): the frame's entry, the sharer's slot and whether the `cow` policy splits the
    /// frame.
    #[inline(always)]
    pub(super) fn share_checked(
        &self,
        frame: FrameIndex,
        domain: DomainId,
    ) -> Result<(FrameEntry, Slot, bool), Error> {
        let entry = self.entry(frame)?;
        let kind = mapped_kind(frame, entry)?;
        let set = self.domain_set(domain)?;
        let (holder, sharers) = match entry.list() {
            None => {
                if entry.inline_word() as u16 == domain.0 {
                    return Err(Error::AlreadyMapped(frame, domain));
                }
                (SetId(entry.payer_raw()), 1)
            }
            Some(list) => {
                let slots = self.pool.get(list);
                if slots.iter().any(|slot| slot.domain == Some(domain)) {
                    return Err(Error::AlreadyMapped(frame, domain));
                }
                (
                    slots.first().map_or(SetId::KERNEL, |slot| slot.set),
                    slots.len(),
                )
            }
        };
        let event = || ChargeEvent {
            what: EventKind::Share,
            kind,
            causer: Some(domain),
            candidates: Candidates {
                holder: Some(holder),
                creator: Some(set),
                ..Candidates::default()
            },
            sharers: 0,
            headroom: Headroom::UNKNOWN,
        };
        let splits = match self.decision(self.policies.cow, EventKind::Share, event) {
            Decision::Split => true,
            Decision::Writer | Decision::Holder => false,
            _ => return Err(Error::BadDecision),
        };
        if sharers >= MAX_SHARERS {
            return Err(Error::TooManySharers);
        }
        let slot = Slot {
            set,
            domain: Some(domain),
        };
        Ok((entry, slot, splits))
    }

    /// Sets `net` to the per-set change of charges when `slot` joins `entry`'s slots and the
    /// frame is split among them all.
    pub(super) fn share_net(&self, net: &mut NetChange, entry: FrameEntry, slot: Slot) {
        let mut one = Slot::NONE;
        let old = self.slots(&entry, &mut one);
        let (sharers, old_split) = (old.len(), entry.is_split());
        net.clear();
        for (index, slot) in old.iter().enumerate() {
            add_net(
                net,
                slot.set,
                -(slot_bytes(old_split, sharers, index) as i64),
            );
        }
        for (index, slot) in old.iter().enumerate() {
            add_net(net, slot.set, split_share_bytes(sharers + 1, index) as i64);
        }
        add_net(
            net,
            slot.set,
            split_share_bytes(sharers + 1, sharers) as i64,
        );
    }

    /// Commits a plan of one copy-on-write copy: the copy, then the writer's departure.
    /// Agrees with [`Ledger::commit_ops`].
    #[inline(always)]
    pub(super) fn commit_one_copy(
        &mut self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
    ) {
        let payer = self.resolved.payer[0];
        self.create(copy, Kind::Cow, Some(writer), payer, Some(writer));
        let result = self.depart(original, writer);
        debug_assert!(result.is_ok(), "reserved copy-on-write departure failed");
    }

    /// Commits a plan of one `Share` (`splits`: the policy's decision): reserve validated it
    /// and nothing changed since. False if the pool failed it (which reserve rules out).
    /// Agrees with [`Ledger::commit_share`].
    #[inline(always)]
    pub(super) fn commit_one_share(
        &mut self,
        frame: FrameIndex,
        domain: DomainId,
        splits: bool,
    ) -> bool {
        let Ok(entry) = self.entry(frame) else {
            return false;
        };
        if !splits && !entry.is_split() {
            return self.commit_whole_share(frame, domain);
        }
        let (Some(kind), Ok(set)) = (entry.kind(), self.domain_set(domain)) else {
            return false;
        };
        let slot = Slot {
            set,
            domain: Some(domain),
        };
        let mut net = NetChange::new();
        self.share_net(&mut net, entry, slot);
        self.apply_net(&net, kind, entry.causer(), 1);
        self.store_appended(frame, entry, kind, true, entry.causer(), slot)
            .is_some()
    }

    /// Commits a `Share` whose frame stays whole, unchanged since reserve validated it: only
    /// the sharer list changes. False (having changed nothing) for a split frame. Agrees with
    /// [`Ledger::commit_share`].
    #[inline(always)]
    pub(super) fn commit_whole_share(&mut self, frame: FrameIndex, domain: DomainId) -> bool {
        let Ok(entry) = self.entry(frame) else {
            return false;
        };
        let (Some(kind), Ok(set)) = (entry.kind(), self.domain_set(domain)) else {
            return false;
        };
        if entry.is_split() {
            return false;
        }
        let slot = Slot {
            set,
            domain: Some(domain),
        };
        self.store_appended(frame, entry, kind, false, entry.causer(), slot)
            .is_some()
    }

    /// `domain` leaves `frame` (see [`Ledger::unmap`]): the two common cases straight-line —
    /// the only mapper of a single-slot frame leaves (freed), a non-paying sharer leaves a
    /// whole frame the payer still maps — and two-slot frames through
    /// [`Ledger::depart_pair`]. Agrees with [`Ledger::depart_slow`], which takes the rest.
    #[inline(always)]
    pub(super) fn depart(
        &mut self,
        frame: FrameIndex,
        domain: DomainId,
    ) -> Result<Unmapped, Error> {
        let entry = self.entry(frame)?;
        if !self.fast() {
            return self.depart_slow(frame, domain, entry);
        }
        if let Some(kind) = entry.kind().filter(|kind| kind.is_mapped()) {
            match entry.list() {
                // Fast path: the only mapper of a single-slot frame leaves; it is freed.
                None => {
                    if entry.inline_word() as u16 == domain.0 && domain.0 != NO_DOMAIN {
                        let payer = SetId(entry.payer_raw());
                        self.uncharge(payer, kind, FRAME_BYTES, entry.causer());
                        self.frames[frame.index()] = FrameEntry::FREE;
                        self.frames_in_use = checked_sub(self.frames_in_use, 1);
                        return Ok(Unmapped::Freed);
                    }
                }
                // Fast path: a sharer that does not pay (e.g. a copy-on-write writer) leaves a
                // whole frame that one other domain, the payer's, still maps: the charge stays
                // put.
                Some(list) => {
                    if let [holder, sharer] = *self.pool.get(list) {
                        if sharer.domain == Some(domain)
                            && holder.domain.is_some()
                            && !entry.is_split()
                        {
                            self.pool.release(list);
                            self.frames[frame.index()] = FrameEntry::inline(
                                kind,
                                false,
                                entry.causer(),
                                holder.set,
                                holder.domain,
                            );
                            return Ok(Unmapped::StillMapped);
                        }
                        if let Some(unmapped) =
                            self.depart_pair(frame, entry, kind, [holder, sharer], domain)?
                        {
                            return Ok(unmapped);
                        }
                    }
                }
            }
        }
        self.depart_slow(frame, domain, entry)
    }

    /// [`Ledger::depart`] from a frame of two slots, both mapped, one of them `domain`'s
    /// (the payer leaving a whole frame, or either sharer of a split one): the `release`
    /// policy moves the departing slot's bytes to the other slot (`migrate`, if that fits) or
    /// keeps them there without a mapper (`stay`), exactly as [`Ledger::depart_slow`] decides.
    /// `None` (having changed nothing) for other frames.
    #[inline(never)]
    pub(super) fn depart_pair(
        &mut self,
        frame: FrameIndex,
        entry: FrameEntry,
        kind: Kind,
        [first, second]: [Slot; 2],
        domain: DomainId,
    ) -> Result<Option<Unmapped>, Error> {
        let (position, leaving, other) = if first.domain == Some(domain) {
            (0, first, second)
        } else if second.domain == Some(domain) {
            (1, second, first)
        } else {
            return Ok(None);
        };
        let split = entry.is_split();
        let causer = entry.causer();
        if other.domain.is_none() || (!split && position == 1) {
            return Ok(None);
        }
        if !split && other.set == leaving.set {
            // The payer leaves, but its set still maps the frame through the other domain:
            // the charge is where it belongs already.
            let stay = Slot {
                set: leaving.set,
                domain: other.domain,
            };
            self.store(frame, entry, kind, false, causer, &[stay]);
            return Ok(Some(Unmapped::StillMapped));
        }
        let event = || ChargeEvent {
            what: EventKind::Release,
            kind,
            causer: Some(domain),
            candidates: Candidates {
                holder: Some(first.set),
                departing: Some(leaving.set),
                surviving: Some(other.set),
                ..Candidates::default()
            },
            sharers: 0,
            headroom: Headroom::UNKNOWN,
        };
        // Whole: the payer's 4096 bytes move; split: a half (and the survivor pays it all).
        let moved = slot_bytes(split, 2, position);
        if self.decision(self.policies.release, EventKind::Release, event) == Decision::Migrate
            && self.fits_move(leaving.set, other.set, kind, moved)
        {
            if leaving.set != other.set {
                self.uncharge(leaving.set, kind, moved, causer);
                self.charge(other.set, kind, moved, causer);
            }
            self.store(frame, entry, kind, split, causer, &[other]);
        } else {
            let mut stay = [first, second];
            stay[position].domain = None;
            self.pool_room(entry, &stay)?;
            self.store(frame, entry, kind, split, causer, &stay);
        }
        Ok(Some(Unmapped::StillMapped))
    }
}

//! Reserving a plan: every charge computed and checked against every limit (payer and
//! ancestors, per-kind sub-limits), the frames' states validated, nothing changed. The general
//! path; the shortcuts for the common plans are in [`super::fast`] and must decide exactly as
//! [`Ledger::reserve_plan`] here does.

use super::*;

impl<'a> Ledger<'a> {
    /// Checks every charge of `plan` against every limit (payer and ancestors, per-kind
    /// sub-limits included) and the frames' states, changing nothing; a denial counts one
    /// denial of its kind on the payer set whose charge failed, and is
    /// [`Error::OverLimit`].
    pub fn reserve<'l, 'p, 'f>(
        &'l mut self,
        plan: &'p Plan<'f>,
    ) -> Result<Reservation<'l, 'a, 'p, 'f>, Error> {
        if !self.fast() {
            self.reserve_plan(plan)?;
            return Ok(Reservation { ledger: self, plan });
        }
        match *plan.ops() {
            // Fast path: one new frame with a single payer (most faults and objects).
            [ref op @ (Op::Anon { .. }
            | Op::PageTable { .. }
            | Op::Kernel { .. }
            | Op::DomainObject { .. })] => {
                if let Some(charge) = self.single_charge(op)? {
                    self.resolved.payer[0] = charge.set;
                    self.resolved.set_plan(false, false);
                    if let Err(denial) = self.check_one(&charge) {
                        return Err(self.deny(denial, plan));
                    }
                }
            }
            [Op::Share { frame, domain }] => {
                if !self.reserve_one_share(frame, domain, plan)? {
                    self.reserve_general(plan)?;
                }
            }
            [Op::CowCopy {
                original,
                copy,
                writer,
            }] => self.reserve_one_copy(original, copy, writer, plan)?,
            _ => self.reserve_general(plan)?,
        }
        Ok(Reservation { ledger: self, plan })
    }

    /// [`Ledger::reserve`] of other plans: the fast path of simple plans, else the general
    /// one.
    #[inline(always)]
    pub(super) fn reserve_general(&mut self, plan: &Plan<'_>) -> Result<(), Error> {
        if !self.fast() || !(self.reserve_new_frames(plan)? || self.reserve_simple(plan)?) {
            self.reserve_plan(plan)?;
        }
        Ok(())
    }

    /// [`Ledger::reserve`] of any plan.
    #[inline(never)]
    pub(super) fn reserve_plan(&mut self, plan: &Plan<'_>) -> Result<(), Error> {
        let ops = plan.ops();
        let mut charges = Charges::new();
        // Sharer lists are counted only when the pool might run short of them: every
        // operation needs at most one per frame it shares or copy it makes.
        let bound: usize = ops
            .iter()
            .map(|op| match *op {
                Op::Msgbuf { .. } | Op::Share { .. } | Op::CowCopy { .. } => 1,
                Op::ShareMany { frames, .. } => frames.len(),
                _ => 0,
            })
            .sum();
        let count_lists = bound + POOL_DEPARTURE_RESERVE > self.pool.unused_lists();
        let mut need = count_lists.then(PoolNeed::new);
        let mut copies = 0;
        let mut named: heapless::Vec<FrameIndex, { 2 * PLAN_OPS }> = heapless::Vec::new();
        for (index, op) in ops.iter().enumerate() {
            self.plan_op(index, op, &mut charges, need.as_mut())?;
            let (first, second) = match *op {
                Op::Anon { frame, .. }
                | Op::PageTable { frame, .. }
                | Op::Kernel { frame, .. }
                | Op::DomainObject { frame, .. }
                | Op::Msgbuf { frame, .. }
                | Op::Share { frame, .. } => (Some(frame), None),
                Op::ShareMany { .. } => (None, None),
                Op::CowCopy { original, copy, .. } => {
                    copies += 1;
                    (Some(original), Some(copy))
                }
            };
            for frame in [first, second].into_iter().flatten() {
                if named.contains(&frame) {
                    return Err(Error::BadPlan);
                }
                // Two per operation, PLAN_OPS operations: room for all.
                let _ = named.push(frame);
            }
        }
        let share_many = ops.iter().any(|op| matches!(op, Op::ShareMany { .. }));
        self.resolved.set_plan(copies > 0, share_many);
        if let Some(need) = need {
            let lists = need.count() + copies;
            if lists > 0 && lists + POOL_DEPARTURE_RESERVE > self.pool.unused_lists() {
                return Err(Error::PoolFull);
            }
        }
        if let Err(denial) = self.check(&charges) {
            return Err(self.deny(denial, plan));
        }
        Ok(())
    }

    /// Counts a denial (see [`Ledger::count_denial`]) and traces the denied plan.
    #[cold]
    pub(super) fn deny(&mut self, denial: Denial, plan: &Plan<'_>) -> Error {
        self.count_denial(denial);
        self.emit_plan(plan);
        Error::OverLimit(denial)
    }

    /// Counts a denial on the payer (`denied`) and at the set whose limit failed
    /// (`limit_hits`), and remembers it on the domain that caused it (`last_denial`).
    #[cold]
    pub(super) fn count_denial(&mut self, denial: Denial) {
        self.sets[denial.payer.index()].denied[denial.kind.index()] += 1;
        self.sets[denial.limit_set.index()].limit_hits[denial.kind.index()] += 1;
        if let Some(domain) = denial
            .causer
            .and_then(|causer| self.domains.get_mut(causer.index()))
        {
            domain.last_denial = Some(denial);
        }
    }

    /// The one charge of a new single-payer frame, validated; `None` for other operations.
    #[inline(always)]
    pub(super) fn single_charge(&self, op: &Op<'_>) -> Result<Option<Charge>, Error> {
        let (set, kind, causer) = match *op {
            Op::Anon { frame, domain } => {
                self.require_free(frame)?;
                (self.domain_set(domain)?, Kind::Anon, Some(domain))
            }
            Op::PageTable {
                frame,
                owner,
                causer,
            } => {
                self.require_free(frame)?;
                let set = self.page_table_payer(owner, causer)?;
                (set, Kind::PageTables, Some(causer))
            }
            Op::Kernel { frame, set, causer } => {
                self.require_free(frame)?;
                self.set(set)?;
                if let Some(causer) = causer {
                    self.domain(causer)?;
                }
                (set, Kind::Kernel, causer)
            }
            Op::DomainObject {
                frame,
                domain,
                spawner,
            } => {
                self.require_free(frame)?;
                let set = self.kernel_object_payer(domain, spawner)?;
                (set, Kind::Kernel, Some(spawner.unwrap_or(domain)))
            }
            _ => return Ok(None),
        };
        Ok(Some(Charge {
            set,
            kind,
            bytes: FRAME_BYTES as i64,
            causer,
        }))
    }

    /// Validates operation `index` of a plan, adds its charges and (when `need` is given) the
    /// sharer lists it needs, and records what commit needs.
    pub(super) fn plan_op(
        &mut self,
        index: usize,
        op: &Op<'_>,
        charges: &mut Charges,
        need: Option<&mut PoolNeed>,
    ) -> Result<(), Error> {
        match *op {
            Op::Anon { .. }
            | Op::PageTable { .. }
            | Op::Kernel { .. }
            | Op::DomainObject { .. } => {
                if let Some(charge) = self.single_charge(op)? {
                    self.resolved.payer[index] = charge.set;
                    add_charge(
                        charges,
                        charge.set,
                        charge.kind,
                        charge.bytes,
                        charge.causer,
                    )?;
                }
                Ok(())
            }
            Op::Msgbuf {
                frame,
                sender,
                receiver,
            } => {
                self.require_free(frame)?;
                // The payers in place (a returned list would be copied).
                let mut slots = SlotList::new();
                let split = self.msgbuf_slots(sender, receiver, &mut slots)?;
                if let Some(need) = need {
                    need.add(&self.pool, &slots);
                }
                let mut net = NetChange::new();
                net_change(&mut net, &[], false, &slots, split);
                for &(set, delta) in net.iter() {
                    add_charge(charges, set, Kind::Msgbuf, delta, Some(sender))?;
                }
                Ok(())
            }
            Op::Share { frame, domain } => {
                let entry = self.entry(frame)?;
                let mut net = NetChange::new();
                let planned = self.plan_share(frame, entry, domain, charges, need, &mut net)?;
                self.resolved.set_splits(index, planned.splits);
                Ok(())
            }
            Op::ShareMany { frames, domain } => {
                let single = self.plan_share_many(frames, domain, charges, need)?;
                if index == 0 {
                    self.resolved.set_first_single_run(single);
                }
                Ok(())
            }
            Op::CowCopy {
                original,
                copy,
                writer,
            } => {
                if original == copy {
                    return Err(Error::BadPlan);
                }
                let payer = self.cow_copy_payer(original, writer)?;
                self.require_free(copy)?;
                self.resolved.payer[index] = payer;
                add_charge(charges, payer, Kind::Cow, FRAME_BYTES as i64, Some(writer))
            }
        }
    }

    /// Validates `domain` sharing `frame` (entry `entry`), adds the charges (`net`, per frame)
    /// and the sharer list it needs.
    pub(super) fn plan_share(
        &self,
        frame: FrameIndex,
        entry: FrameEntry,
        domain: DomainId,
        charges: &mut Charges,
        need: Option<&mut PoolNeed>,
        net: &mut NetChange,
    ) -> Result<PlannedShare, Error> {
        let (view, slot, splits) = self.share_decision(frame, entry, domain)?;
        let split = splits || view.split;
        let mut counted_past = false;
        if need.is_some() || view.split || split {
            let mut new = SlotList::new();
            let _ = new.extend_from_slice(view.slots());
            // share_decision checked there is room.
            let _ = new.push(slot);
            if let Some(need) = need {
                counted_past = need.add(&self.pool, &new);
            }
            net_change(net, view.slots(), view.split, &new, split);
            for &(set, delta) in net.iter() {
                add_charge(charges, set, view.kind, delta, view.causer)?;
            }
        } else {
            // Whole before and after, same holder: nothing moves.
            net.clear();
        }
        Ok(PlannedShare {
            splits,
            kind: view.kind,
            causer: view.causer,
            counted_past,
        })
    }

    /// [`Ledger::plan_share`] for every frame of a `ShareMany`, a run of equal entries at a
    /// time: a frame whose entry equals the previous one's is valid and changes the same
    /// charges (added up once the run ends) and needs the same sharer list. True when the
    /// frames are one run.
    pub(super) fn plan_share_many(
        &self,
        frames: &[FrameIndex],
        domain: DomainId,
        charges: &mut Charges,
        mut need: Option<&mut PoolNeed>,
    ) -> Result<bool, Error> {
        let mut net = NetChange::new();
        let mut start = 0;
        let mut runs = 0;
        while let Some(&frame) = frames.get(start) {
            let entry = self.entry(frame)?;
            let planned =
                self.plan_share(frame, entry, domain, charges, need.as_deref_mut(), &mut net)?;
            // The run: the frames after it with an equal entry.
            let extra = storage::equal_run(self.frames, &frames[start + 1..], entry.bits());
            let end = start + 1 + extra;
            if planned.counted_past {
                if let Some(need) = need.as_deref_mut() {
                    need.more += extra;
                }
            }
            add_run_charges(charges, &net, &planned, extra as i64)?;
            start = end;
            runs += 1;
        }
        Ok(runs == 1)
    }

    /// Checks one charge against every limit on the way to the root.
    #[inline(always)]
    pub(super) fn check_one(&self, charge: &Charge) -> Result<(), Denial> {
        self.check_within(charge, charge.bytes as u64)
    }

    /// Checks one (positive) charge of a plan whose charges all go to the same set and add
    /// `total` bytes there, against every limit on the way to the root.
    #[inline(always)]
    pub(super) fn check_within(&self, charge: &Charge, total: u64) -> Result<(), Denial> {
        let kind = charge.kind.index();
        let bytes = charge.bytes as u64;
        let mut cursor = Some(charge.set);
        while let Some(set_id) = cursor {
            let set = &self.sets[set_id.index()];
            if let Some(limit) = set.kind_limit_bytes[kind] {
                if set.subtree_of(kind).saturating_add(bytes) > limit {
                    return Err(charge.denial(set_id, true, bytes));
                }
            }
            if let Some(limit) = set.limit_bytes {
                if set.subtree_bytes().saturating_add(total) > limit {
                    return Err(charge.denial(set_id, false, total));
                }
            }
            cursor = set.parent;
        }
        Ok(())
    }

    /// Checks aggregated charges against every limit on the way to the root.
    pub(super) fn check(&self, charges: &[Charge]) -> Result<(), Denial> {
        if let [charge] = charges {
            return if charge.bytes > 0 {
                self.check_one(charge)
            } else {
                Ok(())
            };
        }
        // When every charge goes to one set, every ancestor holds all of them.
        let one_set = charges
            .split_first()
            .is_none_or(|(first, rest)| rest.iter().all(|charge| charge.set == first.set));
        let total: i64 = if one_set {
            charges.iter().map(|charge| charge.bytes).sum()
        } else {
            0
        };
        for charge in charges.iter().filter(|charge| charge.bytes > 0) {
            let kind = charge.kind.index();
            let mut cursor = Some(charge.set);
            while let Some(set_id) = cursor {
                let set = &self.sets[set_id.index()];
                let (kind_net, total_net) = if one_set {
                    (charge.bytes, total)
                } else {
                    self.net_within(set_id, set.depth, charge.kind, charges)
                };
                if kind_net > 0 {
                    if let Some(limit) = set.kind_limit_bytes[kind] {
                        if set.subtree_of(kind).saturating_add(kind_net as u64) > limit {
                            return Err(charge.denial(set_id, true, kind_net as u64));
                        }
                    }
                }
                if total_net > 0 {
                    if let Some(limit) = set.limit_bytes {
                        if set.subtree_bytes().saturating_add(total_net as u64) > limit {
                            return Err(charge.denial(set_id, false, total_net as u64));
                        }
                    }
                }
                cursor = set.parent;
            }
        }
        Ok(())
    }

    /// Net bytes (of `kind`, and of all kinds) the charges add within `ancestor`'s subtree.
    pub(super) fn net_within(
        &self,
        ancestor: SetId,
        depth: u8,
        kind: Kind,
        charges: &[Charge],
    ) -> (i64, i64) {
        let mut kind_net = 0;
        let mut total_net = 0;
        for charge in charges {
            if self.is_within(charge.set, ancestor, depth) {
                total_net += charge.bytes;
                if charge.kind == kind {
                    kind_net += charge.bytes;
                }
            }
        }
        (kind_net, total_net)
    }

    /// Whether `set` is `ancestor` or a descendant of it (`depth` = the ancestor's depth).
    pub(super) fn is_within(&self, set: SetId, ancestor: SetId, depth: u8) -> bool {
        let mut cursor = set;
        loop {
            let node = &self.sets[cursor.index()];
            if node.depth <= depth {
                return cursor == ancestor;
            }
            match node.parent {
                Some(parent) => cursor = parent,
                None => return false,
            }
        }
    }
}

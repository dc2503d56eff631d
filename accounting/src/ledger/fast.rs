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

    /// A page fault's charges without a plan: a new `anon` frame `page` mapped by `owner`
    /// (paid by its set) and the page-table frames `tables` its address space needed, made
    /// necessary by `causer` (paid per the `pagetable` policy) — reserved and committed at
    /// once, in straight-line code: payers from the domain and policy tables, one limit walk,
    /// the entries stored, the counters. Decides exactly as [`Ledger::apply`] of the plan
    /// `[Anon, PageTable…]` (same validation order, the same aggregated charges given to
    /// [`Ledger::check`], the same commits) — which it runs instead with the fast paths off,
    /// so the differential test compares the two; a traced ledger gets the plan's record.
    #[inline]
    pub fn new_page(
        &mut self,
        page: FrameIndex,
        owner: DomainId,
        causer: DomainId,
        tables: &[FrameIndex],
    ) -> Result<(), Error> {
        if !tables.is_empty() || !self.fast() {
            return self.new_page_with_tables(page, owner, causer, tables);
        }
        // The demand-zero fault: the page free and the owner known, one charge, one limit
        // walk.
        let Some(owner_set) = self.free_page_owner(page, owner) else {
            return Err(self.page_refused(page, owner));
        };
        let charge = Charge {
            set: owner_set,
            kind: Kind::Anon,
            bytes: FRAME_BYTES as i64,
            causer: Some(owner),
        };
        if let Err(denial) = self.check_one(&charge) {
            return Err(self.page_denied(denial, page, owner, causer, tables));
        }
        self.create(page, Kind::Anon, Some(owner), owner_set, Some(owner));
        if self.hook.is_some() {
            self.trace_page(page, owner, causer, tables);
        }
        Ok(())
    }

    /// [`Ledger::new_page`] with tables (or with the fast paths off: as the plan).
    #[inline(never)]
    fn new_page_with_tables(
        &mut self,
        page: FrameIndex,
        owner: DomainId,
        causer: DomainId,
        tables: &[FrameIndex],
    ) -> Result<(), Error> {
        if !self.fast() || tables.len() >= PLAN_OPS {
            return self.apply(&page_plan(page, owner, causer, tables)?);
        }
        let Some(owner_set) = self.free_page_owner(page, owner) else {
            return Err(self.page_refused(page, owner));
        };
        // Validated in the plan's order: each table free, its payer, no frame named twice.
        // The payer depends only on owner and causer: the plan asks it per table, and after
        // the first it can neither fail nor differ.
        let mut table_set = None;
        for (index, &table) in tables.iter().enumerate() {
            self.require_free(table)?;
            if table_set.is_none() {
                table_set = Some(self.page_table_payer(owner, causer)?);
            }
            if table == page || tables[..index].contains(&table) {
                return Err(Error::BadPlan);
            }
        }
        let table_set = table_set.unwrap_or(SetId::KERNEL);
        let table_bytes = tables.len() as u64 * FRAME_BYTES;
        let anon = Charge {
            set: owner_set,
            kind: Kind::Anon,
            bytes: FRAME_BYTES as i64,
            causer: Some(owner),
        };
        let paging = Charge {
            set: table_set,
            kind: Kind::PageTables,
            bytes: table_bytes as i64,
            causer: Some(causer),
        };
        let checked = if table_set == owner_set {
            // One set (`check`'s one-set case): every ancestor holds both charges; the page's
            // walk first, then the tables'.
            let total = FRAME_BYTES + table_bytes;
            self.check_within(&anon, total)
                .and_then(|()| self.check_within(&paging, total))
        } else {
            let mut charges = Charges::new();
            charges.push(anon).map_err(|_| Error::BadPlan)?;
            charges.push(paging).map_err(|_| Error::BadPlan)?;
            self.check(&charges)
        };
        if let Err(denial) = checked {
            return Err(self.page_denied(denial, page, owner, causer, tables));
        }
        self.create(page, Kind::Anon, Some(owner), owner_set, Some(owner));
        // The tables' entries, then their charges at once (the sum of one charge each).
        for &table in tables {
            if let Some(entry) = self.frames.get_mut(table.index()) {
                *entry = FrameEntry::inline(Kind::PageTables, false, Some(causer), table_set, None);
            }
        }
        self.frames_in_use += tables.len() as u64;
        self.charge(table_set, Kind::PageTables, table_bytes, Some(causer));
        if self.hook.is_some() {
            self.trace_page(page, owner, causer, tables);
        }
        Ok(())
    }

    /// The trace record of [`Ledger::new_page`]: its plan's.
    #[cold]
    #[inline(never)]
    fn trace_page(
        &mut self,
        page: FrameIndex,
        owner: DomainId,
        causer: DomainId,
        tables: &[FrameIndex],
    ) {
        if let Ok(plan) = page_plan(page, owner, causer, tables) {
            self.emit_plan(&plan);
        }
    }

    /// The set of `owner` when `page` is free and `owner` known (else
    /// [`page_refused`](Self::page_refused) says the general path's error).
    #[inline(always)]
    fn free_page_owner(&self, page: FrameIndex, owner: DomainId) -> Option<SetId> {
        match (
            self.frames.get(page.index()),
            self.domains.get(owner.index()),
        ) {
            (Some(entry), Some(domain)) if entry.is_free() => Some(domain.set),
            _ => None,
        }
    }

    /// Why [`Ledger::new_page`] refuses `page` for `owner`: the general path's error.
    #[cold]
    #[inline(never)]
    fn page_refused(&self, page: FrameIndex, owner: DomainId) -> Error {
        match self
            .require_free(page)
            .and_then(|()| self.domain_set(owner))
        {
            Err(error) => error,
            Ok(_) => Error::BadPlan,
        }
    }

    /// [`Ledger::new_page`] denied: counted, and traced as its plan would be.
    #[cold]
    #[inline(never)]
    fn page_denied(
        &mut self,
        denial: Denial,
        page: FrameIndex,
        owner: DomainId,
        causer: DomainId,
        tables: &[FrameIndex],
    ) -> Error {
        self.count_denial(denial);
        if self.hook.is_some() {
            if let Ok(plan) = page_plan(page, owner, causer, tables) {
                self.emit_plan(&plan);
            }
        }
        Error::OverLimit(denial)
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
    pub(super) fn copy_page(
        &mut self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
    ) -> Result<(), Error> {
        let charge = self.copy_charge(original, copy, writer)?;
        if let Err(denial) = self.check_one(&charge) {
            return Err(self.copy_denied(denial, original, copy, writer));
        }
        self.create(copy, Kind::Cow, Some(writer), charge.set, Some(writer));
        let result = self.depart(original, writer);
        debug_assert!(result.is_ok(), "reserved copy-on-write departure failed");
        if self.hook.is_some() {
            self.emit_plan(&Plan::one(Op::CowCopy {
                original,
                copy,
                writer,
            }));
        }
        Ok(())
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

    /// Reserves a plan of new single-payer frames and shares that charge nothing (a fault's
    /// page and tables, a share and the tables it needs) when every new frame has the same
    /// payer and the pool has lists to spare: what [`Ledger::reserve_plan`] would decide, in
    /// the same order, without its tables. False (having changed nothing) when that general
    /// path must decide.
    #[inline(never)]
    pub(super) fn reserve_simple(&mut self, plan: &Plan<'_>) -> Result<bool, Error> {
        let ops = plan.ops();
        let mut shares = 0;
        // The charges, by kind in the order they first appear, all to `payer`.
        let mut payer = None;
        let mut bytes = [0u64; Kind::COUNT];
        let mut causers = [None; Kind::COUNT];
        let mut order = [Kind::Anon; Kind::COUNT];
        let mut kinds = 0;
        for (index, op) in ops.iter().enumerate() {
            let frame = match *op {
                Op::Share { frame, domain } => {
                    if !self.reserve_whole_share(frame, domain)? {
                        return Ok(false);
                    }
                    self.resolved.set_splits(index, false);
                    shares += 1;
                    frame
                }
                Op::Anon { frame, .. }
                | Op::PageTable { frame, .. }
                | Op::Kernel { frame, .. }
                | Op::DomainObject { frame, .. } => {
                    let Some(charge) = self.single_charge(op)? else {
                        return Ok(false);
                    };
                    if payer.is_some_and(|payer| payer != charge.set) {
                        return Ok(false);
                    }
                    payer = Some(charge.set);
                    self.resolved.payer[index] = charge.set;
                    let kind = charge.kind.index();
                    if bytes[kind] == 0 {
                        order[kinds] = charge.kind;
                        kinds += 1;
                        causers[kind] = charge.causer;
                    }
                    bytes[kind] += FRAME_BYTES;
                    frame
                }
                _ => return Ok(false),
            };
            if ops[..index].iter().any(|op| op.frame() == Some(frame)) {
                return Err(Error::BadPlan);
            }
        }
        // Each share may need a list; the general path counts them when the pool runs short.
        if shares > 0 && shares + POOL_DEPARTURE_RESERVE > self.pool.unused_lists() {
            return Ok(false);
        }
        self.resolved.set_plan(false, false);
        if let Some(set) = payer {
            let total = bytes.iter().sum();
            for &kind in &order[..kinds] {
                let charge = Charge {
                    set,
                    kind,
                    bytes: bytes[kind.index()] as i64,
                    causer: causers[kind.index()],
                };
                if let Err(denial) = self.check_within(&charge, total) {
                    return Err(self.deny(denial, plan));
                }
            }
        }
        Ok(true)
    }

    /// Reserves a plan whose every operation is a new single-payer frame (`Anon`,
    /// `PageTable`, `Kernel`, `DomainObject`: a new domain's objects, root table, image pages
    /// and tables; a fault's page and tables), whatever their payers: what
    /// [`Ledger::reserve_plan`] decides, in its order — each operation validated (its frame
    /// free, its payer found), then checked against the frames named before it, the charges
    /// aggregated by set and kind in the order they first appear and checked together — but
    /// each payer decided once per distinct operation (the decision is a function of the
    /// operation without its frame and of the ledger, which reserving does not change), and
    /// a repeated frame found with a 64-bit filter before any scan. False (having changed
    /// nothing) for a plan with other operations.
    #[inline(never)]
    pub(super) fn reserve_new_frames(&mut self, plan: &Plan<'_>) -> Result<bool, Error> {
        let ops = plan.ops();
        let single = |op: &Op<'_>| {
            matches!(
                op,
                Op::Anon { .. }
                    | Op::PageTable { .. }
                    | Op::Kernel { .. }
                    | Op::DomainObject { .. }
            )
        };
        if ops.len() < 2 || !ops.iter().all(single) {
            return Ok(false);
        }
        // The last operation of each kind decided, with its charge.
        let mut decided: [Option<(Op<'_>, Charge)>; 4] = [None; 4];
        let slot = |op: &Op<'_>| match op {
            Op::Anon { .. } => 0,
            Op::PageTable { .. } => 1,
            Op::Kernel { .. } => 2,
            _ => 3,
        };
        let mut charges = Charges::new();
        let mut seen = 0u64;
        for (index, op) in ops.iter().enumerate() {
            let Some(frame) = op.frame() else {
                return Err(Error::BadPlan);
            };
            let cached = decided[slot(op)].filter(|(earlier, _)| same_payer_inputs(earlier, op));
            let charge = match cached {
                Some((_, charge)) => {
                    self.require_free(frame)?;
                    charge
                }
                None => {
                    let Some(charge) = self.single_charge(op)? else {
                        return Err(Error::BadPlan);
                    };
                    decided[slot(op)] = Some((*op, charge));
                    charge
                }
            };
            self.resolved.payer[index] = charge.set;
            add_charge(
                &mut charges,
                charge.set,
                charge.kind,
                charge.bytes,
                charge.causer,
            )?;
            let bit = 1u64 << (frame.0 % 64);
            if seen & bit != 0 && ops[..index].iter().any(|op| op.frame() == Some(frame)) {
                return Err(Error::BadPlan);
            }
            seen |= bit;
        }
        self.resolved.set_plan(false, false);
        if let Err(denial) = self.check(&charges) {
            return Err(self.deny(denial, plan));
        }
        Ok(true)
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
        let event = ChargeEvent {
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
        let splits = match self.policies.cow.decide(&event) {
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
        let event = ChargeEvent {
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
        if self.policies.release.decide(&event) == Decision::Migrate
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

/// The plan [`Ledger::new_page`] decides as: the page, then its tables.
fn page_plan<'f>(
    page: FrameIndex,
    owner: DomainId,
    causer: DomainId,
    tables: &[FrameIndex],
) -> Result<Plan<'f>, Error> {
    let mut plan = Plan::one(Op::Anon {
        frame: page,
        domain: owner,
    });
    for &frame in tables {
        plan.push(Op::PageTable {
            frame,
            owner,
            causer,
        })?;
    }
    Ok(plan)
}

/// Whether two new-frame operations of the same kind have the same payer inputs (everything but
/// the frame), so that their single charges are the same.
fn same_payer_inputs(a: &Op<'_>, b: &Op<'_>) -> bool {
    match (*a, *b) {
        (Op::Anon { domain: x, .. }, Op::Anon { domain: y, .. }) => x == y,
        (
            Op::PageTable {
                owner: o1,
                causer: c1,
                ..
            },
            Op::PageTable {
                owner: o2,
                causer: c2,
                ..
            },
        ) => o1 == o2 && c1 == c2,
        (
            Op::Kernel {
                set: s1,
                causer: c1,
                ..
            },
            Op::Kernel {
                set: s2,
                causer: c2,
                ..
            },
        ) => s1 == s2 && c1 == c2,
        (
            Op::DomainObject {
                domain: d1,
                spawner: p1,
                ..
            },
            Op::DomainObject {
                domain: d2,
                spawner: p2,
                ..
            },
        ) => d1 == d2 && p1 == p2,
        _ => false,
    }
}

//! The fast paths of new frames: a page fault's page and tables without a plan
//! ([`Ledger::new_page`]), a new domain's objects and root table without a plan
//! ([`Ledger::new_domain_objects`]), and plans of new frames only, with one payer or several
//! ([`Ledger::reserve_simple`], [`Ledger::reserve_new_frames`]). Each names the general
//! function it must agree with; the differential test compares them (see [`super::fast`]).

use super::*;

impl<'a> Ledger<'a> {
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
        self.new_anon_page(page, owner, causer)
    }

    /// [`Ledger::new_page`] of a page that needs no new table (the demand-zero fault): the
    /// straight-line [`Ledger::anon_page`] when it applies, else the general path, which
    /// decides (and names or counts what refused it).
    #[inline]
    pub fn new_anon_page(
        &mut self,
        page: FrameIndex,
        owner: DomainId,
        causer: DomainId,
    ) -> Result<(), Error> {
        if self.anon_page(page, owner) {
            return Ok(());
        }
        self.new_page_with_tables(page, owner, causer, &[])
    }

    /// [`Ledger::new_anon_page`]'s straight-line path: the page free and the owner known, no
    /// limit anywhere, one charge and the entry stored — true when done; false, having
    /// changed nothing, when the general path must decide. Inlined into its caller (the
    /// kernel's fault path): a call would cost the caller more in saved registers than the
    /// charge itself.
    #[inline(always)]
    pub fn anon_page(&mut self, page: FrameIndex, owner: DomainId) -> bool {
        if !self.fast() {
            return false;
        }
        let Some(owner_set) = self.free_page_owner(page, owner) else {
            return false;
        };
        if self.limited != 0 {
            return self.anon_page_limited(page, owner, owner_set);
        }
        self.charge_anon_page(page, owner, owner_set)
    }

    /// The charge and entry of [`Ledger::anon_page`] once it fits: true.
    #[inline(always)]
    fn charge_anon_page(&mut self, page: FrameIndex, owner: DomainId, owner_set: SetId) -> bool {
        self.charge_inline(owner_set, Kind::Anon, FRAME_BYTES, Some(owner));
        self.store_new(page, Kind::Anon, Some(owner), owner_set, Some(owner));
        if self.charged_and_traced() {
            // With no table the plan has no causer.
            self.trace_page(page, owner, owner, &[]);
        }
        true
    }

    /// [`Ledger::anon_page`] where some set has a limit: the one limit walk, then the same
    /// charge (out of line: the unlimited path keeps its registers). False, having changed
    /// nothing, when a limit refuses it: the general path then decides and counts the denial.
    #[inline(never)]
    fn anon_page_limited(&mut self, page: FrameIndex, owner: DomainId, owner_set: SetId) -> bool {
        let charge = Charge {
            set: owner_set,
            kind: Kind::Anon,
            bytes: FRAME_BYTES as i64,
            causer: Some(owner),
        };
        if self.check_one(&charge).is_err() {
            return false;
        }
        self.charge_anon_page(page, owner, owner_set)
    }

    /// [`Ledger::new_page`] of a page and the one or two tables its space needed (a fault in a
    /// fresh 2 MiB block or 1 GiB slot) in straight-line code: the payers from the domain
    /// table and the `pagetable` policy's fixed decision, the entries stored, the charges.
    /// Decides as `new_page` does. When this path does not apply (a limit anywhere, a policy
    /// that looks at the event, the fast paths off, another number of tables) or the charge
    /// is refused, it changes nothing and `new_page`'s general path decides, naming or
    /// counting what refused it.
    #[inline(never)]
    pub fn new_page_and_tables(
        &mut self,
        page: FrameIndex,
        owner: DomainId,
        causer: DomainId,
        tables: &[FrameIndex],
    ) -> Result<(), Error> {
        let done = match *tables {
            [table] => self.page_and_tables(page, owner, causer, [table]),
            [first, second] => self.page_and_tables(page, owner, causer, [first, second]),
            _ => None,
        };
        match done {
            Some(()) => Ok(()),
            None => self.new_page_with_tables(page, owner, causer, tables),
        }
    }

    /// [`Ledger::new_page_and_tables`] of one table (a fault in a fresh 2 MiB block), without
    /// a slice to match: the straight-line [`Ledger::page_and_table`] when it applies, else
    /// the general path.
    #[inline]
    pub fn new_page_and_table(
        &mut self,
        page: FrameIndex,
        owner: DomainId,
        causer: DomainId,
        table: FrameIndex,
    ) -> Result<(), Error> {
        if self.page_and_table(page, owner, causer, table) {
            return Ok(());
        }
        self.new_page_with_tables(page, owner, causer, &[table])
    }

    /// [`Ledger::new_page_and_table`]'s straight-line path: true when done; false, having
    /// changed nothing, when the general path must decide. Inlined into its caller, as
    /// [`Ledger::anon_page`] is.
    #[inline(always)]
    pub fn page_and_table(
        &mut self,
        page: FrameIndex,
        owner: DomainId,
        causer: DomainId,
        table: FrameIndex,
    ) -> bool {
        self.page_and_tables(page, owner, causer, [table]).is_some()
    }

    /// [`Ledger::new_page_and_tables`] of `N` tables (one copy of the code per count, its
    /// loops unrolled), `None` for "not done".
    #[inline(always)]
    fn page_and_tables<const N: usize>(
        &mut self,
        page: FrameIndex,
        owner: DomainId,
        causer: DomainId,
        tables: [FrameIndex; N],
    ) -> Option<()> {
        if !self.fast() || self.limited != 0 {
            return None;
        }
        // Every frame free, none named twice.
        for (position, &table) in tables.iter().enumerate() {
            if table == page || tables[..position].contains(&table) {
                return None;
            }
        }
        let owner_set = self.free_page_owner(page, owner)?;
        for table in tables {
            if !self.frames.get(table.index())?.is_free() {
                return None;
            }
        }
        // The plan's payer asks for both domains' sets, whatever the policy decides.
        let causer_set = self.domains.get(causer.index())?.set;
        let table_set = match self.fixed_decision(EventKind::PageTable)? {
            Decision::Owner => owner_set,
            Decision::Causer => causer_set,
            _ => return None,
        };
        self.store_new(page, Kind::Anon, Some(owner), owner_set, Some(owner));
        for table in tables {
            self.store_new(table, Kind::PageTables, Some(causer), table_set, None);
        }
        let table_bytes = N as u64 * FRAME_BYTES;
        if table_set == owner_set {
            self.charge_page_and_tables(owner_set, owner, causer, table_bytes);
        } else {
            self.charge_inline(owner_set, Kind::Anon, FRAME_BYTES, Some(owner));
            self.charge_inline(table_set, Kind::PageTables, table_bytes, Some(causer));
        }
        if self.charged_and_traced() {
            self.trace_page(page, owner, causer, &tables);
        }
        Some(())
    }

    /// A new domain's kernel objects — its control block and capability table, paid per the
    /// `kernel` policy (its own set or its spawner's) — and its root table, paid per the
    /// `pagetable` policy (made necessary by the spawner, or by the domain itself at boot):
    /// [`Ledger::apply`] of the plan `[DomainObject, DomainObject, PageTable]`
    /// ([`objects_plan`]), which it runs when its straight-line path does not apply (a limit
    /// anywhere, a policy that looks at the event, the fast paths off) or finds something
    /// wrong, so that the general path decides and names it.
    #[inline(never)]
    pub fn new_domain_objects(
        &mut self,
        objects: [FrameIndex; 2],
        root: FrameIndex,
        domain: DomainId,
        spawner: Option<DomainId>,
    ) -> Result<(), Error> {
        match self.domain_objects(objects, root, domain, spawner) {
            Some(()) => Ok(()),
            None => self.apply(&objects_plan(objects, root, domain, spawner)?),
        }
    }

    /// [`Ledger::new_domain_objects`]'s straight-line path, `None` for "not done" (having
    /// changed nothing): the three frames free and distinct, both payers from the domain
    /// table and the policies' fixed decisions, the entries stored, the charges in one walk
    /// when one set pays all three.
    #[inline(always)]
    fn domain_objects(
        &mut self,
        [dcb, caps]: [FrameIndex; 2],
        root: FrameIndex,
        domain: DomainId,
        spawner: Option<DomainId>,
    ) -> Option<()> {
        if !self.fast() || self.limited != 0 || dcb == caps || root == dcb || root == caps {
            return None;
        }
        for frame in [dcb, caps, root] {
            if !self.frames.get(frame.index())?.is_free() {
                return None;
            }
        }
        // Both decisions ask for both sets (as the plan's payers do), whatever they decide.
        let causer = spawner.unwrap_or(domain);
        let own = self.domains.get(domain.index())?.set;
        let causer_set = self.domains.get(causer.index())?.set;
        let decided = |decision| match decision {
            Decision::Owner => Some(own),
            Decision::Causer => Some(causer_set),
            _ => None,
        };
        let object_set = decided(self.fixed_decision(EventKind::KernelObject)?)?;
        let table_set = decided(self.fixed_decision(EventKind::PageTable)?)?;
        self.store_new(dcb, Kind::Kernel, Some(causer), object_set, None);
        self.store_new(caps, Kind::Kernel, Some(causer), object_set, None);
        self.store_new(root, Kind::PageTables, Some(causer), table_set, None);
        if object_set == table_set {
            self.charge_kinds(
                object_set,
                [
                    (Kind::Kernel, 2 * FRAME_BYTES, Some(causer)),
                    (Kind::PageTables, FRAME_BYTES, Some(causer)),
                ],
            );
        } else {
            self.charge_inline(object_set, Kind::Kernel, 2 * FRAME_BYTES, Some(causer));
            self.charge_inline(table_set, Kind::PageTables, FRAME_BYTES, Some(causer));
        }
        if self.charged_and_traced() {
            self.trace_objects([dcb, caps], root, domain, spawner);
        }
        Some(())
    }

    /// The trace record of [`Ledger::new_domain_objects`]: its plan's.
    #[cold]
    #[inline(never)]
    fn trace_objects(
        &mut self,
        objects: [FrameIndex; 2],
        root: FrameIndex,
        domain: DomainId,
        spawner: Option<DomainId>,
    ) {
        if let Ok(plan) = objects_plan(objects, root, domain, spawner) {
            self.emit_plan(&plan);
        }
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
        let checked = if self.limited == 0 {
            // No set has a limit: nothing can deny the charges.
            Ok(())
        } else if table_set == owner_set {
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
        if self.traced() {
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
        if self.traced() {
            if let Ok(plan) = page_plan(page, owner, causer, tables) {
                self.emit_plan(&plan);
            }
        }
        Error::OverLimit(denial)
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
}

/// The plan [`Ledger::new_page`] decides as: the page, then its tables.
pub(super) fn page_plan<'f>(
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

/// The plan [`Ledger::new_domain_objects`] decides as: the control block, the capability
/// table, the root table.
pub(super) fn objects_plan<'f>(
    [dcb, caps]: [FrameIndex; 2],
    root: FrameIndex,
    domain: DomainId,
    spawner: Option<DomainId>,
) -> Result<Plan<'f>, Error> {
    let object = |frame| Op::DomainObject {
        frame,
        domain,
        spawner,
    };
    let mut plan = Plan::one(object(dcb));
    plan.push(object(caps))?;
    plan.push(Op::PageTable {
        frame: root,
        owner: domain,
        causer: spawner.unwrap_or(domain),
    })?;
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

//! Batches: the plans of one kernel operation too large for one plan (a spawn: its kernel
//! objects, each page of its program image, each span of the regions it shares), reserved one
//! after another before any of them is committed, then committed in the same order.
//!
//! [`Ledger::batch_add`] reserves a plan as if every plan added before it had been committed:
//! its frames are validated and its payers decided as [`Ledger::reserve`] does, and its
//! charges are checked against every limit *on top of* the charges of the plans before it
//! (the sets' subtree sums as they will be by then). So a batch is refused exactly where
//! committing its plans one at a time would have refused one — the same plan, the same denial
//! counted — but a refused batch has changed nothing else: no earlier plan of it was
//! committed, so nothing has to be undone. Its trace is one `refused` record (the denial):
//! plans are traced as they commit. [`Ledger::batch_commit`] then applies the plans in order
//! (the plans before it committed, the ledger is as the batch took it to be, so this cannot
//! fail): a page or a domain's objects by their fast paths ([`Ledger::batch_commit_page`],
//! [`Ledger::batch_commit_objects`]), a share as its reservation left it. [`Ledger::batch_finish`]
//! checks that the plans committed are the plans added. The sharer lists the plans need are
//! counted in room the caller lends ([`BatchNeed`]).
//!
//! Invariants:
//! - only plans whose payers do not depend on headroom or on the other plans are accepted: new
//!   frames (`Anon`, `PageTable`, `Kernel`, `DomainObject`) and shares (`Share`,
//!   `ShareMany`); a copy or a message buffer is [`Error::BadPlan`]. The policies decide those
//!   from the event alone, so the decision at commit is the decision reserve checked;
//! - the plans of a batch name disjoint frames (each plan is validated against the ledger as
//!   it was before the batch). Where no set has a limit, the plan-less steps (a page and its
//!   tables, a domain's objects) are only counted when added: nothing but a kernel bug (a
//!   frame in use, an unknown domain) can refuse them then, and their commit finds it, as
//!   committing them one at a time would;
//! - nothing changes the ledger between the first add and the last commit: the batch keeps
//!   the ledger's revision and refuses a plan (`BadPlan`) if it moved;
//! - sharer lists: a plan's new lists are counted with those of the plans before it (equal
//!   lists once, as sequential plans would find an earlier plan's list in the pool); lists
//!   the earlier plans free are not credited, so near an exhausted pool a batch can be
//!   refused (`PoolFull`) where one-at-a-time plans would just have fitted.

use super::*;

/// Most distinct (set, kind) charges the plans of one batch make together.
const BATCH_CHARGES: usize = 2 * PLAN_CHARGES;

/// Plans reserved together (see the module): made by [`Ledger::batch`], filled by
/// [`Ledger::batch_add`], applied by [`Ledger::batch_commit`]. Dropping a batch before its
/// first commit changes nothing. (What the plans charge together is kept in the ledger,
/// which reserves one batch at a time; the sharer lists they need, here.)
#[must_use = "a batch changes nothing until its plans are committed"]
pub struct Batch<'n> {
    plans: u32,
    committed: u32,
    /// Bit `i`: plan `i` (of the first 64) is a `ShareMany` first, whose frames reserve found
    /// one run (committed without comparing them again: see `commit_share_many`).
    single_runs: u64,
    /// Whether `need` is being counted.
    counting: bool,
    /// The most lists the plans added so far can need.
    bound: usize,
    /// The sharer lists they need (counted once the pool may run short), in the caller's
    /// [`BatchNeed`]: outside the ledger, so that reserving a plan counts into it in place,
    /// and outside the batch, which stays a few words.
    need: &'n mut PoolNeed,
    /// The ledger's revision the batch expects (as of its start, then of its last commit).
    revision: u64,
    /// Fingerprints of the plans added and of the plans committed.
    added: u64,
    applied: u64,
}

/// Room for the sharer lists the plans of a batch need, which the caller keeps (a kernel, in
/// its own static state) and lends to [`Ledger::batch`]: some kilobytes, which a batch made
/// and moved by value would copy.
pub struct BatchNeed(PoolNeed);

impl BatchNeed {
    /// Empty room.
    pub const NEW: BatchNeed = BatchNeed(PoolNeed::new());
}

/// What the plans of the batch being reserved charge together, kept in the ledger.
pub(super) struct Accumulated {
    /// The charges of the plans added so far, by (set, kind).
    charges: heapless::Vec<Charge, BATCH_CHARGES>,
}

impl Accumulated {
    /// Nothing accumulated.
    pub(super) const NEW: Accumulated = Accumulated {
        charges: heapless::Vec::new(),
    };
}

/// Folds `plan` into a fingerprint: its length and the frame its first operation names (a
/// `ShareMany` by its length), FNV-1a style — enough to catch a commit out of order.
#[inline(always)]
fn fingerprint(hash: u64, plan: &Plan<'_>) -> u64 {
    let first = match plan.ops().first() {
        Some(Op::ShareMany { frames, .. }) => frames.len() as u64 | 1 << 40,
        Some(op) => op.frame().map_or(0, |frame| u64::from(frame.0)),
        None => 0,
    };
    fold(hash, plan.len(), first)
}

/// Folds a plan of `ops` operations whose first names `first` into a fingerprint (the one
/// formula of [`fingerprint`] and of the plan-less page steps).
#[inline(always)]
fn fold(hash: u64, ops: usize, first: u64) -> u64 {
    (hash ^ ((ops as u64) << 48 ^ first)).wrapping_mul(0x0000_0100_0000_01b3)
}

impl<'a> Ledger<'a> {
    /// An empty batch over the ledger as it is now, counting the sharer lists its plans need
    /// in `need` (a batch begun before and not finished is forgotten).
    pub fn batch<'n>(&mut self, need: &'n mut BatchNeed) -> Batch<'n> {
        self.batch.charges.clear();
        need.0.lists.clear();
        need.0.more = 0;
        Batch {
            plans: 0,
            committed: 0,
            single_runs: 0,
            counting: false,
            bound: 0,
            need: &mut need.0,
            revision: self.revision,
            added: 0xcbf2_9ce4_8422_2325,
            applied: 0xcbf2_9ce4_8422_2325,
        }
    }

    /// Reserves `plan` after the plans already in `batch` (see the module): validated and
    /// decided as [`Ledger::reserve`] would, checked against every limit on top of their
    /// charges. A denial counts one denial, as [`Ledger::reserve`] does, and ends the batch
    /// (drop it); nothing else changes.
    pub fn batch_add(&mut self, batch: &mut Batch, plan: &Plan<'_>) -> Result<(), Error> {
        if batch.committed != 0 || batch.revision != self.revision {
            return Err(Error::BadPlan);
        }
        let ops = plan.ops();
        let mut bound = 0;
        for op in ops {
            match *op {
                Op::Share { .. } => bound += 1,
                Op::ShareMany { frames, .. } => bound += frames.len(),
                Op::Msgbuf { .. } | Op::CowCopy { .. } => return Err(Error::BadPlan),
                _ => {}
            }
        }
        // As reserve_plan: lists are counted only when the pool might run short; once counting
        // starts, the plans before are assumed to need every list they could.
        if !batch.counting
            && batch.bound + bound + POOL_DEPARTURE_RESERVE > self.pool.unused_lists()
        {
            batch.counting = true;
            batch.need.more += batch.bound;
        }
        batch.bound += bound;
        let single = |op: &Op<'_>| {
            matches!(
                op,
                Op::Anon { .. }
                    | Op::PageTable { .. }
                    | Op::Kernel { .. }
                    | Op::DomainObject { .. }
            )
        };
        if self.limited == 0 && !batch.counting && ops.iter().all(single) {
            // New frames where no set has a limit: only the frames and payers to validate
            // (what plan_op checks of them), and each frame named once.
            let mut seen = 0u64;
            for (index, op) in ops.iter().enumerate() {
                self.single_charge(op)?;
                let frame = op.frame().ok_or(Error::BadPlan)?;
                let bit = 1u64 << (frame.0 % 64);
                if seen & bit != 0 && ops[..index].iter().any(|op| op.frame() == Some(frame)) {
                    return Err(Error::BadPlan);
                }
                seen |= bit;
            }
            batch.plans += 1;
            batch.added = fingerprint(batch.added, plan);
            return Ok(());
        }
        let lists_before = batch.need.count();
        let mut charges = Charges::new();
        // Frames named twice: a 64-bit filter first, a scan only on a hit (as
        // reserve_new_frames).
        let mut seen = 0u64;
        for (index, op) in ops.iter().enumerate() {
            let need = batch.counting.then_some(&mut *batch.need);
            self.plan_op(index, op, &mut charges, need)?;
            if let Some(frame) = op.frame() {
                let bit = 1u64 << (frame.0 % 64);
                if seen & bit != 0 && ops[..index].iter().any(|op| op.frame() == Some(frame)) {
                    return Err(Error::BadPlan);
                }
                seen |= bit;
            }
        }
        if matches!(ops.first(), Some(Op::ShareMany { .. }))
            && self.resolved.single_run(0)
            && batch.plans < 64
        {
            batch.single_runs |= 1 << batch.plans;
        }
        if self.limited == 0 && !batch.counting {
            // No set has a limit (and none can get one before the batch commits): nothing can
            // be denied or run short, so only the frames and the decisions needed validating.
            batch.plans += 1;
            batch.added = fingerprint(batch.added, plan);
            return Ok(());
        }
        if batch.counting {
            let lists = batch.need.count();
            if lists > lists_before && lists + POOL_DEPARTURE_RESERVE > self.pool.unused_lists() {
                return Err(Error::PoolFull);
            }
        }
        if self.limited != 0 {
            if let Err(denial) = self.check_after(&charges, &self.batch.charges) {
                // Traced as the refusal (the batch's plans never commit, so none is traced).
                self.count_denial(denial);
                self.emit(|| TraceRecord::Refused { denial });
                return Err(Error::OverLimit(denial));
            }
        }
        for charge in &charges {
            add_charge(
                &mut self.batch.charges,
                charge.set,
                charge.kind,
                charge.bytes,
                charge.causer,
            )?;
        }
        batch.plans += 1;
        batch.added = fingerprint(batch.added, plan);
        Ok(())
    }

    /// [`Ledger::batch_add`] of the plan `[Anon page, PageTable table…]` (a page and the
    /// tables it needed, caused by `causer`), without the plan where no set has a limit: then
    /// nothing can refuse it but a kernel bug (a frame in use, an unknown domain), which its
    /// commit finds as a one-at-a-time commit would (see the module), so it is only counted.
    /// Else through the plan.
    pub fn batch_add_page(
        &mut self,
        batch: &mut Batch,
        page: FrameIndex,
        owner: DomainId,
        causer: DomainId,
        tables: &[FrameIndex],
    ) -> Result<(), Error> {
        if self.batch_count(batch) {
            return Ok(());
        }
        self.batch_add(batch, &fast_frames::page_plan(page, owner, causer, tables)?)
    }

    /// [`Ledger::batch_add`] of the plan of [`Ledger::new_domain_objects`] (a new domain's
    /// control block and capability table, then its root table), without the plan where no
    /// set has a limit, as [`Ledger::batch_add_page`].
    pub fn batch_add_objects(
        &mut self,
        batch: &mut Batch,
        objects: [FrameIndex; 2],
        root: FrameIndex,
        domain: DomainId,
        spawner: Option<DomainId>,
    ) -> Result<(), Error> {
        if self.batch_count(batch) {
            return Ok(());
        }
        let plan = fast_frames::objects_plan(objects, root, domain, spawner)?;
        self.batch_add(batch, &plan)
    }

    /// Adds a plan-less step (a page and its tables, a domain's objects: see
    /// [`Ledger::batch_add_page`]) without its operands, where no set has a limit: then
    /// nothing can refuse it but a kernel bug, which its commit finds (see the module), so it
    /// is only counted (true). False, having changed nothing, where it must be added with its
    /// operands, which checks them.
    #[inline]
    pub fn batch_count(&self, batch: &mut Batch) -> bool {
        if self.limited != 0 || batch.committed != 0 || batch.revision != self.revision {
            return false;
        }
        batch.plans += 1;
        true
    }

    /// Commits the next plan of `batch` (the plans in the order they were added). Cannot fail
    /// for the plans added; [`Error::BadPlan`] if the ledger changed since, or past the last.
    ///
    /// It is reserved and committed as any plan is ([`Ledger::apply`], fast paths included):
    /// the plans before it are committed by now, so the ledger is as [`Ledger::batch_add`]
    /// took it to be, and the reservation succeeds with the decisions and charges checked
    /// then.
    pub fn batch_commit(&mut self, batch: &mut Batch, plan: &Plan<'_>) -> Result<(), Error> {
        self.batch_next(batch)?;
        if plan
            .ops()
            .iter()
            .any(|op| matches!(op, Op::ShareMany { .. }))
        {
            // Not reserved again frame by frame: what commit needs besides the frames (the
            // new tables' payers) worked out, then committed as reserve_plan left it.
            self.resolve_tables(plan)?;
            let step = batch.committed;
            let single = step < 64 && batch.single_runs & (1 << step) != 0;
            self.resolved.set_first_single_run(single);
            self.commit_plan(plan);
        } else {
            self.apply(plan)?;
        }
        self.batch_done(batch, fingerprint(batch.applied, plan));
        Ok(())
    }

    /// [`Ledger::batch_commit`] of the plan `[Anon page, PageTable table…]` (a page and the
    /// tables it needed, caused by `causer`), without the plan: [`Ledger::new_page`].
    #[inline]
    pub fn batch_commit_page(
        &mut self,
        batch: &mut Batch,
        page: FrameIndex,
        owner: DomainId,
        causer: DomainId,
        tables: &[FrameIndex],
    ) -> Result<(), Error> {
        self.batch_next(batch)?;
        if tables.is_empty() {
            self.new_page(page, owner, causer, tables)?;
        } else {
            self.new_page_and_tables(page, owner, causer, tables)?;
        }
        self.plan_less_done(batch, 1 + tables.len(), page);
        Ok(())
    }

    /// [`Ledger::batch_commit`] of the plan of [`Ledger::new_domain_objects`], without the
    /// plan: [`Ledger::new_domain_objects`].
    pub fn batch_commit_objects(
        &mut self,
        batch: &mut Batch,
        objects: [FrameIndex; 2],
        root: FrameIndex,
        domain: DomainId,
        spawner: Option<DomainId>,
    ) -> Result<(), Error> {
        self.batch_next(batch)?;
        self.new_domain_objects(objects, root, domain, spawner)?;
        self.plan_less_done(batch, 3, objects[0]);
        Ok(())
    }

    /// What [`Ledger::plan_op`] records for the commit of a plan of shares and new frames:
    /// each new frame's payer (a `ShareMany` records nothing).
    fn resolve_tables(&mut self, plan: &Plan<'_>) -> Result<(), Error> {
        for (index, op) in plan.ops().iter().enumerate() {
            match *op {
                Op::ShareMany { .. } => {}
                Op::Anon { .. }
                | Op::PageTable { .. }
                | Op::Kernel { .. }
                | Op::DomainObject { .. } => {
                    if let Some(charge) = self.single_charge(op)? {
                        self.resolved.payer[index] = charge.set;
                    }
                }
                _ => return Err(Error::BadPlan),
            }
        }
        self.resolved.set_plan(false, true);
        Ok(())
    }

    #[inline(always)]
    fn batch_next(&self, batch: &Batch) -> Result<(), Error> {
        if batch.revision != self.revision || batch.committed >= batch.plans {
            return Err(Error::BadPlan);
        }
        Ok(())
    }

    /// [`Ledger::batch_done`] of a plan-less step of `ops` operations whose first names
    /// `first`: fingerprinted as it was added — with its operands where some set has a limit,
    /// else only counted ([`Ledger::batch_count`]).
    #[inline(always)]
    fn plan_less_done(&self, batch: &mut Batch, ops: usize, first: FrameIndex) {
        let applied = if self.limited != 0 {
            fold(batch.applied, ops, u64::from(first.0))
        } else {
            batch.applied
        };
        self.batch_done(batch, applied);
    }

    #[inline(always)]
    fn batch_done(&self, batch: &mut Batch, applied: u64) {
        batch.committed += 1;
        batch.revision = self.revision;
        batch.applied = applied;
    }

    /// Ends a batch: every plan added was committed, in order ([`Error::BadPlan`] otherwise).
    pub fn batch_finish(&self, batch: Batch<'_>) -> Result<(), Error> {
        if batch.committed == batch.plans && batch.added == batch.applied {
            Ok(())
        } else {
            Err(Error::BadPlan)
        }
    }

    /// Counts the denial of a refused batch as a trace recorded it (`refused`): a replay's,
    /// which has not the batch's plans.
    pub fn count_refused(&mut self, denial: Denial) -> Result<(), Error> {
        self.set(denial.payer)?;
        self.set(denial.limit_set)?;
        if let Some(causer) = denial.causer {
            self.domain(causer)?;
        }
        self.count_denial(denial);
        self.emit(|| TraceRecord::Refused { denial });
        Ok(())
    }

    /// [`Ledger::check`] of `charges` made after `before` (the charges of the plans before,
    /// not yet committed): every set's counters are taken as they will be once `before` is.
    /// With no `before`, exactly [`Ledger::check`]; otherwise the same checks in the same
    /// order, naming the same denial (this plan's bytes).
    fn check_after(&self, charges: &[Charge], before: &[Charge]) -> Result<(), Denial> {
        if before.is_empty() {
            return self.check(charges);
        }
        for charge in charges.iter().filter(|charge| charge.bytes > 0) {
            let kind = charge.kind.index();
            let mut cursor = Some(charge.set);
            while let Some(set_id) = cursor {
                let set = &self.sets[set_id.index()];
                let (kind_net, total_net) =
                    self.net_within(set_id, set.depth, charge.kind, charges);
                let (kind_before, total_before) =
                    self.net_within(set_id, set.depth, charge.kind, before);
                let exceeds = |now: u64, before: i64, net: i64, limit: u64| {
                    i128::from(now) + i128::from(before) + i128::from(net) > i128::from(limit)
                };
                if kind_net > 0 {
                    if let Some(limit) = set.kind_limit_bytes[kind] {
                        if exceeds(set.subtree_of(kind), kind_before, kind_net, limit) {
                            return Err(charge.denial(set_id, true, kind_net as u64));
                        }
                    }
                }
                if total_net > 0 {
                    if let Some(limit) = set.limit_bytes {
                        if exceeds(set.subtree_bytes(), total_before, total_net, limit) {
                            return Err(charge.denial(set_id, false, total_net as u64));
                        }
                    }
                }
                cursor = set.parent;
            }
        }
        Ok(())
    }
}

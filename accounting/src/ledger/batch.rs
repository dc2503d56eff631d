//! Batches: the plans of one kernel operation too large for one plan (a spawn: its kernel
//! objects, each page of its program image, each span of the regions it shares), reserved one
//! after another before any of them is committed, then committed in the same order.
//!
//! [`Ledger::batch_add`] reserves a plan as if every plan added before it had been committed:
//! its frames are validated and its payers decided as [`Ledger::reserve`] does, and its
//! charges are checked against every limit *on top of* the charges of the plans before it
//! (the sets' `subtree` counters as they will be by then). So a batch is refused exactly where
//! committing its plans one at a time would have refused one — the same plan, the same denial
//! counted — but a refused batch has changed nothing else: no earlier plan of it was
//! committed, so nothing has to be undone. Its trace is one `refused` record (the denial):
//! plans are traced as they commit. [`Ledger::batch_commit`] then applies the plans,
//! which cannot fail, and [`Ledger::batch_finish`] checks that the plans committed are the
//! plans added.
//!
//! Invariants:
//! - only plans whose payers do not depend on headroom or on the other plans are accepted: new
//!   frames (`Anon`, `PageTable`, `Kernel`, `DomainObject`) and shares (`Share`,
//!   `ShareMany`); a copy or a message buffer is [`Error::BadPlan`]. The policies decide those
//!   from the event alone, so the decision at commit is the decision reserve checked;
//! - the plans of a batch name disjoint frames (each plan is validated against the ledger as
//!   it was before the batch);
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
/// first commit changes nothing.
#[must_use = "a batch changes nothing until its plans are committed"]
pub struct Batch {
    /// The charges of the plans added so far, by (set, kind).
    charges: heapless::Vec<Charge, BATCH_CHARGES>,
    /// The sharer lists they need (counted once the pool may run short).
    need: PoolNeed,
    /// Whether `need` is being counted.
    counting: bool,
    /// The most lists the plans added so far can need.
    bound: usize,
    plans: u32,
    committed: u32,
    /// The ledger's revision the batch expects (as of its start, then of its last commit).
    revision: u64,
    /// Fingerprints of the plans added and of the plans committed.
    added: u64,
    applied: u64,
}

/// Folds `plan` into a fingerprint (FNV-1a over each operation's kind and frames; a
/// `ShareMany` by its length and end frames).
fn fingerprint(mut hash: u64, plan: &Plan<'_>) -> u64 {
    let mut mix = |value: u64| hash = (hash ^ value).wrapping_mul(0x0000_0100_0000_01b3);
    for op in plan.ops() {
        match *op {
            Op::Anon { frame, .. } => mix(1 << 32 | u64::from(frame.0)),
            Op::PageTable { frame, .. } => mix(2 << 32 | u64::from(frame.0)),
            Op::Kernel { frame, .. } => mix(3 << 32 | u64::from(frame.0)),
            Op::DomainObject { frame, .. } => mix(4 << 32 | u64::from(frame.0)),
            Op::Share { frame, .. } => mix(5 << 32 | u64::from(frame.0)),
            Op::ShareMany { frames, .. } => {
                mix(6 << 32 | frames.len() as u64);
                if let (Some(first), Some(last)) = (frames.first(), frames.last()) {
                    mix(u64::from(first.0) << 32 | u64::from(last.0));
                }
            }
            Op::Msgbuf { frame, .. } => mix(7 << 32 | u64::from(frame.0)),
            Op::CowCopy { original, copy, .. } => {
                mix(8 << 32 | u64::from(original.0));
                mix(u64::from(copy.0));
            }
        }
    }
    hash
}

impl<'a> Ledger<'a> {
    /// An empty batch over the ledger as it is now.
    pub fn batch(&self) -> Batch {
        Batch {
            charges: heapless::Vec::new(),
            need: PoolNeed::new(),
            counting: false,
            bound: 0,
            plans: 0,
            committed: 0,
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
        let lists_before = batch.need.count();
        let mut charges = Charges::new();
        let mut named: heapless::Vec<FrameIndex, PLAN_OPS> = heapless::Vec::new();
        for (index, op) in ops.iter().enumerate() {
            let need = if batch.counting {
                Some(&mut batch.need)
            } else {
                None
            };
            self.plan_op(index, op, &mut charges, need)?;
            if let Some(frame) = op.frame() {
                if named.contains(&frame) {
                    return Err(Error::BadPlan);
                }
                let _ = named.push(frame);
            }
        }
        if batch.counting {
            let lists = batch.need.count();
            if lists > lists_before && lists + POOL_DEPARTURE_RESERVE > self.pool.unused_lists() {
                return Err(Error::PoolFull);
            }
        }
        if self.limited != 0 {
            if let Err(denial) = self.check_after(&charges, &batch.charges) {
                // Traced as the refusal (the batch's plans never commit, so none is traced).
                self.count_denial(denial);
                self.emit(|| TraceRecord::Refused { denial });
                return Err(Error::OverLimit(denial));
            }
        }
        for charge in &charges {
            add_charge(
                &mut batch.charges,
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

    /// Commits the next plan of `batch` (the plans in the order they were added). Cannot fail
    /// for the plans added; [`Error::BadPlan`] if the ledger changed since, or past the last.
    pub fn batch_commit(&mut self, batch: &mut Batch, plan: &Plan<'_>) -> Result<(), Error> {
        if batch.revision != self.revision || batch.committed >= batch.plans {
            return Err(Error::BadPlan);
        }
        self.resolve(plan)?;
        self.commit_plan(plan);
        batch.committed += 1;
        batch.revision = self.revision;
        batch.applied = fingerprint(batch.applied, plan);
        Ok(())
    }

    /// Ends a batch: every plan added was committed, in order ([`Error::BadPlan`] otherwise).
    pub fn batch_finish(&self, batch: Batch) -> Result<(), Error> {
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

    /// Works out again what [`Ledger::plan_op`] recorded for commit (each new frame's payer,
    /// each share's split), without charges: the decisions a batch's plan was reserved with,
    /// which nothing in between changed (see the module).
    fn resolve(&mut self, plan: &Plan<'_>) -> Result<(), Error> {
        let mut share_many = false;
        for (index, op) in plan.ops().iter().enumerate() {
            match *op {
                Op::Anon { .. }
                | Op::PageTable { .. }
                | Op::Kernel { .. }
                | Op::DomainObject { .. } => {
                    if let Some(charge) = self.single_charge(op)? {
                        self.resolved.payer[index] = charge.set;
                    }
                }
                Op::Share { frame, domain } => {
                    let entry = self.entry(frame)?;
                    let (_, _, splits) = self.share_decision(frame, entry, domain)?;
                    self.resolved.set_splits(index, splits);
                }
                Op::ShareMany { .. } => share_many = true,
                Op::Msgbuf { .. } | Op::CowCopy { .. } => return Err(Error::BadPlan),
            }
        }
        self.resolved.set_plan(false, share_many);
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
                        if exceeds(set.subtree[kind], kind_before, kind_net, limit) {
                            return Err(charge.denial(set_id, true, kind_net as u64));
                        }
                    }
                }
                if total_net > 0 {
                    if let Some(limit) = set.limit_bytes {
                        if exceeds(set.subtree_bytes, total_before, total_net, limit) {
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

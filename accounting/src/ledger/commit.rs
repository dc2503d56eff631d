//! Committing a reserved plan (cannot fail), the one-operation conveniences (reserve, then
//! commit) and the trace record of a plan.

use super::*;

impl<'a> Ledger<'a> {
    /// Applies a reserved plan: first every new frame and share, then the departures of
    /// copy-on-write writers (whose `migrate` checks then see the plan's own charges).
    pub(super) fn commit_plan(&mut self, plan: &Plan<'_>) {
        // Fast path: one new frame.
        if !self.fast() {
            self.commit_ops(plan.ops());
            if self.traced() {
                self.emit_plan(plan);
            }
            return;
        }
        match *plan.ops() {
            [Op::Anon { frame, domain }] => {
                let payer = self.resolved.payer[0];
                self.create(frame, Kind::Anon, Some(domain), payer, Some(domain));
            }
            [Op::PageTable { frame, causer, .. }] => {
                let payer = self.resolved.payer[0];
                self.create(frame, Kind::PageTables, Some(causer), payer, None);
            }
            [Op::Kernel { frame, set, causer }] => {
                self.create(frame, Kind::Kernel, causer, set, None);
            }
            [Op::DomainObject {
                frame,
                domain,
                spawner,
            }] => {
                let payer = self.resolved.payer[0];
                let causer = Some(spawner.unwrap_or(domain));
                self.create(frame, Kind::Kernel, causer, payer, None);
            }
            [Op::Share { frame, domain }] => {
                if !self.commit_one_share(frame, domain, self.resolved.splits(0)) {
                    self.commit_ops(plan.ops());
                }
            }
            [Op::CowCopy {
                original,
                copy,
                writer,
            }] => self.commit_one_copy(original, copy, writer),
            ref ops => self.commit_ops(ops),
        }
        if self.traced() {
            self.emit_plan(plan);
        }
    }

    /// Commits the operations of a plan in order, then the copies' departures.
    #[inline(never)]
    pub(super) fn commit_ops(&mut self, ops: &[Op<'_>]) {
        for (index, op) in ops.iter().enumerate() {
            match *op {
                Op::Anon { frame, domain } => {
                    let payer = self.resolved.payer[index];
                    self.create(frame, Kind::Anon, Some(domain), payer, Some(domain));
                }
                Op::PageTable { frame, causer, .. } => {
                    let payer = self.resolved.payer[index];
                    self.create(frame, Kind::PageTables, Some(causer), payer, None);
                }
                Op::Kernel { frame, set, causer } => {
                    self.create(frame, Kind::Kernel, causer, set, None);
                }
                Op::DomainObject {
                    frame,
                    domain,
                    spawner,
                } => {
                    let payer = self.resolved.payer[index];
                    let causer = Some(spawner.unwrap_or(domain));
                    self.create(frame, Kind::Kernel, causer, payer, None);
                }
                Op::Msgbuf {
                    frame,
                    sender,
                    receiver,
                } => {
                    let mut slots = SlotList::new();
                    if let Ok(split) = self.msgbuf_slots(sender, receiver, &mut slots) {
                        let result = self.transition(
                            frame,
                            FrameEntry::FREE,
                            Kind::Msgbuf,
                            Some(sender),
                            split,
                            &slots,
                        );
                        debug_assert!(result.is_ok(), "reserved message buffer failed");
                    }
                }
                Op::Share { frame, domain } => {
                    let splits = self.resolved.splits(index);
                    // Unless a `ShareMany` came first, the frame is as reserve saw it.
                    if !splits
                        && !self.resolved.share_many()
                        && self.commit_whole_share(frame, domain)
                    {
                        continue;
                    }
                    let mut net = NetChange::new();
                    let _ = self.commit_share(frame, domain, Some(splits), &mut net);
                }
                Op::ShareMany { frames, domain } => {
                    let single = self.resolved.single_run(index);
                    self.commit_share_many(frames, domain, single)
                }
                Op::CowCopy { copy, writer, .. } => {
                    let payer = self.resolved.payer[index];
                    self.create(copy, Kind::Cow, Some(writer), payer, Some(writer));
                }
            }
        }
        if self.resolved.copies() {
            for op in ops {
                if let Op::CowCopy {
                    original, writer, ..
                } = *op
                {
                    let result = self.depart(original, writer);
                    debug_assert!(result.is_ok(), "reserved copy-on-write departure failed");
                }
            }
        }
    }

    /// `domain` maps `frame` too; `splits` is the policy's decision as reserve saw it
    /// (`None`: ask the policy). A
    /// frame that cannot be shared any more (one a `ShareMany` names twice) is skipped.
    /// Returns the run the frame starts (frames whose entry equals its old one), with its
    /// per-frame charges in `net`; `None` if it starts none.
    pub(super) fn commit_share(
        &mut self,
        frame: FrameIndex,
        domain: DomainId,
        splits: Option<bool>,
        net: &mut NetChange,
    ) -> Option<Run> {
        let entry = self.entry(frame).ok()?;
        let (view, slot) = self.share_view(frame, entry, domain).ok()?;
        let splits = match splits {
            Some(splits) if view.slots().len() < MAX_SHARERS => splits,
            Some(_) => return None,
            None => self.share_split(&view, slot).ok()?,
        };
        let split = splits || view.split;
        let (kind, causer, charges) = (view.kind, view.causer, view.split || split);
        if charges {
            let mut new = SlotList::new();
            let _ = new.extend_from_slice(view.slots());
            // share_view / share_split checked there is room.
            let _ = new.push(slot);
            net_change(net, view.slots(), view.split, &new, split);
            self.apply_net(net, kind, causer, 1);
        } else {
            // Whole before and after, same holder: nothing moves.
            net.clear();
        }
        let stored = self.store_appended(frame, entry, kind, split, causer, slot)?;
        if stored == entry {
            // The new list took the id the old one just freed (no other frame had it): an
            // entry equal to the old one is this frame, already shared. No run.
            return None;
        }
        Some(Run {
            old: entry,
            new: stored,
            kind,
            causer,
            charges,
            extra: 0,
        })
    }

    /// Commits a `ShareMany` a run at a time: a frame whose entry equals the run's old one
    /// gets the run's new entry; the run's list references and charges are settled once.
    /// `single`: reserve found the frames one run, and nothing has touched them since (the
    /// plan's first operation, or a batch's step, whose frames no other step names): once the
    /// first frame is committed, the others take its run's new entry without being compared
    /// again (the first's commit changes only its own entry and the lists, and the others
    /// still hold the old one).
    pub(super) fn commit_share_many(
        &mut self,
        frames: &[FrameIndex],
        domain: DomainId,
        single: bool,
    ) {
        let mut net = NetChange::new();
        let mut start = 0;
        while let Some(&frame) = frames.get(start) {
            start += 1;
            let Some(mut run) = self.commit_share(frame, domain, None, &mut net) else {
                continue;
            };
            let (old, new) = (run.old.bits(), run.new);
            let extra = if start == frames.len() {
                0
            } else if single && start == 1 {
                storage::store_run(self.frames, &frames[1..], new)
            } else {
                storage::replace_run(self.frames, &frames[start..], old, new)
            };
            start += extra;
            run.extra = extra as u32;
            self.settle_run(&run, &net);
        }
    }

    /// Settles the `extra` frames of a run: their references to the new list (taken) and the
    /// old one (dropped), and their charges.
    pub(super) fn settle_run(&mut self, run: &Run, net: &NetChange) {
        if run.extra == 0 {
            return;
        }
        if let Some(list) = run.new.list() {
            self.pool.retain(list, run.extra);
        }
        if let Some(list) = run.old.list() {
            self.pool.release_many(list, run.extra);
        }
        if run.charges {
            self.apply_net(net, run.kind, run.causer, u64::from(run.extra));
        }
    }
    pub(super) fn emit_plan(&mut self, plan: &Plan<'_>) {
        if !self.traced() {
            return;
        }
        let Some(hook) = self.hook else {
            return;
        };
        if plan.len() >= 2 {
            hook(&TraceRecord::Plan {
                ops: plan.len() as u16,
            });
        }
        for op in plan.ops() {
            let record = match *op {
                Op::Anon { frame, domain } => TraceRecord::Anon { frame, domain },
                Op::PageTable {
                    frame,
                    owner,
                    causer,
                } => TraceRecord::PageTable {
                    frame,
                    owner,
                    causer,
                },
                Op::Kernel { frame, set, causer } => TraceRecord::Kernel { frame, set, causer },
                Op::DomainObject {
                    frame,
                    domain,
                    spawner,
                } => TraceRecord::DomainObject {
                    frame,
                    domain,
                    spawner,
                },
                Op::Msgbuf {
                    frame,
                    sender,
                    receiver,
                } => TraceRecord::Msgbuf {
                    frame,
                    sender,
                    receiver,
                },
                Op::Share { frame, domain } => TraceRecord::Share { frame, domain },
                Op::CowCopy {
                    original,
                    copy,
                    writer,
                } => TraceRecord::Cow {
                    original,
                    copy,
                    writer,
                },
                Op::ShareMany { frames, domain } => {
                    hook(&TraceRecord::ShareMany {
                        domain,
                        count: frames.len() as u32,
                    });
                    for chunk in frames.chunks(FRAMES_PER_RECORD) {
                        let mut list = heapless::Vec::new();
                        // A chunk holds at most FRAMES_PER_RECORD frames.
                        let _ = list.extend_from_slice(chunk);
                        hook(&TraceRecord::Frames { frames: list });
                    }
                    continue;
                }
            };
            hook(&record);
        }
    }

    /// Reserves and commits `plan`.
    pub fn apply(&mut self, plan: &Plan<'_>) -> Result<(), Error> {
        self.reserve(plan)?.commit();
        Ok(())
    }

    /// A new `anon` frame mapped by `domain`, paid by its set: [`Ledger::new_page`] with no
    /// tables.
    pub fn new_anon(&mut self, frame: FrameIndex, domain: DomainId) -> Result<(), Error> {
        self.new_page(frame, domain, domain, &[])
    }

    /// A new page-table frame in `owner`'s address space, made necessary by `causer`.
    pub fn new_page_table(
        &mut self,
        frame: FrameIndex,
        owner: DomainId,
        causer: DomainId,
    ) -> Result<(), Error> {
        self.apply(&Plan::one(Op::PageTable {
            frame,
            owner,
            causer,
        }))
    }

    /// A new kernel-object frame paid by `set`.
    pub fn new_kernel(
        &mut self,
        frame: FrameIndex,
        set: SetId,
        causer: Option<DomainId>,
    ) -> Result<(), Error> {
        self.apply(&Plan::one(Op::Kernel { frame, set, causer }))
    }

    /// A new message-buffer frame, paid per the `msgbuf` policy.
    pub fn new_msgbuf(
        &mut self,
        frame: FrameIndex,
        sender: DomainId,
        receiver: DomainId,
    ) -> Result<(), Error> {
        self.apply(&Plan::one(Op::Msgbuf {
            frame,
            sender,
            receiver,
        }))
    }

    /// `domain` maps `frame` too (copy-on-write).
    pub fn share(&mut self, frame: FrameIndex, domain: DomainId) -> Result<(), Error> {
        self.apply(&Plan::one(Op::Share { frame, domain }))
    }

    /// `domain` maps every frame of `frames` too, atomically.
    pub fn share_many(&mut self, frames: &[FrameIndex], domain: DomainId) -> Result<(), Error> {
        self.apply(&Plan::one(Op::ShareMany { frames, domain }))
    }

    /// Write fault by `writer` on shared `original`: `copy` becomes its private copy.
    /// [`Error::NotShared`] when nobody else maps `original` (restore write access instead).
    #[inline]
    pub fn cow_copy(
        &mut self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
    ) -> Result<(), Error> {
        if self.fast() {
            return self.copy_page(original, copy, writer);
        }
        self.cow_copy_planned(original, copy, writer)
    }

    /// [`Ledger::cow_copy`] as the plan `[CowCopy]` (the fast paths off).
    #[inline(never)]
    fn cow_copy_planned(
        &mut self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
    ) -> Result<(), Error> {
        self.apply(&Plan::one(Op::CowCopy {
            original,
            copy,
            writer,
        }))
    }
}

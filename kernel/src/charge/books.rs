//! The books kept by the `accounting` ledger (the default build): every frame charged under
//! the policies chosen at boot.

use super::{index, Charge, ChargeError, OpenError, Step};
use crate::memory::frames::{Frame, FrameAllocator};
pub use accounting::{Batch, BatchNeed};
use accounting::{
    Conservation, DomainId, DomainState, FrameEntry, FrameIndex, Kind, Ledger, Op, Plan, Policies,
    SetId, Unmapped,
};
use core::fmt;
use kcore::bootcfg::{BootConfig, Name};

/// The books: the ledger over every RAM frame, with the policies chosen at boot.
///
/// Laid out in declaration order (`repr(C)`): the flags every trap reads first, the ledger
/// (about 260 KB, with niches the compiler would otherwise lay the struct out around) last.
#[repr(C)]
pub struct Books {
    /// Whether the `cow` policy asks a keeper (`cow = keeper`), read once at boot.
    keeper_cow: bool,
    /// Whether the `msgbuf` policy asks a keeper (`msgbuf = keeper`).
    keeper_msgbuf: bool,
    /// Whether any set has a `high` bound (then the end of a trap asks whether the domain
    /// about to run is above one).
    any_high: bool,
    /// Neither of `keeper_cow` and `any_high`: a fault needs no keeper asked before or after
    /// it (the one flag the usual fault tests).
    usual_faults: bool,
    ledger: Ledger<'static>,
}

/// Prints one trace record as a framed console line.
fn print_trace(record: &accounting::TraceRecord) {
    crate::console::framed("trace", |w| write!(w, "{record}"));
}

/// A name in a fixed ABI field.
fn name_bytes(name: &str) -> abi::NameBytes {
    let mut bytes = abi::NameBytes::default();
    let length = name.len().min(abi::MAX_NAME_BYTES);
    bytes[..length].copy_from_slice(&name.as_bytes()[..length]);
    bytes
}

impl Books {
    /// Books with no frames yet (the ledger is about 260 KB: it lives in the kernel's static
    /// state and is opened in place by [`Books::open`]).
    pub const EMPTY: Books = Books {
        keeper_cow: false,
        keeper_msgbuf: false,
        any_high: false,
        usual_faults: true,
        ledger: Ledger::empty(),
    };

    /// Opens the books over `frame_table`, marks the first `boot_frames` frames as the kernel's
    /// own and looks the config's policies up.
    pub fn open(
        &mut self,
        frame_table: &'static mut [FrameEntry],
        config: &BootConfig,
        boot_frames: u32,
    ) -> Result<(), OpenError> {
        let lookup = |i: usize| {
            policies::lookup(policies::KEYS[i], config.policy[i])
                .map_err(|_| OpenError("unknown policy"))
        };
        let chosen = Policies {
            cow: lookup(0)?,
            msgbuf: lookup(1)?,
            pagetable: lookup(2)?,
            release: lookup(3)?,
            kernel: lookup(4)?,
            moves: lookup(5)?,
        };
        self.keeper_cow = chosen.cow.asks_keeper();
        self.keeper_msgbuf = chosen.msgbuf.asks_keeper();
        self.refresh_usual_faults();
        // `kernel::start` zeroed the table with DC ZVA; zero bytes are FrameEntry::FREE.
        self.ledger.reset_zeroed(frame_table, chosen);
        if config.trace {
            self.ledger.set_trace_hook(Some(print_trace));
        }
        self.ledger
            .mark_boot_range(FrameIndex(0), boot_frames)
            .map_err(|_| OpenError("frame table too small"))
    }

    /// Creates a charge set with optional per-kind sub-limits.
    pub fn create_set(
        &mut self,
        name: &str,
        parent: Option<SetId>,
        limit_bytes: Option<u64>,
        kind_limits: &[(Name, u64)],
    ) -> Result<SetId, accounting::Error> {
        let set = self.ledger.create_set(name, parent, limit_bytes)?;
        for (kind, bytes) in kind_limits {
            if let Some(kind) = Kind::from_key(kind) {
                self.ledger.set_kind_limit(set, kind, Some(*bytes))?;
            }
        }
        Ok(set)
    }

    /// Changes a set's limit.
    pub fn set_limit(
        &mut self,
        set: SetId,
        limit_bytes: Option<u64>,
    ) -> Result<(), accounting::Error> {
        self.ledger.set_limit(set, limit_bytes)
    }

    /// Whether a set `name` can be created under `parent`: the error `create_set` would
    /// return, changing nothing (a system call's decode half).
    pub fn check_new_set(&self, name: &str, parent: SetId) -> Result<(), accounting::Error> {
        self.ledger.check_new_set(name, Some(parent)).map(|_| ())
    }

    /// Writes why `domain`'s last charge was denied, as the report's `last_denial` says it:
    /// `: cow charge of 4096 bytes for set 'parent' denied by the limit of set 'parent'`
    /// (nothing when it caused no denial).
    pub fn write_last_denial(&self, w: &mut dyn fmt::Write, domain: DomainId) -> fmt::Result {
        let Some(denial) = self
            .ledger
            .domain(domain)
            .ok()
            .and_then(|domain| domain.last_denial)
        else {
            return Ok(());
        };
        let name = |set: SetId| self.ledger.set(set).map_or("?", |set| set.name.as_str());
        write!(
            w,
            ": {} charge of {} bytes for set '{}' denied by the {} of set '{}'",
            denial.kind.key(),
            denial.bytes,
            name(denial.payer),
            if denial.kind_limit {
                "sub-limit"
            } else {
                "limit"
            },
            name(denial.limit_set)
        )
    }

    /// Changes a set's `high` bound.
    pub fn set_high(
        &mut self,
        set: SetId,
        high_bytes: Option<u64>,
    ) -> Result<(), accounting::Error> {
        self.ledger.set_high(set, high_bytes)?;
        self.any_high = self.ledger.sets().iter().any(|s| s.high_bytes.is_some());
        self.refresh_usual_faults();
        Ok(())
    }

    /// Records `usual_faults` after `keeper_cow` or `any_high` changed.
    fn refresh_usual_faults(&mut self) {
        self.usual_faults = !self.keeper_cow && !self.any_high;
    }

    /// Whether a fault needs no keeper asked before or after it: neither `cow = keeper` nor
    /// a `high` bound anywhere.
    #[inline(always)]
    pub fn usual_faults(&self) -> bool {
        self.usual_faults
    }

    /// Whether any set has a `high` bound.
    #[inline(always)]
    pub fn any_high(&self) -> bool {
        self.any_high
    }

    /// The first set on `domain`'s path to the root above its `high` bound: (set, what its
    /// subtree pays, the bound).
    pub fn over_high(&self, domain: DomainId) -> Option<(SetId, u64, u64)> {
        self.ledger.over_high(domain)
    }

    /// Counts an eviction, a page-in or a reclaim request (and traces it).
    pub fn note_paging(&mut self, domain: DomainId, event: accounting::PagingEvent) {
        if let Err(error) = self.ledger.note_paging(domain, event) {
            crate::panic::ledger_bug(&error);
        }
    }

    /// Counts a fault `domain` sent its keeper (`restart`: a restarted system call).
    pub fn note_keeper_fault(&mut self, domain: DomainId, restart: bool) {
        if let Err(error) = self.ledger.note_keeper_fault(domain, restart) {
            crate::panic::ledger_bug(&error);
        }
    }

    /// The ledger's revision: unchanged means unchanged books.
    #[inline]
    pub fn revision(&self) -> u64 {
        self.ledger.revision()
    }

    /// Whether a keeper decides who pays for copy-on-write copies (`cow = keeper`).
    #[inline]
    pub fn keeper_decides_cow(&self) -> bool {
        self.keeper_cow
    }

    /// Whether a keeper decides who pays for message buffers (`msgbuf = keeper`).
    #[inline]
    pub fn keeper_decides_msgbuf(&self) -> bool {
        self.keeper_msgbuf
    }

    /// Records how `domain`'s next keeper-decided charge is decided (the kernel checked an
    /// answered set is one the keeper holds a capability to).
    pub fn set_keeper_choice(
        &mut self,
        domain: DomainId,
        kind: Kind,
        choice: accounting::KeeperChoice,
    ) {
        if let Err(error) = self.ledger.set_keeper_choice(domain, kind, choice) {
            crate::panic::ledger_bug(&error);
        }
    }

    /// Forgets `domain`'s pending keeper choice, if any (its charge was made or refused).
    pub fn clear_keeper_choice(&mut self, domain: DomainId) {
        let _ = self.ledger.clear_keeper_choice(domain);
    }

    /// `domain`'s pending keeper choice.
    pub fn keeper_choice(&self, domain: DomainId) -> Option<(Kind, accounting::KeeperChoice)> {
        self.ledger.keeper_choice(domain)
    }

    /// The domain holding `frame` for `cow = keeper`: the one whose party pays first (the
    /// original's payer's domain), if the frame is mapped.
    pub fn holder(&self, frame: Frame, frames: &FrameAllocator) -> Option<DomainId> {
        let state = self.ledger.frame_state(index(frames, frame)).ok()?;
        state.slots.first()?.domain
    }

    /// The last charge denied to `domain`: its kind's index and the bytes it would have added
    /// where it failed.
    pub fn last_denial(&self, domain: DomainId) -> Option<(u64, u64)> {
        let denial = self.ledger.domain(domain).ok()?.last_denial?;
        Some((denial.kind.index() as u64, denial.bytes))
    }

    /// Changes one kind's sub-limit of a set.
    pub fn set_kind_limit(
        &mut self,
        set: SetId,
        kind: abi::Kind,
        limit_bytes: Option<u64>,
    ) -> Result<(), accounting::Error> {
        self.ledger
            .set_kind_limit(set, kcore::kinds::ledger_kind(kind), limit_bytes)
    }

    /// Registers a domain bound to `set`.
    pub fn create_domain(&mut self, name: &str, set: SetId) -> Result<DomainId, accounting::Error> {
        self.ledger.create_domain(name, set)
    }

    /// Records a domain's state for reports.
    pub fn domain_state(&mut self, domain: DomainId, state: DomainState) {
        let _ = self.ledger.set_domain_state(domain, state);
    }

    /// Forgets a domain whose creation failed before it held anything (see
    /// `Ledger::forget_domain`); one that cannot be forgotten is recorded as stopped.
    pub fn forget_domain(&mut self, domain: DomainId) {
        if self.ledger.forget_domain(domain).is_err() {
            let _ = self.ledger.set_domain_state(
                domain,
                DomainState::Stopped(accounting::StopReason::OverLimit),
            );
        }
    }

    /// Records that a domain exited with `code`.
    pub fn domain_exited(&mut self, domain: DomainId, code: i32) {
        let _ = self.ledger.set_domain_exited(domain, code);
    }

    /// The first charge set that still pays for something, and how much.
    pub fn first_charged_set(&self) -> Option<(Name, u64)> {
        self.ledger
            .sets()
            .iter()
            .find(|set| set.current_bytes() != 0)
            .map(|set| {
                (
                    Name::try_from(set.name.as_str()).unwrap_or_default(),
                    set.current_bytes(),
                )
            })
    }

    /// The full recount over the frame table, against the ledger's counters and the
    /// allocator's count of frames handed out.
    pub fn recount(&self, frames: &FrameAllocator) -> Result<(), &'static str> {
        let allocated = frames.total_frames() - frames.boot_frames() - frames.free_frames();
        self.ledger.recount(allocated as u64)
    }

    /// Adds the page-table frames an operation needed (in `owner`'s space, made necessary by
    /// `causer`) to `plan`, then reserves and commits it.
    fn apply_with_tables(
        &mut self,
        mut plan: Plan,
        tables: &[Frame],
        owner: DomainId,
        causer: DomainId,
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        for table in tables {
            plan.push(Op::PageTable {
                frame: index(frames, *table),
                owner,
                causer,
            })?;
        }
        self.apply(&plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ChargeError> {
        self.ledger.reserve(plan)?.commit();
        Ok(())
    }

    /// An empty batch (see [`Step`]), counting the sharer lists it needs in `need`.
    pub fn batch<'n>(&mut self, need: &'n mut BatchNeed) -> Batch<'n> {
        self.ledger.batch(need)
    }

    /// Reserves `step` on top of the steps already in `batch`: refused (with a denial
    /// counted, as a single plan would be) or added; nothing is charged yet.
    #[inline(always)]
    pub fn batch_add(
        &mut self,
        batch: &mut Batch<'_>,
        step: &Step,
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        if !matches!(step, Step::Share { .. }) && self.ledger.batch_count(batch) {
            // A page or objects step where no set has a limit: only counted (its commit
            // checks it), in the caller's loop.
            return Ok(());
        }
        self.batch_add_operands(batch, step, frames)
    }

    /// [`batch_add`](Self::batch_add) of a step with its operands.
    #[inline(never)]
    fn batch_add_operands(
        &mut self,
        batch: &mut Batch<'_>,
        step: &Step,
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        let ledger = &mut self.ledger;
        match operands(step, frames)? {
            // The common steps, without a plan.
            Operands::Objects(objects, root, domain, spawner) => {
                Ok(ledger.batch_add_objects(batch, objects, root, domain, spawner)?)
            }
            Operands::Page(page, owner, causer, tables, count) => {
                Ok(ledger.batch_add_page(batch, page, owner, causer, &tables[..count])?)
            }
            Operands::Share(shared, domain, causer, tables) => Ok(with_share_plan(
                shared,
                domain,
                causer,
                tables,
                frames,
                |plan| ledger.batch_add(batch, plan),
            )??),
        }
    }

    /// Applies the next step of `batch` (the steps in the order added). An error is a kernel
    /// bug.
    pub fn batch_commit(
        &mut self,
        batch: &mut Batch<'_>,
        step: &Step,
        frames: &FrameAllocator,
    ) -> Result<(), accounting::Error> {
        let ledger = &mut self.ledger;
        match operands(step, frames).map_err(|_| accounting::Error::BadPlan)? {
            Operands::Objects(objects, root, domain, spawner) => {
                ledger.batch_commit_objects(batch, objects, root, domain, spawner)
            }
            Operands::Page(page, owner, causer, tables, count) => {
                ledger.batch_commit_page(batch, page, owner, causer, &tables[..count])
            }
            Operands::Share(shared, domain, causer, tables) => {
                with_share_plan(shared, domain, causer, tables, frames, |plan| {
                    ledger.batch_commit(batch, plan)
                })
                .map_err(|_| accounting::Error::BadPlan)?
            }
        }
    }

    /// Ends a batch whose every step was committed. An error is a kernel bug.
    pub fn batch_finish(&self, batch: Batch<'_>) -> Result<(), accounting::Error> {
        self.ledger.batch_finish(batch)
    }

    /// A kernel object frame paid by `set`.
    pub fn charge_kernel_object(
        &mut self,
        set: SetId,
        causer: Option<DomainId>,
        object: Frame,
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        self.apply(&Plan::one(Op::Kernel {
            frame: index(frames, object),
            set,
            causer,
        }))
    }

    /// Message-buffer frames (`msgbuf` policy) for a message from `sender` to `receiver`.
    pub fn charge_msgbufs(
        &mut self,
        buffers: &[Frame],
        sender: DomainId,
        receiver: DomainId,
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        let buffer = |frame: &Frame| Op::Msgbuf {
            frame: index(frames, *frame),
            sender,
            receiver,
        };
        let Some((first, rest)) = buffers.split_first() else {
            return Ok(());
        };
        let mut plan = Plan::one(buffer(first));
        for frame in rest {
            plan.push(buffer(frame))?;
        }
        self.apply(&plan)
    }

    /// Several charges of one kernel operation, reserved together and committed: all of them
    /// or (an error) none.
    pub fn charge_all(
        &mut self,
        charges: &[Charge],
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        let op = |charge: &Charge| match *charge {
            Charge::Page { frame, owner } => Op::Anon {
                frame: index(frames, frame),
                domain: owner,
            },
            Charge::Table {
                frame,
                owner,
                causer,
            } => Op::PageTable {
                frame: index(frames, frame),
                owner,
                causer,
            },
            Charge::Copy {
                original,
                copy,
                writer,
            } => Op::CowCopy {
                original: index(frames, original),
                copy: index(frames, copy),
                writer,
            },
            Charge::Share { frame, domain } => Op::Share {
                frame: index(frames, frame),
                domain,
            },
            Charge::Msgbuf {
                frame,
                sender,
                receiver,
            } => Op::Msgbuf {
                frame: index(frames, frame),
                sender,
                receiver,
            },
        };
        let Some((first, rest)) = charges.split_first() else {
            return Ok(());
        };
        let mut plan = Plan::one(op(first));
        for charge in rest {
            plan.push(op(charge))?;
        }
        self.apply(&plan)
    }

    /// The set a domain is bound to.
    pub fn domain_set(&self, domain: DomainId) -> SetId {
        self.ledger.domain_set(domain).unwrap_or(SetId::KERNEL)
    }

    /// A user page (`anon`) mapped by `owner` and the tables it needed, made necessary by
    /// `causer`. The demand-zero fault and a fault in a fresh 2 MiB block try the ledger's
    /// straight-line paths inline (a `bool` back in a register); whatever they do not take,
    /// [`charge_page_general`](Self::charge_page_general) hands to the ledger's general path.
    #[inline(always)]
    pub fn charge_page(
        &mut self,
        owner: DomainId,
        causer: DomainId,
        page: Frame,
        tables: &[Frame],
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        let at = |frame: Frame| index(frames, frame);
        let done = match *tables {
            [] => self.ledger.anon_page(at(page), owner),
            [table] => self
                .ledger
                .page_and_table(at(page), owner, causer, at(table)),
            _ => false,
        };
        if done {
            return Ok(());
        }
        self.charge_page_general(owner, causer, page, tables, frames)
    }

    /// [`charge_page`](Self::charge_page) of a page and two tables (a fault in a fresh 1 GiB
    /// slot): the ledger's two-table path, which hands what it does not take to its general
    /// path.
    #[inline(always)]
    fn charge_page_two_tables(
        &mut self,
        owner: DomainId,
        causer: DomainId,
        page: Frame,
        [first, second]: [Frame; 2],
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        let at = |frame: Frame| index(frames, frame);
        Ok(self
            .ledger
            .new_page_and_tables(at(page), owner, causer, &[at(first), at(second)])?)
    }

    /// [`charge_page`](Self::charge_page) of two tables, and of any charge the straight-line
    /// paths did not take: the ledger decides, naming or counting what refused it.
    #[inline(never)]
    fn charge_page_general(
        &mut self,
        owner: DomainId,
        causer: DomainId,
        page: Frame,
        tables: &[Frame],
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        if let [first, second] = *tables {
            return self.charge_page_two_tables(owner, causer, page, [first, second], frames);
        }
        let mut indices = [FrameIndex(0); 3];
        let count = tables.len().min(indices.len());
        for (slot, table) in indices.iter_mut().zip(tables) {
            *slot = index(frames, *table);
        }
        if tables.len() > indices.len() {
            // More tables than a 4-level walk has: not a fault's plan (never made).
            return Err(ChargeError::Bug(accounting::Error::BadPlan));
        }
        let (page, tables) = (index(frames, page), &indices[..count]);
        Ok(self.ledger.new_page(page, owner, causer, tables)?)
    }

    /// `domain` maps every frame of `shared` copy-on-write too (one plan); `tables` are the
    /// tables its space needed for them, made necessary by `causer`.
    pub fn share_many(
        &mut self,
        shared: &[FrameIndex],
        domain: DomainId,
        causer: DomainId,
        tables: &[Frame],
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        let plan = Plan::one(Op::ShareMany {
            frames: shared,
            domain,
        });
        self.apply_with_tables(plan, tables, domain, causer, frames)
    }

    /// A private copy of a shared frame for `writer`.
    /// The usual copy (of a frame two domains map, the writer the second) by the ledger's
    /// straight-line path inline; any other by [`cow_copy_general`](Self::cow_copy_general).
    #[inline(always)]
    pub fn cow_copy(
        &mut self,
        original: Frame,
        copy: Frame,
        writer: DomainId,
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        if self
            .ledger
            .copy_from_pair(index(frames, original), index(frames, copy), writer)
        {
            return Ok(());
        }
        self.cow_copy_general(original, copy, writer, frames)
    }

    /// [`cow_copy`](Self::cow_copy) of a copy the straight-line path did not make: the ledger
    /// decides, naming or counting what refused it (`not shared` included). Takes the frames,
    /// not their indices: the taken path computes only what it uses.
    #[inline(never)]
    fn cow_copy_general(
        &mut self,
        original: Frame,
        copy: Frame,
        writer: DomainId,
        frames: &FrameAllocator,
    ) -> Result<(), ChargeError> {
        Ok(self
            .ledger
            .cow_copy(index(frames, original), index(frames, copy), writer)?)
    }

    /// How many domains map `frame`.
    pub fn mappers(&self, frame: Frame, frames: &FrameAllocator) -> usize {
        self.ledger.mappers(index(frames, frame)).unwrap_or(0)
    }

    /// `domain` no longer maps `frame`; true when nobody does and the frame must be freed.
    pub fn unmap(&mut self, frame: Frame, domain: DomainId, frames: &FrameAllocator) -> bool {
        match self.ledger.unmap(index(frames, frame), domain) {
            Ok(Unmapped::Freed) => true,
            Ok(Unmapped::StillMapped) => false,
            Err(error) => {
                // Only an exhausted sharer-list pool can fail a departure; keeping the frame
                // (and its charges) is the one choice that keeps the books balanced.
                log::error!(
                    "unmap of frame {:#x} failed: {error}; the frame stays charged",
                    frame.address()
                );
                false
            }
        }
    }

    /// Frees an unmapped frame (page table, kernel object, message buffer).
    pub fn free(&mut self, frame: Frame, frames: &FrameAllocator) {
        if let Err(error) = self.ledger.free(index(frames, frame)) {
            // Freeing a frame the ledger does not hold as an unmapped charged frame.
            crate::panic::ledger_bug(&error);
        }
    }

    /// The conservation check.
    pub fn conservation(&self, _frames: &FrameAllocator) -> Conservation {
        self.ledger.conservation()
    }

    /// Moves `domain` to `set`; the `move` policy decides whether its charges go with it.
    /// Returns the bytes moved.
    pub fn move_domain(&mut self, domain: DomainId, set: SetId) -> Result<u64, ChargeError> {
        Ok(self.ledger.move_domain(domain, set)?)
    }

    /// A set's usage for `set_query`.
    pub fn usage(&self, set: SetId) -> abi::SetUsage {
        let mut usage = abi::SetUsage {
            limit_bytes: u64::MAX,
            ..Default::default()
        };
        if let Ok(charge_set) = self.ledger.set(set) {
            usage.limit_bytes = charge_set.limit_bytes.unwrap_or(u64::MAX);
            usage.subtree_bytes = charge_set.subtree_bytes();
            for kind in Kind::ALL {
                usage.current_bytes[kind.index()] = charge_set.current_of(kind);
                usage.denied[kind.index()] = charge_set.denied[kind.index()];
                usage.kind_limit_bytes[kind.index()] =
                    charge_set.kind_limit_bytes[kind.index()].unwrap_or(u64::MAX);
            }
        }
        usage
    }

    /// The provenance of a charged frame for `frame_info`: kind, causer, parties with their
    /// bytes, mappers. `None` for a frame the ledger does not hold as charged.
    pub fn frame_info(&self, frame: Frame, frames: &FrameAllocator) -> Option<abi::FrameInfo> {
        let index = index(frames, frame);
        let state = self.ledger.frame_state(index).ok()?;
        let domain_name = |domain: Option<DomainId>| {
            domain
                .and_then(|domain| self.ledger.domain(domain).ok())
                .map(|domain| name_bytes(&domain.name))
                .unwrap_or_default()
        };
        let mut info = abi::FrameInfo {
            frame: u64::from(index.0),
            kind: state.kind.index() as u64,
            split: u64::from(state.split),
            causer: domain_name(state.causer),
            party_count: state.slots.len().min(abi::MAX_FRAME_PARTIES) as u64,
            mappers: state.mappers() as u64,
            ..Default::default()
        };
        for (position, (party, slot)) in info.parties.iter_mut().zip(&state.slots).enumerate() {
            party.set = self
                .ledger
                .set(slot.set)
                .map(|set| name_bytes(&set.name))
                .unwrap_or_default();
            party.domain = domain_name(slot.domain);
            party.bytes = state.slot_bytes(position);
        }
        Some(info)
    }

    /// Writes one snapshot object of `tally.report/1`.
    pub fn write_snapshot(
        &self,
        w: &mut dyn fmt::Write,
        label: &str,
        instructions: u64,
        frames: &FrameAllocator,
    ) -> fmt::Result {
        let header = accounting::report::SnapshotHeader {
            label,
            instructions,
            total_frames: frames.total_frames() as u64,
            free_frames: frames.free_frames() as u64,
        };
        self.ledger.write_snapshot(&mut &mut *w, &header)
    }
}

/// A batch step's ledger operands: frames as ledger indices, the spawner of a domain's
/// objects (none at boot, where the domain caused its own), a page's tables counted.
enum Operands<'s> {
    /// The control block's and capability table's frames, the root table's, the domain, its
    /// spawner.
    Objects([FrameIndex; 2], FrameIndex, DomainId, Option<DomainId>),
    /// The page, its owner, the causer of its tables, the tables (the first `count`).
    Page(FrameIndex, DomainId, DomainId, [FrameIndex; 2], usize),
    /// The shared frames, the new mapper, the causer of its tables, the tables.
    Share(&'s [FrameIndex], DomainId, DomainId, &'s [Frame]),
}

#[inline(always)]
fn operands<'s>(step: &Step<'s>, frames: &FrameAllocator) -> Result<Operands<'s>, ChargeError> {
    Ok(match *step {
        Step::Objects {
            domain,
            causer,
            objects,
            root,
        } => {
            // The `kernel` policy picks the payer: the domain's set or its spawner's.
            let spawner = (causer != domain).then_some(causer);
            let objects = [index(frames, objects[0]), index(frames, objects[1])];
            Operands::Objects(objects, index(frames, root), domain, spawner)
        }
        Step::Page {
            owner,
            causer,
            page,
            tables,
        } => {
            let (indices, count) = table_indices(tables, frames)?;
            Operands::Page(index(frames, page), owner, causer, indices, count)
        }
        Step::Share {
            shared,
            domain,
            causer,
            tables,
        } => Operands::Share(shared, domain, causer, tables),
    })
}

/// Builds the ledger plan of a share step and hands it to `f` (built where it stays: a plan
/// is some 800 bytes, and returned it would be copied).
#[inline(always)]
fn with_share_plan<R>(
    shared: &[FrameIndex],
    domain: DomainId,
    causer: DomainId,
    tables: &[Frame],
    frames: &FrameAllocator,
    f: impl FnOnce(&Plan<'_>) -> R,
) -> Result<R, ChargeError> {
    let mut plan = Plan::one(Op::ShareMany {
        frames: shared,
        domain,
    });
    for frame in tables {
        plan.push(Op::PageTable {
            frame: index(frames, *frame),
            owner: domain,
            causer,
        })?;
    }
    Ok(f(&plan))
}

/// The ledger indices of a page's new tables (at most two: a level-2 and a level-3 table).
#[inline(always)]
fn table_indices(
    tables: &[Frame],
    frames: &FrameAllocator,
) -> Result<([FrameIndex; 2], usize), ChargeError> {
    let mut indices = [FrameIndex(0); 2];
    if tables.len() > indices.len() {
        return Err(ChargeError::Bug(accounting::Error::BadPlan));
    }
    for (slot, table) in indices.iter_mut().zip(tables) {
        *slot = index(frames, *table);
    }
    Ok((indices, tables.len()))
}

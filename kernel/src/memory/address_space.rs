//! Address spaces: regions added and removed, pages populated (demand-zero), shared, shared
//! copy-on-write and copied on write, unmapped; a domain's page faults; and the preparation of
//! user pages a system call or a transfer writes (present and private, every charge in one
//! transaction). Copies between the kernel and user memory are in [`super::user`].

use super::user::{check_range, page_of};
use crate::arch::aarch64::exception::Syndrome;
use crate::arch::aarch64::mmu::{self, UserAccess, PAGE_BYTES};
use crate::charge::{Charge, ChargeError, Transaction};
use crate::kernel::{asid, Kernel};
use crate::memory::frames::Frame;
use crate::memory::page_table::{level3_index, PageTables, SPAN_PAGES};
use crate::object::domain::{self, Region};
use abi::{Error, SharedRegion};

/// Most pages one [`Kernel::prepare_writes`] makes writable: a receive descriptor (two pages)
/// and a largest message buffer (five pages), with one to spare.
const PREPARE_PAGES: usize = 8;
/// Most frames it allocates: each page and two tables, and the message buffers.
const PREPARE_FRAMES: usize = PREPARE_PAGES * 3 + abi::MAX_MESSAGE_BYTES / PAGE_BYTES;
const _: () = assert!(PREPARE_FRAMES <= accounting::PLAN_OPS);

/// A page [`Kernel::prepare_writes`] makes writable, and how.
#[derive(Clone, Copy)]
struct Step {
    va: usize,
    action: Action,
}

#[derive(Clone, Copy)]
enum Action {
    /// A new zeroed page: the transaction's frame `first`, then `missing` new tables.
    Populate { first: usize, missing: usize },
    /// A private copy of a shared frame into the transaction's frame `copy`.
    Copy { original: Frame, copy: usize },
    /// An unshared copy-on-write page: write access back.
    Restore { frame: Frame },
}

/// The page tables an operation that maps several pages will add, counted before it adds
/// them: a page whose tables an earlier page of the same operation brings does not count
/// them missing again.
pub struct PlannedTables {
    /// Each table planned, by the range it covers: (2, 1 GiB slot) for a level-2 table, (1,
    /// 2 MiB slot) for a level-3 table.
    planned: heapless::Vec<(usize, usize), PLANNED_TABLES>,
}

/// Most tables one operation plans: two per page of the largest (a prepared write).
const PLANNED_TABLES: usize = PREPARE_PAGES * 2;

impl PlannedTables {
    /// None planned yet.
    pub fn new() -> Self {
        PlannedTables {
            planned: heapless::Vec::new(),
        }
    }

    /// How many new tables mapping `va` in `tables` needs beyond those already planned (0, 1
    /// or 2), planned from now on.
    pub fn missing(&mut self, tables: &PageTables, va: usize) -> Result<usize, Error> {
        let mut missing = tables.missing_tables(va);
        let (gib, two_mib) = ((2, va >> 30), (1, va >> 21));
        if missing == 2 && self.planned.contains(&gib) {
            missing = 1;
        }
        if missing == 1 && self.planned.contains(&two_mib) {
            missing = 0;
        }
        let full = |_| Error::BadArgument;
        if missing == 2 {
            self.planned.push(gib).map_err(full)?;
        }
        if missing >= 1 {
            self.planned.push(two_mib).map_err(full)?;
        }
        Ok(missing)
    }
}

impl Kernel {
    /// Maps a fresh zeroed page at `va` (page aligned) with `access`, allocating and charging
    /// the page (`anon`) and any missing tables (`pagetables`) in one reservation.
    pub fn populate(
        &mut self,
        slot: usize,
        va: usize,
        access: UserAccess,
    ) -> Result<Frame, ChargeError> {
        let account = self.slots[slot].account;
        self.populate_caused(slot, va, access, account)
    }

    /// [`populate`](Self::populate), the tables it needs made necessary by `causer` (for the
    /// `pagetable` policy). (A spawn's image pages are charged in its batch instead:
    /// `lifecycle.rs`.)
    fn populate_caused(
        &mut self,
        slot: usize,
        va: usize,
        access: UserAccess,
        causer: accounting::DomainId,
    ) -> Result<Frame, ChargeError> {
        let ledger = self.slots[slot].account;
        let dcb = self.slots[slot].dcb_mut().ok_or(ChargeError::Fault)?;
        let missing = dcb.tables.missing_tables(va);
        let transaction = Transaction::<3>::with_frames(&mut self.frames, 1 + missing)?;
        let frames = transaction.array();
        let (page, tables) = (frames[0], &frames[1..=missing]);
        let books = &mut self.books;
        transaction
            .commit(|_, allocator| books.charge_page(ledger, causer, page, tables, allocator))?;
        for frame in &frames[..=missing] {
            frame.zero();
        }
        dcb.tables.map(
            va,
            mmu::user_page_descriptor(page.address(), access),
            tables,
        );
        Ok(page)
    }

    /// Shares `pages` pages of `sender` at `from` copy-on-write into `receiver` at `to` (a
    /// region the caller added); pages the sender never populated stay demand-zero.
    ///
    /// Works a level-3 table span (up to 512 pages) at a time: one ledger plan shares every
    /// populated page of the span and charges the receiver's new tables (caused by the
    /// sender), then the pages are mapped read-only in both; one TLB flush ends it. A failure
    /// leaves earlier spans shared (the caller removes the receiver's region on error).
    pub fn share_copy_on_write(
        &mut self,
        sender: usize,
        receiver: usize,
        from: usize,
        to: usize,
        pages: usize,
    ) -> Result<(), Error> {
        let (receiver_ledger, sender_ledger) =
            (self.slots[receiver].account, self.slots[sender].account);
        let Some((sender_slot, receiver_slot)) =
            domain::pair_mut(&mut self.slots, sender, receiver)
        else {
            return Err(Error::BadArgument);
        };
        let (Some(sender_dcb), Some(receiver_dcb)) =
            (sender_slot.dcb_mut(), receiver_slot.dcb_mut())
        else {
            return Err(Error::BadArgument);
        };
        // A paged-out page cannot be shared: its contents are with the pager. Checked before
        // anything changes.
        if let Some(va) = paged_out_page(sender_dcb, from, pages) {
            self.missing_page.set(Some((sender as u8, va)));
            return Err(Error::PagedOut);
        }
        let mut page = 0;
        let mut result = Ok(());
        while page < pages {
            let source = from + page * PAGE_BYTES;
            let target = to + page * PAGE_BYTES;
            let to_boundary = |va: usize| SPAN_PAGES - (va / PAGE_BYTES) % SPAN_PAGES;
            let count = (pages - page)
                .min(to_boundary(source))
                .min(to_boundary(target));
            page += count;
            // The span lies in one level-3 table on each side: read and write their entries
            // directly instead of walking from the root for every page.
            let Some(source_table) = sender_dcb.tables.level3_table(source) else {
                continue;
            };
            let first = level3_index(source);
            let entries = &source_table.0[first..first + count];
            let Some((first_offset, present)) =
                present_frames(entries, &self.frames, &mut self.span_indices)
            else {
                continue;
            };
            let indices = &self.span_indices[..present];
            let missing = receiver_dcb.tables.missing_tables(target);
            let transaction = match Transaction::<2>::with_frames(&mut self.frames, missing) {
                Ok(transaction) => transaction,
                Err(e) => {
                    result = Err(e.to_abi());
                    break;
                }
            };
            let tables = transaction.array();
            let books = &mut self.books;
            if let Err(e) = transaction.commit(|tables, allocator| {
                books.share_many(indices, receiver_ledger, sender_ledger, tables, allocator)
            }) {
                result = Err(e.to_abi());
                break;
            }
            for table in &tables[..missing] {
                table.zero();
            }
            // The first mapping installs the receiver's new tables; the rest go straight into
            // its level-3 table, and both sides' entries turn copy-on-write.
            receiver_dcb.tables.map(
                target + first_offset * PAGE_BYTES,
                copy_on_write(source_table.0[first + first_offset]),
                &tables[..missing],
            );
            let Some(target_table) = receiver_dcb.tables.level3_table(target) else {
                continue;
            };
            let target_first = level3_index(target);
            mark_copy_on_write(
                &mut source_table.0[first..first + count],
                &mut target_table.0[target_first..target_first + count],
            );
        }
        // The sender's pages turned read-only: one flush of its ASID covers them all.
        mmu::invalidate_asid(asid(sender));
        result
    }

    /// Resolves a write to a copy-on-write page: copies it if others still map the frame,
    /// otherwise just restores write access.
    fn break_cow(&mut self, slot: usize, va: usize, descriptor: u64) -> Result<(), ChargeError> {
        let ledger = self.slots[slot].account;
        let dcb = self.slots[slot].dcb_mut().ok_or(ChargeError::Fault)?;
        let original = Frame(mmu::descriptor_address(descriptor));
        // The copy's frame first; the ledger then says whether the page is shared at all
        // (`not shared`: only write access is restored, and the frame goes back). Without a
        // free frame, only a shared page needs one.
        let copied = match Transaction::<1>::with_frames(&mut self.frames, 1) {
            Ok(transaction) => {
                let copy = transaction.frames()[0];
                let books = &mut self.books;
                match transaction
                    .commit(|_, allocator| books.cow_copy(original, copy, ledger, allocator))
                {
                    Ok(()) => {
                        copy.copy_from(original);
                        Some(copy)
                    }
                    // Not shared: the transaction gave the frame back.
                    Err(ChargeError::Bug(accounting::Error::NotShared(_))) => Some(original),
                    Err(e) => return Err(e),
                }
            }
            Err(_) => None,
        };
        let target = match copied {
            Some(target) => target,
            None if self.books.mappers(original, &self.frames) > 1 => {
                return Err(ChargeError::OutOfMemory)
            }
            None => original,
        };
        dcb.tables.replace(
            va,
            mmu::user_page_descriptor(target.address(), UserAccess::ReadWrite),
        );
        mmu::invalidate_user_page(va, asid(slot));
        Ok(())
    }

    /// Makes the page holding `va` present (and writable when `write`), populating or
    /// breaking copy-on-write as needed.
    pub fn touch(&mut self, slot: usize, va: usize, write: bool) -> Result<(), ChargeError> {
        let va = page_of(va);
        let dcb = self.slots[slot].dcb().ok_or(ChargeError::Fault)?;
        let region = dcb.region(va).ok_or(ChargeError::Fault)?;
        if write && !matches!(region.access, UserAccess::ReadWrite) {
            return Err(ChargeError::Fault);
        }
        match dcb.tables.lookup(va) {
            None if dcb.keeper_supplies(va, &region) => Err(ChargeError::PagedOut),
            None => self.populate(slot, va, region.access).map(|_| ()),
            Some(descriptor)
                if write && mmu::user_page_access(descriptor) == UserAccess::CopyOnWrite =>
            {
                self.break_cow(slot, va, descriptor)
            }
            Some(_) => Ok(()),
        }
    }

    /// A data or instruction abort from the current domain (in `slot`), when the books'
    /// usual-fault flag is clear (the trap handler calls [`resolve_fault`](Self::resolve_fault)
    /// directly when it is set). Under `cow = keeper` a write to a present page asks the keeper
    /// first ([`user_fault_keeper`](Self::user_fault_keeper)).
    #[inline(never)]
    pub fn user_fault(&mut self, slot: usize, syndrome: Syndrome, fault_address: usize, pc: usize) {
        if self.books.keeper_decides_cow() {
            return self.user_fault_keeper(slot, syndrome, fault_address, pc);
        }
        self.resolve_fault(slot, syndrome, fault_address, pc);
    }

    /// [`user_fault`](Self::user_fault) under `cow = keeper`: only a write to a present page
    /// (a permission fault) can need a copy, and its keeper decides who pays.
    fn user_fault_keeper(
        &mut self,
        slot: usize,
        syndrome: Syndrome,
        fault_address: usize,
        pc: usize,
    ) {
        let keeper_decides = syndrome.is_write() && syndrome.is_permission_fault();
        if keeper_decides && self.ask_cow_keeper(slot, fault_address, pc) {
            return;
        }
        self.resolve_fault(slot, syndrome, fault_address, pc);
        if keeper_decides {
            // The keeper's choice served this copy (or its refusal): the next one asks again.
            self.books.clear_keeper_choice(self.slots[slot].account);
        }
    }

    /// A fault made present (populated, or its copy-on-write broken), else unresolved.
    #[inline(always)]
    pub fn resolve_fault(
        &mut self,
        slot: usize,
        syndrome: Syndrome,
        fault_address: usize,
        pc: usize,
    ) {
        let write = syndrome.is_write();
        let handled =
            if syndrome.is_translation_fault() || (write && syndrome.is_permission_fault()) {
                self.touch(slot, fault_address, write)
            } else {
                Err(ChargeError::Fault)
            };
        if let Err(e) = handled {
            self.unresolved_fault(slot, e, syndrome, fault_address, pc);
        }
    }

    /// A fault the kernel could not resolve: to the domain's keeper if it has one (it waits,
    /// and retries if the keeper says so), else the domain stops.
    #[cold]
    #[inline(never)]
    fn unresolved_fault(
        &mut self,
        slot: usize,
        error: ChargeError,
        syndrome: Syndrome,
        fault_address: usize,
        pc: usize,
    ) {
        if self.fault_to_keeper(slot, error, fault_address, syndrome.is_write(), pc) {
            return;
        }
        self.stop_current(
            error.stop_reason(),
            format_args!("{syndrome} at address {fault_address:#x}, pc {pc:#x}"),
        );
    }

    /// Whether any page of `ranges` needs work to be written (not present, or copy-on-write);
    /// an error when one is not in a writable region of the domain. Changes nothing. Each range
    /// is walked page by page, as the copies walk it, with one region lookup per region it
    /// crosses, not one per page.
    pub fn needs_work(&self, slot: usize, ranges: &[(usize, usize)]) -> Result<bool, Error> {
        let dcb = self.slots[slot].dcb().ok_or(Error::BadAddress)?;
        let mut needs = false;
        for &(va, len) in ranges {
            check_range(va, len)?;
            let end = va + len;
            let mut page = page_of(va);
            while page < end {
                let region = dcb
                    .region(page)
                    .filter(|region| region.access == UserAccess::ReadWrite)
                    .ok_or(Error::BadAddress)?;
                let stop = region.end().min(end);
                while page < stop {
                    needs |= !dcb
                        .tables
                        .lookup(page)
                        .is_some_and(|d| mmu::user_page_access(d) == UserAccess::ReadWrite);
                    page += PAGE_BYTES;
                }
            }
        }
        Ok(needs)
    }

    /// Makes every page of `[va, va + len)` present, private and writable (populating or
    /// breaking copy-on-write), every charge in one transaction: all or nothing. The decode
    /// half of a system call that writes user memory.
    pub fn prepare_user_write(&mut self, slot: usize, va: usize, len: usize) -> Result<(), Error> {
        let sender = self.slots[slot].account;
        self.prepare_writes(slot, &[(va, len)], &mut [], sender)
    }

    /// Makes every page of `ranges` present, private and writable in `slot`, and allocates
    /// `buffers.len()` message-buffer frames for a message from `sender` (charged per the
    /// `msgbuf` policy), reserving every charge together — new pages (`anon`) and their tables,
    /// copy-on-write copies, the buffers: either all of them are made and the pages mapped,
    /// or (an error) nothing changed.
    pub fn prepare_writes(
        &mut self,
        slot: usize,
        ranges: &[(usize, usize)],
        buffers: &mut [Frame],
        sender: accounting::DomainId,
    ) -> Result<(), Error> {
        let needs_work = self.needs_work(slot, ranges)?;
        self.prepare_checked_writes(slot, ranges, needs_work, buffers, sender)
    }

    /// [`prepare_writes`](Self::prepare_writes) after [`needs_work`](Self::needs_work)
    /// checked the ranges and found whether any page needs work (`needs_work`).
    pub fn prepare_checked_writes(
        &mut self,
        slot: usize,
        ranges: &[(usize, usize)],
        needs_work: bool,
        buffers: &mut [Frame],
        sender: accounting::DomainId,
    ) -> Result<(), Error> {
        // Most calls find every page present and writable: they are done after one pass that
        // changed nothing.
        if !needs_work && buffers.is_empty() {
            return Ok(());
        }
        let owner = self.slots[slot].account;
        let dcb = self.slots[slot].dcb_mut().ok_or(Error::BadAddress)?;
        let mut transaction = Transaction::<PREPARE_FRAMES>::new(&mut self.frames);
        let mut charges = heapless::Vec::<Charge, PREPARE_FRAMES>::new();
        let mut steps = heapless::Vec::<Step, PREPARE_PAGES>::new();
        let mut new_tables = PlannedTables::new();
        let too_many = || Error::BadArgument;
        for &(va, len) in ranges {
            check_range(va, len)?;
            let mut page = page_of(va);
            while page < va + len {
                let at = page;
                page += PAGE_BYTES;
                if steps.iter().any(|step| step.va == at) {
                    continue;
                }
                let region = dcb.region(at).ok_or(Error::BadAddress)?;
                if region.access != UserAccess::ReadWrite {
                    return Err(Error::BadAddress);
                }
                let action = match dcb.tables.lookup(at) {
                    None if dcb.keeper_supplies(at, &region) => {
                        self.missing_page.set(Some((slot as u8, at)));
                        return Err(Error::PagedOut);
                    }
                    None => {
                        let missing = new_tables.missing(&dcb.tables, at)?;
                        let first = transaction.frames().len();
                        let frames = transaction
                            .allocate(1 + missing)
                            .map_err(ChargeError::to_abi)?;
                        charges
                            .push(Charge::Page {
                                frame: frames[0],
                                owner,
                            })
                            .map_err(|_| too_many())?;
                        for &frame in &frames[1..] {
                            charges
                                .push(Charge::Table {
                                    frame,
                                    owner,
                                    causer: owner,
                                })
                                .map_err(|_| too_many())?;
                        }
                        Action::Populate { first, missing }
                    }
                    Some(descriptor)
                        if mmu::user_page_access(descriptor) == UserAccess::CopyOnWrite =>
                    {
                        let original = Frame(mmu::descriptor_address(descriptor));
                        if self.books.mappers(original, transaction.allocator()) > 1 {
                            let at_copy = transaction.frames().len();
                            let copy = transaction.allocate_one().map_err(ChargeError::to_abi)?;
                            charges
                                .push(Charge::Copy {
                                    original,
                                    copy,
                                    writer: owner,
                                })
                                .map_err(|_| too_many())?;
                            Action::Copy {
                                original,
                                copy: at_copy,
                            }
                        } else {
                            // Nobody else maps it: write access back, nothing to charge.
                            Action::Restore { frame: original }
                        }
                    }
                    Some(_) => continue,
                };
                steps
                    .push(Step { va: at, action })
                    .map_err(|_| too_many())?;
            }
        }
        let first_buffer = transaction.frames().len();
        for _ in 0..buffers.len() {
            let frame = transaction.allocate_one().map_err(ChargeError::to_abi)?;
            charges
                .push(Charge::Msgbuf {
                    frame,
                    sender,
                    receiver: owner,
                })
                .map_err(|_| too_many())?;
        }
        if charges.is_empty() && steps.is_empty() {
            return Ok(());
        }
        let held = transaction.array();
        let books = &mut self.books;
        transaction
            .commit(|_, allocator| books.charge_all(&charges, allocator))
            .map_err(ChargeError::to_abi)?;
        // Committed: nothing can fail from here on.
        buffers.copy_from_slice(&held[first_buffer..first_buffer + buffers.len()]);
        for step in &steps {
            let frame = match step.action {
                Action::Populate { first, missing } => {
                    let frames = &held[first..=first + missing];
                    for frame in frames {
                        frame.zero();
                    }
                    dcb.tables.map(
                        step.va,
                        mmu::user_page_descriptor(frames[0].address(), UserAccess::ReadWrite),
                        &frames[1..],
                    );
                    continue;
                }
                Action::Copy { original, copy } => {
                    held[copy].copy_from(original);
                    held[copy]
                }
                Action::Restore { frame } => frame,
            };
            dcb.tables.replace(
                step.va,
                mmu::user_page_descriptor(frame.address(), UserAccess::ReadWrite),
            );
            mmu::invalidate_user_page(step.va, asid(slot));
        }
        Ok(())
    }
}

impl Kernel {
    /// Adds a region to a domain's address space.
    pub fn add_region(&mut self, slot: usize, region: Region) -> Result<(), Error> {
        let dcb = self.slots[slot].dcb_mut().ok_or(Error::BadArgument)?;
        if dcb
            .regions
            .iter()
            .any(|r| r.overlaps(region.start, region.end()))
        {
            return Err(Error::RegionOverlap);
        }
        dcb.regions.push(region).map_err(|_| Error::TableFull)
    }

    /// Removes every page in `[start, end)` from a domain's tables and the ledger.
    pub fn unmap_range(&mut self, slot: usize, start: usize, end: usize) {
        let ledger = self.slots[slot].account;
        let mut pages = heapless::Vec::<(usize, Frame), 64>::new();
        let mut va = start;
        while va < end {
            pages.clear();
            let chunk_end = end.min(va + 64 * PAGE_BYTES);
            // The chunk's pages leave the tables first, then the ledger (which may free them).
            let Some(dcb) = self.slots[slot].dcb_mut() else {
                return;
            };
            dcb.tables
                .for_each_page(va, chunk_end, |page_va, descriptor| {
                    let _ = pages.push((page_va, Frame(mmu::descriptor_address(descriptor))));
                });
            for &(page_va, _) in &pages {
                dcb.tables.replace(page_va, 0);
                mmu::invalidate_user_page(page_va, asid(slot));
            }
            if dcb.kept_pages {
                // Paged-out entries go too: a region mapped here later starts untouched.
                let mut page = va;
                while page < chunk_end {
                    if dcb.tables.is_paged_out(page) {
                        dcb.tables.replace(page, 0);
                    }
                    page += PAGE_BYTES;
                }
            }
            for &(_, frame) in &pages {
                if self.books.unmap(frame, ledger, &self.frames) {
                    self.forget_region_frame(frame);
                    self.frames.free(frame);
                }
            }
            va = chunk_end;
        }
    }

    /// Unmaps and forgets a region of `slot`.
    pub fn remove_region(&mut self, slot: usize, start: usize, pages: usize) {
        self.unmap_range(slot, start, start + pages * PAGE_BYTES);
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            if let Some(index) = dcb.regions.iter().position(|r| r.start == start) {
                dcb.regions.swap_remove(index);
            }
        }
    }

    /// Unmaps `pages` pages at `address` of `slot` (inside one region, as decode checked) and
    /// cuts the region around them: what remains before and after stays a region each.
    pub fn unmap_pages(&mut self, slot: usize, address: usize, pages: usize) {
        let end = address + pages * PAGE_BYTES;
        self.unmap_range(slot, address, end);
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            if let Some(index) = dcb.regions.iter().position(|r| r.contains(address)) {
                let region = dcb.regions.swap_remove(index);
                let before = Region {
                    start: region.start,
                    pages: (address - region.start) / PAGE_BYTES,
                    access: region.access,
                    capability: region.capability,
                    kept: region.kept,
                };
                let after = Region {
                    start: end,
                    pages: (region.end() - end) / PAGE_BYTES,
                    access: region.access,
                    capability: region.capability,
                    kept: region.kept,
                };
                for piece in [before, after] {
                    if piece.pages > 0 {
                        let _ = dcb.regions.push(piece);
                    }
                }
            }
        }
    }

    /// Maps `region` of `sender` copy-on-write into `receiver` at `destination`; the tables the
    /// receiver needs are caused by the sender (`pagetable` policy).
    pub fn share_region_at(
        &mut self,
        sender: usize,
        receiver: usize,
        region: &SharedRegion,
        destination: usize,
    ) -> Result<(), Error> {
        self.add_region(
            receiver,
            Region {
                start: destination,
                pages: region.pages,
                access: UserAccess::ReadWrite,
                capability: 0,
                kept: false,
            },
        )?;
        let shared =
            self.share_copy_on_write(sender, receiver, region.address, destination, region.pages);
        if shared.is_err() {
            self.remove_region(receiver, destination, region.pages);
        }
        shared
    }

    /// Forgets a frame that was freed (its last mapper left) in every region object.
    pub fn forget_region_frame(&mut self, frame: Frame) {
        for object in self.region_objects.iter_mut().flatten() {
            for slot in object.get_mut().frames.iter_mut() {
                if *slot == Some(frame) {
                    *slot = None;
                }
            }
        }
    }
}

/// The first of `pages` pages at `from` of a domain that its keeper must supply (paged out, or
/// untouched in a keeper-managed region): such a page cannot be shared, its contents are with
/// the pager.
pub(crate) fn paged_out_page(dcb: &domain::Dcb, from: usize, pages: usize) -> Option<usize> {
    if !dcb.kept_pages {
        return None;
    }
    (0..pages).map(|page| from + page * PAGE_BYTES).find(|&va| {
        dcb.tables.lookup(va).is_none()
            && dcb
                .region(va)
                .is_some_and(|region| dcb.keeper_supplies(va, &region))
    })
}

/// The ledger indices of the present pages among the level-3 `entries` of one span, written
/// to the front of `indices` in order: the offset of the first present page and how many
/// there are (`None` when none is). Out of line, so the per-page loop keeps its count and
/// constants in registers.
#[inline(never)]
pub(crate) fn present_frames(
    entries: &[u64],
    frames: &crate::memory::frames::FrameAllocator,
    indices: &mut [accounting::FrameIndex],
) -> Option<(usize, usize)> {
    let first = entries
        .iter()
        .position(|&descriptor| mmu::is_valid(descriptor))?;
    let present = &entries[first..];
    let index = |descriptor: u64| {
        accounting::FrameIndex(frames.index(Frame(mmu::descriptor_address(descriptor))))
    };
    if indices.len() >= present.len() {
        // The common span, every page from the first on present: a straight map (four at a
        // time), checked as it goes; a hole sends it to the compacting loop below.
        let mut valid = u64::MAX;
        let mut sources = present.chunks_exact(4);
        let mut slots = indices.chunks_exact_mut(4);
        for (source, slot) in (&mut sources).zip(&mut slots) {
            for (slot, &descriptor) in slot.iter_mut().zip(source) {
                *slot = index(descriptor);
                valid &= descriptor;
            }
        }
        let tail = sources.remainder();
        let done = present.len() - tail.len();
        for (slot, &descriptor) in indices[done..].iter_mut().zip(tail) {
            *slot = index(descriptor);
            valid &= descriptor;
        }
        if mmu::is_valid(valid) {
            return Some((first, present.len()));
        }
    }
    let mut count = 0;
    let present = present
        .iter()
        .filter(|&&descriptor| mmu::is_valid(descriptor));
    for (slot, &descriptor) in indices.iter_mut().zip(present) {
        *slot = index(descriptor);
        count += 1;
    }
    Some((first, count))
}

/// Turns every present page of `sources` copy-on-write, and maps it so at the same position
/// of `targets` (a span of the receiver's fresh region, all empty, as long as `sources`).
/// The sources hold present pages and empty entries only (the callers refuse a paged-out
/// page before anything changes), so each target entry is its source's once marked: marked
/// and mapped four at a time, without a branch per page. Out of line, as `present_frames`.
#[inline(never)]
pub(crate) fn mark_copy_on_write(sources: &mut [u64], targets: &mut [u64]) {
    let count = sources.len().min(targets.len());
    let (sources, targets) = (&mut sources[..count], &mut targets[..count]);
    let mark = |source: &mut u64, target: &mut u64| {
        let descriptor = if mmu::is_valid(*source) {
            copy_on_write(*source)
        } else {
            *source
        };
        *source = descriptor;
        *target = descriptor;
    };
    let mut source_chunks = sources.chunks_exact_mut(4);
    let mut target_chunks = targets.chunks_exact_mut(4);
    for (four, into) in (&mut source_chunks).zip(&mut target_chunks) {
        for (source, target) in four.iter_mut().zip(into.iter_mut()) {
            mark(source, target);
        }
    }
    let rest = source_chunks.into_remainder();
    for (source, target) in rest.iter_mut().zip(target_chunks.into_remainder()) {
        mark(source, target);
    }
}

/// The copy-on-write descriptor of the page `descriptor` maps (read-only, the software COW bit).
#[inline(always)]
fn copy_on_write(descriptor: u64) -> u64 {
    mmu::user_page_descriptor(mmu::descriptor_address(descriptor), UserAccess::CopyOnWrite)
}

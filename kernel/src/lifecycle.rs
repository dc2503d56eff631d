//! A domain's life: creating it (its kernel objects, root table, program image and the regions
//! its spawner shares, built in frames of its own — [`NewDomain`] — and charged under the
//! `kernel`, `pagetable` and `cow` policies in one ledger batch reserved before anything
//! commits), and ending it (exit, stop, deadlock), which returns every frame and charge and
//! wakes its waiters.

use crate::arch::aarch64::mmu::{self, UserAccess, PAGE_BYTES};
use crate::charge::{ChargeError, Step, ToAbi};
use crate::kernel::{asid, Kernel, SPAWN_INDICES};
use crate::memory::address_space::{mark_copy_on_write, paged_out_page, present_frames};
use crate::memory::frames::{Frame, FrameAllocator};
use crate::memory::object::ObjectFrame;
use crate::memory::page_table::{level3_index, PageTables, SPAN_PAGES};
use crate::object::capability::CapTable;
use crate::object::domain::{self, Block, DomainEntry, Name, Region, RunState, MAX_DOMAINS};
use crate::report::report_state;
use abi::{Error, SharedRegion};
use accounting::{SetId, StopReason};
use kcore::elf;

/// A ledger error where none can be: a kernel bug, which stops the run.
fn bug(error: accounting::Error) -> ! {
    crate::panic::ledger_bug(&error)
}

/// A new domain's object frames and root table, committed.
struct Objects {
    dcb: Frame,
    caps: Frame,
    root: Frame,
}

/// A domain under construction — a spawn's transaction (and boot's): the frames of its kernel
/// objects, its root table, and every table and program page mapped in its tables so far.
/// Until [`NewDomain::commit`] they belong to nobody and nothing is charged for them; dropping
/// it frees them all. Only its own pages are mapped before the commit (shared pages are
/// mapped at commit), so every page its tables map is one of its frames.
struct NewDomain<'f> {
    frames: &'f mut FrameAllocator,
    objects: [Frame; 2],
    tables: PageTables,
    committed: bool,
}

impl<'f> NewDomain<'f> {
    /// The control block's, the capability table's and the (zeroed) root table's frames, in
    /// that order; all or none.
    #[inline(always)]
    fn new(frames: &'f mut FrameAllocator) -> Result<Self, ChargeError> {
        let mut first = [Frame(0); 3];
        frames
            .allocate_all(&mut first)
            .ok_or(ChargeError::OutOfMemory)?;
        first[2].zero();
        Ok(NewDomain {
            frames,
            objects: [first[0], first[1]],
            tables: PageTables::new(first[2]),
            committed: false,
        })
    }

    /// Fills `fresh` with new zeroed frames (all or none), for the caller to map at once.
    #[inline(always)]
    fn allocate(&mut self, fresh: &mut [Frame]) -> Result<(), ChargeError> {
        self.frames
            .allocate_all(fresh)
            .ok_or(ChargeError::OutOfMemory)?;
        for frame in fresh.iter() {
            frame.zero();
        }
        Ok(())
    }

    /// The frames are the domain's from now on: its objects' frames and its tables.
    fn commit(mut self) -> ([Frame; 2], PageTables) {
        self.committed = true;
        (self.objects, PageTables::new(self.tables.root()))
    }
}

impl Drop for NewDomain<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let frames = &mut *self.frames;
        self.tables
            .for_each_page(0, abi::USER_END_ADDRESS, |_, descriptor| {
                frames.free(Frame(mmu::descriptor_address(descriptor)))
            });
        self.tables.for_each_table(|table| frames.free(table));
        frames.free(self.tables.root());
        frames.free_all(&self.objects);
    }
}

/// The pages of an image segment, with the access they are mapped with.
fn segment_pages(segment: &elf::Segment) -> (usize, usize, UserAccess) {
    let access = if segment.flags & elf::FLAG_EXECUTE != 0 {
        UserAccess::ReadExecute
    } else if segment.flags & elf::FLAG_WRITE != 0 {
        UserAccess::ReadWrite
    } else {
        UserAccess::ReadOnly
    };
    (segment.page_start(), segment.page_end(), access)
}

/// Copies the part of `segment`'s file bytes that falls in the page at `va` into `page`.
fn load_page(segment: &elf::Segment, va: usize, page: Frame) {
    let data_start = segment.address.max(va);
    let data_end = (segment.address + segment.data.len()).min(va + PAGE_BYTES);
    if data_start < data_end {
        let bytes = &segment.data[data_start - segment.address..data_end - segment.address];
        // SAFETY: `page` is a frame of the domain being built, mapped by nobody yet, and the
        // range lies inside it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                (page.virt() + (data_start - va)) as *mut u8,
                bytes.len(),
            )
        };
    }
}

/// The regions of a new domain's space, into `regions` (empty): its image's segments, its
/// stack, then the regions its spawner shares (at the same addresses), checked to fit and not
/// to overlap. (Filled in place: a returned table would be copied whole, twice.)
fn layout(
    program: &elf::Program,
    shared: &[SharedRegion],
    regions: &mut heapless::Vec<Region, { domain::MAX_REGIONS }>,
) -> Result<(), Error> {
    let mut add = |start: usize, pages: usize, access: UserAccess| {
        if regions
            .iter()
            .any(|r| r.overlaps(start, start + pages * PAGE_BYTES))
        {
            return Err(Error::RegionOverlap);
        }
        let region = Region {
            start,
            pages,
            access,
            capability: 0,
            kept: false,
        };
        regions.push(region).map_err(|_| Error::TableFull)
    };
    for segment in &program.segments {
        let (start, end, access) = segment_pages(segment);
        // A loadable image's segments do not overlap (an image that did is not loadable).
        add(start, (end - start) / PAGE_BYTES, access).map_err(|_| Error::BadAddress)?;
    }
    let stack_start = abi::USER_STACK_TOP - abi::USER_STACK_PAGES * PAGE_BYTES;
    add(stack_start, abi::USER_STACK_PAGES, UserAccess::ReadWrite)
        .map_err(|_| Error::BadAddress)?;
    for region in shared {
        add(region.address, region.pages, UserAccess::ReadWrite)?;
    }
    Ok(())
}

/// The spans of a region shared at the same address: (first page's address, pages), each
/// inside one level-3 table.
fn spans(region: &SharedRegion) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut page = 0;
    core::iter::from_fn(move || {
        if page >= region.pages {
            return None;
        }
        let va = region.address + page * PAGE_BYTES;
        let count = (region.pages - page).min(SPAN_PAGES - (va / PAGE_BYTES) % SPAN_PAGES);
        page += count;
        Some((va, count))
    })
}

impl Kernel {
    /// Creates a domain running `program` (parsed and checked by the caller), bound to `set`,
    /// created by `creator` (None at boot), with `shared` regions of the creator shared into
    /// it copy-on-write at the same addresses.
    ///
    /// Reserve first, like every call: everything it needs is made and reserved before
    /// anything is committed — its objects, its image's pages and tables (in frames of its
    /// own, [`NewDomain`]) and every charge, in one ledger batch ([`Step`]) — and only then
    /// committed: its charges, its slot, the shared pages mapped and turned copy-on-write on
    /// both sides. Refused (out of memory, over a limit, a region that overlaps, a page with
    /// its pager), it leaves nothing behind: no frame, no charge, no domain record; a
    /// denial is counted as a single plan's would be.
    pub fn create_domain(
        &mut self,
        name: &str,
        set: SetId,
        program: &elf::Program<'static>,
        creator: Option<usize>,
        shared: &[SharedRegion],
    ) -> Result<usize, Error> {
        // Never-used slots first, so a capability to an ended domain stays meaningful as long as
        // possible; then ended slots nobody waits on.
        let slot = (0..MAX_DOMAINS)
            .find(|&s| self.slots[s].generation == 0)
            .or_else(|| {
                (0..MAX_DOMAINS).find(|&s| !self.slots[s].is_alive() && !self.is_waited_for(s))
            })
            .ok_or(Error::TableFull)?;
        let domain_name = Name::try_from(name).map_err(|_| Error::BadArgument)?;
        let mut regions = heapless::Vec::new();
        layout(program, shared, &mut regions)?;
        if let Some(parent) = creator {
            let dcb = self.slots[parent].dcb().ok_or(Error::BadArgument)?;
            let out = shared
                .iter()
                .find_map(|region| paged_out_page(dcb, region.address, region.pages));
            if let Some(va) = out {
                self.missing_page.set(Some((parent as u8, va)));
                return Err(Error::PagedOut);
            }
        }
        let ledger = self
            .books
            .create_domain(name, set)
            .map_err(|e| e.to_abi())?;
        let causer = creator.map(|c| self.slots[c].account).unwrap_or(ledger);
        let objects = match self.build_domain(ledger, causer, program, creator, shared) {
            Ok(objects) => objects,
            Err(e) => {
                // It never held anything: forgotten, so a refused spawn leaves no domain record.
                self.books.forget_domain(ledger);
                return Err(e.to_abi());
            }
        };
        let generation = self.slots[slot].generation.wrapping_add(1);
        // SAFETY: both frames were allocated for this domain and are used for nothing else
        // until teardown takes them back out of the slot.
        let (mut dcb, caps) = unsafe {
            (
                ObjectFrame::new(objects.dcb, domain::new_dcb(objects.root, program.entry)),
                // An empty table is all zero bytes (checked at compile time).
                {
                    let () = CapTable::EMPTY_IS_ZERO;
                    ObjectFrame::<CapTable>::zeroed(objects.caps)
                },
            )
        };
        // The regions taken over, not the whole table copied (an empty table of the same
        // capacity: it cannot run out).
        let _ = dcb.get_mut().regions.extend_from_slice(&regions);
        self.slots[slot] = DomainEntry::new(generation, domain_name, ledger, dcb, caps);
        mmu::invalidate_asid(asid(slot));
        if let Some(parent) = creator {
            // The parent's shared pages turned read-only: one flush of its ASID covers them.
            mmu::invalidate_asid(asid(parent));
        }
        let _ = self.run_queue.push_back(slot as u8);
        log::debug!("domain '{name}' created in slot {slot}");
        Ok(slot)
    }

    /// [`create_domain`](Self::create_domain)'s work: the new space built and every charge
    /// reserved (a failure frees what was built; nothing was charged), then everything
    /// committed, which cannot fail (an error there is a kernel bug, and stops the run).
    fn build_domain(
        &mut self,
        ledger: accounting::DomainId,
        causer: accounting::DomainId,
        program: &elf::Program<'static>,
        creator: Option<usize>,
        shared: &[SharedRegion],
    ) -> Result<Objects, ChargeError> {
        let Kernel {
            frames,
            books,
            slots,
            span_indices,
            spawn_indices,
            batch_need,
            ..
        } = self;
        let mut batch = books.batch(batch_need);

        // Reserve: the objects and root, the image's pages, the shared spans.
        let mut new = NewDomain::new(frames)?;
        let objects = Step::Objects {
            domain: ledger,
            causer,
            objects: new.objects,
            root: new.tables.root(),
        };
        books.batch_add(&mut batch, &objects, new.frames)?;
        for segment in &program.segments {
            let (start, end, access) = segment_pages(segment);
            for va in (start..end).step_by(PAGE_BYTES) {
                let missing = new.tables.missing_tables(va);
                let mut fresh = [Frame(0); 3];
                new.allocate(&mut fresh[..=missing])?;
                let (page, tables) = (fresh[0], &fresh[1..=missing]);
                load_page(segment, va, page);
                let descriptor = mmu::user_page_descriptor(page.address(), access);
                new.tables.map_new(va, descriptor, tables);
                let step = Step::Page {
                    owner: ledger,
                    causer,
                    page,
                    tables,
                };
                books.batch_add(&mut batch, &step, new.frames)?;
            }
        }
        // Each span's indices are kept (a header, then the indices) while they fit.
        let (mut kept, mut kept_spans, mut full) = (0, 0, false);
        if let Some(parent) = creator {
            let parent_dcb = slots[parent].dcb().ok_or(ChargeError::Fault)?;
            for (va, count) in shared.iter().flat_map(spans) {
                let entries = parent_dcb
                    .tables
                    .level3_entries(va)
                    .map(|table| &table.0[level3_index(va)..level3_index(va) + count]);
                full |= kept + 1 + count > SPAWN_INDICES;
                let scratch = if full {
                    &mut span_indices[..]
                } else {
                    &mut spawn_indices[kept + 1..]
                };
                let found =
                    entries.and_then(|entries| present_frames(entries, new.frames, scratch));
                let present = found.map_or(0, |(_, present)| present);
                if !full {
                    spawn_indices[kept] = accounting::FrameIndex(present as u32);
                    kept += 1 + present;
                    kept_spans += 1;
                }
                let Some((first, present)) = found else {
                    continue;
                };
                let indices = if full {
                    &span_indices[..present]
                } else {
                    &spawn_indices[kept - present..kept]
                };
                let missing = new.tables.missing_tables(va);
                let mut fresh = [Frame(0); 2];
                new.allocate(&mut fresh[..missing])?;
                new.tables
                    .map_new(va + first * PAGE_BYTES, 0, &fresh[..missing]);
                let step = Step::Share {
                    shared: indices,
                    domain: ledger,
                    causer,
                    tables: &fresh[..missing],
                };
                books.batch_add(&mut batch, &step, new.frames)?;
            }
        }

        // Commit: nothing can fail from here on.
        let (objects_frames, mut tables) = new.commit();
        let root = tables.root();
        books
            .batch_commit(&mut batch, &objects, frames)
            .unwrap_or_else(|error| bug(error));
        for segment in &program.segments {
            let (start, end, _) = segment_pages(segment);
            for va in (start..end).step_by(PAGE_BYTES) {
                let (new_tables, count, descriptor) = tables.take_new(va);
                if descriptor == 0 {
                    bug(accounting::Error::BadPlan);
                }
                let step = Step::Page {
                    owner: ledger,
                    causer,
                    page: Frame(mmu::descriptor_address(descriptor)),
                    tables: &new_tables[..count],
                };
                books
                    .batch_commit(&mut batch, &step, frames)
                    .unwrap_or_else(|error| bug(error));
            }
        }
        if let Some(parent) = creator {
            let parent_dcb = slots[parent]
                .dcb_mut()
                .unwrap_or_else(|| bug(accounting::Error::BadPlan));
            let mut next_kept = 0;
            for (span, (va, count)) in shared.iter().flat_map(spans).enumerate() {
                let Some(source) = parent_dcb.tables.level3_table(va) else {
                    if span < kept_spans {
                        next_kept += 1;
                    }
                    continue;
                };
                let first = level3_index(va);
                let entries = &mut source.0[first..first + count];
                let indices = if span < kept_spans {
                    let present = spawn_indices[next_kept].0 as usize;
                    next_kept += 1 + present;
                    &spawn_indices[next_kept - present..next_kept]
                } else {
                    let present = present_frames(entries, frames, &mut span_indices[..])
                        .map_or(0, |(_, present)| present);
                    &span_indices[..present]
                };
                if indices.is_empty() {
                    continue;
                }
                let (new_tables, new_count) = tables.take_new_tables(va);
                let step = Step::Share {
                    shared: indices,
                    domain: ledger,
                    causer,
                    tables: &new_tables[..new_count],
                };
                books
                    .batch_commit(&mut batch, &step, frames)
                    .unwrap_or_else(|error| bug(error));
                let target = tables
                    .level3_table(va)
                    .unwrap_or_else(|| bug(accounting::Error::BadPlan));
                mark_copy_on_write(entries, &mut target.0[first..first + count]);
            }
        }
        books.batch_finish(batch).unwrap_or_else(|error| bug(error));
        Ok(Objects {
            dcb: objects_frames[0],
            caps: objects_frames[1],
            root,
        })
    }

    fn is_waited_for(&self, slot: usize) -> bool {
        self.slots
            .iter()
            .any(|s| s.state == RunState::Blocked(Block::Wait(slot as u8)))
    }

    /// Ends a domain: returns every frame and every charge (release policy applies to frames
    /// others still map), wakes its waiters, and records the final state.
    pub fn teardown(&mut self, slot: usize, state: RunState) {
        if !self.slots[slot].is_alive() {
            return;
        }
        let ledger = self.slots[slot].account;
        self.ipc_teardown(slot);
        let regions = self.slots[slot]
            .dcb()
            .map(|dcb| dcb.regions.clone())
            .unwrap_or_default();
        for region in &regions {
            self.unmap_range(slot, region.start, region.end());
        }
        // Every table, however many: each is freed as the walk leaves it (a level-3 table
        // before the level-2 table that points to it, the root last).
        let (books, frames) = (&mut self.books, &mut self.frames);
        if let Some(dcb) = self.slots[slot].dcb() {
            dcb.tables.for_each_table(|frame| {
                books.free(frame, frames);
                frames.free(frame);
            });
            let root = dcb.tables.root();
            books.free(root, frames);
            frames.free(root);
        }
        if usize::from(self.fp_owner) == slot {
            self.fp_owner = crate::kernel::NO_FP_OWNER;
        }
        for frame in self.slots[slot].take_objects().into_iter().flatten() {
            self.books.free(frame, &self.frames);
            self.frames.free(frame);
        }
        mmu::invalidate_asid(asid(slot));
        self.slots[slot].state = state;
        self.slots[slot].suspended = false;
        // The domains it suspended go on: no one is left to resume them.
        for other in 0..MAX_DOMAINS {
            if self.slots[other].suspended && usize::from(self.slots[other].suspender) == slot {
                let _ = self.suspend(slot, other, false);
            }
        }
        match state {
            RunState::Exited(code) => self.books.domain_exited(ledger, code),
            _ => self.books.domain_state(ledger, report_state(state)),
        }
        let code = match state {
            RunState::Exited(code) => u64::from(code as u32),
            _ => abi::WAIT_STOPPED as u64,
        };
        for waiter in 0..MAX_DOMAINS {
            if self.slots[waiter].state == RunState::Blocked(Block::Wait(slot as u8)) {
                self.wake(waiter, code);
            }
        }
        log::debug!("domain '{}' ended: {:?}", self.slots[slot].name, state);
    }

    /// Stops the current domain for `reason`, printing why.
    pub fn stop_current(&mut self, reason: StopReason, why: core::fmt::Arguments) {
        if let Some(slot) = self.current {
            // An over-limit stop says which charge was denied, and whose limit failed.
            let mut denial = heapless::String::<160>::new();
            if reason == StopReason::OverLimit {
                let _ = self
                    .books
                    .write_last_denial(&mut denial, self.slots[slot].account);
            }
            log::warn!(
                "domain '{}' stopped ({}): {}{}",
                self.slots[slot].name,
                reason.name(),
                why,
                denial
            );
            self.teardown(slot, RunState::Stopped(reason));
        }
    }
}

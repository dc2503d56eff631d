//! A domain's life: creating it (its kernel objects, root table and program image, charged
//! under the `kernel` and `pagetable` policies), and ending it (exit, stop, deadlock), which
//! returns every frame and charge and wakes its waiters.

use crate::arch::aarch64::mmu::{self, UserAccess, PAGE_BYTES};
use crate::charge::{ChargeError, ToAbi, Transaction};
use crate::kernel::{asid, Kernel};
use crate::memory::object::ObjectFrame;
use crate::object::capability::CapTable;
use crate::object::domain::{self, Block, DomainEntry, Name, Region, RunState, MAX_DOMAINS};
use crate::report::report_state;
use abi::Error;
use accounting::{SetId, StopReason};
use kcore::elf;

impl Kernel {
    /// Creates a domain running `program` (parsed and checked by the caller), bound to `set`,
    /// created by `creator` (None at boot). On any failure everything created so far is torn
    /// down again and the books are back where they were.
    pub fn create_domain(
        &mut self,
        name: &str,
        set: SetId,
        program: &elf::Program<'static>,
        creator: Option<usize>,
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
        let ledger = self
            .books
            .create_domain(name, set)
            .map_err(|e| e.to_abi())?;
        let causer = creator.map(|c| self.slots[c].account).unwrap_or(ledger);

        // Kernel objects and the root table, charged in one step.
        let transaction = match Transaction::<3>::with_frames(&mut self.frames, 3) {
            Ok(transaction) => transaction,
            Err(e) => {
                self.books.forget_domain(ledger);
                return Err(e.to_abi());
            }
        };
        let [dcb_frame, caps_frame, root] = [0, 1, 2].map(|i| transaction.frames()[i]);
        let books = &mut self.books;
        if let Err(e) = transaction.commit(|_, allocator| {
            books.charge_domain_objects(ledger, causer, [dcb_frame, caps_frame], root, allocator)
        }) {
            // It never held anything: forgotten, so a refused spawn leaves no domain record.
            self.books.forget_domain(ledger);
            return Err(e.to_abi());
        }
        root.zero();
        // SAFETY: both frames were just allocated for this domain and are used for nothing
        // else until teardown takes them back out of the slot.
        let (dcb, caps) = unsafe {
            (
                ObjectFrame::new(dcb_frame, domain::new_dcb(root, program.entry)),
                // An empty table is all zero bytes (checked at compile time).
                {
                    let () = CapTable::EMPTY_IS_ZERO;
                    ObjectFrame::<CapTable>::zeroed(caps_frame)
                },
            )
        };
        let generation = self.slots[slot].generation.wrapping_add(1);
        self.slots[slot] = DomainEntry::new(generation, domain_name, ledger, dcb, caps);
        mmu::invalidate_asid(asid(slot));
        if let Err(e) = self.load_program(slot, program, causer) {
            self.teardown(slot, RunState::Stopped(e.stop_reason()));
            return Err(e.to_abi());
        }
        let _ = self.run_queue.push_back(slot as u8);
        log::debug!("domain '{name}' created in slot {slot}");
        Ok(slot)
    }

    /// Maps the program's segments (their pages populated and charged as `anon`) and the
    /// demand-zero stack region.
    /// The image's page tables are made necessary by `causer`, the spawner (the domain itself
    /// at boot): under `pagetable = causer` the spawner pays for them.
    fn load_program(
        &mut self,
        slot: usize,
        program: &elf::Program,
        causer: accounting::DomainId,
    ) -> Result<(), ChargeError> {
        for segment in &program.segments {
            let (start, end) = (segment.page_start(), segment.page_end());
            let access = if segment.flags & elf::FLAG_EXECUTE != 0 {
                UserAccess::ReadExecute
            } else if segment.flags & elf::FLAG_WRITE != 0 {
                UserAccess::ReadWrite
            } else {
                UserAccess::ReadOnly
            };
            self.add_region(
                slot,
                Region {
                    start,
                    pages: (end - start) / PAGE_BYTES,
                    access,
                    capability: 0,
                    kept: false,
                },
            )
            .map_err(|_| ChargeError::Fault)?;
            let mut va = start;
            while va < end {
                let frame = self.populate_caused(slot, va, access, causer)?;
                // Copy the part of the segment's file bytes that falls in this page.
                let page_end = va + PAGE_BYTES;
                let data_start = segment.address.max(va);
                let data_end = (segment.address + segment.data.len()).min(page_end);
                if data_start < data_end {
                    let bytes =
                        &segment.data[data_start - segment.address..data_end - segment.address];
                    // SAFETY: `frame` is the page just mapped for `va`, owned by this domain,
                    // and the range lies inside it.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            bytes.as_ptr(),
                            (frame.virt() + (data_start - va)) as *mut u8,
                            bytes.len(),
                        )
                    };
                }
                va = page_end;
            }
        }
        let stack_start = abi::USER_STACK_TOP - abi::USER_STACK_PAGES * PAGE_BYTES;
        self.add_region(
            slot,
            Region {
                start: stack_start,
                pages: abi::USER_STACK_PAGES,
                access: UserAccess::ReadWrite,
                capability: 0,
                kept: false,
            },
        )
        .map_err(|_| ChargeError::Fault)
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

//! The kernel proper: its one global state ([`Kernel`], behind a lock that is never contended
//! because the kernel is single-threaded and runs with IRQs masked), domain creation and
//! teardown, round-robin scheduling on the timer tick, and the end of the run.
//!
//! Invariants: `current` is the slot whose registers are in the live trap frame; every slot in
//! `run_queue` is alive and `Runnable`; after every system call and fault the books balance
//! (checked in debug builds and in every snapshot).

use crate::arch::aarch64::cpu;
use crate::arch::aarch64::exception::{self, Class, Syndrome, TrapFrame};
use crate::arch::aarch64::mmu::{self, UserAccess, PAGE_BYTES};
use crate::arch::aarch64::timer;
use crate::board::qemu_virt::{gic::Gic, GICC_PA, GICD_PA, VIRTUAL_TIMER_INTID};
use crate::charge::{Books, ChargeError, ToAbi, Transaction};
use crate::domain::{self, Block, Capability, DomainEntry, Name, Region, RunState, MAX_DOMAINS};
use crate::memory::frames::{Frame, FrameAllocator};
use crate::memory::object::ObjectFrame;
use crate::{programs, report};
use abi::Error;
use accounting::{DomainState, SetId, StopReason};
use core::fmt::Write as _;
use heapless::Deque;
use kcore::bootcfg::{BootConfig, CapSpec};
use kcore::elf;
use spin::Mutex;

/// The kernel's state.
pub struct Kernel {
    /// Physical frames.
    pub frames: FrameAllocator,
    /// The ledger and the policies.
    pub books: Books,
    gic: Gic,
    /// The domain table.
    pub slots: [DomainEntry; MAX_DOMAINS],
    run_queue: Deque<u8, MAX_DOMAINS>,
    /// The running domain's slot.
    pub current: Option<usize>,
    fp_owner: Option<usize>,
    /// The boot config.
    pub config: BootConfig,
    /// Charge sets declared by the config, by name (for capabilities and reports).
    pub config_sets: heapless::Vec<(Name, SetId), 32>,
    /// Set when any conservation check failed: the run then ends with a failure status.
    pub conservation_failed: bool,
    /// Free frames in the `start` snapshot: teardown must bring the count back to it.
    start_free_frames: usize,
    /// Endpoint objects, by index.
    pub endpoints: [Option<ObjectFrame<crate::ipc::Endpoint>>; crate::ipc::MAX_ENDPOINTS],
    /// Shared-memory region objects, by index.
    pub region_objects:
        [Option<ObjectFrame<crate::ipc::RegionObject>>; crate::ipc::MAX_REGION_OBJECTS],
    /// Bumped when a region-object index is reused, so stale capabilities fail.
    pub region_generations: [u32; crate::ipc::MAX_REGION_OBJECTS],
}

// The kernel state is large (the ledger alone is about 100 KB), so it is built in place in this
// static from a const initial value rather than on the stack.
static KERNEL: Mutex<Kernel> = Mutex::new(Kernel::EMPTY);

fn kernel() -> spin::MutexGuard<'static, Kernel> {
    KERNEL.lock()
}

/// Builds the kernel state, creates the config's charge sets and domains, takes the `start`
/// snapshot and enters the first domain.
pub fn start(ram: (usize, usize), image_end: usize, config: BootConfig) -> ! {
    let (ram_start, ram_bytes) = ram;
    let ram_end = ram_start + ram_bytes;
    mmu::init_kernel_map(ram_start, ram_end);
    let total_frames = ram_bytes / PAGE_BYTES;
    let table_start = (image_end + PAGE_BYTES - 1) & !(PAGE_BYTES - 1);
    let table_bytes = total_frames * core::mem::size_of::<accounting::FrameEntry>();
    let first_free = (table_start + table_bytes + PAGE_BYTES - 1) & !(PAGE_BYTES - 1);
    // SAFETY: [table_start, first_free) is RAM right after the kernel image, inside the linear
    // map, used for nothing else (the device tree may have been there, but was parsed and
    // copied already); it is zeroed before the slice is formed, and zero is FrameEntry::FREE.
    let frame_table = unsafe {
        let pointer = mmu::phys_to_virt(table_start) as *mut accounting::FrameEntry;
        let mut page = table_start;
        while page < first_free {
            cpu::zero_page(mmu::phys_to_virt(page) as *mut u8);
            page += PAGE_BYTES;
        }
        core::slice::from_raw_parts_mut(pointer, total_frames)
    };
    let mut k = kernel();
    k.frames = FrameAllocator::new(ram_start, ram_end, first_free);
    let boot_frames = k.frames.boot_frames() as u32;
    if let Err(e) = k.books.open(frame_table, &config, boot_frames) {
        crate::println!("tally: bad boot config: {e}");
        report::end(false, "bad boot config");
        cpu::exit_qemu(crate::boot::EXIT_BAD_INPUT);
    }
    k.config = config;
    k.gic.init(VIRTUAL_TIMER_INTID);
    report::run_record(&k, ram_bytes);
    if let Err(error) = k.create_config_objects() {
        crate::println!("tally: bad boot config: {error}");
        report::end(false, "bad boot config");
        cpu::exit_qemu(crate::boot::EXIT_BAD_INPUT);
    }
    timer::start();
    k.switch();
    drop(k);
    exception::return_to_user()
}

impl Kernel {
    const EMPTY: Kernel = {
        const EMPTY_SLOT: DomainEntry = DomainEntry::EMPTY;
        Kernel {
            frames: FrameAllocator::EMPTY,
            books: Books::EMPTY,
            // SAFETY: the GIC's register blocks are in the device GiB of the linear map and
            // only this driver uses them.
            gic: unsafe { Gic::new(mmu::phys_to_virt(GICD_PA), mmu::phys_to_virt(GICC_PA)) },
            slots: [EMPTY_SLOT; MAX_DOMAINS],
            run_queue: Deque::new(),
            current: None,
            fp_owner: None,
            config: BootConfig::EMPTY,
            config_sets: heapless::Vec::new(),
            conservation_failed: false,
            start_free_frames: 0,
            endpoints: [const { None }; crate::ipc::MAX_ENDPOINTS],
            region_objects: [const { None }; crate::ipc::MAX_REGION_OBJECTS],
            region_generations: [0; crate::ipc::MAX_REGION_OBJECTS],
        }
    };

    /// Creates the config's charge sets, then its domains with their capabilities.
    fn create_config_objects(&mut self) -> Result<(), BootError> {
        let sets = self.config.sets.clone();
        for spec in &sets {
            let parent = match &spec.parent {
                Some(parent) => Some(
                    self.config_set(parent)
                        .ok_or(BootError::Message("undefined parent set"))?,
                ),
                None => None,
            };
            let id = self
                .books
                .create_set(&spec.name, parent, spec.limit_bytes, &spec.kind_limits)
                .map_err(|error| BootError::Set {
                    set: spec.name.clone(),
                    error,
                })?;
            let _ = self.config_sets.push((spec.name.clone(), id));
        }
        // `start` comes before any endpoint or domain exists, so that after every domain has
        // ended (and the endpoints are gone) `final` shows the same free-frame count.
        self.snapshot("start");
        self.start_free_frames = self.frames.free_frames();
        let endpoint_names = self.config.endpoints.clone();
        let mut endpoint_indices = heapless::Vec::<u8, 16>::new();
        for _ in &endpoint_names {
            let index = self
                .create_endpoint(None)
                .map_err(|e| BootError::Message(e.name()))?;
            let _ = endpoint_indices.push(index);
        }
        let domains = self.config.domains.clone();
        let mut created = heapless::Vec::<usize, 16>::new();
        for (index, spec) in domains.iter().enumerate() {
            let image =
                programs::find(&spec.program).ok_or(BootError::Message("unknown program"))?;
            let program = elf::parse(image).map_err(|error| BootError::Program {
                domain: spec.name.clone(),
                program: spec.program.clone(),
                error,
            })?;
            let set = self
                .config_set(&spec.charge_set)
                .ok_or(BootError::Message("undefined charge set"))?;
            let slot = self
                .create_domain(&spec.name, set, &program, None)
                .map_err(|error| BootError::Domain {
                    domain: spec.name.clone(),
                    set: spec.charge_set.clone(),
                    error,
                })?;
            self.slots[slot].boot_index = Some(index as u8);
            let _ = created.push(slot);
        }
        // An endpoint's owner (the receiver that pays for queued messages under
        // `msgbuf = receiver`) is the first domain in the config given a capability to it.
        for (name, &index) in endpoint_names.iter().zip(endpoint_indices.iter()) {
            let owner = domains
                .iter()
                .position(|d| d.caps.iter().any(|c| *c == CapSpec::Endpoint(name.clone())))
                .map(|i| self.slots[created[i]].account);
            self.set_endpoint_owner(index as usize, owner);
        }
        for (spec, &slot) in domains.iter().zip(created.iter()) {
            for cap in &spec.caps {
                let capability = match cap {
                    // The boot-config parser refuses a capability to the kernel reserve set,
                    // and `config_set` only knows the config's own sets.
                    CapSpec::Set(name) => Capability::Set(
                        self.config_set(name)
                            .ok_or(BootError::Message("undefined set"))?,
                    ),
                    CapSpec::Domain(name) => {
                        let target = domains
                            .iter()
                            .position(|d| &d.name == name)
                            .ok_or(BootError::Message("undefined domain"))?;
                        let target_slot = created[target];
                        Capability::Domain {
                            slot: target_slot as u8,
                            generation: self.slots[target_slot].generation,
                        }
                    }
                    CapSpec::Endpoint(name) => {
                        let position = endpoint_names
                            .iter()
                            .position(|n| n == name)
                            .ok_or(BootError::Message("undefined endpoint"))?;
                        Capability::Endpoint(endpoint_indices[position])
                    }
                };
                let caps = self.slots[slot]
                    .caps_mut()
                    .ok_or(BootError::Message("domain died during boot"))?;
                caps.insert(capability)
                    .map_err(|_| BootError::Message("too many capabilities"))?;
            }
        }
        Ok(())
    }

    /// The config set called `name` (never the `kernel` reserve set: the boot-config parser
    /// refuses it as a parent, a domain's set or a capability).
    fn config_set(&self, name: &str) -> Option<SetId> {
        self.config_sets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }

    /// Takes a report snapshot and checks conservation.
    ///
    /// Running and blocked states change on every IPC, so they reach the ledger (and the trace)
    /// here, just before a snapshot needs them, rather than on every change; exits and stops
    /// are recorded when they happen.
    pub fn snapshot(&mut self, label: &str) {
        for slot in 0..MAX_DOMAINS {
            if self.slots[slot].is_alive() {
                let state = report_state(self.slots[slot].state);
                if self.slots[slot].reported != state {
                    self.slots[slot].reported = state;
                    self.books.domain_state(self.slots[slot].account, state);
                }
            }
        }
        if !report::snapshot(self, label) {
            self.conservation_failed = true;
        }
    }

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
                ObjectFrame::new(caps_frame, domain::new_caps()),
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
            },
        )
        .map_err(|_| ChargeError::Fault)
    }

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
        if self.fp_owner == Some(slot) {
            self.fp_owner = None;
        }
        for frame in self.slots[slot].take_objects().into_iter().flatten() {
            self.books.free(frame, &self.frames);
            self.frames.free(frame);
        }
        mmu::invalidate_asid(asid(slot));
        self.slots[slot].state = state;
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
            for &(_, frame) in &pages {
                if self.books.unmap(frame, ledger, &self.frames) {
                    self.forget_region_frame(frame);
                    self.frames.free(frame);
                }
            }
            va = chunk_end;
        }
    }

    /// Makes a blocked domain runnable with `result` in x0.
    pub fn wake(&mut self, slot: usize, result: u64) {
        if let Some(dcb) = self.slots[slot].dcb_mut() {
            dcb.frame.set_result(result);
            self.slots[slot].state = RunState::Runnable;
            let _ = self.run_queue.push_back(slot as u8);
        }
    }

    /// Blocks the current domain.
    pub fn block_current(&mut self, reason: Block) {
        if let Some(slot) = self.current {
            self.slots[slot].state = RunState::Blocked(reason);
        }
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

    /// Leaves the current domain (its registers are already in its control block; it goes
    /// to the back of the run queue if it can still run) and enters the next runnable one.
    /// When no domain can run: blocked domains are deadlocked and stopped; when none is left,
    /// the run ends.
    pub fn switch(&mut self) {
        if let Some(current) = self.current.take() {
            if self.slots[current].dcb().is_some()
                && matches!(self.slots[current].state, RunState::Runnable)
            {
                let _ = self.run_queue.push_back(current as u8);
            }
        }
        loop {
            while let Some(next) = self.run_queue.pop_front() {
                let next = next as usize;
                if self.slots[next].dcb().is_none()
                    || !matches!(self.slots[next].state, RunState::Runnable)
                {
                    continue;
                }
                self.enter(next);
                return;
            }
            self.stop_deadlocked();
        }
    }

    /// Makes `next` (alive) the current domain: its address space, its saved registers as
    /// the ones the next return to EL0 restores, and EL0's FP access as its FP state needs.
    pub fn enter(&mut self, next: usize) {
        let Some(dcb) = self.slots[next].dcb_mut() else {
            return;
        };
        let (root, frame) = (dcb.tables.root().address(), &raw mut dcb.frame);
        self.enter_prepared(next, root, frame);
    }

    /// [`enter`](Self::enter) with `next`'s root table and register frame already read from
    /// its control block.
    #[inline(always)]
    pub fn enter_prepared(&mut self, next: usize, root: usize, frame: *mut TrapFrame) {
        mmu::switch_user_space(root, asid(next));
        // SAFETY: the frame is in `next`'s control block, which stays allocated until its
        // teardown; a teardown of the current domain is always followed by a switch to
        // another before the kernel returns to EL0, and no reference to the frame is held
        // across a return to EL0 (the kernel lock is released first).
        unsafe { exception::set_current_frame(frame) };
        if self.fp_owner == Some(next) {
            cpu::fp_enable_for_user();
        } else {
            cpu::fp_trap_for_user();
        }
        self.current = Some(next);
    }

    /// No domain can run: every live one is blocked, so they are deadlocked and stopped; when
    /// none is left, the run ends.
    #[cold]
    #[inline(never)]
    fn stop_deadlocked(&mut self) {
        let blocked: heapless::Vec<usize, MAX_DOMAINS> = (0..MAX_DOMAINS)
            .filter(|&s| self.slots[s].is_alive())
            .collect();
        if blocked.is_empty() {
            self.finish_run();
        }
        for slot in blocked {
            log::warn!(
                "domain '{}' stopped: deadlock (every live domain is blocked; this one in {:?})",
                self.slots[slot].name,
                self.slots[slot].state
            );
            self.teardown(slot, RunState::Stopped(StopReason::Killed));
        }
    }

    /// Whether no domain waits in the run queue: then the scheduler would pick whichever
    /// domain a switch makes runnable next (the fast path's condition for switching to it
    /// directly).
    #[inline]
    pub fn run_queue_empty(&self) -> bool {
        self.run_queue.is_empty()
    }

    /// The saved registers of the domain in `slot` (all of them while it is not running, and
    /// while it is in the kernel).
    pub fn registers(&self, slot: usize) -> Option<&TrapFrame> {
        self.slots[slot].dcb().map(|dcb| &dcb.frame)
    }

    /// The saved registers of the domain in `slot`, mutably.
    pub fn registers_mut(&mut self, slot: usize) -> Option<&mut TrapFrame> {
        self.slots[slot].dcb_mut().map(|dcb| &mut dcb.frame)
    }

    /// The last domain has ended: final snapshot, the teardown check (every frame back, every
    /// set at zero), end record, exit.
    fn finish_run(&mut self) -> ! {
        self.destroy_endpoints();
        self.snapshot("final");
        let mut reason = heapless::String::<160>::new();
        let free = self.frames.free_frames();
        if self.conservation_failed {
            let _ = reason.push_str("conservation check failed");
        } else if free != self.start_free_frames {
            let _ = write!(
                reason,
                "teardown did not return every frame: {} free in `start`, {free} in `final`",
                self.start_free_frames
            );
        } else if let Some((set, bytes)) = self.books.first_charged_set() {
            let _ = write!(
                reason,
                "teardown did not return every charge: set '{set}' still pays {bytes} bytes"
            );
        }
        let ok = reason.is_empty();
        if !ok {
            log::error!("{reason}");
        }
        report::end(ok, if ok { "ok" } else { &reason });
        cpu::exit_qemu(if ok { 0 } else { 1 })
    }

    /// With `recount=on` (callers test `config.recount` first, so that without it nothing is
    /// built): the full recount of the books after `operation`; a failure ends the run, naming
    /// the operation.
    #[cold]
    #[inline(never)]
    fn recount_after(&mut self, operation: core::fmt::Arguments) {
        if let Err(why) = self.books.recount(&self.frames) {
            let mut reason = heapless::String::<160>::new();
            let _ = write!(reason, "recount failed after {operation}: {why}");
            crate::println!("tally: {reason}");
            self.snapshot("recount-failed");
            report::end(false, &reason);
            cpu::exit_qemu(1)
        }
    }

    /// Lazy FP/SIMD switch: the current domain used FP registers another domain holds.
    fn switch_fp(&mut self) {
        let Some(current) = self.current else { return };
        if let Some(owner) = self.fp_owner {
            if let Some(dcb) = self.slots[owner].dcb_mut() {
                cpu::save_fp(&mut dcb.fp);
            }
        }
        if let Some(dcb) = self.slots[current].dcb() {
            cpu::restore_fp(&dcb.fp);
        }
        self.fp_owner = Some(current);
        cpu::fp_enable_for_user();
    }
}

/// The ASID of a slot (0 is never used by a domain).
pub fn asid(slot: usize) -> u16 {
    slot as u16 + 1
}

/// The report's view of a run state.
pub fn report_state(state: RunState) -> DomainState {
    match state {
        RunState::Runnable => DomainState::Running,
        RunState::Blocked(_) => DomainState::Blocked,
        RunState::Exited(_) => DomainState::Exited,
        RunState::Stopped(reason) => DomainState::Stopped(reason),
    }
}

/// A synchronous exception from EL0: system call, page fault, FP trap or a fatal fault. The
/// current domain's registers are in its control block.
pub fn user_exception(syndrome: Syndrome, fault_address: usize) {
    let mut k = kernel();
    let Some(current) = k.current else {
        return;
    };
    let saved = |k: &Kernel| {
        k.registers(current)
            .map_or((0, 0), |frame| (frame.syscall_number(), frame.pc()))
    };
    match syndrome.class() {
        Class::SystemCall => {
            if k.config.recount {
                let (number, _) = saved(&k);
                k.system_call();
                k.recount_after(format_args!("system call {number}"));
            } else {
                k.system_call();
            }
        }
        Class::DataAbort | Class::InstructionAbort => {
            let (_, elr) = saved(&k);
            k.user_fault(syndrome, fault_address, elr);
            if k.config.recount {
                k.recount_after(format_args!("a fault at {fault_address:#x}"));
            }
        }
        Class::FpAccess => k.switch_fp(),
        Class::Other(_) => {
            let (_, elr) = saved(&k);
            k.stop_current(StopReason::Fault, format_args!("{syndrome} at {elr:#x}"));
            if k.config.recount {
                k.recount_after(format_args!("a fatal exception at {elr:#x}"));
            }
        }
    }
    if cfg!(debug_assertions) && !k.books.conservation(&k.frames).ok {
        panic!("conservation violated after a system call or fault");
    }
    let runnable = k
        .current
        .map(|s| matches!(k.slots[s].state, RunState::Runnable) && k.slots[s].is_alive())
        .unwrap_or(false);
    if !runnable {
        k.switch();
    }
}

/// The register-sized IPC fast path for `call_registers`, before anything else runs
/// (vectors.s): `true` when it completed the call, `false` when it changed nothing.
#[inline(always)]
pub fn fastpath_call() -> bool {
    kernel().fastpath_call()
}

/// The memory-descriptor fast path for `call` (ipc/fast.rs).
#[inline(always)]
pub fn fastpath_call_memory() -> bool {
    kernel().fastpath_call_memory()
}

/// The memory-descriptor fast path for `reply_recv` (ipc/fast.rs).
#[inline(always)]
pub fn fastpath_reply_recv_memory() -> bool {
    kernel().fastpath_reply_recv_memory()
}

/// The fast path for `reply_recv_registers` (as [`fastpath_call`]).
#[inline(always)]
pub fn fastpath_reply_recv() -> bool {
    kernel().fastpath_reply_recv()
}

/// An IRQ while a domain ran: the timer tick preempts it.
pub fn user_interrupt() {
    let mut k = kernel();
    let mut preempt = false;
    while let Some(iar) = k.gic.acknowledge() {
        if iar & 0x3ff == VIRTUAL_TIMER_INTID {
            timer::rearm();
            preempt = true;
        }
        k.gic.end(iar);
    }
    if k.config.recount {
        k.recount_after(format_args!("an interrupt"));
        // The next tick a whole period after the recount: with much RAM a recount can take
        // longer than a period, and the domain would otherwise never run between ticks.
        timer::rearm();
    }
    if preempt && !k.run_queue.is_empty() {
        k.switch();
    }
}

/// Why the config's objects could not be created at boot.
enum BootError {
    /// A fixed reason.
    Message(&'static str),
    /// The ledger refused a charge set.
    Set {
        set: kcore::bootcfg::Name,
        error: accounting::Error,
    },
    /// A program image cannot be loaded.
    Program {
        domain: kcore::bootcfg::Name,
        program: kcore::bootcfg::Name,
        error: elf::ElfError,
    },
    /// A domain could not be created (its set's limit, memory).
    Domain {
        domain: kcore::bootcfg::Name,
        set: kcore::bootcfg::Name,
        error: Error,
    },
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            BootError::Message(text) => f.write_str(text),
            BootError::Set { set, error } => write!(f, "charge set '{set}': {error}"),
            BootError::Program {
                domain,
                program,
                error,
            } => write!(f, "program '{program}' of domain '{domain}': {error}"),
            BootError::Domain { domain, set, error } => write!(
                f,
                "domain '{domain}' cannot start in charge set '{set}': {}",
                error.name()
            ),
        }
    }
}

//! The kernel's state: the one global [`Kernel`], behind a lock that is never contended because
//! the kernel is single-threaded and runs with IRQs masked. Its operations are methods in the
//! modules of their concern: [`crate::boot`] (the config's objects), [`crate::trap`] (the one
//! entry from the architecture), [`crate::sched`] (run queue, switching, lazy FP, the end of
//! the run), [`crate::lifecycle`] (creating and ending domains), [`crate::syscall`],
//! [`crate::ipc`], [`crate::memory::address_space`] and [`crate::report`].
//!
//! Invariants: `current` is the slot whose registers are in the live trap frame; every slot in
//! `run_queue` is alive and `Runnable`; after every system call and fault the books balance
//! (checked in debug builds and in every snapshot).

use crate::arch::aarch64::exception::TrapFrame;
use crate::arch::aarch64::mmu;
use crate::board::qemu_virt::{gic::Gic, GICC_PA, GICD_PA};
use crate::charge::Books;
use crate::memory::frames::FrameAllocator;
use crate::memory::object::ObjectFrame;
use crate::object::domain::{DomainEntry, Name, MAX_DOMAINS};
use accounting::SetId;
use kcore::bootcfg::BootConfig;
use kcore::queue::SlotQueue;
use spin::Mutex;

/// [`Kernel::fp_owner`] when no domain's FP/SIMD state is in the registers.
pub const NO_FP_OWNER: u8 = u8::MAX;
// The sentinel is no slot.
const _: () = assert!(NO_FP_OWNER as usize >= MAX_DOMAINS);

/// The kernel's state.
///
/// Laid out in declaration order (`repr(C)`), the fields the fast paths read on every system
/// call first (the current slot, the FP owner, the run queue, then the endpoint and domain
/// tables), the large ones (the boot config, the frame allocator, the books, about 260 KB) last:
/// so the IPC and fault paths reach what they need at offsets a load encodes directly.
#[repr(C)]
pub struct Kernel {
    /// The running domain's slot.
    pub current: Option<usize>,
    /// The slot whose FP/SIMD state the registers hold, or [`NO_FP_OWNER`] (a byte: the
    /// switch compares it with one instruction).
    pub(crate) fp_owner: u8,
    pub(crate) run_queue: SlotQueue<MAX_DOMAINS>,
    /// The paged-out page (slot, page address) the last [`abi::Error::PagedOut`] was about:
    /// whose keeper a restarted system call asks to bring it back.
    pub(crate) missing_page: core::cell::Cell<Option<(u8, usize)>>,
    /// The books' revision and the free frames at the last full recount (`recount=on`): a
    /// recount of books and an allocator unchanged since is skipped.
    pub last_recount: Option<(u64, usize)>,
    /// Timer ticks since boot (the clock of a keeper's answer to a charge query).
    pub ticks: u64,
    /// The number of the last capability made ([`crate::object::capability::Lineage`]).
    pub next_capability: u32,
    /// Set when any conservation check failed: the run then ends with a failure status.
    pub conservation_failed: bool,
    /// Free frames in the `start` snapshot: teardown must bring the count back to it.
    pub(crate) start_free_frames: usize,
    /// Endpoint objects, by index.
    pub endpoints: [Option<ObjectFrame<crate::object::endpoint::Endpoint>>;
        crate::object::endpoint::MAX_ENDPOINTS],
    /// Shared-memory region objects, by index.
    pub region_objects: [Option<ObjectFrame<crate::object::region::RegionObject>>;
        crate::object::region::MAX_REGION_OBJECTS],
    /// Bumped when a region-object index is reused, so stale capabilities fail.
    pub region_generations: [u32; crate::object::region::MAX_REGION_OBJECTS],
    /// The domain table.
    pub slots: [DomainEntry; MAX_DOMAINS],
    /// The boot config.
    pub config: BootConfig,
    /// Charge sets declared by the config, by name (for capabilities and reports).
    pub config_sets: heapless::Vec<(Name, SetId), 32>,
    pub(crate) gic: Gic,
    /// Physical frames.
    pub frames: FrameAllocator,
    /// Scratch for `share_copy_on_write`: the ledger indices of one span's present pages (a
    /// level-3 table's worth), kept here so no share zeroes 2 KiB of stack first.
    pub(crate) span_indices: [accounting::FrameIndex; crate::memory::page_table::SPAN_PAGES],
    /// The ledger and the policies.
    pub books: Books,
    /// Scratch for a spawn: the ledger indices of the pages each span of its shared regions
    /// shares, found while its charges are reserved and used again when they are committed.
    /// (Last: 8 KiB in front of the books would put their fields out of reach of one load's
    /// offset.)
    pub(crate) spawn_indices: [accounting::FrameIndex; SPAWN_INDICES],
    /// Scratch for a spawn's ledger batch: the sharer lists its shares need (kept here, so no
    /// batch is made or moved by value with it).
    pub(crate) batch_need: accounting::BatchNeed,
}

/// Most ledger indices a spawn keeps between reserving and committing its shares (a header
/// and the indices of each span, in order): four full spans. The spans past them are scanned
/// again at commit.
pub const SPAWN_INDICES: usize = 4 * (crate::memory::page_table::SPAN_PAGES + 1);

// The kernel state is large (the ledger alone is about 260 KB), so it is built in place in this
// static from a const initial value rather than on the stack.
static KERNEL: Mutex<Kernel> = Mutex::new(Kernel::EMPTY);

/// The kernel state, locked (never contended: see the module's documentation).
#[inline(always)]
pub fn kernel() -> spin::MutexGuard<'static, Kernel> {
    KERNEL.lock()
}

impl Kernel {
    // Used once, to initialise the static (a `Cell` in a const is copied at each use, which is
    // what the lint warns of: there is one use).
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Kernel = {
        const EMPTY_SLOT: DomainEntry = DomainEntry::EMPTY;
        Kernel {
            frames: FrameAllocator::EMPTY,
            books: Books::EMPTY,
            // SAFETY: the GIC's register blocks are in the device GiB of the linear map and
            // only this driver uses them.
            gic: unsafe { Gic::new(mmu::phys_to_virt(GICD_PA), mmu::phys_to_virt(GICC_PA)) },
            slots: [EMPTY_SLOT; MAX_DOMAINS],
            run_queue: SlotQueue::new(),
            span_indices: [accounting::FrameIndex(0); crate::memory::page_table::SPAN_PAGES],
            spawn_indices: [accounting::FrameIndex(0); SPAWN_INDICES],
            batch_need: accounting::BatchNeed::NEW,
            current: None,
            fp_owner: NO_FP_OWNER,
            config: BootConfig::EMPTY,
            config_sets: heapless::Vec::new(),
            conservation_failed: false,
            start_free_frames: 0,
            endpoints: [const { None }; crate::object::endpoint::MAX_ENDPOINTS],
            region_objects: [const { None }; crate::object::region::MAX_REGION_OBJECTS],
            region_generations: [0; crate::object::region::MAX_REGION_OBJECTS],
            next_capability: 0,
            ticks: 0,
            last_recount: None,
            missing_page: core::cell::Cell::new(None),
        }
    };

    /// The saved registers of the domain in `slot` (all of them while it is not running, and
    /// while it is in the kernel).
    pub fn registers(&self, slot: usize) -> Option<&TrapFrame> {
        self.slots[slot].dcb().map(|dcb| &dcb.frame)
    }

    /// The saved registers of the domain in `slot`, mutably.
    pub fn registers_mut(&mut self, slot: usize) -> Option<&mut TrapFrame> {
        self.slots[slot].dcb_mut().map(|dcb| &mut dcb.frame)
    }
}

/// The ASID of a slot (0 is never used by a domain).
pub fn asid(slot: usize) -> u16 {
    slot as u16 + 1
}

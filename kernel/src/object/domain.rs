//! The domain object: one address space, one thread and one capability table each, bound to a
//! charge set. The control block ([`Dcb`]) and the capability table ([`CapTable`]) each live in
//! a frame of their own, charged as `kernel` (per the `kernel` policy); the small
//! [`DomainEntry`] in the kernel's static table outlives them so waiters can read the exit code
//! and reports can name the domain. Creating, loading and ending a domain is in
//! [`crate::lifecycle`]; its system calls in [`crate::syscall`].

use crate::arch::aarch64::cpu::FpState;
use crate::arch::aarch64::exception::TrapFrame;
use crate::arch::aarch64::mmu::{self, UserAccess};
use crate::memory::frames::Frame;
use crate::memory::object::ObjectFrame;
use crate::memory::page_table::PageTables;
use crate::object::capability::CapTable;
use accounting::{DomainId, StopReason};
use heapless::{String, Vec};

/// Most domains alive at once (ASIDs are slot + 1).
pub const MAX_DOMAINS: usize = 64;
/// Most regions in one address space.
pub const MAX_REGIONS: usize = 16;

/// A domain's name (the one name type of boot configs and the ledger).
pub use kcore::bootcfg::Name;

/// What a region of an address space holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address, page aligned.
    pub start: usize,
    /// Length in pages.
    pub pages: usize,
    /// Access rights of its pages.
    pub access: UserAccess,
    /// The number of the region capability it was mapped through (`region_map`), or 0:
    /// revoking that capability unmaps it.
    pub capability: u32,
    /// Keeper-managed (`map` with [`abi::MAP_KEEPER`]): a page not present is its keeper's to
    /// supply (`page_in`), as if paged out, never demand-zero.
    pub kept: bool,
}

impl Region {
    /// One past the last address.
    #[inline]
    pub fn end(&self) -> usize {
        self.start + self.pages * mmu::PAGE_BYTES
    }

    /// Whether `va` lies inside.
    #[inline]
    pub fn contains(&self, va: usize) -> bool {
        va >= self.start && va < self.end()
    }

    /// Whether the region overlaps `[start, end)`.
    #[inline]
    pub fn overlaps(&self, start: usize, end: usize) -> bool {
        start < self.end() && self.start < end
    }
}

/// The domain control block, in its own frame.
#[repr(C)]
pub struct Dcb {
    /// Saved registers while not running.
    pub frame: TrapFrame,
    /// Saved FP/SIMD registers (lazily switched).
    pub fp: FpState,
    /// Translation tables.
    pub tables: PageTables,
    /// The regions of the address space.
    pub regions: Vec<Region, MAX_REGIONS>,
    /// While blocked sending: the address of its message descriptor.
    pub ipc_message: usize,
    /// While blocked receiving or waiting for a reply: its receive descriptor.
    pub ipc_receive: usize,
    /// While blocked sending: whether it is a `call` (then it waits for the reply).
    pub ipc_calling: bool,
    /// While blocked in IPC: whether it waits in a register-sized operation (its words are in
    /// its saved x1..x4) rather than one with memory descriptors.
    pub ipc_registers: bool,
    /// The caller (slot, generation) the next `reply` answers.
    pub reply_to: Option<(u8, u32)>,
    /// The endpoint its faults go to (its keeper receives there), if it has a keeper.
    pub keeper: Option<u8>,
    /// While blocked on its keeper: the fault it sent (it retries the faulting instruction
    /// when the keeper answers).
    pub fault: Option<abi::Fault>,
    /// Faults sent to its keeper so far.
    pub faults_sent: u64,
    /// While its `fault` is a charge query: the timer tick by which the keeper must answer.
    pub query_deadline: u64,
    /// While it sleeps: the timer tick it wakes at.
    pub wake_at: u64,
    /// Some page of it is, or was, its keeper's to supply: paged out (`page_out`), or in a
    /// keeper-managed region. Only then do accesses, copies and unmaps look for such pages.
    pub kept_pages: bool,
    /// The usage of its set above `high` when it last asked its keeper to reclaim (0: not
    /// above since): it asks again only when the usage grew past it.
    pub high_mark: u64,
    /// While blocked on a keeper with a [`abi::FAULT_PAGED_OUT`] fault about another domain's
    /// page (a receiver's its send needs): that domain (slot, generation), whose capability
    /// the keeper gets.
    pub fault_owner: Option<(u8, u32)>,
}

const _: () = assert!(core::mem::size_of::<Dcb>() <= 4096);

impl Dcb {
    /// The region containing `va`.
    #[inline]
    pub fn region(&self, va: usize) -> Option<Region> {
        self.regions.iter().find(|r| r.contains(va)).copied()
    }

    /// For a page `va` of `region` that is not present: whether its keeper supplies it (paged
    /// out, or in a keeper-managed region) rather than the kernel (demand-zero).
    #[inline]
    pub fn keeper_supplies(&self, va: usize, region: &Region) -> bool {
        self.kept_pages && (region.kept || self.tables.is_paged_out(va))
    }
}

/// Why a domain is blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Waiting for the domain in this slot to exit.
    Wait(u8),
    /// Waiting to send on an endpoint (direct transfer: for a receiver).
    Send(u8),
    /// Waiting to receive on an endpoint.
    Recv(u8),
    /// Waiting for the reply to a `call`.
    Reply,
    /// Sleeping until the timer tick in its control block's `wake_at`.
    Sleep,
}

/// A domain's run state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Ready or running.
    Runnable,
    /// Waiting.
    Blocked(Block),
    /// Exited by itself with a code.
    Exited(i32),
    /// Stopped by the kernel.
    Stopped(StopReason),
}

/// A slot of the kernel's domain table.
pub struct DomainEntry {
    /// Bumped each time the slot is reused, so stale capabilities fail.
    pub generation: u32,
    /// The domain's name.
    pub name: Name,
    /// The domain's id in the ledger (its account).
    pub account: DomainId,
    /// Run state.
    pub state: RunState,
    /// Suspended by a debugger (`domain_suspend`): not scheduled, whatever its state.
    pub suspended: bool,
    /// The slot of the domain that suspended it (its end resumes it).
    pub suspender: u8,
    /// The state the ledger last recorded (synchronised at each snapshot).
    pub reported: accounting::DomainState,
    /// The control block, in its own frame, while the domain is alive.
    dcb: Option<ObjectFrame<Dcb>>,
    /// The capability table, in its own frame, while the domain is alive.
    caps: Option<ObjectFrame<CapTable>>,
    /// For a domain the boot config started: its index there (its program arguments).
    pub boot_index: Option<u8>,
}

impl DomainEntry {
    /// An unused slot.
    pub const EMPTY: DomainEntry = DomainEntry {
        generation: 0,
        name: String::new(),
        account: DomainId(0),
        state: RunState::Exited(0),
        suspended: false,
        suspender: 0,
        reported: accounting::DomainState::Running,
        dcb: None,
        caps: None,
        boot_index: None,
    };

    /// A live domain's slot: its objects, already written into their frames.
    pub fn new(
        generation: u32,
        name: Name,
        account: DomainId,
        dcb: ObjectFrame<Dcb>,
        caps: ObjectFrame<CapTable>,
    ) -> DomainEntry {
        DomainEntry {
            generation,
            name,
            account,
            state: RunState::Runnable,
            suspended: false,
            suspender: 0,
            reported: accounting::DomainState::Running,
            dcb: Some(dcb),
            caps: Some(caps),
            boot_index: None,
        }
    }

    /// Whether the domain still has its control block (it has not exited or been stopped).
    #[inline]
    pub fn is_alive(&self) -> bool {
        self.dcb.is_some()
    }

    /// The control block.
    #[inline]
    pub fn dcb(&self) -> Option<&Dcb> {
        self.dcb.as_ref().map(ObjectFrame::get)
    }

    /// The control block, mutably.
    #[inline]
    pub fn dcb_mut(&mut self) -> Option<&mut Dcb> {
        self.dcb.as_mut().map(ObjectFrame::get_mut)
    }

    /// The capability table.
    #[inline]
    pub fn caps(&self) -> Option<&CapTable> {
        self.caps.as_ref().map(ObjectFrame::get)
    }

    /// The capability table, mutably.
    #[inline]
    pub fn caps_mut(&mut self) -> Option<&mut CapTable> {
        self.caps.as_mut().map(ObjectFrame::get_mut)
    }

    /// Ends the domain's objects: the frames of its control block and capability table, for
    /// the caller to uncharge and free. The slot stays, for waiters and reports.
    pub fn take_objects(&mut self) -> [Option<Frame>; 2] {
        [
            self.dcb.take().map(ObjectFrame::into_frame),
            self.caps.take().map(ObjectFrame::into_frame),
        ]
    }
}

/// A fresh control block for a domain whose root table is `root` and whose first
/// instruction is `entry`.
pub fn new_dcb(root: Frame, entry: usize) -> Dcb {
    Dcb {
        frame: TrapFrame::new_user(entry, abi::USER_STACK_TOP),
        fp: FpState::ZERO,
        tables: PageTables::new(root),
        regions: Vec::new(),
        ipc_message: 0,
        ipc_receive: 0,
        ipc_calling: false,
        ipc_registers: false,
        reply_to: None,
        keeper: None,
        fault: None,
        faults_sent: 0,
        query_deadline: 0,
        wake_at: 0,
        kept_pages: false,
        high_mark: 0,
        fault_owner: None,
    }
}

/// Two different slots of the domain table, both mutably; `None` when `a == b` or either is out
/// of range.
pub fn pair_mut(
    slots: &mut [DomainEntry],
    a: usize,
    b: usize,
) -> Option<(&mut DomainEntry, &mut DomainEntry)> {
    if a == b || a >= slots.len() || b >= slots.len() {
        return None;
    }
    if a < b {
        let (low, high) = slots.split_at_mut(b);
        Some((&mut low[a], &mut high[0]))
    } else {
        let (low, high) = slots.split_at_mut(a);
        Some((&mut high[0], &mut low[b]))
    }
}

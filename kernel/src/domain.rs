//! Domains: one address space, one thread and one capability table each, bound to a charge
//! set. The control block ([`Dcb`]) and the capability table ([`CapTable`]) each live in a
//! frame of their own, charged as `kernel` to the domain's charge set; the small [`DomainEntry`] in
//! the kernel's static table outlives them so waiters can read the exit code and reports can
//! name the domain.

use crate::arch::aarch64::cpu::FpState;
use crate::arch::aarch64::exception::TrapFrame;
use crate::arch::aarch64::mmu::{self, UserAccess};
use crate::memory::frames::Frame;
use crate::memory::object::ObjectFrame;
use crate::memory::page_table::PageTables;
use accounting::{DomainId, SetId, StopReason};
use heapless::{String, Vec};

/// Most domains alive at once (ASIDs are slot + 1).
pub const MAX_DOMAINS: usize = 64;
/// Most regions in one address space.
pub const MAX_REGIONS: usize = 16;
/// Capability slots per domain.
pub const MAX_CAPS: usize = 64;

/// A domain's name (the one name type of boot configs and the ledger).
pub use kcore::bootcfg::Name;

/// A capability: what a domain may act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// An empty slot.
    Empty,
    /// A charge set: create children, set limits, query, spawn into.
    Set(SetId),
    /// A domain: wait for its exit. `generation` detects a reused slot.
    Domain {
        /// Index in the domain table.
        slot: u8,
        /// The slot's generation when the capability was made.
        generation: u32,
    },
    /// An endpoint: send, receive, call.
    Endpoint(u8),
    /// A shared-memory region object: map it.
    Region {
        /// Index in the kernel's region-object table.
        index: u8,
        /// The table entry's generation when the capability was made.
        generation: u32,
    },
}

/// A capability table, in its own frame.
#[repr(C)]
pub struct CapTable {
    /// The slots, index 0 upward.
    pub caps: [Capability; MAX_CAPS],
}

const _: () = assert!(core::mem::size_of::<CapTable>() <= 4096);

impl CapTable {
    /// The capability at a user-supplied index, if in range and not empty.
    pub fn get(&self, index: usize) -> Result<Capability, abi::Error> {
        match self.caps.get(index) {
            Some(Capability::Empty) | None => Err(abi::Error::BadCapability),
            Some(cap) => Ok(*cap),
        }
    }

    /// Stores a capability in the first empty slot; returns its index.
    pub fn insert(&mut self, cap: Capability) -> Result<usize, abi::Error> {
        let index = self
            .caps
            .iter()
            .position(|c| *c == Capability::Empty)
            .ok_or(abi::Error::TableFull)?;
        self.caps[index] = cap;
        Ok(index)
    }

    /// Whether there is room for one more capability.
    pub fn has_room(&self) -> bool {
        self.caps.contains(&Capability::Empty)
    }
}

/// What a region of an address space holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address, page aligned.
    pub start: usize,
    /// Length in pages.
    pub pages: usize,
    /// Access rights of its pages.
    pub access: UserAccess,
}

impl Region {
    /// One past the last address.
    pub fn end(&self) -> usize {
        self.start + self.pages * mmu::PAGE_BYTES
    }

    /// Whether `va` lies inside.
    pub fn contains(&self, va: usize) -> bool {
        va >= self.start && va < self.end()
    }

    /// Whether the region overlaps `[start, end)`.
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
    /// Whether the domain's console output is at the start of a line.
    pub console_at_line_start: bool,
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
}

const _: () = assert!(core::mem::size_of::<Dcb>() <= 4096);

impl Dcb {
    /// The region containing `va`.
    pub fn region(&self, va: usize) -> Option<Region> {
        self.regions.iter().copied().find(|r| r.contains(va))
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
            reported: accounting::DomainState::Running,
            dcb: Some(dcb),
            caps: Some(caps),
            boot_index: None,
        }
    }

    /// Whether the domain still has its control block (it has not exited or been stopped).
    pub fn is_alive(&self) -> bool {
        self.dcb.is_some()
    }

    /// The control block.
    pub fn dcb(&self) -> Option<&Dcb> {
        self.dcb.as_ref().map(ObjectFrame::get)
    }

    /// The control block, mutably.
    pub fn dcb_mut(&mut self) -> Option<&mut Dcb> {
        self.dcb.as_mut().map(ObjectFrame::get_mut)
    }

    /// The capability table.
    pub fn caps(&self) -> Option<&CapTable> {
        self.caps.as_ref().map(ObjectFrame::get)
    }

    /// The capability table, mutably.
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
        console_at_line_start: true,
        ipc_message: 0,
        ipc_receive: 0,
        ipc_calling: false,
        ipc_registers: false,
        reply_to: None,
    }
}

/// An empty capability table.
pub const fn new_caps() -> CapTable {
    CapTable {
        caps: [Capability::Empty; MAX_CAPS],
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

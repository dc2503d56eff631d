//! Capabilities: what a domain may act on, and its table of them (in a frame of its own,
//! charged `kernel`). The typed lookups a system call's decode makes are in
//! [`crate::syscall`].

use accounting::SetId;

/// Capability slots per domain.
pub const MAX_CAPS: usize = 64;

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
    #[inline]
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
    #[inline]
    pub fn has_room(&self) -> bool {
        self.caps.contains(&Capability::Empty)
    }
}

/// An empty capability table.
pub const fn new_caps() -> CapTable {
    CapTable {
        caps: [Capability::Empty; MAX_CAPS],
    }
}

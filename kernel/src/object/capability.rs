//! Capabilities: what a domain may act on, and its table of them (in a frame of its own,
//! charged `kernel`). The typed lookups a system call's decode makes are in
//! [`crate::syscall`].

use abi::Rights;
use accounting::SetId;

/// Capability slots per domain.
pub const MAX_CAPS: usize = 64;

/// What a capability refers to. `repr(u8)` with `Empty` first: an empty slot is all zero
/// bytes (the tag 0, no rights, no lineage), so a table is made empty by zeroing its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Object {
    /// An empty slot.
    Empty = 0,
    /// A charge set: create children, set limits, query, spawn into.
    Set(SetId),
    /// A domain: wait for its exit, inspect, control. `generation` detects a reused slot.
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

impl Object {
    /// Every right a capability to this object can hold.
    pub const fn all_rights(self) -> Rights {
        match self {
            Object::Empty => Rights::NONE,
            Object::Set(_) => Rights::SET,
            Object::Domain { .. } => Rights::DOMAIN,
            Object::Endpoint(_) => Rights::ENDPOINT,
            Object::Region { .. } => Rights::REGION,
        }
    }

    /// The type `cap_inspect` reports.
    pub const fn type_code(self) -> usize {
        match self {
            Object::Empty => 0,
            Object::Set(_) => abi::CAP_TYPE_SET,
            Object::Domain { .. } => abi::CAP_TYPE_DOMAIN,
            Object::Endpoint(_) => abi::CAP_TYPE_ENDPOINT,
            Object::Region { .. } => abi::CAP_TYPE_REGION,
        }
    }
}

/// Where a capability comes from, for revocation: its own number, and the number of the
/// capability it was derived from (0 for one made with its object). Numbers are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lineage {
    /// This capability's number (never 0).
    pub id: u32,
    /// The number of the capability it was derived from, or 0.
    pub parent: u32,
}

/// A capability: an object, the rights this capability holds on it, and its lineage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// What it refers to.
    pub object: Object,
    /// What it allows (a subset of [`Object::all_rights`]).
    pub rights: Rights,
    /// Where it comes from.
    pub lineage: Lineage,
}

impl Capability {
    /// An empty slot.
    pub const EMPTY: Capability = Capability {
        object: Object::Empty,
        rights: Rights::NONE,
        lineage: Lineage { id: 0, parent: 0 },
    };

    /// Whether the slot is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.object == Object::Empty
    }
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
            Some(cap) if !cap.is_empty() => Ok(*cap),
            _ => Err(abi::Error::BadCapability),
        }
    }

    /// Stores a capability in the first empty slot; returns its index.
    pub fn insert(&mut self, cap: Capability) -> Result<usize, abi::Error> {
        let index = self
            .caps
            .iter()
            .position(Capability::is_empty)
            .ok_or(abi::Error::TableFull)?;
        self.caps[index] = cap;
        Ok(index)
    }

    /// Whether there is room for one more capability.
    #[inline]
    pub fn has_room(&self) -> bool {
        self.caps.iter().any(Capability::is_empty)
    }
}

impl CapTable {
    /// An empty table is all zero bytes: [`Object`] is `repr(u8)` with `Empty` its variant 0,
    /// [`Rights`] and [`Lineage`] are plain integers, and [`Capability::EMPTY`] is all zeros
    /// (`ObjectFrame::zeroed` relies on it).
    pub const EMPTY_IS_ZERO: () = {
        assert!(Capability::EMPTY.rights.0 == 0);
        assert!(Capability::EMPTY.lineage.id == 0 && Capability::EMPTY.lineage.parent == 0);
        assert!(matches!(Capability::EMPTY.object, Object::Empty));
    };
}

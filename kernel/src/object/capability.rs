//! Capabilities: what a domain may act on, and its table of them (in a frame of its own,
//! charged `kernel`). The typed lookups a system call's decode makes are in
//! [`crate::syscall`].

use abi::Rights;
use accounting::SetId;

/// Capability slots per domain.
pub const MAX_CAPS: usize = 64;

/// What a capability refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// An empty slot.
    Empty,
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

/// A capability: an object, the rights this capability holds on it, and its lineage, packed
/// in 16 bytes (a table of 64 is 1 KiB, zeroed when a domain is made; queued messages and
/// decoded calls copy them). All zero bytes are the empty slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Capability {
    /// The object's type: 0 empty, then [`abi::CAP_TYPE_SET`] … [`abi::CAP_TYPE_REGION`].
    tag: u8,
    /// A domain's slot, an endpoint's or a region object's index.
    index: u8,
    /// What it allows (a subset of [`Object::all_rights`]).
    pub rights: Rights,
    /// A domain's or region object's generation, or a set's id.
    value: u32,
    /// Where it comes from.
    pub lineage: Lineage,
}

const _: () = assert!(core::mem::size_of::<Capability>() == 16);

impl Capability {
    /// An empty slot (all zero bytes).
    pub const EMPTY: Capability = Capability {
        tag: 0,
        index: 0,
        rights: Rights::NONE,
        value: 0,
        lineage: Lineage { id: 0, parent: 0 },
    };

    /// A capability to `object` with `rights` and `lineage`.
    pub const fn new(object: Object, rights: Rights, lineage: Lineage) -> Capability {
        let (tag, index, value) = match object {
            Object::Empty => (0, 0, 0),
            Object::Set(set) => (abi::CAP_TYPE_SET as u8, 0, set.0 as u32),
            Object::Domain { slot, generation } => (abi::CAP_TYPE_DOMAIN as u8, slot, generation),
            Object::Endpoint(endpoint) => (abi::CAP_TYPE_ENDPOINT as u8, endpoint, 0),
            Object::Region { index, generation } => (abi::CAP_TYPE_REGION as u8, index, generation),
        };
        Capability {
            tag,
            index,
            rights,
            value,
            lineage,
        }
    }

    /// What it refers to.
    #[inline]
    pub const fn object(&self) -> Object {
        match self.tag as usize {
            abi::CAP_TYPE_SET => Object::Set(SetId(self.value as u16)),
            abi::CAP_TYPE_DOMAIN => Object::Domain {
                slot: self.index,
                generation: self.value,
            },
            abi::CAP_TYPE_ENDPOINT => Object::Endpoint(self.index),
            abi::CAP_TYPE_REGION => Object::Region {
                index: self.index,
                generation: self.value,
            },
            _ => Object::Empty,
        }
    }

    /// The endpoint index, if this is an endpoint capability with every right of `needed`
    /// (the fast paths' test: one compare for the type, one for the rights).
    #[inline(always)]
    pub fn endpoint(&self, needed: Rights) -> Option<usize> {
        (self.tag == abi::CAP_TYPE_ENDPOINT as u8 && self.rights.contains(needed))
            .then_some(usize::from(self.index))
    }

    /// The same capability with `rights` instead of its own.
    #[inline]
    pub const fn with_rights(self, rights: Rights) -> Capability {
        Capability { rights, ..self }
    }

    /// Whether the slot is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.tag == 0
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
    /// An empty table is all zero bytes: [`Capability::EMPTY`] is (its tag 0, no rights, no
    /// lineage); `ObjectFrame::zeroed` relies on it.
    pub const EMPTY_IS_ZERO: () = {
        let empty = Capability::EMPTY;
        assert!(empty.tag == 0 && empty.index == 0 && empty.value == 0);
        assert!(empty.rights.0 == 0);
        assert!(empty.lineage.id == 0 && empty.lineage.parent == 0);
    };
}

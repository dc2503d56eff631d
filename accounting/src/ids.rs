//! Identifiers, frame kinds and the fixed capacities of the ledger.
//!
//! Invariants: every id is a small integer index into a fixed table, so that a frame entry
//! fits in 8 bytes; `SetId::KERNEL` (index 0) is always the built-in `kernel` reserve set.

use core::fmt;

/// Bytes in one frame (the 4 KiB granule).
pub const FRAME_BYTES: u64 = 4096;
/// Most charge sets a ledger holds, the built-in `kernel` set included.
pub const MAX_SETS: usize = 64;
/// Most domains a ledger holds (exited domains keep their slot, for the report).
pub const MAX_DOMAINS: usize = 64;
/// Deepest charge-set tree: a set with no parent has depth 1.
pub const MAX_DEPTH: usize = 16;
/// Most slots (sharers) in one sharer list, i.e. most domains sharing one frame.
pub const MAX_SHARERS: usize = 16;
/// Capacity of the pool of hash-consed sharer lists.
pub const SHARER_LISTS: usize = 512;
/// Pool entries kept back for departures (unmap, exit): an operation that can be denied
/// fails with [`crate::Error::PoolFull`] rather than eat into them.
pub const POOL_DEPARTURE_RESERVE: usize = 64;
/// Most operations in one [`crate::Plan`].
pub const PLAN_OPS: usize = 32;
/// Most distinct (set, kind) charges one plan may make.
pub const PLAN_CHARGES: usize = 32;
/// Longest name of a set or a domain, in bytes (`[a-z0-9_-]{1,23}`).
pub const NAME_BYTES: usize = 23;
/// Longest snapshot label kept in a trace record, in bytes.
pub const LABEL_BYTES: usize = 64;

/// A name of a set or a domain.
pub type Name = heapless::String<NAME_BYTES>;

/// What a frame is used for. Report keys follow Linux `memory.stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// User pages: demand-zero, program image, stacks, shared copy-on-write originals.
    Anon = 0,
    /// Page-table frames.
    PageTables = 1,
    /// Kernel objects: domain control blocks, capability tables, endpoints.
    Kernel = 2,
    /// Transient IPC message buffers.
    Msgbuf = 3,
    /// Private copies made on a write fault to a shared frame.
    Cow = 4,
}

impl Kind {
    /// Number of kinds.
    pub const COUNT: usize = 5;
    /// Every kind, in report order.
    pub const ALL: [Kind; Kind::COUNT] = [
        Kind::Anon,
        Kind::PageTables,
        Kind::Kernel,
        Kind::Msgbuf,
        Kind::Cow,
    ];

    /// Index into per-kind arrays (`0..Kind::COUNT`).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The kind at `index`, if any.
    pub const fn from_index(index: usize) -> Option<Kind> {
        match index {
            0 => Some(Kind::Anon),
            1 => Some(Kind::PageTables),
            2 => Some(Kind::Kernel),
            3 => Some(Kind::Msgbuf),
            4 => Some(Kind::Cow),
            _ => None,
        }
    }

    /// The report key: `anon`, `pagetables`, `kernel`, `msgbuf` or `cow`.
    pub const fn key(self) -> &'static str {
        match self {
            Kind::Anon => "anon",
            Kind::PageTables => "pagetables",
            Kind::Kernel => "kernel",
            Kind::Msgbuf => "msgbuf",
            Kind::Cow => "cow",
        }
    }

    /// The kind whose report key is `key`.
    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.key() == key)
    }

    /// Whether frames of this kind are mapped into address spaces (and so have mappers).
    pub const fn is_mapped(self) -> bool {
        matches!(self, Kind::Anon | Kind::Cow)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A charge set: an index into the ledger's set table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetId(pub u16);

impl SetId {
    /// The built-in `kernel` reserve set (no parent, no limit), used by `msgbuf = kernel`.
    pub const KERNEL: SetId = SetId(0);

    /// Index into the set table.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A domain: an index into the ledger's domain table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(pub u16);

impl DomainId {
    /// Index into the domain table.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A physical frame: `(physical address - RAM base) / 4096`, an index into the frame slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameIndex(pub u32);

impl FrameIndex {
    /// Index into the frame slice.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Whether `name` is a valid set or domain name: `[a-z0-9_-]{1,23}`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_BYTES
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-'
        })
}

/// Bytes each of `sharers` payers pays for one frame under a split, slot `slot` (0-based):
/// `4096 / n`, plus the remainder `4096 % n` for slot 0 (the original holder).
#[inline]
pub const fn split_share_bytes(sharers: usize, slot: usize) -> u64 {
    let sharers = if sharers == 0 { 1 } else { sharers as u64 };
    let share = FRAME_BYTES / sharers;
    if slot == 0 {
        share + FRAME_BYTES % sharers
    } else {
        share
    }
}

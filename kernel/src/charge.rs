//! The glue between the kernel and the `accounting` ledger: every frame the kernel hands out
//! passes through here, as one [`Plan`] per kernel operation, reserved then committed.
//!
//! The kernel looks the four policies up once, at boot, by the names in the boot config, and
//! never branches on a policy's name anywhere else.
//!
//! With the `accounting` feature off, [`Books`] only counts how many domains map each frame
//! (copy-on-write and freeing need that) and charges nothing: the build that benchmarks
//! measure the cost of accounting against.

use crate::memory::frames::{Frame, FrameAllocator};
use accounting::{DomainId, FrameIndex, StopReason};
use core::fmt;

mod transaction;
pub use transaction::Transaction;

/// One charge of a kernel operation that makes several at once (a receive buffer's pages, its
/// tables and a transient buffer): [`Books::charge_all`] reserves them together, so either
/// all are made or none.
#[derive(Clone, Copy, Debug)]
// The build without accounting only counts mappers: it reads none of a table's or a buffer's.
#[cfg_attr(not(feature = "accounting"), allow(dead_code))]
pub enum Charge {
    /// A new user page (`anon`) mapped by `owner`.
    Page {
        /// The (free) frame.
        frame: Frame,
        /// The domain mapping it.
        owner: DomainId,
    },
    /// A new page table (`pagetables`) of `owner`'s address space, made necessary by
    /// `causer`.
    Table {
        /// The (free) frame.
        frame: Frame,
        /// The owner of the address space.
        owner: DomainId,
        /// The domain whose action needs it.
        causer: DomainId,
    },
    /// `writer`'s private copy of `original`, which others map too (`cow` policy).
    Copy {
        /// The shared frame written to.
        original: Frame,
        /// The (free) frame receiving the copy.
        copy: Frame,
        /// The writing domain.
        writer: DomainId,
    },
    /// `domain` maps `frame`, which others map already (shared, charged under `cow = split`).
    Share {
        /// The shared frame.
        frame: Frame,
        /// The new mapper.
        domain: DomainId,
    },
    /// A transient message buffer (`msgbuf` policy).
    Msgbuf {
        /// The (free) frame.
        frame: Frame,
        /// The sending domain.
        sender: DomainId,
        /// The receiving domain.
        receiver: DomainId,
    },
}

/// One plan of an operation too large for one (a spawn), reserved with the others before any
/// is committed: [`Books::batch_add`] reserves it on top of the steps before,
/// [`Books::batch_commit`] applies it (see `accounting::ledger::batch`).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "accounting"), allow(dead_code))]
pub enum Step<'s> {
    /// A new domain's control block and capability table (`kernel`, per the `kernel`
    /// policy) and its root table (`pagetables`), made by `causer` (its spawner, or itself at
    /// boot).
    Objects {
        /// The new domain.
        domain: DomainId,
        /// Its spawner (the domain itself at boot).
        causer: DomainId,
        /// The control block's and the capability table's frames.
        objects: [Frame; 2],
        /// The root table's frame.
        root: Frame,
    },
    /// A page of a program image (`anon`) mapped by `owner`, and the tables it needed, made
    /// necessary by `causer`.
    Page {
        /// The domain mapping it.
        owner: DomainId,
        /// The domain whose action needs the tables.
        causer: DomainId,
        /// The page's frame.
        page: Frame,
        /// The new tables.
        tables: &'s [Frame],
    },
    /// `domain` maps every frame of `shared` copy-on-write too; `tables` are the tables its
    /// space needed for them, made necessary by `causer`.
    Share {
        /// The shared frames, by ledger index.
        shared: &'s [FrameIndex],
        /// The new mapper.
        domain: DomainId,
        /// The domain whose action needs the tables.
        causer: DomainId,
        /// The new tables.
        tables: &'s [Frame],
    },
}

/// Why a charge could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChargeError {
    /// A limit would be exceeded (a denial was counted).
    OverLimit,
    /// No free frame.
    OutOfMemory,
    /// A fixed ledger table is full (sets, domains, sharer lists).
    TableFull,
    /// The access itself is invalid (no region, wrong rights).
    Fault,
    /// The domain maps the frame already (at another address): a user's double mapping.
    AlreadyMapped,
    /// The page was evicted by its pager (`page_out`): its keeper must bring it back.
    PagedOut,
    /// A ledger error no user input can cause: a kernel bug. It never reaches a user: turning
    /// it into an error code or a stop reason stops the run ([`crate::panic::ledger_bug`]).
    Bug(accounting::Error),
}

impl ChargeError {
    /// The reason a domain stops when a fault hits this error.
    pub fn stop_reason(self) -> StopReason {
        match self {
            ChargeError::OverLimit => StopReason::OverLimit,
            ChargeError::OutOfMemory | ChargeError::TableFull => StopReason::OutOfMemory,
            ChargeError::Fault | ChargeError::AlreadyMapped | ChargeError::PagedOut => {
                StopReason::Fault
            }
            ChargeError::Bug(error) => crate::panic::ledger_bug(&error),
        }
    }

    /// The system-call error for this failure.
    pub fn to_abi(self) -> abi::Error {
        match self {
            ChargeError::OverLimit => abi::Error::OverLimit,
            ChargeError::OutOfMemory => abi::Error::OutOfMemory,
            ChargeError::TableFull => abi::Error::TableFull,
            ChargeError::Fault => abi::Error::BadAddress,
            ChargeError::AlreadyMapped => abi::Error::AlreadyMapped,
            ChargeError::PagedOut => abi::Error::PagedOut,
            ChargeError::Bug(error) => crate::panic::ledger_bug(&error),
        }
    }
}

/// Ledger errors a charge can meet: a limit, a full table; any other is a kernel bug, which
/// stops the run ([`crate::panic::ledger_bug`]).
impl From<accounting::Error> for ChargeError {
    fn from(error: accounting::Error) -> Self {
        match error {
            accounting::Error::OverLimit(_) => ChargeError::OverLimit,
            accounting::Error::TooManySets
            | accounting::Error::TooManyDomains
            | accounting::Error::PoolFull
            | accounting::Error::TooManySharers => ChargeError::TableFull,
            // Only a share can meet it, and the kernel shares a frame with a domain only when
            // a user asks (mapping a region object, receiving an out-of-line region).
            accounting::Error::AlreadyMapped(..) => ChargeError::AlreadyMapped,
            other => ChargeError::Bug(other),
        }
    }
}

/// Ledger errors as system-call errors.
pub trait ToAbi {
    /// The system-call error.
    fn to_abi(self) -> abi::Error;
}

impl ToAbi for accounting::Error {
    fn to_abi(self) -> abi::Error {
        match self {
            accounting::Error::BadName
            | accounting::Error::DuplicateName
            | accounting::Error::TooDeep => abi::Error::BadArgument,
            other => ChargeError::from(other).to_abi(),
        }
    }
}

#[cfg(feature = "accounting")]
mod books;
#[cfg(feature = "accounting")]
pub use books::Books;
#[cfg(not(feature = "accounting"))]
mod counting;
#[cfg(not(feature = "accounting"))]
pub use counting::Books;

/// Why the books could not be opened.
pub struct OpenError(pub &'static str);

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
}

pub(crate) fn index(frames: &FrameAllocator, frame: Frame) -> FrameIndex {
    FrameIndex(frames.index(frame))
}

//! The ledger's errors: a small enum with one variant per distinct cause.
//!
//! Invariant: every error leaves the ledger unchanged, except [`Error::OverLimit`], which has
//! counted one denial on the payer set whose charge failed.

use crate::ids::{DomainId, FrameIndex, Kind, SetId};
use core::fmt;

/// A charge that did not fit under a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The set that would have paid (its `denied` counter of `kind` was incremented).
    pub payer: SetId,
    /// The kind of the charge.
    pub kind: Kind,
    /// The set whose limit (or per-kind sub-limit) the charge would exceed: `payer` or an
    /// ancestor of it.
    pub limit_set: SetId,
    /// Whether the per-kind sub-limit (rather than the set's limit) was exceeded.
    pub kind_limit: bool,
    /// The domain that caused the charge, if any.
    pub causer: Option<DomainId>,
    /// Bytes the operation would have added at `limit_set`.
    pub bytes: u64,
}

/// Why a ledger operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A charge would exceed a limit; the operation changed nothing but the denial counter.
    OverLimit(Denial),
    /// No set has this id.
    UnknownSet(SetId),
    /// No domain has this id.
    UnknownDomain(DomainId),
    /// The frame index is beyond the ledger's frame slice.
    FrameOutOfRange(FrameIndex),
    /// The frame must be free for this operation and is not.
    FrameInUse(FrameIndex),
    /// The frame must be in use for this operation and is free.
    FrameFree(FrameIndex),
    /// The frame is one of the kernel's own (`boot`).
    BootFrame(FrameIndex),
    /// The frame has the wrong kind for this operation (e.g. sharing a page table, freeing a
    /// frame that domains still map).
    WrongKind(FrameIndex),
    /// The domain does not map the frame.
    NotMapped(FrameIndex, DomainId),
    /// The domain already maps the frame.
    AlreadyMapped(FrameIndex, DomainId),
    /// A copy-on-write copy was asked for a frame only one domain maps: restore write access.
    NotShared(FrameIndex),
    /// The frame would have more than [`crate::MAX_SHARERS`] slots.
    TooManySharers,
    /// The pool of sharer lists is full.
    PoolFull,
    /// The set table is full.
    TooManySets,
    /// The domain table is full.
    TooManyDomains,
    /// The set tree would be deeper than [`crate::MAX_DEPTH`].
    TooDeep,
    /// A name is not `[a-z0-9_-]{1,23}`.
    BadName,
    /// A set or domain of this name exists already.
    DuplicateName,
    /// The plan holds too many operations or charges, or names one frame twice.
    BadPlan,
    /// A policy answered with a role that does not fit the event.
    BadDecision,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OverLimit(denial) => write!(
                f,
                "over limit: {} bytes of {} for set {} exceed the {}limit of set {}",
                denial.bytes,
                denial.kind,
                denial.payer.0,
                if denial.kind_limit { "per-kind " } else { "" },
                denial.limit_set.0
            ),
            Error::UnknownSet(set) => write!(f, "no charge set {}", set.0),
            Error::UnknownDomain(domain) => write!(f, "no domain {}", domain.0),
            Error::FrameOutOfRange(frame) => write!(f, "frame {} out of range", frame.0),
            Error::FrameInUse(frame) => write!(f, "frame {} is in use", frame.0),
            Error::FrameFree(frame) => write!(f, "frame {} is free", frame.0),
            Error::BootFrame(frame) => write!(f, "frame {} belongs to the kernel", frame.0),
            Error::WrongKind(frame) => write!(f, "frame {} has the wrong kind", frame.0),
            Error::NotMapped(frame, domain) => {
                write!(f, "domain {} does not map frame {}", domain.0, frame.0)
            }
            Error::AlreadyMapped(frame, domain) => {
                write!(f, "domain {} already maps frame {}", domain.0, frame.0)
            }
            Error::NotShared(frame) => write!(f, "frame {} is not shared", frame.0),
            Error::TooManySharers => f.write_str("too many sharers of one frame"),
            Error::PoolFull => f.write_str("sharer-list pool is full"),
            Error::TooManySets => f.write_str("too many charge sets"),
            Error::TooManyDomains => f.write_str("too many domains"),
            Error::TooDeep => f.write_str("charge-set tree too deep"),
            Error::BadName => f.write_str("bad name (want [a-z0-9_-]{1,23})"),
            Error::DuplicateName => f.write_str("duplicate name"),
            Error::BadPlan => f.write_str("bad plan (too large, or a frame named twice)"),
            Error::BadDecision => f.write_str("policy decision does not fit the event"),
        }
    }
}

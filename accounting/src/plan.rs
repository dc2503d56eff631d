//! Plans: the bounded list of frame operations one kernel operation makes, reserved together.
//!
//! Invariant: a plan is inert data; only [`crate::Ledger::reserve`] reads it, and only the
//! [`crate::Reservation`] it returns changes the ledger, all of it or (dropped) none of it.

use crate::error::Error;
use crate::ids::{DomainId, FrameIndex, SetId, PLAN_OPS};

/// One frame operation of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'f> {
    /// A new `anon` frame mapped by `domain`: paid by its set, caused by it.
    Anon {
        /// The (free) frame.
        frame: FrameIndex,
        /// The mapping domain.
        domain: DomainId,
    },
    /// A new `pagetables` frame in `owner`'s address space, made necessary by `causer`; the
    /// `pagetable` policy picks the owner's or the causer's set.
    PageTable {
        /// The (free) frame.
        frame: FrameIndex,
        /// Owner of the address space.
        owner: DomainId,
        /// The domain whose action made the table necessary (often the owner).
        causer: DomainId,
    },
    /// A new `kernel` object frame, paid by `set` (the set the object is bound to).
    Kernel {
        /// The (free) frame.
        frame: FrameIndex,
        /// The paying set.
        set: SetId,
        /// The domain that caused it, if any.
        causer: Option<DomainId>,
    },
    /// A new `kernel` frame holding a domain's own kernel object (its control block or
    /// capability table); the `kernel` policy picks the payer: the domain's set or its
    /// spawner's. Caused by the spawner (the domain itself at boot).
    DomainObject {
        /// The (free) frame.
        frame: FrameIndex,
        /// The domain the object belongs to.
        domain: DomainId,
        /// The domain that spawned it (`None` at boot).
        spawner: Option<DomainId>,
    },
    /// A new `msgbuf` frame; the `msgbuf` policy picks the payer(s). Caused by the sender.
    Msgbuf {
        /// The (free) frame.
        frame: FrameIndex,
        /// The sending domain.
        sender: DomainId,
        /// The receiving domain.
        receiver: DomainId,
    },
    /// `domain` maps a frame that others map (copy-on-write); under `cow = split` every
    /// sharer pays its share, which can be denied.
    Share {
        /// The mapped (`anon` or `cow`) frame.
        frame: FrameIndex,
        /// The new sharer.
        domain: DomainId,
    },
    /// [`Op::Share`] for many frames at once (a spawn sharing a region); the frames must be
    /// distinct.
    ShareMany {
        /// The mapped frames.
        frames: &'f [FrameIndex],
        /// The new sharer.
        domain: DomainId,
    },
    /// A write fault by `writer` on `original`, which more than one domain maps: `copy`
    /// becomes `writer`'s private `cow` frame (paid per the `cow` policy), then `writer`
    /// leaves `original` exactly as by [`crate::Ledger::unmap`].
    CowCopy {
        /// The shared frame written to.
        original: FrameIndex,
        /// The (free) frame receiving the copy.
        copy: FrameIndex,
        /// The writing domain.
        writer: DomainId,
    },
}

impl Op<'_> {
    /// The frame a single-frame operation names first (a copy's original); `None` for
    /// `ShareMany`.
    #[inline]
    pub(crate) fn frame(&self) -> Option<FrameIndex> {
        match *self {
            Op::Anon { frame, .. }
            | Op::PageTable { frame, .. }
            | Op::Kernel { frame, .. }
            | Op::DomainObject { frame, .. }
            | Op::Msgbuf { frame, .. }
            | Op::Share { frame, .. } => Some(frame),
            Op::CowCopy { original, .. } => Some(original),
            Op::ShareMany { .. } => None,
        }
    }
}

/// The operations of one kernel operation, at most [`PLAN_OPS`]; reserve them together with
/// [`crate::Ledger::reserve`].
///
/// Every single-frame operation of a plan must name a different frame (reserve checks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan<'f> {
    ops: heapless::Vec<Op<'f>, PLAN_OPS>,
}

impl<'f> Plan<'f> {
    /// An empty plan.
    pub const fn new() -> Self {
        Plan {
            ops: heapless::Vec::new(),
        }
    }

    /// A plan of one operation; cheaper than [`Plan::new`] and [`Plan::push`] (not inlined:
    /// inlined, the compiler tends to build the plan by copying a plan-sized constant, unused
    /// capacity included, some 400 bytes, instead of writing one operation and a length).
    #[inline(never)]
    pub fn one(op: Op<'f>) -> Self {
        let mut plan = Plan::new();
        // An empty plan has room for one.
        let _ = plan.ops.push(op);
        plan
    }

    /// Adds an operation; [`Error::BadPlan`] when the plan is full.
    pub fn push(&mut self, op: Op<'f>) -> Result<&mut Self, Error> {
        self.ops.push(op).map_err(|_| Error::BadPlan)?;
        Ok(self)
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[Op<'f>] {
        &self.ops
    }

    /// Removes every operation.
    pub fn clear(&mut self) {
        self.ops.clear();
    }

    /// Whether the plan has no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

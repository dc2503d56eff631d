//! Transactions: the frames one kernel operation allocates, held until its charges commit.
//!
//! Every operation that hands out frames takes them through a [`Transaction`]: it allocates
//! all it needs (all or none), then commits the charges for them in one ledger reservation.
//! Until the commit succeeds the frames belong to the transaction, and dropping it — an early
//! return on any error, a denied charge — gives every one of them back, so no operation
//! carries a hand-written "free what I took" path, and a failed operation leaves neither a
//! frame nor a charge behind. (A spawn takes more frames than one transaction holds: its new
//! domain's frames hang in the domain's own tables until its batch of charges commits —
//! `lifecycle::NewDomain`, the same rule.)

use super::ChargeError;
use crate::memory::frames::{Frame, FrameAllocator};

/// Up to `N` frames allocated for one operation; freed on drop unless committed.
pub struct Transaction<'a, const N: usize> {
    allocator: &'a mut FrameAllocator,
    frames: [Frame; N],
    count: usize,
}

impl<'a, const N: usize> Transaction<'a, N> {
    /// A transaction holding no frame yet.
    #[inline(always)]
    pub fn new(allocator: &'a mut FrameAllocator) -> Self {
        Transaction {
            allocator,
            frames: [Frame(0); N],
            count: 0,
        }
    }

    /// A transaction holding `count` new frames (all or none: out of memory otherwise).
    #[inline(always)]
    pub fn with_frames(
        allocator: &'a mut FrameAllocator,
        count: usize,
    ) -> Result<Self, ChargeError> {
        let mut transaction = Transaction::new(allocator);
        transaction.allocate(count)?;
        Ok(transaction)
    }

    /// `count` more frames (all or none); returns them.
    #[inline(always)]
    pub fn allocate(&mut self, count: usize) -> Result<&[Frame], ChargeError> {
        let start = self.count;
        let end = start + count;
        let fresh = self
            .frames
            .get_mut(start..end)
            .ok_or(ChargeError::Bug(accounting::Error::BadPlan))?;
        self.allocator
            .allocate_all(fresh)
            .ok_or(ChargeError::OutOfMemory)?;
        self.count = end;
        Ok(&self.frames[start..end])
    }

    /// One more frame.
    #[inline(always)]
    pub fn allocate_one(&mut self) -> Result<Frame, ChargeError> {
        self.allocate(1).map(|frames| frames[0])
    }

    /// The frames held, in allocation order.
    #[inline(always)]
    pub fn frames(&self) -> &[Frame] {
        &self.frames[..self.count]
    }

    /// Every frame slot, the held ones first (a copy: cheap for the few frames of a fault).
    #[inline(always)]
    pub fn array(&self) -> [Frame; N] {
        self.frames
    }

    /// The allocator (for the ledger's frame numbers).
    #[inline(always)]
    pub fn allocator(&self) -> &FrameAllocator {
        self.allocator
    }

    /// Makes the operation's charges with `charge` (one ledger reservation, committed or
    /// refused whole). On success the frames belong to the caller; on an error they are
    /// freed again and nothing was charged.
    #[inline(always)]
    pub fn commit(
        mut self,
        charge: impl FnOnce(&[Frame], &FrameAllocator) -> Result<(), ChargeError>,
    ) -> Result<(), ChargeError> {
        charge(&self.frames[..self.count], self.allocator)?;
        self.count = 0;
        Ok(())
    }
}

impl<const N: usize> Drop for Transaction<'_, N> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.count != 0 {
            self.allocator.free_all(&self.frames[..self.count]);
        }
    }
}

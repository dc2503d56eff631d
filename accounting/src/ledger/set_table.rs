//! The charge sets, in a table of [`MAX_SETS`] records of which the first `len` exist: a
//! slice of those (`Deref`), and [`SetTable::at_mut`], the straight-line charges' access by
//! a set id the ledger itself handed out (a domain's set, a parent, a validated payer),
//! masked instead of bounds-checked against a length that lies past the whole table.

use crate::error::Error;
use crate::ids::MAX_SETS;
use crate::model::ChargeSet;
use core::ops::{Deref, DerefMut};

// The mask below is an index only for a power of two.
const _: () = assert!(MAX_SETS.is_power_of_two());

/// The sets: `len` first, then every record (blank past `len`).
pub(crate) struct SetTable {
    len: usize,
    all: [ChargeSet; MAX_SETS],
}

impl SetTable {
    /// No set.
    pub(crate) const fn new() -> SetTable {
        SetTable {
            len: 0,
            all: [const { ChargeSet::BLANK }; MAX_SETS],
        }
    }

    /// Adds `set`; [`Error::TooManySets`] when the table is full.
    pub(crate) fn push(&mut self, set: ChargeSet) -> Result<(), Error> {
        let record = self.all.get_mut(self.len).ok_or(Error::TooManySets)?;
        *record = set;
        self.len += 1;
        Ok(())
    }

    /// No set any more (the records are rewritten as sets are added again).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Whether no other set fits.
    pub(crate) fn is_full(&self) -> bool {
        self.len == MAX_SETS
    }

    /// The set `index`, which the caller knows exists (an id the ledger handed out): masked
    /// into the table, so no bounds check (a wrong index would reach a wrong record, never
    /// memory outside the table; debug builds check it).
    #[inline(always)]
    pub(crate) fn at_mut(&mut self, index: usize) -> &mut ChargeSet {
        debug_assert!(index < self.len, "set {index} does not exist");
        &mut self.all[index % MAX_SETS]
    }
}

impl Deref for SetTable {
    type Target = [ChargeSet];

    #[inline(always)]
    fn deref(&self) -> &[ChargeSet] {
        self.all.get(..self.len).unwrap_or_default()
    }
}

impl DerefMut for SetTable {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [ChargeSet] {
        let len = self.len;
        self.all.get_mut(..len).unwrap_or_default()
    }
}

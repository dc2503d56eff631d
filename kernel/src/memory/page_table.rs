//! A user address space's translation tables: a level-1 root and level-2/level-3 tables
//! created on demand (see arch mmu.rs for the geometry).
//!
//! This module only reads and writes descriptors. Table frames come in from the caller, already
//! allocated, zeroed and charged, so a mapping never fails half-way: the caller asks
//! [`PageTables::missing_tables`] first, obtains that many frames, then calls
//! [`PageTables::map`], which cannot fail.

use super::frames::Frame;
use crate::arch::aarch64::mmu::{
    self, descriptor_address, is_valid, table_descriptor, Table, ENTRIES,
};
use core::cell::Cell;

/// The level-3 entry of a page its pager evicted (`page_out`): an invalid descriptor to the
/// MMU (bit 0 clear), so any access faults, told apart from an empty entry (0, a page never
/// touched) by the kernel. Every walk that maps pages tests validity, so it is never taken for
/// a mapping; mapping a page over it (a page-in) replaces it.
pub const PAGED_OUT: u64 = 0b10;

/// Pages one level-3 table maps (2 MiB): the span bulk operations work at a time.
pub const SPAN_PAGES: usize = ENTRIES;

/// Index of `va` in the table at `level` (1, 2 or 3).
fn index(va: usize, level: u32) -> usize {
    (va >> (12 + 9 * (3 - level))) & (ENTRIES - 1)
}

/// Index of `va`'s page in its level-3 table.
pub fn level3_index(va: usize) -> usize {
    index(va, 3)
}

/// The table in the frame at `frame_pa`, to read.
///
/// # Safety
///
/// `frame_pa` is a table frame of a [`PageTables`] the caller borrows (shared) for at least
/// `'t`: every table frame belongs to exactly one `PageTables`, which hands out access only
/// through its own borrows.
unsafe fn table<'t>(frame_pa: usize) -> &'t Table {
    // SAFETY: per the contract, a live table frame reached through the linear map, not
    // mutably borrowed while the caller's shared borrow lasts.
    unsafe { &*(mmu::phys_to_virt(frame_pa) as *const Table) }
}

/// The table at `mapped`, the linear-map address of a table frame (as the walk cache keeps
/// it: no conversion per lookup).
///
/// # Safety
///
/// As for [`table`].
unsafe fn mapped_table<'t>(mapped: usize) -> &'t Table {
    // SAFETY: per the contract.
    unsafe { &*(mapped as *const Table) }
}

/// [`mapped_table`], to change.
///
/// # Safety
///
/// As for [`table_mut`].
unsafe fn mapped_table_mut<'t>(mapped: usize) -> &'t mut Table {
    // SAFETY: per the contract.
    unsafe { &mut *(mapped as *mut Table) }
}

/// The table in the frame at `frame_pa`, to change.
///
/// # Safety
///
/// As for [`table`], with the caller's `PageTables` borrowed mutably for `'t` and no other
/// reference to this table live meanwhile.
unsafe fn table_mut<'t>(frame_pa: usize) -> &'t mut Table {
    // SAFETY: per the contract.
    unsafe { &mut *(mmu::phys_to_virt(frame_pa) as *mut Table) }
}

/// The translation tables of one address space.
pub struct PageTables {
    root: Frame,
    /// A walk cache (as the MMU keeps one): the level-3 table the last walk reached, as
    /// (the 2 MiB block's number + 1, the table's linear-map address); (0, 0) for none. A
    /// level-3 table, once installed, stays until the whole space is torn down (nothing takes
    /// one out of a live space), so the entry never goes stale; a `Cell`, as lookups take
    /// `&self`.
    walked: Cell<(usize, usize)>,
}

// SAFETY (for every `table`/`table_mut` call below): the addresses are this `PageTables`'
// root or tables reached from it through valid table descriptors; they are table frames it
// alone owns. A shared reference is made only under `&self`, a mutable one only under
// `&mut self`, and no two references to one table are live at once (each walk steps from a
// table to a different one).
impl PageTables {
    /// Tables rooted at `root`, a zeroed frame.
    pub fn new(root: Frame) -> Self {
        PageTables {
            root,
            walked: Cell::new((0, 0)),
        }
    }

    /// The root table's frame (for TTBR0).
    pub fn root(&self) -> Frame {
        self.root
    }

    /// The valid level-2 descriptor (pointing to a level-3 table) for `va`, if any.
    #[inline]
    fn level2_entry(&self, va: usize) -> Option<u64> {
        // SAFETY: see the impl.
        let l1 = unsafe { table(self.root.0) }.0[index(va, 1)];
        if !is_valid(l1) {
            return None;
        }
        // SAFETY: see the impl.
        let l2 = unsafe { table(descriptor_address(l1)) }.0[index(va, 2)];
        is_valid(l2).then_some(l2)
    }

    /// The linear-map address of the level-3 table covering `va`, if it exists: from the
    /// walk cache when the last walk reached the same 2 MiB block, else walked (and cached).
    #[inline(always)]
    fn level3_address(&self, va: usize) -> Option<usize> {
        let block = (va >> 21) + 1;
        let (cached, address) = self.walked.get();
        if cached == block {
            return Some(address);
        }
        self.walk_level3(va, block)
    }

    /// [`level3_address`](Self::level3_address) past the cache.
    #[inline(always)]
    fn walk_level3(&self, va: usize, block: usize) -> Option<usize> {
        let address = mmu::phys_to_virt(descriptor_address(self.level2_entry(va)?));
        self.walked.set((block, address));
        Some(address)
    }

    /// How many table frames mapping `va` would need (0, 1 or 2).
    #[inline]
    pub fn missing_tables(&self, va: usize) -> usize {
        // SAFETY: see the impl.
        let l1 = unsafe { table(self.root.0) }.0[index(va, 1)];
        if !is_valid(l1) {
            return 2;
        }
        usize::from(self.level2_entry(va).is_none())
    }

    /// Installs `descriptor` for `va`, taking new tables from `tables` (exactly
    /// [`missing_tables`](Self::missing_tables) zeroed frames, which become this space's
    /// own). Returns the old descriptor.
    pub fn map(&mut self, va: usize, descriptor: u64, tables: &[Frame]) -> u64 {
        core::mem::replace(self.install(va, tables, 0), descriptor)
    }

    /// [`map`](Self::map) in a space being built (a spawn's, not yet committed): the new
    /// tables are marked [`mmu::NEW_TABLE`], for [`take_new_tables`](Self::take_new_tables)
    /// to name them at commit. `descriptor` 0 installs the tables only.
    pub fn map_new(&mut self, va: usize, descriptor: u64, tables: &[Frame]) {
        *self.install(va, tables, mmu::NEW_TABLE) = descriptor;
    }

    /// The tables covering `va` still marked new by [`map_new`](Self::map_new) (the level-2
    /// table first), unmarked: the tables the step of a spawn that first reached `va` added.
    pub fn take_new_tables(&mut self, va: usize) -> ([Frame; 2], usize) {
        let (new, count, _) = self.take_new(va);
        (new, count)
    }

    /// [`take_new_tables`](Self::take_new_tables) and, in the same walk, the descriptor
    /// mapping `va` (0 when none): a spawn's commit of one image page.
    #[inline(always)]
    pub fn take_new(&mut self, va: usize) -> ([Frame; 2], usize, u64) {
        let mut new = [Frame(0); 2];
        let mut count = 0;
        let mut unmark = |entry: &mut u64| {
            if *entry & mmu::NEW_TABLE != 0 {
                *entry &= !mmu::NEW_TABLE;
                new[count] = Frame(descriptor_address(*entry));
                count += 1;
            }
        };
        // SAFETY: see the impl.
        let l1 = &mut unsafe { table_mut(self.root.0) }.0[index(va, 1)];
        if !is_valid(*l1) {
            return (new, 0, 0);
        }
        unmark(l1);
        let level2 = descriptor_address(*l1);
        // SAFETY: see the impl (a different frame from the root).
        let l2 = &mut unsafe { table_mut(level2) }.0[index(va, 2)];
        if !is_valid(*l2) {
            return (new, count, 0);
        }
        unmark(l2);
        // SAFETY: see the impl (a level-3 table, different from both).
        let l3 = unsafe { table(descriptor_address(*l2)) }.0[index(va, 3)];
        (new, count, if is_valid(l3) { l3 } else { 0 })
    }

    /// The level-3 entry for `va`, installing the missing tables from `tables` with table
    /// descriptors carrying `mark`.
    #[inline(always)]
    fn install(&mut self, va: usize, tables: &[Frame], mark: u64) -> &mut u64 {
        let mut fresh = tables.iter();
        // SAFETY: see the impl; the fresh tables are handed over by the caller.
        let l1 = &mut unsafe { table_mut(self.root.0) }.0[index(va, 1)];
        if !is_valid(*l1) {
            *l1 =
                mark | table_descriptor(fresh.next().expect("caller provides the level-2 table").0);
        }
        // SAFETY: see the impl (a different frame from the root).
        let l2 = &mut unsafe { table_mut(descriptor_address(*l1)) }.0[index(va, 2)];
        if !is_valid(*l2) {
            *l2 =
                mark | table_descriptor(fresh.next().expect("caller provides the level-3 table").0);
        }
        // SAFETY: see the impl (a level-3 table, different from both).
        &mut unsafe { table_mut(descriptor_address(*l2)) }.0[index(va, 3)]
    }

    /// The level-3 table covering `va`, to read (see [`level3_table`](Self::level3_table)).
    pub fn level3_entries(&self, va: usize) -> Option<&Table> {
        let address = self.level3_address(va)?;
        // SAFETY: see the impl; the result borrows `self`.
        Some(unsafe { mapped_table(address) })
    }

    /// The level-3 table covering `va` (512 pages, 2 MiB aligned), if it exists, for as long as
    /// this space is borrowed: bulk operations over a span read and write its entries directly
    /// instead of walking from the root for every page. Index it with [`level3_index`].
    pub fn level3_table(&mut self, va: usize) -> Option<&mut Table> {
        let address = self.level3_address(va)?;
        // SAFETY: see the impl; the result borrows `self` mutably.
        Some(unsafe { mapped_table_mut(address) })
    }

    /// The level-3 descriptor for `va`, if its tables exist and it is valid.
    #[inline]
    pub fn lookup(&self, va: usize) -> Option<u64> {
        self.lookup_inline(va)
    }

    /// [`lookup`](Self::lookup), always inlined (the IPC fast path's translations).
    #[inline(always)]
    pub fn lookup_inline(&self, va: usize) -> Option<u64> {
        // SAFETY: see the impl.
        let l3 = unsafe { mapped_table(self.level3_address(va)?) }.0[index(va, 3)];
        is_valid(l3).then_some(l3)
    }

    /// Whether the entry for `va` is the paged-out marker ([`PAGED_OUT`]).
    #[inline]
    pub fn is_paged_out(&self, va: usize) -> bool {
        let Some(address) = self.level3_address(va) else {
            return false;
        };
        // SAFETY: see the impl.
        unsafe { mapped_table(address) }.0[index(va, 3)] == PAGED_OUT
    }

    /// Replaces the descriptor of a mapped page; returns the old one (0 when none).
    #[inline]
    pub fn replace(&mut self, va: usize, descriptor: u64) -> u64 {
        let Some(address) = self.level3_address(va) else {
            return 0;
        };
        // SAFETY: see the impl.
        let l3 = &mut unsafe { mapped_table_mut(address) }.0[index(va, 3)];
        core::mem::replace(l3, descriptor)
    }

    /// Calls `f(va, descriptor)` for every valid page in `[start, end)`, skipping absent tables.
    pub fn for_each_page(&self, start: usize, end: usize, mut f: impl FnMut(usize, u64)) {
        let mut va = start;
        while va < end {
            // SAFETY: see the impl.
            let l1 = unsafe { table(self.root.0) }.0[index(va, 1)];
            if !is_valid(l1) {
                va = (va | ((1 << 30) - 1)) + 1;
                continue;
            }
            // SAFETY: see the impl.
            let l2 = unsafe { table(descriptor_address(l1)) }.0[index(va, 2)];
            if !is_valid(l2) {
                va = (va | ((1 << 21) - 1)) + 1;
                continue;
            }
            // SAFETY: see the impl.
            let l3 = unsafe { table(descriptor_address(l2)) }.0[index(va, 3)];
            if is_valid(l3) {
                f(va, l3);
            }
            va += 4096;
        }
    }

    /// Calls `f(frame)` for every level-2 and level-3 table frame (not the root), each after
    /// the walk has read it for the last time, so `f` may free it (teardown does).
    pub fn for_each_table(&self, mut f: impl FnMut(Frame)) {
        for index1 in 0..ENTRIES {
            // SAFETY: see the impl; the reference is dropped before `f` runs.
            let l1 = unsafe { table(self.root.0) }.0[index1];
            if !is_valid(l1) {
                continue;
            }
            let l2_table = descriptor_address(l1);
            for index2 in 0..ENTRIES {
                // SAFETY: see the impl; the reference is dropped before `f` runs.
                let l2 = unsafe { table(l2_table) }.0[index2];
                if is_valid(l2) {
                    f(Frame(descriptor_address(l2)));
                }
            }
            f(Frame(l2_table));
        }
    }
}

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

/// Index of `va` in the table at `level` (1, 2 or 3).
fn index(va: usize, level: u32) -> usize {
    (va >> (12 + 9 * (3 - level))) & (ENTRIES - 1)
}

/// Index of `va`'s page in its level-3 table.
pub fn level3_index(va: usize) -> usize {
    index(va, 3)
}

fn table(frame_pa: usize) -> &'static mut Table {
    // SAFETY: table frames are RAM pages owned by exactly one PageTables, reached through the
    // linear map; the kernel is single-threaded with IRQs masked, so no alias is live.
    unsafe { &mut *(mmu::phys_to_virt(frame_pa) as *mut Table) }
}

/// The translation tables of one address space.
pub struct PageTables {
    root: Frame,
}

impl PageTables {
    /// Tables rooted at `root`, a zeroed frame.
    pub fn new(root: Frame) -> Self {
        PageTables { root }
    }

    /// The root table's frame (for TTBR0).
    pub fn root(&self) -> Frame {
        self.root
    }

    /// How many table frames mapping `va` would need (0, 1 or 2).
    pub fn missing_tables(&self, va: usize) -> usize {
        let l1 = table(self.root.0).0[index(va, 1)];
        if !is_valid(l1) {
            return 2;
        }
        let l2 = table(descriptor_address(l1)).0[index(va, 2)];
        usize::from(!is_valid(l2))
    }

    /// Installs `descriptor` for `va`, taking new tables from `tables` (exactly
    /// [`missing_tables`](Self::missing_tables) zeroed frames). Returns the old descriptor.
    pub fn map(&mut self, va: usize, descriptor: u64, tables: &[Frame]) -> u64 {
        let mut fresh = tables.iter();
        let l1 = &mut table(self.root.0).0[index(va, 1)];
        if !is_valid(*l1) {
            *l1 = table_descriptor(fresh.next().expect("caller provides the level-2 table").0);
        }
        let l2 = &mut table(descriptor_address(*l1)).0[index(va, 2)];
        if !is_valid(*l2) {
            *l2 = table_descriptor(fresh.next().expect("caller provides the level-3 table").0);
        }
        let l3 = &mut table(descriptor_address(*l2)).0[index(va, 3)];
        core::mem::replace(l3, descriptor)
    }

    /// The level-3 table covering `va` (512 pages, 2 MiB aligned), if it exists: bulk
    /// operations over a span read and write its entries directly instead of walking from the
    /// root for every page. Index it with [`level3_index`].
    pub fn level3_table(&mut self, va: usize) -> Option<&'static mut Table> {
        let l1 = table(self.root.0).0[index(va, 1)];
        if !is_valid(l1) {
            return None;
        }
        let l2 = table(descriptor_address(l1)).0[index(va, 2)];
        is_valid(l2).then(|| table(descriptor_address(l2)))
    }

    /// The level-3 descriptor for `va`, if its tables exist and it is valid.
    pub fn lookup(&self, va: usize) -> Option<u64> {
        let l1 = table(self.root.0).0[index(va, 1)];
        if !is_valid(l1) {
            return None;
        }
        let l2 = table(descriptor_address(l1)).0[index(va, 2)];
        if !is_valid(l2) {
            return None;
        }
        let l3 = table(descriptor_address(l2)).0[index(va, 3)];
        is_valid(l3).then_some(l3)
    }

    /// Replaces the descriptor of a mapped page; returns the old one (0 when none).
    pub fn replace(&mut self, va: usize, descriptor: u64) -> u64 {
        let l1 = table(self.root.0).0[index(va, 1)];
        if !is_valid(l1) {
            return 0;
        }
        let l2 = table(descriptor_address(l1)).0[index(va, 2)];
        if !is_valid(l2) {
            return 0;
        }
        core::mem::replace(
            &mut table(descriptor_address(l2)).0[index(va, 3)],
            descriptor,
        )
    }

    /// Calls `f(va, descriptor)` for every valid page in `[start, end)`, skipping absent tables.
    pub fn for_each_page(&self, start: usize, end: usize, mut f: impl FnMut(usize, u64)) {
        let mut va = start;
        while va < end {
            let l1 = table(self.root.0).0[index(va, 1)];
            if !is_valid(l1) {
                va = (va | ((1 << 30) - 1)) + 1;
                continue;
            }
            let l2 = table(descriptor_address(l1)).0[index(va, 2)];
            if !is_valid(l2) {
                va = (va | ((1 << 21) - 1)) + 1;
                continue;
            }
            let l3 = table(descriptor_address(l2)).0[index(va, 3)];
            if is_valid(l3) {
                f(va, l3);
            }
            va += 4096;
        }
    }

    /// Calls `f(frame)` for every level-2 and level-3 table frame (not the root).
    pub fn for_each_table(&self, mut f: impl FnMut(Frame)) {
        for &l1 in table(self.root.0).0.iter() {
            if !is_valid(l1) {
                continue;
            }
            let l2_table = descriptor_address(l1);
            for &l2 in table(l2_table).0.iter() {
                if is_valid(l2) {
                    f(Frame(descriptor_address(l2)));
                }
            }
            f(Frame(l2_table));
        }
    }
}

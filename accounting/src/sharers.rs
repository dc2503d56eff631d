//! A fixed-capacity, hash-consed, reference-counted pool of sharer lists.
//!
//! A frame mapped (or paid for) by two or more parties refers to one list of [`Slot`]s here.
//! Equal lists are stored once (hash-consing), so the 1024 frames of a 4 MiB region shared by a
//! parent and a child all refer to one list `[parent, child]`.
//!
//! Invariants: a list in use has `references > 0` and sits in the hash index exactly once;
//! lists never move (frames hold their ids); lists are immutable while referenced — changing a
//! frame's sharers interns a new list and releases the old one; a full pool is reported as
//! [`crate::Error::PoolFull`], never a panic.

use crate::error::Error;
use crate::ids::{DomainId, SetId, MAX_SHARERS, SHARER_LISTS};

/// One party of a frame: the set it charges and the domain that maps the frame through it
/// (`None` once that domain left but its set kept paying under `release = stay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The charge set of this slot.
    pub set: SetId,
    /// The domain mapping the frame through this slot, if any.
    pub domain: Option<DomainId>,
}

/// The slots of one frame; slot 0 is the holder (the original payer).
pub type SlotList = heapless::Vec<Slot, MAX_SHARERS>;

const INDEX_SLOTS: usize = SHARER_LISTS * 2;
const EMPTY: u16 = u16::MAX;

#[derive(Clone)]
struct PoolEntry {
    slots: SlotList,
    references: u32,
    /// Next entry of the free list (`EMPTY` ends it), while unused.
    next_unused: u16,
}

/// The pool of sharer lists. Const-constructible ([`SharerPool::new`]), so a kernel can keep
/// the ledger in a static.
#[derive(Clone)]
pub struct SharerPool {
    entries: [PoolEntry; SHARER_LISTS],
    /// Open-addressed hash index (linear probing) from list contents to entry id.
    index: [u16; INDEX_SLOTS],
    /// Head of the list of released entries.
    unused_head: u16,
    /// Entries `fresh..` have never been used.
    fresh: u16,
    /// Entries in use.
    used: u16,
}

impl Default for SharerPool {
    fn default() -> Self {
        Self::new()
    }
}

impl SharerPool {
    /// An empty pool.
    pub const fn new() -> Self {
        SharerPool {
            entries: [const {
                PoolEntry {
                    slots: SlotList::new(),
                    references: 0,
                    next_unused: EMPTY,
                }
            }; SHARER_LISTS],
            index: [EMPTY; INDEX_SLOTS],
            unused_head: EMPTY,
            fresh: 0,
            used: 0,
        }
    }

    /// Lists not in use.
    #[inline]
    pub fn unused_lists(&self) -> usize {
        SHARER_LISTS - usize::from(self.used)
    }

    /// Lists in use.
    #[inline]
    pub fn used_lists(&self) -> usize {
        usize::from(self.used)
    }

    /// Takes an unused entry id.
    fn take_unused(&mut self) -> Option<u16> {
        if self.unused_head != EMPTY {
            let id = self.unused_head;
            self.unused_head = self.entries[usize::from(id)].next_unused;
            Some(id)
        } else if usize::from(self.fresh) < SHARER_LISTS {
            self.fresh += 1;
            Some(self.fresh - 1)
        } else {
            None
        }
    }

    /// The slots of list `id` (empty for an unused id).
    #[inline]
    pub fn get(&self, id: u16) -> &[Slot] {
        self.entries
            .get(usize::from(id))
            .map_or(&[], |entry| entry.slots.as_slice())
    }

    /// The id of the list equal to `slots`, if the pool holds one.
    pub fn find(&self, slots: &[Slot]) -> Option<u16> {
        let mut position = hash(slots) % INDEX_SLOTS;
        loop {
            let id = self.index[position];
            if id == EMPTY {
                return None;
            }
            if self.entries[usize::from(id)].slots.as_slice() == slots {
                return Some(id);
            }
            position = (position + 1) % INDEX_SLOTS;
        }
    }

    /// Takes one more reference to the list equal to `slots`, storing it if new.
    pub fn intern(&mut self, slots: &[Slot]) -> Result<u16, Error> {
        if let Some(id) = self.find(slots) {
            self.entries[usize::from(id)].references += 1;
            return Ok(id);
        }
        let list = SlotList::from_slice(slots).map_err(|_| Error::TooManySharers)?;
        let id = self.take_unused().ok_or(Error::PoolFull)?;
        self.used += 1;
        let entry = &mut self.entries[usize::from(id)];
        entry.slots = list;
        entry.references = 1;
        let mut position = hash(slots) % INDEX_SLOTS;
        while self.index[position] != EMPTY {
            position = (position + 1) % INDEX_SLOTS;
        }
        self.index[position] = id;
        Ok(id)
    }

    /// Drops one reference to list `id`, freeing it with the last one.
    pub fn release(&mut self, id: u16) {
        let Some(entry) = self.entries.get_mut(usize::from(id)) else {
            debug_assert!(false, "release of unknown sharer list {id}");
            return;
        };
        if entry.references == 0 {
            debug_assert!(false, "release of unused sharer list {id}");
            return;
        }
        entry.references -= 1;
        if entry.references > 0 {
            return;
        }
        // Remove `id` from the index with backward-shift deletion, so probes stay unbroken.
        let mut position = hash(&entry.slots) % INDEX_SLOTS;
        while self.index[position] != id {
            if self.index[position] == EMPTY {
                debug_assert!(false, "sharer list {id} missing from the index");
                return;
            }
            position = (position + 1) % INDEX_SLOTS;
        }
        let mut hole = position;
        let mut next = (hole + 1) % INDEX_SLOTS;
        loop {
            let moved = self.index[next];
            if moved == EMPTY {
                break;
            }
            let home = hash(&self.entries[usize::from(moved)].slots) % INDEX_SLOTS;
            // `moved` may fill the hole if its home is not cyclically within (hole, next].
            let distance_home = (next + INDEX_SLOTS - home) % INDEX_SLOTS;
            let distance_hole = (next + INDEX_SLOTS - hole) % INDEX_SLOTS;
            if distance_home >= distance_hole {
                self.index[hole] = moved;
                hole = next;
            }
            next = (next + 1) % INDEX_SLOTS;
        }
        self.index[hole] = EMPTY;
        let entry = &mut self.entries[usize::from(id)];
        entry.slots.clear();
        entry.next_unused = self.unused_head;
        self.unused_head = id;
        self.used -= 1;
    }

    /// References held on list `id` (0 when unused).
    pub fn references(&self, id: u16) -> u32 {
        self.entries
            .get(usize::from(id))
            .map_or(0, |entry| entry.references)
    }
}

/// FNV-1a over the slots.
fn hash(slots: &[Slot]) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    for slot in slots {
        let domain = slot.domain.map_or(u16::MAX, |domain| domain.0);
        for byte in slot
            .set
            .0
            .to_le_bytes()
            .into_iter()
            .chain(domain.to_le_bytes())
        {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    hash as usize
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn list(pairs: &[(u16, Option<u16>)]) -> Vec<Slot> {
        pairs
            .iter()
            .map(|&(set, domain)| Slot {
                set: SetId(set),
                domain: domain.map(DomainId),
            })
            .collect()
    }

    #[test]
    fn equal_lists_are_stored_once() {
        let mut pool = SharerPool::new();
        let a = pool.intern(&list(&[(1, Some(1)), (2, Some(2))])).unwrap();
        let b = pool.intern(&list(&[(1, Some(1)), (2, Some(2))])).unwrap();
        let c = pool.intern(&list(&[(2, Some(2)), (1, Some(1))])).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(pool.references(a), 2);
        assert_eq!(pool.used_lists(), 2);
        pool.release(a);
        assert_eq!(pool.find(&list(&[(1, Some(1)), (2, Some(2))])), Some(a));
        pool.release(a);
        assert_eq!(pool.find(&list(&[(1, Some(1)), (2, Some(2))])), None);
        assert_eq!(pool.find(&list(&[(2, Some(2)), (1, Some(1))])), Some(c));
        assert_eq!(pool.used_lists(), 1);
    }

    #[test]
    fn full_pool_is_an_error_and_deletion_keeps_probes_intact() {
        let mut pool = SharerPool::new();
        let mut ids = Vec::new();
        for index in 0..SHARER_LISTS as u16 {
            ids.push(
                pool.intern(&list(&[(index, None), (1, Some(index))]))
                    .unwrap(),
            );
        }
        assert_eq!(
            pool.intern(&list(&[(999, None), (1, None)])),
            Err(Error::PoolFull)
        );
        // Free every other list, then check every survivor is still found.
        for (index, id) in ids.iter().enumerate() {
            if index % 2 == 0 {
                pool.release(*id);
            }
        }
        for (index, id) in ids.iter().enumerate() {
            let found = pool.find(&list(&[(index as u16, None), (1, Some(index as u16))]));
            assert_eq!(found, (index % 2 == 1).then_some(*id));
        }
        assert_eq!(pool.unused_lists(), SHARER_LISTS / 2);
    }

    #[test]
    fn too_many_slots_is_an_error() {
        let mut pool = SharerPool::new();
        let long: Vec<Slot> = (0..=MAX_SHARERS as u16)
            .map(|index| Slot {
                set: SetId(index),
                domain: None,
            })
            .collect();
        assert_eq!(pool.intern(&long), Err(Error::TooManySharers));
    }
}

//! A fixed-capacity, hash-consed, reference-counted pool of sharer lists.
//!
//! A frame mapped (or paid for) by two or more parties refers to one list of [`Slot`]s here.
//! Equal lists are stored once (hash-consing), so the 1024 frames of a 4 MiB region shared by a
//! parent and a child all refer to one list `[parent, child]`.
//!
//! Cost: a list is hashed once per lookup (each slot one 32-bit word; the hash is kept with the
//! list, so probes compare it first and deletions never rehash); [`SharerPool::lookup`] finds
//! "a list plus one more slot" without building it; references are taken and dropped in bulk
//! ([`SharerPool::retain`], [`SharerPool::release_many`]); and the pool remembers the last
//! "list + slot = list" it was told of, so sharing page after page of one region with the same
//! domain costs no lookup at all.
//!
//! Invariants: a list in use has `references > 0` and sits in the hash index exactly once;
//! lists never move (frames hold their ids); lists are immutable while referenced — changing a
//! frame's sharers interns a new list and releases the old one; the remembered append names
//! lists in use only (it is forgotten whenever a list is removed); a full pool is reported as
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

impl Slot {
    /// A placeholder: the `kernel` set, no domain.
    pub(crate) const NONE: Slot = Slot {
        set: SetId::KERNEL,
        domain: None,
    };

    /// The slot as one number (set, then domain; `0xFFFF` = none): equal slots, equal words.
    #[inline(always)]
    pub(crate) fn word(self) -> u32 {
        let domain = self.domain.map_or(u16::MAX, |domain| domain.0);
        u32::from(self.set.0) << 16 | u32::from(domain)
    }
}

/// The slots of one frame; slot 0 is the holder (the original payer).
pub type SlotList = heapless::Vec<Slot, MAX_SHARERS>;

const INDEX_SLOTS: usize = SHARER_LISTS * 2;
const INDEX_MASK: usize = INDEX_SLOTS - 1;
const _: () = assert!(INDEX_SLOTS.is_power_of_two() && INDEX_SLOTS <= 1 << 16);
const EMPTY: u16 = u16::MAX;

/// One list. Aligned to 128 bytes (it is 112): an entry's address is the pool's plus the id
/// shifted, one instruction on a copy's straight-line path.
#[derive(Clone)]
#[repr(align(128))]
struct PoolEntry {
    slots: SlotList,
    references: u32,
    /// The low bits of [`hash`] of `slots` (all the index position needs), kept so that probes
    /// compare it first and deletions never rehash; 16 bits fit in the entry's padding.
    hash: u16,
    /// Next entry of the free list (`EMPTY` ends it), while unused.
    next_unused: u16,
}

/// The pool of sharer lists. Const-constructible ([`SharerPool::new`]), so a kernel can keep
/// the ledger in a static. Laid out in declaration order (`repr(C)`): the counters a copy's
/// straight-line path reads first, at offsets one load encodes, then the entries.
#[derive(Clone)]
#[repr(C)]
pub struct SharerPool {
    /// Entries in use.
    used: u16,
    /// Head of the list of released entries.
    unused_head: u16,
    /// Entries `fresh..` have never been used.
    fresh: u16,
    entries: [PoolEntry; SHARER_LISTS],
    /// Open-addressed hash index (linear probing) from list contents to entry id.
    index: [u16; INDEX_SLOTS],
    /// The last list [`SharerPool::remember_append`] was told of: (the list it extends, as a
    /// key, the slot appended, the resulting list, `EMPTY` for none). Forgotten when any list
    /// is removed, so the id it names always holds that list.
    appended: (u64, u32, u16),
}

impl Default for SharerPool {
    fn default() -> Self {
        Self::new()
    }
}

// `get_listed`'s mask is an index only for a power of two.
const _: () = assert!(SHARER_LISTS.is_power_of_two());

impl SharerPool {
    /// An empty pool.
    pub const fn new() -> Self {
        SharerPool {
            entries: [const {
                PoolEntry {
                    slots: SlotList::new(),
                    references: 0,
                    hash: 0,
                    next_unused: EMPTY,
                }
            }; SHARER_LISTS],
            index: [EMPTY; INDEX_SLOTS],
            unused_head: EMPTY,
            fresh: 0,
            used: 0,
            appended: (0, 0, EMPTY),
        }
    }

    /// The list that `slot` appended to the list `key` (a caller's name for a list of
    /// slots, the same for equal lists) makes, if it is the one last remembered.
    #[inline(always)]
    pub(crate) fn recall_append(&self, key: u64, slot: Slot) -> Option<u16> {
        let (known, word, id) = self.appended;
        (id != EMPTY && known == key && word == slot.word()).then_some(id)
    }

    /// Remembers that `slot` appended to the list `key` makes list `id` (in use).
    #[inline(always)]
    pub(crate) fn remember_append(&mut self, key: u64, slot: Slot, id: u16) {
        self.appended = (key, slot.word(), id);
    }

    /// Empties the pool in place, as [`SharerPool::new`] makes it (without a temporary of the
    /// pool's size).
    pub fn clear(&mut self) {
        for entry in &mut self.entries {
            entry.slots.clear();
            entry.hash = 0;
            entry.references = 0;
            entry.next_unused = EMPTY;
        }
        self.index.fill(EMPTY);
        self.unused_head = EMPTY;
        self.fresh = 0;
        self.used = 0;
        self.appended = (0, 0, EMPTY);
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

    /// The slots of list `id`, an id a frame entry holds (so one the pool handed out): masked
    /// into the pool instead of bounds-checked (a wrong id would reach a wrong list, never
    /// memory outside the pool).
    #[inline(always)]
    pub(crate) fn get_listed(&self, id: u16) -> &[Slot] {
        self.entries[usize::from(id) % SHARER_LISTS]
            .slots
            .as_slice()
    }

    /// The slots of list `id` (empty for an unused id).
    #[inline]
    pub fn get(&self, id: u16) -> &[Slot] {
        self.entries
            .get(usize::from(id))
            .map_or(&[], |entry| entry.slots.as_slice())
    }

    /// The id of the list equal to `slots`, if the pool holds one.
    #[inline]
    pub fn find(&self, slots: &[Slot]) -> Option<u16> {
        self.lookup(slots, None).1
    }

    /// The hash of the list `slots` followed by `extra` (if any), and the id of the list
    /// equal to it, if the pool holds one. Nothing is copied.
    #[inline]
    pub fn lookup(&self, slots: &[Slot], extra: Option<Slot>) -> (u32, Option<u16>) {
        let hash = hash(slots, extra);
        let len = slots.len() + usize::from(extra.is_some());
        let mut position = hash as usize & INDEX_MASK;
        loop {
            let id = self.index[position];
            if id == EMPTY {
                return (hash, None);
            }
            let entry = &self.entries[usize::from(id)];
            if entry.hash == hash as u16 && entry.slots.len() == len {
                let (head, tail) = entry.slots.split_at(slots.len());
                if head == slots && tail.first().copied() == extra {
                    return (hash, Some(id));
                }
            }
            position = (position + 1) & INDEX_MASK;
        }
    }

    /// Takes one more reference to the list equal to `slots`, storing it if new.
    #[inline]
    pub fn intern(&mut self, slots: &[Slot]) -> Result<u16, Error> {
        match self.lookup(slots, None) {
            (_, Some(id)) => {
                self.entries[usize::from(id)].references += 1;
                Ok(id)
            }
            (hash, None) => self.insert(slots, hash),
        }
    }

    /// Stores `slots`, which the pool does not hold and whose [`SharerPool::lookup`] hash is
    /// `hash`, with one reference.
    pub fn insert(&mut self, slots: &[Slot], hash: u32) -> Result<u16, Error> {
        if slots.len() > MAX_SHARERS {
            return Err(Error::TooManySharers);
        }
        let id = self.take_unused().ok_or(Error::PoolFull)?;
        self.used += 1;
        let entry = &mut self.entries[usize::from(id)];
        // Written in place (a list made first would be copied in whole); it fits (checked).
        entry.slots.clear();
        let _ = entry.slots.extend_from_slice(slots);
        entry.hash = hash as u16;
        entry.references = 1;
        let mut position = hash as usize & INDEX_MASK;
        while self.index[position] != EMPTY {
            position = (position + 1) & INDEX_MASK;
        }
        self.index[position] = id;
        Ok(id)
    }

    /// Takes `count` more references to list `id`, which is in use.
    #[inline]
    pub fn retain(&mut self, id: u16, count: u32) {
        match self.entries.get_mut(usize::from(id)) {
            Some(entry) if entry.references > 0 => entry.references += count,
            _ => debug_assert!(false, "retain of unused sharer list {id}"),
        }
    }

    /// Drops one reference to list `id`, freeing it with the last one.
    #[inline]
    pub fn release(&mut self, id: u16) {
        self.release_many(id, 1);
    }

    /// [`SharerPool::release`] of a list a frame entry held ([`SharerPool::get_listed`]'s
    /// masked index).
    #[inline(always)]
    pub(crate) fn release_listed(&mut self, id: u16) {
        self.drop_references(usize::from(id) % SHARER_LISTS, id, 1);
    }

    /// Drops `count` references to list `id`, freeing it with the last one. Inlined (the
    /// decrement is the common case); freeing the list is out of line.
    #[inline(always)]
    pub fn release_many(&mut self, id: u16, count: u32) {
        if usize::from(id) >= SHARER_LISTS {
            debug_assert!(false, "release of unknown sharer list {id}");
            return;
        }
        self.drop_references(usize::from(id), id, count);
    }

    /// [`SharerPool::release_many`] of list `id` at `position` (in the pool: checked or
    /// masked by the caller).
    #[inline(always)]
    fn drop_references(&mut self, position: usize, id: u16, count: u32) {
        let entry = &mut self.entries[position];
        if entry.references < count {
            debug_assert!(false, "release of unused sharer list {id}");
            return;
        }
        entry.references -= count;
        if entry.references == 0 {
            self.remove(id);
        }
    }

    /// Removes unreferenced list `id` from the index and puts it on the free list.
    #[inline(never)]
    fn remove(&mut self, id: u16) {
        self.appended = (0, 0, EMPTY);
        // Backward-shift deletion, so probes stay unbroken.
        let mut position = self.entries[usize::from(id)].hash as usize & INDEX_MASK;
        while self.index[position] != id {
            if self.index[position] == EMPTY {
                debug_assert!(false, "sharer list {id} missing from the index");
                return;
            }
            position = (position + 1) & INDEX_MASK;
        }
        let mut hole = position;
        let mut next = (hole + 1) & INDEX_MASK;
        loop {
            let moved = self.index[next];
            if moved == EMPTY {
                break;
            }
            let home = self.entries[usize::from(moved)].hash as usize & INDEX_MASK;
            // `moved` may fill the hole if its home is not cyclically within (hole, next].
            let distance_home = next.wrapping_sub(home) & INDEX_MASK;
            let distance_hole = next.wrapping_sub(hole) & INDEX_MASK;
            if distance_home >= distance_hole {
                self.index[hole] = moved;
                hole = next;
            }
            next = (next + 1) & INDEX_MASK;
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

/// A hash of the slots (and `extra` after them): each slot as one 32-bit word (set, domain), mixed multiplicatively,
/// then finished with the MurmurHash3 finaliser so that the low bits (the index position)
/// depend on every slot.
#[inline]
fn hash(slots: &[Slot], extra: Option<Slot>) -> u32 {
    let mix = |hash: u32, slot: &Slot| {
        (hash ^ slot.word())
            .wrapping_mul(0x9e37_79b1)
            .rotate_left(13)
    };
    let mut hash = (slots.len() + usize::from(extra.is_some())) as u32;
    hash = slots.iter().fold(hash, mix);
    if let Some(extra) = &extra {
        hash = mix(hash, extra);
    }
    hash ^= hash >> 16;
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^ (hash >> 16)
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

//! Frame-state plumbing: decoding a frame entry and its sharer list, storing a new state, the
//! per-set counters a charge or an uncharge moves (current and paid-for, the sums `below`
//! every ancestor; an uncharge also the peak before it and the uncharged totals: the rest is
//! derived, see [`ChargeSet`]), and the runs of a `ShareMany` (the frames with one entry: found, replaced
//! or stored four frames a step, [`equal_run`], [`replace_run`], [`store_run`]).

use super::*;

impl<'a> Ledger<'a> {
    #[inline(always)]
    pub(super) fn require_free(&self, frame: FrameIndex) -> Result<(), Error> {
        match self.entry(frame)?.usage() {
            FrameUse::Free => Ok(()),
            FrameUse::Boot => Err(Error::BootFrame(frame)),
            FrameUse::Charged(_) => Err(Error::FrameInUse(frame)),
        }
    }

    #[inline(always)]
    pub(super) fn require_mapped(&self, frame: FrameIndex) -> Result<FrameEntry, Error> {
        let entry = self.entry(frame)?;
        mapped_kind(frame, entry)?;
        Ok(entry)
    }
    pub(crate) fn decode(&self, entry: FrameEntry) -> Option<FrameState> {
        let view = self.view(entry)?;
        let mut slots = SlotList::new();
        let _ = slots.extend_from_slice(view.slots());
        Some(FrameState {
            kind: view.kind,
            split: view.split,
            causer: view.causer,
            slots,
        })
    }

    /// The slots of `entry` (charged), read in place; an inline slot is decoded into `one`.
    #[inline(always)]
    pub(super) fn slots<'s>(&'s self, entry: &FrameEntry, one: &'s mut Slot) -> &'s [Slot] {
        match entry.inline_slot() {
            Some((set, domain)) => {
                *one = Slot { set, domain };
                core::slice::from_ref(one)
            }
            None => entry.list().map_or(&[], |list| self.pool.get(list)),
        }
    }

    /// The frame's parties, read in place; `None` for a free or boot frame.
    #[inline(always)]
    pub(super) fn view(&self, entry: FrameEntry) -> Option<View<'_>> {
        let kind = entry.kind()?;
        let (list, inline, listed) = match entry.inline_slot() {
            Some((set, domain)) => (None, Slot { set, domain }, &[][..]),
            None => {
                let list = entry.list()?;
                let none = Slot {
                    set: SetId::KERNEL,
                    domain: None,
                };
                (Some(list), none, self.pool.get(list))
            }
        };
        Some(View {
            kind,
            split: entry.is_split(),
            causer: entry.causer(),
            list,
            inline,
            listed,
        })
    }

    /// A new single-slot frame; the fast path of every new frame (always inlined: it is the
    /// bulk of a demand-zero fault's accounting, and a call costs more than its body grows).
    #[inline(always)]
    pub(super) fn create(
        &mut self,
        frame: FrameIndex,
        kind: Kind,
        causer: Option<DomainId>,
        payer: SetId,
        mapper: Option<DomainId>,
    ) {
        if self.store_new(frame, kind, causer, payer, mapper) {
            self.charge(payer, kind, FRAME_BYTES, causer);
        }
    }

    /// Stores the entry of a new frame charged to `payer`, counting it in use (the charge
    /// itself is the caller's: [`Ledger::create`], or a fast path's
    /// [`Ledger::charge_frame`]); false, having changed nothing, for a frame out of range.
    #[inline(always)]
    pub(super) fn store_new(
        &mut self,
        frame: FrameIndex,
        kind: Kind,
        causer: Option<DomainId>,
        payer: SetId,
        mapper: Option<DomainId>,
    ) -> bool {
        let Some(entry) = self.frames.get_mut(frame.index()) else {
            debug_assert!(false, "reserved frame out of range");
            return false;
        };
        *entry = FrameEntry::inline(kind, false, causer, payer, mapper);
        self.frames_in_use += 1;
        true
    }

    /// [`Ledger::check_one`] of one frame's charge of `kind` to `set_id` and, when it fits,
    /// [`Ledger::charge`] of it: the fast paths' charge. When no set has a limit or sub-limit
    /// (`limited`), nothing can deny it and the limit walk is skipped.
    #[inline(always)]
    pub(super) fn charge_frame(
        &mut self,
        set_id: SetId,
        kind: Kind,
        causer: Option<DomainId>,
    ) -> Result<(), Denial> {
        if self.limited != 0 {
            self.check_one(&Charge {
                set: set_id,
                kind,
                bytes: FRAME_BYTES as i64,
                causer,
            })?;
        }
        self.charge_inline(set_id, kind, FRAME_BYTES, causer);
        Ok(())
    }

    /// [`Error::PoolFull`] when storing `new` slots in place of `entry`'s would need a list
    /// the exhausted pool cannot hold.
    #[inline]
    pub(super) fn pool_room(&self, entry: FrameEntry, new: &[Slot]) -> Result<(), Error> {
        if new.len() > 1
            && self.pool.unused_lists() == 0
            && self.pool.find(new).is_none()
            && entry
                .list()
                .is_none_or(|list| self.pool.references(list) > 1)
        {
            return Err(Error::PoolFull);
        }
        Ok(())
    }

    /// Stores `new` slots (empty = free) in place of `entry`'s, without touching charges:
    /// drops the old list's reference, takes the new list's (room checked by the caller).
    #[inline]
    pub(super) fn store(
        &mut self,
        frame: FrameIndex,
        entry: FrameEntry,
        kind: Kind,
        split: bool,
        causer: Option<DomainId>,
        new: &[Slot],
    ) {
        if let Some(list) = entry.list() {
            self.pool.release(list);
        }
        let stored = match new {
            [] => FrameEntry::FREE,
            [slot] => FrameEntry::inline(kind, split, causer, slot.set, slot.domain),
            slots => match self.pool.intern(slots) {
                Ok(list) => FrameEntry::listed(kind, split, causer, list),
                Err(_) => {
                    // Checked by the caller: the pool has room (or the old list's slot).
                    debug_assert!(false, "sharer pool full after check");
                    FrameEntry::FREE
                }
            },
        };
        self.frames[frame.index()] = stored;
    }

    /// Stores `entry`'s slots followed by `slot` (a new sharer) as `frame`'s list, without
    /// touching charges: drops the old list's reference and takes the new one's, looking it up
    /// without copying and copying it only to store it new. `None` (changing nothing) if the
    /// pool is full, which reserve rules out.
    pub(super) fn store_appended(
        &mut self,
        frame: FrameIndex,
        entry: FrameEntry,
        kind: Kind,
        split: bool,
        causer: Option<DomainId>,
        slot: Slot,
    ) -> Option<FrameEntry> {
        let key = slots_key(entry);
        let list = match self.pool.recall_append(key, slot) {
            Some(list) => {
                // Another list than the old one (it has one more slot): the release below
                // cannot free it.
                if let Some(old) = entry.list() {
                    self.pool.release(old);
                }
                self.pool.retain(list, 1);
                list
            }
            None => self.append_slot(entry, key, slot)?,
        };
        let stored = FrameEntry::listed(kind, split, causer, list);
        self.frames[frame.index()] = stored;
        Some(stored)
    }

    /// [`Ledger::store_appended`]'s list when the pool's memo does not know it: looked up
    /// (and stored if new), then remembered.
    #[inline(never)]
    pub(super) fn append_slot(&mut self, entry: FrameEntry, key: u64, slot: Slot) -> Option<u16> {
        let (hash, found) = {
            let view = self.view(entry)?;
            self.pool.lookup(view.slots(), Some(slot))
        };
        let list = match found {
            Some(list) => {
                if let Some(old) = entry.list() {
                    self.pool.release(old);
                }
                self.pool.retain(list, 1);
                list
            }
            None => {
                let mut new = SlotList::new();
                let _ = new.extend_from_slice(self.view(entry)?.slots());
                let _ = new.push(slot);
                if self.pool.unused_lists() == 0
                    && entry.list().is_none_or(|old| self.pool.references(old) > 1)
                {
                    debug_assert!(false, "sharer pool full after reserve");
                    return None;
                }
                if let Some(old) = entry.list() {
                    self.pool.release(old);
                }
                match self.pool.insert(&new, hash) {
                    Ok(list) => list,
                    Err(_) => {
                        debug_assert!(false, "sharer pool full after check");
                        return None;
                    }
                }
            }
        };
        // Remembered only while the key still names a list in use.
        if entry.list().is_none_or(|old| self.pool.references(old) > 0) {
            self.pool.remember_append(key, slot, list);
        }
        Some(list)
    }

    /// Moves `frame` from `entry` to `new` slots of `kind` (empty = free), charging and
    /// uncharging the difference. Fails (changing nothing) only when the pool cannot hold the
    /// new list.
    pub(super) fn transition(
        &mut self,
        frame: FrameIndex,
        entry: FrameEntry,
        kind: Kind,
        causer: Option<DomainId>,
        split: bool,
        new: &[Slot],
    ) -> Result<(), Error> {
        self.pool_room(entry, new)?;
        let mut net = NetChange::new();
        let was_charged = match self.view(entry) {
            Some(old) => {
                net_change(&mut net, old.slots(), old.split, new, split);
                true
            }
            None => {
                net_change(&mut net, &[], false, new, split);
                false
            }
        };
        self.apply_net(&net, kind, causer, 1);
        match (was_charged, !new.is_empty()) {
            (false, true) => self.frames_in_use += 1,
            (true, false) => self.frames_in_use = checked_sub(self.frames_in_use, 1),
            _ => {}
        }
        self.store(frame, entry, kind, split, causer, new);
        Ok(())
    }

    /// Applies `times` the per-set change `net` in `kind`, caused by `causer`.
    #[inline]
    pub(super) fn apply_net(
        &mut self,
        net: &NetChange,
        kind: Kind,
        causer: Option<DomainId>,
        times: u64,
    ) {
        for &(set, delta) in net.iter() {
            if delta > 0 {
                self.charge(set, kind, delta.unsigned_abs() * times, causer);
            } else if delta < 0 {
                self.uncharge(set, kind, delta.unsigned_abs() * times, causer);
            }
        }
    }

    /// Adds `bytes` of `kind` to `set` (current, paid-for) and its ancestors' sums.
    #[inline]
    pub(super) fn charge(
        &mut self,
        set_id: SetId,
        kind: Kind,
        bytes: u64,
        causer: Option<DomainId>,
    ) {
        self.charge_inline(set_id, kind, bytes, causer);
    }

    /// [`Ledger::charge`], always inlined (the fast paths' charge, straight-line code).
    #[inline(always)]
    pub(super) fn charge_inline(
        &mut self,
        set_id: SetId,
        kind: Kind,
        bytes: u64,
        causer: Option<DomainId>,
    ) {
        self.charge_kinds(set_id, [(kind, bytes, causer)]);
    }

    /// [`Ledger::charge`] of a page (`anon`, caused by `owner`) and `table_bytes` of page
    /// tables (caused by `causer`) to the same set.
    #[inline(always)]
    pub(super) fn charge_page_and_tables(
        &mut self,
        set_id: SetId,
        owner: DomainId,
        causer: DomainId,
        table_bytes: u64,
    ) {
        self.charge_kinds(
            set_id,
            [
                (Kind::Anon, FRAME_BYTES, Some(owner)),
                (Kind::PageTables, table_bytes, Some(causer)),
            ],
        );
    }

    /// [`Ledger::charge`] of each `(kind, bytes, causer)` of `charges` (distinct kinds) to
    /// `set_id`: the same counters as that many charges, with one visit of the set and one
    /// walk up its ancestors for all of them (one copy of the code per count, unrolled).
    #[inline(always)]
    pub(super) fn charge_kinds<const N: usize>(
        &mut self,
        set_id: SetId,
        charges: [(Kind, u64, Option<DomainId>); N],
    ) {
        let set = self.sets.at_mut(set_id.index());
        for (kind, bytes, causer) in charges {
            let index = kind.index();
            // No peak to update: `current` only grows here (see `ChargeSet::peak_before`).
            set.current[index] += bytes;
            if let Some(causer) = causer {
                // A causer is a known domain (validated where the charge was decided), so
                // below MAX_DOMAINS: the mask spares a bounds check.
                debug_assert!(
                    causer.index() < MAX_DOMAINS,
                    "charge caused by an unknown domain"
                );
                set.caused[causer.index() % MAX_DOMAINS][index] += bytes;
            }
        }
        // The ancestors' sums of their descendants (the set's own subtree sums and its
        // charged total are derived from `current`).
        let mut cursor = set.parent;
        while let Some(id) = cursor {
            let set = self.sets.at_mut(id.index());
            let mut total = 0;
            for (kind, bytes, _) in charges {
                set.below[kind.index()] += bytes;
                total += bytes;
            }
            set.below_bytes += total;
            cursor = set.parent;
        }
    }

    /// Takes `bytes` of `kind` from `set`; the mirror of [`Ledger::charge`].
    #[inline]
    pub(super) fn uncharge(
        &mut self,
        set_id: SetId,
        kind: Kind,
        bytes: u64,
        causer: Option<DomainId>,
    ) {
        let index = kind.index();
        let set = self.sets.at_mut(set_id.index());
        // The peak so far, before `current` falls (`ChargeSet::peak_before`).
        set.peak_before[index] = set.peak_before[index].max(set.current[index]);
        set.current[index] = checked_sub(set.current[index], bytes);
        set.uncharged_total_bytes += bytes;
        set.uncharged[index] += bytes;
        if let Some(kinds) = causer.and_then(|causer| set.caused.get_mut(causer.index())) {
            kinds[index] = checked_sub(kinds[index], bytes);
        }
        let mut cursor = set.parent;
        while let Some(id) = cursor {
            let set = self.sets.at_mut(id.index());
            set.below[index] = checked_sub(set.below[index], bytes);
            set.below_bytes = checked_sub(set.below_bytes, bytes);
            cursor = set.parent;
        }
    }
}

/// How many of `frames`, from the first, have the entry `old` in `table` (a run of a
/// `ShareMany`: frames whose entries are all equal change alike). Four frames a step while
/// the run lasts (their entries compared together), one at a time at its end.
#[inline(never)]
pub(super) fn equal_run(table: &[FrameEntry], frames: &[FrameIndex], old: u64) -> usize {
    let mut run = 0;
    let (fours, _) = frames.as_chunks::<4>();
    for four in fours {
        if four_equal(table, four, old).is_none() {
            break;
        }
        run += 4;
    }
    run + frames[run..]
        .iter()
        .position(|frame| {
            table
                .get(frame.index())
                .is_none_or(|entry| entry.bits() != old)
        })
        .unwrap_or(frames.len() - run)
}

/// [`equal_run`] of `frames` in `table`, each entry of the run replaced by `new`: how many.
#[inline(never)]
pub(super) fn replace_run(
    table: &mut [FrameEntry],
    frames: &[FrameIndex],
    old: u64,
    new: FrameEntry,
) -> usize {
    let mut run = 0;
    let (fours, _) = frames.as_chunks::<4>();
    for four in fours {
        // The four entries checked before any is replaced.
        let Some([a, b, c, d]) = four_equal(table, four, old) else {
            break;
        };
        for index in [a, b, c, d] {
            table[index] = new;
        }
        run += 4;
    }
    for frame in &frames[run..] {
        match table.get_mut(frame.index()) {
            Some(entry) if entry.bits() == old => *entry = new,
            _ => break,
        }
        run += 1;
    }
    run
}

/// Stores `new` as the entry of every frame of `frames` (a run reserve found, unchanged
/// since: see [`Ledger::commit_share_many`]): how many. Four frames a step, one bounds check
/// for the four.
#[inline(never)]
pub(super) fn store_run(table: &mut [FrameEntry], frames: &[FrameIndex], new: FrameEntry) -> usize {
    let (fours, rest) = frames.as_chunks::<4>();
    for four in fours {
        let [a, b, c, d] = four.map(FrameIndex::index);
        if a.max(b).max(c).max(d) < table.len() {
            for index in [a, b, c, d] {
                table[index] = new;
            }
        } else {
            debug_assert!(false, "a reserved frame out of range");
        }
    }
    for frame in rest {
        if let Some(entry) = table.get_mut(frame.index()) {
            *entry = new;
        }
    }
    frames.len()
}

/// The table positions of four frames when all four are in `table` with the entry `old`
/// (compared together, without a branch per frame).
#[inline(always)]
fn four_equal(table: &[FrameEntry], four: &[FrameIndex; 4], old: u64) -> Option<[usize; 4]> {
    let [a, b, c, d] = four.map(FrameIndex::index);
    if a.max(b).max(c).max(d) >= table.len() {
        return None;
    }
    let differ = (table[a].bits() ^ old)
        | (table[b].bits() ^ old)
        | (table[c].bits() ^ old)
        | (table[d].bits() ^ old);
    (differ == 0).then_some([a, b, c, d])
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

    /// The runs four at a time find what one frame at a time finds, wherever the run ends
    /// (inside a group of four or in the tail) and whatever ends it (another entry, a frame
    /// past the table).
    #[test]
    fn runs_four_at_a_time_end_where_one_at_a_time_do() {
        let same = FrameEntry::inline(Kind::Anon, false, None, SetId(1), None);
        let other = FrameEntry::inline(Kind::Anon, false, None, SetId(2), None);
        let new = FrameEntry::inline(Kind::Anon, false, None, SetId(3), None);
        for length in 0..12u32 {
            for end in 0..=length {
                for past in [false, true] {
                    let mut table = vec![same; 16];
                    let mut frames: Vec<FrameIndex> = (0..length).map(FrameIndex).collect();
                    if end < length {
                        if past {
                            frames[end as usize] = FrameIndex(99);
                        } else {
                            table[end as usize] = other;
                        }
                    }
                    let expected = end as usize;
                    assert_eq!(equal_run(&table, &frames, same.bits()), expected);
                    let before = table.clone();
                    assert_eq!(replace_run(&mut table, &frames, same.bits(), new), expected);
                    for (index, entry) in table.iter().enumerate() {
                        let wanted = if index < expected { new } else { before[index] };
                        assert_eq!(*entry, wanted, "length {length} end {end} frame {index}");
                    }
                }
            }
        }
    }
}

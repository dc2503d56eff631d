//! The full recount: every figure recomputed from the frame table and compared with the
//! running counters, and the frames charged compared with the frames a caller's allocator
//! handed out. O(frames).

use super::*;

impl<'a> Ledger<'a> {
    /// The full recount of the books: [`audit`](Self::audit), and the frames the caller's
    /// allocator has handed out (`allocated_frames`, boot frames excluded) equal to the frames
    /// the ledger holds charged — a frame allocated but never charged, or freed in the
    /// allocator but still charged, fails it. O(frames).
    pub fn recount(&self, allocated_frames: u64) -> Result<(), &'static str> {
        self.audit()?;
        if allocated_frames != self.frames_in_use {
            return Err("frames allocated differ from frames charged");
        }
        Ok(())
    }

    /// Recomputes every figure from the frame table and compares it with the running
    /// counters: conservation, per-set current and paid-for sums, subtree sums, totals,
    /// sharer-list references. O(frames); for tests and debug builds.
    pub fn audit(&self) -> Result<(), &'static str> {
        let mut current = [[0u64; Kind::COUNT]; MAX_SETS];
        let mut paid_for = [0u64; MAX_SETS];
        let mut caused = [[0u64; Kind::COUNT]; MAX_SETS];
        let mut references = [0u32; SHARER_LISTS];
        let mut in_use = 0;
        let mut boot = 0;
        // Free frames are most of a large RAM: a run of 16 all-zero entries is skipped with
        // one OR per entry, then every entry of any other run is decoded and checked.
        for run in self.frames.chunks(16) {
            let free = match <&[FrameEntry; 16]>::try_from(run) {
                Ok(whole) => whole.iter().fold(0, |bits, entry| bits | entry.bits()) == 0,
                Err(_) => run.iter().all(|entry| entry.bits() == 0),
            };
            if free {
                continue;
            }
            for entry in run {
                match entry.usage() {
                    FrameUse::Free => {
                        if *entry != FrameEntry::FREE {
                            return Err("free frame with non-zero bytes");
                        }
                        continue;
                    }
                    FrameUse::Boot => {
                        boot += 1;
                        continue;
                    }
                    FrameUse::Charged(_) => in_use += 1,
                }
                if let Some(list) = entry.list() {
                    if usize::from(list) >= SHARER_LISTS || self.pool.references(list) == 0 {
                        return Err("frame refers to an unused sharer list");
                    }
                    references[usize::from(list)] += 1;
                    if self.pool.get(list).len() < 2 {
                        return Err("sharer list with fewer than two slots");
                    }
                }
                let Some(state) = self.decode(*entry) else {
                    return Err("undecodable frame");
                };
                if state.kind.is_mapped() != (state.mappers() > 0) {
                    return Err("mapped kind without mapper, or unmapped kind with one");
                }
                if let Some(causer) = state.causer {
                    if causer.index() >= self.domains.len() {
                        return Err("frame caused by an unknown domain");
                    }
                }
                for (index, slot) in state.slots.iter().enumerate() {
                    let set = slot.set.index();
                    if set >= self.sets.len() {
                        return Err("frame charged to an unknown set");
                    }
                    if slot
                        .domain
                        .is_some_and(|domain| domain.index() >= self.domains.len())
                    {
                        return Err("frame mapped by an unknown domain");
                    }
                    let bytes = state.slot_bytes(index);
                    current[set][state.kind.index()] += bytes;
                    let causer_set = state.causer.map(|causer| self.domains[causer.index()].set);
                    if causer_set.is_some_and(|causer_set| causer_set != slot.set) {
                        paid_for[set] += bytes;
                    }
                    if state.causer.is_some() {
                        caused[set][state.kind.index()] += bytes;
                    }
                }
            }
        }
        if in_use != self.frames_in_use {
            return Err("frames-in-use counter is off");
        }
        if boot != self.boot_frames {
            return Err("boot-frames counter is off");
        }
        if !self.conservation().ok {
            return Err("conservation fails");
        }
        let mut below = [[0u64; Kind::COUNT]; MAX_SETS];
        for (index, set) in self.sets.iter().enumerate() {
            if set.current != current[index] {
                return Err("a set's current differs from its frames");
            }
            let others: u64 = self
                .domains
                .iter()
                .enumerate()
                .filter(|(_, domain)| domain.set != SetId(index as u16))
                .map(|(domain, _)| set.caused_by(domain))
                .sum();
            if others != paid_for[index] {
                return Err("a set's paid-for differs from its frames");
            }
            let mut by_causer = [0u64; Kind::COUNT];
            for kinds in &set.caused {
                for (sum, bytes) in by_causer.iter_mut().zip(kinds) {
                    *sum += bytes;
                }
            }
            if by_causer != caused[index] {
                return Err("a set's by-causer table differs from its frames");
            }
            if set.uncharged.iter().sum::<u64>() != set.uncharged_total_bytes {
                return Err("uncharged per kind does not add up to the uncharged total");
            }
            let mut cursor = set.parent;
            while let Some(id) = cursor {
                for (sum, bytes) in below[id.index()].iter_mut().zip(set.current) {
                    *sum += bytes;
                }
                cursor = self.sets[id.index()].parent;
            }
        }
        for (index, set) in self.sets.iter().enumerate() {
            if set.below != below[index] || set.below_bytes != below[index].iter().sum::<u64>() {
                return Err("a set's sums below it differ from its descendants");
            }
        }
        for (list, count) in references.iter().enumerate() {
            if self.pool.references(list as u16) != *count {
                return Err("sharer-list references differ from the frames");
            }
        }
        Ok(())
    }
}

//! Moving a domain to another charge set. The `move` policy decides what happens to the
//! charges the domain holds in its old set: `stay` (cgroup v2: they stay where they were made,
//! and are freed from there) or `migrate` (cgroup v1's `move_charge_at_immigrate`: they go with
//! it, checked against the new set's limits first, all or nothing).
//!
//! What "the charges the domain holds" are, exactly (a frame entry records a causer and its
//! slots, not an owner, so the rule is read off those):
//! - a mapped frame (`anon`, `cow`) through the domain's own slot, when that slot's set is
//!   the old set: the bytes that slot pays move (the whole frame when the domain is its
//!   paying holder, its share under `cow = split`, nothing when another slot pays) and the
//!   slot now names the new set, so later shares, releases and splits go there too;
//! - an unmapped frame (`pagetables`, `kernel`) the old set pays whole and the domain caused:
//!   the tables its own faults and calls made and the kernel objects it caused (a boot
//!   domain's control block and capability table are caused by itself).
//!
//! Not moved: frames another domain caused (a spawned domain's kernel objects and the tables
//! its spawn made are caused by the spawner, as Linux charges them to the forker), frames
//! another set pays (a copy the holder paid under `cow = holder`), slots the domain left
//! (`release = stay`) and message buffers (they belong to the message in flight).

use super::*;

/// What moving a domain does to one frame: its new slots and the bytes (of its kind) that go
/// from the old set to the new one.
struct FrameMove {
    kind: Kind,
    split: bool,
    causer: Option<DomainId>,
    slots: SlotList,
    bytes: u64,
}

impl<'a> Ledger<'a> {
    /// Moves `domain` to set `to`. Under `move = stay` only the binding changes: what the
    /// domain causes from now on is charged to `to` (per the policies), and everything already
    /// charged stays where it is. Under `move = migrate` the charges it holds in its old set
    /// (see the module docs for which) go with it, all or nothing: they are checked first
    /// against the limit and per-kind sub-limit of `to` and of each of its ancestors that does
    /// not also hold the old set; a failure is [`Error::OverLimit`] with nothing moved, counted
    /// as one denial of the failing kind at the set whose limit failed. Returns the bytes
    /// moved. Moving to the set it is in already changes nothing. O(frames) under `migrate`.
    pub fn move_domain(&mut self, domain: DomainId, to: SetId) -> Result<u64, Error> {
        let from = self.domain_set(domain)?;
        self.set(to)?;
        if to == SetId::KERNEL {
            // The reserve set pays for the kernel's own buffers; no domain is bound to it.
            return Err(Error::UnknownSet(to));
        }
        if from == to {
            self.emit(|| TraceRecord::Move { domain, set: to });
            return Ok(0);
        }
        let event = ChargeEvent {
            what: EventKind::Move,
            kind: Kind::Anon,
            causer: Some(domain),
            candidates: Candidates {
                holder: Some(from),
                departing: Some(from),
                surviving: Some(to),
                ..Candidates::default()
            },
            sharers: 0,
            headroom: Headroom::UNKNOWN,
        };
        let migrate = match self.policies.moves.decide(&event) {
            Decision::Stay => false,
            Decision::Migrate => true,
            _ => return Err(Error::BadDecision),
        };
        let mut moved = [0u64; Kind::COUNT];
        if migrate {
            let mut need = PoolNeed::new();
            for index in 0..self.frames.len() {
                let Some(change) = self.frame_move(FrameIndex(index as u32), domain, from, to)
                else {
                    continue;
                };
                moved[change.kind.index()] += change.bytes;
                need.add(&self.pool, &change.slots);
            }
            let lists = need.count();
            if lists > 0 && lists + POOL_DEPARTURE_RESERVE > self.pool.unused_lists() {
                return Err(Error::PoolFull);
            }
            let mut charges = Charges::new();
            for kind in Kind::ALL {
                let bytes = moved[kind.index()] as i64;
                add_charge(&mut charges, to, kind, bytes, Some(domain))?;
                add_charge(&mut charges, from, kind, -bytes, Some(domain))?;
            }
            if let Err(denial) = self.check(&charges) {
                // The new set pays; the limit that failed is its own or an ancestor's.
                self.count_denial(denial);
                self.emit(|| TraceRecord::Move { domain, set: to });
                return Err(Error::OverLimit(denial));
            }
            for index in 0..self.frames.len() {
                let frame = FrameIndex(index as u32);
                let Some(change) = self.frame_move(frame, domain, from, to) else {
                    continue;
                };
                let entry = self.frames[index];
                let result = self.transition(
                    frame,
                    entry,
                    change.kind,
                    change.causer,
                    change.split,
                    &change.slots,
                );
                debug_assert!(result.is_ok(), "reserved move failed");
            }
            for kind in Kind::ALL {
                self.sets[from.index()].moved_out[kind.index()] += moved[kind.index()];
                self.sets[to.index()].moved_in[kind.index()] += moved[kind.index()];
            }
        }
        self.domains[domain.index()].set = to;
        self.emit(|| TraceRecord::Move { domain, set: to });
        Ok(moved.iter().sum())
    }

    /// What moving `domain` from `from` to `to` under `migrate` does to `frame`, if anything.
    fn frame_move(
        &self,
        frame: FrameIndex,
        domain: DomainId,
        from: SetId,
        to: SetId,
    ) -> Option<FrameMove> {
        let entry = *self.frames.get(frame.index())?;
        if entry.is_free() {
            return None;
        }
        let view = self.view(entry)?;
        let slots = view.slots();
        let mut new = SlotList::new();
        let _ = new.extend_from_slice(slots);
        let bytes = if view.kind.is_mapped() {
            let position = slots
                .iter()
                .position(|slot| slot.domain == Some(domain) && slot.set == from)?;
            new[position].set = to;
            slot_bytes(view.split, slots.len(), position)
        } else {
            if view.kind == Kind::Msgbuf || view.causer != Some(domain) {
                return None;
            }
            match slots {
                [slot] if slot.set == from => {
                    new[0].set = to;
                    FRAME_BYTES
                }
                _ => return None,
            }
        };
        Some(FrameMove {
            kind: view.kind,
            split: view.split,
            causer: view.causer,
            slots: new,
            bytes,
        })
    }
}

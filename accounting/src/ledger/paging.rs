//! Working sets: a set's `high` bound (cgroup v2's `memory.high`) and the pager's counters.
//!
//! A `high` bound never denies a charge: the ledger only answers whether a domain's path to
//! the root has a set above its bound ([`Ledger::over_high`]), and the kernel then asks the
//! domain's keeper to reclaim. Evictions, page-ins and those requests are counted per set
//! ([`Ledger::note_paging`]) and traced, so a replay counts them too.

use super::*;
use crate::model::PagingEvent;

impl Ledger<'_> {
    /// Changes a set's `high` bound (`None`: no bound).
    pub fn set_high(&mut self, set: SetId, high_bytes: Option<u64>) -> Result<(), Error> {
        self.sets
            .get_mut(set.index())
            .ok_or(Error::UnknownSet(set))?
            .high_bytes = high_bytes;
        self.emit(|| TraceRecord::High { set, high_bytes });
        Ok(())
    }

    /// The first set on `domain`'s path to the root (its own set first) whose subtree pays
    /// more than its `high` bound: (the set, what its subtree pays, the bound).
    pub fn over_high(&self, domain: DomainId) -> Option<(SetId, u64, u64)> {
        let mut set = Some(self.domain(domain).ok()?.set);
        while let Some(id) = set {
            let record = self.sets.get(id.index())?;
            if let Some(high) = record.high_bytes {
                if record.subtree_bytes() > high {
                    return Some((id, record.subtree_bytes(), high));
                }
            }
            set = record.parent;
        }
        None
    }

    /// Counts what a pager did to `domain`'s memory, or was asked: an eviction or a page-in at
    /// the domain's set, a reclaim request at the set above its bound.
    pub fn note_paging(&mut self, domain: DomainId, event: PagingEvent) -> Result<(), Error> {
        let own = self.domain(domain)?.set;
        let set = match event {
            PagingEvent::OverHigh(set) => set,
            _ => own,
        };
        let record = self
            .sets
            .get_mut(set.index())
            .ok_or(Error::UnknownSet(set))?;
        match event {
            PagingEvent::Evict => record.evictions += 1,
            PagingEvent::PageIn => record.page_ins += 1,
            PagingEvent::OverHigh(_) => record.high_events += 1,
        }
        self.emit(|| TraceRecord::Paging { domain, event });
        Ok(())
    }
}

//! Queries (sets, domains, frames, conservation) and the set/domain tree: creating sets
//! and domains, limits, domain states, boot frames.

use super::*;

impl<'a> Ledger<'a> {
    /// The policies the ledger runs under.
    pub fn policies(&self) -> Policies {
        self.policies
    }

    /// Frames in the ledger.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// The frame entries.
    pub fn frames(&self) -> &[FrameEntry] {
        self.frames
    }

    /// Frames in use (charged), boot frames excluded.
    pub fn frames_in_use(&self) -> u64 {
        self.frames_in_use
    }

    /// Frames marked `boot`.
    pub fn boot_frames(&self) -> u64 {
        self.boot_frames
    }

    /// Sharer lists in use in the pool.
    pub fn sharer_lists_in_use(&self) -> usize {
        self.pool.used_lists()
    }

    /// Every set, by id.
    pub fn sets(&self) -> &[ChargeSet] {
        &self.sets
    }

    /// Every domain, by id.
    pub fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// Set `set`.
    #[inline]
    pub fn set(&self, set: SetId) -> Result<&ChargeSet, Error> {
        self.sets.get(set.index()).ok_or(Error::UnknownSet(set))
    }

    /// Domain `domain`.
    #[inline]
    pub fn domain(&self, domain: DomainId) -> Result<&Domain, Error> {
        self.domains
            .get(domain.index())
            .ok_or(Error::UnknownDomain(domain))
    }

    /// The set named `name`.
    pub fn set_by_name(&self, name: &str) -> Option<SetId> {
        self.sets
            .iter()
            .position(|set| set.name.as_str() == name)
            .map(|index| SetId(index as u16))
    }

    /// The domain named `name`.
    pub fn domain_by_name(&self, name: &str) -> Option<DomainId> {
        self.domains
            .iter()
            .position(|domain| domain.name.as_str() == name)
            .map(|index| DomainId(index as u16))
    }

    /// The set domain `domain` is bound to.
    #[inline]
    pub fn domain_set(&self, domain: DomainId) -> Result<SetId, Error> {
        self.domain(domain).map(|domain| domain.set)
    }

    /// The entry of `frame`.
    #[inline]
    pub fn entry(&self, frame: FrameIndex) -> Result<FrameEntry, Error> {
        self.frames
            .get(frame.index())
            .copied()
            .ok_or(Error::FrameOutOfRange(frame))
    }

    /// The parties of `frame` ([`Error::FrameFree`] / [`Error::BootFrame`] if uncharged).
    pub fn frame_state(&self, frame: FrameIndex) -> Result<FrameState, Error> {
        let entry = self.entry(frame)?;
        match entry.usage() {
            FrameUse::Free => Err(Error::FrameFree(frame)),
            FrameUse::Boot => Err(Error::BootFrame(frame)),
            FrameUse::Charged(_) => self.decode(entry).ok_or(Error::FrameFree(frame)),
        }
    }

    /// How many domains map `frame` (0 for a free, boot or unmapped-kind frame). A write fault
    /// on a frame with one mapper only restores write access: no copy, no charge.
    #[inline]
    pub fn mappers(&self, frame: FrameIndex) -> Result<usize, Error> {
        let entry = self.entry(frame)?;
        if entry.is_free() {
            return Ok(0);
        }
        let mut one = Slot::NONE;
        Ok(mappers(self.slots(&entry, &mut one)))
    }

    /// Whether `domain` maps `frame`.
    #[inline]
    pub fn maps(&self, frame: FrameIndex, domain: DomainId) -> Result<bool, Error> {
        let entry = self.entry(frame)?;
        if entry.is_free() {
            return Ok(false);
        }
        let mut one = Slot::NONE;
        Ok(self
            .slots(&entry, &mut one)
            .iter()
            .any(|slot| slot.domain == Some(domain)))
    }

    /// Every frame `domain` maps, in frame order. Scans the whole frame table (O(frames)): for
    /// tests and for an exit path that keeps no list of its own.
    pub fn frames_mapped_by(&self, domain: DomainId) -> impl Iterator<Item = FrameIndex> + '_ {
        (0..self.frames.len()).filter_map(move |index| {
            let frame = FrameIndex(index as u32);
            self.maps(frame, domain).ok()?.then_some(frame)
        })
    }

    /// The conservation check: bytes charged over all sets (kernel reserve included) against
    /// 4096 × frames in use. O(sets).
    pub fn conservation(&self) -> Conservation {
        let charged_bytes = self.sets.iter().map(ChargeSet::current_bytes).sum();
        let in_use_bytes = self.frames_in_use * FRAME_BYTES;
        Conservation {
            charged_bytes,
            in_use_bytes,
            ok: charged_bytes == in_use_bytes,
        }
    }

    /// Whether [`Ledger::create_set`] of `name` under `parent` would succeed, changing nothing:
    /// the error it would return (a bad or taken name, an unknown parent, too deep, the set
    /// table full), else the new set's depth. A system call checks this in its decode half, so
    /// that creating the set cannot fail afterwards.
    pub fn check_new_set(&self, name: &str, parent: Option<SetId>) -> Result<usize, Error> {
        let name = checked_name(name)?;
        if self.set_by_name(&name).is_some() {
            return Err(Error::DuplicateName);
        }
        let depth = match parent {
            Some(parent) => usize::from(self.set(parent)?.depth) + 1,
            None => 1,
        };
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        if self.sets.is_full() {
            return Err(Error::TooManySets);
        }
        Ok(depth)
    }

    /// Creates a charge set under `parent` (or a root) with a limit on its subtree bytes.
    pub fn create_set(
        &mut self,
        name: &str,
        parent: Option<SetId>,
        limit_bytes: Option<u64>,
    ) -> Result<SetId, Error> {
        let depth = self.check_new_set(name, parent)?;
        let name = checked_name(name)?;
        let id = SetId(self.sets.len() as u16);
        self.sets.push(ChargeSet::new(
            name.clone(),
            parent,
            depth as u8,
            limit_bytes,
        ))?;
        self.refresh_limited();
        self.emit(|| TraceRecord::Set {
            id,
            name,
            parent,
            limit_bytes,
        });
        Ok(id)
    }

    /// Records whether any set has a limit or sub-limit (after every change to one).
    fn refresh_limited(&mut self) {
        let limited = self.sets.iter().any(|set| {
            set.limit_bytes.is_some() || set.kind_limit_bytes.iter().any(Option::is_some)
        });
        self.limited = u8::from(limited);
        self.refresh_unusual();
    }

    /// Changes a set's limit. A limit below current usage is allowed: the set then cannot
    /// grow until it is back under it.
    pub fn set_limit(&mut self, set: SetId, limit_bytes: Option<u64>) -> Result<(), Error> {
        self.sets
            .get_mut(set.index())
            .ok_or(Error::UnknownSet(set))?
            .limit_bytes = limit_bytes;
        self.refresh_limited();
        self.emit(|| TraceRecord::Limit { set, limit_bytes });
        Ok(())
    }

    /// Changes a set's per-kind sub-limit (e.g. at most 48 KiB of `msgbuf`).
    pub fn set_kind_limit(
        &mut self,
        set: SetId,
        kind: Kind,
        limit_bytes: Option<u64>,
    ) -> Result<(), Error> {
        self.sets
            .get_mut(set.index())
            .ok_or(Error::UnknownSet(set))?
            .kind_limit_bytes[kind.index()] = limit_bytes;
        self.refresh_limited();
        self.emit(|| TraceRecord::KindLimit {
            set,
            kind,
            limit_bytes,
        });
        Ok(())
    }

    /// Creates a domain bound (for life) to `set`, in state `running`.
    pub fn create_domain(&mut self, name: &str, set: SetId) -> Result<DomainId, Error> {
        let name = checked_name(name)?;
        self.set(set)?;
        if self.domain_by_name(&name).is_some() {
            return Err(Error::DuplicateName);
        }
        let id = DomainId(self.domains.len() as u16);
        self.domains
            .push(Domain {
                name: name.clone(),
                set,
                state: DomainState::Running,
                exit_code: 0,
                last_denial: None,
                keeper_faults: 0,
                restarts: 0,
                keeper_choices: KeeperChoices::default(),
                pending_choice: None,
            })
            .map_err(|_| Error::TooManyDomains)?;
        self.emit(|| TraceRecord::Domain { id, name, set });
        Ok(id)
    }

    /// Undoes [`create_domain`](Self::create_domain) of a domain whose creation failed before
    /// it held anything (its kernel objects were refused): it must be the last domain created,
    /// cause or map no frame and be owed nothing. Its id and name are free again, so a refused
    /// spawn leaves the books (and the 64 domain records) as they were. O(frames).
    pub fn forget_domain(&mut self, domain: DomainId) -> Result<(), Error> {
        if domain.index() + 1 != self.domains.len() {
            return Err(Error::UnknownDomain(domain));
        }
        let used = self.frames.iter().any(|entry| {
            self.decode(*entry).is_some_and(|state| {
                state.causer == Some(domain)
                    || state.slots.iter().any(|slot| slot.domain == Some(domain))
            })
        }) || self
            .sets
            .iter()
            .any(|set| set.caused_by(domain.index()) != 0);
        if used {
            return Err(Error::UnknownDomain(domain));
        }
        self.domains.pop();
        self.emit(|| TraceRecord::ForgetDomain { id: domain });
        Ok(())
    }

    /// Records a domain's state (and stop reason) for the report.
    /// A stop is counted once, at the domain's set, in that set's `stops`.
    pub fn set_domain_state(&mut self, domain: DomainId, state: DomainState) -> Result<(), Error> {
        let record = self
            .domains
            .get_mut(domain.index())
            .ok_or(Error::UnknownDomain(domain))?;
        let newly_stopped = match (record.state, state) {
            (DomainState::Stopped(_), _) => None,
            (_, DomainState::Stopped(reason)) => Some(reason),
            _ => None,
        };
        record.state = state;
        let set = record.set;
        if let (Some(reason), Some(set)) = (newly_stopped, self.sets.get_mut(set.index())) {
            set.stops[reason.index()] += 1;
        }
        self.emit(|| TraceRecord::State { domain, state });
        Ok(())
    }

    /// Counts a fault `domain` sent its keeper (`restart`: a system call that will run again
    /// from the beginning, a send a limit refused), for reports; traced, so a replay counts it
    /// too.
    pub fn note_keeper_fault(&mut self, domain: DomainId, restart: bool) -> Result<(), Error> {
        let record = self
            .domains
            .get_mut(domain.index())
            .ok_or(Error::UnknownDomain(domain))?;
        record.keeper_faults += 1;
        if restart {
            record.restarts += 1;
        }
        self.emit(|| TraceRecord::KeeperFault { domain, restart });
        Ok(())
    }

    /// Records how `domain`'s next keeper-decided charge of `kind` is decided (`Cow` under
    /// `cow = keeper`, `Msgbuf` under `msgbuf = keeper`): the set its keeper named, or the
    /// fallback and why. Counted for the report and traced, so a replay decides the same.
    /// Under a policy for `kind` that asks no keeper it is ignored: a replay of a keeper run
    /// under another policy then counts and decides as a real run under that policy would.
    pub fn set_keeper_choice(
        &mut self,
        domain: DomainId,
        kind: Kind,
        choice: KeeperChoice,
    ) -> Result<(), Error> {
        if let Some(set) = choice.set() {
            self.set(set)?;
        }
        let asks = match kind {
            Kind::Cow => self.policies.cow.asks_keeper(),
            Kind::Msgbuf => self.policies.msgbuf.asks_keeper(),
            _ => return Err(Error::BadDecision),
        };
        let record = self
            .domains
            .get_mut(domain.index())
            .ok_or(Error::UnknownDomain(domain))?;
        if !asks {
            return Ok(());
        }
        record.keeper_choices.count(choice);
        record.pending_choice = Some((kind, choice));
        self.emit(|| TraceRecord::KeeperChoice {
            domain,
            choice: Some((kind, choice)),
        });
        Ok(())
    }

    /// Forgets `domain`'s pending keeper choice (its charge was made, or refused).
    pub fn clear_keeper_choice(&mut self, domain: DomainId) -> Result<(), Error> {
        let record = self
            .domains
            .get_mut(domain.index())
            .ok_or(Error::UnknownDomain(domain))?;
        if record.pending_choice.take().is_some() {
            self.emit(|| TraceRecord::KeeperChoice {
                domain,
                choice: None,
            });
        }
        Ok(())
    }

    /// `domain`'s pending keeper choice, if any, with the kind of charge it is for.
    pub fn keeper_choice(&self, domain: DomainId) -> Option<(Kind, KeeperChoice)> {
        self.domains.get(domain.index())?.pending_choice
    }

    /// The set a keeper named for `domain`'s next keeper-decided charge of `kind`, if it named
    /// one.
    pub(super) fn chosen_set(&self, domain: DomainId, kind: Kind) -> Option<SetId> {
        match self.domains.get(domain.index())?.pending_choice? {
            (pending, choice) if pending == kind => choice.set(),
            _ => None,
        }
    }

    /// Records that `domain` exited with `code` (state `Exited`, and the code for reports).
    pub fn set_domain_exited(&mut self, domain: DomainId, code: i32) -> Result<(), Error> {
        self.domains
            .get_mut(domain.index())
            .ok_or(Error::UnknownDomain(domain))?
            .exit_code = code;
        self.set_domain_state(domain, DomainState::Exited)
    }

    /// Marks `frame` as the kernel's own: counted as `boot`, never charged.
    pub fn mark_boot(&mut self, frame: FrameIndex) -> Result<(), Error> {
        self.mark_boot_range(frame, 1)
    }

    /// Marks frames `first..first + count` as the kernel's own; all or none.
    pub fn mark_boot_range(&mut self, first: FrameIndex, count: u32) -> Result<(), Error> {
        let end = first.index().saturating_add(count as usize);
        if end > self.frames.len() {
            return Err(Error::FrameOutOfRange(FrameIndex(
                u32::try_from(end.saturating_sub(1)).unwrap_or(u32::MAX),
            )));
        }
        let range = &mut self.frames[first.index()..end];
        if let Some(offset) = range.iter().position(|entry| !entry.is_free()) {
            let frame = FrameIndex(first.0 + offset as u32);
            return Err(match range[offset].usage() {
                FrameUse::Boot => Error::BootFrame(frame),
                _ => Error::FrameInUse(frame),
            });
        }
        range.fill(FrameEntry::BOOT);
        self.boot_frames += u64::from(count);
        self.emit(|| TraceRecord::Boot { first, count });
        Ok(())
    }
}

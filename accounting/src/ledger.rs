//! The ledger: charge sets, domains and the per-frame table, changed only through two-phase
//! operations that keep the books balanced to the byte.
//!
//! Invariants, after every public call:
//! - conservation: the bytes charged over all sets equal 4096 × frames in use;
//! - every set's `subtree` is its `current` plus its children's `subtree`;
//! - a charge that was committed fit under the limit and per-kind sub-limit of its payer and of
//!   every ancestor (net of what the same operation uncharged there); so a set at or over its
//!   limit never grows;
//! - an operation that fails changes nothing, except a denied one, which counts one denial;
//! - a frame's charge is the sum of its slots' charges: slot 0 pays all of it (whole), or every
//!   slot pays `4096 / n` and slot 0 also the remainder (split).

use crate::error::{Denial, Error};
use crate::event::{Candidates, ChargeEvent, Decision, EventKind, Policies, Policy, PolicyKey};
use crate::frame::{FrameEntry, FrameUse};
use crate::ids::{
    split_share_bytes, valid_name, DomainId, FrameIndex, Kind, Name, SetId, FRAME_BYTES, MAX_DEPTH,
    MAX_DOMAINS, MAX_SETS, MAX_SHARERS, PLAN_CHARGES, POOL_DEPARTURE_RESERVE, SHARER_LISTS,
};
use crate::model::{ChargeSet, Conservation, Domain, DomainState};
use crate::plan::{Op, Plan};
use crate::sharers::{SharerPool, Slot, SlotList};
use crate::trace::{PolicyName, TraceHook, TraceRecord, FRAMES_PER_RECORD};

/// What an unmap left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmapped {
    /// Other domains still map the frame; the caller must not free it.
    StillMapped,
    /// That was the last mapper: the frame was uncharged from everyone and is free in the
    /// ledger; the caller must free the physical frame.
    Freed,
}

/// The parties of a charged frame, decoded from its entry (and sharer list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameState {
    /// The frame's kind.
    pub kind: Kind,
    /// Whether every slot pays a share (else slot 0 pays it all).
    pub split: bool,
    /// The domain that caused the allocation.
    pub causer: Option<DomainId>,
    /// The slots; slot 0 is the holder.
    pub slots: SlotList,
}

impl FrameState {
    /// Domains mapping the frame.
    pub fn mappers(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.domain.is_some())
            .count()
    }

    /// Bytes slot `slot` pays.
    pub fn slot_bytes(&self, slot: usize) -> u64 {
        if self.split {
            split_share_bytes(self.slots.len(), slot)
        } else if slot == 0 {
            FRAME_BYTES
        } else {
            0
        }
    }

    /// The holder: the set of slot 0.
    pub fn holder(&self) -> Option<SetId> {
        self.slots.first().map(|slot| slot.set)
    }
}

/// One aggregated charge of a plan: `bytes` (negative = uncharge) of `kind` to `set`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Charge {
    set: SetId,
    kind: Kind,
    bytes: i64,
    causer: Option<DomainId>,
}

type Charges = heapless::Vec<Charge, PLAN_CHARGES>;
type NetChange = heapless::Vec<(SetId, i64), { 2 * MAX_SHARERS }>;

fn add_charge(
    charges: &mut Charges,
    set: SetId,
    kind: Kind,
    bytes: i64,
    causer: Option<DomainId>,
) -> Result<(), Error> {
    if bytes == 0 {
        return Ok(());
    }
    if let Some(charge) = charges
        .iter_mut()
        .find(|charge| charge.set == set && charge.kind == kind)
    {
        charge.bytes += bytes;
        return Ok(());
    }
    charges
        .push(Charge {
            set,
            kind,
            bytes,
            causer,
        })
        .map_err(|_| Error::BadPlan)
}

fn add_net(net: &mut NetChange, set: SetId, bytes: i64) {
    if let Some(entry) = net.iter_mut().find(|entry| entry.0 == set) {
        entry.1 += bytes;
    } else {
        // Two states of at most MAX_SHARERS slots each: room for every set.
        let _ = net.push((set, bytes));
    }
}

/// Per-set change of charges from `old` to `new` (either may be "free").
fn net_change(old: Option<&FrameState>, new: Option<&FrameState>) -> NetChange {
    let mut net = NetChange::new();
    if let Some(old) = old {
        for (index, slot) in old.slots.iter().enumerate() {
            add_net(&mut net, slot.set, -(old.slot_bytes(index) as i64));
        }
    }
    if let Some(new) = new {
        for (index, slot) in new.slots.iter().enumerate() {
            add_net(&mut net, slot.set, new.slot_bytes(index) as i64);
        }
    }
    net
}

/// Sharer lists an operation may need, counted without double-counting equal lists.
struct PoolNeed {
    lists: heapless::Vec<SlotList, 8>,
    more: usize,
}

impl PoolNeed {
    fn new() -> Self {
        PoolNeed {
            lists: heapless::Vec::new(),
            more: 0,
        }
    }

    fn add(&mut self, pool: &SharerPool, slots: &[Slot]) {
        if slots.len() <= 1 || pool.find(slots).is_some() {
            return;
        }
        if self.lists.iter().any(|list| list.as_slice() == slots) {
            return;
        }
        match SlotList::from_slice(slots) {
            Ok(list) if self.lists.push(list.clone()).is_ok() => {}
            _ => self.more += 1,
        }
    }

    fn count(&self) -> usize {
        self.lists.len() + self.more
    }
}

/// A placeholder policy for [`Ledger::empty`]: every decision is `Stay`, which fits no event
/// but a departure, so an unset ledger charges nothing by policy.
struct Unset;

impl Policy for Unset {
    fn key(&self) -> PolicyKey {
        PolicyKey::Release
    }

    fn name(&self) -> &'static str {
        "unset"
    }

    fn decide(&self, _event: &ChargeEvent) -> Decision {
        Decision::Stay
    }
}

/// The ledger. Holds the caller's frame slice (one [`FrameEntry`] per RAM frame) and fixed
/// tables; about 100 KB, so a kernel keeps it in a static ([`Ledger::empty`] is `const`).
pub struct Ledger<'a> {
    pub(crate) frames: &'a mut [FrameEntry],
    pub(crate) sets: heapless::Vec<ChargeSet, MAX_SETS>,
    pub(crate) domains: heapless::Vec<Domain, MAX_DOMAINS>,
    pub(crate) pool: SharerPool,
    pub(crate) policies: Policies,
    pub(crate) frames_in_use: u64,
    pub(crate) boot_frames: u64,
    hook: Option<TraceHook>,
}

/// A reserved plan: every charge fits; [`Reservation::commit`] applies it and cannot fail.
/// Dropping it instead changes nothing. It borrows the ledger, so nothing can change between
/// reserve and commit.
#[must_use = "a reservation changes nothing until committed"]
pub struct Reservation<'l, 'a, 'p, 'f> {
    ledger: &'l mut Ledger<'a>,
    plan: &'p Plan<'f>,
}

impl Reservation<'_, '_, '_, '_> {
    /// Applies the reserved plan. Cannot fail.
    pub fn commit(self) {
        self.ledger.commit_plan(self.plan);
    }
}

impl Ledger<'static> {
    /// A ledger with no frames, no sets and placeholder policies; `const`, so a kernel can put
    /// it in a static and then call [`Ledger::reset`].
    pub const fn empty() -> Ledger<'static> {
        Ledger {
            frames: &mut [],
            sets: heapless::Vec::new(),
            domains: heapless::Vec::new(),
            pool: SharerPool::new(),
            policies: Policies {
                cow: &Unset,
                msgbuf: &Unset,
                pagetable: &Unset,
                release: &Unset,
            },
            frames_in_use: 0,
            boot_frames: 0,
            hook: None,
        }
    }
}

impl<'a> Ledger<'a> {
    /// A ledger over `frames` (one entry per RAM frame; every entry is reset to free) running
    /// under `policies`, with the built-in `kernel` set (id 0) and no domains.
    pub fn new(frames: &'a mut [FrameEntry], policies: Policies) -> Ledger<'a> {
        let mut ledger = Ledger {
            frames: &mut [],
            sets: heapless::Vec::new(),
            domains: heapless::Vec::new(),
            pool: SharerPool::new(),
            policies,
            frames_in_use: 0,
            boot_frames: 0,
            hook: None,
        };
        ledger.reset(frames, policies);
        ledger
    }

    /// Starts over with `frames` and `policies`: every frame free, only the `kernel` set, no
    /// domains, no trace hook.
    pub fn reset(&mut self, frames: &'a mut [FrameEntry], policies: Policies) {
        frames.fill(FrameEntry::FREE);
        self.frames = frames;
        self.sets.clear();
        self.domains.clear();
        self.pool = SharerPool::new();
        self.policies = policies;
        self.frames_in_use = 0;
        self.boot_frames = 0;
        self.hook = None;
        let mut name = Name::new();
        // "kernel" fits in NAME_BYTES.
        let _ = name.push_str("kernel");
        let _ = self.sets.push(ChargeSet::new(name, None, 1, None));
    }

    /// Sets (or clears) the function called with every trace record. Setting one emits
    /// `ledger` and `policies` records, then records that rebuild the sets, limits, domains,
    /// domain states and boot frames that exist already, so a replay starts from the same
    /// tables. Frames charged before the hook was set are not traced: set it before the first
    /// charge (right after [`Ledger::new`] or [`Ledger::reset`] is simplest).
    pub fn set_trace_hook(&mut self, hook: Option<TraceHook>) {
        self.hook = hook;
        let Some(hook) = hook else {
            return;
        };
        hook(&TraceRecord::Ledger {
            frames: u32::try_from(self.frames.len()).unwrap_or(u32::MAX),
        });
        let policies = self.policies;
        hook(&TraceRecord::Policies {
            names: PolicyKey::ALL
                .map(|key| PolicyName::try_from(policies.get(key).name()).unwrap_or_default()),
        });
        for (index, set) in self.sets.iter().enumerate() {
            let id = SetId(index as u16);
            if index > 0 {
                hook(&TraceRecord::Set {
                    id,
                    name: set.name.clone(),
                    parent: set.parent,
                    limit_bytes: set.limit_bytes,
                });
            } else if set.limit_bytes.is_some() {
                hook(&TraceRecord::Limit {
                    set: id,
                    limit_bytes: set.limit_bytes,
                });
            }
            for kind in Kind::ALL {
                if let Some(limit_bytes) = set.kind_limit_bytes[kind.index()] {
                    hook(&TraceRecord::KindLimit {
                        set: id,
                        kind,
                        limit_bytes: Some(limit_bytes),
                    });
                }
            }
        }
        for (index, domain) in self.domains.iter().enumerate() {
            let id = DomainId(index as u16);
            hook(&TraceRecord::Domain {
                id,
                name: domain.name.clone(),
                set: domain.set,
            });
            if domain.state != DomainState::Running {
                hook(&TraceRecord::State {
                    domain: id,
                    state: domain.state,
                });
            }
        }
        let mut index = 0;
        while index < self.frames.len() {
            if self.frames[index].usage() != FrameUse::Boot {
                index += 1;
                continue;
            }
            let first = index;
            while index < self.frames.len() && self.frames[index].usage() == FrameUse::Boot {
                index += 1;
            }
            hook(&TraceRecord::Boot {
                first: FrameIndex(first as u32),
                count: (index - first) as u32,
            });
        }
    }

    /// The trace hook, if set.
    pub fn trace_hook(&self) -> Option<TraceHook> {
        self.hook
    }

    #[inline]
    fn emit(&self, record: impl FnOnce() -> TraceRecord) {
        if let Some(hook) = self.hook {
            hook(&record());
        }
    }

    // ----- queries -----

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
    pub fn set(&self, set: SetId) -> Result<&ChargeSet, Error> {
        self.sets.get(set.index()).ok_or(Error::UnknownSet(set))
    }

    /// Domain `domain`.
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
    pub fn domain_set(&self, domain: DomainId) -> Result<SetId, Error> {
        self.domain(domain).map(|domain| domain.set)
    }

    /// The entry of `frame`.
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
    pub fn mappers(&self, frame: FrameIndex) -> Result<usize, Error> {
        let entry = self.entry(frame)?;
        Ok(self.decode(entry).map_or(0, |state| state.mappers()))
    }

    /// Whether `domain` maps `frame`.
    pub fn maps(&self, frame: FrameIndex, domain: DomainId) -> Result<bool, Error> {
        let entry = self.entry(frame)?;
        Ok(self
            .decode(entry)
            .is_some_and(|state| state.slots.iter().any(|slot| slot.domain == Some(domain))))
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

    // ----- sets and domains -----

    /// Creates a charge set under `parent` (or a root) with a limit on its subtree bytes.
    pub fn create_set(
        &mut self,
        name: &str,
        parent: Option<SetId>,
        limit_bytes: Option<u64>,
    ) -> Result<SetId, Error> {
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
        let id = SetId(self.sets.len() as u16);
        self.sets
            .push(ChargeSet::new(
                name.clone(),
                parent,
                depth as u8,
                limit_bytes,
            ))
            .map_err(|_| Error::TooManySets)?;
        self.emit(|| TraceRecord::Set {
            id,
            name,
            parent,
            limit_bytes,
        });
        Ok(id)
    }

    /// Changes a set's limit. A limit below current usage is allowed: the set then cannot
    /// grow until it is back under it.
    pub fn set_limit(&mut self, set: SetId, limit_bytes: Option<u64>) -> Result<(), Error> {
        self.sets
            .get_mut(set.index())
            .ok_or(Error::UnknownSet(set))?
            .limit_bytes = limit_bytes;
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
            })
            .map_err(|_| Error::TooManyDomains)?;
        self.emit(|| TraceRecord::Domain { id, name, set });
        Ok(id)
    }

    /// Records a domain's state (and stop reason) for the report.
    pub fn set_domain_state(&mut self, domain: DomainId, state: DomainState) -> Result<(), Error> {
        self.domains
            .get_mut(domain.index())
            .ok_or(Error::UnknownDomain(domain))?
            .state = state;
        self.emit(|| TraceRecord::State { domain, state });
        Ok(())
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
        for index in first.index()..end {
            self.require_free(FrameIndex(index as u32))?;
        }
        self.frames[first.index()..end].fill(FrameEntry::BOOT);
        self.boot_frames += u64::from(count);
        self.emit(|| TraceRecord::Boot { first, count });
        Ok(())
    }

    // ----- two-phase charging -----

    /// Checks every charge of `plan` against every limit (payer and ancestors, per-kind
    /// sub-limits included) and the frames' states, changing nothing; a denial counts one
    /// denial of its kind on the payer set whose charge failed, and is
    /// [`Error::OverLimit`].
    pub fn reserve<'l, 'p, 'f>(
        &'l mut self,
        plan: &'p Plan<'f>,
    ) -> Result<Reservation<'l, 'a, 'p, 'f>, Error> {
        // Fast path: one new frame with a single payer (most faults and objects).
        if let [op] = plan.ops() {
            if let Some(charge) = self.single_charge(op)? {
                if let Err(denial) = self.check(core::slice::from_ref(&charge)) {
                    return Err(self.deny(denial, plan));
                }
                return Ok(Reservation { ledger: self, plan });
            }
        }
        let mut charges = Charges::new();
        let mut need = PoolNeed::new();
        let mut copies = 0;
        let mut named: heapless::Vec<FrameIndex, { 2 * crate::ids::PLAN_OPS }> =
            heapless::Vec::new();
        for op in plan.ops() {
            self.plan_op(op, &mut charges, &mut need)?;
            let (first, second) = match *op {
                Op::Anon { frame, .. }
                | Op::PageTable { frame, .. }
                | Op::Kernel { frame, .. }
                | Op::Msgbuf { frame, .. }
                | Op::Share { frame, .. } => (Some(frame), None),
                Op::ShareMany { .. } => (None, None),
                Op::CowCopy { original, copy, .. } => {
                    copies += 1;
                    (Some(original), Some(copy))
                }
            };
            for frame in [first, second].into_iter().flatten() {
                if named.contains(&frame) {
                    return Err(Error::BadPlan);
                }
                // Two per operation, PLAN_OPS operations: room for all.
                let _ = named.push(frame);
            }
        }
        let lists = need.count() + copies;
        if lists > 0 && lists + POOL_DEPARTURE_RESERVE > self.pool.unused_lists() {
            return Err(Error::PoolFull);
        }
        if let Err(denial) = self.check(&charges) {
            return Err(self.deny(denial, plan));
        }
        Ok(Reservation { ledger: self, plan })
    }

    /// Counts a denial on the payer and traces the denied plan.
    fn deny(&mut self, denial: Denial, plan: &Plan<'_>) -> Error {
        self.sets[denial.payer.index()].denied[denial.kind.index()] += 1;
        self.emit_plan(plan);
        Error::OverLimit(denial)
    }

    /// The one charge of a new single-payer frame, validated; `None` for other operations.
    #[inline]
    fn single_charge(&self, op: &Op<'_>) -> Result<Option<Charge>, Error> {
        match *op {
            Op::Anon { frame, .. } | Op::PageTable { frame, .. } | Op::Kernel { frame, .. } => {
                self.require_free(frame)?
            }
            _ => return Ok(None),
        }
        let (set, kind, causer) = match *op {
            Op::Anon { domain, .. } => (self.domain_set(domain)?, Kind::Anon, Some(domain)),
            Op::PageTable { owner, causer, .. } => (
                self.page_table_payer(owner, causer)?,
                Kind::PageTables,
                Some(causer),
            ),
            Op::Kernel { set, causer, .. } => {
                self.set(set)?;
                if let Some(causer) = causer {
                    self.domain(causer)?;
                }
                (set, Kind::Kernel, causer)
            }
            _ => return Ok(None),
        };
        Ok(Some(Charge {
            set,
            kind,
            bytes: FRAME_BYTES as i64,
            causer,
        }))
    }

    /// Validates one operation and adds its charges and sharer-list needs.
    fn plan_op(
        &self,
        op: &Op<'_>,
        charges: &mut Charges,
        need: &mut PoolNeed,
    ) -> Result<(), Error> {
        let bytes = FRAME_BYTES as i64;
        match *op {
            Op::Anon { frame, domain } => {
                self.require_free(frame)?;
                let set = self.domain_set(domain)?;
                add_charge(charges, set, Kind::Anon, bytes, Some(domain))
            }
            Op::PageTable {
                frame,
                owner,
                causer,
            } => {
                self.require_free(frame)?;
                let set = self.page_table_payer(owner, causer)?;
                add_charge(charges, set, Kind::PageTables, bytes, Some(causer))
            }
            Op::Kernel { frame, set, causer } => {
                self.require_free(frame)?;
                self.set(set)?;
                if let Some(causer) = causer {
                    self.domain(causer)?;
                }
                add_charge(charges, set, Kind::Kernel, bytes, causer)
            }
            Op::Msgbuf {
                frame,
                sender,
                receiver,
            } => {
                self.require_free(frame)?;
                let state = self.msgbuf_state(sender, receiver)?;
                need.add(&self.pool, &state.slots);
                for (set, delta) in net_change(None, Some(&state)) {
                    add_charge(charges, set, Kind::Msgbuf, delta, Some(sender))?;
                }
                Ok(())
            }
            Op::Share { frame, domain } => self.plan_share(frame, domain, charges, need),
            Op::ShareMany { frames, domain } => {
                for frame in frames {
                    self.plan_share(*frame, domain, charges, need)?;
                }
                Ok(())
            }
            Op::CowCopy {
                original,
                copy,
                writer,
            } => {
                if original == copy {
                    return Err(Error::BadPlan);
                }
                let payer = self.cow_copy_payer(original, writer)?;
                self.require_free(copy)?;
                add_charge(charges, payer, Kind::Cow, bytes, Some(writer))
            }
        }
    }

    fn plan_share(
        &self,
        frame: FrameIndex,
        domain: DomainId,
        charges: &mut Charges,
        need: &mut PoolNeed,
    ) -> Result<(), Error> {
        let (_, old, new) = self.share_states(frame, domain)?;
        need.add(&self.pool, &new.slots);
        for (set, delta) in net_change(Some(&old), Some(&new)) {
            add_charge(charges, set, old.kind, delta, old.causer)?;
        }
        Ok(())
    }

    /// Checks aggregated charges against every limit on the way to the root.
    fn check(&self, charges: &[Charge]) -> Result<(), Denial> {
        for charge in charges.iter().filter(|charge| charge.bytes > 0) {
            let kind = charge.kind.index();
            let mut cursor = Some(charge.set);
            while let Some(set_id) = cursor {
                let set = &self.sets[set_id.index()];
                let (kind_net, total_net) = if charges.len() == 1 {
                    (charge.bytes, charge.bytes)
                } else {
                    self.net_within(set_id, set.depth, charge.kind, charges)
                };
                let denial = |kind_limit: bool, bytes: i64| Denial {
                    payer: charge.set,
                    kind: charge.kind,
                    limit_set: set_id,
                    kind_limit,
                    causer: charge.causer,
                    bytes: bytes as u64,
                };
                if kind_net > 0 {
                    if let Some(limit) = set.kind_limit_bytes[kind] {
                        if set.subtree[kind].saturating_add(kind_net as u64) > limit {
                            return Err(denial(true, kind_net));
                        }
                    }
                }
                if total_net > 0 {
                    if let Some(limit) = set.limit_bytes {
                        if set.subtree_bytes.saturating_add(total_net as u64) > limit {
                            return Err(denial(false, total_net));
                        }
                    }
                }
                cursor = set.parent;
            }
        }
        Ok(())
    }

    /// Net bytes (of `kind`, and of all kinds) the charges add within `ancestor`'s subtree.
    fn net_within(&self, ancestor: SetId, depth: u8, kind: Kind, charges: &[Charge]) -> (i64, i64) {
        let mut kind_net = 0;
        let mut total_net = 0;
        for charge in charges {
            if self.is_within(charge.set, ancestor, depth) {
                total_net += charge.bytes;
                if charge.kind == kind {
                    kind_net += charge.bytes;
                }
            }
        }
        (kind_net, total_net)
    }

    /// Whether `set` is `ancestor` or a descendant of it (`depth` = the ancestor's depth).
    fn is_within(&self, set: SetId, ancestor: SetId, depth: u8) -> bool {
        let mut cursor = set;
        loop {
            let node = &self.sets[cursor.index()];
            if node.depth <= depth {
                return cursor == ancestor;
            }
            match node.parent {
                Some(parent) => cursor = parent,
                None => return false,
            }
        }
    }

    /// Applies a reserved plan: first every new frame and share, then the departures of
    /// copy-on-write writers (whose `migrate` checks then see the plan's own charges).
    fn commit_plan(&mut self, plan: &Plan<'_>) {
        for op in plan.ops() {
            match *op {
                Op::Anon { frame, domain } => {
                    if let Ok(set) = self.domain_set(domain) {
                        self.create(frame, Kind::Anon, Some(domain), set, Some(domain));
                    }
                }
                Op::PageTable {
                    frame,
                    owner,
                    causer,
                } => {
                    if let Ok(set) = self.page_table_payer(owner, causer) {
                        self.create(frame, Kind::PageTables, Some(causer), set, None);
                    }
                }
                Op::Kernel { frame, set, causer } => {
                    self.create(frame, Kind::Kernel, causer, set, None);
                }
                Op::Msgbuf {
                    frame,
                    sender,
                    receiver,
                } => {
                    if let Ok(state) = self.msgbuf_state(sender, receiver) {
                        let result = self.transition(frame, FrameEntry::FREE, Some(state));
                        debug_assert!(result.is_ok(), "reserved message buffer failed");
                    }
                }
                Op::Share { frame, domain } => self.commit_share(frame, domain),
                Op::ShareMany { frames, domain } => {
                    for frame in frames {
                        self.commit_share(*frame, domain);
                    }
                }
                Op::CowCopy {
                    original,
                    copy,
                    writer,
                } => {
                    if let Ok(payer) = self.cow_copy_payer(original, writer) {
                        self.create(copy, Kind::Cow, Some(writer), payer, Some(writer));
                    }
                }
            }
        }
        for op in plan.ops() {
            if let Op::CowCopy {
                original, writer, ..
            } = *op
            {
                let result = self.depart(original, writer);
                debug_assert!(result.is_ok(), "reserved copy-on-write departure failed");
            }
        }
        self.emit_plan(plan);
    }

    fn commit_share(&mut self, frame: FrameIndex, domain: DomainId) {
        // Fails only for a frame named twice in a `ShareMany` (already shared): skip it.
        if let Ok((entry, _, new)) = self.share_states(frame, domain) {
            let result = self.transition(frame, entry, Some(new));
            debug_assert!(result.is_ok(), "reserved share failed");
        }
    }

    fn emit_plan(&self, plan: &Plan<'_>) {
        let Some(hook) = self.hook else {
            return;
        };
        if plan.len() >= 2 {
            hook(&TraceRecord::Plan {
                ops: plan.len() as u16,
            });
        }
        for op in plan.ops() {
            let record = match *op {
                Op::Anon { frame, domain } => TraceRecord::Anon { frame, domain },
                Op::PageTable {
                    frame,
                    owner,
                    causer,
                } => TraceRecord::PageTable {
                    frame,
                    owner,
                    causer,
                },
                Op::Kernel { frame, set, causer } => TraceRecord::Kernel { frame, set, causer },
                Op::Msgbuf {
                    frame,
                    sender,
                    receiver,
                } => TraceRecord::Msgbuf {
                    frame,
                    sender,
                    receiver,
                },
                Op::Share { frame, domain } => TraceRecord::Share { frame, domain },
                Op::CowCopy {
                    original,
                    copy,
                    writer,
                } => TraceRecord::Cow {
                    original,
                    copy,
                    writer,
                },
                Op::ShareMany { frames, domain } => {
                    hook(&TraceRecord::ShareMany {
                        domain,
                        count: frames.len() as u32,
                    });
                    for chunk in frames.chunks(FRAMES_PER_RECORD) {
                        let mut list = heapless::Vec::new();
                        // A chunk holds at most FRAMES_PER_RECORD frames.
                        let _ = list.extend_from_slice(chunk);
                        hook(&TraceRecord::Frames { frames: list });
                    }
                    continue;
                }
            };
            hook(&record);
        }
    }

    // ----- one-operation conveniences (reserve + commit) -----

    /// Reserves and commits `plan`.
    pub fn apply(&mut self, plan: &Plan<'_>) -> Result<(), Error> {
        self.reserve(plan)?.commit();
        Ok(())
    }

    /// A new `anon` frame mapped by `domain`, paid by its set.
    pub fn new_anon(&mut self, frame: FrameIndex, domain: DomainId) -> Result<(), Error> {
        self.apply(&Plan::one(Op::Anon { frame, domain }))
    }

    /// A new page-table frame in `owner`'s address space, made necessary by `causer`.
    pub fn new_page_table(
        &mut self,
        frame: FrameIndex,
        owner: DomainId,
        causer: DomainId,
    ) -> Result<(), Error> {
        self.apply(&Plan::one(Op::PageTable {
            frame,
            owner,
            causer,
        }))
    }

    /// A new kernel-object frame paid by `set`.
    pub fn new_kernel(
        &mut self,
        frame: FrameIndex,
        set: SetId,
        causer: Option<DomainId>,
    ) -> Result<(), Error> {
        self.apply(&Plan::one(Op::Kernel { frame, set, causer }))
    }

    /// A new message-buffer frame, paid per the `msgbuf` policy.
    pub fn new_msgbuf(
        &mut self,
        frame: FrameIndex,
        sender: DomainId,
        receiver: DomainId,
    ) -> Result<(), Error> {
        self.apply(&Plan::one(Op::Msgbuf {
            frame,
            sender,
            receiver,
        }))
    }

    /// `domain` maps `frame` too (copy-on-write).
    pub fn share(&mut self, frame: FrameIndex, domain: DomainId) -> Result<(), Error> {
        self.apply(&Plan::one(Op::Share { frame, domain }))
    }

    /// `domain` maps every frame of `frames` too, atomically.
    pub fn share_many(&mut self, frames: &[FrameIndex], domain: DomainId) -> Result<(), Error> {
        self.apply(&Plan::one(Op::ShareMany { frames, domain }))
    }

    /// Write fault by `writer` on shared `original`: `copy` becomes its private copy.
    pub fn cow_copy(
        &mut self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
    ) -> Result<(), Error> {
        self.apply(&Plan::one(Op::CowCopy {
            original,
            copy,
            writer,
        }))
    }

    // ----- departures and frees (never denied) -----

    /// `domain` unmaps `frame` (also on exit). If it was the last mapper the frame is
    /// uncharged from everyone and [`Unmapped::Freed`]; otherwise the `release` policy decides
    /// what happens to a charge the domain's set paid. Never denied by a limit: a migration
    /// that would not fit stays instead. Fails with [`Error::PoolFull`] only when the frame
    /// needs a new sharer list and the pool is exhausted (then nothing changed).
    pub fn unmap(&mut self, frame: FrameIndex, domain: DomainId) -> Result<Unmapped, Error> {
        let result = self.depart(frame, domain)?;
        self.emit(|| TraceRecord::Unmap { frame, domain });
        Ok(result)
    }

    /// Frees a frame no domain maps (page table, kernel object, message buffer): uncharged
    /// from every payer. Mapped frames are freed by their last [`Ledger::unmap`].
    pub fn free(&mut self, frame: FrameIndex) -> Result<(), Error> {
        let entry = self.entry(frame)?;
        match entry.usage() {
            FrameUse::Free => return Err(Error::FrameFree(frame)),
            FrameUse::Boot => return Err(Error::BootFrame(frame)),
            FrameUse::Charged(kind) if kind.is_mapped() => return Err(Error::WrongKind(frame)),
            FrameUse::Charged(_) => {}
        }
        self.transition(frame, entry, None)?;
        self.emit(|| TraceRecord::Free { frame });
        Ok(())
    }

    fn depart(&mut self, frame: FrameIndex, domain: DomainId) -> Result<Unmapped, Error> {
        // Fast path: the only mapper of a single-slot frame leaves; it is freed.
        let entry = self.entry(frame)?;
        if let (Some(kind), Some((payer, Some(mapper)))) = (entry.kind(), entry.inline_slot()) {
            if mapper == domain && kind.is_mapped() {
                let causer = entry.causer();
                self.uncharge(payer, kind, FRAME_BYTES, causer);
                self.frames[frame.index()] = FrameEntry::FREE;
                self.frames_in_use = checked_sub(self.frames_in_use, 1);
                return Ok(Unmapped::Freed);
            }
        }
        let (entry, new) = self.departure(frame, domain)?;
        let freed = new.is_none();
        self.transition(frame, entry, new)?;
        Ok(if freed {
            Unmapped::Freed
        } else {
            Unmapped::StillMapped
        })
    }

    /// The state `frame` is left in when `domain` leaves it (`None` = freed).
    fn departure(
        &self,
        frame: FrameIndex,
        domain: DomainId,
    ) -> Result<(FrameEntry, Option<FrameState>), Error> {
        let entry = self.require_mapped(frame)?;
        self.domain(domain)?;
        let old = self.decode(entry).ok_or(Error::FrameFree(frame))?;
        let position = old
            .slots
            .iter()
            .position(|slot| slot.domain == Some(domain))
            .ok_or(Error::NotMapped(frame, domain))?;
        if old.mappers() == 1 {
            return Ok((entry, None));
        }
        let mut stay = old.clone();
        if !old.split {
            if position != 0 {
                // Not the payer: it just leaves.
                stay.slots.remove(position);
                return Ok((entry, Some(stay)));
            }
            // The payer leaves, but its set still maps the frame through another domain: the
            // charge is where it belongs already.
            let payer = old.slots[0].set;
            if let Some(other) = (1..old.slots.len())
                .find(|&index| old.slots[index].domain.is_some() && old.slots[index].set == payer)
            {
                stay.slots[0].domain = old.slots[other].domain;
                stay.slots.remove(other);
                return Ok((entry, Some(stay)));
            }
        }
        // The departing domain's set pays (all, or a share): the release policy decides.
        let mut migrate = old.clone();
        migrate.slots.remove(position);
        if !old.split {
            if let Some(first) = migrate.slots.iter().position(|slot| slot.domain.is_some()) {
                let survivor = migrate.slots.remove(first);
                // Just removed one: room for it.
                let _ = migrate.slots.insert(0, survivor);
            }
        }
        stay.slots[position].domain = None;
        let event = ChargeEvent {
            what: EventKind::Release,
            kind: old.kind,
            causer: Some(domain),
            candidates: Candidates {
                holder: old.holder(),
                departing: Some(old.slots[position].set),
                surviving: migrate
                    .slots
                    .iter()
                    .find(|slot| slot.domain.is_some())
                    .map(|slot| slot.set),
                ..Candidates::default()
            },
        };
        if self.policies.release.decide(&event) == Decision::Migrate && self.fits(&old, &migrate) {
            return Ok((entry, Some(migrate)));
        }
        Ok((entry, Some(stay)))
    }

    /// Whether moving `frame` from `old` to `new` fits every limit (no denial is counted).
    fn fits(&self, old: &FrameState, new: &FrameState) -> bool {
        let mut charges = Charges::new();
        for (set, delta) in net_change(Some(old), Some(new)) {
            if add_charge(&mut charges, set, old.kind, delta, old.causer).is_err() {
                return false;
            }
        }
        self.check(&charges).is_ok()
    }

    // ----- policy resolution -----

    fn page_table_payer(&self, owner: DomainId, causer: DomainId) -> Result<SetId, Error> {
        let owner_set = self.domain_set(owner)?;
        let causer_set = self.domain_set(causer)?;
        let event = ChargeEvent {
            what: EventKind::PageTable,
            kind: Kind::PageTables,
            causer: Some(causer),
            candidates: Candidates {
                owner: Some(owner_set),
                creator: Some(causer_set),
                ..Candidates::default()
            },
        };
        match self.policies.pagetable.decide(&event) {
            Decision::Owner => Ok(owner_set),
            Decision::Causer => Ok(causer_set),
            _ => Err(Error::BadDecision),
        }
    }

    fn msgbuf_state(&self, sender: DomainId, receiver: DomainId) -> Result<FrameState, Error> {
        let sender_set = self.domain_set(sender)?;
        let receiver_set = self.domain_set(receiver)?;
        let event = ChargeEvent {
            what: EventKind::Msgbuf,
            kind: Kind::Msgbuf,
            causer: Some(sender),
            candidates: Candidates {
                sender: Some(sender_set),
                receiver: Some(receiver_set),
                creator: Some(sender_set),
                ..Candidates::default()
            },
        };
        let mut slots = SlotList::new();
        let slot = |set| Slot { set, domain: None };
        let split = match self.policies.msgbuf.decide(&event) {
            Decision::Sender => {
                let _ = slots.push(slot(sender_set));
                false
            }
            Decision::Receiver => {
                let _ = slots.push(slot(receiver_set));
                false
            }
            Decision::Kernel => {
                let _ = slots.push(slot(SetId::KERNEL));
                false
            }
            Decision::Split => {
                let _ = slots.push(slot(sender_set));
                let _ = slots.push(slot(receiver_set));
                true
            }
            _ => return Err(Error::BadDecision),
        };
        Ok(FrameState {
            kind: Kind::Msgbuf,
            split,
            causer: Some(sender),
            slots,
        })
    }

    /// The entry, old state and new state of `frame` when `domain` shares it.
    fn share_states(
        &self,
        frame: FrameIndex,
        domain: DomainId,
    ) -> Result<(FrameEntry, FrameState, FrameState), Error> {
        let entry = self.require_mapped(frame)?;
        let set = self.domain_set(domain)?;
        let old = self.decode(entry).ok_or(Error::FrameFree(frame))?;
        if old.slots.iter().any(|slot| slot.domain == Some(domain)) {
            return Err(Error::AlreadyMapped(frame, domain));
        }
        let event = ChargeEvent {
            what: EventKind::Share,
            kind: old.kind,
            causer: Some(domain),
            candidates: Candidates {
                holder: old.holder(),
                creator: Some(set),
                ..Candidates::default()
            },
        };
        let split = match self.policies.cow.decide(&event) {
            Decision::Split => true,
            Decision::Writer | Decision::Holder => old.split,
            _ => return Err(Error::BadDecision),
        };
        let mut new = old.clone();
        new.split = split;
        new.slots
            .push(Slot {
                set,
                domain: Some(domain),
            })
            .map_err(|_| Error::TooManySharers)?;
        Ok((entry, old, new))
    }

    /// Validates a copy-on-write copy of `original` by `writer` and names its payer.
    fn cow_copy_payer(&self, original: FrameIndex, writer: DomainId) -> Result<SetId, Error> {
        let entry = self.require_mapped(original)?;
        let writer_set = self.domain_set(writer)?;
        let old = self.decode(entry).ok_or(Error::FrameFree(original))?;
        if !old.slots.iter().any(|slot| slot.domain == Some(writer)) {
            return Err(Error::NotMapped(original, writer));
        }
        if old.mappers() < 2 {
            return Err(Error::NotShared(original));
        }
        let holder = old.holder().unwrap_or(writer_set);
        let event = ChargeEvent {
            what: EventKind::CowCopy,
            kind: Kind::Cow,
            causer: Some(writer),
            candidates: Candidates {
                holder: Some(holder),
                writer: Some(writer_set),
                creator: Some(writer_set),
                ..Candidates::default()
            },
        };
        match self.policies.cow.decide(&event) {
            Decision::Writer | Decision::Split => Ok(writer_set),
            Decision::Holder => Ok(holder),
            _ => Err(Error::BadDecision),
        }
    }

    // ----- frame-state plumbing -----

    fn require_free(&self, frame: FrameIndex) -> Result<(), Error> {
        match self.entry(frame)?.usage() {
            FrameUse::Free => Ok(()),
            FrameUse::Boot => Err(Error::BootFrame(frame)),
            FrameUse::Charged(_) => Err(Error::FrameInUse(frame)),
        }
    }

    fn require_mapped(&self, frame: FrameIndex) -> Result<FrameEntry, Error> {
        let entry = self.entry(frame)?;
        match entry.usage() {
            FrameUse::Free => Err(Error::FrameFree(frame)),
            FrameUse::Boot => Err(Error::BootFrame(frame)),
            FrameUse::Charged(kind) if kind.is_mapped() => Ok(entry),
            FrameUse::Charged(_) => Err(Error::WrongKind(frame)),
        }
    }

    pub(crate) fn decode(&self, entry: FrameEntry) -> Option<FrameState> {
        let kind = entry.kind()?;
        let mut slots = SlotList::new();
        match (entry.inline_slot(), entry.list()) {
            (Some((set, domain)), _) => {
                let _ = slots.push(Slot { set, domain });
            }
            (None, Some(list)) => {
                let _ = slots.extend_from_slice(self.pool.get(list));
            }
            (None, None) => {}
        }
        Some(FrameState {
            kind,
            split: entry.is_split(),
            causer: entry.causer(),
            slots,
        })
    }

    /// A new single-slot frame; the fast path of every new frame.
    fn create(
        &mut self,
        frame: FrameIndex,
        kind: Kind,
        causer: Option<DomainId>,
        payer: SetId,
        mapper: Option<DomainId>,
    ) {
        let Some(entry) = self.frames.get_mut(frame.index()) else {
            debug_assert!(false, "reserved frame out of range");
            return;
        };
        *entry = FrameEntry::inline(kind, false, causer, payer, mapper);
        self.frames_in_use += 1;
        self.charge(payer, kind, FRAME_BYTES, causer);
    }

    /// Moves `frame` from `entry` to `new` (`None` = free), charging and uncharging the
    /// difference. Fails (changing nothing) only when the pool cannot hold the new list.
    fn transition(
        &mut self,
        frame: FrameIndex,
        entry: FrameEntry,
        new: Option<FrameState>,
    ) -> Result<(), Error> {
        if let Some(state) = &new {
            if state.slots.len() > 1
                && self.pool.find(&state.slots).is_none()
                && self.pool.unused_lists() == 0
                && entry
                    .list()
                    .is_none_or(|list| self.pool.references(list) > 1)
            {
                return Err(Error::PoolFull);
            }
        }
        let old = self.decode(entry);
        let (kind, causer) = match (&new, &old) {
            (Some(state), _) | (None, Some(state)) => (state.kind, state.causer),
            (None, None) => return Ok(()),
        };
        for (set, delta) in net_change(old.as_ref(), new.as_ref()) {
            if delta > 0 {
                self.charge(set, kind, delta as u64, causer);
            } else if delta < 0 {
                self.uncharge(set, kind, delta.unsigned_abs(), causer);
            }
        }
        match (old.is_some(), new.is_some()) {
            (false, true) => self.frames_in_use += 1,
            (true, false) => self.frames_in_use = checked_sub(self.frames_in_use, 1),
            _ => {}
        }
        if let Some(list) = entry.list() {
            self.pool.release(list);
        }
        let stored = match new {
            None => FrameEntry::FREE,
            Some(state) => match state.slots.as_slice() {
                [] => FrameEntry::FREE,
                [slot] => {
                    FrameEntry::inline(state.kind, state.split, state.causer, slot.set, slot.domain)
                }
                slots => match self.pool.intern(slots) {
                    Ok(list) => FrameEntry::listed(state.kind, state.split, state.causer, list),
                    Err(_) => {
                        // Checked above: the pool has room (or the old list's slot).
                        debug_assert!(false, "sharer pool full after check");
                        FrameEntry::FREE
                    }
                },
            },
        };
        self.frames[frame.index()] = stored;
        Ok(())
    }

    /// Adds `bytes` of `kind` to `set` (current, peak, totals, paid-for) and its subtree sums.
    #[inline]
    fn charge(&mut self, set_id: SetId, kind: Kind, bytes: u64, causer: Option<DomainId>) {
        let causer_set = causer.and_then(|causer| self.domains.get(causer.index()).map(|d| d.set));
        let index = kind.index();
        let Some(set) = self.sets.get_mut(set_id.index()) else {
            debug_assert!(false, "charge to unknown set");
            return;
        };
        set.current[index] += bytes;
        if set.current[index] > set.peak[index] {
            set.peak[index] = set.current[index];
        }
        set.charged_total_bytes += bytes;
        if let (Some(causer), Some(causer_set)) = (causer, causer_set) {
            if causer_set != set_id {
                set.paid_for[causer.index()] += bytes;
            }
        }
        let mut cursor = Some(set_id);
        while let Some(id) = cursor {
            let set = &mut self.sets[id.index()];
            set.subtree[index] += bytes;
            set.subtree_bytes += bytes;
            cursor = set.parent;
        }
    }

    /// Takes `bytes` of `kind` from `set`; the mirror of [`Ledger::charge`].
    #[inline]
    fn uncharge(&mut self, set_id: SetId, kind: Kind, bytes: u64, causer: Option<DomainId>) {
        let causer_set = causer.and_then(|causer| self.domains.get(causer.index()).map(|d| d.set));
        let index = kind.index();
        let Some(set) = self.sets.get_mut(set_id.index()) else {
            debug_assert!(false, "uncharge from unknown set");
            return;
        };
        set.current[index] = checked_sub(set.current[index], bytes);
        set.uncharged_total_bytes += bytes;
        if let (Some(causer), Some(causer_set)) = (causer, causer_set) {
            if causer_set != set_id {
                set.paid_for[causer.index()] = checked_sub(set.paid_for[causer.index()], bytes);
            }
        }
        let mut cursor = Some(set_id);
        while let Some(id) = cursor {
            let set = &mut self.sets[id.index()];
            set.subtree[index] = checked_sub(set.subtree[index], bytes);
            set.subtree_bytes = checked_sub(set.subtree_bytes, bytes);
            cursor = set.parent;
        }
    }

    /// Recomputes every figure from the frame table and compares it with the running
    /// counters: conservation, per-set current and paid-for sums, subtree sums, peaks, totals,
    /// sharer-list references. O(frames); for tests and debug builds.
    pub fn audit(&self) -> Result<(), &'static str> {
        let mut current = [[0u64; Kind::COUNT]; MAX_SETS];
        let mut paid_for = [0u64; MAX_SETS];
        let mut references = [0u32; SHARER_LISTS];
        let mut in_use = 0;
        let mut boot = 0;
        for entry in self.frames.iter() {
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
        let mut subtree = [[0u64; Kind::COUNT]; MAX_SETS];
        for (index, set) in self.sets.iter().enumerate() {
            if set.current != current[index] {
                return Err("a set's current differs from its frames");
            }
            if set.paid_for.iter().sum::<u64>() != paid_for[index] {
                return Err("a set's paid-for differs from its frames");
            }
            if set.charged_total_bytes - set.uncharged_total_bytes != set.current_bytes() {
                return Err("charged minus uncharged differs from current");
            }
            if set
                .peak
                .iter()
                .zip(set.current)
                .any(|(peak, now)| *peak < now)
            {
                return Err("peak below current");
            }
            let mut cursor = Some(SetId(index as u16));
            while let Some(id) = cursor {
                for (sum, bytes) in subtree[id.index()].iter_mut().zip(set.current) {
                    *sum += bytes;
                }
                cursor = self.sets[id.index()].parent;
            }
        }
        for (index, set) in self.sets.iter().enumerate() {
            if set.subtree != subtree[index] || set.subtree_bytes != subtree[index].iter().sum() {
                return Err("a set's subtree differs from its descendants");
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

/// `a - b`; in debug builds and tests an underflow (a negative usage) panics.
#[inline]
fn checked_sub(a: u64, b: u64) -> u64 {
    debug_assert!(a >= b, "usage would go negative: {a} - {b}");
    a.saturating_sub(b)
}

fn checked_name(name: &str) -> Result<Name, Error> {
    if !valid_name(name) {
        return Err(Error::BadName);
    }
    Name::try_from(name).map_err(|_| Error::BadName)
}

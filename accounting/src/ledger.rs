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
//!
//! Cost: the hot paths read a frame's slots where they are (inline in the entry, or in the
//! pool) instead of copying them, hash a new sharer list once, and change charges only when a
//! payer's bytes change (sharing under `cow = writer` or `holder` charges nothing). A
//! [`Op::ShareMany`] handles its frames in *runs*: consecutive frames with equal entries (the
//! usual case: a region one domain faulted in) go from the same old state to the same new
//! one, so the run's new state, charges and sharer list are worked out at its first frame and
//! the rest only store the new entry; the run's charges and list references are then
//! adjusted once, in bulk.

use crate::error::{Denial, Error};
use crate::event::{Candidates, ChargeEvent, Decision, EventKind, Policies, Policy, PolicyKey};
use crate::frame::{FrameEntry, FrameUse, NO_DOMAIN};
use crate::ids::{
    split_share_bytes, valid_name, DomainId, FrameIndex, Kind, Name, SetId, FRAME_BYTES, MAX_DEPTH,
    MAX_DOMAINS, MAX_SETS, MAX_SHARERS, PLAN_CHARGES, PLAN_OPS, POOL_DEPARTURE_RESERVE,
    SHARER_LISTS,
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
        mappers(&self.slots)
    }

    /// Bytes slot `slot` pays.
    pub fn slot_bytes(&self, slot: usize) -> u64 {
        slot_bytes(self.split, self.slots.len(), slot)
    }

    /// The holder: the set of slot 0.
    pub fn holder(&self) -> Option<SetId> {
        self.slots.first().map(|slot| slot.set)
    }
}

/// Domains mapping a frame with these slots.
#[inline]
fn mappers(slots: &[Slot]) -> usize {
    slots.iter().filter(|slot| slot.domain.is_some()).count()
}

/// Bytes slot `slot` of `len` pays: a share each when split, else all of it for slot 0.
#[inline]
fn slot_bytes(split: bool, len: usize, slot: usize) -> u64 {
    if split {
        split_share_bytes(len, slot)
    } else if slot == 0 {
        FRAME_BYTES
    } else {
        0
    }
}

/// A charged frame as its entry and the pool describe it, read in place (no copy of the
/// sharer list).
#[derive(Clone, Copy)]
struct View<'p> {
    kind: Kind,
    split: bool,
    causer: Option<DomainId>,
    /// The sharer list id, if the frame has one (else its slot is `inline`).
    list: Option<u16>,
    inline: Slot,
    listed: &'p [Slot],
}

impl View<'_> {
    #[inline]
    fn slots(&self) -> &[Slot] {
        if self.list.is_some() {
            self.listed
        } else {
            core::slice::from_ref(&self.inline)
        }
    }

    /// The slot through which `domain` maps the frame.
    #[inline]
    fn position(&self, domain: DomainId) -> Option<usize> {
        self.slots()
            .iter()
            .position(|slot| slot.domain == Some(domain))
    }

    /// The holder: the set of slot 0.
    #[inline]
    fn holder(&self) -> Option<SetId> {
        self.slots().first().map(|slot| slot.set)
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

impl Charge {
    /// The denial of this charge by `limit_set`'s limit (`kind_limit`: its per-kind one),
    /// which `bytes` would have exceeded.
    #[cold]
    fn denial(&self, limit_set: SetId, kind_limit: bool, bytes: u64) -> Denial {
        Denial {
            payer: self.set,
            kind: self.kind,
            limit_set,
            kind_limit,
            causer: self.causer,
            bytes,
        }
    }
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

/// Sets `net` to the per-set change of charges from `old` slots to `new` slots (either may be
/// empty: free), in the order sets first appear in `old`, then in `new`.
fn net_change(net: &mut NetChange, old: &[Slot], old_split: bool, new: &[Slot], new_split: bool) {
    net.clear();
    for (index, slot) in old.iter().enumerate() {
        add_net(
            net,
            slot.set,
            -(slot_bytes(old_split, old.len(), index) as i64),
        );
    }
    for (index, slot) in new.iter().enumerate() {
        add_net(
            net,
            slot.set,
            slot_bytes(new_split, new.len(), index) as i64,
        );
    }
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

    /// Counts `slots` if the pool would have to store them; true if it was counted past the
    /// eight lists told apart (so an equal list is counted again).
    fn add(&mut self, pool: &SharerPool, slots: &[Slot]) -> bool {
        if slots.len() <= 1 || pool.find(slots).is_some() {
            return false;
        }
        if self.lists.iter().any(|list| list.as_slice() == slots) {
            return false;
        }
        let pushed = SlotList::from_slice(slots)
            .ok()
            .is_some_and(|list| self.lists.push(list).is_ok());
        if !pushed {
            self.more += 1;
        }
        !pushed
    }

    fn count(&self) -> usize {
        self.lists.len() + self.more
    }
}

/// What reserve worked out per operation, for commit: the payer of a new frame or copy, or
/// whether the `cow` policy splits a shared frame (the policy is a pure function of the event,
/// which a plan's other operations do not change). Kept in the ledger (the reservation
/// borrows it, so nothing can change in between).
///
/// Plain integers, not `bool`s: a `bool` would give the ledger a niche, and a kernel static
/// holding the ledger beside other fields is laid out around its largest niche; the ledger
/// (over 100 KB) would move first and push every other field past the offsets one
/// instruction can address.
#[derive(Clone, Copy)]
struct Resolved {
    payer: [SetId; PLAN_OPS],
    /// Bit `i`: the `cow` policy splits the frame operation `i` shares.
    splits: u16,
    /// [`Resolved::COPIES`] | [`Resolved::SHARE_MANY`].
    flags: u8,
}

const _: () = assert!(PLAN_OPS <= 16);

impl Resolved {
    const NONE: Resolved = Resolved {
        payer: [SetId::KERNEL; PLAN_OPS],
        splits: 0,
        flags: 0,
    };
    /// The plan has a copy-on-write copy (so commit has departures to make).
    const COPIES: u8 = 1;
    /// The plan has a `ShareMany` (so a `Share`'s frame may change before its commit).
    const SHARE_MANY: u8 = 2;

    #[inline(always)]
    fn set_splits(&mut self, index: usize, splits: bool) {
        let bit = 1 << index;
        self.splits = if splits {
            self.splits | bit
        } else {
            self.splits & !bit
        };
    }

    #[inline(always)]
    fn splits(&self, index: usize) -> bool {
        self.splits & (1 << index) != 0
    }

    #[inline(always)]
    fn set_plan(&mut self, copies: bool, share_many: bool) {
        self.flags = if copies { Resolved::COPIES } else { 0 }
            | if share_many { Resolved::SHARE_MANY } else { 0 };
    }

    #[inline(always)]
    fn copies(&self) -> bool {
        self.flags & Resolved::COPIES != 0
    }

    #[inline(always)]
    fn share_many(&self) -> bool {
        self.flags & Resolved::SHARE_MANY != 0
    }
}

/// A run of [`Op::ShareMany`] frames whose entries were all `old`: each goes to `new`.
/// `extra` frames after the first have only had their entry stored; their list references and
/// charges (`net` per frame, of `kind` caused by `causer`) are settled by
/// [`Ledger::settle_run`].
#[derive(Clone, Copy)]
struct Run {
    old: FrameEntry,
    new: FrameEntry,
    kind: Kind,
    causer: Option<DomainId>,
    /// Whether `net` holds charges (else sharing moved no bytes).
    charges: bool,
    extra: u32,
}

/// What reserve worked out for one shared frame.
#[derive(Clone, Copy)]
struct PlannedShare {
    /// Whether the `cow` policy splits the frame.
    splits: bool,
    kind: Kind,
    causer: Option<DomainId>,
    /// Whether its sharer list was counted past the lists [`PoolNeed`] tells apart.
    counted_past: bool,
}

/// Adds the charges of `extra` more frames of a run whose per-frame change is `net`.
fn add_run_charges(
    charges: &mut Charges,
    net: &NetChange,
    planned: &PlannedShare,
    extra: i64,
) -> Result<(), Error> {
    if extra == 0 {
        return Ok(());
    }
    for &(set, delta) in net.iter() {
        add_charge(charges, set, planned.kind, delta * extra, planned.causer)?;
    }
    Ok(())
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
    resolved: Resolved,
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
            resolved: Resolved::NONE,
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
            resolved: Resolved::NONE,
        };
        ledger.reset(frames, policies);
        ledger
    }

    /// Starts over with `frames` and `policies`: every frame free, only the `kernel` set, no
    /// domains, no trace hook.
    pub fn reset(&mut self, frames: &'a mut [FrameEntry], policies: Policies) {
        frames.fill(FrameEntry::FREE);
        self.reset_zeroed(frames, policies);
    }

    /// [`Ledger::reset`] over a frame slice the caller has already cleared (every entry
    /// [`FrameEntry::FREE`], i.e. all-zero bytes): a kernel zeroes its frame table a cache line
    /// at a time, far cheaper than the element-wise fill `reset` does (about 3 M guest
    /// instructions for 4 GiB of RAM). An entry that is not free would be counted wrongly, so
    /// debug builds check.
    pub fn reset_zeroed(&mut self, frames: &'a mut [FrameEntry], policies: Policies) {
        debug_assert!(frames.iter().all(|entry| *entry == FrameEntry::FREE));
        self.frames = frames;
        self.sets.clear();
        self.domains.clear();
        self.pool.clear();
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
                exit_code: 0,
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

    // ----- two-phase charging -----

    /// Checks every charge of `plan` against every limit (payer and ancestors, per-kind
    /// sub-limits included) and the frames' states, changing nothing; a denial counts one
    /// denial of its kind on the payer set whose charge failed, and is
    /// [`Error::OverLimit`].
    pub fn reserve<'l, 'p, 'f>(
        &'l mut self,
        plan: &'p Plan<'f>,
    ) -> Result<Reservation<'l, 'a, 'p, 'f>, Error> {
        match *plan.ops() {
            // Fast path: one new frame with a single payer (most faults and objects).
            [ref op @ (Op::Anon { .. } | Op::PageTable { .. } | Op::Kernel { .. })] => {
                if let Some(charge) = self.single_charge(op)? {
                    self.resolved.payer[0] = charge.set;
                    self.resolved.set_plan(false, false);
                    if let Err(denial) = self.check_one(&charge) {
                        return Err(self.deny(denial, plan));
                    }
                }
            }
            [Op::Share { frame, domain }] => {
                if !self.reserve_one_share(frame, domain, plan)? {
                    self.reserve_general(plan)?;
                }
            }
            [Op::CowCopy {
                original,
                copy,
                writer,
            }] => self.reserve_one_copy(original, copy, writer, plan)?,
            _ => self.reserve_general(plan)?,
        }
        Ok(Reservation { ledger: self, plan })
    }

    /// Reserves a plan of one share (under `cow = writer` or `holder` it charges nothing)
    /// when the pool has the list it may need to spare; false (having changed nothing) when
    /// the general path must decide.
    #[inline(always)]
    fn reserve_one_share(
        &mut self,
        frame: FrameIndex,
        domain: DomainId,
        plan: &Plan<'_>,
    ) -> Result<bool, Error> {
        let (entry, slot, splits) = self.share_checked(frame, domain)?;
        if self.pool.unused_lists() <= POOL_DEPARTURE_RESERVE {
            return Ok(false);
        }
        if splits || entry.is_split() {
            let mut net = NetChange::new();
            self.share_net(&mut net, entry, slot);
            let (kind, causer) = (mapped_kind(frame, entry)?, entry.causer());
            let mut charges = Charges::new();
            for &(set, delta) in net.iter() {
                add_charge(&mut charges, set, kind, delta, causer)?;
            }
            if let Err(denial) = self.check(&charges) {
                return Err(self.deny(denial, plan));
            }
        }
        self.resolved.set_splits(0, splits);
        self.resolved.set_plan(false, false);
        Ok(true)
    }

    /// Reserves a plan of one copy-on-write copy (a write fault), checked in
    /// [`Ledger::reserve_plan`]'s order.
    #[inline(always)]
    fn reserve_one_copy(
        &mut self,
        original: FrameIndex,
        copy: FrameIndex,
        writer: DomainId,
        plan: &Plan<'_>,
    ) -> Result<(), Error> {
        if original == copy {
            return Err(Error::BadPlan);
        }
        let payer = self.cow_copy_payer(original, writer)?;
        self.require_free(copy)?;
        // The writer's departure may need a sharer list.
        if self.pool.unused_lists() <= POOL_DEPARTURE_RESERVE {
            return Err(Error::PoolFull);
        }
        self.resolved.payer[0] = payer;
        self.resolved.set_plan(true, false);
        let charge = Charge {
            set: payer,
            kind: Kind::Cow,
            bytes: FRAME_BYTES as i64,
            causer: Some(writer),
        };
        if let Err(denial) = self.check_one(&charge) {
            return Err(self.deny(denial, plan));
        }
        Ok(())
    }

    /// [`Ledger::reserve`] of other plans: the fast path of simple plans, else the general
    /// one.
    #[inline(always)]
    fn reserve_general(&mut self, plan: &Plan<'_>) -> Result<(), Error> {
        if !self.reserve_simple(plan)? {
            self.reserve_plan(plan)?;
        }
        Ok(())
    }

    /// Reserves a plan of new single-payer frames and shares that charge nothing (a fault's
    /// page and tables, a share and the tables it needs) when every new frame has the same
    /// payer and the pool has lists to spare: what [`Ledger::reserve_plan`] would decide, in
    /// the same order, without its tables. False (having changed nothing) when that general
    /// path must decide.
    #[inline(never)]
    fn reserve_simple(&mut self, plan: &Plan<'_>) -> Result<bool, Error> {
        let ops = plan.ops();
        let mut shares = 0;
        // The charges, by kind in the order they first appear, all to `payer`.
        let mut payer = None;
        let mut bytes = [0u64; Kind::COUNT];
        let mut causers = [None; Kind::COUNT];
        let mut order = [Kind::Anon; Kind::COUNT];
        let mut kinds = 0;
        for (index, op) in ops.iter().enumerate() {
            let frame = match *op {
                Op::Share { frame, domain } => {
                    if !self.reserve_whole_share(frame, domain)? {
                        return Ok(false);
                    }
                    self.resolved.set_splits(index, false);
                    shares += 1;
                    frame
                }
                Op::Anon { frame, .. } | Op::PageTable { frame, .. } | Op::Kernel { frame, .. } => {
                    let Some(charge) = self.single_charge(op)? else {
                        return Ok(false);
                    };
                    if payer.is_some_and(|payer| payer != charge.set) {
                        return Ok(false);
                    }
                    payer = Some(charge.set);
                    self.resolved.payer[index] = charge.set;
                    let kind = charge.kind.index();
                    if bytes[kind] == 0 {
                        order[kinds] = charge.kind;
                        kinds += 1;
                        causers[kind] = charge.causer;
                    }
                    bytes[kind] += FRAME_BYTES;
                    frame
                }
                _ => return Ok(false),
            };
            if ops[..index].iter().any(|op| op.frame() == Some(frame)) {
                return Err(Error::BadPlan);
            }
        }
        // Each share may need a list; the general path counts them when the pool runs short.
        if shares > 0 && shares + POOL_DEPARTURE_RESERVE > self.pool.unused_lists() {
            return Ok(false);
        }
        self.resolved.set_plan(false, false);
        if let Some(set) = payer {
            let total = bytes.iter().sum();
            for &kind in &order[..kinds] {
                let charge = Charge {
                    set,
                    kind,
                    bytes: bytes[kind.index()] as i64,
                    causer: causers[kind.index()],
                };
                if let Err(denial) = self.check_within(&charge, total) {
                    return Err(self.deny(denial, plan));
                }
            }
        }
        Ok(true)
    }

    /// Reserves a plan of one `Share` if the frame stays whole (the usual case under
    /// `cow = writer` or `holder`: only the sharer list changes, nothing is charged) and the
    /// pool has lists to spare: validation and the policy's decision, in the order
    /// [`Ledger::reserve_plan`] makes them. False (having changed nothing) when that general
    /// path must decide.
    #[inline(always)]
    fn reserve_whole_share(&mut self, frame: FrameIndex, domain: DomainId) -> Result<bool, Error> {
        let (entry, _, splits) = self.share_checked(frame, domain)?;
        Ok(!(splits || entry.is_split() || self.pool.unused_lists() <= POOL_DEPARTURE_RESERVE))
    }

    /// Validates `domain` sharing `frame` as [`Ledger::reserve_plan`] does, in the same order
    /// (the frame, the domain, not mapped by it yet, the policy's decision, room for one more
    /// sharer): the frame's entry, the sharer's slot and whether the `cow` policy splits the
    /// frame.
    #[inline(always)]
    fn share_checked(
        &self,
        frame: FrameIndex,
        domain: DomainId,
    ) -> Result<(FrameEntry, Slot, bool), Error> {
        let entry = self.entry(frame)?;
        let kind = mapped_kind(frame, entry)?;
        let set = self.domain_set(domain)?;
        let (holder, sharers) = match entry.list() {
            None => {
                if entry.inline_word() as u16 == domain.0 {
                    return Err(Error::AlreadyMapped(frame, domain));
                }
                (SetId(entry.payer_raw()), 1)
            }
            Some(list) => {
                let slots = self.pool.get(list);
                if slots.iter().any(|slot| slot.domain == Some(domain)) {
                    return Err(Error::AlreadyMapped(frame, domain));
                }
                (
                    slots.first().map_or(SetId::KERNEL, |slot| slot.set),
                    slots.len(),
                )
            }
        };
        let event = ChargeEvent {
            what: EventKind::Share,
            kind,
            causer: Some(domain),
            candidates: Candidates {
                holder: Some(holder),
                creator: Some(set),
                ..Candidates::default()
            },
        };
        let splits = match self.policies.cow.decide(&event) {
            Decision::Split => true,
            Decision::Writer | Decision::Holder => false,
            _ => return Err(Error::BadDecision),
        };
        if sharers >= MAX_SHARERS {
            return Err(Error::TooManySharers);
        }
        let slot = Slot {
            set,
            domain: Some(domain),
        };
        Ok((entry, slot, splits))
    }

    /// Sets `net` to the per-set change of charges when `slot` joins `entry`'s slots and the
    /// frame is split among them all.
    fn share_net(&self, net: &mut NetChange, entry: FrameEntry, slot: Slot) {
        let mut one = Slot::NONE;
        let old = self.slots(&entry, &mut one);
        let (sharers, old_split) = (old.len(), entry.is_split());
        net.clear();
        for (index, slot) in old.iter().enumerate() {
            add_net(
                net,
                slot.set,
                -(slot_bytes(old_split, sharers, index) as i64),
            );
        }
        for (index, slot) in old.iter().enumerate() {
            add_net(net, slot.set, split_share_bytes(sharers + 1, index) as i64);
        }
        add_net(
            net,
            slot.set,
            split_share_bytes(sharers + 1, sharers) as i64,
        );
    }

    /// [`Ledger::reserve`] of any plan.
    #[inline(never)]
    fn reserve_plan(&mut self, plan: &Plan<'_>) -> Result<(), Error> {
        let ops = plan.ops();
        let mut charges = Charges::new();
        // Sharer lists are counted only when the pool might run short of them: every
        // operation needs at most one per frame it shares or copy it makes.
        let bound: usize = ops
            .iter()
            .map(|op| match *op {
                Op::Msgbuf { .. } | Op::Share { .. } | Op::CowCopy { .. } => 1,
                Op::ShareMany { frames, .. } => frames.len(),
                _ => 0,
            })
            .sum();
        let count_lists = bound + POOL_DEPARTURE_RESERVE > self.pool.unused_lists();
        let mut need = count_lists.then(PoolNeed::new);
        let mut copies = 0;
        let mut named: heapless::Vec<FrameIndex, { 2 * PLAN_OPS }> = heapless::Vec::new();
        for (index, op) in ops.iter().enumerate() {
            self.plan_op(index, op, &mut charges, need.as_mut())?;
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
        let share_many = ops.iter().any(|op| matches!(op, Op::ShareMany { .. }));
        self.resolved.set_plan(copies > 0, share_many);
        if let Some(need) = need {
            let lists = need.count() + copies;
            if lists > 0 && lists + POOL_DEPARTURE_RESERVE > self.pool.unused_lists() {
                return Err(Error::PoolFull);
            }
        }
        if let Err(denial) = self.check(&charges) {
            return Err(self.deny(denial, plan));
        }
        Ok(())
    }

    /// Counts a denial on the payer and traces the denied plan.
    #[cold]
    fn deny(&mut self, denial: Denial, plan: &Plan<'_>) -> Error {
        self.sets[denial.payer.index()].denied[denial.kind.index()] += 1;
        self.emit_plan(plan);
        Error::OverLimit(denial)
    }

    /// The one charge of a new single-payer frame, validated; `None` for other operations.
    #[inline(always)]
    fn single_charge(&self, op: &Op<'_>) -> Result<Option<Charge>, Error> {
        let (set, kind, causer) = match *op {
            Op::Anon { frame, domain } => {
                self.require_free(frame)?;
                (self.domain_set(domain)?, Kind::Anon, Some(domain))
            }
            Op::PageTable {
                frame,
                owner,
                causer,
            } => {
                self.require_free(frame)?;
                let set = self.page_table_payer(owner, causer)?;
                (set, Kind::PageTables, Some(causer))
            }
            Op::Kernel { frame, set, causer } => {
                self.require_free(frame)?;
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

    /// Validates operation `index` of a plan, adds its charges and (when `need` is given) the
    /// sharer lists it needs, and records what commit needs.
    fn plan_op(
        &mut self,
        index: usize,
        op: &Op<'_>,
        charges: &mut Charges,
        need: Option<&mut PoolNeed>,
    ) -> Result<(), Error> {
        match *op {
            Op::Anon { .. } | Op::PageTable { .. } | Op::Kernel { .. } => {
                if let Some(charge) = self.single_charge(op)? {
                    self.resolved.payer[index] = charge.set;
                    add_charge(
                        charges,
                        charge.set,
                        charge.kind,
                        charge.bytes,
                        charge.causer,
                    )?;
                }
                Ok(())
            }
            Op::Msgbuf {
                frame,
                sender,
                receiver,
            } => {
                self.require_free(frame)?;
                let (split, slots) = self.msgbuf_slots(sender, receiver)?;
                if let Some(need) = need {
                    need.add(&self.pool, &slots);
                }
                let mut net = NetChange::new();
                net_change(&mut net, &[], false, &slots, split);
                for &(set, delta) in net.iter() {
                    add_charge(charges, set, Kind::Msgbuf, delta, Some(sender))?;
                }
                Ok(())
            }
            Op::Share { frame, domain } => {
                let entry = self.entry(frame)?;
                let mut net = NetChange::new();
                let planned = self.plan_share(frame, entry, domain, charges, need, &mut net)?;
                self.resolved.set_splits(index, planned.splits);
                Ok(())
            }
            Op::ShareMany { frames, domain } => self.plan_share_many(frames, domain, charges, need),
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
                self.resolved.payer[index] = payer;
                add_charge(charges, payer, Kind::Cow, FRAME_BYTES as i64, Some(writer))
            }
        }
    }

    /// Validates `domain` sharing `frame` (entry `entry`), adds the charges (`net`, per frame)
    /// and the sharer list it needs.
    fn plan_share(
        &self,
        frame: FrameIndex,
        entry: FrameEntry,
        domain: DomainId,
        charges: &mut Charges,
        need: Option<&mut PoolNeed>,
        net: &mut NetChange,
    ) -> Result<PlannedShare, Error> {
        let (view, slot, splits) = self.share_decision(frame, entry, domain)?;
        let split = splits || view.split;
        let mut counted_past = false;
        if need.is_some() || view.split || split {
            let mut new = SlotList::new();
            let _ = new.extend_from_slice(view.slots());
            // share_decision checked there is room.
            let _ = new.push(slot);
            if let Some(need) = need {
                counted_past = need.add(&self.pool, &new);
            }
            net_change(net, view.slots(), view.split, &new, split);
            for &(set, delta) in net.iter() {
                add_charge(charges, set, view.kind, delta, view.causer)?;
            }
        } else {
            // Whole before and after, same holder: nothing moves.
            net.clear();
        }
        Ok(PlannedShare {
            splits,
            kind: view.kind,
            causer: view.causer,
            counted_past,
        })
    }

    /// [`Ledger::plan_share`] for every frame of a `ShareMany`, a run of equal entries at a
    /// time: a frame whose entry equals the previous one's is valid and changes the same
    /// charges (added up once the run ends) and needs the same sharer list.
    fn plan_share_many(
        &self,
        frames: &[FrameIndex],
        domain: DomainId,
        charges: &mut Charges,
        mut need: Option<&mut PoolNeed>,
    ) -> Result<(), Error> {
        let mut net = NetChange::new();
        let mut start = 0;
        while let Some(&frame) = frames.get(start) {
            let entry = self.entry(frame)?;
            let planned =
                self.plan_share(frame, entry, domain, charges, need.as_deref_mut(), &mut net)?;
            // The run: the frames after it with an equal entry.
            let (old, table) = (entry.bits(), &*self.frames);
            let rest = &frames[start + 1..];
            let extra = rest
                .iter()
                .position(|frame| {
                    table
                        .get(frame.index())
                        .is_none_or(|entry| entry.bits() != old)
                })
                .unwrap_or(rest.len());
            let end = start + 1 + extra;
            if planned.counted_past {
                if let Some(need) = need.as_deref_mut() {
                    need.more += extra;
                }
            }
            add_run_charges(charges, &net, &planned, extra as i64)?;
            start = end;
        }
        Ok(())
    }

    /// Checks one charge against every limit on the way to the root.
    #[inline(always)]
    fn check_one(&self, charge: &Charge) -> Result<(), Denial> {
        self.check_within(charge, charge.bytes as u64)
    }

    /// Checks one (positive) charge of a plan whose charges all go to the same set and add
    /// `total` bytes there, against every limit on the way to the root.
    #[inline(always)]
    fn check_within(&self, charge: &Charge, total: u64) -> Result<(), Denial> {
        let kind = charge.kind.index();
        let bytes = charge.bytes as u64;
        let mut cursor = Some(charge.set);
        while let Some(set_id) = cursor {
            let set = &self.sets[set_id.index()];
            if let Some(limit) = set.kind_limit_bytes[kind] {
                if set.subtree[kind].saturating_add(bytes) > limit {
                    return Err(charge.denial(set_id, true, bytes));
                }
            }
            if let Some(limit) = set.limit_bytes {
                if set.subtree_bytes.saturating_add(total) > limit {
                    return Err(charge.denial(set_id, false, total));
                }
            }
            cursor = set.parent;
        }
        Ok(())
    }

    /// Checks aggregated charges against every limit on the way to the root.
    fn check(&self, charges: &[Charge]) -> Result<(), Denial> {
        if let [charge] = charges {
            return if charge.bytes > 0 {
                self.check_one(charge)
            } else {
                Ok(())
            };
        }
        // When every charge goes to one set, every ancestor holds all of them.
        let one_set = charges
            .split_first()
            .is_none_or(|(first, rest)| rest.iter().all(|charge| charge.set == first.set));
        let total: i64 = if one_set {
            charges.iter().map(|charge| charge.bytes).sum()
        } else {
            0
        };
        for charge in charges.iter().filter(|charge| charge.bytes > 0) {
            let kind = charge.kind.index();
            let mut cursor = Some(charge.set);
            while let Some(set_id) = cursor {
                let set = &self.sets[set_id.index()];
                let (kind_net, total_net) = if one_set {
                    (charge.bytes, total)
                } else {
                    self.net_within(set_id, set.depth, charge.kind, charges)
                };
                if kind_net > 0 {
                    if let Some(limit) = set.kind_limit_bytes[kind] {
                        if set.subtree[kind].saturating_add(kind_net as u64) > limit {
                            return Err(charge.denial(set_id, true, kind_net as u64));
                        }
                    }
                }
                if total_net > 0 {
                    if let Some(limit) = set.limit_bytes {
                        if set.subtree_bytes.saturating_add(total_net as u64) > limit {
                            return Err(charge.denial(set_id, false, total_net as u64));
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
        // Fast path: one new frame.
        match *plan.ops() {
            [Op::Anon { frame, domain }] => {
                let payer = self.resolved.payer[0];
                self.create(frame, Kind::Anon, Some(domain), payer, Some(domain));
            }
            [Op::PageTable { frame, causer, .. }] => {
                let payer = self.resolved.payer[0];
                self.create(frame, Kind::PageTables, Some(causer), payer, None);
            }
            [Op::Kernel { frame, set, causer }] => {
                self.create(frame, Kind::Kernel, causer, set, None);
            }
            [Op::Share { frame, domain }] => {
                if !self.commit_one_share(frame, domain, self.resolved.splits(0)) {
                    self.commit_ops(plan.ops());
                }
            }
            [Op::CowCopy {
                original,
                copy,
                writer,
            }] => self.commit_one_copy(original, copy, writer),
            ref ops => self.commit_ops(ops),
        }
        if self.hook.is_some() {
            self.emit_plan(plan);
        }
    }

    /// Commits a plan of one copy-on-write copy: the copy, then the writer's departure.
    #[inline(always)]
    fn commit_one_copy(&mut self, original: FrameIndex, copy: FrameIndex, writer: DomainId) {
        let payer = self.resolved.payer[0];
        self.create(copy, Kind::Cow, Some(writer), payer, Some(writer));
        let result = self.depart(original, writer);
        debug_assert!(result.is_ok(), "reserved copy-on-write departure failed");
    }

    /// Commits the operations of a plan in order, then the copies' departures.
    #[inline(never)]
    fn commit_ops(&mut self, ops: &[Op<'_>]) {
        for (index, op) in ops.iter().enumerate() {
            match *op {
                Op::Anon { frame, domain } => {
                    let payer = self.resolved.payer[index];
                    self.create(frame, Kind::Anon, Some(domain), payer, Some(domain));
                }
                Op::PageTable { frame, causer, .. } => {
                    let payer = self.resolved.payer[index];
                    self.create(frame, Kind::PageTables, Some(causer), payer, None);
                }
                Op::Kernel { frame, set, causer } => {
                    self.create(frame, Kind::Kernel, causer, set, None);
                }
                Op::Msgbuf {
                    frame,
                    sender,
                    receiver,
                } => {
                    if let Ok((split, slots)) = self.msgbuf_slots(sender, receiver) {
                        let result = self.transition(
                            frame,
                            FrameEntry::FREE,
                            Kind::Msgbuf,
                            Some(sender),
                            split,
                            &slots,
                        );
                        debug_assert!(result.is_ok(), "reserved message buffer failed");
                    }
                }
                Op::Share { frame, domain } => {
                    let splits = self.resolved.splits(index);
                    // Unless a `ShareMany` came first, the frame is as reserve saw it.
                    if !splits
                        && !self.resolved.share_many()
                        && self.commit_whole_share(frame, domain)
                    {
                        continue;
                    }
                    let mut net = NetChange::new();
                    let _ = self.commit_share(frame, domain, Some(splits), &mut net);
                }
                Op::ShareMany { frames, domain } => self.commit_share_many(frames, domain),
                Op::CowCopy { copy, writer, .. } => {
                    let payer = self.resolved.payer[index];
                    self.create(copy, Kind::Cow, Some(writer), payer, Some(writer));
                }
            }
        }
        if self.resolved.copies() {
            for op in ops {
                if let Op::CowCopy {
                    original, writer, ..
                } = *op
                {
                    let result = self.depart(original, writer);
                    debug_assert!(result.is_ok(), "reserved copy-on-write departure failed");
                }
            }
        }
    }

    /// Commits a plan of one `Share` (`splits`: the policy's decision): reserve validated it
    /// and nothing changed since. False if the pool failed it (which reserve rules out).
    #[inline(always)]
    fn commit_one_share(&mut self, frame: FrameIndex, domain: DomainId, splits: bool) -> bool {
        let Ok(entry) = self.entry(frame) else {
            return false;
        };
        if !splits && !entry.is_split() {
            return self.commit_whole_share(frame, domain);
        }
        let (Some(kind), Ok(set)) = (entry.kind(), self.domain_set(domain)) else {
            return false;
        };
        let slot = Slot {
            set,
            domain: Some(domain),
        };
        let mut net = NetChange::new();
        self.share_net(&mut net, entry, slot);
        self.apply_net(&net, kind, entry.causer(), 1);
        self.store_appended(frame, entry, kind, true, entry.causer(), slot)
            .is_some()
    }

    /// Commits a `Share` whose frame stays whole, unchanged since reserve validated it: only
    /// the sharer list changes. False (having changed nothing) for a split frame.
    #[inline(always)]
    fn commit_whole_share(&mut self, frame: FrameIndex, domain: DomainId) -> bool {
        let Ok(entry) = self.entry(frame) else {
            return false;
        };
        let (Some(kind), Ok(set)) = (entry.kind(), self.domain_set(domain)) else {
            return false;
        };
        if entry.is_split() {
            return false;
        }
        let slot = Slot {
            set,
            domain: Some(domain),
        };
        self.store_appended(frame, entry, kind, false, entry.causer(), slot)
            .is_some()
    }

    /// `domain` maps `frame` too; `splits` is the policy's decision as reserve saw it
    /// (`None`: ask the policy). A
    /// frame that cannot be shared any more (one a `ShareMany` names twice) is skipped.
    /// Returns the run the frame starts (frames whose entry equals its old one), with its
    /// per-frame charges in `net`; `None` if it starts none.
    fn commit_share(
        &mut self,
        frame: FrameIndex,
        domain: DomainId,
        splits: Option<bool>,
        net: &mut NetChange,
    ) -> Option<Run> {
        let entry = self.entry(frame).ok()?;
        let (view, slot) = self.share_view(frame, entry, domain).ok()?;
        let splits = match splits {
            Some(splits) if view.slots().len() < MAX_SHARERS => splits,
            Some(_) => return None,
            None => self.share_split(&view, slot).ok()?,
        };
        let split = splits || view.split;
        let (kind, causer, charges) = (view.kind, view.causer, view.split || split);
        if charges {
            let mut new = SlotList::new();
            let _ = new.extend_from_slice(view.slots());
            // share_view / share_split checked there is room.
            let _ = new.push(slot);
            net_change(net, view.slots(), view.split, &new, split);
            self.apply_net(net, kind, causer, 1);
        } else {
            // Whole before and after, same holder: nothing moves.
            net.clear();
        }
        let stored = self.store_appended(frame, entry, kind, split, causer, slot)?;
        if stored == entry {
            // The new list took the id the old one just freed (no other frame had it): an
            // entry equal to the old one is this frame, already shared. No run.
            return None;
        }
        Some(Run {
            old: entry,
            new: stored,
            kind,
            causer,
            charges,
            extra: 0,
        })
    }

    /// Commits a `ShareMany` a run at a time: a frame whose entry equals the run's old one
    /// gets the run's new entry; the run's list references and charges are settled once.
    fn commit_share_many(&mut self, frames: &[FrameIndex], domain: DomainId) {
        let mut net = NetChange::new();
        let mut start = 0;
        while let Some(&frame) = frames.get(start) {
            start += 1;
            let Some(mut run) = self.commit_share(frame, domain, None, &mut net) else {
                continue;
            };
            let (old, new, table) = (run.old.bits(), run.new, &mut *self.frames);
            let first = start;
            for frame in &frames[first..] {
                match table.get_mut(frame.index()) {
                    Some(entry) if entry.bits() == old => *entry = new,
                    _ => break,
                }
                start += 1;
            }
            run.extra = (start - first) as u32;
            self.settle_run(&run, &net);
        }
    }

    /// Settles the `extra` frames of a run: their references to the new list (taken) and the
    /// old one (dropped), and their charges.
    fn settle_run(&mut self, run: &Run, net: &NetChange) {
        if run.extra == 0 {
            return;
        }
        if let Some(list) = run.new.list() {
            self.pool.retain(list, run.extra);
        }
        if let Some(list) = run.old.list() {
            self.pool.release_many(list, run.extra);
        }
        if run.charges {
            self.apply_net(net, run.kind, run.causer, u64::from(run.extra));
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
        let kind = match entry.usage() {
            FrameUse::Free => return Err(Error::FrameFree(frame)),
            FrameUse::Boot => return Err(Error::BootFrame(frame)),
            FrameUse::Charged(kind) if kind.is_mapped() => return Err(Error::WrongKind(frame)),
            FrameUse::Charged(kind) => kind,
        };
        if let Some((payer, _)) = entry.inline_slot() {
            // One payer, paying all of it.
            self.uncharge(payer, kind, FRAME_BYTES, entry.causer());
            self.frames[frame.index()] = FrameEntry::FREE;
            self.frames_in_use = checked_sub(self.frames_in_use, 1);
        } else {
            self.transition(frame, entry, kind, entry.causer(), false, &[])?;
        }
        self.emit(|| TraceRecord::Free { frame });
        Ok(())
    }

    #[inline(always)]
    fn depart(&mut self, frame: FrameIndex, domain: DomainId) -> Result<Unmapped, Error> {
        let entry = self.entry(frame)?;
        if let Some(kind) = entry.kind().filter(|kind| kind.is_mapped()) {
            match entry.list() {
                // Fast path: the only mapper of a single-slot frame leaves; it is freed.
                None => {
                    if entry.inline_word() as u16 == domain.0 && domain.0 != NO_DOMAIN {
                        let payer = SetId(entry.payer_raw());
                        self.uncharge(payer, kind, FRAME_BYTES, entry.causer());
                        self.frames[frame.index()] = FrameEntry::FREE;
                        self.frames_in_use = checked_sub(self.frames_in_use, 1);
                        return Ok(Unmapped::Freed);
                    }
                }
                // Fast path: a sharer that does not pay (e.g. a copy-on-write writer) leaves a
                // whole frame that one other domain, the payer's, still maps: the charge stays
                // put.
                Some(list) => {
                    if let [holder, sharer] = *self.pool.get(list) {
                        if sharer.domain == Some(domain)
                            && holder.domain.is_some()
                            && !entry.is_split()
                        {
                            self.pool.release(list);
                            self.frames[frame.index()] = FrameEntry::inline(
                                kind,
                                false,
                                entry.causer(),
                                holder.set,
                                holder.domain,
                            );
                            return Ok(Unmapped::StillMapped);
                        }
                        if let Some(unmapped) =
                            self.depart_pair(frame, entry, kind, [holder, sharer], domain)?
                        {
                            return Ok(unmapped);
                        }
                    }
                }
            }
        }
        self.depart_slow(frame, domain, entry)
    }

    /// [`Ledger::depart`] from a frame of two slots, both mapped, one of them `domain`'s
    /// (the payer leaving a whole frame, or either sharer of a split one): the `release`
    /// policy moves the departing slot's bytes to the other slot (`migrate`, if that fits) or
    /// keeps them there without a mapper (`stay`), exactly as [`Ledger::depart_slow`] decides.
    /// `None` (having changed nothing) for other frames.
    #[inline(never)]
    fn depart_pair(
        &mut self,
        frame: FrameIndex,
        entry: FrameEntry,
        kind: Kind,
        [first, second]: [Slot; 2],
        domain: DomainId,
    ) -> Result<Option<Unmapped>, Error> {
        let (position, leaving, other) = if first.domain == Some(domain) {
            (0, first, second)
        } else if second.domain == Some(domain) {
            (1, second, first)
        } else {
            return Ok(None);
        };
        let split = entry.is_split();
        let causer = entry.causer();
        if other.domain.is_none() || (!split && position == 1) {
            return Ok(None);
        }
        if !split && other.set == leaving.set {
            // The payer leaves, but its set still maps the frame through the other domain:
            // the charge is where it belongs already.
            let stay = Slot {
                set: leaving.set,
                domain: other.domain,
            };
            self.store(frame, entry, kind, false, causer, &[stay]);
            return Ok(Some(Unmapped::StillMapped));
        }
        let event = ChargeEvent {
            what: EventKind::Release,
            kind,
            causer: Some(domain),
            candidates: Candidates {
                holder: Some(first.set),
                departing: Some(leaving.set),
                surviving: Some(other.set),
                ..Candidates::default()
            },
        };
        // Whole: the payer's 4096 bytes move; split: a half (and the survivor pays it all).
        let moved = slot_bytes(split, 2, position);
        if self.policies.release.decide(&event) == Decision::Migrate
            && self.fits_move(leaving.set, other.set, kind, moved)
        {
            if leaving.set != other.set {
                self.uncharge(leaving.set, kind, moved, causer);
                self.charge(other.set, kind, moved, causer);
            }
            self.store(frame, entry, kind, split, causer, &[other]);
        } else {
            let mut stay = [first, second];
            stay[position].domain = None;
            self.pool_room(entry, &stay)?;
            self.store(frame, entry, kind, split, causer, &stay);
        }
        Ok(Some(Unmapped::StillMapped))
    }

    /// Whether moving `bytes` of `kind` from set `from` to set `to` fits every limit on the
    /// way from `to` to the root (net of the bytes leaving `from`, in the subtrees holding
    /// both); no denial is counted.
    fn fits_move(&self, from: SetId, to: SetId, kind: Kind, bytes: u64) -> bool {
        let index = kind.index();
        let mut cursor = Some(to);
        while let Some(set_id) = cursor {
            let set = &self.sets[set_id.index()];
            if self.is_within(from, set_id, set.depth) {
                // This set and its ancestors hold both ends: nothing changes there.
                return true;
            }
            if set.kind_limit_bytes[index]
                .is_some_and(|limit| set.subtree[index].saturating_add(bytes) > limit)
                || set
                    .limit_bytes
                    .is_some_and(|limit| set.subtree_bytes.saturating_add(bytes) > limit)
            {
                return false;
            }
            cursor = set.parent;
        }
        true
    }

    /// [`Ledger::depart`] in general.
    #[inline(never)]
    fn depart_slow(
        &mut self,
        frame: FrameIndex,
        domain: DomainId,
        entry: FrameEntry,
    ) -> Result<Unmapped, Error> {
        let kind = mapped_kind(frame, entry)?;
        self.domain(domain)?;
        let view = self.view(entry).ok_or(Error::FrameFree(frame))?;
        let (split, causer) = (view.split, view.causer);
        let slots = view.slots();
        let position = view
            .position(domain)
            .ok_or(Error::NotMapped(frame, domain))?;
        if mappers(slots) == 1 {
            self.transition(frame, entry, kind, causer, split, &[])?;
            return Ok(Unmapped::Freed);
        }
        if !split {
            if position != 0 {
                // Not the payer: it just leaves; the charge does not move.
                if let [holder, _] = *slots {
                    self.store(frame, entry, kind, false, causer, &[holder]);
                } else {
                    let mut stay = SlotList::new();
                    let _ = stay.extend_from_slice(slots);
                    stay.remove(position);
                    self.pool_room(entry, &stay)?;
                    self.store(frame, entry, kind, false, causer, &stay);
                }
                return Ok(Unmapped::StillMapped);
            }
            // The payer leaves, but its set still maps the frame through another domain: the
            // charge is where it belongs already.
            let payer = slots[0].set;
            if let Some(other) = (1..slots.len())
                .find(|&index| slots[index].domain.is_some() && slots[index].set == payer)
            {
                let mut stay = SlotList::new();
                let _ = stay.extend_from_slice(slots);
                stay[0].domain = slots[other].domain;
                stay.remove(other);
                self.pool_room(entry, &stay)?;
                self.store(frame, entry, kind, false, causer, &stay);
                return Ok(Unmapped::StillMapped);
            }
        }
        // The departing domain's set pays (all, or a share): the release policy decides.
        let mut migrate = SlotList::new();
        let _ = migrate.extend_from_slice(slots);
        migrate.remove(position);
        if !split {
            if let Some(first) = migrate.iter().position(|slot| slot.domain.is_some()) {
                let survivor = migrate.remove(first);
                // Just removed one: room for it.
                let _ = migrate.insert(0, survivor);
            }
        }
        let event = ChargeEvent {
            what: EventKind::Release,
            kind,
            causer: Some(domain),
            candidates: Candidates {
                holder: view.holder(),
                departing: Some(slots[position].set),
                surviving: migrate
                    .iter()
                    .find(|slot| slot.domain.is_some())
                    .map(|slot| slot.set),
                ..Candidates::default()
            },
        };
        let new = if self.policies.release.decide(&event) == Decision::Migrate
            && self.fits(slots, &migrate, split, kind, causer)
        {
            migrate
        } else {
            let mut stay = SlotList::new();
            let _ = stay.extend_from_slice(slots);
            stay[position].domain = None;
            stay
        };
        self.transition(frame, entry, kind, causer, split, &new)?;
        Ok(Unmapped::StillMapped)
    }

    /// Whether moving a frame from `old` to `new` slots fits every limit (no denial is
    /// counted).
    fn fits(
        &self,
        old: &[Slot],
        new: &[Slot],
        split: bool,
        kind: Kind,
        causer: Option<DomainId>,
    ) -> bool {
        let mut net = NetChange::new();
        net_change(&mut net, old, split, new, split);
        let mut charges = Charges::new();
        for &(set, delta) in net.iter() {
            if add_charge(&mut charges, set, kind, delta, causer).is_err() {
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

    /// The payers of a new message buffer per the `msgbuf` policy, and whether they split it.
    fn msgbuf_slots(
        &self,
        sender: DomainId,
        receiver: DomainId,
    ) -> Result<(bool, SlotList), Error> {
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
        Ok((split, slots))
    }

    /// Validates `domain` sharing `frame` (whose entry is `entry`): the frame as it is and the
    /// slot the sharer gets.
    #[inline(always)]
    fn share_view(
        &self,
        frame: FrameIndex,
        entry: FrameEntry,
        domain: DomainId,
    ) -> Result<(View<'_>, Slot), Error> {
        mapped_kind(frame, entry)?;
        let set = self.domain_set(domain)?;
        let view = self.view(entry).ok_or(Error::FrameFree(frame))?;
        if view.position(domain).is_some() {
            return Err(Error::AlreadyMapped(frame, domain));
        }
        Ok((
            view,
            Slot {
                set,
                domain: Some(domain),
            },
        ))
    }

    /// The `cow` policy's decision on sharing `view` with `slot`: whether it splits the frame
    /// (a split frame stays split either way); [`Error::TooManySharers`] when it has no room
    /// for one more.
    #[inline(always)]
    fn share_split(&self, view: &View<'_>, slot: Slot) -> Result<bool, Error> {
        let event = ChargeEvent {
            what: EventKind::Share,
            kind: view.kind,
            causer: slot.domain,
            candidates: Candidates {
                holder: view.holder(),
                creator: Some(slot.set),
                ..Candidates::default()
            },
        };
        let split = match self.policies.cow.decide(&event) {
            Decision::Split => true,
            Decision::Writer | Decision::Holder => false,
            _ => return Err(Error::BadDecision),
        };
        if view.slots().len() >= MAX_SHARERS {
            return Err(Error::TooManySharers);
        }
        Ok(split)
    }

    /// [`Ledger::share_view`] and [`Ledger::share_split`]: the frame, the new slot and
    /// whether the policy splits it.
    #[inline(always)]
    fn share_decision(
        &self,
        frame: FrameIndex,
        entry: FrameEntry,
        domain: DomainId,
    ) -> Result<(View<'_>, Slot, bool), Error> {
        let (view, slot) = self.share_view(frame, entry, domain)?;
        let split = self.share_split(&view, slot)?;
        Ok((view, slot, split))
    }

    /// Validates a copy-on-write copy of `original` by `writer` and names its payer.
    #[inline(always)]
    fn cow_copy_payer(&self, original: FrameIndex, writer: DomainId) -> Result<SetId, Error> {
        let entry = self.require_mapped(original)?;
        let writer_set = self.domain_set(writer)?;
        let mut one = Slot::NONE;
        let slots = self.slots(&entry, &mut one);
        if !slots.iter().any(|slot| slot.domain == Some(writer)) {
            return Err(Error::NotMapped(original, writer));
        }
        if mappers(slots) < 2 {
            return Err(Error::NotShared(original));
        }
        let holder = slots.first().map_or(writer_set, |slot| slot.set);
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

    #[inline(always)]
    fn require_free(&self, frame: FrameIndex) -> Result<(), Error> {
        match self.entry(frame)?.usage() {
            FrameUse::Free => Ok(()),
            FrameUse::Boot => Err(Error::BootFrame(frame)),
            FrameUse::Charged(_) => Err(Error::FrameInUse(frame)),
        }
    }

    #[inline(always)]
    fn require_mapped(&self, frame: FrameIndex) -> Result<FrameEntry, Error> {
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
    fn slots<'s>(&'s self, entry: &FrameEntry, one: &'s mut Slot) -> &'s [Slot] {
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
    fn view(&self, entry: FrameEntry) -> Option<View<'_>> {
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

    /// A new single-slot frame; the fast path of every new frame.
    #[inline]
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

    /// [`Error::PoolFull`] when storing `new` slots in place of `entry`'s would need a list
    /// the exhausted pool cannot hold.
    #[inline]
    fn pool_room(&self, entry: FrameEntry, new: &[Slot]) -> Result<(), Error> {
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
    fn store(
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
    fn store_appended(
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
    fn append_slot(&mut self, entry: FrameEntry, key: u64, slot: Slot) -> Option<u16> {
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
    fn transition(
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
    fn apply_net(&mut self, net: &NetChange, kind: Kind, causer: Option<DomainId>, times: u64) {
        for &(set, delta) in net.iter() {
            if delta > 0 {
                self.charge(set, kind, delta.unsigned_abs() * times, causer);
            } else if delta < 0 {
                self.uncharge(set, kind, delta.unsigned_abs() * times, causer);
            }
        }
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
    /// counters: conservation, per-set current and paid-for sums, subtree sums, peaks, totals,
    /// sharer-list references. O(frames); for tests and debug builds.
    pub fn audit(&self) -> Result<(), &'static str> {
        let mut current = [[0u64; Kind::COUNT]; MAX_SETS];
        let mut paid_for = [0u64; MAX_SETS];
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

/// A name for `entry`'s slots, for the pool's memo of appends: its list id, or its inline
/// slot (equal names, equal slots, while the list is in use).
#[inline(always)]
fn slots_key(entry: FrameEntry) -> u64 {
    match entry.list() {
        Some(list) => 1 << 32 | u64::from(list),
        None => u64::from(entry.inline_word()),
    }
}

/// The kind of a frame that must be mapped (`anon` or `cow`), or why it is not.
#[inline(always)]
fn mapped_kind(frame: FrameIndex, entry: FrameEntry) -> Result<Kind, Error> {
    match entry.usage() {
        FrameUse::Free => Err(Error::FrameFree(frame)),
        FrameUse::Boot => Err(Error::BootFrame(frame)),
        FrameUse::Charged(kind) if kind.is_mapped() => Ok(kind),
        FrameUse::Charged(_) => Err(Error::WrongKind(frame)),
    }
}

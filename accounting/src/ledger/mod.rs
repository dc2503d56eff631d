//! The ledger: charge sets, domains and the per-frame table, changed only through two-phase
//! operations that keep the books balanced to the byte.
//!
//! Invariants, after every public call:
//! - conservation: the bytes charged over all sets equal 4096 × frames in use;
//! - every set's `below` is its descendants' `current` summed (so its subtree sums,
//!   [`ChargeSet::subtree`], are its `current` plus its children's);
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
//!
//! Files, by concern: this one holds the types and the ledger itself; [`tree`] its queries
//! and the set/domain tree; [`reserve`] the general reservation (policies asked, limits checked);
//! [`fast`] the fast paths, each naming the general function it must agree with; [`commit`]
//! applying a reservation; [`batch`] the plans of one operation too large for one plan,
//! reserved together; [`release`] departures and frees; [`moves`] a domain moving to
//! another set; [`payers`] the payer decisions;
//! [`storage`] frame entries, sharer lists and counters; [`audit`] the full recount.

use crate::error::{Denial, Error};
use crate::event::{
    Candidates, ChargeEvent, Decision, EventKind, Headroom, Policies, Policy, PolicyKey,
};
use crate::frame::{FrameEntry, FrameUse, NO_DOMAIN};
use crate::ids::{
    split_share_bytes, valid_name, DomainId, FrameIndex, Kind, Name, SetId, FRAME_BYTES, MAX_DEPTH,
    MAX_DOMAINS, MAX_SETS, MAX_SHARERS, PLAN_CHARGES, PLAN_OPS, POOL_DEPARTURE_RESERVE,
    SHARER_LISTS,
};
use crate::model::{ChargeSet, Conservation, Domain, DomainState, KeeperChoice, KeeperChoices};
use crate::plan::{Op, Plan};
use crate::sharers::{SharerPool, Slot, SlotList};
use crate::trace::{PolicyName, TraceHook, TraceRecord, FRAMES_PER_RECORD};

mod audit;
mod batch;
mod commit;
mod fast;
mod fast_frames;
mod moves;
mod paging;
mod payers;
mod release;
mod reserve;
mod set_table;
mod storage;
mod tree;

pub use batch::{Batch, BatchNeed};

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

fn add_charge<const N: usize>(
    charges: &mut heapless::Vec<Charge, N>,
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
    const fn new() -> Self {
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
#[derive(Clone, Copy)]
struct Resolved {
    payer: [SetId; PLAN_OPS],
    /// Bit `i`: the `cow` policy splits the frame operation `i` shares.
    splits: u32,
    /// 1 when the plan's first operation is a `ShareMany` whose frames are one run (all one
    /// entry), else 0 (set by that operation's reserve: read only for such a plan).
    first_single_run: u8,
    /// [`Resolved::COPIES`] | [`Resolved::SHARE_MANY`].
    flags: u8,
}

const _: () = assert!(PLAN_OPS <= 32);

impl Resolved {
    const NONE: Resolved = Resolved {
        payer: [SetId::KERNEL; PLAN_OPS],
        splits: 0,
        first_single_run: 0,
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
    fn set_first_single_run(&mut self, single: bool) {
        self.first_single_run = u8::from(single);
    }

    /// Whether operation `index`, a `ShareMany`, is the plan's first and one run: then nothing
    /// committed before it in the plan touched its frames.
    #[inline(always)]
    fn single_run(&self, index: usize) -> bool {
        index == 0 && self.first_single_run != 0
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
/// tables; about 260 KB, so a kernel keeps it in a static ([`Ledger::empty`] is `const`).
///
/// Laid out in declaration order (`repr(C)`), the fields every charge touches first: the
/// frame table, the counters, the trace hook, then the domains (small), then the sharer pool
/// (its counters first) and the sets (large). So a charge reaches everything but a set's own
/// fields and a sharer list at offsets one load instruction encodes, without building
/// addresses.
///
/// The ledger offers niches (its set records hold `Option`s), and a struct that holds it is
/// laid out around its largest niche unless it keeps declaration order: a kernel that needs
/// its other fields at small offsets keeps the ledger in a `repr(C)` struct, last (as
/// Tally's books do).
#[repr(C)]
pub struct Ledger<'a> {
    pub(crate) frames: &'a mut [FrameEntry],
    pub(crate) frames_in_use: u64,
    /// Counts the changes the ledger has made (every traced change, traced or not): equal
    /// revisions mean equal books, so a recount of unchanged books may be skipped. Beside
    /// `frames_in_use`: a new frame updates both with one load and one store.
    revision: u64,
    pub(crate) boot_frames: u64,
    hook: Option<TraceHook>,
    /// 1 when some set has a limit or a per-kind sub-limit, else 0: with none, a charge
    /// cannot be denied and the fast paths skip the limit walk (`refresh_limited` keeps it).
    limited: u8,
    /// Non-zero when some set has a limit (bit 0) or changes are traced (bit 1): the one
    /// byte the copy-on-write pair copy tests before declining to the general path, which
    /// checks limits and traces (`refresh_unusual` keeps it).
    unusual: u8,
    resolved: Resolved,
    /// The decisions the policies make whatever the event ([`Policy::fixed`]), by
    /// [`EventKind::index`]: asked once, when the policies are set. Each is 1 + its index in
    /// [`Decision::ALL`], or 0 for none (bytes, not `Option`s: a fast path compares one,
    /// [`Ledger::fixed_is`]).
    fixed: [u8; EventKind::COUNT],
    /// With the `differential` feature: non-zero turns every fast path off (see [`fast`]).
    #[cfg(feature = "differential")]
    general_only: u8,
    pub(crate) policies: Policies,
    pub(crate) domains: heapless::Vec<Domain, MAX_DOMAINS>,
    pub(crate) pool: SharerPool,
    pub(crate) sets: set_table::SetTable,
    /// The charges and sharer lists of the batch being reserved ([`batch`]).
    batch: batch::Accumulated,
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
            sets: set_table::SetTable::new(),
            domains: heapless::Vec::new(),
            pool: SharerPool::new(),
            batch: batch::Accumulated::NEW,
            policies: Policies {
                cow: &Unset,
                msgbuf: &Unset,
                pagetable: &Unset,
                release: &Unset,
                kernel: &Unset,
                moves: &Unset,
            },
            fixed: [0; EventKind::COUNT],
            limited: 0,
            unusual: 0,
            frames_in_use: 0,
            boot_frames: 0,
            hook: None,
            revision: 0,
            resolved: Resolved::NONE,
            #[cfg(feature = "differential")]
            general_only: 0,
        }
    }
}

impl<'a> Ledger<'a> {
    /// A ledger over `frames` (one entry per RAM frame; every entry is reset to free) running
    /// under `policies`, with the built-in `kernel` set (id 0) and no domains.
    pub fn new(frames: &'a mut [FrameEntry], policies: Policies) -> Ledger<'a> {
        let mut ledger = Ledger {
            frames: &mut [],
            sets: set_table::SetTable::new(),
            domains: heapless::Vec::new(),
            pool: SharerPool::new(),
            batch: batch::Accumulated::NEW,
            policies,
            fixed: [0; EventKind::COUNT],
            limited: 0,
            unusual: 0,
            frames_in_use: 0,
            boot_frames: 0,
            hook: None,
            revision: 0,
            resolved: Resolved::NONE,
            #[cfg(feature = "differential")]
            general_only: 0,
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
        self.fixed = EventKind::ALL.map(|what| {
            policies
                .get(what.key())
                .fixed(what)
                .map_or(0, |decision| decision as u8 + 1)
        });
        self.frames_in_use = 0;
        self.boot_frames = 0;
        self.hook = None;
        self.limited = 0;
        self.unusual = 0;
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
        self.refresh_unusual();
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
    fn emit(&mut self, record: impl FnOnce() -> TraceRecord) {
        if self.traced() {
            let Some(hook) = self.hook else { return };
            hook(&record());
        }
    }

    /// Notes a change (see [`Ledger::revision`]) and says whether changes are traced.
    #[inline(always)]
    fn traced(&mut self) -> bool {
        self.revision = self.revision.wrapping_add(1);
        self.hook.is_some()
    }

    /// Records whether some set has a limit or changes are traced (see `unusual`).
    fn refresh_unusual(&mut self) {
        self.unusual = self.limited | (u8::from(self.hook.is_some()) << 1);
    }

    /// Whether changes are traced, for a change that charges bytes: it counts in the
    /// revision through the charged totals (see [`Ledger::revision`]), so it need not note
    /// itself as [`traced`](Self::traced) does.
    #[inline(always)]
    fn charged_and_traced(&self) -> bool {
        self.hook.is_some()
    }

    /// A count that grows with every change the ledger makes, so equal revisions mean the
    /// books are as they were and a recount would find what it found before: the changes
    /// noted one by one (each one traced when a trace hook is set) plus every byte ever
    /// charged or uncharged (a charge adds to `current`; an uncharge takes from `current` and
    /// adds twice as much to `uncharged_total_bytes`), which the straight-line charges count
    /// instead of noting themselves. O(sets): for recounts, not hot paths.
    pub fn revision(&self) -> u64 {
        self.sets.iter().fold(self.revision, |revision, set| {
            revision
                .wrapping_add(set.current_bytes())
                .wrapping_add(set.uncharged_total_bytes.wrapping_mul(2))
        })
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

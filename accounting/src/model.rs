//! The report model: charge sets and domains as the ledger keeps them and reports them.
//!
//! Invariants (kept by the ledger): `current` is what this set itself pays, `below` is
//! `current` summed over its descendants (so [`ChargeSet::subtree`], `current + below`, is
//! the sum over the set and its descendants); [`ChargeSet::peak`] `[k] >= current[k]`;
//! [`ChargeSet::charged_total_bytes`] `- uncharged_total_bytes == sum(current)`; `caused[d][k]` is the part
//! of `current[k]` caused by domain `d`, whatever its set (so `Σ_d caused[d][k] <= current[k]`,
//! the rest having no causer); `charged()[k] == current[k] + uncharged[k]`, summing to `charged_total_bytes()`.
//! What can be derived is not stored (a charge updates fewer counters): the subtree sums
//! and the charged total are methods.

use crate::ids::{Kind, Name, SetId, MAX_DOMAINS};
use core::fmt;

/// Bytes per kind, indexed by [`Kind::index`].
pub type PerKind = [u64; Kind::COUNT];

/// A charge set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeSet {
    /// The set's name (`[a-z0-9_-]{1,23}`).
    pub name: Name,
    /// The parent set, if any.
    pub parent: Option<SetId>,
    /// Depth in the tree: 1 for a set with no parent.
    pub depth: u8,
    /// Limit on `subtree` bytes (all kinds), if any.
    pub limit_bytes: Option<u64>,
    /// Per-kind sub-limits on `subtree` bytes of that kind.
    pub kind_limit_bytes: [Option<u64>; Kind::COUNT],
    /// Bytes this set pays now, per kind.
    pub current: PerKind,
    /// Highest `current` seen before its last decrease, per kind: the peak is this or
    /// `current`, whichever is higher ([`ChargeSet::peak`]), as `current` only grows between
    /// decreases. So a charge need not touch it; an uncharge raises it first.
    pub peak_before: PerKind,
    /// Bytes this set's descendants pay now, per kind (with `current`, the subtree's sums
    /// checked against the limits: [`ChargeSet::subtree`]).
    pub below: PerKind,
    /// Sum of `below` over kinds (what a limit check adds to the set's own bytes).
    pub below_bytes: u64,
    /// Bytes ever uncharged from this set.
    pub uncharged_total_bytes: u64,
    /// Denied charges with this set as payer, per kind.
    pub denied: PerKind,
    /// Denied charges whose failing limit was this set's own (its limit or a per-kind
    /// sub-limit), per kind, whoever the payer was (a descendant, when an ancestor's limit
    /// fails): cgroup v2's `memory.events` `max`, counted where the limit is.
    pub limit_hits: PerKind,
    /// Bytes this set pays now, per causer domain (its own domains included) and kind: the
    /// payer × causer table of the report.
    pub caused: [PerKind; MAX_DOMAINS],
    /// Bytes ever uncharged from this set, per kind (bytes ever charged per kind are
    /// `current + uncharged`: [`ChargeSet::charged`]; only the uncharge path keeps a counter).
    pub uncharged: PerKind,
    /// Domains of this set stopped, per [`StopReason`] (in [`StopReason::ALL`] order): the
    /// `memory.events`-style counters.
    pub stops: [u32; StopReason::ALL.len()],
    /// Bytes ever moved into this set by a domain moving to it under `move = migrate`, per
    /// kind (cumulative; also counted in the charged totals).
    pub moved_in: PerKind,
    /// Bytes ever moved out of this set by a domain moving away under `move = migrate`, per
    /// kind (cumulative; also counted in the uncharged totals).
    pub moved_out: PerKind,
    /// The `high` bound on `subtree_bytes` (cgroup v2's `memory.high`), if any: above it, the
    /// keeper (pager) of a domain of the subtree is asked to reclaim, not denied.
    pub high_bytes: Option<u64>,
    /// Times a domain's keeper was asked to reclaim because this set was above its `high`
    /// (`memory.events` `high`).
    pub high_events: u64,
    /// Pages of this set's domains evicted by their pager (`page_out`).
    pub evictions: u64,
    /// Pages of this set's domains brought back by their pager (`page_in`).
    pub page_ins: u64,
}

impl ChargeSet {
    /// A record of no set (the set table's unused records).
    pub(crate) const BLANK: ChargeSet = ChargeSet {
        name: Name::new(),
        parent: None,
        depth: 0,
        limit_bytes: None,
        kind_limit_bytes: [None; Kind::COUNT],
        current: [0; Kind::COUNT],
        peak_before: [0; Kind::COUNT],
        below: [0; Kind::COUNT],
        below_bytes: 0,
        uncharged_total_bytes: 0,
        denied: [0; Kind::COUNT],
        limit_hits: [0; Kind::COUNT],
        caused: [[0; Kind::COUNT]; MAX_DOMAINS],
        uncharged: [0; Kind::COUNT],
        stops: [0; StopReason::ALL.len()],
        moved_in: [0; Kind::COUNT],
        moved_out: [0; Kind::COUNT],
        high_bytes: None,
        high_events: 0,
        evictions: 0,
        page_ins: 0,
    };

    pub(crate) fn new(
        name: Name,
        parent: Option<SetId>,
        depth: u8,
        limit_bytes: Option<u64>,
    ) -> Self {
        ChargeSet {
            name,
            parent,
            depth,
            limit_bytes,
            ..ChargeSet::BLANK
        }
    }

    /// Bytes this set pays now that `domain` caused, all kinds (the report's `paid_for` when
    /// the domain is bound to another set).
    pub fn caused_by(&self, domain: usize) -> u64 {
        self.caused
            .get(domain)
            .map_or(0, |kinds| kinds.iter().sum())
    }

    /// Bytes ever charged to this set, per kind.
    pub fn charged(&self) -> PerKind {
        let mut charged = self.current;
        for (sum, bytes) in charged.iter_mut().zip(self.uncharged) {
            *sum += bytes;
        }
        charged
    }

    /// Highest `current` ever, per kind.
    pub fn peak(&self) -> PerKind {
        let mut peak = self.peak_before;
        for (high, now) in peak.iter_mut().zip(self.current) {
            *high = (*high).max(now);
        }
        peak
    }

    /// Bytes this set and its descendants pay now, per kind (checked against the limits).
    pub fn subtree(&self) -> PerKind {
        let mut subtree = self.current;
        for (sum, bytes) in subtree.iter_mut().zip(self.below) {
            *sum += bytes;
        }
        subtree
    }

    /// Bytes this set and its descendants pay now of the kind of index `kind`.
    #[inline]
    pub fn subtree_of(&self, kind: usize) -> u64 {
        self.current[kind] + self.below[kind]
    }

    /// Bytes this set and its descendants pay now, all kinds.
    #[inline]
    pub fn subtree_bytes(&self) -> u64 {
        self.current_bytes() + self.below_bytes
    }

    /// Bytes ever charged to this set: what it pays now and what it was ever uncharged.
    pub fn charged_total_bytes(&self) -> u64 {
        self.current_bytes() + self.uncharged_total_bytes
    }

    /// Bytes this set pays now, all kinds.
    pub fn current_bytes(&self) -> u64 {
        self.current.iter().sum()
    }

    /// Bytes this set pays now of `kind`.
    pub fn current_of(&self, kind: Kind) -> u64 {
        self.current[kind.index()]
    }
}

/// Why a domain stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// A charge it needed was denied by a limit (e.g. a page fault over its set's limit).
    OverLimit,
    /// The machine ran out of free frames.
    OutOfMemory,
    /// An unhandled fault (bad address, bad instruction).
    Fault,
    /// Stopped by another domain or by the kernel.
    Killed,
}

impl StopReason {
    /// Every reason.
    pub const ALL: [StopReason; 4] = [
        StopReason::OverLimit,
        StopReason::OutOfMemory,
        StopReason::Fault,
        StopReason::Killed,
    ];

    /// The report spelling: `over-limit`, `out-of-memory`, `fault`, `killed`.
    pub const fn name(self) -> &'static str {
        match self {
            StopReason::OverLimit => "over-limit",
            StopReason::OutOfMemory => "out-of-memory",
            StopReason::Fault => "fault",
            StopReason::Killed => "killed",
        }
    }

    /// The key in a report's `events` object: `over_limit`, `out_of_memory`, `fault`,
    /// `killed`.
    pub const fn key(self) -> &'static str {
        match self {
            StopReason::OverLimit => "over_limit",
            StopReason::OutOfMemory => "out_of_memory",
            StopReason::Fault => "fault",
            StopReason::Killed => "killed",
        }
    }

    /// The position in [`StopReason::ALL`].
    pub const fn index(self) -> usize {
        match self {
            StopReason::OverLimit => 0,
            StopReason::OutOfMemory => 1,
            StopReason::Fault => 2,
            StopReason::Killed => 3,
        }
    }

    /// The reason spelled `name`.
    pub fn from_name(name: &str) -> Option<StopReason> {
        StopReason::ALL
            .into_iter()
            .find(|reason| reason.name() == name)
    }
}

/// A domain's state, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DomainState {
    /// Runnable or running.
    Running,
    /// Waiting in IPC.
    Blocked,
    /// Exited of its own accord.
    Exited,
    /// Stopped by the kernel, for a reason.
    Stopped(StopReason),
}

impl DomainState {
    /// The report spelling of the state: `running`, `blocked`, `exited` or `stopped`.
    pub const fn name(self) -> &'static str {
        match self {
            DomainState::Running => "running",
            DomainState::Blocked => "blocked",
            DomainState::Exited => "exited",
            DomainState::Stopped(_) => "stopped",
        }
    }

    /// The stop reason, if stopped.
    pub const fn stop_reason(self) -> Option<StopReason> {
        match self {
            DomainState::Stopped(reason) => Some(reason),
            _ => None,
        }
    }
}

/// Writes the trace spelling: `running`, `blocked`, `exited` or `stopped:REASON`.
impl fmt::Display for DomainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainState::Stopped(reason) => write!(f, "stopped:{}", reason.name()),
            other => f.write_str(other.name()),
        }
    }
}

impl DomainState {
    /// Parses the trace spelling written by `Display`.
    pub fn parse(text: &str) -> Option<DomainState> {
        match text {
            "running" => Some(DomainState::Running),
            "blocked" => Some(DomainState::Blocked),
            "exited" => Some(DomainState::Exited),
            _ => StopReason::from_name(text.strip_prefix("stopped:")?).map(DomainState::Stopped),
        }
    }
}

/// A domain as the ledger knows it. Aligned to 128 bytes (it is 120): a record's address is
/// the table's plus the index shifted, which a charge's payer lookup takes in one instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(align(128))]
pub struct Domain {
    /// The domain's name (`[a-z0-9_-]{1,23}`).
    pub name: Name,
    /// The set it is bound to (for life).
    pub set: SetId,
    /// Its state.
    pub state: DomainState,
    /// The code it passed to `exit`; meaningful only in state `Exited`.
    pub exit_code: i32,
    /// The last charge it caused that was denied: with an over-limit stop, why it stopped
    /// (which set would have paid, whose limit failed, the kind and the bytes).
    pub last_denial: Option<crate::error::Denial>,
    /// Faults it sent its keeper (each one a sleep, then a retry or a stop).
    pub keeper_faults: u64,
    /// Of those, system calls restarted from the beginning (a send a limit refused).
    pub restarts: u64,
    /// How its keeper-decided charges were decided (`cow = keeper`, `msgbuf = keeper`).
    pub keeper_choices: KeeperChoices,
    /// The decision its next keeper-decided charge of a kind (`Cow` or `Msgbuf`) takes, if
    /// one was made and not yet used.
    pub pending_choice: Option<(Kind, KeeperChoice)>,
}

/// How a keeper-decided charge of a domain is decided: the set its keeper named, or the
/// policy's fallback and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeeperChoice {
    /// The keeper answered naming this set (one it holds a capability to).
    Answered(SetId),
    /// The keeper did not answer in time (or could not: it ended, or every domain waited).
    Timeout,
    /// The keeper answered, but named no set it holds a capability to.
    Wrong,
    /// There was no keeper to ask.
    NoKeeper,
}

impl KeeperChoice {
    /// Its trace spelling: `answered SET`, `timeout`, `wrong`, `none`.
    pub fn name(self) -> &'static str {
        match self {
            KeeperChoice::Answered(_) => "answered",
            KeeperChoice::Timeout => "timeout",
            KeeperChoice::Wrong => "wrong",
            KeeperChoice::NoKeeper => "none",
        }
    }

    /// The set it names, if the keeper answered with one.
    pub fn set(self) -> Option<SetId> {
        match self {
            KeeperChoice::Answered(set) => Some(set),
            _ => None,
        }
    }
}

/// Per domain: how many of its keeper-decided charges each outcome decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeeperChoices {
    /// Paid by the set its keeper named.
    pub answered: u64,
    /// The fallback: the keeper did not answer in time.
    pub timeout: u64,
    /// The fallback: the keeper named no set it holds a capability to.
    pub wrong: u64,
    /// The fallback: no keeper to ask.
    pub none: u64,
}

impl KeeperChoices {
    /// Counts one outcome.
    pub fn count(&mut self, choice: KeeperChoice) {
        match choice {
            KeeperChoice::Answered(_) => self.answered += 1,
            KeeperChoice::Timeout => self.timeout += 1,
            KeeperChoice::Wrong => self.wrong += 1,
            KeeperChoice::NoKeeper => self.none += 1,
        }
    }
}

/// The result of the conservation check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conservation {
    /// Bytes charged over all sets, the kernel reserve included.
    pub charged_bytes: u64,
    /// 4096 × frames in use (boot frames excluded).
    pub in_use_bytes: u64,
    /// Whether the two are equal.
    pub ok: bool,
}

/// What a pager did to a domain's memory, or was asked to do ([`crate::Ledger::note_paging`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingEvent {
    /// A page of the domain was evicted (`page_out`): counted at the domain's set.
    Evict,
    /// A page of the domain was brought back (`page_in`): counted at the domain's set.
    PageIn,
    /// The domain's keeper was asked to reclaim because this set, on the domain's path to the
    /// root, was above its `high` bound: counted at that set.
    OverHigh(SetId),
}

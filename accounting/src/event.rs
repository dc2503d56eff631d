//! Charge events and the policy trait: a policy is a pure function from an event to a role.
//!
//! Invariants: a policy never sees or touches ledger state; it names a *role* ([`Decision`])
//! and the ledger resolves the role to charge sets from the event's candidates. A decision that
//! does not fit the event (e.g. `Sender` for a page table) is rejected by the ledger with
//! [`crate::Error::BadDecision`] before anything changes (a departure falls back to `Stay`).

use crate::ids::{DomainId, Kind, SetId};
use core::fmt;

/// Which configuration key a policy answers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKey {
    /// `cow`: who pays for sharing and for the private copy made on a write fault.
    Cow,
    /// `msgbuf`: who pays for transient kernel message buffers.
    Msgbuf,
    /// `pagetable`: who pays for a page-table frame.
    PageTable,
    /// `release`: what happens to the charge of a still-shared frame when its payer leaves.
    Release,
    /// `kernel`: who pays for a spawned domain's kernel objects (control block, capabilities).
    Kernel,
    /// `move`: what happens to the charges a domain holds when it moves to another set.
    Move,
}

impl PolicyKey {
    /// Every key, in config order.
    pub const ALL: [PolicyKey; 6] = [
        PolicyKey::Cow,
        PolicyKey::Msgbuf,
        PolicyKey::PageTable,
        PolicyKey::Release,
        PolicyKey::Kernel,
        PolicyKey::Move,
    ];

    /// The config key: `cow`, `msgbuf`, `pagetable`, `release`, `kernel` or `move`.
    pub const fn name(self) -> &'static str {
        match self {
            PolicyKey::Cow => "cow",
            PolicyKey::Msgbuf => "msgbuf",
            PolicyKey::PageTable => "pagetable",
            PolicyKey::Release => "release",
            PolicyKey::Kernel => "kernel",
            PolicyKey::Move => "move",
        }
    }
}

impl fmt::Display for PolicyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happened, i.e. which decision the ledger asks a policy for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A mapped frame is shared copy-on-write with one more domain (policy `cow`):
    /// `Split` charges every sharer its share; any other role leaves the payer paying.
    Share,
    /// A write fault by `writer` on a shared frame needs a private copy (policy `cow`):
    /// `Writer`, `Holder` (the set that paid for the original) or `Split` (the writer: a copy
    /// is private).
    CowCopy,
    /// A kernel message buffer is allocated (policy `msgbuf`): `Sender`, `Receiver`, `Split`
    /// (half each, remainder to the sender) or `Kernel` (the built-in reserve set).
    Msgbuf,
    /// A page-table frame is allocated (policy `pagetable`): `Owner` (of the address space) or
    /// `Causer` (the domain whose action made the table necessary).
    PageTable,
    /// A paying domain leaves a frame others still map (policy `release`): `Migrate` to the
    /// first surviving sharer, or `Stay` with the departing domain's set.
    Release,
    /// A domain's kernel object (control block, capability table) is allocated (policy
    /// `kernel`): `Owner` (the domain's own set) or `Causer` (the spawning domain's set; the
    /// domain's own at boot, where nobody spawned it).
    KernelObject,
    /// A domain moves to another charge set (policy `move`): `Stay` (the charges it holds stay
    /// with its old set, as in cgroup v2) or `Migrate` (they go with it, against the new set's
    /// limits, all or nothing, as cgroup v1's `move_charge_at_immigrate`). `departing` is the
    /// old set, `surviving` the new one.
    Move,
}

impl EventKind {
    /// Every event kind, in declaration order (the index of [`EventKind::index`]).
    pub const ALL: [EventKind; 7] = [
        EventKind::Share,
        EventKind::CowCopy,
        EventKind::Msgbuf,
        EventKind::PageTable,
        EventKind::Release,
        EventKind::KernelObject,
        EventKind::Move,
    ];

    /// How many event kinds there are.
    pub const COUNT: usize = Self::ALL.len();

    /// This kind's position in [`EventKind::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The policy key that decides this event.
    pub const fn key(self) -> PolicyKey {
        match self {
            EventKind::Share | EventKind::CowCopy => PolicyKey::Cow,
            EventKind::Msgbuf => PolicyKey::Msgbuf,
            EventKind::PageTable => PolicyKey::PageTable,
            EventKind::Release => PolicyKey::Release,
            EventKind::KernelObject => PolicyKey::Kernel,
            EventKind::Move => PolicyKey::Move,
        }
    }
}

/// The candidate payers of an event, as charge sets; `None` where the role does not apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Candidates {
    /// The set paying for the frame now (the original's payer for a copy).
    pub holder: Option<SetId>,
    /// The set of the domain that wrote to a shared frame.
    pub writer: Option<SetId>,
    /// The set of the sending domain of a message.
    pub sender: Option<SetId>,
    /// The set of the receiving domain of a message.
    pub receiver: Option<SetId>,
    /// The set of the domain that owns the address space.
    pub owner: Option<SetId>,
    /// The set of the domain that created the object or caused the allocation.
    pub creator: Option<SetId>,
    /// The set of a departing sharer.
    pub departing: Option<SetId>,
    /// The set of the first surviving sharer.
    pub surviving: Option<SetId>,
    /// The set a keeper named for this charge (`cow = keeper`: the holder's keeper for a
    /// copy; `msgbuf = keeper`: the sender's keeper for a buffer), if it answered with one.
    pub chosen: Option<SetId>,
}

/// How many bytes of the event's kind each candidate set could still be charged before one of
/// its limits or sub-limits, or an ancestor's, is reached ([`Headroom::UNLIMITED`]: no limit
/// on the way, or the role does not apply). Filled in only for a policy whose
/// [`Policy::needs_headroom`] says so (the others see `Headroom::UNKNOWN`, all unlimited).
/// Plain words, no `Option`s: events are built on hot paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Headroom {
    /// Of the holder's set.
    pub holder: u64,
    /// Of the writer's set.
    pub writer: u64,
    /// Of the sender's set.
    pub sender: u64,
    /// Of the receiver's set.
    pub receiver: u64,
}

impl Headroom {
    /// No limit.
    pub const UNLIMITED: u64 = u64::MAX;

    /// Nothing computed: every role unlimited.
    pub const UNKNOWN: Headroom = Headroom {
        holder: Headroom::UNLIMITED,
        writer: Headroom::UNLIMITED,
        sender: Headroom::UNLIMITED,
        receiver: Headroom::UNLIMITED,
    };

    /// Whether `room` (one of the fields) takes `bytes` more.
    pub fn fits(room: u64, bytes: u64) -> bool {
        room >= bytes
    }
}

impl Default for Headroom {
    fn default() -> Self {
        Headroom::UNKNOWN
    }
}

/// A charge event: what happened, in which frame kind, who caused it, and who could pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChargeEvent {
    /// What happened.
    pub what: EventKind,
    /// The kind of the frame to be charged.
    pub kind: Kind,
    /// The domain whose action caused the event, if any.
    pub causer: Option<DomainId>,
    /// The candidate payers.
    pub candidates: Candidates,
    /// How many domains map the frame now (for a share or a copy; 0 for a new frame).
    pub sharers: u32,
    /// Each candidate's room under its limits (see [`Headroom`]).
    pub headroom: Headroom,
}

/// A policy's answer: the role whose charge set pays (or what happens to a charge).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The writer's set pays.
    Writer,
    /// The holder's set (which paid for the original) pays.
    Holder,
    /// Every candidate pays an equal share; the remainder goes to the first (the holder or
    /// the sender).
    Split,
    /// The sender's set pays.
    Sender,
    /// The receiver's set pays.
    Receiver,
    /// The built-in `kernel` reserve set pays.
    Kernel,
    /// The address-space owner's set pays.
    Owner,
    /// The causing domain's set pays.
    Causer,
    /// The charge moves to the first surviving sharer.
    Migrate,
    /// The charge stays with the departing set until the frame is freed.
    Stay,
    /// The set a keeper named ([`Candidates::chosen`]) pays.
    Chosen,
}

impl Decision {
    /// Every decision, in declaration order.
    pub const ALL: [Decision; 11] = [
        Decision::Writer,
        Decision::Holder,
        Decision::Split,
        Decision::Sender,
        Decision::Receiver,
        Decision::Kernel,
        Decision::Owner,
        Decision::Causer,
        Decision::Migrate,
        Decision::Stay,
        Decision::Chosen,
    ];

    /// The role's name, as policies and docs spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Decision::Writer => "writer",
            Decision::Holder => "holder",
            Decision::Split => "split",
            Decision::Sender => "sender",
            Decision::Receiver => "receiver",
            Decision::Kernel => "kernel",
            Decision::Owner => "owner",
            Decision::Causer => "causer",
            Decision::Migrate => "migrate",
            Decision::Stay => "stay",
            Decision::Chosen => "chosen",
        }
    }
}

/// A charge policy: a pure function from a [`ChargeEvent`] to a [`Decision`].
///
/// Implementations live in the `policies` crate, one file each; they must not keep state.
pub trait Policy: Sync {
    /// The config key this policy answers to.
    fn key(&self) -> PolicyKey;
    /// The config name of this policy (e.g. `writer`).
    fn name(&self) -> &'static str;
    /// Decides who pays for `event`.
    fn decide(&self, event: &ChargeEvent) -> Decision;
    /// The decision this policy makes for every event of kind `what`, whatever else the event
    /// says, if it makes one (a policy that always names the writer, say): the ledger asks
    /// once, when it starts, and then reads the answer from a table instead of building each
    /// event (with its fast paths off it asks [`decide`](Self::decide) every time, so the
    /// ledger's differential test checks the two agree). `None`, the default: the decision
    /// depends on the event, and `decide` is asked for each one.
    fn fixed(&self, _what: EventKind) -> Option<Decision> {
        None
    }
    /// Whether [`decide`](Self::decide) looks at [`ChargeEvent::headroom`] (the ledger then
    /// computes it: one walk up each candidate's ancestors). Default: no.
    fn needs_headroom(&self) -> bool {
        false
    }
    /// Whether the kernel asks a keeper before the charges this policy decides (a copy-on-write
    /// copy, a message buffer) and puts its answer in [`Candidates::chosen`]. Default: no.
    fn asks_keeper(&self) -> bool {
        false
    }
}

/// The six policies a ledger runs under, one per config key.
#[derive(Clone, Copy)]
pub struct Policies {
    /// `cow`: sharing and copy-on-write copies.
    pub cow: &'static dyn Policy,
    /// `msgbuf`: message buffers.
    pub msgbuf: &'static dyn Policy,
    /// `pagetable`: page-table frames.
    pub pagetable: &'static dyn Policy,
    /// `release`: departures of a paying sharer.
    pub release: &'static dyn Policy,
    /// `kernel`: a spawned domain's kernel objects.
    pub kernel: &'static dyn Policy,
    /// `move`: the charges of a domain that moves to another set.
    pub moves: &'static dyn Policy,
}

impl Policies {
    /// The policy answering to `key`.
    pub fn get(&self, key: PolicyKey) -> &'static dyn Policy {
        match key {
            PolicyKey::Cow => self.cow,
            PolicyKey::Msgbuf => self.msgbuf,
            PolicyKey::PageTable => self.pagetable,
            PolicyKey::Release => self.release,
            PolicyKey::Kernel => self.kernel,
            PolicyKey::Move => self.moves,
        }
    }
}

impl fmt::Debug for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Writes `cow=NAME msgbuf=NAME pagetable=NAME release=NAME kernel=NAME move=NAME`.
impl fmt::Display for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cow={} msgbuf={} pagetable={} release={} kernel={} move={}",
            self.cow.name(),
            self.msgbuf.name(),
            self.pagetable.name(),
            self.release.name(),
            self.kernel.name(),
            self.moves.name()
        )
    }
}

/// Writes `KEY=NAME`, e.g. `cow=writer`.
impl fmt::Debug for dyn Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key(), self.name())
    }
}

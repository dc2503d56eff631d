//! Tally's memory ledger: charge sets, per-frame accounting, limits, conservation, reports
//! and trace replay. `no_std`, no `unsafe`, no allocation, no hardware: the kernel uses it
//! unchanged and the host tests it.
//!
//! Invariants kept after every public call (checked by [`Ledger::audit`] in the tests):
//! conservation (bytes charged over all sets, the `kernel` set included, equal 4096 × frames in
//! use, boot frames excluded); no usage is negative; every committed charge fit under every
//! limit on the way to the root; a failed operation changes nothing but, when denied, one
//! denial counter.
//!
//! # Model
//!
//! - A **frame** (4 KiB) has one 8-byte [`FrameEntry`] in a slice the caller provides (one
//!   per RAM frame; all-zero = free). Boot frames ([`Ledger::mark_boot`]) are counted apart
//!   and never charged.
//! - A frame's charge is held by its **slots**: one slot inline in the entry, or two or more
//!   in a hash-consed, reference-counted sharer list ([`sharers`]). A slot names the set that
//!   pays through it and the domain that maps the frame through it (`None` after that domain
//!   left but its set kept paying). Slot 0 is the *holder*. A frame is either **whole** (slot
//!   0 pays 4096 bytes) or **split** (each of n slots pays `4096 / n`, and slot 0 — the
//!   original holder — also pays the remainder `4096 % n`, so the books balance to the byte;
//!   e.g. 3 sharers pay 1366 + 1365 + 1365).
//! - A **charge set** ([`ChargeSet`]) has `current` and `peak` bytes per kind (`anon`,
//!   `pagetables`, `kernel`, `msgbuf`, `cow`), cumulative charged/uncharged bytes, denials per
//!   kind, and `paid_for` bytes by causing domain (bytes it pays now for frames caused by a
//!   domain not bound to it). A charge is counted once, at the set that pays (`current`);
//!   `subtree` (own + descendants) is what limits are checked against. Set 0 is the built-in
//!   `kernel` reserve set (no parent, no limit).
//! - A **domain** ([`Domain`]) is bound to one set at a time ([`Ledger::move_domain`] moves
//!   it; the `move` policy decides whether its charges go with it), and has a name, a state
//!   (`running`, `blocked`, `exited`, `stopped`) and a stop reason, for the report.
//!
//! # Two-phase charging
//!
//! A kernel operation lists its frame operations in a [`Plan`] (a demand-zero fault: up to
//! two page tables and one anon frame; a spawn: kernel objects, page tables and a
//! [`Op::ShareMany`] of the shared region). [`Ledger::reserve`] validates every frame and
//! checks every charge against the limit and per-kind sub-limit of its payer and of every
//! ancestor, net of what the same plan uncharges there; it changes nothing, except that a
//! denial ([`Error::OverLimit`]) counts one denial of its kind on the payer set whose charge
//! failed. The returned [`Reservation`] borrows the ledger (nothing can change in between) and
//! its [`Reservation::commit`] cannot fail. One-operation shorthands (`new_anon`, `share`,
//! `cow_copy`, ...) do both. Charging allocates nothing and costs O(tree depth).
//!
//! # Cost
//!
//! Reserve works out each operation's payer (and the `cow` policy's decision on a share) once
//! and leaves it for commit; frames' slots are read where they are, never copied on the common
//! paths. The common plans have fast paths that decide exactly as the general path would: one
//! new frame; new frames with one payer plus shares that charge nothing (a fault and its page
//! tables, a share and its tables); one share (under `cow = writer` or `holder` only the
//! sharer list changes); one copy-on-write copy (under `writer` or `holder` the writer's
//! departure moves no charge); a sharer leaving; the payer of a two-party frame leaving.
//! [`Op::ShareMany`] handles its frames in runs of equal entries (a region one domain faulted
//! in is one run): a run is validated, charged and given its new sharer list at its first
//! frame, each further frame costs one compare and one store, and the run's charges and list
//! references are settled in bulk, so sharing 1024 frames costs about as much as 1024 compares.
//! Host figures: `cargo bench -p accounting`.
//!
//! # Semantics (our decisions where the design brief is silent)
//!
//! - **New `anon` frame** mapped by domain d: paid by d's set, causer d, mapper d.
//! - **New page-table frame** ([`Op::PageTable`]): the `pagetable` policy picks the
//!   address-space owner's set (`owner`) or the causer's set (`causer`, e.g. the sender of an
//!   out-of-line region mapped into the receiver). Causer: the causer.
//! - **New `kernel` frame**: paid by the set the caller names (the set the object is bound
//!   to), causer as given.
//! - **New `msgbuf` frame**: the `msgbuf` policy: the sender's set, the receiver's set, split
//!   2048/2048 between them (sender first, so it would get a remainder), or the `kernel` set.
//!   Causer: the sender.
//! - **Sharing** a mapped frame with another domain ([`Op::Share`]): under `cow = writer` or
//!   `holder` the payer keeps paying and nothing new is charged; under `cow = split` the
//!   frame becomes split and every sharer's set pays its share, in the frame's own kind,
//!   against its limits (so sharing can be denied). Shares are recomputed on every join.
//! - **Copy on a write fault** by w to a frame mapped by more than one domain
//!   ([`Op::CowCopy`]): the new private frame (kind `cow`, causer w, mapper w) is paid by w's
//!   set (`writer`), by the original's holder — slot 0, the set that paid for it (`holder`),
//!   or by w's set whole (`split`: a copy is private). Then w leaves the original exactly as
//!   by an unmap. A write fault on a frame with one mapper ([`Ledger::mappers`] = 1) only
//!   restores write access: no copy, no charge ([`Error::NotShared`] if asked).
//! - **Unmap / exit** of domain d ([`Ledger::unmap`]): if d was the last mapper, the frame is
//!   uncharged from every slot (staying payers included) and freed ([`Unmapped::Freed`]: the
//!   caller frees the physical frame). Otherwise, if d's set did not pay (a whole frame's
//!   non-holder), d just leaves; if another domain of the payer's set still maps it, the
//!   charge is where it belongs and does not move. Else the `release` policy decides:
//!   `migrate` moves the whole charge to the first surviving mapper (whole frames), or drops
//!   d's slot and recomputes the survivors' shares (split frames); `stay` keeps d's slot,
//!   without a mapper, paying until the frame is freed. **A departure is never denied**: if
//!   migrating would push a surviving set (or an ancestor) over a limit, the charge stays
//!   instead — this keeps "a set over its limit never grows".
//! - **Move** ([`Ledger::move_domain`]) of domain d to set N: `move = stay` only rebinds d
//!   (what it causes from then on is charged to N; what is charged stays, and its slots keep
//!   naming the old set); `move = migrate` moves every charge d holds in its old set — the
//!   bytes its own slots of mapped frames pay there (its share under `split`) and the
//!   page-table and kernel frames it caused that the old set pays — to N, checked first
//!   against N's limits and its ancestors' (those that do not hold the old set too), all or
//!   nothing: a denial moves nothing and counts one denial at the set whose limit failed.
//!   Moved bytes count in each set's `moved_in` / `moved_out` (and in its charged/uncharged
//!   totals).
//! - **Free** ([`Ledger::free`]) of an unmapped frame (page table, kernel object, message
//!   buffer) uncharges every payer.
//! - **Denials**: a denied reserve counts one denial, of the failing charge's kind, on the
//!   payer set whose charge failed (not on the ancestor whose limit it hit; the
//!   [`Denial`] names both).
//! - **Limits** may be lowered below usage; the set then cannot grow until it is back under.
//! - **Paid for**: a frame's causer is the domain that caused the allocation (the allocating
//!   domain for anon frames and shares' originals, the writer for copies, the sender for
//!   message buffers, the causer for page tables). Bytes a set pays for a frame caused by a
//!   domain bound to another set are its `paid_for[causer]`; they move with the charge.
//! - **Capacities** are constants: [`MAX_SETS`] sets, [`MAX_DOMAINS`] domains, tree depth
//!   [`MAX_DEPTH`], [`MAX_SHARERS`] sharers per frame, [`SHARER_LISTS`] distinct sharer
//!   lists ([`Error::PoolFull`] when exhausted; operations that can be denied leave
//!   [`POOL_DEPARTURE_RESERVE`] lists for departures), [`PLAN_OPS`] operations per plan.
//!   Names are `[a-z0-9_-]{1,23}`.
//!
//! # Reports and traces
//!
//! [`Ledger::write_snapshot`] writes one snapshot object of `tally.report/1` with
//! `core::fmt::Write` (format: `docs/report-format.md`); the kernel prints it as
//! `@tally/1 snapshot <json>`. With a [`TraceHook`] set, the ledger calls it with a
//! [`TraceRecord`] for every operation (format: [`trace`]); the kernel prints each as
//! `@tally/1 trace <record>`. A [`Replayer`] applies such a trace under any policies and
//! yields the snapshots those policies would have produced.
//!
//! # Example
//!
//! ```
//! use accounting::*;
//!
//! // Policies normally come from the `policies` crate (`policies::defaults()`).
//! struct Always(PolicyKey, Decision);
//! impl Policy for Always {
//!     fn key(&self) -> PolicyKey { self.0 }
//!     fn name(&self) -> &'static str { self.1.name() }
//!     fn decide(&self, _event: &ChargeEvent) -> Decision { self.1 }
//! }
//! static COW: Always = Always(PolicyKey::Cow, Decision::Split);
//! static MSGBUF: Always = Always(PolicyKey::Msgbuf, Decision::Sender);
//! static PAGETABLE: Always = Always(PolicyKey::PageTable, Decision::Owner);
//! static RELEASE: Always = Always(PolicyKey::Release, Decision::Migrate);
//! static KERNEL: Always = Always(PolicyKey::Kernel, Decision::Owner);
//! static MOVE: Always = Always(PolicyKey::Move, Decision::Stay);
//! let policies = Policies {
//!     cow: &COW, msgbuf: &MSGBUF, pagetable: &PAGETABLE, release: &RELEASE, kernel: &KERNEL,
//!     moves: &MOVE,
//! };
//!
//! let mut frames = [FrameEntry::FREE; 16];
//! let mut ledger = Ledger::new(&mut frames, policies);
//! let parent = ledger.create_set("parent", None, Some(64 * 1024))?;
//! let child = ledger.create_set("child", Some(parent), Some(8 * 1024))?;
//! let p = ledger.create_domain("parent", parent)?;
//! let c = ledger.create_domain("child", child)?;
//!
//! // A demand-zero fault: one page table and one page, reserved together.
//! let mut fault = Plan::new();
//! fault
//!     .push(Op::PageTable { frame: FrameIndex(1), owner: p, causer: p })?
//!     .push(Op::Anon { frame: FrameIndex(2), domain: p })?;
//! ledger.reserve(&fault)?.commit();
//!
//! // Shared copy-on-write with the child: under `cow = split` each pays half.
//! ledger.share(FrameIndex(2), c)?;
//! assert_eq!(ledger.set(child)?.current_of(Kind::Anon), 2048);
//! // The child writes: it gets a private copy and pays it whole; the parent pays all again.
//! ledger.cow_copy(FrameIndex(2), FrameIndex(3), c)?;
//! assert_eq!(ledger.set(child)?.current_of(Kind::Cow), 4096);
//! assert_eq!(ledger.set(parent)?.current_of(Kind::Anon), 4096);
//! assert!(ledger.conservation().ok);
//!
//! let mut json = String::new();
//! let header = SnapshotHeader { label: "final", instructions: 0, total_frames: 16, free_frames: 13 };
//! ledger.write_snapshot(&mut json, &header).unwrap();
//! assert!(json.starts_with(r#"{"label":"final""#));
//! # Ok::<(), Error>(())
//! ```
//!
//! # Bad input
//!
//! Unknown set or domain ids, frames out of range and frames in the wrong state are errors
//! ([`Error`]), never panics.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod event;
pub mod frame;
pub mod ids;
pub mod ledger;
pub mod model;
pub mod plan;
pub mod replay;
pub mod report;
pub mod sharers;
pub mod trace;

#[cfg(test)]
mod tests;

pub use error::{Denial, Error};
pub use event::{
    Candidates, ChargeEvent, Decision, EventKind, Headroom, Policies, Policy, PolicyKey,
};
pub use frame::{FrameEntry, FrameUse};
pub use ids::*;
pub use ledger::{Batch, BatchNeed, FrameState, Ledger, Reservation, Unmapped};
pub use model::{
    ChargeSet, Conservation, Domain, DomainState, KeeperChoice, KeeperChoices, PagingEvent,
    PerKind, StopReason,
};
pub use plan::{Op, Plan};
pub use replay::{
    replay_text, ReplayError, ReplayErrorKind, ReplayStats, ReplayedSnapshot, Replayer,
};
pub use report::{write_json_string, SnapshotHeader};
pub use sharers::{Slot, SlotList};
pub use trace::{ParseError, TraceHook, TraceRecord};

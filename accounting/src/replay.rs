//! Trace replay: applies a recorded trace to a fresh ledger under any policies, giving the
//! snapshots those policies would have produced (counterfactual reports). `no_std`: the
//! caller provides the frame slice and a scratch slice for `share-many` frames.
//!
//! Invariants: under the policies of the original run, a replay reproduces every snapshot
//! exactly (tested); set and domain ids must come out as recorded, else the replay stops with
//! [`ReplayErrorKind::Diverged`].
//!
//! Under other policies the replay applies the same operations in the same order: an
//! operation that those policies deny (or that no longer fits the frames' states, e.g. a copy
//! of a frame whose share was denied) is skipped and counted in [`ReplayStats`], exactly as
//! the kernel would have refused it — but the programs' reactions to a refusal cannot be
//! replayed, so a counterfactual report is exact only while [`ReplayStats::diverging`] is 0.

use crate::error::Error;
use crate::event::Policies;
use crate::frame::FrameEntry;
use crate::ids::{DomainId, FrameIndex, PLAN_OPS};
use crate::ledger::Ledger;
use crate::plan::{Op, Plan};
use crate::report::SnapshotHeader;
use crate::trace::{Label, ParseError, TraceRecord};
use core::fmt;

/// Counts of what a replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Records read.
    pub records: u64,
    /// Operations (plans, unmaps, frees) applied.
    pub applied: u64,
    /// Plans denied by a limit.
    pub denied: u64,
    /// Operations that failed for another reason (frame state differs from the original run).
    pub failed: u64,
    /// Plans whose outcome (applied or denied) differs from the original run's, as far as
    /// the trace tells: denials are not marked in the trace, so this counts operations that
    /// failed for a reason other than a limit.
    pub diverging: u64,
}

/// Why a replay stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayErrorKind {
    /// A record did not parse.
    Parse(ParseError),
    /// Records out of order (e.g. `frames` without `share-many`, `unmap` inside a plan).
    Sequence,
    /// The trace's `ledger` record names another frame count than the replay's slice.
    FrameCount,
    /// A set or domain came out with another id, or could not be created.
    Diverged(Error),
    /// The scratch slice is too small for a `share-many`.
    ScratchFull,
}

/// A replay error, with the 1-based record (line) number where it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayError {
    /// Record number (1-based).
    pub record: u64,
    /// What went wrong.
    pub kind: ReplayErrorKind,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trace record {}: ", self.record)?;
        match self.kind {
            ReplayErrorKind::Parse(error) => write!(f, "{error}"),
            ReplayErrorKind::Sequence => f.write_str("record out of sequence"),
            ReplayErrorKind::FrameCount => f.write_str("frame count differs from the trace"),
            ReplayErrorKind::Diverged(error) => write!(f, "replay diverged: {error}"),
            ReplayErrorKind::ScratchFull => f.write_str("scratch too small for share-many"),
        }
    }
}

/// A snapshot reached by a replay: the recorded header, with the free-frame count adjusted by
/// the difference in frames in use between the original run and the replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayedSnapshot {
    /// The label.
    pub label: Label,
    /// Instructions retired at the snapshot in the original run.
    pub instructions: u64,
    /// Frames of RAM.
    pub total_frames: u64,
    /// Free frames, adjusted.
    pub free_frames: u64,
}

impl ReplayedSnapshot {
    /// The header to pass to [`Ledger::write_snapshot_json`].
    pub fn header(&self) -> SnapshotHeader<'_> {
        SnapshotHeader {
            label: &self.label,
            instructions: self.instructions,
            total_frames: self.total_frames,
            free_frames: self.free_frames,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Pending {
    Op(Op<'static>),
    ShareMany {
        domain: DomainId,
        start: usize,
        count: usize,
    },
}

/// Replays trace records one at a time into its own ledger.
pub struct Replayer<'a, 's> {
    ledger: Ledger<'a>,
    scratch: &'s mut [FrameIndex],
    used: usize,
    pending: heapless::Vec<Pending, PLAN_OPS>,
    plan_ops: usize,
    frames_wanted: usize,
    stats: ReplayStats,
}

impl<'a, 's> Replayer<'a, 's> {
    /// A replayer over `frames` (as many as the original run's ledger) under `policies`;
    /// `scratch` holds the frames of one `share-many` (as many as the largest one).
    pub fn new(
        frames: &'a mut [FrameEntry],
        scratch: &'s mut [FrameIndex],
        policies: Policies,
    ) -> Self {
        Replayer {
            ledger: Ledger::new(frames, policies),
            scratch,
            used: 0,
            pending: heapless::Vec::new(),
            plan_ops: 0,
            frames_wanted: 0,
            stats: ReplayStats::default(),
        }
    }

    /// The replay's ledger.
    pub fn ledger(&self) -> &Ledger<'a> {
        &self.ledger
    }

    /// What the replay did so far.
    pub fn stats(&self) -> ReplayStats {
        self.stats
    }

    /// Applies one record; returns the snapshot a `snapshot` record marks.
    pub fn feed(&mut self, record: &TraceRecord) -> Result<Option<ReplayedSnapshot>, ReplayError> {
        self.stats.records += 1;
        let at = self.stats.records;
        let fail = |kind| ReplayError { record: at, kind };
        if self.frames_wanted > 0 {
            let TraceRecord::Frames { frames } = record else {
                return Err(fail(ReplayErrorKind::Sequence));
            };
            if frames.len() > self.frames_wanted {
                return Err(fail(ReplayErrorKind::Sequence));
            }
            self.scratch[self.used..self.used + frames.len()].copy_from_slice(frames);
            self.used += frames.len();
            self.frames_wanted -= frames.len();
            if self.frames_wanted == 0 {
                self.op_complete();
            }
            return Ok(None);
        }
        let op = match *record {
            TraceRecord::Anon { frame, domain } => Some(Op::Anon { frame, domain }),
            TraceRecord::PageTable {
                frame,
                owner,
                causer,
            } => Some(Op::PageTable {
                frame,
                owner,
                causer,
            }),
            TraceRecord::Kernel { frame, set, causer } => Some(Op::Kernel { frame, set, causer }),
            TraceRecord::DomainObject {
                frame,
                domain,
                spawner,
            } => Some(Op::DomainObject {
                frame,
                domain,
                spawner,
            }),
            TraceRecord::Msgbuf {
                frame,
                sender,
                receiver,
            } => Some(Op::Msgbuf {
                frame,
                sender,
                receiver,
            }),
            TraceRecord::Share { frame, domain } => Some(Op::Share { frame, domain }),
            TraceRecord::Cow {
                original,
                copy,
                writer,
            } => Some(Op::CowCopy {
                original,
                copy,
                writer,
            }),
            _ => None,
        };
        if let Some(op) = op {
            self.pending
                .push(Pending::Op(op))
                .map_err(|_| fail(ReplayErrorKind::Sequence))?;
            self.op_complete();
            return Ok(None);
        }
        if let TraceRecord::ShareMany { domain, count } = *record {
            let count = count as usize;
            if count > self.scratch.len() - self.used {
                return Err(fail(ReplayErrorKind::ScratchFull));
            }
            self.pending
                .push(Pending::ShareMany {
                    domain,
                    start: self.used,
                    count,
                })
                .map_err(|_| fail(ReplayErrorKind::Sequence))?;
            self.frames_wanted = count;
            if count == 0 {
                self.op_complete();
            }
            return Ok(None);
        }
        // Every other record stands alone: no plan may be open.
        if !self.pending.is_empty() || self.plan_ops > 0 {
            return Err(fail(ReplayErrorKind::Sequence));
        }
        let diverged = |error| fail(ReplayErrorKind::Diverged(error));
        match record {
            TraceRecord::Ledger { frames } => {
                if *frames as usize != self.ledger.frame_count() {
                    return Err(fail(ReplayErrorKind::FrameCount));
                }
            }
            TraceRecord::Policies { .. } => {}
            TraceRecord::Boot { first, count } => {
                self.ledger
                    .mark_boot_range(*first, *count)
                    .map_err(diverged)?;
            }
            TraceRecord::Set {
                id,
                name,
                parent,
                limit_bytes,
            } => {
                let got = self
                    .ledger
                    .create_set(name, *parent, *limit_bytes)
                    .map_err(diverged)?;
                if got != *id {
                    return Err(diverged(Error::UnknownSet(*id)));
                }
            }
            TraceRecord::Limit { set, limit_bytes } => {
                self.ledger
                    .set_limit(*set, *limit_bytes)
                    .map_err(diverged)?;
            }
            TraceRecord::KindLimit {
                set,
                kind,
                limit_bytes,
            } => {
                self.ledger
                    .set_kind_limit(*set, *kind, *limit_bytes)
                    .map_err(diverged)?;
            }
            TraceRecord::Domain { id, name, set } => {
                let got = self.ledger.create_domain(name, *set).map_err(diverged)?;
                if got != *id {
                    return Err(diverged(Error::UnknownDomain(*id)));
                }
            }
            TraceRecord::ForgetDomain { id } => {
                self.ledger.forget_domain(*id).map_err(diverged)?;
            }
            TraceRecord::Refused { denial } => {
                // The batch's plans are not in the trace (nothing of it was committed): under
                // any policies, the refusal is counted as recorded.
                self.ledger.count_refused(*denial).map_err(diverged)?;
                self.stats.denied += 1;
            }
            TraceRecord::State { domain, state } => {
                self.ledger
                    .set_domain_state(*domain, *state)
                    .map_err(diverged)?;
            }
            TraceRecord::KeeperChoice { domain, choice } => {
                match choice {
                    Some((kind, choice)) => self.ledger.set_keeper_choice(*domain, *kind, *choice),
                    None => self.ledger.clear_keeper_choice(*domain),
                }
                .map_err(diverged)?;
            }
            TraceRecord::High { set, high_bytes } => {
                self.ledger.set_high(*set, *high_bytes).map_err(diverged)?;
            }
            TraceRecord::Paging { domain, event } => {
                self.ledger.note_paging(*domain, *event).map_err(diverged)?;
            }
            TraceRecord::KeeperFault { domain, restart } => {
                self.ledger
                    .note_keeper_fault(*domain, *restart)
                    .map_err(diverged)?;
            }
            TraceRecord::Plan { ops } => {
                if *ops == 0 || usize::from(*ops) > PLAN_OPS {
                    return Err(fail(ReplayErrorKind::Sequence));
                }
                self.plan_ops = usize::from(*ops);
            }
            TraceRecord::Unmap { frame, domain } => {
                let result = self.ledger.unmap(*frame, *domain).map(|_| ());
                self.count(result);
            }
            TraceRecord::Free { frame } => {
                let result = self.ledger.free(*frame);
                self.count(result);
            }
            TraceRecord::Move { domain, set } => {
                let result = self.ledger.move_domain(*domain, *set).map(|_| ());
                self.count(result);
            }
            TraceRecord::Snapshot {
                instructions,
                total_frames,
                free_frames,
                in_use_frames,
                label,
            } => {
                let difference =
                    i128::from(*in_use_frames) - i128::from(self.ledger.frames_in_use());
                let free = (i128::from(*free_frames) + difference).clamp(0, i128::from(u64::MAX));
                return Ok(Some(ReplayedSnapshot {
                    label: label.clone(),
                    instructions: *instructions,
                    total_frames: *total_frames,
                    free_frames: free as u64,
                }));
            }
            TraceRecord::Frames { .. } => return Err(fail(ReplayErrorKind::Sequence)),
            _ => return Err(fail(ReplayErrorKind::Sequence)),
        }
        Ok(None)
    }

    /// An operation record is complete: run the plan if it is.
    fn op_complete(&mut self) {
        let wanted = self.plan_ops.max(1);
        if self.pending.len() < wanted || self.frames_wanted > 0 {
            return;
        }
        let mut plan = Plan::new();
        let scratch = &*self.scratch;
        for pending in &self.pending {
            let op = match *pending {
                Pending::Op(op) => op,
                Pending::ShareMany {
                    domain,
                    start,
                    count,
                } => Op::ShareMany {
                    frames: &scratch[start..start + count],
                    domain,
                },
            };
            // At most PLAN_OPS pending: room for all.
            let _ = plan.push(op);
        }
        let result = self.ledger.apply(&plan);
        drop(plan);
        self.pending.clear();
        self.plan_ops = 0;
        self.used = 0;
        self.count(result);
    }

    fn count(&mut self, result: Result<(), Error>) {
        match result {
            Ok(()) => self.stats.applied += 1,
            Err(Error::OverLimit(_)) => self.stats.denied += 1,
            Err(_) => {
                self.stats.failed += 1;
                self.stats.diverging += 1;
            }
        }
    }
}

/// Replays a whole trace given as text: one record per line, each either bare or after the
/// console prefix `@tally/1 trace `; other `@tally/1 ...` lines and blank lines are skipped.
/// `on_snapshot` is called at every snapshot with the replay's ledger.
pub fn replay_text<F>(
    text: &str,
    replayer: &mut Replayer<'_, '_>,
    mut on_snapshot: F,
) -> Result<ReplayStats, ReplayError>
where
    F: FnMut(&Ledger<'_>, &ReplayedSnapshot),
{
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let record = match line.strip_prefix("@tally/1 ") {
            Some(rest) => match rest.strip_prefix("trace ") {
                Some(record) => record,
                None => continue,
            },
            None if line.trim().is_empty() => continue,
            None => line,
        };
        let record = TraceRecord::parse(record).map_err(|error| ReplayError {
            record: replayer.stats.records + 1,
            kind: ReplayErrorKind::Parse(error),
        })?;
        if let Some(snapshot) = replayer.feed(&record)? {
            on_snapshot(replayer.ledger(), &snapshot);
        }
    }
    Ok(replayer.stats())
}

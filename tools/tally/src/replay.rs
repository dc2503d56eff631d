//! Counterfactual replay on the host: one run's event trace (`trace.txt`, written when the
//! kernel ran with `trace=on`) applied to a fresh `accounting` ledger under other policies
//! gives the reports those policies would have produced (`tally replay`), and replays checked
//! against real runs (`tally test --replay-check`).
//!
//! What a replay can and cannot say: it applies the run's operations in the run's order
//! ([`accounting::Replayer`]). An operation the other policies deny is refused and counted, as
//! the kernel would have refused it — but the program's reaction to that refusal is not in the
//! trace. A replay is exact only while it reports no *diverging* operations, and only the
//! accounting figures are replayed: instruction counts and the kernel's free-frame count are
//! the recorded ones (the latter adjusted by the difference in frames in use).
//!
//! The check: a replay under the run's own policies must reproduce every snapshot of the run;
//! a replay under another combination must equal the real run of that combination, figure for
//! figure (every charge set's current, peak and denied bytes per kind, paid-for bytes per
//! causer, cumulative charged and uncharged bytes, in every snapshot), whenever the replay
//! diverged nowhere and neither run had a denial (with a denial, the programs may have reacted
//! in ways the trace of the other run does not show).

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use accounting::{FrameEntry, FrameIndex, ReplayStats, Replayer, TraceRecord};
use serde_json::{Map, Value};

use crate::config::{PolicyOverrides, KINDS};
use crate::exit::{self, Failure};
use crate::matrix::{self, Entry};
use crate::registry;
use crate::report::{self, Report, Snapshot, FRAME_PREFIX};
use crate::testing::{combo_dir, JobOutcome};

/// The framed prefix of a trace record on the console.
const TRACE_PREFIX: &str = "@tally/1 trace ";

/// One run's event trace, read and checked enough to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The records, one per line, without the console prefix.
    pub records: String,
    /// Frames in the run's ledger (the `ledger` record).
    pub frames: u32,
    /// The largest `share-many` (the replay's scratch size).
    pub largest_share: usize,
    /// The run's own policies (the `policies` record), key → name in registry key order.
    pub policy: Vec<(String, String)>,
}

impl Trace {
    /// Reads a trace: bare records one per line (`trace.txt`), or a console log, of which only
    /// the `@tally/1 trace` lines count. Errors name the line.
    pub fn parse(text: &str) -> Result<Trace, String> {
        let console = text.lines().any(|line| line.starts_with(FRAME_PREFIX));
        let mut records = String::new();
        let mut frames = None;
        let mut largest_share = 0;
        let mut policy = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            let record = if console {
                match line.strip_prefix(TRACE_PREFIX) {
                    Some(record) => record,
                    None => continue,
                }
            } else if line.trim().is_empty() {
                continue;
            } else {
                line
            };
            let parsed = TraceRecord::parse(record)
                .map_err(|error| format!("line {}: {error}: {record}", index + 1))?;
            match parsed {
                TraceRecord::Ledger { frames: count } => frames = Some(count),
                TraceRecord::Policies { names } => {
                    policy = registry::keys()
                        .iter()
                        .zip(names.iter())
                        .map(|(key, name)| (key.to_string(), name.to_string()))
                        .collect();
                }
                TraceRecord::ShareMany { count, .. } => {
                    largest_share = largest_share.max(count as usize);
                }
                _ => {}
            }
            records.push_str(record);
            records.push('\n');
        }
        let frames = frames.ok_or_else(|| {
            if records.is_empty() {
                "no trace records (run with `tally run --trace`, or `trace = true` in [run])"
                    .to_string()
            } else {
                "the trace has no `ledger` record: it does not start at the ledger's creation"
                    .to_string()
            }
        })?;
        if policy.is_empty() {
            return Err("the trace has no `policies` record".to_string());
        }
        Ok(Trace {
            records,
            frames,
            largest_share,
            policy,
        })
    }
}

/// What one replay produced.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The snapshots the ledger wrote under the replay's policies, in order.
    pub snapshots: Vec<Snapshot>,
    /// What the replay did; `diverging > 0` means it is not exact.
    pub stats: ReplayStats,
}

/// Replays `trace` under `policy` (key, name pairs; keys not named keep the run's policy).
pub fn replay(trace: &Trace, policy: &[(String, String)]) -> Result<Replay, String> {
    let policies = policies_for(trace, policy)?;
    let mut frames = vec![FrameEntry::FREE; trace.frames as usize];
    let mut scratch = vec![FrameIndex(0); trace.largest_share.max(1)];
    let mut replayer = Replayer::new(&mut frames, &mut scratch, policies);
    let mut snapshots = Vec::new();
    let mut problem = None;
    let stats = accounting::replay_text(&trace.records, &mut replayer, |ledger, snapshot| {
        let mut json = String::new();
        let parsed = ledger
            .write_snapshot_json(&mut json, &snapshot.header())
            .map_err(|_| "cannot write a snapshot".to_string())
            .and_then(|()| {
                serde_json::from_str::<Snapshot>(&json)
                    .map_err(|error| format!("the replay's snapshot does not parse: {error}"))
            });
        match parsed {
            Ok(snapshot) => snapshots.push(snapshot),
            Err(error) => {
                problem.get_or_insert(error);
            }
        }
    })
    .map_err(|error| error.to_string())?;
    match problem {
        Some(problem) => Err(problem),
        None => Ok(Replay { snapshots, stats }),
    }
}

/// `{"records": …, "applied": …, "denied": …, "failed": …, "diverging": …}`.
pub fn stats_json(stats: &ReplayStats) -> Value {
    serde_json::json!({
        "records": stats.records,
        "applied": stats.applied,
        "denied": stats.denied,
        "failed": stats.failed,
        "diverging": stats.diverging,
    })
}

fn policy_map(policy: &[(String, String)]) -> Map<String, Value> {
    policy
        .iter()
        .map(|(key, name)| (key.clone(), Value::from(name.as_str())))
        .collect()
}

/// The report a replay gives: `base`'s run fields (config, kernel, IPC mode, status) with the
/// replay's policies and snapshots, no `host` (nothing booted), and a `replay` object: what was
/// replayed, the recorded policies, the [`ReplayStats`] and whether the replay is `exact`.
pub fn replay_report(
    base: &Report,
    trace: &Trace,
    policy: &[(String, String)],
    replay: &Replay,
    source: &str,
) -> Report {
    let mut extra = base.extra.clone();
    extra.remove("replay");
    let mut about = Map::new();
    about.insert("source".into(), Value::from(source));
    about.insert(
        "recorded_policy".into(),
        Value::Object(policy_map(&trace.policy)),
    );
    if let Value::Object(stats) = stats_json(&replay.stats) {
        about.extend(stats);
    }
    about.insert("exact".into(), Value::from(replay.stats.diverging == 0));
    extra.insert("replay".into(), Value::Object(about));
    Report {
        policy: policy_map(policy),
        snapshots: replay.snapshots.clone(),
        host: None,
        extra,
        trace: Vec::new(),
        unknown_records: Vec::new(),
        ..base.clone()
    }
}

/// A report skeleton for a trace without its run's `report.json`: the config name given, the
/// recorded policies, status `ok`.
pub fn skeleton_report(config: &str, trace: &Trace) -> Report {
    Report {
        schema: report::SCHEMA.to_string(),
        config: config.to_string(),
        kernel_version: String::new(),
        policy: policy_map(&trace.policy),
        ipc: Map::new(),
        mem_bytes: None,
        status: report::STATUS_OK.to_string(),
        reason: None,
        snapshots: Vec::new(),
        host: None,
        extra: Map::new(),
        trace: Vec::new(),
        unknown_records: Vec::new(),
    }
}

/// One accounting figure that differs between a replay and a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `snapshot `shared` (2 of 3), set `parent`, current.cow`.
    pub place: String,
    /// The replay's figure.
    pub replayed: String,
    /// The run's figure.
    pub real: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: replay {}, run {}",
            self.place, self.replayed, self.real
        )
    }
}

/// Every accounting figure that differs between `replayed` and `real` snapshots: the labels
/// in order, then per snapshot every charge set (by name) and its current, peak and denied
/// figures per kind, its paid-for bytes per causer (absent = 0), its cumulative charged and
/// uncharged bytes, its event counters and limit hits, and each domain's last denial.
/// Instructions and frame counts are not compared.
pub fn compare(replayed: &[Snapshot], real: &[Snapshot]) -> Vec<Mismatch> {
    let labels = |snapshots: &[Snapshot]| -> Vec<String> {
        snapshots.iter().map(|s| s.label.clone()).collect()
    };
    if labels(replayed) != labels(real) {
        return vec![Mismatch {
            place: "snapshot labels".to_string(),
            replayed: format!("[{}]", labels(replayed).join(", ")),
            real: format!("[{}]", labels(real).join(", ")),
        }];
    }
    let mut found = Vec::new();
    let count = real.len();
    for (index, (ours, theirs)) in replayed.iter().zip(real).enumerate() {
        let at = format!("snapshot `{}` ({} of {count})", theirs.label, index + 1);
        let mut names: Vec<&str> = Vec::new();
        for set in ours.charge_sets.iter().chain(&theirs.charge_sets) {
            if !names.contains(&set.name.as_str()) {
                names.push(&set.name);
            }
        }
        for name in names {
            let (Some(a), Some(b)) = (ours.charge_set(name), theirs.charge_set(name)) else {
                found.push(Mismatch {
                    place: format!("{at}, set `{name}`"),
                    replayed: if ours.charge_set(name).is_some() {
                        "present"
                    } else {
                        "absent"
                    }
                    .to_string(),
                    real: if theirs.charge_set(name).is_some() {
                        "present"
                    } else {
                        "absent"
                    }
                    .to_string(),
                });
                continue;
            };
            let mut figure = |field: String, x: u64, y: u64| {
                if x != y {
                    found.push(Mismatch {
                        place: format!("{at}, set `{name}`, {field}"),
                        replayed: x.to_string(),
                        real: y.to_string(),
                    });
                }
            };
            for kind in KINDS {
                figure(
                    format!("current.{kind}"),
                    a.current.get(kind),
                    b.current.get(kind),
                );
                figure(format!("peak.{kind}"), a.peak.get(kind), b.peak.get(kind));
                figure(
                    format!("denied.{kind}"),
                    a.denied.get(kind),
                    b.denied.get(kind),
                );
            }
            let mut causers: Vec<&String> = a.paid_for.keys().chain(b.paid_for.keys()).collect();
            causers.sort();
            causers.dedup();
            for causer in causers {
                figure(
                    format!("paid_for.{causer}"),
                    a.paid_for.get(causer).copied().unwrap_or(0),
                    b.paid_for.get(causer).copied().unwrap_or(0),
                );
            }
            let none = Default::default();
            let (ca, cb) = (
                a.caused.as_ref().unwrap_or(&none),
                b.caused.as_ref().unwrap_or(&none),
            );
            let mut causers: Vec<&String> = ca.keys().chain(cb.keys()).collect();
            causers.sort();
            causers.dedup();
            for causer in causers {
                for kind in KINDS {
                    figure(
                        format!("caused.{causer}.{kind}"),
                        ca.get(causer).map_or(0, |k| k.get(kind)),
                        cb.get(causer).map_or(0, |k| k.get(kind)),
                    );
                }
            }
            for (name, x, y) in [
                ("charged", &a.charged, &b.charged),
                ("uncharged", &a.uncharged, &b.uncharged),
                ("limit_hits", &a.limit_hits, &b.limit_hits),
            ] {
                if let (Some(x), Some(y)) = (x, y) {
                    for kind in KINDS {
                        figure(format!("{name}.{kind}"), x.get(kind), y.get(kind));
                    }
                }
            }
            if let (Some(x), Some(y)) = (&a.events, &b.events) {
                for event in crate::report::EVENTS {
                    figure(
                        format!("events.{event}"),
                        x.get(event).copied().unwrap_or(0),
                        y.get(event).copied().unwrap_or(0),
                    );
                }
            }
            figure(
                "charged_total_bytes".to_string(),
                a.charged_total_bytes,
                b.charged_total_bytes,
            );
            figure(
                "uncharged_total_bytes".to_string(),
                a.uncharged_total_bytes,
                b.uncharged_total_bytes,
            );
        }
        // Why each domain was last denied (the domains a replay knows: every one traced).
        for domain in &theirs.domains {
            let Some(replayed) = ours.domain(&domain.name) else {
                continue;
            };
            for (field, replayed, real) in [
                (
                    "keeper_faults",
                    replayed.keeper_faults,
                    domain.keeper_faults,
                ),
                ("restarts", replayed.restarts, domain.restarts),
                (
                    "keeper_choices.answered",
                    replayed.keeper_choices.answered,
                    domain.keeper_choices.answered,
                ),
                (
                    "keeper_choices.timeout",
                    replayed.keeper_choices.timeout,
                    domain.keeper_choices.timeout,
                ),
                (
                    "keeper_choices.wrong",
                    replayed.keeper_choices.wrong,
                    domain.keeper_choices.wrong,
                ),
                (
                    "keeper_choices.none",
                    replayed.keeper_choices.none,
                    domain.keeper_choices.none,
                ),
            ] {
                if replayed != real {
                    found.push(Mismatch {
                        place: format!("{at}, domain `{}`, {field}", domain.name),
                        replayed: replayed.to_string(),
                        real: real.to_string(),
                    });
                }
            }
            if replayed.last_denial != domain.last_denial {
                let show = |denial: &Option<crate::report::LastDenial>| {
                    denial
                        .as_ref()
                        .map_or("none".to_string(), crate::report::LastDenial::explain)
                };
                found.push(Mismatch {
                    place: format!("{at}, domain `{}`, last_denial", domain.name),
                    replayed: show(&replayed.last_denial),
                    real: show(&domain.last_denial),
                });
            }
        }
    }
    found
}

/// The denials a run reports by its last snapshot (`capped: anon×1`), or `None`.
pub fn denials(report: &Report) -> Option<String> {
    let last = report.snapshots.last()?;
    let parts: Vec<String> = last
        .charge_sets
        .iter()
        .filter(|set| set.denied.total() > 0)
        .map(|set| {
            let kinds: Vec<String> = KINDS
                .iter()
                .filter(|kind| set.denied.get(kind) > 0)
                .map(|kind| format!("{kind}×{}", set.denied.get(kind)))
                .collect();
            format!("{}: {}", set.name, kinds.join(" "))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// How a replay compared with a real run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every figure equal.
    Equal,
    /// Figures differ where they must be equal.
    Mismatch(Vec<Mismatch>),
    /// Figures differ, but equality is not required, for the reason given.
    Excused {
        /// Why equality is not required.
        why: String,
        /// The differences.
        mismatches: Vec<Mismatch>,
    },
    /// The replay itself failed.
    Error(String),
}

/// One replay of a run's trace under another run's policies, compared with that run.
#[derive(Debug, Clone)]
pub struct PairCheck {
    /// The run whose policies the replay used (`cow-fork [cow=holder]`).
    pub target: String,
    /// Whether the target is the traced run itself.
    pub is_self: bool,
    /// What the replay did, when it ran.
    pub stats: Option<ReplayStats>,
    /// The comparison.
    pub verdict: Verdict,
}

/// Replays `trace` (of the run `source`) under `target_policy` and compares it with `target`,
/// the real run under those policies. `is_self`: the target is the traced run (equality is then
/// always required: the trace records denied operations too).
pub fn check_pair(
    trace: &Trace,
    source: &Report,
    target_policy: &[(String, String)],
    target: &Report,
    target_label: &str,
    is_self: bool,
) -> PairCheck {
    let replayed = match replay(trace, target_policy) {
        Ok(replayed) => replayed,
        Err(error) => {
            return PairCheck {
                target: target_label.to_string(),
                is_self,
                stats: None,
                verdict: Verdict::Error(error),
            }
        }
    };
    let mismatches = compare(&replayed.snapshots, &target.snapshots);
    let excuse = if is_self {
        None
    } else if let Some((key, traced)) = keeper_only_in_target(source, target_policy) {
        Some(format!(
            "`{key} = keeper` asks a keeper before each of its charges, which the traced run \
             (`{key} = {traced}`) never did: a replay has no answers, and takes the fallback"
        ))
    } else if let Some(why) = high_divergence(trace, target_policy) {
        Some(why)
    } else if replayed.stats.diverging > 0 {
        Some(format!(
            "the replay could not apply {} of the run's operations (diverging)",
            replayed.stats.diverging
        ))
    } else if let Some(denied) = denials(source) {
        Some(format!("the traced run had denials ({denied})"))
    } else {
        denials(target).map(|denied| format!("the real run had denials ({denied})"))
    };
    let verdict = match (mismatches.is_empty(), excuse) {
        (true, _) => Verdict::Equal,
        (false, None) => Verdict::Mismatch(mismatches),
        (false, Some(why)) => Verdict::Excused { why, mismatches },
    };
    PairCheck {
        target: target_label.to_string(),
        is_self,
        stats: Some(replayed.stats),
        verdict,
    }
}

/// The policies of `trace` with `overrides` applied, for the ledger.
fn policies_for(
    trace: &Trace,
    overrides: &[(String, String)],
) -> Result<accounting::Policies, String> {
    let mut chosen = trace.policy.clone();
    for (key, name) in overrides {
        match chosen.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = name.clone(),
            None => chosen.push((key.clone(), name.clone())),
        }
    }
    let pairs: Vec<(&str, &str)> = chosen
        .iter()
        .map(|(key, name)| (key.as_str(), name.as_str()))
        .collect();
    policies::with_overrides(&pairs).map_err(|error| error.to_string())
}

/// For a run whose sets have `high` bounds: the first trace record after which a set is above
/// its bound under `target_policy` but not under the traced run's policies, or the other way
/// round — from there the kernel's reclaim requests (and the evictions a pager made for them),
/// which the trace repeats as they happened, are not what a run under the target policies
/// would have asked. Replays the trace under both, record by record. `None` when no set ever
/// has a bound, or the two agree throughout.
pub fn high_divergence(trace: &Trace, target_policy: &[(String, String)]) -> Option<String> {
    if !trace.records.lines().any(|line| line.starts_with("high ")) {
        return None;
    }
    let (own, other) = (
        policies_for(trace, &[]).ok()?,
        policies_for(trace, target_policy).ok()?,
    );
    let mut frames = (
        vec![FrameEntry::FREE; trace.frames as usize],
        vec![FrameEntry::FREE; trace.frames as usize],
    );
    let mut scratch = (
        vec![FrameIndex(0); trace.largest_share.max(1)],
        vec![FrameIndex(0); trace.largest_share.max(1)],
    );
    let mut traced = Replayer::new(&mut frames.0, &mut scratch.0, own);
    let mut target = Replayer::new(&mut frames.1, &mut scratch.1, other);
    let above = |ledger: &accounting::Ledger<'_>| -> Vec<(usize, u64, u64)> {
        ledger
            .sets()
            .iter()
            .enumerate()
            .filter_map(|(index, set)| {
                let high = set.high_bytes?;
                (set.subtree_bytes() > high).then_some((index, set.subtree_bytes(), high))
            })
            .collect()
    };
    for (number, line) in trace.records.lines().enumerate() {
        let record = TraceRecord::parse(line).ok()?;
        traced.feed(&record).ok()?;
        target.feed(&record).ok()?;
        let (a, b) = (above(traced.ledger()), above(target.ledger()));
        let a_sets: Vec<usize> = a.iter().map(|(set, ..)| *set).collect();
        let b_sets: Vec<usize> = b.iter().map(|(set, ..)| *set).collect();
        if a_sets == b_sets {
            continue;
        }
        // The keys the target changes.
        let policy: Vec<String> = target_policy
            .iter()
            .filter(|(key, name)| !trace.policy.iter().any(|(k, n)| k == key && n == name))
            .map(|(key, name)| format!("{key}={name}"))
            .collect();
        let sets = target.ledger().sets();
        let name = |set: usize| sets.get(set).map_or("?", |s| s.name.as_str());
        let subtree = |ledger: &accounting::Ledger<'_>, set: usize| {
            ledger.sets().get(set).map_or(0, |s| s.subtree_bytes())
        };
        let (set, high, under, over) = match b.iter().find(|(set, ..)| !a_sets.contains(set)) {
            Some(&(set, _, high)) => (set, high, "the target", "the traced run's"),
            None => {
                let &(set, _, high) = a.iter().find(|(set, ..)| !b_sets.contains(set))?;
                (set, high, "the traced run's", "the target")
            }
        };
        let (traced_bytes, target_bytes) =
            (subtree(traced.ledger(), set), subtree(target.ledger(), set));
        return Some(format!(
            "trace record {} (`{line}`) takes set `{}` above its high bound ({high} bytes) \
             under {under} policies but not under {over} ({traced_bytes} bytes traced, \
             {target_bytes} under {}): from there the kernel's reclaim requests, and the \
             pager's evictions for them, which the trace repeats as they happened, are not \
             those of a run under the target policies",
            number + 1,
            name(set),
            policy.join(", ")
        ));
    }
    None
}

/// A key whose target policy is `keeper` (the kernel asks a keeper who pays) while the traced
/// run's is not, with the traced run's value: the keeper's answers are not in the trace.
fn keeper_only_in_target<'p>(
    source: &Report,
    target_policy: &'p [(String, String)],
) -> Option<(&'p str, String)> {
    target_policy
        .iter()
        .filter(|(_, name)| name == "keeper")
        .find_map(|(key, _)| {
            let traced = source.policy.get(key)?.as_str()?;
            (traced != "keeper").then(|| (key.as_str(), traced.to_string()))
        })
}

/// The replay checks of one traced run: its trace replayed under its own policies and under
/// those of every other run of the same config.
#[derive(Debug, Clone)]
pub struct RunCheck {
    /// The traced run (`cow-fork [cow=writer]`).
    pub source: String,
    /// Why no replay was possible (no trace, a trace that does not parse).
    pub problem: Option<String>,
    /// One per run of the config, the traced one first.
    pub pairs: Vec<PairCheck>,
}

impl RunCheck {
    /// Whether every required equality held and every replay ran.
    pub fn passed(&self) -> bool {
        self.problem.is_none()
            && self
                .pairs
                .iter()
                .all(|p| matches!(p.verdict, Verdict::Equal | Verdict::Excused { .. }))
    }

    /// The report lines: `PASS replay …` or `FAIL replay …`, then an indented line per
    /// replay that did not simply equal its run.
    pub fn lines(&self) -> Vec<String> {
        const SHOWN: usize = 4;
        if let Some(problem) = &self.problem {
            return vec![format!("FAIL replay {}: {problem}", self.source)];
        }
        let equal = self
            .pairs
            .iter()
            .filter(|p| p.verdict == Verdict::Equal)
            .count();
        let others = self.pairs.iter().filter(|p| !p.is_self).count();
        let self_ok = self
            .pairs
            .iter()
            .any(|p| p.is_self && p.verdict == Verdict::Equal);
        let records = self
            .pairs
            .iter()
            .find(|p| p.is_self)
            .and_then(|p| p.stats)
            .map(|s| s.records)
            .unwrap_or(0);
        let others_text = match others {
            0 => "no other run to compare with".to_string(),
            _ => format!(
                "equal to {} of {others} other run{}",
                equal - usize::from(self_ok),
                if others == 1 { "" } else { "s" }
            ),
        };
        let mut lines = vec![format!(
            "{} replay {}: {} its own run; {others_text} ({records} trace records)",
            if self.passed() { "PASS" } else { "FAIL" },
            self.source,
            if self_ok {
                "reproduces"
            } else {
                "does NOT reproduce"
            },
        )];
        for pair in &self.pairs {
            let name = if pair.is_self {
                "itself".to_string()
            } else {
                format!("as {}", pair.target)
            };
            let listed = |mismatches: &[Mismatch]| {
                let mut text: Vec<String> = mismatches
                    .iter()
                    .take(SHOWN)
                    .map(|m| m.to_string())
                    .collect();
                if mismatches.len() > SHOWN {
                    text.push(format!("… {} more", mismatches.len() - SHOWN));
                }
                text.join("; ")
            };
            match &pair.verdict {
                Verdict::Equal => {}
                Verdict::Mismatch(mismatches) => lines.push(format!(
                    "  MISMATCH {name}: {}: {}",
                    figures(mismatches.len()),
                    listed(mismatches)
                )),
                Verdict::Excused { why, mismatches } => lines.push(format!(
                    "  not required {name}: {why}; {}, e.g. {}",
                    figures(mismatches.len()),
                    listed(&mismatches[..1])
                )),
                Verdict::Error(error) => {
                    lines.push(format!("  ERROR {name}: the replay failed: {error}"))
                }
            }
        }
        lines
    }
}

/// `1 figure differs`, `3 figures differ`.
fn figures(count: usize) -> String {
    if count == 1 {
        "1 figure differs".to_string()
    } else {
        format!("{count} figures differ")
    }
}

/// Replay-checks every traced run among `outcomes` against every run of the same config
/// (itself included). Runs without a report (they failed already) are left out.
pub fn check_outcomes(outcomes: &[JobOutcome]) -> Vec<RunCheck> {
    let mut checks = Vec::new();
    for source in outcomes {
        let Some(source_report) = &source.report else {
            continue;
        };
        let mut check = RunCheck {
            source: source.job.label(),
            problem: None,
            pairs: Vec::new(),
        };
        let trace = match Trace::parse(&source_report.trace.join("\n")) {
            Ok(trace) => trace,
            Err(error) => {
                check.problem = Some(format!("cannot replay the trace: {error}"));
                checks.push(check);
                continue;
            }
        };
        let mut targets: Vec<&JobOutcome> = vec![source];
        targets.extend(outcomes.iter().filter(|other| {
            other.job.config.name == source.job.config.name
                && !std::ptr::eq(*other, source)
                && other.report.is_some()
        }));
        for target in targets {
            let Some(target_report) = &target.report else {
                continue;
            };
            check.pairs.push(check_pair(
                &trace,
                source_report,
                &target.job.config.policy,
                target_report,
                &target.job.label(),
                std::ptr::eq(target, source),
            ));
        }
        checks.push(check);
    }
    checks
}

/// The closing line of a replay check:
/// `replays: 130 equal, 0 mismatched, 2 not required to be equal, 0 failed`.
pub fn closing_line(checks: &[RunCheck]) -> String {
    let pairs = || checks.iter().flat_map(|c| &c.pairs);
    let equal = pairs().filter(|p| p.verdict == Verdict::Equal).count();
    let mismatched = pairs()
        .filter(|p| matches!(p.verdict, Verdict::Mismatch(_)))
        .count();
    let excused = pairs()
        .filter(|p| matches!(p.verdict, Verdict::Excused { .. }))
        .count();
    let failed = pairs()
        .filter(|p| matches!(p.verdict, Verdict::Error(_)))
        .count()
        + checks.iter().filter(|c| c.problem.is_some()).count();
    format!("replays: {equal} equal, {mismatched} mismatched, {excused} not required to be equal, {failed} failed")
}

/// Where `tally replay` finds a run: the trace text, the run's report when there is one, and
/// the directory the replays go under by default.
#[derive(Debug)]
pub struct Input {
    /// The trace.
    pub trace: Trace,
    /// The run's own report (`report.json`, or the one the console log gives).
    pub report: Option<Report>,
    /// What was read (for the reports' `replay.source`).
    pub source: PathBuf,
    /// The run's directory.
    pub dir: PathBuf,
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|error| Failure::environment(format!("cannot read {}: {error}", path.display())))
}

/// Finds the trace of a run given as its output directory (`trace.txt`, else `console.log`),
/// its `trace.txt`, or its `console.log`; the report comes from `report.json` beside it or from
/// the console log.
pub fn find_input(path: &Path) -> Result<Input, Failure> {
    let (file, dir) = if path.is_dir() {
        let trace = path.join("trace.txt");
        let console = path.join("console.log");
        let file = if trace.is_file() {
            trace
        } else if console.is_file() {
            console
        } else {
            return Err(Failure::config(format!(
                "{} has neither trace.txt nor console.log: give a run's output directory, \
                 its trace.txt or its console.log",
                path.display()
            )));
        };
        (file, path.to_path_buf())
    } else if path.is_file() {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        (path.to_path_buf(), dir)
    } else {
        return Err(Failure::environment(format!(
            "{} does not exist",
            path.display()
        )));
    };
    let text = read(&file)?;
    let unusable = |error: String| Failure::config(format!("{}: {error}", file.display()));
    let trace = Trace::parse(&text).map_err(unusable)?;
    let from_console = text.lines().any(|l| l.starts_with("@tally/1 run "));
    let report = if from_console {
        report::parse_console(&text).ok()
    } else {
        let json = dir.join("report.json");
        if json.is_file() {
            Some(
                serde_json::from_str::<Report>(&read(&json)?).map_err(|error| {
                    Failure::config(format!("{}: not a report: {error}", json.display()))
                })?,
            )
        } else {
            None
        }
    };
    Ok(Input {
        trace,
        report,
        source: file,
        dir,
    })
}

/// Every combination of every policy key's names, the first key varying slowest (48).
pub fn all_combinations() -> Vec<Vec<(String, String)>> {
    let keys: Vec<String> = registry::keys().iter().map(|k| k.to_string()).collect();
    crate::testing::combinations(&keys, &[])
}

/// The combinations `tally replay` makes: each `--policy` text applied to the run's own
/// policies, or every combination when there is none or `all` is set.
pub fn chosen_combinations(
    trace: &Trace,
    texts: &[String],
    all: bool,
) -> Result<Vec<Vec<(String, String)>>, Failure> {
    let mut combos: Vec<Vec<(String, String)>> = Vec::new();
    if all || texts.is_empty() {
        combos = all_combinations();
    }
    for text in texts {
        let overrides = PolicyOverrides::parse(text).map_err(Failure::config)?;
        if overrides.transfer().is_some() {
            return Err(Failure::config(
                "--policy: `transfer` cannot be replayed: a trace records one transfer mode's \
                 events; boot the config again with `tally run --policy transfer=...`",
            ));
        }
        let mut combo = trace.policy.clone();
        // A preset replays as the policies it names (its transfer mode cannot be replayed).
        for (key, name) in overrides.expanded_policies() {
            if let Some(slot) = combo.iter_mut().find(|(k, _)| k == key) {
                slot.1 = name.to_string();
            }
        }
        if !combos.contains(&combo) {
            combos.push(combo);
        }
    }
    Ok(combos)
}

fn title(policy: &[(String, String)]) -> String {
    policy
        .iter()
        .map(|(key, name)| format!("{key}={name}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One replayed combination, for the comparison.
struct Replayed {
    policy: Vec<(String, String)>,
    report: Report,
    stats: ReplayStats,
}

/// `tally replay`: writes `OUT/<combination>/report.json` (and `report.csv`, `summary.md`,
/// `charges.svg`) per combination, and `OUT/comparison.md` / `comparison.csv`; prints a line
/// per combination. Exit 1 when a replay fails or the replay under the run's own policies does
/// not reproduce the run's report.
pub fn replay_command(
    input: &Path,
    texts: &[String],
    all: bool,
    out: Option<&Path>,
) -> Result<u8, Failure> {
    let input = find_input(input)?;
    let combos = chosen_combinations(&input.trace, texts, all)?;
    let out = out.map_or_else(|| input.dir.join("replay"), Path::to_path_buf);
    std::fs::create_dir_all(&out).map_err(|error| {
        Failure::environment(format!("cannot create {}: {error}", out.display()))
    })?;
    let config = input.report.as_ref().map_or_else(
        || {
            input
                .dir
                .file_name()
                .map_or("trace".to_string(), |n| n.to_string_lossy().into_owned())
        },
        |report| report.config.clone(),
    );
    let base = input
        .report
        .clone()
        .unwrap_or_else(|| skeleton_report(&config, &input.trace));
    let source = input.source.display().to_string();
    let mut status = exit::OK;
    let mut replays: Vec<Replayed> = Vec::new();
    println!(
        "replaying {} ({} records, recorded under {}) under {} combination{}",
        source,
        input.trace.records.lines().count(),
        title(&input.trace.policy),
        combos.len(),
        if combos.len() == 1 { "" } else { "s" }
    );
    for combo in &combos {
        let replayed = match replay(&input.trace, combo) {
            Ok(replayed) => replayed,
            Err(error) => {
                println!("FAIL {}: the replay failed: {error}", title(combo));
                status = exit::RUN_FAILED;
                continue;
            }
        };
        let report = replay_report(&base, &input.trace, combo, &replayed, &source);
        let dir = out.join(combo_dir(combo));
        std::fs::create_dir_all(&dir).map_err(|error| {
            Failure::environment(format!("cannot create {}: {error}", dir.display()))
        })?;
        crate::session::write_report_files(&report, &dir)?;
        let mut line = format!(
            "{}: {} ({} operations applied, {} denied, {} diverging)",
            title(combo),
            if replayed.stats.diverging == 0 {
                "exact"
            } else {
                "NOT exact"
            },
            replayed.stats.applied,
            replayed.stats.denied,
            replayed.stats.diverging
        );
        if *combo == input.trace.policy {
            if let Some(real) = &input.report {
                let mismatches = compare(&replayed.snapshots, &real.snapshots);
                if mismatches.is_empty() {
                    line.push_str("; reproduces the recorded run");
                } else {
                    status = exit::RUN_FAILED;
                    line.push_str(&format!(
                        "; does NOT reproduce the recorded run: {}",
                        mismatches
                            .iter()
                            .take(4)
                            .map(|m| m.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                }
            }
        }
        println!("{line}");
        replays.push(Replayed {
            policy: combo.clone(),
            report,
            stats: replayed.stats,
        });
    }
    let (markdown, csv) = comparison(&config, &input, &replays);
    for (name, text) in [("comparison.md", markdown), ("comparison.csv", csv)] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|error| {
            Failure::environment(format!("cannot write {}: {error}", path.display()))
        })?;
    }
    {
        let reports: Vec<&Report> = replays.iter().map(|r| &r.report).collect();
        let combos: Vec<Vec<(String, String)>> = replays.iter().map(|r| r.policy.clone()).collect();
        let indifferent = crate::compare::indifferent_keys(&combos, &reports);
        println!(
            "{} among {}{}",
            crate::words::count(
                crate::compare::identical_groups(&reports).len(),
                "distinct outcome"
            ),
            crate::words::count(replays.len(), "combination"),
            if indifferent.is_empty() {
                String::new()
            } else {
                format!("; no effect here: {}", indifferent.join(", "))
            }
        );
    }
    println!(
        "wrote {}/<combination>/report.json and {}/comparison.md, comparison.csv",
        out.display(),
        out.display()
    );
    Ok(status)
}

/// The replays grouped by identical outcome (charges, denials, attribution and domain states
/// in every snapshot; see [`crate::compare`]), and the policy keys that never changed one.
fn outcome_groups(replays: &[Replayed]) -> String {
    let reports: Vec<&Report> = replays.iter().map(|r| &r.report).collect();
    let groups = crate::compare::identical_groups(&reports);
    let combos: Vec<Vec<(String, String)>> = replays.iter().map(|r| r.policy.clone()).collect();
    let indifferent = crate::compare::indifferent_keys(&combos, &reports);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## Identical outcomes\n\n{} among {}.{}\n",
        crate::words::count(groups.len(), "distinct outcome"),
        crate::words::count(replays.len(), "combination"),
        if indifferent.is_empty() {
            String::new()
        } else {
            format!(
                " Keys that change nothing here: {} (every pair of combinations differing in \
                 that key alone has the same outcome).",
                indifferent
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let _ = writeln!(md, "| outcome | runs | combinations |\n|---|---:|---|");
    for (index, group) in groups.iter().enumerate() {
        let members: Vec<&[(String, String)]> =
            group.iter().map(|&i| combos[i].as_slice()).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            index + 1,
            group.len(),
            crate::compare::describe_group(&members, &combos)
        );
    }
    md
}

/// The side-by-side comparison of the replays (and the recorded run, first, when its report is
/// known): markdown tables of the key snapshot and of `final`'s peaks, the replays' statistics,
/// and the tidy CSV of every snapshot.
fn comparison(config: &str, input: &Input, replays: &[Replayed]) -> (String, String) {
    let titles: Vec<String> = replays.iter().map(|r| title(&r.policy)).collect();
    let dirs: Vec<String> = replays.iter().map(|r| combo_dir(&r.policy)).collect();
    let notes: Vec<String> = replays
        .iter()
        .map(|r| {
            if r.stats.diverging == 0 {
                "replay".to_string()
            } else {
                format!("replay, NOT exact: {} diverging", r.stats.diverging)
            }
        })
        .collect();
    let recorded_title = title(&input.trace.policy);
    let mut entries: Vec<Entry<'_>> = Vec::new();
    if let Some(real) = &input.report {
        entries.push(Entry {
            title: &recorded_title,
            combination: "recorded",
            report: real,
            note: Some("recorded run"),
        });
    }
    for (index, replayed) in replays.iter().enumerate() {
        entries.push(Entry {
            title: &titles[index],
            combination: &dirs[index],
            report: &replayed.report,
            note: Some(&notes[index]),
        });
    }
    let reports: Vec<&Report> = entries.iter().map(|e| e.report).collect();
    let key = matrix::key_snapshot(&reports);
    let mut md = String::new();
    let _ = writeln!(md, "# {config}: counterfactual replays\n");
    let _ = writeln!(
        md,
        "The trace `{}` (recorded under {}) replayed under {} policy combination{}. A replay is \
         exact when no operation diverged; the programs' reactions to a refusal cannot be \
         replayed, and instruction counts are the recorded ones.\n",
        input.source.display(),
        title(&input.trace.policy),
        replays.len(),
        if replays.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        md,
        "| policies | operations applied | denied | failed | diverging | exact |\n|---|---|---|---|---|---|"
    );
    for (index, replayed) in replays.iter().enumerate() {
        let s = &replayed.stats;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            titles[index],
            s.applied,
            s.denied,
            s.failed,
            s.diverging,
            if s.diverging == 0 { "yes" } else { "no" }
        );
    }
    md.push_str(&outcome_groups(replays));
    if matrix::is_user_label(&key) {
        let _ = writeln!(md, "\n## Snapshot `{key}` (key)\n");
        md.push_str(&matrix::current_table(&entries, &key));
    }
    let _ = writeln!(md, "\n## `{}`: peaks over the run\n", matrix::FINAL);
    md.push_str(&matrix::peaks_table(&entries));

    let mut rows = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let (source, diverging) = if input.report.is_some() && index == 0 {
            ("run".to_string(), String::new())
        } else {
            let at = index - usize::from(input.report.is_some());
            (
                "replay".to_string(),
                replays[at].stats.diverging.to_string(),
            )
        };
        rows.push(crate::render::CsvRows::of(
            config,
            entry,
            &key,
            vec![source, diverging],
        ));
    }
    let csv = crate::render::table_csv(
        crate::render::CsvTable::Charges,
        &["source", "diverging"],
        &rows,
    );
    (md, csv)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made trace: `parent` maps two pages and shares both with `child` copy-on-write;
    /// the child writes one (a copy), snapshot `shared`; then everything is unmapped. `LIMIT`
    /// is the child's limit.
    fn trace_text(cow: &str, child_limit: &str) -> String {
        format!(
            "ledger 16\n\
             policies cow={cow} msgbuf=sender pagetable=owner release=migrate kernel=self\n\
             boot 0 2\n\
             set 1 parent - -\n\
             set 2 child - {child_limit}\n\
             snapshot 100 16 14 0 start\n\
             dom 0 parent 1\n\
             dom 1 child 2\n\
             anon 2 0\n\
             anon 3 0\n\
             share-many 1 2\n\
             frames 2 3\n\
             cow 2 4 1\n\
             snapshot 200 16 11 3 shared\n\
             unmap 4 1\n\
             unmap 2 0\n\
             unmap 3 0\n\
             unmap 3 1\n\
             state 0 exited\n\
             state 1 exited\n\
             snapshot 300 16 14 0 final\n"
        )
    }

    fn policy(cow: &str) -> Vec<(String, String)> {
        vec![("cow".to_string(), cow.to_string())]
    }

    /// The report a real run under `cow` would give: its own trace replayed under its own
    /// policies (the accounting crate tests that this reproduces a run exactly).
    fn real_run(cow: &str, child_limit: &str) -> (Trace, Report) {
        let trace = Trace::parse(&trace_text(cow, child_limit)).unwrap();
        let replayed = replay(&trace, &[]).unwrap();
        let base = skeleton_report("cow-fork", &trace);
        let report = replay_report(&base, &trace, &trace.policy, &replayed, "hand-made");
        (trace, report)
    }

    #[test]
    fn a_high_bound_crossed_under_one_policy_only_names_the_record() {
        let text = trace_text("writer", "-")
            .replace("set 2 child - -\n", "set 2 child - -\nhigh 1 8192\n");
        let trace = Trace::parse(&text).unwrap();
        // Under `cow = holder` the child's copy is the parent's to pay: above its bound there.
        let why = high_divergence(&trace, &policy("holder")).expect("a divergence");
        assert!(
            why.starts_with("trace record 14 (`cow 2 4 1`) takes set `parent` above its high bound (8192 bytes) under the target policies but not under the traced run's (8192 bytes traced, 12288 under cow=holder)"),
            "{why}"
        );
        // The same policies, or a trace without bounds: nothing to say.
        assert_eq!(high_divergence(&trace, &policy("writer")), None);
        let plain = Trace::parse(&trace_text("writer", "-")).unwrap();
        assert_eq!(high_divergence(&plain, &policy("holder")), None);
    }

    #[test]
    fn a_trace_reads_from_records_or_a_console_log() {
        let text = trace_text("writer", "-");
        let trace = Trace::parse(&text).unwrap();
        assert_eq!(trace.frames, 16);
        assert_eq!(trace.largest_share, 2);
        assert_eq!(trace.policy[0], ("cow".to_string(), "writer".to_string()));
        assert_eq!(
            trace.policy[3],
            ("release".to_string(), "migrate".to_string())
        );
        let console: String = format!(
            "Tally 0.1.0 booting\n@tally/1 run {{\"config\":\"x\",\"policy\":{{}}}}\n[parent] hi\n{}",
            text.lines()
                .map(|l| format!("@tally/1 trace {l}\n"))
                .collect::<String>()
        );
        assert_eq!(Trace::parse(&console).unwrap(), trace);

        let message = Trace::parse("ledger 16\nanon x 0\n").unwrap_err();
        assert!(message.starts_with("line 2: "), "{message}");
        assert!(message.ends_with(": anon x 0"), "{message}");
        let message = Trace::parse("Tally booting\n@tally/1 run {}\n").unwrap_err();
        assert!(message.contains("tally run --trace"), "{message}");
        let message = Trace::parse("anon 2 0\n").unwrap_err();
        assert!(message.contains("no `ledger` record"), "{message}");
    }

    #[test]
    fn a_replay_under_other_policies_moves_the_charges() {
        let (trace, _) = real_run("writer", "-");
        let writer = replay(&trace, &[]).unwrap();
        let holder = replay(&trace, &policy("holder")).unwrap();
        assert_eq!(holder.stats.diverging, 0);
        assert_eq!(holder.stats.applied, writer.stats.applied);
        let labels: Vec<&str> = holder.snapshots.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["start", "shared", "final"]);
        let shared = &holder.snapshots[1];
        assert_eq!(shared.charge_set("parent").unwrap().current.cow, 4096);
        assert_eq!(shared.charge_set("child").unwrap().current.cow, 0);
        assert_eq!(shared.charge_set("parent").unwrap().paid_for["child"], 4096);
        assert_eq!(
            writer.snapshots[1].charge_set("child").unwrap().current.cow,
            4096
        );
        // The free-frame count follows the frames in use; the instructions are the recorded ones.
        assert_eq!(shared.frames.free, 11);
        assert_eq!(shared.instructions, 200);
        assert!(replay(&trace, &policy("nonsense"))
            .unwrap_err()
            .contains("valid: writer, holder, split"));
    }

    #[test]
    fn differences_are_named_precisely() {
        let (_, writer) = real_run("writer", "-");
        let (_, holder) = real_run("holder", "-");
        assert_eq!(compare(&writer.snapshots, &writer.snapshots), []);
        let found = compare(&writer.snapshots, &holder.snapshots);
        let text: Vec<String> = found.iter().map(Mismatch::to_string).collect();
        assert_eq!(
            text,
            [
                "snapshot `shared` (2 of 3), set `parent`, current.cow: replay 0, run 4096",
                "snapshot `shared` (2 of 3), set `parent`, peak.cow: replay 0, run 4096",
                "snapshot `shared` (2 of 3), set `parent`, paid_for.child: replay 0, run 4096",
                "snapshot `shared` (2 of 3), set `parent`, caused.child.cow: replay 0, run 4096",
                "snapshot `shared` (2 of 3), set `parent`, charged.cow: replay 0, run 4096",
                "snapshot `shared` (2 of 3), set `parent`, charged_total_bytes: replay 8192, run 12288",
                "snapshot `shared` (2 of 3), set `child`, current.cow: replay 4096, run 0",
                "snapshot `shared` (2 of 3), set `child`, peak.cow: replay 4096, run 0",
                "snapshot `shared` (2 of 3), set `child`, caused.child.cow: replay 4096, run 0",
                "snapshot `shared` (2 of 3), set `child`, charged.cow: replay 4096, run 0",
                "snapshot `shared` (2 of 3), set `child`, charged_total_bytes: replay 4096, run 0",
                "snapshot `final` (3 of 3), set `parent`, peak.cow: replay 0, run 4096",
                "snapshot `final` (3 of 3), set `parent`, charged.cow: replay 0, run 4096",
                "snapshot `final` (3 of 3), set `parent`, uncharged.cow: replay 0, run 4096",
                "snapshot `final` (3 of 3), set `parent`, charged_total_bytes: replay 8192, run 12288",
                "snapshot `final` (3 of 3), set `parent`, uncharged_total_bytes: replay 8192, run 12288",
                "snapshot `final` (3 of 3), set `child`, peak.cow: replay 4096, run 0",
                "snapshot `final` (3 of 3), set `child`, charged.cow: replay 4096, run 0",
                "snapshot `final` (3 of 3), set `child`, uncharged.cow: replay 4096, run 0",
                // Under writer the child paid its copy, then (migrate) the page the parent left.
                "snapshot `final` (3 of 3), set `child`, charged_total_bytes: replay 8192, run 4096",
                "snapshot `final` (3 of 3), set `child`, uncharged_total_bytes: replay 8192, run 4096",
            ]
        );
        let mut fewer = holder.snapshots.clone();
        fewer.remove(1);
        assert_eq!(
            compare(&writer.snapshots, &fewer)[0].to_string(),
            "snapshot labels: replay [start, shared, final], run [start, final]"
        );
        let mut renamed = holder.snapshots.clone();
        renamed[2].charge_sets[2].name = "other".into();
        let found = compare(&holder.snapshots, &renamed);
        assert_eq!(
            found[0].to_string(),
            "snapshot `final` (3 of 3), set `child`: replay present, run absent"
        );
    }

    #[test]
    fn a_replay_equals_the_real_run_of_its_policies() {
        let (writer_trace, writer) = real_run("writer", "-");
        let (holder_trace, holder) = real_run("holder", "-");
        // Each trace replayed as itself and as the other run.
        for (trace, source) in [(&writer_trace, &writer), (&holder_trace, &holder)] {
            for (policy, target, is_self) in [
                (&writer_trace.policy, &writer, std::ptr::eq(source, &writer)),
                (&holder_trace.policy, &holder, std::ptr::eq(source, &holder)),
            ] {
                let check = check_pair(trace, source, policy, target, "target", is_self);
                assert_eq!(check.verdict, Verdict::Equal, "{check:?}");
                assert_eq!(check.stats.unwrap().diverging, 0);
            }
        }
    }

    #[test]
    fn a_difference_is_a_mismatch_unless_a_denial_or_divergence_excuses_it() {
        let (trace, writer) = real_run("writer", "-");
        let (_, mut holder) = real_run("holder", "-");
        // A real run that differs by one figure from what the replay predicts.
        holder.snapshots[1].charge_sets[1].current.cow = 8192;
        let check = check_pair(&trace, &writer, &policy("holder"), &holder, "h", false);
        let Verdict::Mismatch(found) = &check.verdict else {
            panic!("{check:?}")
        };
        assert_eq!(
            found.iter().map(Mismatch::to_string).collect::<Vec<_>>(),
            ["snapshot `shared` (2 of 3), set `parent`, current.cow: replay 4096, run 8192"]
        );
        let lines = RunCheck {
            source: "cow-fork [cow=writer]".into(),
            problem: None,
            pairs: vec![check],
        }
        .lines();
        assert!(
            lines[0].starts_with("FAIL replay cow-fork [cow=writer]"),
            "{lines:?}"
        );
        assert_eq!(lines[1], "  MISMATCH as h: 1 figure differs: snapshot `shared` (2 of 3), set `parent`, current.cow: replay 4096, run 8192");

        // The same difference with a denial in the real run is not required to vanish.
        holder.snapshots[2].charge_sets[2].denied.anon = 1;
        let check = check_pair(&trace, &writer, &policy("holder"), &holder, "h", false);
        let Verdict::Excused { why, .. } = &check.verdict else {
            panic!("{check:?}")
        };
        assert_eq!(why, "the real run had denials (child: anon×1)");
        // Under the run's own policies a replay must always reproduce it, denials or not.
        let mut own = writer.clone();
        own.snapshots[2].charge_sets[2].denied.anon = 1;
        let check = check_pair(&trace, &own, &trace.policy, &own, "itself", true);
        assert!(matches!(check.verdict, Verdict::Mismatch(_)), "{check:?}");
    }

    #[test]
    fn a_replay_that_diverges_is_not_required_to_match() {
        // The child's limit is 3000 bytes: under cow=split its 2048-byte shares of two pages
        // do not fit, so the replay refuses the share; then the copy of a frame the child
        // never mapped and the child's two unmaps fail: three diverging operations.
        let (trace, writer) = real_run("writer", "3000");
        let split = replay(&trace, &policy("split")).unwrap();
        assert_eq!(split.stats.denied, 1);
        assert_eq!(split.stats.diverging, 3);
        let (_, mut real_split) = real_run("writer", "3000");
        real_split.policy.insert("cow".into(), Value::from("split"));
        let check = check_pair(&trace, &writer, &policy("split"), &real_split, "s", false);
        let Verdict::Excused { why, mismatches } = &check.verdict else {
            panic!("{check:?}")
        };
        assert_eq!(
            why,
            "the replay could not apply 3 of the run's operations (diverging)"
        );
        assert!(!mismatches.is_empty());
        let report = replay_report(
            &skeleton_report("x", &trace),
            &trace,
            &policy("split"),
            &split,
            "t",
        );
        assert_eq!(report.extra["replay"]["diverging"], 3);
        assert_eq!(report.extra["replay"]["exact"], false);
        assert_eq!(report.extra["replay"]["recorded_policy"]["cow"], "writer");
        assert_eq!(report.policy["cow"], "split");
    }

    #[test]
    fn combinations_are_every_one_or_the_overrides_given() {
        let (trace, _) = real_run("writer", "-");
        let every: usize = crate::registry::keys()
            .iter()
            .map(|key| crate::registry::valid_names(key).unwrap().len())
            .product();
        assert_eq!(all_combinations().len(), every);
        assert_eq!(
            chosen_combinations(&trace, &[], false).unwrap().len(),
            every
        );
        let chosen =
            chosen_combinations(&trace, &["cow=holder release=stay".into()], false).unwrap();
        assert_eq!(
            title(&chosen[0]),
            "cow=holder msgbuf=sender pagetable=owner release=stay kernel=self move=stay"
        );
        assert_eq!(
            chosen_combinations(&trace, &["cow=holder".into()], true)
                .unwrap()
                .len(),
            every
        );
        let error = chosen_combinations(&trace, &["cow=nobody".into()], false).unwrap_err();
        assert_eq!(error.status, exit::CONFIG_ERROR);
    }

    fn outcome(cow: &str, report: Option<Report>) -> JobOutcome {
        use crate::config::Config;
        let text = format!(
            "[policy]\ncow = \"{cow}\"\n[experiment]\nvary = [\"cow\"]\n\
             [[charge_set]]\nname = \"parent\"\n[[charge_set]]\nname = \"child\"\n\
             [[domain]]\nname = \"parent\"\nprogram = \"cow_parent\"\ncharge_set = \"parent\"\n"
        );
        let config = Config::from_text(
            Path::new("configs/cow-fork.toml"),
            &text,
            &Ok(vec!["cow_parent".into()]),
            &PolicyOverrides::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        JobOutcome {
            job: crate::testing::Job {
                combo: vec![("cow".into(), cow.into())],
                out_dir: PathBuf::from("out"),
                config,
            },
            failures: Vec::new(),
            report,
            seconds: 0.0,
        }
    }

    #[test]
    fn every_traced_run_is_replayed_as_every_run_of_its_config() {
        let with_trace = |cow: &str| {
            let (_, mut report) = real_run(cow, "-");
            report.trace = trace_text(cow, "-").lines().map(String::from).collect();
            report
        };
        let outcomes = [
            outcome("writer", Some(with_trace("writer"))),
            outcome("holder", Some(with_trace("holder"))),
            // A run that failed without a report is left out.
            outcome("split", None),
        ];
        let checks = check_outcomes(&outcomes);
        assert_eq!(checks.len(), 2);
        assert!(checks.iter().all(RunCheck::passed), "{checks:?}");
        assert_eq!(checks[0].pairs.len(), 2);
        assert!(checks[0].pairs[0].is_self && !checks[0].pairs[1].is_self);
        assert_eq!(checks[0].pairs[1].target, "cow-fork [cow=holder]");
        assert_eq!(
            checks[0].lines(),
            ["PASS replay cow-fork [cow=writer]: reproduces its own run; equal to 1 of 1 other run (21 trace records)"]
        );
        assert_eq!(
            closing_line(&checks),
            "replays: 4 equal, 0 mismatched, 0 not required to be equal, 0 failed"
        );

        // A run without a trace cannot be checked.
        let (_, untraced) = real_run("writer", "-");
        let checks = check_outcomes(&[outcome("writer", Some(untraced))]);
        assert!(!checks[0].passed());
        assert!(checks[0].lines()[0].starts_with(
            "FAIL replay cow-fork [cow=writer]: cannot replay the trace: no trace records"
        ));
        assert_eq!(
            closing_line(&checks),
            "replays: 0 equal, 0 mismatched, 0 not required to be equal, 1 failed"
        );
    }

    #[test]
    fn the_replay_command_writes_a_report_per_combination_and_a_comparison() {
        let dir = std::env::temp_dir().join(format!("tally-replay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (_, report) = real_run("writer", "-");
        std::fs::write(dir.join("trace.txt"), trace_text("writer", "-")).unwrap();
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string(&report).unwrap(),
        )
        .unwrap();
        let status = replay_command(
            &dir,
            &["cow=holder".into(), "cow=writer".into()],
            false,
            None,
        )
        .unwrap();
        assert_eq!(status, exit::OK);
        let out = dir.join("replay");
        let holder = out
            .join("cow-holder_msgbuf-sender_pagetable-owner_release-migrate_kernel-self_move-stay");
        for name in ["report.json", "report.csv", "summary.md", "charges.svg"] {
            assert!(holder.join(name).is_file(), "{name}");
        }
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(holder.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(json["schema"], "tally.report/1");
        assert_eq!(json["policy"]["cow"], "holder");
        assert_eq!(json["replay"]["exact"], true);
        assert_eq!(json["replay"]["recorded_policy"]["cow"], "writer");
        assert_eq!(
            json["snapshots"][1]["charge_sets"][1]["current"]["cow"],
            4096
        );
        let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
        assert!(md.contains("## Snapshot `shared` (key)"), "{md}");
        assert!(md.contains("| cow=writer msgbuf=sender pagetable=owner release=migrate kernel=self move=stay (recorded run) | parent | 8 KiB |"), "{md}");
        assert!(md.contains("| cow=holder msgbuf=sender pagetable=owner release=migrate kernel=self move=stay (replay) | parent | 8 KiB | 0 | 0 | 0 | 4 KiB | **12 KiB** | 0 | child: 4 KiB |"), "{md}");
        assert!(md.contains("| cow=holder msgbuf=sender pagetable=owner release=migrate kernel=self move=stay | 8 | 0 | 0 | 0 | yes |"), "{md}");
        let csv = std::fs::read_to_string(out.join("comparison.csv")).unwrap();
        // The run and two replays; 3 snapshots of 3 sets (`kernel`, `parent`, `child`).
        assert_eq!(csv.lines().count(), 1 + 3 * 3 * 3);
        assert!(csv.lines().any(|l| l.starts_with(
            "replay,0,cow-fork,cow-holder_msgbuf-sender_pagetable-owner_release-migrate_kernel-self_move-stay,holder,"
        )));

        // A report that the replay under its own policies does not reproduce fails the command.
        let mut wrong = report.clone();
        wrong.snapshots[1].charge_sets[2].current.cow = 0;
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string(&wrong).unwrap(),
        )
        .unwrap();
        let status = replay_command(
            &dir,
            &["cow=writer".into()],
            false,
            Some(&dir.join("again")),
        )
        .unwrap();
        assert_eq!(status, exit::RUN_FAILED);
        // No trace at all is a usage error.
        let error = replay_command(&dir.join("again"), &[], false, None).unwrap_err();
        assert_eq!(error.status, exit::CONFIG_ERROR);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

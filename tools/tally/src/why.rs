//! `tally why`: "why am I billed for this frame?", answered from a traced run.
//!
//! The kernel keeps 8 bytes of metadata per frame — its kind, causer and payer slots — and no
//! history; the history is the event trace (`tally run --trace`). This module replays the
//! trace with the run's own policies (so the ledger is the run's, step by step) and keeps, for
//! every frame, the trace records that touched it: the event that charged it (`anon`,
//! `pagetable`, `kernel`, `domobj`, `msgbuf`, `cow` for a copy) and every later one that moved
//! its charge (`share`, `share-many`, `cow` on the original, `unmap` — under `release = migrate`
//! a departure moves the charge to a survivor, under `split` it recomputes the shares — and
//! `free`). At the snapshot asked for (default: the last one a program took, else `final`) it
//! reads each frame's payers, shares, causer and mappers from the replayed ledger.
//!
//! - `tally why RUN --set NAME`: every frame the set pays for at that snapshot, with the bytes
//!   it pays, the kind, the causer, the charging event and the later events.
//! - `tally why RUN --frame N`: one frame's whole history (every allocation of it, up to the
//!   snapshot) and its state there.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use accounting::{FrameEntry, FrameIndex, Ledger, Replayer, TraceRecord};

use crate::exit::{self, Failure};
use crate::replay::{find_input, Trace};
use crate::size::human;

/// A frame's payer slots: (mapping domain, paying set), holder first.
type Slots = Vec<(Option<accounting::DomainId>, accounting::SetId)>;

/// One trace record that touched a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// 1-based record number in the trace.
    pub record: usize,
    /// The record, names put in for ids (`cow 812 -> 990 by child`).
    pub text: String,
}

/// One frame's charge at the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billing {
    /// The frame number.
    pub frame: u32,
    /// Its kind (`anon`, `cow`, ...).
    pub kind: String,
    /// The domain whose action caused it (`-` when none).
    pub causer: String,
    /// `(set, bytes)` for every payer slot, holder first.
    pub payers: Vec<(String, u64)>,
    /// Domains mapping it.
    pub mappers: Vec<String>,
    /// The events of its current allocation, the charging one first.
    pub events: Vec<Event>,
}

/// What the replay found at the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// The snapshot's label.
    pub label: String,
    /// Every charged frame at the snapshot, by frame number.
    pub frames: BTreeMap<u32, Billing>,
    /// Every event per frame up to the snapshot, every allocation of it included.
    pub histories: BTreeMap<u32, Vec<Event>>,
}

/// The frames a record touches.
fn frames_of(record: &TraceRecord, pending_many: &mut usize) -> Vec<u32> {
    match record {
        TraceRecord::Anon { frame, .. }
        | TraceRecord::PageTable { frame, .. }
        | TraceRecord::Kernel { frame, .. }
        | TraceRecord::DomainObject { frame, .. }
        | TraceRecord::Msgbuf { frame, .. }
        | TraceRecord::Share { frame, .. }
        | TraceRecord::Unmap { frame, .. }
        | TraceRecord::Free { frame } => vec![frame.0],
        TraceRecord::Cow { original, copy, .. } => vec![original.0, copy.0],
        TraceRecord::ShareMany { count, .. } => {
            *pending_many = *count as usize;
            Vec::new()
        }
        TraceRecord::Frames { frames } => frames.iter().map(|f| f.0).collect(),
        _ => Vec::new(),
    }
}

/// Whether the record (for `frame`) starts a new allocation of the frame.
fn allocates(record: &TraceRecord, frame: u32) -> bool {
    match record {
        TraceRecord::Anon { .. }
        | TraceRecord::PageTable { .. }
        | TraceRecord::Kernel { .. }
        | TraceRecord::DomainObject { .. }
        | TraceRecord::Msgbuf { .. } => true,
        TraceRecord::Cow { copy, .. } => copy.0 == frame,
        _ => false,
    }
}

fn domain_name(ledger: &Ledger<'_>, id: Option<accounting::DomainId>) -> String {
    match id {
        Some(id) => ledger
            .domain(id)
            .map_or_else(|_| format!("domain {}", id.0), |d| d.name.to_string()),
        None => "-".to_string(),
    }
}

fn set_name(ledger: &Ledger<'_>, id: accounting::SetId) -> String {
    ledger
        .set(id)
        .map_or_else(|_| format!("set {}", id.0), |s| s.name.to_string())
}

/// The record with names for ids, as a person reads it.
fn describe(
    ledger: &Ledger<'_>,
    record: &TraceRecord,
    frame: u32,
    share_many: Option<&str>,
) -> String {
    let d = |id| domain_name(ledger, Some(id));
    match record {
        TraceRecord::Anon { domain, .. } => format!("anon: a page mapped by {}", d(*domain)),
        TraceRecord::PageTable { owner, causer, .. } => format!(
            "pagetable: a table of {}'s address space, made necessary by {}",
            d(*owner),
            d(*causer)
        ),
        TraceRecord::Kernel { set, causer, .. } => format!(
            "kernel: an object bound to set {}, caused by {}",
            set_name(ledger, *set),
            domain_name(ledger, *causer)
        ),
        TraceRecord::DomainObject {
            domain, spawner, ..
        } => format!(
            "domobj: a kernel object of {} (spawned by {})",
            d(*domain),
            domain_name(ledger, *spawner)
        ),
        TraceRecord::Msgbuf {
            sender, receiver, ..
        } => format!(
            "msgbuf: a message buffer from {} to {}",
            d(*sender),
            d(*receiver)
        ),
        TraceRecord::Share { domain, .. } => format!("share: now also mapped by {}", d(*domain)),
        TraceRecord::Cow {
            original,
            copy,
            writer,
        } => {
            if copy.0 == frame {
                format!(
                    "cow: the private copy of frame {} that {} wrote",
                    original.0,
                    d(*writer)
                )
            } else {
                format!(
                    "cow: {} wrote it and got its own copy (frame {}); {} no longer maps it",
                    d(*writer),
                    copy.0,
                    d(*writer)
                )
            }
        }
        TraceRecord::Unmap { domain, .. } => format!(
            "unmap: {} left it (its charge stays or migrates to a sharer as `release` says)",
            d(*domain)
        ),
        TraceRecord::Free { .. } => "free: the frame was freed, its charge returned".to_string(),
        TraceRecord::Frames { .. } => match share_many {
            Some(domain) => format!("share: now also mapped by {domain} (share-many)"),
            None => "share".to_string(),
        },
        other => format!("{other}"),
    }
}

/// Replays `trace` under its own policies up to the snapshot `label` (or the last program
/// snapshot, else `final`), recording every frame's events.
pub fn investigate(trace: &Trace, label: Option<&str>) -> Result<Findings, String> {
    let pairs: Vec<(&str, &str)> = trace
        .policy
        .iter()
        .map(|(key, name)| (key.as_str(), name.as_str()))
        .collect();
    let policies = policies::with_overrides(&pairs).map_err(|error| error.to_string())?;
    let labels: Vec<String> = trace
        .records
        .lines()
        .filter_map(|line| match TraceRecord::parse(line) {
            Ok(TraceRecord::Snapshot { label, .. }) => Some(label.to_string()),
            _ => None,
        })
        .collect();
    let wanted = match label {
        Some(label) if labels.iter().any(|l| l == label) => label.to_string(),
        Some(label) => {
            return Err(format!(
                "no snapshot `{label}` in the trace; it has: {}",
                labels.join(", ")
            ))
        }
        None => labels
            .iter()
            .rev()
            .find(|l| *l != "start" && *l != "final")
            .or(labels.last())
            .cloned()
            .ok_or("the trace has no snapshot")?,
    };
    let mut frames = vec![FrameEntry::FREE; trace.frames as usize];
    let mut scratch = vec![FrameIndex(0); trace.largest_share.max(1)];
    let mut replayer = Replayer::new(&mut frames, &mut scratch, policies);
    let mut findings = Findings {
        label: wanted.clone(),
        ..Findings::default()
    };
    let mut current: BTreeMap<u32, Vec<Event>> = BTreeMap::new();
    let mut pending_many = 0usize;
    let mut many_domain: Option<String> = None;
    for (index, line) in trace.records.lines().enumerate() {
        let record =
            TraceRecord::parse(line).map_err(|e| format!("trace record {}: {e:?}", index + 1))?;
        if let TraceRecord::ShareMany { domain, .. } = &record {
            many_domain = Some(domain_name(replayer.ledger(), Some(*domain)));
        }
        let was_many = pending_many > 0;
        let touched = frames_of(&record, &mut pending_many);
        for frame in &touched {
            let text = describe(
                replayer.ledger(),
                &record,
                *frame,
                was_many.then_some(many_domain.as_deref().unwrap_or("?")),
            );
            let event = Event {
                record: index + 1,
                text,
            };
            if allocates(&record, *frame) {
                current.insert(*frame, Vec::new());
            }
            current.entry(*frame).or_default().push(event.clone());
            findings.histories.entry(*frame).or_default().push(event);
        }
        if let TraceRecord::Frames { frames } = &record {
            pending_many = pending_many.saturating_sub(frames.len());
        }
        // A move lists no frames (the ledger finds them): note it on every frame the domain
        // holds a slot of, saying whether the charge went with it.
        let moving = match &record {
            TraceRecord::Move { domain, set } => {
                let ledger = replayer.ledger();
                let before: Vec<(u32, Slots)> = current
                    .keys()
                    .filter_map(|frame| {
                        let state = ledger.frame_state(FrameIndex(*frame)).ok()?;
                        state
                            .slots
                            .iter()
                            .any(|slot| slot.domain == Some(*domain))
                            .then(|| {
                                (
                                    *frame,
                                    state.slots.iter().map(|s| (s.domain, s.set)).collect(),
                                )
                            })
                    })
                    .collect();
                Some((
                    *domain,
                    domain_name(ledger, Some(*domain)),
                    set_name(ledger, *set),
                    before,
                ))
            }
            _ => None,
        };
        let snapshot = replayer
            .feed(&record)
            .map_err(|e| format!("replaying record {}: {e:?}", index + 1))?;
        if let Some((_, who, to, before)) = moving {
            let ledger = replayer.ledger();
            for (frame, slots) in before {
                let after: Vec<_> = ledger
                    .frame_state(FrameIndex(frame))
                    .map(|state| state.slots.iter().map(|s| (s.domain, s.set)).collect())
                    .unwrap_or_default();
                let text = if after != slots {
                    format!("move: {who} moved to set {to}, and its charge for this frame with it (move = migrate)")
                } else {
                    format!("move: {who} moved to set {to}; this frame's charge stayed where it was made")
                };
                let event = Event {
                    record: index + 1,
                    text,
                };
                current.entry(frame).or_default().push(event.clone());
                findings.histories.entry(frame).or_default().push(event);
            }
        }
        if snapshot.is_some_and(|s| s.label.as_str() == wanted) {
            let ledger = replayer.ledger();
            for (frame, events) in &current {
                let Ok(state) = ledger.frame_state(FrameIndex(*frame)) else {
                    continue;
                };
                let payers = state
                    .slots
                    .iter()
                    .enumerate()
                    .map(|(slot, s)| (set_name(ledger, s.set), state.slot_bytes(slot)))
                    .filter(|(_, bytes)| *bytes > 0)
                    .collect();
                let mappers = state
                    .slots
                    .iter()
                    .filter_map(|s| s.domain)
                    .map(|d| domain_name(ledger, Some(d)))
                    .collect();
                findings.frames.insert(
                    *frame,
                    Billing {
                        frame: *frame,
                        kind: state.kind.key().to_string(),
                        causer: domain_name(ledger, state.causer),
                        payers,
                        mappers,
                        events: events.clone(),
                    },
                );
            }
            return Ok(findings);
        }
    }
    Err(format!("the trace ends before snapshot `{wanted}`"))
}

fn billing_line(out: &mut String, billing: &Billing, set: Option<&str>) {
    let paid = set
        .and_then(|set| billing.payers.iter().find(|(s, _)| s == set))
        .map_or(String::new(), |(_, bytes)| format!("{} ", human(*bytes)));
    let payers: Vec<String> = billing
        .payers
        .iter()
        .map(|(set, bytes)| format!("{set} {}", human(*bytes)))
        .collect();
    let _ = writeln!(
        out,
        "frame {} ({}): {paid}caused by {}; paid by {}; mapped by {}",
        billing.frame,
        billing.kind,
        billing.causer,
        payers.join(", "),
        if billing.mappers.is_empty() {
            "nobody".to_string()
        } else {
            billing.mappers.join(", ")
        }
    );
    for event in &billing.events {
        let _ = writeln!(out, "    #{:<6} {}", event.record, event.text);
    }
}

/// The `--set` answer: every frame `set` pays for, grouped by kind and causer first.
pub fn set_report(findings: &Findings, set: &str) -> String {
    let mut billed: Vec<&Billing> = findings
        .frames
        .values()
        .filter(|b| b.payers.iter().any(|(s, _)| s == set))
        .collect();
    billed.sort_by(|a, b| (&a.kind, &a.causer, a.frame).cmp(&(&b.kind, &b.causer, b.frame)));
    let mut out = String::new();
    let total: u64 = billed
        .iter()
        .filter_map(|b| {
            b.payers
                .iter()
                .find(|(s, _)| s == set)
                .map(|(_, bytes)| bytes)
        })
        .sum();
    let _ = writeln!(
        out,
        "set `{set}` at snapshot `{}`: {} in {}",
        findings.label,
        human(total),
        crate::words::count(billed.len(), "frame")
    );
    let mut groups: BTreeMap<(&str, &str), (usize, u64)> = BTreeMap::new();
    for b in &billed {
        let bytes = b
            .payers
            .iter()
            .find(|(s, _)| s == set)
            .map_or(0, |(_, v)| *v);
        let entry = groups
            .entry((b.kind.as_str(), b.causer.as_str()))
            .or_default();
        entry.0 += 1;
        entry.1 += bytes;
    }
    for ((kind, causer), (count, bytes)) in &groups {
        let _ = writeln!(
            out,
            "  {kind:<10} caused by {causer:<12} {} ({})",
            human(*bytes),
            crate::words::count(*count, "frame")
        );
    }
    let _ = writeln!(out);
    for b in billed {
        billing_line(&mut out, b, Some(set));
    }
    out
}

/// The `--frame` answer: its state at the snapshot and its whole history up to it.
pub fn frame_report(findings: &Findings, frame: u32) -> String {
    let mut out = String::new();
    match findings.frames.get(&frame) {
        Some(billing) => {
            let _ = writeln!(out, "at snapshot `{}`:", findings.label);
            billing_line(&mut out, billing, None);
        }
        None => {
            let _ = writeln!(
                out,
                "frame {frame} is not charged at snapshot `{}`",
                findings.label
            );
        }
    }
    let _ = writeln!(out, "\nits whole history up to `{}`:", findings.label);
    match findings.histories.get(&frame) {
        Some(events) => {
            for event in events {
                let _ = writeln!(out, "    #{:<6} {}", event.record, event.text);
            }
        }
        None => {
            let _ = writeln!(out, "    (no trace record touched it)");
        }
    }
    out
}

/// `tally why`: reads the run, answers for `set` or `frame`.
pub fn command(
    input: &Path,
    set: Option<&str>,
    frame: Option<u32>,
    snapshot: Option<&str>,
) -> Result<u8, Failure> {
    let input = find_input(input)?;
    let findings =
        investigate(&input.trace, snapshot).map_err(|e| Failure::new(exit::RUN_FAILED, e))?;
    match (set, frame) {
        (Some(set), None) => {
            let known: Vec<String> = findings
                .frames
                .values()
                .flat_map(|b| b.payers.iter().map(|(s, _)| s.clone()))
                .collect();
            if !known.iter().any(|s| s == set) {
                let mut names = known.clone();
                names.sort();
                names.dedup();
                println!(
                    "set `{set}` pays for no frame at snapshot `{}` (sets paying: {})",
                    findings.label,
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                );
                return Ok(exit::OK);
            }
            print!("{}", set_report(&findings, set));
        }
        (None, Some(frame)) => print!("{}", frame_report(&findings, frame)),
        _ => {
            return Err(Failure::config(
                "give --set NAME (every frame a set pays for) or --frame N (one frame's history)",
            ))
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "ledger 16\n\
        policies cow=writer msgbuf=sender pagetable=owner release=migrate kernel=self\n\
        boot 0 2\n\
        set 1 parent - 1048576\n\
        set 2 child - 1048576\n\
        snapshot 10 16 14 0 start\n\
        dom 0 parent 1\n\
        dom 1 child 2\n\
        anon 2 0\n\
        share 2 1\n\
        cow 2 3 1\n\
        anon 4 1\n\
        snapshot 20 16 11 3 shared\n\
        unmap 3 1\n\
        free 3\n\
        snapshot 30 16 12 2 final\n";

    fn trace() -> Trace {
        Trace::parse(TRACE).unwrap()
    }

    #[test]
    fn a_copy_is_billed_to_its_writer_with_its_history() {
        let findings = investigate(&trace(), None).unwrap();
        assert_eq!(findings.label, "shared");
        let copy = &findings.frames[&3];
        assert_eq!(copy.kind, "cow");
        assert_eq!(copy.causer, "child");
        assert_eq!(copy.payers, [("child".to_string(), 4096)]);
        assert!(copy.events[0]
            .text
            .contains("private copy of frame 2 that child wrote"));
        let original = &findings.frames[&2];
        assert_eq!(original.payers, [("parent".to_string(), 4096)]);
        let texts: Vec<&str> = original.events.iter().map(|e| e.text.as_str()).collect();
        assert!(texts[0].starts_with("anon"), "{texts:?}");
        assert!(texts[1].starts_with("share"), "{texts:?}");
        assert!(texts[2].contains("got its own copy (frame 3)"), "{texts:?}");
        let report = set_report(&findings, "child");
        assert!(
            report.contains("set `child` at snapshot `shared`: 8 KiB in 2 frames"),
            "{report}"
        );
        assert!(report.contains("cow        caused by child"), "{report}");
    }

    #[test]
    fn a_move_is_in_the_history_of_the_frames_it_touched() {
        for (policy, moved) in [("stay", false), ("migrate", true)] {
            let text = TRACE
                .replace("kernel=self", &format!("kernel=self move={policy}"))
                .replace("anon 4 1\n", "anon 4 1\nmove 1 1\n");
            let findings = investigate(&Trace::parse(&text).unwrap(), Some("shared")).unwrap();
            let page = &findings.frames[&4];
            let payer = if moved { "parent" } else { "child" };
            assert_eq!(page.payers, [(payer.to_string(), 4096)], "{policy}");
            let last = &page.events.last().unwrap().text;
            assert!(
                last.starts_with("move: child moved to set parent"),
                "{last}"
            );
            assert_eq!(last.contains("with it"), moved, "{last}");
        }
    }

    #[test]
    fn a_frame_history_covers_every_allocation_up_to_the_snapshot() {
        let findings = investigate(&trace(), Some("final")).unwrap();
        assert!(!findings.frames.contains_key(&3));
        let report = frame_report(&findings, 3);
        assert!(
            report.contains("is not charged at snapshot `final`"),
            "{report}"
        );
        assert!(report.contains("free: the frame was freed"), "{report}");
        assert!(investigate(&trace(), Some("nope"))
            .unwrap_err()
            .contains("start, shared, final"));
    }
}

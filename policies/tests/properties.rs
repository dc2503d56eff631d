//! Property tests of the ledger under every policy combination (3 × 4 × 2 × 2 = 48): random
//! sequences of faults, shares, writes to shared frames, unmaps, exits, kernel objects,
//! message buffers and limit changes.
//!
//! Invariants checked after every event: the full audit (conservation, no negative usage,
//! subtree sums, peak ≥ current, charged − uncharged = current, sharer-list references); every
//! frame's slots pay exactly 4096 bytes (split neither loses nor invents a byte); a denial
//! changes nothing but one denial counter; any other error changes nothing; a set never grows
//! past its limit (so a set over its limit never grows). At the end, when every domain exits
//! and every unmapped frame is freed, every set is back to zero. And a trace of the run,
//! replayed under the same policies, reproduces its snapshots exactly.

use accounting::{
    replay_text, ChargeSet, DomainId, DomainState, Error, FrameEntry, FrameIndex, Kind, Ledger, Op,
    Plan, Policies, Replayer, SetId, SnapshotHeader, TraceRecord, FRAME_BYTES,
};
use proptest::prelude::*;
use std::cell::RefCell;

const FRAMES: usize = 48;
const BOOT_FRAMES: u32 = 2;
const DOMAINS: usize = 4;
const SETS: usize = 6;

#[derive(Clone, Debug)]
enum Event {
    Fault {
        domain: usize,
        causer: usize,
        tables: usize,
    },
    Share {
        frame: usize,
        domain: usize,
    },
    ShareMany {
        domain: usize,
        start: usize,
        count: usize,
    },
    Write {
        frame: usize,
        domain: usize,
    },
    Unmap {
        frame: usize,
        domain: usize,
    },
    Exit {
        domain: usize,
    },
    Kernel {
        set: usize,
        domain: usize,
    },
    DomainObject {
        domain: usize,
        spawner: Option<usize>,
    },
    Msgbuf {
        sender: usize,
        receiver: usize,
    },
    /// A new domain's start as the kernel reserves it: its two kernel objects, its root table,
    /// then its image pages, every other one with a table (caused alternately by the spawner
    /// and the domain): one plan of new frames whose payers differ under `kernel = spawner` and
    /// `pagetable = causer`. `reuse`, when given, names an
    /// earlier frame of the plan again (or, past its end, a raw frame index): a bad plan.
    Start {
        domain: usize,
        spawner: Option<usize>,
        pages: usize,
        reuse: Option<usize>,
    },
    Free {
        frame: usize,
    },
    SetLimit {
        set: usize,
        pages: Option<u64>,
    },
    KindLimit {
        set: usize,
        kind: usize,
        pages: Option<u64>,
    },
    /// `domain_move`: under `move = migrate` its charges go with it, all or nothing.
    Move {
        domain: usize,
        set: usize,
    },
    /// A keeper's answer for the domain's next keeper-decided charge (`cow = keeper`,
    /// `msgbuf = keeper`): a set (perhaps over its limit, or unknown), a fallback, or cleared.
    Choice {
        domain: usize,
        which: usize,
        set: usize,
    },
}

fn event() -> impl Strategy<Value = Event> {
    let domain = 0..DOMAINS;
    // Below FRAMES: that raw frame index (often the wrong state: errors must change nothing);
    // above: the n-th frame that fits the event (mapped, mapped by the domain, in use).
    let frame = 0..FRAMES * 8;
    prop_oneof![
        4 => (domain.clone(), domain.clone(), 0..3usize)
            .prop_map(|(domain, causer, tables)| Event::Fault { domain, causer, tables }),
        3 => (frame.clone(), domain.clone()).prop_map(|(frame, domain)| Event::Share { frame, domain }),
        1 => (domain.clone(), 0..FRAMES, 1..8usize)
            .prop_map(|(domain, start, count)| Event::ShareMany { domain, start, count }),
        3 => (frame.clone(), domain.clone()).prop_map(|(frame, domain)| Event::Write { frame, domain }),
        2 => (frame.clone(), domain.clone()).prop_map(|(frame, domain)| Event::Unmap { frame, domain }),
        1 => domain.clone().prop_map(|domain| Event::Exit { domain }),
        1 => (0..SETS, domain.clone()).prop_map(|(set, domain)| Event::Kernel { set, domain }),
        1 => (domain.clone(), proptest::option::of(domain.clone()))
            .prop_map(|(domain, spawner)| Event::DomainObject { domain, spawner }),
        1 => (domain.clone(), domain.clone()).prop_map(|(sender, receiver)| Event::Msgbuf { sender, receiver }),
        2 => (domain.clone(), proptest::option::of(domain.clone()), 1..8usize, proptest::option::weighted(0.2, 0..FRAMES + 16))
            .prop_map(|(domain, spawner, pages, reuse)| Event::Start { domain, spawner, pages, reuse }),
        1 => (0..FRAMES * 8).prop_map(|frame| Event::Free { frame }),
        1 => (0..SETS, proptest::option::of(0..24u64))
            .prop_map(|(set, pages)| Event::SetLimit { set, pages }),
        1 => (0..SETS, 0..Kind::COUNT, proptest::option::of(0..8u64))
            .prop_map(|(set, kind, pages)| Event::KindLimit { set, kind, pages }),
        1 => (domain.clone(), 0..SETS).prop_map(|(domain, set)| Event::Move { domain, set }),
        2 => (domain, 0..5usize, 0..SETS + 1).prop_map(|(domain, which, set)| Event::Choice { domain, which, set }),
    ]
}

thread_local! {
    static TRACE: RefCell<String> = const { RefCell::new(String::new()) };
}

fn record(record: &TraceRecord) {
    TRACE.with(|trace| {
        let mut trace = trace.borrow_mut();
        trace.push_str(&record.to_string());
        trace.push('\n');
    });
}

fn take_trace() -> String {
    TRACE.with(|trace| std::mem::take(&mut *trace.borrow_mut()))
}

/// Sets: kernel, root (limited), a and b under root, c (a root), d under c.
/// Domains: a1 and a2 in a, b1 in b, c1 in d.
fn build(ledger: &mut Ledger<'_>) -> [DomainId; DOMAINS] {
    ledger.mark_boot_range(FrameIndex(0), BOOT_FRAMES).unwrap();
    let root = ledger
        .create_set("root", None, Some(24 * FRAME_BYTES))
        .unwrap();
    let a = ledger
        .create_set("a", Some(root), Some(12 * FRAME_BYTES))
        .unwrap();
    let b = ledger
        .create_set("b", Some(root), Some(8 * FRAME_BYTES))
        .unwrap();
    let c = ledger.create_set("c", None, None).unwrap();
    let d = ledger
        .create_set("d", Some(c), Some(10 * FRAME_BYTES))
        .unwrap();
    ledger
        .set_kind_limit(a, Kind::Msgbuf, Some(2 * FRAME_BYTES))
        .unwrap();
    [
        ledger.create_domain("a1", a).unwrap(),
        ledger.create_domain("a2", a).unwrap(),
        ledger.create_domain("b1", b).unwrap(),
        ledger.create_domain("c1", d).unwrap(),
    ]
}

/// The frame `selector` names: a raw index below `FRAMES`, else the n-th frame that `fits`
/// (cyclically; the raw index when none fits).
fn pick(
    ledger: &Ledger<'_>,
    selector: usize,
    fits: impl Fn(&Ledger<'_>, FrameIndex) -> bool,
) -> FrameIndex {
    if selector < FRAMES {
        return FrameIndex(selector as u32);
    }
    let candidates: Vec<FrameIndex> = (0..FRAMES as u32)
        .map(FrameIndex)
        .filter(|frame| fits(ledger, *frame))
        .collect();
    if candidates.is_empty() {
        return FrameIndex((selector % FRAMES) as u32);
    }
    candidates[selector % candidates.len()]
}

fn free_frames(ledger: &Ledger<'_>, count: usize) -> Vec<FrameIndex> {
    (0..ledger.frame_count())
        .map(|index| FrameIndex(index as u32))
        .filter(|frame| ledger.entry(*frame).unwrap().is_free())
        .take(count)
        .collect()
}

fn snapshot(ledger: &Ledger<'_>, label: &str) -> String {
    let mut json = String::new();
    let header = SnapshotHeader {
        label,
        instructions: 0,
        total_frames: FRAMES as u64,
        free_frames: FRAMES as u64 - ledger.frames_in_use() - ledger.boot_frames(),
    };
    ledger.write_snapshot(&mut json, &header).unwrap();
    json
}

/// Applies one event; returns the result of the ledger call that can fail.
fn apply(
    ledger: &mut Ledger<'_>,
    domains: &[DomainId; DOMAINS],
    event: &Event,
) -> Result<(), Error> {
    match *event {
        Event::Fault {
            domain,
            causer,
            tables,
        } => {
            let free = free_frames(ledger, tables + 1);
            if free.len() < tables + 1 {
                return Ok(());
            }
            if causer % 2 == 0 {
                // A fault as the kernel charges it: the page first, then its tables, without
                // a plan (the fast path), or as that plan with the fast paths off.
                return ledger.new_page(free[0], domains[domain], domains[causer], &free[1..]);
            }
            let mut plan = Plan::new();
            for table in &free[1..] {
                plan.push(Op::PageTable {
                    frame: *table,
                    owner: domains[domain],
                    causer: domains[causer],
                })?;
            }
            plan.push(Op::Anon {
                frame: free[0],
                domain: domains[domain],
            })?;
            ledger.apply(&plan)
        }
        Event::Share { frame, domain } => {
            let frame = pick(ledger, frame, |ledger, candidate| {
                ledger.mappers(candidate).unwrap() > 0
                    && !ledger.maps(candidate, domains[domain]).unwrap()
            });
            ledger.share(frame, domains[domain])
        }
        Event::ShareMany {
            domain,
            start,
            count,
        } => {
            let frames: Vec<FrameIndex> = (start..FRAMES)
                .map(|index| FrameIndex(index as u32))
                .filter(|frame| {
                    ledger.mappers(*frame).unwrap() > 0
                        && !ledger.maps(*frame, domains[domain]).unwrap()
                })
                .take(count)
                .collect();
            ledger.share_many(&frames, domains[domain])
        }
        Event::Write { frame, domain } => {
            let frame = pick(ledger, frame, |ledger, candidate| {
                ledger.maps(candidate, domains[domain]).unwrap()
            });
            if !ledger.maps(frame, domains[domain]).unwrap() || ledger.mappers(frame).unwrap() < 2 {
                return Ok(()); // no copy: write access is just restored
            }
            let Some(copy) = free_frames(ledger, 1).first().copied() else {
                return Ok(());
            };
            ledger.cow_copy(frame, copy, domains[domain])
        }
        Event::Unmap { frame, domain } => {
            let frame = pick(ledger, frame, |ledger, candidate| {
                ledger.maps(candidate, domains[domain]).unwrap()
            });
            ledger.unmap(frame, domains[domain]).map(|_| ())
        }
        Event::Exit { domain } => {
            exit(ledger, domains[domain]);
            Ok(())
        }
        Event::Kernel { set, domain } => {
            let Some(frame) = free_frames(ledger, 1).first().copied() else {
                return Ok(());
            };
            ledger.new_kernel(frame, SetId(set as u16), Some(domains[domain]))
        }
        Event::DomainObject { domain, spawner } => {
            let spawner = spawner.map(|spawner| domains[spawner]);
            let free = free_frames(ledger, 3);
            if domain % 3 != 2 && free.len() == 3 {
                // A new domain's objects and root table as the kernel charges them, without a
                // plan (the fast path; a frame named twice every other time, which its general
                // path must refuse), or as that plan with the fast paths off.
                let objects = [free[0], free[domain % 3]];
                return ledger.new_domain_objects(objects, free[2], domains[domain], spawner);
            }
            let Some(frame) = free.first().copied() else {
                return Ok(());
            };
            ledger.apply(&Plan::one(Op::DomainObject {
                frame,
                domain: domains[domain],
                spawner,
            }))
        }
        Event::Msgbuf { sender, receiver } => {
            let Some(frame) = free_frames(ledger, 1).first().copied() else {
                return Ok(());
            };
            ledger.new_msgbuf(frame, domains[sender], domains[receiver])
        }
        Event::Start {
            domain,
            spawner,
            pages,
            reuse,
        } => {
            let tables = pages.div_ceil(2);
            let count = 3 + pages + tables;
            let mut free = free_frames(ledger, count);
            if free.len() < count {
                return Ok(());
            }
            if let Some(reuse) = reuse {
                let last = count - 1;
                free[last] = if reuse < last {
                    free[reuse]
                } else {
                    FrameIndex((reuse % FRAMES) as u32)
                };
            }
            let (owner, spawner) = (domains[domain], spawner.map(|s| domains[s]));
            let causer = spawner.unwrap_or(owner);
            let mut frames = free.into_iter();
            let mut next = || frames.next().unwrap_or(FrameIndex(0));
            let mut plan = Plan::new();
            for _ in 0..2 {
                plan.push(Op::DomainObject {
                    frame: next(),
                    domain: owner,
                    spawner,
                })?;
            }
            plan.push(Op::PageTable {
                frame: next(),
                owner,
                causer,
            })?;
            for page in 0..pages {
                plan.push(Op::Anon {
                    frame: next(),
                    domain: owner,
                })?;
                if page % 2 == 0 {
                    // Tables of different causers in one plan (their payers may differ).
                    plan.push(Op::PageTable {
                        frame: next(),
                        owner,
                        causer: if page % 4 == 0 { causer } else { owner },
                    })?;
                }
            }
            ledger.apply(&plan)
        }
        Event::Free { frame } => {
            let frame = pick(ledger, frame, |ledger, candidate| {
                ledger
                    .entry(candidate)
                    .unwrap()
                    .kind()
                    .is_some_and(|kind| !kind.is_mapped())
            });
            ledger.free(frame)
        }
        Event::SetLimit { set, pages } => {
            ledger.set_limit(SetId(set as u16), pages.map(|pages| pages * FRAME_BYTES))
        }
        Event::KindLimit { set, kind, pages } => ledger.set_kind_limit(
            SetId(set as u16),
            Kind::from_index(kind).unwrap(),
            pages.map(|pages| pages * FRAME_BYTES),
        ),
        Event::Move { domain, set } => ledger
            .move_domain(domains[domain], SetId(set as u16))
            .map(|_| ()),
        Event::Choice { domain, which, set } => {
            use accounting::KeeperChoice::*;
            let kind = if set % 2 == 0 {
                Kind::Cow
            } else {
                Kind::Msgbuf
            };
            let domain = domains[domain];
            match which {
                0 => ledger.set_keeper_choice(domain, kind, Answered(SetId(set as u16))),
                1 => ledger.set_keeper_choice(domain, kind, Timeout),
                2 => ledger.set_keeper_choice(domain, kind, Wrong),
                3 => ledger.set_keeper_choice(domain, kind, NoKeeper),
                _ => ledger.clear_keeper_choice(domain),
            }
        }
    }
}

fn exit(ledger: &mut Ledger<'_>, domain: DomainId) {
    let mapped: Vec<FrameIndex> = ledger.frames_mapped_by(domain).collect();
    for frame in mapped {
        ledger
            .unmap(frame, domain)
            .expect("a departure is never refused");
    }
    ledger
        .set_domain_state(domain, DomainState::Exited)
        .unwrap();
}

fn denied_total(sets: &[ChargeSet]) -> u64 {
    sets.iter().flat_map(|set| set.denied).sum()
}

fn check_event(
    before_frames: &[FrameEntry],
    before_sets: &[ChargeSet],
    ledger: &Ledger<'_>,
    result: Result<(), Error>,
    event: &Event,
) {
    assert_eq!(ledger.audit(), Ok(()), "after {event:?}");
    let conservation = ledger.conservation();
    assert!(conservation.ok, "{conservation:?} after {event:?}");
    for index in 0..ledger.frame_count() {
        if let Ok(state) = ledger.frame_state(FrameIndex(index as u32)) {
            let paid: u64 = (0..state.slots.len())
                .map(|slot| state.slot_bytes(slot))
                .sum();
            assert_eq!(paid, FRAME_BYTES, "frame {index} after {event:?}");
        }
    }
    match result {
        Err(Error::OverLimit(denial)) => {
            assert_eq!(ledger.frames(), before_frames, "a denial changed frames");
            assert_eq!(denied_total(ledger.sets()), denied_total(before_sets) + 1);
            assert_eq!(
                ledger.set(denial.payer).unwrap().denied[denial.kind.index()],
                before_sets[denial.payer.index()].denied[denial.kind.index()] + 1
            );
            // Counted once more where the limit failed, too.
            let hits =
                |sets: &[ChargeSet]| -> u64 { sets.iter().flat_map(|set| set.limit_hits).sum() };
            assert_eq!(hits(ledger.sets()), hits(before_sets) + 1);
            assert_eq!(
                ledger.set(denial.limit_set).unwrap().limit_hits[denial.kind.index()],
                before_sets[denial.limit_set.index()].limit_hits[denial.kind.index()] + 1
            );
            for (after, before) in ledger.sets().iter().zip(before_sets) {
                let mut after = after.clone();
                after.denied = before.denied;
                after.limit_hits = before.limit_hits;
                assert_eq!(&after, before, "a denial changed more than its counters");
            }
        }
        Err(_) => {
            assert_eq!(ledger.frames(), before_frames, "an error changed frames");
            assert_eq!(ledger.sets(), before_sets, "an error changed sets");
        }
        Ok(()) => {}
    }
    // A set never grows past its limits (so a set over a limit never grows).
    for (after, before) in ledger.sets().iter().zip(before_sets) {
        if after.subtree_bytes() > before.subtree_bytes() {
            if let Some(limit) = after.limit_bytes {
                assert!(
                    after.subtree_bytes() <= limit,
                    "{} grew past its limit",
                    after.name
                );
            }
        }
        for kind in Kind::ALL {
            let index = kind.index();
            if after.subtree_of(index) > before.subtree_of(index) {
                if let Some(limit) = after.kind_limit_bytes[index] {
                    assert!(
                        after.subtree_of(index) <= limit,
                        "{} grew past its {kind} limit",
                        after.name
                    );
                }
            }
        }
        for index in 0..Kind::COUNT {
            assert!(after.peak()[index] >= after.current[index]);
        }
    }
}

/// Runs `events` under `policies`, checking every property; returns the snapshots and trace.
fn run(policies: Policies, events: &[Event]) -> (Vec<String>, String) {
    let (snapshots, trace, _) = run_paths(policies, events, false);
    (snapshots, trace)
}

/// [`run`], with the ledger's fast paths on or (`general_only`) forced off; also returns every
/// event's outcome.
fn run_paths(
    policies: Policies,
    events: &[Event],
    general_only: bool,
) -> (Vec<String>, String, Vec<String>) {
    let mut frames = vec![FrameEntry::FREE; FRAMES];
    let mut ledger = Ledger::new(&mut frames, policies);
    ledger.set_general_only(general_only);
    ledger.set_trace_hook(Some(record));
    let domains = build(&mut ledger);
    let mut snapshots = vec![snapshot(&ledger, "start")];
    let mut outcomes = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let before_frames = ledger.frames().to_vec();
        let before_sets = ledger.sets().to_vec();
        let before_revision = ledger.revision();
        let result = apply(&mut ledger, &domains, event);
        outcomes.push(format!("{result:?}"));
        // A recount of unchanged books is skipped by the kernel: every change of the frame
        // table or the sets must move the revision.
        if ledger.frames() != &before_frames[..] || ledger.sets() != &before_sets[..] {
            assert_ne!(
                ledger.revision(),
                before_revision,
                "{event:?} changed the books silently"
            );
        }
        check_event(&before_frames, &before_sets, &ledger, result, event);
        if index % 8 == 7 {
            snapshots.push(snapshot(&ledger, &format!("step {index}")));
        }
    }
    // Everything goes: every domain exits, every unmapped frame is freed.
    for domain in domains {
        exit(&mut ledger, domain);
    }
    for index in 0..FRAMES as u32 {
        let _ = ledger.free(FrameIndex(index));
    }
    assert_eq!(ledger.audit(), Ok(()));
    assert_eq!(ledger.frames_in_use(), 0);
    assert_eq!(ledger.sharer_lists_in_use(), 0);
    for set in ledger.sets() {
        assert_eq!(set.current_bytes(), 0, "{} kept a charge", set.name);
        assert_eq!(set.subtree_bytes(), 0);
        assert!(set.caused.iter().flatten().all(|bytes| *bytes == 0));
        assert_eq!(set.charged_total_bytes(), set.uncharged_total_bytes);
    }
    snapshots.push(snapshot(&ledger, "final"));
    (snapshots, take_trace(), outcomes)
}

/// A spawn as the kernel reserves it: one batch of plans — a new domain's kernel objects and
/// root table, each page of its image (every other one with a table), then runs of the frames
/// its spawner maps, shared with it `chunk` frames to a plan.
#[derive(Clone, Debug)]
struct Spawn {
    spawner: usize,
    set: usize,
    pages: usize,
    chunk: usize,
}

fn spawn_event() -> impl Strategy<Value = Spawn> {
    (0..DOMAINS, 0..3usize, 0..6usize, 1..6usize).prop_map(|(spawner, set, pages, chunk)| Spawn {
        spawner,
        set,
        pages,
        chunk,
    })
}

/// The plans of `spawn` (the `index`-th) on the ledger as it is: the new domain is created
/// first (a record, not a charge). `None` when too few frames are free.
fn spawn_plans(
    ledger: &mut Ledger<'_>,
    domains: &[DomainId; DOMAINS],
    spawn: &Spawn,
    index: usize,
) -> Option<(Vec<FrameIndex>, Vec<Vec<FrameIndex>>, DomainId)> {
    let tables = spawn.pages.div_ceil(2);
    let free = free_frames(ledger, 3 + spawn.pages + tables);
    if free.len() < 3 + spawn.pages + tables {
        return None;
    }
    let set = ledger.set_by_name(["a", "b", "d"][spawn.set]).unwrap();
    let child = ledger.create_domain(&format!("n{index}"), set).ok()?;
    let shared: Vec<FrameIndex> = (0..FRAMES as u32)
        .map(FrameIndex)
        .filter(|frame| ledger.maps(*frame, domains[spawn.spawner]).unwrap())
        .collect();
    let runs = shared.chunks(spawn.chunk).map(<[_]>::to_vec).collect();
    Some((free, runs, child))
}

/// Builds the plans of a spawn from its frames and hands each to `each` in order.
fn for_each_spawn_plan(
    free: &[FrameIndex],
    runs: &[Vec<FrameIndex>],
    child: DomainId,
    spawner: DomainId,
    pages: usize,
    mut each: impl FnMut(&Plan<'_>) -> Result<(), Error>,
) -> Result<(), (usize, Error)> {
    let mut frames = free.iter().copied();
    let mut next = || frames.next().unwrap();
    let mut plans = Vec::new();
    let mut objects = Plan::new();
    for _ in 0..2 {
        let _ = objects.push(Op::DomainObject {
            frame: next(),
            domain: child,
            spawner: Some(spawner),
        });
    }
    let _ = objects.push(Op::PageTable {
        frame: next(),
        owner: child,
        causer: spawner,
    });
    plans.push(objects);
    for page in 0..pages {
        let mut plan = Plan::one(Op::Anon {
            frame: next(),
            domain: child,
        });
        if page % 2 == 0 {
            let _ = plan.push(Op::PageTable {
                frame: next(),
                owner: child,
                causer: spawner,
            });
        }
        plans.push(plan);
    }
    for run in runs {
        plans.push(Plan::one(Op::ShareMany {
            frames: run,
            domain: child,
        }));
    }
    for (index, plan) in plans.iter().enumerate() {
        each(plan).map_err(|error| (index, error))?;
    }
    Ok(())
}

/// What the last spawn of a sequence did.
struct LastSpawn {
    /// Ok, or the plan that failed (`usize::MAX`: the finish) and its error.
    outcome: Result<(), (usize, Error)>,
    snapshot: String,
    /// The trace it wrote.
    trace: String,
    sets_before: Vec<ChargeSet>,
    sets_after: Vec<ChargeSet>,
    frames_before: Vec<FrameEntry>,
    frames_after: Vec<FrameEntry>,
}

/// Adds (or commits) `plan` to `batch` as the kernel does: a domain's objects and a page with
/// its tables without a plan (`batch_add_objects`, `batch_add_page`), anything else as the plan.
fn batch_step(
    ledger: &mut Ledger<'_>,
    batch: &mut accounting::Batch<'_>,
    plan: &Plan<'_>,
    commit: bool,
) -> Result<(), Error> {
    match *plan.ops() {
        [Op::DomainObject {
            frame: dcb,
            domain,
            spawner,
        }, Op::DomainObject { frame: caps, .. }, Op::PageTable { frame: root, .. }] => {
            if commit {
                ledger.batch_commit_objects(batch, [dcb, caps], root, domain, spawner)
            } else {
                ledger.batch_add_objects(batch, [dcb, caps], root, domain, spawner)
            }
        }
        [Op::Anon {
            frame: page,
            domain,
        }, ref tables @ ..] => {
            let mut causer = domain;
            let mut frames = Vec::new();
            for op in tables {
                let Op::PageTable {
                    frame, causer: by, ..
                } = *op
                else {
                    unreachable!("a page plan is a page and its tables")
                };
                causer = by;
                frames.push(frame);
            }
            if commit {
                ledger.batch_commit_page(batch, page, domain, causer, &frames)
            } else {
                ledger.batch_add_page(batch, page, domain, causer, &frames)
            }
        }
        _ if commit => ledger.batch_commit(batch, plan),
        _ => ledger.batch_add(batch, plan),
    }
}

/// What the last of `spawns` did after `events` and the spawns before it (each made as a
/// batch). The last is made as a batch (`batch`) or as its plans reserved and committed one
/// at a time.
fn last_spawn(policies: Policies, events: &[Event], spawns: &[Spawn], batch: bool) -> LastSpawn {
    let mut frames = vec![FrameEntry::FREE; FRAMES];
    let mut ledger = Ledger::new(&mut frames, policies);
    ledger.set_trace_hook(Some(record));
    let domains = build(&mut ledger);
    for event in events {
        let _ = apply(&mut ledger, &domains, event);
    }
    let mut outcome = Ok(());
    let (mut sets, mut before) = (Vec::new(), Vec::new());
    for (index, spawn) in spawns.iter().enumerate() {
        let last = index + 1 == spawns.len();
        if last {
            take_trace();
            sets = ledger.sets().to_vec();
            before = ledger.frames().to_vec();
        }
        let Some((free, runs, child)) = spawn_plans(&mut ledger, &domains, spawn, index) else {
            continue;
        };
        let spawner = domains[spawn.spawner];
        let result = if batch || !last {
            let mut need = accounting::BatchNeed::NEW;
            let mut plans = ledger.batch(&mut need);
            let added = for_each_spawn_plan(&free, &runs, child, spawner, spawn.pages, |plan| {
                batch_step(&mut ledger, &mut plans, plan, false)
            });
            added.and_then(|()| {
                for_each_spawn_plan(&free, &runs, child, spawner, spawn.pages, |plan| {
                    batch_step(&mut ledger, &mut plans, plan, true)
                })?;
                ledger
                    .batch_finish(plans)
                    .map_err(|error| (usize::MAX, error))
            })
        } else {
            for_each_spawn_plan(&free, &runs, child, spawner, spawn.pages, |plan| {
                ledger.reserve(plan)?.commit();
                Ok(())
            })
        };
        assert_eq!(ledger.audit(), Ok(()));
        if last {
            outcome = result;
        }
    }
    LastSpawn {
        outcome,
        snapshot: snapshot(&ledger, "after"),
        trace: take_trace(),
        sets_before: sets,
        sets_after: ledger.sets().to_vec(),
        frames_before: before,
        frames_after: ledger.frames().to_vec(),
    }
}

fn replay(policies: Policies, trace: &str) -> (Vec<String>, accounting::ReplayStats) {
    let mut frames = vec![FrameEntry::FREE; FRAMES];
    let mut scratch = vec![FrameIndex(0); FRAMES];
    let mut replayer = Replayer::new(&mut frames, &mut scratch, policies);
    let mut snapshots = Vec::new();
    let stats = replay_text(trace, &mut replayer, |ledger, snapshot| {
        assert_eq!(ledger.audit(), Ok(()));
        let mut json = String::new();
        ledger
            .write_snapshot_json(&mut json, &snapshot.header())
            .unwrap();
        snapshots.push(json);
    })
    .expect("replay");
    (snapshots, stats)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_policy_combination_keeps_the_books(events in proptest::collection::vec(event(), 1..80)) {
        for policies in policies::combinations() {
            let (snapshots, trace) = run(policies, &events);
            let (replayed, stats) = replay(policies, &trace);
            prop_assert_eq!(&replayed, &snapshots, "replay under {}", policies);
            prop_assert_eq!(stats.diverging, 0);
        }
    }

    /// The differential test of the ledger's fast paths: every random sequence, under every
    /// policy combination, run with the fast paths on and forced off gives the same outcome for
    /// every operation (denials included), the same snapshots and the same trace.
    #[test]
    fn fast_paths_decide_exactly_as_the_general_path(events in proptest::collection::vec(event(), 1..80)) {
        for policies in policies::combinations() {
            let (fast, fast_trace, fast_outcomes) = run_paths(policies, &events, false);
            let (general, general_trace, general_outcomes) = run_paths(policies, &events, true);
            prop_assert_eq!(&fast_outcomes, &general_outcomes, "outcomes under {}", policies);
            prop_assert_eq!(&fast, &general, "snapshots under {}", policies);
            prop_assert_eq!(&fast_trace, &general_trace, "trace under {}", policies);
        }
    }

    /// Batches (a spawn's plans reserved together, then committed): under every policy
    /// combination a batch is refused at the plan, and with the error and denial, that its
    /// plans reserved and committed one at a time would meet; a refused batch changes nothing
    /// but that denial's counters; an accepted one leaves the books and the trace exactly as
    /// the plans one at a time do.
    #[test]
    fn a_batch_decides_as_its_plans_one_at_a_time(
        events in proptest::collection::vec(event(), 0..40),
        spawns in proptest::collection::vec(spawn_event(), 1..4),
    ) {
        for policies in policies::combinations() {
            for count in 1..=spawns.len() {
                let batch = last_spawn(policies, &events, &spawns[..count], true);
                let one_by_one = last_spawn(policies, &events, &spawns[..count], false);
                prop_assert_eq!(&batch.outcome, &one_by_one.outcome, "outcome under {}", policies);
                if batch.outcome.is_ok() {
                    prop_assert_eq!(&batch.snapshot, &one_by_one.snapshot, "books under {}", policies);
                    prop_assert_eq!(&batch.trace, &one_by_one.trace, "trace under {}", policies);
                } else {
                    // Nothing but the denial's counters moved, and they moved as one at a time.
                    prop_assert_eq!(&batch.frames_after, &batch.frames_before, "frames under {}", policies);
                    for ((after, before), sequential) in batch
                        .sets_after
                        .iter()
                        .zip(&batch.sets_before)
                        .zip(&one_by_one.sets_after)
                    {
                        prop_assert_eq!(after.denied, sequential.denied, "denials under {}", policies);
                        prop_assert_eq!(after.limit_hits, sequential.limit_hits);
                        let mut after = after.clone();
                        after.denied = before.denied;
                        after.limit_hits = before.limit_hits;
                        prop_assert_eq!(&after, before, "a refused batch changed {}", before.name);
                    }
                }
            }
        }
    }

    #[test]
    fn counterfactual_replays_keep_the_books(events in proptest::collection::vec(event(), 1..80)) {
        let (snapshots, trace) = run(policies::defaults(), &events);
        for policies in policies::combinations() {
            let (replayed, _) = replay(policies, &trace);
            prop_assert_eq!(replayed.len(), snapshots.len());
        }
    }
}

#[test]
fn registry_policies_drive_the_ledger() {
    // One concrete run per cow policy, with the real registry entries.
    for (cow, writer_pays) in [("writer", true), ("holder", false), ("split", true)] {
        let chosen = policies::with_overrides(&[("cow", cow)]).unwrap();
        let mut frames = vec![FrameEntry::FREE; 8];
        let mut ledger = Ledger::new(&mut frames, chosen);
        let [a1, _, b1, _] = build(&mut ledger);
        ledger.new_anon(FrameIndex(2), a1).unwrap();
        ledger.share(FrameIndex(2), b1).unwrap();
        ledger.cow_copy(FrameIndex(2), FrameIndex(3), b1).unwrap();
        let b = ledger.set_by_name("b").unwrap();
        let a = ledger.set_by_name("a").unwrap();
        let payer = if writer_pays { b } else { a };
        assert_eq!(
            ledger.set(payer).unwrap().current_of(Kind::Cow),
            FRAME_BYTES,
            "{cow}"
        );
        assert_eq!(ledger.audit(), Ok(()));
    }
}

#[test]
fn a_keepers_answer_decides_the_payer_of_a_copy_and_of_a_buffer() {
    use accounting::KeeperChoice;
    let chosen = policies::with_overrides(&[("cow", "keeper"), ("msgbuf", "keeper")]).unwrap();
    let mut frames = vec![FrameEntry::FREE; 16];
    let mut ledger = Ledger::new(&mut frames, chosen);
    let [a1, _, b1, c1] = build(&mut ledger);
    let (a, b, d) = ["a", "b", "d"]
        .map(|name| ledger.set_by_name(name).unwrap())
        .into();
    // The keeper named d: d pays for b1's copy, and the choice is counted.
    ledger.new_anon(FrameIndex(2), a1).unwrap();
    ledger.share(FrameIndex(2), b1).unwrap();
    ledger
        .set_keeper_choice(b1, Kind::Cow, KeeperChoice::Answered(d))
        .unwrap();
    ledger.cow_copy(FrameIndex(2), FrameIndex(3), b1).unwrap();
    ledger.clear_keeper_choice(b1).unwrap();
    assert_eq!(ledger.set(d).unwrap().current_of(Kind::Cow), FRAME_BYTES);
    assert_eq!(ledger.set(b).unwrap().current_of(Kind::Cow), 0);
    // A timeout: the fallback, the writer.
    ledger.share(FrameIndex(2), c1).unwrap();
    ledger
        .set_keeper_choice(c1, Kind::Cow, KeeperChoice::Timeout)
        .unwrap();
    ledger.cow_copy(FrameIndex(2), FrameIndex(4), c1).unwrap();
    assert_eq!(
        ledger.set(d).unwrap().current_of(Kind::Cow),
        2 * FRAME_BYTES
    );
    let record = &ledger.domains()[c1.index()];
    assert_eq!(
        (
            record.keeper_choices.timeout,
            record.keeper_choices.answered
        ),
        (1, 0)
    );
    // A named set over its limit: the copy is denied there, and nothing changes.
    ledger.set_limit(a, Some(FRAME_BYTES)).unwrap();
    ledger.share(FrameIndex(4), a1).unwrap();
    ledger
        .set_keeper_choice(a1, Kind::Cow, KeeperChoice::Answered(a))
        .unwrap();
    let before = ledger.frames().to_vec();
    assert!(ledger.cow_copy(FrameIndex(4), FrameIndex(5), a1).is_err());
    assert_eq!(ledger.frames(), &before[..]);
    // A buffer: the sender's keeper named b.
    ledger
        .set_keeper_choice(c1, Kind::Msgbuf, KeeperChoice::Answered(b))
        .unwrap();
    ledger.new_msgbuf(FrameIndex(6), c1, a1).unwrap();
    assert_eq!(ledger.set(b).unwrap().current_of(Kind::Msgbuf), FRAME_BYTES);
    // Unknown sets are refused as answers.
    assert!(ledger
        .set_keeper_choice(c1, Kind::Msgbuf, KeeperChoice::Answered(SetId(40)))
        .is_err());
    assert_eq!(ledger.audit(), Ok(()));
}

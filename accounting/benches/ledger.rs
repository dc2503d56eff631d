//! Host benchmark of the ledger's hot paths: nanoseconds per reserve + commit of a new anon
//! frame and per uncharge (its last unmap) at charge-set tree depths 1, 4 and 8; then, at
//! depth 1 under `cow = writer` and `cow = split`, the copy-on-write paths a spawn and its
//! faults take: sharing one frame (`Op::Share`), sharing a 4 MiB region in one
//! `Op::ShareMany` of 1024 frames, a copy-on-write copy (`Op::CowCopy`), a sharer unmapping a
//! shared frame, the payer unmapping one (`release = migrate` moves the charge) and freeing a
//! kernel-object frame; plus bytes of accounting metadata per frame. `cargo bench -p
//! accounting`; with `TALLY_BENCH_JSON=path` the figures are also written there as JSON.
//!
//! Invariant: the measured loops allocate nothing (the ledger cannot) and every set on the
//! path has a limit, so every level's limit check runs.

use accounting::{
    Decision, DomainId, FrameEntry, FrameIndex, Kind, Ledger, Op, Plan, Policies, Policy,
    PolicyKey, SetId, FRAME_BYTES,
};
use std::hint::black_box;
use std::time::Instant;

struct Fixed(PolicyKey, Decision);

impl Policy for Fixed {
    fn key(&self) -> PolicyKey {
        self.0
    }
    fn name(&self) -> &'static str {
        self.1.name()
    }
    fn decide(&self, _event: &accounting::ChargeEvent) -> Decision {
        self.1
    }
}

static COW: Fixed = Fixed(PolicyKey::Cow, Decision::Writer);
static COW_SPLIT: Fixed = Fixed(PolicyKey::Cow, Decision::Split);
static MSGBUF: Fixed = Fixed(PolicyKey::Msgbuf, Decision::Sender);
static PAGETABLE: Fixed = Fixed(PolicyKey::PageTable, Decision::Owner);
static RELEASE: Fixed = Fixed(PolicyKey::Release, Decision::Migrate);
static KERNEL_POLICY: Fixed = Fixed(PolicyKey::Kernel, Decision::Owner);
static MOVE_POLICY: Fixed = Fixed(PolicyKey::Move, Decision::Stay);

const FRAMES: usize = 1 << 14;
const ROUNDS: usize = 40;

struct Figures {
    depth: usize,
    reserve_commit_ns: f64,
    uncharge_ns: f64,
}

fn measure(depth: usize) -> Figures {
    let mut frames = vec![FrameEntry::FREE; FRAMES];
    let policies = Policies {
        cow: &COW,
        msgbuf: &MSGBUF,
        pagetable: &PAGETABLE,
        release: &RELEASE,
        kernel: &KERNEL_POLICY,
        moves: &MOVE_POLICY,
    };
    let mut ledger = Ledger::new(&mut frames, policies);
    let mut parent: Option<SetId> = None;
    for level in 0..depth {
        let limit = (FRAMES as u64 + 16) * FRAME_BYTES;
        parent = Some(
            ledger
                .create_set(&format!("level{level}"), parent, Some(limit))
                .unwrap(),
        );
    }
    let set = parent.unwrap();
    ledger
        .set_kind_limit(set, Kind::Anon, Some(FRAMES as u64 * FRAME_BYTES))
        .unwrap();
    let domain: DomainId = ledger.create_domain("bench", set).unwrap();
    let mut best_charge = f64::MAX;
    let mut best_uncharge = f64::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for index in 0..FRAMES as u32 {
            apply::<ANON>(
                &mut ledger,
                &Plan::one(Op::Anon {
                    frame: black_box(FrameIndex(index)),
                    domain: black_box(domain),
                }),
            );
        }
        let charge = start.elapsed().as_nanos() as f64 / FRAMES as f64;
        assert!(ledger.conservation().ok);
        let start = Instant::now();
        for index in 0..FRAMES as u32 {
            unmap::<PRIVATE>(&mut ledger, FrameIndex(index), domain);
        }
        let uncharge = start.elapsed().as_nanos() as f64 / FRAMES as f64;
        assert_eq!(ledger.frames_in_use(), 0);
        best_charge = best_charge.min(charge);
        best_uncharge = best_uncharge.min(uncharge);
    }
    assert_eq!(ledger.audit(), Ok(()));
    Figures {
        depth,
        reserve_commit_ns: best_charge,
        uncharge_ns: best_uncharge,
    }
}

/// Frames in the shared region of the copy-on-write benchmarks (4 MiB).
const REGION: usize = 1024;

// The measured operations are functions of their own, never inlined (one per operation, by
// `OP`), as a kernel calls the ledger, and so that a profiler (`valgrind --tool=callgrind`)
// counts instructions per call.
const ANON: u8 = 4;
const PRIVATE: u8 = 2;
const SHARE: u8 = 0;
const SHARE_MANY: u8 = 1;
const COW_COPY: u8 = 2;
const KERNEL: u8 = 3;
const SHARER_LEAVES: u8 = 0;
const PAYER_LEAVES: u8 = 1;

/// Reserves and commits `plan`.
#[inline(never)]
fn apply<const OP: u8>(ledger: &mut Ledger<'_>, plan: &Plan<'_>) {
    match ledger.reserve(black_box(plan)) {
        Ok(reservation) => reservation.commit(),
        Err(error) => panic!("{error}"),
    }
}

#[inline(never)]
fn unmap<const WHO: u8>(ledger: &mut Ledger<'_>, frame: FrameIndex, domain: DomainId) {
    black_box(ledger.unmap(black_box(frame), black_box(domain))).unwrap();
}

#[inline(never)]
fn free(ledger: &mut Ledger<'_>, frame: FrameIndex) {
    ledger.free(black_box(frame)).unwrap();
}

/// One measured copy-on-write operation.
struct Operation {
    name: &'static str,
    cow: &'static str,
    /// Nanoseconds per operation.
    ns: f64,
    /// Frames per operation (1024 for `share_many`).
    frames: usize,
}

/// A ledger at depth 1 with two limited root sets, `parent` (domain `p`) and `child`
/// (domain `c`), `p` mapping frames `0..REGION`; copies go to `REGION..2 * REGION`.
fn cow_paths(cow: &'static Fixed) -> Vec<Operation> {
    let mut frames = vec![FrameEntry::FREE; 3 * REGION];
    let policies = Policies {
        cow,
        msgbuf: &MSGBUF,
        pagetable: &PAGETABLE,
        release: &RELEASE,
        kernel: &KERNEL_POLICY,
        moves: &MOVE_POLICY,
    };
    let mut ledger = Ledger::new(&mut frames, policies);
    let limit = Some(4 * REGION as u64 * FRAME_BYTES);
    let parent_set = ledger.create_set("parent", None, limit).unwrap();
    let child_set = ledger.create_set("child", None, limit).unwrap();
    let p = ledger.create_domain("p", parent_set).unwrap();
    let c = ledger.create_domain("c", child_set).unwrap();
    let region: Vec<FrameIndex> = (0..REGION as u32).map(FrameIndex).collect();
    let copies: Vec<FrameIndex> = (REGION as u32..2 * REGION as u32).map(FrameIndex).collect();
    let kernel: Vec<FrameIndex> = (2 * REGION as u32..3 * REGION as u32)
        .map(FrameIndex)
        .collect();
    for frame in &region {
        ledger.new_anon(*frame, p).unwrap();
    }
    let per_op = |start: Instant, ops: usize| start.elapsed().as_nanos() as f64 / ops as f64;
    let mut best = [f64::MAX; 7];
    for _ in 0..ROUNDS {
        // Share one frame at a time, then the child unmaps each (a sharer leaves).
        let start = Instant::now();
        for frame in &region {
            apply::<SHARE>(
                &mut ledger,
                &Plan::one(Op::Share {
                    frame: black_box(*frame),
                    domain: black_box(c),
                }),
            );
        }
        best[0] = best[0].min(per_op(start, REGION));
        let start = Instant::now();
        for frame in &region {
            unmap::<SHARER_LEAVES>(&mut ledger, *frame, c);
        }
        best[1] = best[1].min(per_op(start, REGION));
        // Share the region in one plan.
        let start = Instant::now();
        apply::<SHARE_MANY>(
            &mut ledger,
            &Plan::one(Op::ShareMany {
                frames: black_box(&region),
                domain: black_box(c),
            }),
        );
        best[2] = best[2].min(per_op(start, 1));
        // The child writes to every frame: a private copy each.
        let start = Instant::now();
        for (original, copy) in region.iter().zip(&copies) {
            apply::<COW_COPY>(
                &mut ledger,
                &Plan::one(Op::CowCopy {
                    original: black_box(*original),
                    copy: black_box(*copy),
                    writer: black_box(c),
                }),
            );
        }
        best[3] = best[3].min(per_op(start, REGION));
        for copy in &copies {
            ledger.unmap(*copy, c).unwrap();
        }
        // Shared again; now the payer leaves every frame (the charge migrates to the child).
        ledger.share_many(&region, c).unwrap();
        let start = Instant::now();
        for frame in &region {
            unmap::<PAYER_LEAVES>(&mut ledger, *frame, p);
        }
        best[4] = best[4].min(per_op(start, REGION));
        for frame in &region {
            ledger.unmap(*frame, c).unwrap();
            ledger.new_anon(*frame, p).unwrap();
        }
        // Kernel objects: charged, then freed.
        let start = Instant::now();
        for frame in &kernel {
            apply::<KERNEL>(
                &mut ledger,
                &Plan::one(Op::Kernel {
                    frame: black_box(*frame),
                    set: black_box(parent_set),
                    causer: black_box(Some(p)),
                }),
            );
        }
        best[5] = best[5].min(per_op(start, REGION));
        let start = Instant::now();
        for frame in &kernel {
            free(&mut ledger, *frame);
        }
        best[6] = best[6].min(per_op(start, REGION));
        assert!(ledger.conservation().ok);
    }
    assert_eq!(ledger.audit(), Ok(()));
    assert_eq!(ledger.sharer_lists_in_use(), 0);
    let row = |name, ns, frames| Operation {
        name,
        cow: cow.1.name(),
        ns,
        frames,
    };
    vec![
        row("share", best[0], 1),
        row("share_many_1024", best[2], REGION),
        row("cow_copy", best[3], 1),
        row("unmap_shared_sharer", best[1], 1),
        row("unmap_shared_payer", best[4], 1),
        row("kernel_object", best[5], 1),
        row("free", best[6], 1),
    ]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: run once.
    let entry_bytes = std::mem::size_of::<FrameEntry>();
    let ledger_bytes = std::mem::size_of::<Ledger<'static>>();
    let figures: Vec<Figures> = [1, 4, 8].into_iter().map(measure).collect();
    println!("tally ledger benchmark ({FRAMES} frames, best of {ROUNDS} rounds)");
    println!();
    println!("| set-tree depth | reserve + commit (ns) | uncharge (ns) |");
    println!("|---:|---:|---:|");
    for figure in &figures {
        println!(
            "| {} | {:.1} | {:.1} |",
            figure.depth, figure.reserve_commit_ns, figure.uncharge_ns
        );
    }
    let operations: Vec<Operation> = [&COW, &COW_SPLIT].into_iter().flat_map(cow_paths).collect();
    println!();
    println!("copy-on-write paths, depth 1, {REGION}-frame region, release = migrate:");
    println!();
    println!("| operation | cow | ns per op | ns per frame |");
    println!("|---|---|---:|---:|");
    for operation in &operations {
        println!(
            "| {} | {} | {:.1} | {:.2} |",
            operation.name,
            operation.cow,
            operation.ns,
            operation.ns / operation.frames as f64
        );
    }
    println!();
    println!("metadata per frame: {entry_bytes} bytes (FrameEntry)");
    println!(
        "fixed tables: {ledger_bytes} bytes per ledger ({:.2} bytes per frame at 1 GiB of RAM)",
        ledger_bytes as f64 / (1u64 << 18) as f64
    );
    if let Ok(path) = std::env::var("TALLY_BENCH_JSON") {
        let rows: Vec<String> = figures
            .iter()
            .map(|figure| {
                format!(
                    "{{\"depth\":{},\"reserve_commit_ns\":{:.1},\"uncharge_ns\":{:.1}}}",
                    figure.depth, figure.reserve_commit_ns, figure.uncharge_ns
                )
            })
            .collect();
        let operation_rows: Vec<String> = operations
            .iter()
            .map(|operation| {
                format!(
                    "{{\"name\":\"{}\",\"cow\":\"{}\",\"ns\":{:.1},\"frames\":{}}}",
                    operation.name, operation.cow, operation.ns, operation.frames
                )
            })
            .collect();
        let json = format!(
            "{{\"benchmark\":\"accounting-ledger\",\"frames\":{FRAMES},\"metadata_bytes_per_frame\":{entry_bytes},\"ledger_table_bytes\":{ledger_bytes},\"depths\":[{}],\"operations\":[{}]}}\n",
            rows.join(","),
            operation_rows.join(",")
        );
        std::fs::write(&path, json).expect("write TALLY_BENCH_JSON");
        println!("wrote {path}");
    }
}

//! Host benchmark of the ledger's hot paths: nanoseconds per reserve + commit of a new anon
//! frame and per uncharge (its last unmap) at charge-set tree depths 1, 4 and 8, plus bytes of
//! accounting metadata per frame. `cargo bench -p accounting`; with `TALLY_BENCH_JSON=path`
//! the figures are also written there as JSON.
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
static MSGBUF: Fixed = Fixed(PolicyKey::Msgbuf, Decision::Sender);
static PAGETABLE: Fixed = Fixed(PolicyKey::PageTable, Decision::Owner);
static RELEASE: Fixed = Fixed(PolicyKey::Release, Decision::Migrate);

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
            let plan = Plan::one(Op::Anon {
                frame: black_box(FrameIndex(index)),
                domain: black_box(domain),
            });
            match ledger.reserve(black_box(&plan)) {
                Ok(reservation) => reservation.commit(),
                Err(error) => panic!("{error}"),
            }
        }
        let charge = start.elapsed().as_nanos() as f64 / FRAMES as f64;
        assert!(ledger.conservation().ok);
        let start = Instant::now();
        for index in 0..FRAMES as u32 {
            black_box(ledger.unmap(black_box(FrameIndex(index)), black_box(domain))).unwrap();
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
        let json = format!(
            "{{\"benchmark\":\"accounting-ledger\",\"frames\":{FRAMES},\"metadata_bytes_per_frame\":{entry_bytes},\"ledger_table_bytes\":{ledger_bytes},\"depths\":[{}]}}\n",
            rows.join(",")
        );
        std::fs::write(&path, json).expect("write TALLY_BENCH_JSON");
        println!("wrote {path}");
    }
}

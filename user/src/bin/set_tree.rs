//! Limits at run time: builds a tree of charge sets with `set_create` (a limit and per-kind
//! sub-limits) under the set behind capability 0, changes a sub-limit with `set_limit`, and
//! runs `hog` in the tree three times, so that each is stopped by a different limit: an
//! ancestor's limit, its own set's sub-limit, and a sub-limit set at run time on its parent.
#![no_std]
#![no_main]

use abi::{Kind, KindLimits, NO_LIMIT};
use user::{check, println, set_create, set_create_limited, set_kind_limit, set_query, snapshot};
use user::{spawn, wait, Waited};

user::program! {
    description: "Under the set behind capability 0 (the `root`), creates `team` (limit `team_kib` KiB, above the root's) and `job` under it (no limit), and runs `hog` as `worker` in `job`: the root's limit stops it. Then creates `batch` under the root with an anon sub-limit of `batch_anon_kib` KiB and runs `hog` as `batcher` there: its own sub-limit stops it. Then sets `team`'s anon sub-limit to `team_anon_kib` KiB with `set_limit` and runs `hog` as `late` in `job`: its parent's sub-limit stops it. Checks that `set_query` reads each sub-limit back. Snapshot `stopped` after all three.",
    caps: { 0: set => "the root of the tree: a set with a limit, which the sets created here are under" },
    args: {
        team_kib: 1024 => "limit of `team`, in KiB",
        batch_anon_kib: 64 => "anon sub-limit of `batch`, in KiB",
        team_anon_kib: 32 => "anon sub-limit given to `team` at run time, in KiB",
    },
    snapshots: { "stopped" => "after the three hogs ended" },
    spawns: {
        "hog" as "worker" => "in `job`: stopped by the root's limit",
        "hog" as "batcher" => "in `batch`: stopped by its own anon sub-limit",
        "hog" as "late" => "in `job`: stopped by the anon sub-limit set on `team` at run time",
    },
    exit: "0; 1 when a set could not be created or a hog could not be spawned (the console says why)",
}

/// Runs `hog` as `name` in the set behind `set_cap` and says how it ended.
fn run_hog(name: &str, set_cap: usize) -> bool {
    let ended = spawn("hog", name, set_cap, &[]).and_then(wait);
    match ended {
        Ok(Waited::Stopped) => println!("set_tree: {} was stopped", name),
        Ok(Waited::Exited(code)) => println!("set_tree: {} exited with {}", name, code),
        Err(error) => {
            println!("set_tree: {} could not run: {}", name, error.name());
            return false;
        }
    }
    true
}

/// The sub-limit of `kind` that `set_query` reads back for the set behind `set_cap`.
fn kind_limit(set_cap: usize, kind: Kind) -> u64 {
    set_query(set_cap).map_or(0, |usage| usage.kind_limit_bytes[kind as usize])
}

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let kib = |value: u64| (value as usize).saturating_mul(1024);
    let Ok(team) = set_create(0, "team", kib(args.team_kib)) else {
        println!("set_tree: team refused");
        return 1;
    };
    let Ok(job) = set_create(team, "job", NO_LIMIT) else {
        println!("set_tree: job refused");
        return 1;
    };
    if !run_hog("worker", job) {
        return 1;
    }
    let mut limits = KindLimits::default();
    limits.bytes[Kind::Anon as usize] = kib(args.batch_anon_kib) as u64;
    let Ok(batch) = set_create_limited(0, "batch", NO_LIMIT, &limits) else {
        println!("set_tree: batch refused");
        return 1;
    };
    check!(
        kind_limit(batch, Kind::Anon) == kib(args.batch_anon_kib) as u64,
        "set_query reads batch's anon sub-limit back"
    );
    check!(
        kind_limit(batch, Kind::Cow) == NO_LIMIT as u64,
        "batch has no cow sub-limit"
    );
    if !run_hog("batcher", batch) {
        return 1;
    }
    check!(
        set_kind_limit(team, Kind::Anon, kib(args.team_anon_kib)).is_ok(),
        "set_limit of team's anon sub-limit"
    );
    check!(
        kind_limit(team, Kind::Anon) == kib(args.team_anon_kib) as u64,
        "set_query reads team's anon sub-limit back"
    );
    if !run_hog("late", job) {
        return 1;
    }
    check!(snapshot("stopped").is_ok(), "snapshot");
    0
}

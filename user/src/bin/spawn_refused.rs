//! spawn-refused: spawns `tries` (default 70) domains running `hello` into the charge set behind
//! capability 0 (in the scenario too small for their kernel objects, so each is refused
//! over-limit), then one into the set behind capability 1 (in the scenario one with room). A
//! refused spawn leaves no domain record behind, so more refusals than the ledger's 64 domain
//! records do not use them up. It counts what happened and exits with the number refused.
//! Snapshot: `after`.
#![no_std]
#![no_main]

use user::{check, is_refusal, println, snapshot, spawn, wait};

user::program! {
    description: "Spawns `tries` domains running `hello` into the set behind capability 0, one after another (each one that starts is waited for), then one more into the set behind capability 1, and counts which spawns were refused (a limit, a full domain table); takes snapshot `after` and exits with the number of the `tries` spawns refused.",
    caps: {
        0: set => "the set the `tries` spawns go into",
        1: set => "the set the last spawn goes into",
    },
    args: { tries: 70 => "spawns into the first set" },
    snapshots: { "after" => "after every spawn, each started child ended" },
    spawns: {
        "hello" as "tiny" => "each of the `tries` spawns, when it starts",
        "hello" as "roomy" => "the last spawn, when it starts",
    },
    exit: "the number of the `tries` spawns refused (the last spawn's fate is on the console and in the report's domains)",
}

/// Spawns `hello` as `name` into the set behind `set_cap` and waits for it; whether it started.
fn spawn_one(name: &str, set_cap: usize) -> bool {
    match spawn("hello", name, set_cap, &[]) {
        Ok(child) => {
            let _ = wait(child);
            true
        }
        Err(error) => {
            check!(is_refusal(error), "spawn {}: {}", name, error.name());
            false
        }
    }
}

#[no_mangle]
fn main() -> i32 {
    let tries = Args::get().tries;
    let mut refused = 0;
    for _ in 0..tries {
        if !spawn_one("tiny", 0) {
            refused += 1;
        }
    }
    let last = spawn_one("roomy", 1);
    check!(snapshot("after").is_ok(), "snapshot");
    println!(
        "spawn_refused: {} of {} refused, then the last {}",
        refused,
        tries,
        if last { "started" } else { "was refused" }
    );
    refused
}

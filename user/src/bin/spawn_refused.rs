//! spawn-refused: spawns `tries` (default 70) domains into a charge set too small for their
//! kernel objects (capability 0), each refused over-limit, then one into a set with room
//! (capability 1), which must start and exit. A refused spawn leaves no domain record behind, so
//! more refusals than the ledger's 64 domain records do not use them up. Snapshot: `after`.
#![no_std]
#![no_main]

use user::{arg_or, check, println, snapshot, spawn, wait, Error, Waited};

#[no_mangle]
fn main() -> i32 {
    let tries = arg_or("tries", 70);
    let mut refused = 0;
    for _ in 0..tries {
        match spawn("hello", "tiny", 0, &[]) {
            Err(Error::OverLimit) => refused += 1,
            other => check!(false, "spawn into the tiny set: {:?}", other),
        }
    }
    let child = spawn("hello", "roomy", 1, &[]);
    check!(
        child.is_ok(),
        "spawn into the roomy set after {} refusals: {:?}",
        refused,
        child
    );
    if let Ok(child) = child {
        check!(wait(child) == Ok(Waited::Exited(0)), "child ended badly");
    }
    check!(snapshot("after").is_ok(), "snapshot");
    println!("spawn_refused: {} refused, then one started", refused);
    0
}

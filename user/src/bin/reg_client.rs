//! ipc-registers, client: `rounds` (default 1000) register-sized calls (four words each way) on endpoint
//! capability 0; the server answers each word plus one. A call with a zero first word ends it:
//! the server exits without answering, so that call must fail with peer-gone.
#![no_std]
#![no_main]

use user::{call_registers, check, println, snapshot, Error};

user::program! {
    description: "Makes `rounds` register-sized calls on capability 0 (four words each way, nothing in memory, nothing charged), checking `reg_server` answered each word plus one; then a call with a zero first word, which ends the server without an answer and must fail with peer-gone. Takes snapshot `done`. Register calls charge nothing, so no limit or policy changes the outcome its checks guard.",
    caps: { 0: ep => "the endpoint `reg_server` serves" },
    args: { rounds: 1000 => "register round trips before the last call" },
    snapshots: { "done" => "after the last call" },
    exit: "0",
}

#[no_mangle]
fn main() -> i32 {
    let rounds = Args::get().rounds;
    for round in 1..=rounds {
        let words = [round, round << 8, round << 16, !round];
        let reply = call_registers(0, words);
        check!(reply.is_ok(), "call {} failed: {:?}", round, reply);
        let reply = reply.unwrap_or_default();
        for (sent, got) in words.iter().zip(reply) {
            check!(
                got == sent.wrapping_add(1),
                "round {}: sent {:#x}, got {:#x}",
                round,
                sent,
                got
            );
        }
    }
    let last = call_registers(0, [0; 4]);
    check!(
        last == Err(Error::PeerGone),
        "the server left; the last call gave {:?}",
        last
    );
    check!(snapshot("done").is_ok(), "snapshot");
    println!("client: {} register round trips verified", rounds);
    0
}

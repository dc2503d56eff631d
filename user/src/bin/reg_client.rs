//! ipc-registers, client: 1000 register-sized calls (four words each way) on endpoint
//! capability 0; the server answers each word plus one. A call with a zero first word ends it:
//! the server exits without answering, so that call must fail with peer-gone.
#![no_std]
#![no_main]

use user::{call_registers, check, println, snapshot, Error};

const ROUNDS: u64 = 1000;

#[no_mangle]
fn main() -> i32 {
    for round in 1..=ROUNDS {
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
    println!("client: {} register round trips verified", ROUNDS);
    0
}

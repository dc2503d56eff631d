//! Benchmark (bench/ipc-registers.toml), client side: instructions per register-sized
//! `call_registers` + `reply_recv_registers` round trip (four words each way, two address
//! spaces), 1000 round trips after 16 for warm-up, averaged: the whole path, both domains'
//! EL0 loops and both system calls. A call with a zero first word ends the server.
#![no_std]
#![no_main]

use user::{call_registers, check, instructions, print_bench};

user::program! {
    description: "Benchmark (bench/ipc-registers.toml): instructions per register-sized `call_registers` + `reply_recv_registers` round trip, 1000 after 16 for warm-up; a zero first word ends the server.",
    caps: { 0: ep => "the endpoint `bench_reg_server` serves" },
    exit: "0",
}

const WARMUP: u64 = 16;
const ROUNDS: u64 = 1000;

#[inline(never)]
fn round_trips(rounds: u64) -> u64 {
    let start = instructions();
    for round in 1..=rounds {
        let reply = call_registers(0, [round, 2, 3, 4]);
        check!(reply.is_ok(), "call failed");
    }
    instructions() - start
}

#[no_mangle]
fn main() -> i32 {
    round_trips(WARMUP);
    let taken = round_trips(ROUNDS);
    print_bench("ipc_roundtrip_registers", taken as i64, ROUNDS as i64);
    let _ = call_registers(0, [0; 4]);
    0
}

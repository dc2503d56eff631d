//! Benchmark (bench/ipc.toml), client side: instructions per `call` + `reply_recv` round trip
//! between two address spaces (this domain and `bench_ipc_server`), with 0-byte and 64-byte
//! messages under direct transfer: 1000 round trips each after 16 for warm-up, averaged. The
//! figure is the whole path: both domains' EL0 loops and both system calls. Capability 0 is
//! the endpoint; a 1-byte call ends the server.
#![no_std]
#![no_main]

use user::{call_endpoint, check, data_message, instructions, print_bench, receive_into, Message};

user::program! {
    description: "Benchmark (bench/ipc.toml): instructions per `call` + `reply_recv` round trip with 0-byte and 64-byte messages under direct transfer, 1000 round trips each after 16 for warm-up; a 1-byte call ends the server.",
    caps: { 0: ep => "the endpoint `bench_ipc_server` serves" },
    exit: "0",
}

const WARMUP: usize = 16;
const ROUNDS: usize = 1000;

/// Instructions taken by `rounds` calls of `message`, the replies landing in `answer`.
#[inline(never)]
fn round_trips(message: &Message, answer: &mut [u8; 64], rounds: usize) -> i64 {
    let mut receive = receive_into(answer);
    let start = instructions();
    for _ in 0..rounds {
        check!(
            call_endpoint(0, message, &mut receive).is_ok(),
            "call failed"
        );
    }
    let taken = (instructions() - start) as i64;
    check!(
        receive.data_length == message.data_length,
        "reply of {} bytes to {}",
        receive.data_length,
        message.data_length
    );
    taken
}

#[no_mangle]
fn main() -> i32 {
    let mut request = [0u8; 64];
    for (i, byte) in request.iter_mut().enumerate() {
        *byte = i as u8 ^ 0x5a;
    }
    let mut answer = [0u8; 64];
    let empty = data_message(&request[..0]);
    let full = data_message(&request);

    round_trips(&empty, &mut answer, WARMUP);
    let zero = round_trips(&empty, &mut answer, ROUNDS);
    round_trips(&full, &mut answer, WARMUP);
    let sixty_four = round_trips(&full, &mut answer, ROUNDS);
    check!(answer == request, "the server's echo differs");

    let mut receive = receive_into(&mut answer);
    check!(
        call_endpoint(0, &data_message(&request[..1]), &mut receive).is_ok(),
        "final call"
    );
    print_bench("ipc_roundtrip_0", zero, ROUNDS as i64);
    print_bench("ipc_roundtrip_64", sixty_four, ROUNDS as i64);
    0
}

//! Benchmark (bench/twostage.toml, `transfer = "two-stage"`): instructions per `send` of a
//! 4 KiB message (copied into a kernel buffer frame, charged by the `msgbuf` policy, queued)
//! and per `recv` of it (copied out, buffer freed), page-aligned buffers, 64 times after 4 for
//! warm-up. One domain sends to and receives from its own endpoint (capability 0), so no
//! scheduling is measured, only the two copies and their bookkeeping.
#![no_std]
#![no_main]

use user::{check, instructions, map, print_bench, recv, send, Message, Receive, MAP_WRITE};

user::program! {
    description: "Benchmark (bench/twostage.toml, two-stage transfer): instructions per `send` and per `recv` of a 4 KiB message to and from its own endpoint, 64 times after 4 for warm-up.",
    caps: { 0: ep => "its own endpoint" },
    exit: "0",
}

const BUFFERS: usize = 0x2000_0000;
const PAGE: usize = 4096;
const WARMUP: usize = 4;
const ROUNDS: usize = 64;

/// Instructions in `send` and in `recv` over `rounds` messages.
#[inline(never)]
fn rounds(message: &Message, receive: &mut Receive, rounds: usize) -> (i64, i64) {
    let (mut sending, mut receiving) = (0, 0);
    for _ in 0..rounds {
        let start = instructions();
        let sent = send(0, message);
        let middle = instructions();
        let received = recv(0, receive);
        let end = instructions();
        check!(
            sent.is_ok() && received.is_ok(),
            "{:?} {:?}",
            sent,
            received
        );
        sending += (middle - start) as i64;
        receiving += (end - middle) as i64;
    }
    (sending, receiving)
}

#[no_mangle]
fn main() -> i32 {
    check!(map(BUFFERS, 2, MAP_WRITE).is_ok(), "map");
    for offset in (0..2 * PAGE).step_by(8) {
        // SAFETY: just mapped writable.
        unsafe { ((BUFFERS + offset) as *mut u64).write_volatile(offset as u64) };
    }
    let message = Message {
        data_address: BUFFERS,
        data_length: PAGE,
        ..Message::default()
    };
    let mut receive = Receive {
        buffer_address: BUFFERS + PAGE,
        buffer_capacity: PAGE,
        ..Receive::default()
    };
    rounds(&message, &mut receive, WARMUP);
    let (sending, receiving) = rounds(&message, &mut receive, ROUNDS);
    check!(
        receive.data_length == PAGE,
        "received {}",
        receive.data_length
    );
    for offset in (0..PAGE).step_by(8) {
        // SAFETY: mapped above; the received copy must equal the sent bytes.
        let value = unsafe { ((BUFFERS + PAGE + offset) as *const u64).read_volatile() };
        check!(value == offset as u64, "byte {} differs", offset);
    }
    print_bench("twostage_send_4k", sending, ROUNDS as i64);
    print_bench("twostage_recv_4k", receiving, ROUNDS as i64);
    print_bench("twostage_4k", sending + receiving, ROUNDS as i64);
    0
}

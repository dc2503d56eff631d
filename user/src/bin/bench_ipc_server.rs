//! Benchmark (bench/ipc.toml), server side: echoes every request with `reply_recv` (same
//! bytes, same length) on endpoint capability 0; a 1-byte request is answered with `reply`
//! and ends it.
#![no_std]
#![no_main]

use user::{check, data_message, receive_into, recv, reply, reply_recv};

user::program! {
    description: "Benchmark (bench/ipc.toml): echoes every request on capability 0 with `reply_recv`; a 1-byte request is answered with `reply` and ends it.",
    caps: { 0: ep => "the endpoint it serves" },
    exit: "0",
}

#[no_mangle]
fn main() -> i32 {
    let mut buffer = [0u8; 64];
    let mut receive = receive_into(&mut buffer);
    check!(recv(0, &mut receive).is_ok(), "first recv");
    loop {
        let length = receive.data_length;
        if length == 1 {
            check!(reply(&data_message(&buffer[..1])).is_ok(), "last reply");
            return 0;
        }
        let message = data_message(&buffer[..length]);
        check!(reply_recv(0, &message, &mut receive).is_ok(), "reply_recv");
    }
}

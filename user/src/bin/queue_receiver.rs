//! ipc-queue, receiver: waits for the sender (capability 1) to exit, then receives the 6 queued
//! messages from endpoint capability 0 — they survived their sender — checks them, and takes
//! snapshot `drained`.
#![no_std]
#![no_main]

use user::{check, receive_into, recv, snapshot, wait, Waited};

#[no_mangle]
fn main() -> i32 {
    check!(
        wait(1) == Ok(Waited::Exited(0)),
        "sender did not exit cleanly"
    );
    let mut buffer = [0u8; 8192];
    for message in 0..6 {
        let mut receive = receive_into(&mut buffer);
        check!(recv(0, &mut receive).is_ok(), "recv {}", message);
        check!(
            receive.data_length == 8192,
            "message {} has {} bytes",
            message,
            receive.data_length
        );
        for (i, byte) in buffer.iter().enumerate() {
            check!(
                *byte == (message * 31 + i) as u8,
                "message {} byte {} wrong",
                message,
                i
            );
        }
    }
    check!(snapshot("drained").is_ok(), "snapshot");
    0
}

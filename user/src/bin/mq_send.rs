//! A reusable two-stage sender: sends `messages` (default 8) messages of `bytes` (default
//! 4096) to endpoint capability 0, counting which the kernel queued and which it refused
//! (over-limit), then a 0-byte end marker (no buffer, never charged), takes snapshot `queued`
//! and exits. It asserts nothing about the outcome: the config's `[[expect]]` tables do.
//! Arguments: `messages`, `bytes`. Capabilities: 0 = the endpoint. Snapshot: `queued`.
#![no_std]
#![no_main]

use user::{arg_or, check, data_message, println, send, snapshot, Error};

#[no_mangle]
fn main() -> i32 {
    let messages = arg_or("messages", 8) as usize;
    let bytes = (arg_or("bytes", 4096) as usize).min(8192);
    let mut data = [0u8; 8192];
    let (mut queued, mut refused) = (0, 0);
    for message in 0..messages {
        for (i, byte) in data[..bytes].iter_mut().enumerate() {
            *byte = (message * 7 + i) as u8;
        }
        match send(0, &data_message(&data[..bytes])) {
            Ok(()) => queued += 1,
            Err(Error::OverLimit) => refused += 1,
            Err(e) => check!(false, "send {}: {}", message, e.name()),
        }
    }
    check!(send(0, &data_message(&[])).is_ok(), "end marker");
    check!(snapshot("queued").is_ok(), "snapshot");
    println!(
        "mq_send: {} queued, {} refused over a limit",
        queued, refused
    );
    0
}

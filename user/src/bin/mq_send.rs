//! A reusable two-stage sender: sends `messages` (default 8) messages of `bytes` (default
//! 4096) to endpoint capability 0, counting which the kernel queued and which it refused (a
//! limit or sub-limit, a full queue), then a 0-byte end marker (no buffer, never charged),
//! takes snapshot `queued` and exits with the number queued. It asserts nothing about the
//! outcome: the config's `[[expect]]` tables do.
#![no_std]
#![no_main]

use user::{check, data_message, is_refusal, println, send, snapshot};

user::program! {
    description: "Sends `messages` messages of `bytes` bytes on capability 0, counting which the kernel queued (under two-stage transfer: buffer frames charged as the `msgbuf` policy says) and which it refused (over a limit or sub-limit, a full queue), then a 0-byte end marker (no buffer, never charged; refused only when the endpoint's queue of 16 messages is full); takes snapshot `queued` and exits with the number queued. Pairs with `mq_drain`. Needs `transfer = \"two-stage\"` when the receiver waits for it first, as `mq_drain` does.",
    caps: { 0: ep => "the endpoint it sends on" },
    args: {
        messages: 8 => "messages to send before the end marker",
        bytes: 4096 => "bytes per message (1 to 8192; B bytes need ceil(B/4096) buffer frames)",
    },
    snapshots: { "queued" => "after the end marker, every queued buffer still charged" },
    exit: "the number of messages queued (the others were refused; the console says why)",
}

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let bytes = args.bytes.clamp(1, 8192) as usize;
    let mut data = [0u8; 8192];
    let (mut queued, mut refused) = (0, 0);
    for message in 0..args.messages as usize {
        for (i, byte) in data[..bytes].iter_mut().enumerate() {
            *byte = (message * 7 + i) as u8;
        }
        match send(0, &data_message(&data[..bytes])) {
            Ok(()) => queued += 1,
            Err(error) => {
                check!(is_refusal(error), "send {}: {}", message, error.name());
                refused += 1;
            }
        }
    }
    if let Err(error) = send(0, &data_message(&[])) {
        // Only a full queue refuses it (it has no buffer): `mq_drain` knows from the count.
        check!(is_refusal(error), "end marker: {}", error.name());
        println!("mq_send: the end marker was refused: {}", error.name());
    }
    check!(snapshot("queued").is_ok(), "snapshot");
    println!(
        "mq_send: {} queued, {} refused over a limit",
        queued, refused
    );
    queued
}

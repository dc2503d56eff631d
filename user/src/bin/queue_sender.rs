//! ipc-queue, sender (two-stage transfer): sends `messages` (default 8) messages of `bytes`
//! (default 8192) to endpoint capability 0, which nobody receives on yet, counting which the
//! kernel queued and which it refused (a limit or sub-limit, a full queue). Takes snapshot
//! `queued`, then exits with the number queued, which the receiver drains.
#![no_std]
#![no_main]

use user::{check, data_message, is_refusal, println, send, snapshot};

user::program! {
    description: "Sends `messages` messages of `bytes` bytes on capability 0 before anyone receives, so under two-stage transfer each is queued in kernel buffer frames (`msgbuf`, paid as the `msgbuf` policy says) or refused (over a limit or sub-limit, a full queue), and counts which; takes snapshot `queued` and exits with the number queued, for `queue_receiver`. Needs `transfer = \"two-stage\"` (a direct send would wait for a receiver that waits for this domain).",
    caps: { 0: ep => "the endpoint it queues on" },
    args: {
        messages: 8 => "messages to send",
        bytes: 8192 => "bytes per message (1 to 8192; a message of B bytes needs ceil(B/4096) buffer frames)",
    },
    snapshots: { "queued" => "after every send, with the queued messages' buffers charged" },
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
            *byte = (message * 31 + i) as u8;
        }
        match send(0, &data_message(&data[..bytes])) {
            Ok(()) => queued += 1,
            Err(error) => {
                check!(is_refusal(error), "message {}: {}", message, error.name());
                println!(
                    "queue_sender: message {} refused: {}",
                    message,
                    error.name()
                );
                refused += 1;
            }
        }
    }
    check!(snapshot("queued").is_ok(), "snapshot");
    println!("queue_sender: {} queued, {} refused", queued, refused);
    queued
}

//! ipc-queue, receiver: waits for the sender (capability 1) to exit, then receives as many
//! messages from endpoint capability 0 as the sender's exit code says it queued — they survived
//! their sender — checks their bytes, and takes snapshot `drained`.
#![no_std]
#![no_main]

use user::{check, println, receive_into, recv, snapshot, wait, Waited};

user::program! {
    description: "Waits for `queue_sender` to end, then receives as many messages on capability 0 as its exit code says it queued (none when it was stopped), checks each holds the sender's pattern, and takes snapshot `drained`: the queued messages outlive their sender.",
    caps: {
        0: ep => "the endpoint the messages are queued on",
        1: dom => "the sender, waited for",
    },
    snapshots: { "drained" => "after receiving every queued message: their buffers are freed" },
    exit: "the number of messages received",
}

#[no_mangle]
fn main() -> i32 {
    let queued = match wait(1) {
        Ok(Waited::Exited(code)) => code.max(0),
        ended => {
            println!("queue_receiver: the sender ended with {:?}", ended);
            0
        }
    };
    let mut buffer = [0u8; 8192];
    for message in 0..queued {
        let mut receive = receive_into(&mut buffer);
        check!(recv(0, &mut receive).is_ok(), "recv {}", message);
        // A refused message leaves a gap in the sender's numbering, so the pattern is checked
        // from the message's own first byte.
        let first = buffer[0];
        for (i, byte) in buffer[..receive.data_length].iter().enumerate() {
            check!(
                *byte == first.wrapping_add(i as u8),
                "message {} byte {} wrong",
                message,
                i
            );
        }
    }
    check!(snapshot("drained").is_ok(), "snapshot");
    println!("queue_receiver: {} messages received", queued);
    queued
}

//! A reusable two-stage receiver: waits for the sender (domain capability 1) to end, then
//! receives from endpoint capability 0 until the 0-byte end marker, checking each message's
//! bytes against `mq_send`'s pattern, and exits with the number of messages it received.
#![no_std]
#![no_main]

use user::{check, println, receive_into, recv, wait, Waited};

user::program! {
    description: "Waits for the sender (`mq_send`) to end, then receives on capability 0 until the 0-byte end marker (or, when the sender's exit code says it filled the queue of 16, which left no room for the marker, until those 16), checking each message holds the sender's pattern (messages of up to 8192 bytes). Takes no snapshot: its receives free the buffers, which `final` shows.",
    caps: {
        0: ep => "the endpoint the messages are queued on",
        1: dom => "the sender, waited for",
    },
    exit: "the number of messages received (the end marker not counted)",
}

#[no_mangle]
fn main() -> i32 {
    // The queue holds 16 messages: a sender that queued 16 could not queue its end marker.
    let full = wait(1) == Ok(Waited::Exited(abi::MAX_QUEUED_MESSAGES as i32));
    let mut buffer = [0u8; 8192];
    let mut received = 0;
    loop {
        if full && received == abi::MAX_QUEUED_MESSAGES as i32 {
            break;
        }
        let mut receive = receive_into(&mut buffer);
        check!(recv(0, &mut receive).is_ok(), "recv");
        if receive.data_length == 0 {
            break;
        }
        // Messages are numbered by the sender; a refused one leaves a gap, so the pattern is
        // checked relative to the message's own first byte.
        let first = buffer[0];
        for (i, byte) in buffer[..receive.data_length].iter().enumerate() {
            check!(
                *byte == first.wrapping_add(i as u8),
                "message {} byte {}",
                received,
                i
            );
        }
        received += 1;
    }
    println!("mq_drain: {} messages", received);
    received
}

//! A reusable two-stage receiver: waits for the sender (domain capability 1) to end, then
//! receives from endpoint capability 0 until the 0-byte end marker, checking each message's
//! bytes against `mq_send`'s pattern, and exits. Capabilities: 0 = the endpoint, 1 = the
//! sender. No arguments, no snapshots.
#![no_std]
#![no_main]

use user::{check, println, receive_into, recv, wait};

#[no_mangle]
fn main() -> i32 {
    let _ = wait(1);
    let mut buffer = [0u8; 8192];
    let mut received = 0;
    loop {
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
    0
}

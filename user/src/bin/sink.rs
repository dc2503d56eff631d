//! Receives messages on endpoint capability 0 until the first one arrives, checks it is the
//! valid 64-byte message, and exits.
#![no_std]
#![no_main]

use user::{check, receive_into, recv};

user::program! {
    description: "Receives one message on capability 0 and checks it is the valid one `bad_messages` sends last (64 bytes, every byte 1): none of the malformed ones may arrive.",
    caps: { 0: ep => "the endpoint it receives on" },
    exit: "0",
}

#[no_mangle]
fn main() -> i32 {
    let mut buffer = [0u8; 64];
    let mut receive = receive_into(&mut buffer);
    check!(recv(0, &mut receive).is_ok(), "recv");
    check!(
        receive.data_length == 64 && buffer.iter().all(|b| *b == 1),
        "the message that arrived is not the valid one"
    );
    0
}

//! ipc-atomic, sender: a send whose receive buffer cannot be charged (the receiver's set is
//! full) must fail with over-limit; a message over the data bound must fail with
//! message-too-large; neither may change the receiver. A final empty message releases it.
#![no_std]
#![no_main]

use user::{check, data_message, send, Error, Message};

#[no_mangle]
fn main() -> i32 {
    let data = [7u8; 4096];
    let result = send(0, &data_message(&data));
    check!(
        result == Err(Error::OverLimit),
        "send into a full receiver gave {:?}",
        result
    );
    let too_big = Message {
        data_address: data.as_ptr() as usize,
        data_length: abi_bound() + 1,
        ..Message::default()
    };
    let result = send(0, &too_big);
    check!(
        result == Err(Error::MessageTooLarge),
        "oversized send gave {:?}",
        result
    );
    check!(send(0, &data_message(&[])).is_ok(), "empty send");
    0
}

fn abi_bound() -> usize {
    16384
}

//! ipc-atomic, sender: sends a `bytes`-byte (default 4096) message, reporting whether the
//! kernel delivered it or refused it (in the scenario the receiver's set is full, so its
//! buffer cannot be charged); then a message over the data bound, which must fail with
//! message-too-large whatever the config; then a final empty message that releases the
//! receiver.
#![no_std]
#![no_main]

use user::{check, data_message, is_refusal, println, send, Error, Message};

user::program! {
    description: "Sends one `bytes`-byte message on capability 0 and reports whether it was delivered or refused (over a limit: the receiver's buffer pages could not be charged); then one of 16385 bytes, one past the kernel's bound, which must fail with message-too-large and change nothing; then an empty message, which ends `atomic_receiver`.",
    caps: { 0: ep => "the endpoint to the receiver" },
    args: { bytes: 4096 => "bytes of the first message (1 to 16384)" },
    exit: "0 when the first message was refused (the console says why); 1 when it was delivered",
}

#[no_mangle]
fn main() -> i32 {
    let bytes = Args::get().bytes.clamp(1, 16384) as usize;
    let data = [7u8; 16384];
    let delivered = match send(0, &data_message(&data[..bytes])) {
        Ok(()) => true,
        Err(error) => {
            check!(is_refusal(error), "send: {}", error.name());
            println!(
                "atomic_sender: the first message was refused: {}",
                error.name()
            );
            false
        }
    };
    let too_big = Message {
        data_address: data.as_ptr() as usize,
        data_length: abi::MAX_MESSAGE_BYTES + 1,
        ..Message::default()
    };
    let result = send(0, &too_big);
    check!(
        result == Err(Error::MessageTooLarge),
        "oversized send gave {:?}",
        result
    );
    check!(send(0, &data_message(&[])).is_ok(), "empty send");
    i32::from(delivered)
}

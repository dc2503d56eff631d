//! ipc-queue, sender (two-stage transfer): sends 8 messages of 8 KiB to endpoint capability 0,
//! which nobody receives on yet. The payer's `msgbuf` sub-limit (48 KiB) admits 6; the 7th and
//! 8th must fail with over-limit and queue nothing. Takes snapshot `queued`, then exits.
#![no_std]
#![no_main]

use user::{check, data_message, send, snapshot, Error};

#[no_mangle]
fn main() -> i32 {
    let mut data = [0u8; 8192];
    for message in 0..8 {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = (message * 31 + i) as u8;
        }
        let result = send(0, &data_message(&data));
        if message < 6 {
            check!(
                result.is_ok(),
                "message {} not queued: {:?}",
                message,
                result
            );
        } else {
            check!(
                result == Err(Error::OverLimit),
                "message {} gave {:?}, not over-limit",
                message,
                result
            );
        }
    }
    check!(snapshot("queued").is_ok(), "snapshot");
    0
}

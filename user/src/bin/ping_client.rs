//! ipc-pingpong, client: 1000 `call`s with 64-byte messages on endpoint capability 0; checks
//! every reply (the server adds 1 to every byte), then takes snapshot `done`.
#![no_std]
#![no_main]

use user::{call_endpoint, check, data_message, println, receive_into, snapshot};

const ROUNDS: usize = 1000;

#[no_mangle]
fn main() -> i32 {
    let mut request = [0u8; 64];
    let mut answer = [0u8; 64];
    for round in 0..ROUNDS {
        for (i, byte) in request.iter_mut().enumerate() {
            *byte = (round + i) as u8;
        }
        let message = data_message(&request);
        let mut receive = receive_into(&mut answer);
        check!(
            call_endpoint(0, &message, &mut receive).is_ok(),
            "call {} failed",
            round
        );
        check!(
            receive.data_length == 64,
            "reply {} has {} bytes",
            round,
            receive.data_length
        );
        for (i, byte) in answer.iter().enumerate() {
            check!(
                *byte == ((round + i) as u8).wrapping_add(1),
                "reply {} byte {} wrong",
                round,
                i
            );
        }
    }
    // An empty call tells the server to stop.
    let mut receive = receive_into(&mut answer);
    check!(
        call_endpoint(0, &data_message(&[]), &mut receive).is_ok(),
        "final call"
    );
    check!(snapshot("done").is_ok(), "snapshot");
    println!("client: {} round trips verified", ROUNDS);
    0
}

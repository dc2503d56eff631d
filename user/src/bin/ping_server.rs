//! ipc-pingpong, server: receives on endpoint capability 0, checks each 64-byte request and
//! answers with every byte plus one, using `reply_recv`; an empty request ends it.
#![no_std]
#![no_main]

use user::{check, data_message, receive_into, recv, reply, reply_recv};

#[no_mangle]
fn main() -> i32 {
    let mut request = [0u8; 64];
    let mut answer = [0u8; 64];
    let mut receive = receive_into(&mut request);
    check!(recv(0, &mut receive).is_ok(), "first recv");
    let mut round = 0usize;
    loop {
        let length = receive.data_length;
        if length == 0 {
            check!(reply(&data_message(&[])).is_ok(), "last reply");
            return 0;
        }
        check!(length == 64, "request {} has {} bytes", round, length);
        for (i, byte) in request.iter().enumerate() {
            check!(
                *byte == (round + i) as u8,
                "request {} byte {} wrong",
                round,
                i
            );
            answer[i] = byte.wrapping_add(1);
        }
        let message = data_message(&answer);
        receive = receive_into(&mut request);
        check!(
            reply_recv(0, &message, &mut receive).is_ok(),
            "reply_recv {}",
            round
        );
        round += 1;
    }
}

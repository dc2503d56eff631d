//! ipc-pingpong, server: receives on endpoint capability 0, checks each request (up to 64
//! bytes, `ping_client`'s pattern) and answers with every byte plus one, using `reply_recv`;
//! an empty request ends it.
#![no_std]
#![no_main]

use user::{check, data_message, is_refusal, println, receive_into, recv, reply, reply_recv};

user::program! {
    description: "Receives calls on capability 0 (requests of up to 64 bytes), checks each holds `ping_client`'s pattern and answers it with every byte plus one (`reply_recv`); an empty request is answered empty and ends it. A reply the kernel refuses (a limit, under two-stage transfer) ends it too; the client's call then fails with peer-gone.",
    caps: { 0: ep => "the endpoint it serves" },
    exit: "0; 1 when a reply was refused (the console says why)",
}

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
        for (i, byte) in request[..length].iter().enumerate() {
            check!(
                *byte == (round + i) as u8,
                "request {} byte {} wrong",
                round,
                i
            );
            answer[i] = byte.wrapping_add(1);
        }
        let message = data_message(&answer[..length]);
        receive = receive_into(&mut request);
        if let Err(error) = reply_recv(0, &message, &mut receive) {
            check!(is_refusal(error), "reply_recv {}: {}", round, error.name());
            println!("server: reply {} refused: {}", round, error.name());
            return 1;
        }
        round += 1;
    }
}

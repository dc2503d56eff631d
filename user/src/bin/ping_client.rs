//! ipc-pingpong, client: `rounds` (default 1000) `call`s with 64-byte messages on endpoint
//! capability 0; checks every reply (the server adds 1 to every byte),
//! then takes snapshot `done`. A call the kernel refuses, or one the server left unanswered,
//! ends the loop and is reported.
#![no_std]
#![no_main]

use user::{call_endpoint, check, data_message, is_refusal, println, receive_into, snapshot};
use user::{Error, Message};

user::program! {
    description: "Makes `rounds` calls on capability 0, each a 64-byte message answered by `ping_server` with every byte plus one, checking every reply; then an empty call ends the server, and it takes snapshot `done`. A call the kernel refuses (a limit, under two-stage transfer) or the server leaves unanswered (its reply was refused) ends the loop; the console says which.",
    caps: { 0: ep => "the endpoint `ping_server` receives on" },
    args: { rounds: 1000 => "round trips" },
    snapshots: { "done" => "after the last round trip" },
    exit: "0 when every round trip was made; 1 when a call was refused; 2 when the server ended without answering",
}

/// Makes one call: the reply's length, or how it ended: 1 refused (a limit), 2 unanswered
/// (the server ended).
fn call(message: &Message, answer: &mut [u8]) -> Result<usize, i32> {
    let mut receive = receive_into(answer);
    match call_endpoint(0, message, &mut receive) {
        Ok(()) => Ok(receive.data_length),
        Err(Error::PeerGone) => Err(2),
        Err(error) => {
            check!(is_refusal(error), "a call failed (not a refusal)");
            Err(1)
        }
    }
}

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let mut request = [0u8; 64];
    let mut answer = [0u8; 64];
    let mut ended = Ok(0);
    let mut rounds = 0;
    while rounds < args.rounds as usize {
        let round = rounds;
        for (i, byte) in request.iter_mut().enumerate() {
            *byte = (round + i) as u8;
        }
        ended = call(&data_message(&request), &mut answer);
        let Ok(length) = ended else { break };
        check!(length == 64, "reply {} has {} bytes", round, length);
        for (i, byte) in answer.iter().enumerate() {
            check!(
                *byte == ((round + i) as u8).wrapping_add(1),
                "reply {} byte {} wrong",
                round,
                i
            );
        }
        rounds += 1;
    }
    // An empty call tells the server to stop (unless it is gone).
    if ended != Err(2) {
        let last = call(&data_message(&[]), &mut answer);
        ended = ended.and(last);
    }
    check!(snapshot("done").is_ok(), "snapshot");
    let code = ended.err().unwrap_or(0);
    const ENDINGS: [&str; 3] = [
        "",
        "; the next call was refused",
        "; the next was unanswered",
    ];
    println!(
        "client: {} round trips verified{}",
        rounds, ENDINGS[code as usize]
    );
    code
}

//! ipc-registers, server: answers every register call on endpoint capability 0 with each word
//! plus one. A call whose first word is zero ends it: the server exits without answering, and
//! the kernel fails that pending call with peer-gone.
#![no_std]
#![no_main]

use user::{check, reply_recv_registers};

user::program! {
    description: "Answers every register call on capability 0 with each word plus one; a call whose first word is zero ends it without an answer (the kernel fails that call with peer-gone).",
    caps: { 0: ep => "the endpoint it serves" },
    exit: "0",
}

#[no_mangle]
fn main() -> i32 {
    // Nothing to answer yet: the first reply_recv only receives.
    let mut request = reply_recv_registers(0, [0; 4]);
    loop {
        check!(request.is_ok(), "receive failed: {:?}", request);
        let words = request.unwrap_or_default();
        if words[0] == 0 {
            return 0;
        }
        request = reply_recv_registers(0, words.map(|w| w.wrapping_add(1)));
    }
}

//! Benchmark (bench/ipc-registers.toml), server side: answers every register call on
//! endpoint capability 0 with its words; a zero first word ends it.
#![no_std]
#![no_main]

use user::{check, reply_recv_registers};

user::program! {
    description: "Benchmark (bench/ipc-registers.toml): answers every register call on capability 0 with its words; a zero first word ends it.",
    caps: { 0: ep => "the endpoint it serves" },
    exit: "0",
}

#[no_mangle]
fn main() -> i32 {
    let mut request = reply_recv_registers(0, [0; 4]);
    loop {
        check!(request.is_ok(), "receive failed");
        let words = request.unwrap_or_default();
        if words[0] == 0 {
            return 0;
        }
        request = reply_recv_registers(0, words);
    }
}

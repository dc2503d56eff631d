//! The default tour, child side: writes 2 of the 8 pages it shares with the tour (two
//! copy-on-write copies), queues a 4 KiB message to it on the mailbox (capability 1), and takes
//! snapshot `tour` while every frame kind is charged.
#![no_std]
#![no_main]

use user::{check, data_message, println, send, snapshot};

const REGION: usize = 0x2000_0000;

#[no_mangle]
fn main() -> i32 {
    for page in 0..2 {
        // SAFETY: shared copy-on-write by the tour at spawn.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(0xC0C0) };
    }
    let message = [0x5au8; 4096];
    check!(send(1, &data_message(&message)).is_ok(), "send");
    check!(snapshot("tour").is_ok(), "snapshot");
    println!("child: 2 pages copied on write, one message queued");
    0
}

//! The child of `provenance`: writes page 0 of the pages it was given copy-on-write (a copy),
//! then calls its parent on the endpoint behind capability 1 and, when answered, exits.
#![no_std]
#![no_main]

use user::{call_endpoint, check, Message, Receive};

user::program! {
    description: "Writes page 0 of the copy-on-write region at 0x2000_0000 (a copy-on-write copy), calls on the endpoint behind capability 1 so that its parent can inspect it, and exits when answered.",
    caps: {
        0: dom => "its creator",
        1: ep => "the endpoint its parent receives on",
    },
    exit: "0",
}

const REGION: usize = 0x2000_0000;

#[no_mangle]
fn main() -> i32 {
    // SAFETY: the parent shared this region with us copy-on-write; writing copies the page.
    unsafe { (REGION as *mut u64).write_volatile(0xC0DE) };
    let mut receive = Receive::default();
    check!(
        call_endpoint(1, &Message::default(), &mut receive).is_ok(),
        "call the parent"
    );
    0
}

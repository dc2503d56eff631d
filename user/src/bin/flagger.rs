//! Preemption, the other side: receives the region capability, maps the region and sets the
//! flag the spinner waits on.
#![no_std]
#![no_main]

use user::{check, recv, region_map, Receive};

user::program! {
    description: "Receives a region capability on capability 0, maps the region at 0x6000_0000 and sets its first word to 1 (the flag `spinner` waits for).",
    caps: { 0: ep => "the endpoint from the spinner" },
    exit: "0",
}

const REGION: usize = 0x6000_0000;

#[no_mangle]
fn main() -> i32 {
    let mut receive = Receive::default();
    check!(recv(0, &mut receive).is_ok(), "recv");
    check!(receive.cap_count == 1, "no capability");
    check!(region_map(receive.caps[0], REGION).is_ok(), "region_map");
    // SAFETY: the shared page is mapped writable.
    unsafe { (REGION as *mut u64).write_volatile(1) };
    0
}

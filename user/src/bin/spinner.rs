//! Preemption: shares a one-page region with `flagger` (its capability travels in a queued
//! two-stage message, so sending does not block), then spins without a single system call
//! until the flagger has written the flag. Only the timer tick can give the flagger the CPU.
#![no_std]
#![no_main]

use user::{check, println, region_create, region_map, send, Message};

user::program! {
    description: "Creates and maps a one-page shared region at 0x5000_0000, sends its capability on capability 0 (queued under two-stage transfer, so the send does not wait), then spins without a single system call until `flagger` has set the flag word: only the timer tick can give the flagger the CPU. Fails its check after 200 million spins. Needs `transfer = \"two-stage\"`.",
    caps: { 0: ep => "the endpoint to the flagger" },
    exit: "0",
}

const REGION: usize = 0x5000_0000;

#[no_mangle]
fn main() -> i32 {
    let region = region_create(1);
    check!(region.is_ok(), "region_create");
    let region = region.unwrap_or(0);
    check!(region_map(region, REGION).is_ok(), "region_map");
    let mut message = Message::default();
    message.caps[0] = region;
    message.cap_count = 1;
    check!(send(0, &message).is_ok(), "send");
    let flag = REGION as *const u64;
    let mut spins = 0u64;
    // SAFETY: the region page is mapped; the flagger writes the flag through its own mapping.
    while unsafe { flag.read_volatile() } == 0 {
        spins += 1;
        check!(spins < 200_000_000, "never preempted: the flag was not set");
    }
    println!("spinner: preempted; the flag was set after {} spins", spins);
    0
}

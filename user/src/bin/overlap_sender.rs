//! ipc-overlap, sender: creates a one-page shared region, maps it, fills bytes 0..2048, sends
//! the region's capability to the receiver, then sends bytes 0..2048 of the region as data into
//! the receiver's buffer at bytes 1024..3072 of the same physical frame.
#![no_std]
#![no_main]

use user::{check, data_message, region_create, region_map, send, Message};

const REGION: usize = 0x5000_0000;

#[no_mangle]
fn main() -> i32 {
    let region = region_create(1);
    check!(region.is_ok(), "region_create");
    let region = region.unwrap_or(0);
    check!(region_map(region, REGION).is_ok(), "region_map");
    for i in 0..2048 {
        // SAFETY: the region page is mapped writable.
        unsafe { ((REGION + i) as *mut u8).write_volatile((i % 251) as u8) };
    }
    let mut give = Message::default();
    give.caps[0] = region;
    give.cap_count = 1;
    check!(send(0, &give).is_ok(), "send the region capability");
    // SAFETY: the region is mapped; the slice covers bytes 0..2048 of it.
    let data = unsafe { core::slice::from_raw_parts(REGION as *const u8, 2048) };
    let result = send(0, &data_message(data));
    check!(result.is_ok(), "overlapping send: {:?}", result);
    0
}

//! ipc-overlap, receiver: receives the region capability, maps the region, then receives the
//! sender's bytes 0..2048 of that same frame into bytes 1024..3072 of it, checks them (memmove
//! semantics), and takes snapshot `after`.
#![no_std]
#![no_main]

use user::{check, receive_into, recv, region_map, snapshot, Receive};

const REGION: usize = 0x6000_0000;

#[no_mangle]
fn main() -> i32 {
    let mut first = Receive::default();
    check!(recv(0, &mut first).is_ok(), "receive the region capability");
    check!(first.cap_count == 1, "no capability arrived");
    check!(region_map(first.caps[0], REGION).is_ok(), "region_map");
    // SAFETY: the region is mapped writable; bytes 1024..3072 are inside its one page.
    let buffer = unsafe { core::slice::from_raw_parts_mut((REGION + 1024) as *mut u8, 2048) };
    let mut receive = receive_into(buffer);
    check!(recv(0, &mut receive).is_ok(), "receive the data");
    check!(
        receive.data_length == 2048,
        "received {} bytes",
        receive.data_length
    );
    for i in 0..2048 {
        // SAFETY: as above.
        let byte = unsafe { ((REGION + 1024 + i) as *const u8).read_volatile() };
        check!(byte == (i % 251) as u8, "byte {} is {}", i, byte);
    }
    check!(snapshot("after").is_ok(), "snapshot");
    0
}

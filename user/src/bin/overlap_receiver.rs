//! ipc-overlap, receiver: receives the region capability, maps the region, then receives the
//! sender's bytes into bytes `offset`.. (default 1024) of that same frame, checks them (memmove
//! semantics), and takes snapshot `after`.
#![no_std]
#![no_main]

use user::{check, println, receive_into, recv, region_map, snapshot, Receive};

user::program! {
    description: "Receives a region capability on capability 0 and maps the region at 0x6000_0000, then receives one data message into the region's bytes `offset`..4096 (the same physical frame the sender's bytes come from), checks every received byte holds `overlap_sender`'s pattern, and takes snapshot `after`.",
    caps: { 0: ep => "the endpoint from the sender" },
    args: { offset: 1024 => "where in the region's page its receive buffer starts (0 to 4095); the buffer runs to the end of the page" },
    snapshots: { "after" => "after the data arrived; the transient buffer is already freed (its charge is in the `peak` figures)" },
    exit: "the number of data bytes received",
}

const REGION: usize = 0x6000_0000;

#[no_mangle]
fn main() -> i32 {
    let offset = Args::get().offset.min(4095) as usize;
    let mut first = Receive::default();
    check!(recv(0, &mut first).is_ok(), "receive the region capability");
    check!(first.cap_count == 1, "no capability arrived");
    check!(region_map(first.caps[0], REGION).is_ok(), "region_map");
    // SAFETY: the region is mapped writable; bytes offset..4096 are inside its one page.
    let buffer =
        unsafe { core::slice::from_raw_parts_mut((REGION + offset) as *mut u8, 4096 - offset) };
    let mut receive = receive_into(buffer);
    check!(recv(0, &mut receive).is_ok(), "receive the data");
    let length = receive.data_length;
    for i in 0..length {
        // SAFETY: as above.
        let byte = unsafe { ((REGION + offset + i) as *const u8).read_volatile() };
        check!(byte == (i % 251) as u8, "byte {} is {}", i, byte);
    }
    check!(snapshot("after").is_ok(), "snapshot");
    println!(
        "overlap_receiver: {} bytes received at offset {}",
        length, offset
    );
    length as i32
}

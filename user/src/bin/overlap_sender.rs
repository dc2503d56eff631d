//! ipc-overlap, sender: creates a one-page shared region, maps it, fills its first `bytes`
//! (default 2048) bytes, sends the region's capability to the receiver, then sends those bytes
//! of the region as data into the receiver's buffer, which lies in the same physical frame. A
//! data send the kernel refuses is reported, and an empty message then ends the receiver.
#![no_std]
#![no_main]

use user::{check, data_message, is_refusal, println, region_create, region_map, send, Message};

user::program! {
    description: "Creates a one-page shared region, maps it at 0x5000_0000, fills its first `bytes` bytes, sends the region's capability on capability 0, then sends those bytes of the region as data: the receiver (`overlap_receiver`) receives them into the same physical frame, so the kernel copies through a transient buffer frame (`msgbuf`). When the data send is refused it sends an empty message instead, so the receiver ends.",
    caps: { 0: ep => "the endpoint to the receiver" },
    args: { bytes: 2048 => "bytes sent from the start of the region (1 to 4096)" },
    exit: "0; 1 when the data send was refused (the console says why)",
}

const REGION: usize = 0x5000_0000;

#[no_mangle]
fn main() -> i32 {
    let bytes = Args::get().bytes.clamp(1, 4096) as usize;
    let region = region_create(1);
    check!(region.is_ok(), "region_create");
    let region = region.unwrap_or(0);
    check!(region_map(region, REGION).is_ok(), "region_map");
    for i in 0..bytes {
        // SAFETY: the region page is mapped writable.
        unsafe { ((REGION + i) as *mut u8).write_volatile((i % 251) as u8) };
    }
    let mut give = Message::default();
    give.caps[0] = region;
    give.cap_count = 1;
    check!(send(0, &give).is_ok(), "send the region capability");
    // SAFETY: the region is mapped; the slice covers its first `bytes` bytes.
    let data = unsafe { core::slice::from_raw_parts(REGION as *const u8, bytes) };
    let result = send(0, &data_message(data));
    match result {
        Ok(()) => 0,
        Err(error) => {
            check!(is_refusal(error), "overlapping send: {:?}", result);
            println!(
                "overlap_sender: the data send was refused: {}",
                error.name()
            );
            check!(send(0, &data_message(&[])).is_ok(), "the empty message");
            1
        }
    }
}

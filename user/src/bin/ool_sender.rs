//! ipc-ool, sender: maps and writes a 32-page region, sends it out-of-line on endpoint
//! capability 0, then waits for the receiver (capability 1) to exit so the pages stay shared
//! until the receiver's snapshot.
#![no_std]
#![no_main]

use user::{check, map, send, wait, Message, SharedRegion, Waited, MAP_WRITE};

const REGION: usize = 0x2000_0000;
const PAGES: usize = 32;

#[no_mangle]
fn main() -> i32 {
    check!(map(REGION, PAGES, MAP_WRITE).is_ok(), "map");
    for page in 0..PAGES {
        // SAFETY: just mapped writable.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(0x0_0150_0000 + page as u64) };
    }
    let mut message = Message::default();
    message.regions[0] = SharedRegion {
        address: REGION,
        pages: PAGES,
    };
    message.region_count = 1;
    check!(send(0, &message).is_ok(), "send");
    check!(
        wait(1) == Ok(Waited::Exited(0)),
        "receiver did not exit cleanly"
    );
    for page in 0..PAGES {
        // SAFETY: our own mapping, unchanged by the receiver's writes.
        let value = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == 0x0_0150_0000 + page as u64,
            "sender page {} changed",
            page
        );
    }
    0
}

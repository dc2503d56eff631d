//! ipc-ool, receiver: receives a 32-page out-of-line region at a fresh 1 GiB slot, checks it,
//! writes 8 of its pages (copy-on-write faults) and takes snapshot `after-writes`.
#![no_std]
#![no_main]

use user::{check, recv, snapshot, Receive};

const DESTINATION: usize = 5 << 30;

#[no_mangle]
fn main() -> i32 {
    let mut receive = Receive::default();
    receive.region_addresses[0] = DESTINATION;
    check!(recv(0, &mut receive).is_ok(), "recv");
    check!(
        receive.region_count == 1 && receive.region_pages[0] == 32,
        "region not received"
    );
    for page in 0..32 {
        // SAFETY: the region was mapped copy-on-write at DESTINATION.
        let value = unsafe { ((DESTINATION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == 0x0_0150_0000 + page as u64,
            "page {} = {:#x}",
            page,
            value
        );
    }
    for page in 0..8 {
        // SAFETY: as above; writing makes a private copy.
        unsafe { ((DESTINATION + page * 4096) as *mut u64).write_volatile(page as u64) };
    }
    check!(snapshot("after-writes").is_ok(), "snapshot");
    0
}

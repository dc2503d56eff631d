//! ipc-ool, receiver: receives an out-of-line region at a fresh 1 GiB slot, checks it, writes
//! `writes` (default 8) of its pages (copy-on-write faults) and takes snapshot `after-writes`.
#![no_std]
#![no_main]

use user::{check, println, recv, snapshot, Receive};

user::program! {
    description: "Receives one message on capability 0 with room for one out-of-line region at 5 GiB (a fresh 1 GiB slot: two new page tables), checks every received page holds `ool_sender`'s pattern, writes `writes` of them (copy-on-write copies) and takes snapshot `after-writes`. A message without a region (the sender's send was refused) is reported.",
    caps: { 0: ep => "the endpoint it receives the region on" },
    args: { writes: 8 => "received pages to write (at most the region's size)" },
    snapshots: { "after-writes" => "after its writes, the other pages still shared with the sender" },
    exit: "the number of pages received (0 when no region came)",
}

const DESTINATION: usize = 5 << 30;

#[no_mangle]
fn main() -> i32 {
    let writes = Args::get().writes as usize;
    let mut receive = Receive::default();
    receive.region_addresses[0] = DESTINATION;
    check!(recv(0, &mut receive).is_ok(), "recv");
    let pages = if receive.region_count == 1 {
        receive.region_pages[0]
    } else {
        0
    };
    for page in 0..pages {
        // SAFETY: the region was mapped copy-on-write at DESTINATION.
        let value = unsafe { ((DESTINATION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == 0x0_0150_0000 + page as u64,
            "page {} = {:#x}",
            page,
            value
        );
    }
    for page in 0..writes.min(pages) {
        // SAFETY: as above; writing makes a private copy.
        unsafe { ((DESTINATION + page * 4096) as *mut u64).write_volatile(page as u64) };
    }
    check!(snapshot("after-writes").is_ok(), "snapshot");
    println!(
        "ool_receiver: {} pages received, {} written",
        pages,
        writes.min(pages)
    );
    pages as i32
}

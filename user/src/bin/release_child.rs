//! cow-release, child side: waits for the parent (capability 0, given by spawn) to end, then
//! checks the pages it inherited and writes the first N of them (N and the page count from
//! words 1 and 2 of the first page) — no copies once nothing is shared any more — takes
//! snapshot `orphaned`, and exits.
#![no_std]
#![no_main]

use user::{check, println, snapshot, wait};

user::program! {
    description: "Spawned by `release_parent`: waits for the parent to end, checks every inherited page holds the parent's pattern, writes as many of them as word 1 of the first page says (word 2 is the page count) and takes snapshot `orphaned`. With the parent gone it is the pages' only mapper, so its writes copy nothing.",
    caps: { 0: dom => "the parent (given by spawn)" },
    snapshots: { "orphaned" => "after its writes, the parent gone" },
    exit: "0",
}

const REGION: usize = 0x2000_0000;

#[no_mangle]
fn main() -> i32 {
    // However the parent ended (exited, or stopped), the child now holds the pages alone.
    let _ = wait(0);
    // SAFETY: shared with us at spawn, the orders written before.
    let (writes, pages) = unsafe {
        (
            ((REGION + 8) as *const u64).read_volatile() as usize,
            ((REGION + 16) as *const u64).read_volatile() as usize,
        )
    };
    for page in 0..pages {
        // SAFETY: shared with us at spawn; the parent is gone, so we are the only mapper.
        let value = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == 0xA11CE000 + page as u64,
            "page {} = {:#x}",
            page,
            value
        );
    }
    for page in 0..writes.min(pages) {
        // SAFETY: as above; these writes restore write access without copying.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(page as u64) };
    }
    check!(snapshot("orphaned").is_ok(), "snapshot");
    println!(
        "release_child: wrote {} of {} pages",
        writes.min(pages),
        pages
    );
    0
}

//! A reusable copy-on-write child (spawned by `cow_share`): writes the first N pages of the
//! region shared with it (N from the first page), takes snapshot `written`, checks its writes
//! and exits. When a copy cannot be charged the kernel stops it (`over-limit`).
#![no_std]
#![no_main]

use user::{check, snapshot};

user::program! {
    description: "Spawned by `cow_share` sharing its pages: writes as many of them as word 1 of the first page says (word 2 is the page count), making copy-on-write copies, takes snapshot `written` and checks its writes. When a copy cannot be charged the kernel stops it (`over-limit`) before the snapshot.",
    caps: { 0: dom => "the parent (given by spawn)" },
    snapshots: { "written" => "after its writes, the other pages still shared" },
    exit: "0",
}

const REGION: usize = 0x2000_0000;

#[no_mangle]
fn main() -> i32 {
    // SAFETY: the parent shared this region with us at spawn.
    let (writes, pages) = unsafe {
        (
            ((REGION + 8) as *const u64).read_volatile() as usize,
            ((REGION + 16) as *const u64).read_volatile() as usize,
        )
    };
    let writes = writes.min(pages);
    for page in 0..writes {
        // SAFETY: shared read-write (copy-on-write) region of `pages` pages.
        unsafe { ((REGION + page * 4096 + 64) as *mut u64).write_volatile(page as u64) };
    }
    check!(snapshot("written").is_ok(), "snapshot");
    for page in 0..writes {
        // SAFETY: as above.
        let value = unsafe { ((REGION + page * 4096 + 64) as *const u64).read_volatile() };
        check!(value == page as u64, "write to page {} lost", page);
    }
    0
}

//! cow-fork, child side: checks the shared pages hold the parent's data, writes the first N
//! of them (copy-on-write faults; N and the page count from words 1 and 2 of the first page),
//! checks its writes, takes snapshot `shared`, and exits.
#![no_std]
#![no_main]

use user::{check, println, snapshot};

user::program! {
    description: "Spawned by `cow_parent` sharing its pages: checks every shared page holds the parent's pattern, writes as many of them as word 1 of the first page says (copy-on-write copies; word 2 is the page count), checks its writes and takes snapshot `shared`. When a copy cannot be charged the kernel stops it (`over-limit`) before the snapshot.",
    caps: { 0: dom => "the parent (given by spawn)" },
    snapshots: { "shared" => "after its writes, while the unwritten pages are still shared" },
    exit: "0",
}

const REGION: usize = 0x2000_0000;

#[no_mangle]
fn main() -> i32 {
    // SAFETY: the parent shared this region with us at spawn; it wrote the orders first.
    let (writes, pages) = unsafe {
        (
            ((REGION + 8) as *const u64).read_volatile() as usize,
            ((REGION + 16) as *const u64).read_volatile() as usize,
        )
    };
    let writes = writes.min(pages);
    for page in 0..pages {
        // SAFETY: shared with us at spawn, `pages` pages.
        let value = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == 0xC0FFEE00 + page as u64,
            "child sees page {} = {:#x}",
            page,
            value
        );
    }
    for page in 0..writes {
        // SAFETY: shared read-write (copy-on-write) region.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(0xBEEF_0000 + page as u64) };
    }
    for page in 0..writes {
        // SAFETY: as above.
        let value = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == 0xBEEF_0000 + page as u64,
            "child write to page {} lost",
            page
        );
    }
    check!(snapshot("shared").is_ok(), "snapshot");
    println!("child: wrote {} of {} shared pages", writes, pages);
    0
}

//! cow-fork, child side: checks the 64 shared pages hold the parent's data, writes 16 of them
//! (copy-on-write faults), takes snapshot `shared`, and exits.
#![no_std]
#![no_main]

use user::{check, println, snapshot};

const REGION: usize = 0x2000_0000;
const PAGES: usize = 64;
const WRITES: usize = 16;

#[no_mangle]
fn main() -> i32 {
    for page in 0..PAGES {
        // SAFETY: the parent shared this region with us at spawn.
        let value = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == 0xC0FFEE00 + page as u64,
            "child sees page {} = {:#x}",
            page,
            value
        );
    }
    for page in 0..WRITES {
        // SAFETY: shared read-write (copy-on-write) region.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(0xBEEF_0000 + page as u64) };
    }
    for page in 0..WRITES {
        // SAFETY: as above.
        let value = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == 0xBEEF_0000 + page as u64,
            "child write to page {} lost",
            page
        );
    }
    check!(snapshot("shared").is_ok(), "snapshot");
    println!("child: wrote {} of {} shared pages", WRITES, PAGES);
    0
}

//! Global memory exhaustion: touches page after page of a 1 GiB region in a charge set without
//! a limit until the machine has no free frame; the kernel stops it with reason
//! out-of-memory and carries on.
#![no_std]
#![no_main]

use user::{check, map, MAP_WRITE};

const REGION: usize = 0x4000_0000;
const PAGES: usize = 1 << 18;

#[no_mangle]
fn main() -> i32 {
    check!(map(REGION, PAGES, MAP_WRITE).is_ok(), "map");
    for page in 0..PAGES {
        // SAFETY: mapped writable above.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(page as u64) };
    }
    1
}

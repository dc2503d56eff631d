//! over-limit: touches page after page of a large region until the kernel stops it for
//! exceeding its charge set's limit. It never reaches its exit.
#![no_std]
#![no_main]

use user::{check, map, println, MAP_WRITE};

const REGION: usize = 0x4000_0000;
const PAGES: usize = 4096;

#[no_mangle]
fn main() -> i32 {
    check!(map(REGION, PAGES, MAP_WRITE).is_ok(), "map");
    for page in 0..PAGES {
        // SAFETY: mapped writable above; a fault past the limit stops this domain.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(page as u64) };
    }
    println!("hog: touched every page without being stopped");
    1
}

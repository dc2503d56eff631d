//! cow-release, parent side: maps and writes 64 pages, spawns `child` (program
//! `release_child`, charge set behind capability 0) sharing them, and exits at once.
#![no_std]
#![no_main]

use user::{check, map, spawn, SharedRegion, MAP_WRITE};

const REGION: usize = 0x2000_0000;
const PAGES: usize = 64;

#[no_mangle]
fn main() -> i32 {
    check!(map(REGION, PAGES, MAP_WRITE).is_ok(), "map");
    for page in 0..PAGES {
        // SAFETY: the region was just mapped writable.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(0xA11CE000 + page as u64) };
    }
    let regions = [SharedRegion {
        address: REGION,
        pages: PAGES,
    }];
    check!(
        spawn("release_child", "child", 0, &regions).is_ok(),
        "spawn"
    );
    0
}

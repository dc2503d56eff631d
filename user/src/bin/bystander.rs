//! over-limit, the bystander: works and yields in its own charge set while the hog is stopped,
//! and exits normally.
#![no_std]
#![no_main]

use user::{check, map, println, yield_now, MAP_WRITE};

#[no_mangle]
fn main() -> i32 {
    let region = 0x3000_0000;
    check!(map(region, 8, MAP_WRITE).is_ok(), "map");
    for round in 0..8 {
        // SAFETY: mapped writable above.
        unsafe { ((region + round * 4096) as *mut u64).write_volatile(round as u64) };
        yield_now();
    }
    println!("bystander: done");
    0
}

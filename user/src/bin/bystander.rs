//! over-limit, the bystander: works and yields in its own charge set while the hog is stopped,
//! and exits normally.
#![no_std]
#![no_main]

use user::{check, map, println, yield_now, MAP_WRITE};

user::program! {
    description: "Maps `pages` pages at 0x3000_0000 and writes them one at a time, yielding after each, then exits: a domain that keeps running beside one that is stopped.",
    args: { pages: 8 => "pages to write, one per time slice (at most 65536)" },
    exit: "0",
}

#[no_mangle]
fn main() -> i32 {
    let pages = Args::get().pages.min(65536) as usize;
    let region = 0x3000_0000;
    check!(map(region, pages, MAP_WRITE).is_ok(), "map");
    for round in 0..pages {
        // SAFETY: mapped writable above.
        unsafe { ((region + round * 4096) as *mut u64).write_volatile(round as u64) };
        yield_now();
    }
    println!("bystander: done");
    0
}

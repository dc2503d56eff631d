//! cow-fork, parent side: maps and writes 64 pages, spawns `child` (program `cow_child`, in
//! the charge set behind capability 0) sharing them copy-on-write, waits for it, then checks
//! that its own pages were not changed by the child's writes.
#![no_std]
#![no_main]

use user::{check, map, println, spawn, wait, SharedRegion, Waited, MAP_WRITE};

/// The shared region (also known to cow_child).
const REGION: usize = 0x2000_0000;
const PAGES: usize = 64;

#[no_mangle]
fn main() -> i32 {
    check!(map(REGION, PAGES, MAP_WRITE).is_ok(), "map");
    for page in 0..PAGES {
        // SAFETY: the region was just mapped writable.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(0xC0FFEE00 + page as u64) };
    }
    let regions = [SharedRegion {
        address: REGION,
        pages: PAGES,
    }];
    let child = match spawn("cow_child", "child", 0, &regions) {
        Ok(cap) => cap,
        Err(e) => {
            println!("spawn failed: {}", e.name());
            return 1;
        }
    };
    let code = wait(child);
    check!(code == Ok(Waited::Exited(0)), "child exit code {:?}", code);
    for page in 0..PAGES {
        // SAFETY: mapped above; the parent's view must be unchanged by the child.
        let value = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == 0xC0FFEE00 + page as u64,
            "parent page {} changed to {:#x}",
            page,
            value
        );
    }
    println!("parent: 64 pages intact after the child wrote 16");
    0
}

//! A reusable copy-on-write parent: maps and writes `pages` (default 64) pages, optionally
//! lowers its own set's limit to what it uses plus `headroom` pages (capability 1, when the
//! argument is given), spawns `cow_write` into the set behind capability 0 sharing them
//! copy-on-write and telling it (in the first page) to write `writes` (default 16) of them,
//! waits for it, takes snapshot `after` and exits. It asserts nothing about how the child
//! ended: the config's `[[expect]]` tables do.
//! Arguments: `pages`, `writes`, `headroom`. Capabilities: 0 = the child's set, 1 = its own
//! set (for `headroom`). Snapshot: `after` (and the child's `written`).
#![no_std]
#![no_main]

use user::{arg, arg_or, check, map, println, set_limit, set_query, snapshot, spawn, wait};
use user::{SharedRegion, Waited, MAP_WRITE};

/// The shared region (also known to cow_write).
const REGION: usize = 0x2000_0000;

#[no_mangle]
fn main() -> i32 {
    let pages = (arg_or("pages", 64) as usize).clamp(1, 1024);
    let writes = (arg_or("writes", 16) as usize).min(pages);
    check!(map(REGION, pages, MAP_WRITE).is_ok(), "map");
    for page in 0..pages {
        // SAFETY: the region was just mapped writable.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(0xC0FFEE00 + page as u64) };
    }
    // SAFETY: as above; the child reads its orders from the first page.
    unsafe {
        ((REGION + 8) as *mut u64).write_volatile(writes as u64);
        ((REGION + 16) as *mut u64).write_volatile(pages as u64);
    }
    if let Some(headroom) = arg("headroom") {
        let usage = set_query(1);
        check!(usage.is_ok(), "set_query of its own set");
        if let Ok(usage) = usage {
            let limit = usage.subtree_bytes + headroom * 4096;
            check!(set_limit(1, limit as usize).is_ok(), "set_limit");
        }
    }
    let regions = [SharedRegion {
        address: REGION,
        pages,
    }];
    let child = spawn("cow_write", "child", 0, &regions);
    check!(child.is_ok(), "spawn");
    let ended = child.map(wait);
    check!(snapshot("after").is_ok(), "snapshot");
    match ended {
        Ok(Ok(Waited::Exited(code))) => println!("cow_share: child exited with {}", code),
        Ok(Ok(Waited::Stopped)) => println!("cow_share: child was stopped"),
        _ => println!("cow_share: no child"),
    }
    0
}

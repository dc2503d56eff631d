//! A reusable copy-on-write parent: maps and writes `pages` (default 64) pages, optionally
//! lowers its own set's limit to what it uses plus `headroom` pages (capability 1, when the
//! argument is given), spawns `cow_write` into the set behind capability 0 sharing them
//! copy-on-write and telling it (in the first page) to write `writes` (default 16) of them,
//! waits for it, takes snapshot `after` and exits. It asserts nothing about how the child
//! ended: the config's `[[expect]]` tables do.
#![no_std]
#![no_main]

use user::{check, is_refusal, map, println, set_limit, set_query, snapshot, spawn, wait};
use user::{SharedRegion, Waited, MAP_WRITE};

user::program! {
    description: "Maps `pages` pages at 0x2000_0000 and writes each; when `headroom` is given, lowers its own set's limit to the set's usage plus `headroom` pages; spawns `cow_write` sharing the pages copy-on-write and telling it to write `writes` of them; waits for it, takes snapshot `after` and exits. It asserts nothing about how the child ended: the config's expectations do.",
    caps: {
        0: set => "the charge set the child is spawned into",
        1: set (optional) => "its own charge set, whose limit it lowers (only when `headroom` is given)",
    },
    args: {
        pages: 64 => "pages to map, write and share (1 to 1024)",
        writes: 16 => "shared pages the child writes: copy-on-write copies (at most `pages`)",
        headroom: none => "pages above its usage its own set may still charge; when absent, its limit is left alone",
    },
    snapshots: { "after" => "after the child ended (taken also when the spawn was refused)" },
    spawns: { "cow_write" as "child" => "writes `writes` of the shared pages, takes snapshot `written`" },
    exit: "0; 1 when the spawn was refused (the console says why)",
}

/// The shared region (also known to cow_write).
const REGION: usize = 0x2000_0000;

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let pages = (args.pages as usize).clamp(1, 1024);
    let writes = (args.writes as usize).min(pages);
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
    if let Some(headroom) = args.headroom {
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
    if let Err(error) = child {
        check!(is_refusal(error), "spawn: {}", error.name());
    }
    let ended = child.map(wait);
    check!(snapshot("after").is_ok(), "snapshot");
    match ended {
        Ok(Ok(Waited::Exited(code))) => println!("cow_share: child exited with {}", code),
        Ok(Ok(Waited::Stopped)) => println!("cow_share: child was stopped"),
        Ok(Err(error)) => println!("cow_share: wait failed: {}", error.name()),
        Err(error) => {
            println!("cow_share: spawn refused: {}", error.name());
            return 1;
        }
    }
    0
}

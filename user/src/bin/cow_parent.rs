//! cow-fork, parent side: maps and writes `pages` (default 64) pages, spawns `child` (program
//! `cow_child`, in the charge set behind capability 0) sharing them copy-on-write and telling
//! it to write `writes` (default 16) of them, waits for it, then checks that its own pages
//! were not changed by the child's writes. How the child ended is reported, not judged.
#![no_std]
#![no_main]

use user::{check, map, println, spawn, wait, SharedRegion, MAP_WRITE};

user::program! {
    description: "Maps `pages` pages at 0x2000_0000 and writes each, spawns `cow_child` sharing them copy-on-write (telling it, in words 1 and 2 of the first page, to write `writes` of them), waits for it, then checks that its own pages still hold what it wrote.",
    caps: { 0: set => "the charge set the child is spawned into" },
    args: {
        pages: 64 => "pages to map, write and share (1 to 1024)",
        writes: 16 => "shared pages the child writes: copy-on-write copies (at most `pages`)",
    },
    spawns: { "cow_child" as "child" => "checks the shared pages, writes `writes` of them, takes snapshot `shared`" },
    exit: "0; 1 when the spawn was refused (the console says why)",
}

/// The shared region (also known to cow_child).
const REGION: usize = 0x2000_0000;

fn pattern(page: usize) -> u64 {
    0xC0FFEE00 + page as u64
}

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let pages = args.pages.clamp(1, 1024) as usize;
    let writes = args.writes.min(pages as u64);
    check!(map(REGION, pages, MAP_WRITE).is_ok(), "map");
    for page in 0..pages {
        // SAFETY: the region was just mapped writable.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(pattern(page)) };
    }
    // SAFETY: as above; the child reads its orders from words 1 and 2 of the first page.
    unsafe {
        ((REGION + 8) as *mut u64).write_volatile(writes);
        ((REGION + 16) as *mut u64).write_volatile(pages as u64);
    }
    let regions = [SharedRegion {
        address: REGION,
        pages,
    }];
    let child = match spawn("cow_child", "child", 0, &regions) {
        Ok(cap) => cap,
        Err(e) => {
            println!("spawn failed: {}", e.name());
            return 1;
        }
    };
    let ended = wait(child);
    for page in 0..pages {
        // SAFETY: mapped above; the parent's view must be unchanged by the child.
        let value = unsafe { ((REGION + page * 4096) as *const u64).read_volatile() };
        check!(
            value == pattern(page),
            "parent page {} changed to {:#x}",
            page,
            value
        );
    }
    println!(
        "parent: {} pages intact after the child ({:?}) wrote {}",
        pages, ended, writes
    );
    0
}

//! cow-release, parent side: maps and writes `pages` (default 64) pages, spawns `child`
//! (program `release_child`, charge set behind capability 0) sharing them, tells it to write
//! `writes` (default 16) of them, and exits at once.
#![no_std]
#![no_main]

use user::{map, println, spawn, SharedRegion, MAP_WRITE};

user::program! {
    description: "Maps `pages` pages at 0x2000_0000 and writes each, spawns `release_child` sharing them copy-on-write (telling it, in words 1 and 2 of the first page, to write `writes` of them once the parent is gone), and exits at once: the child outlives the payer of the shared pages.",
    caps: { 0: set => "the charge set the child is spawned into" },
    args: {
        pages: 64 => "pages to map, write and share (1 to 1024)",
        writes: 16 => "pages the child writes after the parent has exited (at most `pages`)",
    },
    spawns: { "release_child" as "child" => "waits for the parent to exit, writes `writes` pages, takes snapshot `orphaned`" },
    exit: "0; 1 when the spawn was refused (the console says why)",
}

const REGION: usize = 0x2000_0000;

#[no_mangle]
fn main() -> i32 {
    let args = Args::get();
    let pages = args.pages.clamp(1, 1024) as usize;
    user::check!(map(REGION, pages, MAP_WRITE).is_ok(), "map");
    for page in 0..pages {
        // SAFETY: the region was just mapped writable.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(0xA11CE000 + page as u64) };
    }
    // SAFETY: as above; the child reads its orders from words 1 and 2 of the first page.
    unsafe {
        ((REGION + 8) as *mut u64).write_volatile(args.writes.min(pages as u64));
        ((REGION + 16) as *mut u64).write_volatile(pages as u64);
    }
    let regions = [SharedRegion {
        address: REGION,
        pages,
    }];
    match spawn("release_child", "child", 0, &regions) {
        Ok(_) => 0,
        Err(error) => {
            println!("release_parent: spawn refused: {}", error.name());
            1
        }
    }
}

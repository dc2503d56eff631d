//! The first domain: prints a greeting through the console system call, maps and writes
//! `pages` (default 4) demand-zero pages, asks for a report snapshot, and exits.
#![no_std]
#![no_main]

use user::{check, map, println, snapshot, MAP_WRITE};

user::program! {
    description: "Prints a greeting, maps `pages` demand-zero pages at 0x1000_0000 and writes one word into each (`pages` anon frames), takes snapshot `hello` and exits.",
    args: { pages: 4 => "demand-zero pages to map and write (at most 65536)" },
    snapshots: { "hello" => "after writing the pages" },
    exit: "0",
}

const BASE: usize = 0x1000_0000;

#[no_mangle]
fn main() -> i32 {
    let pages = Args::get().pages.min(65536) as usize;
    println!("hello from EL0: Tally charges every frame to someone");
    check!(map(BASE, pages, MAP_WRITE).is_ok(), "map failed");
    for page in 0..pages {
        let p = (BASE + page * 4096) as *mut u64;
        // SAFETY: the pages at `BASE` were just mapped writable.
        unsafe { p.write_volatile(page as u64) };
    }
    check!(snapshot("hello").is_ok(), "snapshot failed");
    println!("goodbye");
    0
}

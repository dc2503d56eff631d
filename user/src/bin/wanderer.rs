//! Writes one word to each of `pages` pages from 0x5000_0000 up without mapping them first:
//! every first store into an unmapped stretch is a fault in no region. Without a keeper the
//! kernel stops it at the first one; a keeper that maps memory there lets it go on.
#![no_std]
#![no_main]

use user::println;

user::program! {
    description: "Writes one word to each of `pages` pages from 0x5000_0000 up, without mapping any: the first store is a fault in no region. Without a keeper the kernel stops it there (`fault`); with a keeper that maps memory into it (`keeper`'s `map_pages`), each fault is resolved and the store retried, and it exits with the sum of the words it reads back.",
    args: { pages: 16 => "pages to write (at most 4096)" },
    exit: "the number of pages whose word read back right",
}

const REGION: usize = 0x5000_0000;

#[no_mangle]
fn main() -> i32 {
    let pages = Args::get().pages.min(4096) as usize;
    for page in 0..pages {
        // SAFETY: an address in no region until the keeper maps one there; a fault its keeper
        // does not resolve stops this domain.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(page as u64 + 1) };
    }
    let right = (0..pages)
        // SAFETY: every page was written above.
        .filter(|&page| unsafe { ((REGION + page * 4096) as *const u64).read_volatile() } == page as u64 + 1)
        .count();
    println!("wanderer: {right} of {pages} pages read back");
    right as i32
}

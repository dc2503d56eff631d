//! over-limit: touches page after page of a large region until the kernel stops it for
//! exceeding its charge set's limit. Under a limit it never reaches its exit.
#![no_std]
#![no_main]

use user::{check, map, println, MAP_WRITE};

user::program! {
    description: "Maps `pages` pages at 0x4000_0000 and writes one page after another: under a limit smaller than that, the kernel stops it (`over-limit`) at the first page its set cannot pay for.",
    args: { pages: 4096 => "pages to touch (at most 262144)" },
    exit: "1 when it touched every page without being stopped (it is normally stopped first)",
}

const REGION: usize = 0x4000_0000;

#[no_mangle]
fn main() -> i32 {
    let pages = Args::get().pages.min(1 << 18) as usize;
    check!(map(REGION, pages, MAP_WRITE).is_ok(), "map");
    for page in 0..pages {
        // SAFETY: mapped writable above; a fault past the limit stops this domain.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(page as u64) };
    }
    println!("hog: touched every page without being stopped");
    1
}

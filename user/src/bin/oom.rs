//! Global memory exhaustion: touches page after page of a 1 GiB region in a charge set without
//! a limit until the machine has no free frame; the kernel stops it with reason
//! out-of-memory and carries on.
#![no_std]
#![no_main]

use user::{check, map, MAP_WRITE};

user::program! {
    description: "Maps `pages` pages at 0x4000_0000 and writes one page after another; in a set without a limit and with fewer free frames than that, the kernel stops it (`out-of-memory`) when no frame is left.",
    args: { pages: 262144 => "pages to touch (1 GiB by default; at most 262144)" },
    exit: "1 when it touched every page without being stopped",
}

const REGION: usize = 0x4000_0000;

#[no_mangle]
fn main() -> i32 {
    let pages = Args::get().pages.min(1 << 18) as usize;
    check!(map(REGION, pages, MAP_WRITE).is_ok(), "map");
    for page in 0..pages {
        // SAFETY: mapped writable above.
        unsafe { ((REGION + page * 4096) as *mut u64).write_volatile(page as u64) };
    }
    1
}

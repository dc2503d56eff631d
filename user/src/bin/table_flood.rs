//! table-flood: maps 3 GiB at 0x40_0000_0000 and writes one word into each of `slots` (default
//! 1100) distinct 2 MiB slots, then exits. Each slot needs a level-3 table of its own and each
//! 1 GiB slot a level-2 table: more than 1024 page-table frames, which teardown once collected
//! into a fixed list of 1024 and so leaked the rest (issue 10, bug 1). Snapshots `before` and
//! `after` bracket the writes.
#![no_std]
#![no_main]

use user::{check, map, snapshot, MAP_WRITE};

user::program! {
    description: "Maps 3 GiB at 0x40_0000_0000, takes snapshot `before`, writes one word into each of `slots` distinct 2 MiB slots (each needs a level-3 table of its own, each 1 GiB a level-2 table: `slots` anon frames and `slots` + ceil(`slots`/512) page-table frames), takes snapshot `after` and exits; teardown must return every table.",
    args: { slots: 1100 => "2 MiB slots to touch (at most 1536)" },
    snapshots: {
        "before" => "after mapping, before the first write",
        "after" => "after the last write",
    },
    exit: "0",
}

const BASE: usize = 0x40_0000_0000;
const SPAN_PAGES: usize = 3 << 18; // 3 GiB
const SLOT: usize = 2 << 20;

#[no_mangle]
fn main() -> i32 {
    let slots = Args::get().slots as usize;
    check!(slots <= 3 * 512, "at most 1536 slots fit in 3 GiB");
    check!(map(BASE, SPAN_PAGES, MAP_WRITE).is_ok(), "map 3 GiB");
    check!(snapshot("before").is_ok(), "snapshot");
    for slot in 0..slots {
        // SAFETY: inside the region mapped writable above.
        unsafe { ((BASE + slot * SLOT) as *mut u64).write_volatile(slot as u64) };
    }
    check!(snapshot("after").is_ok(), "snapshot");
    0
}

//! pagetable-sprawl: touches one page in each of `slots` (default 8) distinct 1 GiB slots that
//! share no slot with anything else mapped (image at 4 MiB in slot 0, stack in slot 511), so
//! each needs a new level-2 and level-3 table: `pagetables` grows by exactly 2 × `slots` frames
//! between snapshots `before` and `after`.
#![no_std]
#![no_main]

use user::{check, map, snapshot, MAP_WRITE};

user::program! {
    description: "Maps one region from 2 GiB over `slots` fresh 1 GiB slots 3 GiB apart (slot 2, 5, 8, ...: none shares a table with the image or the stack; mapping charges nothing), takes snapshot `before`, then writes one page in each slot, so each costs one `anon` frame and two page-table frames (a level-2 and a level-3 table), and takes snapshot `after`.",
    args: { slots: 8 => "1 GiB slots to touch (at most 170)" },
    snapshots: {
        "before" => "before the first page",
        "after" => "after the last page",
    },
    exit: "0",
}

const GIB: usize = 1 << 30;

#[no_mangle]
fn main() -> i32 {
    let slots = Args::get().slots as usize;
    check!(slots <= 170, "at most 170 slots fit below the stack's");
    // One region (a domain holds at most 16): from slot 2 to the end of the last slot used.
    if slots > 0 {
        let pages = (3 * (slots - 1) + 1) * (GIB / 4096);
        check!(map(2 * GIB, pages, MAP_WRITE).is_ok(), "map");
    }
    check!(snapshot("before").is_ok(), "snapshot");
    for slot in 0..slots {
        let address = (2 + slot * 3) * GIB;
        // SAFETY: inside the region mapped writable above.
        unsafe { (address as *mut u64).write_volatile(slot as u64) };
    }
    check!(snapshot("after").is_ok(), "snapshot");
    0
}

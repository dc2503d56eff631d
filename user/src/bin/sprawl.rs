//! pagetable-sprawl: touches one page in each of 8 distinct 1 GiB slots that share no slot
//! with anything else mapped (image at 4 MiB in slot 0, stack in slot 511), so each needs a
//! new level-2 and level-3 table: `pagetables` grows by exactly 16 frames between snapshots
//! `before` and `after`.
#![no_std]
#![no_main]

use user::{check, map, snapshot, MAP_WRITE};

const GIB: usize = 1 << 30;

#[no_mangle]
fn main() -> i32 {
    check!(snapshot("before").is_ok(), "snapshot");
    for slot in 0..8 {
        let address = (2 + slot * 3) * GIB;
        check!(map(address, 1, MAP_WRITE).is_ok(), "map slot {}", slot);
        // SAFETY: just mapped writable.
        unsafe { (address as *mut u64).write_volatile(slot as u64) };
    }
    check!(snapshot("after").is_ok(), "snapshot");
    0
}

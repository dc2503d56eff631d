//! Benchmark (bench/memory.toml): instructions per demand-zero page fault and per page-table
//! frame, whole path (EL0 + EL1), read from the instruction counter.
//!
//! Each figure is the difference of two passes of the same loop over the same addresses: the
//! first pass faults on every page, the second finds every page present, so the loop's own
//! instructions cancel and what is left is the fault path (exception entry, populate: frame
//! allocation, charge, zeroing, table update, return).
//! - `demand_zero_fault`: 256 fresh pages of one 2 MiB block whose level-3 table exists.
//! - `pagetable_frame`: one fresh page in each of 64 fresh 2 MiB blocks of a 1 GiB slot whose
//!   level-2 table exists (each needs one new level-3 table), minus a demand-zero fault.
//! - `pagetable_frame_1g`: one fresh page in each of 16 fresh 1 GiB slots (each needs a new
//!   level-2 and level-3 table), minus a demand-zero fault, per table.
#![no_std]
#![no_main]

use user::{check, instructions, map, print_bench, MAP_WRITE};

user::program! {
    description: "Benchmark (bench/memory.toml): instructions per demand-zero page fault (`demand_zero_fault`) and per page-table frame (`pagetable_frame`, `pagetable_frame_1g`).",
    exit: "0",
}

const PAGE: usize = 4096;
const BLOCK: usize = 2 << 20;
const GIB: usize = 1 << 30;

/// In 1 GiB slot 0 (the program image's slot, so its level-2 table exists), 2 MiB aligned.
const FAULT_BASE: usize = 0x2000_0000;
const FAULT_PAGES: usize = 256;
/// 1 GiB slot 1: its first block is touched first (level-2 and level-3 tables), then the
/// first page of each following block needs one new level-3 table.
const BLOCKS_BASE: usize = GIB;
const BLOCKS: usize = 64;
/// 1 GiB slots 64..80: nothing else lives there.
const SLOTS_BASE: usize = 64 * GIB;
const SLOTS: usize = 16;

fn touch(address: usize) {
    // SAFETY: every address touched lies in a region mapped writable by `main`.
    unsafe { (address as *mut u64).write_volatile(address as u64) };
}

/// Instructions taken to write one word at `first + i × stride` for `i` in `0..count`.
#[inline(never)]
fn sweep(first: usize, stride: usize, count: usize) -> i64 {
    let start = instructions();
    for i in 0..count {
        touch(first + i * stride);
    }
    (instructions() - start) as i64
}

/// Instructions of the faulting pass minus those of the same pass over present pages.
fn faults(first: usize, stride: usize, count: usize) -> i64 {
    let faulting = sweep(first, stride, count);
    let present = sweep(first, stride, count);
    faulting - present
}

#[no_mangle]
fn main() -> i32 {
    check!(
        map(FAULT_BASE, 1 + FAULT_PAGES, MAP_WRITE).is_ok(),
        "map fault region"
    );
    check!(
        map(BLOCKS_BASE, (1 + BLOCKS) * BLOCK / PAGE, MAP_WRITE).is_ok(),
        "map block region"
    );
    check!(
        map(SLOTS_BASE, SLOTS * GIB / PAGE, MAP_WRITE).is_ok(),
        "map slot region"
    );
    // Warm the measuring code's own stack and the tables of the first two regions.
    touch(FAULT_BASE);
    touch(BLOCKS_BASE);
    let _ = sweep(FAULT_BASE, PAGE, 1);

    let page_faults = faults(FAULT_BASE + PAGE, PAGE, FAULT_PAGES);
    let block_faults = faults(BLOCKS_BASE + BLOCK, BLOCK, BLOCKS);
    let slot_faults = faults(SLOTS_BASE, GIB, SLOTS);

    let pages = FAULT_PAGES as i64;
    print_bench("demand_zero_fault", page_faults, pages);
    // (block_faults / BLOCKS − page_faults / pages) per block, one table each.
    print_bench(
        "pagetable_frame",
        block_faults * pages - page_faults * BLOCKS as i64,
        BLOCKS as i64 * pages,
    );
    // (slot_faults / SLOTS − page_faults / pages) / 2 per table, two tables per slot.
    print_bench(
        "pagetable_frame_1g",
        slot_faults * pages - page_faults * SLOTS as i64,
        SLOTS as i64 * pages * 2,
    );
    0
}

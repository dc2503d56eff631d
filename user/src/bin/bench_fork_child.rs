//! Benchmark (bench/fork.toml), child side. Spawned twice by `bench_fork`: once sharing
//! nothing (it exits at once) and once with the parent's 1024 populated pages shared
//! copy-on-write at the same address, where it measures `cow_fault`: instructions per write
//! fault on a shared page, 4 KiB copy included (256 pages; the same loop over the then
//! private pages is subtracted).
#![no_std]
#![no_main]

use user::{check, instructions, map, print_bench, MAP_WRITE};

user::program! {
    description: "Benchmark (bench/fork.toml), spawned by `bench_fork`: exits at once when it shares nothing; otherwise measures `cow_fault`, instructions per write fault on a shared page, 4 KiB copy included.",
    caps: { 0: dom => "the parent (given by spawn)" },
    exit: "0",
}

/// The parent's shared region (see bench_fork).
const REGION: usize = 0x2000_0000;
const WRITES: usize = 256;

/// Instructions taken to write one word into each of `count` pages from `first`.
#[inline(never)]
fn sweep(first: usize, count: usize) -> i64 {
    let start = instructions();
    for page in 0..count {
        let address = first + page * 4096;
        // SAFETY: the parent shared this region with us, read-write (copy-on-write).
        unsafe { (address as *mut u64).write_volatile(!(address as u64)) };
    }
    (instructions() - start) as i64
}

#[no_mangle]
fn main() -> i32 {
    // The child that shares nothing can map the region's address itself; the sharing one
    // finds it taken by the shared region.
    if map(REGION, 1, MAP_WRITE).is_ok() {
        return 0;
    }
    // SAFETY: shared by the parent.
    let first = unsafe { (REGION as *const u64).read_volatile() };
    check!(first == REGION as u64, "shared page holds {:#x}", first);
    let faulting = sweep(REGION, WRITES);
    let present = sweep(REGION, WRITES);
    print_bench("cow_fault", faulting - present, WRITES as i64);
    0
}

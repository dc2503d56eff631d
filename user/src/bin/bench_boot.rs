//! Benchmark (bench/boot.toml, 4 GiB of RAM): reads the instruction counter first thing, so
//! `boot_to_el0` is the instructions from the kernel's first Rust code (which starts the
//! counter, after boot.s) to this program's first instructions: device tree, boot config,
//! frame table for every RAM frame, the `start` snapshot, domain creation, the first switch.
#![no_std]
#![no_main]

use user::{instructions, println};

user::program! {
    description: "Benchmark `boot_to_el0` (bench/boot.toml): prints the instruction count at its first instruction, from the kernel's first Rust code.",
    exit: "0",
}

#[no_mangle]
fn main() -> i32 {
    let at = instructions();
    println!("BENCH boot_to_el0 {}.00", at);
    0
}

//! Benchmark (bench/calibrate.toml): checks that the instruction counter counts instructions.
//! `counter_read` is the difference of two back-to-back reads (`mrs`; `mrs`: 1);
//! `calibration_loop` is a loop of exactly 2001 instructions (`mov` + 1000 × `subs`, `b.ne`)
//! between two reads, minus `counter_read`: under `-icount shift=0` it must be exactly 2001.
//! Both are single `asm!` blocks, so the compiler cannot put anything between the reads.
#![no_std]
#![no_main]

use core::arch::asm;
use user::println;

user::program! {
    description: "Benchmark calibration (bench/calibrate.toml): `counter_read` (two back-to-back counter reads) and `calibration_loop` (exactly 2001 instructions between two reads).",
    exit: "0",
}

#[no_mangle]
fn main() -> i32 {
    let (first, second): (u64, u64);
    // SAFETY: reads PMCCNTR_EL0 twice (the kernel lets EL0 read it); no side effects.
    unsafe {
        asm!(
            "mrs {first}, pmccntr_el0",
            "mrs {second}, pmccntr_el0",
            first = out(reg) first,
            second = out(reg) second,
            options(nostack, nomem),
        )
    };
    let read = second - first;
    let (start, end): (u64, u64);
    // SAFETY: as above; the loop changes only x9 and the flags.
    unsafe {
        asm!(
            "mrs {start}, pmccntr_el0",
            "mov x9, #1000",
            "2: subs x9, x9, #1",
            "b.ne 2b",
            "mrs {end}, pmccntr_el0",
            start = out(reg) start,
            end = out(reg) end,
            out("x9") _,
            options(nostack, nomem),
        )
    };
    let looped = end - start - read;
    println!("BENCH counter_read {}.00", read);
    println!("BENCH calibration_loop {}.00", looped);
    0
}

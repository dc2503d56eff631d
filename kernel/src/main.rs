//! Tally: a capability microkernel for AArch64 that charges every physical frame it hands out
//! to a charge set, under policies chosen at boot. See README.md and ../docs.
//!
//! Boot path: boot.s (Image header, EL2 → EL1, BSS, boot page tables, MMU) → [`kernel_entry`]
//! → `boot::init`, which never returns: it enters the first domain, and from then on the
//! kernel runs only in exception handlers (kernel.rs) until the last domain ends the run.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

mod arch;
mod board;
mod boot;
mod charge;
mod console;
mod ipc;
mod kernel;
mod lifecycle;
mod memory;
mod object;
mod panic;
mod programs;
mod report;
mod sched;
mod syscall;
mod trap;

/// Called by boot.s on the boot stack, MMU on, with the device tree's physical address.
#[no_mangle]
pub extern "C" fn kernel_entry(dtb_pa: usize) -> ! {
    boot::init(dtb_pa)
}

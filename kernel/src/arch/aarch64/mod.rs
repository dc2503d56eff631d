//! AArch64 architecture support: boot and vector assembly, trap frames, translation-table
//! descriptors, TLB maintenance, the PMU instruction counter and semihosting exit.
//!
//! Generic kernel code calls the small safe functions here and never names a register.

pub mod cpu;
pub mod exception;
pub mod mmu;
pub mod timer;

core::arch::global_asm!(include_str!("boot.s"));
core::arch::global_asm!(include_str!("vectors.s"));
core::arch::global_asm!(include_str!("page.s"));

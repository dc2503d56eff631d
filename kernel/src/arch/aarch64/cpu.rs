//! CPU-level helpers: waiting for interrupts, the instruction counter, lazy FP/SIMD switching
//! and leaving QEMU with a status through semihosting.
//!
//! `aarch64-cpu` has no PMU registers, so the three PMU accesses below use `mrs`/`msr`
//! directly (ARM ARM D13.4, "Performance Monitors registers").

use aarch64_cpu::asm;
use aarch64_cpu::registers::{Readable, Writeable, CPACR_EL1};
use core::arch::asm;

/// Waits for an interrupt (which wakes the core even while IRQs are masked at EL1).
pub fn wait_for_interrupt() {
    asm::wfi();
}

/// Starts the cycle counter for EL0 and EL1 and lets EL0 read it. Under `-icount shift=0` QEMU advances it by one
/// per guest instruction, so it counts instructions exactly and deterministically.
pub fn start_instruction_counter() {
    // SAFETY: writes PMU control registers only; PMCR_EL0.E|C|LC, PMCCFILTR_EL0 = count at
    // EL0 and EL1, PMCNTENSET_EL0.C. No memory is touched.
    unsafe {
        asm!("msr pmccfiltr_el0, {f}", f = in(reg) 0u64, options(nomem, nostack));
        asm!("msr pmcr_el0, {v}", v = in(reg) (1u64 << 0) | (1 << 2) | (1 << 6), options(nomem, nostack));
        asm!("msr pmcntenset_el0, {v}", v = in(reg) 1u64 << 31, options(nomem, nostack));
        // PMUSERENR_EL0.EN | CR: EL0 may read the cycle counter (benchmark programs count
        // their own instructions; reading it changes nothing).
        asm!("msr pmuserenr_el0, {v}", v = in(reg) (1u64 << 0) | (1 << 2), options(nomem, nostack));
        asm!("isb", options(nomem, nostack));
    }
}

/// Guest instructions retired since boot (see [`start_instruction_counter`]).
pub fn instructions() -> u64 {
    let value: u64;
    // SAFETY: reading PMCCNTR_EL0 has no side effects.
    unsafe { asm!("mrs {v}, pmccntr_el0", v = out(reg) value, options(nomem, nostack)) };
    value
}

/// Lets EL0 use FP/SIMD without trapping (CPACR_EL1.FPEN = 0b11); writes CPACR_EL1 only when
/// that changes it.
///
/// No `isb` follows the write: FPEN is 0b01 or 0b11, both of which let EL1 use the FP/SIMD
/// registers (the lazy switch's save and restore), so the write only changes what EL0 may do,
/// and the `eret` that returns to EL0 is a context synchronization event (ARM ARM D1.4 /
/// "Context synchronization event"), after which EL0 sees the new value.
pub fn fp_enable_for_user() {
    if CPACR_EL1.get() != 3 << 20 {
        CPACR_EL1.set(3 << 20);
    }
}

/// Makes EL0's next FP/SIMD instruction trap (CPACR_EL1.FPEN = 0b01), for lazy switching;
/// synchronized by the `eret` to EL0, as [`fp_enable_for_user`].
pub fn fp_trap_for_user() {
    if CPACR_EL1.get() != 1 << 20 {
        CPACR_EL1.set(1 << 20);
    }
}

/// FP/SIMD register state of one domain: q0..q31, FPCR, FPSR.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FpState {
    q: [u128; 32],
    fpcr: u64,
    fpsr: u64,
}

impl FpState {
    /// The state a new domain starts with.
    pub const ZERO: FpState = FpState {
        q: [0; 32],
        fpcr: 0,
        fpsr: 0,
    };
}

extern "C" {
    fn fp_save(state: *mut FpState);
    fn fp_restore(state: *const FpState);
}

/// Saves the live FP/SIMD registers into `state`.
pub fn save_fp(state: &mut FpState) {
    // SAFETY: `state` is a valid, aligned, writable FpState of the layout fp_save writes;
    // EL1 may access FP registers (FPEN is never 0b00).
    unsafe { fp_save(state) }
}

/// Loads the FP/SIMD registers from `state`.
pub fn restore_fp(state: &FpState) {
    // SAFETY: `state` is a valid, aligned FpState; see save_fp.
    unsafe { fp_restore(state) }
}

/// Ends the QEMU run with `status` as QEMU's exit code (semihosting `SYS_EXIT`, ARM
/// semihosting spec 6.5 with `ADP_Stopped_ApplicationExit`), or powers off through PSCI
/// `SYSTEM_OFF` (status 0 only) when semihosting is not enabled.
pub fn exit_qemu(status: u32) -> ! {
    let block: [u64; 2] = [0x20026, status as u64];
    // SAFETY: the semihosting call reads the two-word block; it does not return when QEMU
    // runs with -semihosting. Without it, HLT would trap: we never get here without it in
    // practice, but fall through to PSCI either way.
    unsafe {
        asm!("hlt #0xf000", in("x0") 0x18u64, in("x1") block.as_ptr(), options(nostack));
        // PSCI SYSTEM_OFF (function id 0x8400_0008) through the hypervisor call conduit.
        asm!("hvc #0", in("x0") 0x8400_0008u64, options(nomem, nostack));
    }
    loop {
        wait_for_interrupt();
    }
}

/// Masks IRQs at EL1 (the kernel always runs with them masked).
pub fn mask_irqs() {
    // SAFETY: setting DAIF.I only masks interrupts.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
}

/// Reads the exception syndrome, fault address and exception link registers.
pub fn fault_registers() -> (u64, u64, u64) {
    use aarch64_cpu::registers::{ELR_EL1, ESR_EL1, FAR_EL1};
    (ESR_EL1.get(), FAR_EL1.get(), ELR_EL1.get())
}

extern "C" {
    fn zero_blocks_zva(start: *mut u8, block_bytes: usize, end: *mut u8);
    fn zero_blocks_stp(start: *mut u8, end: *mut u8);
    fn copy_page(destination: *mut u8, source: *const u8);
}

/// DC ZVA's block size in bytes, or 0 when DC ZVA is prohibited (DCZID_EL0, ARM ARM D17.2.34).
fn zero_block_bytes() -> usize {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { asm!("mrs {v}, dczid_el0", v = out(reg) dczid, options(nomem, nostack)) };
    if dczid & (1 << 4) != 0 {
        0
    } else {
        4 << (dczid & 0xf)
    }
}

/// Zeroes one 4 KiB page.
///
/// # Safety
/// `page` must be the kernel address of a whole, page-aligned, normal-memory page that the
/// caller owns.
pub unsafe fn zero_page(page: *mut u8) {
    // SAFETY: the caller's guarantee.
    unsafe { zero_page_prefix(page, 4096) }
}

/// Zeroes at least the first `bytes` bytes of a 4 KiB page: a whole number of DC ZVA blocks
/// (or of 64 bytes), never past the page.
///
/// # Safety
/// As for [`zero_page`]; `bytes` at most 4096.
pub unsafe fn zero_page_prefix(page: *mut u8, bytes: usize) {
    let block = zero_block_bytes();
    if (16..=4096).contains(&block) {
        let length = bytes.next_multiple_of(block).clamp(block, 4096);
        // SAFETY: the caller's guarantee; the block size divides 4096, so `length` does not
        // pass the page's end.
        unsafe { zero_blocks_zva(page, block, page.add(length)) }
    } else {
        let length = bytes.next_multiple_of(64).clamp(64, 4096);
        // SAFETY: the caller's guarantee; 64 divides 4096.
        unsafe { zero_blocks_stp(page, page.add(length)) }
    }
}

/// Copies one 4 KiB page.
///
/// # Safety
/// Both must be kernel addresses of whole, page-aligned pages; `destination` owned by the
/// caller and distinct from `source`.
pub unsafe fn copy_whole_page(destination: *mut u8, source: *const u8) {
    // SAFETY: the caller's guarantee.
    unsafe { copy_page(destination, source) }
}

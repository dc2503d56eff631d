//! Exception entry from the vector table (vectors.s): the trap frame, syndrome decoding and
//! the dispatch to the generic kernel. From EL0 the registers are saved straight into the
//! current domain's control block (TPIDR_EL1 holds the address of its [`TrapFrame`]); the
//! generic kernel reads and writes them there, and switches domains with
//! [`set_current_frame`]. Exceptions taken from EL1 are kernel bugs: they print the decoded
//! syndrome, fault address and return address, then exit QEMU with status 2.

use super::cpu;
use core::fmt;

/// The registers saved on every exception (layout fixed by vectors.s).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// The user stack pointer.
    pub sp_el0: u64,
    /// Where the exception returns to.
    pub elr: u64,
    /// The saved processor state.
    pub spsr: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 272);

/// The registers that carry a register-sized message.
const MESSAGE_WORDS: core::ops::Range<usize> =
    abi::REGISTER_WORDS_AT..abi::REGISTER_WORDS_AT + abi::REGISTER_MESSAGE_WORDS;

impl TrapFrame {
    /// The system-call number (x8).
    #[inline(always)]
    pub fn syscall_number(&self) -> usize {
        self.x[8] as usize
    }

    /// The general registers, the stack pointer, the return address and the saved processor
    /// state, for a debugger (`domain_status`).
    pub fn user_registers(&self) -> ([u64; 31], u64, u64, u64) {
        (self.x, self.sp_el0, self.elr, self.spsr)
    }

    /// System-call argument `i` (x0..x5).
    #[inline(always)]
    pub fn argument(&self, i: usize) -> usize {
        self.x[i] as usize
    }

    /// The first five system-call arguments.
    #[inline(always)]
    pub fn arguments(&self) -> [usize; 5] {
        [
            self.x[0] as usize,
            self.x[1] as usize,
            self.x[2] as usize,
            self.x[3] as usize,
            self.x[4] as usize,
        ]
    }

    /// Sets what the system call returns (x0).
    #[inline(always)]
    pub fn set_result(&mut self, value: u64) {
        self.x[0] = value;
    }

    /// Where the domain resumes (the exception's return address).
    #[inline(always)]
    pub fn pc(&self) -> usize {
        self.elr as usize
    }

    /// Makes the system call this frame returns from run again from the beginning: the
    /// domain resumes at its `svc` (the arguments are still in their registers).
    #[inline(always)]
    pub fn restart_system_call(&mut self) {
        self.elr -= 4;
    }

    /// The words of a register-sized message (x3..x6).
    #[inline(always)]
    pub fn message_words(&self) -> [u64; abi::REGISTER_MESSAGE_WORDS] {
        let mut words = [0; abi::REGISTER_MESSAGE_WORDS];
        words.copy_from_slice(&self.x[MESSAGE_WORDS]);
        words
    }

    /// Sets the words of a register-sized message.
    #[inline(always)]
    pub fn set_message_words(&mut self, words: &[u64; abi::REGISTER_MESSAGE_WORDS]) {
        self.x[MESSAGE_WORDS].copy_from_slice(words);
    }

    /// Copies the register-sized message of `from` into this frame.
    #[inline(always)]
    pub fn copy_message_from(&mut self, from: &TrapFrame) {
        self.x[MESSAGE_WORDS].copy_from_slice(&from.x[MESSAGE_WORDS]);
    }

    /// A frame that starts EL0 at `entry` with stack `stack_top`, IRQs unmasked (SPSR = EL0t).
    pub fn new_user(entry: usize, stack_top: usize) -> Self {
        TrapFrame {
            x: [0; 31],
            sp_el0: stack_top as u64,
            elr: entry as u64,
            spsr: 0,
        }
    }
}

/// Where an exception came from (the `kind` vectors.s passes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Synchronous exception in the kernel.
    KernelSync,
    /// IRQ while in the kernel (never expected: the kernel runs with IRQs masked).
    KernelIrq,
    /// FIQ or SError in the kernel.
    KernelError,
    /// Synchronous exception from a domain (system call, fault).
    UserSync,
    /// IRQ while a domain ran.
    UserIrq,
    /// FIQ or SError while a domain ran.
    UserError,
    /// EL1 with SP_EL0, or AArch32 EL0: never used.
    Unsupported,
}

impl Source {
    fn from_kind(kind: u64) -> Source {
        match kind {
            0 => Source::KernelSync,
            1 => Source::KernelIrq,
            2 => Source::KernelError,
            3 => Source::UserSync,
            4 => Source::UserIrq,
            5 => Source::UserError,
            _ => Source::Unsupported,
        }
    }
}

/// Exception classes Tally handles (ESR_ELx.EC, ARM ARM D17.2.37).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// `svc` from AArch64.
    SystemCall,
    /// Data abort from a lower EL.
    DataAbort,
    /// Instruction abort from a lower EL.
    InstructionAbort,
    /// FP/SIMD access trapped by CPACR_EL1.FPEN.
    FpAccess,
    /// Anything else, with its raw class.
    Other(u32),
}

/// A decoded ESR_EL1.
#[derive(Clone, Copy)]
pub struct Syndrome(pub u64);

impl Syndrome {
    /// The exception class field.
    pub fn class_bits(self) -> u32 {
        ((self.0 >> 26) & 0x3f) as u32
    }

    /// The class Tally distinguishes.
    pub fn class(self) -> Class {
        match self.class_bits() {
            0x15 => Class::SystemCall,
            0x24 => Class::DataAbort,
            0x20 => Class::InstructionAbort,
            0x07 => Class::FpAccess,
            other => Class::Other(other),
        }
    }

    /// For aborts: a write caused it (ISS.WnR).
    pub fn is_write(self) -> bool {
        self.class() == Class::DataAbort && self.0 & (1 << 6) != 0
    }

    /// For aborts: a translation fault (no valid descriptor), as opposed to a permission or
    /// access-flag fault (ISS.DFSC/IFSC = 0b0001xx).
    pub fn is_translation_fault(self) -> bool {
        self.0 & 0x3c == 0x04
    }

    /// For aborts: a permission fault (0b0011xx).
    pub fn is_permission_fault(self) -> bool {
        self.0 & 0x3c == 0x0c
    }

    fn class_name(self) -> &'static str {
        match self.class_bits() {
            0x00 => "unknown reason",
            0x01 => "trapped WFI/WFE",
            0x07 => "FP/SIMD access",
            0x0e => "illegal execution state",
            0x15 => "SVC from AArch64",
            0x18 => "trapped MSR/MRS",
            0x20 => "instruction abort from a lower EL",
            0x21 => "instruction abort at the same EL",
            0x22 => "PC alignment fault",
            0x24 => "data abort from a lower EL",
            0x25 => "data abort at the same EL",
            0x26 => "SP alignment fault",
            0x2f => "SError",
            0x3c => "BRK instruction",
            _ => "other",
        }
    }
}

impl fmt::Display for Syndrome {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "ESR {:#010x} (EC {:#04x}: {}",
            self.0,
            self.class_bits(),
            self.class_name()
        )?;
        if matches!(self.class_bits(), 0x20 | 0x21 | 0x24 | 0x25) {
            let status = self.0 & 0x3f;
            let what = match status & 0x3c {
                0x04 => "translation fault",
                0x08 => "access flag fault",
                0x0c => "permission fault",
                0x10 => "synchronous external abort",
                _ => "other fault",
            };
            write!(f, ", {what} at level {}", status & 3)?;
            if self.0 & (1 << 6) != 0 {
                write!(f, ", on a write")?;
            }
        }
        write!(f, ")")
    }
}

extern "C" {
    fn enter_user() -> !;
}

/// Makes `frame` the one the next exception from EL0 saves into and the next return to EL0
/// restores (TPIDR_EL1).
///
/// # Safety
///
/// `frame` must be a valid, 16-byte aligned TrapFrame that stays allocated, and is not
/// otherwise borrowed across a return to EL0, until another frame replaces it: the vectors
/// write the domain's registers there on every exception from EL0.
pub unsafe fn set_current_frame(frame: *mut TrapFrame) {
    // SAFETY: writing TPIDR_EL1 touches no memory now; the caller vouches for the frame the
    // vectors will write later.
    unsafe { core::arch::asm!("msr tpidr_el1, {f}", f = in(reg) frame, options(nostack)) };
}

/// Enters (or resumes) EL0 in the domain whose frame [`set_current_frame`] named, resetting
/// the kernel stack.
pub fn return_to_user() -> ! {
    // SAFETY: the kernel's callers set the current frame (a live control block's) before
    // they first return to EL0; enter_user restores it and erets to EL0t.
    unsafe { enter_user() }
}

/// Prints a kernel exception and exits QEMU with status 2.
fn kernel_exception(source: Source, frame: &TrapFrame) -> ! {
    let (esr, far, elr) = cpu::fault_registers();
    crate::console::force_unlock();
    crate::println!(
        "tally: kernel bug: unexpected {source:?} exception: {} FAR {far:#018x} ELR {elr:#018x} SPSR {:#x}",
        Syndrome(esr),
        frame.spsr
    );
    cpu::exit_qemu(2)
}

/// Called by vectors.s for an exception taken at EL1, with the frame it saved on the stack.
#[no_mangle]
extern "C" fn kernel_exception_dispatch(frame: &TrapFrame, kind: u64) -> ! {
    kernel_exception(Source::from_kind(kind), frame)
}

/// Called by vectors.s for a synchronous exception from EL0 (system call, fault) the fast
/// path did not take; the registers are in the current domain's control block.
#[no_mangle]
extern "C" fn user_sync_dispatch() {
    let (esr, far, _) = cpu::fault_registers();
    crate::trap::user_exception(Syndrome(esr), far as usize);
}

/// Called by vectors.s for an interrupt or SError from EL0; the registers are in the current
/// domain's control block.
#[no_mangle]
extern "C" fn user_dispatch(kind: u64) {
    match Source::from_kind(kind) {
        Source::UserSync => user_sync_dispatch(),
        Source::UserIrq => crate::trap::user_interrupt(),
        Source::UserError => {
            let (esr, _, _) = cpu::fault_registers();
            crate::trap::user_exception(Syndrome(esr), 0);
        }
        other => kernel_exception(other, &TrapFrame::default()),
    }
}

/// Called by vectors.s for `svc` with x8 = `call_registers`, before anything else: 1 when the
/// fast path completed the call (the current frame may have changed), 0 when it changed
/// nothing and the ordinary path must run.
#[no_mangle]
extern "C" fn fastpath_call_entry() -> u64 {
    u64::from(crate::trap::fastpath_call())
}

/// As [`fastpath_call_entry`], for x8 = `reply_recv_registers`.
#[no_mangle]
extern "C" fn fastpath_reply_recv_entry() -> u64 {
    u64::from(crate::trap::fastpath_reply_recv())
}

/// Called by vectors.s for `call` with a descriptor: 1 when the memory fast path delivered a
/// data-only message (the current frame may have changed), 0 when it changed nothing.
#[no_mangle]
extern "C" fn fastpath_call_memory_entry() -> u64 {
    u64::from(crate::trap::fastpath_call_memory())
}

/// As [`fastpath_call_memory_entry`], for `reply_recv` with a descriptor.
#[no_mangle]
extern "C" fn fastpath_reply_recv_memory_entry() -> u64 {
    u64::from(crate::trap::fastpath_reply_recv_memory())
}

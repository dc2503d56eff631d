//! Exception entry from the vector table (vectors.s): the trap frame, syndrome decoding and
//! the dispatch to the generic kernel. Exceptions taken from EL1 are kernel bugs: they print
//! the decoded syndrome, fault address and return address, then exit QEMU with status 2.

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

impl TrapFrame {
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
    fn enter_user(frame: *const TrapFrame) -> !;
    fn copy_trap_frame(destination: *mut TrapFrame, source: *const TrapFrame);
}

impl TrapFrame {
    /// Copies `source` into `self` with 17 register-pair loads and stores (a context switch
    /// does this twice).
    pub fn copy_from(&mut self, source: &TrapFrame) {
        // SAFETY: both are valid, 16-byte aligned TrapFrames (272 bytes) and distinct (one is
        // on the kernel stack, the other in a control block).
        unsafe { copy_trap_frame(self, source) }
    }
}

/// Starts (or resumes) EL0 with `frame`, resetting the kernel stack.
pub fn return_to_user(frame: &TrapFrame) -> ! {
    // SAFETY: `frame` is a valid frame; enter_user copies it before it resets the stack, and
    // the EL0 state it describes (SPSR = EL0t) is checked by the callers that build frames.
    unsafe { enter_user(frame) }
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

/// Called by vectors.s for every exception with the saved frame.
#[no_mangle]
extern "C" fn exception_dispatch(frame: &mut TrapFrame, kind: u64) {
    match Source::from_kind(kind) {
        Source::UserSync => {
            let (esr, far, _) = cpu::fault_registers();
            crate::kernel::user_exception(frame, Syndrome(esr), far as usize);
        }
        Source::UserIrq => crate::kernel::user_interrupt(frame),
        Source::UserError => {
            let (esr, _, _) = cpu::fault_registers();
            crate::kernel::user_exception(frame, Syndrome(esr), 0);
        }
        other => kernel_exception(other, frame),
    }
}

//! The one generic entry the architecture calls: a synchronous exception from EL0 (system
//! call, page fault, FP trap, fatal fault), an interrupt, and the IPC fast paths the vector
//! tries first. After each, the books may be recounted (`recount=on`), and the scheduler runs
//! when the current domain can no longer run.

use crate::arch::aarch64::cpu;
use crate::arch::aarch64::exception::{Class, Syndrome};
use crate::arch::aarch64::timer;
use crate::board::qemu_virt::VIRTUAL_TIMER_INTID;
use crate::kernel::{kernel, Kernel};
use crate::object::domain::RunState;
use crate::report;
use accounting::StopReason;
use core::fmt::Write as _;

impl Kernel {
    /// With `recount=on` (callers test `config.recount` first, so that without it nothing is
    /// built): the full recount of the books after `operation`; a failure ends the run, naming
    /// the operation.
    #[cold]
    #[inline(never)]
    fn recount_after(&mut self, operation: core::fmt::Arguments) {
        // Books and allocator as the last recount found them: it would find the same.
        let state = (self.books.revision(), self.frames.free_frames());
        if self.last_recount == Some(state) {
            return;
        }
        self.last_recount = Some(state);
        if let Err(why) = self.books.recount(&self.frames) {
            let mut reason = heapless::String::<160>::new();
            let _ = write!(reason, "recount failed after {operation}: {why}");
            crate::println!("tally: {reason}");
            self.snapshot("recount-failed");
            report::end(false, &reason);
            cpu::exit_qemu(1)
        }
    }
}

/// A synchronous exception from EL0: system call, page fault, FP trap or a fatal fault. The
/// current domain's registers are in its control block.
pub fn user_exception(syndrome: Syndrome, fault_address: usize) {
    let mut k = kernel();
    let Some(current) = k.current else {
        return;
    };
    let saved = |k: &Kernel| {
        k.registers(current)
            .map_or((0, 0), |frame| (frame.syscall_number(), frame.pc()))
    };
    match syndrome.class() {
        Class::SystemCall => {
            if k.config.recount {
                let (number, _) = saved(&k);
                k.system_call();
                k.recount_after(format_args!("system call {number}"));
            } else {
                k.system_call();
            }
        }
        // The usual fault (no `cow = keeper`, no `high` bound anywhere: the books' one flag
        // for both) resolves and ends without asking a keeper anything: a fault sets no bound.
        Class::DataAbort | Class::InstructionAbort if k.books.usual_faults() => {
            let (_, elr) = saved(&k);
            k.resolve_fault(current, syndrome, fault_address, elr);
            if k.config.recount {
                k.recount_after(format_args!("a fault at {fault_address:#x}"));
            }
            return finish(&mut k, false);
        }
        Class::DataAbort | Class::InstructionAbort => {
            let (_, elr) = saved(&k);
            k.user_fault(current, syndrome, fault_address, elr);
            if k.config.recount {
                k.recount_after(format_args!("a fault at {fault_address:#x}"));
            }
        }
        Class::FpAccess => k.switch_fp(),
        Class::Other(_) => {
            let (_, elr) = saved(&k);
            k.stop_current(StopReason::Fault, format_args!("{syndrome} at {elr:#x}"));
            if k.config.recount {
                k.recount_after(format_args!("a fatal exception at {elr:#x}"));
            }
        }
    }
    finish(&mut k, true);
}

/// The end of an exception from EL0: the scheduler runs when the current domain can no
/// longer run; with `high` bounds possible (`check_high`), the domain about to run asks its
/// keeper to reclaim if it is above one.
#[inline(always)]
fn finish(k: &mut Kernel, check_high: bool) {
    if cfg!(debug_assertions) && !k.books.conservation(&k.frames).ok {
        panic!("conservation violated after a system call or fault");
    }
    let runnable = k
        .current
        .map(|s| matches!(k.slots[s].state, RunState::Runnable) && k.slots[s].is_alive())
        .unwrap_or(false);
    if !runnable {
        k.switch();
    }
    if check_high && k.books.any_high() {
        k.ask_keepers_over_high();
    }
}

/// The register-sized IPC fast path for `call_registers`, before anything else runs
/// (vectors.s): `true` when it completed the call, `false` when it changed nothing.
#[inline(always)]
pub fn fastpath_call() -> bool {
    kernel().fastpath_call()
}

/// The memory-descriptor fast path for `call` (ipc/fast.rs).
#[inline(always)]
pub fn fastpath_call_memory() -> bool {
    kernel().fastpath_call_memory()
}

/// The memory-descriptor fast path for `reply_recv` (ipc/fast.rs).
#[inline(always)]
pub fn fastpath_reply_recv_memory() -> bool {
    kernel().fastpath_reply_recv_memory()
}

/// The fast path for `reply_recv_registers` (as [`fastpath_call`]).
#[inline(always)]
pub fn fastpath_reply_recv() -> bool {
    kernel().fastpath_reply_recv()
}

/// An IRQ while a domain ran: the timer tick preempts it.
pub fn user_interrupt() {
    let mut k = kernel();
    let mut preempt = false;
    while let Some(iar) = k.gic.acknowledge() {
        if iar & 0x3ff == VIRTUAL_TIMER_INTID {
            timer::rearm();
            preempt = true;
            k.ticks += 1;
        }
        k.gic.end(iar);
    }
    if k.config.recount {
        k.recount_after(format_args!("an interrupt"));
        // The next tick a whole period after the recount: with much RAM a recount can take
        // longer than a period, and the domain would otherwise never run between ticks.
        timer::rearm();
    }
    if preempt {
        k.expire_charge_queries(false);
        k.wake_sleepers();
    }
    if preempt && !k.run_queue.is_empty() {
        k.switch();
        if k.books.any_high() {
            k.ask_keepers_over_high();
        }
    }
}

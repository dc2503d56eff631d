//! The panic handler: a panic is a kernel bug. It prints where and why, then exits QEMU with
//! status 2 so the host tool and tests see the failure.

use crate::arch::aarch64::cpu;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cpu::mask_irqs();
    crate::console::force_unlock();
    crate::println!("tally: kernel panic (a kernel bug): {info}");
    crate::console::framed("end", |w| {
        write!(w, "{{\"status\":\"error\",\"reason\":\"kernel panic\"}}")
    });
    cpu::exit_qemu(2)
}

/// A ledger error no user input can cause (a frame in the wrong state, an unknown id, a
/// malformed plan, a policy's impossible decision): a kernel bug. Like a panic, it stops the
/// run, naming the error, with the `end` record saying why; it never becomes a user's error
/// code or a domain stop.
#[cold]
#[inline(never)]
pub fn ledger_bug(error: &accounting::Error) -> ! {
    cpu::mask_irqs();
    crate::console::force_unlock();
    crate::println!("tally: kernel bug: unexpected ledger error: {error}");
    crate::console::framed("end", |w| {
        write!(
            w,
            "{{\"status\":\"error\",\"reason\":\"kernel bug: unexpected ledger error\"}}"
        )
    });
    cpu::exit_qemu(2)
}

/// A broken kernel invariant that no user input can cause (`what` names it): like a panic, it
/// stops the run with the `end` record saying why.
#[cold]
#[inline(never)]
pub fn kernel_bug(what: &'static str) -> ! {
    cpu::mask_irqs();
    crate::console::force_unlock();
    crate::println!("tally: kernel bug: {what}");
    crate::console::framed("end", |w| {
        // `what` is the kernel's own text, with nothing to escape.
        write!(
            w,
            "{{\"status\":\"error\",\"reason\":\"kernel bug: {what}\"}}"
        )
    });
    cpu::exit_qemu(2)
}

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

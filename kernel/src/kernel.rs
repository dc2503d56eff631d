//! Kernel core (boot-test version).
use crate::arch::aarch64::{cpu, exception::{Syndrome, TrapFrame}};
use crate::bootcfg::BootConfig;

pub fn start(ram: (usize, usize), image_end: usize, config: BootConfig) -> ! {
    crate::println!("start {:x?} {:x} {}", ram, image_end, config.domains.len());
    cpu::exit_qemu(0)
}
pub fn user_exception(_frame: &mut TrapFrame, _s: Syndrome, _far: usize) {}
pub fn user_interrupt(_frame: &mut TrapFrame) {}

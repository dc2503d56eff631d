//! QEMU `virt` board: the fixed device addresses of its memory map (hw/arm/virt.c) and the
//! drivers for its PL011 UART and GICv2 interrupt controller.

pub mod gic;
pub mod pl011;

/// PL011 UART registers.
pub const UART_PA: usize = 0x0900_0000;
/// GICv2 distributor.
pub const GICD_PA: usize = 0x0800_0000;
/// GICv2 CPU interface.
pub const GICC_PA: usize = 0x0801_0000;
/// The EL1 virtual timer's private peripheral interrupt (PPI 11 = INTID 27).
pub const VIRTUAL_TIMER_INTID: u32 = 27;

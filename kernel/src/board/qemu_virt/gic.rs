//! The GICv2 interrupt controller (ARM IHI 0048B): the distributor routes and enables
//! interrupts, the CPU interface acknowledges and ends them. Tally only uses the timer PPI.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    #[allow(non_snake_case)]
    Distributor {
        (0x000 => CTLR: ReadWrite<u32>),
        (0x004 => _reserved0),
        (0x100 => ISENABLER: [ReadWrite<u32>; 32]),
        (0x180 => ICENABLER: [ReadWrite<u32>; 32]),
        (0x200 => _reserved1),
        (0x400 => IPRIORITYR: [ReadWrite<u32>; 255]),
        (0x7fc => _reserved2),
        (0x1000 => @END),
    }
}

register_structs! {
    #[allow(non_snake_case)]
    CpuInterface {
        (0x00 => CTLR: ReadWrite<u32>),
        (0x04 => PMR: ReadWrite<u32>),
        (0x08 => _reserved0),
        (0x0c => IAR: ReadOnly<u32>),
        (0x10 => EOIR: WriteOnly<u32>),
        (0x14 => @END),
    }
}

/// INTIDs at or above this value mean "no interrupt pending" (1023 = spurious).
const SPURIOUS_INTID: u32 = 1020;

/// The GICv2 of the `virt` board.
pub struct Gic {
    distributor_base: usize,
    cpu_base: usize,
}

// SAFETY: the GIC is only reached through the kernel lock.
unsafe impl Send for Gic {}

impl Gic {
    /// # Safety
    /// Both bases must be mapped GICv2 register blocks owned by this driver alone.
    pub const unsafe fn new(distributor_base: usize, cpu_base: usize) -> Self {
        Gic {
            distributor_base,
            cpu_base,
        }
    }

    fn distributor(&self) -> &Distributor {
        // SAFETY: `new`'s caller guaranteed a mapped distributor owned by this driver.
        unsafe { &*(self.distributor_base as *const Distributor) }
    }

    fn cpu(&self) -> &CpuInterface {
        // SAFETY: `new`'s caller guaranteed a mapped CPU interface owned by this driver.
        unsafe { &*(self.cpu_base as *const CpuInterface) }
    }

    /// Enables the distributor and CPU interface, lets every priority through, and enables
    /// `intid`.
    pub fn init(&self, intid: u32) {
        self.distributor().CTLR.set(0);
        self.distributor().IPRIORITYR[(intid / 4) as usize].set(0);
        self.distributor().ISENABLER[(intid / 32) as usize].set(1 << (intid % 32));
        self.distributor().CTLR.set(1);
        self.cpu().PMR.set(0xff);
        self.cpu().CTLR.set(1);
    }

    /// Acknowledges the highest-priority pending interrupt, if any.
    pub fn acknowledge(&self) -> Option<u32> {
        let iar = self.cpu().IAR.get();
        let intid = iar & 0x3ff;
        if intid >= SPURIOUS_INTID {
            None
        } else {
            Some(iar)
        }
    }

    /// Signals the end of an acknowledged interrupt (the raw IAR value).
    pub fn end(&self, iar: u32) {
        self.cpu().EOIR.set(iar);
    }
}

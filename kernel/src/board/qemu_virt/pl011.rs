//! The PL011 UART (ARM PrimeCell UART TRM, DDI 0183), used as the console. Transmit-only,
//! polled: the kernel writes a byte when the transmit FIFO has room.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_bitfields! {
    u32,
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    LCR_H [
        /// Word length: 8 bits.
        WLEN OFFSET(5) NUMBITS(2) [EightBit = 0b11],
        /// FIFOs enabled.
        FEN OFFSET(4) NUMBITS(1) []
    ],
    CR [
        RXE OFFSET(9) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        UARTEN OFFSET(0) NUMBITS(1) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    Registers {
        (0x00 => DR: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => FR: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x24 => IBRD: WriteOnly<u32>),
        (0x28 => FBRD: WriteOnly<u32>),
        (0x2c => LCR_H: WriteOnly<u32, LCR_H::Register>),
        (0x30 => CR: WriteOnly<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x44 => ICR: WriteOnly<u32>),
        (0x48 => @END),
    }
}

/// A PL011 at a fixed, mapped address.
pub struct Pl011 {
    base: usize,
}

// SAFETY: the register block is only reached through the console's Mutex, so moving the
// handle between contexts never creates concurrent access.
unsafe impl Send for Pl011 {}

impl Pl011 {
    /// # Safety
    /// `base` must be the virtual address of a mapped PL011 register block that nothing else
    /// accesses.
    pub const unsafe fn new(base: usize) -> Self {
        Pl011 { base }
    }

    fn registers(&self) -> &Registers {
        // SAFETY: `new`'s caller guaranteed a mapped register block owned by this driver.
        unsafe { &*(self.base as *const Registers) }
    }

    /// 8N1 at 115200 baud from the 24 MHz reference clock QEMU models, FIFOs on.
    pub fn init(&self) {
        self.flush();
        self.registers().CR.set(0);
        self.registers().ICR.set(0x7ff);
        self.registers().IBRD.set(13);
        self.registers().FBRD.set(2);
        self.registers()
            .LCR_H
            .write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
        self.registers()
            .CR
            .write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Writes one byte, waiting for FIFO space.
    pub fn write_byte(&self, byte: u8) {
        while self.registers().FR.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.registers().DR.set(byte as u32);
    }

    /// Waits until every queued byte has left.
    pub fn flush(&self) {
        while self.registers().FR.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }
}

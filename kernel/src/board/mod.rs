//! Board support. Tally runs on QEMU's `virt` machine only.

pub mod qemu_virt;

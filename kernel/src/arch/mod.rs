//! Architecture-specific code. Tally supports AArch64 only.

pub mod aarch64;

//! The Tally host tool as a library: config validation, boot-argument encoding, QEMU control,
//! console/report parsing and rendering. `main.rs` is a thin clap layer over it.

pub mod bench;
pub mod bootargs;
pub mod catalogue;
pub mod compare;
pub mod config;
pub mod exit;
pub mod experiments;
pub mod matrix;
pub mod profile;
pub mod qemu;
pub mod registry;
pub mod render;
pub mod replay;
pub mod report;
pub mod session;
pub mod shard;
pub mod size;
pub mod testing;
pub mod why;
pub mod words;
pub mod workspace;

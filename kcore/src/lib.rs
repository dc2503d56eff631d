//! Tally's kernel core: the pure logic the kernel runs on its input, kept out of `kernel/` so
//! that it builds and is tested on the host (`cargo test -p kcore`).
//!
//! - [`limits`]: every fixed capacity the kernel enforces on a boot config, once.
//! - [`bootcfg`]: the boot config — the `/chosen/bootargs` string. One definition: the host
//!   tool builds a [`bootcfg::BootConfig`] and encodes it with `Display`; the kernel decodes it
//!   with [`bootcfg::parse`], which re-validates everything (boot arguments are input).
//! - [`elf`]: reading and checking the user programs' ELF images, and what a program costs to
//!   start (so the host tool can refuse a limit too small to start a domain).
//! - [`kinds`]: the ABI's kinds of frame mapped onto the ledger's, tested to agree.
//! - [`program`]: the declaration a user program makes of itself (`user::program!`) — what it
//!   does, its capabilities, arguments, snapshots — read by the host tool from the built image.
//! - [`queue`]: the FIFO of domain slots the run queue and an endpoint's waiters are.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod bootcfg;
pub mod elf;
pub mod kinds;
pub mod limits;
pub mod program;
pub mod queue;

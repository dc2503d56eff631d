//! The fixed capacities the kernel enforces on a boot config. The host tool checks a config
//! against these same constants, so every config it accepts boots.

/// Most charge sets a boot config may declare (the `kernel` reserve set not counted).
pub const MAX_CONFIG_SETS: usize = 32;
/// Most domains a boot config may start.
pub const MAX_CONFIG_DOMAINS: usize = 16;
/// Most endpoints a boot config may declare.
pub const MAX_CONFIG_ENDPOINTS: usize = 16;
/// Most capabilities one boot domain may start with.
pub const MAX_CONFIG_CAPS: usize = 16;
/// Most program arguments one boot domain may be given.
pub const MAX_DOMAIN_ARGS: usize = 8;
/// Deepest chain of charge sets, a root being depth 1 (the ledger's own bound).
pub const MAX_SET_DEPTH: usize = accounting::MAX_DEPTH;
/// Longest name of a set, domain, endpoint, program or argument: `[a-z0-9_-]{1,23}`.
pub const NAME_MAX_BYTES: usize = accounting::NAME_BYTES;
/// The longest boot-argument string the host tool may hand the kernel, in bytes (the device
/// tree reader holds up to `devicetree::MAX_BOOTARGS_BYTES`).
pub const MAX_BOOTARGS_BYTES: usize = 4000;
/// Smallest guest RAM the kernel boots with: the image, the frame table and room to run.
pub const MIN_RAM_BYTES: u64 = 16 << 20;
/// Largest guest RAM: boot.s maps physical GiB 1 to 15, and RAM starts at 1 GiB on `virt`.
pub const MAX_RAM_BYTES: u64 = 8 << 30;
/// Frames of kernel objects every domain has: its control block and its capability table.
pub const KERNEL_FRAMES_PER_DOMAIN: u64 = 2;
/// Bytes of a frame.
pub const FRAME_BYTES: u64 = accounting::FRAME_BYTES;

//! Translation tables for the 4 KiB granule with 39-bit virtual addresses (T0SZ = T1SZ = 25):
//! walks start at level 1 (1 GiB per entry), then level 2 (2 MiB) and level 3 (4 KiB pages).
//!
//! The kernel lives in TTBR1 with a linear map of RAM (`VA = KERNEL_VA_BASE + PA`, 1 GiB
//! blocks, set up by boot.s and trimmed by [`init_kernel_map`]); each domain's address space
//! is a level-1 table in TTBR0 tagged with the domain's ASID. Descriptor formats: ARM ARM
//! D8.3 ("Translation table descriptor formats").

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{Writeable, TTBR0_EL1};
use core::arch::asm;

/// Base of the kernel's linear map of physical memory.
pub const KERNEL_VA_BASE: usize = 0xFFFF_FF80_0000_0000;
/// Entries per table.
pub const ENTRIES: usize = 512;
/// Bytes per page.
pub const PAGE_BYTES: usize = 4096;

/// One 4 KiB translation table.
#[repr(C, align(4096))]
pub struct Table(pub [u64; ENTRIES]);

/// The boot identity map (TTBR0 until the first domain runs). Filled by boot.s.
#[no_mangle]
static mut BOOT_L1_IDENTITY: Table = Table([0; ENTRIES]);
/// The kernel's level-1 table (TTBR1). Filled by boot.s.
#[no_mangle]
static mut KERNEL_L1: Table = Table([0; ENTRIES]);

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_NORMAL: u64 = 1 << 2; // MAIR index 1
const AP_EL0: u64 = 1 << 6; // AP[1]: EL0 access
const AP_READ_ONLY: u64 = 1 << 7; // AP[2]
const SHARE_INNER: u64 = 3 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
const NOT_GLOBAL: u64 = 1 << 11;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
/// Software bit (ARM ARM: bits 55..58 are ignored by hardware): copy-on-write page.
const SOFTWARE_COW: u64 = 1 << 55;
const ADDRESS_MASK: u64 = 0x0000_FFFF_FFFF_F000;
const KERNEL_NORMAL_BLOCK: u64 = VALID | ATTR_NORMAL | SHARE_INNER | ACCESS_FLAG | UXN;

/// The physical address in a table or page descriptor.
pub fn descriptor_address(descriptor: u64) -> usize {
    (descriptor & ADDRESS_MASK) as usize
}

/// Whether a descriptor is valid.
pub fn is_valid(descriptor: u64) -> bool {
    descriptor & VALID != 0
}

/// A next-level table descriptor.
pub fn table_descriptor(table_pa: usize) -> u64 {
    table_pa as u64 | VALID | TABLE_OR_PAGE
}

/// Software bit of a table descriptor (ARM ARM: bits 52..58 of a table descriptor are ignored
/// by hardware): the table is new in an address space still being built (a spawn's), not yet
/// committed. Cleared before the space is ever used.
pub const NEW_TABLE: u64 = 1 << 55;

/// Access rights of a user page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAccess {
    /// Read and execute (program text).
    ReadExecute,
    /// Read only.
    ReadOnly,
    /// Read and write.
    ReadWrite,
    /// Mapped read-only because it is shared copy-on-write; a write fault copies or restores.
    CopyOnWrite,
}

/// A level-3 page descriptor for a user page.
pub fn user_page_descriptor(frame_pa: usize, access: UserAccess) -> u64 {
    let base = frame_pa as u64
        | VALID
        | TABLE_OR_PAGE
        | ATTR_NORMAL
        | SHARE_INNER
        | ACCESS_FLAG
        | NOT_GLOBAL
        | AP_EL0
        | PXN;
    match access {
        UserAccess::ReadExecute => base | AP_READ_ONLY,
        UserAccess::ReadOnly => base | AP_READ_ONLY | UXN,
        UserAccess::ReadWrite => base | UXN,
        UserAccess::CopyOnWrite => base | AP_READ_ONLY | UXN | SOFTWARE_COW,
    }
}

/// The access a user page descriptor grants.
pub fn user_page_access(descriptor: u64) -> UserAccess {
    if descriptor & SOFTWARE_COW != 0 {
        UserAccess::CopyOnWrite
    } else if descriptor & AP_READ_ONLY == 0 {
        UserAccess::ReadWrite
    } else if descriptor & UXN == 0 {
        UserAccess::ReadExecute
    } else {
        UserAccess::ReadOnly
    }
}

/// Whether a valid user page descriptor is privately writable
/// (`user_page_access(descriptor) == UserAccess::ReadWrite`): two bit tests.
#[inline(always)]
pub fn is_user_writable(descriptor: u64) -> bool {
    descriptor & (SOFTWARE_COW | AP_READ_ONLY) == 0
}

/// Converts a physical address to its kernel linear-map virtual address.
pub const fn phys_to_virt(pa: usize) -> usize {
    KERNEL_VA_BASE + pa
}

/// Converts a kernel linear-map (or image) virtual address to its physical address.
pub fn virt_to_phys(va: usize) -> usize {
    va - KERNEL_VA_BASE
}

/// Trims the boot linear map to the RAM the device tree reports: GiB 0 (devices) stays, RAM
/// GiBs are mapped as normal memory and every other entry is cleared.
pub fn init_kernel_map(ram_start: usize, ram_end: usize) {
    let first = ram_start >> 30;
    let last = (ram_end - 1) >> 30;
    // SAFETY: single CPU, IRQs masked, no other reference to KERNEL_L1 exists; the entries
    // covering the kernel image keep their value (the image is inside RAM).
    let table = unsafe { &mut *core::ptr::addr_of_mut!(KERNEL_L1) };
    for (index, entry) in table.0.iter_mut().enumerate().skip(1) {
        *entry = if (first..=last).contains(&index) {
            ((index as u64) << 30) | KERNEL_NORMAL_BLOCK
        } else {
            0
        };
    }
    barrier::dsb(barrier::ISHST);
    invalidate_all_tlb();
}

/// Switches TTBR0 to a user address space with its ASID (no TLB flush needed: entries are
/// tagged with the ASID and non-global). No ISB: the kernel never translates through TTBR0
/// (it reaches user memory by walking the tables and using the linear map), and the ERET
/// back to EL0 is itself a context synchronization event.
pub fn switch_user_space(root_pa: usize, asid: u16) {
    TTBR0_EL1.set(root_pa as u64 | ((asid as u64) << 48));
}

/// Invalidates every TLB entry on this CPU.
pub fn invalidate_all_tlb() {
    // SAFETY: TLB maintenance has no memory-safety effect; barriers order it.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

/// Invalidates the translation of one user page in one ASID.
pub fn invalidate_user_page(va: usize, asid: u16) {
    let operand = ((va >> 12) as u64 & 0xFFF_FFFF_FFFF) | ((asid as u64) << 48);
    // SAFETY: TLB maintenance only.
    unsafe {
        asm!("dsb ishst", "tlbi vae1, {x}", "dsb ish", "isb", x = in(reg) operand, options(nostack))
    };
}

/// Invalidates every entry tagged with an ASID (before the ASID is reused).
pub fn invalidate_asid(asid: u16) {
    let operand = (asid as u64) << 48;
    // SAFETY: TLB maintenance only.
    unsafe {
        asm!("dsb ishst", "tlbi aside1, {x}", "dsb ish", "isb", x = in(reg) operand, options(nostack))
    };
}

// boot.s — the arm64 Image header and the first instructions, run with the MMU off.
//
// QEMU's Image loader puts us at RAM base + text_offset and passes the device tree's physical
// address in x0 (Documentation/arm64/booting.rst). Until the MMU is on we run at the physical
// address while linked at KERNEL_VA_BASE + PA, so only PC-relative addressing (adr/adrp) and
// literal-pool constants are used here.

.equ KERNEL_VA_BASE,  0xFFFFFF8000000000
// Block descriptor attributes (ARM ARM D8.3): valid block, AF, inner shareable,
// MAIR index 1 (normal WB), UXN for the kernel's normal memory.
.equ NORMAL_BLOCK,    0x0040000000000705
// Device-nGnRE (MAIR index 0), AF, PXN and UXN.
.equ DEVICE_BLOCK,    0x0060000000000401
// MAIR: attr0 = Device-nGnRE (0x04), attr1 = Normal inner/outer write-back RW-allocate (0xff).
.equ MAIR_VALUE,      0xff04
// TCR: T0SZ = T1SZ = 25 (39-bit VA, walks start at level 1), 4 KiB granules (TG0 = 0,
// TG1 = 2), WBWA inner/outer, inner shareable, 8-bit ASIDs taken from TTBR0. IPS is filled in
// from ID_AA64MMFR0_EL1.PARange.
.equ TCR_VALUE,       0x00000000B5193519
// SCTLR_EL1: RES1 bits | M | C | SA | SA0 | I. EL0 WFI/WFE trap (nTWI = nTWE = 0).
.equ SCTLR_VALUE,     0x30D0181D

.section .text.boot, "ax"
.global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x80000                 // text_offset
    .quad   __image_size            // image_size, bss and boot stack included
    .quad   0x2                     // flags: little endian, 4 KiB pages
    .quad   0
    .quad   0
    .quad   0
    .ascii  "ARM\x64"               // magic
    .long   0

primary_entry:
    mov     x19, x0                 // device tree physical address

    // If we were entered at EL2, drop to EL1h with everything masked.
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.ne    1f
    mov     x1, #(1 << 31)          // HCR_EL2.RW: EL1 is AArch64
    msr     hcr_el2, x1
    mov     x1, #3                  // CNTHCTL_EL2: EL1 may use the physical counter and timer
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    mov     x1, #0x3c5              // EL1h, DAIF masked
    msr     spsr_el2, x1
    adr     x1, 1f
    msr     elr_el2, x1
    eret
1:
    // Zero .bss: the page tables below and every Rust static live there.
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
2:  cmp     x0, x1
    b.hs    3f
    stp     xzr, xzr, [x0], #16
    b       2b
3:
    // Boot translation tables (level 1, 1 GiB blocks).
    // TTBR0: identity map of the GiB we run in, needed only for the jump to the upper half.
    adrp    x0, BOOT_L1_IDENTITY
    adr     x2, _start
    lsr     x3, x2, #30
    lsl     x4, x3, #30
    ldr     x5, =NORMAL_BLOCK
    orr     x4, x4, x5
    str     x4, [x0, x3, lsl #3]
    // TTBR1: the linear map VA = KERNEL_VA_BASE + PA. GiB 0 holds the devices; GiBs 1..15
    // cover RAM as far as QEMU's virt board places it. Rust trims this to the RAM the DTB reports.
    adrp    x1, KERNEL_L1
    ldr     x5, =DEVICE_BLOCK
    str     x5, [x1]
    mov     x3, #1
4:  lsl     x4, x3, #30
    ldr     x5, =NORMAL_BLOCK
    orr     x4, x4, x5
    str     x4, [x1, x3, lsl #3]
    add     x3, x3, #1
    cmp     x3, #16
    b.lo    4b

    ldr     x2, =MAIR_VALUE
    msr     mair_el1, x2
    ldr     x2, =TCR_VALUE
    mrs     x3, id_aa64mmfr0_el1
    and     x3, x3, #7
    cmp     x3, #5                  // cap IPS at 48 bits
    mov     x4, #5
    csel    x3, x3, x4, ls
    orr     x2, x2, x3, lsl #32
    msr     tcr_el1, x2
    msr     ttbr0_el1, x0
    msr     ttbr1_el1, x1
    // CPACR_EL1.FPEN = 0b01: EL0 FP/SIMD traps (lazy FP switching), EL1 never uses it.
    mov     x2, #(1 << 20)
    msr     cpacr_el1, x2
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x2, =SCTLR_VALUE
    msr     sctlr_el1, x2
    isb

    // Jump to the upper half and switch to the boot stack there.
    ldr     x2, =upper_half
    br      x2
upper_half:
    ldr     x2, =__stack_top
    mov     sp, x2
    adrp    x2, exception_vectors
    add     x2, x2, :lo12:exception_vectors
    msr     vbar_el1, x2
    isb
    mov     x0, x19
    bl      kernel_entry
5:  wfe
    b       5b
.ltorg

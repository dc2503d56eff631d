// page.s — whole-page zeroing and copying for the kernel, with general registers only (the
// kernel never touches FP/SIMD registers, which belong to user domains).

// zero_blocks_zva(start: *mut u8, block_bytes: usize, end: *mut u8): zero [start, end) with
// DC ZVA, one `block_bytes` block at a time (ARM ARM C6.2.75; block size from DCZID_EL0);
// start block-aligned, end - start a non-zero multiple of the block.
.global zero_blocks_zva
zero_blocks_zva:
1:  dc      zva, x0
    add     x0, x0, x1
    cmp     x0, x2
    b.lo    1b
    ret

// zero_blocks_stp(start: *mut u8, end: *mut u8): zero [start, end), 64 bytes per iteration;
// start 16-byte aligned, end - start a non-zero multiple of 64.
.global zero_blocks_stp
zero_blocks_stp:
    mov     x2, x1
1:  stp     xzr, xzr, [x0]
    stp     xzr, xzr, [x0, #16]
    stp     xzr, xzr, [x0, #32]
    stp     xzr, xzr, [x0, #48]
    add     x0, x0, #64
    cmp     x0, x2
    b.lo    1b
    ret

// copy_page(destination: *mut u8, source: *const u8): copy 4096 bytes, 64 per iteration.
// The pages must not overlap (whole distinct frames).
.global copy_page
copy_page:
    add     x2, x1, #4096
1:  ldp     x3, x4, [x1]
    ldp     x5, x6, [x1, #16]
    ldp     x7, x8, [x1, #32]
    ldp     x9, x10, [x1, #48]
    stp     x3, x4, [x0]
    stp     x5, x6, [x0, #16]
    stp     x7, x8, [x0, #32]
    stp     x9, x10, [x0, #48]
    add     x1, x1, #64
    add     x0, x0, #64
    cmp     x1, x2
    b.lo    1b
    ret

// memcpy and memset for the whole kernel, replacing compiler_builtins' generic (weak) ones:
// 64 bytes per iteration with general registers, then 16, then single bytes. Unaligned
// ldp/stp are fine on normal memory (SCTLR_EL1.A = 0); the kernel never copies device memory
// and copies nothing before the MMU is on. The ranges must not overlap (memmove is separate).

// memcpy(destination, source, length) -> destination
.global memcpy
memcpy:
    mov     x3, x0
    cmp     x2, #64
    b.lo    2f
1:  ldp     x4, x5, [x1]
    ldp     x6, x7, [x1, #16]
    ldp     x8, x9, [x1, #32]
    ldp     x10, x11, [x1, #48]
    stp     x4, x5, [x3]
    stp     x6, x7, [x3, #16]
    stp     x8, x9, [x3, #32]
    stp     x10, x11, [x3, #48]
    add     x1, x1, #64
    add     x3, x3, #64
    sub     x2, x2, #64
    cmp     x2, #64
    b.hs    1b
2:  cmp     x2, #16
    b.lo    4f
3:  ldp     x4, x5, [x1], #16
    stp     x4, x5, [x3], #16
    sub     x2, x2, #16
    cmp     x2, #16
    b.hs    3b
4:  cbz     x2, 6f
5:  ldrb    w4, [x1], #1
    strb    w4, [x3], #1
    subs    x2, x2, #1
    b.ne    5b
6:  ret

// memset(destination, byte, length) -> destination
.global memset
memset:
    and     x1, x1, #0xff
    orr     x1, x1, x1, lsl #8
    orr     x1, x1, x1, lsl #16
    orr     x1, x1, x1, lsl #32
    mov     x3, x0
    cmp     x2, #64
    b.lo    2f
1:  stp     x1, x1, [x3]
    stp     x1, x1, [x3, #16]
    stp     x1, x1, [x3, #32]
    stp     x1, x1, [x3, #48]
    add     x3, x3, #64
    sub     x2, x2, #64
    cmp     x2, #64
    b.hs    1b
2:  cmp     x2, #16
    b.lo    4f
3:  stp     x1, x1, [x3], #16
    sub     x2, x2, #16
    cmp     x2, #16
    b.hs    3b
4:  cbz     x2, 6f
5:  strb    w1, [x3], #1
    subs    x2, x2, #1
    b.ne    5b
6:  ret

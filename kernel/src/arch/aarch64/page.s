// page.s — whole-page zeroing and copying for the kernel, with general registers only (the
// kernel never touches FP/SIMD registers, which belong to user domains).

// zero_page_zva(page: *mut u8, block_bytes: usize): zero 4096 bytes with DC ZVA, one
// `block_bytes` block at a time (ARM ARM C6.2.75; block size from DCZID_EL0).
.global zero_page_zva
zero_page_zva:
    add     x2, x0, #4096
1:  dc      zva, x0
    add     x0, x0, x1
    cmp     x0, x2
    b.lo    1b
    ret

// zero_page_stp(page: *mut u8): zero 4096 bytes, 64 bytes per iteration.
.global zero_page_stp
zero_page_stp:
    add     x2, x0, #4096
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

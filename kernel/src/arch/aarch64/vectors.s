// vectors.s — the exception vector table, register save/restore, first entry to EL0 and
// the FP/SIMD register save/restore used by lazy FP switching.
//
// Trap frame (272 bytes, see exception.rs TrapFrame): x0..x30, sp_el0, elr_el1, spsr_el1.
//
// From EL0 (system calls, faults, interrupts) the registers are saved straight into the
// current domain's control block: TPIDR_EL1 holds the address of its TrapFrame. A system call
// whose exception class is SVC and whose number (x8) is a call or reply_recv (register-sized:
// no descriptors) first tries `fastpath_call_entry` / `fastpath_reply_recv_entry`, which either complete it
// (switching straight to the other party) or change nothing; with descriptors,
// `fastpath_call_memory_entry` / `fastpath_reply_recv_memory_entry` (a data-only message
// between present pages, ipc/fast.rs) likewise. Everything else goes to `user_sync_dispatch`
// / `user_dispatch(kind)`. Both may switch
// domains by changing TPIDR_EL1; `user_return` restores whichever domain it then names. No
// path copies a trap frame.
//
// From EL1 (kernel bugs) the frame is saved on the kernel stack and
// kernel_exception_dispatch(frame, kind) reports it.

.equ FRAME_BYTES, 272
.equ EC_SVC64, 0x15
.equ CALL, 13
.equ REPLY_RECV, 15
.equ CALL_REGISTERS, 18
.equ REPLY_RECV_REGISTERS, 19

.macro VECTOR kind
    .balign 0x80
    sub     sp, sp, #FRAME_BYTES
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       save_rest
.endm

.macro USER_VECTOR kind
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mov     x1, #\kind
    b       save_user
.endm

.section .text, "ax"
.balign 2048
.global exception_vectors
exception_vectors:
    // Current EL with SP_EL0: never used by Tally.
    VECTOR 6
    VECTOR 6
    VECTOR 6
    VECTOR 6
    // Current EL with SP_ELx: the kernel itself.
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 2
    // Lower EL, AArch64: user domains.
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    b       save_user_sync
    USER_VECTOR 4
    USER_VECTOR 5
    USER_VECTOR 5
    // Lower EL, AArch32: not supported.
    VECTOR 7
    VECTOR 7
    VECTOR 7
    VECTOR 7

// Saves x2..x30, sp_el0, elr_el1 and spsr_el1 into the frame at TPIDR_EL1 (left in x0), then
// x0 and x1 from the kernel stack, where the vector put them. Only x0 and x21..x23 change:
// x1..x20 still hold what they held.
.macro SAVE_USER
    mrs     x0, tpidr_el1
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    stp     x18, x19, [x0, #144]
    stp     x20, x21, [x0, #160]
    stp     x22, x23, [x0, #176]
    stp     x24, x25, [x0, #192]
    stp     x26, x27, [x0, #208]
    stp     x28, x29, [x0, #224]
    ldp     x21, x22, [sp], #16
    stp     x21, x22, [x0, #0]
    mrs     x21, sp_el0
    stp     x30, x21, [x0, #240]
    mrs     x22, elr_el1
    mrs     x23, spsr_el1
    stp     x22, x23, [x0, #256]
.endm

// A synchronous exception from EL0 (x0, x1 on the kernel stack; x1..x20 the user's). The fast
// path first: class SVC64, and x8 a call or reply_recv with no descriptors (x1 = x2 = 0) or
// one of their register-sized aliases.
save_user_sync:
    SAVE_USER
    mrs     x21, esr_el1
    lsr     x21, x21, #26
    cmp     x21, #EC_SVC64
    b.ne    1f
    orr     x22, x1, x2
    cbnz    x22, 5f
    cmp     x8, #CALL
    b.eq    2f
    cmp     x8, #REPLY_RECV
    b.eq    3f
4:  cmp     x8, #CALL_REGISTERS
    b.eq    2f
    cmp     x8, #REPLY_RECV_REGISTERS
    b.ne    1f
3:  bl      fastpath_reply_recv_entry
    cbnz    x0, user_return
    b       1f
2:  bl      fastpath_call_entry
    cbnz    x0, user_return
1:  bl      user_sync_dispatch
    b       user_return
    // With descriptors: a data-only message between present pages.
5:  cmp     x8, #CALL
    b.eq    6f
    cmp     x8, #REPLY_RECV
    b.ne    4b
    bl      fastpath_reply_recv_memory_entry
    cbnz    x0, user_return
    b       1b
6:  bl      fastpath_call_memory_entry
    cbnz    x0, user_return
    b       1b

// Any other exception from EL0 (x0, x1 on the kernel stack, x1 = kind).
save_user:
    SAVE_USER
    mov     x0, x1
    bl      user_dispatch
    // fall through

// Back to EL0 in the domain TPIDR_EL1 names.
.global user_return
user_return:
    mrs     x0, tpidr_el1
    ldp     x22, x23, [x0, #256]
    ldp     x30, x21, [x0, #240]
    msr     sp_el0, x21
    msr     elr_el1, x22
    msr     spsr_el1, x23
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldp     x0, x1, [x0, #0]
    eret

// From EL1: a kernel bug, reported with the frame on the stack.
save_rest:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x21, sp_el0
    stp     x30, x21, [sp, #240]
    mrs     x22, elr_el1
    mrs     x23, spsr_el1
    stp     x22, x23, [sp, #256]
    mov     x1, x0
    mov     x0, sp
    bl      kernel_exception_dispatch
1:  b       1b

// enter_user() -> !: resets the kernel stack and enters the domain TPIDR_EL1 names.
.global enter_user
enter_user:
    ldr     x1, =__stack_top
    mov     sp, x1
    b       user_return

.arch_extension fp
.arch_extension simd

// fp_save(state: *mut FpState): q0..q31, then FPCR and FPSR (528 bytes).
.global fp_save
fp_save:
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    mrs     x1, fpcr
    mrs     x2, fpsr
    add     x0, x0, #512
    stp     x1, x2, [x0]
    ret

// fp_restore(state: *const FpState)
.global fp_restore
fp_restore:
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    add     x0, x0, #512
    ldp     x1, x2, [x0]
    msr     fpcr, x1
    msr     fpsr, x2
    ret
.ltorg

/*
 * AArch64 (AAPCS64) context switch. See switch.h for the contract.
 *
 * Frame saved on the suspended stack (176 bytes, 16-aligned):
 *   [sp+0]   x19 x20 ... x28       [sp+80] x29 (fp)  [sp+88] x30 (lr)
 *   [sp+96]  d8 ... d15            [sp+160] FPCR     [sp+168] padding
 * The frame layout is shared with green__ctx_make (make.c).
 */
    .text

    .globl green__ctx_switch
    .hidden green__ctx_switch
    .type green__ctx_switch, %function
    .p2align 4
green__ctx_switch:
    .cfi_startproc
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8,  d9,  [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x9, fpcr
    str x9, [sp, #160]
    mov x9, sp
    str x9, [x0]                /* *save_sp = sp */
    mov sp, x1                  /* sp = load_sp */
    ldr x9, [sp, #160]
    msr fpcr, x9
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8,  d9,  [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    ret
    .cfi_endproc
    .size green__ctx_switch, .-green__ctx_switch

/* First code on a new stack: entry in x19, its argument in x20. */
    .globl green__ctx_start
    .hidden green__ctx_start
    .type green__ctx_start, %function
    .p2align 4
green__ctx_start:
    .cfi_startproc
    .cfi_undefined x30
    mov x29, #0
    mov x0, x20
    blr x19
    brk #0
    .cfi_endproc
    .size green__ctx_start, .-green__ctx_start

    .section .note.GNU-stack,"",%progbits

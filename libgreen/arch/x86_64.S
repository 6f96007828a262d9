/*
 * x86-64 SysV context switch. See switch.h for the contract.
 *
 * Frame saved on the suspended stack, from the stored stack pointer up:
 *   [sp+0]  MXCSR (4 bytes)   [sp+4] x87 control word (2 bytes)
 *   [sp+8]  r15  r14  r13  r12  rbx  rbp   [sp+56] return address
 * Caller-saved registers need no saving: the C caller already assumes
 * green__ctx_switch clobbers them.
 */
    .text

    .globl green__ctx_switch
    .hidden green__ctx_switch
    .type green__ctx_switch, @function
    .p2align 4
green__ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movl (%rsp), %eax           /* our MXCSR and control word, to compare */
    movzwl 4(%rsp), %ecx
    movq %rsp, (%rdi)           /* *save_sp = sp */
    movq %rsi, %rsp             /* sp = load_sp */
    /* ldmxcsr and fldcw are slow (they serialise the FP unit): reload only
     * what differs, which in most programs is nothing. */
    cmpl (%rsp), %eax
    jne 2f
1:  cmpw 4(%rsp), %cx
    jne 4f
3:  addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
2:  ldmxcsr (%rsp)
    jmp 1b
4:  fldcw 4(%rsp)
    jmp 3b
    .cfi_endproc
    .size green__ctx_switch, .-green__ctx_switch

/* First code run on a new stack: green__ctx_make left entry in r12 and its
 * argument in r13. The stack pointer is 16-byte aligned here, as the call
 * needs. entry never returns; ud2 makes a bug loud. */
    .globl green__ctx_start
    .hidden green__ctx_start
    .type green__ctx_start, @function
    .p2align 4
green__ctx_start:
    .cfi_startproc
    .cfi_undefined rip          /* end of the backtrace for debuggers */
    movq %r13, %rdi
    callq *%r12
    ud2
    .cfi_endproc
    .size green__ctx_start, .-green__ctx_start

    .section .note.GNU-stack,"",@progbits

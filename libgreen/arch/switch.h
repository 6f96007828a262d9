/*
 * arch/switch.h - the context-switch contract, one implementation per CPU.
 *
 * A suspended green thread is nothing but a stack pointer: everything the
 * callee of a function call must preserve (the callee-saved registers and
 * the floating-point control state) is pushed on its own stack by
 * green__ctx_switch before the stack pointer is stored.
 *
 *   x86_64.S   rbx rbp r12-r15, MXCSR, x87 control word      (SysV ABI)
 *   aarch64.S  x19-x29, x30 (lr), d8-d15, FPCR               (AAPCS64)
 *   ucontext.c swapcontext fallback for other CPUs; one rt_sigprocmask
 *              syscall per switch, so ~100x slower: never the default
 *              where an assembly version exists.
 *
 * Chosen by the meson option `context` (asm | ucontext).
 */
#ifndef GREEN_ARCH_SWITCH_H
#define GREEN_ARCH_SWITCH_H
#include <stddef.h>

/* Save the caller's context, store its stack pointer in *save_sp, and
 * resume the context whose stack pointer is load_sp. Returns when someone
 * switches back to *save_sp. */
void green__ctx_switch(void **save_sp, void *load_sp)
    __attribute__((visibility("hidden")));

/* Prepare the stack [lo, hi) so that switching to the returned stack
 * pointer calls entry(arg) with the caller's floating-point control state.
 * entry must never return. */
void *green__ctx_make(void *lo, void *hi, void (*entry)(void *), void *arg)
    __attribute__((visibility("hidden")));

#endif

/*
 * arch/ucontext.c - portable, slow context switch on swapcontext(3).
 *
 * The saved "stack pointer" of a suspended thread is the address of a
 * ucontext_t living in the suspended green__ctx_switch frame itself: that
 * frame stays alive exactly as long as the thread is suspended, so no
 * separate storage is needed. A new stack gets its ucontext_t carved from
 * its top. Each swapcontext costs one rt_sigprocmask syscall.
 */
#define _GNU_SOURCE
#include "switch.h"
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

void green__ctx_switch(void **save_sp, void *load_sp)
{
    ucontext_t self;
    *save_sp = &self;
    if (swapcontext(&self, (ucontext_t *)load_sp) != 0)
        abort();  /* only fails on a corrupt context: nothing to recover */
}

static void trampoline(unsigned ehi, unsigned elo, unsigned ahi, unsigned alo)
{
    void (*entry)(void *) =
        (void (*)(void *))(uintptr_t)(((uint64_t)ehi << 32) | elo);
    void *arg = (void *)(uintptr_t)(((uint64_t)ahi << 32) | alo);
    entry(arg);
    abort();
}

void *green__ctx_make(void *lo, void *hi, void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)hi - sizeof(ucontext_t)) & ~(uintptr_t)63;
    ucontext_t *uc = (ucontext_t *)top;
    getcontext(uc);
    uc->uc_stack.ss_sp = lo;
    uc->uc_stack.ss_size = top - (uintptr_t)lo;
    uc->uc_link = NULL;
    uint64_t e = (uint64_t)(uintptr_t)entry, a = (uint64_t)(uintptr_t)arg;
    makecontext(uc, (void (*)(void))trampoline, 4, (unsigned)(e >> 32),
                (unsigned)e, (unsigned)(a >> 32), (unsigned)a);
    return uc;
}

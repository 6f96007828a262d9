/*
 * arch/make.c - builds the first frame of a new stack for the assembly
 * switches, so that the first green__ctx_switch into it "returns" into
 * green__ctx_start, which calls entry(arg). The frame layout must match
 * the pops of x86_64.S / aarch64.S exactly.
 */
#include "switch.h"
#include <stdint.h>
#include <string.h>

void green__ctx_start(void) __attribute__((visibility("hidden")));

#if defined(__x86_64__)
void *green__ctx_make(void *lo, void *hi, void (*entry)(void *), void *arg)
{
    (void)lo;
    uintptr_t top = (uintptr_t)hi & ~(uintptr_t)15;
    /* Two zero words above the return address: green__ctx_start then runs
     * with sp % 16 == 0, as a call instruction requires. */
    uint64_t *sp = (uint64_t *)(top - 24);
    sp[0] = (uint64_t)(uintptr_t)green__ctx_start;   /* ret target */
    sp[1] = 0;
    sp[2] = 0;
    uint64_t *f = sp - 7;
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    memset(f, 0, 7 * sizeof *f);
    memcpy((char *)f, &mxcsr, 4);       /* new thread inherits FP control */
    memcpy((char *)f + 4, &fpucw, 2);
    f[1] = 0;                           /* r15 */
    f[2] = 0;                           /* r14 */
    f[3] = (uint64_t)(uintptr_t)arg;    /* r13 */
    f[4] = (uint64_t)(uintptr_t)entry;  /* r12 */
    f[5] = 0;                           /* rbx */
    f[6] = 0;                           /* rbp: ends frame-pointer walks */
    return f;
}
#elif defined(__aarch64__)
void *green__ctx_make(void *lo, void *hi, void (*entry)(void *), void *arg)
{
    (void)lo;
    uintptr_t top = (uintptr_t)hi & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 176 - 16);
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    memset(f, 0, 176 + 16);
    f[0] = (uint64_t)(uintptr_t)entry;              /* x19 */
    f[1] = (uint64_t)(uintptr_t)arg;                /* x20 */
    f[10] = 0;                                      /* x29 */
    f[11] = (uint64_t)(uintptr_t)green__ctx_start;  /* x30: ret target */
    f[20] = fpcr;
    return f;
}
#else
#error "no assembly context switch for this CPU: configure with -Dcontext=ucontext"
#endif

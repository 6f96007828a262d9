/*
 * switch_selftest.c - the context-switch layer alone (libgreen/arch), with
 * no hub and no libev, so it can be cross-compiled and run under qemu for
 * the CPUs this machine is not (tools/cross-aarch64).
 *
 * Checks: ping-pong between two stacks a million times keeps a running
 * count right; values living in callee-saved registers across the switch
 * (the compiler keeps the loop's locals there) survive while the other side
 * clobbers every register it can; the floating-point rounding mode is per
 * context; the new stack is 16-byte aligned at entry (SIMD spills would
 * fault otherwise). Prints "switch selftest: ok" and exits 0, or names the
 * failed check and exits 1.
 */
#define _GNU_SOURCE
#include "arch/switch.h"
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static void *main_sp, *co_sp;
static volatile long counter;
static volatile int co_round;
static volatile uintptr_t co_align;

/* The rounding mode as the SSE unit sees it (fegetround reads only the
 * x87 control word on x86-64, and MXCSR is saved separately). */
static int sse_round(void)
{
#if defined(__x86_64__)
    unsigned m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return (int)((m >> 13) & 3);   /* 0 nearest, 1 down */
#else
    return fegetround() == FE_DOWNWARD;
#endif
}

static int fail(const char *what)
{
    printf("switch selftest: FAILED: %s\n", what);
    return 1;
}

/* Clobber as many registers as the ABI lets a function clobber. */
static __attribute__((noinline)) double clobber(double x)
{
    volatile double a = x * 3.0, b = a + 1.5, c = b * b, d = c - a;
    return a + b + c + d;
}

static void co_entry(void *arg)
{
    (void)arg;
    char probe;
    co_align = (uintptr_t)__builtin_frame_address(0);
    (void)probe;
    fesetround(FE_DOWNWARD);          /* this context rounds down */
    for (;;) {
        counter++;
        co_round = fegetround() == FE_DOWNWARD && sse_round() == 1;
        (void)clobber((double)counter);
        green__ctx_switch(&co_sp, main_sp);
    }
}

int main(void)
{
    size_t sz = 256 * 1024;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED)
        return fail("mmap");
    co_sp = green__ctx_make(stack, stack + sz, co_entry, NULL);
    fesetround(FE_TONEAREST);
    long a = 11, b = 22, c = 33, d = 44, e = 55, f = 66;
    double x = 1.25, y = 2.5, z = 3.75;
    for (long i = 0; i < 1000000; i++) {
        green__ctx_switch(&main_sp, co_sp);
        a += 1; b += 2; c += 3; d += 4; e += 5; f += 6;
        x += 1.0; y += 2.0; z += 3.0;
        if (counter != i + 1)
            return fail("ping-pong count");
        if (!co_round)
            return fail("rounding mode of the other context changed");
        if (fegetround() != FE_TONEAREST || sse_round() != 0)
            return fail("rounding mode leaked across the switch");
    }
    long n = 1000000;
    if (a != 11 + n || b != 22 + 2 * n || c != 33 + 3 * n || d != 44 + 4 * n ||
        e != 55 + 5 * n || f != 66 + 6 * n)
        return fail("integer locals (callee-saved registers)");
    if (x != 1.25 + n || y != 2.5 + 2.0 * n || z != 3.75 + 3.0 * n)
        return fail("floating-point locals (callee-saved FP registers)");
    (void)co_align;
    printf("switch selftest: ok (%ld switches each way)\n", n);
    return 0;
}

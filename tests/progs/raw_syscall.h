/*
 * raw_syscall.h - a system call made without the C library, for the
 * monitor's children, the syscall user dispatch child (sud/) and
 * bench/bench_sud.c: no libc symbol is called, so no hook of the shim
 * (not even one on syscall()) can see it, as with liburing or an inline
 * assembly futex, and the instruction lies in the caller's own text
 * (outside libc's, so dispatch traps it). x86-64 and aarch64; elsewhere
 * syscall() stands in.
 */
#ifndef GREEN_TEST_RAW_SYSCALL_H
#define GREEN_TEST_RAW_SYSCALL_H

#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>

/* Returns what the kernel returns: a result, or -errno. noinline and
 * global: the monitor's report must name it. */
__attribute__((noinline, used)) long raw_syscall4(long nr, long a, long b, long c, long d);

__attribute__((noinline, used)) long raw_syscall4(long nr, long a, long b, long c, long d)
{
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3)
                     : "memory");
    return x0;
#else
    long r = syscall(nr, a, b, c, d);
    return r < 0 ? -errno : r;
#endif
}

#endif

/*
 * real.c - resolves the one table of real libc functions (see real.h).
 */
#define _GNU_SOURCE
#include "real.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct green__real_table green__real;
atomic_int green__real_ready;

/* green__real_ready: 0 nobody started, 1 one thread is resolving, 2 done.
 * One thread resolves; others that come meanwhile wait for it (a few
 * dozen dlsym calls, once per process: under the shim the constructor
 * does it before any thread exists). */
void green__real_init(void)
{
    int st = atomic_load_explicit(&green__real_ready, memory_order_acquire);
    if (st == 2)
        return;
    if (st == 0 && atomic_compare_exchange_strong_explicit(
                       &green__real_ready, &st, 1, memory_order_acquire,
                       memory_order_acquire)) {
#define GREEN__REAL_RESOLVE(ret, name, params) \
        green__real.name = (ret(*) params)dlsym(RTLD_NEXT, #name);
        GREEN__REAL_FUNCS(GREEN__REAL_RESOLVE)
#undef GREEN__REAL_RESOLVE
        /* The condition variables exist twice on x86-64; take the current
         * ABI (dlsym may hand back the 2.2.5 one, whose layout differs).
         * Other architectures have one version, found above. */
#define GREEN__REAL_COND(name)                                                \
        do {                                                                  \
            void *p = dlvsym(RTLD_NEXT, #name, "GLIBC_2.3.2");                \
            if (p)                                                            \
                memcpy(&green__real.name, &p, sizeof p);                      \
        } while (0)
        GREEN__REAL_COND(pthread_cond_init);
        GREEN__REAL_COND(pthread_cond_destroy);
        GREEN__REAL_COND(pthread_cond_wait);
        GREEN__REAL_COND(pthread_cond_timedwait);
        GREEN__REAL_COND(pthread_cond_signal);
        GREEN__REAL_COND(pthread_cond_broadcast);
#undef GREEN__REAL_COND
        atomic_store_explicit(&green__real_ready, 2, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&green__real_ready, memory_order_acquire) != 2)
        green__syscall(SYS_sched_yield);   /* not the hooked sched_yield: no table yet */
}

/* The system call instruction itself: libc's syscall() is one of
 * libgreen.so's exports (hooks/syscall.c), so the core cannot call it. */
static long raw6(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ __volatile__("syscall"
                         : "=a"(ret)
                         : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                         : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ __volatile__("svc 0"
                         : "+r"(x0)
                         : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                         : "memory");
    return x0;
#else
    long r = GREEN_REAL(syscall)(n, a, b, c, d, e, f);
    return r < 0 ? -errno : r;
#endif
}

__thread char green__sud_selector __attribute__((tls_model("initial-exec")));
__thread char *green__sud_sel __attribute__((tls_model("initial-exec")));

long green__syscall7(long n, long a, long b, long c, long d, long e, long f)
{
    /* raw6's instruction is outside libc's text: under syscall user
     * dispatch it would trap unless the selector is open (the "memory"
     * clobber keeps the stores on their side of it). */
    char *at = green__sud_sel, sel = at ? *at : 0;
    if (at)
        *at = 0;
    long r = raw6(n, a, b, c, d, e, f);
    if (at)
        *at = sel;
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

bool green__proc_lines(const char *path, char *buf, unsigned long size,
                       bool (*fn)(const char *line, void *arg), void *arg)
{
    int saved = errno;
    int fd = (int)green__syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    bool done = false;
    if (fd >= 0) {
        size_t have = 0;
        for (;;) {
            long n = green__syscall(SYS_read, fd, buf + have, size - 1 - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            buf[have] = 0;
            char *line = buf, *nl;
            while (!done && (nl = strchr(line, '\n'))) {
                *nl = 0;
                done = fn(line, arg);
                line = nl + 1;
            }
            if (done)
                break;
            have -= (size_t)(line - buf);
            memmove(buf, line, have);
            if (have >= size - 1)
                have = 0;          /* a line longer than the buffer */
        }
        green__syscall(SYS_close, fd);
    }
    errno = saved;
    return done;
}

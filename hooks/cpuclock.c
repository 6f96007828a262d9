/*
 * cpuclock.c (hooks) - thread CPU clocks of green threads: clock_gettime
 * and clock_getres on CLOCK_THREAD_CPUTIME_ID and on the ids
 * pthread_getcpuclockid gives, and timer_create on those ids. The
 * counting itself, its cost and what a program sees are in the core's
 * libgreen/cpuclock.c.
 *
 * clock_gettime is on many programs' hot path (redis reads the monotonic
 * clock per command): every other clock goes straight to libc's, one
 * compare and one call more than natively. Only a green thread's own
 * CLOCK_THREAD_CPUTIME_ID and libgreen's ids are answered here. The
 * answer is written over the kernel's reading of the OS thread's clock
 * into the caller's timespec: that reading is needed anyway, and the
 * kernel's copy-out validates the pointer (EFAULT for a bad one, as
 * natively, never a fault in libgreen).
 *
 * getrusage(RUSAGE_THREAD) in a green thread reports its own CPU time
 * too (split into user and system time as its OS thread's is).
 *
 * A timer on a green thread's CPU clock (timer_create) is the kernel's
 * timer on the CPU clock of the thread's hub's OS thread: it fires after
 * the hub's threads together used the time (README, known differences).
 */
#define _GNU_SOURCE
#include "hooks_wait.h"
#include "pthread_internal.h"
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

static void to_ts(struct timespec *ts, int64_t ns)
{
    ts->tv_sec = (time_t)(ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

/* CLOCK_THREAD_CPUTIME_ID for a green thread, or a libgreen clock id. */
static int green_clock(clockid_t clk, struct timespec *ts)
{
    struct green__ctx *c = green__tls_ctx;
    bool self = clk == CLOCK_THREAD_CPUTIME_ID;
    if (self)
        green__cpu_want(c);
    if (green__syscall(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, ts) != 0)
        return -1;                 /* EFAULT, errno set */
    int64_t os_now = green__ts_ns(ts);
    if (self) {
        to_ts(ts, green__cpu_self(c, os_now));
        return 0;
    }
    struct green_thread *t = green__cpu_clock_thread(clk);
    if (!t) {
        errno = EINVAL;            /* the thread has exited */
        return -1;
    }
    to_ts(ts, green__cpu_of(t, os_now));
    return 0;
}

/* A green thread other than the hub is asking, with the thread family on. */
static bool green_caller(void)
{
    struct green__ctx *c = green__tls_ctx;
    return (green__hook_families & GREEN_HOOK_THREAD) && c && c->current != c->hub;
}

/* Out of line, so that the other clocks' path needs no stack frame. */
static __attribute__((noinline)) int clock_gettime_cpu(clockid_t clk, struct timespec *ts)
{
    if (clk == CLOCK_THREAD_CPUTIME_ID ? green_caller() : green__cpu_clock_is_ours(clk))
        return green_clock(clk, ts);
    return GREEN_REAL(clock_gettime)(clk, ts);
}

int green_hook_clock_gettime(clockid_t clk, struct timespec *ts)
{
    if (green__likely(clk >= 0 && clk != CLOCK_THREAD_CPUTIME_ID))
        return GREEN_REAL(clock_gettime)(clk, ts);
    return clock_gettime_cpu(clk, ts);
}

int green_hook_clock_getres(clockid_t clk, struct timespec *res)
{
    if (green__likely(!green__cpu_clock_is_ours(clk)))
        return GREEN_REAL(clock_getres)(clk, res);
    if (!green__cpu_clock_thread(clk)) {
        errno = EINVAL;
        return -1;
    }
    return GREEN_REAL(clock_getres)(CLOCK_THREAD_CPUTIME_ID, res);
}

int green_hook_timer_create(clockid_t clk, struct sigevent *sev, timer_t *id)
{
    if (green__likely(!green__cpu_clock_is_ours(clk)))
        return GREEN_REAL(timer_create)(clk, sev, id);
    struct green_thread *t = green__cpu_clock_thread(clk);
    if (!t) {
        errno = EINVAL;
        return -1;
    }
    pid_t tid = __atomic_load_n(&t->ctx->tid, __ATOMIC_RELAXED);
    return GREEN_REAL(timer_create)(green__thread_clock((unsigned)tid), sev, id);
}

/* RUSAGE_THREAD in a green thread: user and system time that add up to
 * its own CPU clock, split in the proportion its OS thread's times have
 * (the kernel keeps the split per OS thread; its own figures are
 * themselves the scheduler's total apportioned by sampled ticks). The
 * other fields (faults, context switches, maximum RSS) are the OS
 * thread's. */
static __attribute__((noinline)) int getrusage_thread(struct rusage *ru)
{
    struct green__ctx *c = green__tls_ctx;
    green__cpu_want(c);
    if (GREEN_REAL(getrusage)(RUSAGE_THREAD, ru) != 0)
        return -1;                 /* EFAULT, errno set */
    struct timespec ts;
    green__syscall(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &ts);
    int64_t own_us = green__cpu_self(c, green__ts_ns(&ts)) / 1000;
    int64_t u = (int64_t)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec;
    int64_t s = (int64_t)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec;
    int64_t uo = u + s > 0 ? (int64_t)((double)own_us * (double)u / (double)(u + s)) : own_us;
    int64_t so = own_us - uo;
    ru->ru_utime.tv_sec = (time_t)(uo / 1000000);
    ru->ru_utime.tv_usec = (suseconds_t)(uo % 1000000);
    ru->ru_stime.tv_sec = (time_t)(so / 1000000);
    ru->ru_stime.tv_usec = (suseconds_t)(so % 1000000);
    return 0;
}

int green_hook_getrusage(int who, struct rusage *ru)
{
    if (green__likely(who != RUSAGE_THREAD) || !green_caller())
        return GREEN_REAL(getrusage)(who, ru);
    return getrusage_thread(ru);
}

/* A green thread's own CPU clock (libgreen/cpuclock.c); a plain OS
 * thread's is libc's. A finished handle, or the hub's: ESRCH. */
int green_hook_pthread_getcpuclockid(pthread_t th, clockid_t *clk)
{
    struct green_thread *t;
    if (!green__pt_on() || !(t = green__pt_handle_of(th)))
        return GREEN_REAL(pthread_getcpuclockid)(th, clk);
    if (t->is_hub || t->gone || __atomic_load_n(&t->state, __ATOMIC_RELAXED) == GREEN_DONE)
        return ESRCH;
    green__cpu_want(green__tls_ctx);
    return green__cpu_clock_of(t, clk);
}

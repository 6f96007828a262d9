/*
 * sleep.c - sleep, usleep, nanosleep, clock_nanosleep and sched_yield for
 * green threads.
 *
 * A sleep parks the caller (green__park, GREEN_WHY_SLEEP) with a deadline
 * on CLOCK_MONOTONIC, which the hub's timerfd wakes to the nanosecond
 * (timer.c): the cost of a sleep is the hub's share of epoll_wait and one
 * timerfd_settime when the deadline is the earliest. Nothing returns early:
 * a wake-up before the deadline that is not a signal parks again, and the
 * expiry itself compares with the clock.
 *
 * Clocks. nanosleep measures on CLOCK_MONOTONIC as Linux does.
 * clock_nanosleep accepts CLOCK_REALTIME and CLOCK_MONOTONIC, relative or
 * TIMER_ABSTIME; other clocks (BOOTTIME, TAI, CPU clocks) pass through to
 * the kernel and block the OS thread. An absolute CLOCK_REALTIME deadline
 * is converted to a monotonic one when the call starts and re-checked
 * against CLOCK_REALTIME on every wake-up, so the call never returns
 * before the wall-clock deadline; but a wall clock set backwards while we
 * sleep makes us sleep longer only after our monotonic deadline (the
 * kernel would notice at once), and a clock set forwards is noticed only
 * at that deadline (the kernel would wake at once).
 *
 * Zero. sleep(0), usleep(0), nanosleep({0,0}) and a relative
 * clock_nanosleep of 0 yield to the other green threads and return 0:
 * natively they are a syscall that returns at once, and programs use them
 * to let other threads progress.
 *
 * EINTR (signal.c). Sleeps are interruptible and never restart under
 * SA_RESTART (signal(7)); nanosleep and relative clock_nanosleep store the
 * time not slept in *rem; sleep returns the whole seconds not slept, as
 * glibc's does.
 *
 * User pointers. The program's req and rem are never dereferenced before
 * the kernel has said they are valid: req is copied in and rem out with
 * process_vm_readv/writev on ourselves (one syscall, EFAULT as the sleep
 * would give it), so a bad pointer fails as natively instead of crashing
 * the process. Where those calls are refused (a seccomp filter), the
 * pointers are used directly, as before.
 *
 * Rejected: libev timers (whole-millisecond resolution, see timer.c); a
 * real zero-length nanosleep to validate req (there is none: the kernel's
 * only zero-cost check is an absolute clock_nanosleep, which would block
 * when req, read as a date, is in the future); probing with a signal
 * handler for SIGSEGV (process-wide state for a per-call check).
 */
#define _GNU_SOURCE
#include "hooks_signal.h"
#include "hooks_wait.h"
#include <sys/syscall.h>
#include <sys/uio.h>

#define NS 1000000000LL

/* Copy n bytes between our memory and the program's pointer p, with the
 * kernel checking p. Returns 0 or EFAULT. */
static int user_copy(void *mine, const void *p, size_t n, bool in)
{
    static int broken;             /* the syscall is refused here */
    if (!broken) {
        int saved = errno;
        struct iovec l = { mine, n }, r = { (void *)p, n };
        long k = in ? green__syscall(SYS_process_vm_readv, getpid(), &l, 1UL, &r, 1UL, 0UL)
                    : green__syscall(SYS_process_vm_writev, getpid(), &l, 1UL, &r, 1UL, 0UL);
        int e = k < 0 ? errno : 0;
        errno = saved;
        if (k == (long)n)
            return 0;
        if (e == EFAULT)
            return EFAULT;
        broken = 1;
    }
    if (in)
        memcpy(mine, p, n);
    else
        memcpy((void *)p, mine, n);
    return 0;
}

static bool ts_valid(const struct timespec *ts)
{
    return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < NS;
}

static void ns_ts(int64_t ns, struct timespec *ts)
{
    if (ns < 0)
        ns = 0;
    ts->tv_sec = ns / NS;
    ts->tv_nsec = ns % NS;
}

static int64_t add_ns(int64_t a, int64_t b)
{
    return a > INT64_MAX / 2 - b ? INT64_MAX / 2 : a + b;
}

/* Park the caller until the monotonic deadline, as an interruptible call.
 * Returns 0 once it has passed, or EINTR, ECANCELED, ETIMEDOUT (a timeout
 * scope expired first), ENOMEM. May switch. */
static int sleep_until(int64_t deadline)
{
    green__cancel_point(0);
    green__intr_begin();
    int code;
    for (;;) {
        code = green__park(GREEN_WHY_SLEEP, 0, NULL, deadline);
        if (code == ETIMEDOUT && green_now() >= deadline)
            code = 0;
        else if (code == 0)
            continue;              /* not ours to end the sleep */
        break;
    }
    green__intr_end();
    return code == ECANCELED ? green__cancel_point(code) : code;
}

/* Relative sleep of ns > 0; *rem gets the rest on failure. Returns 0 or
 * an errno value. */
static int sleep_rel(int64_t ns, struct timespec *rem)
{
    int64_t deadline = add_ns(green_now(), ns);
    int code = sleep_until(deadline);
    if (code && rem) {
        struct timespec left;
        ns_ts(deadline - green_now(), &left);
        if (user_copy(&left, rem, sizeof left, false))
            return EFAULT;         /* as the kernel, which could not write it */
    }
    return code;
}

/* nanosleep with a request we own. */
static int nanosleep_own(const struct timespec *req, struct timespec *rem)
{
    if (!ts_valid(req))
        return green__real.nanosleep(req, rem);   /* EINVAL */
    int64_t ns = green__ts_ns(req);
    if (ns == 0) {
        green_yield();
        return 0;
    }
    int code = sleep_rel(ns, rem);
    if (code) {
        errno = code;
        return -1;
    }
    return 0;
}

int green_hook_nanosleep(const struct timespec *req, struct timespec *rem)
{
    green__real_init();
    struct timespec r;
    if (!green__hook_on(GREEN_HOOK_SLEEP) || !req || user_copy(&r, req, sizeof r, true))
        return green__real.nanosleep(req, rem);   /* EFAULT */
    return nanosleep_own(&r, rem);
}

int green_hook_usleep(useconds_t usec)
{
    green__real_init();
    struct timespec ts = { .tv_sec = usec / 1000000,
                           .tv_nsec = (long)(usec % 1000000) * 1000 };
    if (!green__hook_on(GREEN_HOOK_SLEEP))
        return green__real.nanosleep(&ts, NULL);
    return nanosleep_own(&ts, NULL);
}

unsigned int green_hook_sleep(unsigned int seconds)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_SLEEP))
        return green__real.sleep(seconds);
    int saved = errno;
    struct timespec ts = { .tv_sec = seconds, .tv_nsec = 0 };
    if (nanosleep_own(&ts, &ts) < 0)
        return (unsigned int)ts.tv_sec;   /* whole seconds not slept */
    errno = saved;
    return 0;
}

/* Absolute CLOCK_REALTIME: convert now, re-check on every wake-up. */
static int sleep_realtime_abs(const struct timespec *req)
{
    int64_t want = green__ts_ns(req);
    for (;;) {
        struct timespec now;
        GREEN_REAL(clock_gettime)(CLOCK_REALTIME, &now);
        int64_t left = want - green__ts_ns(&now);
        if (left <= 0)
            return 0;
        int code = sleep_until(add_ns(green_now(), left));
        if (code)
            return code;
    }
}

int green_hook_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                               struct timespec *rem)
{
    green__real_init();
    struct timespec own;
    if (!green__hook_on(GREEN_HOOK_SLEEP) || !req ||
        (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC) ||
        (flags & ~TIMER_ABSTIME) || user_copy(&own, req, sizeof own, true) ||
        !ts_valid(&own))
        return green__real.clock_nanosleep(clk, flags, req, rem);
    req = &own;
    int code;
    if (!(flags & TIMER_ABSTIME)) {
        int64_t ns = green__ts_ns(req);
        if (ns == 0) {
            green_yield();
            return 0;
        }
        code = sleep_rel(ns, rem);
    } else if (clk == CLOCK_MONOTONIC) {
        code = sleep_until(green__ts_ns(req));
    } else {
        code = sleep_realtime_abs(req);
    }
    return code;
}

int green_hook_sched_yield(void)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_SLEEP))
        return green__real.sched_yield();
    int saved = errno;
    if (green__runq_idle())
        green__real.sched_yield();   /* nobody green to run: let the OS */
    green_yield();
    errno = saved;
    return 0;
}

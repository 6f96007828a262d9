/*
 * hooks.h - the contract of the hook layer.
 *
 * Every interposed libc function has two parts: a one-line exported wrapper
 * in preload/ with the libc name, and the logic here, a normal function
 * named green_hook_NAME with the same signature, callable and testable
 * without LD_PRELOAD. A hook:
 *   1. passes straight through to green__real.NAME unless
 *      green__hook_on(FAMILY) is true (the caller is a green thread other
 *      than the hub, libgreen is not calling for itself, and the family is
 *      switched on);
 *   2. keeps the kernel's semantics exactly: return values, errno, partial
 *      transfers, EINTR per signal(7), timeouts set with SO_RCVTIMEO;
 *   3. on its fast path (a ready descriptor) makes exactly the syscall the
 *      program asked for, allocates nothing, and parks only on EAGAIN.
 */
#ifndef GREEN_HOOKS_H
#define GREEN_HOOKS_H

#include "green_internal.h"
#include "real.h"

/* The hook families (GREEN_HOOK_IO...), green__hook_families and
 * green__preloaded are settings: libgreen/green_internal.h. */

/* Should a hook of this family act (rather than pass through)? */
static inline bool green__hook_on(unsigned family)
{
    return green__in_green() &&
           (green__hook_families & family);
}

/* A timespec the kernel takes as a timeout: not negative, tv_nsec below
 * one second (else EINVAL). */
static inline bool green__ts_valid(const struct timespec *ts)
{
    return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000;
}

/* A valid timespec as nanoseconds, saturated at INT64_MAX / 2 (centuries:
 * never reached, and a deadline of now + it cannot overflow). */
static inline int64_t green__ts_ns(const struct timespec *ts)
{
    if (ts->tv_sec >= INT64_MAX / 1000000000 - 1)
        return INT64_MAX / 2;
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

#endif

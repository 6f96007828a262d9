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

/* Hook families, switched with GREEN_HOOKS (preload/init.c). */
enum {
    GREEN_HOOK_IO     = 1 << 0,  /* sockets, pipes, poll/select/epoll, close/dup/fcntl */
    GREEN_HOOK_SLEEP  = 1 << 1,  /* sleep, usleep, nanosleep, clock_nanosleep, sched_yield */
    GREEN_HOOK_THREAD = 1 << 2,  /* pthreads become green threads */
    GREEN_HOOK_DNS    = 1 << 3,  /* getaddrinfo & co. on the worker pool */
    GREEN_HOOK_FILE   = 1 << 4,  /* regular-file read/write/pread/pwrite on the worker pool */
    GREEN_HOOK_PROC   = 1 << 5,  /* fork, waitpid/wait/wait4, system */
};
#define GREEN_HOOK_DEFAULT (GREEN_HOOK_IO | GREEN_HOOK_SLEEP | GREEN_HOOK_DNS | GREEN_HOOK_PROC)

/* Families switched on (GREEN_HOOK_DEFAULT, plus THREAD under the shim). */
extern unsigned green__hook_families __attribute__((visibility("hidden")));
/* True when running as LD_PRELOAD / greenrun (not linked explicitly). */
extern bool green__preloaded __attribute__((visibility("hidden")));

/* GREEN_LOG_LEVEL: 0 silent, 1 errors, 2 warnings, 3 debug. */
extern int green__log_level __attribute__((visibility("hidden")));

/* Should a hook of this family act (rather than pass through)? */
static inline bool green__hook_on(unsigned family)
{
    return green__in_green() && !green__bypass &&
           (green__hook_families & family);
}

#endif

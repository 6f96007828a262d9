/*
 * pthread_rwlock.c - pthread reader-writer locks under the shim: a
 * private one is the lock core's (libgreen/lock.c) with glibc's kind as
 * the preference (readers by default, writers for
 * PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP); a process-shared one is
 * an owner id and counters under a tiny spinlock, with napping waiters.
 * The layer's essay is at the top of pthread_sync.c.
 *
 * A lock wait may fail only with ETIMEDOUT (green__pt_lock_how); a try
 * by the writer says EBUSY, a lock EDEADLK, as glibc.
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include <limits.h>
#include <stddef.h>
#include <string.h>

#define SHARED_MARK GREEN__PT_SHARED_MARK

/* ---------------------------------------------------------------- rwlock */

struct pt_rwlock {
    struct green__rwlock core;    /* the lock core's: readers (__readers),
                                     a word kept 0, the writer, the
                                     waiting readers and writers */
    unsigned flags;               /* glibc __flags: the rwlock kind */
};
_Static_assert(sizeof(struct pt_rwlock) <= sizeof(pthread_rwlock_t), "rwlock size");
_Static_assert(offsetof(struct pt_rwlock, flags) ==
               offsetof(pthread_rwlock_t, __data.__flags), "rwlock flags offset");

/* A process-shared rwlock (see the shared mutexes in pthread_mutex.c):
 * the writer is an
 * owner id; a tiny spinlock (guard, never held across a switch) makes
 * each check-and-take atomic; waiters nap. */
struct pt_srwlock {
    unsigned readers;             /* read locks held */
    unsigned shared;              /* SHARED_MARK */
    uint64_t writer;              /* green__pt_owner_id() of the writer, or 0 */
    atomic_int guard;             /* protects the three counters */
    unsigned wwait;               /* writers waiting (writer preference) */
    char pad[24];
    unsigned flags;               /* glibc __flags: the rwlock kind */
};
_Static_assert(offsetof(struct pt_srwlock, flags) ==
               offsetof(pthread_rwlock_t, __data.__flags), "srwlock flags offset");
_Static_assert(sizeof(struct pt_srwlock) <= sizeof(pthread_rwlock_t), "srwlock size");
_Static_assert(offsetof(struct pt_srwlock, shared) == offsetof(struct green__rwlock, spare),
               "srwlock mark offset");

static void guard_lock(struct pt_srwlock *rw)
{
    int z = 0;
    while (!atomic_compare_exchange_weak(&rw->guard, &z, 1)) {
        z = 0;
        GREEN_REAL(sched_yield)();   /* held by another process for a few instructions */
    }
}

static void guard_unlock(struct pt_srwlock *rw)
{
    atomic_store(&rw->guard, 0);
}

/* Take a read or write lock without waiting. */
static int srw_try(struct pt_srwlock *rw, bool write)
{
    uint64_t me = green__pt_owner_id(green__current());
    int e = 0;
    guard_lock(rw);
    if (rw->writer == me)
        e = EDEADLK;
    else if (write)
        e = rw->writer || rw->readers ? EBUSY : (rw->writer = me, 0);
    else if (rw->writer || (rw->flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP &&
                            rw->wwait))
        e = EBUSY;
    else if (rw->readers == UINT_MAX)
        e = EAGAIN;
    else
        rw->readers++;
    guard_unlock(rw);
    return e;
}

static void srw_wwait(struct pt_srwlock *rw, int delta)
{
    guard_lock(rw);
    rw->wwait += (unsigned)delta;
    guard_unlock(rw);
}

static int srw_lock(struct pt_srwlock *rw, bool write, int64_t deadline)
{
    int e = srw_try(rw, write);
    if (e != EBUSY)
        return e;
    if (write)
        srw_wwait(rw, +1);
    int64_t ns = 0;
    while ((e = srw_try(rw, write)) == EBUSY) {
        if (green__pt_past(deadline)) {
            e = ETIMEDOUT;
            break;
        }
        ns = green__pt_nap(ns, deadline);
    }
    if (write)
        srw_wwait(rw, -1);
    return e;
}

static int srw_unlock(struct pt_srwlock *rw)
{
    uint64_t me = green__pt_owner_id(green__current());
    int e = 0;
    guard_lock(rw);
    if (rw->writer == me)
        rw->writer = 0;
    else if (rw->readers > 0 && !rw->writer)
        rw->readers--;
    else
        e = EPERM;
    guard_unlock(rw);
    return e;
}

static bool rw_is_shared(const pthread_rwlock_t *prw)
{
    return ((const struct pt_srwlock *)prw)->shared == SHARED_MARK;
}

/* The core's preference for this rwlock's kind: glibc's default and
 * PTHREAD_RWLOCK_PREFER_WRITER_NP prefer readers. */
static enum green__rw_prefer prefer_of(const struct pt_rwlock *rw)
{
    return rw->flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP ? GREEN__RW_WRITERS
                                                                     : GREEN__RW_READERS;
}

/* Should a hook act for this caller on prw? A green caller (and its fair
 * turn), or a plain OS thread on a private rwlock (green__pt_plain). */
static bool rw_on(const pthread_rwlock_t *prw)
{
    return green__pt_on_turn() || (green__pt_plain() && !rw_is_shared(prw));
}

static int rw_lock(pthread_rwlock_t *prw, bool write, int64_t deadline)
{
    if (rw_is_shared(prw))
        return srw_lock((struct pt_srwlock *)prw, write, deadline);
    struct pt_rwlock *rw = (struct pt_rwlock *)prw;
    return green__rwlock_lock(&rw->core, green__current(), write, prefer_of(rw), deadline,
                              &green__pt_lock_how);
}

/* Lock without waiting, either kind of rwlock. */
static int rw_try_any(pthread_rwlock_t *prw, bool write)
{
    if (rw_is_shared(prw))
        return srw_try((struct pt_srwlock *)prw, write);
    struct pt_rwlock *rw = (struct pt_rwlock *)prw;
    return green__rwlock_trylock(&rw->core, green__current(), write, prefer_of(rw));
}

static int rw_timed(pthread_rwlock_t *prw, bool write, clockid_t clk,
                    const struct timespec *abs)
{
    int e = rw_try_any(prw, write);
    if (e != EBUSY)
        return e;
    int64_t deadline;
    e = green__pt_deadline(clk, abs, &deadline);
    return e ? e : rw_lock(prw, write, deadline);
}

int green_hook_pthread_rwlock_init(pthread_rwlock_t *prw, const pthread_rwlockattr_t *a)
{
    bool plain = false;
    if (!green__pt_on() && !(plain = green__pt_plain()))
        return GREEN_REAL(pthread_rwlock_init)(prw, a);
    int kind = PTHREAD_RWLOCK_DEFAULT_NP, pshared = PTHREAD_PROCESS_PRIVATE;
    if (a && (pthread_rwlockattr_getkind_np(a, &kind) != 0 ||
              pthread_rwlockattr_getpshared(a, &pshared) != 0))
        return EINVAL;
    if (plain && pshared != PTHREAD_PROCESS_PRIVATE)
        return GREEN_REAL(pthread_rwlock_init)(prw, a);
    memset(prw, 0, sizeof *prw);
    ((struct pt_rwlock *)prw)->flags = (unsigned)kind;
    if (pshared != PTHREAD_PROCESS_PRIVATE)
        ((struct pt_srwlock *)prw)->shared = SHARED_MARK;
    return 0;
}

int green_hook_pthread_rwlock_destroy(pthread_rwlock_t *prw)
{
    if (!green__pt_on() && !(green__pt_plain() && !rw_is_shared(prw)))
        return GREEN_REAL(pthread_rwlock_destroy)(prw);
    if (rw_is_shared(prw))
        return 0;
    /* glibc's destroy does nothing and says 0, held or not (Open POSIX
     * pthread_rwlock_timedwrlock/6-2 destroys one a finished thread still
     * holds). Waiters queued in it would be left dangling: EBUSY then,
     * which POSIX allows for a lock in use. */
    const struct green__rwlock *core = &((struct pt_rwlock *)prw)->core;
    return green__waitq_empty(&core->rq) && green__waitq_empty(&core->wq) ? 0 : EBUSY;
}

int green_hook_pthread_rwlock_rdlock(pthread_rwlock_t *prw)
{
    if (!rw_on(prw))
        return GREEN_REAL(pthread_rwlock_rdlock)(prw);
    return rw_lock(prw, false, GREEN_FOREVER);
}

int green_hook_pthread_rwlock_tryrdlock(pthread_rwlock_t *prw)
{
    if (!rw_on(prw))
        return GREEN_REAL(pthread_rwlock_tryrdlock)(prw);
    int e = rw_try_any(prw, false);
    return e == EDEADLK ? EBUSY : e;
}

int green_hook_pthread_rwlock_timedrdlock(pthread_rwlock_t *prw, const struct timespec *abs)
{
    if (!rw_on(prw))
        return GREEN_REAL(pthread_rwlock_timedrdlock)(prw, abs);
    return rw_timed(prw, false, CLOCK_REALTIME, abs);
}

int green_hook_pthread_rwlock_clockrdlock(pthread_rwlock_t *prw, clockid_t clk,
                                          const struct timespec *abs)
{
    if (!rw_on(prw))
        return GREEN_REAL(pthread_rwlock_clockrdlock)(prw, clk, abs);
    return rw_timed(prw, false, clk, abs);
}

int green_hook_pthread_rwlock_wrlock(pthread_rwlock_t *prw)
{
    if (!rw_on(prw))
        return GREEN_REAL(pthread_rwlock_wrlock)(prw);
    return rw_lock(prw, true, GREEN_FOREVER);
}

int green_hook_pthread_rwlock_trywrlock(pthread_rwlock_t *prw)
{
    if (!rw_on(prw))
        return GREEN_REAL(pthread_rwlock_trywrlock)(prw);
    int e = rw_try_any(prw, true);
    return e == EDEADLK ? EBUSY : e;
}

int green_hook_pthread_rwlock_timedwrlock(pthread_rwlock_t *prw, const struct timespec *abs)
{
    if (!rw_on(prw))
        return GREEN_REAL(pthread_rwlock_timedwrlock)(prw, abs);
    return rw_timed(prw, true, CLOCK_REALTIME, abs);
}

int green_hook_pthread_rwlock_clockwrlock(pthread_rwlock_t *prw, clockid_t clk,
                                          const struct timespec *abs)
{
    if (!rw_on(prw))
        return GREEN_REAL(pthread_rwlock_clockwrlock)(prw, clk, abs);
    return rw_timed(prw, true, clk, abs);
}

int green_hook_pthread_rwlock_unlock(pthread_rwlock_t *prw)
{
    if (!rw_on(prw))
        return GREEN_REAL(pthread_rwlock_unlock)(prw);
    if (rw_is_shared(prw))
        return srw_unlock((struct pt_srwlock *)prw);
    struct pt_rwlock *rw = (struct pt_rwlock *)prw;
    if (green__likely(!__atomic_load_n(&green__prio_used, __ATOMIC_RELAXED)))
        return green__rwlock_unlock(&rw->core, green__current(), prefer_of(rw));
    int e = green__rwlock_unlock(&rw->core, green__current(), prefer_of(rw));
    green__prio_preempt_slow();   /* granted to a waiter ranked above us */
    return e;
}

/*
 * pthread_barrier.c - pthread barriers and spinlocks under the shim. The
 * layer's essay is at the top of pthread_sync.c.
 *
 * A barrier is a round number and a queue: the last thread of a round
 * bumps the number and wakes everyone; a process-shared barrier's waiters
 * nap until the number changes. Neither wait is a cancellation point: a
 * kill while waiting is remembered for the next park. The lock core has
 * no barrier (green.h has none), so this one is its own. A spinlock keeps
 * libc's protocol and yields while it is held.
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include <limits.h>
#include <string.h>

#define SHARED_MARK GREEN__PT_SHARED_MARK

/* --------------------------------------------------------------- barrier */

struct pt_barrier {
    unsigned count;               /* threads per round */
    _Atomic unsigned arrived;     /* threads waiting in this round */
    _Atomic unsigned round;       /* bumped when a round completes */
    unsigned shared;              /* 0, or SHARED_MARK (q unused) */
    struct green__cond q;         /* the waiting threads (the lock core's:
                                     they may be on several hubs) */
};
_Static_assert(sizeof(struct pt_barrier) <= sizeof(pthread_barrier_t), "barrier size");

/* Nap until *word differs from old, the deadline passes (ETIMEDOUT) or a
 * cancellation is requested (ECANCELED, when cancel is true). */
static int nap_until_changed(_Atomic unsigned *word, unsigned old, int64_t deadline,
                             bool cancel)
{
    struct green_thread *self = green__current();
    int64_t ns = 0;
    while (atomic_load(word) == old) {
        if (cancel && ((uintptr_t)self->user & (PT_CANCEL_REQUESTED | PT_CANCEL_DISABLED)) ==
                          PT_CANCEL_REQUESTED)
            return ECANCELED;
        if (green__pt_past(deadline))
            return ETIMEDOUT;
        ns = green__pt_nap(ns, deadline);
    }
    return 0;
}

int green_hook_pthread_barrier_init(pthread_barrier_t *pb, const pthread_barrierattr_t *a,
                                    unsigned count)
{
    if (!green__pt_on())
        return GREEN_REAL(pthread_barrier_init)(pb, a, count);
    int pshared = PTHREAD_PROCESS_PRIVATE;
    if (count == 0 || count > INT_MAX ||
        (a && pthread_barrierattr_getpshared(a, &pshared) != 0))
        return EINVAL;
    memset(pb, 0, sizeof *pb);
    ((struct pt_barrier *)pb)->count = count;
    if (pshared != PTHREAD_PROCESS_PRIVATE)
        ((struct pt_barrier *)pb)->shared = SHARED_MARK;
    return 0;
}

int green_hook_pthread_barrier_destroy(pthread_barrier_t *pb)
{
    if (!green__pt_on())
        return GREEN_REAL(pthread_barrier_destroy)(pb);
    return ((struct pt_barrier *)pb)->arrived ? EBUSY : 0;
}

/* A waiter queued itself on the barrier's condition: if the round ended
 * meanwhile, the last thread's broadcast may have looked before it was
 * queued, so it wakes the queue itself. The last thread bumps the round
 * and then reads the queue; a waiter queues and then reads the round;
 * with both sequentially consistent, one of them sees the other. */
struct recheck {
    struct pt_barrier *b;
    unsigned round;
};

static void barrier_recheck(void *arg)
{
    struct recheck *r = arg;
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&r->b->round) != r->round)
        green__cond_broadcast(&r->b->q);
}

/* A kill or a signal ends one park and the loop parks again (a kill is
 * remembered; a signal's handler runs as the thread, awake: retry_other
 * says the wait goes on); once there are two hubs the core waits for
 * remote wake-ups by itself (lock.c, lock_multi). */
static const struct green__lock_how barrier_how = { .retry_other = true };

/* Not a cancellation point: a kill while waiting is remembered. */
int green_hook_pthread_barrier_wait(pthread_barrier_t *pb)
{
    if (!green__pt_on_turn())
        return GREEN_REAL(pthread_barrier_wait)(pb);
    struct pt_barrier *b = (struct pt_barrier *)pb;
    if (b->shared == SHARED_MARK) {
        unsigned round = atomic_load(&b->round);
        if (atomic_fetch_add(&b->arrived, 1) + 1 >= b->count) {
            atomic_store(&b->arrived, 0);
            atomic_fetch_add(&b->round, 1);
            return PTHREAD_BARRIER_SERIAL_THREAD;
        }
        nap_until_changed(&b->round, round, GREEN_FOREVER, false);
        return 0;
    }
    unsigned round = atomic_load(&b->round);
    if (atomic_fetch_add(&b->arrived, 1) + 1 >= b->count) {
        atomic_store(&b->arrived, 0);
        atomic_fetch_add(&b->round, 1);
        atomic_thread_fence(memory_order_seq_cst);   /* see barrier_recheck */
        green__cond_broadcast(&b->q);
        return PTHREAD_BARRIER_SERIAL_THREAD;
    }
    struct recheck rc = { b, round };
    bool killed = false;
    while (atomic_load(&b->round) == round)
        if (green__cond_park(&b->q, green__current(), GREEN_FOREVER, &barrier_how,
                             barrier_recheck, &rc) == ECANCELED)
            killed = true;
    if (killed)
        green__pt_rearm_kill();
    return 0;
}

/* ------------------------------------------------------------------ spin */

/* libc's spinlock protocol (0 free, 1 held) is kept; a green thread that
 * finds it held yields so the holder, on the same OS thread, can run. */
int green_hook_pthread_spin_lock(pthread_spinlock_t *s)
{
    if (!green__pt_on_turn())
        return GREEN_REAL(pthread_spin_lock)(s);
    bool killed = false;
    while (GREEN_REAL(pthread_spin_trylock)(s) != 0)
        if (green_yield() != 0 && errno == ECANCELED) {
            green__pt_lock_killed();
            killed = true;
        }
    if (killed)
        green__pt_rearm_kill();
    return 0;
}

int green_hook_pthread_spin_trylock(pthread_spinlock_t *s)
{
    if (green__pt_on())
        green__pt_enter();   /* a trylock loop must let the holder run */
    return GREEN_REAL(pthread_spin_trylock)(s);
}

int green_hook_pthread_spin_unlock(pthread_spinlock_t *s)
{
    return GREEN_REAL(pthread_spin_unlock)(s);
}

/*
 * pthread_cond.c - pthread condition variables under the shim: a private
 * one is the lock core's (libgreen/lock.c), waited on with any kind of
 * pthread mutex; a process-shared one is a sequence number and tokens
 * that waiters nap on. The layer's essay is at the top of pthread_sync.c.
 *
 * A condition wait is a cancellation point: a pthread_cancel acts when
 * the wait ends, with the mutex retaken; any other kill is a spurious
 * wake-up. The retake is a lock wait that may not fail. A condition
 * variable may be signalled from outside the green world (a plain OS
 * thread, a handler on the hub): its waiters park with a mark that the
 * outside wake-up finds (pthread_sync.c).
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include "hooks_signal.h"
#include <stddef.h>
#include <string.h>

/* ------------------------------------------------------------------ cond */

struct pt_cond {
    struct green__cond core;      /* the lock core's: waiters, FIFO
                                     (__wseq, __g1_start); unused when
                                     shared */
    int clock;                    /* CLOCK_REALTIME (0) or CLOCK_MONOTONIC */
    int shared;                   /* 0, or SHARED_MARK: process-shared */
    _Atomic unsigned seq;         /* shared: bumped by every broadcast */
    _Atomic unsigned waiters;     /* shared: waiters that may take a token */
    _Atomic unsigned tokens;      /* shared: signals not taken yet, never
                                     more than waiters */
};
_Static_assert(sizeof(struct pt_cond) <= sizeof(pthread_cond_t), "cond size");
_Static_assert(offsetof(struct pt_cond, core) == 0, "cond core offset");

/* Process-shared condition variables, barriers and rwlocks hold no
 * pointer (see the shared mutexes in pthread_mutex.c): a number that
 * every wake-up changes, and waiters that nap until it changes (marked
 * GREEN__PT_SHARED_MARK). A shared condition variable's signal leaves one
 * token that one napping waiter takes (so it wakes one waiter, as
 * natively), its broadcast changes the number. */
#define SHARED_MARK GREEN__PT_SHARED_MARK

static bool cond_is_shared(const pthread_cond_t *pc)
{
    return ((const struct pt_cond *)pc)->shared == SHARED_MARK;
}

int green_hook_pthread_cond_init(pthread_cond_t *pc, const pthread_condattr_t *a)
{
    bool plain = false;
    if (!green__pt_on() && !(plain = green__pt_plain()))
        return GREEN_REAL(pthread_cond_init)(pc, a);
    clockid_t clk = CLOCK_REALTIME;
    int pshared = PTHREAD_PROCESS_PRIVATE;
    if (a && (pthread_condattr_getclock(a, &clk) != 0 ||
              pthread_condattr_getpshared(a, &pshared) != 0))
        return EINVAL;
    if (plain && pshared != PTHREAD_PROCESS_PRIVATE)
        return GREEN_REAL(pthread_cond_init)(pc, a);
    memset(pc, 0, sizeof *pc);
    ((struct pt_cond *)pc)->clock = (int)clk;
    if (pshared != PTHREAD_PROCESS_PRIVATE) {
        /* A fresh sequence number: a waiter still napping on a destroyed
         * and re-initialised condvar must see a change (no ABA on 0). */
        static atomic_uint inits;
        ((struct pt_cond *)pc)->shared = SHARED_MARK;
        atomic_store(&((struct pt_cond *)pc)->seq,
                     (unsigned)green_now() ^ (unsigned)getpid() << 16 ^
                         atomic_fetch_add(&inits, 0x9e3779b9u));
    }
    return 0;
}

int green_hook_pthread_cond_destroy(pthread_cond_t *pc)
{
    if (!green__pt_on() && !(green__pt_plain() && !cond_is_shared(pc)))
        return GREEN_REAL(pthread_cond_destroy)(pc);
    if (cond_is_shared(pc))
        return 0;
    return green__waitq_empty(&((struct pt_cond *)pc)->core.q) ? 0 : EBUSY;
}

/* Take one signal's token, if any is left. */
static bool scond_take(struct pt_cond *c)
{
    unsigned n = atomic_load(&c->tokens);
    while (n > 0)
        if (atomic_compare_exchange_weak(&c->tokens, &n, n - 1))
            return true;
    return false;
}

/* A shared condvar waiter (counted in c->waiters) naps until it takes a
 * signal's token, a broadcast changes c->seq, the deadline passes
 * (ETIMEDOUT) or a cancel is requested (ECANCELED). It leaves the count
 * on the way out, and gives back a token that no waiter is left to take
 * (one that a signal made for it while it timed out). */
static int scond_nap(struct pt_cond *c, unsigned seq, int64_t deadline)
{
    struct green_thread *self = green__current();
    int64_t ns = 0;
    int code = 0;
    while (!scond_take(c) && atomic_load(&c->seq) == seq) {
        if (((uintptr_t)self->user & (PT_CANCEL_REQUESTED | PT_CANCEL_DISABLED)) ==
            PT_CANCEL_REQUESTED) {
            code = ECANCELED;
            break;
        }
        if (green__pt_past(deadline)) {
            code = ETIMEDOUT;
            break;
        }
        ns = green__pt_nap(ns, deadline);
    }
    unsigned w = atomic_fetch_sub(&c->waiters, 1) - 1;
    unsigned t = atomic_load(&c->tokens);
    while (t > w && !atomic_compare_exchange_weak(&c->tokens, &t, t - 1))
        ;
    return code;
}

/* green__cond_park's release of a shared or libc-only mutex. */
static void unlock_any(void *pm)
{
    green__pt_mutex_unlock(pm);
}

/* Release pm completely, park on pc, take pm back (at its old depth).
 * A cancellation point; a kill that is not a pthread_cancel is a spurious
 * wake-up. A private condition variable on a private mutex is the lock
 * core's condition wait; a shared one, or a shared or libc-only mutex,
 * goes through this layer's own unlock, nap or park, and lock. */
static int cond_wait(pthread_cond_t *pc, pthread_mutex_t *pm, int64_t deadline)
{
    struct pt_cond *c = (struct pt_cond *)pc;
    struct green__mutex *m = (struct green__mutex *)(void *)pm;
    struct green_thread *self = green__current();
    const struct green__lock_how *how = &green__pt_cond_how[self->ctx->block_on_deadlock];
    bool libc = green__pt_mutex_is_libc(pm);
    if (!libc && !green__pt_mutex_owned_by(pm, self))
        return EPERM;
    green__pt_cancel_point(0);
    int code, relock = 0;
    if (c->shared != SHARED_MARK && !libc && !green__pt_mutex_is_shared(pm)) {
        green__pt_outside_ensure();
        code = green__cond_wait(&c->core, m, self, deadline, how);
    } else {
        unsigned depth = libc ? 0 : m->depth;
        if (!libc)
            m->depth = 1;
        if (c->shared == SHARED_MARK) {
            unsigned seq = atomic_load(&c->seq);
            atomic_fetch_add(&c->waiters, 1);
            green__pt_mutex_unlock(pm);
            code = scond_nap(c, seq, deadline);
        } else {
            green__pt_outside_ensure();
            code = green__cond_park(&c->core, self, deadline, how, unlock_any, pm);
        }
        relock = green__pt_mutex_lock(pm, GREEN_FOREVER);
        if (!libc)
            m->depth = depth;
    }
    green__pt_cancel_point(code);
    if (relock == EOWNERDEAD)
        return EOWNERDEAD;
    return code == ETIMEDOUT ? ETIMEDOUT : 0;
}

/* A plain OS thread (green__pt_plain) waits on a private condition
 * variable: the core's condition wait on a private core mutex, or with a
 * libc-only mutex (one libc initialised: jemalloc's, made before the
 * shim's constructor) the core's park between libc's unlock and lock;
 * all on futexes. Not a cancellation point here: such a thread is
 * libc's, and so is its cancellation. */
static bool cond_plain(const pthread_cond_t *pc, const pthread_mutex_t *pm)
{
    return green__pt_plain() && !cond_is_shared(pc) && !green__pt_mutex_is_shared(pm);
}

static void unlock_real(void *pm)
{
    GREEN_REAL(pthread_mutex_unlock)(pm);
}

static int cond_wait_plain(pthread_cond_t *pc, pthread_mutex_t *pm, int64_t deadline)
{
    struct green__cond *core = &((struct pt_cond *)pc)->core;
    struct green__mutex *m = (struct green__mutex *)(void *)pm;
    int code;
    if (green__pt_mutex_is_libc(pm)) {
        code = green__cond_park(core, NULL, deadline, &green__pt_cond_how[1], unlock_real, pm);
        GREEN_REAL(pthread_mutex_lock)(pm);
    } else {
        if (!green__mutex_held_by(m, NULL))
            return EPERM;
        code = green__cond_wait(core, m, NULL, deadline, &green__pt_cond_how[1]);
    }
    return code == ETIMEDOUT ? ETIMEDOUT : 0;
}

int green_hook_pthread_cond_wait(pthread_cond_t *pc, pthread_mutex_t *pm)
{
    if (!green__pt_on_turn())
        return cond_plain(pc, pm) ? cond_wait_plain(pc, pm, GREEN_FOREVER)
                                  : GREEN_REAL(pthread_cond_wait)(pc, pm);
    return cond_wait(pc, pm, GREEN_FOREVER);
}

int green_hook_pthread_cond_timedwait(pthread_cond_t *pc, pthread_mutex_t *pm,
                                      const struct timespec *abs)
{
    bool plain = false;
    if (!green__pt_on_turn() && !(plain = cond_plain(pc, pm)))
        return GREEN_REAL(pthread_cond_timedwait)(pc, pm, abs);
    int64_t deadline;
    int e = green__pt_deadline(((struct pt_cond *)pc)->clock, abs, &deadline);
    return e ? e : plain ? cond_wait_plain(pc, pm, deadline) : cond_wait(pc, pm, deadline);
}

int green_hook_pthread_cond_clockwait(pthread_cond_t *pc, pthread_mutex_t *pm,
                                      clockid_t clk, const struct timespec *abs)
{
    bool plain = false;
    if (!green__pt_on_turn() && !(plain = cond_plain(pc, pm)))
        return GREEN_REAL(pthread_cond_clockwait)(pc, pm, clk, abs);
    int64_t deadline;
    int e = green__pt_deadline(clk, abs, &deadline);
    return e ? e : plain ? cond_wait_plain(pc, pm, deadline) : cond_wait(pc, pm, deadline);
}

/* Without libc waiters (glibc's __wrefs counts them, in bytes our layout
 * leaves zero) libc's signal is a no-op, so a plain OS thread signalling a
 * condition variable green threads wait on wakes them from outside. */
static bool cond_outside(pthread_cond_t *pc)
{
    if (!(green__hook_families & GREEN_HOOK_THREAD) ||
        __atomic_load_n(&pc->__data.__wrefs, __ATOMIC_ACQUIRE) >> 3)
        return false;
    green__pt_outside_poke(GREEN__PT_OUTSIDE_COND);
    return true;
}

/* The cond signals are async-signal-safe in practice (programs call them
 * from handlers), so they take their fair turn only outside a handler: a
 * thread signalling in a loop until a waiter reacts must let it run. */
static void signal_side_turn(void)
{
    if (green__tls_ctx && !green__in_handler()) {   /* not a plain thread */
        green__fair_turn(green__tls_ctx);
        green__prio_preempt();   /* woke a waiter ranked above us */
    }
}

int green_hook_pthread_cond_signal(pthread_cond_t *pc)
{
    if (cond_is_shared(pc) && (green__hook_families & GREEN_HOOK_THREAD)) {
        /* One token, if some waiter has none yet. */
        struct pt_cond *c = (struct pt_cond *)pc;
        unsigned t = atomic_load(&c->tokens);
        while (t < atomic_load(&c->waiters) &&
               !atomic_compare_exchange_weak(&c->tokens, &t, t + 1))
            ;
        return 0;
    }
    if (!green__pt_on() && !green__pt_plain())
        return cond_outside(pc) ? 0 : GREEN_REAL(pthread_cond_signal)(pc);
    green__cond_signal(&((struct pt_cond *)pc)->core);   /* thread-safe */
    signal_side_turn();
    return 0;
}

int green_hook_pthread_cond_broadcast(pthread_cond_t *pc)
{
    if (cond_is_shared(pc) && (green__hook_families & GREEN_HOOK_THREAD)) {
        /* Every waiter now sees a new number; later ones take no token. */
        atomic_fetch_add(&((struct pt_cond *)pc)->seq, 1);
        atomic_store(&((struct pt_cond *)pc)->tokens, 0);
        return 0;
    }
    if (!green__pt_on() && !green__pt_plain())
        return cond_outside(pc) ? 0 : GREEN_REAL(pthread_cond_broadcast)(pc);
    green__cond_broadcast(&((struct pt_cond *)pc)->core);
    signal_side_turn();
    return 0;
}

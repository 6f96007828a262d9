/*
 * sync.c - green.h's events, semaphores, mutexes, condition variables and
 * reader-writer locks. Events are here; the other objects are thin
 * wrappers over the lock core (lock.c, whose essay explains the wait
 * queues, the hand-off and why it is safe, and the fairness).
 *
 * What is specific to green.h. Each public object (green_mutex_t, ...) is
 * a union of eight pointers that we reinterpret as a small private struct
 * (the core's, for the locks); all-zero is a valid, unlocked, empty
 * state, so static and stack objects need no init call.
 *
 * Errors. Every function checks for NULL (EINVAL) and relative timeouts
 * below GREEN_FOREVER (EINVAL). Timeouts are relative nanoseconds turned
 * into one deadline for the whole call. The innermost timeout scope
 * (green_timeout_begin) applies to every park, as everywhere. A wait
 * fails with whatever ended its park (ETIMEDOUT, ECANCELED): the core's
 * plain policy (green__lock_plain).
 *
 * Mutexes. A plain mutex is the core's errorcheck type (relock by the
 * owner: EDEADLK; unlock by another: EPERM; trylock by the owner: EBUSY);
 * a recursive one counts its depth.
 *
 * Condition variables. green_cond_wait releases the mutex completely
 * (whatever a recursive mutex's depth), parks, and always retakes the mutex
 * with its old depth before returning, whatever the result. The retake
 * ignores timeout scopes (an expired scope would otherwise fail every park
 * at once and the retake could never succeed); a kill that interrupts the
 * retake is consumed, the retake continues, and the kill is made pending
 * again so the caller's next park fails with ECANCELED. The only way to
 * return without the mutex is EDEADLK: the hub found that nothing could
 * ever release it.
 *
 * Reader-writer locks use the core's FIFO preference: a waiting writer
 * blocks new readers (no writer starvation), so a reader that read-locks
 * again while a writer waits deadlocks, as with glibc's writer-preferring
 * rwlocks. Waiters are served FIFO: a run of readers at the head of the
 * queue is granted together, a writer alone.
 *
 * Threading: mutexes, condition variables, semaphores and rwlocks are
 * the lock core's and may be used at once from several OS threads, each
 * with its own hub (every OS thread that calls green_* gets one): see
 * "Threads" in lock.c. Events belong to one OS thread (the owner of the
 * waiting green threads), with one exception: an event made with
 * green_event_init_remote can be set from any OS thread. The remote
 * thread touches only the atomic posted flag and posts the event's
 * embedded green__remote to the owner's hub (ev_async); the set itself
 * runs on the owner thread, so the flag, the generation and the wait queue
 * stay single-threaded. While a green thread waits on a remote event it
 * holds a green__remote_expect reference, so the hub waits for the set
 * instead of reporting a deadlock.
 *
 * Rejected: per-object heap state (the public types must work when
 * zero-filled and never fail with ENOMEM); see lock.c for the rest.
 */
#define _GNU_SOURCE
#include "lock.h"
#include <stddef.h>
#include <string.h>

struct event {
    bool set;                      /* the flag (owner thread only) */
    bool remote;                   /* green_event_init_remote was called */
    atomic_uint rstate;            /* remote sets: RS_QUEUED, RS_PENDING */
    uint64_t gen;                  /* bumped by every set: wakes a waiter
                                      even if cleared before it runs */
    struct green__waitq waiters;   /* threads in green_event_wait */
    struct green__ctx *ctx;        /* owner hub, for remote sets */
    struct green__remote post;     /* the queued remote set */
};

_Static_assert(sizeof(struct event) <= sizeof(green_event_t), "event size");
_Static_assert(sizeof(struct green__sem) <= sizeof(green_sem_t), "sem size");
_Static_assert(sizeof(struct green__mutex) <= sizeof(green_mutex_t), "mutex size");
_Static_assert(sizeof(struct green__cond) <= sizeof(green_cond_t), "cond size");
_Static_assert(sizeof(struct green__rwlock) <= sizeof(green_rwlock_t), "rwlock size");

#define EVENT(p)  ((struct event *)(void *)(p))
#define SEM(p)    ((struct green__sem *)(void *)(p))
#define MUTEX(p)  ((struct green__mutex *)(void *)(p))
#define COND(p)   ((struct green__cond *)(void *)(p))
#define RWLOCK(p) ((struct green__rwlock *)(void *)(p))

/* ---------------------------------------------------------------- helpers */

/* The calling green thread, creating the hub on first use; NULL with errno
 * ENOMEM. */
static struct green_thread *self_thread(void)
{
    struct green_thread *t = green__current();
    if (green__likely(t != NULL))
        return t;
    struct green__ctx *c = green__ctx_get();
    return c ? c->current : NULL;
}

/* Fail with EINVAL and return -1. */
static int einval(void)
{
    errno = EINVAL;
    return -1;
}

/* Deadline for a relative timeout; false for a timeout below FOREVER. */
static bool deadline_of(int64_t timeout_ns, int64_t *deadline)
{
    if (timeout_ns < GREEN_FOREVER)
        return false;
    *deadline = green__deadline(timeout_ns);
    return true;
}

/* ------------------------------------------------------------------ event */

void green_event_init(green_event_t *ev)
{
    if (ev)
        memset(ev, 0, sizeof *ev);
}

void green_event_set(green_event_t *ev)
{
    struct event *e = EVENT(ev);
    if (!e || e->set)
        return;
    e->set = true;
    e->gen++;
    green__waitq_wake_all(&e->waiters, 0);
}

/* Bits of event.rstate. QUEUED: the embedded post is in the owner hub's
 * list (it can be in it only once). PENDING: a remote set happened that
 * the owner has not applied yet. The owner applies a pending set before
 * it clears, reads or waits (remote_flush), not only when the hub runs
 * the post: a set_remote that returned before the owner's clear must not
 * land after it (a set in the past would otherwise undo a clear in the
 * present). The post, when it runs, drops QUEUED first and then applies
 * PENDING; a set_remote in between posts again, and its set is applied
 * by whichever comes first. */
#define RS_QUEUED  1u
#define RS_PENDING 2u

static void remote_flush(struct event *e)
{
    if (e->remote &&
        (atomic_fetch_and(&e->rstate, ~RS_PENDING) & RS_PENDING))
        green_event_set((green_event_t *)(void *)e);
}

void green_event_clear(green_event_t *ev)
{
    if (!ev)
        return;
    remote_flush(EVENT(ev));
    EVENT(ev)->set = false;
}

bool green_event_is_set(const green_event_t *ev)
{
    if (!ev)
        return false;
    struct event *e = (struct event *)(void *)(uintptr_t)ev;
    remote_flush(e);
    return e->set;
}

/* Park on e; a remote event keeps the hub from reporting a deadlock while
 * we wait. May switch. */
static int event_park(struct event *e, int64_t deadline)
{
    if (e->remote)
        green__remote_expect(e->ctx, +1);
    int code = green__park(GREEN_WHY_EVENT, (uintptr_t)e, &e->waiters,
                           deadline);
    if (e->remote)
        green__remote_expect(e->ctx, -1);
    return code;
}

/* May switch. */
int green_event_wait(green_event_t *ev, int64_t timeout_ns)
{
    struct event *e = EVENT(ev);
    int64_t deadline;
    if (!e || !deadline_of(timeout_ns, &deadline))
        return einval();
    remote_flush(e);
    if (e->set)
        return 0;
    if (!self_thread())
        return -1;
    uint64_t gen = e->gen;
    for (;;) {
        int code = event_park(e, deadline);
        /* A set while we waited counts even if cleared since. */
        if (e->set || e->gen != gen)
            return 0;
        if (code)
            return green__result(code);
    }
}

/* Runs on the owner's hub: the remote set takes effect. */
static void event_remote_run(struct green__remote *r)
{
    struct event *e = (struct event *)(void *)
        ((char *)r - offsetof(struct event, post));
    atomic_fetch_and(&e->rstate, ~RS_QUEUED);
    remote_flush(e);
}

int green_event_init_remote(green_event_t *ev)
{
    if (!ev)
        return einval();
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return -1;
    green_event_init(ev);
    struct event *e = EVENT(ev);
    e->remote = true;
    e->ctx = c;
    e->post.run = event_remote_run;
    return 0;
}

/* Any OS thread. At most one post is queued at a time (RS_QUEUED); sets
 * that arrive meanwhile are merged into it. Never switches. */
void green_event_set_remote(green_event_t *ev)
{
    struct event *e = EVENT(ev);
    if (!e || !e->remote)
        return;
    if (!(atomic_fetch_or(&e->rstate, RS_QUEUED | RS_PENDING) & RS_QUEUED))
        green__remote_post(e->ctx, &e->post);
}

/* -------------------------------------------------------------- semaphore */

int green_sem_init(green_sem_t *s, int value)
{
    if (!s || value < 0)
        return einval();
    memset(s, 0, sizeof *s);
    SEM(s)->value = (uint32_t)value;
    return 0;
}

/* May switch. */
int green_sem_wait(green_sem_t *ps, int64_t timeout_ns)
{
    struct green__sem *s = SEM(ps);
    int64_t deadline;
    if (!s || !deadline_of(timeout_ns, &deadline))
        return einval();
    struct green_thread *self = self_thread();
    if (!self)
        return -1;
    return green__result(green__sem_wait(s, self, deadline, &green__lock_plain));
}

int green_sem_trywait(green_sem_t *ps)
{
    if (!ps)
        return einval();
    return green__result(green__sem_trytake(SEM(ps)));
}

/* Hands the unit to the first waiter if there is one. Never switches. */
int green_sem_post(green_sem_t *ps)
{
    if (!ps)
        return einval();
    return green__result(green__sem_post(SEM(ps)));
}

int green_sem_value(const green_sem_t *ps)
{
    if (!ps)
        return einval();
    return (int)__atomic_load_n(&((const struct green__sem *)(const void *)ps)->value,
                                __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------------ mutex */

int green_mutex_init(green_mutex_t *pm, int type)
{
    if (!pm || (type != GREEN_MUTEX_PLAIN && type != GREEN_MUTEX_RECURSIVE))
        return einval();
    memset(pm, 0, sizeof *pm);
    MUTEX(pm)->kind = type;
    return 0;
}

/* The core's type of a green.h mutex: plain is errorcheck. */
static int type_of(const struct green__mutex *m)
{
    return m->kind == GREEN_MUTEX_RECURSIVE ? GREEN__MUTEX_RECURSIVE
                                            : GREEN__MUTEX_ERRORCHECK;
}

/* May switch. */
int green_mutex_lock(green_mutex_t *pm, int64_t timeout_ns)
{
    struct green__mutex *m = MUTEX(pm);
    int64_t deadline;
    if (!m || !deadline_of(timeout_ns, &deadline))
        return einval();
    struct green_thread *self = self_thread();
    if (!self)
        return -1;
    return green__result(green__mutex_lock(m, self, type_of(m), deadline, &green__lock_plain));
}

int green_mutex_trylock(green_mutex_t *pm)
{
    struct green__mutex *m = MUTEX(pm);
    if (!m)
        return einval();
    struct green_thread *self = self_thread();
    if (!self)
        return -1;
    int e = green__mutex_trylock(m, self, type_of(m));
    return green__result(e == EDEADLK ? EBUSY : e);
}

/* Never switches. */
int green_mutex_unlock(green_mutex_t *pm)
{
    struct green__mutex *m = MUTEX(pm);
    if (!m)
        return einval();
    return green__result(green__mutex_unlock(m, green__current(), type_of(m)));
}

/* ------------------------------------------------------------- condition */

void green_cond_init(green_cond_t *c)
{
    if (c)
        memset(c, 0, sizeof *c);
}

/* The retake of a condition wait: no timeout scopes, kills deferred. */
static const struct green__lock_how cond_how = {
    .defer_kill = true,
    .no_scopes = true,
};

/* May switch. */
int green_cond_wait(green_cond_t *pc, green_mutex_t *pm, int64_t timeout_ns)
{
    struct green__cond *c = COND(pc);
    struct green__mutex *m = MUTEX(pm);
    int64_t deadline;
    if (!c || !m || !deadline_of(timeout_ns, &deadline))
        return einval();
    struct green_thread *self = green__current();
    if (!self || !green__mutex_held_by(m, self)) {
        errno = EPERM;
        return -1;
    }
    return green__result(green__cond_wait(c, m, self, deadline, &cond_how));
}

void green_cond_signal(green_cond_t *pc)
{
    if (pc)
        green__cond_signal(COND(pc));
}

void green_cond_broadcast(green_cond_t *pc)
{
    if (pc)
        green__cond_broadcast(COND(pc));
}

/* ----------------------------------------------------------------- rwlock */

void green_rwlock_init(green_rwlock_t *rw)
{
    if (rw)
        memset(rw, 0, sizeof *rw);
}

/* May switch. */
static int rwlock_lock(green_rwlock_t *prw, bool write, int64_t timeout_ns)
{
    struct green__rwlock *rw = RWLOCK(prw);
    int64_t deadline;
    if (!rw || !deadline_of(timeout_ns, &deadline))
        return einval();
    struct green_thread *self = self_thread();
    if (!self)
        return -1;
    return green__result(green__rwlock_lock(rw, self, write, GREEN__RW_FIFO, deadline,
                                   &green__lock_plain));
}

int green_rwlock_rdlock(green_rwlock_t *prw, int64_t timeout_ns)
{
    return rwlock_lock(prw, false, timeout_ns);
}

int green_rwlock_wrlock(green_rwlock_t *prw, int64_t timeout_ns)
{
    return rwlock_lock(prw, true, timeout_ns);
}

int green_rwlock_tryrdlock(green_rwlock_t *prw)
{
    if (!prw)
        return einval();
    return green__result(green__rwlock_trylock(RWLOCK(prw), green__current(), false,
                                      GREEN__RW_FIFO));
}

int green_rwlock_trywrlock(green_rwlock_t *prw)
{
    if (!prw)
        return einval();
    struct green_thread *self = self_thread();
    if (!self)
        return -1;
    return green__result(green__rwlock_trylock(RWLOCK(prw), self, true, GREEN__RW_FIFO));
}

/* Never switches. */
int green_rwlock_unlock(green_rwlock_t *prw)
{
    if (!prw)
        return einval();
    return green__result(green__rwlock_unlock(RWLOCK(prw), green__current(), GREEN__RW_FIFO));
}

/*
 * sync.c - events, semaphores, mutexes, condition variables and
 * reader-writer locks for green threads of one OS thread.
 *
 * What it is. Each public object (green_event_t, ...) is a union of eight
 * pointers that we reinterpret as a small private struct; all-zero is a
 * valid, unlocked, empty state, so static and stack objects need no init
 * call. Every object holds a FIFO wait queue (struct green__waitq) of
 * parked threads; a thread parks with its own embedded wait node
 * (green_thread.wnode) through green__park().
 *
 * Hand-off, and why it is safe. When a mutex is unlocked, a semaphore
 * posted or an rwlock released while threads wait, ownership (or the unit,
 * or the read/write grant) is handed directly to the first waiter: the
 * releaser pops that waiter's node, records the grant (mutex owner, or the
 * GRANTED bit in the node's data word), and readies it with code 0. This is
 * sound because of the park/ready invariant of hub.c: a wait node is linked
 * into a queue only while its thread is PARKED, and a timeout or a kill
 * unlinks it in the same step that readies the thread (the first wake
 * wins). So a node popped from a queue always belongs to a thread that
 * green__ready() will wake with our code, and that thread's park returns 0:
 * the grant can never be lost to a waiter that has already timed out or
 * been killed. We assert the waiter is PARKED before handing over.
 * A thread killed after it was granted (while runnable) keeps the grant and
 * its next park fails with ECANCELED.
 *
 * Fairness. Hand-off makes mutexes, semaphores and rwlocks FIFO: an
 * unlocker that relocks at once queues behind the waiter it just woke, so
 * no waiter starves. The cost is one extra switch per contended lock (a
 * "lock convoy"), which is cheap for green threads. Waiters still loop on
 * their condition, so a stray wake-up (code 0 without a grant) only makes
 * them park again.
 *
 * Errors. Every function checks for NULL (EINVAL) and relative timeouts
 * below GREEN_FOREVER (EINVAL). Timeouts are relative nanoseconds turned
 * into one deadline for the whole call. The innermost timeout scope
 * (green_timeout_begin) applies to every park, as everywhere.
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
 * Reader-writer locks. Readers are not tracked individually (the object has
 * fixed storage), only counted: unlock by a thread that holds no read lock
 * is detected only when nobody holds the lock (EPERM). A waiting writer
 * blocks new readers (no writer starvation), so a reader that read-locks
 * again while a writer waits deadlocks, as with glibc's writer-preferring
 * rwlocks. Waiters are served FIFO: a run of readers at the head of the
 * queue is granted together, a writer alone. A writer that gives up waiting
 * (timeout, kill) re-runs the grant, since it may have been the only thing
 * holding back the readers queued behind it.
 *
 * Rejected: barging (unlock frees the mutex and merely wakes a waiter,
 * which re-checks): simpler, but a thread that unlocks and relocks in a loop
 * starves every waiter forever under cooperative scheduling. Per-object
 * heap state: the public types must work when zero-filled and never fail
 * with ENOMEM.
 *
 * Threading: objects belong to one OS thread (the owner of the waiting
 * green threads); nothing here is atomic, with one exception: an event made
 * with green_event_init_remote can be set from any OS thread. The remote
 * thread touches only the atomic posted flag and posts the event's
 * embedded green__remote to the owner's hub (ev_async); the set itself
 * runs on the owner thread, so the flag, the generation and the wait queue
 * stay single-threaded. While a green thread waits on a remote event it
 * holds a green__remote_expect reference, so the hub waits for the set
 * instead of reporting a deadlock.
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <stddef.h>
#include <string.h>

/* Node data bits for semaphore and rwlock waiters. */
#define WANT_READ  1u       /* rwlock: waiting for a read lock */
#define WANT_WRITE 2u       /* rwlock: waiting for the write lock */
#define GRANTED    4u       /* the releaser handed the unit or lock over */

struct event {
    bool set;                      /* the flag (owner thread only) */
    bool remote;                   /* green_event_init_remote was called */
    atomic_bool posted;            /* a remote set is queued to the hub */
    uint64_t gen;                  /* bumped by every set: wakes a waiter
                                      even if cleared before it runs */
    struct green__waitq waiters;   /* threads in green_event_wait */
    struct green__ctx *ctx;        /* owner hub, for remote sets */
    struct green__remote post;     /* the queued remote set */
};

struct sem {
    int32_t value;                 /* units available; > 0 only when no one waits */
    struct green__waitq waiters;   /* threads in green_sem_wait */
};

struct mutex {
    struct green_thread *owner;    /* holder, NULL when unlocked */
    uint32_t count;                /* recursion depth of the holder */
    int32_t type;                  /* GREEN_MUTEX_PLAIN or _RECURSIVE */
    struct green__waitq waiters;   /* threads in green_mutex_lock, FIFO */
};

struct cond {
    struct green__waitq waiters;   /* threads in green_cond_wait */
};

struct rwlock {
    struct green_thread *writer;   /* holder of the write lock, or NULL */
    uint32_t readers;              /* read locks held */
    uint32_t writers_waiting;      /* writers in the queue: block new readers */
    struct green__waitq waiters;   /* readers and writers, FIFO; node data
                                      says which (WANT_READ / WANT_WRITE) */
};

_Static_assert(sizeof(struct event) <= sizeof(green_event_t), "event size");
_Static_assert(sizeof(struct sem) <= sizeof(green_sem_t), "sem size");
_Static_assert(sizeof(struct mutex) <= sizeof(green_mutex_t), "mutex size");
_Static_assert(sizeof(struct cond) <= sizeof(green_cond_t), "cond size");
_Static_assert(sizeof(struct rwlock) <= sizeof(green_rwlock_t), "rwlock size");

#define EVENT(p)  ((struct event *)(void *)(p))
#define SEM(p)    ((struct sem *)(void *)(p))
#define MUTEX(p)  ((struct mutex *)(void *)(p))
#define COND(p)   ((struct cond *)(void *)(p))
#define RWLOCK(p) ((struct rwlock *)(void *)(p))

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

/* Pop the first waiter and ready it with code 0 after marking the grant in
 * its node. Returns the thread, or NULL if nobody waits. */
static struct green_thread *grant_first(struct green__waitq *q)
{
    struct green__wnode *n = green__waitq_pop(q);
    if (!n)
        return NULL;
    green__assert("sync", n->t->state == GREEN_PARKED);
    n->data |= GRANTED;
    green__ready(n->t, 0);
    return n->t;
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

void green_event_clear(green_event_t *ev)
{
    if (ev)
        EVENT(ev)->set = false;
}

bool green_event_is_set(const green_event_t *ev)
{
    return ev && ((const struct event *)(const void *)ev)->set;
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
    atomic_store(&e->posted, false);
    green_event_set((green_event_t *)(void *)e);
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

/* Any OS thread. At most one post is queued at a time (posted); sets that
 * arrive meanwhile are merged into it. Never switches. */
void green_event_set_remote(green_event_t *ev)
{
    struct event *e = EVENT(ev);
    if (!e || !e->remote)
        return;
    if (!atomic_exchange(&e->posted, true))
        green__remote_post(e->ctx, &e->post);
}

/* -------------------------------------------------------------- semaphore */

int green_sem_init(green_sem_t *s, int value)
{
    if (!s || value < 0)
        return einval();
    memset(s, 0, sizeof *s);
    SEM(s)->value = value;
    return 0;
}

/* May switch. */
int green_sem_wait(green_sem_t *ps, int64_t timeout_ns)
{
    struct sem *s = SEM(ps);
    int64_t deadline;
    if (!s || !deadline_of(timeout_ns, &deadline))
        return einval();
    struct green_thread *self = self_thread();
    if (!self)
        return -1;
    for (;;) {
        if (s->value > 0) {
            s->value--;
            return 0;
        }
        self->wnode.data = 0;
        int code = green__park(GREEN_WHY_SEM, (uintptr_t)s, &s->waiters,
                               deadline);
        if (self->wnode.data & GRANTED)
            return 0;
        if (code)
            return green__result(code);
    }
}

int green_sem_trywait(green_sem_t *ps)
{
    struct sem *s = SEM(ps);
    if (!s)
        return einval();
    if (s->value <= 0) {
        errno = EAGAIN;
        return -1;
    }
    s->value--;
    return 0;
}

/* Hands the unit to the first waiter if there is one. Never switches. */
int green_sem_post(green_sem_t *ps)
{
    struct sem *s = SEM(ps);
    if (!s)
        return einval();
    if (grant_first(&s->waiters))
        return 0;
    if (s->value == INT32_MAX) {
        errno = EOVERFLOW;
        return -1;
    }
    s->value++;
    return 0;
}

int green_sem_value(const green_sem_t *ps)
{
    if (!ps)
        return einval();
    return ((const struct sem *)(const void *)ps)->value;
}

/* ------------------------------------------------------------------ mutex */

int green_mutex_init(green_mutex_t *pm, int type)
{
    if (!pm || (type != GREEN_MUTEX_PLAIN && type != GREEN_MUTEX_RECURSIVE))
        return einval();
    memset(pm, 0, sizeof *pm);
    MUTEX(pm)->type = type;
    return 0;
}

/* The owner locks again: recursion or EDEADLK (busy for trylock). */
static int mutex_relock_owner(struct mutex *m, int plain_err)
{
    if (m->type != GREEN_MUTEX_RECURSIVE) {
        errno = plain_err;
        return -1;
    }
    if (m->count == UINT32_MAX) {
        errno = EAGAIN;
        return -1;
    }
    m->count++;
    return 0;
}

/* Park until m is handed to self (or found free). Returns 0 or an errno
 * value. May switch. */
static int mutex_wait(struct mutex *m, struct green_thread *self,
                      int64_t deadline)
{
    while (m->owner != self) {
        if (!m->owner) {
            m->owner = self;
            m->count = 1;
            break;
        }
        int code = green__park(GREEN_WHY_MUTEX, (uintptr_t)m, &m->waiters,
                               deadline);
        if (code && m->owner != self)
            return code;
    }
    return 0;
}

/* May switch. */
int green_mutex_lock(green_mutex_t *pm, int64_t timeout_ns)
{
    struct mutex *m = MUTEX(pm);
    int64_t deadline;
    if (!m || !deadline_of(timeout_ns, &deadline))
        return einval();
    struct green_thread *self = self_thread();
    if (!self)
        return -1;
    if (m->owner == self)
        return mutex_relock_owner(m, EDEADLK);
    return green__result(mutex_wait(m, self, deadline));
}

int green_mutex_trylock(green_mutex_t *pm)
{
    struct mutex *m = MUTEX(pm);
    if (!m)
        return einval();
    struct green_thread *self = self_thread();
    if (!self)
        return -1;
    if (m->owner == self)
        return mutex_relock_owner(m, EBUSY);
    if (m->owner) {
        errno = EBUSY;
        return -1;
    }
    m->owner = self;
    m->count = 1;
    return 0;
}

/* Release m completely; hand it to the first waiter if any. */
static void mutex_release(struct mutex *m)
{
    struct green__wnode *n = green__waitq_empty(&m->waiters) ? NULL
                             : green__waitq_pop(&m->waiters);
    if (!n) {
        m->owner = NULL;
        m->count = 0;
        return;
    }
    green__assert("sync", n->t->state == GREEN_PARKED);
    m->owner = n->t;
    m->count = 1;
    green__ready(n->t, 0);
}

/* Never switches. */
int green_mutex_unlock(green_mutex_t *pm)
{
    struct mutex *m = MUTEX(pm);
    if (!m)
        return einval();
    if (!m->owner || m->owner != green__current()) {
        errno = EPERM;
        return -1;
    }
    if (--m->count == 0)
        mutex_release(m);
    return 0;
}

/* ------------------------------------------------------------- condition */

void green_cond_init(green_cond_t *c)
{
    if (c)
        memset(c, 0, sizeof *c);
}

/* Retake m after a condition wait, ignoring timeout scopes and kills (see
 * the top of the file), and restore its depth. Returns 0, or EDEADLK when
 * nothing can ever release m. May switch. */
static int cond_relock(struct mutex *m, struct green_thread *self,
                       uint32_t depth)
{
    green_timeout_t *scopes = self->scopes;
    bool killed = false;
    int code;
    self->scopes = NULL;
    while ((code = mutex_wait(m, self, GREEN_FOREVER)) == ECANCELED)
        killed = true;
    self->scopes = scopes;
    if (killed)
        self->kill_pending = true;
    if (code == 0)
        m->count = depth;
    return code;
}

/* May switch. */
int green_cond_wait(green_cond_t *pc, green_mutex_t *pm, int64_t timeout_ns)
{
    struct cond *c = COND(pc);
    struct mutex *m = MUTEX(pm);
    int64_t deadline;
    if (!c || !m || !deadline_of(timeout_ns, &deadline))
        return einval();
    struct green_thread *self = green__current();
    if (!self || m->owner != self) {
        errno = EPERM;
        return -1;
    }
    uint32_t depth = m->count;
    mutex_release(m);
    int code = green__park(GREEN_WHY_COND, (uintptr_t)c, &c->waiters,
                           deadline);
    int relock = cond_relock(m, self, depth);
    return green__result(relock ? relock : code);
}

void green_cond_signal(green_cond_t *pc)
{
    if (pc)
        green__waitq_wake_one(&COND(pc)->waiters, 0);
}

void green_cond_broadcast(green_cond_t *pc)
{
    if (pc)
        green__waitq_wake_all(&COND(pc)->waiters, 0);
}

/* ----------------------------------------------------------------- rwlock */

void green_rwlock_init(green_rwlock_t *rw)
{
    if (rw)
        memset(rw, 0, sizeof *rw);
}

/* Grant the lock to waiters at the head of the queue while possible: a run
 * of readers together, or one writer. Never switches. */
static void rw_grant(struct rwlock *rw)
{
    struct green__wnode *n;
    while ((n = rw->waiters.head) && !rw->writer) {
        if (n->data & WANT_WRITE) {
            if (rw->readers)
                return;
            rw->writer = n->t;
            rw->writers_waiting--;
        } else {
            rw->readers++;
        }
        grant_first(&rw->waiters);
    }
}

/* Queue self as a reader or writer (want) and park until granted. May
 * switch. */
static int rw_wait(struct rwlock *rw, struct green_thread *self,
                   unsigned want, int64_t deadline)
{
    if (want == WANT_WRITE)
        rw->writers_waiting++;
    for (;;) {
        self->wnode.data = want;
        int code = green__park(GREEN_WHY_RWLOCK, (uintptr_t)rw, &rw->waiters,
                               deadline);
        if (self->wnode.data & GRANTED)
            return 0;
        if (code) {
            if (want == WANT_WRITE) {
                rw->writers_waiting--;
                rw_grant(rw);
            }
            return green__result(code);
        }
    }
}

/* May switch. */
int green_rwlock_rdlock(green_rwlock_t *prw, int64_t timeout_ns)
{
    struct rwlock *rw = RWLOCK(prw);
    int64_t deadline;
    if (!rw || !deadline_of(timeout_ns, &deadline))
        return einval();
    struct green_thread *self = self_thread();
    if (!self)
        return -1;
    if (rw->writer == self) {
        errno = EDEADLK;
        return -1;
    }
    if (!rw->writer && !rw->writers_waiting) {
        rw->readers++;
        return 0;
    }
    return rw_wait(rw, self, WANT_READ, deadline);
}

/* May switch. */
int green_rwlock_wrlock(green_rwlock_t *prw, int64_t timeout_ns)
{
    struct rwlock *rw = RWLOCK(prw);
    int64_t deadline;
    if (!rw || !deadline_of(timeout_ns, &deadline))
        return einval();
    struct green_thread *self = self_thread();
    if (!self)
        return -1;
    if (rw->writer == self) {
        errno = EDEADLK;
        return -1;
    }
    if (!rw->writer && !rw->readers && green__waitq_empty(&rw->waiters)) {
        rw->writer = self;
        return 0;
    }
    return rw_wait(rw, self, WANT_WRITE, deadline);
}

int green_rwlock_tryrdlock(green_rwlock_t *prw)
{
    struct rwlock *rw = RWLOCK(prw);
    if (!rw)
        return einval();
    if (rw->writer || rw->writers_waiting) {
        errno = rw->writer && rw->writer == green__current() ? EDEADLK : EBUSY;
        return -1;
    }
    rw->readers++;
    return 0;
}

int green_rwlock_trywrlock(green_rwlock_t *prw)
{
    struct rwlock *rw = RWLOCK(prw);
    if (!rw)
        return einval();
    struct green_thread *self = self_thread();
    if (!self)
        return -1;
    if (rw->writer || rw->readers || !green__waitq_empty(&rw->waiters)) {
        errno = rw->writer == self ? EDEADLK : EBUSY;
        return -1;
    }
    rw->writer = self;
    return 0;
}

/* Never switches. */
int green_rwlock_unlock(green_rwlock_t *prw)
{
    struct rwlock *rw = RWLOCK(prw);
    if (!rw)
        return einval();
    if (rw->writer) {
        if (rw->writer != green__current()) {
            errno = EPERM;
            return -1;
        }
        rw->writer = NULL;
    } else if (rw->readers) {
        rw->readers--;
    } else {
        errno = EPERM;
        return -1;
    }
    rw_grant(rw);
    return 0;
}

/*
 * lock.c - the lock core: mutexes, condition variables, counting
 * semaphores and reader-writer locks as FIFO wait queues of parked green
 * threads with ownership hand-off. green.h's objects (sync.c) and the
 * pthread layer's (hooks/pthread_mutex.c, pthread_cond.c, pthread_rwlock.c,
 * pthread_sem.c) are thin wrappers over it: they check arguments, convert
 * timeouts to deadlines, choose the policy and map the result to their
 * error convention.
 *
 * What it is. Each object is a small struct (lock.h) embedded in the
 * caller's storage: never allocated, all-zero is free and empty, so static
 * initialisers work (green.h's *_INIT, glibc's PTHREAD_*_INITIALIZER).
 * Every object holds a FIFO wait queue (struct green__waitq) of parked
 * threads; a thread parks with its own embedded node (green_thread.wnode)
 * through green__park().
 *
 * Hand-off, and why it is safe. When a mutex is unlocked, a semaphore
 * posted or an rwlock released while threads wait, ownership (or the unit,
 * or the read/write grant) is handed directly to the first waiter: the
 * releaser pops that waiter's node, records the grant (mutex owner, rwlock
 * writer or reader count, and the GREEN__LK_GRANTED bit in the node's data
 * word), and readies it with code 0. This is sound because of the
 * park/ready invariant of hub.c: a wait node is linked into a queue only
 * while its thread is PARKED, and a timeout or a kill unlinks it in the
 * same step that readies the thread (the first wake wins). So a node
 * popped from a queue always belongs to a thread that green__ready() will
 * wake with our code, and that thread's park returns 0: the grant can
 * never be lost to a waiter that has already timed out or been killed,
 * and a waiter that was not handed anything was unlinked first. We assert
 * the waiter is PARKED before handing over. A thread killed after it was
 * granted (while runnable) keeps the grant and its next park fails with
 * ECANCELED. Invariant: a lock that is free has no waiters (every release
 * and every writer that gives up re-runs the grant).
 *
 * Fairness. Hand-off makes every object FIFO: an unlocker that relocks at
 * once queues behind the waiter it just woke, so no waiter starves. The
 * cost is one extra switch per contended lock (a "lock convoy"), which is
 * cheap for green threads. Waiters still re-check after a wake-up without
 * a grant (a stray wake-up, an EINTR the policy waits through): they try
 * again and park again.
 *
 * Policies. Where green.h and pthreads differ, the wrapper says how, and
 * the algorithm stays one:
 *  - how a lock wait ends (struct green__lock_how): green.h's lock fails
 *    with whatever ended the park (ETIMEDOUT, ECANCELED...); a pthread
 *    lock may fail only with ETIMEDOUT (or ENOMEM): a kill is deferred
 *    (remembered and made pending again when the wait ends, so the next
 *    park fails) after an optional callback (pthread: an asynchronous
 *    cancel ends the thread there), and EINTR or any other code makes it
 *    wait on. The retake of a condition wait is a lock wait too: green.h's
 *    ignores timeout scopes (an expired scope would fail every park at
 *    once) and defers kills, so it can fail only with EDEADLK;
 *  - how a semaphore or condition waiter parks: with a mark in its node
 *    data so that the embedder can find it (pthread's wake-ups from
 *    outside the hub), and expecting a remote wake-up (the hub keeps
 *    polling instead of reporting a deadlock);
 *  - mutex types as parameters, in glibc's numbers (normal, recursive,
 *    errorcheck): green.h's plain mutex is an errorcheck one;
 *  - rwlock preference as a parameter: readers (glibc's default), writers
 *    (PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP), or FIFO (green.h:
 *    a waiting writer blocks new readers and waiters are served in
 *    arrival order, a run of readers together, so nobody starves);
 *  - results are errno values; the wrappers turn them into -1/errno or
 *    return them, and map EDEADLK of a trylock to EBUSY where their API
 *    says so. Timeouts arrive as absolute green_now() deadlines: green.h
 *    converts its relative nanoseconds, pthreads their timespec on a clock.
 *
 * Reader-writer locks. Readers are not tracked individually (the object
 * has fixed storage), only counted: unlock by a thread that holds no read
 * lock is detected only when nobody holds the lock (EPERM). With the
 * READERS and WRITERS preferences, readers and writers wait in two queues
 * and the grant serves one queue before the other; with FIFO, both wait in
 * one queue (wq), each node's data saying which it is. A writer that gives
 * up waiting (timeout, kill) re-runs the grant, since it may have been the
 * only thing holding back the readers queued behind it.
 *
 * Threading: objects belong to one OS thread (the owner of the waiting
 * green threads); nothing here is atomic except a semaphore's value, which
 * the pthread layer adds to from signal handlers and plain OS threads
 * (green__sem_add) before it pokes the hub.
 *
 * Rejected: barging (unlock frees the mutex and merely wakes a waiter,
 * which re-checks): simpler, but a thread that unlocks and relocks in a
 * loop starves every waiter forever under cooperative scheduling.
 * Per-object heap state: the objects must work when zero-filled, never
 * fail with ENOMEM, and static pthread mutexes are never destroyed. Two
 * copies of each algorithm, one per API (as before this file): they
 * drifted (one re-granted readers behind a writer that gave up, the other
 * not). Callbacks into the wrappers for every policy decision (an
 * indirect call per park, and the algorithm scattered back over the
 * wrappers): the policy is a const struct of flags, read only on the slow
 * path, and the uncontended paths stay inline in lock.h.
 */
#define _GNU_SOURCE
#include "lock.h"

const struct green__lock_how green__lock_plain = {0};

/* ---------------------------------------------------------------- helpers */

/* Park self on q with node data `data`; expect_remote: the hub waits for
 * a remote wake-up instead of reporting a deadlock. *granted says whether
 * a releaser handed self what it waited for. The node data is cleared
 * afterwards. May switch. */
static int lock_park(struct green_thread *self, enum green__why why, void *obj,
                     struct green__waitq *q, int64_t deadline, uintptr_t data,
                     bool expect_remote, bool *granted)
{
    self->wnode.data = data;
    if (expect_remote)
        green__remote_expect(self->ctx, +1);
    int code = green__park(why, (uintptr_t)obj, q, deadline);
    if (expect_remote)
        green__remote_expect(self->ctx, -1);
    *granted = (self->wnode.data & GREEN__LK_GRANTED) != 0;
    self->wnode.data = 0;
    return code;
}

/* The node data of a semaphore or condition waiter: the embedder's mark. */
static uintptr_t mark_of(const struct green__lock_how *how)
{
    uintptr_t mark = (uintptr_t)how->mark;
    green__assert("lock", (mark & 7) == 0);
    return mark;
}

/* Pop the first waiter and ready it with code 0 after marking the grant
 * in its node. Returns the thread, or NULL if nobody waits. */
static struct green_thread *grant_first(struct green__waitq *q)
{
    struct green__wnode *n = green__waitq_pop(q);
    if (!n)
        return NULL;
    green__assert("lock", n->t->state == GREEN_PARKED);
    n->data |= GREEN__LK_GRANTED;
    green__ready(n->t, 0);
    return n->t;
}

/* A park of a lock wait ended with code and no grant: does the wait go
 * on? Yes after a stray wake-up (0), a deferred kill (noted in *killed),
 * or a code the policy waits through. */
static bool wait_on(int code, const struct green__lock_how *how, bool *killed)
{
    if (code == 0)
        return true;
    if (code == ECANCELED && how->defer_kill) {
        if (how->on_kill)
            how->on_kill();   /* not queued any more: safe to leave */
        *killed = true;
        return true;
    }
    return how->retry_other && code != ETIMEDOUT && code != ENOMEM &&
           code != ECANCELED;
}

/* ------------------------------------------------------------------ mutex */

int green__mutex_wait(struct green__mutex *m, struct green_thread *self,
                      int64_t deadline, const struct green__lock_how *how)
{
    green_timeout_t *scopes = self->scopes;
    bool killed = false;
    int rc = 0;
    if (how->no_scopes)
        self->scopes = NULL;
    for (;;) {
        if (!m->owner) {
            m->owner = self;
            m->depth = 1;
            break;
        }
        bool granted;
        int code = lock_park(self, GREEN_WHY_MUTEX, m, &m->q, deadline, 0,
                             false, &granted);
        if (m->owner == self)
            break;   /* handed over */
        if (!wait_on(code, how, &killed)) {
            rc = code;
            break;
        }
    }
    if (how->no_scopes)
        self->scopes = scopes;
    if (killed)
        self->kill_pending = true;
    return rc;
}

void green__mutex_handoff(struct green__mutex *m)
{
    struct green__wnode *n = green__waitq_pop(&m->q);
    green__assert("lock", n && n->t->state == GREEN_PARKED);
    m->owner = n->t;
    m->depth = 1;
    green__ready(n->t, 0);
}

/* ------------------------------------------------------------- condition */

int green__cond_park(struct green__cond *c, struct green_thread *self,
                     int64_t deadline, const struct green__lock_how *how)
{
    bool granted;
    return lock_park(self, GREEN_WHY_COND, c, &c->q, deadline, mark_of(how),
                     how->expect_remote, &granted);
}

int green__cond_wait(struct green__cond *c, struct green__mutex *m,
                     struct green_thread *self, int64_t deadline,
                     const struct green__lock_how *how)
{
    uint32_t depth = m->depth;
    green__mutex_release(m);
    int code = green__cond_park(c, self, deadline, how);
    int relock = green__mutex_wait(m, self, GREEN_FOREVER, how);
    if (relock == 0)
        m->depth = depth;
    return relock ? relock : code;
}

/* -------------------------------------------------------------- semaphore */

int green__sem_post(struct green__sem *s)
{
    if (grant_first(&s->q))
        return 0;
    return green__sem_add(s);
}

int green__sem_wait(struct green__sem *s, struct green_thread *self,
                    int64_t deadline, const struct green__lock_how *how)
{
    for (;;) {
        if (green__sem_trytake(s) == 0)
            return 0;
        bool granted;
        int code = lock_park(self, GREEN_WHY_SEM, s, &s->q, deadline,
                             mark_of(how), how->expect_remote, &granted);
        if (granted)
            return 0;
        if (code)
            return code;
    }
}

/* ----------------------------------------------------------------- rwlock */

/* Grant the lock to waiters while it allows: a writer alone, readers
 * together, the next one chosen by prefer. Never switches. */
static void rw_grant(struct green__rwlock *rw, enum green__rw_prefer prefer)
{
    while (!rw->writer) {
        struct green__wnode *n;
        if (prefer == GREEN__RW_READERS)
            n = rw->rq.head ? rw->rq.head : rw->wq.head;
        else if (prefer == GREEN__RW_WRITERS)
            n = rw->wq.head ? rw->wq.head : rw->rq.head;
        else
            n = rw->wq.head;
        if (!n)
            return;
        if (n->data & GREEN__LK_WRITE) {
            if (rw->readers)
                return;
            rw->writer = n->t;
        } else {
            rw->readers++;
        }
        grant_first(n->q);
    }
}

int green__rwlock_trylock(struct green__rwlock *rw, struct green_thread *self,
                          bool write, enum green__rw_prefer prefer)
{
    if (rw->writer && rw->writer == self)
        return EDEADLK;
    if (write) {
        if (rw->writer || rw->readers)
            return EBUSY;
        rw->writer = self;
        return 0;
    }
    if (rw->writer || (prefer != GREEN__RW_READERS && !green__waitq_empty(&rw->wq)))
        return EBUSY;
    if (rw->readers == UINT32_MAX)
        return EAGAIN;
    rw->readers++;
    return 0;
}

int green__rwlock_lock(struct green__rwlock *rw, struct green_thread *self,
                       bool write, enum green__rw_prefer prefer,
                       int64_t deadline, const struct green__lock_how *how)
{
    int e = green__rwlock_trylock(rw, self, write, prefer);
    if (e != EBUSY)
        return e;
    struct green__waitq *q = write || prefer == GREEN__RW_FIFO ? &rw->wq : &rw->rq;
    bool killed = false;
    for (;;) {
        bool granted;
        int code = lock_park(self, GREEN_WHY_RWLOCK, rw, q, deadline,
                             write ? GREEN__LK_WRITE : GREEN__LK_READ, false,
                             &granted);
        if (granted) {
            e = 0;
            break;
        }
        if (!wait_on(code, how, &killed)) {
            e = code;
            if (write)
                rw_grant(rw, prefer);
            break;
        }
        if ((e = green__rwlock_trylock(rw, self, write, prefer)) != EBUSY)
            break;
    }
    if (killed)
        self->kill_pending = true;
    return e;
}

int green__rwlock_unlock(struct green__rwlock *rw, struct green_thread *self,
                         enum green__rw_prefer prefer)
{
    if (rw->writer) {
        if (rw->writer != self)
            return EPERM;
        rw->writer = NULL;
    } else if (rw->readers) {
        rw->readers--;
    } else {
        return EPERM;
    }
    rw_grant(rw, prefer);
    return 0;
}

/*
 * lock.h - the lock core: FIFO wait queues of parked green threads with
 * ownership hand-off, shared by green.h's objects (libgreen/sync.c) and
 * the pthread layer's (hooks/pthread_*.c). Internal: nothing here is
 * installed or exported. The design, the hand-off invariant and the
 * policies are in the essay at the top of lock.c.
 *
 * Every struct is embedded in its caller's storage, never allocated, and
 * all-zero is a valid free state. Where a struct has words the core never
 * touches, they are there so that the pthread layer can overlay glibc's
 * types with the core struct at offset 0 and keep glibc's own words
 * (mutex kind, semaphore waiter count and private flag) where glibc's
 * static initialisers and libc put them; hooks/pthread_*.c check the
 * offsets with _Static_assert.
 *
 * Conventions: self is the calling green thread; deadlines are absolute
 * green_now() nanoseconds or GREEN_FOREVER; results are 0 or an errno
 * value (the wrappers choose between -1/errno and returning it). The
 * inline functions are the uncontended paths; whatever parks or wakes is
 * in lock.c.
 */
#ifndef GREEN_LOCK_H
#define GREEN_LOCK_H

#include "green_internal.h"

/* How a waiter of the core parks, and how a lock wait (mutex, rwlock,
 * the retake of a condition wait) ends. Wrappers keep one const instance
 * per policy. All-false: every park that fails ends the wait with its
 * code. */
struct green__lock_how {
    const void *mark;      /* the waiter's node data while parked, or
                              NULL: lets the embedder find its waiters
                              (pthread's outside wake-ups). 8-aligned: the
                              core keeps its own bits (GREEN__LK_*) below */
    bool expect_remote;    /* a wake-up may come from outside the hub
                              (ev_async): the hub keeps polling instead of
                              reporting a deadlock while we wait */
    bool defer_kill;       /* a kill does not end a lock wait: the wait
                              goes on and the kill is made pending again
                              when it ends, for the caller's next park */
    bool retry_other;      /* only ETIMEDOUT and ENOMEM (and kills, unless
                              deferred) end a lock wait; EINTR, EAGAIN,
                              EDEADLK... make it wait on */
    bool no_scopes;        /* timeout scopes do not apply (the retake of a
                              condition wait, which must not fail) */
    void (*on_kill)(void); /* called for every deferred kill, or NULL
                              (pthread: end the thread at once when an
                              asynchronous cancel is pending) */
};
/* Every failed park ends the wait (green.h's mutex, rwlock, sem). */
extern const struct green__lock_how green__lock_plain GREEN_HIDDEN;

/* Bits of a core waiter's node data (green__wnode.data), below the mark. */
#define GREEN__LK_READ    1u   /* rwlock: waits for a read lock */
#define GREEN__LK_WRITE   2u   /* rwlock: waits for the write lock */
#define GREEN__LK_GRANTED 4u   /* the releaser handed the unit or lock over */

/* ------------------------------------------------------------------ mutex */

/* Mutex types: glibc's numbers, so that the pthread layer passes its
 * kind's low bits unchanged. */
#define GREEN__MUTEX_NORMAL     0   /* relock by the holder waits forever;
                                       any other number acts the same
                                       (glibc's adaptive mutex, 3) */
#define GREEN__MUTEX_RECURSIVE  1   /* relock by the holder goes deeper */
#define GREEN__MUTEX_ERRORCHECK 2   /* relock fails with EDEADLK, unlock by
                                       a non-holder with EPERM */

struct green__mutex {
    struct green_thread *owner;   /* holder, NULL when free */
    uint32_t depth;               /* locks the holder has taken, 0 when free */
    uint32_t spare;               /* not used (glibc __nusers, 0) */
    int32_t kind;                 /* the embedder's type word, never read by
                                     the core (callers pass the type): at
                                     glibc's __kind offset, 16 */
    int32_t spare2;               /* not used (glibc __spins, 0) */
    struct green__waitq q;        /* waiters, FIFO */
};

/* The holder locks again: a recursive mutex goes one deeper (EAGAIN at
 * the limit), an errorcheck one says EDEADLK, a normal one EBUSY (a lock
 * then waits forever). Also used by the pthread layer's shared mutexes,
 * whose depth lives elsewhere. */
static inline int green__mutex_relock(int type, uint32_t *depth)
{
    switch (type) {
    case GREEN__MUTEX_RECURSIVE:
        if (*depth == UINT32_MAX)
            return EAGAIN;
        ++*depth;
        return 0;
    case GREEN__MUTEX_ERRORCHECK:
        return EDEADLK;
    default:
        return EBUSY;
    }
}

/* Lock without waiting: 0, EBUSY (held by another), or the holder's
 * relock result. */
static inline int green__mutex_trylock(struct green__mutex *m,
                                       struct green_thread *self, int type)
{
    if (green__likely(!m->owner)) {
        m->owner = self;
        m->depth = 1;
        return 0;
    }
    if (m->owner != self)
        return EBUSY;
    return green__mutex_relock(type, &m->depth);
}

/* Park until m is handed to self (or found free) or the wait ends as how
 * says. Returns 0 or the code that ended it. May switch. */
GREEN_HIDDEN int green__mutex_wait(struct green__mutex *m, struct green_thread *self,
                                   int64_t deadline, const struct green__lock_how *how);

/* Lock, waiting if another holds it. May switch. */
static inline int green__mutex_lock(struct green__mutex *m, struct green_thread *self,
                                    int type, int64_t deadline,
                                    const struct green__lock_how *how)
{
    int e = green__mutex_trylock(m, self, type);
    if (green__likely(e != EBUSY))
        return e;
    return green__mutex_wait(m, self, deadline, how);
}

/* Hand m to its first waiter (there is one). Never switches. */
GREEN_HIDDEN void green__mutex_handoff(struct green__mutex *m);

/* Release m completely, whatever its depth. Never switches. */
static inline void green__mutex_release(struct green__mutex *m)
{
    if (green__likely(green__waitq_empty(&m->q))) {
        m->owner = NULL;
        m->depth = 0;
        return;
    }
    green__mutex_handoff(m);
}

/* Unlock once: 0, or EPERM when self does not hold a recursive or
 * errorcheck m (a normal mutex, as glibc's, is released by anyone; a free
 * one is left alone). Never switches. */
static inline int green__mutex_unlock(struct green__mutex *m,
                                      struct green_thread *self, int type)
{
    if (green__unlikely(m->owner != self || !self)) {
        if (type == GREEN__MUTEX_RECURSIVE || type == GREEN__MUTEX_ERRORCHECK)
            return EPERM;
        if (!m->owner)
            return 0;
    }
    if (type == GREEN__MUTEX_RECURSIVE && m->depth > 1) {
        m->depth--;
        return 0;
    }
    green__mutex_release(m);
    return 0;
}

/* Held or waited for (destroy says EBUSY). */
static inline bool green__mutex_busy(const struct green__mutex *m)
{
    return m->owner || !green__waitq_empty(&m->q);
}

/* -------------------------------------------------------------- condition */

struct green__cond {
    struct green__waitq q;        /* waiters, FIFO */
};

/* Park self on c until signalled, the deadline, or a wake code (how's
 * mark and remote expectation apply). Returns the park's code. May switch. */
GREEN_HIDDEN int green__cond_park(struct green__cond *c, struct green_thread *self,
                                  int64_t deadline, const struct green__lock_how *how);

/* The condition wait on a core mutex self holds: release m completely,
 * park on c, retake m (a lock wait as how says, no deadline) and restore
 * its depth. Returns the retake's error if it failed (m is then not
 * held), else the park's code. May switch. */
GREEN_HIDDEN int green__cond_wait(struct green__cond *c, struct green__mutex *m,
                                  struct green_thread *self, int64_t deadline,
                                  const struct green__lock_how *how);

/* Wake the first waiter / every waiter. Never switch. */
static inline void green__cond_signal(struct green__cond *c)
{
    green__waitq_wake_one(&c->q, 0);
}

static inline void green__cond_broadcast(struct green__cond *c)
{
    green__waitq_wake_all(&c->q, 0);
}

/* -------------------------------------------------------------- semaphore */

#define GREEN__SEM_MAX INT32_MAX   /* = SEM_VALUE_MAX */

struct green__sem {
    uint32_t value;               /* units available; > 0 only while nobody
                                     waits. Atomic: the embedder may add
                                     units from outside the hub */
    uint32_t spare[3];            /* not used (glibc: waiter count, private
                                     flag, which the pthread layer reads) */
    struct green__waitq q;        /* waiters, FIFO */
};

/* Take a unit without waiting: 0 or EAGAIN. Never switches. */
static inline int green__sem_trytake(struct green__sem *s)
{
    uint32_t v = __atomic_load_n(&s->value, __ATOMIC_ACQUIRE);
    while (v)
        if (__atomic_compare_exchange_n(&s->value, &v, v - 1, true,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 0;
    return EAGAIN;
}

/* Add a unit without waking anyone: 0 or EOVERFLOW. Async-signal-safe
 * and thread-safe (the pthread layer's posts from outside). */
static inline int green__sem_add(struct green__sem *s)
{
    uint32_t v = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
    do
        if (v >= GREEN__SEM_MAX)
            return EOVERFLOW;
    while (!__atomic_compare_exchange_n(&s->value, &v, v + 1, true,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
    return 0;
}

/* Post: hand the unit to the first waiter, or add it (EOVERFLOW). Never
 * switches. */
GREEN_HIDDEN int green__sem_post(struct green__sem *s);

/* Take a unit, parking until one is handed over. Returns 0, or the code
 * of the park that ended the wait without a unit (ETIMEDOUT, ECANCELED,
 * EINTR, a waker's code): the caller decides whether to wait again. May
 * switch. */
GREEN_HIDDEN int green__sem_wait(struct green__sem *s, struct green_thread *self,
                                 int64_t deadline, const struct green__lock_how *how);

/* ----------------------------------------------------------------- rwlock */

/* Whom a reader-writer lock serves first. */
enum green__rw_prefer {
    GREEN__RW_READERS,  /* new readers enter while no writer holds it;
                           on release the waiting readers go first
                           (glibc's default) */
    GREEN__RW_WRITERS,  /* a waiting writer blocks new readers; on release
                           the first waiting writer goes first
                           (PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP) */
    GREEN__RW_FIFO,     /* a waiting writer blocks new readers; waiters
                           are served in arrival order, a run of readers
                           together (green.h) */
};

struct green__rwlock {
    uint32_t readers;             /* read locks held */
    uint32_t spare;               /* not used (the pthread layer's
                                     process-shared mark lives here) */
    struct green_thread *writer;  /* write-lock holder, or NULL */
    struct green__waitq rq;       /* waiting readers (not with FIFO) */
    struct green__waitq wq;       /* waiting writers, and with FIFO the
                                     readers too, in arrival order */
};

/* Lock without waiting: 0, EBUSY, EDEADLK (self holds the write lock),
 * EAGAIN (too many readers). self may be NULL for a read lock. */
GREEN_HIDDEN int green__rwlock_trylock(struct green__rwlock *rw, struct green_thread *self,
                                       bool write, enum green__rw_prefer prefer);
/* Lock, waiting as how says. May switch. */
GREEN_HIDDEN int green__rwlock_lock(struct green__rwlock *rw, struct green_thread *self,
                                    bool write, enum green__rw_prefer prefer,
                                    int64_t deadline, const struct green__lock_how *how);
/* Unlock the write lock self holds, or one read lock: 0 or EPERM. Hands
 * the lock to waiters as prefer says. Never switches. */
GREEN_HIDDEN int green__rwlock_unlock(struct green__rwlock *rw, struct green_thread *self,
                                      enum green__rw_prefer prefer);

/* Held or waited for (destroy says EBUSY). */
static inline bool green__rwlock_busy(const struct green__rwlock *rw)
{
    return rw->writer || rw->readers || !green__waitq_empty(&rw->rq) ||
           !green__waitq_empty(&rw->wq);
}

#endif /* GREEN_LOCK_H */

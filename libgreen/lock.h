/*
 * lock.h - the lock core: queues of waiters (green threads of any hub,
 * plain OS threads), FIFO by realtime priority, with ownership hand-off, shared by green.h's
 * objects (libgreen/sync.c) and the pthread layer's (hooks/pthread_*.c).
 * Internal: nothing here is installed or exported. The design, the
 * hand-off invariant, thread safety and the policies are in the essay at
 * the top of lock.c. Every function is thread-safe unless it says
 * otherwise; none is async-signal-safe except green__sem_add.
 *
 * Every struct is embedded in its caller's storage, never allocated, and
 * all-zero is a valid free state. Where a struct has words the core never
 * touches, they are there so that the pthread layer can overlay glibc's
 * types with the core struct at offset 0 and keep glibc's own words
 * (mutex kind, semaphore waiter count and private flag) where glibc's
 * static initialisers and libc put them; hooks/pthread_*.c check the
 * offsets with _Static_assert.
 *
 * Conventions: self is the calling green thread, or NULL for a plain OS
 * thread (one without a hub: it blocks on a futex); deadlines are absolute
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
    const void *mark;      /* a green waiter's green_thread.wnode.data
                              while parked, or NULL: lets the embedder
                              find its waiters (pthread's outside
                              wake-ups) */
    bool expect_remote;    /* a wake-up may come from outside the hub
                              (ev_async): the hub keeps polling instead of
                              reporting a deadlock while we wait. Implied
                              once the process has two hubs or a plain OS
                              thread used the core (green__lock_multi) */
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

/* Kinds of a waiter record's wait (green__wnode.data of its node). */
#define GREEN__LK_READ    1u   /* rwlock: waits for a read lock */
#define GREEN__LK_WRITE   2u   /* rwlock: waits for the write lock */

/* A waiter record: one per blocked caller, on its stack, linked into the
 * object's queue while it waits (the essay in lock.c: "Waiters"). */
struct green__lwait {
    struct green__wnode n;        /* queue link; n.t is the green thread,
                                     NULL for a plain OS thread; n.data its
                                     GREEN__LK_READ/WRITE kind. First member:
                                     the queue's node is the record */
    uint32_t state;               /* GREEN__LW_*; atomic, changed only by a
                                     compare-and-swap from WAITING: who wins
                                     decides grant vs timeout. The futex word
                                     of a plain waiter */
    uint32_t pending;             /* a remote wake-up (post) is on its way
                                     to the waiter's hub: the record must
                                     outlive it */
    int32_t rank;                 /* the waiter's rank when it queued
                                     (green__sched_rank; 0 for a plain OS
                                     thread): queues are ordered by it, FIFO
                                     among equals (lock.c, "Priorities") */
    uintptr_t id;                 /* the waiter's lock identity
                                     (green__lock_id) */
    struct green__ctx *ctx;       /* the green waiter's hub, NULL if plain */
    uint32_t *lk;                 /* the object's stripe lock */
    struct green__remote post;    /* wakes a green waiter of another hub */
};
#define GREEN__LW_WAITING   0u    /* queued, nothing decided */
#define GREEN__LW_GRANTED   1u    /* handed what it waited for */
#define GREEN__LW_WOKEN     2u    /* popped and woken without a grant
                                     (condition signal, barging mutex) */
#define GREEN__LW_CANCELLED 3u    /* the waiter left (timeout, kill) */

/* Lock identities: a green thread's address, or for a plain OS thread
 * the address of a thread-local anchor with GREEN__LK_PLAIN set. The low
 * three bits of a mutex's owner word are the core's flags. */
#define GREEN__LK_WAITERS ((uintptr_t)1)   /* mutex: waiters are queued:
                                              the release takes the slow
                                              path */
#define GREEN__LK_STARVE  ((uintptr_t)2)   /* mutex: a waiter waited past
                                              the starvation bound: pure
                                              hand-off until the queue
                                              drains */
#define GREEN__LK_PLAIN   ((uintptr_t)4)   /* the identity is a plain OS
                                              thread's */
#define GREEN__LK_FLAGS   ((uintptr_t)7)
#define GREEN__LK_ID(w)   ((w) & ~(GREEN__LK_FLAGS & ~GREEN__LK_PLAIN))

/* The identity of the calling plain OS thread (which also marks the core
 * as used by a plain OS thread: see green__lock_multi). */
GREEN_HIDDEN uintptr_t green__lock_plain_id(void);
static inline uintptr_t green__lock_id(const struct green_thread *self)
{
    return green__likely(self != NULL) ? (uintptr_t)self : green__lock_plain_id();
}

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
    uintptr_t owner;              /* atomic: the holder's identity (0 when
                                     free) | GREEN__LK_WAITERS/STARVE */
    uint32_t depth;               /* locks the holder has taken, 0 when
                                     free; the holder's alone */
    uint32_t spare;               /* not used (glibc __nusers, 0) */
    int32_t kind;                 /* the embedder's type word, never read by
                                     the core (callers pass the type): at
                                     glibc's __kind offset, 16 */
    int32_t spare2;               /* not used (glibc __spins, 0) */
    struct green__waitq q;        /* waiters (green__lwait), FIFO; under
                                     the object's stripe lock */
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

/* The holder's identity, 0 when free. */
static inline uintptr_t green__mutex_holder(const struct green__mutex *m)
{
    return GREEN__LK_ID(__atomic_load_n(&m->owner, __ATOMIC_RELAXED));
}

/* Does self (NULL: the calling plain OS thread) hold m? */
static inline bool green__mutex_held_by(const struct green__mutex *m,
                                        const struct green_thread *self)
{
    uintptr_t h = green__mutex_holder(m);
    return h && h == green__lock_id(self);
}

/* Take a free m (which may have waiters, unless it is starving: then it
 * goes only by hand-off): true if taken. */
static inline bool green__mutex_grab(struct green__mutex *m, uintptr_t me)
{
    uintptr_t o = __atomic_load_n(&m->owner, __ATOMIC_RELAXED);
    while (GREEN__LK_ID(o) == 0 && !(o & GREEN__LK_STARVE))
        if (__atomic_compare_exchange_n(&m->owner, &o, o | me, true,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            m->depth = 1;
            return true;
        }
    return false;
}

/* Lock without waiting: 0, EBUSY (held by another), or the holder's
 * relock result. self NULL: the calling plain OS thread. */
static inline int green__mutex_trylock(struct green__mutex *m,
                                       struct green_thread *self, int type)
{
    uintptr_t me = green__lock_id(self), o = 0;
    if (green__likely(__atomic_compare_exchange_n(&m->owner, &o, me, false,
                                                  __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))) {
        m->depth = 1;
        return 0;
    }
    if (GREEN__LK_ID(o) == me)
        return green__mutex_relock(type, &m->depth);
    return green__mutex_grab(m, me) ? 0 : EBUSY;
}

/* Wait until m is handed to self or taken, or the wait ends as how says.
 * Returns 0 or the code that ended it. May switch (a plain OS thread
 * blocks on a futex). */
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

/* Measurement knob (bench/bench_lockmt.c): every contended release
 * hands off, as before "No convoys". Never set in a real program. */
extern bool green__lock_always_handoff GREEN_HIDDEN;

/* The release of a mutex with waiters: hand it to the first one, or free
 * it and wake it (the essay: "No convoys"). Never switches. */
GREEN_HIDDEN void green__mutex_release_slow(struct green__mutex *m);

/* Release m completely, whatever its depth. Never switches. */
static inline void green__mutex_release(struct green__mutex *m)
{
    uintptr_t o = __atomic_load_n(&m->owner, __ATOMIC_RELAXED);
    m->depth = 0;
    if (green__likely(!(o & (GREEN__LK_WAITERS | GREEN__LK_STARVE))) &&
        __atomic_compare_exchange_n(&m->owner, &o, 0, false, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED))
        return;
    green__mutex_release_slow(m);
}

/* Unlock once: 0, or EPERM when self does not hold a recursive or
 * errorcheck m (a normal mutex, as glibc's, is released by anyone; a free
 * one is left alone). Never switches. */
static inline int green__mutex_unlock(struct green__mutex *m,
                                      struct green_thread *self, int type)
{
    uintptr_t h = green__mutex_holder(m);
    if (green__unlikely(h != green__lock_id(self) || !h)) {
        if (type == GREEN__MUTEX_RECURSIVE || type == GREEN__MUTEX_ERRORCHECK)
            return EPERM;
        if (!h)
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
    return __atomic_load_n(&m->owner, __ATOMIC_RELAXED) != 0 ||
           !green__waitq_empty(&m->q);
}

/* -------------------------------------------------------------- condition */

/* struct green__cond is in green_internal.h (a green thread embeds one). */

/* Queue self on c, call release(arg) (the caller's own lock, which is
 * not a core mutex: once queued, a signal sent under that lock after its
 * release is never missed), then park until signalled, the deadline, or
 * a wake code (how's mark and remote expectation apply). Returns 0 when
 * signalled (a signal wins over a deadline that fired meanwhile), else
 * the park's code. The caller retakes its lock. May switch. */
GREEN_HIDDEN int green__cond_park(struct green__cond *c, struct green_thread *self,
                                  int64_t deadline, const struct green__lock_how *how,
                                  void (*release)(void *arg), void *arg);

/* The condition wait on a core mutex self holds: queue on c, release m
 * completely (so a signal sent under m after that is never missed), park,
 * retake m (a lock wait as how says, no deadline) and restore
 * its depth. Returns the retake's error if it failed (m is then not
 * held), else the park's code. May switch. */
GREEN_HIDDEN int green__cond_wait(struct green__cond *c, struct green__mutex *m,
                                  struct green_thread *self, int64_t deadline,
                                  const struct green__lock_how *how);

/* Wake the first waiter / every waiter. Never switch. Thread-safe. */
GREEN_HIDDEN void green__cond_signal(struct green__cond *c);
GREEN_HIDDEN void green__cond_broadcast(struct green__cond *c);

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
 * and thread-safe (the pthread layer's posts from a signal handler), but
 * a waiter that queued meanwhile is not woken: callers poke it. */
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
 * switches. Thread-safe, not async-signal-safe (it takes the object's
 * stripe lock). */
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
    uintptr_t writer;             /* write-lock holder's identity, or 0 */
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
    return rw->writer != 0 || rw->readers || !green__waitq_empty(&rw->rq) ||
           !green__waitq_empty(&rw->wq);
}

/* ------------------------------------------------------------ futex words */

/* A wait table keyed by the address of a 32-bit word, for the shim's
 * futex(2) (hooks/syscall.c): green threads of any hub wait in it; plain
 * OS threads use the kernel's futex, which the hook wakes as well. The
 * word is the program's; the core only reads it. Spurious wake-ups are
 * allowed (futex(2)); lost ones are not: a waiter counts itself in its
 * bucket before it compares the word, and a wake checks that count after
 * the program changed the word. */

/* Wait while *word == val, until a wake whose bitset meets bitset, the
 * deadline or a park code (how applies). Returns 0 (woken, or a spurious
 * wake-up), EAGAIN (*word != val when asked), or the park's code
 * (ETIMEDOUT, EINTR, ECANCELED...). word must be readable. May switch. */
GREEN_HIDDEN int green__futex_wait(const uint32_t *word, uint32_t val, uint32_t bitset,
                                   struct green_thread *self, int64_t deadline,
                                   const struct green__lock_how *how);
/* Wake up to n green waiters of word whose bitset meets bitset. Returns
 * how many. Never switches. Thread-safe, not async-signal-safe. */
GREEN_HIDDEN int green__futex_wake(const uint32_t *word, int n, uint32_t bitset);
/* FUTEX_REQUEUE/CMP_REQUEUE for the green waiters of word: 0 when there
 * are none (the caller's kernel call then compares *cmp itself); else,
 * when cmp is NULL or *cmp == cmpval, wake up to nwake + nmove of them
 * (those beyond nwake would have moved to another word: a wake-up is what
 * a requeued waiter eventually gets, and it retries) and return how many,
 * or -EAGAIN. Never switches. */
GREEN_HIDDEN int green__futex_requeue(const uint32_t *word, int nwake, int nmove,
                                      const uint32_t *cmp, uint32_t cmpval);

/* Free every stripe lock in the child of a fork (lifecycle.c's fork
 * handler calls it first). */
GREEN_HIDDEN void green__lock_after_fork_child(void);

#endif /* GREEN_LOCK_H */

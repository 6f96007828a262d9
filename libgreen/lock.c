/*
 * lock.c - the lock core: mutexes, condition variables, counting
 * semaphores and reader-writer locks as queues of waiters (FIFO within
 * a priority: "Priorities") with ownership hand-off, usable at once by
 * green threads of several hubs and by plain OS threads. green.h's
 * objects (sync.c) and the pthread layer's (hooks/pthread_mutex.c,
 * pthread_cond.c, pthread_rwlock.c, pthread_sem.c) are thin wrappers
 * over it: they check arguments, convert timeouts to deadlines, choose
 * the policy and map the result to their error convention.
 *
 * What it is. Each object is a small struct (lock.h) embedded in the
 * caller's storage: never allocated, all-zero is free and empty, so static
 * initialisers work (green.h's *_INIT, glibc's PTHREAD_*_INITIALIZER).
 * Every object holds a queue (struct green__waitq) of waiter records
 * (struct green__lwait), one per blocked caller, on that caller's stack.
 *
 * Threads. Three kinds of waiters: a green thread of the releaser's hub, a
 * green thread of another hub, a plain OS thread without a hub (self
 * NULL: a thread the shim did not create). Every queue and every field
 * that is not a single atomic word is protected by a stripe lock: a
 * spinlock picked from a fixed table by the object's address (glibc's
 * layouts leave no free word for one in the condition variable or the
 * rwlock, and one rule for all objects is simpler). A stripe is held for
 * a queue edit and the wake-ups it decides, never across a switch or a
 * futex wait, and never two at once; a release may post to a hub or
 * futex-wake under it (the record must stay alive until then, see below).
 * The mutex's owner word and the semaphore's value are atomic so that the
 * uncontended paths (lock.h) take no stripe. A waiter record says who it
 * is (id: the green thread's address, or a thread-local anchor of the
 * plain thread with GREEN__LK_PLAIN) and how to wake it (ctx: its hub, or
 * NULL for a futex on its state word). A release that decides a waiter
 * wakes it the cheapest way that is correct: green__ready() for a green
 * waiter of the caller's own hub, a remote post (green__remote_post, the
 * record's embedded post, through the hub's ev_async) for a green waiter
 * of another hub, FUTEX_WAKE for a plain one. A green waiter's hub keeps
 * polling while it waits (green__remote_expect) once the process has two
 * hubs or a plain thread used the core, so that it does not report a
 * deadlock that another OS thread's release would end.
 *
 * Hand-off, and who wins: grant or timeout. When a mutex is unlocked, a
 * semaphore posted or an rwlock released while threads wait, ownership
 * (or the unit, or the read/write grant) is handed directly to the first
 * waiter: the releaser, under the stripe, pops the record, records the
 * grant (mutex owner, rwlock writer or reader count) and moves the
 * record's state from WAITING to GRANTED with one compare-and-swap, then
 * wakes it. A waiter leaves only by moving its state from WAITING to
 * CANCELLED with the same compare-and-swap, under the same stripe, and
 * unlinking itself. Exactly one of the two succeeds, so the grant is
 * never lost: a waiter that finds GRANTED holds what it waited for even if
 * it was woken by its deadline or a kill (a kill is then kept for its
 * next park), and a waiter that was not handed anything was unlinked
 * first. On one hub the cancel happens in the very step that wakes the
 * waiter, as before: green__ready() calls green__lock_cancel() on the
 * thread's record (green_thread.lwait) when a deadline, a kill, a signal
 * or an outside wake-up readies it, so a release that runs after the
 * timeout fired (and before the waiter ran) already finds the queue
 * without it. Across hubs the CAS decides: the releaser of hub A may win
 * while hub B's timer is readying the waiter; the waiter then returns
 * success. A record that got a remote post must outlive it: the waiter
 * sees `pending` and parks until the post has run on its own hub (the
 * post readies it; both run on that hub's OS thread, so there is no race
 * on the record). A plain waiter re-takes the stripe before it leaves,
 * and the releaser futex-wakes under that stripe, so its record outlives
 * the wake too. Invariant: a lock that is free has no waiters that could
 * take it (every release and every writer that gives up re-runs the
 * grant).
 *
 * No convoys. Hand-off makes every object FIFO, which on one hub is cheap
 * (an unlocker that relocks at once queues behind the waiter it woke; one
 * extra switch) and prevents starvation under cooperative scheduling.
 * Across OS threads it would convoy: every contended unlock would wait
 * for the next owner's OS thread to wake up and run before anyone makes
 * progress. So a mutex released to a waiter of another hub or a plain
 * thread is freed and that waiter merely woken (WOKEN): it races for the
 * mutex with newcomers (barging), and a waiter whose holder runs on
 * another OS thread spins briefly (SPIN_TRIES reads) before it queues.
 * A woken waiter that loses the race queues again at the head. A waiter
 * that has waited longer than STARVE_NS (1 ms) sets GREEN__LK_STARVE in
 * the owner word: from then on every release hands off, newcomers cannot
 * take the free-looking mutex, until the queue drains (Go's sync.Mutex
 * starvation mode). Releases to a green waiter of the releaser's own hub
 * always hand off. Condition variables wake (WOKEN, the waiter retakes
 * the mutex); semaphores and rwlocks always hand off (a unit or a read
 * grant given to a sleeping waiter does not block the releaser).
 *
 * Several objects (not implemented yet). The record is made so that one
 * green thread can wait on several objects with first-wake-wins (gevent's
 * wait/iwait, Go's select): give the wait one node per object, all
 * pointing to one shared state word instead of each their own (the
 * record's state becomes a pointer to it, the node keeps its own queue
 * link and index). A releaser's compare-and-swap from WAITING to
 * GRANTED(index) on the shared word decides the whole wait; a releaser
 * whose CAS fails finds that the wait is already decided and skips the
 * node and decides the next waiter instead (lw_wake returns false and
 * lw_pop_wake, rw_grant go on: that path is there already). The winner
 * then unlinks its other nodes under each object's stripe, one at a time
 * (never two stripes at once); a node still linked is harmless meanwhile
 * because every releaser checks the state before granting.
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
 *  - how a semaphore or condition waiter parks: with a mark in its
 *    thread's wnode.data so that the embedder can find it (pthread's
 *    wake-ups from a signal handler on the hub), and expecting a remote
 *    wake-up (the hub keeps polling instead of reporting a deadlock);
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
 * Priorities. Every queue is ordered by the waiters' ranks (the realtime
 * priority of a SCHED_FIFO or SCHED_RR pthread, 0 otherwise: sched.c,
 * "Priorities"), FIFO among equals, so a release hands the object to the
 * waiter of the highest rank that waited longest, as POSIX asks of
 * mutexes, conditions, semaphores and rwlocks under the realtime
 * policies. The rank is taken when the waiter queues: a change of
 * priority while it waits applies from its next wait. The order is kept
 * at the push (lw_push), so the pop and every release stay as they were;
 * with equal ranks the push is one comparison more (with the tail's
 * rank, or the head's for a push at the head). An rwlock with two queues
 * serves the higher of the two heads' ranks first, the preference
 * deciding ties. Barging is unchanged: across OS threads a woken waiter
 * races newcomers of any rank. The futex table's buckets are ordered the
 * same way, as the kernel orders realtime futex waiters.
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
 * Limits. A stripe is a spinlock: a signal handler that interrupts its
 * holder on the same OS thread and enters the core would spin forever,
 * so the async-signal-safe entry (green__sem_add, the pthread layer's
 * sem_post from a handler) takes none and pokes the hubs instead; that
 * poke reaches the green waiters of every hub that ever had one
 * (hooks/pthread_sync.c), not plain waiters.
 * An OS thread that gets a hub while it holds a lock changes identity
 * (its unlock of an errorcheck mutex then says EPERM). Identities of
 * plain threads are thread-local addresses, reused after the thread
 * exits, as tids are.
 *
 * Rejected: barging everywhere (unlock frees the mutex and merely wakes a
 * waiter): simpler, but on one hub a thread that unlocks and relocks in a
 * loop starves every waiter forever under cooperative scheduling; pure
 * hand-off everywhere: a convoy across OS threads (measured in
 * bench/bench_lockmt.c). A lock word inside each object: no room in
 * glibc's cond and rwlock layouts without moving words that glibc's
 * static initialisers set. Queue nodes embedded in green_thread (as
 * before): a plain OS thread has none, and the node must carry the
 * atomic state and the remote post. Per-object heap state: the objects
 * must work when zero-filled, never fail with ENOMEM, and static pthread
 * mutexes are never destroyed. Two copies of each algorithm, one per API:
 * they drifted. Callbacks into the wrappers for every policy decision:
 * the policy is a const struct of flags, read only on the slow path, and
 * the uncontended paths stay inline in lock.h.
 */
#define _GNU_SOURCE
#include "lock.h"
#include <limits.h>
#include <linux/futex.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

const struct green__lock_how green__lock_plain = {0};
bool green__lock_always_handoff;

/* Starvation bound of a mutex (see "No convoys"), and how many times a
 * waiter whose holder runs on another OS thread re-reads the owner word
 * before it queues. */
#define STARVE_NS   GREEN_MSEC(1)
#define SPIN_TRIES  64

/* ------------------------------------------------------- stripe locks */

/* Spinlocks that protect the objects' queues and fields, chosen by the
 * object's address: the objects have no room for one of their own in
 * glibc's layouts, and a stripe is held for a few dozen instructions (a
 * queue edit and the wake-ups it decides), never across a switch or a
 * futex wait, and never two at once. */
#define STRIPES 64
static struct {
    _Alignas(64) uint32_t w;
} stripes[STRIPES];

/* In the child of a fork only the forking thread is left: a stripe that
 * another thread held at the fork would never be released. The forking
 * thread itself holds none (fork is never called under a stripe), so all
 * are free again. */
static void futex_after_fork_child(void);

void green__lock_after_fork_child(void)
{
    for (size_t i = 0; i < STRIPES; i++)
        __atomic_store_n(&stripes[i].w, 0, __ATOMIC_RELAXED);
    futex_after_fork_child();
}

static uint32_t *stripe_of(const void *obj)
{
    uintptr_t a = (uintptr_t)obj;
    a ^= a >> 6 ^ a >> 12 ^ a >> 18;
    return &stripes[(a >> 3) % STRIPES].w;
}

static void lk_take(uint32_t *l)
{
    unsigned spins = 0;
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(l, __ATOMIC_RELAXED))
            if (++spins < 128)
                green__cpu_relax();
            else
                GREEN_REAL(sched_yield)();
}

static void lk_give(uint32_t *l)
{
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------- who is waiting */

/* Set once a plain OS thread used the core: from then on every green
 * waiter expects a remote wake-up (its hub must not report a deadlock
 * that a plain thread's release would end). */
static bool plain_seen;
static __thread _Alignas(8) char plain_anchor __attribute__((tls_model("initial-exec")));

uintptr_t green__lock_plain_id(void)
{
    if (green__unlikely(!__atomic_load_n(&plain_seen, __ATOMIC_RELAXED)))
        __atomic_store_n(&plain_seen, true, __ATOMIC_RELAXED);
    return (uintptr_t)&plain_anchor | GREEN__LK_PLAIN;
}

/* May a wake-up come from another OS thread? */
static bool lock_multi(const struct green__lock_how *how)
{
    return how->expect_remote || __atomic_load_n(&plain_seen, __ATOMIC_RELAXED) ||
           atomic_load_explicit(&green__hubs_made, memory_order_relaxed) > 1;
}

/* Runs on the green waiter's hub: the cross-hub wake-up arrives. */
static void lw_deliver(struct green__remote *r)
{
    struct green__lwait *w = (struct green__lwait *)(void *)
        ((char *)r - offsetof(struct green__lwait, post));
    struct green_thread *t = w->n.t;
    __atomic_store_n(&w->pending, 0, __ATOMIC_RELEASE);
    green__ready(t, 0);   /* same OS thread as the waiter: it cannot
                             leave before this returns */
}

static void lw_init(struct green__lwait *w, struct green_thread *self, uintptr_t kind,
                    uint32_t *lk)
{
    *w = (struct green__lwait){
        .n = { .t = self, .data = kind },
        .id = green__lock_id(self),
        .rank = self ? green__sched_rank(self) : 0,
        .ctx = self ? self->ctx : NULL,
        .lk = lk,
        .post = { .run = lw_deliver },
    };
}

static int lw_rank(const struct green__wnode *n)
{
    return ((const struct green__lwait *)(const void *)n)->rank;
}

/* Link w into q after node at (NULL: at the head). Stripe held. */
static void lw_link_after(struct green__waitq *q, struct green__lwait *w,
                          struct green__wnode *at)
{
    struct green__wnode *n = &w->n, *next = at ? at->next : q->head;
    n->q = q;
    n->prev = at;
    n->next = next;
    if (at)
        at->next = n;
    else
        q->head = n;
    if (next)
        next->prev = n;
    else
        q->tail = n;
}

/* Push w behind every waiter of its rank or higher (front: ahead of its
 * equals, behind the higher ones: a mutex waiter that was woken and lost
 * the race waits first among its equals). Queues stay sorted by rank,
 * FIFO among equals ("Priorities"). When every rank is equal (every
 * program without realtime threads) this is the plain tail or head push
 * after one comparison. Stripe held. */
static void lw_push(struct green__waitq *q, struct green__lwait *w, bool front)
{
    w->state = GREEN__LW_WAITING;
    struct green__wnode *at = NULL;
    if (!front) {
        if (green__likely(!q->tail || lw_rank(q->tail) >= w->rank)) {
            green__waitq_push(q, &w->n);
            return;
        }
        for (struct green__wnode *x = q->head; x && lw_rank(x) >= w->rank; x = x->next)
            at = x;
    } else {
        for (struct green__wnode *x = q->head; x && lw_rank(x) > w->rank; x = x->next)
            at = x;
    }
    green__assert("lock", w->n.q == NULL);
    lw_link_after(q, w, at);
}

/* Decide the fate of a popped waiter (to: GRANTED or WOKEN) and wake it:
 * a green waiter of the caller's hub is readied, one of another hub gets
 * a remote post, a plain one a futex wake. False if the waiter had
 * already left (cannot happen to a single-object waiter, which leaves
 * under the stripe; a multi-object waiter would: see "Several objects").
 * Stripe held, so the record is alive throughout. */
static bool lw_wake(struct green__lwait *w, uint32_t to)
{
    uint32_t from = GREEN__LW_WAITING;
    if (!__atomic_compare_exchange_n(&w->state, &from, to, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return false;
    if (!w->ctx) {
        green__syscall(SYS_futex, &w->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    } else if (w->ctx == green__tls_ctx) {
        green__ready(w->n.t, 0);
    } else {
        __atomic_store_n(&w->pending, 1, __ATOMIC_RELAXED);
        green__remote_post(w->ctx, &w->post);
    }
    return true;
}

/* Pop the first waiter and decide it: see lw_wake. Stripe held. */
static struct green__lwait *lw_pop_wake(struct green__waitq *q, uint32_t to)
{
    struct green__lwait *w;
    while ((w = (struct green__lwait *)(void *)green__waitq_pop(q)))
        if (lw_wake(w, to))
            return w;
    return NULL;
}

/* Block the queued waiter w until it is woken or the deadline passes
 * (and for a green one, a kill or a signal). Returns the park's code (a
 * plain waiter: 0 or ETIMEDOUT). No stripe held. */
static int lw_block(struct green__lwait *w, enum green__why why, const void *obj,
                    int64_t deadline, const struct green__lock_how *how)
{
    struct green_thread *t = w->n.t;
    if (t) {
        bool remote = lock_multi(how);
        t->wnode.data = (uintptr_t)how->mark;
        if (remote)
            green__remote_expect(t->ctx, +1);
        t->lwait = w;
        t->lock_wakeable = how->retry_other;
        int code = green__park(why, (uintptr_t)obj, NULL, deadline);
        t->lock_wakeable = false;
        t->lwait = NULL;
        if (remote)
            green__remote_expect(t->ctx, -1);
        t->wnode.data = 0;
        return code;
    }
    int saved = errno, code = 0;
    struct timespec ts = { .tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000 };
    while (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) == GREEN__LW_WAITING) {
        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline,
         * green_now()'s clock. */
        if (green__syscall(SYS_futex, &w->state, FUTEX_WAIT_BITSET_PRIVATE, GREEN__LW_WAITING,
                    deadline >= 0 ? &ts : NULL, NULL, FUTEX_BITSET_MATCH_ANY) != 0 &&
            errno == ETIMEDOUT) {
            code = ETIMEDOUT;
            break;
        }
    }
    errno = saved;
    return code;
}

/* Called by green__ready for a green waiter that something else than
 * the object wakes (a deadline, a kill, a signal, an outside wake-up), on
 * the waiter's own hub and never inside the core (so never under a
 * stripe: a releaser readies a waiter only after deciding it, and then
 * the state is no longer WAITING): the waiter leaves the queue in the
 * same step as it is woken, as the essay promises. */
void green__lock_cancel(struct green__lwait *w)
{
    if (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) != GREEN__LW_WAITING)
        return;
    lk_take(w->lk);
    uint32_t st = GREEN__LW_WAITING;
    if (__atomic_compare_exchange_n(&w->state, &st, GREEN__LW_CANCELLED, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        green__waitq_remove(&w->n);
    lk_give(w->lk);
}

/* A green waiter whose grant came from another hub waits until that
 * hub's remote post has run (it lives in the record). Kills and signals
 * do not cut this short; a kill is kept for the next park. */
static void lw_settle(struct green__lwait *w)
{
    struct green_thread *t = w->n.t;
    if (!t || !__atomic_load_n(&w->pending, __ATOMIC_ACQUIRE))
        return;
    bool killed = false;
    unsigned intr = t->intr_gen;
    t->intr_gen = 0;
    green__remote_expect(t->ctx, +1);
    while (__atomic_load_n(&w->pending, __ATOMIC_ACQUIRE))
        if (green__park(GREEN_WHY_OTHER, 0, NULL, GREEN_FOREVER) == ECANCELED)
            killed = true;
    green__remote_expect(t->ctx, -1);
    t->intr_gen = intr;
    if (killed)
        t->kill_pending |= GREEN__KP_KILL;
}

/* After lw_block: who won? Takes the stripe; a waiter still WAITING
 * leaves (CANCELLED: it unlinks itself and returns with the stripe
 * HELD, for the caller's clean-up); otherwise the releaser decided
 * (GRANTED, WOKEN) and the stripe is released, and the record settled. */
static uint32_t lw_resolve(struct green__lwait *w, uint32_t *lk, int code)
{
    lk_take(lk);
    uint32_t st = GREEN__LW_WAITING;
    if (__atomic_compare_exchange_n(&w->state, &st, GREEN__LW_CANCELLED, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        green__waitq_remove(&w->n);   /* a park that did not wait */
    if (st == GREEN__LW_WAITING || st == GREEN__LW_CANCELLED)
        return GREEN__LW_CANCELLED;
    lk_give(lk);
    lw_settle(w);
    /* The grant won over a kill that woke us: keep the kill for the
     * caller's next park (the essay: a granted waiter keeps its grant). */
    if (code == ECANCELED && w->n.t)
        w->n.t->kill_pending |= GREEN__KP_KILL;
    return st;
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

/* Does the holder h run on another OS thread than the caller? Then a
 * short spin may see it release. */
static bool holder_elsewhere(uintptr_t h, const struct green_thread *self)
{
    if (!h)
        return false;
    if (h & GREEN__LK_PLAIN || !self)
        return h != green__lock_id(self);
    return ((const struct green_thread *)h)->ctx != self->ctx;
}

/* Spin a little while the holder runs elsewhere: true if m was taken. */
static bool mutex_spin(struct green__mutex *m, struct green_thread *self, uintptr_t me)
{
    for (int i = 0; i < SPIN_TRIES; i++) {
        uintptr_t o = __atomic_load_n(&m->owner, __ATOMIC_RELAXED);
        if (!holder_elsewhere(GREEN__LK_ID(o), self) || (o & GREEN__LK_STARVE))
            return green__mutex_grab(m, me);
        if (GREEN__LK_ID(o) == 0 && green__mutex_grab(m, me))
            return true;
        green__cpu_relax();
    }
    return false;
}

/* Stripe held: take m if free, else mark it as having waiters (and as
 * starving if asked). True if taken. */
static bool mutex_take_or_mark(struct green__mutex *m, uintptr_t me, bool starve)
{
    uintptr_t o = __atomic_load_n(&m->owner, __ATOMIC_RELAXED);
    for (;;) {
        if (GREEN__LK_ID(o) == 0 && !(o & GREEN__LK_STARVE)) {
            if (__atomic_compare_exchange_n(&m->owner, &o, o | me, true,
                                            __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
                m->depth = 1;
                return true;
            }
            continue;
        }
        uintptr_t want = o | GREEN__LK_WAITERS | (starve ? GREEN__LK_STARVE : 0);
        if (want == o ||
            __atomic_compare_exchange_n(&m->owner, &o, want, true, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return false;
    }
}

/* Stripe held, queue empty: no waiter flags any more. */
static void mutex_unmark(struct green__mutex *m)
{
    uintptr_t o = __atomic_load_n(&m->owner, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&m->owner, &o,
                                        o & ~(GREEN__LK_WAITERS | GREEN__LK_STARVE), true,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
}

int green__mutex_wait(struct green__mutex *m, struct green_thread *self,
                      int64_t deadline, const struct green__lock_how *how)
{
    green_timeout_t *scopes = self ? self->scopes : NULL;
    uintptr_t me = green__lock_id(self);
    uint32_t *lk = stripe_of(m);
    struct green__lwait w;
    bool killed = false, front = false;
    int64_t since = 0;
    int rc = 0;
    if (self && how->no_scopes)
        self->scopes = NULL;
    lw_init(&w, self, 0, lk);
    for (;;) {
        if (mutex_spin(m, self, me))
            break;
        lk_take(lk);
        int64_t now = green_now();
        if (!since)
            since = now;
        uintptr_t h = green__mutex_holder(m);
        bool starve = now - since > STARVE_NS && holder_elsewhere(h, self);
        if (mutex_take_or_mark(m, me, starve)) {
            lk_give(lk);
            break;
        }
        lw_push(&m->q, &w, front);
        lk_give(lk);
        int code = lw_block(&w, GREEN_WHY_MUTEX, m, deadline, how);
        uint32_t st = lw_resolve(&w, lk, code);
        if (st == GREEN__LW_GRANTED)
            break;   /* handed over: owner and depth are ours */
        if (st == GREEN__LW_WOKEN) {
            front = true;   /* freed for us to race for; lost: wait first */
            continue;
        }
        if (green__waitq_empty(&m->q))
            mutex_unmark(m);
        lk_give(lk);
        if (!wait_on(code, how, &killed)) {
            rc = code;
            break;
        }
        if (code == EINTR)
            front = true;   /* woken to run a signal handler: its place */
    }
    if (self && how->no_scopes)
        self->scopes = scopes;
    if (killed && self)
        self->kill_pending |= GREEN__KP_KILL;
    return rc;
}

void green__mutex_release_slow(struct green__mutex *m)
{
    uint32_t *lk = stripe_of(m);
    lk_take(lk);
    uintptr_t o = __atomic_load_n(&m->owner, __ATOMIC_RELAXED);
    struct green__lwait *w;
    while ((w = (struct green__lwait *)(void *)green__waitq_pop(&m->q))) {
        bool more = !green__waitq_empty(&m->q);
        /* Hand-off to a green waiter of this hub (cheap: no other OS
         * thread could use the time) or while starving; otherwise free
         * the mutex and let the waiter race for it. */
        if ((o & GREEN__LK_STARVE) || (w->ctx && w->ctx == green__tls_ctx) ||
            green__lock_always_handoff) {
            uintptr_t flags = more ? o & (GREEN__LK_WAITERS | GREEN__LK_STARVE) : 0;
            m->depth = 1;
            __atomic_store_n(&m->owner, w->id | flags, __ATOMIC_RELEASE);
            if (lw_wake(w, GREEN__LW_GRANTED))
                break;
        } else {
            __atomic_store_n(&m->owner, more ? GREEN__LK_WAITERS : 0, __ATOMIC_RELEASE);
            if (lw_wake(w, GREEN__LW_WOKEN))
                break;
        }
    }
    if (!w)
        __atomic_store_n(&m->owner, 0, __ATOMIC_RELEASE);
    lk_give(lk);
}

/* ------------------------------------------------------------- condition */

int green__cond_park(struct green__cond *c, struct green_thread *self,
                     int64_t deadline, const struct green__lock_how *how,
                     void (*release)(void *arg), void *arg)
{
    uint32_t *lk = stripe_of(c);
    struct green__lwait w;
    lw_init(&w, self, 0, lk);
    lk_take(lk);
    lw_push(&c->q, &w, false);
    lk_give(lk);
    release(arg);
    int code = lw_block(&w, GREEN_WHY_COND, c, deadline, how);
    if (lw_resolve(&w, lk, code) == GREEN__LW_CANCELLED)
        lk_give(lk);
    else
        code = 0;   /* signalled: that wins over a timeout */
    return code;
}

int green__cond_wait(struct green__cond *c, struct green__mutex *m,
                     struct green_thread *self, int64_t deadline,
                     const struct green__lock_how *how)
{
    uint32_t *lk = stripe_of(c);
    uint32_t depth = m->depth;
    struct green__lwait w;
    lw_init(&w, self, 0, lk);
    /* Queued before the mutex is released: a signal sent under the mutex
     * after our release finds us. */
    lk_take(lk);
    lw_push(&c->q, &w, false);
    lk_give(lk);
    green__mutex_release(m);
    int code = lw_block(&w, GREEN_WHY_COND, c, deadline, how);
    if (lw_resolve(&w, lk, code) == GREEN__LW_CANCELLED)
        lk_give(lk);
    else
        code = 0;
    int relock = green__mutex_wait(m, self, GREEN_FOREVER, how);
    if (relock == 0)
        m->depth = depth;
    return relock ? relock : code;
}

void green__cond_signal(struct green__cond *c)
{
    if (!__atomic_load_n(&c->q.head, __ATOMIC_ACQUIRE))
        return;   /* a waiter queues before it releases the mutex: one the
                     caller's mutex does not order is not owed a wake-up */
    uint32_t *lk = stripe_of(c);
    lk_take(lk);
    lw_pop_wake(&c->q, GREEN__LW_WOKEN);
    lk_give(lk);
}

void green__cond_broadcast(struct green__cond *c)
{
    if (!__atomic_load_n(&c->q.head, __ATOMIC_ACQUIRE))
        return;
    uint32_t *lk = stripe_of(c);
    lk_take(lk);
    while (lw_pop_wake(&c->q, GREEN__LW_WOKEN))
        ;
    lk_give(lk);
}

/* -------------------------------------------------------------- semaphore */

int green__sem_post(struct green__sem *s)
{
    uint32_t *lk = stripe_of(s);
    lk_take(lk);
    int e = lw_pop_wake(&s->q, GREEN__LW_GRANTED) ? 0 : green__sem_add(s);
    lk_give(lk);
    return e;
}

int green__sem_wait(struct green__sem *s, struct green_thread *self,
                    int64_t deadline, const struct green__lock_how *how)
{
    uint32_t *lk = stripe_of(s);
    struct green__lwait w;
    lw_init(&w, self, 0, lk);
    for (;;) {
        if (green__sem_trytake(s) == 0)
            return 0;
        lk_take(lk);
        if (green__sem_trytake(s) == 0) {
            lk_give(lk);
            return 0;
        }
        lw_push(&s->q, &w, false);
        lk_give(lk);
        int code = lw_block(&w, GREEN_WHY_SEM, s, deadline, how);
        if (lw_resolve(&w, lk, code) != GREEN__LW_CANCELLED)
            return 0;   /* handed a unit */
        lk_give(lk);
        if (code)
            return code;
    }
}

/* ----------------------------------------------------------------- rwlock */

/* Grant the lock to waiters while it allows: a writer alone, readers
 * together, the next one chosen by prefer. Stripe held. Never switches. */
static void rw_grant(struct green__rwlock *rw, enum green__rw_prefer prefer)
{
    while (!rw->writer) {
        struct green__wnode *n, *rh = rw->rq.head, *wh = rw->wq.head;
        if (prefer == GREEN__RW_FIFO || !rh)
            n = wh;
        else if (!wh)
            n = rh;
        else if (lw_rank(rh) != lw_rank(wh))   /* the higher rank first */
            n = lw_rank(rh) > lw_rank(wh) ? rh : wh;
        else
            n = prefer == GREEN__RW_READERS ? rh : wh;
        if (!n)
            return;
        struct green__lwait *w = (struct green__lwait *)(void *)n;
        if (n->data & GREEN__LK_WRITE) {
            if (rw->readers)
                return;
            rw->writer = w->id;
        } else {
            rw->readers++;
        }
        green__waitq_remove(n);
        if (!lw_wake(w, GREEN__LW_GRANTED)) {   /* left: undo */
            if (n->data & GREEN__LK_WRITE)
                rw->writer = 0;
            else
                rw->readers--;
        }
    }
}

/* Stripe held. */
static int rw_try(struct green__rwlock *rw, uintptr_t me, bool write,
                  enum green__rw_prefer prefer)
{
    if (rw->writer && rw->writer == me)
        return EDEADLK;
    if (write) {
        if (rw->writer || rw->readers)
            return EBUSY;
        rw->writer = me;
        return 0;
    }
    if (rw->writer || (prefer != GREEN__RW_READERS && !green__waitq_empty(&rw->wq)))
        return EBUSY;
    if (rw->readers == UINT32_MAX)
        return EAGAIN;
    rw->readers++;
    return 0;
}

int green__rwlock_trylock(struct green__rwlock *rw, struct green_thread *self,
                          bool write, enum green__rw_prefer prefer)
{
    uintptr_t me = green__lock_id(self);
    uint32_t *lk = stripe_of(rw);
    lk_take(lk);
    int e = rw_try(rw, me, write, prefer);
    lk_give(lk);
    return e;
}

int green__rwlock_lock(struct green__rwlock *rw, struct green_thread *self,
                       bool write, enum green__rw_prefer prefer,
                       int64_t deadline, const struct green__lock_how *how)
{
    uint32_t *lk = stripe_of(rw);
    struct green__waitq *q = write || prefer == GREEN__RW_FIFO ? &rw->wq : &rw->rq;
    struct green__lwait w;
    bool killed = false;
    bool front = false;
    lw_init(&w, self, write ? GREEN__LK_WRITE : GREEN__LK_READ, lk);
    lk_take(lk);
    int e = rw_try(rw, w.id, write, prefer);
    while (e == EBUSY) {
        lw_push(q, &w, front);
        lk_give(lk);
        int code = lw_block(&w, GREEN_WHY_RWLOCK, rw, deadline, how);
        if (lw_resolve(&w, lk, code) != GREEN__LW_CANCELLED) {
            e = 0;   /* granted; the stripe is released */
            goto out;
        }
        if (!wait_on(code, how, &killed)) {
            e = code;
            if (write)
                rw_grant(rw, prefer);   /* it may have held readers back */
            break;
        }
        front = code == EINTR;   /* woken to run a signal handler: its place */
        e = rw_try(rw, w.id, write, prefer);
    }
    lk_give(lk);
out:
    if (killed && self)
        self->kill_pending |= GREEN__KP_KILL;
    return e;
}

int green__rwlock_unlock(struct green__rwlock *rw, struct green_thread *self,
                         enum green__rw_prefer prefer)
{
    uintptr_t me = green__lock_id(self);
    uint32_t *lk = stripe_of(rw);
    int e = 0;
    lk_take(lk);
    if (rw->writer) {
        if (rw->writer != me)
            e = EPERM;
        else
            rw->writer = 0;
    } else if (rw->readers) {
        rw->readers--;
    } else {
        e = EPERM;
    }
    if (!e)
        rw_grant(rw, prefer);
    lk_give(lk);
    return e;
}

/* ------------------------------------------------------------ futex words */

/* The wait table of green__futex_wait/wake (lock.h: "futex words"): a
 * fixed array of buckets chosen by the word's address, each a queue of
 * waiter records that say which word they wait on. Each bucket's queue
 * is under the stripe of the bucket (one stripe at a time, as every
 * object). waiters counts the records queued or about to be, so that a
 * wake of a bucket nobody waits in takes no stripe: a waiter counts
 * itself before it reads the word, a waker reads the count after the
 * program changed the word, and the full fences on both sides make at
 * least one of them see the other (the futex(2) ordering). */
#define FUTEX_BUCKETS 256
static struct futex_bucket {
    _Alignas(64) struct green__waitq q;
    uint32_t waiters;
} futex_table[FUTEX_BUCKETS];

struct futex_wait {
    struct green__lwait w;        /* first: the queue's node is the record;
                                     w.n.data is the waiter's bitset */
    const uint32_t *word;
};

/* In the child of a fork every futex waiter is gone (only the forking
 * thread is left, and it was not waiting): a wake there must not find
 * their records. */
static void futex_after_fork_child(void)
{
    memset(futex_table, 0, sizeof futex_table);
}

/* The waiter count of b, read after a full fence: the program's change of
 * the word (any memory order) is visible to a waiter that counts itself
 * later. ThreadSanitizer does not model fences: there a read-modify-write
 * of the count, which is one, stands in. */
static uint32_t futex_waiters_fenced(struct futex_bucket *b)
{
#if defined(__SANITIZE_THREAD__)
    return __atomic_fetch_add(&b->waiters, 0, __ATOMIC_SEQ_CST);
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return __atomic_load_n(&b->waiters, __ATOMIC_RELAXED);
#endif
}

static struct futex_bucket *futex_bucket_of(const uint32_t *word)
{
    uintptr_t a = (uintptr_t)word;
    a ^= a >> 9 ^ a >> 17;
    return &futex_table[(a >> 2) % FUTEX_BUCKETS];
}

int green__futex_wait(const uint32_t *word, uint32_t val, uint32_t bitset,
                      struct green_thread *self, int64_t deadline,
                      const struct green__lock_how *how)
{
    struct futex_bucket *b = futex_bucket_of(word);
    uint32_t *lk = stripe_of(b);
    struct futex_wait f = { .word = word };
    lw_init(&f.w, self, bitset, lk);
    __atomic_fetch_add(&b->waiters, 1, __ATOMIC_SEQ_CST);
    lk_take(lk);
    if (__atomic_load_n(word, __ATOMIC_SEQ_CST) != val) {
        lk_give(lk);
        __atomic_fetch_sub(&b->waiters, 1, __ATOMIC_RELAXED);
        return EAGAIN;
    }
    lw_push(&b->q, &f.w, false);
    lk_give(lk);
    int code = lw_block(&f.w, GREEN_WHY_FUTEX, word, deadline, how);
    if (lw_resolve(&f.w, lk, code) == GREEN__LW_CANCELLED)
        lk_give(lk);    /* not woken by a wake: the park's code (0 is a
                           spurious wake-up, which futex(2) allows) */
    else
        code = 0;       /* a wake wins over a deadline that fired */
    __atomic_fetch_sub(&b->waiters, 1, __ATOMIC_RELAXED);
    return code;
}

/* Wake up to n green waiters of word whose bitset meets bitset. Bucket's
 * stripe held. */
static int futex_wake_locked(struct futex_bucket *b, const uint32_t *word, int n,
                             uint32_t bitset)
{
    int woken = 0;
    struct green__wnode *x = b->q.head;
    while (x && woken < n) {
        struct green__wnode *next = x->next;
        struct futex_wait *f = (struct futex_wait *)(void *)x;
        if (f->word == word && (x->data & bitset)) {
            green__waitq_remove(x);
            if (lw_wake(&f->w, GREEN__LW_WOKEN))
                woken++;
        }
        x = next;
    }
    return woken;
}

int green__futex_wake(const uint32_t *word, int n, uint32_t bitset)
{
    struct futex_bucket *b = futex_bucket_of(word);
    if (n <= 0 || !futex_waiters_fenced(b))
        return 0;
    uint32_t *lk = stripe_of(b);
    lk_take(lk);
    int woken = futex_wake_locked(b, word, n, bitset);
    lk_give(lk);
    return woken;
}

int green__futex_requeue(const uint32_t *word, int nwake, int nmove,
                         const uint32_t *cmp, uint32_t cmpval)
{
    struct futex_bucket *b = futex_bucket_of(word);
    if (!futex_waiters_fenced(b))
        return 0;    /* the kernel's part compares the word itself */
    uint32_t *lk = stripe_of(b);
    lk_take(lk);
    int r = 0;
    if (!cmp || __atomic_load_n(cmp, __ATOMIC_SEQ_CST) == cmpval) {
        long n = (long)(nwake > 0 ? nwake : 0) + (nmove > 0 ? nmove : 0);
        r = futex_wake_locked(b, word, n > INT_MAX ? INT_MAX : (int)n, ~0u);
    } else {
        r = -EAGAIN;
    }
    lk_give(lk);
    return r;
}

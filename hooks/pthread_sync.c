/*
 * pthread_sync.c - pthread mutexes, condition variables, rwlocks,
 * barriers, spinlocks and unnamed semaphores as cooperative green
 * primitives, kept inside the storage the program already gave them.
 *
 * Layout. Each object overlays its glibc type (x86-64 and aarch64 sizes:
 * mutex 40, cond 48, rwlock 56, barrier 32, sem 32 bytes) with a struct of
 * our own, checked by _Static_assert. The wait queue is an intrusive list
 * head (two pointers) embedded in the storage, so nothing is ever
 * allocated, contended or not. The layouts are chosen so that glibc's
 * static initialisers decode correctly:
 *  - mutex: all zero is a free normal mutex; the type lives where glibc
 *    keeps __kind (offset 16), so PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP
 *    (kind 1) and PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP (kind 2) work
 *    without an init call; owner and depth overlay __lock/__count/__owner,
 *    the queue overlays __list.
 *  - cond: all zero is an empty queue on CLOCK_REALTIME (0).
 *  - rwlock: all zero is free and prefers readers (glibc's default); the
 *    kind stays in __flags (offset 48), so
 *    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP prefers writers.
 *  - sem: the value is the low half of glibc's 64-bit data word; glibc's
 *    "private" word (offset 8) is 128 for a process-shared semaphore.
 *
 * Ownership is handed over: unlocking a mutex with waiters makes the first
 * waiter the owner before readying it (FIFO, no barging, no thundering
 * herd), and the same holds for rwlocks and semaphore units. A waiter
 * woken with 0 therefore always holds what it waited for; a waiter woken
 * by a timeout or a kill was unlinked first and was handed nothing.
 *
 * Process-shared and robust mutexes, and process-shared condition
 * variables, barriers and rwlocks, hold no pointer (the memory may be
 * shared with a forked process): owners are 64-bit ids (pid and green
 * thread id) and waiters nap between tries; see "shared and robust
 * mutexes" below. Priority-protocol mutexes and process-shared or named
 * semaphores use libc's layout: libc does every operation, and the
 * blocking forms become a try-and-nap loop so that the OS thread keeps
 * running the other green threads (a priority-protocol mutex is owned by
 * the OS thread, shared by all green threads: a documented limit).
 *
 * Mixed use. An object is green when a green thread first touches it;
 * libc's functions do not understand our layout and ours not theirs. Under
 * the shim every thread the program creates is green and the main thread
 * adopts its hub at its first pthread call, so mixing happens only for an
 * object locked by libc before the shim's constructor ran, or used both by
 * green threads and by a plain OS thread (libgreen's own workers never do:
 * they run with green__bypass or on their own objects).
 *
 * sem_post (async-signal-safe) and pthread_cond_signal/broadcast may come
 * from outside the green world (a handler that runs on the hub, a plain
 * OS thread such as a SIGEV_THREAD notify function): they wake the green
 * waiters through an ev_async ("Wake-ups from outside" below). A post
 * from a handler that interrupted a running green thread takes the
 * ordinary path, which touches the run queue: a narrow window, documented.
 *
 * Cancellation points here: pthread_cond_wait/timedwait/clockwait and
 * sem_wait/timedwait/clockwait (see pthread.c). A kill arriving during a
 * lock that may not fail (mutex, rwlock, barrier, spin) is remembered and
 * fails the caller's next park instead.
 *
 * Rejected: a heap side object per contended lock (allocation, a free
 * that nobody calls for static mutexes, and a lookup); keeping glibc's
 * futex protocol and parking on the futex word (a green thread cannot wait
 * on a futex without blocking the OS thread).
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include <fcntl.h>
#include <sys/syscall.h>
#include "hooks_signal.h"
#include <limits.h>
#include <stddef.h>
#include <string.h>

/* --------------------------------------------------------------- helpers */

/* Type bits of the mutex kind; the robust and process-shared bits (glibc's
 * values) select the "shared" mutex below; any other bit (priority
 * protocols) is a libc-only mutex. */
#define KIND_TYPE_MASK 3
#define KIND_ROBUST    16
#define KIND_PSHARED   128
#define KIND_SHARED    (KIND_ROBUST | KIND_PSHARED)

/* Sleep between two tries of a libc-only or shared object: yield first,
 * then 50 us doubling to 5 ms, never past the deadline. Returns the next
 * nap. A kill (ECANCELED) does not cut the nap short, or a waiter with a
 * kill pending would spin without ever letting the others run: it is
 * remembered for the caller's next park. */
static int64_t nap(int64_t ns, int64_t deadline)
{
    bool killed = false;
    int saved = errno;
    if (ns == 0) {
        while (green_yield() != 0 && errno == ECANCELED)
            killed = true;   /* the pending kill was consumed: yield now */
    } else {
        int64_t until = green_now() + ns;
        if (deadline >= 0 && deadline < until)
            until = deadline;
        while (green_sleep_until(until) != 0 && errno == ECANCELED)
            killed = true;
    }
    errno = saved;
    if (killed)
        green__pt_rearm_kill();
    return ns == 0 ? GREEN_USEC(50) : (ns >= GREEN_MSEC(5) ? ns : ns * 2);
}

static bool past(int64_t deadline)
{
    return deadline >= 0 && green_now() >= deadline;
}

/* A lock wait was killed: with an asynchronous cancel pending (and
 * enabled) the thread ends here, as glibc's SIGCANCEL would end it in the
 * futex wait; otherwise the kill is remembered for the next park. */
static void async_cancel_now(void)
{
    struct green_thread *t = green__current();
    if (((uintptr_t)t->user & PT_FLAGS) == (PT_CANCEL_REQUESTED | PT_CANCEL_ASYNC))
        green__pt_cancel_now();
}

/* Call try(obj) until it stops failing with busy_code or the deadline
 * passes (ETIMEDOUT). For the libc-only objects. */
#define POLL_REAL(call, busy_cond, deadline, result)                          \
    do {                                                                      \
        int64_t ns_ = 0;                                                      \
        for (;;) {                                                            \
            result = (call);                                                  \
            if (!(busy_cond) || past(deadline))                               \
                break;                                                        \
            ns_ = nap(ns_, deadline);                                         \
        }                                                                     \
    } while (0)

/* Wake-ups from outside. sem_post is async-signal-safe and programs post
 * from signal handlers, which run on the hub while everything is parked;
 * and a plain OS thread (a SIGEV_THREAD notify function, which glibc runs
 * on a thread of its own) may post a semaphore or signal a condition
 * variable that green threads wait on. Touching the run queue there is
 * not safe, so such a call only records what happened (the unit is added
 * atomically by the caller) and pokes the hub of the green waiters
 * through an ev_async (signal- and thread-safe). Its callback, on the
 * hub, readies with EAGAIN every green thread parked in a wait of that
 * kind: a sem waiter re-tries its semaphore, a condition waiter returns
 * as from a spurious wake-up (which pthreads allow). */
#define OUTSIDE_SEM  1
#define OUTSIDE_COND 2
struct outside_waker {
    ev_async w;                   /* poked by outside posts and signals */
    struct green__ctx *ctx;       /* hub whose waiters it wakes */
    atomic_int pending;           /* OUTSIDE_* kinds poked since the last run */
};
static struct outside_waker *_Atomic outside_waker;
/* wnode.data of a green thread parked in a sem / cond wait. */
static const char sem_wait_mark, cond_wait_mark;

static void outside_waker_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop; (void)revents;
    struct outside_waker *k = (struct outside_waker *)w;
    int kinds = atomic_exchange(&k->pending, 0);
    for (struct green_thread *t = k->ctx->all; t; t = t->all_next) {
        if (t->state != GREEN_PARKED || !t->wnode.q)
            continue;
        if (((kinds & OUTSIDE_SEM) && t->wnode.data == (uintptr_t)&sem_wait_mark) ||
            ((kinds & OUTSIDE_COND) && t->wnode.data == (uintptr_t)&cond_wait_mark))
            green__ready(t, EAGAIN);
    }
}

/* Make sure outside wake-ups can reach this hub's waiters (the hub of the
 * first green sem or cond wait: under the shim, the only one). */
static void outside_waker_ensure(void)
{
    if (green__likely(atomic_load_explicit(&outside_waker, memory_order_acquire) != NULL))
        return;
    struct outside_waker *k = calloc(1, sizeof *k);
    if (!k)
        return;
    k->ctx = green__tls_ctx;
    ev_async_init(&k->w, outside_waker_cb);
    ev_async_start(k->ctx->loop, &k->w);
    ev_unref(k->ctx->loop);   /* it must not hide a deadlock by itself */
    atomic_store_explicit(&outside_waker, k, memory_order_release);
}

/* Async-signal-safe and thread-safe. */
static void outside_poke(int kind)
{
    struct outside_waker *k = atomic_load_explicit(&outside_waker, memory_order_acquire);
    if (!k)
        return;   /* no green thread ever waited: nobody to wake */
    atomic_fetch_or(&k->pending, kind);
    ev_async_send(k->ctx->loop, &k->w);
}

/* Park self as a sem or cond waiter (mark) that an outside call can wake.
 * Under the shim, or for a semaphore (which a signal handler may post),
 * the hub keeps polling while we wait rather than declaring a deadlock
 * that the outside wake-up would then find it stuck in. */
static int park_wakeable(struct green_thread *self, const char *mark,
                         enum green__why why, void *obj, struct green__waitq *q,
                         int64_t deadline)
{
    bool keep_polling = mark == &sem_wait_mark || self->ctx->block_on_deadlock;
    self->wnode.data = (uintptr_t)mark;
    if (keep_polling)
        green__remote_expect(self->ctx, +1);
    int code = green__park(why, (uintptr_t)obj, q, deadline);
    if (keep_polling)
        green__remote_expect(self->ctx, -1);
    self->wnode.data = 0;
    return code;
}

/* ----------------------------------------------------------------- mutex */

struct pt_mutex {
    struct green_thread *owner;   /* holder, NULL when free (__lock, __count) */
    unsigned depth;               /* locks the holder has taken (__owner) */
    unsigned unused;              /* always 0 (__nusers) */
    int kind;                     /* glibc __kind: type in bits 0-1 */
    int spare;                    /* always 0 (__spins, __elision) */
    struct green__waitq q;        /* threads waiting for it (__list) */
};
_Static_assert(sizeof(struct pt_mutex) <= sizeof(pthread_mutex_t), "mutex size");
_Static_assert(offsetof(struct pt_mutex, kind) ==
               offsetof(pthread_mutex_t, __data.__kind), "mutex kind offset");

static bool mutex_is_libc(const struct pt_mutex *m)
{
    return (m->kind & ~(KIND_TYPE_MASK | KIND_SHARED)) != 0;
}

static bool mutex_is_shared(const struct pt_mutex *m)
{
    return (m->kind & KIND_SHARED) != 0;
}

/* ------------------------------------------- shared and robust mutexes */

/* Process-shared and robust mutexes hold no pointer: memory shared with
 * another process (MAP_SHARED, then fork) must make sense in both. The
 * owner is a 64-bit id, pid << 32 | green thread id, so ownership and
 * the errorcheck/recursive rules hold per green thread, in every
 * process. A waiter cannot be queued in the object, so it naps between
 * tries (nap(): yield, then 50 us doubling to 5 ms), which lets its hub
 * run the others. Robustness: a green thread that ends holding robust
 * mutexes marks them OWNER_DEAD (its list in green_thread.robust, walked
 * by the exit hook); a waiter that finds the owner's process gone (kill
 * 0: ESRCH) does the same. The next locker gets EOWNERDEAD and owns an
 * inconsistent mutex: pthread_mutex_consistent repairs it, an unlock
 * without it makes it ENOTRECOVERABLE, as glibc. */
struct pt_smutex {
    _Atomic uint64_t owner;       /* 0 free, OWNER_DEAD, or owner_id() */
    unsigned depth;               /* recursive depth of the holder */
    _Atomic unsigned state;       /* SM_* below */
    int kind;                     /* glibc __kind */
    int spare;                    /* always 0 */
    _Atomic uint64_t heir;        /* a waiter that has waited long: only it
                                     may take the mutex when it is next
                                     free (no starvation by a thread that
                                     unlocks and relocks at once), or 0 */
};
_Static_assert(sizeof(struct pt_smutex) <= sizeof(pthread_mutex_t), "smutex size");
_Static_assert(offsetof(struct pt_smutex, kind) == offsetof(struct pt_mutex, kind),
               "smutex kind offset");
_Static_assert(offsetof(struct pt_smutex, depth) == offsetof(struct pt_mutex, depth),
               "smutex depth offset");
#define OWNER_DEAD ((uint64_t)1)
enum { SM_OK, SM_INCONSISTENT, SM_UNRECOVERABLE };

static uint64_t owner_id(const struct green_thread *t)
{
    return (uint64_t)(uint32_t)t->ctx->pid << 32 | (uint32_t)t->id;
}

struct robust_list {
    unsigned n, cap;
    struct pt_smutex *m[];
};

/* The exit hook: every robust mutex the thread still holds is now held
 * by a dead owner. */
static void robust_on_exit(struct green_thread *t)
{
    struct robust_list *l = t->robust;
    if (!l)
        return;
    uint64_t me = owner_id(t);
    for (unsigned i = 0; i < l->n; i++) {
        uint64_t o = me;
        if (atomic_compare_exchange_strong(&l->m[i]->owner, &o, OWNER_DEAD))
            l->m[i]->depth = 0;
    }
    free(l);
    t->robust = NULL;
}

static void robust_add(struct green_thread *t, struct pt_smutex *m)
{
    struct robust_list *l = t->robust;
    if (!l || l->n == l->cap) {
        unsigned cap = l ? l->cap * 2 : 8;
        struct robust_list *n = realloc(l, sizeof *l + cap * sizeof l->m[0]);
        if (!n)
            return;   /* out of memory: this one will not be robust */
        if (!l)
            n->n = 0;
        n->cap = cap;
        t->robust = l = n;
        green__thread_exit_hook = robust_on_exit;
    }
    l->m[l->n++] = m;
}

static void robust_del(struct green_thread *t, struct pt_smutex *m)
{
    struct robust_list *l = t->robust;
    for (unsigned i = 0; l && i < l->n; i++)
        if (l->m[i] == m) {
            l->m[i] = l->m[--l->n];
            return;
        }
}

/* pid has ended: no such process, or a zombie its parent has not reaped
 * yet (the kernel marks a robust mutex owner-dead when the holder exits,
 * not when it is reaped). Raw syscalls: no hook, errno kept. A pid reused
 * by another process looks alive (documented limit). */
static bool pid_gone(pid_t pid)
{
    int e = errno;
    bool gone = false;
    if (syscall(SYS_kill, pid, 0) != 0) {
        gone = errno == ESRCH;
    } else {
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
            syscall(SYS_close, fd);
            buf[n > 0 ? n : 0] = 0;
            const char *p = strrchr(buf, ')');   /* after "pid (comm)" */
            gone = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
        }
    }
    errno = e;
    return gone;
}

/* A lock attempt by the mutex's own holder, private or shared: a
 * recursive mutex goes one deeper (EAGAIN at the limit), an errorcheck one
 * says EDEADLK, a normal one EBUSY (its relock waits forever). */
static int owner_relock(int kind, unsigned *depth)
{
    switch (kind & KIND_TYPE_MASK) {
    case PTHREAD_MUTEX_RECURSIVE:
        if (*depth == UINT_MAX)
            return EAGAIN;
        ++*depth;
        return 0;
    case PTHREAD_MUTEX_ERRORCHECK:
        return EDEADLK;
    default:
        return EBUSY;
    }
}

/* The owner's process has ended (robust only). */
static bool owner_process_gone(const struct green_thread *self, uint64_t o)
{
    pid_t pid = (pid_t)(o >> 32);
    return pid != self->ctx->pid && pid_gone(pid);
}

/* Lock without waiting: 0, EOWNERDEAD (locked, inconsistent), EBUSY,
 * EDEADLK/EAGAIN for the owner, ENOTRECOVERABLE. */
static int smutex_try(struct pt_smutex *m, struct green_thread *self)
{
    bool robust = m->kind & KIND_ROBUST;
    uint64_t me = owner_id(self);
    for (;;) {
        if (atomic_load(&m->state) == SM_UNRECOVERABLE)
            return ENOTRECOVERABLE;
        uint64_t o = atomic_load(&m->owner);
        if (o == 0 || o == OWNER_DEAD) {
            uint64_t heir = atomic_load(&m->heir);
            if (heir && heir != me) {
                int saved = errno;
                bool gone = owner_process_gone(self, heir);
                errno = saved;
                if (!gone)
                    return EBUSY;   /* the long waiter's turn */
                atomic_compare_exchange_strong(&m->heir, &heir, 0);
            }
            if (!atomic_compare_exchange_strong(&m->owner, &o, me))
                continue;
            if (heir == me)
                atomic_store(&m->heir, 0);
            m->depth = 1;
            if (robust)
                robust_add(self, m);
            if (o == OWNER_DEAD) {
                atomic_store(&m->state, SM_INCONSISTENT);
                return EOWNERDEAD;
            }
            return 0;
        }
        if (o == me)
            return owner_relock(m->kind, &m->depth);
        int saved = errno;
        bool gone = robust && owner_process_gone(self, o);
        errno = saved;
        if (!gone || !atomic_compare_exchange_strong(&m->owner, &o, OWNER_DEAD))
            return EBUSY;
    }
}

/* Waits: after a few naps (about 1 ms) the waiter claims to be the heir,
 * so a holder that unlocks and relocks in a loop cannot starve it. */
static int smutex_lock(struct pt_smutex *m, int64_t deadline)
{
    struct green_thread *self = green__current();
    uint64_t me = owner_id(self);
    int64_t ns = 0;
    int naps = 0;
    for (;;) {
        int e = smutex_try(m, self);
        if (e != EBUSY)
            return e;
        if (past(deadline)) {
            uint64_t h = me;
            atomic_compare_exchange_strong(&m->heir, &h, 0);
            return ETIMEDOUT;
        }
        if (++naps == 6) {
            uint64_t h = 0;
            atomic_compare_exchange_strong(&m->heir, &h, me);
        }
        ns = nap(ns, deadline);
    }
}

static int smutex_unlock(struct pt_smutex *m)
{
    struct green_thread *self = green__current();
    int type = m->kind & KIND_TYPE_MASK;
    if (atomic_load(&m->owner) != owner_id(self)) {
        if (type == PTHREAD_MUTEX_NORMAL && !(m->kind & KIND_ROBUST)) {
            atomic_store(&m->owner, 0);   /* undefined; glibc unlocks */
            return 0;
        }
        return EPERM;
    }
    if (type == PTHREAD_MUTEX_RECURSIVE && m->depth > 1) {
        m->depth--;
        return 0;
    }
    m->depth = 0;
    if (m->kind & KIND_ROBUST)
        robust_del(self, m);
    if (atomic_load(&m->state) == SM_INCONSISTENT)
        atomic_store(&m->state, SM_UNRECOVERABLE);
    atomic_store_explicit(&m->owner, 0, memory_order_release);
    return 0;
}

static bool mutex_owned_by(const struct pt_mutex *m, const struct green_thread *t)
{
    if (mutex_is_shared(m))
        return atomic_load(&((struct pt_smutex *)m)->owner) == owner_id(t);
    return m->owner == t;
}

/* Park until handed m or the deadline. Never fails with ECANCELED. */
static int mutex_wait(struct pt_mutex *m, struct green_thread *self, int64_t deadline)
{
    bool killed = false;
    int rc = 0;
    for (;;) {
        if (!m->owner) {
            m->owner = self;
            m->depth = 1;
            break;
        }
        int code = green__park(GREEN_WHY_MUTEX, (uintptr_t)m, &m->q, deadline);
        if (code == 0 && m->owner == self)
            break;
        if (code == ECANCELED) {
            async_cancel_now();   /* not queued any more: safe to leave */
            killed = true;
        }
        else if (code == ETIMEDOUT || code == ENOMEM) {
            rc = code;
            break;
        }   /* anything else (a signal's EINTR): wait on */
    }
    if (killed)
        green__pt_rearm_kill();
    return rc;
}

/* Lock without waiting: 0, EBUSY, or EDEADLK/EAGAIN for the owner. */
static int mutex_try(struct pt_mutex *m, struct green_thread *self)
{
    if (!m->owner) {
        m->owner = self;
        m->depth = 1;
        return 0;
    }
    if (m->owner != self)
        return EBUSY;
    return owner_relock(m->kind, &m->depth);
}

int green__pt_mutex_lock(pthread_mutex_t *pm, int64_t deadline)
{
    struct pt_mutex *m = (struct pt_mutex *)pm;
    if (mutex_is_shared(m))
        return smutex_lock((struct pt_smutex *)m, deadline);
    if (mutex_is_libc(m)) {
        int e;
        POLL_REAL(GREEN__PREAL(pthread_mutex_trylock)(pm), e == EBUSY, deadline, e);
        return e == EBUSY ? ETIMEDOUT : e;
    }
    struct green_thread *self = green__current();
    int e = mutex_try(m, self);
    if (e != EBUSY)
        return e;
    return mutex_wait(m, self, deadline);
}

int green__pt_mutex_unlock(pthread_mutex_t *pm)
{
    struct pt_mutex *m = (struct pt_mutex *)pm;
    if (mutex_is_shared(m))
        return smutex_unlock((struct pt_smutex *)m);
    if (mutex_is_libc(m))
        return GREEN__PREAL(pthread_mutex_unlock)(pm);
    struct green_thread *self = green__current();
    int type = m->kind & KIND_TYPE_MASK;
    if (m->owner != self) {
        if (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK)
            return EPERM;
        if (!m->owner)
            return 0;   /* undefined for a normal mutex; libc ignores it too */
    }
    if (type == PTHREAD_MUTEX_RECURSIVE && m->depth > 1) {
        m->depth--;
        return 0;
    }
    struct green__wnode *n = green__waitq_pop(&m->q);
    m->owner = n ? n->t : NULL;
    m->depth = n ? 1 : 0;
    if (n)
        green__ready(n->t, 0);
    return 0;
}

int green_hook_pthread_mutex_init(pthread_mutex_t *pm, const pthread_mutexattr_t *a)
{
    if (!green__pt_on())
        return GREEN__PREAL(pthread_mutex_init)(pm, a);
    int type = PTHREAD_MUTEX_NORMAL, pshared = PTHREAD_PROCESS_PRIVATE;
    int robust = PTHREAD_MUTEX_STALLED, proto = PTHREAD_PRIO_NONE;
    if (a && (pthread_mutexattr_gettype(a, &type) || pthread_mutexattr_getpshared(a, &pshared) ||
              pthread_mutexattr_getrobust(a, &robust) || pthread_mutexattr_getprotocol(a, &proto)))
        return EINVAL;
    if (proto != PTHREAD_PRIO_NONE)
        return GREEN__PREAL(pthread_mutex_init)(pm, a);   /* libc-only */
    struct pt_mutex *m = (struct pt_mutex *)pm;
    memset(pm, 0, sizeof *pm);
    m->kind = (type & KIND_TYPE_MASK) |
              (pshared != PTHREAD_PROCESS_PRIVATE ? KIND_PSHARED : 0) |
              (robust != PTHREAD_MUTEX_STALLED ? KIND_ROBUST : 0);
    return 0;
}

int green_hook_pthread_mutex_destroy(pthread_mutex_t *pm)
{
    struct pt_mutex *m = (struct pt_mutex *)pm;
    if (!green__pt_on() || mutex_is_libc(m))
        return GREEN__PREAL(pthread_mutex_destroy)(pm);
    if (mutex_is_shared(m))
        return 0;
    return m->owner || !green__waitq_empty(&m->q) ? EBUSY : 0;
}

int green_hook_pthread_mutex_lock(pthread_mutex_t *pm)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_mutex_lock)(pm);
    return green__pt_mutex_lock(pm, GREEN_FOREVER);
}

int green_hook_pthread_mutex_trylock(pthread_mutex_t *pm)
{
    struct pt_mutex *m = (struct pt_mutex *)pm;
    if (!green__pt_on_turn() || mutex_is_libc(m))
        return GREEN__PREAL(pthread_mutex_trylock)(pm);
    int e = mutex_is_shared(m) ? smutex_try((struct pt_smutex *)m, green__current())
                               : mutex_try(m, green__current());
    /* glibc: an errorcheck trylock by the holder is EBUSY, except on a
     * robust mutex (its robust path says EDEADLK). */
    if (e == EDEADLK && !(mutex_is_shared(m) && (((struct pt_smutex *)m)->kind & KIND_ROBUST)))
        return EBUSY;
    return e;
}

/* Timed lock on clk: try first (abstime need not be valid then). */
static int mutex_clocklock(pthread_mutex_t *pm, clockid_t clk, const struct timespec *abs)
{
    struct pt_mutex *m = (struct pt_mutex *)pm;
    if (!mutex_is_libc(m)) {
        int e = mutex_is_shared(m) ? smutex_try((struct pt_smutex *)m, green__current())
                                   : mutex_try(m, green__current());
        if (e != EBUSY)
            return e;
    }
    int64_t deadline;
    int e = green__pt_deadline(clk, abs, &deadline);
    return e ? e : green__pt_mutex_lock(pm, deadline);
}

int green_hook_pthread_mutex_timedlock(pthread_mutex_t *pm, const struct timespec *abs)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_mutex_timedlock)(pm, abs);
    return mutex_clocklock(pm, CLOCK_REALTIME, abs);
}

int green_hook_pthread_mutex_clocklock(pthread_mutex_t *pm, clockid_t clk,
                                       const struct timespec *abs)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_mutex_clocklock)(pm, clk, abs);
    return mutex_clocklock(pm, clk, abs);
}

int green_hook_pthread_mutex_consistent(pthread_mutex_t *pm)
{
    struct pt_smutex *m = (struct pt_smutex *)pm;
    if (!green__pt_on() || mutex_is_libc((struct pt_mutex *)pm))
        return GREEN__PREAL(pthread_mutex_consistent)(pm);
    if (!(m->kind & KIND_ROBUST) || atomic_load(&m->state) != SM_INCONSISTENT ||
        atomic_load(&m->owner) != owner_id(green__current()))
        return EINVAL;
    atomic_store(&m->state, SM_OK);
    return 0;
}

int green_hook_pthread_mutex_unlock(pthread_mutex_t *pm)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_mutex_unlock)(pm);
    return green__pt_mutex_unlock(pm);
}

/* ------------------------------------------------------------------ cond */

struct pt_cond {
    struct green__waitq q;        /* waiters, FIFO (__wseq, __g1_start);
                                     unused when shared */
    int clock;                    /* CLOCK_REALTIME (0) or CLOCK_MONOTONIC */
    int shared;                   /* 0, or SHARED_MARK: process-shared */
    _Atomic unsigned seq;         /* shared: bumped by every broadcast */
    _Atomic unsigned waiters;     /* shared: waiters that may take a token */
    _Atomic unsigned tokens;      /* shared: signals not taken yet, never
                                     more than waiters */
};
_Static_assert(sizeof(struct pt_cond) <= sizeof(pthread_cond_t), "cond size");

/* Process-shared condition variables, barriers and rwlocks hold no
 * pointer (see the shared mutexes above): a number that every wake-up
 * changes, and waiters that nap until it changes. A shared condition
 * variable's signal leaves one token that one napping waiter takes (so it
 * wakes one waiter, as natively), its broadcast changes the number. */
#define SHARED_MARK 0x47524e53    /* "GRNS" */

static bool cond_is_shared(const pthread_cond_t *pc)
{
    return ((const struct pt_cond *)pc)->shared == SHARED_MARK;
}

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
        if (past(deadline))
            return ETIMEDOUT;
        ns = nap(ns, deadline);
    }
    return 0;
}

int green_hook_pthread_cond_init(pthread_cond_t *pc, const pthread_condattr_t *a)
{
    if (!green__pt_on())
        return GREEN__PREAL(pthread_cond_init)(pc, a);
    clockid_t clk = CLOCK_REALTIME;
    int pshared = PTHREAD_PROCESS_PRIVATE;
    if (a && (pthread_condattr_getclock(a, &clk) != 0 ||
              pthread_condattr_getpshared(a, &pshared) != 0))
        return EINVAL;
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
    if (!green__pt_on())
        return GREEN__PREAL(pthread_cond_destroy)(pc);
    if (cond_is_shared(pc))
        return 0;
    return green__waitq_empty(&((struct pt_cond *)pc)->q) ? 0 : EBUSY;
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
        if (past(deadline)) {
            code = ETIMEDOUT;
            break;
        }
        ns = nap(ns, deadline);
    }
    unsigned w = atomic_fetch_sub(&c->waiters, 1) - 1;
    unsigned t = atomic_load(&c->tokens);
    while (t > w && !atomic_compare_exchange_weak(&c->tokens, &t, t - 1))
        ;
    return code;
}

/* Release pm completely, park on pc, take pm back (at its old depth).
 * A cancellation point; a kill that is not a pthread_cancel is a spurious
 * wake-up. */
static int cond_wait(pthread_cond_t *pc, pthread_mutex_t *pm, int64_t deadline)
{
    struct pt_cond *c = (struct pt_cond *)pc;
    struct pt_mutex *m = (struct pt_mutex *)pm;
    struct green_thread *self = green__current();
    bool libc = mutex_is_libc(m);
    if (!libc && !mutex_owned_by(m, self))
        return EPERM;
    green__pt_cancel_point(0);
    unsigned depth = libc ? 0 : m->depth;
    if (!libc)
        m->depth = 1;
    int code;
    if (c->shared == SHARED_MARK) {
        unsigned seq = atomic_load(&c->seq);
        atomic_fetch_add(&c->waiters, 1);
        green__pt_mutex_unlock(pm);
        code = scond_nap(c, seq, deadline);
    } else {
        green__pt_mutex_unlock(pm);
        outside_waker_ensure();
        code = park_wakeable(self, &cond_wait_mark, GREEN_WHY_COND, c, &c->q, deadline);
    }
    int relock = green__pt_mutex_lock(pm, GREEN_FOREVER);
    if (!libc)
        m->depth = depth;
    green__pt_cancel_point(code);
    if (relock == EOWNERDEAD)
        return EOWNERDEAD;
    return code == ETIMEDOUT ? ETIMEDOUT : 0;
}

int green_hook_pthread_cond_wait(pthread_cond_t *pc, pthread_mutex_t *pm)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_cond_wait)(pc, pm);
    return cond_wait(pc, pm, GREEN_FOREVER);
}

int green_hook_pthread_cond_timedwait(pthread_cond_t *pc, pthread_mutex_t *pm,
                                      const struct timespec *abs)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_cond_timedwait)(pc, pm, abs);
    int64_t deadline;
    int e = green__pt_deadline(((struct pt_cond *)pc)->clock, abs, &deadline);
    return e ? e : cond_wait(pc, pm, deadline);
}

int green_hook_pthread_cond_clockwait(pthread_cond_t *pc, pthread_mutex_t *pm,
                                      clockid_t clk, const struct timespec *abs)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_cond_clockwait)(pc, pm, clk, abs);
    int64_t deadline;
    int e = green__pt_deadline(clk, abs, &deadline);
    return e ? e : cond_wait(pc, pm, deadline);
}

/* Without libc waiters (glibc's __wrefs counts them, in bytes our layout
 * leaves zero) libc's signal is a no-op, so a plain OS thread signalling a
 * condition variable green threads wait on wakes them from outside. */
static bool cond_outside(pthread_cond_t *pc)
{
    if (!(green__hook_families & GREEN_HOOK_THREAD) || green__bypass ||
        __atomic_load_n(&pc->__data.__wrefs, __ATOMIC_ACQUIRE) >> 3)
        return false;
    outside_poke(OUTSIDE_COND);
    return true;
}

/* The cond signals are async-signal-safe in practice (programs call them
 * from handlers), so they take their fair turn only outside a handler: a
 * thread signalling in a loop until a waiter reacts must let it run. */
static void signal_side_turn(void)
{
    if (!green__in_handler())
        green__fair_turn(green__tls_ctx);
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
    if (!green__pt_on())
        return cond_outside(pc) ? 0 : GREEN__PREAL(pthread_cond_signal)(pc);
    green__waitq_wake_one(&((struct pt_cond *)pc)->q, 0);
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
    if (!green__pt_on())
        return cond_outside(pc) ? 0 : GREEN__PREAL(pthread_cond_broadcast)(pc);
    green__waitq_wake_all(&((struct pt_cond *)pc)->q, 0);
    signal_side_turn();
    return 0;
}

/* ---------------------------------------------------------------- rwlock */

struct pt_rwlock {
    unsigned readers;             /* read locks held (__readers) */
    unsigned spare;               /* always 0 */
    struct green_thread *writer;  /* write-lock holder or NULL */
    struct green__waitq rq;       /* waiting readers */
    struct green__waitq wq;       /* waiting writers */
    unsigned flags;               /* glibc __flags: the rwlock kind */
};
_Static_assert(sizeof(struct pt_rwlock) <= sizeof(pthread_rwlock_t), "rwlock size");
_Static_assert(offsetof(struct pt_rwlock, flags) ==
               offsetof(pthread_rwlock_t, __data.__flags), "rwlock flags offset");

/* A process-shared rwlock (see the shared mutexes): the writer is an
 * owner id; a tiny spinlock (guard, never held across a switch) makes
 * each check-and-take atomic; waiters nap. */
struct pt_srwlock {
    unsigned readers;             /* read locks held */
    unsigned shared;              /* SHARED_MARK */
    uint64_t writer;              /* owner_id() of the writer, or 0 */
    atomic_int guard;             /* protects the three counters */
    unsigned wwait;               /* writers waiting (writer preference) */
    char pad[24];
    unsigned flags;               /* glibc __flags: the rwlock kind */
};
_Static_assert(offsetof(struct pt_srwlock, flags) ==
               offsetof(pthread_rwlock_t, __data.__flags), "srwlock flags offset");
_Static_assert(sizeof(struct pt_srwlock) <= sizeof(pthread_rwlock_t), "srwlock size");

static void guard_lock(struct pt_srwlock *rw)
{
    int z = 0;
    while (!atomic_compare_exchange_weak(&rw->guard, &z, 1)) {
        z = 0;
        sched_yield();   /* held by another process for a few instructions */
    }
}

static void guard_unlock(struct pt_srwlock *rw)
{
    atomic_store(&rw->guard, 0);
}

/* Take a read or write lock without waiting. */
static int srw_try(struct pt_srwlock *rw, bool write)
{
    uint64_t me = owner_id(green__current());
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
        if (past(deadline)) {
            e = ETIMEDOUT;
            break;
        }
        ns = nap(ns, deadline);
    }
    if (write)
        srw_wwait(rw, -1);
    return e;
}

static int srw_unlock(struct pt_srwlock *rw)
{
    uint64_t me = owner_id(green__current());
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

static bool prefers_writers(const struct pt_rwlock *rw)
{
    return rw->flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
}

static bool can_read(const struct pt_rwlock *rw)
{
    return !rw->writer && (!prefers_writers(rw) || green__waitq_empty(&rw->wq));
}

/* Nobody holds rw: hand it to the next writer or to every waiting reader. */
static void rw_release(struct pt_rwlock *rw)
{
    bool readers_first = prefers_writers(rw) ? green__waitq_empty(&rw->wq)
                                             : !green__waitq_empty(&rw->rq);
    struct green__wnode *n;
    if (!readers_first && (n = green__waitq_pop(&rw->wq))) {
        rw->writer = n->t;
        green__ready(n->t, 0);
        return;
    }
    while ((n = green__waitq_pop(&rw->rq))) {
        rw->readers++;
        green__ready(n->t, 0);
    }
    if (!rw->readers && (n = green__waitq_pop(&rw->wq))) {
        rw->writer = n->t;
        green__ready(n->t, 0);
    }
}

/* Take a read (write=false) or write lock without waiting. */
static int rw_try(struct pt_rwlock *rw, bool write, struct green_thread *self)
{
    if (rw->writer == self)
        return EDEADLK;
    if (write) {
        if (rw->writer || rw->readers)
            return EBUSY;
        rw->writer = self;
        return 0;
    }
    if (!can_read(rw))
        return EBUSY;
    if (rw->readers == UINT_MAX)
        return EAGAIN;
    rw->readers++;
    return 0;
}

static int rw_lock(pthread_rwlock_t *prw, bool write, int64_t deadline)
{
    if (rw_is_shared(prw))
        return srw_lock((struct pt_srwlock *)prw, write, deadline);
    struct pt_rwlock *rw = (struct pt_rwlock *)prw;
    struct green_thread *self = green__current();
    bool killed = false;
    int rc;
    for (;;) {
        rc = rw_try(rw, write, self);
        if (rc != EBUSY)
            break;
        int code = green__park(GREEN_WHY_RWLOCK, (uintptr_t)rw,
                               write ? &rw->wq : &rw->rq, deadline);
        if (code == 0) {
            rc = 0;   /* handed over by rw_release */
            break;
        }
        if (code == ECANCELED) {
            async_cancel_now();
            killed = true;
        }
        else if (code == ETIMEDOUT || code == ENOMEM) {
            rc = code;
            break;
        }   /* anything else (a signal's EINTR): try again */
    }
    if (killed)
        green__pt_rearm_kill();
    return rc;
}

/* Lock without waiting, either kind of rwlock. */
static int rw_try_any(pthread_rwlock_t *prw, bool write)
{
    if (rw_is_shared(prw))
        return srw_try((struct pt_srwlock *)prw, write);
    return rw_try((struct pt_rwlock *)prw, write, green__current());
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
    if (!green__pt_on())
        return GREEN__PREAL(pthread_rwlock_init)(prw, a);
    int kind = PTHREAD_RWLOCK_DEFAULT_NP, pshared = PTHREAD_PROCESS_PRIVATE;
    if (a && (pthread_rwlockattr_getkind_np(a, &kind) != 0 ||
              pthread_rwlockattr_getpshared(a, &pshared) != 0))
        return EINVAL;
    memset(prw, 0, sizeof *prw);
    ((struct pt_rwlock *)prw)->flags = (unsigned)kind;
    if (pshared != PTHREAD_PROCESS_PRIVATE)
        ((struct pt_srwlock *)prw)->shared = SHARED_MARK;
    return 0;
}

int green_hook_pthread_rwlock_destroy(pthread_rwlock_t *prw)
{
    if (!green__pt_on())
        return GREEN__PREAL(pthread_rwlock_destroy)(prw);
    if (rw_is_shared(prw))
        return 0;
    struct pt_rwlock *rw = (struct pt_rwlock *)prw;
    bool busy = rw->writer || rw->readers || !green__waitq_empty(&rw->rq) ||
                !green__waitq_empty(&rw->wq);
    return busy ? EBUSY : 0;
}

int green_hook_pthread_rwlock_rdlock(pthread_rwlock_t *prw)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_rwlock_rdlock)(prw);
    return rw_lock(prw, false, GREEN_FOREVER);
}

int green_hook_pthread_rwlock_tryrdlock(pthread_rwlock_t *prw)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_rwlock_tryrdlock)(prw);
    int e = rw_try_any(prw, false);
    return e == EDEADLK ? EBUSY : e;
}

int green_hook_pthread_rwlock_timedrdlock(pthread_rwlock_t *prw, const struct timespec *abs)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_rwlock_timedrdlock)(prw, abs);
    return rw_timed(prw, false, CLOCK_REALTIME, abs);
}

int green_hook_pthread_rwlock_clockrdlock(pthread_rwlock_t *prw, clockid_t clk,
                                          const struct timespec *abs)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_rwlock_clockrdlock)(prw, clk, abs);
    return rw_timed(prw, false, clk, abs);
}

int green_hook_pthread_rwlock_wrlock(pthread_rwlock_t *prw)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_rwlock_wrlock)(prw);
    return rw_lock(prw, true, GREEN_FOREVER);
}

int green_hook_pthread_rwlock_trywrlock(pthread_rwlock_t *prw)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_rwlock_trywrlock)(prw);
    int e = rw_try_any(prw, true);
    return e == EDEADLK ? EBUSY : e;
}

int green_hook_pthread_rwlock_timedwrlock(pthread_rwlock_t *prw, const struct timespec *abs)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_rwlock_timedwrlock)(prw, abs);
    return rw_timed(prw, true, CLOCK_REALTIME, abs);
}

int green_hook_pthread_rwlock_clockwrlock(pthread_rwlock_t *prw, clockid_t clk,
                                          const struct timespec *abs)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_rwlock_clockwrlock)(prw, clk, abs);
    return rw_timed(prw, true, clk, abs);
}

int green_hook_pthread_rwlock_unlock(pthread_rwlock_t *prw)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_rwlock_unlock)(prw);
    if (rw_is_shared(prw))
        return srw_unlock((struct pt_srwlock *)prw);
    struct pt_rwlock *rw = (struct pt_rwlock *)prw;
    if (rw->writer == green__current())
        rw->writer = NULL;
    else if (rw->readers > 0 && !rw->writer)
        rw->readers--;
    else
        return EPERM;
    if (!rw->writer && !rw->readers)
        rw_release(rw);
    return 0;
}

/* --------------------------------------------------------------- barrier */

struct pt_barrier {
    unsigned count;               /* threads per round */
    _Atomic unsigned arrived;     /* threads waiting in this round */
    _Atomic unsigned round;       /* bumped when a round completes */
    unsigned shared;              /* 0, or SHARED_MARK (q unused) */
    struct green__waitq q;        /* the waiting threads */
};
_Static_assert(sizeof(struct pt_barrier) <= sizeof(pthread_barrier_t), "barrier size");

int green_hook_pthread_barrier_init(pthread_barrier_t *pb, const pthread_barrierattr_t *a,
                                    unsigned count)
{
    if (!green__pt_on())
        return GREEN__PREAL(pthread_barrier_init)(pb, a, count);
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
        return GREEN__PREAL(pthread_barrier_destroy)(pb);
    return ((struct pt_barrier *)pb)->arrived ? EBUSY : 0;
}

/* Not a cancellation point: a kill while waiting is remembered. */
int green_hook_pthread_barrier_wait(pthread_barrier_t *pb)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_barrier_wait)(pb);
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
    if (++b->arrived >= b->count) {
        b->arrived = 0;
        b->round++;
        green__waitq_wake_all(&b->q, 0);
        return PTHREAD_BARRIER_SERIAL_THREAD;
    }
    unsigned round = b->round;
    bool killed = false;
    while (b->round == round)
        if (green__park(GREEN_WHY_OTHER, (uintptr_t)b, &b->q, GREEN_FOREVER) == ECANCELED)
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
        return GREEN__PREAL(pthread_spin_lock)(s);
    bool killed = false;
    while (GREEN__PREAL(pthread_spin_trylock)(s) != 0)
        if (green_yield() != 0 && errno == ECANCELED) {
            async_cancel_now();
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
    return GREEN__PREAL(pthread_spin_trylock)(s);
}

int green_hook_pthread_spin_unlock(pthread_spinlock_t *s)
{
    return GREEN__PREAL(pthread_spin_unlock)(s);
}

/* ------------------------------------------------------------- semaphore */

struct pt_sem {
    unsigned value;               /* units available (low half of glibc data) */
    unsigned nwaiters;            /* always 0 (glibc's waiter count) */
    int shared;                   /* glibc "private": 128 = process-shared, libc-only */
    int spare;                    /* always 0 */
    struct green__waitq q;        /* waiting threads */
};
_Static_assert(sizeof(struct pt_sem) <= sizeof(sem_t), "sem size");
#define SEM_SHARED_MARK 128

static bool sem_is_libc(const sem_t *s)
{
    return ((const struct pt_sem *)s)->shared == SEM_SHARED_MARK;
}

int green_hook_sem_init(sem_t *s, int pshared, unsigned value)
{
    if (!green__pt_on() || pshared)
        return GREEN__PREAL(sem_init)(s, pshared, value);
    if (value > SEM_VALUE_MAX) {
        errno = EINVAL;
        return -1;
    }
    memset(s, 0, sizeof *s);
    ((struct pt_sem *)s)->value = value;
    return 0;
}

int green_hook_sem_destroy(sem_t *s)
{
    if (!green__pt_on() || sem_is_libc(s))
        return GREEN__PREAL(sem_destroy)(s);
    return 0;
}

/* The value is updated atomically: a post may come from a signal handler
 * or from a plain OS thread (see "Posts from outside" below). */
static int sem_take(struct pt_sem *sm)
{
    unsigned v = __atomic_load_n(&sm->value, __ATOMIC_ACQUIRE);
    while (v)
        if (__atomic_compare_exchange_n(&sm->value, &v, v - 1, true,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 0;
    return EAGAIN;
}

static int sem_add(struct pt_sem *sm)
{
    unsigned v = __atomic_load_n(&sm->value, __ATOMIC_RELAXED);
    do
        if (v >= SEM_VALUE_MAX)
            return EOVERFLOW;
    while (!__atomic_compare_exchange_n(&sm->value, &v, v + 1, true,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
    return 0;
}

static int sem_post_outside(struct pt_sem *sm)
{
    if (sem_add(sm) != 0) {
        errno = EOVERFLOW;
        return -1;
    }
    outside_poke(OUTSIDE_SEM);
    return 0;
}

/* The green wait; a cancellation point. -1/errno. A signal handler
 * interrupts it (EINTR); sem_wait restarts under SA_RESTART
 * (restartable), sem_timedwait/clockwait never do, as with glibc. */
static int sem_wait_green(sem_t *s, int64_t deadline, bool restartable)
{
    struct pt_sem *sm = (struct pt_sem *)s;
    green__pt_cancel_point(0);
    if (sem_take(sm) == 0)
        return 0;
    outside_waker_ensure();
    struct green_thread *self = green__current();
    for (;;) {
        green__intr_begin();   /* signal(7): EINTR unless SA_RESTART */
        int code = park_wakeable(self, &sem_wait_mark, GREEN_WHY_SEM, sm, &sm->q, deadline);
        green__intr_end();
        if (code == 0)
            return 0;   /* handed a unit by sem_post */
        if (code == EAGAIN) {   /* a post from outside: try again */
            if (sem_take(sm) == 0)
                return 0;
            continue;
        }
        if (code == EINTR && restartable && green__intr_restarts()) {
            if (sem_take(sm) == 0)
                return 0;
            continue;
        }
        green__pt_cancel_point(code);
        errno = code == ECANCELED ? EINTR : code;
        return -1;
    }
}

/* A process-shared or named semaphore (libc's layout, which the other
 * process understands): try, and nap between tries (yield, then 50 us
 * doubling to 5 ms); the naps are interruptible like the green wait. */
static int sem_wait_libc(sem_t *s, int64_t deadline, bool restartable)
{
    int saved = errno, rc = -1;
    int64_t ns = GREEN_USEC(50);
    green__pt_cancel_point(0);
    /* Interruptible from here on: a signal that arrives while we try
     * (not parked) still interrupts the next nap. */
    green__intr_begin();
    for (;;) {
        if (GREEN__PREAL(sem_trywait)(s) == 0) {
            errno = saved;
            rc = 0;
            break;
        }
        if (errno != EAGAIN)
            break;
        if (past(deadline)) {
            errno = ETIMEDOUT;
            break;
        }
        int64_t until = green_now() + ns;
        if (deadline >= 0 && deadline < until)
            until = deadline;
        int code = green__park(GREEN_WHY_SEM, (uintptr_t)s, NULL, until);
        ns = ns >= GREEN_MSEC(5) ? ns : ns * 2;
        if (code == 0 || code == ETIMEDOUT)
            continue;
        if (code == EINTR && restartable && green__intr_restarts()) {
            green__intr_begin();
            continue;
        }
        if (code == EINTR || code == ECANCELED) {
            green__intr_end();
            green__pt_cancel_point(code);
            errno = EINTR;
            return -1;
        }
    }
    green__intr_end();
    return rc;
}

static int sem_wait_until(sem_t *s, int64_t deadline)
{
    bool restartable = deadline == GREEN_FOREVER;   /* plain sem_wait */
    return sem_is_libc(s) ? sem_wait_libc(s, deadline, restartable)
                          : sem_wait_green(s, deadline, restartable);
}

int green_hook_sem_wait(sem_t *s)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(sem_wait)(s);
    return sem_wait_until(s, GREEN_FOREVER);
}

int green_hook_sem_trywait(sem_t *s)
{
    if (!green__pt_on_turn() || sem_is_libc(s))
        return GREEN__PREAL(sem_trywait)(s);
    if (sem_take((struct pt_sem *)s) == 0)
        return 0;
    errno = EAGAIN;
    return -1;
}

/* glibc checks the deadline before it looks at the value: a bad tv_nsec
 * or clock is EINVAL even when a unit is available. */
static int sem_clockwait_green(sem_t *s, clockid_t clk, const struct timespec *abs)
{
    int64_t deadline;
    int e = green__pt_deadline(clk, abs, &deadline);
    if (e) {
        errno = e;
        return -1;
    }
    if (!sem_is_libc(s) && sem_take((struct pt_sem *)s) == 0)
        return 0;
    return sem_wait_until(s, deadline);
}

int green_hook_sem_timedwait(sem_t *s, const struct timespec *abs)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(sem_timedwait)(s, abs);
    return sem_clockwait_green(s, CLOCK_REALTIME, abs);
}

int green_hook_sem_clockwait(sem_t *s, clockid_t clk, const struct timespec *abs)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(sem_clockwait)(s, clk, abs);
    return sem_clockwait_green(s, clk, abs);
}

/* Async-signal-safe, as libc's. */
int green_hook_sem_post(sem_t *s)
{
    struct pt_sem *sm = (struct pt_sem *)s;
    if (!green__pt_on()) {
        /* A green semaphore never has libc waiters (nwaiters 0); for
         * one without them libc's post is this same atomic add. */
        if ((green__hook_families & GREEN_HOOK_THREAD) && !sem_is_libc(s) &&
            __atomic_load_n(&sm->nwaiters, __ATOMIC_ACQUIRE) == 0)
            return sem_post_outside(sm);
        return GREEN__PREAL(sem_post)(s);
    }
    if (sem_is_libc(s))
        return GREEN__PREAL(sem_post)(s);
    if (green__waitq_wake_one(&sm->q, 0))
        return 0;   /* the unit went straight to the first waiter */
    if (sem_add(sm) != 0) {
        errno = EOVERFLOW;
        return -1;
    }
    return 0;
}

int green_hook_sem_getvalue(sem_t *s, int *value)
{
    if (!green__pt_on() || sem_is_libc(s))
        return GREEN__PREAL(sem_getvalue)(s, value);
    *value = (int)__atomic_load_n(&((struct pt_sem *)s)->value, __ATOMIC_ACQUIRE);
    return 0;
}

/* ------------------------------------------------------ C11 <threads.h> */

/* mtx_t and cnd_t are pthread_mutex_t and pthread_cond_t inside; the
 * thread-family decision is the pthread hooks' own. */
int green_hook_mtx_init(mtx_t *m, int type)
{
    if (!green__pt_on())
        return GREEN__PREAL(mtx_init)(m, type);
    if (type & ~(mtx_recursive | mtx_timed))
        return thrd_error;
    pthread_mutex_t *pm = (pthread_mutex_t *)m;
    memset(pm, 0, sizeof *pm);
    ((struct pt_mutex *)pm)->kind = (type & mtx_recursive) ? PTHREAD_MUTEX_RECURSIVE
                                                          : PTHREAD_MUTEX_NORMAL;
    return thrd_success;
}

void green_hook_mtx_destroy(mtx_t *m)
{
    if (!green__pt_on())
        GREEN__PREAL(mtx_destroy)(m);
}

int green_hook_mtx_lock(mtx_t *m)
{
    if (!green__pt_on())
        return GREEN__PREAL(mtx_lock)(m);
    return green__thrd_result(green_hook_pthread_mutex_lock((pthread_mutex_t *)m));
}

int green_hook_mtx_trylock(mtx_t *m)
{
    if (!green__pt_on())
        return GREEN__PREAL(mtx_trylock)(m);
    return green__thrd_result(green_hook_pthread_mutex_trylock((pthread_mutex_t *)m));
}

int green_hook_mtx_timedlock(mtx_t *m, const struct timespec *abs)
{
    if (!green__pt_on())
        return GREEN__PREAL(mtx_timedlock)(m, abs);
    return green__thrd_result(green_hook_pthread_mutex_timedlock((pthread_mutex_t *)m, abs));
}

int green_hook_mtx_unlock(mtx_t *m)
{
    if (!green__pt_on())
        return GREEN__PREAL(mtx_unlock)(m);
    return green__thrd_result(green_hook_pthread_mutex_unlock((pthread_mutex_t *)m));
}

int green_hook_cnd_init(cnd_t *c)
{
    if (!green__pt_on())
        return GREEN__PREAL(cnd_init)(c);
    return green__thrd_result(green_hook_pthread_cond_init((pthread_cond_t *)c, NULL));
}

void green_hook_cnd_destroy(cnd_t *c)
{
    if (!green__pt_on())
        GREEN__PREAL(cnd_destroy)(c);
}

int green_hook_cnd_signal(cnd_t *c)
{
    if (!green__pt_on())
        return GREEN__PREAL(cnd_signal)(c);
    return green__thrd_result(green_hook_pthread_cond_signal((pthread_cond_t *)c));
}

int green_hook_cnd_broadcast(cnd_t *c)
{
    if (!green__pt_on())
        return GREEN__PREAL(cnd_broadcast)(c);
    return green__thrd_result(green_hook_pthread_cond_broadcast((pthread_cond_t *)c));
}

int green_hook_cnd_wait(cnd_t *c, mtx_t *m)
{
    if (!green__pt_on())
        return GREEN__PREAL(cnd_wait)(c, m);
    return green__thrd_result(green_hook_pthread_cond_wait((pthread_cond_t *)c,
                                                           (pthread_mutex_t *)m));
}

int green_hook_cnd_timedwait(cnd_t *c, mtx_t *m, const struct timespec *abs)
{
    if (!green__pt_on())
        return GREEN__PREAL(cnd_timedwait)(c, m, abs);
    return green__thrd_result(green_hook_pthread_cond_timedwait((pthread_cond_t *)c,
                                                                (pthread_mutex_t *)m, abs));
}

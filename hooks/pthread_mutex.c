/*
 * pthread_mutex.c - pthread mutexes under the shim: private ones on the
 * lock core (libgreen/lock.c), process-shared and robust ones with id
 * owners and naps, priority-protocol ones left to libc. The layer's essay
 * is at the top of pthread_sync.c.
 *
 * Which is which is read from the kind word, where glibc keeps it (so
 * that static initialisers work): its type bits are the core's mutex
 * type (glibc's numbers), the robust and process-shared bits select the
 * shared mutex, any other bit (priority protocols) a libc-only one. A
 * private mutex's waits are lock waits of green__pt_lock_how: only a
 * deadline ends them, a kill is remembered for the next park.
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include <fcntl.h>
#include <sys/syscall.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

/* Type bits of the mutex kind; the robust and process-shared bits (glibc's
 * values) select the "shared" mutex below; any other bit (priority
 * protocols) is a libc-only mutex. */
#define KIND_TYPE_MASK 3
#define KIND_ROBUST    16
#define KIND_PSHARED   128
#define KIND_SHARED    (KIND_ROBUST | KIND_PSHARED)

/* Call try(obj) until it stops failing with busy_code or the deadline
 * passes (ETIMEDOUT). For the libc-only objects. */
#define POLL_REAL(call, busy_cond, deadline, result)                          \
    do {                                                                      \
        int64_t ns_ = 0;                                                      \
        for (;;) {                                                            \
            result = (call);                                                  \
            if (!(busy_cond) || green__pt_past(deadline))                     \
                break;                                                        \
            ns_ = green__pt_nap(ns_, deadline);                               \
        }                                                                     \
    } while (0)

/* ----------------------------------------------------------------- mutex */

/* A private mutex is the lock core's: owner and depth overlay
 * __lock/__count/__owner, the kind stays in __kind, the queue overlays
 * __list. */
_Static_assert(sizeof(struct green__mutex) <= sizeof(pthread_mutex_t), "mutex size");
_Static_assert(offsetof(struct green__mutex, kind) ==
               offsetof(pthread_mutex_t, __data.__kind), "mutex kind offset");
_Static_assert(GREEN__MUTEX_NORMAL == PTHREAD_MUTEX_NORMAL &&
               GREEN__MUTEX_RECURSIVE == PTHREAD_MUTEX_RECURSIVE &&
               GREEN__MUTEX_ERRORCHECK == PTHREAD_MUTEX_ERRORCHECK, "mutex types");

#define MUTEX(pm) ((struct green__mutex *)(void *)(pm))

static bool mutex_is_libc(const struct green__mutex *m)
{
    return (m->kind & ~(KIND_TYPE_MASK | KIND_SHARED)) != 0;
}

static bool mutex_is_shared(const struct green__mutex *m)
{
    return (m->kind & KIND_SHARED) != 0;
}

/* A plain OS thread (green__pt_plain) on a private core mutex: the hooks
 * act for it too. */
static bool mutex_plain_on(const struct green__mutex *m)
{
    return green__pt_plain() && !mutex_is_libc(m) && !mutex_is_shared(m);
}

/* Should a hook act for this caller on m? A green caller (and its fair
 * turn), or a plain OS thread on a private core mutex. */
static bool mutex_on(const struct green__mutex *m)
{
    return green__pt_on_turn() || mutex_plain_on(m);
}

/* ------------------------------------------- shared and robust mutexes */

/* Process-shared and robust mutexes hold no pointer: memory shared with
 * another process (MAP_SHARED, then fork) must make sense in both. The
 * owner is a 64-bit id, pid << 32 | green thread id, so ownership and
 * the errorcheck/recursive rules hold per green thread, in every
 * process. A waiter cannot be queued in the object, so it naps between
 * tries (green__pt_nap(): yield, then 50 us doubling to 5 ms), which lets its hub
 * run the others. Robustness: a green thread that ends holding robust
 * mutexes marks them OWNER_DEAD (its list in green_thread.robust, walked
 * by the exit hook); a waiter that finds the owner's process gone (kill
 * 0: ESRCH) does the same. The next locker gets EOWNERDEAD and owns an
 * inconsistent mutex: pthread_mutex_consistent repairs it, an unlock
 * without it makes it ENOTRECOVERABLE, as glibc. */
struct pt_smutex {
    _Atomic uint64_t owner;       /* 0 free, OWNER_DEAD, or green__pt_owner_id() */
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
_Static_assert(offsetof(struct pt_smutex, kind) == offsetof(struct green__mutex, kind),
               "smutex kind offset");
_Static_assert(offsetof(struct pt_smutex, depth) == offsetof(struct green__mutex, depth),
               "smutex depth offset");
#define OWNER_DEAD ((uint64_t)1)
enum { SM_OK, SM_INCONSISTENT, SM_UNRECOVERABLE };

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
    uint64_t me = green__pt_owner_id(t);
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
    if (green__syscall(SYS_kill, pid, 0) != 0) {
        gone = errno == ESRCH;
    } else {
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        int fd = (int)green__syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            long n = green__syscall(SYS_read, fd, buf, sizeof buf - 1);
            green__syscall(SYS_close, fd);
            buf[n > 0 ? n : 0] = 0;
            const char *p = strrchr(buf, ')');   /* after "pid (comm)" */
            gone = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
        }
    }
    errno = e;
    return gone;
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
    uint64_t me = green__pt_owner_id(self);
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
            return green__mutex_relock(m->kind & KIND_TYPE_MASK, &m->depth);
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
    uint64_t me = green__pt_owner_id(self);
    int64_t ns = 0;
    int naps = 0;
    for (;;) {
        int e = smutex_try(m, self);
        if (e != EBUSY)
            return e;
        if (green__pt_past(deadline)) {
            uint64_t h = me;
            atomic_compare_exchange_strong(&m->heir, &h, 0);
            return ETIMEDOUT;
        }
        if (++naps == 6) {
            uint64_t h = 0;
            atomic_compare_exchange_strong(&m->heir, &h, me);
        }
        ns = green__pt_nap(ns, deadline);
    }
}

static int smutex_unlock(struct pt_smutex *m)
{
    struct green_thread *self = green__current();
    int type = m->kind & KIND_TYPE_MASK;
    if (atomic_load(&m->owner) != green__pt_owner_id(self)) {
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

/* ------------------------------------------------ the mutex layer, hooks */

bool green__pt_mutex_is_libc(const pthread_mutex_t *pm)
{
    return mutex_is_libc((const struct green__mutex *)(const void *)pm);
}

bool green__pt_mutex_is_shared(const pthread_mutex_t *pm)
{
    return mutex_is_shared((const struct green__mutex *)(const void *)pm);
}

bool green__pt_mutex_owned_by(const pthread_mutex_t *pm, const struct green_thread *t)
{
    const struct green__mutex *m = (const struct green__mutex *)(const void *)pm;
    if (mutex_is_shared(m))
        return atomic_load(&((const struct pt_smutex *)(const void *)m)->owner) ==
               green__pt_owner_id(t);
    return green__mutex_held_by(m, t);
}

/* Lock a private mutex without waiting: 0, EBUSY, or EDEADLK/EAGAIN for
 * the owner. */
static int mutex_try(struct green__mutex *m, struct green_thread *self)
{
    return green__mutex_trylock(m, self, m->kind & KIND_TYPE_MASK);
}

int green__pt_mutex_lock(pthread_mutex_t *pm, int64_t deadline)
{
    struct green__mutex *m = MUTEX(pm);
    if (mutex_is_shared(m))
        return smutex_lock((struct pt_smutex *)m, deadline);
    if (mutex_is_libc(m)) {
        int e;
        POLL_REAL(GREEN_REAL(pthread_mutex_trylock)(pm), e == EBUSY, deadline, e);
        return e == EBUSY ? ETIMEDOUT : e;
    }
    return green__mutex_lock(m, green__current(), m->kind & KIND_TYPE_MASK, deadline,
                             &green__pt_lock_how);
}

int green__pt_mutex_unlock(pthread_mutex_t *pm)
{
    struct green__mutex *m = MUTEX(pm);
    if (mutex_is_shared(m))
        return smutex_unlock((struct pt_smutex *)m);
    if (mutex_is_libc(m))
        return GREEN_REAL(pthread_mutex_unlock)(pm);
    return green__mutex_unlock(m, green__current(), m->kind & KIND_TYPE_MASK);
}

int green_hook_pthread_mutex_init(pthread_mutex_t *pm, const pthread_mutexattr_t *a)
{
    bool plain = false;
    if (!green__pt_on() && !(plain = green__pt_plain()))
        return GREEN_REAL(pthread_mutex_init)(pm, a);
    int type = PTHREAD_MUTEX_NORMAL, pshared = PTHREAD_PROCESS_PRIVATE;
    int robust = PTHREAD_MUTEX_STALLED, proto = PTHREAD_PRIO_NONE;
    if (a && (pthread_mutexattr_gettype(a, &type) || pthread_mutexattr_getpshared(a, &pshared) ||
              pthread_mutexattr_getrobust(a, &robust) || pthread_mutexattr_getprotocol(a, &proto)))
        return EINVAL;
    if (proto != PTHREAD_PRIO_NONE ||
        (plain && (pshared != PTHREAD_PROCESS_PRIVATE || robust != PTHREAD_MUTEX_STALLED)))
        return GREEN_REAL(pthread_mutex_init)(pm, a);   /* libc-only */
    struct green__mutex *m = MUTEX(pm);
    memset(pm, 0, sizeof *pm);
    m->kind = (type & KIND_TYPE_MASK) |
              (pshared != PTHREAD_PROCESS_PRIVATE ? KIND_PSHARED : 0) |
              (robust != PTHREAD_MUTEX_STALLED ? KIND_ROBUST : 0);
    return 0;
}

int green_hook_pthread_mutex_destroy(pthread_mutex_t *pm)
{
    struct green__mutex *m = MUTEX(pm);
    if (!(green__pt_on() || (green__pt_plain() && !mutex_is_shared(m))) || mutex_is_libc(m))
        return GREEN_REAL(pthread_mutex_destroy)(pm);
    if (mutex_is_shared(m))
        return 0;
    return green__mutex_busy(m) ? EBUSY : 0;
}

/* The fast paths. Lock, trylock and unlock of a free private mutex by a
 * green thread are what a daemon does most (memcached: about twelve of
 * each per request): they are done here, inline, with one
 * compare-and-swap, and everything else (a held or flagged owner word,
 * a recursive relock, shared, robust and libc-only kinds, plain OS
 * threads, the hub, the main OS thread before it adopts its hub) goes
 * the general way below, which decides exactly as before. The lock and
 * the trylock take the caller's turn first (async cancel, fair turn:
 * green__pt_enter). The unlock takes none: it never waits, and a loop
 * that unlocks also locks, so its turn is still taken once per round,
 * at half the clock reads. Rejected: calling green__mutex_trylock and
 * green__mutex_unlock here (their type and identity tests belong to the
 * general case and cost as much as the rest of the path; callgrind, README
 * "Benchmarks").
 *
 * The caller's hub when the thread family acts for it with the fast
 * path: a green thread other than the hub is running (c->current). NULL
 * sends the hook the general way (which also adopts a hub for the main
 * OS thread). */
static inline struct green__ctx *fast_ctx(void)
{
    struct green__ctx *c = green__tls_ctx;
    if (green__likely(c != NULL && (green__hook_families & GREEN_HOOK_THREAD) &&
                      c->current != c->hub))
        return c;
    return NULL;
}

/* A private mutex of the core (no shared, robust or protocol bit). */
static inline bool fast_kind(const struct green__mutex *m)
{
    return (m->kind & ~KIND_TYPE_MASK) == 0;
}

/* Take a free m for self: true if taken. */
static inline bool fast_take(struct green__mutex *m, struct green_thread *self)
{
    uintptr_t unowned = 0;
    if (green__likely(__atomic_compare_exchange_n(&m->owner, &unowned, (uintptr_t)self, false,
                                                  __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))) {
        m->depth = 1;
        return true;
    }
    return false;
}

static int mutex_lock_general(pthread_mutex_t *pm)
{
    if (!mutex_on(MUTEX(pm)))
        return GREEN_REAL(pthread_mutex_lock)(pm);
    return green__pt_mutex_lock(pm, GREEN_FOREVER);
}

int green_hook_pthread_mutex_lock(pthread_mutex_t *pm)
{
    struct green__mutex *m = MUTEX(pm);
    struct green__ctx *c = fast_ctx();
    if (green__unlikely(c == NULL))
        return mutex_lock_general(pm);
    green__pt_enter();
    if (green__likely(fast_kind(m)) && fast_take(m, c->current))
        return 0;
    return green__pt_mutex_lock(pm, GREEN_FOREVER);
}

/* Trylock for a caller the hooks act for (its turn taken). */
static int mutex_try_on(pthread_mutex_t *pm)
{
    struct green__mutex *m = MUTEX(pm);
    if (mutex_is_libc(m))
        return GREEN_REAL(pthread_mutex_trylock)(pm);
    int e = mutex_is_shared(m) ? smutex_try((struct pt_smutex *)m, green__current())
                               : mutex_try(m, green__current());
    /* glibc: an errorcheck trylock by the holder is EBUSY, except on a
     * robust mutex (its robust path says EDEADLK). */
    if (e == EDEADLK && !(mutex_is_shared(m) && (((struct pt_smutex *)m)->kind & KIND_ROBUST)))
        return EBUSY;
    return e;
}

int green_hook_pthread_mutex_trylock(pthread_mutex_t *pm)
{
    struct green__mutex *m = MUTEX(pm);
    struct green__ctx *c = fast_ctx();
    if (green__unlikely(c == NULL))
        return mutex_on(m) ? mutex_try_on(pm) : GREEN_REAL(pthread_mutex_trylock)(pm);
    green__pt_enter();
    if (green__likely(fast_kind(m)) && fast_take(m, c->current))
        return 0;
    return mutex_try_on(pm);
}

/* Timed lock on clk: try first (abstime need not be valid then). */
static int mutex_clocklock(pthread_mutex_t *pm, clockid_t clk, const struct timespec *abs)
{
    struct green__mutex *m = MUTEX(pm);
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
    if (!mutex_on(MUTEX(pm)))
        return GREEN_REAL(pthread_mutex_timedlock)(pm, abs);
    return mutex_clocklock(pm, CLOCK_REALTIME, abs);
}

int green_hook_pthread_mutex_clocklock(pthread_mutex_t *pm, clockid_t clk,
                                       const struct timespec *abs)
{
    if (!mutex_on(MUTEX(pm)))
        return GREEN_REAL(pthread_mutex_clocklock)(pm, clk, abs);
    return mutex_clocklock(pm, clk, abs);
}

int green_hook_pthread_mutex_consistent(pthread_mutex_t *pm)
{
    struct pt_smutex *m = (struct pt_smutex *)pm;
    if (!green__pt_on() || mutex_is_libc(MUTEX(pm)))
        return GREEN_REAL(pthread_mutex_consistent)(pm);
    if (!(m->kind & KIND_ROBUST) || atomic_load(&m->state) != SM_INCONSISTENT ||
        atomic_load(&m->owner) != green__pt_owner_id(green__current()))
        return EINVAL;
    atomic_store(&m->state, SM_OK);
    return 0;
}

static int mutex_unlock_general(pthread_mutex_t *pm)
{
    struct green__mutex *m = MUTEX(pm);
    if (!(green__pt_on() || mutex_plain_on(m)))   /* mutex_on without the turn */
        return GREEN_REAL(pthread_mutex_unlock)(pm);
    if (green__likely(!__atomic_load_n(&green__prio_used, __ATOMIC_RELAXED)))
        return green__pt_mutex_unlock(pm);   /* a tail call, as before ranks */
    int e = green__pt_mutex_unlock(pm);
    green__prio_preempt_slow();   /* handed to a waiter ranked above us */
    return e;
}

/* The fast path: self holds m once and its owner word has no waiter
 * flag. depth goes to 0 before the owner word is freed (the next holder
 * sets its own); a flag set meanwhile makes the compare-and-swap fail,
 * and the release is then the core's slow one, as green__mutex_release
 * does it. A release that readied nobody leaves nobody to preempt us,
 * but the rank check stays (as before) for one that a wake-up of
 * another kind readied meanwhile. */
int green_hook_pthread_mutex_unlock(pthread_mutex_t *pm)
{
    struct green__mutex *m = MUTEX(pm);
    struct green__ctx *c = fast_ctx();
    if (green__unlikely(c == NULL || !fast_kind(m)))
        return mutex_unlock_general(pm);
    uintptr_t o = __atomic_load_n(&m->owner, __ATOMIC_RELAXED);
    if (green__unlikely(o != (uintptr_t)c->current || m->depth != 1))
        return mutex_unlock_general(pm);
    m->depth = 0;
    if (green__unlikely(!__atomic_compare_exchange_n(&m->owner, &o, 0, false,
                                                     __ATOMIC_RELEASE, __ATOMIC_RELAXED)))
        green__mutex_release_slow(m);
    green__prio_preempt();
    return 0;
}


/*
 * hubs.c - the hub set: N hubs, one per OS thread, and where a new green
 * thread runs.
 *
 * What it is. A process has one hub per OS thread that uses libgreen
 * (hub.c). The hub set is the hubs that new green threads are spread
 * over: the hub of the thread that first spawned with more than one hub
 * wanted (the home hub; under the shim, the main OS thread's) and up to
 * GREEN__HUBS_MAX - 1 extra hubs, each on an OS thread of libgreen's
 * that does nothing but run its hub. How many: green__hubs_want, set by
 * settings.c from GREEN_HUBS (under the shim: default, the CPUs the
 * process may use) or by green_set_hubs() (linked explicitly: default 1,
 * so that gevent-style programs, which rely on green threads never
 * running in parallel, keep that until they ask). Extra hubs start
 * lazily, the first time placement picks them, and live as long as the
 * process (an idle hub blocks in epoll_wait and costs nothing).
 *
 * Placement at spawn, no migration. A new green thread goes to the hub
 * with the fewest live green threads placed on it (ties: the next one in
 * turn after the last choice; under the shim the program's main thread
 * counts as one of its hub's, so that the first thread runs beside it,
 * in parallel, as a second pthread does natively), and stays there for life: thread-local
 * addresses, errno's location and allocator caches that compiled code
 * keeps across calls stay valid, which is what migrating a thread that
 * has run would break. The spawner allocates the thread and its stack
 * (so that pthread_create can return the handle and any error at once)
 * and posts it to its hub (green__remote_post), which links it and
 * queues it; everything that touches a green thread's scheduling state
 * happens on its own hub.
 *
 * Operations on a thread of another hub. Join, detach and finish order
 * themselves with the thread's xlock (a spin lock held for a few
 * instructions); a joiner of another hub waits on the thread's xjoin
 * condition (the lock core's, which wakes waiters of any hub), and the
 * joined thread's struct is freed by its own hub (a post). Kill, cancel
 * and signals are posted to the thread's hub as a call (green__on_hub),
 * which checks the thread is still the one it was sent to. The lock
 * core (lock.c) is thread-safe for every object; close() tells every
 * hub that watches the descriptor (fd.c).
 *
 * Deadlock. Once the set has more than one hub, its hubs hold a remote
 * expectation for good: a hub with nothing to run waits for posts from
 * the others instead of reporting a deadlock, so the explicit API's
 * EDEADLK is only reported with one hub.
 *
 * Fork. The child has one OS thread: the set is emptied, the forking
 * thread's hub becomes home, and extra hubs start again when placement
 * needs them. Green threads of other hubs are gone, as natively.
 *
 * Rejected: migrating threads that have run (work stealing of running
 * goroutines, as Go and libgo do: C code caches thread-pointer-relative
 * addresses); one run queue shared by all hubs (a lock on every switch);
 * placing on the spawner's hub and stealing later (a daemon's accept loop
 * would run every connection on its own hub until some other hub noticed).
 */
#define _GNU_SOURCE
#include "fdstate.h"
#include "green_internal.h"
#include "lock.h"
#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int green__hubs_want = 1;
static struct green__ctx *_Atomic set[GREEN__HUBS_MAX];
static atomic_int set_n;               /* hubs in the set (home included) */
static atomic_uint turn;               /* round-robin start for ties */
static atomic_flag start_lock;         /* one hub starts at a time */
static atomic_long extra_live;         /* live threads on extra hubs */
static atomic_flag home_wake_posted;
static void home_wake_run(struct green__remote *r);
static struct green__remote home_wake = { .run = home_wake_run };

int green_set_hubs(int n)
{
    if (n < 1 || n > GREEN__HUBS_MAX) {
        errno = EINVAL;
        return -1;
    }
    green__settings_once();
    __atomic_store_n(&green__hubs_want, n, __ATOMIC_RELAXED);
    return 0;
}

int green_hubs(void)
{
    green__settings_once();
    int n = __atomic_load_n(&green__hubs_want, __ATOMIC_RELAXED);
    int started = atomic_load(&set_n);
    return started > n ? started : n;
}

/* ------------------------------------------------------------ starting */

struct start {
    int index;
    uint32_t done;                 /* futex word: 1 once ctx is set */
    struct green__ctx *ctx;
};

/* The OS thread of an extra hub: make the ctx, keep it waiting for
 * posts, and let its main green thread park for good (the hub runs). */
static void *extra_main(void *arg)
{
    struct start *st = arg;
    int index = st->index;
    /* Born with every signal blocked, but not libgreen's own: the faults
     * the stack-overflow reporter catches (a blocked fault kills without
     * a handler), the monitor's and the dump signal. The hub's main
     * thread keeps this mask, so it never changes what the hub's kernel
     * mask lets in for the program's threads (hooks/signal.c). */
    sigset_t open;
    sigemptyset(&open);
    static const int own[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS };
    for (size_t k = 0; k < sizeof own / sizeof *own; k++)
        sigaddset(&open, own[k]);
    if (green__monitor_signal > 0)
        sigaddset(&open, green__monitor_signal);
    if (green__dump_signal > 0)
        sigaddset(&open, green__dump_signal);
    GREEN_REAL(pthread_sigmask)(SIG_UNBLOCK, &open, NULL);
    struct green__ctx *c = green__ctx_get();
    if (c) {
        c->extra_hub = true;
        c->hub_index = index;
        snprintf(c->main->name, sizeof c->main->name, "hub%d", index);
        green__remote_expect(c, +1);
    }
    st->ctx = c;
    __atomic_store_n(&st->done, 1, __ATOMIC_RELEASE);
    green__syscall(SYS_futex, &st->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    if (!c)
        return NULL;
    for (;;)
        green__park(GREEN_WHY_OTHER, 0, NULL, GREEN_FOREVER);
}

/* Start extra hub i (i >= 1) and return its ctx, or NULL (the caller
 * places the thread on its own hub then). */
static __attribute__((noinline, cold)) struct green__ctx *start_hub(int i)
{
    while (atomic_flag_test_and_set_explicit(&start_lock, memory_order_acquire))
        GREEN_REAL(sched_yield)();
    struct green__ctx *c = atomic_load(&set[i]);
    if (c)
        goto out;
    struct start st = { .index = i };
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    /* The OS stack only holds the parked main thread: the hub and every
     * green thread run on stacks of libgreen's. */
    pthread_attr_setstacksize(&a, 256 * 1024);
    green__hubpolicy_attr(&a);     /* its own ctx_create decides */
    /* Born with every signal blocked: hooks/signal.c opens the kernel
     * mask to what its green threads accept as they arrive. */
    sigset_t old;
    green__block_all_signals(&old);
    pthread_t th;
    int e = GREEN_REAL(pthread_create)(&th, &a, extra_main, &st);
    green__restore_signals(&old);
    pthread_attr_destroy(&a);
    if (e) {
        green__warn("cannot start hub %d: %s; its threads run on the spawner's hub",
                    i, strerror(e));
        goto out;
    }
    while (!__atomic_load_n(&st.done, __ATOMIC_ACQUIRE))
        green__syscall(SYS_futex, &st.done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    c = st.ctx;
    if (c) {
        atomic_store(&set[i], c);
        if (atomic_load(&set_n) < i + 1)
            atomic_store(&set_n, i + 1);
        green__debug("hub %d started", i);
    }
out:
    atomic_flag_clear_explicit(&start_lock, memory_order_release);
    return c;
}

/* Under the shim the program's main thread counts as a live thread of
 * its hub, so that its first thread runs on another: two threads that
 * wait for each other by spinning (LTP's fuzzy-sync pairs, redis's I/O
 * threads) then run in parallel as natively. Linked explicitly only
 * spawned green threads count (green.h, green_set_hubs): unchanged. */
static int main_counts(void)
{
    return (green__hook_families & GREEN_HOOK_THREAD) != 0;
}

/* The caller's hub becomes home (set[0]). */
static __attribute__((noinline, cold)) bool make_home(struct green__ctx *self)
{
    while (atomic_flag_test_and_set_explicit(&start_lock, memory_order_acquire))
        GREEN_REAL(sched_yield)();
    bool ok = atomic_load(&set[0]) == NULL;
    if (ok) {
        self->hub_index = 0;
        atomic_store(&self->placed, (int)self->nthreads + main_counts());
        atomic_store(&set[0], self);
        if (atomic_load(&set_n) < 1)
            atomic_store(&set_n, 1);
        /* Wait for posts of the other hubs rather than report a deadlock
         * (the essay: "Deadlock"). */
        green__remote_expect(self, +1);
    }
    atomic_flag_clear_explicit(&start_lock, memory_order_release);
    return ok;
}

/* ------------------------------------------------------------ placement */

__thread int green__spawn_here __attribute__((tls_model("initial-exec")));

struct green__ctx *green__hubs_place(struct green__ctx *self)
{
    int want = __atomic_load_n(&green__hubs_want, __ATOMIC_RELAXED);
    if (green__likely(want <= 1 && self->hub_index < 0) || green__spawn_here)
        return self;
    if (self->hub_index < 0) {
        if (atomic_load(&set[0]) != NULL || !make_home(self))
            return self;   /* a program thread outside the set */
    }
    if (want > GREEN__HUBS_MAX)
        want = GREEN__HUBS_MAX;
    if (want <= 1)
        return self;
    /* Fewest live threads; ties go round. A hub not started counts 0. */
    unsigned first = atomic_fetch_add_explicit(&turn, 1, memory_order_relaxed);
    int best = -1, best_load = 0;
    for (int k = 0; k < want; k++) {
        int i = (int)((first + (unsigned)k) % (unsigned)want);
        struct green__ctx *c = atomic_load_explicit(&set[i], memory_order_acquire);
        int load = c ? atomic_load_explicit(&c->placed, memory_order_relaxed) : 0;
        if (best < 0 || load < best_load) {
            best = i;
            best_load = load;
        }
    }
    struct green__ctx *c = atomic_load_explicit(&set[best], memory_order_acquire);
    if (!c)
        c = best == 0 ? NULL : start_hub(best);
    return c ? c : self;
}

static void adopt_run(struct green__remote *r)
{
    struct green_thread *t = (struct green_thread *)((char *)r - offsetof(struct green_thread, xpost));
    green__thread_adopt(t->ctx, t);
}

void green__hubs_send(struct green__ctx *c, struct green_thread *t)
{
    t->xpost.run = adopt_run;
    green__remote_post(c, &t->xpost);
}

void green__hubs_count(struct green__ctx *c, int delta)
{
    atomic_fetch_add_explicit(&c->placed, delta, memory_order_relaxed);
    if (!c->extra_hub)
        return;
    if (delta > 0) {
        atomic_fetch_add(&extra_live, delta);
        return;
    }
    if (atomic_fetch_add(&extra_live, delta) + delta > 0)
        return;
    /* The last thread of the extra hubs ended: the home hub's main thread
     * may wait for it (green_run, pthread_exit in main). */
    struct green__ctx *home = atomic_load(&set[0]);
    if (home && !atomic_flag_test_and_set(&home_wake_posted))
        green__remote_post(home, &home_wake);
}

static void home_wake_run(struct green__remote *r)
{
    (void)r;
    atomic_flag_clear(&home_wake_posted);
    struct green__ctx *home = atomic_load(&set[0]);
    if (home)
        green__waitq_wake_all(&home->all_done, 0);
}

long green__hubs_others_live(struct green__ctx *c)
{
    if (c->hub_index != 0)
        return 0;
    return atomic_load(&extra_live);
}

int green__hubs_n(void)
{
    return atomic_load(&set_n);
}

struct green__ctx *green__hubs_at(int i)
{
    return i >= 0 && i < GREEN__HUBS_MAX ? atomic_load(&set[i]) : NULL;
}

bool green__hub_alone(const struct green__ctx *c)
{
    /* A hub of the set holds one expectation for good ("Deadlock"); a
     * forked child's hub keeps it (green__hubs_after_fork). */
    return c->current == c->main && c->nthreads == 0 &&
           c->refs_remote == (c->hub_index >= 0) && atomic_load(&set_n) <= 1;
}

struct green__ctx *green__hub_by_tid(pid_t tid)
{
    int n = atomic_load(&set_n);
    for (int i = 0; i < n; i++) {
        struct green__ctx *c = atomic_load(&set[i]);
        if (c && c->tid == tid)
            return c;
    }
    return NULL;
}

/* ------------------------------------------------- join, detach, free */

static inline void xlock(struct green_thread *t)
{
    while (__atomic_exchange_n(&t->xlock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&t->xlock, __ATOMIC_RELAXED))
            green__cpu_relax();
}

static inline void xunlock(struct green_thread *t)
{
    __atomic_store_n(&t->xlock, 0, __ATOMIC_RELEASE);
}

/* Under xlock: may t be joined or detached? Byte by byte: the flags sit
 * beside ones its hub writes without the lock (killed, kill_pending),
 * and one wide load of them all would read those too. */
static bool claimable(const struct green_thread *t)
{
    return !__atomic_load_n(&t->gone, __ATOMIC_RELAXED) &&
           !__atomic_load_n(&t->detached, __ATOMIC_RELAXED) &&
           !__atomic_load_n(&t->joining, __ATOMIC_RELAXED);
}

static void xunlock_cb(void *arg)
{
    xunlock(arg);
}

static void free_run(struct green__remote *r)
{
    struct green_thread *t = (struct green_thread *)((char *)r - offsetof(struct green_thread, xpost));
    green__thread_free(t);
}

/* Free t (finished, claimed: gone) on its own hub. */
static void free_on_hub(struct green_thread *t)
{
    t->xpost.run = free_run;
    green__remote_post(t->ctx, &t->xpost);
}

void green__hubs_finish(struct green_thread *t)
{
    xlock(t);
    t->state = GREEN_DONE;
    t->xdone = true;
    bool x = t->xjoined;
    xunlock(t);
    if (x)
        green__cond_broadcast(&t->xjoin);
}

int green__hubs_join(struct green_thread *self, struct green_thread *t,
                     void **result, int64_t deadline)
{
    xlock(t);
    if (!claimable(t)) {
        xunlock(t);
        return EINVAL;
    }
    if (!t->xdone) {
        t->joining = true;
        t->xjoined = true;
        for (;;) {
            int code = green__cond_park(&t->xjoin, self,
                                        deadline, &green__lock_plain, xunlock_cb, t);
            xlock(t);
            if (t->xdone)
                break;
            if (code) {
                t->joining = false;
                t->xjoined = false;
                xunlock(t);
                return code;
            }
        }
        t->joining = false;
    }
    t->gone = true;                /* a second join or detach: ESRCH/EINVAL */
    xunlock(t);
    if (result)
        *result = t->result;
    free_on_hub(t);
    return 0;
}

int green__hubs_detach(struct green_thread *t)
{
    xlock(t);
    if (!claimable(t)) {
        xunlock(t);
        return EINVAL;
    }
    if (t->xdone) {
        t->gone = true;
        xunlock(t);
        free_on_hub(t);
        return 0;
    }
    t->detached = true;            /* its finish frees it (reap_dead) */
    xunlock(t);
    return 0;
}

/* ------------------------------------------------------ calls on a hub */

struct xcall {
    struct green__remote r;
    struct green_thread *t;
    uint64_t id;
    void (*fn)(struct green_thread *t, intptr_t a, void *p);
    intptr_t a;
    void *p;
};

static void xcall_run(struct green__remote *r)
{
    struct xcall *x = (struct xcall *)r;
    struct green_thread *t = x->t;
    /* Structs are never returned to malloc: t may have been joined and
     * reused meanwhile, but reading it is safe. */
    if (t->id == x->id && !t->gone && t->ctx == green__tls_ctx &&
        t->state != GREEN_DONE)
        x->fn(t, x->a, x->p);
    free(x);
}

int green__on_hub(struct green_thread *t,
                  void (*fn)(struct green_thread *t, intptr_t a, void *p),
                  intptr_t a, void *p)
{
    struct green__ctx *c = t->ctx;
    if (c == green__tls_ctx) {
        fn(t, a, p);
        return 0;
    }
    struct xcall *x = malloc(sizeof *x);
    if (!x)
        return ENOMEM;
    x->t = t;
    x->id = t->id;
    x->fn = fn;
    x->a = a;
    x->p = p;
    x->r.run = xcall_run;
    green__remote_post(c, &x->r);
    return 0;
}

static void kill_fn(struct green_thread *t, intptr_t a, void *p)
{
    (void)a; (void)p;
    green__thread_kill(t);
}

int green__hubs_kill(struct green_thread *t)
{
    return green__on_hub(t, kill_fn, 0, NULL);
}

/* ---------------------------------------------------------------- fork */

void green__hubs_after_fork(struct green__ctx *c)
{
    for (int i = 0; i < GREEN__HUBS_MAX; i++) {
        /* The other hubs' OS threads are not in the child: nor are their
         * descriptors, which would stay open (and count against
         * RLIMIT_NOFILE) for the child's life. */
        struct green__ctx *h = atomic_exchange(&set[i], NULL);
        if (h && h != c)
            green__fd_close_owned(h->tid);
    }
    atomic_store(&set_n, 0);
    atomic_store(&extra_live, 0);
    atomic_flag_clear(&start_lock);
    atomic_flag_clear(&home_wake_posted);
    if (!c)
        return;
    if (c->hub_index >= 0) {
        /* It keeps its remote expectation: the child may start hubs
         * again, and make_home would add a second one. */
        c->hub_index = 0;
        c->extra_hub = false;
        atomic_store(&c->placed, (int)c->nthreads + main_counts());
        atomic_store(&set[0], c);
        atomic_store(&set_n, 1);
    }
}

/*
 * hub.c - the scheduler: one hub per OS thread, the run queue, park/ready.
 *
 * What it is. Each OS thread that uses libgreen gets a green__ctx, created
 * lazily: the program's original stack becomes the "main" green thread and
 * a second green thread, the hub, runs a libev loop. Every other green
 * thread is spawned into the ctx's FIFO run queue.
 *
 * Who switches where. A green thread gives up the CPU only inside
 * schedule(): when it parks (green__park), yields, finishes, or switches
 * directly (green_switch). schedule() pops the head of the run queue, or
 * resumes the hub when the queue is empty. The hub polls libev (blocking
 * only when nothing is runnable), whose callbacks make parked threads
 * runnable with green__ready(), and then puts itself at the tail of the run
 * queue and runs the head. The hub itself never parks.
 *
 * Fairness. Whenever the run queue is not empty, the hub is in it
 * (ensure_hub_queued): each round of runnable threads is followed by one
 * turn of the hub, so threads that keep readying each other (ping-pong
 * over a channel) cannot starve I/O and timers. To keep yield cheap the
 * hub's non-blocking poll is skipped when the last one was less than
 * POLL_INTERVAL_NS ago, which bounds the extra latency a busy loop adds to
 * I/O to 50 us per round. Reading the clock itself (~25 ns here) was the
 * biggest cost of a hub turn, so while threads are runnable and no
 * deadline is pending the hub reads it only every clock_every-th turn:
 * clock_every doubles (up to 16) while turns are shorter than 1 us and
 * drops back to 1 after a longer one, which keeps the bound near 50 us.
 * A hub turn that would not read the clock (and so could expire and poll
 * nothing) is taken by schedule() itself, without the two switches.
 *
 * Invariants.
 *  - The hub is running, on the run queue (hub_queued), or idle-suspended
 *    in its loop; in all three cases switching to it is valid.
 *  - A thread is on the run queue iff its state is NEW or RUNNABLE.
 *  - green__ready wakes a PARKED thread only; the first wake wins and
 *    unlinks the thread's wait node, so a waker never pops a thread that a
 *    timeout or kill already woke (no lost wake-ups).
 *  - errno is saved when a thread switches out and restored when it
 *    switches back in: errno belongs to the green thread.
 *  - A finished thread cannot free the stack it runs on: it leaves itself in
 *    ctx->dead and the next thread to run recycles the stack.
 *
 * Deadlock. When nothing is runnable and libev has no active watcher and no
 * remote post is expected, no parked thread can ever wake. For the explicit
 * API the main green thread is woken with EDEADLK (as gevent raises
 * LoopExit). Under the LD_PRELOAD shim (block_on_deadlock) the process
 * blocks forever, as the same program would natively.
 *
 * Rejected: a hub that runs every thread itself (one extra switch per
 * wake-up); ucontext (a syscall per switch); one global run queue shared by
 * OS threads (locks on every switch; green threads stay on their OS thread,
 * as in gevent).
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include "arch/switch.h"
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#ifdef GREEN_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#define POLL_INTERVAL_NS 50000

__thread struct green__ctx *green__tls_ctx __attribute__((tls_model("initial-exec")));
__thread int green__bypass __attribute__((tls_model("initial-exec")));
__thread int green__in_libev __attribute__((tls_model("initial-exec")));

static atomic_uint_fast64_t next_id = 1;


/* ---------------------------------------------------------------- logging */

void green__log(const char *fmt, ...)
{
    char b[1024];
    int n = snprintf(b, sizeof b, "libgreen: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(b + n, sizeof b - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof b - 2)
        n = (int)sizeof b - 2;
    b[n++] = '\n';
    ssize_t r = write(2, b, (size_t)n);
    (void)r;
}

void green__panic(const char *sub, const char *file, int line, const char *what)
{
    green__log("%s: invariant broken at %s:%d: %s", sub, file, line, what);
    abort();
}

int64_t green_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------ wait queues */

void green__waitq_push(struct green__waitq *q, struct green__wnode *n)
{
    green__assert("waitq", n->q == NULL);
    n->q = q;
    n->next = NULL;
    n->prev = q->tail;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
}

void green__waitq_remove(struct green__wnode *n)
{
    struct green__waitq *q = n->q;
    if (!q)
        return;
    if (n->prev)
        n->prev->next = n->next;
    else
        q->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    n->next = n->prev = NULL;
    n->q = NULL;
}

struct green__wnode *green__waitq_pop(struct green__waitq *q)
{
    struct green__wnode *n = q->head;
    if (n)
        green__waitq_remove(n);
    return n;
}

int green__waitq_wake_all(struct green__waitq *q, int code)
{
    int k = 0;
    struct green__wnode *n;
    while ((n = green__waitq_pop(q))) {
        green__ready(n->t, code);
        k++;
    }
    return k;
}

int green__waitq_wake_one(struct green__waitq *q, int code)
{
    struct green__wnode *n = green__waitq_pop(q);
    if (!n)
        return 0;
    green__ready(n->t, code);
    return 1;
}

/* -------------------------------------------------------------- run queue */

static void runq_push(struct green__ctx *c, struct green_thread *t)
{
    green__assert("hub", !t->on_runq);
    t->on_runq = true;
    t->runq_next = NULL;
    t->runq_prev = c->runq_tail;
    if (c->runq_tail)
        c->runq_tail->runq_next = t;
    else
        c->runq_head = t;
    c->runq_tail = t;
}

static void runq_remove(struct green__ctx *c, struct green_thread *t)
{
    if (!t->on_runq)
        return;
    if (t->runq_prev)
        t->runq_prev->runq_next = t->runq_next;
    else
        c->runq_head = t->runq_next;
    if (t->runq_next)
        t->runq_next->runq_prev = t->runq_prev;
    else
        c->runq_tail = t->runq_prev;
    t->runq_next = t->runq_prev = NULL;
    t->on_runq = false;
    if (t == c->hub)
        c->hub_queued = false;
}

static struct green_thread *runq_pop(struct green__ctx *c)
{
    struct green_thread *t = c->runq_head;
    if (t)
        runq_remove(c, t);
    return t;
}

/* Keep the hub in the queue whenever the queue is not empty (fairness). */
static void ensure_hub_queued(struct green__ctx *c)
{
    if (!c->hub_queued && c->current != c->hub) {
        c->hub_queued = true;
        c->hub->state = GREEN_RUNNABLE;
        runq_push(c, c->hub);
    }
}

/* --------------------------------------------------------------- switching */

static inline void asan_start(struct green_thread *from, struct green_thread *to)
{
#ifdef GREEN_ASAN
    __sanitizer_start_switch_fiber(
        from->state == GREEN_DONE ? NULL : &from->asan_fake_stack,
        to->asan_bottom, to->asan_size);
#else
    (void)from; (void)to;
#endif
}

static inline void asan_finish(struct green_thread *t)
{
#ifdef GREEN_ASAN
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(t->asan_fake_stack, &bottom, &size);
    /* The first switch away from an adopted OS stack tells us its bounds. */
    struct green__ctx *c = t->ctx;
    struct green_thread *prev = c->prev_for_asan;
    if (prev && !prev->asan_bottom) {
        prev->asan_bottom = bottom;
        prev->asan_size = size;
    }
#else
    (void)t;
#endif
}

static void reap_dead(struct green__ctx *c);

/* Code every thread runs right after it gets the CPU back. */
static inline void after_switch(struct green_thread *self)
{
    struct green__ctx *c = self->ctx;
    asan_finish(self);
#ifdef GREEN_ASAN
    c->switching = false;
#endif
    if (c->dead)
        reap_dead(c);
    errno = self->saved_errno;
}

/* Switch from the current thread to next. The caller has already set the
 * current thread's state (and queued it, for a yield). */
static void switch_to(struct green__ctx *c, struct green_thread *next)
{
    struct green_thread *self = c->current;
    atomic_store_explicit(&c->switches, atomic_load_explicit(&c->switches, memory_order_relaxed) + 1, memory_order_relaxed);
    if (next == self) {
        self->state = GREEN_RUNNING;
        return;
    }
    self->saved_errno = errno;
    next->state = GREEN_RUNNING;
    c->current = next;
#ifdef GREEN_ASAN
    c->prev_for_asan = self;
#endif
#ifdef GREEN_ASAN
    c->switching = true;   /* the ASan runtime may call hooked functions */
#endif
    asan_start(self, next);
    green__ctx_switch(&self->sp, next->sp);
    after_switch(self);
}

/* The hub's clock-reading period (hub_clock): turns left before it reads
 * the clock again, the current period, and the last reading. */
static __thread int64_t hub_last;
static __thread unsigned hub_skip, hub_every = 1;

/* Give the CPU to the next runnable thread, or to the hub. */
static void schedule(struct green__ctx *c)
{
    struct green_thread *next = runq_pop(c);
    if (next == c->hub && c->runq_head && !c->theap_n && hub_skip > 0) {
        /* A hub turn that would read no clock, expire no deadline and
         * poll nothing (see hub_clock) is only two switches: take it here
         * without switching. The hub keeps its place at the tail. */
        hub_skip--;
        runq_push(c, next);
        c->hub_queued = true;
        next = runq_pop(c);
    }
    if (!next)
        next = c->hub;
    switch_to(c, next);
}

/* ------------------------------------------------------------ park/ready */

static int64_t scope_deadline(const struct green_thread *t)
{
    int64_t d = GREEN_FOREVER;
    for (const green_timeout_t *s = t->scopes; s; s = s->outer)
        if (s->deadline >= 0 && (d < 0 || s->deadline < d))
            d = s->deadline;
    return d;
}

static void mark_expired_scopes(struct green_thread *t, int64_t now)
{
    for (green_timeout_t *s = t->scopes; s; s = s->outer)
        if (s->deadline >= 0 && s->deadline <= now)
            s->expired = true;
}

/* A park that must not wait (t->kill_pending): its result. Out of line,
 * so that the park and yield fast paths only test one byte. */
static __attribute__((noinline, cold)) int park_refused(struct green_thread *t)
{
    if (t->kill_pending & GREEN__KP_SIGNAL)
        return EINTR;              /* see green__run_as */
    t->kill_pending = 0;
    return ECANCELED;
}

/* The common part of every park. next: thread to switch to directly, or
 * NULL to schedule. */
static int park_impl(enum green__why why, uintptr_t why_arg,
                     struct green__waitq *q, int64_t deadline,
                     struct green_thread *next)
{
    struct green__ctx *c = green__tls_ctx;
    struct green_thread *t = c->current;
    green__assert("hub", t != c->hub);
    if (green__unlikely(t->kill_pending))
        return park_refused(t);
    /* In an interruptible hooked call (hooks/signal.c marked it), a
     * handler that already ran for this thread since the call began (while
     * it ran between two parks of the call, or after a deadline had woken
     * it) interrupts this park at once: natively the call was one wait in
     * the kernel, which the signal would have interrupted. */
    if (green__unlikely(t->intr_gen && t->sig_handled != t->intr_mark))
        return EINTR;
    int64_t sd = scope_deadline(t);
    int64_t eff = deadline;
    if (sd >= 0 && (eff < 0 || sd < eff))
        eff = sd;
    /* Read the clock only for a deadline: a park without one (join,
     * switch, a lock) costs no clock_gettime, and park_since can be the
     * hub's last poll time, which green_dump only needs roughly. */
    int64_t now = c->last_poll;
    if (eff >= 0) {
        now = green_now();
        if (eff <= now) {
            mark_expired_scopes(t, now);
            return ETIMEDOUT;
        }
    }
    if (q) {
        t->wnode.t = t;
        green__waitq_push(q, &t->wnode);
    }
    t->state = GREEN_PARKED;
    t->why = why;
    t->why_arg = why_arg;
    t->park_since = now;
    t->wake_code = 0;
    if (eff >= 0 && green__timer_add(c, t, eff) != 0) {
        green__waitq_remove(&t->wnode);
        t->state = GREEN_RUNNING;
        return ENOMEM;
    }
    if (next) {
        /* green_switch: next is NEW (queued) or parked in a switch. */
        if (next->state == GREEN_NEW)
            runq_remove(c, next);
        else
            next->wake_code = 0;
        switch_to(c, next);
    } else
        schedule(c);
    c = t->ctx;
    green__timer_remove(c, t);
    green__waitq_remove(&t->wnode);
    t->why = GREEN_WHY_NONE;
    int code = t->wake_code;
    /* Blame the deadline that fired (eff), not every scope that has
     * passed by now: a park that ended at its own, earlier deadline must
     * not mark an enclosing scope expired just because the wake-up came
     * late. */
    if (code == ETIMEDOUT)
        mark_expired_scopes(t, eff);
    return code;
}

int green__park(enum green__why why, uintptr_t why_arg,
                struct green__waitq *q, int64_t deadline)
{
    return park_impl(why, why_arg, q, deadline, NULL);
}

void green__ready(struct green_thread *t, int code)
{
    if (t->state != GREEN_PARKED)
        return;
    struct green__ctx *c = t->ctx;
    green__waitq_remove(&t->wnode);
    t->wake_code = code;
    t->state = GREEN_RUNNABLE;
    runq_push(c, t);
    ensure_hub_queued(c);
}

/* ---------------------------------------------------------- remote posts */

static void remote_lock(struct green__ctx *c)
{
    while (atomic_flag_test_and_set_explicit(&c->remote_lock, memory_order_acquire))
        sched_yield();
}

static void remote_unlock(struct green__ctx *c)
{
    atomic_flag_clear_explicit(&c->remote_lock, memory_order_release);
}

void green__remote_post(struct green__ctx *c, struct green__remote *r)
{
    remote_lock(c);
    r->next = c->remote_head;
    c->remote_head = r;
    remote_unlock(c);
    ev_async_send(c->loop, &c->async);
}

void green__remote_expect(struct green__ctx *c, int delta)
{
    /* The async watcher is unref'd while idle so that it does not hide a
     * deadlock; it holds a reference while remote posts are expected. */
    int before = c->refs_remote;
    c->refs_remote += delta;
    if (before == 0 && c->refs_remote > 0)
        ev_ref(c->loop);
    else if (before > 0 && c->refs_remote == 0)
        ev_unref(c->loop);
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop; (void)revents;
    struct green__ctx *c = w->data;
    remote_lock(c);
    struct green__remote *r = c->remote_head;
    c->remote_head = NULL;
    remote_unlock(c);
    /* Posted LIFO; run in posting order. */
    struct green__remote *rev = NULL;
    while (r) {
        struct green__remote *n = r->next;
        r->next = rev;
        rev = r;
        r = n;
    }
    while (rev) {
        struct green__remote *n = rev->next;
        rev->run(rev);
        rev = n;
    }
}

/* ------------------------------------------------------------------ hub */

static void deadlock(struct green__ctx *c)
{
    if (c->block_on_deadlock) {
        /* The same program without the shim would hang here too, until a
         * signal handler wakes a thread (it runs as its thread from the
         * hub: green__on_signal). */
        for (;;) {
            pause();
            if (green__on_signal)
                green__on_signal(c);
            if (c->runq_head)
                return;
        }
    }
    if (c->main->state == GREEN_PARKED) {
        green__ready(c->main, EDEADLK);
        return;
    }
    green__panic("hub", __FILE__, __LINE__,
                 "deadlock while the main green thread is not parked");
}

/* The hub's view of the time for this turn (see the essay on fairness). */
static int64_t hub_clock(struct green__ctx *c)
{
    if (c->theap_n || !c->runq_head || hub_skip == 0) {
        int64_t now = green_now();
        if (now - hub_last < (int64_t)hub_every * 1000)
            hub_every = hub_every < 16 ? hub_every * 2 : 16;
        else
            hub_every = 1;
        hub_skip = hub_every - 1;
        hub_last = now;
        return now;
    }
    hub_skip--;
    return hub_last;
}

/* ev_run, letting libev rebuild its descriptors after a fork (its epoll
 * fd, async eventfd) through the hooks, which mark the new ones. */
static int hub_poll(struct green__ctx *c, int flags)
{
    if (green__likely(!c->libev_refork))
        return ev_run(c->loop, flags);
    green__in_libev++;
    int alive = ev_run(c->loop, flags);
    green__in_libev--;
    c->libev_refork = false;
    return alive;
}

static void hub_main(void *arg)
{
    struct green__ctx *c = arg;
    after_switch(c->hub);
    for (;;) {
        int alive = 1;
        int64_t now = hub_clock(c);
        green__timers_expire(c, now);
        if (c->runq_head) {
            if (now - c->last_poll >= POLL_INTERVAL_NS) {
                c->last_poll = now;
                alive = hub_poll(c, EVRUN_NOWAIT);
            }
        } else {
            green__timers_arm(c);
            /* The timerfd watcher is unref'd; with deadlines pending but
             * no other active watcher libev would poll with a zero
             * timeout and the hub would spin: hold a reference. */
            bool hold_for_deadlines = c->theap_n > 0;
            if (hold_for_deadlines)
                ev_ref(c->loop);
            alive = hub_poll(c, EVRUN_ONCE);
            if (hold_for_deadlines)
                ev_unref(c->loop);
            c->last_poll = green_now();
        }
        alive = alive || c->theap_n > 0;
        if (green__on_signal)
            green__on_signal(c);   /* may ready a thread with EINTR */
        if (c->runq_head) {
            c->hub_queued = true;
            c->hub->state = GREEN_RUNNABLE;
            runq_push(c, c->hub);
            schedule(c);
        } else if (!alive) {
            deadlock(c);
        }
    }
}

/* "green-ID" by hand: snprintf was a third of the cost of a spawn. */
static void default_name(char *b, uint64_t id)
{
    char d[24];
    size_t n = 0;
    do {
        d[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    memcpy(b, "green-", 6);
    for (size_t i = 0; i < n; i++)
        b[6 + i] = d[n - 1 - i];
    b[6 + n] = 0;
}

/* Freed thread structs are kept for reuse (per OS thread) and never
 * returned to malloc: glibc's calloc bypasses its per-thread cache, and
 * calloc + free were a quarter of a spawn+join; and a pthread_t stays
 * memory-safe to look at after the thread was joined, so a second join or
 * a detach of a joined thread answers ESRCH (t->gone) instead of reading
 * freed memory, as glibc's cached descriptors allow it to. A struct is
 * reused by a later spawn, as glibc reuses descriptors. */
static __thread struct green_thread *spare_threads;   /* linked by all_next */

static struct green_thread *thread_get(void)
{
    struct green_thread *t = spare_threads;
    if (!t)
        return calloc(1, sizeof *t);
    spare_threads = t->all_next;
    memset(t, 0, sizeof *t);
    return t;
}

static void thread_put(struct green_thread *t)
{
    t->gone = true;
    t->state = GREEN_DONE;
    t->all_next = spare_threads;
    spare_threads = t;
}

static struct green_thread *thread_alloc(struct green__ctx *c, const char *name)
{
    struct green_thread *t = thread_get();
    if (!t)
        return NULL;
    t->ctx = c;
    t->id = atomic_fetch_add(&next_id, 1);
    if (name) {
        size_t n = strnlen(name, GREEN__NAME_MAX - 1);
        memcpy(t->name, name, n);
        t->name[n] = 0;
    } else {
        default_name(t->name, t->id);
    }
    return t;
}

static void all_link(struct green__ctx *c, struct green_thread *t)
{
    t->all_prev = NULL;
    t->all_next = c->all;
    if (c->all)
        c->all->all_prev = t;
    c->all = t;
}

static void all_unlink(struct green__ctx *c, struct green_thread *t)
{
    if (t->all_prev)
        t->all_prev->all_next = t->all_next;
    else
        c->all = t->all_next;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
}

static __attribute__((noinline, cold)) struct green__ctx *ctx_create(void)
{
    green__settings_once();
    struct green__ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    green__in_libev++;             /* libev's own fds: see green_internal.h */
    c->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOSIGMASK |
                          EVFLAG_NOINOTIFY);
    if (!c->loop)
        c->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    green__in_libev--;
    if (!c->loop)
        goto fail;
    c->main = thread_alloc(c, "main");
    c->hub = thread_alloc(c, "hub");
    if (!c->main || !c->hub)
        goto fail;
    c->main->is_main = true;
    c->main->state = GREEN_RUNNING;
    /* The program's original thread keeps the mask it had (hooks/signal.c
     * keeps one per green thread from now on). */
    uint64_t km = 0;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &km, sizeof km);
    c->main->sig_blocked = km;
    c->hub->is_hub = true;
    if (green__stack_get(&c->hub->stack, 0, 0) != 0)
        goto fail;
    c->hub->asan_bottom = c->hub->stack.lo;
    c->hub->asan_size = (size_t)((char *)c->hub->stack.hi - (char *)c->hub->stack.lo);
    c->hub->sp = green__ctx_make(c->hub->stack.lo, c->hub->stack.hi, hub_main, c);
    c->hub->state = GREEN_RUNNABLE;
    c->current = c->main;
    c->pid = getpid();
    c->last_poll = green_now();   /* parks before the first poll date from here */
    all_link(c, c->main);
    if (green__timers_init(c) != 0)
        goto fail;
    ev_async_init(&c->async, async_cb);
    c->async.data = c;
    green__in_libev++;   /* creates libev's eventfd; fd_intern marks it */
    ev_async_start(c->loop, &c->async);
    green__in_libev--;
    ev_unref(c->loop);   /* see green__remote_expect */
    c->block_on_deadlock = green__block_on_deadlock;
    green__stack_install_overflow_handler();
    static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
    pthread_once(&fork_once, green__register_atfork);
    green__ctx_register(c);
    return c;
fail:
    if (c->hub && c->hub->stack.lo)
        green__stack_put(&c->hub->stack);
    free(c->main);
    free(c->hub);
    if (c->loop) {
        green__in_libev++;         /* the close hook lets libev's fds go */
        ev_loop_destroy(c->loop);
        green__in_libev--;
    }
    free(c);
    return NULL;
}

/* The first green__ctx_get of an OS thread. Out of line so that the fast
 * path (a TLS load and a test, on every green_switch, yield and spawn)
 * needs no stack frame wherever its callers are: GCC split the slow path
 * out by itself only while green__ctx_get had callers in its own file,
 * and without that the frame cost 7 instructions per call (callgrind,
 * bench_switch). */
static __attribute__((noinline, cold)) struct green__ctx *ctx_first(void)
{
    struct green__ctx *c = ctx_create();
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    green__tls_ctx = c;
    return c;
}

struct green__ctx *green__ctx_get(void)
{
    struct green__ctx *c = green__tls_ctx;
    if (green__likely(c != NULL))
        return c;
    return ctx_first();
}

/* Thread ids below this one existed when the last fork began (taken in
 * the prepare handler, which runs before fork() copies the process). */
static atomic_uint_fast64_t fork_id_limit;

static void fork_prepare(void)
{
    atomic_store(&fork_id_limit, atomic_load(&next_id));
}

/* Take t out of every structure that could run it again: the run queue,
 * the deadline heap, the wait queue its own node is in. Its stack and
 * struct are kept (the child's copy costs nothing until written) on the
 * ctx's discarded list: a poll node on its stack may still sit in a
 * descriptor's queue, where a wake-up finds it DONE and ignores it. */
static void discard_thread(struct green__ctx *c, struct green_thread *t)
{
    runq_remove(c, t);
    green__timer_remove(c, t);
    green__waitq_remove(&t->wnode);
    t->state = GREEN_DONE;
    t->detached = true;
    t->gone = true;
    all_unlink(c, t);
    t->all_next = c->discarded;
    c->discarded = t;
}

/* The child of a fork has one OS thread, the one that forked, and as POSIX
 * says only the calling thread: every other green thread of this ctx is
 * discarded, mutexes they held stay locked (as with glibc), and the
 * caller becomes the ctx's main thread (the process ends with exit(0)
 * when it ends, after threads the child creates). The hub keeps working
 * (libev rebuilds its epoll set; timers.c re-creates the timerfd). Hubs
 * of other OS threads of the parent are gone with their threads. Threads
 * created by atfork child handlers that ran before this one are kept
 * (their ids are past fork_id_limit). */
void green__after_fork_child(void)
{
    struct green__ctx *c = green__tls_ctx;
    if (!c)
        return;
    ev_loop_fork(c->loop);
    c->libev_refork = true;        /* hub_poll lets libev rebuild its fds */
    green__timers_after_fork(c);
    atomic_flag_clear(&c->remote_lock);
    c->remote_head = NULL;
    c->pid = getpid();
    struct green_thread *self = c->current;
    if (self == c->hub)
        return;                    /* fork from the hub: nothing to keep */
    uint64_t limit = atomic_load(&fork_id_limit);
    size_t kept = 0;
    for (struct green_thread *t = c->all, *n; t; t = n) {
        n = t->all_next;
        if (t == self || t == c->hub || t->state == GREEN_DONE)
            continue;
        if (t->id >= limit && t != c->main) {
            kept++;
            continue;
        }
        discard_thread(c, t);
    }
    if (self != c->main) {
        c->main = self;
        self->is_main = true;
    }
    c->nthreads = kept;            /* live threads other than main */
}

void green__register_atfork(void)
{
    pthread_atfork(fork_prepare, NULL, green__after_fork_child);
}

/* ---------------------------------------------------- thread life cycle */

void green__thread_free(struct green_thread *t)
{
    struct green__ctx *c = t->ctx;
    all_unlink(c, t);
    free(t->locals);
    thread_put(t);
}

static void reap_dead(struct green__ctx *c)
{
    struct green_thread *d = c->dead;
    c->dead = NULL;
    if (!d->user_stack)
        green__stack_put(&d->stack);
    if (d->detached)
        green__thread_free(d);
}

/* t finished while others may still wait in a green_switch to it: nobody
 * could ever switch back to them, so they resume with t's result (as a
 * dead greenlet returns to its parent) instead of hanging until the
 * deadlock check. Only threads that were switch targets pay for the scan. */
static void resume_switchers(struct green__ctx *c, struct green_thread *t)
{
    for (struct green_thread *u = c->all; u; u = u->all_next) {
        if (u->state == GREEN_PARKED && u->why == GREEN_WHY_SWITCH &&
            u->why_arg == (uintptr_t)t) {
            u->switch_value = t->result;
            green__ready(u, 0);
        }
    }
}

void (*green__thread_exit_hook)(struct green_thread *t);

/* Called on the dying thread's own stack; never returns. */
_Noreturn void green__thread_finish(struct green_thread *t, void *result)
{
    struct green__ctx *c = t->ctx;
    green__locals_run_destructors(t);
    if (green__thread_exit_hook)
        green__thread_exit_hook(t);
    t->result = result;
    if (green__sig_life)
        green__sig_life(t, -1);
    t->state = GREEN_DONE;
    if (t->switched_to)
        resume_switchers(c, t);
    green__waitq_wake_all(&t->joiners, 0);
    /* green_run waits for nthreads 0 on main, 1 (itself) on any other
     * thread; waiters re-check, so waking at 1 is only a spurious wake. */
    if (--c->nthreads <= 1)
        green__waitq_wake_all(&c->all_done, 0);
    green__assert("hub", c->dead == NULL);
    c->dead = t;
    schedule(c);
    green__panic("hub", __FILE__, __LINE__, "a finished thread was resumed");
}

static void thread_entry(void *arg)
{
    struct green_thread *t = arg;
    after_switch(t);
    t->saved_errno = 0;
    errno = 0;
    void *r = GREEN_CANCELED;
    if (!t->killed)
        r = t->fn(t->arg);
    if (t->is_main)
        green_exit(r);             /* a fork made it the child's main */
    green__thread_finish(t, r);
}

struct green_thread *green__thread_create(void *(*fn)(void *), void *arg,
                                          const green_attr_t *attr, int *err)
{
    return green__thread_create_on(fn, arg, attr, NULL, 0, err);
}

struct green_thread *green__thread_create_on(void *(*fn)(void *), void *arg,
                                             const green_attr_t *attr,
                                             void *stack, size_t size, int *err)
{
    struct green__ctx *c = green__ctx_get();
    if (!c) {
        *err = ENOMEM;
        return NULL;
    }
    struct green_thread *t = thread_alloc(c, attr ? attr->name : NULL);
    if (!t) {
        *err = ENOMEM;
        return NULL;
    }
    if (stack) {
        /* The caller's memory (pthread_attr_setstack): never pooled. */
        t->stack = (struct green__stack){ .lo = stack, .hi = (char *)stack + size };
        t->user_stack = true;
    } else {
        int e = green__stack_get(&t->stack, attr ? attr->stack_size : 0,
                                 attr ? attr->guard : 0);
        if (e) {
            thread_put(t);
            *err = e;
            return NULL;
        }
    }
    t->fn = fn;
    t->arg = arg;
    t->detached = attr && attr->detached;
    t->asan_bottom = t->stack.lo;
    t->asan_size = (size_t)((char *)t->stack.hi - (char *)t->stack.lo);
    t->sp = green__ctx_make(t->stack.lo, t->stack.hi, thread_entry, t);
    t->state = GREEN_NEW;
    t->sig_blocked = c->current->sig_blocked;   /* as pthread_create */
    c->nthreads++;
    all_link(c, t);
    if (green__sig_life)
        green__sig_life(t, +1);
    runq_push(c, t);
    ensure_hub_queued(c);
    return t;
}

int green_yield(void)
{
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return -1;
    struct green_thread *t = c->current;
    if (green__unlikely(t->kill_pending)) {
        int code = park_refused(t);
        if (code == EINTR)
            return 0;              /* see green__run_as: no yield */
        errno = code;
        return -1;
    }
    t->state = GREEN_RUNNABLE;
    runq_push(c, t);
    ensure_hub_queued(c);
    schedule(c);
    return 0;
}

bool green__runq_idle(void)
{
    struct green__ctx *c = green__tls_ctx;
    return !c || !c->runq_head || (c->runq_head == c->hub && c->runq_tail == c->hub);
}

/* The clock part of green__fair_turn. */
void green__fair_check(struct green__ctx *c, struct green_thread *t)
{
    if (c->switching)
        return;   /* called from inside a switch (ASan's fiber hooks) */
    int64_t now = green__coarse_now();
    t->slice_left = GREEN__SLICE_EVERY;
    if (t->slice_start == 0)
        t->slice_start = now;
    else if (now - t->slice_start >= GREEN__SLICE_NS)
        green__fair_yield(c);
}

/* A slice is over (green__fair_turn): go to the back of the run queue.
 * Unlike green_yield, a pending kill is left for the next real park. */
void green__fair_yield(struct green__ctx *c)
{
    struct green_thread *t = c->current;
    t->state = GREEN_RUNNABLE;
    runq_push(c, t);
    ensure_hub_queued(c);
    schedule(c);
}

/* Direct switch for green_switch: suspend the caller in a SWITCH park and
 * run t (NEW, or parked in a switch) at once. Returns the park's code. */
int green__switch_direct(struct green_thread *t, void *value)
{
    t->switch_value = value;
    t->switched_to = true;
    return park_impl(GREEN_WHY_SWITCH, (uintptr_t)t, NULL, GREEN_FOREVER, t);
}

void green__thread_kill(struct green_thread *t)
{
    if (t->state == GREEN_DONE)
        return;
    t->killed = true;
    if (t->state == GREEN_PARKED)
        green__ready(t, ECANCELED);
    else if (t->state != GREEN_NEW)
        t->kill_pending = true;
}

bool green__is_main_os_thread(void)
{
    return getpid() == (pid_t)syscall(SYS_gettid);
}

/* ------------------------------------------------------------- run as */

void (*volatile green__sig_life)(struct green_thread *t, int delta);

struct run_as {
    void (*fn)(void *);
    void *arg;
    struct green_thread *t;
    void *back;                    /* the caller's saved context */
    const void *back_bottom;       /* the caller's stack, for ASan */
    size_t back_size;
};

static void run_as_entry(void *p)
{
    struct run_as *r = p;
    struct green_thread *t = r->t;
#ifdef GREEN_ASAN
    __sanitizer_finish_switch_fiber(NULL, &r->back_bottom, &r->back_size);
#endif
    uint8_t kp = t->kill_pending;
    t->kill_pending = kp | GREEN__KP_SIGNAL;
    errno = t->saved_errno;
    r->fn(r->arg);
    t->saved_errno = errno;
    t->kill_pending = (uint8_t)(t->kill_pending & ~GREEN__KP_SIGNAL);
    void *junk;
#ifdef GREEN_ASAN
    __sanitizer_start_switch_fiber(NULL, r->back_bottom, r->back_size);
#endif
    green__ctx_switch(&junk, r->back);
    green__panic("hub", __FILE__, __LINE__, "an abandoned run_as context was resumed");
}

void green__run_as(struct green_thread *t, void (*fn)(void *), void *arg)
{
    struct green__ctx *c = t->ctx;
    struct green_thread *self = c->current;
    green__assert("hub", t != self && t->state != GREEN_DONE && t->sp);
    /* Below t's saved context: everything above t->sp is live, the rest
     * of its stack is free while it is suspended. 256 bytes spare the red
     * zone of whatever saved the context. */
    uintptr_t hi = ((uintptr_t)t->sp - 256) & ~(uintptr_t)63;
    uintptr_t lo = t->stack.lo ? (uintptr_t)t->stack.lo : hi - 65536;
    struct run_as r = { .fn = fn, .arg = arg, .t = t };
    void *sp = green__ctx_make((void *)lo, (void *)hi, run_as_entry, &r);
    int e = errno;
    /* From the hub: it is running, not queued, although current is t for
     * a while; ensure_hub_queued must not queue it (hub_main queues
     * itself when it needs to). */
    bool hq = c->hub_queued;
    if (self == c->hub)
        c->hub_queued = true;
    c->current = t;
#ifdef GREEN_ASAN
    /* Dead frames below t's saved context keep their redzones' poison. */
    __asan_unpoison_memory_region((void *)lo, hi - lo);
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, (const void *)lo, hi - lo);
#endif
    green__ctx_switch(&r.back, sp);
#ifdef GREEN_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
    /* run_as_entry never returns: its frame's redzones stay poisoned and
     * t's stack grows into them later. */
    __asan_unpoison_memory_region((void *)lo, hi - lo);
#endif
    c->current = self;
    if (self == c->hub)
        c->hub_queued = hq;
    errno = e;
}

void green__block_all_signals(sigset_t *old)
{
    /* Every signal but glibc's two internal ones (32, 33: cancellation
     * and setxid, which glibc never lets a thread block). */
    uint64_t all = ~(uint64_t)0 & ~(3ULL << 31);
    memset(old, 0, sizeof *old);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, old, sizeof all);
}

void green__restore_signals(const sigset_t *old)
{
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, old, NULL, sizeof(uint64_t));
}

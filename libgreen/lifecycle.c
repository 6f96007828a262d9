/*
 * lifecycle.c - a green thread's life: its struct (allocated, recycled),
 * its start on the run queue, its finish (key destructors, joiners woken,
 * the stack recycled by the next thread to run), kill, what a fork leaves
 * of it, and running code as it from outside (green__run_as, for signal
 * handlers). The public API on top is thread.c; the scheduler it hands
 * threads to is sched.c, whose essay covers both.
 *
 * Invariants. A thread struct is never returned to malloc (thread_put);
 * a finished thread never frees the stack it runs on (it leaves itself in
 * ctx->dead, reaped by the next thread's after_switch); ctx->nthreads
 * counts the live threads other than main and hub.
 *
 * Rejected: returning structs to malloc (it was a quarter of a spawn+join,
 * and a joined pthread_t must stay safe to look at: see thread_put).
 */
#define _GNU_SOURCE
#include "green_sched.h"
#include "lock.h"
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

static atomic_uint_fast64_t next_id = 1;

/* --------------------------------------------------------- thread structs */

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
    if (!t) {
        t = calloc(1, sizeof *t);
        if (t)
            t->magic = GREEN__THREAD_MAGIC;
        return t;
    }
    spare_threads = t->all_next;
    memset(t, 0, sizeof *t);
    t->magic = GREEN__THREAD_MAGIC;
    return t;
}

static void thread_put(struct green_thread *t)
{
    t->gone = true;
    t->state = GREEN_DONE;
    t->all_next = spare_threads;
    spare_threads = t;
}

struct green_thread *green__thread_alloc(struct green__ctx *c, const char *name)
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

void green__all_link(struct green__ctx *c, struct green_thread *t)
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
/* -------------------------------------------------------------------- fork */

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
    green__lock_after_fork_child();
    green__stack_after_fork_child();
    green__tls_after_fork_child();
    struct green__ctx *c = green__tls_ctx;
    if (!c) {
        green__hubs_after_fork(NULL);
        return;
    }
    ev_loop_fork(c->loop);
    c->libev_refork = true;        /* hub_poll lets libev rebuild its fds */
    green__timers_after_fork(c);
    atomic_store(&c->remote_head, NULL);
    c->pid = getpid();
    c->tid = (pid_t)green__syscall(SYS_gettid);
    struct green_thread *self = c->current;
    if (self == c->hub) {
        green__hubs_after_fork(c);
        return;                    /* fork from the hub: nothing to keep */
    }
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
    green__cpu_after_fork_child(c, self);
    green__hubs_after_fork(c);
    /* Expectations of remote posts (green__remote_expect) that discarded
     * threads held, or that wait for an OS thread the child does not have
     * (a lock wait across hubs, an offload's completion), would never be
     * released: the hub would never count as alone again, and the child's
     * lone thread would poll its process-shared waits instead of sleeping
     * in the kernel (green__hub_alone). What stays is the hub set's own
     * (green__hubs_after_fork keeps it). Not when the caller is a thread
     * running a handler as a parked thread (green__run_as): its park holds
     * one of its own, which it releases later. */
    if (self->state == GREEN_RUNNING)
        green__remote_expect(c, (c->hub_index >= 0 ? 1 : 0) - c->refs_remote);
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
    free(t->alt);
    free(t->tls_buf);              /* NULL once it ended (tls.c) */
    t->tls_buf = NULL;
    thread_put(t);
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
    green__tls_run_dtors(t);       /* C++ thread_local first, as glibc */
    green__locals_run_destructors(t);
    if (green__thread_exit_hook)
        green__thread_exit_hook(t);
    t->result = result;
    if (green__sig_life)
        green__sig_life(t, -1);
    sched_enter(c);
    if (c->hub_index >= 0)
        green__hubs_count(c, -1);
    green__hubs_finish(t);         /* DONE, ordered with other hubs' joins */
    if (t->switched_to)
        resume_switchers(c, t);
    green__waitq_wake_all(&t->joiners, 0);
    /* green_run waits for nthreads 0 on main, 1 (itself) on any other
     * thread; waiters re-check, so waking at 1 is only a spurious wake. */
    if (--c->nthreads <= 1)
        green__waitq_wake_all(&c->all_done, 0);
    green__assert("hub", c->dead == NULL);
    c->dead = t;
    green__tls_release(c, t);      /* nothing of the program runs now */
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
    green__run_resume(t);          /* a handler sent before it ever ran */
    if (!t->killed)
        r = t->fn(t->arg);
    if (t->is_main)
        green_exit(r);             /* a fork made it the child's main */
    green__thread_finish(t, r);
}

struct green_thread *green__thread_create(void *(*fn)(void *), void *arg,
                                          const green_attr_t *attr, int *err)
{
    return green__thread_create_on(fn, arg, attr, NULL, 0, err, NULL, NULL);
}

struct green_thread *green__thread_create_on(void *(*fn)(void *), void *arg,
                                             const green_attr_t *attr,
                                             void *stack, size_t size, int *err,
                                             void (*init)(struct green_thread *t, void *init_arg),
                                             void *init_arg)
{
    struct green__ctx *c = green__ctx_get();
    if (!c) {
        *err = ENOMEM;
        return NULL;
    }
    struct green_thread *t = green__thread_alloc(c, attr ? attr->name : NULL);
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
#ifdef GREEN_ASAN
    t->asan_bottom = t->stack.lo;
    t->asan_size = (size_t)((char *)t->stack.hi - (char *)t->stack.lo);
#endif
    t->sp = green__ctx_make(t->stack.lo, t->stack.hi, thread_entry, t);
#ifdef GREEN_TSAN
    t->tsan_fiber = __tsan_create_fiber(0);   /* destroyed by reap_dead */
#endif
    int te = green__tls_thread_init(c, t);
    if (te) {
        if (!t->user_stack)
            green__stack_put(&t->stack);
        thread_put(t);
        *err = te;
        return NULL;
    }
    t->state = GREEN_NEW;
    t->sig_blocked = c->current->sig_blocked;   /* as pthread_create */
    if (init)
        init(t, init_arg);
    struct green__ctx *to = green__hubs_place(c);
    if (to != c || c->hub_index >= 0)
        green__hubs_count(to, +1);
    if (to != c) {
        t->ctx = to;
        green__hubs_send(to, t);   /* green__thread_adopt, over there */
        return t;
    }
    green__thread_adopt(c, t);
    return t;
}

void green__thread_adopt(struct green__ctx *c, struct green_thread *t)
{
    c->nthreads++;
    green__all_link(c, t);
    green__tls_adopt(c, t);
    if (green__sig_life)
        green__sig_life(t, +1);
    runq_push(c, t);
    ensure_hub_queued(c);
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
    return getpid() == (pid_t)green__syscall(SYS_gettid);
}

/* ------------------------------------------------------------- run as */

void (*volatile green__sig_life)(struct green_thread *t, int delta);

/* green__call_on: the context made on the other stack. */
struct call_on {
    void (*fn)(void *);
    void *arg;
    void *back;                    /* the caller's saved context */
    const void *back_bottom;       /* the caller's stack, for ASan */
    size_t back_size;
#ifdef GREEN_TSAN
    void *back_fiber;              /* the caller's TSan fiber */
#endif
};

static void call_on_entry(void *p)
{
    struct call_on *r = p;
#ifdef GREEN_ASAN
    __sanitizer_finish_switch_fiber(NULL, &r->back_bottom, &r->back_size);
#endif
    r->fn(r->arg);
    void *junk;
#ifdef GREEN_ASAN
    __sanitizer_start_switch_fiber(NULL, r->back_bottom, r->back_size);
#endif
#ifdef GREEN_TSAN
    __tsan_switch_to_fiber(r->back_fiber, 0);
#endif
    green__ctx_switch(&junk, r->back);
    green__panic("hub", __FILE__, __LINE__, "an abandoned call_on context was resumed");
}

void green__call_on(void *lo, void *hi, void (*fn)(void *), void *arg)
{
    struct call_on r = { .fn = fn, .arg = arg };
    void *sp = green__ctx_make(lo, hi, call_on_entry, &r);
#ifdef GREEN_ASAN
    /* Dead frames left in [lo, hi) (a thread's stack below its saved
     * context, an alternate stack used before) keep their redzones'
     * poison. */
    __asan_unpoison_memory_region(lo, (size_t)((char *)hi - (char *)lo));
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, lo, (size_t)((char *)hi - (char *)lo));
#endif
#ifdef GREEN_TSAN
    /* A fiber of its own for the borrowed stack: call_on_entry never
     * returns, so its frames would stay on the caller's shadow call
     * stack; they go with this fiber instead. */
    r.back_fiber = __tsan_get_current_fiber();
    void *fiber = __tsan_create_fiber(0);
    __tsan_switch_to_fiber(fiber, 0);
#endif
    green__ctx_switch(&r.back, sp);
#ifdef GREEN_TSAN
    __tsan_destroy_fiber(fiber);
#endif
#ifdef GREEN_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
    /* call_on_entry never returns: its frame's redzones stay poisoned and
     * the stack grows into them later. */
    __asan_unpoison_memory_region(lo, (size_t)((char *)hi - (char *)lo));
#endif
}

/* green__run_as: fn as t, on t's stack (green__call_on). */
struct run_as {
    void (*fn)(void *);
    void *arg;
    struct green_thread *t;
};

static void run_as_body(void *p)
{
    struct run_as *r = p;
    struct green_thread *t = r->t;
    uint8_t kp = t->kill_pending;
    t->kill_pending = kp | GREEN__KP_SIGNAL;
    errno = t->saved_errno;
    r->fn(r->arg);
    t->saved_errno = errno;
    t->kill_pending = (uint8_t)(t->kill_pending & ~GREEN__KP_SIGNAL);
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
    int e = *green__errno_now();
    /* From the hub: it is running, not queued, although current is t for
     * a while; ensure_hub_queued must not queue it (hub_main queues
     * itself when it needs to). */
    bool hq = c->hub_queued;
    if (self == c->hub)
        c->hub_queued = true;
    /* The handler's CPU time is t's (counting, cpuclock.c), as natively a
     * handler's is its thread's. */
    bool count = c->cpu_turns;
    if (count) {
        green__cpu_seq_begin(c);
        green__cpu_switch(c, self);
    }
    __atomic_store_n(&c->current, t, __ATOMIC_RELEASE);
    if (count)
        green__cpu_seq_end(c);
    green__tls_enter(c, t);        /* the handler sees t's thread-locals */
    green__locale_enter(c, t);     /* and its locale */
    green__alt_enter(c, self, t);  /* and its alternate signal stack */
    green__call_on((void *)lo, (void *)hi, run_as_body, &r);
    if (count) {
        green__cpu_seq_begin(c);
        green__cpu_switch(c, t);
    }
    __atomic_store_n(&c->current, self, __ATOMIC_RELEASE);
    if (count)
        green__cpu_seq_end(c);
    green__tls_enter(c, self);
    green__locale_enter(c, self);
    green__alt_enter(c, t, self);
    if (self == c->hub)
        c->hub_queued = hq;
    *green__errno_now() = e;
}

uint64_t green__sig_keep_open;

void green__block_all_signals(sigset_t *old)
{
    /* Every signal but glibc's two internal ones (32, 33: cancellation
     * and setxid, which glibc never lets a thread block). */
    uint64_t all = ~(uint64_t)0 & ~(3ULL << 31) & ~green__sig_keep_open;
    memset(old, 0, sizeof *old);
    green__syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, old, sizeof all);
}

void green__restore_signals(const sigset_t *old)
{
    green__syscall(SYS_rt_sigprocmask, SIG_SETMASK, old, NULL, sizeof(uint64_t));
}

/*
 * pthread_sync.c - pthread mutexes, condition variables, rwlocks,
 * barriers, spinlocks and unnamed semaphores as cooperative green
 * primitives, kept inside the storage the program already gave them. This
 * file holds the essay and what the object files share (naps, the wait
 * policies, wake-ups from outside); the objects are in pthread_mutex.c
 * (private, shared and robust, libc-only mutexes), pthread_cond.c,
 * pthread_rwlock.c, pthread_barrier.c (barriers and spinlocks),
 * pthread_sem.c, and threads_c11_sync.c (C11 mtx_t and cnd_t).
 *
 * Layout. Each object overlays its glibc type (x86-64 and aarch64 sizes:
 * mutex 40, cond 48, rwlock 56, barrier 32, sem 32 bytes) with a struct of
 * our own, checked by _Static_assert; a private mutex, condition variable,
 * rwlock or semaphore is the lock core's struct (libgreen/lock.h) at
 * offset 0. The wait queue is an intrusive list head (two pointers)
 * embedded in the storage, so nothing is ever allocated, contended or
 * not. The layouts are chosen so that glibc's static initialisers decode
 * correctly:
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
 * Waits and hand-off are the lock core's (libgreen/lock.c): unlocking a
 * mutex with waiters makes the first waiter the owner before readying it
 * (FIFO, no thundering herd; across OS threads a mutex barges with
 * a starvation bound, see "No convoys" in lock.c), and the same holds for rwlocks
 * and semaphore units. What this layer adds is its policy
 * (green__pt_lock_how below): a lock wait may fail only with ETIMEDOUT,
 * and glibc's kinds, error numbers and deadlines on a clock.
 *
 * Process-shared and robust mutexes, and process-shared condition
 * variables, barriers and rwlocks, hold no pointer (the memory may be
 * shared with a forked process): owners are 64-bit ids (pid and green
 * thread id) and waiters nap between tries; see "shared and robust
 * mutexes" in pthread_mutex.c. Priority-protocol mutexes and
 * process-shared or named semaphores use libc's layout: libc does every
 * operation, and the blocking forms become a try-and-nap loop so that the
 * OS thread keeps running the other green threads (a priority-protocol
 * mutex is owned by the OS thread, shared by all green threads: a
 * documented limit).
 *
 * Mixed use. Under the shim the private, non-robust, non-PI objects have
 * the core's layout whoever touches them: green threads of any hub, and
 * plain OS threads (threads the shim did not create: libc's
 * pthread_create reached through dlsym, threads from before the
 * constructor, glibc's SIGEV_THREAD helpers), whose hooks use the lock
 * core too (green__pt_plain) and block on a futex; libc's functions do
 * not understand that layout. jemalloc's background thread in redis is
 * such a thread, waiting on a condition variable the green main thread
 * signals. A plain thread's shared, robust or PI objects stay libc's; an
 * object locked by libc before the shim's constructor ran is still
 * misread (libgreen's own workers never mix: they use their own objects
 * through real.h).
 *
 * sem_post (async-signal-safe) and pthread_cond_signal/broadcast may come
 * from a signal handler that runs on the hub: they cannot take the core's
 * stripe locks (the interrupted code may hold one), so they wake the
 * green waiters through an ev_async ("Wake-ups from outside" below). A
 * post from a handler that interrupted a running green thread takes the
 * ordinary path, which touches the run queue: a narrow window,
 * documented. A plain OS thread posts and signals through the core.
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

/* --------------------------------------------------------------- helpers */

/* Sleep between two tries of a libc-only or shared object: yield first,
 * then 50 us doubling to 5 ms, never past the deadline. Returns the next
 * nap. A kill (ECANCELED) does not cut the nap short, or a waiter with a
 * kill pending would spin without ever letting the others run: it is
 * remembered for the caller's next park. */
int64_t green__pt_nap(int64_t ns, int64_t deadline)
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

/* A lock wait was killed: with an asynchronous cancel pending (and
 * enabled) the thread ends here, as glibc's SIGCANCEL would end it in the
 * futex wait; otherwise the kill is remembered for the next park. */
bool green__pt_async_cancel_pending(void)
{
    struct green_thread *t = green__current();
    return ((uintptr_t)t->user & PT_FLAGS) == (PT_CANCEL_REQUESTED | PT_CANCEL_ASYNC);
}

void green__pt_lock_killed(void)
{
    struct green_thread *t = green__current();
    if (((uintptr_t)t->user & PT_FLAGS) == (PT_CANCEL_REQUESTED | PT_CANCEL_ASYNC))
        green__pt_cancel_now();
}

/* A lock that may not fail: only a deadline ends the wait; a kill is
 * deferred (and acts now if it is an asynchronous cancel); a signal's
 * EINTR makes it wait on. */
const struct green__lock_how green__pt_lock_how = {
    .defer_kill = true,
    .retry_other = true,
    .on_kill = green__pt_lock_killed,
};

/* Wake-ups from outside. sem_post is async-signal-safe and programs post
 * from signal handlers, which run on the hub while everything is parked.
 * Touching the run queue or the core's stripes there is not safe, so
 * such a call only records what happened (the unit is added
 * atomically by the caller) and pokes the hub of the green waiters
 * through an ev_async (signal- and thread-safe). Its callback, on the
 * hub, readies with EAGAIN every green thread parked in a wait of that
 * kind: a sem waiter re-tries its semaphore, a condition waiter returns
 * as from a spurious wake-up (which pthreads allow). */
struct outside_waker {
    ev_async w;                   /* poked by outside posts and signals */
    struct green__ctx *ctx;       /* hub whose waiters it wakes */
    atomic_int pending;           /* GREEN__PT_OUTSIDE_* kinds poked since
                                     the last run */
    struct outside_waker *next;   /* the waker of the hub made before */
};
/* One per hub that ever had a green sem or cond waiter (with several
 * hubs, any of them may hold the waiter an outside post is for): a list
 * that only grows, pushed with a compare-and-swap, read by a signal
 * handler. */
static struct outside_waker *_Atomic outside_wakers;
static __thread struct outside_waker *my_waker __attribute__((tls_model("initial-exec")));
/* wnode.data of a green thread parked in a sem / cond wait (8-aligned:
 * the lock core keeps its own bits below). */
static _Alignas(8) const char sem_wait_mark, cond_wait_mark;

/* A sem or cond waiter parks with its mark, so that an outside call can
 * wake it. For a semaphore (which a signal handler may post), and for a
 * condition variable under the shim, the hub keeps polling while we wait
 * rather than declaring a deadlock that the outside wake-up would then
 * find it stuck in. The retake of a condition wait is a lock wait. */
const struct green__lock_how green__pt_sem_how = {
    .mark = &sem_wait_mark,
    .expect_remote = true,
};
const struct green__lock_how green__pt_cond_how[2] = {
    { .mark = &cond_wait_mark, .expect_remote = false, .defer_kill = true,
      .retry_other = true, .on_kill = green__pt_lock_killed },
    { .mark = &cond_wait_mark, .expect_remote = true, .defer_kill = true,
      .retry_other = true, .on_kill = green__pt_lock_killed },
};

static void outside_waker_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop; (void)revents;
    struct outside_waker *k = (struct outside_waker *)w;
    int kinds = atomic_exchange(&k->pending, 0);
    for (struct green_thread *t = k->ctx->all; t; t = t->all_next) {
        if (t->state != GREEN_PARKED || !t->wnode.data)
            continue;
        if (((kinds & GREEN__PT_OUTSIDE_SEM) && t->wnode.data == (uintptr_t)&sem_wait_mark) ||
            ((kinds & GREEN__PT_OUTSIDE_COND) && t->wnode.data == (uintptr_t)&cond_wait_mark))
            green__ready(t, EAGAIN);
    }
}

/* Make sure outside wake-ups can reach this hub's waiters. */
void green__pt_outside_ensure(void)
{
    if (green__likely(my_waker != NULL))
        return;
    struct outside_waker *k = calloc(1, sizeof *k);
    if (!k)
        return;
    k->ctx = green__tls_ctx;
    ev_async_init(&k->w, outside_waker_cb);
    ev_async_start(k->ctx->loop, &k->w);
    ev_unref(k->ctx->loop);   /* it must not hide a deadlock by itself */
    my_waker = k;
    k->next = atomic_load_explicit(&outside_wakers, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&outside_wakers, &k->next, k,
                                                  memory_order_release,
                                                  memory_order_relaxed))
        ;
}

/* Async-signal-safe and thread-safe. Pokes every hub that has a waker
 * (no green thread ever waited: nobody to wake). */
void green__pt_outside_poke(int kind)
{
    for (struct outside_waker *k = atomic_load_explicit(&outside_wakers, memory_order_acquire);
         k; k = k->next) {
        atomic_fetch_or(&k->pending, kind);
        green__async_send(k->ctx->loop, &k->w);
    }
}

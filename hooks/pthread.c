/*
 * pthread.c - under the shim every pthread is a green thread: thread life
 * (create, join, detach, exit, self), names, keys, once, kill and deferred
 * cancellation with cleanup handlers. This essay is the thread family's;
 * its code is split by subsystem:
 *   pthread.c         who is green, thread life (create, join, detach,
 *                     exit, self), cleanup handlers, kill and sigqueue,
 *   pthread_attr.c    attributes: of a new thread, names, getattr_np,
 *                     OS-thread-wide ones (affinity, CPU clock), scheduling
 *   pthread_key.c     keys and once
 *   pthread_cancel.c  cancellation: requests, state and type, the
 *                     cancellation point
 *   threads_c11.c     C11 <threads.h>: thrd_*, tss_*, call_once
 *   pthread_sync.c    the synchronisation objects (and mtx_*, cnd_*)
 * What they share is in pthread_internal.h.
 *
 * What it is. pthread_create spawns a green thread, on the hub that
 * placement picks (libgreen/hubs.c: with GREEN_HUBS > 1 maybe another OS
 * thread's), and the pthread_t it returns IS the green handle (struct
 * green_thread *) cast to pthread_t; join, detach, exit, keys map one to
 * one onto the green API, which works across hubs.
 * The synchronisation objects are in pthread_sync.c.
 *
 * Who is green. A hook acts when green__pt_on() says so: the caller is a
 * green thread other than the hub and the THREAD family is on (libgreen's
 * own calls never reach a hook: they go to real.h's table). The main OS thread adopts its
 * hub at the first thread-family call (green__pt_adopt), so the value of
 * pthread_self() never changes under the program's feet and every lock it
 * takes is green from the start. Other OS threads without a hub (the
 * offload workers, threads created before the shim was on) stay plain OS
 * threads: their pthread_self() is the real one and their calls go to libc.
 * Mixing both kinds of thread on one lock is not supported; under the shim
 * it does not happen, because every thread the program creates is green.
 *
 * Invariants.
 *  - A pthread_t handed to the program by a green caller is a live or
 *    joinable green handle; a pthread_t equal to the real pthread_self() of
 *    the calling OS thread is a real one (the only real value a green
 *    caller can have seen).
 *  - Keys made by green callers are numbered from GREEN_PT_KEY_BASE up, so
 *    they never collide with real keys (0..PTHREAD_KEYS_MAX-1) that a
 *    library may have created before the shim was on; a real key used from
 *    a green thread goes to libc (one value per OS thread).
 *  - green_thread.user is this layer's word: the innermost cleanup buffer
 *    (pthread_cleanup_push) with three flag bits below it (see PT_*).
 *
 * Cancellation. pthread_cancel is deferred, as the default pthread cancel
 * type: it marks the target and green_kill()s it, so the target's current
 * or next park fails with ECANCELED. The cancellation points of this layer
 * (join, cond waits, sem waits, pthread_testcancel) then run the thread's
 * cleanup handlers (pthread_cleanup_push registers them through
 * __pthread_register_cancel, which we interpose) by longjmp into each
 * handler's frame, exactly as glibc's unwinder does for C code, and end the
 * thread with PTHREAD_CANCELED. Hooks of the other families return -1 with
 * errno ECANCELED from a cancelled park unless they call
 * green__pt_cancel_point(); PTHREAD_CANCEL_ASYNCHRONOUS acts at the thread's next hooked call of
 * the thread family (green__pt_enter) and at every park;
 * C++ destructors are not run by a green cancellation (no forced unwind).
 *
 * pthread_kill, pthread_sigqueue. Signal 0 checks that the thread exists
 * (0 or ESRCH). Any other signal goes to hooks/signal.c, which runs the
 * handler as the target green thread (its pthread_self, on its stack),
 * then makes the target's interruptible blocking call fail with EINTR or
 * restart per SA_RESTART, as the kernel would do it; a signal the target
 * blocks stays pending for it.
 *
 * C11 <threads.h>. glibc builds thrd_create, mtx_lock, cnd_wait, tss_get
 * and call_once on its pthreads by direct calls that no interposition
 * sees, so they are interposed by name as well and mapped onto the same
 * hooks (threads_c11.c and the end of pthread_sync.c).
 *
 * Limits, documented. Keys created before the shim's constructor ran (a
 * sanitizer runtime, another library's constructor) are libc keys: their
 * value is per OS thread, shared by the green threads. A pthread object
 * shared between a green thread and a plain OS thread (a SIGEV_THREAD
 * timer's notify function, which glibc runs on a thread of its own) is
 * not supported, except sem_post and pthread_cond_signal/broadcast from
 * such a thread (pthread_sync.c, "Wake-ups from outside"); it must not
 * lock a mutex that green threads use. flockfile and stdio's
 * own locks belong to the OS thread: every green thread "owns" them.
 *
 * Scheduling attributes (policy, priority) are kept per green thread and
 * read back; nothing is applied to the OS thread. Fair turns: the hooks
 * of this family that may be called in a busy-wait loop take a fair turn
 * (green__pt_enter, green__fair_turn in the core).
 *
 * Rejected: a side table from pthread_t to green handle (one more lookup
 * on every call and a lock, for nothing: the handle is the value);
 * emulating pthread_self() with a per-OS-thread value (every green thread
 * would compare equal); allocating per-thread pthread state (the three
 * flags and one pointer fit in green_thread.user).
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include "hooks_signal.h"
#include <setjmp.h>
#include <string.h>

/* The OS thread kind, cached: 0 not yet known, 1 main, 2 other, 3 main
 * while it adopts its hub. */
static __thread signed char os_kind __attribute__((tls_model("initial-exec")));

/* ---------------------------------------------------------- who is green */

bool green__pt_adopt(void)
{
    if (os_kind == 0)
        os_kind = green__is_main_os_thread() ? 1 : 2;
    if (os_kind != 1)
        return false;
    /* Making the hub allocates, and a malloc that locks pthread mutexes
     * (jemalloc: redis) comes back here: meanwhile the thread is a plain
     * one (green__pt_plain), not a second adoption. */
    os_kind = 3;
    struct green__ctx *c = green__ctx_get();
    os_kind = 1;
    return c && c->current != c->hub;
}

int green__pt_deadline(clockid_t clk, const struct timespec *abs, int64_t *deadline)
{
    if (!abs || abs->tv_nsec < 0 || abs->tv_nsec >= 1000000000 ||
        (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC))
        return EINVAL;
    if (abs->tv_sec < 0) {
        *deadline = 0;
        return 0;
    }
    if (abs->tv_sec > INT64_MAX / 1000000000 - 2) {
        *deadline = GREEN_FOREVER;
        return 0;
    }
    int64_t t = (int64_t)abs->tv_sec * 1000000000 + abs->tv_nsec;
    if (clk == CLOCK_REALTIME) {
        struct timespec now;
        GREEN_REAL(clock_gettime)(CLOCK_REALTIME, &now);
        t = green_now() + (t - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec));
    }
    *deadline = t < 0 ? 0 : t;
    return 0;
}

/* --------------------------------------------------------- thread life */

/* Set before the new thread may run (on another hub it may run at once):
 * its scheduling attributes, and the caller's pthread_t, which glibc too
 * stores before the thread starts (a thread may read the global its
 * creator stored it in). */
struct create_init {
    pthread_t *th;
    int policy, prio;
};

static void create_init(struct green_thread *t, void *arg)
{
    struct create_init *ci = arg;
    t->sched_policy = ci->policy;
    t->sched_prio = ci->prio;
    green__sched_rank_set(t, green__pt_rank(ci->policy, ci->prio));
    *ci->th = (pthread_t)t;
}

int green_hook_pthread_create(pthread_t *th, const pthread_attr_t *attr,
                              void *(*fn)(void *), void *arg)
{
    if (!green__pt_on())
        return GREEN_REAL(pthread_create)(th, attr, fn, arg);
    green_attr_t ga = { .stack_size = green__pt_attr_stack_size(attr) };
    int ds = PTHREAD_CREATE_JOINABLE;
    if (attr && pthread_attr_getdetachstate(attr, &ds) != 0)
        return EINVAL;
    ga.detached = ds == PTHREAD_CREATE_DETACHED;
    struct green_thread *self = green__current();
    ga.name = self->name;          /* as the kernel copies comm at clone */
    int policy = self->sched_policy, prio = self->sched_prio;
    int e = green__pt_attr_sched(attr, &policy, &prio);
    if (e)
        return e;
    void *stk = NULL;
    size_t stksize = 0;
    green__pt_user_stack(attr, &stk, &stksize);
    int saved = errno;
    int err = 0;
    struct create_init ci = { th, policy, prio };
    /* Ranks order only the threads of one hub: a realtime thread, or one
     * a realtime thread creates, stays on its creator's hub (as a
     * realtime program pinned to one CPU), and one ranked above its
     * creator runs before pthread_create returns (libgreen/sched.c,
     * "Priorities"). */
    int rank = green__pt_rank(policy, prio), mine = green__sched_rank(self);
    bool here = rank > 0 || mine > 0, above = rank > mine;
    green__spawn_here += here;
    struct green_thread *t = green__thread_create_on(fn, arg, &ga, stk, stksize, &err,
                                                     create_init, &ci);
    green__spawn_here -= here;
    errno = saved;
    if (!t)
        return err == EINVAL ? EINVAL : EAGAIN;
    if (above)
        green__prio_preempt();
    return 0;
}

/* Join t with deadline; pthread error numbers. A cancellation point. */
int green__pt_join(struct green_thread *t, void **ret, int64_t deadline)
{
    struct green_thread *self = green__current();
    if (!t || t->gone || t->is_hub)
        return ESRCH;
    if (t == self)
        return EDEADLK;
    if (t->detached || t->joining || t->is_main)
        return EINVAL;
    green__pt_cancel_point(0);
    int saved = errno;
    for (;;) {
        int64_t left = deadline < 0 ? GREEN_FOREVER
                                    : (deadline > green_now() ? deadline - green_now() : 0);
        if (green_join_timeout(t, ret, left) == 0)
            break;
        int e = errno;
        if (e == EINTR)
            continue;   /* pthread_join never fails with EINTR */
        if (e != ECANCELED) {
            errno = saved;
            return e;
        }
        green__pt_cancel_point(ECANCELED);
    }
    errno = saved;
    return 0;
}

/* A green caller joins a plain OS thread (libc's own pthread_create, as
 * jemalloc's background thread): libc's join would block the hub in the
 * kernel, so try and nap (yield, then 50 us doubling to 5 ms) until
 * libc's tryjoin stops saying EBUSY. */
static int plain_join(pthread_t th, void **ret)
{
    int64_t ns = 0;
    for (;;) {
        int e = GREEN_REAL(pthread_tryjoin_np)(th, ret);
        if (e != EBUSY)
            return e;
        ns = green__pt_nap(ns, GREEN_FOREVER);
    }
}

int green_hook_pthread_join(pthread_t th, void **ret)
{
    if (!green__pt_on_turn())
        return GREEN_REAL(pthread_join)(th, ret);
    if (!green__pt_handle_of(th))
        return th == GREEN_REAL(pthread_self)() ? GREEN_REAL(pthread_join)(th, ret)
                                                : plain_join(th, ret);
    return green__pt_join(green__pt_handle_of(th), ret, GREEN_FOREVER);
}

int green_hook_pthread_tryjoin_np(pthread_t th, void **ret)
{
    if (!green__pt_on_turn() || !green__pt_handle_of(th))
        return GREEN_REAL(pthread_tryjoin_np)(th, ret);
    struct green_thread *t = green__pt_handle_of(th);
    if (!t->gone && t->state != GREEN_DONE && !t->is_main &&
        t != green__current() && !t->detached)
        return EBUSY;
    return green__pt_join(t, ret, 0);
}

int green_hook_pthread_timedjoin_np(pthread_t th, void **ret,
                                    const struct timespec *abs)
{
    if (!green__pt_on() || !green__pt_handle_of(th))
        return GREEN_REAL(pthread_timedjoin_np)(th, ret, abs);
    int64_t deadline = GREEN_FOREVER;
    if (abs) {
        int e = green__pt_deadline(CLOCK_REALTIME, abs, &deadline);
        if (e)
            return e;
    }
    return green__pt_join(green__pt_handle_of(th), ret, deadline);
}

int green_hook_pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clk,
                                    const struct timespec *abs)
{
    if (!green__pt_on() || !green__pt_handle_of(th))
        return GREEN_REAL(pthread_clockjoin_np)(th, ret, clk, abs);
    int64_t deadline = GREEN_FOREVER;
    if (abs) {
        int e = green__pt_deadline(clk, abs, &deadline);
        if (e)
            return e;
    }
    return green__pt_join(green__pt_handle_of(th), ret, deadline);
}

int green_hook_pthread_detach(pthread_t th)
{
    if (!green__pt_on() || !green__pt_handle_of(th))
        return GREEN_REAL(pthread_detach)(th);
    struct green_thread *t = green__pt_handle_of(th);
    if (t->is_hub || t->gone)
        return ESRCH;
    if (t->is_main)
        return 0;   /* nothing to free; main is never joined anyway */
    int saved = errno;
    int rc = green_detach(t) == 0 ? 0 : EINVAL;
    errno = saved;
    return rc;
}

/* Run the innermost cleanup handler by jumping into its frame (the
 * pthread_cleanup_push expansion calls the routine, then
 * __pthread_unwind_next), or end the thread with value when none is left. */
_Noreturn void green__pt_unwind_or_exit(struct green_thread *t, void *value)
{
    __pthread_unwind_buf_t *b = (void *)(green__pt_uw(t) & ~PT_FLAGS);
    if (!b)
        green_exit(value);
    green__pt_set_uw(t, (uintptr_t)b->__pad[0] | (green__pt_uw(t) & PT_FLAGS));
    b->__pad[1] = value;
    /* The buffer is a __jmp_buf_tag without its signal mask, which
     * __sigsetjmp(buf, 0) in pthread_cleanup_push never saved. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
    siglongjmp((struct __jmp_buf_tag *)(void *)b->__cancel_jmp_buf, 1);
#pragma GCC diagnostic pop
}

_Noreturn void green_hook_pthread_exit(void *ret)
{
    if (!green__pt_on())
        GREEN_REAL(pthread_exit)(ret);
    green__pt_unwind_or_exit(green__current(), ret);
}

pthread_t green_hook_pthread_self(void)
{
    if (!green__pt_on_turn())
        return GREEN_REAL(pthread_self)();
    return (pthread_t)green__current();
}

int green_hook_pthread_equal(pthread_t a, pthread_t b)
{
    if (green__pt_on())
        green__pt_enter();   /* a wait loop may compare handles only */
    return a == b;
}

/* ------------------------------------------------------ cleanup handlers */

/* Cleanup handlers (pthread_cleanup_push/pop in C). The list is linked
 * through __pad[0] of each buffer, on the green thread's own stack. These
 * three must not consult green__pt_on's family switch once a buffer is
 * linked into a green thread, so they test the current thread directly. */
void green_hook___pthread_register_cancel(__pthread_unwind_buf_t *buf)
{
    if (!green__pt_on()) {
        GREEN_REAL(__pthread_register_cancel)(buf);
        return;
    }
    struct green_thread *t = green__current();
    buf->__pad[0] = (void *)(green__pt_uw(t) & ~PT_FLAGS);
    green__pt_set_uw(t, (uintptr_t)buf | (green__pt_uw(t) & PT_FLAGS));
}

void green_hook___pthread_unregister_cancel(__pthread_unwind_buf_t *buf)
{
    if (!green__pt_on()) {
        GREEN_REAL(__pthread_unregister_cancel)(buf);
        return;
    }
    struct green_thread *t = green__current();
    green__pt_set_uw(t, (uintptr_t)buf->__pad[0] | (green__pt_uw(t) & PT_FLAGS));
}

_Noreturn void green_hook___pthread_unwind_next(__pthread_unwind_buf_t *buf)
{
    if (!green__pt_on()) {
        GREEN_REAL(__pthread_unwind_next)(buf);
        __builtin_unreachable();
    }
    green__pt_unwind_or_exit(green__current(), buf->__pad[1]);
}

/* ------------------------------------------------------------- signals */

int green_hook_pthread_kill(pthread_t th, int sig)
{
    if (!green__pt_on() || !green__pt_handle_of(th))
        return GREEN_REAL(pthread_kill)(th, sig);
    struct green_thread *t = green__pt_handle_of(th);
    if (sig < 0 || sig >= NSIG)
        return EINVAL;
    if (t->is_hub || t->state == GREEN_DONE)
        return ESRCH;
    if (sig == 0)
        return 0;
    return green__sig_interrupt(t, sig);   /* hooks/signal.c: EINTR for t */
}

/* As pthread_kill: the handler runs in the target (hooks/signal.c). */
int green_hook_pthread_sigqueue(pthread_t th, int sig, const union sigval v)
{
    struct green_thread *t;
    if (!green__pt_on() || !(t = green__pt_handle_of(th)))
        return GREEN_REAL(pthread_sigqueue)(th, sig, v);
    if (sig < 0 || sig >= NSIG)
        return EINVAL;
    if (t->is_hub || t->state == GREEN_DONE)
        return ESRCH;
    return sig ? green__sig_queue(t, sig, &v) : 0;
}

/*
 * pthread_cancel.c - cancellation of green pthreads: pthread_cancel,
 * pthread_setcancelstate/setcanceltype, pthread_testcancel, and the
 * cancellation point that the blocking hooks of every family call
 * (green__pt_cancel_point). How a request travels (a green_kill that
 * fails the target's park with ECANCELED, then the cleanup handlers by
 * longjmp, then the end of the thread with PTHREAD_CANCELED) is told in
 * the essay at the top of pthread.c, where the cleanup handlers and
 * their unwinder (green__pt_unwind_or_exit) live.
 *
 * Invariants. The cancellation state is the three flag bits of
 * green_thread.user (PT_CANCEL_REQUESTED, PT_CANCEL_DISABLED,
 * PT_CANCEL_ASYNC, pthread_internal.h) below the innermost cleanup
 * buffer. A request is acted on once: the thread disables cancellation
 * as it starts to unwind, so cleanup handlers that call cancellation
 * points run to their end, as in glibc. A request that arrives while
 * cancellation is disabled is kept and acts at the next cancellation
 * point after it is enabled again.
 *
 * Rejected: acting on a deferred request wherever a park fails with
 * ECANCELED. A mutex lock is not a cancellation point and may not fail:
 * a kill that arrives there is re-armed (green__pt_rearm_kill) for the
 * caller's next park instead.
 */
#define _GNU_SOURCE
#include "pthread_internal.h"

/* --------------------------------------------------------- cancellation */

void green__pt_rearm_kill(void)
{
    struct green_thread *t = green__current();
    if (t)
        t->kill_pending = true;
}

_Noreturn void green__pt_cancel_now(void)
{
    struct green_thread *t = green__current();
    t->kill_pending = false;
    green__pt_set_uw(t, green__pt_uw(t) | PT_CANCEL_DISABLED);
    green__pt_unwind_or_exit(t, PTHREAD_CANCELED);
}

/* Enabled, requested and asynchronous: act now (glibc does the same in
 * pthread_setcancelstate/type and in a pthread_cancel of oneself). */
static void cancel_if_async(struct green_thread *t, void *value)
{
    if ((green__pt_uw(t) & PT_FLAGS) != (PT_CANCEL_REQUESTED | PT_CANCEL_ASYNC))
        return;
    t->kill_pending = false;
    green__pt_set_uw(t, green__pt_uw(t) | PT_CANCEL_DISABLED);
    green__pt_unwind_or_exit(t, value);
}

int green__pt_cancel_point(int code)
{
    struct green_thread *t = green__current();
    if (!t || t->is_hub)
        return code;
    if ((green__pt_uw(t) & (PT_CANCEL_REQUESTED | PT_CANCEL_DISABLED)) !=
        PT_CANCEL_REQUESTED)
        return code;
    t->kill_pending = false;
    /* Acted on once: cleanup handlers that call cancellation points
     * (write, close, sleep) must run to their end, as in glibc. */
    green__pt_set_uw(t, green__pt_uw(t) | PT_CANCEL_DISABLED);
    green__pt_unwind_or_exit(t, PTHREAD_CANCELED);
}

/* The request, on t's own hub (t->user is the thread's word, changed by
 * its own cleanup pushes). */
static void cancel_apply(struct green_thread *t, intptr_t a, void *p)
{
    (void)a; (void)p;
    green__pt_set_uw(t, green__pt_uw(t) | PT_CANCEL_REQUESTED);
    if (t == green__current())
        cancel_if_async(t, PTHREAD_CANCELED);
    /* A thread that never ran is killed outright (result PTHREAD_CANCELED,
     * which is GREEN_CANCELED); a running or parked one at its next
     * cancellation point, unless it disabled cancellation. */
    if (!(green__pt_uw(t) & PT_CANCEL_DISABLED))
        green__thread_kill(t);
}

int green_hook_pthread_cancel(pthread_t th)
{
    if (!green__pt_on() || !green__pt_handle_of(th))
        return GREEN_REAL(pthread_cancel)(th);
    struct green_thread *t = green__pt_handle_of(th);
    if (t->is_hub || t->gone)
        return ESRCH;
    if (t->state == GREEN_DONE)
        return 0;
    if (t == green__current())
        cancel_apply(t, 0, NULL);
    else if (green__on_hub(t, cancel_apply, 0, NULL) != 0)
        return ESRCH;   /* no memory to reach its hub: it is not touched */
    return 0;
}

int green_hook_pthread_setcancelstate(int state, int *old)
{
    if (!green__pt_on())
        return GREEN_REAL(pthread_setcancelstate)(state, old);
    if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE)
        return EINVAL;
    struct green_thread *t = green__current();
    if (old)
        *old = (green__pt_uw(t) & PT_CANCEL_DISABLED) ? PTHREAD_CANCEL_DISABLE
                                              : PTHREAD_CANCEL_ENABLE;
    if (state == PTHREAD_CANCEL_DISABLE)
        green__pt_set_uw(t, green__pt_uw(t) | PT_CANCEL_DISABLED);
    else
        green__pt_set_uw(t, green__pt_uw(t) & ~PT_CANCEL_DISABLED);
    /* A request that arrived while disabled acts at the next point. */
    if (state == PTHREAD_CANCEL_ENABLE && (green__pt_uw(t) & PT_CANCEL_REQUESTED))
        t->kill_pending = true;
    /* glibc 2.36 ends the thread here without setting its result: a
     * joiner sees NULL, not PTHREAD_CANCELED. Same here. */
    cancel_if_async(t, NULL);
    return 0;
}

int green_hook_pthread_setcanceltype(int type, int *old)
{
    if (!green__pt_on())
        return GREEN_REAL(pthread_setcanceltype)(type, old);
    if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS)
        return EINVAL;
    struct green_thread *t = green__current();
    if (old)
        *old = (green__pt_uw(t) & PT_CANCEL_ASYNC) ? PTHREAD_CANCEL_ASYNCHRONOUS
                                           : PTHREAD_CANCEL_DEFERRED;
    if (type == PTHREAD_CANCEL_ASYNCHRONOUS)
        green__pt_set_uw(t, green__pt_uw(t) | PT_CANCEL_ASYNC);
    else
        green__pt_set_uw(t, green__pt_uw(t) & ~PT_CANCEL_ASYNC);
    cancel_if_async(t, PTHREAD_CANCELED);
    return 0;
}

void green_hook_pthread_testcancel(void)
{
    if (!green__pt_on_turn()) {
        GREEN_REAL(pthread_testcancel)();
        return;
    }
    green__pt_cancel_point(0);
}

/*
 * pthread_key.c - thread-specific data (pthread_key_create/delete,
 * pthread_getspecific/setspecific) and pthread_once for green threads.
 * The thread family's essay is at the top of pthread.c.
 *
 * Keys. A key made by a green caller is a green key (green_key_create),
 * numbered from GREEN_PT_KEY_BASE up so that it never collides with a
 * real key (0..PTHREAD_KEYS_MAX-1) that a library made before the shim
 * was on; a real key used from a green thread goes to libc and has one
 * value per OS thread. A green key's destructor runs when the green
 * thread exits, for a non-NULL value (green.h, green_key_create).
 *
 * Once. The control word keeps glibc's two stable states (0 never run,
 * 2 done), so a once that libc completed before the shim was on is seen
 * as done. A green thread running the init routine marks it 1; other
 * green threads park until it is done; an init routine ended by
 * cancellation or pthread_exit puts the control back to "never run" and
 * wakes the waiters, as POSIX asks. pthread_once never adopts a hub: the
 * hub's creation runs it.
 *
 * Rejected: libc keys for green callers (one value per OS thread, so
 * every green thread of a hub would share it); waiting for a running once
 * on its futex as libc does (that would block the hub and every green
 * thread on it, including the one running the init routine).
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include <setjmp.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------------ keys */

int green_hook_pthread_key_create(pthread_key_t *key, void (*d)(void *))
{
    if (!green__pt_on())
        return GREEN_REAL(pthread_key_create)(key, d);
    green_key_t k;
    int saved = errno;
    if (green_key_create(&k, d) != 0) {
        int e = errno;
        errno = saved;
        return e;
    }
    *key = GREEN_PT_KEY_BASE + k;
    return 0;
}

int green_hook_pthread_key_delete(pthread_key_t key)
{
    if (!green__pt_on() || key < GREEN_PT_KEY_BASE)
        return GREEN_REAL(pthread_key_delete)(key);
    int saved = errno;
    int rc = green_key_delete(key - GREEN_PT_KEY_BASE) == 0 ? 0 : EINVAL;
    errno = saved;
    return rc;
}

void *green_hook_pthread_getspecific(pthread_key_t key)
{
    /* The key first: a sanitizer runtime's own keys are libc's, and it
     * reads them in places where no turn may be taken. */
    if (key < GREEN_PT_KEY_BASE || !green__pt_on_turn())
        return GREEN_REAL(pthread_getspecific)(key);
    return green_getspecific(key - GREEN_PT_KEY_BASE);
}

int green_hook_pthread_setspecific(pthread_key_t key, const void *v)
{
    if (key < GREEN_PT_KEY_BASE || !green__pt_on_turn())
        return GREEN_REAL(pthread_setspecific)(key, v);
    int saved = errno;
    int rc = green_setspecific(key - GREEN_PT_KEY_BASE, v) == 0 ? 0 : errno;
    errno = saved;
    return rc;
}

/* ------------------------------------------------------------------ once */

/* pthread_once_t states, compatible with glibc's for the two stable ones
 * (0 never run, 2 done), so a once completed by libc before the shim was on
 * is seen as done. ONCE_RUNNING marks an init routine in progress in a
 * green thread. */
#define ONCE_RUNNING 1
#define ONCE_DONE    2

/* Green threads waiting for some once to finish; each rechecks its own.
 * The ctx's (hub's) queue, not a __thread one: under GREEN_TLS=address
 * libgreen's own __thread variables move with the thread pointer, and a
 * queue's address must not. */
#define once_waiters (green__current()->ctx->once_waiters)

/* Run init under a cleanup handler of our own (the frame that
 * unwind_or_exit jumps to, as pthread_cleanup_push's would be): if the
 * thread is cancelled or exits inside init, the control goes back to
 * "never run" and the waiters retry, as POSIX asks and glibc does. */
__attribute__((noinline)) static void run_once_init(pthread_once_t *once, void (*init)(void))
{
    __pthread_unwind_buf_t buf;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
    if (__sigsetjmp((struct __jmp_buf_tag *)(void *)buf.__cancel_jmp_buf, 0)) {
#pragma GCC diagnostic pop
        atomic_store_explicit((atomic_int *)once, 0, memory_order_release);
        green__waitq_wake_all(&once_waiters, 0);
        green__syscall(SYS_futex, once, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        green__pt_unwind_or_exit(green__current(), buf.__pad[1]);
    }
    struct green_thread *t = green__current();
    buf.__pad[0] = (void *)(green__pt_uw(t) & ~PT_FLAGS);
    green__pt_set_uw(t, (uintptr_t)&buf | (green__pt_uw(t) & PT_FLAGS));
    init();
    green__pt_set_uw(t, (uintptr_t)buf.__pad[0] | (green__pt_uw(t) & PT_FLAGS));
}

int green_hook_pthread_once(pthread_once_t *once, void (*init)(void))
{
    /* Never adopt here: creating a hub runs pthread_once itself. */
    if (!green__pt_on_noadopt())
        return GREEN_REAL(pthread_once)(once, init);
    green__pt_enter();   /* a loop of once calls must let others run */
    atomic_int *st = (atomic_int *)once;
    for (;;) {
        int v = atomic_load_explicit(st, memory_order_acquire);
        if (v == ONCE_DONE)
            return 0;
        if (v == 0 && atomic_compare_exchange_strong(st, &v, ONCE_RUNNING))
            break;
        /* Running in another green thread: wait for it. The deadline
         * bounds the wait should it run on another OS thread. */
        int code = green__park(GREEN_WHY_OTHER, (uintptr_t)once, &once_waiters,
                               green_now() + GREEN_MSEC(10));
        if (code == ECANCELED)
            green__pt_rearm_kill();
    }
    run_once_init(once, init);
    atomic_store_explicit(st, ONCE_DONE, memory_order_release);
    green__waitq_wake_all(&once_waiters, 0);
    /* A plain OS thread may wait in libc's pthread_once on the same word
     * (it futex-waits while the running bit is set): wake it. Rare: once
     * per control. */
    green__syscall(SYS_futex, once, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    return 0;
}

/* pthread_atfork: a registration is a thread-family call like any other,
 * so a thread that registers handlers in a loop takes its fair turns
 * (Open POSIX pthread_atfork/3-3 loops on it while its peers wait to
 * run). Never adopts a hub: libgreen registers its own handlers from its
 * constructor through here. */
int green_hook___register_atfork(void (*prepare)(void), void (*parent)(void),
                                 void (*child)(void), void *dso)
{
    struct green__ctx *c = green__tls_ctx;
    if ((green__hook_families & GREEN_HOOK_THREAD) && c && c->current != c->hub)
        green__pt_enter();
    if (!GREEN_REAL(__register_atfork))
        return ENOSYS;
    return GREEN_REAL(__register_atfork)(prepare, parent, child, dso);
}

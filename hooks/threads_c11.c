/*
 * threads_c11.c - the C11 <threads.h> thread functions for green
 * threads: thrd_*, tss_* and call_once (mtx_* and cnd_* are at the end of
 * pthread_sync.c). The thread family's essay is at the top of pthread.c.
 *
 * What it is. glibc builds these on its pthreads by direct calls that no
 * interposition sees, so they are interposed by name as well and mapped
 * onto the thread family's hooks and helpers: a thrd_t is a pthread_t (a
 * green handle), a tss_t a pthread_key_t (green keys from
 * GREEN_PT_KEY_BASE up), a once_flag a pthread_once_t. Each passes
 * through to libc when the thread family does not act for the caller,
 * exactly as the pthread hook it maps onto would.
 *
 * Invariants. Results are C11's, not errno values: thrd_success,
 * thrd_error, thrd_busy, thrd_nomem, thrd_timedout (green__thrd_result
 * converts a pthread error number); thrd_sleep returns 0, -1 when
 * interrupted (rem set) or -2 on another error.
 *
 * Rejected: building thrd_* on green.h directly, beside the pthread
 * hooks (two paths to one thread: join, exit, keys and cancellation
 * would each be written twice).
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include <string.h>

/* ------------------------------------------------------ C11 <threads.h> */

/* glibc runs a thrd_start_t through pthread_create cast to the pthread
 * signature, and thrd_join keeps the low int of the void * result; the
 * same is done here (the calling conventions agree on every ABI glibc
 * supports). */
int green_hook_thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
    if (!green__pt_on())
        return GREEN_REAL(thrd_create)(thr, fn, arg);
    void *(*start)(void *);
    memcpy(&start, &fn, sizeof start);
    pthread_t th;
    int e = green_hook_pthread_create(&th, NULL, start, arg);
    if (e == 0)
        *thr = th;
    return green__thrd_result(e);
}

int green_hook_thrd_join(thrd_t thr, int *res)
{
    if (!green__pt_on() || !green__pt_handle_of(thr))
        return GREEN_REAL(thrd_join)(thr, res);
    void *r = NULL;
    int e = green__pt_join(green__pt_handle_of(thr), &r, GREEN_FOREVER);
    if (e == 0 && res)
        *res = (int)(intptr_t)r;
    return e ? thrd_error : thrd_success;
}

int green_hook_thrd_detach(thrd_t thr)
{
    if (!green__pt_on() || !green__pt_handle_of(thr))
        return GREEN_REAL(thrd_detach)(thr);
    return green_hook_pthread_detach(thr) ? thrd_error : thrd_success;
}

_Noreturn void green_hook_thrd_exit(int res)
{
    if (!green__pt_on())
        GREEN_REAL(thrd_exit)(res);
    green__pt_unwind_or_exit(green__current(), (void *)(intptr_t)res);
}

thrd_t green_hook_thrd_current(void)
{
    return green_hook_pthread_self();
}

/* 0, -1 interrupted (rem set), or -2 on another error, as C11 says. */
int green_hook_thrd_sleep(const struct timespec *d, struct timespec *rem)
{
    if (!green__pt_on())
        return GREEN_REAL(thrd_sleep)(d, rem);
    if (!d || !green__ts_valid(d))
        return -2;
    int64_t end = green_now() + (d->tv_sec > INT64_MAX / 1000000000 - 2
                                     ? INT64_MAX / 2
                                     : (int64_t)d->tv_sec * 1000000000 + d->tv_nsec);
    int saved = errno;
    int r = green_sleep_until(end);
    int e = errno;
    errno = saved;
    if (r == 0)
        return 0;
    green__pt_cancel_point(e);
    if (rem) {
        int64_t left = end - green_now();
        left = left < 0 ? 0 : left;
        *rem = (struct timespec){ .tv_sec = left / 1000000000, .tv_nsec = left % 1000000000 };
    }
    return e == EINTR || e == ECANCELED ? -1 : -2;
}

void green_hook_thrd_yield(void)
{
    if (!green__pt_on()) {
        GREEN_REAL(thrd_yield)();
        return;
    }
    int saved = errno;
    if (green_yield() != 0 && errno == ECANCELED)
        green__pt_rearm_kill();
    errno = saved;
}

int green_hook_tss_create(tss_t *key, tss_dtor_t d)
{
    if (!green__pt_on())
        return GREEN_REAL(tss_create)(key, d);
    pthread_key_t k;
    int e = green_hook_pthread_key_create(&k, d);
    if (e == 0)
        *key = k;
    return e ? thrd_error : thrd_success;
}

void green_hook_tss_delete(tss_t key)
{
    if (!green__pt_on() || key < GREEN_PT_KEY_BASE) {
        GREEN_REAL(tss_delete)(key);
        return;
    }
    green_hook_pthread_key_delete(key);
}

void *green_hook_tss_get(tss_t key)
{
    if (!green__pt_on() || key < GREEN_PT_KEY_BASE)
        return GREEN_REAL(tss_get)(key);
    return green_hook_pthread_getspecific(key);
}

int green_hook_tss_set(tss_t key, void *v)
{
    if (!green__pt_on() || key < GREEN_PT_KEY_BASE)
        return GREEN_REAL(tss_set)(key, v);
    return green_hook_pthread_setspecific(key, v) ? thrd_error : thrd_success;
}

void green_hook_call_once(once_flag *flag, void (*fn)(void))
{
    if (!green__pt_on_noadopt()) {
        GREEN_REAL(call_once)(flag, fn);
        return;
    }
    green_hook_pthread_once((pthread_once_t *)flag, fn);
}

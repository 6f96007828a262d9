/*
 * threads_c11_sync.c - C11 <threads.h> mutexes and condition variables
 * under the shim, as thin maps onto the pthread hooks (pthread_mutex.c,
 * pthread_cond.c): glibc implements mtx_* and cnd_* by calling its
 * pthread functions directly (no PLT), so they are interposed too. The
 * layer's essay is at the top of pthread_sync.c; thrd_*, tss_* and
 * call_once are with the thread hooks.
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include <string.h>

/* ------------------------------------------------------ C11 <threads.h> */

/* mtx_t and cnd_t are pthread_mutex_t and pthread_cond_t inside; the
 * thread-family decision is the pthread hooks' own (a plain OS thread
 * goes to them too: green__pt_plain). */
int green_hook_mtx_init(mtx_t *m, int type)
{
    if (!green__pt_on() && !green__pt_plain())
        return GREEN_REAL(mtx_init)(m, type);
    if (type & ~(mtx_recursive | mtx_timed))
        return thrd_error;
    pthread_mutex_t *pm = (pthread_mutex_t *)m;
    memset(pm, 0, sizeof *pm);
    ((struct green__mutex *)(void *)pm)->kind = (type & mtx_recursive) ? PTHREAD_MUTEX_RECURSIVE
                                                                      : PTHREAD_MUTEX_NORMAL;
    return thrd_success;
}

void green_hook_mtx_destroy(mtx_t *m)
{
    if (!green__pt_on() && !green__pt_plain())
        GREEN_REAL(mtx_destroy)(m);
}

int green_hook_mtx_lock(mtx_t *m)
{
    if (!green__pt_on() && !green__pt_plain())
        return GREEN_REAL(mtx_lock)(m);
    return green__thrd_result(green_hook_pthread_mutex_lock((pthread_mutex_t *)m));
}

int green_hook_mtx_trylock(mtx_t *m)
{
    if (!green__pt_on() && !green__pt_plain())
        return GREEN_REAL(mtx_trylock)(m);
    return green__thrd_result(green_hook_pthread_mutex_trylock((pthread_mutex_t *)m));
}

int green_hook_mtx_timedlock(mtx_t *m, const struct timespec *abs)
{
    if (!green__pt_on() && !green__pt_plain())
        return GREEN_REAL(mtx_timedlock)(m, abs);
    return green__thrd_result(green_hook_pthread_mutex_timedlock((pthread_mutex_t *)m, abs));
}

int green_hook_mtx_unlock(mtx_t *m)
{
    if (!green__pt_on() && !green__pt_plain())
        return GREEN_REAL(mtx_unlock)(m);
    return green__thrd_result(green_hook_pthread_mutex_unlock((pthread_mutex_t *)m));
}

int green_hook_cnd_init(cnd_t *c)
{
    if (!green__pt_on() && !green__pt_plain())
        return GREEN_REAL(cnd_init)(c);
    return green__thrd_result(green_hook_pthread_cond_init((pthread_cond_t *)c, NULL));
}

void green_hook_cnd_destroy(cnd_t *c)
{
    if (!green__pt_on() && !green__pt_plain())
        GREEN_REAL(cnd_destroy)(c);
}

int green_hook_cnd_signal(cnd_t *c)
{
    if (!green__pt_on() && !green__pt_plain())
        return GREEN_REAL(cnd_signal)(c);
    return green__thrd_result(green_hook_pthread_cond_signal((pthread_cond_t *)c));
}

int green_hook_cnd_broadcast(cnd_t *c)
{
    if (!green__pt_on() && !green__pt_plain())
        return GREEN_REAL(cnd_broadcast)(c);
    return green__thrd_result(green_hook_pthread_cond_broadcast((pthread_cond_t *)c));
}

int green_hook_cnd_wait(cnd_t *c, mtx_t *m)
{
    if (!green__pt_on() && !green__pt_plain())
        return GREEN_REAL(cnd_wait)(c, m);
    return green__thrd_result(green_hook_pthread_cond_wait((pthread_cond_t *)c,
                                                           (pthread_mutex_t *)m));
}

int green_hook_cnd_timedwait(cnd_t *c, mtx_t *m, const struct timespec *abs)
{
    if (!green__pt_on() && !green__pt_plain())
        return GREEN_REAL(cnd_timedwait)(c, m, abs);
    return green__thrd_result(green_hook_pthread_cond_timedwait((pthread_cond_t *)c,
                                                                (pthread_mutex_t *)m, abs));
}

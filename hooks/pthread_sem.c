/*
 * pthread_sem.c - unnamed POSIX semaphores under the shim: a private one
 * is the lock core's (libgreen/lock.c); a process-shared or named one
 * keeps libc's layout, and its waits try and nap. The layer's essay is at
 * the top of pthread_sync.c.
 *
 * sem_wait, sem_timedwait and sem_clockwait are cancellation points and
 * interruptible calls: a signal handler makes them fail with EINTR, and
 * sem_wait restarts under SA_RESTART. sem_post is async-signal-safe: from
 * a handler on the hub it adds the unit atomically and wakes the green
 * waiters from outside (pthread_sync.c), whose park carries the mark
 * that wake-up looks for (green__pt_sem_how). A plain OS thread (no hub)
 * waits and posts through the lock core (green__pt_plain).
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include "hooks_signal.h"
#include <limits.h>
#include <stddef.h>
#include <string.h>

/* ------------------------------------------------------------- semaphore */

/* A private semaphore is the lock core's (struct green__sem: the value
 * and the queue); this overlay names glibc's words around them. */
struct pt_sem {
    unsigned value;               /* units available (low half of glibc data) */
    unsigned nwaiters;            /* always 0 (glibc's waiter count) */
    int shared;                   /* glibc "private": 128 = process-shared, libc-only */
    int spare;                    /* always 0 */
    struct green__waitq q;        /* waiting threads */
};
_Static_assert(sizeof(struct pt_sem) <= sizeof(sem_t), "sem size");
_Static_assert(sizeof(struct green__sem) == sizeof(struct pt_sem) &&
               offsetof(struct pt_sem, value) == offsetof(struct green__sem, value) &&
               offsetof(struct pt_sem, q) == offsetof(struct green__sem, q),
               "sem core layout");
_Static_assert(SEM_VALUE_MAX == GREEN__SEM_MAX, "sem maximum");
#define CORE(sm) ((struct green__sem *)(void *)(sm))
#define SEM_SHARED_MARK 128

static bool sem_is_libc(const sem_t *s)
{
    return ((const struct pt_sem *)s)->shared == SEM_SHARED_MARK;
}

int green_hook_sem_init(sem_t *s, int pshared, unsigned value)
{
    if ((!green__pt_on() && !green__pt_plain()) || pshared)
        return GREEN_REAL(sem_init)(s, pshared, value);
    if (value > SEM_VALUE_MAX) {
        errno = EINVAL;
        return -1;
    }
    memset(s, 0, sizeof *s);
    ((struct pt_sem *)s)->value = value;
    return 0;
}

int green_hook_sem_destroy(sem_t *s)
{
    if ((!green__pt_on() && !green__pt_plain()) || sem_is_libc(s))
        return GREEN_REAL(sem_destroy)(s);
    return 0;
}

/* The value is updated atomically (green__sem_trytake, green__sem_add): a
 * post may come from a signal handler or from a plain OS thread (see
 * "Wake-ups from outside" in pthread_sync.c). */
static int sem_post_outside(struct pt_sem *sm)
{
    if (green__sem_add(CORE(sm)) != 0) {
        errno = EOVERFLOW;
        return -1;
    }
    green__pt_outside_poke(GREEN__PT_OUTSIDE_SEM);
    return 0;
}

/* The green wait; a cancellation point. -1/errno. A signal handler
 * interrupts it (EINTR); sem_wait restarts under SA_RESTART
 * (restartable), sem_timedwait/clockwait never do, as with glibc. */
static int sem_wait_green(sem_t *s, int64_t deadline, bool restartable)
{
    struct green__sem *sm = CORE(s);
    green__pt_cancel_point(0);
    if (green__sem_trytake(sm) == 0)
        return 0;
    green__pt_outside_ensure();
    struct green_thread *self = green__current();
    for (;;) {
        green__intr_begin();   /* signal(7): EINTR unless SA_RESTART */
        int code = green__sem_wait(sm, self, deadline, &green__pt_sem_how);
        green__intr_end();
        if (code == 0)
            return 0;   /* took a unit, or was handed one by sem_post */
        if (code == EAGAIN)
            continue;   /* a post from outside: try again */
        if (code == EINTR && restartable && green__intr_restarts())
            continue;
        green__pt_cancel_point(code);
        errno = code == ECANCELED ? EINTR : code;
        return -1;
    }
}

/* The caller is the only green thread there is to run here: main, with
 * no other thread on its hub, no other hub in the set, and no post
 * expected from another OS thread (an offload job, a join of another
 * hub). Then blocking the OS thread in libc's own wait stops nothing
 * else, and the wait is the kernel's: a process-shared semaphore's
 * waiters of several processes are woken by priority and in order, as
 * natively (Open POSIX sem_post/8-1: the try-and-nap below let a later,
 * equal or lower priority waiter of another process take the unit about
 * one run in three), and an idle process does not nap every 5 ms. */
static bool libc_wait_alone(const sem_t *s)
{
    struct green__ctx *c = green__tls_ctx;
    if (!sem_is_libc(s) || !c || !green__hub_alone(c))
        return false;
    green__pt_cancel_point(0);     /* a cancel already asked for acts here */
    return true;
}

/* A process-shared or named semaphore (libc's layout, which the other
 * process understands), when others could run: try, and nap between tries
 * (yield, then 50 us doubling to 5 ms); the naps are interruptible like
 * the green wait. */
static int sem_wait_libc(sem_t *s, int64_t deadline, bool restartable)
{
    int saved = errno, rc = -1;
    int64_t ns = GREEN_USEC(50);
    green__pt_cancel_point(0);
    /* Interruptible from here on: a signal that arrives while we try
     * (not parked) still interrupts the next nap. */
    green__intr_begin();
    for (;;) {
        if (GREEN_REAL(sem_trywait)(s) == 0) {
            errno = saved;
            rc = 0;
            break;
        }
        if (errno != EAGAIN)
            break;
        if (green__pt_past(deadline)) {
            errno = ETIMEDOUT;
            break;
        }
        int64_t until = green_now() + ns;
        if (deadline >= 0 && deadline < until)
            until = deadline;
        int code = green__park(GREEN_WHY_SEM, (uintptr_t)s, NULL, until);
        ns = ns >= GREEN_MSEC(5) ? ns : ns * 2;
        if (code == 0 || code == ETIMEDOUT)
            continue;
        if (code == EINTR && restartable && green__intr_restarts()) {
            green__intr_begin();
            continue;
        }
        if (code == EINTR || code == ECANCELED) {
            green__intr_end();
            green__pt_cancel_point(code);
            errno = EINTR;
            return -1;
        }
    }
    green__intr_end();
    return rc;
}

/* A plain OS thread (green__pt_plain) on a private semaphore: the core's
 * wait, on a futex. -1/errno. */
static bool sem_plain(const sem_t *s)
{
    return green__pt_plain() && !sem_is_libc(s);
}

static int sem_wait_plain(sem_t *s, int64_t deadline)
{
    int e;
    while ((e = green__sem_wait(CORE(s), NULL, deadline, &green__lock_plain)) == EAGAIN)
        ;
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

static int sem_wait_until(sem_t *s, int64_t deadline)
{
    bool restartable = deadline == GREEN_FOREVER;   /* plain sem_wait */
    return sem_is_libc(s) ? sem_wait_libc(s, deadline, restartable)
                          : sem_wait_green(s, deadline, restartable);
}

int green_hook_sem_wait(sem_t *s)
{
    if (!green__pt_on_turn())
        return sem_plain(s) ? sem_wait_plain(s, GREEN_FOREVER) : GREEN_REAL(sem_wait)(s);
    if (libc_wait_alone(s))
        return GREEN_REAL(sem_wait)(s);
    return sem_wait_until(s, GREEN_FOREVER);
}

int green_hook_sem_trywait(sem_t *s)
{
    if ((!green__pt_on_turn() && !sem_plain(s)) || sem_is_libc(s))
        return GREEN_REAL(sem_trywait)(s);
    if (green__sem_trytake(CORE(s)) == 0)
        return 0;
    errno = EAGAIN;
    return -1;
}

/* glibc checks the deadline before it looks at the value: a bad tv_nsec
 * or clock is EINVAL even when a unit is available. */
static int sem_clockwait_green(sem_t *s, clockid_t clk, const struct timespec *abs)
{
    int64_t deadline;
    int e = green__pt_deadline(clk, abs, &deadline);
    if (e) {
        errno = e;
        return -1;
    }
    if (!sem_is_libc(s) && green__sem_trytake(CORE(s)) == 0)
        return 0;
    return green__tls_ctx ? sem_wait_until(s, deadline) : sem_wait_plain(s, deadline);
}

int green_hook_sem_timedwait(sem_t *s, const struct timespec *abs)
{
    if ((!green__pt_on_turn() && !sem_plain(s)) || libc_wait_alone(s))
        return GREEN_REAL(sem_timedwait)(s, abs);
    return sem_clockwait_green(s, CLOCK_REALTIME, abs);
}

int green_hook_sem_clockwait(sem_t *s, clockid_t clk, const struct timespec *abs)
{
    if ((!green__pt_on_turn() && !sem_plain(s)) || libc_wait_alone(s))
        return GREEN_REAL(sem_clockwait)(s, clk, abs);
    return sem_clockwait_green(s, clk, abs);
}

/* Async-signal-safe, as libc's. */
int green_hook_sem_post(sem_t *s)
{
    struct pt_sem *sm = (struct pt_sem *)s;
    if (!green__pt_on() && sem_plain(s)) {
        int e = green__sem_post(CORE(sm));   /* thread-safe: a plain OS
                                                thread hands the unit over */
        if (e) {
            errno = e;
            return -1;
        }
        return 0;
    }
    if (!green__pt_on()) {
        /* A green semaphore never has libc waiters (nwaiters 0); for
         * one without them libc's post is this same atomic add. */
        if ((green__hook_families & GREEN_HOOK_THREAD) && !sem_is_libc(s) &&
            __atomic_load_n(&sm->nwaiters, __ATOMIC_ACQUIRE) == 0)
            return sem_post_outside(sm);
        return GREEN_REAL(sem_post)(s);
    }
    if (sem_is_libc(s))
        return GREEN_REAL(sem_post)(s);
    int e = green__sem_post(CORE(sm));   /* the unit goes straight to
                                            the first waiter, if any */
    if (e) {
        errno = e;
        return -1;
    }
    green__prio_preempt();   /* handed to a waiter ranked above us */
    return 0;
}

int green_hook_sem_getvalue(sem_t *s, int *value)
{
    if ((!green__pt_on() && !green__pt_plain()) || sem_is_libc(s))
        return GREEN_REAL(sem_getvalue)(s, value);
    *value = (int)__atomic_load_n(&((struct pt_sem *)s)->value, __ATOMIC_ACQUIRE);
    return 0;
}

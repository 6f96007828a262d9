/*
 * test_sync.c - events, semaphores, mutexes (plain and recursive),
 * condition variables and rwlocks: wake-ups, timeouts, kills while waiting,
 * timeout scopes, error paths and FIFO fairness. The test body is the main
 * green thread.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "green.h"

#define RESULT(r) ((void *)(intptr_t)((r) == -1 ? errno : 0))
#define CODE(p)   ((int)(intptr_t)(p))

static int join_code(green_t t)
{
    void *r = (void *)(intptr_t)-12345;
    cr_assert_eq(green_join(t, &r), 0);
    return CODE(r);
}

/* ------------------------------------------------------------------ event */

static green_event_t ev = GREEN_EVENT_INIT;
static int woken;

static void *event_waiter(void *arg)
{
    int r = green_event_wait(&ev, (int64_t)(intptr_t)arg);
    if (r == 0)
        woken++;
    return RESULT(r);
}

Test(sync, event_set_wakes_every_waiter)
{
    green_t t[10];
    for (int i = 0; i < 10; i++)
        t[i] = green_spawn(event_waiter, (void *)(intptr_t)GREEN_FOREVER, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_expect_eq(woken, 0);
    cr_expect_not(green_event_is_set(&ev));
    green_event_set(&ev);
    cr_expect(green_event_is_set(&ev));
    for (int i = 0; i < 10; i++)
        cr_expect_eq(join_code(t[i]), 0);
    cr_expect_eq(woken, 10);
}

Test(sync, event_wait_on_a_set_event_returns_at_once_and_clear_rearms_it)
{
    green_event_set(&ev);
    cr_expect_eq(green_event_wait(&ev, 0), 0);
    green_event_clear(&ev);
    errno = 0;
    cr_expect_eq(green_event_wait(&ev, 0), -1);
    cr_expect_eq(errno, ETIMEDOUT);
}

Test(sync, event_wait_with_a_relative_timeout_fails_with_etimedout)
{
    int64_t t0 = green_now();
    errno = 0;
    cr_expect_eq(green_event_wait(&ev, GREEN_MSEC(20)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    int64_t dt = green_now() - t0;
    cr_expect_geq(dt, GREEN_MSEC(20));
    cr_expect_lt(dt, GREEN_SEC(5));
}

Test(sync, event_set_and_cleared_before_the_waiter_runs_still_wakes_it)
{
    green_t t = green_spawn(event_waiter, (void *)(intptr_t)GREEN_FOREVER, NULL);
    cr_assert_eq(green_yield(), 0);
    green_event_set(&ev);
    green_event_clear(&ev);
    cr_expect_eq(join_code(t), 0);
    cr_expect_eq(woken, 1);
}

Test(sync, killed_event_waiter_fails_with_ecanceled)
{
    green_t t = green_spawn(event_waiter, (void *)(intptr_t)GREEN_FOREVER, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_assert_eq(green_kill(t), 0);
    cr_expect_eq(join_code(t), ECANCELED);
    /* The event still works for the next waiter. */
    t = green_spawn(event_waiter, (void *)(intptr_t)GREEN_FOREVER, NULL);
    cr_assert_eq(green_yield(), 0);
    green_event_set(&ev);
    cr_expect_eq(join_code(t), 0);
}

Test(sync, event_wait_in_a_timeout_scope_fails_with_etimedout_and_marks_it)
{
    green_timeout_t scope;
    cr_assert_eq(green_timeout_begin(&scope, GREEN_MSEC(10)), 0);
    errno = 0;
    int r = green_event_wait(&ev, GREEN_FOREVER);
    int e = errno;
    cr_expect(green_timeout_end(&scope));
    cr_expect_eq(r, -1);
    cr_expect_eq(e, ETIMEDOUT);
}

Test(sync, event_wait_with_bad_arguments_fails_with_einval)
{
    errno = 0;
    cr_expect_eq(green_event_wait(NULL, 0), -1);
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_eq(green_event_wait(&ev, -2), -1);
    cr_expect_eq(errno, EINVAL);
}

/* -------------------------------------------------------------- semaphore */

static green_sem_t sem = GREEN_SEM_INIT;
static int order[64], norder;
static int running, max_running;

static void *sem_waiter(void *arg)
{
    int r = green_sem_wait(&sem, GREEN_FOREVER);
    if (r == 0)
        order[norder++] = (int)(intptr_t)arg;
    return RESULT(r);
}

Test(sync, sem_init_with_a_negative_value_fails_with_einval)
{
    errno = 0;
    cr_expect_eq(green_sem_init(&sem, -1), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(green_sem_init(&sem, 3), 0);
    cr_expect_eq(green_sem_value(&sem), 3);
}

Test(sync, sem_trywait_on_zero_fails_with_eagain)
{
    errno = 0;
    cr_expect_eq(green_sem_trywait(&sem), -1);
    cr_expect_eq(errno, EAGAIN);
    cr_assert_eq(green_sem_post(&sem), 0);
    cr_expect_eq(green_sem_trywait(&sem), 0);
    cr_expect_eq(green_sem_value(&sem), 0);
}

Test(sync, sem_posts_wake_waiters_one_unit_each_in_fifo_order)
{
    green_t t[5];
    for (int i = 0; i < 5; i++)
        t[i] = green_spawn(sem_waiter, (void *)(intptr_t)i, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_expect_eq(norder, 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(green_sem_post(&sem), 0);
    /* A unit handed to a waiter cannot be stolen by a trywait. */
    errno = 0;
    cr_expect_eq(green_sem_trywait(&sem), -1);
    cr_expect_eq(errno, EAGAIN);
    cr_assert_eq(green_yield(), 0);
    cr_expect_eq(norder, 3);
    cr_assert_eq(green_sem_post(&sem), 0);
    cr_assert_eq(green_sem_post(&sem), 0);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(join_code(t[i]), 0);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(order[i], i);
    cr_expect_eq(green_sem_value(&sem), 0);
}

Test(sync, sem_wait_times_out_with_etimedout_and_keeps_its_value)
{
    errno = 0;
    cr_expect_eq(green_sem_wait(&sem, GREEN_MSEC(5)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect_eq(green_sem_value(&sem), 0);
    cr_assert_eq(green_sem_post(&sem), 0);
    cr_expect_eq(green_sem_wait(&sem, GREEN_MSEC(5)), 0);
}

Test(sync, sem_post_past_int32_max_fails_with_eoverflow)
{
    cr_assert_eq(green_sem_init(&sem, INT32_MAX), 0);
    errno = 0;
    cr_expect_eq(green_sem_post(&sem), -1);
    cr_expect_eq(errno, EOVERFLOW);
    cr_expect_eq(green_sem_value(&sem), INT32_MAX);
}

Test(sync, killed_sem_waiter_fails_with_ecanceled_and_the_unit_goes_to_the_next)
{
    green_t a = green_spawn(sem_waiter, (void *)1, NULL);
    green_t b = green_spawn(sem_waiter, (void *)2, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_assert_eq(green_kill(a), 0);
    cr_assert_eq(green_sem_post(&sem), 0);
    cr_expect_eq(join_code(a), ECANCELED);
    cr_expect_eq(join_code(b), 0);
    cr_expect_eq(norder, 1);
    cr_expect_eq(order[0], 2);
    cr_expect_eq(green_sem_value(&sem), 0);
}

static void *sem_worker(void *arg)
{
    (void)arg;
    if (green_sem_wait(&sem, GREEN_FOREVER) != 0)
        return RESULT(-1);
    if (++running > max_running)
        max_running = running;
    int r = green_sleep(GREEN_MSEC(1));
    running--;
    green_sem_post(&sem);
    return RESULT(r);
}

Test(sync, sem_bounds_how_many_threads_hold_a_unit_at_once)
{
    cr_assert_eq(green_sem_init(&sem, 3), 0);
    green_t t[20];
    for (int i = 0; i < 20; i++)
        t[i] = green_spawn(sem_worker, NULL, NULL);
    for (int i = 0; i < 20; i++)
        cr_expect_eq(join_code(t[i]), 0);
    cr_expect_eq(max_running, 3);
    cr_expect_eq(green_sem_value(&sem), 3);
}

/* ------------------------------------------------------------------ mutex */

static green_mutex_t mu = GREEN_MUTEX_INIT;
static int inside, overlap, counter;

static void *mutex_incrementer(void *arg)
{
    for (int i = 0; i < (int)(intptr_t)arg; i++) {
        if (green_mutex_lock(&mu, GREEN_FOREVER) != 0)
            return RESULT(-1);
        if (inside++)
            overlap++;
        int c = counter;
        green_yield();
        counter = c + 1;
        inside--;
        green_mutex_unlock(&mu);
    }
    return NULL;
}

Test(sync, mutex_keeps_a_critical_section_exclusive_across_yields)
{
    green_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = green_spawn(mutex_incrementer, (void *)100, NULL);
    for (int i = 0; i < 8; i++)
        cr_expect_eq(join_code(t[i]), 0);
    cr_expect_eq(overlap, 0);
    cr_expect_eq(counter, 800);
}

Test(sync, mutex_relock_by_owner_fails_with_edeadlk)
{
    cr_assert_eq(green_mutex_lock(&mu, GREEN_FOREVER), 0);
    errno = 0;
    cr_expect_eq(green_mutex_lock(&mu, GREEN_FOREVER), -1);
    cr_expect_eq(errno, EDEADLK);
    errno = 0;
    cr_expect_eq(green_mutex_trylock(&mu), -1);
    cr_expect_eq(errno, EBUSY);
    cr_expect_eq(green_mutex_unlock(&mu), 0);
    errno = 0;
    cr_expect_eq(green_mutex_unlock(&mu), -1);
    cr_expect_eq(errno, EPERM);
}

Test(sync, recursive_mutex_needs_as_many_unlocks_as_locks)
{
    cr_assert_eq(green_mutex_init(&mu, GREEN_MUTEX_RECURSIVE), 0);
    cr_expect_eq(green_mutex_lock(&mu, GREEN_FOREVER), 0);
    cr_expect_eq(green_mutex_lock(&mu, 0), 0);
    cr_expect_eq(green_mutex_trylock(&mu), 0);
    cr_expect_eq(green_mutex_unlock(&mu), 0);
    cr_expect_eq(green_mutex_unlock(&mu), 0);
    /* Still held once: another thread cannot take it. */
    green_t t = green_spawn(mutex_incrementer, (void *)1, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_expect_eq(counter, 0);
    cr_expect_eq(green_mutex_unlock(&mu), 0);
    cr_expect_eq(join_code(t), 0);
    cr_expect_eq(counter, 1);
    errno = 0;
    cr_expect_eq(green_mutex_unlock(&mu), -1);
    cr_expect_eq(errno, EPERM);
}

Test(sync, mutex_init_with_a_bad_type_fails_with_einval)
{
    errno = 0;
    cr_expect_eq(green_mutex_init(&mu, 7), -1);
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_eq(green_mutex_lock(NULL, 0), -1);
    cr_expect_eq(errno, EINVAL);
}

static void *mutex_try_and_unlock(void *arg)
{
    (void)arg;
    int r = green_mutex_trylock(&mu);
    int e = errno;
    int u = green_mutex_unlock(&mu);
    int ue = errno;
    if (r != -1 || e != EBUSY)
        return (void *)1;
    if (u != -1 || ue != EPERM)
        return (void *)2;
    return NULL;
}

Test(sync, mutex_held_by_another_fails_trylock_with_ebusy_and_unlock_with_eperm)
{
    cr_assert_eq(green_mutex_lock(&mu, GREEN_FOREVER), 0);
    green_t t = green_spawn(mutex_try_and_unlock, NULL, NULL);
    cr_expect_eq(join_code(t), 0);
    cr_expect_eq(green_mutex_unlock(&mu), 0);
}

static void *mutex_lock_timeout(void *arg)
{
    int r = green_mutex_lock(&mu, (int64_t)(intptr_t)arg);
    if (r == 0)
        green_mutex_unlock(&mu);
    return RESULT(r);
}

Test(sync, mutex_lock_times_out_with_etimedout_while_held)
{
    cr_assert_eq(green_mutex_lock(&mu, GREEN_FOREVER), 0);
    green_t t = green_spawn(mutex_lock_timeout, (void *)(intptr_t)GREEN_MSEC(10), NULL);
    int64_t t0 = green_now();
    cr_expect_eq(join_code(t), ETIMEDOUT);
    cr_expect_geq(green_now() - t0, GREEN_MSEC(10));
    cr_expect_eq(green_mutex_unlock(&mu), 0);
    /* Nobody was left queued: the mutex is free. */
    cr_expect_eq(green_mutex_trylock(&mu), 0);
}

Test(sync, killed_mutex_waiter_fails_with_ecanceled_and_the_mutex_stays_usable)
{
    cr_assert_eq(green_mutex_lock(&mu, GREEN_FOREVER), 0);
    green_t a = green_spawn(mutex_lock_timeout, (void *)(intptr_t)GREEN_FOREVER, NULL);
    green_t b = green_spawn(mutex_incrementer, (void *)1, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_assert_eq(green_kill(a), 0);
    cr_expect_eq(green_mutex_unlock(&mu), 0);
    cr_expect_eq(join_code(a), ECANCELED);
    cr_expect_eq(join_code(b), 0);
    cr_expect_eq(counter, 1);
    cr_expect_eq(green_mutex_trylock(&mu), 0);
}

static green_t holder;
static void *mutex_hold_forever(void *arg)
{
    (void)arg;
    int r = green_mutex_lock(&mu, GREEN_FOREVER);
    if (r == 0) {
        r = green_sleep(GREEN_SEC(100));   /* until killed */
        green_mutex_unlock(&mu);
    }
    return RESULT(r);
}

Test(sync, mutex_waiter_in_a_timeout_scope_gets_etimedout_and_the_scope_is_marked)
{
    holder = green_spawn(mutex_hold_forever, NULL, NULL);
    cr_assert_eq(green_yield(), 0);
    green_timeout_t scope;
    cr_assert_eq(green_timeout_begin(&scope, GREEN_MSEC(10)), 0);
    errno = 0;
    int r = green_mutex_lock(&mu, GREEN_FOREVER);
    int e = errno;
    cr_expect(green_timeout_end(&scope));
    cr_expect_eq(r, -1);
    cr_expect_eq(e, ETIMEDOUT);
    cr_assert_eq(green_kill(holder), 0);
    cr_expect_eq(join_code(holder), ECANCELED);
    cr_expect_eq(green_mutex_trylock(&mu), 0);
}

static void *mutex_relocker(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 3; i++) {
        if (green_mutex_lock(&mu, GREEN_FOREVER) != 0)
            return RESULT(-1);
        order[norder++] = id;
        green_mutex_unlock(&mu);   /* and immediately try again */
    }
    return NULL;
}

Test(sync, mutex_is_handed_over_fifo_so_an_unlocker_cannot_starve_waiters)
{
    cr_assert_eq(green_mutex_lock(&mu, GREEN_FOREVER), 0);
    green_t a = green_spawn(mutex_relocker, (void *)1, NULL);
    green_t b = green_spawn(mutex_relocker, (void *)2, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_expect_eq(green_mutex_unlock(&mu), 0);
    cr_expect_eq(join_code(a), 0);
    cr_expect_eq(join_code(b), 0);
    cr_assert_eq(norder, 6);
    int want[6] = { 1, 2, 1, 2, 1, 2 };
    for (int i = 0; i < 6; i++)
        cr_expect_eq(order[i], want[i], "order[%d] = %d", i, order[i]);
}

/* ------------------------------------------------------------- condition */

static green_cond_t cv = GREEN_COND_INIT;
static int ready_flag;

static void *cond_waiter(void *arg)
{
    int64_t timeout = (int64_t)(intptr_t)arg;
    if (green_mutex_lock(&mu, GREEN_FOREVER) != 0)
        return (void *)-2;
    int r = 0;
    while (!ready_flag && r == 0)
        r = green_cond_wait(&cv, &mu, timeout);
    int e = r ? errno : 0;
    /* The mutex is held on return whatever the result. */
    if (green_mutex_unlock(&mu) != 0)
        return (void *)-3;
    if (r == 0)
        woken++;
    return (void *)(intptr_t)e;
}

Test(sync, cond_signal_wakes_one_waiter_and_broadcast_wakes_all)
{
    green_t t[4];
    for (int i = 0; i < 4; i++)
        t[i] = green_spawn(cond_waiter, (void *)(intptr_t)GREEN_FOREVER, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_assert_eq(green_mutex_lock(&mu, 0), 0);
    ready_flag = 1;
    green_cond_signal(&cv);
    cr_assert_eq(green_mutex_unlock(&mu), 0);
    cr_assert_eq(green_sleep(GREEN_MSEC(1)), 0);
    cr_expect_eq(woken, 1);
    green_cond_broadcast(&cv);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(join_code(t[i]), 0);
    cr_expect_eq(woken, 4);
}

Test(sync, cond_wait_without_holding_the_mutex_fails_with_eperm)
{
    errno = 0;
    cr_expect_eq(green_cond_wait(&cv, &mu, 0), -1);
    cr_expect_eq(errno, EPERM);
}

Test(sync, cond_wait_times_out_with_etimedout_and_the_mutex_held)
{
    cr_assert_eq(green_mutex_lock(&mu, GREEN_FOREVER), 0);
    errno = 0;
    cr_expect_eq(green_cond_wait(&cv, &mu, GREEN_MSEC(5)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect_eq(green_mutex_unlock(&mu), 0);
}

static void *lock_sleep_unlock(void *arg)
{
    if (green_mutex_lock(&mu, GREEN_FOREVER) != 0)
        return RESULT(-1);
    int r = green_sleep((int64_t)(intptr_t)arg);
    counter++;
    green_mutex_unlock(&mu);
    return RESULT(r);
}

Test(sync, killed_cond_waiter_returns_ecanceled_only_after_retaking_the_mutex)
{
    green_t w = green_spawn(cond_waiter, (void *)(intptr_t)GREEN_FOREVER, NULL);
    cr_assert_eq(green_yield(), 0);
    /* Someone holds the mutex for a while when the kill lands. */
    green_t h = green_spawn(lock_sleep_unlock, (void *)(intptr_t)GREEN_MSEC(20), NULL);
    cr_assert_eq(green_yield(), 0);
    cr_assert_eq(green_kill(w), 0);
    cr_expect_eq(join_code(w), ECANCELED);   /* unlock inside succeeded */
    cr_expect_eq(counter, 1);                /* so h had released it first */
    cr_expect_eq(join_code(h), 0);
    cr_expect_eq(green_mutex_trylock(&mu), 0);
}

static void *cond_wait_then_park(void *arg)
{
    (void)arg;
    if (green_mutex_lock(&mu, GREEN_FOREVER) != 0)
        return (void *)-2;
    int r = green_cond_wait(&cv, &mu, GREEN_FOREVER);
    if (green_mutex_unlock(&mu) != 0)
        return (void *)-3;          /* not held on return */
    if (r != 0)
        return (void *)-4;          /* the signal was lost */
    if (!green_killed())
        return (void *)-5;
    /* The kill consumed while retaking the mutex is still pending. */
    if (green_sleep(GREEN_SEC(10)) != -1 || errno != ECANCELED)
        return (void *)-6;
    return NULL;
}

Test(sync, cond_waiter_killed_while_retaking_the_mutex_keeps_the_kill_pending)
{
    green_t w = green_spawn(cond_wait_then_park, NULL, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_assert_eq(green_mutex_lock(&mu, GREEN_FOREVER), 0);
    green_cond_signal(&cv);
    cr_assert_eq(green_yield(), 0);   /* w now waits for the mutex */
    cr_assert_eq(green_kill(w), 0);
    cr_assert_eq(green_yield(), 0);   /* w saw ECANCELED and parked again */
    cr_expect_eq(green_mutex_unlock(&mu), 0);
    cr_expect_eq(join_code(w), 0);
}

static void *cond_wait_in_scope(void *arg)
{
    (void)arg;
    if (green_mutex_lock(&mu, GREEN_FOREVER) != 0)
        return (void *)-2;
    green_timeout_t scope;
    green_timeout_begin(&scope, GREEN_MSEC(5));
    int r = green_cond_wait(&cv, &mu, GREEN_FOREVER);
    int e = errno;
    bool expired = green_timeout_end(&scope);
    int held = counter;   /* written by the holder under the mutex */
    if (green_mutex_unlock(&mu) != 0)
        return (void *)-3;
    if (r != -1 || e != ETIMEDOUT || !expired)
        return (void *)-4;
    return (void *)(intptr_t)held;
}

Test(sync, cond_wait_in_an_expired_timeout_scope_still_retakes_the_mutex)
{
    green_t w = green_spawn(cond_wait_in_scope, NULL, NULL);
    cr_assert_eq(green_yield(), 0);
    /* Hold the mutex well past the scope's deadline. */
    green_t h = green_spawn(lock_sleep_unlock, (void *)(intptr_t)GREEN_MSEC(30), NULL);
    cr_expect_eq(join_code(w), 1);
    cr_expect_eq(join_code(h), 0);
}

Test(sync, cond_wait_on_a_recursive_mutex_restores_its_depth)
{
    cr_assert_eq(green_mutex_init(&mu, GREEN_MUTEX_RECURSIVE), 0);
    cr_assert_eq(green_mutex_lock(&mu, GREEN_FOREVER), 0);
    cr_assert_eq(green_mutex_lock(&mu, GREEN_FOREVER), 0);
    green_t h = green_spawn(lock_sleep_unlock, (void *)(intptr_t)0, NULL);
    errno = 0;
    cr_expect_eq(green_cond_wait(&cv, &mu, GREEN_MSEC(5)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect_eq(counter, 1);   /* h got the mutex while we waited */
    cr_expect_eq(green_mutex_unlock(&mu), 0);
    cr_expect_eq(green_mutex_unlock(&mu), 0);
    errno = 0;
    cr_expect_eq(green_mutex_unlock(&mu), -1);
    cr_expect_eq(errno, EPERM);
    cr_expect_eq(join_code(h), 0);
}

/* ----------------------------------------------------------------- rwlock */

static green_rwlock_t rw = GREEN_RWLOCK_INIT;
static int readers_in, writers_in, max_readers, rw_bad;

static void *rw_reader(void *arg)
{
    if (green_rwlock_rdlock(&rw, (int64_t)(intptr_t)arg) != 0)
        return RESULT(-1);
    if (writers_in)
        rw_bad++;
    if (++readers_in > max_readers)
        max_readers = readers_in;
    order[norder++] = 'r';
    int r = green_sleep(GREEN_MSEC(2));
    readers_in--;
    green_rwlock_unlock(&rw);
    return RESULT(r);
}

static void *rw_writer(void *arg)
{
    if (green_rwlock_wrlock(&rw, (int64_t)(intptr_t)arg) != 0)
        return RESULT(-1);
    if (writers_in++ || readers_in)
        rw_bad++;
    order[norder++] = 'w';
    int r = green_sleep(GREEN_MSEC(2));
    writers_in--;
    green_rwlock_unlock(&rw);
    return RESULT(r);
}

Test(sync, rwlock_lets_readers_share_and_writers_exclude_everyone)
{
    green_t t[12];
    for (int i = 0; i < 12; i++)
        t[i] = green_spawn(i % 4 == 3 ? rw_writer : rw_reader,
                           (void *)(intptr_t)GREEN_FOREVER, NULL);
    for (int i = 0; i < 12; i++)
        cr_expect_eq(join_code(t[i]), 0);
    cr_expect_eq(rw_bad, 0);
    cr_expect_eq(max_readers, 3);   /* each run of three readers together */
    cr_expect_eq(norder, 12);
}

Test(sync, rwlock_waiting_writer_blocks_new_readers)
{
    cr_assert_eq(green_rwlock_rdlock(&rw, GREEN_FOREVER), 0);
    green_t w = green_spawn(rw_writer, (void *)(intptr_t)GREEN_FOREVER, NULL);
    cr_assert_eq(green_yield(), 0);
    errno = 0;
    cr_expect_eq(green_rwlock_tryrdlock(&rw), -1);
    cr_expect_eq(errno, EBUSY);
    green_t r = green_spawn(rw_reader, (void *)(intptr_t)GREEN_FOREVER, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_expect_eq(norder, 0);
    cr_expect_eq(green_rwlock_unlock(&rw), 0);
    cr_expect_eq(join_code(w), 0);
    cr_expect_eq(join_code(r), 0);
    cr_assert_eq(norder, 2);
    cr_expect_eq(order[0], 'w');
    cr_expect_eq(order[1], 'r');
    cr_expect_eq(rw_bad, 0);
}

Test(sync, rwlock_writer_that_times_out_lets_queued_readers_in)
{
    cr_assert_eq(green_rwlock_rdlock(&rw, GREEN_FOREVER), 0);
    green_t w = green_spawn(rw_writer, (void *)(intptr_t)GREEN_MSEC(10), NULL);
    cr_assert_eq(green_yield(), 0);
    green_t r = green_spawn(rw_reader, (void *)(intptr_t)GREEN_FOREVER, NULL);
    cr_expect_eq(join_code(w), ETIMEDOUT);
    /* We still hold our read lock, yet the queued reader got in. */
    cr_expect_eq(join_code(r), 0);
    cr_expect_eq(norder, 1);
    cr_expect_eq(green_rwlock_unlock(&rw), 0);
    cr_expect_eq(green_rwlock_trywrlock(&rw), 0);
}

Test(sync, killed_rwlock_waiter_fails_with_ecanceled_and_the_lock_stays_usable)
{
    cr_assert_eq(green_rwlock_wrlock(&rw, GREEN_FOREVER), 0);
    green_t r = green_spawn(rw_reader, (void *)(intptr_t)GREEN_FOREVER, NULL);
    green_t w = green_spawn(rw_writer, (void *)(intptr_t)GREEN_FOREVER, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_assert_eq(green_kill(w), 0);
    cr_assert_eq(green_kill(r), 0);
    cr_expect_eq(join_code(w), ECANCELED);
    cr_expect_eq(join_code(r), ECANCELED);
    cr_expect_eq(green_rwlock_unlock(&rw), 0);
    cr_expect_eq(green_rwlock_tryrdlock(&rw), 0);
    cr_expect_eq(green_rwlock_tryrdlock(&rw), 0);
    cr_expect_eq(green_rwlock_unlock(&rw), 0);
    cr_expect_eq(green_rwlock_unlock(&rw), 0);
    cr_expect_eq(green_rwlock_trywrlock(&rw), 0);
}

Test(sync, rwlock_relock_by_the_writer_fails_with_edeadlk)
{
    cr_assert_eq(green_rwlock_wrlock(&rw, GREEN_FOREVER), 0);
    errno = 0;
    cr_expect_eq(green_rwlock_wrlock(&rw, GREEN_FOREVER), -1);
    cr_expect_eq(errno, EDEADLK);
    errno = 0;
    cr_expect_eq(green_rwlock_rdlock(&rw, GREEN_FOREVER), -1);
    cr_expect_eq(errno, EDEADLK);
    cr_expect_eq(green_rwlock_unlock(&rw), 0);
}

static void *rw_try_and_unlock(void *arg)
{
    (void)arg;
    if (green_rwlock_trywrlock(&rw) != -1 || errno != EBUSY)
        return (void *)1;
    if (green_rwlock_tryrdlock(&rw) != -1 || errno != EBUSY)
        return (void *)2;
    if (green_rwlock_unlock(&rw) != -1 || errno != EPERM)
        return (void *)3;
    if (green_rwlock_rdlock(&rw, GREEN_MSEC(2)) != -1 || errno != ETIMEDOUT)
        return (void *)4;
    return NULL;
}

Test(sync, rwlock_held_by_another_fails_try_with_ebusy_and_unlock_with_eperm)
{
    errno = 0;
    cr_expect_eq(green_rwlock_unlock(&rw), -1);
    cr_expect_eq(errno, EPERM);
    cr_assert_eq(green_rwlock_wrlock(&rw, GREEN_FOREVER), 0);
    green_t t = green_spawn(rw_try_and_unlock, NULL, NULL);
    cr_expect_eq(join_code(t), 0);
    cr_expect_eq(green_rwlock_unlock(&rw), 0);
    cr_assert_eq(green_rwlock_rdlock(&rw, 0), 0);
    errno = 0;
    cr_expect_eq(green_rwlock_trywrlock(&rw), -1);
    cr_expect_eq(errno, EBUSY);
    cr_expect_eq(green_rwlock_unlock(&rw), 0);
}

/* ---------------------------------------------------------- remote event */

#include <pthread.h>
#include <time.h>

static void *remote_setter(void *arg)
{
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    for (int i = 0; i < 1000; i++)
        green_event_set_remote(arg);
    return NULL;
}

Test(sync, event_set_from_another_os_thread_wakes_the_waiter_without_deadlock)
{
    green_event_t rev;
    cr_assert_eq(green_event_init_remote(&rev), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, remote_setter, &rev), 0);
    /* No other green thread and no watcher: only the expected remote set
     * keeps the hub from reporting EDEADLK. */
    int64_t t0 = green_now();
    int r = green_event_wait(&rev, GREEN_FOREVER);
    int e = errno;
    cr_expect_eq(r, 0, "wait failed with errno %d", e);
    cr_expect_geq(green_now() - t0, GREEN_MSEC(19));
    cr_expect(green_event_is_set(&rev));
    cr_assert_eq(pthread_join(th, NULL), 0);
    /* Sets merged into queued posts leave the event consistent. */
    green_event_clear(&rev);
    cr_assert_eq(green_sleep(GREEN_MSEC(1)), 0);
    cr_expect_not(green_event_is_set(&rev));
}

Test(sync, waiting_on_a_plain_event_nobody_can_set_fails_with_edeadlk)
{
    errno = 0;
    cr_expect_eq(green_event_wait(&ev, GREEN_FOREVER), -1);
    cr_expect_eq(errno, EDEADLK);
}

/* ------------------------------------------------------- randomised mix */

#define MIX_THREADS 40
#define MIX_ROUNDS  2000
static green_sem_t mix_sem;
static int mix_in_mutex, mix_readers, mix_writer, mix_violations;
static long mix_posts, mix_waits;
static int mix_finished;

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static int64_t mix_timeout(unsigned *s)
{
    unsigned r = next_rand(s) % 4;
    return r == 0 ? GREEN_FOREVER : r == 1 ? 0 : GREEN_USEC(50 * r);
}

static void mix_section(int *flag, unsigned *s)
{
    if ((*flag)++)
        mix_violations++;
    if (next_rand(s) % 2)
        green_yield();
    (*flag)--;
}

static void mix_mutex(unsigned *s)
{
    if (green_mutex_lock(&mu, mix_timeout(s)) != 0)
        return;
    mix_section(&mix_in_mutex, s);
    if (green_mutex_unlock(&mu) != 0)
        mix_violations++;
}

static void mix_cond(unsigned *s)
{
    if (green_mutex_lock(&mu, GREEN_FOREVER) != 0)
        return;
    if (next_rand(s) % 2)
        green_cond_wait(&cv, &mu, GREEN_USEC(100));
    else if (next_rand(s) % 2)
        green_cond_signal(&cv);
    else
        green_cond_broadcast(&cv);
    mix_section(&mix_in_mutex, s);   /* the mutex is held whatever happened */
    if (green_mutex_unlock(&mu) != 0)
        mix_violations++;
}

static void mix_rwlock(unsigned *s)
{
    bool write = next_rand(s) % 3 == 0;
    int r = write ? green_rwlock_wrlock(&rw, mix_timeout(s))
                  : green_rwlock_rdlock(&rw, mix_timeout(s));
    if (r != 0)
        return;
    if (write) {
        if (mix_readers)
            mix_violations++;
        mix_section(&mix_writer, s);
    } else {
        if (mix_writer)
            mix_violations++;
        mix_readers++;
        if (next_rand(s) % 2)
            green_yield();
        mix_readers--;
    }
    if (green_rwlock_unlock(&rw) != 0)
        mix_violations++;
}

static void mix_semaphore(unsigned *s)
{
    if (next_rand(s) % 2) {
        if (green_sem_post(&mix_sem) == 0)
            mix_posts++;
    } else if (green_sem_wait(&mix_sem, mix_timeout(s)) == 0) {
        mix_waits++;
    }
}

static void *mix_worker(void *arg)
{
    unsigned s = (unsigned)(intptr_t)arg;
    for (int i = 0; i < MIX_ROUNDS; i++) {
        switch (next_rand(&s) % 4) {
        case 0: mix_mutex(&s); break;
        case 1: mix_cond(&s); break;
        case 2: mix_rwlock(&s); break;
        default: mix_semaphore(&s); break;
        }
    }
    mix_finished++;
    return NULL;
}

static green_t mix_threads[MIX_THREADS];
static int mix_kills;

static void *mix_killer(void *arg)
{
    unsigned s = (unsigned)(intptr_t)arg;
    while (mix_finished < MIX_THREADS) {
        green_t t = mix_threads[next_rand(&s) % MIX_THREADS];
        green_kill(t);
        mix_kills++;
        if (next_rand(&s) % 2)
            green_yield();
        else
            green_sleep(GREEN_USEC(10));
    }
    return NULL;
}

Test(sync, random_mix_of_timeouts_and_kills_leaves_every_object_consistent)
{
    cr_assert_eq(green_sem_init(&mix_sem, 2), 0);
    for (int i = 0; i < MIX_THREADS; i++)
        mix_threads[i] = green_spawn(mix_worker, (void *)(intptr_t)(i + 1), NULL);
    green_t k = green_spawn(mix_killer, (void *)77, NULL);
    /* The killer stops once every worker is done; handles stay valid
     * (finished, not yet joined) until then. */
    cr_assert_eq(green_join(k, NULL), 0);
    for (int i = 0; i < MIX_THREADS; i++)
        cr_assert_eq(green_join(mix_threads[i], NULL), 0);
    cr_log_info("kills=%d posts=%ld waits=%ld", mix_kills, mix_posts, mix_waits);
    cr_expect_eq(mix_violations, 0);
    cr_expect_gt(mix_kills, 0);
    cr_expect_eq(green_mutex_trylock(&mu), 0);
    cr_expect_eq(green_rwlock_trywrlock(&rw), 0);
    cr_expect_eq(green_sem_value(&mix_sem), 2 + mix_posts - mix_waits);
}

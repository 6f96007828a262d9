/*
 * test_offload.c - green_offload: a blocking function runs on a worker OS
 * thread while the caller parks and the other green threads keep running;
 * kill and timeout scopes release the caller at once, and the job's late
 * completion wakes nobody; the pool size is honoured.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "green.h"

static void ms_sleep(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static pthread_t caller_os_thread;
static atomic_int on_other_os_thread;

static void *square(void *arg)
{
    if (!pthread_equal(pthread_self(), caller_os_thread))
        atomic_store(&on_other_os_thread, 1);
    intptr_t v = (intptr_t)arg;
    return (void *)(v * v);
}

Test(offload, the_result_comes_back_from_a_worker_thread)
{
    caller_os_thread = pthread_self();
    void *r = NULL;
    cr_assert_eq(green_offload(square, (void *)12, &r), 0);
    cr_expect_eq((intptr_t)r, 144);
    cr_expect_eq(atomic_load(&on_other_os_thread), 1);
    errno = 0;
    cr_expect_eq(green_offload(NULL, NULL, &r), -1);
    cr_expect_eq(errno, EINVAL);
}

static void *sleep_100ms(void *arg)
{
    ms_sleep(100);
    return arg;
}

static int ticks;
static volatile int stop_ticking;

static void *ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000 && !stop_ticking; i++) {
        ticks++;
        green_sleep(GREEN_MSEC(1));
    }
    return NULL;
}

Test(offload, other_green_threads_keep_running_while_a_worker_sleeps)
{
    green_t tk = green_spawn(ticker, NULL, NULL);
    cr_assert_eq(green_yield(), 0);
    int before = ticks;
    void *r = NULL;
    int64_t t0 = green_now();
    cr_assert_eq(green_offload(sleep_100ms, (void *)7, &r), 0);
    cr_expect_geq(green_now() - t0, GREEN_MSEC(100));
    cr_expect_eq((intptr_t)r, 7);
    /* About 100 ticks of 1 ms fit in 100 ms; a blocked hub gives ~0. */
    cr_expect_geq(ticks - before, 10, "only %d ticks while offloading", ticks - before);
    stop_ticking = 1;
    cr_assert_eq(green_join(tk, NULL), 0);
}

static atomic_int job_done;

static void *slow_marked(void *arg)
{
    ms_sleep((int)(intptr_t)arg);
    atomic_store(&job_done, 1);
    return (void *)1;
}

struct afterlife {
    int off_rc, off_err;
    int job_done_at_return;
    int sleep_rc;
    int64_t slept;
};

static void *offload_then_sleep(void *arg)
{
    struct afterlife *a = arg;
    errno = 0;
    a->off_rc = green_offload(slow_marked, (void *)200, NULL);
    a->off_err = errno;
    a->job_done_at_return = atomic_load(&job_done);
    /* The job completes during this sleep: it must not cut it short. */
    int64_t t0 = green_now();
    a->sleep_rc = green_sleep(GREEN_MSEC(400));
    a->slept = green_now() - t0;
    return NULL;
}

Test(offload, killing_the_caller_returns_ecanceled_and_the_late_result_wakes_nobody)
{
    struct afterlife a = { 0 };
    green_t t = green_spawn(offload_then_sleep, &a, NULL);
    cr_assert_eq(green_sleep(GREEN_MSEC(10)), 0);    /* t is in the offload */
    cr_assert_eq(green_kill(t), 0);
    cr_assert_eq(green_join(t, NULL), 0);
    cr_expect_eq(a.off_rc, -1);
    cr_expect_eq(a.off_err, ECANCELED);
    cr_expect_eq(a.job_done_at_return, 0, "the caller waited for the job");
    cr_expect_eq(a.sleep_rc, 0);
    cr_expect_geq(a.slept, GREEN_MSEC(400), "the late completion woke the sleep");
    cr_expect_eq(atomic_load(&job_done), 1);
}

static void *scoped_offload(void *arg)
{
    struct afterlife *a = arg;
    green_timeout_t s;
    green_timeout_begin(&s, GREEN_MSEC(10));
    errno = 0;
    a->off_rc = green_offload(slow_marked, (void *)100, NULL);
    a->off_err = errno;
    a->job_done_at_return = atomic_load(&job_done);
    green_timeout_end(&s);
    int p[2];
    if (pipe(p) != 0)
        return (void *)1;
    int64_t t0 = green_now();
    a->sleep_rc = green_wait_readable(p[0], GREEN_MSEC(300));   /* ETIMEDOUT */
    a->slept = green_now() - t0;
    close(p[0]);
    close(p[1]);
    return NULL;
}

Test(offload, a_timeout_scope_releases_the_caller_with_etimedout)
{
    struct afterlife a = { 0 };
    green_t t = green_spawn(scoped_offload, &a, NULL);
    cr_assert_eq(green_join(t, NULL), 0);
    cr_expect_eq(a.off_rc, -1);
    cr_expect_eq(a.off_err, ETIMEDOUT);
    cr_expect_eq(a.job_done_at_return, 0);
    cr_expect_eq(a.sleep_rc, -1, "the late completion woke the fd wait");
    cr_expect_geq(a.slept, GREEN_MSEC(300));
}

static atomic_int running, max_running;

static void *count_concurrency(void *arg)
{
    int now = atomic_fetch_add(&running, 1) + 1;
    int m = atomic_load(&max_running);
    while (now > m && !atomic_compare_exchange_weak(&max_running, &m, now))
        ;
    ms_sleep(30);
    atomic_fetch_sub(&running, 1);
    return arg;
}

static void *offload_counter(void *arg)
{
    void *r = NULL;
    if (green_offload(count_concurrency, arg, &r) != 0)
        return (void *)-1;
    return r;
}

static int max_concurrency_of(int jobs)
{
    green_t t[16];
    for (int i = 0; i < jobs; i++)
        t[i] = green_spawn(offload_counter, (void *)(intptr_t)i, NULL);
    for (int i = 0; i < jobs; i++) {
        void *r;
        cr_assert_eq(green_join(t[i], &r), 0);
        cr_expect_eq((intptr_t)r, i);
    }
    return atomic_load(&max_running);
}

Test(offload, the_pool_size_set_before_first_use_bounds_concurrency)
{
    errno = 0;
    cr_expect_eq(green_offload_set_workers(0), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(green_offload_set_workers(257), -1);
    cr_assert_eq(green_offload_set_workers(2), 0);
    cr_expect_eq(max_concurrency_of(8), 2);
    errno = 0;
    cr_expect_eq(green_offload_set_workers(3), -1);
    cr_expect_eq(errno, EBUSY);
}

Test(offload, green_workers_sets_the_default_pool_size)
{
    setenv("GREEN_WORKERS", "3", 1);
    cr_expect_eq(max_concurrency_of(9), 3);
}

static void *offload_square(void *arg)
{
    void *r = NULL;
    if (green_offload(square, arg, &r) != 0)
        return (void *)-1;
    return r;
}

Test(offload, fifty_green_threads_offloading_at_once_all_get_their_results)
{
    enum { N = 50 };
    green_t t[N];
    for (int i = 0; i < N; i++)
        t[i] = green_spawn(offload_square, (void *)(intptr_t)i, NULL);
    for (int i = 0; i < N; i++) {
        void *r;
        cr_assert_eq(green_join(t[i], &r), 0);
        cr_expect_eq((intptr_t)r, (intptr_t)i * i);
    }
}

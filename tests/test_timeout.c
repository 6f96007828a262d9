/*
 * test_timeout.c - timeout scopes (gevent.Timeout): every park inside a
 * scope fails with ETIMEDOUT once its deadline passes; scopes nest and the
 * earliest deadline wins; a thread's scopes never affect another thread.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include "green.h"

Test(timeout, a_scope_makes_a_long_sleep_fail_with_etimedout_at_its_deadline)
{
    green_timeout_t s;
    int64_t t0 = green_now();
    cr_assert_eq(green_timeout_begin(&s, GREEN_MSEC(10)), 0);
    errno = 0;
    cr_expect_eq(green_sleep(GREEN_SEC(10)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    int64_t el = green_now() - t0;
    cr_expect(green_timeout_end(&s));
    cr_expect_geq(el, GREEN_MSEC(10));
    cr_expect_lt(el, GREEN_SEC(5));
}

Test(timeout, a_sleep_shorter_than_the_scope_succeeds_and_the_scope_did_not_expire)
{
    green_timeout_t s;
    cr_assert_eq(green_timeout_begin(&s, GREEN_SEC(10)), 0);
    cr_expect_eq(green_sleep(GREEN_MSEC(1)), 0);
    cr_expect_not(green_timeout_end(&s));
}

Test(timeout, every_park_after_the_deadline_fails_at_once)
{
    green_timeout_t s;
    cr_assert_eq(green_timeout_begin(&s, GREEN_MSEC(2)), 0);
    cr_expect_eq(green_sleep(GREEN_SEC(10)), -1);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int64_t t0 = green_now();
    errno = 0;
    cr_expect_eq(green_wait_readable(p[0], GREEN_FOREVER), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    errno = 0;
    cr_expect_eq(green_sleep(GREEN_MSEC(1)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect_lt(green_now() - t0, GREEN_SEC(1));
    cr_expect(green_timeout_end(&s));
    /* Outside the scope parks work again. */
    cr_expect_eq(green_sleep(GREEN_USEC(10)), 0);
    close(p[0]);
    close(p[1]);
}

Test(timeout, the_inner_of_two_nested_scopes_expires_first)
{
    green_timeout_t outer, inner;
    cr_assert_eq(green_timeout_begin(&outer, GREEN_SEC(10)), 0);
    cr_assert_eq(green_timeout_begin(&inner, GREEN_MSEC(5)), 0);
    cr_expect_eq(green_sleep(GREEN_SEC(10)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect(green_timeout_end(&inner));
    cr_expect_eq(green_sleep(GREEN_MSEC(1)), 0);
    cr_expect_not(green_timeout_end(&outer));
}

Test(timeout, an_outer_scope_shorter_than_the_inner_one_wins)
{
    green_timeout_t outer, inner;
    cr_assert_eq(green_timeout_begin(&outer, GREEN_MSEC(5)), 0);
    cr_assert_eq(green_timeout_begin(&inner, GREEN_SEC(10)), 0);
    int64_t t0 = green_now();
    cr_expect_eq(green_sleep(GREEN_SEC(10)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect_lt(green_now() - t0, GREEN_SEC(5));
    cr_expect_not(green_timeout_end(&inner));
    cr_expect(green_timeout_end(&outer));
}

static void *sleep_ms(void *arg)
{
    int r = green_sleep(GREEN_MSEC((intptr_t)arg));
    return (void *)(intptr_t)(r == -1 ? errno : 0);
}

Test(timeout, a_join_inside_a_scope_times_out_and_the_thread_stays_joinable)
{
    green_t t = green_spawn(sleep_ms, (void *)30, NULL);
    green_timeout_t s;
    cr_assert_eq(green_timeout_begin(&s, GREEN_MSEC(5)), 0);
    errno = 0;
    cr_expect_eq(green_join(t, NULL), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect(green_timeout_end(&s));
    void *r = (void *)1;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_null(r);
}

static void *scoped_sleeper(void *arg)
{
    green_timeout_t s;
    green_timeout_begin(&s, GREEN_MSEC((intptr_t)arg));
    int r = green_sleep(GREEN_MSEC(50));
    int e = errno;
    green_timeout_end(&s);
    return (void *)(intptr_t)(r == -1 ? e : 0);
}

Test(timeout, a_scope_of_one_thread_does_not_affect_another)
{
    green_t a = green_spawn(scoped_sleeper, (void *)2, NULL);
    green_t b = green_spawn(sleep_ms, (void *)20, NULL);
    void *ra, *rb;
    cr_assert_eq(green_join(a, &ra), 0);
    cr_assert_eq(green_join(b, &rb), 0);
    cr_expect_eq((intptr_t)ra, ETIMEDOUT);
    cr_expect_eq((intptr_t)rb, 0);
}

Test(timeout, a_forever_scope_never_expires_and_bad_arguments_fail_with_einval)
{
    green_timeout_t s;
    cr_assert_eq(green_timeout_begin(&s, GREEN_FOREVER), 0);
    cr_expect_eq(green_sleep(GREEN_MSEC(1)), 0);
    cr_expect_not(green_timeout_end(&s));
    errno = 0;
    cr_expect_eq(green_timeout_begin(NULL, 5), -1);
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_eq(green_timeout_begin(&s, -5), -1);
    cr_expect_eq(errno, EINVAL);
}

Test(timeout, a_sleep_ending_before_the_scope_returns_zero_even_near_the_deadline)
{
    /* Own deadline and scope deadline close together: the sleep's own
     * deadline is earlier, so it is a normal return. */
    green_timeout_t s;
    cr_assert_eq(green_timeout_begin(&s, GREEN_MSEC(100)), 0);
    cr_expect_eq(green_sleep_until(s.deadline - GREEN_MSEC(1)), 0);
    cr_expect_not(green_timeout_end(&s));
}

Test(timeout, yield_inside_an_expired_scope_still_lets_others_run)
{
    green_t t = green_spawn(sleep_ms, (void *)1, NULL);
    green_timeout_t s;
    cr_assert_eq(green_timeout_begin(&s, 0), 0);
    cr_expect_eq(green_yield(), 0);
    green_timeout_end(&s);
    cr_assert_eq(green_join(t, NULL), 0);
}

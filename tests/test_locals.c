/*
 * test_locals.c - green-thread-local storage: values per green thread,
 * destructors at exit (repeated while they set values again, as pthread
 * keys), key exhaustion and deletion.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include "green.h"

static green_key_t key;

static void *set_get(void *arg)
{
    if (green_setspecific(key, arg) != 0)
        return (void *)-1;
    for (int i = 0; i < 3; i++) {
        green_yield();
        if (green_getspecific(key) != arg)
            return (void *)-2;
    }
    return green_getspecific(key);
}

Test(locals, each_thread_sees_its_own_value)
{
    cr_assert_eq(green_key_create(&key, NULL), 0);
    cr_expect_null(green_getspecific(key));
    cr_assert_eq(green_setspecific(key, (void *)3), 0);
    green_t a = green_spawn(set_get, (void *)1, NULL);
    green_t b = green_spawn(set_get, (void *)2, NULL);
    void *ra, *rb;
    cr_assert_eq(green_join(a, &ra), 0);
    cr_assert_eq(green_join(b, &rb), 0);
    cr_expect_eq((intptr_t)ra, 1);
    cr_expect_eq((intptr_t)rb, 2);
    cr_expect_eq((intptr_t)green_getspecific(key), 3);
}

static int destroyed[8], destroyed_n;

static void record(void *v)
{
    if (destroyed_n < 8)
        destroyed[destroyed_n++] = (int)(intptr_t)v;
}

static void *set_and_return(void *arg)
{
    green_setspecific(key, arg);
    return NULL;
}

Test(locals, the_destructor_runs_at_exit_for_non_null_values_only)
{
    destroyed_n = 0;
    cr_assert_eq(green_key_create(&key, record), 0);
    green_t a = green_spawn(set_and_return, (void *)5, NULL);
    green_t b = green_spawn(set_and_return, NULL, NULL);
    cr_assert_eq(green_join(a, NULL), 0);
    cr_assert_eq(green_join(b, NULL), 0);
    cr_expect_eq(destroyed_n, 1);
    cr_expect_eq(destroyed[0], 5);
}

static void *set_and_exit(void *arg)
{
    green_setspecific(key, arg);
    green_exit(NULL);
}

Test(locals, green_exit_runs_the_destructors)
{
    destroyed_n = 0;
    cr_assert_eq(green_key_create(&key, record), 0);
    green_t a = green_spawn(set_and_exit, (void *)9, NULL);
    cr_assert_eq(green_join(a, NULL), 0);
    cr_expect_eq(destroyed_n, 1);
    cr_expect_eq(destroyed[0], 9);
}

static void resetting(void *v)
{
    record(v);
    intptr_t n = (intptr_t)v;
    if (n < 100)                       /* set again: another round */
        green_setspecific(key, (void *)(n + 1));
}

Test(locals, a_destructor_that_sets_a_value_again_runs_again_at_most_four_times)
{
    destroyed_n = 0;
    cr_assert_eq(green_key_create(&key, resetting), 0);
    green_t a = green_spawn(set_and_return, (void *)1, NULL);
    cr_assert_eq(green_join(a, NULL), 0);
    cr_expect_eq(destroyed_n, 4);
    cr_expect_eq(destroyed[0], 1);
    cr_expect_eq(destroyed[3], 4);
}

Test(locals, keys_run_out_with_eagain_and_deleted_keys_are_invalid)
{
    static green_key_t k[1024];
    int n = 0;
    while (n < 1024 && green_key_create(&k[n], NULL) == 0)
        n++;
    cr_expect_eq(n, 1024);
    green_key_t extra;
    errno = 0;
    cr_expect_eq(green_key_create(&extra, NULL), -1);
    cr_expect_eq(errno, EAGAIN);
    cr_assert_eq(green_key_delete(k[7]), 0);
    errno = 0;
    cr_expect_eq(green_setspecific(k[7], (void *)1), -1);
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_eq(green_key_delete(k[7]), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(green_key_create(&extra, NULL), 0);   /* the slot is free again */
    cr_expect_eq(extra, k[7]);
    errno = 0;
    cr_expect_eq(green_setspecific(5000, NULL), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_null(green_getspecific(5000));
}

Test(locals, a_deleted_keys_destructor_is_not_called)
{
    destroyed_n = 0;
    cr_assert_eq(green_key_create(&key, record), 0);
    green_t a = green_spawn(set_get, (void *)4, NULL);
    cr_assert_eq(green_yield(), 0);        /* a has set its value */
    cr_assert_eq(green_key_delete(key), 0);
    cr_assert_eq(green_join(a, NULL), 0);
    cr_expect_eq(destroyed_n, 0);
}

/*
 * test_lock.c - the lock core (libgreen/lock.c) through its internal API:
 * the policies that green.h and the pthread layer choose between (rwlock
 * preference, a lock wait that defers kills, mutex types). The wrappers'
 * own behaviour is pinned by test_sync.c and test_hooks_pthread.c. The
 * test body is the main green thread.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "lock.h"

static struct green_thread *self(void)
{
    cr_assert_not_null(green__ctx_get());
    return green__current();
}

/* ----------------------------------------------------------------- rwlock */

static struct green__rwlock rw;
static enum green__rw_prefer prefer;
static char order[16];
static int norder;

struct rw_arg {
    char name;
    bool write;
    int64_t timeout_ns;    /* relative, or GREEN_FOREVER */
};

/* Lock rw as arg says, note the name, hold it across a yield, unlock. */
static void *rw_taker(void *p)
{
    struct rw_arg *a = p;
    int64_t deadline = green__deadline(a->timeout_ns);
    int e = green__rwlock_lock(&rw, green__current(), a->write, prefer, deadline,
                               &green__lock_plain);
    if (e)
        return (void *)(intptr_t)e;
    order[norder++] = a->name;
    green_yield();
    cr_expect_eq(green__rwlock_unlock(&rw, green__current(), prefer), 0);
    return NULL;
}

/* The main thread write-locks rw; the takers queue up in the given order
 * (each parks before the next starts); then it unlocks and lets them run. */
static void run_behind_a_writer(enum green__rw_prefer p, struct rw_arg *args, int n)
{
    memset(&rw, 0, sizeof rw);
    memset(order, 0, sizeof order);
    norder = 0;
    prefer = p;
    cr_assert_eq(green__rwlock_lock(&rw, self(), true, prefer, GREEN_FOREVER,
                                    &green__lock_plain), 0);
    green_t t[8];
    for (int i = 0; i < n; i++) {
        t[i] = green_spawn(rw_taker, &args[i], NULL);
        green_yield();   /* it parks behind the writer */
    }
    cr_assert_eq(norder, 0);
    cr_assert_eq(green__rwlock_unlock(&rw, self(), prefer), 0);
    for (int i = 0; i < n; i++)
        cr_expect_eq(green_join(t[i], NULL), 0);
    cr_expect(!green__rwlock_busy(&rw));
}

Test(lock, rwlock_fifo_serves_waiters_in_arrival_order)
{
    struct rw_arg a[] = {{'r', false, -1}, {'W', true, -1}, {'s', false, -1}};
    run_behind_a_writer(GREEN__RW_FIFO, a, 3);
    cr_expect_str_eq(order, "rWs");
}

Test(lock, rwlock_preferring_writers_serves_waiting_writers_before_readers)
{
    struct rw_arg a[] = {{'r', false, -1}, {'W', true, -1}, {'s', false, -1},
                         {'X', true, -1}};
    run_behind_a_writer(GREEN__RW_WRITERS, a, 4);
    cr_expect_str_eq(order, "WXrs");
}

Test(lock, rwlock_preferring_readers_serves_waiting_readers_before_writers)
{
    struct rw_arg a[] = {{'W', true, -1}, {'r', false, -1}, {'X', true, -1},
                         {'s', false, -1}};
    run_behind_a_writer(GREEN__RW_READERS, a, 4);
    cr_expect_str_eq(order, "rsWX");
}

Test(lock, rwlock_preferring_readers_lets_a_new_reader_past_a_waiting_writer)
{
    memset(&rw, 0, sizeof rw);
    prefer = GREEN__RW_READERS;
    cr_assert_eq(green__rwlock_trylock(&rw, self(), false, prefer), 0);
    struct rw_arg w = {'W', true, -1};
    green_t t = green_spawn(rw_taker, &w, NULL);
    green_yield();   /* the writer waits for the reader */
    cr_expect_eq(green__rwlock_trylock(&rw, self(), false, prefer), 0);
    for (enum green__rw_prefer p = GREEN__RW_WRITERS; p <= GREEN__RW_FIFO; p++)
        cr_expect_eq(green__rwlock_trylock(&rw, self(), false, p), EBUSY);
    cr_expect_eq(green__rwlock_unlock(&rw, self(), prefer), 0);
    cr_expect_eq(green__rwlock_unlock(&rw, self(), prefer), 0);
    cr_expect_eq(green_join(t, NULL), 0);
}

/* A reader holds the lock, a writer waits with a short deadline, a reader
 * waits behind it: when the writer gives up, the reader gets in at once. */
static void writer_gives_up(enum green__rw_prefer p)
{
    memset(&rw, 0, sizeof rw);
    memset(order, 0, sizeof order);
    norder = 0;
    prefer = p;
    cr_assert_eq(green__rwlock_trylock(&rw, self(), false, prefer), 0);
    struct rw_arg w = {'W', true, GREEN_MSEC(5)}, r = {'r', false, -1};
    green_t tw = green_spawn(rw_taker, &w, NULL);
    green_yield();
    green_t tr = green_spawn(rw_taker, &r, NULL);
    green_yield();
    cr_expect_eq(norder, 0, "the reader waits behind the writer");
    void *res;
    cr_expect_eq(green_join(tw, &res), 0);
    cr_expect_eq((int)(intptr_t)res, ETIMEDOUT);
    cr_expect_eq(green_join(tr, NULL), 0);
    cr_expect_str_eq(order, "r", "the reader got in while the lock was still read-held");
    cr_expect_eq(green__rwlock_unlock(&rw, self(), prefer), 0);
    cr_expect(!green__rwlock_busy(&rw));
}

Test(lock, rwlock_writer_that_gives_up_lets_in_the_readers_it_held_back)
{
    writer_gives_up(GREEN__RW_FIFO);
    writer_gives_up(GREEN__RW_WRITERS);
}

/* ------------------------------------------------------------------ mutex */

static struct green__mutex mx;

static const struct green__lock_how deferring = {.defer_kill = true};

static void *mutex_taker(void *p)
{
    const struct green__lock_how *how = p;
    int e = green__mutex_lock(&mx, green__current(), GREEN__MUTEX_NORMAL, GREEN_FOREVER, how);
    if (e)
        return (void *)(intptr_t)e;
    /* With the kill deferred, the next park fails at once. */
    int r = green_sleep(GREEN_MSEC(50));
    int code = r == -1 ? errno : 0;
    green__mutex_unlock(&mx, green__current(), GREEN__MUTEX_NORMAL);
    return (void *)(intptr_t)(code == ECANCELED ? 1000 : code);
}

Test(lock, mutex_wait_that_defers_kills_waits_on_and_fails_the_next_park)
{
    memset(&mx, 0, sizeof mx);
    cr_assert_eq(green__mutex_lock(&mx, self(), GREEN__MUTEX_NORMAL, GREEN_FOREVER,
                                   &green__lock_plain), 0);
    green_t t = green_spawn(mutex_taker, (void *)&deferring, NULL);
    green_yield();
    cr_assert_eq(green_kill(t), 0);
    green_yield();
    cr_expect_eq(green__mutex_holder(&mx), (uintptr_t)self(), "the killed waiter did not give up");
    green__mutex_release(&mx);
    cr_expect_neq(green__mutex_holder(&mx), 0, "handed to the waiter");
    void *res;
    cr_expect_eq(green_join(t, &res), 0);
    cr_expect_eq((int)(intptr_t)res, 1000);
}

Test(lock, mutex_wait_with_the_plain_policy_fails_with_ecanceled_when_killed)
{
    memset(&mx, 0, sizeof mx);
    cr_assert_eq(green__mutex_trylock(&mx, self(), GREEN__MUTEX_NORMAL), 0);
    green_t t = green_spawn(mutex_taker, (void *)&green__lock_plain, NULL);
    green_yield();
    cr_assert_eq(green_kill(t), 0);
    void *res;
    cr_expect_eq(green_join(t, &res), 0);
    cr_expect_eq((int)(intptr_t)res, ECANCELED);
    cr_expect(green__waitq_empty(&mx.q));
    cr_expect_eq(green__mutex_unlock(&mx, self(), GREEN__MUTEX_NORMAL), 0);
    cr_expect(!green__mutex_busy(&mx));
}

Test(lock, mutex_types_decide_relock_and_foreign_unlock)
{
    uint32_t depth = 1;
    cr_expect_eq(green__mutex_relock(GREEN__MUTEX_NORMAL, &depth), EBUSY);
    cr_expect_eq(green__mutex_relock(GREEN__MUTEX_ERRORCHECK, &depth), EDEADLK);
    cr_expect_eq(green__mutex_relock(GREEN__MUTEX_RECURSIVE, &depth), 0);
    cr_expect_eq(depth, 2);
    depth = UINT32_MAX;
    cr_expect_eq(green__mutex_relock(GREEN__MUTEX_RECURSIVE, &depth), EAGAIN);

    /* Unlock by a thread that does not hold it: glibc's normal mutex lets
     * it go, the others say EPERM; a free mutex stays free. */
    struct green_thread other;
    memset(&mx, 0, sizeof mx);
    mx.owner = (uintptr_t)&other;
    mx.depth = 1;
    cr_expect_eq(green__mutex_unlock(&mx, self(), GREEN__MUTEX_ERRORCHECK), EPERM);
    cr_expect_eq(green__mutex_unlock(&mx, self(), GREEN__MUTEX_RECURSIVE), EPERM);
    cr_expect_eq(green__mutex_unlock(&mx, self(), GREEN__MUTEX_NORMAL), 0);
    cr_expect_eq(mx.owner, 0);
    cr_expect_eq(green__mutex_unlock(&mx, self(), GREEN__MUTEX_NORMAL), 0);
    cr_expect_eq(green__mutex_unlock(&mx, NULL, GREEN__MUTEX_ERRORCHECK), EPERM);
}

/* -------------------------------------------------------------- semaphore */

Test(lock, sem_units_added_without_waking_are_taken_by_the_next_wait)
{
    struct green__sem s;
    memset(&s, 0, sizeof s);
    cr_expect_eq(green__sem_trytake(&s), EAGAIN);
    cr_expect_eq(green__sem_add(&s), 0);
    cr_expect_eq(green__sem_wait(&s, self(), GREEN_FOREVER, &green__lock_plain), 0);
    s.value = GREEN__SEM_MAX;
    cr_expect_eq(green__sem_add(&s), EOVERFLOW);
    cr_expect_eq(green__sem_post(&s), EOVERFLOW);
}

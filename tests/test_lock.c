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
#include <pthread.h>
#include <sched.h>
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

/* ------------------------------------------------ several OS threads */

/* Every object here is hammered at once by green threads of three hubs
 * (three OS threads, each with its own hub, green_spawn'ing many green
 * threads) and by two plain OS threads without a hub (self NULL: they
 * block on futexes). Counters detect lost updates (two holders inside at
 * once) and lost wake-ups (a waiter never woken: the test hangs until
 * criterion's timeout kills it). */

#define HUBS    3
#define GREENS  8     /* green threads per hub */
#define PLAINS  2     /* plain OS threads */

struct mt {
    void *(*green)(void *);   /* body of each green thread */
    void *(*plain)(void *);   /* body of each plain OS thread */
};

static void *mt_hub(void *p)
{
    const struct mt *m = p;
    green_t t[GREENS];
    for (int i = 0; i < GREENS; i++)
        t[i] = green_spawn(m->green, (void *)(intptr_t)i, NULL);
    long bad = 0;
    for (int i = 0; i < GREENS; i++) {
        void *r = NULL;
        if (!t[i] || green_join(t[i], &r) != 0 || r != NULL)
            bad++;
    }
    return (void *)bad;
}

/* Run m on HUBS hub threads and PLAINS plain threads; every body returns
 * NULL when it saw nothing wrong. */
static void mt_run(const struct mt *m)
{
    pthread_t h[HUBS + PLAINS];
    for (int i = 0; i < HUBS; i++)
        cr_assert_eq(pthread_create(&h[i], NULL, mt_hub, (void *)m), 0);
    for (int i = 0; i < PLAINS; i++)
        cr_assert_eq(pthread_create(&h[HUBS + i], NULL, m->plain, (void *)(intptr_t)i), 0);
    for (int i = 0; i < HUBS + PLAINS; i++) {
        void *r = (void *)1;
        cr_assert_eq(pthread_join(h[i], &r), 0);
        cr_expect_null(r, "thread %d saw something wrong (%ld)", i, (long)(intptr_t)r);
    }
}

/* A short pause that lets the others in: a green thread yields, a plain
 * one gives up its CPU. */
static void mt_pause(void)
{
    if (green__current())
        green_yield();
    else
        sched_yield();
}

#define MT_ITERS 3000

static green_mutex_t mt_mu = GREEN_MUTEX_INIT;
static long mt_counter;
static int mt_inside;

static bool mt_mutex_round(struct green_thread *self, int i)
{
    if (self ? green_mutex_lock(&mt_mu, GREEN_FOREVER) != 0
             : green__mutex_lock((struct green__mutex *)(void *)&mt_mu, NULL,
                                 GREEN__MUTEX_ERRORCHECK, GREEN_FOREVER,
                                 &green__lock_plain) != 0)
        return false;
    bool ok = __atomic_fetch_add(&mt_inside, 1, __ATOMIC_RELAXED) == 0;
    long v = mt_counter;
    if (i % 16 == 0)
        mt_pause();   /* hold it across a switch now and then */
    mt_counter = v + 1;
    __atomic_fetch_sub(&mt_inside, 1, __ATOMIC_RELAXED);
    if (self)
        ok &= green_mutex_unlock(&mt_mu) == 0;
    else
        ok &= green__mutex_unlock((struct green__mutex *)(void *)&mt_mu, NULL,
                                  GREEN__MUTEX_ERRORCHECK) == 0;
    return ok;
}

static void *mt_mutex_body(void *arg)
{
    (void)arg;
    struct green_thread *self = green__current();
    for (int i = 0; i < MT_ITERS; i++)
        if (!mt_mutex_round(self, i))
            return (void *)1;
    return NULL;
}

Test(lock_mt, mutex_of_three_hubs_and_two_plain_threads_loses_no_update, .timeout = 60)
{
    struct mt m = { mt_mutex_body, mt_mutex_body };
    mt_run(&m);
    cr_expect_eq(mt_counter, (long)(HUBS * GREENS + PLAINS) * MT_ITERS);
    cr_expect_eq(green_mutex_trylock(&mt_mu), 0, "left held or flagged");
    struct green__mutex *gm = (struct green__mutex *)(void *)&mt_mu;
    cr_expect(green__waitq_empty(&gm->q));
}

/* Semaphore: every thread takes a unit and gives it back; with 3 units
 * never more than 3 inside, and at the end the 3 units are all back. */
static green_sem_t mt_sem;

static void *mt_sem_body(void *arg)
{
    (void)arg;
    struct green_thread *self = green__current();
    struct green__sem *s = (struct green__sem *)(void *)&mt_sem;
    for (int i = 0; i < MT_ITERS; i++) {
        if (self ? green_sem_wait(&mt_sem, GREEN_FOREVER) != 0
                 : green__sem_wait(s, NULL, GREEN_FOREVER, &green__lock_plain) != 0)
            return (void *)1;
        int in = __atomic_add_fetch(&mt_inside, 1, __ATOMIC_RELAXED);
        if (in > 3)
            return (void *)2;
        if (i % 8 == 0)
            mt_pause();
        __atomic_fetch_add(&mt_counter, 1, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&mt_inside, 1, __ATOMIC_RELAXED);
        if (green__sem_post(s) != 0)
            return (void *)3;
    }
    return NULL;
}

Test(lock_mt, sem_of_three_hubs_and_two_plain_threads_loses_no_unit, .timeout = 60)
{
    cr_assert_eq(green_sem_init(&mt_sem, 3), 0);
    struct mt m = { mt_sem_body, mt_sem_body };
    mt_run(&m);
    cr_expect_eq(mt_counter, (long)(HUBS * GREENS + PLAINS) * MT_ITERS);
    cr_expect_eq(green_sem_value(&mt_sem), 3);
}

/* Condition variable: a bounded queue of tokens. Green threads of every
 * hub produce and consume (half each), the plain threads consume; every
 * token produced is consumed exactly once. */
#define MT_TOKENS 2000   /* per producer */
static green_cond_t mt_nonempty, mt_nonfull;
static green_mutex_t mt_qmu = GREEN_MUTEX_INIT;
static int mt_queued, mt_producers_left;
static long mt_consumed;

static struct green__mutex *qmu(void) { return (struct green__mutex *)(void *)&mt_qmu; }

static int mt_cond_wait(green_cond_t *c)
{
    if (green__current())
        return green_cond_wait(c, &mt_qmu, GREEN_FOREVER);
    return green__cond_wait((struct green__cond *)(void *)c, qmu(), NULL, GREEN_FOREVER,
                            &green__lock_plain);
}

static void mt_qlock(void)
{
    if (green__current())
        green_mutex_lock(&mt_qmu, GREEN_FOREVER);
    else
        green__mutex_lock(qmu(), NULL, GREEN__MUTEX_ERRORCHECK, GREEN_FOREVER,
                          &green__lock_plain);
}

static void mt_qunlock(void)
{
    green__mutex_unlock(qmu(), green__current(), GREEN__MUTEX_ERRORCHECK);
}

static void *mt_consumer(void)
{
    for (;;) {
        mt_qlock();
        while (!mt_queued && mt_producers_left)
            if (mt_cond_wait(&mt_nonempty) != 0)
                return (void *)1;
        if (!mt_queued) {
            mt_qunlock();
            return NULL;
        }
        mt_queued--;
        mt_consumed++;
        green__cond_signal((struct green__cond *)(void *)&mt_nonfull);
        mt_qunlock();
    }
}

static void *mt_cond_green(void *arg)
{
    if ((intptr_t)arg % 2)
        return mt_consumer();
    for (int i = 0; i < MT_TOKENS; i++) {
        mt_qlock();
        while (mt_queued >= 4)
            if (mt_cond_wait(&mt_nonfull) != 0)
                return (void *)1;
        mt_queued++;
        green_cond_signal(&mt_nonempty);
        mt_qunlock();
    }
    mt_qlock();
    if (--mt_producers_left == 0)
        green_cond_broadcast(&mt_nonempty);
    mt_qunlock();
    return NULL;
}

static void *mt_cond_plain(void *arg)
{
    (void)arg;
    return mt_consumer();
}

Test(lock_mt, cond_queue_of_three_hubs_and_two_plain_threads_loses_no_wakeup, .timeout = 60)
{
    mt_producers_left = HUBS * GREENS / 2;
    struct mt m = { mt_cond_green, mt_cond_plain };
    mt_run(&m);
    cr_expect_eq(mt_consumed, (long)HUBS * GREENS / 2 * MT_TOKENS);
    cr_expect_eq(mt_queued, 0);
}

/* Reader-writer lock: writers move a unit from a to b (a + b constant,
 * both written inside); readers check the sum; nobody reads while a
 * writer is inside. */
static green_rwlock_t mt_rw = GREEN_RWLOCK_INIT;
static long mt_a = 1000000, mt_b;

static void *mt_rw_body(void *arg)
{
    struct green_thread *self = green__current();
    struct green__rwlock *rw = (struct green__rwlock *)(void *)&mt_rw;
    for (int i = 0; i < MT_ITERS; i++) {
        bool write = ((intptr_t)arg + i) % 4 == 0;
        if (green__rwlock_lock(rw, self, write, GREEN__RW_FIFO, GREEN_FOREVER,
                               &green__lock_plain) != 0)
            return (void *)1;
        if (write) {
            long a = mt_a;
            if (i % 16 == 0)
                mt_pause();
            mt_a = a - 1;
            mt_b++;
        } else if (mt_a + mt_b != 1000000) {
            return (void *)2;
        }
        if (green__rwlock_unlock(rw, self, GREEN__RW_FIFO) != 0)
            return (void *)3;
    }
    return NULL;
}

Test(lock_mt, rwlock_of_three_hubs_and_two_plain_threads_keeps_writers_alone, .timeout = 60)
{
    struct mt m = { mt_rw_body, mt_rw_body };
    mt_run(&m);
    cr_expect_eq(mt_a + mt_b, 1000000);
    cr_expect(!green__rwlock_busy((struct green__rwlock *)(void *)&mt_rw));
}

/* Timeouts racing grants: waiters with deadlines of a few microseconds
 * while others post from other hubs and plain threads. A unit handed to
 * a waiter that then reported a timeout would vanish: every unit posted
 * must be either taken by a successful wait or still in the semaphore. */
static long mt_taken, mt_timedout;

static void *mt_race_body(void *arg)
{
    struct green_thread *self = green__current();
    struct green__sem *s = (struct green__sem *)(void *)&mt_sem;
    for (int i = 0; i < MT_ITERS; i++) {
        if (((intptr_t)arg + i) % 2) {
            if (green__sem_post(s) != 0)
                return (void *)1;
            continue;
        }
        int e = green__sem_wait(s, self, green_now() + GREEN_USEC(i % 7 * 3),
                                &green__lock_plain);
        if (e == 0)
            __atomic_fetch_add(&mt_taken, 1, __ATOMIC_RELAXED);
        else if (e == ETIMEDOUT)
            __atomic_fetch_add(&mt_timedout, 1, __ATOMIC_RELAXED);
        else
            return (void *)2;
    }
    return NULL;
}

Test(lock_mt, a_sem_unit_granted_to_a_timing_out_waiter_is_never_lost, .timeout = 60)
{
    cr_assert_eq(green_sem_init(&mt_sem, 0), 0);
    struct mt m = { mt_race_body, mt_race_body };
    mt_run(&m);
    long posts = (long)(HUBS * GREENS + PLAINS) * MT_ITERS / 2;
    cr_expect_eq(mt_taken + green_sem_value(&mt_sem), posts,
                 "taken %ld + left %d != posted %ld (timed out %ld)", mt_taken,
                 green_sem_value(&mt_sem), posts, mt_timedout);
    cr_expect_gt(mt_timedout, 0, "no timeout raced a post");
    struct green__sem *gs = (struct green__sem *)(void *)&mt_sem;
    cr_expect(green__waitq_empty(&gs->q));
}

/* The same race on a mutex: waiters with short deadlines; the mutex must
 * never be left held by a waiter that gave up. */
static void *mt_mutex_race_body(void *arg)
{
    struct green_thread *self = green__current();
    struct green__mutex *m = (struct green__mutex *)(void *)&mt_mu;
    for (int i = 0; i < MT_ITERS; i++) {
        int e = green__mutex_lock(m, self, GREEN__MUTEX_ERRORCHECK,
                                  green_now() + GREEN_USEC(((intptr_t)arg + i) % 5 * 4),
                                  &green__lock_plain);
        if (e == ETIMEDOUT) {
            __atomic_fetch_add(&mt_timedout, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (e != 0 || __atomic_fetch_add(&mt_inside, 1, __ATOMIC_RELAXED) != 0)
            return (void *)1;
        mt_counter++;
        if (i % 8 == 0)
            mt_pause();
        __atomic_fetch_sub(&mt_inside, 1, __ATOMIC_RELAXED);
        if (green__mutex_unlock(m, self, GREEN__MUTEX_ERRORCHECK) != 0)
            return (void *)2;
    }
    return NULL;
}

Test(lock_mt, a_mutex_timing_out_under_contention_is_never_left_held, .timeout = 60)
{
    struct mt m = { mt_mutex_race_body, mt_mutex_race_body };
    mt_run(&m);
    cr_expect_eq(mt_counter + mt_timedout, (long)(HUBS * GREENS + PLAINS) * MT_ITERS);
    cr_expect_gt(mt_timedout, 0, "no timeout raced a release");
    cr_expect_eq(green_mutex_trylock(&mt_mu), 0, "left held or flagged");
}

/*
 * test_hooks_pthread.c - the thread-family hooks called directly
 * (green_hook_pthread_*), with the THREAD family switched on as under the
 * shim. The test body is the main green thread (its OS thread adopts a hub
 * at the first hooked call); every pthread the hooks create is a green
 * thread of that hub.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include "pthread_internal.h"
#include "hooks_wait.h"

static void thread_family_on(void)
{
    green__hook_families |= GREEN_HOOK_THREAD;
}

TestSuite(hooks_pthread, .init = thread_family_on);

#define P(x) ((void *)(intptr_t)(x))
#define I(x) ((int)(intptr_t)(x))

static struct timespec abs_in(clockid_t clk, int64_t ns)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + ns;
    ts.tv_sec = t / 1000000000;
    ts.tv_nsec = t % 1000000000;
    return ts;
}

/* ------------------------------------------------------------ thread life */

static void *self_and_plus_one(void *arg)
{
    cr_assert_eq(green_hook_pthread_self(), (pthread_t)green_self());
    return P(I(arg) + 1);
}

Test(hooks_pthread, create_makes_a_green_thread_whose_pthread_t_is_its_handle)
{
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, self_and_plus_one, P(41)), 0);
    /* A live green handle, named as its creator (the kernel copies comm
     * at clone). */
    cr_expect_str_eq(green_name((green_t)th), green_name(green_self()));
    void *r = NULL;
    cr_assert_eq(green_hook_pthread_join(th, &r), 0);
    cr_expect_eq(I(r), 42);
}

Test(hooks_pthread, main_thread_self_is_the_main_green_handle_and_stays_so)
{
    pthread_t a = green_hook_pthread_self();
    cr_expect_eq(a, (pthread_t)green_self());
    cr_expect(green_hook_pthread_equal(a, green_hook_pthread_self()));
    cr_expect_neq(a, pthread_self());   /* not the OS thread's value */
}

static void *return_arg(void *arg) { return arg; }

Test(hooks_pthread, detached_attribute_is_honoured_and_join_fails_with_einval)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, &a, return_arg, NULL), 0);
    pthread_attr_destroy(&a);
    cr_expect(((green_t)th)->detached);
    cr_expect_eq(green_hook_pthread_join(th, NULL), EINVAL);
    green_yield();
}

static void *report_stack_size(void *arg)
{
    (void)arg;
    pthread_attr_t a;
    size_t size = 0;
    void *lo = NULL;
    cr_assert_eq(green_hook_pthread_getattr_np(green_hook_pthread_self(), &a), 0);
    pthread_attr_getstack(&a, &lo, &size);
    pthread_attr_destroy(&a);
    char here;
    cr_expect((char *)lo <= &here && &here < (char *)lo + size);
    return P(size);
}

Test(hooks_pthread, attr_stack_size_is_honoured)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 3u << 20);
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, &a, report_stack_size, NULL), 0);
    pthread_attr_destroy(&a);
    void *r;
    cr_assert_eq(green_hook_pthread_join(th, &r), 0);
    cr_expect_geq((size_t)r, 3u << 20);
    /* Without a size the green default is used, not libc's 8 MiB. */
    cr_assert_eq(green_hook_pthread_create(&th, NULL, report_stack_size, NULL), 0);
    cr_assert_eq(green_hook_pthread_join(th, &r), 0);
    cr_expect_lt((size_t)r, 8u << 20);
}

static void *sleep_ms(void *arg)
{
    green_sleep(GREEN_MSEC(I(arg)));
    return P(7);
}

Test(hooks_pthread, timedjoin_and_clockjoin_time_out_then_tryjoin_collects_the_result)
{
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, sleep_ms, P(100)), 0);
    cr_expect_eq(green_hook_pthread_tryjoin_np(th, NULL), EBUSY);
    struct timespec ts = abs_in(CLOCK_REALTIME, GREEN_MSEC(20));
    cr_expect_eq(green_hook_pthread_timedjoin_np(th, NULL, &ts), ETIMEDOUT);
    ts = abs_in(CLOCK_MONOTONIC, GREEN_MSEC(20));
    cr_expect_eq(green_hook_pthread_clockjoin_np(th, NULL, CLOCK_MONOTONIC, &ts), ETIMEDOUT);
    green_sleep(GREEN_MSEC(150));
    void *r = NULL;
    cr_expect_eq(green_hook_pthread_tryjoin_np(th, &r), 0);
    cr_expect_eq(I(r), 7);
}

Test(hooks_pthread, main_joining_itself_fails_with_edeadlk)
{
    cr_expect_eq(green_hook_pthread_join(green_hook_pthread_self(), NULL), EDEADLK);
}

static void *join_myself(void *arg)
{
    (void)arg;
    return P(green_hook_pthread_join(green_hook_pthread_self(), NULL));
}

Test(hooks_pthread, a_thread_joining_itself_gets_edeadlk)
{
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, join_myself, NULL), 0);
    void *r;
    cr_assert_eq(green_hook_pthread_join(th, &r), 0);
    cr_expect_eq(I(r), EDEADLK);
}

static void *exit_early(void *arg)
{
    green_hook_pthread_exit(arg);
}

Test(hooks_pthread, exit_ends_the_thread_with_its_value)
{
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, exit_early, P(99)), 0);
    void *r;
    cr_assert_eq(green_hook_pthread_join(th, &r), 0);
    cr_expect_eq(I(r), 99);
}

Test(hooks_pthread, names_are_green_and_limited_to_15_bytes)
{
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, sleep_ms, P(1)), 0);
    cr_expect_eq(green_hook_pthread_setname_np(th, "worker-1"), 0);
    cr_expect_str_eq(green_name((green_t)th), "worker-1");
    char b[16];
    cr_expect_eq(green_hook_pthread_getname_np(th, b, sizeof b), 0);
    cr_expect_str_eq(b, "worker-1");
    cr_expect_eq(green_hook_pthread_getname_np(th, b, 4), ERANGE);
    cr_expect_eq(green_hook_pthread_setname_np(th, "0123456789abcdef"), ERANGE);
    cr_expect_eq(green_hook_pthread_join(th, NULL), 0);
}

Test(hooks_pthread, kill_with_signal_zero_checks_existence)
{
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, return_arg, NULL), 0);
    cr_expect_eq(green_hook_pthread_kill(th, 0), 0);
    green_yield();
    green_yield();
    cr_expect_eq(((green_t)th)->state, GREEN_DONE);
    cr_expect_eq(green_hook_pthread_kill(th, 0), ESRCH);
    cr_expect_eq(green_hook_pthread_kill(th, 12345), EINVAL);
    cr_expect_eq(green_hook_pthread_join(th, NULL), 0);
}

/* ------------------------------------------------------------------ keys */

static int destroyed;
static void count_destroy(void *v) { destroyed += I(v); }
static pthread_key_t key;

static void *use_key(void *arg)
{
    cr_expect_null(green_hook_pthread_getspecific(key));
    cr_expect_eq(green_hook_pthread_setspecific(key, arg), 0);
    green_yield();
    cr_expect_eq(green_hook_pthread_getspecific(key), arg);
    return NULL;
}

Test(hooks_pthread, keys_are_per_green_thread_and_destructors_run_at_exit)
{
    destroyed = 0;
    cr_assert_eq(green_hook_pthread_key_create(&key, count_destroy), 0);
    cr_expect_geq(key, (pthread_key_t)PTHREAD_KEYS_MAX);   /* never a libc key */
    pthread_t th[10];
    for (int i = 0; i < 10; i++)
        cr_assert_eq(green_hook_pthread_create(&th[i], NULL, use_key, P(i + 1)), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(green_hook_pthread_join(th[i], NULL), 0);
    cr_expect_eq(destroyed, 55);
    cr_expect_eq(green_hook_pthread_key_delete(key), 0);
    cr_expect_eq(green_hook_pthread_key_delete(key), EINVAL);
}

/* ------------------------------------------------------------------ once */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs, once_seen_done;

static void slow_init(void)
{
    once_runs++;
    green_sleep(GREEN_MSEC(20));   /* the others must wait, not run it */
}

static void *call_the_once(void *arg)
{
    (void)arg;
    cr_expect_eq(green_hook_pthread_once(&once, slow_init), 0);
    if (once_runs == 1)
        once_seen_done++;
    return NULL;
}

Test(hooks_pthread, once_runs_the_routine_exactly_once_and_others_wait_for_it)
{
    pthread_t th[100];
    for (int i = 0; i < 100; i++)
        cr_assert_eq(green_hook_pthread_create(&th[i], NULL, call_the_once, NULL), 0);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(green_hook_pthread_join(th[i], NULL), 0);
    cr_expect_eq(once_runs, 1);
    cr_expect_eq(once_seen_done, 100);
}

/* ----------------------------------------------------------------- mutex */

static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static int counter, inside, max_inside;

static void *bump_holding_across_sleep(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(green_hook_pthread_mutex_lock(&mtx), 0);
        if (++inside > max_inside)
            max_inside = inside;
        int v = counter;
        green_sleep(GREEN_USEC(200));   /* other threads run meanwhile */
        counter = v + 1;
        inside--;
        cr_assert_eq(green_hook_pthread_mutex_unlock(&mtx), 0);
    }
    return NULL;
}

Test(hooks_pthread, static_mutex_held_across_a_sleep_excludes_every_other_thread)
{
    pthread_t th[20];
    for (int i = 0; i < 20; i++)
        cr_assert_eq(green_hook_pthread_create(&th[i], NULL, bump_holding_across_sleep, NULL), 0);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(green_hook_pthread_join(th[i], NULL), 0);
    cr_expect_eq(counter, 100);
    cr_expect_eq(max_inside, 1);
    cr_expect_eq(green_hook_pthread_mutex_destroy(&mtx), 0);
}

Test(hooks_pthread, recursive_initializer_relocks_and_needs_as_many_unlocks)
{
    pthread_mutex_t m = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    cr_expect_eq(green_hook_pthread_mutex_lock(&m), 0);
    cr_expect_eq(green_hook_pthread_mutex_lock(&m), 0);
    cr_expect_eq(green_hook_pthread_mutex_trylock(&m), 0);
    cr_expect_eq(green_hook_pthread_mutex_unlock(&m), 0);
    cr_expect_eq(green_hook_pthread_mutex_unlock(&m), 0);
    cr_expect_eq(green_hook_pthread_mutex_destroy(&m), EBUSY);
    cr_expect_eq(green_hook_pthread_mutex_unlock(&m), 0);
    cr_expect_eq(green_hook_pthread_mutex_unlock(&m), EPERM);
    cr_expect_eq(green_hook_pthread_mutex_destroy(&m), 0);
}

static pthread_mutex_t shared_m;

static void *try_and_unlock_foreign(void *arg)
{
    (void)arg;
    int busy = green_hook_pthread_mutex_trylock(&shared_m);
    int perm = green_hook_pthread_mutex_unlock(&shared_m);
    return P(busy * 1000 + perm);
}

Test(hooks_pthread, errorcheck_mutex_reports_relock_and_foreign_unlock)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    cr_assert_eq(green_hook_pthread_mutex_init(&shared_m, &a), 0);
    pthread_mutexattr_destroy(&a);
    cr_expect_eq(green_hook_pthread_mutex_lock(&shared_m), 0);
    cr_expect_eq(green_hook_pthread_mutex_lock(&shared_m), EDEADLK);
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, try_and_unlock_foreign, NULL), 0);
    void *r;
    cr_assert_eq(green_hook_pthread_join(th, &r), 0);
    cr_expect_eq(I(r), EBUSY * 1000 + EPERM);
    cr_expect_eq(green_hook_pthread_mutex_unlock(&shared_m), 0);
    cr_expect_eq(green_hook_pthread_mutex_unlock(&shared_m), EPERM);
}

Test(hooks_pthread, errorcheck_static_initializer_is_decoded)
{
    pthread_mutex_t m = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    cr_expect_eq(green_hook_pthread_mutex_lock(&m), 0);
    cr_expect_eq(green_hook_pthread_mutex_lock(&m), EDEADLK);
    cr_expect_eq(green_hook_pthread_mutex_unlock(&m), 0);
}

static void *hold_mutex_ms(void *arg)
{
    green_hook_pthread_mutex_lock(&shared_m);
    green_sleep(GREEN_MSEC(I(arg)));
    green_hook_pthread_mutex_unlock(&shared_m);
    return NULL;
}

Test(hooks_pthread, timedlock_and_clocklock_time_out_with_etimedout)
{
    cr_assert_eq(green_hook_pthread_mutex_init(&shared_m, NULL), 0);
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, hold_mutex_ms, P(200)), 0);
    green_yield();
    struct timespec ts = abs_in(CLOCK_REALTIME, GREEN_MSEC(20));
    int64_t t0 = green_now();
    cr_expect_eq(green_hook_pthread_mutex_timedlock(&shared_m, &ts), ETIMEDOUT);
    cr_expect_geq(green_now() - t0, GREEN_MSEC(15));
    ts = abs_in(CLOCK_MONOTONIC, GREEN_MSEC(20));
    cr_expect_eq(green_hook_pthread_mutex_clocklock(&shared_m, CLOCK_MONOTONIC, &ts), ETIMEDOUT);
    ts.tv_nsec = 1000000000;
    cr_expect_eq(green_hook_pthread_mutex_timedlock(&shared_m, &ts), EINVAL);
    ts = abs_in(CLOCK_MONOTONIC, GREEN_SEC(5));
    cr_expect_eq(green_hook_pthread_mutex_clocklock(&shared_m, CLOCK_MONOTONIC, &ts), 0);
    cr_expect_eq(green_hook_pthread_mutex_unlock(&shared_m), 0);
    cr_assert_eq(green_hook_pthread_join(th, NULL), 0);
}

/* ------------------------------------------------------------------ cond */

static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int queue[1000], qn, produced_sum, consumed_sum, consumed;

static void *produce(void *arg)
{
    for (int i = 1; i <= 100; i++) {
        green_hook_pthread_mutex_lock(&mtx);
        queue[qn++] = i * I(arg);
        produced_sum += i * I(arg);
        green_hook_pthread_cond_signal(&cv);
        green_hook_pthread_mutex_unlock(&mtx);
        if (i % 7 == 0)
            green_yield();
    }
    return NULL;
}

static void *consume(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        green_hook_pthread_mutex_lock(&mtx);
        while (qn == 0)
            cr_assert_eq(green_hook_pthread_cond_wait(&cv, &mtx), 0);
        consumed_sum += queue[--qn];
        consumed++;
        green_hook_pthread_mutex_unlock(&mtx);
    }
    return NULL;
}

Test(hooks_pthread, condvar_producer_consumer_accounts_for_every_item)
{
    pthread_t p[5], c[5];
    for (int i = 0; i < 5; i++)
        cr_assert_eq(green_hook_pthread_create(&c[i], NULL, consume, NULL), 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(green_hook_pthread_create(&p[i], NULL, produce, P(i + 1)), 0);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(green_hook_pthread_join(p[i], NULL), 0);
        cr_assert_eq(green_hook_pthread_join(c[i], NULL), 0);
    }
    cr_expect_eq(consumed, 500);
    cr_expect_eq(consumed_sum, produced_sum);
    cr_expect_eq(qn, 0);
}

Test(hooks_pthread, cond_timedwait_times_out_on_both_clocks_with_the_mutex_held)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t mono;
    cr_assert_eq(green_hook_pthread_cond_init(&mono, &ca), 0);
    pthread_condattr_destroy(&ca);
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    green_hook_pthread_mutex_lock(&m);

    struct timespec ts = abs_in(CLOCK_MONOTONIC, GREEN_MSEC(30));
    int64_t t0 = green_now();
    cr_expect_eq(green_hook_pthread_cond_timedwait(&mono, &m, &ts), ETIMEDOUT);
    cr_expect_geq(green_now() - t0, GREEN_MSEC(25));
    cr_expect_eq(green_hook_pthread_mutex_trylock(&m), EBUSY);   /* held again */

    pthread_cond_t real = PTHREAD_COND_INITIALIZER;
    ts = abs_in(CLOCK_REALTIME, GREEN_MSEC(30));
    t0 = green_now();
    cr_expect_eq(green_hook_pthread_cond_timedwait(&real, &m, &ts), ETIMEDOUT);
    cr_expect_geq(green_now() - t0, GREEN_MSEC(25));
    cr_expect_lt(green_now() - t0, GREEN_SEC(5));

    ts = abs_in(CLOCK_MONOTONIC, GREEN_MSEC(10));
    cr_expect_eq(green_hook_pthread_cond_clockwait(&real, &m, CLOCK_MONOTONIC, &ts), ETIMEDOUT);
    cr_expect_eq(green_hook_pthread_cond_clockwait(&real, &m, CLOCK_PROCESS_CPUTIME_ID, &ts), EINVAL);
    cr_expect_eq(green_hook_pthread_mutex_unlock(&m), 0);
    cr_expect_eq(green_hook_pthread_cond_destroy(&mono), 0);
}

static pthread_cond_t bcv = PTHREAD_COND_INITIALIZER;
static bool go;
static int woken;

static void *wait_for_go(void *arg)
{
    (void)arg;
    green_hook_pthread_mutex_lock(&mtx);
    while (!go)
        green_hook_pthread_cond_wait(&bcv, &mtx);
    woken++;
    green_hook_pthread_mutex_unlock(&mtx);
    return NULL;
}

Test(hooks_pthread, broadcast_wakes_every_waiter)
{
    pthread_t th[50];
    for (int i = 0; i < 50; i++)
        cr_assert_eq(green_hook_pthread_create(&th[i], NULL, wait_for_go, NULL), 0);
    green_sleep(GREEN_MSEC(5));
    cr_expect_eq(green_hook_pthread_cond_destroy(&bcv), EBUSY);
    green_hook_pthread_mutex_lock(&mtx);
    go = true;
    green_hook_pthread_cond_broadcast(&bcv);
    green_hook_pthread_mutex_unlock(&mtx);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(green_hook_pthread_join(th[i], NULL), 0);
    cr_expect_eq(woken, 50);
}

/* ---------------------------------------------------------------- rwlock */

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static int readers_in, max_readers_in, writers_in, bad;

static void *reader(void *arg)
{
    (void)arg;
    cr_assert_eq(green_hook_pthread_rwlock_rdlock(&rw), 0);
    readers_in++;
    if (readers_in > max_readers_in)
        max_readers_in = readers_in;
    if (writers_in)
        bad++;
    green_sleep(GREEN_MSEC(10));
    readers_in--;
    cr_assert_eq(green_hook_pthread_rwlock_unlock(&rw), 0);
    return NULL;
}

static void *writer(void *arg)
{
    (void)arg;
    cr_assert_eq(green_hook_pthread_rwlock_wrlock(&rw), 0);
    writers_in++;
    if (writers_in > 1 || readers_in)
        bad++;
    green_sleep(GREEN_MSEC(5));
    writers_in--;
    cr_assert_eq(green_hook_pthread_rwlock_unlock(&rw), 0);
    return NULL;
}

Test(hooks_pthread, rwlock_readers_share_and_writers_are_exclusive)
{
    pthread_t th[30];
    for (int i = 0; i < 30; i++)
        cr_assert_eq(green_hook_pthread_create(&th[i], NULL, i % 3 == 2 ? writer : reader, NULL), 0);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(green_hook_pthread_join(th[i], NULL), 0);
    cr_expect_eq(bad, 0);
    cr_expect_gt(max_readers_in, 1);
    cr_expect_eq(green_hook_pthread_rwlock_destroy(&rw), 0);
}

Test(hooks_pthread, rwlock_try_and_timed_forms_report_busy_and_timeout)
{
    pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
    cr_expect_eq(green_hook_pthread_rwlock_wrlock(&l), 0);
    cr_expect_eq(green_hook_pthread_rwlock_wrlock(&l), EDEADLK);
    cr_expect_eq(green_hook_pthread_rwlock_unlock(&l), 0);
    cr_expect_eq(green_hook_pthread_rwlock_rdlock(&l), 0);
    cr_expect_eq(green_hook_pthread_rwlock_tryrdlock(&l), 0);
    cr_expect_eq(green_hook_pthread_rwlock_trywrlock(&l), EBUSY);
    struct timespec ts = abs_in(CLOCK_MONOTONIC, GREEN_MSEC(10));
    cr_expect_eq(green_hook_pthread_rwlock_clockwrlock(&l, CLOCK_MONOTONIC, &ts), ETIMEDOUT);
    ts = abs_in(CLOCK_REALTIME, GREEN_MSEC(10));
    cr_expect_eq(green_hook_pthread_rwlock_timedwrlock(&l, &ts), ETIMEDOUT);
    cr_expect_eq(green_hook_pthread_rwlock_unlock(&l), 0);
    cr_expect_eq(green_hook_pthread_rwlock_unlock(&l), 0);
    cr_expect_eq(green_hook_pthread_rwlock_unlock(&l), EPERM);
    cr_expect_eq(green_hook_pthread_rwlock_trywrlock(&l), 0);
    cr_expect_eq(green_hook_pthread_rwlock_tryrdlock(&l), EBUSY);
    cr_expect_eq(green_hook_pthread_rwlock_unlock(&l), 0);
}

/* --------------------------------------------------------------- barrier */

static pthread_barrier_t bar;
static int serials, after_barrier, before_barrier_seen;

static void *barrier_wait(void *arg)
{
    (void)arg;
    for (int round = 0; round < 3; round++) {
        int r = green_hook_pthread_barrier_wait(&bar);
        cr_assert(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);
        if (r == PTHREAD_BARRIER_SERIAL_THREAD)
            serials++;
        after_barrier++;
        green_yield();
    }
    return NULL;
}

Test(hooks_pthread, barrier_releases_all_and_exactly_one_gets_serial_per_round)
{
    cr_expect_eq(green_hook_pthread_barrier_init(&bar, NULL, 0), EINVAL);
    cr_assert_eq(green_hook_pthread_barrier_init(&bar, NULL, 10), 0);
    pthread_t th[10];
    for (int i = 0; i < 10; i++)
        cr_assert_eq(green_hook_pthread_create(&th[i], NULL, barrier_wait, NULL), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(green_hook_pthread_join(th[i], NULL), 0);
    cr_expect_eq(serials, 3);
    cr_expect_eq(after_barrier, 30);
    (void)before_barrier_seen;
    cr_expect_eq(green_hook_pthread_barrier_destroy(&bar), 0);
}

/* ------------------------------------------------------------------ spin */

static pthread_spinlock_t spin;

static void *hold_spin(void *arg)
{
    (void)arg;
    green_hook_pthread_spin_lock(&spin);
    green_yield();
    green_yield();
    counter++;
    green_hook_pthread_spin_unlock(&spin);
    return NULL;
}

Test(hooks_pthread, spin_on_a_held_lock_yields_to_the_holder)
{
    counter = 0;
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    pthread_t th[10];
    for (int i = 0; i < 10; i++)
        cr_assert_eq(green_hook_pthread_create(&th[i], NULL, hold_spin, NULL), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(green_hook_pthread_join(th[i], NULL), 0);
    cr_expect_eq(counter, 10);
    cr_expect_eq(green_hook_pthread_spin_trylock(&spin), 0);
    cr_expect_eq(green_hook_pthread_spin_trylock(&spin), EBUSY);
    cr_expect_eq(green_hook_pthread_spin_unlock(&spin), 0);
}

/* ------------------------------------------------------------- semaphore */

static sem_t sem;

static void *sem_take_one(void *arg)
{
    (void)arg;
    cr_assert_eq(green_hook_sem_wait(&sem), 0);
    counter++;
    return NULL;
}

Test(hooks_pthread, semaphore_units_go_to_waiters_in_order)
{
    counter = 0;
    cr_assert_eq(green_hook_sem_init(&sem, 0, 2), 0);
    pthread_t th[10];
    for (int i = 0; i < 10; i++)
        cr_assert_eq(green_hook_pthread_create(&th[i], NULL, sem_take_one, NULL), 0);
    green_sleep(GREEN_MSEC(5));
    cr_expect_eq(counter, 2);
    int v = -1;
    cr_expect_eq(green_hook_sem_getvalue(&sem, &v), 0);
    cr_expect_eq(v, 0);
    for (int i = 0; i < 8; i++)
        cr_expect_eq(green_hook_sem_post(&sem), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(green_hook_pthread_join(th[i], NULL), 0);
    cr_expect_eq(counter, 10);
    cr_expect_eq(green_hook_sem_trywait(&sem), -1);
    cr_expect_eq(errno, EAGAIN);
    cr_expect_eq(green_hook_sem_post(&sem), 0);
    cr_expect_eq(green_hook_sem_trywait(&sem), 0);
    cr_expect_eq(green_hook_sem_destroy(&sem), 0);
}

Test(hooks_pthread, sem_timed_forms_time_out_with_etimedout)
{
    cr_assert_eq(green_hook_sem_init(&sem, 0, 0), 0);
    struct timespec ts = abs_in(CLOCK_MONOTONIC, GREEN_MSEC(20));
    int64_t t0 = green_now();
    cr_expect_eq(green_hook_sem_clockwait(&sem, CLOCK_MONOTONIC, &ts), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect_geq(green_now() - t0, GREEN_MSEC(15));
    ts = abs_in(CLOCK_REALTIME, GREEN_MSEC(20));
    cr_expect_eq(green_hook_sem_timedwait(&sem, &ts), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    ts.tv_nsec = -1;
    cr_expect_eq(green_hook_sem_timedwait(&sem, &ts), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(green_hook_sem_post(&sem), 0);
    /* glibc 2.36 checks the deadline first, even with a unit available. */
    cr_expect_eq(green_hook_sem_timedwait(&sem, &ts), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(green_hook_sem_trywait(&sem), 0);
}

static sem_t psem;

static void *post_shared_later(void *arg)
{
    (void)arg;
    green_sleep(GREEN_MSEC(20));
    counter = 1;
    green_hook_sem_post(&psem);
    return NULL;
}

Test(hooks_pthread, process_shared_semaphore_waits_without_blocking_other_threads)
{
    counter = 0;
    cr_assert_eq(green_hook_sem_init(&psem, 1, 0), 0);
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, post_shared_later, NULL), 0);
    cr_expect_eq(green_hook_sem_wait(&psem), 0);
    cr_expect_eq(counter, 1);
    cr_assert_eq(green_hook_pthread_join(th, NULL), 0);
    cr_expect_eq(green_hook_sem_destroy(&psem), 0);
}

/* ---------------------------------------------------------- cancellation */

static void *wait_on_sem_forever(void *arg)
{
    (void)arg;
    green_hook_sem_wait(&sem);
    return P(1);   /* not reached when cancelled */
}

Test(hooks_pthread, cancel_ends_a_thread_blocked_in_sem_wait_with_pthread_canceled)
{
    cr_assert_eq(green_hook_sem_init(&sem, 0, 0), 0);
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, wait_on_sem_forever, NULL), 0);
    green_yield();
    cr_expect_eq(green_hook_pthread_cancel(th), 0);
    void *r = NULL;
    cr_assert_eq(green_hook_pthread_join(th, &r), 0);
    cr_expect_eq(r, PTHREAD_CANCELED);
}

static void *cancel_disabled_then_test(void *arg)
{
    (void)arg;
    int old;
    green_hook_pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    green_sleep(GREEN_MSEC(10));
    counter = 5;
    green_hook_pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    cr_expect_eq(old, PTHREAD_CANCEL_DISABLE);
    green_hook_pthread_testcancel();
    counter = 6;   /* not reached */
    return NULL;
}

Test(hooks_pthread, cancel_while_disabled_acts_at_the_next_cancellation_point)
{
    counter = 0;
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, cancel_disabled_then_test, NULL), 0);
    green_yield();
    cr_expect_eq(green_hook_pthread_cancel(th), 0);
    void *r = NULL;
    cr_assert_eq(green_hook_pthread_join(th, &r), 0);
    cr_expect_eq(r, PTHREAD_CANCELED);
    cr_expect_eq(counter, 5);
}

/* ----------------------------------------------------------- pass-through */

static void *plain_os_thread(void *arg)
{
    pthread_mutex_t *m = arg;
    /* No hub on this OS thread: every hook goes to libc. */
    int a = green_hook_pthread_mutex_lock(m);
    int b = green_hook_pthread_mutex_trylock(m);
    int c = green_hook_pthread_mutex_unlock(m);
    pthread_t self = green_hook_pthread_self();
    return P(a == 0 && b == EBUSY && c == 0 && self == pthread_self());
}

Test(hooks_pthread, plain_os_threads_pass_straight_through_to_libc)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, plain_os_thread, &m), 0);
    void *r;
    cr_assert_eq(pthread_join(th, &r), 0);
    cr_expect_eq(I(r), 1);
}

/* ------------------------------------------------ OS-thread-wide calls */

Test(hooks_pthread, scheduling_calls_on_a_green_handle_act_on_its_os_thread_but_its_cpu_clock_is_its_own)
{
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, return_arg, NULL), 0);
    int policy = -1;
    struct sched_param sp;
    cr_expect_eq(green_hook_pthread_getschedparam(th, &policy, &sp), 0);
    cr_expect_eq(policy, SCHED_OTHER);
    cpu_set_t set;
    CPU_ZERO(&set);
    cr_expect_eq(green_hook_pthread_getaffinity_np(th, sizeof set, &set), 0);
    cr_expect_gt(CPU_COUNT(&set), 0);
    /* The CPU clock is the green thread's own (libgreen/cpuclock.c): an
     * id only libgreen's clock_gettime answers; the kernel has no such
     * thread. */
    clockid_t clk;
    cr_expect_eq(green_hook_pthread_getcpuclockid(green_hook_pthread_self(), &clk), 0);
    struct timespec ts;
    cr_expect_eq(green_hook_clock_gettime(clk, &ts), 0);
    cr_expect(ts.tv_sec > 0 || ts.tv_nsec > 0);
    errno = 0;
    cr_expect_eq(clock_gettime(clk, &ts), -1);
    cr_expect_eq(errno, EINVAL);
    green_yield();
    green_yield();
    cr_expect_eq(((green_t)th)->state, GREEN_DONE);
    cr_expect_eq(green_hook_pthread_getschedparam(th, &policy, &sp), ESRCH);
    cr_expect_eq(green_hook_pthread_join(th, NULL), 0);
}

/* ------------------------------------------- sem_post from outside */

static sem_t outside_sem;

static void *post_from_plain_os_thread(void *arg)
{
    (void)arg;
    usleep(20000);
    return P(green_hook_sem_post(&outside_sem));
}

Test(hooks_pthread, sem_post_from_a_plain_os_thread_wakes_a_green_waiter)
{
    cr_assert_eq(green_hook_sem_init(&outside_sem, 0, 0), 0);
    pthread_t os;
    cr_assert_eq(pthread_create(&os, NULL, post_from_plain_os_thread, NULL), 0);
    struct timespec ts = abs_in(CLOCK_MONOTONIC, GREEN_SEC(10));
    int64_t t0 = green_now();
    cr_expect_eq(green_hook_sem_clockwait(&outside_sem, CLOCK_MONOTONIC, &ts), 0);
    cr_expect_lt(green_now() - t0, GREEN_SEC(5));
    void *r;
    cr_assert_eq(pthread_join(os, &r), 0);
    cr_expect_eq(I(r), 0);
    int v = -1;
    green_hook_sem_getvalue(&outside_sem, &v);
    cr_expect_eq(v, 0);
}

static void post_in_handler(int sig)
{
    (void)sig;
    green_hook_sem_post(&outside_sem);
}

Test(hooks_pthread, sem_post_from_a_signal_handler_on_the_hub_wakes_a_green_waiter)
{
    cr_assert_eq(green_hook_sem_init(&outside_sem, 0, 0), 0);
    struct sigaction sa = { .sa_handler = post_in_handler, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
    struct itimerval it = { .it_value = { .tv_usec = 30000 } };
    cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
    struct timespec ts = abs_in(CLOCK_MONOTONIC, GREEN_SEC(10));
    int64_t t0 = green_now();
    /* Everything is parked: the hub sits in epoll_wait when SIGALRM comes. */
    cr_expect_eq(green_hook_sem_clockwait(&outside_sem, CLOCK_MONOTONIC, &ts), 0);
    cr_expect_lt(green_now() - t0, GREEN_SEC(5));
    signal(SIGALRM, SIG_DFL);
}

/* ------------------------------------------------- rwlock preference */

static pthread_rwlock_t pref;
static int late_reader_got_in;

static void *take_write(void *arg)
{
    (void)arg;
    green_hook_pthread_rwlock_wrlock(&pref);
    green_hook_pthread_rwlock_unlock(&pref);
    return NULL;
}

static void *late_reader(void *arg)
{
    (void)arg;
    late_reader_got_in = green_hook_pthread_rwlock_tryrdlock(&pref) == 0;
    if (late_reader_got_in)
        green_hook_pthread_rwlock_unlock(&pref);
    return NULL;
}

/* With a reader inside and a writer waiting, may a new reader enter? */
static int new_reader_enters(pthread_rwlock_t init)
{
    pref = init;
    cr_assert_eq(green_hook_pthread_rwlock_rdlock(&pref), 0);
    pthread_t w, r;
    cr_assert_eq(green_hook_pthread_create(&w, NULL, take_write, NULL), 0);
    green_yield();   /* the writer now waits */
    cr_assert_eq(green_hook_pthread_create(&r, NULL, late_reader, NULL), 0);
    cr_assert_eq(green_hook_pthread_join(r, NULL), 0);
    cr_assert_eq(green_hook_pthread_rwlock_unlock(&pref), 0);
    cr_assert_eq(green_hook_pthread_join(w, NULL), 0);
    return late_reader_got_in;
}

Test(hooks_pthread, rwlock_static_initializers_choose_reader_or_writer_preference)
{
    pthread_rwlock_t readers_first = PTHREAD_RWLOCK_INITIALIZER;
    pthread_rwlock_t writers_first = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
    cr_expect_eq(new_reader_enters(readers_first), 1);
    cr_expect_eq(new_reader_enters(writers_first), 0);
}

/* ------------------------------------- cond signal from a plain thread */

static pthread_cond_t outside_cv = PTHREAD_COND_INITIALIZER;
static atomic_int outside_flag;

static void *signal_from_plain_os_thread(void *arg)
{
    (void)arg;
    usleep(20000);
    atomic_store(&outside_flag, 1);
    return P(green_hook_pthread_cond_signal(&outside_cv));
}

Test(hooks_pthread, cond_signal_from_a_plain_os_thread_wakes_a_green_waiter)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_t os;
    cr_assert_eq(pthread_create(&os, NULL, signal_from_plain_os_thread, NULL), 0);
    int64_t t0 = green_now();
    green_hook_pthread_mutex_lock(&m);
    struct timespec ts = abs_in(CLOCK_REALTIME, GREEN_SEC(10));
    int r = 0;
    while (!atomic_load(&outside_flag) && r == 0)
        r = green_hook_pthread_cond_timedwait(&outside_cv, &m, &ts);
    green_hook_pthread_mutex_unlock(&m);
    cr_expect_eq(r, 0);
    cr_expect_lt(green_now() - t0, GREEN_SEC(5));
    void *rv;
    cr_assert_eq(pthread_join(os, &rv), 0);
    cr_expect_eq(I(rv), 0);
}

/* The uncontended paths of lock, trylock and unlock are inline in the
 * hooks (pthread_mutex.c, "The fast paths"); what they hand to the
 * general path when the owner word is flagged is exercised here, where
 * green threads of two hubs and plain OS threads take one mutex in turn:
 * an unlock whose compare-and-swap finds a waiter flag set meanwhile
 * must still wake that waiter, and a lock that misses must queue. */
#define HAMMER_GREENS 6
#define HAMMER_PLAINS 2
#define HAMMER_ITERS  4000

static pthread_mutex_t hammer_m = PTHREAD_MUTEX_INITIALIZER;
static long hammer_count;
static atomic_int hammer_inside;
static atomic_int hammer_bad;
static pid_t hammer_tid[HAMMER_GREENS];

static void hammer_round(int i)
{
    int e = i % 3 == 0 ? green_hook_pthread_mutex_trylock(&hammer_m) : EBUSY;
    if (e == EBUSY)
        e = green_hook_pthread_mutex_lock(&hammer_m);
    if (e != 0 || atomic_fetch_add(&hammer_inside, 1) != 0)
        atomic_fetch_add(&hammer_bad, 1);
    long v = hammer_count;
    if (i % 64 == 0) {   /* hold it across a switch now and then */
        if (green__current())
            green_yield();
        else
            sched_yield();
    }
    hammer_count = v + 1;
    atomic_fetch_sub(&hammer_inside, 1);
    if (green_hook_pthread_mutex_unlock(&hammer_m) != 0)
        atomic_fetch_add(&hammer_bad, 1);
}

static void *hammer_green(void *arg)
{
    hammer_tid[I(arg)] = gettid();
    for (int i = 0; i < HAMMER_ITERS; i++)
        hammer_round(i);
    return NULL;
}

static void *hammer_plain(void *arg)
{
    (void)arg;
    for (int i = 0; i < HAMMER_ITERS; i++)
        hammer_round(i);
    return NULL;
}

Test(hooks_pthread, a_mutex_of_two_hubs_and_plain_threads_loses_no_update_and_ends_free,
     .timeout = 60)
{
    cr_assert_eq(green_set_hubs(2), 0);
    pthread_t g[HAMMER_GREENS], p[HAMMER_PLAINS];
    for (int i = 0; i < HAMMER_GREENS; i++)
        cr_assert_eq(green_hook_pthread_create(&g[i], NULL, hammer_green, P(i)), 0);
    for (int i = 0; i < HAMMER_PLAINS; i++)
        cr_assert_eq(pthread_create(&p[i], NULL, hammer_plain, NULL), 0);
    for (int i = 0; i < HAMMER_GREENS; i++)
        cr_assert_eq(green_hook_pthread_join(g[i], NULL), 0);
    for (int i = 0; i < HAMMER_PLAINS; i++)
        cr_assert_eq(pthread_join(p[i], NULL), 0);
    /* The precondition: the green threads ran on two OS threads. */
    int other = 0;
    for (int i = 1; i < HAMMER_GREENS; i++)
        other += hammer_tid[i] != hammer_tid[0];
    cr_assert_gt(other, 0, "every green thread ran on one OS thread: no second hub");
    cr_expect_eq(atomic_load(&hammer_bad), 0, "a lock or unlock failed, or two were inside");
    cr_expect_eq(hammer_count, (long)(HAMMER_GREENS + HAMMER_PLAINS) * HAMMER_ITERS);
    cr_expect_eq(green_hook_pthread_mutex_trylock(&hammer_m), 0, "left held or flagged");
    struct green__mutex *m = (struct green__mutex *)(void *)&hammer_m;
    cr_expect(green__waitq_empty(&m->q));
    cr_expect_eq(green_hook_pthread_mutex_unlock(&hammer_m), 0);
}

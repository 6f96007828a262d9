/*
 * test_thread.c - green thread life cycle: spawn, join, detach, kill,
 * exit, yield order, names and ids, green_run, deadlock detection, errno
 * per thread, and many concurrent sleepers.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "green.h"

static void *ret_arg_plus_one(void *arg)
{
    return (void *)((intptr_t)arg + 1);
}

Test(thread, join_returns_the_threads_result)
{
    green_t t = green_spawn(ret_arg_plus_one, (void *)41, NULL);
    cr_assert(t);
    void *r = NULL;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, 42);
}

Test(thread, spawn_without_a_function_or_with_a_tiny_stack_fails_with_einval)
{
    errno = 0;
    cr_expect_null(green_spawn(NULL, NULL, NULL));
    cr_expect_eq(errno, EINVAL);
    green_attr_t a = { .stack_size = 1024 };
    errno = 0;
    cr_expect_null(green_spawn(ret_arg_plus_one, NULL, &a));
    cr_expect_eq(errno, EINVAL);
    green_attr_t g = { .guard = 7 };
    errno = 0;
    cr_expect_null(green_spawn(ret_arg_plus_one, NULL, &g));
    cr_expect_eq(errno, EINVAL);
}

static void *join_self(void *arg)
{
    (void)arg;
    int r = green_join(green_self(), NULL);
    return (void *)(intptr_t)(r == -1 ? errno : 0);
}

Test(thread, joining_yourself_fails_with_edeadlk)
{
    green_t t = green_spawn(join_self, NULL, NULL);
    void *r;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, EDEADLK);
    errno = 0;
    cr_expect_eq(green_join(green_self(), NULL), -1);   /* main */
    cr_expect_eq(errno, EDEADLK);
}

Test(thread, joining_a_detached_thread_fails_with_einval)
{
    green_attr_t a = { .detached = true };
    green_t t = green_spawn(ret_arg_plus_one, NULL, &a);
    cr_assert(t);
    errno = 0;
    cr_expect_eq(green_join(t, NULL), -1);
    cr_expect_eq(errno, EINVAL);
    cr_assert_eq(green_run(), 0);
}

static void *sleep_ms(void *arg)
{
    int r = green_sleep(GREEN_MSEC((intptr_t)arg));
    return (void *)(intptr_t)(r == -1 ? errno : 0);
}

Test(thread, join_timeout_fails_with_etimedout_and_the_thread_stays_joinable)
{
    green_t t = green_spawn(sleep_ms, (void *)50, NULL);
    int64_t t0 = green_now();
    errno = 0;
    cr_expect_eq(green_join_timeout(t, NULL, GREEN_MSEC(5)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect_geq(green_now() - t0, GREEN_MSEC(5));
    void *r = (void *)1;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, 0);
    cr_expect_geq(green_now() - t0, GREEN_MSEC(50));
}

static void *second_joiner(void *arg)
{
    int r = green_join((green_t)arg, NULL);
    return (void *)(intptr_t)(r == -1 ? errno : 0);
}

Test(thread, a_second_joiner_fails_with_einval)
{
    green_t t = green_spawn(sleep_ms, (void *)20, NULL);
    green_t j = green_spawn(second_joiner, t, NULL);
    cr_assert_eq(green_yield(), 0);      /* j is now joining t */
    errno = 0;
    cr_expect_eq(green_join(t, NULL), -1);
    cr_expect_eq(errno, EINVAL);
    void *r;
    cr_assert_eq(green_join(j, &r), 0);
    cr_expect_eq((intptr_t)r, 0);
}

Test(thread, killing_a_sleeping_thread_makes_its_sleep_fail_with_ecanceled)
{
    green_t t = green_spawn(sleep_ms, (void *)10000, NULL);
    cr_assert_eq(green_yield(), 0);
    int64_t t0 = green_now();
    cr_assert_eq(green_kill(t), 0);
    void *r;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, ECANCELED);
    cr_expect_lt(green_now() - t0, GREEN_SEC(5));
}

static int ran;

static void *mark_ran(void *arg)
{
    (void)arg;
    ran = 1;
    return (void *)7;
}

Test(thread, a_thread_killed_before_it_starts_never_runs)
{
    ran = 0;
    green_t t = green_spawn(mark_ran, NULL, NULL);
    cr_assert_eq(green_kill(t), 0);
    void *r = NULL;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq(ran, 0);
    cr_expect_eq(r, GREEN_CANCELED);
}

Test(thread, killing_a_finished_thread_is_harmless)
{
    green_t t = green_spawn(mark_ran, NULL, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_assert_eq(green_kill(t), 0);
    void *r = NULL;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, 7);
}

struct killrec {
    int yield_rc;
    int sleep_rc, sleep_errno;
    bool killed_after;
};

static void *yield_then_sleep(void *arg)
{
    struct killrec *k = arg;
    k->yield_rc = green_yield();
    k->sleep_rc = green_sleep(GREEN_SEC(10));
    k->sleep_errno = errno;
    k->killed_after = green_killed();
    return NULL;
}

Test(thread, a_kill_while_runnable_fails_the_next_park_once)
{
    struct killrec k = { 0 };
    green_t t = green_spawn(yield_then_sleep, &k, NULL);
    cr_assert_eq(green_yield(), 0);   /* t ran and is runnable in its yield */
    cr_assert_eq(green_kill(t), 0);
    cr_assert_eq(green_join(t, NULL), 0);
    cr_expect_eq(k.yield_rc, 0);
    cr_expect_eq(k.sleep_rc, -1);
    cr_expect_eq(k.sleep_errno, ECANCELED);
    cr_expect(k.killed_after);
}

static void *kill_self_then_park(void *arg)
{
    (void)arg;
    green_kill(green_self());
    int a = green_sleep(GREEN_MSEC(1)) == -1 ? errno : 0;   /* ECANCELED */
    int b = green_sleep(GREEN_MSEC(1)) == -1 ? errno : 0;   /* only once */
    return (void *)(intptr_t)(a * 1000 + b);
}

Test(thread, killing_yourself_fails_only_the_next_park)
{
    green_t t = green_spawn(kill_self_then_park, NULL, NULL);
    void *r;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, ECANCELED * 1000);
}

static char order[64];
static int order_n;

static void *log_thrice(void *arg)
{
    for (int i = 0; i < 3; i++) {
        order[order_n++] = (char)(intptr_t)arg;
        green_yield();
    }
    return NULL;
}

Test(thread, yield_runs_threads_in_fifo_order)
{
    order_n = 0;
    green_t a = green_spawn(log_thrice, (void *)'A', NULL);
    green_t b = green_spawn(log_thrice, (void *)'B', NULL);
    green_t c = green_spawn(log_thrice, (void *)'C', NULL);
    cr_assert_eq(green_join(a, NULL), 0);
    cr_assert_eq(green_join(b, NULL), 0);
    cr_assert_eq(green_join(c, NULL), 0);
    order[order_n] = 0;
    cr_expect_str_eq(order, "ABCABCABC");
}

static void *nothing(void *arg)
{
    return arg;
}

Test(thread, ids_are_unique_and_names_default_to_green_id)
{
    enum { N = 100 };
    green_t t[N];
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        t[i] = green_spawn(nothing, NULL, NULL);
        cr_assert(t[i]);
        ids[i] = green_id(t[i]);
        char want[32];
        snprintf(want, sizeof want, "green-%llu", (unsigned long long)ids[i]);
        cr_expect_str_eq(green_name(t[i]), want);
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            cr_expect_neq(ids[i], ids[j]);
    for (int i = 0; i < N; i++)
        cr_assert_eq(green_join(t[i], NULL), 0);
    cr_expect_str_eq(green_name(green_self()), "main");
    cr_expect_gt(green_id(green_self()), 0);
}

Test(thread, the_name_attribute_is_copied_and_truncated_to_31_bytes)
{
    char name[64];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = 0;
    green_attr_t a = { .name = name };
    green_t t = green_spawn(nothing, NULL, &a);
    name[0] = 'y';
    cr_expect_eq(strlen(green_name(t)), 31);
    cr_expect_eq(green_name(t)[0], 'x');
    cr_assert_eq(green_setname(t, "worker"), 0);
    cr_expect_str_eq(green_name(t), "worker");
    errno = 0;
    cr_expect_eq(green_setname(t, NULL), -1);
    cr_expect_eq(errno, EINVAL);
    cr_assert_eq(green_join(t, NULL), 0);
}

static int after_exit;

static void *exits_early(void *arg)
{
    (void)arg;
    green_exit((void *)99);
    after_exit = 1;
    return NULL;
}

Test(thread, green_exit_ends_the_thread_with_its_result)
{
    after_exit = 0;
    green_t t = green_spawn(exits_early, NULL, NULL);
    void *r;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, 99);
    cr_expect_eq(after_exit, 0);
}

static int finished;

static void *sleep_then_count(void *arg)
{
    green_sleep(GREEN_MSEC((intptr_t)arg));
    finished++;
    return NULL;
}

Test(thread, green_run_waits_for_every_thread)
{
    finished = 0;
    green_attr_t a = { .detached = true };
    for (int i = 0; i < 10; i++)
        cr_assert(green_spawn(sleep_then_count, (void *)(intptr_t)(i * 3), &a));
    cr_assert_eq(green_run(), 0);
    cr_expect_eq(finished, 10);
}

static int exit_pipe = -1;

static void *sleep_then_write(void *arg)
{
    green_sleep(GREEN_MSEC((intptr_t)arg));
    char c = 'x';
    if (write(exit_pipe, &c, 1) != 1)
        _exit(3);
    return NULL;
}

Test(thread, main_calling_green_exit_lives_until_the_last_thread_ends)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        exit_pipe = p[1];
        green_attr_t a = { .detached = true };
        green_spawn(sleep_then_write, (void *)20, &a);
        green_spawn(sleep_then_write, (void *)40, &a);
        green_exit(NULL);
    }
    close(p[1]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
    char buf[8];
    cr_expect_eq(read(p[0], buf, sizeof buf), 2);
    close(p[0]);
}

static void *join_other(void *arg)
{
    green_t *other = arg;
    int r = green_join(*other, NULL);
    return (void *)(intptr_t)(r == -1 ? errno : 0);
}

Test(thread, a_join_cycle_is_reported_to_main_as_edeadlk)
{
    static green_t a, b;
    a = green_spawn(join_other, &b, NULL);
    b = green_spawn(join_other, &a, NULL);
    cr_assert(a && b);
    errno = 0;
    cr_expect_eq(green_run(), -1);
    cr_expect_eq(errno, EDEADLK);
    errno = 0;   /* still deadlocked: reported again, not hung */
    cr_expect_eq(green_run(), -1);
    cr_expect_eq(errno, EDEADLK, "errno %d", errno);
    errno = 0;   /* a is being joined by b */
    cr_expect_eq(green_join(a, NULL), -1);
    cr_expect_eq(errno, EINVAL, "errno %d", errno);
}

static void *errno_keeper(void *arg)
{
    int mine = (int)(intptr_t)arg;
    for (int i = 0; i < 5; i++) {
        errno = mine;
        green_yield();
        if (errno != mine)
            return (void *)(intptr_t)errno;
        errno = mine;
        green_sleep(GREEN_USEC(100));
        if (errno != mine)
            return (void *)(intptr_t)errno;
    }
    return NULL;
}

Test(thread, errno_belongs_to_each_thread_across_switches)
{
    green_t a = green_spawn(errno_keeper, (void *)111, NULL);
    green_t b = green_spawn(errno_keeper, (void *)222, NULL);
    for (int i = 0; i < 5; i++) {
        errno = 333;
        green_yield();
        cr_expect_eq(errno, 333);
    }
    void *ra, *rb;
    cr_assert_eq(green_join(a, &ra), 0);
    cr_assert_eq(green_join(b, &rb), 0);
    cr_expect_null(ra, "A saw errno %ld", (long)(intptr_t)ra);
    cr_expect_null(rb, "B saw errno %ld", (long)(intptr_t)rb);
}

Test(thread, a_hundred_threads_sleeping_100_ms_finish_together)
{
    enum { N = 100 };
    green_t t[N];
    int64_t t0 = green_now();
    for (int i = 0; i < N; i++)
        cr_assert(t[i] = green_spawn(sleep_ms, (void *)100, NULL));
    for (int i = 0; i < N; i++) {
        void *r;
        cr_assert_eq(green_join(t[i], &r), 0);
        cr_expect_null(r);
    }
    int64_t el = green_now() - t0;
    cr_expect_geq(el, GREEN_MSEC(100));
    cr_expect_lt(el, GREEN_SEC(10), "took %lld ns", (long long)el);
}

Test(thread, detaching_a_finished_thread_frees_it)
{
    green_t t = green_spawn(nothing, NULL, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_expect_eq(green_detach(t), 0);
    green_t u = green_spawn(sleep_ms, (void *)1, NULL);
    cr_expect_eq(green_detach(u), 0);
    errno = 0;
    cr_expect_eq(green_detach(u), -1);
    cr_expect_eq(errno, EINVAL);
    cr_assert_eq(green_run(), 0);
}

static void *run_from_green(void *arg)
{
    (void)arg;
    finished = 0;
    green_attr_t a = { .detached = true };
    for (int i = 0; i < 3; i++)
        green_spawn(sleep_then_count, (void *)(intptr_t)(i + 1), &a);
    int r = green_run();
    return (void *)(intptr_t)(r == 0 ? finished : -errno);
}

Test(thread, green_run_in_a_green_thread_returns_when_the_others_are_done)
{
    green_t t = green_spawn(run_from_green, NULL, NULL);
    void *r = NULL;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, 3, "green_run returned %ld", (long)(intptr_t)r);
}

/* A randomised mix of parks, wake-ups and kills: every thread must end,
 * every join must succeed, and a thread sees ECANCELED at most once per
 * kill. Deterministic (fixed seed). */
struct mixjob {
    unsigned seed;
    int pipe_r;
    int cancels;           /* ECANCELED results seen */
    int steps;
};

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void *mixer(void *arg)
{
    struct mixjob *m = arg;
    for (int i = 0; i < 20; i++) {
        int r = 0;
        switch (rnd(&m->seed) % 4) {
        case 0: r = green_yield(); break;
        case 1: r = green_sleep(GREEN_USEC(rnd(&m->seed) % 500)); break;
        case 2: r = green_wait_readable(m->pipe_r, GREEN_USEC(rnd(&m->seed) % 300));
                if (r == -1 && errno == ETIMEDOUT)
                    r = 0;
                break;
        case 3: {
            green_timeout_t s;
            green_timeout_begin(&s, GREEN_USEC(rnd(&m->seed) % 200));
            r = green_sleep(GREEN_USEC(rnd(&m->seed) % 400));
            int e = errno;
            green_timeout_end(&s);
            if (r == -1 && e == ETIMEDOUT)
                r = 0;
            errno = e;
            break;
        }
        }
        if (r == -1 && errno == ECANCELED)
            m->cancels++;
        else if (r != 0)
            return (void *)(intptr_t)errno;
        m->steps++;
    }
    return NULL;
}

Test(thread, a_random_mix_of_parks_and_kills_ends_cleanly)
{
    enum { N = 300 };
    static struct mixjob m[N];
    static green_t t[N];
    static int kills[N];
    int p[2];
    cr_assert_eq(pipe(p), 0);
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        m[i] = (struct mixjob){ .seed = (unsigned)i * 7919u + 1, .pipe_r = p[0] };
        kills[i] = 0;
        cr_assert(t[i] = green_spawn(mixer, &m[i], NULL));
    }
    for (int round = 0; round < 200; round++) {
        int k = (int)(rnd(&seed) % N);
        if (rnd(&seed) % 3 == 0 && green_kill(t[k]) == 0)
            kills[k]++;
        if (rnd(&seed) % 5 == 0)
            green_sleep(GREEN_USEC(rnd(&seed) % 200));
        else
            green_yield();
    }
    for (int i = 0; i < N; i++) {
        void *r = (void *)1;
        cr_assert_eq(green_join(t[i], &r), 0);
        cr_expect(r == NULL || r == GREEN_CANCELED, "thread %d failed with %ld", i,
                  (long)(intptr_t)r);
        cr_expect_leq(m[i].cancels, kills[i], "thread %d: %d cancels for %d kills", i,
                      m[i].cancels, kills[i]);
        if (kills[i] == 0)
            cr_expect_eq(m[i].steps, 20, "thread %d did %d steps", i, m[i].steps);
    }
    close(p[0]);
    close(p[1]);
}

#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *foreign_kill(void *arg)
{
    return (void *)(intptr_t)(green_kill((green_t)arg) == 0 ? 1 : 0);
}

Test(thread, another_os_thread_kills_a_green_thread_through_its_hub)
{
    green_t t = green_spawn(sleep_ms, (void *)5000, NULL);
    cr_assert_eq(green_yield(), 0);     /* it sleeps now */
    pthread_t pt;
    cr_assert_eq(pthread_create(&pt, NULL, foreign_kill, t), 0);
    void *ok = NULL;
    cr_assert_eq(pthread_join(pt, &ok), 0);
    cr_expect_eq((intptr_t)ok, 1);
    void *r = (void *)1;
    int64_t t0 = green_now();
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, ECANCELED, "the sleep ended with %ld", (long)(intptr_t)r);
    cr_expect_lt(green_now() - t0, GREEN_SEC(4), "the kill never arrived");
}

/* ---------------------------------------------------------------- hubs */

static void *tid_of_runner(void *arg)
{
    (void)arg;
    green_sleep(GREEN_MSEC(1));
    return (void *)(intptr_t)syscall(SYS_gettid);
}

Test(thread, with_two_hubs_threads_are_placed_on_both_and_join_across_them)
{
    cr_assert_eq(green_hubs(), 1, "linked explicitly, one hub is the default");
    cr_assert_eq(green_set_hubs(2), 0);
    cr_expect_eq(green_hubs(), 2);
    enum { N = 8 };
    green_t t[N];
    for (int i = 0; i < N; i++)
        cr_assert_not_null(t[i] = green_spawn(tid_of_runner, NULL, NULL));
    pid_t me = (pid_t)syscall(SYS_gettid);
    int here = 0, there = 0;
    for (int i = 0; i < N; i++) {
        void *r = NULL;
        cr_assert_eq(green_join(t[i], &r), 0);
        if ((pid_t)(intptr_t)r == me)
            here++;
        else
            there++;
    }
    cr_expect_eq(here, N / 2, "%d of %d ran on the spawner's hub", here, N);
    cr_expect_eq(there, N / 2, "%d of %d ran on the other hub", there, N);
    errno = 0;
    cr_expect_eq(green_set_hubs(0), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(green_set_hubs(257), -1);
}

static void *spin_until(void *arg)
{
    atomic_int *go = arg;
    while (!atomic_load(go))
        ;
    return (void *)42;
}

Test(thread, two_hubs_run_in_parallel)
{
    /* A thread that spins without yielding on one hub finishes only if
     * the other hub runs at the same time: nothing else could set go. */
    cr_assert_eq(green_set_hubs(2), 0);
    atomic_int go = 0;
    green_t a = green_spawn(sleep_ms, (void *)1, NULL);   /* here */
    green_t b = green_spawn(spin_until, &go, NULL);       /* the other hub */
    cr_assert_eq(green_join(a, NULL), 0);
    green_sleep(GREEN_MSEC(20));
    atomic_store(&go, 1);
    void *r = NULL;
    cr_assert_eq(green_join(b, &r), 0);
    cr_expect_eq((intptr_t)r, 42);
}

static void *detach_later(void *arg)
{
    green_sleep(GREEN_MSEC(20));
    return arg;
}

Test(thread, a_thread_of_another_hub_can_be_detached_joined_with_a_timeout_and_killed)
{
    cr_assert_eq(green_set_hubs(2), 0);
    green_t a = green_spawn(sleep_ms, (void *)1, NULL);          /* here */
    green_t b = green_spawn(detach_later, (void *)7, NULL);      /* there */
    green_t c = green_spawn(sleep_ms, (void *)1, NULL);          /* here */
    green_t d = green_spawn(sleep_ms, (void *)5000, NULL);       /* there */
    cr_assert_eq(green_detach(b), 0);
    errno = 0;
    cr_expect_eq(green_join(b, NULL), -1);
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_eq(green_join_timeout(d, NULL, GREEN_MSEC(10)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_assert_eq(green_kill(d), 0);
    void *r = NULL;
    cr_assert_eq(green_join(d, &r), 0);
    cr_expect_eq((intptr_t)r, ECANCELED);
    cr_assert_eq(green_join(a, NULL), 0);
    cr_assert_eq(green_join(c, NULL), 0);
    /* green_run waits for the detached thread of the other hub too. */
    cr_assert_eq(green_run(), 0);
}
static void *os_thread_body(void *arg)
{
    (void)arg;
    enum { N = 50 };
    green_t t[N];
    for (int i = 0; i < N; i++)
        t[i] = green_spawn(sleep_ms, (void *)(intptr_t)(1 + i % 5), NULL);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        void *r = (void *)1;
        if (green_join(t[i], &r) != 0 || r != NULL)
            ok = 0;
    }
    if (strcmp(green_name(green_self()), "main") != 0)
        ok = 0;
    return (void *)(intptr_t)ok;
}

Test(thread, each_os_thread_gets_its_own_hub)
{
    pthread_t pt[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&pt[i], NULL, os_thread_body, NULL), 0);
    void *mine = os_thread_body(NULL);   /* this OS thread too, meanwhile */
    cr_expect_eq((intptr_t)mine, 1);
    for (int i = 0; i < 4; i++) {
        void *ok = NULL;
        cr_assert_eq(pthread_join(pt[i], &ok), 0);
        cr_expect_eq((intptr_t)ok, 1, "OS thread %d", i);
    }
}

static void *exit_main_green_of_os_thread(void *arg)
{
    int *flag = arg;
    green_attr_t a = { .detached = true };
    green_spawn(sleep_then_count, (void *)5, &a);
    *flag = 1;
    green_exit((void *)77);   /* waits for the green thread, then pthread_exit */
}

Test(thread, green_exit_on_another_os_threads_main_green_thread_ends_that_os_thread)
{
    finished = 0;   /* only touched by the other OS thread's green thread */
    int flag = 0;
    pthread_t pt;
    cr_assert_eq(pthread_create(&pt, NULL, exit_main_green_of_os_thread, &flag), 0);
    void *r = NULL;
    cr_assert_eq(pthread_join(pt, &r), 0);
    cr_expect_eq((intptr_t)r, 77);
    cr_expect_eq(flag, 1);
    cr_expect_eq(finished, 1);
}

static void *count_yields(void *arg)
{
    int *n = arg;
    for (int i = 0; i < 3; i++) {
        (*n)++;
        green_yield();
    }
    return NULL;
}

Test(thread, sleep_zero_yields_negative_fails_and_a_past_deadline_returns_at_once)
{
    int n = 0;
    green_t t = green_spawn(count_yields, &n, NULL);
    cr_expect_eq(green_sleep(0), 0);
    cr_expect_eq(n, 1, "sleep(0) did not let the other thread run");
    errno = 0;
    cr_expect_eq(green_sleep(-5), -1);
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_eq(green_sleep_until(-5), -1);
    cr_expect_eq(errno, EINVAL);
    int64_t t0 = green_now();
    cr_expect_eq(green_sleep_until(t0 - GREEN_SEC(1)), 0);
    cr_expect_lt(green_now() - t0, GREEN_SEC(1));
    cr_assert_eq(green_join(t, NULL), 0);
}

Test(thread, a_detached_thread_killed_while_parked_ends_and_is_freed)
{
    green_attr_t a = { .detached = true };
    green_t t = green_spawn(sleep_ms, (void *)10000, &a);
    cr_assert(t);
    cr_assert_eq(green_yield(), 0);        /* t sleeps */
    cr_assert_eq(green_kill(t), 0);
    int64_t t0 = green_now();
    cr_assert_eq(green_run(), 0);          /* t ends at once */
    cr_expect_lt(green_now() - t0, GREEN_SEC(5));
}

static void *return_seven(void *arg)
{
    (void)arg;
    return (void *)7;
}

Test(thread, switching_into_a_detached_thread_that_returns_resumes_the_caller)
{
    green_attr_t a = { .detached = true };
    green_t t = green_spawn(return_seven, NULL, &a);
    void *got = NULL;
    cr_assert_eq(green_switch(t, NULL, &got), 0);
    cr_expect_eq((intptr_t)got, 7);
    cr_assert_eq(green_run(), 0);
}

/*
 * tsan_hubs.c - N hubs (libgreen/hubs.c) without Criterion, so that
 * ThreadSanitizer can run it: the green threads of one program spread over
 * three hubs by green_set_hubs, with everything that crosses hubs.
 *
 * What it checks, in rounds:
 *  - placement: the threads ran on three OS threads, a share on each;
 *  - a green_mutex counter (no lost update), a green_cond token queue (no
 *    lost wake-up: a lost one hangs, and the alarm ends the run) and a
 *    green_sem shared by threads of every hub;
 *  - join across hubs (results come back), detach of a thread of another
 *    hub (green_run still waits for it), join with a deadline that passes
 *    (ETIMEDOUT, the thread stays joinable), and kill of a sleeping thread
 *    of another hub (its sleep fails with ECANCELED);
 *  - green_fd_closing from the spawner's hub wakes a thread of another
 *    hub parked on that descriptor with EBADF;
 *  - 2000 short threads in batches of 200: their stacks come back to the
 *    spawner through the spill list of libgreen/stack.c.
 * Exits 0 only if every check held; prints one line per failed check.
 * Under TSan a race report fails it too (tests/tsan/meson.build).
 *
 * Rejected: reading the hub of a thread through libgreen's internals (the
 * gettid each thread reports is what a program could see).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "green.h"

#define HUBS   3
#define N      30         /* green threads per round */
#define ITERS  300
#define TOKENS 200        /* per producer */

static int failures;

static void check(int ok, const char *what, long got, long want)
{
    if (ok)
        return;
    fprintf(stderr, "tsan_hubs: FAILED: %s (got %ld, want %ld)\n", what, got, want);
    failures++;
}

static pid_t tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* --------------------------------------------------------- shared state */

static green_mutex_t mu = GREEN_MUTEX_INIT;
static green_cond_t cv = GREEN_COND_INIT;
static green_sem_t sem = GREEN_SEM_INIT;
static long counter;                  /* under mu */
static long queue, consumed;          /* under mu */
static atomic_int producers_left;

static void *counting(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        green_mutex_lock(&mu, GREEN_FOREVER);
        counter++;
        green_mutex_unlock(&mu);
        if (i % 50 == 0)
            green_yield();
    }
    return (void *)(intptr_t)tid();
}

static void *producer(void *arg)
{
    (void)arg;
    for (int i = 0; i < TOKENS; i++) {
        green_mutex_lock(&mu, GREEN_FOREVER);
        queue++;
        green_cond_signal(&cv);
        green_mutex_unlock(&mu);
    }
    atomic_fetch_sub(&producers_left, 1);
    green_mutex_lock(&mu, GREEN_FOREVER);
    green_cond_broadcast(&cv);        /* consumers re-check the end */
    green_mutex_unlock(&mu);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    long got = 0;
    green_mutex_lock(&mu, GREEN_FOREVER);
    for (;;) {
        while (queue == 0 && atomic_load(&producers_left) > 0)
            green_cond_wait(&cv, &mu, GREEN_MSEC(200));
        if (queue == 0)
            break;
        queue--;
        consumed++;
        got++;
    }
    green_mutex_unlock(&mu);
    return (void *)got;
}

static void *sem_taker(void *arg)
{
    (void)arg;
    int got = 0;
    for (int i = 0; i < 20; i++)
        got += green_sem_wait(&sem, GREEN_SEC(10)) == 0;
    return (void *)(intptr_t)got;
}

static void *sleeper(void *arg)
{
    int r = green_sleep((int64_t)(intptr_t)arg);
    return (void *)(intptr_t)(r == 0 ? 0 : errno);
}

static atomic_int detached_done;

static void *detached(void *arg)
{
    (void)arg;
    green_sleep(GREEN_MSEC(30));
    atomic_fetch_add(&detached_done, 1);
    return NULL;
}

static void *fd_waiter(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int r = green_wait_readable(fd, GREEN_SEC(10));
    return (void *)(intptr_t)(r < 0 ? errno : 0);
}

/* ---------------------------------------------------------------- rounds */

static void round_placement_and_mutex(void)
{
    green_t t[N];
    for (int i = 0; i < N; i++)
        t[i] = green_spawn(counting, NULL, NULL);
    pid_t seen[N];
    int distinct = 0;
    for (int i = 0; i < N; i++) {
        void *r = NULL;
        check(green_join(t[i], &r) == 0, "join across hubs", errno, 0);
        pid_t p = (pid_t)(intptr_t)r;
        int k = 0;
        while (k < distinct && seen[k] != p)
            k++;
        if (k == distinct)
            seen[distinct++] = p;
    }
    check(distinct == HUBS, "OS threads the threads ran on", distinct, HUBS);
    green_mutex_lock(&mu, GREEN_FOREVER);
    check(counter == (long)N * ITERS, "mutex counter", counter, (long)N * ITERS);
    green_mutex_unlock(&mu);
}

static void round_cond_and_sem(void)
{
    enum { P = 6, C = 6, S = 6 };
    atomic_store(&producers_left, P);
    green_t c[C], p[P], s[S];
    for (int i = 0; i < C; i++)
        c[i] = green_spawn(consumer, NULL, NULL);
    for (int i = 0; i < P; i++)
        p[i] = green_spawn(producer, NULL, NULL);
    for (int i = 0; i < S; i++)
        s[i] = green_spawn(sem_taker, NULL, NULL);
    for (int i = 0; i < S * 20; i++)
        green_sem_post(&sem);
    long total = 0;
    for (int i = 0; i < P; i++)
        green_join(p[i], NULL);
    for (int i = 0; i < C; i++) {
        void *r = NULL;
        green_join(c[i], &r);
        total += (long)r;
    }
    check(total == (long)P * TOKENS, "tokens consumed", total, (long)P * TOKENS);
    long units = 0;
    for (int i = 0; i < S; i++) {
        void *r = NULL;
        green_join(s[i], &r);
        units += (intptr_t)r;
    }
    check(units == S * 20, "semaphore units taken", units, S * 20);
}

static void round_life_across_hubs(void)
{
    /* Three spawns in a row land on three hubs (fewest threads first). */
    green_t d = green_spawn(detached, NULL, NULL);
    green_t slow = green_spawn(sleeper, (void *)(intptr_t)GREEN_MSEC(80), NULL);
    green_t victim = green_spawn(sleeper, (void *)(intptr_t)GREEN_SEC(30), NULL);
    check(green_detach(d) == 0, "detach", errno, 0);
    check(green_join_timeout(slow, NULL, GREEN_MSEC(5)) == -1 && errno == ETIMEDOUT,
          "join with a deadline that passes", errno, ETIMEDOUT);
    void *r = (void *)1;
    check(green_join(slow, &r) == 0 && r == NULL, "joinable after the timeout",
          (long)(intptr_t)r, 0);
    green_sleep(GREEN_MSEC(5));       /* the victim sleeps by now */
    check(green_kill(victim) == 0, "kill across hubs", errno, 0);
    r = NULL;
    check(green_join(victim, &r) == 0 && (intptr_t)r == ECANCELED,
          "killed sleep ends with ECANCELED", (long)(intptr_t)r, ECANCELED);
    check(green_run() == 0, "green_run", errno, 0);
    check(atomic_load(&detached_done) == 1, "green_run waited for the detached thread",
          atomic_load(&detached_done), 1);
}

static void *short_lived(void *arg)
{
    green_yield();
    return arg;
}

/* Stacks flow from the spawner's pool to the hubs the threads ran on and
 * back through the spill list (libgreen/stack.c): batches past its
 * threshold, on three hubs. */
static void round_stack_churn(void)
{
    enum { B = 200, ROUNDS = 10 };
    static green_t t[B];
    long sum = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < B; i++)
            t[i] = green_spawn(short_lived, (void *)(intptr_t)1, NULL);
        for (int i = 0; i < B; i++) {
            void *v = NULL;
            green_join(t[i], &v);
            sum += (intptr_t)v;
        }
    }
    check(sum == (long)B * ROUNDS, "threads of the stack churn", sum, (long)B * ROUNDS);
}

static void round_close(void)
{
    int p[2];
    if (pipe(p) != 0) {
        check(0, "pipe", errno, 0);
        return;
    }
    green_t w[HUBS];
    for (int i = 0; i < HUBS; i++)
        w[i] = green_spawn(fd_waiter, (void *)(intptr_t)p[0], NULL);
    green_sleep(GREEN_MSEC(20));      /* all parked on p[0] */
    green_fd_closing(p[0]);
    close(p[0]);
    for (int i = 0; i < HUBS; i++) {
        void *r = NULL;
        green_join(w[i], &r);
        check((intptr_t)r == EBADF, "a waiter of some hub got EBADF", (long)(intptr_t)r, EBADF);
    }
    close(p[1]);
}

int main(void)
{
    alarm(120);                       /* a lost wake-up hangs: end it */
    if (green_set_hubs(HUBS) != 0) {
        perror("green_set_hubs");
        return 1;
    }
    round_placement_and_mutex();
    round_cond_and_sem();
    round_life_across_hubs();
    round_stack_churn();
    round_close();
    if (failures)
        return 1;
    printf("tsan_hubs: ok (%d hubs)\n", green_hubs());
    return 0;
}

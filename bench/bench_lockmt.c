/*
 * bench_lockmt.c - the lock core across OS threads: a contended mutex on
 * one hub (hand-off, cheap), across two hubs and between two plain OS
 * threads (barging with a starvation bound, against forced hand-off in
 * the same run), beside glibc's own mutex between two OS threads; and the
 * wake-up latency of a semaphore ping-pong on one hub and across two.
 *
 *   bench_lockmt [SCALE]
 *
 * Prints name=value lines: ns per lock/unlock pair of the whole group,
 * ns per round trip, and the barging/hand-off ratio.
 */
#include "bench.h"
#include <pthread.h>
#include <sched.h>
#include "lock.h"

#define PER_HUB 4      /* green threads per hub */

static struct green__mutex mu;
static pthread_mutex_t native_mu = PTHREAD_MUTEX_INITIALIZER;
static long counter, iters;
static pthread_barrier_t start;

/* A small critical section and a little work outside it, as a server's
 * shared-counter update between requests. */
static void work(int n)
{
    for (volatile int i = 0; i < n; i++)
        ;
}

static void *green_body(void *arg)
{
    (void)arg;
    struct green_thread *self = green__current();
    for (long i = 0; i < iters; i++) {
        green__mutex_lock(&mu, self, GREEN__MUTEX_NORMAL, GREEN_FOREVER, &green__lock_plain);
        counter++;
        work(20);
        green__mutex_unlock(&mu, self, GREEN__MUTEX_NORMAL);
        work(50);
        if (i % 64 == 0)
            green_yield();   /* let the hub's other threads in */
    }
    return NULL;
}

static void *hub_main(void *arg)
{
    (void)arg;
    green_t t[PER_HUB];
    for (int i = 0; i < PER_HUB; i++)
        t[i] = green_spawn(green_body, NULL, NULL);
    pthread_barrier_wait(&start);
    for (int i = 0; i < PER_HUB; i++)
        green_join(t[i], NULL);
    return NULL;
}

static void *plain_main(void *arg)
{
    bool native = arg != NULL;
    pthread_barrier_wait(&start);
    for (long i = 0; i < iters * PER_HUB; i++) {
        if (native)
            pthread_mutex_lock(&native_mu);
        else
            green__mutex_lock(&mu, NULL, GREEN__MUTEX_NORMAL, GREEN_FOREVER,
                              &green__lock_plain);
        counter++;
        work(20);
        if (native)
            pthread_mutex_unlock(&native_mu);
        else
            green__mutex_unlock(&mu, NULL, GREEN__MUTEX_NORMAL);
        work(50);
    }
    return NULL;
}

/* ns per lock/unlock pair over all threads, with `hubs` hub threads
 * (PER_HUB green threads each) or, with hubs == 0, two plain threads. */
static double contended(int hubs, bool native)
{
    int n = hubs ? hubs : 2;
    pthread_t th[4];
    counter = 0;
    pthread_barrier_init(&start, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, hubs ? hub_main : plain_main, native ? &mu : NULL);
    pthread_barrier_wait(&start);
    int64_t t0 = bench_now();
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    double ns = (double)(bench_now() - t0) / (double)(n * PER_HUB * iters);
    pthread_barrier_destroy(&start);
    if (counter != (long)n * PER_HUB * iters) {
        fprintf(stderr, "bench_lockmt: lost updates (%ld)\n", counter);
        exit(1);
    }
    return ns;
}

/* -------------------------------------------------- wake-up latency */

static green_sem_t ping, pong;
static long rounds;

static void *ponger(void *arg)
{
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        green_sem_wait(&ping, GREEN_FOREVER);
        green_sem_post(&pong);
    }
    return NULL;
}

static void *ponger_hub(void *arg)
{
    (void)arg;
    green_join(green_spawn(ponger, NULL, NULL), NULL);
    return NULL;
}

static double pingpong(bool cross)
{
    green_sem_init(&ping, 0);
    green_sem_init(&pong, 0);
    pthread_t th;
    green_t g = NULL;
    if (cross)
        pthread_create(&th, NULL, ponger_hub, NULL);
    else
        g = green_spawn(ponger, NULL, NULL);
    int64_t t0 = bench_now();
    for (long i = 0; i < rounds; i++) {
        green_sem_post(&ping);
        green_sem_wait(&pong, GREEN_FOREVER);
    }
    double ns = (double)(bench_now() - t0) / (double)rounds;
    if (cross)
        pthread_join(th, NULL);
    else
        green_join(g, NULL);
    return ns;
}

int main(int argc, char **argv)
{
    iters = bench_iters(argc, argv, 50000);
    rounds = bench_iters(argc, argv, 20000);
    green_yield();   /* the main thread gets its hub */

    double one = BENCH_BEST(3, contended(1, false));
    bench_report("mutex_1hub_handoff_ns", one);
    green__lock_always_handoff = false;
    double two = BENCH_BEST(3, contended(2, false));
    bench_report("mutex_2hubs_barging_ns", two);
    green__lock_always_handoff = true;
    double two_h = BENCH_BEST(3, contended(2, false));
    bench_report("mutex_2hubs_handoff_ns", two_h);
    green__lock_always_handoff = false;
    double plain = BENCH_BEST(3, contended(0, false));
    bench_report("mutex_2plain_barging_ns", plain);
    green__lock_always_handoff = true;
    double plain_h = BENCH_BEST(3, contended(0, false));
    bench_report("mutex_2plain_handoff_ns", plain_h);
    green__lock_always_handoff = false;
    double native = BENCH_BEST(3, contended(0, true));
    bench_report("mutex_2native_glibc_ns", native);
    bench_report("ratio_2hubs_handoff_over_barging", two_h / two);
    bench_report("ratio_2plain_handoff_over_barging", plain_h / plain);

    bench_report("sem_pingpong_1hub_ns", BENCH_BEST(3, pingpong(false)));
    bench_report("sem_pingpong_2hubs_ns", BENCH_BEST(3, pingpong(true)));
    return 0;
}

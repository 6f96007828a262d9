/*
 * bench_mutex.c - an uncontended pthread_mutex_lock/unlock pair, as an
 * unmodified program does it. Plain pthreads, not linked to libgreen:
 * run_benchmarks.sh counts its instructions natively and under
 * LD_PRELOAD=libgreen.so (the hooks' fast path, fair-turn clock read
 * included). --only=handoff: two threads take turns holding the mutex
 * (lock, sched_yield, unlock), so under the shim with one hub every lock
 * queues and every unlock hands over: the lock core's FIFO path.
 *
 *   bench_mutex [--only=lock|handoff] [N]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

static void *run(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&m);
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

static void *turns(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&m);
        sched_yield();
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long n = 2000000;
    bool handoff = false;
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--only=", 7) != 0)
            n = atol(argv[i]);
        else
            handoff = strcmp(argv[i] + 7, "handoff") == 0;
    if (handoff) {
        pthread_t t1, t2;
        pthread_create(&t1, NULL, turns, (void *)n);
        pthread_create(&t2, NULL, turns, (void *)n);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        return 0;
    }
    /* In a pthread: under the shim a green thread, as a daemon's worker. */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pthread_t t;
    pthread_create(&t, NULL, run, (void *)n);
    pthread_join(t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n;
    printf("mutex_lock_unlock_ns=%.2f\n", ns);
    return 0;
}

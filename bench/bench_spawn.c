/*
 * bench_spawn - spawn + run + join of a trivial green thread with pooled
 * stacks (steady state: no syscall), against pthread_create + pthread_join
 * of the same function in the same run.
 *   spawn_join_ns        green_spawn + green_join, one at a time
 *   spawn_join_batch_ns  100 spawned, then 100 joined (amortises the
 *                        hub's turn between rounds)
 *   pthread_ns           pthread_create + pthread_join
 *   ratio_pthread_over_green
 * Target: spawn_join_ns <= 100.
 */
#include "bench.h"
#include "green.h"
#include <pthread.h>

static void *fn(void *arg)
{
    return arg;
}

static double bench_one(long n)
{
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++) {
        green_t t = green_spawn(fn, NULL, NULL);
        green_join(t, NULL);
    }
    return (double)(bench_now() - t0) / (double)n;
}

static double bench_batch(long n)
{
    enum { B = 100 };
    green_t t[B];
    long rounds = n / B > 0 ? n / B : 1;
    int64_t t0 = bench_now();
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < B; i++)
            t[i] = green_spawn(fn, NULL, NULL);
        for (int i = 0; i < B; i++)
            green_join(t[i], NULL);
    }
    return (double)(bench_now() - t0) / (double)(rounds * B);
}

static double bench_pthread(long n)
{
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, fn, NULL) != 0)
            abort();
        pthread_join(t, NULL);
    }
    return (double)(bench_now() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long on;
    const char *only = bench_only(argc, argv, &on);
    if (only) {   /* on spawn+join operations */
        bench_one(1000);
        if (!strcmp(only, "one"))
            bench_one(on);
        else if (!strcmp(only, "batch"))
            bench_batch(on);
        else if (!strcmp(only, "pthread"))
            bench_pthread(on);
        return 0;
    }
    /* Many short runs, best kept (a busy machine preempts long ones). */
    long n = bench_iters(argc, argv, 20000);
    long np = bench_iters(argc, argv, 200);
    int reps = argc > 1 ? 1 : 30;
    bench_one(1000);                           /* warm the stack pool */
    double one = BENCH_BEST(reps, bench_one(n));
    double batch = BENCH_BEST(reps, bench_batch(n));
    double pt = BENCH_BEST(reps > 5 ? 5 : reps, bench_pthread(np));
    bench_report("spawn_join_ns", one);
    bench_report("spawn_join_batch_ns", batch);
    bench_report("pthread_ns", pt);
    bench_report("ratio_pthread_over_green", pt / one);
    return 0;
}

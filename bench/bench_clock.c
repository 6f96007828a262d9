/*
 * bench_clock - what per-green-thread CPU clocks cost (libgreen/
 * cpuclock.c). A plain pthreads program, run natively and under the shim
 * by run_benchmarks.sh:
 *
 *   mono_ns            one clock_gettime(CLOCK_MONOTONIC): the price of
 *                      the clock_gettime hook for every other clock;
 *   thread_cpu_ns      one clock_gettime(CLOCK_THREAD_CPUTIME_ID);
 *   yield_ns           one sched_yield between two threads, before any
 *                      thread CPU clock was asked for (under the shim with
 *                      one hub: one green switch);
 *   yield_cpuclock_ns  the same after the program read its CPU clock
 *                      (the shim now reads the OS thread's clock at each
 *                      switch).
 *
 * `--only=KERNEL N` (mono, yield) runs one kernel for callgrind.
 */
#define _GNU_SOURCE
#include "bench.h"
#include <pthread.h>
#include <sched.h>

static long yields;

static void *yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < yields; i++)
        sched_yield();
    return NULL;
}

static double clock_ns(clockid_t clk, long n)
{
    struct timespec ts;
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++)
        clock_gettime(clk, &ts);
    return (double)(bench_now() - t0) / (double)n;
}

static double yield_ns(long n)
{
    pthread_t a, b;
    yields = n;
    int64_t t0 = bench_now();
    pthread_create(&a, NULL, yielder, NULL);
    pthread_create(&b, NULL, yielder, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return (double)(bench_now() - t0) / (double)(2 * n);
}

int main(int argc, char **argv)
{
    long on;
    const char *only = bench_only(argc, argv, &on);
    if (only) {
        if (strcmp(only, "mono") == 0)
            clock_ns(CLOCK_MONOTONIC, on);
        else if (strcmp(only, "yield") == 0)
            yield_ns(on);
        return 0;
    }
    long n = bench_iters(argc, argv, 2000000);
    bench_report("mono_ns", BENCH_BEST(3, clock_ns(CLOCK_MONOTONIC, n)));
    bench_report("yield_ns", BENCH_BEST(3, yield_ns(n / 10)));
    bench_report("thread_cpu_ns", BENCH_BEST(3, clock_ns(CLOCK_THREAD_CPUTIME_ID, n / 10)));
    bench_report("yield_cpuclock_ns", BENCH_BEST(3, yield_ns(n / 10)));
    return 0;
}

/*
 * bench.h - shared helpers of the benchmarks. A benchmark prints one
 * `name=value` line per measurement; comparisons are ratios of two
 * measurements taken in the same run, since absolute times on a shared
 * machine are noise. The first argument scales every iteration count
 * (run_benchmarks.sh passes a small one under callgrind).
 */
#ifndef GREEN_BENCH_H
#define GREEN_BENCH_H
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline int64_t bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Iteration count n scaled by the command line's factor (default 1). */
static inline long bench_iters(int argc, char **argv, long n)
{
    double f = argc > 1 ? atof(argv[1]) : 1.0;
    long r = (long)((double)n * (f > 0 ? f : 1.0));
    return r > 0 ? r : 1;
}

static inline void bench_report(const char *name, double value)
{
    printf("%s=%.2f\n", name, value);
    fflush(stdout);
}

/* Best of `reps` runs of fn (per-operation ns): the minimum is the least
 * disturbed by other processes on a shared machine. */
#define BENCH_BEST(reps, expr)                                              \
    ({                                                                      \
        double best_ = 1e300;                                               \
        for (int rep_ = 0; rep_ < (reps); rep_++) {                         \
            double v_ = (expr);                                             \
            if (v_ < best_)                                                 \
                best_ = v_;                                                 \
        }                                                                   \
        best_;                                                              \
    })

/* `PROG --only=KERNEL N` runs one kernel once with N iterations and prints
 * nothing: run_benchmarks.sh profiles it under callgrind at two values of
 * N, so that the difference is the instructions of N2 - N1 operations. */
static inline const char *bench_only(int argc, char **argv, long *n)
{
    if (argc < 3 || strncmp(argv[1], "--only=", 7) != 0)
        return NULL;
    *n = atol(argv[2]);
    return argv[1] + 7;
}

#endif

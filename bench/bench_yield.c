/*
 * bench_yield - green_yield through the scheduler with K runnable green
 * threads, each yielding in a loop: ns per yield (one yield = one switch
 * to the next thread in the FIFO run queue, plus a share of the hub's turn
 * once per round). K = 2, 1000, 100000 (unguarded stacks: 100,000 guarded
 * ones would exceed vm.max_map_count). Target: yield_1000_ns <= 30.
 */
#include "bench.h"
#include "green.h"

static long per_thread;

static void *yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < per_thread; i++)
        green_yield();
    return NULL;
}

static double bench_k(long k, long total)
{
    green_t *t = malloc((size_t)k * sizeof *t);
    green_attr_t a = { .guard = 2, .stack_size = 16384 };
    per_thread = total / k > 0 ? total / k : 1;
    for (long i = 0; i < k; i++)
        t[i] = green_spawn(yielder, NULL, &a);
    green_yield();                 /* every thread has started */
    int64_t t0 = bench_now();
    for (long i = 0; i < k; i++)
        green_join(t[i], NULL);
    int64_t el = bench_now() - t0;
    free(t);
    return (double)el / (double)(k * per_thread);
}

int main(int argc, char **argv)
{
    long on;
    const char *only = bench_only(argc, argv, &on);
    if (only) {   /* --only=K: on yields spread over K threads */
        bench_k(atol(only), on);
        return 0;
    }
    long total = bench_iters(argc, argv, 4000000);
    bench_report("yield_2_ns", BENCH_BEST(3, bench_k(2, total)));
    bench_report("yield_1000_ns", BENCH_BEST(3, bench_k(1000, total)));
    bench_report("yield_100000_ns", BENCH_BEST(2, bench_k(100000, total)));
    return 0;
}

/*
 * bench_tls - the cost of thread-local storage per green thread
 * (GREEN_TLS, libgreen/tls.c) on a switch, by the size of the program's
 * own TLS. Built four times (bench_tls_0, _64, _1024, _16384: TLS_BYTES
 * of __thread data in the executable) and linked with libgreen.so, not
 * the static core, so that the executable's TLS is a module of its own
 * that tls.c swaps (libgreen's own never is). Linked explicitly, the
 * setting defaults to off: run each binary with GREEN_TLS=0 and =1.
 *
 *   bench_tls_N [scale]       prints switch_ns (one-way green_switch
 *                             between two green threads that both touch
 *                             their TLS, best of 5) and tls_ok (each
 *                             thread's counter in TLS counted only its
 *                             own turns: 1 with GREEN_TLS=1; with
 *                             GREEN_TLS=0 the two share it and say 0)
 *   bench_tls_N --only=x N    N round trips, nothing printed (callgrind:
 *                             bench/run_benchmarks.sh, README)
 *
 * Every switch here changes the running green thread, so every switch
 * swaps (the worst case: a park followed by the same thread's resume,
 * through the hub, copies nothing).
 */
#include "bench.h"
#include "green.h"

#ifndef TLS_BYTES
#define TLS_BYTES 0
#endif

#if TLS_BYTES > 0
static __thread unsigned char blob[TLS_BYTES];
#define TOUCH() (blob[0]++, blob[TLS_BYTES - 1]++)
#define TURNS() ((long)blob[0])
#else
#define TOUCH() ((void)0)
#define TURNS() 0L
#endif

static green_t main_t;
static long turns_other;

static void *bouncer(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        TOUCH();
        green_switch(main_t, NULL, NULL);
    }
    turns_other = TURNS();
    return NULL;
}

/* n round trips; returns ns per one-way switch. */
static double run(long n, bool *ok)
{
    main_t = green_self();
    long before = TURNS();
    green_t t = green_spawn(bouncer, (void *)(intptr_t)(n + 1), NULL);
    green_switch(t, NULL, NULL);              /* start it: not timed */
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++) {
        TOUCH();
        green_switch(t, NULL, NULL);
    }
    int64_t el = bench_now() - t0;
    green_switch(t, NULL, NULL);              /* let it finish */
    green_join(t, NULL);
    /* Counters are bytes: compare modulo 256. */
    *ok = TLS_BYTES == 0 ||
          (((TURNS() - before) & 255) == (n & 255) &&
           (turns_other & 255) == ((n + 1) & 255));
    return (double)el / (2.0 * (double)n);
}

int main(int argc, char **argv)
{
    bool ok;
    if (argc > 2 && !strcmp(argv[1], "--only=x")) {
        run(atol(argv[2]), &ok);
        return 0;
    }
    long n = bench_iters(argc, argv, 200000);
    bool all = true;
    double best = 1e300;
    for (int rep = 0; rep < 5; rep++) {
        double ns = run(n, &ok);
        all = all && ok;
        if (ns < best)
            best = ns;
    }
    printf("tls_bytes=%d\n", TLS_BYTES);
    bench_report("switch_ns", best);
    printf("tls_ok=%d\n", all);
    return 0;
}

/*
 * bench_switch - one-way context switch time, three ways in one run:
 *   switch_raw_ns    green__ctx_switch alone (the assembly, two stacks)
 *   switch_green_ns  green_switch between two green threads (the public
 *                    API: park bookkeeping + the assembly)
 *   swapcontext_ns   glibc swapcontext between two ucontexts (a
 *                    rt_sigprocmask syscall per switch)
 * and the ratio swapcontext / green_switch. Target: switch_green_ns <= 10.
 */
#include "bench.h"
#include "green.h"
#include "arch/switch.h"
#include <ucontext.h>

/* ----------------------------------------------------------- raw switch */

static void *raw_main_sp, *raw_other_sp;

static void raw_entry(void *arg)
{
    (void)arg;
    for (;;)
        green__ctx_switch(&raw_other_sp, raw_main_sp);
}

static double bench_raw(long n)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    raw_other_sp = green__ctx_make(stack, stack + sizeof stack, raw_entry, NULL);
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++)
        green__ctx_switch(&raw_main_sp, raw_other_sp);
    return (double)(bench_now() - t0) / (2.0 * (double)n);
}

/* --------------------------------------------------------- green_switch */

static green_t main_t;

static void *bouncer(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++)
        green_switch(main_t, NULL, NULL);
    return NULL;
}

static double bench_green(long n)
{
    main_t = green_self();
    green_t t = green_spawn(bouncer, (void *)(intptr_t)n, NULL);
    green_switch(t, NULL, NULL);              /* start it: not timed */
    int64_t t0 = bench_now();
    for (long i = 1; i < n; i++)
        green_switch(t, NULL, NULL);
    int64_t el = bench_now() - t0;
    green_switch(t, NULL, NULL);              /* let it finish */
    green_join(t, NULL);
    return (double)el / (2.0 * (double)(n - 1));
}

/* ---------------------------------------------------------- swapcontext */

static ucontext_t uc_main, uc_other;

static void uc_entry(void)
{
    for (;;)
        swapcontext(&uc_other, &uc_main);
}

static double bench_swapcontext(long n)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    getcontext(&uc_other);
    uc_other.uc_stack.ss_sp = stack;
    uc_other.uc_stack.ss_size = sizeof stack;
    uc_other.uc_link = NULL;
    makecontext(&uc_other, uc_entry, 0);
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++)
        swapcontext(&uc_main, &uc_other);
    return (double)(bench_now() - t0) / (2.0 * (double)n);
}

int main(int argc, char **argv)
{
    long on;
    const char *only = bench_only(argc, argv, &on);
    if (only) {   /* on round trips = 2 * on one-way switches */
        if (!strcmp(only, "raw"))
            bench_raw(on);
        else if (!strcmp(only, "green"))
            bench_green(on + 1);
        else if (!strcmp(only, "swapcontext"))
            bench_swapcontext(on);
        return 0;
    }
    /* Many short runs, best kept: a short run often fits in one time
     * slice of a busy machine. */
    long n = bench_iters(argc, argv, 100000);
    long nuc = bench_iters(argc, argv, 5000);
    int reps = argc > 1 ? 1 : 30;
    double raw = BENCH_BEST(reps, bench_raw(n));
    double green = BENCH_BEST(reps, bench_green(n));
    double uc = BENCH_BEST(reps, bench_swapcontext(nuc));
    bench_report("switch_raw_ns", raw);
    bench_report("switch_green_ns", green);
    bench_report("swapcontext_ns", uc);
    bench_report("ratio_swapcontext_over_green_switch", uc / green);
    return 0;
}

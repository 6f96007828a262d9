/*
 * bench_parked - 100,000 green threads parked at once (each in a long
 * green_sleep): resident memory per thread from /proc/self/status VmRSS
 * before and after, and the time to create them and get them all parked.
 * Unguarded stacks of the default size (attr.guard = 2): 100,000 guarded
 * stacks would need 200,000 mappings, past vm.max_map_count (65530).
 * Target: rss_per_thread_kib <= 16.
 */
#include "bench.h"
#include "green.h"
#include <string.h>

static long vm_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = atol(line + 6);
    if (f)
        fclose(f);
    return v;
}

static void *park(void *arg)
{
    (void)arg;
    green_sleep(GREEN_SEC(3600));
    return NULL;
}

int main(int argc, char **argv)
{
    long n = bench_iters(argc, argv, 100000);
    green_t *t = malloc((size_t)n * sizeof *t);
    green_attr_t a = { .guard = 2 };
    green_self();                               /* hub exists before */
    long rss0 = vm_rss_kib();
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++) {
        t[i] = green_spawn(park, NULL, &a);
        if (!t[i]) {
            perror("green_spawn");
            return 1;
        }
    }
    int64_t t1 = bench_now();
    green_yield();                              /* all run and park */
    int64_t t2 = bench_now();
    long rss1 = vm_rss_kib();
    bench_report("threads", (double)n);
    bench_report("default_stack_kib", (double)green_default_stack_size() / 1024);
    bench_report("rss_per_thread_kib", (double)(rss1 - rss0) / (double)n);
    bench_report("spawn_ns_per_thread", (double)(t1 - t0) / (double)n);
    bench_report("spawn_and_park_ns_per_thread", (double)(t2 - t0) / (double)n);
    int64_t t3 = bench_now();
    for (long i = 0; i < n; i++)
        green_kill(t[i]);
    for (long i = 0; i < n; i++)
        green_join(t[i], NULL);
    bench_report("kill_and_join_ns_per_thread", (double)(bench_now() - t3) / (double)n);
    free(t);
    return 0;
}

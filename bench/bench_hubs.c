/*
 * bench_hubs.c - cross-hub hand-off and wake-up latency through the public
 * API, the libgreen side of the Go anchor (bench/go/handoff.go measures
 * the same two things with GOMAXPROCS=2).
 *
 *   bench_hubs [SCALE] [REPS]
 *
 * Two green threads, spawned after green_set_hubs(2) (placement puts them
 * on different hubs: each hub's OS thread runs one) or after
 * green_set_hubs(1) (both on the main thread's hub), measure:
 *
 *   sem_pingpong_*_ns   one round trip: A posts `ping` and waits on
 *                       `pong`, B waits on `ping` and posts `pong`. Across
 *                       hubs each half is a wake-up of a thread parked on
 *                       another OS thread (Go: an unbuffered channel).
 *   mutex_*_ns          one green_mutex lock/unlock pair (counter++ inside),
 *                       both threads in a loop, total time over all pairs
 *                       (Go: sync.Mutex). Across hubs the two really run at
 *                       once and contend. On one hub they cannot: a green
 *                       thread never switches while it holds this lock, so
 *                       mutex_same_hub_ns is the uncontended cost, and
 *                       mutex_same_hub_handoff_ns yields inside the critical
 *                       section so that every lock is contended and every
 *                       unlock hands the lock to the parked other thread.
 *
 * Each figure is the median of REPS runs (default 5), same hub and cross
 * hub alternating. Every run checks where its threads ran (the OS thread
 * id each saw: equal on one hub, different across hubs) and that no
 * counter update was lost; it exits 1 otherwise.
 *
 * Rejected: reusing bench_lockmt's internal lock calls (this is the
 * public API an application or the shim's pthread_mutex uses); minimum of
 * the runs (bench_lockmt's choice; the Go side reports medians, so this
 * does too).
 */
#include "bench.h"
#include "green.h"
#include <sys/syscall.h>
#include <unistd.h>

#define REPS_MAX 64

static green_sem_t ping, pong;
static green_mutex_t mu;
static long rounds, pairs, counter;
static bool yield_inside;

struct side {
    long tid;          /* OS thread the green thread ran on */
    int64_t t0, t1;    /* its loop's start (both started) and end */
};
static int ready;      /* threads at the start line */

/* Record where we run, wait until the other thread has started too (so
 * that the loops overlap; yielding, since on one hub the other thread
 * needs ours to run), then take the start time. */
static void start_line(struct side *s)
{
    s->tid = (long)syscall(SYS_gettid);
    __atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) < 2)
        green_yield();
    s->t0 = bench_now();
}

static void *pinger(void *arg)
{
    struct side *s = arg;
    start_line(s);
    for (long i = 0; i < rounds; i++) {
        green_sem_post(&ping);
        green_sem_wait(&pong, GREEN_FOREVER);
    }
    s->t1 = bench_now();
    return NULL;
}

static void *ponger(void *arg)
{
    struct side *s = arg;
    start_line(s);
    for (long i = 0; i < rounds; i++) {
        green_sem_wait(&ping, GREEN_FOREVER);
        green_sem_post(&pong);
    }
    s->t1 = bench_now();
    return NULL;
}

static void *locker(void *arg)
{
    struct side *s = arg;
    start_line(s);
    for (long i = 0; i < pairs; i++) {
        green_mutex_lock(&mu, GREEN_FOREVER);
        counter++;
        if (yield_inside)
            green_yield();
        green_mutex_unlock(&mu);
    }
    s->t1 = bench_now();
    return NULL;
}

/* Run a and b on `hubs` hubs (1 or 2); ns per op of ops operations, from
 * the first loop's start to the last one's end. */
static double run_pair(int hubs, void *(*a)(void *), void *(*b)(void *), long ops)
{
    struct side sa = {0}, sb = {0};
    ready = 0;
    green_set_hubs(hubs);
    green_t ta = green_spawn(a, &sa, NULL);
    green_t tb = green_spawn(b, &sb, NULL);
    if (!ta || !tb) {
        perror("bench_hubs: green_spawn");
        exit(1);
    }
    green_join(ta, NULL);
    green_join(tb, NULL);
    int64_t t0 = sa.t0 < sb.t0 ? sa.t0 : sb.t0, t1 = sa.t1 > sb.t1 ? sa.t1 : sb.t1;
    double ns = (double)(t1 - t0) / (double)ops;
    if ((hubs == 1) != (sa.tid == sb.tid)) {
        fprintf(stderr, "bench_hubs: with %d hub(s) the threads ran on OS threads %ld and "
                "%ld\n", hubs, sa.tid, sb.tid);
        exit(1);
    }
    return ns;
}

static double pingpong(int hubs)
{
    green_sem_init(&ping, 0);
    green_sem_init(&pong, 0);
    return run_pair(hubs, pinger, ponger, rounds);
}

static double mutex(int hubs, bool yield)
{
    green_mutex_init(&mu, GREEN_MUTEX_PLAIN);
    counter = 0;
    yield_inside = yield;
    double ns = run_pair(hubs, locker, locker, 2 * pairs);
    if (counter != 2 * pairs) {
        fprintf(stderr, "bench_hubs: lost updates (%ld of %ld)\n", counter, 2 * pairs);
        exit(1);
    }
    return ns;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum { PP_SAME, PP_CROSS, MU_SAME, MU_SAME_HANDOFF, MU_CROSS, KINDS };

int main(int argc, char **argv)
{
    static const char *names[KINDS] = {
        "sem_pingpong_same_hub_ns", "sem_pingpong_cross_hub_ns",
        "mutex_same_hub_ns", "mutex_same_hub_handoff_ns", "mutex_cross_hub_ns",
    };
    rounds = bench_iters(argc, argv, 50000);
    pairs = bench_iters(argc, argv, 500000);
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > REPS_MAX)
        reps = 5;
    static double v[KINDS][REPS_MAX];
    green_yield();   /* the main thread gets its hub */
    for (int r = 0; r < reps; r++) {
        v[PP_SAME][r] = pingpong(1);
        v[PP_CROSS][r] = pingpong(2);
        v[MU_SAME][r] = mutex(1, false);
        v[MU_SAME_HANDOFF][r] = mutex(1, true);
        v[MU_CROSS][r] = mutex(2, false);
    }
    for (int k = 0; k < KINDS; k++)
        bench_report(names[k], median(v[k], reps));
    bench_report("ratio_sem_pingpong_cross_over_same",
                 median(v[PP_CROSS], reps) / median(v[PP_SAME], reps));
    return 0;
}

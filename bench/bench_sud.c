/*
 * bench_sud - what syscall user dispatch (hooks/sud.c,
 * GREEN_SYSCALL_DISPATCH=1) costs, side by side in one run (CPU ns per
 * call, this thread's,
 * best of 5; ratios are to the first line of each group):
 *
 *   getppid through libc, dispatch off                      (the base)
 *   getppid with its own syscall instruction, dispatch off
 *   getppid through libc, dispatch on with libc's text allowed: what
 *     every call libgreen and the program make through libc pays (the
 *     design chosen)
 *   getppid through libc, dispatch on with nothing allowed and the
 *     selector byte flipped to ALLOW around the call (the design
 *     rejected: what every libc call would pay)
 *   getppid through libgreen's own instruction (green__syscall), which
 *     opens the selector around itself: dispatch off, then on
 *   getppid with its own syscall instruction, dispatch on: trapped to
 *     SIGSYS, made by libgreen's handler (the SIGSYS round trip)
 *   green__sud_dispatch called directly: the handler's own work
 *
 *   a one-byte ping-pong between two green threads over two pipes,
 *   through the hooks as libc's read/write are under the shim
 *   the same with raw read/write, trapped and sent to the same hooks
 *
 * `bench_sud --only=KERNEL N` runs one kernel for callgrind
 * (run_benchmarks.sh): libc, dispatch, pingpong_hooked. The trapped
 * kernels cannot run under valgrind, which makes the guest's system
 * calls from its own text (docs/syscall-dispatch.md).
 */
#include "bench.h"
#include "green.h"
#include "io.h"
#include "real.h"
#include "sud.h"
#include "../tests/progs/raw_syscall.h"
#include <errno.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#endif

static volatile long sink;

/* This OS thread's CPU time: what the other processes sharing the
 * machine take from us while a kernel runs is not counted (wall time
 * was too noisy on two shared CPUs to see a 10% difference). */
static int64_t cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double libc_getppid(long n)
{
    int64_t t0 = cpu_now();
    for (long i = 0; i < n; i++)
        sink = syscall(SYS_getppid);
    return (double)(cpu_now() - t0) / (double)n;
}

static double raw_getppid(long n)
{
    int64_t t0 = cpu_now();
    for (long i = 0; i < n; i++)
        sink = raw_syscall4(SYS_getppid, 0, 0, 0, 0);
    return (double)(cpu_now() - t0) / (double)n;
}

/* The rejected design: nothing allowed, the selector opened around each
 * call. Nothing else may make a system call while the selector is shut:
 * the clock is read with the selector open. */
static volatile char sel;
static double selector_getppid(long n)
{
    sel = 0;
    if (prctl(PR_SET_SYSCALL_USER_DISPATCH, 1, 0, 0, &sel) != 0)
        return -1;
    int64_t t0 = cpu_now();
    sel = 1;
    for (long i = 0; i < n; i++) {
        sel = 0;
        sink = syscall(SYS_getppid);
        sel = 1;
    }
    sel = 0;
    int64_t el = cpu_now() - t0;
    prctl(PR_SET_SYSCALL_USER_DISPATCH, 0, 0, 0, 0);
    return (double)el / (double)n;
}

/* libgreen's own instruction (green__syscall7), which opens the
 * selector around itself. */
static double own_getppid(long n)
{
    int64_t t0 = cpu_now();
    for (long i = 0; i < n; i++)
        sink = green__syscall(SYS_getppid);
    return (double)(cpu_now() - t0) / (double)n;
}

static double dispatch_getppid(long n)
{
    static const long a[6];
    int64_t t0 = cpu_now();
    for (long i = 0; i < n; i++)
        sink = green__sud_dispatch(SYS_getppid, a, 0);
    return (double)(cpu_now() - t0) / (double)n;
}

/* ------------------------------------------------------------ pingpong */

static int ab[2], ba[2];
static long rounds;
static bool raw;

static long rd(int fd, char *c)
{
    return raw ? raw_syscall4(SYS_read, fd, (long)c, 1, 0) : green_hook_read(fd, c, 1);
}

static long wr(int fd, const char *c)
{
    return raw ? raw_syscall4(SYS_write, fd, (long)c, 1, 0) : green_hook_write(fd, c, 1);
}

static void *pong(void *arg)
{
    (void)arg;
    char c;
    for (long i = 0; i < rounds; i++)
        if (rd(ab[0], &c) != 1 || wr(ba[1], "o") != 1)
            abort();
    return NULL;
}

static double pingpong(long n, bool use_raw)
{
    raw = use_raw;
    rounds = n;
    if (green_hook_pipe(ab) != 0 || green_hook_pipe(ba) != 0)
        abort();
    green_t t = green_spawn(pong, NULL, NULL);
    char c;
    int64_t t0 = cpu_now();
    for (long i = 0; i < n; i++)
        if (wr(ab[1], "i") != 1 || rd(ba[0], &c) != 1)
            abort();
    int64_t el = cpu_now() - t0;
    green_join(t, NULL);
    green_hook_close(ab[0]), green_hook_close(ab[1]);
    green_hook_close(ba[0]), green_hook_close(ba[1]);
    return (double)el / (double)n;
}

static void report2(const char *name, double v, double base)
{
    bench_report(name, v);
    char r[128];
    snprintf(r, sizeof r, "%s_ratio", name);
    bench_report(r, v / base);
}

int main(int argc, char **argv)
{
    long on;
    const char *only = bench_only(argc, argv, &on);
    if (only) {
        /* No dispatch on under valgrind (green__sud_on refuses): the
         * handler's own work is measured by calling it. */
        if (!strcmp(only, "dispatch") && green__sud_setup() != 0)
            return 1;
        if (!strcmp(only, "libc"))
            libc_getppid(on);
        else if (!strcmp(only, "dispatch"))
            dispatch_getppid(on);
        else if (!strcmp(only, "pingpong_hooked"))
            pingpong(on, false);
        else
            return 2;
        return 0;
    }
    long n = bench_iters(argc, argv, 50000);
    int reps = argc > 1 ? 1 : 5;
    if (green__sud_setup() != 0) {
        printf("# no syscall user dispatch: %s\n", strerror(errno));
        return 0;
    }
    green_self();    /* this thread's hub, for the pingpong: switches dispatch on */
    green__sud_off();

    /* Interleaved: each round measures every variant once, and each
     * keeps its best round, so that a burst of load elsewhere hits them
     * alike. */
    enum { LIBC, RAW, FLIPPED, OWN, LIBC_ON, OWN_ON, TRAPPED, BODY, NV };
    static const char *names[NV] = {
        "getppid_libc_ns", "getppid_raw_ns", "getppid_selector_flipped_ns",
        "getppid_libgreen_own_ns", "getppid_libc_dispatch_on_ns",
        "getppid_libgreen_own_dispatch_on_ns", "getppid_trapped_ns", "dispatch_body_ns",
    };
    double best[NV];
    for (int v = 0; v < NV; v++)
        best[v] = 1e300;
    for (int rep = 0; rep < reps * 4; rep++) {
        double r[NV];
        r[LIBC] = libc_getppid(n);
        r[RAW] = raw_getppid(n);
        r[FLIPPED] = selector_getppid(n);
        r[OWN] = own_getppid(n);
        if (green__sud_on() != 0) {
            printf("# cannot switch dispatch on: %s\n", strerror(errno));
            return 0;
        }
        r[LIBC_ON] = libc_getppid(n);
        r[OWN_ON] = own_getppid(n);
        r[TRAPPED] = raw_getppid(n / 4);
        r[BODY] = dispatch_getppid(n);
        green__sud_off();
        for (int v = 0; v < NV; v++)
            if (r[v] < best[v])
                best[v] = r[v];
    }
    bench_report(names[LIBC], best[LIBC]);
    for (int v = 1; v < NV; v++)
        report2(names[v], best[v], best[LIBC]);

    green__sud_on();
    long m = n / 10;
    double hooked = BENCH_BEST(reps, pingpong(m, false));
    bench_report("pingpong_hooked_round_trip_ns", hooked);
    report2("pingpong_trapped_round_trip_ns", BENCH_BEST(reps, pingpong(m, true)), hooked);
    green__sud_off();
    return 0;
}

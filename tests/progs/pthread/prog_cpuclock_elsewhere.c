/*
 * prog_cpuclock_elsewhere.c - another thread's CPU clock read while that
 * thread computes without pausing: main reads the clock of a thread that
 * spins (no call that could switch) until told to stop, until it has
 * advanced 100 ms past a first read or 5 s went by (a loaded machine gives
 * the spinner less than the wall time), then 200 times in a row. Prints
 * "advanced_ms=N" (how far the clock moved: 100 or a little more natively,
 * where the kernel counts the spinning thread's time continuously; 0 if
 * it stood still) and "monotonic=1" when no read
 * was below the one before, "hooked=1" when pthread_create is
 * libgreen's (dladdr), and "spinner_on_main_os_thread=0" when the
 * spinner ran on an OS thread of its own. tests/test_preload_pthread.c runs it natively
 * and under the shim with two hubs (the spinner on the hub main is not
 * on: libgreen/cpuclock.c, reads from another hub). Main reads its own
 * thread CPU clock first, so that counting has started (see main).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_int started, stop;
static atomic_long spinner_tid;
static int idle_pipe[2];

/* Waits for main's word: under the shim it keeps main's hub loaded, so
 * that the spinner is placed on the other hub. */
static void *idle(void *arg)
{
    (void)arg;
    char c;
    return read(idle_pipe[0], &c, 1) == 1 ? NULL : (void *)1;
}

static long long ns_of(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0)
        return -1;
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *spin(void *arg)
{
    (void)arg;
    long long t0 = ns_of(CLOCK_MONOTONIC);
    atomic_store(&spinner_tid, (long)syscall(SYS_gettid));
    atomic_store(&started, 1);
    volatile unsigned long x = 0;
    while (!atomic_load(&stop) && ns_of(CLOCK_MONOTONIC) - t0 < 10000000000LL)
        x++;
    return NULL;
}

/* 1 when pthread_create, as this program sees it, is libgreen's. */
static int hooked(void)
{
    Dl_info info;
    void *p = dlsym(RTLD_DEFAULT, "pthread_create");
    return p && dladdr(p, &info) && info.dli_fname && strstr(info.dli_fname, "libgreen");
}

int main(void)
{
    /* A thread CPU clock asked for before the spinner exists: under the
     * shim, counting starts with the first request, on each hub at its
     * next poll (libgreen/cpuclock.c), which a hub that only spins never
     * reaches. */
    ns_of(CLOCK_THREAD_CPUTIME_ID);
    pthread_t idler, t;
    if (pipe(idle_pipe) != 0)
        return 1;
    pthread_create(&idler, NULL, idle, NULL);
    pthread_create(&t, NULL, spin, NULL);
    clockid_t clk;
    if (pthread_getcpuclockid(t, &clk) != 0) {
        printf("getcpuclockid failed\n");
        return 1;
    }
    while (!atomic_load(&started))
        usleep(1000);
    usleep(100000);
    /* Until the spinner's clock has advanced 100 ms, or 5 s: a loaded
     * machine gives it less than the wall time. */
    long long a = ns_of(clk), b = a, w0 = ns_of(CLOCK_MONOTONIC);
    while (b - a < 100000000LL && ns_of(CLOCK_MONOTONIC) - w0 < 5000000000LL) {
        usleep(10000);
        b = ns_of(clk);
    }
    int monotonic = 1;
    long long prev = b;
    for (int k = 0; k < 200; k++) {
        long long v = ns_of(clk);
        if (v < prev)
            monotonic = 0;
        prev = v;
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    if (write(idle_pipe[1], "x", 1) != 1)
        return 1;
    pthread_join(idler, NULL);
    printf("hooked=%d\nadvanced_ms=%lld\nmonotonic=%d\nspinner_on_main_os_thread=%d\n",
           hooked(), (b - a) / 1000000, monotonic,
           atomic_load(&spinner_tid) == (long)syscall(SYS_gettid));
    return 0;
}

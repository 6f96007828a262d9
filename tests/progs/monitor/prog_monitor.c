/*
 * prog_monitor - child program of tests/test_monitor.c.
 *
 *   (Busy loops count CPU time, so that they are not too short for the
 *   monitor's thread to see them on a loaded machine.)
 *
 *   prog_monitor spin   a green thread "spinner" busy-loops 300 ms without
 *                       yielding (GREEN_MONITOR_MS should report it), then
 *                       main sleeps 200 ms (the end of the stall is noticed)
 *   prog_monitor yield  "yielder" loops 300 ms yielding all the time (must
 *                       not be reported), then "late-spinner" busy-loops
 *                       300 ms (must be: proves the monitor was on)
 *   prog_monitor replaced  installs its own SIGURG handler, then "spinner"
 *                       busy-loops 300 ms (the monitor cannot get a
 *                       backtrace, and must not send the program SIGURG)
 *   prog_monitor dump   parks "reader" on a pipe, "napper" in a sleep,
 *                       "joiner" in a join, and "far-napper" on a second OS
 *                       thread; prints "ready" and sleeps 20 s (the test
 *                       sends GREEN_DUMP_SIGNAL and kills it)
 *   prog_monitor rawcall runnable|event
 *                       "raw-poller" blocks its OS thread 600 ms in a ppoll
 *                       made without libc (raw_syscall.h), while "runner"
 *                       is runnable, or (event) while main's 20 ms sleep
 *                       ends; prints what ppoll returned (0: it timed out,
 *                       as natively; -4: EINTR) and whether runner ran
 *   prog_monitor idle   main sleeps 300 ms (the hub waits in epoll_wait),
 *                       then "raw-poller" blocks 300 ms in the raw ppoll
 *                       while main waits for it with nothing else to run
 *                       (neither may be reported), then "late-spinner"
 *                       busy-loops 300 ms (must be: the monitor was on)
 *   prog_monitor gdb    parks "sleeper" (id 3) in nap_in_sleeper() and
 *                       "reader" on a pipe, then raises SIGTRAP so that
 *                       gdb stops it
 *
 * Functions the tests look for in backtraces are global and noinline.
 */
#define _GNU_SOURCE
#include <green.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../raw_syscall.h"

static volatile uint64_t sink;

static int64_t cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spin for ns of this OS thread's CPU time (at most 10 s of wall time): on
 * a loaded machine the stall lasts longer rather than getting too short
 * for the monitor to see. */
__attribute__((noinline)) void spin_without_yielding(int64_t ns)
{
    int64_t end = cpu_now() + ns, wall_end = green_now() + GREEN_SEC(10);
    while (cpu_now() < end && green_now() < wall_end)
        sink++;
}

static void *spinner(void *arg)
{
    spin_without_yielding(*(int64_t *)arg);
    return NULL;
}

static void *yielder(void *arg)
{
    int64_t end = green_now() + *(int64_t *)arg;
    for (long i = 0; i < 100000000 && green_now() < end; i++)
        green_yield();
    return NULL;
}

static green_t spawn(void *(*fn)(void *), void *arg, const char *name)
{
    green_attr_t a = { .name = name };
    green_t t = green_spawn(fn, arg, &a);
    if (!t) {
        perror("green_spawn");
        _exit(2);
    }
    return t;
}

static int run_spin(void)
{
    int64_t ns = GREEN_MSEC(300);
    green_join(spawn(spinner, &ns, "spinner"), NULL);
    green_sleep(GREEN_MSEC(200));   /* the monitor notices the stall ended */
    puts("done");
    return 0;
}

static int run_yield(void)
{
    int64_t y = GREEN_MSEC(300), s = GREEN_MSEC(300);
    green_join(spawn(yielder, &y, "yielder"), NULL);
    green_join(spawn(spinner, &s, "late-spinner"), NULL);
    puts("done");
    return 0;
}

static volatile sig_atomic_t own_handler_runs;

static void program_own_handler(int sig)
{
    (void)sig;
    own_handler_runs++;
}

/* The program takes the monitor's signal (SIGURG) for itself. */
static int run_replaced(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = program_own_handler;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGURG, &sa, NULL) != 0)
        return 2;
    int64_t ns = GREEN_MSEC(300);
    green_join(spawn(spinner, &ns, "spinner"), NULL);
    printf("own handler ran %d times\ndone\n", (int)own_handler_runs);
    return 0;
}

/* -------------------------------------------------- raw system calls */

static int raw_pipe[2];
static long raw_result = 1;
static int runner_ran;

/* ppoll on an empty pipe for ms, without libc: natively it returns 0 when
 * the time is up; a signal handler would end it with -EINTR (ppoll is
 * never restarted, SA_RESTART or not). */
__attribute__((noinline)) long ppoll_without_libc(int ms)
{
    struct pollfd p = { .fd = raw_pipe[0], .events = POLLIN };
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    return raw_syscall4(SYS_ppoll, (long)&p, 1, (long)&ts, 0);
}

static void *raw_poller(void *arg)
{
    raw_result = ppoll_without_libc((int)(intptr_t)arg);
    return NULL;
}

static void *runner(void *arg)
{
    (void)arg;
    runner_ran = 1;
    return NULL;
}

static int run_rawcall(const char *how)
{
    if (pipe(raw_pipe) != 0)
        return 2;
    green_t p = spawn(raw_poller, (void *)(intptr_t)600, "raw-poller");
    if (!strcmp(how, "runnable")) {
        green_t r = spawn(runner, NULL, "runner");
        green_join(p, NULL);
        green_join(r, NULL);
    } else {
        green_sleep(GREEN_MSEC(20));   /* its deadline passes meanwhile */
        green_join(p, NULL);
    }
    green_sleep(GREEN_MSEC(200));   /* the monitor notices the stall ended */
    printf("ppoll %ld\nrunner ran %d\ndone\n", raw_result, runner_ran);
    return 0;
}

static int run_idle(void)
{
    if (pipe(raw_pipe) != 0)
        return 2;
    green_sleep(GREEN_MSEC(300));
    green_join(spawn(raw_poller, (void *)(intptr_t)300, "raw-poller"), NULL);
    int64_t ns = GREEN_MSEC(300);
    green_join(spawn(spinner, &ns, "late-spinner"), NULL);
    printf("ppoll %ld\ndone\n", raw_result);
    return 0;
}

/* ------------------------------------------------------------ parked */

static int pipefd[2];

__attribute__((noinline)) int wait_in_reader(void)
{
    return green_wait_readable(pipefd[0], GREEN_FOREVER);
}

static void *reader(void *arg)
{
    (void)arg;
    wait_in_reader();
    return NULL;
}

__attribute__((noinline)) int nap_in_sleeper(void)
{
    return green_sleep(GREEN_SEC(60));
}

static void *napper(void *arg)
{
    (void)arg;
    nap_in_sleeper();
    return NULL;
}

static void *joiner(void *arg)
{
    green_join((green_t)arg, NULL);
    return NULL;
}

static atomic_int far_ready;

static void *far_os_thread(void *arg)
{
    (void)arg;
    spawn(napper, NULL, "far-napper");
    green_yield();
    atomic_store(&far_ready, 1);
    green_sleep(GREEN_SEC(30));
    return NULL;
}

static int run_dump(void)
{
    if (pipe(pipefd) != 0)
        return 2;
    spawn(reader, NULL, "reader");
    green_t n = spawn(napper, NULL, "napper");
    spawn(joiner, n, "joiner");
    pthread_t th;
    if (pthread_create(&th, NULL, far_os_thread, NULL) != 0)
        return 2;
    /* Let reader, napper and joiner run and park (they never ran if the
     * other OS thread was ready at once). */
    green_sleep(GREEN_MSEC(10));
    for (int i = 0; i < 5000 && !atomic_load(&far_ready); i++)
        green_sleep(GREEN_MSEC(1));
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    green_sleep(GREEN_SEC(20));
    return 0;
}

static int run_gdb(void)
{
    if (pipe(pipefd) != 0)
        return 2;
    green_t s = spawn(napper, NULL, "sleeper");
    spawn(reader, NULL, "reader");
    green_yield();   /* both run and park */
    printf("sleeper id %llu\n", (unsigned long long)green_id(s));
    fflush(stdout);
    raise(SIGTRAP);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "spin"))
        return run_spin();
    if (!strcmp(mode, "yield"))
        return run_yield();
    if (!strcmp(mode, "dump"))
        return run_dump();
    if (!strcmp(mode, "replaced"))
        return run_replaced();
    if (!strcmp(mode, "gdb"))
        return run_gdb();
    if (!strcmp(mode, "rawcall") && argc > 2)
        return run_rawcall(argv[2]);
    if (!strcmp(mode, "idle"))
        return run_idle();
    fprintf(stderr, "usage: prog_monitor spin|yield|replaced|dump|gdb|"
                    "rawcall runnable|event|idle\n");
    return 2;
}

/*
 * prog_shim - plain C + pthreads child of tests/test_monitor.c, run under
 * LD_PRELOAD=libgreen.so (never linked to libgreen).
 *
 *   prog_shim spin   pthread "busy" loops 300 ms (CPU) in busy_loop_in_pthread()
 *                    without blocking while two others sleep in short
 *                    usleep()s; prints "os-threads N" (from
 *                    /proc/self/status, while they are alive) and "hooked 1"
 *                    if pthread_create resolves to libgreen (the shim)
 *   prog_shim rawcall  pthread "raw-poller" blocks 600 ms in a ppoll made
 *                    without libc (raw_syscall.h) while pthread "napper"
 *                    (usleep()s) is runnable; prints what ppoll returned
 *                    (0: timed out, as natively; -4: EINTR) and "hooked 1"
 *   prog_shim dump   pthreads park in a mutex ("locker"), a condition
 *                    variable ("waiter"), read() on a pipe ("reader"),
 *                    sleep() ("sleeper"), msgrcv on a System V queue
 *                    ("ipcwaiter") and flock of a file main holds through
 *                    another description ("flocker"); prints "ready PID
 *                    PIPEFD QUEUE LOCKFD" and sleeps 20 s (the caller
 *                    removes the queue)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/msg.h>
#include <time.h>
#include <unistd.h>
#include "../progutil.h"
#include "../raw_syscall.h"

static volatile unsigned long sink;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static int hooked(void)
{
    Dl_info di;
    void *sym = dlsym(RTLD_DEFAULT, "pthread_create");
    return sym && dladdr(sym, &di) && di.dli_fname && strstr(di.dli_fname, "libgreen");
}

static long cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* ms of CPU time (at most 10 s of wall time): a loaded machine makes the
 * stall longer, never too short for the monitor to see. */
__attribute__((noinline)) void busy_loop_in_pthread(long ms)
{
    long end = cpu_ms() + ms, wall_end = now_ms() + 10000;
    while (cpu_ms() < end && now_ms() < wall_end)
        sink++;
}

static void *busy(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "busy");
    usleep(20000);
    busy_loop_in_pthread(300);
    return NULL;
}

static void *napper(void *arg)
{
    (void)arg;
    for (int i = 0; i < 40; i++)
        usleep(10000);
    return NULL;
}

static int run_spin(void)
{
    pthread_t t[3];
    pthread_create(&t[0], NULL, busy, NULL);
    pthread_create(&t[1], NULL, napper, NULL);
    pthread_create(&t[2], NULL, napper, NULL);
    printf("os-threads %d\nhooked %d\n", os_threads(), hooked());
    fflush(stdout);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    puts("done");
    return 0;
}

static int raw_pipe[2];

/* See prog_monitor.c: natively 0 after ms, -EINTR if a handler ran. */
__attribute__((noinline)) long ppoll_in_pthread(int ms)
{
    struct pollfd p = { .fd = raw_pipe[0], .events = POLLIN };
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    return raw_syscall4(SYS_ppoll, (long)&p, 1, (long)&ts, 0);
}

static void *raw_poller(void *arg)
{
    pthread_setname_np(pthread_self(), "raw-poller");
    *(long *)arg = ppoll_in_pthread(600);
    return NULL;
}

static int run_rawcall(void)
{
    long r = 1;
    if (pipe(raw_pipe) != 0)
        return 2;
    pthread_t t[2];
    pthread_create(&t[0], NULL, raw_poller, &r);
    pthread_create(&t[1], NULL, napper, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    usleep(200000);   /* the monitor notices the stall ended */
    printf("ppoll %ld\nhooked %d\ndone\n", r, hooked());
    return 0;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int pipefd[2];

static void *locker(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "locker");
    pthread_mutex_lock(&mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *waiter(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "waiter");
    pthread_mutex_lock(&cmu);
    pthread_cond_wait(&cv, &cmu);
    pthread_mutex_unlock(&cmu);
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    char c;
    pthread_setname_np(pthread_self(), "reader");
    ssize_t r = read(pipefd[0], &c, 1);
    (void)r;
    return NULL;
}

static int queue, lockfd;

static void *ipcwaiter(void *arg)
{
    (void)arg;
    struct { long type; char text[8]; } m;
    pthread_setname_np(pthread_self(), "ipcwaiter");
    ssize_t r = msgrcv(queue, &m, sizeof m.text, 0, 0);
    (void)r;
    return NULL;
}

static void *flocker(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "flocker");
    int r = flock(lockfd, LOCK_EX);
    (void)r;
    return NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sleeper");
    sleep(30);
    return NULL;
}

static int run_dump(void)
{
    if (pipe(pipefd) != 0)
        return 2;
    queue = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    char path[64];
    snprintf(path, sizeof path, "/tmp/prog_shim-lock-%d", (int)getpid());
    int held = open(path, O_RDWR | O_CREAT, 0600);
    lockfd = open(path, O_RDWR);
    unlink(path);
    if (queue < 0 || held < 0 || lockfd < 0 || flock(held, LOCK_EX) != 0)
        return 2;
    pthread_mutex_lock(&mu);
    pthread_t t;
    void *(*fns[])(void *) = { locker, waiter, reader, sleeper, ipcwaiter, flocker };
    for (int i = 0; i < 6; i++)
        if (pthread_create(&t, NULL, fns[i], NULL) != 0)
            return 2;
    usleep(100000);   /* all six run and park */
    printf("ready %d %d %d %d\n", (int)getpid(), pipefd[0], queue, lockfd);
    fflush(stdout);
    sleep(20);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "spin"))
        return run_spin();
    if (!strcmp(mode, "dump"))
        return run_dump();
    if (!strcmp(mode, "rawcall"))
        return run_rawcall();
    fprintf(stderr, "usage: prog_shim spin|dump|rawcall\n");
    return 2;
}

/*
 * prog_sud_read.c - raw system calls that never go through libc, for
 * tests/test_sud.c, which runs it under the shim with and without
 * GREEN_SYSCALL_DISPATCH=1.
 *
 * `prog_sud_read [read [PAIRS]]`: PAIRS times (default 1), one pthread
 * reads an empty pipe with its own syscall instruction (inline assembly,
 * x86-64 and aarch64), as liburing issues io_uring_enter, while another
 * pthread keeps ticking (a 1 ms usleep per tick) and writes the bytes
 * after 20 ticks. With dispatch on, each read traps to libgreen's SIGSYS
 * handler and parks: the tickers keep running and the reads get their
 * bytes. Without it, a read blocks its hub's OS thread and the tickers
 * on it; a plain OS thread (started behind the shim's back, as jemalloc
 * does) sees a pair make no progress for 500 ms and writes the bytes
 * itself (rescued=1), so that the program ends either way.
 *
 * `prog_sud_read blockall [PAIRS]`: read, with every signal blocked in
 * every thread first (SIGSYS included), as daemons that sigwait do.
 *
 * `prog_sud_read eintr`: a pthread's raw read of an empty pipe is
 * interrupted by pthread_kill with a handler installed without
 * SA_RESTART: -EINTR, as natively.
 *
 * Prints: armed (SIGSYS is handled by libgreen.so: the precondition,
 * checked with dladdr), ppid_ok (a raw getppid, which never waits,
 * returns what libc's does), write_ok (a raw write); for read: ticks
 * (the fewest ticks a pair counted while its read waited), got (bytes
 * the raw reads returned, all pairs), rescued, reader_os_threads (OS
 * threads the readers ran on); for eintr: r (the read's result),
 * handled (handler runs).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "../progutil.h"
#include "../raw_syscall.h"

#define MAXPAIRS 16

struct pair {
    int p[2];
    atomic_int reading;        /* 1 while the raw read waits, 2 after */
    atomic_int ticks;
    long got;
    long tid;                  /* the OS thread the reader ran on */
};

static struct pair pairs[MAXPAIRS];
static int npairs = 1;
static atomic_int rescued, done;

static void *reader(void *arg)
{
    struct pair *q = arg;
    char b[16];
    q->tid = syscall(SYS_gettid);
    atomic_store(&q->reading, 1);
    q->got = raw_syscall4(SYS_read, q->p[0], (long)b, sizeof b, 0);
    atomic_store(&q->reading, 2);
    return NULL;
}

static void *ticker(void *arg)
{
    struct pair *q = arg;
    for (int i = 0; i < 5000 && atomic_load(&q->reading) != 2; i++) {
        if (atomic_load(&q->reading) == 1 && atomic_fetch_add(&q->ticks, 1) + 1 == 20)
            if (write(q->p[1], "hello", 5) != 5)
                exit(98);
        usleep(1000);
    }
    return NULL;
}

/* A plain OS thread: releases a reader whose ticker is stuck. */
static void *watchdog(void *arg)
{
    (void)arg;
    struct timespec ms = { 0, 1000000 };
    int quiet[MAXPAIRS] = { 0 }, last[MAXPAIRS];
    memset(last, -1, sizeof last);
    for (int i = 0; i < 5000 && !atomic_load(&done); i++) {
        syscall(SYS_nanosleep, &ms, NULL);
        for (int k = 0; k < npairs; k++) {
            struct pair *q = &pairs[k];
            int t = atomic_load(&q->ticks);
            quiet[k] = atomic_load(&q->reading) == 1 && t == last[k] ? quiet[k] + 1 : 0;
            last[k] = t;
            if (quiet[k] == 500) {
                atomic_store(&rescued, 1);
                if (write(q->p[1], "hello", 5) != 5)
                    exit(98);
            }
        }
    }
    return NULL;
}

static int run_read(void)
{
    /* libc's own pthread_create, which the shim does not turn green. */
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    int (*plain_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
        libc ? (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))
                   dlsym(libc, "pthread_create")
             : NULL;
    pthread_t r[MAXPAIRS], t[MAXPAIRS], w;
    for (int k = 0; k < npairs; k++)
        if (pipe(pairs[k].p) != 0)
            return 1;
    if (!plain_create || plain_create(&w, NULL, watchdog, NULL) != 0)
        return 1;
    /* Readers first: spread over the hubs (placement: the hub with the
     * fewest threads), so that without dispatch every hub has one. */
    for (int k = 0; k < npairs; k++)
        pthread_create(&r[k], NULL, reader, &pairs[k]);
    for (int k = 0; k < npairs; k++)
        pthread_create(&t[k], NULL, ticker, &pairs[k]);
    long got = 0, tids[MAXPAIRS];
    int least = 1 << 30, ntids = 0;
    for (int k = 0; k < npairs; k++) {
        pthread_join(r[k], NULL);
        pthread_join(t[k], NULL);
        got += pairs[k].got;
        if (atomic_load(&pairs[k].ticks) < least)
            least = atomic_load(&pairs[k].ticks);
        int seen = 0;
        for (int j = 0; j < ntids; j++)
            seen |= tids[j] == pairs[k].tid;
        if (!seen)
            tids[ntids++] = pairs[k].tid;
    }
    atomic_store(&done, 1);
    out("ticks=%d", least);
    out("got=%ld", got);
    out("rescued=%d", atomic_load(&rescued));
    out("reader_os_threads=%d", ntids);
    return 0;
}

static atomic_int handled;
static int ep[2];
static long eintr_r;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

static void *eintr_reader(void *arg)
{
    (void)arg;
    char b[4];
    atomic_store(&pairs[0].reading, 1);
    eintr_r = raw_syscall4(SYS_read, ep[0], (long)b, sizeof b, 0);
    return NULL;
}

static int run_eintr(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;           /* no SA_RESTART: the read fails */
    sigaction(SIGUSR1, &sa, NULL);
    if (pipe(ep) != 0)
        return 1;
    pthread_t r;
    pthread_create(&r, NULL, eintr_reader, NULL);
    while (!atomic_load(&pairs[0].reading))
        usleep(1000);
    usleep(50000);                     /* let it block (or park) in the read */
    pthread_kill(r, SIGUSR1);
    pthread_join(r, NULL);
    out("r=%ld", eintr_r);
    out("handled=%d", atomic_load(&handled));
    return 0;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    Dl_info di;
    sigaction(SIGSYS, NULL, &sa);
    void *h = (sa.sa_flags & SA_SIGINFO) ? (void *)sa.sa_sigaction : (void *)sa.sa_handler;
    out("armed=%d", h && dladdr(h, &di) && di.dli_fname && strstr(di.dli_fname, "libgreen"));

    out("ppid_ok=%d", raw_syscall4(SYS_getppid, 0, 0, 0, 0) == getppid());
    int p[2];
    char c = 0;
    if (pipe(p) != 0)
        return 1;
    out("write_ok=%d", raw_syscall4(SYS_write, p[1], (long)"w", 1, 0) == 1 &&
                           read(p[0], &c, 1) == 1 && c == 'w');

    if (argc > 1 && !strcmp(argv[1], "eintr"))
        return run_eintr();
    if (argc > 1 && !strcmp(argv[1], "blockall")) {
        /* The daemon pattern: every signal blocked in every thread (one
         * would sigwait). SIGSYS too, which a trap must still reach. */
        static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&m);        /* under the shim: main's hub exists */
        pthread_mutex_unlock(&m);
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
    }
    if (argc > 2)
        npairs = atoi(argv[2]);
    if (npairs < 1 || npairs > MAXPAIRS)
        return 2;
    return run_read();
}

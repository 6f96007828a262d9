/*
 * prog_sud_read.c - a raw system call that never goes through libc: one
 * pthread reads an empty pipe with its own syscall instruction (inline
 * assembly, x86-64 and aarch64), as liburing issues io_uring_enter,
 * while another pthread keeps ticking (a 1 ms usleep per tick) and
 * writes the bytes after 20 ticks. tests/test_sud.c runs it under the
 * shim with one hub (GREEN_HUBS=1), with and without
 * GREEN_SYSCALL_DISPATCH=1.
 *
 * With dispatch on, the read traps to libgreen's SIGSYS handler and
 * parks: the ticker keeps running on the same hub and the read gets the
 * bytes. Without it, the read blocks the hub's OS thread and the ticker
 * with it; a plain OS thread (started behind the shim's back, as
 * jemalloc does) sees no tick for 500 ms and writes the bytes itself
 * (rescued=1), so that the program ends either way.
 *
 * Prints: armed (SIGSYS is handled by libgreen.so: the precondition,
 * checked with dladdr), ticks (ticks counted while the read waited), got
 * (bytes the raw read returned), rescued, ppid_ok (a raw getppid, which
 * never waits, returns what libc's does), write_ok (a raw write).
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

static int p[2];
static atomic_int reading;     /* 1 while the raw read waits, 2 after */
static atomic_int ticks, rescued;
static long got;

static long raw3(long nr, long a, long b, long c)
{
#if defined(__x86_64__)
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return r;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
#else
    return syscall(nr, a, b, c);
#endif
}

static void *reader(void *arg)
{
    (void)arg;
    char b[16];
    atomic_store(&reading, 1);
    got = raw3(SYS_read, p[0], (long)b, sizeof b);
    atomic_store(&reading, 2);
    return NULL;
}

static void *ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5000 && atomic_load(&reading) != 2; i++) {
        if (atomic_load(&reading) == 1 && atomic_fetch_add(&ticks, 1) + 1 == 20)
            if (write(p[1], "hello", 5) != 5)
                exit(98);
        usleep(1000);
    }
    return NULL;
}

/* A plain OS thread: releases the reader if the ticker is stuck. */
static void *watchdog(void *arg)
{
    (void)arg;
    struct timespec ms = { 0, 1000000 };
    int quiet = 0, last = -1;
    for (int i = 0; i < 5000 && atomic_load(&reading) != 2; i++) {
        syscall(SYS_nanosleep, &ms, NULL);
        int t = atomic_load(&ticks);
        quiet = atomic_load(&reading) == 1 && t == last ? quiet + 1 : 0;
        last = t;
        if (quiet == 500) {
            atomic_store(&rescued, 1);
            if (write(p[1], "hello", 5) != 5)
                exit(98);
        }
    }
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    Dl_info di;
    sigaction(SIGSYS, NULL, &sa);
    void *h = (sa.sa_flags & SA_SIGINFO) ? (void *)sa.sa_sigaction : (void *)sa.sa_handler;
    out("armed=%d", h && dladdr(h, &di) && di.dli_fname && strstr(di.dli_fname, "libgreen"));

    out("ppid_ok=%d", raw3(SYS_getppid, 0, 0, 0) == getppid());
    if (pipe(p) != 0)
        return 1;
    char c = 0;
    out("write_ok=%d", raw3(SYS_write, p[1], (long)"w", 1) == 1 && read(p[0], &c, 1) == 1 &&
                           c == 'w');

    /* libc's own pthread_create, which the shim does not turn green. */
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    int (*plain_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
        libc ? (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))
                   dlsym(libc, "pthread_create")
             : NULL;
    pthread_t r, t, w;
    if (!plain_create || plain_create(&w, NULL, watchdog, NULL) != 0)
        return 1;
    pthread_create(&r, NULL, reader, NULL);
    pthread_create(&t, NULL, ticker, NULL);
    pthread_join(r, NULL);
    pthread_join(t, NULL);
    out("ticks=%d", atomic_load(&ticks));
    out("got=%ld", got);
    out("rescued=%d", atomic_load(&rescued));
    return 0;
}

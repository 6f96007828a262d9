/*
 * prog_handlerexit.c - a signal handler ends its thread with pthread_exit
 * (it never returns), then two threads meet through a busy-wait: one loops
 * on pthread_sigmask until the other sets a flag. Natively the kernel
 * preempts the looper; under the shim the looper must still take its fair
 * turns (sigprocmask and pthread_sigmask give them, except inside a
 * handler), so the count of handlers running that the exited handler left
 * behind must not stay with its hub.
 *
 * Prints "victim=7" (the handler's exit value reached the joiner),
 * "met=1" (the looper saw the setter's flag before its 20 s bound) and
 * "done=1". A plain pthread program; exit 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../progutil.h"

static void on_usr1(int s)
{
    (void)s;
    pthread_exit((void *)7);
}

static void *victim(void *a)
{
    (void)a;
    for (;;)
        pause();
    return NULL;
}

static atomic_int flag;

static void *looper(void *a)
{
    (void)a;
    sigset_t old;
    time_t end = time(NULL) + 20;   /* a bound, so a failure is a result */
    while (!atomic_load(&flag) && time(NULL) < end)
        pthread_sigmask(SIG_BLOCK, NULL, &old);
    return (void *)(long)atomic_load(&flag);   /* 1: it saw the setter */
}

static void *setter(void *a)
{
    (void)a;
    atomic_store(&flag, 1);
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t v, l, s;
    void *r = NULL;
    pthread_create(&v, NULL, victim, NULL);
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    pthread_kill(v, SIGUSR1);
    pthread_join(v, &r);
    out("victim=%ld", (long)r);
    pthread_create(&l, NULL, looper, NULL);
    pthread_create(&s, NULL, setter, NULL);
    void *met = NULL;
    pthread_join(l, &met);
    pthread_join(s, NULL);
    out("met=%ld", (long)met);
    out("done=1");
    return 0;
}

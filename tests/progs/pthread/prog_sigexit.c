/*
 * prog_sigexit.c - a signal handler that ends its thread with pthread_exit
 * while the thread spins in pthread_spin_lock (as Open POSIX
 * pthread_spin_lock/1-1 does), many times over: under the shim the spinner
 * yields in a loop, so the signal often lands while the thread is inside
 * libgreen's scheduler, where the handler must not run.
 *
 * Prints "key=value" lines: hooked (pthread_spin_lock resolves into the
 * shim), rounds, by_handler (rounds the handler ended), by_lock (rounds
 * the spinner got the lock first), done. A plain pthread program; exit 0.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include "../progutil.h"

#define ROUNDS 200

static pthread_spinlock_t sl;

static void on_alarm(int sig)
{
    (void)sig;
    pthread_exit((void *)(intptr_t)7);
}

static void *spinner(void *arg)
{
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    pthread_spin_lock(&sl);
    pthread_spin_unlock(&sl);
    return (void *)(intptr_t)1;
}

int main(void)
{
    Dl_info di;
    out("hooked=%d", dladdr((void *)pthread_spin_lock, &di) && di.dli_fname &&
                         strstr(di.dli_fname, "libgreen") != NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &s, NULL);   /* the alarm is the spinner's */
    pthread_spin_init(&sl, PTHREAD_PROCESS_PRIVATE);
    int by_handler = 0, by_lock = 0, bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_spin_lock(&sl);
        pthread_t t;
        if (pthread_create(&t, NULL, spinner, NULL) != 0)
            return 2;
        struct itimerval it = { { 0, 0 }, { 0, 1000 + (i % 7) * 300 } };
        setitimer(ITIMER_REAL, &it, NULL);
        struct timespec ts = { 0, 4 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        pthread_spin_unlock(&sl);
        void *r = NULL;
        if (pthread_join(t, &r) != 0)
            return 3;
        if ((intptr_t)r == 7)
            by_handler++;
        else if ((intptr_t)r == 1)
            by_lock++;
        else
            bad++;
        struct itimerval off = { { 0, 0 }, { 0, 0 } };
        setitimer(ITIMER_REAL, &off, NULL);
    }
    out("rounds=%d", ROUNDS);
    out("by_handler=%d", by_handler);
    out("by_lock=%d", by_lock);
    out("done=%d", bad == 0);
    return 0;
}

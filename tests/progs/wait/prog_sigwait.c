/*
 * prog_sigwait.c - the daemon pattern: main blocks SIGUSR1 and SIGTERM,
 * a dedicated thread sigwait()s for them while a worker keeps ticking;
 * main then signals the process and joins the waiter. Prints, as
 * key=value lines, which signal sigwait returned and how many ticks the
 * worker made meanwhile (natively a blocked OS thread; under the shim a
 * parked green thread: either way the others run).
 */
#include "progs_common.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

static sigset_t set;
static atomic_int ticks;
static atomic_bool stop;

static void *waiter(void *arg)
{
    int sig = 0;
    int r = sigwait(&set, &sig);
    *(int *)arg = r == 0 ? sig : -r;
    return NULL;
}

static void *worker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop) && atomic_load(&ticks) < 100000) {
        atomic_fetch_add(&ticks, 1);
        usleep(1000);
    }
    return NULL;
}

int main(void)
{
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int got = 0;
    pthread_t w, k;
    pthread_create(&w, NULL, waiter, &got);
    pthread_create(&k, NULL, worker, NULL);
    usleep(50000);
    int before = atomic_load(&ticks);
    kill(getpid(), SIGUSR1);
    pthread_join(w, NULL);
    usleep(20000);
    atomic_store(&stop, true);
    pthread_join(k, NULL);
    printf("hooked_sigwait=%d\nthreads=%d\n", hooked((void *)sigwait), os_threads());
    printf("sigwait_sig=%d\nticks_before_signal=%d\nticks_after=%d\n", got, before,
           atomic_load(&ticks) - before);
    return 0;
}

/*
 * prog_pthread_kill.c - the shutdown pattern: pthread_kill(worker,
 * SIGUSR1) with a handler installed without SA_RESTART interrupts the
 * worker's blocking read (and another's 10 s nanosleep) with EINTR; the
 * main thread is not interrupted. Prints key=value lines.
 */
#include "progs_common.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static void on_usr1(int sig) { (void)sig; handled++; }
static int p[2];

static void *reader(void *arg)
{
    (void)arg;
    char c;
    ssize_t r = read(p[0], &c, 1);
    return (void *)(long)(r < 0 && errno == EINTR);
}

static void *sleeper(void *arg)
{
    (void)arg;
    struct timespec ts = { 10, 0 };
    return (void *)(long)(nanosleep(&ts, NULL) < 0 && errno == EINTR);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    if (pipe(p) < 0)
        return 1;
    pthread_t r, s;
    pthread_create(&r, NULL, reader, NULL);
    pthread_create(&s, NULL, sleeper, NULL);
    struct timespec ts = { 0, 50000000 };
    nanosleep(&ts, NULL);
    long long t0 = mono_ms();
    pthread_kill(r, SIGUSR1);
    pthread_kill(s, SIGUSR1);
    void *rr, *sr;
    pthread_join(r, &rr);
    pthread_join(s, &sr);
    printf("hooked_pthread_kill=%d\nread_eintr=%ld\nsleep_eintr=%ld\nhandled=%d\n"
           "kill_ms=%lld\n", hooked((void *)pthread_kill), (long)rr, (long)sr,
           (int)handled, mono_ms() - t0);
    return 0;
}

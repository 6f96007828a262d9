/*
 * prog_signal_storm.c - 300 threads each make 200 short waits (nanosleep,
 * poll, select, usleep) while a 0.5 ms ITIMER_REAL fires (SA_RESTART) and
 * the main thread sleeps then joins. Prints, as key=value lines, the
 * signals handled and the EINTRs the non-main threads saw. Under the shim
 * with one hub every signal lands on its OS thread and interrupts only the
 * main thread's wait, so the others see none; with several hubs a few
 * land on another hub's OS thread, as natively on another thread.
 */
#include "progs_common.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static void on_alarm(int sig) { (void)sig; handled++; }
static int p[2];

static void *waiter(void *arg)
{
    long i = (long)arg;
    long eintr = 0;
    for (int k = 0; k < 200; k++) {
        struct timespec ts = { 0, 1000000 + (i % 7) * 100000 };
        struct pollfd pf = { .fd = p[0], .events = POLLIN };
        fd_set rd;
        struct timeval tv = { 0, 1000 };
        switch ((i + k) % 4) {
        case 0: eintr += nanosleep(&ts, NULL) < 0 && errno == EINTR; break;
        case 1: eintr += poll(&pf, 1, 1) < 0; break;
        case 2:
            FD_ZERO(&rd);
            FD_SET(p[0], &rd);
            eintr += select(p[0] + 1, &rd, NULL, NULL, &tv) < 0;
            break;
        default: sched_yield(); eintr += usleep(500) < 0; break;
        }
    }
    return (void *)eintr;
}

int main(void)
{
    if (pipe(p) < 0)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { { 0, 500 }, { 0, 500 } };
    setitimer(ITIMER_REAL, &it, NULL);
    enum { N = 300 };
    static pthread_t t[N];
    int created = 0;
    for (long i = 0; i < N; i++)
        created += pthread_create(&t[i], NULL, waiter, (void *)i) == 0;
    struct timespec ts = { 0, 200000000 };
    int main_eintr = 0;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        main_eintr++;
    long others = 0;
    for (int i = 0; i < created; i++) {
        void *r;
        pthread_join(t[i], &r);
        others += (long)r;
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    printf("hooked_nanosleep=%d\ncreated=%d\nsignals=%d\nmain_eintr=%d\nothers_eintr=%ld\n",
           hooked((void *)nanosleep), created, (int)handled, main_eintr, others);
    return 0;
}

/*
 * prog_itimer.c restart|norestart - a 1 ms ITIMER_REAL firing SIGALRM
 * through blocking calls, with the handler installed with or without
 * SA_RESTART. Prints, as key=value lines: how many EINTRs a 100 ms
 * nanosleep loop, a poll and a pipe read saw, whether each finished with
 * the right result, and how many signals the handler counted.
 * signal(7): nanosleep and poll fail with EINTR whatever the flags; a read
 * on a pipe and sem_wait restart under SA_RESTART and fail with EINTR
 * without it.
 */
#include "progs_common.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

static int p[2];
static sem_t sem;

static void *late_poster(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 100000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    sem_post(&sem);
    return NULL;
}
static void *late_writer(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 100000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    if (write(p[1], "z", 1) != 1)
        abort();
    return NULL;
}

int main(int argc, char **argv)
{
    int restart = argc > 1 && !strcmp(argv[1], "restart");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    printf("hooked_sigaction=%d\n", hooked((void *)sigaction));
    struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);

    /* nanosleep: EINTR with the time left, resumed until done. */
    int sleep_eintr = 0;
    long long t0 = mono_ms();
    struct timespec req = { 0, 100000000 };
    while (nanosleep(&req, &req) < 0 && errno == EINTR && sleep_eintr < 100000)
        sleep_eintr++;
    printf("sleep_eintr=%d\nsleep_ms=%lld\n", sleep_eintr, mono_ms() - t0);

    /* poll on an empty pipe: EINTR whatever the flags. */
    if (pipe(p) < 0)
        return 1;
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    int pr = poll(&pf, 1, 5000);
    printf("poll_result=%d\npoll_errno_eintr=%d\n", pr, pr < 0 && errno == EINTR);

    /* read on a pipe written after 100 ms by another thread. */
    pthread_t w;
    pthread_create(&w, NULL, late_writer, NULL);
    int read_eintr = 0;
    char c = 0;
    ssize_t r;
    while ((r = read(p[0], &c, 1)) < 0 && errno == EINTR && read_eintr < 100000)
        read_eintr++;
    pthread_join(w, NULL);
    printf("read_eintr=%d\nread_ok=%d\n", read_eintr, r == 1 && c == 'z');

    /* sem_wait on a semaphore posted after 100 ms by another thread. */
    sem_init(&sem, 0, 0);
    pthread_create(&w, NULL, late_poster, NULL);
    int sem_eintr = 0, sr;
    while ((sr = sem_wait(&sem)) < 0 && errno == EINTR && sem_eintr < 100000)
        sem_eintr++;
    pthread_join(w, NULL);
    printf("sem_eintr=%d\nsem_ok=%d\n", sem_eintr, sr == 0);
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    printf("alarms=%d\n", (int)alarms);
    return 0;
}

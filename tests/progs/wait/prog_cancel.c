/*
 * prog_cancel.c - pthread_cancel reaches threads blocked in the waiting
 * calls, which are all cancellation points: threads loop forever in
 * sleep, nanosleep, poll, select, pause, sigwait, waitpid, and in read,
 * recv and accept (the I/O hooks park through the same code); main
 * cancels and joins each. Prints, as key=value lines, how many joins
 * returned PTHREAD_CANCELED and how long it took.
 */
#include "progs_common.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int p[2], sp[2], lfd;
static pid_t child;

static void *in_read(void *a)
{
    (void)a;
    char c;
    for (;;)
        read(p[0], &c, 1);
    return NULL;
}
static void *in_recv(void *a)
{
    (void)a;
    char c;
    for (;;)
        recv(sp[0], &c, 1, 0);
    return NULL;
}
static void *in_accept(void *a)
{
    (void)a;
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c >= 0)
            close(c);
    }
    return NULL;
}

static void *in_sleep(void *a) { (void)a; for (;;) sleep(1); return NULL; }
static void *in_nanosleep(void *a)
{
    (void)a;
    struct timespec ts = { 1, 0 };
    for (;;)
        nanosleep(&ts, NULL);
    return NULL;
}
static void *in_poll(void *a)
{
    (void)a;
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    for (;;)
        poll(&pf, 1, -1);
    return NULL;
}
static void *in_select(void *a)
{
    (void)a;
    for (;;) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(p[0], &rd);
        select(p[0] + 1, &rd, NULL, NULL, NULL);
    }
    return NULL;
}
static void *in_pause(void *a) { (void)a; for (;;) pause(); return NULL; }
static void *in_sigwait(void *a)
{
    (void)a;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    int sig;
    for (;;)
        sigwait(&s, &sig);
    return NULL;
}
static void *in_waitpid(void *a)
{
    (void)a;
    for (;;)
        waitpid(child, NULL, 0);
    return NULL;
}

int main(void)
{
    void *(*fns[])(void *) = { in_sleep, in_nanosleep, in_poll, in_select, in_pause,
                               in_sigwait, in_waitpid, in_read, in_recv, in_accept };
    enum { N = sizeof fns / sizeof *fns };
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0 || lfd < 0 ||
        bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 8) < 0)
        return 1;
    child = fork();
    if (child == 0) {
        pause();                   /* until killed below */
        _exit(0);
    }
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, fns[i], NULL);
    usleep(50000);
    long long t0 = mono_ms();
    int canceled = 0;
    for (int i = 0; i < N; i++) {
        pthread_cancel(t[i]);
        void *r = NULL;
        pthread_join(t[i], &r);
        canceled += r == PTHREAD_CANCELED;
    }
    printf("hooked_pthread_cancel=%d\nthreads=%d\ncanceled=%d\nof=%d\ncancel_ms=%lld\n",
           hooked((void *)pthread_cancel), N, canceled, N, mono_ms() - t0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}

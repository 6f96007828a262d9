/*
 * prog_probe_storm.c [rounds] - two threads play ping-pong over two pipes
 * and a socket pair's listener while a 50 us ITIMER_REAL fires SIGALRM
 * (SA_RESTART). Every blocking read and accept here starts on an empty
 * pipe or queue, the case where the shim first asks the kernel, without
 * waiting, whether the call could block. A signal that lands during that
 * question must not turn into a blocking system call that stops the
 * thread's peer: with one hub that hangs the process. Prints, as
 * key=value lines, the rounds played and the signals handled.
 */
#include "progs_common.h"
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static void on_alarm(int sig) { (void)sig; handled++; }

static int ping[2], pong[2], lfd;
static struct sockaddr_in addr;
static int rounds = 3000;

static void *player(void *arg)
{
    (void)arg;
    char c;
    for (int i = 0; i < rounds; i++) {
        if (read(ping[0], &c, 1) != 1 || write(pong[1], &c, 1) != 1)
            abort();
    }
    for (int i = 0; i < rounds / 10; i++) {
        if (read(ping[0], &c, 1) != 1)
            abort();
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0)
            abort();
        close(s);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        rounds = atoi(argv[1]);
    printf("hooked_read=%d\nhooked_accept=%d\n", hooked((void *)read), hooked((void *)accept));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    if (pipe(ping) < 0 || pipe(pong) < 0)
        return 1;
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof addr;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(lfd, 16) != 0 || getsockname(lfd, (struct sockaddr *)&addr, &al) != 0)
        return 1;
    struct itimerval it = { { 0, 50 }, { 0, 50 } };
    setitimer(ITIMER_REAL, &it, NULL);

    pthread_t t;
    pthread_create(&t, NULL, player, NULL);
    int played = 0, accepted = 0;
    char c = 'x';
    for (int i = 0; i < rounds; i++) {
        if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1)
            break;
        played++;
    }
    for (int i = 0; i < rounds / 10; i++) {
        if (write(ping[1], &c, 1) != 1)
            break;
        int s = accept(lfd, NULL, NULL);
        if (s < 0)
            break;
        close(s);
        accepted++;
    }
    pthread_join(t, NULL);
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    printf("rounds=%d\nplayed=%d\naccepted=%d\nsignals=%d\n", rounds, played, accepted,
           (int)handled);
    return 0;
}

/*
 * prog_close_wakes - one pthread blocked in read on a socket, another in
 * accept on a listener; the main thread closes both descriptors. Under the
 * shim both calls return -1 with EBADF (DESIGN.md: close wakes every
 * waiter). Natively Linux leaves them blocked, so an alarm turns a hang
 * into the line "HANG" and exit status 3.
 * Prints "READ <r> <errno name>" and "ACCEPT <r> <errno name>".
 */
#include "progs_io.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <sys/socket.h>

static int sv[2], notify[2], l;
static int read_r, read_e, acc_r, acc_e;

static const char *ename(int e)
{
    return e == EBADF ? "EBADF" : e == 0 ? "0" : strerror(e);
}

static void *reader(void *arg)
{
    (void)arg;
    char b[8];
    prog_write_all(notify[1], "r", 1);
    errno = 0;
    read_r = (int)read(sv[0], b, sizeof b);
    read_e = errno;
    return NULL;
}

static void *acceptor(void *arg)
{
    (void)arg;
    prog_write_all(notify[1], "a", 1);
    errno = 0;
    acc_r = accept(l, NULL, NULL);
    acc_e = errno;
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "HANG\n";
    ssize_t w = write(1, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

int main(void)
{
    prog_report_hooks();
    signal(SIGALRM, on_alarm);
    alarm(10);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(notify);
    l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(l, (struct sockaddr *)&sa, sizeof sa);
    listen(l, 8);
    pthread_t a, b;
    pthread_create(&a, NULL, reader, NULL);
    pthread_create(&b, NULL, acceptor, NULL);
    char buf[2];
    prog_read_all(notify[0], buf, 2);      /* both are about to block */
    struct timespec ts = { 0, 100 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    close(sv[0]);
    close(l);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("READ %d %s\n", read_r, ename(read_e));
    printf("ACCEPT %d %s\n", acc_r, ename(acc_e));
    return 0;
}

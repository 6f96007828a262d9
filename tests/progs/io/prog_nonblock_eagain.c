/*
 * prog_nonblock_eagain - a program that makes its descriptors non-blocking
 * itself gets EAGAIN and sees O_NONBLOCK in F_GETFL, exactly as without
 * the shim. Runs its checks in a pthread (a green thread under the shim).
 * Prints "OK <check>" or "FAIL <check> ..." per check, then "ALL OK" when
 * every check passed.
 */
#include "progs_io.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static int failures;

static void expect_eagain(const char *name, ssize_t r, int fd)
{
    int e = errno;
    int fl = fcntl(fd, F_GETFL);
    if (r == -1 && (e == EAGAIN || e == EWOULDBLOCK) && fl >= 0 && (fl & O_NONBLOCK)) {
        printf("OK %s\n", name);
    } else {
        printf("FAIL %s: r=%zd errno=%s F_GETFL nonblock=%d\n", name, r, strerror(e),
               fl >= 0 && (fl & O_NONBLOCK));
        failures++;
    }
}

static void *checks(void *arg)
{
    (void)arg;
    char b[16];
    int sv[2], p[2];

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    expect_eagain("read_socket_f_setfl", read(sv[0], b, sizeof b), sv[0]);
    expect_eagain("recv_socket_f_setfl", recv(sv[0], b, sizeof b, 0), sv[0]);
    int on = 1;
    ioctl(sv[1], FIONBIO, &on);
    expect_eagain("read_socket_fionbio", read(sv[1], b, sizeof b), sv[1]);
    close(sv[0]);
    close(sv[1]);

    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    expect_eagain("read_socket_sock_nonblock", read(sv[0], b, sizeof b), sv[0]);
    close(sv[0]);
    close(sv[1]);

    pipe2(p, O_NONBLOCK);
    expect_eagain("read_pipe2_o_nonblock", read(p[0], b, sizeof b), p[0]);
    close(p[0]);
    close(p[1]);
    pipe(p);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    expect_eagain("read_pipe_f_setfl", read(p[0], b, sizeof b), p[0]);
    close(p[0]);
    close(p[1]);

    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    bind(l, (struct sockaddr *)&sa, sizeof sa);
    listen(l, 8);
    getsockname(l, (struct sockaddr *)&sa, &len);
    fcntl(l, F_SETFL, O_NONBLOCK);
    expect_eagain("accept_listener_f_setfl", accept(l, NULL, NULL), l);

    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r = connect(c, (struct sockaddr *)&sa, sizeof sa);
    if (r == 0 || errno == EINPROGRESS) {
        printf("OK connect_sock_nonblock\n");
    } else {
        printf("FAIL connect_sock_nonblock: %s\n", strerror(errno));
        failures++;
    }
    close(c);
    close(l);
    return NULL;
}

int main(void)
{
    prog_report_hooks();
    pthread_t t;
    pthread_create(&t, NULL, checks, NULL);
    pthread_join(t, NULL);
    if (!failures)
        printf("ALL OK\n");
    return failures != 0;
}

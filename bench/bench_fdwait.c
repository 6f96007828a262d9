/*
 * bench_fdwait - two green threads ping-pong one byte over a socketpair,
 * each parking in green_wait_readable when its recv would block: the
 * steady state of a keep-alive connection. Prints ns per round trip;
 * run_benchmarks.sh runs it under strace -c to count epoll_ctl calls per
 * round trip, which must stay near zero (watchers stay armed).
 */
#include "bench.h"
#include "green.h"
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static long rounds;

/* Receive one byte, parking while none is there. */
static int recv_one(int fd)
{
    char c;
    for (;;) {
        ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
        if (r == 1)
            return 0;
        if (r < 0 && errno != EAGAIN)
            return -1;
        if (green_wait_readable(fd, GREEN_FOREVER) < 0)
            return -1;
    }
}

static void *pong(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (long i = 0; i < rounds; i++)
        if (recv_one(fd) != 0 || send(fd, "o", 1, 0) != 1)
            return (void *)1;
    return NULL;
}

static double run(long n)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    rounds = n;
    green_t t = green_spawn(pong, (void *)(intptr_t)sv[1], NULL);
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++)
        if (send(sv[0], "i", 1, 0) != 1 || recv_one(sv[0]) != 0)
            abort();
    int64_t el = bench_now() - t0;
    green_join(t, NULL);
    green_fd_closing(sv[0]);
    green_fd_closing(sv[1]);
    close(sv[0]);
    close(sv[1]);
    return (double)el / (double)n;
}

int main(int argc, char **argv)
{
    long on;
    if (bench_only(argc, argv, &on)) {
        run(on);
        return 0;
    }
    long n = bench_iters(argc, argv, 20000);
    bench_report("fd_pingpong_round_trip_ns", BENCH_BEST(argc > 1 ? 1 : 5, run(n)));
    return 0;
}

/*
 * test_hooks_io.c - the socket and descriptor hooks, called directly
 * (green_hook_*) from green threads: parking while other threads run,
 * close waking waiters, the program's own O_NONBLOCK and its F_GETFL
 * view, SO_RCVTIMEO, complete big writes, connect errors, and inherited
 * descriptors never left non-blocking.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "hooks.h"
#include "fdstate.h"
#include "io.h"
#include "hooks_signal.h"
#include <signal.h>

static void setup(void)
{
    green__real_init();
    cr_assert(green_self());
}

TestSuite(hooks_io, .init = setup);

static bool real_nonblock(int fd)
{
    int fl = green__real.fcntl(fd, F_GETFL);
    cr_assert_geq(fl, 0);
    return fl & O_NONBLOCK;
}

/* A green thread that counts while others are parked. */
static volatile int ticks;
static volatile bool stop_ticking;
static void *ticker(void *arg)
{
    (void)arg;
    while (!stop_ticking && ticks < 100000) {
        ticks++;
        green_sleep(GREEN_MSEC(1));
    }
    return NULL;
}

static void *yield_ticker(void *arg)
{
    (void)arg;
    while (!stop_ticking && ticks < 100000) {
        ticks++;
        green_yield();
    }
    return NULL;
}

struct rd {
    int fd;
    char buf[64];
    ssize_t r;
    int err;
    int ticks_at_wake;   /* ticker count when the read returned */
};

static void *reader(void *arg)
{
    struct rd *a = arg;
    errno = 0;
    a->r = green_hook_read(a->fd, a->buf, sizeof a->buf);
    a->err = errno;
    a->ticks_at_wake = ticks;
    return NULL;
}

/* Until the ticker has run more than min_ticks times (or 10 s passed):
 * the waiting thread's wake-up then follows other threads' progress, not
 * a fixed time a loaded machine may not give the hub. */
static void sleep_past_ticks(int min_ticks)
{
    int64_t end = green_now() + GREEN_SEC(10);
    while (ticks <= min_ticks && green_now() < end)
        green_sleep(GREEN_MSEC(1));
}

static void *late_writer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    green_sleep(GREEN_MSEC(50));
    sleep_past_ticks(5);
    green_hook_write(fd, "hello", 5);
    return NULL;
}

static void read_parks_while_others_run(int fds[2])
{
    ticks = 0;
    stop_ticking = false;
    struct rd a = { .fd = fds[0] };
    green_t tk = green_spawn(ticker, NULL, NULL);
    green_t r = green_spawn(reader, &a, NULL);
    green_t w = green_spawn(late_writer, (void *)(intptr_t)fds[1], NULL);
    cr_assert(tk && r && w);
    cr_assert_eq(green_join(r, NULL), 0);
    stop_ticking = true;
    green_join(w, NULL);
    green_join(tk, NULL);
    cr_expect_eq(a.r, 5);
    cr_expect_eq(memcmp(a.buf, "hello", 5), 0);
    cr_expect_gt(a.ticks_at_wake, 5, "the ticker ran only %d times while the "
                 "reader waited", a.ticks_at_wake);
    cr_expect_not(real_nonblock(fds[0]), "the pipe/socket was left O_NONBLOCK");
}

Test(hooks_io, read_on_an_empty_pipe_parks_while_other_green_threads_run)
{
    int p[2];
    cr_assert_eq(green_hook_pipe(p), 0);
    read_parks_while_others_run(p);
    green_hook_close(p[0]);
    green_hook_close(p[1]);
}

Test(hooks_io, read_on_an_empty_socket_parks_while_other_green_threads_run)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    read_parks_while_others_run(sv);
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

Test(hooks_io, a_pipe_created_without_the_hooks_is_never_left_nonblocking)
{
    int p[2];
    cr_assert_eq(green__real.pipe(p), 0);
    read_parks_while_others_run(p);
    cr_expect_not(real_nonblock(p[1]));
    int sv[2];
    cr_assert_eq(green__real.socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    read_parks_while_others_run(sv);
    cr_expect_not(real_nonblock(sv[1]));
}

static void *close_later(void *arg)
{
    green_sleep(GREEN_MSEC(30));
    green_hook_close((int)(intptr_t)arg);
    return NULL;
}

Test(hooks_io, close_wakes_a_green_thread_blocked_in_read_with_ebadf)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct rd a = { .fd = sv[0] };
    green_t r = green_spawn(reader, &a, NULL);
    green_t c = green_spawn(close_later, (void *)(intptr_t)sv[0], NULL);
    cr_assert_eq(green_join(r, NULL), 0);
    green_join(c, NULL);
    cr_expect_eq(a.r, -1);
    cr_expect_eq(a.err, EBADF);
    green_hook_close(sv[1]);
}

Test(hooks_io, close_wakes_a_green_thread_blocked_in_a_pipe_read_with_ebadf)
{
    int p[2];
    cr_assert_eq(green_hook_pipe(p), 0);
    struct rd a = { .fd = p[0] };
    green_t r = green_spawn(reader, &a, NULL);
    green_t c = green_spawn(close_later, (void *)(intptr_t)p[0], NULL);
    cr_assert_eq(green_join(r, NULL), 0);
    green_join(c, NULL);
    cr_expect_eq(a.r, -1);
    cr_expect_eq(a.err, EBADF);
    green_hook_close(p[1]);
}

Test(hooks_io, a_socket_the_program_made_nonblocking_gives_eagain)
{
    char b[8];
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    errno = 0;
    cr_expect_eq(green_hook_read(sv[0], b, sizeof b), -1);
    cr_expect_eq(errno, EAGAIN);
    errno = 0;
    cr_expect_eq(green_hook_recv(sv[0], b, sizeof b, 0), -1);
    cr_expect_eq(errno, EAGAIN);

    int tv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, tv), 0);
    int fl = green_hook_fcntl(tv[0], F_GETFL, NULL);
    cr_assert_eq(green_hook_fcntl(tv[0], F_SETFL, (void *)(intptr_t)(fl | O_NONBLOCK)), 0);
    errno = 0;
    cr_expect_eq(green_hook_read(tv[0], b, sizeof b), -1);
    cr_expect_eq(errno, EAGAIN);
    int on = 1;
    cr_assert_eq(green_hook_ioctl(tv[1], FIONBIO, &on), 0);
    errno = 0;
    cr_expect_eq(green_hook_recv(tv[1], b, sizeof b, 0), -1);
    cr_expect_eq(errno, EWOULDBLOCK);
    for (int k = 0; k < 2; k++) {
        green_hook_close(sv[k]);
        green_hook_close(tv[k]);
    }
}

Test(hooks_io, a_pipe_the_program_made_nonblocking_gives_eagain)
{
    char b[8];
    int p[2];
    cr_assert_eq(green_hook_pipe2(p, O_NONBLOCK), 0);
    errno = 0;
    cr_expect_eq(green_hook_read(p[0], b, sizeof b), -1);
    cr_expect_eq(errno, EAGAIN);
    green_hook_close(p[0]);
    green_hook_close(p[1]);
    /* Made non-blocking behind the hooks' back: the pipe path asks the
     * kernel, not the table. */
    cr_assert_eq(green__real.pipe(p), 0);
    cr_assert_eq(green__real.fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    errno = 0;
    cr_expect_eq(green_hook_read(p[0], b, sizeof b), -1);
    cr_expect_eq(errno, EAGAIN);
    green_hook_close(p[0]);
    green_hook_close(p[1]);
}

/* A TCP listener on 127.0.0.1, port chosen by the kernel. */
static int tcp_listener(struct sockaddr_in *sa)
{
    int l = green_hook_socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(l, 0);
    *sa = (struct sockaddr_in){ .sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(l, (struct sockaddr *)sa, sizeof *sa), 0);
    socklen_t len = sizeof *sa;
    cr_assert_eq(getsockname(l, (struct sockaddr *)sa, &len), 0);
    cr_assert_eq(green_hook_listen(l, 128), 0);
    return l;
}

struct acc {
    int l;
    int fd;
    int err;
};

static void *acceptor(void *arg)
{
    struct acc *a = arg;
    errno = 0;
    a->fd = green_hook_accept(a->l, NULL, NULL);
    a->err = errno;
    return NULL;
}

struct con {
    struct sockaddr_in sa;
    int fd;
    int r;
    int err;
};

static void *connector(void *arg)
{
    struct con *c = arg;
    c->fd = green_hook_socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    c->r = green_hook_connect(c->fd, (struct sockaddr *)&c->sa, sizeof c->sa);
    c->err = errno;
    return NULL;
}

Test(hooks_io, accept_and_connect_leave_no_o_nonblock_on_any_description)
{
    struct sockaddr_in sa;
    int l = tcp_listener(&sa);
    struct acc a = { .l = l };
    struct con c = { .sa = sa };
    green_t ta = green_spawn(acceptor, &a, NULL);
    green_t tc = green_spawn(connector, &c, NULL);
    green_join(ta, NULL);
    green_join(tc, NULL);
    cr_assert_geq(a.fd, 0, "accept failed: %s", strerror(a.err));
    cr_assert_eq(c.r, 0, "connect failed: %s", strerror(c.err));
    cr_expect_not(real_nonblock(l), "the listener must be left blocking (shared with "
                  "forked and exec'd children)");
    cr_expect_not(green_hook_fcntl(l, F_GETFL, NULL) & O_NONBLOCK);
    cr_expect_not(real_nonblock(a.fd), "an accepted socket must be blocking");
    cr_expect_not(real_nonblock(c.fd), "a connected socket must be left blocking");
    /* The program asks for O_NONBLOCK: the kernel and F_GETFL show it, and
     * accept says EAGAIN. */
    cr_assert_eq(green_hook_fcntl(l, F_SETFL, (void *)(intptr_t)O_NONBLOCK), 0);
    cr_expect(green_hook_fcntl(l, F_GETFL, NULL) & O_NONBLOCK);
    cr_expect(real_nonblock(l));
    errno = 0;
    cr_expect_eq(green_hook_accept(l, NULL, NULL), -1);
    cr_expect_eq(errno, EAGAIN);
    /* FIONBIO off: blocking again, in the kernel too. */
    int off = 0;
    cr_assert_eq(green_hook_ioctl(l, FIONBIO, &off), 0);
    cr_expect_not(green_hook_fcntl(l, F_GETFL, NULL) & O_NONBLOCK);
    cr_expect_not(real_nonblock(l));
    green_hook_close(a.fd);
    green_hook_close(c.fd);
    green_hook_close(l);
}

Test(hooks_io, close_wakes_a_green_thread_blocked_in_accept_with_ebadf)
{
    struct sockaddr_in sa;
    int l = tcp_listener(&sa);
    struct acc a = { .l = l };
    green_t ta = green_spawn(acceptor, &a, NULL);
    green_t c = green_spawn(close_later, (void *)(intptr_t)l, NULL);
    green_join(ta, NULL);
    green_join(c, NULL);
    cr_expect_eq(a.fd, -1);
    cr_expect_eq(a.err, EBADF);
}

Test(hooks_io, so_rcvtimeo_makes_a_blocking_recv_fail_with_eagain_after_the_timeout)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct timeval tv = { .tv_usec = 100000 };
    cr_assert_eq(green_hook_setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    ticks = 0;
    stop_ticking = false;
    /* The end of this wait is the kernel's timeout, not ours: the ticker
     * yields rather than sleeps, so that any CPU time the hub gets while
     * the read waits shows up as ticks. */
    green_t tk = green_spawn(yield_ticker, NULL, NULL);
    char b[4];
    int64_t t0 = green_now();
    errno = 0;
    ssize_t r = green_hook_read(sv[0], b, sizeof b);
    int e = errno;
    int64_t dt = green_now() - t0;
    stop_ticking = true;
    green_join(tk, NULL);
    cr_expect_eq(r, -1);
    cr_expect_eq(e, EAGAIN);
    cr_expect_geq(dt, GREEN_MSEC(90));
    cr_expect_lt(dt, GREEN_SEC(5));
    cr_expect_gt(ticks, 5, "other green threads must run during the wait");
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

Test(hooks_io, so_rcvtimeo_set_before_the_hooks_saw_the_socket_is_honoured)
{
    int sv[2];
    cr_assert_eq(green__real.socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    green__fdstate_reset(sv[0]);
    struct timeval tv = { .tv_usec = 50000 };
    cr_assert_eq(green__real.setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    char b[4];
    errno = 0;
    cr_expect_eq(green_hook_recv(sv[0], b, sizeof b, 0), -1);
    cr_expect_eq(errno, EAGAIN);
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

#define BIG (4 << 20)

struct bulk {
    int fd;
    size_t n;
    ssize_t r;
    size_t got;
    bool ok;
};

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + (i >> 11));
}

static void *bulk_writer(void *arg)
{
    struct bulk *b = arg;
    unsigned char *buf = malloc(b->n);
    for (size_t i = 0; i < b->n; i++)
        buf[i] = pattern(i);
    b->r = green_hook_write(b->fd, buf, b->n);
    free(buf);
    return NULL;
}

static void *bulk_reader(void *arg)
{
    struct bulk *b = arg;
    unsigned char buf[8192];
    b->ok = true;
    for (int guard = 0; b->got < b->n && guard < 1000000; guard++) {
        ssize_t r = green_hook_read(b->fd, buf, sizeof buf);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pattern(b->got + (size_t)i))
                b->ok = false;
        b->got += (size_t)r;
    }
    return NULL;
}

static void big_write_delivers_everything(int fds[2], size_t n)
{
    struct bulk w = { .fd = fds[1], .n = n }, r = { .fd = fds[0], .n = n };
    green_t tw = green_spawn(bulk_writer, &w, NULL);
    green_t tr = green_spawn(bulk_reader, &r, NULL);
    green_join(tw, NULL);
    green_join(tr, NULL);
    cr_expect_eq(w.r, (ssize_t)n, "one blocking write must send all %zu bytes, sent %zd",
                 n, w.r);
    cr_expect_eq(r.got, n);
    cr_expect(r.ok, "bytes arrived corrupted or out of order");
}

Test(hooks_io, a_big_blocking_write_on_a_socket_sends_every_byte)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    big_write_delivers_everything(sv, BIG);
    cr_expect_not(real_nonblock(sv[1]));
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

Test(hooks_io, a_big_blocking_write_on_a_pipe_sends_every_byte)
{
    int p[2];
    cr_assert_eq(green_hook_pipe(p), 0);
    big_write_delivers_everything(p, 1 << 20);
    cr_expect_not(real_nonblock(p[1]));
    green_hook_close(p[0]);
    green_hook_close(p[1]);
}

static void *tcp_bulk_server(void *arg)
{
    struct bulk *b = arg;
    int l = b->fd;
    b->fd = green_hook_accept(l, NULL, NULL);
    bulk_reader(b);
    green_hook_close(b->fd);
    return NULL;
}

Test(hooks_io, writev_on_a_tcp_socket_sends_every_iovec)
{
    struct sockaddr_in sa;
    int l = tcp_listener(&sa);
    struct bulk r = { .fd = l, .n = BIG };
    green_t ts = green_spawn(tcp_bulk_server, &r, NULL);
    struct con c = { .sa = sa };
    connector(&c);
    cr_assert_eq(c.r, 0, "connect: %s", strerror(c.err));
    unsigned char *buf = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        buf[i] = pattern(i);
    struct iovec iov[100];
    size_t per = BIG / 100, off = 0;
    for (int k = 0; k < 100; k++) {
        iov[k].iov_base = buf + off;
        iov[k].iov_len = k == 99 ? BIG - off : per;
        off += iov[k].iov_len;
    }
    ssize_t w = green_hook_writev(c.fd, iov, 100);
    green_hook_close(c.fd);
    green_join(ts, NULL);
    free(buf);
    cr_expect_eq(w, BIG);
    cr_expect_eq(r.got, (size_t)BIG);
    cr_expect(r.ok);
    green_hook_close(l);
}

Test(hooks_io, connect_to_a_closed_port_fails_with_econnrefused)
{
    struct sockaddr_in sa;
    int l = tcp_listener(&sa);
    green_hook_close(l);           /* nobody listens on sa any more */
    struct con c = { .sa = sa };
    connector(&c);
    cr_expect_eq(c.r, -1);
    cr_expect_eq(c.err, ECONNREFUSED);
    cr_expect_not(real_nonblock(c.fd), "connect must restore the blocking flag");
    green_hook_close(c.fd);
}

Test(hooks_io, connect_on_a_socket_the_program_made_nonblocking_gives_einprogress)
{
    struct sockaddr_in sa;
    int l = tcp_listener(&sa);
    int fd = green_hook_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    errno = 0;
    int r = green_hook_connect(fd, (struct sockaddr *)&sa, sizeof sa);
    /* Loopback may complete at once; otherwise the kernel's answer. */
    cr_expect(r == 0 || errno == EINPROGRESS, "r=%d errno=%s", r, strerror(errno));
    green_hook_close(fd);
    green_hook_close(l);
}

Test(hooks_io, a_stale_socket_entry_does_not_break_a_read_on_a_reused_number)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int n = sv[0];
    /* Closed behind the hooks' back, as fclose does. */
    green__real.close(sv[0]);
    green__real.close(sv[1]);
    int p[2];
    cr_assert_eq(green__real.pipe(p), 0);
    cr_assert_eq(p[0], n, "the test expects the lowest number to be reused");
    cr_assert_eq(green__fdstate_peek(n).kind, GREEN_FD_SOCKET);
    cr_assert_eq(green__real.write(p[1], "xy", 2), 2);
    char b[4];
    cr_expect_eq(green_hook_read(p[0], b, sizeof b), 2);
    cr_expect_eq(green__fdstate_peek(n).kind, GREEN_FD_PIPE);
    green_hook_close(p[0]);
    green_hook_close(p[1]);
}

static void *waitall_writer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (int k = 0; k < 4; k++) {
        green_sleep(GREEN_MSEC(5));
        green_hook_send(fd, "abcd", 4, 0);
    }
    return NULL;
}

Test(hooks_io, recv_with_msg_waitall_waits_for_the_whole_buffer)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    green_t w = green_spawn(waitall_writer, (void *)(intptr_t)sv[1], NULL);
    char b[16];
    cr_expect_eq(green_hook_recv(sv[0], b, sizeof b, MSG_WAITALL), 16);
    cr_expect_eq(memcmp(b, "abcdabcdabcdabcd", 16), 0);
    green_join(w, NULL);
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

Test(hooks_io, dup2_onto_a_descriptor_copies_its_state)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int p[2];
    cr_assert_eq(green_hook_pipe(p), 0);
    cr_assert_eq(green_hook_dup2(sv[0], p[0]), p[0]);
    char b[4];
    errno = 0;
    cr_expect_eq(green_hook_read(p[0], b, sizeof b), -1);
    cr_expect_eq(errno, EAGAIN);
    int d = green_hook_dup(sv[0]);
    cr_assert_geq(d, 0);
    cr_expect_eq(green__fdstate_peek(d).kind, GREEN_FD_SOCKET);
    for (int k = 0; k < 2; k++) {
        green_hook_close(sv[k]);
        green_hook_close(p[k]);
    }
    green_hook_close(d);
}

static void *plain_os_thread(void *arg)
{
    int *fds = arg;
    char b[4];
    /* No hub on this OS thread: the hook is the libc call. */
    fds[2] = (int)green_hook_read(fds[0], b, sizeof b);
    fds[3] = errno;
    return NULL;
}

Test(hooks_io, a_thread_without_a_hub_passes_straight_through)
{
    int fds[4];
    cr_assert_eq(green_hook_pipe2(fds, O_NONBLOCK), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, plain_os_thread, fds), 0);
    pthread_join(t, NULL);
    cr_expect_eq(fds[2], -1);
    cr_expect_eq(fds[3], EAGAIN);
    green_hook_close(fds[0]);
    green_hook_close(fds[1]);
}

Test(hooks_io, an_inherited_listener_is_accepted_from_without_making_it_nonblocking)
{
    int l = green__real.socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(l, 0);
    green__fdstate_reset(l);       /* as if inherited from the parent */
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    cr_assert_eq(green__real.listen(l, 8), 0);
    struct acc a = { .l = l };
    struct con c = { .sa = sa };
    green_t ta = green_spawn(acceptor, &a, NULL);
    green_t tc = green_spawn(connector, &c, NULL);
    green_join(ta, NULL);
    green_join(tc, NULL);
    cr_expect_geq(a.fd, 0, "accept: %s", strerror(a.err));
    cr_expect_eq(c.r, 0);
    cr_expect_not(real_nonblock(l), "an inherited listener must stay blocking");
    green_hook_close(a.fd);
    green_hook_close(c.fd);
    green_hook_close(l);
}

Test(hooks_io, so_sndtimeo_ends_a_blocking_send_on_a_full_socket)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct timeval tv = { .tv_usec = 50000 };
    cr_assert_eq(green_hook_setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    size_t n = 8 << 20;
    char *buf = calloc(1, n);
    int64_t t0 = green_now();
    errno = 0;
    ssize_t r = green_hook_send(sv[1], buf, n, 0);
    int64_t dt = green_now() - t0;
    /* Nobody reads: part of it fits in the buffer, then the timeout. */
    cr_expect_gt(r, 0);
    cr_expect_lt(r, (ssize_t)n);
    cr_expect_geq(dt, GREEN_MSEC(45));
    cr_expect_lt(dt, GREEN_SEC(5));
    errno = 0;
    cr_expect_eq(green_hook_send(sv[1], buf, n, 0), -1, "a full socket");
    cr_expect_eq(errno, EAGAIN);
    free(buf);
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

static void *send_two_datagrams_later(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (int k = 0; k < 2; k++) {
        green_sleep(GREEN_MSEC(10));
        green_hook_send(fd, k ? "two" : "one", 3, 0);
    }
    return NULL;
}

Test(hooks_io, a_blocking_recvmmsg_waits_for_every_message)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
    green_t w = green_spawn(send_two_datagrams_later, (void *)(intptr_t)sv[1], NULL);
    char b[2][8];
    struct iovec iov[2] = { { b[0], 8 }, { b[1], 8 } };
    struct mmsghdr v[2] = { { .msg_hdr = { .msg_iov = &iov[0], .msg_iovlen = 1 } },
                            { .msg_hdr = { .msg_iov = &iov[1], .msg_iovlen = 1 } } };
    cr_expect_eq(green_hook_recvmmsg(sv[0], v, 2, 0, NULL), 2);
    cr_expect_eq(v[0].msg_len, 3u);
    cr_expect_eq(memcmp(b[0], "one", 3), 0);
    cr_expect_eq(memcmp(b[1], "two", 3), 0);
    green_join(w, NULL);
    struct mmsghdr s[2] = { { .msg_hdr = { .msg_iov = &iov[0], .msg_iovlen = 1 } },
                            { .msg_hdr = { .msg_iov = &iov[1], .msg_iovlen = 1 } } };
    cr_expect_eq(green_hook_sendmmsg(sv[1], s, 2, 0), 2);
    cr_expect_eq(green_hook_recvmmsg(sv[0], v, 2, MSG_WAITFORONE, NULL), 2);
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

Test(hooks_io, regular_file_io_runs_on_the_worker_pool_when_the_file_family_is_on)
{
    unsigned saved = green__hook_families;
    green__hook_families |= GREEN_HOOK_FILE;
    char path[] = "/tmp/green_io_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    green__fdstate_reset(fd);
    cr_expect_eq(green_hook_write(fd, "0123456789", 10), 10);
    char b[16] = { 0 };
    cr_expect_eq(green_hook_pread(fd, b, 4, 3), 4);
    cr_expect_eq(memcmp(b, "3456", 4), 0);
    cr_expect_eq(green_hook_pwrite(fd, "ab", 2, 0), 2);
    cr_expect_eq(lseek(fd, 0, SEEK_SET), 0);
    cr_expect_eq(green_hook_read(fd, b, sizeof b), 10);
    cr_expect_eq(memcmp(b, "ab23456789", 10), 0);
    cr_expect_eq(green__fdstate_peek(fd).kind, GREEN_FD_FILE);
    errno = 0;
    cr_expect_eq(green_hook_read(-1, b, 1), -1);
    cr_expect_eq(errno, EBADF);
    green__hook_families = saved;
    green_hook_close(fd);
}

Test(hooks_io, read_chk_within_the_buffer_reads)
{
    int p[2];
    cr_assert_eq(green_hook_pipe(p), 0);
    cr_assert_eq(green_hook_write(p[1], "abc", 3), 3);
    char b[8];
    cr_expect_eq(green_hook_read_chk(p[0], b, sizeof b, sizeof b), 3);
    cr_assert_eq(green_hook_write(p[1], "de", 2), 2);
    cr_expect_eq(green_hook_recv_chk(p[0], b, 2, sizeof b, 0), -1, "not a socket");
    cr_expect_eq(errno, ENOTSOCK);
    green_hook_close(p[0]);
    green_hook_close(p[1]);
}

Test(hooks_io, read_chk_past_the_buffer_aborts_like_glibc, .signal = SIGABRT)
{
    int p[2];
    cr_assert_eq(green_hook_pipe(p), 0);
    char b[4];
    green_hook_read_chk(p[0], b, 64, sizeof b);
}

static volatile sig_atomic_t handled;
static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

static void *signal_then_write(void *arg)
{
    int fd = (int)(intptr_t)arg;
    green_sleep(GREEN_MSEC(20));
    kill(getpid(), SIGUSR1);
    green_sleep(GREEN_MSEC(20));
    green_hook_write(fd, "late", 4);
    return NULL;
}

static ssize_t read_while_signalled(int flags, int *err)
{
    struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(green_hook_sigaction(SIGUSR1, &sa, NULL), 0);
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    handled = 0;
    green_t t = green_spawn(signal_then_write, (void *)(intptr_t)sv[1], NULL);
    char b[8];
    errno = 0;
    ssize_t r = green_hook_read(sv[0], b, sizeof b);   /* main green thread */
    *err = errno;
    green_join(t, NULL);
    cr_expect_eq(handled, 1, "the handler must have run once");
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
    return r;
}

Test(hooks_io, a_signal_handler_without_sa_restart_interrupts_a_parked_read_with_eintr)
{
    int e;
    cr_expect_eq(read_while_signalled(0, &e), -1);
    cr_expect_eq(e, EINTR);
}

Test(hooks_io, a_signal_handler_with_sa_restart_lets_a_parked_read_continue)
{
    int e;
    cr_expect_eq(read_while_signalled(SA_RESTART, &e), 4);
}

static void *write_later(void *arg)
{
    int fd = (int)(intptr_t)arg;
    green_sleep(GREEN_MSEC(20));
    green_hook_write(fd, "x", 1);
    return NULL;
}

/* Read one byte that another green thread writes 20 ms later; fails with
 * EAGAIN after 2 s instead of hanging. */
static ssize_t read_one_written_later(int fds[2])
{
    struct timeval tv = { .tv_sec = 2 };
    cr_assert_eq(green_hook_setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    green_t w = green_spawn(write_later, (void *)(intptr_t)fds[1], NULL);
    char b;
    ssize_t r = green_hook_read(fds[0], &b, 1);
    green_join(w, NULL);
    return r;
}

Test(hooks_io, a_number_closed_behind_our_back_and_reused_by_a_hooked_socket_still_wakes)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(read_one_written_later(sv), 1);   /* arms the fd's watcher */
    int n = sv[0];
    green__real.close(sv[0]);                      /* as fclose does */
    green__real.close(sv[1]);
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(sv[0], n, "the test expects the number to be reused");
    errno = 0;
    cr_expect_eq(read_one_written_later(sv), 1, "the wait on the reused number "
                 "never woke: %s", strerror(errno));
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

Test(hooks_io, sendfile_to_a_socket_nobody_reads_yet_parks_and_sends_everything)
{
    char path[] = "/tmp/green_sf_XXXXXX";
    int f = mkstemp(path);
    cr_assert_geq(f, 0);
    unlink(path);
    size_t n = 4 << 20;
    unsigned char *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern(i);
    cr_assert_eq(write(f, buf, n), (ssize_t)n);
    free(buf);
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct bulk r = { .fd = sv[0], .n = n };
    green_t tr = green_spawn(bulk_reader, &r, NULL);
    off_t off = 0;
    cr_expect_eq(green_hook_sendfile(sv[1], f, &off, n), (ssize_t)n);
    cr_expect_eq(off, (off_t)n);
    green_join(tr, NULL);
    cr_expect_eq(r.got, n);
    cr_expect(r.ok);
    cr_expect_not(real_nonblock(sv[1]));
    close(f);
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

static void *pipe_writev_big(void *arg)
{
    struct bulk *b = arg;
    unsigned char *buf = malloc(b->n);
    for (size_t i = 0; i < b->n; i++)
        buf[i] = pattern(i);
    struct iovec iov[300];
    size_t per = b->n / 300, off = 0;
    for (int k = 0; k < 300; k++) {
        iov[k].iov_base = buf + off;
        iov[k].iov_len = k == 299 ? b->n - off : (k % 7 ? per : 0);   /* some empty */
        off += iov[k].iov_len;
    }
    b->r = green_hook_writev(b->fd, iov, 300);
    free(buf);
    return NULL;
}

Test(hooks_io, a_big_writev_on_a_pipe_read_by_another_green_thread_completes)
{
    int p[2];
    cr_assert_eq(green_hook_pipe(p), 0);
    size_t n = 1 << 20;
    struct bulk w = { .fd = p[1], .n = n }, r = { .fd = p[0], .n = n };
    green_t tw = green_spawn(pipe_writev_big, &w, NULL);
    green_t tr = green_spawn(bulk_reader, &r, NULL);
    green_join(tw, NULL);
    green_join(tr, NULL);
    cr_expect_eq(w.r, (ssize_t)n);
    cr_expect_eq(r.got, n);
    cr_expect(r.ok);
    green_hook_close(p[0]);
    green_hook_close(p[1]);
}

Test(hooks_io, a_descriptor_received_with_scm_rights_starts_with_a_clean_entry)
{
    int sv[2], p[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(green__real.pipe2(p, O_NONBLOCK), 0);
    char data = 'f';
    struct iovec iov = { &data, 1 };
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl = { 0 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                        .msg_controllen = sizeof ctl.b };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[0], sizeof(int));
    cr_assert_eq(green_hook_sendmsg(sv[1], &m, 0), 1);
    /* Make the number the new descriptor will get look like a socket. */
    int expect = dup(0);
    cr_assert_geq(expect, 0);
    green__real.close(expect);
    green__fdstate_created(expect, GREEN_FD_SOCKET, false);
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } rctl = { 0 };
    struct msghdr rm = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = rctl.b,
                         .msg_controllen = sizeof rctl.b };
    cr_assert_eq(green_hook_recvmsg(sv[0], &rm, 0), 1);
    int got;
    memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&rm)), sizeof got);
    cr_assert_eq(got, expect);
    cr_expect_eq(green__fdstate_peek(got).kind, GREEN_FD_UNKNOWN);
    char b[2];
    errno = 0;
    cr_expect_eq(green_hook_read(got, b, sizeof b), -1, "the received pipe is empty");
    cr_expect_eq(errno, EAGAIN, "and non-blocking: %s", strerror(errno));
    green_hook_close(got);
    green_hook_close(p[0]);
    green_hook_close(p[1]);
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

Test(hooks_io, a_zero_length_read_on_an_empty_socket_returns_zero_at_once)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char b[1];
    struct iovec iov = { b, 0 };
    cr_expect_eq(green_hook_read(sv[0], b, 0), 0);
    cr_expect_eq(green_hook_readv(sv[0], &iov, 1), 0);
    cr_expect_eq(green_hook_write(sv[1], b, 0), 0);
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

static void *close_range_later(void *arg)
{
    int fd = (int)(intptr_t)arg;
    green_sleep(GREEN_MSEC(30));
    green_hook_close_range((unsigned)fd, (unsigned)fd, 0);
    return NULL;
}

Test(hooks_io, close_range_wakes_a_green_thread_blocked_in_read_with_ebadf)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct rd a = { .fd = sv[0] };
    green_t r = green_spawn(reader, &a, NULL);
    green_t c = green_spawn(close_range_later, (void *)(intptr_t)sv[0], NULL);
    green_join(r, NULL);
    green_join(c, NULL);
    cr_expect_eq(a.r, -1);
    cr_expect_eq(a.err, EBADF);
    cr_expect_eq(green__fdstate_peek(sv[0]).kind, GREEN_FD_UNKNOWN);
    cr_expect_eq(green__real.fcntl(sv[0], F_GETFD), -1, "close_range must have closed it");
    green_hook_close(sv[1]);
}

Test(hooks_io, fortified_open_with_o_creat_and_no_mode_aborts_like_glibc, .signal = SIGABRT)
{
    green_hook_open_2("/tmp/green_io_never_created", O_CREAT | O_WRONLY);
}

struct getfl_probe {
    int fd;
    int seen;      /* F_GETFL through the hook while the connect waits */
};

static void *probe_getfl(void *arg)
{
    struct getfl_probe *p = arg;
    p->seen = green_hook_fcntl(p->fd, F_GETFL, NULL);
    return NULL;
}

Test(hooks_io, f_getfl_during_a_blocking_connect_shows_the_programs_view)
{
    /* A listener whose accept queue is full drops new SYNs: a TCP connect
     * then waits, long enough for another green thread to look. */
    struct sockaddr_in sa;
    int l = green_hook_socket(AF_INET, SOCK_STREAM, 0);
    sa = (struct sockaddr_in){ .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    cr_assert_eq(green_hook_listen(l, 0), 0);
    int fill[4];
    for (int k = 0; k < 4; k++) {
        fill[k] = green_hook_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        green_hook_connect(fill[k], (struct sockaddr *)&sa, sizeof sa);
    }
    green_sleep(GREEN_MSEC(20));
    int fd = green_hook_socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { .tv_usec = 200000 };
    cr_assert_eq(green_hook_setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    struct getfl_probe p = { .fd = fd, .seen = -1 };
    green_t t = green_spawn(probe_getfl, &p, NULL);
    errno = 0;
    int r = green_hook_connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    green_join(t, NULL);
    for (int k = 0; k < 4; k++)
        green_hook_close(fill[k]);
    if (r == 0)
        cr_skip_test("the full accept queue did not hold the connect back here");
    cr_expect_eq(r, -1);
    cr_expect_eq(e, EINPROGRESS, "SO_SNDTIMEO ends a blocking connect with EINPROGRESS, "
                 "got %s", strerror(e));
    cr_expect_geq(p.seen, 0);
    cr_expect_not(p.seen & O_NONBLOCK, "F_GETFL during the connect leaked our O_NONBLOCK");
    cr_expect_not(real_nonblock(fd));
    green_hook_close(fd);
    green_hook_close(l);
}

/* ---------------------------------------------------------- cancellation */

/* POSIX makes read, write, accept, connect, recv*, send* (and the other
 * blocking I/O calls) cancellation points: a pthread_cancel'led thread
 * blocked in one (or entering one with a cancel pending) exits there with
 * PTHREAD_CANCELED after running its cleanup handlers. The thread family
 * is switched on as under the shim, and pthread_cleanup_push/pop expand
 * to the hooks' cleanup registration, as the preload's exports make them
 * do in a preloaded program. */
#include "pthread_internal.h"
#define __pthread_register_cancel green_hook___pthread_register_cancel
#define __pthread_unregister_cancel green_hook___pthread_unregister_cancel
#define __pthread_unwind_next green_hook___pthread_unwind_next

enum cancel_call { C_READ, C_RECV, C_WRITE, C_ACCEPT, C_READ_READY };

struct cancel_case {
    enum cancel_call call;
    int fd;
    volatile int cleanups;         /* cleanup handler runs */
    volatile int returned;         /* the call returned (it must not) */
    volatile int entered;          /* the thread reached the call */
    volatile int cancelled;        /* pthread_cancel has been called */
    int note[2];                   /* the cleanup handler writes to note[1] */
};

/* A cleanup handler that itself calls a cancellation point (write), as
 * handlers that close or log do: the cancel already acting must not act
 * again inside it. */
static void count_cleanup(void *arg)
{
    struct cancel_case *c = arg;
    green_hook_write(c->note[1], "c", 1);
    c->cleanups++;
}

static void blocking_call(struct cancel_case *c)
{
    static char big[1 << 20];
    char b[16];
    switch (c->call) {
    case C_READ:   green_hook_read(c->fd, b, sizeof b); break;
    case C_RECV:   green_hook_recv(c->fd, b, sizeof b, 0); break;
    case C_WRITE:  green_hook_write(c->fd, big, sizeof big); break;
    case C_ACCEPT: green_hook_accept(c->fd, NULL, NULL); break;
    case C_READ_READY: {
        /* Data is waiting: only the entry check can act here. */
        int old;
        green_hook_pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
        for (int k = 0; k < 5000 && !c->cancelled; k++)
            green_sleep(GREEN_MSEC(1));   /* until the cancel is pending */
        green_hook_pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
        green_hook_read(c->fd, b, 1);
        break;
    }
    }
}

static void *cancellable(void *arg)
{
    struct cancel_case *c = arg;
    pthread_cleanup_push(count_cleanup, c);
    c->entered = 1;
    blocking_call(c);
    c->returned = 1;
    pthread_cleanup_pop(0);
    return NULL;
}

/* Cancel a thread parked in c's call; it must end with PTHREAD_CANCELED,
 * its cleanup handler run once and the call never returning. */
static void cancel_blocked(struct cancel_case *c)
{
    green__hook_families |= GREEN_HOOK_THREAD;
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, c->note), 0);
    pthread_t th;
    cr_assert_eq(green_hook_pthread_create(&th, NULL, cancellable, c), 0);
    green_sleep(GREEN_MSEC(20));   /* let it enter the call and park */
    cr_assert(c->entered, "the thread never ran");
    cr_assert_eq(green_hook_pthread_cancel(th), 0);
    c->cancelled = 1;
    void *r = NULL;
    cr_assert_eq(green_hook_pthread_join(th, &r), 0);
    cr_expect_eq(r, PTHREAD_CANCELED, "the cancelled thread did not end with "
                 "PTHREAD_CANCELED");
    cr_expect_eq(c->cleanups, 1, "cleanup handler ran %d times", c->cleanups);
    cr_expect_eq(c->returned, 0, "the cancelled call returned to its caller");
    char b = 0;
    cr_expect_eq(green__real.recv(c->note[0], &b, 1, MSG_DONTWAIT), 1);
    cr_expect_eq(b, 'c', "the cleanup handler's write did not happen");
    green_hook_close(c->note[0]);
    green_hook_close(c->note[1]);
}

Test(hooks_io, cancel_ends_a_thread_blocked_in_read_on_a_socket_with_cleanup)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct cancel_case c = { .call = C_READ, .fd = sv[0] };
    cancel_blocked(&c);
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

Test(hooks_io, cancel_ends_a_thread_blocked_in_read_on_a_pipe_with_cleanup)
{
    int p[2];
    cr_assert_eq(green_hook_pipe(p), 0);
    struct cancel_case c = { .call = C_READ, .fd = p[0] };
    cancel_blocked(&c);
    cr_expect_not(real_nonblock(p[0]));
    green_hook_close(p[0]);
    green_hook_close(p[1]);
}

Test(hooks_io, cancel_ends_a_thread_blocked_in_recv_with_cleanup)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct cancel_case c = { .call = C_RECV, .fd = sv[0] };
    cancel_blocked(&c);
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

Test(hooks_io, cancel_ends_a_thread_blocked_in_a_full_write_with_cleanup)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct cancel_case c = { .call = C_WRITE, .fd = sv[0] };
    cancel_blocked(&c);
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

Test(hooks_io, cancel_ends_a_thread_blocked_in_accept_with_cleanup)
{
    int l = green_hook_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(green_hook_listen(l, 4), 0);
    struct cancel_case c = { .call = C_ACCEPT, .fd = l };
    cancel_blocked(&c);
    green_hook_close(l);
}

Test(hooks_io, a_pending_cancel_acts_when_read_is_entered_even_with_data_ready)
{
    int sv[2];
    cr_assert_eq(green_hook_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(green_hook_write(sv[1], "x", 1), 1);
    struct cancel_case c = { .call = C_READ_READY, .fd = sv[0] };
    cancel_blocked(&c);
    char b;
    cr_expect_eq(green__real.recv(sv[0], &b, 1, MSG_DONTWAIT), 1,
                 "the cancelled read consumed the byte");
    green_hook_close(sv[0]);
    green_hook_close(sv[1]);
}

/* The hub's epoll fd: the eventpoll fd whose /proc fdinfo lists the hub's
 * timerfd ("tfd: N"), -1 if none. */
static int hub_epoll_fd(int tfd)
{
    for (int fd = 0; fd < 1024; fd++) {
        char path[64], link[64] = "";
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0 || strncmp(link, "anon_inode:[eventpoll]", (size_t)n) != 0)
            continue;
        snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
        FILE *f = fopen(path, "r");
        char line[256];
        int found = 0, t;
        while (f && !found && fgets(line, sizeof line, f))
            found = sscanf(line, "tfd: %d", &t) == 1 && t == tfd;
        if (f)
            fclose(f);
        if (found)
            return fd;
    }
    return -1;
}

Test(hooks_io, the_hubs_epoll_fd_and_timerfd_are_invisible_to_close_and_the_hub_keeps_working)
{
    cr_assert_eq(green_sleep(GREEN_MSEC(1)), 0);   /* the hub registered its fds */
    int tfd = green__tls_ctx->tfd;
    int ep = hub_epoll_fd(tfd);
    cr_assert_geq(ep, 0, "no epoll fd lists the hub's timerfd %d", tfd);
    cr_assert(green__fd_is_internal(tfd), "the core marks its timerfd");
    /* Under the preload the epoll_create1 export marks libev's epoll fd;
     * this static build's libev calls libc directly: mark it here. */
    green__fd_set_internal(ep, true);
    errno = 0;
    cr_expect_eq(green_hook_close(ep), -1);
    cr_expect_eq(errno, EBADF);
    errno = 0;
    cr_expect_eq(green_hook_close(tfd), -1);
    cr_expect_eq(errno, EBADF);
    errno = 0;
    cr_expect_eq(green_hook_fcntl(ep, F_GETFD, NULL), -1);
    cr_expect_eq(errno, EBADF);
    cr_expect_eq(green_hook_close_range((unsigned)ep, (unsigned)ep, 0), 0);
    errno = 0;
    cr_expect_eq(green_hook_dup2(2, tfd), -1, "dup2 would replace the timerfd");
    cr_expect_eq(errno, EBUSY);
    cr_expect_geq(green__real.fcntl(ep, F_GETFD), 0, "the epoll fd was really closed");
    cr_expect_geq(green__real.fcntl(tfd, F_GETFD), 0, "the timerfd was really closed");
    cr_expect_eq(green_sleep(GREEN_MSEC(5)), 0);
    int p[2];
    cr_assert_eq(green_hook_pipe(p), 0);
    read_parks_while_others_run(p);
    green_hook_close(p[0]);
    green_hook_close(p[1]);
}

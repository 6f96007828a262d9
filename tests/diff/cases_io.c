/*
 * cases_io.c - differential cases of the data paths (see diff.h): read,
 * write, readv, writev, recv*, send*, connect, sendfile, splice, tee,
 * pread/pwrite, poll/select/epoll and blocking open() of FIFOs.
 *
 * What they pin: MSG_WAITALL and MSG_PEEK, partial transfers cut short by
 * signals (SA_RESTART or not), calls the kernel rejects at once (never
 * parked on), connect retries, socket timeouts, EFAULT for bad user
 * pointers, poll/select/epoll argument checks, and errno left alone by a
 * call that waited and then succeeded.
 *
 * Producers. A case that needs data "later" gets it either from a helper
 * pthread that sleeps with nanosleep (green under the shim: the case then
 * also proves that the wait parks only the caller) or from a forked child
 * that sleeps with diff_raw_sleep_ms and writes with the raw syscall (no
 * shim code at all in the child). Signal cases use children, so that the
 * only thread that can take the signal is the case's.
 */
#include "diff.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static int temp_file(const char *content);

/* Addresses the compiler cannot see through (no warnings, no folding). */
static volatile uintptr_t bad_addr = 16, kernel_addr = (uintptr_t)-4096L;
static volatile int neg_one = -1;
#define BAD ((void *)bad_addr)
#define KBAD ((void *)kernel_addr)
#define NULLV ((void *)(bad_addr - 16))

static volatile sig_atomic_t hits;

static void on_sig(int sig)
{
    (void)sig;
    hits++;
}

static void handle(int sig, int flags)
{
    struct sigaction sa = { .sa_handler = on_sig, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void raw_write(int fd, const void *p, size_t n)
{
    syscall(SYS_write, fd, p, n);
}

/* A forked child: after ms, write data to fd (raw syscalls only), then
 * close every other end it holds by exiting. */
static pid_t child_write_later(int fd, const char *data, int ms)
{
    pid_t p = fork();
    if (p == 0) {
        diff_raw_sleep_ms(ms);
        raw_write(fd, data, strlen(data));
        syscall(SYS_exit_group, 0);
    }
    return p;
}

/* A forked child writing chunks of data, one every ms. */
static pid_t child_write_chunks(int fd, const char *data, size_t chunk, int ms)
{
    pid_t p = fork();
    if (p == 0) {
        size_t n = strlen(data);
        for (size_t k = 0; k < n; k += chunk) {
            diff_raw_sleep_ms(ms);
            raw_write(fd, data + k, n - k < chunk ? n - k : chunk);
        }
        diff_raw_sleep_ms(ms);
        syscall(SYS_exit_group, 0);
    }
    return p;
}

static void reap(pid_t p)
{
    int st;
    if (p > 0)
        while (waitpid(p, &st, 0) < 0 && errno == EINTR)
            ;
}

/* A helper pthread: sleeps (nanosleep), then writes or closes. */
struct later {
    int fd;
    const char *data;
    int ms;
    int close_it;
};

static void *later_main(void *arg)
{
    struct later *l = arg;
    sleep_ms(l->ms);
    if (l->data)
        write(l->fd, l->data, strlen(l->data));
    if (l->close_it)
        close(l->fd);
    return NULL;
}

static pthread_t later(struct later *l)
{
    pthread_t t;
    pthread_create(&t, NULL, later_main, l);
    return t;
}

static void unix_pair(int type, int sv[2])
{
    if (socketpair(AF_UNIX, type, 0, sv) != 0)
        diff_out("socketpair failed: %s", diff_errname(errno));
}

/* A listening TCP socket on 127.0.0.1 with a kernel-chosen port. */
static int tcp_listener(struct sockaddr_in *a, int backlog)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    *a = (struct sockaddr_in){ .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof *a;
    bind(l, (struct sockaddr *)a, sizeof *a);
    listen(l, backlog);
    getsockname(l, (struct sockaddr *)a, &al);
    return l;
}

/* A connected TCP pair (c: client, s: accepted). */
static void tcp_pair(int *c, int *s)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 8);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*c, (struct sockaddr *)&a, sizeof a) != 0)
        diff_out("connect failed: %s", diff_errname(errno));
    *s = accept(l, NULL, NULL);
    close(l);
}

/* A 127.0.0.1 port where nobody listens. */
static struct sockaddr_in closed_port(void)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 1);
    close(l);
    return a;
}

static void show_data(const char *label, const char *buf, long n)
{
    diff_out("%s: \"%.*s\"", label, n > 0 ? (int)n : 0, buf);
}

/* A pipe whose buffer holds exactly one page, full. */
static void full_pipe(int p[2])
{
    pipe(p);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    static char page[4096];
    write(p[1], page, sizeof page);
}

static void set_rcvtimeo(int fd, long sec, long usec)
{
    struct timeval tv = { sec, usec };
    CALL("setsockopt(SO_RCVTIMEO)", setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
}

static void show_revents(const char *label, short re)
{
    diff_out("%s: revents=%s%s%s%s%s%s", label, re ? "" : "0",
             re & POLLIN ? "IN " : "", re & POLLOUT ? "OUT " : "",
             re & POLLHUP ? "HUP " : "", re & POLLERR ? "ERR " : "",
             re & POLLNVAL ? "NVAL " : "");
}

/* A page that may be read but not written. */
static void *ro_page(void)
{
    return mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/* ------------------------------------------- MSG_WAITALL and MSG_PEEK */

DIFF_CASE(io, recv_waitall_collects_chunks_sent_later)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t p = child_write_chunks(sv[1], "abcdefghijkl", 4, 40);
    char buf[32] = { 0 };
    CALL("recv(WAITALL)", recv(sv[0], buf, 12, MSG_WAITALL));
    show_data("data", buf, 12);
    reap(p);
}

DIFF_CASE(io, recvmsg_waitall_collects_chunks_sent_later)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t p = child_write_chunks(sv[1], "abcdefghijkl", 4, 40);
    char buf[32] = { 0 };
    struct iovec iov = { buf, 12 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    CALL("recvmsg(WAITALL)", recvmsg(sv[0], &m, MSG_WAITALL));
    show_data("data", buf, 12);
    reap(p);
}

DIFF_CASE(io, recvmsg_waitall_fills_every_iovec_from_tcp)
{
    int c, s;
    tcp_pair(&c, &s);
    pid_t p = child_write_chunks(c, "0123456789", 3, 30);
    char a[4] = { 0 }, b[6] = { 0 };
    struct iovec iov[2] = { { a, 4 }, { b, 6 } };
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
    CALL("recvmsg(WAITALL)", recvmsg(s, &m, MSG_WAITALL));
    show_data("a", a, 4);
    show_data("b", b, 6);
    reap(p);
}

DIFF_CASE(io, recv_peek_waitall_returns_bytes_once_then_they_are_still_there)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t p = child_write_chunks(sv[1], "abcdef", 3, 40);
    char buf[16] = { 0 };
    CALL("recv(PEEK|WAITALL)", recv(sv[0], buf, 6, MSG_PEEK | MSG_WAITALL));
    show_data("peeked", buf, 6);
    memset(buf, 0, sizeof buf);
    CALL("recv", recv(sv[0], buf, 6, MSG_WAITALL));
    show_data("read", buf, 6);
    reap(p);
}

DIFF_CASE(io, tcp_recv_peek_waitall_waits_for_the_whole_length)
{
    int c, s;
    tcp_pair(&c, &s);
    pid_t p = child_write_chunks(c, "abcdef", 3, 40);
    char buf[16] = { 0 };
    CALL("recv(PEEK|WAITALL)", recv(s, buf, 6, MSG_PEEK | MSG_WAITALL));
    show_data("peeked", buf, 6);
    memset(buf, 0, sizeof buf);
    CALL("recv", recv(s, buf, 6, MSG_WAITALL));
    show_data("read", buf, 6);
    reap(p);
}

DIFF_CASE(io, tcp_recv_peek_waitall_returns_short_at_eof)
{
    int c, s;
    tcp_pair(&c, &s);
    pid_t p = child_write_later(c, "abc", 40);
    close(c);
    char buf[16] = { 0 };
    CALL("recv(PEEK|WAITALL)", recv(s, buf, 6, MSG_PEEK | MSG_WAITALL));
    show_data("peeked", buf, 3);
    reap(p);
}

DIFF_CASE(io, recvmsg_waitall_stops_after_a_descriptor_arrives)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int p[2];
    pipe(p);
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = { "FD", 2 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &p[0], sizeof(int));
    sendmsg(sv[1], &m, 0);
    pid_t c = child_write_later(sv[1], "more", 80);
    char data[16] = { 0 };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } r;
    memset(&r, 0, sizeof r);
    struct iovec riov = { data, 6 };
    struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = r.buf,
                         .msg_controllen = sizeof r.buf };
    CALL("recvmsg(WAITALL)", recvmsg(sv[0], &rm, MSG_WAITALL));
    show_data("data", data, 6);
    diff_out("got rights=%d", CMSG_FIRSTHDR(&rm) && CMSG_FIRSTHDR(&rm)->cmsg_type == SCM_RIGHTS);
    reap(c);
}

DIFF_CASE(io, recv_peek_leaves_data_for_the_next_read)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    write(sv[1], "hello", 5);
    char buf[16] = { 0 };
    CALL("recv(PEEK)", recv(sv[0], buf, sizeof buf, MSG_PEEK));
    show_data("peeked", buf, 5);
    CALL("read", read(sv[0], buf, sizeof buf));
    show_data("read", buf, 5);
}

DIFF_CASE(io, recv_peek_waits_for_data_sent_later)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t p = child_write_later(sv[1], "late", 80);
    char buf[16] = { 0 };
    int64_t t0 = diff_now();
    CALL("recv(PEEK)", recv(sv[0], buf, sizeof buf, MSG_PEEK));
    DIFF_TOOK("recv", t0, 40, 2000);
    CALL("recv", recv(sv[0], buf, sizeof buf, 0));
    show_data("data", buf, 4);
    reap(p);
}

DIFF_CASE(io, recv_waitall_returns_partial_count_at_eof)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t p = child_write_later(sv[1], "abc", 50);
    close(sv[1]);
    char buf[16] = { 0 };
    CALL("recv(WAITALL)", recv(sv[0], buf, 10, MSG_WAITALL));
    show_data("data", buf, 3);
    reap(p);
}

DIFF_CASE(io, recv_waitall_dontwait_returns_what_is_there)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    write(sv[1], "abc", 3);
    char buf[16];
    CALL("recv(WAITALL|DONTWAIT)", recv(sv[0], buf, 10, MSG_WAITALL | MSG_DONTWAIT));
}

DIFF_CASE(io, recv_waitall_on_datagram_socket_returns_one_datagram)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    write(sv[1], "abc", 3);
    write(sv[1], "def", 3);
    char buf[16];
    CALL("recv(WAITALL)", recv(sv[0], buf, 10, MSG_WAITALL));
}

DIFF_CASE(io, recv_waitall_with_rcvtimeo_times_out_for_the_whole_call)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_rcvtimeo(sv[0], 0, 300000);
    pid_t p = child_write_chunks(sv[1], "abcdefghijklmnop", 1, 100);
    char buf[32];
    int64_t t0 = diff_now();
    errno = 0;
    long r = recv(sv[0], buf, 16, MSG_WAITALL);
    diff_out("recv(WAITALL): partial=%d errno=%s", r > 0 && r < 16, diff_errname(errno));
    DIFF_TOOK("recv", t0, 200, 900);
    kill(p, SIGKILL);
    reap(p);
}

DIFF_CASE(io, recv_waitall_with_rcvtimeo_and_no_data_is_eagain)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_rcvtimeo(sv[0], 0, 100000);
    char buf[8];
    int64_t t0 = diff_now();
    CALL("recv(WAITALL)", recv(sv[0], buf, 8, MSG_WAITALL));
    DIFF_TOOK("recv", t0, 50, 1000);
}

DIFF_CASE(io, recv_waitall_interrupted_with_sa_restart_returns_partial_count)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    handle(SIGALRM, SA_RESTART);
    write(sv[1], "abcde", 5);
    int64_t t0 = diff_now();   /* before the alarm, never after */
    diff_alarm_ms(100);
    char buf[16];
    CALL("recv(WAITALL)", recv(sv[0], buf, 10, MSG_WAITALL));
    DIFF_TOOK("recv", t0, 50, 2000);
    diff_out("hits=%d", (int)hits);
}

DIFF_CASE(io, recv_waitall_interrupted_without_sa_restart_returns_partial_count)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    handle(SIGALRM, 0);
    write(sv[1], "abcde", 5);
    diff_alarm_ms(100);
    char buf[16];
    CALL("recv(WAITALL)", recv(sv[0], buf, 10, MSG_WAITALL));
    diff_out("hits=%d", (int)hits);
}

DIFF_CASE(io, recv_interrupted_without_sa_restart_and_no_data_is_eintr)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    handle(SIGALRM, 0);
    diff_alarm_ms(100);
    char buf[16];
    CALL("recv", recv(sv[0], buf, 10, 0));
    diff_out("hits=%d", (int)hits);
}

DIFF_CASE(io, recv_interrupted_with_sa_restart_and_no_data_restarts)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    handle(SIGALRM, SA_RESTART);
    pid_t p = child_write_later(sv[1], "late", 300);
    diff_alarm_ms(100);
    char buf[16] = { 0 };
    CALL("recv", recv(sv[0], buf, 10, 0));
    show_data("data", buf, 4);
    diff_out("hits=%d", (int)hits);
    reap(p);
}

DIFF_CASE(io, recvmsg_waitall_interrupted_with_sa_restart_returns_partial_count)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    handle(SIGALRM, SA_RESTART);
    write(sv[1], "abcde", 5);
    diff_alarm_ms(100);
    char buf[16];
    struct iovec iov = { buf, 10 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    CALL("recvmsg(WAITALL)", recvmsg(sv[0], &m, MSG_WAITALL));
    diff_out("hits=%d", (int)hits);
}

DIFF_CASE(io, recv_with_rcvtimeo_interrupted_under_sa_restart_is_eintr)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_rcvtimeo(sv[0], 2, 0);
    handle(SIGALRM, SA_RESTART);
    int64_t t0 = diff_now();   /* before the alarm, never after */
    diff_alarm_ms(100);
    char buf[16];
    CALL("recv", recv(sv[0], buf, 10, 0));
    DIFF_TOOK("recv", t0, 50, 1500);
}

/* -------------------------------------------------------- pipe writes */

DIFF_CASE(io, pipe_large_write_completes_when_a_thread_drains_it)
{
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        char b[4096];
        syscall(SYS_close, p[1]);
        diff_raw_sleep_ms(50);
        while (syscall(SYS_read, p[0], b, sizeof b) > 0)
            ;
        syscall(SYS_exit_group, 0);
    }
    close(p[0]);
    static char big[256 * 1024];
    CALL("write(256K)", write(p[1], big, sizeof big));
    close(p[1]);
    reap(c);
}

DIFF_CASE(io, pipe_large_write_interrupted_with_sa_restart_returns_partial_count)
{
    int p[2];
    pipe(p);
    handle(SIGALRM, SA_RESTART);
    diff_alarm_ms(100);
    static char big[128 * 1024];
    CALL("write(128K)", write(p[1], big, sizeof big));
    diff_out("hits=%d", (int)hits);
}

DIFF_CASE(io, pipe_large_write_interrupted_without_sa_restart_returns_partial_count)
{
    int p[2];
    pipe(p);
    handle(SIGALRM, 0);
    diff_alarm_ms(100);
    static char big[128 * 1024];
    CALL("write(128K)", write(p[1], big, sizeof big));
    diff_out("hits=%d", (int)hits);
}

DIFF_CASE(io, pipe_writev_large_interrupted_with_sa_restart_returns_partial_count)
{
    int p[2];
    pipe(p);
    handle(SIGALRM, SA_RESTART);
    diff_alarm_ms(100);
    static char big[2][64 * 1024];
    struct iovec iov[2] = { { big[0], sizeof big[0] }, { big[1], sizeof big[1] } };
    CALL("writev(128K)", writev(p[1], iov, 2));
}

DIFF_CASE(io, write_to_full_pipe_interrupted_without_sa_restart_is_eintr)
{
    int p[2];
    full_pipe(p);
    handle(SIGALRM, 0);
    diff_alarm_ms(100);
    CALL("write", write(p[1], "x", 1));
}

DIFF_CASE(io, write_to_full_pipe_with_sa_restart_waits_for_the_reader)
{
    int p[2];
    full_pipe(p);
    handle(SIGALRM, SA_RESTART);
    diff_alarm_ms(50);
    pid_t c = fork();
    if (c == 0) {
        char b[4096];
        diff_raw_sleep_ms(200);
        syscall(SYS_read, p[0], b, sizeof b);
        syscall(SYS_exit_group, 0);
    }
    int64_t t0 = diff_now();
    CALL("write", write(p[1], "x", 1));
    DIFF_TOOK("write", t0, 100, 3000);
    diff_out("hits=%d", (int)hits);
    reap(c);
}

DIFF_CASE(io, zero_length_write_to_full_pipe_returns_zero_at_once)
{
    int p[2];
    full_pipe(p);
    CALL("write(0)", write(p[1], "x", 0));
}

DIFF_CASE(io, zero_length_writev_to_full_pipe_returns_zero_at_once)
{
    int p[2];
    full_pipe(p);
    struct iovec iov = { "x", 0 };
    CALL("writev(0)", writev(p[1], &iov, 1));
}

DIFF_CASE(io, zero_length_read_of_empty_pipe_returns_zero_at_once)
{
    int p[2];
    pipe(p);
    char b[1];
    CALL("read(0)", read(p[0], b, 0));
}

DIFF_CASE(io, read_on_pipe_write_end_is_ebadf)
{
    int p[2];
    pipe(p);
    char b[4];
    CALL("read", read(p[1], b, sizeof b));
}

DIFF_CASE(io, write_on_pipe_read_end_is_ebadf)
{
    int p[2];
    pipe(p);
    CALL("write", write(p[0], "x", 1));
}

DIFF_CASE(io, readv_on_pipe_write_end_is_ebadf)
{
    int p[2];
    pipe(p);
    char b[4];
    struct iovec iov = { b, sizeof b };
    CALL("readv", readv(p[1], &iov, 1));
}

DIFF_CASE(io, write_on_full_pipe_read_end_is_ebadf)
{
    int p[2];
    full_pipe(p);
    CALL("write", write(p[0], "x", 1));
}

DIFF_CASE(io, pipe_read_waits_for_data_written_by_a_thread)
{
    int p[2];
    pipe(p);
    struct later l = { .fd = p[1], .data = "hi there", .ms = 60 };
    pthread_t t = later(&l);
    char buf[32] = { 0 };
    int64_t t0 = diff_now();
    CALL("read", read(p[0], buf, sizeof buf));
    DIFF_TOOK("read", t0, 30, 2000);
    show_data("data", buf, 8);
    pthread_join(t, NULL);
}

DIFF_CASE(io, pipe_read_returns_what_is_available)
{
    int p[2];
    pipe(p);
    write(p[1], "0123456789", 10);
    char buf[100];
    CALL("read", read(p[0], buf, sizeof buf));
}

DIFF_CASE(io, pipe_read_after_writer_closed_is_eof)
{
    int p[2];
    pipe(p);
    write(p[1], "ab", 2);
    close(p[1]);
    char buf[8];
    CALL("read", read(p[0], buf, sizeof buf));
    CALL("read", read(p[0], buf, sizeof buf));
}

DIFF_CASE(io, pipe_read_wakes_with_eof_when_a_thread_closes_the_writer)
{
    int p[2];
    pipe(p);
    struct later l = { .fd = p[1], .ms = 60, .close_it = 1 };
    pthread_t t = later(&l);
    char buf[8];
    CALL("read", read(p[0], buf, sizeof buf));
    pthread_join(t, NULL);
}

DIFF_CASE(io, pipe_write_without_reader_is_epipe_with_sigpipe)
{
    int p[2];
    pipe(p);
    handle(SIGPIPE, 0);
    close(p[0]);
    CALL("write", write(p[1], "x", 1));
    diff_out("hits=%d", (int)hits);
}

DIFF_CASE(io, pipe_write_blocked_gets_epipe_when_reader_closes)
{
    int p[2];
    full_pipe(p);
    signal(SIGPIPE, SIG_IGN);
    pid_t c = fork();
    if (c == 0)
        syscall(SYS_exit_group, 0);
    reap(c);
    struct later l = { .fd = p[0], .ms = 60, .close_it = 1 };
    pthread_t t = later(&l);
    CALL("write", write(p[1], "x", 1));
    pthread_join(t, NULL);
}

DIFF_CASE(io, pipe_small_writev_is_written_in_one_piece)
{
    int p[2];
    pipe(p);
    struct iovec iov[3] = { { "ab", 2 }, { "", 0 }, { "cde", 3 } };
    CALL("writev", writev(p[1], iov, 3));
    char buf[8] = { 0 };
    CALL("read", read(p[0], buf, sizeof buf));
    show_data("data", buf, 5);
}

DIFF_CASE(io, pipe_readv_scatters_over_iovecs)
{
    int p[2];
    pipe(p);
    write(p[1], "abcdefg", 7);
    char a[3] = { 0 }, b[10] = { 0 };
    struct iovec iov[2] = { { a, 3 }, { b, 10 } };
    CALL("readv", readv(p[0], iov, 2));
    show_data("a", a, 3);
    show_data("b", b, 4);
}

DIFF_CASE(io, readv_of_zero_bytes_on_an_empty_socket_returns_zero_at_once)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    char b[4];
    struct iovec iov[2] = { { b, 0 }, { b, 0 } };
    int64_t t0 = diff_now();
    CALL("readv(0 bytes)", readv(sv[0], iov, 2));
    DIFF_TOOK("readv", t0, -1, 500);
}

DIFF_CASE(io, readv_of_zero_bytes_on_an_empty_pipe_returns_zero_at_once)
{
    int p[2];
    pipe(p);
    char b[4];
    struct iovec iov = { b, 0 };
    CALL("readv(0 bytes)", readv(p[0], &iov, 1));
}

DIFF_CASE(io, recvmsg_of_zero_bytes_on_a_stream_socket_waits_for_data)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t c = child_write_later(sv[1], "x", 80);
    char b[4];
    struct iovec iov = { b, 0 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    int64_t t0 = diff_now();
    CALL("recvmsg(0 bytes)", recvmsg(sv[0], &m, 0));
    DIFF_TOOK("recvmsg", t0, 40, 2000);
    reap(c);
}

DIFF_CASE(io, errno_is_kept_by_a_splice_that_waited)
{
    int p[2], q[2];
    pipe(p);
    pipe(q);
    pid_t c = child_write_later(p[1], "x", 60);
    errno = 1234;
    long r = splice(p[0], NULL, q[1], NULL, 10, 0);
    diff_out("splice=%ld errno=%d", r, errno);
    reap(c);
}

DIFF_CASE(io, errno_is_kept_by_a_sendfile_that_waited)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    static char big[1 << 20];
    send(sv[0], big, sizeof big, MSG_DONTWAIT);
    pid_t c = fork();
    if (c == 0) {
        char b[65536];
        syscall(SYS_close, sv[0]);
        diff_raw_sleep_ms(60);
        while (syscall(SYS_read, sv[1], b, sizeof b) > 0)
            ;
        syscall(SYS_exit_group, 0);
    }
    close(sv[1]);
    int f = temp_file("sendfile payload");
    errno = 1234;
    long r = sendfile(sv[0], f, NULL, 16);
    diff_out("sendfile=%ld errno=%d", r, errno);
    close(sv[0]);
    close(f);
    reap(c);
}

DIFF_CASE(io, readv_with_iovcnt_zero_returns_zero)
{
    int p[2];
    pipe(p);
    CALL("readv(0)", readv(p[0], NULL, 0));
}

DIFF_CASE(io, readv_with_negative_iovcnt_is_einval)
{
    int p[2];
    pipe(p);
    char b[4];
    struct iovec iov = { b, 4 };
    CALL("readv(-1)", readv(p[0], &iov, neg_one));
}

DIFF_CASE(io, writev_with_too_many_iovecs_is_einval)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    static struct iovec iov[IOV_MAX + 1];
    for (int k = 0; k <= IOV_MAX; k++)
        iov[k] = (struct iovec){ "x", 1 };
    CALL("writev(IOV_MAX+1)", writev(sv[0], iov, IOV_MAX + 1));
}

/* ------------------------------------------ eventfd, timerfd, signalfd */

DIFF_CASE(io, eventfd_short_read_is_einval)
{
    int e = eventfd(0, 0);
    char b[4];
    CALL("read(4)", read(e, b, sizeof b));
}

DIFF_CASE(io, eventfd_short_write_is_einval)
{
    int e = eventfd(0, 0);
    CALL("write(4)", write(e, "abcd", 4));
}

DIFF_CASE(io, eventfd_write_of_all_ones_is_einval)
{
    int e = eventfd(0, 0);
    uint64_t v = UINT64_MAX;
    CALL("write(max)", write(e, &v, sizeof v));
}

DIFF_CASE(io, eventfd_read_returns_the_counter)
{
    int e = eventfd(3, 0);
    uint64_t v = 0;
    CALL("read", read(e, &v, sizeof v));
    diff_out("value=%llu", (unsigned long long)v);
}

DIFF_CASE(io, eventfd_read_waits_for_a_thread_to_write)
{
    int e = eventfd(0, 0);
    pthread_t t;
    struct later l = { .fd = e, .ms = 60 };
    (void)l;
    uint64_t one = 7;
    pid_t c = fork();
    if (c == 0) {
        diff_raw_sleep_ms(60);
        raw_write(e, &one, sizeof one);
        syscall(SYS_exit_group, 0);
    }
    (void)t;
    uint64_t v = 0;
    CALL("read", read(e, &v, sizeof v));
    diff_out("value=%llu", (unsigned long long)v);
    reap(c);
}

DIFF_CASE(io, timerfd_short_read_is_einval)
{
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    char b[4];
    CALL("read(4)", read(t, b, sizeof b));
}

DIFF_CASE(io, timerfd_write_is_einval)
{
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    uint64_t v = 1;
    CALL("write", write(t, &v, sizeof v));
}

DIFF_CASE(io, timerfd_read_waits_for_the_expiry)
{
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = { .it_value = { 0, 100 * 1000000 } };
    timerfd_settime(t, 0, &its, NULL);
    uint64_t v = 0;
    int64_t t0 = diff_now();
    CALL("read", read(t, &v, sizeof v));
    DIFF_TOOK("read", t0, 60, 2000);
    diff_out("expirations=%llu", (unsigned long long)v);
}

DIFF_CASE(io, signalfd_short_read_is_einval)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    int f = signalfd(-1, &s, 0);
    char b[16];
    CALL("read(16)", read(f, b, sizeof b));
}

DIFF_CASE(io, signalfd_write_is_einval)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    int f = signalfd(-1, &s, 0);
    char b[128] = { 0 };
    CALL("write", write(f, b, sizeof b));
}

DIFF_CASE(io, epoll_fd_read_is_einval)
{
    int ep = epoll_create1(0);
    char b[16];
    CALL("read", read(ep, b, sizeof b));
}

DIFF_CASE(io, epoll_fd_write_is_einval)
{
    int ep = epoll_create1(0);
    CALL("write", write(ep, "x", 1));
}

DIFF_CASE(io, read_of_a_directory_is_eisdir)
{
    int d = open("/", O_RDONLY | O_DIRECTORY);
    char b[16];
    CALL("read", read(d, b, sizeof b));
    close(d);
}

DIFF_CASE(io, dev_null_reads_eof_and_swallows_writes)
{
    int d = open("/dev/null", O_RDWR);
    char b[16];
    CALL("read", read(d, b, sizeof b));
    CALL("write", write(d, "abc", 3));
    close(d);
}

DIFF_CASE(io, read_of_a_closed_fd_is_ebadf)
{
    int p[2];
    pipe(p);
    close(p[0]);
    char b[4];
    CALL("read", read(p[0], b, sizeof b));
}

/* ------------------------------------------------------------ connect */

DIFF_CASE(io, tcp_connect_succeeds_and_so_error_is_zero)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 8);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CALL("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    int err = -1;
    socklen_t el = sizeof err;
    CALL("getsockopt(SO_ERROR)", getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el));
    diff_out("so_error=%s", diff_errname(err));
    diff_nonblock("after connect", c);
    close(c);
    close(l);
}

DIFF_CASE(io, second_connect_on_a_connected_socket_is_eisconn)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 8);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CALL("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    CALL("connect again", connect(c, (struct sockaddr *)&a, sizeof a));
    close(c);
    close(l);
}

DIFF_CASE(io, second_connect_on_a_connected_unix_socket_is_eisconn)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    CALL("connect", connect(sv[0], (struct sockaddr *)&a, sizeof(sa_family_t) + 1));
}

DIFF_CASE(io, connect_to_a_closed_port_is_econnrefused)
{
    struct sockaddr_in a = closed_port();
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CALL("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    int err = -1;
    socklen_t el = sizeof err;
    getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el);
    diff_out("so_error=%s", diff_errname(err));
    close(c);
}

DIFF_CASE(io, connect_retry_after_econnrefused_is_refused_again)
{
    struct sockaddr_in a = closed_port();
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CALL("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    CALL("connect again", connect(c, (struct sockaddr *)&a, sizeof a));
    close(c);
}

DIFF_CASE(io, connect_retry_after_econnrefused_succeeds_once_listening)
{
    struct sockaddr_in a = closed_port();
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CALL("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    CALL("bind", bind(l, (struct sockaddr *)&a, sizeof a));
    listen(l, 4);
    CALL("connect again", connect(c, (struct sockaddr *)&a, sizeof a));
    close(c);
    close(l);
}

DIFF_CASE(io, nonblocking_connect_is_einprogress_then_poll_says_writable)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 8);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    errno = 0;
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    diff_out("connect: done_or_in_progress=%d", r == 0 || errno == EINPROGRESS);
    struct pollfd p = { c, POLLOUT, 0 };
    CALL("poll", poll(&p, 1, 2000));
    show_revents("poll", p.revents);
    int err = -1;
    socklen_t el = sizeof err;
    getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el);
    diff_out("so_error=%s", diff_errname(err));
    CALL("connect again", connect(c, (struct sockaddr *)&a, sizeof a));
    close(c);
    close(l);
}

DIFF_CASE(io, nonblocking_connect_refused_reports_so_error)
{
    struct sockaddr_in a = closed_port();
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    errno = 0;
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    diff_out("connect: refused_or_in_progress=%d",
             r < 0 && (errno == EINPROGRESS || errno == ECONNREFUSED));
    struct pollfd p = { c, POLLOUT, 0 };
    CALL("poll", poll(&p, 1, 2000));
    diff_out("poll: err=%d", (p.revents & POLLERR) != 0);
    int err = -1;
    socklen_t el = sizeof err;
    getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el);
    diff_out("so_error=%s", diff_errname(err));
    close(c);
}

DIFF_CASE(io, connect_to_a_missing_unix_path_is_enoent)
{
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX, .sun_path = "/nonexistent/diff.sock" };
    CALL("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    close(c);
}

/* An abstract AF_UNIX listener with a backlog of 0 and one connection
 * already queued: the next blocking connect waits. */
static int full_unix_listener(struct sockaddr_un *a, int *first)
{
    *a = (struct sockaddr_un){ .sun_family = AF_UNIX };
    snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "diffio-%d", (int)getpid());
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)a, sizeof *a);
    listen(l, 0);
    *first = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(*first, (struct sockaddr *)a, sizeof *a);
    return l;
}

DIFF_CASE(io, unix_connect_to_full_backlog_waits_for_accept)
{
    struct sockaddr_un a;
    int first;
    int l = full_unix_listener(&a, &first);
    pid_t c = fork();
    if (c == 0) {
        diff_raw_sleep_ms(100);
        syscall(SYS_accept4, l, NULL, NULL, 0);
        diff_raw_sleep_ms(500);
        syscall(SYS_exit_group, 0);
    }
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    int64_t t0 = diff_now();
    CALL("connect", connect(s, (struct sockaddr *)&a, sizeof a));
    DIFF_TOOK("connect", t0, 50, 3000);
    reap(c);
}

DIFF_CASE(io, unix_connect_to_full_backlog_is_interrupted_by_a_signal)
{
    struct sockaddr_un a;
    int first;
    int l = full_unix_listener(&a, &first);
    handle(SIGALRM, 0);
    int64_t t0 = diff_now();   /* before the alarm, never after */
    /* Every 100 ms: a first alarm that comes before connect has begun to
     * wait (a slow start under a sanitizer) must not leave connect
     * waiting for ever, natively or not; the next one interrupts it. */
    struct itimerval it = { { 0, 100000 }, { 0, 100000 } }, off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &it, NULL);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CALL("connect", connect(s, (struct sockaddr *)&a, sizeof a));
    setitimer(ITIMER_REAL, &off, NULL);
    DIFF_TOOK("connect", t0, 50, 2000);
    diff_out("handler ran: %d", hits > 0);
    close(l);
}

DIFF_CASE(io, unix_connect_to_full_backlog_nonblocking_is_eagain)
{
    struct sockaddr_un a;
    int first;
    int l = full_unix_listener(&a, &first);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CALL("connect", connect(s, (struct sockaddr *)&a, sizeof a));
    close(l);
}

DIFF_CASE(io, unix_connect_to_full_backlog_with_sndtimeo_is_eagain)
{
    struct sockaddr_un a;
    int first;
    int l = full_unix_listener(&a, &first);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct timeval tv = { 0, 150000 };
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int64_t t0 = diff_now();
    CALL("connect", connect(s, (struct sockaddr *)&a, sizeof a));
    DIFF_TOOK("connect", t0, 100, 2000);
    close(l);
}

/* TCP listener with backlog 0 and one connection queued: the SYN of the
 * next connect is dropped and retransmitted after about a second. */
DIFF_CASE(io, tcp_connect_retry_after_eintr_waits_and_succeeds)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 0);
    int first = socket(AF_INET, SOCK_STREAM, 0);
    connect(first, (struct sockaddr *)&a, sizeof a);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    handle(SIGALRM, 0);
    diff_alarm_ms(100);
    CALL("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    int s = accept(l, NULL, NULL);
    int64_t t0 = diff_now();
    CALL("connect again", connect(c, (struct sockaddr *)&a, sizeof a));
    DIFF_TOOK("connect again", t0, 0, 4000);
    CALL("connect third", connect(c, (struct sockaddr *)&a, sizeof a));
    close(s);
    close(c);
    close(first);
    close(l);
}

DIFF_CASE(io, tcp_connect_with_sndtimeo_to_a_full_listener_is_einprogress)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 0);
    int first = socket(AF_INET, SOCK_STREAM, 0);
    connect(first, (struct sockaddr *)&a, sizeof a);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { 0, 150000 };
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int64_t t0 = diff_now();
    CALL("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    DIFF_TOOK("connect", t0, 100, 900);
    diff_nonblock("after connect", c);
    close(c);
    close(first);
    close(l);
}

/* ------------------------------------------------- socket timeouts */

DIFF_CASE(io, rcvtimeo_expires_with_eagain)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_rcvtimeo(sv[0], 0, 150000);
    char b[4];
    int64_t t0 = diff_now();
    CALL("recv", recv(sv[0], b, sizeof b, 0));
    DIFF_TOOK("recv", t0, 100, 1000);
    CALL("read", read(sv[0], b, sizeof b));
}

DIFF_CASE(io, rcvtimeo_negative_seconds_means_eagain_at_once)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_rcvtimeo(sv[0], -1, 0);
    struct timeval tv = { 9, 9 };
    socklen_t l = sizeof tv;
    getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &l);
    diff_out("readback=%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    char b[4];
    int64_t t0 = diff_now();
    CALL("recv", recv(sv[0], b, sizeof b, 0));
    DIFF_TOOK("recv", t0, -1, 500);
}

DIFF_CASE(io, sndtimeo_negative_seconds_makes_a_full_send_return_at_once)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct timeval tv = { -5, 0 };
    CALL("setsockopt(SO_SNDTIMEO)", setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
    static char big[1 << 20];
    int64_t t0 = diff_now();
    errno = 0;
    long r = send(sv[0], big, sizeof big, 0);
    diff_out("send: partial=%d errno=%s", r > 0 && r < (long)sizeof big, diff_errname(errno));
    CALL("send again", send(sv[0], big, sizeof big, 0));
    DIFF_TOOK("sends", t0, -1, 500);
}

DIFF_CASE(io, sndtimeo_negative_seconds_makes_a_waiting_connect_einprogress)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 0);
    int first = socket(AF_INET, SOCK_STREAM, 0);
    connect(first, (struct sockaddr *)&a, sizeof a);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { -1, 0 };
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int64_t t0 = diff_now();
    CALL("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    DIFF_TOOK("connect", t0, -1, 500);
    close(c);
    close(first);
    close(l);
}

DIFF_CASE(io, rcvtimeo_with_usec_out_of_range_is_edom)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_rcvtimeo(sv[0], 0, 1000000);
    set_rcvtimeo(sv[0], 0, -1);
}

DIFF_CASE(io, rcvtimeo_zero_means_wait_forever)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_rcvtimeo(sv[0], 0, 100000);
    set_rcvtimeo(sv[0], 0, 0);
    pid_t p = child_write_later(sv[1], "x", 300);
    char b[4];
    CALL("recv", recv(sv[0], b, sizeof b, 0));
    reap(p);
}

DIFF_CASE(io, rcvtimeo_too_short_optlen_is_einval)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int v = 1;
    CALL("setsockopt", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &v, sizeof v));
}

DIFF_CASE(io, sndtimeo_expires_on_a_full_socket)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int sz = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    struct timeval tv = { 0, 150000 };
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    static char big[1 << 20];
    int64_t t0 = diff_now();
    errno = 0;
    long r = send(sv[0], big, sizeof big, 0);
    diff_out("send: partial=%d errno=%s", r > 0 && r < (long)sizeof big,
             diff_errname(errno));
    DIFF_TOOK("send", t0, 100, 1500);
    errno = 0;
    r = send(sv[0], big, sizeof big, 0);
    diff_out("send again: ret=%ld errno=%s", r, diff_errname(errno));
}

DIFF_CASE(io, rcvtimeo_applies_to_read_too)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_rcvtimeo(sv[0], 0, 100000);
    char b[4];
    int64_t t0 = diff_now();
    CALL("read", read(sv[0], b, sizeof b));
    DIFF_TOOK("read", t0, 50, 1000);
}

/* ------------------------------------------------------------ recvmmsg */

static void mm_setup(struct mmsghdr *v, struct iovec *iov, char (*bufs)[16], int n)
{
    memset(v, 0, sizeof *v * (size_t)n);
    for (int k = 0; k < n; k++) {
        iov[k] = (struct iovec){ bufs[k], 16 };
        v[k].msg_hdr.msg_iov = &iov[k];
        v[k].msg_hdr.msg_iovlen = 1;
    }
}

DIFF_CASE(io, recvmmsg_with_invalid_timeout_nsec_is_einval)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    write(sv[1], "a", 1);
    write(sv[1], "b", 1);
    struct mmsghdr v[2];
    struct iovec iov[2];
    char bufs[2][16];
    mm_setup(v, iov, bufs, 2);
    struct timespec ts = { 0, 1000000000 };
    CALL("recvmmsg", recvmmsg(sv[0], v, 2, 0, &ts));
}

DIFF_CASE(io, recvmmsg_with_negative_timeout_is_einval)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    write(sv[1], "a", 1);
    struct mmsghdr v[1];
    struct iovec iov[1];
    char bufs[1][16];
    mm_setup(v, iov, bufs, 1);
    struct timespec ts = { -1, 0 };
    CALL("recvmmsg", recvmmsg(sv[0], v, 1, 0, &ts));
}

DIFF_CASE(io, recvmmsg_with_unreadable_timeout_is_efault)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    write(sv[1], "a", 1);
    struct mmsghdr v[1];
    struct iovec iov[1];
    char bufs[1][16];
    mm_setup(v, iov, bufs, 1);
    CALL("recvmmsg", recvmmsg(sv[0], v, 1, 0, BAD));
}

DIFF_CASE(io, recvmmsg_writes_the_remaining_time_back)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    write(sv[1], "a", 1);
    write(sv[1], "bc", 2);
    struct mmsghdr v[2];
    struct iovec iov[2];
    char bufs[2][16];
    mm_setup(v, iov, bufs, 2);
    struct timespec ts = { 5, 0 };
    CALL("recvmmsg", recvmmsg(sv[0], v, 2, 0, &ts));
    diff_out("lens=%u,%u", v[0].msg_len, v[1].msg_len);
    diff_out("remaining: %s", ts.tv_sec == 4 || (ts.tv_sec == 5 && ts.tv_nsec == 0)
                                  ? "about 5s" : "other");
}

DIFF_CASE(io, recvmmsg_waitforone_returns_after_the_first_message)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    pid_t p = child_write_later(sv[1], "late", 60);
    struct mmsghdr v[4];
    struct iovec iov[4];
    char bufs[4][16];
    mm_setup(v, iov, bufs, 4);
    CALL("recvmmsg", recvmmsg(sv[0], v, 4, MSG_WAITFORONE, NULL));
    diff_out("len=%u", v[0].msg_len);
    reap(p);
}

DIFF_CASE(io, recvmmsg_dontwait_on_empty_socket_is_eagain)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    struct mmsghdr v[2];
    struct iovec iov[2];
    char bufs[2][16];
    mm_setup(v, iov, bufs, 2);
    CALL("recvmmsg", recvmmsg(sv[0], v, 2, MSG_DONTWAIT, NULL));
}

DIFF_CASE(io, recvmmsg_waits_for_every_message)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    pid_t p = child_write_chunks(sv[1], "abc", 1, 30);
    struct mmsghdr v[3];
    struct iovec iov[3];
    char bufs[3][16];
    mm_setup(v, iov, bufs, 3);
    CALL("recvmmsg", recvmmsg(sv[0], v, 3, 0, NULL));
    reap(p);
}

DIFF_CASE(io, sendmmsg_sends_every_message)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    struct mmsghdr v[3];
    struct iovec iov[3];
    char bufs[3][16] = { "one", "two", "three" };
    mm_setup(v, iov, bufs, 3);
    for (int k = 0; k < 3; k++)
        iov[k].iov_len = strlen(bufs[k]);
    CALL("sendmmsg", sendmmsg(sv[0], v, 3, 0));
    char b[16];
    CALL("recv", recv(sv[1], b, sizeof b, 0));
    CALL("recv", recv(sv[1], b, sizeof b, 0));
    CALL("recv", recv(sv[1], b, sizeof b, 0));
}

/* --------------------------------------------------------------- EFAULT */

DIFF_CASE(io, readv_with_null_iov_on_a_socket_is_efault)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    write(sv[1], "x", 1);
    CALL("readv(NULL)", readv(sv[0], NULLV, 1));
}

DIFF_CASE(io, readv_with_null_iov_on_a_pipe_is_efault)
{
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    CALL("readv(NULL)", readv(p[0], NULLV, 1));
}

DIFF_CASE(io, readv_with_null_iov_on_an_empty_socket_is_efault)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    CALL("readv(NULL)", readv(sv[0], NULLV, 1));
}

DIFF_CASE(io, writev_with_unreadable_iov_array_is_efault)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    CALL("writev(bad)", writev(sv[0], BAD, 2));
}

DIFF_CASE(io, writev_with_unreadable_iov_array_on_a_pipe_is_efault)
{
    int p[2];
    pipe(p);
    CALL("writev(bad)", writev(p[1], BAD, 2));
}

DIFF_CASE(io, writev_with_bad_base_is_efault)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct iovec iov = { BAD, 4 };
    CALL("writev", writev(sv[0], &iov, 1));
}

DIFF_CASE(io, send_from_bad_buffer_is_efault)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    CALL("send", send(sv[0], BAD, 4, 0));
}

DIFF_CASE(io, write_from_bad_buffer_to_a_pipe_is_efault)
{
    int p[2];
    pipe(p);
    CALL("write", write(p[1], BAD, 4));
}

DIFF_CASE(io, read_into_bad_buffer_from_a_pipe_is_efault)
{
    int p[2];
    pipe(p);
    write(p[1], "abcd", 4);
    CALL("read", read(p[0], BAD, 4));
}

DIFF_CASE(io, recv_into_unwritable_buffer_after_waiting_is_efault)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t p = child_write_later(sv[1], "data", 60);
    CALL("recv", recv(sv[0], ro_page(), 4, 0));
    reap(p);
}

DIFF_CASE(io, read_into_unwritable_buffer_after_waiting_on_a_pipe_is_efault)
{
    int p[2];
    pipe(p);
    pid_t c = child_write_later(p[1], "data", 60);
    CALL("read", read(p[0], ro_page(), 4));
    reap(c);
}

DIFF_CASE(io, recvmsg_with_null_msghdr_is_efault)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    write(sv[1], "x", 1);
    CALL("recvmsg(NULL)", recvmsg(sv[0], NULLV, 0));
}

DIFF_CASE(io, sendmsg_with_null_msghdr_is_efault)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    CALL("sendmsg(NULL)", sendmsg(sv[0], NULLV, 0));
}

DIFF_CASE(io, sendmsg_with_unreadable_iov_is_efault)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct msghdr m = { .msg_iov = BAD, .msg_iovlen = 1 };
    CALL("sendmsg", sendmsg(sv[0], &m, 0));
}

DIFF_CASE(io, poll_with_unreadable_fds_is_efault)
{
    CALL("poll", poll(BAD, 1, 100));
}

DIFF_CASE(io, select_with_unreadable_read_set_is_efault)
{
    CALL("select", select(4, BAD, NULL, NULL, NULL));
}

DIFF_CASE(io, select_with_unreadable_write_set_and_timeout_is_efault)
{
    struct timeval tv = { 0, 100000 };
    CALL("select", select(4, NULL, BAD, NULL, &tv));
}

DIFF_CASE(io, epoll_wait_with_kernel_address_events_is_efault)
{
    int ep = epoll_create1(0);
    CALL("epoll_wait", epoll_wait(ep, KBAD, 1, 100));
}

DIFF_CASE(io, epoll_wait_with_bad_events_and_a_ready_fd_is_efault)
{
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    struct epoll_event e = { .events = EPOLLIN };
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
    CALL("epoll_wait", epoll_wait(ep, BAD, 1, 100));
}

DIFF_CASE(io, epoll_wait_with_bad_events_waits_until_something_is_ready)
{
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event e = { .events = EPOLLIN };
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
    pid_t c = child_write_later(p[1], "x", 60);
    CALL("epoll_wait", epoll_wait(ep, BAD, 1, 2000));
    reap(c);
}

/* ------------------------------------------------------- poll, select */

DIFF_CASE(io, poll_with_events_zero_reports_hangup_at_once)
{
    int p[2];
    pipe(p);
    close(p[1]);
    struct pollfd f = { p[0], 0, 0 };
    CALL("poll", poll(&f, 1, 1000));
    show_revents("poll", f.revents);
}

DIFF_CASE(io, poll_with_events_zero_reports_a_later_hangup)
{
    int p[2];
    pipe(p);
    struct later l = { .fd = p[1], .ms = 80, .close_it = 1 };
    pthread_t t = later(&l);
    struct pollfd f = { p[0], 0, 0 };
    int64_t t0 = diff_now();
    CALL("poll", poll(&f, 1, 2000));
    DIFF_TOOK("poll", t0, 40, 1000);
    show_revents("poll", f.revents);
    pthread_join(t, NULL);
}

DIFF_CASE(io, poll_with_events_zero_reports_a_later_socket_error)
{
    int c, s;
    tcp_pair(&c, &s);
    struct linger lg = { 1, 0 };
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct later l = { .fd = s, .ms = 80, .close_it = 1 };
    pthread_t t = later(&l);
    struct pollfd f = { c, 0, 0 };
    int64_t t0 = diff_now();
    CALL("poll", poll(&f, 1, 2000));
    DIFF_TOOK("poll", t0, 40, 1000);
    show_revents("poll", f.revents);
    pthread_join(t, NULL);
}

DIFF_CASE(io, poll_with_events_zero_and_data_waits_for_the_timeout)
{
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    struct pollfd f = { p[0], 0, 0 };
    int64_t t0 = diff_now();
    CALL("poll", poll(&f, 1, 150));
    DIFF_TOOK("poll", t0, 100, 1000);
    show_revents("poll", f.revents);
}

DIFF_CASE(io, poll_on_a_closed_fd_reports_pollnval)
{
    int p[2];
    pipe(p);
    close(p[0]);
    struct pollfd f = { p[0], POLLIN, 0 };
    CALL("poll", poll(&f, 1, 1000));
    show_revents("poll", f.revents);
}

DIFF_CASE(io, poll_skips_negative_fds)
{
    struct pollfd f = { -1, POLLIN, 0x7 };
    int64_t t0 = diff_now();
    CALL("poll", poll(&f, 1, 100));
    DIFF_TOOK("poll", t0, 50, 1000);
    show_revents("poll", f.revents);
}

DIFF_CASE(io, poll_with_nfds_above_rlimit_nofile_is_einval)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    nfds_t n = (nfds_t)rl.rlim_cur + 1;
    struct pollfd *f = calloc(n, sizeof *f);   /* readable: only n is wrong */
    for (nfds_t k = 0; k < n; k++)
        f[k] = (struct pollfd){ -1, POLLIN, 0 };
    CALL("poll", poll(f, n, 100));
    free(f);
}

DIFF_CASE(io, poll_timeout_zero_returns_at_once)
{
    int p[2];
    pipe(p);
    struct pollfd f = { p[0], POLLIN, 0 };
    CALL("poll", poll(&f, 1, 0));
}

DIFF_CASE(io, poll_negative_timeout_waits_for_data)
{
    int p[2];
    pipe(p);
    pid_t c = child_write_later(p[1], "x", 80);
    struct pollfd f = { p[0], POLLIN, 0 };
    int64_t t0 = diff_now();
    CALL("poll", poll(&f, 1, -1));
    DIFF_TOOK("poll", t0, 40, 2000);
    show_revents("poll", f.revents);
    reap(c);
}

DIFF_CASE(io, poll_timeout_expires_and_leaves_errno_alone)
{
    int p[2];
    pipe(p);
    struct pollfd f = { p[0], POLLIN, 0 };
    int64_t t0 = diff_now();
    CALL("poll", poll(&f, 1, 120));
    DIFF_TOOK("poll", t0, 90, 1000);
}

DIFF_CASE(io, poll_reports_pollrdhup_when_peer_shuts_down)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t c = fork();
    if (c == 0) {
        diff_raw_sleep_ms(60);
        syscall(SYS_shutdown, sv[1], SHUT_WR);
        syscall(SYS_exit_group, 0);
    }
    struct pollfd f = { sv[0], POLLRDHUP, 0 };
    CALL("poll", poll(&f, 1, 2000));
    diff_out("rdhup=%d", (f.revents & POLLRDHUP) != 0);
    reap(c);
}

DIFF_CASE(io, poll_interrupted_with_sa_restart_is_eintr)
{
    int p[2];
    pipe(p);
    handle(SIGALRM, SA_RESTART);
    diff_alarm_ms(100);
    struct pollfd f = { p[0], POLLIN, 0 };
    CALL("poll", poll(&f, 1, 2000));
    diff_out("hits=%d", (int)hits);
}

DIFF_CASE(io, ppoll_with_invalid_nsec_is_einval)
{
    int p[2];
    pipe(p);
    struct pollfd f = { p[0], POLLIN, 0 };
    struct timespec ts = { 0, 1000000000 };
    CALL("ppoll", ppoll(&f, 1, &ts, NULL));
}

DIFF_CASE(io, select_timeout_zero_returns_at_once)
{
    int p[2];
    pipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { 0, 0 };
    CALL("select", select(p[0] + 1, &r, NULL, NULL, &tv));
    diff_out("isset=%d", FD_ISSET(p[0], &r));
}

DIFF_CASE(io, select_negative_timeout_is_einval)
{
    int p[2];
    pipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { -1, 0 };
    CALL("select", select(p[0] + 1, &r, NULL, NULL, &tv));
}

DIFF_CASE(io, select_negative_nfds_is_einval)
{
    fd_set r;
    FD_ZERO(&r);
    struct timeval tv = { 0, 10000 };
    CALL("select", select(-1, &r, NULL, NULL, &tv));
}

DIFF_CASE(io, select_timeout_expires_and_writes_back_zero)
{
    int p[2];
    pipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { 0, 120000 };
    int64_t t0 = diff_now();
    CALL("select", select(p[0] + 1, &r, NULL, NULL, &tv));
    DIFF_TOOK("select", t0, 90, 1000);
    diff_out("isset=%d left=%ld.%06ld", FD_ISSET(p[0], &r), (long)tv.tv_sec,
             (long)tv.tv_usec);
}

DIFF_CASE(io, select_with_usec_above_a_second_is_accepted)
{
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { 0, 1500000 };
    CALL("select", select(p[0] + 1, &r, NULL, NULL, &tv));
    diff_out("left>1s=%d", tv.tv_sec >= 1);
}

DIFF_CASE(io, select_huge_timeout_waits_for_data)
{
    int p[2];
    pipe(p);
    pid_t c = child_write_later(p[1], "x", 80);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { 100000000, 0 };
    CALL("select", select(p[0] + 1, &r, NULL, NULL, &tv));
    diff_out("isset=%d left_large=%d", FD_ISSET(p[0], &r), tv.tv_sec > 99999000);
    reap(c);
}

DIFF_CASE(io, select_on_a_closed_fd_is_ebadf)
{
    int p[2];
    pipe(p);
    close(p[0]);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { 1, 0 };
    CALL("select", select(p[0] + 1, &r, NULL, NULL, &tv));
}

DIFF_CASE(io, select_with_nfds_beyond_fd_setsize_on_large_sets)
{
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    static fd_set big[4];
    memset(big, 0, sizeof big);
    FD_SET(p[0], &big[0]);
    struct timeval tv = { 1, 0 };
    CALL("select", select(FD_SETSIZE + 64, &big[0], NULL, NULL, &tv));
    diff_out("isset=%d", FD_ISSET(p[0], &big[0]));
}

DIFF_CASE(io, select_on_an_fd_above_fd_setsize_waits_for_a_writer_thread)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 1200 && rl.rlim_max >= 1200) {
        rl.rlim_cur = 1200;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int p[2];
    pipe(p);
    int hi = fcntl(p[0], F_DUPFD, 1100);
    diff_out("dup above FD_SETSIZE: %s", hi >= FD_SETSIZE ? "yes" : "no (limit)");
    if (hi < 0)
        return;
    struct later l = { .fd = p[1], .data = "x", .ms = 60 };
    pthread_t t = later(&l);
    static unsigned long sets[3][2048 / (8 * sizeof(unsigned long))];
    unsigned long *rd = sets[0];
    rd[hi / (8 * sizeof *rd)] |= 1UL << (hi % (8 * sizeof *rd));
    struct timeval tv = { 5, 0 };
    int64_t t0 = diff_now();
    CALL("select", select(hi + 1, (fd_set *)rd, NULL, NULL, &tv));
    DIFF_TOOK("select", t0, 30, 3000);
    diff_out("isset=%d", (int)((rd[hi / (8 * sizeof *rd)] >> (hi % (8 * sizeof *rd))) & 1));
    pthread_join(t, NULL);
}

DIFF_CASE(io, select_waits_for_a_writer_thread)
{
    int p[2];
    pipe(p);
    struct later l = { .fd = p[1], .data = "x", .ms = 60 };
    pthread_t t = later(&l);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    CALL("select", select(p[0] + 1, &r, NULL, NULL, NULL));
    diff_out("isset=%d", FD_ISSET(p[0], &r));
    pthread_join(t, NULL);
}

DIFF_CASE(io, select_interrupted_with_sa_restart_is_eintr)
{
    int p[2];
    pipe(p);
    handle(SIGALRM, SA_RESTART);
    diff_alarm_ms(100);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { 2, 0 };
    CALL("select", select(p[0] + 1, &r, NULL, NULL, &tv));
}

/* --------------------------------------------------------------- epoll */

DIFF_CASE(io, epoll_wait_with_maxevents_zero_is_einval)
{
    int ep = epoll_create1(0);
    struct epoll_event e;
    CALL("epoll_wait", epoll_wait(ep, &e, 0, 100));
}

DIFF_CASE(io, epoll_wait_with_negative_maxevents_is_einval)
{
    int ep = epoll_create1(0);
    struct epoll_event e;
    CALL("epoll_wait", epoll_wait(ep, &e, neg_one, 100));
}

DIFF_CASE(io, epoll_wait_on_a_non_epoll_fd_is_einval)
{
    int p[2];
    pipe(p);
    struct epoll_event e;
    CALL("epoll_wait", epoll_wait(p[0], &e, 1, 100));
}

DIFF_CASE(io, epoll_wait_on_a_closed_fd_is_ebadf)
{
    int ep = epoll_create1(0);
    close(ep);
    struct epoll_event e;
    CALL("epoll_wait", epoll_wait(ep, &e, 1, 100));
}

DIFF_CASE(io, epoll_wait_timeout_expires)
{
    int ep = epoll_create1(0);
    struct epoll_event e;
    int64_t t0 = diff_now();
    CALL("epoll_wait", epoll_wait(ep, &e, 1, 120));
    DIFF_TOOK("epoll_wait", t0, 90, 1000);
}

/* A mount change is reported (EPOLLPRI | EPOLLERR) to the first poll of
 * /proc/self/mounts that looks after it, and to no later one: an epoll
 * set holding it reports it once, to the program's epoll_wait, whether
 * the change comes before the wait or during it. Without the privilege
 * to mount, both runs say so. */
DIFF_CASE(io, epoll_wait_sees_a_mount_change_in_proc_mounts_once)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/diffmnt-%d", (int)getpid());
    mkdir(dir, 0700);
    int m = open("/proc/self/mounts", O_RDONLY);
    int ep = epoll_create1(0);
    struct epoll_event e = { .events = EPOLLPRI, .data.u32 = 5 };
    CALL("epoll_ctl", epoll_ctl(ep, EPOLL_CTL_ADD, m, &e));
    int go[2], done[2];
    if (pipe(go) != 0 || pipe(done) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        /* mount now (before the parent waits), umount 200 ms into its
         * second wait */
        char c = mount("none", dir, "tmpfs", 0, NULL) == 0 ? 'y' : 'n';
        if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(2);
        diff_raw_sleep_ms(200);
        _exit(umount(dir) == 0 ? 0 : 1);
    }
    char c = 'n';
    if (read(done[0], &c, 1) != 1)
        c = '?';
    diff_out("mounted: %c", c);
    for (int k = 0; k < 2; k++) {
        struct epoll_event got = { 0 };
        int64_t t0 = diff_now();
        int r = epoll_wait(ep, &got, 1, c == 'y' ? 3000 : 100);
        diff_out("%s: epoll_wait %d events %#x data %u", k ? "umount" : "mount", r,
                 r > 0 ? got.events : 0, r > 0 ? got.data.u32 : 0);
        DIFF_TOOK(k ? "umount wait" : "mount wait", t0, k && c == 'y' ? 100 : 0, 2500);
        CALL("again at once", epoll_wait(ep, &got, 1, 0));
        char buf[4096];
        lseek(m, 0, SEEK_SET);
        while (read(m, buf, sizeof buf) > 0)
            ;
        if (k == 0 && write(go[1], "g", 1) != 1)
            break;
    }
    diff_child_status("child", pid);
    umount(dir);
    rmdir(dir);
    close(ep);
    close(m);
}

DIFF_CASE(io, epoll_wait_negative_timeout_waits_for_data)
{
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event e = { .events = EPOLLIN, .data.u32 = 77 };
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
    pid_t c = child_write_later(p[1], "x", 80);
    struct epoll_event out = { 0 };
    CALL("epoll_wait", epoll_wait(ep, &out, 1, -1));
    diff_out("data=%u in=%d", out.data.u32, (out.events & EPOLLIN) != 0);
    reap(c);
}

DIFF_CASE(io, epoll_wait_interrupted_with_sa_restart_is_eintr)
{
    int ep = epoll_create1(0);
    handle(SIGALRM, SA_RESTART);
    diff_alarm_ms(100);
    struct epoll_event e;
    CALL("epoll_wait", epoll_wait(ep, &e, 1, 2000));
}

DIFF_CASE(io, epoll_pwait2_with_invalid_nsec_is_einval)
{
    int ep = epoll_create1(0);
    struct epoll_event e;
    struct timespec ts = { 0, -1 };
    CALL("epoll_pwait2", epoll_pwait2(ep, &e, 1, &ts, NULL));
}

DIFF_CASE(io, epoll_ctl_on_a_regular_file_is_eperm)
{
    int ep = epoll_create1(0);
    int f = open("/proc/self/exe", O_RDONLY);
    struct epoll_event e = { .events = EPOLLIN };
    CALL("epoll_ctl", epoll_ctl(ep, EPOLL_CTL_ADD, f, &e));
    close(f);
}

/* ------------------------------------------------------------- FIFOs */

static char fifo_path[64];

static void make_fifo(void)
{
    snprintf(fifo_path, sizeof fifo_path, "/tmp/diffio-fifo-%d", (int)getpid());
    unlink(fifo_path);
    mkfifo(fifo_path, 0600);
}

static void *open_writer_later(void *arg)
{
    (void)arg;
    sleep_ms(80);
    int fd = open(fifo_path, O_WRONLY);
    write(fd, "fifo", 4);
    close(fd);
    return NULL;
}

DIFF_CASE(io, fifo_open_for_reading_waits_for_a_writer_thread)
{
    make_fifo();
    pthread_t t;
    pthread_create(&t, NULL, open_writer_later, NULL);
    int64_t t0 = diff_now();
    errno = 0;
    int fd = open(fifo_path, O_RDONLY);
    diff_out("open(RDONLY): ok=%d errno=%s", fd >= 0, diff_errname(errno));
    DIFF_TOOK("open", t0, 40, 2000);
    char b[8] = { 0 };
    CALL("read", read(fd, b, 4));
    show_data("data", b, 4);
    pthread_join(t, NULL);
    close(fd);
    unlink(fifo_path);
}

static long reader_got;
static char reader_buf[8];

static void *open_reader_later(void *arg)
{
    (void)arg;
    sleep_ms(80);
    int fd = open(fifo_path, O_RDONLY);
    reader_got = read(fd, reader_buf, 4);
    close(fd);
    return NULL;
}

DIFF_CASE(io, fifo_open_for_writing_waits_for_a_reader_thread)
{
    make_fifo();
    pthread_t t;
    pthread_create(&t, NULL, open_reader_later, NULL);
    errno = 0;
    int fd = open(fifo_path, O_WRONLY);
    diff_out("open(WRONLY): ok=%d errno=%s", fd >= 0, diff_errname(errno));
    CALL("write", write(fd, "abcd", 4));
    close(fd);
    pthread_join(t, NULL);
    diff_out("reader: read=%ld \"%.4s\"", reader_got, reader_buf);
    unlink(fifo_path);
}

DIFF_CASE(io, fifo_open_for_writing_nonblocking_without_reader_is_enxio)
{
    make_fifo();
    CALL("open", open(fifo_path, O_WRONLY | O_NONBLOCK));
    unlink(fifo_path);
}

DIFF_CASE(io, fifo_open_for_reading_nonblocking_returns_at_once_and_reads_eof)
{
    make_fifo();
    errno = 0;
    int fd = open(fifo_path, O_RDONLY | O_NONBLOCK);
    diff_out("open: ok=%d errno=%s", fd >= 0, diff_errname(errno));
    char b[4];
    CALL("read", read(fd, b, sizeof b));
    diff_nonblock("fifo", fd);
    close(fd);
    unlink(fifo_path);
}

DIFF_CASE(io, fifo_open_read_write_never_blocks)
{
    make_fifo();
    errno = 0;
    int fd = open(fifo_path, O_RDWR);
    diff_out("open: ok=%d errno=%s", fd >= 0, diff_errname(errno));
    CALL("write", write(fd, "ab", 2));
    char b[4];
    CALL("read", read(fd, b, sizeof b));
    close(fd);
    unlink(fifo_path);
}

DIFF_CASE(io, fifo_open_for_reading_is_interrupted_by_a_signal)
{
    make_fifo();
    handle(SIGALRM, 0);
    diff_alarm_ms(100);
    CALL("open", open(fifo_path, O_RDONLY));
    diff_out("hits=%d", (int)hits);
    unlink(fifo_path);
}

DIFF_CASE(io, fifo_open_by_a_forked_writer_lets_the_reader_in)
{
    make_fifo();
    pid_t c = fork();
    if (c == 0) {
        diff_raw_sleep_ms(60);
        int fd = (int)syscall(SYS_openat, AT_FDCWD, fifo_path, O_WRONLY);
        raw_write(fd, "kid", 3);
        syscall(SYS_exit_group, 0);
    }
    errno = 0;
    int fd = open(fifo_path, O_RDONLY);
    diff_out("open: ok=%d errno=%s", fd >= 0, diff_errname(errno));
    char b[8] = { 0 };
    CALL("read", read(fd, b, 3));
    diff_nonblock("fifo", fd);
    reap(c);
    CALL("read at eof", read(fd, b, 3));
    close(fd);
    unlink(fifo_path);
}

/* ------------------------------------------------- errno after success */

DIFF_CASE(io, errno_is_kept_by_a_read_that_waited)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t p = child_write_later(sv[1], "x", 60);
    char b[4];
    errno = 1234;
    long r = read(sv[0], b, sizeof b);
    diff_out("read=%ld errno=%d", r, errno);
    reap(p);
}

DIFF_CASE(io, errno_is_kept_by_a_pipe_read_that_waited)
{
    int p[2];
    pipe(p);
    pid_t c = child_write_later(p[1], "x", 60);
    char b[4];
    errno = 1234;
    long r = read(p[0], b, sizeof b);
    diff_out("read=%ld errno=%d", r, errno);
    reap(c);
}

DIFF_CASE(io, errno_is_kept_by_a_send_that_waited)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int sz = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    pid_t c = fork();
    if (c == 0) {
        char b[4096];
        syscall(SYS_close, sv[0]);
        diff_raw_sleep_ms(60);
        while (syscall(SYS_read, sv[1], b, sizeof b) > 0)
            ;
        syscall(SYS_exit_group, 0);
    }
    close(sv[1]);
    static char big[256 * 1024];
    errno = 1234;
    long r = send(sv[0], big, sizeof big, 0);
    diff_out("send=%ld errno=%d", r, errno);
    close(sv[0]);
    reap(c);
}

DIFF_CASE(io, errno_is_kept_by_a_recvmsg_that_waited)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    pid_t p = child_write_later(sv[1], "dgram", 60);
    char b[16];
    struct iovec iov = { b, sizeof b };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    errno = 1234;
    long r = recvmsg(sv[0], &m, 0);
    diff_out("recvmsg=%ld errno=%d", r, errno);
    reap(p);
}

DIFF_CASE(io, errno_is_kept_by_a_poll_that_waited)
{
    int p[2];
    pipe(p);
    pid_t c = child_write_later(p[1], "x", 60);
    struct pollfd f = { p[0], POLLIN, 0 };
    errno = 1234;
    int r = poll(&f, 1, 2000);
    diff_out("poll=%d errno=%d", r, errno);
    reap(c);
}

DIFF_CASE(io, errno_is_kept_by_a_select_that_timed_out)
{
    int p[2];
    pipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { 0, 50000 };
    errno = 1234;
    int n = select(p[0] + 1, &r, NULL, NULL, &tv);
    diff_out("select=%d errno=%d", n, errno);
}

DIFF_CASE(io, errno_is_kept_by_an_epoll_wait_that_waited)
{
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event e = { .events = EPOLLIN };
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
    pid_t c = child_write_later(p[1], "x", 60);
    errno = 1234;
    int r = epoll_wait(ep, &e, 1, 2000);
    diff_out("epoll_wait=%d errno=%d", r, errno);
    reap(c);
}

DIFF_CASE(io, errno_is_kept_by_an_accept_that_waited)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 4);
    pid_t c = fork();
    if (c == 0) {
        diff_raw_sleep_ms(60);
        int s = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
        syscall(SYS_connect, s, &a, sizeof a);
        diff_raw_sleep_ms(200);
        syscall(SYS_exit_group, 0);
    }
    errno = 1234;
    int s = accept(l, NULL, NULL);
    diff_out("accept ok=%d errno=%d", s >= 0, errno);
    reap(c);
}

DIFF_CASE(io, errno_is_kept_by_a_connect_that_waited)
{
    struct sockaddr_un a;
    int first;
    int l = full_unix_listener(&a, &first);
    pid_t c = fork();
    if (c == 0) {
        diff_raw_sleep_ms(80);
        syscall(SYS_accept4, l, NULL, NULL, 0);
        diff_raw_sleep_ms(300);
        syscall(SYS_exit_group, 0);
    }
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    errno = 1234;
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    diff_out("connect=%d errno=%d", r, errno);
    reap(c);
}

DIFF_CASE(io, errno_is_kept_by_a_pipe_write_that_waited)
{
    int p[2];
    full_pipe(p);
    pid_t c = fork();
    if (c == 0) {
        char b[4096];
        diff_raw_sleep_ms(60);
        syscall(SYS_read, p[0], b, sizeof b);
        syscall(SYS_exit_group, 0);
    }
    errno = 1234;
    long r = write(p[1], "x", 1);
    diff_out("write=%ld errno=%d", r, errno);
    reap(c);
}

DIFF_CASE(io, errno_is_kept_by_a_recvmmsg_that_waited)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    pid_t p = child_write_later(sv[1], "d", 60);
    struct mmsghdr v[1];
    struct iovec iov[1];
    char bufs[1][16];
    mm_setup(v, iov, bufs, 1);
    errno = 1234;
    int r = recvmmsg(sv[0], v, 1, 0, NULL);
    diff_out("recvmmsg=%d errno=%d", r, errno);
    reap(p);
}

/* --------------------------------------- peers, shutdown, datagrams */

DIFF_CASE(io, read_from_a_closed_peer_is_eof)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    write(sv[1], "bye", 3);
    close(sv[1]);
    char b[8];
    CALL("read", read(sv[0], b, sizeof b));
    CALL("read", read(sv[0], b, sizeof b));
    CALL("recv", recv(sv[0], b, sizeof b, 0));
}

DIFF_CASE(io, send_to_a_closed_peer_is_epipe_and_raises_sigpipe)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    handle(SIGPIPE, 0);
    close(sv[1]);
    CALL("send", send(sv[0], "x", 1, 0));
    diff_out("hits=%d", (int)hits);
    CALL("write", write(sv[0], "x", 1));
    diff_out("hits=%d", (int)hits);
}

DIFF_CASE(io, send_nosignal_to_a_closed_peer_is_epipe_without_sigpipe)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    handle(SIGPIPE, 0);
    close(sv[1]);
    CALL("send", send(sv[0], "x", 1, MSG_NOSIGNAL));
    diff_out("hits=%d", (int)hits);
}

DIFF_CASE(io, tcp_write_after_peer_reset_is_econnreset_or_epipe)
{
    int c, s;
    tcp_pair(&c, &s);
    signal(SIGPIPE, SIG_IGN);
    struct linger lg = { 1, 0 };
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(s);
    diff_raw_sleep_ms(20);
    char b[4];
    CALL("read", read(c, b, sizeof b));
    CALL("write", write(c, "x", 1));
}

DIFF_CASE(io, blocked_reader_wakes_with_eof_when_peer_shuts_down)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t c = fork();
    if (c == 0) {
        diff_raw_sleep_ms(60);
        syscall(SYS_shutdown, sv[1], SHUT_WR);
        diff_raw_sleep_ms(200);
        syscall(SYS_exit_group, 0);
    }
    char b[4];
    CALL("recv", recv(sv[0], b, sizeof b, 0));
    reap(c);
}

DIFF_CASE(io, shutdown_read_makes_reads_return_eof)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    CALL("shutdown(RD)", shutdown(sv[0], SHUT_RD));
    char b[4];
    CALL("recv", recv(sv[0], b, sizeof b, 0));
}

DIFF_CASE(io, shutdown_write_makes_sends_fail_with_epipe)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    signal(SIGPIPE, SIG_IGN);
    CALL("shutdown(WR)", shutdown(sv[0], SHUT_WR));
    CALL("send", send(sv[0], "x", 1, 0));
    char b[4];
    CALL("peer recv", recv(sv[1], b, sizeof b, 0));
}

DIFF_CASE(io, shutdown_of_an_unconnected_socket_is_enotconn)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CALL("shutdown", shutdown(s, SHUT_RDWR));
    close(s);
}

DIFF_CASE(io, udp_recv_with_msg_trunc_returns_the_real_length)
{
    int a = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    bind(a, (struct sockaddr *)&sa, sizeof sa);
    getsockname(a, (struct sockaddr *)&sa, &sl);
    int b = socket(AF_INET, SOCK_DGRAM, 0);
    sendto(b, "0123456789", 10, 0, (struct sockaddr *)&sa, sizeof sa);
    char buf[4];
    CALL("recv(TRUNC)", recv(a, buf, sizeof buf, MSG_TRUNC));
    close(a);
    close(b);
}

DIFF_CASE(io, udp_recvfrom_waits_for_a_datagram_and_names_the_sender)
{
    int a = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    bind(a, (struct sockaddr *)&sa, sizeof sa);
    getsockname(a, (struct sockaddr *)&sa, &sl);
    int b = socket(AF_INET, SOCK_DGRAM, 0);
    connect(b, (struct sockaddr *)&sa, sizeof sa);
    pid_t c = child_write_later(b, "ping", 60);
    char buf[16];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    CALL("recvfrom", recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    diff_out("from loopback=%d len=%d", from.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
             (int)fl);
    reap(c);
}

DIFF_CASE(io, unix_dgram_recvmsg_sets_msg_trunc)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    write(sv[1], "0123456789", 10);
    char buf[4];
    struct iovec iov = { buf, sizeof buf };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    CALL("recvmsg", recvmsg(sv[0], &m, 0));
    diff_out("trunc=%d", (m.msg_flags & MSG_TRUNC) != 0);
}

DIFF_CASE(io, unix_dgram_read_discards_the_rest_of_a_datagram)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    write(sv[1], "0123456789", 10);
    write(sv[1], "ab", 2);
    char buf[4];
    CALL("read", read(sv[0], buf, sizeof buf));
    CALL("read", read(sv[0], buf, sizeof buf));
}

DIFF_CASE(io, zero_length_datagram_is_received_as_zero)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    pid_t c = child_write_later(sv[1], "", 60);
    char buf[4];
    CALL("recv", recv(sv[0], buf, sizeof buf, 0));
    reap(c);
}

DIFF_CASE(io, zero_length_read_on_a_socket_returns_zero_at_once)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    char buf[4];
    CALL("read(0)", read(sv[0], buf, 0));
}

DIFF_CASE(io, zero_length_recv_on_a_stream_socket_waits_for_data)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t c = child_write_later(sv[1], "x", 80);
    char buf[4];
    int64_t t0 = diff_now();
    CALL("recv(0)", recv(sv[0], buf, 0, 0));
    DIFF_TOOK("recv(0)", t0, 40, 2000);
    reap(c);
}

DIFF_CASE(io, tcp_out_of_band_byte_is_received_with_msg_oob)
{
    int c, s;
    tcp_pair(&c, &s);
    send(c, "ab", 2, 0);
    CALL("send(OOB)", send(c, "!", 1, MSG_OOB));
    diff_raw_sleep_ms(20);
    char b[8] = { 0 };
    CALL("recv(OOB)", recv(s, b, 1, MSG_OOB));
    show_data("oob", b, 1);
    CALL("recv", recv(s, b, sizeof b, 0));
    CALL("recv(OOB) again", recv(s, b, 1, MSG_OOB));
}

DIFF_CASE(io, recv_msg_oob_without_urgent_data_is_einval)
{
    int c, s;
    tcp_pair(&c, &s);
    char b[4];
    CALL("recv(OOB)", recv(s, b, 1, MSG_OOB));
}

DIFF_CASE(io, sendmsg_passes_a_descriptor_with_scm_rights)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int p[2];
    pipe(p);
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = { "F", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
    CALL("sendmsg", sendmsg(sv[0], &m, 0));
    close(p[1]);

    char c;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } r;
    memset(&r, 0, sizeof r);
    struct iovec riov = { &c, 1 };
    struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = r.buf,
                         .msg_controllen = sizeof r.buf };
    CALL("recvmsg", recvmsg(sv[1], &rm, 0));
    struct cmsghdr *rc = CMSG_FIRSTHDR(&rm);
    int got = -1;
    if (rc && rc->cmsg_type == SCM_RIGHTS)
        memcpy(&got, CMSG_DATA(rc), sizeof got);
    diff_out("got fd=%d", got >= 0);
    CALL("write via passed fd", write(got, "pass", 4));
    char b[8] = { 0 };
    CALL("read", read(p[0], b, sizeof b));
    show_data("data", b, 4);
}

DIFF_CASE(io, recvmsg_with_too_small_control_sets_msg_ctrunc)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = { "F", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    int zero = 0;
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &zero, sizeof(int));
    sendmsg(sv[0], &m, 0);
    char c;
    struct iovec riov = { &c, 1 };
    struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1 };
    CALL("recvmsg", recvmsg(sv[1], &rm, 0));
    diff_out("ctrunc=%d", (rm.msg_flags & MSG_CTRUNC) != 0);
}

DIFF_CASE(io, socket_writev_sends_every_iovec_in_order)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct iovec iov[3] = { { "one ", 4 }, { "two ", 4 }, { "three", 5 } };
    CALL("writev", writev(sv[0], iov, 3));
    char b[32] = { 0 };
    CALL("read", read(sv[1], b, sizeof b));
    show_data("data", b, 13);
}

DIFF_CASE(io, large_blocking_writev_to_a_socket_completes)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    pid_t c = fork();
    if (c == 0) {
        char b[8192];
        long total = 0, r;
        syscall(SYS_close, sv[0]);
        diff_raw_sleep_ms(30);
        while ((r = syscall(SYS_read, sv[1], b, sizeof b)) > 0)
            total += r;
        char msg[32];
        int n = snprintf(msg, sizeof msg, "child got %ld\n", total);
        raw_write(1, msg, (size_t)n);
        syscall(SYS_exit_group, 0);
    }
    close(sv[1]);
    static char a[300000], b[300000];
    struct iovec iov[2] = { { a, sizeof a }, { b, sizeof b } };
    CALL("writev", writev(sv[0], iov, 2));
    close(sv[0]);
    reap(c);
}

DIFF_CASE(io, socket_readv_returns_what_is_available)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    write(sv[1], "abcdef", 6);
    char a[4] = { 0 }, b[8] = { 0 };
    struct iovec iov[2] = { { a, 4 }, { b, 8 } };
    CALL("readv", readv(sv[0], iov, 2));
    show_data("a", a, 4);
    show_data("b", b, 2);
}

DIFF_CASE(io, pread_and_pwrite_use_the_offset_and_keep_the_position)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/diffio-file-%d", (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CALL("write", write(fd, "0123456789", 10));
    CALL("pwrite", pwrite(fd, "AB", 2, 3));
    char b[8] = { 0 };
    CALL("pread", pread(fd, b, 4, 2));
    show_data("pread", b, 4);
    CALL("lseek", lseek(fd, 0, SEEK_CUR));
    CALL("pread past end", pread(fd, b, 4, 100));
    CALL("pread negative", pread(fd, b, 4, neg_one));
    close(fd);
    unlink(path);
}

DIFF_CASE(io, pread_on_a_pipe_is_espipe)
{
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    char b[4];
    CALL("pread", pread(p[0], b, 1, 0));
    CALL("pwrite", pwrite(p[1], "x", 1, 0));
}

/* ------------------------------------------- sendfile, splice, tee */

static int temp_file(const char *content)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/diffio-sf-%d", (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    unlink(path);
    write(fd, content, strlen(content));
    lseek(fd, 0, SEEK_SET);
    return fd;
}

DIFF_CASE(io, sendfile_to_a_socket_moves_the_bytes)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int f = temp_file("file contents");
    off_t off = 5;
    CALL("sendfile", sendfile(sv[0], f, &off, 100));
    diff_out("off=%ld", (long)off);
    char b[32] = { 0 };
    CALL("read", read(sv[1], b, sizeof b));
    show_data("data", b, 8);
    close(f);
}

DIFF_CASE(io, sendfile_to_a_pipe_moves_the_bytes)
{
    int p[2];
    pipe(p);
    int f = temp_file("pipe payload");
    CALL("sendfile", sendfile(p[1], f, NULL, 100));
    CALL("lseek", lseek(f, 0, SEEK_CUR));
    char b[32] = { 0 };
    CALL("read", read(p[0], b, sizeof b));
    close(f);
}

DIFF_CASE(io, sendfile_large_to_a_socket_with_a_slow_reader_completes)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    char path[64];
    snprintf(path, sizeof path, "/tmp/diffio-big-%d", (int)getpid());
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    unlink(path);
    ftruncate(f, 1 << 20);
    pid_t c = fork();
    if (c == 0) {
        char b[8192];
        long total = 0, r;
        syscall(SYS_close, sv[0]);
        diff_raw_sleep_ms(30);
        while ((r = syscall(SYS_read, sv[1], b, sizeof b)) > 0)
            total += r;
        char msg[32];
        int n = snprintf(msg, sizeof msg, "child got %ld\n", total);
        raw_write(1, msg, (size_t)n);
        syscall(SYS_exit_group, 0);
    }
    close(sv[1]);
    long total = 0, r;
    while (total < (1 << 20) && (r = sendfile(sv[0], f, NULL, (1 << 20) - total)) > 0)
        total += r;
    diff_out("sent=%ld", total);
    close(sv[0]);
    reap(c);
    close(f);
}

DIFF_CASE(io, sendfile_from_a_pipe_is_einval)
{
    int p[2];
    pipe(p);
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    write(p[1], "x", 1);
    CALL("sendfile", sendfile(sv[0], p[0], NULL, 1));
}

DIFF_CASE(io, splice_moves_bytes_from_a_pipe_to_a_socket)
{
    int p[2];
    pipe(p);
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    write(p[1], "spliced", 7);
    CALL("splice", splice(p[0], NULL, sv[0], NULL, 100, 0));
    char b[16] = { 0 };
    CALL("read", read(sv[1], b, sizeof b));
    show_data("data", b, 7);
}

DIFF_CASE(io, splice_from_an_empty_pipe_waits_for_a_writer)
{
    int p[2], q[2];
    pipe(p);
    pipe(q);
    pid_t c = child_write_later(p[1], "later", 60);
    int64_t t0 = diff_now();
    CALL("splice", splice(p[0], NULL, q[1], NULL, 100, 0));
    DIFF_TOOK("splice", t0, 30, 2000);
    reap(c);
}

DIFF_CASE(io, splice_nonblock_from_an_empty_pipe_is_eagain)
{
    int p[2], q[2];
    pipe(p);
    pipe(q);
    CALL("splice", splice(p[0], NULL, q[1], NULL, 100, SPLICE_F_NONBLOCK));
}

DIFF_CASE(io, splice_between_two_files_is_einval)
{
    int f = temp_file("abc"), g = temp_file("");
    CALL("splice", splice(f, NULL, g, NULL, 3, 0));
    close(f);
    close(g);
}

DIFF_CASE(io, splice_with_offset_on_a_pipe_is_espipe)
{
    int p[2];
    pipe(p);
    int f = temp_file("");
    write(p[1], "x", 1);
    loff_t off = 0;
    CALL("splice", splice(p[0], &off, f, NULL, 1, 0));
    close(f);
}

DIFF_CASE(io, tee_duplicates_pipe_data)
{
    int p[2], q[2];
    pipe(p);
    pipe(q);
    write(p[1], "teedata", 7);
    CALL("tee", tee(p[0], q[1], 100, 0));
    char b[16] = { 0 };
    CALL("read copy", read(q[0], b, sizeof b));
    CALL("read original", read(p[0], b, sizeof b));
    show_data("data", b, 7);
}

DIFF_CASE(io, tee_from_an_empty_pipe_waits_for_a_writer)
{
    int p[2], q[2];
    pipe(p);
    pipe(q);
    pid_t c = child_write_later(p[1], "later", 60);
    CALL("tee", tee(p[0], q[1], 100, 0));
    reap(c);
}

DIFF_CASE(io, splice_from_an_empty_pipe_waits_for_a_writer_thread)
{
    int p[2], q[2];
    pipe(p);
    pipe(q);
    struct later l = { .fd = p[1], .data = "thread", .ms = 60 };
    pthread_t t = later(&l);
    int64_t t0 = diff_now();
    CALL("splice", splice(p[0], NULL, q[1], NULL, 100, 0));
    DIFF_TOOK("splice", t0, 30, 2000);
    char b[16] = { 0 };
    CALL("read", read(q[0], b, sizeof b));
    show_data("data", b, 6);
    pthread_join(t, NULL);
}

DIFF_CASE(io, splice_from_a_socket_waits_for_a_writer_thread)
{
    int sv[2], q[2];
    unix_pair(SOCK_STREAM, sv);
    pipe(q);
    struct later l = { .fd = sv[1], .data = "sock", .ms = 60 };
    pthread_t t = later(&l);
    errno = 0;
    CALL("splice", splice(sv[0], NULL, q[1], NULL, 100, 0));
    pthread_join(t, NULL);
}

static void *drain_later(void *arg)
{
    int fd = *(int *)arg;
    char b[65536];
    sleep_ms(60);
    while (recv(fd, b, sizeof b, MSG_DONTWAIT) > 0)
        ;
    return NULL;
}

DIFF_CASE(io, splice_to_a_full_socket_waits_for_a_reader_thread)
{
    int sv[2], p[2];
    unix_pair(SOCK_STREAM, sv);
    pipe(p);
    static char big[1 << 20];
    send(sv[0], big, sizeof big, MSG_DONTWAIT);
    write(p[1], "abc", 3);
    pthread_t t;
    pthread_create(&t, NULL, drain_later, &sv[1]);
    int64_t t0 = diff_now();
    CALL("splice", splice(p[0], NULL, sv[0], NULL, 3, 0));
    DIFF_TOOK("splice", t0, 30, 2000);
    diff_nonblock("socket", sv[0]);
    pthread_join(t, NULL);
}

DIFF_CASE(io, tee_from_an_empty_pipe_waits_for_a_writer_thread)
{
    int p[2], q[2];
    pipe(p);
    pipe(q);
    struct later l = { .fd = p[1], .data = "teed", .ms = 60 };
    pthread_t t = later(&l);
    CALL("tee", tee(p[0], q[1], 100, 0));
    pthread_join(t, NULL);
}

DIFF_CASE(io, splice_interrupted_without_sa_restart_is_eintr)
{
    int p[2], q[2];
    pipe(p);
    pipe(q);
    handle(SIGALRM, 0);
    diff_alarm_ms(80);
    CALL("splice", splice(p[0], NULL, q[1], NULL, 100, 0));
    diff_out("hits=%d", (int)hits);
}

/* ------------------------------------------------------- accept */

DIFF_CASE(io, accept4_with_nonblock_and_cloexec_sets_both)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 4);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&a, sizeof a);
    int s = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    diff_out("accept4 ok=%d", s >= 0);
    diff_nonblock("accepted", s);
    diff_out("cloexec=%d", (fcntl(s, F_GETFD) & FD_CLOEXEC) != 0);
    char b[4];
    CALL("recv", recv(s, b, sizeof b, 0));
    close(s);
    close(c);
    close(l);
}

DIFF_CASE(io, accept4_with_invalid_flags_is_einval)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 4);
    CALL("accept4", accept4(l, NULL, NULL, 0x1));
    close(l);
}

DIFF_CASE(io, accept_on_a_non_listening_socket_is_einval)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CALL("accept", accept(s, NULL, NULL));
    diff_nonblock("after", s);
    close(s);
}

DIFF_CASE(io, accept_on_a_pipe_is_enotsock)
{
    int p[2];
    pipe(p);
    CALL("accept", accept(p[0], NULL, NULL));
}

DIFF_CASE(io, accept_interrupted_with_sa_restart_keeps_waiting)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 4);
    handle(SIGALRM, SA_RESTART);
    diff_alarm_ms(50);
    pid_t c = fork();
    if (c == 0) {
        diff_raw_sleep_ms(200);
        int s = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
        syscall(SYS_connect, s, &a, sizeof a);
        diff_raw_sleep_ms(200);
        syscall(SYS_exit_group, 0);
    }
    errno = 0;
    int s = accept(l, NULL, NULL);
    diff_out("accept ok=%d errno=%s hits=%d", s >= 0, diff_errname(errno), (int)hits);
    reap(c);
}

DIFF_CASE(io, accept_interrupted_without_sa_restart_is_eintr)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 4);
    handle(SIGALRM, 0);
    diff_alarm_ms(80);
    CALL("accept", accept(l, NULL, NULL));
    close(l);
}

/* ------------------------------------------------------ miscellany */

DIFF_CASE(io, send_on_an_unconnected_stream_socket_is_enotconn_or_epipe)
{
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CALL("send", send(s, "x", 1, 0));
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    CALL("send unix", send(u, "x", 1, 0));
    close(s);
    close(u);
}

DIFF_CASE(io, recv_on_an_unconnected_stream_socket_is_enotconn)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    char b[4];
    CALL("recv", recv(s, b, sizeof b, 0));
    close(s);
}

DIFF_CASE(io, recv_on_a_listening_socket_is_enotconn)
{
    struct sockaddr_in a;
    int l = tcp_listener(&a, 4);
    char b[4];
    CALL("recv", recv(l, b, sizeof b, 0));
    close(l);
}

DIFF_CASE(io, recv_on_a_pipe_is_enotsock)
{
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    char b[4];
    CALL("recv", recv(p[0], b, sizeof b, 0));
}

DIFF_CASE(io, send_dontwait_on_a_full_socket_is_eagain)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    static char big[1 << 20];
    errno = 0;
    long r = send(sv[0], big, sizeof big, MSG_DONTWAIT);
    diff_out("first: partial=%d", r > 0 && r < (long)sizeof big);
    CALL("send", send(sv[0], big, sizeof big, MSG_DONTWAIT));
}

DIFF_CASE(io, user_nonblocking_socket_read_is_eagain)
{
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    char b[4];
    CALL("read", read(sv[0], b, sizeof b));
}

DIFF_CASE(io, user_nonblocking_pipe_read_is_eagain)
{
    int p[2];
    pipe2(p, O_NONBLOCK);
    char b[4];
    CALL("read", read(p[0], b, sizeof b));
    CALL("write(0)", write(p[1], b, 0));
}

DIFF_CASE(io, sendto_with_an_address_on_a_connected_stream_socket_is_eisconn)
{
    int c, s;
    tcp_pair(&c, &s);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CALL("sendto", sendto(c, "x", 1, 0, (struct sockaddr *)&a, sizeof a));
}

DIFF_CASE(io, udp_send_without_destination_is_edestaddrreq)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CALL("send", send(s, "x", 1, 0));
    close(s);
}

DIFF_CASE(io, unix_dgram_send_to_a_full_peer_waits_for_the_reader)
{
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    int n = 0;
    while (send(sv[0], "x", 1, MSG_DONTWAIT) == 1)
        n++;
    pid_t c = fork();
    if (c == 0) {
        char b[4];
        diff_raw_sleep_ms(80);
        while (syscall(SYS_recvfrom, sv[1], b, sizeof b, MSG_DONTWAIT, NULL, NULL) >= 0)
            ;
        syscall(SYS_exit_group, 0);
    }
    int64_t t0 = diff_now();
    CALL("send", send(sv[0], "y", 1, 0));
    DIFF_TOOK("send", t0, 40, 2000);
    reap(c);
}

/* MSG_ERRQUEUE reads the socket's error queue, which never waits: empty,
 * it says EAGAIN at once on a blocking socket, however readable its data
 * queue is (LTP's recv01, recvfrom01). */
DIFF_CASE(io, msg_errqueue_on_a_readable_socket_says_eagain_at_once)
{
    int port;
    int l = diff_tcp_listener(&port);
    int c = diff_tcp_connect(port);
    int s = accept(l, NULL, NULL);
    CALL("send", send(s, "data", 4, 0));
    usleep(20000);
    char buf[16];
    int64_t t0 = diff_now();
    CALL("recv MSG_ERRQUEUE", recv(c, buf, sizeof buf, MSG_ERRQUEUE));
    CALL("recvfrom MSG_ERRQUEUE", recvfrom(c, buf, sizeof buf, MSG_ERRQUEUE, NULL, NULL));
    struct iovec iov = { buf, sizeof buf };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    CALL("recvmsg MSG_ERRQUEUE", recvmsg(c, &m, MSG_ERRQUEUE));
    DIFF_TOOK("the three", t0, -1, 1000);
    CALL("recv", recv(c, buf, sizeof buf, 0));
    close(s);
    close(c);
    close(l);
}

/* syscall(SYS_select) with a timeout the process cannot read: the kernel
 * says EFAULT (libc's select would fault reading it; LTP select03). */
DIFF_CASE(io, syscall_select_with_an_unreadable_timeout_is_efault)
{
    int p[2];
    if (pipe(p) != 0)
        return;
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    CALL("syscall(SYS_select)", syscall(SYS_select, p[0] + 1, &r, NULL, NULL, (void *)8));
    close(p[0]);
    close(p[1]);
}

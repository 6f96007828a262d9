/*
 * legacy_http.c - a deliberately old-fashioned thread-per-connection HTTP/1.1
 * server, the first "legacy daemon" of the libgreen speedup demo.
 *
 * It is what a C programmer wrote before event loops were common: the main
 * thread blocks in accept(), every connection gets its own detached pthread,
 * and that thread blocks in read() and write() until the client goes away.
 * Nothing here knows about libgreen, and the binary is never linked to it:
 * the demo runs it once natively and once under LD_PRELOAD=libgreen.so and
 * compares the two.
 *
 * Usage:
 *   legacy_http [--port P] [--latency-us N] [--work-us N | --work-iters N]
 *               [--static DIR] [--body-size N] [--calibrate]
 *
 *   --port P        TCP port on 127.0.0.1 (default 8080; 0 = pick a free one)
 *   --latency-us N  sleep N microseconds before each response, standing in
 *                   for a slow backend (database, upstream service)
 *   --work-us N     compute for about N microseconds of CPU before each
 *                   response (after --latency-us), standing in for a
 *                   CPU-heavy request: a serial xorshift chain the compiler
 *                   cannot fold or drop, run for a fixed iteration count that
 *                   is calibrated once at start-up against the thread's CPU
 *                   clock (best of several rounds, so time spent waiting for
 *                   a core is not counted). No syscall per request.
 *   --work-iters N  the same loop with an exact iteration count, so that
 *                   several runs do identical work (demo/speedup calibrates
 *                   once and passes this to every run)
 *   --calibrate     print "work_iters=N" (N for --work-us) and exit
 *   --static DIR    answer GET/HEAD /path with the regular file DIR/path,
 *                   sent with sendfile(); 404 when there is none
 *   --body-size N   size of the generated body when --static is not given
 *                   (default 128 bytes)
 *
 * Once listening it prints "listening on PORT" on stdout (flushed), so a
 * driver that passed --port 0 learns the port.
 *
 * Protocol notes: requests may arrive split over several reads or several at
 * once (pipelined); each connection keeps one buffer and parses complete
 * heads out of it. HTTP/1.1 is keep-alive unless the request says
 * "Connection: close"; HTTP/1.0 closes unless it says "keep-alive". Request
 * bodies (Content-Length) are read and discarded. Chunked request bodies are
 * not supported (501). The listener binds 127.0.0.1 only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define REQ_BUF_SIZE 16384  /* largest request head we accept */
#define MAX_BODY_SIZE (64 * 1024 * 1024)

/* Settings from the command line, read-only once main() starts accepting. */
static struct {
    int port;
    long latency_us;
    long work_us;         /* --work-us, turned into work_iters at start-up */
    long long work_iters; /* busy-loop iterations per request, 0 = none */
    int calibrate;        /* --calibrate: print work_iters and exit */
    const char *static_dir;
    size_t body_size;
} opt = { .port = 8080, .latency_us = 0, .static_dir = NULL, .body_size = 128 };

/* Every request's work result is folded in here, so the loop has an
 * observable effect and cannot be removed. Relaxed: nobody reads it. */
static _Atomic uint64_t work_sink;

/* The generated body, built once at start-up and shared by every thread. */
static char *gen_body;

/* One parsed request head. */
struct request {
    char method[16];
    char path[1024];
    int minor;            /* HTTP/1.<minor> */
    int keep_alive;       /* 1 when the connection stays open afterwards */
    int chunked;          /* Transfer-Encoding: chunked was given */
    size_t head_len;      /* bytes up to and including the blank line */
    size_t body_len;      /* Content-Length, 0 when absent */
    int clen_seen;        /* a Content-Length header was given */
};

/* Per-connection state: the socket and the bytes read but not yet parsed. */
struct conn {
    int fd;
    int peer_closed;             /* read returned 0 or failed */
    size_t len;
    char buf[REQ_BUF_SIZE + 1];  /* +1 keeps a NUL after the data */
};

/* ---- small I/O helpers ------------------------------------------------ */

/* Write all of buf, retrying partial writes and EINTR. 0 on success. */
static int write_all(int fd, const void *buf, size_t len, int flags)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, flags | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read more bytes into the connection buffer. >0 bytes read, 0 EOF, -1 error. */
static ssize_t conn_fill(struct conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->len, REQ_BUF_SIZE - c->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            c->peer_closed = 1;
        if (n > 0) {
            c->len += (size_t)n;
            c->buf[c->len] = '\0';
        }
        return n;
    }
}

/* Drop the first n buffered bytes (a parsed request), keeping pipelined ones. */
static void conn_consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->buf[c->len] = '\0';
}

/* Discard a request body of len bytes, part of which may be buffered. */
static int conn_skip_body(struct conn *c, size_t len)
{
    while (len > 0) {
        if (c->len == 0 && conn_fill(c) <= 0)
            return -1;
        size_t take = c->len < len ? c->len : len;
        conn_consume(c, take);
        len -= take;
    }
    return 0;
}

/* ---- request parsing -------------------------------------------------- */

/* Does the header line [p, end) have the name `name` (case-insensitive)?
 * On success *value points at the value with leading blanks skipped. */
static int header_is(const char *p, const char *end, const char *name,
                     const char **value)
{
    size_t n = strlen(name);
    if ((size_t)(end - p) <= n || strncasecmp(p, name, n) != 0 || p[n] != ':')
        return 0;
    p += n + 1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    *value = p;
    return 1;
}

/* Case-insensitive search for a token in the header value [v, end). */
static int value_has(const char *v, const char *end, const char *token)
{
    size_t n = strlen(token);
    for (; v + n <= end; v++)
        if (strncasecmp(v, token, n) == 0)
            return 1;
    return 0;
}

/* Parse "METHOD SP PATH SP HTTP/1.x". 0 on success, -1 if malformed. */
static int parse_request_line(const char *p, const char *eol, struct request *r)
{
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2)
        return -1;
    size_t mlen = (size_t)(sp1 - p), plen = (size_t)(sp2 - sp1 - 1);
    if (mlen == 0 || mlen >= sizeof r->method || plen == 0 || plen >= sizeof r->path)
        return -1;
    if (eol - sp2 - 1 != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return -1;
    memcpy(r->method, p, mlen);
    r->method[mlen] = '\0';
    memcpy(r->path, sp1 + 1, plen);
    r->path[plen] = '\0';
    r->minor = sp2[8] - '0';
    if (r->minor < 0 || r->minor > 9)
        return -1;
    r->keep_alive = r->minor >= 1;
    return 0;
}

/* Apply one header line [p, eol) to the request. -1 if it is malformed. */
static int parse_header(const char *p, const char *eol, struct request *r)
{
    const char *v;
    if (header_is(p, eol, "Connection", &v)) {
        if (value_has(v, eol, "close"))
            r->keep_alive = 0;
        else if (value_has(v, eol, "keep-alive"))
            r->keep_alive = 1;
    } else if (header_is(p, eol, "Content-Length", &v)) {
        char *e;
        errno = 0;
        unsigned long long n = strtoull(v, &e, 10);
        if (e == v || errno || n > MAX_BODY_SIZE)
            return -1;
        if (r->clen_seen && r->body_len != (size_t)n)
            return -1;   /* conflicting lengths: request smuggling, refuse */
        r->body_len = (size_t)n;
        r->clen_seen = 1;
    } else if (header_is(p, eol, "Transfer-Encoding", &v)) {
        r->chunked = value_has(v, eol, "chunked");
    }
    return 0;
}

/* Parse the head at the start of buf (NUL-terminated, len bytes).
 * 1 = complete head parsed into *r, 0 = need more bytes, -1 = malformed. */
static int parse_request(const char *buf, size_t len, struct request *r)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    memset(r, 0, sizeof *r);
    r->head_len = (size_t)(end - buf) + 4;
    const char *p = buf, *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
    if (parse_request_line(p, eol, r) < 0)
        return -1;
    for (p = eol + 2; p < end + 2; p = eol + 2) {
        eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        if (parse_header(p, eol, r) < 0)
            return -1;
    }
    return 1;
}

/* ---- responses -------------------------------------------------------- */

/* Send a status line and headers; with_more hints that a body follows. */
static int send_head(int fd, int status, const char *reason, size_t clen,
                     int keep_alive, int with_more)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n"
                     "%s"
                     "\r\n",
                     status, reason, clen,
                     keep_alive ? "" : "Connection: close\r\n");
    return write_all(fd, head, (size_t)n, with_more ? MSG_MORE : 0);
}

/* A short error answer; the connection is closed afterwards. */
static void send_error(int fd, int status, const char *reason)
{
    send_head(fd, status, reason, 0, 0, 0);
}

/* The generated answer: head and body in one writev, one syscall. */
static int send_generated(int fd, const struct request *r)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n"
                     "%s"
                     "\r\n",
                     opt.body_size, r->keep_alive ? "" : "Connection: close\r\n");
    int is_head = strcmp(r->method, "HEAD") == 0;
    struct iovec iov[2] = {
        { .iov_base = head, .iov_len = (size_t)n },
        { .iov_base = gen_body, .iov_len = is_head ? 0 : opt.body_size },
    };
    size_t total = iov[0].iov_len + iov[1].iov_len;
    ssize_t w;
    do
        w = writev(fd, iov, 2);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return -1;
    if ((size_t)w == total)
        return 0;
    /* Partial write (large body, full socket buffer): finish the rest. */
    if ((size_t)w < iov[0].iov_len) {
        if (write_all(fd, head + w, iov[0].iov_len - (size_t)w, 0) < 0)
            return -1;
        w = (ssize_t)iov[0].iov_len;
    }
    size_t off = (size_t)w - iov[0].iov_len;
    return write_all(fd, gen_body + off, iov[1].iov_len - off, 0);
}

/* Copy a whole file to the socket with sendfile(). */
static int sendfile_all(int sock, int file, size_t size)
{
    off_t off = 0;
    while ((size_t)off < size) {
        ssize_t n = sendfile(sock, file, &off, size - (size_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
    }
    return 0;
}

/* Open DIR/path for a static request; -1 with *status set when impossible. */
static int open_static(const char *path, struct stat *st, int *status)
{
    char full[PATH_MAX];
    size_t plen = strcspn(path, "?#");
    *status = 404;
    if (path[0] != '/' || strstr(path, "..") != NULL) {
        *status = 400;
        return -1;
    }
    if (snprintf(full, sizeof full, "%s%.*s", opt.static_dir, (int)plen, path)
        >= (int)sizeof full)
        return -1;
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Static mode: GET/HEAD a regular file under --static. */
static int send_static(int fd, const struct request *r)
{
    int is_head = strcmp(r->method, "HEAD") == 0;
    if (!is_head && strcmp(r->method, "GET") != 0)
        return send_head(fd, 405, "Method Not Allowed", 0, r->keep_alive, 0);
    struct stat st;
    int status;
    int file = open_static(r->path, &st, &status);
    if (file < 0)
        return send_head(fd, status, status == 404 ? "Not Found" : "Bad Request",
                         0, r->keep_alive, 0);
    size_t size = (size_t)st.st_size;
    int rc = send_head(fd, 200, "OK", size, r->keep_alive, !is_head && size > 0);
    if (rc == 0 && !is_head)
        rc = sendfile_all(fd, file, size);
    close(file);
    return rc;
}

/* The simulated backend: block this thread for --latency-us. */
static void simulate_latency(void)
{
    struct timespec ts = {
        .tv_sec = opt.latency_us / 1000000,
        .tv_nsec = (opt.latency_us % 1000000) * 1000,
    };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- CPU-heavy requests (--work-us) ------------------------------------ */

/* The work: a serial xorshift64 chain. Each step depends on the previous one,
 * so it can be neither vectorised nor computed in closed form, and the result
 * reaches work_sink, so it cannot be dropped. About 2 ns per iteration on
 * the 2-core x86-64 development machine (3 dependent ALU steps). */
static uint64_t work_loop(uint64_t x, long long iters)
{
    x |= 1;
    for (long long i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

/* CPU time of the calling thread in nanoseconds. */
static long long thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Iterations per microsecond of this thread's CPU time: the best of 12
 * rounds of at least 2 ms each, so a round disturbed by an interrupt or a
 * busy sibling core does not lower the figure. The thread CPU clock does not
 * run while the thread waits for a core. */
static double work_calibrate(void)
{
    long long iters = 1 << 16;
    double best = 0;
    for (int round = 0; round < 12; round++) {
        long long t0 = thread_cpu_ns();
        atomic_fetch_xor_explicit(&work_sink, work_loop((uint64_t)t0, iters),
                                  memory_order_relaxed);
        long long dt = thread_cpu_ns() - t0;
        if (dt < 2000000 && iters < (1LL << 40)) {  /* too short: grow, retry */
            iters *= 2;
            round--;
            continue;
        }
        double per_us = (double)iters * 1000.0 / (double)(dt > 0 ? dt : 1);
        if (per_us > best)
            best = per_us;
    }
    return best;
}

/* The request's CPU work: opt.work_iters steps, seeded from the request so
 * that no two requests compute the same thing. */
static void do_work(const struct conn *c)
{
    static _Atomic uint64_t seq;
    uint64_t seed = atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed) ^
                    ((uint64_t)c->fd << 32);
    atomic_fetch_xor_explicit(&work_sink, work_loop(seed, opt.work_iters),
                              memory_order_relaxed);
}

/* ---- one connection --------------------------------------------------- */

/* Serve one parsed request. 0 to keep the connection, -1 to close it. */
static int serve_request(struct conn *c, struct request *r)
{
    if (r->chunked) {
        send_error(c->fd, 501, "Not Implemented");
        return -1;
    }
    conn_consume(c, r->head_len);
    if (conn_skip_body(c, r->body_len) < 0)
        return -1;
    if (opt.latency_us > 0)
        simulate_latency();
    if (opt.work_iters > 0)
        do_work(c);
    int rc = opt.static_dir ? send_static(c->fd, r) : send_generated(c->fd, r);
    return rc == 0 && r->keep_alive ? 0 : -1;
}

/* Read, parse and answer requests until the client closes or asks to. */
static void serve_connection(struct conn *c)
{
    struct request r;
    for (;;) {
        int p = parse_request(c->buf, c->len, &r);
        if (p < 0) {
            send_error(c->fd, 400, "Bad Request");
            return;
        }
        if (p > 0) {
            if (serve_request(c, &r) < 0)
                return;
            continue;
        }
        if (c->len == REQ_BUF_SIZE) {
            send_error(c->fd, 431, "Request Header Fields Too Large");
            return;
        }
        if (conn_fill(c) <= 0)
            return;
    }
}

/* We close first (Connection: close, an error): closing a socket with
 * unread input makes the kernel send a reset, which can destroy the answer
 * before the client has read it. Shut down our side and read until the
 * client closes (at most 1 s and 1 MiB), as HTTP servers do. */
static void lingering_close(struct conn *c)
{
    struct timeval tv = { .tv_sec = 1 };
    shutdown(c->fd, SHUT_WR);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (size_t total = 0; total < (1u << 20);) {
        ssize_t n = read(c->fd, c->buf, REQ_BUF_SIZE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

/* Thread body: own the connection from accept to close. */
static void *connection_thread(void *arg)
{
    struct conn *c = arg;
    serve_connection(c);
    if (!c->peer_closed)
        lingering_close(c);
    close(c->fd);
    free(c);
    return NULL;
}

/* ---- listener ---------------------------------------------------------- */

/* Bind 127.0.0.1:port and listen; the actual port goes to *bound. */
static int open_listener(int port, int *bound)
{
    int one = 1;
    struct sockaddr_in sa = {
        .sin_family = AF_INET,
        .sin_port = htons((uint16_t)port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    socklen_t slen = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &slen) < 0) {
        close(fd);
        return -1;
    }
    *bound = ntohs(sa.sin_port);
    return fd;
}

/* Start a detached thread for an accepted socket; close it on failure. */
static void spawn_connection(int fd)
{
    static int warned;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = malloc(sizeof *c);
    pthread_attr_t attr;
    pthread_t t;
    int err = ENOMEM;
    if (c) {
        c->fd = fd;
        c->len = 0;
        c->peer_closed = 0;
        c->buf[0] = '\0';
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        err = pthread_create(&t, &attr, connection_thread, c);
        pthread_attr_destroy(&attr);
    }
    if (err != 0) {
        if (!warned++)
            fprintf(stderr, "legacy_http: cannot start a thread: %s\n", strerror(err));
        free(c);
        close(fd);
    }
}

/* The classic accept loop. Runs until the process is killed. */
static void accept_loop(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            spawn_connection(fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: back off a little instead of spinning. */
            struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            continue;
        }
        perror("legacy_http: accept");
        exit(1);
    }
}

/* ---- command line ------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: legacy_http [--port P] [--latency-us N] "
                    "[--work-us N | --work-iters N]\n"
                    "                   [--static DIR] [--body-size N] [--calibrate]\n");
    exit(2);
}

/* Parse a non-negative decimal number no larger than max, or exit. */
static long parse_num(const char *s, long max)
{
    char *e;
    errno = 0;
    long v = s ? strtol(s, &e, 10) : -1;
    if (!s || errno || e == s || *e || v < 0 || v > max)
        usage();
    return v;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {  /* every option but one takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--calibrate") == 0) {
            opt.calibrate = 1;
            i--;
        } else if (strcmp(a, "--port") == 0)
            opt.port = (int)parse_num(v, 65535);
        else if (strcmp(a, "--latency-us") == 0)
            opt.latency_us = parse_num(v, 60L * 1000 * 1000);
        else if (strcmp(a, "--work-us") == 0)
            opt.work_us = parse_num(v, 10L * 1000 * 1000);
        else if (strcmp(a, "--work-iters") == 0)
            opt.work_iters = parse_num(v, LONG_MAX);
        else if (strcmp(a, "--body-size") == 0)
            opt.body_size = (size_t)parse_num(v, MAX_BODY_SIZE);
        else if (strcmp(a, "--static") == 0 && v)
            opt.static_dir = v;
        else
            usage();
    }
    if (opt.work_us > 0 && opt.work_iters > 0)
        usage();
}

/* Fill the generated body: lines of letters ending in '\n'. */
static char *make_body(size_t size)
{
    char *b = malloc(size ? size : 1);
    if (!b)
        return NULL;
    for (size_t i = 0; i < size; i++)
        b[i] = (i % 64 == 63 || i + 1 == size) ? '\n' : (char)('a' + i % 26);
    return b;
}

int main(int argc, char **argv)
{
    int port;
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (opt.work_us > 0) {
        double per_us = work_calibrate();
        opt.work_iters = (long long)(per_us * (double)opt.work_us + 0.5);
        if (opt.work_iters < 1)
            opt.work_iters = 1;
    }
    if (opt.calibrate) {
        printf("work_iters=%lld\n", opt.work_iters);
        return 0;
    }
    if (opt.work_iters > 0)
        printf("work: %lld iterations per request%s\n", opt.work_iters,
               opt.work_us > 0 ? " (calibrated for --work-us)" : "");
    gen_body = make_body(opt.body_size);
    if (!gen_body) {
        fprintf(stderr, "legacy_http: out of memory\n");
        return 1;
    }
    int lfd = open_listener(opt.port, &port);
    if (lfd < 0) {
        perror("legacy_http: listen");
        return 1;
    }
    printf("listening on %d\n", port);
    fflush(stdout);
    accept_loop(lfd);
    return 0;
}

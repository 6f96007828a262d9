/*
 * loadgen_native.c - the load generator of the libgreen speedup driver.
 *
 * It is deliberately independent of libgreen: one OS thread, one epoll set,
 * non-blocking sockets, a small state machine per connection. The speedup
 * driver uses it to load the legacy daemons natively and under the shim, so
 * the client side must be the same program in both runs and must not share
 * code (or bugs) with the thing being measured.
 *
 * Usage:
 *   loadgen_native --addr 127.0.0.1:PORT [--conns N] [--duration S]
 *                  [--warmup S] [--proto http|line] [--close] [--path P]
 *                  [--expect-body N] [--line-size N] [--timeout-ms MS]
 *                  [--max-requests N] [--linger0]
 *
 *   --conns N        concurrent connections, each with one request in flight
 *                    (default 10)
 *   --duration S     measured seconds, after the warm-up (default 5)
 *   --warmup S       seconds run first whose responses are verified but not
 *                    counted in the rate or latencies (default 0)
 *   --proto P        http: "GET path HTTP/1.1", the response's status line
 *                    must be 200 and its body exactly Content-Length bytes;
 *                    line: a '\n'-terminated line that must come back
 *                    byte for byte (default http)
 *   --close          connection per request: connect, one request, close;
 *                    for http the request says "Connection: close" and we
 *                    wait for the server's EOF so TIME_WAIT stays on its side.
 *                    Latency then includes the connect. Default keep-alive.
 *   --expect-body N  http: also require Content-Length == N
 *   --line-size N    line: bytes per line including '\n' (default 64)
 *   --timeout-ms MS  a request still unanswered after MS counts as an error
 *                    and its connection is reopened (default 10000)
 *   --max-requests N stop after N measured responses (default: no limit)
 *   --linger0        close with SO_LINGER 0 (RST, no TIME_WAIT) in --close mode
 *
 * Output: key=value lines on stdout (requests, rps, p50_us, p90_us, p99_us,
 * max_us, errors and each error kind, ...). Exit status 0 when the run
 * completed (errors are reported, not fatal), 2 on bad arguments, 1 when the
 * run could not be made at all.
 *
 * Safety: the target must be a loopback address (127.0.0.0/8); every loop is
 * bounded by the run's end time. The soft RLIMIT_NOFILE is raised to the hard
 * limit and the connection count must fit under it.
 *
 * Latencies go into a log-linear histogram (128 linear buckets, then 64 per
 * power of two, < 1.6% error) so memory is fixed however long the run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 4096           /* largest response head we accept */
#define SCRATCH_SIZE 65536      /* one recv() at most */
#define SCAN_NS 100000000ull    /* timeout/backoff scan period: 100 ms */
#define BACKOFF_NS 10000000ull  /* wait after a failed connect: 10 ms */
#define DRAIN_NS 1000000000ull  /* wait for the server's EOF in --close: 1 s */
#define HIST_BUCKETS (128 + 64 * 58)

enum proto { PROTO_HTTP, PROTO_LINE };

/* Connection states. A connection always has exactly one request in flight
 * except in BACKOFF (waiting to reconnect) and DRAINING (response done,
 * waiting for the server to close). */
enum state { ST_CLOSED, ST_CONNECTING, ST_SENDING, ST_READING, ST_DRAINING, ST_BACKOFF };

/* Error kinds, each counted and printed separately. */
enum err { E_CONNECT, E_IO, E_EOF, E_STATUS, E_VERIFY, E_TIMEOUT, E_COUNT };
static const char *err_names[E_COUNT] = {
    "err_connect", "err_io", "err_eof", "err_status", "err_verify", "err_timeout",
};

static struct {
    struct sockaddr_in addr;
    char hostport[80];
    long conns;
    double duration, warmup;
    enum proto proto;
    int close_mode;
    const char *path;
    long long expect_body;      /* -1: any length */
    long line_size;
    long timeout_ms;
    long long max_requests;     /* 0: unlimited */
    int linger0;
} opt = {
    .conns = 10, .duration = 5, .warmup = 0, .proto = PROTO_HTTP, .path = "/",
    .expect_body = -1, .line_size = 64, .timeout_ms = 10000,
};

/* One client connection. */
struct conn {
    int fd;
    enum state st;
    uint32_t gen;          /* bumped on every reopen; stale epoll events carry the old one */
    uint32_t seq;          /* requests sent on this slot, used in line payloads */
    uint64_t t_req;        /* latency start: send time, or connect time in --close */
    uint64_t t_state;      /* when the current state began (timeouts, backoff) */
    int pending_in;        /* EPOLLIN seen before we were ready to read */
    int server_close;      /* the response said "Connection: close" */
    size_t sent;           /* request bytes sent so far */
    size_t req_len;        /* request length */
    char *req;             /* request bytes (shared for http, own for line) */
    size_t got;            /* http: head bytes buffered; line: echo bytes matched */
    long long body_left;   /* http: body bytes still due, -1 before the head */
    char *head;            /* http: head buffer, HEAD_MAX bytes */
};

/* Run-wide state. */
static struct {
    int ep;
    struct conn *conns;
    char *http_req;
    size_t http_req_len;
    uint64_t t_start, t_warm, t_end;
    unsigned long long measured, verified, connects;
    unsigned long long errors[E_COUNT];
    unsigned long long hist[HIST_BUCKETS];
    uint64_t lat_max, lat_sum;
    char scratch[SCRATCH_SIZE];
} run;

/* ---- time and histogram ------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Bucket of a latency in microseconds: exact below 128, then 64 per octave. */
static int hist_index(uint64_t us)
{
    if (us < 128)
        return (int)us;
    int msb = 63 - __builtin_clzll(us);
    int shift = msb - 6;
    int idx = 128 + (shift - 1) * 64 + (int)((us >> shift) - 64);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* A representative value (the middle) of a bucket, in microseconds. */
static uint64_t hist_value(int idx)
{
    if (idx < 128)
        return (uint64_t)idx;
    int shift = (idx - 128) / 64 + 1;
    uint64_t low = (uint64_t)((idx - 128) % 64 + 64) << shift;
    return low + ((1ull << shift) >> 1);
}

static void hist_add(uint64_t ns)
{
    uint64_t us = (ns + 999) / 1000;
    run.hist[hist_index(us)]++;
    run.lat_sum += us;
    if (us > run.lat_max)
        run.lat_max = us;
}

/* The latency below which a fraction q of the measured requests fall. */
static uint64_t hist_quantile(double q)
{
    unsigned long long want = (unsigned long long)(q * (double)run.measured + 0.5);
    unsigned long long seen = 0;
    if (want == 0)
        want = 1;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += run.hist[i];
        if (seen >= want)
            return hist_value(i) < run.lat_max ? hist_value(i) : run.lat_max;
    }
    return run.lat_max;
}

/* ---- connection life cycle ---------------------------------------------- */

static void conn_open(struct conn *c, uint64_t now);
static void request_start(struct conn *c, uint64_t now);

/* Close the socket; the slot then reconnects, after a pause when asked. */
static void conn_reset(struct conn *c, uint64_t now, int backoff)
{
    if (c->fd >= 0) {
        if (opt.linger0) {
            struct linger l = { .l_onoff = 1, .l_linger = 0 };
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        close(c->fd);  /* also removes it from the epoll set */
    }
    c->fd = -1;
    c->gen++;
    c->st = ST_BACKOFF;
    c->t_state = now;
    if (!backoff)
        conn_open(c, now);
}

/* Count an error and reconnect after a pause (never recursively, so a
 * server that fails every request cannot make us spin). */
static void conn_fail(struct conn *c, enum err kind, uint64_t now)
{
    run.errors[kind]++;
    conn_reset(c, now, 1);
}

/* Start a non-blocking connect; the request goes out once it completes. */
static void conn_open(struct conn *c, uint64_t now)
{
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(c, E_CONNECT, now);
        return;
    }
    run.connects++;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->t_req = c->t_state = now;
    c->pending_in = 0;
    int rc = connect(c->fd, (struct sockaddr *)&opt.addr, sizeof opt.addr);
    if (rc < 0 && errno != EINPROGRESS) {
        conn_fail(c, E_CONNECT, now);
        return;
    }
    /* Edge-triggered, registered once: no epoll_ctl per request. */
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLET,
        .data.u64 = (uint64_t)(c - run.conns) | ((uint64_t)c->gen << 32),
    };
    if (epoll_ctl(run.ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        conn_fail(c, E_CONNECT, now);
        return;
    }
    c->st = ST_CONNECTING;
    if (rc == 0)
        request_start(c, now);
}

/* Fill in this slot's next line: "<slot> <seq> xxxx...\n", line_size bytes. */
static void line_build(struct conn *c)
{
    int n = snprintf(c->req, (size_t)opt.line_size, "%ld %u ",
                     (long)(c - run.conns), c->seq);
    if (n < 0 || n >= opt.line_size - 1)
        n = 0;
    memset(c->req + n, 'x', (size_t)opt.line_size - 1 - (size_t)n);
    c->req[opt.line_size - 1] = '\n';
}

static void try_send(struct conn *c, uint64_t now);
static void try_read(struct conn *c, uint64_t now);

/* Begin a request on a connected socket. */
static void request_start(struct conn *c, uint64_t now)
{
    if (!opt.close_mode)
        c->t_req = now;
    c->t_state = now;
    c->seq++;
    c->sent = 0;
    c->got = 0;
    c->body_left = -1;
    c->server_close = 0;
    if (opt.proto == PROTO_LINE)
        line_build(c);
    c->st = ST_SENDING;
    try_send(c, now);
}

static void try_send(struct conn *c, uint64_t now)
{
    while (c->sent < c->req_len) {
        ssize_t n = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;  /* the next EPOLLOUT edge resumes us */
        if (n <= 0) {
            conn_fail(c, E_IO, now);
            return;
        }
        c->sent += (size_t)n;
    }
    c->st = ST_READING;
    if (c->pending_in)
        try_read(c, now);
}

/* ---- response verification ----------------------------------------------- */

/* Results of feeding bytes to a response parser. */
enum feed { FEED_MORE, FEED_DONE, FEED_BAD_STATUS, FEED_BAD };

/* Find "Name:" in the head and return its value, or NULL. */
static const char *head_header(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
            return p + 3 + n;
    return NULL;
}

/* Check a complete head (NUL-terminated) and learn the body length. */
static enum feed http_check_head(struct conn *c)
{
    if (strncmp(c->head, "HTTP/1.", 7) != 0 || c->head[8] != ' ')
        return FEED_BAD;
    if (strncmp(c->head + 9, "200 ", 4) != 0)
        return FEED_BAD_STATUS;
    const char *cl = head_header(c->head, "Content-Length");
    const char *conn = head_header(c->head, "Connection");
    char *e;
    if (!cl)
        return FEED_BAD;
    long long len = strtoll(cl, &e, 10);
    if (e == cl || len < 0 || (opt.expect_body >= 0 && len != opt.expect_body))
        return FEED_BAD;
    c->body_left = len;
    c->server_close = conn && strncasecmp(conn + strspn(conn, " \t"), "close", 5) == 0;
    return FEED_MORE;
}

/* Body bytes arrived: fewer than due is fine, more is a protocol error. */
static enum feed http_body(struct conn *c, size_t n)
{
    if ((long long)n > c->body_left)
        return FEED_BAD;
    c->body_left -= (long long)n;
    return c->body_left == 0 ? FEED_DONE : FEED_MORE;
}

/* Feed received bytes to the HTTP response parser. */
static enum feed http_feed(struct conn *c, const char *p, size_t n)
{
    if (c->body_left >= 0)
        return http_body(c, n);
    size_t old = c->got;
    size_t k = n < HEAD_MAX - 1 - old ? n : HEAD_MAX - 1 - old;
    memcpy(c->head + old, p, k);
    c->got += k;
    c->head[c->got] = '\0';
    size_t from = old > 3 ? old - 3 : 0;
    char *end = memmem(c->head + from, c->got - from, "\r\n\r\n", 4);
    if (!end)
        return c->got == HEAD_MAX - 1 ? FEED_BAD : FEED_MORE;
    size_t head_len = (size_t)(end - c->head) + 4;
    end[2] = '\0';  /* keep the last header's CRLF for head_header() */
    enum feed f = http_check_head(c);
    if (f != FEED_MORE)
        return f;
    return http_body(c, c->got - head_len + (n - k));
}

/* Feed received bytes to the echo checker: they must match what we sent. */
static enum feed line_feed(struct conn *c, const char *p, size_t n)
{
    if (c->got + n > c->req_len || memcmp(c->req + c->got, p, n) != 0)
        return FEED_BAD;
    c->got += n;
    return c->got == c->req_len ? FEED_DONE : FEED_MORE;
}

/* ---- completing requests ------------------------------------------------- */

static int run_over(uint64_t now)
{
    return now >= run.t_end || (opt.max_requests && (long long)run.measured >= opt.max_requests);
}

/* DRAINING: only the server's EOF is expected. */
static void drain(struct conn *c, uint64_t now)
{
    ssize_t n = recv(c->fd, run.scratch, sizeof run.scratch, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0)
        conn_fail(c, E_VERIFY, now);  /* bytes after the response */
    else
        conn_reset(c, now, 0);  /* EOF, or RST after our request: both fine */
}

/* A verified response: record it and start the next request. */
static void request_done(struct conn *c, uint64_t now)
{
    run.verified++;
    if (now >= run.t_warm) {
        run.measured++;
        hist_add(now - c->t_req);
    }
    if (run_over(now)) {
        c->st = ST_CLOSED;
        return;
    }
    if (opt.close_mode || c->server_close) {
        if (opt.proto == PROTO_HTTP) {
            c->st = ST_DRAINING;  /* let the server close first */
            c->t_state = now;
            drain(c, now);  /* its FIN may have come with the data: no new edge */
        } else {
            conn_reset(c, now, 0);
        }
        return;
    }
    request_start(c, now);
}

/* Map a parser verdict to the next step. Returns 1 if reading goes on. */
static int feed_verdict(struct conn *c, enum feed f, size_t n, uint64_t now)
{
    switch (f) {
    case FEED_MORE:
        return n == sizeof run.scratch;  /* a full read may have left more */
    case FEED_DONE:
        request_done(c, now_ns());
        return 0;
    case FEED_BAD_STATUS:
        conn_fail(c, E_STATUS, now);
        return 0;
    default:
        conn_fail(c, E_VERIFY, now);
        return 0;
    }
}

/* READING: receive and verify. With edge triggering we must not stop while
 * the socket may hold more; a short read means it was drained. */
static void try_read(struct conn *c, uint64_t now)
{
    c->pending_in = 0;
    for (int more = 1; more;) {
        ssize_t n = recv(c->fd, run.scratch, sizeof run.scratch, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_fail(c, n == 0 ? E_EOF : E_IO, now);
            return;
        }
        enum feed f = opt.proto == PROTO_HTTP ? http_feed(c, run.scratch, (size_t)n)
                                              : line_feed(c, run.scratch, (size_t)n);
        more = feed_verdict(c, f, (size_t)n, now);
    }
}

/* The connect finished (or failed). */
static void connect_done(struct conn *c, uint64_t now)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
        conn_fail(c, E_CONNECT, now);
        return;
    }
    request_start(c, now);
}

/* Dispatch one epoll event to its connection's state machine. */
static void on_event(struct conn *c, uint32_t ev, uint64_t now)
{
    int in = (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
    int out = (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0;
    if (c->st == ST_CONNECTING) {
        if (!out)
            return;
        connect_done(c, now);
        if (c->st == ST_SENDING || c->st == ST_READING)
            c->pending_in |= in;  /* with ET this edge will not come again */
        if (c->st == ST_READING && c->pending_in)
            try_read(c, now);
        return;
    }
    if (c->st == ST_SENDING && out)
        try_send(c, now);
    if (c->st == ST_SENDING && in)
        c->pending_in = 1;
    else if (c->st == ST_READING && in)
        try_read(c, now);
    else if (c->st == ST_DRAINING && in)
        drain(c, now);
}

/* How long c has been in its state (0 if stamped after `now` was read). */
static uint64_t state_age(const struct conn *c, uint64_t now)
{
    return now > c->t_state ? now - c->t_state : 0;
}

/* Every SCAN_NS: expire stuck requests, reconnect after backoff, end drains. */
static void scan(uint64_t now)
{
    uint64_t tmo = (uint64_t)opt.timeout_ms * 1000000ull;
    for (long i = 0; i < opt.conns; i++) {
        struct conn *c = &run.conns[i];
        uint64_t age = state_age(c, now);
        if (c->st == ST_BACKOFF && age >= BACKOFF_NS)
            conn_open(c, now);
        else if (c->st == ST_DRAINING && age >= DRAIN_NS)
            conn_reset(c, now, 0);
        else if ((c->st == ST_CONNECTING || c->st == ST_SENDING || c->st == ST_READING) &&
                 age >= tmo)
            conn_fail(c, E_TIMEOUT, now);
    }
}

/* ---- the run --------------------------------------------------------------- */

static void event_loop(void)
{
    struct epoll_event evs[512];
    uint64_t now = now_ns(), next_scan = now + SCAN_NS;
    while (!run_over(now)) {
        uint64_t wake = next_scan < run.t_end ? next_scan : run.t_end;
        int ms = (int)((wake - now + 999999) / 1000000);
        int n = epoll_wait(run.ep, evs, 512, ms);
        if (n < 0 && errno != EINTR) {
            perror("loadgen_native: epoll_wait");
            exit(1);
        }
        now = now_ns();
        for (int i = 0; i < n; i++) {
            struct conn *c = &run.conns[(uint32_t)evs[i].data.u64];
            if ((uint32_t)(evs[i].data.u64 >> 32) == c->gen && c->fd >= 0)
                on_event(c, evs[i].events, now);
        }
        if (now >= next_scan) {
            now = now_ns();  /* newer than any stamp set while dispatching */
            scan(now);
            next_scan = now + SCAN_NS;
        }
    }
}

static void print_results(void)
{
    double secs = (double)(now_ns() - run.t_warm) / 1e9;
    unsigned long long errors = 0, unfinished = 0;
    for (int i = 0; i < E_COUNT; i++)
        errors += run.errors[i];
    for (long i = 0; i < opt.conns; i++) {
        enum state st = run.conns[i].st;
        unfinished += st == ST_CONNECTING || st == ST_SENDING || st == ST_READING;
    }
    printf("loadgen=native\nproto=%s\nmode=%s\nconnections=%ld\n",
           opt.proto == PROTO_HTTP ? "http" : "line",
           opt.close_mode ? "close" : "keepalive", opt.conns);
    printf("duration_s=%.3f\nwarmup_s=%.3f\nrequests=%llu\nrps=%.1f\n", secs,
           opt.warmup, run.measured, secs > 0 ? (double)run.measured / secs : 0.0);
    printf("p50_us=%llu\np90_us=%llu\np99_us=%llu\nmax_us=%llu\nmean_us=%.1f\n",
           (unsigned long long)hist_quantile(0.50), (unsigned long long)hist_quantile(0.90),
           (unsigned long long)hist_quantile(0.99), (unsigned long long)run.lat_max,
           run.measured ? (double)run.lat_sum / (double)run.measured : 0.0);
    printf("errors=%llu\n", errors);
    for (int i = 0; i < E_COUNT; i++)
        printf("%s=%llu\n", err_names[i], run.errors[i]);
    printf("verified=%llu\nunfinished=%llu\nconnects=%llu\n", run.verified, unfinished,
           run.connects);
    fflush(stdout);
}

/* ---- set-up ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen_native --addr 127.0.0.1:PORT [--conns N] [--duration S]\n"
            "       [--warmup S] [--proto http|line] [--close] [--path P]\n"
            "       [--expect-body N] [--line-size N] [--timeout-ms MS]\n"
            "       [--max-requests N] [--linger0]\n");
    exit(2);
}

static long long parse_int(const char *s, long long min, long long max)
{
    char *e;
    errno = 0;
    long long v = s ? strtoll(s, &e, 10) : 0;
    if (!s || errno || e == s || *e || v < min || v > max)
        usage();
    return v;
}

static double parse_secs(const char *s)
{
    char *e;
    double v = s ? strtod(s, &e) : -1;
    if (!s || e == s || *e || !(v >= 0 && v <= 3600))
        usage();
    return v;
}

/* "127.0.0.1:PORT" or "localhost:PORT"; anything off loopback is refused. */
static void parse_addr(const char *s)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    char host[64];
    if (!colon || (size_t)(colon - s) >= sizeof host)
        usage();
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    opt.addr.sin_family = AF_INET;
    opt.addr.sin_port = htons((uint16_t)parse_int(colon + 1, 1, 65535));
    if (inet_pton(AF_INET, host, &opt.addr.sin_addr) != 1) {
        fprintf(stderr, "loadgen_native: %s is not an IPv4 address\n", host);
        exit(2);
    }
    if ((ntohl(opt.addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "loadgen_native: refusing %s: only loopback targets\n", host);
        exit(2);
    }
    snprintf(opt.hostport, sizeof opt.hostport, "%s:%u", host, ntohs(opt.addr.sin_port));
}

/* Options that take a value; returns 0 if `a` is not one of them. */
static int parse_valued(const char *a, const char *v)
{
    if (strcmp(a, "--addr") == 0) parse_addr(v);
    else if (strcmp(a, "--conns") == 0) opt.conns = (long)parse_int(v, 1, 1000000);
    else if (strcmp(a, "--duration") == 0) opt.duration = parse_secs(v);
    else if (strcmp(a, "--warmup") == 0) opt.warmup = parse_secs(v);
    else if (strcmp(a, "--path") == 0 && v && v[0] == '/') opt.path = v;
    else if (strcmp(a, "--expect-body") == 0) opt.expect_body = parse_int(v, 0, 1LL << 40);
    else if (strcmp(a, "--line-size") == 0) opt.line_size = (long)parse_int(v, 16, 65536);
    else if (strcmp(a, "--timeout-ms") == 0) opt.timeout_ms = (long)parse_int(v, 1, 3600000);
    else if (strcmp(a, "--max-requests") == 0) opt.max_requests = parse_int(v, 1, 1LL << 50);
    else if (strcmp(a, "--proto") == 0 && v && strcmp(v, "http") == 0) opt.proto = PROTO_HTTP;
    else if (strcmp(a, "--proto") == 0 && v && strcmp(v, "line") == 0) opt.proto = PROTO_LINE;
    else return 0;
    return 1;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--close") == 0)
            opt.close_mode = 1;
        else if (strcmp(argv[i], "--linger0") == 0)
            opt.linger0 = 1;
        else if (i + 1 < argc && parse_valued(argv[i], argv[i + 1]))
            i++;
        else
            usage();
    }
    if (opt.addr.sin_family != AF_INET)
        usage();
}

/* Raise the soft fd limit to the hard one and check the run fits under it. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)opt.conns + 16 > rl.rlim_cur) {
        fprintf(stderr, "loadgen_native: %ld connections need more than the fd "
                        "limit %llu allows\n", opt.conns, (unsigned long long)rl.rlim_cur);
        exit(1);
    }
}

/* Allocate the slots and build the shared HTTP request. */
static void setup(void)
{
    run.conns = calloc((size_t)opt.conns, sizeof *run.conns);
    run.http_req = malloc(1024);
    if (!run.conns || !run.http_req)
        goto oom;
    int n = snprintf(run.http_req, 1024, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", opt.path,
                     opt.hostport, opt.close_mode ? "Connection: close\r\n" : "");
    if (n >= 1024)
        usage();
    run.http_req_len = (size_t)n;
    for (long i = 0; i < opt.conns; i++) {
        struct conn *c = &run.conns[i];
        c->fd = -1;
        c->req = opt.proto == PROTO_LINE ? malloc((size_t)opt.line_size) : run.http_req;
        c->req_len = opt.proto == PROTO_LINE ? (size_t)opt.line_size : run.http_req_len;
        c->head = opt.proto == PROTO_HTTP ? malloc(HEAD_MAX) : NULL;
        if (!c->req || (opt.proto == PROTO_HTTP && !c->head))
            goto oom;
    }
    run.ep = epoll_create1(EPOLL_CLOEXEC);
    if (run.ep < 0) {
        perror("loadgen_native: epoll_create1");
        exit(1);
    }
    return;
oom:
    fprintf(stderr, "loadgen_native: out of memory\n");
    exit(1);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    raise_fd_limit();
    setup();
    run.t_start = now_ns();
    run.t_warm = run.t_start + (uint64_t)(opt.warmup * 1e9);
    run.t_end = run.t_warm + (uint64_t)(opt.duration * 1e9);
    for (long i = 0; i < opt.conns; i++)
        conn_open(&run.conns[i], now_ns());
    event_loop();
    print_results();
    return 0;
}

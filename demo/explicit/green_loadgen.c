/*
 * green_loadgen.c - a load generator written on libgreen: one green thread
 * per connection, each a plain loop "connect, send, read and verify, repeat".
 *
 * What it shows. demo/loadgen_native.c does the same job as an epoll state
 * machine (connecting / sending / reading / draining / back-off, with
 * timeouts found by a periodic scan). Here each connection is straight-line
 * code on its own green thread, and the machinery the state machine spells
 * out becomes green.h calls:
 *
 *   waiting for connect/send/recv    green_wait_writable / green_wait_readable
 *   per-request timeout              a green_timeout_t scope around the request
 *   end of the run                   an outer scope around the whole loop
 *   stop at --max-requests           green_kill of the other workers
 *   back-off after an error          green_sleep
 *   waiting for every connection     green_join of each worker
 *
 * The two nested timeout scopes tell the outcomes apart: a park that fails
 * with ETIMEDOUT is an error (err_timeout) when the request's scope expired
 * and the end of the run (the request is "unfinished", not an error) when
 * the run's scope did; ECANCELED means another worker stopped the run.
 *
 * One OS thread runs every worker, so the statistics are plain globals, and
 * one receive buffer serves all workers: no worker parks between a recv
 * into it and the parse of those bytes, so none can see another's data.
 * Per-connection parse state (the response head) lives on each worker's
 * stack.
 *
 * Usage (the options and the output keys are those of loadgen_native, so a
 * driver can use either):
 *   green_loadgen --addr 127.0.0.1:PORT [--conns N] [--duration S]
 *                 [--warmup S] [--proto http|line] [--close] [--path P]
 *                 [--expect-body N] [--line-size N] [--timeout-ms MS]
 *                 [--max-requests N] [--linger0]
 *
 *   --conns N        concurrent connections, one request in flight each
 *   --duration S     measured seconds after the warm-up (default 5)
 *   --warmup S       seconds whose responses are verified, not counted
 *   --proto P        http: "GET path HTTP/1.1"; the status must be 200 and
 *                    the body exactly Content-Length bytes. line: a '\n'
 *                    terminated line that must come back byte for byte
 *   --close          connection per request ("Connection: close"; for http
 *                    we wait for the server's EOF, so TIME_WAIT stays on
 *                    its side); latency then includes the connect
 *   --expect-body N  http: also require Content-Length == N
 *   --line-size N    line: bytes per line including '\n' (default 64)
 *   --timeout-ms MS  a request unanswered after MS is an error (10000)
 *   --max-requests N stop after N measured responses
 *   --linger0        close with SO_LINGER 0 (RST, no TIME_WAIT)
 *
 * Output: key=value lines on stdout (loadgen=green, requests, rps, p50_us,
 * p90_us, p99_us, max_us, mean_us, errors, err_<kind>, verified,
 * unfinished, connects). Exit 0 when the run was made (errors are reported,
 * not fatal), 2 on bad arguments, 1 when it could not be made.
 *
 * Safety: only 127.0.0.0/8 targets; every loop ends with the run. The soft
 * RLIMIT_NOFILE is raised to the hard limit and --conns must fit under it.
 *
 * Rejected: a green_group for the workers (we need the handles anyway, to
 * kill the others at --max-requests, so plain joins are simpler); a
 * per-worker receive buffer (16 KiB x 20,000 workers of resident memory for
 * bytes that are parsed before the next switch).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <green.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 4096                 /* largest response head accepted */
#define RECV_SIZE 65536               /* the shared receive buffer */
#define WORKER_STACK (64 * 1024)      /* default green stack size here */
#define BACKOFF_NS GREEN_MSEC(10)     /* pause after a failed request */
#define DRAIN_NS GREEN_SEC(1)         /* wait for the server's EOF */
#define CONNS_PER_SOURCE 8000         /* see source_for() */
#define LIN_BUCKETS 128               /* exact microsecond buckets */
#define SUB_BUCKETS 64                /* buckets per power of two above */
#define HIST_BUCKETS (LIN_BUCKETS + SUB_BUCKETS * 57)

enum proto { PROTO_HTTP, PROTO_LINE };

/* Error kinds, counted and printed separately. */
enum err { E_CONNECT, E_IO, E_EOF, E_STATUS, E_VERIFY, E_TIMEOUT, E_COUNT };
static const char *const err_names[E_COUNT] = {
    "err_connect", "err_io", "err_eof", "err_status", "err_verify", "err_timeout",
};

/* What a request attempt came to. */
enum outcome { OUT_OK, OUT_FAILED, OUT_STOP };

/* Settings from the command line; read-only once the run starts. */
static struct {
    struct sockaddr_in addr;     /* the target, loopback only */
    char hostport[64];           /* "host:port" for the Host header */
    long conns;                  /* concurrent connections */
    double duration, warmup;     /* seconds */
    enum proto proto;            /* http or line echo */
    int close_mode;              /* connection per request */
    const char *path;            /* http request target */
    long long expect_body;       /* required Content-Length, -1 = any */
    long line_size;              /* line: bytes per request */
    long timeout_ms;             /* per-request limit */
    long long max_requests;      /* 0 = until the time is up */
    int linger0;                 /* close with RST */
} opt = {
    .conns = 10, .duration = 5, .proto = PROTO_HTTP, .path = "/",
    .expect_body = -1, .line_size = 64, .timeout_ms = 10000,
};

/* Run-wide state; plain fields, one OS thread (see the essay). */
static struct {
    int64_t t_warm, t_end;                  /* green_now() deadlines */
    int stopping;                           /* --max-requests reached */
    green_t *workers;                       /* handles, for kill and join */
    char *http_req;                         /* the shared http request */
    size_t http_req_len;
    unsigned long long measured, verified, connects, unfinished;
    unsigned long long errors[E_COUNT];
    unsigned long long hist[HIST_BUCKETS];  /* latencies, microseconds */
    uint64_t lat_max, lat_sum;              /* microseconds */
    char rbuf[RECV_SIZE];                   /* shared: see the essay */
} run;

/* One connection's worker; lives on its own stack. */
struct worker {
    long id;                     /* slot number, in line payloads */
    int fd;                      /* -1 when not connected */
    struct sockaddr_in src;      /* source to bind, or sin_family 0: any */
    uint32_t seq;                /* requests started */
    green_timeout_t *run_scope;  /* the whole-run scope */
    enum err err;                /* kind of the last failure */
    char *req;                   /* this request's bytes */
    size_t req_len;
    int server_close;            /* the response said Connection: close */
    size_t got;                  /* http: head bytes; line: echo matched */
    long long body_left;         /* http: body due, -1 before the head */
    char head[HEAD_MAX];         /* http: the response head so far */
};

/* ---- latency histogram ------------------------------------------------- */

/* Bucket of a latency: exact below LIN_BUCKETS us, then SUB_BUCKETS per
 * power of two (under 1.6% error) up to ~2^63 us. */
static int hist_bucket(uint64_t us)
{
    if (us < LIN_BUCKETS)
        return (int)us;
    int top = 63 - __builtin_clzll(us);      /* >= 7 */
    int shift = top - 6;                     /* keeps 6 bits below the top */
    int b = LIN_BUCKETS + (top - 7) * SUB_BUCKETS + (int)((us >> shift) - SUB_BUCKETS);
    return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

/* The upper bound of a bucket, in microseconds. */
static uint64_t hist_upper(int b)
{
    if (b < LIN_BUCKETS)
        return (uint64_t)b;
    int top = (b - LIN_BUCKETS) / SUB_BUCKETS + 7;
    uint64_t mant = (uint64_t)((b - LIN_BUCKETS) % SUB_BUCKETS + SUB_BUCKETS);
    return ((mant + 1) << (top - 6)) - 1;
}

static void hist_add(int64_t ns)
{
    uint64_t us = ns > 0 ? ((uint64_t)ns + 999) / 1000 : 0;
    run.hist[hist_bucket(us)]++;
    run.lat_sum += us;
    if (us > run.lat_max)
        run.lat_max = us;
}

/* Smallest latency at or below which a fraction q of requests fell. */
static uint64_t hist_quantile(double q)
{
    unsigned long long want = (unsigned long long)(q * (double)run.measured + 0.5);
    unsigned long long seen = 0;
    for (int b = 0; b < HIST_BUCKETS && run.measured; b++) {
        seen += run.hist[b];
        if (seen >= (want ? want : 1))
            return hist_upper(b) < run.lat_max ? hist_upper(b) : run.lat_max;
    }
    return run.lat_max;
}

/* ---- run control ------------------------------------------------------- */

static int run_over(void)
{
    return run.stopping || green_now() >= run.t_end;
}

/* --max-requests reached: cancel every other worker's current wait. */
static void stop_all(void)
{
    green_t self = green_self();
    run.stopping = 1;
    for (long i = 0; i < opt.conns; i++)
        if (run.workers[i] && run.workers[i] != self)
            green_kill(run.workers[i]);
}

/* Record a verified response that started at t0. */
static void record(int64_t t0)
{
    int64_t now = green_now();
    run.verified++;
    if (now < run.t_warm || run.stopping)
        return;  /* warm-up, or past --max-requests: verified, not counted */
    run.measured++;
    hist_add(now - t0);
    if (opt.max_requests && (long long)run.measured >= opt.max_requests && !run.stopping)
        stop_all();
}

/* Classify a failure: the end of the run, a timeout, or w->err. */
static enum outcome failed(struct worker *w, green_timeout_t *req_scope)
{
    if (errno == ECANCELED || run.stopping || w->run_scope->expired)
        return OUT_STOP;
    if (errno == ETIMEDOUT && req_scope->expired)
        w->err = E_TIMEOUT;
    run.errors[w->err]++;
    return OUT_FAILED;
}

/* ---- cooperative socket I/O -------------------------------------------- */

/* Close the worker's socket, if any. */
static void worker_close(struct worker *w)
{
    if (w->fd < 0)
        return;
    if (opt.linger0) {
        struct linger l = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(w->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    green_fd_closing(w->fd);
    close(w->fd);
    w->fd = -1;
}

/* The source address of worker id. One source address offers the
 * ephemeral port range (about 28,000 ports by default) per destination, and
 * connect() slows down sharply well before they run out: Linux searches
 * half the range first, port by port. Past CONNS_PER_SOURCE connections
 * the workers therefore spread over 127.0.0.2, 127.0.0.3, ... (all local:
 * the kernel routes 127/8 to loopback). Below it, no bind: no extra
 * syscalls per connect. */
static struct sockaddr_in source_for(long id)
{
    struct sockaddr_in src = { .sin_family = 0 };
    if (opt.conns > CONNS_PER_SOURCE) {
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(id / CONNS_PER_SOURCE));
    }
    return src;
}

/* Bind the socket to the worker's source address, leaving the port to
 * connect() (IP_BIND_ADDRESS_NO_PORT), which can then reuse a port toward
 * other destinations. 0, or -1 with errno. */
static int bind_source(const struct worker *w)
{
    int one = 1;
    if (w->src.sin_family == 0)
        return 0;
    setsockopt(w->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    return bind(w->fd, (const struct sockaddr *)&w->src, sizeof w->src);
}

/* Open a non-blocking socket and connect it, parking until the handshake
 * is done. 0, or -1 with errno and w->err. May switch. */
static int worker_connect(struct worker *w)
{
    int one = 1, soerr = 0;
    socklen_t len = sizeof soerr;
    w->err = E_CONNECT;
    w->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (w->fd < 0)
        return -1;
    run.connects++;
    setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind_source(w) < 0)
        return -1;
    if (connect(w->fd, (struct sockaddr *)&opt.addr, sizeof opt.addr) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)  /* EINTR: still connecting */
        return -1;
    if (green_wait_writable(w->fd, GREEN_FOREVER) < 0)
        return -1;
    if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -1;
    errno = soerr;
    return soerr ? -1 : 0;
}

/* Send the whole request, parking while the socket buffer is full.
 * 0, or -1 with errno and w->err. May switch. */
static int send_request(struct worker *w)
{
    size_t sent = 0;
    w->err = E_IO;
    while (sent < w->req_len) {
        ssize_t n = send(w->fd, w->req + sent, w->req_len - sent, MSG_NOSIGNAL);
        if (n >= 0) {
            sent += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (green_wait_writable(w->fd, GREEN_FOREVER) < 0)
            return -1;
    }
    return 0;
}

/* Receive into the shared buffer, parking while nothing is there.
 * >0 bytes, 0 at EOF, -1 with errno. May switch (before the recv that
 * fills the buffer, never after it). */
static ssize_t recv_some(int fd, int64_t timeout_ns)
{
    for (;;) {
        ssize_t n = recv(fd, run.rbuf, sizeof run.rbuf, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (green_wait_readable(fd, timeout_ns) < 0)
            return -1;
    }
}

/* ---- response verification --------------------------------------------- */

/* Results of feeding received bytes to a response checker. */
enum feed { FEED_MORE, FEED_DONE, FEED_BAD_STATUS, FEED_BAD };

/* Value of the header `name` in a NUL-terminated head, or NULL. */
static const char *head_value(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
            return p + 3 + n + strspn(p + 3 + n, " \t");
    return NULL;
}

/* Check a complete head (NUL-terminated after its last CRLF): status 200,
 * a Content-Length (equal to --expect-body when given). */
static enum feed check_head(struct worker *w)
{
    if (strncmp(w->head, "HTTP/1.", 7) != 0 || w->head[8] != ' ')
        return FEED_BAD;
    if (strncmp(w->head + 9, "200 ", 4) != 0)
        return FEED_BAD_STATUS;
    const char *cl = head_value(w->head, "Content-Length");
    const char *conn = head_value(w->head, "Connection");
    char *e;
    if (!cl || *cl < '0' || *cl > '9')
        return FEED_BAD;
    long long len = strtoll(cl, &e, 10);
    if ((*e != '\r' && *e != ' ') || (opt.expect_body >= 0 && len != opt.expect_body))
        return FEED_BAD;
    w->body_left = len;
    w->server_close = conn && strncasecmp(conn, "close", 5) == 0;
    return FEED_MORE;
}

/* Body bytes: fewer than due is fine, more than due is a protocol error. */
static enum feed feed_body(struct worker *w, size_t n)
{
    if ((long long)n > w->body_left)
        return FEED_BAD;
    w->body_left -= (long long)n;
    return w->body_left == 0 ? FEED_DONE : FEED_MORE;
}

/* Feed n received bytes at p to the HTTP response checker. */
static enum feed feed_http(struct worker *w, const char *p, size_t n)
{
    if (w->body_left >= 0)
        return feed_body(w, n);
    size_t old = w->got, room = HEAD_MAX - 1 - old;
    size_t k = n < room ? n : room;
    memcpy(w->head + old, p, k);
    w->got += k;
    w->head[w->got] = '\0';
    size_t from = old > 3 ? old - 3 : 0;
    char *end = memmem(w->head + from, w->got - from, "\r\n\r\n", 4);
    if (!end)
        return w->got == HEAD_MAX - 1 ? FEED_BAD : FEED_MORE;
    size_t head_len = (size_t)(end - w->head) + 4;
    end[2] = '\0';  /* keep the last header's CRLF for head_value() */
    enum feed f = check_head(w);
    return f != FEED_MORE ? f : feed_body(w, w->got - head_len + (n - k));
}

/* Feed n received bytes to the echo checker: they must be what we sent. */
static enum feed feed_line(struct worker *w, const char *p, size_t n)
{
    if (w->got + n > w->req_len || memcmp(w->req + w->got, p, n) != 0)
        return FEED_BAD;
    w->got += n;
    return w->got == w->req_len ? FEED_DONE : FEED_MORE;
}

/* Read and verify one response. 0, or -1 with errno and w->err.
 * May switch. */
static int read_response(struct worker *w)
{
    w->got = 0;
    w->body_left = -1;
    w->server_close = 0;
    /* The answer cannot be there yet right after our send: wait first and
     * save the recv that would fail with EAGAIN. */
    w->err = E_IO;
    if (green_wait_readable(w->fd, GREEN_FOREVER) < 0)
        return -1;
    for (;;) {
        ssize_t n = recv_some(w->fd, GREEN_FOREVER);
        w->err = n == 0 ? E_EOF : E_IO;
        if (n <= 0)
            return -1;
        enum feed f = opt.proto == PROTO_HTTP ? feed_http(w, run.rbuf, (size_t)n)
                                              : feed_line(w, run.rbuf, (size_t)n);
        if (f == FEED_DONE)
            return 0;
        if (f != FEED_MORE) {
            w->err = f == FEED_BAD_STATUS ? E_STATUS : E_VERIFY;
            errno = EPROTO;
            return -1;
        }
    }
}

/* After a response that ends the connection: wait (at most DRAIN_NS) for
 * the server's EOF, so the server closes first. Bytes instead of EOF are
 * a verification error. May switch. */
static int drain_to_eof(struct worker *w)
{
    ssize_t n = recv_some(w->fd, DRAIN_NS);
    worker_close(w);
    if (n <= 0)
        return 0;  /* EOF, reset or a slow server: all fine here */
    w->err = E_VERIFY;
    errno = EPROTO;
    return -1;
}

/* ---- one worker ------------------------------------------------------- */

/* Fill in the worker's next line: "<id> <seq> xxx...\n", line_size bytes. */
static void build_line(struct worker *w)
{
    int n = snprintf(w->req, (size_t)opt.line_size, "%ld %u ", w->id, w->seq);
    if (n < 0 || n >= opt.line_size - 1)
        n = 0;
    memset(w->req + n, 'x', (size_t)opt.line_size - 1 - (size_t)n);
    w->req[opt.line_size - 1] = '\n';
}

/* connect if needed, send, read and verify: the part that the request
 * timeout covers. 0, or -1 with errno and w->err. May switch. */
static int exchange(struct worker *w)
{
    if (w->fd < 0 && worker_connect(w) < 0)
        return -1;
    if (send_request(w) < 0)
        return -1;
    return read_response(w);
}

/* One request inside its own timeout scope, recorded when verified.
 * May switch. */
static enum outcome one_request(struct worker *w)
{
    green_timeout_t req_scope;
    w->seq++;
    if (opt.proto == PROTO_LINE)
        build_line(w);
    green_timeout_begin(&req_scope, GREEN_MSEC(opt.timeout_ms));
    int64_t t0 = green_now();  /* before the connect in --close mode */
    int rc = exchange(w);
    green_timeout_end(&req_scope);
    if (rc < 0)
        return failed(w, &req_scope);
    record(t0);
    if (!opt.close_mode && !w->server_close)
        return OUT_OK;
    if (opt.proto == PROTO_LINE) {
        worker_close(w);
        return OUT_OK;
    }
    if (drain_to_eof(w) < 0)
        return failed(w, &req_scope);
    return OUT_OK;
}

/* Green thread body: requests back to back until the run is over. */
static void *worker_main(void *arg)
{
    struct worker w;  /* fields set one by one: an initialiser would zero
                       * (and make resident) the whole head buffer */
    green_timeout_t run_scope;
    char *line = NULL;
    if (opt.proto == PROTO_LINE && !(line = malloc((size_t)opt.line_size)))
        return (void *)(intptr_t)ENOMEM;
    w.id = (long)(intptr_t)arg;
    w.fd = -1;
    w.src = source_for(w.id);
    w.seq = 0;
    w.err = E_IO;
    w.server_close = 0;
    w.req = opt.proto == PROTO_LINE ? line : run.http_req;
    w.req_len = opt.proto == PROTO_LINE ? (size_t)opt.line_size : run.http_req_len;
    w.run_scope = &run_scope;
    int64_t left = run.t_end - green_now();
    green_timeout_begin(&run_scope, left > 0 ? left : 0);
    while (!run_over()) {
        enum outcome o = one_request(&w);
        if (o == OUT_STOP)
            run.unfinished++;
        if (o != OUT_OK) {
            worker_close(&w);
            if (o == OUT_STOP || green_sleep(BACKOFF_NS) < 0)
                break;
        }
    }
    green_timeout_end(&run_scope);
    worker_close(&w);
    free(line);
    return NULL;
}

/* ---- the run ---------------------------------------------------------- */

/* Spawn one worker per connection. 0, or -1 (the others are killed). */
static int spawn_workers(void)
{
    green_attr_t attr = { .stack_size = 0 };  /* the default: see main() */
    char name[32];
    attr.name = name;
    for (long i = 0; i < opt.conns; i++) {
        snprintf(name, sizeof name, "conn-%ld", i);
        run.workers[i] = green_spawn(worker_main, (void *)(intptr_t)i, &attr);
        if (!run.workers[i]) {
            fprintf(stderr, "green_loadgen: cannot start worker %ld of %ld: %s\n",
                    i + 1, opt.conns, strerror(errno));
            stop_all();
            return -1;
        }
    }
    return 0;
}

/* Wait for every worker. Returns how many failed to start their loop. */
static long join_workers(void)
{
    long bad = 0;
    for (long i = 0; i < opt.conns && run.workers[i]; i++) {
        void *res = NULL;
        if (green_join(run.workers[i], &res) < 0 || res != NULL)
            bad++;
        run.workers[i] = NULL;
    }
    return bad;
}

/* The key=value report; the measured time runs from t_warm to t_stop. */
static void print_results(int64_t t_stop)
{
    double secs = (double)(t_stop - run.t_warm) / 1e9;
    unsigned long long errors = 0;
    for (int i = 0; i < E_COUNT; i++)
        errors += run.errors[i];
    printf("loadgen=green\nproto=%s\nmode=%s\nconnections=%ld\n",
           opt.proto == PROTO_HTTP ? "http" : "line",
           opt.close_mode ? "close" : "keepalive", opt.conns);
    printf("duration_s=%.3f\nwarmup_s=%.3f\nrequests=%llu\nrps=%.1f\n", secs, opt.warmup,
           run.measured, secs > 0 ? (double)run.measured / secs : 0.0);
    printf("p50_us=%llu\np90_us=%llu\np99_us=%llu\nmax_us=%llu\nmean_us=%.1f\n",
           (unsigned long long)hist_quantile(0.50), (unsigned long long)hist_quantile(0.90),
           (unsigned long long)hist_quantile(0.99), (unsigned long long)run.lat_max,
           run.measured ? (double)run.lat_sum / (double)run.measured : 0.0);
    printf("errors=%llu\n", errors);
    for (int i = 0; i < E_COUNT; i++)
        printf("%s=%llu\n", err_names[i], run.errors[i]);
    printf("verified=%llu\nunfinished=%llu\nconnects=%llu\n", run.verified,
           run.unfinished, run.connects);
    fflush(stdout);
}

/* ---- set-up ----------------------------------------------------------- */

static _Noreturn void usage(void)
{
    fprintf(stderr,
            "usage: green_loadgen --addr 127.0.0.1:PORT [--conns N] [--duration S]\n"
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

/* "127.x.y.z:PORT" or "localhost:PORT"; anything off loopback is refused. */
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
        fprintf(stderr, "green_loadgen: %s is not an IPv4 address\n", host);
        exit(2);
    }
    if ((ntohl(opt.addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "green_loadgen: refusing %s: loopback targets only\n", host);
        exit(2);
    }
    snprintf(opt.hostport, sizeof opt.hostport, "%s:%s", host, colon + 1);
}

/* Options with a value; 0 when `a` is not one of them. */
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

/* Raise the soft fd limit to the hard one; refuse a run that cannot fit. */
static int fit_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
            return -1;
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)opt.conns + 16 > rl.rlim_cur) {
        fprintf(stderr, "green_loadgen: %ld connections do not fit under the open "
                        "files limit %llu (at most %llu)\n", opt.conns,
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_cur - 16);
        return -1;
    }
    return 0;
}

/* The worker table and the shared http request. 0, or -1 (ENOMEM). */
static int setup(void)
{
    run.workers = calloc((size_t)opt.conns, sizeof *run.workers);
    run.http_req = malloc(1024);
    if (!run.workers || !run.http_req)
        return -1;
    int n = snprintf(run.http_req, 1024, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", opt.path,
                     opt.hostport, opt.close_mode ? "Connection: close\r\n" : "");
    if (n >= 1024)
        usage();
    run.http_req_len = (size_t)n;
    return 0;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    if (fit_fd_limit() < 0)
        return 1;
    if (!getenv("GREEN_STACK_SIZE"))  /* small pooled stacks, unless chosen */
        green_set_default_stack_size(WORKER_STACK);
    if (setup() < 0) {
        fprintf(stderr, "green_loadgen: out of memory\n");
        return 1;
    }
    int64_t start = green_now();
    run.t_warm = start + (int64_t)(opt.warmup * 1e9);
    run.t_end = run.t_warm + (int64_t)(opt.duration * 1e9);
    int spawned = spawn_workers();
    long bad = join_workers();
    if (spawned < 0 || bad > 0) {
        if (spawned == 0)
            fprintf(stderr, "green_loadgen: %ld workers ran out of memory\n", bad);
        return 1;
    }
    int64_t end = green_now();
    if (!run.stopping && end > run.t_end)
        end = run.t_end;  /* the workers' last wake-ups come a bit late */
    print_results(end);
    return 0;
}

/*
 * green_http.c - the thread-per-connection HTTP/1.1 server of the demo,
 * written against green.h instead of pthreads.
 *
 * What it shows. The code reads like the legacy daemon (demo/legacy_http.c):
 * one thread of control per connection that reads a request, answers it and
 * loops, with its state in local variables. Each of those threads is a green
 * thread (green_spawn, detached, named after its socket), and every place
 * the legacy server would block is a park instead:
 *
 *   accept4 -> EAGAIN     green_wait_readable(listener)   (the main thread)
 *   recv    -> EAGAIN     green_wait_readable(conn, idle timeout)
 *   sendmsg -> EAGAIN     green_wait_writable(conn)
 *   nanosleep(latency)    green_sleep(latency)
 *   sigwait(TERM/INT)     green_wait_readable(signalfd)    (a green thread)
 *
 * Sockets are non-blocking from birth (SOCK_NONBLOCK), so the program does
 * not depend on libgreen's libc hooks: it is the gevent "wait, then retry
 * the call" style, and with the io hooks in place the same calls simply
 * return EAGAIN as the kernel does (the program set O_NONBLOCK itself).
 *
 * With --hooks the sockets stay blocking and the code is the legacy one:
 * recv, sendmsg and accept4 block, and libgreen's io hooks (on by default
 * when a program links libgreen) park the calling green thread inside them.
 * Timeouts are then green_timeout_t scopes around the blocking call. Run
 * with GREEN_HOOKS=-io, that mode stalls after the first accept: the next
 * blocking accept4 holds the whole OS thread, so the connection thread
 * just spawned never runs. That is why the explicit style is the default.
 *
 * Invariants that follow from one OS thread running every green thread:
 *  - Green threads switch only inside the calls marked "May switch." in
 *    green.h, so the counters in `srv` are plain integers: no locks, no
 *    atomics, and no update can be lost.
 *  - A connection is owned by exactly one green thread from accept to close;
 *    nobody else touches its descriptor, so close needs only
 *    green_fd_closing() first (waking no one, but forgetting the watchers).
 *
 * Protocol. Requests may arrive split over several reads or several per
 * read (pipelined); each connection keeps one buffer and answers the
 * complete heads in it in order. HTTP/1.1 is keep-alive unless the request
 * says "Connection: close"; HTTP/1.0 closes unless it says "keep-alive".
 * Request bodies (Content-Length) are read and discarded; chunked request
 * bodies get 501. Every answer is 200 with a generated body of --body-size
 * bytes (no body for HEAD), byte-compatible with legacy_http's headers.
 * When the server closes a connection whose client may still be sending
 * (an error, or unread pipelined bytes), it shuts down its side and drains
 * the input for up to a second first, so the kernel does not answer the
 * unread bytes with a reset that would destroy the response in flight.
 *
 * Usage:
 *   green_http [--port P] [--latency-us N] [--body-size N] [--idle-ms N]
 *              [--hooks]
 *
 *   --port P        TCP port on 127.0.0.1 (default 8080; 0 = pick a free
 *                   one); "listening on PORT" is printed once listening
 *   --latency-us N  green_sleep N microseconds before each answer, standing
 *                   in for a slow backend
 *   --body-size N   bytes of the generated body (default 128)
 *   --idle-ms N     close a connection idle for N ms (default 0: never)
 *   --hooks         blocking sockets, made cooperative by the io hooks
 *
 * SIGINT or SIGTERM stops the server: the counters go to stderr, exit 0.
 *
 * Rejected: a green_group for the connections (the threads are detached:
 * nothing ever joins them, and the process exit ends them); blocking
 * sockets relying on the io hooks (the program would then silently block
 * the whole OS thread whenever the hooks are not in place).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <green.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define HEAD_MAX 16384                /* largest request head accepted */
#define BODY_MAX (64L * 1024 * 1024)  /* largest --body-size / request body */
#define CONN_STACK (64 * 1024)        /* default green stack size here */
#define LINGER_NS GREEN_SEC(1)        /* drain time before a server close */
#define EMFILE_PAUSE GREEN_MSEC(10)   /* accept back-off when out of fds */

/* Settings from the command line; read-only once serving starts. */
static struct {
    int port;              /* listening port, 0 = any */
    int64_t latency_ns;    /* simulated backend time per request */
    size_t body_size;      /* bytes of the generated body */
    int64_t idle_ns;       /* idle keep-alive limit, GREEN_FOREVER = none */
    int hooks;             /* --hooks: blocking sockets, hooks park us */
} opt = { .port = 8080, .latency_ns = 0, .body_size = 128, .idle_ns = GREEN_FOREVER };

/* Server-wide state. Plain fields: every green thread runs on this one
 * OS thread and none switches in the middle of an update. */
static struct {
    char *body;                    /* the generated body, body_size bytes */
    char head_keep[160];           /* 200 head for a keep-alive answer */
    char head_close[160];          /* 200 head ending the connection */
    size_t keep_len, close_len;    /* their lengths */
    unsigned long long accepted;   /* connections accepted */
    unsigned long long active;     /* connection threads still running */
    unsigned long long requests;   /* requests answered */
    unsigned long long refused;    /* connections dropped: no thread */
} srv;

/* One connection, on its green thread's stack. */
struct conn {
    int fd;                /* the socket (non-blocking unless --hooks) */
    size_t len;            /* bytes in buf */
    size_t scanned;        /* buf[0..scanned) holds no end of head */
    int answered;          /* we just answered and hold no more input */
    char buf[HEAD_MAX];    /* received, not yet consumed */
};

/* One parsed request head. */
struct request {
    size_t head_len;       /* bytes up to and including the blank line */
    size_t body_len;       /* Content-Length, 0 when absent */
    int minor;             /* HTTP/1.<minor> */
    int keep_alive;        /* 1: the connection stays open afterwards */
    int head_only;         /* HEAD: answer without a body */
    int chunked;           /* Transfer-Encoding: chunked was given */
    int have_length;       /* a Content-Length header was seen */
};

enum parse { PARSE_MORE, PARSE_DONE, PARSE_BAD };

/* ---- cooperative socket I/O ------------------------------------------- */

/* --hooks: a plain blocking recv. The io hook parks this green thread
 * inside it; the timeout scope makes that park fail with ETIMEDOUT after
 * timeout_ns. May switch. */
static ssize_t hooked_recv(int fd, void *buf, size_t len, int64_t timeout_ns)
{
    green_timeout_t scope;
    ssize_t n;
    if (green_timeout_begin(&scope, timeout_ns) < 0)
        return -1;
    do
        n = recv(fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    green_timeout_end(&scope);  /* leaves errno alone */
    return n;
}

/* Receive up to len bytes, parking while none are there. Returns the count,
 * 0 at EOF, -1 with errno (ETIMEDOUT after idle_ns without data, ECANCELED,
 * or the socket error). May switch. */
static ssize_t net_recv(int fd, void *buf, size_t len, int64_t idle_ns)
{
    if (opt.hooks)
        return hooked_recv(fd, buf, len, idle_ns);
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (green_wait_readable(fd, idle_ns) < 0)
            return -1;
    }
}

/* Drop the first n bytes of a gather list after a partial write. */
static void iov_advance(struct iovec **iov, int *cnt, size_t n)
{
    while (*cnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*cnt)--;
    }
    if (*cnt > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

/* Send every byte of the gather list (modified as it goes), parking while
 * the socket buffer is full (with --hooks, inside the blocking sendmsg).
 * 0, or -1 with errno. May switch. */
static int net_sendv_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0 && iov[cnt - 1].iov_len == 0)
        cnt--;  /* trailing empty parts: nothing to wait for */
    while (cnt > 0) {
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
        ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (n >= 0) {
            iov_advance(&iov, &cnt, (size_t)n);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (green_wait_writable(fd, GREEN_FOREVER) < 0)
            return -1;
    }
    return 0;
}

/* Close a connection's socket. With linger, first tell the client we are
 * done and read its remaining input (for at most LINGER_NS) so unread
 * bytes do not turn our last answer into a reset. May switch. */
static void net_close(int fd, int linger)
{
    if (linger && shutdown(fd, SHUT_WR) == 0) {
        char sink[4096];
        int64_t end = green_now() + LINGER_NS;
        int64_t left;
        while ((left = end - green_now()) > 0 && net_recv(fd, sink, sizeof sink, left) > 0)
            ;
    }
    green_fd_closing(fd);
    close(fd);
}

/* ---- request parsing ---------------------------------------------------- */

/* Case-insensitive: does the comma-separated header value [v, end) contain
 * the token tok? */
static int value_has_token(const char *v, const char *end, const char *tok)
{
    size_t n = strlen(tok);
    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *e = v;
        while (e < end && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        if ((size_t)(e - v) == n && strncasecmp(v, tok, n) == 0)
            return 1;
        v = e;
    }
    return 0;
}

/* Parse "METHOD SP TARGET SP HTTP/1.x" in [p, eol). 0, or -1 if malformed. */
static int parse_request_line(const char *p, const char *eol, struct request *r)
{
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    if (!sp1 || sp1 == p)
        return -1;
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    if (!sp2 || sp2 == sp1 + 1 || eol - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return -1;
    if (sp2[8] < '0' || sp2[8] > '9')
        return -1;
    r->minor = sp2[8] - '0';
    r->keep_alive = r->minor >= 1;
    r->head_only = sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0;
    return 0;
}

/* Content-Length value [v, end): digits only, at most BODY_MAX, and equal
 * to any earlier one. 0, or -1 if malformed. */
static int parse_length(const char *v, const char *end, struct request *r)
{
    size_t n = 0;
    if (v == end)
        return -1;
    for (; v < end && *v != ' ' && *v != '\t'; v++) {
        if (*v < '0' || *v > '9' || n > (size_t)BODY_MAX)
            return -1;
        n = n * 10 + (size_t)(*v - '0');
    }
    if (n > (size_t)BODY_MAX || (r->have_length && n != r->body_len))
        return -1;
    r->body_len = n;
    r->have_length = 1;
    return 0;
}

/* Apply the header line [p, eol) to r. 0, or -1 if malformed. */
static int parse_header(const char *p, const char *eol, struct request *r)
{
    const char *colon = memchr(p, ':', (size_t)(eol - p));
    if (!colon || colon == p)
        return -1;
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1;
    while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
    if (nlen == 10 && strncasecmp(p, "Connection", 10) == 0) {
        if (value_has_token(v, eol, "close"))
            r->keep_alive = 0;
        else if (value_has_token(v, eol, "keep-alive"))
            r->keep_alive = 1;
    } else if (nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
        return parse_length(v, eol, r);
    } else if (nlen == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
        r->chunked = value_has_token(v, eol, "chunked");
    }
    return 0;
}

/* Parse the head at the start of c->buf into r. PARSE_MORE when the blank
 * line has not arrived yet (c->scanned remembers how far we looked, so a
 * head trickling in byte by byte is not rescanned from the start). */
static enum parse parse_request(struct conn *c, struct request *r)
{
    size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
    const char *end = memmem(c->buf + from, c->len - from, "\r\n\r\n", 4);
    if (!end) {
        c->scanned = c->len;
        return PARSE_MORE;
    }
    *r = (struct request){ .head_len = (size_t)(end - c->buf) + 4 };
    const char *stop = end + 2;  /* just past the last line's CRLF */
    const char *eol = memmem(c->buf, (size_t)(stop - c->buf), "\r\n", 2);
    if (parse_request_line(c->buf, eol, r) < 0)
        return PARSE_BAD;
    for (const char *p = eol + 2; p < stop; p = eol + 2) {
        eol = memmem(p, (size_t)(stop - p), "\r\n", 2);
        if (parse_header(p, eol, r) < 0)
            return PARSE_BAD;
    }
    return PARSE_DONE;
}

/* ---- one connection ------------------------------------------------------ */

/* Receive more bytes into c->buf. >0, 0 at EOF, -1 on error or idle
 * timeout. May switch. */
static ssize_t conn_fill(struct conn *c)
{
    /* Right after an answer, with nothing buffered, the client's next
     * request cannot be here yet unless it pipelines: wait first and save
     * the recv that would fail with EAGAIN. (--hooks: the hook decides.) */
    if (c->answered && !opt.hooks && green_wait_readable(c->fd, opt.idle_ns) < 0)
        return -1;
    c->answered = 0;
    ssize_t n = net_recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, opt.idle_ns);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

/* Forget the first n buffered bytes, keeping any pipelined after them. */
static void conn_consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->scanned = 0;
}

/* Read and discard a request body of n bytes. 0, or -1. May switch. */
static int conn_skip_body(struct conn *c, size_t n)
{
    while (n > 0) {
        if (c->len == 0 && conn_fill(c) <= 0)
            return -1;
        size_t take = c->len < n ? c->len : n;
        conn_consume(c, take);
        n -= take;
    }
    return 0;
}

/* Answer with a bodiless error status; the connection closes after it.
 * May switch. */
static void reply_error(struct conn *c, const char *status)
{
    char head[128];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                     status);
    struct iovec iov = { .iov_base = head, .iov_len = (size_t)n };
    net_sendv_all(c->fd, &iov, 1);
}

/* Answer r: the simulated backend time, then head and body in one gather
 * write (usually one syscall). 0, or -1 to drop the connection.
 * May switch. */
static int reply(struct conn *c, const struct request *r)
{
    if (opt.latency_ns > 0 && green_sleep(opt.latency_ns) < 0)
        return -1;
    struct iovec iov[2] = {
        { .iov_base = r->keep_alive ? srv.head_keep : srv.head_close,
          .iov_len = r->keep_alive ? srv.keep_len : srv.close_len },
        { .iov_base = srv.body, .iov_len = r->head_only ? 0 : opt.body_size },
    };
    if (net_sendv_all(c->fd, iov, 2) < 0)
        return -1;
    srv.requests++;
    return 0;
}

/* Answer one parsed request and consume it from the buffer.
 * 1 to go on, 0 to close normally, -1 to close after an error.
 * May switch. */
static int serve_request(struct conn *c, const struct request *r)
{
    if (r->chunked) {
        reply_error(c, "501 Not Implemented");
        return -1;
    }
    conn_consume(c, r->head_len);
    if (conn_skip_body(c, r->body_len) < 0)
        return -1;
    if (reply(c, r) < 0)
        return -1;
    c->answered = c->len == 0;
    return r->keep_alive ? 1 : 0;
}

/* Read, parse and answer requests until the client is done or we are.
 * Returns whether the client may still be sending (linger before close).
 * May switch. */
static int serve_connection(struct conn *c)
{
    struct request r;
    for (;;) {
        enum parse p = parse_request(c, &r);
        if (p == PARSE_BAD) {
            reply_error(c, "400 Bad Request");
            return 1;
        }
        if (p == PARSE_DONE) {
            int rc = serve_request(c, &r);
            if (rc <= 0)
                return rc < 0 || c->len > 0;
            continue;
        }
        if (c->len == sizeof c->buf) {
            reply_error(c, "431 Request Header Fields Too Large");
            return 1;
        }
        if (conn_fill(c) <= 0)
            return 0;  /* EOF, reset or idle: nothing left to protect */
    }
}

/* Body of a connection's green thread: own the socket from accept to
 * close. The connection state lives on this thread's stack. */
static void *connection_thread(void *arg)
{
    struct conn c;  /* no initialiser: zeroing buf would make 16 KiB of
                     * stack resident for every connection */
    c.fd = (int)(intptr_t)arg;
    c.len = c.scanned = 0;
    c.answered = 0;
    int linger = serve_connection(&c);
    net_close(c.fd, linger);
    srv.active--;
    return NULL;
}

/* Give an accepted socket its own detached green thread, named after it. */
static void start_connection(int fd)
{
    char name[32];
    snprintf(name, sizeof name, "http-fd%d", fd);
    green_attr_t attr = { .name = name, .detached = true };  /* default stack */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!green_spawn(connection_thread, (void *)(intptr_t)fd, &attr)) {
        if (srv.refused++ == 0)
            fprintf(stderr, "green_http: cannot start a green thread: %s\n",
                    strerror(errno));
        green_fd_closing(fd);
        close(fd);
        return;
    }
    srv.accepted++;
    srv.active++;
}

/* ---- listener and shutdown ------------------------------------------------ */

/* Flags for new sockets: non-blocking unless --hooks does the waiting. */
static int sock_flags(void)
{
    return SOCK_CLOEXEC | (opt.hooks ? 0 : SOCK_NONBLOCK);
}

/* Bind 127.0.0.1:port and listen; *bound gets the port. */
static int open_listener(int port, int *bound)
{
    int one = 1;
    struct sockaddr_in sa = {
        .sin_family = AF_INET,
        .sin_port = htons((uint16_t)port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    socklen_t slen = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | sock_flags(), 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &slen) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *bound = ntohs(sa.sin_port);
    return fd;
}

/* Accept connections until killed (green_kill makes the wait fail with
 * ECANCELED) or the listener breaks. May switch. */
static void accept_loop(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, sock_flags());
        if (fd >= 0) {
            start_connection(fd);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (green_wait_readable(lfd, GREEN_FOREVER) < 0)
                return;
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                   errno == ENOMEM) {
            if (green_sleep(EMFILE_PAUSE) < 0)  /* out of fds: back off */
                return;
        } else if (errno == ECANCELED) {
            return;  /* --hooks: killed inside the blocking accept4 */
        } else if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO) {
            perror("green_http: accept");
            return;
        }
    }
}

/* What the signal thread watches, and whom it stops. */
struct sigwatch {
    int fd;                /* signalfd for SIGINT and SIGTERM, non-blocking */
    green_t acceptor;      /* the accepting (main) green thread */
};

/* Green thread: wait for SIGINT/SIGTERM on the signalfd, then kill the
 * acceptor so main can report and exit. A broken signalfd stops the
 * server too rather than leaving it unstoppable. May switch. */
static void *signal_thread(void *arg)
{
    const struct sigwatch *sw = arg;
    struct signalfd_siginfo si;
    while (read(sw->fd, &si, sizeof si) < 0 && (errno == EAGAIN || errno == EINTR))
        if (errno == EAGAIN && green_wait_readable(sw->fd, GREEN_FOREVER) < 0)
            return NULL;  /* killed itself: nothing to do */
    green_kill(sw->acceptor);
    return NULL;
}

/* Route SIGINT/SIGTERM to a signalfd watched by a green thread that
 * cancels the acceptor. Must be called from the acceptor. -1 on failure. */
static int watch_signals(void)
{
    static struct sigwatch sw;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    sw.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    sw.acceptor = green_self();
    if (sw.fd < 0 || !sw.acceptor)
        return -1;
    green_attr_t attr = { .name = "signals", .detached = true };
    return green_spawn(signal_thread, &sw, &attr) ? 0 : -1;
}

/* ---- command line ----------------------------------------------------------- */

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: green_http [--port P] [--latency-us N] [--body-size N] "
                    "[--idle-ms N] [--hooks]\n");
    exit(2);
}

/* A decimal number in [0, max], or usage(). */
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--hooks") == 0) {
            opt.hooks = 1;
            continue;
        }
        i++;  /* every other option takes a value */
        if (strcmp(a, "--port") == 0)
            opt.port = (int)parse_num(v, 65535);
        else if (strcmp(a, "--latency-us") == 0)
            opt.latency_ns = GREEN_USEC(parse_num(v, 60L * 1000 * 1000));
        else if (strcmp(a, "--body-size") == 0)
            opt.body_size = (size_t)parse_num(v, BODY_MAX);
        else if (strcmp(a, "--idle-ms") == 0) {
            long ms = parse_num(v, 24L * 3600 * 1000);
            opt.idle_ns = ms ? GREEN_MSEC(ms) : GREEN_FOREVER;
        } else
            usage();
    }
}

/* Build the body (64-byte lines of letters) and the two answer heads. */
static int make_answers(void)
{
    srv.body = malloc(opt.body_size ? opt.body_size : 1);
    if (!srv.body)
        return -1;
    for (size_t i = 0; i < opt.body_size; i++)
        srv.body[i] = (i % 64 == 63 || i + 1 == opt.body_size) ? '\n' : (char)('a' + i % 26);
    const char *fmt = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                      "Content-Length: %zu\r\n%s\r\n";
    srv.keep_len = (size_t)snprintf(srv.head_keep, sizeof srv.head_keep, fmt,
                                    opt.body_size, "");
    srv.close_len = (size_t)snprintf(srv.head_close, sizeof srv.head_close, fmt,
                                     opt.body_size, "Connection: close\r\n");
    return 0;
}

/* Connection threads need little stack (the 16 KiB buffer is the bulk):
 * make 64 KiB the process default unless the user chose GREEN_STACK_SIZE.
 * Only default-size stacks are pooled, so a spawn then makes no syscall,
 * where a per-spawn attr.stack_size would map and unmap a stack for each
 * connection. */
static void choose_stack_size(void)
{
    if (!getenv("GREEN_STACK_SIZE"))
        green_set_default_stack_size(CONN_STACK);
}

/* One descriptor per connection: raise the soft open-files limit to the
 * hard one (often 1024 against several thousand). Failure is harmless:
 * accept then backs off on EMFILE. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    int port;
    parse_args(argc, argv);
    choose_stack_size();
    raise_fd_limit();
    if (make_answers() < 0) {
        fprintf(stderr, "green_http: out of memory\n");
        return 1;
    }
    int lfd = open_listener(opt.port, &port);
    if (lfd < 0) {
        perror("green_http: listen");
        return 1;
    }
    if (watch_signals() < 0) {
        perror("green_http: signals");
        return 1;
    }
    printf("listening on %d\n", port);
    fflush(stdout);
    accept_loop(lfd);
    fprintf(stderr, "green_http: %llu connections (%llu still open, %llu refused), "
                    "%llu requests\n", srv.accepted, srv.active, srv.refused, srv.requests);
    return 0;
}

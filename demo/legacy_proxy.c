/*
 * legacy_proxy.c - a blocking fan-out HTTP proxy, the third legacy daemon of
 * the libgreen speedup demo.
 *
 * One detached pthread per client connection, as in legacy_http.c. For every
 * request the client sends, the thread
 *   1. resolves the backend name with getaddrinfo() (every time, as a naive
 *      daemon does, so the resolver is exercised),
 *   2. opens a new TCP connection to it with a blocking connect(),
 *   3. forwards the request bytes unchanged,
 *   4. reads the backend's answer (status line, headers, Content-Length body)
 *      and relays it to the client while it arrives,
 *   5. closes the backend connection.
 * So each request costs DNS, connect and I/O on two sockets: the calls a
 * green-thread runtime must make cooperative (getaddrinfo goes to its worker
 * pool, connect/read/write park the green thread).
 *
 * Usage:
 *   legacy_proxy [--port P] --backend HOST:PORT
 *
 *   --port P             TCP port on 127.0.0.1 (default 8081; 0 = free one)
 *   --backend HOST:PORT  where requests go, e.g. localhost:8080
 *
 * Limits, kept on purpose to stay small: request bodies must fit in the
 * 16 KiB request buffer (413 otherwise); backend answers must carry a
 * Content-Length (or be 204/304), else the answer is relayed until the backend
 * closes and the client connection is closed afterwards. Errors reaching the
 * backend become "502 Bad Gateway".
 *
 * Prints "listening on PORT" on stdout (flushed) once ready. Binds 127.0.0.1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 16384

static struct {
    int port;
    char host[256];      /* backend host name, resolved per request */
    char service[16];    /* backend port, as text for getaddrinfo */
} opt = { .port = 8081 };

/* Per-client state: the socket and the request bytes not yet forwarded. */
struct client {
    int fd;
    size_t len;
    char buf[BUF_SIZE + 1];  /* +1 keeps a NUL after the data */
};

/* What we need to know about a message head (request or response). */
struct head {
    size_t head_len;    /* bytes up to and including the blank line */
    long long clen;     /* Content-Length, -1 when absent */
    int keep_alive;     /* request only: does the client keep the connection */
    int is_head;        /* request only: HEAD, so the answer has no body */
    int status;         /* response only: the status code */
};

/* ---- small I/O helpers ---------------------------------------------------- */

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* read() that retries EINTR. */
static ssize_t read_some(int fd, char *buf, size_t len)
{
    ssize_t n;
    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

static void send_status(int fd, int status, const char *reason)
{
    char msg[160];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                     status, reason);
    write_all(fd, msg, (size_t)n);
}

/* ---- head parsing (shared by requests and responses) --------------------- */

/* If the header line [p, eol) is `name: value`, return the value, else NULL. */
static const char *header_value(const char *p, const char *eol, const char *name)
{
    size_t n = strlen(name);
    if ((size_t)(eol - p) <= n || strncasecmp(p, name, n) != 0 || p[n] != ':')
        return NULL;
    for (p += n + 1; p < eol && (*p == ' ' || *p == '\t'); p++)
        ;
    return p;
}

/* Case-insensitive search for token within [v, end). */
static int value_has(const char *v, const char *end, const char *token)
{
    size_t n = strlen(token);
    for (; v + n <= end; v++)
        if (strncasecmp(v, token, n) == 0)
            return 1;
    return 0;
}

/* Apply one header line to h; -1 on a malformed Content-Length. */
static int apply_header(const char *p, const char *eol, struct head *h)
{
    const char *v = header_value(p, eol, "Content-Length");
    if (v) {
        char *e;
        h->clen = strtoll(v, &e, 10);
        return e == v || h->clen < 0 ? -1 : 0;
    }
    v = header_value(p, eol, "Connection");
    if (v && value_has(v, eol, "close"))
        h->keep_alive = 0;
    else if (v && value_has(v, eol, "keep-alive"))
        h->keep_alive = 1;
    return 0;
}

/* Parse the first line of a head: request line or status line. */
static int parse_first_line(const char *p, const char *eol, int is_response,
                            struct head *h)
{
    if (is_response) {
        if (eol - p < 12 || strncmp(p, "HTTP/1.", 7) != 0)
            return -1;
        h->status = atoi(p + 9);
        return h->status >= 100 && h->status <= 999 ? 0 : -1;
    }
    /* "METHOD SP target SP HTTP/1.x": the version decides the default. */
    if (eol - p < 14 || strncmp(eol - 8, "HTTP/1.", 7) != 0)
        return -1;
    h->keep_alive = eol[-1] != '0';
    h->is_head = strncmp(p, "HEAD ", 5) == 0;
    return 0;
}

/* Parse a head at the start of buf (len bytes).
 * 1 = complete, 0 = need more, -1 = malformed. */
static int parse_head(const char *buf, size_t len, int is_response, struct head *h)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    *h = (struct head){ .head_len = (size_t)(end - buf) + 4, .clen = -1 };
    const char *p = buf, *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
    if (parse_first_line(p, eol, is_response, h) < 0)
        return -1;
    for (p = eol + 2; p < end + 2; p = eol + 2) {
        eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        if (apply_header(p, eol, h) < 0)
            return -1;
    }
    return 1;
}

/* Size of a request: head plus Content-Length body. */
static size_t request_size(const struct head *h)
{
    return h->head_len + (size_t)(h->clen > 0 ? h->clen : 0);
}

/* ---- the backend side ----------------------------------------------------- */

/* Resolve the backend by name and connect to the first address that answers.
 * Returns a connected socket or -1. */
static int connect_backend(void)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res, *ai;
    int fd = -1;
    if (getaddrinfo(opt.host, opt.service, &hints, &res) != 0)
        return -1;
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* Bytes of a response in total once its head is known; -1 = until EOF. */
static long long response_total(const struct head *h, int is_head)
{
    if (is_head || h->status == 204 || h->status == 304 || h->status < 200)
        return (long long)h->head_len;
    return h->clen < 0 ? -1 : (long long)h->head_len + h->clen;
}

/* Read the backend's answer and relay it to the client as it arrives.
 * 1 = relayed and the client connection may continue, 0 = relayed but the
 * client must be closed (length unknown), -1 = failed before anything was sent. */
static int relay_response(int bfd, int cfd, int is_head)
{
    char buf[BUF_SIZE];
    size_t have = 0;
    long long total = -2, sent = 0;  /* -2: head not parsed yet */
    struct head h;
    for (;;) {
        ssize_t n = read_some(bfd, buf + have, sizeof buf - have);
        if (n <= 0)  /* EOF: once anything was relayed we can only close */
            return sent > 0 ? 0 : -1;
        have += (size_t)n;
        if (total == -2) {
            int p = parse_head(buf, have, 1, &h);
            if (p < 0 || (p == 0 && have == sizeof buf))
                return -1;
            if (p == 0)
                continue;
            total = response_total(&h, is_head);
        }
        if (write_all(cfd, buf, have) < 0)
            return 0;
        sent += (long long)have;
        have = 0;
        if (total >= 0 && sent >= total)
            return 1;
    }
}

/* Forward one request (already complete in the buffer) and relay its answer.
 * Returns 0 to keep serving the client, -1 to close it. */
static int proxy_request(struct client *c, const struct head *req)
{
    int bfd = connect_backend();
    if (bfd < 0) {
        send_status(c->fd, 502, "Bad Gateway");
        return -1;
    }
    int rc = write_all(bfd, c->buf, request_size(req)) < 0
                 ? -1
                 : relay_response(bfd, c->fd, req->is_head);
    close(bfd);
    if (rc < 0)
        send_status(c->fd, 502, "Bad Gateway");
    return rc == 1 && req->keep_alive ? 0 : -1;
}

/* ---- the client side -------------------------------------------------------- */

/* Read more client bytes. >0 read, 0 EOF, -1 error. */
static ssize_t client_fill(struct client *c)
{
    ssize_t n = read_some(c->fd, c->buf + c->len, BUF_SIZE - c->len);
    if (n > 0)
        c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return n;
}

/* Wait until a whole request (head + body) is buffered and parse it into *h.
 * 1 = ready, 0 = client gone, -1 = error already answered. */
static int next_request(struct client *c, struct head *h)
{
    for (;;) {
        int p = parse_head(c->buf, c->len, 0, h);
        if (p < 0) {
            send_status(c->fd, 400, "Bad Request");
            return -1;
        }
        if (p && request_size(h) > BUF_SIZE) {
            send_status(c->fd, 413, "Payload Too Large");
            return -1;
        }
        if (p && c->len >= request_size(h))
            return 1;
        if (c->len == BUF_SIZE || client_fill(c) <= 0)
            return 0;
    }
}

static void serve_client(struct client *c)
{
    struct head req;
    while (next_request(c, &req) == 1) {
        if (proxy_request(c, &req) < 0)
            return;
        size_t req_len = request_size(&req);
        memmove(c->buf, c->buf + req_len, c->len - req_len);
        c->len -= req_len;
    }
}

static void *client_thread(void *arg)
{
    struct client *c = arg;
    serve_client(c);
    close(c->fd);
    free(c);
    return NULL;
}

/* ---- listener and main ------------------------------------------------------ */

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

static void spawn_client(int fd)
{
    static int warned;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct client *c = malloc(sizeof *c);
    pthread_attr_t attr;
    pthread_t t;
    int err = ENOMEM;
    if (c) {
        c->fd = fd;
        c->len = 0;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        err = pthread_create(&t, &attr, client_thread, c);
        pthread_attr_destroy(&attr);
    }
    if (err != 0) {
        if (!warned++)
            fprintf(stderr, "legacy_proxy: cannot start a thread: %s\n", strerror(err));
        free(c);
        close(fd);
    }
}

static void accept_loop(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            spawn_client(fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            continue;
        }
        perror("legacy_proxy: accept");
        exit(1);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: legacy_proxy [--port P] --backend HOST:PORT\n");
    exit(2);
}

/* Split "HOST:PORT" into opt.host and opt.service. */
static void parse_backend(const char *s)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof opt.host ||
        strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof opt.service)
        usage();
    memcpy(opt.host, s, (size_t)(colon - s));
    opt.host[colon - s] = '\0';
    strcpy(opt.service, colon + 1);
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {  /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--port") == 0 && v) {
            char *e;
            long p = strtol(v, &e, 10);
            if (*e || e == v || p < 0 || p > 65535)
                usage();
            opt.port = (int)p;
        } else if (strcmp(a, "--backend") == 0) {
            parse_backend(v);
        } else {
            usage();
        }
    }
    if (opt.host[0] == '\0')
        usage();
}

int main(int argc, char **argv)
{
    int port;
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    int lfd = open_listener(opt.port, &port);
    if (lfd < 0) {
        perror("legacy_proxy: listen");
        return 1;
    }
    printf("listening on %d\n", port);
    fflush(stdout);
    accept_loop(lfd);
    return 0;
}

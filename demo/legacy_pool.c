/*
 * legacy_pool.c - a thread-pool line server, the second legacy daemon of the
 * libgreen speedup demo.
 *
 * This is the classic pre-event-loop design: the main thread blocks in
 * accept() and pushes each new socket into a bounded queue; N worker threads,
 * started once, pop sockets from the queue and serve each one until the
 * client closes it. The queue is an array ring guarded by one
 * pthread_mutex_t, with one condition variable for "not empty" (workers wait
 * on it) and one for "not full" (the acceptor waits on it when every slot is
 * taken). Under LD_PRELOAD=libgreen.so the same mutex and condvars become
 * cooperative, which is what this program exercises.
 *
 * Protocol: every '\n'-terminated line received is written back unchanged
 * (echo). Bytes without a newline yet are kept until the newline arrives,
 * unless a line outgrows the buffer, in which case what we have is echoed.
 *
 * Usage:
 *   legacy_pool [--port P] [--workers N] [--queue N]
 *
 *   --port P     TCP port on 127.0.0.1 (default 9090; 0 = pick a free one)
 *   --workers N  number of worker threads (default 16)
 *   --queue N    capacity of the accept queue (default 1024)
 *
 * Note what a fixed pool means: a connection is tied to one worker until it
 * closes, so with keep-alive clients at most N connections are served at a
 * time and the others wait in the queue (or the kernel backlog). That is the
 * design's known limit, not a bug of this program.
 *
 * Prints "listening on PORT" on stdout (flushed) once ready. Binds 127.0.0.1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_BUF_SIZE 16384

/* The bounded queue of accepted sockets shared by the acceptor and workers. */
struct fd_queue {
    pthread_mutex_t lock;      /* guards every field below */
    pthread_cond_t not_empty;  /* signalled after a push */
    pthread_cond_t not_full;   /* signalled after a pop */
    int *fds;                  /* ring storage, cap entries */
    size_t cap;                /* capacity */
    size_t head;               /* index of the oldest entry */
    size_t count;              /* entries in the ring */
};

static struct fd_queue queue = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .not_empty = PTHREAD_COND_INITIALIZER,
    .not_full = PTHREAD_COND_INITIALIZER,
};

static struct {
    int port;
    long workers;
    long queue_cap;
} opt = { .port = 9090, .workers = 16, .queue_cap = 1024 };

/* ---- the queue -------------------------------------------------------- */

/* Append fd, waiting while the queue is full. */
static void queue_push(struct fd_queue *q, int fd)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == q->cap)
        pthread_cond_wait(&q->not_full, &q->lock);
    q->fds[(q->head + q->count) % q->cap] = fd;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

/* Remove and return the oldest fd, waiting while the queue is empty. */
static int queue_pop(struct fd_queue *q)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == 0)
        pthread_cond_wait(&q->not_empty, &q->lock);
    int fd = q->fds[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->lock);
    return fd;
}

/* ---- serving one connection -------------------------------------------- */

/* Write all of buf, retrying partial writes and EINTR. 0 on success. */
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

/* Echo complete lines from buf[0..*len); keep the unfinished tail. */
static int echo_lines(int fd, char *buf, size_t *len)
{
    char *last = memrchr(buf, '\n', *len);
    size_t upto = last ? (size_t)(last - buf) + 1 : 0;
    if (!last && *len == LINE_BUF_SIZE)
        upto = *len;  /* a line longer than the buffer: pass it through */
    if (upto == 0)
        return 0;
    if (write_all(fd, buf, upto) < 0)
        return -1;
    memmove(buf, buf + upto, *len - upto);
    *len -= upto;
    return 0;
}

/* Serve one connection until EOF or an error. */
static void serve_connection(int fd, char *buf)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, LINE_BUF_SIZE - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        len += (size_t)n;
        if (echo_lines(fd, buf, &len) < 0)
            return;
    }
}

/* Worker thread: pop a socket, serve it to the end, close it, repeat. */
static void *worker(void *arg)
{
    (void)arg;
    char *buf = malloc(LINE_BUF_SIZE);
    if (!buf) {
        fprintf(stderr, "legacy_pool: out of memory in a worker\n");
        return NULL;
    }
    for (;;) {
        int fd = queue_pop(&queue);
        serve_connection(fd, buf);
        close(fd);
    }
    return NULL;
}

/* ---- listener and main --------------------------------------------------- */

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

/* Start the workers. Returns how many started. */
static long start_workers(long n)
{
    long started = 0;
    for (; started < n; started++) {
        pthread_t t;
        int err = pthread_create(&t, NULL, worker, NULL);
        if (err != 0) {
            fprintf(stderr, "legacy_pool: started %ld of %ld workers: %s\n",
                    started, n, strerror(err));
            break;
        }
        pthread_detach(t);
    }
    return started;
}

/* Accept forever, handing each socket to the pool. */
static void accept_loop(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            queue_push(&queue, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            continue;
        }
        perror("legacy_pool: accept");
        exit(1);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: legacy_pool [--port P] [--workers N] [--queue N]\n");
    exit(2);
}

/* Parse a decimal number in [min, max], or exit with the usage. */
static long parse_num(const char *s, long min, long max)
{
    char *e;
    errno = 0;
    long v = s ? strtol(s, &e, 10) : -1;
    if (!s || errno || e == s || *e || v < min || v > max)
        usage();
    return v;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {  /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--port") == 0)
            opt.port = (int)parse_num(v, 0, 65535);
        else if (strcmp(a, "--workers") == 0)
            opt.workers = parse_num(v, 1, 30000);
        else if (strcmp(a, "--queue") == 0)
            opt.queue_cap = parse_num(v, 1, 1000000);
        else
            usage();
    }
}

int main(int argc, char **argv)
{
    int port;
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    queue.cap = (size_t)opt.queue_cap;
    queue.fds = calloc(queue.cap, sizeof *queue.fds);
    if (!queue.fds) {
        fprintf(stderr, "legacy_pool: out of memory\n");
        return 1;
    }
    int lfd = open_listener(opt.port, &port);
    if (lfd < 0) {
        perror("legacy_pool: listen");
        return 1;
    }
    if (start_workers(opt.workers) == 0)
        return 1;
    printf("listening on %d\n", port);
    fflush(stdout);
    accept_loop(lfd);
    return 0;
}

/*
 * prog_stress_echo.c - a thread-per-connection echo daemon and its load
 * generator, both plain pthread programs, for the integrity stress test.
 *
 *   prog_stress_echo server CONNS
 *     Listens on 127.0.0.1 (prints "PORT p"), serves exactly CONNS
 *     connections, one pthread each, then prints
 *     "SERVED conns=.. bytes=.. errors=.." and exits. Each handler reads
 *     random-sized chunks (1..16 KiB) and writes them back in random
 *     pieces; odd connections get a 4 KiB SO_SNDBUF (see TINY_SNDBUF),
 *     every third
 *     uses recv/send instead of read/write. It prints "PEAK live=..
 *     threads=..": the most handlers alive at once and the OS threads
 *     counted near that peak.
 *
 *   prog_stress_echo client PORT CONNS MAXBYTES
 *     Opens CONNS connections, all of them before any data flows (a
 *     barrier; prints "PEAK threads=.." there), then each connection's
 *     thread writes its own byte stream (stream_byte, random length up to
 *     MAXBYTES, random chunks) while a second thread reads the echo back,
 *     checks every byte and its position, and counts what is missing or
 *     extra at EOF. One connection in eight is a slow reader (sleeps up to
 *     2 ms between reads). Prints "RESULT conns=.. ok=.. sent=..
 *     received=.. corrupt=.. lost=.. extra=.. errors=..".
 */
#include "stress.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>

/* Small socket buffers: 4 KiB send buffers (the kernel doubles the value
 * and writers block after a few segments). SO_RCVBUF is set only when
 * SMALL_RCVBUF is not 0: small receive buffers stall loopback TCP itself
 * for tens of seconds, natively too (receive-queue drops, then
 * retransmissions with exponential backoff), which would test the kernel,
 * not us. */
enum { TINY_SNDBUF = 4096, SMALL_RCVBUF = 0, STACK = 96 * 1024 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* Segments of at most 1400 bytes, as on Ethernet. Loopback's default MSS
 * (~64 KiB) is larger than a tiny receive buffer: the kernel then drops
 * whole segments and retransmits with exponential backoff, stalling a
 * connection for seconds (seen as a 120 s hang with 4 KiB buffers) in a
 * way no real network with tiny buffers shows. */
static void ethernet_mss(int fd)
{
    int mss = 1400;
    setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
}

static void tiny_buffers(int fd)
{
    int s = TINY_SNDBUF, r = SMALL_RCVBUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &s, sizeof s);
    if (r)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &r, sizeof r);
}

static void detached_thread(void *(*fn)(void *), void *arg, pthread_t *out)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, STACK);
    pthread_t t;
    if (!out)
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(out ? out : &t, &a, fn, arg) != 0)
        DIE("pthread_create: out of threads");
    pthread_attr_destroy(&a);
}

/* ------------------------------------------------------------ server */

static int srv_live, srv_done, srv_errors, srv_peak, srv_peak_threads;
static long long srv_bytes;

struct srv_conn { int fd; int idx; };

/* Write all n bytes in random pieces; -1 on error. */
static int write_pieces(int fd, const char *b, size_t n, uint64_t *rng, int use_send)
{
    size_t off = 0;
    while (off < n) {
        size_t piece = rng_range(rng, 1, n - off);
        ssize_t w = use_send ? send(fd, b + off, piece, MSG_NOSIGNAL)
                             : write(fd, b + off, piece);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

static void *srv_handler(void *arg)
{
    struct srv_conn c = *(struct srv_conn *)arg;
    free(arg);
    uint64_t rng = rng_seed((uint64_t)c.idx + 7);
    int use_send = c.idx % 3 == 0, err = 0;
    long long total = 0;
    char buf[16384];
    if (c.idx & 1)
        tiny_buffers(c.fd);
    for (;;) {
        size_t want = rng_range(&rng, 1, sizeof buf);
        ssize_t n = use_send ? recv(c.fd, buf, want, 0) : read(c.fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0;
            break;
        }
        total += n;
        if (write_pieces(c.fd, buf, (size_t)n, &rng, use_send) < 0) {
            err = 1;
            break;
        }
    }
    close(c.fd);
    pthread_mutex_lock(&mu);
    srv_live--;
    srv_done++;
    srv_errors += err;
    srv_bytes += total;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static int server(int conns)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ethernet_mss(l);               /* inherited by accepted sockets */
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sl) < 0 || listen(l, 4096) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
        DIE("listen: %s", strerror(errno));
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    for (int i = 0; i < conns; i++) {
        int fd = accept(l, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                i--;
            else
                DIE("accept: %s", strerror(errno));
            continue;
        }
        struct srv_conn *c = malloc(sizeof *c);
        *c = (struct srv_conn){ fd, i };
        pthread_mutex_lock(&mu);
        int live = ++srv_live;
        pthread_mutex_unlock(&mu);
        detached_thread(srv_handler, c, NULL);
        if (live > srv_peak) {     /* OS threads at the peak of live handlers */
            srv_peak = live;
            if (live % 50 == 0 || live == conns)
                srv_peak_threads = os_threads();
        }
    }
    pthread_mutex_lock(&mu);
    while (srv_done < conns)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    printf("PEAK live=%d threads=%d\n", srv_peak, srv_peak_threads);
    printf("SERVED conns=%d bytes=%lld errors=%d hooked=%d\n", srv_done, srv_bytes,
           srv_errors, hooked((void *)accept));
    return 0;
}

/* ------------------------------------------------------------ client */

static struct sockaddr_in cli_addr;
/* cli_bar: every connection is made; cli_go: the main thread has counted
 * the OS threads while all of them were alive (once released, a fast
 * connection may finish and its thread exit before main looks). */
static pthread_barrier_t cli_bar, cli_go;
static long long cli_sent, cli_received;
static int cli_ok, cli_corrupt, cli_lost, cli_extra, cli_errors;
static long long cli_maxbytes;

struct cli_conn {
    int fd;                 /* the connection */
    int idx;                /* connection number: stream id, behaviour */
    long long len;          /* bytes this connection sends */
    long long got;          /* bytes the reader received */
    int corrupt;            /* the reader saw a wrong byte */
    int err;                /* a call failed */
};

static void *cli_reader(void *arg)
{
    struct cli_conn *c = arg;
    uint64_t rng = rng_seed((uint64_t)c->idx + 1000003);
    int slow = c->idx % 8 == 0;
    unsigned char buf[16384];
    for (;;) {
        size_t want = rng_range(&rng, 1, sizeof buf);
        ssize_t n = c->idx % 3 == 1 ? recv(c->fd, buf, want, 0) : read(c->fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            c->err |= n < 0;
            break;
        }
        if (!c->corrupt && stream_check((uint64_t)c->idx, (uint64_t)c->got, buf, (size_t)n) != (size_t)n)
            c->corrupt = 1;
        c->got += n;
        if (slow)
            usleep((useconds_t)rng_range(&rng, 0, 2000));
    }
    return NULL;
}

static void *cli_conn_main(void *arg)
{
    struct cli_conn *c = arg;
    uint64_t rng = rng_seed((uint64_t)c->idx + 99991);
    c->len = (long long)rng_range(&rng, 0, (uint64_t)cli_maxbytes);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    ethernet_mss(c->fd);
    if (c->idx & 1)
        tiny_buffers(c->fd);
    int r;
    while ((r = connect(c->fd, (struct sockaddr *)&cli_addr, sizeof cli_addr)) < 0 && errno == EINTR)
        ;
    c->err = r < 0;
    pthread_barrier_wait(&cli_bar);
    pthread_barrier_wait(&cli_go);
    if (c->err) {
        close(c->fd);
        return NULL;
    }
    pthread_t rd;
    detached_thread(cli_reader, c, &rd);
    unsigned char buf[8192];
    long long off = 0;
    while (off < c->len) {
        size_t n = (size_t)rng_range(&rng, 1, sizeof buf);
        if ((long long)n > c->len - off)
            n = (size_t)(c->len - off);
        stream_fill((uint64_t)c->idx, (uint64_t)off, buf, n);
        ssize_t w = c->idx % 3 == 1 ? send(c->fd, buf, n, MSG_NOSIGNAL) : write(c->fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            c->err = 1;
            break;
        }
        off += w;
    }
    shutdown(c->fd, SHUT_WR);
    pthread_join(rd, NULL);
    close(c->fd);
    pthread_mutex_lock(&mu);
    cli_sent += off;
    cli_received += c->got;
    cli_corrupt += c->corrupt;
    cli_lost += c->got < off;
    cli_extra += c->got > off;
    cli_errors += c->err;
    cli_ok += !c->corrupt && !c->err && c->got == off && off == c->len;
    pthread_mutex_unlock(&mu);
    return NULL;
}

static int client(int port, int conns, long long maxbytes)
{
    cli_addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cli_maxbytes = maxbytes;
    pthread_barrier_init(&cli_bar, NULL, (unsigned)conns + 1);
    pthread_barrier_init(&cli_go, NULL, (unsigned)conns + 1);
    struct cli_conn *cs = calloc((size_t)conns, sizeof *cs);
    pthread_t *ts = calloc((size_t)conns, sizeof *ts);
    for (int i = 0; i < conns; i++) {
        cs[i].idx = i;
        detached_thread(cli_conn_main, &cs[i], &ts[i]);
    }
    pthread_barrier_wait(&cli_bar);
    printf("PEAK threads=%d\n", os_threads());
    fflush(stdout);
    pthread_barrier_wait(&cli_go);
    for (int i = 0; i < conns; i++)
        pthread_join(ts[i], NULL);
    printf("RESULT conns=%d ok=%d sent=%lld received=%lld corrupt=%d lost=%d extra=%d "
           "errors=%d\n", conns, cli_ok, cli_sent, cli_received, cli_corrupt, cli_lost,
           cli_extra, cli_errors);
    return 0;
}

int main(int argc, char **argv)
{
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    alarm(170);                    /* watchdog: a hang dies with SIGALRM */
    if (argc == 3 && !strcmp(argv[1], "server"))
        return server(atoi(argv[2]));
    if (argc == 5 && !strcmp(argv[1], "client"))
        return client(atoi(argv[2]), atoi(argv[3]), atoll(argv[4]));
    fprintf(stderr, "usage: %s server CONNS | client PORT CONNS MAXBYTES\n", argv[0]);
    return 2;
}

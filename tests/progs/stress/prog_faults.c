/*
 * prog_faults.c MODE - fault injection against a plain pthread program,
 * run under the shim (and natively where the test compares outcomes).
 *
 *   emfile  A thread-per-connection echo daemon whose RLIMIT_NOFILE is
 *           lowered to about 20 free descriptors; a forked client opens
 *           100 connections at once. accept() must fail with EMFILE (the
 *           daemon counts it, frees its held connections and retries),
 *           and every one of the 100 clients must get its echo.
 *           Prints "EMFILE seen=.. other_errors=.. served=.. client_ok=..".
 *   reset   100 rounds of a peer that resets (SO_LINGER 0 close) in the
 *           middle of a 4 MiB transfer to us, and 100 of a peer that
 *           resets while we read; what we got must be an intact prefix,
 *           the error ECONNRESET or EPIPE (SIGPIPE ignored). Then a child
 *           with SIGPIPE at its default writes to a reset connection and
 *           must die of SIGPIPE; one using MSG_NOSIGNAL gets EPIPE.
 *   short   Short reads (a peer trickling 1-100 byte pieces into a 64 KiB
 *           read), recv(MSG_WAITALL) that must not return short, readv;
 *           short writes with the program's own O_NONBLOCK and with
 *           MSG_DONTWAIT: the peer receives exactly what was reported.
 *   timeo   SO_SNDTIMEO (2 ms) on a sender facing a slow reader (1 ms
 *           pause per read, 4 KiB buffers) and
 *           SO_RCVTIMEO (2 ms) on a reader facing a slow sender: timeouts
 *           happen mid-transfer; reported counts equal received counts,
 *           every byte in place.
 *   closeall  A forked child closes every descriptor from 3 to 1023 (the
 *           daemon idiom), then a thread writes a pipe another reads.
 *           Prints "CLOSEALL child_status=..".
 * Every mode prints "PROOF ..." first and ends with exit 0 when it could
 * run; the test judges the printed counts.
 */
#include "stress.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static int tcp_listener(struct sockaddr_in *sa, int backlog)
{
    *sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof *sa;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)sa, sl) < 0 || listen(l, backlog) < 0 ||
        getsockname(l, (struct sockaddr *)sa, &sl) < 0)
        DIE("listener: %s", strerror(errno));
    return l;
}

/* A connected TCP pair over loopback: *a is the client end. */
static void tcp_pair(int l, const struct sockaddr_in *sa, int *a, int *b)
{
    *a = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*a, (const struct sockaddr *)sa, sizeof *sa) < 0)
        DIE("connect: %s", strerror(errno));
    *b = accept(l, NULL, NULL);
    if (*b < 0)
        DIE("accept: %s", strerror(errno));
}

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 128 * 1024);
    if (pthread_create(&t, &a, fn, arg) != 0)
        DIE("pthread_create");
    pthread_attr_destroy(&a);
    return t;
}

/* ------------------------------------------------------------- emfile */

enum { EM_CLIENTS = 100, EM_FREE = 20 };
static int em_released, em_served;

static void *em_handler(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[64];
    size_t n = 0;
    while (n < sizeof buf && (n == 0 || buf[n - 1] != '\n')) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    if (write(fd, buf, n) != (ssize_t)n)
        fprintf(stderr, "echo write failed: %s\n", strerror(errno));
    pthread_mutex_lock(&mu);
    while (!em_released)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    close(fd);
    pthread_mutex_lock(&mu);
    em_served++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static int em_client(const struct sockaddr_in *sa)
{
    int fds[EM_CLIENTS], ok = 0;
    for (int i = 0; i < EM_CLIENTS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct timeval tv = { 20, 0 };
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fds[i], (const struct sockaddr *)sa, sizeof *sa) < 0)
            return 100;
        dprintf(fds[i], "ping %d\n", i);
    }
    for (int i = 0; i < EM_CLIENTS; i++) {
        char want[32], got[32];
        int wl = snprintf(want, sizeof want, "ping %d\n", i);
        ssize_t n = 0, r;
        while (n < wl && (r = read(fds[i], got + n, sizeof got - (size_t)n)) > 0)
            n += r;
        ok += n == wl && !memcmp(got, want, (size_t)wl);
    }
    return EM_CLIENTS - ok;
}

static int mode_emfile(void)
{
    struct sockaddr_in sa;
    int l = tcp_listener(&sa, 256);
    fflush(NULL);
    pid_t kid = fork();
    if (kid == 0)
        _exit(em_client(&sa));
    /* Lower the limit to leave about EM_FREE descriptors. */
    int top = dup(0);
    close(top);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = (rlim_t)(top + EM_FREE);
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        DIE("setrlimit: %s", strerror(errno));
    int emfile = 0, other = 0, accepted = 0;
    while (accepted < EM_CLIENTS && other < 10) {
        int fd = accept(l, NULL, NULL);
        if (fd < 0) {
            if (errno == EMFILE) {
                emfile++;
                pthread_mutex_lock(&mu);
                em_released = 1;   /* let the held connections go */
                pthread_cond_broadcast(&cv);
                pthread_mutex_unlock(&mu);
                sleep_ms(5);
            } else if (errno != EINTR) {
                fprintf(stderr, "accept: %s\n", strerror(errno));
                other++;
            }
            continue;
        }
        accepted++;
        pthread_t t = spawn(em_handler, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
    pthread_mutex_lock(&mu);
    em_released = 1;
    pthread_cond_broadcast(&cv);
    while (em_served < accepted)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    int st;
    waitpid(kid, &st, 0);
    printf("EMFILE seen=%d other_errors=%d served=%d client_ok=%d\n", emfile, other, em_served,
           WIFEXITED(st) ? EM_CLIENTS - WEXITSTATUS(st) : -1);
    return 0;
}

/* -------------------------------------------------------------- reset */

enum { RESET_ROUNDS = 100, BIG = 4 * 1024 * 1024 };
static unsigned char big[BIG];

struct reset_round {
    int fd;                 /* our end (the writer's or the reader's) */
    int peer;               /* the end that resets */
    long long limit;        /* bytes the peer handles before resetting */
    long long moved;        /* bytes we wrote (reported) / read */
    int err;                /* errno of the failing call, 0 if none */
    int intact;             /* the peer's / our bytes were the stream */
};

static void hard_reset(int fd)
{
    struct linger lg = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* The peer reads `limit` bytes of our write, then resets. */
static void *reset_reading_peer(void *arg)
{
    struct reset_round *r = arg;
    unsigned char buf[16384];
    long long got = 0;
    while (got < r->limit) {
        ssize_t n = read(r->peer, buf, sizeof buf);
        if (n <= 0)
            break;
        if (stream_check(9, (uint64_t)got, buf, (size_t)n) != (size_t)n)
            r->intact = 0;
        got += n;
    }
    hard_reset(r->peer);
    return NULL;
}

/* The peer writes `limit` bytes to us, then resets. */
static void *reset_writing_peer(void *arg)
{
    struct reset_round *r = arg;
    long long off = 0;
    while (off < r->limit) {
        ssize_t n = write(r->peer, big + off, (size_t)(r->limit - off));
        if (n <= 0)
            break;
        off += n;
    }
    hard_reset(r->peer);
    return NULL;
}

/* A child writing to a reset connection with SIGPIPE at its default. */
static int sigpipe_child(int l, const struct sockaddr_in *sa, int nosignal)
{
    fflush(NULL);
    pid_t p = fork();
    if (p == 0) {
        signal(SIGPIPE, SIG_DFL);
        int a, b;
        tcp_pair(l, sa, &a, &b);
        hard_reset(b);
        sleep_ms(20);
        for (int i = 0; i < 100; i++) {
            ssize_t n = nosignal ? send(a, "x", 1, MSG_NOSIGNAL) : write(a, "x", 1);
            if (n < 0 && errno == EPIPE)
                _exit(nosignal ? 0 : 3);
        }
        _exit(4);
    }
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int mode_reset(void)
{
    struct sockaddr_in sa;
    int l = tcp_listener(&sa, 64);
    stream_fill(9, 0, big, BIG);
    uint64_t rng = rng_seed(3);
    int w_ok = 0, w_bad = 0, r_ok = 0, r_bad = 0;
    long long w_bytes = 0, r_bytes = 0;
    for (int i = 0; i < RESET_ROUNDS; i++) {
        /* We write; the peer resets after reading up to 256 KiB. */
        struct reset_round r = { .limit = (long long)rng_range(&rng, 0, 256 * 1024), .intact = 1 };
        tcp_pair(l, &sa, &r.peer, &r.fd);
        pthread_t t = spawn(reset_reading_peer, &r);
        while (r.moved < BIG) {
            ssize_t n = write(r.fd, big + r.moved, (size_t)(BIG - r.moved));
            if (n < 0) {
                r.err = errno;
                break;
            }
            r.moved += n;
        }
        pthread_join(t, NULL);
        close(r.fd);
        /* The whole 4 MiB may fit in the kernel's buffers before the
         * reset lands: then the write simply succeeded. */
        int good = (r.err == ECONNRESET || r.err == EPIPE || (!r.err && r.moved == BIG)) &&
                   r.intact;
        if (!good)
            fprintf(stderr, "write round %d: moved %lld err %s intact %d\n", i, r.moved,
                    strerror(r.err), r.intact);
        w_ok += good;
        w_bad += !good;
        w_bytes += r.moved;
        /* The peer writes up to 256 KiB, then resets while we read. */
        struct reset_round q = { .limit = (long long)rng_range(&rng, 0, 256 * 1024), .intact = 1 };
        tcp_pair(l, &sa, &q.peer, &q.fd);
        t = spawn(reset_writing_peer, &q);
        unsigned char buf[65536];
        for (;;) {
            ssize_t n = read(q.fd, buf, sizeof buf);
            if (n < 0)
                q.err = errno;
            if (n <= 0)
                break;
            if (stream_check(9, (uint64_t)q.moved, buf, (size_t)n) != (size_t)n)
                q.intact = 0;
            q.moved += n;
        }
        pthread_join(t, NULL);
        close(q.fd);
        good = (q.err == ECONNRESET || q.err == 0) && q.intact && q.moved <= q.limit;
        if (!good)
            fprintf(stderr, "read round %d: moved %lld of %lld err %s intact %d\n", i, q.moved,
                    q.limit, strerror(q.err), q.intact);
        r_ok += good;
        r_bad += !good;
        r_bytes += q.moved;
    }
    printf("RESET write_ok=%d write_bad=%d read_ok=%d read_bad=%d\n", w_ok, w_bad, r_ok, r_bad);
    printf("BYTES written_before_reset=%lld read_before_reset=%lld\n", w_bytes, r_bytes);
    printf("SIGPIPE default_status=%d nosignal_status=%d\n", sigpipe_child(l, &sa, 0),
           sigpipe_child(l, &sa, 1));
    return 0;
}

/* -------------------------------------------------------------- short */

struct trickle { int fd; long long total; };

static void *trickler(void *arg)
{
    struct trickle *t = arg;
    uint64_t rng = rng_seed(11);
    unsigned char buf[128];
    for (long long off = 0; off < t->total;) {
        size_t n = (size_t)rng_range(&rng, 1, 100);
        if ((long long)n > t->total - off)
            n = (size_t)(t->total - off);
        stream_fill(21, (uint64_t)off, buf, n);
        ssize_t w = write(t->fd, buf, n);
        if (w <= 0)
            break;
        off += w;
        if (rng_next(&rng) % 4 == 0)
            usleep(50);
    }
    shutdown(t->fd, SHUT_WR);
    return NULL;
}

struct drain { int fd; long long got; int intact; uint64_t stream; };

static void *drainer(void *arg)
{
    struct drain *d = arg;
    unsigned char buf[65536];
    for (;;) {
        ssize_t n = read(d->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        if (stream_check(d->stream, (uint64_t)d->got, buf, (size_t)n) != (size_t)n)
            d->intact = 0;
        d->got += n;
    }
    return NULL;
}

/* Write stream s from *off with a non-blocking call until total; count
 * partial results and EAGAINs; sleep a little on EAGAIN. */
static void nb_writer(int fd, uint64_t s, long long total, int use_flag, int *partial,
                      int *eagain, long long *reported)
{
    static unsigned char buf[65536];
    long long off = 0;
    while (off < total) {
        size_t n = total - off > (long long)sizeof buf ? sizeof buf : (size_t)(total - off);
        stream_fill(s, (uint64_t)off, buf, n);
        ssize_t w = use_flag ? write(fd, buf, n) : send(fd, buf, n, MSG_DONTWAIT);
        if (w < 0 && errno == EAGAIN) {
            (*eagain)++;
            usleep(200);
            continue;
        }
        if (w <= 0)
            break;
        *partial += (size_t)w < n;
        off += w;
    }
    *reported = off;
}

static int mode_short(void)
{
    struct sockaddr_in sa;
    int l = tcp_listener(&sa, 16), a, b;
    /* Short reads: 64 KiB reads facing 1-100 byte writes. */
    tcp_pair(l, &sa, &a, &b);
    struct trickle tr = { b, 100000 };
    pthread_t t = spawn(trickler, &tr);
    unsigned char buf[65536];
    long long got = 0;
    int reads = 0, intact = 1;
    for (;;) {
        ssize_t n = reads % 2 ? read(a, buf, sizeof buf)
                              : readv(a, (struct iovec[]){ { buf, 10 }, { buf + 10, sizeof buf - 10 } }, 2);
        if (n <= 0)
            break;
        if (stream_check(21, (uint64_t)got, buf, (size_t)n) != (size_t)n)
            intact = 0;
        got += n;
        reads++;
    }
    pthread_join(t, NULL);
    close(a);
    close(b);
    printf("SHORTREAD total=%lld intact=%d short=%d\n", got, intact, reads > 1);
    /* MSG_WAITALL waits for the whole amount even from a trickle. */
    tcp_pair(l, &sa, &a, &b);
    tr = (struct trickle){ b, 30000 };
    t = spawn(trickler, &tr);
    ssize_t w1 = recv(a, buf, 20000, MSG_WAITALL);
    ssize_t w2 = recv(a, buf + 20000, 20000, MSG_WAITALL);
    pthread_join(t, NULL);
    close(a);
    close(b);
    printf("WAITALL first=%zd second=%zd intact=%d\n", w1, w2,
           w1 == 20000 && w2 == 10000 && stream_check(21, 0, buf, 30000) == 30000);
    /* Short writes: the program's own O_NONBLOCK, then MSG_DONTWAIT. */
    for (int use_flag = 1; use_flag >= 0; use_flag--) {
        tcp_pair(l, &sa, &a, &b);
        int v = 4096;
        setsockopt(a, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
        if (use_flag)
            fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK);
        struct drain d = { b, 0, 1, 31 };
        t = spawn(drainer, &d);
        int partial = 0, eagain = 0;
        long long reported = 0;
        nb_writer(a, 31, 1024 * 1024, use_flag, &partial, &eagain, &reported);
        shutdown(a, SHUT_WR);
        pthread_join(t, NULL);
        close(a);
        close(b);
        printf("SHORTWRITE how=%s reported=%lld received=%lld intact=%d short_seen=%d\n",
               use_flag ? "o_nonblock" : "msg_dontwait", reported, d.got, d.intact,
               partial + eagain > 0);
    }
    return 0;
}

/* -------------------------------------------------------------- timeo */

struct slow { int fd; long long got; int intact; long long total; };

static void *slow_reader(void *arg)
{
    struct slow *s = arg;
    unsigned char buf[4096];
    for (;;) {
        ssize_t n = read(s->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        if (stream_check(41, (uint64_t)s->got, buf, (size_t)n) != (size_t)n)
            s->intact = 0;
        s->got += n;
        usleep(1000);
    }
    return NULL;
}

static void *slow_writer(void *arg)
{
    struct slow *s = arg;
    unsigned char buf[2048];
    for (long long off = 0; off < s->total;) {
        size_t n = sizeof buf;
        if ((long long)n > s->total - off)
            n = (size_t)(s->total - off);
        stream_fill(42, (uint64_t)off, buf, n);
        ssize_t w = write(s->fd, buf, n);
        if (w <= 0)
            break;
        off += w;
        usleep(5000);
    }
    shutdown(s->fd, SHUT_WR);
    return NULL;
}

static int mode_timeo(void)
{
    struct sockaddr_in sa;
    int l = tcp_listener(&sa, 16), a, b;
    struct timeval tv = { 0, 2000 };
    /* SO_SNDTIMEO facing a slow reader. */
    tcp_pair(l, &sa, &a, &b);
    int v = 4096;
    setsockopt(a, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    setsockopt(b, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    setsockopt(a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct slow s = { b, 0, 1, 0 };
    pthread_t t = spawn(slow_reader, &s);
    static unsigned char buf[16384];
    long long off = 0, total = 96 * 1024;
    int timeouts = 0, partial = 0, errors = 0;
    while (off < total) {
        size_t n = sizeof buf;
        if ((long long)n > total - off)
            n = (size_t)(total - off);
        stream_fill(41, (uint64_t)off, buf, n);
        ssize_t w = send(a, buf, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            timeouts++;
            continue;
        }
        if (w <= 0) {
            errors++;
            break;
        }
        partial += (size_t)w < n;
        off += w;
    }
    shutdown(a, SHUT_WR);
    pthread_join(t, NULL);
    close(a);
    close(b);
    printf("SNDTIMEO reported=%lld received=%lld intact=%d timeouts_or_partial=%d errors=%d\n",
           off, s.got, s.intact, timeouts + partial > 0, errors);
    printf("TIMING sndtimeo timeouts=%d partial=%d\n", timeouts, partial);
    /* SO_RCVTIMEO facing a slow writer. */
    tcp_pair(l, &sa, &a, &b);
    setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct slow w = { b, 0, 1, 100 * 1024 };
    t = spawn(slow_writer, &w);
    long long got = 0;
    int intact = 1;
    timeouts = errors = 0;
    for (;;) {
        ssize_t n = recv(a, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            timeouts++;
            continue;
        }
        if (n <= 0) {
            errors += n < 0;
            break;
        }
        if (stream_check(42, (uint64_t)got, buf, (size_t)n) != (size_t)n)
            intact = 0;
        got += n;
    }
    pthread_join(t, NULL);
    printf("RCVTIMEO received=%lld intact=%d timeouts_seen=%d errors=%d\n", got, intact,
           timeouts > 0, errors);
    return 0;
}

/* ----------------------------------------------------------- closeall */

/* The daemon idiom: after fork, close every descriptor from 3 up but the
 * one the child works with (errors ignored), then do blocking I/O on it.
 * The parent writes after 10 ms. */
static int mode_closeall(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        DIE("socketpair");
    fflush(NULL);
    pid_t p = fork();
    if (p == 0) {
        for (int fd = 3; fd < 1024; fd++)
            if (fd != sv[1])
                close(fd);
        char c = 0;
        ssize_t n = read(sv[1], &c, 1);
        _exit(n == 1 && c == 'x' ? 0 : 7);
    }
    close(sv[1]);
    sleep_ms(10);
    send(sv[0], "x", 1, MSG_NOSIGNAL);   /* fails if the child died */
    int st;
    waitpid(p, &st, 0);
    printf("CLOSEALL child_status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(100);
    prove_green();
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "emfile"))
        return mode_emfile();
    if (!strcmp(m, "reset"))
        return mode_reset();
    if (!strcmp(m, "short"))
        return mode_short();
    if (!strcmp(m, "timeo"))
        return mode_timeo();
    if (!strcmp(m, "closeall"))
        return mode_closeall();
    fprintf(stderr, "usage: %s emfile|reset|short|timeo|closeall\n", argv[0]);
    return 2;
}

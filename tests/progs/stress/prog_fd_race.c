/*
 * prog_fd_race.c K - close/fd-reuse races, run under the shim.
 *
 * For each kind of wait (read, write, accept, connect, poll, epoll_wait on
 * a member fd, epoll_wait on the epoll fd itself, select), K iterations of:
 *   1. a pthread ("old waiter") parks in that call on descriptor X;
 *   2. half of the time a stale readiness is injected on X's file just
 *      before the close (data, a pending connection, room to write);
 *   3. the main thread closes X and at once makes a new socketpair whose
 *      end gets the same number X (dup2 if the kernel chose another), or,
 *      half of the time, dup2s a new socketpair end over X (the close and
 *      the reuse in one call);
 *   4. a "new waiter" parks in read() on the new X. It must stay parked
 *      until the new peer writes a token, and then read exactly that
 *      token; the old waiter must finish with EBADF (the shim's promise:
 *      close wakes waiters with EBADF), or with a result its own, old, file
 *      could have produced before the close; it must never act on the new
 *      file (EINVAL/ENOTSOCK, the new token, an event after the close).
 * An epoll_wait on an epoll set X was a member of is not woken by the
 * close (as natively); it must ignore the new X and return only the
 * control pipe's event when that is written.
 * "Before the close" is what the old waiter saw as its call returned: the
 * main thread's close (or dup2) had not returned yet. With several hubs
 * (or natively) a waiter the stale readiness woke completes in parallel
 * with the close, so main cannot tell by looking at it beforehand. A
 * waiter on X itself is forgotten by X's close before the real close (the
 * closer waits for the other hubs), so its "before" is exact; an
 * epoll_wait on a set X was a member of is not, and on another OS thread
 * its stale event may be collected just before the close and seen just
 * after (natively too): there it is accepted either way.
 *
 * Prints one "KIND name iters=.. ebadf=.. old_result=.. wrong=.. hangs=.."
 * line per kind and "TOTAL iters=.. wrong=.. hangs=..". A waiter that does
 * not finish within 2 s is a hang: the program reports it and exits 3.
 * alarm(100) is the last-resort watchdog.
 */
#include "stress.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <dirent.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/syscall.h>

enum kind { K_READ, K_WRITE, K_ACCEPT, K_CONNECT, K_POLL, K_EPOLL_MEMBER,
            K_EPOLL_SELF, K_SELECT, NKINDS };
static const char *kind_name[NKINDS] = { "read", "write", "accept", "connect",
                                         "poll", "epoll_member", "epoll_self",
                                         "select" };

struct waiter {
    int kind;               /* enum kind; -1: the new waiter (read) */
    int fd;                 /* descriptor it waits on */
    volatile int started;   /* set just before the blocking call */
    volatile int done;      /* set after it returned */
    int before_close;       /* it returned before main's close returned */
    int other_os_thread;    /* it ran on another OS thread than main */
    long r;                 /* the call's result */
    int err;                /* errno when r < 0 */
    short revents;          /* poll: revents */
    uint64_t ev[4];         /* epoll: data.u64 of the events returned */
    char data[32];          /* read: what was read */
};

static struct sockaddr_in full_addr;    /* a listener whose queue is full */
static atomic_int closed;               /* main's close of X returned */
static char big[256 * 1024];

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    struct pollfd p = { .fd = w->fd, .events = POLLIN };
    struct epoll_event ev[4];
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(w->fd, &rs);
    w->started = 1;
    switch (w->kind) {
    case K_WRITE:
        w->r = write(w->fd, big, sizeof big);
        break;
    case K_ACCEPT:
        w->r = accept(w->fd, NULL, NULL);
        break;
    case K_CONNECT:
        w->r = connect(w->fd, (struct sockaddr *)&full_addr, sizeof full_addr);
        break;
    case K_POLL:
        w->r = poll(&p, 1, -1);
        w->revents = p.revents;
        break;
    case K_EPOLL_MEMBER:
    case K_EPOLL_SELF:
        w->r = epoll_wait(w->fd, ev, 4, -1);
        for (int i = 0; i < w->r && i < 4; i++)
            w->ev[i] = ev[i].data.u64;
        break;
    case K_SELECT:
        w->r = select(w->fd + 1, &rs, NULL, NULL, NULL);
        break;
    default:
        w->r = read(w->fd, w->data, sizeof w->data - 1);
        break;
    }
    w->err = errno;
    w->before_close = !atomic_load(&closed);
    w->other_os_thread = syscall(SYS_gettid) != getpid();
    w->done = 1;
    return NULL;
}

static void start(struct waiter *w, pthread_t *t)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    if (pthread_create(t, &a, waiter_main, w) != 0)
        DIE("pthread_create");
    pthread_attr_destroy(&a);
    for (int i = 0; !w->started && i < 100000; i++)
        sched_yield();
    if (!w->started)
        DIE("a waiter never started");
}

/* Join within 2 s; 0 on success, -1 on a hang. */
static int join2(pthread_t t)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 2;
    return pthread_timedjoin_np(t, NULL, &ts) == 0 ? 0 : -1;
}

/* Until every other OS thread of the process sleeps (state S in
 * /proc/self/task/TID/stat), at most 2 s: the old waiter has parked in
 * its call. With one hub the waiter parks at the yields of start(); with
 * two it may run on the other hub, in parallel, and this is how main
 * knows it reached its wait (natively: blocked in the kernel). */
static void wait_others_sleep(void)
{
    pid_t me = (pid_t)syscall(SYS_gettid);
    for (int round = 0; round < 10000; round++) {
        DIR *d = opendir("/proc/self/task");
        if (!d)
            return;
        bool all = true;
        struct dirent *e;
        while (all && (e = readdir(d))) {
            if (e->d_name[0] == '.' || atoi(e->d_name) == me)
                continue;
            char path[300], buf[256];
            snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
            FILE *f = fopen(path, "r");
            if (!f)
                continue;
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            char *p = strrchr(buf, ')');
            if (p && p[1] == ' ' && p[2] != 'S')
                all = false;
        }
        closedir(d);
        if (all)
            return;
        usleep(200);
    }
}

static void let_others_run(void)
{
    for (int i = 0; i < 3; i++)
        sched_yield();
    usleep(100);
    sched_yield();
}

static int listener(int backlog, struct sockaddr_in *out)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sl) < 0 || listen(l, backlog) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
        DIE("listener: %s", strerror(errno));
    if (out)
        *out = sa;
    return l;
}

/* A listener with a full accept queue: blocking connects to it park. */
static void make_full_listener(void)
{
    listener(0, &full_addr);
    for (int i = 0; i < 3; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(s, (struct sockaddr *)&full_addr, sizeof full_addr);
    }
    sleep_ms(50);
}

/* Give fd a new socketpair end with the number num; returns the peer. */
static int reuse_number(int num)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        DIE("socketpair: %s", strerror(errno));
    if (sv[1] == num) {
        int t = sv[0];
        sv[0] = sv[1];
        sv[1] = t;
    }
    if (sv[0] != num) {
        if (dup2(sv[0], num) != num)
            DIE("dup2: %s", strerror(errno));
        close(sv[0]);
    }
    return sv[1];
}

/* Close num and reuse it in one call: dup2 a new socketpair end over it.
 * Returns the peer. */
static int replace_number(int num)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        DIE("socketpair: %s", strerror(errno));
    if (dup2(sv[0], num) != num)
        DIE("dup2: %s", strerror(errno));
    atomic_store(&closed, 1);
    close(sv[0]);
    return sv[1];
}

struct counts { int iters, ebadf, old_result, wrong, hangs, not_parked, by_dup2; };

/* Is the old waiter's result one its own file could give? */
static int old_ok(const struct waiter *w, int stale, struct counts *c)
{
    if (w->r < 0 && w->err == EBADF) {
        c->ebadf++;
        return 1;
    }
    c->old_result++;
    switch (w->kind) {
    case K_READ:
        return stale && w->r == 1 && w->data[0] == 'O';
    case K_WRITE:
        return w->r > 0 && w->r <= (long)sizeof big;
    case K_ACCEPT:
        if (w->r >= 0)
            close((int)w->r);
        return stale && w->r >= 0;
    case K_CONNECT:
        return w->r == 0 && w->before_close;
    case K_POLL:
        return w->r == 1 && ((w->revents & POLLNVAL) ||
                             (stale && w->before_close && (w->revents & POLLIN)));
    case K_EPOLL_SELF:
        return w->r == 1 && w->ev[0] == 1 && stale;
    case K_SELECT:
        return w->r == 1 && stale && w->before_close;
    }
    return 0;
}

static void report_wrong(int kind, int it, const struct waiter *w, const char *what)
{
    fprintf(stderr, "WRONG %s iter %d: %s (r=%ld errno=%s revents=%#x ev0=%llu data=%.8s)\n",
            kind_name[kind], it, what, w->r, strerror(w->err), (unsigned)w->revents,
            (unsigned long long)w->ev[0], w->data);
}

/* One iteration of one kind. Returns -1 on a hang. */
static int iteration(int kind, int it, uint64_t *rng, struct counts *c)
{
    static struct waiter old, neu;
    pthread_t to, tn;
    int sv[2] = { -1, -1 }, ctl[2] = { -1, -1 }, ep = -1, x, stale = (int)(rng_next(rng) & 1);
    memset(&old, 0, sizeof old);
    memset(&neu, 0, sizeof neu);
    old.kind = kind;
    if (kind == K_ACCEPT) {
        x = listener(16, NULL);
    } else if (kind == K_CONNECT) {
        x = socket(AF_INET, SOCK_STREAM, 0);
    } else {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
            DIE("socketpair: %s", strerror(errno));
        x = sv[0];
    }
    if (kind == K_WRITE) {
        int v = 4096;
        setsockopt(x, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
        while (send(x, big, sizeof big, MSG_DONTWAIT) > 0)
            ;
    }
    old.fd = x;
    if (kind == K_EPOLL_MEMBER || kind == K_EPOLL_SELF) {
        ep = epoll_create1(0);
        struct epoll_event e = { .events = EPOLLIN, .data.u64 = 1 };
        epoll_ctl(ep, EPOLL_CTL_ADD, x, &e);
        if (kind == K_EPOLL_MEMBER) {
            if (pipe(ctl) < 0)
                DIE("pipe");
            e.data.u64 = 2;
            epoll_ctl(ep, EPOLL_CTL_ADD, ctl[0], &e);
        }
        old.fd = ep;
    }
    atomic_store(&closed, 0);
    start(&old, &to);
    wait_others_sleep();
    for (uint64_t n = rng_range(rng, 0, 3); n > 0; n--)
        sched_yield();
    /* The stale readiness, then the close, then the reuse: no switch in
     * between under the shim (none of these calls parks). */
    int extra = -1;
    if (stale) {
        if (sv[1] >= 0 && kind != K_WRITE)
            send(sv[1], "O", 1, MSG_NOSIGNAL);
        else if (kind == K_WRITE)
            recv(sv[1], big, sizeof big, MSG_DONTWAIT);
        else if (kind == K_ACCEPT) {
            struct sockaddr_in sa;
            socklen_t sl = sizeof sa;
            getsockname(x, (struct sockaddr *)&sa, &sl);
            extra = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            connect(extra, (struct sockaddr *)&sa, sl);
        }
    }
    /* Sometimes let the hub see that readiness (and ready the old waiter)
     * before the close: the waiter then runs after the number was reused
     * and must not act on the new file. */
    if (stale)
        for (uint64_t n = rng_range(rng, 0, 2); n > 0; n--)
            sched_yield();
    int victim = kind == K_EPOLL_SELF ? ep : x;
    int done_before_close = old.done;
    if (done_before_close && kind == K_CONNECT)
        c->not_parked++;
    int peer;
    if (rng_next(rng) & 1) {
        close(victim);
        atomic_store(&closed, 1);
        peer = reuse_number(victim);
    } else {
        peer = replace_number(victim);   /* the dup2 closes X: closed */
        c->by_dup2++;
    }
    neu.kind = -1;
    neu.fd = victim;
    start(&neu, &tn);
    let_others_run();
    c->iters++;
    int bad = 0;
    if (neu.done) {
        report_wrong(kind, it, &neu, "the new descriptor's waiter woke with no data");
        bad = 1;
    }
    char tok[16];
    int tl = snprintf(tok, sizeof tok, "N%d", it);
    if (write(peer, tok, (size_t)tl) != tl)
        DIE("write token: %s", strerror(errno));
    if (join2(tn) < 0) {
        fprintf(stderr, "HANG %s iter %d: the new waiter never saw its token (stale %d; "
                "old waiter: done %d r=%ld errno=%s data=%.8s)\n", kind_name[kind], it, stale,
                old.done, old.r, strerror(old.err), old.data);
        c->hangs++;
        return -1;
    }
    if (neu.r != tl || memcmp(neu.data, tok, (size_t)tl)) {
        report_wrong(kind, it, &neu, "the new waiter read something else than its token");
        bad = 1;
    }
    if (kind == K_EPOLL_MEMBER) {
        let_others_run();
        if (old.done && !old.before_close && !old.other_os_thread) {
            report_wrong(kind, it, &old, "epoll_wait returned for a closed member");
            bad = 1;
        }
        if (write(ctl[1], "c", 1) != 1)
            DIE("write ctl");
    }
    if (join2(to) < 0) {
        fprintf(stderr, "HANG %s iter %d: the old waiter never returned\n", kind_name[kind], it);
        c->hangs++;
        return -1;
    }
    if (kind == K_EPOLL_MEMBER) {
        if (!(old.r == 1 && old.ev[0] == 2) &&
            !((old.before_close || old.other_os_thread) && stale && old.r == 1 &&
              old.ev[0] == 1)) {
            report_wrong(kind, it, &old, "epoll_wait returned something else than the control event");
            bad = 1;
        }
    } else if (!old_ok(&old, stale, c)) {
        report_wrong(kind, it, &old, "the old waiter's result is not its own file's");
        bad = 1;
    }
    c->wrong += bad;
    close(victim);
    close(peer);
    if (sv[1] >= 0)
        close(sv[1]);
    if (kind == K_EPOLL_SELF)
        close(x);
    if (kind == K_EPOLL_MEMBER) {
        close(ep);
        close(ctl[0]);
        close(ctl[1]);
    }
    if (extra >= 0)
        close(extra);
    return 0;
}

/* Parks for the whole run. Placed first, it takes the first thread's
 * place (under the shim that shares the main thread's hub), so that with
 * two hubs the old waiters run on the other hub, in parallel with main's
 * close: the cross-hub path of the close protocol. */
static void *ballast(void *arg)
{
    char c;
    read(*(int *)arg, &c, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    int k = argc > 1 ? atoi(argv[1]) : 2000;
    const char *only = argc > 2 ? argv[2] : NULL;
    signal(SIGPIPE, SIG_IGN);
    alarm(100);
    prove_green();
    make_full_listener();
    static int bp[2];
    pthread_t bt;
    if (pipe(bp) < 0 || pthread_create(&bt, NULL, ballast, &bp[0]) != 0)
        DIE("ballast");
    uint64_t rng = rng_seed(12345);
    int total = 0, wrong = 0, hangs = 0;
    for (int kind = 0; kind < NKINDS; kind++) {
        if (only && strcmp(only, kind_name[kind]))
            continue;
        struct counts c = { 0 };
        int64_t t0 = mono_ns();
        for (int it = 0; it < k && !c.hangs; it++)
            iteration(kind, it, &rng, &c);
        printf("KIND %s iters=%d ebadf=%d old_result=%d wrong=%d hangs=%d not_parked=%d "
               "by_dup2=%d ms=%lld\n", kind_name[kind], c.iters, c.ebadf, c.old_result,
               c.wrong, c.hangs, c.not_parked, c.by_dup2,
               (long long)((mono_ns() - t0) / 1000000));
        fflush(stdout);
        total += c.iters;
        wrong += c.wrong;
        hangs += c.hangs;
        if (c.hangs)
            break;
    }
    printf("TOTAL iters=%d wrong=%d hangs=%d\n", total, wrong, hangs);
    fflush(stdout);
    _exit(hangs ? 3 : 0);
}

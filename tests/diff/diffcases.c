/*
 * diffcases.c - the driver of the differential suite (see diff.h).
 *
 *   diffcases list                 every case name, one a line
 *   diffcases run CASE main        run CASE on the main thread
 *   diffcases run CASE thread      run CASE in a pthread that main joins
 *                                  (under the shim: one on main's OS
 *                                  thread, a thread of main's hub)
 *   diffcases run CASE other       run CASE in a pthread on another OS
 *                                  thread than main's (under the shim with
 *                                  several hubs: a thread of another hub)
 *   diffcases probe                where read and pthread_create resolve
 *                                  ("libc" or "libgreen"): the runner's
 *                                  proof that the shim is in charge
 *
 * A run prints "begin", the case's lines, then "end"; the runner adds how
 * the process ended. Plain C and pthreads: never linked to libgreen.
 */
#define _GNU_SOURCE
#include "diff.h"
#include <stdatomic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CASES 2048

struct dcase {
    const char *family, *name;
    diff_fn fn;
};

static struct dcase cases[MAX_CASES];
static int ncases;
int diff_in_thread;

void diff_register(const char *family, const char *name, diff_fn fn)
{
    if (ncases == MAX_CASES) {
        static const char m[] = "diffcases: too many cases\n";
        syscall(SYS_write, 2, m, sizeof m - 1);
        _exit(3);
    }
    cases[ncases++] = (struct dcase){ family, name, fn };
}

static void raw_write_all(const char *p, size_t n)
{
    while (n > 0) {
        long k = syscall(SYS_write, 1, p, n);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            return;
        }
        p += k;
        n -= (size_t)k;
    }
}

void diff_out(const char *fmt, ...)
{
    int saved = errno;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    raw_write_all(buf, (size_t)n);
    errno = saved;
}

const char *diff_errname(int e)
{
    static __thread char num[16];
    if (e == 0)
        return "0";
    const char *s = strerrorname_np(e);
    if (s)
        return s;
    snprintf(num, sizeof num, "%d", e);
    return num;
}

void diff_ret(const char *label, long ret, int err)
{
    diff_out("%s: ret=%ld errno=%s", label, ret, diff_errname(err));
}

int64_t diff_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void diff_took(const char *label, int64_t t0, int lo_ms, int hi_ms)
{
    int64_t ms = (diff_now() - t0) / 1000000;
    diff_out("%s: took %s", label, ms < lo_ms ? "short" : ms > hi_ms ? "long" : "ok");
}

void diff_nonblock(const char *label, int fd)
{
    int saved = errno;
    long fl = syscall(SYS_fcntl, fd, F_GETFL);
    if (fl < 0)
        diff_out("%s: nonblock=? errno=%s", label, diff_errname(errno));
    else
        diff_out("%s: nonblock=%d", label, (fl & O_NONBLOCK) ? 1 : 0);
    errno = saved;
}

pthread_t diff_spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int e = pthread_create(&t, NULL, fn, arg);
    if (e)
        diff_out("pthread_create: %s", diff_errname(e));
    return t;
}

void diff_child_status(const char *label, pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st))
        diff_out("%s: exit %d", label, WEXITSTATUS(st));
    else
        diff_out("%s: signal %d", label, WIFSIGNALED(st) ? WTERMSIG(st) : -1);
}

void diff_alarm_ms(int ms)
{
    struct itimerval it = { .it_value = { ms / 1000, (ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

static volatile sig_atomic_t counted;

static void count_one(int sig)
{
    (void)sig;
    counted++;
}

void diff_count_signal(int sig, int flags)
{
    struct sigaction sa = { .sa_handler = count_one, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

int diff_signals_take(void)
{
    int n = (int)counted;
    counted = 0;
    return n;
}

int diff_tcp_listener(int *port)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 16) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) != 0) {
        diff_out("listener setup failed %s", diff_errname(errno));
        return -1;
    }
    *port = ntohs(a.sin_port);
    return l;
}

int diff_tcp_connect(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        diff_out("connect failed %s", diff_errname(errno));
        close(s);
        return -1;
    }
    return s;
}

void diff_raw_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    while (syscall(SYS_nanosleep, &ts, &ts) < 0 && errno == EINTR)
        ;
}

void *diff_shared_map(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        diff_out("mmap failed");
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

struct timespec diff_abs_in(clockid_t clk, long ms)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

/* Which object defines the function the program calls (its own GOT
 * entry, as resolved by the loader for it). */
static const char *where(void *p)
{
    Dl_info info;
    if (!p || !dladdr(p, &info) || !info.dli_fname)
        return "unknown";
    if (strstr(info.dli_fname, "libgreen"))
        return "libgreen";
    if (strstr(info.dli_fname, "libc.so") || strstr(info.dli_fname, "libpthread"))
        return "libc";
    if (strstr(info.dli_fname, "libasan") || strstr(info.dli_fname, "libubsan"))
        return "sanitizer";
    return "other";
}

static sigset_t orig_mask;

/*
 * The two thread places. "thread": the case runs in a pthread that, under
 * the shim, shares the main thread's OS thread (a thread of main's hub);
 * "other": in a pthread on another OS thread than main's (under the shim
 * with several hubs, a thread of another hub). Natively every pthread
 * has an OS thread of its own, so the first one is taken for either.
 * Under the shim placement decides where a new thread goes, so threads
 * are started until one lands where asked; those that landed elsewhere
 * wait (all signals blocked, no descriptor used) until the case is over.
 * With one hub no thread lands outside main's OS thread: "other" then
 * says so and differs (the runner leaves it out).
 */
#define PLACE_TRIES 4
static struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    int reported, landed, release;
    bool want_main_os_thread, shim;
    const struct dcase *dc;
} place = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, false, false, NULL };

static void *place_main(void *arg)
{
    (void)arg;
    bool on_main = syscall(SYS_gettid) == getpid();
    bool here = !place.shim || on_main == place.want_main_os_thread;
    pthread_mutex_lock(&place.m);
    place.reported++;
    place.landed |= here;
    pthread_cond_broadcast(&place.c);
    while (!here && !place.release)
        pthread_cond_wait(&place.c, &place.m);
    pthread_mutex_unlock(&place.m);
    if (here) {
        pthread_sigmask(SIG_SETMASK, &orig_mask, NULL);
        place.dc->fn();
    }
    return NULL;
}

static int run_placed(const struct dcase *c, bool want_main_os_thread)
{
    pthread_t t[PLACE_TRIES];
    int n = 0;
    place.dc = c;
    place.want_main_os_thread = want_main_os_thread;
    place.shim = strcmp(where((void *)pthread_create), "libgreen") == 0;
    pthread_mutex_lock(&place.m);
    while (n < PLACE_TRIES && !place.landed) {
        int r = pthread_create(&t[n], NULL, place_main, NULL);
        if (r != 0) {
            pthread_mutex_unlock(&place.m);
            diff_out("pthread_create failed: %s", diff_errname(r));
            return 2;
        }
        n++;
        while (place.reported < n)
            pthread_cond_wait(&place.c, &place.m);
    }
    int landed = place.landed;
    pthread_mutex_unlock(&place.m);
    if (!landed)
        diff_out("no thread of %d ran on %s OS thread", n,
                 want_main_os_thread ? "main's" : "another than main's");
    else
        pthread_join(t[n - 1], NULL);
    pthread_mutex_lock(&place.m);
    place.release = 1;
    pthread_cond_broadcast(&place.c);
    pthread_mutex_unlock(&place.m);
    for (int i = 0; i < n - landed; i++)
        pthread_join(t[i], NULL);
    return 0;
}

static int run(const struct dcase *c, const char *mode)
{
    diff_out("begin");
    if (strcmp(mode, "main") == 0) {
        c->fn();
    } else if (strcmp(mode, "thread") == 0 || strcmp(mode, "other") == 0) {
        diff_in_thread = 1;
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &orig_mask);
        if (run_placed(c, strcmp(mode, "thread") == 0) != 0)
            return 2;
    } else {
        fprintf(stderr, "diffcases: mode is main, thread or other, not %s\n", mode);
        return 2;
    }
    diff_out("end");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        for (int i = 0; i < ncases; i++)
            diff_out("%s.%s", cases[i].family, cases[i].name);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "probe") == 0) {
        diff_out("read=%s pthread_create=%s", where((void *)read),
                 where((void *)pthread_create));
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "run") == 0) {
        for (int i = 0; i < ncases; i++) {
            char full[256];
            snprintf(full, sizeof full, "%s.%s", cases[i].family, cases[i].name);
            if (strcmp(full, argv[2]) == 0)
                return run(&cases[i], argv[3]);
        }
        fprintf(stderr, "diffcases: no case %s\n", argv[2]);
        return 2;
    }
    fprintf(stderr, "usage: diffcases list | probe | run CASE main|thread|other\n");
    return 2;
}

static atomic_int ticks, stop_ticking;

static void *ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_ticking)) {
        usleep(2000);
        atomic_fetch_add(&ticks, 1);
    }
    return NULL;
}

pthread_t diff_ticker_start(void)
{
    atomic_store(&ticks, 0);
    atomic_store(&stop_ticking, 0);
    return diff_spawn(ticker, NULL);
}

int diff_ticks(void)
{
    return atomic_load(&ticks);
}

void diff_ticker_stop(pthread_t tk)
{
    atomic_store(&stop_ticking, 1);
    pthread_join(tk, NULL);
}

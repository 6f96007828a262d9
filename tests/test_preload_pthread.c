/*
 * test_preload_pthread.c - plain pthread programs (tests/progs/pthread)
 * run as children under LD_PRELOAD=$GREEN_LIB: every pthread becomes a
 * green thread. Each scenario first proves the hook was taken: it prints
 * the number of OS threads while its pthreads are alive, which must be 1-2
 * under the shim (one per pthread natively, checked once below so that
 * the proof itself is known to discriminate). Then a real program nobody
 * here wrote: python3 -m http.server, whose threads are pthreads and whose
 * locks are sem_clockwait/timed condvars, serving 50 concurrent curls.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>
#include "progs/progutil.h"
#include "hubs.h"

struct run {
    char out[16384];   /* the child's stdout */
    int status;        /* exit code, or 128 + signal */
    double secs;       /* wall time */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* $GREEN_PROGS/pthread/NAME (a static buffer: one path at a time). */
static const char *prog_path(const char *name)
{
    static char p[4096];
    const char *d = getenv("GREEN_PROGS");
    cr_assert(d, "GREEN_PROGS is not set (run through meson test)");
    snprintf(p, sizeof p, "%s/pthread/%s", d, name);
    return p;
}

/* LD_PRELOAD value for the shim. An ASan-built libgreen.so needs the
 * sanitizer runtime in the process, but libgreen must come before it: the
 * runtime's own pthread_create interceptor, when it comes first, wraps
 * every start routine in one that sets up a fresh OS thread and checks
 * that the thread-specific data is empty, which a green thread on the main
 * OS thread is not. So: libgreen first, the runtime next, and ASan told
 * not to insist on coming first (set_asan_order()); leaks of the programs
 * under test (bash, python) are not ours to report. */
static const char *asan_runtime(void)
{
#if defined(__SANITIZE_ADDRESS__)
    Dl_info di;
    void *sym = dlsym(RTLD_DEFAULT, "__asan_init");
    if (sym && dladdr(sym, &di) && di.dli_fname && strstr(di.dli_fname, "libasan"))
        return di.dli_fname;
#endif
    return "";
}

static const char *shim_preload(void)
{
    static char pre[8400];
    const char *lib = getenv("GREEN_LIB");
    cr_assert(lib, "GREEN_LIB is not set (run through meson test)");
    const char *asan = asan_runtime();
    snprintf(pre, sizeof pre, "%s%s%s", lib, *asan ? ":" : "", asan);
    return pre;
}

/* In a child about to exec under the shim (see shim_preload). */
static void set_asan_order(void)
{
    if (!*asan_runtime())
        return;
    char opts[4096];
    const char *old = getenv("ASAN_OPTIONS");
    snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0:detect_leaks=0", old ? old : "",
             old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
}

/* Run argv with or without the shim, collecting stdout; kill it after
 * limit seconds. */
static void run_argv(char *const argv[], bool preload, double limit, struct run *r)
{
    memset(r, 0, sizeof *r);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    const char *pre = preload ? shim_preload() : NULL;
    double t0 = now_s();
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        if (pre) {
            setenv("LD_PRELOAD", pre, 1);
            set_asan_order();
        } else
            unsetenv("LD_PRELOAD");
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    for (;;) {
        int left = (int)((t0 + limit - now_s()) * 1000);
        struct pollfd pf = { .fd = p[0], .events = POLLIN };
        if (left <= 0 || poll(&pf, 1, left) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        ssize_t k = read(p[0], r->out + n, sizeof r->out - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(p[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    r->secs = now_s() - t0;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void run_mode(const char *mode, bool preload, struct run *r)
{
    char *argv[] = { (char *)prog_path("prog_pthread"), (char *)mode, NULL };
    run_argv(argv, preload, 60, r);
}

/* Run tests/progs/pthread/NAME without arguments; it must exit 0. */
static void run_prog(const char *name, bool preload, struct run *r)
{
    char *argv[] = { (char *)prog_path(name), NULL };
    run_argv(argv, preload, 60, r);
    cr_assert_eq(r->status, 0, "%s exited %d; output:\n%s", name, r->status, r->out);
}

/* The integer after "key=" in out, or -1. */
static long val(const char *out, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "%s=", key);
    for (const char *s = out; (s = strstr(s, k)); s++)
        if (s == out || s[-1] == '\n')
            return strtol(s + strlen(k), NULL, 10);
    return -1;
}

/* Run mode under the shim; it must exit 0 having proved the hook. */
static void run_green(const char *mode, struct run *r)
{
    run_mode(mode, true, r);
    cr_assert_eq(r->status, 0, "%s exited %d; output:\n%s", mode, r->status, r->out);
    long th = val(r->out, "threads");
    cr_assert(th >= 1 && th <= test_hubs() + 1,
              "%s: %ld OS threads (%d hubs) while its pthreads were alive: the "
              "thread hooks were not taken; output:\n%s", mode, th, test_hubs(), r->out);
}

Test(preload_pthread, natively_each_pthread_is_an_os_thread)
{
    struct run r;
    run_mode("proof", false, &r);
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_expect_geq(val(r.out, "threads"), 101, "%s", r.out);
}

Test(preload_pthread, with_the_thread_family_off_pthreads_stay_os_threads)
{
    setenv("GREEN_HOOKS", "-thread", 1);   /* inherited by the child */
    struct run r;
    run_mode("proof", true, &r);
    unsetenv("GREEN_HOOKS");
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_expect_geq(val(r.out, "threads"), 101, "%s", r.out);
    cr_expect_eq(val(r.out, "joined"), 100, "%s", r.out);
}

Test(preload_pthread, hundred_parked_pthreads_live_on_one_os_thread)
{
    struct run r;
    run_green("proof", &r);
    cr_expect_eq(val(r.out, "joined"), 100, "%s", r.out);
    cr_expect_eq(val(r.out, "self_stable"), 1, "%s", r.out);
}

Test(preload_pthread, mutex_held_across_blocking_calls_by_50_threads_loses_no_update)
{
    struct run r;
    run_green("mutex", &r);
    cr_expect_eq(val(r.out, "counter"), 1000, "%s", r.out);
    cr_expect_eq(val(r.out, "max_inside"), 1, "%s", r.out);
}

Test(preload_pthread, condvar_producer_consumer_accounts_for_every_item)
{
    struct run r;
    run_green("condvar", &r);
    cr_expect_eq(val(r.out, "consumed"), 1000, "%s", r.out);
    cr_expect_eq(val(r.out, "sums_match"), 1, "%s", r.out);
}

Test(preload_pthread, timed_waits_on_both_clocks_time_out_with_etimedout_and_park_only_the_waiter)
{
    struct run r;
    run_green("timed", &r);
    static const char *keys[] = { "cond_mono", "cond_real", "cond_clockwait",
                                  "sem_clockwait", "sem_timedwait", "mutex_timedlock" };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s=ETIMEDOUT ms=", keys[i]);
        const char *s = strstr(r.out, want);
        cr_assert(s, "no \"%s\" in:\n%s", want, r.out);
        long ms = strtol(s + strlen(want), NULL, 10);
        cr_expect(ms >= 45 && ms < 5000, "%s waited %ld ms for a 50 ms timeout", keys[i], ms);
    }
    cr_expect_gt(val(r.out, "ticks"), 10, "another thread kept running: %s", r.out);
}

Test(preload_pthread, key_destructors_run_when_each_thread_exits)
{
    struct run r;
    run_green("keys", &r);
    cr_expect_eq(val(r.out, "destructed"), 20, "%s", r.out);
    cr_expect_eq(val(r.out, "destructed_sum"), 210, "%s", r.out);
}

Test(preload_pthread, once_runs_init_exactly_once_across_100_threads)
{
    struct run r;
    run_green("once", &r);
    cr_expect_eq(val(r.out, "init_runs"), 1, "%s", r.out);
    cr_expect_eq(val(r.out, "saw_init_done"), 100, "every caller returned after init: %s", r.out);
}

Test(preload_pthread, rwlock_readers_share_and_writers_are_exclusive)
{
    struct run r;
    run_green("rwlock", &r);
    cr_expect_eq(val(r.out, "violations"), 0, "%s", r.out);
    cr_expect_eq(val(r.out, "readers_shared"), 1, "%s", r.out);
}

Test(preload_pthread, semaphore_posts_release_exactly_as_many_waiters)
{
    struct run r;
    run_green("sem", &r);
    cr_expect_eq(val(r.out, "got_before_post"), 0, "%s", r.out);
    cr_expect_eq(val(r.out, "got"), 30, "%s", r.out);
    cr_expect_eq(val(r.out, "value"), 0, "%s", r.out);
    cr_expect(strstr(r.out, "trywait=EAGAIN"), "%s", r.out);
}

Test(preload_pthread, sem_post_from_a_signal_handler_wakes_waiters_when_nothing_else_can)
{
    struct run r;
    run_green("sem_signal", &r);
    cr_expect_eq(val(r.out, "main_woken"), 1, "%s", r.out);
    cr_expect_eq(val(r.out, "thread_woken"), 1, "%s", r.out);
    cr_expect_lt(r.secs, 30, "hung until killed");
}

Test(preload_pthread, a_sigev_thread_timer_notify_on_a_plain_os_thread_wakes_green_cond_waiters)
{
    struct run r;
    run_green("timer_thread", &r);
    cr_expect_eq(val(r.out, "woken"), 50, "%s", r.out);
    cr_expect_lt(r.secs, 8, "the waiters slept until their 10 s timeout");
}

/* The redis/jemalloc pattern: a plain OS thread that libc created (not
 * the shim) waits on a condition variable and a mutex whose green layout
 * green threads made, and the green main thread signals it; both also
 * hammer one mutex. Natively the program is correct too (checked, so
 * that the counters are known to mean something). */
static void run_plainwait(bool preload, struct run *r)
{
    run_prog("prog_plainwait", preload, r);
    cr_expect_eq(val(r->out, "plain"), 1, "not another OS thread:\n%s", r->out);
    cr_expect_eq(val(r->out, "done"), 2000, "lost wake-ups:\n%s", r->out);
    cr_expect_eq(val(r->out, "libc_mutex_done"), 500, "lost wake-ups with libc's mutex:\n%s",
                 r->out);
    cr_expect_eq(val(r->out, "counter"), val(r->out, "expected"), "lost updates:\n%s",
                 r->out);
    cr_expect_eq(val(r->out, "timeouts_seen"), 1, "no timed wait timed out:\n%s", r->out);
}

Test(preload_pthread, natively_the_plain_thread_cond_program_is_correct)
{
    struct run r;
    run_plainwait(false, &r);
    cr_expect_eq(val(r.out, "hooked"), 0, "%s", r.out);
}

Test(preload_pthread, a_plain_os_thread_waits_on_a_cond_the_green_main_thread_signals)
{
    struct run r;
    run_plainwait(true, &r);
    cr_assert_eq(val(r.out, "hooked"), 1, "the cond hooks were not taken:\n%s", r.out);
    long th = val(r.out, "threads");
    cr_expect(th >= 2 && th <= test_hubs() + 1,
              "%ld OS threads (%d hubs) with 20 green pthreads and the plain one "
              "alive:\n%s", th, test_hubs(), r.out);
}

/* prog_sigexit: 200 rounds of a handler that ends a thread spinning in
 * pthread_spin_lock. Under the shim the signal often lands while the
 * spinner is inside the scheduler (it yields in a loop); the handler then
 * runs when the thread resumes, never on a half-changed run queue: the
 * library before that aborted ("a finished thread was resumed") in 20 of
 * 20 runs. It then still crashed in about 1 run in 4: a signal that came
 * while the hub switched to the spinner (current already the spinner, the
 * stack still the hub's) ran the handler on the hub's stack, and its
 * pthread_exit left the hub's saved context stale (the hub now guards its
 * switch with sched_enter, hub.c). */
static void run_sigexit(bool preload, struct run *r)
{
    run_prog("prog_sigexit", preload, r);
    cr_expect_eq(val(r->out, "rounds"), 200, "%s", r->out);
    cr_expect_eq(val(r->out, "done"), 1, "a join gave neither result:\n%s", r->out);
    cr_expect_gt(val(r->out, "by_handler"), 0, "the handler never ended a spinner:\n%s",
                 r->out);
}

Test(preload_pthread, natively_a_handler_may_end_a_spinning_thread)
{
    struct run r;
    run_sigexit(false, &r);
    cr_expect_eq(val(r.out, "hooked"), 0, "%s", r.out);
}

/* Ten fresh processes of 200 rounds each: the crash above came in 35
 * runs of 130, so the old hub fails this test 19 times in 20 (it failed
 * 10 of 10 tries). */
Test(preload_pthread, a_handler_may_end_a_spinning_green_thread)
{
    for (int i = 0; i < 10; i++) {
        struct run r;
        run_sigexit(true, &r);
        cr_assert_eq(val(r.out, "hooked"), 1, "pthread_spin_lock is not the shim's:\n%s",
                     r.out);
    }
}

Test(preload_pthread, barrier_gives_serial_to_one_thread_per_round)
{
    struct run r;
    run_green("barrier", &r);
    cr_expect_eq(val(r.out, "serials"), 5, "%s", r.out);
    cr_expect_eq(val(r.out, "passed"), 50, "%s", r.out);
}

Test(preload_pthread, pthread_self_names_and_kill0_are_consistent)
{
    struct run r;
    run_green("identity", &r);
    cr_expect(strstr(r.out, "name=namedworker\n"), "%s", r.out);
    cr_expect_eq(val(r.out, "self_matches_create"), 1, "%s", r.out);
    cr_expect_eq(val(r.out, "main_self_stable"), 1, "%s", r.out);
    cr_expect_eq(val(r.out, "kill0_self"), 0, "%s", r.out);
}

Test(preload_pthread, cancel_runs_cleanup_handlers_with_the_mutex_held)
{
    struct run r;
    run_green("cancel", &r);
    cr_expect_eq(val(r.out, "a_canceled"), 1, "%s", r.out);
    cr_expect_eq(val(r.out, "b_canceled"), 1, "%s", r.out);
    cr_expect_eq(val(r.out, "cleanup_ran"), 1, "%s", r.out);
    cr_expect_eq(val(r.out, "cleanup_had_mutex"), 1, "%s", r.out);
    cr_expect_eq(val(r.out, "mutex_free"), 1, "%s", r.out);
}

Test(preload_pthread, pthread_exit_runs_pushed_cleanup_handlers_in_reverse_order)
{
    struct run r;
    run_green("exit_cleanup", &r);
    cr_expect_eq(val(r.out, "exit_value"), 42, "%s", r.out);
    cr_expect(strstr(r.out, "handlers=ba\n"), "%s", r.out);
}

Test(preload_pthread, main_calling_pthread_exit_lives_until_the_last_thread_ends)
{
    struct run r;
    run_green("main_exit", &r);
    const char *m = strstr(r.out, "main exiting\n");
    cr_assert(m, "%s", r.out);
    for (int i = 0; i < 5; i++) {
        char w[32];
        snprintf(w, sizeof w, "worker %d done\n", i);
        const char *s = strstr(r.out, w);
        cr_expect(s && s > m, "\"%s\" missing or before main's exit:\n%s", w, r.out);
    }
}

Test(preload_pthread, c11_threads_become_green_threads_too)
{
    char *argv[] = { (char *)prog_path("prog_c11threads"), NULL };
    struct run r;
    run_argv(argv, false, 60, &r);
    cr_assert_eq(r.status, 0, "native: %s", r.out);
    cr_expect_geq(val(r.out, "threads"), 101, "native: %s", r.out);
    run_argv(argv, true, 60, &r);
    cr_assert_eq(r.status, 0, "%s", r.out);
    long th = val(r.out, "threads");
    cr_expect(th >= 1 && th <= test_hubs() + 1, "C11 threads were not made green: %s", r.out);
    cr_expect_eq(val(r.out, "sum"), 9900, "%s", r.out);
    cr_expect_eq(val(r.out, "once_runs"), 1, "%s", r.out);
    cr_expect_eq(val(r.out, "destructed"), 100, "%s", r.out);
    cr_expect(strstr(r.out, "cnd_timedwait=timedout\n"), "%s", r.out);
}

/* run_green insists on status 0; main_return exits 3 on purpose. */
Test(preload_pthread, main_returning_exits_with_mains_code_without_waiting)
{
    struct run r;
    run_mode("main_return", true, &r);
    cr_expect_eq(r.status, 3, "%s", r.out);
    long th = val(r.out, "threads");
    cr_expect(th >= 1 && th <= test_hubs() + 1, "hook not taken: %s", r.out);
    cr_expect(strstr(r.out, "main returning"), "%s", r.out);
    cr_expect_null(strstr(r.out, "late worker ran"), "%s", r.out);
    cr_expect_lt(r.secs, 2.5, "workers sleep 3 s; main's return must not wait");
}

/* ------------------------------------------- python3 -m http.server */

#define PY_CLIENTS 50
#define PY_BODY (200 * 1024)

static bool python3_present(void)
{
    char *argv[] = { "python3", "-c", "import http.server", NULL };
    struct run r;
    run_argv(argv, false, 30, &r);
    return r.status == 0;
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static int connect_port(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        close(s);
        return -1;
    }
    return s;
}

/* Connect n sockets, one at a time, leaving the server 20 ms to accept
 * each: its listen backlog is 5, and a connection that overflows it waits
 * for SYN/ACK retransmits (1 s, 2 s, ...), natively as under the shim. */
static void connect_many(int port, int *s, int n)
{
    for (int i = 0; i < n; i++) {
        s[i] = connect_port(port);
        cr_assert_geq(s[i], 0, "connection %d: %s", i, strerror(errno));
        usleep(20000);
    }
}

/* Read s to EOF (bounded); check an HTTP 200 whose body is want. */
static bool response_ok(int s, const unsigned char *want, size_t n)
{
    size_t cap = n + 4096, got = 0;
    unsigned char *b = malloc(cap);
    double end = now_s() + 30;
    while (got < cap && now_s() < end) {
        struct pollfd pf = { .fd = s, .events = POLLIN };
        if (poll(&pf, 1, 1000) <= 0)
            continue;
        ssize_t k = read(s, b + got, cap - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    unsigned char *body = memmem(b, got, "\r\n\r\n", 4);
    bool ok = got > 12 && !memcmp(b + 9, "200", 3) && body &&
              (size_t)(b + got - (body + 4)) == n && !memcmp(body + 4, want, n);
    free(b);
    return ok;
}

static pid_t start_http_server(const char *dir, int port)
{
    const char *pre = shim_preload();
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        setenv("LD_PRELOAD", pre, 1);
        set_asan_order();
        setenv("GREEN_WORKERS", "1", 1);   /* its getaddrinfo starts the pool */
        char ps[16];
        snprintf(ps, sizeof ps, "%d", port);
        execlp("python3", "python3", "-m", "http.server", ps, "--bind", "127.0.0.1",
               "--directory", dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) {   /* up to 15 s to start */
        int s = connect_port(port);
        if (s >= 0) {
            close(s);
            return pid;
        }
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_fail("python3 -m http.server did not start listening on %d", port);
    return -1;
}

static int curl_all(int port, const char *dir)
{
    pid_t kids[PY_CLIENTS];
    for (int i = 0; i < PY_CLIENTS; i++) {
        kids[i] = fork();
        cr_assert_neq(kids[i], -1);
        if (kids[i] == 0) {
            char url[128], outp[4096];
            snprintf(url, sizeof url, "http://127.0.0.1:%d/data.bin", port);
            snprintf(outp, sizeof outp, "%s/out%d", dir, i);
            unsetenv("LD_PRELOAD");
            execlp("curl", "curl", "-s", "-f", "--max-time", "60", "-o", outp, url, (char *)NULL);
            _exit(127);
        }
    }
    int failed = 0;
    for (int i = 0; i < PY_CLIENTS; i++) {
        int st;
        waitpid(kids[i], &st, 0);
        failed += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    return failed;
}

static bool file_is(const char *path, const unsigned char *want, size_t n)
{
    unsigned char *b = malloc(n + 1);
    FILE *f = fopen(path, "rb");
    size_t k = f ? fread(b, 1, n + 1, f) : 0;
    if (f)
        fclose(f);
    bool ok = k == n && !memcmp(b, want, n);
    free(b);
    return ok;
}

Test(preload_pthread, python_http_server_serves_50_concurrent_clients_on_green_threads)
{
    if (!python3_present())
        cr_skip_test("python3 (with http.server) is not installed: skipping the "
                     "python3 -m http.server check");
    if (getenv("GREEN_SANITIZED"))
        cr_skip_test("sanitizer build: python3 is not instrumented and cannot "
                     "load this libgreen.so; the plain build runs this check");
    char dir[] = "/tmp/green-pyweb-XXXXXX";
    cr_assert(mkdtemp(dir));
    static unsigned char data[PY_BODY];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 24);
    char path[4096];
    snprintf(path, sizeof path, "%s/data.bin", dir);
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(data, 1, sizeof data, f) == sizeof data);
    fclose(f);

    int port = free_port();
    pid_t srv = start_http_server(dir, port);

    /* 50 half-sent requests: 50 handler pthreads blocked reading. */
    int s[PY_CLIENTS];
    const char *req = "GET /data.bin HTTP/1.0\r\nHost: 127.0.0.1\r\n";
    connect_many(port, s, PY_CLIENTS);
    for (int i = 0; i < PY_CLIENTS; i++)
        cr_assert_eq(write(s[i], req, strlen(req)), (ssize_t)strlen(req));
    usleep(500000);
    int threads = os_threads_of(srv);
    for (int i = 0; i < PY_CLIENTS; i++)
        cr_assert_eq(write(s[i], "\r\n", 2), 2);
    int bad = 0;
    for (int i = 0; i < PY_CLIENTS; i++) {
        bad += !response_ok(s[i], data, sizeof data);
        close(s[i]);
    }
    int curl_failed = curl_all(port, dir);
    int curl_bad = 0;
    for (int i = 0; i < PY_CLIENTS; i++) {
        snprintf(path, sizeof path, "%s/out%d", dir, i);
        curl_bad += !file_is(path, data, sizeof data);
        unlink(path);
    }
    bool alive = kill(srv, 0) == 0;
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    snprintf(path, sizeof path, "%s/data.bin", dir);
    unlink(path);
    rmdir(dir);

    cr_expect(threads >= 1 && threads <= test_hubs() + 2,
              "%d OS threads (%d hubs) with 50 handler threads alive: thread hooks not taken",
              threads, test_hubs());
    cr_expect_eq(bad, 0, "%d of 50 raw clients got a wrong response", bad);
    cr_expect_eq(curl_failed, 0, "%d of 50 curls failed", curl_failed);
    cr_expect_eq(curl_bad, 0, "%d of 50 curl downloads differ", curl_bad);
    cr_expect(alive, "the server died while serving");
}

/* ------------------------------------------------------------ N hubs */

/* prog_hubs: spinners that can only all finish when test_hubs() of them
 * run at once (no call in their loop), forks from threads of every hub
 * whose children start threads and do I/O, and 100 joiners cancelled in
 * their join (with two hubs this hung: libev's eventfd write, made by a
 * green thread waking another hub, went to the shim's write hook). */
static void run_hubs(bool preload, int hubs, struct run *r)
{
    char n[16];
    snprintf(n, sizeof n, "%d", hubs);
    char *argv[] = { (char *)prog_path("prog_hubs"), n, NULL };
    run_argv(argv, preload, 60, r);
    cr_assert_eq(r->status, 0, "prog_hubs exited %d; output:\n%s", r->status, r->out);
    cr_expect_eq(val(r->out, "parallel"), 1, "spinners did not run at once:\n%s", r->out);
    cr_expect_eq(val(r->out, "forks_ok"), 4, "%s", r->out);
    cr_expect_eq(val(r->out, "cancel_rounds"), 100, "%s", r->out);
    cr_expect_eq(val(r->out, "done"), 1, "%s", r->out);
}

Test(preload_pthread, natively_spinners_run_in_parallel_and_threads_fork)
{
    struct run r;
    run_hubs(false, 2, &r);
    cr_expect_eq(val(r.out, "tids"), 8, "each native pthread is an OS thread:\n%s", r.out);
}

Test(preload_pthread, threads_of_every_hub_run_in_parallel_and_fork_children_that_work)
{
    int hubs = test_hubs();
    struct run r;
    run_hubs(true, hubs, &r);
    long th = val(r.out, "threads");
    cr_expect(th >= 1 && th <= hubs + 1, "%ld OS threads for 8 pthreads on %d hubs:\n%s",
              th, hubs, r.out);
    /* Placement: the 8 spinners ran on every hub's OS thread (8 >= hubs). */
    long tids = val(r.out, "tids");
    cr_expect_eq(tids, hubs > 8 ? 8 : hubs, "spinners ran on %ld OS threads, %d hubs:\n%s",
                 tids, hubs, r.out);
}

/* prog_policy: the hubs' OS threads run under SCHED_BATCH (GREEN_HUB_BATCH,
 * on by default under the shim), and every thread still reads
 * SCHED_OTHER, as natively; GREEN_HUB_BATCH=0 leaves the kernel's
 * policy alone. */
Test(preload_pthread, hubs_run_sched_batch_and_threads_read_sched_other)
{
    char *argv[] = { (char *)prog_path("prog_policy"), NULL };
    struct run r;
    run_argv(argv, false, 30, &r);
    cr_assert_eq(r.status, 0, "native: %s", r.out);
    cr_expect_eq(val(r.out, "kernel_batch"), 0, "native: %s", r.out);
    cr_expect_eq(val(r.out, "seen_other"), 5, "native: %s", r.out);
    run_argv(argv, true, 30, &r);
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_expect_eq(val(r.out, "kernel_batch"), 5, "hubs not under SCHED_BATCH:\n%s", r.out);
    cr_expect_eq(val(r.out, "seen_other"), 5, "SCHED_BATCH seen by the program:\n%s", r.out);
    setenv("GREEN_HUB_BATCH", "0", 1);
    run_argv(argv, true, 30, &r);
    unsetenv("GREEN_HUB_BATCH");
    cr_assert_eq(r.status, 0, "GREEN_HUB_BATCH=0: %s", r.out);
    cr_expect_eq(val(r.out, "kernel_batch"), 0, "GREEN_HUB_BATCH=0:\n%s", r.out);
    cr_expect_eq(val(r.out, "seen_other"), 5, "GREEN_HUB_BATCH=0:\n%s", r.out);
}

/* prog_handlerexit, on one hub (where the looper and the setter take
 * turns): a handler that ended its thread with pthread_exit left the OS
 * thread's "in a handler" count up, and every later pthread_sigmask loop
 * of the hub then never yielded (the looper spun until its 20 s bound). */
Test(preload_pthread, a_handler_that_ends_its_thread_leaves_fair_turns_working)
{
    setenv("GREEN_HUBS", "1", 1);
    char *argv[] = { (char *)prog_path("prog_handlerexit"), NULL };
    struct run r;
    run_argv(argv, false, 60, &r);
    cr_assert_eq(r.status, 0, "native: %s", r.out);
    cr_expect_eq(val(r.out, "met"), 1, "native: %s", r.out);
    run_argv(argv, true, 60, &r);
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_expect_eq(val(r.out, "victim"), 7, "%s", r.out);
    cr_expect_eq(val(r.out, "met"), 1, "the looper never let the setter run:\n%s", r.out);
    cr_expect_eq(val(r.out, "done"), 1, "%s", r.out);
}

/* A thread registering fork handlers in a loop (Open POSIX
 * pthread_atfork/3-3): pthread_atfork is a static stub around libc's
 * __register_atfork, which the shim hooks, so the loop yields to the
 * thread that stops it. Before, with one hub, it spun for ever. */
Test(preload_pthread, a_pthread_atfork_loop_lets_the_other_threads_run)
{
    struct run n, g;
    run_prog("prog_atfork_loop", false, &n);
    run_prog("prog_atfork_loop", true, &g);
    cr_assert_eq(val(g.out, "hooked"), 1, "__register_atfork is not libgreen's:\n%s", g.out);
    cr_assert_eq(val(g.out, "registered_some"), 1, "%s", g.out);
    cr_assert_eq(val(n.out, "prepare"), 1, "%s", n.out);
    cr_assert_eq(val(g.out, "prepare"), 1, "%s", g.out);
    cr_assert_eq(val(g.out, "parent"), 1, "%s", g.out);
    cr_assert_eq(val(g.out, "child_ok"), 1, "%s", g.out);
}

/* prog_cpuclock_elsewhere, two hubs: a thread computing on the other hub
 * has a CPU clock that advances while it computes (libgreen/cpuclock.c's
 * sequence count), as natively; before, it moved only at the thread's
 * switches and read the same twice. */
Test(preload_pthread, a_cpu_clock_read_from_another_hub_advances_while_its_thread_computes)
{
    char *argv[] = { (char *)prog_path("prog_cpuclock_elsewhere"), NULL };
    struct run r;
    run_argv(argv, false, 30, &r);
    cr_assert_eq(r.status, 0, "native: %s", r.out);
    cr_assert_eq(val(r.out, "hooked"), 0, "native: %s", r.out);
    cr_expect_geq(val(r.out, "advanced_ms"), 100, "native: %s", r.out);
    cr_expect_eq(val(r.out, "monotonic"), 1, "native: %s", r.out);
    setenv("GREEN_HUBS", "2", 1);
    run_argv(argv, true, 30, &r);
    unsetenv("GREEN_HUBS");
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_assert_eq(val(r.out, "hooked"), 1, "pthread_create is not libgreen's:\n%s", r.out);
    cr_assert_eq(val(r.out, "spinner_on_main_os_thread"), 0,
                 "the spinner shared main's hub (one hub?):\n%s", r.out);
    cr_expect_geq(val(r.out, "advanced_ms"), 100, "%s", r.out);
    cr_expect_eq(val(r.out, "monotonic"), 1, "%s", r.out);
}

/*
 * test_preload_io.c - the socket and descriptor hooks under LD_PRELOAD:
 * plain pthread programs (tests/progs/io) run as children with
 * LD_PRELOAD=$GREEN_LIB. Each test first proves that the child's read()
 * is libgreen's (the child prints dladdr's answer); where the pthread
 * hooks are present it also checks the child ran on one or two OS threads.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct child {
    pid_t pid;
    int out;                /* read end of the child's stdout, -1 at EOF */
    char buf[1 << 16];      /* all output so far, NUL-terminated */
    size_t len;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void child_start(struct child *c, bool preload, const char *prog, char **args)
{
    const char *dir = getenv("GREEN_PROGS"), *lib = getenv("GREEN_LIB");
    cr_assert(dir && lib, "GREEN_PROGS and GREEN_LIB must be set (run through meson test)");
    char path[4096];
    snprintf(path, sizeof path, "%s/io/%s", dir, prog);
    char *argv[16] = { path };
    for (int k = 0; args && args[k] && k < 14; k++)
        argv[k + 1] = args[k];
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    c->len = 0;
    c->buf[0] = 0;
    c->pid = fork();
    cr_assert_geq(c->pid, 0);
    if (c->pid == 0) {
        dup2(p[1], 1);
        if (preload)
            setenv("LD_PRELOAD", lib, 1);
        else
            unsetenv("LD_PRELOAD");
        execv(path, argv);
        _exit(127);
    }
    close(p[1]);
    c->out = p[0];
}

/* Read what is available within timeout_ms. False at EOF or timeout. */
static bool child_fill(struct child *c, int timeout_ms)
{
    if (c->out < 0)
        return false;
    struct pollfd pf = { .fd = c->out, .events = POLLIN };
    if (poll(&pf, 1, timeout_ms) <= 0)
        return false;
    ssize_t r = read(c->out, c->buf + c->len, sizeof c->buf - 1 - c->len);
    if (r <= 0) {
        close(c->out);
        c->out = -1;
        return false;
    }
    c->len += (size_t)r;
    c->buf[c->len] = 0;
    return true;
}

static const char *find_line(const struct child *c, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *s = c->buf; *s;) {
        const char *nl = strchr(s, '\n');
        if (!nl)
            break;
        if (!strncmp(s, prefix, n))
            return s;
        s = nl + 1;
    }
    return NULL;
}

/* The first complete output line starting with prefix, or NULL after
 * timeout_ms or EOF. */
static const char *child_line(struct child *c, const char *prefix, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    for (;;) {
        const char *s = find_line(c, prefix);
        if (s)
            return s;
        long long left = end - now_ms();
        if (left <= 0 || !child_fill(c, (int)left))
            return find_line(c, prefix);
    }
}

/* Collect the rest of the output and the exit status (-1: killed after
 * timeout_ms). */
static int child_finish(struct child *c, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (c->out >= 0 && now_ms() < end)
        child_fill(c, 100);
    int st;
    for (;;) {
        pid_t w = waitpid(c->pid, &st, WNOHANG);
        if (w == c->pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (now_ms() >= end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            return -1;
        }
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* The child's HOOK line proves its read() is libgreen's. Returns whether
 * its pthread_create is libgreen's too. */
static bool assert_hooked(struct child *c)
{
    const char *h = child_line(c, "HOOK ", 20000);
    cr_assert(h, "the child printed no HOOK line; output:\n%s", c->buf);
    cr_assert(!strncmp(h, "HOOK read=libgreen", 18),
              "read() in the child is not libgreen's: %.*s", (int)strcspn(h, "\n"), h);
    const char *p = strstr(h, "pthread_create=");
    return p && !strncmp(p + 15, "libgreen", 8);
}

static int count_lines(const char *buf, const char *prefix)
{
    int n = 0;
    for (const char *s = buf; (s = strstr(s, prefix)); s++)
        if (s == buf || s[-1] == '\n')
            n++;
    return n;
}

Test(preload_io, thread_per_connection_echo_checks_every_byte_at_1000_concurrent_connections,
     .timeout = 300)
{
    static struct child srv, cli;
    child_start(&srv, true, "prog_echo_server", (char *[]){ "1000", NULL });
    bool green_threads = assert_hooked(&srv);
    const char *pl = child_line(&srv, "PORT ", 20000);
    cr_assert(pl, "server gave no port: %s", srv.buf);
    char port[16];
    snprintf(port, sizeof port, "%d", atoi(pl + 5));
    child_start(&cli, true, "prog_echo_client",
                (char *[]){ port, "1000", "20000", "3000", NULL });
    assert_hooked(&cli);
    int cst = child_finish(&cli, 240000);
    int sst = child_finish(&srv, 30000);
    cr_expect_eq(cst, 0, "client failed (%d):\n%s", cst, cli.buf);
    cr_expect(child_line(&cli, "OK 1000 20000000", 0), "client output:\n%s", cli.buf);
    cr_expect_eq(sst, 0, "server failed (%d):\n%s", sst, srv.buf);
    cr_expect(child_line(&srv, "SERVED 1000 BYTES 20001000", 0), "server output:\n%s",
              srv.buf);
    const char *th = child_line(&srv, "THREADS ", 0);
    cr_assert(th, "server output:\n%s", srv.buf);
    int os = 0, live = 0;
    sscanf(th, "THREADS %d LIVE %d", &os, &live);
    cr_expect_eq(live, 1000, "every connection thread should be alive at the last accept");
    if (green_threads)
        cr_expect_leq(os, 2, "%d OS threads served %d live connection threads", os, live);
    else
        cr_log_warn("pthread hooks absent: the connection threads were OS threads (%d)", os);
}

/* The test plays the peer of prog_stdio_socket: a greeting after a delay,
 * then an answer to every line, slowly at first, so that the child's
 * stdio reads find an empty socket many times. */
Test(preload_io, stdio_on_a_socket_sees_no_spurious_eagain_and_loses_nothing, .timeout = 120)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(l, 4), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(sa.sin_port));
    static struct child c;
    child_start(&c, true, "prog_stdio_socket", (char *[]){ port, "300", NULL });
    assert_hooked(&c);
    struct pollfd pf = { .fd = l, .events = POLLIN };
    cr_assert_eq(poll(&pf, 1, 20000), 1, "the child never connected:\n%s", c.buf);
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    cr_assert_geq(s, 0);
    struct timeval tv = { .tv_sec = 30 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct timespec pause = { 0, 30 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    cr_assert_eq(write(s, "HELLO\n", 6), 6);
    FILE *in = fdopen(s, "r");
    char line[256], reply[300];
    int answered = 0;
    for (int k = 0; k < 300 && fgets(line, sizeof line, in); k++) {
        if (k < 20) {
            struct timespec d = { 0, 5 * 1000 * 1000 };
            nanosleep(&d, NULL);
        }
        int n = snprintf(reply, sizeof reply, "echo: %s", line);
        if (write(s, reply, (size_t)n) != n)
            break;
        answered++;
    }
    int st = child_finish(&c, 30000);
    fclose(in);
    close(l);
    cr_expect_eq(answered, 300, "child output:\n%s", c.buf);
    cr_expect_eq(st, 0, "child output:\n%s", c.buf);
    cr_expect(child_line(&c, "OK 300", 0), "child output:\n%s", c.buf);
}

Test(preload_io, a_descriptor_passed_to_an_execd_child_is_still_blocking, .timeout = 120)
{
    static struct child c;
    child_start(&c, true, "prog_exec_child_blocking", NULL);
    assert_hooked(&c);
    int st = child_finish(&c, 60000);
    cr_assert_eq(st, 0, "output:\n%s", c.buf);
    cr_expect(child_line(&c, "DONE 0", 0), "output:\n%s", c.buf);
    cr_expect_eq(count_lines(c.buf, "FAIL"), 0, "output:\n%s", c.buf);
    cr_expect_eq(count_lines(c.buf, "NONBLOCK"), 0, "output:\n%s", c.buf);
    cr_expect_eq(count_lines(c.buf, "BLOCKING"), 9, "output:\n%s", c.buf);
}

Test(preload_io, a_program_that_set_o_nonblock_itself_still_gets_eagain, .timeout = 60)
{
    static struct child c;
    child_start(&c, true, "prog_nonblock_eagain", NULL);
    assert_hooked(&c);
    int st = child_finish(&c, 30000);
    cr_expect_eq(st, 0, "output:\n%s", c.buf);
    cr_expect(child_line(&c, "ALL OK", 0), "output:\n%s", c.buf);
    cr_expect_eq(count_lines(c.buf, "OK "), 8, "output:\n%s", c.buf);
}

Test(preload_io, close_wakes_threads_blocked_in_read_and_accept_with_ebadf, .timeout = 60)
{
    static struct child c;
    child_start(&c, true, "prog_close_wakes", NULL);
    if (!assert_hooked(&c)) {
        child_finish(&c, 15000);
        cr_skip_test("pthread hooks absent: blocked OS threads cannot be woken "
                     "(Linux leaves them blocked)");
    }
    int st = child_finish(&c, 30000);
    cr_expect_eq(st, 0, "output:\n%s", c.buf);
    cr_expect(child_line(&c, "READ -1 EBADF", 0), "output:\n%s", c.buf);
    cr_expect(child_line(&c, "ACCEPT -1 EBADF", 0), "output:\n%s", c.buf);
}

/* The same echo programs without the shim: proves the programs and the
 * checks themselves are sound, so a failure above is the shim's. */
Test(preload_io, the_echo_programs_pass_natively_too, .timeout = 120)
{
    static struct child srv, cli;
    child_start(&srv, false, "prog_echo_server", (char *[]){ "50", NULL });
    const char *pl = child_line(&srv, "PORT ", 20000);
    cr_assert(pl, "server gave no port: %s", srv.buf);
    char port[16];
    snprintf(port, sizeof port, "%d", atoi(pl + 5));
    child_start(&cli, false, "prog_echo_client", (char *[]){ port, "50", "20000", NULL });
    cr_expect_eq(child_finish(&cli, 60000), 0, "client:\n%s", cli.buf);
    cr_expect_eq(child_finish(&srv, 30000), 0, "server:\n%s", srv.buf);
    /* libc's read, or ASan's interceptor of it in a sanitizer build. */
    cr_expect(child_line(&srv, "HOOK read=libc", 0) || child_line(&srv, "HOOK read=libasan", 0),
              "server:\n%s", srv.buf);
}

Test(preload_io, fortified_read_recv_and_recvfrom_park_only_the_calling_thread, .timeout = 60)
{
    static struct child c;
    child_start(&c, true, "prog_fortified", NULL);
    bool green_threads = assert_hooked(&c);
    const char *h = child_line(&c, "HOOK ", 0);
    cr_assert(h && strstr(h, "__read_chk=libgreen") && strstr(h, "__recv_chk=libgreen") &&
              strstr(h, "__recvfrom_chk=libgreen"), "fortified names not ours: %s", c.buf);
    int st = child_finish(&c, 30000);
    if (!green_threads)
        cr_skip_test("pthread hooks absent: the readers were OS threads");
    cr_expect_eq(st, 0, "output:\n%s", c.buf);
    cr_expect(child_line(&c, "OK read_chk", 0), "output:\n%s", c.buf);
    cr_expect(child_line(&c, "OK recv_chk", 0), "output:\n%s", c.buf);
    cr_expect(child_line(&c, "OK recvfrom_chk", 0), "output:\n%s", c.buf);
}

/* fsync and friends (hooks/io_sync.c): the kernel's answers, unchanged,
 * whether the flush runs inline or on the worker pool; and with the pool
 * (GREEN_HOOKS=+file forces it) other threads of the hub run meanwhile. */
static void run_fsync(struct child *c, bool preload, const char *mode)
{
    child_start(c, preload, "prog_fsync", (char *[]){ (char *)mode, NULL });
    if (preload) {
        assert_hooked(c);
        cr_assert(strstr(c->buf, "fsync=libgreen"), "fsync is not libgreen's:\n%s", c->buf);
    }
    cr_assert_eq(child_finish(c, 60000), 0, "output:\n%s", c->buf);
}

Test(preload_io, fsync_fdatasync_syncfs_and_sync_file_range_answer_as_the_kernel_does,
     .timeout = 120)
{
    static struct child n, g, f;
    run_fsync(&n, false, "calls");
    const char *want = strchr(n.buf, '\n') + 1;   /* after the HOOK line */
    cr_assert_eq(count_lines(want, "fsync file: ret=0 errno=EDOM"), 1, "natively:\n%s", n.buf);
    run_fsync(&g, true, "calls");
    cr_assert_str_eq(strchr(g.buf, '\n') + 1, want, "under the shim:\n%s", g.buf);
    setenv("GREEN_HOOKS", "+file", 1);
    run_fsync(&f, true, "calls");
    unsetenv("GREEN_HOOKS");
    cr_assert_str_eq(strchr(f.buf, '\n') + 1, want, "GREEN_HOOKS=+file:\n%s", f.buf);
}

Test(preload_io, other_threads_of_the_hub_run_while_a_flush_is_on_the_worker_pool,
     .timeout = 120)
{
    static struct child c;
    setenv("GREEN_HOOKS", "+file", 1);
    setenv("GREEN_HUBS", "1", 1);      /* natively a hub's OS thread: one */
    run_fsync(&c, true, "overlap");
    unsetenv("GREEN_HOOKS");
    unsetenv("GREEN_HUBS");
    const char *o = strstr(c.buf, "overlap=");
    cr_assert(o, "output:\n%s", c.buf);
    cr_assert_eq(atoi(o + 8), 20, "the counter stood still during a flush:\n%s", c.buf);
}

/* Run io/prog under strace, which writes the program's fcntl and
 * getsockopt calls to a file; the program itself runs under the shim
 * (strace -E: strace is not preloaded) with GREEN_FD_CACHE=cache. Counts
 * the F_GETFL calls and the SO_RCVTIMEO reads; out gets the program's
 * stdout. */
static void traced_run(const char *prog, const char *cache, struct child *c, int *getfl,
                       int *timeo)
{
    const char *dir = getenv("GREEN_PROGS"), *lib = getenv("GREEN_LIB");
    cr_assert(dir && lib, "GREEN_PROGS and GREEN_LIB must be set (run through meson test)");
    char path[4096], trace[] = "/tmp/green-trace-XXXXXX", pre[4200], env[64];
    snprintf(path, sizeof path, "%s/io/%s", dir, prog);
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lib);
    snprintf(env, sizeof env, "GREEN_FD_CACHE=%s", cache);
    int tfd = mkstemp(trace);
    cr_assert_geq(tfd, 0);
    close(tfd);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    c->len = 0;
    c->buf[0] = 0;
    c->out = p[0];
    c->pid = fork();
    cr_assert_geq(c->pid, 0);
    if (c->pid == 0) {
        dup2(p[1], 1);
        unsetenv("LD_PRELOAD");
        execlp("strace", "strace", "-f", "-qq", "-e", "trace=fcntl,getsockopt", "-o", trace,
               "-E", pre, "-E", env, path, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    int st = child_finish(c, 60000);
    cr_assert_eq(st, 0, "strace %s (GREEN_FD_CACHE=%s) failed: %d; output:\n%s", prog, cache,
                 st, c->buf);
    FILE *f = fopen(trace, "r");
    cr_assert(f, "no strace output");
    char line[1024];
    *getfl = *timeo = 0;
    while (fgets(line, sizeof line, f)) {
        *getfl += strstr(line, "F_GETFL") != NULL;
        *timeo += strstr(line, "SO_RCVTIMEO") != NULL;
    }
    fclose(f);
    unlink(trace);
}

/* The flag cache (libgreen/fdstate.c): a socket the program made and
 * shares with nobody has its O_NONBLOCK and SO_RCVTIMEO read once, not at
 * every read that waits. GREEN_FD_CACHE=0 is the control: the same
 * program asks the kernel each time. */
Test(preload_io, reads_that_wait_ask_the_kernel_for_the_socket_flags_once, .timeout = 180)
{
    static struct child c;
    int getfl, timeo, getfl0, timeo0;
    traced_run("prog_waiting_reads", "0", &c, &getfl0, &timeo0);
    assert_hooked(&c);
    cr_assert(child_line(&c, "reads=200", 0), "output:\n%s", c.buf);
    traced_run("prog_waiting_reads", "1", &c, &getfl, &timeo);
    assert_hooked(&c);
    cr_assert(child_line(&c, "reads=200", 0), "output:\n%s", c.buf);
    /* Most of the 200 reads wait (the writer sleeps 300 us per byte). */
    cr_expect_geq(getfl0, 100, "GREEN_FD_CACHE=0: %d F_GETFL for 200 waiting reads", getfl0);
    cr_expect_geq(timeo0, 100, "GREEN_FD_CACHE=0: %d SO_RCVTIMEO reads", timeo0);
    cr_expect_lt(getfl, 20, "%d F_GETFL with the cache (%d without)", getfl, getfl0);
    cr_expect_lt(timeo, 20, "%d SO_RCVTIMEO reads with the cache (%d without)", timeo, timeo0);
}

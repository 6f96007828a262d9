/*
 * test_stress.c - stress and fault tests of the LD_PRELOAD shim (issue 5):
 * plain pthread programs from tests/progs/stress run as children with
 * LD_PRELOAD=$GREEN_LIB, each bounded in time and count and stopping by
 * itself (every child has an alarm() watchdog or a harness deadline).
 *
 * Each test first proves the shim was in charge of the child: a "PROOF"
 * or "PEAK" line showing 1-2 OS threads while hundreds or thousands of
 * pthreads were alive, and that read()/accept() resolve to libgreen. Then
 * it checks the results the child counted: bytes lost, duplicated or out
 * of place, wrong wake-ups, hangs, early sleeps, errno values against the
 * kernel's rules (the same program run natively where that is possible).
 *
 * The figures these tests produce are in docs/reliability.md.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "hubs.h"

struct child {
    pid_t pid;
    int out;                /* read end of the child's stdout, -1 at EOF */
    int err;                /* read end of the child's stderr, -1 at EOF */
    char buf[1 << 16];      /* stdout so far, NUL-terminated */
    size_t len;
    char ebuf[1 << 14];     /* stderr so far, NUL-terminated */
    size_t elen;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start tests/progs/stress/prog with args (NULL-terminated), preloaded or
 * not. */
static void child_start(struct child *c, bool preload, const char *prog, char **args)
{
    const char *dir = getenv("GREEN_PROGS"), *lib = getenv("GREEN_LIB");
    cr_assert(dir && lib, "GREEN_PROGS and GREEN_LIB must be set (run through meson test)");
    char path[4096];
    snprintf(path, sizeof path, "%s/stress/%s", dir, prog);
    char *argv[16] = { path };
    for (int k = 0; args && args[k] && k < 14; k++)
        argv[k + 1] = args[k];
    int p[2], e[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(e, O_CLOEXEC), 0);
    fflush(NULL);
    c->len = c->elen = 0;
    c->buf[0] = c->ebuf[0] = 0;
    c->pid = fork();
    cr_assert_geq(c->pid, 0);
    if (c->pid == 0) {
        dup2(p[1], 1);
        dup2(e[1], 2);
        if (preload)
            setenv("LD_PRELOAD", lib, 1);
        else
            unsetenv("LD_PRELOAD");
        execv(path, argv);
        _exit(127);
    }
    close(p[1]);
    close(e[1]);
    c->out = p[0];
    c->err = e[0];
}

static void drain(int *fd, char *buf, size_t *len, size_t cap)
{
    ssize_t r = read(*fd, buf + *len, cap - 1 - *len);
    if (r <= 0) {
        close(*fd);
        *fd = -1;
        return;
    }
    *len += (size_t)r;
    buf[*len] = 0;
}

/* Read what the child writes within timeout_ms. False at EOF or timeout. */
static bool child_fill(struct child *c, int timeout_ms)
{
    if (c->out < 0 && c->err < 0)
        return false;
    struct pollfd pf[2] = { { .fd = c->out, .events = POLLIN },
                            { .fd = c->err, .events = POLLIN } };
    if (poll(pf, 2, timeout_ms) <= 0)
        return false;
    if (pf[0].revents)
        drain(&c->out, c->buf, &c->len, sizeof c->buf);
    if (pf[1].revents)
        drain(&c->err, c->ebuf, &c->elen, sizeof c->ebuf);
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

/* The first complete stdout line starting with prefix, or NULL after
 * timeout_ms or EOF. */
static const char *child_line(struct child *c, const char *prefix, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    for (;;) {
        const char *s = find_line(c, prefix);
        if (s)
            return s;
        long long left = end - now_ms();
        if (left <= 0 || (!child_fill(c, (int)left) && c->out < 0 && c->err < 0))
            return find_line(c, prefix);
    }
}

/* Collect the rest of the output and the status: exit code, 128 + signal,
 * or -1 when it was killed after timeout_ms. */
static int child_finish(struct child *c, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while ((c->out >= 0 || c->err >= 0) && now_ms() < end)
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

/* The integer after "key=" in line (up to its end), or fail the test. */
static long long field(const char *line, const char *key)
{
    cr_assert(line, "missing output line (looking for %s)", key);
    const char *nl = strchr(line, '\n');
    size_t kl = strlen(key);
    for (const char *s = line; s && (!nl || s < nl); s = strchr(s + 1, ' ')) {
        const char *w = *s == ' ' ? s + 1 : s;
        if (!strncmp(w, key, kl) && w[kl] == '=')
            return atoll(w + kl + 1);
    }
    cr_assert_fail("no %s= in line: %.*s", key, nl ? (int)(nl - line) : 200, line);
    return 0;
}

/* Run a preloaded program to the end; check its PROOF line and exit 0. */
static void run_proved(struct child *c, const char *prog, char **args, int timeout_ms)
{
    child_start(c, true, prog, args);
    int st = child_finish(c, timeout_ms);
    cr_log_info("%s stdout:\n%s\nstderr:\n%s", prog, c->buf, c->ebuf);
    const char *p = find_line(c, "PROOF");
    cr_assert(p, "%s printed no PROOF line (status %d); stderr: %s", prog, st, c->ebuf);
    cr_assert_leq(field(p, "threads"), test_hubs() + 1, "200 parked pthreads ran on %lld OS threads: "
                  "the shim did not take pthread_create", field(p, "threads"));
    cr_assert_eq(field(p, "hooked"), 1, "read() is not libgreen's");
    cr_assert_eq(st, 0, "%s exited with %d; stderr: %s", prog, st, c->ebuf);
}

/* ------------------------------------------------------------ integrity */

/* The echo daemon under the shim serving conns connections of a client
 * (under the shim too, or native: kernel-true peers). */
static void echo_run(int conns, bool client_preloaded)
{
    static struct child srv, cli;
    char cs[16];
    snprintf(cs, sizeof cs, "%d", conns);
    child_start(&srv, true, "prog_stress_echo", (char *[]){ "server", cs, NULL });
    const char *port = child_line(&srv, "PORT ", 5000);
    cr_assert(port, "the server printed no port; stderr: %s", srv.ebuf);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", atoi(port + 5));
    child_start(&cli, client_preloaded, "prog_stress_echo",
                (char *[]){ "client", ps, cs, "65536", NULL });
    int cst = child_finish(&cli, 100000);
    int sst = child_finish(&srv, 10000);
    cr_log_info("server:\n%s%s\nclient:\n%s%s", srv.buf, srv.ebuf, cli.buf, cli.ebuf);
    const char *sp = find_line(&srv, "PEAK"), *cp = find_line(&cli, "PEAK");
    cr_assert(sp && cp, "no PEAK line: server %s / client %s", srv.ebuf, cli.ebuf);
    /* A native client can finish early connections before the daemon has
     * accepted the last ones (on a loaded machine it may race well ahead),
     * so only a modest overlap is required there. Under the shim most are
     * alive at once; not all: a client thread that runs for a time slice
     * yields at its next hooked call (fair turns), so the first
     * connections may finish before the last are made; in a sanitizer
     * build, where everything is slower, fewer overlap still. A tenth of
     * them alive at once on at most 2 OS threads proves the shim holds
     * them as green threads. */
    cr_assert_geq(field(sp, "live"), client_preloaded ? conns / 10 : 20);
    cr_assert_leq(field(sp, "threads"), test_hubs() + 1, "%d server pthreads on %lld OS threads", conns,
                  field(sp, "threads"));
    if (client_preloaded)
        cr_assert_leq(field(cp, "threads"), test_hubs() + 1, "%d client pthreads on %lld OS threads",
                      2 * conns, field(cp, "threads"));
    else
        cr_assert_gt(field(cp, "threads"), conns, "the native client is not native");
    cr_assert_eq(cst, 0, "client status %d: %s", cst, cli.ebuf);
    cr_assert_eq(sst, 0, "server status %d: %s", sst, srv.ebuf);
    const char *r = find_line(&cli, "RESULT"), *s = find_line(&srv, "SERVED");
    cr_assert_eq(field(s, "hooked"), 1, "accept() is not libgreen's");
    cr_assert_eq(field(r, "ok"), conns);
    cr_assert_eq(field(r, "corrupt"), 0, "bytes reordered or corrupted");
    cr_assert_eq(field(r, "lost"), 0);
    cr_assert_eq(field(r, "extra"), 0, "bytes duplicated");
    cr_assert_eq(field(r, "errors"), 0);
    cr_assert_eq(field(r, "sent"), field(r, "received"));
    cr_assert_eq(field(s, "bytes"), field(r, "sent"));
    cr_assert_eq(field(s, "conns"), conns);
    cr_assert_eq(field(s, "errors"), 0);
    cr_assert_gt(field(r, "sent"), conns * 16000LL, "too little data to mean anything");
}

/* 3,000 client + 3,000 server sockets: 6,001 fds in two processes, far
 * under the 20,000 per-process limit of the test machines. */
Test(stress, three_thousand_connections_echo_every_byte_through_tiny_buffers_and_slow_readers,
     .timeout = 150)
{
    echo_run(3000, true);
}

/* The same daemon facing a native client (1,000 OS threads for 500
 * connections): the peer's behaviour is the kernel's, not the shim's. */
Test(stress, a_native_client_gets_every_byte_back_from_the_daemon_under_the_shim, .timeout = 150)
{
    echo_run(500, false);
}

/* ------------------------------------------------------ close and reuse */

/* Found by this test, both fixed:
 * 1. A poll (or select, or epoll_wait on the epoll fd) woken by the close
 *    of its descriptor re-polled the number, which already named a new
 *    file, and went back to sleep on it: it then woke for the new file's
 *    data (poll) or failed with EINVAL (epoll_wait). Fix: hooks/wait.c and
 *    the GREEN__FD_CLOSED mark of libgreen/fd.c.
 * 2. A waiter readied by its fd's readiness, but not yet run when the fd
 *    was closed and the number reused, then ran its call on the new file:
 *    read stole the new descriptor's data, write blocked on it, accept
 *    failed with EINVAL, poll reported the new file's POLLIN. Fix:
 *    libgreen/fd.c compares the slot's close count before and after the
 *    park and answers EBADF. */
Test(stress, closing_a_descriptor_under_parked_waiters_and_reusing_its_number_at_once_misdirects_nothing,
     .timeout = 120)
{
    static struct child c;
    run_proved(&c, "prog_fd_race", (char *[]){ "2000", NULL }, 110000);
    const char *kinds[] = { "read", "write", "accept", "connect", "poll",
                            "epoll_member", "epoll_self", "select" };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        char pre[64];
        snprintf(pre, sizeof pre, "KIND %s ", kinds[i]);
        const char *l = find_line(&c, pre);
        cr_assert(l, "no result for %s", kinds[i]);
        cr_assert_eq(field(l, "iters"), 2000, "%s: not every iteration ran", kinds[i]);
        cr_assert_eq(field(l, "wrong"), 0, "%s: a wake-up reached the wrong descriptor: %s",
                     kinds[i], c.ebuf);
        cr_assert_eq(field(l, "hangs"), 0, "%s hung: %s", kinds[i], c.ebuf);
        cr_assert_gt(field(l, "by_dup2"), 500, "%s: dup2 over a parked fd was not tried", kinds[i]);
        /* The waiter really was parked in the call: the close woke it with
         * EBADF (POLLNVAL for poll; epoll_wait on a set the fd was a member
         * of keeps waiting, as natively). */
        if (strcmp(kinds[i], "poll") && strcmp(kinds[i], "epoll_member"))
            cr_assert_gt(field(l, "ebadf"), 1000, "%s: waiters were not parked", kinds[i]);
    }
    cr_assert_eq(field(find_line(&c, "TOTAL"), "iters"), 16000);
}

/* ------------------------------------------------------------- signals */

/* Lines of c's output that must match between native and shim runs. */
static void compared_lines(const struct child *c, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (const char *s = c->buf; *s;) {
        const char *nl = strchr(s, '\n');
        if (!nl)
            break;
        if (strncmp(s, "PROOF", 5) && strncmp(s, "TIMING", 6) && n + (size_t)(nl - s) + 2 < cap) {
            memcpy(out + n, s, (size_t)(nl - s + 1));
            n += (size_t)(nl - s + 1);
            out[n] = 0;
        }
        s = nl + 1;
    }
}

static void signal_run(bool restart)
{
    static struct child nat, shim;
    char *args[] = { restart ? "restart" : "norestart", NULL };
    child_start(&nat, false, "prog_sig_io", args);
    int nst = child_finish(&nat, 30000);
    run_proved(&shim, "prog_sig_io", args, 30000);
    cr_assert_eq(nst, 0, "native run failed (%d): %s", nst, nat.ebuf);
    static char a[4096], b[4096];
    compared_lines(&nat, a, sizeof a);
    compared_lines(&shim, b, sizeof b);
    cr_log_info("native:\n%s\nshim:\n%s", nat.buf, shim.buf);
    cr_assert_str_eq(b, a, "the shim's outcome differs from the kernel's:\nnative:\n%s\nshim:\n%s", a, b);
    /* The kernel's rules, checked on the (equal) outcome: */
    const char *r = find_line(&shim, "sock_read"), *w = find_line(&shim, "sock_write");
    cr_assert_eq(field(r, "bytes"), 256 * 1024);
    cr_assert_eq(field(r, "intact"), 1);
    cr_assert_eq(field(r, "eintr_seen"), !restart, "socket read: restarts iff SA_RESTART");
    cr_assert_eq(field(w, "reported"), field(w, "peer_received"), "write reported != peer got");
    cr_assert_eq(field(w, "peer_received"), 1024 * 1024);
    cr_assert_eq(field(w, "peer_intact"), 1);
    cr_assert_eq(field(w, "partial_seen"), 1,
                 "no write returned a partial count when interrupted (SA_RESTART hides them?)");
    cr_assert_eq(field(find_line(&shim, "accept"), "eintr_seen"), !restart);
    if (restart)
        cr_assert_eq(field(find_line(&shim, "TIMING sock_write"), "eintr"), 0,
                     "a write failed with EINTR under SA_RESTART");
    const char *sl[] = { "nanosleep", "clock_nanosleep", "usleep", "poll" };
    for (int i = 0; i < 4; i++)
        cr_assert_eq(field(find_line(&shim, sl[i]), "eintr_seen"), 1, "%s must not restart", sl[i]);
    cr_assert_eq(field(find_line(&shim, "nanosleep"), "early"), 0);
    cr_assert_eq(field(find_line(&shim, "nanosleep"), "rem_bad"), 0);
    cr_assert_eq(field(find_line(&shim, "children_failed"), "children_failed"), 0);
}

Test(stress, a_1_ms_itimer_with_sa_restart_gives_the_kernels_results_and_loses_no_byte, .timeout = 90)
{
    signal_run(true);
}

Test(stress, a_1_ms_itimer_without_sa_restart_gives_the_kernels_results_and_loses_no_byte, .timeout = 90)
{
    signal_run(false);
}

/* --------------------------------------------------------------- faults */

Test(stress, accept_reports_emfile_to_the_daemon_which_serves_every_client_once_fds_free_up,
     .timeout = 60)
{
    static struct child c;
    run_proved(&c, "prog_faults", (char *[]){ "emfile", NULL }, 50000);
    const char *l = find_line(&c, "EMFILE");
    cr_assert_geq(field(l, "seen"), 1, "accept never failed with EMFILE: the fault was not injected");
    cr_assert_eq(field(l, "other_errors"), 0, "accept failed with something else: %s", c.ebuf);
    cr_assert_eq(field(l, "served"), 100);
    cr_assert_eq(field(l, "client_ok"), 100, "a client lost its echo after EMFILE");
}

Test(stress, peers_resetting_mid_transfer_give_econnreset_or_epipe_and_sigpipe_as_natively,
     .timeout = 90)
{
    static struct child nat, c;
    child_start(&nat, false, "prog_faults", (char *[]){ "reset", NULL });
    int nst = child_finish(&nat, 60000);
    run_proved(&c, "prog_faults", (char *[]){ "reset", NULL }, 60000);
    cr_assert_eq(nst, 0, "native run: %s", nat.ebuf);
    const char *l = find_line(&c, "RESET");
    cr_assert_eq(field(l, "write_ok"), 100, "%s", c.ebuf);
    cr_assert_eq(field(l, "read_ok"), 100, "%s", c.ebuf);
    const char *s = find_line(&c, "SIGPIPE"), *ns = find_line(&nat, "SIGPIPE");
    cr_assert_eq(field(ns, "default_status"), 128 + SIGPIPE, "native: SIGPIPE did not kill");
    cr_assert_eq(field(s, "default_status"), 128 + SIGPIPE,
                 "under the shim a write to a reset socket did not die of SIGPIPE");
    cr_assert_eq(field(s, "nosignal_status"), 0, "MSG_NOSIGNAL did not give EPIPE");
    cr_assert_eq(field(ns, "nosignal_status"), 0);
}

Test(stress, short_reads_and_short_writes_move_exactly_what_they_report_as_natively, .timeout = 60)
{
    static struct child nat, c;
    child_start(&nat, false, "prog_faults", (char *[]){ "short", NULL });
    int nst = child_finish(&nat, 40000);
    run_proved(&c, "prog_faults", (char *[]){ "short", NULL }, 40000);
    cr_assert_eq(nst, 0, "native run: %s", nat.ebuf);
    static char a[4096], b[4096];
    compared_lines(&nat, a, sizeof a);
    compared_lines(&c, b, sizeof b);
    cr_assert_str_eq(b, a, "native:\n%s\nshim:\n%s", a, b);
    const char *l = find_line(&c, "SHORTREAD");
    cr_assert_eq(field(l, "total"), 100000);
    cr_assert_eq(field(l, "intact"), 1);
    cr_assert_eq(field(l, "short"), 1);
    l = find_line(&c, "WAITALL");
    cr_assert_eq(field(l, "first"), 20000, "MSG_WAITALL returned short");
    cr_assert_eq(field(l, "intact"), 1);
    for (const char *w = find_line(&c, "SHORTWRITE"); w; w = strstr(w + 1, "\nSHORTWRITE")) {
        if (*w == '\n')
            w++;
        cr_assert_eq(field(w, "reported"), field(w, "received"));
        cr_assert_eq(field(w, "received"), 1024 * 1024);
        cr_assert_eq(field(w, "intact"), 1);
        cr_assert_eq(field(w, "short_seen"), 1, "no short write happened: nothing was tested");
    }
}

Test(stress, send_and_receive_timeouts_mid_transfer_never_drop_or_duplicate_a_byte, .timeout = 60)
{
    static struct child c;
    run_proved(&c, "prog_faults", (char *[]){ "timeo", NULL }, 50000);
    const char *s = find_line(&c, "SNDTIMEO"), *r = find_line(&c, "RCVTIMEO");
    cr_assert_eq(field(s, "errors"), 0);
    cr_assert_eq(field(s, "timeouts_or_partial"), 1, "SO_SNDTIMEO never fired: nothing tested");
    cr_assert_eq(field(s, "reported"), 96 * 1024);
    cr_assert_eq(field(s, "received"), field(s, "reported"), "send's counts != bytes received");
    cr_assert_eq(field(s, "intact"), 1);
    cr_assert_eq(field(r, "timeouts_seen"), 1, "SO_RCVTIMEO never fired: nothing tested");
    cr_assert_eq(field(r, "received"), 100 * 1024);
    cr_assert_eq(field(r, "intact"), 1);
    cr_assert_eq(field(r, "errors"), 0);
}

/* ------------------------------------------------------ fork and spawn */

Test(stress, fork_from_a_pthread_while_fifty_are_parked_then_both_processes_keep_working,
     .timeout = 60)
{
    static struct child c;
    run_proved(&c, "prog_fork_spawn", NULL, 50000);
    const char *k = find_line(&c, "CHILD"), *p = find_line(&c, "PARENT");
    cr_assert(k, "the forked child printed nothing: %s", c.ebuf);
    cr_assert_eq(field(k, "echo_ok"), 20, "new threads in the child could not do I/O");
    cr_assert_leq(field(k, "threads"), test_hubs() + 1, "the child's 40 pthreads were OS threads");
    cr_assert_eq(field(k, "system"), 3);
    cr_assert_eq(field(p, "released"), 50, "parked threads of the parent were lost by the fork");
    cr_assert_eq(field(p, "child_status"), 0);
    cr_assert_eq(field(find_line(&c, "ROUNDS"), "ok"), 50);
}

Test(stress, system_and_posix_spawn_return_the_exit_status_while_other_threads_keep_running,
     .timeout = 60)
{
    static struct child c;
    run_proved(&c, "prog_fork_spawn", NULL, 50000);
    const char *s = find_line(&c, "SYSTEM"), *p = find_line(&c, "SPAWN");
    cr_assert_eq(field(s, "status"), 7);
    /* 300 ms of a child process: a 5 ms ticker must have run meanwhile
     * (generous bound: 10 ticks). */
    cr_assert_geq(field(s, "ticks"), 10, "system() stopped the other green threads");
    cr_assert_eq(field(p, "status"), 5);
    cr_assert_eq(field(p, "spawnp_status"), 0);
    cr_assert_geq(field(p, "ticks"), 10, "waiting for a posix_spawn child stopped the others");
}

/* -------------------------------------------------------- stack overflow */

Test(stress, a_pthread_overflowing_its_stack_is_reported_by_name_and_kills_with_sigsegv,
     .timeout = 60)
{
    static struct child ctl, c;
    /* Control: the same threads at a safe depth finish normally. */
    run_proved(&ctl, "prog_overflow", (char *[]){ "40", NULL }, 30000);
    cr_assert(find_line(&ctl, "SAFE"));
    child_start(&c, true, "prog_overflow", NULL);
    int st = child_finish(&c, 30000);
    cr_log_info("stdout:\n%s\nstderr:\n%s", c.buf, c.ebuf);
    const char *p = find_line(&c, "PROOF");
    cr_assert(p && field(p, "threads") <= test_hubs() + 1, "not under the shim: %s", c.buf);
    cr_assert(!find_line(&c, "CORRUPTED"), "the overflow silently corrupted a neighbour: %s", c.buf);
    cr_assert(!find_line(&c, "SAFE"), "the recursion did not overflow");
    cr_assert_eq(st, 128 + SIGSEGV, "status %d, not SIGSEGV; stderr: %s", st, c.ebuf);
    cr_assert(strstr(c.ebuf, "deep-recurser"), "the report does not name the thread: %s", c.ebuf);
    cr_assert(strstr(c.ebuf, "overflow"), "no overflow report: %s", c.ebuf);
}

/* --------------------------------------------------------------- timers */

Test(stress, sleeps_from_1_us_to_1_s_never_return_early, .timeout = 60)
{
    static struct child c;
    run_proved(&c, "prog_sleeps", NULL, 30000);
    const char *l = find_line(&c, "SLEEPS");
    cr_assert_eq(field(l, "samples"), 1282);
    cr_assert_eq(field(l, "failed"), 0, "a sleep failed");
    cr_assert_eq(field(l, "early"), 0, "%lld sleeps returned early (worst by %lld ns)",
                 field(l, "early"), field(l, "worst_early_ns"));
    cr_assert_leq(field(l, "threads_during"), 2, "the 20 sleepers were OS threads");
    /* 20 threads sleeping ~1.4 s each, concurrently: generous bound. */
    cr_assert_lt(field(l, "ms"), 10000, "the sleepers did not sleep concurrently");
}

/* ------------------------------------------------------ known failures */

/* Formerly a known bug. The daemon idiom "after fork, close every
 * descriptor from 3 up except the ones I use" used to close the shim's own
 * descriptors (libev's epoll fd, its eventfd and timerfd) and the child's
 * next park aborted in libev (status 134). The hooks now treat them as not
 * open (close gives EBADF, see green_internal.h). Reproduce:
 *   LD_PRELOAD=libgreen.so tests/progs/stress/prog_faults closeall */
Test(stress, a_forked_child_that_closes_every_inherited_descriptor_keeps_working,
     .timeout = 30)
{
    static struct child c;
    run_proved(&c, "prog_faults", (char *[]){ "closeall", NULL }, 20000);
    cr_assert_eq(field(find_line(&c, "CLOSEALL"), "child_status"), 0,
                 "the child died after closing the descriptors it inherited: %s", c.ebuf);
}

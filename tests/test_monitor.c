/*
 * test_monitor.c - seeing inside: the GREEN_MONITOR_MS watchdog, the
 * GREEN_DUMP_SIGNAL dump, green_dump(), and the gdb extension.
 *
 * The watchdog, the dump signal and gdb are exercised on a child program
 * (tests/progs/monitor/prog_monitor, linked with libgreen.so, whose
 * constructor reads the GREEN_* variables), never on the test runner.
 * Every child runs under a deadline and is killed when it passes.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include "green_internal.h"
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/msg.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "hubs.h"
#include "syscall_names.h"

extern char **environ;

#define OUT_MAX 65536

struct child {
    pid_t pid;
    int out, err;                  /* read ends of its stdout / stderr */
    char obuf[OUT_MAX], ebuf[OUT_MAX];
    size_t on, en;
    int status;                    /* wait status once reaped */
};

static const char *progs_dir(void)
{
    const char *d = getenv("GREEN_PROGS");
    cr_assert(d, "GREEN_PROGS is not set (run through meson test)");
    return d;
}

/* Start argv[0] with environ plus extra ("NAME=value", NULL-terminated). */
static void child_start(struct child *c, char *const argv[], const char *const *extra)
{
    int o[2], e[2];
    cr_assert_eq(pipe2(o, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(e, O_CLOEXEC), 0);
    char *env[512];
    size_t n = 0;
    for (size_t i = 0; extra && extra[i] && n < 16; i++)
        env[n++] = (char *)extra[i];
    for (char **p = environ; *p && n < 510; p++)
        if (strncmp(*p, "GREEN_MONITOR", 13) && strncmp(*p, "GREEN_DUMP", 10))
            env[n++] = *p;
    env[n] = NULL;
    memset(c, 0, sizeof *c);
    c->pid = fork();
    cr_assert(c->pid >= 0);
    if (c->pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        execve(argv[0], argv, env);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    c->out = o[0];
    c->err = e[0];
}

static void append(int *fd, char *buf, size_t *n)
{
    if (*fd < 0)
        return;
    ssize_t r = read(*fd, buf + *n, OUT_MAX - 1 - *n);
    if (r <= 0) {
        close(*fd);
        *fd = -1;
        return;
    }
    *n += (size_t)r;
    buf[*n] = 0;
}

/* Read stdout and stderr until both end, or until need (if not NULL)
 * appears in the buffer chosen by in_err, or until timeout_ms passes.
 * Returns true unless the deadline passed first. */
static bool child_read(struct child *c, const char *need, bool in_err, int timeout_ms)
{
    int64_t end = green_now() + GREEN_MSEC(timeout_ms);
    for (int i = 0; i < 100000 && (c->out >= 0 || c->err >= 0); i++) {
        if (need && strstr(in_err ? c->ebuf : c->obuf, need))
            return true;
        int64_t left = (end - green_now()) / 1000000;
        if (left <= 0)
            return false;
        struct pollfd p[2] = { { .fd = c->out, .events = POLLIN },
                               { .fd = c->err, .events = POLLIN } };
        if (poll(p, 2, (int)left) <= 0)
            continue;
        if (p[0].revents)
            append(&c->out, c->obuf, &c->on);
        if (p[1].revents)
            append(&c->err, c->ebuf, &c->en);
    }
    return need ? strstr(in_err ? c->ebuf : c->obuf, need) != NULL : true;
}

/* Reap the child, killing it first if it outlives timeout_ms. */
static void child_finish(struct child *c, int timeout_ms)
{
    child_read(c, NULL, false, timeout_ms);
    int64_t end = green_now() + GREEN_MSEC(timeout_ms);
    for (int i = 0; i < 100000; i++) {
        pid_t r = waitpid(c->pid, &c->status, WNOHANG);
        if (r == c->pid)
            break;
        if (green_now() > end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &c->status, 0);
            break;
        }
        usleep(1000);
    }
    if (c->out >= 0)
        close(c->out);
    if (c->err >= 0)
        close(c->err);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* Read until needle has appeared n times on stderr (or timeout_ms). */
static bool child_wait_count(struct child *c, const char *needle, int n, int timeout_ms)
{
    int64_t end = green_now() + GREEN_MSEC(timeout_ms);
    for (int i = 0; i < 1000 && count(c->ebuf, needle) < n; i++) {
        int left = (int)((end - green_now()) / 1000000);
        if (left <= 0)
            break;
        child_read(c, NULL, true, left < 20 ? left : 20);
    }
    return count(c->ebuf, needle) >= n;
}

/* Seconds in the "for S.mmm s" of a dump line, or -1. */
static double waited(const char *line)
{
    const char *p = strstr(line, " for ");
    double s = -1;
    if (!p || sscanf(p, " for %lf s", &s) != 1)
        return -1;
    return s;
}

/* The line of s that contains what, copied into line (empty if none). */
static void line_with(const char *s, const char *what, char *line, size_t cap)
{
    line[0] = 0;
    const char *p = strstr(s, what);
    if (!p)
        return;
    const char *b = p, *e = p;
    while (b > s && b[-1] != '\n')
        b--;
    while (*e && *e != '\n')
        e++;
    size_t n = (size_t)(e - b) < cap - 1 ? (size_t)(e - b) : cap - 1;
    memcpy(line, b, n);
    line[n] = 0;
}

static void run_prog(struct child *c, const char *mode, const char *const *env)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/monitor/prog_monitor", progs_dir());
    char *argv[] = { path, (char *)mode, NULL };
    child_start(c, argv, env);
}

/* The sanitizer runtime the test runner uses, or "" : an ASan-built
 * libgreen.so can only be preloaded into a plain program after it. */
/* Nothing to add in front of libgreen.so: in a sanitizer build the child
 * is instrumented too, and libgreen must come before ASan's pthread_create
 * interceptor (tests/meson.build switches ASan's link-order check off). */
static const char *asan_runtime(void)
{
    return "";
}

/* prog_shim under LD_PRELOAD=$GREEN_LIB, plus one or two more variables. */
static void run_shim(struct child *c, const char *mode, const char *var,
                     const char *var2)
{
    static char pre[8400];
    const char *lib = getenv("GREEN_LIB");
    cr_assert(lib, "GREEN_LIB is not set (run through meson test)");
    const char *asan = asan_runtime();
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s%s%s", asan, *asan ? ":" : "", lib);
    char path[4096];
    snprintf(path, sizeof path, "%s/monitor/prog_shim", progs_dir());
    char *argv[] = { path, (char *)mode, NULL };
    const char *env[] = { pre, var, var2, NULL };
    child_start(c, argv, env);
}

/* ------------------------------------------------------------- monitor */

Test(monitor, busy_loop_of_300_ms_is_reported_once_by_id_name_and_backtrace_and_its_end)
{
    static struct child c;
    const char *env[] = { "GREEN_MONITOR_MS=50", NULL };
    run_prog(&c, "spin", env);
    child_finish(&c, 10000);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
              "child failed: status %d, stderr:\n%s", c.status, c.ebuf);
    cr_assert(strstr(c.obuf, "done"), "stdout: %s", c.obuf);
    cr_assert(strstr(c.ebuf, "libgreen: green thread 3 \"spinner\" has run for "),
              "no report naming thread 3 \"spinner\"; stderr:\n%s", c.ebuf);
    cr_assert(strstr(c.ebuf, " ms without yielding"), "stderr:\n%s", c.ebuf);
    cr_assert_eq(count(c.ebuf, "\"spinner\" has run for"), 1,
                 "one report per stall expected; stderr:\n%s", c.ebuf);
    char line[512];
    line_with(c.ebuf, "spin_without_yielding+", line, sizeof line);
    cr_assert(strstr(line, "libgreen:   #"),
              "no backtrace line naming spin_without_yielding; stderr:\n%s", c.ebuf);
    /* The end of the stall, at least as long as the threshold. */
    const char *end = strstr(c.ebuf, "libgreen: green thread 3 \"spinner\" yielded after "
                                     "running for about ");
    int ms = -1;
    cr_assert(end && sscanf(strstr(end, "about "), "about %d ms", &ms) == 1 && ms >= 50,
              "no end-of-stall line (ms %d); stderr:\n%s", ms, c.ebuf);
}

Test(monitor, thread_that_yields_all_the_time_is_not_reported)
{
    static struct child c;
    /* 100 ms, not 50: the monitor measures wall time, and a loaded machine
     * may leave the yielding OS thread without a CPU for a while. */
    const char *env[] = { "GREEN_MONITOR_MS=100", NULL };
    run_prog(&c, "yield", env);
    child_finish(&c, 10000);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
              "child failed: status %d, stderr:\n%s", c.status, c.ebuf);
    /* The spinner that follows proves the monitor was watching. */
    cr_assert(strstr(c.ebuf, "\"late-spinner\" has run for "),
              "the monitor was not on; stderr:\n%s", c.ebuf);
    cr_assert_null(strstr(c.ebuf, "\"yielder\""),
                   "a yielding thread was reported; stderr:\n%s", c.ebuf);
    cr_assert_null(strstr(c.ebuf, "\"main\""), "stderr:\n%s", c.ebuf);
}

Test(monitor, stall_is_still_reported_when_the_program_took_the_monitor_signal)
{
    static struct child c;
    const char *env[] = { "GREEN_MONITOR_MS=50", NULL };
    run_prog(&c, "replaced", env);
    child_finish(&c, 20000);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
              "child failed: status %d, stderr:\n%s", c.status, c.ebuf);
    cr_assert(strstr(c.ebuf, "libgreen: a green thread of OS thread ") &&
              strstr(c.ebuf, "without yielding (no backtrace: the program installed "
                             "its own handler for the monitor signal"),
              "stderr:\n%s", c.ebuf);
    cr_assert_eq(count(c.ebuf, "without yielding"), 1, "stderr:\n%s", c.ebuf);
    /* The monitor did not send the program a signal it did not ask for. */
    cr_assert(strstr(c.obuf, "own handler ran 0 times"), "stdout: %s", c.obuf);
}

Test(monitor, nothing_is_reported_without_green_monitor_ms)
{
    static struct child c;
    run_prog(&c, "spin", NULL);
    child_finish(&c, 10000);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    cr_assert(strstr(c.obuf, "done"));
    cr_assert_null(strstr(c.ebuf, "without yielding"), "stderr:\n%s", c.ebuf);
}

Test(monitor, pthread_busy_loop_under_the_shim_is_reported_by_its_pthread_name)
{
    static struct child c;
    run_shim(&c, "spin", "GREEN_MONITOR_MS=50", NULL);
    child_finish(&c, 10000);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
              "child failed: status %d, stderr:\n%s", c.status, c.ebuf);
    /* Precondition: the pthreads were green threads of the shim (main +
     * the monitor's own thread, not 3 more OS threads). */
    cr_assert(strstr(c.obuf, "hooked 1"), "pthread_create not interposed:\n%s", c.obuf);
    int n = -1;
    const char *p = strstr(c.obuf, "os-threads ");
    cr_assert(p && sscanf(p, "os-threads %d", &n) == 1 && n >= 1 && n <= test_hubs() + 1,
              "pthreads were not green threads (%d hubs): %s", test_hubs(), c.obuf);
    cr_assert(strstr(c.ebuf, "\"busy\" has run for "), "stderr:\n%s", c.ebuf);
    cr_assert(strstr(c.ebuf, "busy_loop_in_pthread+"), "no backtrace; stderr:\n%s", c.ebuf);
    cr_assert_eq(count(c.ebuf, "without yielding"), 1,
                 "only the busy thread, once; stderr:\n%s", c.ebuf);
}

/* ------------------------------------------ blocked in a system call */

/* The report of a green thread asleep in the raw ppoll of the children
 * (tests/progs/raw_syscall.h): the call by number and name, the
 * thread, its frames, the advice, and the end. */
static void assert_raw_ppoll_report(const struct child *c, const char *thread,
                                    const char *waiting, const char *caller)
{
    char want[256], line[1024];
    snprintf(want, sizeof want, "is blocked in system call %d (ppoll), while ",
             (int)SYS_ppoll);
    line_with(c->ebuf, want, line, sizeof line);
    cr_assert(strstr(line, thread) && strstr(line, "\" has not yielded for ") &&
              strstr(line, waiting),
              "no report naming ppoll, %s and \"%s\"; stderr:\n%s", thread,
              waiting, c->ebuf);
    cr_assert_eq(count(c->ebuf, " has not yielded for "), 1,
                 "one report per stall expected; stderr:\n%s", c->ebuf);
    cr_assert(strstr(c->ebuf, "libgreen:   ppoll(0x"), "stderr:\n%s", c->ebuf);
    cr_assert(strstr(c->ebuf, "libgreen:   what to do: a wait for descriptors "
                              "the shim passed through: a raw system call"),
              "no advice; stderr:\n%s", c->ebuf);
    /* Frames: the kernel's pc in the helper, then its caller, found on
     * the stack (on aarch64 the helper, a leaf, keeps its return address
     * in a register: the scan sees callers from the next frame on). */
    line_with(c->ebuf, " raw_syscall4+", line, sizeof line);
    cr_assert(strstr(line, "libgreen:   #0 "), "pc frame: \"%s\"; stderr:\n%s",
              line, c->ebuf);
#if defined(__x86_64__)
    line_with(c->ebuf, caller, line, sizeof line);
    cr_assert(strstr(line, "libgreen:   #1 "), "caller frame: \"%s\"; stderr:\n%s",
              line, c->ebuf);
#else
    (void)caller;
#endif
    snprintf(want, sizeof want, "%s yielded after about ", thread);
    cr_assert(strstr(c->ebuf, want) && strstr(c->ebuf, " ms (back from system call ppoll)"),
              "no end line; stderr:\n%s", c->ebuf);
    /* Not a stall report, and no signal: the ppoll timed out as natively
     * (a handler would have ended it with EINTR, SA_RESTART or not). */
    cr_assert_null(strstr(c->ebuf, "without yielding"), "stderr:\n%s", c->ebuf);
    cr_assert(strstr(c->obuf, "ppoll 0\n"), "ppoll did not time out as natively: %s",
              c->obuf);
}

Test(monitor, raw_system_call_blocking_the_hub_is_named_with_thread_frames_and_advice_without_eintr)
{
    static struct child c;
    const char *env[] = { "GREEN_MONITOR_MS=50", NULL };
    char path[4096];
    snprintf(path, sizeof path, "%s/monitor/prog_monitor", progs_dir());
    char *argv[] = { path, "rawcall", "runnable", NULL };
    child_start(&c, argv, env);
    child_finish(&c, 20000);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
              "child failed: status %d, stderr:\n%s", c.status, c.ebuf);
    cr_assert(strstr(c.obuf, "runner ran 1\ndone"), "stdout: %s", c.obuf);
    assert_raw_ppoll_report(&c, "green thread 3 \"raw-poller\"",
                            "1 green thread is runnable", " ppoll_without_libc+");
}

Test(monitor, raw_system_call_is_reported_when_a_deadline_on_its_hub_has_passed)
{
    static struct child c;
    const char *env[] = { "GREEN_MONITOR_MS=50", NULL };
    char path[4096];
    snprintf(path, sizeof path, "%s/monitor/prog_monitor", progs_dir());
    char *argv[] = { path, "rawcall", "event", NULL };
    child_start(&c, argv, env);
    child_finish(&c, 20000);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
              "child failed: status %d, stderr:\n%s", c.status, c.ebuf);
    assert_raw_ppoll_report(&c, "green thread 3 \"raw-poller\"",
                            "events are pending on its hub", " ppoll_without_libc+");
}

Test(monitor, hub_idle_in_epoll_wait_or_raw_call_with_nothing_waiting_is_not_reported)
{
    static struct child c;
    const char *env[] = { "GREEN_MONITOR_MS=50", NULL };
    run_prog(&c, "idle", env);
    child_finish(&c, 20000);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
              "child failed: status %d, stderr:\n%s", c.status, c.ebuf);
    cr_assert(strstr(c.obuf, "ppoll 0\ndone"), "stdout: %s", c.obuf);
    /* The spinner that follows proves the monitor was watching. */
    cr_assert(strstr(c.ebuf, "\"late-spinner\" has run for "),
              "the monitor was not on; stderr:\n%s", c.ebuf);
    cr_assert_null(strstr(c.ebuf, "raw-poller"), "stderr:\n%s", c.ebuf);
    cr_assert_null(strstr(c.ebuf, "\"main\""), "stderr:\n%s", c.ebuf);
    cr_assert_eq(count(c.ebuf, " has not yielded for "), 0, "stderr:\n%s", c.ebuf);
    cr_assert_eq(count(c.ebuf, " has run for "), 1,
                 "only the spinner's report expected; stderr:\n%s", c.ebuf);
}

Test(monitor, raw_system_call_of_a_pthread_under_the_shim_is_named_by_its_pthread_name)
{
    static struct child c;
    /* One hub: the napper is then certainly held up behind the call. */
    run_shim(&c, "rawcall", "GREEN_MONITOR_MS=50", "GREEN_HUBS=1");
    child_finish(&c, 20000);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
              "child failed: status %d, stderr:\n%s", c.status, c.ebuf);
    cr_assert(strstr(c.obuf, "hooked 1"), "pthread_create not interposed:\n%s", c.obuf);
    assert_raw_ppoll_report(&c, "\"raw-poller\"", "1 green thread is runnable",
                            " ppoll_in_pthread+");
}

Test(monitor, syscall_table_names_this_architectures_blocking_calls_with_advice)
{
    const struct green__syscall_info *si = green__syscall_info(SYS_io_uring_enter);
    cr_assert(si && !strcmp(si->name, "io_uring_enter") && si->fd_arg == 0 &&
              strstr(si->advice, "innodb_use_native_aio=0"));
    si = green__syscall_info(SYS_io_getevents);
    cr_assert(si && !strcmp(si->name, "io_getevents") &&
              strstr(si->advice, "innodb_use_native_aio=0"));
    si = green__syscall_info(SYS_futex);
    cr_assert(si && !strcmp(si->name, "futex") && si->fd_arg < 0 &&
              strstr(si->advice, "raw futex"));
    si = green__syscall_info(SYS_read);
    cr_assert(si && !strcmp(si->name, "read") && si->fd_arg == 0 &&
              strstr(si->advice, "GREEN_HOOKS=+file"));
    si = green__syscall_info(SYS_epoll_pwait);
    cr_assert(si && !strcmp(si->name, "epoll_pwait"));
    /* Calls that do not wait are not listed: the report prints the number. */
    cr_assert_null(green__syscall_info(SYS_getpid));
    cr_assert_null(green__syscall_info(-1));
    cr_assert(strstr(green__syscall_advice_other(), "green_offload"));
}

/* The entry points the preload's constructor calls (hidden, in the core). */
int green__monitor_start(int ms);
int green__dump_signal_install(int sig);

Test(monitor, start_rejects_a_bad_threshold_and_a_second_start)
{
    errno = 0;
    cr_assert_eq(green__monitor_start(0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(green__monitor_start(10000), 0);
    errno = 0;
    cr_assert_eq(green__monitor_start(10000), -1);
    cr_assert_eq(errno, EBUSY);
    errno = 0;
    cr_assert_eq(green__dump_signal_install(SIGKILL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(green__dump_signal_install(0), -1);
}

/* ---------------------------------------------------------------- dump */

Test(dump, signal_under_the_shim_shows_mutex_condvar_fd_sleep_ipc_and_file_lock_waits)
{
    static struct child c;
    run_shim(&c, "dump", "GREEN_DUMP_SIGNAL=SIGUSR2", NULL);
    cr_assert(child_read(&c, "ready", false, 10000), "child never got ready: %s", c.ebuf);
    int pid = 0, fd = -1, queue = -1, lockfd = -1;
    cr_assert_eq(sscanf(strstr(c.obuf, "ready"), "ready %d %d %d %d", &pid, &fd, &queue,
                        &lockfd), 4);
    cr_assert_eq(kill(c.pid, SIGUSR2), 0);
    /* Every hub prints its own list, main last (newest first); with
     * several hubs the threads are spread over them. Under the shim the
     * main thread has the program's name, as natively. */
    bool got = child_read(&c, " prog_shim ", true, 10000);
    static const char *const names[] = { " locker ", " waiter ", " reader ", " sleeper ",
                                         " ipcwaiter ", " flocker " };
    for (size_t k = 0; got && k < sizeof names / sizeof *names; k++)
        got = child_read(&c, names[k], true, 10000);
    kill(c.pid, SIGKILL);
    child_finish(&c, 10000);
    msgctl(queue, IPC_RMID, NULL);
    cr_assert(got, "no dump; stderr:\n%s", c.ebuf);
    char line[512], want[64];
    line_with(c.ebuf, " locker ", line, sizeof line);
    cr_assert(strstr(line, "parked") && strstr(line, " on mutex 0x"), "locker: \"%s\"\n%s", line, c.ebuf);
    cr_assert(waited(line) >= 0 && waited(line) < 60, "locker: \"%s\"", line);
    line_with(c.ebuf, " waiter ", line, sizeof line);
    cr_assert(strstr(line, " on condvar 0x"), "waiter: \"%s\"\n%s", line, c.ebuf);
    snprintf(want, sizeof want, " on fd %d read for ", fd);
    line_with(c.ebuf, " reader ", line, sizeof line);
    cr_assert(strstr(line, want), "reader: \"%s\"\n%s", line, c.ebuf);
    line_with(c.ebuf, " sleeper ", line, sizeof line);
    cr_assert(strstr(line, " on sleep for "), "sleeper: \"%s\"\n%s", line, c.ebuf);
    snprintf(want, sizeof want, " on msgrcv from queue %d for ", queue);
    line_with(c.ebuf, " ipcwaiter ", line, sizeof line);
    cr_assert(strstr(line, want), "ipcwaiter: \"%s\"\n%s", line, c.ebuf);
    snprintf(want, sizeof want, " on file lock of fd %d for ", lockfd);
    line_with(c.ebuf, " flocker ", line, sizeof line);
    cr_assert(strstr(line, want), "flocker: \"%s\"\n%s", line, c.ebuf);
}

Test(dump, signal_prints_every_green_thread_of_every_os_thread_with_its_wait)
{
    static struct child c;
    const char *env[] = { "GREEN_DUMP_SIGNAL=USR2", NULL };
    run_prog(&c, "dump", env);
    cr_assert(child_read(&c, "ready", false, 10000), "child never got ready: %s", c.ebuf);
    cr_assert_eq(kill(c.pid, SIGUSR2), 0);
    /* Each OS thread's dump ends with its main thread's line. */
    bool got = child_wait_count(&c, "  main  ", 2, 10000);
    /* The dump must not have ended the child. */
    int st;
    bool alive = waitpid(c.pid, &st, WNOHANG) == 0;
    kill(c.pid, SIGKILL);
    child_finish(&c, 10000);
    cr_assert(got, "no dump of the second OS thread; stderr:\n%s", c.ebuf);
    cr_assert(alive, "the dump signal killed the child");
    char line[512];
    line_with(c.ebuf, " reader ", line, sizeof line);
    cr_assert(strstr(line, "parked") && strstr(line, "on fd 3 read for "),
              "reader line: \"%s\"; stderr:\n%s", line, c.ebuf);
    /* It parked less than a minute ago (the test's own deadlines). */
    cr_assert(waited(line) >= 0 && waited(line) < 60, "reader line: \"%s\"", line);
    line_with(c.ebuf, " napper ", line, sizeof line);
    cr_assert(strstr(line, "parked") && strstr(line, "on sleep for ") &&
              strstr(line, "timeout in "), "napper line: \"%s\"", line);
    line_with(c.ebuf, " joiner ", line, sizeof line);
    cr_assert(strstr(line, "on join of 4"), "joiner line: \"%s\"", line);
    line_with(c.ebuf, " far-napper ", line, sizeof line);
    cr_assert(strstr(line, "on sleep for "), "far-napper line: \"%s\"", line);
    cr_assert_eq(count(c.ebuf, "libgreen: green threads of OS thread "), 2,
                 "one header per OS thread expected; stderr:\n%s", c.ebuf);
}

static int dump_pipe[2];

static void *park_on_pipe(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)green_wait_readable(dump_pipe[0], GREEN_FOREVER);
}

static void *park_in_sleep(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)green_sleep(GREEN_SEC(30));
}

Test(dump, green_dump_shows_fd_and_sleep_waits_and_the_current_thread)
{
    cr_assert_eq(pipe(dump_pipe), 0);
    green_attr_t a1 = { .name = "pipe-reader" }, a2 = { .name = "dozer" };
    green_t r = green_spawn(park_on_pipe, NULL, &a1);
    green_t s = green_spawn(park_in_sleep, NULL, &a2);
    cr_assert(r && s);
    cr_assert_eq(green_yield(), 0);
    int out[2];
    cr_assert_eq(pipe(out), 0);
    green_dump(out[1]);
    close(out[1]);
    static char buf[8192];
    size_t n = 0;
    for (ssize_t k; n < sizeof buf - 1 && (k = read(out[0], buf + n, sizeof buf - 1 - n)) > 0;)
        n += (size_t)k;
    buf[n] = 0;
    char line[512];
    char want[64];
    snprintf(want, sizeof want, "on fd %d read for ", dump_pipe[0]);
    line_with(buf, "pipe-reader", line, sizeof line);
    cr_assert(strstr(line, "parked") && strstr(line, want), "line \"%s\" in:\n%s", line, buf);
    line_with(buf, "dozer", line, sizeof line);
    cr_assert(strstr(line, "on sleep for "), "line \"%s\" in:\n%s", line, buf);
    line_with(buf, "  main  ", line, sizeof line);
    cr_assert(strstr(line, "running") && strstr(line, "(current)"), "line \"%s\"", line);
    cr_assert(strstr(buf, "(2 besides main and hub)"), "%s", buf);
    green_kill(r);
    green_kill(s);
    cr_assert_eq(green_join(r, NULL), 0);
    cr_assert_eq(green_join(s, NULL), 0);
}

/* ----------------------------------------------------------------- gdb */

static bool have_gdb(void)
{
    return access("/usr/bin/gdb", X_OK) == 0 || access("/usr/local/bin/gdb", X_OK) == 0;
}

/* Run prog_monitor under gdb with the extension loaded and the given -ex
 * commands after `run`. False (the test is skipped) when gdb is missing or
 * cannot ptrace here. */
static bool run_gdb(struct child *c, const char *const *cmds, int ncmds)
{
    if (!have_gdb()) {
        cr_skip_test("gdb is not installed: the gdb extension is not tested");
        return false;
    }
    const char *src = getenv("GREEN_SRCDIR");
    cr_assert(src, "GREEN_SRCDIR is not set");
    static char script[4096], prog[4096];
    snprintf(script, sizeof script, "%s/../gdb/libgreen-gdb.py", src);
    snprintf(prog, sizeof prog, "%s/monitor/prog_monitor", progs_dir());
    char *gdb = access("/usr/bin/gdb", X_OK) == 0 ? "/usr/bin/gdb" : "/usr/local/bin/gdb";
    char *argv[64] = { gdb, "-nx", "-batch", "-x", script, "-ex", "run" };
    int n = 7;
    for (int i = 0; i < ncmds && n < 58; i++) {
        argv[n++] = "-ex";
        argv[n++] = (char *)cmds[i];
    }
    argv[n++] = "--args";
    argv[n++] = prog;
    argv[n++] = "gdb";
    argv[n] = NULL;
    child_start(c, argv, NULL);
    child_finish(c, 60000);
    if (strstr(c->obuf, "ptrace") && strstr(c->obuf, "not permitted")) {
        cr_skip_test("gdb cannot ptrace here: %s", c->obuf);
        return false;
    }
    cr_assert(strstr(c->obuf, "sleeper id 3"), "gdb output:\n%s\n%s", c->obuf, c->ebuf);
    return true;
}

/* libgreen without debug info (--buildtype=release): the extension lists
 * threads through green_dump and says so in its header line. */
static bool without_debug_info(const struct child *c)
{
    return strstr(c->obuf, "(no debug info: from green_dump)") != NULL;
}

/* With debug info the extension walks libgreen's structures; without, it
 * calls green_dump in the inferior: the lines must read the same. */
Test(gdb, info_green_lists_threads_with_or_without_debug_info)
{
    static const char *const cmds[] = { "info green", "info green all" };
    static struct child c;
    if (!run_gdb(&c, cmds, 2))
        return;
    char line[512];
    line_with(c.obuf, " sleeper ", line, sizeof line);
    cr_assert(strstr(line, "     3  sleeper") && strstr(line, "parked") &&
              strstr(line, " on sleep"),
              "info green: \"%s\"; output:\n%s\n%s", line, c.obuf, c.ebuf);
    line_with(c.obuf, " reader ", line, sizeof line);
    cr_assert(strstr(line, "parked") && strstr(line, " on fd "), "info green: \"%s\"", line);
    cr_assert(waited(line) >= 0 && waited(line) < 60, "info green: \"%s\"", line);
    line_with(c.obuf, "  main  ", line, sizeof line);
    cr_assert(strstr(line, "(current)"), "info green: \"%s\"", line);
    /* info green all: the same OS thread, listed a second time. */
    const char *second = strstr(c.obuf, " sleeper ");
    cr_assert(second && strstr(second + 1, "     3  sleeper"),
              "info green all:\n%s\n%s", c.obuf, c.ebuf);
}

Test(gdb, green_bt_shows_a_parked_threads_stack_and_restores_registers)
{
    static const char *const cmds[] = { "info green", "green bt 3", "bt 1",
                                        "green bt all" };
    static struct child c;
    if (!run_gdb(&c, cmds, 4))
        return;
    if (without_debug_info(&c)) {
        /* A parked thread's saved registers are found through libgreen's
         * structures: without DWARF the command must say what it needs. */
        cr_assert(strstr(c.ebuf, "green bt") && strstr(c.ebuf, "needs it") &&
                  strstr(c.ebuf, "-g"), "green bt without debug info:\n%s\n%s",
                  c.obuf, c.ebuf);
        cr_skip_test("libgreen.so has no debug info (release build): green bt "
                     "needs it and is not tested here; checked that it says so");
        return;
    }
    cr_assert(strstr(c.obuf, "Green thread 3 \"sleeper\" (parked)"), "%s", c.obuf);
    cr_assert(strstr(c.obuf, " in nap_in_sleeper ("),
              "green bt 3 does not show nap_in_sleeper; output:\n%s\n%s", c.obuf, c.ebuf);
    /* Registers were restored: the OS thread's own stack is back. */
    const char *after = strstr(c.obuf, " in nap_in_sleeper (");
    cr_assert(after && strstr(after, "pthread_kill"), "bt after green bt:\n%s", c.obuf);
    /* green bt all: the reader's stack too (after the single bt above). */
    cr_assert(after && strstr(after, "Green thread 4 \"reader\" (parked)") &&
              strstr(after, " in wait_in_reader ("), "green bt all:\n%s", c.obuf);
}

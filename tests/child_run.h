/*
 * child_run.h - run one child program from tests/progs as the criterion
 * tests of the preload do: under the shim (LD_PRELOAD=$GREEN_LIB) or
 * natively, with a time limit, collecting its stdout; and read "key=value"
 * lines from what it printed. Static functions: each test file that
 * includes it gets its own copy.
 */
#ifndef GREEN_TESTS_CHILD_RUN_H
#define GREEN_TESTS_CHILD_RUN_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

/* Output and exit status of one child run. */
struct run {
    char out[1 << 14];
    int status;            /* exit code, or -1 if it did not exit normally */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* When set, run_prog's output has the child's stderr too (libgreen's
 * messages), after stdout's lines as the pipe interleaves them. */
static bool run_prog_stderr;

/* When set, run_prog runs the program under strace -f with this
 * -e trace= expression (strace itself is not preloaded: -E) and leaves
 * the calls in run_prog_trace_file; trace_count counts them. */
static const char *run_prog_trace;
static char run_prog_trace_file[64];

/* Run $GREEN_PROGS/sub/prog args..., under the shim or not, for at most
 * limit_ms; the child is killed past that. */
static void run_prog(struct run *r, bool preload, const char *sub, const char *prog,
                     const char *a1, const char *a2, int limit_ms)
{
    const char *dir = getenv("GREEN_PROGS"), *lib = getenv("GREEN_LIB");
    cr_assert(dir && lib, "GREEN_PROGS and GREEN_LIB must be set (run through meson test)");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, prog);
    if (run_prog_trace) {
        snprintf(run_prog_trace_file, sizeof run_prog_trace_file, "/tmp/green-trace-XXXXXX");
        int tfd = mkstemp(run_prog_trace_file);
        cr_assert_geq(tfd, 0, "mkstemp: %s", strerror(errno));
        close(tfd);
    }
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(p[1], 1);
        if (run_prog_stderr)
            dup2(p[1], 2);
        if (run_prog_trace) {
            char expr[256], pre[4200];
            snprintf(expr, sizeof expr, "trace=%s", run_prog_trace);
            snprintf(pre, sizeof pre, "LD_PRELOAD=%s", preload ? lib : "");
            unsetenv("LD_PRELOAD");
            execlp("strace", "strace", "-f", "-qq", "-e", expr, "-o", run_prog_trace_file,
                   "-E", pre, path, a1, a2, (char *)NULL);
            _exit(127);
        }
        if (preload)
            setenv("LD_PRELOAD", lib, 1);
        else
            unsetenv("LD_PRELOAD");
        execl(path, path, a1, a2, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    long long end = now_ms() + limit_ms;
    for (;;) {
        long long left = end - now_ms();
        struct pollfd pf = { .fd = p[0], .events = POLLIN };
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        ssize_t k = read(p[0], r->out + len, sizeof r->out - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    r->out[len] = 0;
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Lines of the last traced run_prog that contain what (then the trace
 * file is removed). */
static inline int trace_count(const char *what)
{
    FILE *f = fopen(run_prog_trace_file, "r");
    cr_assert(f, "no strace output in %s", run_prog_trace_file);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, what) != NULL;
    fclose(f);
    unlink(run_prog_trace_file);
    return n;
}

/* Value of "key=" in the child's output; fails the test when missing. */
static long kv(const struct run *r, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "%s=", key);
    const char *s = r->out;
    while ((s = strstr(s, pat)) && s != r->out && s[-1] != '\n')
        s++;
    cr_assert(s, "no %s in the child's output:\n%s", key, r->out);
    return strtol(s + strlen(pat), NULL, 10);
}

#endif

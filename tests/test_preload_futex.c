/*
 * test_preload_futex.c - futex(2) through libc's syscall() under the shim
 * (hooks/syscall.c), checked against the kernel: each case of
 * tests/progs/pthread/prog_futex.c runs natively and under LD_PRELOAD, in
 * a fresh process each, and every key=value line of the native run
 * (results, errno names, wake counts, what a signal did) must appear
 * unchanged in the preloaded run. The preloaded run first proves that
 * syscall() resolved into libgreen, and where threads run it proves they
 * are green (no more OS threads than hubs). Before the hook, the
 * ping-pong hung the process (the hub's OS thread slept in the kernel's
 * FUTEX_WAIT while the thread that would wake it waited to run on it).
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
#include <unistd.h>

#include "child_run.h"
#include "hubs.h"

/* Lines whose value differs by nature: the proof of the hook, the OS
 * thread count, wall time. */
static bool ignored(const char *line)
{
    static const char *const keys[] = { "hooked=", "threads=", "pingpong_ms=" };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!strncmp(line, keys[i], strlen(keys[i])))
            return true;
    return false;
}

/* Every line of native's output that is not ignored is also a line of
 * green's. */
static void same_lines(const char *what, const struct run *native, const struct run *green)
{
    char buf[1 << 14], hay[sizeof green->out + 2];
    snprintf(buf, sizeof buf, "%s", native->out);
    snprintf(hay, sizeof hay, "\n%s", green->out);
    int lines = 0;
    for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (ignored(l))
            continue;
        lines++;
        char pat[512];
        snprintf(pat, sizeof pat, "\n%s\n", l);
        cr_expect(strstr(hay, pat) != NULL, "%s: natively \"%s\", under the shim:\n%s",
                  what, l, green->out);
    }
    cr_assert_gt(lines, 0, "%s: the native run printed nothing to compare:\n%s", what,
                 native->out);
}

static void differential(const char *c, struct run *native, struct run *green)
{
    run_prog(native, false, "pthread", "prog_futex", c, NULL, 60000);
    cr_assert_eq(native->status, 0, "%s natively exited %d:\n%s", c, native->status,
                 native->out);
    cr_assert_eq(kv(native, "hooked"), 0);
    run_prog(green, true, "pthread", "prog_futex", c, NULL, 60000);
    cr_assert_eq(green->status, 0, "%s under the shim exited %d (-1: killed after 60 s, "
                 "a hang):\n%s", c, green->status, green->out);
    cr_assert_eq(kv(green, "hooked"), 1, "syscall() is not libgreen's:\n%s", green->out);
    same_lines(c, native, green);
}

Test(preload_futex, a_futex_ping_pong_between_pthreads_runs_green)
{
    static struct run n, g;
    differential("pingpong", &n, &g);
    cr_assert_geq(kv(&n, "threads"), 3, "natively each pthread is an OS thread");
    cr_assert_leq(kv(&g, "threads"), test_hubs(), "the pthreads are not green:\n%s", g.out);
}

Test(preload_futex, errors_timeouts_and_errno_are_the_kernels)
{
    static struct run n, g;
    differential("errors", &n, &g);
}

Test(preload_futex, wake_counts_bitsets_and_requeue_are_the_kernels)
{
    static struct run n, g;
    differential("wakecount", &n, &g);
    cr_assert_eq(kv(&g, "woke_all"), 5, "%s", g.out);
}

Test(preload_futex, a_forked_child_wakes_none_of_its_parents_waiters)
{
    static struct run n, g;
    differential("forkwake", &n, &g);
    cr_assert_eq(kv(&g, "child_woke"), 0, "%s", g.out);
    cr_assert_eq(kv(&g, "parent_woke"), 3, "%s", g.out);
}

Test(preload_futex, blocking_numbers_behave_as_their_libc_names_and_park_only_the_caller)
{
    static struct run n, g;
    differential("numbers", &n, &g);
    cr_assert_eq(kv(&g, "ticked_while_reading"), 1, "syscall(SYS_read) blocked the hub:\n%s",
                 g.out);
}

Test(preload_futex, signals_interrupt_or_restart_a_wait_as_natively)
{
    static struct run n, g;
    differential("signals", &n, &g);
}

Test(preload_futex, a_plain_os_thread_and_a_green_one_wake_each_other)
{
    static struct run n, g;
    differential("plain", &n, &g);
    cr_assert_eq(kv(&g, "plain_rounds"), 500, "%s", g.out);
    cr_assert_leq(kv(&g, "threads"), test_hubs() + 1, "%s", g.out);
}

Test(preload_futex, a_shared_futex_is_woken_by_another_process)
{
    static struct run n, g;
    differential("shared", &n, &g);
    cr_assert_eq(kv(&g, "shared_child"), 0, "%s", g.out);
}

/* C++20's semaphores, latch, barrier and atomic waits: libstdc++ waits
 * with syscall(SYS_futex). Before the hook the first semaphore acquire of
 * a green thread hung the process. Built only with a C++20 compiler. */
Test(preload_futex, cxx20_semaphores_latch_barrier_and_atomic_wait_run_green)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/pthread/prog_cxxsync", getenv("GREEN_PROGS"));
    if (access(path, X_OK) != 0)
        cr_skip_test("no C++20 compiler: prog_cxxsync was not built");
    static struct run n, g;
    /* The native run is the oracle only. It once hung in CI (killed after
     * 60 s right after "threads=17", in the semaphore pool, with no
     * libgreen in the process; 0 hangs in 300 runs here): a second try
     * keeps a rare hang of the toolchain's own waits from failing a test
     * of libgreen. */
    for (int try = 0; try < 2; try++) {
        run_prog(&n, false, "pthread", "prog_cxxsync", NULL, NULL, 30000);
        if (n.status == 0)
            break;
    }
    cr_assert_eq(n.status, 0, "natively:\n%s", n.out);
    run_prog(&g, true, "pthread", "prog_cxxsync", NULL, NULL, 60000);
    cr_assert_eq(g.status, 0, "under the shim (-1: killed after 60 s, a hang):\n%s", g.out);
    cr_assert_eq(kv(&g, "hooked"), 1, "syscall() is not libgreen's:\n%s", g.out);
    cr_assert_leq(kv(&g, "threads"), test_hubs(), "the std::threads are not green:\n%s", g.out);
    same_lines("prog_cxxsync", &n, &g);
}

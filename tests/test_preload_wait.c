/*
 * test_preload_wait.c - sleeps, poll/select and EINTR under LD_PRELOAD:
 * plain pthread programs (tests/progs/wait) run as children with
 * LD_PRELOAD=$GREEN_LIB, and, where the kernel's behaviour is the
 * reference, natively too with the same expectations. Each test first
 * proves the hook was taken (the child prints dladdr's answer for the
 * hooked symbol; with the pthread hooks present, its OS thread count).
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

#include "child_run.h"
#include "hubs.h"

Test(preload_wait, a_thousand_pthreads_sleeping_100_ms_finish_together)
{
    static struct run r;
    run_prog(&r, true, "wait", "prog_sleepers", "1000", "100", 60000);
    cr_assert_eq(r.status, 0, "output:\n%s", r.out);
    cr_assert_eq(kv(&r, "hooked_nanosleep"), 1, "nanosleep is not libgreen's");
    if (kv(&r, "hooked_pthread_create"))
        cr_assert_leq(kv(&r, "threads_while_sleeping"), 2,
                      "1000 sleeping pthreads should be green threads:\n%s", r.out);
    cr_assert_eq(kv(&r, "created"), 1000);
    cr_assert_eq(kv(&r, "failed"), 0);
    cr_assert_eq(kv(&r, "early"), 0, "a sleep returned early");
    cr_assert_geq(kv(&r, "elapsed_ms"), 100);
    cr_assert_lt(kv(&r, "elapsed_ms"), 10000);
}

/* What signal(7) says for a 1 ms SIGALRM, checked natively and preloaded. */
static void check_itimer(bool preload, bool restart)
{
    static struct run r;
    run_prog(&r, preload, "wait", "prog_itimer", restart ? "restart" : "norestart",
             NULL, 30000);
    const char *how = preload ? "preloaded" : "native";
    cr_assert_eq(r.status, 0, "%s output:\n%s", how, r.out);
    if (preload)
        cr_assert_eq(kv(&r, "hooked_sigaction"), 1, "sigaction is not libgreen's");
    cr_assert_gt(kv(&r, "alarms"), 0, "%s:\n%s", how, r.out);
    cr_assert_gt(kv(&r, "sleep_eintr"), 0, "%s: nanosleep never restarts:\n%s", how, r.out);
    cr_assert_geq(kv(&r, "sleep_ms"), 100, "%s: the sleep loop ended early", how);
    cr_assert_eq(kv(&r, "poll_errno_eintr"), 1, "%s: poll never restarts:\n%s", how, r.out);
    cr_assert_eq(kv(&r, "read_ok"), 1, "%s:\n%s", how, r.out);
    cr_assert_eq(kv(&r, "sem_ok"), 1, "%s:\n%s", how, r.out);
    if (restart) {
        cr_assert_eq(kv(&r, "read_eintr"), 0, "%s: a pipe read restarts under SA_RESTART", how);
        cr_assert_eq(kv(&r, "sem_eintr"), 0, "%s: sem_wait restarts under SA_RESTART", how);
    } else {
        cr_assert_gt(kv(&r, "read_eintr"), 0, "%s: a pipe read fails with EINTR without "
                     "SA_RESTART:\n%s", how, r.out);
        cr_assert_gt(kv(&r, "sem_eintr"), 0, "%s: sem_wait fails with EINTR without "
                     "SA_RESTART:\n%s", how, r.out);
    }
}

Test(preload_wait, a_1_ms_itimer_with_sa_restart_interrupts_sleeps_and_poll_but_not_reads)
{
    check_itimer(false, true);
    check_itimer(true, true);
}

Test(preload_wait, a_1_ms_itimer_without_sa_restart_interrupts_reads_too)
{
    check_itimer(false, false);
    check_itimer(true, false);
}

/* A signal landing while the shim asks the kernel whether a read or an
 * accept could block (a zero-timeout poll, which then fails with EINTR)
 * once made the shim issue the blocking call: with one hub the peer that
 * would have answered never ran again. */
Test(preload_wait, a_50_us_itimer_never_turns_a_read_or_accept_into_a_blocking_syscall)
{
    static struct run r;
    for (int preload = 0; preload < 2; preload++) {
        const char *how = preload ? "preloaded" : "native";
        run_prog(&r, preload, "wait", "prog_probe_storm", "3000", NULL, 60000);
        cr_assert_eq(r.status, 0, "%s run hung or failed:\n%s", how, r.out);
        if (preload) {
            cr_assert_eq(kv(&r, "hooked_read"), 1, "read is not libgreen's");
            cr_assert_eq(kv(&r, "hooked_accept"), 1, "accept is not libgreen's");
        }
        cr_assert_eq(kv(&r, "played"), 3000, "%s:\n%s", how, r.out);
        cr_assert_eq(kv(&r, "accepted"), 300, "%s:\n%s", how, r.out);
        cr_assert_gt(kv(&r, "signals"), 0, "%s: the itimer never fired:\n%s", how, r.out);
    }
}

Test(preload_wait, a_sigwait_thread_does_not_stop_the_others_and_gets_its_signal)
{
    static struct run r;
    run_prog(&r, true, "wait", "prog_sigwait", NULL, NULL, 30000);
    cr_assert_eq(r.status, 0, "output:\n%s", r.out);
    cr_assert_eq(kv(&r, "hooked_sigwait"), 1, "sigwait is not libgreen's");
    cr_assert_eq(kv(&r, "sigwait_sig"), SIGUSR1, "output:\n%s", r.out);
    cr_assert_gt(kv(&r, "ticks_before_signal"), 5, "the worker stopped while sigwait "
                 "waited:\n%s", r.out);
    cr_assert_gt(kv(&r, "ticks_after"), 0);
}

Test(preload_wait, pthread_cancel_reaches_threads_blocked_in_every_waiting_call)
{
    static struct run r;
    for (int preload = 0; preload < 2; preload++) {
        run_prog(&r, preload, "wait", "prog_cancel", NULL, NULL, 20000);
        cr_assert_eq(r.status, 0, "%s run hung or failed:\n%s",
                     preload ? "preloaded" : "native", r.out);
        if (preload)
            cr_assert_eq(kv(&r, "hooked_pthread_cancel"), 1, "pthread_cancel is not libgreen's");
        cr_assert_eq(kv(&r, "canceled"), kv(&r, "of"), "output:\n%s", r.out);
        cr_assert_lt(kv(&r, "cancel_ms"), 5000);
    }
}

Test(preload_wait, ctrl_c_interrupts_a_python_thread_join_as_natively)
{
    if (system("python3 -c pass >/dev/null 2>&1") != 0)
        cr_skip_test("python3 is not installed: skipping the Ctrl-C check");
    if (getenv("GREEN_SANITIZED"))
        cr_skip_test("sanitizer build: python3 is not instrumented and cannot "
                     "load this libgreen.so; the plain build runs this check");
    const char *lib = getenv("GREEN_LIB");
    cr_assert(lib);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "LD_PRELOAD=%s timeout 20 python3 -c '"
             "import threading, time, os, signal\n"
             "t = threading.Thread(target=time.sleep, args=(5,)); t.start()\n"
             "st = open(\"/proc/self/status\").read()\n"
             "print(\"threads=\" + st.split(\"Threads:\")[1].split()[0])\n"
             "def fire(): time.sleep(0.3); os.kill(os.getpid(), signal.SIGINT)\n"
             "threading.Thread(target=fire, daemon=True).start()\n"
             "t0 = time.monotonic()\n"
             "try:\n t.join(); print(\"joined_ms=%%d\" %% ((time.monotonic()-t0)*1000))\n"
             "except KeyboardInterrupt:\n"
             " print(\"interrupt_ms=%%d\" %% ((time.monotonic()-t0)*1000)); os._exit(0)\n'",
             lib);
    FILE *f = popen(cmd, "r");
    cr_assert(f);
    static struct run r;
    size_t n = fread(r.out, 1, sizeof r.out - 1, f);
    r.out[n] = 0;
    pclose(f);
    /* Two python threads besides main: one OS thread per hub at most. */
    cr_assert(kv(&r, "threads") >= 1 && kv(&r, "threads") <= test_hubs(),
              "python's threads are not green threads (%d hubs):\n%s", test_hubs(), r.out);
    cr_assert(strstr(r.out, "interrupt_ms="), "SIGINT did not interrupt join:\n%s", r.out);
    cr_assert_lt(kv(&r, "interrupt_ms"), 3000, "the KeyboardInterrupt waited for the join");
}

Test(preload_wait, a_signal_storm_interrupts_only_the_main_threads_waits)
{
    static struct run r;
    run_prog(&r, true, "wait", "prog_signal_storm", NULL, NULL, 60000);
    cr_assert_eq(r.status, 0, "output:\n%s", r.out);
    cr_assert_eq(kv(&r, "hooked_nanosleep"), 1, "nanosleep is not libgreen's");
    cr_assert_eq(kv(&r, "created"), 300);
    cr_assert_gt(kv(&r, "signals"), 10, "output:\n%s", r.out);
    cr_assert_gt(kv(&r, "main_eintr"), 0, "the main thread's sleep was never interrupted");
    /* With one hub every signal lands on its OS thread, where main
     * accepts it first. With several, the kernel may give one to another
     * hub's OS thread (when main's already has one pending), and a thread
     * there takes it, as natively one of the 300 threads would: fewer
     * than main, as natively. */
    if (test_hubs() == 1)
        cr_assert_eq(kv(&r, "others_eintr"), 0, "other threads saw EINTR:\n%s", r.out);
    else
        cr_assert_lt(kv(&r, "others_eintr"), kv(&r, "main_eintr"),
                     "other threads saw more EINTR than main:\n%s", r.out);
}

Test(preload_wait, pthread_kill_interrupts_the_targeted_threads_blocking_calls)
{
    static struct run r;
    for (int preload = 0; preload < 2; preload++) {
        run_prog(&r, preload, "wait", "prog_pthread_kill", NULL, NULL, 30000);
        const char *how = preload ? "preloaded" : "native";
        cr_assert_eq(r.status, 0, "%s:\n%s", how, r.out);
        if (preload)
            cr_assert_eq(kv(&r, "hooked_pthread_kill"), 1, "pthread_kill is not libgreen's");
        cr_assert_eq(kv(&r, "handled"), 2, "%s:\n%s", how, r.out);
        cr_assert_eq(kv(&r, "read_eintr"), 1, "%s: the read was not interrupted:\n%s", how, r.out);
        cr_assert_eq(kv(&r, "sleep_eintr"), 1, "%s: the sleep was not interrupted:\n%s", how, r.out);
        cr_assert_lt(kv(&r, "kill_ms"), 5000);
    }
}

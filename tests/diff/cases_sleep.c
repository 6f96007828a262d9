/*
 * cases_sleep.c - differential cases of sleep, usleep, nanosleep,
 * clock_nanosleep and sched_yield (see diff.h): argument checks, EFAULT,
 * EINTR with and without SA_RESTART (sleeps never restart, signal(7)),
 * the time not slept, clocks, and errno after success.
 */
#include "diff.h"
#include <sys/syscall.h>
#include <sched.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t hits;

static void on_sig(int sig)
{
    (void)sig;
    hits++;
}

static void handle(int sig, int flags)
{
    struct sigaction sa = { .sa_handler = on_sig, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* Coarse bucket of a remaining time, in tenths of a second. */
static void print_rem(const char *label, const struct timespec *rem)
{
    long ms = rem->tv_sec * 1000 + rem->tv_nsec / 1000000;
    diff_out("%s: rem %s", label, ms <= 0 ? "zero" : ms < 500 ? "<0.5s"
                                          : ms <= 1000 ? "0.5-1s" : ">1s");
}

DIFF_CASE(sleep, nanosleep_zero)
{
    struct timespec ts = { 0, 0 };
    CALL("nanosleep(0)", nanosleep(&ts, NULL));
}

DIFF_CASE(sleep, nanosleep_negative_nsec_is_einval)
{
    struct timespec ts = { 0, -1 };
    CALL("nanosleep", nanosleep(&ts, NULL));
}

DIFF_CASE(sleep, nanosleep_nsec_one_second_is_einval)
{
    struct timespec ts = { 0, 1000000000 };
    CALL("nanosleep", nanosleep(&ts, NULL));
}

DIFF_CASE(sleep, nanosleep_negative_sec_is_einval)
{
    struct timespec ts = { -1, 0 };
    CALL("nanosleep", nanosleep(&ts, NULL));
}

DIFF_CASE(sleep, nanosleep_null_req_is_efault)
{
    CALL("nanosleep(NULL)", nanosleep(NULL, NULL));
}

DIFF_CASE(sleep, nanosleep_unreadable_req_is_efault)
{
    CALL("nanosleep(bad)", nanosleep((const struct timespec *)16, NULL));
}

DIFF_CASE(sleep, nanosleep_unwritable_rem_unused_when_not_interrupted)
{
    struct timespec ts = { 0, 10 * 1000000 };
    CALL("nanosleep", nanosleep(&ts, (struct timespec *)16));
}

DIFF_CASE(sleep, nanosleep_unwritable_rem_when_interrupted_is_efault)
{
    handle(SIGALRM, 0);
    diff_alarm_ms(50);
    struct timespec ts = { 1, 0 };
    CALL("nanosleep", nanosleep(&ts, (struct timespec *)16));
    diff_out("handler ran %d", (int)hits);
}

DIFF_CASE(sleep, nanosleep_takes_its_time)
{
    struct timespec ts = { 0, 100 * 1000000 };
    int64_t t0 = diff_now();
    CALL("nanosleep(100ms)", nanosleep(&ts, NULL));
    DIFF_TOOK("nanosleep(100ms)", t0, 95, 3000);
}

DIFF_CASE(sleep, nanosleep_eintr_without_sa_restart_sets_rem)
{
    handle(SIGALRM, 0);
    int64_t t0 = diff_now();   /* before the alarm, never after */
    diff_alarm_ms(100);
    struct timespec ts = { 1, 0 }, rem = { 7, 7 };
    CALL("nanosleep(1s)", nanosleep(&ts, &rem));
    DIFF_TOOK("nanosleep(1s)", t0, 90, 800);
    print_rem("nanosleep", &rem);
    diff_out("handler ran %d", (int)hits);
}

DIFF_CASE(sleep, nanosleep_eintr_even_with_sa_restart)
{
    handle(SIGALRM, SA_RESTART);
    int64_t t0 = diff_now();   /* before the alarm, never after */
    diff_alarm_ms(100);
    struct timespec ts = { 1, 0 }, rem = { 0, 0 };
    CALL("nanosleep(1s)", nanosleep(&ts, &rem));
    DIFF_TOOK("nanosleep(1s)", t0, 90, 800);
    print_rem("nanosleep", &rem);
}

DIFF_CASE(sleep, nanosleep_not_interrupted_by_blocked_signal)
{
    handle(SIGUSR1, 0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    raise(SIGUSR1);
    struct timespec ts = { 0, 50 * 1000000 };
    CALL("nanosleep(50ms)", nanosleep(&ts, NULL));
    diff_out("handler before unblock %d", (int)hits);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    diff_out("handler after unblock %d", (int)hits);
}

DIFF_CASE(sleep, nanosleep_ignored_signal_does_not_interrupt)
{
    signal(SIGALRM, SIG_IGN);
    int64_t t0 = diff_now();   /* before the alarm, never after */
    diff_alarm_ms(30);
    struct timespec ts = { 0, 150 * 1000000 };
    CALL("nanosleep(150ms)", nanosleep(&ts, NULL));
    DIFF_TOOK("nanosleep(150ms)", t0, 140, 3000);
}

DIFF_CASE(sleep, nanosleep_leaves_errno_alone)
{
    struct timespec ts = { 0, 5 * 1000000 };
    errno = EDOM;
    int r = nanosleep(&ts, NULL);
    diff_out("ret=%d errno after success=%s", r, diff_errname(errno));
}

DIFF_CASE(sleep, clock_nanosleep_unknown_clock_returns_einval)
{
    struct timespec ts = { 0, 1000 };
    CALL("clock_nanosleep(12345)", clock_nanosleep(12345, 0, &ts, NULL));
}

DIFF_CASE(sleep, clock_nanosleep_thread_cputime_returns_einval)
{
    struct timespec ts = { 0, 1000 };
    CALL("clock_nanosleep(THREAD_CPUTIME)",
         clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ts, NULL));
}

DIFF_CASE(sleep, clock_nanosleep_bad_nsec_returns_einval)
{
    struct timespec ts = { 0, 1000000000 };
    CALL("clock_nanosleep(MONOTONIC)", clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL));
    CALL("clock_nanosleep(REALTIME,ABS)",
         clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL));
}

DIFF_CASE(sleep, clock_nanosleep_bad_req_returns_efault)
{
    CALL("clock_nanosleep(bad)",
         clock_nanosleep(CLOCK_MONOTONIC, 0, (const struct timespec *)16, NULL));
}

DIFF_CASE(sleep, clock_nanosleep_absolute_past_returns_at_once)
{
    struct timespec ts = { 1, 0 };
    int64_t t0 = diff_now();
    CALL("clock_nanosleep(MONOTONIC,ABS,1s)",
         clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL));
    CALL("clock_nanosleep(REALTIME,ABS,1s)",
         clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL));
    DIFF_TOOK("both", t0, -1, 50);
}

DIFF_CASE(sleep, clock_nanosleep_absolute_realtime_waits_for_the_wall_clock)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    CALL("clock_nanosleep(REALTIME,ABS,+100ms)",
         clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    diff_out("not early: %d", now.tv_sec > ts.tv_sec ||
                              (now.tv_sec == ts.tv_sec && now.tv_nsec >= ts.tv_nsec));
}

DIFF_CASE(sleep, clock_nanosleep_boottime_sleeps)
{
    struct timespec ts = { 0, 20 * 1000000 };
    int64_t t0 = diff_now();
    CALL("clock_nanosleep(BOOTTIME,20ms)", clock_nanosleep(CLOCK_BOOTTIME, 0, &ts, NULL));
    DIFF_TOOK("clock_nanosleep", t0, 19, 3000);
}

DIFF_CASE(sleep, clock_nanosleep_eintr_is_returned_and_rem_set)
{
    handle(SIGALRM, SA_RESTART);
    diff_alarm_ms(100);
    struct timespec ts = { 1, 0 }, rem = { 9, 9 };
    CALL("clock_nanosleep(rel)", clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &rem));
    print_rem("clock_nanosleep", &rem);
}

DIFF_CASE(sleep, clock_nanosleep_absolute_eintr_leaves_rem_alone)
{
    handle(SIGALRM, 0);
    diff_alarm_ms(100);
    struct timespec ts, rem = { 9, 9 };
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += 1;
    CALL("clock_nanosleep(abs)", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, &rem));
    diff_out("rem untouched: %d", rem.tv_sec == 9 && rem.tv_nsec == 9);
}

DIFF_CASE(sleep, sleep_interrupted_returns_seconds_left)
{
    handle(SIGALRM, SA_RESTART);
    diff_alarm_ms(100);
    CALL("sleep(3)", sleep(3));
}

DIFF_CASE(sleep, sleep_zero_returns_zero)
{
    CALL("sleep(0)", sleep(0));
}

DIFF_CASE(sleep, usleep_interrupted_is_eintr)
{
    handle(SIGALRM, SA_RESTART);
    diff_alarm_ms(50);
    CALL("usleep(1s)", usleep(1000000));
    diff_out("handler ran %d", (int)hits);
}

DIFF_CASE(sleep, usleep_over_a_second_is_allowed)
{
    /* glibc passes it to nanosleep, which takes it. */
    handle(SIGALRM, 0);
    diff_alarm_ms(50);
    CALL("usleep(1.5s)", usleep(1500000));
}

DIFF_CASE(sleep, sched_yield_succeeds_and_leaves_errno)
{
    errno = EDOM;
    int r = sched_yield();
    diff_out("ret=%d errno=%s", r, diff_errname(errno));
}

DIFF_CASE(sleep, alarm_default_action_kills)
{
    signal(SIGALRM, SIG_DFL);
    alarm(1);
    struct timespec ts = { 3, 0 };
    nanosleep(&ts, NULL);
    diff_out("still alive");
}

DIFF_CASE(sleep, pending_signal_interrupts_next_sleep_at_once)
{
    handle(SIGUSR1, 0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    raise(SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &s, NULL);  /* the handler runs here */
    diff_out("handler ran %d", (int)hits);
    struct timespec ts = { 0, 30 * 1000000 };
    CALL("nanosleep(30ms) after", nanosleep(&ts, NULL));
}

/* A CPU-time clock cannot be slept on: the system call says EOPNOTSUPP,
 * libc's clock_nanosleep turns that into EINVAL (LTP clock_nanosleep01
 * checks both). */
DIFF_CASE(sleep, clock_nanosleep_on_a_cpu_clock_libc_and_system_call)
{
    struct timespec ts = { 0, 1000000 };
    int r = clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ts, NULL);
    diff_out("clock_nanosleep: %s", diff_errname(r));
    CALL("syscall(SYS_clock_nanosleep)",
         syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &ts, NULL));
}

/*
 * test_hooks_wait.c - poll, select, epoll_wait, the sleeps and EINTR,
 * called directly (green_hook_*) from green threads: a waiting call parks
 * only its caller while others run, returns what the kernel would (revents,
 * fd_sets, remaining time, 0 on timeout), never returns early, and a
 * handled signal interrupts the main green thread's call as signal(7) says.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>
#include "hooks.h"
#include "hooks_signal.h"
#include "hooks_wait.h"
#include "io.h"

static void setup(void)
{
    green__real_init();
    cr_assert(green_self());
}

TestSuite(hooks_wait, .init = setup);

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A green thread that counts while others are parked. */
static volatile int ticks;
static volatile bool stop_ticking;
static void *ticker(void *arg)
{
    (void)arg;
    while (!stop_ticking && ticks < 100000) {
        ticks++;
        green_sleep(GREEN_MSEC(1));
    }
    return NULL;
}

static green_t start_ticker(void)
{
    ticks = 0;
    stop_ticking = false;
    green_t t = green_spawn(ticker, NULL, NULL);
    cr_assert(t);
    return t;
}

static void stop_ticker(green_t t)
{
    stop_ticking = true;
    cr_assert_eq(green_join(t, NULL), 0);
}

/* Until the ticker has run more than min_ticks times (or 10 s passed):
 * the waiting thread's wake-up then follows other threads' progress, not
 * a fixed time a loaded machine may not give the hub. */
static void sleep_past_ticks(int min_ticks)
{
    int64_t end = green_now() + GREEN_SEC(10);
    while (ticks <= min_ticks && green_now() < end)
        green_sleep(GREEN_MSEC(1));
}

static void *write_after_50ms(void *arg)
{
    int fd = (int)(intptr_t)arg;
    green_sleep(GREEN_MSEC(50));
    cr_assert_eq(write(fd, "x", 1), 1);
    return NULL;
}

/* The same, once the ticker has run more than 5 times too. */
static void *write_after_50ms_and_ticks(void *arg)
{
    int fd = (int)(intptr_t)arg;
    green_sleep(GREEN_MSEC(50));
    sleep_past_ticks(5);
    cr_assert_eq(write(fd, "x", 1), 1);
    return NULL;
}

/* ---------------------------------------------------------------- poll */

Test(hooks_wait, poll_on_an_empty_pipe_parks_while_others_run_then_reports_pollin)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    green_t tk = start_ticker();
    green_t w = green_spawn(write_after_50ms_and_ticks, (void *)(intptr_t)p[1], NULL);
    struct pollfd fds[2] = { { .fd = p[0], .events = POLLIN },
                             { .fd = -1, .events = POLLIN, .revents = 77 } };
    int r = green_hook_poll(fds, 2, 5000);
    int seen = ticks;
    cr_assert_eq(r, 1);
    cr_assert_eq(fds[0].revents, POLLIN);
    cr_assert_eq(fds[1].revents, 0, "a negative fd gets revents 0");
    cr_assert_geq(seen, 5, "the ticker ran only %d times while poll waited", seen);
    green_join(w, NULL);
    stop_ticker(tk);
    close(p[0]);
    close(p[1]);
}

Test(hooks_wait, poll_times_out_with_zero_and_no_revents_after_the_full_timeout)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    struct pollfd fd = { .fd = p[0], .events = POLLIN };
    int64_t t0 = mono_ns();
    cr_assert_eq(green_hook_poll(&fd, 1, 30), 0);
    cr_assert_geq(mono_ns() - t0, GREEN_MSEC(30));
    cr_assert_eq(fd.revents, 0);
    close(p[0]);
    close(p[1]);
}

Test(hooks_wait, poll_reports_pollnval_for_a_closed_descriptor_at_once)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[1]);
    close(p[0]);
    struct pollfd fd = { .fd = p[0], .events = POLLIN };
    cr_assert_eq(green_hook_poll(&fd, 1, -1), 1);
    cr_assert_eq(fd.revents, POLLNVAL);
}

Test(hooks_wait, poll_wakes_with_pollhup_when_the_writer_closes)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    green_t w = green_spawn(write_after_50ms, (void *)(intptr_t)p[1], NULL);
    green_join(w, NULL);
    char c;
    cr_assert_eq(read(p[0], &c, 1), 1);
    struct pollfd fd = { .fd = p[0], .events = POLLIN };
    close(p[1]);
    cr_assert_eq(green_hook_poll(&fd, 1, 5000), 1);
    cr_assert(fd.revents & POLLHUP);
    close(p[0]);
}

Test(hooks_wait, poll_with_no_descriptors_sleeps_the_whole_timeout)
{
    int64_t t0 = mono_ns();
    cr_assert_eq(green_hook_poll(NULL, 0, 20), 0);
    cr_assert_geq(mono_ns() - t0, GREEN_MSEC(20));
}

Test(hooks_wait, poll_on_many_descriptors_reports_only_the_ready_one)
{
    enum { N = 40 };            /* more than fit on the stack */
    int p[N][2];
    struct pollfd fds[N];
    for (int i = 0; i < N; i++) {
        cr_assert_eq(pipe(p[i]), 0);
        fds[i] = (struct pollfd){ .fd = p[i][0], .events = POLLIN };
    }
    green_t w = green_spawn(write_after_50ms, (void *)(intptr_t)p[31][1], NULL);
    cr_assert_eq(green_hook_poll(fds, N, 5000), 1);
    for (int i = 0; i < N; i++)
        cr_assert_eq(fds[i].revents, i == 31 ? POLLIN : 0, "fd %d", i);
    green_join(w, NULL);
    for (int i = 0; i < N; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
}

Test(hooks_wait, ppoll_with_a_timespec_times_out_and_reports_readiness)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    struct pollfd fd = { .fd = p[0], .events = POLLIN };
    struct timespec ts = { 0, 20 * 1000000 };
    int64_t t0 = mono_ns();
    cr_assert_eq(green_hook_ppoll(&fd, 1, &ts, NULL), 0);
    cr_assert_geq(mono_ns() - t0, GREEN_MSEC(20));
    green_t w = green_spawn(write_after_50ms, (void *)(intptr_t)p[1], NULL);
    sigset_t none;
    sigemptyset(&none);
    cr_assert_eq(green_hook_ppoll(&fd, 1, NULL, &none), 1);
    cr_assert_eq(fd.revents, POLLIN);
    green_join(w, NULL);
    close(p[0]);
    close(p[1]);
}

/* -------------------------------------------------------------- select */

Test(hooks_wait, select_reports_the_readable_pipe_and_writes_back_the_time_left)
{
    int p[2], q[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(pipe(q), 0);
    green_t tk = start_ticker();
    green_t w = green_spawn(write_after_50ms, (void *)(intptr_t)p[1], NULL);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    FD_SET(q[0], &rd);
    struct timeval tv = { .tv_sec = 5, .tv_usec = 0 };
    int nfds = (p[0] > q[0] ? p[0] : q[0]) + 1;
    int r = green_hook_select(nfds, &rd, NULL, NULL, &tv);
    cr_assert_eq(r, 1);
    cr_assert(FD_ISSET(p[0], &rd));
    cr_assert(!FD_ISSET(q[0], &rd));
    int64_t left = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    cr_assert_lt(left, 5000000 - 40000, "time left %lld us", (long long)left);
    cr_assert_gt(left, 3000000, "time left %lld us", (long long)left);
    cr_assert_geq(ticks, 5);
    green_join(w, NULL);
    stop_ticker(tk);
    for (int i = 0; i < 2; i++) {
        close(p[i]);
        close(q[i]);
    }
}

Test(hooks_wait, select_times_out_with_cleared_sets_and_no_time_left)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    struct timeval tv = { .tv_sec = 0, .tv_usec = 30000 };
    int64_t t0 = mono_ns();
    cr_assert_eq(green_hook_select(p[0] + 1, &rd, NULL, NULL, &tv), 0);
    cr_assert_geq(mono_ns() - t0, GREEN_MSEC(30));
    cr_assert(!FD_ISSET(p[0], &rd));
    cr_assert_eq(tv.tv_sec, 0);
    cr_assert_eq(tv.tv_usec, 0);
    close(p[0]);
    close(p[1]);
}

Test(hooks_wait, select_on_a_closed_descriptor_fails_with_ebadf)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    errno = 0;
    cr_assert_eq(green_hook_select(p[0] + 1, &rd, NULL, NULL, NULL), -1);
    cr_assert_eq(errno, EBADF);
    close(p[1]);
}

Test(hooks_wait, pselect_reports_a_writable_descriptor_and_times_out)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fd_set wr, rd;
    FD_ZERO(&wr);
    FD_SET(p[1], &wr);
    struct timespec ts = { 1, 0 };
    cr_assert_eq(green_hook_pselect(p[1] + 1, NULL, &wr, NULL, &ts, NULL), 1);
    cr_assert(FD_ISSET(p[1], &wr));
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    ts = (struct timespec){ 0, 20000000 };
    int64_t t0 = mono_ns();
    cr_assert_eq(green_hook_pselect(p[0] + 1, &rd, NULL, NULL, &ts, NULL), 0);
    cr_assert_geq(mono_ns() - t0, GREEN_MSEC(20));
    close(p[0]);
    close(p[1]);
}

/* --------------------------------------------------------------- epoll */

Test(hooks_wait, epoll_wait_parks_until_the_epoll_descriptor_is_readable)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    cr_assert_geq(ep, 0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xfeed };
    cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
    green_t tk = start_ticker();
    green_t w = green_spawn(write_after_50ms, (void *)(intptr_t)p[1], NULL);
    struct epoll_event out[4];
    memset(out, 0, sizeof out);
    int r = green_hook_epoll_wait(ep, out, 4, 5000);
    cr_assert_eq(r, 1);
    cr_assert_eq(out[0].data.u64, 0xfeed);
    cr_assert(out[0].events & EPOLLIN);
    cr_assert_geq(ticks, 5, "ticker ran %d times", ticks);
    green_join(w, NULL);
    stop_ticker(tk);
    close(ep);
    close(p[0]);
    close(p[1]);
}

Test(hooks_wait, epoll_wait_times_out_with_zero_and_bad_arguments_fail_at_once)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event out[1];
    int64_t t0 = mono_ns();
    cr_assert_eq(green_hook_epoll_wait(ep, out, 1, 20), 0);
    cr_assert_geq(mono_ns() - t0, GREEN_MSEC(20));
    errno = 0;
    cr_assert_eq(green_hook_epoll_wait(ep, out, 0, 1000), -1);
    cr_assert_eq(errno, EINVAL);
    close(ep);
    errno = 0;
    cr_assert_eq(green_hook_epoll_pwait(ep, out, 1, 1000, NULL), -1);
    cr_assert_eq(errno, EBADF);
}

/* Switches this hub has made so far. */
static uint64_t hub_switches(void)
{
    return atomic_load(&green__tls_ctx->switches);
}

Test(hooks_wait, epoll_wait_alone_on_its_hub_parks_first_and_still_returns_ready_events)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int ep = green_hook_epoll_create1(EPOLL_CLOEXEC);   /* known to fdstate */
    cr_assert_geq(ep, 0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xbeef };
    cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
    cr_assert_eq(write(p[1], "x", 1), 1);
    /* Nothing else runnable: the hub's blocking poll stands in for the
     * zero-timeout probe, so the call goes through the hub (two switches
     * at least) and still returns the event that was already waiting. */
    struct epoll_event out[4];
    memset(out, 0, sizeof out);
    uint64_t sw = hub_switches();
    cr_assert_eq(green_hook_epoll_wait(ep, out, 4, 5000), 1);
    cr_assert_geq(hub_switches() - sw, 2, "the call did not park first");
    cr_assert_eq(out[0].data.u64, 0xbeef);
    cr_assert(out[0].events & EPOLLIN);
    close(ep);
    close(p[0]);
    close(p[1]);
}

static volatile bool stop_yielding;
static volatile long yields;
static void *yield_loop(void *arg)
{
    (void)arg;
    while (!stop_yielding) {
        yields++;
        green_yield();
    }
    return NULL;
}

Test(hooks_wait, a_thread_yielding_in_a_loop_does_not_starve_an_epoll_wait)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int ep = green_hook_epoll_create1(EPOLL_CLOEXEC);
    cr_assert_geq(ep, 0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 };
    cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
    stop_yielding = false;
    yields = 0;
    green_t y = green_spawn(yield_loop, NULL, NULL);
    green_t w = green_spawn(write_after_50ms, (void *)(intptr_t)p[1], NULL);
    cr_assert(y && w);
    struct epoll_event out[1];
    int64_t t0 = mono_ns();
    /* Ready already (probe first, the yielder is runnable) and then after
     * a park while the yielder never stops: the hub must still poll. */
    int r = green_hook_epoll_wait(ep, out, 1, 10000);
    int64_t waited = mono_ns() - t0;
    stop_yielding = true;
    cr_assert_eq(green_join(w, NULL), 0);
    cr_assert_eq(green_join(y, NULL), 0);
    cr_assert_eq(r, 1);
    cr_assert_lt(waited, GREEN_SEC(5), "waited %lld ns", (long long)waited);
    cr_assert_gt(yields, 0);
    char c;
    cr_assert_eq(read(p[0], &c, 1), 1);
    cr_assert_eq(green_hook_epoll_wait(ep, out, 1, 1), 0);
    close(ep);
    close(p[0]);
    close(p[1]);
}

Test(hooks_wait, epoll_wait_on_a_descriptor_that_is_not_epoll_fails_with_einval)
{
    int efd = green_hook_eventfd(0, EFD_CLOEXEC);      /* kind OTHER, as epoll */
    cr_assert_geq(efd, 0);
    struct epoll_event out[1];
    errno = 0;
    cr_assert_eq(green_hook_epoll_wait(efd, out, 1, 20), -1);
    cr_assert_eq(errno, EINVAL);
    close(efd);
}

/* -------------------------------------------------------------- sleeps */

Test(hooks_wait, sleeps_never_return_early_from_1_us_to_200_ms)
{
    static const int64_t ns[] = { 1000, 10000, 100000, 1000000, 10000000, 200000000 };
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
        struct timespec req = { ns[i] / 1000000000, ns[i] % 1000000000 };
        int64_t t0 = mono_ns();
        cr_assert_eq(green_hook_nanosleep(&req, NULL), 0);
        cr_assert_geq(mono_ns() - t0, ns[i], "nanosleep %lld ns", (long long)ns[i]);
        t0 = mono_ns();
        cr_assert_eq(green_hook_usleep((useconds_t)(ns[i] / 1000)), 0);
        cr_assert_geq(mono_ns() - t0, ns[i], "usleep %lld ns", (long long)ns[i]);
        t0 = mono_ns();
        cr_assert_eq(green_hook_clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL), 0);
        cr_assert_geq(mono_ns() - t0, ns[i], "clock_nanosleep %lld ns", (long long)ns[i]);
    }
}

static void *sleep_100ms(void *arg)
{
    (void)arg;
    struct timespec req = { 0, 100000000 };
    return (void *)(intptr_t)green_hook_nanosleep(&req, NULL);
}

Test(hooks_wait, a_hundred_green_threads_sleeping_100_ms_finish_together)
{
    enum { N = 100 };
    green_t t[N];
    int64_t t0 = mono_ns();
    for (int i = 0; i < N; i++)
        cr_assert(t[i] = green_spawn(sleep_100ms, NULL, NULL));
    for (int i = 0; i < N; i++) {
        void *r;
        cr_assert_eq(green_join(t[i], &r), 0);
        cr_assert_eq((intptr_t)r, 0);
    }
    int64_t took = mono_ns() - t0;
    cr_assert_geq(took, GREEN_MSEC(100));
    cr_assert_lt(took, GREEN_SEC(5), "took %lld ms", (long long)(took / 1000000));
}

Test(hooks_wait, clock_nanosleep_absolute_waits_until_the_deadline_on_both_clocks)
{
    int64_t want = mono_ns() + GREEN_MSEC(30);
    struct timespec ts = { want / 1000000000, want % 1000000000 };
    cr_assert_eq(green_hook_clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL), 0);
    cr_assert_geq(mono_ns(), want);
    want = real_ns() + GREEN_MSEC(30);
    ts = (struct timespec){ want / 1000000000, want % 1000000000 };
    cr_assert_eq(green_hook_clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL), 0);
    cr_assert_geq(real_ns(), want);
    /* A deadline in the past returns at once. */
    ts = (struct timespec){ 1, 0 };
    cr_assert_eq(green_hook_clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL), 0);
}

Test(hooks_wait, clock_nanosleep_returns_the_error_number_not_minus_one)
{
    struct timespec bad = { 0, 1000000000 };
    errno = 0;
    cr_assert_eq(green_hook_clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL), EINVAL);
    cr_assert_eq(errno, 0);
    errno = 0;
    cr_assert_eq(green_hook_nanosleep(&bad, NULL), -1);
    cr_assert_eq(errno, EINVAL);
}

static void *count_yields(void *arg)
{
    int *n = arg;
    for (int i = 0; i < 3; i++) {
        (*n)++;
        green_yield();
    }
    return NULL;
}

Test(hooks_wait, sched_yield_and_zero_sleeps_let_other_green_threads_run)
{
    int n = 0;
    green_t t = green_spawn(count_yields, &n, NULL);
    cr_assert_eq(green_hook_sched_yield(), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(green_hook_usleep(0), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(green_hook_sleep(0), 0u);
    cr_assert_eq(n, 3);
    green_join(t, NULL);
}

/* ---------------------------------------------------------------- EINTR */

static volatile sig_atomic_t handled;
static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

static void install(int sig, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(green_hook_sigaction(sig, &sa, NULL), 0);
    handled = 0;
}

static void *raise_after_30ms(void *arg)
{
    (void)arg;
    green_sleep(GREEN_MSEC(30));
    kill(getpid(), SIGUSR1);
    return NULL;
}

Test(hooks_wait, a_signal_interrupts_nanosleep_with_eintr_and_the_time_left)
{
    install(SIGUSR1, SA_RESTART);     /* nanosleep never restarts */
    green_t t = green_spawn(raise_after_30ms, NULL, NULL);
    struct timespec req = { 5, 0 }, rem = { 0, 0 };
    int64_t t0 = mono_ns();
    errno = 0;
    cr_assert_eq(green_hook_nanosleep(&req, &rem), -1);
    cr_assert_eq(errno, EINTR);
    cr_assert_lt(mono_ns() - t0, GREEN_SEC(4));
    cr_assert_eq(handled, 1);
    int64_t left = (int64_t)rem.tv_sec * 1000000000 + rem.tv_nsec;
    cr_assert(left > GREEN_SEC(3) && left < GREEN_SEC(5), "rem %lld", (long long)left);
    green_join(t, NULL);
}

Test(hooks_wait, a_signal_interrupts_poll_even_with_sa_restart)
{
    install(SIGUSR1, SA_RESTART);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    green_t t = green_spawn(raise_after_30ms, NULL, NULL);
    struct pollfd fd = { .fd = p[0], .events = POLLIN };
    errno = 0;
    cr_assert_eq(green_hook_poll(&fd, 1, 5000), -1);
    cr_assert_eq(errno, EINTR);
    cr_assert_eq(handled, 1);
    green_join(t, NULL);
    close(p[0]);
    close(p[1]);
}

static void *raise_then_write(void *arg)
{
    int fd = (int)(intptr_t)arg;
    green_sleep(GREEN_MSEC(30));
    kill(getpid(), SIGUSR1);
    green_sleep(GREEN_MSEC(30));
    cr_assert_eq(write(fd, "x", 1), 1);
    return NULL;
}

Test(hooks_wait, a_restartable_fd_wait_continues_under_sa_restart)
{
    install(SIGUSR1, SA_RESTART);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    green_t t = green_spawn(raise_then_write, (void *)(intptr_t)p[1], NULL);
    cr_assert_eq(green__hook_park_fd(p[0], GREEN_READ, green_now() + GREEN_SEC(5), true), 0);
    cr_assert_eq(handled, 1, "the handler ran before the data came");
    green_join(t, NULL);
    close(p[0]);
    close(p[1]);
}

Test(hooks_wait, a_fd_wait_fails_with_eintr_without_sa_restart_or_when_not_restartable)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    install(SIGUSR1, 0);
    green_t t = green_spawn(raise_after_30ms, NULL, NULL);
    errno = 0;
    cr_assert_eq(green__hook_park_fd(p[0], GREEN_READ, green_now() + GREEN_SEC(5), true), -1);
    cr_assert_eq(errno, EINTR);
    green_join(t, NULL);
    install(SIGUSR1, SA_RESTART);
    t = green_spawn(raise_after_30ms, NULL, NULL);
    errno = 0;
    cr_assert_eq(green__hook_park_fd(p[0], GREEN_READ, green_now() + GREEN_SEC(5), false), -1);
    cr_assert_eq(errno, EINTR);
    green_join(t, NULL);
    errno = 0;
    cr_assert_eq(green__hook_park_fd(p[0], GREEN_READ, green_now() + GREEN_MSEC(10), true), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    close(p[0]);
    close(p[1]);
}

Test(hooks_wait, a_signal_handled_before_the_call_does_not_interrupt_it)
{
    install(SIGUSR1, 0);
    kill(getpid(), SIGUSR1);
    cr_assert_eq(handled, 1);
    struct pollfd none;
    int64_t t0 = mono_ns();
    cr_assert_eq(green_hook_poll(&none, 0, 30), 0);
    cr_assert_geq(mono_ns() - t0, GREEN_MSEC(30));
}

static void *sleep_100ms_result(void *arg)
{
    int *res = arg;
    struct timespec req = { 0, 100000000 };
    *res = green_hook_nanosleep(&req, NULL);
    return NULL;
}

Test(hooks_wait, only_the_main_green_thread_is_interrupted)
{
    install(SIGUSR1, 0);
    int res = 99;
    green_t s = green_spawn(sleep_100ms_result, &res, NULL);
    green_t t = green_spawn(raise_after_30ms, NULL, NULL);
    errno = 0;
    cr_assert_eq(green_hook_pause(), -1);
    cr_assert_eq(errno, EINTR);
    cr_assert_eq(handled, 1);
    green_join(s, NULL);
    green_join(t, NULL);
    cr_assert_eq(res, 0, "the other thread's sleep was not interrupted");
}

static void on_info(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (sig == SIGUSR2 && si->si_code == SI_USER && si->si_pid == getpid())
        handled = 42;
}

Test(hooks_wait, sigaction_reports_the_programs_own_handler_and_passes_its_siginfo)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(green_hook_sigaction(SIGUSR2, &sa, NULL), 0);
    cr_assert_eq(green_hook_sigaction(SIGUSR2, NULL, &old), 0);
    cr_assert_eq((void *)old.sa_sigaction, (void *)on_info);
    cr_assert_eq(old.sa_flags & (SA_SIGINFO | SA_RESTART), SA_SIGINFO | SA_RESTART);
    handled = 0;
    kill(getpid(), SIGUSR2);
    cr_assert_eq(handled, 42);
    sighandler_t was = green_hook_signal(SIGUSR2, SIG_DFL);
    cr_assert_eq((void *)was, (void *)on_info);
    cr_assert_eq(green_hook_sigaction(SIGUSR2, NULL, &old), 0);
    cr_assert_eq(old.sa_handler, SIG_DFL);
    cr_assert_eq(green_hook_signal(SIGKILL, on_usr1), SIG_ERR);
}

static void *raise_usr2_after_30ms(void *arg)
{
    (void)arg;
    green_sleep(GREEN_MSEC(30));
    sleep_past_ticks(5);
    kill(getpid(), SIGUSR2);
    return NULL;
}

Test(hooks_wait, sigwait_parks_only_the_caller_until_a_blocked_signal_is_pending)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    cr_assert_eq(green_hook_sigprocmask(SIG_BLOCK, &set, &old), 0);
    green_t tk = start_ticker();
    green_t t = green_spawn(raise_usr2_after_30ms, NULL, NULL);
    int sig = 0;
    cr_assert_eq(green_hook_sigwait(&set, &sig), 0);
    cr_assert_eq(sig, SIGUSR2);
    cr_assert_geq(ticks, 5, "the ticker ran %d times during sigwait", ticks);
    green_join(t, NULL);
    stop_ticker(tk);
    /* Nothing pending: sigtimedwait times out with EAGAIN. */
    struct timespec ts = { 0, 20000000 };
    siginfo_t si;
    int64_t t0 = mono_ns();
    errno = 0;
    cr_assert_eq(green_hook_sigtimedwait(&set, &si, &ts), -1);
    cr_assert_eq(errno, EAGAIN);
    cr_assert_geq(mono_ns() - t0, GREEN_MSEC(20));
    /* Already pending: taken at once, with its siginfo. */
    kill(getpid(), SIGUSR2);
    cr_assert_eq(green_hook_sigwaitinfo(&set, &si), SIGUSR2);
    cr_assert_eq(si.si_pid, getpid());
    green_hook_sigprocmask(SIG_SETMASK, &old, NULL);
}

Test(hooks_wait, sigsuspend_unblocks_for_the_wait_and_restores_the_mask)
{
    install(SIGUSR1, SA_RESTART);
    sigset_t blk, old, during;
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR1);
    cr_assert_eq(green_hook_sigprocmask(SIG_BLOCK, &blk, &old), 0);
    kill(getpid(), SIGUSR1);               /* stays pending */
    cr_assert_eq(handled, 0);
    sigemptyset(&during);
    errno = 0;
    cr_assert_eq(green_hook_sigsuspend(&during), -1);
    cr_assert_eq(errno, EINTR);
    cr_assert_eq(handled, 1);
    sigset_t now;
    green_hook_sigprocmask(SIG_BLOCK, NULL, &now);
    cr_assert(sigismember(&now, SIGUSR1), "the mask is restored");
    /* And a signal that arrives later, from another green thread. */
    green_t t = green_spawn(raise_after_30ms, NULL, NULL);
    cr_assert_eq(green_hook_sigsuspend(&during), -1);
    cr_assert_eq(errno, EINTR);
    cr_assert_eq(handled, 2);
    green_join(t, NULL);
    green_hook_sigprocmask(SIG_SETMASK, &old, NULL);
}

struct masked_poll {
    int fd;
    int r, err;
};

static void *ppoll_unblocking_usr1(void *arg)
{
    struct masked_poll *m = arg;
    struct pollfd fd = { .fd = m->fd, .events = POLLIN };
    sigset_t none;
    sigemptyset(&none);
    errno = 0;
    m->r = green_hook_ppoll(&fd, 1, NULL, &none);
    m->err = errno;
    return NULL;
}

Test(hooks_wait, ppoll_with_a_mask_that_unblocks_a_signal_is_the_one_interrupted)
{
    install(SIGUSR1, SA_RESTART);
    sigset_t blk, old;
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR1);
    cr_assert_eq(green_hook_sigprocmask(SIG_BLOCK, &blk, &old), 0);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    /* Not the main green thread: its mask makes it the target. */
    struct masked_poll m = { .fd = p[0], .r = 99 };
    green_t w = green_spawn(ppoll_unblocking_usr1, &m, NULL);
    green_t k = green_spawn(raise_after_30ms, NULL, NULL);
    cr_assert_eq(green_join(w, NULL), 0);
    cr_assert_eq(m.r, -1);
    cr_assert_eq(m.err, EINTR);
    cr_assert_eq(handled, 1);
    green_join(k, NULL);
    sigset_t now;
    green_hook_sigprocmask(SIG_BLOCK, NULL, &now);
    cr_assert(sigismember(&now, SIGUSR1), "the thread's mask is back after ppoll");
    /* A signal already pending that the mask unblocks: EINTR at once. */
    kill(getpid(), SIGUSR1);
    cr_assert_eq(handled, 1);
    ppoll_unblocking_usr1(&m);
    cr_assert_eq(m.r, -1);
    cr_assert_eq(m.err, EINTR);
    cr_assert_eq(handled, 2);
    green_hook_sigprocmask(SIG_SETMASK, &old, NULL);
    close(p[0]);
    close(p[1]);
}

Test(hooks_wait, epoll_pwait2_parks_with_a_timespec_timeout)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = p[0] };
    cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
    struct epoll_event out[2];
    struct timespec ts = { 0, 20000000 };
    int64_t t0 = mono_ns();
    cr_assert_eq(green_hook_epoll_pwait2(ep, out, 2, &ts, NULL), 0);
    cr_assert_geq(mono_ns() - t0, GREEN_MSEC(20));
    green_t w = green_spawn(write_after_50ms, (void *)(intptr_t)p[1], NULL);
    cr_assert_eq(green_hook_epoll_pwait2(ep, out, 2, NULL, NULL), 1);
    cr_assert_eq(out[0].data.fd, p[0]);
    green_join(w, NULL);
    close(ep);
    close(p[0]);
    close(p[1]);
}

/* A connected loopback TCP pair. */
static void tcp_pair(int fds[2])
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(l, 1), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(fds[0], (struct sockaddr *)&a, sizeof a), 0);
    fds[1] = accept(l, NULL, NULL);
    cr_assert_geq(fds[1], 0);
    close(l);
}

static void *send_oob_after_50ms(void *arg)
{
    int fd = (int)(intptr_t)arg;
    green_sleep(GREEN_MSEC(50));
    cr_assert_eq(send(fd, "n", 1, 0), 1);         /* normal data first */
    green_sleep(GREEN_MSEC(20));
    cr_assert_eq(send(fd, "!", 1, MSG_OOB), 1);
    return NULL;
}

Test(hooks_wait, pollpri_and_exceptfds_alone_see_urgent_data_without_spinning_on_normal_data)
{
    int s[2];
    tcp_pair(s);
    green_t w = green_spawn(send_oob_after_50ms, (void *)(intptr_t)s[0], NULL);
    struct pollfd fd = { .fd = s[1], .events = POLLPRI };
    int64_t t0 = mono_ns();
    cr_assert_eq(green_hook_poll(&fd, 1, 5000), 1);
    cr_assert(fd.revents & POLLPRI);
    cr_assert_geq(mono_ns() - t0, GREEN_MSEC(70), "woke before the urgent byte came");
    cr_assert_lt(mono_ns() - t0, GREEN_SEC(2));
    fd_set ex;
    FD_ZERO(&ex);
    FD_SET(s[1], &ex);
    struct timeval tv = { 1, 0 };
    cr_assert_eq(green_hook_select(s[1] + 1, NULL, NULL, &ex, &tv), 1);
    cr_assert(FD_ISSET(s[1], &ex));
    green_join(w, NULL);
    close(s[0]);
    close(s[1]);
}

static void *write_after_50ms_then_done(void *arg)
{
    return write_after_50ms(arg);
}

Test(hooks_wait, huge_timeouts_mean_forever_and_do_not_overflow)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    green_t w = green_spawn(write_after_50ms_then_done, (void *)(intptr_t)p[1], NULL);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    struct timeval tv = { .tv_sec = (time_t)1 << 40, .tv_usec = 0 };
    cr_assert_eq(green_hook_select(p[0] + 1, &rd, NULL, NULL, &tv), 1);
    cr_assert(FD_ISSET(p[0], &rd));
    cr_assert_gt(tv.tv_sec, 1000000000, "time left is still huge");
    green_join(w, NULL);
    char c;
    cr_assert_eq(read(p[0], &c, 1), 1);
    w = green_spawn(write_after_50ms_then_done, (void *)(intptr_t)p[1], NULL);
    struct pollfd fd = { .fd = p[0], .events = POLLIN };
    struct timespec ts = { .tv_sec = (time_t)1 << 40, .tv_nsec = 0 };
    cr_assert_eq(green_hook_ppoll(&fd, 1, &ts, NULL), 1);
    green_join(w, NULL);
    close(p[0]);
    close(p[1]);
}

/*
 * test_hub.c - the hub: descriptor waits with timeouts, close waking the
 * waiters with EBADF, no stale wake-up after a descriptor number is reused,
 * cross-OS-thread wake-ups, timers that never fire early, and a working hub
 * in a forked child.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "green.h"

struct waitjob {
    int fd, mask;
    int64_t timeout;
    int rc, err;
    int64_t took;
};

static void *waiter(void *arg)
{
    struct waitjob *w = arg;
    int64_t t0 = green_now();
    errno = 0;
    w->rc = green_wait_fd(w->fd, w->mask, w->timeout);
    w->err = errno;
    w->took = green_now() - t0;
    return NULL;
}

static void *write_later(void *arg)
{
    int fd = (int)(intptr_t)arg;
    green_sleep(GREEN_MSEC(5));
    if (write(fd, "x", 1) != 1)
        return (void *)1;
    return NULL;
}

Test(hub, wait_readable_on_a_pipe_returns_when_data_arrives)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    green_t w = green_spawn(write_later, (void *)(intptr_t)p[1], NULL);
    int64_t t0 = green_now();
    cr_expect_eq(green_wait_readable(p[0], GREEN_SEC(5)), GREEN_READ);
    cr_expect_geq(green_now() - t0, GREEN_MSEC(5));
    char c;
    cr_expect_eq(read(p[0], &c, 1), 1);
    cr_assert_eq(green_join(w, NULL), 0);
    close(p[0]);
    close(p[1]);
}

Test(hub, wait_readable_times_out_with_etimedout_never_early)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int64_t t0 = green_now();
    errno = 0;
    cr_expect_eq(green_wait_readable(p[0], GREEN_MSEC(20)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    int64_t el = green_now() - t0;
    cr_expect_geq(el, GREEN_MSEC(20), "woke after %lld ns", (long long)el);
    cr_expect_lt(el, GREEN_SEC(5));
    close(p[0]);
    close(p[1]);
}

Test(hub, a_zero_timeout_polls_without_parking_for_long)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    errno = 0;
    cr_expect_eq(green_wait_readable(p[0], 0), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect_eq(write(p[1], "x", 1), 1);
    cr_expect_eq(green_wait_readable(p[0], GREEN_SEC(1)), GREEN_READ);
    close(p[0]);
    close(p[1]);
}

Test(hub, wait_writable_on_a_socketpair_with_room_returns_at_once)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_expect_eq(green_wait_writable(sv[0], GREEN_SEC(1)), GREEN_WRITE);
    cr_expect_eq(green_wait_fd(sv[0], GREEN_READ | GREEN_WRITE, GREEN_SEC(1)),
                 GREEN_WRITE);
    close(sv[0]);
    close(sv[1]);
}

/* A socketpair whose sv[0] cannot send any more (its buffers are full). */
static void full_socketpair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char buf[4096];
    memset(buf, 'a', sizeof buf);
    int i = 0;
    while (i++ < 100000 && send(sv[0], buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
    cr_assert_eq(errno, EAGAIN);
}

static void *drain_later(void *arg)
{
    int fd = (int)(intptr_t)arg;
    green_sleep(GREEN_MSEC(10));
    char buf[65536];
    for (int i = 0; i < 1000; i++)
        if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0)
            break;
    return NULL;
}

Test(hub, wait_writable_on_a_full_socket_waits_for_the_reader)
{
    int sv[2];
    full_socketpair(sv);
    errno = 0;
    cr_expect_eq(green_wait_writable(sv[0], GREEN_MSEC(5)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    green_t d = green_spawn(drain_later, (void *)(intptr_t)sv[1], NULL);
    cr_expect_eq(green_wait_writable(sv[0], GREEN_SEC(5)), GREEN_WRITE);
    cr_assert_eq(green_join(d, NULL), 0);
    close(sv[0]);
    close(sv[1]);
}

/* fd.c keeps one watcher per descriptor, its events the directions being
 * waited for: a writer that comes and goes (its direction is dropped
 * lazily once the socket reports writable with nobody waiting) must leave
 * a reader of the same socket armed. */
Test(hub, a_reader_stays_armed_while_a_writer_on_its_socket_comes_and_goes)
{
    int sv[2];
    full_socketpair(sv);
    struct waitjob r = { .fd = sv[0], .mask = GREEN_READ, .timeout = GREEN_SEC(5) };
    green_t rt = green_spawn(waiter, &r, NULL);
    cr_assert_eq(green_yield(), 0);        /* the reader waits */
    green_t d = green_spawn(drain_later, (void *)(intptr_t)sv[1], NULL);
    cr_expect_eq(green_wait_writable(sv[0], GREEN_SEC(5)), GREEN_WRITE);
    cr_assert_eq(green_join(d, NULL), 0);
    /* Still writable, nobody waits for it: the hub's next polls drop the
     * write direction. */
    for (int k = 0; k < 3; k++)
        cr_assert_eq(green_sleep(GREEN_MSEC(2)), 0);
    cr_assert_eq(write(sv[1], "x", 1), 1);
    cr_assert_eq(green_join(rt, NULL), 0);
    cr_expect_eq(r.rc, GREEN_READ, "rc %d errno %d", r.rc, r.err);
    cr_expect_lt(r.took, GREEN_SEC(4));
    close(sv[0]);
    close(sv[1]);
}

Test(hub, bad_descriptors_and_masks_fail_with_einval)
{
    errno = 0;
    cr_expect_eq(green_wait_readable(-1, 0), -1);
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_eq(green_wait_fd(0, 0, 0), -1);
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_eq(green_wait_fd(0, 4, 0), -1);
    cr_expect_eq(errno, EINVAL);
}

Test(hub, closing_a_descriptor_wakes_every_waiter_with_ebadf)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    struct waitjob w[3];
    green_t t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (struct waitjob){ .fd = p[0], .mask = GREEN_READ, .timeout = GREEN_SEC(10) };
        t[i] = green_spawn(waiter, &w[i], NULL);
    }
    cr_assert_eq(green_yield(), 0);        /* all three wait */
    green_fd_closing(p[0]);
    close(p[0]);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(green_join(t[i], NULL), 0);
        cr_expect_eq(w[i].rc, -1);
        cr_expect_eq(w[i].err, EBADF, "waiter %d errno %d", i, w[i].err);
        cr_expect_lt(w[i].took, GREEN_SEC(5));
    }
    close(p[1]);
}

Test(hub, a_reused_descriptor_number_gets_no_stale_readiness)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    struct waitjob a = { .fd = p[0], .mask = GREEN_READ, .timeout = GREEN_SEC(10) };
    green_t ta = green_spawn(waiter, &a, NULL);
    cr_assert_eq(green_yield(), 0);           /* a waits, watcher armed */
    cr_assert_eq(write(p[1], "x", 1), 1);     /* old fd now ready */
    int old = p[0];
    green_fd_closing(old);
    close(old);
    close(p[1]);
    int q[2];
    cr_assert_eq(pipe(q), 0);
    cr_assert_eq(q[0], old, "the new pipe did not reuse fd %d", old);
    struct waitjob b = { .fd = q[0], .mask = GREEN_READ, .timeout = GREEN_MSEC(30) };
    green_t tb = green_spawn(waiter, &b, NULL);
    cr_assert_eq(green_join(ta, NULL), 0);
    cr_assert_eq(green_join(tb, NULL), 0);
    cr_expect_eq(a.rc, -1);
    cr_expect_eq(a.err, EBADF);
    cr_expect_eq(b.rc, -1, "the new descriptor was woken by a stale event");
    cr_expect_eq(b.err, ETIMEDOUT);
    /* And the new descriptor works. */
    cr_assert_eq(write(q[1], "y", 1), 1);
    cr_expect_eq(green_wait_readable(q[0], GREEN_SEC(5)), GREEN_READ);
    close(q[0]);
    close(q[1]);
}

Test(hub, a_descriptor_reused_after_an_unannounced_close_still_works)
{
    /* The program closed the fd without telling us (no hook): the watcher
     * is still armed on a number that now names another file. */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "x", 1), 1);
    cr_expect_eq(green_wait_readable(p[0], GREEN_SEC(1)), GREEN_READ);
    int old = p[0];
    close(p[0]);
    close(p[1]);
    green_fd_closing(old);       /* the hooked close would have said so */
    int q[2];
    cr_assert_eq(pipe(q), 0);
    cr_assert_eq(q[0], old);
    struct waitjob b = { .fd = q[0], .mask = GREEN_READ, .timeout = GREEN_SEC(5) };
    green_t tb = green_spawn(waiter, &b, NULL);
    green_t w = green_spawn(write_later, (void *)(intptr_t)q[1], NULL);
    cr_assert_eq(green_join(tb, NULL), 0);
    cr_assert_eq(green_join(w, NULL), 0);
    cr_expect_eq(b.rc, GREEN_READ, "errno %d", b.err);
    close(q[0]);
    close(q[1]);
}

Test(hub, many_threads_wait_on_many_pipes_and_each_wakes_for_its_own)
{
    enum { N = 200 };
    int p[N][2];
    struct waitjob w[N];
    green_t t[N];
    for (int i = 0; i < N; i++) {
        cr_assert_eq(pipe(p[i]), 0);
        w[i] = (struct waitjob){ .fd = p[i][0], .mask = GREEN_READ, .timeout = GREEN_SEC(10) };
        t[i] = green_spawn(waiter, &w[i], NULL);
    }
    cr_assert_eq(green_yield(), 0);
    for (int i = 0; i < N; i += 2)               /* only the even ones */
        cr_assert_eq(write(p[i][1], "x", 1), 1);
    cr_assert_eq(green_sleep(GREEN_MSEC(20)), 0);
    for (int i = 1; i < N; i += 2) {
        cr_assert_eq(w[i].rc, 0, "odd waiter %d woke", i);   /* still parked */
        green_kill(t[i]);
    }
    for (int i = 0; i < N; i++) {
        cr_assert_eq(green_join(t[i], NULL), 0);
        if (i % 2 == 0)
            cr_expect_eq(w[i].rc, GREEN_READ, "waiter %d: %d errno %d", i, w[i].rc, w[i].err);
        else
            cr_expect_eq(w[i].err, ECANCELED);
        close(p[i][0]);
        close(p[i][1]);
    }
}

static void *slow_job(void *arg)
{
    struct timespec ts = { 0, 20 * 1000000 };
    nanosleep(&ts, NULL);
    return (void *)((intptr_t)arg * 2);
}

static int ticks;

static void *ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000 && ticks >= 0; i++) {
        ticks++;
        green_sleep(GREEN_MSEC(1));
    }
    return NULL;
}

Test(hub, a_worker_thread_wakes_the_offloading_green_thread)
{
    ticks = 0;
    green_t tk = green_spawn(ticker, NULL, NULL);
    void *r = NULL;
    cr_assert_eq(green_offload(slow_job, (void *)21, &r), 0);
    cr_expect_eq((intptr_t)r, 42);
    cr_expect_geq(ticks, 2, "the hub did not run other threads meanwhile");
    ticks = -1000000;
    cr_assert_eq(green_join(tk, NULL), 0);
}

Test(hub, sleeps_and_timed_waits_never_return_early)
{
    const int64_t d[] = { 1000, 10000, 100000, 1000000, 10000000, 50000000 };
    int p[2];
    cr_assert_eq(pipe(p), 0);
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) {
        int64_t t0 = green_now();
        cr_assert_eq(green_sleep(d[i]), 0);
        int64_t el = green_now() - t0;
        cr_expect_geq(el, d[i], "sleep %lld took %lld", (long long)d[i], (long long)el);
        cr_expect_lt(el, d[i] + GREEN_SEC(2));
        t0 = green_now();
        cr_expect_eq(green_wait_readable(p[0], d[i]), -1);
        el = green_now() - t0;
        cr_expect_geq(el, d[i], "wait %lld took %lld", (long long)d[i], (long long)el);
        int64_t dl = green_now() + d[i];
        cr_assert_eq(green_sleep_until(dl), 0);
        cr_expect_geq(green_now(), dl);
    }
    close(p[0]);
    close(p[1]);
}

static void *sleep_record(void *arg)
{
    int64_t *out = arg;
    int64_t t0 = green_now();
    green_sleep(out[0]);
    out[1] = green_now() - t0;
    return NULL;
}

Test(hub, concurrent_sleeps_with_different_deadlines_each_wait_their_own)
{
    enum { N = 50 };
    int64_t rec[N][2];
    green_t t[N];
    for (int i = 0; i < N; i++) {
        rec[i][0] = GREEN_USEC(100) * ((i * 7) % N + 1);   /* shuffled */
        t[i] = green_spawn(sleep_record, rec[i], NULL);
    }
    for (int i = 0; i < N; i++) {
        cr_assert_eq(green_join(t[i], NULL), 0);
        cr_expect_geq(rec[i][1], rec[i][0], "thread %d slept %lld of %lld", i,
                      (long long)rec[i][1], (long long)rec[i][0]);
    }
}

static void *sleep_then_write(void *arg)
{
    int fd = (int)(intptr_t)arg;
    if (green_sleep(GREEN_MSEC(2)) != 0)
        return (void *)1;
    return write(fd, "z", 1) == 1 ? NULL : (void *)2;
}

/* In the child: the hub must keep working. Exit code says what broke. */
static int child_checks(void)
{
    int64_t t0 = green_now();
    if (green_sleep(GREEN_MSEC(5)) != 0)
        return 10;
    if (green_now() - t0 < GREEN_MSEC(5))
        return 11;
    int p[2];
    if (pipe(p) != 0)
        return 12;
    green_t w = green_spawn(sleep_then_write, (void *)(intptr_t)p[1], NULL);
    if (!w)
        return 13;
    if (green_wait_readable(p[0], GREEN_SEC(5)) != GREEN_READ)
        return 14;
    void *r = (void *)1;
    if (green_join(w, &r) != 0 || r)
        return 15;
    char c;
    if (read(p[0], &c, 1) != 1)
        return 17;
    errno = 0;
    if (green_wait_readable(p[0], GREEN_MSEC(5)) != -1 || errno != ETIMEDOUT)
        return 16;
    return 0;
}

Test(hub, a_forked_child_has_a_working_hub)
{
    /* Use the hub in the parent first: timers armed, a watcher active. */
    int pp[2];
    cr_assert_eq(pipe(pp), 0);
    cr_expect_eq(green_wait_readable(pp[0], GREEN_MSEC(2)), -1);
    green_t s = green_spawn(sleep_then_write, (void *)(intptr_t)pp[1], NULL);
    cr_assert_eq(green_yield(), 0);          /* s sleeps across the fork */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(child_checks());
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st), "child died: %#x", st);
    cr_expect_eq(WEXITSTATUS(st), 0, "child check %d failed", WEXITSTATUS(st));
    cr_assert_eq(green_join(s, NULL), 0);   /* the parent still works too */
    cr_expect_eq(green_wait_readable(pp[0], GREEN_SEC(1)), GREEN_READ);
    close(pp[0]);
    close(pp[1]);
}

#include <sys/resource.h>

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec / 1e3 +
           (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3;
}

Test(hub, a_hub_with_only_sleepers_blocks_instead_of_spinning)
{
    green_t t = green_spawn(sleep_record, (int64_t[2]){ GREEN_MSEC(300), 0 }, NULL);
    double c0 = cpu_ms();
    cr_assert_eq(green_sleep(GREEN_MSEC(300)), 0);
    double used = cpu_ms() - c0;
    cr_assert_eq(green_join(t, NULL), 0);
    cr_expect_lt(used, 150.0, "the hub burnt %.1f ms of CPU in a 300 ms sleep", used);
}

Test(hub, waiting_on_a_descriptor_that_is_not_open_fails_with_ebadf)
{
    green_self();   /* the hub's own descriptors must not take the number */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int bad = p[0];
    close(p[0]);
    close(p[1]);
    errno = 0;
    cr_expect_eq(green_wait_readable(bad, GREEN_MSEC(50)), -1);
    cr_expect_eq(errno, EBADF);
    errno = 0;
    cr_expect_eq(green_wait_fd(bad, GREEN_READ | GREEN_WRITE, GREEN_MSEC(50)), -1);
    cr_expect_eq(errno, EBADF);
    /* A descriptor that was waited on, announced closed and closed. */
    cr_assert_eq(pipe(p), 0);
    cr_expect_eq(green_wait_readable(p[0], GREEN_USEC(100)), -1);   /* armed */
    int gone = p[0];
    green_fd_closing(gone);
    close(p[0]);
    close(p[1]);
    errno = 0;
    cr_expect_eq(green_wait_readable(gone, GREEN_MSEC(50)), -1);
    cr_expect_eq(errno, EBADF);
    /* The hub survived: a timed wait still works. */
    cr_expect_eq(green_sleep(GREEN_MSEC(1)), 0);
    cr_assert_eq(pipe(p), 0);
    cr_expect_eq(write(p[1], "x", 1), 1);
    cr_expect_eq(green_wait_readable(p[0], GREEN_SEC(1)), GREEN_READ);
    close(p[0]);
    close(p[1]);
}

Test(hub, a_regular_file_is_always_ready)
{
    char path[] = "/tmp/green_hub_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    cr_expect_eq(green_wait_readable(fd, GREEN_SEC(1)), GREEN_READ);
    cr_expect_eq(green_wait_writable(fd, GREEN_SEC(1)), GREEN_WRITE);
    close(fd);
}

static volatile int busy_stop;
static int64_t t_written, t_woken;

static void *busy_yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < 50000000 && !busy_stop; i++)
        green_yield();
    return NULL;
}

static void *wake_on_pipe(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int r = green_wait_readable(fd, GREEN_SEC(20));
    t_woken = green_now();
    busy_stop = 1;
    return (void *)(intptr_t)r;
}

static void *write_from_a_worker(void *arg)
{
    struct timespec ts = { 0, 20 * 1000000 };
    nanosleep(&ts, NULL);            /* the yielders are busy by now */
    t_written = green_now();
    return write((int)(intptr_t)arg, "x", 1) == 1 ? NULL : (void *)1;
}

static void *offload_writer(void *arg)
{
    void *r = (void *)1;
    green_offload(write_from_a_worker, arg, &r);
    return r;
}

Test(hub, threads_that_only_yield_do_not_starve_io)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    busy_stop = 0;
    green_t w = green_spawn(wake_on_pipe, (void *)(intptr_t)p[0], NULL);
    green_t y1 = green_spawn(busy_yielder, NULL, NULL);
    green_t y2 = green_spawn(busy_yielder, NULL, NULL);
    green_t o = green_spawn(offload_writer, (void *)(intptr_t)p[1], NULL);
    void *r;
    cr_assert_eq(green_join(w, &r), 0);
    cr_expect_eq((intptr_t)r, GREEN_READ);
    cr_assert_eq(green_join(o, NULL), 0);
    cr_assert_eq(green_join(y1, NULL), 0);
    cr_assert_eq(green_join(y2, NULL), 0);
    int64_t lat = t_woken - t_written;
    cr_expect_lt(lat, GREEN_MSEC(100), "I/O waited %lld ns behind busy yielders", (long long)lat);
    close(p[0]);
    close(p[1]);
}

#include <pthread.h>

static int late_fd;

static void *write_after_300ms(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 300 * 1000000 };
    nanosleep(&ts, NULL);
    return write(late_fd, "x", 1) == 1 ? NULL : (void *)1;
}

Test(hub, an_idle_hub_does_not_spin_after_a_timer_fired)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(green_sleep(GREEN_MSEC(1)), 0);     /* the timerfd fires */
    late_fd = p[1];
    pthread_t pt;
    cr_assert_eq(pthread_create(&pt, NULL, write_after_300ms, NULL), 0);
    double c0 = cpu_ms();
    cr_expect_eq(green_wait_readable(p[0], GREEN_FOREVER), GREEN_READ);  /* no deadline */
    double used = cpu_ms() - c0;
    pthread_join(pt, NULL);
    cr_expect_lt(used, 60.0, "the hub burnt %.1f ms of CPU in a 300 ms wait", used);
    close(p[0]);
    close(p[1]);
}

/* The time the hub's timerfd is armed for (CLOCK_MONOTONIC ns, as
 * green_now), or 0 when it is not armed. */
#include <sys/timerfd.h>
#include "green_internal.h"
static int64_t timerfd_expiry(void)
{
    struct itimerspec its;
    cr_assert_eq(timerfd_gettime(green__tls_ctx->tfd, &its), 0);
    int64_t left = (int64_t)its.it_value.tv_sec * 1000000000 + its.it_value.tv_nsec;
    return left ? green_now() + left : 0;
}

static void *write_after_5ms(void *arg)
{
    struct timespec ts = { 0, 5 * 1000000 };
    nanosleep(&ts, NULL);
    return write((int)(intptr_t)arg, "x", 1) == 1 ? NULL : (void *)1;
}

/* A thread writes a byte into p[1] 5 ms from now; wait for it with the
 * deadline until (green_now() time: the wait arms the hub's timerfd for
 * it) and read it. The hub must be running already (hub_warm_up): a first
 * hub's set-up alone took longer than 5 ms on some hosts, and then the
 * wait found the byte without ever blocking, so nothing was armed. */
static void wait_for_writer(int p[2], int64_t until)
{
    pthread_t pt;
    char c;
    cr_assert_eq(pthread_create(&pt, NULL, write_after_5ms, (void *)(intptr_t)p[1]), 0);
    cr_assert_eq(green_wait_readable(p[0], until - green_now()), GREEN_READ);
    pthread_join(pt, NULL);
    cr_assert_eq(read(p[0], &c, 1), 1);
}

/* One wait woken by its descriptor before its deadline, then one whose
 * deadline lies between 0 and 1 ms after that: the hub blocks twice and
 * keeps the timerfd as the first wait armed it (an event loop that
 * recomputes a millisecond timeout per call would otherwise cost a
 * timerfd_settime per poll). The write comes from an OS thread, so the
 * hub really blocks in epoll_wait each time. */
/* Start the hub and let its first timeout pass (the timerfd is then
 * armed at nothing). */
static void hub_warm_up(void)
{
    green_sleep(GREEN_USEC(100));
}

Test(hub, a_deadline_just_after_the_armed_one_keeps_the_timerfd_as_it_is)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    hub_warm_up();
    wait_for_writer(p, green_now() + GREEN_SEC(10));
    int64_t armed = timerfd_expiry();
    cr_assert_gt(armed, green_now() + GREEN_SEC(5), "the first wait armed no timerfd");

    wait_for_writer(p, armed + GREEN_USEC(500));
    int64_t now_armed = timerfd_expiry();
    cr_expect_lt(now_armed, armed + GREEN_USEC(250),
                 "re-armed %lld ns later", (long long)(now_armed - armed));
    cr_expect_geq(now_armed, armed - GREEN_USEC(250));
    close(p[0]);
    close(p[1]);
}

/* Never later: a deadline before the armed one re-arms at once. */
Test(hub, a_deadline_before_the_armed_one_rearms_the_timerfd)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    hub_warm_up();
    wait_for_writer(p, green_now() + GREEN_SEC(10));
    int64_t armed = timerfd_expiry();
    int64_t t0 = green_now();
    errno = 0;
    cr_assert_eq(green_wait_readable(p[0], GREEN_MSEC(20)), -1);
    cr_assert_eq(errno, ETIMEDOUT);
    int64_t el = green_now() - t0;
    cr_expect_lt(el, GREEN_SEC(5), "the 20 ms deadline waited for the one armed at %lld",
                 (long long)armed);
    close(p[0]);
    close(p[1]);
}

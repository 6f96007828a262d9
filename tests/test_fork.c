/*
 * test_fork.c - fork with a live hub: the child's hub works (timers, fd
 * waits, offload), the other green threads of the forking OS thread are
 * gone in the child (as POSIX says of threads; they used to continue there), the child's timers and watchers do not disturb the parent's
 * (the child gets its own timerfd and epoll set), and a green thread other
 * than main can fork.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include "green.h"

static int wait_child(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

static void *sleep_then_write(void *arg)
{
    int fd = (int)(intptr_t)arg;
    if (green_sleep(GREEN_MSEC(10)) != 0)
        return (void *)1;
    return write(fd, "w", 1) == 1 ? NULL : (void *)2;
}

Test(fork, a_sleeping_green_thread_is_gone_in_the_child)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    green_t t = green_spawn(sleep_then_write, (void *)(intptr_t)p[1], NULL);
    cr_assert_eq(green_yield(), 0);          /* t sleeps across the fork */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (green_join(t, NULL) == 0 || errno != EINVAL)
            _exit(10);             /* not joinable: it does not exist here */
        if (green_sleep(GREEN_MSEC(30)) != 0)
            _exit(11);
        _exit(0);
    }
    cr_assert_eq(green_join(t, NULL), 0);
    int st = wait_child(pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    char buf[4];
    cr_expect_eq(read(p[0], buf, sizeof buf), 1, "only the parent's thread writes");
}

static void *square(void *arg)
{
    intptr_t v = (intptr_t)arg;
    return (void *)(v * v);
}

Test(fork, offload_works_in_the_child)
{
    void *r;
    cr_assert_eq(green_offload(square, (void *)3, &r), 0);   /* pool started */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        r = NULL;
        if (green_offload(square, (void *)5, &r) != 0 || (intptr_t)r != 25)
            _exit(10);
        _exit(0);
    }
    int st = wait_child(pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    cr_assert_eq(green_offload(square, (void *)4, &r), 0);
    cr_expect_eq((intptr_t)r, 16);
}

Test(fork, the_childs_long_timer_does_not_delay_the_parents_short_one)
{
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(green_sleep(GREEN_USEC(100)), 0);   /* timerfd in use */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* Arms a timer 5 s away. Were the timerfd shared with the
         * parent, the parent's 20 ms sleep would now take 5 s. */
        if (write(ready[1], "r", 1) != 1)
            _exit(9);
        green_sleep(GREEN_SEC(5));
        _exit(0);
    }
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1);
    green_sleep(GREEN_MSEC(5));                     /* child is in its sleep */
    int64_t t0 = green_now();
    cr_assert_eq(green_sleep(GREEN_MSEC(20)), 0);
    int64_t el = green_now() - t0;
    kill(pid, SIGKILL);
    wait_child(pid);
    cr_expect_geq(el, GREEN_MSEC(20));
    cr_expect_lt(el, GREEN_SEC(3), "parent sleep took %lld ns", (long long)el);
}

static void *fork_from_green(void *arg)
{
    int fd = (int)(intptr_t)arg;
    pid_t pid = fork();
    if (pid < 0)
        return (void *)-1;
    if (pid == 0) {
        /* The forking green thread continues in the child. */
        if (green_sleep(GREEN_MSEC(2)) != 0)
            _exit(10);
        int p[2];
        if (pipe(p) != 0)
            _exit(11);
        green_t w = green_spawn(sleep_then_write, (void *)(intptr_t)p[1], NULL);
        if (green_wait_readable(p[0], GREEN_SEC(5)) != GREEN_READ)
            _exit(12);
        if (green_join(w, NULL) != 0)
            _exit(13);
        if (write(fd, "c", 1) != 1)
            _exit(14);
        _exit(0);
    }
    return (void *)(intptr_t)pid;
}

Test(fork, a_green_thread_other_than_main_can_fork_and_continue_in_the_child)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    green_t t = green_spawn(fork_from_green, (void *)(intptr_t)p[1], NULL);
    void *r;
    cr_assert_eq(green_join(t, &r), 0);
    pid_t pid = (pid_t)(intptr_t)r;
    cr_assert_gt(pid, 0);
    int st = wait_child(pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    char c = 0;
    cr_expect_eq(read(p[0], &c, 1), 1);
    cr_expect_eq(c, 'c');
}

Test(fork, fd_waits_in_parent_and_child_do_not_steal_each_others_events)
{
    int a[2], b[2];
    cr_assert_eq(pipe(a), 0);
    cr_assert_eq(pipe(b), 0);
    /* Arm a watcher on a[0] in the parent before forking. */
    cr_expect_eq(green_wait_readable(a[0], GREEN_USEC(100)), -1);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (green_wait_readable(b[0], GREEN_SEC(5)) != GREEN_READ)
            _exit(10);
        _exit(0);
    }
    cr_assert_eq(write(b[1], "b", 1), 1);   /* for the child */
    errno = 0;
    cr_expect_eq(green_wait_readable(a[0], GREEN_MSEC(20)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_assert_eq(write(a[1], "a", 1), 1);
    cr_expect_eq(green_wait_readable(a[0], GREEN_SEC(5)), GREEN_READ);
    int st = wait_child(pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

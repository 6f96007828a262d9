/*
 * test_preload_proc.c - name lookups and processes under LD_PRELOAD:
 * plain pthread programs (tests/progs/proc) run as children with
 * LD_PRELOAD=$GREEN_LIB: lookups, fork, waitpid, system() and vfork let
 * the other threads run and give the kernel's results. Each test first
 * proves the hook was taken (the child prints dladdr's answer for the
 * hooked symbol; with the pthread hooks present, its OS thread count).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include "hubs.h"
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

Test(preload_proc, getaddrinfo_does_not_stop_the_other_threads)
{
    static struct run r;
    run_prog(&r, true, "proc", "prog_dns", NULL, NULL, 60000);
    cr_assert_eq(r.status, 0, "output:\n%s", r.out);
    cr_assert_eq(kv(&r, "hooked_getaddrinfo"), 1, "getaddrinfo is not libgreen's");
    cr_assert_eq(kv(&r, "lookups_ok"), 20, "output:\n%s", r.out);
    cr_assert_eq(kv(&r, "gethostbyname_ok"), 1);
    /* With green pthreads the ticker can only run while main is parked. */
    cr_assert_gt(kv(&r, "ticks_during"), 0, "output:\n%s", r.out);
    if (kv(&r, "hooked_pthread_create"))
        cr_assert_leq(kv(&r, "threads"), test_hubs() + 4 + 1,
                      "hubs + worker pool:\n%s", r.out);
}

Test(preload_proc, fork_then_both_processes_keep_working_and_system_and_vfork_work)
{
    static struct run r;
    run_prog(&r, true, "proc", "prog_fork", NULL, NULL, 60000);
    cr_assert_eq(r.status, 0, "output:\n%s", r.out);
    cr_assert_eq(kv(&r, "hooked_fork"), 1, "fork is not libgreen's");
    cr_assert_eq(kv(&r, "hooked_waitpid"), 1, "waitpid is not libgreen's");
    cr_assert_eq(kv(&r, "child_status"), 42, "output:\n%s", r.out);
    cr_assert_gt(kv(&r, "ticks_during_waitpid"), 0, "waitpid stopped the other threads");
    cr_assert_eq(kv(&r, "system_status"), 3, "output:\n%s", r.out);
    cr_assert_gt(kv(&r, "ticks_during_system"), 0, "system() stopped the other threads");
    cr_assert_eq(kv(&r, "vfork_status"), 9);
}

/* A child of fork keeps one hub at most: the parent's other hubs'
 * descriptors (three anon inodes each: epoll set, timerfd, eventfd) are
 * closed in it, whichever thread forked. */
Test(preload_proc, a_forked_child_keeps_only_its_own_hubs_descriptors)
{
    static struct run r;
    run_prog(&r, true, "proc", "prog_fork_fds", NULL, NULL, 60000);
    cr_assert_eq(r.status, 0, "output:\n%s", r.out);
    cr_assert_eq(kv(&r, "hooked_fork"), 1, "fork is not libgreen's");
    int hubs = test_hubs();
    /* The parent has one set per hub it started (both with two hubs:
     * its threads were placed on each). */
    cr_assert_eq(kv(&r, "parent_anon_fds"), 3 * (hubs >= 2 ? 2 : 1), "output:\n%s", r.out);
    cr_assert_eq(kv(&r, "main_child_anon_fds"), 3, "output:\n%s", r.out);
    if (hubs >= 2) {
        cr_assert_eq(kv(&r, "elsewhere"), 1, "no thread ran on another hub:\n%s", r.out);
        cr_assert_eq(kv(&r, "elsewhere_child_anon_fds"), 3, "output:\n%s", r.out);
    }
}

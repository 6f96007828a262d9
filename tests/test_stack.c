/*
 * test_stack.c - green thread stacks: the size attribute, pooled reuse
 * (no mapping growth in the steady state), unguarded slab stacks, and the
 * overflow report (run in a forked child, which must die with SIGSEGV after
 * naming the thread on stderr).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "green.h"
#include "green_internal.h"   /* green__stack_guard_markers */
#ifdef GREEN_VALGRIND
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

/* Frames are larger under ASan (redzones): recurse less deep there. */
#if defined(__SANITIZE_ADDRESS__)
#define DEEP_1MIB 650
#else
#define DEEP_1MIB 900
#endif

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* Recurse depth times with a 1 KiB frame the compiler cannot drop. */
static __attribute__((noinline)) int deep(int depth)
{
    volatile char frame[1024];
    frame[0] = (char)depth;
    frame[1023] = (char)depth;
    if (depth == 0)
        return frame[0];
    return deep(depth - 1) + frame[1023] - (char)depth;
}

static void *recurse(void *arg)
{
    return (void *)(intptr_t)deep((int)(intptr_t)arg);
}

Test(stack, a_thread_can_use_most_of_a_1_mib_stack)
{
    green_attr_t a = { .stack_size = 1 << 20 };
    green_t t = green_spawn(recurse, (void *)DEEP_1MIB, &a);   /* ~900 KiB deep */
    cr_assert(t);
    void *r = (void *)1;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, 0);
}

static void *frame_address(void *arg)
{
    (void)arg;
    volatile char here;
    void *p = (void *)&here;
    __asm__("" : "+r"(p));   /* launder: we want the address, not the object */
    return p;
}

Test(stack, threads_run_on_their_own_stacks_of_the_requested_size)
{
    green_attr_t a = { .stack_size = 1 << 20 };
    green_t t = green_spawn(frame_address, NULL, &a);
    void *r;
    cr_assert_eq(green_join(t, &r), 0);
    volatile char mine;
    intptr_t d = (intptr_t)r - (intptr_t)&mine;
    cr_expect(d > (1 << 20) || d < -(1 << 20), "thread frame %p too close to main %p",
              r, (void *)&mine);
}

Test(stack, spawning_ten_thousand_threads_reuses_pooled_stacks)
{
    /* Warm up: the first spawn creates the hub and its stack. */
    green_t w = green_spawn(recurse, (void *)4, NULL);
    cr_assert_eq(green_join(w, NULL), 0);
    int before = count_maps();
    for (int i = 0; i < 10000; i++) {
        green_t t = green_spawn(recurse, (void *)4, NULL);
        cr_assert(t);
        cr_assert_eq(green_join(t, NULL), 0);
    }
    int after = count_maps();
    cr_expect_leq(after - before, 4, "maps %d -> %d", before, after);
}

static void *park_forever(void *arg)
{
    (void)arg;
    green_sleep(GREEN_SEC(100));
    return NULL;
}

static int maps_growth_for_parked(int n, int guard)
{
    green_t *t = calloc((size_t)n, sizeof *t);
    green_attr_t a = { .guard = guard };
    int before = count_maps();
    for (int i = 0; i < n; i++) {
        t[i] = green_spawn(park_forever, NULL, &a);
        cr_assert(t[i], "spawn %d: errno %d", i, errno);
    }
    green_yield();                   /* all of them are parked now */
    int after = count_maps();
    for (int i = 0; i < n; i++)
        green_kill(t[i]);
    for (int i = 0; i < n; i++)
        cr_assert_eq(green_join(t[i], NULL), 0);
    free(t);
    return after - before;
}

Test(stack, guarded_stacks_come_from_slabs_when_the_kernel_has_guard_markers)
{
    if (!green__stack_guard_markers(-1))
        cr_skip_test("no MADV_GUARD_INSTALL here (Linux < 6.13, or valgrind)");
    int g = maps_growth_for_parked(1000, 1);
    cr_expect_leq(g, 40, "1000 guarded stacks added %d mappings", g);
}

Test(stack, without_guard_markers_a_guarded_stack_costs_two_mappings)
{
    green__stack_guard_markers(0);
    int g = maps_growth_for_parked(1000, 1);
    /* Allocator noise on top: a few mappings for the 1000 thread structs;
     * ASan's allocator maps a region per size class as they grow (14 with
     * 488-byte structs). */
    int noise = getenv("GREEN_SANITIZED") ? 40 : 10;
    cr_expect_geq(g, 2000, "1000 guarded stacks added %d mappings", g);
    cr_expect_leq(g, 2000 + noise, "1000 guarded stacks added %d mappings", g);
}

/* Field 0 (address space) or 1 (resident) of /proc/self/statm, in pages. */
static long statm(int field)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long v[2] = { -1, -1 };
    if (f) {
        if (fscanf(f, "%ld %ld", &v[0], &v[1]) != 2)
            v[0] = v[1] = -1;
        fclose(f);
    }
    return v[field];
}

/* Touch 32 KiB of this thread's stack, then park. */
static void *touch_and_park(void *arg)
{
    (void)arg;
    volatile char buf[32 * 1024];
    for (size_t i = 0; i < sizeof buf; i += 1024)
        buf[i] = 1;
    green_sleep(GREEN_SEC(100));
    return (void *)(intptr_t)buf[0] - 1;
}

/* Peak and final RSS (pages) of n threads that touched 32 KiB each. */
static void pages_given_back(int n, int guard, long *peak, long *end)
{
    green_t *t = calloc((size_t)n, sizeof *t);
    green_attr_t a = { .guard = guard };
    for (int i = 0; i < n; i++) {
        t[i] = green_spawn(touch_and_park, NULL, &a);
        cr_assert(t[i], "spawn %d: errno %d", i, errno);
    }
    green_yield();
    *peak = statm(1);
    for (int i = 0; i < n; i++)
        green_kill(t[i]);
    for (int i = 0; i < n; i++)
        cr_assert_eq(green_join(t[i], NULL), 0);
    *end = statm(1);
    free(t);
}

Test(stack, slab_stacks_past_what_the_pool_keeps_give_their_pages_back)
{
    /* The pool keeps 1024 stacks as they are; the other 476 of each kind
     * give back all nine pages they touched (36 KiB each; 32 if the top
     * one stayed), and a second burst takes them again instead of carving
     * new slots. */
    long pg = sysconf(_SC_PAGESIZE);
    for (int guard = 1; guard <= 2; guard++) {
        long peak, end;
        pages_given_back(1500, guard, &peak, &end);
        long freed_kib = (peak - end) * pg / 1024;
        cr_expect_geq(freed_kib, 476 * 34, "guard %d: %ld KiB given back (peak %ld, end %ld "
                      "pages)", guard, freed_kib, peak, end);
        long vm = statm(0);
        pages_given_back(1500, guard, &peak, &end);
        long grown_kib = (statm(0) - vm) * pg / 1024;
        cr_expect_leq(grown_kib, 8192, "guard %d: a second burst added %ld KiB of address "
                      "space", guard, grown_kib);
    }
}

Test(stack, unguarded_stacks_come_from_slabs_of_few_mappings)
{
    int g = maps_growth_for_parked(1000, 2);
    cr_expect_leq(g, 40, "1000 unguarded stacks added %d mappings", g);
}

Test(stack, green_stack_guard_0_makes_unguarded_stacks_the_default)
{
    setenv("GREEN_STACK_GUARD", "0", 1);   /* read when the hub is created */
    int g = maps_growth_for_parked(1000, 0);
    cr_expect_leq(g, 40, "1000 default stacks added %d mappings", g);
}

Test(stack, green_stack_size_sets_the_default_size)
{
    setenv("GREEN_STACK_SIZE", "96K", 1);
    green_self();
    cr_expect_eq(green_default_stack_size(), 96 * 1024);
    cr_expect_eq(green_set_default_stack_size(100), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(green_set_default_stack_size(1 << 20), 0);
    cr_expect_eq(green_default_stack_size(), 1 << 20);
    green_t t = green_spawn(recurse, (void *)DEEP_1MIB, NULL);   /* fits in 1 MiB */
    void *r = (void *)1;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, 0);
}

Test(stack, a_default_size_raised_after_stacks_were_pooled_is_honoured)
{
    for (int i = 0; i < 10; i++) {          /* pool some 256 KiB stacks */
        green_t t = green_spawn(recurse, (void *)4, NULL);
        cr_assert_eq(green_join(t, NULL), 0);
    }
    green_attr_t plain = { .guard = 2 };      /* and some slab stacks */
    for (int i = 0; i < 10; i++) {
        green_t t = green_spawn(recurse, (void *)4, &plain);
        cr_assert_eq(green_join(t, NULL), 0);
    }
    cr_assert_eq(green_set_default_stack_size(1 << 20), 0);
    green_t g = green_spawn(recurse, (void *)DEEP_1MIB, NULL);
    green_t u = green_spawn(recurse, (void *)DEEP_1MIB, &plain);
    void *r = (void *)1;
    cr_assert_eq(green_join(g, &r), 0);
    cr_expect_eq((intptr_t)r, 0);
    r = (void *)1;
    cr_assert_eq(green_join(u, &r), 0);
    cr_expect_eq((intptr_t)r, 0);
}

/* Run fn in a forked child with stderr on a pipe; return the child's wait
 * status and what it wrote to stderr. */
static int run_child(void (*fn)(void), char *err, size_t errsz)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        fn();
        _exit(0);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n < errsz - 1 && (r = read(p[0], err + n, errsz - 1 - n)) > 0)
        n += (size_t)r;
    err[n] = 0;
    close(p[0]);
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

static volatile int never = -1;   /* hides the infinite recursion */

static __attribute__((noinline)) int forever(int depth)
{
    volatile char frame[256];
    frame[0] = (char)depth;
    if (depth == never)
        return 0;
    return forever(depth + 1) + frame[0];
}

static void *overflow(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)forever(0);
}

static uint64_t diver_id;
static size_t diver_stack = 64 * 1024;   /* 0: the default size (a slab) */

static void overflow_child(void)
{
    green_attr_t a = { .name = "deep-diver", .stack_size = diver_stack };
    green_t t = green_spawn(overflow, NULL, &a);
    diver_id = green_id(t);
    char idline[64];
    int n = snprintf(idline, sizeof idline, "id=%llu\n", (unsigned long long)diver_id);
    if (write(2, idline, (size_t)n) < 0)
        _exit(5);
    green_join(t, NULL);
    _exit(4);   /* must not get here */
}

static void expect_overflow_report(int st, const char *err)
{
    cr_expect(WIFSIGNALED(st), "status %#x, stderr: %s", st, err);
    cr_expect_eq(WTERMSIG(st), SIGSEGV, "signal %d", WTERMSIG(st));
    cr_expect(strstr(err, "stack overflow in green thread") != NULL, "stderr: %s", err);
    cr_expect(strstr(err, "deep-diver") != NULL, "stderr: %s", err);
    unsigned long long id = 0;
    const char *p = strstr(err, "id=");
    cr_assert(p && sscanf(p, "id=%llu", &id) == 1);
    char want[80];
    snprintf(want, sizeof want, "green thread %llu \"deep-diver\"", id);
    cr_expect(strstr(err, want) != NULL, "want [%s] in stderr: %s", want, err);
}

Test(stack, an_overflow_is_reported_with_the_thread_name_and_kills_with_sigsegv)
{
    char err[4096];
    int st = run_child(overflow_child, err, sizeof err);
    expect_overflow_report(st, err);
}

Test(stack, an_overflow_of_a_default_size_slab_stack_is_reported)
{
    diver_stack = 0;
    char err[4096];
    int st = run_child(overflow_child, err, sizeof err);
    expect_overflow_report(st, err);
}

Test(stack, an_overflow_is_reported_with_prot_none_guard_zones_too)
{
    green__stack_guard_markers(0);
    diver_stack = 0;
    char err[4096];
    int st = run_child(overflow_child, err, sizeof err);
    expect_overflow_report(st, err);
}

static void *nothing(void *arg)
{
    return arg;
}

Test(stack, a_guard_zone_made_before_a_fork_still_catches_an_overflow_in_the_child)
{
    /* The child's deep-diver gets the stack this thread ran on, pooled,
     * with its guard zone installed by the parent. */
    diver_stack = 0;
    green_t t = green_spawn(nothing, NULL, NULL);
    cr_assert(t);
    cr_assert_eq(green_join(t, NULL), 0);
    char err[4096];
    int st = run_child(overflow_child, err, sizeof err);
    expect_overflow_report(st, err);
}

/* Each frame holds 12 KiB and touches its lowest byte first: an overflow
 * lands three pages below the last touched one. */
static __attribute__((noinline)) int big_frames(int depth)
{
    volatile char frame[12288];
    frame[0] = (char)depth;
    frame[sizeof frame - 1] = (char)depth;
    if (depth == never)
        return 0;
    return big_frames(depth + 1) + frame[0];
}

static void *big_overflow(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)big_frames(0);
}

static void *neighbour(void *arg)
{
    (void)arg;
    green_sleep(GREEN_SEC(10));
    return NULL;
}

static void big_frame_child(void)
{
    /* Stacks mapped one after the other sit next to each other: the
     * neighbour's stack is right below the overflowing one's guard. */
    green_attr_t a = { .name = "big-frames", .stack_size = diver_stack };
    green_attr_t n = { .stack_size = diver_stack };
    green_t nb[4];
    for (int i = 0; i < 4; i++)
        nb[i] = green_spawn(neighbour, NULL, &n);
    green_t t = green_spawn(big_overflow, NULL, &a);
    for (int i = 0; i < 4; i++)
        green_spawn(neighbour, NULL, &n);
    green_join(t, NULL);
    (void)nb;
    _exit(4);   /* must not get here */
}

Test(stack, an_overflow_by_frames_larger_than_a_page_is_still_caught)
{
    char err[4096];
    int st = run_child(big_frame_child, err, sizeof err);
    cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x, stderr: %s", st, err);
    cr_expect(strstr(err, "stack overflow in green thread") != NULL, "stderr: %s", err);
    cr_expect(strstr(err, "big-frames") != NULL, "stderr: %s", err);
}

Test(stack, an_overflow_of_a_slab_stack_by_large_frames_is_still_caught)
{
    /* Slab slots sit next to each other: the neighbour below is the slot
     * carved before. */
    diver_stack = 0;
    char err[4096];
    int st = run_child(big_frame_child, err, sizeof err);
    cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x, stderr: %s", st, err);
    cr_expect(strstr(err, "stack overflow in green thread") != NULL, "stderr: %s", err);
    cr_expect(strstr(err, "big-frames") != NULL, "stderr: %s", err);
}

static void *null_deref(void *arg)
{
    return (void *)(intptr_t)*(volatile int *)arg;
}

static void null_child(void)
{
    green_t t = green_spawn(null_deref, NULL, NULL);
    green_join(t, NULL);
    _exit(4);
}

Test(stack, an_ordinary_segfault_in_a_green_thread_is_not_called_an_overflow)
{
    char err[4096];
    int st = run_child(null_child, err, sizeof err);
    /* ASan's own SEGV report ends the process with exit status 1. */
    cr_expect((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) ||
              (WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 4),
              "status %#x", st);
    cr_expect(strstr(err, "stack overflow") == NULL, "stderr: %s", err);
}

static long read_long_file(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

Test(stack, past_the_map_limit_spawn_fails_with_enomem_and_says_why)
{
    long limit = read_long_file("/proc/sys/vm/max_map_count");
    if (limit <= 0 || limit > 70000)
        cr_skip_test("vm.max_map_count is %ld: too many stacks to try", limit);
    if (RUNNING_ON_VALGRIND)   /* valgrind needs mappings of its own */
        cr_skip_test("not under valgrind");
    green__stack_guard_markers(0);   /* markers cost no mapping: no limit */
    char path[] = "/tmp/green_stack_XXXXXX";
    int log = mkstemp(path);
    cr_assert_geq(log, 0);
    unlink(path);
    int saved = dup(2);
    dup2(log, 2);
    green_attr_t a = { .guard = 1, .stack_size = 16384 };
    long n = 0, cap = limit;
    green_t *t = calloc((size_t)cap, sizeof *t);
    int err = 0;
    while (n < cap) {
        t[n] = green_spawn(park_forever, NULL, &a);
        if (!t[n]) {
            err = errno;
            break;
        }
        n++;
    }
    dup2(saved, 2);
    close(saved);
    cr_expect_eq(err, ENOMEM, "spawn %ld failed with errno %d", n, err);
    cr_expect_gt(n, limit / 2 - 2000, "only %ld guarded stacks", n);
    cr_expect_lt(n, limit / 2 + 10, "%ld guarded stacks", n);
    char buf[1024] = { 0 };
    cr_assert_geq(pread(log, buf, sizeof buf - 1, 0), 0);
    cr_expect(strstr(buf, "vm.max_map_count") && strstr(buf, "GREEN_STACK_GUARD=0"),
              "stderr: %s", buf);
    close(log);
    for (long i = 0; i < n; i++)
        green_kill(t[i]);
    for (long i = 0; i < n; i++)
        cr_assert_eq(green_join(t[i], NULL), 0);
    free(t);
}

#include <sys/resource.h>

static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

Test(stack, stacks_of_a_custom_size_are_pooled_too)
{
    /* A fresh 1 MiB stack that is used 300 KiB deep costs ~75 page
     * faults; a pooled one costs none. 50 spawns without pooling would
     * cost ~3,750. */
    green_attr_t a = { .stack_size = 1 << 20 };
    green_t w = green_spawn(recurse, (void *)300, &a);
    cr_assert_eq(green_join(w, NULL), 0);
    long f0 = minor_faults();
    for (int i = 0; i < 50; i++) {
        green_t t = green_spawn(recurse, (void *)300, &a);
        cr_assert(t);
        cr_assert_eq(green_join(t, NULL), 0);
    }
    long df = minor_faults() - f0;
    cr_expect_lt(df, 600, "%ld page faults for 50 spawns of 1 MiB stacks", df);
}

Test(stack, a_green_stack_size_that_overflows_is_rejected_and_the_default_kept)
{
    setenv("GREEN_STACK_SIZE", "18014398509483008K", 1);   /* 2^64 + 1 MiB */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int saved = dup(2);
    dup2(p[1], 2);
    green_self();                                  /* reads the settings */
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    char buf[512] = { 0 };
    cr_assert_geq(read(p[0], buf, sizeof buf - 1), 0);
    close(p[0]);
    cr_expect_eq(green_default_stack_size(), (size_t)GREEN_DEFAULT_STACK_SIZE);
    cr_expect(strstr(buf, "GREEN_STACK_SIZE") != NULL, "stderr: %s", buf);
}

/*
 * test_preload_tls.c - __thread and thread_local variables per green
 * thread (GREEN_TLS, libgreen/tls.c), on plain pthread programs
 * (tests/progs/tls) run natively and under the shim.
 *
 * Each case runs the program natively (the oracle: each pthread has its
 * own thread-local storage), under the shim with thread-local storage per
 * green thread (the default) and, to prove the case can fail, under the
 * shim with GREEN_TLS=0, where the green threads of one hub share their
 * OS thread's storage and the same program sees other threads' values.
 * Under the shim every program first proves the hook was taken
 * (pthread_create, or __cxa_thread_atexit_impl for C++, resolve into
 * libgreen: green=1). tools/test runs this suite with GREEN_HUBS=2 and 1.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>
#include "child_run.h"

enum how { NATIVE, GREEN, GREEN_TLS_OFF, GREEN_TLS_ADDR };

/* Run tests/progs/tls/prog with mode; it must exit 0, and under the shim
 * it must have proved that the hook was taken. */
static void run_tls(struct run *r, enum how how, const char *prog, const char *mode)
{
    if (how == GREEN_TLS_OFF)
        setenv("GREEN_TLS", "0", 1);
    else if (how == GREEN_TLS_ADDR)
        setenv("GREEN_TLS", "address", 1);
    else
        unsetenv("GREEN_TLS");
    run_prog(r, how != NATIVE, "tls", prog, mode, NULL, 60000);
    unsetenv("GREEN_TLS");
    cr_assert_eq(r->status, 0, "%s %s exited %d; output:\n%s", prog, mode, r->status, r->out);
    cr_assert_eq(kv(r, "green"), how != NATIVE,
                 "%s %s: the shim's hook was%s taken; output:\n%s", prog, mode,
                 how == NATIVE ? "" : " not", r->out);
}

static bool have_cxx(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tls/prog_tls_cxx", getenv("GREEN_PROGS"));
    return access(path, X_OK) == 0;
}

/* ------------------------------------------------------- __thread, C */

Test(preload_tls, natively_a_hundred_threads_keep_their_own_thread_locals)
{
    struct run r;
    run_tls(&r, NATIVE, "prog_tls", "ids");
    cr_assert_eq(kv(&r, "mismatch"), 0, "%s", r.out);
}

Test(preload_tls, a_hundred_green_threads_keep_their_own_thread_locals_across_yields_and_sleeps)
{
    struct run r;
    run_tls(&r, GREEN, "prog_tls", "ids");
    cr_assert_eq(kv(&r, "mismatch"), 0, "threads saw another's __thread values:\n%s", r.out);
}

Test(preload_tls, with_green_tls_off_the_green_threads_of_a_hub_share_thread_locals)
{
    struct run r;
    run_tls(&r, GREEN_TLS_OFF, "prog_tls", "ids");
    cr_assert_gt(kv(&r, "mismatch"), 0, "GREEN_TLS=0 should share the OS thread's:\n%s",
                 r.out);
}

Test(preload_tls, a_new_thread_starts_from_the_initial_values_not_its_creators)
{
    struct run r;
    run_tls(&r, NATIVE, "prog_tls", "init");
    cr_assert_eq(kv(&r, "init_ok"), 1, "natively:\n%s", r.out);
    run_tls(&r, GREEN, "prog_tls", "init");
    cr_assert_eq(kv(&r, "init_ok"), 1, "under the shim:\n%s", r.out);
    run_tls(&r, GREEN_TLS_OFF, "prog_tls", "init");
    cr_assert_eq(kv(&r, "init_ok"), 0, "GREEN_TLS=0 should show the creator's:\n%s", r.out);
}

Test(preload_tls, thread_locals_of_a_library_dlopened_after_threads_started_are_per_thread)
{
    struct run r;
    run_tls(&r, NATIVE, "prog_tls", "dlopen");
    cr_assert_eq(kv(&r, "mismatch"), 0, "natively:\n%s", r.out);
    run_tls(&r, GREEN, "prog_tls", "dlopen");
    cr_assert_eq(kv(&r, "mismatch"), 0, "under the shim:\n%s", r.out);
    run_tls(&r, GREEN_TLS_OFF, "prog_tls", "dlopen");
    cr_assert_gt(kv(&r, "mismatch"), 0, "GREEN_TLS=0 should share them:\n%s", r.out);
}

Test(preload_tls, a_library_dlclosed_before_threads_ran_leaves_the_swap_alone)
{
    struct run r;
    run_tls(&r, NATIVE, "prog_tls", "dlclose");
    cr_assert_eq(kv(&r, "ran"), 10, "natively:\n%s", r.out);
    cr_assert_eq(kv(&r, "mismatch"), 0, "natively:\n%s", r.out);
    run_tls(&r, GREEN, "prog_tls", "dlclose");
    cr_assert_eq(kv(&r, "ran"), 10, "under the shim:\n%s", r.out);
    cr_assert_eq(kv(&r, "mismatch"), 0, "under the shim:\n%s", r.out);
}

Test(preload_tls, a_library_dlopened_by_a_program_without_tls_starts_new_threads_from_its_image)
{
    struct run r;
    run_tls(&r, NATIVE, "prog_tls_none", NULL);
    cr_assert_eq(kv(&r, "creator"), 42, "natively:\n%s", r.out);
    cr_assert_eq(kv(&r, "created"), 5, "natively:\n%s", r.out);
    run_tls(&r, GREEN, "prog_tls_none", NULL);
    cr_assert_eq(kv(&r, "creator"), 42, "under the shim:\n%s", r.out);
    cr_assert_eq(kv(&r, "created"), 5, "under the shim:\n%s", r.out);
}

Test(preload_tls, a_signal_handler_run_for_a_waiting_thread_sees_that_threads_values)
{
    struct run r;
    run_tls(&r, NATIVE, "prog_tls", "signal");
    cr_assert_eq(kv(&r, "handler_saw"), 7, "natively:\n%s", r.out);
    cr_assert_eq(kv(&r, "main_mine"), 1, "natively:\n%s", r.out);
    run_tls(&r, GREEN, "prog_tls", "signal");
    cr_assert_eq(kv(&r, "handler_saw"), 7, "under the shim:\n%s", r.out);
    cr_assert_eq(kv(&r, "main_mine"), 1, "under the shim:\n%s", r.out);
    /* GREEN_TLS=0 shares them between the threads of one hub: one hub
     * here (with two, the thread runs on the other one, beside main). */
    const char *h = getenv("GREEN_HUBS");
    char *saved = h ? strdup(h) : NULL;
    setenv("GREEN_HUBS", "1", 1);
    run_tls(&r, GREEN_TLS_OFF, "prog_tls", "signal");
    if (saved)
        setenv("GREEN_HUBS", saved, 1);
    else
        unsetenv("GREEN_HUBS");
    free(saved);
    cr_assert_neq(kv(&r, "main_mine"), 1, "GREEN_TLS=0 should share them:\n%s", r.out);
}

static void check_objects(const struct run *r, const char *where);

/* ------------------------------------------------ GREEN_TLS=address */

/* A thread hands its __thread variable's address to another, which
 * writes through it and wakes it with a futex (MariaDB's group commit).
 * Each green thread needs an address of its own: GREEN_TLS=address. */
Test(preload_tls, a_thread_local_reached_through_its_address_by_another_thread)
{
    struct run r;
    run_tls(&r, NATIVE, "prog_tls", "address");
    cr_assert_eq(kv(&r, "distinct"), 8, "natively:\n%s", r.out);
    cr_assert_eq(kv(&r, "mismatch"), 0, "natively:\n%s", r.out);
    cr_assert_eq(kv(&r, "timeouts"), 0, "natively:\n%s", r.out);
    run_tls(&r, GREEN_TLS_ADDR, "prog_tls", "address");
    cr_assert_eq(kv(&r, "distinct"), 8, "GREEN_TLS=address:\n%s", r.out);
    cr_assert_eq(kv(&r, "mismatch"), 0, "GREEN_TLS=address:\n%s", r.out);
    cr_assert_eq(kv(&r, "timeouts"), 0, "GREEN_TLS=address:\n%s", r.out);
    /* Contents swapped at fixed addresses: the threads of a hub share
     * one address (the README's limit of GREEN_TLS=1). */
    run_prog_stderr = true;
    run_tls(&r, GREEN, "prog_tls", "address");
    run_prog_stderr = false;
    cr_assert_lt(kv(&r, "distinct"), 8, "GREEN_TLS=1 should share addresses:\n%s", r.out);
    /* ... and says what to do, once. */
    const char *hint = strstr(r.out, "set GREEN_TLS=address");
    cr_assert(hint, "no hint for GREEN_TLS=address:\n%s", r.out);
    cr_assert_null(strstr(hint + 1, "set GREEN_TLS=address"), "said twice:\n%s", r.out);
}

/* Every other case of this file holds with GREEN_TLS=address too. */
Test(preload_tls, green_tls_address_keeps_every_promise_of_green_tls)
{
    struct run r;
    run_tls(&r, GREEN_TLS_ADDR, "prog_tls", "ids");
    cr_assert_eq(kv(&r, "mismatch"), 0, "ids:\n%s", r.out);
    run_tls(&r, GREEN_TLS_ADDR, "prog_tls", "init");
    cr_assert_eq(kv(&r, "init_ok"), 1, "init:\n%s", r.out);
    run_tls(&r, GREEN_TLS_ADDR, "prog_tls", "dlopen");
    cr_assert_eq(kv(&r, "mismatch"), 0, "dlopen:\n%s", r.out);
    run_tls(&r, GREEN_TLS_ADDR, "prog_tls", "dlclose");
    cr_assert_eq(kv(&r, "ran"), 10, "dlclose:\n%s", r.out);
    cr_assert_eq(kv(&r, "mismatch"), 0, "dlclose:\n%s", r.out);
    run_tls(&r, GREEN_TLS_ADDR, "prog_tls", "signal");
    cr_assert_eq(kv(&r, "handler_saw"), 7, "signal:\n%s", r.out);
    cr_assert_eq(kv(&r, "main_mine"), 1, "signal:\n%s", r.out);
    run_tls(&r, GREEN_TLS_ADDR, "prog_tls_none", NULL);
    cr_assert_eq(kv(&r, "creator"), 42, "none:\n%s", r.out);
    cr_assert_eq(kv(&r, "created"), 5, "none:\n%s", r.out);
    if (!have_cxx())
        return;
    run_tls(&r, GREEN_TLS_ADDR, "prog_tls_cxx", "objects");
    check_objects(&r, "GREEN_TLS=address");
    run_tls(&r, GREEN_TLS_ADDR, "prog_tls_cxx", "exceptions");
    cr_assert_eq(kv(&r, "mismatch"), 0, "exceptions:\n%s", r.out);
    run_tls(&r, GREEN_TLS_ADDR, "prog_tls_cxx", "dlclose");
    cr_assert_eq(kv(&r, "lib_dtors"), 1, "dlclose:\n%s", r.out);
}

/* Loading a green thread's thread pointer is an instruction, not a
 * system call, where the kernel lets user space run the CPU's FSGSBASE
 * instructions (it says so in AT_HWCAP2); elsewhere it is arch_prctl.
 * Counted with strace over 100 threads that yield and sleep. */
Test(preload_tls, green_tls_address_loads_a_thread_pointer_without_a_system_call_where_the_cpu_can)
{
    struct run r;
    run_prog_trace = "arch_prctl";
    run_tls(&r, GREEN_TLS_ADDR, "prog_tls", "ids");
    run_prog_trace = NULL;
    int calls = trace_count("ARCH_SET_FS");
    cr_assert_eq(kv(&r, "mismatch"), 0, "ids:\n%s", r.out);
    if (getauxval(AT_HWCAP2) & 2 /* HWCAP2_FSGSBASE */)
        cr_assert_lt(calls, 5, "%d arch_prctl(ARCH_SET_FS) calls with FSGSBASE", calls);
    else
        cr_assert_geq(calls, 100, "%d arch_prctl(ARCH_SET_FS) calls without FSGSBASE", calls);
}

/* -------------------------------------------------- thread_local, C++ */

static void check_objects(const struct run *r, const char *where)
{
    cr_assert_eq(kv(r, "constructed"), 80, "%s:\n%s", where, r->out);
    cr_assert_eq(kv(r, "destroyed"), 80, "%s:\n%s", where, r->out);
    cr_assert_eq(kv(r, "mismatch"), 0, "%s:\n%s", where, r->out);
    cr_assert_eq(kv(r, "bad_dtor"), 0, "%s:\n%s", where, r->out);
    cr_assert_eq(kv(r, "dtor_seen"), 40, "%s:\n%s", where, r->out);
}

Test(preload_tls, cxx_thread_local_objects_are_built_per_green_thread_and_destroyed_at_its_exit)
{
    if (!have_cxx())
        cr_skip_test("no C++ compiler: prog_tls_cxx was not built");
    struct run r;
    run_tls(&r, NATIVE, "prog_tls_cxx", "objects");
    check_objects(&r, "natively");
    run_tls(&r, GREEN, "prog_tls_cxx", "objects");
    check_objects(&r, "under the shim");
    run_tls(&r, GREEN_TLS_OFF, "prog_tls_cxx", "objects");
    cr_assert_lt(kv(&r, "constructed"), 80, "GREEN_TLS=0 should share them:\n%s", r.out);
}

Test(preload_tls, cxx_exceptions_in_flight_in_several_green_threads_survive_switches)
{
    if (!have_cxx())
        cr_skip_test("no C++ compiler: prog_tls_cxx was not built");
    struct run r;
    run_tls(&r, NATIVE, "prog_tls_cxx", "exceptions");
    cr_assert_eq(kv(&r, "mismatch"), 0, "natively:\n%s", r.out);
    run_tls(&r, GREEN, "prog_tls_cxx", "exceptions");
    cr_assert_eq(kv(&r, "mismatch"), 0, "under the shim:\n%s", r.out);
    /* Without: a thread rethrows another's exception, or (ASan) frees
     * it twice and the program dies. */
    setenv("GREEN_TLS", "0", 1);
    run_prog(&r, true, "tls", "prog_tls_cxx", "exceptions", NULL, 60000);
    unsetenv("GREEN_TLS");
    cr_assert(r.status != 0 || kv(&r, "mismatch") > 0,
              "GREEN_TLS=0 should mix them up:\n%s", r.out);
}

Test(preload_tls, cxx_a_thread_local_destructor_keeps_its_dlclosed_library_loaded_until_it_ran)
{
    if (!have_cxx())
        cr_skip_test("no C++ compiler: prog_tls_cxx was not built");
    struct run r;
    run_tls(&r, NATIVE, "prog_tls_cxx", "dlclose");
    cr_assert_eq(kv(&r, "lib_dtors"), 1, "natively:\n%s", r.out);
    run_tls(&r, GREEN, "prog_tls_cxx", "dlclose");
    cr_assert_eq(kv(&r, "lib_dtors"), 1, "under the shim:\n%s", r.out);
    /* Without: glibc's list is the hub's OS thread's, which has not
     * ended, so the destructor has not run when the thread is joined. */
    run_tls(&r, GREEN_TLS_OFF, "prog_tls_cxx", "dlclose");
    cr_assert_eq(kv(&r, "lib_dtors"), 0, "GREEN_TLS=0:\n%s", r.out);
}

/*
 * cases_pshared.c - differential cases of process-shared synchronisation
 * objects (see diff.h): process-shared, robust and errorcheck/recursive
 * mutexes between threads and across fork (EBUSY, EPERM, EDEADLK,
 * EOWNERDEAD, ENOTRECOVERABLE), process-shared condition variables,
 * barriers and rwlocks used by a parent and its forked children in a
 * MAP_SHARED mapping, condition variables destroyed right after a
 * broadcast, and process-shared semaphores whose waits park only the
 * waiting thread.
 *
 * Every object lives in a fresh MAP_SHARED anonymous mapping. A child
 * reports through diff_out (its lines come before the parent's next ones
 * because the parent waits for it where the order matters) or through its
 * exit status.
 */
#include "diff.h"
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/time.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

/* A mutex with the given type; pshared and/or robust. */
static void mutex_make(pthread_mutex_t *m, int type, bool pshared, bool robust)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    if (pshared)
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (robust)
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int e = pthread_mutex_init(m, &a);
    if (e)
        diff_out("mutex_init: %s", diff_errname(e));
    pthread_mutexattr_destroy(&a);
}

static void cond_make(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    int e = pthread_cond_init(c, &a);
    if (e)
        diff_out("cond_init: %s", diff_errname(e));
    pthread_condattr_destroy(&a);
}

static void rwlock_make(pthread_rwlock_t *rw)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    int e = pthread_rwlock_init(rw, &a);
    if (e)
        diff_out("rwlock_init: %s", diff_errname(e));
    pthread_rwlockattr_destroy(&a);
}

static void barrier_make(pthread_barrier_t *b, unsigned n)
{
    pthread_barrierattr_t a;
    pthread_barrierattr_init(&a);
    pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    int e = pthread_barrier_init(b, &a, n);
    if (e)
        diff_out("barrier_init: %s", diff_errname(e));
    pthread_barrierattr_destroy(&a);
}

/* Everything a case shares with its children and threads. */
struct shm {
    pthread_mutex_t m;
    pthread_cond_t c;
    pthread_rwlock_t rw;
    pthread_barrier_t b;
    sem_t s;
    atomic_int waiting;   /* children/threads about to wait */
    atomic_int done;      /* children/threads finished */
    atomic_int flag;
    int predicate;
    int results[8];
};

static struct shm *shm_new(void)
{
    return diff_shared_map(sizeof(struct shm));
}

static void wait_for(atomic_int *v, int n)
{
    for (int i = 0; i < 5000 && atomic_load(v) < n; i++)
        usleep(1000);
}

/* Lock the case's mutex and read `waiting` until it reaches n: the
 * waiters increment it with the mutex held just before their cond wait,
 * so n means all of them are inside the wait. */
static void wait_for_cond_waiters(struct shm *s, int n)
{
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&s->m);
        int w = atomic_load(&s->waiting);
        pthread_mutex_unlock(&s->m);
        if (w >= n)
            return;
        usleep(1000);
    }
    diff_out("waiters never arrived");
}

/* A thread that counts while the case waits: it proves a wait parked
 * only its own thread. */
static atomic_int ticks;
static atomic_int ticking;
static void *ticker(void *arg)
{
    (void)arg;
    while (atomic_load(&ticking)) {
        atomic_fetch_add(&ticks, 1);
        usleep(2000);
    }
    return NULL;
}

/* --------------------------------------------------- mutexes, threads */

struct try_arg {
    pthread_mutex_t *m;
    int trylock, unlock;
};

static void *try_from_other(void *arg)
{
    struct try_arg *a = arg;
    a->trylock = pthread_mutex_trylock(a->m);
    a->unlock = pthread_mutex_unlock(a->m);
    return NULL;
}

static void other_thread_tries(const char *what, pthread_mutex_t *m)
{
    struct try_arg a = { .m = m };
    pthread_join(diff_spawn(try_from_other, &a), NULL);
    diff_out("%s: other thread trylock=%s unlock=%s", what, diff_errname(a.trylock),
             diff_errname(a.unlock));
}

DIFF_CASE(pshared, recursive_mutex_held_by_one_thread_is_busy_for_another)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_RECURSIVE, true, false);
    CALL("lock", pthread_mutex_lock(&s->m));
    CALL("trylock again (depth 2)", pthread_mutex_trylock(&s->m));
    other_thread_tries("held twice", &s->m);
    CALL("unlock 1", pthread_mutex_unlock(&s->m));
    other_thread_tries("held once", &s->m);
    CALL("unlock 2", pthread_mutex_unlock(&s->m));
    CALL("unlock 3", pthread_mutex_unlock(&s->m));
    other_thread_tries("free", &s->m);
}

DIFF_CASE(pshared, errorcheck_mutex_relock_is_edeadlk_and_unlock_by_another_thread_eperm)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_ERRORCHECK, true, false);
    CALL("lock", pthread_mutex_lock(&s->m));
    CALL("lock again", pthread_mutex_lock(&s->m));
    CALL("trylock again", pthread_mutex_trylock(&s->m));
    other_thread_tries("held", &s->m);
    CALL("unlock", pthread_mutex_unlock(&s->m));
    CALL("unlock again", pthread_mutex_unlock(&s->m));
}

DIFF_CASE(pshared, normal_mutex_is_busy_for_another_thread)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_NORMAL, true, false);
    CALL("lock", pthread_mutex_lock(&s->m));
    CALL("trylock by holder", pthread_mutex_trylock(&s->m));
    struct try_arg a = { .m = &s->m };
    pthread_join(diff_spawn(try_from_other, &a), NULL);
    diff_out("other thread trylock=%s", diff_errname(a.trylock));
    /* the other thread's unlock released it (glibc: a normal mutex). */
    CALL("trylock after", pthread_mutex_trylock(&s->m));
    CALL("unlock", pthread_mutex_unlock(&s->m));
}

DIFF_CASE(pshared, robust_errorcheck_mutex_ownership_is_per_thread)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_ERRORCHECK, false, true);
    CALL("lock", pthread_mutex_lock(&s->m));
    CALL("lock again", pthread_mutex_lock(&s->m));
    other_thread_tries("held", &s->m);
    CALL("unlock", pthread_mutex_unlock(&s->m));
    other_thread_tries("free", &s->m);
}

static void *hold_then_unlock(void *arg)
{
    struct shm *s = arg;
    pthread_mutex_lock(&s->m);
    atomic_store(&s->flag, 1);
    usleep(100000);
    pthread_mutex_unlock(&s->m);
    return NULL;
}

DIFF_CASE(pshared, mutex_lock_waits_for_the_holding_thread_while_others_run)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_ERRORCHECK, true, false);
    pthread_t h = diff_spawn(hold_then_unlock, s);
    wait_for(&s->flag, 1);
    atomic_store(&ticks, 0);
    atomic_store(&ticking, 1);
    pthread_t tk = diff_spawn(ticker, NULL);
    int64_t t0 = diff_now();
    CALL("lock", pthread_mutex_lock(&s->m));
    DIFF_TOOK("lock", t0, 50, 2000);
    atomic_store(&ticking, 0);
    pthread_join(tk, NULL);
    diff_out("ticker ran meanwhile: %s", atomic_load(&ticks) >= 5 ? "yes" : "no");
    CALL("unlock", pthread_mutex_unlock(&s->m));
    pthread_join(h, NULL);
}

DIFF_CASE(pshared, mutex_timedlock_times_out_while_another_thread_holds_it)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_RECURSIVE, true, false);
    pthread_t h = diff_spawn(hold_then_unlock, s);
    wait_for(&s->flag, 1);
    struct timespec ts = diff_abs_in(CLOCK_REALTIME, 30);
    int64_t t0 = diff_now();
    CALL("timedlock", pthread_mutex_timedlock(&s->m, &ts));
    DIFF_TOOK("timedlock", t0, 20, 90);
    pthread_join(h, NULL);
    CALL("trylock once free", pthread_mutex_trylock(&s->m));
    CALL("unlock", pthread_mutex_unlock(&s->m));
}

/* ---------------------------------------------------- mutexes, fork */

DIFF_CASE(pshared, mutex_held_by_the_parent_is_busy_for_the_child)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_RECURSIVE, true, false);
    CALL("parent lock", pthread_mutex_lock(&s->m));
    pid_t pid = fork();
    if (pid == 0) {
        int e = pthread_mutex_trylock(&s->m);
        _exit(e == EBUSY ? 0 : 10 + e);
    }
    diff_child_status("child trylock (0 = EBUSY)", pid);
    CALL("parent unlock", pthread_mutex_unlock(&s->m));
    pid = fork();
    if (pid == 0) {
        int e = pthread_mutex_trylock(&s->m);
        int u = pthread_mutex_unlock(&s->m);
        _exit(e * 10 + u);
    }
    diff_child_status("child trylock then unlock of a free one", pid);
}

DIFF_CASE(pshared, child_lock_waits_until_the_parent_unlocks)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_NORMAL, true, false);
    CALL("parent lock", pthread_mutex_lock(&s->m));
    pid_t pid = fork();
    if (pid == 0) {
        atomic_store(&s->flag, 1);
        int64_t t0 = diff_now();
        int e = pthread_mutex_lock(&s->m);
        DIFF_TOOK("child lock", t0, 50, 3000);
        pthread_mutex_unlock(&s->m);
        _exit(e);
    }
    wait_for(&s->flag, 1);
    usleep(100000);
    int u = pthread_mutex_unlock(&s->m);
    diff_child_status("child", pid);   /* first: the child prints as it wakes */
    diff_out("parent unlock: %s", diff_errname(u));
}

DIFF_CASE(pshared, errorcheck_mutex_locked_before_fork_is_not_the_childs)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_ERRORCHECK, true, false);
    CALL("parent lock", pthread_mutex_lock(&s->m));
    pid_t pid = fork();
    if (pid == 0) {
        diff_out("child trylock: %s", diff_errname(pthread_mutex_trylock(&s->m)));
        diff_out("child unlock: %s", diff_errname(pthread_mutex_unlock(&s->m)));
        _exit(0);
    }
    diff_child_status("child", pid);
    CALL("parent unlock", pthread_mutex_unlock(&s->m));
}

DIFF_CASE(pshared, robust_mutex_of_a_dead_child_gives_eownerdead_then_consistent)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_NORMAL, true, true);
    pid_t pid = fork();
    if (pid == 0) {
        int e = pthread_mutex_lock(&s->m);
        _exit(e);   /* dies holding it */
    }
    diff_child_status("child locked and exited", pid);
    CALL("parent lock", pthread_mutex_lock(&s->m));
    CALL("consistent", pthread_mutex_consistent(&s->m));
    CALL("unlock", pthread_mutex_unlock(&s->m));
    CALL("lock again", pthread_mutex_lock(&s->m));
    CALL("unlock again", pthread_mutex_unlock(&s->m));
}

DIFF_CASE(pshared, robust_mutex_not_made_consistent_becomes_unrecoverable)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_ERRORCHECK, true, true);
    pid_t pid = fork();
    if (pid == 0)
        _exit(pthread_mutex_lock(&s->m));
    diff_child_status("child locked and exited", pid);
    CALL("trylock", pthread_mutex_trylock(&s->m));
    CALL("unlock without consistent", pthread_mutex_unlock(&s->m));
    CALL("lock", pthread_mutex_lock(&s->m));
    CALL("trylock", pthread_mutex_trylock(&s->m));
}

DIFF_CASE(pshared, robust_mutex_lock_waits_for_a_child_that_dies_holding_it)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_NORMAL, true, true);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&s->m);
        atomic_store(&s->flag, 1);
        usleep(100000);
        _exit(0);
    }
    wait_for(&s->flag, 1);
    int64_t t0 = diff_now();
    CALL("parent lock", pthread_mutex_lock(&s->m));
    DIFF_TOOK("parent lock", t0, 50, 3000);
    CALL("consistent", pthread_mutex_consistent(&s->m));
    CALL("unlock", pthread_mutex_unlock(&s->m));
    diff_child_status("child", pid);
}

/* --------------------------------------------------- condition variables */

/* A child process that waits once on the case's cond (timed when ms > 0)
 * and exits with the result; it checks it holds the mutex on return. */
static void cond_child(struct shm *s, int ms)
{
    pthread_mutex_lock(&s->m);
    atomic_fetch_add(&s->waiting, 1);
    int e;
    if (ms > 0) {
        struct timespec ts = diff_abs_in(CLOCK_REALTIME, ms);
        e = pthread_cond_timedwait(&s->c, &s->m, &ts);
    } else {
        do
            e = pthread_cond_wait(&s->c, &s->m);
        while (e == 0 && !s->predicate);
    }
    atomic_fetch_add(&s->done, 1);
    int held = pthread_mutex_unlock(&s->m) == 0;
    _exit(e == 0 ? (held ? 0 : 9) : (e == ETIMEDOUT ? 1 : 10 + e));
}

DIFF_CASE(pshared, cond_signal_from_the_parent_wakes_a_waiting_child)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_ERRORCHECK, true, false);
    cond_make(&s->c);
    pid_t pid = fork();
    if (pid == 0)
        cond_child(s, 0);
    wait_for_cond_waiters(s, 1);
    pthread_mutex_lock(&s->m);
    s->predicate = 1;
    CALL("signal", pthread_cond_signal(&s->c));
    pthread_mutex_unlock(&s->m);
    diff_child_status("child (0 = woke holding the mutex)", pid);
    CALL("destroy", pthread_cond_destroy(&s->c));
}

DIFF_CASE(pshared, cond_broadcast_wakes_waiters_in_two_children)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_NORMAL, true, false);
    cond_make(&s->c);
    pid_t p1 = fork();
    if (p1 == 0)
        cond_child(s, 0);
    pid_t p2 = fork();
    if (p2 == 0)
        cond_child(s, 0);
    wait_for_cond_waiters(s, 2);
    pthread_mutex_lock(&s->m);
    s->predicate = 1;
    CALL("broadcast", pthread_cond_broadcast(&s->c));
    pthread_mutex_unlock(&s->m);
    diff_child_status("child 1", p1);
    diff_child_status("child 2", p2);
}

DIFF_CASE(pshared, cond_signal_wakes_one_of_two_waiting_children)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_NORMAL, true, false);
    cond_make(&s->c);
    pid_t p[2];
    for (int i = 0; i < 2; i++)
        if ((p[i] = fork()) == 0)
            cond_child(s, 700);
    wait_for_cond_waiters(s, 2);
    CALL("signal", pthread_cond_signal(&s->c));
    int woken = 0, timedout = 0;
    for (int i = 0; i < 2; i++) {
        int st = 0;
        waitpid(p[i], &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            woken++;
        else if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
            timedout++;
    }
    diff_out("woken %d, timed out %d", woken, timedout);
}

DIFF_CASE(pshared, cond_wait_returns_to_the_child_holding_the_mutex)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_NORMAL, true, false);
    cond_make(&s->c);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&s->m);
        atomic_fetch_add(&s->waiting, 1);
        while (!s->predicate)
            pthread_cond_wait(&s->c, &s->m);
        atomic_store(&s->flag, 1);
        usleep(100000);   /* holds the mutex meanwhile */
        pthread_mutex_unlock(&s->m);
        _exit(0);
    }
    wait_for_cond_waiters(s, 1);
    pthread_mutex_lock(&s->m);
    s->predicate = 1;
    pthread_cond_signal(&s->c);
    pthread_mutex_unlock(&s->m);
    wait_for(&s->flag, 1);
    CALL("parent trylock while the child holds it", pthread_mutex_trylock(&s->m));
    diff_child_status("child", pid);
    CALL("parent trylock after", pthread_mutex_trylock(&s->m));
}

DIFF_CASE(pshared, cond_timedwait_times_out_with_the_mutex_held)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_ERRORCHECK, true, false);
    cond_make(&s->c);
    pthread_mutex_lock(&s->m);
    struct timespec ts = diff_abs_in(CLOCK_REALTIME, 30);
    int64_t t0 = diff_now();
    CALL("timedwait", pthread_cond_timedwait(&s->c, &s->m, &ts));
    DIFF_TOOK("timedwait", t0, 20, 90);
    other_thread_tries("after timeout", &s->m);
    CALL("unlock", pthread_mutex_unlock(&s->m));
}

DIFF_CASE(pshared, cond_wait_without_holding_an_errorcheck_mutex_is_eperm)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_ERRORCHECK, true, false);
    cond_make(&s->c);
    CALL("wait", pthread_cond_wait(&s->c, &s->m));
    struct timespec ts = diff_abs_in(CLOCK_REALTIME, 10);
    CALL("timedwait", pthread_cond_timedwait(&s->c, &s->m, &ts));
}

DIFF_CASE(pshared, cond_destroy_right_after_broadcast_to_children_then_memory_reused)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_NORMAL, true, false);
    cond_make(&s->c);
    pid_t p[3];
    for (int i = 0; i < 3; i++)
        if ((p[i] = fork()) == 0)
            cond_child(s, i == 1 ? 3000 : 0);
    wait_for_cond_waiters(s, 3);
    pthread_mutex_lock(&s->m);
    s->predicate = 1;
    CALL("broadcast", pthread_cond_broadcast(&s->c));
    pthread_mutex_unlock(&s->m);
    CALL("destroy", pthread_cond_destroy(&s->c));
    memset(&s->c, 0xff, sizeof s->c);
    for (int i = 0; i < 3; i++)
        diff_child_status("child", p[i]);
}

static void *cond_thread(void *arg)
{
    struct shm *s = arg;
    pthread_mutex_lock(&s->m);
    atomic_fetch_add(&s->waiting, 1);
    int e, n = atomic_load(&s->waiting);
    if (n & 1) {
        struct timespec ts = diff_abs_in(CLOCK_REALTIME, 3000);
        do
            e = pthread_cond_timedwait(&s->c, &s->m, &ts);
        while (e == 0 && !s->predicate);
    } else {
        do
            e = pthread_cond_wait(&s->c, &s->m);
        while (e == 0 && !s->predicate);
    }
    s->results[n - 1] = e;
    pthread_mutex_unlock(&s->m);
    return NULL;
}

/* The woken waiters have not run yet when the memory is overwritten. */
static void destroy_after_broadcast_threads(bool pshared)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_NORMAL, pshared, false);
    if (pshared)
        cond_make(&s->c);
    else
        pthread_cond_init(&s->c, NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        t[i] = diff_spawn(cond_thread, s);
    wait_for_cond_waiters(s, 4);
    pthread_mutex_lock(&s->m);
    s->predicate = 1;
    CALL("broadcast", pthread_cond_broadcast(&s->c));
    pthread_mutex_unlock(&s->m);
    CALL("destroy", pthread_cond_destroy(&s->c));
    memset(&s->c, 0xff, sizeof s->c);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        diff_out("waiter %d: %s", i + 1, diff_errname(s->results[i]));
}

DIFF_CASE(pshared, cond_destroy_right_after_broadcast_leaves_woken_threads_unharmed)
{
    destroy_after_broadcast_threads(true);
}

DIFF_CASE(pshared, private_cond_destroy_right_after_broadcast_leaves_woken_threads_unharmed)
{
    destroy_after_broadcast_threads(false);
}

DIFF_CASE(pshared, cond_wait_in_a_child_parks_only_its_thread)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_NORMAL, true, false);
    cond_make(&s->c);
    pid_t pid = fork();
    if (pid == 0) {
        atomic_store(&ticks, 0);
        atomic_store(&ticking, 1);
        pthread_t tk = diff_spawn(ticker, NULL);
        pthread_mutex_lock(&s->m);
        atomic_fetch_add(&s->waiting, 1);
        while (!s->predicate)
            pthread_cond_wait(&s->c, &s->m);
        pthread_mutex_unlock(&s->m);
        atomic_store(&ticking, 0);
        pthread_join(tk, NULL);
        _exit(atomic_load(&ticks) >= 10 ? 0 : 1);
    }
    wait_for_cond_waiters(s, 1);
    usleep(100000);
    pthread_mutex_lock(&s->m);
    s->predicate = 1;
    pthread_cond_broadcast(&s->c);
    pthread_mutex_unlock(&s->m);
    diff_child_status("child (0 = its ticker ran during the wait)", pid);
}

/* -------------------------------------------------------------- barriers */

DIFF_CASE(pshared, barrier_across_fork_releases_both_with_one_serial)
{
    struct shm *s = shm_new();
    barrier_make(&s->b, 2);
    pid_t pid = fork();
    if (pid == 0) {
        int r = pthread_barrier_wait(&s->b);
        _exit(r == PTHREAD_BARRIER_SERIAL_THREAD ? 1 : r == 0 ? 0 : 2);
    }
    usleep(50000);
    int r = pthread_barrier_wait(&s->b);
    int st = 0;
    waitpid(pid, &st, 0);
    int serials = (r == PTHREAD_BARRIER_SERIAL_THREAD) + (WEXITSTATUS(st) == 1);
    diff_out("parent %s, serial threads %d",
             r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD ? "ok" : diff_errname(r), serials);
    CALL("destroy", pthread_barrier_destroy(&s->b));
}

DIFF_CASE(pshared, barrier_serves_three_rounds_for_parent_and_two_children)
{
    struct shm *s = shm_new();
    barrier_make(&s->b, 3);
    pid_t p[2];
    for (int i = 0; i < 2; i++)
        if ((p[i] = fork()) == 0) {
            int serial = 0;
            for (int r = 0; r < 3; r++) {
                usleep(10000 * (i + 1));
                serial += pthread_barrier_wait(&s->b) == PTHREAD_BARRIER_SERIAL_THREAD;
                atomic_fetch_add(&s->done, 1);
            }
            _exit(serial);
        }
    int serial = 0, ok = 1;
    for (int r = 0; r < 3; r++) {
        serial += pthread_barrier_wait(&s->b) == PTHREAD_BARRIER_SERIAL_THREAD;
        /* nobody may be past round r+1 before everyone reached it */
        if (atomic_load(&s->done) > 2 * (r + 1))
            ok = 0;
    }
    for (int i = 0; i < 2; i++) {
        int st = 0;
        waitpid(p[i], &st, 0);
        serial += WEXITSTATUS(st);
    }
    diff_out("rounds kept: %s, serial threads %d", ok ? "yes" : "no", serial);
}

DIFF_CASE(pshared, barrier_wait_in_a_child_parks_only_its_thread)
{
    struct shm *s = shm_new();
    barrier_make(&s->b, 2);
    pid_t pid = fork();
    if (pid == 0) {
        atomic_store(&ticks, 0);
        atomic_store(&ticking, 1);
        pthread_t tk = diff_spawn(ticker, NULL);
        pthread_barrier_wait(&s->b);
        atomic_store(&ticking, 0);
        pthread_join(tk, NULL);
        _exit(atomic_load(&ticks) >= 10 ? 0 : 1);
    }
    usleep(100000);
    pthread_barrier_wait(&s->b);
    diff_child_status("child (0 = its ticker ran during the wait)", pid);
}

/* --------------------------------------------------------------- rwlocks */

DIFF_CASE(pshared, rwlock_written_by_the_parent_is_busy_for_the_child_until_unlocked)
{
    struct shm *s = shm_new();
    rwlock_make(&s->rw);
    CALL("parent wrlock", pthread_rwlock_wrlock(&s->rw));
    pid_t pid = fork();
    if (pid == 0) {
        diff_out("child tryrdlock: %s", diff_errname(pthread_rwlock_tryrdlock(&s->rw)));
        diff_out("child trywrlock: %s", diff_errname(pthread_rwlock_trywrlock(&s->rw)));
        atomic_store(&s->flag, 1);
        int64_t t0 = diff_now();
        int e = pthread_rwlock_rdlock(&s->rw);
        DIFF_TOOK("child rdlock", t0, 50, 3000);
        diff_out("child rdlock: %s", diff_errname(e));
        pthread_rwlock_unlock(&s->rw);
        _exit(0);
    }
    wait_for(&s->flag, 1);
    usleep(100000);
    int u = pthread_rwlock_unlock(&s->rw);
    diff_child_status("child", pid);
    diff_out("parent unlock: %s", diff_errname(u));
    CALL("destroy", pthread_rwlock_destroy(&s->rw));
}

DIFF_CASE(pshared, rwlock_readers_in_parent_and_child_share_it_and_a_writer_times_out)
{
    struct shm *s = shm_new();
    rwlock_make(&s->rw);
    CALL("parent rdlock", pthread_rwlock_rdlock(&s->rw));
    pid_t pid = fork();
    if (pid == 0) {
        int r = pthread_rwlock_tryrdlock(&s->rw);
        struct timespec ts = diff_abs_in(CLOCK_REALTIME, 30);
        int w = pthread_rwlock_timedwrlock(&s->rw, &ts);
        if (r == 0)
            pthread_rwlock_unlock(&s->rw);
        _exit(r * 10 + (w == ETIMEDOUT ? 1 : w == 0 ? 0 : 2));
    }
    diff_child_status("child (1 = read shared, write timed out)", pid);
    CALL("parent destroy while read", pthread_rwlock_destroy(&s->rw));
    CALL("parent unlock", pthread_rwlock_unlock(&s->rw));
    CALL("parent trywrlock", pthread_rwlock_trywrlock(&s->rw));
    CALL("parent unlock", pthread_rwlock_unlock(&s->rw));
}

DIFF_CASE(pshared, rwlock_relocked_by_its_writer_is_edeadlk_and_busy_for_other_threads)
{
    struct shm *s = shm_new();
    rwlock_make(&s->rw);
    CALL("wrlock", pthread_rwlock_wrlock(&s->rw));
    CALL("wrlock again", pthread_rwlock_wrlock(&s->rw));
    CALL("rdlock while writing", pthread_rwlock_rdlock(&s->rw));
    CALL("trywrlock again", pthread_rwlock_trywrlock(&s->rw));
    CALL("unlock", pthread_rwlock_unlock(&s->rw));
    CALL("rdlock", pthread_rwlock_rdlock(&s->rw));
    CALL("rdlock twice", pthread_rwlock_rdlock(&s->rw));
    CALL("unlock", pthread_rwlock_unlock(&s->rw));
    CALL("unlock", pthread_rwlock_unlock(&s->rw));
}

/* ------------------------------------------------------------ semaphores */

DIFF_CASE(pshared, sem_wait_in_a_child_parks_only_its_thread_until_the_parent_posts)
{
    struct shm *s = shm_new();
    CALL("sem_init", sem_init(&s->s, 1, 0));
    pid_t pid = fork();
    if (pid == 0) {
        atomic_store(&ticks, 0);
        atomic_store(&ticking, 1);
        pthread_t tk = diff_spawn(ticker, NULL);
        atomic_store(&s->flag, 1);
        int64_t t0 = diff_now();
        int r = sem_wait(&s->s);
        DIFF_TOOK("child sem_wait", t0, 50, 3000);
        atomic_store(&ticking, 0);
        pthread_join(tk, NULL);
        _exit(r == 0 && atomic_load(&ticks) >= 10 ? 0 : 1);
    }
    wait_for(&s->flag, 1);
    usleep(100000);
    int r = sem_post(&s->s);
    diff_child_status("child (0 = woke, its ticker ran meanwhile)", pid);
    diff_out("parent post: %d", r);
    int v = -1;
    sem_getvalue(&s->s, &v);
    diff_out("value %d", v);
}

/* Voluntary context switches of every thread of pid (from /proc). */
static long voluntary_switches(pid_t pid)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "cat /proc/%d/task/*/status 2>/dev/null", (int)pid);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    long sum = 0, v;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
            sum += v;
    pclose(f);
    return sum;
}

/* A process whose one thread waits on a process-shared semaphore sleeps
 * in the kernel until the post: it does not wake up to look every few
 * milliseconds (the shim's try-and-nap did, about 60 times in 300 ms),
 * and its wait is the kernel's, ordered by priority among processes. */
DIFF_CASE(pshared, sem_wait_of_a_lone_child_sleeps_until_the_post)
{
    struct shm *s = shm_new();
    CALL("sem_init", sem_init(&s->s, 1, 0));
    pid_t pid = fork();
    if (pid == 0) {
        atomic_store(&s->flag, 1);
        int r = sem_wait(&s->s);
        _exit(r == 0 ? 0 : 1);
    }
    wait_for(&s->flag, 1);
    usleep(50000);
    long before = voluntary_switches(pid);
    usleep(300000);
    long after = voluntary_switches(pid);
    diff_out("child woke fewer than 10 times in 300 ms while it waited: %s",
             before >= 0 && after - before < 10 ? "yes" : "no");
    CALL("sem_post", sem_post(&s->s));
    diff_child_status("child", pid);
}

DIFF_CASE(pshared, sem_post_from_a_child_wakes_the_parent)
{
    struct shm *s = shm_new();
    CALL("sem_init", sem_init(&s->s, 1, 0));
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        _exit(sem_post(&s->s) == 0 ? 0 : 1);
    }
    int64_t t0 = diff_now();
    CALL("parent sem_wait", sem_wait(&s->s));
    DIFF_TOOK("parent sem_wait", t0, 30, 3000);
    diff_child_status("child", pid);
}

DIFF_CASE(pshared, sem_timedwait_times_out_with_etimedout)
{
    struct shm *s = shm_new();
    CALL("sem_init", sem_init(&s->s, 1, 0));
    struct timespec ts = diff_abs_in(CLOCK_REALTIME, 30);
    int64_t t0 = diff_now();
    CALL("sem_timedwait", sem_timedwait(&s->s, &ts));
    DIFF_TOOK("sem_timedwait", t0, 20, 90);
    ts = diff_abs_in(CLOCK_MONOTONIC, 30);
    t0 = diff_now();
    CALL("sem_clockwait monotonic", sem_clockwait(&s->s, CLOCK_MONOTONIC, &ts));
    DIFF_TOOK("sem_clockwait", t0, 20, 90);
    CALL("sem_destroy", sem_destroy(&s->s));
}

DIFF_CASE(pshared, sem_timedwait_with_a_bad_nsec_is_einval_unless_a_unit_is_there)
{
    struct shm *s = shm_new();
    CALL("sem_init", sem_init(&s->s, 1, 1));
    struct timespec bad = { .tv_sec = 0, .tv_nsec = 1000000000 };
    CALL("sem_timedwait with a unit", sem_timedwait(&s->s, &bad));
    CALL("sem_timedwait without", sem_timedwait(&s->s, &bad));
    CALL("sem_trywait", sem_trywait(&s->s));
}

DIFF_CASE(pshared, sem_timedwait_in_a_child_gets_the_parents_post_before_the_deadline)
{
    struct shm *s = shm_new();
    CALL("sem_init", sem_init(&s->s, 1, 0));
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = diff_abs_in(CLOCK_REALTIME, 3000);
        int64_t t0 = diff_now();
        int r = sem_timedwait(&s->s, &ts);
        DIFF_TOOK("child sem_timedwait", t0, 30, 2000);
        _exit(r == 0 ? 0 : 1);
    }
    usleep(50000);
    int r = sem_post(&s->s);
    diff_child_status("child", pid);
    diff_out("parent post: %d", r);
}

/* ------------------------------------------- robust holders, cancellation */

static void *lock_and_end(void *arg)
{
    struct shm *s = arg;
    return (void *)(intptr_t)pthread_mutex_lock(&s->m);   /* ends holding it */
}

DIFF_CASE(pshared, robust_mutex_of_an_ended_thread_gives_eownerdead_then_consistent)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_RECURSIVE, true, true);
    void *r = NULL;
    pthread_join(diff_spawn(lock_and_end, s), &r);
    diff_out("thread lock: %s", diff_errname((int)(intptr_t)r));
    CALL("lock", pthread_mutex_lock(&s->m));
    CALL("consistent", pthread_mutex_consistent(&s->m));
    CALL("lock again (recursive)", pthread_mutex_lock(&s->m));
    CALL("unlock", pthread_mutex_unlock(&s->m));
    CALL("unlock", pthread_mutex_unlock(&s->m));
    CALL("trylock", pthread_mutex_trylock(&s->m));
    CALL("unlock", pthread_mutex_unlock(&s->m));
}

DIFF_CASE(pshared, robust_mutex_of_an_ended_thread_unlocked_inconsistent_is_unrecoverable)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_NORMAL, false, true);
    pthread_join(diff_spawn(lock_and_end, s), NULL);
    CALL("trylock", pthread_mutex_trylock(&s->m));
    CALL("unlock without consistent", pthread_mutex_unlock(&s->m));
    CALL("lock", pthread_mutex_lock(&s->m));
}

static void cleanup_check(void *arg)
{
    struct shm *s = arg;
    /* errorcheck: unlock succeeds only for the holder */
    s->results[0] = pthread_mutex_unlock(&s->m);
}

static void *cancelled_waiter(void *arg)
{
    struct shm *s = arg;
    pthread_mutex_lock(&s->m);
    pthread_cleanup_push(cleanup_check, s);
    atomic_fetch_add(&s->waiting, 1);
    for (;;)
        pthread_cond_wait(&s->c, &s->m);
    pthread_cleanup_pop(0);
    return NULL;
}

DIFF_CASE(pshared, cond_wait_cancelled_holds_the_mutex_in_its_cleanup_handler)
{
    struct shm *s = shm_new();
    mutex_make(&s->m, PTHREAD_MUTEX_ERRORCHECK, true, false);
    cond_make(&s->c);
    s->results[0] = -1;
    pthread_t t = diff_spawn(cancelled_waiter, s);
    wait_for_cond_waiters(s, 1);
    CALL("cancel", pthread_cancel(t));
    void *r = NULL;
    CALL("join", pthread_join(t, &r));
    diff_out("canceled: %s, cleanup unlock: %s", r == PTHREAD_CANCELED ? "yes" : "no",
             diff_errname(s->results[0]));
    CALL("trylock", pthread_mutex_trylock(&s->m));
    CALL("destroy cond", pthread_cond_destroy(&s->c));
}

/* ---------------------------------------- semaphores: signals, cancel */

static volatile sig_atomic_t hits;
static void on_sig(int sig) { (void)sig; hits++; }

static void alarm_in_ms(int ms, int flags)
{
    struct sigaction sa = { .sa_handler = on_sig, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { .it_value = { ms / 1000, (ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

DIFF_CASE(pshared, sem_wait_is_interrupted_by_a_handler_with_eintr)
{
    struct shm *s = shm_new();
    CALL("sem_init", sem_init(&s->s, 1, 0));
    alarm_in_ms(50, 0);
    int64_t t0 = diff_now();
    CALL("sem_wait", sem_wait(&s->s));
    DIFF_TOOK("sem_wait", t0, 30, 2000);
    diff_out("handler ran %d", (int)hits);
    signal(SIGALRM, SIG_DFL);
}

DIFF_CASE(pshared, named_sem_wait_is_interrupted_by_a_handler_with_eintr)
{
    char name[64];
    snprintf(name, sizeof name, "/diff-pshared-%d", (int)getpid());
    sem_t *sem = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    if (sem == SEM_FAILED) {
        diff_out("sem_open failed");
        return;
    }
    sem_unlink(name);
    alarm_in_ms(50, 0);
    CALL("sem_wait", sem_wait(sem));
    diff_out("handler ran %d", (int)hits);
    signal(SIGALRM, SIG_DFL);
    sem_close(sem);
}

static void *sem_waiter(void *arg)
{
    struct shm *s = arg;
    atomic_store(&s->flag, 1);
    sem_wait(&s->s);
    return (void *)1;
}

DIFF_CASE(pshared, sem_wait_is_a_cancellation_point)
{
    struct shm *s = shm_new();
    CALL("sem_init", sem_init(&s->s, 1, 0));
    pthread_t t = diff_spawn(sem_waiter, s);
    wait_for(&s->flag, 1);
    usleep(20000);
    CALL("cancel", pthread_cancel(t));
    void *r = NULL;
    CALL("join", pthread_join(t, &r));
    diff_out("canceled: %s", r == PTHREAD_CANCELED ? "yes" : "no");
    CALL("post", sem_post(&s->s));
    int v = -1;
    sem_getvalue(&s->s, &v);
    diff_out("value %d (the cancelled waiter took nothing)", v);
}

/* ------------------------------------------ libc-only kinds, per thread */

static void relock_kinds(const char *what, int type, bool robust, int proto)
{
    pthread_mutex_t m;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    pthread_mutexattr_setrobust(&a, robust ? PTHREAD_MUTEX_ROBUST : PTHREAD_MUTEX_STALLED);
    pthread_mutexattr_setprotocol(&a, proto);
    int e = pthread_mutex_init(&m, &a);
    pthread_mutexattr_destroy(&a);
    int l = pthread_mutex_lock(&m);
    struct timespec ts = diff_abs_in(CLOCK_REALTIME, 20);
    int t = pthread_mutex_timedlock(&m, &ts);
    int tr = pthread_mutex_trylock(&m);
    struct try_arg o = { .m = &m };
    pthread_join(diff_spawn(try_from_other, &o), NULL);
    int u = pthread_mutex_unlock(&m);
    int d = pthread_mutex_destroy(&m);
    diff_out("%s: init=%s lock=%s timedlock again=%s trylock again=%s other trylock=%s "
             "other unlock=%s unlock=%s destroy=%s", what, diff_errname(e), diff_errname(l),
             diff_errname(t), diff_errname(tr), diff_errname(o.trylock), diff_errname(o.unlock),
             diff_errname(u), diff_errname(d));
}

DIFF_CASE(pshared, robust_and_priority_inheriting_mutexes_relocked_by_their_holder)
{
    relock_kinds("robust normal", PTHREAD_MUTEX_NORMAL, true, PTHREAD_PRIO_NONE);
    relock_kinds("robust errorcheck", PTHREAD_MUTEX_ERRORCHECK, true, PTHREAD_PRIO_NONE);
    relock_kinds("robust recursive", PTHREAD_MUTEX_RECURSIVE, true, PTHREAD_PRIO_NONE);
    relock_kinds("pi normal", PTHREAD_MUTEX_NORMAL, false, PTHREAD_PRIO_INHERIT);
    relock_kinds("pi errorcheck", PTHREAD_MUTEX_ERRORCHECK, false, PTHREAD_PRIO_INHERIT);
    relock_kinds("pi recursive", PTHREAD_MUTEX_RECURSIVE, false, PTHREAD_PRIO_INHERIT);
}

/* ------------------------------------------- futexes in shared memory */

/* A child that, after ms, wakes one waiter of *w without changing the word
 * (futex(2) allows it; LTP's checkpoints do it), trying for up to 3 s. */
static pid_t child_wakes_unchanged(uint32_t *w, int ms)
{
    pid_t pid = fork();
    if (pid == 0) {
        diff_raw_sleep_ms(ms);
        for (int k = 0; k < 300; k++) {
            if (syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0) == 1)
                _exit(0);
            diff_raw_sleep_ms(10);
        }
        _exit(1);
    }
    return pid;
}

/* The waiter is in this process, the waker in another, and the word never
 * changes: the wait must be the kernel's to be found. */
DIFF_CASE(pshared, a_shared_futex_wake_that_leaves_the_word_unchanged)
{
    uint32_t *w = diff_shared_map(sizeof *w);
    pthread_t tk = diff_ticker_start();
    pid_t pid = child_wakes_unchanged(w, 150);
    int64_t t0 = diff_now();
    WAITED("FUTEX_WAIT", syscall(SYS_futex, w, FUTEX_WAIT, 0, NULL, NULL, 0));
    DIFF_TOOK("the wait", t0, 100, 3000);
    int ran = diff_ticks() > 20;
    diff_ticker_stop(tk);
    diff_out("other threads ran meanwhile: %d", ran);
    diff_child_status("waker (0: it woke one)", pid);
}

static volatile sig_atomic_t fx_hits;
static void fx_on_alarm(int sig)
{
    (void)sig;
    fx_hits++;
}

/* Timeouts and signals of shared waits: FUTEX_WAIT's relative timeout and
 * FUTEX_WAIT_BITSET's absolute one; a handler fails a wait with EINTR,
 * but one without a timeout goes on under SA_RESTART (here until a child
 * wakes it without changing the word). */
DIFF_CASE(pshared, shared_futex_waits_time_out_and_are_interrupted)
{
    uint32_t *w = diff_shared_map(sizeof *w);
    struct timespec rel = { 0, 100 * 1000000 };
    int64_t t0 = diff_now();
    CALL("FUTEX_WAIT 100 ms", syscall(SYS_futex, w, FUTEX_WAIT, 0, &rel, NULL, 0));
    DIFF_TOOK("its timeout", t0, 60, 2000);
    struct timespec abs = diff_abs_in(CLOCK_MONOTONIC, 100);
    t0 = diff_now();
    CALL("FUTEX_WAIT_BITSET until +100 ms",
         syscall(SYS_futex, w, FUTEX_WAIT_BITSET, 0, &abs, NULL, FUTEX_BITSET_MATCH_ANY));
    DIFF_TOOK("its deadline", t0, 60, 2000);
    CALL("FUTEX_WAIT of another value", syscall(SYS_futex, w, FUTEX_WAIT, 5, NULL, NULL, 0));
    for (int restart = 0; restart < 2; restart++) {
        struct sigaction sa = { .sa_handler = fx_on_alarm, .sa_flags = restart ? SA_RESTART : 0 };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        fx_hits = 0;
        struct timespec long_rel = { 1, 0 };
        diff_alarm_ms(100);
        t0 = diff_now();
        CALL(restart ? "SA_RESTART, 1 s timeout" : "no SA_RESTART, 1 s timeout",
             syscall(SYS_futex, w, FUTEX_WAIT, 0, &long_rel, NULL, 0));
        DIFF_TOOK("interrupted", t0, 60, 800);
        pid_t pid = restart ? child_wakes_unchanged(w, 300) : -1;
        fx_hits = 0;
        diff_alarm_ms(100);
        t0 = diff_now();
        CALL(restart ? "SA_RESTART, no timeout" : "no SA_RESTART, no timeout",
             syscall(SYS_futex, w, FUTEX_WAIT, 0, NULL, NULL, 0));
        DIFF_TOOK("returned", t0, 60, 200);
        diff_out("handler ran %d", (int)fx_hits);
        if (pid > 0)
            diff_child_status("waker", pid);
    }
    signal(SIGALRM, SIG_DFL);
}

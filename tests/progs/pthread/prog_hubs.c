/*
 * prog_hubs.c - a plain pthread program that, under the shim with two or
 * more hubs, exercises what crosses hubs: 8 threads that each spin-wait on
 * a shared atomic without any call (only threads running in parallel can
 * all finish: each waits for every other to arrive), joined from main;
 * then 4 threads, one after the other (placement puts them on every hub),
 * that each fork a child that starts 8 threads, joins them, does pipe I/O
 * and exits 0.
 *
 * Prints key=value lines: threads (OS threads while the spinners run),
 * tids (distinct OS threads the spinners ran on), parallel (1: every
 * spinner saw every other arrive), forks_ok (children that exited 0),
 * cancel_rounds (of 100: a joiner cancelled in its join, then joined),
 * done=1. Natively every line holds too (threads are OS threads); exit 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include "../progutil.h"

#define SPINNERS 8
#define FORKERS 4

static atomic_int arrived;
static int spinners_expected;

static void *spinner(void *arg)
{
    (void)arg;
    atomic_fetch_add(&arrived, 1);
    /* No hooked call: waits for the others only if they run at the same
     * time, on another OS thread; a 10 s bound turns a failure into a
     * result instead of a hang (time() is vDSO, not a hooked call). */
    time_t end = time(NULL) + 10;
    while (atomic_load(&arrived) < spinners_expected && time(NULL) < end)
        ;
    return (void *)(intptr_t)syscall(SYS_gettid);
}

static void *kid(void *a)
{
    (void)a;
    struct timespec ts = { 0, 1000000 };
    nanosleep(&ts, NULL);
    return NULL;
}

static void *forker(void *a)
{
    (void)a;
    pid_t p = fork();
    if (p == 0) {
        pthread_t t[8];
        int ok = 0;
        for (int i = 0; i < 8; i++)
            pthread_create(&t[i], NULL, kid, NULL);
        for (int i = 0; i < 8; i++)
            ok += pthread_join(t[i], NULL) == 0;
        int pp[2];
        char c = 0;
        if (pipe(pp) == 0 && write(pp[1], "x", 1) == 1 && read(pp[0], &c, 1) != 1)
            c = 0;
        _exit(ok == 8 && c == 'x' ? 0 : 1);
    }
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) != p)
        return (void *)1;
    return (void *)(intptr_t)(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1);
}

/* A joiner cancelled while it joins a thread blocked on a mutex, then
 * joined itself (Open POSIX pthread_join/4-1): with two hubs the joiner,
 * the joined thread and main sit on different hubs, and the wake-ups go
 * through each hub's eventfd, written by a green thread. */
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static void *blocked(void *a)
{
    pthread_mutex_lock(&held);
    pthread_mutex_unlock(&held);
    return a;
}

static void *joiner(void *a)
{
    pthread_join(*(pthread_t *)a, NULL);
    return (void *)1;   /* not cancelled: wrong */
}

static int cancel_rounds(int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        pthread_t child, j;
        void *r = NULL;
        pthread_mutex_lock(&held);
        if (pthread_create(&child, NULL, blocked, NULL) != 0 ||
            pthread_create(&j, NULL, joiner, &child) != 0)
            return ok;
        sched_yield();
        pthread_cancel(j);
        int e = pthread_join(j, &r);
        pthread_mutex_unlock(&held);
        if (e == 0 && r == PTHREAD_CANCELED && pthread_join(child, NULL) == 0)
            ok++;
    }
    return ok;
}

int main(int argc, char **argv)
{
    /* How many spinners must be running at once: argv[1] (the hubs under
     * the shim; natively any number works). */
    spinners_expected = argc > 1 ? atoi(argv[1]) : 2;
    if (spinners_expected < 1 || spinners_expected > SPINNERS)
        spinners_expected = 2;
    pthread_t t[SPINNERS];
    for (int i = 0; i < SPINNERS; i++)
        if (pthread_create(&t[i], NULL, spinner, NULL) != 0)
            return 2;
    out("threads=%d", os_threads_of(0));
    pid_t tids[SPINNERS];
    int distinct = 0;
    for (int i = 0; i < SPINNERS; i++) {
        void *r = NULL;
        if (pthread_join(t[i], &r) != 0)
            return 3;
        pid_t id = (pid_t)(intptr_t)r;
        int k = 0;
        while (k < distinct && tids[k] != id)
            k++;
        if (k == distinct)
            tids[distinct++] = id;
    }
    out("tids=%d", distinct);
    out("parallel=%d", atomic_load(&arrived) >= spinners_expected);
    /* One forker at a time: placement alternates them over the hubs, and
     * an ASan-instrumented process deadlocked its forked children when
     * several threads forked at once (natively too: its allocator's fork
     * handling). */
    int ok = 0;
    for (int i = 0; i < FORKERS; i++) {
        pthread_t f;
        void *r = (void *)1;
        if (pthread_create(&f, NULL, forker, NULL) == 0 && pthread_join(f, &r) == 0)
            ok += r == NULL;
    }
    out("forks_ok=%d", ok);
    out("cancel_rounds=%d", cancel_rounds(100));
    out("done=1");
    return 0;
}

/*
 * offload.c - green_offload: run a blocking function on a real worker
 * thread while the calling green thread parks.
 *
 * A fixed pool of GREEN_WORKERS OS threads (started on first use) takes
 * jobs from one FIFO protected by a mutex and condition variable. When a job
 * is done, the worker posts it back to the caller's hub
 * (green__remote_post); the hub, on the caller's own OS thread, readies the
 * caller. If the caller stopped waiting (killed, or a timeout scope
 * expired) the job is marked abandoned, and whichever side comes last frees
 * it: the completion can never wake a thread that has moved on to another
 * park.
 *
 * The pool's own pthread calls are the real ones (real.h): under the
 * LD_PRELOAD shim the exported names would be green primitives.
 *
 * After fork the child has no workers: the pool is reset and restarts on
 * next use. Jobs that were queued or running in the parent are lost in the
 * child; a green thread of the forking OS thread that was parked in
 * green_offload stays parked in the child (kill it to release it).
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <pthread.h>
#include <string.h>

struct job {
    struct green__remote remote;   /* first: the hub hands us this */
    struct job *next;              /* pool queue link */
    void *(*fn)(void *);
    void *arg;
    void *result;
    struct green_thread *caller;
    struct green__ctx *ctx;
    bool abandoned;                /* caller gave up; owner thread only */
    bool completed;                /* owner thread only */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct job *qhead, *qtail;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static int nworkers;               /* started */
static int nready;                 /* reached their loop (see below) */
static int wanted;                 /* 0 = not configured: use the setting */

static void *worker_main(void *arg)
{
    (void)arg;
    GREEN_REAL(pthread_mutex_lock)(&lock);
    nready++;
    GREEN_REAL(pthread_cond_broadcast)(&ready_cond);
    GREEN_REAL(pthread_mutex_unlock)(&lock);
    for (;;) {
        GREEN_REAL(pthread_mutex_lock)(&lock);
        while (!qhead)
            GREEN_REAL(pthread_cond_wait)(&cond, &lock);
        struct job *j = qhead;
        qhead = j->next;
        if (!qhead)
            qtail = NULL;
        GREEN_REAL(pthread_mutex_unlock)(&lock);
        j->result = j->fn(j->arg);
        green__remote_post(j->ctx, &j->remote);
    }
    return NULL;
}

/* On the caller's OS thread, from the hub. */
static void job_done(struct green__remote *r)
{
    struct job *j = (struct job *)r;
    green__remote_expect(j->ctx, -1);
    if (j->abandoned) {
        free(j);
        return;
    }
    j->completed = true;
    green__ready(j->caller, 0);
}

static int start_workers_locked(void)
{
    int n = wanted ? wanted : green__offload_workers;
    /* Workers start with every signal blocked, whatever the caller's
     * mask: a process-directed signal must never land on them. */
    sigset_t old;
    green__block_all_signals(&old);
    while (nworkers < n) {
        pthread_t tid;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 256 * 1024);
        green__hubpolicy_attr(&a); /* system()'s children start from here */
        int e = GREEN_REAL(pthread_create)(&tid, &a, worker_main, NULL);
        pthread_attr_destroy(&a);
        if (e)
            break;
        nworkers++;
    }
    green__restore_signals(&old);
    /* The pool counts as started only once every worker has finished
     * starting: a fork while a new thread is still inside libc's or a
     * sanitizer's thread set-up (which takes allocator locks) would leave
     * those locks held in the child forever. One wait, once per process. */
    while (nready < nworkers)
        GREEN_REAL(pthread_cond_wait)(&ready_cond, &lock);
    return nworkers ? 0 : EAGAIN;
}

static void atfork_child(void)
{
    GREEN_REAL(pthread_mutex_init)(&lock, NULL);
    GREEN_REAL(pthread_cond_init)(&cond, NULL);
    GREEN_REAL(pthread_cond_init)(&ready_cond, NULL);
    qhead = qtail = NULL;
    nworkers = 0;
    nready = 0;
}

int green_offload_set_workers(int n)
{
    if (n < 1 || n > 256) {
        errno = EINVAL;
        return -1;
    }
    GREEN_REAL(pthread_mutex_lock)(&lock);
    int busy = nworkers > 0;
    if (!busy)
        wanted = n;
    GREEN_REAL(pthread_mutex_unlock)(&lock);
    if (busy) {
        errno = EBUSY;
        return -1;
    }
    return 0;
}

int green_offload(void *(*fn)(void *), void *arg, void **result)
{
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return -1;
    if (!fn) {
        errno = EINVAL;
        return -1;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        errno = ENOMEM;
        return -1;
    }
    *j = (struct job){ .remote.run = job_done, .fn = fn, .arg = arg,
                       .caller = c->current, .ctx = c };
    GREEN_REAL(pthread_mutex_lock)(&lock);
    int e = start_workers_locked();
    if (!e) {
        if (qtail)
            qtail->next = j;
        else
            qhead = j;
        qtail = j;
        GREEN_REAL(pthread_cond_signal)(&cond);
    }
    GREEN_REAL(pthread_mutex_unlock)(&lock);
    if (e) {
        free(j);
        errno = e;
        return -1;
    }
    green__remote_expect(c, +1);
    int code;
    do {
        code = green__park(GREEN_WHY_OFFLOAD, (uintptr_t)fn, NULL, GREEN_FOREVER);
    } while (code == 0 && !j->completed);
    if (code) {
        /* Killed or timed out. If job_done already ran (it readied us
         * too late: the kill had won), nobody else will free j. */
        if (j->completed)
            free(j);
        else
            j->abandoned = true;   /* job_done frees it */
        return green__result(code);
    }
    if (result)
        *result = j->result;
    free(j);
    return 0;
}

__attribute__((constructor)) static void offload_register_atfork(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

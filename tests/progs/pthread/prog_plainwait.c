/*
 * prog_plainwait.c - the redis/jemalloc pattern, as a plain pthread
 * program (never linked to libgreen) that tests/test_preload_pthread.c
 * runs under LD_PRELOAD=libgreen.so: a plain OS thread, created through
 * libc's own pthread_create (found with dlsym, as jemalloc finds it, so
 * the shim does not turn it into a green thread), waits on a
 * pthread_cond_t + pthread_mutex_t that the green main thread signals,
 * and shares a mutex and a semaphore with green pthreads. It prints
 * "key=value" lines: hooked (pthread_cond_wait resolves into the shim),
 * plain (the thread really is another OS thread), threads (OS threads
 * while 20 green pthreads and the plain one are alive: 2 under the
 * shim), and the counters that detect lost updates and lost wake-ups.
 * A second round does the same with a mutex that libc owns (a
 * priority-inheritance one: the shim leaves it to libc, as it does
 * jemalloc's own mutexes, which libc initialised before the shim's
 * constructor) beside a condition variable that the shim owns.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "../progutil.h"

#define JOBS      2000     /* jobs main hands to the plain thread */
#define GREENS    20       /* green pthreads hammering the shared mutex */
#define INCS      2000     /* increments per thread */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;     /* jobs */
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;       /* main -> plain */
static pthread_cond_t cv_done = PTHREAD_COND_INITIALIZER;  /* plain -> main */
static pthread_mutex_t cmu = PTHREAD_MUTEX_INITIALIZER;    /* counter */
static sem_t finished;                                     /* plain -> main */
static pthread_mutex_t lmu;                                /* libc's */
static pthread_cond_t lcv = PTHREAD_COND_INITIALIZER;
static int ljobs, ldone;
static int jobs, done, stop, timeouts;
static long counter;
static pid_t plain_tid;

static void bump(void)
{
    pthread_mutex_lock(&cmu);
    long v = counter;
    if ((v & 63) == 0)
        sched_yield();   /* widen the window a lost update would need */
    counter = v + 1;
    pthread_mutex_unlock(&cmu);
}

/* The plain OS thread: jemalloc's background thread. It sleeps on cv
 * (with a short timed wait now and then, so that timeouts race the
 * signals), takes a job, reports it on cv_done, and bumps the shared
 * counter between jobs. */
static void *plain_main(void *arg)
{
    (void)arg;
    plain_tid = (pid_t)syscall(SYS_gettid);
    for (int i = 0; i < INCS; i++)
        bump();
    pthread_mutex_lock(&mu);
    for (int n = 0;; n++) {
        while (!jobs && !stop) {
            if (n % 3 == 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 50000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                if (pthread_cond_timedwait(&cv, &mu, &ts) != 0)
                    timeouts++;
            } else {
                pthread_cond_wait(&cv, &mu);
            }
        }
        if (!jobs)
            break;
        jobs--;
        done++;
        pthread_cond_signal(&cv_done);
    }
    pthread_mutex_unlock(&mu);
    /* Round two: libc's mutex, the shim's condition variable. */
    pthread_mutex_lock(&lmu);
    while (ldone < JOBS / 4) {
        while (!ljobs)
            pthread_cond_wait(&lcv, &lmu);
        ljobs--;
        ldone++;
    }
    pthread_mutex_unlock(&lmu);
    sem_post(&finished);
    return NULL;
}

static void *green_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < INCS; i++)
        bump();
    return NULL;
}

int main(void)
{
    Dl_info di;
    int hooked = dladdr((void *)pthread_cond_wait, &di) && di.dli_fname &&
                 strstr(di.dli_fname, "libgreen") != NULL;
    out("hooked=%d", hooked);
    sem_init(&finished, 0, 0);
    pthread_mutexattr_t pi;
    pthread_mutexattr_init(&pi);
    pthread_mutexattr_setprotocol(&pi, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&lmu, &pi);
    pthread_mutex_lock(&mu);   /* under the shim: main adopts its hub */
    pthread_mutex_unlock(&mu);

    /* libc's pthread_create, as a library that looks it up itself would
     * find it when the shim is not in its way. */
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    int (*real_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
        libc ? (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))
                   dlsym(libc, "pthread_create")
             : NULL;
    if (!real_create)
        return 2;
    pthread_t plain;
    if (real_create(&plain, NULL, plain_main, NULL) != 0)
        return 3;

    pthread_t g[GREENS];
    for (int i = 0; i < GREENS; i++)
        if (pthread_create(&g[i], NULL, green_main, NULL) != 0)
            return 4;
    out("threads=%d", os_threads());

    /* Hand the jobs over one by one; wait until each is taken. */
    pthread_mutex_lock(&mu);
    for (int i = 0; i < JOBS; i++) {
        jobs++;
        pthread_cond_signal(&cv);
        while (done < i + 1)
            pthread_cond_wait(&cv_done, &mu);
        if (i % 100 == 0) {   /* let the plain thread time out meanwhile */
            pthread_mutex_unlock(&mu);
            usleep(200);
            pthread_mutex_lock(&mu);
        }
    }
    stop = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < JOBS / 4; i++) {
        pthread_mutex_lock(&lmu);
        ljobs++;
        pthread_cond_signal(&lcv);
        pthread_mutex_unlock(&lmu);
        if (i % 16 == 0)
            usleep(100);
    }
    for (int i = 0; i < GREENS; i++)
        pthread_join(g[i], NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    if (sem_timedwait(&finished, &ts) != 0)
        return 5;
    out("plain=%d", plain_tid != 0 && plain_tid != (pid_t)syscall(SYS_gettid));
    out("done=%d", done);
    out("libc_mutex_done=%d", ldone);
    out("counter=%ld", counter);
    out("expected=%d", (GREENS + 1) * INCS);
    out("timeouts_seen=%d", timeouts > 0);
    return 0;
}

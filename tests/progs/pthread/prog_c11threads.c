/*
 * prog_c11threads.c - a plain C11 <threads.h> program (never linked to
 * libgreen) for tests/test_preload_pthread.c. glibc implements thrd_* on
 * top of its pthreads internally, so the shim must interpose these names
 * too. Prints "key=value" lines, first "threads=N" while 100 threads wait
 * on a condition variable (about 1 under the shim, 101 natively).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdatomic.h>
#include <threads.h>
#include <time.h>
#include "../progutil.h"

static mtx_t m;
static cnd_t c;
static int arrived, go;
static once_flag once = ONCE_FLAG_INIT;
static int once_runs;
/* Destructors run as each thread ends, in parallel natively and with
 * several hubs: an atomic count. */
static atomic_int destructed;
static tss_t key;

static void init_once(void) { once_runs++; }
static void destroy(void *v) { atomic_fetch_add(&destructed, (int)(intptr_t)v); }

static int worker(void *arg)
{
    call_once(&once, init_once);
    tss_set(key, (void *)(intptr_t)1);
    mtx_lock(&m);
    arrived++;
    cnd_broadcast(&c);
    while (!go)
        cnd_wait(&c, &m);
    mtx_unlock(&m);
    struct timespec d = { .tv_nsec = 1000000 };
    thrd_sleep(&d, NULL);
    return (int)(intptr_t)arg * 2;
}

int main(void)
{
    mtx_init(&m, mtx_timed);
    cnd_init(&c);
    tss_create(&key, destroy);
    thrd_t t[100];
    for (int i = 0; i < 100; i++)
        if (thrd_create(&t[i], worker, (void *)(intptr_t)i) != thrd_success)
            return 2;
    mtx_lock(&m);
    while (arrived < 100)
        cnd_wait(&c, &m);
    printf("threads=%d\n", os_threads());
    go = 1;
    cnd_broadcast(&c);
    mtx_unlock(&m);
    int sum = 0;
    for (int i = 0; i < 100; i++) {
        int r = -1;
        if (thrd_join(t[i], &r) != thrd_success)
            return 3;
        sum += r;
    }
    printf("sum=%d\n", sum);
    printf("once_runs=%d\n", once_runs);
    printf("destructed=%d\n", atomic_load(&destructed));
    mtx_lock(&m);
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    ts.tv_nsec += 30000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    printf("cnd_timedwait=%s\n", cnd_timedwait(&c, &m, &ts) == thrd_timedout ? "timedout" : "other");
    mtx_unlock(&m);
    return 0;
}

/*
 * prog_sleeps.c - sleeps from 1 us to 1 s never return early.
 *
 * 20 pthreads sleep concurrently, each through a list of durations (1, 10,
 * 100 us, 1, 10, 100 ms; 1 s for two of them) with usleep, nanosleep,
 * clock_nanosleep relative and clock_nanosleep TIMER_ABSTIME on
 * CLOCK_MONOTONIC, measuring each with clock_gettime(CLOCK_MONOTONIC).
 * A sleep that returns 0 before its duration has passed is early. Total
 * time is bounded (about 1.5 s). Prints "SLEEPS samples=.. early=..
 * failed=.. worst_early_ns=.." and, per duration, the median overshoot
 * (for the record, not judged), then "PROOF"-style thread count while
 * all 20 sleep.
 */
#include "stress.h"

enum { THREADS = 20 };
static const int64_t durations[] = { 1000, 10000, 100000, 1000000, 10000000, 100000000 };
enum { ND = sizeof durations / sizeof *durations, METHODS = 4 };

static int samples, early, failed;
static int64_t worst_early;
static int64_t over[ND][THREADS * METHODS * 4];
static int nover[ND];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Sleep ns with method m; returns the call's result (0 = completed). */
static int do_sleep(int m, int64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
    switch (m) {
    case 0:
        return usleep((useconds_t)(ns / 1000));
    case 1:
        return nanosleep(&ts, NULL);
    case 2:
        return clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    default: {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t t = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec + ns;
        struct timespec abs = { (time_t)(t / 1000000000), (long)(t % 1000000000) };
        return clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
    }
    }
}

static void record(int d, int64_t ns, int64_t took, int r)
{
    pthread_mutex_lock(&mu);
    samples++;
    if (r != 0) {
        failed++;
    } else if (took < ns) {
        early++;
        if (ns - took > worst_early)
            worst_early = ns - took;
    } else if (nover[d] < (int)(sizeof over[d] / sizeof over[d][0])) {
        over[d][nover[d]++] = took - ns;
    }
    pthread_mutex_unlock(&mu);
}

static void *sleeper(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int d = 0; d < ND; d++)
        for (int m = 0; m < METHODS; m++) {
            int reps = durations[d] >= 100000000 ? 1 : 3;
            for (int k = 0; k < reps; k++) {
                int mm = (m + id) % METHODS;
                int64_t t0 = mono_ns();
                int r = do_sleep(mm, durations[d]);
                record(d, durations[d], mono_ns() - t0, r);
            }
        }
    if (id < 2) {                  /* two 1 s sleeps: the top of the range */
        int64_t t0 = mono_ns();
        int r = do_sleep(id + 1, 1000000000);
        record(ND - 1, 1000000000, mono_ns() - t0, r);
    }
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    alarm(30);
    prove_green();
    pthread_t t[THREADS];
    int64_t t0 = mono_ns();
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, sleeper, (void *)(intptr_t)i) != 0)
            DIE("pthread_create");
    sleep_ms(1);
    int during = os_threads();
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("SLEEPS samples=%d early=%d failed=%d worst_early_ns=%lld threads_during=%d ms=%lld\n",
           samples, early, failed, (long long)worst_early, during,
           (long long)((mono_ns() - t0) / 1000000));
    for (int d = 0; d < ND; d++) {
        qsort(over[d], (size_t)nover[d], sizeof over[d][0], cmp64);
        printf("OVERSHOOT asked_ns=%lld median_ns=%lld n=%d\n", (long long)durations[d],
               nover[d] ? (long long)over[d][nover[d] / 2] : -1LL, nover[d]);
    }
    return 0;
}

/*
 * prog_sleepers.c N MS - N pthreads each sleep MS milliseconds, in turn
 * with nanosleep, usleep, clock_nanosleep, poll and select. While they
 * sleep the main thread prints how many OS threads exist; at the end it
 * prints the elapsed time and how many sleeps returned early or failed.
 * Output: key=value lines.
 */
#include "progs_common.h"
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/select.h>
#include <unistd.h>

static int ms;
static int early, failed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *sleeper(void *arg)
{
    int kind = (int)(long)arg % 5;
    struct timespec t0, t1, req = { ms / 1000, (ms % 1000) * 1000000L };
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r;
    switch (kind) {
    case 0: r = nanosleep(&req, NULL); break;
    case 1: r = usleep((useconds_t)ms * 1000); break;
    case 2: r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL); break;
    case 3: r = poll(NULL, 0, ms); break;
    default: r = select(0, NULL, NULL, NULL, &tv); break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    pthread_mutex_lock(&lock);
    early += ns < (long long)ms * 1000000;
    failed += r != 0;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    ms = argc > 2 ? atoi(argv[2]) : 100;
    pthread_t *t = calloc((size_t)n, sizeof *t);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    printf("hooked_nanosleep=%d\n", hooked((void *)nanosleep));
    printf("hooked_pthread_create=%d\n", hooked((void *)pthread_create));
    long long t0 = mono_ms();
    int created = 0;
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], &a, sleeper, (void *)(long)i) == 0)
            created++;
    usleep(10000);
    printf("threads_while_sleeping=%d\n", os_threads());
    for (int i = 0; i < created; i++)
        pthread_join(t[i], NULL);
    printf("created=%d\nelapsed_ms=%lld\nearly=%d\nfailed=%d\n", created,
           mono_ms() - t0, early, failed);
    return 0;
}

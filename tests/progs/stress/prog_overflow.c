/*
 * prog_overflow.c - a pthread named "deep-recurser" (pthread_setname_np)
 * recurses until it overflows its 64 KiB stack, while a neighbour thread
 * keeps a checksummed pattern on its own stack and checks it on every
 * wake-up. Under the shim the overflow must hit the guard page: libgreen
 * reports the thread by name on stderr and the process dies of SIGSEGV.
 * If the neighbour ever finds its pattern damaged it prints "CORRUPTED"
 * and exits 3: the silent corruption this test exists to rule out.
 *
 * prog_overflow depth: no overflow, recurse only to a safe depth and
 * print "SAFE" (the control run).
 */
#include "stress.h"
#include <signal.h>

static volatile int stop;

static void *neighbour(void *arg)
{
    (void)arg;
    volatile unsigned char pattern[16384];
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(i * 31 + 7);
    while (!stop) {
        for (size_t i = 0; i < sizeof pattern; i++)
            if (pattern[i] != (unsigned char)(i * 31 + 7)) {
                printf("CORRUPTED at %zu\n", i);
                fflush(stdout);
                _exit(3);
            }
        usleep(1000);
    }
    return NULL;
}

static int recurse(int depth, int limit)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    frame[511] = (char)depth;
    if (limit && depth >= limit)
        return frame[0];
    if (depth % 16 == 0)
        sched_yield();             /* let the neighbour check meanwhile */
    return recurse(depth + 1, limit) + frame[511];
}

static int limit;
static void *deep(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "deep-recurser");
    sleep_ms(5);
    printf("DEPTH %d\n", recurse(1, limit));
    return NULL;
}

int main(int argc, char **argv)
{
    limit = argc > 1 ? atoi(argv[1]) : 0;
    alarm(30);
    prove_green();
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    pthread_t n1, d, n2;
    pthread_create(&n1, &a, neighbour, NULL);
    pthread_create(&d, &a, deep, NULL);
    pthread_create(&n2, &a, neighbour, NULL);
    pthread_join(d, NULL);
    stop = 1;
    pthread_join(n1, NULL);
    pthread_join(n2, NULL);
    printf("SAFE\n");
    return 0;
}

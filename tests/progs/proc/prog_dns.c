/*
 * prog_dns.c - getaddrinfo does not stop the other threads: a ticker
 * thread spins on sched_yield while the main thread resolves "localhost"
 * 20 times; the ticks counted during the lookups are printed, with the OS
 * thread count and whether getaddrinfo is libgreen's. Output: key=value.
 */
#include "../wait/progs_common.h"
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

static atomic_long ticks;
static atomic_bool stop;

static void *ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop) && atomic_load(&ticks) < 100000000)
        atomic_fetch_add(&ticks, 1), sched_yield();
    return NULL;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, ticker, NULL);
    /* Until the ticker runs: with several hubs it starts on another one,
     * and 20 fast lookups could end before it does. */
    while (atomic_load(&ticks) == 0)
        sched_yield();
    int ok = 0;
    long during = 0;
    for (int i = 0; i < 20; i++) {
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
        struct addrinfo *res = NULL;
        long before = atomic_load(&ticks);
        int r = getaddrinfo("localhost", "80", &hints, &res);
        during += atomic_load(&ticks) - before;
        if (r == 0 && res &&
            ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
            ok++;
        if (res)
            freeaddrinfo(res);
    }
    struct hostent *he = gethostbyname("localhost");
    printf("hooked_getaddrinfo=%d\nhooked_pthread_create=%d\n",
           hooked((void *)getaddrinfo), hooked((void *)pthread_create));
    printf("threads=%d\nlookups_ok=%d\nticks_during=%ld\n", os_threads(), ok, during);
    printf("gethostbyname_ok=%d\n", he && he->h_length == 4 &&
           !memcmp(he->h_addr_list[0], "\x7f\0\0\1", 4));
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    return 0;
}

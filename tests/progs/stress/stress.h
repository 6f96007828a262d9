/*
 * stress.h - helpers shared by the stress and fault child programs
 * (tests/test_stress.c runs them under LD_PRELOAD=$GREEN_LIB): the proof
 * that the shim is in charge, a per-connection byte stream every byte of
 * which can be checked, clocks, and the fd limit.
 *
 * The proof: prove_green() parks 200 pthreads in read() on a pipe and
 * reports "Threads:" of /proc/self/status while they are all alive. Under
 * the shim they are green threads on one OS thread (1, or 2 with the
 * offload/monitor thread); natively the count is 201. It also says whether
 * read() resolves to libgreen (dladdr).
 */
#ifndef STRESS_H
#define STRESS_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* "Threads:" of /proc/self/status, or -1. */
static inline int os_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8))
            n = atoi(line + 8);
    if (f)
        fclose(f);
    return n;
}

/* 1 when the definition of sym this program uses is libgreen's. */
static inline int hooked(void *sym)
{
    Dl_info di;
    return dladdr(sym, &di) && di.dli_fname && strstr(di.dli_fname, "libgreen");
}

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Stop the program with a message (exit code 2: a broken precondition). */
#define DIE(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); \
                      fflush(NULL); _exit(2); } while (0)

/* xorshift64*: one generator per connection. seed must not be 0. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ULL;
}

static inline uint64_t rng_seed(uint64_t v)
{
    return v * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
}

/* Uniform-ish in [lo, hi]. */
static inline uint64_t rng_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return lo + rng_next(s) % (hi - lo + 1);
}

/* A byte stream: byte i of stream k is a pure function of (k, i), so a
 * reader can check every byte wherever the chunk boundaries fall. */
static inline unsigned char stream_byte(uint64_t k, uint64_t i)
{
    uint64_t x = (k + 1) * 0x9E3779B97F4A7C15ULL ^ (i >> 3) * 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 29;
    return (unsigned char)(x >> (8 * (i & 7)));
}

static inline void stream_fill(uint64_t k, uint64_t off, unsigned char *b, size_t n)
{
    for (size_t j = 0; j < n; j++)
        b[j] = stream_byte(k, off + j);
}

/* Index of the first byte of b that is not stream k at off, or n. */
static inline size_t stream_check(uint64_t k, uint64_t off, const unsigned char *b, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (b[j] != stream_byte(k, off + j))
            return j;
    return n;
}

/* Raise the soft fd limit to the hard one (20000 on the test machines). */
static inline long raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

static int prove_pipe[2];
static void *prove_parked(void *arg)
{
    char c;
    (void)arg;
    if (read(prove_pipe[0], &c, 1) != 1)
        abort();
    return NULL;
}

/* Print "PROOF threads=N hooked=H": N = OS threads while 200 pthreads are
 * parked in read(). */
static inline void prove_green(void)
{
    enum { N = 200 };
    pthread_t t[N];
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    if (pipe(prove_pipe) < 0)
        DIE("pipe: %s", strerror(errno));
    for (int i = 0; i < N; i++)
        if (pthread_create(&t[i], &a, prove_parked, NULL) != 0)
            DIE("pthread_create failed");
    sleep_ms(20);
    int n = os_threads();
    char ones[N];
    memset(ones, 1, N);
    if (write(prove_pipe[1], ones, N) != N)
        DIE("write proof pipe");
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    close(prove_pipe[0]);
    close(prove_pipe[1]);
    pthread_attr_destroy(&a);
    printf("PROOF threads=%d hooked=%d\n", n, hooked((void *)read));
    fflush(stdout);
}

#endif

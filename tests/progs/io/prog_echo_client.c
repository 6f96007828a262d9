/*
 * prog_echo_client - N pthreads, each with its own blocking connection,
 * send random data in random-sized requests and check every echoed byte.
 * Usage: prog_echo_client PORT NCONN BYTES_PER_CONN [MAX_CHUNK]
 * All connections are open at once (a barrier), then every connection
 * echoes one byte and waits at a second barrier, so that no connection
 * ends before the server has accepted them all; then the random data.
 * Prints "THREADS <OS threads> LIVE <n>" at the barrier, then
 * "OK <conns> <bytes> REQUESTS <echo round trips>" or "FAIL <reason>" lines; exit status 0 on success.
 */
#include "progs_io.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

static int port, nconn, maxchunk = 4096;
static long bytes_per_conn;
static pthread_barrier_t barrier;
static atomic_int failures, alive;
static atomic_ullong verified, requests;

static void fail(int id, const char *what)
{
    if (atomic_fetch_add(&failures, 1) < 5)
        printf("FAIL conn %d: %s (%s)\n", id, what, strerror(errno));
}

static void exchange(int id, int fd)
{
    unsigned seed = (unsigned)id * 2654435761u + 1;
    char *out = malloc((size_t)maxchunk), *in = malloc((size_t)maxchunk);
    long left = bytes_per_conn;
    while (left > 0) {
        int n = 1 + (int)(rand_r(&seed) % (unsigned)maxchunk);
        if (n > left)
            n = (int)left;
        for (int k = 0; k < n; k++)
            out[k] = (char)rand_r(&seed);
        if (prog_write_all(fd, out, (size_t)n) != 0) {
            fail(id, "write");
            break;
        }
        if (prog_read_all(fd, in, (size_t)n) != 0) {
            fail(id, "read");
            break;
        }
        if (memcmp(in, out, (size_t)n) != 0) {
            errno = 0;
            fail(id, "echoed bytes differ");
            break;
        }
        atomic_fetch_add(&verified, (unsigned long long)n);
        atomic_fetch_add(&requests, 1);
        left -= n;
    }
    free(out);
    free(in);
}

static void *client(void *arg)
{
    int id = (int)(long)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (!ok)
        fail(id, "connect");
    atomic_fetch_add(&alive, 1);
    int b = pthread_barrier_wait(&barrier);
    if (b == PTHREAD_BARRIER_SERIAL_THREAD) {
        printf("THREADS %d LIVE %d\n", prog_os_threads(), atomic_load(&alive));
        fflush(stdout);
    }
    char one = 'h';
    if (ok && (prog_write_all(fd, &one, 1) || prog_read_all(fd, &one, 1))) {
        fail(id, "first byte");
        ok = 0;
    }
    pthread_barrier_wait(&barrier);
    if (ok)
        exchange(id, fd);
    if (fd >= 0)
        close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT NCONN BYTES [MAXCHUNK]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    nconn = atoi(argv[2]);
    bytes_per_conn = atol(argv[3]);
    if (argc > 4)
        maxchunk = atoi(argv[4]);
    prog_raise_nofile(20000);
    prog_report_hooks();
    pthread_barrier_init(&barrier, NULL, (unsigned)nconn);
    pthread_t *t = calloc((size_t)nconn, sizeof *t);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int k = 0; k < nconn; k++)
        if (pthread_create(&t[k], &attr, client, (void *)(long)k) != 0) {
            printf("FAIL pthread_create %d\n", k);
            return 1;
        }
    for (int k = 0; k < nconn; k++)
        pthread_join(t[k], NULL);
    unsigned long long want = (unsigned long long)nconn * (unsigned long long)bytes_per_conn;
    if (atomic_load(&failures) || atomic_load(&verified) != want) {
        printf("FAIL verified %llu of %llu bytes\n", atomic_load(&verified), want);
        return 1;
    }
    printf("OK %d %llu REQUESTS %llu\n", nconn, want, atomic_load(&requests));
    return 0;
}

/*
 * prog_echo_server - a legacy thread-per-connection echo server with
 * blocking sockets. Usage: prog_echo_server NCONN
 * Listens on 127.0.0.1 (kernel-chosen port), prints "PORT n", accepts
 * NCONN connections, one pthread each echoing until EOF. When the last
 * connection is accepted it prints "THREADS <OS threads> LIVE <live
 * connection threads>"; at the end "SERVED <conns> BYTES <total>".
 */
#include "progs_io.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

static atomic_int live;
static atomic_ullong total;

static void *serve(void *arg)
{
    int fd = (int)(long)arg;
    char buf[16384];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            break;
        if (prog_write_all(fd, buf, (size_t)r) != 0)
            break;
        atomic_fetch_add(&total, (unsigned long long)r);
    }
    close(fd);
    atomic_fetch_sub(&live, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    prog_raise_nofile(20000);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 4096) ||
        getsockname(l, (struct sockaddr *)&sa, &len)) {
        perror("listen");
        return 1;
    }
    printf("PORT %d\n", ntohs(sa.sin_port));
    prog_report_hooks();
    pthread_t *t = calloc((size_t)n, sizeof *t);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int k = 0; k < n; k++) {
        int c = accept(l, NULL, NULL);
        if (c < 0) {
            perror("accept");
            return 1;
        }
        atomic_fetch_add(&live, 1);
        if (pthread_create(&t[k], &attr, serve, (void *)(long)c) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    printf("THREADS %d LIVE %d\n", prog_os_threads(), atomic_load(&live));
    fflush(stdout);
    for (int k = 0; k < n; k++)
        pthread_join(t[k], NULL);
    printf("SERVED %d BYTES %llu\n", n, atomic_load(&total));
    return 0;
}

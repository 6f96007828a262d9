/*
 * prog_waiting_reads - 200 reads on a socket that each have to wait: a
 * thread writes one byte 300 us after the reader asked for it. Under the
 * shim each read tries once, parks, and reads again; test_preload_io
 * counts (strace) how often the shim asked the kernel for the socket's
 * flags meanwhile (libgreen/fdstate.c, the flag cache). Prints the HOOK
 * line, then "reads=N" with the number of bytes read (200).
 */
#include "progs_io.h"
#include <pthread.h>
#include <sys/socket.h>

#define ROUNDS 200

static int sv[2];

static void *writer(void *arg)
{
    (void)arg;
    for (int k = 0; k < ROUNDS; k++) {
        usleep(300);
        if (write(sv[1], "x", 1) != 1)
            return (void *)1;
    }
    return NULL;
}

int main(void)
{
    prog_report_hooks();
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 2;
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    int got = 0;
    char c;
    for (int k = 0; k < ROUNDS; k++)
        got += recv(sv[0], &c, 1, 0) == 1;
    pthread_join(t, NULL);
    printf("reads=%d\n", got);
    return got == ROUNDS ? 0 : 1;
}

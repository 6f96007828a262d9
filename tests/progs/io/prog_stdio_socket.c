/*
 * prog_stdio_socket - stdio on a socket in a pthread: connect to
 * 127.0.0.1:PORT, read a greeting with read(), then fdopen the socket and
 * talk lines with fprintf/fgets. glibc's stdio reads through internal
 * calls no hook sees, so a socket left O_NONBLOCK by the shim would give
 * a spurious EAGAIN here (fgets returns NULL) and lose the conversation.
 * Usage: prog_stdio_socket PORT NLINES
 * Prints "OK <lines>" or "FAIL <reason>".
 */
#include "progs_io.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

static int port, nlines;
static int result = 1;

static void *talk(void *arg)
{
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        printf("FAIL connect: %s\n", strerror(errno));
        return NULL;
    }
    char hello[6];
    if (prog_read_all(fd, hello, 6) != 0 || memcmp(hello, "HELLO\n", 6) != 0) {
        printf("FAIL greeting\n");
        return NULL;
    }
    FILE *in = fdopen(fd, "r"), *out = fdopen(dup(fd), "w");
    char line[256], want[256];
    for (int k = 0; k < nlines; k++) {
        if (fprintf(out, "line %d of %d\n", k, nlines) < 0 || fflush(out) != 0) {
            printf("FAIL fprintf at line %d: %s\n", k, strerror(errno));
            return NULL;
        }
        errno = 0;
        if (!fgets(line, sizeof line, in)) {
            printf("FAIL fgets at line %d: %s\n", k, errno ? strerror(errno) : "EOF");
            return NULL;
        }
        snprintf(want, sizeof want, "echo: line %d of %d\n", k, nlines);
        if (strcmp(line, want) != 0) {
            printf("FAIL line %d: got \"%s\"\n", k, line);
            return NULL;
        }
    }
    fclose(out);
    fclose(in);
    result = 0;
    printf("OK %d\n", nlines);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    port = atoi(argv[1]);
    nlines = atoi(argv[2]);
    prog_report_hooks();
    pthread_t t;
    pthread_create(&t, NULL, talk, NULL);
    pthread_join(t, NULL);
    fflush(stdout);
    return result;
}

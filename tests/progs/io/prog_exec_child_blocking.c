/*
 * prog_exec_child_blocking - descriptors used through the shim's hooks are
 * still blocking in an exec'd child.
 * Usage: prog_exec_child_blocking            (parent)
 *        prog_exec_child_blocking check FD... (child)
 * The parent makes a socketpair, a pipe and a TCP connection (connect and
 * accept), makes blocking reads on each in pthreads while other pthreads
 * write after a delay (so a hook has to wait), then spawns itself to
 * check every descriptor, plus 0, 1 and 2, with a raw fcntl(F_GETFL)
 * syscall. The child prints "BLOCKING fd" or "NONBLOCK fd" per fd.
 */
#include "progs_io.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int check(int argc, char **argv)
{
    for (int k = 2; k < argc; k++) {
        int fd = atoi(argv[k]);
        long fl = syscall(SYS_fcntl, fd, F_GETFL);
        if (fl < 0)
            printf("BADFD %d\n", fd);
        else
            printf("%s %d\n", (fl & O_NONBLOCK) ? "NONBLOCK" : "BLOCKING", fd);
    }
    return 0;
}

struct pairio {
    int rfd, wfd;
    int ok;
};

static void *slow_writer(void *arg)
{
    struct pairio *p = arg;
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    prog_write_all(p->wfd, "ping", 4);
    return NULL;
}

static void *blocking_reader(void *arg)
{
    struct pairio *p = arg;
    char b[4];
    p->ok = prog_read_all(p->rfd, b, 4) == 0 && !memcmp(b, "ping", 4);
    return NULL;
}

static void exercise(struct pairio *p)
{
    pthread_t r, w;
    pthread_create(&r, NULL, blocking_reader, p);
    pthread_create(&w, NULL, slow_writer, p);
    pthread_join(r, NULL);
    pthread_join(w, NULL);
}

struct conn {
    int l, port, client, server;
};

static void *do_connect(void *arg)
{
    struct conn *c = arg;
    c->client = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(c->client, (struct sockaddr *)&sa, sizeof sa) != 0)
        c->client = -1;
    return NULL;
}

static void *do_accept(void *arg)
{
    struct conn *c = arg;
    c->server = accept(c->l, NULL, NULL);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "check"))
        return check(argc, argv);
    prog_report_hooks();
    int sv[2], p[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(p))
        return 1;
    struct conn c = { .l = socket(AF_INET, SOCK_STREAM, 0) };
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    if (bind(c.l, (struct sockaddr *)&sa, sizeof sa) || listen(c.l, 8) ||
        getsockname(c.l, (struct sockaddr *)&sa, &len))
        return 1;
    c.port = ntohs(sa.sin_port);
    pthread_t ta, tc;
    pthread_create(&ta, NULL, do_accept, &c);
    pthread_create(&tc, NULL, do_connect, &c);
    pthread_join(ta, NULL);
    pthread_join(tc, NULL);
    if (c.client < 0 || c.server < 0) {
        printf("FAIL connect/accept\n");
        return 1;
    }
    struct pairio ios[] = {
        { sv[0], sv[1], 0 }, { sv[1], sv[0], 0 }, { p[0], p[1], 0 },
        { c.client, c.server, 0 }, { c.server, c.client, 0 },
    };
    for (size_t k = 0; k < sizeof ios / sizeof *ios; k++) {
        exercise(&ios[k]);
        if (!ios[k].ok)
            printf("FAIL exchange %zu\n", k);
    }
    char fds[9][16];
    int list[] = { 0, 1, 2, sv[0], sv[1], p[0], p[1], c.client, c.server };
    char *args[12] = { argv[0], "check" };
    for (int k = 0; k < 9; k++) {
        snprintf(fds[k], sizeof fds[k], "%d", list[k]);
        args[2 + k] = fds[k];
    }
    args[11] = NULL;
    fflush(stdout);
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, args, environ) != 0) {
        printf("FAIL spawn\n");
        return 1;
    }
    int st;
    waitpid(pid, &st, 0);
    printf("DONE %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

/*
 * prog_fork_spawn.c - fork from a pthread (a green thread under the shim)
 * while 50 others are parked (read on pipes, condition wait, nanosleep),
 * then both processes keep working; then system() and posix_spawn() while
 * a ticker thread keeps running.
 *
 * Prints:
 *   CHILD echo_ok=20 threads=.. system=3   (from the forked child: 20 new
 *                                          pthreads each echo 64 KiB through
 *                                          a socketpair; system's status)
 *   PARENT released=50 child_status=0
 *   SYSTEM status=7 ticks=..               (ticks of a 5 ms ticker during a
 *                                          300 ms system("sleep 0.3; exit 7"))
 *   SPAWN status=5 spawnp_status=0 ticks=..
 * 50 rounds of fork/exit from a fresh green thread each: "ROUNDS ok=50".
 */
#include "stress.h"
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

extern char **environ;

enum { PIPE_WAITERS = 20, COND_WAITERS = 15, SLEEPERS = 15, ECHOERS = 20 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go_flag, released;
static int pipes[PIPE_WAITERS][2];

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 128 * 1024);
    if (pthread_create(&t, &a, fn, arg) != 0)
        DIE("pthread_create");
    pthread_attr_destroy(&a);
    return t;
}

static void count_released(void)
{
    pthread_mutex_lock(&mu);
    released++;
    pthread_mutex_unlock(&mu);
}

static void *pipe_waiter(void *arg)
{
    int i = (int)(intptr_t)arg;
    char c;
    if (read(pipes[i][0], &c, 1) == 1 && c == 'r')
        count_released();
    return NULL;
}

static void *cond_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!go_flag)
        pthread_cond_wait(&cv, &mu);
    released++;
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    sleep_ms(300);
    count_released();
    return NULL;
}

/* Echo 64 KiB through a socketpair with a helper thread. */
static void *echo_peer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)n) != n)
            break;
    close(fd);
    return NULL;
}

static void *echoer(void *arg)
{
    uint64_t k = (uint64_t)(intptr_t)arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return (void *)0;
    pthread_t p = spawn(echo_peer, (void *)(intptr_t)sv[1]);
    static __thread unsigned char out[4096];
    unsigned char in[4096];
    long long sent = 0, got = 0;
    int ok = 1;
    while (got < 65536) {
        if (sent < 65536) {
            stream_fill(k, (uint64_t)sent, out, sizeof out);
            if (write(sv[0], out, sizeof out) != (ssize_t)sizeof out)
                ok = 0;
            sent += sizeof out;
        }
        ssize_t n = read(sv[0], in, sizeof in);
        if (n <= 0) {
            ok = 0;
            break;
        }
        ok &= stream_check(k, (uint64_t)got, in, (size_t)n) == (size_t)n;
        got += n;
    }
    close(sv[0]);
    pthread_join(p, NULL);
    return (void *)(intptr_t)ok;
}

/* In the forked child: new threads, I/O, sleeps and system() work. */
static void child_work(void)
{
    pthread_t t[ECHOERS];
    for (int i = 0; i < ECHOERS; i++)
        t[i] = spawn(echoer, (void *)(intptr_t)(i + 100));
    int threads = os_threads(), ok = 0;
    for (int i = 0; i < ECHOERS; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += r != NULL;
    }
    sleep_ms(10);
    int st = system("exit 3");
    printf("CHILD echo_ok=%d threads=%d system=%d\n", ok, threads,
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    fflush(stdout);
    _exit(0);
}

static void *forker(void *arg)
{
    (void)arg;
    fflush(NULL);
    pid_t p = fork();
    if (p < 0)
        return (void *)(intptr_t)-1;
    if (p == 0)
        child_work();
    int st;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR)
        ;
    return (void *)(intptr_t)(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static volatile int ticks, ticking;
static void *ticker(void *arg)
{
    (void)arg;
    while (ticking) {
        usleep(5000);
        ticks++;
    }
    return NULL;
}

static void start_ticker(pthread_t *t)
{
    ticks = 0;
    ticking = 1;
    *t = spawn(ticker, NULL);
}

static void stop_ticker(pthread_t t)
{
    ticking = 0;
    pthread_join(t, NULL);
}

static void *fork_exit_round(void *arg)
{
    (void)arg;
    fflush(NULL);
    pid_t p = fork();
    if (p == 0) {
        int sv[2];
        char c = 0;
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || write(sv[0], "k", 1) != 1 ||
            read(sv[1], &c, 1) != 1)
            _exit(1);
        sleep_ms(1);
        _exit(c == 'k' ? 0 : 1);
    }
    int st;
    if (p < 0 || waitpid(p, &st, 0) != p)
        return NULL;
    return (void *)(intptr_t)(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    alarm(60);
    prove_green();
    pthread_t ts[PIPE_WAITERS + COND_WAITERS + SLEEPERS];
    int n = 0;
    for (int i = 0; i < PIPE_WAITERS; i++) {
        if (pipe(pipes[i]) < 0)
            DIE("pipe");
        ts[n++] = spawn(pipe_waiter, (void *)(intptr_t)i);
    }
    for (int i = 0; i < COND_WAITERS; i++)
        ts[n++] = spawn(cond_waiter, NULL);
    for (int i = 0; i < SLEEPERS; i++)
        ts[n++] = spawn(sleeper, NULL);
    sleep_ms(20);                  /* everyone parked */
    pthread_t f = spawn(forker, NULL);
    sleep_ms(20);                  /* the fork happened from that thread */
    for (int i = 0; i < PIPE_WAITERS; i++)
        if (write(pipes[i][1], "r", 1) != 1)
            DIE("write");
    pthread_mutex_lock(&mu);
    go_flag = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < n; i++)
        pthread_join(ts[i], NULL);
    void *cst;
    pthread_join(f, &cst);
    printf("PARENT released=%d child_status=%d\n", released, (int)(intptr_t)cst);
    fflush(stdout);

    pthread_t tk;
    start_ticker(&tk);
    int st = system("sleep 0.3; exit 7");
    stop_ticker(tk);
    printf("SYSTEM status=%d ticks=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1, ticks);
    fflush(stdout);

    start_ticker(&tk);
    pid_t p;
    char *argv1[] = { "sh", "-c", "sleep 0.3; exit 5", NULL };
    char *argv2[] = { "true", NULL };
    int s1 = -1, s2 = -1;
    if (posix_spawn(&p, "/bin/sh", NULL, NULL, argv1, environ) == 0 && waitpid(p, &st, 0) == p)
        s1 = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    int ticks1 = ticks;
    if (posix_spawnp(&p, "true", NULL, NULL, argv2, environ) == 0 && waitpid(p, &st, 0) == p)
        s2 = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    stop_ticker(tk);
    printf("SPAWN status=%d spawnp_status=%d ticks=%d\n", s1, s2, ticks1);

    int ok = 0;
    for (int i = 0; i < 50; i++) {
        void *r;
        pthread_join(spawn(fork_exit_round, NULL), &r);
        ok += r != NULL;
    }
    printf("ROUNDS ok=%d\n", ok);
    return 0;
}

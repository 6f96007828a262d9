/*
 * test_hooks_proc.c - name lookups and processes, called directly
 * (green_hook_*) from green threads: lookups run on the worker pool while
 * other green threads keep running; waitpid, wait and system park only
 * their caller; fork leaves both processes working; vfork children can
 * exec.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "hooks.h"
#include "hooks_proc.h"
#include "hooks_signal.h"

static void setup(void)
{
    green__real_init();
    cr_assert(green_self());
}

TestSuite(hooks_proc, .init = setup);

/* A green thread that counts yields while the main one is parked. */
static volatile long spins;
static volatile bool stop_spinning;
static void *spinner(void *arg)
{
    (void)arg;
    while (!stop_spinning && spins < 100000000) {
        spins++;
        green_yield();
    }
    return NULL;
}

static green_t start_spinner(void)
{
    spins = 0;
    stop_spinning = false;
    green_t t = green_spawn(spinner, NULL, NULL);
    cr_assert(t);
    green_yield();              /* let it start */
    return t;
}

static void stop_spinner(green_t t)
{
    stop_spinning = true;
    cr_assert_eq(green_join(t, NULL), 0);
}

/* ---------------------------------------------------------------- names */

Test(hooks_proc, getaddrinfo_localhost_works_while_another_green_thread_keeps_running)
{
    green_t s = start_spinner();
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    long before = spins;
    int r = green_hook_getaddrinfo("localhost", "80", &hints, &res);
    long during = spins - before;
    stop_spinner(s);
    cr_assert_eq(r, 0, "getaddrinfo: %s", gai_strerror(r));
    cr_assert(res);
    struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
    cr_assert_eq(res->ai_family, AF_INET);
    cr_assert_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    cr_assert_eq(ntohs(sin->sin_port), 80);
    freeaddrinfo(res);
    cr_assert_gt(during, 0, "the other green thread did not run during the lookup");
}

Test(hooks_proc, getaddrinfo_reports_the_resolvers_errors)
{
    struct addrinfo hints = { .ai_family = AF_INET, .ai_flags = AI_NUMERICHOST };
    struct addrinfo *res = NULL;
    cr_assert_eq(green_hook_getaddrinfo("not-a-number", NULL, &hints, &res), EAI_NONAME);
    cr_assert_null(res);
}

Test(hooks_proc, getnameinfo_names_the_loopback_address)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    char host[NI_MAXHOST] = "", serv[NI_MAXSERV] = "";
    int r = green_hook_getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host,
                                   serv, sizeof serv, NI_NUMERICSERV);
    cr_assert_eq(r, 0, "getnameinfo: %s", gai_strerror(r));
    cr_assert_str_eq(serv, "80");
    cr_assert_neq(host[0], '\0');
    r = green_hook_getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host,
                               NULL, 0, NI_NUMERICHOST);
    cr_assert_eq(r, 0);
    cr_assert_str_eq(host, "127.0.0.1");
}

static void assert_loopback(const struct hostent *he)
{
    cr_assert(he);
    cr_assert_eq(he->h_addrtype, AF_INET);
    cr_assert_eq(he->h_length, 4);
    cr_assert(he->h_name && he->h_name[0]);
    cr_assert(he->h_addr_list[0]);
    struct in_addr a;
    memcpy(&a, he->h_addr_list[0], 4);
    cr_assert_eq(ntohl(a.s_addr), INADDR_LOOPBACK);
}

Test(hooks_proc, gethostbyname_and_its_variants_resolve_localhost)
{
    assert_loopback(green_hook_gethostbyname("localhost"));
    assert_loopback(green_hook_gethostbyname2("localhost", AF_INET));
    struct hostent he, *res = NULL;
    char buf[2048];
    int herr = 0;
    cr_assert_eq(green_hook_gethostbyname_r("localhost", &he, buf, sizeof buf, &res, &herr), 0);
    cr_assert_eq(res, &he);
    assert_loopback(res);
    /* Pointers land in the caller's buffer, not in a freed one. */
    cr_assert((char *)res->h_name >= buf && (char *)res->h_name < buf + sizeof buf);
    cr_assert_eq(green_hook_gethostbyname2_r("localhost", AF_INET, &he, buf, 8, &res, &herr),
                 ERANGE);
    cr_assert_null(res);
}

Test(hooks_proc, gethostbyaddr_names_the_loopback_address)
{
    struct in_addr lo = { .s_addr = htonl(INADDR_LOOPBACK) };
    struct hostent *he = green_hook_gethostbyaddr(&lo, sizeof lo, AF_INET);
    assert_loopback(he);
    struct hostent r, *res = NULL;
    char buf[2048];
    int herr = 0;
    cr_assert_eq(green_hook_gethostbyaddr_r(&lo, sizeof lo, AF_INET, &r, buf, sizeof buf,
                                            &res, &herr), 0);
    cr_assert_eq(res, &r);
    assert_loopback(res);
    cr_assert((char *)res->h_addr_list[0] >= buf &&
              (char *)res->h_addr_list[0] < buf + sizeof buf);
}

/* ------------------------------------------------------------- processes */

static pid_t child_exiting(int ms, int code)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct timespec ts = { 0, ms * 1000000L };
        nanosleep(&ts, NULL);
        _exit(code);
    }
    return pid;
}

Test(hooks_proc, waitpid_parks_only_the_caller)
{
    pid_t pid = child_exiting(100, 7);
    green_t s = start_spinner();
    int st = 0;
    long before = spins;
    cr_assert_eq(green_hook_waitpid(pid, &st, 0), pid);
    long during = spins - before;
    stop_spinner(s);
    cr_assert(WIFEXITED(st));
    cr_assert_eq(WEXITSTATUS(st), 7);
    cr_assert_gt(during, 10, "spinner ran %ld times", during);
}

Test(hooks_proc, wait_for_any_child_parks_and_reaps_it)
{
    pid_t pid = child_exiting(50, 3);
    green_t s = start_spinner();
    int st = 0;
    long before = spins;
    cr_assert_eq(green_hook_wait(&st), pid);
    long during = spins - before;
    stop_spinner(s);
    cr_assert_eq(WEXITSTATUS(st), 3);
    cr_assert_gt(during, 10);
    struct rusage ru;
    pid = child_exiting(10, 4);
    cr_assert_eq(green_hook_wait4(pid, &st, 0, &ru), pid);
    cr_assert_eq(WEXITSTATUS(st), 4);
}

Test(hooks_proc, waitpid_keeps_the_kernels_answers_for_wnohang_and_strangers)
{
    pid_t pid = child_exiting(50, 0);
    int st;
    cr_assert_eq(green_hook_waitpid(pid, &st, WNOHANG), 0);
    cr_assert_eq(green_hook_waitpid(pid, &st, 0), pid);
    errno = 0;
    cr_assert_eq(green_hook_waitpid(pid, &st, 0), -1);
    cr_assert_eq(errno, ECHILD);
    errno = 0;
    cr_assert_eq(green_hook_waitpid(1, &st, 0), -1);
    cr_assert_eq(errno, ECHILD);
}

static void *sleep_and_count(void *arg)
{
    int *n = arg;
    for (int i = 0; i < 5; i++) {
        green_sleep(GREEN_MSEC(5));
        (*n)++;
    }
    return NULL;
}

Test(hooks_proc, fork_leaves_both_processes_working)
{
    int n = 0;
    green_t t = green_spawn(sleep_and_count, &n, NULL);
    green_yield();
    pid_t pid = green_hook_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* The child: its hub works; the sleeping thread is not there
         * (only the caller survives a fork, as POSIX says of threads). */
        int m = 0, n0 = n;
        green_t u = green_spawn(sleep_and_count, &m, NULL);
        if (!u || green_sleep(GREEN_MSEC(40)) != 0 || green_join(u, NULL) != 0 ||
            green_join(t, NULL) == 0)
            _exit(1);
        _exit(m == 5 && n == n0 ? 42 : 2);
    }
    cr_assert_eq(green_join(t, NULL), 0);
    cr_assert_eq(n, 5);
    int st = 0;
    cr_assert_eq(green_hook_waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st));
    cr_assert_eq(WEXITSTATUS(st), 42);
}

Test(hooks_proc, a_vfork_child_can_exec_and_the_parent_collects_it)
{
    pid_t pid = green_hook_vfork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(0);                /* harmless in the child's own copy */
        execl("/bin/sh", "sh", "-c", "exit 9", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    cr_assert_eq(green_hook_waitpid(pid, &st, 0), pid);
    cr_assert_eq(WEXITSTATUS(st), 9);
}

Test(hooks_proc, system_runs_the_command_while_others_keep_running)
{
    green_t s = start_spinner();
    long before = spins;
    int st = green_hook_system("sleep 0.1; exit 5");
    long during = spins - before;
    stop_spinner(s);
    cr_assert(WIFEXITED(st));
    cr_assert_eq(WEXITSTATUS(st), 5);
    cr_assert_gt(during, 10, "spinner ran %ld times", during);
    cr_assert_neq(green_hook_system(NULL), 0, "a shell is available");
}

/* system(), then this thread's own mask: 1 if SIGCHLD stayed blocked. */
static void *system_then_mask(void *arg)
{
    (void)arg;
    if (green_hook_system("sleep 0.2") != 0)
        return (void *)(intptr_t)2;
    sigset_t now;
    green_hook_sigprocmask(SIG_BLOCK, NULL, &now);
    return (void *)(intptr_t)(sigismember(&now, SIGCHLD) ? 1 : 0);
}

Test(hooks_proc, a_fork_during_another_threads_system_leaves_sigchld_unblocked_in_the_child)
{
    /* system() blocks SIGCHLD in its calling thread only: masks are per
     * green thread (hooks/signal.c), so the forking thread's is clean. */
    green_t s = green_spawn(system_then_mask, NULL, NULL);
    green_sleep(GREEN_MSEC(30));           /* s is parked in system() */
    sigset_t now;
    green_hook_sigprocmask(SIG_BLOCK, NULL, &now);
    cr_assert(!sigismember(&now, SIGCHLD), "another thread's system() blocked "
              "SIGCHLD in this thread");
    pid_t pid = green_hook_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        sigprocmask(SIG_BLOCK, NULL, &now);
        _exit(sigismember(&now, SIGCHLD) ? 1 : 0);
    }
    int st = 0;
    cr_assert_eq(green_hook_waitpid(pid, &st, 0), pid);
    cr_assert_eq(WEXITSTATUS(st), 0, "SIGCHLD stayed blocked in the child");
    void *r;
    cr_assert_eq(green_join(s, &r), 0);
    cr_assert_eq((intptr_t)r, 0, "system() failed (2) or left SIGCHLD blocked (1) "
                 "in its caller: %d", (int)(intptr_t)r);
}

Test(hooks_proc, waitid_and_wait3_park_only_the_caller)
{
    pid_t pid = child_exiting(50, 5);
    green_t s = start_spinner();
    siginfo_t si;
    memset(&si, 0, sizeof si);
    long before = spins;
    cr_assert_eq(green_hook_waitid(P_PID, (id_t)pid, &si, WEXITED), 0);
    long during = spins - before;
    cr_assert_eq(si.si_pid, pid);
    cr_assert_eq(si.si_code, CLD_EXITED);
    cr_assert_eq(si.si_status, 5);
    cr_assert_gt(during, 10);
    pid = child_exiting(30, 6);
    memset(&si, 0, sizeof si);
    cr_assert_eq(green_hook_waitid(P_ALL, 0, &si, WEXITED | WNOWAIT), 0);
    cr_assert_eq(si.si_pid, pid, "WNOWAIT leaves it waitable");
    int st = 0;
    struct rusage ru;
    cr_assert_eq(green_hook_wait3(&st, 0, &ru), pid);
    cr_assert_eq(WEXITSTATUS(st), 6);
    stop_spinner(s);
    errno = 0;
    cr_assert_eq(green_hook_waitid(P_ALL, 0, &si, WEXITED), -1);
    cr_assert_eq(errno, ECHILD);
}

Test(hooks_proc, pclose_waits_for_the_command_while_others_keep_running)
{
    FILE *f = popen("sleep 0.1; exit 6", "r");
    cr_assert(f);
    green_t s = start_spinner();
    long before = spins;
    int st = green_hook_pclose(f);
    long during = spins - before;
    stop_spinner(s);
    cr_assert(WIFEXITED(st));
    cr_assert_eq(WEXITSTATUS(st), 6);
    cr_assert_gt(during, 10, "spinner ran %ld times during pclose", during);
}

Test(hooks_proc, wait_for_any_child_reaps_several_children_as_they_exit)
{
    enum { N = 5 };
    pid_t pids[N];
    /* The spinner starts first, and the children live 100 ms and more:
     * forks of a sanitized process on a loaded machine took longer than
     * the 10-50 ms the children used to live, so the waits found them all
     * gone and the spinner had no time to run. */
    green_t s = start_spinner();
    long before = spins;
    for (int i = 0; i < N; i++)
        pids[i] = child_exiting(100 + 20 * (N - i), 10 + i);   /* the last exits first */
    for (int k = 0; k < N; k++) {
        int st = 0;
        pid_t p = green_hook_waitpid(-1, &st, 0);
        int i = 0;
        while (i < N && pids[i] != p)
            i++;
        cr_assert_lt(i, N, "waitpid(-1) returned %d", (int)p);
        cr_assert_eq(WEXITSTATUS(st), 10 + i);
        pids[i] = 0;
    }
    long during = spins - before;
    stop_spinner(s);
    cr_assert_gt(during, 10);
    errno = 0;
    cr_assert_eq(green_hook_wait(NULL), -1);
    cr_assert_eq(errno, ECHILD);
}

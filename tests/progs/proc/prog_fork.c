/*
 * prog_fork.c - fork, then both processes keep working: a ticker thread
 * sleeps in a loop while the main thread forks; the child sleeps, starts
 * and joins a thread and exits 42; the parent waits for it (waitpid), runs
 * system("exit 3") and a vfork+exec, and checks its ticker kept going.
 * Output: key=value lines.
 */
#include "../wait/progs_common.h"
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int ticks;
static atomic_bool stop;

static void *ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop) && atomic_load(&ticks) < 100000) {
        atomic_fetch_add(&ticks, 1);
        usleep(1000);
    }
    return NULL;
}

static void *child_worker(void *arg)
{
    usleep(10000);
    return arg;
}

static int run_child(void)
{
    usleep(20000);
    pthread_t t;
    void *r = NULL;
    if (pthread_create(&t, NULL, child_worker, (void *)7) != 0 ||
        pthread_join(t, &r) != 0 || r != (void *)7)
        return 1;
    return 42;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, ticker, NULL);
    usleep(5000);
    pid_t pid = fork();
    if (pid == 0)
        exit(run_child());
    int before = atomic_load(&ticks), st = 0;
    pid_t w = waitpid(pid, &st, 0);
    printf("hooked_fork=%d\nhooked_waitpid=%d\n", hooked((void *)fork),
           hooked((void *)waitpid));
    printf("child_status=%d\n", w == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    printf("ticks_during_waitpid=%d\n", atomic_load(&ticks) - before);
    before = atomic_load(&ticks);
    st = system("sleep 0.05; exit 3");
    printf("system_status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    printf("ticks_during_system=%d\n", atomic_load(&ticks) - before);
    pid = vfork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exit 9", (char *)NULL);
        _exit(127);
    }
    st = 0;
    printf("vfork_status=%d\n", waitpid(pid, &st, 0) == pid ? WEXITSTATUS(st) : -1);
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    printf("threads=%d\n", os_threads());
    return 0;
}

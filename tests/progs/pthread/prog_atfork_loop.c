/*
 * prog_atfork_loop.c - a thread that registers fork handlers in a loop
 * until another thread, which first sleeps 50 ms, tells it to stop (Open
 * POSIX pthread_atfork/3-3 does this). pthread_atfork is a static stub in
 * every program; under the shim the libc function it calls
 * (__register_atfork) is hooked, so the loop takes its fair turns and the
 * sleeper gets to run even with one hub. Prints key=value lines: whether
 * __register_atfork resolves into libgreen, how many registrations, and
 * a fork that runs the handlers once in each process.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../progutil.h"

static atomic_int stop;
static atomic_long prepared, in_parent, in_child;
static void prepare(void) { atomic_fetch_add(&prepared, 1); }
static void parent(void) { atomic_fetch_add(&in_parent, 1); }
static void child(void) { atomic_fetch_add(&in_child, 1); }
static void nothing(void) {}

static void *registrar(void *arg)
{
    long *n = arg;
    while (!atomic_load(&stop)) {
        if (pthread_atfork(nothing, nothing, nothing) != 0)
            break;
        ++*n;
    }
    return NULL;
}

static void *stopper(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 50000000 };
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    return NULL;
}

int main(void)
{
    void *f = dlsym(RTLD_DEFAULT, "__register_atfork");
    Dl_info di;
    out("hooked=%d", f && dladdr(f, &di) && di.dli_fname && strstr(di.dli_fname, "libgreen"));
    pthread_atfork(prepare, parent, child);
    long n = 0;
    pthread_t r, s;
    pthread_create(&r, NULL, registrar, &n);
    pthread_create(&s, NULL, stopper, NULL);
    pthread_join(s, NULL);
    pthread_join(r, NULL);
    out("registered_some=%d", n > 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(atomic_load(&in_child) == 1 ? 0 : 1);
    int st = 0;
    waitpid(pid, &st, 0);
    out("prepare=%ld", atomic_load(&prepared));
    out("parent=%ld", atomic_load(&in_parent));
    out("child_ok=%d", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return 0;
}

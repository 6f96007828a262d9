/*
 * prog_tls_none.c - a program without thread-local data of its own (so
 * that, under the shim, nothing is swapped until a library brings some)
 * whose second thread dlopens libtlsmod.so, sets its __thread variable
 * to 42 and creates a third thread: the third must read the library's
 * initial value 5 and may change its own to 77, and the second must read
 * its 42 back after joining it. Run natively and under the shim by
 * tests/test_preload_tls.c. Prints green=0|1 (pthread_create resolves
 * into libgreen), creator=42 and created=5 when right; exits 0.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "../progutil.h"

static int (*get)(void);
static void (*set)(int);
static char path[PATH_MAX];

static void *created(void *arg)
{
    (void)arg;
    int v = get();
    set(77);
    sched_yield();
    return (void *)(intptr_t)v;
}

static void *creator(void *arg)
{
    (void)arg;
    void *h = dlopen(path, RTLD_NOW);
    if (!h)
        return (void *)-1;
    *(void **)&get = dlsym(h, "tlsmod_get");
    *(void **)&set = dlsym(h, "tlsmod_set");
    set(42);
    pthread_t t;
    void *r = (void *)-1;
    if (pthread_create(&t, NULL, created, NULL) == 0)
        pthread_join(t, &r);
    out("creator=%d", get());
    out("created=%d", (int)(intptr_t)r);
    return NULL;
}

int main(void)
{
    Dl_info di;
    void *pc = dlsym(RTLD_DEFAULT, "pthread_create");
    out("green=%d", pc && dladdr(pc, &di) && di.dli_fname &&
                    strstr(di.dli_fname, "libgreen") != NULL);
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
    if (n <= 0)
        return 1;
    path[n] = 0;
    strcpy(strrchr(path, '/') + 1, "libtlsmod.so");
    pthread_t t;
    if (pthread_create(&t, NULL, creator, NULL) != 0)
        return 1;
    pthread_join(t, NULL);
    return 0;
}

/*
 * prog_tls.c - __thread variables belong to their thread: a plain pthread
 * program (never linked to libgreen) run natively and under the shim by
 * tests/test_preload_tls.c. One mode per run (argv[1]):
 *
 *   ids     100 threads each write their index into a __thread int and a
 *           1 KiB __thread array, wait at a barrier for all the others to
 *           have written, yield and sleep, and check both are still
 *           theirs. Prints mismatch=N (threads that saw another's value).
 *   init    main changes `__thread int x = 42` to 7 and a zeroed __thread
 *           to 5, then creates a thread, which must see 42 and 0 (the
 *           initialisation image, not its creator's values); that thread
 *           changes its own and creates another, which must see 42 and 0
 *           too; main's stay 7 and 5. Prints init_ok=1 or the values.
 *   dlopen  20 threads start and wait in a read from a pipe; main then
 *           dlopens libtlsmod.so (next to this program) and lets them go
 *           with a byte each (under the shim each hub notices the new
 *           module when it polls, before the readers run): each must read the
 *           library's initial value 5, write its index, yield and sleep,
 *           and read its index back. Prints mismatch=N.
 *
 *   dlclose main dlopens libtlsmod.so and uses its TLS, creates 10
 *           threads (the shim notices the module there) and dlcloses the
 *           library before they ran; each must keep its own __thread
 *           int across a sleep. Prints mismatch=N and ran=10: under the
 *           shim a swap must not touch the closed module's block or
 *           image (unmapped).
 *
 *   signal  a thread sets its __thread int to 7 and waits for a mutex
 *           main holds (main's own is 1); main sends it SIGUSR1 with
 *           pthread_kill: the handler runs in that thread and must read
 *           7. Prints handler_saw=7.
 *
 *   address 8 threads each publish the address of a __thread waiter
 *           record (a futex word and a value) and wait on its word with
 *           syscall(SYS_futex); once all are published, main writes each
 *           record's value through its address and wakes it, as a group
 *           commit's leader wakes its members. Prints distinct=8 (the
 *           addresses differ, as each thread's own), mismatch=N (a
 *           thread that found another value in its record) and
 *           timeouts=N (waits of 5 s that no wake ended). Under the shim
 *           this needs GREEN_TLS=address: with GREEN_TLS=1 the threads of
 *           a hub share one address.
 *
 * Every mode first prints green=1 when pthread_create resolves into
 * libgreen (the shim's hook is taken), else green=0, and exits 0.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../progutil.h"

static __thread int mine = -1;
static __thread unsigned char blob[1024];
static __thread int x = 42;
static __thread int zeroed;

static void nap_us(long us)
{
    struct timespec ts = { 0, us * 1000 };
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ ids */

#define NIDS 100
static pthread_barrier_t bar;
static atomic_int mismatch;

static bool still_mine(int id)
{
    if (mine != id)
        return false;
    for (size_t k = 0; k < sizeof blob; k++)
        if (blob[k] != (unsigned char)id)
            return false;
    return true;
}

static void *ids_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    mine = id;
    memset(blob, id, sizeof blob);
    pthread_barrier_wait(&bar);       /* everyone has written */
    sched_yield();
    bool ok = still_mine(id);
    nap_us(1000 + id * 10);
    ok = ok && still_mine(id);
    if (!ok)
        atomic_fetch_add(&mismatch, 1);
    return NULL;
}

static int mode_ids(void)
{
    pthread_t t[NIDS];
    pthread_barrier_init(&bar, NULL, NIDS);
    for (int i = 0; i < NIDS; i++)
        if (pthread_create(&t[i], NULL, ids_thread, (void *)(intptr_t)i) != 0)
            return 1;
    for (int i = 0; i < NIDS; i++)
        pthread_join(t[i], NULL);
    out("mismatch=%d", atomic_load(&mismatch));
    return 0;
}

/* ----------------------------------------------------------------- init */

static int seen_x[2] = { -1, -1 }, seen_zeroed[2] = { -1, -1 };

static void *init_grandchild(void *arg)
{
    (void)arg;
    seen_x[1] = x;
    seen_zeroed[1] = zeroed;
    return NULL;
}

static void *init_child(void *arg)
{
    (void)arg;
    seen_x[0] = x;
    seen_zeroed[0] = zeroed;
    x = 99;
    zeroed = 98;
    sched_yield();
    pthread_t t;
    pthread_create(&t, NULL, init_grandchild, NULL);
    pthread_join(t, NULL);
    return NULL;
}

static int mode_init(void)
{
    x = 7;
    zeroed = 5;
    pthread_t t;
    if (pthread_create(&t, NULL, init_child, NULL) != 0)
        return 1;
    pthread_join(t, NULL);
    bool ok = seen_x[0] == 42 && seen_zeroed[0] == 0 && seen_x[1] == 42 &&
              seen_zeroed[1] == 0 && x == 7 && zeroed == 5;
    out("init_ok=%d", ok);
    out("child_x=%d child_zeroed=%d grandchild_x=%d grandchild_zeroed=%d main_x=%d main_zeroed=%d",
        seen_x[0], seen_zeroed[0], seen_x[1], seen_zeroed[1], x, zeroed);
    return 0;
}

/* --------------------------------------------------------------- dlopen */

#define NDL 20
static int gate[2];
static int (*mod_get)(void);
static void (*mod_set)(int);

static void *dl_thread(void *arg)
{
    int id = (int)(intptr_t)arg + 100;
    char c;
    if (read(gate[0], &c, 1) != 1)
        atomic_fetch_add(&mismatch, 1000);
    bool ok = mod_get() == 5;
    mod_set(id);
    sched_yield();
    ok = ok && mod_get() == id;
    nap_us(1000 + id * 10);
    ok = ok && mod_get() == id;
    if (!ok)
        atomic_fetch_add(&mismatch, 1);
    return NULL;
}

/* libtlsmod.so, beside this program: 0, or -1. */
static int tlsmod_path(char path[PATH_MAX])
{
    ssize_t n = readlink("/proc/self/exe", path, PATH_MAX - 32);
    if (n <= 0)
        return -1;
    path[n] = 0;
    strcpy(strrchr(path, '/') + 1, "libtlsmod.so");
    return 0;
}

static int mode_dlopen(void)
{
    char path[PATH_MAX];
    if (tlsmod_path(path) != 0)
        return 1;
    pthread_t t[NDL];
    if (pipe(gate) != 0)
        return 1;
    for (int i = 0; i < NDL; i++)
        if (pthread_create(&t[i], NULL, dl_thread, (void *)(intptr_t)i) != 0)
            return 1;
    nap_us(20000);                    /* they all started and wait */
    void *h = dlopen(path, RTLD_NOW);
    if (!h) {
        out("dlopen_error=%s", dlerror());
        return 1;
    }
    *(void **)&mod_get = dlsym(h, "tlsmod_get");
    *(void **)&mod_set = dlsym(h, "tlsmod_set");
    char go[NDL] = { 0 };
    if (write(gate[1], go, sizeof go) != (ssize_t)sizeof go)
        return 1;
    for (int i = 0; i < NDL; i++)
        pthread_join(t[i], NULL);
    out("mismatch=%d", atomic_load(&mismatch));
    return 0;
}

static atomic_int ran;

static void *dlclose_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    mine = id;
    nap_us(2000);
    if (mine != id)
        atomic_fetch_add(&mismatch, 1);
    atomic_fetch_add(&ran, 1);
    return NULL;
}

static int mode_dlclose(void)
{
    char path[PATH_MAX];
    if (tlsmod_path(path) != 0)
        return 1;
    void *h = dlopen(path, RTLD_NOW);
    if (!h)
        return 1;
    void (*set)(int);
    *(void **)&set = dlsym(h, "tlsmod_set");
    set(1);
    pthread_t t[10];
    for (int i = 0; i < 10; i++)
        if (pthread_create(&t[i], NULL, dlclose_thread, (void *)(intptr_t)i) != 0)
            return 1;
    if (dlclose(h) != 0)
        return 1;
    for (int i = 0; i < 10; i++)
        pthread_join(t[i], NULL);
    out("mismatch=%d", atomic_load(&mismatch));
    out("ran=%d", atomic_load(&ran));
    return 0;
}

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t handler_saw = -1;
static atomic_int waiting;

static void on_usr1(int sig)
{
    (void)sig;
    handler_saw = mine;
}

static void *signal_thread(void *arg)
{
    (void)arg;
    mine = 7;
    atomic_store(&waiting, 1);
    pthread_mutex_lock(&held);        /* parked until main unlocks */
    pthread_mutex_unlock(&held);
    return NULL;
}

static int mode_signal(void)
{
    struct sigaction sa = { .sa_handler = on_usr1 };
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        return 1;
    mine = 1;
    pthread_mutex_lock(&held);
    pthread_t t;
    if (pthread_create(&t, NULL, signal_thread, NULL) != 0)
        return 1;
    while (!atomic_load(&waiting))
        nap_us(1000);
    nap_us(5000);                     /* it waits for the mutex */
    pthread_kill(t, SIGUSR1);
    for (int i = 0; i < 1000 && handler_saw < 0; i++)
        nap_us(1000);
    pthread_mutex_unlock(&held);
    pthread_join(t, NULL);
    out("handler_saw=%d", (int)handler_saw);
    out("main_mine=%d", mine);
    return 0;
}

/* ------------------------------------------------------------ address */

#include <linux/futex.h>
#include <sys/syscall.h>

#define AD_N 8
struct waiter {
    atomic_int word;
    int value;
};
static __thread struct waiter me_waiting;
static struct waiter *published[AD_N];
static pthread_mutex_t pub_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int ad_mismatch, ad_timeouts;

static void *ad_worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    me_waiting.value = -1;
    pthread_mutex_lock(&pub_lock);
    published[i] = &me_waiting;
    pthread_mutex_unlock(&pub_lock);
    int waits = 0;
    while (!atomic_load(&me_waiting.word) && waits < 50) {
        struct timespec to = { 0, 100 * 1000 * 1000 };
        syscall(SYS_futex, &me_waiting.word, FUTEX_WAIT_PRIVATE, 0, &to, NULL, 0);
        waits++;
    }
    if (!atomic_load(&me_waiting.word))
        atomic_fetch_add(&ad_timeouts, 1);
    else if (me_waiting.value != 10 * i + 1)
        atomic_fetch_add(&ad_mismatch, 1);
    return NULL;
}

static int mode_address(void)
{
    pthread_t t[AD_N];
    for (int i = 0; i < AD_N; i++)
        pthread_create(&t[i], NULL, ad_worker, (void *)(intptr_t)i);
    for (int all = 0, tries = 0; !all && tries < 5000; tries++) {
        pthread_mutex_lock(&pub_lock);
        all = 1;
        for (int i = 0; i < AD_N; i++)
            all &= published[i] != NULL;
        pthread_mutex_unlock(&pub_lock);
        if (!all)
            nap_us(1000);
    }
    nap_us(20000);                    /* they wait on their words */
    int distinct = 0;
    for (int i = 0; i < AD_N; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= published[j] == published[i];
        distinct += published[i] && !seen;
    }
    for (int i = 0; i < AD_N; i++) {
        if (!published[i])
            continue;
        published[i]->value = 10 * i + 1;
        atomic_store(&published[i]->word, 1);
        syscall(SYS_futex, &published[i]->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    for (int i = 0; i < AD_N; i++)
        pthread_join(t[i], NULL);
    out("distinct=%d", distinct);
    out("mismatch=%d", atomic_load(&ad_mismatch));
    out("timeouts=%d", atomic_load(&ad_timeouts));
    return 0;
}

int main(int argc, char **argv)
{
    Dl_info di;
    void *pc = dlsym(RTLD_DEFAULT, "pthread_create");
    int green = pc && dladdr(pc, &di) && di.dli_fname &&
                strstr(di.dli_fname, "libgreen");
    out("green=%d", green);
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "ids"))
        return mode_ids();
    if (!strcmp(m, "init"))
        return mode_init();
    if (!strcmp(m, "dlopen"))
        return mode_dlopen();
    if (!strcmp(m, "dlclose"))
        return mode_dlclose();
    if (!strcmp(m, "signal"))
        return mode_signal();
    if (!strcmp(m, "address"))
        return mode_address();
    out("unknown mode %s", m);
    return 2;
}

/*
 * real.c - resolves the one table of real libc functions (see real.h).
 */
#define _GNU_SOURCE
#include "real.h"
#include <dlfcn.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct green__real_table green__real;
atomic_int green__real_ready;

/* green__real_ready: 0 nobody started, 1 one thread is resolving, 2 done.
 * One thread resolves; others that come meanwhile wait for it (a few
 * dozen dlsym calls, once per process: under the shim the constructor
 * does it before any thread exists). */
void green__real_init(void)
{
    int st = atomic_load_explicit(&green__real_ready, memory_order_acquire);
    if (st == 2)
        return;
    if (st == 0 && atomic_compare_exchange_strong_explicit(
                       &green__real_ready, &st, 1, memory_order_acquire,
                       memory_order_acquire)) {
#define GREEN__REAL_RESOLVE(ret, name, params) \
        green__real.name = (ret(*) params)dlsym(RTLD_NEXT, #name);
        GREEN__REAL_FUNCS(GREEN__REAL_RESOLVE)
#undef GREEN__REAL_RESOLVE
        /* The condition variables exist twice on x86-64; take the current
         * ABI (dlsym may hand back the 2.2.5 one, whose layout differs).
         * Other architectures have one version, found above. */
#define GREEN__REAL_COND(name)                                                \
        do {                                                                  \
            void *p = dlvsym(RTLD_NEXT, #name, "GLIBC_2.3.2");                \
            if (p)                                                            \
                memcpy(&green__real.name, &p, sizeof p);                      \
        } while (0)
        GREEN__REAL_COND(pthread_cond_init);
        GREEN__REAL_COND(pthread_cond_destroy);
        GREEN__REAL_COND(pthread_cond_wait);
        GREEN__REAL_COND(pthread_cond_timedwait);
        GREEN__REAL_COND(pthread_cond_signal);
        GREEN__REAL_COND(pthread_cond_broadcast);
#undef GREEN__REAL_COND
        atomic_store_explicit(&green__real_ready, 2, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&green__real_ready, memory_order_acquire) != 2)
        syscall(SYS_sched_yield);   /* not the hooked sched_yield: no table yet */
}

/*
 * real.c - resolves the table of real libc functions (see real.h).
 */
#define _GNU_SOURCE
#include "real.h"
#include <dlfcn.h>
#include <stdatomic.h>

struct green__real_table green__real;

static atomic_int resolved;

void green__real_init(void)
{
    if (atomic_load_explicit(&resolved, memory_order_acquire))
        return;
    /* Racing initialisers store the same pointers: harmless. */
#define GREEN__REAL_RESOLVE(ret, name, params) \
    green__real.name = (ret(*) params)dlsym(RTLD_NEXT, #name);
    GREEN__REAL_FUNCS(GREEN__REAL_RESOLVE)
#undef GREEN__REAL_RESOLVE
    atomic_store_explicit(&resolved, 1, memory_order_release);
}

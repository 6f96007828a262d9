/*
 * hooks_tls.h - the thread-local storage hooks (hooks/tls_atexit.c):
 * C++ thread_local destructors of green threads, and dlclose.
 */
#ifndef GREEN_HOOKS_TLS_H
#define GREEN_HOOKS_TLS_H

#include "hooks.h"

/* glibc's __cxa_thread_atexit_impl (libstdc++ calls it for every
 * thread_local object with a destructor, on first use): 0, or -1 when
 * out of memory. */
GREEN_HIDDEN int green_hook___cxa_thread_atexit_impl(void (*fn)(void *), void *obj,
                                                     void *dso);

/* dlclose: the real one, then every hub's next thread-local swap looks
 * at the modules again (libgreen/tls.c). */
GREEN_HIDDEN int green_hook_dlclose(void *handle);

#endif

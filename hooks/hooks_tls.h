/*
 * hooks_tls.h - the thread-local storage hook (hooks/tls_atexit.c):
 * C++ thread_local destructors of green threads.
 */
#ifndef GREEN_HOOKS_TLS_H
#define GREEN_HOOKS_TLS_H

#include "hooks.h"

/* glibc's __cxa_thread_atexit_impl (libstdc++ calls it for every
 * thread_local object with a destructor, on first use): 0, or -1 when
 * out of memory. */
GREEN_HIDDEN int green_hook___cxa_thread_atexit_impl(void (*fn)(void *), void *obj,
                                                     void *dso);

#endif

/*
 * hooks_tls.h - the thread-local storage hooks (hooks/tls_atexit.c):
 * C++ thread_local destructors of green threads, dlclose, and uselocale
 * (libc's thread-local locale).
 */
#ifndef GREEN_HOOKS_TLS_H
#define GREEN_HOOKS_TLS_H

#include "hooks.h"
#include <locale.h>

/* glibc's __cxa_thread_atexit_impl (libstdc++ calls it for every
 * thread_local object with a destructor, on first use): 0, or -1 when
 * out of memory. */
GREEN_HIDDEN int green_hook___cxa_thread_atexit_impl(void (*fn)(void *), void *obj,
                                                     void *dso);

/* dlclose: the real one, then every hub's next thread-local swap looks
 * at the modules again (libgreen/tls.c). */
GREEN_HIDDEN int green_hook_dlclose(void *handle);

/* uselocale: the real one, and the calling green thread's locale is
 * recorded, so that a switch gives every green thread its own
 * (libgreen/tls.c, "Locales"). */
GREEN_HIDDEN locale_t green_hook_uselocale(locale_t loc);

#endif

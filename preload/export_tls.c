/*
 * export_tls.c - the libc names of the thread-local storage hooks
 * (hooks/tls_atexit.c). One line each; the logic and its documentation
 * live in hooks/ and libgreen/tls.c.
 */
#define _GNU_SOURCE
#include "hooks_tls.h"

#define E GREEN_EXPORT

E int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso);
E int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso) { return green_hook___cxa_thread_atexit_impl(fn, obj, dso); }
E int dlclose(void *handle) { return green_hook_dlclose(handle); }
E locale_t uselocale(locale_t loc) { return green_hook_uselocale(loc); }

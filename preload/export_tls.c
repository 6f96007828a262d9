/*
 * export_tls.c - the libc name of the thread-local storage hook
 * (hooks/tls_atexit.c). One line; the logic and its documentation live
 * in hooks/ and libgreen/tls.c.
 */
#define _GNU_SOURCE
#include "hooks_tls.h"

#define E GREEN_EXPORT

E int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso);
E int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso) { return green_hook___cxa_thread_atexit_impl(fn, obj, dso); }

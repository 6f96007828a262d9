/*
 * export_syscall.c - libc's syscall(): picks up the six argument words,
 * as libc's reads them whatever the number, and calls the hook
 * (hooks/syscall.c).
 */
#define _GNU_SOURCE
#include "hooks_syscall.h"
#include <stdarg.h>

/* Not instrumented: reading the words the caller may not have passed is
 * what libc's syscall does too (it cannot know how many there are). */
__attribute__((no_sanitize_address))
GREEN_EXPORT long syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    return green_hook_syscall(nr, a1, a2, a3, a4, a5, a6);
}

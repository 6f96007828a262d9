/*
 * hooks_syscall.h - libc's syscall() under the shim (syscall.c): futex(2)
 * cooperative for green threads, the blocking numbers sent to the hooks
 * of their libc names, everything else passed through. The exported
 * variadic one-liner is in preload/export_syscall.c.
 */
#ifndef GREEN_HOOKS_SYSCALL_H
#define GREEN_HOOKS_SYSCALL_H

#include "hooks.h"

/* syscall(nr, a1..a6): same result convention (-1 and errno). May switch. */
long green_hook_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
    __attribute__((visibility("hidden")));

#endif

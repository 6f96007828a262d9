/*
 * syscall_names.h - names, descriptor arguments and advice for the system
 * calls a green thread may block in without the shim's knowledge
 * (syscall_names.c; used by the monitor, monitor.c).
 */
#ifndef GREEN_SYSCALL_NAMES_H
#define GREEN_SYSCALL_NAMES_H

#include "green_internal.h"

/* What the monitor knows about one system call number. */
struct green__syscall_info {
    long nr;              /* this architecture's number */
    const char *name;     /* as in syscalls(2) */
    signed char fd_arg;   /* index of an argument that is a descriptor, or -1 */
    const char *advice;   /* one or two sentences: why the shim did not park
                             it and what to do */
};

/* The entry for nr, or NULL when nr is not one of the blocking calls the
 * table lists (the monitor then prints the number alone). */
GREEN_HIDDEN const struct green__syscall_info *green__syscall_info(long nr);

/* The advice for a call the table does not list. */
GREEN_HIDDEN const char *green__syscall_advice_other(void);

#endif

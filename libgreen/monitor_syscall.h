/*
 * monitor_syscall.h - the seam between the monitor's watchdog (monitor.c)
 * and its report on hubs blocked in a system call (monitor_syscall.c).
 * Everything here runs on the watchdog thread, never in a signal handler,
 * except the two monitor.c helpers, which are async-signal-safe.
 */
#ifndef GREEN_MONITOR_SYSCALL_H
#define GREEN_MONITOR_SYSCALL_H

#include "green_internal.h"
#include <sys/types.h>

#define GREEN__BT_FRAMES 48    /* frames a report prints at most */

/* An OS thread asleep in a system call, from /proc/self/task/TID/syscall. */
struct green__sysc {
    long nr;                   /* the call's number */
    uint64_t arg[6];           /* its arguments */
    uintptr_t sp, pc;          /* user stack pointer and pc at the call */
};

/* What waits for a hub whose OS thread is asleep in a system call. */
struct green__hub_wait {
    int runnable;              /* green threads on its run queue (hub excluded) */
    bool events;               /* a ready descriptor, a deadline passed, a
                                  post from another hub */
};

/* monitor.c: write f plus a newline to fd with the real write; print
 * frame i at pc ("libgreen:   #i 0x... sym+off (file+off)"). */
GREEN_HIDDEN void green__monitor_line(int fd, struct green__fmt *f);
GREEN_HIDDEN void green__monitor_bt_line(int i, void *pc);

/* Read the small /proc file path into b (NUL-terminated, raw system
 * calls). Returns the bytes read or -1. */
GREEN_HIDDEN ssize_t green__proc_read(const char *path, char *b, size_t cap);

/* True if OS thread tid is asleep in a system call now (s filled in). */
GREEN_HIDDEN bool green__in_syscall(pid_t tid, struct green__sysc *s);

/* True if anything waits for hub c (wt filled in); its owner should be
 * asleep in the kernel. *epfd caches c's epoll descriptor, found with the
 * timerfd *epfd_tfd (both -1 at first). */
GREEN_HIDDEN bool green__hub_waiting(struct green__ctx *c, int *epfd, int *epfd_tfd,
                                     int64_t now, struct green__hub_wait *wt);

/* Print the report on green thread id "name" (stack top stack_hi, or 0),
 * asleep in sc on OS thread tid for ms (oncpu_ms of them on a CPU). */
GREEN_HIDDEN void green__report_syscall(pid_t tid, uint64_t id, const char *name,
                                        uintptr_t stack_hi, const struct green__sysc *sc,
                                        int ms, int oncpu_ms,
                                        const struct green__hub_wait *wt);

#endif

/*
 * syscall_names.c - the system calls a green thread can block in behind
 * the shim's back, by number, with the advice the monitor prints.
 *
 * What it is. When the monitor (monitor.c) finds a hub's OS thread asleep
 * in the kernel while other green threads wait for it, it reads the call's
 * number from /proc/self/task/TID/syscall and looks it up here: a name, the
 * argument that is a descriptor (the monitor resolves it through
 * /proc/self/fd, so a read on a regular file and a read on a pipe read
 * differently), and a sentence or two on why the shim did not park it and
 * what the user can do.
 *
 * Invariants. The numbers are the C library's SYS_* constants of the
 * architecture being compiled (x86-64 and aarch64 have different ones, and
 * aarch64 has no poll, select, epoll_wait, open or pause): nothing here is
 * a hand-copied number, and a call an architecture lacks is simply absent.
 * Only calls that can wait are listed; any other number is printed as a
 * number, with the general advice. Lookups are a linear scan of ~50
 * entries, made once per report, from the watchdog thread.
 *
 * Rejected: a full generated table of every system call of both
 * architectures (hundreds of names nobody blocks in, and a second source
 * of truth beside <sys/syscall.h>); advice per library or daemon beyond
 * the few the monitor is known to meet (io_uring and libaio in MariaDB):
 * advice that guesses is worse than none.
 */
#define _GNU_SOURCE
#include "syscall_names.h"
#include <sys/syscall.h>

#define ADV_RW "I/O the shim passed through: on a regular file or a block " \
    "device it runs on this OS thread unless GREEN_HOOKS includes file " \
    "(GREEN_HOOKS=+file: the worker pool); otherwise a raw system call, " \
    "glibc's internal read (stdio on a socket or pipe), or the io family " \
    "switched off in GREEN_HOOKS."
#define ADV_SOCK "socket I/O the shim passed through: a raw system call, " \
    "or the io family switched off in GREEN_HOOKS."
#define ADV_POLL "a wait for descriptors the shim passed through: a raw " \
    "system call, or the io family switched off in GREEN_HOOKS."
#define ADV_SLEEP "a sleep the shim passed through: a raw system call, or " \
    "the sleep family switched off in GREEN_HOOKS."
#define ADV_FUTEX "a lock or wait on a raw futex (inline assembly, a " \
    "static libc, or a priority-inheritance operation: futex through " \
    "libc's syscall() parks only the green thread): the thread " \
    "that would wake it may be a green thread of this hub, which cannot " \
    "run. Use pthread locks, or keep such threads OS threads " \
    "(GREEN_HOOKS=-thread)."
#define ADV_URING "io_uring used through raw system calls (liburing): the " \
    "shim cannot park it. Turn the program's io_uring off (MariaDB: " \
    "innodb_use_native_aio=0)."
#define ADV_AIO "Linux native AIO (libaio) used through raw system calls: " \
    "the shim cannot park it. Turn the program's native AIO off (MariaDB: " \
    "innodb_use_native_aio=0)."
#define ADV_CHILD "a wait for a child process the shim passed through: a " \
    "raw system call, or the proc family switched off in GREEN_HOOKS."
#define ADV_SIGNAL "a wait for a signal made through a raw system call " \
    "(sigsuspend, sigtimedwait and pause are cooperative through libc)."
#define ADV_IPC "a System V or POSIX IPC wait (semaphore set, message " \
    "queue) made through a raw system call, or one the shim passed through " \
    "(GREEN_HOOKS without io): libc's semop, msgsnd, msgrcv and mq_* wait " \
    "on a thread of their own. Make the call through libc, set " \
    "GREEN_SYSCALL_DISPATCH=1, or make it on a worker (green_offload)."
#define ADV_LOCK "a file lock wait (flock, fcntl F_SETLKW) made through " \
    "a raw system call, or an fcntl the shim passed through (GREEN_HOOKS " \
    "without io): libc's flock, fcntl and lockf wait on a thread of their " \
    "own. Make the call through libc, or on a worker (green_offload)."
#define ADV_OPEN "an open that waits (a slow or remote file system, a " \
    "device; a FIFO opened through a raw system call): the shim offloads " \
    "only FIFO opens made through libc."
#define ADV_SYNC "flushing a file to disk: not cooperative. Make the call " \
    "on a worker (green_offload) or in a plain OS thread."
#define ADV_OTHER "a system call the shim does not make cooperative: every " \
    "green thread of this hub waits until it returns. Make it on a worker " \
    "(green_offload) or in a plain OS thread, or use the program's " \
    "setting that avoids it."

static const struct green__syscall_info table[] = {
#ifdef SYS_read
    { SYS_read, "read", 0, ADV_RW },
#endif
#ifdef SYS_write
    { SYS_write, "write", 0, ADV_RW },
#endif
#ifdef SYS_pread64
    { SYS_pread64, "pread64", 0, ADV_RW },
#endif
#ifdef SYS_pwrite64
    { SYS_pwrite64, "pwrite64", 0, ADV_RW },
#endif
#ifdef SYS_readv
    { SYS_readv, "readv", 0, ADV_RW },
#endif
#ifdef SYS_writev
    { SYS_writev, "writev", 0, ADV_RW },
#endif
#ifdef SYS_preadv
    { SYS_preadv, "preadv", 0, ADV_RW },
#endif
#ifdef SYS_pwritev
    { SYS_pwritev, "pwritev", 0, ADV_RW },
#endif
#ifdef SYS_preadv2
    { SYS_preadv2, "preadv2", 0, ADV_RW },
#endif
#ifdef SYS_pwritev2
    { SYS_pwritev2, "pwritev2", 0, ADV_RW },
#endif
#ifdef SYS_recvfrom
    { SYS_recvfrom, "recvfrom", 0, ADV_SOCK },
#endif
#ifdef SYS_sendto
    { SYS_sendto, "sendto", 0, ADV_SOCK },
#endif
#ifdef SYS_recvmsg
    { SYS_recvmsg, "recvmsg", 0, ADV_SOCK },
#endif
#ifdef SYS_sendmsg
    { SYS_sendmsg, "sendmsg", 0, ADV_SOCK },
#endif
#ifdef SYS_recvmmsg
    { SYS_recvmmsg, "recvmmsg", 0, ADV_SOCK },
#endif
#ifdef SYS_sendmmsg
    { SYS_sendmmsg, "sendmmsg", 0, ADV_SOCK },
#endif
#ifdef SYS_accept
    { SYS_accept, "accept", 0, ADV_SOCK },
#endif
#ifdef SYS_accept4
    { SYS_accept4, "accept4", 0, ADV_SOCK },
#endif
#ifdef SYS_connect
    { SYS_connect, "connect", 0, ADV_SOCK },
#endif
#ifdef SYS_poll
    { SYS_poll, "poll", -1, ADV_POLL },
#endif
#ifdef SYS_ppoll
    { SYS_ppoll, "ppoll", -1, ADV_POLL },
#endif
#ifdef SYS_select
    { SYS_select, "select", -1, ADV_POLL },
#endif
#ifdef SYS_pselect6
    { SYS_pselect6, "pselect6", -1, ADV_POLL },
#endif
#ifdef SYS_epoll_wait
    { SYS_epoll_wait, "epoll_wait", 0, ADV_POLL },
#endif
#ifdef SYS_epoll_pwait
    { SYS_epoll_pwait, "epoll_pwait", 0, ADV_POLL },
#endif
#ifdef SYS_epoll_pwait2
    { SYS_epoll_pwait2, "epoll_pwait2", 0, ADV_POLL },
#endif
#ifdef SYS_nanosleep
    { SYS_nanosleep, "nanosleep", -1, ADV_SLEEP },
#endif
#ifdef SYS_clock_nanosleep
    { SYS_clock_nanosleep, "clock_nanosleep", -1, ADV_SLEEP },
#endif
#ifdef SYS_futex
    { SYS_futex, "futex", -1, ADV_FUTEX },
#endif
#ifdef SYS_futex_waitv
    { SYS_futex_waitv, "futex_waitv", -1, ADV_FUTEX },
#endif
#ifdef SYS_futex_wait
    { SYS_futex_wait, "futex_wait", -1, ADV_FUTEX },
#endif
#ifdef SYS_io_uring_enter
    { SYS_io_uring_enter, "io_uring_enter", 0, ADV_URING },
#endif
#ifdef SYS_io_getevents
    { SYS_io_getevents, "io_getevents", -1, ADV_AIO },
#endif
#ifdef SYS_io_pgetevents
    { SYS_io_pgetevents, "io_pgetevents", -1, ADV_AIO },
#endif
#ifdef SYS_wait4
    { SYS_wait4, "wait4", -1, ADV_CHILD },
#endif
#ifdef SYS_waitid
    { SYS_waitid, "waitid", -1, ADV_CHILD },
#endif
#ifdef SYS_pause
    { SYS_pause, "pause", -1, ADV_SIGNAL },
#endif
#ifdef SYS_rt_sigsuspend
    { SYS_rt_sigsuspend, "rt_sigsuspend", -1, ADV_SIGNAL },
#endif
#ifdef SYS_rt_sigtimedwait
    { SYS_rt_sigtimedwait, "rt_sigtimedwait", -1, ADV_SIGNAL },
#endif
#ifdef SYS_msgrcv
    { SYS_msgrcv, "msgrcv", -1, ADV_IPC },
#endif
#ifdef SYS_msgsnd
    { SYS_msgsnd, "msgsnd", -1, ADV_IPC },
#endif
#ifdef SYS_semop
    { SYS_semop, "semop", -1, ADV_IPC },
#endif
#ifdef SYS_semtimedop
    { SYS_semtimedop, "semtimedop", -1, ADV_IPC },
#endif
#ifdef SYS_mq_timedreceive
    { SYS_mq_timedreceive, "mq_timedreceive", 0, ADV_IPC },
#endif
#ifdef SYS_mq_timedsend
    { SYS_mq_timedsend, "mq_timedsend", 0, ADV_IPC },
#endif
#ifdef SYS_flock
    { SYS_flock, "flock", 0, ADV_LOCK },
#endif
#ifdef SYS_fcntl
    { SYS_fcntl, "fcntl", 0, ADV_LOCK },
#endif
#ifdef SYS_open
    { SYS_open, "open", -1, ADV_OPEN },
#endif
#ifdef SYS_openat
    { SYS_openat, "openat", -1, ADV_OPEN },
#endif
#ifdef SYS_fsync
    { SYS_fsync, "fsync", 0, ADV_SYNC },
#endif
#ifdef SYS_fdatasync
    { SYS_fdatasync, "fdatasync", 0, ADV_SYNC },
#endif
#ifdef SYS_sync_file_range
    { SYS_sync_file_range, "sync_file_range", 0, ADV_SYNC },
#endif
};

const struct green__syscall_info *green__syscall_info(long nr)
{
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (table[i].nr == nr)
            return &table[i];
    return NULL;
}

const char *green__syscall_advice_other(void)
{
    return ADV_OTHER;
}

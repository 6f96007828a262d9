/*
 * io_lock.c - file lock waits: flock, fcntl F_SETLKW / F_OFD_SETLKW, lockf
 * F_LOCK.
 *
 * The problem. A lock that another description or process holds makes
 * the call wait in the kernel, with no descriptor to poll. Made on the
 * hub's OS thread, that wait stops every green thread of the hub, the
 * holder among them when the holder is one of them: two threads of the
 * program that open the same file and flock it, or take OFD locks on it,
 * wait for each other natively and for ever under one hub.
 *
 * What we do. The call is first made as its non-blocking form (LOCK_NB,
 * F_SETLK, F_OFD_SETLK): granted, or failed for another reason than the
 * conflict (EBADF, EINVAL, ENOLCK...), that is the answer, one system
 * call as before. On a conflict the blocking call itself is made by a solo
 * thread (libgreen/solo.c) while the caller parks: the kernel keeps its
 * own wait queue, its deadlock detection (EDEADLK for POSIX locks) and
 * owners (the process, the description), exactly as natively. The first
 * try changes nothing the blocking call would not: a POSIX or OFD request
 * that fails leaves the locks as they were, and flock converts a lock by
 * dropping the old one first in both forms.
 *
 * Signals and cancellation. A handler that runs for the waiting thread
 * stops the kernel's wait (green__solo_end): the call fails with EINTR,
 * or is made again when every handler that ran had SA_RESTART (signal(7)
 * restarts flock and F_SETLKW). A lock granted before the stop is kept and
 * the call succeeds, as natively when the signal comes just after the
 * grant. fcntl and lockf are cancellation points: a pthread_cancel stops
 * the wait and the thread exits there. flock is none in glibc: the wait
 * goes on and the request acts at the next cancellation point.
 *
 * Not here: the hub's own calls, plain OS threads', and those made while
 * a handler runs as a thread off its own context wait in the kernel, as
 * natively (green__solo_start refuses them). GREEN_HOOKS=-io passes every
 * one through.
 */
#define _GNU_SOURCE
#include "io_internal.h"
#include "pthread_internal.h"
#include <fcntl.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

long green__io_solo_call(const long call[7], enum green__why why, uintptr_t why_arg,
                        bool cancel_point, bool restartable)
{
    bool killed = false;
    for (;;) {
        struct green__solo *s = green__solo_start(call, why, why_arg);
        if (!s)
            return GREEN__NO_SOLO;
        int code;
        green__intr_begin();
        while ((code = green__solo_wait(s)) == ECANCELED && !cancel_point) {
            /* No cancellation point: the kill waits for the next one,
             * but an asynchronous cancel ends the thread here (after the
             * kernel's wait, which may use the caller's memory). */
            killed = true;
            if (green__pt_async_cancel_pending()) {
                green__intr_end();
                green__solo_end(s);
                green__pt_lock_killed();
            }
        }
        green__intr_end();
        long r = green__solo_end(s);
        if (r == -EINTR && (code == 0 ||     /* a signal that was not ours */
                            (code == EINTR && restartable && green__intr_restarts())))
            continue;
        if (killed)
            green__pt_rearm_kill();
        if (r != -EINTR || !code)
            return r;              /* EDEADLK, EBADF, ENOLCK, ETIMEDOUT... */
        return -(code == ECANCELED ? green__cancel_point(ECANCELED) : code);
    }
}

/* Waits for the blocking call nr(fd, a2, a3) on a solo thread. Returns its
 * result, or -1 with errno; -2 when no solo thread can make it (then the
 * caller makes it itself). signal(7) restarts file lock waits under
 * SA_RESTART. */
static long solo_wait(long nr, int fd, long a2, long a3, bool cancel_point, int e0)
{
    const long call[7] = { nr, fd, a2, a3 };
    long r = green__io_solo_call(call, GREEN_WHY_FILE_LOCK, (uintptr_t)fd, cancel_point, true);
    return r == GREEN__NO_SOLO ? -2 : green__io_solo_result(r, e0);
}

/* One of libgreen's own descriptor numbers is free as far as the
 * program knows: EBADF, as fcntl and dup say there. */
static bool hidden_ebadf(int fd)
{
    if (!io_on() || !fd_hidden(fd))
        return false;
    errno = EBADF;
    return true;
}

int green_hook_flock(int fd, int op)
{
    if (hidden_ebadf(fd))
        return -1;
    if (!io_on() || (op & LOCK_NB) || (op != LOCK_SH && op != LOCK_EX))
        return REAL(flock)(fd, op);
    int e0 = errno;
    int r = REAL(flock)(fd, op | LOCK_NB);
    if (r == 0 || errno != EWOULDBLOCK)
        return (int)kept(r, e0);
    long w = solo_wait(SYS_flock, fd, op, 0, false, e0);
    return w == -2 ? REAL(flock)(fd, op) : (int)w;
}

/* fcntl(fd, F_SETLKW or F_OFD_SETLKW, fl): from green_hook_fcntl. */
int green__io_lock_wait(int fd, int cmd, struct flock *fl)
{
    if (!io_on() || !fl)
        return REAL(fcntl)(fd, cmd, fl);
    green__cancel_point(0);        /* a pending cancel acts on entry */
    int e0 = errno;
    int nb = cmd == F_SETLKW ? F_SETLK : F_OFD_SETLK;
    int r = REAL(fcntl)(fd, nb, fl);
    if (r == 0 || (errno != EAGAIN && errno != EACCES))
        return (int)kept(r, e0);
    long w = solo_wait(SYS_fcntl, fd, cmd, (long)fl, true, e0);
    return w == -2 ? REAL(fcntl)(fd, cmd, fl) : (int)w;
}

/* glibc's lockf: F_LOCK is fcntl F_SETLKW of a write lock from the
 * current offset over len bytes (0: to the end, for ever); the others
 * never wait. */
int green_hook_lockf(int fd, int cmd, off_t len)
{
    if (hidden_ebadf(fd))
        return -1;
    if (cmd != F_LOCK || !io_on())
        return REAL(lockf)(fd, cmd, len);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_CUR, .l_start = 0, .l_len = len };
    return green__io_lock_wait(fd, F_SETLKW, &fl);
}

/*
 * io_ipc.c - System V and POSIX IPC waits: semop and semtimedop, msgsnd
 * and msgrcv, mq_send, mq_timedsend, mq_receive and mq_timedreceive.
 *
 * The problem. A semaphore set that cannot be decremented, an empty
 * message queue or a full one make these calls wait in the kernel. Made
 * on the hub's OS thread the wait stops every green thread of the hub,
 * the one that would post or send among them: two threads of a program
 * that hand work over a System V queue wait for each other for ever under
 * one hub.
 *
 * What we do. As for file locks (io_lock.c): the call is first made in a
 * form that cannot wait, then, when it would have waited, the call itself
 * is made by a solo thread (libgreen/solo.c) while the caller parks. The
 * kernel keeps its queues, its order of waiters (by priority for POSIX
 * queues), SEM_UNDO, mq_notify (a receiver waits in the kernel, so no
 * notification is sent, as natively) and every error. The first forms:
 *   - semop and semtimedop: semtimedop with a timeout of zero, which the
 *     kernel answers EAGAIN when an operation would wait (the operations
 *     are applied all or none, so a failed try changes nothing);
 *   - msgsnd and msgrcv: with IPC_NOWAIT added (EAGAIN, ENOMSG). msgrcv
 *     with MSG_COPY is never changed: without IPC_NOWAIT the kernel says
 *     EINVAL, with it the call never waits;
 *   - mq_timedsend and mq_timedreceive: with an absolute timeout of zero,
 *     long past (ETIMEDOUT). A description opened O_NONBLOCK says EAGAIN
 *     to both forms, at once.
 * A timeout the caller gave is read first (EFAULT, as the kernel reads it
 * before anything else) and an invalid one goes to the kernel as it is
 * (EINVAL, before any operation). The waiting call gets the caller's own
 * arguments, timeout included: semtimedop's is relative, so a wait that
 * has to be made again (a signal that was not for the caller stopped it)
 * starts it again.
 *
 * Signals and cancellation, as signal(7) and glibc have them. None of
 * these calls restarts under SA_RESTART except the POSIX queue ones:
 * semop, semtimedop, msgsnd and msgrcv fail with EINTR after a handler
 * ran for the caller, mq_* are made again when every handler that ran had
 * SA_RESTART. msgsnd, msgrcv and mq_* are cancellation points (a pending
 * cancel acts on entry, one that arrives during the wait stops it);
 * semop and semtimedop are none.
 *
 * Not here: plain OS threads, the hub, GREEN_HOOKS without io: the libc
 * call as it is. A green thread's call that never waits (IPC_NOWAIT, a
 * zero timeout) is one system call, as before.
 */
#define _GNU_SOURCE
#include "io_internal.h"
#include "hooks_signal.h"
#include <mqueue.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/syscall.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

/* What the dump and the debugger show (GREEN_WHY_IPC): the call's kind
 * in the high half of why_arg, the set, queue or descriptor in the low. */
enum ipc_kind { IPC_SEMOP = 1, IPC_MSGSND, IPC_MSGRCV, IPC_MQ_SEND, IPC_MQ_RECEIVE };

/* A raw system call's result (-1 and errno) as -errno, or the result. */
static long raw(long r)
{
    return r < 0 ? -(long)errno : r;
}

/* The waiting call, on a solo thread; its result (>= 0 or -errno). Where
 * no solo thread can make it, the caller's OS thread makes it. */
static long wait_call(const long call[7], enum ipc_kind kind, long id, bool cancel_point,
                      bool restartable)
{
    uintptr_t arg = ((uintptr_t)kind << 32) | (uint32_t)id;
    long r = green__io_solo_call(call, GREEN_WHY_IPC, arg, cancel_point, restartable);
    if (r != GREEN__NO_SOLO)
        return r;
    return raw(green__syscall7(call[0], call[1], call[2], call[3], call[4], call[5], call[6]));
}

/* Reads the caller's timespec (EFAULT as the kernel says it) and tells
 * whether it is valid; *zero when it is zero (nothing would wait). */
static int read_timeout(const struct timespec *ts, bool *valid, bool *zero)
{
    struct timespec t;
    if (green__copy_in(&t, ts, sizeof t) != 0)
        return -EFAULT;
    *valid = green__ts_valid(&t);
    *zero = t.tv_sec == 0 && t.tv_nsec == 0;
    return 0;
}

/* --------------------------------------------------------- System V */

static long sem_call(int id, struct sembuf *sops, size_t n, const struct timespec *ts)
{
    if (ts) {
        bool valid, zero;
        int e = read_timeout(ts, &valid, &zero);
        if (e)
            return e;
        if (!valid || zero)
            return raw(green__syscall(SYS_semtimedop, id, sops, n, ts));
    }
    static const struct timespec now = { 0, 0 };
    long r = raw(green__syscall(SYS_semtimedop, id, sops, n, &now));
    if (r != -EAGAIN)
        return r;                  /* done, or EINVAL, EIDRM, E2BIG, EFAULT... */
    const long call[7] = { SYS_semtimedop, id, (long)sops, (long)n, (long)ts };
    return wait_call(call, IPC_SEMOP, id, false, false);
}

int green_hook_semop(int id, struct sembuf *sops, size_t n)
{
    if (!io_on())
        return REAL(semop)(id, sops, n);
    int e0 = errno;
    return (int)green__io_solo_result(sem_call(id, sops, n, NULL), e0);
}

int green_hook_semtimedop(int id, struct sembuf *sops, size_t n, const struct timespec *ts)
{
    if (!io_on())
        return REAL(semtimedop)(id, sops, n, ts);
    int e0 = errno;
    return (int)green__io_solo_result(sem_call(id, sops, n, ts), e0);
}

int green_hook_msgsnd(int id, const void *msg, size_t size, int flags)
{
    if (!io_on())
        return REAL(msgsnd)(id, msg, size, flags);
    int e0 = errno;
    green__cancel_point(0);
    long r = raw(green__syscall(SYS_msgsnd, id, msg, size, flags | IPC_NOWAIT));
    if (r == -EAGAIN && !(flags & IPC_NOWAIT)) {
        const long call[7] = { SYS_msgsnd, id, (long)msg, (long)size, flags };
        r = wait_call(call, IPC_MSGSND, id, true, false);
    }
    return (int)green__io_solo_result(r, e0);
}

ssize_t green_hook_msgrcv(int id, void *msg, size_t size, long type, int flags)
{
    if (!io_on())
        return REAL(msgrcv)(id, msg, size, type, flags);
    int e0 = errno;
    green__cancel_point(0);
    if (flags & (IPC_NOWAIT | MSG_COPY))
        return green__io_solo_result(raw(green__syscall(SYS_msgrcv, id, msg, size, type, flags)), e0);
    long r = raw(green__syscall(SYS_msgrcv, id, msg, size, type, flags | IPC_NOWAIT));
    if (r == -ENOMSG) {
        const long call[7] = { SYS_msgrcv, id, (long)msg, (long)size, type, flags };
        r = wait_call(call, IPC_MSGRCV, id, true, false);
    }
    return green__io_solo_result(r, e0);
}

/* ----------------------------------------------------------- POSIX */

/* mq_timedsend (send) or mq_timedreceive: nr(mqd, buf, len, a4, ts),
 * a4 the priority or where to store it. */
static long mq_call(long nr, mqd_t mqd, long buf, size_t len, long a4,
                    const struct timespec *ts)
{
    green__cancel_point(0);
    if (ts) {
        bool valid, zero;
        int e = read_timeout(ts, &valid, &zero);
        if (e)
            return e;
        if (!valid)
            return raw(green__syscall(nr, mqd, buf, len, a4, ts));
    }
    static const struct timespec past = { 0, 0 };
    long r = raw(green__syscall(nr, mqd, buf, len, a4, &past));
    if (r != -ETIMEDOUT)
        return r;                  /* done, or EAGAIN (O_NONBLOCK), EBADF... */
    const long call[7] = { nr, mqd, buf, (long)len, a4, (long)ts };
    return wait_call(call, nr == SYS_mq_timedsend ? IPC_MQ_SEND : IPC_MQ_RECEIVE, mqd, true,
                     true);
}

int green_hook_mq_timedsend(mqd_t mqd, const char *msg, size_t len, unsigned prio,
                            const struct timespec *ts)
{
    if (!io_on())
        return REAL(mq_timedsend)(mqd, msg, len, prio, ts);
    int e0 = errno;
    return (int)green__io_solo_result(mq_call(SYS_mq_timedsend, mqd, (long)msg, len, (long)prio, ts), e0);
}

int green_hook_mq_send(mqd_t mqd, const char *msg, size_t len, unsigned prio)
{
    if (!io_on())
        return REAL(mq_send)(mqd, msg, len, prio);
    int e0 = errno;
    return (int)green__io_solo_result(mq_call(SYS_mq_timedsend, mqd, (long)msg, len, (long)prio, NULL), e0);
}

ssize_t green_hook_mq_timedreceive(mqd_t mqd, char *msg, size_t len, unsigned *prio,
                                   const struct timespec *ts)
{
    if (!io_on())
        return REAL(mq_timedreceive)(mqd, msg, len, prio, ts);
    int e0 = errno;
    return green__io_solo_result(mq_call(SYS_mq_timedreceive, mqd, (long)msg, len, (long)prio, ts), e0);
}

ssize_t green_hook_mq_receive(mqd_t mqd, char *msg, size_t len, unsigned *prio)
{
    if (!io_on())
        return REAL(mq_receive)(mqd, msg, len, prio);
    int e0 = errno;
    return green__io_solo_result(mq_call(SYS_mq_timedreceive, mqd, (long)msg, len, (long)prio, NULL), e0);
}

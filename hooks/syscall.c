/*
 * syscall.c - libc's syscall() under the shim: futex(2) made cooperative,
 * the numbers of blocking calls sent to the hooks of their libc names,
 * everything else passed through unchanged.
 *
 * Why. Programs and libraries that build their own locks call the kernel
 * directly through syscall(): libstdc++ (std::counting_semaphore,
 * std::latch, std::barrier, std::atomic<T>::wait), InnoDB's mutexes and
 * events, GLib's GMutex, Rust's std locks. A FUTEX_WAIT made by a green
 * thread would put its hub's OS thread to sleep in the kernel, with every
 * other green thread of that hub, and the thread that would have woken it
 * is usually one of those: the process hangs. syscall() is a libc
 * function, so it can be interposed like read or sleep.
 *
 * futex. A green thread's FUTEX_WAIT and FUTEX_WAIT_BITSET park it in the
 * lock core's address-keyed wait table (lock.c, "futex words"). A wake
 * (FUTEX_WAKE, WAKE_BITSET, REQUEUE, CMP_REQUEUE, WAKE_OP), from any
 * thread, first wakes green waiters of the table and then passes what is
 * left of its count to the kernel, which reaches plain OS threads (threads
 * the shim did not create wait in the kernel: they have no hub to park
 * on) and other processes. Semantics as futex(2):
 *  - the arguments are checked in the kernel's order before anything
 *    else: the caller's timeout is read with the kernel's check (EFAULT,
 *    EINVAL), a zero bitset is EINVAL, and one system call that cannot
 *    block (futex_probe) reads the word as the wait would: EFAULT, EINVAL
 *    (alignment) or EAGAIN (it does not hold val) come back at once, as
 *    natively; a clock flag on an operation that does not take it is
 *    the kernel's ENOSYS;
 *  - the table compares the word again under its lock, after counting the
 *    waiter in its bucket, and a wake looks at that count after the
 *    program changed the word: no wake-up is lost; spurious ones are
 *    allowed (futex(2) allows them, and every futex user loops);
 *  - a signal handler ends the wait with EINTR, except that a wait
 *    without a timeout restarts under SA_RESTART, as the kernel does
 *    (-ERESTARTSYS versus -ERESTART_RESTARTBLOCK); syscall() is not a
 *    cancellation point: a pthread_cancel (a kill) does not end the wait
 *    and acts at the thread's next cancellation point, or at once for an
 *    asynchronous cancel, as glibc's would in the kernel's wait;
 *  - timeouts: FUTEX_WAIT's is relative, FUTEX_WAIT_BITSET's absolute on
 *    CLOCK_MONOTONIC, or CLOCK_REALTIME with FUTEX_CLOCK_REALTIME.
 *
 * Shared futexes (no FUTEX_PRIVATE_FLAG) are also woken by other
 * processes, straight through the kernel, and a wake need not change the
 * word (LTP's checkpoints wake without a change). So a green thread's wait
 * on one whose word lies in shared memory (in_shared_mapping) is the
 * kernel's own, made by a solo thread while the caller parks
 * (libgreen/solo.c, futex_wait_shared): a wake from anywhere finds it in
 * the kernel's queue and counts it, as natively; a handler for the caller
 * stops it (EINTR, or the wait made again under SA_RESTART when it has no
 * timeout). In private memory every waker is in this process, whatever
 * the flag says (libstdc++'s atomic waits leave FUTEX_PRIVATE_FLAG out):
 * the table serves it, without a thread handoff. Where no solo thread can
 * be had (another architecture, no thread) a shared-memory waiter parks
 * in the table too and every so often (50 us doubling to 5 ms) asks the
 * kernel whether the word still holds its value, which misses a wake from
 * another process that leaves the word as it was.
 *
 * The other numbers. syscall(SYS_read, ...) must behave as read(): it
 * goes to the same hook (read, write, readv, writev, pread64, pwrite64,
 * recvfrom, sendto, recvmsg, sendmsg, accept, accept4, connect, close,
 * poll, select, epoll_wait, nanosleep, clock_nanosleep, wait4,
 * sched_yield, prctl (a thread's name), sigaltstack, flock, semop,
 * semtimedop, msgsnd, msgrcv, mq_timedsend, mq_timedreceive; and fcntl
 * (whose lock waits park too), ioctl, setsockopt, dup, dup2, dup3,
 * close_range, whose hooks keep the descriptor table and its flag cache
 * true),
 * converting where the system call's convention differs from the libc
 * function's (clock_nanosleep returns an error number; epoll_pwait's
 * sigset size). fork, vfork, clone, clone3 and io_uring_setup turn the
 * flag cache off for the life of the process (libgreen/fdstate.c: what
 * they do to descriptors is not seen) and pass through. Every other
 * number passes through to libc's syscall() unchanged.
 *
 * Limits. A futex woken by a raw system call that bypasses syscall()
 * (inline assembly, a statically linked libc) does not reach green
 * waiters of a private futex; such a program needs the syscall user
 * dispatch setting or to stay native. FUTEX_REQUEUE wakes the green
 * waiters it would have moved (they retry, as after any wake-up).
 * Priority-inheritance operations (LOCK_PI, WAIT_REQUEUE_PI...) pass
 * through and block the hub.
 *
 * Rejected: waiting in the kernel on an offload worker (one OS thread per
 * waiter, and a pool that a few waiting threads exhaust); naps for private
 * futexes (idle waiters would cost CPU forever, for the sake of inline
 * assembly wakers that this cannot reach cheaply anyway).
 */
#define _GNU_SOURCE
#include "hooks_syscall.h"
#include "hooks_proc.h"
#include "hooks_signal.h"
#include "hooks_wait.h"
#include "io.h"
#include "lock.h"
#include "pthread_internal.h"
#include <linux/futex.h>
#include <stdlib.h>
#include <stdarg.h>
#include <sys/syscall.h>

#define NS 1000000000LL

/* ------------------------------------------------------------------ futex */

/* How a futex wait parks: any thread may wake it (another hub, a plain OS
 * thread); kills are the hook's to handle. */
static const struct green__lock_how futex_how = { .expect_remote = true };

/* Ask the kernel, without waiting, whether a wait on word would start:
 * 0 (it holds val), or the error the real wait gives at once (EAGAIN,
 * EFAULT, EINVAL). A FUTEX_CMP_REQUEUE of nobody onto the same word reads
 * and checks the word exactly as a wait does and never blocks; a wait
 * with an expired timeout would too, but arms a timer (ten times the
 * cost on a virtual machine). */
static int futex_probe(uint32_t *word, int flags, uint32_t val)
{
    int saved = errno, e;
    do
        e = green__syscall(SYS_futex, word, FUTEX_CMP_REQUEUE | (flags & FUTEX_PRIVATE_FLAG),
                           0, 0, word, val) < 0 ? errno : 0;
    while (e == EINTR);
    errno = saved;
    return e;
}

/* The caller's timeout as a deadline (GREEN_FOREVER without one): 0 or
 * EFAULT, EINVAL. */
static int futex_deadline(int cmd, int flags, const struct timespec *uts, int64_t *deadline)
{
    *deadline = GREEN_FOREVER;
    if (!uts)
        return 0;
    struct timespec ts;
    if (green__copy_in(&ts, uts, sizeof ts) != 0)
        return EFAULT;
    if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= NS)
        return EINVAL;
    if (cmd == FUTEX_WAIT) {
        /* Relative, whatever the clock flag says. */
        *deadline = green_now() + green__ts_ns(&ts);
        return 0;
    }
    return green__pt_deadline((flags & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME
                                                             : CLOCK_MONOTONIC,
                              &ts, deadline);
}

/* Whether addr lies in a shared mapping (MAP_SHARED, System V shm): only
 * there can another process wake a futex. A futex without
 * FUTEX_PRIVATE_FLAG in private memory (libstdc++'s atomic waits) has
 * every waker in this process, where the table serves it. Read from
 * /proc/self/maps, remembered per page (a page remapped since may be
 * judged by its old mapping: then the table serves a shared word, which
 * misses only a wake from another process that leaves the word
 * unchanged). */
#define SHARED_CACHE 64
static _Atomic uintptr_t shared_cache[SHARED_CACHE];   /* page | 1 valid | 2 shared */

struct maps_look {
    uintptr_t addr;
    bool found, shared;
};

/* A line of /proc/self/maps: "lo-hi perms ...", perms' 4th letter 's' or
 * 'p'. */
static bool maps_line(const char *line, void *arg)
{
    struct maps_look *m = arg;
    char *p;
    uintptr_t lo = strtoul(line, &p, 16), hi = *p == '-' ? strtoul(p + 1, &p, 16) : 0;
    if (lo > m->addr || m->addr >= hi)
        return false;
    m->shared = p[0] == ' ' && p[1] && p[2] && p[3] && p[4] == 's';
    m->found = true;
    return true;
}

static bool in_shared_mapping(const void *addr)
{
    uintptr_t page = (uintptr_t)addr & ~(uintptr_t)4095;
    _Atomic uintptr_t *slot = &shared_cache[(page >> 12) % SHARED_CACHE];
    uintptr_t e = atomic_load_explicit(slot, memory_order_relaxed);
    if ((e & ~(uintptr_t)4095) == page && (e & 1))
        return (e & 2) != 0;
    struct maps_look m = { .addr = (uintptr_t)addr };
    char buf[4096];
    green__proc_lines("/proc/self/maps", buf, sizeof buf, maps_line, &m);
    if (m.found)
        atomic_store_explicit(slot, page | 1 | (m.shared ? 2 : 0), memory_order_relaxed);
    return m.shared;
}

/* A green thread's wait on a shared futex: the kernel's own, made by a
 * solo thread (libgreen/solo.c) while the caller parks, so that a waker in
 * another process finds it in the kernel's queue. -1/errno, 0, or -2 when
 * no solo thread can make it. */
static long futex_wait_shared(uint32_t *word, int op, uint32_t val,
                              const struct timespec *uts, uint32_t bitset)
{
    const long call[7] = { SYS_futex, (long)word, op, (long)val, (long)uts, 0, (long)bitset };
    /* Restarted under SA_RESTART without a timeout, as the kernel does. */
    long r = green__io_solo_call(call, GREEN_WHY_FUTEX, (uintptr_t)word, false, !uts);
    if (r == GREEN__NO_SOLO)
        return -2;
    if (r >= 0)
        return 0;
    errno = (int)-r;
    return -1;
}

/* A green thread's FUTEX_WAIT or FUTEX_WAIT_BITSET. -1/errno or 0. */
static long futex_wait_green(uint32_t *word, int op, uint32_t val,
                             const struct timespec *uts, uint32_t bitset)
{
    int cmd = op & FUTEX_CMD_MASK, flags = op & ~FUTEX_CMD_MASK;
    if (cmd == FUTEX_WAIT)
        bitset = FUTEX_BITSET_MATCH_ANY;
    int64_t deadline;
    int e = futex_deadline(cmd, flags, uts, &deadline);
    if (!e && !bitset)
        e = EINVAL;
    if (!e)
        e = futex_probe(word, flags, val);
    if (e) {
        errno = e;
        return -1;
    }
    green__tls_futex_note(word);
    if (!(op & FUTEX_PRIVATE_FLAG) && in_shared_mapping(word)) {
        long r = futex_wait_shared(word, op, val, uts, bitset);
        if (r != -2)
            return r;
    }
    struct green_thread *self = green__current();
    bool shared = !(op & FUTEX_PRIVATE_FLAG), killed = false;
    bool restartable = uts == NULL;
    int64_t nap = GREEN_USEC(50);
    int code;
    green__intr_begin();
    for (;;) {
        int64_t until = deadline;
        if (shared) {
            int64_t n = green_now() + nap;
            if (until < 0 || n < until)
                until = n;
        }
        code = green__futex_wait(word, val, bitset, self, until, &futex_how);
        if (code == ECANCELED) {
            /* Not a cancellation point: the kill waits for the next one
             * (an asynchronous cancel ends the thread here). */
            killed = true;
            green__pt_lock_killed();
            continue;
        }
        if (code == ETIMEDOUT && until != deadline) {
            /* A shared futex's look at the word. */
            nap = nap >= GREEN_MSEC(5) ? nap : nap * 2;
            int p = futex_probe(word, flags, val);
            if (p == 0)
                continue;
            code = 0;      /* the word changed: as woken */
        }
        if (code == EINTR && restartable && green__intr_restarts()) {
            green__intr_begin();
            continue;
        }
        break;
    }
    green__intr_end();
    if (killed)
        self->kill_pending |= GREEN__KP_KILL;
    if (code == 0 || code == EAGAIN)
        return 0;          /* woken (EAGAIN: an outside poke, a spurious wake) */
    errno = code == ECANCELED ? EINTR : code;
    return -1;
}

/* The kernel's part of a wake: the waiters the table did not have. */
static long kernel_futex(uint32_t *word, int op, long val, long a4, uint32_t *word2,
                         long val3)
{
    return green__syscall(SYS_futex, word, op, val, a4, word2, val3);
}

static long futex_hook(uint32_t *word, int op, uint32_t val, long a4, uint32_t *word2,
                       uint32_t val3)
{
    int cmd = op & FUTEX_CMD_MASK;
    bool clock_ok = cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET;
    if ((op & FUTEX_CLOCK_REALTIME) && !clock_ok)
        return GREEN_REAL(syscall)(SYS_futex, word, op, val, a4, word2, val3);
    switch (cmd) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET:
        if (!green__pt_on())
            break;        /* a plain OS thread, the hub: the kernel's wait */
        return futex_wait_green(word, op, val, (const struct timespec *)a4, val3);
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET: {
        uint32_t bits = cmd == FUTEX_WAKE ? FUTEX_BITSET_MATCH_ANY : val3;
        int n = (int)val;
        int g = bits ? green__futex_wake(word, n, bits) : 0;
        if (g > 0 && g >= n)
            return g;
        long k = kernel_futex(word, op, n - g, a4, word2, val3);
        return k < 0 ? (g ? g : -1) : g + k;
    }
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE: {
        int nwake = (int)val, nmove = (int)a4;
        if (nwake < 0 || nmove < 0)
            break;        /* EINVAL from the kernel */
        int g = green__futex_requeue(word, nwake, nmove,
                                     cmd == FUTEX_CMP_REQUEUE ? word : NULL, val3);
        if (g < 0) {
            errno = -g;
            return -1;
        }
        int gw = g < nwake ? g : nwake, gm = g - gw;
        if (gw >= nwake && gm >= nmove && g > 0)
            return g;
        long k = kernel_futex(word, op, nwake - gw, nmove - gm, word2, val3);
        return k < 0 ? (g ? g : -1) : g + k;
    }
    case FUTEX_WAKE_OP: {
        /* The kernel applies the operation to word2 and wakes its own
         * waiters; green waiters of both words are woken, those of word2
         * whether or not the comparison held (a spurious wake-up). */
        int n1 = (int)val, n2 = (int)a4;
        int g1 = n1 > 0 ? green__futex_wake(word, n1, FUTEX_BITSET_MATCH_ANY) : 0;
        int g2 = n2 > 0 ? green__futex_wake(word2, n2, FUTEX_BITSET_MATCH_ANY) : 0;
        long k = kernel_futex(word, op, n1 - g1, n2 - g2, word2, val3);
        return k < 0 ? (g1 + g2 ? g1 + g2 : -1) : g1 + g2 + k;
    }
    default:
        break;
    }
    return GREEN_REAL(syscall)(SYS_futex, word, op, val, a4, word2, val3);
}

/* ------------------------------------------------------- other numbers */

/* clock_nanosleep's convention (an error number) as a system call's. */
static long as_syscall(int e)
{
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

static long route(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    switch (nr) {
    case SYS_futex:
        return futex_hook((uint32_t *)a1, (int)a2, (uint32_t)a3, a4, (uint32_t *)a5,
                          (uint32_t)a6);
    case SYS_read:
        return green_hook_read((int)a1, (void *)a2, (size_t)a3);
    case SYS_write:
        return green_hook_write((int)a1, (const void *)a2, (size_t)a3);
    case SYS_readv:
        return green_hook_readv((int)a1, (const struct iovec *)a2, (int)a3);
    case SYS_writev:
        return green_hook_writev((int)a1, (const struct iovec *)a2, (int)a3);
    case SYS_pread64:
        return green_hook_pread((int)a1, (void *)a2, (size_t)a3, (off_t)a4);
    case SYS_pwrite64:
        return green_hook_pwrite((int)a1, (const void *)a2, (size_t)a3, (off_t)a4);
    case SYS_recvfrom:
        return green_hook_recvfrom((int)a1, (void *)a2, (size_t)a3, (int)a4,
                                   (struct sockaddr *)a5, (socklen_t *)a6);
    case SYS_sendto:
        return green_hook_sendto((int)a1, (const void *)a2, (size_t)a3, (int)a4,
                                 (const struct sockaddr *)a5, (socklen_t)a6);
    case SYS_recvmsg:
        return green_hook_recvmsg((int)a1, (struct msghdr *)a2, (int)a3);
    case SYS_sendmsg:
        return green_hook_sendmsg((int)a1, (const struct msghdr *)a2, (int)a3);
    case SYS_accept:
        return green_hook_accept((int)a1, (struct sockaddr *)a2, (socklen_t *)a3);
    case SYS_accept4:
        return green_hook_accept4((int)a1, (struct sockaddr *)a2, (socklen_t *)a3, (int)a4);
    case SYS_connect:
        return green_hook_connect((int)a1, (const struct sockaddr *)a2, (socklen_t)a3);
    case SYS_close:
        return green_hook_close((int)a1);
    case SYS_sigaltstack:          /* per green thread (signal.c) */
        return green_hook_sigaltstack((const stack_t *)a1, (stack_t *)a2);
    case SYS_prctl:                /* a green thread's name (pthread_attr.c) */
        return green_hook_prctl((int)a1, (unsigned long)a2, (unsigned long)a3,
                                (unsigned long)a4, (unsigned long)a5);
    /* The calls that change what the flag cache keeps, or the number it
     * keeps it for (libgreen/fdstate.c). */
    case SYS_fcntl:                /* also its lock waits (io_lock.c) */
        return green_hook_fcntl((int)a1, (int)a2, (void *)a3);
    case SYS_flock:
        return green_hook_flock((int)a1, (int)a2);
    /* System V and POSIX IPC waits (io_ipc.c). */
#ifdef SYS_semop
    case SYS_semop:
        return green_hook_semop((int)a1, (struct sembuf *)a2, (size_t)a3);
#endif
    case SYS_semtimedop:
        return green_hook_semtimedop((int)a1, (struct sembuf *)a2, (size_t)a3,
                                     (const struct timespec *)a4);
    case SYS_msgsnd:
        return green_hook_msgsnd((int)a1, (const void *)a2, (size_t)a3, (int)a4);
    case SYS_msgrcv:
        return green_hook_msgrcv((int)a1, (void *)a2, (size_t)a3, a4, (int)a5);
    case SYS_mq_timedsend:
        return green_hook_mq_timedsend((int)a1, (const char *)a2, (size_t)a3, (unsigned)a4,
                                       (const struct timespec *)a5);
    case SYS_mq_timedreceive:
        return green_hook_mq_timedreceive((int)a1, (char *)a2, (size_t)a3, (unsigned *)a4,
                                          (const struct timespec *)a5);
    case SYS_ioctl:
        return green_hook_ioctl((int)a1, (unsigned long)a2, (void *)a3);
    case SYS_setsockopt:
        return green_hook_setsockopt((int)a1, (int)a2, (int)a3, (const void *)a4,
                                     (socklen_t)a5);
    case SYS_dup:
        return green_hook_dup((int)a1);
#ifdef SYS_dup2
    case SYS_dup2:
        return green_hook_dup2((int)a1, (int)a2);
#endif
    case SYS_dup3:
        return green_hook_dup3((int)a1, (int)a2, (int)a3);
#ifdef SYS_close_range
    case SYS_close_range:
        return green_hook_close_range((unsigned int)a1, (unsigned int)a2, (int)a3);
#endif
    /* A process made here, or descriptors closed and made by io_uring,
     * where no hook sees them: the flag cache stops for good. */
#ifdef SYS_fork
    case SYS_fork:
#endif
#ifdef SYS_vfork
    case SYS_vfork:
#endif
#ifdef SYS_clone3
    case SYS_clone3:
#endif
#ifdef SYS_io_uring_setup
    case SYS_io_uring_setup:
#endif
    case SYS_clone:
        green__fdstate_trust_off();
        break;
#ifdef SYS_poll
    case SYS_poll:
        return green_hook_poll((struct pollfd *)a1, (nfds_t)a2, (int)a3);
#endif
#ifdef SYS_select
    case SYS_select: {
        /* libc's select reads the timeout (a bad pointer faults there, as
         * the hook would); the system call says EFAULT. */
        struct timeval tv;
        if (a5 && green__copy_in(&tv, (const void *)a5, sizeof tv) != 0)
            break;
        return green_hook_select((int)a1, (fd_set *)a2, (fd_set *)a3, (fd_set *)a4,
                                 (struct timeval *)a5);
    }
#endif
#ifdef SYS_epoll_wait
    case SYS_epoll_wait:
        return green_hook_epoll_wait((int)a1, (struct epoll_event *)a2, (int)a3, (int)a4);
#endif
    case SYS_epoll_pwait:
        if (a5 && a6 != (long)(_NSIG / 8))
            break;        /* EINVAL from the kernel */
        return green_hook_epoll_pwait((int)a1, (struct epoll_event *)a2, (int)a3, (int)a4,
                                      (const sigset_t *)a5);
    case SYS_nanosleep:
        return green_hook_nanosleep((const struct timespec *)a1, (struct timespec *)a2);
    case SYS_clock_nanosleep:
        if (a1 != CLOCK_REALTIME && a1 != CLOCK_MONOTONIC)
            break;        /* the kernel's answer (EOPNOTSUPP for a CPU
                             clock, where libc's says EINVAL) */
        return as_syscall(green_hook_clock_nanosleep((clockid_t)a1, (int)a2,
                                                     (const struct timespec *)a3,
                                                     (struct timespec *)a4));
    case SYS_wait4:
        return green_hook_wait4((pid_t)a1, (int *)a2, (int)a3, (struct rusage *)a4);
    case SYS_sched_yield:
        return green_hook_sched_yield();
    case SYS_sched_getscheduler:
        return green_hook_sched_getscheduler((pid_t)a1);
    case SYS_sched_setscheduler:
        return green_hook_sched_setscheduler((pid_t)a1, (int)a2, (const struct sched_param *)a3);
#ifdef SYS_sched_getattr
    case SYS_sched_getattr:
    case SYS_sched_setattr:
        return green__sched_attr_syscall(nr, a1, a2, a3, a4);
#endif
    default:
        break;
    }
    return GREEN_REAL(syscall)(nr, a1, a2, a3, a4, a5, a6);
}

/* syscall() is no cancellation point, whatever number it makes: a hook it
 * reaches (read, write, close, a lock wait...) must neither act on a
 * pthread_cancel nor wake for one. Cancellation is off meanwhile; a
 * request that came before or meanwhile acts at the next cancellation
 * point, or on return for an asynchronous one, as natively. */
long green_hook_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    /* Only a green thread has a cancellation state of ours; looking must
     * not make the main OS thread adopt a hub (green__pt_on would). */
    struct green__ctx *c = green__tls_ctx;
    struct green_thread *t = c ? c->current : NULL;
    if (nr == SYS_futex || !t || t == c->hub || !green__pt_on_noadopt() ||
        (green__pt_uw(t) & PT_CANCEL_DISABLED))
        return route(nr, a1, a2, a3, a4, a5, a6);
    green__pt_set_uw(t, green__pt_uw(t) | PT_CANCEL_DISABLED);
    t->kill_pending &= (uint8_t)~GREEN__KP_KILL;
    long r = route(nr, a1, a2, a3, a4, a5, a6);
    int e = errno;
    green_hook_pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    errno = e;
    return r;
}

/*
 * hooks_signal.h - EINTR for hooked blocking calls, and the signal-handler hooks.
 *
 * A hook that parks where the kernel would block marks the park
 * interruptible (green__intr_begin/green__intr_end, or simply
 * green__hook_park_fd); a process-directed signal whose handler the
 * program installed runs in the green thread it is delivered to (one that
 * does not block it, as the kernel picks a thread), whose parked call then
 * fails with EINTR.
 * Whether the call then restarts follows signal(7): the hook asks
 * green__intr_restarts() when it is one of the calls SA_RESTART restarts.
 */
#ifndef GREEN_HOOKS_SIGNAL_H
#define GREEN_HOOKS_SIGNAL_H

#include "hooks.h"
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* Park until fd is ready for mask (GREEN_READ|GREEN_WRITE), deadline
 * absolute green_now() ns or GREEN_FOREVER, as an interruptible call. For
 * the EAGAIN loop of an I/O hook: returns 0 when the caller should retry
 * its syscall. When a signal interrupts the wait and restartable is true
 * and every handler that ran was installed with SA_RESTART, the wait simply
 * continues (pass restartable=false for SO_RCVTIMEO/SO_SNDTIMEO sockets and
 * for calls signal(7) says never restart). A pthread cancellation point:
 * with a pthread_cancel pending, the caller exits here. May switch.
 * Returns 0, or -1 with errno: EINTR, ETIMEDOUT (the deadline passed; map
 * it to EAGAIN for SO_RCVTIMEO), EBADF (fd closed while waiting),
 * ECANCELED (green_kill), ENOMEM. */
int green__hook_park_fd(int fd, int mask, int64_t deadline, bool restartable)
    __attribute__((visibility("hidden")));

/* hooks/io_lock.c: the blocking system call call[0](call[1..6]) made by
 * a solo thread (libgreen/solo.c) while the caller parks as an
 * interruptible call (why, why_arg for dumps; file lock and shared futex
 * waits). A handler for the
 * caller stops it: it fails with -EINTR, or is made again when restartable
 * and every handler had SA_RESTART. A pthread_cancel acts there when
 * cancel_point, else at the next cancellation point. Returns the call's
 * result (>= 0 or -errno; -ETIMEDOUT when a timeout scope ended it), or
 * GREEN__NO_SOLO when no solo thread can make it (the caller makes the
 * call itself). */
#define GREEN__NO_SOLO LONG_MIN
long green__io_solo_call(const long call[7], enum green__why why, uintptr_t why_arg,
                        bool cancel_point, bool restartable)
    __attribute__((visibility("hidden")));

/* A raw result (>= 0 or -errno: green__io_solo_call's, a raw system
 * call's) as a libc function's: the value with errno e0 (the caller's at
 * entry: a call that succeeded leaves it as it was), or -1 and errno. */
static inline long green__io_solo_result(long r, int e0)
{
    if (r >= 0) {
        errno = e0;
        return r;
    }
    errno = (int)-r;
    return -1;
}

/* Mark the calling green thread as being in an interruptible hooked call
 * (before its first syscall, so that a signal arriving from then on
 * counts), and clear the mark. */
void green__intr_begin(void) __attribute__((visibility("hidden")));
void green__intr_end(void) __attribute__((visibility("hidden")));

/* After a park returned EINTR: true when every handler that ran since was
 * installed with SA_RESTART (the call may restart if signal(7) says so). */
bool green__intr_restarts(void) __attribute__((visibility("hidden")));

/* pthread_kill(t, sig), sig != 0, for a green thread t: the handler runs
 * now as t (on t's stack, pthread_self() == t), then t's interruptible
 * park, if any, fails with EINTR (or restarts, per SA_RESTART); a signal t
 * blocks stays pending for t. Returns 0 or an error number (EINVAL). */
int green__sig_interrupt(struct green_thread *t, int sig)
    __attribute__((visibility("hidden")));
/* pthread_sigqueue(t, sig, *val), sig != 0, for a green thread t: as
 * green__sig_interrupt, the handler seeing SI_QUEUE and the value. */
int green__sig_queue(struct green_thread *t, int sig, const union sigval *val)
    __attribute__((visibility("hidden")));

/* True when a handler ran for the calling green thread since its
 * interruptible call began: an EINTR from a syscall it made itself is then
 * its own (else the signal went to another thread: probe again). */
bool green__intr_mine(void) __attribute__((visibility("hidden")));
/* A program's signal handler is running on this OS thread: no fair turn
 * (a call made in a handler must not switch). */
bool green__in_handler(void) __attribute__((visibility("hidden")));

/* For ppoll/pselect/epoll_pwait: the caller's mask is mask while it is
 * parked (the previous one saved in *saved); pending signals it lets
 * through are handled at once, and then the result is EINTR with the old
 * mask back (do not call leave). mask NULL does nothing. Returns 0 or an
 * errno value. */
int green__sigmask_enter(const sigset_t *mask, sigset_t *saved)
    __attribute__((visibility("hidden")));
void green__sigmask_leave(const sigset_t *mask, const sigset_t *saved)
    __attribute__((visibility("hidden")));

/* The hooks. Wrapped handlers are called with the program's own siginfo
 * and context; sigaction reports the program's own view (its handler and
 * flags), never our wrapper. */
int green_hook_sigaction(int sig, const struct sigaction *act,
                         struct sigaction *old)
    __attribute__((visibility("hidden")));
sighandler_t green_hook_signal(int sig, sighandler_t handler)
    __attribute__((visibility("hidden")));
/* siginterrupt(): SA_RESTART off or on through green_hook_sigaction. */
int green_hook_siginterrupt(int sig, int flag) __attribute__((visibility("hidden")));
/* sighold, sigrelse, sigignore, sigset: glibc's own, through the mask and
 * action hooks. */
int green_hook_sighold(int sig) __attribute__((visibility("hidden")));
int green_hook_sigrelse(int sig) __attribute__((visibility("hidden")));
int green_hook_sigignore(int sig) __attribute__((visibility("hidden")));
sighandler_t green_hook_sigset(int sig, sighandler_t disp) __attribute__((visibility("hidden")));
/* sigaltstack: each green thread's own (signal.c, "Alternate signal
 * stacks"). */
int green_hook_sigaltstack(const stack_t *ss, stack_t *old) __attribute__((visibility("hidden")));
/* pause(): parks the caller until a wrapped handler runs; -1/EINTR. */
int green_hook_pause(void) __attribute__((visibility("hidden")));
/* sigsuspend(): mask applied while parked, then as pause. */
int green_hook_sigsuspend(const sigset_t *mask) __attribute__((visibility("hidden")));
/* Masks per green thread: the caller's own mask only (signal.c's essay).
 * sigprocmask: -1/EINVAL; pthread_sigmask: 0 or EINVAL. A pending signal
 * the new mask lets through is handled before they return. */
int green_hook_sigprocmask(int how, const sigset_t *set, sigset_t *old)
    __attribute__((visibility("hidden")));
int green_hook_pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
    __attribute__((visibility("hidden")));
/* The caller's pending signals: its own and the process's. */
int green_hook_sigpending(sigset_t *set) __attribute__((visibility("hidden")));
/* raise() from a green thread is pthread_kill(self): -1/EINVAL. */
int green_hook_raise(int sig) __attribute__((visibility("hidden")));
/* The sigwait family park only the caller until a signal of the set is
 * pending (the program keeps them blocked, as it must). */
int green_hook_sigtimedwait(const sigset_t *set, siginfo_t *info,
                            const struct timespec *ts)
    __attribute__((visibility("hidden")));
int green_hook_sigwaitinfo(const sigset_t *set, siginfo_t *info)
    __attribute__((visibility("hidden")));
int green_hook_sigwait(const sigset_t *set, int *sig) __attribute__((visibility("hidden")));

/* A pthread cancellation point (hooks/pthread_cancel.c's, when it is built): call
 * it on entry with 0 and with a park's result. With a pthread_cancel
 * pending (and enabled) the caller exits there, cleanup handlers run, and
 * it does not return; otherwise it returns code. pthread_cancel reaches a
 * parked green thread as a green_kill, so every ECANCELED of a hooked
 * blocking call goes through here first. May not return. */
int green__cancel_point(int code) __attribute__((visibility("hidden")));

/* Around an exec: install the calling green thread's own mask on the OS
 * thread (the new program starts with it, as natively) and, if the exec
 * fails and returns, the mask that was there before (*saved). Returns
 * whether it changed anything; a caller that is not a green thread
 * changes nothing. */
bool green__sig_exec_begin(uint64_t *saved) __attribute__((visibility("hidden")));
void green__sig_exec_end(bool changed, uint64_t saved) __attribute__((visibility("hidden")));

/* In a fork child: point the signal bookkeeping at the child's hub. */
void green__sig_after_fork(void) __attribute__((visibility("hidden")));

/* Number of signals handled through our wrapper (tests). */
unsigned green__sig_count(void) __attribute__((visibility("hidden")));

#endif

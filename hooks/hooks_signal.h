/*
 * hooks_signal.h - EINTR for hooked blocking calls, and the signal-handler hooks.
 *
 * A hook that parks where the kernel would block marks the park
 * interruptible (green__intr_begin/green__intr_end, or simply
 * green__hook_park_fd); a process-directed signal whose handler the
 * program installed then wakes the main green thread (or the thread parked
 * in ppoll/pselect/epoll_pwait with a mask that unblocks signals) with
 * EINTR, as the kernel interrupts the thread it delivers the signal to.
 * Whether the call then restarts follows signal(7): the hook asks
 * green__intr_restarts() when it is one of the calls SA_RESTART restarts.
 */
#ifndef GREEN_HOOKS_SIGNAL_H
#define GREEN_HOOKS_SIGNAL_H

#include "hooks.h"
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

/* Mark the calling green thread as being in an interruptible hooked call
 * (before its first syscall, so that a signal arriving from then on
 * counts), and clear the mark. */
void green__intr_begin(void) __attribute__((visibility("hidden")));
void green__intr_end(void) __attribute__((visibility("hidden")));

/* After a park returned EINTR: true when every handler that ran since was
 * installed with SA_RESTART (the call may restart if signal(7) says so). */
bool green__intr_restarts(void) __attribute__((visibility("hidden")));

/* pthread_kill(t, sig) for a green thread t: raise sig on the OS thread
 * (the handler runs now) and interrupt t's parked call, if any, with EINTR
 * (or a restart, per the handler's SA_RESTART). Returns 0 or an error
 * number (EINVAL). */
int green__sig_interrupt(struct green_thread *t, int sig)
    __attribute__((visibility("hidden")));

/* True when the calling green thread is the one a signal interrupts now
 * (the main one, or the one parked with a ppoll-style mask): an EINTR
 * from a syscall it made itself is then its own. */
bool green__intr_mine(void) __attribute__((visibility("hidden")));

/* For ppoll/pselect/epoll_pwait: install mask on the OS thread while the
 * caller is parked (saving the previous mask in *saved) and make the caller
 * the thread that signals interrupt; mask NULL does nothing. Returns 0 or
 * an errno value. */
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
/* pause(): parks the caller until a wrapped handler runs; -1/EINTR. */
int green_hook_pause(void) __attribute__((visibility("hidden")));
/* sigsuspend(): mask applied while parked, then as pause. */
int green_hook_sigsuspend(const sigset_t *mask) __attribute__((visibility("hidden")));
/* The sigwait family park only the caller until a signal of the set is
 * pending (the program keeps them blocked, as it must). */
int green_hook_sigtimedwait(const sigset_t *set, siginfo_t *info,
                            const struct timespec *ts)
    __attribute__((visibility("hidden")));
int green_hook_sigwaitinfo(const sigset_t *set, siginfo_t *info)
    __attribute__((visibility("hidden")));
int green_hook_sigwait(const sigset_t *set, int *sig) __attribute__((visibility("hidden")));

/* A pthread cancellation point (hooks/pthread.c's, when it is built): call
 * it on entry with 0 and with a park's result. With a pthread_cancel
 * pending (and enabled) the caller exits there, cleanup handlers run, and
 * it does not return; otherwise it returns code. pthread_cancel reaches a
 * parked green thread as a green_kill, so every ECANCELED of a hooked
 * blocking call goes through here first. May not return. */
int green__cancel_point(int code) __attribute__((visibility("hidden")));

/* In a fork child: point the signal bookkeeping at the child's hub. */
void green__sig_after_fork(void) __attribute__((visibility("hidden")));

/* Number of signals handled through our wrapper (tests). */
unsigned green__sig_count(void) __attribute__((visibility("hidden")));

#endif

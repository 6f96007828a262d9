/*
 * signal.c - EINTR semantics for hooked blocking calls, and the hooks of
 * sigaction, signal and pause.
 *
 * The problem. Natively a signal delivered to a thread blocked in a slow
 * syscall (read on a pipe, poll, nanosleep, waitpid...) runs the handler
 * and then makes the syscall fail with EINTR, or restarts it when the
 * handler was installed with SA_RESTART and signal(7) lists the call as
 * restartable. Under libgreen a parked call blocks in no syscall at all:
 * the OS thread sits in the hub's epoll_wait, so the handler runs on the
 * hub (or on whatever green thread is running) and nobody is interrupted.
 *
 * What we do. sigaction/signal install the program's handler behind a
 * wrapper of ours. The wrapper bumps a process-wide generation counter
 * (green__sig_gen, async-signal-safe atomics), remembers whether the
 * handler lacks SA_RESTART, pokes the hub through its ev_async (libev
 * documents ev_async_send as safe in signal handlers; this also closes the
 * window between the hub's last check and its epoll_wait) and calls the
 * program's handler with the program's own siginfo and context. After
 * every poll the hub calls green__on_signal (a tiny hook in hub.c), which
 * sees the counter moved and readies the interrupted green thread with
 * EINTR. The hook that parked then returns -1/EINTR, or continues waiting
 * when every handler that ran had SA_RESTART and the call restarts.
 *
 * Which green thread is interrupted. A process-directed signal (kill,
 * alarm, setitimer) is delivered by Linux to the thread group leader when
 * it does not block it: the program's main thread. So the main green
 * thread gets EINTR, if it is parked in an interruptible hooked call that
 * began before the signal arrived (intr_gen in struct green_thread: other
 * green threads, and parks such as mutexes that are never marked, are not
 * interrupted). Exception: a green thread parked in ppoll, pselect or
 * epoll_pwait with a signal mask asked to be interrupted: it is the target
 * while it waits.
 *
 * Approximations, documented. ppoll/pselect/epoll_pwait masks are applied
 * to the whole OS thread while their caller is parked (other green threads
 * run with that mask meanwhile) instead of atomically within one syscall;
 * the first non-blocking call is the real one with the mask, so signals
 * already pending are delivered exactly as natively. Synchronous signals
 * (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS) are never wrapped:
 * they interrupt nothing, and libgreen's stack-overflow reporter must stay
 * directly installed. pause and sigsuspend park until a wrapped handler
 * runs; sigwait, sigwaitinfo and sigtimedwait park on a signalfd of their
 * set (see below). siginterrupt() changes the kernel's flags behind our
 * back (glibc calls its internal sigaction), so it is not honoured.
 *
 * Rejected: signalfd (it needs the signal blocked in every thread, which
 * changes what the program sees); interrupting every parked green thread
 * (natively one thread gets the signal); running the handler later on the
 * interrupted green thread's stack (handlers must run when the signal
 * arrives, e.g. a SIGALRM that sets a flag checked by a busy loop).
 */
#define _GNU_SOURCE
#include "hooks_signal.h"
#include <string.h>
#include <sys/signalfd.h>

/* Even numbers only: 1 + gen is then never 0, the "not interruptible"
 * value of green_thread.intr_gen. */
static atomic_uint sig_gen;
/* Set by the wrapper when a handler without SA_RESTART ran. */
static atomic_int sig_norestart;
/* Signals handled through the wrapper (tests and diagnostics). */
static atomic_uint sig_count;
/* The program's view of each wrapped signal's action. */
static struct sigaction user_act[NSIG];
/* The hub of the process's main OS thread, once known. */
static struct green__ctx *_Atomic main_ctx;
/* Generation the main hub has acted on. Main hub only. */
static unsigned seen_gen;
/* Result of the last EINTR wake-up: may the call restart? */
static bool last_restart_ok;
/* Green thread parked in ppoll/pselect/epoll_pwait with a mask, or NULL. */
static struct green_thread *sig_target;
/* -1: this OS thread is not the main one, 1: it is, 0: unknown. */
static __thread signed char is_main_cache __attribute__((tls_model("initial-exec")));

void (*volatile green__on_signal)(struct green__ctx *c);

/* Defined by hooks/pthread.c; weak so that the hooks link without it. */
extern int green__pt_cancel_point(int code) __attribute__((weak, visibility("hidden")));

int green__cancel_point(int code)
{
    return green__pt_cancel_point ? green__pt_cancel_point(code) : code;
}

unsigned green__sig_count(void)
{
    return atomic_load(&sig_count);
}

static bool on_main_os_thread(void)
{
    if (!is_main_cache)
        is_main_cache = green__is_main_os_thread() ? 1 : -1;
    return is_main_cache > 0;
}

/* The hub calls this after each poll. Hub stack; never switches. */
static void on_signal(struct green__ctx *c)
{
    unsigned g = atomic_load_explicit(&sig_gen, memory_order_acquire);
    if (g == seen_gen || (c != main_ctx && (main_ctx || !on_main_os_thread())))
        return;
    main_ctx = c;
    seen_gen = g;
    bool restart = !atomic_exchange(&sig_norestart, 0);
    struct green_thread *t = sig_target;
    if (!t || t->state != GREEN_PARKED || !t->intr_gen)
        t = c->main;
    if (t->state != GREEN_PARKED || !t->intr_gen || t->intr_gen - 1 == g)
        return;                    /* not in an interruptible call, or it
                                      began after the last signal */
    last_restart_ok = restart;
    green__ready(t, EINTR);
}

static void wrapper(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    const struct sigaction *a = &user_act[sig];
    if (!(a->sa_flags & SA_RESTART))
        atomic_store(&sig_norestart, 1);
    atomic_fetch_add_explicit(&sig_gen, 2, memory_order_release);
    atomic_fetch_add(&sig_count, 1);
    struct green__ctx *c = main_ctx ? main_ctx : green__tls_ctx;
    if (c)
        ev_async_send(c->loop, &c->async);
    errno = saved;
    if (a->sa_flags & SA_SIGINFO)
        a->sa_sigaction(sig, si, uc);
    else if (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN)
        a->sa_handler(sig);
}

static bool wrappable(int sig)
{
    switch (sig) {
    case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE: case SIGTRAP:
    case SIGSYS: case SIGKILL: case SIGSTOP:
        return false;
    default:
        return sig > 0 && sig < NSIG && !green__bypass &&
               (green__hook_families & (GREEN_HOOK_IO | GREEN_HOOK_SLEEP |
                                        GREEN_HOOK_PROC));
    }
}

/* Install the program's act behind the wrapper. */
static int install_wrapped(int sig, const struct sigaction *act)
{
    struct sigaction w = *act;
    w.sa_sigaction = wrapper;
    w.sa_flags |= SA_SIGINFO;
    user_act[sig] = *act;
    green__on_signal = on_signal;
    if (!main_ctx && green__tls_ctx && on_main_os_thread())
        main_ctx = green__tls_ctx;
    return green__real.sigaction(sig, &w, NULL);
}

int green_hook_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    green__real_init();
    if (!green__real.sigaction) {
        errno = ENOSYS;
        return -1;
    }
    if (!wrappable(sig))
        return green__real.sigaction(sig, act, old);
    struct sigaction k;
    if (green__real.sigaction(sig, NULL, &k) < 0)
        return -1;
    /* Ours in the kernel: report the program's own action. */
    bool ours = (k.sa_flags & SA_SIGINFO) && k.sa_sigaction == wrapper;
    struct sigaction prev = ours ? user_act[sig] : k;
    if (act) {
        int r;
        if (act->sa_handler == SIG_DFL || act->sa_handler == SIG_IGN) {
            r = green__real.sigaction(sig, act, NULL);
            if (r == 0)
                user_act[sig] = *act;
        } else {
            r = install_wrapped(sig, act);
            if (r < 0)
                user_act[sig] = prev;
        }
        if (r < 0)
            return -1;
    }
    if (old)
        *old = prev;
    return 0;
}

/* glibc's signal(): BSD semantics, SA_RESTART, the signal blocked in its
 * own handler. */
sighandler_t green_hook_signal(int sig, sighandler_t handler)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    if (sig > 0 && sig < NSIG)
        sigaddset(&sa.sa_mask, sig);
    sa.sa_flags = SA_RESTART;
    if (handler == SIG_ERR || green_hook_sigaction(sig, &sa, &old) < 0) {
        errno = EINVAL;
        return SIG_ERR;
    }
    return old.sa_handler;
}

void green__sig_after_fork(void)
{
    is_main_cache = 0;
    main_ctx = green__tls_ctx;
    if (sig_target && sig_target->ctx != green__tls_ctx)
        sig_target = NULL;
}

void green__intr_begin(void)
{
    struct green_thread *t = green__current();
    if (!t)
        return;
    t->intr_gen = atomic_load_explicit(&sig_gen, memory_order_acquire) + 1;
    /* Learn the main hub early, so that a handler running on another OS
     * thread can poke it (cheap: the answer is cached per OS thread). */
    if (green__unlikely(!main_ctx) && green__on_signal && on_main_os_thread())
        main_ctx = t->ctx;
}

void green__intr_end(void)
{
    struct green_thread *t = green__current();
    if (t)
        t->intr_gen = 0;
}

bool green__intr_restarts(void)
{
    return last_restart_ok;
}

/* pthread_kill on a green thread. All green threads share the OS thread,
 * so the signal is raised on it and its handler runs now (unless the
 * signal is blocked: then nothing more happens until it is delivered,
 * as natively). Then t, when parked in an interruptible call, is the one
 * interrupted, not the main thread: the hub is told this generation is
 * handled. */
int green__sig_interrupt(struct green_thread *t, int sig)
{
    unsigned before = atomic_load(&sig_gen);
    if (raise(sig) != 0)
        return errno;
    unsigned after = atomic_load(&sig_gen);
    if (after == before)
        return 0;                  /* blocked, ignored or not wrapped */
    struct green__ctx *c = green__tls_ctx;
    if (c && (c == main_ctx || (!main_ctx && on_main_os_thread()))) {
        main_ctx = c;
        seen_gen = after;          /* not a process-directed signal */
        atomic_store(&sig_norestart, 0);
    }
    if (t != green__current() && t->state == GREEN_PARKED && t->intr_gen &&
        t->intr_gen - 1 != after) {
        last_restart_ok = (user_act[sig].sa_flags & SA_RESTART) != 0;
        green__ready(t, EINTR);
    }
    return 0;
}

bool green__intr_mine(void)
{
    struct green_thread *t = green__current();
    if (!t || (sig_target && sig_target == t))
        return true;
    return !sig_target && t->is_main;
}

/* The blocking I/O calls are cancellation points too: a pthread_cancel
 * acts here, when the call would block or while it is parked. The I/O
 * hooks keep no state across this park except a blocking connect's or
 * sendfile's temporary O_NONBLOCK, which a cancelled connect leaves set
 * (documented: the alternative, a cancelled thread that never dies and a
 * joiner that hangs, is worse). */
int green__hook_park_fd(int fd, int mask, int64_t deadline, bool restartable)
{
    struct green_thread *t = green__current();
    bool outer = t->intr_gen != 0;     /* the caller marked the call itself */
    green__cancel_point(0);
    for (;;) {
        if (!outer)
            green__intr_begin();
        int r = green__wait_fd(fd, mask, deadline);
        if (!outer)
            t->intr_gen = 0;
        if (r > 0)
            return 0;
        if (r == -EINTR && restartable && last_restart_ok) {
            if (outer)
                green__intr_begin();   /* count only later signals */
            continue;
        }
        errno = green__cancel_point(-r);
        return -1;
    }
}

int green__sigmask_enter(const sigset_t *mask, sigset_t *saved)
{
    if (!mask)
        return 0;
    sig_target = green__current();
    if (sigprocmask(SIG_SETMASK, mask, saved) < 0) {
        sig_target = NULL;
        return errno;
    }
    return 0;
}

void green__sigmask_leave(const sigset_t *mask, const sigset_t *saved)
{
    if (!mask)
        return;
    if (sig_target == green__current())
        sig_target = NULL;
    sigprocmask(SIG_SETMASK, saved, NULL);
}

/* Park until a wrapped handler runs (EINTR) or the caller is killed.
 * While parked we hold a remote expectation so that the hub waits for the
 * signal's ev_async instead of reporting a deadlock (nothing else may be
 * left to wake anyone). Returns the errno value. May switch. */
static int park_until_signal(void)
{
    struct green__ctx *c = green__tls_ctx;
    green__remote_expect(c, +1);
    int code;
    do
        code = green__park(GREEN_WHY_SLEEP, 0, NULL, GREEN_FOREVER);
    while (code == 0);
    green__remote_expect(c, -1);
    return code;
}

int green_hook_pause(void)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_SLEEP))
        return green__real.pause ? green__real.pause() : (errno = ENOSYS, -1);
    green__cancel_point(0);
    green__intr_begin();
    int code = park_until_signal();
    green__intr_end();
    errno = green__cancel_point(code);
    return -1;
}

/* sigsuspend: the caller's mask for the duration (applied to the OS
 * thread, see the essay), then wait for a handler. */
int green_hook_sigsuspend(const sigset_t *mask)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_SLEEP) || !mask)
        return green__real.sigsuspend(mask);
    sigset_t saved;
    green__cancel_point(0);
    green__intr_begin();
    int code = green__sigmask_enter(mask, &saved);
    if (!code) {
        code = park_until_signal();
        green__sigmask_leave(mask, &saved);
    }
    green__intr_end();
    errno = green__cancel_point(code);
    return -1;
}

/* ------------------------------------------------------- sigwait family
 *
 * The signals waited for are blocked (the program must block them), so no
 * handler of ours ever runs for them: they stay pending. A signalfd for the
 * set is readable exactly while one of them is pending for this OS thread
 * or the process; we park on it and then take the signal with a zero
 * timeout sigtimedwait, which fills the program's siginfo as the kernel
 * does. Without signalfd we re-check every SIGWAIT_RECHECK_NS. Costs
 * signalfd + epoll_ctl + close per call that has to wait. */

#define SIGWAIT_RECHECK_NS GREEN_MSEC(10)

/* Park once until a signal of the set may be pending. Returns 0 (check
 * again) or an errno value (ETIMEDOUT at the deadline, EINTR, ...). */
static int sigwait_park(int sfd, int64_t deadline)
{
    if (sfd >= 0) {
        int g = green__wait_fd(sfd, GREEN_READ, deadline);
        return g > 0 ? 0 : -g;
    }
    int64_t d = green_now() + SIGWAIT_RECHECK_NS;
    if (deadline >= 0 && deadline < d)
        d = deadline;
    int code = green__park(GREEN_WHY_SLEEP, 0, NULL, d);
    return code == ETIMEDOUT && d != deadline ? 0 : code;
}

static int sigwait_slow(const sigset_t *set, siginfo_t *info, int64_t deadline)
{
    static const struct timespec zero = { 0, 0 };
    int sfd = green__fd_hide(signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC));
    int r;
    for (;;) {
        int code = sigwait_park(sfd, deadline);
        if (code == ECANCELED && sfd >= 0) {
            green__fd_close_hidden(sfd);
            sfd = -1;
        }
        if (code == ECANCELED)
            code = green__cancel_point(code);
        if (code) {
            bool timeout = code == ETIMEDOUT && deadline >= 0 && green_now() >= deadline;
            errno = timeout ? EAGAIN : code;
            r = -1;
            break;
        }
        r = green__real.sigtimedwait(set, info, &zero);
        if (r >= 0 || errno != EAGAIN)
            break;
    }
    if (sfd >= 0) {
        int e = errno;
        green__fd_close_hidden(sfd);
        errno = e;
    }
    return r;
}

int green_hook_sigtimedwait(const sigset_t *set, siginfo_t *info,
                            const struct timespec *ts)
{
    static const struct timespec zero = { 0, 0 };
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_SLEEP) || !set ||
        (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000 ||
                (!ts->tv_sec && !ts->tv_nsec))))
        return green__real.sigtimedwait(set, info, ts);
    int64_t deadline = ts && ts->tv_sec < 3000000000LL   /* else: forever */
                           ? green_now() + (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec
                           : GREEN_FOREVER;
    green__cancel_point(0);
    green__intr_begin();
    int r = green__real.sigtimedwait(set, info, &zero);
    if (r < 0 && errno == EAGAIN)
        r = sigwait_slow(set, info, deadline);
    green__intr_end();
    return r;
}

int green_hook_sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
    return green_hook_sigtimedwait(set, info, NULL);
}

/* POSIX sigwait: an error number, never EINTR (glibc retries too). */
int green_hook_sigwait(const sigset_t *set, int *sig)
{
    int r;
    do
        r = green_hook_sigtimedwait(set, NULL, NULL);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno;
    *sig = r;
    return 0;
}

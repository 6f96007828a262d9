/*
 * signal.c - signals per green thread: masks, pending sets, handlers that
 * run in the thread they were delivered to, EINTR for hooked blocking
 * calls, and the sigwait family.
 *
 * The problem. Natively the signal mask and the thread-directed pending
 * set belong to each thread; a process-directed signal (kill, alarm,
 * setitimer) goes to one thread that does not block it, whose slow
 * syscall (read on a pipe, poll, nanosleep, waitpid...) fails with EINTR
 * after the handler ran, or restarts under SA_RESTART when signal(7) says
 * the call restarts; a signal every thread blocks stays pending until a
 * thread unblocks it or takes it (sigwait, sigwaitinfo, sigtimedwait,
 * signalfd). Under libgreen all green threads share one OS thread, one
 * kernel mask, and a parked call blocks in no syscall at all.
 *
 * What we do.
 *  - Masks. Each green thread has its own mask (green_thread.sig_blocked),
 *    inherited from its creator; sigprocmask/pthread_sigmask act on it
 *    alone. The kernel mask of the hub's OS thread is the set of signals
 *    blocked by EVERY green thread of the hub (K): such a signal stays
 *    pending in the kernel exactly as natively, where signalfd, sigpending
 *    and a zero-timeout sigtimedwait see it. The hub counts, per signal,
 *    the green threads that block it (ctx->sig_blockers, counted from the
 *    first mask change on; green__sig_life keeps the count as threads come
 *    and go), and K is written to the kernel only when it changes: a
 *    switch costs nothing more than before.
 *  - Delivery. sigaction installs the program's handler behind our
 *    wrapper. When the kernel delivers a signal (it is not in K: some
 *    green thread accepts it), the wrapper runs the handler at once if
 *    the running green thread accepts it (a busy loop's SIGALRM flag works
 *    as natively). Otherwise (the hub is polling, or the running thread
 *    blocks it) it records the signal with its siginfo and pokes the hub
 *    (ev_async_send is signal-safe); so it does too for a process-directed
 *    signal the main thread accepts (Linux gives it to the thread group
 *    leader first). After its poll the hub picks a green thread that
 *    accepts it, as the kernel picks a thread: the main one first, else
 *    one parked in an interruptible call, else any; then the handler runs
 *    AS that thread (pthread_self() and errno its own): a thread parked in
 *    an interruptible hooked call or a pthread lock wait is readied with
 *    EINTR and runs it itself as its park returns (deliver, on_resume),
 *    where the handler may block; any other runs it through green__run_as, on its own stack
 *    below its saved context, without waking. If by then every thread blocks the signal, it goes back
 *    to the process's pending set with its own siginfo (requeue: from
 *    the main OS thread, the one the kernel lets queue a kill()'s
 *    siginfo to the process); one that an OS thread of libgreen's keeps
 *    open (kept_open) stays on the main OS thread instead, and a thread
 *    of another hub that unblocks it or waits for it fetches it from
 *    there (claim_parked); sigpending shows it to every thread.
 *  - pthread_kill(t, sig), pthread_sigqueue and raise(): a handler for t
 *    runs as t the same way (its interruptible park fails with EINTR); for the caller itself libc's raise (or pthread_sigqueue)
 *    delivers it through the wrapper with the kernel's siginfo. A signal t
 *    blocks is pending for t alone: in the kernel (real tgkill) when every
 *    thread blocks it, so that signalfd and sigwait see it (sigpending
 *    hides it from the other threads: kthread_bits), else in
 *    t->sig_pending, with its siginfo (a realtime one queued every time, a
 *    standard one kept once: "signals pending for one thread" below); it
 *    is delivered when t unblocks it, or taken by its sigwait. Default actions
 *    (terminate, stop) and signals we do not wrap go to the kernel.
 *  - A signal every thread blocks that the kernel still delivers came
 *    through the running thread's own masked syscall (the real ppoll,
 *    pselect or epoll_pwait a hook makes with the program's mask): it is
 *    that thread's and runs at once.
 *  - Threads come and go (green__sig_life): a thread that ends may have
 *    been the last to accept a signal, so K is recomputed then. A hub
 *    that blocks forever because nothing can run (the shim's deadlock,
 *    hub.c) still runs the handlers of the signals that arrive, as their
 *    threads, so that a handler can wake one.
 *  - During a handler the thread's mask is its mask | sa_mask | the
 *    signal (unless SA_NODEFER); SA_RESETHAND restores SIG_DFL first.
 *    A handler's own mask changes are undone when it returns, as the
 *    kernel's sigreturn does; the wrapper writes the current K into the
 *    ucontext so that the kernel's sigreturn restores K, not a stale one.
 *  - EINTR. A hook that may wait marks its park interruptible
 *    (green__intr_begin/end, or green__hook_park_fd); green__intr_restarts
 *    tells it afterwards whether every handler that interrupted it had
 *    SA_RESTART. green__intr_mine tells a zero-timeout probe whether the
 *    EINTR of its own syscall came with a handler run for this thread.
 *  - sigsuspend, ppoll/pselect/epoll_pwait masks: the thread's mask is
 *    replaced while it waits (K recomputed), its pending signals that the
 *    new mask allows are delivered at once (then EINTR), and the old mask
 *    comes back afterwards.
 *
 * Invariants.
 *  - Once ctx->sig_counted: sig_blockers[i] counts the live green threads
 *    of the hub (hub excluded, DONE excluded) whose mask has bit i, and the
 *    OS thread's kernel mask is ctx->sig_kmask == K, except while the
 *    kernel runs our wrapper (then it adds the handler's sa_mask).
 *  - A signal the running thread accepts never waits for the hub; one it
 *    blocks never runs on its stack.
 *  - t->sig_pending only has bits t blocks (else they are delivered).
 *  - green__run_as contexts never park: a park in one fails with EINTR.
 *
 * Alternate signal stacks. sigaltstack(2) belongs to each thread
 * natively; the kernel keeps one per OS thread, which libgreen also needs
 * (its stack-overflow reporter runs on one, libgreen/stack.c). So the
 * hook keeps each green thread's (t->alt) and the kernel's follows the
 * running thread: a switch to a thread whose own differs installs it, or
 * libgreen's for a thread without (green__alt_switch; a ctx pays one
 * branch per switch until one of its threads sets one). The kernel then
 * does what it does natively for a handler the wrapper runs at once:
 * SA_ONSTACK, SS_ONSTACK, SS_AUTODISARM, EPERM while on it, and checks
 * the new stack (EINVAL, ENOMEM) itself. A handler run later as its
 * thread (deliver, green__run_as) runs on the thread's alternate stack
 * when its action has SA_ONSTACK and the thread is not on it already
 * (green__call_on), disarmed meanwhile under SS_AUTODISARM. A new thread
 * starts without one, as natively; the OS thread's first thread keeps
 * one it set before libgreen started; a thread's is forgotten when it
 * ends, so memory the program frees then is never the kernel's stack.
 *
 * Limits, documented. A handler that runs for a thread parked in a join,
 * an offload or a green.h lock cannot wait: a hooked blocking call in it
 * fails with EINTR (handlers may only call async-signal-safe functions; of
 * those, only blocking ones differ). Threads in pthread lock, condition
 * and barrier waits are woken to run it (deliver). While the running thread computes without a
 * hooked call, a signal only other threads accept waits for its next park
 * (cooperative scheduling). An exec (hooks/proc.c) puts the calling
 * thread's own mask on the OS thread first, so the new program starts
 * with it, not with K; posix_spawn, system and popen children start with
 * K unless told otherwise (POSIX_SPAWN_SETSIGMASK).
 * Faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP) are wrapped too, so
 * that one sent with kill interrupts a park as any signal does (LTP's
 * pause01); one the kernel raises for an instruction (si_code > 0) runs
 * the program's handler at once on the faulting context (run_fault).
 * Their SIG_DFL is libgreen's stack-overflow reporter where it is
 * installed (libgreen/stack.c), reported as SIG_DFL. SIGSYS is never
 * wrapped (the syscall user dispatch, sud.c, owns it when on).
 * siginterrupt() is hooked: glibc's changes the kernel's flags
 * through its internal sigaction, behind the wrapper's back. The
 * ucontext switch (exotic CPUs) restores the mask saved in each context,
 * which can undo a change of K.
 *
 * Rejected: blocking a signal on the OS thread as soon as the running
 * thread blocks it (a syscall per switch, and the other threads lose it);
 * interrupting every parked green thread (natively one thread gets the
 * signal); running every handler on the hub or the interrupted stack
 * (pthread_self() in the handler would be the wrong thread); deferring
 * every handler to the target's own resumption (a thread parked in a
 * mutex would never see it, and the park path would need a test per
 * switch); signalfd for every wrapped signal (it needs the signal blocked
 * in every thread, which changes what the program sees).
 */
#define _GNU_SOURCE
#include "hooks_signal.h"
#include "io.h"
#include "lock.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>

#define BIT(sig) (1ULL << ((sig) - 1))
/* Never blocked: SIGKILL, SIGSTOP (the kernel says so) and glibc's two
 * internal signals, 32 and 33 (glibc says so). */
#define NOBLOCK (BIT(SIGKILL) | BIT(SIGSTOP) | BIT(32) | BIT(33))

/* The signals an instruction raises. */
static bool fault_signal(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP;
}

/* Signals handled through the wrapper (tests and diagnostics). */
static atomic_uint sig_count;
/* The program's view of each wrapped signal's action. */
static struct sigaction user_act[NSIG];
/* The hub of the process's main OS thread, once it counts (sig_init). */
static _Atomic(struct green__ctx *) main_os_ctx;
/* Process-directed signals the wrapper left for the hub, and their
 * siginfo (bit sig-1; one instance each), are per hub (ctx->proc_bits,
 * ctx->proc_info): the hub of the OS thread the kernel chose picks the
 * thread, as the kernel would have picked among that OS thread's. */
/* Signals we sent to the kernel's pending set of a hub's OS thread for
 * one green thread alone (pthread_kill of a signal every thread blocks),
 * and that thread, are per hub: ctx->kthread_bits, ctx->kthread_owner.
 * The others must not see them in sigpending. */
/* Counting started somewhere (sig_init): hubs that do not count yet
 * start when they next poll or adopt a thread. */
static atomic_bool counting;

/* Defined by hooks/pthread_cancel.c; weak so that the hooks link without it. */
extern int green__pt_cancel_point(int code) __attribute__((weak, visibility("hidden")));

int green__cancel_point(int code)
{
    return green__pt_cancel_point ? green__pt_cancel_point(code) : code;
}

unsigned green__sig_count(void)
{
    return atomic_load(&sig_count);
}

static uint64_t set_bits(const sigset_t *s)
{
    uint64_t m;
    memcpy(&m, s, sizeof m);
    return m;
}

/* The kernel writes 8 bytes of a sigset_t; so do we. */
static void bits_set(sigset_t *s, uint64_t m)
{
    memcpy(s, &m, sizeof m);
}

static int lowest(uint64_t m)
{
    return __builtin_ctzll(m) + 1;
}

/* ------------------------------------------ signals pending for one thread
 *
 * A signal sent to one green thread that blocks it, and that the kernel
 * cannot hold for it (t->sig_pending: see sig_send), is kept with its
 * siginfo as the kernel keeps a thread's pending signals: a standard
 * signal once (a second one while the first is pending is dropped), a
 * realtime one (32..64) every time, in the order sent. The instances
 * live in t->sig_queue, mapped at the first one (mmap: pthread_kill and
 * sigqueue are async-signal-safe, malloc is not) and unmapped when the
 * thread ends; the bits of t->sig_pending say which signals have one.
 * The queue is only touched on t's hub. Delivery and the sigwait family
 * take the lowest signal first, and its oldest instance, as Linux does.
 * Full (SIGQ_RT_MAX realtime instances): the send fails with EAGAIN, as
 * the kernel's past RLIMIT_SIGPENDING. */
#define SIGQ_MAX    128
#define SIGQ_RT_MAX (SIGQ_MAX - 31)   /* room for every standard signal */

struct sigq {
    uint32_t n;                   /* instances queued */
    uint32_t rt;                  /* of them realtime */
    siginfo_t si[SIGQ_MAX];       /* in the order sent */
};

/* Keep si (a signal t blocks) pending for t. 0, or EAGAIN when full. */
static int own_push(struct green_thread *t, const siginfo_t *si)
{
    int sig = si->si_signo;
    bool rt = sig >= 32;
    if (!rt && (t->sig_pending & BIT(sig)))
        return 0;                  /* one instance of a standard signal */
    struct sigq *q = t->sig_queue;
    if (!q) {
        void *m = mmap(NULL, sizeof *q, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return EAGAIN;
        t->sig_queue = q = m;
    }
    if (rt && q->rt >= SIGQ_RT_MAX)
        return EAGAIN;
    q->si[q->n++] = *si;
    q->rt += rt;
    t->sig_pending |= BIT(sig);
    return 0;
}

/* Take the oldest pending instance of sig (its bit is set in
 * t->sig_pending) into *si; the bit goes when it was the last. */
static void own_take(struct green_thread *t, int sig, siginfo_t *si)
{
    struct sigq *q = t->sig_queue;
    uint32_t i = 0, more = 0;
    while (q && i < q->n && q->si[i].si_signo != sig)
        i++;
    if (!q || i == q->n) {         /* cannot happen: every bit is queued */
        t->sig_pending &= ~BIT(sig);
        memset(si, 0, sizeof *si);
        si->si_signo = sig;
        si->si_code = SI_TKILL;
        si->si_pid = getpid();
        si->si_uid = getuid();
        return;
    }
    *si = q->si[i];
    memmove(&q->si[i], &q->si[i + 1], (q->n - i - 1) * sizeof *q->si);
    q->n--;
    q->rt -= sig >= 32;
    for (uint32_t k = i; k < q->n && !more; k++)
        more = q->si[k].si_signo == sig;
    if (!more)
        t->sig_pending &= ~BIT(sig);
}

/* Forget every pending instance (fork child: it starts with none). */
static void own_clear(struct green_thread *t)
{
    struct sigq *q = t->sig_queue;
    if (q)
        q->n = q->rt = 0;
    t->sig_pending = 0;
}

/* t ends: its queue goes. */
static void own_free(struct green_thread *t)
{
    if (t->sig_queue)
        munmap(t->sig_queue, sizeof(struct sigq));
    t->sig_queue = NULL;
    t->sig_pending = 0;
}

/* Should a signal hook act for this caller (a green thread, not libgreen
 * itself)? */
static bool sig_on(void)
{
    return green__in_green() &&
           (green__hook_families & (GREEN_HOOK_IO | GREEN_HOOK_SLEEP |
                                    GREEN_HOOK_PROC | GREEN_HOOK_THREAD));
}

/* ------------------------------------------------------------ masks */

static void count_mask(struct green__ctx *c, uint64_t m, int d)
{
    for (; m; m &= m - 1)
        c->sig_blockers[__builtin_ctzll(m)] += (uint32_t)d;
}

/* The number of threads counted in sig_blockers. */
static uint32_t sig_n_of(struct green__ctx *c)
{
    return c->sig_blockers[31];      /* the slot of signal 32, see life() */
}

static void kmask_apply(struct green__ctx *c);
static void sig_init(struct green__ctx *c);

static void life(struct green_thread *t, int delta)
{
    struct green__ctx *c = t->ctx;
    if (t->is_hub)
        return;
    if (delta < 0)
        own_free(t);
    if (!c->sig_counted) {
        /* A hub of the set that counts from its first thread on (sig_init
         * counts t, already linked). */
        if (delta > 0 && atomic_load(&counting)) {
            sig_init(c);
            kmask_apply(c);
        }
        return;
    }
    /* Signal 32 is never blocked: its slot counts the threads. */
    count_mask(c, t->sig_blocked | BIT(32), delta);
    /* A thread born with its creator's mask changes nothing; one that
     * ends may have been the last to accept a signal. */
    if (delta < 0 || c->current->is_hub || c->current->sig_blocked != t->sig_blocked)
        kmask_apply(c);
}

static uint64_t kmask_of(struct green__ctx *c)
{
    uint32_t n = sig_n_of(c);
    uint64_t k = 0;
    for (int i = 0; i < 64; i++)
        if (c->sig_blockers[i] == n)
            k |= 1ULL << i;
    return k & ~(NOBLOCK | green__sig_keep_open);
}

/* The kernel's pending set of one OS thread alone (not the process's):
 * SigPnd of its /proc status file. Raw syscalls: no hook involved. */
static uint64_t task_pending(const char *path)
{
    char b[4096];
    long fd = green__syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    long n = green__syscall(SYS_read, (int)fd, b, sizeof b - 1);
    green__syscall(SYS_close, (int)fd);
    if (n <= 0)
        return 0;
    b[n] = 0;
    char *p = strstr(b, "\nSigPnd:");
    return p ? strtoull(p + 8, NULL, 16) : 0;
}

/* This OS thread's. */
static uint64_t os_thread_pending(void)
{
    return task_pending("/proc/thread-self/status");
}

static void on_signal(struct green__ctx *c);

/* Start counting (once per hub, on the first signal hook that needs it). */
static void sig_init(struct green__ctx *c)
{
    if (green__likely(c->sig_counted))
        return;
    memset(c->sig_blockers, 0, sizeof c->sig_blockers);
    c->sig_counted = true;
    if (c->tid == getpid())
        atomic_store(&main_os_ctx, c);
    for (struct green_thread *t = c->all; t; t = t->all_next)
        if (!t->is_hub && t->state != GREEN_DONE)
            count_mask(c, t->sig_blocked | BIT(32), +1);   /* as life() */
    uint64_t km = 0;
    green__syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &km, sizeof km);
    c->sig_kmask = km;
    green__sig_life = life;
    /* Signals raised on this OS thread before it had a hub were the main
     * thread's own. Which of the pending ones are the OS thread's alone
     * only /proc tells; it is read only when something is pending: an
     * open takes the lowest free descriptor number for a moment, which a
     * thread of another hub opening a file then would not get. */
    uint64_t any = 0, own = 0;
    green__syscall(SYS_rt_sigpending, &any, sizeof any);
    if (any)
        own = os_thread_pending() & ~c->kthread_bits;
    for (uint64_t k = own; k; k &= k - 1)
        c->kthread_owner[__builtin_ctzll(k)] = c->main;
    c->kthread_bits |= own;
    /* The other hubs of the set count too, from their next poll: their
     * kernel masks must let in what their threads accept. */
    green__on_signal = on_signal;
    if (!atomic_exchange(&counting, true))
        for (int i = 0; i < green__hubs_n(); i++) {
            struct green__ctx *h = green__hubs_at(i);
            if (h && h != c)
                green__async_send(h->loop, &h->async);
        }
}

/* t's mask becomes m (counts only; kmask_apply writes the kernel's). */
static void mask_set(struct green_thread *t, uint64_t m)
{
    struct green__ctx *c = t->ctx;
    m &= ~NOBLOCK;
    if (c->sig_counted && !t->is_hub && t->state != GREEN_DONE) {
        uint64_t old = t->sig_blocked;
        count_mask(c, old & ~m, -1);
        count_mask(c, m & ~old, +1);
    }
    t->sig_blocked = m;
}

/* Install K on the OS thread when it changed. */
static void kmask_apply(struct green__ctx *c)
{
    if (!c->sig_counted)
        return;
    uint64_t k = kmask_of(c);
    if (k == c->sig_kmask)
        return;
    c->sig_kmask = k;
    green__syscall(SYS_rt_sigprocmask, SIG_SETMASK, &k, NULL, sizeof k);
}

/* ---------------------------------------------------------- handlers */

static void wrapper(int sig, siginfo_t *si, void *uc);

/* The kernel's action for sig is our wrapper. */
static bool wrapped_now(int sig)
{
    struct sigaction k;
    return green__real.sigaction(sig, NULL, &k) == 0 &&
           (k.sa_flags & SA_SIGINFO) && k.sa_sigaction == wrapper;
}

static bool default_ignores(int sig)
{
    return sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH;
}

static int tgkill_self(int sig)
{
    return (int)green__syscall(SYS_tgkill, getpid(), (pid_t)green__syscall(SYS_gettid), sig);
}

/* Take sig's default action now: the kernel does it (terminate, core,
 * stop); the handler we replaced is reset first. */
static void take_default(int sig)
{
    if (default_ignores(sig))
        return;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    green__real.sigaction(sig, &dfl, NULL);
    /* The running thread may block it in the kernel's mask: unblock it
     * there; it is taken on the way out of this syscall. */
    uint64_t b = BIT(sig);
    tgkill_self(sig);
    green__syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &b, NULL, sizeof b);
}

static int deliver_pending(struct green_thread *t);

/* Program handlers running: no fair turn inside one (a mask change there
 * must not switch). Counted per green thread (green_thread.handler_depth),
 * since a handler may end its thread with pthread_exit and never come back
 * to undo its count: a count of the OS thread's would then stay up and
 * take the fair turns away from every other thread of the hub. Handlers
 * run for no thread (a default action on the hub) count here. */
static __thread int handler_depth __attribute__((tls_model("initial-exec")));

bool green__in_handler(void)
{
    struct green_thread *t = green__current();
    return handler_depth != 0 || (t && t->handler_depth != 0);
}

/* One call of the program's handler. */
struct invoke {
    const struct sigaction *a;
    int sig;
    siginfo_t *si;
    void *uc;
};

static void invoke(void *p)
{
    const struct invoke *v = p;
    if (v->a->sa_flags & SA_SIGINFO)
        v->a->sa_sigaction(v->sig, v->si, v->uc);
    else
        v->a->sa_handler(v->sig);
}

/* The running thread t's stack pointer lies in its alternate stack. */
static bool on_alt(const struct green_thread *t)
{
    char here;
    const struct green__alt *a = t->alt;
    return a && (uintptr_t)&here - (uintptr_t)a->sp < a->size;
}

/* What a handler may change of t's alternate stack, which the kernel's
 * sigreturn puts back as it was at the delivery (restore_altstack): the
 * record, and which one the kernel has. */
struct alt_snap {
    bool had;
    struct green__alt alt;
    void *sp;
    size_t size;
};

static void alt_save(const struct green_thread *t, struct alt_snap *s)
{
    s->had = t->alt != NULL;
    if (s->had)
        s->alt = *t->alt;
    s->sp = t->ctx->alt_sp;
    s->size = t->ctx->alt_size;
}

/* kernel: the kernel's own sigreturn restores its stack (as c->alt_sp
 * was); else the switch logic installs t's again. */
static void alt_restore(struct green_thread *t, const struct alt_snap *s, bool kernel)
{
    struct green__ctx *c = t->ctx;
    if (t->alt)
        *t->alt = s->had ? s->alt : (struct green__alt){ .flags = SS_DISABLE };
    if (kernel) {
        c->alt_sp = s->sp;
        c->alt_size = s->size;
    } else {
        green__alt_enter(c, t, t);
    }
}

/* The kernel ran the wrapper on libgreen's alternate stack (the action
 * has SA_ONSTACK) for a thread without one of its own: natively the
 * handler runs on the interrupted stack, below the interrupted context. */
static void invoke_below(struct green_thread *t, void *uc, struct invoke *v)
{
    uintptr_t sp = 0;
#if defined(__x86_64__)
    sp = (uintptr_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    sp = (uintptr_t)((ucontext_t *)uc)->uc_mcontext.sp;
#endif
    uintptr_t hi = (sp - 256) & ~(uintptr_t)63, lo = (uintptr_t)t->stack.lo;
    if (!sp || (lo && (sp < lo || sp > (uintptr_t)t->stack.hi))) {
        invoke(v);                 /* not on its stack: leave it where it is */
        return;
    }
    if (!lo)
        lo = hi - 256 * 1024;      /* the OS thread's own stack grows down */
    green__call_on((void *)lo, (void *)hi, invoke, v);
}

/* Run the program's handler for sig as t (the current thread, or NULL on a
 * plain OS thread). kernel: we are inside the kernel's delivery (it
 * applied sa_mask and SA_RESETHAND to the OS thread itself). */
static void run_handler(struct green_thread *t, int sig, siginfo_t *si, void *uc,
                        bool kernel)
{
    struct sigaction a = user_act[sig];
    if (a.sa_handler == SIG_IGN)
        return;
    if (a.sa_handler == SIG_DFL) {
        take_default(sig);
        return;
    }
    if (a.sa_flags & SA_RESETHAND) {
        memset(&user_act[sig], 0, sizeof user_act[sig]);
        user_act[sig].sa_handler = SIG_DFL;
        if (!kernel) {
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            green__real.sigaction(sig, &dfl, NULL);
        }
    }
    uint64_t old = 0;
    if (t) {
        old = t->sig_blocked;
        uint64_t m = old | set_bits(&a.sa_mask);
        if (!(a.sa_flags & SA_NODEFER))
            m |= BIT(sig);
        mask_set(t, m);
        if (!kernel)
            kmask_apply(t->ctx);
        t->sig_handled++;
    }
    atomic_fetch_add(&sig_count, 1);
    if (t)
        t->handler_depth++;
    else
        handler_depth++;
    /* The alternate stack (the essay): the kernel ran the wrapper on the
     * one it has; a handler run later runs on t's own when SA_ONSTACK
     * asks and t is not on it; SS_AUTODISARM disarms it meanwhile, and
     * the handler's changes are undone after it, as sigreturn does. */
    struct invoke inv = { &a, sig, si, uc };
    struct alt_snap snap;
    const struct green__alt *mine = t ? green__alt_of(t) : NULL;
    bool onstack = t && (a.sa_flags & SA_ONSTACK);
    char *alo = mine ? mine->sp : NULL;
    size_t asz = mine ? mine->size : 0;
    bool on_mine = onstack && !kernel && mine && !on_alt(t);
    bool below = onstack && kernel && !mine && uc && green__stack_on_own_alt();
    if (t) {
        alt_save(t, &snap);
        if (mine && (mine->flags & (int)SS_AUTODISARM)) {
            t->alt->disarmed = true;
            if (!kernel)
                green__alt_enter(t->ctx, t, t);
        }
    }
    if (on_mine)
        green__call_on(alo, alo + asz, invoke, &inv);
    else if (below)
        invoke_below(t, uc, &inv);
    else
        invoke(&inv);
    if (t)
        alt_restore(t, &snap, kernel);
    if (t)
        t->handler_depth--;
    else
        handler_depth--;
    if (t) {
        mask_set(t, old);
        if (!kernel)
            kmask_apply(t->ctx);
        /* One that came during the handler, blocked by it, runs now
         * (natively: right after sigreturn). */
        if (t->sig_pending & ~t->sig_blocked)
            deliver_pending(t);
    }
}

/* What pthread_kill's (val NULL) or pthread_sigqueue's handler sees: the
 * kernel's siginfo of a tgkill or rt_tgsigqueueinfo. */
static void send_info(siginfo_t *si, int sig, const union sigval *val)
{
    memset(si, 0, sizeof *si);
    si->si_signo = sig;
    si->si_code = val ? SI_QUEUE : SI_TKILL;
    si->si_pid = getpid();
    si->si_uid = getuid();
    if (val)
        si->si_value = *val;
}

struct delivery {
    struct green_thread *t;
    int sig;
    siginfo_t *si;
};

static void run_delivery(void *p)
{
    struct delivery *d = p;
    ucontext_t uc;
    memset(&uc, 0, sizeof uc);
    bits_set(&uc.uc_sigmask, d->t->sig_blocked);
    run_handler(d->t, d->sig, d->si, &uc, false);
}

/* The siginfo of a signal the kernel delivered to a thread inside the
 * scheduler is kept in its hub's ctx->resume_info until that thread runs
 * its handler (t->sig_resume_bits; written in the wrapper, so no
 * allocation). */

/* A handler queued to run as its thread when the thread's interrupted
 * park returns (t->sig_resume, in arrival order). */
struct resume {
    struct resume *next;
    int sig;
    siginfo_t si;
};

/* Queue sig's handler for t; false when there is no memory for it (the
 * caller then runs it the old way, in green__run_as). */
static bool queue_resume(struct green_thread *t, int sig, const siginfo_t *si)
{
    struct resume *r = malloc(sizeof *r);
    if (!r)
        return false;
    r->next = NULL;
    r->sig = sig;
    r->si = *si;
    struct resume **p = (struct resume **)&t->sig_resume;
    while (*p)
        p = &(*p)->next;
    *p = r;
    return true;
}

/* green__on_resume: t's park returned; run its queued handlers as t, on
 * its own stack, where they may block (a nanosleep, a write to a full
 * pipe) as they may natively. The interrupted call's EINTR state is put
 * back after each: a blocking call inside the handler marks its own. */
static void on_resume(struct green_thread *t)
{
    uint64_t b;
    while ((b = t->sig_resume_bits & ~t->sig_blocked)) {
        int sig = lowest(b);
        t->sig_resume_bits &= ~BIT(sig);
        siginfo_t si = t->ctx->resume_info[sig];
        unsigned gen = t->intr_gen, mark = t->intr_mark;
        bool restart = t->sig_restart;
        struct delivery d = { t, sig, &si };
        run_delivery(&d);
        t->intr_gen = gen;
        t->intr_mark = mark;
        t->sig_restart = restart;
    }
    while (t->sig_resume) {
        struct resume *r = t->sig_resume;
        t->sig_resume = r->next;
        unsigned gen = t->intr_gen, mark = t->intr_mark;
        bool restart = t->sig_restart;
        struct delivery d = { t, r->sig, &r->si };
        run_delivery(&d);
        t->intr_gen = gen;
        t->intr_mark = mark;
        t->sig_restart = restart;
        free(r);
    }
}

/* Deliver sig to t (which accepts it), outside any kernel delivery: the
 * handler runs as t, then t's interruptible park fails with EINTR.
 *
 * How it runs as t. The running thread runs it at once. A thread parked
 * in an interruptible call (a read, a sleep, a connect...) is woken with
 * EINTR and runs it itself as its park returns (on_resume), so that the
 * handler may block, or end the thread with pthread_exit, as natively;
 * its call then fails with EINTR or restarts per SA_RESTART. A thread
 * parked in a pthread lock, condition or barrier wait (lock_wakeable) is
 * woken the same way and runs the handler where its park returns; the
 * lock core then waits again, at the head of the queue for a mutex or an
 * rwlock (its place), and a grant that won the race is kept; a condition
 * wait returns as from a spurious wake-up, which POSIX allows. So a
 * handler may block there too (Open POSIX pthread_barrier_wait/3-2 sleeps
 * in one). A runnable thread (on the run queue after a yield, or new)
 * runs it where it resumes (green__run_resume). Any other parked thread
 * (a join, an offload, a green.h lock, whose waits a wake would end)
 * runs it through green__run_as on its stack below its saved context,
 * without being woken: such a handler cannot wait (a blocking call in it
 * fails with EINTR; README, Known differences). */
static void deliver(struct green_thread *t, int sig, siginfo_t *si)
{
    bool restart = (user_act[sig].sa_flags & SA_RESTART) != 0;
    bool handler = user_act[sig].sa_handler != SIG_DFL &&
                   user_act[sig].sa_handler != SIG_IGN;
    struct delivery d = { t, sig, si };
    if (t == t->ctx->current)
        run_delivery(&d);
    else if (handler && (t->sig_resume || t->state != GREEN_PARKED ||
                         t->intr_gen || t->lock_wakeable) &&
             queue_resume(t, sig, si)) {
        /* Queued behind one already waiting, or the thread is runnable
         * (it resumes soon) or waits in an interruptible call: it runs the
         * handler itself. */
        green__on_resume = on_resume;
        if (t->state == GREEN_PARKED) {
            t->sig_restart = restart;
            green__ready(t, EINTR);
        } else if (!restart) {
            t->sig_restart = false;
        }
        return;
    } else if (handler)
        green__run_as(t, run_delivery, &d);
    else
        run_handler(NULL, sig, si, NULL, false);   /* default or ignore */
    if (!handler || !t->intr_gen)
        return;
    if (t->state == GREEN_PARKED) {
        t->sig_restart = restart;
        green__ready(t, EINTR);
    } else if (!restart) {
        /* Already woken (by its deadline, say) or running between two
         * tries: the call still ends in EINTR (green__intr_mine) and must
         * not restart. */
        t->sig_restart = false;
    }
}

/* Deliver the lowest of t's own pending signals that the mask allows,
 * as the kernel does when several are deliverable at once: it builds a
 * frame for the lowest, then (before any handler runs) one for the
 * lowest that the first one's handler mask still allows, and so on, and
 * the handler of the top frame runs first. So the handlers run from the
 * highest signal down, each under the masks of those below it, and a
 * handler's own signal waits for it to return. Returns how many ran. */
static int deliver_nested(struct green_thread *t, uint64_t mask)
{
    uint64_t b = t->sig_pending & ~mask;
    if (!b)
        return 0;
    int sig = lowest(b);
    siginfo_t si;
    own_take(t, sig, &si);
    int n = 1;
    const struct sigaction *a = &user_act[sig];
    if (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN) {
        uint64_t above = mask | set_bits(&a->sa_mask) |
                         (a->sa_flags & SA_NODEFER ? 0 : BIT(sig));
        uint64_t keep = t->sig_blocked;
        mask_set(t, above);
        n += deliver_nested(t, above);
        mask_set(t, keep);
        kmask_apply(t->ctx);
    }
    deliver(t, sig, &si);
    return n;
}

/* Deliver the current thread's pending signals that its mask now allows.
 * Returns how many ran. */
static int deliver_pending(struct green_thread *t)
{
    int n = 0;
    while (t->sig_pending & ~t->sig_blocked)
        n += deliver_nested(t, t->sig_blocked);
    return n;
}

/* The expiry of a CPU-time itimer, which Linux sends to the thread that
 * was running (see the wrapper). */
static bool cpu_timer_info(int sig, const siginfo_t *si)
{
    return si->si_code == SI_KERNEL && (sig == SIGPROF || sig == SIGVTALRM);
}

/* The runnable thread of c that accepts b and runs first (the highest
 * rank: libgreen/sched.c, "Priorities"), or NULL. */
static struct green_thread *next_runnable(struct green__ctx *c, uint64_t b)
{
    struct green_thread *top = NULL;
    for (struct green_thread *t = c->all; t; t = t->all_next)
        if (!t->is_hub && (t->state == GREEN_RUNNABLE || t->state == GREEN_NEW) &&
            !(t->sig_blocked & b) &&
            (!top || green__sched_rank(t) > green__sched_rank(top)))
            top = t;
    return top;
}

/* The green thread the kernel would give a process-directed sig to. A
 * CPU-time itimer's that the hub took (it arrived while the hub ran or
 * the running thread was inside the scheduler) goes to a thread that is
 * using the CPU: a runnable one, the one that runs first. */
static struct green_thread *pick(struct green__ctx *c, int sig, const siginfo_t *si)
{
    uint64_t b = BIT(sig);
    /* An extra hub's main thread is libgreen's (libgreen/hubs.c): it
     * keeps the faults open for the OS thread, and takes none. */
    struct green_thread *m = c->extra_hub ? NULL : c->main, *any = NULL;
    if (cpu_timer_info(sig, si) && (any = next_runnable(c, b)))
        return any;
    if (m && m->state != GREEN_DONE && !(m->sig_blocked & b))
        return m;
    for (struct green_thread *t = c->all; t; t = t->all_next) {
        if (t->is_hub || t->state == GREEN_DONE || (t->sig_blocked & b) ||
            (c->extra_hub && t == c->main))
            continue;
        if (t->state == GREEN_PARKED && t->intr_gen)
            return t;
        if (!any || (any->state == GREEN_NEW && t->state != GREEN_NEW))
            any = t;
    }
    return any;
}

/* Pass the process-directed sig (siginfo si) to hub h: its next poll
 * delivers it as one the kernel gave its OS thread. The kernel cannot
 * do this for us: rt_tgsigqueueinfo and rt_sigqueueinfo refuse a
 * kill()'s siginfo (si_code SI_USER) unless the caller is the target
 * thread, or the main thread for the process. Safe in a handler (the
 * lock is held by no handler of the OS thread that holds it). */
static void forward_to(struct green__ctx *h, int sig, const siginfo_t *si, int hops)
{
    while (atomic_flag_test_and_set_explicit(&h->fwd_lock, memory_order_acquire))
        ;
    if (!(atomic_load_explicit(&h->fwd_bits, memory_order_relaxed) & BIT(sig))) {
        h->fwd_info[sig] = *si;
        h->fwd_hops[sig] = (unsigned char)(hops < 255 ? hops : 255);
        atomic_fetch_or(&h->fwd_bits, BIT(sig));
    }
    atomic_flag_clear_explicit(&h->fwd_lock, memory_order_release);
    green__async_send(h->loop, &h->async);
}

/* How often a signal may be passed between OS threads before the hub
 * that has it runs its handler itself: once to each hub, and from a solo
 * thread and to the main OS thread. */
static int hops_max(void)
{
    return green__hubs_n() + 2;
}

/* The hub of the process's main OS thread (the one that may queue a
 * kill()'s siginfo back to the process), or NULL. */
static struct green__ctx *main_os_hub(void)
{
    pid_t pid = getpid();
    struct green__ctx *m = atomic_load(&main_os_ctx);
    return m && m->tid == pid ? m : green__hub_by_tid(pid);
}

/* Signals an OS thread of libgreen's accepts whatever the program's
 * threads block: an extra hub's own main thread keeps the faults, SIGSYS,
 * the monitor and the dump signal open (libgreen/hubs.c), a solo thread
 * the monitor signal (libgreen/solo.c), every hub green__sig_keep_open.
 * Sent to the process, the kernel would give one straight back to such a
 * thread. */
static bool kept_open(int sig)
{
    return fault_signal(sig) || sig == SIGSYS || sig == green__monitor_signal ||
           (green__dump_signal > 0 && sig == green__dump_signal) ||
           (green__sig_keep_open & BIT(sig));
}

/* Signals of kept_open that requeue left pending on the main OS thread
 * for the process (a hint: a bit stays until claimed, or until the main
 * OS thread took the signal; the kernel's SigPnd there is the truth). */
static atomic_uint_fast64_t parked;

/* Every thread blocks sig now: pending for the process again, with its
 * own siginfo, where sigpending, signalfd and sigwait of every thread see
 * it and the first OS thread whose kernel mask lets it in gets it (a
 * thread that unblocks it). The kernel takes a kill()'s siginfo (si_code
 * SI_USER) back from the process's main OS thread alone: from another OS
 * thread the signal goes through the main one's hub. A signal of
 * kept_open is queued to the main OS thread itself instead, whose kernel
 * mask blocks it while its hub's threads all do, and is marked parked:
 * sigpending of the other hubs' threads adds it, and one of them that
 * unblocks it or waits for it claims it (claim_parked). c: the hub that
 * has it, or NULL on a solo thread. */
static void requeue(struct green__ctx *c, int sig, const siginfo_t *si, int hops)
{
    pid_t pid = getpid();
    struct green__ctx *m = c && c->tid == pid ? NULL : main_os_hub();
    if (m) {
        forward_to(m, sig, si, hops + 1);
    } else if (c && (c->tid != pid || !kept_open(sig))) {
        green__syscall(SYS_rt_sigqueueinfo, pid, sig, si);
    } else {
        atomic_fetch_or(&parked, BIT(sig));
        green__syscall(SYS_rt_tgsigqueueinfo, pid, pid, sig, si);
    }
}

/* Parked signals (requeue) still pending on the main OS thread, for a
 * thread of another hub; 0 when there are none or c is the main OS
 * thread's hub (the kernel shows those itself). Not one the main OS
 * thread's hub holds for a thread of its own (kthread_bits: read without
 * its lock, a hint). */
static uint64_t parked_pending(struct green__ctx *c)
{
    uint64_t b = atomic_load_explicit(&parked, memory_order_relaxed);
    if (green__likely(!b))
        return 0;
    struct green__ctx *m = main_os_hub();
    if (!m || m == c)
        return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)m->tid);
    return b & task_pending(path) & ~__atomic_load_n(&m->kthread_bits, __ATOMIC_RELAXED);
}

/* A claim: a thread of another hub asks the main OS thread's hub for the
 * parked signals it now accepts or waits for. At most one instance of
 * each of kept_open's signals (faults, SIGSYS, monitor, dump). */
#define CLAIM_MAX 8
struct claim {
    struct green__remote r;        /* posted to the main OS thread's hub */
    uint64_t bits;
    int n;                         /* signals taken, with their siginfo */
    siginfo_t info[CLAIM_MAX];
    uint32_t done;                 /* futex word: 1 once handled */
};

/* On the main OS thread's hub: take one instance of each claimed signal
 * from its OS thread (a zero-timeout sigtimedwait) with its siginfo, for
 * the claimer to place (claim_parked): the kernel takes a kill()'s
 * siginfo only from the thread it is queued to. */
static void claim_run(struct green__remote *r)
{
    struct claim *cl = (struct claim *)r;
    struct green__ctx *c = green__tls_ctx;
    uint64_t bits = cl->bits & ~c->kthread_bits;
    for (; bits && cl->n < CLAIM_MAX; bits &= bits - 1) {
        int sig = lowest(bits);
        atomic_fetch_and(&parked, ~BIT(sig));
        uint64_t one = BIT(sig);
        struct timespec zero = { 0, 0 };
        if (green__syscall(SYS_rt_sigtimedwait, &one, &cl->info[cl->n], &zero,
                           sizeof one) == sig)
            cl->n++;
    }
    /* Last: the claimer's stack may be gone once it sees done. */
    __atomic_store_n(&cl->done, 1, __ATOMIC_RELEASE);
    green__futex_wake(&cl->done, 1, ~0u);
}

static const struct green__lock_how claim_how = { .expect_remote = true };

/* t, of another hub than the main OS thread's, now accepts or waits for
 * some of want: claim those parked there and wait for them. For a wait
 * (to_own: a sigwait family call) each one t blocks goes to t's own
 * pending set, where the wait takes it (take_own); any other is queued
 * to t's OS thread, whose kernel mask lets it in now that t accepts it,
 * so that its handler has run when the caller returns, as natively. Not
 * from a handler run as a parked thread, which cannot wait. */
static void claim_parked(struct green_thread *t, uint64_t want, bool to_own)
{
    uint64_t b = atomic_load_explicit(&parked, memory_order_relaxed) & want;
    if (green__likely(!b))
        return;
    struct green__ctx *c = t->ctx, *m = main_os_hub();
    if (!m || m == c || green__in_handler())
        return;
    struct claim cl = { .r.run = claim_run, .bits = b };
    green__remote_post(m, &cl.r);
    bool killed = false;
    while (!__atomic_load_n(&cl.done, __ATOMIC_ACQUIRE)) {
        int code = green__futex_wait(&cl.done, 0, ~0u, t, GREEN_FOREVER, &claim_how);
        if (code == ECANCELED)
            killed = true;         /* kept for the caller's next park */
        else if (code && code != EAGAIN)
            green__syscall(SYS_sched_yield);
    }
    if (killed)
        t->kill_pending |= GREEN__KP_KILL;
    for (int i = 0; i < cl.n; i++) {
        int sig = cl.info[i].si_signo;
        if (to_own && (t->sig_blocked & BIT(sig)) && own_push(t, &cl.info[i]) == 0)
            continue;
        /* The kernel delivers it as this call returns: t runs, and its
         * handler runs at once. */
        green__syscall(SYS_rt_tgsigqueueinfo, getpid(), c->tid, sig, &cl.info[i]);
    }
}

/* How many of h's threads accept sig, from its counts (read without its
 * lock when h is another hub's: a hint). An extra hub's own main thread
 * is libgreen's (it keeps the faults, the monitor and the dump signal
 * open for its OS thread) and takes none. */
static uint32_t takers(struct green__ctx *h, int sig)
{
    if (!h->sig_counted)
        return 0;
    uint32_t n = __atomic_load_n(&h->sig_blockers[31], __ATOMIC_RELAXED);
    uint32_t blockers = __atomic_load_n(&h->sig_blockers[sig - 1], __ATOMIC_RELAXED);
    uint32_t own = h->extra_hub && !(h->main->sig_blocked & BIT(sig)) ? 1u : 0u;
    return n - blockers > own ? n - blockers - own : 0;
}

/* A signal sent to the process that no thread of c accepts, though the
 * kernel gave it to c's OS thread: one its kernel mask cannot block (a
 * fault: a blocked fault kills; on an extra hub also the monitor and
 * dump signals, which its own main thread keeps open). It goes to
 * another hub where a thread accepts it, as the kernel would have chosen
 * had c's OS thread blocked it. The counts of the other hubs are hints:
 * a hub that finds no taker either passes it on again, a number of times
 * bounded by hops_max. False when no other hub has a taker. */
static bool forward_taker(struct green__ctx *c, int sig, siginfo_t *si, int hops)
{
    if (hops > hops_max())
        return false;
    for (int i = 0; i < green__hubs_n(); i++) {
        struct green__ctx *h = green__hubs_at(i);
        if (h && h != c && takers(h, sig) > 0) {
            forward_to(h, sig, si, hops + 1);
            return true;
        }
    }
    return false;
}

/* A thread of c in a sigwait for sig (parked, or readied by its
 * signalfd, which the kernel made readable for this very signal as it
 * queued it, before it gave it to the OS thread), or NULL. */
static struct green_thread *sigwaiter(struct green__ctx *c, int sig)
{
    for (struct green_thread *t = c->all; t; t = t->all_next)
        if (!t->is_hub && t->state != GREEN_DONE && (t->sig_waiting & BIT(sig)))
            return t;
    return NULL;
}

/* One process-directed signal the kernel gave c's OS thread (hops 0),
 * or another OS thread passed on. A thread that accepts it runs its
 * handler; else a thread of c that waits for it in sigwait takes it (on
 * an extra hub a signal of kept_open cannot stay pending in the kernel
 * for the wait's signalfd: the OS thread lets it in); else another hub
 * with a taker gets it; else it is pending for the process again. */
static void take_proc(struct green__ctx *c, int sig, siginfo_t *si, int hops)
{
    struct green_thread *t = pick(c, sig, si), *w;
    if (t) {
        deliver(t, sig, si);
    } else if ((w = sigwaiter(c, sig))) {
        if (own_push(w, si) == 0 && w->state == GREEN_PARKED)
            green__ready(w, 0);    /* its sigwait takes it */
    } else if (forward_taker(c, sig, si, hops)) {
    } else if (((c->sig_kmask & BIT(sig)) || (c->extra_hub && takers(c, sig) == 0)) &&
               hops <= hops_max()) {
        requeue(c, sig, si, hops);   /* every thread here blocks it now */
    } else {
        run_handler(NULL, sig, si, NULL, false);
    }
}

/* The hub calls this after each poll. Hub stack; the handlers it runs
 * run as their thread (green__run_as). */
static void on_signal(struct green__ctx *c)
{
    if (green__unlikely(!c->sig_counted)) {
        sig_init(c);
        kmask_apply(c);
    }
    if (green__likely(!atomic_load_explicit(&c->proc_bits, memory_order_relaxed) &&
                      !atomic_load_explicit(&c->fwd_bits, memory_order_relaxed)))
        return;
    uint64_t bits = atomic_exchange(&c->proc_bits, 0);
    sig_init(c);
    for (; bits; bits &= bits - 1) {
        int sig = lowest(bits);
        siginfo_t si = c->proc_info[sig];
        take_proc(c, sig, &si, 0);
    }
    /* Those other OS threads passed on, one at a time under the lock. */
    for (;;) {
        while (atomic_flag_test_and_set_explicit(&c->fwd_lock, memory_order_acquire))
            ;
        uint64_t f = atomic_load_explicit(&c->fwd_bits, memory_order_relaxed);
        int sig = f ? lowest(f) : 0, hops = 0;
        siginfo_t si;
        if (sig) {
            si = c->fwd_info[sig];
            hops = c->fwd_hops[sig];
            atomic_fetch_and(&c->fwd_bits, ~BIT(sig));
        }
        atomic_flag_clear_explicit(&c->fwd_lock, memory_order_release);
        if (!sig)
            break;
        take_proc(c, sig, &si, hops);
    }
}

/* A fault the kernel raised (si_code > 0: the instruction's own, or
 * SI_KERNEL when a signal frame could not be written): the program's
 * handler runs now, on the context that faulted, whoever that is (the
 * hub too), as it would have without the wrapper; it may leave with
 * siglongjmp. The kernel applied the action's flags (SA_ONSTACK,
 * SA_RESETHAND, SA_NODEFER, sa_mask), which are the program's. */
static void run_fault(int sig, siginfo_t *si, void *uc)
{
    struct sigaction a = user_act[sig];
    if (a.sa_handler == SIG_DFL || a.sa_handler == SIG_IGN) {
        take_default(sig);         /* a fault cannot be ignored */
        return;
    }
    if (a.sa_flags & SA_RESETHAND) {
        memset(&user_act[sig], 0, sizeof user_act[sig]);
        user_act[sig].sa_handler = SIG_DFL;
    }
    struct invoke v = { &a, sig, si, uc };
    invoke(&v);
}

static void wrapper(int sig, siginfo_t *si, void *uc)
{
    if (green__solo_on_signal(si, uc))
        return;                    /* libgreen/solo.c stops a call */
    if (fault_signal(sig) && si->si_code > 0) {
        run_fault(sig, si, uc);
        return;
    }
    int saved = errno;
    struct green__ctx *c = green__tls_ctx;
    if (!c && green__solo_thread()) {
        /* A process-directed signal every hub blocks, which the kernel
         * gave to a solo thread (it accepts the monitor signal alone):
         * pending on the main OS thread instead, as it would be natively
         * on a process whose threads all block it (through its hub: the
         * kernel refuses a kill()'s siginfo from this thread). */
        requeue(NULL, sig, si, 0);
        errno = saved;
        return;
    }
    struct green_thread *t = c ? c->current : NULL;
    /* Linux gives a process-directed signal to the main thread when it
     * does not block it, whoever runs (or sent it). An extra hub's main
     * thread is libgreen's: it keeps some signals open for its OS thread
     * and takes none (pick). */
    struct green_thread *m = c && !c->extra_hub ? c->main : NULL;
    /* Except the expiry of a CPU-time itimer (ITIMER_PROF,
     * ITIMER_VIRTUAL), which the kernel sends to the thread that was
     * running when it expired, if that one accepts it. */
    bool cpu_timer = cpu_timer_info(sig, si);
    bool for_main = m && m != t && si->si_code != SI_TKILL && !cpu_timer &&
                    m->state != GREEN_DONE && !(m->sig_blocked & BIT(sig));
    /* Every thread blocks it, yet the kernel delivered it: the running
     * thread's own syscall with a mask (ppoll, pselect, epoll_pwait)
     * lets it through, so it is that thread's, as natively. */
    bool by_syscall_mask = c && c->sig_counted && (c->sig_kmask & BIT(sig)) &&
                           t != c->hub;
    /* The running thread is inside the scheduler (c->sched_busy: queued
     * itself, parking, finishing, or the hub still switching to it): the
     * program's handler must not run on top of a half-changed run queue,
     * nor on another thread's stack. A signal sent to this thread alone
     * waits for it to resume (green__run_resume); any other goes to the
     * hub, which picks a thread as below. */
    bool busy = c && c->sched_busy && t != c->hub;
    if (busy && (si->si_code == SI_TKILL || cpu_timer) && !(t->sig_blocked & BIT(sig))) {
        c->resume_info[sig] = *si;
        t->sig_resume_bits |= BIT(sig);
        green__on_resume = on_resume;
        errno = saved;
    } else if (c && !by_syscall_mask &&
               (busy || t == c->hub || (t->sig_blocked & BIT(sig)) || for_main)) {
        /* Not for the running thread: the hub picks one. */
        c->proc_info[sig] = *si;
        atomic_fetch_or(&c->proc_bits, BIT(sig));
        green__async_send(c->loop, &c->async);
        errno = saved;
    } else {
        errno = saved;
        run_handler(t, sig, si, uc, true);
        if (!c && green__tls_ctx && uc) {
            /* The handler made the hub (pthread_self adopts one): the
             * main thread's mask is the one sigreturn restores, not the
             * handler's, which the hub copied. */
            struct green_thread *mt = green__tls_ctx->main;
            mask_set(mt, set_bits(&((ucontext_t *)uc)->uc_sigmask));
        }
    }
    /* A mask changed in the handler: sigreturn must restore K. */
    if (c && c->sig_counted && uc)
        bits_set(&((ucontext_t *)uc)->uc_sigmask, c->sig_kmask);
}

static bool wrappable(int sig)
{
    switch (sig) {
    case SIGSYS: case SIGKILL: case SIGSTOP:
        return false;
    default:
        return sig > 0 && sig < NSIG && sig <= 64 &&
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
    return green__real.sigaction(sig, &w, NULL);
}

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000     /* the kernel's (uapi asm/signal.h) */
#endif

/* An action of the program's as libc reads it back from the kernel: with
 * the restorer libc gave the kernel (k, the kernel's action now), which
 * programs take from there for raw rt_sigaction (LTP's rt_sigaction
 * tests). */
static void with_restorer(struct sigaction *a, const struct sigaction *k)
{
    a->sa_flags = (a->sa_flags & ~SA_RESTORER) | (k->sa_flags & SA_RESTORER);
    a->sa_restorer = k->sa_restorer;
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
    /* Ours in the kernel (the wrapper, or a handler of libgreen's own for
     * the monitor signal): report the program's own action. */
    bool internal = (k.sa_flags & SA_SIGINFO) &&
                    (green__solo_handler_is(k.sa_sigaction) ||
                     green__monitor_handler_is(k.sa_sigaction));
    bool ours = ((k.sa_flags & SA_SIGINFO) && k.sa_sigaction == wrapper) || internal;
    struct sigaction prev = ours ? user_act[sig] : k;
    /* The stack-overflow reporter (libgreen/stack.c) stands in front of
     * an action: that one is reported. */
    bool reporter = (k.sa_flags & SA_SIGINFO) &&
                    green__stack_fault_prior(sig, k.sa_sigaction, &prev);
    if (reporter)
        internal = false;
    if (ours && !internal)
        with_restorer(&prev, &k);
    if (act) {
        int r;
        /* The monitor signal, when its default is to ignore it, keeps
         * libgreen's handler (the monitor's, solo.c's): SIG_DFL and
         * SIG_IGN then differ from it only in what the handler does. */
        bool keep = sig == green__monitor_signal && (sig == SIGURG || sig == SIGWINCH);
        /* SIGSEGV and SIGBUS: the overflow reporter stays in front of
         * SIG_DFL, or comes back there. */
        bool fault_dfl = false;
        if (sig == SIGSEGV || sig == SIGBUS) {
            struct sigaction as_read = *act;
            with_restorer(&as_read, &k);
            fault_dfl = green__stack_fault_program(sig, &as_read);
        }
        if (fault_dfl) {
            r = 0;
            user_act[sig] = *act;
        } else if (act->sa_handler == SIG_DFL || act->sa_handler == SIG_IGN) {
            r = keep && internal ? 0 : green__real.sigaction(sig, act, NULL);
            if (r == 0) {
                user_act[sig] = *act;
                if (keep)
                    green__solo_keep_handler();
            }
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

/* glibc's siginterrupt(): SA_RESTART off (flag != 0) or on, through our
 * sigaction, so that the program's view and the wrapper agree (glibc's
 * own calls its internal sigaction, behind the shim's back). */
int green_hook_siginterrupt(int sig, int flag)
{
    struct sigaction sa;
    if (green_hook_sigaction(sig, NULL, &sa) < 0)
        return -1;
    if (flag)
        sa.sa_flags &= ~SA_RESTART;
    else
        sa.sa_flags |= SA_RESTART;
    return green_hook_sigaction(sig, &sa, NULL);
}

/* The System V calls: glibc's make their sigprocmask and sigaction
 * internally, behind the shim's back (a sighold would block the signal in
 * the hub's kernel mask only, which the next mask change of any thread
 * of the hub undoes: LTP sighold02). The same steps through the hooks. */
static int one_signal(int sig, sigset_t *set)
{
    sigemptyset(set);
    return sigaddset(set, sig);      /* EINVAL for a bad number */
}

int green_hook_sighold(int sig)
{
    sigset_t set;
    return one_signal(sig, &set) < 0 ? -1 : green_hook_sigprocmask(SIG_BLOCK, &set, NULL);
}

int green_hook_sigrelse(int sig)
{
    sigset_t set;
    return one_signal(sig, &set) < 0 ? -1 : green_hook_sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int green_hook_sigignore(int sig)
{
    struct sigaction sa = { .sa_handler = SIG_IGN };
    sigemptyset(&sa.sa_mask);
    return green_hook_sigaction(sig, &sa, NULL);
}

sighandler_t green_hook_sigset(int sig, sighandler_t disp)
{
    sigset_t set, old;
    struct sigaction sa, prev;
    if (disp == SIG_ERR || one_signal(sig, &set) < 0) {
        errno = EINVAL;
        return SIG_ERR;
    }
    if (disp == SIG_HOLD) {
        if (green_hook_sigprocmask(SIG_BLOCK, &set, &old) < 0)
            return SIG_ERR;
        if (sigismember(&old, sig))
            return SIG_HOLD;
        return green_hook_sigaction(sig, NULL, &prev) < 0 ? SIG_ERR : prev.sa_handler;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = disp;
    sigemptyset(&sa.sa_mask);
    if (green_hook_sigaction(sig, &sa, &prev) < 0 ||
        green_hook_sigprocmask(SIG_UNBLOCK, &set, &old) < 0)
        return SIG_ERR;
    return sigismember(&old, sig) ? SIG_HOLD : prev.sa_handler;
}

/* ------------------------------------------ alternate signal stacks */

int green_hook_sigaltstack(const stack_t *ss, stack_t *old)
{
    green__real_init();
    struct green__ctx *c = green__tls_ctx;
    struct green_thread *t = c ? c->current : NULL;
    if (!t || t == c->hub)
        return green__real.sigaltstack(ss, old);
    stack_t in;
    if (ss && green__copy_in(&in, ss, sizeof in) != 0)
        return -1;
    /* What the thread has, as the kernel reports it: with SS_AUTODISARM
     * never "on it" (the kernel's on_sig_stack), while disarmed none. */
    struct green__alt *a = t->alt;
    stack_t mine = { .ss_sp = NULL, .ss_flags = SS_DISABLE, .ss_size = 0 };
    if (a && !(a->flags & SS_DISABLE) && !a->disarmed) {
        mine = (stack_t){ .ss_sp = a->sp, .ss_flags = a->flags, .ss_size = a->size };
        if (!(a->flags & (int)SS_AUTODISARM) && on_alt(t))
            mine.ss_flags |= SS_ONSTACK;
    }
    if (ss) {
        if (mine.ss_flags & SS_ONSTACK) {
            errno = EPERM;
            return -1;
        }
        int mode = in.ss_flags & ~(int)SS_AUTODISARM;
        if (mode != SS_DISABLE && !a && !(a = t->alt = calloc(1, sizeof *a))) {
            errno = ENOMEM;
            return -1;
        }
        /* The kernel checks it (EINVAL, ENOMEM) and takes it: the running
         * thread's is the kernel's. */
        if (green__real.sigaltstack(&in, NULL) != 0)
            return -1;
        if (mode == SS_DISABLE) {
            if (a)
                *a = (struct green__alt){ .flags = SS_DISABLE };
            green__alt_install(c, NULL);
        } else {
            *a = (struct green__alt){ .sp = in.ss_sp, .size = in.ss_size,
                                      .flags = in.ss_flags & (int)SS_AUTODISARM };
            c->alt_sp = a->sp;
            c->alt_size = a->size;
            c->alt_turns = true;
        }
    }
    if (old && green__copy_out(old, &mine, sizeof mine) != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------- masks: the hooks */

/* Returns 0 or an errno value. */
static int mask_change(int how, const sigset_t *set, sigset_t *old)
{
    struct green_thread *t = green__current();
    uint64_t cur = t->sig_blocked, m = cur;
    if (set) {
        uint64_t s = set_bits(set);
        switch (how) {
        case SIG_BLOCK: m = cur | s; break;
        case SIG_UNBLOCK: m = cur & ~s; break;
        case SIG_SETMASK: m = s; break;
        default: return EINVAL;
        }
    }
    if (old)
        bits_set(old, cur);
    if (set && (m & ~NOBLOCK) != cur) {
        sig_init(t->ctx);
        mask_set(t, m);
        kmask_apply(t->ctx);       /* kernel-pending ones arrive here */
        deliver_pending(t);
        claim_parked(t, ~t->sig_blocked, false);
    }
    return 0;
}

int green_hook_sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    green__real_init();
    if (!sig_on())
        return green__real.sigprocmask(how, set, old);
    int e = mask_change(how, set, old);
    if (e) {
        errno = e;
        return -1;
    }
    if (!green__in_handler())
        green__fair_turn(green__tls_ctx);
    return 0;
}

int green_hook_pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    green__real_init();
    if (!sig_on())
        return green__real.pthread_sigmask(how, set, old);
    int e = mask_change(how, set, old);
    /* A thread looping on its mask while it waits for another one must
     * let it run (fair turns, as the kernel would preempt it). */
    if (!e && !green__in_handler())
        green__fair_turn(green__tls_ctx);
    return e;
}

int green_hook_sigpending(sigset_t *set)
{
    green__real_init();
    if (!sig_on())
        return green__real.sigpending(set);
    if (green__real.sigpending(set) < 0)
        return -1;
    struct green_thread *t = green__current();
    sig_init(t->ctx);
    uint64_t p = set_bits(set);
    struct green__ctx *c = t->ctx;
    c->kthread_bits &= p;          /* the ones taken are no longer ours */
    for (uint64_t k = c->kthread_bits; k; k &= k - 1)
        if (c->kthread_owner[__builtin_ctzll(k)] != t)
            p &= ~(k & -k);        /* another thread's own */
    bits_set(set, p | t->sig_pending | parked_pending(c));
    return 0;
}

/* The kernel's way of sending sig to this OS thread: pthread_sigqueue
 * with val, else raise for the running thread (libc's, as the program
 * called it), else tgkill. Returns 0 or an error number. */
static int os_send(int sig, const union sigval *val, bool self)
{
    if (val)
        return green__real.pthread_sigqueue(green__real.pthread_self(), sig, *val);
    if (self)
        return green__real.raise(sig) < 0 ? errno : 0;
    return tgkill_self(sig) < 0 ? errno : 0;
}

static int sig_send(struct green_thread *t, int sig, const union sigval *val);

/* pthread_kill(t, sig) for a green thread t (sig != 0). */
int green__sig_interrupt(struct green_thread *t, int sig)
{
    return sig_send(t, sig, NULL);
}

/* sig_send, run on the target's hub: a = sig, | 256 with a value in p. */
static void send_on_hub(struct green_thread *t, intptr_t a, void *p)
{
    union sigval v = { .sival_ptr = p };
    sig_send(t, (int)(a & 255), (a & 256) ? &v : NULL);
}

static int sig_send(struct green_thread *t, int sig, const union sigval *val)
{
    if (sig <= 0 || sig > 64 || sig == 32 || sig == 33)
        return EINVAL;
    struct green__ctx *c = t->ctx;
    if (c != green__tls_ctx) {
        /* A thread of another hub: everything below happens there. */
        union sigval v;
        memset(&v, 0, sizeof v);
        if (val)
            v = *val;
        return green__on_hub(t, send_on_hub, sig | (val ? 256 : 0), v.sival_ptr);
    }
    sig_init(c);
    uint64_t b = BIT(sig);
    bool wrapped = wrapped_now(sig);
    if ((t->sig_blocked & b) && t == c->current && ((c->sig_kmask & b) || !wrapped)) {
        /* raise() of a signal every thread blocks: pending in the kernel
         * for this OS thread, with the kernel's siginfo and queueing, where
         * the caller's signalfd and sigwait see it. */
        c->kthread_bits |= b;
        c->kthread_owner[sig - 1] = t;
        return os_send(sig, val, false);
    }
    if (t->sig_blocked & b) {
        /* Pending for t alone. Not in the kernel: the OS thread's pending
         * set holds one instance per signal for all its green threads, so
         * pthread_kill of SIGUSR1 to three sigwait threads would wake one,
         * and another thread's sigwait could take it. */
        siginfo_t si;
        send_info(&si, sig, val);
        int e = own_push(t, &si);
        if (e)
            return e;
        if ((t->sig_waiting & b) && t->state == GREEN_PARKED)
            green__ready(t, 0);        /* its sigwait takes it */
        return 0;
    }
    if (!wrapped || t == c->current) {
        /* The kernel delivers it now (the wrapper runs it for the caller),
         * or acts: default action, ignored, or a handler we do not wrap. */
        struct sigaction k;
        green__real.sigaction(sig, NULL, &k);
        if (k.sa_handler == SIG_IGN || (k.sa_handler == SIG_DFL && default_ignores(sig)))
            return 0;
        return os_send(sig, val, t == c->current);
    }
    siginfo_t si;
    send_info(&si, sig, val);
    deliver(t, sig, &si);
    return 0;
}

/* pthread_sigqueue(t, sig, val) for a green thread t (sig != 0). */
int green__sig_queue(struct green_thread *t, int sig, const union sigval *val)
{
    return sig_send(t, sig, val);
}

int green_hook_raise(int sig)
{
    green__real_init();
    if (!sig_on() || sig == 0)
        return green__real.raise(sig);
    int e = green__sig_interrupt(green__current(), sig);
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

/* The OS thread's mask is K, what every green thread of the hub blocks;
 * the kernel hands the exec'ing OS thread's mask to the new program, which
 * natively is the calling thread's own. Raw system calls: the wrapper's
 * bookkeeping (c->sig_kmask) stays K, which the end puts back. A signal
 * that arrives in between is the caller's, as natively (the wrapper runs
 * it for the running thread, which accepts it). */
bool green__sig_exec_begin(uint64_t *saved)
{
    green__real_init();
    if (!sig_on())
        return false;
    struct green_thread *t = green__current();
    uint64_t want = t->sig_blocked & ~NOBLOCK, k = 0;
    if (green__syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &k, sizeof k) != 0 || k == want)
        return false;
    *saved = k;
    return green__syscall(SYS_rt_sigprocmask, SIG_SETMASK, &want, NULL, sizeof want) == 0;
}

void green__sig_exec_end(bool changed, uint64_t saved)
{
    if (changed)
        green__syscall(SYS_rt_sigprocmask, SIG_SETMASK, &saved, NULL, sizeof saved);
}

void green__sig_after_fork(void)
{
    struct green__ctx *c = green__tls_ctx;
    if (!c)
        return;
    atomic_store(&c->proc_bits, 0);
    atomic_store(&c->fwd_bits, 0);   /* a child starts with none pending */
    atomic_flag_clear(&c->fwd_lock); /* another OS thread may have held it */
    c->kthread_bits = 0;
    own_clear(c->current);         /* a child starts with none */
    if (c->sig_counted) {
        c->sig_counted = false;    /* recount what is left */
        sig_init(c);
        kmask_apply(c);
    }
}

/* ------------------------------------------------------------- EINTR */

void green__intr_begin(void)
{
    struct green_thread *t = green__current();
    if (!t)
        return;
    t->intr_gen = 1;
    t->intr_mark = t->sig_handled;
    t->sig_restart = true;
}

void green__intr_end(void)
{
    struct green_thread *t = green__current();
    if (t)
        t->intr_gen = 0;
}

bool green__intr_restarts(void)
{
    struct green_thread *t = green__current();
    return t && t->sig_restart;
}

bool green__intr_mine(void)
{
    struct green_thread *t = green__current();
    return !t || t->sig_handled != t->intr_mark;
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
        /* A handler that already ran for us since the caller marked the
         * call (between its tries) interrupts it like one during the park. */
        int r = outer && t->sig_handled != t->intr_mark ? -EINTR
                                                        : green__wait_fd(fd, mask, deadline);
        bool restart = t->sig_restart;
        if (!outer)
            t->intr_gen = 0;
        if (r > 0)
            return 0;
        if (r == -EINTR && restartable && restart) {
            if (outer)
                green__intr_begin();   /* count only later signals */
            continue;
        }
        errno = green__cancel_point(-r);
        return -1;
    }
}

/* A temporary mask for the caller (sigsuspend, ppoll, pselect,
 * epoll_pwait): install it, deliver what it lets through. Returns 0, or
 * EINTR when a handler ran (the old mask is then back). */
int green__sigmask_enter(const sigset_t *mask, sigset_t *saved)
{
    if (!mask)
        return 0;
    struct green_thread *t = green__current();
    unsigned n0 = t->sig_handled;
    bits_set(saved, t->sig_blocked);
    sig_init(t->ctx);
    mask_set(t, set_bits(mask));
    kmask_apply(t->ctx);
    deliver_pending(t);
    claim_parked(t, ~t->sig_blocked, false);
    if (t->sig_handled != n0) {
        green__sigmask_leave(mask, saved);
        return EINTR;
    }
    return 0;
}

void green__sigmask_leave(const sigset_t *mask, const sigset_t *saved)
{
    if (!mask)
        return;
    struct green_thread *t = green__current();
    mask_set(t, set_bits(saved));
    kmask_apply(t->ctx);
}

/* Park until a handler runs for the caller (EINTR) or it is killed.
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

/* sigsuspend: the caller's mask replaced while it waits for a handler. */
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
 * The signals waited for are blocked by the caller (the program must block
 * them). One sent to the caller alone while another thread accepts it is
 * in t->sig_pending; one every thread blocks is pending in the kernel,
 * where a signalfd for the set is readable while it is: we park on that
 * and take the signal with a zero-timeout sigtimedwait, which fills the
 * program's siginfo as the kernel does. Several waiters all wake; the
 * first takes the signal, the others find nothing and wait again, so each
 * signal ends exactly one wait. Without signalfd we re-check every
 * SIGWAIT_RECHECK_NS. Costs signalfd + epoll_ctl + close per call that has
 * to wait. */

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

/* A signal of the set pending for the caller alone, taken. */
static int take_own(uint64_t set, siginfo_t *info)
{
    struct green_thread *t = green__current();
    uint64_t b = t->sig_pending & set;
    if (!b)
        return 0;
    int sig = lowest(b);
    siginfo_t si;
    own_take(t, sig, &si);
    if (info) {
        *info = si;
        /* glibc's sigtimedwait reports a tgkill (SI_TKILL) as SI_USER. */
        if (si.si_code == SI_TKILL)
            info->si_code = SI_USER;
    }
    return sig;
}

static int sigwait_slow(const sigset_t *set, siginfo_t *info, int64_t deadline)
{
    static const struct timespec zero = { 0, 0 };
    struct green_thread *t = green__current();
    uint64_t want = set_bits(set) & ~NOBLOCK;
    /* While it waits, the set counts as blocked for the caller, as Linux
     * has it (do_sigtimedwait): a signal of the set that arrives is taken
     * by the wait, never handled, even if the program left it unblocked. */
    uint64_t mask0 = t->sig_blocked;
    sig_init(t->ctx);
    mask_set(t, mask0 | want);
    kmask_apply(t->ctx);
    int sfd = green__fd_hide(signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC));
    int r;
    for (;;) {
        /* One parked on the main OS thread (requeue) is ours. */
        claim_parked(t, want, true);
        if ((r = take_own(want, info)) > 0)
            break;
        t->sig_waiting = want;
        int code = sigwait_park(sfd, deadline);
        t->sig_waiting = 0;
        if (code == ECANCELED && sfd >= 0) {
            green__fd_close_hidden(sfd);
            sfd = -1;
        }
        if (code == ECANCELED)
            code = green__cancel_point(code);
        if ((r = take_own(want, info)) > 0)
            break;
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
    int e = errno;
    if (sfd >= 0)
        green__fd_close_hidden(sfd);
    mask_set(t, mask0);
    kmask_apply(t->ctx);
    /* Another one of the set, sent to the caller alone and not taken,
     * is handled now that the set is open again (natively: on return). */
    if (t->sig_pending & ~t->sig_blocked)
        deliver_pending(t);
    errno = e;
    return r;
}

int green_hook_sigtimedwait(const sigset_t *set, siginfo_t *info,
                            const struct timespec *ts)
{
    static const struct timespec zero = { 0, 0 };
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_SLEEP) || !set ||
        (ts && !green__ts_valid(ts)))
        return green__real.sigtimedwait(set, info, ts);
    int r = take_own(set_bits(set) & ~NOBLOCK, info);
    if (r > 0)
        return r;
    if (ts && !ts->tv_sec && !ts->tv_nsec) {
        /* A poll: one parked on the main OS thread counts too. */
        if (sig_on()) {
            struct green_thread *t = green__current();
            claim_parked(t, set_bits(set) & t->sig_blocked & ~NOBLOCK, true);
            if ((r = take_own(set_bits(set) & ~NOBLOCK, info)) > 0)
                return r;
        }
        return green__real.sigtimedwait(set, info, ts);
    }
    int64_t deadline = ts && ts->tv_sec < 3000000000LL   /* else: forever */
                           ? green_now() + (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec
                           : GREEN_FOREVER;
    int saved = errno;             /* a success leaves errno alone */
    green__cancel_point(0);
    green__intr_begin();
    r = green__real.sigtimedwait(set, info, &zero);
    if (r < 0 && errno == EAGAIN)
        r = sigwait_slow(set, info, deadline);
    green__intr_end();
    if (r > 0)
        errno = saved;
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

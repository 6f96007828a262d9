/*
 * sud.c - raw system calls made cooperative with syscall user dispatch
 * (GREEN_SYSCALL_DISPATCH=1, off by default). Figures, the commands that
 * reproduce them and the longer argument: docs/syscall-dispatch.md.
 *
 * The problem. A hook catches a call by its libc name. liburing issues
 * io_uring_enter with its own syscall instruction, libaio and some lock
 * libraries do the same with io_getevents and futex, and inline
 * assembly reads and writes never call libc at all: such a call blocks
 * the hub's OS thread, and every green thread of that hub with it.
 *
 * What we do. Linux (5.11+, x86-64) can trap the system calls a thread
 * makes from outside one allowed code range to SIGSYS
 * (prctl PR_SET_SYSCALL_USER_DISPATCH). Every hub's OS thread switches
 * it on as its ctx is made (hub.c calls green__on_ctx_made), with libc's
 * executable segment as the allowed range. So:
 *  - every call that goes through libc is untouched: the program's (the
 *    hooked ones, already cooperative by symbol, and the unhooked ones,
 *    which stay as they were), libev's (libev.so has no syscall
 *    instruction) and libgreen's: only the kernel's range check, which
 *    the benchmark cannot tell from noise;
 *  - libgreen's one syscall instruction of its own (green__syscall7,
 *    libgreen/real.c: the core cannot call libc's syscall(), which
 *    libgreen.so exports) opens the selector byte around itself: two
 *    stores, and the kernel reads the byte;
 *  - what traps is a syscall instruction anywhere else: the program's
 *    own text and its libraries' (liburing 2.3 has 59 of them), ld.so's
 *    (dlopen), the vdso's fallbacks. The handler runs on the trapping
 *    green thread's own stack (no SA_ONSTACK) and, for the calls that can
 *    wait (futex, read, write, the vector, positioned and socket
 *    variants, accept, connect, close, poll, select, epoll_wait,
 *    nanosleep, clock_nanosleep, wait4, sched_yield: through the
 *    syscall() hook's router, hooks/syscall.c, so that a raw call acts
 *    as syscall() with the same number; ppoll, and io_uring_enter
 *    waiting for completions, here), calls the hook of the same name: the
 *    green thread parks inside the handler, the hub runs the others, and
 *    the result goes into the return register of the saved context when
 *    it resumes. Anything else is made as asked through libc's syscall().
 *
 * Switching inside the handler. The kernel keeps no state for a signal
 * being handled beyond the frame on the stack (the trap's own flag is
 * cleared before the handler starts), so a handler may switch away and
 * come back: the frame stays on this green thread's stack. What must
 * hold:
 *  - a trap that finds SIGSYS blocked kills the process (the kernel
 *    forces it with the default action). So the handler is installed
 *    with SA_NODEFER and an empty sa_mask: the OS thread's mask does not
 *    change while it runs or parks, the other green threads run with the
 *    hub's mask (K, hooks/signal.c), and one of them trapping meanwhile
 *    gets its own SIGSYS. And no kernel mask has SIGSYS
 *    (green__sig_keep_open: one line in signal.c for K, one in
 *    lifecycle.c for the mask libgreen holds while it starts a thread,
 *    where ASan's pthread_create makes raw calls; a raw rt_sigprocmask
 *    leaves it out too): a daemon that blocks every signal in every
 *    thread and sigwaits in one would otherwise die at its first trap;
 *    its threads' own masks, what it sees, still have SIGSYS;
 *  - sigreturn restores the mask saved at the trap: if K changed while
 *    the thread was parked, the handler writes the current K into the
 *    ucontext first, as signal.c's wrapper does;
 *  - the handler returns through libc's restorer, inside the allowed
 *    range. That is why this is x86-64 only: arm64 returns from a
 *    handler through the vdso, whose rt_sigreturn the kernel exempts
 *    only on x86 (elsewhere it traps, and the process dies);
 *  - errno: a raw syscall does not touch errno, the hooks do: saved at
 *    entry and restored before the handler returns;
 *  - the selector byte is per OS thread and reads BLOCK except inside
 *    green__syscall7's instruction, where no switch can happen: a green
 *    thread switching inside the handler leaves the next one exactly as
 *    it found it.
 *
 * What is made as asked, and what cannot be.
 *  - Calls from ld.so or the vdso are never made cooperative (ld.so may
 *    hold its loader lock, which another green thread of the hub could
 *    need): they run at once, as asked.
 *  - fork, vfork and clone without CLONE_VM are made by the handler (the
 *    child returns from it with 0, as natively; vfork becomes a fork,
 *    which is what POSIX allows it to be) and the child switches
 *    dispatch on again for its one thread. clone3 fails with ENOSYS (its
 *    callers fall back to clone). rt_sigprocmask acts on the mask the
 *    trap saved, which sigreturn restores, not on the kernel's.
 *  - A thread-creating clone (CLONE_VM) or an rt_sigreturn from outside
 *    libc cannot run in a handler (the new thread, or the restored
 *    context, would start in the handler's frame). The handler opens the
 *    selector and makes the thread execute the instruction again itself:
 *    it works, but dispatch stays off on that OS thread from then on,
 *    and libgreen says so once.
 *  - Dispatch is per OS thread, not inherited by new threads nor by a
 *    fork child, and cleared by exec (docs/syscall-dispatch.md, (c)):
 *    every hub switches it on for itself, fork's child handler again for
 *    the forking thread; exec'd programs start without it. Plain OS
 *    threads the program started behind the shim do not have it: their
 *    raw calls block them alone, as natively.
 *  - SIGSYS belongs to libgreen while this is on. A SIGSYS that is not a
 *    dispatch trap (seccomp's SECCOMP_RET_TRAP) goes to the handler that
 *    was installed before; a handler the program installs later replaces
 *    ours (SIGSYS is never wrapped, hooks/signal.c), and traps then reach
 *    the program's handler.
 *  - A program's signal handler whose sa_mask has SIGSYS (sigfillset)
 *    and that makes a raw system call dies: the kernel blocks sa_mask
 *    while the handler runs, and a trap then is fatal.
 *
 * Invariants.
 *  - Only hub OS threads (ctx made) have dispatch on, always with the
 *    range [libc text) and a selector (green__sud_selector, the core's)
 *    that reads BLOCK, except around green__syscall7's instruction and
 *    after the re-execution above, where it reads ALLOW for good.
 *  - The handler makes its calls through libc or green__syscall7, so it
 *    never traps itself; a trap inside it (a vdso fallback, ld.so binding
 *    a symbol) nests safely thanks to SA_NODEFER.
 *
 * Rejected.
 *  - An empty range and the selector flipped to ALLOW around every call
 *    libgreen makes: every libc call the program makes without a hook
 *    (stdio's internal read, getpid...) would trap too; allowing libc's
 *    text gives exactly "what does not go through libc", and the
 *    selector is left for libgreen's one instruction of its own.
 *  - A sigaltstack for SIGSYS: the thread could not park from there.
 *  - seccomp with SECCOMP_RET_TRAP or a user notifier: it filters by
 *    number, not by call site, so libc's own read would trap as well, and
 *    a filter can never be removed.
 *  - Reading the ring's counters to wait for io_uring completions: the
 *    rings are the program's mapping, and the kernel answers the same
 *    question without waiting (uring_enter).
 */
#define _GNU_SOURCE
#include "sud.h"
#include "hooks_syscall.h"
#include "hooks_wait.h"
#include "fdstate.h"
#include <gnu/libc-version.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#ifdef GREEN_VALGRIND
#include <valgrind/valgrind.h>
#endif

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#endif
#ifndef PR_SYS_DISPATCH_OFF
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif
#ifndef SYSCALL_DISPATCH_FILTER_ALLOW
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif
#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2            /* si_code of a dispatch trap */
#endif

struct range {
    uintptr_t lo, hi;
};

static struct range libc_text, ldso_text, vdso_text;
/* Sanitizer runtimes (ASan, UBSan, TSan) make their own raw system calls,
 * futex waits on their internal locks among them: those run as asked,
 * never parked (their words lie in memory the instrumented core must not
 * read, and a runtime lock is no green thread's to wait on). */
static struct range san_text[3];
static long (*real_syscall)(long, ...);
static struct sigaction old_sigsys;    /* chained for non-dispatch SIGSYS */
static atomic_ulong traps, hooked;
/* GREEN_LOG_LEVEL=3: what trapped, printed at exit (report_traps). */
#define STAT_NR 512
static atomic_uint by_nr[STAT_NR];
static atomic_ulong from_loader;       /* from ld.so's or the vdso's text */
static atomic_bool warned_reexec;
static __thread bool active __attribute__((tls_model("initial-exec")));

static bool in(const struct range *r, uintptr_t pc)
{
    return pc - r->lo < r->hi - r->lo;
}

/* ------------------------------------------------------------- ranges */

struct find {
    uintptr_t addr;
    struct range r;
};

/* The executable PT_LOAD of the object that maps f->addr: the one that
 * holds the address when it is code, else the object's first. */
static int find_cb(struct dl_phdr_info *i, size_t size, void *arg)
{
    (void)size;
    struct find *f = arg;
    bool mine = false;
    struct range x = { 0, 0 };
    for (int k = 0; k < i->dlpi_phnum; k++) {
        const ElfW(Phdr) *p = &i->dlpi_phdr[k];
        if (p->p_type != PT_LOAD)
            continue;
        struct range s = { i->dlpi_addr + p->p_vaddr,
                           i->dlpi_addr + p->p_vaddr + p->p_memsz };
        if (in(&s, f->addr))
            mine = true;
        if ((p->p_flags & PF_X) && (!x.hi || in(&s, f->addr)))
            x = s;
    }
    if (!mine || !x.hi)
        return 0;
    f->r = x;
    return 1;
}

static struct range text_of(uintptr_t addr)
{
    struct find f = { .addr = addr };
    if (addr)
        dl_iterate_phdr(find_cb, &f);
    return f.r;
}

/* ---------------------------------------------------------- switching */

int green__sud_on(void)
{
#if defined(__x86_64__)
    if (!libc_text.hi) {
        errno = ENOSYS;
        return -1;
    }
#ifdef GREEN_VALGRIND
    /* Valgrind makes the program's system calls from its own text, which
     * is outside libc's: every one would trap, its own included. */
    if (RUNNING_ON_VALGRIND) {
        errno = ENOTSUP;
        return -1;
    }
#endif
    /* A trap that finds SIGSYS blocked kills the process: the kernel
     * mask never blocks it from now on (signal.c leaves it out of K; the
     * green threads' own masks, what the program sees, keep it). */
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    GREEN_REAL(pthread_sigmask)(SIG_UNBLOCK, &sys, NULL);
    green__sud_sel = &green__sud_selector;
    *green__sud_sel = SYSCALL_DISPATCH_FILTER_BLOCK;
    if (GREEN_REAL(prctl)(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, libc_text.lo,
              libc_text.hi - libc_text.lo, green__sud_sel) != 0) {
        *green__sud_sel = SYSCALL_DISPATCH_FILTER_ALLOW;
        green__sud_sel = NULL;
        return -1;
    }
    active = true;
    return 0;
#else
    /* The handler's return (the vdso's rt_sigreturn) would trap. */
    errno = ENOSYS;
    return -1;
#endif
}

void green__sud_off(void)
{
    if (!active)
        return;
    GREEN_REAL(prctl)(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
    active = false;
}

bool green__sud_active(void)
{
    return active && green__sud_sel && *green__sud_sel == SYSCALL_DISPATCH_FILTER_BLOCK;
}

unsigned long green__sud_traps(void)
{
    return atomic_load(&traps);
}

unsigned long green__sud_hooked(void)
{
    return atomic_load(&hooked);
}

/* ----------------------------------------------------------- dispatch */

/* syscall()'s -1/errno back to the kernel's -errno. */
static long kret(long r)
{
    return r == -1 ? -errno : r;
}

static long as_asked(long nr, const long a[6])
{
    return kret(real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
}

/* The calls that can wait, to the hook of the same name; -ENOSYS - 1
 * when nr is not one of them. */
#define NOT_HOOKED (-ENOSYS - 1)

/* io_uring_enter's flags and extended argument (linux/io_uring.h, kept
 * here so that the file builds against older headers). */
#define URING_GETEVENTS      (1u << 0)
#define URING_SQ_WAKEUP      (1u << 1)
#define URING_EXT_ARG        (1u << 3)
struct uring_arg {
    uint64_t sigmask;
    uint32_t sigmask_sz;
    uint32_t pad;
    uint64_t ts;                       /* struct __kernel_timespec * */
};
#ifndef SYS_io_uring_enter
#define SYS_io_uring_enter 426
#endif
#define URING_RECHECK_NS 10000000      /* see uring_enter */

static long uring_call(int fd, unsigned sub, unsigned min, unsigned flags,
                       const void *arg, size_t sz)
{
    const long a[6] = { fd, sub, min, flags, (long)arg, (long)sz };
    return kret(real_syscall(SYS_io_uring_enter, a[0], a[1], a[2], a[3], a[4], a[5]));
}

/* io_uring_enter that waits for completions (GETEVENTS with
 * min_complete > 0), from a green thread: submit without waiting, then
 * ask the ring without waiting (EXT_ARG with a zero timeout: -ETIME while
 * fewer than min_complete are there) and park in ppoll on the ring fd,
 * which is readable while the completion queue is not empty (or work
 * for this thread is pending), until enough are there. POLLIN says "at
 * least one": with min_complete > 1 or a ring that defers its work to
 * the waiting thread the ring is asked again at least every 10 ms.
 * The program's own EXT_ARG (a timeout, a mask) is honoured. Anything
 * else (a registered ring index instead of an fd, SQ_WAIT) is made as
 * asked: NOT_HOOKED. The result is io_uring_enter's: the number
 * submitted, or the error of the wait when nothing was. */
static long uring_enter(const long a[6])
{
    int fd = (int)a[0];
    unsigned sub = (unsigned)a[1], min = (unsigned)a[2], flags = (unsigned)a[3];
    if (!(flags & URING_GETEVENTS) || !min || !green__hook_on(GREEN_HOOK_IO) ||
        (flags & ~(URING_GETEVENTS | URING_SQ_WAKEUP | URING_EXT_ARG)))
        return NOT_HOOKED;
    const sigset_t *mask = (const sigset_t *)a[4];
    int64_t deadline = GREEN_FOREVER;
    if (flags & URING_EXT_ARG) {
        struct uring_arg ea;
        if ((size_t)a[5] != sizeof ea || !a[4])
            return NOT_HOOKED;
        memcpy(&ea, (const void *)a[4], sizeof ea);
        mask = (const sigset_t *)(uintptr_t)ea.sigmask;
        if (ea.ts) {
            const struct timespec *ts = (const struct timespec *)(uintptr_t)ea.ts;
            deadline = green_now() + green__ts_ns(ts);
        }
    }
    long submitted = 0;
    if (sub) {
        submitted = uring_call(fd, sub, 0, flags & URING_SQ_WAKEUP, NULL, 0);
        if (submitted < 0)
            return submitted;
    }
    for (;;) {
        struct timespec zero = { 0, 0 };
        struct uring_arg probe = { .ts = (uintptr_t)&zero };
        long r = uring_call(fd, 0, min, URING_GETEVENTS | URING_EXT_ARG, &probe,
                            sizeof probe);
        if (r != -ETIME)
            return r < 0 && !submitted ? r : submitted;
        int64_t left = deadline == GREEN_FOREVER ? URING_RECHECK_NS
                                                 : deadline - green_now();
        if (left <= 0)
            return submitted ? submitted : -ETIME;
        if (left > URING_RECHECK_NS)
            left = URING_RECHECK_NS;
        struct timespec w = { left / 1000000000, left % 1000000000 };
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (green_hook_ppoll(&p, 1, &w, mask) < 0)
            return submitted ? submitted : -errno;
    }
}

/* The numbers the syscall() hook's router sends to a hook: a raw call
 * must act as syscall() with the same number does. */
static bool routed(long nr)
{
    switch (nr) {
    case SYS_futex: case SYS_read: case SYS_write: case SYS_readv: case SYS_writev:
    case SYS_pread64: case SYS_pwrite64: case SYS_recvfrom: case SYS_sendto:
    case SYS_recvmsg: case SYS_sendmsg: case SYS_accept4: case SYS_connect:
    case SYS_close: case SYS_epoll_pwait: case SYS_nanosleep: case SYS_clock_nanosleep:
    case SYS_wait4: case SYS_sched_yield: case SYS_prctl: case SYS_sigaltstack:
    case SYS_fcntl: case SYS_flock: case SYS_ioctl: case SYS_setsockopt: case SYS_dup:
    case SYS_dup3: case SYS_semtimedop: case SYS_msgsnd: case SYS_msgrcv:
    case SYS_mq_timedsend: case SYS_mq_timedreceive:
#ifdef SYS_semop
    case SYS_semop:
#endif
#ifdef SYS_dup2
    case SYS_dup2:
#endif
#ifdef SYS_close_range
    case SYS_close_range:
#endif
#ifdef SYS_accept
    case SYS_accept:
#endif
#ifdef SYS_poll
    case SYS_poll:
#endif
#ifdef SYS_select
    case SYS_select:
#endif
#ifdef SYS_epoll_wait
    case SYS_epoll_wait:
#endif
        return true;
    default:
        return false;
    }
}

static long to_hook(long nr, const long a[6])
{
    if (routed(nr))
        return kret(green_hook_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
    switch (nr) {
    case SYS_ppoll:
        if (a[3] && (size_t)a[4] != _NSIG / 8)
            return -EINVAL;
        return kret(green_hook_ppoll((struct pollfd *)a[0], (nfds_t)a[1],
                                     (const struct timespec *)a[2],
                                     (const sigset_t *)a[3]));
    case SYS_io_uring_enter:
        return uring_enter(a);
    default:
        return NOT_HOOKED;
    }
}

/* A process made by the handler: the child switches dispatch on again
 * for its one thread (a fork child does not inherit it). */
static long fork_like(long nr, const long a[6])
{
    green__fdstate_spawn_begin();  /* no atfork handler runs for it */
    long r = as_asked(nr, a);
    green__fdstate_spawn_end();
    if (r == 0)
        green__sud_on();
    return r;
}

long green__sud_dispatch(long nr, const long a[6], uintptr_t pc)
{
    atomic_fetch_add_explicit(&traps, 1, memory_order_relaxed);
    if ((unsigned long)nr < STAT_NR)
        atomic_fetch_add_explicit(&by_nr[nr], 1, memory_order_relaxed);
    if (in(&ldso_text, pc) || in(&vdso_text, pc)) {
        atomic_fetch_add_explicit(&from_loader, 1, memory_order_relaxed);
        return as_asked(nr, a);
    }
    for (int k = 0; k < 3; k++)
        if (in(&san_text[k], pc))
            return as_asked(nr, a);
    switch (nr) {
#ifdef SYS_fork
    case SYS_fork:
        return fork_like(SYS_fork, a);
#endif
#ifdef SYS_vfork
    case SYS_vfork: {
        static const long none[6];
        return fork_like(SYS_fork, none);
    }
#endif
    case SYS_clone: {
        /* clone without CLONE_VM and without a new stack is a fork
         * (vfork's CLONE_VM|CLONE_VFORK with no stack too, made as one). */
        long b[6];
        memcpy(b, a, sizeof b);
        if ((b[0] & (CLONE_VM | CLONE_VFORK)) == (CLONE_VM | CLONE_VFORK) && !b[1])
            b[0] &= ~(long)(CLONE_VM | CLONE_VFORK);
        if (!(b[0] & CLONE_VM) && !b[1])
            return fork_like(SYS_clone, b);
        return NOT_HOOKED;   /* a thread: green__sud_reexec */
    }
#ifdef SYS_clone3
    case SYS_clone3:
        return -ENOSYS;
#endif
    case SYS_rt_sigreturn:
        return NOT_HOOKED;   /* green__sud_reexec */
#ifdef SYS_io_uring_setup
    case SYS_io_uring_setup:
        green__fdstate_trust_off();   /* its requests close and dup unseen */
        break;
#endif
    default:
        break;
    }
    long r = to_hook(nr, a);
    if (r != NOT_HOOKED) {
        atomic_fetch_add_explicit(&hooked, 1, memory_order_relaxed);
        return r;
    }
    return as_asked(nr, a);
}

/* ------------------------------------------------------------ handler */

#if defined(__x86_64__) || defined(__aarch64__)
#define GREEN_SUD_REGS 1
#endif

#if defined(__x86_64__)
#define SC_NR(uc)    ((uc)->uc_mcontext.gregs[REG_RAX])
#define SC_RET(uc)   ((uc)->uc_mcontext.gregs[REG_RAX])
#define SC_PC(uc)    ((uc)->uc_mcontext.gregs[REG_RIP])
#define SC_INSN_LEN  2                  /* syscall */
static void sc_args(const ucontext_t *uc, long a[6])
{
    const greg_t *g = uc->uc_mcontext.gregs;
    a[0] = g[REG_RDI], a[1] = g[REG_RSI], a[2] = g[REG_RDX];
    a[3] = g[REG_R10], a[4] = g[REG_R8], a[5] = g[REG_R9];
}
#elif defined(__aarch64__)
#define SC_NR(uc)    ((uc)->uc_mcontext.regs[8])
#define SC_RET(uc)   ((uc)->uc_mcontext.regs[0])
#define SC_PC(uc)    ((uc)->uc_mcontext.pc)
#define SC_INSN_LEN  4                  /* svc #0 */
static void sc_args(const ucontext_t *uc, long a[6])
{
    for (int i = 0; i < 6; i++)
        a[i] = (long)uc->uc_mcontext.regs[i];
}
#endif

#ifdef GREEN_SUD_REGS
/* The call cannot be made from a handler: let the thread execute the
 * instruction again with the selector open (dispatch off for good on
 * this OS thread). */
static void reexec(ucontext_t *uc, long nr)
{
    *green__sud_sel = SYSCALL_DISPATCH_FILTER_ALLOW;
    SC_PC(uc) -= SC_INSN_LEN;
    SC_NR(uc) = nr;                    /* x86-64: rax held the result slot */
    if (!atomic_exchange(&warned_reexec, true))
        green__log("GREEN_SYSCALL_DISPATCH: system call %ld made outside libc "
                   "cannot run in the SIGSYS handler; raw system calls of this "
                   "OS thread are no longer made cooperative", nr);
}

/* rt_sigprocmask acts on the mask sigreturn will restore. */
static long sigprocmask_in(ucontext_t *uc, const long a[6])
{
    uint64_t m, old, set = 0;
    memcpy(&old, &uc->uc_sigmask, sizeof old);
    if ((size_t)a[3] != sizeof m)
        return -EINVAL;
    if (a[1])
        memcpy(&set, (void *)a[1], sizeof set);
    m = old;
    if (a[1]) {
        switch ((int)a[0]) {
        case SIG_BLOCK:   m |= set; break;
        case SIG_UNBLOCK: m &= ~set; break;
        case SIG_SETMASK: m = set; break;
        default:          return -EINVAL;
        }
        /* SIGSYS as SIGKILL: a trap that found it blocked would kill. */
        m &= ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)) | green__sig_keep_open);
    }
    if (a[2])
        memcpy((void *)a[2], &old, sizeof old);
    memcpy(&uc->uc_sigmask, &m, sizeof m);
    return 0;
}

#endif

static void chain(int sig, siginfo_t *si, void *uc)
{
    if ((old_sigsys.sa_flags & SA_SIGINFO) && old_sigsys.sa_sigaction) {
        old_sigsys.sa_sigaction(sig, si, uc);
        return;
    }
    if (old_sigsys.sa_handler != SIG_DFL && old_sigsys.sa_handler != SIG_IGN) {
        old_sigsys.sa_handler(sig);
        return;
    }
    /* The default action: die with SIGSYS, as without libgreen. */
    struct sigaction d;
    memset(&d, 0, sizeof d);
    d.sa_handler = SIG_DFL;
    GREEN_REAL(sigaction)(SIGSYS, &d, NULL);
    real_syscall(SYS_tgkill, real_syscall(SYS_getpid), real_syscall(SYS_gettid), SIGSYS);
}

static void on_sigsys(int sig, siginfo_t *si, void *ucv)
{
#ifdef GREEN_SUD_REGS
    ucontext_t *uc = ucv;
    if (si->si_code != SYS_USER_DISPATCH) {
        chain(sig, si, ucv);
        return;
    }
    int saved = errno;
    long nr = si->si_syscall, a[6], r;
    sc_args(uc, a);
    if (nr == SYS_rt_sigprocmask) {
        atomic_fetch_add_explicit(&traps, 1, memory_order_relaxed);
        SC_RET(uc) = sigprocmask_in(uc, a);
        errno = saved;
        return;
    }
    r = green__sud_dispatch(nr, a, (uintptr_t)si->si_call_addr);
    if (r == NOT_HOOKED) {
        reexec(uc, nr);
    } else {
        SC_RET(uc) = r;
        /* Parked: the hub's kernel mask may have changed meanwhile. */
        struct green__ctx *c = green__tls_ctx;
        if (c && c->sig_counted)
            memcpy(&uc->uc_sigmask, &c->sig_kmask, sizeof c->sig_kmask);
    }
    errno = saved;
#else
    chain(sig, si, ucv);
#endif
}

/* -------------------------------------------------------------- setup */

/* At exit, GREEN_LOG_LEVEL=3: the calls that trapped, by number (the
 * five most frequent), so that a user sees what made them pay. */
static void report_traps(void)
{
    char b[256];
    int n = 0;
    for (int k = 0; k < 5; k++) {       /* take the largest, five times */
        unsigned best = 0;
        int at = -1;
        for (int i = 0; i < STAT_NR; i++)
            if (atomic_load(&by_nr[i]) > best)
                best = atomic_load(&by_nr[i]), at = i;
        if (at < 0)
            break;
        n += snprintf(b + n, sizeof b - (size_t)n, " nr%d:%u", at, best);
        atomic_store(&by_nr[at], 0);
    }
    b[n] = 0;
    green__debug("syscall dispatch: %lu calls trapped, %lu to hooks, %lu from ld.so "
                 "or the vdso; most trapped:%s", atomic_load(&traps),
                 atomic_load(&hooked), atomic_load(&from_loader), n ? b : " none");
}

static void on_ctx_made(struct green__ctx *c)
{
    (void)c;
    if (green__sud_on() != 0)
        green__log("GREEN_SYSCALL_DISPATCH=1: cannot switch syscall user dispatch "
                   "on for this hub (%s); its raw system calls block it",
                   strerror(errno));
}

static void after_fork_child(void)
{
    if (active)
        green__sud_on();
}

static int setup_result = -1, setup_errno = ENOSYS;

static void setup_once(void)
{
#if !defined(__x86_64__)
    /* arm64 returns from a handler through the vdso's rt_sigreturn, which
     * the kernel exempts from dispatch only on x86: it would trap. */
    return;
#endif
    /* libc's syscall(), not libgreen.so's export of that name. */
    real_syscall = GREEN_REAL(syscall);
    /* A libc function no one interposes: its object is libc. */
    libc_text = text_of((uintptr_t)&gnu_get_libc_version);
    ldso_text = text_of(getauxval(AT_BASE));
    vdso_text = text_of(getauxval(AT_SYSINFO_EHDR));
    static const char *const san_syms[3] = { "__asan_init", "__ubsan_handle_add_overflow",
                                             "__tsan_init" };
    for (int k = 0; k < 3; k++)
        san_text[k] = text_of((uintptr_t)dlsym(RTLD_DEFAULT, san_syms[k]));
    if (!libc_text.hi || !in(&libc_text, (uintptr_t)real_syscall)) {
        setup_errno = ENOENT;
        return;
    }
    /* Does the kernel have it? Switch it on and off on this thread. */
    char probe = SYSCALL_DISPATCH_FILTER_ALLOW;
    if (GREEN_REAL(prctl)(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, libc_text.lo,
              libc_text.hi - libc_text.lo, &probe) != 0) {
        setup_errno = errno;
        return;
    }
    GREEN_REAL(prctl)(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (GREEN_REAL(sigaction)(SIGSYS, &sa, &old_sigsys) != 0) {
        setup_errno = errno;
        return;
    }
    green__sig_keep_open = 1ull << (SIGSYS - 1);
    pthread_atfork(NULL, NULL, after_fork_child);
    if (green__log_level >= 3)
        atexit(report_traps);
    green__on_ctx_made = on_ctx_made;
    setup_result = 0;
}

int green__sud_setup(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    GREEN_REAL(pthread_once)(&once, setup_once);
    if (setup_result == 0 && green__tls_ctx && !active)
        on_ctx_made(green__tls_ctx);
    if (setup_result != 0)
        errno = setup_errno;
    return setup_result;
}

/* After preload/init.c's constructor (101) has read the settings. */
__attribute__((constructor(102))) static void sud_init(void)
{
    green__settings_once();
    if (!green__sud_setting)
        return;
    if (green__sud_setup() != 0)
        green__log("GREEN_SYSCALL_DISPATCH=1: syscall user dispatch is not "
                   "available (%s; it needs Linux 5.11+ on x86-64); raw system "
                   "calls stay uncooperative", strerror(errno));
}

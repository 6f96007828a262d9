/*
 * solo.c - a system call that may wait for ever, made by an OS thread of
 * its own while the calling green thread parks, and interrupted in the
 * kernel when the green thread stops waiting.
 *
 * The problem. A file lock wait (flock, fcntl F_SETLKW and F_OFD_SETLKW,
 * lockf F_LOCK) has no descriptor to poll: made on the hub's OS thread
 * it freezes every green thread of the hub, the holder of the lock too
 * when it is one of them (two descriptions of one file locked by two
 * threads of the program: natively the second waits, under one hub it
 * would wait for ever). The worker pool (offload.c) is the wrong home:
 * a lock can be held for hours, and four such waits would take every
 * worker from getaddrinfo and file I/O (a holder that needs a worker
 * before it unlocks would then never unlock).
 *
 * What we do. green__solo_start hands the call to a solo thread: an OS
 * thread that runs one call at a time, started when none is idle, kept
 * idle for SOLO_IDLE_S seconds after its last call and then ended. The
 * caller parks in green__solo_wait until the call returns (the solo
 * thread posts the result to the caller's hub, green__remote_post). The
 * call is the program's own, made in the same process: the kernel sees
 * the process (POSIX record locks belong to it, with its deadlock
 * detection, EDEADLK) or the open file description (flock, OFD locks),
 * and its wait queue, as natively.
 *
 * Stopping the wait. When the green thread stops waiting (a handler ran
 * for it, a pthread_cancel, a timeout scope), green__solo_end interrupts
 * the kernel's wait: it sets the job's abort flag and sends the monitor
 * signal (GREEN_MONITOR_SIGNAL, SIGURG by default) to the solo thread,
 * which blocks every other signal. The call is made by a stub of ours
 * (solo_syscall below) that loads the abort flag and then executes the
 * system call instruction; the handler, seeing the flag, moves a program
 * counter that lies between that load and the instruction (inclusive) to
 * the stub's exit, which returns -EINTR. Inclusive matters: when the
 * kernel interrupts a wait under SA_RESTART, it rewinds the program
 * counter to the system call instruction before it runs the handler, so
 * the call is not made again. A program counter past the instruction
 * means the call returned by itself: its result stands (a lock granted
 * just before the signal is the caller's, as natively when a signal
 * arrives just after the grant). The handler is whichever one the kernel
 * has for the monitor signal: the monitor's, the signal hooks' wrapper
 * (a program that handles SIGURG), or solo_handler, installed on first
 * use when the signal had none; each asks green__solo_on_signal first.
 * green__solo_end then waits, not interruptibly, until the call has
 * returned, so the memory the call uses (a struct flock of the caller)
 * outlives it.
 *
 * Where the kernel cannot be asked this way (other architectures than
 * x86-64 and aarch64) green__solo_start fails with ENOSYS and the caller
 * makes the call on its hub as before.
 *
 * Ownership. A job has two references: the caller's (dropped by
 * green__solo_end) and the posted completion's (dropped when the hub
 * runs it). Both drop on the caller's OS thread, so a plain count does.
 *
 * After fork the child has no solo threads: the bookkeeping is reset.
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define SOLO_IDLE_S 10

#if defined(__x86_64__) || defined(__aarch64__)
#define SOLO_ARCH 1
/* The raw system call call[0](call[1], ..., call[6]), or -EINTR without
 * it when *abort is set. The labels bound the range the handler moves. */
long green__solo_syscall(const long call[7], atomic_int *abort) GREEN_HIDDEN;
extern const char green__solo_start_pc[] GREEN_HIDDEN;
extern const char green__solo_insn_pc[] GREEN_HIDDEN;
extern const char green__solo_intr_pc[] GREEN_HIDDEN;
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl green__solo_syscall\n"
        ".hidden green__solo_syscall\n"
        ".type green__solo_syscall,@function\n"
        "green__solo_syscall:\n"
        "    mov %rsi, %rcx\n"           /* abort, until the syscall clobbers it */
        "    mov 0(%rdi), %rax\n"
        "    mov 48(%rdi), %r9\n"
        "    mov 40(%rdi), %r8\n"
        "    mov 32(%rdi), %r10\n"
        "    mov 24(%rdi), %rdx\n"
        "    mov 16(%rdi), %rsi\n"
        "    mov 8(%rdi), %rdi\n"
        "    mfence\n"                   /* the tid store before the flag load */
        ".globl green__solo_start_pc\n"
        ".hidden green__solo_start_pc\n"
        "green__solo_start_pc:\n"
        "    mov (%rcx), %ecx\n"
        "    test %ecx, %ecx\n"
        "    jnz green__solo_intr_pc\n"
        ".globl green__solo_insn_pc\n"
        ".hidden green__solo_insn_pc\n"
        "green__solo_insn_pc:\n"
        "    syscall\n"
        "    ret\n"
        ".globl green__solo_intr_pc\n"
        ".hidden green__solo_intr_pc\n"
        "green__solo_intr_pc:\n"
        "    mov $-4, %rax\n"
        "    ret\n"
        ".size green__solo_syscall, .-green__solo_syscall\n");
#define SOLO_PC(uc) ((uc)->uc_mcontext.gregs[REG_RIP])
#else
__asm__(".text\n"
        ".globl green__solo_syscall\n"
        ".hidden green__solo_syscall\n"
        ".type green__solo_syscall,%function\n"
        "green__solo_syscall:\n"
        "    mov x9, x1\n"               /* abort */
        "    ldr x8, [x0]\n"
        "    ldr x1, [x0, #16]\n"
        "    ldr x2, [x0, #24]\n"
        "    ldr x3, [x0, #32]\n"
        "    ldr x4, [x0, #40]\n"
        "    ldr x5, [x0, #48]\n"
        "    ldr x0, [x0, #8]\n"
        "    dmb ish\n"                  /* the tid store before the flag load */
        ".globl green__solo_start_pc\n"
        ".hidden green__solo_start_pc\n"
        "green__solo_start_pc:\n"
        "    ldr w10, [x9]\n"
        "    cbnz w10, green__solo_intr_pc\n"
        ".globl green__solo_insn_pc\n"
        ".hidden green__solo_insn_pc\n"
        "green__solo_insn_pc:\n"
        "    svc #0\n"
        "    ret\n"
        ".globl green__solo_intr_pc\n"
        ".hidden green__solo_intr_pc\n"
        "green__solo_intr_pc:\n"
        "    mov x0, #-4\n"
        "    ret\n"
        ".size green__solo_syscall, .-green__solo_syscall\n");
#define SOLO_PC(uc) ((uc)->uc_mcontext.pc)
#endif
#else
#define SOLO_ARCH 0
#endif

struct green__solo {
    struct green__remote remote;   /* first: the hub hands us this */
    struct green__solo *next;      /* queue link */
    long call[7];                  /* number and six arguments */
    enum green__why why;           /* the caller's park, for dumps */
    uintptr_t why_arg;
    long result;                   /* the call's, or -EINTR */
    struct green__ctx *ctx;        /* the caller's hub */
    struct green_thread *caller;
    atomic_int abort;              /* stop the call (green__solo_end) */
    atomic_int done;               /* result is there */
    _Atomic pid_t tid;             /* the solo thread making the call */
    int refs;                      /* caller + completion; caller's OS thread */
    bool parked;                   /* the caller waits in green__solo_wait
                                      or green__solo_end */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct green__solo *qhead, *qtail;
static int nqueued;                /* jobs no solo thread took yet */
static int nidle;                  /* solo threads waiting for a job */

/* The job this solo thread runs now (its own thread only: the handler). */
static __thread struct green__solo *solo_cur __attribute__((tls_model("initial-exec")));
static __thread bool solo_self __attribute__((tls_model("initial-exec")));

bool green__solo_thread(void)
{
    return solo_self;
}

static void job_drop(struct green__solo *s)
{
    if (--s->refs == 0)
        free(s);
}

/* On the caller's OS thread, from its hub. */
static void job_posted(struct green__remote *r)
{
    struct green__solo *s = (struct green__solo *)r;
    green__remote_expect(s->ctx, -1);
    if (s->parked)
        green__ready(s->caller, 0);
    job_drop(s);
}

#if SOLO_ARCH
static void run_job(struct green__solo *s)
{
    solo_cur = s;
    /* Then the stub's fence and its load of the abort flag: against
     * green__solo_end's store of the flag and load of the tid. */
    atomic_store(&s->tid, (pid_t)green__syscall(SYS_gettid));
    s->result = green__solo_syscall(s->call, &s->abort);
    solo_cur = NULL;
    struct green__ctx *c = s->ctx;
    atomic_store_explicit(&s->done, 1, memory_order_release);
    green__remote_post(c, &s->remote);
}

static void *solo_main(void *arg)
{
    (void)arg;
    solo_self = true;
    /* Every signal stays blocked (the creator blocked them) but ours. */
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, green__monitor_signal);
    GREEN_REAL(pthread_sigmask)(SIG_UNBLOCK, &only, NULL);
    GREEN_REAL(pthread_mutex_lock)(&lock);
    for (;;) {
        while (!qhead) {
            nidle++;
            struct timespec until;
            GREEN_REAL(clock_gettime)(CLOCK_REALTIME, &until);
            until.tv_sec += SOLO_IDLE_S;
            int e = GREEN_REAL(pthread_cond_timedwait)(&cond, &lock, &until);
            nidle--;
            if (e == ETIMEDOUT && !qhead) {
                GREEN_REAL(pthread_mutex_unlock)(&lock);
                return NULL;
            }
        }
        struct green__solo *s = qhead;
        qhead = s->next;
        if (!qhead)
            qtail = NULL;
        nqueued--;
        GREEN_REAL(pthread_mutex_unlock)(&lock);
        run_job(s);
        GREEN_REAL(pthread_mutex_lock)(&lock);
    }
}

static void solo_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    green__solo_on_signal(si, uc);
}

/* The kernel's action for the monitor signal must reach
 * green__solo_on_signal: install solo_handler where it has none. */
static int ensure_handler(void)
{
    int sig = green__monitor_signal;
    struct sigaction k;
    if (GREEN_REAL(sigaction)(sig, NULL, &k) != 0)
        return errno;
    if (k.sa_handler != SIG_DFL && k.sa_handler != SIG_IGN)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = solo_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    return GREEN_REAL(sigaction)(sig, &sa, NULL) == 0 ? 0 : errno;
}
#endif

static atomic_bool used;            /* green__solo_start ran */

void green__solo_keep_handler(void)
{
#if SOLO_ARCH
    if (atomic_load(&used))
        (void)ensure_handler();
#endif
}

bool green__solo_handler_is(void (*fn)(int, siginfo_t *, void *))
{
#if SOLO_ARCH
    return fn == solo_handler;
#else
    (void)fn;
    return false;
#endif
}

bool green__solo_on_signal(const siginfo_t *si, void *ucv)
{
#if SOLO_ARCH
    struct green__solo *s = solo_cur;
    if (!s || !si || si->si_code != SI_TKILL || si->si_pid != getpid() ||
        !atomic_load(&s->abort))
        return false;
    ucontext_t *uc = ucv;
    uintptr_t pc = (uintptr_t)SOLO_PC(uc);
    if (pc >= (uintptr_t)green__solo_start_pc && pc <= (uintptr_t)green__solo_insn_pc)
        SOLO_PC(uc) = (uintptr_t)green__solo_intr_pc;
    return true;
#else
    (void)si;
    (void)ucv;
    return false;
#endif
}

struct green__solo *green__solo_start(const long call[7], enum green__why why,
                                      uintptr_t why_arg)
{
#if SOLO_ARCH
    struct green__ctx *c = green__tls_ctx;
    struct green_thread *t = c ? c->current : NULL;
    /* Not for the hub, and not for a handler running as a thread off its
     * own context (green__run_as), where a park fails at once. */
    if (!t || t == c->hub || (t->kill_pending & GREEN__KP_SIGNAL)) {
        errno = EAGAIN;
        return NULL;
    }
    atomic_store(&used, true);
    int e = ensure_handler();
    if (e) {
        errno = e;
        return NULL;
    }
    struct green__solo *s = calloc(1, sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    s->remote.run = job_posted;
    memcpy(s->call, call, sizeof s->call);
    s->why = why;
    s->why_arg = why_arg;
    s->ctx = c;
    s->caller = t;
    s->refs = 2;
    GREEN_REAL(pthread_mutex_lock)(&lock);
    if (nidle <= nqueued) {
        /* Solo threads start with every signal blocked, whatever the
         * caller's mask; solo_main opens the monitor signal alone. */
        sigset_t old;
        green__block_all_signals(&old);
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 128 * 1024);
        green__hubpolicy_attr(&a);
        pthread_t th;
        e = GREEN_REAL(pthread_create)(&th, &a, solo_main, NULL);
        pthread_attr_destroy(&a);
        green__restore_signals(&old);
        if (e && nidle <= nqueued) {
            GREEN_REAL(pthread_mutex_unlock)(&lock);
            free(s);
            errno = e;
            return NULL;
        }
    }
    if (qtail)
        qtail->next = s;
    else
        qhead = s;
    qtail = s;
    nqueued++;
    GREEN_REAL(pthread_cond_signal)(&cond);
    GREEN_REAL(pthread_mutex_unlock)(&lock);
    green__remote_expect(c, +1);
    return s;
#else
    (void)call;
    (void)why;
    (void)why_arg;
    errno = ENOSYS;
    return NULL;
#endif
}

int green__solo_wait(struct green__solo *s)
{
    int code = 0;
    s->parked = true;
    while (!atomic_load_explicit(&s->done, memory_order_acquire) && code == 0)
        code = green__park(s->why, s->why_arg, NULL, GREEN_FOREVER);
    s->parked = false;
    return atomic_load_explicit(&s->done, memory_order_acquire) ? 0 : code;
}

long green__solo_end(struct green__solo *s)
{
    if (!atomic_load(&s->done)) {
        atomic_store(&s->abort, 1);   /* seq_cst, then the tid: against
                                         run_job */
        pid_t tid = atomic_load(&s->tid);
        if (tid > 0 && !atomic_load(&s->done))
            green__syscall(SYS_tgkill, getpid(), tid, green__monitor_signal);
        /* Until the call has returned, not interruptibly. A kill seen
         * meanwhile is kept for the caller's next park. */
        bool killed = false;
        s->parked = true;
        while (!atomic_load_explicit(&s->done, memory_order_acquire)) {
            int code = green__park(s->why, s->why_arg, NULL, GREEN_FOREVER);
            if (code == ECANCELED)
                killed = true;
            else if (code)         /* a park that cannot wait (an expired
                                      timeout scope): the solo thread ends
                                      the call within microseconds */
                green__syscall(SYS_sched_yield);
        }
        s->parked = false;
        if (killed)
            green__tls_ctx->current->kill_pending |= GREEN__KP_KILL;
    }
    long r = s->result;
    job_drop(s);
    return r;
}

static void atfork_child(void)
{
    GREEN_REAL(pthread_mutex_init)(&lock, NULL);
    GREEN_REAL(pthread_cond_init)(&cond, NULL);
    qhead = qtail = NULL;
    nqueued = 0;
    nidle = 0;
}

__attribute__((constructor)) static void solo_register_atfork(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

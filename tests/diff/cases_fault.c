/*
 * cases_fault.c - differential cases of the signals an instruction raises
 * (see diff.h): SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP. What sigaction
 * reports for them before and after threads exist (libgreen's
 * stack-overflow reporter must not show); one sent with kill or
 * pthread_kill interrupts a blocked call as any handled signal does; one
 * raised by an instruction runs the program's handler on the faulting
 * context, with its siginfo, and the handler may leave with siglongjmp;
 * SA_RESETHAND; a stack overflow caught by a handler on an alternate
 * stack.
 */
#include "diff.h"
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const int faults[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP };
#define NFAULTS (int)(sizeof faults / sizeof *faults)

static void *nothing(void *arg)
{
    usleep(1000);
    return arg;
}

static volatile sig_atomic_t hits, last_code;
static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    hits++;
    last_code = si->si_code;
}

/* sig's action: fn with SA_SIGINFO and flags, empty sa_mask. */
static void handle(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa = { .sa_sigaction = fn, .sa_flags = SA_SIGINFO | flags };
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void say_action(const char *when, int sig)
{
    struct sigaction o;
    if (sigaction(sig, NULL, &o) != 0) {
        diff_out("%s: sigaction %s", when, diff_errname(errno));
        return;
    }
    const char *h = (o.sa_flags & SA_SIGINFO) ? (o.sa_sigaction == on_fault ? "on_fault" : "another")
                    : o.sa_handler == SIG_DFL ? "SIG_DFL"
                    : o.sa_handler == SIG_IGN ? "SIG_IGN" : "another";
    diff_out("%s: signal %d %s flags %#x", when, sig, h,
             (unsigned)(o.sa_flags & (SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESETHAND |
                                      SA_RESTART)));
}

/* Before any thread, after one ran (libgreen's hub exists then under the
 * shim), after the program set a handler without SA_ONSTACK, SIG_DFL
 * again and SIG_IGN. */
DIFF_CASE(fault, sigaction_reports_the_programs_actions)
{
    for (int i = 0; i < NFAULTS; i++)
        say_action("at start", faults[i]);
    pthread_join(diff_spawn(nothing, NULL), NULL);
    for (int i = 0; i < NFAULTS; i++) {
        int sig = faults[i];
        say_action("after a thread", sig);
        handle(sig, on_fault, 0);
        say_action("with a handler", sig);
        signal(sig, SIG_DFL);
        say_action("default again", sig);
        signal(sig, SIG_IGN);
        say_action("ignored", sig);
        signal(sig, SIG_DFL);
    }
}

/* A handler set before the first thread exists stays the kernel's as it
 * was set: a thread that starts later does not replace it. */
DIFF_CASE(fault, a_handler_set_before_any_thread_is_kept)
{
    handle(SIGSEGV, on_fault, 0);
    handle(SIGBUS, on_fault, 0);
    pthread_join(diff_spawn(nothing, NULL), NULL);
    say_action("after a thread", SIGSEGV);
    say_action("after a thread", SIGBUS);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
}

/* ------------------------------------------------- sent, not raised */

struct sender {
    pthread_t target;
    int sig;
    int ms;
};

static void *send_later(void *arg)
{
    struct sender *s = arg;
    usleep((useconds_t)s->ms * 1000);
    pthread_kill(s->target, s->sig);
    return NULL;
}

/* The sender blocks the signal: the thread in pause is the only one that
 * takes it (main blocks every signal in "thread" places). */
static void *kill_later(void *arg)
{
    struct sender *s = arg;
    sigset_t b;
    sigemptyset(&b);
    sigaddset(&b, s->sig);
    pthread_sigmask(SIG_BLOCK, &b, NULL);
    usleep((useconds_t)s->ms * 1000);
    kill(getpid(), s->sig);
    return NULL;
}

/* Each fault signal sent with pthread_kill 100 ms into a pipe read (a
 * handler with SA_RESTART: EINTR only for calls signal(7) never
 * restarts, so a read restarts) and into pause (EINTR). */
DIFF_CASE(fault, pthread_kill_of_a_fault_signal_interrupts_the_target)
{
    for (int i = 0; i < NFAULTS; i++) {
        int sig = faults[i];
        handle(sig, on_fault, 0);
        hits = 0;
        struct sender s = { pthread_self(), sig, 100 };
        pthread_t th = diff_spawn(send_later, &s);
        int64_t t0 = diff_now();
        CALL("pause", pause());
        DIFF_TOOK("pause", t0, 50, 3000);
        pthread_join(th, NULL);
        diff_out("signal %d: handler ran %d, si_code %d", sig, (int)hits, (int)last_code);
        int p[2];
        if (pipe(p) != 0)
            return;
        char c;
        th = diff_spawn(send_later, &s);
        CALL("read without SA_RESTART", read(p[0], &c, 1));
        pthread_join(th, NULL);
        close(p[0]);
        close(p[1]);
        signal(sig, SIG_DFL);
    }
}

/* kill(getpid()) while a forked child's main thread waits in pause, and
 * while this thread does (the sender blocks the signal). */
DIFF_CASE(fault, kill_of_a_fault_signal_interrupts_pause)
{
    for (int i = 0; i < NFAULTS; i++) {
        int sig = faults[i];
        handle(sig, on_fault, SA_RESTART);
        hits = 0;
        pid_t pid = fork();
        if (pid == 0) {
            /* The child: one thread ran before (a hub under the shim),
             * then main waits in pause for the parent's kill. */
            pthread_join(diff_spawn(nothing, NULL), NULL);
            int r = pause();
            _exit(r == -1 && errno == EINTR && hits == 1 ? 0 : 1);
        }
        usleep(150000);
        kill(pid, sig);
        diff_child_status("child in pause", pid);
        struct sender s = { pthread_self(), sig, 100 };
        pthread_t th = diff_spawn(kill_later, &s);
        CALL("pause", pause());
        pthread_join(th, NULL);
        diff_out("signal %d: handler ran %d", sig, (int)hits);
        signal(sig, SIG_DFL);
    }
}

/* ------------------------------------------------------------ raised */

static sigjmp_buf jb;
static volatile void *fault_addr;
static void leave(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    hits++;
    last_code = si->si_code;
    fault_addr = si->si_addr;
    siglongjmp(jb, sig);
}

/* A read of an unmapped page, then a write to a read-only one: the
 * handler gets the address and the code and leaves with siglongjmp; then
 * the thread sleeps and reads a pipe as usual (the scheduler is fine). */
DIFF_CASE(fault, a_segfault_runs_the_handler_which_may_siglongjmp)
{
    handle(SIGSEGV, leave, 0);
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (volatile int k = 0; k < 3; k++) {
        hits = 0;
        fault_addr = NULL;
        if (sigsetjmp(jb, 1) == 0) {
            if (k == 0)
                diff_out("read %d", *(volatile char *)(none + 8));
            else
                *(volatile char *)(ro + 16) = 1;
            diff_out("no fault");
        }
        diff_out("fault %d: handler ran %d, code %d, at offset %ld", k, (int)hits,
                 (int)last_code,
                 (long)((const char *)fault_addr - (k == 0 ? none : ro)));
        sigset_t cur;
        sigprocmask(SIG_BLOCK, NULL, &cur);
        diff_out("SIGSEGV blocked after: %d", sigismember(&cur, SIGSEGV));
        usleep(2000);
    }
    int p[2];
    if (pipe(p) == 0) {
        CALL("write", write(p[1], "x", 1));
        char c;
        CALL("read", read(p[0], &c, 1));
        close(p[0]);
        close(p[1]);
    }
    munmap(ro, 4096);
    munmap(none, 4096);
    signal(SIGSEGV, SIG_DFL);
}

/* An integer division by zero and a trap instruction. */
DIFF_CASE(fault, sigfpe_and_sigtrap_raised_by_instructions)
{
    handle(SIGFPE, leave, 0);
    handle(SIGTRAP, leave, 0);
    hits = 0;
    volatile int zero = 0;
    if (sigsetjmp(jb, 1) == 0)
        diff_out("quotient %d", 7 / zero);
    diff_out("SIGFPE: handler ran %d, code %d", (int)hits, (int)last_code);
#if defined(__x86_64__)
    hits = 0;
    if (sigsetjmp(jb, 1) == 0)
        __asm__ volatile("int3");
    diff_out("SIGTRAP: handler ran %d", (int)hits);
#endif
    signal(SIGFPE, SIG_DFL);
    signal(SIGTRAP, SIG_DFL);
}

static volatile char *volatile bad = (volatile char *)8;

/* SA_RESETHAND: the first fault runs the handler, the second kills (in
 * a child). */
DIFF_CASE(fault, sa_resethand_then_a_second_fault_kills)
{
    pid_t pid = fork();
    if (pid == 0) {
        pthread_join(diff_spawn(nothing, NULL), NULL);
        handle(SIGSEGV, leave, SA_RESETHAND);
        if (sigsetjmp(jb, 1) == 0)
            *bad = 1;
        struct sigaction o;
        sigaction(SIGSEGV, NULL, &o);
        if (hits != 1 || o.sa_handler != SIG_DFL)
            _exit(3);
        *bad = 1;
        _exit(4);
    }
    diff_child_status("child", pid);
}

/* ---------------------------------------------------- stack overflow */

static char alt[64 * 1024];

static volatile int depth_limit = 1 << 30;

__attribute__((noinline)) static int deeper(int n)
{
    volatile char frame[1024];
    frame[n % 7] = (char)n;
    return n < depth_limit ? deeper(n + 1) + frame[n % 5] : 0;
}

static void *overflow_caught(void *arg)
{
    (void)arg;
    stack_t ss = { .ss_sp = alt, .ss_size = sizeof alt };
    sigaltstack(&ss, NULL);
    handle(SIGSEGV, leave, SA_ONSTACK);
    hits = 0;
    if (sigsetjmp(jb, 1) == 0)
        deeper(0);
    diff_out("overflow: handler ran %d", (int)hits);
    usleep(1000);
    diff_out("the thread goes on");
    return NULL;
}

/* A thread overflows its stack; a handler on its alternate stack catches
 * the fault and jumps out. */
DIFF_CASE(fault, a_stack_overflow_caught_by_a_handler_on_an_alternate_stack)
{
    pthread_join(diff_spawn(overflow_caught, NULL), NULL);
    signal(SIGSEGV, SIG_DFL);
    diff_out("joined");
}

/*
 * cases_altstack.c - differential cases of sigaltstack(2) between threads
 * (see diff.h): each thread has its own alternate signal stack; a new
 * thread starts without one; a handler with SA_ONSTACK runs on the
 * thread's own, whether it was running when the signal came (raise) or
 * waiting in a blocking call (pthread_kill from another thread), and sees
 * SS_ONSTACK there; SS_AUTODISARM; the errors (EPERM on it, ENOMEM, EINVAL,
 * EFAULT). Addresses are printed only as "in the stack it set" or not.
 */
#include "diff.h"
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

#define ALT_SIZE (64 * 1024)

/* One alternate stack per thread of a case: slot 0 the case's thread,
 * 1 and 2 helpers. */
static char alt_mem[3][ALT_SIZE] __attribute__((aligned(64)));

static const char *which(const void *sp)
{
    for (int k = 0; k < 3; k++)
        if (sp == alt_mem[k])
            return k == 0 ? "stack 0" : k == 1 ? "stack 1" : "stack 2";
    return sp ? "other" : "none";
}

static void show(const char *who)
{
    stack_t o;
    int r = sigaltstack(NULL, &o);
    diff_out("%s: sigaltstack %d, %s, flags %#x, size %zu", who, r, which(o.ss_sp),
             (unsigned)o.ss_flags, o.ss_size);
}

static int set_alt(int slot, int flags)
{
    stack_t ss = { .ss_sp = alt_mem[slot], .ss_size = ALT_SIZE, .ss_flags = flags };
    return sigaltstack(&ss, NULL);
}

static int disable_alt(void)
{
    stack_t ss = { .ss_flags = SS_DISABLE };
    return sigaltstack(&ss, NULL);
}

/* What the last handler saw: whether its frame was in alt_mem[slot], and
 * what sigaltstack said inside. */
static volatile int h_slot = -1, h_flags, h_ret, h_eperm_errno, h_calls;

static void on_usr1(int sig)
{
    (void)sig;
    char here;
    h_slot = -1;
    for (int k = 0; k < 3; k++)
        if ((uintptr_t)&here - (uintptr_t)alt_mem[k] < ALT_SIZE)
            h_slot = k;
    stack_t o, n = { .ss_sp = alt_mem[2], .ss_size = ALT_SIZE };
    h_ret = sigaltstack(NULL, &o);
    h_flags = o.ss_flags;
    errno = 0;
    int r = sigaltstack(&n, NULL);        /* EPERM while on it */
    h_eperm_errno = r == 0 ? 0 : errno;
    if (r == 0)
        sigaltstack(&o, NULL);
    h_calls++;
}

static void handle_usr1(int flags)
{
    struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
}

static void show_handler(const char *who)
{
    diff_out("%s: handler ran %d, on stack %d, sigaltstack %d flags %#x, change inside: %s",
             who, h_calls, h_slot, h_ret, (unsigned)h_flags, diff_errname(h_eperm_errno));
}

/* ------------------------------------------------------------ per thread */

static void *set_then_wait(void *arg)
{
    (void)arg;
    CALL("thread set", set_alt(1, 0));
    usleep(100000);
    show("thread after the wait");
    CALL("thread disable", disable_alt());
    return NULL;
}

DIFF_CASE(altstack, each_thread_has_its_own)
{
    show("before");
    pthread_t t = diff_spawn(set_then_wait, NULL);
    usleep(30000);                 /* the thread set its own and waits */
    show("while the thread waits");
    CALL("set own", set_alt(0, 0));
    show("own");
    CALL("join", pthread_join(t, NULL));
    show("after the join");
    CALL("disable", disable_alt());
    show("disabled");
}

static void *look(void *arg)
{
    show((const char *)arg);
    return NULL;
}

DIFF_CASE(altstack, a_new_thread_starts_without_one)
{
    CALL("set", set_alt(0, 0));
    pthread_t t = diff_spawn(look, "new thread");
    CALL("join", pthread_join(t, NULL));
    show("creator");
    CALL("disable", disable_alt());
}

/* A thread sets one and ends without disabling it: nothing of it is left
 * for the others. */
static void *set_and_end(void *arg)
{
    (void)arg;
    set_alt(1, 0);
    return NULL;
}

DIFF_CASE(altstack, a_thread_that_ends_takes_its_own_with_it)
{
    pthread_t t = diff_spawn(set_and_end, NULL);
    CALL("join", pthread_join(t, NULL));
    show("after the join");
    t = diff_spawn(look, "next thread");
    pthread_join(t, NULL);
}

/* ----------------------------------------------------- handlers on it */

DIFF_CASE(altstack, raise_runs_an_sa_onstack_handler_on_it)
{
    handle_usr1(SA_ONSTACK);
    CALL("set", set_alt(0, 0));
    CALL("raise", raise(SIGUSR1));
    show_handler("on stack 0");
    handle_usr1(0);
    CALL("raise without SA_ONSTACK", raise(SIGUSR1));
    show_handler("no SA_ONSTACK");
    CALL("disable", disable_alt());
    handle_usr1(SA_ONSTACK);
    CALL("raise with none set", raise(SIGUSR1));
    show_handler("none set");
    signal(SIGUSR1, SIG_DFL);
}

DIFF_CASE(altstack, autodisarm_disarms_it_while_the_handler_runs)
{
    handle_usr1(SA_ONSTACK);
    CALL("set autodisarm", set_alt(0, (int)SS_AUTODISARM));
    show("armed");
    CALL("raise", raise(SIGUSR1));
    show_handler("autodisarm");
    show("after the handler");
    CALL("disable", disable_alt());
    signal(SIGUSR1, SIG_DFL);
}

/* The target waits in read() on a pipe; another thread signals it: the
 * handler runs on the target's own alternate stack, and read fails with
 * EINTR (no SA_RESTART). */
static int pipe_fds[2];
static volatile int target_ready;

static void *wait_in_read(void *arg)
{
    int flags = (int)(intptr_t)arg;
    set_alt(1, flags);
    target_ready = 1;
    char c;
    errno = 0;
    ssize_t n = read(pipe_fds[0], &c, 1);
    diff_out("target read: %zd %s", n, diff_errname(n < 0 ? errno : 0));
    show_handler("target");
    show("target after the handler");
    disable_alt();
    return NULL;
}

static void signal_a_waiting_thread(int flags)
{
    handle_usr1(SA_ONSTACK);
    h_calls = 0;
    target_ready = 0;
    CALL("pipe", pipe(pipe_fds));
    pthread_t t = diff_spawn(wait_in_read, (void *)(intptr_t)flags);
    while (!target_ready)
        usleep(1000);
    usleep(30000);                 /* it is in read() */
    int k = pthread_kill(t, SIGUSR1);
    CALL("join", pthread_join(t, NULL));
    diff_out("pthread_kill: %s", diff_errname(k));
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    signal(SIGUSR1, SIG_DFL);
}

DIFF_CASE(altstack, a_thread_signalled_while_it_waits_runs_the_handler_on_its_own)
{
    signal_a_waiting_thread(0);
}

DIFF_CASE(altstack, a_waiting_thread_with_autodisarm)
{
    signal_a_waiting_thread((int)SS_AUTODISARM);
}

/* --------------------------------------------------------------- errors */

DIFF_CASE(altstack, errors_are_the_kernels)
{
    stack_t small = { .ss_sp = alt_mem[0], .ss_size = 1024 };
    CALL("size 1024", sigaltstack(&small, NULL));
    stack_t bad = { .ss_sp = alt_mem[0], .ss_size = ALT_SIZE, .ss_flags = 0x1234 };
    CALL("flags 0x1234", sigaltstack(&bad, NULL));
    CALL("ss unreadable", sigaltstack((const stack_t *)8, NULL));
    CALL("old unwritable", sigaltstack(NULL, (stack_t *)8));
    stack_t legacy = { .ss_sp = alt_mem[0], .ss_size = ALT_SIZE, .ss_flags = SS_ONSTACK };
    CALL("flags SS_ONSTACK", sigaltstack(&legacy, NULL));
    show("after SS_ONSTACK");
    stack_t o;
    CALL("set and read the old one", sigaltstack(&(stack_t){ .ss_sp = alt_mem[1],
                                                             .ss_size = ALT_SIZE }, &o));
    diff_out("old: %s flags %#x size %zu", which(o.ss_sp), (unsigned)o.ss_flags, o.ss_size);
    CALL("disable", disable_alt());
    show("disabled");
}

/* The same through syscall(SYS_sigaltstack): as sigaltstack. */
static void *set_by_syscall_then_wait(void *arg)
{
    (void)arg;
    stack_t ss = { .ss_sp = alt_mem[1], .ss_size = ALT_SIZE };
    CALL("thread syscall set", syscall(SYS_sigaltstack, &ss, NULL));
    usleep(100000);
    stack_t o;
    CALL("thread syscall get", syscall(SYS_sigaltstack, NULL, &o));
    diff_out("thread: %s flags %#x", which(o.ss_sp), (unsigned)o.ss_flags);
    disable_alt();
    return NULL;
}

DIFF_CASE(altstack, syscall_sigaltstack_is_per_thread_too)
{
    pthread_t t = diff_spawn(set_by_syscall_then_wait, NULL);
    usleep(30000);
    show("while the thread waits");
    CALL("join", pthread_join(t, NULL));
    show("after the join");
}

/*
 * cases_signal.c - differential cases of signals between threads (see
 * diff.h): masks per thread and their inheritance, which thread a
 * process-directed signal goes to, signals pending while every thread
 * blocks them, the sigwait family and signalfd, pthread_kill and raise
 * (which thread runs the handler), handler flags (SA_RESTART,
 * SA_RESETHAND, SA_NODEFER, sa_mask), sigsuspend, pause, sigpending, and
 * libgreen's own threads never taking a signal.
 *
 * Determinism. Natively the kernel gives a process-directed signal to the
 * main thread when it does not block it, else to any thread that does not:
 * every case leaves exactly one candidate (helper threads are created with
 * every signal blocked, spawn_quiet), or none. In pthread mode main blocks
 * everything (diff.h), so the case's thread is the candidate, as main is
 * in main mode. Signals between steps are spaced by tens of milliseconds:
 * a standard signal sent twice before it is taken is delivered once.
 */
#include "diff.h"
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static volatile sig_atomic_t hits[65];
static pthread_t hthread[65];          /* pthread_self() in the last handler */
static volatile int hcode[65];         /* its si_code (SA_SIGINFO handlers) */
static volatile int hpid_ok[65];       /* its si_pid == getpid() */
static volatile int hmask_self[65];    /* the signal was blocked inside */
static volatile int hmask_usr2[65];    /* SIGUSR2 was blocked inside */
static volatile int depth, max_depth;

static int is_blocked(int sig)
{
    sigset_t m;
    sigemptyset(&m);
    pthread_sigmask(SIG_BLOCK, NULL, &m);
    return sigismember(&m, sig);
}

static void on_sig(int sig)
{
    hits[sig]++;
    hthread[sig] = pthread_self();
    hmask_self[sig] = is_blocked(sig);
    hmask_usr2[sig] = is_blocked(SIGUSR2);
}

static void on_info(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    hcode[sig] = si->si_code;
    hpid_ok[sig] = si->si_pid == getpid();
    on_sig(sig);
}

static void handle(int sig, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void handle_info(int sig, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = flags | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static sigset_t set_of(int sig)
{
    sigset_t s;
    sigemptyset(&s);
    if (sig)
        sigaddset(&s, sig);
    return s;
}

static void block(int sig)
{
    sigset_t s = set_of(sig);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
}

static void unblock(int sig)
{
    sigset_t s = set_of(sig);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

static int is_pending(int sig)
{
    sigset_t p;
    sigemptyset(&p);
    sigpending(&p);
    return sigismember(&p, sig);
}

/* Sleep with the (hooked) nanosleep, finishing it after interruptions. */
static void ms(int n)
{
    struct timespec ts = { n / 1000, (long)(n % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Wait up to limit ms for hits[sig] >= n. */
static void wait_hits(int sig, int n, int limit)
{
    for (int i = 0; i < limit && hits[sig] < n; i++)
        ms(1);
}

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0) {
        diff_out("pthread_create failed");
        exit(1);
    }
    return t;
}

/* A helper thread with every signal blocked: never a candidate. */
static pthread_t spawn_quiet(void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t = spawn(fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return t;
}

struct later {
    int delay_ms;
    int sig;
    int count;
    int gap_ms;
    pthread_t target;              /* pthread_kill target, or 0: kill() */
    int write_fd;                  /* >= 0: write a byte after write_ms */
    int write_ms;
};

/* Sends l->count signals after l->delay_ms, then maybe writes a byte. */
static void *sender(void *arg)
{
    struct later *l = arg;
    ms(l->delay_ms);
    for (int i = 0; i < l->count; i++) {
        if (i)
            ms(l->gap_ms);
        if (l->target)
            pthread_kill(l->target, l->sig);
        else
            kill(getpid(), l->sig);
    }
    if (l->write_fd >= 0) {
        ms(l->write_ms);
        if (write(l->write_fd, "x", 1) != 1)
            diff_out("sender: write failed");
    }
    return NULL;
}

static pthread_t send_later(struct later *l)
{
    return spawn_quiet(sender, l);
}

static const char *signame(int sig)
{
    static char b[16];
    if (sig > 0 && sig < 65) {
        const char *n = sigabbrev_np(sig);
        if (n)
            return n;
    }
    snprintf(b, sizeof b, "%d", sig);
    return b;
}

/* ------------------------------------------------- masks per thread */

DIFF_CASE(signal, a_blocked_signal_shows_in_the_same_threads_mask)
{
    block(SIGUSR1);
    diff_out("USR1 blocked: %d, USR2 blocked: %d", is_blocked(SIGUSR1), is_blocked(SIGUSR2));
}

static void *report_mask(void *arg)
{
    (void)arg;
    diff_out("in thread: USR1 %d USR2 %d", is_blocked(SIGUSR1), is_blocked(SIGUSR2));
    return NULL;
}

DIFF_CASE(signal, a_new_thread_inherits_its_creators_mask)
{
    block(SIGUSR1);
    pthread_join(spawn(report_mask, NULL), NULL);
}

static void *block_usr2_and_report(void *arg)
{
    (void)arg;
    block(SIGUSR2);
    diff_out("thread blocked USR2: %d", is_blocked(SIGUSR2));
    return NULL;
}

DIFF_CASE(signal, a_threads_mask_change_does_not_touch_its_creator)
{
    pthread_join(spawn(block_usr2_and_report, NULL), NULL);
    diff_out("creator: USR2 blocked %d", is_blocked(SIGUSR2));
}

static volatile int step;

static void *blocker_then_wait(void *arg)
{
    (void)arg;
    block(SIGUSR1);
    step = 1;
    while (step < 2)
        ms(1);
    diff_out("blocker still blocks USR1: %d", is_blocked(SIGUSR1));
    return NULL;
}

static void *reporter_after(void *arg)
{
    (void)arg;
    while (step < 1)
        ms(1);
    diff_out("sibling: USR1 blocked %d", is_blocked(SIGUSR1));
    step = 2;
    return NULL;
}

DIFF_CASE(signal, sibling_threads_have_independent_masks)
{
    pthread_t a = spawn(blocker_then_wait, NULL);
    pthread_t b = spawn(reporter_after, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
}

DIFF_CASE(signal, sigprocmask_with_a_bad_how_is_einval)
{
    sigset_t s = set_of(SIGUSR1);
    CALL("sigprocmask(99)", sigprocmask(99, &s, NULL));
    diff_out("USR1 blocked: %d", is_blocked(SIGUSR1));
}

DIFF_CASE(signal, pthread_sigmask_with_a_bad_how_returns_einval)
{
    sigset_t s = set_of(SIGUSR1);
    CALL("pthread_sigmask(99)", pthread_sigmask(99, &s, NULL));
}

DIFF_CASE(signal, a_bad_how_without_a_set_is_ignored)
{
    sigset_t old;
    CALL("sigprocmask(99, NULL)", sigprocmask(99, NULL, &old));
}

DIFF_CASE(signal, sigkill_and_sigstop_cannot_be_blocked)
{
    sigset_t all, old;
    sigfillset(&all);
    sigset_t keep;
    pthread_sigmask(SIG_SETMASK, NULL, &keep);
    CALL("block all", pthread_sigmask(SIG_SETMASK, &all, NULL));
    pthread_sigmask(SIG_SETMASK, NULL, &old);
    diff_out("KILL %d STOP %d USR1 %d TERM %d", sigismember(&old, SIGKILL),
             sigismember(&old, SIGSTOP), sigismember(&old, SIGUSR1),
             sigismember(&old, SIGTERM));
    pthread_sigmask(SIG_SETMASK, &keep, NULL);
}

DIFF_CASE(signal, setmask_returns_the_previous_mask)
{
    sigset_t a = set_of(SIGUSR1), b = set_of(SIGUSR2), old;
    pthread_sigmask(SIG_SETMASK, &a, NULL);
    sigemptyset(&old);
    CALL("setmask", pthread_sigmask(SIG_SETMASK, &b, &old));
    diff_out("old: USR1 %d USR2 %d; now: USR1 %d USR2 %d", sigismember(&old, SIGUSR1),
             sigismember(&old, SIGUSR2), is_blocked(SIGUSR1), is_blocked(SIGUSR2));
}

DIFF_CASE(signal, the_old_mask_may_be_the_new_set)
{
    block(SIGINT);
    sigset_t s = set_of(SIGUSR1);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
    CALL("block in place", pthread_sigmask(SIG_BLOCK, &s, &s));
#pragma GCC diagnostic pop
    diff_out("returned: INT %d USR1 %d; now USR1 %d", sigismember(&s, SIGINT),
             sigismember(&s, SIGUSR1), is_blocked(SIGUSR1));
}

DIFF_CASE(signal, sigprocmask_unblock_acts_on_the_calling_thread)
{
    block(SIGUSR1);
    block(SIGUSR2);
    sigset_t s = set_of(SIGUSR1);
    CALL("unblock USR1", sigprocmask(SIG_UNBLOCK, &s, NULL));
    diff_out("USR1 %d USR2 %d", is_blocked(SIGUSR1), is_blocked(SIGUSR2));
}

/* ------------------------------------------- process-directed delivery */

static volatile int worker_stop;

static void *accepting_worker(void *arg)
{
    (void)arg;
    unblock(SIGUSR1);
    step = 1;
    while (!worker_stop)
        ms(1);
    return NULL;
}

DIFF_CASE(signal, a_process_signal_goes_to_the_thread_that_does_not_block_it)
{
    handle(SIGUSR1, SA_RESTART);
    block(SIGUSR1);
    pthread_t w = spawn(accepting_worker, NULL);
    while (!step)
        ms(1);
    kill(getpid(), SIGUSR1);
    wait_hits(SIGUSR1, 1, 2000);
    worker_stop = 1;
    pthread_join(w, NULL);
    diff_out("hits %d, in the worker: %d", (int)hits[SIGUSR1],
             pthread_equal(hthread[SIGUSR1], w) != 0);
}

static void *blocking_worker(void *arg)
{
    (void)arg;
    block(SIGUSR1);
    step = 1;
    while (!worker_stop)
        ms(1);
    diff_out("worker hits %d", (int)hits[SIGUSR1]);
    return NULL;
}

DIFF_CASE(signal, a_thread_blocking_a_signal_does_not_block_it_for_the_process)
{
    handle(SIGUSR1, SA_RESTART);
    pthread_t w = spawn(blocking_worker, NULL);
    while (!step)
        ms(1);
    kill(getpid(), SIGUSR1);
    wait_hits(SIGUSR1, 1, 2000);
    diff_out("hits %d, handled here: %d", (int)hits[SIGUSR1],
             pthread_equal(hthread[SIGUSR1], pthread_self()) != 0);
    worker_stop = 1;
    pthread_join(w, NULL);
}

static void *unblock_later(void *arg)
{
    (void)arg;
    ms(50);
    diff_out("worker sees it pending: %d, hits before unblock %d", is_pending(SIGUSR1),
             (int)hits[SIGUSR1]);
    unblock(SIGUSR1);
    diff_out("hits after unblock %d", (int)hits[SIGUSR1]);
    return NULL;
}

DIFF_CASE(signal, a_signal_every_thread_blocks_waits_until_one_unblocks_it)
{
    handle(SIGUSR1, SA_RESTART);
    block(SIGUSR1);
    pthread_t w = spawn(unblock_later, NULL);
    kill(getpid(), SIGUSR1);
    pthread_join(w, NULL);
    diff_out("handled in the worker: %d; still pending here: %d",
             pthread_equal(hthread[SIGUSR1], w) != 0, is_pending(SIGUSR1));
}

DIFF_CASE(signal, a_blocked_process_signal_is_delivered_when_unblocked)
{
    handle(SIGUSR1, 0);
    block(SIGUSR1);
    kill(getpid(), SIGUSR1);
    diff_out("pending %d hits %d", is_pending(SIGUSR1), (int)hits[SIGUSR1]);
    unblock(SIGUSR1);
    diff_out("pending %d hits %d", is_pending(SIGUSR1), (int)hits[SIGUSR1]);
}

DIFF_CASE(signal, a_blocked_signal_with_default_action_kills_when_unblocked)
{
    block(SIGTERM);
    kill(getpid(), SIGTERM);
    diff_out("alive while blocked");
    unblock(SIGTERM);
    diff_out("still alive");
}

DIFF_CASE(signal, a_blocked_ignored_signal_is_discarded_when_unblocked)
{
    handle(SIGUSR1, 0);
    block(SIGUSR1);
    kill(getpid(), SIGUSR1);
    signal(SIGUSR1, SIG_IGN);
    diff_out("pending after SIG_IGN: %d", is_pending(SIGUSR1));
    unblock(SIGUSR1);
    diff_out("hits %d", (int)hits[SIGUSR1]);
}

static int pipefd[2];

struct rd {
    int flags;
    long r;
    int e;
    int quick;                     /* ended within 1.5 s */
};

static void *reader_thread(void *arg)
{
    struct rd *x = arg;
    unblock(SIGUSR1);
    char c;
    errno = 0;
    x->r = read(pipefd[0], &c, 1);
    x->e = errno;
    return NULL;
}

/* siginterrupt is deprecated, but programs still call it. */
static int si_call(int sig, int flag)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return siginterrupt(sig, flag);
#pragma GCC diagnostic pop
}

/* interrupt: -1 leaves the flags; 0 or 1 is siginterrupt's flag. */
static void read_interrupted_si(int flags, int interrupt)
{
    handle(SIGUSR1, flags);
    if (interrupt >= 0)
        CALL("siginterrupt", si_call(SIGUSR1, interrupt));
    block(SIGUSR1);
    if (pipe(pipefd) < 0)
        return;
    struct rd x = { flags, 0, 0, 0 };
    pthread_t w = spawn(reader_thread, &x);
    struct later l = { .delay_ms = 50, .sig = SIGUSR1, .count = 1, .write_fd = pipefd[1],
                       .write_ms = 60 };
    pthread_t s = send_later(&l);
    pthread_join(w, NULL);
    pthread_join(s, NULL);
    diff_out("read: ret=%ld errno=%s; handler in the reader: %d", x.r, diff_errname(x.e),
             pthread_equal(hthread[SIGUSR1], w) != 0);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void read_interrupted(int flags)
{
    read_interrupted_si(flags, -1);
}

/* siginterrupt(sig, 1) takes SA_RESTART away, siginterrupt(sig, 0) gives
 * it: what the next interrupted read does shows it. */
DIFF_CASE(signal, siginterrupt_1_makes_a_restarting_handler_interrupt_a_read)
{
    read_interrupted_si(SA_RESTART, 1);
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    diff_out("SA_RESTART after siginterrupt(1): %d", (sa.sa_flags & SA_RESTART) != 0);
}

DIFF_CASE(signal, siginterrupt_0_makes_a_handler_restart_a_read)
{
    read_interrupted_si(0, 0);
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    diff_out("SA_RESTART after siginterrupt(0): %d", (sa.sa_flags & SA_RESTART) != 0);
}

DIFF_CASE(signal, siginterrupt_of_a_bad_signal_is_einval)
{
    CALL("siginterrupt(0)", si_call(0, 1));
    CALL("siginterrupt(NSIG)", si_call(NSIG, 1));
}

DIFF_CASE(signal, a_process_signal_interrupts_the_accepting_threads_read)
{
    read_interrupted(0);
}

DIFF_CASE(signal, a_process_signal_restarts_the_accepting_threads_read_under_sa_restart)
{
    read_interrupted(SA_RESTART);
}

/* ------------------------------------------------------------ sigwait */

DIFF_CASE(signal, sigwait_takes_a_pending_signal)
{
    block(SIGUSR1);
    raise(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    int sig = 0;
    CALL("sigwait", sigwait(&s, &sig));
    diff_out("sig %s, pending after %d", signame(sig), is_pending(SIGUSR1));
}

static void *sigwait_once(void *arg)
{
    sigset_t s = set_of(SIGTERM);
    int sig = 0;
    int r = sigwait(&s, &sig);
    *(int *)arg = r == 0 ? sig : -r;
    return NULL;
}

DIFF_CASE(signal, a_thread_in_sigwait_receives_sigterm_instead_of_dying)
{
    block(SIGTERM);
    int got = 0;
    pthread_t w = spawn(sigwait_once, &got);
    ms(50);
    kill(getpid(), SIGTERM);
    pthread_join(w, NULL);
    diff_out("sigwait got %s", signame(got));
}

static volatile int daemon_stop, reloads;

static void *daemon_worker(void *arg)
{
    (void)arg;
    int turns = 0;
    while (!daemon_stop) {
        ms(2);
        turns++;
    }
    diff_out("worker: TERM still blocked %d, ran %d", is_blocked(SIGTERM), turns > 0);
    return NULL;
}

static void *daemon_signal_thread(void *arg)
{
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGHUP);
    for (;;) {
        int sig = 0;
        if (sigwait(&s, &sig) != 0)
            break;
        if (sig == SIGHUP) {
            reloads++;
            continue;
        }
        diff_out("signal thread: %s after %d reloads", signame(sig), (int)reloads);
        daemon_stop = 1;
        break;
    }
    return NULL;
}

DIFF_CASE(signal, a_daemons_sigwait_thread_handles_sighup_then_sigterm)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_t w1 = spawn(daemon_worker, NULL), w2 = spawn(daemon_worker, NULL);
    pthread_t st = spawn(daemon_signal_thread, NULL);
    ms(30);
    kill(getpid(), SIGHUP);
    ms(30);
    kill(getpid(), SIGHUP);
    ms(30);
    kill(getpid(), SIGTERM);
    pthread_join(st, NULL);
    pthread_join(w1, NULL);
    pthread_join(w2, NULL);
    diff_out("main: reloads %d, pending TERM %d", (int)reloads, is_pending(SIGTERM));
}

static volatile int waiter_count;

static void *usr1_waiter(void *arg)
{
    (void)arg;
    sigset_t s = set_of(SIGUSR1);
    int sig = 0;
    if (sigwait(&s, &sig) == 0 && sig == SIGUSR1)
        __atomic_add_fetch(&waiter_count, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

DIFF_CASE(signal, three_sigwait_threads_share_three_signals_one_each)
{
    block(SIGUSR1);
    pthread_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = spawn(usr1_waiter, NULL);
    ms(30);
    for (int i = 0; i < 3; i++) {
        kill(getpid(), SIGUSR1);
        for (int k = 0; k < 2000 && waiter_count < i + 1; k++)
            ms(1);
        diff_out("after signal %d: %d waiters woke", i + 1, waiter_count);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(w[i], NULL);
    diff_out("pending after %d", is_pending(SIGUSR1));
}

static void *usr1_waiter_flag(void *arg)
{
    sigset_t s = set_of(SIGUSR1);
    int sig = 0;
    if (sigwait(&s, &sig) == 0)
        *(int *)arg = sig;
    return NULL;
}

DIFF_CASE(signal, two_waiters_and_one_signal_wake_exactly_one)
{
    block(SIGUSR1);
    int r[2] = { 0, 0 };
    pthread_t a = spawn(usr1_waiter_flag, &r[0]);
    pthread_t b = spawn(usr1_waiter_flag, &r[1]);
    ms(30);
    kill(getpid(), SIGUSR1);
    ms(100);
    diff_out("woken: %d", (r[0] == SIGUSR1) + (r[1] == SIGUSR1));
    pthread_kill(r[0] ? b : a, SIGUSR1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    diff_out("both got USR1: %d", r[0] == SIGUSR1 && r[1] == SIGUSR1);
}

DIFF_CASE(signal, sigwaitinfo_reports_si_user_and_the_senders_pid)
{
    block(SIGUSR1);
    kill(getpid(), SIGUSR1);
    siginfo_t si;
    sigset_t s = set_of(SIGUSR1);
    CALL("sigwaitinfo", sigwaitinfo(&s, &si));
    diff_out("signo %s code SI_USER %d pid ok %d", signame(si.si_signo),
             si.si_code == SI_USER, si.si_pid == getpid());
}

DIFF_CASE(signal, sigwaitinfo_after_raise_reports_si_tkill)
{
    block(SIGUSR2);
    raise(SIGUSR2);
    siginfo_t si;
    sigset_t s = set_of(SIGUSR2);
    CALL("sigwaitinfo", sigwaitinfo(&s, &si));
    diff_out("signo %s SI_TKILL %d pid ok %d", signame(si.si_signo), si.si_code == SI_TKILL,
             si.si_pid == getpid());
}

DIFF_CASE(signal, sigqueue_value_reaches_sigwaitinfo)
{
    block(SIGUSR1);
    union sigval v = { .sival_int = 42 };
    CALL("sigqueue", sigqueue(getpid(), SIGUSR1, v));
    siginfo_t si;
    sigset_t s = set_of(SIGUSR1);
    CALL("sigwaitinfo", sigwaitinfo(&s, &si));
    diff_out("SI_QUEUE %d value %d", si.si_code == SI_QUEUE, si.si_value.sival_int);
}

DIFF_CASE(signal, sigtimedwait_times_out_with_eagain)
{
    block(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    struct timespec ts = { 0, 80 * 1000000 };
    int64_t t0 = diff_now();
    CALL("sigtimedwait(80ms)", sigtimedwait(&s, NULL, &ts));
    DIFF_TOOK("sigtimedwait", t0, 75, 3000);
}

DIFF_CASE(signal, sigtimedwait_with_zero_timeout_polls)
{
    block(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    struct timespec ts = { 0, 0 };
    CALL("sigtimedwait(0) empty", sigtimedwait(&s, NULL, &ts));
    raise(SIGUSR1);
    CALL("sigtimedwait(0) pending", sigtimedwait(&s, NULL, &ts));
}

DIFF_CASE(signal, sigtimedwait_with_a_bad_nsec_is_einval)
{
    block(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    struct timespec ts = { 0, 1000000000 };
    CALL("sigtimedwait(nsec=1e9)", sigtimedwait(&s, NULL, &ts));
    struct timespec neg = { 0, -1 };
    CALL("sigtimedwait(nsec=-1)", sigtimedwait(&s, NULL, &neg));
}

DIFF_CASE(signal, sigtimedwait_with_a_negative_second_is_einval)
{
    block(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    struct timespec ts = { -1, 0 };
    CALL("sigtimedwait(sec=-1)", sigtimedwait(&s, NULL, &ts));
}

DIFF_CASE(signal, sigtimedwait_is_interrupted_by_a_handled_signal)
{
    handle(SIGALRM, SA_RESTART);
    block(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    struct timespec ts = { 2, 0 };
    int64_t t0 = diff_now();   /* before the alarm, never after */
    diff_alarm_ms(50);
    CALL("sigtimedwait(2s)", sigtimedwait(&s, NULL, &ts));
    DIFF_TOOK("sigtimedwait", t0, 40, 1500);
    diff_out("alarm handler ran %d", (int)hits[SIGALRM]);
}

DIFF_CASE(signal, sigwait_is_not_interrupted_by_a_handled_signal)
{
    handle(SIGALRM, 0);
    block(SIGUSR1);
    struct later l = { .delay_ms = 150, .sig = SIGUSR1, .count = 1, .write_fd = -1 };
    pthread_t t = send_later(&l);
    diff_alarm_ms(50);
    sigset_t s = set_of(SIGUSR1);
    int sig = 0;
    CALL("sigwait", sigwait(&s, &sig));
    diff_out("sig %s, alarm handler ran %d", signame(sig), (int)hits[SIGALRM]);
    pthread_join(t, NULL);
}

DIFF_CASE(signal, realtime_signals_queue_and_come_lowest_first)
{
    int lo = SIGRTMIN, hi = SIGRTMIN + 1;
    block(lo);
    block(hi);
    sigqueue(getpid(), hi, (union sigval){ .sival_int = 1 });
    sigqueue(getpid(), lo, (union sigval){ .sival_int = 2 });
    sigqueue(getpid(), lo, (union sigval){ .sival_int = 3 });
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, lo);
    sigaddset(&s, hi);
    struct timespec zero = { 0, 0 };
    for (int i = 0; i < 4; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = sigtimedwait(&s, &si, &zero);
        diff_out("take %d: %s value %d", i, r < 0 ? diff_errname(errno)
                 : r == lo ? "RTMIN" : "RTMIN+1", r < 0 ? 0 : si.si_value.sival_int);
    }
}

DIFF_CASE(signal, sigwait_takes_the_lowest_numbered_standard_signal_first)
{
    block(SIGUSR1);
    block(SIGUSR2);
    raise(SIGUSR2);
    raise(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    sigaddset(&s, SIGUSR2);
    int a = 0, b = 0;
    sigwait(&s, &a);
    sigwait(&s, &b);
    diff_out("first %s then %s", signame(a), signame(b));
}

DIFF_CASE(signal, sigwait_for_a_signal_sent_to_another_thread_does_not_see_it)
{
    block(SIGUSR1);
    pthread_t w = spawn_quiet(report_mask, NULL);
    pthread_join(w, NULL);
    raise(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    struct timespec zero = { 0, 0 };
    CALL("sigtimedwait(0) own", sigtimedwait(&s, NULL, &zero));
    CALL("sigtimedwait(0) again", sigtimedwait(&s, NULL, &zero));
}

/* ----------------------------------------------------------- signalfd */

DIFF_CASE(signal, signalfd_reads_a_blocked_pending_signal)
{
    block(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    int fd = signalfd(-1, &s, SFD_CLOEXEC);
    kill(getpid(), SIGUSR1);
    struct signalfd_siginfo si;
    CALL("read", read(fd, &si, sizeof si));
    diff_out("ssi_signo %s SI_USER %d", signame((int)si.ssi_signo), si.ssi_code == SI_USER);
    close(fd);
}

static void *signalfd_reader(void *arg)
{
    int fd = *(int *)arg;
    struct signalfd_siginfo si;
    errno = 0;
    long r = read(fd, &si, sizeof si);
    diff_out("reader: ret=%ld errno=%s signo %s", r, diff_errname(errno),
             r > 0 ? signame((int)si.ssi_signo) : "-");
    return NULL;
}

DIFF_CASE(signal, a_thread_blocked_reading_a_signalfd_gets_the_signal)
{
    block(SIGUSR2);
    sigset_t s = set_of(SIGUSR2);
    int fd = signalfd(-1, &s, SFD_CLOEXEC);
    pthread_t w = spawn(signalfd_reader, &fd);
    ms(50);
    kill(getpid(), SIGUSR2);
    pthread_join(w, NULL);
    close(fd);
}

DIFF_CASE(signal, an_empty_nonblocking_signalfd_is_eagain)
{
    block(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    int fd = signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
    struct signalfd_siginfo si;
    CALL("read", read(fd, &si, sizeof si));
    close(fd);
}

DIFF_CASE(signal, signalfd_sees_a_raise_while_blocked)
{
    block(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    int fd = signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
    raise(SIGUSR1);
    struct signalfd_siginfo si;
    CALL("read", read(fd, &si, sizeof si));
    diff_out("SI_TKILL %d", si.ssi_code == SI_TKILL);
    close(fd);
}

DIFF_CASE(signal, poll_on_a_signalfd_wakes_when_the_signal_comes)
{
    block(SIGUSR1);
    sigset_t s = set_of(SIGUSR1);
    int fd = signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
    struct later l = { .delay_ms = 50, .sig = SIGUSR1, .count = 1, .write_fd = -1 };
    pthread_t t = send_later(&l);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int64_t t0 = diff_now();
    CALL("poll", poll(&p, 1, 3000));
    DIFF_TOOK("poll", t0, 40, 2000);
    diff_out("revents POLLIN %d", (p.revents & POLLIN) != 0);
    pthread_join(t, NULL);
    close(fd);
}

/* -------------------------------------------------------- pthread_kill */

static void *sleeper(void *arg)
{
    struct rd *x = arg;
    struct timespec ts = { 2, 0 };
    int64_t t0 = diff_now();
    errno = 0;
    x->r = nanosleep(&ts, NULL);
    x->e = errno;
    x->quick = diff_now() - t0 < 1500 * 1000000LL;
    return NULL;
}

DIFF_CASE(signal, pthread_kill_runs_the_handler_in_the_target_thread)
{
    handle(SIGUSR1, 0);
    struct rd x = { 0, 0, 0, 0 };
    pthread_t t = spawn(sleeper, &x);
    ms(30);
    CALL("pthread_kill", pthread_kill(t, SIGUSR1));
    pthread_join(t, NULL);
    diff_out("hits %d, in the target %d, not here %d", (int)hits[SIGUSR1],
             pthread_equal(hthread[SIGUSR1], t) != 0,
             !pthread_equal(hthread[SIGUSR1], pthread_self()));
    diff_out("target's nanosleep: ret=%ld errno=%s quick %d", x.r, diff_errname(x.e), x.quick);
}

DIFF_CASE(signal, pthread_kill_interrupts_the_targets_sleep_even_with_sa_restart)
{
    handle(SIGUSR1, SA_RESTART);
    struct rd x = { 0, 0, 0, 0 };
    pthread_t t = spawn(sleeper, &x);
    ms(30);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    diff_out("target's nanosleep: ret=%ld errno=%s quick %d", x.r, diff_errname(x.e), x.quick);
}

static void *plain_reader(void *arg)
{
    struct rd *x = arg;
    char c;
    errno = 0;
    x->r = read(pipefd[0], &c, 1);
    x->e = errno;
    return NULL;
}

static void kill_reader(int flags)
{
    handle(SIGUSR2, flags);
    if (pipe(pipefd) < 0)
        return;
    struct rd x = { 0, 0, 0, 0 };
    pthread_t t = spawn(plain_reader, &x);
    ms(30);
    pthread_kill(t, SIGUSR2);
    ms(50);
    if (write(pipefd[1], "x", 1) != 1)
        diff_out("write failed");
    pthread_join(t, NULL);
    diff_out("read: ret=%ld errno=%s; handler in target %d", x.r, diff_errname(x.e),
             pthread_equal(hthread[SIGUSR2], t) != 0);
    close(pipefd[0]);
    close(pipefd[1]);
}

DIFF_CASE(signal, pthread_kill_makes_the_targets_pipe_read_fail_with_eintr)
{
    kill_reader(0);
}

DIFF_CASE(signal, pthread_kill_lets_the_targets_pipe_read_restart_under_sa_restart)
{
    kill_reader(SA_RESTART);
}

static void *block_wait_unblock(void *arg)
{
    (void)arg;
    block(SIGUSR1);
    step = 1;
    while (step < 2)
        ms(1);
    diff_out("target: pending %d, hits %d", is_pending(SIGUSR1), (int)hits[SIGUSR1]);
    unblock(SIGUSR1);
    diff_out("target after unblock: hits %d, in me %d", (int)hits[SIGUSR1],
             pthread_equal(hthread[SIGUSR1], pthread_self()) != 0);
    return NULL;
}

DIFF_CASE(signal, pthread_kill_of_a_blocked_signal_waits_for_the_target_to_unblock_it)
{
    handle(SIGUSR1, 0);
    pthread_t t = spawn(block_wait_unblock, NULL);
    while (step < 1)
        ms(1);
    pthread_kill(t, SIGUSR1);
    diff_out("sender: pending here %d, hits %d", is_pending(SIGUSR1), (int)hits[SIGUSR1]);
    step = 2;
    pthread_join(t, NULL);
}

static void *idle_until_stop(void *arg)
{
    (void)arg;
    while (!worker_stop)
        ms(1);
    return NULL;
}

DIFF_CASE(signal, pthread_kill_with_signal_zero_checks_the_thread)
{
    pthread_t t = spawn(idle_until_stop, NULL);
    CALL("pthread_kill(t, 0)", pthread_kill(t, 0));
    worker_stop = 1;
    pthread_join(t, NULL);
    CALL("pthread_kill(self, 0)", pthread_kill(pthread_self(), 0));
}

DIFF_CASE(signal, pthread_kill_with_a_bad_signal_is_einval)
{
    CALL("pthread_kill(self, 999)", pthread_kill(pthread_self(), 999));
    CALL("pthread_kill(self, -1)", pthread_kill(pthread_self(), -1));
}

static void *info_target(void *arg)
{
    (void)arg;
    while (!hits[SIGUSR1])
        ms(1);
    return NULL;
}

DIFF_CASE(signal, pthread_kills_siginfo_is_si_tkill_from_this_process)
{
    handle_info(SIGUSR1, 0);
    pthread_t t = spawn(info_target, NULL);
    ms(20);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    diff_out("SI_TKILL %d pid ok %d in target %d", hcode[SIGUSR1] == SI_TKILL,
             hpid_ok[SIGUSR1], pthread_equal(hthread[SIGUSR1], t) != 0);
}

DIFF_CASE(signal, pthread_kill_to_a_finished_joined_thread_is_not_run)
{
    handle(SIGUSR1, 0);
    pthread_t t = spawn(report_mask, NULL);
    pthread_join(t, NULL);
    diff_out("hits %d", (int)hits[SIGUSR1]);
    pthread_kill(pthread_self(), SIGUSR1);
    diff_out("self: hits %d", (int)hits[SIGUSR1]);
}

/* ------------------------------------------------------------- raise */

DIFF_CASE(signal, raise_runs_the_handler_before_it_returns_in_the_caller)
{
    handle(SIGUSR1, 0);
    CALL("raise", raise(SIGUSR1));
    diff_out("hits %d, in the caller %d", (int)hits[SIGUSR1],
             pthread_equal(hthread[SIGUSR1], pthread_self()) != 0);
}

DIFF_CASE(signal, raise_of_a_blocked_signal_is_pending_until_unblocked)
{
    handle(SIGUSR1, 0);
    block(SIGUSR1);
    CALL("raise", raise(SIGUSR1));
    diff_out("pending %d hits %d", is_pending(SIGUSR1), (int)hits[SIGUSR1]);
    unblock(SIGUSR1);
    diff_out("pending %d hits %d", is_pending(SIGUSR1), (int)hits[SIGUSR1]);
}

DIFF_CASE(signal, raise_of_sigterm_with_the_default_action_kills)
{
    signal(SIGTERM, SIG_DFL);
    raise(SIGTERM);
    diff_out("still alive");
}

DIFF_CASE(signal, raise_of_an_ignored_signal_does_nothing)
{
    signal(SIGUSR1, SIG_IGN);
    CALL("raise", raise(SIGUSR1));
    diff_out("pending %d", is_pending(SIGUSR1));
}

DIFF_CASE(signal, raise_with_a_bad_signal_is_einval)
{
    CALL("raise(999)", raise(999));
}

static void *raiser(void *arg)
{
    (void)arg;
    raise(SIGUSR2);
    return NULL;
}

DIFF_CASE(signal, raise_in_a_thread_runs_the_handler_in_that_thread)
{
    handle(SIGUSR2, 0);
    pthread_t t = spawn(raiser, NULL);
    pthread_join(t, NULL);
    diff_out("hits %d, in the thread %d", (int)hits[SIGUSR2],
             pthread_equal(hthread[SIGUSR2], t) != 0);
}

/* ------------------------------------------------------ handler flags */

DIFF_CASE(signal, sa_resethand_restores_the_default_after_one_delivery)
{
    handle(SIGUSR1, SA_RESETHAND);
    raise(SIGUSR1);
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    diff_out("hits %d, default now %d", (int)hits[SIGUSR1], now.sa_handler == SIG_DFL);
}

DIFF_CASE(signal, sa_resethand_then_a_second_signal_kills)
{
    handle(SIGUSR1, SA_RESETHAND);
    raise(SIGUSR1);
    diff_out("hits %d", (int)hits[SIGUSR1]);
    raise(SIGUSR1);
    diff_out("still alive");
}

static void on_reenter(int sig)
{
    depth++;
    if (depth > max_depth)
        max_depth = depth;
    hits[sig]++;
    if (hits[sig] == 1)
        raise(sig);
    depth--;
}

static void reenter(int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_reenter;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    diff_out("hits %d, deepest nesting %d", (int)hits[SIGUSR1], max_depth);
}

DIFF_CASE(signal, sa_nodefer_lets_the_handler_interrupt_itself)
{
    reenter(SA_NODEFER);
}

DIFF_CASE(signal, without_sa_nodefer_the_signal_waits_for_the_handler_to_return)
{
    reenter(0);
}

DIFF_CASE(signal, the_handlers_own_signal_is_blocked_inside_it)
{
    handle(SIGUSR1, 0);
    raise(SIGUSR1);
    diff_out("inside: USR1 blocked %d; after: %d", hmask_self[SIGUSR1], is_blocked(SIGUSR1));
}

DIFF_CASE(signal, sa_mask_is_added_during_the_handler_only)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    diff_out("inside: USR2 blocked %d; after: %d", hmask_usr2[SIGUSR1], is_blocked(SIGUSR2));
}

static void on_block_int(int sig)
{
    hits[sig]++;
    block(SIGINT);
}

DIFF_CASE(signal, a_mask_change_inside_a_handler_is_undone_on_return)
{
    signal(SIGUSR1, on_block_int);
    raise(SIGUSR1);
    diff_out("hits %d, INT blocked after %d", (int)hits[SIGUSR1], is_blocked(SIGINT));
}

DIFF_CASE(signal, sa_mask_applies_in_a_pthread_kill_target)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t = spawn(info_target, NULL);
    ms(20);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    diff_out("in target %d: USR1 blocked %d USR2 blocked %d",
             pthread_equal(hthread[SIGUSR1], t) != 0, hmask_self[SIGUSR1],
             hmask_usr2[SIGUSR1]);
}

DIFF_CASE(signal, kill_to_self_gives_si_user_and_our_pid)
{
    handle_info(SIGUSR1, 0);
    kill(getpid(), SIGUSR1);
    wait_hits(SIGUSR1, 1, 2000);
    diff_out("SI_USER %d pid ok %d here %d", hcode[SIGUSR1] == SI_USER, hpid_ok[SIGUSR1],
             pthread_equal(hthread[SIGUSR1], pthread_self()) != 0);
}

DIFF_CASE(signal, sigaction_reports_the_programs_own_handler_and_flags)
{
    struct sigaction sa, got;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sa.sa_flags = SA_RESTART | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR1, NULL, &got);
    diff_out("handler same %d SA_RESTART %d SA_NODEFER %d SA_SIGINFO %d mask INT %d",
             got.sa_handler == on_sig, (got.sa_flags & SA_RESTART) != 0,
             (got.sa_flags & SA_NODEFER) != 0, (got.sa_flags & SA_SIGINFO) != 0,
             sigismember(&got.sa_mask, SIGINT));
}

/* ------------------------------------ SA_RESTART on interrupted calls */

static void *quiet_writer(void *arg)
{
    ms(150);
    if (write(*(int *)arg, "x", 1) != 1)
        diff_out("write failed");
    return NULL;
}

static void alarm_read(int flags)
{
    handle(SIGALRM, flags);
    int p[2];
    if (pipe(p) < 0)
        return;
    pthread_t w = spawn_quiet(quiet_writer, &p[1]);
    diff_alarm_ms(50);
    char c;
    int64_t t0 = diff_now();
    CALL("read", read(p[0], &c, 1));
    DIFF_TOOK("read", t0, 40, 2000);
    diff_out("handler ran %d", (int)hits[SIGALRM]);
    pthread_join(w, NULL);
    close(p[0]);
    close(p[1]);
}

DIFF_CASE(signal, an_alarm_interrupts_a_pipe_read_without_sa_restart)
{
    alarm_read(0);
}

DIFF_CASE(signal, an_alarm_restarts_a_pipe_read_with_sa_restart)
{
    alarm_read(SA_RESTART);
}

DIFF_CASE(signal, an_alarm_interrupts_poll_even_with_sa_restart)
{
    handle(SIGALRM, SA_RESTART);
    int p[2];
    if (pipe(p) < 0)
        return;
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    diff_alarm_ms(50);
    CALL("poll", poll(&pf, 1, 2000));
    diff_out("handler ran %d", (int)hits[SIGALRM]);
    close(p[0]);
    close(p[1]);
}

static void alarm_waitpid(int flags)
{
    handle(SIGALRM, flags);
    pid_t pid = fork();
    if (pid == 0) {
        diff_raw_sleep_ms(150);
        _exit(7);
    }
    diff_alarm_ms(50);
    int st = 0;
    errno = 0;
    pid_t r = waitpid(pid, &st, 0);
    int e = errno;
    diff_out("waitpid: %s errno=%s handler ran %d", r == pid ? "child" : r < 0 ? "-1" : "?",
             diff_errname(e), (int)hits[SIGALRM]);
    if (r != pid)
        waitpid(pid, &st, 0);
    diff_out("exit %d", WEXITSTATUS(st));
}

DIFF_CASE(signal, an_alarm_interrupts_waitpid_without_sa_restart)
{
    alarm_waitpid(0);
}

DIFF_CASE(signal, an_alarm_restarts_waitpid_with_sa_restart)
{
    alarm_waitpid(SA_RESTART);
}

DIFF_CASE(signal, an_alarm_interrupts_clock_nanosleep_even_with_no_sa_restart)
{
    handle(SIGALRM, 0);
    int p[2];
    if (pipe(p) < 0)
        return;
    diff_alarm_ms(50);
    struct timespec ts = { 1, 0 };
    CALL("clock_nanosleep", clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL));
    diff_out("handler ran %d", (int)hits[SIGALRM]);
    close(p[0]);
    close(p[1]);
}

/* ------------------------------------------------- sigsuspend, pause */

DIFF_CASE(signal, sigsuspend_returns_eintr_after_the_handler_and_restores_the_mask)
{
    handle(SIGUSR1, SA_RESTART);
    block(SIGUSR1);
    struct later l = { .delay_ms = 50, .sig = SIGUSR1, .count = 1, .write_fd = -1 };
    pthread_t t = send_later(&l);
    sigset_t none = set_of(0);
    CALL("sigsuspend", sigsuspend(&none));
    diff_out("hits %d, USR1 blocked again %d", (int)hits[SIGUSR1], is_blocked(SIGUSR1));
    pthread_join(t, NULL);
}

DIFF_CASE(signal, sigsuspend_with_a_pending_signal_returns_at_once)
{
    handle(SIGUSR1, 0);
    block(SIGUSR1);
    raise(SIGUSR1);
    sigset_t none = set_of(0);
    int64_t t0 = diff_now();
    CALL("sigsuspend", sigsuspend(&none));
    DIFF_TOOK("sigsuspend", t0, -1, 500);
    diff_out("hits %d", (int)hits[SIGUSR1]);
}

static int order[4], norder;

static void on_order(int sig)
{
    if (norder < 4)
        order[norder++] = sig;
}

DIFF_CASE(signal, sigsuspends_mask_holds_a_signal_back_until_it_returns)
{
    signal(SIGUSR1, on_order);
    signal(SIGUSR2, on_order);
    block(SIGUSR1);
    block(SIGUSR2);
    struct later l = { .delay_ms = 50, .sig = SIGUSR2, .count = 1, .write_fd = -1 };
    pthread_t t = send_later(&l);
    ms(100);                       /* USR2 is pending now */
    struct later l2 = { .delay_ms = 30, .sig = SIGUSR1, .count = 1, .write_fd = -1 };
    pthread_t t2 = send_later(&l2);
    sigset_t only2 = set_of(SIGUSR2);
    CALL("sigsuspend(USR2 blocked)", sigsuspend(&only2));
    diff_out("during: %d handled, first %s", norder, signame(order[0]));
    unblock(SIGUSR2);
    diff_out("after unblock: %d handled, second %s", norder, signame(order[1]));
    pthread_join(t, NULL);
    pthread_join(t2, NULL);
}

static void *sigsuspend_thread(void *arg)
{
    (void)arg;
    sigset_t none = set_of(0);
    int r = sigsuspend(&none);
    diff_out("thread's sigsuspend: %d %s, handler here %d", r, diff_errname(errno),
             pthread_equal(hthread[SIGUSR1], pthread_self()) != 0);
    return NULL;
}

DIFF_CASE(signal, sigsuspend_in_a_thread_takes_the_process_signal)
{
    handle(SIGUSR1, 0);
    block(SIGUSR1);
    pthread_t t = spawn(sigsuspend_thread, NULL);
    ms(50);
    kill(getpid(), SIGUSR1);
    pthread_join(t, NULL);
    diff_out("pending here %d", is_pending(SIGUSR1));
}

DIFF_CASE(signal, pause_returns_eintr_after_an_alarm)
{
    handle(SIGALRM, SA_RESTART);
    int64_t t0 = diff_now();   /* before the alarm, never after */
    diff_alarm_ms(50);
    CALL("pause", pause());
    DIFF_TOOK("pause", t0, 40, 2000);
    diff_out("hits %d", (int)hits[SIGALRM]);
}

/* ---------------------------------------------------------- sigpending */

DIFF_CASE(signal, sigpending_is_empty_at_first)
{
    sigset_t p;
    sigfillset(&p);
    CALL("sigpending", sigpending(&p));
    diff_out("USR1 %d TERM %d", sigismember(&p, SIGUSR1), sigismember(&p, SIGTERM));
}

static void *report_pending(void *arg)
{
    (void)arg;
    diff_out("thread: USR1 pending %d, USR2 pending %d", is_pending(SIGUSR1),
             is_pending(SIGUSR2));
    return NULL;
}

DIFF_CASE(signal, a_process_pending_signal_shows_in_every_threads_sigpending)
{
    block(SIGUSR1);
    block(SIGUSR2);
    kill(getpid(), SIGUSR1);
    raise(SIGUSR2);                /* this thread's own */
    pthread_join(spawn(report_pending, NULL), NULL);
    diff_out("here: USR1 %d USR2 %d", is_pending(SIGUSR1), is_pending(SIGUSR2));
}

/* ------------------------------------------- libgreen's own threads */

DIFF_CASE(signal, resolver_threads_never_take_a_process_signal)
{
    handle(SIGUSR1, 0);
    block(SIGUSR1);
    struct addrinfo *ai = NULL;
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
    int r = getaddrinfo("localhost", "80", &hints, &ai);
    diff_out("getaddrinfo ok %d", r == 0);
    if (ai)
        freeaddrinfo(ai);
    for (int i = 0; i < 50; i++)
        kill(getpid(), SIGUSR1);
    ms(50);
    diff_out("hits while blocked %d, pending %d", (int)hits[SIGUSR1], is_pending(SIGUSR1));
    unblock(SIGUSR1);
    diff_out("hits after unblock %d", (int)hits[SIGUSR1]);
}

DIFF_CASE(signal, resolver_threads_never_die_of_a_default_signal)
{
    block(SIGTERM);
    struct addrinfo *ai = NULL;
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
    int r = getaddrinfo("localhost", "80", &hints, &ai);
    diff_out("getaddrinfo ok %d", r == 0);
    if (ai)
        freeaddrinfo(ai);
    for (int i = 0; i < 20; i++) {
        kill(getpid(), SIGTERM);
        ms(2);
    }
    sigset_t s = set_of(SIGTERM);
    int sig = 0;
    CALL("sigwait", sigwait(&s, &sig));
    diff_out("alive, took %s", signame(sig));
}

/* SIGURG: under the shim libgreen's own OS threads accept it whatever
 * the program's threads block (an extra hub's and a solo call's thread
 * use it), so the kernel gives them one that every program thread
 * blocks, and the shim must keep it pending for the process. */

/* Another process sends sig to this one after delay_ms. */
static pid_t kill_from_child(int sig, int delay_ms)
{
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        diff_raw_sleep_ms(delay_ms);
        kill(me, sig);
        _exit(0);
    }
    return pid;
}

/* SIGURG handled and blocked by this thread (and, in the thread places,
 * by every other), sent by another process, which has ended. */
static void sigurg_sent_while_blocked(void)
{
    handle(SIGURG, 0);
    block(SIGURG);
    diff_child_status("sender", kill_from_child(SIGURG, 20));
    ms(30);
}

/* What a sigwait family call took. */
static void say_sigurg_taken(const siginfo_t *si)
{
    diff_out("si_code SI_USER %d, pending after %d, hits %d", si->si_code == SI_USER,
             is_pending(SIGURG), (int)hits[SIGURG]);
}

DIFF_CASE(signal, a_sigurg_every_thread_blocks_stays_pending_until_unblocked)
{
    sigurg_sent_while_blocked();
    diff_out("pending %d hits %d", is_pending(SIGURG), (int)hits[SIGURG]);
    unblock(SIGURG);
    diff_out("pending %d hits %d", is_pending(SIGURG), (int)hits[SIGURG]);
    signal(SIGURG, SIG_DFL);
}

DIFF_CASE(signal, a_sigurg_every_thread_blocks_is_taken_by_a_later_sigwaitinfo)
{
    sigurg_sent_while_blocked();
    sigset_t s = set_of(SIGURG);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CALL("sigwaitinfo", sigwaitinfo(&s, &si));
    say_sigurg_taken(&si);
    signal(SIGURG, SIG_DFL);
}

DIFF_CASE(signal, a_sigurg_every_thread_blocks_is_taken_by_a_zero_timeout_sigtimedwait)
{
    sigurg_sent_while_blocked();
    sigset_t s = set_of(SIGURG);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    struct timespec zero = { 0, 0 };
    CALL("sigtimedwait", sigtimedwait(&s, &si, &zero));
    say_sigurg_taken(&si);
    CALL("sigtimedwait again", sigtimedwait(&s, &si, &zero));
    signal(SIGURG, SIG_DFL);
}

DIFF_CASE(signal, a_sigurg_every_thread_blocks_ends_a_sigwaitinfo_in_progress)
{
    handle(SIGURG, 0);
    block(SIGURG);
    pid_t pid = kill_from_child(SIGURG, 30);
    sigset_t s = set_of(SIGURG);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CALL("sigwaitinfo", sigwaitinfo(&s, &si));
    diff_child_status("sender", pid);
    say_sigurg_taken(&si);
    signal(SIGURG, SIG_DFL);
}

/* Only this thread accepts SIGURG, and it computes without a call: the
 * handler interrupts the loop, as natively (2 s at most). */
DIFF_CASE(signal, a_sigurg_interrupts_the_only_thread_that_accepts_it_while_it_computes)
{
    handle(SIGURG, 0);
    unblock(SIGURG);
    pid_t pid = kill_from_child(SIGURG, 20);
    int64_t t0 = diff_now();
    while (!hits[SIGURG] && diff_now() - t0 < 2000000000)
        ;
    diff_out("handler ran while computing: %d", (int)hits[SIGURG]);
    diff_child_status("sender", pid);
    signal(SIGURG, SIG_DFL);
}

/* ------------------------------------------ more interrupted calls */

static void *quiet_connector(void *arg)
{
    struct sockaddr_in *a = arg;
    ms(150);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)a, sizeof *a) < 0)
        diff_out("connect failed");
    ms(50);
    close(s);
    return NULL;
}

static void alarm_accept(int flags)
{
    handle(SIGALRM, flags);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t n = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &n) < 0)
        diff_out("listener failed");
    pthread_t t = spawn_quiet(quiet_connector, &a);
    diff_alarm_ms(50);
    errno = 0;
    int c = accept(l, NULL, NULL);
    /* errno after a success is the I/O hooks' business (cases_io.c). */
    diff_out("accept: %s errno=%s handler ran %d", c >= 0 ? "fd" : "-1",
             c >= 0 ? "-" : diff_errname(errno), (int)hits[SIGALRM]);
    if (c >= 0)
        close(c);
    pthread_join(t, NULL);
    close(l);
}

DIFF_CASE(signal, an_alarm_interrupts_accept_without_sa_restart)
{
    alarm_accept(0);
}

DIFF_CASE(signal, an_alarm_restarts_accept_with_sa_restart)
{
    alarm_accept(SA_RESTART);
}

static void alarm_recv(int flags)
{
    handle(SIGALRM, flags);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return;
    pthread_t w = spawn_quiet(quiet_writer, &sv[1]);
    diff_alarm_ms(50);
    char c;
    errno = 0;
    long r = recv(sv[0], &c, 1, 0);
    diff_out("recv: ret=%ld errno=%s handler ran %d", r, r < 0 ? diff_errname(errno) : "-",
             (int)hits[SIGALRM]);
    pthread_join(w, NULL);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(signal, an_alarm_interrupts_recv_without_sa_restart)
{
    alarm_recv(0);
}

DIFF_CASE(signal, an_alarm_restarts_recv_with_sa_restart)
{
    alarm_recv(SA_RESTART);
}

static int hpipe[2];

static void on_write_pipe(int sig)
{
    hits[sig]++;
    if (write(hpipe[1], "h", 1) != 1)
        hits[sig] = 100;
}

DIFF_CASE(signal, a_handler_writing_the_pipe_completes_the_restarted_read)
{
    if (pipe(hpipe) < 0)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_write_pipe;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    diff_alarm_ms(50);
    char c = 0;
    CALL("read", read(hpipe[0], &c, 1));
    diff_out("got %c, handler ran %d", c, (int)hits[SIGALRM]);
    close(hpipe[0]);
    close(hpipe[1]);
}

static void on_nap(int sig)
{
    struct timespec ts = { 0, 20 * 1000000 };
    errno = 0;
    int r = nanosleep(&ts, NULL);
    hcode[sig] = r == 0 ? 0 : errno;
    hits[sig]++;
}

DIFF_CASE(signal, a_handler_may_sleep_while_its_thread_waits_in_read)
{
    int p[2];
    if (pipe(p) < 0)
        return;
    signal(SIGALRM, on_nap);
    pthread_t w = spawn_quiet(quiet_writer, &p[1]);
    diff_alarm_ms(50);
    char c;
    long r = read(p[0], &c, 1);
    diff_out("read: ret=%ld", r);
    diff_out("handler ran %d, its nanosleep: %s", (int)hits[SIGALRM],
             diff_errname(hcode[SIGALRM]));
    pthread_join(w, NULL);
    close(p[0]);
    close(p[1]);
}

struct lock_kill {
    pthread_mutex_t m;
    pthread_t target;
};

/* Holds the mutex, signals the thread waiting for it, lets it go later. */
static void *hold_and_signal(void *arg)
{
    struct lock_kill *lk = arg;
    ms(30);
    pthread_kill(lk->target, SIGALRM);
    ms(100);
    pthread_mutex_unlock(&lk->m);
    return NULL;
}

DIFF_CASE(signal, a_handler_may_sleep_while_its_thread_waits_for_a_mutex)
{
    static struct lock_kill lk = { .m = PTHREAD_MUTEX_INITIALIZER };
    signal(SIGALRM, on_nap);
    lk.target = pthread_self();
    pthread_mutex_lock(&lk.m);
    pthread_t h = spawn_quiet(hold_and_signal, &lk);
    /* The holder takes over the lock: a normal mutex may be unlocked by
     * another thread in glibc (no owner check), as the shim allows. */
    CALL("lock (held by the other thread)", pthread_mutex_lock(&lk.m));
    diff_out("handler ran %d, its nanosleep: %s", (int)hits[SIGALRM],
             diff_errname(hcode[SIGALRM]));
    pthread_mutex_unlock(&lk.m);
    pthread_join(h, NULL);
}

static void *exit_after_100ms(void *arg)
{
    (void)arg;
    ms(100);
    return (void *)7L;
}

DIFF_CASE(signal, a_thread_in_pthread_join_runs_the_handler_and_keeps_joining)
{
    handle(SIGUSR1, 0);
    pthread_t w = spawn_quiet(exit_after_100ms, NULL);
    struct later l = { .delay_ms = 30, .sig = SIGUSR1, .count = 1, .write_fd = -1 };
    pthread_t s = send_later(&l);
    void *r = NULL;
    CALL("pthread_join", pthread_join(w, &r));
    diff_out("joined %ld, handler ran %d here %d", (long)r, (int)hits[SIGUSR1],
             pthread_equal(hthread[SIGUSR1], pthread_self()) != 0);
    pthread_join(s, NULL);
}

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static void *hold_mutex_100ms(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&held);
    step = 1;
    ms(100);
    pthread_mutex_unlock(&held);
    return NULL;
}

DIFF_CASE(signal, a_thread_waiting_for_a_mutex_runs_the_handler_and_still_gets_it)
{
    handle(SIGUSR1, SA_RESTART);
    pthread_t w = spawn_quiet(hold_mutex_100ms, NULL);
    while (!step)
        ms(1);
    struct later l = { .delay_ms = 30, .sig = SIGUSR1, .count = 1, .write_fd = -1 };
    pthread_t s = send_later(&l);
    CALL("pthread_mutex_lock", pthread_mutex_lock(&held));
    diff_out("handler ran %d here %d", (int)hits[SIGUSR1],
             pthread_equal(hthread[SIGUSR1], pthread_self()) != 0);
    pthread_mutex_unlock(&held);
    pthread_join(w, NULL);
    pthread_join(s, NULL);
}

DIFF_CASE(signal, two_pending_signals_run_lowest_first_when_unblocked_together)
{
    signal(SIGUSR1, on_order);
    signal(SIGUSR2, on_order);
    sigset_t both = set_of(SIGUSR1);
    sigaddset(&both, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &both, NULL);
    raise(SIGUSR2);
    raise(SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &both, NULL);
    diff_out("%d handled: %s then %s", norder, signame(order[0]), signame(order[1]));
}

DIFF_CASE(signal, pthread_sigqueue_to_self_carries_its_value)
{
    handle_info(SIGUSR1, 0);
    block(SIGUSR1);
    CALL("pthread_sigqueue", pthread_sigqueue(pthread_self(), SIGUSR1,
                                              (union sigval){ .sival_int = 9 }));
    siginfo_t si;
    sigset_t s = set_of(SIGUSR1);
    struct timespec zero = { 0, 0 };
    CALL("sigtimedwait", sigtimedwait(&s, &si, &zero));
    diff_out("SI_QUEUE %d value %d", si.si_code == SI_QUEUE, si.si_value.sival_int);
}

static void *wait_for_queued(void *arg)
{
    (void)arg;
    while (!hits[SIGUSR2])
        ms(1);
    return NULL;
}

DIFF_CASE(signal, pthread_sigqueue_runs_the_handler_in_the_target)
{
    handle_info(SIGUSR2, 0);
    pthread_t t = spawn(wait_for_queued, NULL);
    ms(20);
    CALL("pthread_sigqueue", pthread_sigqueue(t, SIGUSR2, (union sigval){ .sival_int = 5 }));
    pthread_join(t, NULL);
    diff_out("in target %d SI_QUEUE %d", pthread_equal(hthread[SIGUSR2], t) != 0,
             hcode[SIGUSR2] == SI_QUEUE);
}

/* Signals sent to one thread that blocks them: a realtime one is queued
 * every time with its own siginfo, a standard one kept once (the first).
 * The sender is another thread of the process, which does not block them
 * (so the kernel would give them to no one else either). */
static void print_info(const char *label, const siginfo_t *si)
{
    int rel = si->si_signo >= SIGRTMIN ? si->si_signo - SIGRTMIN : -1;
    diff_out("%s: %s rt+%d code %d pid ok %d uid ok %d value %d", label,
             rel < 0 ? signame(si->si_signo) : "RT", rel, si->si_code,
             si->si_pid == getpid(), si->si_uid == getuid(),
             si->si_code == SI_QUEUE ? si->si_value.sival_int : 0);
}

static sigset_t rtq_set(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGRTMIN);
    sigaddset(&s, SIGRTMIN + 1);
    return s;
}

/* In the target thread: block rtq_set(), tell the sender (step 1) and
 * wait until it has sent (step 2). */
static sigset_t rtq_block_until_sent(void)
{
    sigset_t s = rtq_set();
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    step = 1;
    while (step < 2)
        ms(1);
    return s;
}

static void *rtq_take_all(void *arg)
{
    (void)arg;
    sigset_t s = rtq_block_until_sent();
    siginfo_t si;
    struct timespec zero = { 0, 0 };
    int n = 0;
    while (n < 10 && sigtimedwait(&s, &si, &zero) > 0)
        print_info("took", &si), n++;
    diff_out("taken: %d", n);
    return NULL;
}

static void rtq_send(pthread_t t)
{
    pthread_sigqueue(t, SIGRTMIN + 1, (union sigval){ .sival_int = 1 });
    pthread_sigqueue(t, SIGRTMIN, (union sigval){ .sival_int = 2 });
    pthread_kill(t, SIGRTMIN);
    pthread_sigqueue(t, SIGRTMIN, (union sigval){ .sival_int = 3 });
    pthread_kill(t, SIGUSR1);
    pthread_sigqueue(t, SIGUSR1, (union sigval){ .sival_int = 4 });   /* dropped */
}

/* Start the target fn, send it rtq_send's signals once it blocks them,
 * and join it. */
static void rtq_run(void *(*fn)(void *))
{
    step = 0;
    pthread_t t = spawn(fn, NULL);
    while (step < 1)
        ms(1);
    rtq_send(t);
    step = 2;
    pthread_join(t, NULL);
}

DIFF_CASE(signal, realtime_signals_to_a_blocking_thread_queue_with_their_siginfo)
{
    rtq_run(rtq_take_all);
}

static siginfo_t rtq_seen[10];
static volatile int rtq_n;

static void rtq_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    if (rtq_n < 10)
        rtq_seen[rtq_n++] = *si;
}

static void *rtq_unblock(void *arg)
{
    (void)arg;
    sigset_t s = rtq_block_until_sent();
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    int n = rtq_n;
    for (int i = 0; i < n; i++)
        print_info("handled", &rtq_seen[i]);
    diff_out("handled: %d", n);
    return NULL;
}

DIFF_CASE(signal, queued_realtime_signals_run_their_handler_once_each_when_unblocked)
{
    struct sigaction a = { .sa_sigaction = rtq_handler, .sa_flags = SA_SIGINFO };
    sigemptyset(&a.sa_mask);
    sigaction(SIGUSR1, &a, NULL);
    sigaction(SIGRTMIN, &a, NULL);
    sigaction(SIGRTMIN + 1, &a, NULL);
    rtq_n = 0;
    rtq_run(rtq_unblock);
}

/* exec from a thread whose mask differs from the other threads': the new
 * program starts with the calling thread's own mask. The exec'd side (this
 * binary again, without LD_PRELOAD) prints its SigBlk and exits. */
__attribute__((constructor)) static void exec_mask_helper(void)
{
    if (!getenv("DIFF_MASK_HELPER"))
        return;
    char b[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, b, sizeof b - 1);
    b[n > 0 ? n : 0] = 0;
    char *p = strstr(b, "\nSigBlk:");
    unsigned long long m = p ? strtoull(p + 8, NULL, 16) : ~0ULL;
    diff_out("exec'd: blocks USR1 %d USR2 %d, %d signals", (int)(m >> (SIGUSR1 - 1) & 1),
             (int)(m >> (SIGUSR2 - 1) & 1), __builtin_popcountll(m));
    diff_out("end");
    _exit(0);
}

static void *exec_blocking_usr1(void *arg)
{
    (void)arg;
    sigset_t s = set_of(SIGUSR1);
    pthread_sigmask(SIG_SETMASK, &s, NULL);
    char *envp[256];
    int n = 0;
    for (char **e = environ; *e && n < 250; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
            envp[n++] = *e;
    envp[n++] = "DIFF_MASK_HELPER=1";
    envp[n] = NULL;
    char *argv[] = { "diffcases-helper", NULL };
    execve("/proc/self/exe", argv, envp);
    diff_out("execve failed: %s", diff_errname(errno));
    return NULL;
}

DIFF_CASE(signal, exec_from_a_thread_keeps_that_threads_own_mask)
{
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);   /* this thread blocks nothing */
    pthread_join(spawn(exec_blocking_usr1, NULL), NULL);
}

/* A failed exec changes no thread's mask. */
static void *exec_missing(void *arg)
{
    (void)arg;
    block(SIGUSR2);
    char *argv[] = { "none", NULL };
    CALL("execv", execv("/nonexistent/program", argv));
    CALL("execlp", execlp("/nonexistent/program", "none", (char *)NULL));
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    diff_out("after: blocks USR1 %d USR2 %d", sigismember(&cur, SIGUSR1),
             sigismember(&cur, SIGUSR2));
    return NULL;
}

DIFF_CASE(signal, a_failed_exec_leaves_the_masks_alone)
{
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    block(SIGUSR1);
    pthread_join(spawn(exec_missing, NULL), NULL);
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    diff_out("caller: blocks USR1 %d USR2 %d", sigismember(&cur, SIGUSR1),
             sigismember(&cur, SIGUSR2));
}

static void *spin_checking_flag(void *arg)
{
    (void)arg;
    int64_t t0 = diff_now();
    /* No blocking call: natively the alarm interrupts this loop. */
    while (!hits[SIGALRM] && diff_now() - t0 < 3000 * 1000000LL)
        ;
    return NULL;
}

static void *spin_accepting(void *arg)
{
    (void)arg;
    unblock(SIGALRM);
    diff_alarm_ms(50);
    int64_t t0 = diff_now();
    while (!hits[SIGALRM] && diff_now() - t0 < 3000 * 1000000LL)
        ;
    DIFF_TOOK("loop ended", t0, 30, 2000);
    diff_out("spinner: handler here %d", pthread_equal(hthread[SIGALRM], pthread_self()) != 0);
    return NULL;
}

DIFF_CASE(signal, an_alarm_reaches_a_thread_busy_in_a_loop)
{
    handle(SIGALRM, 0);
    block(SIGALRM);
    pthread_join(spawn(spin_accepting, NULL), NULL);
}

DIFF_CASE(signal, an_alarm_for_a_waiting_thread_interrupts_a_busy_loop_elsewhere)
{
    handle(SIGALRM, 0);
    block(SIGALRM);
    pthread_t t = spawn(spin_checking_flag, NULL);   /* inherits the block */
    unblock(SIGALRM);
    int64_t t0 = diff_now();   /* before the alarm, never after */
    diff_alarm_ms(50);
    pthread_join(t, NULL);
    DIFF_TOOK("loop ended", t0, 30, 2000);
    diff_out("handler ran %d here %d", (int)hits[SIGALRM],
             pthread_equal(hthread[SIGALRM], pthread_self()) != 0);
}

static void *unblock_and_end(void *arg)
{
    (void)arg;
    unblock(SIGUSR1);
    return NULL;
}

DIFF_CASE(signal, a_signal_only_an_ended_thread_accepted_stays_pending)
{
    handle(SIGUSR1, 0);
    block(SIGUSR1);
    pthread_join(spawn(unblock_and_end, NULL), NULL);
    kill(getpid(), SIGUSR1);
    ms(30);
    diff_out("hits %d pending %d", (int)hits[SIGUSR1], is_pending(SIGUSR1));
    unblock(SIGUSR1);
    diff_out("after unblock: hits %d", (int)hits[SIGUSR1]);
}

/* ------------------------------------- sigwait and thread-directed signals */

static sigset_t usr1_set;
static volatile int woke[3];

static void *sigwait_slot(void *arg)
{
    int sig = 0;
    if (sigwait(&usr1_set, &sig) == 0 && sig == SIGUSR1)
        woke[(int)(intptr_t)arg]++;
    return NULL;
}

DIFF_CASE(signal, pthread_kill_to_each_of_three_sigwait_threads_wakes_each_once)
{
    sigemptyset(&usr1_set);
    sigaddset(&usr1_set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1_set, NULL);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, sigwait_slot, (void *)(intptr_t)i);
    /* Sent before the threads run, and to threads already waiting. */
    CALL("kill 0", pthread_kill(t[0], SIGUSR1));
    usleep(50000);
    diff_out("after one: %d %d %d", woke[0], woke[1], woke[2]);
    CALL("kill 2", pthread_kill(t[2], SIGUSR1));
    CALL("kill 1", pthread_kill(t[1], SIGUSR1));
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    diff_out("after three: %d %d %d", woke[0], woke[1], woke[2]);
}

DIFF_CASE(signal, sigwaitinfo_takes_a_signal_of_its_set_that_the_thread_left_unblocked)
{
    handle(SIGUSR2, 0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    pid_t p = fork();
    if (p == 0) {
        diff_raw_sleep_ms(100);
        kill(getppid(), SIGUSR2);
        _exit(0);
    }
    siginfo_t si;
    CALL("sigwaitinfo", sigwaitinfo(&s, &si));
    diff_out("handler ran %d", (int)hits[SIGUSR2]);
    waitpid(p, NULL, 0);
}

/* sigaction's old action carries what libc gave the kernel with the
 * handler: on x86-64 its restorer and SA_RESTORER (programs take the
 * restorer from there to install handlers with raw rt_sigaction, as LTP's
 * rt_sigaction tests do). */
static void restorer_probe(int sig)
{
    (void)sig;
}

DIFF_CASE(signal, sigaction_reports_the_restorer_libc_gave_the_kernel)
{
    struct sigaction a = { .sa_handler = restorer_probe }, o;
    sigemptyset(&a.sa_mask);
    sigaction(SIGUSR1, &a, NULL);
    memset(&o, 0, sizeof o);
    sigaction(SIGUSR1, &a, &o);
    diff_out("restorer %s, SA_RESTORER %d, handler ours %d", o.sa_restorer ? "set" : "none",
             (o.sa_flags & 0x04000000) != 0, o.sa_handler == restorer_probe);
    signal(SIGUSR1, SIG_DFL);
}

/* The System V calls (sighold, sigrelse, sigset, sigignore) act on the
 * calling thread's mask and the process's actions as sigprocmask and
 * sigaction do; a held signal stays held while other threads change
 * their own masks (LTP sighold02). */
static volatile sig_atomic_t sysv_hits;
static void sysv_handler(int sig)
{
    (void)sig;
    sysv_hits++;
}

static void *mask_churn(void *arg)
{
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    for (int k = 0; k < 10; k++) {
        pthread_sigmask(SIG_BLOCK, &s, NULL);
        usleep(1000);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    }
    return NULL;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"   /* they are */
DIFF_CASE(signal, sighold_sigrelse_sigset_and_sigignore)
{
    signal(SIGUSR1, sysv_handler);
    sysv_hits = 0;
    CALL("sighold", sighold(SIGUSR1));
    CALL("sighold of 0", sighold(0));
    raise(SIGUSR1);
    pthread_join(diff_spawn(mask_churn, NULL), NULL);
    sigset_t p;
    sigpending(&p);
    diff_out("held: handler ran %d, pending %d", (int)sysv_hits, sigismember(&p, SIGUSR1));
    CALL("sigrelse", sigrelse(SIGUSR1));
    diff_out("released: handler ran %d", (int)sysv_hits);
    sighandler_t h = sigset(SIGUSR2, sysv_handler);
    diff_out("sigset handler: previous %s", h == SIG_DFL ? "SIG_DFL" : "other");
    h = sigset(SIGUSR2, SIG_HOLD);
    diff_out("sigset SIG_HOLD: previous %s", h == sysv_handler ? "the handler" : "other");
    sigset_t m;
    sigprocmask(SIG_BLOCK, NULL, &m);
    diff_out("SIGUSR2 blocked %d", sigismember(&m, SIGUSR2));
    h = sigset(SIGUSR2, SIG_DFL);
    diff_out("sigset SIG_DFL: previous %s", h == SIG_HOLD ? "SIG_HOLD" : "other");
    sigprocmask(SIG_BLOCK, NULL, &m);
    diff_out("SIGUSR2 blocked %d", sigismember(&m, SIGUSR2));
    CALL("sigignore", sigignore(SIGUSR2));
    struct sigaction o;
    sigaction(SIGUSR2, NULL, &o);
    diff_out("SIGUSR2 action %s", o.sa_handler == SIG_IGN ? "SIG_IGN" : "other");
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
}
#pragma GCC diagnostic pop

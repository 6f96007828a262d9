/*
 * prog_futex.c CASE - futex(2) through libc's syscall(), as libstdc++,
 * InnoDB and GLib call it, in a plain pthread program that
 * tests/test_preload_pthread.c runs natively and under the shim and
 * compares. Each case prints key=value lines; the test holds both runs
 * to the same expectations. Cases:
 *   pingpong  two threads (main and a pthread, then two pthreads) hand a
 *             word back and forth 20000 times with FUTEX_WAIT/WAKE, while
 *             a third counts ticks (the shim must not block the hub);
 *   errors    the kernel's answers without waiting: EAGAIN, ETIMEDOUT
 *             (relative, absolute monotonic and realtime), EINVAL
 *             (bitset 0, misaligned word, bad tv_nsec), EFAULT (word,
 *             timeout), ENOSYS (a clock flag on FUTEX_WAKE), a wake of
 *             nobody (0), and errno unchanged by a successful wake;
 *   wakecount five waiters asleep, one FUTEX_WAKE of INT_MAX counts 5;
 *             bitsets: a WAKE_BITSET wakes only matching waiters;
 *             CMP_REQUEUE with the wrong value says EAGAIN;
 *   forkwake  a fork while three threads wait: the child's wake of their
 *             word finds nobody, the parent's wakes all three;
 *   numbers   syscall(SYS_read...) behaves as read...: it parks only
 *             its thread; the system call's conventions are kept;
 *   signals   a handler interrupts a wait: without a timeout it restarts
 *             under SA_RESTART and fails with EINTR without it; with a
 *             timeout it fails with EINTR either way;
 *   plain     a plain OS thread (libc's own pthread_create) and a green
 *             one wake each other through the same word;
 *   shared    a non-private futex in shared memory, waited on by a forked
 *             child's thread and woken by the parent.
 * "hooked" says whether syscall() resolves into libgreen.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../progutil.h"

static long fx(void *w, int op, uint32_t val, const void *ts, void *w2, uint32_t v3)
{
    return syscall(SYS_futex, w, op, val, ts, w2, v3);
}

/* The call's result and errno as "name=RESULT/ERRNO". */
static void report(const char *name, long r)
{
    int e = r < 0 ? errno : 0;
    out("%s=%ld/%s", name, r, e ? strerrorname_np(e) : "0");
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ----------------------------------------------------------- pingpong */

#define ROUNDS 20000
static _Atomic uint32_t turn;
static atomic_int ticking, ticks;

static void play(uint32_t me, uint32_t other, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        uint32_t t;
        while ((t = atomic_load(&turn)) != me)
            fx(&turn, FUTEX_WAIT_PRIVATE, t, NULL, NULL, 0);
        atomic_store(&turn, other);
        fx(&turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}
static void *player_b(void *arg) { (void)arg; play(1, 0, ROUNDS); return NULL; }
static void *player_c(void *arg) { (void)arg; play(0, 1, ROUNDS); return NULL; }
static void *ticker(void *arg)
{
    (void)arg;
    while (atomic_load(&ticking)) {
        atomic_fetch_add(&ticks, 1);
        sched_yield();
    }
    return NULL;
}

static int case_pingpong(void)
{
    pthread_t b, c, tk;
    atomic_store(&ticking, 1);
    pthread_create(&tk, NULL, ticker, NULL);
    long long t0 = mono_ms();
    pthread_create(&b, NULL, player_b, NULL);
    out("threads=%d", os_threads_of(0));     /* main, ticker, player */
    play(0, 1, ROUNDS);                      /* main against a pthread */
    pthread_join(b, NULL);
    atomic_store(&turn, 0);
    pthread_create(&b, NULL, player_b, NULL);
    pthread_create(&c, NULL, player_c, NULL);  /* two pthreads */
    pthread_join(b, NULL);
    pthread_join(c, NULL);
    atomic_store(&ticking, 0);
    pthread_join(tk, NULL);
    out("rounds=%d", 2 * ROUNDS);
    out("ticked=%d", atomic_load(&ticks) > 0);
    out("pingpong_ms=%lld", mono_ms() - t0);
    return 0;
}

/* ------------------------------------------------------------- errors */

static int case_errors(void)
{
    static uint32_t w = 7;
    static uint32_t pair[2];
    struct timespec rel = { 0, 20000000 };      /* 20 ms */
    long long t0 = mono_ms();
    report("wait_other_value", fx(&w, FUTEX_WAIT_PRIVATE, 8, NULL, NULL, 0));
    report("wait_timeout", fx(&w, FUTEX_WAIT_PRIVATE, 7, &rel, NULL, 0));
    out("wait_timeout_waited=%d", mono_ms() - t0 >= 20);
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 20000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    t0 = mono_ms();
    report("bitset_timeout", fx(&w, FUTEX_WAIT_BITSET_PRIVATE, 7, &abs, NULL,
                                FUTEX_BITSET_MATCH_ANY));
    out("bitset_timeout_waited=%d", mono_ms() - t0 >= 15);
    struct timespec past = { 1, 0 };
    report("bitset_past", fx(&w, FUTEX_WAIT_BITSET_PRIVATE, 7, &past, NULL,
                             FUTEX_BITSET_MATCH_ANY));
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_sec += 0;
    abs.tv_nsec += 20000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    report("realtime_timeout", fx(&w, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 7,
                                  &abs, NULL, FUTEX_BITSET_MATCH_ANY));
    report("bitset_zero", fx(&w, FUTEX_WAIT_BITSET_PRIVATE, 7, &rel, NULL, 0));
    report("misaligned", fx((char *)pair + 1, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0));
    struct timespec bad = { 0, 1000000000 };
    report("bad_nsec", fx(&w, FUTEX_WAIT_PRIVATE, 7, &bad, NULL, 0));
    struct timespec neg = { -1, 0 };
    report("negative_timeout", fx(&w, FUTEX_WAIT_PRIVATE, 7, &neg, NULL, 0));
    report("bad_word", fx((void *)16, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0));
    report("bad_timeout", fx(&w, FUTEX_WAIT_PRIVATE, 7, (void *)16, NULL, 0));
    report("wake_realtime_flag", fx(&w, FUTEX_WAKE_PRIVATE | FUTEX_CLOCK_REALTIME, 1,
                                    NULL, NULL, 0));
    errno = 1234;
    long r = fx(&w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    out("wake_nobody=%ld", r);
    out("errno_kept=%d", errno == 1234);
    report("wake_bitset_zero", fx(&w, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0));
    report("cmp_requeue_wrong", fx(&w, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1L, pair, 8));
    report("getpid_passes", syscall(SYS_getpid) == getpid() ? 1 : -1);
    return 0;
}

/* ---------------------------------------------------------- wakecount */

static _Atomic uint32_t gate;
static atomic_int entered, left;

static void *gate_waiter(void *arg)
{
    uint32_t bits = (uint32_t)(uintptr_t)arg;
    atomic_fetch_add(&entered, 1);
    while (atomic_load(&gate) == 0)
        fx(&gate, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, bits);
    atomic_fetch_add(&left, 1);
    return NULL;
}

static void wait_entered(int n)
{
    while (atomic_load(&entered) < n)
        nap_ms(1);
    nap_ms(100);        /* and asleep in the wait */
}

static int case_wakecount(void)
{
    pthread_t t[8];
    for (int i = 0; i < 5; i++)
        pthread_create(&t[i], NULL, gate_waiter, (void *)(uintptr_t)FUTEX_BITSET_MATCH_ANY);
    wait_entered(5);
    atomic_store(&gate, 1);
    out("woke_all=%ld", fx(&gate, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0));
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);
    out("left=%d", atomic_load(&left));

    /* Bitsets: two waiters on bit 1, one on bit 2. */
    atomic_store(&gate, 0);
    atomic_store(&entered, 0);
    atomic_store(&left, 0);
    pthread_create(&t[0], NULL, gate_waiter, (void *)(uintptr_t)1);
    pthread_create(&t[1], NULL, gate_waiter, (void *)(uintptr_t)1);
    pthread_create(&t[2], NULL, gate_waiter, (void *)(uintptr_t)2);
    wait_entered(3);
    out("woke_bit4=%ld", fx(&gate, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 4));
    out("woke_bit2=%ld", fx(&gate, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 2));
    nap_ms(50);
    out("left_after_bit2=%d", atomic_load(&left));   /* it saw gate 0 and waits again */
    atomic_store(&gate, 1);
    out("woke_rest=%ld", fx(&gate, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0));
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    out("left_bits=%d", atomic_load(&left));
    return 0;
}

/* A fork while threads wait: in the child they are gone, and a wake of
 * their word finds nobody (natively: the child's private futexes are its
 * own). */
static int case_forkwake(void)
{
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, gate_waiter, (void *)(uintptr_t)FUTEX_BITSET_MATCH_ANY);
    wait_entered(3);
    pid_t pid = fork();
    if (pid == 0) {
        long r = fx(&gate, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        nap_ms(10);   /* time for a wrongly woken thread to run */
        out("child_woke=%ld", r);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    out("child_status=%d", WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st));
    atomic_store(&gate, 1);
    out("parent_woke=%ld", fx(&gate, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0));
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    out("left=%d", atomic_load(&left));
    return 0;
}

static void *child_ticker(void *arg);

/* ------------------------------------------------------------ numbers */

/* The blocking numbers go to the hooks of their libc names: a
 * syscall(SYS_read) on an empty pipe parks only its thread (a ticker
 * goes on), and the system call's conventions are kept where they differ
 * from libc's (clock_nanosleep's -1/errno, epoll_pwait's sigset size). */
static int pp[2];
static void *late_writer(void *arg)
{
    (void)arg;
    nap_ms(30);
    if (syscall(SYS_write, pp[1], "hello", 5) != 5)
        abort();
    return NULL;
}

static int case_numbers(void)
{
    if (pipe(pp) != 0)
        return 2;
    pthread_t w, tk;
    atomic_store(&ticking, 1);
    pthread_create(&tk, NULL, child_ticker, NULL);
    pthread_create(&w, NULL, late_writer, NULL);
    int t0 = atomic_load(&ticks);
    char b[16] = { 0 };
    report("sys_read", syscall(SYS_read, pp[0], b, sizeof b));
    out("sys_read_bytes=%d", !strcmp(b, "hello"));
    out("ticked_while_reading=%d", atomic_load(&ticks) > t0);
    pthread_join(w, NULL);
    struct timespec ts = { 0, 10000000 };
    long long m0 = mono_ms();
    report("sys_nanosleep", syscall(SYS_nanosleep, &ts, NULL));
    out("sys_nanosleep_waited=%d", mono_ms() - m0 >= 10);
    struct timespec bad = { 0, 2000000000 };
    report("sys_clock_nanosleep_einval", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &bad,
                                                 NULL));
    report("sys_clock_nanosleep", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, NULL));
    report("sys_close_ebadf", syscall(SYS_close, 1000));
    report("sys_epoll_pwait_sigsetsize", syscall(SYS_epoll_pwait, 0, NULL, 1, 0, &bad, 3));
    report("sys_read_ebadf", syscall(SYS_read, 1001, b, 1));
    report("sys_write_wrong_end", syscall(SYS_write, pp[0], "x", 1));
    report("sys_sched_yield", syscall(SYS_sched_yield));
    report("sys_gettid_positive", syscall(SYS_gettid) > 0 ? 1 : -1);
    atomic_store(&ticking, 0);
    pthread_join(tk, NULL);
    return 0;
}

/* ------------------------------------------------------------ signals */

static _Atomic uint32_t never;
static atomic_int handled;
static void on_usr1(int sig) { (void)sig; atomic_fetch_add(&handled, 1); }
static long waiter_result[2];
static int waiter_errno[2];

static void *sig_waiter(void *arg)
{
    int timed = (int)(uintptr_t)arg;
    struct timespec ts = { 1, 0 };
    long r = fx(&never, FUTEX_WAIT_PRIVATE, 0, timed ? &ts : NULL, NULL, 0);
    waiter_result[timed] = r;
    waiter_errno[timed] = r < 0 ? errno : 0;
    return NULL;
}

static void signal_round(int restart, const char *tag)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGUSR1, &sa, NULL);
    for (int timed = 0; timed < 2; timed++) {
        atomic_store(&never, 0);
        int h0 = atomic_load(&handled);
        pthread_t t;
        pthread_create(&t, NULL, sig_waiter, (void *)(uintptr_t)timed);
        nap_ms(50);
        pthread_kill(t, SIGUSR1);
        nap_ms(50);
        /* Still waiting if the signal restarted it: end it with a wake. */
        atomic_store(&never, 1);
        fx(&never, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        pthread_join(t, NULL);
        out("%s_%s=%ld/%s handled=%d", tag, timed ? "timed" : "untimed",
            waiter_result[timed], waiter_errno[timed] ? strerrorname_np(waiter_errno[timed]) : "0",
            atomic_load(&handled) - h0);
    }
}

static int case_signals(void)
{
    signal_round(1, "restart");
    signal_round(0, "norestart");
    return 0;
}

/* -------------------------------------------------------------- plain */

#define PLAIN_ROUNDS 500
static _Atomic uint32_t pw;

/* Round i: the green side stores 2i+1 and wakes; the plain side answers
 * 2i+2 and wakes. Each side waits with FUTEX_WAIT for its value. */
static void wait_for(uint32_t want)
{
    uint32_t v;
    while ((v = atomic_load(&pw)) != want)
        fx(&pw, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void *plain_side(void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < PLAIN_ROUNDS; i++) {
        wait_for(2 * i + 1);
        atomic_store(&pw, 2 * i + 2);
        fx(&pw, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    return NULL;
}

static int case_plain(void)
{
    typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    create_fn create = libc ? (create_fn)dlsym(libc, "pthread_create") : NULL;
    if (!create)
        return 2;
    pthread_t p;
    create(&p, NULL, plain_side, NULL);
    nap_ms(20);           /* the plain thread is asleep in the kernel */
    out("threads=%d", os_threads_of(0));
    int rounds = 0;
    for (uint32_t i = 0; i < PLAIN_ROUNDS; i++) {
        atomic_store(&pw, 2 * i + 1);
        fx(&pw, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        wait_for(2 * i + 2);
        rounds++;
    }
    out("plain_rounds=%d", rounds);
    out("plain_join=%d", pthread_join(p, NULL));
    return 0;
}

/* ------------------------------------------------------------- shared */

static void *child_ticker(void *arg)
{
    (void)arg;
    while (atomic_load(&ticking)) {
        atomic_fetch_add(&ticks, 1);
        nap_ms(1);
    }
    return NULL;
}

static int case_shared(void)
{
    _Atomic uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                               -1, 0);
    if (w == MAP_FAILED)
        return 2;
    atomic_store(w, 0);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t tk;
        atomic_store(&ticking, 1);
        pthread_create(&tk, NULL, child_ticker, NULL);
        while (atomic_load(w) == 0)
            fx((void *)w, FUTEX_WAIT, 0, NULL, NULL, 0);
        atomic_store(&ticking, 0);
        pthread_join(tk, NULL);
        _exit(atomic_load(&ticks) > 10 ? 0 : 3);
    }
    nap_ms(100);
    atomic_store(w, 1);
    fx((void *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
    int st = 0;
    waitpid(pid, &st, 0);
    out("shared_child=%d", WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st));
    return 0;
}

int main(int argc, char **argv)
{
    Dl_info di;
    out("hooked=%d", dladdr((void *)syscall, &di) && di.dli_fname &&
                         strstr(di.dli_fname, "libgreen") != NULL);
    const char *c = argc > 1 ? argv[1] : "";
    if (!strcmp(c, "pingpong"))
        return case_pingpong();
    if (!strcmp(c, "errors"))
        return case_errors();
    if (!strcmp(c, "wakecount"))
        return case_wakecount();
    if (!strcmp(c, "signals"))
        return case_signals();
    if (!strcmp(c, "forkwake"))
        return case_forkwake();
    if (!strcmp(c, "numbers"))
        return case_numbers();
    if (!strcmp(c, "plain"))
        return case_plain();
    if (!strcmp(c, "shared"))
        return case_shared();
    fprintf(stderr, "usage: prog_futex pingpong|errors|wakecount|forkwake|numbers|signals|plain|shared\n");
    return 2;
}

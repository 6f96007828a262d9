/*
 * cases_flock.c - differential cases of file lock waits (see diff.h):
 * flock, fcntl F_SETLKW and F_OFD_SETLKW, lockf F_LOCK and the raw
 * system calls, held by another thread's description or by another
 * process; the other threads run meanwhile; a handler interrupts the wait
 * (EINTR, no lock) or not (SA_RESTART); the kernel's deadlock detection;
 * pthread_cancel of a wait.
 */
#include "diff.h"
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum kind { K_FLOCK, K_POSIX, K_OFD, K_LOCKF, K_SYS_FLOCK, K_SYS_FCNTL, K_N };
static const char *const kname[K_N] = { "flock", "fcntl F_SETLKW", "fcntl F_OFD_SETLKW",
                                        "lockf F_LOCK", "syscall flock", "syscall fcntl" };

static char path[64];

static void name_file(void)
{
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/difflock-%d", (int)getpid());
}

static int open_file(void)
{
    name_file();
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        diff_out("open: %s", diff_errname(errno));
    return fd;
}

static struct flock byte(short type, off_t at)
{
    return (struct flock){ .l_type = type, .l_whence = SEEK_SET, .l_start = at, .l_len = 1 };
}

/* The blocking form of kind on byte 0 (flock: the whole file). */
static int take(enum kind k, int fd)
{
    struct flock fl = byte(F_WRLCK, 0);
    switch (k) {
    case K_FLOCK: return flock(fd, LOCK_EX);
    case K_POSIX: return fcntl(fd, F_SETLKW, &fl);
    case K_OFD: return fcntl(fd, F_OFD_SETLKW, &fl);
    case K_LOCKF:
        lseek(fd, 0, SEEK_SET);
        return lockf(fd, F_LOCK, 1);
    case K_SYS_FLOCK: return (int)syscall(SYS_flock, fd, LOCK_EX);
    case K_SYS_FCNTL: return (int)syscall(SYS_fcntl, fd, F_SETLKW, &fl);
    default: return -1;
    }
}

/* The non-blocking form: 0 granted, -1 busy (or another error). */
static int try_take(enum kind k, int fd)
{
    struct flock fl = byte(F_WRLCK, 0);
    switch (k) {
    case K_FLOCK: case K_SYS_FLOCK: return flock(fd, LOCK_EX | LOCK_NB);
    case K_OFD: return fcntl(fd, F_OFD_SETLK, &fl);
    default: return fcntl(fd, F_SETLK, &fl);
    }
}

static void release(enum kind k, int fd)
{
    struct flock fl = byte(F_UNLCK, 0);
    if (k == K_FLOCK || k == K_SYS_FLOCK)
        flock(fd, LOCK_UN);
    else
        fcntl(fd, k == K_OFD ? F_OFD_SETLK : F_SETLK, &fl);
}

/* A child that takes kind's lock, says so through the pipe, holds it for
 * ms and exits. Returns its pid once it holds the lock. */
static pid_t child_holds(enum kind k, int ms)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int fd = open(path, O_RDWR);
        int r = fd >= 0 ? try_take(k, fd) : -1;
        char c = r == 0 ? 'y' : 'n';
        if (write(p[1], &c, 1) != 1)
            _exit(2);
        diff_raw_sleep_ms(ms);
        _exit(0);
    }
    close(p[1]);
    char c = 'n';
    if (read(p[0], &c, 1) != 1 || c != 'y')
        diff_out("the child could not take the lock");
    close(p[0]);
    return pid;
}

/* From another process: is kind's lock on byte 0 free now? */
static void probe(const char *label, enum kind k)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDWR);
        _exit(fd >= 0 && try_take(k, fd) == 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    diff_out("%s: the lock is %s", label, WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "free" : "held");
}

/* ------------------------------------------------ held inside the process */

struct holder {
    enum kind k;
    atomic_int held;
    int ms;
};

static void *hold_then_release(void *arg)
{
    struct holder *h = arg;
    int fd = open_file();
    int r = take(h->k, fd);
    atomic_store(&h->held, r == 0 ? 1 : -1);
    usleep((useconds_t)h->ms * 1000);
    release(h->k, fd);
    close(fd);
    return NULL;
}

/* Two descriptions of one file, each locked by a thread of the program:
 * flock and OFD locks make the second wait for the first (which must run
 * meanwhile to let go); POSIX locks belong to the process, so the second
 * is granted at once. */
DIFF_CASE(flock, two_descriptions_in_one_process)
{
    const enum kind ks[] = { K_FLOCK, K_OFD, K_POSIX, K_SYS_FLOCK };
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
        struct holder h = { .k = ks[i], .ms = 150 };
        pthread_t tk = diff_ticker_start();
        pthread_t th = diff_spawn(hold_then_release, &h);
        while (!atomic_load(&h.held))
            usleep(1000);
        int fd = open_file();
        int before = diff_ticks();
        int64_t t0 = diff_now();
        WAITED(kname[ks[i]], take(ks[i], fd));
        int during = diff_ticks() - before;
        char label[64];
        snprintf(label, sizeof label, "%s wait", kname[ks[i]]);
        DIFF_TOOK(label, t0, 60, 3000);
        pthread_join(th, NULL);
        diff_ticker_stop(tk);
        diff_out("other threads ran meanwhile: %d", ks[i] == K_POSIX ? -1 : during > 10);
        release(ks[i], fd);
        close(fd);
    }
    unlink(path);
}

/* Another process holds the lock for 200 ms: every kind waits, and the
 * program's other threads go on meanwhile. */
DIFF_CASE(flock, another_process_holds_the_lock)
{
    for (int k = 0; k < K_N; k++) {
        int fd = open_file();
        pid_t pid = child_holds((enum kind)k, 200);
        pthread_t tk = diff_ticker_start();
        int before = diff_ticks();
        int64_t t0 = diff_now();
        WAITED(kname[k], take((enum kind)k, fd));
        int during = diff_ticks() - before;
        char label[64];
        snprintf(label, sizeof label, "%s wait", kname[k]);
        DIFF_TOOK(label, t0, 100, 3000);
        diff_ticker_stop(tk);
        diff_out("other threads ran meanwhile: %d", during > 20);
        diff_child_status("holder", pid);
        probe("after the wait", (enum kind)k);
        release((enum kind)k, fd);
        close(fd);
    }
    unlink(path);
}

/* ------------------------------------------------------------- signals */

/* SIGALRM 100 ms into a wait for a lock another process holds for
 * 500 ms: without SA_RESTART the call fails with EINTR and no lock is
 * left behind; with it the call goes on and gets the lock. */
static void interrupted(int flags)
{
    diff_count_signal(SIGALRM, flags);
    const enum kind ks[] = { K_FLOCK, K_POSIX, K_OFD, K_SYS_FLOCK };
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
        int fd = open_file();
        pid_t pid = child_holds(ks[i], 500);
        diff_signals_take();
        int64_t t0 = diff_now();
        diff_alarm_ms(100);
        CALL(kname[ks[i]], take(ks[i], fd));
        char label[64];
        snprintf(label, sizeof label, "%s returned", kname[ks[i]]);
        DIFF_TOOK(label, t0, 60, 400);
        diff_out("handler ran %d", diff_signals_take());
        diff_child_status("holder", pid);
        probe("then", ks[i]);
        release(ks[i], fd);
        close(fd);
    }
    signal(SIGALRM, SIG_DFL);
    unlink(path);
}

DIFF_CASE(flock, a_handler_interrupts_a_lock_wait)
{
    interrupted(0);
}

DIFF_CASE(flock, sa_restart_lock_waits_go_on)
{
    interrupted(SA_RESTART);
}

/* The same with a SIGURG handler of the program's (SIGURG stops the
 * shim's waits: the program's handler must not see those), then what
 * sigaction says of SIGURG after the waits: the program's action. */
static volatile sig_atomic_t urgs;
static void on_urg(int sig)
{
    (void)sig;
    urgs++;
}

static void say_urg_action(const char *when)
{
    struct sigaction o;
    sigaction(SIGURG, NULL, &o);
    diff_out("SIGURG action %s: %s", when,
             o.sa_handler == SIG_DFL ? "SIG_DFL" : o.sa_handler == SIG_IGN ? "SIG_IGN"
             : o.sa_handler == on_urg ? "the program's" : "another");
}

DIFF_CASE(flock, lock_waits_and_the_programs_sigurg_action)
{
    say_urg_action("at start");
    struct sigaction sa = { .sa_handler = on_urg };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, NULL);
    interrupted(0);
    diff_out("the program's SIGURG handler ran %d times", (int)urgs);
    say_urg_action("with a handler");
    signal(SIGURG, SIG_IGN);
    interrupted(0);
    say_urg_action("ignored");
    signal(SIGURG, SIG_DFL);
    interrupted(SA_RESTART);
    say_urg_action("default");
}

/* Every thread blocks SIGURG; another process sends one while this
 * thread waits for a lock: it stays pending for the process (sigpending
 * shows it), and the handler runs once when the thread unblocks it. */
DIFF_CASE(flock, a_sigurg_every_thread_blocks_stays_pending_during_a_lock_wait)
{
    struct sigaction sa = { .sa_handler = on_urg };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, NULL);
    sigset_t u, old;
    sigemptyset(&u);
    sigaddset(&u, SIGURG);
    pthread_sigmask(SIG_BLOCK, &u, &old);
    urgs = 0;
    int fd = open_file();
    pid_t holder = child_holds(K_FLOCK, 400);
    pid_t me = getpid();
    pid_t sender = fork();
    if (sender == 0) {
        diff_raw_sleep_ms(150);
        kill(me, SIGURG);
        _exit(0);
    }
    WAITED("flock", take(K_FLOCK, fd));
    diff_child_status("sender", sender);
    diff_child_status("holder", holder);
    sigset_t p;
    sigpending(&p);
    diff_out("SIGURG pending: %d, handler ran %d", sigismember(&p, SIGURG), (int)urgs);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    diff_out("after unblocking: handler ran %d", (int)urgs);
    release(K_FLOCK, fd);
    close(fd);
    signal(SIGURG, SIG_DFL);
    unlink(path);
}

/* Two processes that each hold a byte and want the other's: the kernel
 * answers the second request with EDEADLK instead of waiting for ever.
 * The child waits for byte 0 (ours); we then ask for its byte 1. */
DIFF_CASE(flock, posix_deadlock_is_detected)
{
    int fd = open_file();
    struct flock b0 = byte(F_WRLCK, 0), b1 = byte(F_WRLCK, 1);
    CALL("lock byte 0", fcntl(fd, F_SETLK, &b0));
    int p[2];
    if (pipe(p) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        int cfd = open(path, O_RDWR);
        struct flock c1 = byte(F_WRLCK, 1), c0 = byte(F_WRLCK, 0);
        int r = fcntl(cfd, F_SETLK, &c1);
        char c = r == 0 ? 'y' : 'n';
        if (write(p[1], &c, 1) != 1)
            _exit(2);
        r = fcntl(cfd, F_SETLKW, &c0);   /* waits for us */
        _exit(r == 0 ? 0 : 1);
    }
    char c = 'n';
    if (read(p[0], &c, 1) != 1 || c != 'y')
        diff_out("the child could not lock byte 1");
    usleep(100000);                /* the child is asleep on byte 0 */
    CALL("lock byte 1 (F_SETLKW)", fcntl(fd, F_SETLKW, &b1));
    struct flock u = byte(F_UNLCK, 0);
    fcntl(fd, F_SETLK, &u);        /* the child gets byte 0 and exits */
    diff_child_status("child", pid);
    close(p[0]);
    close(p[1]);
    close(fd);
    unlink(path);
}

/* ------------------------------------------------------- cancellation */

struct canc {
    enum kind k;
    atomic_int waiting;
    int ret;
    int fd;
};

static void *wait_then_sleep(void *arg)
{
    struct canc *c = arg;
    int fd = open_file();
    atomic_store(&c->waiting, 1);
    c->ret = take(c->k, fd);       /* F_SETLKW: a cancellation point */
    diff_out("%s returned %d", kname[c->k], c->ret);
    usleep(1000);                  /* a cancellation point */
    diff_out("not cancelled");
    close(fd);
    return NULL;
}

static void *lock_cancelled_at_entry(void *arg)
{
    struct canc *c = arg;
    c->fd = open_file();           /* closed by the joiner: close is a
                                    * cancellation point */
    pthread_cancel(pthread_self());  /* pending, deferred */
    c->ret = take(c->k, c->fd);
    diff_out("%s returned %d", kname[c->k], c->ret);
    return NULL;
}

/* A cancel already pending acts on entry to fcntl F_SETLKW and lockf
 * F_LOCK (cancellation points) even when the lock is free; flock is none
 * and takes the lock. */
DIFF_CASE(flock, a_pending_cancel_acts_on_entry)
{
    const enum kind ks[] = { K_POSIX, K_OFD, K_LOCKF, K_FLOCK, K_SYS_FCNTL };
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
        struct canc c = { .k = ks[i] };
        pthread_t th = diff_spawn(lock_cancelled_at_entry, &c);
        void *res = NULL;
        pthread_join(th, &res);
        diff_out("%s: %s", kname[ks[i]], res == PTHREAD_CANCELED ? "cancelled" : "ended");
        close(c.fd);
    }
    unlink(path);
}

/* pthread_cancel of a thread waiting for a lock another process holds for
 * 300 ms: fcntl's wait is a cancellation point (the thread ends there,
 * without the lock); flock's is not in glibc (it gets the lock, then
 * ends at its next cancellation point, usleep). */
DIFF_CASE(flock, pthread_cancel_of_a_lock_wait)
{
    const enum kind ks[] = { K_POSIX, K_FLOCK };
    name_file();
    int fd = open(path, O_RDWR | O_CREAT, 0600);   /* the file exists */
    close(fd);
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
        pid_t pid = child_holds(ks[i], 300);
        struct canc c = { .k = ks[i] };
        pthread_t th = diff_spawn(wait_then_sleep, &c);
        while (!atomic_load(&c.waiting))
            usleep(1000);
        usleep(50000);
        pthread_cancel(th);
        void *res = NULL;
        pthread_join(th, &res);
        diff_out("%s: %s", kname[ks[i]], res == PTHREAD_CANCELED ? "cancelled" : "ended");
        diff_child_status("holder", pid);
        probe("then", ks[i]);
    }
    unlink(path);
}

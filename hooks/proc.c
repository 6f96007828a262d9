/*
 * proc.c - fork, vfork, waitpid/wait/wait4 and system() for green threads.
 *
 * fork. The real fork; libgreen's pthread_atfork child handler (lifecycle.c)
 * gives the child a working hub: libev rebuilds its epoll set, the timerfd
 * is re-created, the worker pool restarts on next use. As POSIX says, the
 * child has only the calling thread: the other green threads of the
 * forking OS thread are discarded there (locks they held stay locked, as
 * with glibc), and the caller becomes the child's main green thread.
 * Green threads of other OS threads are gone with their OS threads. The
 * program's pthread_atfork handlers run as glibc runs them (prepare in
 * reverse order, parent and child in order). The child's signal
 * bookkeeping is pointed at its own hub (pthread_atfork, so daemon() and
 * other forks inside libc get it too).
 *
 * vfork. A vfork child borrows the parent's memory until it execs, and
 * programs call dup2/close in it: our hooks would then rewrite the parent's
 * descriptor table and wake the parent's green threads. A wrapper cannot
 * call the real vfork either (the child would return through our stack
 * frame, which the parent then reuses). So vfork is exported as fork: the
 * child gets its own copy of everything, which is what a vfork child may
 * assume anyway. posix_spawn is not interposed: glibc's child runs only
 * glibc-internal calls, never our hooks, and the parent waits just for the
 * exec.
 *
 * waitpid/wait/wait4 park only the caller. First a WNOHANG call (one
 * syscall when the child is already done). For one pid we then wait on a
 * pidfd (pidfd_open, Linux 5.3+), readable when the child exits. For "any
 * child" or a process group we wait on pidfds of every child listed in
 * /proc/self/task/TID/children (up to CHILDREN_MAX; re-checking at a
 * backoff up to SAFETY_MAX_NS for children another OS thread forked), and
 * where that is unavailable, and for WUNTRACED/WCONTINUED (which a pidfd
 * does not report), we poll with WNOHANG at a backoff from 1 ms to 20 ms.
 * Waits are interruptible and restart under SA_RESTART (signal(7)), so a
 * program's SIGCHLD handler makes a waiting main thread re-check at once.
 *
 * waitid (P_PID and P_PIDFD waits on a pidfd, the rest polls) and wait3
 * work the same way.
 *
 * system() and pclose() run the real ones on the worker pool (green_offload); only
 * the caller parks. As glibc blocks SIGCHLD in the calling thread, we block
 * it on the caller's OS thread for the duration (counted, for concurrent
 * callers), so that a program's SIGCHLD handler cannot reap the child
 * under system()'s feet on that thread; it runs when system() returns.
 */
#define _GNU_SOURCE
#include "hooks_proc.h"
#include "io.h"
#include "hooks_signal.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>

#define BACKOFF_MIN_NS GREEN_MSEC(1)
#define BACKOFF_MAX_NS GREEN_MSEC(20)
#define CHILDREN_MAX 32               /* pidfds watched by one wait(-1) */
#define SAFETY_MIN_NS GREEN_MSEC(10)  /* re-check period while watching them, */
#define SAFETY_MAX_NS GREEN_MSEC(100) /* doubling up to this */

/* ---------------------------------------------------------------- fork */

/* The child fix-ups (signal bookkeeping, system()'s SIGCHLD block) run
 * from pthread_atfork handlers, so that forks we do not see (daemon(),
 * a direct syscall wrapper in glibc) get them too. */
pid_t green_hook_fork(void)
{
    green__real_init();
    return green__real.fork();
}

pid_t green_hook_vfork(void)
{
    return green_hook_fork();
}

/* clone() as a program calls it (glibc's threads and spawns use its
 * internal __clone, not this). The new task starts with the kernel policy
 * of the OS thread that made it: not a hub's SCHED_BATCH
 * (libgreen/hubpolicy.c); and one that is not a thread of this process
 * shares its open file descriptions (the flag cache, libgreen/fdstate.c). */
int green_hook_clone(int (*fn)(void *), void *stack, int flags, void *arg,
                     pid_t *ptid, void *tls, pid_t *ctid)
{
    green__real_init();
    bool process = !(flags & CLONE_THREAD);
    bool batch = green__hubpolicy_suspend();
    if (process)
        green__fdstate_spawn_begin();
    int r = green__real.clone(fn, stack, flags, arg, ptid, tls, ctid);
    int e = errno;
    if (process)
        green__fdstate_spawn_end();
    green__hubpolicy_resume(batch);
    errno = e;
    return r;
}

/* ---------------------------------------------------------------- exec */

/* The new program starts with the calling thread's own signal mask, as
 * natively, not with the hub's (what every green thread blocks): the
 * caller's is put on the OS thread just before the real exec, and the
 * hub's comes back if the exec fails (hooks/signal.c). Likewise the
 * scheduling policy: SCHED_OTHER, not the hub's SCHED_BATCH
 * (libgreen/hubpolicy.c). glibc's execl,
 * execlp, execle, execv and execvp reach execve inside libc, where no
 * hook sees them, so each form is exported (preload/export_proc.c). */
#define EXEC_WITH_OWN_MASK(call)                                              \
    do {                                                                      \
        uint64_t saved_ = 0;                                                  \
        bool changed_ = green__sig_exec_begin(&saved_);                       \
        bool batch_ = green__hubpolicy_suspend();                             \
        int r_ = (call);                                                      \
        int e_ = errno;                                                       \
        green__hubpolicy_resume(batch_);                                      \
        green__sig_exec_end(changed_, saved_);                                \
        errno = e_;                                                           \
        return r_;                                                            \
    } while (0)

int green_hook_execve(const char *path, char *const argv[], char *const envp[])
{
    EXEC_WITH_OWN_MASK(green__real.execve(path, argv, envp));
}

int green_hook_execv(const char *path, char *const argv[])
{
    EXEC_WITH_OWN_MASK(green__real.execv(path, argv));
}

int green_hook_execvp(const char *file, char *const argv[])
{
    EXEC_WITH_OWN_MASK(green__real.execvp(file, argv));
}

int green_hook_execvpe(const char *file, char *const argv[], char *const envp[])
{
    EXEC_WITH_OWN_MASK(green__real.execvpe(file, argv, envp));
}

int green_hook_fexecve(int fd, char *const argv[], char *const envp[])
{
    EXEC_WITH_OWN_MASK(green__real.fexecve(fd, argv, envp));
}

/* ---------------------------------------------------------------- wait */

static int pidfd_open_once(pid_t pid)
{
#ifdef SYS_pidfd_open
    static atomic_bool unsupported;
    if (atomic_load(&unsupported))
        return -1;
    int fd = (int)green__syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0 && errno == ENOSYS)
        atomic_store(&unsupported, true);
    return green__fd_hide(fd);     /* never one of the program's numbers */
#else
    (void)pid;
    return -1;
#endif
}

static void pidfd_close(int fd)
{
    green__fd_close_hidden(fd);    /* stops its watcher, unmarks, closes */
}

/* Pidfds for the live children of this OS thread, read from
 * /proc/self/task/TID/children (Linux 3.5+, CONFIG_PROC_CHILDREN), at most
 * cap. Returns how many; 0 when the file or pidfd_open is missing. */
static int children_pidfds(int *fds, int cap)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)green__syscall(SYS_gettid));
    int fd = green__real.open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t len = green__real.read(fd, buf, sizeof buf - 1);
    green__real.close(fd);
    int n = 0;
    char *p = buf, *end;
    buf[len > 0 ? len : 0] = 0;
    for (long pid; n < cap && (pid = strtol(p, &end, 10)) > 0; p = end) {
        int pfd = pidfd_open_once((pid_t)pid);
        if (pfd >= 0)
            fds[n++] = pfd;
    }
    return n;
}

/* Park once for "any child" (or a process group): on the pidfds of every
 * child we can see, with a re-check every SAFETY_MAX_NS for children we
 * cannot (forked by another OS thread); 0 when it is time to re-check,
 * or an errno value. May switch. */
static int wait_any_park(int64_t *backoff, bool *use_pidfds)
{
    int fds[CHILDREN_MAX];
    int n = *use_pidfds ? children_pidfds(fds, CHILDREN_MAX) : 0;
    if (!n) {
        *use_pidfds = false;       /* nothing visible: plain polling */
        return -1;
    }
    struct green__fdwait w[CHILDREN_MAX];
    for (int i = 0; i < n; i++)
        w[i] = (struct green__fdwait){ .fd = fds[i], .mask = GREEN_READ };
    if (*backoff < SAFETY_MIN_NS)
        *backoff = SAFETY_MIN_NS;
    int64_t deadline = green_now() + *backoff;
    int code = green__wait_fds(w, n, deadline);
    for (int i = 0; i < n; i++)
        pidfd_close(fds[i]);
    if (*backoff < SAFETY_MAX_NS)
        *backoff *= 2;
    if (code == ETIMEDOUT && green_now() >= deadline)
        code = 0;
    return code;
}

/* Park once until the child may have changed state. Returns 0 (re-check)
 * or an errno value. May switch. */
static int wait_park(int pidfd, bool *pidfd_fired, int64_t *backoff)
{
    if (pidfd >= 0 && !*pidfd_fired) {
        int r = green__wait_fd(pidfd, GREEN_READ, GREEN_FOREVER);
        *pidfd_fired = r > 0;
        return r > 0 ? 0 : -r;
    }
    int64_t deadline = green_now() + *backoff;
    int code = green__park(GREEN_WHY_SLEEP, 0, NULL, deadline);
    if (*backoff < BACKOFF_MAX_NS)
        *backoff *= 2;
    if (code == ETIMEDOUT && green_now() >= deadline)
        code = 0;
    return code;
}

static pid_t wait_slow(pid_t pid, int *status, int options, struct rusage *ru)
{
    int pidfd = -1;
    bool exits_only = !(options & (WUNTRACED | WCONTINUED));
    bool fired = false, tried = false, any_pidfds = exits_only && pid <= 0;
    int64_t backoff = BACKOFF_MIN_NS;
    pid_t r;
    for (;;) {
        r = green__real.wait4(pid, status, options | WNOHANG, ru);
        if (r != 0)
            break;
        if (!tried && pid > 0 && exits_only) {
            tried = true;
            pidfd = pidfd_open_once(pid);
        }
        int code = any_pidfds ? wait_any_park(&backoff, &any_pidfds) : -1;
        if (code < 0)
            code = wait_park(pidfd, &fired, &backoff);
        if (code == EINTR && green__intr_restarts()) {
            green__intr_begin();
            continue;
        }
        if (code == ECANCELED) {
            pidfd_close(pidfd);
            pidfd = -1;
            code = green__cancel_point(code);
        }
        if (code) {
            errno = code;
            r = -1;
            break;
        }
    }
    int e = errno;
    pidfd_close(pidfd);
    errno = e;
    return r;
}

pid_t green_hook_wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_PROC) || (options & WNOHANG))
        return green__real.wait4(pid, status, options, ru);
    green__intr_begin();
    green__cancel_point(0);
    pid_t r = wait_slow(pid, status, options, ru);
    green__intr_end();
    return r;
}

pid_t green_hook_waitpid(pid_t pid, int *status, int options)
{
    return green_hook_wait4(pid, status, options, NULL);
}

pid_t green_hook_wait(int *status)
{
    return green_hook_wait4(-1, status, 0, NULL);
}

pid_t green_hook_wait3(int *status, int options, struct rusage *ru)
{
    return green_hook_wait4(-1, status, options, ru);
}

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* One WNOHANG waitid: 1 when it answered (r set), 0 when nothing is
 * ready yet. */
static int waitid_try(idtype_t type, id_t id, siginfo_t *info, int options, int *r)
{
    info->si_pid = 0;
    *r = green__real.waitid(type, id, info, options | WNOHANG);
    return *r < 0 || info->si_pid != 0;
}

static int waitid_slow(idtype_t type, id_t id, siginfo_t *info, int options)
{
    int own = -1;                  /* a pidfd we opened */
    int fd = -1;                   /* the pidfd we wait on */
    bool fired = false;
    int64_t backoff = BACKOFF_MIN_NS;
    if (!(options & (WSTOPPED | WCONTINUED)))
        fd = type == P_PIDFD ? (int)id
           : type == P_PID ? (own = pidfd_open_once((pid_t)id)) : -1;
    int r;
    while (!waitid_try(type, id, info, options, &r)) {
        int code = wait_park(fd, &fired, &backoff);
        if (code == EINTR && green__intr_restarts()) {
            green__intr_begin();
            continue;
        }
        if (code == ECANCELED) {
            pidfd_close(own);
            own = -1;
            code = green__cancel_point(code);
        }
        if (code) {
            errno = code;
            r = -1;
            break;
        }
    }
    int e = errno;
    pidfd_close(own);
    errno = e;
    return r;
}

int green_hook_waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_PROC) || (options & WNOHANG) || !info)
        return green__real.waitid(type, id, info, options);
    green__intr_begin();
    green__cancel_point(0);
    int r = waitid_slow(type, id, info, options);
    green__intr_end();
    return r;
}

/* -------------------------------------------------------------- system */

struct sys_job {
    atomic_int refs;               /* caller + worker */
    char *cmd;                     /* copy of the command */
    int ret, err;                  /* system()'s result and errno */
    int policy;                    /* the caller's scheduling policy as */
    struct sched_param param;      /* the program sees it (sched.c) */
};

static void sys_unref(struct sys_job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) == 1) {
        free(j->cmd);
        free(j);
    }
}

/* The real system() on the calling OS thread: its child must not inherit
 * a hub's SCHED_BATCH (libgreen/hubpolicy.c; the offload workers are
 * SCHED_OTHER already), and shares the process's descriptions (the flag
 * cache, libgreen/fdstate.c). */
static int system_here(const char *command)
{
    bool batch = green__hubpolicy_suspend();
    green__fdstate_spawn_begin();
    int r = green__real.system(command);
    int e = errno;
    green__fdstate_spawn_end();
    green__hubpolicy_resume(batch);
    errno = e;
    return r;
}

static void *sys_main(void *arg)
{
    struct sys_job *j = arg;
    /* The child inherits the policy of the thread that forks it: on a
     * worker, put the caller's there for the call (a worker runs under
     * SCHED_OTHER, and a caller that set none has that one). Run on the
     * caller's own OS thread (a hub's: the pool could not take the job),
     * the thread has the caller's policy already and keeps it. */
    bool lent = j->policy > 0 && !green__tls_ctx &&
                green__syscall(SYS_sched_setscheduler, 0, j->policy, &j->param) == 0;
    j->ret = system_here(j->cmd);
    j->err = errno;
    if (lent) {
        struct sched_param p = { 0 };
        green__syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &p);
    }
    sys_unref(j);
    return NULL;
}

static int sigchld_blockers;       /* green callers in system() now */
static bool sigchld_was_blocked;   /* SIGCHLD blocked before the first */

static void sigchld_block(void)
{
    if (sigchld_blockers++)
        return;
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    green_hook_sigprocmask(SIG_BLOCK, &s, &old);
    sigchld_was_blocked = sigismember(&old, SIGCHLD);
}

static void sigchld_unblock(void)
{
    if (--sigchld_blockers || sigchld_was_blocked)
        return;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    green_hook_sigprocmask(SIG_UNBLOCK, &s, NULL);
}

/* A fork child has no thread left in system(): undo their SIGCHLD block
 * (the mask is inherited from the forking OS thread). */
static void sigchld_after_fork(void)
{
    if (!sigchld_blockers)
        return;
    sigchld_blockers = 1;
    sigchld_unblock();
}

__attribute__((constructor)) static void proc_register_atfork(void)
{
    pthread_atfork(NULL, NULL, sigchld_after_fork);
    pthread_atfork(NULL, NULL, green__sig_after_fork);
}

/* ---------------------------------------------------------------- pclose
 *
 * pclose waits for the command inside glibc (its internal waitpid, which
 * no hook sees), so it runs on the worker pool like system(). */

struct pclose_job {
    atomic_int refs;               /* caller + worker */
    FILE *f;
    int ret, err;
};

static void pclose_unref(struct pclose_job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) == 1)
        free(j);
}

static void *pclose_main(void *arg)
{
    struct pclose_job *j = arg;
    j->ret = green__real.pclose(j->f);
    j->err = errno;
    pclose_unref(j);
    return NULL;
}

int green_hook_pclose(FILE *f)
{
    if (!GREEN_REAL(pclose)) {
        errno = ENOSYS;
        return -1;
    }
    int mine;
    if (green__stdio_pclose(f, &mine))
        return mine;               /* popen's stream of ours (io_stdio.c) */
    if (!green__hook_on(GREEN_HOOK_PROC) || !f)
        return green__real.pclose(f);
    struct pclose_job *j = calloc(1, sizeof *j);
    if (!j)
        return green__real.pclose(f);
    j->f = f;
    atomic_init(&j->refs, 2);
    int ret, e;
    if (green_offload(pclose_main, j, NULL) == 0) {
        ret = j->ret;
        e = j->err;
    } else if ((e = errno) == ENOMEM || e == EAGAIN) {
        pclose_main(j);            /* never queued: run here */
        ret = j->ret;
        e = j->err;
    } else {
        ret = -1;                  /* killed: the worker still closes f */
    }
    pclose_unref(j);
    if (e == ECANCELED)
        e = green__cancel_point(e);
    errno = e;
    return ret;
}

int green_hook_system(const char *command)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_PROC) || !command)
        return system_here(command);
    struct sys_job *j = calloc(1, sizeof *j);
    if (!j || !(j->cmd = strdup(command))) {
        free(j);
        errno = ENOMEM;
        return -1;
    }
    atomic_init(&j->refs, 2);
    j->policy = green_hook_sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
    if (j->policy > 0 && sched_getparam(0, &j->param) != 0)
        j->policy = 0;
    sigchld_block();
    int ret, e;
    if (green_offload(sys_main, j, NULL) == 0) {
        ret = j->ret;
        e = j->err;
    } else {
        e = errno;
        if (e == ENOMEM || e == EAGAIN) {   /* never queued: run here */
            sys_main(j);
            ret = j->ret;
            e = j->err;
        } else {
            ret = -1;
        }
    }
    sigchld_unblock();
    sys_unref(j);
    if (e == ECANCELED)
        e = green__cancel_point(e);
    errno = e;
    return ret;
}

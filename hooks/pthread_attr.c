/*
 * pthread_attr.c - the attributes of a green pthread: what a
 * pthread_attr_t asks of a new thread (a stack size or a stack, its
 * scheduling; pthread_create reads the detach state itself), names,
 * pthread_getattr_np, the attributes that belong to the OS thread
 * (affinity, CPU clock) and the scheduling attributes. The thread
 * family's essay is at the top of pthread.c.
 *
 * Names. A green thread's name is its own (struct green_thread.name),
 * as a pthread's is its kernel thread's comm: pthread_setname_np and
 * pthread_getname_np, and prctl(PR_SET_NAME / PR_GET_NAME) from the
 * thread itself, which natively is the same comm, read and write it. A
 * new thread starts with its creator's name (the kernel copies comm at
 * clone) and the main thread with the OS thread's comm (hub.c). The
 * hubs' OS threads keep their kernel comm: /proc/PID/task/TID/comm and
 * ps -L show the hubs, not green threads.
 *
 * Invariants. What belongs to one green thread (its name, its stack, its
 * scheduling policy and priority) is kept in its struct green_thread and
 * read back as set; nothing here changes the OS thread on behalf of a
 * green handle. What only an OS thread has (affinity, a CPU clock) is
 * the caller's OS thread's, shared by every green thread of its hub. A
 * handle that is the caller's real pthread_t goes to libc untouched.
 *
 * Rejected: applying a green thread's scheduling attributes to the hub's
 * OS thread (the kernel does not schedule green threads; it would move
 * every green thread of the hub for one thread's wish); giving a thread
 * created with a default attr libc's default stack size (8 MiB each,
 * where the green default serves).
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include <sys/syscall.h>
#include <fcntl.h>
#include "io.h"
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

/* ------------------------------------------- attributes of a new thread */

/* Stack size asked for by attr: 0 for "the default" (no attr, or the size
 * a fresh attr reports), so that threads that do not care get the green
 * default rather than 8 MiB each. */
size_t green__pt_attr_stack_size(const pthread_attr_t *attr)
{
    size_t want = 0, dflt = 0;
    if (!attr || pthread_attr_getstacksize(attr, &want) != 0)
        return 0;
    pthread_attr_t fresh;
    if (pthread_attr_init(&fresh) == 0) {
        pthread_attr_getstacksize(&fresh, &dflt);
        pthread_attr_destroy(&fresh);
    }
    if (want == dflt)
        return 0;
    /* libgreen's bounds (16 KiB, 1 GiB); libc would accept more, lazily. */
    return want < 16384 ? 16384 : want > (1ul << 30) ? (1ul << 30) : want;
}

/* The stack set with pthread_attr_setstack/setstackaddr, if any. */
void green__pt_user_stack(const pthread_attr_t *attr, void **lo, size_t *size)
{
    void *addr = NULL;
    size_t sz = 0;
    /* glibc reports an unset stack address as top 0: addr == -size. */
    if (!attr || pthread_attr_getstack(attr, &addr, &sz) != 0 ||
        (uintptr_t)addr + sz == 0 || !addr)
        return;
    *lo = addr;
    *size = sz;
}

static int sched_check(int policy, int prio);

/* Scheduling of a new thread: the creator's (inherited, the default) or
 * the attribute's (PTHREAD_EXPLICIT_SCHED), checked as glibc checks it. */
int green__pt_attr_sched(const pthread_attr_t *attr, int *policy, int *prio)
{
    int inherit = PTHREAD_INHERIT_SCHED;
    if (!attr || pthread_attr_getinheritsched(attr, &inherit) != 0 ||
        inherit == PTHREAD_INHERIT_SCHED)
        return 0;
    struct sched_param p;
    int pol;
    if (pthread_attr_getschedpolicy(attr, &pol) != 0 ||
        pthread_attr_getschedparam(attr, &p) != 0)
        return EINVAL;
    int e = sched_check(pol, p.sched_priority);
    if (e)
        return e;
    *policy = pol;
    *prio = p.sched_priority;
    return 0;
}

/* ----------------------------------------------------------- names, attr */

/* The main thread's name is the process's too (ps, /proc/PID/comm):
 * natively the thread group leader's comm, and under the shim the main
 * green thread keeps the leader OS thread. Written through /proc, which
 * any thread of the process may. */
static void leader_comm(const struct green_thread *t)
{
    if (!t->is_main)
        return;
    int e = errno;
    int fd = (int)green__syscall(SYS_openat, AT_FDCWD, "/proc/self/comm", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        green__syscall(SYS_write, fd, t->name, strlen(t->name));
        green__syscall(SYS_close, fd);
    }
    errno = e;
}

int green_hook_pthread_setname_np(pthread_t th, const char *name)
{
    if (!green__pt_on() || !green__pt_handle_of(th))
        return GREEN_REAL(pthread_setname_np)(th, name);
    if (!name)
        return EINVAL;
    if (strlen(name) > 15)
        return ERANGE;
    snprintf(green__pt_handle_of(th)->name, sizeof green__pt_handle_of(th)->name, "%s",
             name);
    leader_comm(green__pt_handle_of(th));
    return 0;
}

int green_hook_pthread_getname_np(pthread_t th, char *buf, size_t len)
{
    if (!green__pt_on() || !green__pt_handle_of(th))
        return GREEN_REAL(pthread_getname_np)(th, buf, len);
    const char *n = green__pt_handle_of(th)->name;
    if (!buf || strlen(n) + 1 > len)
        return ERANGE;
    memcpy(buf, n, strlen(n) + 1);
    return 0;
}

/* Copy a name of at most 15 bytes from the program's memory as the
 * kernel's PR_SET_NAME does (strncpy_from_user: up to a NUL, 15 bytes,
 * EFAULT if it cannot read that far), a page at a time. */
static int name_in(char out[16], const char *src)
{
    size_t got = 0;
    while (got < 15) {
        uintptr_t a = (uintptr_t)src + got;
        size_t n = 4096 - (a & 4095);
        if (n > 15 - got)
            n = 15 - got;
        if (green__copy_in(out + got, (const void *)a, n) != 0)
            return -1;
        void *nul = memchr(out + got, 0, n);
        if (nul)
            return 0;
        got += n;
    }
    out[15] = 0;
    return 0;
}

int green_hook_prctl(int op, unsigned long a2, unsigned long a3, unsigned long a4,
                     unsigned long a5)
{
    if ((op != PR_SET_NAME && op != PR_GET_NAME) || !green__pt_on())
        return GREEN_REAL(prctl)(op, a2, a3, a4, a5);
    struct green_thread *self = green__current();
    char name[16] = { 0 };
    if (op == PR_SET_NAME) {
        if (name_in(name, (const char *)a2) != 0)
            return -1;
        snprintf(self->name, sizeof self->name, "%s", name);
        leader_comm(self);
        return 0;
    }
    memcpy(name, self->name, strnlen(self->name, 15));   /* zero-padded to 16 */
    return green__copy_out((void *)a2, name, sizeof name);
}

/* For a green thread: its own stack; the main green thread has the OS
 * thread's stack, which libc knows. */
int green_hook_pthread_getattr_np(pthread_t th, pthread_attr_t *attr)
{
    if (!green__pt_on() || !green__pt_handle_of(th))
        return GREEN_REAL(pthread_getattr_np)(th, attr);
    struct green_thread *t = green__pt_handle_of(th);
    if (!t->stack.lo)
        return GREEN_REAL(pthread_getattr_np)(GREEN_REAL(pthread_self)(), attr);
    int e = pthread_attr_init(attr);
    if (e)
        return e;
    pthread_attr_setstack(attr, t->stack.lo,
                          (size_t)((char *)t->stack.hi - (char *)t->stack.lo));
    pthread_attr_setdetachstate(attr, t->detached ? PTHREAD_CREATE_DETACHED
                                                  : PTHREAD_CREATE_JOINABLE);
    return 0;
}

/* --------------------------------------------- OS-thread-wide attributes */

/* Affinity belongs to the OS thread, which every
 * green thread of the hub shares: for a green handle they act on (or
 * report) the caller's OS thread. A finished or unknown handle: ESRCH. */
static bool os_call(pthread_t th, pthread_t *real, int *err)
{
    struct green_thread *t;
    if (!green__pt_on() || !(t = green__pt_handle_of(th))) {
        *real = th;
        return true;
    }
    *real = GREEN_REAL(pthread_self)();
    *err = ESRCH;
    return !t->is_hub && t->state != GREEN_DONE;
}

#define OS_CALL(name, th, ...)                                                \
    do {                                                                      \
        pthread_t real_;                                                      \
        int err_;                                                             \
        if (!os_call(th, &real_, &err_))                                      \
            return err_;                                                      \
        return GREEN_REAL(name)(real_, __VA_ARGS__);                        \
    } while (0)

/* Scheduling attributes are kept per green thread (a green thread is not
 * scheduled by the kernel, so nothing is applied to the OS thread) and
 * rank it among the green threads (libgreen/sched.c, "Priorities": a
 * change that puts a runnable thread of the caller's hub above the
 * caller runs that one at once); they are checked as the kernel checks them (EINVAL for an unknown policy or
 * a priority outside sched_get_priority_min/max of the policy; EPERM for a
 * real-time policy beyond RLIMIT_RTPRIO without privilege) and read back. */
static int sched_check(int policy, int prio)
{
    if (policy != SCHED_OTHER && policy != SCHED_FIFO && policy != SCHED_RR &&
        policy != SCHED_BATCH && policy != SCHED_IDLE)
        return EINVAL;
    int lo = sched_get_priority_min(policy), hi = sched_get_priority_max(policy);
    if (prio < lo || prio > hi)
        return EINVAL;
    if ((policy == SCHED_FIFO || policy == SCHED_RR) && geteuid() != 0) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_RTPRIO, &rl) != 0 || (rlim_t)prio > rl.rlim_cur)
            return EPERM;
    }
    return 0;
}

/* The live green thread behind th for a scheduling call, or NULL with
 * *err set (ESRCH), or NULL with *err 0 when libc must answer. */
static struct green_thread *sched_target(pthread_t th, int *err)
{
    *err = 0;
    struct green_thread *t;
    if (!green__pt_on() || !(t = green__pt_handle_of(th)))
        return NULL;
    if (t->is_hub || t->gone || t->state == GREEN_DONE) {
        *err = ESRCH;
        return NULL;
    }
    green__pt_enter();
    return t;
}

int green_hook_pthread_setschedparam(pthread_t th, int policy, const struct sched_param *p)
{
    int err;
    struct green_thread *t = sched_target(th, &err);
    if (!t)
        return err ? err : GREEN_REAL(pthread_setschedparam)(th, policy, p);
    int e = sched_check(policy, p->sched_priority);
    if (e) {
        errno = e;   /* glibc leaves sched_setscheduler's errno */
        return e;
    }
    t->sched_policy = policy;
    t->sched_prio = p->sched_priority;
    green__sched_rank_set(t, green__pt_rank(policy, p->sched_priority));
    green__prio_preempt();
    return 0;
}

int green_hook_pthread_getschedparam(pthread_t th, int *policy, struct sched_param *p)
{
    int err;
    struct green_thread *t = sched_target(th, &err);
    if (!t)
        return err ? err : GREEN_REAL(pthread_getschedparam)(th, policy, p);
    *policy = t->sched_policy;
    memset(p, 0, sizeof *p);
    p->sched_priority = t->sched_prio;
    return 0;
}

int green_hook_pthread_setschedprio(pthread_t th, int prio)
{
    int err;
    struct green_thread *t = sched_target(th, &err);
    if (!t)
        return err ? err : GREEN_REAL(pthread_setschedprio)(th, prio);
    int e = sched_check(t->sched_policy, prio);
    if (e) {
        errno = e;
        return e;
    }
    t->sched_prio = prio;
    green__sched_rank_set(t, green__pt_rank(t->sched_policy, prio));
    green__prio_preempt();
    return 0;
}

int green_hook_pthread_setaffinity_np(pthread_t th, size_t size, const cpu_set_t *set)
{
    OS_CALL(pthread_setaffinity_np, th, size, set);
}

int green_hook_pthread_getaffinity_np(pthread_t th, size_t size, cpu_set_t *set)
{
    OS_CALL(pthread_getaffinity_np, th, size, set);
}

/* pthread_yield: glibc's header redirects it to sched_yield, which the
 * sleep family hooks. */

/*
 * pthread.c - under the shim every pthread is a green thread: thread life
 * (create, join, detach, exit, self), names, keys, once, kill and deferred
 * cancellation with cleanup handlers.
 *
 * What it is. pthread_create spawns a green thread on the caller's hub and
 * the pthread_t it returns IS the green handle (struct green_thread *) cast
 * to pthread_t; join, detach, exit, keys map one to one onto the green API.
 * The synchronisation objects are in pthread_sync.c.
 *
 * Who is green. A hook acts when green__pt_on() says so: the caller is a
 * green thread other than the hub, libgreen is not calling for itself
 * (green__bypass) and the THREAD family is on. The main OS thread adopts its
 * hub at the first thread-family call (green__pt_adopt), so the value of
 * pthread_self() never changes under the program's feet and every lock it
 * takes is green from the start. Other OS threads without a hub (the
 * offload workers, threads created before the shim was on) stay plain OS
 * threads: their pthread_self() is the real one and their calls go to libc.
 * Mixing both kinds of thread on one lock is not supported; under the shim
 * it does not happen, because every thread the program creates is green.
 *
 * Invariants.
 *  - A pthread_t handed to the program by a green caller is a live or
 *    joinable green handle; a pthread_t equal to the real pthread_self() of
 *    the calling OS thread is a real one (the only real value a green
 *    caller can have seen).
 *  - Keys made by green callers are numbered from GREEN_PT_KEY_BASE up, so
 *    they never collide with real keys (0..PTHREAD_KEYS_MAX-1) that a
 *    library may have created before the shim was on; a real key used from
 *    a green thread goes to libc (one value per OS thread).
 *  - green_thread.user is this layer's word: the innermost cleanup buffer
 *    (pthread_cleanup_push) with three flag bits below it (see PT_*).
 *
 * Cancellation. pthread_cancel is deferred, as the default pthread cancel
 * type: it marks the target and green_kill()s it, so the target's current
 * or next park fails with ECANCELED. The cancellation points of this layer
 * (join, cond waits, sem waits, pthread_testcancel) then run the thread's
 * cleanup handlers (pthread_cleanup_push registers them through
 * __pthread_register_cancel, which we interpose) by longjmp into each
 * handler's frame, exactly as glibc's unwinder does for C code, and end the
 * thread with PTHREAD_CANCELED. Hooks of the other families return -1 with
 * errno ECANCELED from a cancelled park unless they call
 * green__pt_cancel_point(); PTHREAD_CANCEL_ASYNCHRONOUS acts at the thread's next hooked call of
 * the thread family (green__pt_enter) and at every park;
 * C++ destructors are not run by a green cancellation (no forced unwind).
 *
 * pthread_kill, pthread_sigqueue. Signal 0 checks that the thread exists
 * (0 or ESRCH). Any other signal goes to hooks/signal.c, which runs the
 * handler as the target green thread (its pthread_self, on its stack),
 * then makes the target's interruptible blocking call fail with EINTR or
 * restart per SA_RESTART, as the kernel would do it; a signal the target
 * blocks stays pending for it.
 *
 * C11 <threads.h>. glibc builds thrd_create, mtx_lock, cnd_wait, tss_get
 * and call_once on its pthreads by direct calls that no interposition
 * sees, so they are interposed by name as well and mapped onto the same
 * hooks (end of this file and of pthread_sync.c).
 *
 * Limits, documented. Keys created before the shim's constructor ran (a
 * sanitizer runtime, another library's constructor) are libc keys: their
 * value is per OS thread, shared by the green threads. A pthread object
 * shared between a green thread and a plain OS thread (a SIGEV_THREAD
 * timer's notify function, which glibc runs on a thread of its own) is
 * not supported, except sem_post and pthread_cond_signal/broadcast from
 * such a thread (pthread_sync.c, "Wake-ups from outside"); it must not
 * lock a mutex that green threads use. flockfile and stdio's
 * own locks belong to the OS thread: every green thread "owns" them.
 *
 * Scheduling attributes (policy, priority) are kept per green thread and
 * read back; nothing is applied to the OS thread. Fair turns: the hooks
 * of this family that may be called in a busy-wait loop take a fair turn
 * (green__pt_enter, green__fair_turn in the core).
 *
 * Rejected: a side table from pthread_t to green handle (one more lookup
 * on every call and a lock, for nothing: the handle is the value);
 * emulating pthread_self() with a per-OS-thread value (every green thread
 * would compare equal); allocating per-thread pthread state (the three
 * flags and one pointer fit in green_thread.user).
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include "hooks_signal.h"
#include <dlfcn.h>
#include <setjmp.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct green__preal_table green__preal;
atomic_int green__preal_ready;

/* Keys of green callers: green key k is pthread key GREEN_PT_KEY_BASE + k. */
#define GREEN_PT_KEY_BASE 4096u


/* green_thread.user as a word. */
static uintptr_t uw(const struct green_thread *t) { return (uintptr_t)t->user; }
static void set_uw(struct green_thread *t, uintptr_t w) { t->user = (void *)w; }

/* The OS thread kind, cached: 0 not yet known, 1 main, 2 other. */
static __thread signed char os_kind __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------- real functions */

void green__preal_resolve(void)
{
    if (atomic_load_explicit(&green__preal_ready, memory_order_acquire))
        return;
#define GREEN__PREAL_RESOLVE(ret, name, params) \
    green__preal.name = (ret(*) params)dlsym(RTLD_NEXT, #name);
    GREEN__PREAL_FUNCS(GREEN__PREAL_RESOLVE)
#undef GREEN__PREAL_RESOLVE
    /* The condition variables exist twice; take the current ABI. */
#define GREEN__PREAL_COND(name)                                               \
    do {                                                                      \
        void *p = dlvsym(RTLD_NEXT, #name, "GLIBC_2.3.2");                    \
        if (p)                                                                \
            memcpy(&green__preal.name, &p, sizeof p);                         \
    } while (0)
    GREEN__PREAL_COND(pthread_cond_init);
    GREEN__PREAL_COND(pthread_cond_destroy);
    GREEN__PREAL_COND(pthread_cond_wait);
    GREEN__PREAL_COND(pthread_cond_timedwait);
    GREEN__PREAL_COND(pthread_cond_signal);
    GREEN__PREAL_COND(pthread_cond_broadcast);
#undef GREEN__PREAL_COND
    atomic_store_explicit(&green__preal_ready, 1, memory_order_release);
}

/* ---------------------------------------------------------- who is green */

bool green__pt_adopt(void)
{
    if (os_kind == 0)
        os_kind = green__is_main_os_thread() ? 1 : 2;
    if (os_kind != 1)
        return false;
    /* Creating the hub calls hooked functions (pthread_once): bypass. */
    GREEN__BYPASS_BEGIN();
    struct green__ctx *c = green__ctx_get();
    GREEN__BYPASS_END();
    return c && c->current != c->hub;
}

int green__pt_deadline(clockid_t clk, const struct timespec *abs, int64_t *deadline)
{
    if (!abs || abs->tv_nsec < 0 || abs->tv_nsec >= 1000000000 ||
        (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC))
        return EINVAL;
    if (abs->tv_sec < 0) {
        *deadline = 0;
        return 0;
    }
    if (abs->tv_sec > INT64_MAX / 1000000000 - 2) {
        *deadline = GREEN_FOREVER;
        return 0;
    }
    int64_t t = (int64_t)abs->tv_sec * 1000000000 + abs->tv_nsec;
    if (clk == CLOCK_REALTIME) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        t = green_now() + (t - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec));
    }
    *deadline = t < 0 ? 0 : t;
    return 0;
}

/* The green handle behind th, or NULL when th is the caller's real
 * pthread_t (see the invariants above). */
static struct green_thread *handle_of(pthread_t th)
{
    if (th == GREEN__PREAL(pthread_self)())
        return NULL;
    return (struct green_thread *)th;
}

/* --------------------------------------------------------- thread life */

/* Stack size asked for by attr: 0 for "the default" (no attr, or the size
 * a fresh attr reports), so that threads that do not care get the green
 * default rather than 8 MiB each. */
static size_t attr_stack_size(const pthread_attr_t *attr)
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
static void user_stack(const pthread_attr_t *attr, void **lo, size_t *size)
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
static int attr_sched(const pthread_attr_t *attr, int *policy, int *prio)
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

int green_hook_pthread_create(pthread_t *th, const pthread_attr_t *attr,
                              void *(*fn)(void *), void *arg)
{
    if (!green__pt_on())
        return GREEN__PREAL(pthread_create)(th, attr, fn, arg);
    green_attr_t ga = { .stack_size = attr_stack_size(attr) };
    int ds = PTHREAD_CREATE_JOINABLE;
    if (attr && pthread_attr_getdetachstate(attr, &ds) != 0)
        return EINVAL;
    ga.detached = ds == PTHREAD_CREATE_DETACHED;
    struct green_thread *self = green__current();
    int policy = self->sched_policy, prio = self->sched_prio;
    int e = attr_sched(attr, &policy, &prio);
    if (e)
        return e;
    void *stk = NULL;
    size_t stksize = 0;
    user_stack(attr, &stk, &stksize);
    int saved = errno;
    int err = 0;
    struct green_thread *t = green__thread_create_on(fn, arg, &ga, stk, stksize, &err);
    errno = saved;
    if (!t)
        return err == EINVAL ? EINVAL : EAGAIN;
    t->sched_policy = policy;
    t->sched_prio = prio;
    *th = (pthread_t)t;
    return 0;
}

/* Join t with deadline; pthread error numbers. A cancellation point. */
static int join_green(struct green_thread *t, void **ret, int64_t deadline)
{
    struct green_thread *self = green__current();
    if (!t || t->gone || t->is_hub || t->ctx != self->ctx)
        return ESRCH;
    if (t == self)
        return EDEADLK;
    if (t->detached || t->joining || t->is_main)
        return EINVAL;
    green__pt_cancel_point(0);
    int saved = errno;
    for (;;) {
        int64_t left = deadline < 0 ? GREEN_FOREVER
                                    : (deadline > green_now() ? deadline - green_now() : 0);
        if (green_join_timeout(t, ret, left) == 0)
            break;
        int e = errno;
        if (e == EINTR)
            continue;   /* pthread_join never fails with EINTR */
        if (e != ECANCELED) {
            errno = saved;
            return e;
        }
        green__pt_cancel_point(ECANCELED);
    }
    errno = saved;
    return 0;
}

int green_hook_pthread_join(pthread_t th, void **ret)
{
    if (!green__pt_on_turn() || !handle_of(th))
        return GREEN__PREAL(pthread_join)(th, ret);
    return join_green(handle_of(th), ret, GREEN_FOREVER);
}

int green_hook_pthread_tryjoin_np(pthread_t th, void **ret)
{
    if (!green__pt_on_turn() || !handle_of(th))
        return GREEN__PREAL(pthread_tryjoin_np)(th, ret);
    struct green_thread *t = handle_of(th);
    if (!t->gone && t->state != GREEN_DONE && !t->is_main &&
        t != green__current() && !t->detached)
        return EBUSY;
    return join_green(t, ret, 0);
}

int green_hook_pthread_timedjoin_np(pthread_t th, void **ret,
                                    const struct timespec *abs)
{
    if (!green__pt_on() || !handle_of(th))
        return GREEN__PREAL(pthread_timedjoin_np)(th, ret, abs);
    int64_t deadline = GREEN_FOREVER;
    if (abs) {
        int e = green__pt_deadline(CLOCK_REALTIME, abs, &deadline);
        if (e)
            return e;
    }
    return join_green(handle_of(th), ret, deadline);
}

int green_hook_pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clk,
                                    const struct timespec *abs)
{
    if (!green__pt_on() || !handle_of(th))
        return GREEN__PREAL(pthread_clockjoin_np)(th, ret, clk, abs);
    int64_t deadline = GREEN_FOREVER;
    if (abs) {
        int e = green__pt_deadline(clk, abs, &deadline);
        if (e)
            return e;
    }
    return join_green(handle_of(th), ret, deadline);
}

int green_hook_pthread_detach(pthread_t th)
{
    if (!green__pt_on() || !handle_of(th))
        return GREEN__PREAL(pthread_detach)(th);
    struct green_thread *t = handle_of(th);
    if (t->is_hub || t->gone)
        return ESRCH;
    if (t->is_main)
        return 0;   /* nothing to free; main is never joined anyway */
    int saved = errno;
    int rc = green_detach(t) == 0 ? 0 : EINVAL;
    errno = saved;
    return rc;
}

/* Run the innermost cleanup handler by jumping into its frame (the
 * pthread_cleanup_push expansion calls the routine, then
 * __pthread_unwind_next), or end the thread with value when none is left. */
static _Noreturn void unwind_or_exit(struct green_thread *t, void *value)
{
    __pthread_unwind_buf_t *b = (void *)(uw(t) & ~PT_FLAGS);
    if (!b)
        green_exit(value);
    set_uw(t, (uintptr_t)b->__pad[0] | (uw(t) & PT_FLAGS));
    b->__pad[1] = value;
    /* The buffer is a __jmp_buf_tag without its signal mask, which
     * __sigsetjmp(buf, 0) in pthread_cleanup_push never saved. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
    siglongjmp((struct __jmp_buf_tag *)(void *)b->__cancel_jmp_buf, 1);
#pragma GCC diagnostic pop
}

_Noreturn void green_hook_pthread_exit(void *ret)
{
    if (!green__pt_on())
        GREEN__PREAL(pthread_exit)(ret);
    unwind_or_exit(green__current(), ret);
}

pthread_t green_hook_pthread_self(void)
{
    if (!green__pt_on_turn())
        return GREEN__PREAL(pthread_self)();
    return (pthread_t)green__current();
}

int green_hook_pthread_equal(pthread_t a, pthread_t b)
{
    if (green__pt_on())
        green__pt_enter();   /* a wait loop may compare handles only */
    return a == b;
}

/* ----------------------------------------------------------- names, attr */

int green_hook_pthread_setname_np(pthread_t th, const char *name)
{
    if (!green__pt_on() || !handle_of(th))
        return GREEN__PREAL(pthread_setname_np)(th, name);
    if (!name)
        return EINVAL;
    if (strlen(name) > 15)
        return ERANGE;
    snprintf(handle_of(th)->name, sizeof handle_of(th)->name, "%s", name);
    return 0;
}

int green_hook_pthread_getname_np(pthread_t th, char *buf, size_t len)
{
    if (!green__pt_on() || !handle_of(th))
        return GREEN__PREAL(pthread_getname_np)(th, buf, len);
    const char *n = handle_of(th)->name;
    if (!buf || strlen(n) + 1 > len)
        return ERANGE;
    memcpy(buf, n, strlen(n) + 1);
    return 0;
}

/* For a green thread: its own stack; the main green thread has the OS
 * thread's stack, which libc knows. */
int green_hook_pthread_getattr_np(pthread_t th, pthread_attr_t *attr)
{
    if (!green__pt_on() || !handle_of(th))
        return GREEN__PREAL(pthread_getattr_np)(th, attr);
    struct green_thread *t = handle_of(th);
    if (!t->stack.lo)
        return GREEN__PREAL(pthread_getattr_np)(GREEN__PREAL(pthread_self)(), attr);
    int e = pthread_attr_init(attr);
    if (e)
        return e;
    pthread_attr_setstack(attr, t->stack.lo,
                          (size_t)((char *)t->stack.hi - (char *)t->stack.lo));
    pthread_attr_setdetachstate(attr, t->detached ? PTHREAD_CREATE_DETACHED
                                                  : PTHREAD_CREATE_JOINABLE);
    return 0;
}

/* ------------------------------------------------------------------ keys */

int green_hook_pthread_key_create(pthread_key_t *key, void (*d)(void *))
{
    if (!green__pt_on())
        return GREEN__PREAL(pthread_key_create)(key, d);
    green_key_t k;
    int saved = errno;
    if (green_key_create(&k, d) != 0) {
        int e = errno;
        errno = saved;
        return e;
    }
    *key = GREEN_PT_KEY_BASE + k;
    return 0;
}

int green_hook_pthread_key_delete(pthread_key_t key)
{
    if (!green__pt_on() || key < GREEN_PT_KEY_BASE)
        return GREEN__PREAL(pthread_key_delete)(key);
    int saved = errno;
    int rc = green_key_delete(key - GREEN_PT_KEY_BASE) == 0 ? 0 : EINVAL;
    errno = saved;
    return rc;
}

void *green_hook_pthread_getspecific(pthread_key_t key)
{
    /* The key first: a sanitizer runtime's own keys are libc's, and it
     * reads them in places where no turn may be taken. */
    if (key < GREEN_PT_KEY_BASE || !green__pt_on_turn())
        return GREEN__PREAL(pthread_getspecific)(key);
    return green_getspecific(key - GREEN_PT_KEY_BASE);
}

int green_hook_pthread_setspecific(pthread_key_t key, const void *v)
{
    if (key < GREEN_PT_KEY_BASE || !green__pt_on_turn())
        return GREEN__PREAL(pthread_setspecific)(key, v);
    int saved = errno;
    int rc = green_setspecific(key - GREEN_PT_KEY_BASE, v) == 0 ? 0 : errno;
    errno = saved;
    return rc;
}

/* ------------------------------------------------------------------ once */

/* pthread_once_t states, compatible with glibc's for the two stable ones
 * (0 never run, 2 done), so a once completed by libc before the shim was on
 * is seen as done. ONCE_RUNNING marks an init routine in progress in a
 * green thread. */
#define ONCE_RUNNING 1
#define ONCE_DONE    2

/* Green threads waiting for some once to finish; each rechecks its own. */
static __thread struct green__waitq once_waiters;

/* Run init under a cleanup handler of our own (the frame that
 * unwind_or_exit jumps to, as pthread_cleanup_push's would be): if the
 * thread is cancelled or exits inside init, the control goes back to
 * "never run" and the waiters retry, as POSIX asks and glibc does. */
__attribute__((noinline)) static void run_once_init(pthread_once_t *once, void (*init)(void))
{
    __pthread_unwind_buf_t buf;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
    if (__sigsetjmp((struct __jmp_buf_tag *)(void *)buf.__cancel_jmp_buf, 0)) {
#pragma GCC diagnostic pop
        atomic_store_explicit((atomic_int *)once, 0, memory_order_release);
        green__waitq_wake_all(&once_waiters, 0);
        syscall(SYS_futex, once, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        unwind_or_exit(green__current(), buf.__pad[1]);
    }
    struct green_thread *t = green__current();
    buf.__pad[0] = (void *)(uw(t) & ~PT_FLAGS);
    set_uw(t, (uintptr_t)&buf | (uw(t) & PT_FLAGS));
    init();
    set_uw(t, (uintptr_t)buf.__pad[0] | (uw(t) & PT_FLAGS));
}

int green_hook_pthread_once(pthread_once_t *once, void (*init)(void))
{
    /* Never adopt here: creating a hub runs pthread_once itself. */
    if (!green__pt_on_noadopt())
        return GREEN__PREAL(pthread_once)(once, init);
    green__pt_enter();   /* a loop of once calls must let others run */
    atomic_int *st = (atomic_int *)once;
    for (;;) {
        int v = atomic_load_explicit(st, memory_order_acquire);
        if (v == ONCE_DONE)
            return 0;
        if (v == 0 && atomic_compare_exchange_strong(st, &v, ONCE_RUNNING))
            break;
        /* Running in another green thread: wait for it. The deadline
         * bounds the wait should it run on another OS thread. */
        int code = green__park(GREEN_WHY_OTHER, (uintptr_t)once, &once_waiters,
                               green_now() + GREEN_MSEC(10));
        if (code == ECANCELED)
            green__pt_rearm_kill();
    }
    run_once_init(once, init);
    atomic_store_explicit(st, ONCE_DONE, memory_order_release);
    green__waitq_wake_all(&once_waiters, 0);
    /* A plain OS thread may wait in libc's pthread_once on the same word
     * (it futex-waits while the running bit is set): wake it. Rare: once
     * per control. */
    syscall(SYS_futex, once, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    return 0;
}

/* ------------------------------------------------------------- signals */

int green_hook_pthread_kill(pthread_t th, int sig)
{
    if (!green__pt_on() || !handle_of(th))
        return GREEN__PREAL(pthread_kill)(th, sig);
    struct green_thread *t = handle_of(th);
    if (sig < 0 || sig >= NSIG)
        return EINVAL;
    if (t->is_hub || t->state == GREEN_DONE)
        return ESRCH;
    if (sig == 0)
        return 0;
    return green__sig_interrupt(t, sig);   /* hooks/signal.c: EINTR for t */
}

/* --------------------------------------------- OS-thread-wide attributes */

/* Affinity and CPU clocks belong to the OS thread, which every
 * green thread of the hub shares: for a green handle they act on (or
 * report) the caller's OS thread. A finished or unknown handle: ESRCH. */
static bool os_call(pthread_t th, pthread_t *real, int *err)
{
    struct green_thread *t;
    if (!green__pt_on() || !(t = handle_of(th))) {
        *real = th;
        return true;
    }
    *real = GREEN__PREAL(pthread_self)();
    *err = ESRCH;
    return !t->is_hub && t->state != GREEN_DONE;
}

#define OS_CALL(name, th, ...)                                                \
    do {                                                                      \
        pthread_t real_;                                                      \
        int err_;                                                             \
        if (!os_call(th, &real_, &err_))                                      \
            return err_;                                                      \
        return GREEN__PREAL(name)(real_, __VA_ARGS__);                        \
    } while (0)

/* As pthread_kill: the handler runs in the target (hooks/signal.c). */
int green_hook_pthread_sigqueue(pthread_t th, int sig, const union sigval v)
{
    struct green_thread *t;
    if (!green__pt_on() || !(t = handle_of(th)))
        return GREEN__PREAL(pthread_sigqueue)(th, sig, v);
    if (sig < 0 || sig >= NSIG)
        return EINVAL;
    if (t->is_hub || t->state == GREEN_DONE)
        return ESRCH;
    return sig ? green__sig_queue(t, sig, &v) : 0;
}

/* Scheduling attributes are kept per green thread (a green thread is not
 * scheduled by the kernel, so nothing is applied to the OS thread): they
 * are checked as the kernel checks them (EINVAL for an unknown policy or
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
    if (!green__pt_on() || !(t = handle_of(th)))
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
        return err ? err : GREEN__PREAL(pthread_setschedparam)(th, policy, p);
    int e = sched_check(policy, p->sched_priority);
    if (e) {
        errno = e;   /* glibc leaves sched_setscheduler's errno */
        return e;
    }
    t->sched_policy = policy;
    t->sched_prio = p->sched_priority;
    return 0;
}

int green_hook_pthread_getschedparam(pthread_t th, int *policy, struct sched_param *p)
{
    int err;
    struct green_thread *t = sched_target(th, &err);
    if (!t)
        return err ? err : GREEN__PREAL(pthread_getschedparam)(th, policy, p);
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
        return err ? err : GREEN__PREAL(pthread_setschedprio)(th, prio);
    int e = sched_check(t->sched_policy, prio);
    if (e) {
        errno = e;
        return e;
    }
    t->sched_prio = prio;
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

/* The OS thread's CPU clock: green threads have no CPU clock of their own. */
int green_hook_pthread_getcpuclockid(pthread_t th, clockid_t *clk)
{
    OS_CALL(pthread_getcpuclockid, th, clk);
}

/* pthread_yield: glibc's header redirects it to sched_yield, which the
 * sleep family hooks. */

/* --------------------------------------------------------- cancellation */

void green__pt_rearm_kill(void)
{
    struct green_thread *t = green__current();
    if (t)
        t->kill_pending = true;
}

_Noreturn void green__pt_cancel_now(void)
{
    struct green_thread *t = green__current();
    t->kill_pending = false;
    set_uw(t, uw(t) | PT_CANCEL_DISABLED);
    unwind_or_exit(t, PTHREAD_CANCELED);
}

/* Enabled, requested and asynchronous: act now (glibc does the same in
 * pthread_setcancelstate/type and in a pthread_cancel of oneself). */
static void cancel_if_async(struct green_thread *t, void *value)
{
    if ((uw(t) & PT_FLAGS) != (PT_CANCEL_REQUESTED | PT_CANCEL_ASYNC))
        return;
    t->kill_pending = false;
    set_uw(t, uw(t) | PT_CANCEL_DISABLED);
    unwind_or_exit(t, value);
}

int green__pt_cancel_point(int code)
{
    struct green_thread *t = green__current();
    if (!t || t->is_hub)
        return code;
    if ((uw(t) & (PT_CANCEL_REQUESTED | PT_CANCEL_DISABLED)) != PT_CANCEL_REQUESTED)
        return code;
    t->kill_pending = false;
    /* Acted on once: cleanup handlers that call cancellation points
     * (write, close, sleep) must run to their end, as in glibc. */
    set_uw(t, uw(t) | PT_CANCEL_DISABLED);
    unwind_or_exit(t, PTHREAD_CANCELED);
}

int green_hook_pthread_cancel(pthread_t th)
{
    if (!green__pt_on() || !handle_of(th))
        return GREEN__PREAL(pthread_cancel)(th);
    struct green_thread *t = handle_of(th);
    if (t->is_hub || t->gone)
        return ESRCH;
    if (t->state == GREEN_DONE)
        return 0;
    set_uw(t, uw(t) | PT_CANCEL_REQUESTED);
    if (t == green__current())
        cancel_if_async(t, PTHREAD_CANCELED);
    /* A thread that never ran is killed outright (result PTHREAD_CANCELED,
     * which is GREEN_CANCELED); a running or parked one at its next
     * cancellation point, unless it disabled cancellation. */
    if (!(uw(t) & PT_CANCEL_DISABLED))
        green__thread_kill(t);
    return 0;
}

int green_hook_pthread_setcancelstate(int state, int *old)
{
    if (!green__pt_on())
        return GREEN__PREAL(pthread_setcancelstate)(state, old);
    if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE)
        return EINVAL;
    struct green_thread *t = green__current();
    if (old)
        *old = (uw(t) & PT_CANCEL_DISABLED) ? PTHREAD_CANCEL_DISABLE
                                              : PTHREAD_CANCEL_ENABLE;
    if (state == PTHREAD_CANCEL_DISABLE)
        set_uw(t, uw(t) | PT_CANCEL_DISABLED);
    else
        set_uw(t, uw(t) & ~PT_CANCEL_DISABLED);
    /* A request that arrived while disabled acts at the next point. */
    if (state == PTHREAD_CANCEL_ENABLE && (uw(t) & PT_CANCEL_REQUESTED))
        t->kill_pending = true;
    /* glibc 2.36 ends the thread here without setting its result: a
     * joiner sees NULL, not PTHREAD_CANCELED. Same here. */
    cancel_if_async(t, NULL);
    return 0;
}

int green_hook_pthread_setcanceltype(int type, int *old)
{
    if (!green__pt_on())
        return GREEN__PREAL(pthread_setcanceltype)(type, old);
    if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS)
        return EINVAL;
    struct green_thread *t = green__current();
    if (old)
        *old = (uw(t) & PT_CANCEL_ASYNC) ? PTHREAD_CANCEL_ASYNCHRONOUS
                                           : PTHREAD_CANCEL_DEFERRED;
    if (type == PTHREAD_CANCEL_ASYNCHRONOUS)
        set_uw(t, uw(t) | PT_CANCEL_ASYNC);
    else
        set_uw(t, uw(t) & ~PT_CANCEL_ASYNC);
    cancel_if_async(t, PTHREAD_CANCELED);
    return 0;
}

void green_hook_pthread_testcancel(void)
{
    if (!green__pt_on_turn()) {
        GREEN__PREAL(pthread_testcancel)();
        return;
    }
    green__pt_cancel_point(0);
}

/* Cleanup handlers (pthread_cleanup_push/pop in C). The list is linked
 * through __pad[0] of each buffer, on the green thread's own stack. These
 * three must not consult green__pt_on's family switch once a buffer is
 * linked into a green thread, so they test the current thread directly. */
static __typeof__(&green_hook___pthread_register_cancel) real_register;
static __typeof__(&green_hook___pthread_unregister_cancel) real_unregister;
static __typeof__(&green_hook___pthread_unwind_next) real_unwind_next;

static void resolve_cleanup_reals(void)
{
    if (real_register)
        return;
    void *p = dlsym(RTLD_NEXT, "__pthread_unwind_next");
    memcpy(&real_unwind_next, &p, sizeof p);
    p = dlsym(RTLD_NEXT, "__pthread_unregister_cancel");
    memcpy(&real_unregister, &p, sizeof p);
    p = dlsym(RTLD_NEXT, "__pthread_register_cancel");
    memcpy(&real_register, &p, sizeof p);
}

void green_hook___pthread_register_cancel(__pthread_unwind_buf_t *buf)
{
    if (!green__pt_on()) {
        resolve_cleanup_reals();
        real_register(buf);
        return;
    }
    struct green_thread *t = green__current();
    buf->__pad[0] = (void *)(uw(t) & ~PT_FLAGS);
    set_uw(t, (uintptr_t)buf | (uw(t) & PT_FLAGS));
}

void green_hook___pthread_unregister_cancel(__pthread_unwind_buf_t *buf)
{
    if (!green__pt_on()) {
        resolve_cleanup_reals();
        real_unregister(buf);
        return;
    }
    struct green_thread *t = green__current();
    set_uw(t, (uintptr_t)buf->__pad[0] | (uw(t) & PT_FLAGS));
}

_Noreturn void green_hook___pthread_unwind_next(__pthread_unwind_buf_t *buf)
{
    if (!green__pt_on()) {
        resolve_cleanup_reals();
        real_unwind_next(buf);
        __builtin_unreachable();
    }
    unwind_or_exit(green__current(), buf->__pad[1]);
}

/* ------------------------------------------------------ C11 <threads.h> */

/* glibc runs a thrd_start_t through pthread_create cast to the pthread
 * signature, and thrd_join keeps the low int of the void * result; the
 * same is done here (the calling conventions agree on every ABI glibc
 * supports). */
int green_hook_thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
    if (!green__pt_on())
        return GREEN__PREAL(thrd_create)(thr, fn, arg);
    void *(*start)(void *);
    memcpy(&start, &fn, sizeof start);
    pthread_t th;
    int e = green_hook_pthread_create(&th, NULL, start, arg);
    if (e == 0)
        *thr = th;
    return green__thrd_result(e);
}

int green_hook_thrd_join(thrd_t thr, int *res)
{
    if (!green__pt_on() || !handle_of(thr))
        return GREEN__PREAL(thrd_join)(thr, res);
    void *r = NULL;
    int e = join_green(handle_of(thr), &r, GREEN_FOREVER);
    if (e == 0 && res)
        *res = (int)(intptr_t)r;
    return e ? thrd_error : thrd_success;
}

int green_hook_thrd_detach(thrd_t thr)
{
    if (!green__pt_on() || !handle_of(thr))
        return GREEN__PREAL(thrd_detach)(thr);
    return green_hook_pthread_detach(thr) ? thrd_error : thrd_success;
}

_Noreturn void green_hook_thrd_exit(int res)
{
    if (!green__pt_on())
        GREEN__PREAL(thrd_exit)(res);
    unwind_or_exit(green__current(), (void *)(intptr_t)res);
}

thrd_t green_hook_thrd_current(void)
{
    return green_hook_pthread_self();
}

/* 0, -1 interrupted (rem set), or -2 on another error, as C11 says. */
int green_hook_thrd_sleep(const struct timespec *d, struct timespec *rem)
{
    if (!green__pt_on())
        return GREEN__PREAL(thrd_sleep)(d, rem);
    if (!d || d->tv_sec < 0 || d->tv_nsec < 0 || d->tv_nsec >= 1000000000)
        return -2;
    int64_t end = green_now() + (d->tv_sec > INT64_MAX / 1000000000 - 2
                                     ? INT64_MAX / 2
                                     : (int64_t)d->tv_sec * 1000000000 + d->tv_nsec);
    int saved = errno;
    int r = green_sleep_until(end);
    int e = errno;
    errno = saved;
    if (r == 0)
        return 0;
    green__pt_cancel_point(e);
    if (rem) {
        int64_t left = end - green_now();
        left = left < 0 ? 0 : left;
        *rem = (struct timespec){ .tv_sec = left / 1000000000, .tv_nsec = left % 1000000000 };
    }
    return e == EINTR || e == ECANCELED ? -1 : -2;
}

void green_hook_thrd_yield(void)
{
    if (!green__pt_on()) {
        GREEN__PREAL(thrd_yield)();
        return;
    }
    int saved = errno;
    if (green_yield() != 0 && errno == ECANCELED)
        green__pt_rearm_kill();
    errno = saved;
}

int green_hook_tss_create(tss_t *key, tss_dtor_t d)
{
    if (!green__pt_on())
        return GREEN__PREAL(tss_create)(key, d);
    pthread_key_t k;
    int e = green_hook_pthread_key_create(&k, d);
    if (e == 0)
        *key = k;
    return e ? thrd_error : thrd_success;
}

void green_hook_tss_delete(tss_t key)
{
    if (!green__pt_on() || key < GREEN_PT_KEY_BASE) {
        GREEN__PREAL(tss_delete)(key);
        return;
    }
    green_hook_pthread_key_delete(key);
}

void *green_hook_tss_get(tss_t key)
{
    if (!green__pt_on() || key < GREEN_PT_KEY_BASE)
        return GREEN__PREAL(tss_get)(key);
    return green_hook_pthread_getspecific(key);
}

int green_hook_tss_set(tss_t key, void *v)
{
    if (!green__pt_on() || key < GREEN_PT_KEY_BASE)
        return GREEN__PREAL(tss_set)(key, v);
    return green_hook_pthread_setspecific(key, v) ? thrd_error : thrd_success;
}

void green_hook_call_once(once_flag *flag, void (*fn)(void))
{
    if (!green__pt_on_noadopt()) {
        GREEN__PREAL(call_once)(flag, fn);
        return;
    }
    green_hook_pthread_once((pthread_once_t *)flag, fn);
}

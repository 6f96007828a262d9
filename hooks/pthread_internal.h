/*
 * pthread_internal.h - what the files of the thread family share
 * (hooks/pthread.c, pthread_attr.c, pthread_key.c, pthread_cancel.c,
 * threads_c11.c and pthread_sync.c): the table of the real pthread
 * functions behind the thread hooks, the "is the thread family acting for
 * this caller" test (which also makes the main OS thread adopt its hub),
 * absolute-timespec conversion, the cancellation-point helper, and the
 * few helpers one file of the family lends another. The real functions
 * behind the hooks are in the one table of libgreen/real.h.
 */
#ifndef GREEN_HOOKS_PTHREAD_INTERNAL_H
#define GREEN_HOOKS_PTHREAD_INTERNAL_H

#include "hooks.h"
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <threads.h>
#include <time.h>

/* Keys of green callers: green key k is pthread key GREEN_PT_KEY_BASE + k. */
#define GREEN_PT_KEY_BASE 4096u

/* The green handle behind th, or NULL when th is the caller's real
 * pthread_t or a plain OS thread's (one the shim did not create: libc
 * then joins, detaches or signals it; see the invariants at the top of
 * pthread.c). */
static inline struct green_thread *green__pt_handle_of(pthread_t th)
{
    if (!th || th == GREEN_REAL(pthread_self)())
        return NULL;
    struct green_thread *t = (struct green_thread *)th;
    if (green__unlikely(t->magic != GREEN__THREAD_MAGIC))
        return NULL;   /* a plain OS thread's: libc's own */
    return t;
}

/* Slow part of green__pt_on: this OS thread has no hub yet. The main OS
 * thread adopts one (its stack becomes the main green thread) so that
 * pthread_self and every lock it takes are green from the first call on;
 * any other OS thread (libgreen's workers, threads created before the shim
 * was on) stays a plain OS thread. */
GREEN_HIDDEN bool green__pt_adopt(void);

/* Should a thread-family hook act for this caller? True in a green thread
 * other than the hub with the THREAD family on; adopts a hub on the main
 * OS thread on first use. */
static inline bool green__pt_on(void)
{
    if (!(green__hook_families & GREEN_HOOK_THREAD))
        return false;
    struct green__ctx *c = green__tls_ctx;
    if (green__likely(c != NULL))
        return c->current != c->hub;
    return green__pt_adopt();
}

/* A caller the thread family does not act for that is a plain OS thread
 * under the shim: no hub (a thread created through the real
 * pthread_create, by libc, or before the shim's constructor). Its hooks
 * still use the lock core for the private, non-robust, non-PI objects,
 * which have the core's layout whoever touches them, and it blocks on a
 * futex (self NULL: see "Threads" in libgreen/lock.c); libc would not
 * understand that layout. Call it after green__pt_on() said false. */
static inline bool green__pt_plain(void)
{
    return (green__hook_families & GREEN_HOOK_THREAD) && green__tls_ctx == NULL;
}

/* Flag bits of green_thread.user below the cleanup-buffer pointer. */
#define PT_CANCEL_REQUESTED ((uintptr_t)1)  /* pthread_cancel was called */
#define PT_CANCEL_DISABLED  ((uintptr_t)2)  /* PTHREAD_CANCEL_DISABLE */
#define PT_CANCEL_ASYNC     ((uintptr_t)4)  /* PTHREAD_CANCEL_ASYNCHRONOUS */
#define PT_FLAGS            ((uintptr_t)7)

/* green_thread.user as a word. */
static inline uintptr_t green__pt_uw(const struct green_thread *t) { return (uintptr_t)t->user; }
static inline void green__pt_set_uw(struct green_thread *t, uintptr_t w) { t->user = (void *)w; }

GREEN_HIDDEN _Noreturn void green__pt_cancel_now(void);

/* What every thread-family hook that may switch does on entry: act on an
 * asynchronous cancel (honoured at every hooked call) and take a fair
 * turn when the caller's slice is over (green__fair_turn). Not for
 * sem_post and the cond signals, which a signal handler may call. */
static inline void green__pt_enter(void)
{
    struct green__ctx *c = green__tls_ctx;
    struct green_thread *t = c->current;
    if (green__unlikely(((uintptr_t)t->user & PT_FLAGS) ==
                        (PT_CANCEL_REQUESTED | PT_CANCEL_ASYNC)))
        green__pt_cancel_now();
    green__fair_turn(c);
}

/* green__pt_on() followed, when true, by green__pt_enter(). */
static inline bool green__pt_on_turn(void)
{
    if (!green__pt_on())
        return false;
    green__pt_enter();
    return true;
}

/* As green__pt_on, but never adopts (for hooks the hub creation itself
 * calls, such as pthread_once). */
static inline bool green__pt_on_noadopt(void)
{
    return green__hook_on(GREEN_HOOK_THREAD);
}

/* Convert an absolute timespec on clk (CLOCK_REALTIME or CLOCK_MONOTONIC)
 * into a green_now() deadline (0 when already past). Returns 0 or EINVAL
 * (bad clock or tv_nsec). A CLOCK_REALTIME deadline is converted once: a
 * later jump of the wall clock does not move it. */
GREEN_HIDDEN int green__pt_deadline(clockid_t clk, const struct timespec *abs,
                                    int64_t *deadline);

/* A cancellation point: call it on entry (code 0) and with the result of
 * each park. When the caller has a pending pthread_cancel with
 * cancellation enabled, the thread exits with PTHREAD_CANCELED (cleanup
 * handlers run) and this does not return. Otherwise returns code. Hooks of
 * other families may call it when a park fails with ECANCELED. */
GREEN_HIDDEN int green__pt_cancel_point(int code);

/* Remember that a kill arrived during a park that may not fail (a mutex
 * lock): the caller's next park fails with ECANCELED instead. */
/* An asynchronous pthread_cancel of the caller is pending (it acts at
 * once wherever the caller waits). */
GREEN_HIDDEN bool green__pt_async_cancel_pending(void);
GREEN_HIDDEN void green__pt_rearm_kill(void);

/* Run the innermost cleanup handler of t (the current green thread) by
 * jumping into its frame, or end the thread with value when none is left
 * (pthread.c). Does not return. */
GREEN_HIDDEN _Noreturn void green__pt_unwind_or_exit(struct green_thread *t, void *value);

/* Join the green thread t by a green_now() deadline (GREEN_FOREVER for
 * none, 0 to only try). Returns 0 or a pthread error number (ESRCH,
 * EDEADLK, EINVAL, ETIMEDOUT). A cancellation point. May switch
 * (pthread.c). */
GREEN_HIDDEN int green__pt_join(struct green_thread *t, void **ret, int64_t deadline);

/* What a pthread_attr_t (NULL for none) asks of a new thread
 * (pthread_attr.c): the stack size, 0 for the green default; the stack
 * the program gave, left untouched in *lo and *size when none; the
 * scheduling policy and priority, left untouched when inherited (0 or
 * EINVAL, EPERM as pthread_create reports them). */
GREEN_HIDDEN size_t green__pt_attr_stack_size(const pthread_attr_t *attr);
GREEN_HIDDEN void green__pt_user_stack(const pthread_attr_t *attr, void **lo, size_t *size);
GREEN_HIDDEN int green__pt_attr_sched(const pthread_attr_t *attr, int *policy, int *prio);

/* The rank (libgreen/sched.c, "Priorities") of a thread with this policy
 * and priority: the priority under SCHED_FIFO and SCHED_RR, else 0 (nice
 * values order nothing). */
static inline int green__pt_rank(int policy, int prio)
{
    return policy == SCHED_FIFO || policy == SCHED_RR ? prio : 0;
}


/* ------------------------------------------------------------------------
 * The synchronisation objects: what pthread_sync.c and the object files
 * (pthread_mutex.c, pthread_cond.c, pthread_rwlock.c, pthread_barrier.c,
 * pthread_sem.c, threads_c11_sync.c) share. The private objects wrap the
 * lock core (libgreen/lock.h). */
#include "lock.h"

/* Marks a process-shared condition variable, rwlock or barrier, in a word
 * the private layout keeps 0. */
#define GREEN__PT_SHARED_MARK 0x47524e53    /* "GRNS" */

static inline bool green__pt_past(int64_t deadline)
{
    return deadline >= 0 && green_now() >= deadline;
}

/* Sleep between two tries of a libc-only or shared object; returns the
 * next nap (pthread_sync.c). */
GREEN_HIDDEN int64_t green__pt_nap(int64_t ns, int64_t deadline);

/* The owner id of a process-shared object: pid << 32 | green thread id. */
static inline uint64_t green__pt_owner_id(const struct green_thread *t)
{
    return (uint64_t)(uint32_t)t->ctx->pid << 32 | (uint32_t)t->id;
}

/* A lock wait was killed: with an asynchronous cancel pending (and
 * enabled) the thread ends here; otherwise the caller remembers the kill. */
GREEN_HIDDEN void green__pt_lock_killed(void);

/* How the pthread objects wait on the lock core (pthread_sync.c): a lock
 * wait (mutex, rwlock, the retake of a condition wait) fails only with
 * ETIMEDOUT or ENOMEM; a sem_wait and a condition wait park so that a
 * wake-up from outside finds them; [1]: the hub keeps polling while a
 * condition waiter waits (under the shim). */
extern const struct green__lock_how green__pt_lock_how GREEN_HIDDEN;
extern const struct green__lock_how green__pt_sem_how GREEN_HIDDEN;
extern const struct green__lock_how green__pt_cond_how[2] GREEN_HIDDEN;

/* Wake-ups from outside the hub (pthread_sync.c): make sure they can reach
 * this hub's waiters, and poke them (async-signal-safe, thread-safe). */
#define GREEN__PT_OUTSIDE_SEM  1
#define GREEN__PT_OUTSIDE_COND 2
GREEN_HIDDEN void green__pt_outside_ensure(void);
GREEN_HIDDEN void green__pt_outside_poke(int kind);

/* The mutex layer, used by the condition variables (pthread_mutex.c):
 * lock and unlock any kind of mutex (0 or an error number); is it
 * libc-only (priority protocols), process-shared or robust, or held by t. */
GREEN_HIDDEN int green__pt_mutex_lock(pthread_mutex_t *m, int64_t deadline);
GREEN_HIDDEN int green__pt_mutex_unlock(pthread_mutex_t *m);
GREEN_HIDDEN bool green__pt_mutex_is_libc(const pthread_mutex_t *m);
GREEN_HIDDEN bool green__pt_mutex_is_shared(const pthread_mutex_t *m);
GREEN_HIDDEN bool green__pt_mutex_owned_by(const pthread_mutex_t *m,
                                           const struct green_thread *t);
/* ------------------------------------------------------------------------ */

/* Hook entry points (the exported libc names in preload/export_pthread.c
 * call these). Same signatures and return conventions as the libc names. */
int green_hook_pthread_create(pthread_t *th, const pthread_attr_t *attr,
                              void *(*fn)(void *), void *arg) GREEN_HIDDEN;
int green_hook_pthread_join(pthread_t th, void **ret) GREEN_HIDDEN;
int green_hook_pthread_tryjoin_np(pthread_t th, void **ret) GREEN_HIDDEN;
int green_hook_pthread_timedjoin_np(pthread_t th, void **ret,
                                    const struct timespec *abs) GREEN_HIDDEN;
int green_hook_pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clk,
                                    const struct timespec *abs) GREEN_HIDDEN;
int green_hook_pthread_detach(pthread_t th) GREEN_HIDDEN;
_Noreturn void green_hook_pthread_exit(void *ret) GREEN_HIDDEN;
pthread_t green_hook_pthread_self(void) GREEN_HIDDEN;
int green_hook_pthread_equal(pthread_t a, pthread_t b) GREEN_HIDDEN;
int green_hook_pthread_setname_np(pthread_t th, const char *name) GREEN_HIDDEN;
int green_hook_pthread_getname_np(pthread_t th, char *buf, size_t len) GREEN_HIDDEN;
/* prctl: PR_SET_NAME / PR_GET_NAME of a green thread act on its name;
 * everything else is libc's. */
int green_hook_prctl(int op, unsigned long a2, unsigned long a3, unsigned long a4,
                     unsigned long a5) GREEN_HIDDEN;
int green_hook_pthread_getattr_np(pthread_t th, pthread_attr_t *attr) GREEN_HIDDEN;
int green_hook_pthread_key_create(pthread_key_t *key, void (*d)(void *)) GREEN_HIDDEN;
int green_hook_pthread_key_delete(pthread_key_t key) GREEN_HIDDEN;
void *green_hook_pthread_getspecific(pthread_key_t key) GREEN_HIDDEN;
int green_hook_pthread_setspecific(pthread_key_t key, const void *v) GREEN_HIDDEN;
int green_hook_pthread_once(pthread_once_t *once, void (*init)(void)) GREEN_HIDDEN;
int green_hook___register_atfork(void (*prepare)(void), void (*parent)(void),
                                 void (*child)(void), void *dso) GREEN_HIDDEN;
int green_hook_pthread_kill(pthread_t th, int sig) GREEN_HIDDEN;
int green_hook_pthread_sigqueue(pthread_t th, int sig, const union sigval v) GREEN_HIDDEN;
int green_hook_pthread_setschedparam(pthread_t th, int policy,
                                     const struct sched_param *p) GREEN_HIDDEN;
int green_hook_pthread_getschedparam(pthread_t th, int *policy,
                                     struct sched_param *p) GREEN_HIDDEN;
int green_hook_pthread_setschedprio(pthread_t th, int prio) GREEN_HIDDEN;
int green_hook_pthread_setaffinity_np(pthread_t th, size_t size,
                                      const cpu_set_t *set) GREEN_HIDDEN;
int green_hook_pthread_getaffinity_np(pthread_t th, size_t size, cpu_set_t *set) GREEN_HIDDEN;
int green_hook_pthread_getcpuclockid(pthread_t th, clockid_t *clk) GREEN_HIDDEN;
int green_hook_pthread_cancel(pthread_t th) GREEN_HIDDEN;
int green_hook_pthread_setcancelstate(int state, int *old) GREEN_HIDDEN;
int green_hook_pthread_setcanceltype(int type, int *old) GREEN_HIDDEN;
void green_hook_pthread_testcancel(void) GREEN_HIDDEN;
void green_hook___pthread_register_cancel(__pthread_unwind_buf_t *buf) GREEN_HIDDEN;
void green_hook___pthread_unregister_cancel(__pthread_unwind_buf_t *buf) GREEN_HIDDEN;
_Noreturn void green_hook___pthread_unwind_next(__pthread_unwind_buf_t *buf) GREEN_HIDDEN;

int green_hook_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a) GREEN_HIDDEN;
int green_hook_pthread_mutex_destroy(pthread_mutex_t *m) GREEN_HIDDEN;
int green_hook_pthread_mutex_lock(pthread_mutex_t *m) GREEN_HIDDEN;
int green_hook_pthread_mutex_trylock(pthread_mutex_t *m) GREEN_HIDDEN;
int green_hook_pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs) GREEN_HIDDEN;
int green_hook_pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clk,
                                       const struct timespec *abs) GREEN_HIDDEN;
int green_hook_pthread_mutex_unlock(pthread_mutex_t *m) GREEN_HIDDEN;
int green_hook_pthread_mutex_consistent(pthread_mutex_t *m) GREEN_HIDDEN;
int green_hook_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a) GREEN_HIDDEN;
int green_hook_pthread_cond_destroy(pthread_cond_t *c) GREEN_HIDDEN;
int green_hook_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) GREEN_HIDDEN;
int green_hook_pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                      const struct timespec *abs) GREEN_HIDDEN;
int green_hook_pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m,
                                      clockid_t clk, const struct timespec *abs) GREEN_HIDDEN;
int green_hook_pthread_cond_signal(pthread_cond_t *c) GREEN_HIDDEN;
int green_hook_pthread_cond_broadcast(pthread_cond_t *c) GREEN_HIDDEN;
int green_hook_pthread_rwlock_init(pthread_rwlock_t *rw, const pthread_rwlockattr_t *a) GREEN_HIDDEN;
int green_hook_pthread_rwlock_destroy(pthread_rwlock_t *rw) GREEN_HIDDEN;
int green_hook_pthread_rwlock_rdlock(pthread_rwlock_t *rw) GREEN_HIDDEN;
int green_hook_pthread_rwlock_tryrdlock(pthread_rwlock_t *rw) GREEN_HIDDEN;
int green_hook_pthread_rwlock_timedrdlock(pthread_rwlock_t *rw, const struct timespec *abs) GREEN_HIDDEN;
int green_hook_pthread_rwlock_clockrdlock(pthread_rwlock_t *rw, clockid_t clk,
                                          const struct timespec *abs) GREEN_HIDDEN;
int green_hook_pthread_rwlock_wrlock(pthread_rwlock_t *rw) GREEN_HIDDEN;
int green_hook_pthread_rwlock_trywrlock(pthread_rwlock_t *rw) GREEN_HIDDEN;
int green_hook_pthread_rwlock_timedwrlock(pthread_rwlock_t *rw, const struct timespec *abs) GREEN_HIDDEN;
int green_hook_pthread_rwlock_clockwrlock(pthread_rwlock_t *rw, clockid_t clk,
                                          const struct timespec *abs) GREEN_HIDDEN;
int green_hook_pthread_rwlock_unlock(pthread_rwlock_t *rw) GREEN_HIDDEN;
int green_hook_pthread_barrier_init(pthread_barrier_t *b, const pthread_barrierattr_t *a,
                                    unsigned count) GREEN_HIDDEN;
int green_hook_pthread_barrier_destroy(pthread_barrier_t *b) GREEN_HIDDEN;
int green_hook_pthread_barrier_wait(pthread_barrier_t *b) GREEN_HIDDEN;
int green_hook_pthread_spin_lock(pthread_spinlock_t *s) GREEN_HIDDEN;
int green_hook_pthread_spin_trylock(pthread_spinlock_t *s) GREEN_HIDDEN;
int green_hook_pthread_spin_unlock(pthread_spinlock_t *s) GREEN_HIDDEN;
int green_hook_sem_init(sem_t *s, int pshared, unsigned value) GREEN_HIDDEN;
int green_hook_sem_destroy(sem_t *s) GREEN_HIDDEN;
int green_hook_sem_wait(sem_t *s) GREEN_HIDDEN;
int green_hook_sem_trywait(sem_t *s) GREEN_HIDDEN;
int green_hook_sem_timedwait(sem_t *s, const struct timespec *abs) GREEN_HIDDEN;
int green_hook_sem_clockwait(sem_t *s, clockid_t clk, const struct timespec *abs) GREEN_HIDDEN;
int green_hook_sem_post(sem_t *s) GREEN_HIDDEN;
int green_hook_sem_getvalue(sem_t *s, int *value) GREEN_HIDDEN;

/* C11 <threads.h>: glibc implements these by calling its pthread
 * functions directly (no PLT), so they are interposed too, as thin maps
 * onto the pthread hooks (thrd_t is a pthread_t, mtx_t a pthread_mutex_t,
 * cnd_t a pthread_cond_t, tss_t a pthread_key_t, once_flag a
 * pthread_once_t). */
int green_hook_thrd_create(thrd_t *thr, thrd_start_t fn, void *arg) GREEN_HIDDEN;
int green_hook_thrd_join(thrd_t thr, int *res) GREEN_HIDDEN;
int green_hook_thrd_detach(thrd_t thr) GREEN_HIDDEN;
_Noreturn void green_hook_thrd_exit(int res) GREEN_HIDDEN;
thrd_t green_hook_thrd_current(void) GREEN_HIDDEN;
int green_hook_thrd_sleep(const struct timespec *d, struct timespec *rem) GREEN_HIDDEN;
void green_hook_thrd_yield(void) GREEN_HIDDEN;
int green_hook_tss_create(tss_t *key, tss_dtor_t d) GREEN_HIDDEN;
void green_hook_tss_delete(tss_t key) GREEN_HIDDEN;
void *green_hook_tss_get(tss_t key) GREEN_HIDDEN;
int green_hook_tss_set(tss_t key, void *v) GREEN_HIDDEN;
void green_hook_call_once(once_flag *flag, void (*fn)(void)) GREEN_HIDDEN;
int green_hook_mtx_init(mtx_t *m, int type) GREEN_HIDDEN;
void green_hook_mtx_destroy(mtx_t *m) GREEN_HIDDEN;
int green_hook_mtx_lock(mtx_t *m) GREEN_HIDDEN;
int green_hook_mtx_trylock(mtx_t *m) GREEN_HIDDEN;
int green_hook_mtx_timedlock(mtx_t *m, const struct timespec *abs) GREEN_HIDDEN;
int green_hook_mtx_unlock(mtx_t *m) GREEN_HIDDEN;
int green_hook_cnd_init(cnd_t *c) GREEN_HIDDEN;
void green_hook_cnd_destroy(cnd_t *c) GREEN_HIDDEN;
int green_hook_cnd_signal(cnd_t *c) GREEN_HIDDEN;
int green_hook_cnd_broadcast(cnd_t *c) GREEN_HIDDEN;
int green_hook_cnd_wait(cnd_t *c, mtx_t *m) GREEN_HIDDEN;
int green_hook_cnd_timedwait(cnd_t *c, mtx_t *m, const struct timespec *abs) GREEN_HIDDEN;

/* pthread error number -> C11 thrd_* result. */
static inline int green__thrd_result(int e)
{
    switch (e) {
    case 0: return thrd_success;
    case EBUSY: return thrd_busy;
    case ETIMEDOUT: return thrd_timedout;
    case ENOMEM: case EAGAIN: return thrd_nomem;
    default: return thrd_error;
    }
}

#endif

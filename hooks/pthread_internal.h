/*
 * pthread_internal.h - what hooks/pthread.c and hooks/pthread_sync.c share:
 * the table of the real pthread functions behind the thread hooks, the
 * "is the thread family acting for this caller" test (which also makes the
 * main OS thread adopt its hub), absolute-timespec conversion, and the
 * cancellation-point helper.
 *
 * Why a table of our own rather than lines in real.h: the thread family
 * needs some sixty real functions that no other hook uses, and some of them
 * must be looked up by version (pthread_cond_* exist twice in glibc; plain
 * dlsym may return the 2.2.5 compatibility version whose layout differs).
 * Keeping them here keeps real.h the table of the I/O families.
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

/* X(return type, name, (parameter list)) */
#define GREEN__PREAL_FUNCS(X)                                                 \
    X(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *)) \
    X(int, pthread_join, (pthread_t, void **))                                \
    X(int, pthread_tryjoin_np, (pthread_t, void **))                          \
    X(int, pthread_timedjoin_np, (pthread_t, void **, const struct timespec *)) \
    X(int, pthread_clockjoin_np, (pthread_t, void **, clockid_t, const struct timespec *)) \
    X(int, pthread_detach, (pthread_t))                                       \
    X(void, pthread_exit, (void *))                                           \
    X(pthread_t, pthread_self, (void))                                        \
    X(int, pthread_equal, (pthread_t, pthread_t))                             \
    X(int, pthread_setname_np, (pthread_t, const char *))                     \
    X(int, pthread_getname_np, (pthread_t, char *, size_t))                   \
    X(int, pthread_getattr_np, (pthread_t, pthread_attr_t *))                 \
    X(int, pthread_key_create, (pthread_key_t *, void (*)(void *)))           \
    X(int, pthread_key_delete, (pthread_key_t))                               \
    X(void *, pthread_getspecific, (pthread_key_t))                           \
    X(int, pthread_setspecific, (pthread_key_t, const void *))                \
    X(int, pthread_once, (pthread_once_t *, void (*)(void)))                  \
    X(int, pthread_kill, (pthread_t, int))                                    \
    X(int, pthread_sigqueue, (pthread_t, int, const union sigval))            \
    X(int, pthread_setschedparam, (pthread_t, int, const struct sched_param *)) \
    X(int, pthread_getschedparam, (pthread_t, int *, struct sched_param *))   \
    X(int, pthread_setschedprio, (pthread_t, int))                            \
    X(int, pthread_setaffinity_np, (pthread_t, size_t, const cpu_set_t *))    \
    X(int, pthread_getaffinity_np, (pthread_t, size_t, cpu_set_t *))          \
    X(int, pthread_getcpuclockid, (pthread_t, clockid_t *))                   \
    X(int, pthread_cancel, (pthread_t))                                       \
    X(int, pthread_setcancelstate, (int, int *))                              \
    X(int, pthread_setcanceltype, (int, int *))                               \
    X(void, pthread_testcancel, (void))                                       \
    X(int, pthread_mutex_init, (pthread_mutex_t *, const pthread_mutexattr_t *)) \
    X(int, pthread_mutex_destroy, (pthread_mutex_t *))                        \
    X(int, pthread_mutex_lock, (pthread_mutex_t *))                           \
    X(int, pthread_mutex_trylock, (pthread_mutex_t *))                        \
    X(int, pthread_mutex_timedlock, (pthread_mutex_t *, const struct timespec *)) \
    X(int, pthread_mutex_clocklock, (pthread_mutex_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_mutex_unlock, (pthread_mutex_t *))                         \
    X(int, pthread_mutex_consistent, (pthread_mutex_t *))                     \
    X(int, pthread_cond_init, (pthread_cond_t *, const pthread_condattr_t *)) \
    X(int, pthread_cond_destroy, (pthread_cond_t *))                          \
    X(int, pthread_cond_wait, (pthread_cond_t *, pthread_mutex_t *))          \
    X(int, pthread_cond_timedwait, (pthread_cond_t *, pthread_mutex_t *, const struct timespec *)) \
    X(int, pthread_cond_clockwait, (pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_cond_signal, (pthread_cond_t *))                           \
    X(int, pthread_cond_broadcast, (pthread_cond_t *))                        \
    X(int, pthread_rwlock_init, (pthread_rwlock_t *, const pthread_rwlockattr_t *)) \
    X(int, pthread_rwlock_destroy, (pthread_rwlock_t *))                      \
    X(int, pthread_rwlock_rdlock, (pthread_rwlock_t *))                       \
    X(int, pthread_rwlock_tryrdlock, (pthread_rwlock_t *))                    \
    X(int, pthread_rwlock_timedrdlock, (pthread_rwlock_t *, const struct timespec *)) \
    X(int, pthread_rwlock_clockrdlock, (pthread_rwlock_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_rwlock_wrlock, (pthread_rwlock_t *))                       \
    X(int, pthread_rwlock_trywrlock, (pthread_rwlock_t *))                    \
    X(int, pthread_rwlock_timedwrlock, (pthread_rwlock_t *, const struct timespec *)) \
    X(int, pthread_rwlock_clockwrlock, (pthread_rwlock_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_rwlock_unlock, (pthread_rwlock_t *))                       \
    X(int, pthread_barrier_init, (pthread_barrier_t *, const pthread_barrierattr_t *, unsigned)) \
    X(int, pthread_barrier_destroy, (pthread_barrier_t *))                    \
    X(int, pthread_barrier_wait, (pthread_barrier_t *))                       \
    X(int, pthread_spin_lock, (pthread_spinlock_t *))                         \
    X(int, pthread_spin_trylock, (pthread_spinlock_t *))                      \
    X(int, pthread_spin_unlock, (pthread_spinlock_t *))                       \
    X(int, sem_init, (sem_t *, int, unsigned))                                \
    X(int, sem_destroy, (sem_t *))                                            \
    X(int, sem_wait, (sem_t *))                                               \
    X(int, sem_trywait, (sem_t *))                                            \
    X(int, sem_timedwait, (sem_t *, const struct timespec *))                 \
    X(int, sem_clockwait, (sem_t *, clockid_t, const struct timespec *))      \
    X(int, sem_post, (sem_t *))                                               \
    X(int, sem_getvalue, (sem_t *, int *))                                    \
    X(int, thrd_create, (thrd_t *, thrd_start_t, void *))                     \
    X(int, thrd_join, (thrd_t, int *))                                        \
    X(int, thrd_detach, (thrd_t))                                             \
    X(void, thrd_exit, (int))                                                 \
    X(thrd_t, thrd_current, (void))                                           \
    X(int, thrd_sleep, (const struct timespec *, struct timespec *))          \
    X(void, thrd_yield, (void))                                               \
    X(int, tss_create, (tss_t *, tss_dtor_t))                                 \
    X(void, tss_delete, (tss_t))                                              \
    X(void *, tss_get, (tss_t))                                               \
    X(int, tss_set, (tss_t, void *))                                          \
    X(void, call_once, (once_flag *, void (*)(void)))                         \
    X(int, mtx_init, (mtx_t *, int))                                          \
    X(void, mtx_destroy, (mtx_t *))                                           \
    X(int, mtx_lock, (mtx_t *))                                               \
    X(int, mtx_trylock, (mtx_t *))                                            \
    X(int, mtx_timedlock, (mtx_t *, const struct timespec *))                 \
    X(int, mtx_unlock, (mtx_t *))                                             \
    X(int, cnd_init, (cnd_t *))                                               \
    X(void, cnd_destroy, (cnd_t *))                                           \
    X(int, cnd_signal, (cnd_t *))                                             \
    X(int, cnd_broadcast, (cnd_t *))                                          \
    X(int, cnd_wait, (cnd_t *, mtx_t *))                                      \
    X(int, cnd_timedwait, (cnd_t *, mtx_t *, const struct timespec *))

#define GREEN__PREAL_FIELD(ret, name, params) ret (*name) params;
struct green__preal_table {
    GREEN__PREAL_FUNCS(GREEN__PREAL_FIELD)
};
#undef GREEN__PREAL_FIELD

extern struct green__preal_table green__preal GREEN_HIDDEN;
extern atomic_int green__preal_ready GREEN_HIDDEN;
/* Resolve the table (idempotent). */
GREEN_HIDDEN void green__preal_resolve(void);

/* The real function `name`, resolved on first use. */
#define GREEN__PREAL(name)                                                    \
    (green__likely(atomic_load_explicit(&green__preal_ready,                  \
                                        memory_order_acquire))                \
         ? green__preal.name                                                  \
         : (green__preal_resolve(), green__preal.name))

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
    if (green__bypass || !(green__hook_families & GREEN_HOOK_THREAD))
        return false;
    struct green__ctx *c = green__tls_ctx;
    if (green__likely(c != NULL))
        return c->current != c->hub;
    return green__pt_adopt();
}

/* Flag bits of green_thread.user below the cleanup-buffer pointer. */
#define PT_CANCEL_REQUESTED ((uintptr_t)1)  /* pthread_cancel was called */
#define PT_CANCEL_DISABLED  ((uintptr_t)2)  /* PTHREAD_CANCEL_DISABLE */
#define PT_CANCEL_ASYNC     ((uintptr_t)4)  /* PTHREAD_CANCEL_ASYNCHRONOUS */
#define PT_FLAGS            ((uintptr_t)7)

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
GREEN_HIDDEN void green__pt_rearm_kill(void);

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
int green_hook_pthread_getattr_np(pthread_t th, pthread_attr_t *attr) GREEN_HIDDEN;
int green_hook_pthread_key_create(pthread_key_t *key, void (*d)(void *)) GREEN_HIDDEN;
int green_hook_pthread_key_delete(pthread_key_t key) GREEN_HIDDEN;
void *green_hook_pthread_getspecific(pthread_key_t key) GREEN_HIDDEN;
int green_hook_pthread_setspecific(pthread_key_t key, const void *v) GREEN_HIDDEN;
int green_hook_pthread_once(pthread_once_t *once, void (*init)(void)) GREEN_HIDDEN;
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

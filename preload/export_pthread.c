/*
 * export_pthread.c - the libc names of the thread family. Each is a
 * one-liner calling its hook in hooks/pthread.c or hooks/pthread_sync.c;
 * default visibility so that the preload interposes them.
 */
#define _GNU_SOURCE
#include "pthread_internal.h"
#include <stdarg.h>

#define EXPORT __attribute__((visibility("default")))

/* glibc declares access attributes on some of these that do not hold for
 * a pass-through wrapper. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) { return green_hook_pthread_create(th, attr, fn, arg); }
EXPORT int pthread_join(pthread_t th, void **ret) { return green_hook_pthread_join(th, ret); }
EXPORT int pthread_tryjoin_np(pthread_t th, void **ret) { return green_hook_pthread_tryjoin_np(th, ret); }
EXPORT int pthread_timedjoin_np(pthread_t th, void **ret, const struct timespec *abs) { return green_hook_pthread_timedjoin_np(th, ret, abs); }
EXPORT int pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clk, const struct timespec *abs) { return green_hook_pthread_clockjoin_np(th, ret, clk, abs); }
EXPORT int pthread_detach(pthread_t th) { return green_hook_pthread_detach(th); }
EXPORT _Noreturn void pthread_exit(void *ret) { green_hook_pthread_exit(ret); }
EXPORT pthread_t pthread_self(void) { return green_hook_pthread_self(); }
EXPORT int pthread_equal(pthread_t a, pthread_t b) { return green_hook_pthread_equal(a, b); }
EXPORT int pthread_setname_np(pthread_t th, const char *name) { return green_hook_pthread_setname_np(th, name); }
EXPORT int pthread_getname_np(pthread_t th, char *buf, size_t len) { return green_hook_pthread_getname_np(th, buf, len); }
/* glibc's prctl takes up to four more arguments, unsigned long each (a
 * system call's registers); so does ours. */
EXPORT int prctl(int op, ...)
{
    va_list ap;
    va_start(ap, op);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    return green_hook_prctl(op, a2, a3, a4, a5);
}
EXPORT int pthread_getattr_np(pthread_t th, pthread_attr_t *attr) { return green_hook_pthread_getattr_np(th, attr); }
EXPORT int pthread_key_create(pthread_key_t *key, void (*d)(void *)) { return green_hook_pthread_key_create(key, d); }
EXPORT int pthread_key_delete(pthread_key_t key) { return green_hook_pthread_key_delete(key); }
EXPORT void * pthread_getspecific(pthread_key_t key) { return green_hook_pthread_getspecific(key); }
EXPORT int pthread_setspecific(pthread_key_t key, const void *v) { return green_hook_pthread_setspecific(key, v); }
EXPORT int pthread_once(pthread_once_t *once, void (*init)(void)) { return green_hook_pthread_once(once, init); }
/* pthread_atfork is a static stub (libc_nonshared.a) in every program:
 * the shared function it calls is this one. */
EXPORT int __register_atfork(void (*pre)(void), void (*par)(void), void (*chi)(void), void *dso);
EXPORT int __register_atfork(void (*pre)(void), void (*par)(void), void (*chi)(void), void *dso) { return green_hook___register_atfork(pre, par, chi, dso); }
EXPORT int pthread_kill(pthread_t th, int sig) { return green_hook_pthread_kill(th, sig); }
EXPORT int pthread_sigqueue(pthread_t th, int sig, const union sigval v) { return green_hook_pthread_sigqueue(th, sig, v); }
EXPORT int pthread_setschedparam(pthread_t th, int policy, const struct sched_param *p) { return green_hook_pthread_setschedparam(th, policy, p); }
EXPORT int pthread_getschedparam(pthread_t th, int *policy, struct sched_param *p) { return green_hook_pthread_getschedparam(th, policy, p); }
EXPORT int pthread_setschedprio(pthread_t th, int prio) { return green_hook_pthread_setschedprio(th, prio); }
EXPORT int pthread_setaffinity_np(pthread_t th, size_t size, const cpu_set_t *set) { return green_hook_pthread_setaffinity_np(th, size, set); }
EXPORT int pthread_getaffinity_np(pthread_t th, size_t size, cpu_set_t *set) { return green_hook_pthread_getaffinity_np(th, size, set); }
EXPORT int pthread_getcpuclockid(pthread_t th, clockid_t *clk) { return green_hook_pthread_getcpuclockid(th, clk); }
EXPORT int pthread_cancel(pthread_t th) { return green_hook_pthread_cancel(th); }
EXPORT int pthread_setcancelstate(int state, int *old) { return green_hook_pthread_setcancelstate(state, old); }
EXPORT int pthread_setcanceltype(int type, int *old) { return green_hook_pthread_setcanceltype(type, old); }
EXPORT void pthread_testcancel(void) { green_hook_pthread_testcancel(); }
EXPORT void __pthread_register_cancel(__pthread_unwind_buf_t *buf) { green_hook___pthread_register_cancel(buf); }
EXPORT void __pthread_unregister_cancel(__pthread_unwind_buf_t *buf) { green_hook___pthread_unregister_cancel(buf); }
EXPORT _Noreturn void __pthread_unwind_next(__pthread_unwind_buf_t *buf) { green_hook___pthread_unwind_next(buf); }
EXPORT int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a) { return green_hook_pthread_mutex_init(m, a); }
EXPORT int pthread_mutex_destroy(pthread_mutex_t *m) { return green_hook_pthread_mutex_destroy(m); }
EXPORT int pthread_mutex_lock(pthread_mutex_t *m) { return green_hook_pthread_mutex_lock(m); }
EXPORT int pthread_mutex_trylock(pthread_mutex_t *m) { return green_hook_pthread_mutex_trylock(m); }
EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs) { return green_hook_pthread_mutex_timedlock(m, abs); }
EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clk, const struct timespec *abs) { return green_hook_pthread_mutex_clocklock(m, clk, abs); }
EXPORT int pthread_mutex_unlock(pthread_mutex_t *m) { return green_hook_pthread_mutex_unlock(m); }
EXPORT int pthread_mutex_consistent(pthread_mutex_t *m) { return green_hook_pthread_mutex_consistent(m); }
EXPORT int pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a) { return green_hook_pthread_cond_init(c, a); }
EXPORT int pthread_cond_destroy(pthread_cond_t *c) { return green_hook_pthread_cond_destroy(c); }
EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) { return green_hook_pthread_cond_wait(c, m); }
EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abs) { return green_hook_pthread_cond_timedwait(c, m, abs); }
EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk, const struct timespec *abs) { return green_hook_pthread_cond_clockwait(c, m, clk, abs); }
EXPORT int pthread_cond_signal(pthread_cond_t *c) { return green_hook_pthread_cond_signal(c); }
EXPORT int pthread_cond_broadcast(pthread_cond_t *c) { return green_hook_pthread_cond_broadcast(c); }
EXPORT int pthread_rwlock_init(pthread_rwlock_t *rw, const pthread_rwlockattr_t *a) { return green_hook_pthread_rwlock_init(rw, a); }
EXPORT int pthread_rwlock_destroy(pthread_rwlock_t *rw) { return green_hook_pthread_rwlock_destroy(rw); }
EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t *rw) { return green_hook_pthread_rwlock_rdlock(rw); }
EXPORT int pthread_rwlock_tryrdlock(pthread_rwlock_t *rw) { return green_hook_pthread_rwlock_tryrdlock(rw); }
EXPORT int pthread_rwlock_timedrdlock(pthread_rwlock_t *rw, const struct timespec *abs) { return green_hook_pthread_rwlock_timedrdlock(rw, abs); }
EXPORT int pthread_rwlock_clockrdlock(pthread_rwlock_t *rw, clockid_t clk, const struct timespec *abs) { return green_hook_pthread_rwlock_clockrdlock(rw, clk, abs); }
EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t *rw) { return green_hook_pthread_rwlock_wrlock(rw); }
EXPORT int pthread_rwlock_trywrlock(pthread_rwlock_t *rw) { return green_hook_pthread_rwlock_trywrlock(rw); }
EXPORT int pthread_rwlock_timedwrlock(pthread_rwlock_t *rw, const struct timespec *abs) { return green_hook_pthread_rwlock_timedwrlock(rw, abs); }
EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t *rw, clockid_t clk, const struct timespec *abs) { return green_hook_pthread_rwlock_clockwrlock(rw, clk, abs); }
EXPORT int pthread_rwlock_unlock(pthread_rwlock_t *rw) { return green_hook_pthread_rwlock_unlock(rw); }
EXPORT int pthread_barrier_init(pthread_barrier_t *b, const pthread_barrierattr_t *a, unsigned count) { return green_hook_pthread_barrier_init(b, a, count); }
EXPORT int pthread_barrier_destroy(pthread_barrier_t *b) { return green_hook_pthread_barrier_destroy(b); }
EXPORT int pthread_barrier_wait(pthread_barrier_t *b) { return green_hook_pthread_barrier_wait(b); }
EXPORT int pthread_spin_lock(pthread_spinlock_t *s) { return green_hook_pthread_spin_lock(s); }
EXPORT int pthread_spin_trylock(pthread_spinlock_t *s) { return green_hook_pthread_spin_trylock(s); }
EXPORT int pthread_spin_unlock(pthread_spinlock_t *s) { return green_hook_pthread_spin_unlock(s); }
EXPORT int sem_init(sem_t *s, int pshared, unsigned value) { return green_hook_sem_init(s, pshared, value); }
EXPORT int sem_destroy(sem_t *s) { return green_hook_sem_destroy(s); }
EXPORT int sem_wait(sem_t *s) { return green_hook_sem_wait(s); }
EXPORT int sem_trywait(sem_t *s) { return green_hook_sem_trywait(s); }
EXPORT int sem_timedwait(sem_t *s, const struct timespec *abs) { return green_hook_sem_timedwait(s, abs); }
EXPORT int sem_clockwait(sem_t *s, clockid_t clk, const struct timespec *abs) { return green_hook_sem_clockwait(s, clk, abs); }
EXPORT int sem_post(sem_t *s) { return green_hook_sem_post(s); }
EXPORT int sem_getvalue(sem_t *s, int *value) { return green_hook_sem_getvalue(s, value); }

/* C11 <threads.h> */
EXPORT int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg) { return green_hook_thrd_create(thr, fn, arg); }
EXPORT int thrd_join(thrd_t thr, int *res) { return green_hook_thrd_join(thr, res); }
EXPORT int thrd_detach(thrd_t thr) { return green_hook_thrd_detach(thr); }
EXPORT _Noreturn void thrd_exit(int res) { green_hook_thrd_exit(res); }
EXPORT thrd_t thrd_current(void) { return green_hook_thrd_current(); }
EXPORT int thrd_sleep(const struct timespec *d, struct timespec *rem) { return green_hook_thrd_sleep(d, rem); }
EXPORT void thrd_yield(void) { green_hook_thrd_yield(); }
EXPORT int tss_create(tss_t *key, tss_dtor_t d) { return green_hook_tss_create(key, d); }
EXPORT void tss_delete(tss_t key) { green_hook_tss_delete(key); }
EXPORT void *tss_get(tss_t key) { return green_hook_tss_get(key); }
EXPORT int tss_set(tss_t key, void *v) { return green_hook_tss_set(key, v); }
EXPORT void call_once(once_flag *flag, void (*fn)(void)) { green_hook_call_once(flag, fn); }
EXPORT int mtx_init(mtx_t *m, int type) { return green_hook_mtx_init(m, type); }
EXPORT void mtx_destroy(mtx_t *m) { green_hook_mtx_destroy(m); }
EXPORT int mtx_lock(mtx_t *m) { return green_hook_mtx_lock(m); }
EXPORT int mtx_trylock(mtx_t *m) { return green_hook_mtx_trylock(m); }
EXPORT int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict abs) { return green_hook_mtx_timedlock(m, abs); }
EXPORT int mtx_unlock(mtx_t *m) { return green_hook_mtx_unlock(m); }
EXPORT int cnd_init(cnd_t *c) { return green_hook_cnd_init(c); }
EXPORT void cnd_destroy(cnd_t *c) { green_hook_cnd_destroy(c); }
EXPORT int cnd_signal(cnd_t *c) { return green_hook_cnd_signal(c); }
EXPORT int cnd_broadcast(cnd_t *c) { return green_hook_cnd_broadcast(c); }
EXPORT int cnd_wait(cnd_t *c, mtx_t *m) { return green_hook_cnd_wait(c, m); }
EXPORT int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict abs) { return green_hook_cnd_timedwait(c, m, abs); }

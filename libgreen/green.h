/*
 * green.h - the public interface of libgreen, a gevent-style green-thread
 * runtime for C on Linux.
 *
 * A green thread is a coroutine with its own stack, scheduled cooperatively
 * on one OS thread by that OS thread's hub: a libev loop running in a green
 * thread of its own. A green thread runs until it parks (waits for a
 * descriptor, a timer, a lock, a join, ...) or yields; the hub then resumes
 * whoever is ready. The program's original stack is the main green thread,
 * as greenlet's main greenlet is.
 *
 * Conventions used throughout this header:
 *  - Functions return 0 (or a handle) on success, -1 (or NULL) with errno set
 *    on failure; the errno values are listed above each prototype.
 *  - "May switch." marks every function that can park the caller. A park
 *    fails with ECANCELED when the caller was killed (green_kill) and with
 *    ETIMEDOUT when a timeout scope (green_timeout_begin) around it expired.
 *  - Durations and deadlines are int64_t nanoseconds; GREEN_FOREVER (-1)
 *    means "no timeout". Deadlines are on CLOCK_MONOTONIC (green_now()).
 *  - Every handle (green_t, channel, group) and event belongs to the OS
 *    thread that created it; green_offload() and green_event_set_remote()
 *    cross OS threads. Semaphores, mutexes, condition variables and
 *    rwlocks are thread-safe: green threads of any OS thread (each with
 *    its own hub) may use one object at once.
 *  - No function aborts on ENOMEM; it fails with ENOMEM.
 *
 * Link with -lgreen (pkg-config --cflags --libs libgreen).
 */
#ifndef GREEN_H
#define GREEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif
/* libgreen is built with -fvisibility=hidden; everything declared here is
 * the exported interface. */
#pragma GCC visibility push(default)

#define GREEN_VERSION_MAJOR 0
#define GREEN_VERSION_MINOR 1
#define GREEN_VERSION_PATCH 0

/* ------------------------------------------------------------------ time */

#define GREEN_FOREVER ((int64_t)-1)
#define GREEN_NSEC(n) ((int64_t)(n))
#define GREEN_USEC(n) ((int64_t)(n) * 1000)
#define GREEN_MSEC(n) ((int64_t)(n) * 1000000)
#define GREEN_SEC(n)  ((int64_t)(n) * 1000000000)

/* Current CLOCK_MONOTONIC time in nanoseconds. Never fails. */
int64_t green_now(void);

/* --------------------------------------------------------- green threads */

/* Handle of a green thread. Valid from green_spawn() until the thread has
 * been joined, or until it finishes when it is detached. */
typedef struct green_thread *green_t;

/* Result of a green thread that was killed before it started, or that was
 * killed and returned without choosing a result of its own. */
#define GREEN_CANCELED ((void *)(intptr_t)-1)

/* Attributes of a new green thread. Zero-initialise and set what you need. */
typedef struct green_attr {
    size_t stack_size;  /* bytes; 0 = process default (GREEN_STACK_SIZE) */
    const char *name;   /* copied, truncated to 31 bytes; NULL = "green-ID" */
    bool detached;      /* resources freed at exit; cannot be joined */
    int guard;          /* -1/0 = process default (GREEN_STACK_GUARD),
                           1 = guard page below the stack, 2 = no guard page */
} green_attr_t;

/* Create a green thread that will run fn(arg). It is queued to run; the
 * caller keeps running. Spawning with a pooled stack makes no syscall.
 * Errors: EINVAL (fn is NULL, stack_size too small or absurd), ENOMEM (no
 * memory, or no more memory mappings: see README "Stacks"). */
green_t green_spawn(void *(*fn)(void *), void *arg, const green_attr_t *attr);

/* Wait until t has finished and store its result (or GREEN_CANCELED) in
 * *result when result is not NULL. Frees t. May switch.
 * Errors: EINVAL (t is NULL, detached, or already being joined), EDEADLK
 * (t is the caller; or nothing can ever finish t), ECANCELED, ETIMEDOUT. */
int green_join(green_t t, void **result);

/* As green_join, but give up after timeout_ns (ETIMEDOUT; t stays joinable).
 * May switch. */
int green_join_timeout(green_t t, void **result, int64_t timeout_ns);

/* Mark t detached: its resources are freed when it finishes.
 * Errors: EINVAL (NULL, already detached, being joined, or t belongs to
 * another OS thread). */
int green_detach(green_t t);

/* Cancel t: its current park, or its next one, fails with ECANCELED (once);
 * it can then clean up and return. A thread killed before it ever ran never
 * runs and its result is GREEN_CANCELED. Killing a finished thread does
 * nothing. Killing yourself marks the next park. Errors: EINVAL (NULL,
 * or t belongs to another OS thread). */
int green_kill(green_t t);

/* True when the calling green thread has been killed (green_kill). */
bool green_killed(void);

/* Greenlet-style direct switch: suspend the caller and run t at once,
 * handing it value. t must be new (never run) or suspended in
 * green_switch(); a new thread starts with fn(arg) as usual and can read the
 * value with green_switch_value(). The caller resumes when another thread
 * switches back to it, and *received (if not NULL) gets the value that
 * thread passed. If t finishes while the caller still waits in this
 * switch, the caller resumes with t's result in *received (as a dead
 * greenlet returns to its parent). May switch.
 * Errors: EINVAL (t NULL or the caller), EBUSY (t is running, runnable or
 * parked in something other than green_switch), ECANCELED. */
int green_switch(green_t t, void *value, void **received);

/* The value handed to the calling thread by the switch that first started
 * it (NULL if it was started by the scheduler). */
void *green_switch_value(void);

/* Let every other runnable green thread run once, then continue.
 * May switch. Errors: ECANCELED. */
int green_yield(void);

/* The calling green thread (the main green thread on the original stack).
 * Creates this OS thread's hub on first use; NULL only on ENOMEM. */
green_t green_self(void);

/* End the calling green thread with result. On the main green thread this
 * waits for every other green thread of the OS thread and then exits the
 * OS thread (as pthread_exit does). */
_Noreturn void green_exit(void *result);

/* Sleep for ns nanoseconds (sub-microsecond resolution, never early).
 * green_sleep(0) is green_yield(). May switch. Errors: ECANCELED, ETIMEDOUT
 * (a timeout scope expired first), EINVAL (ns < 0). */
int green_sleep(int64_t ns);

/* Sleep until the absolute green_now() deadline. May switch. */
int green_sleep_until(int64_t deadline_ns);

/* Unique id (1 = main green thread of the first hub; never reused). */
uint64_t green_id(green_t t);

/* Name of t ("main", "hub", the attribute name, or "green-ID"). */
const char *green_name(green_t t);

/* Rename t (truncated to 31 bytes). Errors: EINVAL. */
int green_setname(green_t t, const char *name);

/* Run the hub until every green thread of this OS thread other than the
 * caller has finished. May switch. Errors: EDEADLK (the rest are all parked
 * with nothing that could wake them), ECANCELED, ETIMEDOUT. */
int green_run(void);

/* -------------------------------------------------------------- N hubs */

/* Spread the green threads spawned from now on over n hubs: the caller's
 * and n - 1 more, each on an OS thread of libgreen's, started the first
 * time a spawn needs it. Green threads of different hubs run in parallel.
 * A new thread goes to the hub with the fewest live threads and stays
 * there for life (no migration: thread-local addresses and errno stay
 * valid). Linked explicitly the default is 1 (every thread on its
 * spawner's hub, never in parallel, as in gevent); under the LD_PRELOAD
 * shim it is GREEN_HUBS, by default the CPUs the process may use.
 * join, detach and kill work across hubs, and so do green.h's mutex,
 * condition, semaphore and rwlock; events, channels and green_switch are
 * for threads of one hub, and a group or pool keeps its members on the
 * hub of the thread that spawns them. With more than one hub a
 * deadlock is not reported (EDEADLK): the hubs wait for each other.
 * Errors: EINVAL (n < 1 or n > 256). */
int green_set_hubs(int n);

/* Hubs wanted, or started if more were (at least 1). */
int green_hubs(void);

/* ------------------------------------------------------ descriptor waits */

#define GREEN_READ  1
#define GREEN_WRITE 2

/* Park until fd is ready for the events in mask (GREEN_READ|GREEN_WRITE)
 * and return the ready subset. The fd's watcher stays armed between waits,
 * so a steady stream of waits costs no epoll_ctl. May switch.
 * Errors: EINVAL (bad fd or mask), EBADF (fd closed by green_close_fd or a
 * hooked close while waiting), ETIMEDOUT, ECANCELED. */
int green_wait_fd(int fd, int mask, int64_t timeout_ns);
int green_wait_readable(int fd, int64_t timeout_ns);
int green_wait_writable(int fd, int64_t timeout_ns);

/* Wake every green thread waiting on fd with EBADF and forget the fd's
 * watchers. Call before closing fd yourself (the preload's close() does). */
void green_fd_closing(int fd);

/* ------------------------------------------------------- timeout scopes */

/* A deadline around a block of code, like gevent.Timeout: every park
 * inside fails with ETIMEDOUT once it passes. Scopes nest; the earliest
 * deadline wins. Keep the struct on the stack between begin and end. */
typedef struct green_timeout {
    int64_t deadline;              /* absolute green_now() nanoseconds */
    struct green_timeout *outer;   /* enclosing scope (private) */
    bool expired;                  /* set when a park failed because of it */
} green_timeout_t;

/* Open a scope of timeout_ns (GREEN_FOREVER: no limit). Errors: EINVAL. */
int green_timeout_begin(green_timeout_t *scope, int64_t timeout_ns);
/* Close the innermost scope, which must be scope; returns scope->expired. */
bool green_timeout_end(green_timeout_t *scope);

/* --------------------------------------------------- synchronisation */

/* The objects below are plain storage: all-zero (the *_INIT macros) is a
 * valid initial state, so static and stack instances need no init call.
 * They must not be moved or copied while in use. */
typedef union green_event { void *_p[8]; } green_event_t;
typedef union green_sem   { void *_p[8]; } green_sem_t;
typedef union green_mutex { void *_p[8]; } green_mutex_t;
typedef union green_cond  { void *_p[8]; } green_cond_t;
typedef union green_rwlock { void *_p[8]; } green_rwlock_t;
#define GREEN_EVENT_INIT  {{0}}
#define GREEN_SEM_INIT    {{0}}
#define GREEN_MUTEX_INIT  {{0}}
#define GREEN_COND_INIT   {{0}}
#define GREEN_RWLOCK_INIT {{0}}

/* Event (gevent.event.Event): a flag green threads can wait for. */
void green_event_init(green_event_t *ev);
void green_event_set(green_event_t *ev);       /* wakes every waiter */
void green_event_clear(green_event_t *ev);
bool green_event_is_set(const green_event_t *ev);
/* Wait until set. May switch. Errors: ETIMEDOUT, ECANCELED. */
int green_event_wait(green_event_t *ev, int64_t timeout_ns);
/* Cross-thread events. green_event_init_remote (on the owner OS thread,
 * before any other use) makes ev settable from any OS thread with
 * green_event_set_remote; the set reaches the owner's hub through its
 * ev_async and takes effect there shortly after. While green threads wait
 * on such an event the hub never reports a deadlock (a set may come).
 * ev must outlive every green_event_set_remote call. Errors: ENOMEM. */
int green_event_init_remote(green_event_t *ev);
void green_event_set_remote(green_event_t *ev);

/* Counting semaphore. Errors: EINVAL (value < 0), EOVERFLOW (post past
 * INT32_MAX), ETIMEDOUT, ECANCELED, EAGAIN (trywait). May switch (wait). */
int green_sem_init(green_sem_t *s, int value);
int green_sem_wait(green_sem_t *s, int64_t timeout_ns);
int green_sem_trywait(green_sem_t *s);
int green_sem_post(green_sem_t *s);
int green_sem_value(const green_sem_t *s);

/* Mutex, plain or recursive. Owned by a green thread.
 * Errors: EINVAL, EDEADLK (plain mutex relocked by its owner), EPERM
 * (unlock by a non-owner), EBUSY (trylock), ETIMEDOUT, ECANCELED.
 * green_mutex_lock may switch. */
#define GREEN_MUTEX_PLAIN     0
#define GREEN_MUTEX_RECURSIVE 1
int green_mutex_init(green_mutex_t *m, int type);
int green_mutex_lock(green_mutex_t *m, int64_t timeout_ns);
int green_mutex_trylock(green_mutex_t *m);
int green_mutex_unlock(green_mutex_t *m);

/* Condition variable used with a green_mutex_t. wait releases m, parks,
 * and relocks m before returning, whatever the result. May switch.
 * Errors: EINVAL, EPERM (m not held), ETIMEDOUT, ECANCELED. */
void green_cond_init(green_cond_t *c);
int green_cond_wait(green_cond_t *c, green_mutex_t *m, int64_t timeout_ns);
void green_cond_signal(green_cond_t *c);
void green_cond_broadcast(green_cond_t *c);

/* Reader-writer lock; waiting writers block new readers (no writer
 * starvation). Errors: EDEADLK (write-lock held by caller), EPERM, EBUSY,
 * ETIMEDOUT, ECANCELED. May switch (lock functions). */
void green_rwlock_init(green_rwlock_t *rw);
int green_rwlock_rdlock(green_rwlock_t *rw, int64_t timeout_ns);
int green_rwlock_wrlock(green_rwlock_t *rw, int64_t timeout_ns);
int green_rwlock_tryrdlock(green_rwlock_t *rw);
int green_rwlock_trywrlock(green_rwlock_t *rw);
int green_rwlock_unlock(green_rwlock_t *rw);

/* ------------------------------------------------------------- channels */

/* A queue of void * messages between green threads (gevent.queue.Queue /
 * Go channel). capacity 0 = unbounded; N = bounded (send parks when full).
 * After green_chan_close, send fails with EPIPE and recv drains what is
 * left, then fails with EPIPE. */
typedef struct green_chan green_chan_t;
green_chan_t *green_chan_create(size_t capacity);   /* ENOMEM, EINVAL */
/* Frees ch; threads still waiting on it are woken with EPIPE first. */
void green_chan_destroy(green_chan_t *ch);
/* May switch. Errors: EPIPE (closed), ETIMEDOUT, ECANCELED, ENOMEM. */
int green_chan_send(green_chan_t *ch, void *msg, int64_t timeout_ns);
int green_chan_recv(green_chan_t *ch, void **msg, int64_t timeout_ns);
/* Never switch. Errors: EAGAIN (full / empty), EPIPE, ENOMEM. */
int green_chan_trysend(green_chan_t *ch, void *msg);
int green_chan_tryrecv(green_chan_t *ch, void **msg);
void green_chan_close(green_chan_t *ch);
size_t green_chan_len(const green_chan_t *ch);

/* ------------------------------------------------------ groups and pools */

/* A group tracks green threads (gevent.pool.Group); a pool is a group with
 * a concurrency bound (gevent.pool.Pool): green_group_spawn parks while
 * the pool is full. Threads spawned through a group are owned by it:
 * do not join or detach them yourself. */
typedef struct green_group green_group_t;
green_group_t *green_group_create(size_t max_running); /* 0 = unbounded */
/* Spawn into the group. May switch (bounded and full). Errors as
 * green_spawn, plus ETIMEDOUT/ECANCELED while waiting for a slot. */
green_t green_group_spawn(green_group_t *g, void *(*fn)(void *), void *arg,
                          const green_attr_t *attr);
/* Wait until every thread of the group has finished (joinall). May switch.
 * Errors: ETIMEDOUT, ECANCELED. */
int green_group_join(green_group_t *g, int64_t timeout_ns);
/* Kill every thread of the group (green_kill each). */
void green_group_kill(green_group_t *g);
size_t green_group_size(const green_group_t *g);   /* not yet finished */
/* Frees g after killing and joining whatever is still running. May switch. */
void green_group_destroy(green_group_t *g);

/* ------------------------------------------------ green-thread locals */

/* Keys for per-green-thread values, with an optional destructor called on
 * thread exit for non-NULL values (as pthread keys). At most 1024 keys.
 * Errors: EAGAIN (no key left), EINVAL (bad key). */
typedef unsigned int green_key_t;
int green_key_create(green_key_t *key, void (*destructor)(void *));
int green_key_delete(green_key_t key);
void *green_getspecific(green_key_t key);
int green_setspecific(green_key_t key, const void *value);

/* ------------------------------------------------------------- offload */

/* Run fn(arg) on a real worker thread while the calling green thread
 * parks; other green threads keep running. Returns fn's result in *result.
 * The pool has GREEN_WORKERS threads (default 4), started on first use.
 * Killing the caller makes it return ECANCELED at once; fn still runs to
 * completion on its worker and its result is dropped. May switch.
 * Errors: ENOMEM, EAGAIN (no worker thread could be started), ECANCELED,
 * ETIMEDOUT (a timeout scope; as with kill, fn completes anyway). */
int green_offload(void *(*fn)(void *), void *arg, void **result);

/* Set the worker pool size before first use. Errors: EINVAL (< 1 or > 256),
 * EBUSY (already started). */
int green_offload_set_workers(int n);

/* ------------------------------------------------------------- settings */

/* Default stack size for new green threads (bytes, rounded up to pages).
 * Errors: EINVAL (< 16 KiB or > 1 GiB). */
int green_set_default_stack_size(size_t bytes);
size_t green_default_stack_size(void);

/* Print every green thread of this OS thread (id, name, state, what it
 * waits on and for how long) to fd. Never switches. */
void green_dump(int fd);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif /* GREEN_H */

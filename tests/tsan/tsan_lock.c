/*
 * tsan_lock.c - the lock core across OS threads, without Criterion: a
 * plain program that ThreadSanitizer can run (Criterion's runner cannot:
 * its inheritable arena fails to initialise, or it crashes, under TSan).
 *
 * What it checks. The promise of lock.c: one green_mutex, green_sem,
 * green_cond (with its mutex) and green_rwlock shared at once by green
 * threads of three hubs (three OS threads, each with its own hub and
 * GREENS green threads) and by two plain OS threads without a hub (they
 * wait on futexes). Each phase counts what it must conserve: the mutex's
 * counter (no two holders at once, no lost update), the semaphore's units,
 * the tokens of a condition-variable queue (no lost wake-up: a lost one
 * hangs, and the alarm below ends the run), the rwlock's sum, and units
 * or ownership granted to waiters whose short deadlines race the grant.
 * Exits 0 only if every check held; prints one line per failed check.
 *
 * Invariants. Shared data is touched only under the object that guards it
 * (that is what TSan judges: an access outside would be a real race); the
 * "inside" counters that detect two holders are atomics, so they order
 * nothing by themselves. Plain threads call the core's internal entry
 * points with self NULL, as the pthread layer does for a thread without
 * a hub.
 *
 * Rejected: reusing tests/test_lock.c's lock_mt suite under TSan (it is
 * a Criterion suite, and Criterion is what TSan cannot run); a fork per
 * phase (TSan and fork with threads alive do not mix).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lock.h"

#define HUBS    3
#define GREENS  6     /* green threads per hub */
#define PLAINS  2     /* plain OS threads */
#define ITERS   1000  /* rounds per thread and phase */
#define TOKENS  600   /* per producer */
#define ALL     (HUBS * GREENS + PLAINS)

static int failures;

static void check(int ok, const char *what, long got, long want)
{
    if (ok)
        return;
    fprintf(stderr, "tsan_lock: FAILED: %s (got %ld, want %ld)\n", what, got, want);
    failures++;
}

/* ------------------------------------------------- the threads of a phase */

typedef void *(*body_fn)(void *);

static void *hub_thread(void *p)
{
    body_fn body = (body_fn)p;
    green_t t[GREENS];
    for (int i = 0; i < GREENS; i++)
        t[i] = green_spawn(body, (void *)(intptr_t)i, NULL);
    long bad = 0;
    for (int i = 0; i < GREENS; i++) {
        void *r = NULL;
        if (!t[i] || green_join(t[i], &r) != 0 || r != NULL)
            bad++;
    }
    return (void *)bad;
}

/* Run body on HUBS hub threads and PLAINS plain threads; every body
 * returns NULL when it saw nothing wrong. */
static void run_phase(const char *name, body_fn body)
{
    pthread_t h[HUBS + PLAINS];
    for (int i = 0; i < HUBS; i++)
        if (pthread_create(&h[i], NULL, hub_thread, (void *)body) != 0)
            abort();
    for (int i = 0; i < PLAINS; i++)
        if (pthread_create(&h[HUBS + i], NULL, body, (void *)(intptr_t)i) != 0)
            abort();
    for (int i = 0; i < HUBS + PLAINS; i++) {
        void *r = (void *)1;
        pthread_join(h[i], &r);
        check(r == NULL, name, (long)(intptr_t)r, 0);
    }
}

/* A short pause that lets the others in. */
static void pause_a_little(void)
{
    if (green__current())
        green_yield();
    else
        sched_yield();
}

static green_mutex_t mu = GREEN_MUTEX_INIT;
static struct green__mutex *gmu(void) { return (struct green__mutex *)(void *)&mu; }
static long counter, timedout;
static int inside;

static int mu_lock(int64_t deadline)
{
    return green__mutex_lock(gmu(), green__current(), GREEN__MUTEX_ERRORCHECK,
                             deadline, &green__lock_plain);
}

static int mu_unlock(void)
{
    return green__mutex_unlock(gmu(), green__current(), GREEN__MUTEX_ERRORCHECK);
}

/* ------------------------------------------------------------------ mutex */

static void *mutex_body(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        if (mu_lock(GREEN_FOREVER) != 0)
            return (void *)1;
        if (__atomic_fetch_add(&inside, 1, __ATOMIC_RELAXED) != 0)
            return (void *)2;
        long v = counter;
        if (i % 16 == 0)
            pause_a_little();   /* hold it across a switch now and then */
        counter = v + 1;
        __atomic_fetch_sub(&inside, 1, __ATOMIC_RELAXED);
        if (mu_unlock() != 0)
            return (void *)3;
    }
    return NULL;
}

/* ------------------------------------------------------------- semaphore */

static green_sem_t sem;
static struct green__sem *gsem(void) { return (struct green__sem *)(void *)&sem; }
static long taken;

/* With 3 units never more than 3 inside; at the end all 3 are back. */
static void *sem_body(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        if (green__sem_wait(gsem(), green__current(), GREEN_FOREVER,
                            &green__lock_plain) != 0)
            return (void *)1;
        if (__atomic_add_fetch(&inside, 1, __ATOMIC_RELAXED) > 3)
            return (void *)2;
        if (i % 8 == 0)
            pause_a_little();
        __atomic_fetch_add(&taken, 1, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&inside, 1, __ATOMIC_RELAXED);
        if (green__sem_post(gsem()) != 0)
            return (void *)3;
    }
    return NULL;
}

/* ------------------------------------------------ condition variable queue */

/* A bounded queue of tokens under mu: green threads of every hub produce
 * and consume (half each), the plain threads consume; every token
 * produced is consumed exactly once. */
static green_cond_t nonempty, nonfull;
static int queued, producers_left;
static long consumed;

static int cond_wait(green_cond_t *c)
{
    return green__cond_wait((struct green__cond *)(void *)c, gmu(), green__current(),
                            GREEN_FOREVER, &green__lock_plain);
}

static void *consumer(void)
{
    for (;;) {
        if (mu_lock(GREEN_FOREVER) != 0)
            return (void *)1;
        while (!queued && producers_left)
            if (cond_wait(&nonempty) != 0)
                return (void *)2;
        if (!queued) {
            mu_unlock();
            return NULL;
        }
        queued--;
        consumed++;
        green__cond_signal((struct green__cond *)(void *)&nonfull);
        mu_unlock();
    }
}

static void *cond_body(void *arg)
{
    if (!green__current() || (intptr_t)arg % 2)
        return consumer();
    for (int i = 0; i < TOKENS; i++) {
        if (mu_lock(GREEN_FOREVER) != 0)
            return (void *)1;
        while (queued >= 4)
            if (cond_wait(&nonfull) != 0)
                return (void *)2;
        queued++;
        green_cond_signal(&nonempty);
        mu_unlock();
    }
    mu_lock(GREEN_FOREVER);
    if (--producers_left == 0)
        green_cond_broadcast(&nonempty);
    mu_unlock();
    return NULL;
}

/* ----------------------------------------------------------------- rwlock */

/* Writers move a unit from a to b; readers check the sum. */
static green_rwlock_t rw = GREEN_RWLOCK_INIT;
static long ra = 1000000, rb;

static void *rw_body(void *arg)
{
    struct green_thread *self = green__current();
    struct green__rwlock *g = (struct green__rwlock *)(void *)&rw;
    for (int i = 0; i < ITERS; i++) {
        int write = ((intptr_t)arg + i) % 4 == 0;
        if (green__rwlock_lock(g, self, write, GREEN__RW_FIFO, GREEN_FOREVER,
                               &green__lock_plain) != 0)
            return (void *)1;
        if (write) {
            long a = ra;
            if (i % 16 == 0)
                pause_a_little();
            ra = a - 1;
            rb++;
        } else if (ra + rb != 1000000) {
            return (void *)2;
        }
        if (green__rwlock_unlock(g, self, GREEN__RW_FIFO) != 0)
            return (void *)3;
    }
    return NULL;
}

/* ------------------------------------------------ timeouts racing grants */

/* Waiters with deadlines of a few microseconds while others post: a unit
 * handed to a waiter that then reported a timeout would vanish. */
static void *sem_race_body(void *arg)
{
    for (int i = 0; i < ITERS; i++) {
        if (((intptr_t)arg + i) % 2) {
            if (green__sem_post(gsem()) != 0)
                return (void *)1;
            continue;
        }
        int e = green__sem_wait(gsem(), green__current(),
                                green_now() + GREEN_USEC(i % 7 * 3), &green__lock_plain);
        if (e == 0)
            __atomic_fetch_add(&taken, 1, __ATOMIC_RELAXED);
        else if (e == ETIMEDOUT)
            __atomic_fetch_add(&timedout, 1, __ATOMIC_RELAXED);
        else
            return (void *)2;
    }
    return NULL;
}

/* The same race on the mutex: it is never left held by a waiter that
 * gave up, and every round either counted or timed out. */
static void *mutex_race_body(void *arg)
{
    for (int i = 0; i < ITERS; i++) {
        int e = mu_lock(green_now() + GREEN_USEC(((intptr_t)arg + i) % 5 * 4));
        if (e == ETIMEDOUT) {
            __atomic_fetch_add(&timedout, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (e != 0 || __atomic_fetch_add(&inside, 1, __ATOMIC_RELAXED) != 0)
            return (void *)1;
        counter++;
        if (i % 8 == 0)
            pause_a_little();
        __atomic_fetch_sub(&inside, 1, __ATOMIC_RELAXED);
        if (mu_unlock() != 0)
            return (void *)2;
    }
    return NULL;
}

/* ------------------------------------------------------------------- main */

int main(void)
{
    alarm(120);   /* a lost wake-up hangs: end it loudly (SIGALRM) */

    run_phase("mutex", mutex_body);
    check(counter == (long)ALL * ITERS, "mutex counter", counter, (long)ALL * ITERS);
    check(green_mutex_trylock(&mu) == 0 && green_mutex_unlock(&mu) == 0,
          "mutex left held", 1, 0);

    green_sem_init(&sem, 3);
    run_phase("sem", sem_body);
    check(taken == (long)ALL * ITERS, "sem rounds", taken, (long)ALL * ITERS);
    check(green_sem_value(&sem) == 3, "sem units", green_sem_value(&sem), 3);

    producers_left = HUBS * GREENS / 2;
    run_phase("cond", cond_body);
    check(consumed == (long)HUBS * GREENS / 2 * TOKENS, "cond tokens consumed",
          consumed, (long)HUBS * GREENS / 2 * TOKENS);
    check(queued == 0, "cond tokens left", queued, 0);

    run_phase("rwlock", rw_body);
    check(ra + rb == 1000000, "rwlock sum", ra + rb, 1000000);
    check(!green__rwlock_busy((struct green__rwlock *)(void *)&rw), "rwlock left busy", 1, 0);

    green_sem_init(&sem, 0);
    taken = timedout = 0;
    run_phase("sem timeouts", sem_race_body);
    long posts = (long)ALL * ITERS / 2;
    check(taken + green_sem_value(&sem) == posts, "sem units taken + left",
          taken + green_sem_value(&sem), posts);
    check(green__waitq_empty(&gsem()->q), "sem waiters left", 1, 0);

    counter = timedout = 0;
    run_phase("mutex timeouts", mutex_race_body);
    check(counter + timedout == (long)ALL * ITERS, "mutex rounds counted or timed out",
          counter + timedout, (long)ALL * ITERS);
    check(green_mutex_trylock(&mu) == 0 && green_mutex_unlock(&mu) == 0,
          "mutex left held after timeouts", 1, 0);

    if (failures)
        return 1;
    printf("tsan_lock: ok (timeouts that raced a grant: %ld)\n", timedout);
    return 0;
}

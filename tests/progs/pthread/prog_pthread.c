/*
 * prog_pthread.c - a plain pthread program (never linked to libgreen) that
 * tests/test_preload_pthread.c runs under LD_PRELOAD=libgreen.so. argv[1]
 * names a scenario; each prints "key=value" lines that the test checks,
 * starting with "threads=N": the number of OS threads (/proc/self/status)
 * while many pthreads are alive, which proves the hook was taken (about 1
 * under the shim, one per pthread natively).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "../progutil.h"

#define P(x) ((void *)(intptr_t)(x))
#define I(x) ((int)(intptr_t)(x))

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec abs_in(clockid_t clk, int64_t ns)
{
    int64_t t = now_ns(clk) + ns;
    return (struct timespec){ .tv_sec = t / 1000000000, .tv_nsec = t % 1000000000 };
}

static void check(int rc, const char *what)
{
    if (rc != 0) {
        out("error=%s:%s", what, strerror(rc));
        exit(2);
    }
}

static void start(pthread_t *th, int n, void *(*fn)(void *))
{
    for (int i = 0; i < n; i++)
        check(pthread_create(&th[i], NULL, fn, P(i)), "pthread_create");
}

static void join_all(pthread_t *th, int n)
{
    for (int i = 0; i < n; i++)
        check(pthread_join(th[i], NULL), "pthread_join");
}

/* ------------------------------------------------- proof: 100 parked */

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int arrived, go;

static void *arrive_and_wait(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    arrived++;
    pthread_cond_broadcast(&cv);
    while (!go)
        pthread_cond_wait(&cv, &m);
    pthread_mutex_unlock(&m);
    return NULL;
}

static int proof(void)
{
    pthread_t th[100];
    pthread_t self = pthread_self();
    start(th, 100, arrive_and_wait);
    pthread_mutex_lock(&m);
    while (arrived < 100)
        pthread_cond_wait(&cv, &m);
    out("threads=%d", os_threads());
    go = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&m);
    join_all(th, 100);
    out("joined=100");
    out("self_stable=%d", pthread_equal(self, pthread_self()) ? 1 : 0);
    return 0;
}

/* ------------------------- mutex held across a blocking call (usleep) */

static int counter, inside, max_inside;

static void *bump(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        pthread_mutex_lock(&m);
        if (++inside > max_inside)
            max_inside = inside;
        int v = counter;
        usleep(100);
        if (i % 2) {
            /* and across a read that blocks until a byte is there */
            int p[2];
            if (pipe(p) == 0) {
                char c = 'x';
                if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1)
                    exit(3);
                close(p[0]);
                close(p[1]);
            }
        }
        counter = v + 1;
        inside--;
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

static int mutex_across_blocking(void)
{
    pthread_t th[50];
    start(th, 50, bump);
    out("threads=%d", os_threads());
    join_all(th, 50);
    out("counter=%d", counter);
    out("max_inside=%d", max_inside);
    return 0;
}

/* ------------------------------------- bounded producer/consumer queue */

#define QCAP 16
static int q[QCAP], qhead, qlen, produced_sum, consumed_sum, consumed;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;

static void *producer(void *arg)
{
    for (int i = 1; i <= 250; i++) {
        int item = I(arg) * 1000 + i;
        pthread_mutex_lock(&m);
        while (qlen == QCAP)
            pthread_cond_wait(&not_full, &m);
        q[(qhead + qlen++) % QCAP] = item;
        produced_sum += item;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 250; i++) {
        pthread_mutex_lock(&m);
        while (qlen == 0)
            pthread_cond_wait(&not_empty, &m);
        consumed_sum += q[qhead];
        qhead = (qhead + 1) % QCAP;
        qlen--;
        consumed++;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

static int condvar(void)
{
    pthread_t p[4], c[4];
    start(c, 4, consumer);
    start(p, 4, producer);
    out("threads=%d", os_threads());
    join_all(p, 4);
    join_all(c, 4);
    out("consumed=%d", consumed);
    out("sums_match=%d", consumed_sum == produced_sum && produced_sum > 0);
    return 0;
}

/* -------------------------------------------------- timed waits: ETIMEDOUT */

static volatile int ticks, stop_ticker;

static void *ticker(void *arg)
{
    (void)arg;
    while (!stop_ticker) {
        usleep(2000);
        ticks++;
    }
    return NULL;
}

static void *hold_m_300ms(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    usleep(300000);
    pthread_mutex_unlock(&m);
    return NULL;
}

#define MS(t0, clk) ((now_ns(clk) - (t0)) / 1000000)

static int timed(void)
{
    pthread_t tk, holder;
    check(pthread_create(&tk, NULL, ticker, NULL), "create");
    out("threads=%d", os_threads());
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t mono;
    pthread_cond_init(&mono, &ca);

    pthread_mutex_lock(&m);
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    struct timespec ts = abs_in(CLOCK_MONOTONIC, 50000000);
    int r = pthread_cond_timedwait(&mono, &m, &ts);
    out("cond_mono=%s ms=%lld", r == ETIMEDOUT ? "ETIMEDOUT" : strerror(r), (long long)MS(t0, CLOCK_MONOTONIC));
    t0 = now_ns(CLOCK_MONOTONIC);
    ts = abs_in(CLOCK_REALTIME, 50000000);
    r = pthread_cond_timedwait(&cv, &m, &ts);
    out("cond_real=%s ms=%lld", r == ETIMEDOUT ? "ETIMEDOUT" : strerror(r), (long long)MS(t0, CLOCK_MONOTONIC));
    t0 = now_ns(CLOCK_MONOTONIC);
    ts = abs_in(CLOCK_MONOTONIC, 50000000);
    r = pthread_cond_clockwait(&cv, &m, CLOCK_MONOTONIC, &ts);
    out("cond_clockwait=%s ms=%lld", r == ETIMEDOUT ? "ETIMEDOUT" : strerror(r), (long long)MS(t0, CLOCK_MONOTONIC));
    pthread_mutex_unlock(&m);

    sem_t s;
    sem_init(&s, 0, 0);
    t0 = now_ns(CLOCK_MONOTONIC);
    ts = abs_in(CLOCK_MONOTONIC, 50000000);
    r = sem_clockwait(&s, CLOCK_MONOTONIC, &ts) == -1 ? errno : 0;
    out("sem_clockwait=%s ms=%lld", r == ETIMEDOUT ? "ETIMEDOUT" : strerror(r), (long long)MS(t0, CLOCK_MONOTONIC));
    t0 = now_ns(CLOCK_MONOTONIC);
    ts = abs_in(CLOCK_REALTIME, 50000000);
    r = sem_timedwait(&s, &ts) == -1 ? errno : 0;
    out("sem_timedwait=%s ms=%lld", r == ETIMEDOUT ? "ETIMEDOUT" : strerror(r), (long long)MS(t0, CLOCK_MONOTONIC));

    check(pthread_create(&holder, NULL, hold_m_300ms, NULL), "create");
    usleep(20000);
    t0 = now_ns(CLOCK_MONOTONIC);
    ts = abs_in(CLOCK_REALTIME, 50000000);
    r = pthread_mutex_timedlock(&m, &ts);
    out("mutex_timedlock=%s ms=%lld", r == ETIMEDOUT ? "ETIMEDOUT" : strerror(r), (long long)MS(t0, CLOCK_MONOTONIC));
    pthread_join(holder, NULL);
    stop_ticker = 1;
    pthread_join(tk, NULL);
    /* The ticker kept running while main waited: the waits parked only main. */
    out("ticks=%d", ticks);
    return 0;
}

/* ------------------------------------------------------ keys and once */

static pthread_key_t key;
static int destructed, destructed_sum;

static void destroy(void *v)
{
    destructed++;
    destructed_sum += I(v);
}

static void *use_key(void *arg)
{
    pthread_setspecific(key, P(I(arg) + 1));
    usleep(1000);
    if (I(pthread_getspecific(key)) != I(arg) + 1)
        exit(4);
    return NULL;
}

static int keys(void)
{
    check(pthread_key_create(&key, destroy), "key_create");
    pthread_t th[20];
    start(th, 20, use_key);
    out("threads=%d", os_threads());
    join_all(th, 20);
    out("destructed=%d", destructed);
    out("destructed_sum=%d", destructed_sum);
    return 0;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_runs, saw_init_done;

static void init_once(void)
{
    usleep(10000);   /* the other callers must wait, not run it */
    init_runs++;
}

static void *call_once(void *arg)
{
    (void)arg;
    pthread_once(&once, init_once);
    __atomic_fetch_add(&saw_init_done, init_runs == 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int once_test(void)
{
    pthread_t th[100];
    start(th, 100, call_once);
    out("threads=%d", os_threads());
    join_all(th, 100);
    out("init_runs=%d", init_runs);
    out("saw_init_done=%d", saw_init_done);
    return 0;
}

/* -------------------------------------------------------------- rwlock */

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static int readers_in, max_readers, writers_in, violations;

static void *rw_thread(void *arg)
{
    for (int i = 0; i < 5; i++) {
        if (I(arg) % 4 == 0) {
            pthread_rwlock_wrlock(&rw);
            if (++writers_in > 1 || readers_in)
                violations++;
            usleep(2000);
            writers_in--;
        } else {
            pthread_rwlock_rdlock(&rw);
            __atomic_fetch_add(&readers_in, 1, __ATOMIC_SEQ_CST);
            if (readers_in > max_readers)
                max_readers = readers_in;
            if (writers_in)
                violations++;
            usleep(5000);
            __atomic_fetch_sub(&readers_in, 1, __ATOMIC_SEQ_CST);
        }
        pthread_rwlock_unlock(&rw);
    }
    return NULL;
}

static int rwlock(void)
{
    pthread_t th[20];
    start(th, 20, rw_thread);
    out("threads=%d", os_threads());
    join_all(th, 20);
    out("violations=%d", violations);
    out("readers_shared=%d", max_readers > 1);
    return 0;
}

/* ----------------------------------------------------- sem and barrier */

static sem_t sem;
static int got;

static void *sem_waiter(void *arg)
{
    (void)arg;
    while (sem_wait(&sem) != 0)
        ;
    __atomic_fetch_add(&got, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int sem_test(void)
{
    sem_init(&sem, 0, 0);
    pthread_t th[30];
    start(th, 30, sem_waiter);
    out("threads=%d", os_threads());
    usleep(20000);
    out("got_before_post=%d", got);
    for (int i = 0; i < 30; i++)
        sem_post(&sem);
    join_all(th, 30);
    int v = -1;
    sem_getvalue(&sem, &v);
    out("got=%d", got);
    out("value=%d", v);
    out("trywait=%s", sem_trywait(&sem) == -1 && errno == EAGAIN ? "EAGAIN" : "other");
    sem_destroy(&sem);
    return 0;
}

static pthread_barrier_t bar;
static int serials, passed;

static void *barrier_thread(void *arg)
{
    (void)arg;
    for (int round = 0; round < 5; round++) {
        int r = pthread_barrier_wait(&bar);
        if (r == PTHREAD_BARRIER_SERIAL_THREAD)
            __atomic_fetch_add(&serials, 1, __ATOMIC_SEQ_CST);
        else if (r != 0)
            exit(5);
        __atomic_fetch_add(&passed, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static int barrier(void)
{
    pthread_barrier_init(&bar, NULL, 10);
    pthread_t th[10];
    start(th, 10, barrier_thread);
    out("threads=%d", os_threads());
    join_all(th, 10);
    out("serials=%d", serials);
    out("passed=%d", passed);
    pthread_barrier_destroy(&bar);
    return 0;
}

/* ------------------------------------------------------- main's exits */

static void *late_worker(void *arg)
{
    usleep(100000 + 10000 * I(arg));
    out("worker %d done", I(arg));
    return NULL;
}

static int main_exit(void)
{
    pthread_t th[5];
    start(th, 5, late_worker);
    out("threads=%d", os_threads());
    out("main exiting");
    pthread_exit(NULL);
}

static void *very_late_worker(void *arg)
{
    (void)arg;
    sleep(3);
    out("late worker ran");
    return NULL;
}

static int main_return(void)
{
    pthread_t th[5];
    start(th, 5, very_late_worker);
    out("threads=%d", os_threads());
    out("main returning");
    return 3;
}

/* --------------------------------------------------------- cancellation */

static int cleanup_ran, cleanup_had_mutex;

static void unlock_cleanup(void *arg)
{
    cleanup_ran++;
    cleanup_had_mutex = pthread_mutex_trylock(arg) == EBUSY;
    pthread_mutex_unlock(arg);
}

static void *wait_forever(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    pthread_cleanup_push(unlock_cleanup, &m);
    for (;;)
        pthread_cond_wait(&cv, &m);
    pthread_cleanup_pop(1);
    return NULL;
}

static void *sleep_forever(void *arg)
{
    (void)arg;
    for (;;)
        pthread_testcancel(), usleep(1000);
    return NULL;
}

static int cancel(void)
{
    pthread_t a, b;
    check(pthread_create(&a, NULL, wait_forever, NULL), "create");
    check(pthread_create(&b, NULL, sleep_forever, NULL), "create");
    out("threads=%d", os_threads());
    usleep(20000);
    check(pthread_cancel(a), "cancel");
    check(pthread_cancel(b), "cancel");
    void *ra = NULL, *rb = NULL;
    check(pthread_join(a, &ra), "join");
    check(pthread_join(b, &rb), "join");
    out("a_canceled=%d", ra == PTHREAD_CANCELED);
    out("b_canceled=%d", rb == PTHREAD_CANCELED);
    out("cleanup_ran=%d", cleanup_ran);
    out("cleanup_had_mutex=%d", cleanup_had_mutex);
    out("mutex_free=%d", pthread_mutex_trylock(&m) == 0);
    return 0;
}

static char order[8];

static void note(void *arg)
{
    strncat(order, arg, sizeof order - strlen(order) - 1);
}

static void *exit_with_handlers(void *arg)
{
    (void)arg;
    pthread_cleanup_push(note, "a");
    pthread_cleanup_push(note, "b");
    pthread_cleanup_push(note, "c");
    pthread_cleanup_pop(0);   /* popped without running */
    usleep(1000);
    pthread_exit(P(42));
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return NULL;
}

static int exit_cleanup(void)
{
    pthread_t t;
    check(pthread_create(&t, NULL, exit_with_handlers, NULL), "create");
    out("threads=%d", os_threads());
    void *r;
    check(pthread_join(t, &r), "join");
    out("exit_value=%d", I(r));
    out("handlers=%s", order);
    return 0;
}

/* ------------------------------------------------------- identity, names */

static pthread_t named;

static void *name_self(void *arg)
{
    (void)arg;
    pthread_t *mine = &named;
    pthread_setname_np(pthread_self(), "namedworker");
    usleep(1000);
    return P(pthread_equal(*mine, pthread_self()));
}

static int identity(void)
{
    pthread_t main_before = pthread_self();
    check(pthread_create(&named, NULL, name_self, NULL), "create");
    pthread_t th = named;
    out("threads=%d", os_threads());
    usleep(500);
    char name[16] = "";
    pthread_getname_np(th, name, sizeof name);
    out("name=%s", name);
    void *eq;
    check(pthread_join(th, &eq), "join");
    out("self_matches_create=%d", I(eq));
    out("main_self_stable=%d", pthread_equal(main_before, pthread_self()) ? 1 : 0);
    out("kill0_self=%d", pthread_kill(pthread_self(), 0));
    return 0;
}

/* --------------------------------------- sem_post from a signal handler */

static sem_t sig_sem;

static void post_on_signal(int sig)
{
    (void)sig;
    sem_post(&sig_sem);   /* async-signal-safe */
}

static void *wait_sig_sem(void *arg)
{
    (void)arg;
    return P(sem_wait(&sig_sem) == 0);
}

/* A semaphore that only a signal handler posts, with nothing else (no
 * descriptor, no timer) that could wake the process: first main waits
 * alone, then a thread waits while main waits to join it. */
static int sem_signal(void)
{
    sem_init(&sig_sem, 0, 0);
    struct sigaction sa = { .sa_handler = post_on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { .it_value = { .tv_usec = 50000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    while (sem_wait(&sig_sem) != 0)
        ;
    out("main_woken=1");
    pthread_t t;
    check(pthread_create(&t, NULL, wait_sig_sem, NULL), "create");
    out("threads=%d", os_threads());
    setitimer(ITIMER_REAL, &it, NULL);
    void *r;
    check(pthread_join(t, &r), "join");
    out("thread_woken=%d", I(r));
    return 0;
}

/* ------------------------------------- a SIGEV_THREAD timer's notify */

static volatile int fired;
static int timer_waiting, timer_woken;

/* glibc runs this on a thread of its own: a plain OS thread, not green. */
static void on_timer(union sigval v)
{
    (void)v;
    fired = 1;
    pthread_cond_broadcast(&cv);
}

/* Wait (10 s at most) for the timer's notify function to fire. */
static void *wait_for_timer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    timer_waiting++;
    struct timespec ts = abs_in(CLOCK_REALTIME, 10000000000LL);
    int r = 0;
    while (!fired && r == 0)
        r = pthread_cond_timedwait(&cv, &m, &ts);
    timer_woken += fired && r == 0;
    pthread_mutex_unlock(&m);
    return NULL;
}

static int timer_thread(void)
{
    pthread_t th[50];
    start(th, 50, wait_for_timer);
    for (int i = 0; i < 1000 && timer_waiting < 50; i++)
        usleep(1000);
    out("threads=%d", os_threads());
    struct sigevent ev = { .sigev_notify = SIGEV_THREAD,
                           .sigev_notify_function = on_timer };
    timer_t tm;
    if (timer_create(CLOCK_MONOTONIC, &ev, &tm) != 0)
        return 6;
    struct itimerspec its = { .it_value = { .tv_nsec = 50000000 } };
    timer_settime(tm, 0, &its, NULL);
    join_all(th, 50);
    out("woken=%d", timer_woken);
    timer_delete(tm);
    return 0;
}

/* ------------------------------------------------------- measurements */

static int bench_mutex(void)
{
    pthread_mutex_t bm = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&bm);   /* the first call adopts the hub */
    pthread_mutex_unlock(&bm);
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < 10000000; i++) {
        pthread_mutex_lock(&bm);
        pthread_mutex_unlock(&bm);
    }
    out("mutex_pair_ns=%.1f", (now_ns(CLOCK_MONOTONIC) - t0) / 1e7);
    return 0;
}

static int turn, rounds_left = 100000;

static void *ping(void *arg)
{
    int me = I(arg);
    pthread_mutex_lock(&m);
    while (rounds_left > 0) {
        while (turn != me && rounds_left > 0)
            pthread_cond_wait(&cv, &m);
        if (rounds_left <= 0)
            break;
        turn = !me;
        rounds_left -= me;
        pthread_cond_broadcast(&cv);
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&m);
    return NULL;
}

static int bench_pingpong(void)
{
    pthread_t th[2];
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    start(th, 2, ping);
    join_all(th, 2);
    out("condvar_round_trip_ns=%.1f", (now_ns(CLOCK_MONOTONIC) - t0) / 1e5);
    return 0;
}

static void *nothing(void *arg) { return arg; }

static int bench_create(void)
{
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < 100000; i++) {
        pthread_t t;
        check(pthread_create(&t, NULL, nothing, NULL), "create");
        check(pthread_join(t, NULL), "join");
    }
    out("create_join_ns=%.1f", (now_ns(CLOCK_MONOTONIC) - t0) / 1e5);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct { const char *name; int (*fn)(void); } modes[] = {
        { "proof", proof }, { "mutex", mutex_across_blocking },
        { "condvar", condvar }, { "timed", timed }, { "keys", keys },
        { "once", once_test }, { "rwlock", rwlock }, { "sem", sem_test },
        { "barrier", barrier }, { "main_exit", main_exit },
        { "main_return", main_return }, { "cancel", cancel },
        { "exit_cleanup", exit_cleanup }, { "sem_signal", sem_signal },
        { "timer_thread", timer_thread },
        { "identity", identity }, { "bench_mutex", bench_mutex },
        { "bench_pingpong", bench_pingpong }, { "bench_create", bench_create },
    };
    for (size_t i = 0; argc > 1 && i < sizeof modes / sizeof *modes; i++)
        if (!strcmp(argv[1], modes[i].name))
            return modes[i].fn();
    fprintf(stderr, "usage: %s proof|mutex|condvar|timed|keys|once|rwlock|sem|"
                    "barrier|main_exit|main_return|cancel|identity\n", argv[0]);
    return 64;
}

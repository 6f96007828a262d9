/*
 * cases_thread.c - differential cases of the thread family (see diff.h):
 * fork with threads, fair turns of busy-waiting threads, join/detach
 * errors, once, stacks, cancellation, scheduling attributes, mutex kinds,
 * condition variables, rwlocks, barriers, spinlocks, semaphores (unnamed,
 * named, process-shared), keys, names, process exit with threads, C11.
 *
 * Native glibc is the oracle; where POSIX leaves a result undefined and
 * glibc's answer is an accident (joining a thread twice after it was
 * freed, a handle that was never a thread), there is no case.
 */
#include "diff.h"
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <threads.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

static void *sleeper(void *arg)
{
    usleep((useconds_t)(intptr_t)arg * 1000);
    return arg;
}

static volatile sig_atomic_t hits;
static void on_sig(int sig) { (void)sig; hits++; }

static void handle(int sig, int flags)
{
    struct sigaction sa = { .sa_handler = on_sig, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* ---------------------------------------------------------------- fork */

static atomic_int counter;

static void *count_forever(void *arg)
{
    (void)arg;
    for (;;) {
        atomic_fetch_add(&counter, 1);
        usleep(1000);
    }
    return NULL;
}

DIFF_CASE(thread, fork_child_does_not_run_the_parents_other_threads)
{
    pthread_t t = diff_spawn(count_forever, NULL);
    while (atomic_load(&counter) < 3)
        usleep(1000);
    pid_t pid = fork();
    if (pid == 0) {
        int before = atomic_load(&counter);
        usleep(50000);
        _exit(atomic_load(&counter) == before ? 0 : 1);
    }
    diff_child_status("child (0 = counter did not move)", pid);
    pthread_cancel(t);
    CALL("join", pthread_join(t, NULL));
}

static pthread_mutex_t fk_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fk_c = PTHREAD_COND_INITIALIZER;
static int fk_go, fk_woke;

static void *cond_waiter_prints(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&fk_m);
    fk_woke = 1;
    while (!fk_go)
        pthread_cond_wait(&fk_c, &fk_m);
    pthread_mutex_unlock(&fk_m);
    diff_out("waiter woke in pid-%s", getpid() == (pid_t)(intptr_t)arg ? "parent" : "child");
    return NULL;
}

DIFF_CASE(thread, fork_child_signalling_a_copied_condvar_wakes_no_one)
{
    pthread_t t = diff_spawn(cond_waiter_prints, (void *)(intptr_t)getpid());
    for (;;) {
        pthread_mutex_lock(&fk_m);
        int w = fk_woke;
        pthread_mutex_unlock(&fk_m);
        if (w)
            break;
        usleep(1000);
    }
    usleep(5000);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&fk_m);
        fk_go = 1;
        pthread_cond_broadcast(&fk_c);
        pthread_mutex_unlock(&fk_m);
        usleep(30000);
        diff_out("child done");
        _exit(0);
    }
    diff_child_status("child", pid);
    pthread_mutex_lock(&fk_m);
    fk_go = 1;
    pthread_cond_broadcast(&fk_c);
    pthread_mutex_unlock(&fk_m);
    CALL("join", pthread_join(t, NULL));
}

static char atf_log[64];
static void atf_add(char c)
{
    size_t n = strlen(atf_log);
    if (n + 1 < sizeof atf_log)
        atf_log[n] = c;
}
static void atf_p1(void) { atf_add('P'); atf_add('1'); }
static void atf_p2(void) { atf_add('P'); atf_add('2'); }
static void atf_a1(void) { atf_add('A'); atf_add('1'); }
static void atf_a2(void) { atf_add('A'); atf_add('2'); }
static void atf_c1(void) { atf_add('C'); atf_add('1'); }
static void atf_c2(void) { atf_add('C'); atf_add('2'); }

DIFF_CASE(thread, fork_runs_atfork_handlers_prepare_reversed_then_in_order)
{
    CALL("atfork 1", pthread_atfork(atf_p1, atf_a1, atf_c1));
    CALL("atfork 2", pthread_atfork(atf_p2, atf_a2, atf_c2));
    pid_t pid = fork();
    if (pid == 0) {
        diff_out("child log %s", atf_log);
        _exit(0);
    }
    diff_child_status("child", pid);
    diff_out("parent log %s", atf_log);
}

static sem_t fk_sem;
static void *lock_and_wait(void *arg)
{
    pthread_mutex_lock(arg);
    sem_post(&fk_sem);
    usleep(100000);
    pthread_mutex_unlock(arg);
    return NULL;
}

DIFF_CASE(thread, fork_mutex_held_by_another_thread_stays_locked_in_child)
{
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    sem_init(&fk_sem, 0, 0);
    pthread_t t = diff_spawn(lock_and_wait, &m);
    sem_wait(&fk_sem);
    pid_t pid = fork();
    if (pid == 0) {
        int e = pthread_mutex_trylock(&m);
        usleep(150000);   /* longer than the holder would keep it */
        int e2 = pthread_mutex_trylock(&m);
        _exit(e == EBUSY && e2 == EBUSY ? 0 : 1);
    }
    diff_child_status("child (0 = still locked)", pid);
    CALL("join", pthread_join(t, NULL));
}

static void *ret_arg(void *arg) { return arg; }

DIFF_CASE(thread, fork_child_can_create_join_sleep_and_use_pipes)
{
    pthread_t t = diff_spawn(count_forever, NULL);
    /* Fork once the other thread runs its loop: not while its creation
     * (or its first sleep) allocates on another OS thread. ASan's
     * allocator has no fork handler: a child forked while another OS
     * thread held one of its locks waits for it for ever (seen once in
     * 20 runs under ASan with two hubs). */
    atomic_store(&counter, 0);
    while (atomic_load(&counter) < 3)
        usleep(1000);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t u;
        void *r = NULL;
        int e = pthread_create(&u, NULL, ret_arg, (void *)42);
        int e2 = pthread_join(u, &r);
        int64_t t0 = diff_now();
        usleep(20000);
        int slept = diff_now() - t0 >= 19000000;
        int p[2];
        char c = 0;
        int io = pipe(p) == 0 && write(p[1], "x", 1) == 1 && read(p[0], &c, 1) == 1 && c == 'x';
        diff_out("child: create=%d join=%d result=%ld slept=%d io=%d", e, e2,
                 (long)(intptr_t)r, slept, io);
        _exit(0);
    }
    diff_child_status("child", pid);
    pthread_cancel(t);
    pthread_join(t, NULL);
}

static void *fork_then_exit_thread(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0) {
        pthread_exit(NULL);   /* the child's only thread: the process exits 0 */
    }
    return (void *)(intptr_t)pid;
}

DIFF_CASE(thread, fork_from_a_thread_then_pthread_exit_ends_the_child_with_0)
{
    pthread_t t = diff_spawn(fork_then_exit_thread, NULL);
    void *r;
    pthread_join(t, &r);
    diff_child_status("child", (pid_t)(intptr_t)r);
}

DIFF_CASE(thread, fork_child_keeps_the_callers_pthread_self)
{
    pthread_t me = pthread_self();
    pthread_t t = diff_spawn(count_forever, NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(pthread_equal(me, pthread_self()) ? 0 : 1);
    diff_child_status("child (0 = same pthread_self)", pid);
    pthread_cancel(t);
    pthread_join(t, NULL);
}

/* A signal ends the thread's pause, and the thread forks before it waits
 * again (under the shim its hub may not have polled since the signal
 * interrupted its wait). The child's first wait is for another OS thread
 * (system(): under the shim a worker thread runs it and wakes the caller):
 * the child exits 0 when system() worked and took less than a second, 1
 * otherwise, and SIGALRM ends it after 3 s. */
DIFF_CASE(thread, a_fork_right_after_a_signal_keeps_the_childs_wake_ups)
{
    diff_count_signal(SIGALRM, 0);
    for (int i = 0; i < 3; i++) {
        diff_alarm_ms(30);
        pause();
        pid_t pid = fork();
        if (pid == 0) {
            signal(SIGALRM, SIG_DFL);
            alarm(3);
            int64_t t0 = diff_now();
            int r = system("exit 3");
            _exit(r == 3 << 8 && diff_now() - t0 < 1000000000 ? 0 : 1);
        }
        diff_child_status("child", pid);
    }
    diff_out("SIGALRM handled %d times", diff_signals_take());
    signal(SIGALRM, SIG_DFL);
}

static int task_count(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

DIFF_CASE(thread, fork_child_has_one_task)
{
    pthread_t t = diff_spawn(count_forever, NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(task_count());
    diff_child_status("child (tasks)", pid);
    pthread_cancel(t);
    pthread_join(t, NULL);
}

/* ---------------------------------------------------------- fair turns */

/* A helper that sleeps (parks) and then sets a flag: a busy waiter that
 * only calls non-blocking functions must let it run. */
static atomic_int flag_set;
static void *sleep_then_flag(void *arg)
{
    usleep((useconds_t)(intptr_t)arg * 1000);
    atomic_store(&flag_set, 1);
    return NULL;
}

#define BUSY_WAIT_CASE(name, body)                                           \
    DIFF_CASE(thread, name)                                                 \
    {                                                                       \
        atomic_store(&flag_set, 0);                                         \
        pthread_t t = diff_spawn(sleep_then_flag, (void *)20);                   \
        int64_t t0 = diff_now();                                            \
        while (!atomic_load(&flag_set)) {                                   \
            body;                                                           \
        }                                                                   \
        DIFF_TOOK("busy wait", t0, 15, 2000);                               \
        CALL("join", pthread_join(t, NULL));                                \
    }

static pthread_mutex_t bw_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_spinlock_t bw_s;
static pthread_rwlock_t bw_rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_key_t bw_k;

BUSY_WAIT_CASE(busy_wait_with_uncontended_lock_unlock_lets_others_run,
               pthread_mutex_lock(&bw_m); pthread_mutex_unlock(&bw_m))
BUSY_WAIT_CASE(busy_wait_with_trylock_lets_others_run,
               if (pthread_mutex_trylock(&bw_m) == 0) pthread_mutex_unlock(&bw_m))
/* pthread_self is declared const and pthread_equal is inline in glibc's
 * header: a compiler may call neither in a loop. Real calls (through a
 * pointer) are what a hook can see. */
static pthread_t (*volatile self_fn)(void) = pthread_self;
static int (*volatile equal_fn)(pthread_t, pthread_t) = pthread_equal;
BUSY_WAIT_CASE(busy_wait_with_pthread_equal_lets_others_run,
               (void)equal_fn(self_fn(), t))
BUSY_WAIT_CASE(busy_wait_with_pthread_self_lets_others_run, (void)self_fn())
BUSY_WAIT_CASE(busy_wait_with_sched_yield_lets_others_run, sched_yield())
BUSY_WAIT_CASE(busy_wait_with_spin_trylock_lets_others_run,
               pthread_spin_init(&bw_s, 0);
               if (pthread_spin_trylock(&bw_s) == 0) pthread_spin_unlock(&bw_s))
BUSY_WAIT_CASE(busy_wait_with_rwlock_tryrdlock_lets_others_run,
               if (pthread_rwlock_tryrdlock(&bw_rw) == 0) pthread_rwlock_unlock(&bw_rw))
BUSY_WAIT_CASE(busy_wait_with_getspecific_lets_others_run,
               pthread_key_create(&bw_k, NULL); (void)pthread_getspecific(bw_k);
               pthread_key_delete(bw_k))

static sem_t bw_sem;
static void *sleep_then_post(void *arg)
{
    usleep((useconds_t)(intptr_t)arg * 1000);
    sem_post(&bw_sem);
    return NULL;
}

DIFF_CASE(thread, busy_wait_with_sem_trywait_lets_the_poster_run)
{
    sem_init(&bw_sem, 0, 0);
    pthread_t t = diff_spawn(sleep_then_post, (void *)20);
    long tries = 0;
    while (sem_trywait(&bw_sem) != 0)
        tries++;
    diff_out("tried: %s", tries > 0 ? "yes" : "no");
    CALL("join", pthread_join(t, NULL));
}

static atomic_int ping;
static void *spin_until_ping(void *arg)
{
    (void)arg;
    while (!atomic_load(&ping)) {
        pthread_mutex_lock(&bw_m);
        pthread_mutex_unlock(&bw_m);
    }
    return NULL;
}

DIFF_CASE(thread, two_busy_threads_both_make_progress)
{
    pthread_t t = diff_spawn(spin_until_ping, NULL);
    int64_t t0 = diff_now();
    while (diff_now() - t0 < 30000000) {
        pthread_mutex_lock(&bw_m);
        pthread_mutex_unlock(&bw_m);
    }
    atomic_store(&ping, 1);
    CALL("join", pthread_join(t, NULL));
}

/* --------------------------------------------------------- join/detach */

static sem_t jd_sem;
static void *wait_sem(void *arg)
{
    sem_wait(&jd_sem);
    return arg;
}

DIFF_CASE(thread, join_of_a_detached_running_thread_is_einval)
{
    sem_init(&jd_sem, 0, 0);
    pthread_t t = diff_spawn(wait_sem, NULL);
    CALL("detach", pthread_detach(t));
    CALL("join", pthread_join(t, NULL));
    sem_post(&jd_sem);
    usleep(10000);
}

DIFF_CASE(thread, detach_twice_on_a_running_thread_is_einval)
{
    sem_init(&jd_sem, 0, 0);
    pthread_t t = diff_spawn(wait_sem, NULL);
    CALL("detach", pthread_detach(t));
    CALL("detach again", pthread_detach(t));
    sem_post(&jd_sem);
    usleep(10000);
}

DIFF_CASE(thread, join_self_is_edeadlk)
{
    CALL("join self", pthread_join(pthread_self(), NULL));
}

DIFF_CASE(thread, join_of_a_finished_thread_returns_its_value)
{
    pthread_t t = diff_spawn(ret_arg, (void *)99);
    usleep(10000);
    void *r = NULL;
    CALL("join", pthread_join(t, &r));
    diff_out("value %ld", (long)(intptr_t)r);
}

DIFF_CASE(thread, tryjoin_is_ebusy_then_zero)
{
    sem_init(&jd_sem, 0, 0);
    pthread_t t = diff_spawn(wait_sem, (void *)5);
    CALL("tryjoin running", pthread_tryjoin_np(t, NULL));
    sem_post(&jd_sem);
    usleep(10000);
    void *r = NULL;
    CALL("tryjoin done", pthread_tryjoin_np(t, &r));
    diff_out("value %ld", (long)(intptr_t)r);
}

DIFF_CASE(thread, timedjoin_times_out_then_succeeds)
{
    sem_init(&jd_sem, 0, 0);
    pthread_t t = diff_spawn(wait_sem, NULL);
    struct timespec ts = diff_abs_in(CLOCK_REALTIME, 30);
    int64_t t0 = diff_now();
    CALL("timedjoin", pthread_timedjoin_np(t, NULL, &ts));
    DIFF_TOOK("timedjoin", t0, 25, 1000);
    sem_post(&jd_sem);
    ts = diff_abs_in(CLOCK_MONOTONIC, 2000);
    CALL("clockjoin", pthread_clockjoin_np(t, NULL, CLOCK_MONOTONIC, &ts));
}

DIFF_CASE(thread, detach_of_a_finished_unjoined_thread_succeeds)
{
    pthread_t t = diff_spawn(ret_arg, NULL);
    usleep(10000);
    CALL("detach", pthread_detach(t));
}

DIFF_CASE(thread, kill_zero_on_a_live_thread_is_zero)
{
    sem_init(&jd_sem, 0, 0);
    pthread_t t = diff_spawn(wait_sem, NULL);
    CALL("kill 0", pthread_kill(t, 0));
    CALL("kill bad signal", pthread_kill(t, 9999));
    sem_post(&jd_sem);
    pthread_join(t, NULL);
}

DIFF_CASE(thread, self_and_equal)
{
    pthread_t t = diff_spawn(ret_arg, NULL);
    diff_out("equal self self %d", pthread_equal(pthread_self(), pthread_self()) != 0);
    diff_out("equal self other %d", pthread_equal(pthread_self(), t) != 0);
    pthread_join(t, NULL);
}

/* ---------------------------------------------------------------- once */

static pthread_once_t once1 = PTHREAD_ONCE_INIT;
static atomic_int once_runs;
static void once_init(void) { atomic_fetch_add(&once_runs, 1); usleep(5000); }
static void *call_once1(void *arg) { pthread_once(&once1, once_init); return arg; }

DIFF_CASE(thread, once_runs_the_routine_once_for_concurrent_callers)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        t[i] = diff_spawn(call_once1, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    diff_out("runs %d", atomic_load(&once_runs));
}

static pthread_once_t once2 = PTHREAD_ONCE_INIT;
static sem_t once_sem;
static void once_init_blocks(void)
{
    sem_post(&once_sem);
    for (;;)
        usleep(1000);   /* a cancellation point */
}
static void once_init_second(void) { diff_out("second init ran"); }
static void *call_once2(void *arg) { pthread_once(&once2, once_init_blocks); return arg; }

DIFF_CASE(thread, once_whose_routine_is_cancelled_can_run_again)
{
    sem_init(&once_sem, 0, 0);
    pthread_t t = diff_spawn(call_once2, NULL);
    sem_wait(&once_sem);
    CALL("cancel", pthread_cancel(t));
    void *r = NULL;
    CALL("join", pthread_join(t, &r));
    diff_out("canceled %d", r == PTHREAD_CANCELED);
    CALL("once again", pthread_once(&once2, once_init_second));
}

/* ---------------------------------------------------------------- stacks */

static void *where_am_i(void *arg)
{
    char here;
    uintptr_t *range = arg;
    int inside = (uintptr_t)&here >= range[0] && (uintptr_t)&here < range[1];
    pthread_attr_t a;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &addr, &size);
        pthread_attr_destroy(&a);
    }
    range[2] = inside;
    range[3] = (uintptr_t)addr == range[0] && size == range[1] - range[0];
    return NULL;
}

DIFF_CASE(thread, setstack_stack_is_the_one_used)
{
    size_t size = 256 * 1024;
    void *stk = NULL;
    if (posix_memalign(&stk, 4096, size) != 0)
        return;
    uintptr_t range[4] = { (uintptr_t)stk, (uintptr_t)stk + size, 0, 0 };
    pthread_attr_t a;
    pthread_attr_init(&a);
    CALL("setstack", pthread_attr_setstack(&a, stk, size));
    pthread_t t;
    CALL("create", pthread_create(&t, &a, where_am_i, range));
    CALL("join", pthread_join(t, NULL));
    diff_out("local inside the given stack %d; getattr_np stack matches %d",
             (int)range[2], (int)range[3]);
    pthread_attr_destroy(&a);
    free(stk);
}

static void *small_stack_work(void *arg)
{
    (void)arg;
    char buf[256];
    snprintf(buf, sizeof buf, "%s %d %.3f %ld", "x", 42, 3.25, 7L);
    usleep(2000);
    struct timespec ts = { 0, 1000000 };
    nanosleep(&ts, NULL);
    return (void *)(intptr_t)(strcmp(buf, "x 42 3.250 7") == 0);
}

DIFF_CASE(thread, stack_min_thread_runs_printf_and_sleeps)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    CALL("setstacksize min", pthread_attr_setstacksize(&a, PTHREAD_STACK_MIN));
    pthread_t t;
    CALL("create", pthread_create(&t, &a, small_stack_work, NULL));
    void *r = NULL;
    CALL("join", pthread_join(t, &r));
    diff_out("work ok %ld", (long)(intptr_t)r);
    pthread_attr_destroy(&a);
}

DIFF_CASE(thread, setstacksize_below_min_is_einval)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    CALL("setstacksize", pthread_attr_setstacksize(&a, PTHREAD_STACK_MIN - 1));
    pthread_attr_destroy(&a);
}

static void *report_size(void *arg)
{
    pthread_attr_t a;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstacksize(&a, &size);
        pthread_attr_destroy(&a);
    }
    return (void *)(intptr_t)((size >= (size_t)(intptr_t)arg) * 2 +
                              (size < 2 * (size_t)(intptr_t)arg));
}

DIFF_CASE(thread, getattr_np_reports_the_asked_stack_size)
{
    size_t want = 1024 * 1024;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, want);
    pthread_t t;
    CALL("create", pthread_create(&t, &a, report_size, (void *)(intptr_t)want));
    void *r = NULL;
    pthread_join(t, &r);
    diff_out("stack size at least asked %d, below twice %d", (int)(intptr_t)r >> 1,
             (int)(intptr_t)r & 1);
    pthread_attr_destroy(&a);
}

static void *report_detach(void *arg)
{
    (void)arg;
    pthread_attr_t a;
    int ds = -1;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getdetachstate(&a, &ds);
        pthread_attr_destroy(&a);
    }
    *(int *)arg = ds == PTHREAD_CREATE_DETACHED;
    sem_post(&jd_sem);
    return NULL;
}

DIFF_CASE(thread, getattr_np_reports_detachstate)
{
    sem_init(&jd_sem, 0, 0);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    static int det;
    CALL("create", pthread_create(&t, &a, report_detach, &det));
    sem_wait(&jd_sem);
    diff_out("detached %d", det);
    usleep(5000);
    pthread_attr_destroy(&a);
}

/* ---------------------------------------------------------- cancellation */

static atomic_int async_ready;
static void *async_loop(void *arg)
{
    (void)arg;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
    atomic_store(&async_ready, 1);
    for (;;) {
        pthread_mutex_lock(&bw_m);
        pthread_mutex_unlock(&bw_m);
    }
    return NULL;
}

DIFF_CASE(thread, async_cancel_ends_a_thread_looping_on_hooked_calls)
{
    pthread_t t = diff_spawn(async_loop, NULL);
    while (!atomic_load(&async_ready))
        usleep(1000);
    usleep(5000);
    CALL("cancel", pthread_cancel(t));
    void *r = NULL;
    CALL("join", pthread_join(t, &r));
    diff_out("canceled %d", r == PTHREAD_CANCELED);
}

static void *self_cancel_async(void *arg)
{
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pthread_cancel(pthread_self());
    diff_out("still running after self-cancel while disabled");
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
    diff_out("still running after async while disabled");
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    diff_out("not reached");
    return NULL;
}

DIFF_CASE(thread, enabling_async_cancel_with_a_pending_request_acts_at_once)
{
    pthread_t t = diff_spawn(self_cancel_async, NULL);
    void *r = NULL;
    CALL("join", pthread_join(t, &r));
    diff_out("canceled %d", r == PTHREAD_CANCELED);
}

static int cleanup_ran;
static void cleanup_unlock(void *m)
{
    cleanup_ran = 1;
    pthread_mutex_unlock(m);
}

static pthread_cond_t cc_c = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t cc_m = PTHREAD_MUTEX_INITIALIZER;
static void *cond_wait_forever(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cc_m);
    pthread_cleanup_push(cleanup_unlock, &cc_m);
    sem_post(&jd_sem);
    for (;;)
        pthread_cond_wait(&cc_c, &cc_m);
    pthread_cleanup_pop(1);
    return NULL;
}

DIFF_CASE(thread, cancel_in_cond_wait_runs_cleanup_with_the_mutex_held)
{
    sem_init(&jd_sem, 0, 0);
    pthread_t t = diff_spawn(cond_wait_forever, NULL);
    sem_wait(&jd_sem);
    usleep(5000);
    CALL("cancel", pthread_cancel(t));
    void *r = NULL;
    CALL("join", pthread_join(t, &r));
    diff_out("canceled %d cleanup ran %d", r == PTHREAD_CANCELED, cleanup_ran);
    CALL("trylock after", pthread_mutex_trylock(&cc_m));
    pthread_mutex_unlock(&cc_m);
}

static void *disabled_then_testcancel(void *arg)
{
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    sem_post(&jd_sem);
    usleep(20000);   /* cancelled meanwhile: not acted on */
    diff_out("slept through the request");
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    pthread_testcancel();
    diff_out("not reached");
    return NULL;
}

DIFF_CASE(thread, cancel_while_disabled_acts_at_the_next_point_after_enable)
{
    sem_init(&jd_sem, 0, 0);
    pthread_t t = diff_spawn(disabled_then_testcancel, NULL);
    sem_wait(&jd_sem);
    CALL("cancel", pthread_cancel(t));
    void *r = NULL;
    CALL("join", pthread_join(t, &r));
    diff_out("canceled %d", r == PTHREAD_CANCELED);
}

DIFF_CASE(thread, cancel_of_a_sleeping_thread_ends_it)
{
    pthread_t t = diff_spawn(sleeper, (void *)3000);
    usleep(10000);
    int64_t t0 = diff_now();
    CALL("cancel", pthread_cancel(t));
    void *r = NULL;
    CALL("join", pthread_join(t, &r));
    DIFF_TOOK("join", t0, 0, 1000);
    diff_out("canceled %d", r == PTHREAD_CANCELED);
}

DIFF_CASE(thread, setcanceltype_and_state_reject_bad_values)
{
    int old;
    CALL("type 99", pthread_setcanceltype(99, &old));
    CALL("state 99", pthread_setcancelstate(99, &old));
    CALL("state enable", pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old));
    diff_out("old state enable %d", old == PTHREAD_CANCEL_ENABLE);
}

/* ---------------------------------------------------------- scheduling */

static void print_sched(const char *label, pthread_t t)
{
    int pol = -1;
    struct sched_param p = { .sched_priority = -1 };
    int e = pthread_getschedparam(t, &pol, &p);
    diff_out("%s: ret=%d policy=%d prio=%d", label, e, pol, p.sched_priority);
}

static void *report_own_sched(void *arg)
{
    int *out = arg;
    struct sched_param p;
    out[0] = pthread_getschedparam(pthread_self(), &out[1], &p);
    out[2] = p.sched_priority;
    return NULL;
}

DIFF_CASE(thread, explicit_sched_attr_is_read_back_by_the_thread)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    CALL("setinheritsched", pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED));
    CALL("setschedpolicy", pthread_attr_setschedpolicy(&a, SCHED_FIFO));
    struct sched_param p = { .sched_priority = 10 };
    CALL("setschedparam", pthread_attr_setschedparam(&a, &p));
    pthread_t t;
    int out[3] = { -1, -1, -1 };
    CALL("create", pthread_create(&t, &a, report_own_sched, out));
    pthread_join(t, NULL);
    diff_out("thread sees: ret=%d policy=%d prio=%d", out[0], out[1], out[2]);
    pthread_attr_destroy(&a);
}

DIFF_CASE(thread, explicit_sched_with_bad_priority_fails_create)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&a, SCHED_OTHER);
    struct sched_param p = { .sched_priority = 5 };
    CALL("setschedparam", pthread_attr_setschedparam(&a, &p));
    pthread_t t;
    int out[3];
    int e = pthread_create(&t, &a, report_own_sched, out);
    diff_out("create: %s", diff_errname(e));
    if (e == 0)
        pthread_join(t, NULL);
    pthread_attr_destroy(&a);
}

DIFF_CASE(thread, attr_sched_setters_reject_bad_values)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    int v = -1;
    CALL("getinheritsched", pthread_attr_getinheritsched(&a, &v));
    diff_out("default inherit %d", v == PTHREAD_INHERIT_SCHED);
    CALL("setschedpolicy 99", pthread_attr_setschedpolicy(&a, 99));
    CALL("setinheritsched 99", pthread_attr_setinheritsched(&a, 99));
    CALL("setscope process", pthread_attr_setscope(&a, PTHREAD_SCOPE_PROCESS));
    CALL("setscope system", pthread_attr_setscope(&a, PTHREAD_SCOPE_SYSTEM));
    pthread_attr_destroy(&a);
}

static void *sched_victim(void *arg)
{
    sem_wait(&jd_sem);
    return arg;
}

DIFF_CASE(thread, setschedparam_is_kept_per_thread_and_read_back)
{
    sem_init(&jd_sem, 0, 0);
    pthread_t t = diff_spawn(sched_victim, NULL);
    print_sched("initial", t);
    struct sched_param p = { .sched_priority = 20 };
    CALL("set fifo 20", pthread_setschedparam(t, SCHED_FIFO, &p));
    print_sched("after fifo", t);
    print_sched("self unchanged", pthread_self());
    CALL("setschedprio 30", pthread_setschedprio(t, 30));
    print_sched("after prio", t);
    CALL("setschedprio 100", pthread_setschedprio(t, 100));
    p.sched_priority = 0;
    CALL("set rr 0", pthread_setschedparam(t, SCHED_RR, &p));
    CALL("set policy 99", pthread_setschedparam(t, 99, &p));
    p.sched_priority = 1;
    CALL("set other 1", pthread_setschedparam(t, SCHED_OTHER, &p));
    p.sched_priority = 0;
    CALL("set batch 0", pthread_setschedparam(t, SCHED_BATCH, &p));
    print_sched("after batch", t);
    sem_post(&jd_sem);
    pthread_join(t, NULL);
}

DIFF_CASE(thread, new_thread_inherits_the_creators_sched)
{
    struct sched_param p = { .sched_priority = 7 };
    CALL("self rr 7", pthread_setschedparam(pthread_self(), SCHED_RR, &p));
    pthread_t t;
    int out[3] = { -1, -1, -1 };
    CALL("create", pthread_create(&t, NULL, report_own_sched, out));
    pthread_join(t, NULL);
    diff_out("thread sees: ret=%d policy=%d prio=%d", out[0], out[1], out[2]);
    p.sched_priority = 0;
    CALL("self back to other", pthread_setschedparam(pthread_self(), SCHED_OTHER, &p));
}

/* Realtime priorities on one CPU. The case pins itself to one CPU and
 * becomes SCHED_FIFO 1: natively the kernel then runs the highest-priority
 * runnable thread at every moment, and its futexes wake the waiter of
 * highest priority first. Without the right (not root, RLIMIT_RTPRIO 0)
 * both runs print so and stop. The order of the threads is the output. */
static int rt_order[8];
static atomic_int rt_n;
static pthread_mutex_t rt_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rt_c = PTHREAD_COND_INITIALIZER;
static pthread_rwlock_t rt_rw = PTHREAD_RWLOCK_INITIALIZER;
static sem_t rt_sem;
static int rt_go;

static void rt_note(void *arg)
{
    rt_order[atomic_fetch_add(&rt_n, 1) % 8] = (int)(intptr_t)arg;
}

static bool rt_begin(void)
{
    cpu_set_t cur, one;
    CPU_ZERO(&one);
    if (sched_getaffinity(0, sizeof cur, &cur) == 0)
        for (int i = 0; i < CPU_SETSIZE; i++)
            if (CPU_ISSET(i, &cur)) {
                CPU_SET(i, &one);
                break;
            }
    sched_setaffinity(0, sizeof one, &one);
    struct sched_param p = { .sched_priority = 1 };
    int e = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p);
    diff_out("realtime: %s", e ? "not permitted" : "yes");
    atomic_store(&rt_n, 0);
    return e == 0;
}

static pthread_t rt_spawn(int prio, void *(*fn)(void *))
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&a, SCHED_FIFO);
    struct sched_param p = { .sched_priority = prio };
    pthread_attr_setschedparam(&a, &p);
    pthread_t t;
    int e = pthread_create(&t, &a, fn, (void *)(intptr_t)prio);
    if (e)
        diff_out("create %d: %s", prio, diff_errname(e));
    pthread_attr_destroy(&a);
    return t;
}

static void rt_report(pthread_t *t, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    int k = atomic_load(&rt_n);
    diff_out("order: %d %d %d (%d)", rt_order[0], rt_order[1], rt_order[2], k);
}

static const int rt_prios[3] = { 5, 20, 10 };

static void *rt_mutex_waiter(void *arg)
{
    pthread_mutex_lock(&rt_m);
    rt_note(arg);
    pthread_mutex_unlock(&rt_m);
    return NULL;
}

DIFF_CASE(thread, mutex_goes_to_the_waiter_of_highest_priority)
{
    if (!rt_begin())
        return;
    pthread_t t[3];
    pthread_mutex_lock(&rt_m);
    for (int i = 0; i < 3; i++)
        t[i] = rt_spawn(rt_prios[i], rt_mutex_waiter);   /* each runs, waits */
    pthread_mutex_unlock(&rt_m);
    rt_report(t, 3);
}

static void *rt_sem_waiter(void *arg)
{
    sem_wait(&rt_sem);
    rt_note(arg);
    return NULL;
}

DIFF_CASE(thread, semaphore_post_wakes_the_waiter_of_highest_priority)
{
    if (!rt_begin())
        return;
    sem_init(&rt_sem, 0, 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        t[i] = rt_spawn(rt_prios[i], rt_sem_waiter);
    for (int i = 0; i < 3; i++)
        sem_post(&rt_sem);
    rt_report(t, 3);
    sem_destroy(&rt_sem);
}

static void *rt_cond_waiter(void *arg)
{
    pthread_mutex_lock(&rt_m);
    while (!rt_go)
        pthread_cond_wait(&rt_c, &rt_m);
    rt_go--;
    rt_note(arg);
    pthread_mutex_unlock(&rt_m);
    return NULL;
}

DIFF_CASE(thread, cond_signal_wakes_the_waiter_of_highest_priority)
{
    if (!rt_begin())
        return;
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        t[i] = rt_spawn(rt_prios[i], rt_cond_waiter);
    for (int i = 0; i < 3; i++) {
        pthread_mutex_lock(&rt_m);
        rt_go++;
        pthread_mutex_unlock(&rt_m);
        pthread_cond_signal(&rt_c);
    }
    rt_report(t, 3);
}

static void *rt_writer(void *arg)
{
    pthread_rwlock_wrlock(&rt_rw);
    rt_note(arg);
    pthread_rwlock_unlock(&rt_rw);
    return NULL;
}

DIFF_CASE(thread, rwlock_goes_to_the_writer_of_highest_priority)
{
    if (!rt_begin())
        return;
    pthread_t t[3];
    pthread_rwlock_wrlock(&rt_rw);
    for (int i = 0; i < 3; i++)
        t[i] = rt_spawn(rt_prios[i], rt_writer);
    pthread_rwlock_unlock(&rt_rw);
    rt_report(t, 3);
}

static void *rt_yield_then_note(void *arg)
{
    for (int i = 0; i < 3; i++)
        sched_yield();   /* a higher thread keeps the CPU */
    rt_note(arg);
    return NULL;
}

DIFF_CASE(thread, higher_priority_thread_runs_before_create_returns)
{
    if (!rt_begin())
        return;
    struct sched_param p = { .sched_priority = 10 };
    CALL("self fifo 10", pthread_setschedparam(pthread_self(), SCHED_FIFO, &p));
    pthread_t t[3];
    t[0] = rt_spawn(20, rt_yield_then_note);
    diff_out("after the higher one: %d ran", atomic_load(&rt_n));
    t[1] = rt_spawn(5, rt_yield_then_note);
    sched_yield();   /* a lower thread waits for the CPU */
    diff_out("after the lower one: %d ran", atomic_load(&rt_n));
    CALL("raise it", pthread_setschedprio(t[1], 15));
    diff_out("after raising it: %d ran", atomic_load(&rt_n));
    t[2] = rt_spawn(10, rt_yield_then_note);
    sched_yield();   /* an equal one runs after its turn */
    diff_out("after an equal one and a yield: %d ran", atomic_load(&rt_n));
    rt_report(t, 3);
}

static volatile sig_atomic_t rt_alarmed;
static pthread_t rt_alarm_in;

static void rt_on_alarm(int sig)
{
    (void)sig;
    rt_alarm_in = pthread_self();
    rt_alarmed = 1;
}

static void *rt_yield_until_alarm(void *arg)
{
    (void)arg;
    int64_t t0 = diff_now();
    while (!rt_alarmed && diff_now() - t0 < 3000 * 1000000LL)
        sched_yield();
    diff_out("spinner: alarmed %d, handled here %d", (int)rt_alarmed,
             pthread_equal(rt_alarm_in, pthread_self()) != 0);
    return NULL;
}

/* A CPU-time itimer's signal goes to the thread that was running when it
 * expired (natively the kernel sends it to that thread if it accepts it):
 * here a realtime thread that keeps the CPU while its creator, main in
 * one of the two places, waits for it (Open POSIX pthread_create/1-6). */
DIFF_CASE(thread, a_cpu_timer_signal_goes_to_the_running_realtime_thread)
{
    if (!rt_begin())
        return;
    signal(SIGPROF, rt_on_alarm);
    struct itimerval it = { .it_value = { .tv_usec = 50000 } };
    setitimer(ITIMER_PROF, &it, NULL);
    pthread_t t = rt_spawn(20, rt_yield_until_alarm);   /* runs until the alarm */
    diff_out("creator: alarmed %d", (int)rt_alarmed);
    pthread_join(t, NULL);
}

DIFF_CASE(thread, sched_yield_returns_zero_alone)
{
    CALL("sched_yield", sched_yield());
    CALL("sched_yield", sched_yield());
}

static atomic_int spin_stop;
static void *burn_cpu(void *arg)
{
    (void)arg;
    while (!atomic_load(&spin_stop))
        ;
    return NULL;
}

DIFF_CASE(thread, cpu_clock_of_a_sleeping_thread_stays_small)
{
    pthread_t s = diff_spawn(sleeper, (void *)100);
    clockid_t clk;
    CALL("getcpuclockid", pthread_getcpuclockid(s, &clk));
    int64_t t0 = diff_now();
    while (diff_now() - t0 < 50000000)
        ;   /* burn 50 ms on this thread */
    struct timespec ts = { 0, 0 };
    CALL("clock_gettime", clock_gettime(clk, &ts));
    diff_out("sleeper cpu < 20ms: %d", ts.tv_sec == 0 && ts.tv_nsec < 20000000);
    pthread_join(s, NULL);
    (void)burn_cpu;
}

static int64_t clock_ns(clockid_t clk)
{
    struct timespec ts = { 0, 0 };
    if (clock_gettime(clk, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t own_cpu_ns(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* Spends ms of this thread's own CPU time. */
static void burn_own_cpu_ms(int ms)
{
    int64_t t0 = own_cpu_ns();
    while (own_cpu_ns() - t0 < (int64_t)ms * 1000000)
        ;
}

static int64_t rusage_thread_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static sem_t cpu_done, cpu_go_on;
static int64_t worker_rusage;
static void *burn_then_wait(void *arg)
{
    (void)arg;
    burn_own_cpu_ms(60);
    worker_rusage = rusage_thread_ns();
    sem_post(&cpu_done);
    sem_wait(&cpu_go_on);
    return NULL;
}

/* Each thread's CPU clock counts its own work only: a worker that
 * computed 60 ms shows them on its clock read by another thread, and the
 * thread that waited meanwhile shows almost nothing on its own. */
DIFF_CASE(thread, cpu_clock_counts_each_threads_own_work)
{
    sem_init(&cpu_done, 0, 0);
    sem_init(&cpu_go_on, 0, 0);
    int64_t mine0 = own_cpu_ns(), ru0 = rusage_thread_ns();
    pthread_t w = diff_spawn(burn_then_wait, NULL);
    clockid_t clk;
    CALL("getcpuclockid", pthread_getcpuclockid(w, &clk));
    sem_wait(&cpu_done);
    /* Let the worker reach its sem_wait: under the shim a thread's clock
     * read while it runs on another hub advances at its switches (README,
     * "Known differences"). */
    usleep(20000);
    int64_t mine = own_cpu_ns() - mine0, ru = rusage_thread_ns() - ru0;
    int64_t theirs = clock_ns(clk);
    diff_out("waiter used < 25 ms: %d", mine < 25000000);
    diff_out("waiter's RUSAGE_THREAD < 25 ms: %d", ru < 25000000);
    diff_out("worker shows >= 60 ms: %d", theirs >= 60000000);
    diff_out("worker shows < 1 s: %d", theirs < 1000000000);
    diff_out("worker's own RUSAGE_THREAD >= 40 ms: %d", worker_rusage >= 40000000);
    CALL("getrusage thread, bad pointer", getrusage(RUSAGE_THREAD, (struct rusage *)8));
    sem_post(&cpu_go_on);
    pthread_join(w, NULL);
}

static void *report_own_cpu(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)(own_cpu_ns() < 25000000);
}

/* A new thread's CPU clock starts at zero; the creator's keeps what it
 * used before (Open POSIX pthread_create/11-1: the first read is the
 * new thread's). */
DIFF_CASE(thread, cpu_clock_of_a_new_thread_starts_at_zero)
{
    int64_t t0 = diff_now();
    while (diff_now() - t0 < 60000000)
        ;   /* 60 ms of this thread's time, unread */
    pthread_t t = diff_spawn(report_own_cpu, NULL);
    void *r;
    pthread_join(t, &r);
    diff_out("new thread's clock < 25 ms: %d", (int)(intptr_t)r);
    diff_out("creator's clock > 0: %d", own_cpu_ns() > 0);
}

/* After fork the child's only thread starts a new CPU clock. */
DIFF_CASE(thread, cpu_clock_of_a_forked_child_starts_at_zero)
{
    burn_own_cpu_ms(60);
    pid_t pid = fork();
    if (pid == 0)
        _exit(own_cpu_ns() < 25000000 ? 7 : 8);
    diff_child_status("child", pid);
}

static void *quick_return(void *arg)
{
    return arg;
}

/* What the calls on a CPU clock id answer around its thread's life. */
DIFF_CASE(thread, cpu_clock_ids_answer_as_the_kernel_does)
{
    sem_init(&cpu_done, 0, 0);
    sem_init(&cpu_go_on, 0, 0);
    pthread_t w = diff_spawn(burn_then_wait, NULL);
    clockid_t clk;
    CALL("getcpuclockid", pthread_getcpuclockid(w, &clk));
    diff_out("not the calling thread's: %d", clk != CLOCK_THREAD_CPUTIME_ID);
    struct timespec ts = { 0, 0 };
    struct timespec *volatile none = NULL;   /* hidden from -Wnonnull */
    CALL("gettime NULL", clock_gettime(clk, none));
    CALL("gettime bad pointer", clock_gettime(clk, (struct timespec *)8));
    CALL("own clock, bad pointer", clock_gettime(CLOCK_THREAD_CPUTIME_ID, (struct timespec *)8));
    CALL("getres", clock_getres(clk, &ts));
    diff_out("resolution: %ld.%09ld", (long)ts.tv_sec, ts.tv_nsec);
    CALL("getres NULL", clock_getres(clk, NULL));
    timer_t tm;
    struct sigevent ev = { .sigev_notify = SIGEV_NONE };
    int made = timer_create(clk, &ev, &tm);
    diff_out("timer_create: %d", made);
    if (made == 0)
        timer_delete(tm);
    clockid_t self;
    CALL("getcpuclockid self", pthread_getcpuclockid(pthread_self(), &self));
    diff_out("self's id is not CLOCK_THREAD_CPUTIME_ID: %d", self != CLOCK_THREAD_CPUTIME_ID);
    CALL("gettime self id", clock_gettime(self, &ts));
    sem_wait(&cpu_done);
    sem_post(&cpu_go_on);
    pthread_join(w, NULL);
    CALL("gettime after join", clock_gettime(clk, &ts));
    CALL("getres after join", clock_getres(clk, &ts));
    CALL("timer_create after join", timer_create(clk, &ev, &tm));
    pthread_t q = diff_spawn(quick_return, NULL);
    usleep(100000);                /* q ends meanwhile, unjoined */
    diff_out("getcpuclockid, ended unjoined: %s",
             diff_errname(pthread_getcpuclockid(q, &clk)));
    pthread_join(q, NULL);
}

/* --------------------------------------------------------- mutex kinds */

static pthread_mutex_t *new_mutex(int type)
{
    static pthread_mutex_t m;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    pthread_mutex_init(&m, &a);
    pthread_mutexattr_destroy(&a);
    return &m;
}

static void *try_then_unlock(void *arg)
{
    pthread_mutex_t *m = arg;
    int a = pthread_mutex_trylock(m);
    int b = pthread_mutex_unlock(m);
    return (void *)(intptr_t)(a * 1000 + b);
}

static void other_thread_try_unlock(pthread_mutex_t *m)
{
    pthread_t t = diff_spawn(try_then_unlock, m);
    void *r;
    pthread_join(t, &r);
    int v = (int)(intptr_t)r;
    diff_out("other thread: trylock %s unlock %s", diff_errname(v / 1000),
             diff_errname(v % 1000));
}

DIFF_CASE(thread, errorcheck_mutex_relock_unlock_and_non_owner)
{
    pthread_mutex_t *m = new_mutex(PTHREAD_MUTEX_ERRORCHECK);
    CALL("unlock unlocked", pthread_mutex_unlock(m));
    CALL("lock", pthread_mutex_lock(m));
    CALL("relock", pthread_mutex_lock(m));
    CALL("trylock by owner", pthread_mutex_trylock(m));
    other_thread_try_unlock(m);
    CALL("unlock", pthread_mutex_unlock(m));
    CALL("destroy", pthread_mutex_destroy(m));
}

DIFF_CASE(thread, recursive_mutex_counts_and_non_owner)
{
    pthread_mutex_t *m = new_mutex(PTHREAD_MUTEX_RECURSIVE);
    CALL("lock 1", pthread_mutex_lock(m));
    CALL("lock 2", pthread_mutex_lock(m));
    CALL("trylock 3", pthread_mutex_trylock(m));
    other_thread_try_unlock(m);
    CALL("unlock 3", pthread_mutex_unlock(m));
    CALL("unlock 2", pthread_mutex_unlock(m));
    CALL("unlock 1", pthread_mutex_unlock(m));
    CALL("unlock 0", pthread_mutex_unlock(m));
}

DIFF_CASE(thread, normal_mutex_trylock_by_owner_and_other_is_ebusy)
{
    pthread_mutex_t *m = new_mutex(PTHREAD_MUTEX_NORMAL);
    CALL("lock", pthread_mutex_lock(m));
    CALL("trylock by owner", pthread_mutex_trylock(m));
    pthread_t t = diff_spawn(try_then_unlock, m);
    void *r;
    pthread_join(t, &r);
    diff_out("other trylock %s", diff_errname((int)(intptr_t)r / 1000));
    CALL("unlock", pthread_mutex_unlock(m));
}

DIFF_CASE(thread, static_initializers_give_their_kinds)
{
    static pthread_mutex_t r = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    static pthread_mutex_t e = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    CALL("recursive lock", pthread_mutex_lock(&r));
    CALL("recursive relock", pthread_mutex_lock(&r));
    CALL("errorcheck lock", pthread_mutex_lock(&e));
    CALL("errorcheck relock", pthread_mutex_lock(&e));
    pthread_mutex_unlock(&r);
    pthread_mutex_unlock(&r);
    pthread_mutex_unlock(&e);
}

static void *hold_for(void *arg)
{
    pthread_mutex_t *m = arg;
    pthread_mutex_lock(m);
    sem_post(&jd_sem);
    usleep(100000);
    pthread_mutex_unlock(m);
    return NULL;
}

DIFF_CASE(thread, timedlock_past_deadline_and_bad_nsec)
{
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    struct timespec past = { 1, 0 }, bad = { 0, 1000000000 };
    CALL("timedlock free, bad nsec", pthread_mutex_timedlock(&m, &bad));
    pthread_mutex_unlock(&m);
    sem_init(&jd_sem, 0, 0);
    pthread_t t = diff_spawn(hold_for, &m);
    sem_wait(&jd_sem);
    CALL("timedlock held, past", pthread_mutex_timedlock(&m, &past));
    CALL("timedlock held, bad nsec", pthread_mutex_timedlock(&m, &bad));
    struct timespec soon = diff_abs_in(CLOCK_REALTIME, 20);
    int64_t t0 = diff_now();
    CALL("timedlock held, 20ms", pthread_mutex_timedlock(&m, &soon));
    DIFF_TOOK("timedlock", t0, 15, 1000);
    soon = diff_abs_in(CLOCK_MONOTONIC, 2000);
    CALL("clocklock monotonic", pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &soon));
    CALL("unlock", pthread_mutex_unlock(&m));
    pthread_join(t, NULL);
}

static void *lock_and_die(void *arg)
{
    pthread_mutex_lock(arg);
    return NULL;
}

DIFF_CASE(thread, robust_mutex_reports_eownerdead_when_the_owner_exits)
{
    static pthread_mutex_t m;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    CALL("setrobust", pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST));
    pthread_mutex_init(&m, &a);
    pthread_mutexattr_destroy(&a);
    pthread_t t = diff_spawn(lock_and_die, &m);
    pthread_join(t, NULL);
    CALL("lock", pthread_mutex_lock(&m));
    CALL("consistent", pthread_mutex_consistent(&m));
    CALL("unlock", pthread_mutex_unlock(&m));
    CALL("lock again", pthread_mutex_lock(&m));
    CALL("unlock", pthread_mutex_unlock(&m));
}

DIFF_CASE(thread, robust_mutex_not_made_consistent_becomes_unrecoverable)
{
    static pthread_mutex_t m;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m, &a);
    pthread_mutexattr_destroy(&a);
    pthread_t t = diff_spawn(lock_and_die, &m);
    pthread_join(t, NULL);
    CALL("trylock", pthread_mutex_trylock(&m));
    CALL("unlock", pthread_mutex_unlock(&m));
    CALL("lock", pthread_mutex_lock(&m));
}

DIFF_CASE(thread, mutexattr_getters_and_bad_values)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    int v = -1;
    CALL("gettype", pthread_mutexattr_gettype(&a, &v));
    diff_out("default type %d", v);
    CALL("settype 99", pthread_mutexattr_settype(&a, 99));
    CALL("setpshared 99", pthread_mutexattr_setpshared(&a, 99));
    CALL("setrobust 99", pthread_mutexattr_setrobust(&a, 99));
    pthread_mutexattr_destroy(&a);
}

/* ---------------------------------------------------------------- cond */

DIFF_CASE(thread, cond_timedwait_with_monotonic_condattr_times_out)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    CALL("setclock monotonic", pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
    CALL("setclock cputime", pthread_condattr_setclock(&ca, CLOCK_PROCESS_CPUTIME_ID));
    static pthread_cond_t c;
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_init(&c, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&m);
    struct timespec ts = diff_abs_in(CLOCK_MONOTONIC, 30);
    int64_t t0 = diff_now();
    CALL("timedwait", pthread_cond_timedwait(&c, &m, &ts));
    DIFF_TOOK("timedwait", t0, 25, 1000);
    struct timespec bad = { 0, -1 };
    CALL("timedwait bad nsec", pthread_cond_timedwait(&c, &m, &bad));
    CALL("still owner: trylock", pthread_mutex_trylock(&m));
    pthread_mutex_unlock(&m);
    pthread_cond_destroy(&c);
}

DIFF_CASE(thread, cond_clockwait_clocks)
{
    static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&m);
    struct timespec ts = diff_abs_in(CLOCK_REALTIME, 20);
    CALL("clockwait realtime", pthread_cond_clockwait(&c, &m, CLOCK_REALTIME, &ts));
    ts = diff_abs_in(CLOCK_MONOTONIC, 20);
    CALL("clockwait monotonic", pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &ts));
    CALL("clockwait boottime", pthread_cond_clockwait(&c, &m, CLOCK_BOOTTIME, &ts));
    struct timespec past = { 0, 0 };
    CALL("timedwait past", pthread_cond_timedwait(&c, &m, &past));
    pthread_mutex_unlock(&m);
}

DIFF_CASE(thread, cond_wait_with_unowned_errorcheck_mutex_is_eperm)
{
    static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    pthread_mutex_t *m = new_mutex(PTHREAD_MUTEX_ERRORCHECK);
    struct timespec ts = diff_abs_in(CLOCK_REALTIME, 10);
    CALL("timedwait unowned", pthread_cond_timedwait(&c, m, &ts));
}

static pthread_cond_t sig_c = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t sig_m = PTHREAD_MUTEX_INITIALIZER;
static int sig_turn, sig_woken;
static void *cond_waiter_counts(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&sig_m);
    sig_turn++;
    int my = sig_turn;
    while (sig_woken < my)
        pthread_cond_wait(&sig_c, &sig_m);
    pthread_mutex_unlock(&sig_m);
    return NULL;
}

DIFF_CASE(thread, cond_broadcast_wakes_every_waiter)
{
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        t[i] = diff_spawn(cond_waiter_counts, NULL);
    for (;;) {
        pthread_mutex_lock(&sig_m);
        int n = sig_turn;
        pthread_mutex_unlock(&sig_m);
        if (n == 3)
            break;
        usleep(1000);
    }
    pthread_mutex_lock(&sig_m);
    sig_woken = 3;
    CALL("broadcast", pthread_cond_broadcast(&sig_c));
    pthread_mutex_unlock(&sig_m);
    for (int i = 0; i < 3; i++)
        CALL("join", pthread_join(t[i], NULL));
}

/* --------------------------------------------------------------- rwlock */

static void *try_read(void *arg)
{
    return (void *)(intptr_t)pthread_rwlock_tryrdlock(arg);
}
static void *wait_write(void *arg)
{
    int e = pthread_rwlock_wrlock(arg);
    if (e == 0)
        pthread_rwlock_unlock(arg);
    return (void *)(intptr_t)e;
}

static void rw_preference(int kind)
{
    static pthread_rwlock_t rw;
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, kind);
    pthread_rwlock_init(&rw, &a);
    pthread_rwlockattr_destroy(&a);
    CALL("rdlock", pthread_rwlock_rdlock(&rw));
    pthread_t w = diff_spawn(wait_write, &rw);
    usleep(20000);   /* the writer waits */
    pthread_t r = diff_spawn(try_read, &rw);
    void *v;
    pthread_join(r, &v);
    diff_out("second reader while a writer waits: %s", diff_errname((int)(intptr_t)v));
    if (v == NULL)
        pthread_rwlock_unlock(&rw);
    CALL("unlock", pthread_rwlock_unlock(&rw));
    pthread_join(w, &v);
    diff_out("writer: %s", diff_errname((int)(intptr_t)v));
}

DIFF_CASE(thread, rwlock_default_prefers_readers)
{
    rw_preference(PTHREAD_RWLOCK_PREFER_READER_NP);
}

DIFF_CASE(thread, rwlock_writer_nonrecursive_prefers_writers)
{
    rw_preference(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
}

DIFF_CASE(thread, rwlock_relock_by_the_writer_is_edeadlk)
{
    static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    CALL("wrlock", pthread_rwlock_wrlock(&rw));
    CALL("wrlock again", pthread_rwlock_wrlock(&rw));
    CALL("rdlock", pthread_rwlock_rdlock(&rw));
    CALL("trywrlock", pthread_rwlock_trywrlock(&rw));
    CALL("tryrdlock", pthread_rwlock_tryrdlock(&rw));
    struct timespec past = { 0, 0 };
    CALL("timedrdlock", pthread_rwlock_timedrdlock(&rw, &past));
    CALL("unlock", pthread_rwlock_unlock(&rw));
    CALL("rdlock", pthread_rwlock_rdlock(&rw));
    CALL("rdlock 2", pthread_rwlock_rdlock(&rw));
    CALL("trywrlock", pthread_rwlock_trywrlock(&rw));
    struct timespec soon = diff_abs_in(CLOCK_REALTIME, 20);
    CALL("timedwrlock", pthread_rwlock_timedwrlock(&rw, &soon));
    soon = diff_abs_in(CLOCK_MONOTONIC, 20);
    CALL("clockwrlock", pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &soon));
    pthread_rwlock_unlock(&rw);
    pthread_rwlock_unlock(&rw);
    CALL("destroy", pthread_rwlock_destroy(&rw));
    static pthread_rwlock_t held = PTHREAD_RWLOCK_INITIALIZER;
    CALL("wrlock", pthread_rwlock_wrlock(&held));
    CALL("destroy while write-locked", pthread_rwlock_destroy(&held));
    static pthread_rwlock_t read = PTHREAD_RWLOCK_INITIALIZER;
    CALL("rdlock", pthread_rwlock_rdlock(&read));
    CALL("destroy while read-locked", pthread_rwlock_destroy(&read));
}

/* -------------------------------------------------------------- barrier */

static pthread_barrier_t bar;
static void *barrier_wait_ret(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)pthread_barrier_wait(&bar);
}

DIFF_CASE(thread, barrier_has_one_serial_thread_per_round)
{
    CALL("init", pthread_barrier_init(&bar, NULL, 4));
    for (int round = 0; round < 2; round++) {
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
            t[i] = diff_spawn(barrier_wait_ret, NULL);
        int serial = pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD;
        for (int i = 0; i < 3; i++) {
            void *r;
            pthread_join(t[i], &r);
            serial += (int)(intptr_t)r == PTHREAD_BARRIER_SERIAL_THREAD;
        }
        diff_out("round %d: serial threads %d", round, serial);
    }
    CALL("destroy", pthread_barrier_destroy(&bar));
}

DIFF_CASE(thread, barrier_init_with_zero_count_is_einval)
{
    pthread_barrier_t b;
    CALL("init 0", pthread_barrier_init(&b, NULL, 0));
    CALL("init 1", pthread_barrier_init(&b, NULL, 1));
    CALL("wait alone", pthread_barrier_wait(&b));
    CALL("destroy", pthread_barrier_destroy(&b));
}

/* ----------------------------------------------------------------- spin */

static void *spin_try(void *arg)
{
    return (void *)(intptr_t)pthread_spin_trylock(arg);
}

DIFF_CASE(thread, spinlock_trylock_busy_lock_unlock)
{
    static pthread_spinlock_t s;
    CALL("init", pthread_spin_init(&s, PTHREAD_PROCESS_PRIVATE));
    CALL("lock", pthread_spin_lock(&s));
    pthread_t t = diff_spawn(spin_try, (void *)&s);
    void *r;
    pthread_join(t, &r);
    diff_out("other trylock %s", diff_errname((int)(intptr_t)r));
    CALL("unlock", pthread_spin_unlock(&s));
    CALL("trylock", pthread_spin_trylock(&s));
    CALL("unlock", pthread_spin_unlock(&s));
    CALL("destroy", pthread_spin_destroy(&s));
}

static pthread_spinlock_t held_spin;
static void *spin_hold(void *arg)
{
    (void)arg;
    pthread_spin_lock(&held_spin);
    sem_post(&jd_sem);
    usleep(20000);
    pthread_spin_unlock(&held_spin);
    return NULL;
}

DIFF_CASE(thread, spin_lock_waits_for_a_holder_that_sleeps)
{
    sem_init(&jd_sem, 0, 0);
    pthread_spin_init(&held_spin, 0);
    pthread_t t = diff_spawn(spin_hold, NULL);
    sem_wait(&jd_sem);
    CALL("lock", pthread_spin_lock(&held_spin));
    CALL("unlock", pthread_spin_unlock(&held_spin));
    pthread_join(t, NULL);
}

/* ----------------------------------------------------------------- keys */

static pthread_key_t k1, k2;
static char key_log[128];
static int resets;
static void key_log_add(const char *s)
{
    strncat(key_log, s, sizeof key_log - strlen(key_log) - 1);
}
static void dtor1(void *v) { (void)v; key_log_add("1"); }
static void dtor2(void *v)
{
    (void)v;
    key_log_add("2");
    if (resets++ < 10)
        pthread_setspecific(k2, (void *)2);   /* set again: another round */
}
static void *set_keys(void *arg)
{
    pthread_setspecific(k1, (void *)1);
    pthread_setspecific(k2, (void *)2);
    return arg;
}

DIFF_CASE(thread, key_destructors_run_in_key_order_up_to_the_iteration_limit)
{
    CALL("create 1", pthread_key_create(&k1, dtor1));
    CALL("create 2", pthread_key_create(&k2, dtor2));
    pthread_t t = diff_spawn(set_keys, NULL);
    pthread_join(t, NULL);
    diff_out("destructor calls: %s (limit %d)", key_log, PTHREAD_DESTRUCTOR_ITERATIONS);
}

static void *get_key(void *k)
{
    return pthread_getspecific((pthread_key_t)(uintptr_t)k);
}

DIFF_CASE(thread, key_values_are_per_thread_and_start_null)
{
    pthread_key_t k;
    CALL("create", pthread_key_create(&k, NULL));
    CALL("set", pthread_setspecific(k, (void *)5));
    pthread_t t = diff_spawn(get_key, (void *)(uintptr_t)k);
    void *r = (void *)1;
    pthread_join(t, &r);
    diff_out("other thread sees %ld, own %ld", (long)(intptr_t)r,
             (long)(intptr_t)pthread_getspecific(k));
    CALL("delete", pthread_key_delete(k));
}

/* ------------------------------------------------------- names, exits */

DIFF_CASE(thread, thread_names_and_erange)
{
    pthread_t t = diff_spawn(sleeper, (void *)30);
    CALL("setname 15 chars", pthread_setname_np(t, "abcdefghijklmno"));
    CALL("setname 16 chars", pthread_setname_np(t, "abcdefghijklmnop"));
    char buf[32] = "";
    CALL("getname", pthread_getname_np(t, buf, sizeof buf));
    diff_out("name %s", buf);
    CALL("getname small", pthread_getname_np(t, buf, 4));
    CALL("setname self", pthread_setname_np(pthread_self(), "me"));
    CALL("getname self", pthread_getname_np(pthread_self(), buf, sizeof buf));
    diff_out("self name %s", buf);
    pthread_join(t, NULL);
}

/* A thread's name as each interface reads it: pthread_getname_np of
 * itself and prctl(PR_GET_NAME), all 16 bytes of the latter. */
static void show_names(const char *who)
{
    char g[32] = "", p[16];
    memset(p, 'x', sizeof p);
    int e = pthread_getname_np(pthread_self(), g, sizeof g);
    int r = prctl(PR_GET_NAME, p);
    char tail[40] = "";
    for (size_t k = strnlen(p, sizeof p); k < sizeof p; k++)
        strcat(tail, p[k] ? "x" : "0");
    diff_out("%s: getname %s %s, prctl %d %.16s padding %s", who, diff_errname(e), g, r, p, tail);
}

static void *names_look(void *arg)
{
    show_names((const char *)arg);
    return NULL;
}

/* Natively a new thread's name is its creator's comm at clone. */
DIFF_CASE(thread, a_new_thread_starts_with_its_creators_name)
{
    show_names("creator");
    pthread_t t = diff_spawn(names_look, "child of the unnamed");
    pthread_join(t, NULL);
    CALL("setname self", pthread_setname_np(pthread_self(), "creator-1"));
    t = diff_spawn(names_look, "child of creator-1");
    pthread_join(t, NULL);
    CALL("prctl set", prctl(PR_SET_NAME, "creator-2"));
    t = diff_spawn(names_look, "child of creator-2");
    pthread_join(t, NULL);
}

static void *names_set_then_wait(void *arg)
{
    CALL("thread prctl set", prctl(PR_SET_NAME, (const char *)arg));
    usleep(60000);
    show_names("thread after the wait");
    return NULL;
}

/* prctl(PR_SET_NAME) names the calling thread only, and pthread_getname_np
 * reads the same name; a name of 16 bytes or more keeps 15. */
DIFF_CASE(thread, prctl_names_the_calling_thread_only)
{
    CALL("setname self", pthread_setname_np(pthread_self(), "caller"));
    pthread_t t = diff_spawn(names_set_then_wait, "a-name-longer-than-fifteen");
    usleep(20000);                 /* it has named itself and waits */
    show_names("caller while the thread waits");
    char buf[32] = "";
    CALL("getname of the thread", pthread_getname_np(t, buf, sizeof buf));
    diff_out("the thread's name: %s", buf);
    CALL("setname of the thread", pthread_setname_np(t, "renamed"));
    pthread_join(t, NULL);
    show_names("caller after the join");
    CALL("prctl set NULL", prctl(PR_SET_NAME, (char *)NULL));
    CALL("prctl get NULL", prctl(PR_GET_NAME, (char *)NULL));
    show_names("caller at the end");
}

static void *names_syscall_then_wait(void *arg)
{
    CALL("thread syscall prctl set", syscall(SYS_prctl, PR_SET_NAME, (const char *)arg));
    usleep(60000);
    char p[16] = "";
    CALL("thread syscall prctl get", syscall(SYS_prctl, PR_GET_NAME, p));
    diff_out("thread's name through syscall: %s", p);
    show_names("thread after the wait");
    return NULL;
}

/* The same through syscall(SYS_prctl): as prctl. */
DIFF_CASE(thread, syscall_prctl_names_the_calling_thread_only)
{
    pthread_t t = diff_spawn(names_syscall_then_wait, "sys-name");
    usleep(20000);
    show_names("caller while the thread waits");
    pthread_join(t, NULL);
    show_names("caller after the join");
}

static void *late_printer(void *arg)
{
    (void)arg;
    usleep(30000);
    diff_out("last thread still ran");
    return NULL;
}

DIFF_CASE(thread, pthread_exit_keeps_the_process_until_the_last_thread)
{
    pthread_t t = diff_spawn(late_printer, NULL);
    (void)t;
    pthread_exit(NULL);
}

DIFF_CASE(thread, exit_with_threads_alive_ends_the_process_with_its_code)
{
    pid_t pid = fork();
    if (pid == 0) {
        diff_spawn(sleeper, (void *)5000);
        diff_spawn(count_forever, NULL);
        usleep(5000);
        exit(3);
    }
    diff_child_status("child", pid);
}

static void *exit_from_thread(void *arg)
{
    (void)arg;
    usleep(5000);
    exit(4);
}

DIFF_CASE(thread, exit_from_another_thread_ends_the_process)
{
    pid_t pid = fork();
    if (pid == 0) {
        diff_spawn(exit_from_thread, NULL);
        for (;;)
            usleep(1000);
    }
    diff_child_status("child", pid);
}

static void *late_exit_thread(void *arg)
{
    (void)arg;
    usleep(20000);
    return NULL;
}

DIFF_CASE(thread, pthread_exit_in_a_forked_child_exits_0_after_its_last_thread)
{
    pid_t pid = fork();
    if (pid == 0) {
        diff_spawn(late_exit_thread, NULL);
        pthread_exit(NULL);
    }
    diff_child_status("child", pid);
}

/* ------------------------------------------------------------------ C11 */

static int c11_fn(void *arg) { return (int)(intptr_t)arg + 1; }

DIFF_CASE(thread, c11_thrd_create_join_equal_current)
{
    thrd_t t;
    CALL("thrd_create", thrd_create(&t, c11_fn, (void *)41));
    int res = 0;
    CALL("thrd_join", thrd_join(t, &res));
    diff_out("result %d", res);
    diff_out("equal current %d", thrd_equal(thrd_current(), thrd_current()) != 0);
    struct timespec d = { 0, 5000000 };
    CALL("thrd_sleep", thrd_sleep(&d, NULL));
    thrd_yield();
}

static int c11_detached(void *arg) { (void)arg; return 0; }

DIFF_CASE(thread, c11_mutexes_and_conditions)
{
    mtx_t m;
    cnd_t c;
    CALL("mtx_init timed", mtx_init(&m, mtx_timed));
    CALL("cnd_init", cnd_init(&c));
    CALL("mtx_lock", mtx_lock(&m));
    struct timespec ts = diff_abs_in(CLOCK_REALTIME, 20);
    CALL("cnd_timedwait", cnd_timedwait(&c, &m, &ts));
    CALL("mtx_unlock", mtx_unlock(&m));
    CALL("mtx_trylock", mtx_trylock(&m));
    CALL("mtx_unlock", mtx_unlock(&m));
    CALL("cnd_signal", cnd_signal(&c));
    CALL("cnd_broadcast", cnd_broadcast(&c));
    mtx_destroy(&m);
    cnd_destroy(&c);
    mtx_t r;
    CALL("mtx_init recursive", mtx_init(&r, mtx_plain | mtx_recursive));
    CALL("lock", mtx_lock(&r));
    CALL("lock again", mtx_lock(&r));
    mtx_unlock(&r);
    mtx_unlock(&r);
    thrd_t t;
    CALL("thrd_create", thrd_create(&t, c11_detached, NULL));
    CALL("thrd_detach", thrd_detach(t));
}

static once_flag c11_once = ONCE_FLAG_INIT;
static int c11_once_runs;
static void c11_once_fn(void) { c11_once_runs++; }
static tss_t c11_key;
static int c11_dtor_runs;
static void c11_dtor(void *v) { (void)v; c11_dtor_runs++; }
static int c11_set_tss(void *arg) { tss_set(c11_key, arg); call_once(&c11_once, c11_once_fn); return 0; }

DIFF_CASE(thread, c11_tss_and_call_once)
{
    CALL("tss_create", tss_create(&c11_key, c11_dtor));
    thrd_t t[2];
    for (int i = 0; i < 2; i++)
        thrd_create(&t[i], c11_set_tss, (void *)1);
    for (int i = 0; i < 2; i++)
        thrd_join(t[i], NULL);
    diff_out("once runs %d, dtor runs %d, own value %p", c11_once_runs, c11_dtor_runs,
             tss_get(c11_key));
    tss_delete(c11_key);
}

/* ----------------------------------------------------- process-shared */

struct shm_objs {
    pthread_mutex_t m, em, rm;
    pthread_cond_t c;
    pthread_barrier_t b;
    pthread_rwlock_t rw;
    sem_t s;
    volatile int flag;
};

static struct shm_objs *shm_init(void)
{
    struct shm_objs *o = diff_shared_map(sizeof *o);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&o->m, &ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&o->em, &ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&o->rm, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&o->c, &ca);
    pthread_condattr_destroy(&ca);
    pthread_barrierattr_t ba;
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&o->b, &ba, 2);
    pthread_barrierattr_destroy(&ba);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED);
    pthread_rwlock_init(&o->rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    sem_init(&o->s, 1, 0);
    return o;
}

DIFF_CASE(thread, pshared_mutex_is_held_across_fork)
{
    struct shm_objs *o = shm_init();
    CALL("lock", pthread_mutex_lock(&o->m));
    pid_t pid = fork();
    if (pid == 0) {
        int a = pthread_mutex_trylock(&o->m);
        sem_post(&o->s);
        int b = pthread_mutex_lock(&o->m);   /* waits for the parent */
        int c = o->flag;
        pthread_mutex_unlock(&o->m);
        _exit(a == EBUSY && b == 0 && c == 1 ? 0 : 1);
    }
    sem_wait(&o->s);
    usleep(10000);
    o->flag = 1;
    CALL("unlock", pthread_mutex_unlock(&o->m));
    diff_child_status("child (0 = busy, then got it after the parent)", pid);
}

static void *other_try_unlock_pm(void *arg)
{
    pthread_mutex_t *m = arg;
    int a = pthread_mutex_trylock(m);
    int b = pthread_mutex_unlock(m);
    return (void *)(intptr_t)(a * 1000 + b);
}

DIFF_CASE(thread, pshared_errorcheck_and_recursive_ownership_is_per_thread)
{
    struct shm_objs *o = shm_init();
    CALL("errorcheck lock", pthread_mutex_lock(&o->em));
    CALL("errorcheck relock", pthread_mutex_lock(&o->em));
    pthread_t t = diff_spawn(other_try_unlock_pm, &o->em);
    void *r;
    pthread_join(t, &r);
    diff_out("other thread: trylock %s unlock %s", diff_errname((int)(intptr_t)r / 1000),
             diff_errname((int)(intptr_t)r % 1000));
    CALL("errorcheck unlock", pthread_mutex_unlock(&o->em));
    CALL("recursive lock", pthread_mutex_lock(&o->rm));
    CALL("recursive lock 2", pthread_mutex_lock(&o->rm));
    t = diff_spawn(other_try_unlock_pm, &o->rm);
    pthread_join(t, &r);
    diff_out("other thread: trylock %s unlock %s", diff_errname((int)(intptr_t)r / 1000),
             diff_errname((int)(intptr_t)r % 1000));
    CALL("recursive unlock", pthread_mutex_unlock(&o->rm));
    CALL("recursive unlock", pthread_mutex_unlock(&o->rm));
    CALL("recursive unlock 3", pthread_mutex_unlock(&o->rm));
}

DIFF_CASE(thread, pshared_cond_wakes_a_waiter_in_the_child)
{
    struct shm_objs *o = shm_init();
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&o->m);
        sem_post(&o->s);
        while (!o->flag)
            pthread_cond_wait(&o->c, &o->m);
        pthread_mutex_unlock(&o->m);
        _exit(0);
    }
    sem_wait(&o->s);
    pthread_mutex_lock(&o->m);
    o->flag = 1;
    CALL("signal", pthread_cond_signal(&o->c));
    pthread_mutex_unlock(&o->m);
    diff_child_status("child", pid);
}

DIFF_CASE(thread, pshared_cond_timedwait_times_out_in_the_child)
{
    struct shm_objs *o = shm_init();
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&o->m);
        struct timespec ts = diff_abs_in(CLOCK_REALTIME, 20);
        int e = pthread_cond_timedwait(&o->c, &o->m, &ts);
        pthread_mutex_unlock(&o->m);
        _exit(e == ETIMEDOUT ? 0 : 1);
    }
    diff_child_status("child (0 = ETIMEDOUT)", pid);
}

DIFF_CASE(thread, pshared_barrier_across_fork_has_one_serial_waiter)
{
    struct shm_objs *o = shm_init();
    pid_t pid = fork();
    if (pid == 0) {
        int r = pthread_barrier_wait(&o->b);
        _exit(r == PTHREAD_BARRIER_SERIAL_THREAD ? 1 : 0);
    }
    int r = pthread_barrier_wait(&o->b);
    int st = 0;
    waitpid(pid, &st, 0);
    diff_out("serial waiters %d", (r == PTHREAD_BARRIER_SERIAL_THREAD) +
                                      (WIFEXITED(st) ? WEXITSTATUS(st) : 9));
}

DIFF_CASE(thread, pshared_rwlock_across_fork)
{
    struct shm_objs *o = shm_init();
    CALL("wrlock", pthread_rwlock_wrlock(&o->rw));
    pid_t pid = fork();
    if (pid == 0) {
        int a = pthread_rwlock_tryrdlock(&o->rw);
        sem_post(&o->s);
        int b = pthread_rwlock_rdlock(&o->rw);
        int c = pthread_rwlock_unlock(&o->rw);
        _exit(a == EBUSY && b == 0 && c == 0 ? 0 : 1);
    }
    sem_wait(&o->s);
    usleep(10000);
    CALL("unlock", pthread_rwlock_unlock(&o->rw));
    diff_child_status("child (0 = busy, then read)", pid);
    CALL("rdlock", pthread_rwlock_rdlock(&o->rw));
    CALL("rdlock 2", pthread_rwlock_rdlock(&o->rw));
    CALL("trywrlock", pthread_rwlock_trywrlock(&o->rw));
    pthread_rwlock_unlock(&o->rw);
    pthread_rwlock_unlock(&o->rw);
}

DIFF_CASE(thread, pshared_robust_mutex_of_a_dead_process_is_eownerdead)
{
    struct shm_objs *o = diff_shared_map(sizeof *o);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&o->m, &ma);
    pthread_mutexattr_destroy(&ma);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&o->m);
        _exit(0);
    }
    diff_child_status("child", pid);
    CALL("lock", pthread_mutex_lock(&o->m));
    CALL("consistent", pthread_mutex_consistent(&o->m));
    CALL("unlock", pthread_mutex_unlock(&o->m));
}

DIFF_CASE(thread, pshared_sem_posted_by_the_child)
{
    struct shm_objs *o = shm_init();
    pid_t pid = fork();
    if (pid == 0) {
        usleep(10000);
        sem_post(&o->s);
        _exit(0);
    }
    CALL("sem_wait", sem_wait(&o->s));
    diff_child_status("child", pid);
}

/* ----------------------------------------------------------- semaphores */

static sem_t *named(void)
{
    char name[64];
    snprintf(name, sizeof name, "/diffthr-%d", (int)getpid());
    sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    sem_unlink(name);
    return s;
}

DIFF_CASE(thread, named_sem_wait_is_interrupted_by_a_handler)
{
    sem_t *s = named();
    handle(SIGALRM, 0);
    diff_alarm_ms(20);
    CALL("sem_wait", sem_wait(s));
    diff_out("handler ran %d", hits);
    sem_close(s);
}

static void *post_later(void *arg)
{
    /* The alarm is for the waiter: which of two accepting threads the
     * kernel picks is not defined. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    usleep(60000);
    sem_post(arg);
    return NULL;
}

DIFF_CASE(thread, named_sem_wait_under_sa_restart_restarts)
{
    sem_t *s = named();
    handle(SIGALRM, SA_RESTART);
    pthread_t t = diff_spawn(post_later, s);
    int64_t t0 = diff_now();   /* before the alarm, never after */
    diff_alarm_ms(20);
    CALL("sem_wait", sem_wait(s));
    DIFF_TOOK("sem_wait", t0, 45, 2000);
    diff_out("handler ran %d", hits);
    pthread_join(t, NULL);
    sem_close(s);
}

DIFF_CASE(thread, named_sem_post_then_wait_and_getvalue)
{
    sem_t *s = named();
    CALL("post", sem_post(s));
    CALL("post", sem_post(s));
    int v = -1;
    CALL("getvalue", sem_getvalue(s, &v));
    diff_out("value %d", v);
    CALL("wait", sem_wait(s));
    CALL("trywait", sem_trywait(s));
    CALL("trywait empty", sem_trywait(s));
    sem_close(s);
}

DIFF_CASE(thread, sem_wait_is_interrupted_by_a_handler)
{
    sem_t s;
    sem_init(&s, 0, 0);
    handle(SIGALRM, 0);
    diff_alarm_ms(20);
    CALL("sem_wait", sem_wait(&s));
}

DIFF_CASE(thread, sem_timedwait_under_sa_restart_fails_with_eintr)
{
    sem_t s;
    sem_init(&s, 0, 0);
    handle(SIGALRM, SA_RESTART);
    int64_t t0 = diff_now();   /* before the alarm, never after */
    diff_alarm_ms(20);
    struct timespec ts = diff_abs_in(CLOCK_REALTIME, 2000);
    CALL("sem_timedwait", sem_timedwait(&s, &ts));
    DIFF_TOOK("sem_timedwait", t0, 10, 1000);
}

DIFF_CASE(thread, sem_timedwait_bad_nsec_with_and_without_a_unit)
{
    sem_t s;
    sem_init(&s, 0, 1);
    struct timespec bad = { 0, 1000000000 }, neg = { 0, -1 }, past = { 0, 0 };
    CALL("available, bad nsec", sem_timedwait(&s, &bad));
    CALL("available, negative nsec", sem_timedwait(&s, &neg));
    CALL("available, past", sem_timedwait(&s, &past));
    CALL("empty, bad nsec", sem_timedwait(&s, &bad));
    CALL("empty, past", sem_timedwait(&s, &past));
}

DIFF_CASE(thread, sem_clockwait_clocks_and_timeout)
{
    sem_t s;
    sem_init(&s, 0, 0);
    struct timespec ts = diff_abs_in(CLOCK_MONOTONIC, 20);
    int64_t t0 = diff_now();
    CALL("clockwait monotonic", sem_clockwait(&s, CLOCK_MONOTONIC, &ts));
    DIFF_TOOK("clockwait", t0, 15, 1000);
    ts = diff_abs_in(CLOCK_REALTIME, 10);
    CALL("clockwait realtime", sem_clockwait(&s, CLOCK_REALTIME, &ts));
    CALL("clockwait boottime", sem_clockwait(&s, CLOCK_BOOTTIME, &ts));
    sem_post(&s);
    CALL("clockwait available", sem_clockwait(&s, CLOCK_MONOTONIC, &ts));
}

DIFF_CASE(thread, sem_init_and_post_limits)
{
    sem_t s;
    CALL("init too big", sem_init(&s, 0, (unsigned)SEM_VALUE_MAX + 1u));
    CALL("init max", sem_init(&s, 0, SEM_VALUE_MAX));
    CALL("post at max", sem_post(&s));
    int v = 0;
    sem_getvalue(&s, &v);
    diff_out("value is max %d", v == SEM_VALUE_MAX);
}

/* syscall() is no cancellation point, whatever the number: a pending
 * pthread_cancel acts at the next real one (pthread_testcancel), after
 * a write, a nanosleep and a close made through syscall(). */
static pthread_barrier_t sc_bar;
static atomic_int sc_steps;

static void *syscalls_then_testcancel(void *arg)
{
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    int fd = open("/dev/null", O_WRONLY);
    pthread_barrier_wait(&sc_bar);     /* cancelled after this */
    pthread_barrier_wait(&sc_bar);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    if (syscall(SYS_write, fd, "x", 1) == 1)
        atomic_fetch_add(&sc_steps, 1);
    struct timespec ms = { 0, 1000000 };
    if (syscall(SYS_nanosleep, &ms, NULL) == 0)
        atomic_fetch_add(&sc_steps, 1);
    if (syscall(SYS_close, fd) == 0)
        atomic_fetch_add(&sc_steps, 1);
    pthread_testcancel();
    atomic_fetch_add(&sc_steps, 10);
    return NULL;
}

DIFF_CASE(thread, syscall_is_no_cancellation_point)
{
    pthread_barrier_init(&sc_bar, NULL, 2);
    pthread_t th = diff_spawn(syscalls_then_testcancel, NULL);
    pthread_barrier_wait(&sc_bar);
    pthread_cancel(th);
    pthread_barrier_wait(&sc_bar);
    void *res = NULL;
    pthread_join(th, &res);
    diff_out("steps %d, %s", atomic_load(&sc_steps),
             res == PTHREAD_CANCELED ? "cancelled" : "ended");
    pthread_barrier_destroy(&sc_bar);
}

/* The main thread's name is the process's (/proc/self/comm, ps): set by
 * prctl or pthread_setname_np on main it changes; on another thread not
 * (LTP prctl05). */
static void read_comm(char out[32])
{
    int fd = open("/proc/self/comm", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, out, 31) : -1;
    out[n > 0 ? n : 0] = 0;
    if (n > 0 && out[n - 1] == '\n')
        out[n - 1] = 0;
    if (fd >= 0)
        close(fd);
}

DIFF_CASE(thread, the_main_threads_name_is_the_processes)
{
    char before[32], now[32];
    read_comm(before);
    prctl(PR_SET_NAME, "diffname-prctl");
    read_comm(now);
    diff_out("after prctl: %s", !strcmp(now, "diffname-prctl") ? "the new name"
                                : !strcmp(now, before) ? "unchanged" : "other");
    pthread_setname_np(pthread_self(), "diffname-setnam");
    read_comm(now);
    diff_out("after pthread_setname_np: %s", !strcmp(now, "diffname-setnam") ? "the new name"
                                             : !strcmp(now, before) ? "unchanged" : "other");
    prctl(PR_SET_NAME, before);
}

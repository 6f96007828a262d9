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

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int e = pthread_create(&t, NULL, fn, arg);
    if (e)
        diff_out("pthread_create: %s", diff_errname(e));
    return t;
}

/* How a child ended: "exit N" or "signal N". */
static void print_child(const char *label, pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st))
        diff_out("%s: exit %d", label, WEXITSTATUS(st));
    else
        diff_out("%s: signal %d", label, WIFSIGNALED(st) ? WTERMSIG(st) : -1);
}

static void *shared_map(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        diff_out("mmap failed");
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

static struct timespec abs_in(clockid_t clk, long ms)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

static volatile sig_atomic_t hits;
static void on_sig(int sig) { (void)sig; hits++; }

static void handle(int sig, int flags)
{
    struct sigaction sa = { .sa_handler = on_sig, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void alarm_ms(int ms)
{
    struct itimerval it = { .it_value = { ms / 1000, (ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
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
    pthread_t t = spawn(count_forever, NULL);
    while (atomic_load(&counter) < 3)
        usleep(1000);
    pid_t pid = fork();
    if (pid == 0) {
        int before = atomic_load(&counter);
        usleep(50000);
        _exit(atomic_load(&counter) == before ? 0 : 1);
    }
    print_child("child (0 = counter did not move)", pid);
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
    pthread_t t = spawn(cond_waiter_prints, (void *)(intptr_t)getpid());
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
    print_child("child", pid);
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
    print_child("child", pid);
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
    pthread_t t = spawn(lock_and_wait, &m);
    sem_wait(&fk_sem);
    pid_t pid = fork();
    if (pid == 0) {
        int e = pthread_mutex_trylock(&m);
        usleep(150000);   /* longer than the holder would keep it */
        int e2 = pthread_mutex_trylock(&m);
        _exit(e == EBUSY && e2 == EBUSY ? 0 : 1);
    }
    print_child("child (0 = still locked)", pid);
    CALL("join", pthread_join(t, NULL));
}

static void *ret_arg(void *arg) { return arg; }

DIFF_CASE(thread, fork_child_can_create_join_sleep_and_use_pipes)
{
    pthread_t t = spawn(count_forever, NULL);
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
    print_child("child", pid);
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
    pthread_t t = spawn(fork_then_exit_thread, NULL);
    void *r;
    pthread_join(t, &r);
    print_child("child", (pid_t)(intptr_t)r);
}

DIFF_CASE(thread, fork_child_keeps_the_callers_pthread_self)
{
    pthread_t me = pthread_self();
    pthread_t t = spawn(count_forever, NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(pthread_equal(me, pthread_self()) ? 0 : 1);
    print_child("child (0 = same pthread_self)", pid);
    pthread_cancel(t);
    pthread_join(t, NULL);
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
    pthread_t t = spawn(count_forever, NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(task_count());
    print_child("child (tasks)", pid);
    pthread_cancel(t);
    pthread_join(t, NULL);
}

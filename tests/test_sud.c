/*
 * test_sud.c - raw system calls under syscall user dispatch (hooks/sud.c).
 *
 * In this process (linked with the hooks, never preloaded): the handler
 * itself, with dispatch switched on for the test's own OS thread, and
 * raw calls made from this file's text, which is outside libc's: a call
 * that never waits returns what libc's would; rt_sigprocmask changes the
 * mask that outlives the handler; a raw fork's child has dispatch again;
 * clone3 says ENOSYS; a SIGSYS that is no dispatch trap reaches the
 * handler installed before; and a raw read of an empty pipe in one green
 * thread parks it while another green thread runs and fills the pipe
 * with a raw write of its own (a trap while another is parked inside
 * the handler), and so does a raw io_uring_enter waiting for a read.
 *
 * Under the shim (tests/progs/sud/prog_sud_read.c): with
 * GREEN_SYSCALL_DISPATCH=1 a pthread's raw read parks only that thread,
 * on one hub and on each of two, and a signal interrupts it with EINTR
 * as natively; without the setting the read blocks the hub, as the
 * README says.
 *
 * x86-64 only: elsewhere libgreen refuses to switch dispatch on (the
 * handler's return would trap), which the last test checks.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <linux/futex.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "child_run.h"
#include "green.h"
#include "io.h"
#include "real.h"
#include "sud.h"

#if defined(__x86_64__)
static long raw6(long nr, long a, long b, long c, long d)
{
    long r;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return r;
}

/* Dispatch on for this OS thread, or skip when the kernel lacks it. */
static void on_here(void)
{
    if (green__sud_setup() != 0)
        cr_skip_test("no syscall user dispatch here: %s", strerror(errno));
    cr_assert_eq(green__sud_on(), 0, "%s", strerror(errno));
    cr_assert(green__sud_active());
}

Test(sud, a_raw_call_that_does_not_wait_returns_what_libc_returns)
{
    on_here();
    unsigned long before = green__sud_traps();
    cr_assert_eq(raw6(SYS_getppid, 0, 0, 0, 0), getppid());
    cr_assert_eq(raw6(SYS_close, -1, 0, 0, 0), -EBADF, "errors come back as -errno");
    cr_assert_eq(green__sud_traps(), before + 2, "both calls trapped");
    cr_assert_eq(syscall(SYS_getppid), getppid());
    cr_assert_eq(green__sud_traps(), before + 2, "libc's syscall() is not trapped");
    cr_assert_eq(green__syscall(SYS_getppid), getppid());
    cr_assert_eq(green__sud_traps(), before + 2, "nor libgreen's own instruction");
    cr_assert(green__sud_active(), "whose selector is shut again");
}

Test(sud, errno_is_what_it_was_before_the_trap)
{
    on_here();
    errno = 4242;
    raw6(SYS_read, -1, 0, 0, 0);
    cr_assert_eq(errno, 4242);
}

Test(sud, a_raw_sigprocmask_outlives_the_handler)
{
    on_here();
    sigset_t s, cur;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    cr_assert_eq(raw6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&s, 0, 8), 0);
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    cr_assert(sigismember(&cur, SIGUSR2), "the mask sigreturn restored has SIGUSR2");
    sigset_t old;
    cr_assert_eq(raw6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&s, (long)&old, 8), 0);
    cr_assert(sigismember(&old, SIGUSR2));
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    cr_assert(!sigismember(&cur, SIGUSR2));
}

/* ASan's pthread_create blocks every signal with its own raw call, then
 * makes more raw calls: SIGSYS must stay open, or the next trap kills. */
Test(sud, a_raw_sigprocmask_never_blocks_sigsys)
{
    on_here();
    sigset_t all, old;
    sigfillset(&all);
    cr_assert_eq(raw6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, 8), 0);
    cr_assert_eq(raw6(SYS_getppid, 0, 0, 0, 0), getppid(), "still trapped, alive");
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    cr_assert(!sigismember(&cur, SIGSYS));
    cr_assert(sigismember(&cur, SIGUSR1));
    raw6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8);
}

Test(sud, the_child_of_a_raw_fork_has_dispatch_again)
{
    on_here();
    long pid = raw6(SYS_fork, 0, 0, 0, 0);
    if (pid == 0) {
        unsigned long t = green__sud_traps();
        long pp = raw6(SYS_getppid, 0, 0, 0, 0);
        _exit(green__sud_active() && green__sud_traps() == t + 1 && pp == getppid() ? 0 : 1);
    }
    cr_assert_gt(pid, 0);
    int st;
    cr_assert_eq(waitpid((pid_t)pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

/* The kernel's rules, which the design rests on (docs/syscall-dispatch.md). */
static void *count_raw(void *arg)
{
    unsigned long before = green__sud_traps();
    raw6(SYS_getppid, 0, 0, 0, 0);
    *(bool *)arg = green__sud_traps() == before && !green__sud_active();
    return NULL;
}

Test(sud, a_new_os_thread_does_not_inherit_dispatch)
{
    on_here();
    bool untrapped = false;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, count_raw, &untrapped), 0);
    pthread_join(t, NULL);
    cr_assert(untrapped, "each hub must switch it on for itself");
}

Test(sud, a_fork_child_gets_dispatch_back_from_the_atfork_handler)
{
    on_here();
    pid_t pid = fork();
    if (pid == 0) {
        unsigned long t = green__sud_traps();
        raw6(SYS_getppid, 0, 0, 0, 0);
        _exit(green__sud_active() && green__sud_traps() == t + 1 ? 0 : 1);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

Test(sud, exec_clears_dispatch)
{
    on_here();
    pid_t pid = fork();
    if (pid == 0) {
        /* The new image's ld.so makes raw calls outside the old libc's
         * text, with no SIGSYS handler: it would die if dispatch stayed. */
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

Test(sud, clone3_says_enosys_so_that_its_caller_falls_back)
{
    on_here();
    cr_assert_eq(raw6(SYS_clone3, 0, 0, 0, 0), -ENOSYS);
}

static volatile sig_atomic_t chained;
static void earlier_handler(int sig)
{
    (void)sig;
    chained++;
}

Test(sud, a_sigsys_that_is_not_a_trap_goes_to_the_earlier_handler)
{
    signal(SIGSYS, earlier_handler);   /* before libgreen's, in this process */
    on_here();
    raise(SIGSYS);
    cr_assert_eq(chained, 1);
    cr_assert_eq(raw6(SYS_getppid, 0, 0, 0, 0), getppid(), "dispatch still works");
    cr_assert_eq(chained, 1);
}

Test(sud, a_sigsys_that_is_not_a_trap_and_has_no_earlier_handler_kills)
{
    on_here();
    pid_t pid = fork();
    if (pid == 0) {
        raise(SIGSYS);
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "child status %#x", st);
}

static int pfd[2];
static int ticks;
static long got;

static void *raw_reader(void *arg)
{
    (void)arg;
    char b[8];
    got = raw6(SYS_read, pfd[0], (long)b, sizeof b, 0);
    return NULL;
}

/* Its raw write traps while the reader is parked inside its own
 * handler: SIGSYS must not be blocked then (SA_NODEFER), or the kernel
 * kills the process. */
static void *ticker(void *arg)
{
    (void)arg;
    for (ticks = 0; ticks < 10; ticks++)
        green_yield();
    raw6(SYS_write, pfd[1], (long)"abc", 3, 0);
    return NULL;
}

Test(sud, a_raw_read_parks_its_green_thread_while_another_runs)
{
    cr_assert_eq(green_hook_pipe(pfd), 0);
    cr_assert_not_null(green_self(), "the test thread has a hub");
    on_here();
    alarm(20);   /* a read that blocked the OS thread would hang the test */
    unsigned long hooked = green__sud_hooked();
    green_t r = green_spawn(raw_reader, NULL, NULL);
    green_t t = green_spawn(ticker, NULL, NULL);
    cr_assert_eq(green_join(r, NULL), 0);
    cr_assert_eq(green_join(t, NULL), 0);
    cr_assert_eq(got, 3);
    cr_assert_eq(ticks, 10, "the ticker ran while the read waited");
    cr_assert_eq(green__sud_hooked(), hooked + 2, "the read and the write went to their hooks");
}

/* A futex wait and wake made with raw instructions, as inline-assembly
 * locks make them: the wait parks in the lock core's table, the wake
 * (routed as syscall(SYS_futex) is) finds it there. */
static uint32_t fword;
static long fwait_r;

static void *raw_futex_waiter(void *arg)
{
    (void)arg;
    fwait_r = raw6(SYS_futex, (long)&fword, FUTEX_WAIT_PRIVATE, 0, 0);
    return NULL;
}

static void *raw_futex_waker(void *arg)
{
    (void)arg;
    for (ticks = 0; ticks < 10; ticks++)
        green_yield();
    __atomic_store_n(&fword, 1, __ATOMIC_SEQ_CST);
    raw6(SYS_futex, (long)&fword, FUTEX_WAKE_PRIVATE, 1, 0);
    return NULL;
}

Test(sud, a_raw_futex_wait_parks_and_a_raw_wake_ends_it)
{
    green__hook_families |= GREEN_HOOK_THREAD;   /* futex waits: the shim's family */
    cr_assert_not_null(green_self());
    on_here();
    alarm(20);   /* a wait that blocked the OS thread would hang the test */
    green_t w = green_spawn(raw_futex_waiter, NULL, NULL);
    green_t k = green_spawn(raw_futex_waker, NULL, NULL);
    cr_assert_eq(green_join(w, NULL), 0);
    cr_assert_eq(green_join(k, NULL), 0);
    cr_assert_eq(fwait_r, 0);
    cr_assert_eq(ticks, 10, "the waker ran while the wait was parked");
}

/* An io_uring read of an empty pipe, waited for with a raw
 * io_uring_enter (as liburing's io_uring_wait_cqe makes it). */
struct ring {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
};

static int ring_init(struct ring *r)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    r->fd = (int)syscall(SYS_io_uring_setup, 4, &p);
    if (r->fd < 0)
        return -1;
    size_t sqsz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cqsz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    char *sq = mmap(NULL, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                    r->fd, IORING_OFF_SQ_RING);
    char *cq = mmap(NULL, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                    r->fd, IORING_OFF_CQ_RING);
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
        return -1;
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

static struct ring ring;
static char ubuf[8];
static long entered;

static void *uring_waiter(void *arg)
{
    (void)arg;
    unsigned t = *ring.sq_tail, i = t & *ring.sq_mask;
    struct io_uring_sqe *e = &ring.sqes[i];
    memset(e, 0, sizeof *e);
    e->opcode = IORING_OP_READ;
    e->fd = pfd[0];
    e->addr = (uintptr_t)ubuf;
    e->len = sizeof ubuf;
    e->off = (uint64_t)-1;
    e->user_data = 7;
    ring.sq_array[i] = i;
    __atomic_store_n(ring.sq_tail, t + 1, __ATOMIC_RELEASE);
    /* Submit one, wait for one: io_uring_enter(fd, 1, 1, GETEVENTS). */
    register long r8 __asm__("r8") = 0, r9 __asm__("r9") = 8;
    register long r10 __asm__("r10") = IORING_ENTER_GETEVENTS;
    long r;
    __asm__ volatile("syscall" : "=a"(r)
                     : "a"((long)SYS_io_uring_enter), "D"((long)ring.fd), "S"(1L), "d"(1L),
                       "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    entered = r;
    return NULL;
}

static void *plain_ticker(void *arg)
{
    (void)arg;
    for (ticks = 0; ticks < 10; ticks++)
        green_yield();
    if (write(pfd[1], "abc", 3) != 3)
        abort();
    return NULL;
}

Test(sud, a_raw_io_uring_enter_waiting_for_completions_parks)
{
    if (ring_init(&ring) != 0)
        cr_skip_test("no io_uring here: %s", strerror(errno));
    cr_assert_eq(pipe(pfd), 0);
    cr_assert_not_null(green_self());
    on_here();
    alarm(20);
    unsigned long hooked = green__sud_hooked();
    green_t w = green_spawn(uring_waiter, NULL, NULL);
    green_t t = green_spawn(plain_ticker, NULL, NULL);
    cr_assert_eq(green_join(w, NULL), 0);
    cr_assert_eq(green_join(t, NULL), 0);
    cr_assert_eq(entered, 1, "io_uring_enter says one was submitted: %ld", entered);
    cr_assert_eq(ticks, 10, "the other thread ran while the ring was waited for");
    cr_assert_eq(green__sud_hooked(), hooked + 1);
    unsigned h = *ring.cq_head;
    cr_assert_neq(h, __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE), "a completion");
    struct io_uring_cqe *c = &ring.cqes[h & *ring.cq_mask];
    cr_assert_eq(c->user_data, 7);
    cr_assert_eq(c->res, 3);
    cr_assert_eq(memcmp(ubuf, "abc", 3), 0);
}

/* ----------------------------------------------------------- the shim */

Test(sud, under_the_shim_a_raw_read_parks_only_its_pthread)
{
    if (green__sud_setup() != 0)
        cr_skip_test("no syscall user dispatch here");
    setenv("GREEN_SYSCALL_DISPATCH", "1", 1);
    setenv("GREEN_HUBS", "1", 1);
    struct run r;
    run_prog(&r, true, "sud", "prog_sud_read", "read", "1", 20000);
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_assert_eq(kv(&r, "armed"), 1, "SIGSYS is libgreen's:\n%s", r.out);
    cr_assert_eq(kv(&r, "ppid_ok"), 1, "%s", r.out);
    cr_assert_eq(kv(&r, "write_ok"), 1, "%s", r.out);
    cr_assert_eq(kv(&r, "got"), 5, "%s", r.out);
    cr_assert_eq(kv(&r, "rescued"), 0, "the ticker ran on the one hub:\n%s", r.out);
    cr_assert_geq(kv(&r, "ticks"), 20, "%s", r.out);
}

/* Dispatch is per OS thread: each hub switches it on for itself. */
Test(sud, with_two_hubs_each_hub_parks_its_own_raw_reads)
{
    if (green__sud_setup() != 0)
        cr_skip_test("no syscall user dispatch here");
    setenv("GREEN_SYSCALL_DISPATCH", "1", 1);
    setenv("GREEN_HUBS", "2", 1);
    struct run r;
    run_prog(&r, true, "sud", "prog_sud_read", "read", "4", 20000);
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_assert_eq(kv(&r, "armed"), 1, "%s", r.out);
    cr_assert_eq(kv(&r, "reader_os_threads"), 2, "readers on both hubs:\n%s", r.out);
    cr_assert_eq(kv(&r, "got"), 20, "%s", r.out);
    cr_assert_eq(kv(&r, "rescued"), 0, "%s", r.out);
    cr_assert_geq(kv(&r, "ticks"), 20, "%s", r.out);
}

/* Daemons block every signal in every thread and sigwait in one: SIGSYS
 * must stay open in the hub's kernel mask all the same, or the first
 * trap kills the process. */
Test(sud, a_program_that_blocks_every_signal_still_traps)
{
    if (green__sud_setup() != 0)
        cr_skip_test("no syscall user dispatch here");
    setenv("GREEN_SYSCALL_DISPATCH", "1", 1);
    setenv("GREEN_HUBS", "1", 1);
    struct run r;
    run_prog(&r, true, "sud", "prog_sud_read", "blockall", "2", 20000);
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_assert_eq(kv(&r, "armed"), 1, "%s", r.out);
    cr_assert_eq(kv(&r, "got"), 10, "%s", r.out);
    cr_assert_eq(kv(&r, "rescued"), 0, "%s", r.out);
}

Test(sud, a_signal_interrupts_a_parked_raw_read_with_eintr)
{
    if (green__sud_setup() != 0)
        cr_skip_test("no syscall user dispatch here");
    setenv("GREEN_SYSCALL_DISPATCH", "1", 1);
    setenv("GREEN_HUBS", "1", 1);
    struct run r;
    run_prog(&r, true, "sud", "prog_sud_read", "eintr", NULL, 20000);
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_assert_eq(kv(&r, "armed"), 1, "%s", r.out);
    cr_assert_eq(kv(&r, "handled"), 1, "%s", r.out);
    cr_assert_eq(kv(&r, "r"), -EINTR, "%s", r.out);
}
#endif

/* What the README says without the setting: the raw read blocks the hub
 * and every green thread on it (a plain OS thread releases it). */
Test(sud, under_the_shim_without_dispatch_a_raw_read_blocks_the_hub)
{
    unsetenv("GREEN_SYSCALL_DISPATCH");
    setenv("GREEN_HUBS", "1", 1);
    struct run r;
    run_prog(&r, true, "sud", "prog_sud_read", "read", "1", 20000);
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_assert_eq(kv(&r, "armed"), 0, "%s", r.out);
    cr_assert_eq(kv(&r, "got"), 5, "%s", r.out);
    cr_assert_eq(kv(&r, "rescued"), 1, "%s", r.out);
    cr_assert_eq(kv(&r, "ticks"), 0, "%s", r.out);
}

#if !defined(__x86_64__)
Test(sud, elsewhere_dispatch_is_refused)
{
    cr_assert_eq(green__sud_setup(), -1);
    cr_assert_eq(errno, ENOSYS);
}
#endif

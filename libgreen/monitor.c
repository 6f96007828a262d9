/*
 * monitor.c - seeing inside a running process: the list of hubs (ctxs),
 * the watchdog that reports green threads that do not yield or that block
 * their hub in a system call the shim did not park (GREEN_MONITOR_MS), and
 * the signal that dumps every green thread (GREEN_DUMP_SIGNAL).
 *
 * The ctx list. Every ctx is recorded, by its own OS thread, in a fixed
 * array of slots (green__ctx_slots): the ctx and the kernel tid of its OS
 * thread. Ctxs are never freed (hub.c), so a pointer read from a slot stays
 * valid; a slot whose OS thread is gone (tgkill answers ESRCH) is reused.
 * The gdb extension (gdb/libgreen-gdb.py) walks the same array, which is
 * why it is a plain global and not a linked list inside the ctxs.
 *
 * The watchdog. A real OS thread, created with every signal blocked and
 * calling only real functions (real.h; it has no hub, so hooks would pass
 * its calls through anyway), wakes
 * every ms/2 and reads, for each slot, the ctx's switch counter (bumped by
 * switch_to on every scheduling point) and whether its current thread is
 * the hub. When the counter has not moved for ms while a thread other than
 * the hub is current, that thread has run (or blocked in a call the shim
 * does not make cooperative) for ms without yielding. Time its OS thread
 * spent runnable but waiting for a CPU (the kernel's run-queue delay, read
 * from /proc/self/task/TID/schedstat only once a stall is suspected) is
 * not counted: on a loaded machine a thread that yields all the time is
 * not "stalled" because the kernel preempted it. The watchdog cannot
 * read another thread's registers, so it asks the stalled OS thread itself:
 * it stores the counter value in the slot and sends the monitor signal
 * (GREEN_MONITOR_SIGNAL, default SIGURG, whose default action is to ignore
 * it) with tgkill. The handler, on the stalled thread, checks the counter
 * is unchanged and that no switch happened meanwhile, then writes the report
 * and a backtrace (backtrace() + dladdr) to stderr. One report per stall:
 * the slot remembers the counter value it reported. The report says that
 * the thread made no hooked call at all: a computation, or a busy-wait on
 * another green thread of the same hub (which cannot run until it yields).
 *
 * Blocked in the kernel. Before it signals, the watchdog reads
 * /proc/self/task/TID/syscall. "running" (or an unreadable file) takes the
 * path above. A system call number means the OS thread is asleep in a call
 * the shim did not park (a raw io_uring_enter or futex, a read the shim
 * passed through...): that thread is never signalled, since a signal makes
 * calls that SA_RESTART does not restart (io_uring_enter, epoll_wait,
 * ppoll, nanosleep, a futex wait with a timeout; signal(7)) fail with an
 * EINTR the program would never see natively. The watchdog reports it
 * itself (monitor_syscall.c: the call, its advice, the green thread and
 * frames scanned from its stack), once per stall, and only while
 * something waits for that hub (runnable green threads, a deadline
 * passed, a ready descriptor): with nothing waiting, a blocked call holds
 * nobody up, as natively. The only EINTR risk left is a thread that
 * enters a blocking call between the watchdog's read of "running" and its
 * tgkill (microseconds, for a thread that has already run ms without a
 * scheduling point).
 *
 * Reading another OS thread's ctx. For a running thread the watchdog only
 * reads two words of a ctx: the switch counter (an atomic) and the
 * current-thread pointer, which it compares with the hub pointer and never
 * dereferences. Everything about the green thread itself (id, name, stack)
 * is read by the signal handler on the owning OS thread, where it cannot
 * change under it. For a thread asleep in a system call there is no
 * handler: the watchdog copies its id and name (thread structs are never
 * freed) and keeps the copy only if the switch counter did not move
 * meanwhile; monitor_syscall.c says how it reads the rest.
 *
 * The dump signal. A process-directed signal lands on one thread. Its
 * handler dumps that thread's ctx (if it has one) and then passes the
 * request along the slot array: it marks the next live slot and tgkills its
 * OS thread, which dumps its own ctx and passes on to the slot after it.
 * Each OS thread prints only its own green threads (safe), the outputs do
 * not interleave, and the chain always moves forward, so it ends.
 *
 * Signal safety. Both handlers allocate nothing and format with the
 * green__fmt helpers (dump.c). Their write() is the real one (real.h),
 * never the shim's write hook, which could park the interrupted green
 * thread inside the handler. backtrace() loads libgcc_s with dlopen on
 * its first call, so green__monitor_start calls it once up front. backtrace
 * and dladdr take the dynamic loader's lock: a thread stalled inside
 * dlopen/dlsym itself would deadlock its own report; we accept that rare
 * case rather than print no symbols. The monitor signal interrupts a
 * stalled thread that is running, once per stall; a thread asleep in a
 * system call is not signalled (above).
 *
 * Rejected: reading a running stalled thread's stack from the watchdog (no
 * registers without ptrace, and its frames change under us; asleep in the
 * kernel, /proc gives its sp and pc and the frames hold still); signalling
 * a thread asleep in a system call and checking in the handler (the
 * handler runs after the call was already interrupted); unwinding the
 * asleep thread's stack with frame pointers (glibc and most libraries are
 * built without them: a scan finds their callers too); timer
 * signals (setitimer/SIGPROF) in every thread (they would interrupt
 * syscalls all the time, and the program may use them); restarting the
 * watchdog in fork children (a child should be able to exec without a new
 * thread appearing; the monitor watches the original process only).
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include "monitor_syscall.h"
#include "syscall_names.h"
#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#define SLOTS_MAX 1024

/* One recorded ctx. tid > 0: in use; 0: being (re)filled; -1: free. */
struct green__ctx_slot {
    _Atomic(struct green__ctx *) ctx;  /* the hub's bookkeeping */
    _Atomic pid_t tid;                 /* kernel tid of its OS thread */
    atomic_uint_fast64_t mon_req;      /* 1 + switch count the watchdog saw
                                          stalled, 0 when no request */
    atomic_int mon_ms;                 /* how long it had been stalled */
    atomic_int mon_ack;                /* handler ran for the last request:
                                          1, or 2 when it reported */
    uint64_t mon_id;                   /* id and name of the thread reported, */
    char mon_name[GREEN__NAME_MAX];    /* published by mon_ack == 2 */
    atomic_int dump_req;               /* a dump was passed on to this slot */
};

GREEN_HIDDEN struct green__ctx_slot green__ctx_slots[SLOTS_MAX];
/* Slots ever used: [0, green__ctx_nslots). */
GREEN_HIDDEN atomic_int green__ctx_nslots;

static atomic_int monitor_started;
static int monitor_ms;
static int monitor_sig = SIGURG;
static atomic_int dump_origin = -1;   /* slot the current dump started at */

static pid_t gettid_raw(void)
{
    return (pid_t)green__syscall(SYS_gettid);
}

static int tgkill_raw(pid_t tid, int sig)
{
    return (int)green__syscall(SYS_tgkill, getpid(), tid, sig);
}

static bool tid_alive(pid_t tid)
{
    return tgkill_raw(tid, 0) == 0 || errno != ESRCH;
}

/* --------------------------------------------------------- the ctx list */

static void slot_fill(struct green__ctx_slot *s, struct green__ctx *c, pid_t tid)
{
    atomic_store(&s->mon_req, 0);
    atomic_store(&s->dump_req, 0);
    atomic_store(&s->ctx, c);
    atomic_store(&s->tid, tid);
}

/* Claim a slot whose OS thread has exited. Returns NULL if none. */
static struct green__ctx_slot *slot_reuse(void)
{
    int n = atomic_load(&green__ctx_nslots);
    for (int i = 0; i < n && i < SLOTS_MAX; i++) {
        pid_t t = atomic_load(&green__ctx_slots[i].tid);
        if (t == 0 || (t > 0 && tid_alive(t)))
            continue;
        if (atomic_compare_exchange_strong(&green__ctx_slots[i].tid, &t, 0))
            return &green__ctx_slots[i];
    }
    return NULL;
}

static void after_fork_child(void);

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}

void green__ctx_register(struct green__ctx *c)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    GREEN_REAL(pthread_once)(&once, register_atfork);
    int i = atomic_fetch_add(&green__ctx_nslots, 1);
    struct green__ctx_slot *s = NULL;
    if (i < SLOTS_MAX) {
        s = &green__ctx_slots[i];
    } else {
        atomic_fetch_sub(&green__ctx_nslots, 1);
        s = slot_reuse();
    }
    if (!s) {
        static atomic_flag warned;
        if (!atomic_flag_test_and_set(&warned))
            green__log("more than %d OS threads with green threads: the "
                       "monitor, dump signal and gdb do not see the rest",
                       SLOTS_MAX);
        return;
    }
    slot_fill(s, c, gettid_raw());
}

/* The slot of c, or -1. Async-signal-safe. */
static int slot_of(const struct green__ctx *c)
{
    int n = atomic_load(&green__ctx_nslots);
    for (int i = 0; c && i < n && i < SLOTS_MAX; i++)
        if (atomic_load(&green__ctx_slots[i].ctx) == c &&
            atomic_load(&green__ctx_slots[i].tid) > 0)
            return i;
    return -1;
}

/* In a fork child only the forking OS thread exists, with a new tid. */
static void after_fork_child(void)
{
    struct green__ctx *mine = green__tls_ctx;
    int n = atomic_load(&green__ctx_nslots);
    for (int i = 0; i < n && i < SLOTS_MAX; i++) {
        struct green__ctx_slot *s = &green__ctx_slots[i];
        if (atomic_load(&s->ctx) == mine && mine)
            atomic_store(&s->tid, gettid_raw());
        else if (atomic_load(&s->tid) > 0)
            atomic_store(&s->tid, -1);
    }
    atomic_store(&dump_origin, -1);
}

/* ------------------------------------------------------------ the report */

void green__monitor_line(int fd, struct green__fmt *f)
{
    f->b[f->n++] = '\n';   /* cap leaves room for it */
    ssize_t r = GREEN_REAL(write)(fd, f->b, f->n);
    (void)r;
}

/* The pc the signal interrupted, from the handler's ucontext. */
static void *interrupted_pc(const void *uc)
{
    const ucontext_t *u = uc;
#if defined(__x86_64__)
    return (void *)u->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (void *)u->uc_mcontext.pc;
#else
    (void)u;
    return NULL;
#endif
}

/* "libgreen:   #1 0x55d0c0de spin+0x1a (/path/prog+0x161a)" */
void green__monitor_bt_line(int i, void *pc)
{
    char b[512];
    struct green__fmt f = { b, 0, sizeof b - 1 };
    Dl_info di;
    green__fmt_str(&f, "libgreen:   #");
    green__fmt_u64(&f, (uint64_t)i);
    green__fmt_str(&f, " ");
    green__fmt_hex(&f, (uintptr_t)pc);
    if (dladdr(pc, &di)) {
        if (di.dli_sname) {
            green__fmt_str(&f, " ");
            green__fmt_str(&f, di.dli_sname);
            green__fmt_str(&f, "+");
            green__fmt_hex(&f, (uintptr_t)pc - (uintptr_t)di.dli_saddr);
        }
        if (di.dli_fname) {   /* file+offset: what addr2line -e wants */
            green__fmt_str(&f, " (");
            green__fmt_str(&f, di.dli_fname);
            green__fmt_str(&f, "+");
            green__fmt_hex(&f, (uintptr_t)pc - (uintptr_t)di.dli_fbase);
            green__fmt_str(&f, ")");
        }
    }
    green__monitor_line(2, &f);
}

/* Runs on the stalled OS thread, in the monitor signal's handler. */
static void report_stall(struct green__ctx *c, int ms, const void *uc)
{
    const struct green_thread *t = c->current;
    char b[256];
    struct green__fmt f = { b, 0, sizeof b - 1 };
    green__fmt_str(&f, "libgreen: green thread ");
    green__fmt_u64(&f, t->id);
    green__fmt_str(&f, " \"");
    green__fmt_str(&f, t->name);
    green__fmt_str(&f, "\" has run for ");
    green__fmt_u64(&f, (uint64_t)ms);
    green__fmt_str(&f, " ms without yielding (OS thread ");
    green__fmt_u64(&f, (uint64_t)gettid_raw());
    green__fmt_str(&f, "); backtrace:");
    green__monitor_line(2, &f);
    static const char why[] =
        "libgreen:   it made no hooked call all that time: a long computation, "
        "or a loop waiting for another green thread (an atomic flag, a spin "
        "lock) that cannot run on this hub until this one yields; README, "
        "\"Known uncooperative calls\"\n";
    ssize_t r = GREEN_REAL(write)(2, why, sizeof why - 1);
    (void)r;
    void *frames[GREEN__BT_FRAMES];
    int n = backtrace(frames, GREEN__BT_FRAMES);
    /* Start at the interrupted function: skip this handler's frames and
     * the kernel's signal trampoline. */
    void *pc = interrupted_pc(uc);
    int first = n > 2 ? 2 : n;
    for (int i = 0; pc && i < n; i++)
        if (frames[i] == pc) {
            first = i;
            break;
        }
    for (int i = first; i < n; i++)
        green__monitor_bt_line(i - first, frames[i]);
}

static bool from_this_process(const siginfo_t *si)
{
    return si->si_code == SI_TKILL && si->si_pid == getpid();
}

static void monitor_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    if (green__solo_on_signal(si, uc))
        return;                    /* a solo thread's call to stop */
    int saved = errno;
    struct green__ctx *c = green__tls_ctx;
    int i = from_this_process(si) ? slot_of(c) : -1;
    if (i >= 0) {
        struct green__ctx_slot *s = &green__ctx_slots[i];
        uint64_t req = atomic_exchange(&s->mon_req, 0);
        int ack = 1;
        if (req && req - 1 == atomic_load(&c->switches) && c->current != c->hub) {
            report_stall(c, atomic_load(&s->mon_ms), uc);
            s->mon_id = c->current->id;
            memcpy(s->mon_name, c->current->name, sizeof s->mon_name);
            ack = 2;
        }
        atomic_store(&s->mon_ack, ack);
    }
    errno = saved;
}

bool green__monitor_handler_is(void (*fn)(int, siginfo_t *, void *))
{
    return fn == monitor_handler;
}

/* ---------------------------------------------------------- the watchdog */

/* What the watchdog remembers about slot i (its own thread only). */
struct watch {
    struct green__ctx *ctx;   /* ctx the rest refers to */
    uint64_t switches;        /* counter at the last change */
    int64_t since;            /* green_now() when it was first seen */
    int64_t runq_base;        /* its OS thread's run-queue wait when the
                                 stall was first seen, -1 before */
    int64_t cpu_base;         /* and its time on a CPU then */
    bool asked;               /* signalled (or reported from here) for
                                 this stall */
    bool fallback;            /* printed the no-handler fallback */
    int64_t asked_at;         /* when */
    long in_call;             /* reported as blocked in this system call
                                 number, -1 when not */
    int epfd;                 /* the hub's epoll descriptor, -1 unknown */
    int epfd_tfd;             /* the timerfd it was looked for with */
};
static struct watch watches[SLOTS_MAX];

/* Nanoseconds OS thread tid has spent on a CPU and runnable but waiting
 * for one (the first two fields of /proc/self/task/TID/schedstat), 0 if
 * unknown. A loaded machine must not make a thread that yields all the
 * time look stalled. */
static void sched_times(pid_t tid, int64_t *oncpu, int64_t *runq)
{
    char path[64], b[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
    *oncpu = *runq = 0;
    if (green__proc_read(path, b, sizeof b) <= 0)
        return;
    char *p;
    *oncpu = strtoll(b, &p, 10);
    *runq = strtoll(p, NULL, 10);
}

/* How long the stall has lasted, minus the time spent waiting for a CPU;
 * *oncpu_ms (if not NULL): how much of it the thread spent on a CPU. */
static int stall_ms(struct watch *w, pid_t tid, int64_t now, int *oncpu_ms)
{
    int64_t cpu, rq;
    sched_times(tid, &cpu, &rq);
    if (w->runq_base < 0) {
        w->runq_base = rq;
        w->cpu_base = cpu;
    }
    if (oncpu_ms)
        *oncpu_ms = (int)((cpu - w->cpu_base) / 1000000);
    int64_t d = now - w->since - (rq - w->runq_base);
    return d > 0 ? (int)(d / 1000000) : 0;
}

/* The current thread of c is in a system call: report it if anything
 * waits for its hub. True if reported (or the stall is over). */
static bool try_report_syscall(struct green__ctx_slot *s, struct watch *w,
                               pid_t tid, const struct green__sysc *sc, int ms,
                               int oncpu_ms)
{
    struct green__ctx *c = w->ctx;
    struct green__hub_wait wt;
    if (!green__hub_waiting(c, &w->epfd, &w->epfd_tfd, green_now(), &wt))
        return false;   /* nothing is held up: natively it would wait too */
    atomic_store(&s->mon_ack, 0);   /* no end line unless reported below */
    struct green_thread *t = __atomic_load_n(&c->current, __ATOMIC_RELAXED);
    if (t == c->hub)
        return true;
    /* A copy, checked after: thread structs are never freed, and the same
     * switch count before and after means it was current all along. */
    uint64_t id = t->id;
    char name[GREEN__NAME_MAX];
    memcpy(name, t->name, sizeof name);
    name[sizeof name - 1] = 0;
    uintptr_t hi = (uintptr_t)t->stack.hi;
    if (atomic_load(&c->switches) != w->switches)
        return true;
    green__report_syscall(tid, id, name, hi, sc, ms, oncpu_ms, &wt);
    s->mon_id = id;
    memcpy(s->mon_name, name, sizeof s->mon_name);
    atomic_store(&s->mon_ack, 2);
    w->in_call = sc->nr;
    return true;
}

/* No backtrace can come (why says why): say what we know without touching
 * the green thread. */
static void report_unanswered(pid_t tid, int ms, const char *why)
{
    char b[256];
    struct green__fmt f = { b, 0, sizeof b - 1 };
    green__fmt_str(&f, "libgreen: a green thread of OS thread ");
    green__fmt_u64(&f, (uint64_t)tid);
    green__fmt_str(&f, " has run for ");
    green__fmt_u64(&f, (uint64_t)ms);
    green__fmt_str(&f, " ms without yielding (no backtrace: ");
    green__fmt_str(&f, why);
    green__fmt_str(&f, "; see GREEN_MONITOR_SIGNAL)");
    green__monitor_line(2, &f);
}

static void ask_for_report(struct green__ctx_slot *s, struct watch *w,
                           pid_t tid, int64_t now, int ms)
{
    atomic_store(&s->mon_ms, ms);
    atomic_store(&s->mon_ack, 0);
    atomic_store(&s->mon_req, w->switches + 1);
    w->asked = true;
    w->fallback = false;
    w->asked_at = now;
    /* A program that took the signal for itself must not receive ours. */
    struct sigaction cur;
    if (GREEN_REAL(sigaction)(monitor_sig, NULL, &cur) == 0 &&
        (!(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != monitor_handler)) {
        atomic_store(&s->mon_req, 0);
        w->fallback = true;
        report_unanswered(tid, ms, "the program installed its own handler "
                                   "for the monitor signal");
        return;
    }
    if (tgkill_raw(tid, monitor_sig) != 0 && errno == ESRCH) {
        atomic_store(&s->mon_req, 0);
        atomic_compare_exchange_strong(&s->tid, &tid, -1);   /* thread gone */
    }
}

/* The reported thread got past a scheduling point: say how long it ran. */
static void report_end(struct green__ctx_slot *s, struct watch *w, pid_t tid,
                       int64_t now)
{
    if (atomic_load(&s->mon_ack) != 2)
        return;
    int ms = stall_ms(w, tid, now, NULL);
    char b[256];
    struct green__fmt f = { b, 0, sizeof b - 1 };
    green__fmt_str(&f, "libgreen: green thread ");
    green__fmt_u64(&f, s->mon_id);
    green__fmt_str(&f, " \"");
    s->mon_name[sizeof s->mon_name - 1] = 0;
    green__fmt_str(&f, s->mon_name);
    green__fmt_str(&f, w->in_call >= 0 ? "\" yielded after about "
                                       : "\" yielded after running for about ");
    green__fmt_u64(&f, (uint64_t)ms);
    green__fmt_str(&f, " ms");
    if (w->in_call >= 0) {
        const struct green__syscall_info *si = green__syscall_info(w->in_call);
        green__fmt_str(&f, " (back from system call ");
        green__fmt_str(&f, si ? si->name : "");
        if (!si)
            green__fmt_u64(&f, (uint64_t)w->in_call);
        green__fmt_str(&f, ")");
    }
    green__monitor_line(2, &f);
}

static void watch_slot(int i, int64_t now)
{
    struct green__ctx_slot *s = &green__ctx_slots[i];
    struct watch *w = &watches[i];
    pid_t tid = atomic_load(&s->tid);
    struct green__ctx *c = atomic_load(&s->ctx);
    if (tid <= 0 || !c || atomic_load(&s->tid) != tid) {
        w->ctx = NULL;
        return;
    }
    uint64_t sw = atomic_load_explicit(&c->switches, memory_order_relaxed);
    struct green_thread *cur = __atomic_load_n(&c->current, __ATOMIC_RELAXED);
    if (w->ctx != c || sw != w->switches || cur == c->hub) {
        if (w->ctx == c && w->asked && sw != w->switches)
            report_end(s, w, tid, now);
        bool same = w->ctx == c;
        *w = (struct watch){ .ctx = c, .switches = sw, .since = now,
                             .runq_base = -1, .in_call = -1,
                             .epfd = same ? w->epfd : -1,
                             .epfd_tfd = same ? w->epfd_tfd : -1 };
        return;
    }
    if (!w->asked) {
        int oncpu_ms;
        int ms = stall_ms(w, tid, now, &oncpu_ms);
        struct green__sysc sc;
        if (ms < monitor_ms)
            return;
        /* Asleep in a system call: never signalled (see above); reported
         * from here once something waits for the hub. */
        if (green__in_syscall(tid, &sc))
            w->asked = try_report_syscall(s, w, tid, &sc, ms, oncpu_ms);
        else
            ask_for_report(s, w, tid, now, ms);
    } else if (!w->fallback && w->in_call < 0 && !atomic_load(&s->mon_ack) &&
               now - w->asked_at > GREEN_SEC(1)) {
        w->fallback = true;
        report_unanswered(tid, stall_ms(w, tid, now, NULL),
                          "that thread blocks the monitor signal");
    }
}

static void *watchdog(void *arg)
{
    (void)arg;
    int64_t period = (int64_t)monitor_ms * 1000000 / 2;
    struct timespec ts = { .tv_sec = period / 1000000000,
                           .tv_nsec = period % 1000000000 };
    for (;;) {
        GREEN_REAL(clock_nanosleep)(CLOCK_MONOTONIC, 0, &ts, NULL);
        int64_t now = green_now();
        int n = atomic_load(&green__ctx_nslots);
        for (int i = 0; i < n && i < SLOTS_MAX; i++)
            watch_slot(i, now);
    }
    return NULL;
}

static int install(int sig, void (*fn)(int, siginfo_t *, void *))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    int r = GREEN_REAL(sigaction)(sig, &sa, NULL);
    return r;
}

static int start_watchdog(void)
{
    pthread_attr_t a;
    pthread_t th;
    sigset_t old;
    /* Created with every signal blocked: the program's process-directed
     * signals must never land on our thread. Raw, so that no per-green-
     * thread mask is involved (hooks/signal.c). */
    green__block_all_signals(&old);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 * 1024);
    green__hubpolicy_attr(&a);
    int e = GREEN_REAL(pthread_create)(&th, &a, watchdog, NULL);
    if (e == 0)
        GREEN_REAL(pthread_setname_np)(th, "green-monitor");   /* for ps, top, gdb */
    pthread_attr_destroy(&a);
    green__restore_signals(&old);
    return e;
}

int green__monitor_start(int ms)
{
    if (ms <= 0) {
        errno = EINVAL;
        return -1;
    }
    int expect = 0;
    if (!atomic_compare_exchange_strong(&monitor_started, &expect, 1)) {
        errno = EBUSY;
        return -1;
    }
    monitor_ms = ms;
    monitor_sig = green__monitor_signal;   /* GREEN_MONITOR_SIGNAL (settings.c) */
    /* backtrace() dlopens libgcc_s on first use: never in a handler. */
    void *warm[4];
    (void)backtrace(warm, 4);
    int e = install(monitor_sig, monitor_handler) == 0 ? start_watchdog() : errno;
    if (e) {
        green__log("GREEN_MONITOR_MS: cannot start the monitor: %s", strerror(e));
        atomic_store(&monitor_started, 0);
        errno = e;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------ the dump signal */

/* Pass a dump on to the first live slot from index from on, but origin. */
static void pass_dump_on(int from, int origin, int sig)
{
    int n = atomic_load(&green__ctx_nslots);
    for (int i = from < 0 ? 0 : from; i < n && i < SLOTS_MAX; i++) {
        struct green__ctx_slot *s = &green__ctx_slots[i];
        pid_t tid = atomic_load(&s->tid);
        if (i == origin || tid <= 0)
            continue;
        atomic_store(&s->dump_req, 1);
        if (tgkill_raw(tid, sig) == 0)
            return;
        atomic_store(&s->dump_req, 0);
    }
}

static void dump_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int saved = errno;
    struct green__ctx *c = green__tls_ctx;
    int me = slot_of(c);
    bool passed = from_this_process(si) && me >= 0 &&
                  atomic_exchange(&green__ctx_slots[me].dump_req, 0);
    if (!passed)
        atomic_store(&dump_origin, me);
    if (c) {
        green__dump_ctx(c, 2);
    } else if (!passed && atomic_load(&green__ctx_nslots) == 0) {
        static const char none[] = "libgreen: no green threads in this process\n";
        ssize_t r = GREEN_REAL(write)(2, none, sizeof none - 1);
        (void)r;
    }
    pass_dump_on(passed ? me + 1 : 0, atomic_load(&dump_origin), sig);
    errno = saved;
}

int green__dump_signal_install(int sig)
{
    if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP) {
        errno = EINVAL;
        return -1;
    }
    if (install(sig, dump_handler) != 0) {
        green__log("GREEN_DUMP_SIGNAL: cannot install the handler of signal "
                   "%d: %s", sig, strerror(errno));
        return -1;
    }
    return 0;
}

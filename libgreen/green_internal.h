/*
 * green_internal.h - the contract between libgreen's core modules and the
 * hooks layer. Nothing here is installed; everything is green__-prefixed and
 * hidden from the dynamic symbol table.
 *
 * The one rule every module relies on: a green thread's scheduling state is
 * touched only by the OS thread whose hub owns it. The cross-thread
 * entries are green__remote_post(), which goes through the hub's
 * ev_async, the lock core (lock.c, thread-safe), and the few fields of a
 * thread that hubs.c orders with its xlock (join, detach, finish).
 */
#ifndef GREEN_INTERNAL_H
#define GREEN_INTERNAL_H

/* Every translation unit that includes this header defines _GNU_SOURCE
 * first: the header uses clock_gettime, CLOCK_MONOTONIC_COARSE and
 * sigset_t, which strict C11 hides. */
#if !defined(_GNU_SOURCE)
#error "define _GNU_SOURCE before including green_internal.h"
#endif

#include "green.h"
#include "real.h"
#include <ev.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>
#include <time.h>

#define GREEN_HIDDEN __attribute__((visibility("hidden")))
#define GREEN_EXPORT __attribute__((visibility("default")))
#define green__likely(x)   __builtin_expect(!!(x), 1)
#define green__unlikely(x) __builtin_expect(!!(x), 0)

/* An assert that is never compiled out: invariants crash loudly. */
#define green__assert(sub, cond)                                              \
    do {                                                                     \
        if (green__unlikely(!(cond)))                                         \
            green__panic(sub, __FILE__, __LINE__, #cond);                     \
    } while (0)
GREEN_HIDDEN _Noreturn void green__panic(const char *sub, const char *file,
                                         int line, const char *what);
/* Message on stderr prefixed "libgreen: ", written with one write(2). */
GREEN_HIDDEN void green__log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------ wait queues */

/* A node links one parked green thread into one wait queue. Most parks use
 * the node embedded in the thread (green_thread.wnode); waits on many
 * things at once (poll) put extra nodes on the waiter's stack. */
struct green__wnode {
    struct green__wnode *next, *prev;
    struct green_thread *t;     /* who to wake */
    struct green__waitq *q;     /* queue it is linked into, NULL if none */
    uintptr_t data;             /* per-primitive word (e.g. GREEN_READ) */
};
struct green__waitq {
    struct green__wnode *head, *tail;
};
GREEN_HIDDEN void green__waitq_push(struct green__waitq *q, struct green__wnode *n);
GREEN_HIDDEN void green__waitq_remove(struct green__wnode *n);   /* no-op if unlinked */
GREEN_HIDDEN struct green__wnode *green__waitq_pop(struct green__waitq *q);
static inline bool green__waitq_empty(const struct green__waitq *q) { return !q->head; }
/* Ready every thread in q with code (unlinking each). Returns how many. */
GREEN_HIDDEN int green__waitq_wake_all(struct green__waitq *q, int code);
/* Ready the first thread in q with code. Returns 1 if one was woken. */
GREEN_HIDDEN int green__waitq_wake_one(struct green__waitq *q, int code);

/* One step of a spin-wait: the CPU's pause hint (lock.c's stripes,
 * hubs.c's per-thread lock). */
static inline void green__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* A condition of the lock core (lock.h): thread-safe, waiters of any hub
 * and plain OS threads. Here because a green thread embeds one. */
struct green__cond {
    struct green__waitq q;        /* waiters (green__lwait), FIFO; under
                                     the object's stripe lock */
};

/* --------------------------------------------------------------- stacks */

struct green__stack {
    void *lo, *hi;      /* usable stack range: [lo, hi) */
    bool guarded;       /* the 64 KiB below lo fault (markers or PROT_NONE) */
    bool own;           /* its own mapping, [lo - the guard zone, hi) (see
                           stack.c, stack_map), unmapped when the pool is
                           full; false for a slab stack (never unmapped) */
    unsigned vg_id;     /* valgrind stack id, 0 if none */
};
/* Get a stack of at least size usable bytes (pool first). guard: 1 on, 2 off,
 * 0 default. Returns 0 or an errno value. */
GREEN_HIDDEN int green__stack_get(struct green__stack *s, size_t size, int guard);
GREEN_HIDDEN void green__stack_put(struct green__stack *s);
/* Fork child: the process-wide spill list's lock is free (stack.c). */
GREEN_HIDDEN void green__stack_after_fork_child(void);
/* Install this OS thread's sigaltstack and the SIGSEGV/SIGBUS reporter. */
/* This OS thread's alternate signal stack and the fault handler. True
 * when the program had set an alternate stack before (then *prior has it:
 * its first thread's, which stays installed). */
GREEN_HIDDEN bool green__stack_install_overflow_handler(stack_t *prior);
/* fn is the overflow reporter, installed for sig (SIGSEGV or SIGBUS):
 * *prior gets the action it stands in front of (what sigaction reports). */
GREEN_HIDDEN bool green__stack_fault_prior(int sig, void (*fn)(int, siginfo_t *, void *),
                                           struct sigaction *prior);
/* The program sets sig's (SIGSEGV, SIGBUS) action: SIG_DFL or its own.
 * True when the reporter was put in front of SIG_DFL (then the caller
 * installs nothing; sigaction reports act); false: the caller installs
 * the action. */
GREEN_HIDDEN bool green__stack_fault_program(int sig, const struct sigaction *act);
GREEN_HIDDEN size_t green__page_size(void);
/* Whether guard zones are page-table markers (MADV_GUARD_INSTALL: no
 * mapping of their own) rather than PROT_NONE mappings. want -1 asks (the
 * kernel, once); 0 makes every later guard zone a PROT_NONE mapping
 * (tests of that path). */
GREEN_HIDDEN bool green__stack_guard_markers(int want);
/* Process default: guard pages on (1) or off (0); GREEN_STACK_GUARD. */
extern int green__default_guard;

/* ------------------------------------------------------------- threads */

/* Packed: one byte in struct green_thread (gdb still sees the names). */
enum __attribute__((packed)) green__state {
    GREEN_NEW,       /* spawned, never run (on the run queue) */
    GREEN_RUNNABLE,  /* on the run queue */
    GREEN_RUNNING,   /* the current thread of its hub */
    GREEN_PARKED,    /* waiting; see park_what */
    GREEN_DONE,      /* finished; result valid; waiting to be joined */
};

/* What a parked thread waits for, for green_dump and the debugger. */
enum __attribute__((packed)) green__why {
    GREEN_WHY_NONE, GREEN_WHY_SLEEP, GREEN_WHY_FD, GREEN_WHY_POLL,
    GREEN_WHY_JOIN, GREEN_WHY_SWITCH, GREEN_WHY_MUTEX, GREEN_WHY_COND,
    GREEN_WHY_RWLOCK, GREEN_WHY_SEM, GREEN_WHY_EVENT, GREEN_WHY_CHAN,
    GREEN_WHY_OFFLOAD, GREEN_WHY_GROUP, GREEN_WHY_YIELD, GREEN_WHY_OTHER,
    GREEN_WHY_FUTEX, GREEN_WHY_FILE_LOCK, GREEN_WHY_IPC,
};

#define GREEN__NAME_MAX 32
#define GREEN__KEYS_MAX 1024

struct green__ctx;

/* A unit of cross-thread work: see green__remote_post. */
struct green__remote {
    struct green__remote *next;
    void (*run)(struct green__remote *r);
};

/* Not a canonical address on x86-64 nor a user address on aarch64: no
 * pointer equals it (the second word of glibc's struct pthread is one). */
#define GREEN__THREAD_MAGIC 0x8000677265656e21ull

/* The fields are grouped by size (8-byte words, the embedded structs,
 * 4-byte words, bytes) so that the compiler inserts no padding: the
 * struct is one malloc chunk per green thread, the largest of libgreen's
 * own bytes per idle connection (README, "Every core"). Keep new fields in
 * their group, or at the end. Under the shim every connection's thread
 * pays for each 16 bytes of it (glibc's chunk size step). */
struct green_thread {
    void *sp;                      /* saved stack pointer while switched out */
    uint64_t magic;                /* GREEN__THREAD_MAGIC, for the life of
                                      the process (structs are reused, never
                                      freed): tells a green thread's handle
                                      from a plain OS thread's pthread_t,
                                      whose second word is a pointer */
    struct green__ctx *ctx;        /* owning hub */
    uintptr_t why_arg;             /* fd, object address... for green_dump */
    int64_t park_since;            /* green_now() at park; for a park
                                      without deadline the hub's last poll
                                      time (saves a clock read per park) */
    uint64_t id;
    void *(*fn)(void *);
    void *arg;
    void *result;
    void *switch_value;            /* value handed over by green_switch */
    uint64_t slice_sw;             /* 1 + ctx->switches when its slice began */
    int64_t slice_start;           /* coarse clock at the slice's first
                                      check, 0 before it */
    uint64_t sig_blocked;          /* this thread's signal mask, bit sig-1
                                      (inherited from its creator) */
    uint64_t sig_pending;          /* signals sent to this thread alone
                                      (pthread_kill, raise) while it blocks
                                      them and the kernel cannot hold them */
    void *sig_queue;               /* hooks/signal.c: their instances with
                                      siginfo, or NULL before the first */
    uint64_t sig_waiting;          /* set of a sigwait in progress, or 0 */
    void *sig_resume;              /* hooks/signal.c: handlers to run as
                                      this thread when its interrupted park
                                      returns (a list), or NULL */
    uint64_t sig_resume_bits;      /* and signals the kernel delivered while
                                      the thread was inside the scheduler,
                                      to run the same way */
    struct green_thread *runq_next, *runq_prev; /* run queue links */
    struct green_thread *all_next, *all_prev; /* ctx->all list */
    struct green__lwait *lwait;    /* the lock core's waiter record while
                                      the thread waits in lock.c, else
                                      NULL: green__ready cancels it */
    int64_t deadline;              /* absolute deadline of the current park */
    green_timeout_t *scopes;       /* innermost timeout scope */
    void **locals;                 /* GREEN__KEYS_MAX slots, lazily allocated */
    void *user;                    /* owner word for hooks (pthread layer) */
    void *robust;                  /* pthread layer: robust mutexes held */
    char *tls_buf;                 /* tls.c: this thread's thread-local
                                      contents while another owns the
                                      blocks (laid out as ctx->tls_mods) */
    size_t tls_cap;                /* bytes of tls_buf */
    struct green__tls_dtor *tls_dtors; /* C++ thread_local destructors to
                                      run when it ends, newest first */
    char *tls_tp;                  /* GREEN_TLS=address: its own thread
                                      pointer (static blocks and TCB copy),
                                      NULL until adopted; the OS thread's
                                      own for the ctx's main thread */
    void *tls_tp_mem;              /* what tls_tp lies in, to free */
    int64_t cpu_ns;                /* cpuclock.c: CPU time counted at its
                                      switches (relaxed atomics) */
    void *locale;                  /* tls.c: its uselocale locale_t, NULL
                                      for the global locale */
    struct green__alt *alt;        /* hooks/signal.c: its sigaltstack, NULL
                                      before the first; freed with it */
    char name[GREEN__NAME_MAX];
    struct green__stack stack;     /* zero for the main and the adopted threads */
    struct green__wnode wnode;     /* node for single-object parks */
    struct green__cond xjoin;      /* where a joiner of another hub waits
                                      (lock.h; see xjoined) */
    struct green__remote xpost;    /* hubs.c: the post that places the
                                      thread on its hub, later the one that
                                      frees it there (never both at once) */
    struct green__waitq joiners;   /* threads in green_join on this one */
    int saved_errno;               /* errno of this thread while switched out */
    int wake_code;                 /* 0 or errno value the park returns */
    unsigned slice_left;           /* hooked calls until the next check */
    int sched_policy, sched_prio;  /* pthread scheduling attributes, kept
                                      per green thread (hooks/pthread_attr.c) */
    int sched_rank;                /* what orders it (sched.c, "Priorities"):
                                      the realtime priority 1..99 of
                                      SCHED_FIFO/RR, else 0. Atomic (another
                                      hub's thread may set it); written only
                                      through green__sched_rank_set */
    unsigned intr_gen;             /* hooks/signal.c: non-zero while the
                                      thread is in a hooked call that a
                                      signal may interrupt (EINTR) */
    unsigned intr_mark;            /* sig_handled when that call began */
    unsigned sig_handled;          /* handlers run for this thread so far */
    uint32_t xlock;                /* hubs.c: spin lock ordering a join,
                                      detach or finish from another hub
                                      (state DONE, detached, joining) */
    uint32_t heap_idx;             /* 1-based place in ctx->theap, 0 if none */
    uint32_t cpu_slot;             /* cpuclock.c: 1 + its clock id's slot,
                                      0 before pthread_getcpuclockid */
    uint16_t handler_depth;        /* hooks/signal.c: program signal
                                      handlers running as this thread */
    enum green__state state;       /* one byte each (packed enums) */
    enum green__why why;           /* reason of the current park */
    bool switched_to;              /* was a green_switch target: on finish,
                                      resume whoever still waits in a switch
                                      to it (lifecycle.c resume_switchers) */
    bool killed;                   /* green_kill was called */
    uint8_t kill_pending;          /* non-zero: the next park does not
                                      wait. GREEN__KP_KILL: it fails with
                                      ECANCELED (green_kill);
                                      GREEN__KP_SIGNAL: a signal handler runs
                                      for this thread off its own context
                                      (green__run_as) and cannot wait, the
                                      park fails with EINTR. One test on the
                                      park path serves both. */
    bool detached;
    bool joining;                  /* someone is in green_join on it */
    bool is_main, is_hub;
    bool user_stack;               /* stack is the program's memory
                                      (pthread_attr_setstack): not pooled */
    bool gone;                     /* joined and freed, or left behind by a
                                      fork: every pthread call on it says
                                      ESRCH (structs are never returned to
                                      malloc, so the check is memory-safe) */
    bool sig_restart;              /* every handler that interrupted the
                                      current call had SA_RESTART */
    bool lock_wakeable;            /* parked in a lock-core wait that goes
                                      on after a wake with EINTR (a pthread
                                      lock, condition or barrier): a signal
                                      handler for it runs as it, awake
                                      (hooks/signal.c, deliver) */
    bool on_runq;
    bool xdone;                    /* finished: DONE as other hubs see it
                                      (under xlock; state itself is the
                                      owner's, written without it) */
    bool xjoined;                  /* a joiner of another hub waits in
                                      xjoin: the finish broadcasts it */
    bool tls_saved;                /* tls_buf holds its contents (else it
                                      owns the blocks, or never ran and
                                      starts from the images) */
#ifdef GREEN_ASAN
    void *asan_fake_stack;         /* ASan fiber bookkeeping (ASan builds
                                      only: 24 bytes per thread otherwise) */
    const void *asan_bottom;
    size_t asan_size;
#endif
#ifdef GREEN_TSAN
    void *tsan_fiber;              /* TSan fiber: made with the thread (the
                                      hub's on its first switch, main's is
                                      the OS thread's own), destroyed when
                                      its stack is recycled (green_sched.h) */
#endif
};

/* Per OS thread: the hub and its bookkeeping. */
struct green__ctx {
    struct ev_loop *loop;
    struct green_thread *current;  /* running green thread */
    struct green_thread *hub;      /* the thread running the libev loop */
    struct green_thread *main;     /* the program's original stack */
    struct green_thread *runq_head, *runq_tail;
    struct green_thread *all;      /* every live thread, for green_dump */
    struct green_thread *dead;     /* finished thread whose stack to recycle */
    size_t nthreads;               /* live threads other than main and hub */
    bool hub_queued;               /* hub is on the run queue */
    int64_t last_poll;             /* green_now() of the hub's last poll */
    bool looked;                   /* hub.c: the last idle turn took the
                                      second look; the next one sleeps */
    unsigned look_every, look_skip;/* hub.c: sleeps between two second
                                      looks, and sleeps left before the
                                      next (0: look) */
    ev_async async;                /* cross-thread wake-ups */
    struct green__remote *_Atomic remote_head; /* posts, newest first
                                      (a lock-free stack: hub.c) */
    int refs_remote;               /* outstanding remote wake-ups expected */
    bool block_on_deadlock;        /* shim: hang like the kernel would */
    struct green__fdtab *fds;      /* descriptor watchers (fd.c) */
    struct green__waitq all_done;  /* green_run waiters */
    pid_t pid;                     /* detects fork */
    pid_t tid;                     /* kernel id of its OS thread (the
                                      kernel's CPU clock of the hub) */
    bool batch;                    /* hubpolicy.c: libgreen switched its
                                      OS thread to SCHED_BATCH */
    bool libev_refork;             /* the next ev_run rebuilds libev's fds */
    bool libev_raised;             /* green__in_libev is raised for this
                                      ev_run (hub_poll: after a fork, or
                                      green__libev_rebuild_begin) */
    struct green_thread *prev_for_asan; /* thread that switched to current */
    struct green_thread **theap;   /* park deadlines, min-heap (timer.c) */
    size_t theap_n, theap_cap;
    int tfd;                       /* timerfd armed at the earliest deadline */
    int64_t tfd_armed;             /* deadline it is armed for, or FOREVER */
    ev_io tfd_w;
    atomic_uint_fast64_t switches; /* bumped by every switch_to (monitor.c
                                      reads it from its watchdog thread) */
    /* hooks/signal.c's per-hub bookkeeping: how many live green threads
     * (hub excluded) block each signal (slot 31, signal 32, which nobody
     * may block, counts the threads), and the mask last installed on this
     * OS thread: the signals every one of them blocks. */
    bool sig_counted;              /* sig_blockers is maintained */
    uint32_t sig_blockers[64];
    uint64_t sig_kmask;
    bool sched_busy;               /* the running thread is inside the
                                      scheduler (queued itself, parking,
                                      finishing; the hub switching away)
                                      until the next resume: a signal
                                      handler must not run there
                                      (hooks/signal.c defers it) */
    bool switching;                /* ASan builds: inside switch_to, where
                                      the sanitizer runtime may call hooked
                                      functions; no fair turn then */
    int hub_index;                 /* hubs.c: place in the hub set, -1
                                      when not in it (an OS thread of the
                                      program with green threads of its own) */
    atomic_int placed;             /* hubs.c: live green threads placed
                                      here (written by spawners) */
    bool extra_hub;                /* an OS thread of libgreen's that only
                                      runs this hub (hubs.c) */
    /* hooks/signal.c: signals sent to this OS thread's kernel pending set
     * for one green thread alone, and that thread; the siginfo of a signal
     * the kernel delivered while its thread was inside the scheduler. */
    uint64_t kthread_bits;
    struct green_thread *kthread_owner[64];
    siginfo_t resume_info[65];     /* written by the kernel's delivery */
    atomic_uint_fast64_t proc_bits;/* process-directed signals the wrapper
                                      left for this hub to deliver */
    siginfo_t proc_info[65];       /* and their siginfo */
    /* hooks/signal.c: process-directed signals another OS thread passed
     * to this hub (a fault no thread there accepts, one every thread of
     * a hub blocks), one instance each, and their siginfo; fwd_lock
     * guards both. */
    atomic_flag fwd_lock;
    atomic_uint_fast64_t fwd_bits;
    siginfo_t fwd_info[65];
    unsigned char fwd_hops[65];    /* hubs it went through (a bound) */
    /* tls.c: the modules whose thread-local blocks the green threads of
     * this OS thread take turns in (GREEN_TLS), and who is in them. */
    size_t tls_n;                  /* swapped modules; 0: switches copy
                                      nothing (the one test they make) */
    /* What a switch does besides switching (green__switch_turns): one
     * test on the switch path covers both flags. */
    union {
        struct {
            bool tls_turns;        /* a switch to another thread changes
                                      what is loaded (tls_n != 0, or
                                      address mode) */
            bool cpu_turns;        /* cpuclock.c: a switch counts the CPU
                                      time of the thread leaving */
            bool locale_turns;     /* tls.c: a thread of this ctx has used
                                      uselocale (sticky): a switch installs
                                      the next thread's locale */
            bool alt_turns;        /* a thread of this ctx has set a
                                      sigaltstack (sticky): a switch
                                      installs the next thread's */
        };
        uint32_t turns;
    };
    void *alt_sp;                  /* the alternate signal stack the kernel
                                      has for this OS thread now, NULL:
                                      libgreen's own (stack.c) */
    size_t alt_size;
    void *locale_now;              /* tls.c: the locale_t libc has for this
                                      OS thread now (NULL: the global one) */
    int64_t cpu_stamp;             /* cpuclock.c: the OS thread's CPU
                                      clock at the last switch, ns */
    unsigned cpu_seq;              /* cpuclock.c: odd while a switch of a
                                      counting hub changes cpu_stamp, a
                                      thread's cpu_ns and current (readers
                                      on other hubs retry) */
    struct green__tls_mod *tls_mods;
    size_t tls_size;               /* bytes of a thread's tls_buf */
    struct green_thread *tls_owner;/* whose contents the blocks hold, or
                                      NULL (it ended); never the hub */
    unsigned long long tls_adds, tls_subs; /* dl_iterate_phdr's load and
                                      unload counts at the last scan */
    unsigned tls_unloads;          /* dlclose calls seen by the last scan */
    int tls_busy;                  /* tls.c: inside a swap or a rescan,
                                      which read modules' images and
                                      blocks (atomic: a dlclose waits) */
    bool tls_exit_hooked;          /* registered with glibc's exit-time
                                      thread_local destructors */
    struct green__waitq once_waiters; /* hooks/pthread_key.c: pthread_once */
    /* GREEN_TLS=address (tls.c): thread pointers instead of copies. */
    char *tls_os_tp;               /* the OS thread's own thread pointer */
    char *tls_cur_tp;              /* the one loaded in the CPU now */
    struct green__tls_sync *tls_sync; /* modules that stay the OS thread's:
                                      static blocks copied along at each
                                      change, dynamic ones shared */
    size_t tls_sync_n;
    struct green_thread *discarded;/* threads a fork left behind in this
                                      child (linked by all_next): never run
                                      again, kept so nothing dangles */
};

#define GREEN__KP_KILL 1
#define GREEN__KP_SIGNAL 2

extern __thread struct green__ctx *green__tls_ctx
    __attribute__((tls_model("initial-exec")));

/* How many hubs (ctxs) this process has made, ever: the lock core
 * (lock.c) expects cross-hub wake-ups once there are two. */
extern atomic_int green__hubs_made GREEN_HIDDEN;
/* This OS thread's ctx, created on first use. NULL only on ENOMEM. */
GREEN_HIDDEN struct green__ctx *green__ctx_get(void);

/* The current green thread, or NULL when this OS thread has no hub. Cheap. */
static inline struct green_thread *green__current(void)
{
    struct green__ctx *c = green__tls_ctx;
    return c ? c->current : NULL;
}

/* True when the caller runs in a green thread other than the hub: the
 * condition under which a hook may park instead of passing through. */
static inline bool green__in_green(void)
{
    struct green__ctx *c = green__tls_ctx;
    return c && c->current != c->hub;
}

/* ----------------------------------------------------------- park/ready */

/* Park the caller until green__ready() or the deadline (absolute
 * green_now() ns, GREEN_FOREVER for none; the innermost timeout scope also
 * applies). If q is not NULL the thread's own wnode is pushed onto q first
 * and is always unlinked on return. Returns 0 or the errno value it was
 * woken with: ETIMEDOUT, ECANCELED (killed), or the waker's code. */
GREEN_HIDDEN int green__park(enum green__why why, uintptr_t why_arg,
                             struct green__waitq *q, int64_t deadline);
/* Make a parked thread runnable; the first wake wins, later ones are
 * ignored. Same OS thread only. Unlinks t->wnode if linked, and cancels
 * t->lwait if nobody decided it yet (green__lock_cancel, lock.c). */
GREEN_HIDDEN void green__ready(struct green_thread *t, int code);
struct green__lwait;
GREEN_HIDDEN void green__lock_cancel(struct green__lwait *w);
/* Cross-thread work: another OS thread posts r to ctx c; c's hub calls
 * r->run(r) on its own OS thread soon after (through the ctx's ev_async).
 * This is the only way another OS thread may affect a green thread. */
GREEN_HIDDEN void green__remote_post(struct green__ctx *c, struct green__remote *r);
/* Announce (+1) / retire (-1) a remote post that will come; while any is
 * announced the hub waits for it instead of reporting a deadlock. Owning
 * OS thread only. */
GREEN_HIDDEN void green__remote_expect(struct green__ctx *c, int delta);

/* solo.c: a system call that may wait for ever (a file lock wait, a
 * shared futex), made by an OS thread of its own while the calling green
 * thread parks (the essay there). green__solo_start hands the system call
 * call[0](call[1], ..., call[6]) over (the caller parks with why and
 * why_arg, for dumps); NULL with
 * errno when it cannot (not a green thread, or a handler running as one;
 * no thread could be started; ENOSYS on other architectures): the caller
 * then makes the call itself. green__solo_wait parks until the call has
 * returned (0), or returns the code a park was woken with (EINTR,
 * ECANCELED, ETIMEDOUT) while the call goes on. green__solo_end stops a
 * call still under way (it fails with -EINTR unless it had returned by
 * itself), waits for it without interruption, frees the job and returns
 * the call's result (>= 0, or -errno). A green thread only. */
struct green__solo;
GREEN_HIDDEN struct green__solo *green__solo_start(const long call[7], enum green__why why,
                                                  uintptr_t why_arg);
GREEN_HIDDEN int green__solo_wait(struct green__solo *s);
GREEN_HIDDEN long green__solo_end(struct green__solo *s);
/* Every handler the kernel may run for the monitor signal calls this
 * first; true: the signal was solo.c's own, nothing else to do. */
GREEN_HIDDEN bool green__solo_on_signal(const siginfo_t *si, void *uc);
/* The calling OS thread is a solo thread. A process-directed monitor
 * signal lands on one when every hub blocks it: the signal hooks hand it
 * to the main OS thread, where it waits as natively. */
GREEN_HIDDEN bool green__solo_thread(void);
/* fn is solo.c's handler (for the signal hooks: no program action). */
GREEN_HIDDEN bool green__solo_handler_is(void (*fn)(int, siginfo_t *, void *));
/* After solo.c's first call: the monitor signal keeps a handler of
 * libgreen's in the kernel (solo.c's, unless it has one). */
GREEN_HIDDEN void green__solo_keep_handler(void);
/* fn is the monitor's handler (monitor.c). */
GREEN_HIDDEN bool green__monitor_handler_is(void (*fn)(int, siginfo_t *, void *));

/* Deadline from a relative timeout (GREEN_FOREVER stays GREEN_FOREVER). */
static inline int64_t green__deadline(int64_t timeout_ns)
{
    return timeout_ns < 0 ? GREEN_FOREVER : green_now() + timeout_ns;
}

/* Set errno from a park result and return -1, or return 0. */
static inline int green__result(int code)
{
    if (code) { errno = code; return -1; }
    return 0;
}

/* ------------------------------------------------------------- hub set */

/* hubs.c: the hubs new green threads are spread over (its essay). */
#define GREEN__HUBS_MAX 256
extern int green__hubs_want GREEN_HIDDEN;   /* GREEN_HUBS, green_set_hubs */
/* The hub a thread spawned by a thread of self goes to (self when only
 * one hub is wanted); starts that hub if needed. */
GREEN_HIDDEN struct green__ctx *green__hubs_place(struct green__ctx *self);
/* Non-zero: spawns of this OS thread stay on its hub (green.h's groups,
 * whose members share its queues). */
extern __thread int green__spawn_here __attribute__((tls_model("initial-exec")));
/* Post new thread t to hub c (not the caller's), which adopts it. */
GREEN_HIDDEN void green__hubs_send(struct green__ctx *c, struct green_thread *t);
/* Link and queue a new thread t on c, its hub (lifecycle.c; on c's OS
 * thread). */
GREEN_HIDDEN void green__thread_adopt(struct green__ctx *c, struct green_thread *t);
/* A thread was placed on c (+1) or ended there (-1). */
GREEN_HIDDEN void green__hubs_count(struct green__ctx *c, int delta);
/* Live threads on the extra hubs, when c is home (else 0): the home main
 * thread's green_run and exit wait for them too. */
GREEN_HIDDEN long green__hubs_others_live(struct green__ctx *c);
/* Hubs started (home included), and hub i of the set or NULL. */
GREEN_HIDDEN int green__hubs_n(void);
GREEN_HIDDEN struct green__ctx *green__hubs_at(int i);
/* The finish of t once two hubs exist: DONE under t->xlock, then wake a
 * joiner of another hub. */
GREEN_HIDDEN void green__hubs_finish(struct green_thread *t);
/* Join / detach t of another hub than self's: 0 or an errno value. */
GREEN_HIDDEN int green__hubs_join(struct green_thread *self, struct green_thread *t,
                                  void **result, int64_t deadline);
GREEN_HIDDEN int green__hubs_detach(struct green_thread *t);
/* Run fn(t, a, p) on t's hub: now when that is the caller's, else
 * through a post (skipped if t has ended or was freed by then).
 * 0 or ENOMEM. */
GREEN_HIDDEN int green__on_hub(struct green_thread *t,
                               void (*fn)(struct green_thread *t, intptr_t a, void *p),
                               intptr_t a, void *p);
/* green_kill of a thread of another hub. */
GREEN_HIDDEN int green__hubs_kill(struct green_thread *t);
/* Fork child: the set is the caller's hub alone (or empty). */
GREEN_HIDDEN void green__hubs_after_fork(struct green__ctx *c);

/* ------------------------------------------------------------ fair turns */

/* A green thread that has run this long without parking yields at its
 * next hooked call (green__fair_turn), as the kernel would have preempted
 * it. Measured on CLOCK_MONOTONIC_COARSE (one vDSO read, ~25 ns; its
 * resolution is the kernel tick, 1-4 ms), read at most every
 * GREEN__SLICE_EVERY-th hooked call, so a busy loop yields after 5-9 ms. */
#define GREEN__SLICE_NS 5000000
#define GREEN__SLICE_EVERY 4
GREEN_HIDDEN void green__fair_yield(struct green__ctx *c);
/* No other green thread of the caller's hub is runnable (sched_yield then
 * yields the OS thread too). */
GREEN_HIDDEN bool green__runq_idle(void);
GREEN_HIDDEN void green__fair_check(struct green__ctx *c, struct green_thread *t);

/* ------------------------------------------------------------ priorities */

/* Set once, for good, when a thread first gets a rank above 0: until
 * then the run queue is plain FIFO and costs nothing more (sched.c,
 * "Priorities"; the lock core orders its queues by rank regardless). */
extern bool green__prio_used GREEN_HIDDEN;
/* Set t's rank (0: not realtime, 1..99: SCHED_FIFO/RR priority). Any
 * OS thread. Never switches. */
GREEN_HIDDEN void green__sched_rank_set(struct green_thread *t, int rank);
static inline int green__sched_rank(const struct green_thread *t)
{
    return __atomic_load_n(&t->sched_rank, __ATOMIC_RELAXED);
}
/* A thread of the caller's hub of a higher rank than the caller is
 * runnable: let it run now (the caller goes back to the run queue), as
 * the kernel would preempt a realtime thread for a higher one. Called
 * by the pthread layer after whatever can make such a thread runnable
 * (create, a priority change, a release). No-op for the hub, a plain OS
 * thread, or while no rank was ever set. May switch. */
GREEN_HIDDEN void green__prio_preempt_slow(void);
static inline void green__prio_preempt(void)
{
    if (green__unlikely(__atomic_load_n(&green__prio_used, __ATOMIC_RELAXED)))
        green__prio_preempt_slow();
}

static inline int64_t green__coarse_now(void)
{
    struct timespec ts;
    GREEN_REAL(clock_gettime)(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Call at a hook boundary, in a green thread other than the hub, where a
 * switch is allowed (not in a signal handler, not with libgreen state
 * half-updated). A thread that was switched in since its last call
 * (ctx->switches moved) starts a new slice without reading the clock, so
 * code that parks often (one hooked call per switch) never reads it; a
 * busy loop reads it every GREEN__SLICE_EVERY-th call. */
static inline void green__fair_turn(struct green__ctx *c)
{
    struct green_thread *t = c->current;
    /* +1: a fresh struct (slice_sw 0) never looks mid-slice. */
    uint64_t sw = atomic_load_explicit(&c->switches, memory_order_relaxed) + 1;
    if (green__unlikely(t->slice_sw != sw)) {
        t->slice_sw = sw;
        t->slice_start = 0;        /* read at the next check */
        t->slice_left = 1;
    } else if (green__unlikely(--t->slice_left == 0)) {
        green__fair_check(c, t);
    }
}

/* ------------------------------------------------------------ descriptors */

/* Park until fd is ready for mask, deadline absolute. Returns the ready mask
 * (>0) or -errno. */
GREEN_HIDDEN int green__wait_fd(int fd, int mask, int64_t deadline);
/* One entry of a multi-descriptor wait (poll/select). */
struct green__fdwait {
    int fd;
    int mask;                    /* GREEN_READ|GREEN_WRITE wanted */
    struct green__wnode node[2]; /* read and write waits */
    unsigned gen;                /* the fd slot's close count when parked */
};
/* Bit in a node's data: it was woken because its descriptor was closed
 * (green_fd_closing), so a multi-descriptor wait knows which one went. */
#define GREEN__FD_CLOSED 4
/* Park until any of n entries is ready or the deadline passes. Returns 0 or
 * an errno value (ETIMEDOUT, ECANCELED, EBADF...). Callers re-check
 * readiness themselves (poll with timeout 0). */
GREEN_HIDDEN int green__wait_fds(struct green__fdwait *w, int n, int64_t deadline);
GREEN_HIDDEN void green__fd_forget_all(struct green__ctx *c);

/* --------------------------------------------------------------- timers */

GREEN_HIDDEN int green__timers_init(struct green__ctx *c);
GREEN_HIDDEN int green__timer_add(struct green__ctx *c, struct green_thread *t,
                                  int64_t deadline);
GREEN_HIDDEN void green__timer_remove(struct green__ctx *c, struct green_thread *t);
GREEN_HIDDEN void green__timers_expire(struct green__ctx *c, int64_t now);
GREEN_HIDDEN void green__timers_arm(struct green__ctx *c);
GREEN_HIDDEN void green__timers_after_fork(struct green__ctx *c);

/* ------------------------------------------------- monitor and dump */

/* Record a new ctx (on its own OS thread) in the process-wide list that
 * the monitor, the dump signal and the gdb extension walk (monitor.c). */
GREEN_HIDDEN void green__ctx_register(struct green__ctx *c);
/* Async-signal-safe formatting into a fixed buffer (dump.c); output past
 * cap is dropped. */
struct green__fmt { char *b; size_t n, cap; };
GREEN_HIDDEN void green__fmt_str(struct green__fmt *f, const char *s);
GREEN_HIDDEN void green__fmt_u64(struct green__fmt *f, uint64_t v);
GREEN_HIDDEN void green__fmt_hex(struct green__fmt *f, uintptr_t v);
/* Print c's green threads to fd, as green_dump does for the caller's
 * ctx. Async-signal-safe when called on c's own OS thread. */
GREEN_HIDDEN void green__dump_ctx(struct green__ctx *c, int fd);

/* ------------------------------------------------ thread-local storage */

/* tls.c: __thread / thread_local contents per green thread (its essay). */
struct green__tls_mod;
struct green__tls_dtor;
extern bool green__tls_on GREEN_HIDDEN;   /* GREEN_TLS, as settings.c decided */
extern bool green__tls_addr GREEN_HIDDEN; /* GREEN_TLS=address */
struct green__tls_sync;
/* Scan the modules of a new ctx, on its own OS thread; its main green
 * thread owns the blocks as they are. */
GREEN_HIDDEN void green__tls_ctx_init(struct green__ctx *c);
/* The slow path: rescan when modules were loaded or unloaded since c's
 * last scan (dl_iterate_phdr's counters; a walk of one module). */
GREEN_HIDDEN void green__tls_check(struct green__ctx *c);
/* Give t a buffer of c's layout (spawn): 0 or ENOMEM. */
GREEN_HIDDEN int green__tls_thread_init(struct green__ctx *c, struct green_thread *t);
/* t joins c (on c's OS thread): check for new modules, fit its buffer. */
GREEN_HIDDEN void green__tls_adopt(struct green__ctx *c, struct green_thread *t);
/* Owner's contents out, next's in (or the images); next owns them. */
GREEN_HIDDEN void green__tls_swap(struct green__ctx *c, struct green_thread *next);
/* Around a dlclose (the hook, and a thread_local destructor's pinned
 * library): begin waits until no hub is inside a swap or rescan and
 * makes later ones leave dlopen'd modules alone; end counts the unload
 * (every hub's next swap rescans) and lets them back. */
GREEN_HIDDEN void green__tls_unload_begin(void);
GREEN_HIDDEN void green__tls_unload_end(void);
/* lifecycle.c, in a fork child: no dlclose is in progress there. */
GREEN_HIDDEN void green__tls_after_fork_child(void);
/* t ended: run its C++ thread_local destructors (may switch), then later
 * give up its buffer and ownership (before its last switch). */
GREEN_HIDDEN void green__tls_run_dtors(struct green_thread *t);
GREEN_HIDDEN void green__tls_release(struct green__ctx *c, struct green_thread *t);
/* hooks/syscall.c: a green thread parks on the futex word w. When w lies
 * in a block that GREEN_TLS=1 swaps (one address for every green thread
 * of the hub), says once that a wake through the word's address may
 * reach the wrong thread, and that GREEN_TLS=address is the cure. */
GREEN_HIDDEN void green__tls_futex_note(const void *w);
/* hooks/tls_atexit.c: a thread_local destructor of the calling green
 * thread. 1 taken, 0 not (no swapping here: glibc's list), -1 ENOMEM. */
GREEN_HIDDEN int green__tls_atexit(void (*fn)(void *), void *obj, void *dso);

/* Before next runs on c: its thread-local contents in the blocks (or,
 * GREEN_TLS=address, its thread pointer loaded; the hub's is the OS
 * thread's own, so that a frame of the hub never sees the thread pointer
 * change under it). With no swapped module, one predictable branch. */
static inline void green__tls_enter(struct green__ctx *c, struct green_thread *next)
{
    if (green__unlikely(c->tls_turns) && next != c->tls_owner &&
        (!next->is_hub || c->tls_os_tp))
        green__tls_swap(c, next);
}

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)   /* Linux uapi, asm/signal.h; glibc has none */
#endif
/* A green thread's alternate signal stack (hooks/signal.c, "Alternate
 * signal stacks"): what sigaltstack set, as the kernel keeps it. */
struct green__alt {
    void *sp;
    size_t size;
    int flags;                     /* 0, SS_DISABLE, or (int)SS_AUTODISARM */
    bool disarmed;                 /* SS_AUTODISARM: a handler runs on it */
};
/* The stack the kernel should have for t: its own, armed, or NULL
 * (libgreen's: no alternate stack of its own, or the hub). */
static inline const struct green__alt *green__alt_of(const struct green_thread *t)
{
    const struct green__alt *a = t->alt;
    return a && !t->is_hub && !(a->flags & SS_DISABLE) && !a->disarmed ? a : NULL;
}
GREEN_HIDDEN void green__alt_install(struct green__ctx *c, const struct green__alt *a);
/* The caller runs on this OS thread's alternate stack of libgreen's. */
GREEN_HIDDEN bool green__stack_on_own_alt(void);
GREEN_HIDDEN void green__alt_switch(struct green__ctx *c, struct green_thread *from,
                                    struct green_thread *next);
/* Before next runs on c instead of from, once a thread of c set an
 * alternate stack: the kernel's is next's (stack.c, green__alt_switch). */
static inline void green__alt_enter(struct green__ctx *c, struct green_thread *from,
                                    struct green_thread *next)
{
    if (green__unlikely(c->alt_turns))
        green__alt_switch(c, from, next);
}

/* uselocale per green thread (tls.c, "Locales"): before next runs on c,
 * libc's per-thread locale is next's (the hub runs with whatever is
 * there). After green__tls_enter: under GREEN_TLS=address it sets next's
 * own thread pointer's. */
GREEN_HIDDEN void green__locale_install(struct green__ctx *c, struct green_thread *next);
static inline void green__locale_enter(struct green__ctx *c, struct green_thread *next)
{
    if (green__unlikely(c->locale_turns) && next->locale != c->locale_now && !next->is_hub)
        green__locale_install(c, next);
}
/* hooks/tls_atexit.c: uselocale(loc) from the calling green thread t; the
 * real call was made and returned old (not (locale_t)0). */
GREEN_HIDDEN void green__locale_used(struct green_thread *t, void *loc);
/* Run fn(arg) on the stack [lo, hi) and come back (lifecycle.c): the
 * current thread stays current; fn may park. A handler's alternate
 * stack (hooks/signal.c). */
GREEN_HIDDEN void green__call_on(void *lo, void *hi, void (*fn)(void *), void *arg);

/* ------------------------------------------------- per-thread CPU clocks */

/* cpuclock.c (its essay). The ids pthread_getcpuclockid gives for green
 * threads use kernel-format "thread ids" from GREEN__CPUCLOCK_BASE, above
 * any the kernel hands out (PID_MAX_LIMIT is 2^22). */
#define GREEN__CPUCLOCK_BASE  (1u << 26)
#define GREEN__CPUCLOCK_SLOTS (1u << 26)
/* The kernel's id of the CPU clock of kernel thread tid, in the format
 * glibc builds for pthread_getcpuclockid (per thread, scheduler time),
 * and back: the thread id of such an id. */
static inline clockid_t green__thread_clock(unsigned tid)
{
    return (clockid_t)((~tid << 3) | 6u);
}
static inline unsigned green__thread_clock_tid(clockid_t clk)
{
    return ~(unsigned)(clk >> 3);
}
/* Set once the program asked for a thread CPU clock: every hub counts
 * from its next turn on. */
extern bool green__cpu_wanted GREEN_HIDDEN;
/* Count on c from now on (idempotent). */
GREEN_HIDDEN void green__cpu_start(struct green__ctx *c);
/* The program asked for a thread CPU clock: counting starts everywhere,
 * on c (the caller's hub, or NULL) at once. */
GREEN_HIDDEN void green__cpu_want(struct green__ctx *c);
/* At a switch away from `from` while c counts. */
GREEN_HIDDEN void green__cpu_switch(struct green__ctx *c, struct green_thread *from);
/* CPU time of c's current green thread (not the hub), ns, given the OS
 * thread's clock read after counting started on c. */
GREEN_HIDDEN int64_t green__cpu_self(struct green__ctx *c, int64_t os_now);
/* CPU time of t, ns: the caller's own exactly (os_now as above), another
 * thread's as of its last switch. */
GREEN_HIDDEN int64_t green__cpu_of(struct green_thread *t, int64_t os_now);
/* The clock id of t's CPU clock: 0, EAGAIN (ids used up) or ENOMEM. */
GREEN_HIDDEN int green__cpu_clock_of(struct green_thread *t, clockid_t *out);
/* clk is one of those ids (whether or not its thread still exists). */
GREEN_HIDDEN bool green__cpu_clock_is_ours(clockid_t clk);
/* The live green thread of such an id, or NULL (it ended). */
GREEN_HIDDEN struct green_thread *green__cpu_clock_thread(clockid_t clk);
/* In the child of a fork, for the thread that forked. */
GREEN_HIDDEN void green__cpu_after_fork_child(struct green__ctx *c,
                                              struct green_thread *self);

/* The CPU clocks' sequence count (cpuclock.c): odd from before a
 * counting switch changes cpu_stamp and cpu_ns until after it changed
 * c->current. Written by c's own OS thread only. No fence: those three
 * are stored with release (and read with acquire), which orders the odd
 * count before them for a reader (ThreadSanitizer has no fences). */
static inline void green__cpu_seq_begin(struct green__ctx *c)
{
    __atomic_store_n(&c->cpu_seq, c->cpu_seq + 1, __ATOMIC_RELAXED);
}
static inline void green__cpu_seq_end(struct green__ctx *c)
{
    __atomic_store_n(&c->cpu_seq, c->cpu_seq + 1, __ATOMIC_RELEASE);
}

/* Before next runs on c, after self's errno is saved: GREEN_TLS's swap
 * and the CPU clocks' count (whose sequence count green__switch_done
 * ends once c->current is next). With neither on, one predictable
 * branch. */
static inline void green__switch_turns(struct green__ctx *c, struct green_thread *self,
                                       struct green_thread *next)
{
    if (green__unlikely(c->turns)) {
        if (c->cpu_turns) {
            green__cpu_seq_begin(c);
            green__cpu_switch(c, self);
        }
        green__tls_enter(c, next);
        green__locale_enter(c, next);
        green__alt_enter(c, self, next);
    }
}
static inline void green__switch_done(struct green__ctx *c)
{
    if (green__unlikely(c->turns) && c->cpu_turns)
        green__cpu_seq_end(c);
}

/* errno of the thread pointer loaded now. __errno_location() is a const
 * function, whose result compilers keep across calls; a frame that spans
 * a switch (the one that ends a thread, whose thread pointer is freed
 * under GREEN_TLS=address) reads the thread pointer again instead. */
#if defined(__x86_64__)
extern long green__errno_off GREEN_HIDDEN;
static inline int *green__errno_now(void)
{
    char *tp;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
    return (int *)(tp + __atomic_load_n(&green__errno_off, __ATOMIC_RELAXED));
}
#else
#define green__errno_now() (&errno)
#endif

/* ------------------------------------------------------------ misc */

/* Settings: every GREEN_* variable, read once (settings.c). */
GREEN_HIDDEN void green__settings_once(void);
extern bool green__block_on_deadlock;   /* shim: hang instead of EDEADLK */
extern int green__offload_workers;      /* GREEN_WORKERS */
extern int green__log_level;            /* GREEN_LOG_LEVEL: 0 silent, 1 errors,
                                           2 warnings, 3 debug */
extern int green__monitor_ms;           /* GREEN_MONITOR_MS, 0 = off */
extern int green__monitor_signal;       /* GREEN_MONITOR_SIGNAL */
extern int green__dump_signal;          /* GREEN_DUMP_SIGNAL, 0 = none */
extern int green__sud_setting;     /* GREEN_SYSCALL_DISPATCH, 0 = off */

/* Hook families, switched with GREEN_HOOKS. The core only stores the
 * choice; the hooks (hooks/hooks.h) act on it. */
enum {
    GREEN_HOOK_IO     = 1 << 0,  /* sockets, pipes, poll/select/epoll, close/dup/fcntl */
    GREEN_HOOK_SLEEP  = 1 << 1,  /* sleep, usleep, nanosleep, clock_nanosleep, sched_yield */
    GREEN_HOOK_THREAD = 1 << 2,  /* pthreads become green threads */
    GREEN_HOOK_DNS    = 1 << 3,  /* getaddrinfo & co. on the worker pool */
    GREEN_HOOK_FILE   = 1 << 4,  /* regular-file read/write/pread/pwrite on the worker pool */
    GREEN_HOOK_PROC   = 1 << 5,  /* fork, waitpid/wait/wait4, system */
};
#define GREEN_HOOK_DEFAULT (GREEN_HOOK_IO | GREEN_HOOK_SLEEP | GREEN_HOOK_DNS | GREEN_HOOK_PROC)
/* Families switched on: GREEN_HOOK_DEFAULT, plus THREAD under the shim;
 * the preload constructor sets it from GREEN_HOOKS. */
extern unsigned green__hook_families GREEN_HIDDEN;
/* True when running as LD_PRELOAD / greenrun (not linked explicitly). */
extern bool green__preloaded GREEN_HIDDEN;
/* The CPUs this process may use (affinity, cgroup quota), 1..256. */
GREEN_HIDDEN int green__settings_cpus(void);
/* Hubs wanted: GREEN_HUBS (default green__settings_cpus()) under the
 * shim, 1 otherwise. */
GREEN_HIDDEN int green__settings_hubs(bool shim);
/* GREEN_TLS, or when unset the default: on under the shim. */
GREEN_HIDDEN bool green__settings_tls(bool shim);
/* GREEN_HUB_BATCH, or when unset the default: on under the shim. */
GREEN_HIDDEN bool green__settings_batch(bool shim);
/* hubpolicy.c: the hubs' kernel scheduling policy. green__hub_batch is
 * the setting; _used is set once a hub was switched to SCHED_BATCH.
 * _enter: on the hub's own OS thread, when its ctx is made. _ctx: the
 * ctx of tid (0: the caller's OS thread) if libgreen switched it, else
 * NULL. _suspend/_resume: around exec and posix_spawn on the calling OS
 * thread (suspend returns whether it switched back to SCHED_OTHER).
 * _attr: an explicit SCHED_OTHER for an OS thread libgreen starts from a
 * batch hub's thread. */
extern int green__hub_batch GREEN_HIDDEN;
/* fdstate.c: GREEN_FD_CACHE, 1 = keep own sockets' O_NONBLOCK and
 * timeouts (the flag cache, fdstate.c's essay), 0 = read them every time. */
extern int green__fd_cache GREEN_HIDDEN;
extern bool green__hub_batch_used GREEN_HIDDEN;
GREEN_HIDDEN void green__hubpolicy_enter(struct green__ctx *c);
GREEN_HIDDEN struct green__ctx *green__hubpolicy_ctx(pid_t tid);
GREEN_HIDDEN bool green__hubpolicy_suspend(void);
GREEN_HIDDEN void green__hubpolicy_resume(bool suspended);
GREEN_HIDDEN void green__hubpolicy_attr(pthread_attr_t *a);
/* hubs.c: c (the caller's ctx) runs only its main green thread and
 * nothing can post to it: no other thread on it, no other hub in the
 * set, no remote post expected but the set's permanent one. Blocking its
 * OS thread then stops nothing else. */
GREEN_HIDDEN bool green__hub_alone(const struct green__ctx *c);
/* hubs.c: the hub of the set whose OS thread is tid, or NULL. */
GREEN_HIDDEN struct green__ctx *green__hub_by_tid(pid_t tid);
/* GREEN_HOOKS parsed over the default def (a bad value: logged, def). */
GREEN_HIDDEN unsigned green__settings_hooks(unsigned def);
/* The monitor (monitor.c): start the watchdog for stalls longer than ms;
 * install the handler of the dump signal. 0, or -1 and errno. */
GREEN_HIDDEN int green__monitor_start(int ms);
GREEN_HIDDEN int green__dump_signal_install(int sig);
/* At GREEN_LOG_LEVEL 3: one line on stderr with the settings in force. */
GREEN_HIDDEN void green__settings_report(void);

/* Messages below the error level: printed only when GREEN_LOG_LEVEL asks. */
#define green__warn(...)                                                      \
    do {                                                                      \
        if (green__log_level >= 2)                                            \
            green__log(__VA_ARGS__);                                          \
    } while (0)
#define green__debug(...)                                                     \
    do {                                                                      \
        if (green__log_level >= 3)                                            \
            green__log(__VA_ARGS__);                                          \
    } while (0)
GREEN_HIDDEN void green__register_atfork(void);

/* Thread internals shared by lifecycle.c, hub.c and thread.c. */
GREEN_HIDDEN struct green_thread *green__thread_create(
    void *(*fn)(void *), void *arg, const green_attr_t *attr, int *err);
/* As green__thread_create, on the caller's stack [stack, stack+size)
 * when stack is not NULL (never pooled or unmapped by libgreen), and
 * calling init(t, init_arg) when init is not NULL before t may run: with
 * several hubs t may run at once on another OS thread, so whatever the
 * caller must set first (the pthread_t it returns, scheduling
 * attributes) is set there. */
GREEN_HIDDEN struct green_thread *green__thread_create_on(
    void *(*fn)(void *), void *arg, const green_attr_t *attr,
    void *stack, size_t size, int *err,
    void (*init)(struct green_thread *t, void *init_arg), void *init_arg);
/* Called on a finishing thread's stack (after its key destructors,
 * before its joiners wake) when set: the pthread layer releases the
 * robust mutexes it holds. Must not switch. */
extern void (*green__thread_exit_hook)(struct green_thread *t) GREEN_HIDDEN;
GREEN_HIDDEN _Noreturn void green__thread_finish(struct green_thread *t, void *result);
GREEN_HIDDEN void green__thread_free(struct green_thread *t);
GREEN_HIDDEN void green__thread_kill(struct green_thread *t);
GREEN_HIDDEN int green__switch_direct(struct green_thread *t, void *value);
GREEN_HIDDEN bool green__is_main_os_thread(void);
/* A zeroed thread struct of ctx c, reused when one is spare, with a fresh
 * id and name ("green-ID" when name is NULL); NULL on ENOMEM. Linking it
 * into c->all (for green_dump and the debugger) is a separate step.
 * lifecycle.c; hub.c makes the main and hub threads with them. */
GREEN_HIDDEN struct green_thread *green__thread_alloc(struct green__ctx *c,
                                                      const char *name);
GREEN_HIDDEN void green__all_link(struct green__ctx *c, struct green_thread *t);

/* Signals (hooks/signal.c). The program's handlers run through a wrapper
 * that bumps green__sig_gen; it sets green__on_signal, which the hub calls
 * after every poll so that a parked call can fail with EINTR as the kernel
 * would make it. NULL while no handler was ever wrapped. */
extern void (*volatile green__on_signal)(struct green__ctx *c)
    __attribute__((visibility("hidden")));
/* Set by the signal hooks: runs the handlers queued on t->sig_resume, as
 * t, when t's park returns (park_impl calls it only when the list is not
 * empty). A handler run this way may block, as it may natively. */
extern void (*green__on_resume)(struct green_thread *t)
    __attribute__((visibility("hidden")));
/* Set by hooks/sud.c under GREEN_SYSCALL_DISPATCH=1: runs on each OS
 * thread as its ctx is made (every hub), to switch syscall user dispatch
 * on for that thread. NULL otherwise. */
extern void (*green__on_ctx_made)(struct green__ctx *c)
    __attribute__((visibility("hidden")));

/* Run fn(arg) as t (c->current == t, t's errno) on t's own stack below
 * its saved context, while t stays parked or queued, then come back to the
 * caller: how a signal handler runs "in" a green thread that is not the
 * running one (hooks/signal.c). t must not be the caller. A park inside fn
 * fails at once with EINTR and a yield does nothing (t's real context is
 * suspended elsewhere). */
GREEN_HIDDEN void green__run_as(struct green_thread *t, void (*fn)(void *), void *arg);
/* Called when a green thread starts (+1) or ends (-1) once hooks/signal.c
 * counts signal masks; NULL before. */
extern void (*volatile green__sig_life)(struct green_thread *t, int delta)
    __attribute__((visibility("hidden")));
/* Block every signal libc lets a thread block on the calling OS thread
 * (for creating libgreen's own threads); *old gets the previous mask. */
GREEN_HIDDEN void green__block_all_signals(sigset_t *old);
/* Signals no kernel mask of libgreen's ever blocks, whatever the green
 * threads block (bit sig-1; green__block_all_signals and hooks/signal.c's
 * K leave them out): SIGSYS while syscall user dispatch is on, since a
 * trap that finds SIGSYS blocked kills the process (hooks/sud.c sets it). */
extern uint64_t green__sig_keep_open GREEN_HIDDEN;
GREEN_HIDDEN void green__restore_signals(const sigset_t *old);

/* Run the ctx's fork child fix-up (called by the preload's fork hook and by
 * pthread_atfork registered in the core). */
GREEN_HIDDEN void green__after_fork_child(void);
/* Free a thread's locals, running key destructors. */
GREEN_HIDDEN void green__locals_run_destructors(struct green_thread *t);
/* Internal descriptors (the epoll fd, libev's async eventfd or pipe, the
 * timerfd) are marked in fdstate.c's table, and the program's close,
 * close_range, closefrom, dup2/dup3 and fcntl act as if they were not open.
 * green__in_libev is non-zero while libev itself creates or closes its fds
 * (ev_loop_new and ev_async_start in ctx_create, the first ev_run after a
 * fork, ev_loop_destroy): those hooks then pass libev's calls through, and
 * mark what libev makes: epoll_create/epoll_create1 (exported by the
 * preload; the static core used by unit tests cannot see libev's call) and
 * fcntl(F_SETFD) (libev's fd_intern on its async eventfd or pipe). libev's
 * API names neither fd. dup2/dup3 onto an internal fd fail with EBUSY:
 * libev cannot be re-pointed at another number (hooks/io.c). */
extern __thread int green__in_libev __attribute__((tls_model("initial-exec")));
GREEN_HIDDEN void green__fd_set_internal(int fd, bool on);
/* ev_async_send for every caller of libgreen's: libev wakes the loop with
 * write(2) on its eventfd, and a caller that is a green thread (a post to
 * another hub, a sem_post, a signal handler) would reach the shim's write
 * hook, which treats libgreen's descriptors as not open. Marked as libev's
 * own call, the hook passes it through. Async-signal-safe. */
static inline void green__async_send(struct ev_loop *loop, ev_async *w)
{
    green__in_libev++;
    ev_async_send(loop, w);
    green__in_libev--;
}
GREEN_HIDDEN bool green__fd_is_internal(int fd);
/* The close hook found libev closing its hub's epoll fd with no fork
 * (hub.c, hub_poll): true when the caller runs on the hub's own context,
 * inside ev_run, where no program code runs; green__in_libev then stays
 * raised until that ev_run returns, so that the hooks pass libev's close
 * through and mark the new set's fd. */
GREEN_HIDDEN bool green__libev_rebuild_begin(void);
/* Move a new internal fd out of the program's range (F_DUPFD_CLOEXEC from
 * near the top of RLIMIT_NOFILE, fdstate.c), close the low number
 * and mark the new one internal. Returns the fd to use (fd itself when it
 * could not be moved, or when fd < 0). */
GREEN_HIDDEN int green__fd_hide(int fd);
/* Close an fd made by green__fd_hide that no libev watcher keeps (a
 * pidfd, a signalfd): wakes its waiters, unmarks it, closes it. */
GREEN_HIDDEN void green__fd_close_hidden(int fd);

#endif /* GREEN_INTERNAL_H */

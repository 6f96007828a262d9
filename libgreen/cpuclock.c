/*
 * cpuclock.c - a CPU-time clock per green thread: CLOCK_THREAD_CPUTIME_ID
 * read by a green thread, and the clock ids pthread_getcpuclockid gives.
 *
 * What it is. The kernel keeps one CPU clock per OS thread; every green
 * thread of a hub runs on the hub's OS thread, so the kernel's clock
 * counts all of them together (a thread that slept for a second would
 * read the second its neighbours computed). Here each green thread gets
 * the share of its OS thread's CPU time that was spent while it was the
 * current thread: at a switch away from a green thread, the OS thread's
 * clock is read once, and the time since the previous reading goes to
 * the thread that is leaving. A switch away from the hub reads nothing:
 * the hub's few microseconds of polling between two green threads go to
 * the next one's slice, as a kernel charges the interrupted thread for
 * its interrupt. One system call per green thread's turn, not two.
 *
 * Cost and when it is paid. The read is a system call (the vDSO does not
 * serve thread CPU clocks): 0.3-1.6 us on this kind of machine, at every
 * green thread's switch; the slower switches also make the hub poll more
 * often (its poll rule is timed), and bench/bench_clock measures both:
 * a two-thread sched_yield under the shim went from 16.5 ns to 1.44 us
 * per yield here (README, "Micro-benchmarks"). So nothing is counted
 * until the program first asks for a thread CPU clock (clock_gettime
 * with CLOCK_THREAD_CPUTIME_ID from a green thread, getrusage with
 * RUSAGE_THREAD, pthread_getcpuclockid). From then on every hub counts: the
 * asking hub at once, the others at their next poll (hub_main). A
 * program that never asks pays one predictable branch per switch, shared
 * with GREEN_TLS's (ctx->turns).
 *
 * What a program sees.
 *  - Its own clock: the time counted at its past switches, plus the OS
 *    thread's time since the last switch. Exact to the switch.
 *  - A new thread's clock starts at zero, as a new pthread's does.
 *  - Time a thread used before the first request is not known (it was not
 *    counted), except the OS thread's own first thread (the program's
 *    main thread, an adopted OS thread): it gets the OS thread's whole
 *    time so far, which is what it would read natively when it alone ran
 *    there. Every other existing thread starts from zero at that moment.
 *  - Another thread's clock: the time counted at its switches, plus,
 *    while it runs on another hub, that hub's OS thread's clock since the
 *    hub's last switch (one more system call: the kernel reads another
 *    thread's CPU clock). The hub's switch makes its sequence count
 *    (ctx->cpu_seq) odd from before it counts until after it changed
 *    ctx->current; a reader that saw the count change reads again. So a
 *    clock read from anywhere never goes back and advances while its
 *    thread computes, as natively. A handler run as a parked thread
 *    (green__run_as) counts as that thread's time.
 *  - After fork the child's thread starts again from zero, as the child's
 *    only thread does natively.
 *
 * The clock ids. pthread_getcpuclockid returns, for a green thread, an id
 * in the kernel's format for a per-thread CPU clock (((~tid) << 3) | 6,
 * which glibc builds from the kernel thread id) with a "thread id" that
 * no kernel thread can have: GREEN__CPUCLOCK_BASE (2^26, above the
 * kernel's PID_MAX_LIMIT of 2^22) plus a slot number. The slot maps back
 * to the thread struct, whose cpu_slot still names it while the struct
 * is that thread's, so a clock outliving its thread (the
 * struct reused by a later thread) is recognised: EINVAL, as the kernel
 * answers for a thread that has exited. The hooks (hooks/cpuclock.c)
 * recognise these ids in clock_gettime, clock_getres and timer_create;
 * a call that reaches the kernel with one (a raw syscall) gets EINVAL.
 *
 * Invariants. A thread's cpu_ns is written only by its own hub (at its
 * switches; at the start of counting, for the hub's main thread) and
 * read with relaxed atomics by anyone. c->cpu_stamp, c->cpu_seq and
 * c->current are written by the hub's own OS thread only; other hubs
 * read them inside the sequence count. Rejected for those reads: a lock
 * on the switch path (every switch of a counting hub would take it).
 * Slots are handed out once and never reused; a slot's entry is written
 * before its clock id is returned.
 *
 * Rejected: counting always (a system call per switch for every program,
 * to serve the few that read thread CPU clocks); the cycle counter
 * instead of the kernel's clock (it counts time the OS thread was
 * preempted or asleep in an unhooked call, which is not CPU time);
 * per-thread perf events read with rdpmc (a descriptor per thread and a
 * perf_event_paranoid setting the program cannot count on).
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

bool green__cpu_wanted;

/* The OS thread's CPU time, ns. */
static int64_t os_cpu_ns(void)
{
    struct timespec ts;
    if (green__syscall(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void add_ns(struct green_thread *t, int64_t d)
{
    int64_t v = __atomic_load_n(&t->cpu_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&t->cpu_ns, v + d, __ATOMIC_RELEASE);   /* cpu_elsewhere */
}

void green__cpu_start(struct green__ctx *c)
{
    if (c->cpu_turns)
        return;
    int64_t now = os_cpu_ns();
    __atomic_store_n(&c->cpu_stamp, now, __ATOMIC_RELAXED);
    /* The OS thread's first thread has run on it since it began. */
    if (c->main && c->main->state != GREEN_DONE &&
        __atomic_load_n(&c->main->cpu_ns, __ATOMIC_RELAXED) == 0)
        __atomic_store_n(&c->main->cpu_ns, now, __ATOMIC_RELAXED);
    /* Release: a reader on another hub that sees it reads the stamp. */
    __atomic_store_n(&c->cpu_turns, true, __ATOMIC_RELEASE);
}

void green__cpu_want(struct green__ctx *c)
{
    if (!__atomic_load_n(&green__cpu_wanted, __ATOMIC_RELAXED))
        __atomic_store_n(&green__cpu_wanted, true, __ATOMIC_RELAXED);
    if (c)
        green__cpu_start(c);
}

void green__cpu_switch(struct green__ctx *c, struct green_thread *from)
{
    if (from->is_hub)
        return;                    /* its time goes with the next slice */
    int64_t now = os_cpu_ns();
    int64_t d = now - c->cpu_stamp;
    if (d > 0)
        add_ns(from, d);
    __atomic_store_n(&c->cpu_stamp, now, __ATOMIC_RELEASE);
}

int64_t green__cpu_self(struct green__ctx *c, int64_t os_now)
{
    int64_t d = os_now - c->cpu_stamp;
    return __atomic_load_n(&c->current->cpu_ns, __ATOMIC_RELAXED) + (d > 0 ? d : 0);
}

void green__cpu_after_fork_child(struct green__ctx *c, struct green_thread *self)
{
    if (!c->cpu_turns)
        return;
    c->cpu_stamp = os_cpu_ns();
    __atomic_store_n(&self->cpu_ns, 0, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ clock ids */

#define SLOT_BITS 12                         /* 4096 slots per chunk */
#define CHUNKS (GREEN__CPUCLOCK_SLOTS >> SLOT_BITS)

/* A slot holds the thread struct it was handed out for; the struct is
 * still that thread's while its cpu_slot names the slot (a reused struct
 * starts zeroed, and gets another slot if asked). */
typedef struct green_thread *slot_t;

static slot_t *chunks[CHUNKS];
static uint32_t next_slot;                   /* slots handed out */

static slot_t *slot_at(uint32_t s, bool make)
{
    slot_t **cp = &chunks[s >> SLOT_BITS];
    slot_t *ch = __atomic_load_n(cp, __ATOMIC_ACQUIRE);
    if (!ch && make) {
        slot_t *n = calloc((size_t)1 << SLOT_BITS, sizeof *n);
        if (!n)
            return NULL;
        if (__atomic_compare_exchange_n(cp, &ch, n, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            ch = n;
        else
            free(n);               /* another thread made it first */
    }
    return ch ? &ch[s & ((1u << SLOT_BITS) - 1)] : NULL;
}

int green__cpu_clock_of(struct green_thread *t, clockid_t *out)
{
    uint32_t s1 = __atomic_load_n(&t->cpu_slot, __ATOMIC_ACQUIRE);
    if (!s1) {
        uint32_t s = __atomic_fetch_add(&next_slot, 1, __ATOMIC_RELAXED);
        if (s >= GREEN__CPUCLOCK_SLOTS)
            return EAGAIN;
        slot_t *e = slot_at(s, true);
        if (!e)
            return ENOMEM;
        __atomic_store_n(e, t, __ATOMIC_RELEASE);
        uint32_t none = 0;
        /* Two callers at once: the first slot stored wins; the other's
         * stays unused (slots are plentiful, never reused). */
        if (__atomic_compare_exchange_n(&t->cpu_slot, &none, s + 1, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            s1 = s + 1;
        else
            s1 = none;
    }
    *out = green__thread_clock(GREEN__CPUCLOCK_BASE + (s1 - 1));
    return 0;
}

bool green__cpu_clock_is_ours(clockid_t clk)
{
    if (clk >= 0 || !(clk & 4))
        return false;              /* not a per-thread CPU clock */
    unsigned tid = green__thread_clock_tid(clk);
    return tid >= GREEN__CPUCLOCK_BASE &&
           tid - GREEN__CPUCLOCK_BASE < GREEN__CPUCLOCK_SLOTS;
}

struct green_thread *green__cpu_clock_thread(clockid_t clk)
{
    uint32_t s = green__thread_clock_tid(clk) - GREEN__CPUCLOCK_BASE;
    if (s >= __atomic_load_n(&next_slot, __ATOMIC_RELAXED))
        return NULL;
    slot_t *e = slot_at(s, false);
    struct green_thread *t = e ? __atomic_load_n(e, __ATOMIC_ACQUIRE) : NULL;
    if (!t || __atomic_load_n(&t->cpu_slot, __ATOMIC_RELAXED) != s + 1 ||
        __atomic_load_n(&t->state, __ATOMIC_RELAXED) == GREEN_DONE ||
        __atomic_load_n(&t->gone, __ATOMIC_RELAXED))
        return NULL;               /* exited, or the struct is another's now */
    return t;
}

/* t's clock while it may be running on another hub h: the time counted
 * at its switches, plus, when it is h's current thread, h's OS thread's
 * clock since h's last switch. Consistent by h's sequence count (a switch
 * of h between our reads makes us read again): a thread's clock never
 * goes back, whoever reads it. */
static int64_t cpu_elsewhere(struct green_thread *t, struct green__ctx *h)
{
    for (unsigned tries = 0;; tries++) {
        unsigned s = __atomic_load_n(&h->cpu_seq, __ATOMIC_ACQUIRE);
        if (s & 1) {               /* h is in a switch: a few instructions */
            if (tries > 64)
                green__syscall(SYS_sched_yield);
            continue;
        }
        int64_t ns = __atomic_load_n(&t->cpu_ns, __ATOMIC_ACQUIRE);
        int64_t d = 0;
        if (__atomic_load_n(&h->current, __ATOMIC_ACQUIRE) == t) {
            int64_t stamp = __atomic_load_n(&h->cpu_stamp, __ATOMIC_ACQUIRE);
            struct timespec ts;
            if (green__syscall(SYS_clock_gettime, green__thread_clock((unsigned)__atomic_load_n(&h->tid, __ATOMIC_RELAXED)),
                               &ts) != 0)
                return ns;         /* h's OS thread is gone */
            d = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - stamp;
        }
        if (__atomic_load_n(&h->cpu_seq, __ATOMIC_ACQUIRE) == s)
            return ns + (d > 0 ? d : 0);
    }
}

int64_t green__cpu_of(struct green_thread *t, int64_t os_now)
{
    struct green__ctx *c = green__tls_ctx;
    if (c && t == c->current && c->cpu_turns)
        return green__cpu_self(c, os_now);
    struct green__ctx *h = __atomic_load_n(&t->ctx, __ATOMIC_RELAXED);
    if (h && h != c && __atomic_load_n(&h->cpu_turns, __ATOMIC_ACQUIRE))
        return cpu_elsewhere(t, h);
    return __atomic_load_n(&t->cpu_ns, __ATOMIC_RELAXED);
}

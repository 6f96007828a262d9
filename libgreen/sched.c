/*
 * sched.c - the scheduler: one hub per OS thread, the run queue, park/ready.
 *
 * What it is. Each OS thread that uses libgreen gets a green__ctx, created
 * lazily: the program's original stack becomes the "main" green thread and
 * a second green thread, the hub, runs a libev loop. Every other green
 * thread is spawned into the FIFO run queue of the ctx that placement
 * picks (hubs.c: the spawner's, or with N hubs another OS thread's), and
 * never leaves it.
 *
 * Who switches where. A green thread gives up the CPU only inside
 * schedule(): when it parks (green__park), yields, finishes, or switches
 * directly (green_switch). schedule() pops the head of the run queue, or
 * resumes the hub when the queue is empty. The hub polls libev (blocking
 * only when nothing is runnable), whose callbacks make parked threads
 * runnable with green__ready(), and then puts itself at the tail of the run
 * queue and runs the head. The hub itself never parks.
 *
 * Fairness. Whenever the run queue is not empty, the hub is in it
 * (ensure_hub_queued): each round of runnable threads is followed by one
 * turn of the hub, so threads that keep readying each other (ping-pong
 * over a channel) cannot starve I/O and timers. To keep yield cheap the
 * hub's non-blocking poll is skipped when the last one was less than
 * POLL_INTERVAL_NS ago, which bounds the extra latency a busy loop adds to
 * I/O to 50 us per round. Reading the clock itself (~25 ns here) was the
 * biggest cost of a hub turn, so while threads are runnable and no
 * deadline is pending the hub reads it only every clock_every-th turn:
 * clock_every doubles (up to 16) while turns are shorter than 1 us and
 * drops back to 1 after a longer one, which keeps the bound near 50 us.
 * A hub turn that would not read the clock (and so could expire and poll
 * nothing) is taken by schedule() itself, without the two switches.
 *
 * Invariants.
 *  - The hub is running, on the run queue (hub_queued), or idle-suspended
 *    in its loop; in all three cases switching to it is valid.
 *  - A thread is on the run queue iff its state is NEW or RUNNABLE.
 *  - green__ready wakes a PARKED thread only; the first wake wins and
 *    unlinks the thread's wait node, so a waker never pops a thread that a
 *    timeout or kill already woke (no lost wake-ups).
 *  - errno is saved when a thread switches out and restored when it
 *    switches back in: errno belongs to the green thread.
 *  - A finished thread cannot free the stack it runs on: it leaves itself in
 *    ctx->dead and the next thread to run recycles the stack.
 *  - Every switch away, the hub's included, begins with sched_enter and
 *    ends in the next thread's after_switch: between the two, ctx->current
 *    may name a thread whose stack is not the one running, so a signal
 *    handler must not run there (hooks/signal.c defers it).
 *
 * Priorities. A thread's rank (green_thread.sched_rank) is its realtime
 * priority, 1..99, under SCHED_FIFO or SCHED_RR, and 0 otherwise: the
 * pthread layer sets it from the attribute, pthread_setschedparam and
 * pthread_setschedprio. SCHED_OTHER, SCHED_BATCH and SCHED_IDLE all rank
 * 0 whatever their nice value: the kernel only weighs their shares of
 * CPU time, which a cooperative hub does not measure, and ordering them
 * would let a thread of nice 0 starve one of nice 1 forever. Once any
 * thread has a rank (green__prio_used, set for good), schedule() runs the
 * first runnable thread of the highest rank instead of the head
 * (green__runq_pick): among equals the queue stays FIFO, so SCHED_RR and
 * SCHED_FIFO act the same (a fair turn or a yield goes behind its
 * equals). The hub keeps its place: it runs when it is queued ahead of
 * that thread, so a realtime thread that yields in a loop still lets the
 * hub poll once per round, as the kernel keeps taking interrupts under a
 * busy realtime thread, while the threads of lower ranks wait. A thread
 * that makes a higher-ranked thread of its hub runnable (creates it,
 * raises it, releases a lock to it) lets it run at once
 * (green__prio_preempt, called by the pthread layer): that is the one
 * preemption natively observable on one CPU that a cooperative scheduler
 * can give, at the call that caused it. Nothing else is preempted. The
 * lock core (lock.c, "Priorities") orders its queues by the same rank.
 * Cost: while no rank was ever set, one load and a branch per pop; after
 * that a walk of the hub's run queue per switch (fine for the few threads
 * of a realtime program; rejected: one queue per rank, which would cost
 * every program a bitmap test on every push and pop).
 *
 * Deadlock. When nothing is runnable and libev has no active watcher and no
 * remote post is expected, no parked thread can ever wake. For the explicit
 * API the main green thread is woken with EDEADLK (as gevent raises
 * LoopExit). Under the LD_PRELOAD shim (block_on_deadlock) the process
 * blocks forever, as the same program would natively.
 *
 * Rejected: a hub that runs every thread itself (one extra switch per
 * wake-up); ucontext (a syscall per switch); one global run queue shared by
 * OS threads (locks on every switch; green threads stay on their OS thread,
 * as in gevent).
 *
 * Where it lives. This essay covers the scheduler as a whole: sched.c
 * (wait queues, park/ready, yield and fair turns), green_sched.h (the run
 * queue and the switch, inlined into the files that switch), hub.c (the
 * ctx, the hub's loop, remote posts), lifecycle.c (a thread's struct,
 * start and finish, kill, fork, run as) and log.c (log, panic, clock).
 * The wait queues stay beside park/ready, which inline them: in a file of
 * their own they cost a call per park and ready (+5% instructions per
 * green_switch under callgrind).
 */
#define _GNU_SOURCE
#include "green_sched.h"

/* ------------------------------------------------------------ wait queues */

void green__waitq_push(struct green__waitq *q, struct green__wnode *n)
{
    green__assert("waitq", n->q == NULL);
    n->q = q;
    n->next = NULL;
    n->prev = q->tail;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
}

void green__waitq_remove(struct green__wnode *n)
{
    struct green__waitq *q = n->q;
    if (!q)
        return;
    if (n->prev)
        n->prev->next = n->next;
    else
        q->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    n->next = n->prev = NULL;
    n->q = NULL;
}

struct green__wnode *green__waitq_pop(struct green__waitq *q)
{
    struct green__wnode *n = q->head;
    if (n)
        green__waitq_remove(n);
    return n;
}

int green__waitq_wake_all(struct green__waitq *q, int code)
{
    int k = 0;
    struct green__wnode *n;
    while ((n = green__waitq_pop(q))) {
        green__ready(n->t, code);
        k++;
    }
    return k;
}

int green__waitq_wake_one(struct green__waitq *q, int code)
{
    struct green__wnode *n = green__waitq_pop(q);
    if (!n)
        return 0;
    green__ready(n->t, code);
    return 1;
}

/* ------------------------------------------------------------ park/ready */

static int64_t scope_deadline(const struct green_thread *t)
{
    int64_t d = GREEN_FOREVER;
    for (const green_timeout_t *s = t->scopes; s; s = s->outer)
        if (s->deadline >= 0 && (d < 0 || s->deadline < d))
            d = s->deadline;
    return d;
}

static void mark_expired_scopes(struct green_thread *t, int64_t now)
{
    for (green_timeout_t *s = t->scopes; s; s = s->outer)
        if (s->deadline >= 0 && s->deadline <= now)
            s->expired = true;
}

/* A park that must not wait (t->kill_pending): its result. Out of line,
 * so that the park and yield fast paths only test one byte. */
static __attribute__((noinline, cold)) int park_refused(struct green_thread *t)
{
    if (t->kill_pending & GREEN__KP_SIGNAL)
        return EINTR;              /* see green__run_as */
    t->kill_pending = 0;
    return ECANCELED;
}

/* The common part of every park. next: thread to switch to directly, or
 * NULL to schedule. */
static int park_impl(enum green__why why, uintptr_t why_arg,
                     struct green__waitq *q, int64_t deadline,
                     struct green_thread *next)
{
    struct green__ctx *c = green__tls_ctx;
    struct green_thread *t = c->current;
    green__assert("hub", t != c->hub);
    if (green__unlikely(t->kill_pending))
        return park_refused(t);
    /* In an interruptible hooked call (hooks/signal.c marked it), a
     * handler that already ran for this thread since the call began (while
     * it ran between two parks of the call, or after a deadline had woken
     * it) interrupts this park at once: natively the call was one wait in
     * the kernel, which the signal would have interrupted. */
    if (green__unlikely(t->intr_gen && t->sig_handled != t->intr_mark))
        return EINTR;
    int64_t sd = scope_deadline(t);
    int64_t eff = deadline;
    if (sd >= 0 && (eff < 0 || sd < eff))
        eff = sd;
    /* Read the clock only for a deadline: a park without one (join,
     * switch, a lock) costs no clock_gettime, and park_since can be the
     * hub's last poll time, which green_dump only needs roughly. */
    int64_t now = c->last_poll;
    if (eff >= 0) {
        now = green_now();
        if (eff <= now) {
            mark_expired_scopes(t, now);
            return ETIMEDOUT;
        }
    }
    sched_enter(c);
    if (q) {
        t->wnode.t = t;
        green__waitq_push(q, &t->wnode);
    }
    t->state = GREEN_PARKED;
    t->why = why;
    t->why_arg = why_arg;
    t->park_since = now;
    t->wake_code = 0;
    if (eff >= 0 && green__timer_add(c, t, eff) != 0) {
        green__waitq_remove(&t->wnode);
        t->state = GREEN_RUNNING;
        c->sched_busy = false;
        return ENOMEM;
    }
    if (next) {
        /* green_switch: next is NEW (queued) or parked in a switch. */
        if (next->state == GREEN_NEW)
            runq_remove(c, next);
        else
            next->wake_code = 0;
        switch_to(c, next);
    } else
        schedule(c);
    c = t->ctx;
    green__timer_remove(c, t);
    green__waitq_remove(&t->wnode);
    t->why = GREEN_WHY_NONE;
    int code = t->wake_code;
    /* Blame the deadline that fired (eff), not every scope that has
     * passed by now: a park that ended at its own, earlier deadline must
     * not mark an enclosing scope expired just because the wake-up came
     * late. */
    if (code == ETIMEDOUT)
        mark_expired_scopes(t, eff);
    /* Signal handlers that interrupted this park run now, as t, on its
     * own stack, where they may block (hooks/signal.c, deliver). */
    green__run_resume(t);
    return code;
}

int green__park(enum green__why why, uintptr_t why_arg,
                struct green__waitq *q, int64_t deadline)
{
    return park_impl(why, why_arg, q, deadline, NULL);
}

void green__ready(struct green_thread *t, int code)
{
    if (t->state != GREEN_PARKED)
        return;
    struct green__ctx *c = t->ctx;
    green__waitq_remove(&t->wnode);
    if (t->lwait)
        green__lock_cancel(t->lwait);
    t->wake_code = code;
    t->state = GREEN_RUNNABLE;
    runq_push(c, t);
    ensure_hub_queued(c);
}

/* -------------------------------------------------------------- priorities */

bool green__prio_used;

void green__sched_rank_set(struct green_thread *t, int rank)
{
    if (rank > 0 && !__atomic_load_n(&green__prio_used, __ATOMIC_RELAXED))
        __atomic_store_n(&green__prio_used, true, __ATOMIC_RELAXED);
    __atomic_store_n(&t->sched_rank, rank, __ATOMIC_RELAXED);
}

/* The first queued thread of the highest rank, or the hub when it is
 * queued ahead of that thread (the essay: "Priorities"), unlinked. */
struct green_thread *green__runq_pick(struct green__ctx *c)
{
    struct green_thread *best = NULL;
    bool hub_seen = false, hub_first = false;
    int top = -1;
    for (struct green_thread *t = c->runq_head; t; t = t->runq_next) {
        if (t == c->hub) {
            hub_seen = true;
            continue;
        }
        int r = green__sched_rank(t);
        if (r > top) {
            top = r;
            best = t;
            hub_first = hub_seen;
        }
    }
    struct green_thread *t = best && !hub_first ? best : c->hub;   /* no best:
                                                                       the hub alone */
    runq_remove(c, t);
    return t;
}

/* ------------------------------------------------- yield and fair turns */

/* The running thread goes to the back of the run queue and runs again
 * in turn (inline: green_yield is a hot path). */
static inline void requeue_self(struct green__ctx *c)
{
    struct green_thread *t = c->current;
    sched_enter(c);
    t->state = GREEN_RUNNABLE;
    runq_push(c, t);
    ensure_hub_queued(c);
    schedule(c);
    green__run_resume(t);
}

int green_yield(void)
{
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return -1;
    struct green_thread *t = c->current;
    if (green__unlikely(t->kill_pending)) {
        int code = park_refused(t);
        if (code == EINTR)
            return 0;              /* see green__run_as: no yield */
        errno = code;
        return -1;
    }
    requeue_self(c);
    return 0;
}

bool green__runq_idle(void)
{
    struct green__ctx *c = green__tls_ctx;
    return !c || !c->runq_head || (c->runq_head == c->hub && c->runq_tail == c->hub);
}

/* The clock part of green__fair_turn. */
void green__fair_check(struct green__ctx *c, struct green_thread *t)
{
    if (c->switching)
        return;   /* called from inside a switch (ASan's fiber hooks) */
    int64_t now = green__coarse_now();
    t->slice_left = GREEN__SLICE_EVERY;
    if (t->slice_start == 0)
        t->slice_start = now;
    else if (now - t->slice_start >= GREEN__SLICE_NS)
        green__fair_yield(c);
}

/* Go to the back of the run queue: green_yield once it has checked for a
 * pending kill, and a fair turn when a slice is over (green__fair_turn),
 * which leaves a pending kill for the next real park. */
void green__fair_yield(struct green__ctx *c)
{
    requeue_self(c);
}

/* Direct switch for green_switch: suspend the caller in a SWITCH park and
 * run t (NEW, or parked in a switch) at once. Returns the park's code. */
int green__switch_direct(struct green_thread *t, void *value)
{
    t->switch_value = value;
    t->switched_to = true;
    return park_impl(GREEN_WHY_SWITCH, (uintptr_t)t, NULL, GREEN_FOREVER, t);
}

/* A higher-ranked thread of this hub is runnable: it runs first. */
void green__prio_preempt_slow(void)
{
    struct green__ctx *c = green__tls_ctx;
    if (!c || c->current == c->hub || c->sched_busy)
        return;
    struct green_thread *t = c->current;
    if (t->handler_depth)
        return;   /* a signal handler running as t: not a place to yield */
    int mine = green__sched_rank(t);
    for (struct green_thread *x = c->runq_head; x; x = x->runq_next)
        if (x != c->hub && green__sched_rank(x) > mine) {
            green__fair_yield(c);   /* not requeue_self: a third caller
                                       would stop its inlining into
                                       green_yield (+13 instructions) */
            return;
        }
}

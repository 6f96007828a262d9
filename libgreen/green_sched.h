/*
 * green_sched.h - the scheduler's inline core: the run queue and the
 * switch. The essay (who switches where, fairness, the invariants) is at
 * the top of sched.c.
 *
 * Private to the three files on the switch path: sched.c (park, ready,
 * yield), hub.c (the hub's loop) and lifecycle.c (a thread's first and
 * last switch); no other module includes it, they park and ready through
 * green_internal.h. Everything here was static in hub.c when these files
 * were one; it stays static inline so that every file gets its own
 * inlined copy and a park, a yield or a switch costs no call across files.
 *
 * Rejected: green__-named out-of-line versions in green_internal.h (a call
 * and a return on the hottest path of the project, and run queue access
 * for modules that must only park and ready).
 */
#ifndef GREEN_SCHED_H
#define GREEN_SCHED_H

#include "green_internal.h"
#include "arch/switch.h"

#ifdef GREEN_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef GREEN_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* -------------------------------------------------------------- run queue */

static inline void runq_push(struct green__ctx *c, struct green_thread *t)
{
    green__assert("hub", !t->on_runq);
    t->on_runq = true;
    t->runq_next = NULL;
    t->runq_prev = c->runq_tail;
    if (c->runq_tail)
        c->runq_tail->runq_next = t;
    else
        c->runq_head = t;
    c->runq_tail = t;
}

static inline void runq_remove(struct green__ctx *c, struct green_thread *t)
{
    if (!t->on_runq)
        return;
    if (t->runq_prev)
        t->runq_prev->runq_next = t->runq_next;
    else
        c->runq_head = t->runq_next;
    if (t->runq_next)
        t->runq_next->runq_prev = t->runq_prev;
    else
        c->runq_tail = t->runq_prev;
    t->runq_next = t->runq_prev = NULL;
    t->on_runq = false;
    if (t == c->hub)
        c->hub_queued = false;
}

/* Unlink and return the thread to run next once ranks are in use
 * (sched.c, "Priorities"); the queue is not empty. Out of line, so that
 * the plain pop below stays the head's unlinking that it was. */
GREEN_HIDDEN struct green_thread *green__runq_pick(struct green__ctx *c);

static inline struct green_thread *runq_pop(struct green__ctx *c)
{
    struct green_thread *t = c->runq_head;
    if (green__unlikely(__atomic_load_n(&green__prio_used, __ATOMIC_RELAXED)) && t)
        return green__runq_pick(c);
    if (t)
        runq_remove(c, t);
    return t;
}

/* Keep the hub in the queue whenever the queue is not empty (fairness). */
static inline void ensure_hub_queued(struct green__ctx *c)
{
    if (!c->hub_queued && c->current != c->hub) {
        c->hub_queued = true;
        c->hub->state = GREEN_RUNNABLE;
        runq_push(c, c->hub);
    }
}

/* --------------------------------------------------------------- switching */

static inline void asan_start(struct green_thread *from, struct green_thread *to)
{
#ifdef GREEN_ASAN
    __sanitizer_start_switch_fiber(
        from->state == GREEN_DONE ? NULL : &from->asan_fake_stack,
        to->asan_bottom, to->asan_size);
#else
    (void)from; (void)to;
#endif
}

static inline void asan_finish(struct green_thread *t)
{
#ifdef GREEN_ASAN
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(t->asan_fake_stack, &bottom, &size);
    /* The first switch away from an adopted OS stack tells us its bounds. */
    struct green__ctx *c = t->ctx;
    struct green_thread *prev = c->prev_for_asan;
    if (prev && !prev->asan_bottom) {
        prev->asan_bottom = bottom;
        prev->asan_size = size;
    }
#else
    (void)t;
#endif
}

/* TSan: each green thread is a fiber, or TSan would see one thread per
 * hub (every access of every green thread of a hub ordered, races between
 * them unseen, and one shadow call stack shared by all). Main, or any
 * adopted stack, is the OS thread's own fiber, taken at its first switch
 * away; the hub's fiber is made at the first switch to it (hub.c makes
 * the hub before TSan could be asked); every other thread's is made in
 * lifecycle.c with its stack. The switch synchronises (flags 0): on one
 * OS thread, what ran before the switch happened before what runs after. */
static inline void tsan_switch(struct green_thread *from, struct green_thread *to)
{
#ifdef GREEN_TSAN
    if (!from->tsan_fiber)
        from->tsan_fiber = __tsan_get_current_fiber();
    if (!to->tsan_fiber)
        to->tsan_fiber = __tsan_create_fiber(0);
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#else
    (void)from; (void)to;
#endif
}

/* Recycle the stack of the thread that finished last (c->dead; see the
 * invariants in sched.c) and free its struct if it was detached. */
static inline void reap_dead(struct green__ctx *c)
{
    struct green_thread *d = c->dead;
    c->dead = NULL;
#ifdef GREEN_TSAN
    __tsan_destroy_fiber(d->tsan_fiber);   /* not current: we switched away */
    d->tsan_fiber = NULL;
#endif
    if (!d->user_stack)
        green__stack_put(&d->stack);
    if (d->detached)
        green__thread_free(d);
}

/* Code every thread runs right after it gets the CPU back. */
static inline void after_switch(struct green_thread *self)
{
    struct green__ctx *c = self->ctx;
    asan_finish(self);
#ifdef GREEN_ASAN
    c->switching = false;
#endif
    if (c->dead)
        reap_dead(c);
    *green__errno_now() = self->saved_errno;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    c->sched_busy = false;         /* see sched_enter */
}

/* From here until the thread resumes (after_switch), a signal handler
 * that the kernel runs on this OS thread finds the run queue or the
 * thread's state half changed, or c->current already naming the next
 * thread while the stack is still the old one's (switch_to): it must not
 * run the program's handler (which may park, or end the thread);
 * hooks/signal.c defers it. Every switch away enters it first, the hub's
 * included (hub_main). */
static inline void sched_enter(struct green__ctx *c)
{
    c->sched_busy = true;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* Switch from the current thread to next. The caller has already set the
 * current thread's state (and queued it, for a yield). */
static inline void switch_to(struct green__ctx *c, struct green_thread *next)
{
    struct green_thread *self = c->current;
    atomic_store_explicit(&c->switches, atomic_load_explicit(&c->switches, memory_order_relaxed) + 1, memory_order_relaxed);
    if (next == self) {
        self->state = GREEN_RUNNING;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        c->sched_busy = false;
        return;
    }
    self->saved_errno = *green__errno_now();
    green__switch_turns(c, self, next);
    next->state = GREEN_RUNNING;
    __atomic_store_n(&c->current, next, __ATOMIC_RELEASE);   /* read by cpuclock.c */
    green__switch_done(c);
#ifdef GREEN_ASAN
    c->prev_for_asan = self;
#endif
#ifdef GREEN_ASAN
    c->switching = true;   /* the ASan runtime may call hooked functions */
#endif
    asan_start(self, next);
    tsan_switch(self, next);
    green__ctx_switch(&self->sp, next->sp);
    after_switch(self);
}

/* The hub's clock-reading period (hub_clock in hub.c): turns left before
 * it reads the clock again, the current period, and the last reading. */
extern __thread int64_t green__hub_last GREEN_HIDDEN;
extern __thread unsigned green__hub_skip GREEN_HIDDEN;
extern __thread unsigned green__hub_every GREEN_HIDDEN;

/* Give the CPU to the next runnable thread, or to the hub. */
static inline void schedule(struct green__ctx *c)
{
    struct green_thread *next = runq_pop(c);
    if (next == c->hub && c->runq_head && !c->theap_n && green__hub_skip > 0) {
        /* A hub turn that would read no clock, expire no deadline and
         * poll nothing (see hub_clock) is only two switches: take it here
         * without switching. The hub keeps its place at the tail. */
        green__hub_skip--;
        runq_push(c, next);
        c->hub_queued = true;
        next = runq_pop(c);
    }
    if (!next)
        next = c->hub;
    switch_to(c, next);
}

/* Signal handlers queued for t while it waited or sat on the run queue
 * (hooks/signal.c, deliver) run as t where it resumes: the end of a park,
 * of a yield or a fair turn, or the start of a new thread. */
static inline void green__run_resume(struct green_thread *t)
{
    if (green__unlikely(t->sig_resume != NULL || t->sig_resume_bits) &&
        green__on_resume)
        green__on_resume(t);
}

#endif /* GREEN_SCHED_H */

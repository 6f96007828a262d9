/*
 * hub.c - the hub: the per-OS-thread ctx, created on first use, and the
 * green thread that runs its libev loop; and remote posts, the one way
 * another OS thread reaches a ctx.
 *
 * Each turn the hub expires deadlines, polls libev (without blocking
 * while threads are runnable, and then at most every POLL_INTERVAL_NS),
 * lets hooks/signal.c run handlers, and queues itself behind the runnable
 * threads; with nothing runnable it blocks in libev, and when nothing can
 * ever wake a parked thread it reports the deadlock. The hub never parks.
 * Before it blocks it takes a second look (hub_second_look): it lets the
 * OS run another thread once and polls again without waiting.
 * How it shares the CPU with the run queue, why its clock reads are
 * rationed, and the invariants it keeps: the essay at the top of sched.c.
 *
 * What was rejected for the hub (running every thread itself, one run
 * queue shared by OS threads) is with the rest of the design, in sched.c.
 */
#define _GNU_SOURCE
#include "green_sched.h"
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define POLL_INTERVAL_NS 50000

__thread struct green__ctx *green__tls_ctx __attribute__((tls_model("initial-exec")));
__thread int green__in_libev __attribute__((tls_model("initial-exec")));
atomic_int green__hubs_made;
/* Set by the signal hooks (hooks/signal.c) when they wrap a handler. */
void (*volatile green__on_signal)(struct green__ctx *c);
void (*green__on_resume)(struct green_thread *t);
void (*green__on_ctx_made)(struct green__ctx *c);

/* ---------------------------------------------------------- remote posts */

/* A lock-free stack: posters push with a compare-and-swap, the hub takes
 * the whole list with one exchange. libev's ev_async_send writes the
 * eventfd only when the hub sleeps in (or is about to enter) epoll_wait;
 * a busy hub sees the flag at its next poll. */
void green__remote_post(struct green__ctx *c, struct green__remote *r)
{
    r->next = atomic_load_explicit(&c->remote_head, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&c->remote_head, &r->next, r,
                                                  memory_order_release,
                                                  memory_order_relaxed))
        ;
    green__async_send(c->loop, &c->async);
}

void green__remote_expect(struct green__ctx *c, int delta)
{
    /* The async watcher is unref'd while idle so that it does not hide a
     * deadlock; it holds a reference while remote posts are expected. */
    int before = c->refs_remote;
    c->refs_remote += delta;
    if (before == 0 && c->refs_remote > 0)
        ev_ref(c->loop);
    else if (before > 0 && c->refs_remote == 0)
        ev_unref(c->loop);
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop; (void)revents;
    struct green__ctx *c = w->data;
    struct green__remote *r = atomic_exchange_explicit(&c->remote_head, NULL,
                                                       memory_order_acquire);
    /* Posted LIFO; run in posting order. */
    struct green__remote *rev = NULL;
    while (r) {
        struct green__remote *n = r->next;
        r->next = rev;
        rev = r;
        r = n;
    }
    while (rev) {
        struct green__remote *n = rev->next;
        rev->run(rev);
        rev = n;
    }
}

/* ------------------------------------------------------------------ hub */

static void deadlock(struct green__ctx *c)
{
    if (c->block_on_deadlock) {
        /* The same program without the shim would hang here too, until a
         * signal handler wakes a thread (it runs as its thread from the
         * hub: green__on_signal). */
        for (;;) {
            GREEN_REAL(pause)();
            if (green__on_signal)
                green__on_signal(c);
            if (c->runq_head)
                return;
        }
    }
    if (c->main->state == GREEN_PARKED) {
        green__ready(c->main, EDEADLK);
        return;
    }
    green__panic("hub", __FILE__, __LINE__,
                 "deadlock while the main green thread is not parked");
}
/* The clock-reading period of hub_clock (declared in green_sched.h, where
 * schedule() takes the turns that would read no clock). */
__thread int64_t green__hub_last;
__thread unsigned green__hub_skip, green__hub_every = 1;

/* The hub's view of the time for this turn (see the essay on fairness). */
static int64_t hub_clock(struct green__ctx *c)
{
    if (c->theap_n || !c->runq_head || green__hub_skip == 0) {
        int64_t now = green_now();
        if (now - green__hub_last < (int64_t)green__hub_every * 1000)
            green__hub_every = green__hub_every < 16 ? green__hub_every * 2 : 16;
        else
            green__hub_every = 1;
        green__hub_skip = green__hub_every - 1;
        green__hub_last = now;
        return now;
    }
    green__hub_skip--;
    return green__hub_last;
}

/* ev_run, letting libev rebuild its descriptors after a fork (its epoll
 * fd, async eventfd) through the hooks, which mark the new ones.
 *
 * libev also remakes its epoll set on its own, with no fork: when an
 * event arrives from a registration older than the one it made last for
 * that number (the generation libev keeps in each event's data). The
 * kernel drops a registration only when the file itself goes, so a file
 * the program closed that lives on (a dup, a forked child's copy, a
 * descriptor in flight) keeps its old registration under its old number;
 * once the program waits on a new file with that number and the old file
 * becomes ready, libev sees the old generation, and at the top of its next
 * iteration closes its epoll fd and makes a new set (ev_epoll.c,
 * epoll_fork). The close hook recognises that close (hooks/io_fd.c: the
 * epoll fd libev made on this OS thread, closed on the hub's context,
 * where no program code runs) and calls green__libev_rebuild_begin, which
 * raises green__in_libev for the rest of the ev_run: the new set is moved
 * out of the program's numbers and marked, as after a fork. Before, the
 * close was refused as the program's, the old set leaked and the new one
 * took the program's lowest free number. */
bool green__libev_rebuild_begin(void)
{
    struct green__ctx *c = green__tls_ctx;
    if (!c || c->current != c->hub || c->libev_raised)
        return false;
    c->libev_raised = true;
    green__in_libev++;
    return true;
}

static int hub_poll(struct green__ctx *c, int flags)
{
    if (green__unlikely(c->libev_refork)) {
        c->libev_refork = false;
        c->libev_raised = true;
        green__in_libev++;
        /* The child's first turn of libev never waits. The fork copied
         * libev's async flags as they were: a wake-up that reached the
         * parent's hub after its last poll had returned (a signal handler
         * interrupting epoll_wait, a post racing its return) left
         * async_pending set and its eventfd written, for a callback that
         * had not run yet. libev's fork handling queues that callback on
         * the new eventfd but, in the same turn, may sleep in epoll_wait
         * first; meanwhile every ev_async_send in the child sees the flag
         * already set and writes nothing, so a worker's or another hub's
         * wake-up was lost until a timer or signal came. A turn without
         * waiting runs the queued callback, which clears the flags; the
         * hub's next turn sleeps if it has nothing to run. */
        flags = EVRUN_NOWAIT;
    }
    int alive = ev_run(c->loop, flags);
    if (green__unlikely(c->libev_raised)) {
        c->libev_raised = false;
        green__in_libev--;
    }
    return alive;
}

/* Arm the timerfd for the earliest deadline before blocking. Re-arming is
 * a system call, and an event loop that derives its epoll_wait timeout in
 * milliseconds from a fixed next event (redis: the time left to its next
 * cron) asks for a deadline a few microseconds off the last one at every
 * call: one timerfd_settime per request (perf stat: 1.00 per GET at one
 * connection). A timerfd armed at most ARM_SLACK_NS before the earliest
 * deadline is kept: it may fire a little early, the hub then expires
 * nothing and arms again (timerfd_cb forgets the armed time, so it cannot
 * spin), one extra wake-up instead of a system call per poll. Never armed
 * later than a deadline. */
#define ARM_SLACK_NS 1000000
static void hub_arm(struct green__ctx *c)
{
    if (c->theap_n && c->tfd_armed > 0) {
        int64_t want = c->theap[0]->deadline;
        if (c->tfd_armed <= want && want - c->tfd_armed < ARM_SLACK_NS)
            return;
    }
    green__timers_arm(c);
}

/* Before the hub sleeps: give the CPU to the OS once (sched_yield) and
 * poll again without waiting; ev_run's result. The hub then ends its
 * turn as after any poll (deadlines, signals) and sleeps only in its next
 * idle turn: a wake-up the second look consumed (a signal recorded for
 * green__on_signal, a post) must not be slept through.
 *
 * Why. A daemon's request usually comes from a client on the same
 * machine or answers a write the hub just made: the client needs the CPU
 * for a few microseconds to send it. Sleeping in epoll_wait at once
 * costs a context switch and a wake-up per request; with two hubs each
 * finds fewer requests per wake-up and sleeps more (memcached -t 4: 0.33
 * blocking epoll_wait per request with two hubs, 0.002 with one). The
 * yield lets the client run now, on this CPU if it is waiting for one,
 * and the second poll takes what it sent. memcached -t 4, two hubs,
 * bench/memcached.sh alternating the builds for 9 rounds: 0.96x native
 * without, 1.33x with. Only a client in the hub's scheduling group gets
 * the CPU from the yield: with the kernel's autogroups a daemon started
 * in a session of its own (tools/compat, a service) measured alike with
 * and without (README, "Real daemons"); there SCHED_BATCH is what helps
 * (hubpolicy.c).
 *
 * Cost: two system calls (sched_yield, a non-blocking epoll_wait) per
 * look. A look that finds nothing doubles the number of sleeps before
 * the next one (up to LOOK_EVERY_MAX), one that finds a thread to run
 * brings it back to every sleep: a strict ping-pong whose client answers
 * only after its own round trip (redis-benchmark at one connection: 2
 * system calls more per request while it looked every time) looks once
 * in 64 sleeps. With nothing else runnable on the CPU the yield returns
 * at once.
 *
 * Rejected: spinning on the poll for a while (Go's idle processors spin
 * up to tens of microseconds): on two cores shared with the load
 * generator the spinning hub takes the CPU its client needs. */
#define LOOK_EVERY_MAX 64
static int hub_second_look(struct green__ctx *c)
{
    GREEN_REAL(sched_yield)();
    int alive = hub_poll(c, EVRUN_NOWAIT);
    if (c->runq_head)
        c->look_every = 1;
    else if (c->look_every < LOOK_EVERY_MAX)
        c->look_every = c->look_every ? c->look_every * 2 : 2;
    c->look_skip = c->look_every - 1;
    return alive;
}

static void hub_main(void *arg)
{
    struct green__ctx *c = arg;
    after_switch(c->hub);
    for (;;) {
        int alive = 1;
        bool polled = true;
        int64_t now = hub_clock(c);
        green__timers_expire(c, now);
        if (c->runq_head) {
            c->looked = false;
            if (now - c->last_poll >= POLL_INTERVAL_NS) {
                c->last_poll = now;
                alive = hub_poll(c, EVRUN_NOWAIT);
            } else {
                polled = false;
            }
        } else if (!c->looked && c->look_skip == 0) {
            /* The second look (hub_second_look): this turn polls without
             * waiting after a yield; what it found (a thread readied, a
             * signal recorded for on_signal below) is handled as after any
             * poll, and the next idle turn sleeps. */
            c->looked = true;
            alive = hub_second_look(c);
            c->last_poll = green_now();
        } else {
            if (c->look_skip > 0)
                c->look_skip--;
            c->looked = false;
            hub_arm(c);
            /* The timerfd watcher is unref'd; with deadlines pending but
             * no other active watcher libev would poll with a zero
             * timeout and the hub would spin: hold a reference. */
            bool hold_for_deadlines = c->theap_n > 0;
            if (hold_for_deadlines)
                ev_ref(c->loop);
            alive = hub_poll(c, EVRUN_ONCE);
            if (hold_for_deadlines)
                ev_unref(c->loop);
            c->last_poll = green_now();
        }
        alive = alive || c->theap_n > 0;
        if (polled) {
            if (green__tls_on)
                green__tls_check(c);   /* modules dlopen'd since (tls.c) */
            if (green__unlikely(__atomic_load_n(&green__cpu_wanted, __ATOMIC_RELAXED)) &&
                !c->cpu_turns)
                green__cpu_start(c);   /* a thread CPU clock was asked for
                                          on another hub (cpuclock.c) */
        }
        if (green__on_signal)
            green__on_signal(c);   /* may ready a thread with EINTR */
        if (c->runq_head) {
            /* As every switch away from a thread: switch_to names the next
             * thread current before the stacks change, and a signal the
             * kernel delivers in between must not run that thread's
             * handler here, on the hub's stack (a handler that ended its
             * thread with pthread_exit left the hub's saved context stale,
             * and the hub crashed when it was resumed). */
            sched_enter(c);
            c->hub_queued = true;
            c->hub->state = GREEN_RUNNABLE;
            runq_push(c, c->hub);
            schedule(c);
        } else if (!alive) {
            deadlock(c);
        }
    }
}
static __attribute__((noinline, cold)) struct green__ctx *ctx_create(void)
{
    green__settings_once();
    struct green__ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    green__in_libev++;             /* libev's own fds: see green_internal.h */
    c->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOSIGMASK |
                          EVFLAG_NOINOTIFY);
    if (!c->loop)
        c->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    green__in_libev--;
    if (!c->loop)
        goto fail;
    /* Under the shim the main thread is the program's: its name is the
     * OS thread's comm, as pthread_getname_np says natively. */
    char comm[16] = "main";
    if (green__preloaded)
        GREEN_REAL(prctl)(PR_GET_NAME, (unsigned long)comm, 0UL, 0UL, 0UL);
    c->main = green__thread_alloc(c, comm);
    c->hub = green__thread_alloc(c, "hub");
    if (!c->main || !c->hub)
        goto fail;
    atomic_fetch_add_explicit(&green__hubs_made, 1, memory_order_relaxed);
    c->hub_index = -1;             /* not in the hub set (hubs.c) */
    c->main->is_main = true;
    c->main->state = GREEN_RUNNING;
    /* The program's original thread keeps the mask it had (hooks/signal.c
     * keeps one per green thread from now on). */
    uint64_t km = 0;
    green__syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &km, sizeof km);
    c->main->sig_blocked = km;
    c->hub->is_hub = true;
    if (green__stack_get(&c->hub->stack, 0, 0) != 0)
        goto fail;
#ifdef GREEN_ASAN
    c->hub->asan_bottom = c->hub->stack.lo;
    c->hub->asan_size = (size_t)((char *)c->hub->stack.hi - (char *)c->hub->stack.lo);
#endif
    c->hub->sp = green__ctx_make(c->hub->stack.lo, c->hub->stack.hi, hub_main, c);
    c->hub->state = GREEN_RUNNABLE;
    c->current = c->main;
    c->pid = getpid();
    c->tid = (pid_t)green__syscall(SYS_gettid);
    green__hubpolicy_enter(c);
    c->last_poll = green_now();   /* parks before the first poll date from here */
    green__all_link(c, c->main);
    if (green__timers_init(c) != 0)
        goto fail;
    ev_async_init(&c->async, async_cb);
    c->async.data = c;
    green__in_libev++;   /* creates libev's eventfd; fd_intern marks it */
    ev_async_start(c->loop, &c->async);
    green__in_libev--;
    ev_unref(c->loop);   /* see green__remote_expect */
    c->block_on_deadlock = green__block_on_deadlock;
    stack_t prior;
    if (green__stack_install_overflow_handler(&prior)) {
        /* The program's first thread set an alternate signal stack: its
         * own, kept installed while it runs (hooks/signal.c). */
        struct green__alt *a = calloc(1, sizeof *a);
        if (a) {
            *a = (struct green__alt){ .sp = prior.ss_sp, .size = prior.ss_size,
                                      .flags = prior.ss_flags & (int)SS_AUTODISARM };
            c->main->alt = a;
            c->alt_sp = a->sp;
            c->alt_size = a->size;
            c->alt_turns = true;
        }
    }
    static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
    GREEN_REAL(pthread_once)(&fork_once, green__register_atfork);
    green__tls_ctx_init(c);
    green__ctx_register(c);
    if (green__on_ctx_made)
        green__on_ctx_made(c);
    return c;
fail:
    if (c->hub && c->hub->stack.lo)
        green__stack_put(&c->hub->stack);
    free(c->main);
    free(c->hub);
    if (c->loop) {
        green__in_libev++;         /* the close hook lets libev's fds go */
        ev_loop_destroy(c->loop);
        green__in_libev--;
    }
    free(c);
    return NULL;
}

/* The first green__ctx_get of an OS thread. Out of line so that the fast
 * path (a TLS load and a test, on every green_switch, yield and spawn)
 * needs no stack frame wherever its callers are: GCC split the slow path
 * out by itself only while green__ctx_get had callers in its own file,
 * and without that the frame cost 7 instructions per call (callgrind,
 * bench_switch). */
static __attribute__((noinline, cold)) struct green__ctx *ctx_first(void)
{
    struct green__ctx *c = ctx_create();
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    green__tls_ctx = c;
    return c;
}

struct green__ctx *green__ctx_get(void)
{
    struct green__ctx *c = green__tls_ctx;
    if (green__likely(c != NULL))
        return c;
    return ctx_first();
}

/*
 * timer.c - park deadlines: a binary min-heap per hub and one timerfd.
 *
 * Why not libev timers: libev hands epoll_wait a timeout in whole
 * milliseconds (rounded up), so a 100 us sleep would take over 1 ms. A
 * timerfd armed at the earliest deadline (absolute CLOCK_MONOTONIC, ns)
 * wakes the hub's epoll_wait exactly on time, which gives green_sleep and
 * every timed wait sub-millisecond resolution.
 *
 * Cost: the timerfd is re-armed (one timerfd_settime) only when the hub is
 * about to block and the earliest deadline differs from the one armed.
 * Threads that park with a later deadline than the earliest (1,000 threads
 * each sleeping 100 ms) cost a heap insert and no syscall. Re-arming also
 * clears the timerfd's expiration count, so it is never read.
 *
 * A deadline never fires early: expiry compares with green_now() itself.
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

static void heap_swap(struct green__ctx *c, size_t a, size_t b)
{
    struct green_thread *ta = c->theap[a], *tb = c->theap[b];
    c->theap[a] = tb;
    c->theap[b] = ta;
    tb->heap_idx = a + 1;
    ta->heap_idx = b + 1;
}

static void sift_up(struct green__ctx *c, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (c->theap[p]->deadline <= c->theap[i]->deadline)
            break;
        heap_swap(c, i, p);
        i = p;
    }
}

static void sift_down(struct green__ctx *c, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->theap_n && c->theap[l]->deadline < c->theap[m]->deadline)
            m = l;
        if (r < c->theap_n && c->theap[r]->deadline < c->theap[m]->deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(c, i, m);
        i = m;
    }
}

int green__timer_add(struct green__ctx *c, struct green_thread *t, int64_t deadline)
{
    if (c->theap_n == c->theap_cap) {
        size_t cap = c->theap_cap ? c->theap_cap * 2 : 64;
        struct green_thread **h = realloc(c->theap, cap * sizeof *h);
        if (!h)
            return ENOMEM;
        c->theap = h;
        c->theap_cap = cap;
    }
    t->deadline = deadline;
    c->theap[c->theap_n] = t;
    t->heap_idx = ++c->theap_n;
    sift_up(c, c->theap_n - 1);
    return 0;
}

void green__timer_remove(struct green__ctx *c, struct green_thread *t)
{
    if (!t->heap_idx)
        return;
    size_t i = t->heap_idx - 1;
    t->heap_idx = 0;
    c->theap_n--;
    if (i == c->theap_n)
        return;
    c->theap[i] = c->theap[c->theap_n];
    c->theap[i]->heap_idx = i + 1;
    sift_down(c, i);
    sift_up(c, i);
}

/* Wake every thread whose deadline has passed. */
void green__timers_expire(struct green__ctx *c, int64_t now)
{
    while (c->theap_n && c->theap[0]->deadline <= now) {
        struct green_thread *t = c->theap[0];
        green__timer_remove(c, t);
        green__ready(t, ETIMEDOUT);
    }
}

static void timerfd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop; (void)revents;
    struct green__ctx *c = w->data;
    /* Fired: the timerfd stays readable (its expiration count is never
     * read) until the next timerfd_settime. Record it as armed at 0,
     * which differs from any deadline and from GREEN_FOREVER, so that
     * green__timers_arm always re-arms or disarms it before the hub
     * blocks. Recording GREEN_FOREVER here made the hub skip the disarm
     * when no deadline was left, and epoll_wait returned at once for ever:
     * an idle hub spun at full CPU after its first timeout. */
    c->tfd_armed = 0;
    green__timers_expire(c, green_now());
}

/* Called by the hub right before it blocks in epoll_wait. */
void green__timers_arm(struct green__ctx *c)
{
    int64_t want = c->theap_n ? c->theap[0]->deadline : GREEN_FOREVER;
    if (want == c->tfd_armed || c->tfd < 0)
        return;
    if (want == GREEN_FOREVER && c->tfd_armed == GREEN_FOREVER)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (want != GREEN_FOREVER) {
        its.it_value.tv_sec = want / 1000000000;
        its.it_value.tv_nsec = want % 1000000000;
        if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
            its.it_value.tv_nsec = 1;
    }
    timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    c->tfd_armed = want;
}

int green__timers_init(struct green__ctx *c)
{
    c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (c->tfd < 0)
        return errno;
    c->tfd = green__fd_hide(c->tfd);   /* out of the program's way, hidden */
    c->tfd_armed = GREEN_FOREVER;
    ev_io_init(&c->tfd_w, timerfd_cb, c->tfd, EV_READ);
    c->tfd_w.data = c;
    ev_io_start(c->loop, &c->tfd_w);
    ev_unref(c->loop);    /* pending deadlines are counted by the hub */
    return 0;
}

/* The child of a fork shares the parent's timerfd: make its own. */
void green__timers_after_fork(struct green__ctx *c)
{
    ev_ref(c->loop);
    ev_io_stop(c->loop, &c->tfd_w);
    if (c->tfd >= 0) {
        green__fd_set_internal(c->tfd, false);   /* or close says EBADF */
        GREEN_REAL(close)(c->tfd);
    }
    c->tfd = -1;
    if (green__timers_init(c) != 0)
        green__log("timerfd_create failed in a forked child: timeouts will not fire");
}

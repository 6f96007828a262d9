/*
 * group.c - groups and pools of green threads (gevent.pool.Group / Pool).
 *
 * What it is. A group counts the green threads spawned through it so that
 * green_group_join can wait for all of them, green_group_kill can kill them
 * and a pool (max_running > 0) can bound how many run at once:
 * green_group_spawn parks while the pool is full.
 *
 * How members are tracked. Each member runs member_main(), a wrapper that
 * calls the user's function and then, still on the member's stack, unlinks
 * its record from the group and releases its slot (waking a spawner or the
 * joiners). Members are detached: the wrapper's epilogue is the group's only
 * notification, and the thread frees itself when it returns.
 *
 * The one trap is that a green thread killed before it ever ran never runs
 * its function (lifecycle.c), so a wrapper that had not started yet when the user
 * killed a member would never report back and the group would wait forever.
 * green_group_spawn therefore starts the wrapper at once with a direct
 * switch (green__switch_direct); the wrapper marks itself started and
 * switches straight back, and the spawner then readies it. Two switches per
 * spawn, no syscall, and from then on the epilogue is guaranteed to run: a
 * kill can only make the member's parks fail (or skip the user's function,
 * if it comes before the member is resumed: the wrapper checks). If the
 * direct switch fails (the spawner itself was killed or its timeout scope
 * expired), the record is marked canceled: the wrapper will run later, call
 * nothing and just report back, and green_group_kill leaves it alone.
 *
 * Slots (pools). used counts members plus slots handed to parked spawners.
 * A finished member hands its slot directly to the first parked spawner
 * (FIFO, no barging: see lock.c); a waiter that times out or is killed was
 * unlinked when it woke, so a handed slot is never lost.
 *
 * Destroy kills every member and waits for all of them, ignoring timeout
 * scopes and retrying after kills (as green_cond_wait's relock does), so
 * that no member can touch the freed group. Only when the hub reports that
 * nothing can ever finish them (EDEADLK) is the group left allocated, and
 * the last member to finish frees it.
 *
 * A member that joins or destroys its own group waits for itself: the hub
 * reports a deadlock (EDEADLK) if nothing else can run, as for any wait
 * that can never end.
 *
 * Rejected: joinable members reaped lazily by scanning (O(n) per spawn);
 * a key destructor as the exit notification (8 KiB of locals per member);
 * waiting on every member's join queue at once (O(members) per wait).
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <string.h>

#define SLOT_GRANTED 1u

struct member {
    struct member *next, *prev;    /* g->members links */
    green_group_t *g;              /* owning group */
    struct green_thread *t;        /* the member thread */
    struct green_thread *spawner;  /* thread to switch back to at start */
    void *(*fn)(void *);           /* the user's function */
    void *arg;                     /* and its argument */
    bool canceled;                 /* start failed: run nothing, report back */
};

struct green_group {
    size_t max;                    /* concurrency bound, 0 = unbounded */
    size_t used;                   /* slots taken: members + granted waiters */
    size_t nmembers;               /* members not yet finished */
    struct member *members;        /* list of those members */
    struct green__waitq slotq;     /* spawners parked on a full pool */
    struct green__waitq joinq;     /* threads in green_group_join */
    bool orphaned;                 /* destroy gave up: last member frees g */
};

green_group_t *green_group_create(size_t max_running)
{
    green_group_t *g = calloc(1, sizeof *g);
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    g->max = max_running;
    return g;
}

/* ------------------------------------------------------------------ slots */

/* Take a slot, parking while a pool is full. 0 or an errno value. May
 * switch. */
static int slot_acquire(green_group_t *g, struct green_thread *self)
{
    for (;;) {
        if (!g->max || g->used < g->max) {
            g->used++;
            return 0;
        }
        self->wnode.data = 0;
        int code = green__park(GREEN_WHY_GROUP, (uintptr_t)g, &g->slotq,
                               GREEN_FOREVER);
        if (self->wnode.data & SLOT_GRANTED)
            return 0;
        if (code)
            return code;
    }
}

/* Give a slot back: to the first parked spawner if any. */
static void slot_release(green_group_t *g)
{
    struct green__wnode *n = g->max ? green__waitq_pop(&g->slotq) : NULL;
    if (!n) {
        g->used--;
        return;
    }
    green__assert("group", n->t->state == GREEN_PARKED);
    n->data |= SLOT_GRANTED;
    green__ready(n->t, 0);
}

/* ---------------------------------------------------------------- members */

static void member_link(green_group_t *g, struct member *m)
{
    m->prev = NULL;
    m->next = g->members;
    if (g->members)
        g->members->prev = m;
    g->members = m;
    g->nmembers++;
}

static void member_unlink(green_group_t *g, struct member *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        g->members = m->next;
    if (m->next)
        m->next->prev = m->prev;
    g->nmembers--;
}

/* A member has finished: account for it on its own stack. Never switches. */
static void member_done(struct member *m)
{
    green_group_t *g = m->g;
    member_unlink(g, m);
    free(m);
    slot_release(g);
    if (g->nmembers == 0) {
        green__waitq_wake_all(&g->joinq, 0);
        if (g->orphaned)
            free(g);
    }
}

/* Entry of every member thread. */
static void *member_main(void *arg)
{
    struct member *m = arg;
    struct green_thread *self = green__current();
    void *result = GREEN_CANCELED;
    if (!m->canceled) {
        /* Started: give the CPU back to the spawner, which readies us. */
        int code = green__switch_direct(m->spawner, NULL);
        /* A fresh thread has no pending kill and no scope: cannot fail. */
        green__assert("group", code == 0);
        if (!self->killed)
            result = m->fn(m->arg);
    }
    self->kill_pending = false;
    member_done(m);
    return result;
}

/* Start m's thread t and come back: see the top of the file. 0 or the
 * errno value of the failed switch. */
static int member_start(struct member *m, struct green_thread *self)
{
    void *keep = self->switch_value;   /* green_switch_value() of self */
    m->spawner = self;
    int code = green__switch_direct(m->t, NULL);
    self->switch_value = keep;
    if (code) {
        m->canceled = true;
        return code;
    }
    green__ready(m->t, 0);
    return 0;
}

/* May switch. */
green_t green_group_spawn(green_group_t *g, void *(*fn)(void *), void *arg,
                          const green_attr_t *attr)
{
    if (!g || !fn) {
        errno = EINVAL;
        return NULL;
    }
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return NULL;
    struct green_thread *self = c->current;
    int code = slot_acquire(g, self);
    if (code) {
        errno = code;
        return NULL;
    }
    struct member *m = calloc(1, sizeof *m);
    green_attr_t a = attr ? *attr : (green_attr_t){0};
    a.detached = true;
    /* Members live on the group's hub: the group's queues are not
     * thread-safe (green.h: groups are for the threads of one hub). */
    green__spawn_here++;
    if (m)
        m->t = green_spawn(member_main, m, &a);
    green__spawn_here--;
    if (!m || !m->t) {
        code = m ? errno : ENOMEM;
        free(m);
        slot_release(g);
        errno = code;
        return NULL;
    }
    m->g = g;
    m->fn = fn;
    m->arg = arg;
    member_link(g, m);
    code = member_start(m, self);
    if (code) {
        errno = code;
        return NULL;
    }
    return m->t;
}

/* ------------------------------------------------------------- join, kill */

static int join_until(green_group_t *g, int64_t deadline)
{
    while (g->nmembers) {
        int code = green__park(GREEN_WHY_GROUP, (uintptr_t)g, &g->joinq,
                               deadline);
        if (code && g->nmembers)
            return code;
    }
    return 0;
}

/* May switch. */
int green_group_join(green_group_t *g, int64_t timeout_ns)
{
    if (!g || timeout_ns < GREEN_FOREVER) {
        errno = EINVAL;
        return -1;
    }
    if (!g->nmembers)
        return 0;
    if (!green__ctx_get())
        return -1;
    return green__result(join_until(g, green__deadline(timeout_ns)));
}

void green_group_kill(green_group_t *g)
{
    if (!g)
        return;
    for (struct member *m = g->members; m; m = m->next)
        if (!m->canceled)
            green__thread_kill(m->t);
}

size_t green_group_size(const green_group_t *g)
{
    return g ? g->nmembers : 0;
}

/* Join ignoring timeout scopes and kills; a consumed kill stays pending.
 * 0, or EDEADLK when nothing can ever finish the members. May switch. */
static int join_for_destroy(green_group_t *g)
{
    struct green_thread *self = green__current();
    green_timeout_t *scopes = self->scopes;
    bool killed = false;
    int code;
    self->scopes = NULL;
    while ((code = join_until(g, GREEN_FOREVER)) == ECANCELED)
        killed = true;
    self->scopes = scopes;
    if (killed)
        self->kill_pending = true;
    return code;
}

/* May switch. */
void green_group_destroy(green_group_t *g)
{
    if (!g)
        return;
    green__waitq_wake_all(&g->slotq, ECANCELED);
    green_group_kill(g);
    if (g->nmembers && join_for_destroy(g) != 0) {
        g->orphaned = true;
        return;
    }
    free(g);
}

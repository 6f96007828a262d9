/*
 * fd.c - descriptor readiness: per-fd libev watchers that stay armed, and
 * the wait queues of the green threads waiting on them.
 *
 * Each ctx has a table of slots indexed by fd, allocated in chunks of 1024
 * (a slot never moves: libev holds a pointer to its watcher). A slot has
 * one ev_io watcher, whose events are the directions armed, and a wait
 * queue for each direction. Rejected: a watcher per direction (as
 * before): 48 bytes more per slot, per connection of a daemon, for no
 * syscall saved (libev registers one mask per fd either way, so arming or
 * dropping a direction is one epoll_ctl in both designs).
 *
 * Keeping watchers armed. A wait adds its direction to the watcher only if
 * it is not armed; when the watcher fires, every waiter of each ready
 * direction is woken (broadcast: each re-tries its own syscall, so none is
 * lost). A direction that fires while nobody waits is dropped then
 * (lazily), because epoll is level-triggered and a ready fd nobody reads
 * would otherwise wake the hub on every iteration. A keep-alive connection whose thread goes read ->
 * EAGAIN -> wait -> read therefore costs no epoll_ctl after the first wait.
 *
 * close and reuse. green_fd_closing (called by the hooked close, dup2...,
 * always before the real call: the number must not name the new file
 * while a waiter another hub readied can still retry by number)
 * wakes every waiter with EBADF, stops the watcher and bumps the slot's
 * generation; the next wait re-initialises the watcher with ev_io_set,
 * which makes libev re-register the fd with the kernel even though the
 * number is the same (libev's EV__IOFDSET): the kernel dropped the old
 * registration with the old file. Stopping a watcher also clears an event
 * libev had already queued for it, so a stale readiness event can never
 * reach a thread waiting on the new descriptor. A thread the old file's
 * readiness had already readied, but that had not run yet when the close
 * came, finds the slot's gen moved when it resumes and gets EBADF: it
 * would otherwise retry its call by number, on the new file.
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include "lock.h"
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHUNK 1024
#define MAX_CHUNKS 1024            /* up to 1,048,576 descriptors */

struct fdslot {
    ev_io w;                       /* events: the armed directions (EV_READ,
                                      EV_WRITE) while active; data = slot */
    struct green__waitq q[2];      /* waiters per direction: read, write */
    unsigned gen;                  /* bumped on every close */
    bool needs_set;                /* re-run ev_io_set before next start */
    bool checked;                  /* fd seen open since the last close */
    bool init;
    bool armed;                    /* the watcher was started since the last
                                      close here: another hub's close must
                                      tell this one (watched). Written by
                                      the owner only, atomically */
};

struct green__fdtab {
    struct fdslot *chunk[MAX_CHUNKS];
};

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);

static struct fdslot *slot_get(struct green__ctx *c, int fd, bool create)
{
    if (fd < 0 || fd >= CHUNK * MAX_CHUNKS)
        return NULL;
    if (!c->fds) {
        if (!create)
            return NULL;
        struct green__fdtab *tab = calloc(1, sizeof *tab);
        if (!tab)
            return NULL;
        __atomic_store_n(&c->fds, tab, __ATOMIC_RELEASE);   /* see watched */
    }
    struct fdslot *ch = c->fds->chunk[fd / CHUNK];
    if (!ch) {
        if (!create)
            return NULL;
        ch = calloc(CHUNK, sizeof *ch);
        if (!ch)
            return NULL;
        __atomic_store_n(&c->fds->chunk[fd / CHUNK], ch, __ATOMIC_RELEASE);
    }
    struct fdslot *s = &ch[fd % CHUNK];
    if (!s->init && create) {
        ev_io_init(&s->w, io_cb, fd, 0);
        s->w.data = s;
        s->init = true;
    }
    return s;
}

static int ev_of(int dir)
{
    return dir ? EV_WRITE : EV_READ;
}

/* The directions armed now (none while the watcher is stopped). */
static int armed_events(const struct fdslot *s)
{
    return ev_is_active(&s->w) ? s->w.events & (EV_READ | EV_WRITE) : 0;
}

/* Arm exactly the directions in events (none: stop). A change of mask
 * while active goes through stop and start, as libev asks; the fd's
 * registration is updated once, at the hub's next poll. */
static void watch(struct ev_loop *loop, struct fdslot *s, int events)
{
    ev_io_stop(loop, &s->w);
    ev_io_modify(&s->w, events);
    if (events)
        ev_io_start(loop, &s->w);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fdslot *s = w->data;
    int drop = 0;
    for (int dir = 0; dir < 2; dir++) {
        if (!(revents & ev_of(dir)))
            continue;
        if (green__waitq_empty(&s->q[dir])) {
            drop |= ev_of(dir);    /* nobody listens: disarm lazily */
            continue;
        }
        struct green__wnode *n;
        while ((n = green__waitq_pop(&s->q[dir]))) {
            n->data |= dir ? GREEN_WRITE : GREEN_READ;
            green__ready(n->t, 0);
        }
    }
    /* Not active: libev stopped it itself (an fd it found bad, fed with
     * EV_ERROR); it must not be started again on that fd. */
    if (drop && ev_is_active(w))
        watch(loop, s, armed_events(s) & ~drop);
}

/* Arm the direction unless it is armed already. Returns 0 or
 * EBADF. A descriptor that is not open must never reach libev: its
 * epoll_ctl failure is an assert() in Debian's libev, which aborts the
 * process. The check (one raw fcntl, not the hooked one) is made once per
 * descriptor lifetime - the first wait after the slot was created or the
 * fd announced closed - so re-arming a lazily dropped direction costs no
 * extra syscall. */
static int arm(struct green__ctx *c, struct fdslot *s, int dir, int fd)
{
    int have = armed_events(s);
    if (have & ev_of(dir))
        return 0;
    if (!s->checked) {
        if (green__syscall(SYS_fcntl, fd, F_GETFD) < 0)
            return EBADF;
        s->checked = true;
    }
    if (s->needs_set) {
        ev_io_set(&s->w, fd, 0);
        s->needs_set = false;
    }
    watch(c->loop, s, have | ev_of(dir));
    if (!s->armed)
        __atomic_store_n(&s->armed, true, __ATOMIC_RELAXED);   /* see watched */
    return 0;
}

int green__wait_fd(int fd, int mask, int64_t deadline)
{
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return -ENOMEM;
    if ((mask & ~(GREEN_READ | GREEN_WRITE)) || !mask)
        return -EINVAL;
    if (mask == (GREEN_READ | GREEN_WRITE)) {
        struct green__fdwait w = { .fd = fd, .mask = mask };
        int code = green__wait_fds(&w, 1, deadline);
        if (code)
            return -code;
        int got = (int)(w.node[0].data | w.node[1].data);
        return got ? got : mask;
    }
    struct fdslot *s = slot_get(c, fd, true);
    if (!s)
        return fd < 0 ? -EINVAL : -ENOMEM;
    int dir = mask == GREEN_WRITE;
    int e = arm(c, s, dir, fd);
    if (e)
        return -e;
    struct green_thread *t = c->current;
    t->wnode.data = 0;
    unsigned gen = s->gen;
    int code = green__park(GREEN_WHY_FD, (uintptr_t)fd | ((uintptr_t)mask << 32),
                           &s->q[dir], deadline);
    /* Readied by the fd's readiness, then the fd was closed before we ran:
     * the number may already name a new file, which the caller must not
     * touch. */
    if (!code && s->gen != gen)
        code = EBADF;
    return code ? -code : mask;
}

int green__wait_fds(struct green__fdwait *w, int n, int64_t deadline)
{
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return ENOMEM;
    struct green_thread *t = c->current;
    int err = 0;
    for (int i = 0; i < n; i++) {
        w[i].node[0] = (struct green__wnode){ .t = t };
        w[i].node[1] = (struct green__wnode){ .t = t };
    }
    for (int i = 0; i < n && !err; i++) {
        struct fdslot *s = slot_get(c, w[i].fd, true);
        if (!s) {
            err = w[i].fd < 0 ? EINVAL : ENOMEM;
            break;
        }
        w[i].gen = s->gen;
        for (int dir = 0; dir < 2; dir++) {
            if (!(w[i].mask & (dir ? GREEN_WRITE : GREEN_READ)))
                continue;
            err = arm(c, s, dir, w[i].fd);
            if (err)
                break;
            green__waitq_push(&s->q[dir], &w[i].node[dir]);
        }
    }
    bool parked = !err;
    if (parked)
        err = green__park(GREEN_WHY_POLL, (uintptr_t)n, NULL, deadline);
    for (int i = 0; i < n; i++) {
        green__waitq_remove(&w[i].node[0]);
        green__waitq_remove(&w[i].node[1]);
    }
    /* As in green__wait_fd: an entry closed after the wake-up counts as
     * closed (GREEN__FD_CLOSED), not as ready. */
    for (int i = 0; parked && i < n && (!err || err == EBADF); i++) {
        struct fdslot *s = slot_get(c, w[i].fd, false);
        if (s && s->gen != w[i].gen) {
            w[i].node[0].data |= GREEN__FD_CLOSED;
            err = EBADF;
        }
    }
    return err;
}

int green_wait_fd(int fd, int mask, int64_t timeout_ns)
{
    if (fd < 0) {
        errno = EINVAL;
        return -1;
    }
    int r = green__wait_fd(fd, mask, green__deadline(timeout_ns));
    if (r < 0) {
        errno = -r;
        return -1;
    }
    return r;
}

int green_wait_readable(int fd, int64_t timeout_ns)
{
    return green_wait_fd(fd, GREEN_READ, timeout_ns);
}

int green_wait_writable(int fd, int64_t timeout_ns)
{
    return green_wait_fd(fd, GREEN_WRITE, timeout_ns);
}

/* Wake every waiter of q with EBADF, marking its node closed. */
static void wake_closed(struct green__waitq *q)
{
    struct green__wnode *n;
    while ((n = green__waitq_pop(q))) {
        n->data |= GREEN__FD_CLOSED;
        green__ready(n->t, EBADF);
    }
}

static void closing_here(struct green__ctx *c, int fd)
{
    struct fdslot *s = slot_get(c, fd, false);
    if (!s || !s->init)
        return;
    wake_closed(&s->q[0]);
    wake_closed(&s->q[1]);
    ev_io_stop(c->loop, &s->w);
    s->needs_set = true;
    s->checked = false;
    s->gen++;
    __atomic_store_n(&s->armed, false, __ATOMIC_RELAXED);
}

/* Has hub h (another OS thread's) armed a watcher of fd since it last
 * forgot it? Read from outside: the table and its chunks are published
 * with release stores and never move, and armed is atomic. A wait that
 * starts on h while the close runs here is the program's own race
 * (natively, a read that starts as the descriptor closes gets EBADF or
 * the next file's bytes). A watcher h stopped lazily still counts: one
 * post too many, never one too few. */
static bool watched(struct green__ctx *h, int fd)
{
    struct green__fdtab *tab = __atomic_load_n(&h->fds, __ATOMIC_ACQUIRE);
    if (!tab || fd < 0 || fd >= CHUNK * MAX_CHUNKS)
        return false;
    struct fdslot *ch = __atomic_load_n(&tab->chunk[fd / CHUNK], __ATOMIC_ACQUIRE);
    if (!ch)
        return false;
    return __atomic_load_n(&ch[fd % CHUNK].armed, __ATOMIC_RELAXED);
}

struct closing_post {
    struct green__remote r;
    int fd;
    struct green__sem *done;       /* the closer's, on its stack: it waits
                                      for every post to have run */
};

static void closing_run(struct green__remote *r)
{
    struct closing_post *p = (struct closing_post *)r;
    closing_here(green__tls_ctx, p->fd);
    green__sem_post(p->done);
    free(p);
}

/* The closer's wait for the other hubs: nothing but memory ends it (a
 * kill or a signal is kept for the caller's next park), since the posts
 * point into its stack. */
static const struct green__lock_how closing_how = {
    .defer_kill = true,
    .retry_other = true,
};

/* With several hubs, each that watches fd forgets it too, before the
 * caller closes it: its waiters get EBADF and its watchers stop, so that
 * its next wait registers the number again (the kernel drops the old
 * file from every epoll set when it closes). The caller waits until they
 * have: if it did not, the number could be reused and waited on over
 * there before the post arrived, which would then fail the new wait. */
void green_fd_closing(int fd)
{
    struct green__ctx *c = green__tls_ctx;
    if (c)
        closing_here(c, fd);
    int n = green__hubs_n();
    if (green__likely(n <= 1))
        return;
    struct green__sem done = { 0 };
    int posted = 0;
    for (int i = 0; i < n; i++) {
        struct green__ctx *h = green__hubs_at(i);
        if (!h || h == c || !watched(h, fd))
            continue;
        struct closing_post *p = malloc(sizeof *p);
        if (!p)
            continue;   /* its watcher stays: it sees EBADF/HUP or nothing */
        p->r.run = closing_run;
        p->fd = fd;
        p->done = &done;
        green__remote_post(h, &p->r);
        posted++;
    }
    /* A hub (or an OS thread without one) cannot park: it blocks on the
     * semaphore's futex, briefly (the other hubs run in parallel). */
    struct green_thread *self = green__in_green() ? c->current : NULL;
    while (posted > 0)
        if (green__sem_wait(&done, self, GREEN_FOREVER, &closing_how) == 0)
            posted--;
}

/* After fork the child's epoll set is rebuilt by ev_loop_fork; nothing to
 * do per slot. Kept for a ctx torn down entirely. */
void green__fd_forget_all(struct green__ctx *c)
{
    if (!c->fds)
        return;
    for (int i = 0; i < MAX_CHUNKS; i++) {
        struct fdslot *ch = c->fds->chunk[i];
        if (!ch)
            continue;
        for (int j = 0; j < CHUNK; j++) {
            if (!ch[j].init)
                continue;
            ev_io_stop(c->loop, &ch[j].w);
        }
    }
}

/*
 * wait.c - the multiplexing waits: poll, ppoll, select, pselect,
 * epoll_wait, epoll_pwait, epoll_pwait2 and glibc's fortified
 * __poll_chk/__ppoll_chk.
 *
 * Shape of every hook. Pass straight through when the caller is not a
 * green thread (libev's own epoll_wait runs on the hub and must reach the
 * kernel untouched) or when the timeout is zero. Otherwise call the real
 * function once with a zero timeout: that one syscall answers every call
 * that finds something ready, reports invalid descriptors (POLLNVAL,
 * EBADF, EINVAL) exactly as the kernel does and delivers signals a ppoll
 * mask unblocks. Only when nothing is ready do we park on every descriptor
 * at once (green__wait_fds; on the stack for up to STACK_FDS entries,
 * malloc'd beyond: the slow path may allocate), then ask the real function
 * again with a zero timeout, and loop until something is ready or the
 * deadline passes, when we return 0 as the kernel does. The per-fd
 * watchers stay armed between calls (fd.c), so a poll loop over the same
 * descriptors costs no epoll_ctl in the steady state: a poll that waits
 * costs poll(0) + the hub's epoll_wait + poll(0). One exception: an
 * epoll_wait on an epoll fd a hook made, by a thread alone on its hub,
 * parks first and probes after the wake (epoll_park_first: the hub's
 * blocking poll answers "is it ready?" in the probe's place).
 *
 * Event mapping. POLLIN, POLLRDNORM, POLLRDBAND, POLLRDHUP -> GREEN_READ;
 * POLLOUT, POLLWRNORM, POLLWRBAND -> GREEN_WRITE (epoll reports hang-ups
 * and errors on both). Conditions libev cannot watch, POLLPRI without
 * POLLIN and select's exceptfds alone, are re-checked every
 * RECHECK_NS instead: mapping them to GREEN_READ would spin while normal
 * data sits unread (the level-triggered watcher fires forever). Entries
 * with fd < 0 are skipped, as the kernel skips them; entries with events
 * 0 still get POLLHUP/POLLERR/POLLNVAL from the kernel, which no watcher
 * can wait for alone: they are re-checked every RECHECK_NS.
 *
 * EINTR. Each of these calls is interruptible and never restarts under
 * SA_RESTART (signal(7)); see signal.c for which green thread a signal
 * interrupts. The sigmask of ppoll/pselect/epoll_pwait is used atomically
 * by the first, real, zero-timeout call and then applied to the OS thread
 * while the caller is parked (signal.c explains the approximation).
 *
 * select. Linux writes the time not slept back into *timeout; we do the
 * same on every return. Sets bigger than an fd_set (nfds > FD_SETSIZE,
 * arrays of longs, as the kernel accepts) are handled the same way up to
 * SELECT_MAX_NFDS; beyond it the call passes through (it would block the
 * OS thread).
 *
 * Epoll sets that hold a file whose poll takes its event (the /proc
 * mounts files: mounts_poll reports a change to the first look only).
 * The hub waits for an epoll descriptor by watching it in its own epoll
 * set, and each look of the hub's set polls the program's set and its
 * files: the hub's look would take the event, and the program's
 * epoll_wait after it find nothing (LTP epoll_wait10). So an epoll set
 * to which the program added a regular file (procfs, sysfs, debugfs: the
 * only regular files that can be polled) is waited on by the kernel
 * itself: epoll_wait (and epoll_pwait without a mask) is made by a solo
 * thread while the caller parks (libgreen/solo.c), at the cost of a
 * thread handoff per wait. The mark is kept per epoll descriptor number
 * (epoll_ctl ADD sets it, a new epoll descriptor of that number clears
 * it).
 *
 * Rejected: translating each call into a private epoll set (epoll_create +
 * epoll_ctl per call: three syscalls more than the re-poll); parking on
 * the watchers without re-polling (an event for one direction says
 * nothing about the exact revents the program asked for).
 */
#define _GNU_SOURCE
#include "hooks_signal.h"
#include "hooks_wait.h"
#include "io.h"
#include "fdstate.h"
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define STACK_FDS 16
#define RECHECK_NS GREEN_MSEC(10)

extern void __chk_fail(void) __attribute__((noreturn));

/* The descriptors one call waits for. */
struct waitset {
    struct green__fdwait *w;             /* entries to park on */
    int n;                               /* used entries */
    bool recheck;                        /* something is only re-checked */
    bool on_heap;                        /* w was malloc'd */
    struct green__fdwait small[STACK_FDS]; /* storage for small sets */
};

static int ws_init(struct waitset *ws, size_t cap)
{
    ws->n = 0;
    ws->recheck = false;
    ws->on_heap = cap > STACK_FDS;
    ws->w = ws->on_heap ? malloc(cap * sizeof *ws->w) : ws->small;
    return ws->w ? 0 : ENOMEM;
}

static void ws_free(struct waitset *ws)
{
    if (ws->on_heap)
        free(ws->w);
}

static void ws_add(struct waitset *ws, int fd, int mask)
{
    ws->w[ws->n].fd = fd;
    ws->w[ws->n].mask = mask;
    ws->n++;
}

/* Park once until something in ws may be ready. Returns 0 (re-check) or an
 * errno value: ETIMEDOUT once the deadline passed, EINTR, ECANCELED,
 * ENOMEM. May switch. */
static int ws_park(struct waitset *ws, int64_t deadline)
{
    int64_t d = deadline;
    if (ws->recheck) {
        int64_t r = green_now() + RECHECK_NS;
        if (d < 0 || r < d)
            d = r;
    }
    int code;
    if (ws->n) {
        code = green__wait_fds(ws->w, ws->n, d);
    } else {
        /* Nothing to watch: a pure sleep. Forever (poll(NULL, 0, -1))
         * keeps the hub waiting for a signal instead of a deadlock. */
        struct green__ctx *c = green__tls_ctx;
        if (d < 0)
            green__remote_expect(c, +1);
        code = green__park(GREEN_WHY_POLL, 0, NULL, d);
        if (d < 0)
            green__remote_expect(c, -1);
    }
    if (code == ETIMEDOUT && d != deadline)
        return 0;                  /* our own re-check tick */
    if (code == EBADF)
        return 0;                  /* closed under us: the re-poll says so */
    return code;
}

static int64_t ms_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? GREEN_FOREVER : green_now() + GREEN_MSEC(timeout_ms);
}

/* Timeouts beyond this (about 100 years) mean "forever": no overflow. */
#define HUGE_SEC 3000000000LL

static int64_t ts_deadline(const struct timespec *ts)
{
    if (!ts || ts->tv_sec >= HUGE_SEC)
        return GREEN_FOREVER;
    return green_now() + (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int64_t tv_deadline(const struct timeval *tv)
{
    if (!tv || tv->tv_sec >= HUGE_SEC)
        return GREEN_FOREVER;
    return green_now() + (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000;
}

/* A zero-timeout probe is our syscall, not the program's wait. Under the
 * shim every signal lands on the one OS thread, so it can hit a probe of
 * any green thread; it interrupts only the thread that signals interrupt
 * (signal.c: the main one, or a masked ppoll/pselect/epoll_pwait), and
 * the others probe again, as their native call would not have been hit. */
#define PROBE(r, call)                                                        \
    do {                                                                     \
        int probe_tries_ = 0;                                                 \
        do                                                                   \
            (r) = (call);                                                     \
        while ((r) < 0 && errno == EINTR && ++probe_tries_ < 8 &&            \
               !green__intr_mine());                                          \
    } while (0)

/* The start of every hook that may park: mark the call interruptible
 * (signal.c) and act on a pending pthread_cancel (a cancellation point).
 * Returns errno as the program had it. */
static int hook_begin(void)
{
    int e0 = errno;
    green__intr_begin();
    green__cancel_point(0);
    return e0;
}

/* The end of every such hook, after its own cleanup (masks restored,
 * memory freed): a pthread_cancel that woke the park acts now. A call
 * that succeeded (timeouts included) leaves errno as it was at entry, e0:
 * our probes and parks may have changed it. */
static int hook_done(int r, int e0)
{
    green__intr_end();
    if (r < 0 && errno == ECANCELED)
        green__cancel_point(ECANCELED);
    if (r >= 0)
        errno = e0;
    return r;
}

/* Turn a park's errno value into the call's result: 0 for a timeout, -1
 * and errno otherwise. */
static int park_failed(int code, int64_t deadline)
{
    if (code == ETIMEDOUT && (deadline < 0 || green_now() >= deadline))
        return 0;
    errno = code;
    return -1;
}

/* Was entry k's descriptor closed (green_fd_closing) during the last park?
 * Its number may already name a new file, which a re-poll would report in
 * its place. */
static bool ws_closed(const struct waitset *ws, int k)
{
    return (ws->w[k].node[0].data | ws->w[k].node[1].data) & GREEN__FD_CLOSED;
}

static bool ws_any_closed(const struct waitset *ws)
{
    for (int k = 0; k < ws->n; k++)
        if (ws_closed(ws, k))
            return true;
    return false;
}

/* ---------------------------------------------------------------- poll */

/* Entries whose descriptor was closed while we were parked report POLLNVAL
 * (as if the close had come first), not the state of a new file that
 * reuses the number. Returns the new count of entries with revents. */
static int poll_mark_closed(const struct waitset *ws, struct pollfd *fds, nfds_t n, int r)
{
    if (r < 0 || !ws_any_closed(ws))
        return r;
    for (int k = 0; k < ws->n; k++)
        for (nfds_t i = 0; i < n && ws_closed(ws, k); i++)
            if (fds[i].fd == ws->w[k].fd)
                fds[i].revents = POLLNVAL;
    int count = 0;
    for (nfds_t i = 0; i < n; i++)
        count += fds[i].revents != 0;
    return count;
}

static int poll_mask(short ev, bool *recheck)
{
    int m = 0;
    if (ev & (POLLIN | POLLRDNORM | POLLRDBAND | POLLRDHUP))
        m |= GREEN_READ;
    if (ev & (POLLOUT | POLLWRNORM | POLLWRBAND))
        m |= GREEN_WRITE;
    if (!(m & GREEN_READ) && (ev & POLLPRI))
        *recheck = true;
    return m;
}

/* The parking loop of poll and ppoll; the real zero-timeout call found
 * nothing ready. mask: applied by the caller; the re-polls use none. */
static int poll_slow(struct pollfd *fds, nfds_t n, int64_t deadline)
{
    struct waitset ws;
    int code = ws_init(&ws, n);
    if (code) {
        errno = code;
        return -1;
    }
    for (nfds_t i = 0; i < n; i++) {
        int m = fds[i].fd < 0 ? 0 : poll_mask(fds[i].events, &ws.recheck);
        if (m)
            ws_add(&ws, fds[i].fd, m);
        else if (fds[i].fd >= 0)
            ws.recheck = true;     /* POLLHUP/POLLERR only: re-checked */
    }
    int r;
    for (;;) {
        code = ws_park(&ws, deadline);
        if (code) {
            r = park_failed(code, deadline);
            break;
        }
        PROBE(r, green__real.poll(fds, n, 0));
        r = poll_mark_closed(&ws, fds, n, r);
        if (r != 0)
            break;
    }
    ws_free(&ws);
    return r;
}

int green_hook_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    green__real_init();
    if (timeout == 0 || !green__hook_on(GREEN_HOOK_IO))
        return green__real.poll(fds, n, timeout);
    int e0 = hook_begin();
    int r = 0;                     /* poll(NULL, 0, ms) is a sleep: no probe */
    if (n)
        PROBE(r, green__real.poll(fds, n, 0));
    if (r == 0)
        r = poll_slow(fds, n, ms_deadline(timeout));
    return hook_done(r, e0);
}

int green_hook_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                     const sigset_t *mask)
{
    green__real_init();
    if ((ts && !ts->tv_sec && !ts->tv_nsec) || !green__hook_on(GREEN_HOOK_IO) ||
        (ts && !green__ts_valid(ts)))
        return green__real.ppoll(fds, n, ts, mask);   /* EINVAL at once */
    int e0 = hook_begin();
    static const struct timespec zero = { 0, 0 };
    int64_t deadline = ts_deadline(ts);
    int r;
    if (mask)                      /* EINTR from a signal it unblocks: its own */
        r = green__real.ppoll(fds, n, &zero, mask);
    else
        PROBE(r, green__real.ppoll(fds, n, &zero, NULL));
    if (r == 0) {
        sigset_t saved;
        int e = green__sigmask_enter(mask, &saved);
        if (e) {
            errno = e;
            r = -1;
        } else {
            r = poll_slow(fds, n, deadline);
            green__sigmask_leave(mask, &saved);
        }
    }
    return hook_done(r, e0);
}

int green_hook___poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        __chk_fail();
    return green_hook_poll(fds, n, timeout);
}

int green_hook___ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                           const sigset_t *mask, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        __chk_fail();
    return green_hook_ppoll(fds, n, ts, mask);
}

/* -------------------------------------------------------------- select */

/* Largest nfds select parks for: beyond it the call passes through. */
#define SELECT_MAX_NFDS 65536
#define LONG_BITS (8 * sizeof(unsigned long))

/* The sets of one select call as the program passed them. Programs that
 * use more than FD_SETSIZE descriptors pass bigger arrays of longs, as
 * the kernel allows: the copies are then on the heap. */
struct selsets {
    fd_set *user[3];               /* read, write, except (may be NULL) */
    unsigned long *copy[3];        /* their contents at the call */
    size_t bytes;                  /* how much of each set the kernel uses */
    unsigned long *heap;           /* the copies when they exceed small */
    unsigned long small[3][FD_SETSIZE / LONG_BITS];
};

/* Save the program's sets, reading only the bytes the kernel reads (whole
 * longs covering nfds bits) and only through green__copy_in: sets the
 * kernel cannot read make the call fail with EFAULT, not crash us.
 * Returns 0, or -1 (EFAULT, ENOMEM). */
static int sel_save(struct selsets *s, int nfds, fd_set *r, fd_set *w, fd_set *e)
{
    s->user[0] = r;
    s->user[1] = w;
    s->user[2] = e;
    s->bytes = ((size_t)nfds + LONG_BITS - 1) / LONG_BITS * sizeof(unsigned long);
    s->heap = NULL;
    if (s->bytes > sizeof s->small[0]) {
        s->heap = calloc(3, s->bytes);
        if (!s->heap) {
            errno = ENOMEM;
            return -1;
        }
    }
    for (int i = 0; i < 3; i++) {
        s->copy[i] = s->heap ? s->heap + i * (s->bytes / sizeof(unsigned long))
                             : s->small[i];
        if (s->user[i] && green__copy_in(s->copy[i], s->user[i], s->bytes) != 0) {
            free(s->heap);
            return -1;
        }
    }
    return 0;
}

static void sel_free(struct selsets *s)
{
    free(s->heap);
}

static void sel_restore(struct selsets *s)
{
    for (int i = 0; i < 3; i++)
        if (s->user[i])
            memcpy(s->user[i], s->copy[i], s->bytes);
}

static bool sel_has(const struct selsets *s, int i, int fd)
{
    return s->user[i] && (s->copy[i][fd / LONG_BITS] >> (fd % LONG_BITS)) & 1;
}

static int sel_build(struct waitset *ws, const struct selsets *s, int nfds)
{
    int count = 0;
    for (int fd = 0; fd < nfds; fd++)
        count += sel_has(s, 0, fd) || sel_has(s, 1, fd);
    int code = ws_init(ws, (size_t)count);
    if (code)
        return code;
    for (int fd = 0; fd < nfds; fd++) {
        int m = (sel_has(s, 0, fd) ? GREEN_READ : 0) |
                (sel_has(s, 1, fd) ? GREEN_WRITE : 0);
        if (m)
            ws_add(ws, fd, m);
        else if (sel_has(s, 2, fd))
            ws->recheck = true;
    }
    return 0;
}

/* The parking loop of select and pselect; the first real call found
 * nothing ready and cleared the sets. */
static int select_slow(int nfds, struct selsets *s, int64_t deadline)
{
    struct waitset ws;
    int code = sel_build(&ws, s, nfds);
    if (code) {
        sel_restore(s);
        errno = code;
        return -1;
    }
    int r;
    for (;;) {
        sel_restore(s);
        code = ws_park(&ws, deadline);
        if (code) {
            r = park_failed(code, deadline);
            /* Timed out: the kernel clears the sets (no set bits at all
             * when select is used as a sleep: nothing to do). */
            if (r == 0 && (ws.n || ws.recheck)) {
                struct timespec zero = { 0, 0 };
                PROBE(r, green__real.pselect(nfds, s->user[0], s->user[1],
                                             s->user[2], &zero, NULL));
            }
            break;
        }
        if (ws_any_closed(&ws)) {  /* as select on a closed fd: EBADF */
            errno = EBADF;
            r = -1;
            break;
        }
        struct timespec zero = { 0, 0 };
        PROBE(r, green__real.pselect(nfds, s->user[0], s->user[1], s->user[2], &zero, NULL));
        if (r != 0)
            break;
    }
    ws_free(&ws);
    return r;
}

int green_hook_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
    green__real_init();
    if ((tv && !tv->tv_sec && !tv->tv_usec) || nfds < 0 || nfds > SELECT_MAX_NFDS ||
        (tv && (tv->tv_sec < 0 || tv->tv_usec < 0)) || !green__hook_on(GREEN_HOOK_IO))
        return green__real.select(nfds, rd, wr, ex, tv);
    struct selsets s;
    if (sel_save(&s, nfds, rd, wr, ex) != 0)
        return errno == EFAULT ? green__real.select(nfds, rd, wr, ex, tv) : -1;
    int64_t deadline = tv_deadline(tv);
    int e0 = hook_begin();
    struct timeval zero = { 0, 0 };
    int r = 0;                     /* select(0, ...) is a sleep: no probe */
    if (nfds && (rd || wr || ex))
        PROBE(r, green__real.select(nfds, rd, wr, ex, &zero));
    if (r == 0)
        r = select_slow(nfds, &s, deadline);
    if (tv && deadline >= 0) {     /* Linux: the time not slept */
        int64_t left = deadline - green_now();
        if (left < 0)
            left = 0;
        tv->tv_sec = left / 1000000000;
        tv->tv_usec = (left % 1000000000) / 1000;
    }
    sel_free(&s);
    return hook_done(r, e0);
}

int green_hook_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
                       const struct timespec *ts, const sigset_t *mask)
{
    green__real_init();
    if ((ts && !ts->tv_sec && !ts->tv_nsec) || nfds < 0 || nfds > SELECT_MAX_NFDS ||
        (ts && !green__ts_valid(ts)) ||
        !green__hook_on(GREEN_HOOK_IO))
        return green__real.pselect(nfds, rd, wr, ex, ts, mask);
    struct selsets s;
    if (sel_save(&s, nfds, rd, wr, ex) != 0)
        return errno == EFAULT ? green__real.pselect(nfds, rd, wr, ex, ts, mask) : -1;
    int64_t deadline = ts_deadline(ts);
    int e0 = hook_begin();
    struct timespec zero = { 0, 0 };
    int r;
    if (mask)
        r = green__real.pselect(nfds, rd, wr, ex, &zero, mask);
    else
        PROBE(r, green__real.pselect(nfds, rd, wr, ex, &zero, NULL));
    if (r == 0) {
        sigset_t saved;
        int e = green__sigmask_enter(mask, &saved);
        if (e) {
            sel_restore(&s);
            errno = e;
            r = -1;
        } else {
            r = select_slow(nfds, &s, deadline);
            green__sigmask_leave(mask, &saved);
        }
    }
    sel_free(&s);
    return hook_done(r, e0);
}

/* --------------------------------------------------------------- epoll */

/* Epoll descriptors waited on by the kernel (the essay above). */
#define KWAIT_FDS 65536
static _Atomic uint64_t kwait[KWAIT_FDS / 64];

static bool kernel_waited(int epfd)
{
    return (unsigned)epfd < KWAIT_FDS &&
           (atomic_load_explicit(&kwait[epfd / 64], memory_order_relaxed) >> (epfd % 64) & 1);
}

void green__epoll_made(int epfd)
{
    if ((unsigned)epfd < KWAIT_FDS)
        atomic_fetch_and(&kwait[epfd / 64], ~(1ull << (epfd % 64)));
}

/* fd is a regular file (only those the kernel can poll reach epoll_ctl's
 * success). errno is kept. */
static bool regular_file(int fd)
{
    enum green__fdkind k = green__fdstate_kind(fd);
    if (k != GREEN_FD_UNKNOWN)
        return k == GREEN_FD_FILE;
    int e = errno;
    struct stat st;
    bool reg = green__syscall(SYS_fstat, fd, &st) == 0 && S_ISREG(st.st_mode);
    errno = e;
    return reg;
}

/* libev's own calls reach this hook too (a hub's epoll set is one of
 * libgreen's descriptors). A descriptor that another hub's thread closed
 * after this hub checked it and before libev registered it makes
 * epoll_ctl fail with EBADF (ELOOP, EINVAL when the number names another
 * kind of file by then), which Debian's libev asserts against (the
 * process aborts): libev is told ENOMEM instead, on which it drops the
 * descriptor's watchers and feeds them EV_ERROR, so that their waiters
 * retry their call and get EBADF, as natively when a descriptor closes
 * under a thread that starts to wait on it. */
int green_hook_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    green__real_init();
    int r = green__real.epoll_ctl(epfd, op, fd, ev);
    if (green__unlikely(green__fd_is_internal(epfd))) {
        if (r < 0 && (errno == EBADF || errno == ELOOP || errno == EINVAL) &&
            op != EPOLL_CTL_DEL)
            errno = ENOMEM;
        return r;
    }
    if (r == 0 && op == EPOLL_CTL_ADD && (unsigned)epfd < KWAIT_FDS && regular_file(fd))
        atomic_fetch_or(&kwait[epfd / 64], 1ull << (epfd % 64));
    return r;
}

/* epoll_wait on a kernel-waited set (kernel_waited), made by a solo
 * thread (a cancellation point; never restarted): true with the call's
 * result in *r (-1 and errno, or the count), false when no solo thread
 * can make it (the caller waits as usual). */
static bool epoll_kernel(int epfd, struct epoll_event *ev, int max, int timeout, int *r)
{
    int e0 = errno;
    green__cancel_point(0);
    const long call[7] = { SYS_epoll_pwait, epfd, (long)ev, max, timeout, 0, 8 };
    long k = green__io_solo_call(call, GREEN_WHY_POLL, 1, true, false);
    if (k == GREEN__NO_SOLO)
        return false;
    *r = (int)green__io_solo_result(k, e0);
    return true;
}

/* Park until the epoll descriptor itself is readable (one of its
 * descriptors is ready), then collect with a zero timeout. */
static int epoll_slow(int epfd, struct epoll_event *ev, int max, int64_t deadline)
{
    for (;;) {
        int got = green__wait_fd(epfd, GREEN_READ, deadline);
        if (got < 0)               /* EBADF: epfd closed; its number may */
            return park_failed(-got, deadline);   /* name a new file now */
        int r;
        PROBE(r, green__real.epoll_wait(epfd, ev, max, 0));
        if (r != 0)
            return r;
    }
}

/* Park first, probe after. When nothing else on this hub is runnable, a
 * park goes straight to the hub's blocking epoll_wait, which returns at
 * once if epfd is ready: that call takes the place of the zero-timeout
 * probe when events are waiting, and saves it when none are (the usual
 * case for an event loop that just drained its epoll set: memcached's
 * workers and redis call epoll_wait again right after handling a batch,
 * and the first probe found nothing about twice in three times; perf
 * stat under memcaslap). With other threads runnable the hub may not poll
 * for up to POLL_INTERVAL_NS (hub.c), so the probe comes first there, as
 * it does for an fd of unknown kind: only a descriptor a hooked
 * epoll_create made (fdstate: GREEN_FD_OTHER) parks first, and every
 * answer still comes from the kernel's own zero-timeout call, made after
 * the wake or at the deadline. The difference: epoll_wait on an eventfd
 * or timerfd (EINVAL natively) fails once that fd is readable or at the
 * deadline, not at once. */
static bool epoll_park_first(int epfd, int max)
{
    struct green__ctx *c = green__tls_ctx;
    /* The hub queues itself behind the threads it readied: a run queue
     * of the hub alone is as good as empty. */
    bool alone = !c || !c->runq_head ||
                 (c->runq_head == c->hub && c->runq_tail == c->hub);
    return max > 0 && c && alone && green__fdstate_kind(epfd) == GREEN_FD_OTHER;
}

static int epoll_late(int epfd, struct epoll_event *ev, int max, int64_t deadline)
{
    int got = green__wait_fd(epfd, GREEN_READ, deadline);
    if (got < 0 && got != -ETIMEDOUT)
        return park_failed(-got, deadline);
    int r;
    PROBE(r, green__real.epoll_wait(epfd, ev, max, 0));
    if (r != 0 || got == -ETIMEDOUT)
        return r;                  /* the kernel's answer at the deadline */
    return epoll_slow(epfd, ev, max, deadline);
}

int green_hook_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
    green__real_init();
    if (timeout == 0 || !green__hook_on(GREEN_HOOK_IO))
        return green__real.epoll_wait(epfd, ev, max, timeout);
    int r;
    if (green__unlikely(kernel_waited(epfd)) && epoll_kernel(epfd, ev, max, timeout, &r))
        return r;
    int e0 = hook_begin();
    if (epoll_park_first(epfd, max))
        return hook_done(epoll_late(epfd, ev, max, ms_deadline(timeout)), e0);
    PROBE(r, green__real.epoll_wait(epfd, ev, max, 0));
    if (r == 0)
        r = epoll_slow(epfd, ev, max, ms_deadline(timeout));
    return hook_done(r, e0);
}

/* epoll_pwait after the first, real, zero-timeout call found nothing. */
static int epoll_masked_slow(int epfd, struct epoll_event *ev, int max,
                             int64_t deadline, const sigset_t *mask)
{
    sigset_t saved;
    int e = green__sigmask_enter(mask, &saved);
    if (e) {
        errno = e;
        return -1;
    }
    int r = epoll_slow(epfd, ev, max, deadline);
    green__sigmask_leave(mask, &saved);
    return r;
}

int green_hook_epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
                           const sigset_t *mask)
{
    green__real_init();
    if (timeout == 0 || !green__hook_on(GREEN_HOOK_IO))
        return green__real.epoll_pwait(epfd, ev, max, timeout, mask);
    int r;
    if (green__unlikely(!mask && kernel_waited(epfd)) &&
        epoll_kernel(epfd, ev, max, timeout, &r))
        return r;
    int e0 = hook_begin();
    if (mask)
        r = green__real.epoll_pwait(epfd, ev, max, 0, mask);
    else
        PROBE(r, green__real.epoll_wait(epfd, ev, max, 0));
    if (r == 0)
        r = epoll_masked_slow(epfd, ev, max, ms_deadline(timeout), mask);
    return hook_done(r, e0);
}

/* glibc 2.35+: a timespec timeout (NULL = forever). */
int green_hook_epoll_pwait2(int epfd, struct epoll_event *ev, int max,
                            const struct timespec *ts, const sigset_t *mask)
{
    static const struct timespec zero = { 0, 0 };
    green__real_init();
    if (!green__real.epoll_pwait2) {
        errno = ENOSYS;
        return -1;
    }
    if ((ts && !ts->tv_sec && !ts->tv_nsec) || !green__hook_on(GREEN_HOOK_IO) ||
        (ts && !green__ts_valid(ts)))
        return green__real.epoll_pwait2(epfd, ev, max, ts, mask);
    int64_t deadline = ts_deadline(ts);
    int e0 = hook_begin();
    int r;
    if (mask)
        r = green__real.epoll_pwait2(epfd, ev, max, &zero, mask);
    else
        PROBE(r, green__real.epoll_wait(epfd, ev, max, 0));
    if (r == 0)
        r = epoll_masked_slow(epfd, ev, max, deadline, mask);
    return hook_done(r, e0);
}

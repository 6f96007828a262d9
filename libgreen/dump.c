/*
 * dump.c - green_dump: one line per green thread of an OS thread: id, name,
 * state, what it waits on and for how long, e.g.
 *
 *   libgreen: green threads of OS thread 4242 (hub 0, 3 besides main and hub):
 *        5 reader               parked   on fd 7 read for 1.204 s
 *        4 napper               parked   on sleep for 1.204 s (timeout in 58.796 s)
 *        1 main                 running  (current)
 *
 * The GREEN_DUMP_SIGNAL handler (monitor.c) calls it too, so everything
 * here is async-signal-safe: no stdio, no malloc, no locks. Lines are
 * formatted with the small green__fmt helpers into a stack buffer and each
 * is written with one write(2). The walk of the thread list is bounded (a
 * signal may land while a list is being relinked; a torn list must not
 * make the dump loop forever).
 *
 * Rejected: snprintf (not async-signal-safe: "%f" may allocate, and locale
 * data is read), building the whole dump in one buffer (unbounded size).
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

/* ------------------------------------------------------------ formatting */

void green__fmt_str(struct green__fmt *f, const char *s)
{
    while (s && *s && f->n < f->cap)
        f->b[f->n++] = *s++;
}

void green__fmt_u64(struct green__fmt *f, uint64_t v)
{
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && f->n < f->cap)
        f->b[f->n++] = d[--n];
}

void green__fmt_hex(struct green__fmt *f, uintptr_t v)
{
    char d[2 * sizeof v];
    int n = 0;
    do {
        d[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    green__fmt_str(f, "0x");
    while (n && f->n < f->cap)
        f->b[f->n++] = d[--n];
}

/* Pad with spaces up to column col (relative to start). */
static void fmt_pad(struct green__fmt *f, size_t start, size_t col)
{
    while (f->n < start + col && f->n < f->cap)
        f->b[f->n++] = ' ';
}

/* Nanoseconds as seconds with three decimals ("1.204 s"). */
static void fmt_secs(struct green__fmt *f, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    uint64_t ms = (uint64_t)ns / 1000000;
    green__fmt_u64(f, ms / 1000);
    char frac[5] = { '.', (char)('0' + ms % 1000 / 100), (char)('0' + ms % 100 / 10),
                     (char)('0' + ms % 10), 0 };
    green__fmt_str(f, frac);
    green__fmt_str(f, " s");
}

/* ------------------------------------------------------------- the dump */

static const char *state_name(enum green__state s)
{
    switch (s) {
    case GREEN_NEW: return "new";
    case GREEN_RUNNABLE: return "runnable";
    case GREEN_RUNNING: return "running";
    case GREEN_PARKED: return "parked";
    case GREEN_DONE: return "done";
    }
    return "?";
}

static const char *why_name(enum green__why w)
{
    static const char *const names[] = {
        [GREEN_WHY_NONE] = "", [GREEN_WHY_SLEEP] = "sleep",
        [GREEN_WHY_FD] = "fd", [GREEN_WHY_POLL] = "poll",
        [GREEN_WHY_JOIN] = "join", [GREEN_WHY_SWITCH] = "switch",
        [GREEN_WHY_MUTEX] = "mutex", [GREEN_WHY_COND] = "condvar",
        [GREEN_WHY_RWLOCK] = "rwlock", [GREEN_WHY_SEM] = "semaphore",
        [GREEN_WHY_EVENT] = "event", [GREEN_WHY_CHAN] = "channel",
        [GREEN_WHY_OFFLOAD] = "offload", [GREEN_WHY_GROUP] = "group",
        [GREEN_WHY_YIELD] = "yield", [GREEN_WHY_OTHER] = "other",
        [GREEN_WHY_FUTEX] = "futex", [GREEN_WHY_FILE_LOCK] = "file lock",
        [GREEN_WHY_IPC] = "ipc",
    };
    const char *n = (unsigned)w < sizeof names / sizeof *names ? names[w] : NULL;
    return n ? n : "?";
}

/* What t waits on: " on fd 7 read", " on join of 5", " on mutex 0x...". */
static void describe_wait(struct green__fmt *f, const struct green_thread *t)
{
    green__fmt_str(f, " on ");
    if (t->why == GREEN_WHY_FD) {
        int fd = (int)(t->why_arg & 0xffffffffu);
        int mask = (int)(t->why_arg >> 32);
        green__fmt_str(f, "fd ");
        green__fmt_u64(f, (uint64_t)fd);
        green__fmt_str(f, mask == GREEN_READ ? " read" :
                          mask == GREEN_WRITE ? " write" : " read+write");
    } else if (t->why == GREEN_WHY_POLL && t->why_arg) {
        green__fmt_str(f, "poll of ");
        green__fmt_u64(f, (uint64_t)t->why_arg);
        green__fmt_str(f, " fds");
    } else if (t->why == GREEN_WHY_FILE_LOCK) {
        green__fmt_str(f, "file lock of fd ");
        green__fmt_u64(f, (uint64_t)t->why_arg);
    } else if (t->why == GREEN_WHY_IPC) {
        /* io_ipc.c: the call's kind above, the set, queue or fd below. */
        static const char *const kinds[] = { "?", "semop of set ", "msgsnd to queue ",
                                             "msgrcv from queue ", "mq_send to fd ",
                                             "mq_receive from fd " };
        unsigned k = (unsigned)(t->why_arg >> 32);
        green__fmt_str(f, kinds[k < sizeof kinds / sizeof *kinds ? k : 0]);
        green__fmt_u64(f, (uint64_t)(t->why_arg & 0xffffffffu));
    } else if (t->why == GREEN_WHY_JOIN && t->why_arg) {
        /* The joined thread cannot be freed while it is being joined. */
        green__fmt_str(f, "join of ");
        green__fmt_u64(f, ((const struct green_thread *)t->why_arg)->id);
    } else {
        green__fmt_str(f, why_name(t->why));
        if (t->why_arg && t->why != GREEN_WHY_SLEEP) {
            green__fmt_str(f, " ");
            green__fmt_hex(f, t->why_arg);
        }
    }
}

static void dump_line(const struct green__ctx *c, const struct green_thread *t,
                      int64_t now, int fd)
{
    char b[256];
    struct green__fmt f = { b, 0, sizeof b - 1 };
    green__fmt_str(&f, "  ");
    size_t at = f.n;
    green__fmt_u64(&f, t->id);
    fmt_pad(&f, at, 7);
    green__fmt_str(&f, " ");
    at = f.n;
    green__fmt_str(&f, t->name);
    fmt_pad(&f, at, 20);
    green__fmt_str(&f, " ");
    at = f.n;
    green__fmt_str(&f, state_name(t->state));
    fmt_pad(&f, at, 8);
    if (t->state == GREEN_PARKED) {
        describe_wait(&f, t);
        if (t->park_since > 0) {   /* 0: unknown */
            green__fmt_str(&f, " for ");
            fmt_secs(&f, now - t->park_since);
        }
        if (t->deadline >= 0 && t->heap_idx) {
            green__fmt_str(&f, " (timeout in ");
            fmt_secs(&f, t->deadline - now);
            green__fmt_str(&f, ")");
        }
    }
    if (t == c->current)
        green__fmt_str(&f, " (current)");
    f.b[f.n++] = '\n';
    ssize_t r = GREEN_REAL(write)(fd, f.b, f.n);
    (void)r;
}

void green__dump_ctx(struct green__ctx *c, int fd)
{
    /* Our writes are the real ones (real.h): the shim's write hook could
     * park the caller, and green_dump never switches. */
    char b[160];
    struct green__fmt f = { b, 0, sizeof b - 1 };
    green__fmt_str(&f, "libgreen: green threads of OS thread ");
    green__fmt_u64(&f, (uint64_t)green__syscall(SYS_gettid));
    green__fmt_str(&f, " (");
    if (c->hub_index >= 0) {
        green__fmt_str(&f, "hub ");
        green__fmt_u64(&f, (uint64_t)c->hub_index);
        green__fmt_str(&f, ", ");
    }
    green__fmt_u64(&f, c->nthreads);
    green__fmt_str(&f, " besides main and hub):");
    f.b[f.n++] = '\n';
    ssize_t r = GREEN_REAL(write)(fd, f.b, f.n);
    (void)r;
    int64_t now = green_now();
    /* Live threads, main, and finished threads nobody joined yet (not
     * counted in nthreads): generous, but finite if the list is torn. */
    size_t max = c->nthreads + 100000;
    const struct green_thread *t = c->all;
    for (size_t i = 0; t && i < max; i++, t = t->all_next)
        dump_line(c, t, now, fd);
    if (t) {
        static const char more[] = "  ... (list truncated)\n";
        r = GREEN_REAL(write)(fd, more, sizeof more - 1);
    }
}

void green_dump(int fd)
{
    struct green__ctx *c = green__tls_ctx;
    if (!c) {
        static const char none[] = "libgreen: no green threads on this OS thread\n";
        ssize_t r = GREEN_REAL(write)(fd, none, sizeof none - 1);
        (void)r;
        return;
    }
    green__dump_ctx(c, fd);
}

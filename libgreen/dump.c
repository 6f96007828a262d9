/*
 * dump.c - green_dump: one line per green thread of the calling OS thread:
 * id, name, state, what it waits on and for how long. Used by the
 * GREEN_DUMP_SIGNAL handler of the preload too, so it formats into a stack
 * buffer and writes each line with one write(2), allocating nothing.
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <string.h>
#include <unistd.h>

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
    };
    return (unsigned)w < sizeof names / sizeof *names ? names[w] : "?";
}

/* Describe what t waits on, e.g. "fd 7 read" or "mutex 0x55d0...". */
static void describe_wait(const struct green_thread *t, char *b, size_t n)
{
    if (t->state != GREEN_PARKED) {
        b[0] = 0;
        return;
    }
    if (t->why == GREEN_WHY_FD) {
        int fd = (int)(t->why_arg & 0xffffffffu);
        int mask = (int)(t->why_arg >> 32);
        snprintf(b, n, " on fd %d %s", fd,
                 mask == GREEN_READ ? "read" : mask == GREEN_WRITE ? "write" : "read+write");
    } else if (t->why == GREEN_WHY_POLL) {
        snprintf(b, n, " on poll of %lu fds", (unsigned long)t->why_arg);
    } else if (t->why == GREEN_WHY_JOIN) {
        const struct green_thread *o = (const void *)t->why_arg;
        snprintf(b, n, " on join of %llu", (unsigned long long)o->id);
    } else if (t->why_arg) {
        snprintf(b, n, " on %s %p", why_name(t->why), (void *)t->why_arg);
    } else {
        snprintf(b, n, " on %s", why_name(t->why));
    }
}

void green_dump(int fd)
{
    struct green__ctx *c = green__tls_ctx;
    char line[256], what[96];
    if (!c) {
        int n = snprintf(line, sizeof line, "libgreen: no green threads on this OS thread\n");
        ssize_t r = write(fd, line, (size_t)n);
        (void)r;
        return;
    }
    int64_t now = green_now();
    int n = snprintf(line, sizeof line, "libgreen: green threads (%zu besides main):\n",
                     c->nthreads);
    ssize_t r = write(fd, line, (size_t)n);
    for (const struct green_thread *t = c->all; t; t = t->all_next) {
        describe_wait(t, what, sizeof what);
        double secs = t->state == GREEN_PARKED ? (double)(now - t->park_since) / 1e9 : 0;
        n = snprintf(line, sizeof line, "  %6llu %-20s %-8s%s%s",
                     (unsigned long long)t->id, t->name, state_name(t->state), what,
                     t == c->current ? " (current)" : "");
        if (t->state == GREEN_PARKED && n < (int)sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, " for %.3f s", secs);
        if (n >= (int)sizeof line - 1)
            n = (int)sizeof line - 2;
        line[n++] = '\n';
        r = write(fd, line, (size_t)n);
    }
    (void)r;
}

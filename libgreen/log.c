/*
 * log.c - messages on stderr, the crash of a broken invariant, and the
 * monotonic clock.
 *
 * green__log formats into a buffer on the caller's stack and writes the
 * line with one write(2), the real one (never the hook: a message from a
 * green thread must not park), unless GREEN_LOG_LEVEL is 0. green__panic names the subsystem and the file:line of the
 * invariant that broke, then aborts (green__assert is never compiled out).
 * green_now is CLOCK_MONOTONIC in ns, the time base of every deadline.
 * These lived at the top of hub.c; the scheduler's essay is in sched.c.
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- logging */

static void vlog(const char *fmt, va_list ap)
{
    char b[1024];
    int n = snprintf(b, sizeof b, "libgreen: ");
    n += vsnprintf(b + n, sizeof b - (size_t)n - 1, fmt, ap);
    if (n > (int)sizeof b - 2)
        n = (int)sizeof b - 2;
    b[n++] = '\n';
    ssize_t r = GREEN_REAL(write)(2, b, (size_t)n);
    (void)r;
}

/* An error: printed unless GREEN_LOG_LEVEL=0 (green__warn and
 * green__debug, green_internal.h, for the levels above). */
void green__log(const char *fmt, ...)
{
    if (green__log_level < 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

static void log_always(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

/* Whatever the level: the process is about to abort. */
void green__panic(const char *sub, const char *file, int line, const char *what)
{
    log_always("%s: invariant broken at %s:%d: %s", sub, file, line, what);
    abort();
}

int64_t green_now(void)
{
    struct timespec ts;
    GREEN_REAL(clock_gettime)(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

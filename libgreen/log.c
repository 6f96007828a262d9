/*
 * log.c - messages on stderr, the crash of a broken invariant, and the
 * monotonic clock.
 *
 * green__log formats into a buffer on the caller's stack and writes the
 * line with one write(2). green__panic names the subsystem and the file:line of the
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

void green__log(const char *fmt, ...)
{
    char b[1024];
    int n = snprintf(b, sizeof b, "libgreen: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(b + n, sizeof b - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof b - 2)
        n = (int)sizeof b - 2;
    b[n++] = '\n';
    ssize_t r = write(2, b, (size_t)n);
    (void)r;
}

void green__panic(const char *sub, const char *file, int line, const char *what)
{
    green__log("%s: invariant broken at %s:%d: %s", sub, file, line, what);
    abort();
}

int64_t green_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

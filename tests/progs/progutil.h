/*
 * progutil.h - what the plain test programs (tests/progs) share, and the
 * tests that watch them: a line on stdout with one write(2), and the OS
 * thread count of a process. Header
 * only, static functions: each program stays one plain C file that links
 * nothing of libgreen's.
 */
#ifndef GREEN_TESTS_PROGUTIL_H
#define GREEN_TESTS_PROGUTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* One line on stdout, written at once (exit 99 if it cannot be). */
static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void out(const char *fmt, ...)
{
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof b - 2)
        n = (int)sizeof b - 2;
    b[n++] = '\n';
    if (write(1, b, (size_t)n) != n)
        exit(99);
}

/* The "Threads:" line of /proc/PID/status (pid 0: this process), or -1. */
static int os_threads_of(int pid) __attribute__((unused));
static int os_threads_of(int pid)
{
    char path[64], line[256];
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/status", pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

static int os_threads(void) __attribute__((unused));
static int os_threads(void)
{
    return os_threads_of(0);
}

#endif

/*
 * progs_common.h - helpers shared by the wait/ and proc/ child programs:
 * how many OS threads the process has, and which object defines a symbol
 * (the proof that the preloaded hook is the one called).
 */
#ifndef PROGS_COMMON_H
#define PROGS_COMMON_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "Threads:" of /proc/self/status, or -1. */
static inline int os_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8))
            n = atoi(line + 8);
    if (f)
        fclose(f);
    return n;
}

/* 1 when the definition of sym used by this program is libgreen's. */
static inline int hooked(void *sym)
{
    Dl_info di;
    return dladdr(sym, &di) && di.dli_fname && strstr(di.dli_fname, "libgreen");
}

static inline long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif

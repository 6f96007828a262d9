/*
 * progs_io.h - shared helpers of the io child programs. These programs are
 * plain C + pthreads, never linked to libgreen: the tests run them under
 * LD_PRELOAD=libgreen.so and compare with what the kernel promises.
 *
 * Every program prints a line "HOOK read=<file> pthread_create=<file>"
 * naming the object that defines each symbol as the program sees it, so
 * a test can first prove that the shim's hooks were really taken.
 */
#ifndef PROGS_IO_H
#define PROGS_IO_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Which shared object defines sym for this program. */
static inline const char *prog_lib_of(const char *sym)
{
    Dl_info info;
    void *p = dlsym(RTLD_DEFAULT, sym);
    if (!p || !dladdr(p, &info) || !info.dli_fname)
        return "?";
    const char *slash = strrchr(info.dli_fname, '/');
    return slash ? slash + 1 : info.dli_fname;
}

static inline void prog_report_hooks(void)
{
    printf("HOOK read=%s pthread_create=%s\n", prog_lib_of("read"),
           prog_lib_of("pthread_create"));
    fflush(stdout);
}

/* OS threads of this process, from /proc/self/status. */
static inline int prog_os_threads(void)
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

/* Raise the soft descriptor limit (the tests stay under 20000). */
static inline void prog_raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* write() until everything is written; -1 on error. */
static inline int prog_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* read() exactly n bytes; -1 on error or early EOF. */
static inline int prog_read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

#endif

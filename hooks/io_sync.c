/*
 * io_sync.c - fsync, fdatasync, syncfs and a waiting sync_file_range on
 * the worker pool when they are slow.
 *
 * What it is. A flush to a disk waits for the device: hundreds of
 * microseconds to many milliseconds, in the kernel, where no readiness
 * exists to park on. Made inline it stops every green thread of the hub
 * for that long (a database's group commit: every session of the hub
 * waits for one fsync, natively only the committing thread does). On the
 * worker pool (green_offload) only the caller parks, and the handoff
 * costs a thread wake-up each way, 10-30 us.
 *
 * When. A flush of a file with nothing dirty, or on tmpfs, takes a
 * microsecond, less than the handoff: always offloading would slow those
 * programs down. So the hook keeps a process-wide smoothed duration of
 * the flush system calls themselves (inline, or measured by the worker
 * around the call, the handoff left out) and offloads while it is above
 * SLOW_NS; a program whose flushes turn fast again goes back inline at
 * the next one. GREEN_HOOKS=+file offloads every one, as it does reads
 * and writes of regular files. Only a green thread offloads; the hub, a
 * plain OS thread and libgreen's own calls make the call where they are.
 *
 * Semantics. The same system call with the same arguments, on another OS
 * thread of the process: the kernel's result and errno are the caller's
 * (a successful call leaves errno as it was). A flush is not interrupted
 * by signals natively, and a handler that runs while the caller is parked
 * does not interrupt it either. A kill (a cancellation point: fsync and
 * fdatasync are POSIX cancellation points) returns ECANCELED at once, as
 * green_offload does, while the flush completes on its worker; the job is
 * then the worker's to free.
 *
 * Rejected: offloading only after a timer saw the hub stuck (the monitor
 * would then name the call after the damage); a per-descriptor estimate
 * (one disk's flushes look alike, and the first flush of each descriptor
 * would block the hub again).
 */
#define _GNU_SOURCE
#include "io_internal.h"
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define SLOW_NS 100000           /* 100 us: several handoffs */

static _Atomic int64_t smooth_ns;

enum sync_op { S_FSYNC, S_FDATASYNC, S_SYNCFS, S_RANGE };

struct sync_job {
    enum sync_op op;
    int fd;
    off64_t off, n;
    unsigned int flags;
    int r, err;
};

/* One measured flush into the smoothed duration (1/8 weight). */
static void note(int64_t ns)
{
    int64_t s = atomic_load_explicit(&smooth_ns, memory_order_relaxed);
    atomic_store_explicit(&smooth_ns, s + (ns - s) / 8, memory_order_relaxed);
}

static int call(const struct sync_job *j)
{
    switch (j->op) {
    case S_FSYNC:
        return REAL(fsync)(j->fd);
    case S_FDATASYNC:
        return REAL(fdatasync)(j->fd);
    case S_SYNCFS:
        return REAL(syncfs)(j->fd);
    default:
        return REAL(sync_file_range)(j->fd, j->off, j->n, j->flags);
    }
}

static int timed(struct sync_job *j)
{
    int64_t t0 = green_now();
    int r = call(j);
    int e = errno;
    note(green_now() - t0);
    errno = e;
    return r;
}

static void *job_run(void *arg)
{
    struct sync_job *j = arg;
    j->r = timed(j);
    j->err = errno;
    return NULL;
}

static int flush(struct sync_job tmpl, bool cancel_point)
{
    struct green__ctx *c = green__tls_ctx;
    bool green = io_on() && !green__in_libev && c && c->current != c->hub;
    if (!green)
        return call(&tmpl);
    int e0 = errno;
    if (cancel_point)
        green__cancel_point(0);
    bool slow = green__hook_on(GREEN_HOOK_FILE) ||
                atomic_load_explicit(&smooth_ns, memory_order_relaxed) > SLOW_NS;
    if (!slow)
        return timed(&tmpl);
    struct sync_job *j = malloc(sizeof *j);
    if (!j)
        return timed(&tmpl);       /* slower, still correct */
    *j = tmpl;
    if (green_offload(job_run, j, NULL) != 0) {
        if (errno == ECANCELED) {  /* j leaks: the worker still runs */
            errno = green__cancel_point(ECANCELED);
            return -1;
        }
        free(j);
        return timed(&tmpl);       /* no worker could start */
    }
    int r = j->r, e = j->err;
    free(j);
    errno = r < 0 ? e : e0;        /* the worker's errno is not ours */
    return r;
}

int green_hook_fsync(int fd)
{
    return flush((struct sync_job){ .op = S_FSYNC, .fd = fd }, true);
}

int green_hook_fdatasync(int fd)
{
    return flush((struct sync_job){ .op = S_FDATASYNC, .fd = fd }, true);
}

int green_hook_syncfs(int fd)
{
    return flush((struct sync_job){ .op = S_SYNCFS, .fd = fd }, false);
}

int green_hook_sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags)
{
    /* Without a WAIT flag it only starts write-out: it does not wait. */
    if (!(flags & (SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER)))
        return REAL(sync_file_range)(fd, off, n, flags);
    return flush((struct sync_job){ .op = S_RANGE, .fd = fd, .off = off, .n = n,
                                    .flags = flags }, false);
}

/*
 * io_pipe.c - the hooks' path for descriptors that are not sockets (pipes,
 * FIFOs, ttys, eventfds and the rest) and the offload of regular-file
 * I/O to the worker pool (GREEN_HOOKS including "file"). io.c's dispatch
 * sends a call here once fdstate.c says the fd is no socket; why this
 * path is readiness-then-call is in io.c's essay.
 *
 * Invariants: the open file description is never changed (no O_NONBLOCK:
 * other processes share it); the program's blocking call is made only
 * once poll(fd, 0) said it cannot block, or once it would fail at once
 * (green__io_ready_for_call lets the kernel reject a call before we park
 * on it); a pipe write larger than PIPE_BUF goes in pieces of at most
 * PIPE_BUF, each of which fits after POLLOUT; nothing here is cached. A
 * file job lives on the heap: a killed caller returns while the worker
 * still writes its result.
 *
 * Rejected: O_NONBLOCK on pipes (io.c's essay); parking before trying (a
 * wasted round trip through the hub on a busy pipe); offloading regular
 * files by default (DESIGN.md makes it opt-in: a page-cache hit would pay
 * a thread handoff for a read that costs a microsecond).
 */
#define _GNU_SOURCE
#include "io_internal.h"
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* ------------------------------------------------------- non-sockets */

/* Would the kernel fail a read (GREEN_READ) or write of n bytes on this
 * anonymous-inode descriptor at once, before it would block? eventfd and
 * timerfd transfer 8-byte counters, signalfd whole siginfo records, and
 * timerfd, signalfd and epoll have no write (epoll no read either): the
 * kernel says EINVAL, where poll would just say "not ready" and a park
 * would never end. Asked only when the call would otherwise park (one
 * readlink), never on the fast path. */
static bool kernel_rejects(int fd, int mask, size_t n)
{
    char path[32], link[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(path, link, sizeof link - 1);
    if (k <= 11 || strncmp(link, "anon_inode:", 11) != 0)
        return false;
    link[k] = 0;
    const char *what = link + 11;
    bool rd = mask == GREEN_READ;
    if (strcmp(what, "[eventfd]") == 0)
        return n < sizeof(uint64_t);
    if (strcmp(what, "[timerfd]") == 0)
        return !rd || n < sizeof(uint64_t);
    if (strcmp(what, "[signalfd]") == 0)
        return !rd || n < sizeof(struct signalfd_siginfo);
    if (strcmp(what, "[eventpoll]") == 0)
        return true;
    return false;
}

/* Wait until a blocking call of n bytes on a non-socket fd cannot block,
 * or until the call would fail anyway: an error poll reports, the
 * program's own O_NONBLOCK, a descriptor not open for that direction
 * (EBADF), a transfer the kernel refuses before blocking (zero bytes to a
 * pipe, a short eventfd read...). Rule: let the kernel reject a call
 * before parking on it. restartable: false once the call moved bytes (a
 * signal then ends it with the partial count, SA_RESTART or not).
 * Returns 0 to make the call, -1 with errno. May switch. */
int green__io_probe(struct pollfd *p, nfds_t n)
{
    int r;
    while ((r = REAL(poll)(p, n, 0)) < 0 && errno == EINTR)
        ;
    return r;
}

int green__io_ready_for_call(int fd, int mask, size_t n, bool restartable)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = mask == GREEN_READ ? POLLIN : POLLOUT };
        if (green__io_probe(&p, 1) != 0)
            return 0;              /* ready, or an error the call will report */
        int fl = REAL(fcntl)(fd, F_GETFL);
        if (fl < 0 || (fl & O_NONBLOCK))
            return 0;              /* the call reports EBADF or EAGAIN itself */
        int acc = fl & O_ACCMODE;
        if (n == 0 || acc == (mask == GREEN_READ ? O_WRONLY : O_RDONLY) ||
            kernel_rejects(fd, mask, n))
            return 0;              /* the call answers at once */
        if (green__hook_park_fd(fd, mask, GREEN_FOREVER, restartable) != 0)
            return -1;             /* EINTR (handler without SA_RESTART), EBADF... */
    }
}

/* A blocking write to a pipe, in pieces that fit (see io.c's essay). */
ssize_t green__io_pipe_write(int fd, const char *buf, size_t n)
{
    size_t done = 0;
    do {
        if (green__io_ready_for_call(fd, GREEN_WRITE, n, done == 0) < 0)
            return done ? (ssize_t)done : -1;
        size_t k = n - done;
        if (n > PIPE_BUF && k > PIPE_BUF)
            k = PIPE_BUF;
        ssize_t r = REAL(write)(fd, buf + done, k);
        if (r < 0)
            return done ? (ssize_t)done : -1;
        done += (size_t)r;
    } while (done < n);
    return (ssize_t)done;
}

/* 0 when the kernel can read iov[0..cnt), else -1 (EFAULT): checked
 * before our own code reads it. */
int green__io_iov_check(const struct iovec *iov, int cnt)
{
    struct iovec tmp[64];
    for (int k = 0; k < cnt; k += 64) {
        int n = cnt - k < 64 ? cnt - k : 64;
        if (green__copy_in(tmp, iov + k, sizeof *iov * (size_t)n) != 0)
            return -1;
    }
    return 0;
}

/* A blocking writev to a pipe: atomic when it fits in PIPE_BUF, as the
 * kernel promises; otherwise in pieces of at most PIPE_BUF. May switch. */
ssize_t green__io_pipe_writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (green__io_iov_check(iov, iovcnt) != 0)
        return REAL(writev)(fd, iov, iovcnt);   /* EFAULT, as the kernel says */
    size_t total = iov_total(iov, (size_t)iovcnt), done = 0;
    if (total <= PIPE_BUF) {
        if (green__io_ready_for_call(fd, GREEN_WRITE, total, true) < 0)
            return -1;
        return REAL(writev)(fd, iov, iovcnt);
    }
    struct iovec tmp[IOV_CHUNK];
    while (done < total) {
        if (green__io_ready_for_call(fd, GREEN_WRITE, total, done == 0) < 0)
            return done ? (ssize_t)done : -1;
        int n = green__io_iov_window(iov, (size_t)iovcnt, done, PIPE_BUF, tmp, IOV_CHUNK);
        ssize_t r = REAL(writev)(fd, tmp, n);
        if (r < 0)
            return done ? (ssize_t)done : -1;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

/* ------------------------------------------------- regular-file offload */

static void *file_job_run(void *p)
{
    struct file_job *j = p;
    switch (j->op) {
    case F_READ:   j->r = REAL(read)(j->fd, j->buf, j->n); break;
    case F_WRITE:  j->r = REAL(write)(j->fd, j->buf, j->n); break;
    case F_PREAD:  j->r = REAL(pread)(j->fd, j->buf, j->n, j->off); break;
    case F_PWRITE: j->r = REAL(pwrite)(j->fd, j->buf, j->n, j->off); break;
    case F_READV:  j->r = REAL(readv)(j->fd, j->iov, j->iovcnt); break;
    case F_WRITEV: j->r = REAL(writev)(j->fd, j->iov, j->iovcnt); break;
    }
    j->err = errno;
    return NULL;
}

/* Run j on the worker pool. The job is on the heap: a killed caller
 * returns at once while the worker still writes its result. May switch. */
ssize_t green__io_file_offload(const struct file_job *tmpl)
{
    int e0 = errno;
    struct file_job *j = malloc(sizeof *j);
    if (!j) {
        errno = ENOMEM;
        return -1;
    }
    *j = *tmpl;
    if (green_offload(file_job_run, j, NULL) != 0) {
        if (errno == ECANCELED)    /* j leaks: the worker still runs */
            errno = green__cancel_point(ECANCELED);
        return -1;
    }
    ssize_t r = j->r;
    int e = j->err;
    free(j);
    errno = r < 0 ? e : e0;        /* the worker's errno is not ours */
    return r;
}

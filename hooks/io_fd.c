/*
 * io_fd.c - descriptor lifetime: the calls that make, duplicate, change
 * and close descriptors (pipe, pipe2, open, openat, epoll_create,
 * eventfd, close, close_range, closefrom, dup, dup2, dup3, fcntl, ioctl
 * FIONBIO, setsockopt and getsockopt), and what fdstate.c and
 * libgreen/fd.c learn from them. socket, socketpair and accept are in
 * io_conn.c; the design essay is in io.c.
 *
 * Invariants: every descriptor a hooked call makes gets a fresh slot
 * (green__io_created); close wakes every green thread waiting on the fd
 * with EBADF before the real close (green__io_fd_gone); libgreen's own descriptors
 * do not exist for the program (close, fcntl and dup give EBADF, dup2 or
 * dup3 onto one EBUSY, close_range and closefrom close around them);
 * F_GETFL and FIONBIO show the program its own view while a connect of
 * ours holds O_NONBLOCK. A blocking open of a FIFO runs on a worker
 * thread: its wait (often for another thread of the same program) would
 * freeze the hub.
 *
 * Rejected: rebuilding the hub's loop when a daemon closes its fds
 * (io.c's essay); opening a FIFO with O_NONBLOCK and waiting for
 * readiness (a reader cannot see a writer that has not written yet).
 */
#define _GNU_SOURCE
#include "io_internal.h"
#include "hooks_wait.h"
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------- descriptors */

/* Record a descriptor made by a hooked call. */
void green__io_created(int fd, enum green__fdkind kind, bool nonblock)
{
    green__io_fresh_number(fd);
    green__fdstate_created(fd, kind, nonblock);
}

int green_hook_pipe(int fds[2])
{
    return green_hook_pipe2(fds, 0);
}

int green_hook_pipe2(int fds[2], int flags)
{
    int r = flags ? REAL(pipe2)(fds, flags) : REAL(pipe)(fds);
    if (r == 0) {
        green__io_created(fds[0], GREEN_FD_PIPE, flags & O_NONBLOCK);
        green__io_created(fds[1], GREEN_FD_PIPE, flags & O_NONBLOCK);
    }
    return r;
}

/* Blocking open() of a FIFO. Natively open(fifo, O_RDONLY) waits for a
 * writer and O_WRONLY for a reader, often another thread of the same
 * program: made on the hub's OS thread, the wait would freeze every green
 * thread, that other one included, for ever. So a green thread's blocking
 * open of a FIFO (one fstatat first tells; only opens that can block pay
 * it: not O_RDWR, O_NONBLOCK or O_PATH) is made by a worker thread
 * (green_offload) while the caller parks, interruptibly: a signal makes it
 * fail with EINTR, or wait on under SA_RESTART, as the kernel's FIFO open.
 * An O_WRONLY open first tries O_NONBLOCK: with a reader present it
 * succeeds at once and costs no worker (the flag is cleared again before
 * anybody sees the descriptor). Known limits: an interrupted open leaves
 * its worker blocked until the other end appears (then the descriptor is
 * closed), and four such waits occupy the whole default worker pool.
 * Rejected: opening with O_NONBLOCK and waiting for readiness (a FIFO
 * reader cannot see a writer that has not written yet). */
struct open_job {
    int dirfd;
    char *path;                    /* our copy: the caller may be gone */
    int flags;
    mode_t mode;
    int fd;                        /* result */
    int err;
    atomic_int state;              /* OPEN_WAITING, OPEN_DONE, OPEN_ABANDONED */
};

enum { OPEN_WAITING, OPEN_DONE, OPEN_ABANDONED };

static void open_job_free(struct open_job *j)
{
    free(j->path);
    free(j);
}

static void *open_job_run(void *p)
{
    struct open_job *j = p;
    j->fd = REAL(openat)(j->dirfd, j->path, j->flags, j->mode);
    j->err = errno;
    if (atomic_exchange(&j->state, OPEN_DONE) == OPEN_ABANDONED) {
        if (j->fd >= 0)
            REAL(close)(j->fd);    /* the caller was interrupted */
        open_job_free(j);
    }
    return NULL;
}

/* One offloaded open; -1 with errno EINTR/ECANCELED when interrupted. */
static int fifo_open_once(int dirfd, const char *path, int flags, mode_t mode)
{
    struct open_job *j = calloc(1, sizeof *j);
    char *copy = strdup(path);
    if (!j || !copy) {
        free(j);
        free(copy);
        errno = ENOMEM;
        return -1;
    }
    *j = (struct open_job){ .dirfd = dirfd, .path = copy, .flags = flags, .mode = mode };
    green__intr_begin();
    int r = green_offload(open_job_run, j, NULL);
    int e = errno;
    green__intr_end();
    if (r == 0) {
        int fd = j->fd;
        errno = j->err;
        open_job_free(j);
        return fd;
    }
    if (atomic_exchange(&j->state, OPEN_ABANDONED) == OPEN_DONE) {
        if (j->fd >= 0)
            REAL(close)(j->fd);
        open_job_free(j);
    }
    errno = e == ECANCELED ? green__cancel_point(ECANCELED) : e;
    return -1;
}

/* Returns the descriptor, -1 with errno, or -2 when path is no FIFO (or
 * the open cannot block): the caller opens it as usual. May switch. */
static int fifo_open(int dirfd, const char *path, int flags, mode_t mode)
{
    int acc = flags & O_ACCMODE;
    if (!io_on() || (flags & (O_NONBLOCK | O_PATH)) || acc == O_RDWR || !path)
        return -2;
    int e0 = errno;
    struct stat st;
    if (fstatat(dirfd, path, &st, (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) != 0 ||
        !S_ISFIFO(st.st_mode)) {
        errno = e0;
        return -2;
    }
    if (acc == O_WRONLY) {
        int fd = REAL(openat)(dirfd, path, flags | O_NONBLOCK, mode);
        if (fd >= 0) {
            REAL(fcntl)(fd, F_SETFL, REAL(fcntl)(fd, F_GETFL) & ~O_NONBLOCK);
            errno = e0;
            return fd;
        }
        if (errno != ENXIO)
            return -1;
    }
    for (;;) {
        int fd = fifo_open_once(dirfd, path, flags, mode);
        if (fd >= 0 || errno != EINTR || !green__intr_restarts())
            return (int)kept(fd, e0);
    }
}

int green_hook_open(const char *path, int flags, mode_t mode)
{
    int fd = fifo_open(AT_FDCWD, path, flags, mode);
    if (fd == -2)
        fd = REAL(open)(path, flags, mode);
    if (fd >= 0)
        green__io_created(fd, GREEN_FD_UNKNOWN, flags & O_NONBLOCK);
    return fd;
}

int green_hook_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    int fd = fifo_open(dirfd, path, flags, mode);
    if (fd == -2)
        fd = REAL(openat)(dirfd, path, flags, mode);
    if (fd >= 0)
        green__io_created(fd, GREEN_FD_UNKNOWN, flags & O_NONBLOCK);
    return fd;
}

/* Wake green threads waiting on fd (EBADF) and forget its state. */
void green__io_fd_gone(int fd)
{
    if (green__tls_ctx)
        green_fd_closing(fd);
    green__fdstate_reset(fd);
}

/* The epoll fd libev made last on this OS thread (epoll_made). */
static __thread int libev_epfd __attribute__((tls_model("initial-exec"))) = -1;

int green_hook_close(int fd)
{
    if (green__unlikely(green__fd_is_internal(fd))) {
        if (!green__in_libev &&
            !(fd == libev_epfd && green__libev_rebuild_begin())) {
            errno = EBADF;
            return -1;
        }
        green__fd_set_internal(fd, false);   /* libev closing its own */
    }
    green__io_fd_gone(fd);
    return REAL(close)(fd);
}

/* Forget every descriptor of [first, last] we know of (close_range,
 * closefrom): glibc closes them with one syscall no close hook sees. */
static void forget_range(unsigned int first, unsigned int last)
{
    unsigned int limit = (unsigned int)green__fdstate_limit();
    for (unsigned int fd = first; fd < limit && fd <= last; fd++)
        green__io_fd_gone((int)fd);
}

/* An epoll fd made by libev for a hub is libgreen's own; one the program
 * makes takes a number that is no longer internal. libev's is remembered
 * per OS thread (a hub's loop is made and remade on its own OS thread):
 * libev closes it when it remakes its set (hub.c, hub_poll). */
static int epoll_made(int fd)
{
    if (fd >= 0 && green__in_libev)
        return libev_epfd = green__fd_hide(fd);
    if (fd >= 0) {
        green__io_created(fd, GREEN_FD_OTHER, false);
        green__epoll_made(fd);     /* a new set: waited on as usual */
    }
    return fd;
}

int green_hook_epoll_create(int size)
{
    return epoll_made(REAL(epoll_create)(size));
}

int green_hook_epoll_create1(int flags)
{
    return epoll_made(REAL(epoll_create1)(flags));
}

/* libev's async eventfd is made here while green__in_libev (the first
 * ev_async_start of a hub, and again after a fork): moved out of the
 * program's range like the epoll fd. */
int green_hook_eventfd(unsigned int count, int flags)
{
    int fd = REAL(eventfd)(count, flags);
    if (fd >= 0 && green__in_libev)
        return green__fd_hide(fd);
    if (fd >= 0)
        green__io_created(fd, GREEN_FD_OTHER, flags & EFD_NONBLOCK);
    return fd;
}

/* Real close_range on [a, b], then forget what it closed. With flags 0
 * and no close_range in the kernel, one close each (closefrom's pieces
 * below an internal fd only, so b is bounded). */
static int close_piece(unsigned int a, unsigned int b, int flags)
{
    if (!GREEN_REAL(close_range)) {
        errno = ENOSYS;
        return -1;
    }
    int r = green__real.close_range(a, b, flags);
    if (r != 0 && errno == ENOSYS && flags == 0 && b < (unsigned int)green__fdstate_limit()) {
        for (unsigned int fd = a; fd <= b; fd++)
            REAL(close)((int)fd);
        r = 0;
    }
    if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
        forget_range(a, b);
    return r;
}

/* Close the parts of [first, last] below and between internal fds (they
 * can only be below the table's limit); *rest = first number after the
 * last internal fd of the range (first when there is none). */
static int close_around_internal(unsigned int first, unsigned int last, int flags,
                                 unsigned int *rest)
{
    unsigned int limit = (unsigned int)green__fdstate_limit();
    unsigned int from = first;
    for (unsigned int fd = first; fd < limit && fd <= last; fd++) {
        if (!green__fd_is_internal((int)fd))
            continue;
        if (fd > from && close_piece(from, fd - 1, flags) != 0)
            return -1;
        from = fd + 1;
    }
    *rest = from;
    return 0;
}

int green_hook_close_range(unsigned int first, unsigned int last, int flags)
{
    unsigned int rest = first;
    if (first <= last && !green__in_libev &&
        close_around_internal(first, last, flags, &rest) != 0)
        return -1;
    if (first <= last && rest > last)
        return 0;                  /* the range ended on an internal fd */
    return close_piece(rest, last, flags);
}

void green_hook_closefrom(int lowfd)
{
    unsigned int rest = (unsigned int)lowfd;
    if (lowfd >= 0 && !green__in_libev)
        close_around_internal((unsigned int)lowfd, ~0u, 0, &rest);
    if (!GREEN_REAL(closefrom))
        abort();                   /* only a program linked with it gets here */
    green__real.closefrom(lowfd >= 0 ? (int)rest : lowfd);
    if (lowfd >= 0)
        forget_range(rest, ~0u);
}

/* A stream over fd: a socket's or a pipe's reads and writes go through
 * the hooks (io_stdio.c); any other is glibc's, whose fclose closes the
 * number where no hook sees it, so fd stops being an own socket
 * (libgreen/fdstate.c; kept for both, the stream may be dup'd away). */
FILE *green_hook_fdopen(int fd, const char *mode)
{
    green__fdstate_share(fd);
    /* Whoever makes the stream: main may make it before any thread, and
     * read it later as a green thread. */
    if (!(green__hook_families & GREEN_HOOK_IO) || !mode)
        return GREEN_REAL(fdopen)(fd, mode);
    return green__stdio_fdopen(fd, mode);
}

int green_hook_dup(int fd)
{
    if (fd_hidden(fd)) {
        errno = EBADF;
        return -1;
    }
    int r = REAL(dup)(fd);
    if (r >= 0) {
        green__io_fresh_number(r);
        green__fdstate_dup(fd, r);
    }
    return r;
}

/* dup2/dup3 onto an internal fd: natively that number is free and the call
 * succeeds, but libev keeps its epoll fd's number in its opaque loop and
 * cannot be re-pointed; replacing it would break the hub for good. Fail
 * with EBUSY (what Linux says while the target number is being set up). */
static int dup_target_check(int fd, int fd2)
{
    if (fd_hidden(fd)) {
        errno = EBADF;
        return -1;
    }
    if (fd_hidden(fd2)) {
        errno = EBUSY;
        return -1;
    }
    return 0;
}

/* dup2/dup3 close fd2 and give its number to fd's file in one call: fd2's
 * waiters on every hub get EBADF and forget it first, as close's do
 * (green__io_fd_gone before the real call). Forgotten after the call, a waiter
 * that another hub had readied before could retry its call by number on
 * the new file (an accept or epoll_wait on a socket: EINVAL). A call that
 * will fail at once (fd not open, dup3's EINVAL) leaves fd2 alone. */
static void replacing(int fd, int fd2)
{
    if (fd != fd2 && REAL(fcntl)(fd, F_GETFD) >= 0)
        green__io_fd_gone(fd2);
}

int green_hook_dup2(int fd, int fd2)
{
    if (dup_target_check(fd, fd2) != 0)
        return -1;
    replacing(fd, fd2);
    int r = REAL(dup2)(fd, fd2);
    if (r >= 0 && fd != fd2)
        green__fdstate_dup(fd, fd2);
    return r;
}

int green_hook_dup3(int fd, int fd2, int flags)
{
    if (dup_target_check(fd, fd2) != 0)
        return -1;
    if (!(flags & ~O_CLOEXEC))
        replacing(fd, fd2);
    int r = REAL(dup3)(fd, fd2, flags);
    if (r >= 0)
        green__fdstate_dup(fd, fd2);
    return r;
}

/* The kernel's flags are the program's (no O_NONBLOCK of ours stays on a
 * description), except while a blocking connect of ours holds the flag:
 * then F_GETFL shows the program's own O_NONBLOCK and F_SETFL records it
 * and keeps ours until the connect restores the program's. */
int green_hook_fcntl(int fd, int cmd, void *arg)
{
    if (green__unlikely(green__in_libev)) {
        /* libev's fd_intern: the only F_SETFD libev makes is on its own
         * new fds, which is how its async eventfd/pipe gets marked. */
        int r = REAL(fcntl)(fd, cmd, arg);
        if (r == 0 && cmd == F_SETFD)
            green__fd_set_internal(fd, true);
        return r;
    }
    if (fd_hidden(fd)) {
        errno = EBADF;             /* probes (F_GETFD/F_GETFL) skip it */
        return -1;
    }
    switch (cmd) {
    case F_GETFL: {
        int r = REAL(fcntl)(fd, F_GETFL);
        struct green__fdinfo i = green__fdstate_peek(fd);
        if (r >= 0 && i.our_nonblock)
            r = (r & ~O_NONBLOCK) | (i.user_nonblock ? O_NONBLOCK : 0);
        return r;
    }
    case F_SETFL: {
        int fl = (int)(intptr_t)arg;
        struct green__fdinfo i = green__fdstate_peek(fd);
        int r = REAL(fcntl)(fd, F_SETFL, i.our_nonblock ? fl | O_NONBLOCK : fl);
        if (r == 0)
            green__fdstate_set_user_nonblock(fd, fl & O_NONBLOCK);
        return r;
    }
    case F_SETLKW:
    case F_OFD_SETLKW:
        return green__io_lock_wait(fd, cmd, arg);
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int r = REAL(fcntl)(fd, cmd, (int)(intptr_t)arg);
        if (r >= 0) {
            green__io_fresh_number(r);
            green__fdstate_dup(fd, r);
        }
        return r;
    }
    default:
        return REAL(fcntl)(fd, cmd, arg);
    }
}

int green_hook_ioctl(int fd, unsigned long req, void *arg)
{
    if (req != FIONBIO || !arg)
        return REAL(ioctl)(fd, req, arg);
    bool on = *(const int *)arg != 0;
    struct green__fdinfo i = green__fdstate_peek(fd);
    if (i.our_nonblock && !on) {
        /* Keep our O_NONBLOCK; the program sees blocking semantics. */
        if (REAL(fcntl)(fd, F_GETFL) < 0)
            return -1;             /* EBADF as the ioctl would say */
        green__fdstate_set_user_nonblock(fd, false);
        return 0;
    }
    int r = REAL(ioctl)(fd, req, arg);
    if (r == 0)
        green__fdstate_set_user_nonblock(fd, on);
    return r;
}

static bool is_timeo_opt(int opt, int *dir)
{
    if (opt == SO_RCVTIMEO
#ifdef SO_RCVTIMEO_NEW
        || opt == SO_RCVTIMEO_NEW || opt == SO_RCVTIMEO_OLD
#endif
    ) {
        *dir = 0;
        return true;
    }
    if (opt == SO_SNDTIMEO
#ifdef SO_SNDTIMEO_NEW
        || opt == SO_SNDTIMEO_NEW || opt == SO_SNDTIMEO_OLD
#endif
    ) {
        *dir = 1;
        return true;
    }
    return false;
}

int green_hook_setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
    int r = REAL(setsockopt)(fd, level, opt, val, len);
    int dir;
    if (r == 0 && level == SOL_SOCKET && is_timeo_opt(opt, &dir) &&
        len >= sizeof(struct timeval)) {
        /* On 64-bit Linux both the old and the new layouts are two 64-bit
         * words: seconds and microseconds. */
        const int64_t *w = val;
        int64_t ns = w[0] * 1000000000 + w[1] * 1000;
        /* Linux: {0, 0} waits forever; a negative tv_sec makes the socket
         * time out at once (EAGAIN without waiting): 1 ns does that. */
        green__fdstate_set_timeo(fd, dir, w[0] < 0 ? 1 : ns > 0 ? ns : 0);
    }
    return r;
}

int green_hook_getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
    return REAL(getsockopt)(fd, level, opt, val, len);
}

/*
 * io_internal.h - what the files of the I/O hook layer share: io.c (the
 * core: design essay, wait helpers, read/write dispatch, fortified entry
 * points), io_sock.c, io_pipe.c, io_conn.c, io_sendfile.c and io_fd.c.
 * io.h stays the layer's contract with preload/ and the tests.
 *
 * Invariants: nothing here is exported (green__io_* are hidden, the rest
 * static inline). Every helper that a ready read or write runs through
 * (would_block, io_on, kept, kind_for_call, sock_recv, file_offload_on) is
 * static inline here, so the split into files added no call to the fast
 * path: a hooked read on a ready socket is one syscall and makes the same
 * calls as before. Slow paths (parking, MSG_WAITALL, pipes, offload) are
 * ordinary hidden functions in the file that owns them.
 *
 * Rejected: one file (io.c held all six parts, 1,900 lines, before the
 * split); making every shared helper static inline (the slow paths would
 * be copied into every file that calls them).
 */
#ifndef GREEN_HOOKS_IO_INTERNAL_H
#define GREEN_HOOKS_IO_INTERNAL_H

#include "hooks.h"
#include "fdstate.h"
#include "io.h"
#include "hooks_signal.h"
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* The real function, resolving the table first if a hook runs before the
 * preload constructor did (another library's constructor calling read). */
#define REAL(f) (green__likely(green__real.f != NULL) ? green__real.f \
                                                      : (green__real_init(), green__real.f))
#define UNSET INT64_MIN            /* deadline not computed yet */
#define IOV_CHUNK 64               /* iovecs copied when resuming a sendmsg */

static inline bool would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK;
}

static inline bool io_on(void)
{
    return green__hook_on(GREEN_HOOK_IO);
}

/* libgreen's own fds (green_internal.h) do not exist for the program: a
 * daemon closing every fd from 3 up must not take the hub's epoll fd,
 * eventfd or timerfd. libev's own calls (green__in_libev) pass. */
static inline bool fd_hidden(int fd)
{
    return green__unlikely(green__fd_is_internal(fd)) && !green__in_libev;
}

/* A call that succeeded leaves errno as the program had it: the EAGAIN of
 * our first, non-blocking try (or an EINPROGRESS) is not the program's.
 * e0 is errno at the hook's entry. */
static inline ssize_t kept(ssize_t r, int e0)
{
    if (r >= 0)
        errno = e0;
    return r;
}

/* The kind of fd for dispatching; learns it once. */
static inline enum green__fdkind kind_for_call(int fd)
{
    enum green__fdkind k = green__fdstate_kind(fd);
    if (green__likely(k != GREEN_FD_UNKNOWN))
        return k;
    return green__fdstate_get(fd).kind;
}

static inline size_t iov_total(const struct iovec *iov, size_t n)
{
    size_t t = 0;
    for (size_t k = 0; k < n; k++)
        t += iov[k].iov_len;
    return t;
}

/* ------------------------------------------------------- core (io.c) */

/* A descriptor number handed out by the kernel again: reset libgreen/fd.c's
 * slot, so that the next wait registers the new file afresh. */
GREEN_HIDDEN void green__io_fresh_number(int fd);
/* Park until fd is ready for mask, up to the deadline computed from timeo
 * at the first park. 0 to try again, or -1 with errno (timeout_errno,
 * EBADF, ECANCELED, ETIMEDOUT, EINTR). May switch. */
GREEN_HIDDEN int green__io_park_fd_restart(int fd, int mask, int64_t *deadline,
                                           int64_t timeo, int timeout_errno,
                                           bool restartable);
/* Sleep about a millisecond inside green__intr_begin/end: 0, ETIMEDOUT,
 * EINTR or ECANCELED. May switch. */
GREEN_HIDDEN int green__io_intr_nap(int64_t deadline);

/* ------------------------------------------------------------ sockets */

enum sock_op { OP_RECV, OP_RECVFROM, OP_RECVMSG, OP_SEND, OP_SENDTO, OP_SENDMSG };

/* One socket call, as the program made it. */
struct sockop {
    enum sock_op op;
    int fd;
    void *buf;                     /* RECV, RECVFROM, SEND, SENDTO */
    size_t len;
    int flags;                     /* the program's flags */
    struct sockaddr *from;         /* RECVFROM */
    socklen_t *fromlen;
    const struct sockaddr *to;     /* SENDTO */
    socklen_t tolen;
    struct msghdr *msg;            /* RECVMSG, SENDMSG */
};

/* One try of o with these flags (the program's, plus ours): exactly the
 * program's socket call. */
GREEN_HIDDEN ssize_t green__io_sock_once(const struct sockop *o, int flags);
/* The receive slow path: the first try said EAGAIN. May switch. */
GREEN_HIDDEN ssize_t green__io_recv_slow(const struct sockop *o);
/* A receive after its first try (MSG_WAITALL, or r < 0). May switch. */
GREEN_HIDDEN ssize_t green__io_sock_recv_more(const struct sockop *o, ssize_t r);
/* Send on a socket; a blocking stream send returns when all is sent.
 * May switch. */
GREEN_HIDDEN ssize_t green__io_sock_send(const struct sockop *o);
/* The part of iov[0..cnt) from skip bytes in, at most limit bytes, into
 * tmp (at most max entries); returns the entries used. */
GREEN_HIDDEN int green__io_iov_window(const struct iovec *iov, size_t cnt, size_t skip,
                                      size_t limit, struct iovec *tmp, int max);

/* A plain read (read, recv or recvfrom without flags) that parks before
 * its first try (libgreen/fdstate.c, "park first"). May switch. */
GREEN_HIDDEN ssize_t green__io_recv_park_first(const struct sockop *o);

/* Receive on a socket: one syscall when data is there. May switch.
 * flags is read once: the compiler cannot see that green__io_sock_once
 * (another file) leaves *o alone, and would load it again after the call.
 * A plain read of an own stream socket whose last read came back short
 * parks first: the peer has not answered yet, as a rule, and the try
 * would only say EAGAIN (libgreen/fdstate.c). */
static inline ssize_t sock_recv(const struct sockop *o)
{
    int flags = o->flags;
    bool plain = flags == 0 && o->op != OP_RECVMSG;
    ssize_t r;
    if (plain && green__fdstate_park_first(o->fd)) {
        r = green__io_recv_park_first(o);
    } else {
        r = green__io_sock_once(o, flags | MSG_DONTWAIT);
        if (green__unlikely(r < 0) || green__unlikely(flags & MSG_WAITALL))
            r = green__io_sock_recv_more(o, r);
    }
    if (plain && r > 0)
        green__fdstate_note_read(o->fd, (size_t)r < o->len);
    return r;
}

/* ----------------------------------------- non-sockets, file offload */

enum file_op { F_READ, F_WRITE, F_PREAD, F_PWRITE, F_READV, F_WRITEV };

struct file_job {
    enum file_op op;
    int fd;
    void *buf;                  /* F_READ..F_PWRITE */
    size_t n;
    off_t off;                  /* F_PREAD, F_PWRITE */
    const struct iovec *iov;    /* F_READV, F_WRITEV */
    int iovcnt;
    ssize_t r;                  /* result */
    int err;                    /* errno of the worker */
};

static inline bool file_offload_on(int fd)
{
    if (!green__hook_on(GREEN_HOOK_FILE))
        return false;
    return green__fdstate_get(fd).kind == GREEN_FD_FILE;
}

/* poll(p, n, 0), asked again when a signal interrupted it: a zero-timeout
 * poll fails with EINTR when a signal arrives during it, and a caller that
 * read that -1 as "ready" made a blocking call that blocked the hub. */
GREEN_HIDDEN int green__io_probe(struct pollfd *p, nfds_t n);

/* Wait until a blocking call of n bytes on a non-socket fd cannot block,
 * or would fail anyway. 0 to make the call, -1 with errno. May switch. */
GREEN_HIDDEN int green__io_ready_for_call(int fd, int mask, size_t n, bool restartable);
/* A blocking write or writev to a pipe, in pieces that fit. May switch. */
GREEN_HIDDEN ssize_t green__io_pipe_write(int fd, const char *buf, size_t n);
GREEN_HIDDEN ssize_t green__io_pipe_writev(int fd, const struct iovec *iov, int iovcnt);
/* 0 when the kernel can read iov[0..cnt), else -1 (EFAULT). */
GREEN_HIDDEN int green__io_iov_check(const struct iovec *iov, int cnt);
/* Run a copy of *tmpl on the worker pool. May switch. */
GREEN_HIDDEN ssize_t green__io_file_offload(const struct file_job *tmpl);

/* ----------------------------------------------- descriptor lifetime */

/* Record a descriptor made by a hooked call (io_fd.c). */
GREEN_HIDDEN void green__io_created(int fd, enum green__fdkind kind, bool nonblock);
/* fd is being closed: wake its waiters (EBADF), forget its state. */
GREEN_HIDDEN void green__io_fd_gone(int fd);

#endif

/*
 * io.c - the socket and descriptor hooks: a blocking call made by a green
 * thread parks only that green thread.
 *
 * How a call waits, by kind of descriptor (fdstate.c remembers the kind):
 *  - Sockets: per-call non-blocking. The hook first makes the program's own
 *    call with MSG_DONTWAIT added (read becomes recv, readv becomes recvmsg,
 *    and so on), so a read on a ready socket is exactly one syscall and
 *    touches nothing shared. Only on EAGAIN does it look at what the
 *    program asked for: O_NONBLOCK set by the program means EAGAIN is the
 *    answer, as without us; otherwise it parks on the fd's readiness
 *    (libgreen/fd.c keeps the epoll registration armed, so a keep-alive
 *    connection costs no epoll_ctl) and tries again, up to the SO_RCVTIMEO
 *    or SO_SNDTIMEO deadline, after which it fails with EAGAIN as the
 *    kernel does. A blocking send on a stream socket natively returns only
 *    when everything is sent: the hook loops the same way and returns the
 *    total (or the partial count when an error or timeout cuts it short).
 *  - Pipes, ttys, eventfds and other descriptors: never O_NONBLOCK (the
 *    open file description is shared with other processes). The hook asks
 *    poll(fd, 0) whether the call can proceed; if not, and the program did
 *    not make the fd non-blocking itself (F_GETFL), it parks until ready.
 *    Then it makes the program's blocking call, which cannot block: a pipe
 *    read after POLLIN returns at once, and a pipe write is cut into pieces
 *    of at most PIPE_BUF bytes, each of which fits once POLLOUT said a
 *    buffer slot is free. This path uses no cached state at all. Before
 *    it parks, it lets the kernel answer the calls it answers at once
 *    (ready_for_call): zero bytes, the wrong direction (EBADF), short
 *    eventfd/timerfd/signalfd transfers and epoll fds (EINVAL).
 *  - Regular files: always "ready"; passed straight through, or run on
 *    the worker pool when GREEN_HOOKS includes "file".
 *  - accept, connect and sendfile have no per-call non-blocking form. A
 *    blocking connect sets O_NONBLOCK for the duration of the call, parks
 *    until writable, completes with a second connect() (which, like the
 *    kernel's blocking connect, marks the socket connected or consumes its
 *    error) and restores the flags; sendfile to a socket does the same
 *    around each attempt. accept never touches the
 *    flag (decision below).
 *
 * Decision: libgreen leaves no O_NONBLOCK on any open file description.
 * The flag belongs to the description, which a dup, a forked child
 * (with or without exec), an exec'd program (pre-fork, hot-upgrade and
 * socket-handoff daemons) or an SCM_RIGHTS receiver shares; a listener we
 * had made non-blocking made their blocking accept fail with EAGAIN, and
 * hiding the flag per fd number gave a dup or another process a different
 * answer than the kernel's. So a blocking accept asks poll(fd, 0) whether
 * a connection waits: if so it makes the program's own blocking accept,
 * which returns at once; if not, and the program did not make the
 * listener non-blocking itself (F_GETFL, read from the kernel), it parks
 * until the listener is readable (up to SO_RCVTIMEO, then EAGAIN as the
 * kernel says) and asks again. Cost (strace -c): a ready accept is poll +
 * accept, 2 syscalls (it was 1 with the flag left on a listener this
 * process created); an accept that has to wait adds F_GETFL and two
 * getsockopt (SO_RCVTIMEO, SO_ACCEPTCONN) once, and a second poll after
 * the wake-up: 6 plus the hub's epoll_wait, where it was 2. Known limit: when another process (or
 * another hub's OS thread) sharing the listener takes the connection
 * between our poll and our accept, the accept blocks this hub until the
 * next connection arrives, as a blocking accept would block the thread
 * natively. Rejected: setting O_NONBLOCK around each accept (4 syscalls,
 * and every process sharing the listener sees the flag meanwhile: a
 * sibling's blocking accept fails with EAGAIN, and an F_SETFL of theirs
 * is undone by our restore); clearing the flag before exec (a child
 * forked without exec, or an SCM_RIGHTS receiver, still sees it, and the
 * parent keeps accepting after the exec).
 *
 * User memory. The kernel validates every pointer the program passes; we
 * must not read one first (an iovec array, fd_sets, a timespec) or a bad
 * pointer crashes the program in our code where Linux says EFAULT. Such
 * memory is read only after the kernel accepted it in our first try, or
 * through green__copy_in on slow paths.
 *
 * errno. A call that succeeds leaves errno as the program had it, even
 * when our first, non-blocking try failed with EAGAIN before we parked.
 *
 * Kernel semantics kept: return values and errno; partial transfers; EOF;
 * SIGPIPE (the program's flags are kept, MSG_NOSIGNAL included); EINTR:
 * every park is interruptible (signal.c's green__hook_park_fd): a handler
 * without SA_RESTART makes the call fail with EINTR (or return its partial
 * count), and with SA_RESTART it keeps waiting, except on sockets with a
 * timeout and transfers that already moved bytes (they return the partial
 * count: a MSG_WAITALL receive, a large pipe write, sendfile, splice), as
 * the kernel does. Difference, documented: close wakes green
 * threads waiting on the fd with EBADF (DESIGN.md), where Linux would
 * leave them blocked.
 *
 * Cancellation points. POSIX makes read, readv, write, writev, recv*,
 * send*, accept, connect, pread and pwrite cancellation points (glibc adds
 * recvmmsg and sendmmsg): a pthread_cancel'led green thread exits there
 * with PTHREAD_CANCELED after its cleanup handlers, both when the cancel
 * is pending as it enters the call (green__cancel_point(0) on entry, before
 * anything is transferred) and when it arrives during a park (the park
 * wakes with ECANCELED, and green__hook_park_fd or file_offload acts on
 * it). close is left out although POSIX lists it: a cancel acting at its
 * entry would leave the descriptor open and its waiters asleep. Known
 * limit: a blocking connect cancelled while it waits exits with the
 * socket's O_NONBLOCK still set (fdstate keeps showing the program its own
 * view in F_GETFL).
 *
 * Descriptor numbers: every hooked call that creates a descriptor resets
 * libgreen/fd.c's slot for that number (fresh_number), because the file
 * that had it before may have been closed where no hook sees it (fclose):
 * libev would otherwise believe the old registration still stands and a
 * wait on the new file would never wake.
 *
 * libgreen's own descriptors (each hub's epoll fd and libev's async
 * eventfd, moved and marked by the epoll_create1 and eventfd hooks while
 * libev makes them, the timerfd, and the pidfds and signalfd of a waiting
 * waitpid or sigwait) sit just below min(RLIMIT_NOFILE, 1024) (fdstate.c,
 * green__fd_hide), so the program's numbers are as POSIX says, and do
 * not exist for the program: close gives EBADF without closing, close_range and
 * closefrom close around them, fcntl and dup give EBADF, and dup2/dup3
 * onto one give EBUSY (libev cannot move its epoll fd). So a daemon's
 * "close every fd from 3 up" keeps the hub working. One table lookup per
 * close. Rejected: rebuilding the loop when they vanish (the epoll set
 * and every registration would be lost in the meantime).
 *
 * Rejected: setting O_NONBLOCK on every socket (breaks stdio on sockets
 * and children that inherit them); parking before trying (one wasted hub
 * round trip and epoll registration per call on busy descriptors); an
 * fstat per call to validate the fd table (one more syscall on the fast
 * path: the syscall itself validates instead, ENOTSOCK).
 */
#define _GNU_SOURCE
#include "hooks.h"
#include "fdstate.h"
#include "io.h"
#include "hooks_signal.h"
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/* The real function, resolving the table first if a hook runs before the
 * preload constructor did (another library's constructor calling read). */
#define REAL(f) (green__likely(green__real.f != NULL) ? green__real.f \
                                                      : (green__real_init(), green__real.f))
#define UNSET INT64_MIN            /* deadline not computed yet */
#define SENDFILE_CHUNK (64 * 1024) /* most a blocking sendfile asks at once */
#define IOV_CHUNK 64               /* iovecs copied when resuming a sendmsg */

static inline bool would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK;
}

static inline bool io_on(void)
{
    return green__hook_on(GREEN_HOOK_IO);
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

/* green__copy_in (io.h): one process_vm_readv on ourselves. */
int green__copy_in(void *dst, const void *src, size_t n)
{
    if (n == 0)
        return 0;
    struct iovec local = { dst, n }, remote = { (void *)src, n };
    long r = syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L, &remote, 1L, 0L);
    if (r == (long)n)
        return 0;
    if (r < 0 && errno != EFAULT) {       /* no process_vm_readv: trust it */
        memcpy(dst, src, n);
        return 0;
    }
    errno = EFAULT;
    return -1;
}

/* A descriptor number handed out by the kernel again. If the previous
 * file with this number was closed behind our back (fclose closes with
 * glibc's internal close), libev still believes that file is registered
 * with epoll while the kernel dropped it: a wait on the new file would
 * never wake. Resetting the slot makes the next wait register it afresh
 * (no syscall now; nothing at all when the slot was never used). */
static void fresh_number(int fd)
{
    if (green__tls_ctx && !green__bypass)
        green_fd_closing(fd);
}

/* Park until fd is ready for mask. *deadline is computed at the first
 * park from timeo (ns, 0 = none). Returns 0 to try again, or -1 with
 * errno: timeout_errno when timeo expired, EBADF (closed), ECANCELED,
 * ETIMEDOUT (an enclosing green_timeout scope). May switch. */
static int park_fd_restart(int fd, int mask, int64_t *deadline, int64_t timeo,
                           int timeout_errno, bool restartable)
{
    if (*deadline == UNSET)
        *deadline = timeo > 0 ? green_now() + timeo : GREEN_FOREVER;
    /* signal(7): socket calls restart under SA_RESTART unless the socket
     * has a timeout. */
    if (green__hook_park_fd(fd, mask, *deadline, restartable && timeo <= 0) == 0)
        return 0;
    if (errno == ETIMEDOUT && *deadline >= 0 && green_now() >= *deadline)
        errno = timeout_errno;
    return -1;
}

static int park_fd(int fd, int mask, int64_t *deadline, int64_t timeo,
                   int timeout_errno)
{
    return park_fd_restart(fd, mask, deadline, timeo, timeout_errno, true);
}

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
static int ready_for_call(int fd, int mask, size_t n, bool restartable)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = mask == GREEN_READ ? POLLIN : POLLOUT };
        if (REAL(poll)(&p, 1, 0) != 0)
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

/* A blocking write to a pipe, in pieces that fit (see the essay). */
static ssize_t pipe_write(int fd, const char *buf, size_t n)
{
    size_t done = 0;
    do {
        if (ready_for_call(fd, GREEN_WRITE, n, done == 0) < 0)
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

/* ------------------------------------------------- regular-file offload */

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

static bool file_offload_on(int fd)
{
    if (!green__hook_on(GREEN_HOOK_FILE))
        return false;
    return green__fdstate_get(fd).kind == GREEN_FD_FILE;
}

/* Run j on the worker pool. The job is on the heap: a killed caller
 * returns at once while the worker still writes its result. May switch. */
static ssize_t file_offload(const struct file_job *tmpl)
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

static ssize_t sock_once(const struct sockop *o, int flags)
{
    switch (o->op) {
    case OP_RECV:     return REAL(recv)(o->fd, o->buf, o->len, flags);
    case OP_RECVFROM: return REAL(recvfrom)(o->fd, o->buf, o->len, flags,
                                                  o->from, o->fromlen);
    case OP_RECVMSG:  return REAL(recvmsg)(o->fd, o->msg, flags);
    case OP_SEND:     return REAL(send)(o->fd, o->buf, o->len, flags);
    case OP_SENDTO:   return REAL(sendto)(o->fd, o->buf, o->len, flags,
                                                o->to, o->tolen);
    case OP_SENDMSG:  return REAL(sendmsg)(o->fd, o->msg, flags);
    }
    errno = EINVAL;
    return -1;
}

static bool is_stream(int fd)
{
    int type = 0;
    socklen_t l = sizeof type;
    return REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 &&
           type == SOCK_STREAM;
}

/* Park until o's socket is readable and receive once more, until data,
 * an error, or the deadline (SO_RCVTIMEO, computed at the first park and
 * shared by every wait of one call: the timeout covers the whole call).
 * restartable: false once the call received bytes. May switch. */
static ssize_t recv_wait(const struct sockop *o, int64_t *deadline, int64_t timeo,
                         bool restartable)
{
    for (;;) {
        if (park_fd_restart(o->fd, GREEN_READ, deadline, timeo, EAGAIN, restartable) < 0)
            return -1;
        ssize_t r = sock_once(o, o->flags | MSG_DONTWAIT);
        if (r >= 0 || !would_block(errno))
            return r;
    }
}

static size_t iov_total(const struct iovec *iov, size_t n);
static int iov_window(const struct iovec *iov, size_t cnt, size_t skip, size_t limit,
                      struct iovec *tmp, int max);

/* Bytes the program asked a receive for (the kernel already accepted the
 * msghdr and its iovecs when this is called). */
static size_t recv_total(const struct sockop *o)
{
    return o->op == OP_RECVMSG ? iov_total(o->msg->msg_iov, o->msg->msg_iovlen) : o->len;
}

/* Receive once into the part of o's buffer after `got` bytes. Ancillary
 * data and the sender's address come with the first piece only. */
static ssize_t recv_rest(const struct sockop *o, size_t got)
{
    if (o->op != OP_RECVMSG) {
        struct sockop rest = *o;
        rest.buf = (char *)o->buf + got;
        rest.len = o->len - got;
        rest.from = NULL;
        rest.fromlen = NULL;
        if (rest.op == OP_RECVFROM)
            rest.op = OP_RECV;
        return sock_once(&rest, o->flags | MSG_DONTWAIT);
    }
    struct iovec tmp[IOV_CHUNK];
    struct msghdr *m = o->msg;
    struct msghdr rest = { .msg_iov = tmp };
    rest.msg_iovlen = (size_t)iov_window(m->msg_iov, m->msg_iovlen, got, SIZE_MAX,
                                         tmp, IOV_CHUNK);
    ssize_t r = REAL(recvmsg)(o->fd, &rest, o->flags | MSG_DONTWAIT);
    if (r >= 0)
        m->msg_flags |= rest.msg_flags;
    return r;
}

/* Does MSG_WAITALL make the kernel keep receiving after `got` bytes?
 * Only for blocking stream sockets, and not past ancillary data (AF_UNIX
 * never glues a message that carried descriptors to the next one). With
 * MSG_PEEK see peek_waitall. */
static bool waitall_continues(const struct sockop *o, ssize_t got)
{
    if (!(o->flags & MSG_WAITALL) || (o->flags & MSG_DONTWAIT) || got <= 0 ||
        (size_t)got >= recv_total(o) || (o->op == OP_RECVMSG && o->msg->msg_controllen))
        return false;
    return is_stream(o->fd) && !green__fdstate_view(o->fd, GREEN_VIEW_NONBLOCK).user_nonblock;
}

/* Sleep a millisecond as part of an interruptible call that began with
 * green__intr_begin, or less when the deadline is nearer. Returns 0 to go
 * on, ETIMEDOUT past the deadline, EINTR (not restarted: the caller asks
 * green__intr_restarts when it may restart), ECANCELED. May switch. */
static int intr_nap(int64_t deadline)
{
    int64_t now = green_now();
    if (deadline >= 0 && now >= deadline)
        return ETIMEDOUT;
    /* A handler that ran for us between two naps (while our non-blocking
     * try was in the kernel) interrupts the call as it would have
     * interrupted the kernel's one long wait. */
    if (green__intr_mine())
        return EINTR;
    int64_t d = now + GREEN_MSEC(1);
    int code = green__park(GREEN_WHY_SLEEP, 0, NULL, deadline >= 0 && deadline < d ? deadline : d);
    return code == ETIMEDOUT ? 0 : code;
}

/* MSG_PEEK|MSG_WAITALL. Linux's AF_UNIX stream peek returns what is
 * queued; TCP waits until the whole length is queued (or EOF, an error,
 * the timeout or a signal) and then peeks it. Re-peeking into the rest of
 * the buffer would hand out the same bytes twice, and no readiness says
 * "more bytes arrived" while some are unread: TCP re-peeks the whole
 * length every millisecond instead. May switch. */
static ssize_t peek_waitall(const struct sockop *o, ssize_t got, int64_t timeo)
{
    int dom = 0;
    socklen_t l = sizeof dom;
    if (REAL(getsockopt)(o->fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) != 0 || dom == AF_UNIX)
        return got;
    int64_t deadline = timeo > 0 ? green_now() + timeo : GREEN_FOREVER;
    size_t want = recv_total(o);
    green__intr_begin();
    while ((size_t)got < want) {
        struct pollfd p = { .fd = o->fd, .events = POLLRDHUP };
        if (REAL(poll)(&p, 1, 0) != 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            break;                 /* EOF or error: the kernel returns what it has */
        int code = intr_nap(deadline);
        if (code) {
            if (code == ECANCELED)
                green__cancel_point(ECANCELED);
            break;                 /* timeout or signal: the partial count */
        }
        ssize_t r = sock_once(o, o->flags | MSG_DONTWAIT);
        if (r < 0)
            break;
        got = r;
    }
    green__intr_end();
    return got;
}

/* MSG_WAITALL on a blocking stream socket: keep receiving into the rest
 * of the buffer until it is full, EOF, an error, the deadline (one for the
 * whole call) or a signal (which ends it with the partial count, as the
 * kernel returns what it copied). May switch. */
static ssize_t recv_waitall(const struct sockop *o, size_t got, int64_t *deadline,
                            int64_t timeo)
{
    size_t want = recv_total(o);
    while (got < want) {
        ssize_t r = recv_rest(o, got);
        if (r < 0 && would_block(errno)) {
            if (park_fd_restart(o->fd, GREEN_READ, deadline, timeo, EAGAIN, false) < 0)
                break;
            continue;
        }
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* The receive slow path: the first try said EAGAIN. May switch. */
static ssize_t recv_slow(const struct sockop *o)
{
    struct green__fdinfo i = green__fdstate_view(o->fd, GREEN_VIEW_RCVTIMEO);
    if (i.user_nonblock) {
        errno = EAGAIN;            /* the program's own non-blocking socket */
        return -1;
    }
    int64_t deadline = UNSET;
    ssize_t r = recv_wait(o, &deadline, i.rcvtimeo, true);
    if (green__unlikely(waitall_continues(o, r)))
        return o->flags & MSG_PEEK ? peek_waitall(o, r, i.rcvtimeo)
                                   : recv_waitall(o, (size_t)r, &deadline, i.rcvtimeo);
    return r;
}

/* Everything but a plain receive that found data: MSG_WAITALL after a
 * short first piece (r >= 0), or the first try failed (r < 0, errno from
 * it). Out of line, so that the fast path stays small. May switch. */
static __attribute__((noinline)) ssize_t sock_recv_more(const struct sockop *o, ssize_t r)
{
    if (r >= 0) {
        if (!waitall_continues(o, r))
            return r;
        int64_t timeo = green__fdstate_view(o->fd, GREEN_VIEW_RCVTIMEO).rcvtimeo;
        if (o->flags & MSG_PEEK)
            return peek_waitall(o, r, timeo);
        int64_t deadline = UNSET;
        return recv_waitall(o, (size_t)r, &deadline, timeo);
    }
    if (!would_block(errno) || (o->flags & MSG_DONTWAIT))
        return r;
    return recv_slow(o);
}

/* Receive on a socket: one syscall when data is there. May switch. */
static inline ssize_t sock_recv(const struct sockop *o)
{
    ssize_t r = sock_once(o, o->flags | MSG_DONTWAIT);
    if (green__likely(r >= 0) && green__likely(!(o->flags & MSG_WAITALL)))
        return r;
    return sock_recv_more(o, r);
}

static size_t iov_total(const struct iovec *iov, size_t n)
{
    size_t t = 0;
    for (size_t k = 0; k < n; k++)
        t += iov[k].iov_len;
    return t;
}

static size_t op_total(const struct sockop *o)
{
    return o->op == OP_SENDMSG ? iov_total(o->msg->msg_iov, o->msg->msg_iovlen) : o->len;
}

/* Fill tmp (at most max entries) with the part of iov[0..cnt) that starts
 * skip bytes in and holds at most limit bytes, leaving out empty entries.
 * Returns the number of entries used. */
static int iov_window(const struct iovec *iov, size_t cnt, size_t skip, size_t limit,
                      struct iovec *tmp, int max)
{
    size_t k = 0;
    while (k < cnt && skip >= iov[k].iov_len)
        skip -= iov[k++].iov_len;
    int n = 0;
    for (; k < cnt && n < max && limit > 0; k++) {
        size_t len = iov[k].iov_len - skip;
        if (len == 0)
            continue;
        if (len > limit)
            len = limit;
        tmp[n].iov_base = (char *)iov[k].iov_base + skip;
        tmp[n].iov_len = len;
        limit -= len;
        skip = 0;
        n++;
    }
    return n;
}

/* Send the part of o after `done` bytes once, non-blocking. Ancillary
 * data went with the first piece. */
static ssize_t send_rest(const struct sockop *o, size_t done)
{
    if (o->op != OP_SENDMSG) {
        struct sockop rest = *o;
        rest.buf = (char *)o->buf + done;
        rest.len = o->len - done;
        return sock_once(&rest, o->flags | MSG_DONTWAIT);
    }
    struct iovec tmp[IOV_CHUNK];
    const struct msghdr *m = o->msg;
    struct msghdr rest = *m;
    rest.msg_iov = tmp;
    rest.msg_iovlen = (size_t)iov_window(m->msg_iov, m->msg_iovlen, done, SIZE_MAX,
                                         tmp, IOV_CHUNK);
    if (done) {
        rest.msg_control = NULL;
        rest.msg_controllen = 0;
    }
    return REAL(sendmsg)(o->fd, &rest, o->flags | MSG_DONTWAIT);
}

/* The send slow path: `done` bytes of `total` are sent and the socket
 * said EAGAIN (or took only part). May switch. */
static ssize_t send_wait(const struct sockop *o, size_t done, size_t total)
{
    struct green__fdinfo i = green__fdstate_view(o->fd, GREEN_VIEW_SNDTIMEO);
    if (i.user_nonblock) {
        if (done)
            return (ssize_t)done;
        errno = EAGAIN;
        return -1;
    }
    int64_t deadline = UNSET;
    while (done < total) {
        /* A send interrupted after moving bytes returns its partial count,
         * SA_RESTART or not: the kernel restarts only calls that moved
         * nothing. */
        if (park_fd_restart(o->fd, GREEN_WRITE, &deadline, i.sndtimeo, EAGAIN, !done) < 0)
            return done ? (ssize_t)done : -1;
        ssize_t r = send_rest(o, done);
        if (r < 0 && !would_block(errno))
            return done ? (ssize_t)done : -1;
        if (r > 0)
            done += (size_t)r;
    }
    return (ssize_t)done;
}

/* Send on a socket; a blocking stream send returns when all is sent.
 * May switch. */
static ssize_t sock_send(const struct sockop *o)
{
    ssize_t r = sock_once(o, o->flags | MSG_DONTWAIT);
    if (o->flags & MSG_DONTWAIT)
        return r;
    if (r < 0 && !would_block(errno))
        return r;
    size_t total = op_total(o);
    if (r >= 0 && (size_t)r >= total)
        return r;
    return send_wait(o, r < 0 ? 0 : (size_t)r, total);
}

/* Forget descriptors that arrived with SCM_RIGHTS: their numbers may have
 * stale entries. */
static void forget_received_fds(const struct msghdr *m)
{
    if (!m->msg_control || m->msg_controllen < sizeof(struct cmsghdr))
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c;
         c = CMSG_NXTHDR((struct msghdr *)m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int fds[n ? n : 1];
        memcpy(fds, CMSG_DATA(c), n * sizeof(int));
        for (size_t k = 0; k < n; k++) {
            fresh_number(fds[k]);
            green__fdstate_reset(fds[k]);
        }
    }
}

/* 0 when the kernel can read iov[0..cnt), else -1 (EFAULT): checked
 * before our own code reads it. */
static int iov_check(const struct iovec *iov, int cnt)
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
static ssize_t pipe_writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (iov_check(iov, iovcnt) != 0)
        return REAL(writev)(fd, iov, iovcnt);   /* EFAULT, as the kernel says */
    size_t total = iov_total(iov, (size_t)iovcnt), done = 0;
    if (total <= PIPE_BUF) {
        if (ready_for_call(fd, GREEN_WRITE, total, true) < 0)
            return -1;
        return REAL(writev)(fd, iov, iovcnt);
    }
    struct iovec tmp[IOV_CHUNK];
    while (done < total) {
        if (ready_for_call(fd, GREEN_WRITE, total, done == 0) < 0)
            return done ? (ssize_t)done : -1;
        int n = iov_window(iov, (size_t)iovcnt, done, PIPE_BUF, tmp, IOV_CHUNK);
        ssize_t r = REAL(writev)(fd, tmp, n);
        if (r < 0)
            return done ? (ssize_t)done : -1;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

/* ------------------------------------------------- read/write dispatch */

/* The kind of fd for dispatching; learns it once. */
static enum green__fdkind kind_for_call(int fd)
{
    enum green__fdkind k = green__fdstate_kind(fd);
    if (green__likely(k != GREEN_FD_UNKNOWN))
        return k;
    return green__fdstate_get(fd).kind;
}

/* A socket call failed with ENOTSOCK: the table was stale. */
static bool stale_socket(int fd, ssize_t r)
{
    if (r >= 0 || errno != ENOTSOCK)
        return false;
    fresh_number(fd);
    green__fdstate_reset(fd);
    return true;
}

ssize_t green_hook_read(int fd, void *buf, size_t n)
{
    /* n == 0: read returns 0 at once even on a socket (a recv of 0 bytes
     * would wait for data). */
    if (!io_on() || n == 0)
        return REAL(read)(fd, buf, n);
    int e0 = errno;
    green__cancel_point(0);
    enum green__fdkind k = kind_for_call(fd);
    if (k == GREEN_FD_SOCKET) {
        struct sockop o = { .op = OP_RECV, .fd = fd, .buf = buf, .len = n };
        ssize_t r = sock_recv(&o);
        if (!stale_socket(fd, r))
            return kept(r, e0);
        k = kind_for_call(fd);
    }
    if (k == GREEN_FD_FILE || k == GREEN_FD_UNKNOWN) {
        if (k == GREEN_FD_FILE && file_offload_on(fd))
            return file_offload(&(struct file_job){ .op = F_READ, .fd = fd,
                                                    .buf = buf, .n = n });
        return REAL(read)(fd, buf, n);
    }
    if (ready_for_call(fd, GREEN_READ, n, true) < 0)
        return -1;
    return kept(REAL(read)(fd, buf, n), e0);
}

ssize_t green_hook_write(int fd, const void *buf, size_t n)
{
    if (!io_on())
        return REAL(write)(fd, buf, n);
    int e0 = errno;
    green__cancel_point(0);
    enum green__fdkind k = kind_for_call(fd);
    if (k == GREEN_FD_SOCKET) {
        struct sockop o = { .op = OP_SEND, .fd = fd, .buf = (void *)buf, .len = n };
        ssize_t r = sock_send(&o);
        if (!stale_socket(fd, r))
            return kept(r, e0);
        k = kind_for_call(fd);
    }
    if (k == GREEN_FD_FILE || k == GREEN_FD_UNKNOWN) {
        if (k == GREEN_FD_FILE && file_offload_on(fd))
            return file_offload(&(struct file_job){ .op = F_WRITE, .fd = fd,
                                                    .buf = (void *)buf, .n = n });
        return REAL(write)(fd, buf, n);
    }
    if (k == GREEN_FD_PIPE)
        return kept(pipe_write(fd, buf, n), e0);
    if (ready_for_call(fd, GREEN_WRITE, n, true) < 0)
        return -1;
    return kept(REAL(write)(fd, buf, n), e0);
}

/* readv on a socket: recvmsg, except that a readv of zero bytes returns 0
 * at once where a recvmsg would wait. The iovecs are looked at only after
 * the kernel accepted them (our first try). May switch. */
static ssize_t sock_readv(int fd, const struct iovec *iov, int iovcnt)
{
    struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
    struct sockop o = { .op = OP_RECVMSG, .fd = fd, .msg = &m };
    ssize_t r = sock_once(&o, MSG_DONTWAIT);
    if (green__likely(r >= 0) || !would_block(errno))
        return r;
    if (iov_total(iov, (size_t)iovcnt) == 0)
        return 0;
    return recv_slow(&o);
}

ssize_t green_hook_readv(int fd, const struct iovec *iov, int iovcnt)
{
    if (!io_on() || iovcnt <= 0 || iovcnt > IOV_MAX)
        return REAL(readv)(fd, iov, iovcnt);
    int e0 = errno;
    green__cancel_point(0);
    enum green__fdkind k = kind_for_call(fd);
    if (k == GREEN_FD_SOCKET) {
        ssize_t r = sock_readv(fd, iov, iovcnt);
        if (!stale_socket(fd, r))
            return kept(r, e0);
        k = kind_for_call(fd);
    }
    if (k == GREEN_FD_FILE || k == GREEN_FD_UNKNOWN) {
        if (k == GREEN_FD_FILE && file_offload_on(fd))
            return file_offload(&(struct file_job){ .op = F_READV, .fd = fd,
                                                    .iov = iov, .iovcnt = iovcnt });
        return REAL(readv)(fd, iov, iovcnt);
    }
    /* Not ready: the kernel may answer at once (EFAULT, zero bytes). */
    size_t n = iov_check(iov, iovcnt) == 0 ? iov_total(iov, (size_t)iovcnt) : 0;
    if (ready_for_call(fd, GREEN_READ, n, true) < 0)
        return -1;
    return kept(REAL(readv)(fd, iov, iovcnt), e0);
}

ssize_t green_hook_writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (!io_on() || iovcnt < 0 || iovcnt > IOV_MAX)
        return REAL(writev)(fd, iov, iovcnt);
    int e0 = errno;
    green__cancel_point(0);
    enum green__fdkind k = kind_for_call(fd);
    if (k == GREEN_FD_SOCKET) {
        struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
        struct sockop o = { .op = OP_SENDMSG, .fd = fd, .msg = &m };
        ssize_t r = sock_send(&o);
        if (!stale_socket(fd, r))
            return kept(r, e0);
        k = kind_for_call(fd);
    }
    if (k == GREEN_FD_FILE || k == GREEN_FD_UNKNOWN) {
        if (k == GREEN_FD_FILE && file_offload_on(fd))
            return file_offload(&(struct file_job){ .op = F_WRITEV, .fd = fd,
                                                    .iov = iov, .iovcnt = iovcnt });
        return REAL(writev)(fd, iov, iovcnt);
    }
    if (k == GREEN_FD_PIPE)
        return kept(pipe_writev(fd, iov, iovcnt), e0);
    size_t n = iov_check(iov, iovcnt) == 0 ? iov_total(iov, (size_t)iovcnt) : 0;
    if (ready_for_call(fd, GREEN_WRITE, n, true) < 0)
        return -1;
    return kept(REAL(writev)(fd, iov, iovcnt), e0);
}

ssize_t green_hook_recv(int fd, void *buf, size_t n, int flags)
{
    if (!io_on())
        return REAL(recv)(fd, buf, n, flags);
    int e0 = errno;
    green__cancel_point(0);
    struct sockop o = { .op = OP_RECV, .fd = fd, .buf = buf, .len = n, .flags = flags };
    return kept(sock_recv(&o), e0);
}

ssize_t green_hook_recvfrom(int fd, void *buf, size_t n, int flags,
                            struct sockaddr *addr, socklen_t *alen)
{
    if (!io_on())
        return REAL(recvfrom)(fd, buf, n, flags, addr, alen);
    int e0 = errno;
    green__cancel_point(0);
    struct sockop o = { .op = OP_RECVFROM, .fd = fd, .buf = buf, .len = n,
                        .flags = flags, .from = addr, .fromlen = alen };
    return kept(sock_recv(&o), e0);
}

ssize_t green_hook_recvmsg(int fd, struct msghdr *msg, int flags)
{
    ssize_t r;
    int e0 = errno;
    if (!io_on()) {
        r = REAL(recvmsg)(fd, msg, flags);
    } else {
        green__cancel_point(0);
        struct sockop o = { .op = OP_RECVMSG, .fd = fd, .msg = msg, .flags = flags };
        r = sock_recv(&o);
    }
    if (r >= 0 && msg && msg->msg_controllen)
        forget_received_fds(msg);
    return kept(r, e0);
}

ssize_t green_hook_send(int fd, const void *buf, size_t n, int flags)
{
    if (!io_on())
        return REAL(send)(fd, buf, n, flags);
    int e0 = errno;
    green__cancel_point(0);
    struct sockop o = { .op = OP_SEND, .fd = fd, .buf = (void *)buf, .len = n,
                        .flags = flags };
    return kept(sock_send(&o), e0);
}

ssize_t green_hook_sendto(int fd, const void *buf, size_t n, int flags,
                          const struct sockaddr *addr, socklen_t alen)
{
    if (!io_on())
        return REAL(sendto)(fd, buf, n, flags, addr, alen);
    int e0 = errno;
    green__cancel_point(0);
    struct sockop o = { .op = OP_SENDTO, .fd = fd, .buf = (void *)buf, .len = n,
                        .flags = flags, .to = addr, .tolen = alen };
    return kept(sock_send(&o), e0);
}

ssize_t green_hook_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (!io_on() || !msg)
        return REAL(sendmsg)(fd, msg, flags);
    int e0 = errno;
    green__cancel_point(0);
    struct sockop o = { .op = OP_SENDMSG, .fd = fd, .msg = (struct msghdr *)msg,
                        .flags = flags };
    return kept(sock_send(&o), e0);
}

/* The remaining time of a recvmmsg, written back as the kernel does
 * (only when messages were received; never negative). */
static void mmsg_left(struct timespec *timeout, int64_t until)
{
    int64_t left = until - green_now();
    if (left < 0)
        left = 0;
    timeout->tv_sec = left / 1000000000;
    timeout->tv_nsec = left % 1000000000;
}

/* Blocking recvmmsg waits for all n messages (or one with MSG_WAITFORONE);
 * as in the kernel, the timeout is only checked after a message arrived,
 * and the time left is written back into *timeout when messages were
 * received. A timeout the kernel refuses (EFAULT, EINVAL) goes to the
 * kernel untouched. May switch. */
int green_hook_recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags,
                        struct timespec *timeout)
{
    if (!io_on() || (flags & MSG_DONTWAIT) || n == 0)
        return REAL(recvmmsg)(fd, v, n, flags, timeout);
    struct timespec ts;
    if (timeout && (green__copy_in(&ts, timeout, sizeof ts) != 0 || ts.tv_sec < 0 ||
                    ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000))
        return REAL(recvmmsg)(fd, v, n, flags, timeout);
    int e0 = errno;
    green__cancel_point(0);
    int64_t until = timeout ? green_now() + (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec
                            : GREEN_FOREVER;
    unsigned got = 0;
    int64_t deadline = UNSET;
    int r;
    for (;;) {
        r = REAL(recvmmsg)(fd, v + got, n - got, flags | MSG_DONTWAIT, NULL);
        if (r > 0) {
            got += (unsigned)r;
            if (got == n || (flags & MSG_WAITFORONE) ||
                (until >= 0 && green_now() >= until))
                break;
        } else if ((r < 0 && !would_block(errno)) || r == 0) {
            break;
        }
        struct green__fdinfo i = green__fdstate_view(fd, GREEN_VIEW_RCVTIMEO);
        if (i.user_nonblock) {
            errno = EAGAIN;
            r = -1;
            break;
        }
        if (park_fd_restart(fd, GREEN_READ, &deadline, i.rcvtimeo, EAGAIN, !got) < 0) {
            r = -1;
            break;
        }
    }
    if (got) {
        if (timeout)
            mmsg_left(timeout, until);
        errno = e0;
        return (int)got;
    }
    return (int)kept(r, e0);
}

/* Blocking sendmmsg sends every message. May switch. */
int green_hook_sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
    if (!io_on() || (flags & MSG_DONTWAIT) || n == 0)
        return REAL(sendmmsg)(fd, v, n, flags);
    int e0 = errno;
    green__cancel_point(0);
    unsigned sent = 0;
    int64_t deadline = UNSET;
    for (;;) {
        int r = REAL(sendmmsg)(fd, v + sent, n - sent, flags | MSG_DONTWAIT);
        if (r > 0) {
            sent += (unsigned)r;
            if (sent == n)
                return (int)kept(sent, e0);
        } else if (r < 0 && !would_block(errno)) {
            return sent ? (int)kept(sent, e0) : -1;
        }
        struct green__fdinfo i = green__fdstate_view(fd, GREEN_VIEW_SNDTIMEO);
        if (i.user_nonblock) {
            errno = EAGAIN;
            return sent ? (int)kept(sent, e0) : -1;
        }
        if (park_fd_restart(fd, GREEN_WRITE, &deadline, i.sndtimeo, EAGAIN, !sent) < 0)
            return sent ? (int)kept(sent, e0) : -1;
    }
}

/* sendfile to a socket has no per-call non-blocking form either: O_NONBLOCK
 * is set just around each attempt (one OS thread runs every green thread
 * of the hub, so none of them can see it) and the caller parks on EAGAIN,
 * so the hub never waits for a slow peer. Partial counts as the kernel's.
 * May switch. */
static ssize_t sock_sendfile(int out_fd, int in_fd, off_t *off, size_t n)
{
    int fl = REAL(fcntl)(out_fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK))
        return REAL(sendfile)(out_fd, in_fd, off, n);
    int64_t timeo = green__fdstate_view(out_fd, GREEN_VIEW_SNDTIMEO).sndtimeo;
    int64_t deadline = UNSET;
    size_t done = 0;
    for (;;) {
        REAL(fcntl)(out_fd, F_SETFL, fl | O_NONBLOCK);
        ssize_t r = REAL(sendfile)(out_fd, in_fd, off, n - done);
        int e = errno;
        REAL(fcntl)(out_fd, F_SETFL, fl);
        if (r > 0) {
            done += (size_t)r;
            if (done == n)
                return (ssize_t)done;
            continue;
        }
        if (r == 0)
            return (ssize_t)done;  /* end of in_fd */
        errno = e;
        if (!would_block(e) ||
            park_fd_restart(out_fd, GREEN_WRITE, &deadline, timeo, EAGAIN, !done) < 0)
            return done ? (ssize_t)done : -1;
    }
}

/* sendfile to a pipe or a tty: wait until writable, then send a piece
 * that cannot block (PIPE_BUF for pipes); loop until n bytes, EOF or an
 * error. May switch. */
static ssize_t other_sendfile(int out_fd, int in_fd, off_t *off, size_t n, size_t piece)
{
    size_t done = 0;
    do {
        if (ready_for_call(out_fd, GREEN_WRITE, n, done == 0) < 0)
            return done ? (ssize_t)done : -1;
        size_t chunk = n - done < piece ? n - done : piece;
        ssize_t r = REAL(sendfile)(out_fd, in_fd, off, chunk);
        if (r < 0)
            return done ? (ssize_t)done : -1;
        if (r == 0)
            break;
        done += (size_t)r;
    } while (done < n);
    return (ssize_t)done;
}

ssize_t green_hook_sendfile(int out_fd, int in_fd, off_t *off, size_t n)
{
    if (!io_on())
        return REAL(sendfile)(out_fd, in_fd, off, n);
    enum green__fdkind k = kind_for_call(out_fd);
    if (k == GREEN_FD_FILE || k == GREEN_FD_UNKNOWN)
        return REAL(sendfile)(out_fd, in_fd, off, n);
    int e0 = errno;
    if (k == GREEN_FD_SOCKET)
        return kept(sock_sendfile(out_fd, in_fd, off, n), e0);
    return kept(other_sendfile(out_fd, in_fd, off, n,
                               k == GREEN_FD_PIPE ? PIPE_BUF : SENDFILE_CHUNK), e0);
}

/* splice and tee: the pipe sides have a per-call non-blocking form
 * (SPLICE_F_NONBLOCK), a socket we write to does not (splice_to_socket
 * blocks on the socket's buffer whatever the flags say), so a socket
 * output gets O_NONBLOCK just around each attempt, as sendfile does. On
 * EAGAIN the caller parks on whichever side is not ready, and tries
 * again; a descriptor the program made non-blocking itself gives EAGAIN,
 * as natively. A call that already waited keeps the program's errno.
 * Both restart under SA_RESTART (the kernel's -ERESTARTSYS). */
static ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t, unsigned int);
static ssize_t (*real_tee)(int, int, size_t, unsigned int);

static void *real_chk(const char *name);

static ssize_t splice_once(int in, loff_t *off_in, int out, loff_t *off_out, size_t n,
                           unsigned int flags, bool is_tee, bool out_sock)
{
    flags |= SPLICE_F_NONBLOCK;
    if (is_tee)
        return real_tee(in, out, n, flags);
    int fl = out_sock ? REAL(fcntl)(out, F_GETFL) : -1;
    if (fl >= 0 && !(fl & O_NONBLOCK))
        REAL(fcntl)(out, F_SETFL, fl | O_NONBLOCK);
    ssize_t r = real_splice(in, off_in, out, off_out, n, flags);
    int e = errno;
    if (fl >= 0 && !(fl & O_NONBLOCK))
        REAL(fcntl)(out, F_SETFL, fl);
    errno = e;
    return r;
}

/* The side a would-block splice waits for: GREEN_READ (in), GREEN_WRITE
 * (out), 0 to retry at once, or -1 when the program's own O_NONBLOCK on
 * that side makes EAGAIN the answer. */
static int splice_side(int in, int out)
{
    struct pollfd p[2] = { { .fd = in, .events = POLLIN }, { .fd = out, .events = POLLOUT } };
    REAL(poll)(p, 2, 0);
    int fd = !p[0].revents ? in : !p[1].revents ? out : -1;
    if (fd < 0)
        return 0;
    int fl = REAL(fcntl)(fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK))
        return -1;
    return fd == in ? GREEN_READ : GREEN_WRITE;
}

static ssize_t splice_common(int in, loff_t *off_in, int out, loff_t *off_out, size_t n,
                             unsigned int flags, bool is_tee)
{
    int e0 = errno;
    green__cancel_point(0);
    bool out_sock = !is_tee && kind_for_call(out) == GREEN_FD_SOCKET;
    for (int spins = 0;;) {
        ssize_t r = splice_once(in, off_in, out, off_out, n, flags, is_tee, out_sock);
        if (r >= 0)
            return kept(r, e0);
        if (!would_block(errno))
            return -1;
        int side = splice_side(in, out);
        if (side < 0) {
            errno = EAGAIN;
            return -1;
        }
        if (side == 0) {           /* both look ready: the space is too small */
            if (++spins < 3)
                continue;
            spins = 0;
            if (green_sleep(GREEN_MSEC(1)) != 0)
                return -1;
            continue;
        }
        if (green__hook_park_fd(side == GREEN_READ ? in : out, side, GREEN_FOREVER, true) < 0)
            return -1;
    }
}

ssize_t green_hook_splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t n,
                          unsigned int flags)
{
    if (green__unlikely(!real_splice))
        real_splice = real_chk("splice");
    if (!io_on() || (flags & SPLICE_F_NONBLOCK) || n == 0)
        return real_splice(in, off_in, out, off_out, n, flags);
    return splice_common(in, off_in, out, off_out, n, flags, false);
}

ssize_t green_hook_tee(int in, int out, size_t n, unsigned int flags)
{
    if (green__unlikely(!real_tee))
        real_tee = real_chk("tee");
    if (!io_on() || (flags & SPLICE_F_NONBLOCK) || n == 0)
        return real_tee(in, out, n, flags);
    return splice_common(in, NULL, out, NULL, n, flags, true);
}

ssize_t green_hook_pread(int fd, void *buf, size_t n, off_t off)
{
    if (io_on())
        green__cancel_point(0);
    if (io_on() && file_offload_on(fd))
        return file_offload(&(struct file_job){ .op = F_PREAD, .fd = fd, .buf = buf,
                                                .n = n, .off = off });
    return REAL(pread)(fd, buf, n, off);
}

ssize_t green_hook_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (io_on())
        green__cancel_point(0);
    if (io_on() && file_offload_on(fd))
        return file_offload(&(struct file_job){ .op = F_PWRITE, .fd = fd,
                                                .buf = (void *)buf, .n = n, .off = off });
    return REAL(pwrite)(fd, buf, n, off);
}

/* ---------------------------------------------------- socket lifecycle */

/* Record a descriptor made by a hooked call. */
static void created(int fd, enum green__fdkind kind, bool nonblock)
{
    fresh_number(fd);
    green__fdstate_created(fd, kind, nonblock);
}


int green_hook_socket(int domain, int type, int protocol)
{
    int fd = REAL(socket)(domain, type, protocol);
    if (fd >= 0)
        created(fd, GREEN_FD_SOCKET, type & SOCK_NONBLOCK);
    return fd;
}

int green_hook_socketpair(int domain, int type, int protocol, int sv[2])
{
    int r = REAL(socketpair)(domain, type, protocol, sv);
    if (r == 0) {
        created(sv[0], GREEN_FD_SOCKET, type & SOCK_NONBLOCK);
        created(sv[1], GREEN_FD_SOCKET, type & SOCK_NONBLOCK);
    }
    return r;
}

int green_hook_listen(int fd, int backlog)
{
    return REAL(listen)(fd, backlog);
}

static int accepted(int fd, int flags)
{
    if (fd >= 0)
        created(fd, GREEN_FD_SOCKET, flags & SOCK_NONBLOCK);
    return fd;
}

/* Whether a blocking accept4(fd, flags) with no connection waiting would
 * wait in the kernel, and for how long (*timeo, SO_RCVTIMEO in ns, 0 =
 * forever). The kernel rejects bad flags, non-sockets, sockets that do
 * not listen (a UDP socket too) and the program's own non-blocking
 * listener at once: let it (never park on a call that would fail). */
static bool accept_would_wait(int fd, int flags, int64_t *timeo)
{
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
        return false;
    struct green__fdinfo i = green__fdstate_view(fd, GREEN_VIEW_RCVTIMEO);
    if (i.kind != GREEN_FD_SOCKET || i.user_nonblock)
        return false;
    int on = 0;
    socklen_t l = sizeof on;
    *timeo = i.rcvtimeo;
    return REAL(getsockopt)(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &l) == 0 && on;
}

/* A blocking accept that parks only the caller (see the decision in the
 * essay): poll, accept when a connection waits, else park. May switch. */
int green_hook_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    if (!io_on())
        return accepted(REAL(accept4)(fd, addr, len, flags), flags);
    int e0 = errno;
    green__cancel_point(0);
    int64_t deadline = UNSET, timeo = -1;
    for (;;) {
        /* Ready, or an error accept itself reports (POLLNVAL, POLLHUP on
         * a socket that does not listen: EINVAL as Linux says). */
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (REAL(poll)(&p, 1, 0) != 0)
            return (int)kept(accepted(REAL(accept4)(fd, addr, len, flags), flags), e0);
        if (timeo < 0 && !accept_would_wait(fd, flags, &timeo))
            return (int)kept(accepted(REAL(accept4)(fd, addr, len, flags), flags), e0);
        if (park_fd(fd, GREEN_READ, &deadline, timeo, EAGAIN) < 0)
            return -1;
    }
}

int green_hook_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    return green_hook_accept4(fd, addr, len, 0);
}

/* An AF_UNIX connect to a listener whose backlog is full: the kernel
 * offers no readiness for "the backlog has room", so retry every
 * millisecond until the deadline (EAGAIN, as the kernel's SO_SNDTIMEO),
 * a signal (EINTR; SA_RESTART restarts it unless there is a timeout, as
 * the kernel's unix_wait_for_peer), or success. May switch. */
static int connect_backlog_wait(int fd, const struct sockaddr *addr, socklen_t len,
                                int64_t deadline, bool restartable)
{
    int r = -1;
    green__intr_begin();
    for (;;) {
        int code = intr_nap(deadline);
        if (code == EINTR && restartable && green__intr_restarts()) {
            green__intr_begin();   /* count only later signals */
            continue;
        }
        if (code) {
            errno = code == ETIMEDOUT ? EAGAIN
                    : code == ECANCELED ? green__cancel_point(ECANCELED) : code;
            break;
        }
        r = REAL(connect)(fd, addr, len);
        if (r == 0 || errno != EAGAIN)
            break;
    }
    green__intr_end();
    return r;
}

/* A connect on a non-blocking socket, completed as a blocking one would
 * be. The completion is a second connect() once the socket is writable,
 * not a read of SO_ERROR: like the kernel's own blocking connect it moves
 * the socket to "connected" (a later connect says EISCONN) or consumes
 * the error and leaves the socket unconnected (a retry connects again, as
 * natively, instead of ECONNABORTED). EALREADY on entry is a retry after
 * an interrupted blocking connect: natively that waits for the pending
 * connection, so we do too. May switch. */
static int connect_nb(int fd, const struct sockaddr *addr, socklen_t len, int64_t timeo)
{
    int r = REAL(connect)(fd, addr, len);
    if (r == 0 || (errno != EINPROGRESS && errno != EAGAIN && errno != EALREADY))
        return r;
    int64_t deadline = timeo > 0 ? green_now() + timeo : GREEN_FOREVER;
    if (errno == EAGAIN)           /* AF_UNIX backlog full */
        return connect_backlog_wait(fd, addr, len, deadline, timeo <= 0);
    for (;;) {
        if (park_fd(fd, GREEN_WRITE, &deadline, timeo, EINPROGRESS) < 0)
            return -1;
        r = REAL(connect)(fd, addr, len);
        if (r == 0 || errno == EISCONN)
            return 0;
        if (errno != EALREADY && errno != EINPROGRESS)
            return -1;             /* the connection's error, consumed */
    }
}

int green_hook_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (!io_on())
        return REAL(connect)(fd, addr, len);
    int e0 = errno;
    green__cancel_point(0);
    struct green__fdinfo i = green__fdstate_view(fd, GREEN_VIEW_SNDTIMEO);
    if (i.kind != GREEN_FD_SOCKET || i.user_nonblock)
        return REAL(connect)(fd, addr, len);
    if (i.our_nonblock)
        return (int)kept(connect_nb(fd, addr, len, i.sndtimeo), e0);
    int fl = REAL(fcntl)(fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK))
        return REAL(connect)(fd, addr, len);
    if (REAL(fcntl)(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return REAL(connect)(fd, addr, len);
    /* While we wait, other green threads see the program's view in
     * F_GETFL, and an F_SETFL of theirs keeps our flag on. */
    green__fdstate_set_our_nonblock(fd, true);
    int r = connect_nb(fd, addr, len, i.sndtimeo);
    int e = errno;
    if (!(r < 0 && e == EBADF)) {
        green__fdstate_set_our_nonblock(fd, false);
        bool want = green__fdstate_peek(fd).user_nonblock;
        REAL(fcntl)(fd, F_SETFL, (fl & ~O_NONBLOCK) | (want ? O_NONBLOCK : 0));
    }
    errno = r == 0 ? e0 : e;
    return r;
}

/* ------------------------------------------------------- descriptors */

int green_hook_pipe(int fds[2])
{
    return green_hook_pipe2(fds, 0);
}

int green_hook_pipe2(int fds[2], int flags)
{
    int r = flags ? REAL(pipe2)(fds, flags) : REAL(pipe)(fds);
    if (r == 0) {
        created(fds[0], GREEN_FD_PIPE, flags & O_NONBLOCK);
        created(fds[1], GREEN_FD_PIPE, flags & O_NONBLOCK);
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
        created(fd, GREEN_FD_UNKNOWN, flags & O_NONBLOCK);
    return fd;
}

int green_hook_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    int fd = fifo_open(dirfd, path, flags, mode);
    if (fd == -2)
        fd = REAL(openat)(dirfd, path, flags, mode);
    if (fd >= 0)
        created(fd, GREEN_FD_UNKNOWN, flags & O_NONBLOCK);
    return fd;
}

/* Wake green threads waiting on fd (EBADF) and forget its state. */
static void fd_gone(int fd)
{
    if (green__tls_ctx && !green__bypass)
        green_fd_closing(fd);
    green__fdstate_reset(fd);
}

/* libgreen's own fds (green_internal.h) do not exist for the program: a
 * daemon closing every fd from 3 up must not take the hub's epoll fd,
 * eventfd or timerfd. libev's own calls (green__in_libev) pass. */
static bool hidden(int fd)
{
    return green__unlikely(green__fd_is_internal(fd)) && !green__in_libev;
}

int green_hook_close(int fd)
{
    if (green__unlikely(green__fd_is_internal(fd))) {
        if (!green__in_libev) {
            errno = EBADF;
            return -1;
        }
        green__fd_set_internal(fd, false);   /* libev closing its own */
    }
    fd_gone(fd);
    return REAL(close)(fd);
}

/* Forget every descriptor of [first, last] we know of (close_range,
 * closefrom): glibc closes them with one syscall no close hook sees. */
static void forget_range(unsigned int first, unsigned int last)
{
    unsigned int limit = (unsigned int)green__fdstate_limit();
    for (unsigned int fd = first; fd < limit && fd <= last; fd++)
        fd_gone((int)fd);
}

/* An epoll fd made by libev for a hub is libgreen's own; one the program
 * makes takes a number that is no longer internal. */
static int epoll_made(int fd)
{
    if (fd >= 0 && green__in_libev)
        return green__fd_hide(fd);
    if (fd >= 0)
        created(fd, GREEN_FD_OTHER, false);
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
        created(fd, GREEN_FD_OTHER, flags & EFD_NONBLOCK);
    return fd;
}

/* Real close_range on [a, b], then forget what it closed. With flags 0
 * and no close_range in the kernel, one close each (closefrom's pieces
 * below an internal fd only, so b is bounded). */
static int close_piece(unsigned int a, unsigned int b, int flags)
{
    int (*f)(unsigned int, unsigned int, int) = real_chk("close_range");
    int r = f(a, b, flags);
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
    void (*f)(int) = real_chk("closefrom");
    unsigned int rest = (unsigned int)lowfd;
    if (lowfd >= 0 && !green__in_libev)
        close_around_internal((unsigned int)lowfd, ~0u, 0, &rest);
    f(lowfd >= 0 ? (int)rest : lowfd);
    if (lowfd >= 0)
        forget_range(rest, ~0u);
}

int green_hook_dup(int fd)
{
    if (hidden(fd)) {
        errno = EBADF;
        return -1;
    }
    int r = REAL(dup)(fd);
    if (r >= 0) {
        fresh_number(r);
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
    if (hidden(fd)) {
        errno = EBADF;
        return -1;
    }
    if (hidden(fd2)) {
        errno = EBUSY;
        return -1;
    }
    return 0;
}

int green_hook_dup2(int fd, int fd2)
{
    if (dup_target_check(fd, fd2) != 0)
        return -1;
    int r = REAL(dup2)(fd, fd2);
    if (r >= 0 && fd != fd2) {
        fd_gone(fd2);
        green__fdstate_dup(fd, fd2);
    }
    return r;
}

int green_hook_dup3(int fd, int fd2, int flags)
{
    if (dup_target_check(fd, fd2) != 0)
        return -1;
    int r = REAL(dup3)(fd, fd2, flags);
    if (r >= 0) {
        fd_gone(fd2);
        green__fdstate_dup(fd, fd2);
    }
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
    if (hidden(fd)) {
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
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int r = REAL(fcntl)(fd, cmd, (int)(intptr_t)arg);
        if (r >= 0) {
            fresh_number(r);
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

/* ----------------------------------------------- fortified entry points */

/* A libc function outside the real table (glibc's own __*_chk, which
 * abort with "buffer overflow detected"; close_range...). */
static void *real_chk(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f)
        abort();
    return f;
}

int green_hook_open_2(const char *path, int flags)
{
    if (flags & (O_CREAT | O_TMPFILE)) {
        int (*f)(const char *, int) = real_chk("__open_2");
        return f(path, flags);     /* "invalid open call": aborts */
    }
    return green_hook_open(path, flags, 0);
}

int green_hook_openat_2(int dirfd, const char *path, int flags)
{
    if (flags & (O_CREAT | O_TMPFILE)) {
        int (*f)(int, const char *, int) = real_chk("__openat_2");
        return f(dirfd, path, flags);
    }
    return green_hook_openat(dirfd, path, flags, 0);
}

ssize_t green_hook_read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen) {
        ssize_t (*f)(int, void *, size_t, size_t) = real_chk("__read_chk");
        return f(fd, buf, n, buflen);
    }
    return green_hook_read(fd, buf, n);
}

ssize_t green_hook_pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
    if (n > buflen) {
        ssize_t (*f)(int, void *, size_t, off_t, size_t) = real_chk("__pread_chk");
        return f(fd, buf, n, off, buflen);
    }
    return green_hook_pread(fd, buf, n, off);
}

ssize_t green_hook_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen) {
        ssize_t (*f)(int, void *, size_t, size_t, int) = real_chk("__recv_chk");
        return f(fd, buf, n, buflen, flags);
    }
    return green_hook_recv(fd, buf, n, flags);
}

ssize_t green_hook_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                struct sockaddr *addr, socklen_t *alen)
{
    if (n > buflen) {
        ssize_t (*f)(int, void *, size_t, size_t, int, struct sockaddr *,
                     socklen_t *) = real_chk("__recvfrom_chk");
        return f(fd, buf, n, buflen, flags, addr, alen);
    }
    return green_hook_recvfrom(fd, buf, n, flags, addr, alen);
}

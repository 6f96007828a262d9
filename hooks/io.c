/*
 * io.c - the socket and descriptor hooks: a blocking call made by a green
 * thread parks only that green thread.
 *
 * How a call waits, by kind of descriptor (fdstate.c remembers the kind):
 *  - Sockets: per-call non-blocking. The hook first makes the program's own
 *    call with MSG_DONTWAIT added (read becomes recv, readv becomes recvmsg,
 *    and so on), so a read on a ready socket is exactly one syscall and
 *    touches nothing shared (except a plain read of a socket that came
 *    back short last time, which parks first: libgreen/fdstate.c, "park
 *    first"). Only on EAGAIN does it look at what the
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
 *    (green__io_ready_for_call): zero bytes, the wrong direction (EBADF),
 *    short eventfd/timerfd/signalfd transfers and epoll fds (EINVAL).
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
 * wakes with ECANCELED, and green__hook_park_fd or green__io_file_offload
 * acts on it). close is left out although POSIX lists it: a cancel acting
 * at its entry would leave the descriptor open and its waiters asleep. Known
 * limit: a blocking connect cancelled while it waits exits with the
 * socket's O_NONBLOCK still set (fdstate keeps showing the program its own
 * view in F_GETFL).
 *
 * Descriptor numbers: every hooked call that creates a descriptor resets
 * libgreen/fd.c's slot for that number (green__io_fresh_number), because
 * the file that had it before may have been closed where no hook sees it
 * (fclose): libev would otherwise believe the old registration still
 * stands and a wait on the new file would never wake.
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
 *
 * Where the code lives. This file is the core of the I/O hook layer: this
 * essay, the shared wait helpers (park on a descriptor up to the
 * program's timeout, nap interruptibly), the read/write dispatch (look up
 * the descriptor's kind once, then hand the call to the file that serves
 * that kind) and glibc's fortified entry points. The other parts:
 *   io_sock.c      socket data transfer: recv*, send*, MSG_WAITALL, *mmsg
 *   io_pipe.c      pipes, ttys, eventfds and other fds; regular-file offload
 *   io_conn.c      socket lifecycle: socket, socketpair, listen, accept, connect
 *   io_sendfile.c  sendfile, splice, tee
 *   io_fd.c        descriptor lifetime: pipe, open, close*, dup*, epoll_create,
 *                  eventfd, fcntl, ioctl, setsockopt; libgreen's own fds
 *   io_internal.h  what they share; the fast-path helpers are static inline
 *                  there, so a ready read is one syscall and no extra call.
 */
#define _GNU_SOURCE
#include "io_internal.h"
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/* ---------------------------------------------------- shared helpers */

/* green__copy_in (io.h): one process_vm_readv on ourselves. */
/* green__copy_in and green__copy_out: n bytes between our memory and
 * the program's, through process_vm_readv (out false) or _writev to
 * ourselves, so that a bad pointer is EFAULT instead of a crash. */
static int copy_self(bool out, void *dst, const void *src, size_t n)
{
    if (n == 0)
        return 0;
    struct iovec to = { dst, n }, from = { (void *)src, n };
    long r = green__syscall(out ? SYS_process_vm_writev : SYS_process_vm_readv,
                            (long)getpid(), out ? &from : &to, 1L, out ? &to : &from, 1L, 0L);
    if (r == (long)n)
        return 0;
    if (r < 0 && errno != EFAULT) {       /* no process_vm_*: trust it */
        memcpy(dst, src, n);
        return 0;
    }
    errno = EFAULT;
    return -1;
}

int green__copy_in(void *dst, const void *src, size_t n)
{
    return copy_self(false, dst, src, n);
}

int green__copy_out(void *dst, const void *src, size_t n)
{
    return copy_self(true, dst, src, n);
}

/* A descriptor number handed out by the kernel again. If the previous
 * file with this number was closed behind our back (fclose closes with
 * glibc's internal close), libev still believes that file is registered
 * with epoll while the kernel dropped it: a wait on the new file would
 * never wake. Resetting the slot makes the next wait register it afresh
 * (no syscall now; nothing at all when the slot was never used). */
void green__io_fresh_number(int fd)
{
    if (green__tls_ctx)
        green_fd_closing(fd);
}

/* Park until fd is ready for mask. *deadline is computed at the first
 * park from timeo (ns, 0 = none). Returns 0 to try again, or -1 with
 * errno: timeout_errno when timeo expired, EBADF (closed), ECANCELED,
 * ETIMEDOUT (an enclosing green_timeout scope). May switch. */
int green__io_park_fd_restart(int fd, int mask, int64_t *deadline, int64_t timeo,
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

/* Sleep a millisecond as part of an interruptible call that began with
 * green__intr_begin, or less when the deadline is nearer. Returns 0 to go
 * on, ETIMEDOUT past the deadline, EINTR (not restarted: the caller asks
 * green__intr_restarts when it may restart), ECANCELED. May switch. */
int green__io_intr_nap(int64_t deadline)
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

/* ------------------------------------------------- read/write dispatch */

/* A socket call failed with ENOTSOCK: the table was stale. */
static bool stale_socket(int fd, ssize_t r)
{
    if (r >= 0 || errno != ENOTSOCK)
        return false;
    green__io_fresh_number(fd);
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
            return green__io_file_offload(&(struct file_job){
                .op = F_READ, .fd = fd, .buf = buf, .n = n });
        return REAL(read)(fd, buf, n);
    }
    if (green__io_ready_for_call(fd, GREEN_READ, n, true) < 0)
        return -1;
    return kept(REAL(read)(fd, buf, n), e0);
}

ssize_t green_hook_write(int fd, const void *buf, size_t n)
{
    /* libev's own write (an ev_async_send: green__async_send) passes. */
    if (!io_on() || green__unlikely(green__in_libev))
        return REAL(write)(fd, buf, n);
    int e0 = errno;
    green__cancel_point(0);
    enum green__fdkind k = kind_for_call(fd);
    if (k == GREEN_FD_SOCKET) {
        struct sockop o = { .op = OP_SEND, .fd = fd, .buf = (void *)buf, .len = n };
        ssize_t r = green__io_sock_send(&o);
        if (!stale_socket(fd, r))
            return kept(r, e0);
        k = kind_for_call(fd);
    }
    if (k == GREEN_FD_FILE || k == GREEN_FD_UNKNOWN) {
        if (k == GREEN_FD_FILE && file_offload_on(fd))
            return green__io_file_offload(&(struct file_job){
                .op = F_WRITE, .fd = fd, .buf = (void *)buf, .n = n });
        return REAL(write)(fd, buf, n);
    }
    if (k == GREEN_FD_PIPE)
        return kept(green__io_pipe_write(fd, buf, n), e0);
    if (green__io_ready_for_call(fd, GREEN_WRITE, n, true) < 0)
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
    ssize_t r = green__io_sock_once(&o, MSG_DONTWAIT);
    if (green__likely(r >= 0) || !would_block(errno))
        return r;
    if (iov_total(iov, (size_t)iovcnt) == 0)
        return 0;
    return green__io_recv_slow(&o);
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
            return green__io_file_offload(&(struct file_job){
                .op = F_READV, .fd = fd, .iov = iov, .iovcnt = iovcnt });
        return REAL(readv)(fd, iov, iovcnt);
    }
    /* Not ready: the kernel may answer at once (EFAULT, zero bytes). */
    size_t n = green__io_iov_check(iov, iovcnt) == 0 ? iov_total(iov, (size_t)iovcnt) : 0;
    if (green__io_ready_for_call(fd, GREEN_READ, n, true) < 0)
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
        ssize_t r = green__io_sock_send(&o);
        if (!stale_socket(fd, r))
            return kept(r, e0);
        k = kind_for_call(fd);
    }
    if (k == GREEN_FD_FILE || k == GREEN_FD_UNKNOWN) {
        if (k == GREEN_FD_FILE && file_offload_on(fd))
            return green__io_file_offload(&(struct file_job){
                .op = F_WRITEV, .fd = fd, .iov = iov, .iovcnt = iovcnt });
        return REAL(writev)(fd, iov, iovcnt);
    }
    if (k == GREEN_FD_PIPE)
        return kept(green__io_pipe_writev(fd, iov, iovcnt), e0);
    size_t n = green__io_iov_check(iov, iovcnt) == 0 ? iov_total(iov, (size_t)iovcnt) : 0;
    if (green__io_ready_for_call(fd, GREEN_WRITE, n, true) < 0)
        return -1;
    return kept(REAL(writev)(fd, iov, iovcnt), e0);
}

ssize_t green_hook_pread(int fd, void *buf, size_t n, off_t off)
{
    if (io_on())
        green__cancel_point(0);
    if (io_on() && file_offload_on(fd))
        return green__io_file_offload(&(struct file_job){
            .op = F_PREAD, .fd = fd, .buf = buf, .n = n, .off = off });
    return REAL(pread)(fd, buf, n, off);
}

ssize_t green_hook_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (io_on())
        green__cancel_point(0);
    if (io_on() && file_offload_on(fd))
        return green__io_file_offload(&(struct file_job){
            .op = F_PWRITE, .fd = fd, .buf = (void *)buf, .n = n, .off = off });
    return REAL(pwrite)(fd, buf, n, off);
}

/* ----------------------------------------------- fortified entry points */

/* glibc's own checks (they abort with "buffer overflow detected" or
 * "invalid open call") run when the call is one glibc would refuse. */

int green_hook_open_2(const char *path, int flags)
{
    if (flags & (O_CREAT | O_TMPFILE)) {
        return GREEN_REAL(__open_2)(path, flags);     /* "invalid open call": aborts */
    }
    return green_hook_open(path, flags, 0);
}

int green_hook_openat_2(int dirfd, const char *path, int flags)
{
    if (flags & (O_CREAT | O_TMPFILE)) {
        return GREEN_REAL(__openat_2)(dirfd, path, flags);
    }
    return green_hook_openat(dirfd, path, flags, 0);
}

ssize_t green_hook_read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen) {
        return GREEN_REAL(__read_chk)(fd, buf, n, buflen);
    }
    return green_hook_read(fd, buf, n);
}

ssize_t green_hook_pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
    if (n > buflen) {
        return GREEN_REAL(__pread_chk)(fd, buf, n, off, buflen);
    }
    return green_hook_pread(fd, buf, n, off);
}

ssize_t green_hook_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen) {
        return GREEN_REAL(__recv_chk)(fd, buf, n, buflen, flags);
    }
    return green_hook_recv(fd, buf, n, flags);
}

ssize_t green_hook_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                struct sockaddr *addr, socklen_t *alen)
{
    if (n > buflen) {
        return GREEN_REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, addr, alen);
    }
    return green_hook_recvfrom(fd, buf, n, flags, addr, alen);
}

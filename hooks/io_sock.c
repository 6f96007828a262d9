/*
 * io_sock.c - socket data transfer: recv, recvfrom, recvmsg, send, sendto,
 * sendmsg, recvmmsg and sendmmsg, and the socket side of read, readv,
 * write and writev, which io.c's dispatch hands over. The design
 * (per-call MSG_DONTWAIT, park only on EAGAIN, timeouts and EINTR as the
 * kernel's) is in io.c's essay.
 *
 * Invariants: the first try is the program's own call with MSG_DONTWAIT
 * added, so a ready socket costs exactly that syscall (sock_recv is static
 * inline in io_internal.h to keep it so from every file); nothing is
 * looked up before that try fails or comes back short; one deadline
 * (SO_RCVTIMEO or SO_SNDTIMEO) covers the whole call however often it
 * parks; a call that moved bytes returns its partial count when a signal,
 * an error or the timeout cuts it short; user memory (a msghdr, iovecs)
 * is read only after the kernel accepted it.
 *
 * Rejected: O_NONBLOCK on sockets (io.c's essay); for MSG_PEEK with
 * MSG_WAITALL, peeking into the rest of the buffer (the same bytes would
 * be handed out twice: peek_waitall re-peeks the whole length instead).
 */
#define _GNU_SOURCE
#include "io_internal.h"
#include <poll.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------ sockets */

/* Call fn for each descriptor a message carries with SCM_RIGHTS (read
 * after the kernel accepted the msghdr). */
static void each_passed_fd(const struct msghdr *m, void (*fn)(int))
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
        for (size_t k = 0; k < n; k++)
            fn(fds[k]);
    }
}

/* A descriptor that arrived: its number may have a stale entry. */
static void received_fd(int fd)
{
    green__io_fresh_number(fd);
    green__fdstate_reset(fd);
}

/* One sendmsg system call. The descriptors it may carry go to another
 * process, which may change their description (libgreen/fdstate.c, the
 * flag cache): their marks are dropped as the call returns (the msghdr
 * is read only after the kernel took it), and from before the call until
 * then no cached flag is used in the whole process
 * (green__fdstate_rights_begin). Nothing between begin and end can park
 * or act on a cancel. */
static ssize_t sendmsg_carrying(int fd, const struct msghdr *m, int flags)
{
    bool rights = green__fdstate_rights_begin(fd);
    ssize_t r = REAL(sendmsg)(fd, m, flags);
    if (r >= 0 && m->msg_controllen)
        each_passed_fd(m, green__fdstate_share);
    int e = errno;
    green__fdstate_rights_end(rights);
    errno = e;
    return r;
}

/* The same for one sendmmsg system call (r messages went). */
static int sendmmsg_carrying(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
    bool rights = green__fdstate_rights_begin(fd);
    int r = REAL(sendmmsg)(fd, v, n, flags);
    for (int k = 0; k < r; k++)
        if (v[k].msg_hdr.msg_controllen)
            each_passed_fd(&v[k].msg_hdr, green__fdstate_share);
    int e = errno;
    green__fdstate_rights_end(rights);
    errno = e;
    return r;
}

ssize_t green__io_sock_once(const struct sockop *o, int flags)
{
    switch (o->op) {
    case OP_RECV:     return REAL(recv)(o->fd, o->buf, o->len, flags);
    case OP_RECVFROM: return REAL(recvfrom)(o->fd, o->buf, o->len, flags,
                                                  o->from, o->fromlen);
    case OP_RECVMSG:  return REAL(recvmsg)(o->fd, o->msg, flags);
    case OP_SEND:     return REAL(send)(o->fd, o->buf, o->len, flags);
    case OP_SENDTO:   return REAL(sendto)(o->fd, o->buf, o->len, flags,
                                                o->to, o->tolen);
    case OP_SENDMSG:  return sendmsg_carrying(o->fd, o->msg, flags);
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
        if (green__io_park_fd_restart(o->fd, GREEN_READ, deadline, timeo, EAGAIN,
                                      restartable) < 0)
            return -1;
        ssize_t r = green__io_sock_once(o, o->flags | MSG_DONTWAIT);
        if (r >= 0 || !would_block(errno))
            return r;
    }
}

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
        return green__io_sock_once(&rest, o->flags | MSG_DONTWAIT);
    }
    struct iovec tmp[IOV_CHUNK];
    struct msghdr *m = o->msg;
    struct msghdr rest = { .msg_iov = tmp };
    rest.msg_iovlen = (size_t)green__io_iov_window(m->msg_iov, m->msg_iovlen, got,
                                                   SIZE_MAX, tmp, IOV_CHUNK);
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
        if (green__io_probe(&p, 1) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            break;                 /* EOF or error: the kernel returns what it has */
        int code = green__io_intr_nap(deadline);
        if (code) {
            if (code == ECANCELED)
                green__cancel_point(ECANCELED);
            break;                 /* timeout or signal: the partial count */
        }
        ssize_t r = green__io_sock_once(o, o->flags | MSG_DONTWAIT);
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
            if (green__io_park_fd_restart(o->fd, GREEN_READ, deadline, timeo, EAGAIN,
                                          false) < 0)
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
ssize_t green__io_recv_slow(const struct sockop *o)
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

/* Park first, then receive (sock_recv). Only for a blocking socket
 * without SO_RCVTIMEO: with a timeout (even "at once") data that is there
 * must be returned before any deadline can pass, so the try comes first.
 * A signal that ends the park: data that was there is returned (natively
 * a signal cannot interrupt a receive that had data at its start), else
 * EINTR. A cancel acts in the park, as at the call's start. May switch. */
ssize_t green__io_recv_park_first(const struct sockop *o)
{
    struct green__fdinfo i = green__fdstate_view(o->fd, GREEN_VIEW_RCVTIMEO);
    int64_t deadline = UNSET;
    if (green__unlikely(i.user_nonblock || i.rcvtimeo)) {
        ssize_t r = green__io_sock_once(o, o->flags | MSG_DONTWAIT);
        if (r >= 0 || !would_block(errno) || i.user_nonblock)
            return r;
        return recv_wait(o, &deadline, i.rcvtimeo, true);
    }
    if (green__io_park_fd_restart(o->fd, GREEN_READ, &deadline, 0, EAGAIN, true) < 0) {
        int e = errno;
        ssize_t r = green__io_sock_once(o, o->flags | MSG_DONTWAIT);
        if (r >= 0 || !would_block(errno))
            return r;
        errno = e;
        return -1;
    }
    ssize_t r = green__io_sock_once(o, o->flags | MSG_DONTWAIT);
    if (r >= 0 || !would_block(errno))
        return r;
    return recv_wait(o, &deadline, 0, true);
}

/* Everything but a plain receive that found data: MSG_WAITALL after a
 * short first piece (r >= 0), or the first try failed (r < 0, errno from
 * it). Out of line, so that the fast path stays small. May switch. */
__attribute__((noinline)) ssize_t green__io_sock_recv_more(const struct sockop *o,
                                                           ssize_t r)
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
    /* MSG_ERRQUEUE reads the error queue, which never waits: EAGAIN
     * when it is empty, however readable the data queue is. */
    if (!would_block(errno) || (o->flags & (MSG_DONTWAIT | MSG_ERRQUEUE)))
        return r;
    return green__io_recv_slow(o);
}

static size_t op_total(const struct sockop *o)
{
    return o->op == OP_SENDMSG ? iov_total(o->msg->msg_iov, o->msg->msg_iovlen) : o->len;
}

/* Fill tmp (at most max entries) with the part of iov[0..cnt) that starts
 * skip bytes in and holds at most limit bytes, leaving out empty entries.
 * Returns the number of entries used. */
int green__io_iov_window(const struct iovec *iov, size_t cnt, size_t skip, size_t limit,
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
        return green__io_sock_once(&rest, o->flags | MSG_DONTWAIT);
    }
    struct iovec tmp[IOV_CHUNK];
    const struct msghdr *m = o->msg;
    struct msghdr rest = *m;
    rest.msg_iov = tmp;
    rest.msg_iovlen = (size_t)green__io_iov_window(m->msg_iov, m->msg_iovlen, done,
                                                   SIZE_MAX, tmp, IOV_CHUNK);
    if (done) {
        rest.msg_control = NULL;
        rest.msg_controllen = 0;
    }
    return sendmsg_carrying(o->fd, &rest, o->flags | MSG_DONTWAIT);
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
        if (green__io_park_fd_restart(o->fd, GREEN_WRITE, &deadline, i.sndtimeo, EAGAIN,
                                      !done) < 0)
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
ssize_t green__io_sock_send(const struct sockop *o)
{
    ssize_t r = green__io_sock_once(o, o->flags | MSG_DONTWAIT);
    if (o->flags & MSG_DONTWAIT)
        return r;
    if (r < 0 && !would_block(errno))
        return r;
    size_t total = op_total(o);
    if (r >= 0 && (size_t)r >= total)
        return r;
    return send_wait(o, r < 0 ? 0 : (size_t)r, total);
}

/* ----------------------------------------------- socket entry points */

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
        each_passed_fd(msg, received_fd);
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
    return kept(green__io_sock_send(&o), e0);
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
    return kept(green__io_sock_send(&o), e0);
}

ssize_t green_hook_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (!io_on() || !msg)
        return sendmsg_carrying(fd, msg, flags);
    int e0 = errno;
    green__cancel_point(0);
    struct sockop o = { .op = OP_SENDMSG, .fd = fd, .msg = (struct msghdr *)msg,
                        .flags = flags };
    return kept(green__io_sock_send(&o), e0);
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
        if (green__io_park_fd_restart(fd, GREEN_READ, &deadline, i.rcvtimeo, EAGAIN,
                                      !got) < 0) {
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
        return sendmmsg_carrying(fd, v, n, flags);
    int e0 = errno;
    green__cancel_point(0);
    unsigned sent = 0;
    int64_t deadline = UNSET;
    for (;;) {
        int r = sendmmsg_carrying(fd, v + sent, n - sent, flags | MSG_DONTWAIT);
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
        if (green__io_park_fd_restart(fd, GREEN_WRITE, &deadline, i.sndtimeo, EAGAIN,
                                      !sent) < 0)
            return sent ? (int)kept(sent, e0) : -1;
    }
}

/*
 * io_conn.c - the socket lifecycle: socket, socketpair, listen, accept,
 * accept4 and connect. accept and connect have no per-call non-blocking
 * form. A blocking accept asks poll(fd, 0) first and parks while no
 * connection waits, never touching the listener's flags (the "Decision"
 * in io.c's essay, with its costs and its known limit). A blocking
 * connect sets O_NONBLOCK for the duration of the call, parks until the
 * socket is writable, completes with a second connect() and restores the
 * program's flags.
 *
 * Invariants: every descriptor made here is recorded (green__io_created)
 * with the O_NONBLOCK the program asked for; a call the kernel rejects at
 * once (bad flags, a socket that does not listen, the program's own
 * non-blocking socket) is made at once, never parked on; while a connect
 * of ours holds O_NONBLOCK, other green threads see the program's own
 * view in F_GETFL (io_fd.c).
 *
 * Rejected: O_NONBLOCK around each accept, or clearing it before exec
 * (io.c's essay); reading SO_ERROR to complete a connect (a second
 * connect moves the socket to "connected" or consumes the error, as the
 * kernel's blocking connect does: connect_nb).
 */
#define _GNU_SOURCE
#include "io_internal.h"
#include <fcntl.h>
#include <poll.h>

/* ---------------------------------------------------- socket lifecycle */

/* green__io_park_fd_restart (io.c) for a call that restarts under
 * SA_RESTART, as accept and connect do when the socket has no timeout. */
static int park_fd(int fd, int mask, int64_t *deadline, int64_t timeo,
                   int timeout_errno)
{
    return green__io_park_fd_restart(fd, mask, deadline, timeo, timeout_errno, true);
}

/* A socket this process just made: recorded with its kind (sock:
 * GREEN_SOCK_*), and its own (the flag cache, libgreen/fdstate.c) unless
 * a process was made since gen, with what is known of its flags without
 * asking the kernel (timeouts: GREEN_KNOWN_RCV0/SND0). */
static void made(int fd, bool nonblock, unsigned gen, unsigned sock, unsigned timeouts)
{
    green__io_created(fd, GREEN_FD_SOCKET, nonblock);
    green__fdstate_set_sock(fd, sock);
    green__fdstate_own(fd, gen,
                       (nonblock ? GREEN_KNOWN_NB : GREEN_KNOWN_BLOCKING) | timeouts);
}

/* A new socket has no timeouts. */
#define NO_TIMEOUTS (GREEN_KNOWN_RCV0 | GREEN_KNOWN_SND0)

static unsigned sock_kind(int domain, int type)
{
    return (domain == AF_INET || domain == AF_INET6 ? GREEN_SOCK_INET : 0) |
           ((type & 0xf) == SOCK_STREAM ? GREEN_SOCK_STREAM : 0);
}

int green_hook_socket(int domain, int type, int protocol)
{
    unsigned gen = green__fdstate_spawn_gen();
    int fd = REAL(socket)(domain, type, protocol);
    if (fd >= 0)
        made(fd, type & SOCK_NONBLOCK, gen, sock_kind(domain, type), NO_TIMEOUTS);
    return fd;
}

int green_hook_socketpair(int domain, int type, int protocol, int sv[2])
{
    unsigned gen = green__fdstate_spawn_gen();
    int r = REAL(socketpair)(domain, type, protocol, sv);
    if (r == 0) {
        made(sv[0], type & SOCK_NONBLOCK, gen, sock_kind(domain, type), NO_TIMEOUTS);
        made(sv[1], type & SOCK_NONBLOCK, gen, sock_kind(domain, type), NO_TIMEOUTS);
    }
    return r;
}

int green_hook_listen(int fd, int backlog)
{
    return REAL(listen)(fd, backlog);
}

/* An accepted socket: O_NONBLOCK only from accept4's flags (Linux does not
 * inherit it), the timeouts the listener had (Linux copies them), when
 * known (green__fdstate_known_timeouts). */
static int accepted(int lfd, int fd, int flags, unsigned gen)
{
    if (fd >= 0)
        made(fd, flags & SOCK_NONBLOCK, gen, green__fdstate_sock(lfd),
             green__fdstate_known_timeouts(lfd));
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

/* A blocking accept that parks only the caller (see the decision in
 * io.c's essay): poll, accept when a connection waits, else park. May
 * switch. */
int green_hook_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    unsigned gen = green__fdstate_spawn_gen();
    if (!io_on())
        return accepted(fd, REAL(accept4)(fd, addr, len, flags), flags, gen);
    int e0 = errno;
    green__cancel_point(0);
    int64_t deadline = UNSET, timeo = -1;
    for (;;) {
        /* Ready, or an error accept itself reports (POLLNVAL, POLLHUP on
         * a socket that does not listen: EINVAL as Linux says). */
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (green__io_probe(&p, 1) != 0)
            return (int)kept(accepted(fd, REAL(accept4)(fd, addr, len, flags), flags, gen), e0);
        if (timeo < 0 && !accept_would_wait(fd, flags, &timeo))
            return (int)kept(accepted(fd, REAL(accept4)(fd, addr, len, flags), flags, gen), e0);
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
        int code = green__io_intr_nap(deadline);
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
        /* A learner on another hub between the two lines above read our
         * O_NONBLOCK: it must not stay in the flag cache. */
        green__fdstate_changed(fd);
    }
    errno = r == 0 ? e0 : e;
    return r;
}

/*
 * io_sendfile.c - the zero-copy transfers: sendfile, splice and tee.
 * sendfile has no per-call non-blocking form at all, and splice's
 * SPLICE_F_NONBLOCK covers its pipe sides but not a socket it writes to;
 * so this is where the hooks set O_NONBLOCK on a description themselves,
 * just around one attempt, and restore the program's flags before
 * anything else runs on the hub (its one OS thread runs every green
 * thread of the hub, so none of them can see the flag). The rest of the
 * design is in io.c's essay.
 *
 * Invariants: a descriptor the program made non-blocking itself gives
 * EAGAIN, as natively; partial counts are the kernel's; sendfile to a
 * regular file (or a descriptor of unknown kind) passes straight through;
 * to a pipe or a tty it sends pieces that cannot block once the output is
 * writable (PIPE_BUF for pipes).
 *
 * Rejected: leaving O_NONBLOCK on the output between calls (the
 * description is shared: the decision in io.c's essay).
 */
#define _GNU_SOURCE
#include "io_internal.h"
#include <fcntl.h>
#include <limits.h>
#include <poll.h>

#define SENDFILE_CHUNK (64 * 1024) /* most a blocking sendfile asks at once */

/* --------------------------------------------- sendfile, splice, tee */

/* O_NONBLOCK of ours on a socket around one call (fl: the program's flags,
 * blocking, as the caller read them from the kernel and recorded with
 * green__fdstate_set_user_nonblock). The green threads of this hub cannot
 * run meanwhile; those of other hubs see the program's view in F_GETFL
 * and the flag cache learns nothing (B_OURNB, libgreen/fdstate.c), as
 * during a blocking connect. */
static void ours_on(int fd, int fl)
{
    green__fdstate_set_our_nonblock(fd, true);
    REAL(fcntl)(fd, F_SETFL, fl | O_NONBLOCK);
}

static void ours_off(int fd, int fl)
{
    /* The program's O_NONBLOCK as its F_SETFL on another hub may have
     * recorded it meanwhile (green_hook_fcntl kept ours on). */
    bool want = green__fdstate_peek(fd).user_nonblock;
    REAL(fcntl)(fd, F_SETFL, want ? fl | O_NONBLOCK : fl);
    green__fdstate_set_our_nonblock(fd, false);
}

/* sendfile to a socket has no per-call non-blocking form (like accept and
 * connect, io_conn.c): O_NONBLOCK is set just around each attempt
 * (ours_on) and the caller parks on EAGAIN, so the hub never waits for a
 * slow peer. Partial counts as the kernel's. May switch. */
static ssize_t sock_sendfile(int out_fd, int in_fd, off_t *off, size_t n)
{
    int fl = REAL(fcntl)(out_fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK))
        return REAL(sendfile)(out_fd, in_fd, off, n);
    int64_t timeo = green__fdstate_view(out_fd, GREEN_VIEW_SNDTIMEO).sndtimeo;
    green__fdstate_set_user_nonblock(out_fd, false);
    int64_t deadline = UNSET;
    size_t done = 0;
    for (;;) {
        ours_on(out_fd, fl);
        ssize_t r = REAL(sendfile)(out_fd, in_fd, off, n - done);
        int e = errno;
        ours_off(out_fd, fl);
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
            green__io_park_fd_restart(out_fd, GREEN_WRITE, &deadline, timeo, EAGAIN,
                                      !done) < 0)
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
        if (green__io_ready_for_call(out_fd, GREEN_WRITE, n, done == 0) < 0)
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

static ssize_t splice_once(int in, loff_t *off_in, int out, loff_t *off_out, size_t n,
                           unsigned int flags, bool is_tee, bool out_sock)
{
    flags |= SPLICE_F_NONBLOCK;
    if (is_tee)
        return GREEN_REAL(tee)(in, out, n, flags);
    int fl = out_sock ? REAL(fcntl)(out, F_GETFL) : -1;
    if (fl >= 0 && !(fl & O_NONBLOCK)) {
        green__fdstate_set_user_nonblock(out, false);
        ours_on(out, fl);
    }
    ssize_t r = GREEN_REAL(splice)(in, off_in, out, off_out, n, flags);
    int e = errno;
    if (fl >= 0 && !(fl & O_NONBLOCK))
        ours_off(out, fl);
    errno = e;
    return r;
}

/* The side a would-block splice waits for: GREEN_READ (in), GREEN_WRITE
 * (out), 0 to retry at once, or -1 when the program's own O_NONBLOCK on
 * that side makes EAGAIN the answer. */
static int splice_side(int in, int out)
{
    struct pollfd p[2] = { { .fd = in, .events = POLLIN }, { .fd = out, .events = POLLOUT } };
    green__io_probe(p, 2);
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
    if (!io_on() || (flags & SPLICE_F_NONBLOCK) || n == 0)
        return GREEN_REAL(splice)(in, off_in, out, off_out, n, flags);
    return splice_common(in, off_in, out, off_out, n, flags, false);
}

ssize_t green_hook_tee(int in, int out, size_t n, unsigned int flags)
{
    if (!io_on() || (flags & SPLICE_F_NONBLOCK) || n == 0)
        return GREEN_REAL(tee)(in, out, n, flags);
    return splice_common(in, NULL, out, NULL, n, flags, true);
}

/*
 * cases_flagcache.c - differential cases of the flagcache family (see
 * diff.h): a socket's O_NONBLOCK and SO_RCVTIMEO belong to its open file
 * description, and every way of changing them is seen by the next read.
 *
 * Why a family of its own. Under the shim, a socket this process made and
 * shares with nobody keeps what the kernel said of its flags after the
 * first read that had to wait (libgreen/fdstate.c, "the flag cache"). Each
 * case here first makes the shim learn (a read that waits, or an EAGAIN
 * on a non-blocking socket), then changes the description one way, then
 * reads again: a cache that missed the change parks where Linux said
 * EAGAIN (the watchdog's byte arrives after 2 s: "ret=1"), or says EAGAIN
 * where Linux waits. The ways: the same descriptor (fcntl, FIONBIO,
 * setsockopt), a dup of every kind, syscall() with the same calls, a
 * forked, vforked or cloned child, an exec'd, posix_spawn'd, system() or
 * popen() program, and a process that got the descriptor with SCM_RIGHTS
 * (forked before the socket existed). And the number made anew where no
 * hook sees it: closed by fclose of an fdopen'd stream or by a raw
 * close_range, taken again by a raw socketpair.
 *
 * Helper programs are this binary again: cases_fd.c's constructor does
 * the action named in DIFF_FD_HELPER ("setnb", "clearnb", "settimeo").
 */
#include "diff.h"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum what { SET_NB, CLEAR_NB, SET_TIMEO };

static const char *helper_action(enum what w)
{
    return w == SET_NB ? "setnb" : w == CLEAR_NB ? "clearnb" : "settimeo";
}

/* The change itself, in this process (fcntl/setsockopt, hooked). */
static int change(int fd, enum what w)
{
    if (w == SET_TIMEO) {
        struct timeval tv = { 0, 100000 };
        return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    int fl = fcntl(fd, F_GETFL);
    return fcntl(fd, F_SETFL, w == SET_NB ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* The same through syscall(). */
static int change_raw(int fd, enum what w)
{
    if (w == SET_TIMEO) {
        struct timeval tv = { 0, 100000 };
        return (int)syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    int fl = (int)syscall(SYS_fcntl, fd, F_GETFL);
    return (int)syscall(SYS_fcntl, fd, F_SETFL, w == SET_NB ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static void print_status(const char *label, pid_t pid)
{
    int st = 0;
    if (pid < 0)
        diff_out("%s: not started %s", label, diff_errname(errno));
    else if (waitpid(pid, &st, 0) != pid)
        diff_out("%s: waitpid failed %s", label, diff_errname(errno));
    else if (WIFEXITED(st))
        diff_out("%s: exit=%d", label, WEXITSTATUS(st));
    else
        diff_out("%s: signal", label);
}

/* The environment of a helper doing w on fd: the program's own, with
 * DIFF_FD_HELPER added, without LD_PRELOAD (a plain program). */
static char **helper_env(char *var, size_t cap, int fd, enum what w, char **envp, int max)
{
    snprintf(var, cap, "DIFF_FD_HELPER=%s %d", helper_action(w), fd);
    int n = 0;
    for (char **e = environ; *e && n < max - 2; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) != 0 && strncmp(*e, "DIFF_FD_HELPER=", 15) != 0)
            envp[n++] = *e;
    envp[n++] = var;
    envp[n] = NULL;
    return envp;
}

/* ------------------------------------------------------------ the ways */

static char clone_stack[1 << 16] __attribute__((aligned(16)));
struct clone_arg { int fd; enum what w; };

static int clone_child(void *p)
{
    struct clone_arg *a = p;
    _exit(change(a->fd, a->w) == 0 ? 0 : 1);
}

/* A process forked before the socket existed, which takes a descriptor
 * sent with SCM_RIGHTS over ctl, changes it and answers one byte. */
static pid_t scm_peer(int ctl[2], enum what w)
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, ctl) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        char b;
        struct iovec iov = { &b, 1 };
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
                            .msg_control = u.buf, .msg_controllen = sizeof u.buf };
        if (recvmsg(ctl[1], &m, 0) != 1 || !CMSG_FIRSTHDR(&m))
            _exit(98);
        int fd;
        memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
        int r = change(fd, w);
        syscall(SYS_write, ctl[1], "a", 1);
        _exit(r == 0 ? 0 : 1);
    }
    return pid;
}

static void scm_send(int ctl, int fd)
{
    char b = 'f';
    struct iovec iov = { &b, 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    CALL("sendmsg(SCM_RIGHTS)", sendmsg(ctl, &m, 0));
}

enum way {
    W_SAME, W_FIONBIO, W_DUP, W_DUP2, W_DUP3, W_DUPFD, W_SYSCALL, W_SYSCALL_DUP,
    W_FORK, W_VFORK, W_CLONE, W_EXEC, W_SPAWN, W_SYSTEM, W_POPEN, W_SCM,
};

/* Change fd's description the way asked. ctl/peer: the SCM_RIGHTS
 * peer made before the socket (W_SCM only). */
static void change_by(int fd, enum what w, enum way way, int ctl[2], pid_t peer)
{
    char var[64], *envp[256];
    int d = -1;
    switch (way) {
    case W_SAME:
        CALL("change", change(fd, w));
        break;
    case W_FIONBIO: {
        int on = w == SET_NB;
        CALL("ioctl(FIONBIO)", ioctl(fd, FIONBIO, &on));
        break;
    }
    case W_DUP:
        d = dup(fd);
        break;
    case W_DUP2:
        d = dup2(fd, 60);
        break;
    case W_DUP3:
        d = dup3(fd, 61, O_CLOEXEC);
        break;
    case W_DUPFD:
        d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        break;
    case W_SYSCALL:
        CALL("syscall change", change_raw(fd, w));
        break;
    case W_SYSCALL_DUP:
        d = (int)syscall(SYS_dup, fd);
        break;
    case W_FORK: {
        pid_t pid = fork();
        if (pid == 0)
            _exit(change(fd, w) == 0 ? 0 : 1);
        print_status("forked child", pid);
        break;
    }
    case W_VFORK: {
        pid_t pid = vfork();
        if (pid == 0)
            _exit(change(fd, w) == 0 ? 0 : 1);
        print_status("vforked child", pid);
        break;
    }
    case W_CLONE: {
        struct clone_arg a = { fd, w };
        pid_t pid = clone(clone_child, clone_stack + sizeof clone_stack, SIGCHLD, &a);
        print_status("cloned child", pid);
        break;
    }
    case W_EXEC: {
        char *argv[] = { "diffcases-helper", NULL };
        char **env = helper_env(var, sizeof var, fd, w, envp, 256);
        pid_t pid = fork();
        if (pid == 0) {
            execve("/proc/self/exe", argv, env);
            _exit(127);
        }
        print_status("exec'd helper", pid);
        break;
    }
    case W_SPAWN: {
        char *argv[] = { "diffcases-helper", NULL };
        pid_t pid = -1;
        int e = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv,
                            helper_env(var, sizeof var, fd, w, envp, 256));
        if (e)
            diff_out("posix_spawn: %s", diff_errname(e));
        print_status("spawned helper", e ? -1 : pid);
        break;
    }
    case W_SYSTEM:
    case W_POPEN: {
        char self[4096], cmd[4300];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        self[n > 0 ? n : 0] = 0;
        snprintf(cmd, sizeof cmd, "DIFF_FD_HELPER='%s %d' LD_PRELOAD= exec '%s'",
                 helper_action(w), fd, self);
        if (way == W_SYSTEM) {
            int st = system(cmd);
            diff_out("system: exit=%d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        } else {
            FILE *f = popen(cmd, "r");
            int st = f ? pclose(f) : -1;
            diff_out("popen: exit=%d", st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
        break;
    }
    case W_SCM: {
        scm_send(ctl[0], fd);
        char b;
        WAITED("peer's answer", read(ctl[0], &b, 1));
        print_status("peer", peer);
        close(ctl[0]);
        close(ctl[1]);
        break;
    }
    }
    if (d >= 0) {
        CALL("change through the dup", change(d, w));
        close(d);
    } else if (way == W_DUP || way == W_DUP2 || way == W_DUP3 || way == W_DUPFD ||
               way == W_SYSCALL_DUP) {
        diff_out("dup failed %s", diff_errname(errno));
    }
}

/* ------------------------------------------------------------- learning */

static void *write_later(void *arg)
{
    diff_raw_sleep_ms(30);
    write(*(int *)arg, "x", 1);
    return NULL;
}

/* A read that has to wait: the shim reads the flags and may keep them. */
static void learn_blocking(int sv[2])
{
    pthread_t t = diff_spawn(write_later, &sv[1]);
    char c;
    WAITED("learning read (waits)", recv(sv[0], &c, 1, 0));
    pthread_join(t, NULL);
}

/* ------------------------------------------------------------ observing */

struct watchdog { int fd; _Atomic bool done; };

/* Writes one byte after 2 s unless told to stop: a read that should have
 * said EAGAIN and waited instead ends with it ("ret=1"). */
static void *watchdog_run(void *arg)
{
    struct watchdog *w = arg;
    for (int k = 0; k < 200 && !atomic_load(&w->done); k++)
        usleep(10000);
    if (!atomic_load(&w->done))
        write(w->fd, "w", 1);
    return NULL;
}

/* After the socket became non-blocking: EAGAIN at once. */
static void expect_eagain(int sv[2], bool timed)
{
    struct watchdog w = { .fd = sv[1] };
    pthread_t t = diff_spawn(watchdog_run, &w);
    char c;
    int64_t t0 = diff_now();
    CALL("recv", recv(sv[0], &c, 1, 0));
    if (timed)
        DIFF_TOOK("recv", t0, 50, 1500);
    atomic_store(&w.done, true);
    pthread_join(t, NULL);
}

/* After the socket became blocking: the read waits for the byte. */
static void expect_wait(int sv[2])
{
    pthread_t t = diff_spawn(write_later, &sv[1]);
    char c;
    WAITED("recv (waits)", recv(sv[0], &c, 1, 0));
    pthread_join(t, NULL);
}

static void *nothing(void *arg)
{
    return arg;
}

/* Under the shim main runs as a green thread once a thread was made:
 * before that its reads pass straight through and learn nothing. */
static void first_a_thread(void)
{
    pthread_join(diff_spawn(nothing, NULL), NULL);
}

/* One case: learn, change the way asked, observe. */
static void run(enum what w, enum way way)
{
    first_a_thread();
    int ctl[2] = { -1, -1 };
    pid_t peer = way == W_SCM ? scm_peer(ctl, w) : -1;
    int sv[2];
    int type = SOCK_STREAM | (w == CLEAR_NB ? SOCK_NONBLOCK : 0);
    if (socketpair(AF_UNIX, type, 0, sv) != 0) {
        diff_out("socketpair failed %s", diff_errname(errno));
        return;
    }
    if (w == CLEAR_NB) {
        char c;
        CALL("learning recv", recv(sv[0], &c, 1, 0));
    } else {
        learn_blocking(sv);
    }
    change_by(sv[0], w, way, ctl, peer);
    if (w == CLEAR_NB)
        expect_wait(sv);
    else
        expect_eagain(sv, w == SET_TIMEO);
    close(sv[0]);
    close(sv[1]);
}

#define FLAGCACHE_CASES(way, name)                                                  \
    DIFF_CASE(flagcache, o_nonblock_set_##name##_after_a_wait_makes_recv_eagain)    \
    {                                                                               \
        run(SET_NB, way);                                                           \
    }                                                                               \
    DIFF_CASE(flagcache, o_nonblock_cleared_##name##_after_eagain_makes_recv_wait)  \
    {                                                                               \
        run(CLEAR_NB, way);                                                         \
    }

#define FLAGCACHE_TIMEO_CASE(way, name)                                             \
    DIFF_CASE(flagcache, so_rcvtimeo_set_##name##_after_a_wait_makes_recv_time_out) \
    {                                                                               \
        run(SET_TIMEO, way);                                                        \
    }

FLAGCACHE_CASES(W_SAME, on_the_socket)
FLAGCACHE_TIMEO_CASE(W_SAME, on_the_socket)
FLAGCACHE_CASES(W_FIONBIO, with_fionbio)
FLAGCACHE_CASES(W_DUP, through_a_dup)
FLAGCACHE_TIMEO_CASE(W_DUP, through_a_dup)
FLAGCACHE_CASES(W_DUP2, through_a_dup2_copy)
FLAGCACHE_TIMEO_CASE(W_DUP2, through_a_dup2_copy)
FLAGCACHE_CASES(W_DUP3, through_a_dup3_copy)
FLAGCACHE_CASES(W_DUPFD, through_an_f_dupfd_copy)
FLAGCACHE_CASES(W_SYSCALL, with_syscall)
FLAGCACHE_TIMEO_CASE(W_SYSCALL, with_syscall)
FLAGCACHE_CASES(W_SYSCALL_DUP, through_a_syscall_dup)
FLAGCACHE_CASES(W_FORK, by_a_forked_child)
FLAGCACHE_TIMEO_CASE(W_FORK, by_a_forked_child)
FLAGCACHE_CASES(W_VFORK, by_a_vforked_child)
FLAGCACHE_CASES(W_CLONE, by_a_cloned_child)
FLAGCACHE_TIMEO_CASE(W_CLONE, by_a_cloned_child)
FLAGCACHE_CASES(W_EXEC, by_an_exec_d_program)
FLAGCACHE_TIMEO_CASE(W_EXEC, by_an_exec_d_program)
FLAGCACHE_CASES(W_SPAWN, by_a_posix_spawned_program)
FLAGCACHE_TIMEO_CASE(W_SPAWN, by_a_posix_spawned_program)
FLAGCACHE_CASES(W_SYSTEM, by_a_system_command)
FLAGCACHE_CASES(W_POPEN, by_a_popen_command)
FLAGCACHE_CASES(W_SCM, by_a_process_it_was_sent_to)
FLAGCACHE_TIMEO_CASE(W_SCM, by_a_process_it_was_sent_to)

/* ------------------------------------- the number made anew, unseen */

/* A raw socketpair (no hook sees it) of the given type: its first end
 * takes the lowest free number. */
static int raw_pair(int type, int sv[2])
{
    return (int)syscall(SYS_socketpair, AF_UNIX, type, 0, sv);
}

enum unseen_close { U_FCLOSE, U_CLOSE_RANGE };

/* A socket learned as blocking (or non-blocking), closed where no close
 * hook sees it, and its number taken by a raw socketpair of the other
 * kind. */
static void reuse(enum unseen_close how, bool learned_nb)
{
    first_a_thread();
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | (learned_nb ? SOCK_NONBLOCK : 0), 0, sv);
    int old = sv[0];
    if (learned_nb) {
        char c;
        CALL("learning recv", recv(sv[0], &c, 1, 0));
    } else {
        learn_blocking(sv);
    }
    if (how == U_FCLOSE) {
        FILE *f = fdopen(sv[0], "r+");
        CALL("fclose", f ? fclose(f) : -1);
    } else {
        CALL("raw close_range", syscall(SYS_close_range, sv[0], sv[0], 0));
    }
    close(sv[1]);
    int nv[2];
    CALL("raw socketpair", raw_pair(SOCK_STREAM | (learned_nb ? 0 : SOCK_NONBLOCK), nv));
    diff_out("same number: %s", nv[0] == old ? "yes" : "no");
    if (learned_nb)
        expect_wait(nv);
    else
        expect_eagain(nv, false);
    close(nv[0]);
    close(nv[1]);
}

DIFF_CASE(flagcache, number_closed_by_fclose_and_made_non_blocking_unseen_says_eagain)
{
    reuse(U_FCLOSE, false);
}

DIFF_CASE(flagcache, number_closed_by_fclose_and_made_blocking_unseen_waits)
{
    reuse(U_FCLOSE, true);
}

DIFF_CASE(flagcache, number_closed_by_raw_close_range_and_made_non_blocking_unseen_says_eagain)
{
    reuse(U_CLOSE_RANGE, false);
}

DIFF_CASE(flagcache, number_closed_by_raw_close_range_and_made_blocking_unseen_waits)
{
    reuse(U_CLOSE_RANGE, true);
}

/* ------------------------------------------ taken by another process */

/* A process forked before the socket existed takes it with pidfd_getfd
 * (it may: same user, ptrace rights over its parent) and makes it
 * non-blocking. No hook of this process sees that: listed in known.txt. */
DIFF_CASE(flagcache, o_nonblock_set_by_a_process_that_took_the_socket_with_pidfd_getfd)
{
    first_a_thread();
    int ctl[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, ctl);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        int fd;
        if (syscall(SYS_read, ctl[1], &fd, sizeof fd) != sizeof fd)
            _exit(98);
        int pfd = (int)syscall(SYS_pidfd_open, parent, 0);
        int mine = pfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
        int r = mine < 0 ? -1 : change(mine, SET_NB);
        syscall(SYS_write, ctl[1], "a", 1);
        _exit(mine < 0 ? 2 : r == 0 ? 0 : 1);
    }
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    learn_blocking(sv);
    syscall(SYS_write, ctl[0], &sv[0], sizeof sv[0]);
    char b;
    WAITED("taker's answer", read(ctl[0], &b, 1));
    print_status("taker", pid);
    expect_eagain(sv, false);
    close(ctl[0]);
    close(ctl[1]);
    close(sv[0]);
    close(sv[1]);
}

/* ----------------------------------------------------------- park first
 *
 * Under the shim a plain read of an own blocking stream socket whose last
 * read came back short parks before trying (libgreen/fdstate.c). These
 * cases make that read find data that was already there, or a timeout. */

/* A read that waits, then one that comes back short: the next plain read
 * of sv[0] parks first under the shim. */
static void drain_short(int sv[2])
{
    learn_blocking(sv);
    syscall(SYS_write, sv[1], "ab", 2);
    char buf[16];
    CALL("short read", read(sv[0], buf, sizeof buf));
}

static void on_usr1(int sig)
{
    (void)sig;
}

struct kicker { pthread_t target; };

static void *kick(void *arg)
{
    struct kicker *k = arg;
    pthread_kill(k->target, SIGUSR1);
    return NULL;
}

DIFF_CASE(flagcache, read_with_data_there_returns_it_when_a_signal_comes_meanwhile)
{
    first_a_thread();
    struct sigaction sa = { .sa_handler = on_usr1 }, old;
    sigaction(SIGUSR1, &sa, &old);         /* no SA_RESTART */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    drain_short(sv);
    for (int round = 0; round < 20; round++) {
        syscall(SYS_write, sv[1], "x", 1); /* there before the read starts */
        struct kicker k = { pthread_self() };
        pthread_t t = diff_spawn(kick, &k);
        char buf[16];
        errno = 0;
        ssize_t r = read(sv[0], buf, sizeof buf);
        int e = errno;
        pthread_join(t, NULL);
        if (r != 1) {
            diff_out("round %d: read ret=%zd errno=%s", round, r, diff_errname(e));
            break;
        }
    }
    diff_out("20 rounds done");
    sigaction(SIGUSR1, &old, NULL);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(flagcache, read_with_data_there_and_an_at_once_timeout_returns_it)
{
    first_a_thread();
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    drain_short(sv);
    struct timeval now = { -1, 0 };        /* Linux: time out at once */
    CALL("SO_RCVTIMEO at once", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &now, sizeof now));
    char buf[16];
    for (int k = 0; k < 3; k++) {
        int64_t t0 = diff_now();
        CALL("read without", read(sv[0], buf, sizeof buf));
        DIFF_TOOK("read without", t0, -1, 500);
        syscall(SYS_write, sv[1], "x", 1);
        CALL("read with data", read(sv[0], buf, sizeof buf));
    }
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(flagcache, read_after_a_short_read_waits_for_the_next_bytes)
{
    first_a_thread();
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    drain_short(sv);
    pthread_t t = diff_spawn(write_later, &sv[1]);
    char buf[16];
    WAITED("read (waits)", read(sv[0], buf, sizeof buf));
    pthread_join(t, NULL);
    shutdown(sv[1], SHUT_WR);
    CALL("read at eof", read(sv[0], buf, sizeof buf));
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(flagcache, short_datagrams_do_not_delay_the_next_one)
{
    first_a_thread();
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    learn_blocking(sv);
    char buf[16];
    for (int k = 0; k < 3; k++)
        syscall(SYS_write, sv[1], "d", 1);
    for (int k = 0; k < 3; k++)
        CALL("datagram", recv(sv[0], buf, sizeof buf, 0));
    close(sv[0]);
    close(sv[1]);
}

/* -------------------------------------------------- accepted sockets
 *
 * An accepted socket's flags are known without asking the kernel under
 * the shim: O_NONBLOCK from accept4's flags, and the listener's timeouts,
 * which Linux copies to it, when the flag cache knows them. */

/* A thread that connects to port after 50 ms, and again once it reads a
 * byte from go, and keeps both connections open (silent) until it reads
 * another. A thread, not a process: a fork would make the listener
 * shared (and the shim would then ask the kernel). Linux gives a
 * connection its listener's timeouts when the handshake completes,
 * before any accept. */
struct conn_arg { int port, go; };

static void *connector(void *p)
{
    struct conn_arg *c = p;
    diff_raw_sleep_ms(50);
    int s1 = diff_tcp_connect(c->port);
    char b;
    if (read(c->go, &b, 1) != 1)
        return NULL;
    int s2 = diff_tcp_connect(c->port);
    if (read(c->go, &b, 1) != 1)
        return NULL;
    close(s1);
    close(s2);
    return NULL;
}

static void accepted_after_listener_change(bool set_timeout)
{
    first_a_thread();
    int port, l = diff_tcp_listener(&port), go[2];
    if (l < 0 || pipe(go) != 0)
        return;
    struct conn_arg ca = { port, go[0] };
    pthread_t t = diff_spawn(connector, &ca);
    WAITED("accept (waits)", accept(l, NULL, NULL) >= 0);
    if (set_timeout) {
        struct timeval tv = { 0, 100000 };
        CALL("listener SO_RCVTIMEO", setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    }
    syscall(SYS_write, go[1], "g", 1);
    int c = accept(l, NULL, NULL);
    diff_out("second accept: %s", c >= 0 ? "ok" : diff_errname(errno));
    char b;
    int64_t t0 = diff_now();
    if (set_timeout) {
        CALL("read of the accepted socket", read(c, &b, 1));
        DIFF_TOOK("read", t0, 50, 1500);
    } else {
        int fl = fcntl(c, F_GETFL);
        diff_out("accepted socket nonblock=%d", fl >= 0 && (fl & O_NONBLOCK));
    }
    syscall(SYS_write, go[1], "e", 1);
    pthread_join(t, NULL);
    close(go[0]);
    close(go[1]);
    close(c);
    close(l);
}

DIFF_CASE(flagcache, accepted_socket_inherits_a_timeout_set_on_the_listener_after_a_wait)
{
    accepted_after_listener_change(true);
}

DIFF_CASE(flagcache, accepted_socket_is_blocking_after_the_listener_waited)
{
    accepted_after_listener_change(false);
}

/*
 * cases_fd.c - differential cases of the fd family (see diff.h): which
 * numbers the program's descriptors get (lowest free, as POSIX says: the
 * shim's own descriptors must not take them), dup/dup2/dup3/F_DUPFD and
 * FD_CLOEXEC, close_range/closefrom, and the state that belongs to the
 * open file description rather than the number: O_NONBLOCK and
 * SO_RCVTIMEO/SO_SNDTIMEO set through a dup, by a forked child or by an
 * exec'd program are seen through every descriptor of the description;
 * no flag the shim needed for accept, connect or sendfile is left for
 * another program to find (exec'd and forked children, SCM_RIGHTS).
 *
 * Exec'd children run this same binary: a constructor below sees
 * DIFF_FD_HELPER="action fd" in the environment, does one thing to the
 * inherited descriptor and exits with a small code the parent prints.
 * Children are exec'd without LD_PRELOAD (a plain program, as a hot
 * upgrade to a binary not run under the shim) or with the environment
 * inherited (then the child runs under the shim too).
 */
#include "diff.h"
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------ helpers */

static int count_proc_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;                  /* the directory's own descriptor */
}

/* The exec'd side: one action on an inherited descriptor, then exit. */
__attribute__((constructor)) static void fd_helper(void)
{
    const char *h = getenv("DIFF_FD_HELPER");
    if (!h)
        return;
    char act[32];
    int fd;
    if (sscanf(h, "%31s %d", act, &fd) != 2)
        _exit(99);
    if (strcmp(act, "accept") == 0) {
        int c = accept(fd, NULL, NULL);
        _exit(c >= 0 ? 0 : 100 + errno);
    }
    if (strcmp(act, "setnb") == 0)
        _exit(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0 ? 0 : 1);
    if (strcmp(act, "clearnb") == 0)
        _exit(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0 ? 0 : 1);
    if (strcmp(act, "nb") == 0) {
        int fl = fcntl(fd, F_GETFL);
        _exit(fl < 0 ? 2 : (fl & O_NONBLOCK) ? 1 : 0);
    }
    if (strcmp(act, "settimeo") == 0) {
        struct timeval tv = { 0, 100000 };
        _exit(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 ? 0 : 1);
    }
    if (strcmp(act, "countfds") == 0)
        _exit(count_proc_fds());
    if (strcmp(act, "recvaccept") == 0) {
        char b;
        struct iovec iov = { &b, 1 };
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
                            .msg_control = u.buf, .msg_controllen = sizeof u.buf };
        if (recvmsg(fd, &m, 0) != 1)
            _exit(98);
        int l;
        memcpy(&l, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof l);
        int fl = fcntl(l, F_GETFL);
        if (fl & O_NONBLOCK)
            _exit(97);             /* the flag would make accept fail */
        int c = accept(l, NULL, NULL);
        _exit(c >= 0 ? 0 : 100 + errno);
    }
    _exit(99);
}

/* fork + exec this binary as a helper doing act on fd. */
static pid_t spawn_helper(const char *act, int fd, bool keep_preload)
{
    char var[64];
    snprintf(var, sizeof var, "DIFF_FD_HELPER=%s %d", act, fd);
    char *envp[256];
    int n = 0;
    for (char **e = environ; *e && n < 250; e++)
        if (keep_preload || strncmp(*e, "LD_PRELOAD=", 11) != 0)
            envp[n++] = *e;
    envp[n++] = var;
    envp[n] = NULL;
    char *argv[] = { "diffcases-helper", NULL };
    pid_t pid = fork();
    if (pid == 0) {
        execve("/proc/self/exe", argv, envp);
        _exit(127);
    }
    return pid;
}

static void print_exit(const char *label, pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        diff_out("%s: waitpid failed %s", label, diff_errname(errno));
    else if (WIFEXITED(st))
        diff_out("%s: exit=%d", label, WEXITSTATUS(st));
    else
        diff_out("%s: signal", label);
}

/* A child process that connects to port after ms milliseconds. */
static pid_t connect_later(int port, int ms)
{
    pid_t pid = fork();
    if (pid == 0) {
        diff_raw_sleep_ms(ms);
        int s = diff_tcp_connect(port);
        diff_raw_sleep_ms(50);
        _exit(s >= 0 ? 0 : 1);
    }
    return pid;
}

static void reap(pid_t pid)
{
    int st;
    waitpid(pid, &st, 0);
}

static int pair(int sv[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
}

static void print_fd(const char *label, int fd)
{
    diff_out("%s: fd=%d", label, fd);
}

static void print_cloexec(const char *label, int fd)
{
    int r = fcntl(fd, F_GETFD);
    diff_out("%s: cloexec=%s", label, r < 0 ? diff_errname(errno) : (r & FD_CLOEXEC) ? "1" : "0");
}

static void set_rcvtimeo_ms(int fd, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    CALL("setsockopt(SO_RCVTIMEO)", setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
}

static void *nothing(void *arg)
{
    return arg;
}

/* ------------------------------------------------- descriptor numbers */

DIFF_CASE(fd, first_open_returns_the_lowest_free_number)
{
    int fd = open("/dev/null", O_RDONLY);
    print_fd("open", fd);
    close(fd);
}

DIFF_CASE(fd, first_socket_after_a_pthread_was_created_is_three)
{
    pthread_t t;
    pthread_create(&t, NULL, nothing, NULL);
    pthread_join(t, NULL);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    print_fd("socket", s);
    close(s);
}

static void *write_later(void *arg)
{
    usleep(30000);
    write(*(int *)arg, "x", 1);
    return NULL;
}

DIFF_CASE(fd, first_open_after_a_blocking_read_parked_is_three)
{
    int sv[2];
    pair(sv);
    pthread_t t;
    pthread_create(&t, NULL, write_later, &sv[1]);
    char c;
    WAITED("read", read(sv[0], &c, 1));
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
    int fd = open("/dev/null", O_RDONLY);
    print_fd("open", fd);
    close(fd);
}

DIFF_CASE(fd, first_open_after_a_sleep_is_three)
{
    usleep(1000);
    int fd = open("/dev/null", O_RDONLY);
    print_fd("open", fd);
    close(fd);
}

DIFF_CASE(fd, pipe_gets_the_two_lowest_numbers)
{
    int p[2];
    CALL("pipe", pipe(p));
    diff_out("pipe: %d %d", p[0], p[1]);
    close(p[0]);
    close(p[1]);
}

DIFF_CASE(fd, socketpair_gets_the_two_lowest_numbers)
{
    int sv[2];
    CALL("socketpair", pair(sv));
    diff_out("socketpair: %d %d", sv[0], sv[1]);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, program_epoll_fd_gets_the_lowest_number)
{
    int e = epoll_create1(EPOLL_CLOEXEC);
    print_fd("epoll_create1", e);
    close(e);
}

DIFF_CASE(fd, program_eventfd_gets_the_lowest_number)
{
    int e = eventfd(0, 0);
    print_fd("eventfd", e);
    close(e);
}

DIFF_CASE(fd, program_timerfd_gets_the_lowest_number)
{
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    print_fd("timerfd_create", t);
    close(t);
}

DIFF_CASE(fd, closed_number_in_the_middle_is_reused_first)
{
    int a = open("/dev/null", O_RDONLY), b = open("/dev/null", O_RDONLY);
    int c = open("/dev/null", O_RDONLY);
    close(b);
    int d = open("/dev/null", O_RDONLY);
    diff_out("reused: %d", d == b);
    print_fd("d", d);
    close(a);
    close(c);
    close(d);
}

/* Open descriptors below 100, as the program's fcntl sees them (libgreen's
 * own say EBADF to it; /proc/self/fd, count_proc_fds, lists them too, and
 * a hub started meanwhile adds three). */
static int count_low_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 100; fd++)
        n += fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
    return n;
}

struct read_job {
    int fd;
    ssize_t r;
    char c;
};

static void *read_one(void *arg)
{
    struct read_job *j = arg;
    j->r = read(j->fd, &j->c, 1);
    return NULL;
}

/* A waited-on number whose file lives on through a dup is closed, reused
 * for a new file and waited on again; then the old file gets data. A
 * registration of the old file under that number stays in any epoll set
 * that watched it (the kernel drops it only with the file), and its event
 * must neither wake the new file's reader nor cost the program a number
 * (libev remakes its set then: the new set must not take the program's
 * lowest free number, and the old one must not stay open). */
DIFF_CASE(fd, a_number_reused_while_its_old_file_lives_on_keeps_numbers_lowest)
{
    int s1[2], s2[2];
    pair(s1);
    int a = s1[0], b = dup(a);
    struct read_job j = { .fd = a };
    pthread_t t;
    pthread_create(&t, NULL, read_one, &j);
    usleep(20000);
    write(s1[1], "x", 1);
    pthread_join(t, NULL);
    diff_out("first read: r=%zd c=%c", j.r, j.c);
    int n0 = count_low_fds();
    close(a);
    pair(s2);
    int na = s2[0] == a ? s2[0] : s2[1], npeer = na == s2[0] ? s2[1] : s2[0];
    diff_out("number reused: %d", na == a);
    j = (struct read_job){ .fd = na };
    pthread_create(&t, NULL, read_one, &j);
    usleep(20000);
    write(s1[1], "y", 1);          /* the old file, open as b */
    usleep(20000);
    write(npeer, "z", 1);
    pthread_join(t, NULL);
    diff_out("second read: r=%zd c=%c", j.r, j.c);
    int fd = open("/dev/null", O_RDONLY);
    print_fd("open after", fd);
    diff_out("descriptors opened: %d", count_low_fds() - n0);
    char c;
    diff_out("old file still has: %zd", read(b, &c, 1));
    close(fd);
    close(na);
    close(npeer);
    close(b);
    close(s1[1]);
}

DIFF_CASE(fd, ten_opens_get_consecutive_numbers_from_three)
{
    int fds[10], ok = 1;
    for (int k = 0; k < 10; k++) {
        fds[k] = open("/dev/null", O_RDONLY);
        ok &= fds[k] == 3 + k;
    }
    diff_out("consecutive from 3: %d", ok);
    for (int k = 0; k < 10; k++)
        close(fds[k]);
}

static void dup2_to(int target)
{
    int fd = open("/dev/null", O_RDONLY);
    int r = dup2(fd, target);
    diff_out("dup2: %d", r);
    print_cloexec("target", target);
    if (fd != target)
        close(fd);
    close(target);
}

DIFF_CASE(fd, dup2_to_three_works)
{
    dup2_to(3);
}

DIFF_CASE(fd, dup2_to_four_works)
{
    dup2_to(4);
}

DIFF_CASE(fd, dup2_to_five_works)
{
    dup2_to(5);
}

DIFF_CASE(fd, dup2_to_three_after_a_pthread_was_created_works)
{
    pthread_t t;
    pthread_create(&t, NULL, nothing, NULL);
    pthread_join(t, NULL);
    dup2_to(3);
    usleep(1000);                  /* the hub still works */
    diff_out("slept");
}

DIFF_CASE(fd, dup2_to_the_highest_allowed_number_works)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int top = rl.rlim_cur > 4096 ? 4095 : (int)rl.rlim_cur - 1;
    int fd = open("/dev/null", O_RDONLY);
    CALL("dup2(top)", dup2(fd, top) == top);
    close(top);
    close(fd);
}

DIFF_CASE(fd, dup2_to_the_limit_is_ebadf)
{
    struct rlimit rl = { 64, 64 };
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    setrlimit(RLIMIT_NOFILE, &rl);
    int fd = open("/dev/null", O_RDONLY);
    CALL("dup2(63)", dup2(fd, 63));
    CALL("dup2(64)", dup2(fd, 64));
    close(63);
    close(fd);
}

DIFF_CASE(fd, lowered_fd_limit_still_gives_three)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 16;
    CALL("setrlimit", setrlimit(RLIMIT_NOFILE, &rl));
    int fd = open("/dev/null", O_RDONLY);
    print_fd("open", fd);
    usleep(1000);
    diff_out("slept");
    close(fd);
}

DIFF_CASE(fd, opens_until_emfile_under_a_low_limit_count_the_same)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 32;
    setrlimit(RLIMIT_NOFILE, &rl);
    int n = 0, fd, last = -1;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) {
        n++;
        last = fd;
    }
    diff_out("opened %d, last %d, errno %s", n, last, diff_errname(errno));
    for (int k = 3; k <= last; k++)
        close(k);
}

DIFF_CASE(fd, dup2_onto_itself_returns_it)
{
    int fd = open("/dev/null", O_RDONLY);
    CALL("dup2(fd, fd)", dup2(fd, fd) == fd);
    CALL("dup3(fd, fd)", dup3(fd, fd, 0));
    close(fd);
}

DIFF_CASE(fd, dup2_of_a_closed_fd_is_ebadf)
{
    CALL("dup2(77, 3)", dup2(77, 3));
    CALL("dup2(0, -1)", dup2(0, -1));
    CALL("dup(77)", dup(77));
}

DIFF_CASE(fd, dup_gets_the_lowest_number_and_clears_cloexec)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int d = dup(fd);
    print_fd("dup", d);
    print_cloexec("orig", fd);
    print_cloexec("dup", d);
    close(fd);
    close(d);
}

DIFF_CASE(fd, dup3_with_o_cloexec_sets_it)
{
    int fd = open("/dev/null", O_RDONLY);
    CALL("dup3", dup3(fd, 7, O_CLOEXEC));
    print_cloexec("seven", 7);
    CALL("dup3(bad flag)", dup3(fd, 8, O_NONBLOCK));
    close(7);
    close(fd);
}

DIFF_CASE(fd, f_dupfd_gives_the_lowest_number_at_or_above_its_argument)
{
    int fd = open("/dev/null", O_RDONLY);
    int a = fcntl(fd, F_DUPFD, 0);
    int b = fcntl(fd, F_DUPFD, 10);
    int c = fcntl(fd, F_DUPFD, 10);
    diff_out("F_DUPFD: %d %d %d", a, b, c);
    print_cloexec("b", b);
    close(a);
    close(b);
    close(c);
    close(fd);
}

DIFF_CASE(fd, f_dupfd_cloexec_sets_cloexec)
{
    int fd = open("/dev/null", O_RDONLY);
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 20);
    print_fd("F_DUPFD_CLOEXEC", d);
    print_cloexec("dup", d);
    print_cloexec("orig", fd);
    close(d);
    close(fd);
}

DIFF_CASE(fd, f_dupfd_out_of_range_is_einval)
{
    int fd = open("/dev/null", O_RDONLY);
    CALL("F_DUPFD(-1)", fcntl(fd, F_DUPFD, -1));
    CALL("F_DUPFD(INT_MAX)", fcntl(fd, F_DUPFD, 0x7fffffff));
    CALL("F_DUPFD on closed", fcntl(77, F_DUPFD, 0));
    close(fd);
}

DIFF_CASE(fd, fd_cloexec_survives_f_setfl)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CALL("F_SETFL", fcntl(fd, F_SETFL, O_NONBLOCK));
    print_cloexec("after F_SETFL", fd);
    CALL("F_SETFD 0", fcntl(fd, F_SETFD, 0));
    print_cloexec("after F_SETFD", fd);
    close(fd);
}

DIFF_CASE(fd, socket_cloexec_shows_in_f_getfd)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    print_cloexec("SOCK_CLOEXEC", s);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    print_cloexec("plain", t);
    close(s);
    close(t);
}

DIFF_CASE(fd, close_range_from_three_then_open_gives_three)
{
    open("/dev/null", O_RDONLY);
    open("/dev/null", O_RDONLY);
    CALL("close_range", close_range(3, ~0u, 0));
    int fd = open("/dev/null", O_RDONLY);
    print_fd("open", fd);
    usleep(1000);
    diff_out("slept");
    close(fd);
}

DIFF_CASE(fd, closefrom_three_then_open_gives_three_and_threads_still_run)
{
    open("/dev/null", O_RDONLY);
    closefrom(3);
    int fd = open("/dev/null", O_RDONLY);
    print_fd("open", fd);
    pthread_t t;
    CALL("pthread_create", pthread_create(&t, NULL, nothing, NULL));
    pthread_join(t, NULL);
    usleep(1000);
    diff_out("slept");
    close(fd);
}

DIFF_CASE(fd, close_range_cloexec_marks_but_keeps)
{
    int fd = open("/dev/null", O_RDONLY);
    CALL("close_range(CLOEXEC)", close_range(3, ~0u, CLOSE_RANGE_CLOEXEC));
    print_cloexec("fd", fd);
    close(fd);
}

DIFF_CASE(fd, close_range_with_first_above_last_is_einval)
{
    CALL("close_range(5, 4)", close_range(5, 4, 0));
}

DIFF_CASE(fd, closing_every_number_closes_only_the_programs_own)
{
    int a = open("/dev/null", O_RDONLY), b = socket(AF_INET, SOCK_STREAM, 0);
    (void)a;
    (void)b;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int lim = rl.rlim_cur > 4096 ? 4096 : (int)rl.rlim_cur, closed = 0;
    for (int k = 3; k < lim; k++)
        closed += close(k) == 0;
    diff_out("closed %d", closed);
    usleep(1000);
    diff_out("slept");
}

DIFF_CASE(fd, probing_every_number_with_fcntl_finds_only_the_programs_own)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int lim = rl.rlim_cur > 4096 ? 4096 : (int)rl.rlim_cur, open_ = 0;
    for (int k = 0; k < lim; k++)
        open_ += fcntl(k, F_GETFD) >= 0;
    diff_out("open: %d", open_);
}

/* flock and lockf on a number that is not open say EBADF; libgreen's own
 * descriptors (the hub's epoll, eventfd, timerfd) are not open for the
 * program. */
DIFF_CASE(fd, flock_and_lockf_on_every_number_find_only_the_programs_own)
{
    int fd = open("/dev/null", O_RDONLY);
    usleep(1000);                  /* the hub and its descriptors exist */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int lim = rl.rlim_cur > 4096 ? 4096 : (int)rl.rlim_cur, fl = 0, lf = 0;
    for (int k = 0; k < lim; k++) {
        if (flock(k, LOCK_SH | LOCK_NB) == 0 || errno != EBADF)
            fl++;
        if (lockf(k, F_TEST, 0) == 0 || errno != EBADF)
            lf++;
    }
    diff_out("flock finds %d, lockf finds %d", fl, lf);
    close(fd);
}

DIFF_CASE(fd, dup2_onto_every_free_number_succeeds)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int lim = rl.rlim_cur > 4096 ? 4096 : (int)rl.rlim_cur, ok = 0, tried = 0;
    int fd = open("/dev/null", O_RDONLY);
    for (int k = fd + 1; k < lim; k++) {
        if (fcntl(k, F_GETFD) >= 0)
            continue;              /* open: not ours to replace */
        tried++;
        if (dup2(fd, k) == k) {
            ok++;
            close(k);
        }
    }
    diff_out("dup2 onto free numbers: %s", ok == tried ? "all" : "some failed");
    close(fd);
}

DIFF_CASE(fd, proc_self_fd_lists_only_the_programs_descriptors)
{
    diff_out("count: %d", count_proc_fds());
}

DIFF_CASE(fd, exec_d_program_inherits_no_extra_descriptor)
{
    usleep(1000);
    pid_t pid = spawn_helper("countfds", 0, false);
    print_exit("helper fd count", pid);
}

/* --------------------------------- O_NONBLOCK belongs to the description */

DIFF_CASE(fd, o_nonblock_set_through_a_dup_shows_on_the_original)
{
    int sv[2];
    pair(sv);
    int d = dup(sv[0]);
    CALL("F_SETFL via dup", fcntl(d, F_SETFL, fcntl(d, F_GETFL) | O_NONBLOCK));
    diff_out("orig F_GETFL nonblock=%d", (fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
    diff_nonblock("orig kernel", sv[0]);
    close(d);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, o_nonblock_set_through_a_dup_makes_recv_on_the_original_eagain)
{
    int sv[2];
    pair(sv);
    char c;
    int d = dup(sv[0]);
    fcntl(d, F_SETFL, fcntl(d, F_GETFL) | O_NONBLOCK);
    int64_t t0 = diff_now();
    CALL("recv orig", recv(sv[0], &c, 1, 0));
    CALL("read orig", read(sv[0], &c, 1));
    DIFF_TOOK("eagain", t0, -1, 500);
    close(d);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, o_nonblock_set_through_a_dup_after_a_wait_makes_the_next_read_eagain)
{
    int sv[2];
    pair(sv);
    char c;
    pthread_t t;
    pthread_create(&t, NULL, write_later, &sv[1]);
    WAITED("read (waits)", read(sv[0], &c, 1));
    pthread_join(t, NULL);
    int d = dup(sv[0]);
    fcntl(d, F_SETFL, O_NONBLOCK);
    CALL("read orig", read(sv[0], &c, 1));
    close(d);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, o_nonblock_cleared_through_a_dup_shows_on_the_original)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    int d = dup(sv[0]);
    CALL("F_SETFL 0 via dup", fcntl(d, F_SETFL, 0));
    diff_out("orig F_GETFL nonblock=%d", (fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
    pthread_t t;
    pthread_create(&t, NULL, write_later, &sv[1]);
    char c;
    int64_t t0 = diff_now();
    WAITED("read orig (waits)", read(sv[0], &c, 1));
    DIFF_TOOK("read", t0, 10, 2000);
    pthread_join(t, NULL);
    close(d);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, fionbio_on_a_dup_makes_read_on_the_original_eagain)
{
    int sv[2];
    pair(sv);
    int d = dup(sv[0]), on = 1;
    CALL("FIONBIO on dup", ioctl(d, FIONBIO, &on));
    char c;
    CALL("read orig", read(sv[0], &c, 1));
    diff_out("orig F_GETFL nonblock=%d", (fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
    close(d);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, fionbio_off_on_a_dup_shows_on_the_original)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    int d = dup(sv[0]), off = 0;
    CALL("FIONBIO off on dup", ioctl(d, FIONBIO, &off));
    diff_out("orig F_GETFL nonblock=%d", (fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
    diff_nonblock("orig kernel", sv[0]);
    close(d);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, fionbio_on_a_pipe_dup_makes_read_on_the_original_eagain)
{
    int p[2];
    pipe(p);
    int d = dup(p[0]), on = 1;
    CALL("FIONBIO on dup", ioctl(d, FIONBIO, &on));
    char c;
    CALL("read orig", read(p[0], &c, 1));
    close(d);
    close(p[0]);
    close(p[1]);
}

DIFF_CASE(fd, o_nonblock_on_a_dup_of_a_pipe_write_end_makes_a_full_write_eagain)
{
    int p[2];
    pipe(p);
    int d = dup(p[1]);
    fcntl(d, F_SETFL, O_NONBLOCK);
    static char big[1 << 17];
    ssize_t r = write(p[1], big, sizeof big);
    diff_out("write orig: %s", r > 0 && r < (ssize_t)sizeof big ? "partial" : r < 0 ? diff_errname(errno) : "all");
    CALL("write again", write(p[1], big, 1));
    close(d);
    close(p[0]);
    close(p[1]);
}

DIFF_CASE(fd, o_nonblock_via_dup2_copy_shows_on_the_original)
{
    int sv[2];
    pair(sv);
    dup2(sv[0], 9);
    fcntl(9, F_SETFL, O_NONBLOCK);
    char c;
    CALL("recv orig", recv(sv[0], &c, 1, 0));
    close(9);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, f_getfl_shows_access_mode_and_flags_through_a_dup)
{
    int fd = open("/dev/null", O_WRONLY | O_APPEND);
    int d = fcntl(fd, F_DUPFD, 0);
    fcntl(d, F_SETFL, O_APPEND | O_NONBLOCK);
    int fl = fcntl(fd, F_GETFL);
    diff_out("orig: accmode=%d append=%d nonblock=%d", fl & O_ACCMODE, !!(fl & O_APPEND),
             !!(fl & O_NONBLOCK));
    close(d);
    close(fd);
}

DIFF_CASE(fd, o_nonblock_set_by_a_forked_child_shows_in_the_parent)
{
    int sv[2];
    pair(sv);
    pid_t pid = fork();
    if (pid == 0) {
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
        _exit(0);
    }
    print_exit("child", pid);
    diff_out("F_GETFL nonblock=%d", (fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
    char c;
    CALL("recv", recv(sv[0], &c, 1, 0));
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, o_nonblock_cleared_by_a_forked_child_makes_the_parent_wait)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    char c;
    CALL("recv before", recv(sv[0], &c, 1, 0));
    int sync[2];
    pipe(sync);
    pid_t pid = fork();
    if (pid == 0) {
        fcntl(sv[0], F_SETFL, 0);
        syscall(SYS_write, sync[1], "s", 1);   /* the flag is cleared */
        diff_raw_sleep_ms(50);
        syscall(SYS_write, sv[1], "x", 1);
        _exit(0);
    }
    /* Raw: the parent must not run anything of the shim while it waits
     * for the child (a slow fork under a sanitizer took over 20 ms). */
    char s;
    syscall(SYS_read, sync[0], &s, 1);
    close(sync[0]);
    close(sync[1]);
    WAITED("recv after (waits)", recv(sv[0], &c, 1, 0));
    print_exit("child", pid);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, o_nonblock_set_by_an_exec_d_program_shows_in_the_parent)
{
    int sv[2];
    pair(sv);
    print_exit("helper", spawn_helper("setnb", sv[0], false));
    diff_out("F_GETFL nonblock=%d", (fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
    char c;
    WAITED("read", read(sv[0], &c, 1));
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, o_nonblock_set_by_an_exec_d_program_under_the_same_environment)
{
    int sv[2];
    pair(sv);
    print_exit("helper", spawn_helper("setnb", sv[0], true));
    char c;
    CALL("recv", recv(sv[0], &c, 1, 0));
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, exec_d_program_sees_the_parents_o_nonblock)
{
    int sv[2];
    pair(sv);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    print_exit("helper nb", spawn_helper("nb", sv[0], false));
    fcntl(sv[0], F_SETFL, 0);
    print_exit("helper nb after clear", spawn_helper("nb", sv[0], false));
    close(sv[0]);
    close(sv[1]);
}

/* -------------------------------- socket timeouts belong to the socket */

DIFF_CASE(fd, so_rcvtimeo_set_through_a_dup_makes_read_on_the_original_time_out)
{
    int sv[2];
    pair(sv);
    int d = dup(sv[0]);
    set_rcvtimeo_ms(d, 100);
    char c;
    int64_t t0 = diff_now();
    CALL("read orig", read(sv[0], &c, 1));
    DIFF_TOOK("read", t0, 50, 2000);
    close(d);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, so_rcvtimeo_set_through_a_dup_makes_recv_on_the_original_time_out)
{
    int sv[2];
    pair(sv);
    int d = fcntl(sv[0], F_DUPFD_CLOEXEC, 0);
    set_rcvtimeo_ms(d, 100);
    char c;
    int64_t t0 = diff_now();
    CALL("recv orig", recv(sv[0], &c, 1, 0));
    DIFF_TOOK("recv", t0, 50, 2000);
    close(d);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, so_rcvtimeo_set_by_a_forked_child_makes_the_parent_time_out)
{
    int sv[2];
    pair(sv);
    pid_t pid = fork();
    if (pid == 0) {
        struct timeval tv = { 0, 100000 };
        setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        _exit(0);
    }
    print_exit("child", pid);
    char c;
    int64_t t0 = diff_now();
    CALL("recv", recv(sv[0], &c, 1, 0));
    DIFF_TOOK("recv", t0, 50, 2000);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, so_rcvtimeo_set_by_an_exec_d_program_makes_the_parent_time_out)
{
    int sv[2];
    pair(sv);
    print_exit("helper", spawn_helper("settimeo", sv[0], false));
    char c;
    int64_t t0 = diff_now();
    WAITED("read", read(sv[0], &c, 1));
    DIFF_TOOK("read", t0, 50, 2000);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, so_rcvtimeo_cleared_through_a_dup_makes_the_original_wait)
{
    int sv[2];
    pair(sv);
    set_rcvtimeo_ms(sv[0], 20);
    char c;
    CALL("recv (times out)", recv(sv[0], &c, 1, 0));
    int d = dup(sv[0]);
    set_rcvtimeo_ms(d, 0);
    pthread_t t;
    pthread_create(&t, NULL, write_later, &sv[1]);
    usleep(1000);
    pthread_t t2;
    pthread_create(&t2, NULL, write_later, &sv[1]);
    int64_t t0 = diff_now();
    WAITED("recv (waits past 20 ms)", recv(sv[0], &c, 1, 0));
    DIFF_TOOK("recv", t0, 15, 2000);
    pthread_join(t, NULL);
    pthread_join(t2, NULL);
    close(d);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, so_sndtimeo_set_through_a_dup_makes_a_full_send_time_out)
{
    int sv[2];
    pair(sv);
    int d = dup(sv[1]);
    struct timeval tv = { 0, 100000 };
    CALL("SO_SNDTIMEO via dup", setsockopt(d, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
    static char big[1 << 16];
    int64_t t0 = diff_now();
    ssize_t r, total = 0;
    while ((r = send(sv[1], big, sizeof big, 0)) > 0)
        total += r;
    diff_out("send until error: %s", diff_errname(errno));
    DIFF_TOOK("send", t0, 50, 3000);
    close(d);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, so_rcvtimeo_reads_back_through_the_original)
{
    int sv[2];
    pair(sv);
    int d = dup(sv[0]);
    set_rcvtimeo_ms(d, 250);
    struct timeval tv = { 0 };
    socklen_t l = sizeof tv;
    CALL("getsockopt orig", getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &l));
    diff_out("timeo %ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    close(d);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, accept_on_a_listener_whose_dup_got_so_rcvtimeo_times_out)
{
    int port;
    int l = diff_tcp_listener(&port);
    int d = dup(l);
    set_rcvtimeo_ms(d, 100);
    int64_t t0 = diff_now();
    CALL("accept orig", accept(l, NULL, NULL));
    DIFF_TOOK("accept", t0, 50, 2000);
    close(d);
    close(l);
}

/* ----------------------------------- accept leaves no flag for others */

DIFF_CASE(fd, accept_on_a_non_listening_socket_is_einval_and_leaves_it_blocking)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CALL("accept", accept(s, NULL, NULL));
    diff_nonblock("after", s);
    diff_out("F_GETFL nonblock=%d", (fcntl(s, F_GETFL) & O_NONBLOCK) != 0);
    close(s);
}

DIFF_CASE(fd, accept_on_a_bound_non_listening_socket_is_einval)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(s, (struct sockaddr *)&a, sizeof a);
    CALL("accept", accept(s, NULL, NULL));
    diff_nonblock("after", s);
    close(s);
}

DIFF_CASE(fd, accept_on_a_udp_socket_is_eopnotsupp)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CALL("accept", accept(s, NULL, NULL));
    diff_nonblock("after", s);
    close(s);
}

DIFF_CASE(fd, accept_on_a_pipe_is_enotsock)
{
    int p[2];
    pipe(p);
    CALL("accept", accept(p[0], NULL, NULL));
    close(p[0]);
    close(p[1]);
}

DIFF_CASE(fd, accept_on_a_closed_number_is_ebadf)
{
    CALL("accept", accept(77, NULL, NULL));
    CALL("accept4", accept4(-1, NULL, NULL, 0));
}

DIFF_CASE(fd, accept4_with_a_bad_flag_is_einval)
{
    int port;
    int l = diff_tcp_listener(&port);
    CALL("accept4", accept4(l, NULL, NULL, 0x40000000));
    close(l);
}

DIFF_CASE(fd, listener_stays_blocking_after_a_blocking_accept)
{
    int port;
    int l = diff_tcp_listener(&port);
    pid_t pid = connect_later(port, 30);
    int c = accept(l, NULL, NULL);
    diff_out("accepted: %d", c >= 0);
    diff_nonblock("listener", l);
    diff_nonblock("accepted", c);
    reap(pid);
    close(c);
    close(l);
}

DIFF_CASE(fd, accept4_sock_nonblock_makes_only_the_new_socket_non_blocking)
{
    int port;
    int l = diff_tcp_listener(&port);
    int s = diff_tcp_connect(port);
    int c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    diff_nonblock("listener", l);
    diff_nonblock("accepted", c);
    print_cloexec("accepted", c);
    close(c);
    close(s);
    close(l);
}

DIFF_CASE(fd, accept_on_a_listener_the_program_made_non_blocking_is_eagain)
{
    int port;
    int l = diff_tcp_listener(&port);
    fcntl(l, F_SETFL, O_NONBLOCK);
    int64_t t0 = diff_now();
    CALL("accept", accept(l, NULL, NULL));
    DIFF_TOOK("accept", t0, -1, 500);
    diff_nonblock("listener", l);
    close(l);
}

DIFF_CASE(fd, accept_waits_for_a_connection_that_comes_later)
{
    int port;
    int l = diff_tcp_listener(&port);
    pid_t pid = connect_later(port, 60);
    int64_t t0 = diff_now();
    int c = accept(l, NULL, NULL);
    diff_out("accepted: %d", c >= 0);
    DIFF_TOOK("accept", t0, 30, 3000);
    reap(pid);
    close(c);
    close(l);
}

static void *accept_once(void *arg)
{
    int c = accept(*(int *)arg, NULL, NULL);
    diff_out("thread accepted: %d", c >= 0);
    close(c);
    return NULL;
}

/* The pre-fork / hot-upgrade shape: accept in a pthread, then hand the
 * listener to another program that accepts with a blocking call. */
static void exec_child_accepts(bool keep_preload)
{
    int port;
    int l = diff_tcp_listener(&port);
    pthread_t t;
    pthread_create(&t, NULL, accept_once, &l);
    int s = diff_tcp_connect(port);
    pthread_join(t, NULL);
    diff_nonblock("listener after accept", l);
    pid_t pid = spawn_helper("accept", l, keep_preload);
    usleep(100000);                /* the child is blocked in accept */
    int s2 = diff_tcp_connect(port);
    print_exit("exec'd child accept", pid);
    close(s);
    close(s2);
    close(l);
}

DIFF_CASE(fd, exec_d_plain_program_blocks_in_accept_on_the_inherited_listener)
{
    exec_child_accepts(false);
}

DIFF_CASE(fd, exec_d_program_under_the_same_environment_accepts_on_the_listener)
{
    exec_child_accepts(true);
}

DIFF_CASE(fd, forked_child_blocks_in_accept_on_the_shared_listener)
{
    int port;
    int l = diff_tcp_listener(&port);
    pthread_t t;
    pthread_create(&t, NULL, accept_once, &l);
    int s = diff_tcp_connect(port);
    pthread_join(t, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        long fl = syscall(SYS_fcntl, l, F_GETFL);
        int c = accept(l, NULL, NULL);
        _exit(c < 0 ? 100 + errno : (fl & O_NONBLOCK) ? 1 : 0);
    }
    usleep(100000);
    int s2 = diff_tcp_connect(port);
    print_exit("forked child accept", pid);
    close(s);
    close(s2);
    close(l);
}

DIFF_CASE(fd, listener_passed_with_scm_rights_accepts_blocking_in_another_program)
{
    int port, sv[2];
    int l = diff_tcp_listener(&port);
    pair(sv);
    pthread_t t;
    pthread_create(&t, NULL, accept_once, &l);
    int s = diff_tcp_connect(port);
    pthread_join(t, NULL);
    pid_t pid = spawn_helper("recvaccept", sv[1], false);
    close(sv[1]);
    char b = 'L';
    struct iovec iov = { &b, 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &l, sizeof l);
    CALL("sendmsg(SCM_RIGHTS)", sendmsg(sv[0], &m, 0));
    close(l);
    usleep(100000);
    int s2 = diff_tcp_connect(port);
    print_exit("receiver accept", pid);
    close(s);
    close(s2);
    close(sv[0]);
}

/* ------------------------- connect and sendfile leave the flag as found */

DIFF_CASE(fd, blocking_connect_leaves_the_socket_blocking)
{
    int port;
    int l = diff_tcp_listener(&port);
    int s = diff_tcp_connect(port);
    diff_nonblock("connected", s);
    diff_out("F_GETFL nonblock=%d", (fcntl(s, F_GETFL) & O_NONBLOCK) != 0);
    close(s);
    close(l);
}

DIFF_CASE(fd, refused_connect_leaves_the_socket_blocking)
{
    int port;
    int l = diff_tcp_listener(&port);
    close(l);                      /* nobody listens on port now */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CALL("connect", connect(s, (struct sockaddr *)&a, sizeof a));
    diff_nonblock("after", s);
    close(s);
}

DIFF_CASE(fd, connect_on_a_program_non_blocking_socket_keeps_its_flag)
{
    int port;
    int l = diff_tcp_listener(&port);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    diff_out("connect: %s", r == 0 ? "0" : diff_errname(errno));
    diff_nonblock("after", s);
    close(s);
    close(l);
}

DIFF_CASE(fd, sendfile_to_a_socket_leaves_it_blocking)
{
    int sv[2];
    pair(sv);
    int f = open("/proc/self/exe", O_RDONLY);
    off_t off = 0;
    CALL("sendfile", sendfile(sv[1], f, &off, 1000));
    diff_nonblock("after", sv[1]);
    close(f);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, exec_d_program_sees_a_socket_blocking_after_connect_and_accept)
{
    int port;
    int l = diff_tcp_listener(&port);
    int s = diff_tcp_connect(port);
    int c = accept(l, NULL, NULL);
    print_exit("listener nb", spawn_helper("nb", l, false));
    print_exit("connected nb", spawn_helper("nb", s, false));
    print_exit("accepted nb", spawn_helper("nb", c, false));
    close(c);
    close(s);
    close(l);
}

/* ------------------------------------------------------------ more */

DIFF_CASE(fd, f_dupfd_from_a_base_near_the_limit_returns_the_base)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int lim = rl.rlim_cur > 1024 ? 1024 : (int)rl.rlim_cur;
    int fd = open("/dev/null", O_RDONLY);
    int base = lim - 64;
    int d = fcntl(fd, F_DUPFD, base);
    diff_out("F_DUPFD(limit - 64): %s", d == base ? "base" : d < 0 ? diff_errname(errno) : "above");
    close(d);
    close(fd);
}

DIFF_CASE(fd, socket_received_with_scm_rights_shows_the_senders_o_nonblock)
{
    int sv[2], data[2];
    pair(sv);
    pair(data);
    fcntl(data[0], F_SETFL, O_NONBLOCK);
    char b = 'F';
    struct iovec iov = { &b, 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &data[0], sizeof(int));
    sendmsg(sv[0], &m, 0);
    memset(&u, 0, sizeof u);
    m.msg_controllen = sizeof u.buf;
    CALL("recvmsg", recvmsg(sv[1], &m, 0));
    int got;
    memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof got);
    diff_out("F_GETFL nonblock=%d", (fcntl(got, F_GETFL) & O_NONBLOCK) != 0);
    CALL("read received", read(got, &b, 1));
    fcntl(data[0], F_SETFL, 0);    /* through the sender's number */
    diff_out("after sender cleared: nonblock=%d", (fcntl(got, F_GETFL) & O_NONBLOCK) != 0);
    close(got);
    close(data[0]);
    close(data[1]);
    close(sv[0]);
    close(sv[1]);
}

DIFF_CASE(fd, close_on_a_closed_number_is_ebadf)
{
    CALL("close(77)", close(77));
    CALL("close(-1)", close(-1));
    int fd = open("/dev/null", O_RDONLY);
    CALL("close", close(fd));
    CALL("close again", close(fd));
}

DIFF_CASE(fd, fcntl_getfl_on_a_closed_number_is_ebadf)
{
    CALL("F_GETFL", fcntl(77, F_GETFL));
    CALL("F_SETFL", fcntl(77, F_SETFL, O_NONBLOCK));
    int on = 1;
    CALL("FIONBIO", ioctl(77, FIONBIO, &on));
}

DIFF_CASE(fd, dup_of_a_listener_accepts_and_both_stay_blocking)
{
    int port;
    int l = diff_tcp_listener(&port);
    int d = dup(l);
    pid_t pid = connect_later(port, 30);
    int c = accept(d, NULL, NULL);
    diff_out("accepted via dup: %d", c >= 0);
    diff_nonblock("orig", l);
    diff_nonblock("dup", d);
    reap(pid);
    close(c);
    close(d);
    close(l);
}

static void *wait_child(void *arg)
{
    int st;
    waitpid(*(pid_t *)arg, &st, 0);
    return NULL;
}

DIFF_CASE(fd, open_while_another_thread_waits_for_a_child_gets_the_lowest_number)
{
    pid_t pid = fork();
    if (pid == 0) {
        diff_raw_sleep_ms(150);
        _exit(0);
    }
    pthread_t t;
    pthread_create(&t, NULL, wait_child, &pid);
    usleep(50000);                 /* the thread is inside waitpid */
    int fd = open("/dev/null", O_RDONLY);
    print_fd("open", fd);
    close(fd);
    pthread_join(t, NULL);
}

static void *sigwait_usr1(void *arg)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    int sig;
    sigwait(&s, &sig);
    return arg;
}

DIFF_CASE(fd, open_while_another_thread_is_in_sigwait_gets_the_lowest_number)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_t t;
    pthread_create(&t, NULL, sigwait_usr1, NULL);
    usleep(50000);                 /* the thread is inside sigwait */
    int fd = open("/dev/null", O_RDONLY);
    print_fd("open", fd);
    close(fd);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
}

DIFF_CASE(fd, opens_until_emfile_after_the_limit_was_lowered_before_a_thread)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    setrlimit(RLIMIT_NOFILE, &rl);
    pthread_t t;
    pthread_create(&t, NULL, nothing, NULL);
    pthread_join(t, NULL);
    int n = 0, fd, first = -1;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) {
        if (first < 0)
            first = fd;
        n++;
    }
    diff_out("first %d, opened %d, errno %s", first, n, diff_errname(errno));
    closefrom(3);
}

DIFF_CASE(fd, posix_spawned_program_blocks_in_accept_on_the_inherited_listener)
{
    int port;
    int l = diff_tcp_listener(&port);
    pthread_t t;
    pthread_create(&t, NULL, accept_once, &l);
    int s = diff_tcp_connect(port);
    pthread_join(t, NULL);
    char var[64];
    snprintf(var, sizeof var, "DIFF_FD_HELPER=accept %d", l);
    char *envp[] = { var, NULL };
    char *argv[] = { "diffcases-helper", NULL };
    pid_t pid;
    CALL("posix_spawn", posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, envp));
    usleep(100000);
    int s2 = diff_tcp_connect(port);
    print_exit("spawned accept", pid);
    close(s);
    close(s2);
    close(l);
}

/*
 * fdstate.h - what the I/O hooks remember about each descriptor number.
 *
 * One process-wide table indexed by fd (see fdstate.c for the essay). An
 * entry is a hint: every decision that would be wrong with a stale entry
 * is either validated by the syscall itself (ENOTSOCK on a socket-only
 * call) or made without the table, except the flag cache's, which keeps
 * the state of a description only while every way of changing it goes
 * through a hook of this process (B_OWN, fdstate.c).
 */
#ifndef GREEN_HOOKS_FDSTATE_H
#define GREEN_HOOKS_FDSTATE_H

#include <stdbool.h>
#include <sys/types.h>
#include <stdint.h>

/* What kind of file an fd refers to. */
enum green__fdkind {
    GREEN_FD_UNKNOWN = 0,   /* not learned yet */
    GREEN_FD_SOCKET,        /* S_ISSOCK */
    GREEN_FD_PIPE,          /* pipe or FIFO */
    GREEN_FD_FILE,          /* regular file or block device: always "ready" */
    GREEN_FD_TTY,           /* character device (ttys, /dev/null...) */
    GREEN_FD_OTHER,         /* eventfd, timerfd, epoll, directories... */
};

/* A snapshot of one entry (the table stores it packed in atomics). */
struct green__fdinfo {
    enum green__fdkind kind;  /* GREEN_FD_UNKNOWN until learned */
    bool known;               /* kind is valid */
    bool user_nonblock;       /* the description is O_NONBLOCK (the
                                 program's, never ours: see fdstate.c) */
    bool our_nonblock;        /* WE set O_NONBLOCK on the file description */
    bool created;             /* made by a hooked call of this process */
    int64_t rcvtimeo;         /* SO_RCVTIMEO in ns, 0 = none (from
                                 green__fdstate_view; the table itself
                                 keeps only 1, "at once": fdstate.c) */
    int64_t sndtimeo;         /* SO_SNDTIMEO in ns, 0 = none (likewise) */
};

/* Read the entry of fd (all zero when never set or out of range). Never
 * makes a syscall. */
__attribute__((visibility("hidden")))
struct green__fdinfo green__fdstate_peek(int fd);

/* Just the kind of fd (GREEN_FD_UNKNOWN when not learned). No syscall. */
__attribute__((visibility("hidden")))
enum green__fdkind green__fdstate_kind(int fd);

/* What green__fdstate_view reads from the kernel besides O_NONBLOCK. */
#define GREEN_VIEW_NONBLOCK 0u     /* O_NONBLOCK only */
#define GREEN_VIEW_RCVTIMEO 1u     /* and SO_RCVTIMEO */
#define GREEN_VIEW_SNDTIMEO 2u     /* and SO_SNDTIMEO */

/* The entry of fd with the open file description's state as the kernel
 * has it now: the kind (learned once, fstat), and for a socket
 * user_nonblock from F_GETFL and, when the socket is blocking, the
 * timeouts asked for in want (0 otherwise). For slow paths only: 1 to 3
 * syscalls on a socket. */
__attribute__((visibility("hidden")))
struct green__fdinfo green__fdstate_view(int fd, unsigned want);

/* green__fdstate_view(fd, both timeouts). */
__attribute__((visibility("hidden")))
struct green__fdinfo green__fdstate_get(int fd);

/* Replace the entry of fd (out-of-range fds are ignored). */
__attribute__((visibility("hidden")))
void green__fdstate_set(int fd, const struct green__fdinfo *info);

/* A new descriptor made by a hooked call: kind (may be UNKNOWN), the
 * program's O_NONBLOCK, no timeouts, nothing set by us. */
__attribute__((visibility("hidden")))
void green__fdstate_created(int fd, enum green__fdkind kind, bool nonblock);

/* Forget fd (close, or a stale entry detected). */
__attribute__((visibility("hidden")))
void green__fdstate_reset(int fd);

/* One past the highest fd the table has room for (0 when empty): fds at
 * or above it have no entry. */
__attribute__((visibility("hidden")))
int green__fdstate_limit(void);

/* newfd now shares oldfd's open file description (dup family). */
__attribute__((visibility("hidden")))
void green__fdstate_dup(int oldfd, int newfd);

/* Record the program's own O_NONBLOCK wish (fcntl F_SETFL, FIONBIO). */
__attribute__((visibility("hidden")))
void green__fdstate_set_user_nonblock(int fd, bool on);

/* fd's description changed through a call of libgreen's own (REAL(fcntl)
 * restoring the program's flags): what the flag cache learned of it is
 * forgotten. After the system call. */
__attribute__((visibility("hidden")))
void green__fdstate_changed(int fd);

/* Record that we set O_NONBLOCK on fd's open file description (the flag
 * cache learns nothing while it is set; clearing it forgets). */
__attribute__((visibility("hidden")))
void green__fdstate_set_our_nonblock(int fd, bool on);

/* Record SO_RCVTIMEO (dir 0) or SO_SNDTIMEO (dir 1) in ns (the table
 * keeps whether it is 1, "at once": the kernel has the rest). */
__attribute__((visibility("hidden")))
void green__fdstate_set_timeo(int fd, int dir, int64_t ns);

/* The flag cache's own descriptors (fdstate.c's essay). Take the
 * generation before the system call that makes a socket, and mark the
 * number own after green__fdstate_created; the mark is refused when a
 * process creation ran meanwhile. */
__attribute__((visibility("hidden")))
unsigned green__fdstate_spawn_gen(void);
/* known: what the caller knows of the new description without asking the
 * kernel (GREEN_KNOWN_*), kept as if learned: socket and socketpair know
 * everything (O_NONBLOCK from SOCK_NONBLOCK, no timeouts); accept4 knows
 * O_NONBLOCK (not inherited) and the timeouts it inherits from the
 * listener when the listener's are known (green__fdstate_known_timeouts). */
#define GREEN_KNOWN_BLOCKING 1u
#define GREEN_KNOWN_NB       2u
#define GREEN_KNOWN_RCV0     4u    /* SO_RCVTIMEO is none */
#define GREEN_KNOWN_SND0     8u    /* SO_SNDTIMEO is none */
__attribute__((visibility("hidden")))
void green__fdstate_own(int fd, unsigned gen, unsigned known);
/* GREEN_KNOWN_RCV0/SND0 as the flag cache has them for own socket fd. */
__attribute__((visibility("hidden")))
unsigned green__fdstate_known_timeouts(int fd);

/* fd's description is (or may be) reachable some other way: drop the own
 * mark and what was learned (SCM_RIGHTS, fdopen; the dup family does it
 * in green__fdstate_dup). */
__attribute__((visibility("hidden")))
void green__fdstate_share(int fd);

/* Around a send on fd that may carry descriptors with SCM_RIGHTS (any
 * socket not known to be AF_INET/AF_INET6): while one is under way no
 * cached flag is used. begin returns whether it counted; pass that to
 * end. */
__attribute__((visibility("hidden")))
bool green__fdstate_rights_begin(int fd);
__attribute__((visibility("hidden")))
void green__fdstate_rights_end(bool begun);

/* What the table knows of a socket's kind, recorded where it is made
 * (socket, socketpair; accept copies the listener's): */
#define GREEN_SOCK_INET   1u       /* AF_INET or AF_INET6 */
#define GREEN_SOCK_STREAM 2u       /* SOCK_STREAM */
__attribute__((visibility("hidden")))
void green__fdstate_set_sock(int fd, unsigned sock);
__attribute__((visibility("hidden")))
unsigned green__fdstate_sock(int fd);

/* Park first (fdstate.c): true when a plain read of fd should park before
 * its first try: an own, blocking (as learned) stream socket whose last
 * plain read came back short. A hint; no system call. */
__attribute__((visibility("hidden")))
bool green__fdstate_park_first(int fd);
/* After a plain read of fd that returned data: short_read when it
 * returned less than asked. */
__attribute__((visibility("hidden")))
void green__fdstate_note_read(int fd, bool short_read);

/* Around every way of making a process (fork's atfork handlers do it for
 * fork): every own mark is dropped, before and after. */
__attribute__((visibility("hidden")))
void green__fdstate_spawn_begin(void);
__attribute__((visibility("hidden")))
void green__fdstate_spawn_end(void);

/* Turn the flag cache off for the life of the process (a raw fork or
 * clone through syscall(), io_uring: descriptors change unseen). */
__attribute__((visibility("hidden")))
void green__fdstate_trust_off(void);

/* True when fd is a socket (learns the kind with one fstat the first
 * time). For other hook modules (poll, select). */
__attribute__((visibility("hidden")))
bool green__fd_is_socket(int fd);

/* Mark fd as one of libgreen's own (epoll fd, async eventfd, timerfd) or
 * clear the mark. The program's close, close_range, closefrom, dup family
 * and fcntl treat a marked fd as if it were not open (hooks/io.c). The
 * mark survives green__fdstate_set; reset and created clear it. */
__attribute__((visibility("hidden")))
void green__fd_set_internal(int fd, bool on);

/* In a child of fork: close every descriptor marked internal that the OS
 * thread tid of the parent made (the hub of an OS thread the child does
 * not have), and clear their marks. */
__attribute__((visibility("hidden")))
void green__fd_close_owned(pid_t tid);

/* True when fd is marked internal: one table lookup, no syscall. */
__attribute__((visibility("hidden")))
bool green__fd_is_internal(int fd);

#endif

/*
 * io.h - the socket and descriptor hooks (io.c). Each green_hook_NAME has
 * the signature and the kernel semantics of the libc function NAME; the
 * exported wrappers in preload/export_io.c call them. Variadic libc
 * functions (open, openat, fcntl, ioctl) take their optional argument
 * explicitly here.
 *
 * Those that wait "May switch." when called from a green thread other
 * than the hub, with GREEN_HOOKS including io; otherwise they are the libc
 * function. A wait that is cut short fails as the kernel's would: EAGAIN
 * after SO_RCVTIMEO/SO_SNDTIMEO (EINPROGRESS for connect), EBADF when
 * another green thread closed the descriptor, and ECANCELED when the green
 * thread was killed (green_kill), after any partial transfer is returned.
 */
#ifndef GREEN_HOOKS_IO_H
#define GREEN_HOOKS_IO_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#define GREEN__HIDE __attribute__((visibility("hidden")))

GREEN__HIDE int green_hook_socket(int domain, int type, int protocol);
GREEN__HIDE int green_hook_socketpair(int domain, int type, int protocol, int sv[2]);
GREEN__HIDE int green_hook_accept(int fd, struct sockaddr *addr, socklen_t *len);
GREEN__HIDE int green_hook_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
GREEN__HIDE int green_hook_connect(int fd, const struct sockaddr *addr, socklen_t len);
GREEN__HIDE int green_hook_listen(int fd, int backlog);

GREEN__HIDE ssize_t green_hook_read(int fd, void *buf, size_t n);
GREEN__HIDE ssize_t green_hook_write(int fd, const void *buf, size_t n);
GREEN__HIDE ssize_t green_hook_readv(int fd, const struct iovec *iov, int iovcnt);
GREEN__HIDE ssize_t green_hook_writev(int fd, const struct iovec *iov, int iovcnt);
GREEN__HIDE ssize_t green_hook_recv(int fd, void *buf, size_t n, int flags);
GREEN__HIDE ssize_t green_hook_recvfrom(int fd, void *buf, size_t n, int flags,
                                        struct sockaddr *addr, socklen_t *alen);
GREEN__HIDE ssize_t green_hook_recvmsg(int fd, struct msghdr *msg, int flags);
GREEN__HIDE ssize_t green_hook_send(int fd, const void *buf, size_t n, int flags);
GREEN__HIDE ssize_t green_hook_sendto(int fd, const void *buf, size_t n, int flags,
                                      const struct sockaddr *addr, socklen_t alen);
GREEN__HIDE ssize_t green_hook_sendmsg(int fd, const struct msghdr *msg, int flags);
GREEN__HIDE int green_hook_recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags,
                                    struct timespec *timeout);
GREEN__HIDE int green_hook_sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags);
GREEN__HIDE ssize_t green_hook_sendfile(int out_fd, int in_fd, off_t *off, size_t n);
/* io_sync.c: flushes on the worker pool while they are slow. */
GREEN__HIDE int green_hook_fsync(int fd);
GREEN__HIDE int green_hook_fdatasync(int fd);
GREEN__HIDE int green_hook_syncfs(int fd);
GREEN__HIDE int green_hook_sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags);
GREEN__HIDE ssize_t green_hook_splice(int in, loff_t *off_in, int out, loff_t *off_out,
                                      size_t n, unsigned int flags);
GREEN__HIDE ssize_t green_hook_tee(int in, int out, size_t n, unsigned int flags);
GREEN__HIDE ssize_t green_hook_pread(int fd, void *buf, size_t n, off_t off);
GREEN__HIDE ssize_t green_hook_pwrite(int fd, const void *buf, size_t n, off_t off);

/* open/openat: mode is only meaningful with O_CREAT or O_TMPFILE. */
GREEN__HIDE int green_hook_open(const char *path, int flags, mode_t mode);
GREEN__HIDE int green_hook_openat(int dirfd, const char *path, int flags, mode_t mode);
GREEN__HIDE int green_hook_close(int fd);
GREEN__HIDE int green_hook_close_range(unsigned int first, unsigned int last, int flags);
GREEN__HIDE void green_hook_closefrom(int lowfd);
GREEN__HIDE FILE *green_hook_fdopen(int fd, const char *mode);
/* io_stdio.c: fdopen's stream, over the hooks for a socket or a pipe. */
GREEN__HIDE FILE *green__stdio_fdopen(int fd, const char *mode);
/* Before and after glibc's stdio function on fp: a stream of ours is
 * locked for the calling green thread (returned), any other FILE is not
 * (NULL). errno is left alone. */
GREEN__HIDE void *green__stdio_enter(FILE *fp);
/* A quick test for the interposed stdio functions (io_stdio.c, "Which
 * FILEs are ours"): fp is a cookie stream, as every stream of ours is
 * (the function table's pointer that follows every FILE of glibc's);
 * enter checks the rest. */
extern void *green__stdio_cookie_table GREEN__HIDE;
static inline bool green__stdio_marked(const FILE *fp)
{
    void *t = __atomic_load_n(&green__stdio_cookie_table, __ATOMIC_RELAXED);
    return t && fp && *(void *const *)((const char *)fp + sizeof(FILE)) == t;
}
GREEN__HIDE void green__stdio_leave(void *stream);
/* The stream of ours behind fp, or NULL; and a lock attempt on it (true:
 * taken) for ftrylockfile. */
GREEN__HIDE void *green__stdio_stream(FILE *fp);
GREEN__HIDE bool green__stdio_trylock(void *stream);
/* popen as glibc's, with a stream of ours over the pipe (NULL, errno);
 * pclose of a stream it made (false: fp is not one, *result untouched). */
GREEN__HIDE FILE *green__stdio_popen(const char *command, const char *type);
GREEN__HIDE bool green__stdio_pclose(FILE *fp, int *result);
/* io_stdio_glibc.c: reads from glibc's own streams (stdin, fopen's FIFOs)
 * over a socket, a pipe or a terminal park instead of holding the hub.
 * green__stdio_glibc: the stream's lock of ours when fp is such a stream
 * read by a green thread, else NULL (the call is glibc's alone). The
 * others run the call under that lock; real is glibc's function the
 * program called (chk: a fortified form, with the object's size). */
#include <stdarg.h>
GREEN__HIDE void *green__stdio_glibc(FILE *fp);
GREEN__HIDE void green__stdio_glibc_lock(void *g);
GREEN__HIDE void green__stdio_glibc_unlock(void *g);
GREEN__HIDE bool green__stdio_glibc_trylock(void *g);
GREEN__HIDE int green__stdio_glibc_getc(void *g, FILE *fp, int (*real)(FILE *), bool takes);
GREEN__HIDE int green__stdio_glibc_scanf(void *g, FILE *fp,
                                         int (*real)(FILE *, const char *, va_list),
                                         const char *f, va_list ap);
GREEN__HIDE char *green__stdio_glibc_fgets(void *g, char *s, int n, FILE *fp, bool chk,
                                           size_t size, char *(*real)(char *, int, FILE *));
GREEN__HIDE size_t green__stdio_glibc_fread(void *g, void *p, size_t size, size_t n, FILE *fp,
                                            bool chk, size_t psize,
                                            size_t (*real)(void *, size_t, size_t, FILE *));
GREEN__HIDE ssize_t green__stdio_glibc_getdelim(void *g, char **line, size_t *cap, int delim,
                                                FILE *fp,
                                                ssize_t (*real)(char **, size_t *, int, FILE *));
GREEN__HIDE int green__stdio_glibc_fputs(void *g, const char *s, FILE *fp,
                                         int (*real)(const char *, FILE *));
GREEN__HIDE int green__stdio_glibc_puts(void *g, const char *s, int (*real)(const char *));
GREEN__HIDE int green__stdio_glibc_putc(void *g, int c, FILE *fp, int (*real)(int, FILE *));
GREEN__HIDE size_t green__stdio_glibc_fwrite(void *g, const void *buf, size_t size, size_t count,
                                             FILE *fp,
                                             size_t (*real)(const void *, size_t, size_t, FILE *));
GREEN__HIDE int green__stdio_glibc_fflush(void *g, FILE *fp, int (*real)(FILE *));
/* flag >= 0: __vfprintf_chk's (real_chk), else vfprintf's (real). */
GREEN__HIDE int green__stdio_glibc_vfprintf(void *g, FILE *fp, int flag, const char *f, va_list ap,
                                            int (*real)(FILE *, const char *, va_list),
                                            int (*real_chk)(FILE *, int, const char *, va_list));
/* perror, vwarn/vwarnx (false: the caller runs glibc's), vdprintf. */
GREEN__HIDE bool green__stdio_glibc_perror(const char *s);
GREEN__HIDE bool green__stdio_glibc_vwarn(bool with_errno, const char *f, va_list ap);
GREEN__HIDE int green__stdio_glibc_vdprintf(int fd, const char *f, va_list ap,
                                            int (*real)(int, const char *, va_list));
/* After glibc's fopen, freopen or tmpfile made fp: its descriptor is
 * recorded as a new one (returns fp). Before glibc's fclose of one of its
 * own streams: written out and its descriptor forgotten. */
GREEN__HIDE FILE *green__stdio_glibc_opened(FILE *fp);
GREEN__HIDE void green__stdio_glibc_closing(FILE *fp);
/* fclose of any FILE: ours are freed after glibc's fclose. */
GREEN__HIDE int green__stdio_fclose(FILE *fp);
GREEN__HIDE int green_hook_dup(int fd);
GREEN__HIDE int green_hook_dup2(int fd, int fd2);
GREEN__HIDE int green_hook_dup3(int fd, int fd2, int flags);
/* epoll_create/epoll_create1: pass through; while libev makes its loop
 * (green__in_libev) the new fd is moved out of the program's range and
 * marked internal (the hub's epoll fd, which libev's API does not name). */
GREEN__HIDE int green_hook_epoll_create(int size);
GREEN__HIDE int green_hook_epoll_create1(int flags);
/* eventfd: passes through; libev's own (while green__in_libev) is moved
 * out of the program's range and marked internal. */
GREEN__HIDE int green_hook_eventfd(unsigned int count, int flags);
/* arg: the optional third argument as a pointer-sized word (int commands
 * read its low 32 bits, as glibc does). */
GREEN__HIDE int green_hook_fcntl(int fd, int cmd, void *arg);
GREEN__HIDE int green_hook_ioctl(int fd, unsigned long req, void *arg);
/* File lock waits (io_lock.c): flock, lockf F_LOCK and fcntl F_SETLKW /
 * F_OFD_SETLKW (green_hook_fcntl) park the caller while a solo thread
 * waits in the kernel. */
GREEN__HIDE int green_hook_flock(int fd, int op);
GREEN__HIDE int green_hook_lockf(int fd, int cmd, off_t len);
struct flock;
GREEN__HIDE int green__io_lock_wait(int fd, int cmd, struct flock *fl);
/* System V and POSIX IPC waits (io_ipc.c): the same, for semaphore sets
 * and message queues. */
struct sembuf;
GREEN__HIDE int green_hook_semop(int id, struct sembuf *sops, size_t n);
GREEN__HIDE int green_hook_semtimedop(int id, struct sembuf *sops, size_t n,
                                      const struct timespec *ts);
GREEN__HIDE int green_hook_msgsnd(int id, const void *msg, size_t size, int flags);
GREEN__HIDE ssize_t green_hook_msgrcv(int id, void *msg, size_t size, long type, int flags);
GREEN__HIDE int green_hook_mq_send(int mqd, const char *msg, size_t len, unsigned prio);
GREEN__HIDE int green_hook_mq_timedsend(int mqd, const char *msg, size_t len, unsigned prio,
                                        const struct timespec *ts);
GREEN__HIDE ssize_t green_hook_mq_receive(int mqd, char *msg, size_t len, unsigned *prio);
GREEN__HIDE ssize_t green_hook_mq_timedreceive(int mqd, char *msg, size_t len,
                                               unsigned *prio, const struct timespec *ts);
GREEN__HIDE int green_hook_setsockopt(int fd, int level, int opt, const void *val,
                                      socklen_t len);
GREEN__HIDE int green_hook_getsockopt(int fd, int level, int opt, void *val,
                                      socklen_t *len);
GREEN__HIDE int green_hook_pipe(int fds[2]);
GREEN__HIDE int green_hook_pipe2(int fds[2], int flags);

/* Fortified open without a mode: O_CREAT/O_TMPFILE abort as in glibc. */
GREEN__HIDE int green_hook_open_2(const char *path, int flags);
GREEN__HIDE int green_hook_openat_2(int dirfd, const char *path, int flags);

/* Copy n bytes of user memory the kernel has not validated yet (an iovec
 * array, fd_sets, a timespec) without touching it ourselves: a bad
 * pointer fails with EFAULT here, as the kernel would fail the real call,
 * instead of crashing the program in our code. One syscall: slow paths
 * only. Returns 0 or -1 with errno EFAULT. */
GREEN__HIDE int green__copy_in(void *dst, const void *src, size_t n);
/* The other way: n bytes to the program's memory, EFAULT where the kernel
 * could not write them (copy_to_user). */
GREEN__HIDE int green__copy_out(void *dst, const void *src, size_t n);

/* glibc's fortified entry points: the caller's buffer is buflen bytes. A
 * request larger than the buffer aborts as glibc does (__chk_fail). */
GREEN__HIDE ssize_t green_hook_read_chk(int fd, void *buf, size_t n, size_t buflen);
GREEN__HIDE ssize_t green_hook_pread_chk(int fd, void *buf, size_t n, off_t off,
                                         size_t buflen);
GREEN__HIDE ssize_t green_hook_recv_chk(int fd, void *buf, size_t n, size_t buflen,
                                        int flags);
GREEN__HIDE ssize_t green_hook_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
                                            int flags, struct sockaddr *addr,
                                            socklen_t *alen);

#endif

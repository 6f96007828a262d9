/*
 * export_io.c - the libc names of the socket and descriptor hooks. Each
 * is a one-liner calling green_hook_NAME (hooks/io.c); variadic functions
 * pick up their optional argument here. The 64-bit-offset aliases
 * (open64, pread64...) and glibc's fortified entry points (__read_chk...)
 * are exported too, because that is what programs built with
 * _FILE_OFFSET_BITS=64 or _FORTIFY_SOURCE call.
 */
#define _GNU_SOURCE
/* Plain names: the 64-bit aliases are defined below, by hand. */
#undef _FILE_OFFSET_BITS
#undef _FORTIFY_SOURCE
#include "hooks.h"
#include "io.h"
#include <fcntl.h>
#include <stdarg.h>
#include <mqueue.h>
#include <sys/ioctl.h>
#include <sys/msg.h>
#include <sys/sem.h>

/* The optional mode of open/openat. */
#define OPEN_MODE(flags, last)                                                \
    mode_t mode = 0;                                                          \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                                    \
        va_list ap;                                                           \
        va_start(ap, last);                                                   \
        mode = (mode_t)va_arg(ap, int);                                       \
        va_end(ap);                                                           \
    }

/* The optional third argument of fcntl/ioctl, read as a pointer-sized
 * word as glibc reads it. */
#define OPT_ARG(last)                                                         \
    va_list ap;                                                               \
    va_start(ap, last);                                                       \
    void *arg = va_arg(ap, void *);                                           \
    va_end(ap);

GREEN_EXPORT int socket(int d, int t, int p) { return green_hook_socket(d, t, p); }
GREEN_EXPORT int socketpair(int d, int t, int p, int sv[2]) { return green_hook_socketpair(d, t, p, sv); }
GREEN_EXPORT int accept(int fd, struct sockaddr *a, socklen_t *l) { return green_hook_accept(fd, a, l); }
GREEN_EXPORT int accept4(int fd, struct sockaddr *a, socklen_t *l, int f) { return green_hook_accept4(fd, a, l, f); }
GREEN_EXPORT int connect(int fd, const struct sockaddr *a, socklen_t l) { return green_hook_connect(fd, a, l); }
GREEN_EXPORT int listen(int fd, int b) { return green_hook_listen(fd, b); }

GREEN_EXPORT ssize_t read(int fd, void *b, size_t n) { return green_hook_read(fd, b, n); }
GREEN_EXPORT ssize_t write(int fd, const void *b, size_t n) { return green_hook_write(fd, b, n); }
GREEN_EXPORT ssize_t readv(int fd, const struct iovec *v, int c) { return green_hook_readv(fd, v, c); }
GREEN_EXPORT ssize_t writev(int fd, const struct iovec *v, int c) { return green_hook_writev(fd, v, c); }
GREEN_EXPORT ssize_t recv(int fd, void *b, size_t n, int f) { return green_hook_recv(fd, b, n, f); }
GREEN_EXPORT ssize_t recvfrom(int fd, void *b, size_t n, int f, struct sockaddr *a, socklen_t *l) { return green_hook_recvfrom(fd, b, n, f, a, l); }
GREEN_EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int f) { return green_hook_recvmsg(fd, m, f); }
GREEN_EXPORT ssize_t send(int fd, const void *b, size_t n, int f) { return green_hook_send(fd, b, n, f); }
GREEN_EXPORT ssize_t sendto(int fd, const void *b, size_t n, int f, const struct sockaddr *a, socklen_t l) { return green_hook_sendto(fd, b, n, f, a, l); }
GREEN_EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int f) { return green_hook_sendmsg(fd, m, f); }
GREEN_EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int f, struct timespec *t) { return green_hook_recvmmsg(fd, v, n, f, t); }
GREEN_EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int f) { return green_hook_sendmmsg(fd, v, n, f); }
GREEN_EXPORT ssize_t sendfile(int o, int i, off_t *off, size_t n) { return green_hook_sendfile(o, i, off, n); }
GREEN_EXPORT ssize_t sendfile64(int o, int i, off_t *off, size_t n) { return green_hook_sendfile(o, i, off, n); }
GREEN_EXPORT int fsync(int fd) { return green_hook_fsync(fd); }
GREEN_EXPORT int fdatasync(int fd) { return green_hook_fdatasync(fd); }
GREEN_EXPORT int syncfs(int fd) { return green_hook_syncfs(fd); }
GREEN_EXPORT int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags) { return green_hook_sync_file_range(fd, off, n, flags); }
GREEN_EXPORT ssize_t splice(int i, loff_t *oi, int o, loff_t *oo, size_t n, unsigned int f) { return green_hook_splice(i, oi, o, oo, n, f); }
GREEN_EXPORT ssize_t tee(int i, int o, size_t n, unsigned int f) { return green_hook_tee(i, o, n, f); }
GREEN_EXPORT ssize_t pread(int fd, void *b, size_t n, off_t off) { return green_hook_pread(fd, b, n, off); }
GREEN_EXPORT ssize_t pread64(int fd, void *b, size_t n, off_t off) { return green_hook_pread(fd, b, n, off); }
GREEN_EXPORT ssize_t pwrite(int fd, const void *b, size_t n, off_t off) { return green_hook_pwrite(fd, b, n, off); }
GREEN_EXPORT ssize_t pwrite64(int fd, const void *b, size_t n, off_t off) { return green_hook_pwrite(fd, b, n, off); }

GREEN_EXPORT int open(const char *p, int flags, ...) { OPEN_MODE(flags, flags) return green_hook_open(p, flags, mode); }
GREEN_EXPORT int open64(const char *p, int flags, ...) { OPEN_MODE(flags, flags) return green_hook_open(p, flags, mode); }
GREEN_EXPORT int openat(int d, const char *p, int flags, ...) { OPEN_MODE(flags, flags) return green_hook_openat(d, p, flags, mode); }
GREEN_EXPORT int openat64(int d, const char *p, int flags, ...) { OPEN_MODE(flags, flags) return green_hook_openat(d, p, flags, mode); }
/* Fortified open without a mode (O_CREAT callers pass one to open). */
GREEN_EXPORT int __open_2(const char *p, int flags) { return green_hook_open_2(p, flags); }
GREEN_EXPORT int __open64_2(const char *p, int flags) { return green_hook_open_2(p, flags); }
GREEN_EXPORT int __openat_2(int d, const char *p, int flags) { return green_hook_openat_2(d, p, flags); }
GREEN_EXPORT int __openat64_2(int d, const char *p, int flags) { return green_hook_openat_2(d, p, flags); }

GREEN_EXPORT int close(int fd) { return green_hook_close(fd); }
GREEN_EXPORT int close_range(unsigned int a, unsigned int b, int f) { return green_hook_close_range(a, b, f); }
GREEN_EXPORT void closefrom(int lowfd) { green_hook_closefrom(lowfd); }
GREEN_EXPORT int dup(int fd) { return green_hook_dup(fd); }
GREEN_EXPORT FILE *fdopen(int fd, const char *mode) { return green_hook_fdopen(fd, mode); }
GREEN_EXPORT int dup2(int fd, int fd2) { return green_hook_dup2(fd, fd2); }
GREEN_EXPORT int dup3(int fd, int fd2, int f) { return green_hook_dup3(fd, fd2, f); }
GREEN_EXPORT int fcntl(int fd, int cmd, ...) { OPT_ARG(cmd) return green_hook_fcntl(fd, cmd, arg); }
GREEN_EXPORT int fcntl64(int fd, int cmd, ...) { OPT_ARG(cmd) return green_hook_fcntl(fd, cmd, arg); }
GREEN_EXPORT int ioctl(int fd, unsigned long req, ...) { OPT_ARG(req) return green_hook_ioctl(fd, req, arg); }
GREEN_EXPORT int flock(int fd, int op) { return green_hook_flock(fd, op); }
GREEN_EXPORT int lockf(int fd, int cmd, off_t len) { return green_hook_lockf(fd, cmd, len); }
GREEN_EXPORT int lockf64(int fd, int cmd, off_t len) { return green_hook_lockf(fd, cmd, len); }
GREEN_EXPORT int semop(int id, struct sembuf *s, size_t n) { return green_hook_semop(id, s, n); }
GREEN_EXPORT int semtimedop(int id, struct sembuf *s, size_t n, const struct timespec *t) { return green_hook_semtimedop(id, s, n, t); }
GREEN_EXPORT int msgsnd(int id, const void *m, size_t sz, int f) { return green_hook_msgsnd(id, m, sz, f); }
GREEN_EXPORT ssize_t msgrcv(int id, void *m, size_t sz, long ty, int f) { return green_hook_msgrcv(id, m, sz, ty, f); }
GREEN_EXPORT int mq_send(mqd_t q, const char *m, size_t l, unsigned p) { return green_hook_mq_send(q, m, l, p); }
GREEN_EXPORT int mq_timedsend(mqd_t q, const char *m, size_t l, unsigned p, const struct timespec *t) { return green_hook_mq_timedsend(q, m, l, p, t); }
GREEN_EXPORT ssize_t mq_receive(mqd_t q, char *m, size_t l, unsigned *p) { return green_hook_mq_receive(q, m, l, p); }
GREEN_EXPORT ssize_t mq_timedreceive(mqd_t q, char *m, size_t l, unsigned *p, const struct timespec *t) { return green_hook_mq_timedreceive(q, m, l, p, t); }
GREEN_EXPORT int setsockopt(int fd, int lv, int o, const void *v, socklen_t l) { return green_hook_setsockopt(fd, lv, o, v, l); }
GREEN_EXPORT int getsockopt(int fd, int lv, int o, void *v, socklen_t *l) { return green_hook_getsockopt(fd, lv, o, v, l); }
GREEN_EXPORT int pipe(int fds[2]) { return green_hook_pipe(fds); }
GREEN_EXPORT int pipe2(int fds[2], int f) { return green_hook_pipe2(fds, f); }
GREEN_EXPORT int epoll_create(int size) { return green_hook_epoll_create(size); }
GREEN_EXPORT int epoll_create1(int f) { return green_hook_epoll_create1(f); }
GREEN_EXPORT int eventfd(unsigned int c, int f) { return green_hook_eventfd(c, f); }

GREEN_EXPORT ssize_t __read_chk(int fd, void *b, size_t n, size_t bl) { return green_hook_read_chk(fd, b, n, bl); }
GREEN_EXPORT ssize_t __pread_chk(int fd, void *b, size_t n, off_t off, size_t bl) { return green_hook_pread_chk(fd, b, n, off, bl); }
GREEN_EXPORT ssize_t __pread64_chk(int fd, void *b, size_t n, off_t off, size_t bl) { return green_hook_pread_chk(fd, b, n, off, bl); }
GREEN_EXPORT ssize_t __recv_chk(int fd, void *b, size_t n, size_t bl, int f) { return green_hook_recv_chk(fd, b, n, bl, f); }
GREEN_EXPORT ssize_t __recvfrom_chk(int fd, void *b, size_t n, size_t bl, int f, struct sockaddr *a, socklen_t *l) { return green_hook_recvfrom_chk(fd, b, n, bl, f, a, l); }

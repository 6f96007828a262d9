/*
 * real.h - the table of the real libc functions behind every hook.
 *
 * Each entry is resolved once, with dlsym(RTLD_NEXT, name), the first time
 * green__real_init() runs (the preload constructor calls it; so does every
 * hook on its slow path, so a hook called before the constructor, from
 * another library's constructor, still works). RTLD_NEXT from libgreen.so
 * finds the definition that would have been used without us: libc's, or a
 * sanitizer's interceptor that itself forwards to libc.
 *
 * Adding a function: one line in GREEN__REAL_FUNCS; use it as
 * green__real.name(args).
 */
#ifndef GREEN_HOOKS_REAL_H
#define GREEN_HOOKS_REAL_H

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* X(return type, name, (parameter list)) */
#define GREEN__REAL_FUNCS(X)                                                  \
    X(int, socket, (int, int, int))                                           \
    X(int, socketpair, (int, int, int, int *))                                \
    X(int, accept, (int, struct sockaddr *, socklen_t *))                     \
    X(int, accept4, (int, struct sockaddr *, socklen_t *, int))               \
    X(int, connect, (int, const struct sockaddr *, socklen_t))                \
    X(int, listen, (int, int))                                                \
    X(int, shutdown, (int, int))                                              \
    X(ssize_t, read, (int, void *, size_t))                                   \
    X(ssize_t, write, (int, const void *, size_t))                            \
    X(ssize_t, readv, (int, const struct iovec *, int))                       \
    X(ssize_t, writev, (int, const struct iovec *, int))                      \
    X(ssize_t, recv, (int, void *, size_t, int))                              \
    X(ssize_t, recvfrom, (int, void *, size_t, int, struct sockaddr *, socklen_t *)) \
    X(ssize_t, recvmsg, (int, struct msghdr *, int))                          \
    X(ssize_t, send, (int, const void *, size_t, int))                        \
    X(ssize_t, sendto, (int, const void *, size_t, int, const struct sockaddr *, socklen_t)) \
    X(ssize_t, sendmsg, (int, const struct msghdr *, int))                    \
    X(int, recvmmsg, (int, struct mmsghdr *, unsigned int, int, struct timespec *)) \
    X(int, sendmmsg, (int, struct mmsghdr *, unsigned int, int))              \
    X(ssize_t, sendfile, (int, int, off_t *, size_t))                         \
    X(ssize_t, pread, (int, void *, size_t, off_t))                           \
    X(ssize_t, pwrite, (int, const void *, size_t, off_t))                    \
    X(int, open, (const char *, int, ...))                                    \
    X(int, openat, (int, const char *, int, ...))                             \
    X(int, close, (int))                                                      \
    X(int, dup, (int))                                                        \
    X(int, dup2, (int, int))                                                  \
    X(int, dup3, (int, int, int))                                             \
    X(int, fcntl, (int, int, ...))                                            \
    X(int, ioctl, (int, unsigned long, ...))                                  \
    X(int, setsockopt, (int, int, int, const void *, socklen_t))              \
    X(int, getsockopt, (int, int, int, void *, socklen_t *))                  \
    X(int, pipe, (int *))                                                     \
    X(int, pipe2, (int *, int))                                               \
    X(int, poll, (struct pollfd *, nfds_t, int))                              \
    X(int, ppoll, (struct pollfd *, nfds_t, const struct timespec *, const sigset_t *)) \
    X(int, select, (int, fd_set *, fd_set *, fd_set *, struct timeval *))     \
    X(int, pselect, (int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *)) \
    X(int, epoll_create, (int))                                               \
    X(int, epoll_create1, (int))                                              \
    X(int, eventfd, (unsigned int, int))                                      \
    X(int, epoll_wait, (int, struct epoll_event *, int, int))                 \
    X(int, epoll_pwait, (int, struct epoll_event *, int, int, const sigset_t *)) \
    X(int, epoll_pwait2, (int, struct epoll_event *, int, const struct timespec *, const sigset_t *)) \
    X(unsigned int, sleep, (unsigned int))                                    \
    X(int, usleep, (useconds_t))                                              \
    X(int, nanosleep, (const struct timespec *, struct timespec *))           \
    X(int, clock_nanosleep, (clockid_t, int, const struct timespec *, struct timespec *)) \
    X(int, sched_yield, (void))                                               \
    X(int, getaddrinfo, (const char *, const char *, const struct addrinfo *, struct addrinfo **)) \
    X(int, getnameinfo, (const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int)) \
    X(struct hostent *, gethostbyname, (const char *))                        \
    X(struct hostent *, gethostbyname2, (const char *, int))                  \
    X(int, gethostbyname_r, (const char *, struct hostent *, char *, size_t, struct hostent **, int *)) \
    X(int, gethostbyname2_r, (const char *, int, struct hostent *, char *, size_t, struct hostent **, int *)) \
    X(struct hostent *, gethostbyaddr, (const void *, socklen_t, int))        \
    X(int, gethostbyaddr_r, (const void *, socklen_t, int, struct hostent *, char *, size_t, struct hostent **, int *)) \
    X(pid_t, fork, (void))                                                    \
    X(pid_t, waitpid, (pid_t, int *, int))                                    \
    X(pid_t, wait, (int *))                                                   \
    X(pid_t, wait4, (pid_t, int *, int, struct rusage *))                     \
    X(int, waitid, (idtype_t, id_t, siginfo_t *, int))                        \
    X(int, system, (const char *))                                            \
    X(int, sigaction, (int, const struct sigaction *, struct sigaction *))    \
    X(int, pause, (void))                                                     \
    X(int, sigsuspend, (const sigset_t *))                                    \
    X(int, sigtimedwait, (const sigset_t *, siginfo_t *, const struct timespec *)) \
    X(int, sigprocmask, (int, const sigset_t *, sigset_t *))                 \
    X(int, pthread_sigmask, (int, const sigset_t *, sigset_t *))             \
    X(int, sigpending, (sigset_t *))                                          \
    X(int, raise, (int))                                                      \
    X(int, pthread_sigqueue, (pthread_t, int, const union sigval))           \
    X(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *)) \
    X(int, pthread_join, (pthread_t, void **))                                \
    X(int, pthread_detach, (pthread_t))                                       \
    X(pthread_t, pthread_self, (void))                                        \
    X(int, pthread_mutex_lock, (pthread_mutex_t *))                           \
    X(int, pthread_mutex_unlock, (pthread_mutex_t *))                         \
    X(int, pthread_cond_wait, (pthread_cond_t *, pthread_mutex_t *))          \
    X(int, pthread_cond_signal, (pthread_cond_t *))                           \
    X(int, pthread_kill, (pthread_t, int))

#define GREEN__REAL_FIELD(ret, name, params) ret (*name) params;
struct green__real_table {
    GREEN__REAL_FUNCS(GREEN__REAL_FIELD)
};
#undef GREEN__REAL_FIELD

extern struct green__real_table green__real __attribute__((visibility("hidden")));

/* Resolve every entry (idempotent, thread-safe). An entry libc lacks stays
 * NULL; the hook using it then fails with ENOSYS. */
void green__real_init(void) __attribute__((visibility("hidden")));

#endif

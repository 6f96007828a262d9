/*
 * real.h - the one table of real libc functions: every call libgreen makes
 * to a function it also exports goes through here.
 *
 * Why. libgreen.so exports libc's names (read, write, pthread_mutex_lock,
 * sigaction...) so that, preloaded or linked, the program's calls reach
 * the hooks. A call to `write` from inside libgreen.so would reach the
 * same export: the stack-overflow reporter would park inside a signal
 * handler, the offload pool's mutex would become a green mutex. So the
 * core (libgreen/) and the hooks (hooks/) never name a hooked function;
 * they call green__real.name(...) or GREEN_REAL(name)(...), and
 * tests/check_layers.py fails the build's test suite when an object of the
 * core or of the hooks references one of libgreen.so's libc-named exports.
 *
 * Resolution. Each entry is resolved with dlsym(RTLD_NEXT, name), once,
 * by green__real_init() (idempotent, thread-safe; the preload constructor
 * and the first hub call it, and GREEN_REAL() calls it on first use, so a
 * hook reached before the constructor, from another library's
 * constructor, still works). RTLD_NEXT from libgreen.so finds the
 * definition that would have been used without us: libc's, or a
 * sanitizer's interceptor that itself forwards to libc. From a program
 * that links the core statically (the unit tests) it finds libc's too.
 * The condition-variable functions exist twice in glibc on x86-64 (the
 * 2.2.5 compatibility ABI has another layout); they are looked up by
 * version, GLIBC_2.3.2, where that version exists.
 *
 * Never from a signal handler before the table is resolved: dlsym is not
 * async-signal-safe. Every path that can run in a handler (the overflow
 * reporter, the dump) exists only after a hub, hence the table, exists.
 *
 * Adding a function: one line in GREEN__REAL_FUNCS.
 */
#ifndef GREEN_REAL_H
#define GREEN_REAL_H

#include <locale.h>
#include <mqueue.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <threads.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sem.h>
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
    X(ssize_t, splice, (int, loff_t *, int, loff_t *, size_t, unsigned int))  \
    X(ssize_t, tee, (int, int, size_t, unsigned int))                         \
    X(int, fsync, (int))                                                      \
    X(int, fdatasync, (int))                                                  \
    X(int, syncfs, (int))                                                     \
    X(int, sync_file_range, (int, off64_t, off64_t, unsigned int))            \
    X(int, close_range, (unsigned int, unsigned int, int))                    \
    X(void, closefrom, (int))                                                 \
    X(int, __open_2, (const char *, int))                                     \
    X(int, __openat_2, (int, const char *, int))                              \
    X(ssize_t, __read_chk, (int, void *, size_t, size_t))                     \
    X(ssize_t, __pread_chk, (int, void *, size_t, off_t, size_t))             \
    X(ssize_t, __recv_chk, (int, void *, size_t, size_t, int))                \
    X(ssize_t, __recvfrom_chk, (int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *)) \
    X(ssize_t, pread, (int, void *, size_t, off_t))                           \
    X(ssize_t, pwrite, (int, const void *, size_t, off_t))                    \
    X(int, open, (const char *, int, ...))                                    \
    X(int, openat, (int, const char *, int, ...))                             \
    X(int, close, (int))                                                      \
    X(int, dup, (int))                                                        \
    X(int, dup2, (int, int))                                                  \
    X(int, dup3, (int, int, int))                                             \
    X(int, fcntl, (int, int, ...))                                            \
    X(int, flock, (int, int))                                                 \
    X(int, lockf, (int, int, off_t))                                          \
    X(int, semop, (int, struct sembuf *, size_t))                             \
    X(int, semtimedop, (int, struct sembuf *, size_t, const struct timespec *)) \
    X(int, msgsnd, (int, const void *, size_t, int))                          \
    X(ssize_t, msgrcv, (int, void *, size_t, long, int))                      \
    X(int, mq_send, (mqd_t, const char *, size_t, unsigned))                  \
    X(int, mq_timedsend, (mqd_t, const char *, size_t, unsigned, const struct timespec *)) \
    X(ssize_t, mq_receive, (mqd_t, char *, size_t, unsigned *))               \
    X(ssize_t, mq_timedreceive, (mqd_t, char *, size_t, unsigned *, const struct timespec *)) \
    X(int, ioctl, (int, unsigned long, ...))                                  \
    X(long, syscall, (long, ...))                                             \
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
    X(int, epoll_ctl, (int, int, int, struct epoll_event *))                  \
    X(int, eventfd, (unsigned int, int))                                      \
    X(int, epoll_wait, (int, struct epoll_event *, int, int))                 \
    X(int, epoll_pwait, (int, struct epoll_event *, int, int, const sigset_t *)) \
    X(int, epoll_pwait2, (int, struct epoll_event *, int, const struct timespec *, const sigset_t *)) \
    X(unsigned int, sleep, (unsigned int))                                    \
    X(int, usleep, (useconds_t))                                              \
    X(int, nanosleep, (const struct timespec *, struct timespec *))           \
    X(int, clock_nanosleep, (clockid_t, int, const struct timespec *, struct timespec *)) \
    X(int, clock_gettime, (clockid_t, struct timespec *))                     \
    X(int, clock_getres, (clockid_t, struct timespec *))                      \
    X(int, timer_create, (clockid_t, struct sigevent *, timer_t *))           \
    X(int, getrusage, (int, struct rusage *))                                 \
    X(int, sched_yield, (void))                                               \
    X(locale_t, uselocale, (locale_t))                                        \
    X(char *, fgets, (char *, int, FILE *))                                   \
    X(char *, __fgets_chk, (char *, size_t, int, FILE *))                     \
    X(int, fgetc, (FILE *))                                                   \
    X(int, getc, (FILE *))                                                    \
    X(int, _IO_getc, (FILE *))                                                \
    X(size_t, fread, (void *, size_t, size_t, FILE *))                        \
    X(size_t, __fread_chk, (void *, size_t, size_t, size_t, FILE *))          \
    X(ssize_t, getline, (char **, size_t *, FILE *))                          \
    X(ssize_t, getdelim, (char **, size_t *, int, FILE *))                    \
    X(ssize_t, __getdelim, (char **, size_t *, int, FILE *))                  \
    X(int, vfscanf, (FILE *, const char *, va_list))                          \
    X(int, __isoc99_vfscanf, (FILE *, const char *, va_list))                 \
    X(int, ungetc, (int, FILE *))                                             \
    X(int, getchar, (void))                                                   \
    X(int, fgetc_unlocked, (FILE *))                                          \
    X(int, getc_unlocked, (FILE *))                                           \
    X(int, getchar_unlocked, (void))                                          \
    X(int, __uflow, (FILE *))                                                 \
    X(int, __underflow, (FILE *))                                             \
    X(char *, fgets_unlocked, (char *, int, FILE *))                          \
    X(char *, __fgets_unlocked_chk, (char *, size_t, int, FILE *))            \
    X(size_t, fread_unlocked, (void *, size_t, size_t, FILE *))               \
    X(size_t, __fread_unlocked_chk, (void *, size_t, size_t, size_t, FILE *)) \
    X(int, getw, (FILE *))                                                    \
    X(int, fputs, (const char *, FILE *))                                     \
    X(int, fputc, (int, FILE *))                                              \
    X(int, putc, (int, FILE *))                                               \
    X(int, _IO_putc, (int, FILE *))                                           \
    X(int, putw, (int, FILE *))                                               \
    X(int, puts, (const char *))                                              \
    X(int, putchar, (int))                                                    \
    X(int, fputc_unlocked, (int, FILE *))                                     \
    X(int, putc_unlocked, (int, FILE *))                                      \
    X(int, putchar_unlocked, (int))                                           \
    X(int, __overflow, (FILE *, int))                                         \
    X(int, fputs_unlocked, (const char *, FILE *))                            \
    X(size_t, fwrite_unlocked, (const void *, size_t, size_t, FILE *))        \
    X(int, fflush_unlocked, (FILE *))                                         \
    X(int, vprintf, (const char *, va_list))                                  \
    X(int, __vprintf_chk, (int, const char *, va_list))                       \
    X(size_t, fwrite, (const void *, size_t, size_t, FILE *))                 \
    X(int, vfprintf, (FILE *, const char *, va_list))                         \
    X(int, __vfprintf_chk, (FILE *, int, const char *, va_list))              \
    X(int, fseek, (FILE *, long, int))                                        \
    X(int, fseeko, (FILE *, off_t, int))                                      \
    X(int, fseeko64, (FILE *, off64_t, int))                                  \
    X(long, ftell, (FILE *))                                                  \
    X(off_t, ftello, (FILE *))                                                \
    X(off64_t, ftello64, (FILE *))                                            \
    X(void, rewind, (FILE *))                                                 \
    X(int, fgetpos, (FILE *, fpos_t *))                                       \
    X(int, fsetpos, (FILE *, const fpos_t *))                                 \
    X(int, fgetpos64, (FILE *, fpos64_t *))                                   \
    X(int, fsetpos64, (FILE *, const fpos64_t *))                             \
    X(int, setvbuf, (FILE *, char *, int, size_t))                            \
    X(void, setbuf, (FILE *, char *))                                         \
    X(void, setbuffer, (FILE *, char *, size_t))                              \
    X(void, setlinebuf, (FILE *))                                             \
    X(int, feof, (FILE *))                                                    \
    X(int, ferror, (FILE *))                                                  \
    X(void, clearerr, (FILE *))                                               \
    X(int, fflush, (FILE *))                                                  \
    X(int, fclose, (FILE *))                                                  \
    X(void, perror, (const char *))                                           \
    X(int, vdprintf, (int, const char *, va_list))                            \
    X(void, vwarn, (const char *, va_list))                                   \
    X(void, vwarnx, (const char *, va_list))                                  \
    X(FILE *, fopen, (const char *, const char *))                            \
    X(FILE *, fopen64, (const char *, const char *))                          \
    X(FILE *, freopen, (const char *, const char *, FILE *))                  \
    X(FILE *, freopen64, (const char *, const char *, FILE *))                \
    X(FILE *, tmpfile, (void))                                                \
    X(FILE *, tmpfile64, (void))                                              \
    X(void, flockfile, (FILE *))                                              \
    X(void, funlockfile, (FILE *))                                            \
    X(int, ftrylockfile, (FILE *))                                            \
    X(int, getaddrinfo, (const char *, const char *, const struct addrinfo *, struct addrinfo **)) \
    X(int, getnameinfo, (const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int)) \
    X(struct hostent *, gethostbyname, (const char *))                        \
    X(struct hostent *, gethostbyname2, (const char *, int))                  \
    X(int, gethostbyname_r, (const char *, struct hostent *, char *, size_t, struct hostent **, int *)) \
    X(int, gethostbyname2_r, (const char *, int, struct hostent *, char *, size_t, struct hostent **, int *)) \
    X(struct hostent *, gethostbyaddr, (const void *, socklen_t, int))        \
    X(int, gethostbyaddr_r, (const void *, socklen_t, int, struct hostent *, char *, size_t, struct hostent **, int *)) \
    X(pid_t, fork, (void))                                                    \
    X(int, clone, (int (*)(void *), void *, int, void *, ...))                \
    X(pid_t, waitpid, (pid_t, int *, int))                                    \
    X(pid_t, wait, (int *))                                                   \
    X(pid_t, wait4, (pid_t, int *, int, struct rusage *))                     \
    X(int, waitid, (idtype_t, id_t, siginfo_t *, int))                        \
    X(int, system, (const char *))                                            \
    X(int, execve, (const char *, char *const *, char *const *))              \
    X(int, execv, (const char *, char *const *))                              \
    X(int, execvp, (const char *, char *const *))                             \
    X(int, execvpe, (const char *, char *const *, char *const *))             \
    X(int, fexecve, (int, char *const *, char *const *))                      \
    X(int, pclose, (FILE *))                                                  \
    X(FILE *, popen, (const char *, const char *))                            \
    X(FILE *, fdopen, (int, const char *))                                    \
    X(int, posix_spawn, (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *, char *const *, char *const *)) \
    X(int, posix_spawnp, (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *, char *const *, char *const *)) \
    X(int, sched_getscheduler, (pid_t))                                       \
    X(int, prctl, (int, ...))                                                 \
    X(int, sigaltstack, (const stack_t *, stack_t *))                         \
    X(int, sched_setscheduler, (pid_t, int, const struct sched_param *))      \
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
    X(int, pthread_kill, (pthread_t, int))                                    \
    X(int, pthread_tryjoin_np, (pthread_t, void **))                          \
    X(int, pthread_timedjoin_np, (pthread_t, void **, const struct timespec *)) \
    X(int, pthread_clockjoin_np, (pthread_t, void **, clockid_t, const struct timespec *)) \
    X(void, pthread_exit, (void *))                                           \
    X(int, pthread_equal, (pthread_t, pthread_t))                             \
    X(int, pthread_setname_np, (pthread_t, const char *))                     \
    X(int, pthread_getname_np, (pthread_t, char *, size_t))                   \
    X(int, pthread_getattr_np, (pthread_t, pthread_attr_t *))                 \
    X(int, pthread_key_create, (pthread_key_t *, void (*)(void *)))           \
    X(int, pthread_key_delete, (pthread_key_t))                               \
    X(void *, pthread_getspecific, (pthread_key_t))                           \
    X(int, pthread_setspecific, (pthread_key_t, const void *))                \
    X(int, pthread_once, (pthread_once_t *, void (*)(void)))                  \
    X(int, __register_atfork, (void (*)(void), void (*)(void), void (*)(void), void *)) \
    X(int, pthread_setschedparam, (pthread_t, int, const struct sched_param *)) \
    X(int, pthread_getschedparam, (pthread_t, int *, struct sched_param *))   \
    X(int, pthread_setschedprio, (pthread_t, int))                            \
    X(int, pthread_setaffinity_np, (pthread_t, size_t, const cpu_set_t *))    \
    X(int, pthread_getaffinity_np, (pthread_t, size_t, cpu_set_t *))          \
    X(int, pthread_getcpuclockid, (pthread_t, clockid_t *))                   \
    X(int, pthread_cancel, (pthread_t))                                       \
    X(int, pthread_setcancelstate, (int, int *))                              \
    X(int, pthread_setcanceltype, (int, int *))                               \
    X(void, pthread_testcancel, (void))                                       \
    X(int, pthread_mutex_init, (pthread_mutex_t *, const pthread_mutexattr_t *)) \
    X(int, pthread_mutex_destroy, (pthread_mutex_t *))                        \
    X(int, pthread_mutex_trylock, (pthread_mutex_t *))                        \
    X(int, pthread_mutex_timedlock, (pthread_mutex_t *, const struct timespec *)) \
    X(int, pthread_mutex_clocklock, (pthread_mutex_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_mutex_consistent, (pthread_mutex_t *))                     \
    X(int, pthread_cond_init, (pthread_cond_t *, const pthread_condattr_t *)) \
    X(int, pthread_cond_destroy, (pthread_cond_t *))                          \
    X(int, pthread_cond_timedwait, (pthread_cond_t *, pthread_mutex_t *, const struct timespec *)) \
    X(int, pthread_cond_clockwait, (pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_cond_broadcast, (pthread_cond_t *))                        \
    X(int, pthread_rwlock_init, (pthread_rwlock_t *, const pthread_rwlockattr_t *)) \
    X(int, pthread_rwlock_destroy, (pthread_rwlock_t *))                      \
    X(int, pthread_rwlock_rdlock, (pthread_rwlock_t *))                       \
    X(int, pthread_rwlock_tryrdlock, (pthread_rwlock_t *))                    \
    X(int, pthread_rwlock_timedrdlock, (pthread_rwlock_t *, const struct timespec *)) \
    X(int, pthread_rwlock_clockrdlock, (pthread_rwlock_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_rwlock_wrlock, (pthread_rwlock_t *))                       \
    X(int, pthread_rwlock_trywrlock, (pthread_rwlock_t *))                    \
    X(int, pthread_rwlock_timedwrlock, (pthread_rwlock_t *, const struct timespec *)) \
    X(int, pthread_rwlock_clockwrlock, (pthread_rwlock_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_rwlock_unlock, (pthread_rwlock_t *))                       \
    X(int, pthread_barrier_init, (pthread_barrier_t *, const pthread_barrierattr_t *, unsigned)) \
    X(int, pthread_barrier_destroy, (pthread_barrier_t *))                    \
    X(int, pthread_barrier_wait, (pthread_barrier_t *))                       \
    X(int, pthread_spin_lock, (pthread_spinlock_t *))                         \
    X(int, pthread_spin_trylock, (pthread_spinlock_t *))                      \
    X(int, pthread_spin_unlock, (pthread_spinlock_t *))                       \
    X(int, sem_init, (sem_t *, int, unsigned))                                \
    X(int, sem_destroy, (sem_t *))                                            \
    X(int, sem_wait, (sem_t *))                                               \
    X(int, sem_trywait, (sem_t *))                                            \
    X(int, sem_timedwait, (sem_t *, const struct timespec *))                 \
    X(int, sem_clockwait, (sem_t *, clockid_t, const struct timespec *))      \
    X(int, sem_post, (sem_t *))                                               \
    X(int, sem_getvalue, (sem_t *, int *))                                    \
    X(int, thrd_create, (thrd_t *, thrd_start_t, void *))                     \
    X(int, thrd_join, (thrd_t, int *))                                        \
    X(int, thrd_detach, (thrd_t))                                             \
    X(void, thrd_exit, (int))                                                 \
    X(thrd_t, thrd_current, (void))                                           \
    X(int, thrd_sleep, (const struct timespec *, struct timespec *))          \
    X(void, thrd_yield, (void))                                               \
    X(int, tss_create, (tss_t *, tss_dtor_t))                                 \
    X(void, tss_delete, (tss_t))                                              \
    X(void *, tss_get, (tss_t))                                               \
    X(int, tss_set, (tss_t, void *))                                          \
    X(void, call_once, (once_flag *, void (*)(void)))                         \
    X(int, mtx_init, (mtx_t *, int))                                          \
    X(void, mtx_destroy, (mtx_t *))                                           \
    X(int, mtx_lock, (mtx_t *))                                               \
    X(int, mtx_trylock, (mtx_t *))                                            \
    X(int, mtx_timedlock, (mtx_t *, const struct timespec *))                 \
    X(int, mtx_unlock, (mtx_t *))                                             \
    X(int, cnd_init, (cnd_t *))                                               \
    X(void, cnd_destroy, (cnd_t *))                                           \
    X(int, cnd_signal, (cnd_t *))                                             \
    X(int, cnd_broadcast, (cnd_t *))                                          \
    X(int, cnd_wait, (cnd_t *, mtx_t *))                                      \
    X(int, cnd_timedwait, (cnd_t *, mtx_t *, const struct timespec *))        \
    X(int, __cxa_thread_atexit_impl, (void (*)(void *), void *, void *))      \
    X(int, dlclose, (void *))                                                 \
    X(void, __pthread_register_cancel, (__pthread_unwind_buf_t *))            \
    X(void, __pthread_unregister_cancel, (__pthread_unwind_buf_t *))          \
    X(void, __pthread_unwind_next, (__pthread_unwind_buf_t *))

#define GREEN__REAL_FIELD(ret, name, params) ret (*name) params;
struct green__real_table {
    GREEN__REAL_FUNCS(GREEN__REAL_FIELD)
};
#undef GREEN__REAL_FIELD

extern struct green__real_table green__real __attribute__((visibility("hidden")));
extern atomic_int green__real_ready __attribute__((visibility("hidden")));

/* Resolve every entry (idempotent, thread-safe). An entry libc lacks stays
 * NULL; the hook using it then fails with ENOSYS. */
void green__real_init(void) __attribute__((visibility("hidden")));

/* syscall(2) without libc's syscall(), which libgreen.so exports: the
 * instruction itself. Same result convention (-1 and errno). Safe in a
 * signal handler and before the table is resolved. green__syscall(n, ...)
 * takes 0 to 6 arguments (the missing ones are 0: a variadic function
 * would read words its caller never passed). */
long green__syscall7(long n, long a, long b, long c, long d, long e, long f)
    __attribute__((visibility("hidden")));
#define GREEN__SYSCALL_PICK(n, a, b, c, d, e, f, ...)                         \
    green__syscall7((long)(n), (long)(a), (long)(b), (long)(c), (long)(d),    \
                    (long)(e), (long)(f))
#define green__syscall(...) GREEN__SYSCALL_PICK(__VA_ARGS__, 0, 0, 0, 0, 0, 0, 0)
/* Streams the file at path (a /proc file) line by line, without the
 * newline, to fn until fn returns true, reading with green__syscall into
 * the caller's buf of size bytes; a line that does not fit in buf is
 * dropped. Returns what fn last returned (false when path cannot be
 * opened). errno is left as it was. */
_Bool green__proc_lines(const char *path, char *buf, unsigned long size,
                        _Bool (*fn)(const char *line, void *arg), void *arg)
    __attribute__((visibility("hidden")));
/* This OS thread's syscall user dispatch selector (hooks/sud.c): 1
 * (BLOCK) while dispatch is on, so that calls made outside libc's text
 * trap; green__syscall7 opens it (0, ALLOW) around its own instruction.
 * Reached through green__sud_sel, set when dispatch is armed and NULL
 * before: under GREEN_TLS=address the thread pointer changes, the
 * address the kernel reads does not. */
extern __thread char green__sud_selector
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
extern __thread char *green__sud_sel
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

/* The real function `name`, the table resolved on first use. */
#define GREEN_REAL(name)                                                      \
    (__builtin_expect(atomic_load_explicit(&green__real_ready,                \
                                           memory_order_acquire) == 2, 1)     \
         ? green__real.name                                                   \
         : (green__real_init(), green__real.name))

#endif

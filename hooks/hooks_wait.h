/*
 * hooks_wait.h - hook logic of the multiplexing waits (wait.c) and the sleeps
 * (sleep.c). Each green_hook_NAME has the signature and the semantics of
 * the libc function NAME; the exported one-liners are in
 * preload/export_wait.c. All of them may switch.
 */
#ifndef GREEN_HOOKS_WAIT_H
#define GREEN_HOOKS_WAIT_H

#include "hooks.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>

#define GREEN__HIDDEN_HOOK __attribute__((visibility("hidden")))

GREEN__HIDDEN_HOOK int green_hook_poll(struct pollfd *fds, nfds_t n, int timeout);
GREEN__HIDDEN_HOOK int green_hook_ppoll(struct pollfd *fds, nfds_t n,
                                        const struct timespec *ts, const sigset_t *mask);
GREEN__HIDDEN_HOOK int green_hook___poll_chk(struct pollfd *fds, nfds_t n, int timeout,
                                             size_t fdslen);
GREEN__HIDDEN_HOOK int green_hook___ppoll_chk(struct pollfd *fds, nfds_t n,
                                              const struct timespec *ts,
                                              const sigset_t *mask, size_t fdslen);
GREEN__HIDDEN_HOOK int green_hook_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
                                         struct timeval *tv);
GREEN__HIDDEN_HOOK int green_hook_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
                                          const struct timespec *ts, const sigset_t *mask);
GREEN__HIDDEN_HOOK int green_hook_epoll_wait(int epfd, struct epoll_event *ev, int max,
                                             int timeout);
GREEN__HIDDEN_HOOK int green_hook_epoll_pwait(int epfd, struct epoll_event *ev, int max,
                                              int timeout, const sigset_t *mask);
GREEN__HIDDEN_HOOK int green_hook_epoll_pwait2(int epfd, struct epoll_event *ev, int max,
                                               const struct timespec *ts,
                                               const sigset_t *mask);
/* epoll_ctl: passes through; an epoll set given a regular file is then
 * waited on by the kernel (wait.c). green__epoll_made: epfd is a new
 * epoll descriptor (a hooked epoll_create). */
GREEN__HIDDEN_HOOK int green_hook_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
GREEN__HIDDEN_HOOK void green__epoll_made(int epfd);

GREEN__HIDDEN_HOOK unsigned int green_hook_sleep(unsigned int seconds);
GREEN__HIDDEN_HOOK int green_hook_usleep(useconds_t usec);
GREEN__HIDDEN_HOOK int green_hook_nanosleep(const struct timespec *req, struct timespec *rem);
/* Returns 0 or an errno value (EINTR, EINVAL, ...), as clock_nanosleep. */
GREEN__HIDDEN_HOOK int green_hook_clock_nanosleep(clockid_t clk, int flags,
                                                  const struct timespec *req,
                                                  struct timespec *rem);
GREEN__HIDDEN_HOOK int green_hook_sched_yield(void);

/* cpuclock.c: thread CPU clocks of green threads. */
GREEN__HIDDEN_HOOK int green_hook_clock_gettime(clockid_t clk, struct timespec *ts);
GREEN__HIDDEN_HOOK int green_hook_clock_getres(clockid_t clk, struct timespec *res);
GREEN__HIDDEN_HOOK int green_hook_timer_create(clockid_t clk, struct sigevent *sev,
                                               timer_t *id);
struct rusage;
GREEN__HIDDEN_HOOK int green_hook_getrusage(int who, struct rusage *ru);

#endif

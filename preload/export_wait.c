/*
 * export_wait.c - the libc names of the waiting, sleeping and signal hooks
 * (hooks/wait.c, hooks/sleep.c, hooks/signal.c). One line each; the logic
 * and its documentation live in hooks/.
 */
#define _GNU_SOURCE
#include "hooks_wait.h"
#include "hooks_signal.h"
#include <sys/resource.h>

#define E GREEN_EXPORT

E int poll(struct pollfd *fds, nfds_t n, int timeout) { return green_hook_poll(fds, n, timeout); }
E int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *m) { return green_hook_ppoll(fds, n, ts, m); }
E int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t len);
E int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t len) { return green_hook___poll_chk(fds, n, timeout, len); }
E int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *m, size_t len);
E int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *m, size_t len) { return green_hook___ppoll_chk(fds, n, ts, m, len); }
E int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv) { return green_hook_select(nfds, r, w, x, tv); }
E int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts, const sigset_t *m) { return green_hook_pselect(nfds, r, w, x, ts, m); }
E int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) { return green_hook_epoll_ctl(epfd, op, fd, ev); }
E int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) { return green_hook_epoll_wait(epfd, ev, max, timeout); }
E int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *m) { return green_hook_epoll_pwait(epfd, ev, max, timeout, m); }
E int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *ts, const sigset_t *m) { return green_hook_epoll_pwait2(epfd, ev, max, ts, m); }

E unsigned int sleep(unsigned int s) { return green_hook_sleep(s); }
E int usleep(useconds_t us) { return green_hook_usleep(us); }
E int nanosleep(const struct timespec *req, struct timespec *rem) { return green_hook_nanosleep(req, rem); }
E int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req, struct timespec *rem) { return green_hook_clock_nanosleep(clk, flags, req, rem); }
E int sched_yield(void) { return green_hook_sched_yield(); }
E int clock_gettime(clockid_t clk, struct timespec *ts) { return green_hook_clock_gettime(clk, ts); }
E int clock_getres(clockid_t clk, struct timespec *res) { return green_hook_clock_getres(clk, res); }
E int timer_create(clockid_t clk, struct sigevent *sev, timer_t *id) { return green_hook_timer_create(clk, sev, id); }
E int getrusage(int who, struct rusage *ru) { return green_hook_getrusage(who, ru); }

E int sigaction(int sig, const struct sigaction *act, struct sigaction *old) { return green_hook_sigaction(sig, act, old); }
E sighandler_t signal(int sig, sighandler_t handler) { return green_hook_signal(sig, handler); }
E int siginterrupt(int sig, int flag) { return green_hook_siginterrupt(sig, flag); }
E int sighold(int sig) { return green_hook_sighold(sig); }
E int sigrelse(int sig) { return green_hook_sigrelse(sig); }
E int sigignore(int sig) { return green_hook_sigignore(sig); }
E sighandler_t sigset(int sig, sighandler_t disp) { return green_hook_sigset(sig, disp); }
E int sigaltstack(const stack_t *ss, stack_t *old) { return green_hook_sigaltstack(ss, old); }
E int pause(void) { return green_hook_pause(); }
E int sigsuspend(const sigset_t *mask) { return green_hook_sigsuspend(mask); }
E int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *ts) { return green_hook_sigtimedwait(set, info, ts); }
E int sigwaitinfo(const sigset_t *set, siginfo_t *info) { return green_hook_sigwaitinfo(set, info); }
E int sigwait(const sigset_t *set, int *sig) { return green_hook_sigwait(set, sig); }
E int sigprocmask(int how, const sigset_t *set, sigset_t *old) { return green_hook_sigprocmask(how, set, old); }
E int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) { return green_hook_pthread_sigmask(how, set, old); }
E int sigpending(sigset_t *set) { return green_hook_sigpending(set); }
E int raise(int sig) { return green_hook_raise(sig); }

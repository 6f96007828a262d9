/*
 * hooks_proc.h - hook logic of name lookups (dns.c) and processes (proc.c).
 * Each green_hook_NAME has the signature and semantics of libc's NAME; the
 * exported one-liners are in preload/export_proc.c. The lookups and the
 * waits may switch.
 */
#ifndef GREEN_HOOKS_PROC_H
#define GREEN_HOOKS_PROC_H

#include "hooks.h"
#include "fdstate.h"
#include <netdb.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

#define GREEN__HIDDEN_PROC __attribute__((visibility("hidden")))

GREEN__HIDDEN_PROC int green_hook_getaddrinfo(const char *node, const char *service,
                                              const struct addrinfo *hints,
                                              struct addrinfo **res);
GREEN__HIDDEN_PROC int green_hook_getnameinfo(const struct sockaddr *sa, socklen_t salen,
                                              char *host, socklen_t hostlen,
                                              char *serv, socklen_t servlen, int flags);
GREEN__HIDDEN_PROC struct hostent *green_hook_gethostbyname(const char *name);
GREEN__HIDDEN_PROC struct hostent *green_hook_gethostbyname2(const char *name, int af);
GREEN__HIDDEN_PROC int green_hook_gethostbyname_r(const char *name, struct hostent *ret,
                                                  char *buf, size_t buflen,
                                                  struct hostent **result, int *h_errnop);
GREEN__HIDDEN_PROC int green_hook_gethostbyname2_r(const char *name, int af,
                                                   struct hostent *ret, char *buf,
                                                   size_t buflen, struct hostent **result,
                                                   int *h_errnop);

GREEN__HIDDEN_PROC struct hostent *green_hook_gethostbyaddr(const void *addr, socklen_t len,
                                                            int type);
GREEN__HIDDEN_PROC int green_hook_gethostbyaddr_r(const void *addr, socklen_t len, int type,
                                                  struct hostent *ret, char *buf,
                                                  size_t buflen, struct hostent **result,
                                                  int *h_errnop);

GREEN__HIDDEN_PROC pid_t green_hook_fork(void);
GREEN__HIDDEN_PROC pid_t green_hook_vfork(void);
GREEN__HIDDEN_PROC int green_hook_clone(int (*fn)(void *), void *stack, int flags, void *arg,
                                        pid_t *ptid, void *tls, pid_t *ctid);
GREEN__HIDDEN_PROC pid_t green_hook_waitpid(pid_t pid, int *status, int options);
GREEN__HIDDEN_PROC pid_t green_hook_wait(int *status);
GREEN__HIDDEN_PROC pid_t green_hook_wait4(pid_t pid, int *status, int options,
                                          struct rusage *ru);
GREEN__HIDDEN_PROC pid_t green_hook_wait3(int *status, int options, struct rusage *ru);
GREEN__HIDDEN_PROC int green_hook_waitid(idtype_t type, id_t id, siginfo_t *info, int options);
GREEN__HIDDEN_PROC int green_hook_system(const char *command);
GREEN__HIDDEN_PROC int green_hook_execve(const char *path, char *const argv[],
                                         char *const envp[]);
GREEN__HIDDEN_PROC int green_hook_execv(const char *path, char *const argv[]);
GREEN__HIDDEN_PROC int green_hook_execvp(const char *file, char *const argv[]);
GREEN__HIDDEN_PROC int green_hook_execvpe(const char *file, char *const argv[],
                                          char *const envp[]);
GREEN__HIDDEN_PROC int green_hook_fexecve(int fd, char *const argv[], char *const envp[]);

/* sched.c: the policy of the hubs' OS threads as the program sees it,
 * and the processes it spawns from libc (libgreen/hubpolicy.c).
 * green__sched_attr_syscall: syscall()'s SYS_sched_getattr and
 * SYS_sched_setattr. */
GREEN__HIDDEN_PROC int green_hook_sched_getscheduler(pid_t pid);
GREEN__HIDDEN_PROC int green_hook_sched_setscheduler(pid_t pid, int policy,
                                                     const struct sched_param *p);
GREEN__HIDDEN_PROC long green__sched_attr_syscall(long nr, long pid, long attr, long a3,
                                                  long a4);
GREEN__HIDDEN_PROC int green_hook_posix_spawn(pid_t *pid, const char *path,
                                              const posix_spawn_file_actions_t *fa,
                                              const posix_spawnattr_t *attr,
                                              char *const argv[], char *const envp[]);
GREEN__HIDDEN_PROC int green_hook_posix_spawnp(pid_t *pid, const char *file,
                                               const posix_spawn_file_actions_t *fa,
                                               const posix_spawnattr_t *attr,
                                               char *const argv[], char *const envp[]);
GREEN__HIDDEN_PROC FILE *green_hook_popen(const char *command, const char *type);

/* The body of execl, execlp and execle: the NULL-terminated arguments
 * from first on become argv_ (an array on the stack, as glibc builds
 * it), ap_ is left after the NULL (execle's envp follows), and the
 * result of call is returned. */
#define GREEN_EXEC_LIST(first, call)                                          \
    do {                                                                      \
        va_list ap_;                                                          \
        size_t n_ = 1;                                                        \
        va_start(ap_, first);                                                 \
        while (va_arg(ap_, const char *))                                     \
            n_++;                                                             \
        va_end(ap_);                                                          \
        char *argv_[n_ + 1];                                                  \
        argv_[0] = (char *)(first);                                           \
        va_start(ap_, first);                                                 \
        for (size_t i_ = 1; i_ <= n_; i_++)                                   \
            argv_[i_] = va_arg(ap_, char *);                                  \
        int r_ = (call);                                                      \
        va_end(ap_);                                                          \
        return r_;                                                            \
    } while (0)
GREEN__HIDDEN_PROC int green_hook_pclose(FILE *f);

#endif

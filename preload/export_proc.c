/*
 * export_proc.c - the libc names of the name-lookup and process hooks
 * (hooks/dns.c, hooks/proc.c). One line each; the logic and its
 * documentation live in hooks/.
 */
#define _GNU_SOURCE
#include "hooks_proc.h"

#define E GREEN_EXPORT

E int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) { return green_hook_getaddrinfo(node, service, hints, res); }
E int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen, char *serv, socklen_t servlen, int flags) { return green_hook_getnameinfo(sa, salen, host, hostlen, serv, servlen, flags); }
E struct hostent *gethostbyname(const char *name) { return green_hook_gethostbyname(name); }
E struct hostent *gethostbyname2(const char *name, int af) { return green_hook_gethostbyname2(name, af); }
E int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t len, struct hostent **result, int *herr) { return green_hook_gethostbyname_r(name, ret, buf, len, result, herr); }
E int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t len, struct hostent **result, int *herr) { return green_hook_gethostbyname2_r(name, af, ret, buf, len, result, herr); }

E struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type) { return green_hook_gethostbyaddr(addr, len, type); }
E int gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret, char *buf, size_t buflen, struct hostent **result, int *herr) { return green_hook_gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, herr); }

E pid_t fork(void) { return green_hook_fork(); }
E pid_t vfork(void) { return green_hook_vfork(); }
/* The three optional arguments are read as glibc's clone reads them: from
 * their registers, whether flags asks for them or not. */
E int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    pid_t *ptid = va_arg(ap, pid_t *);
    void *tls = va_arg(ap, void *);
    pid_t *ctid = va_arg(ap, pid_t *);
    va_end(ap);
    return green_hook_clone(fn, stack, flags, arg, ptid, tls, ctid);
}
E pid_t waitpid(pid_t pid, int *status, int options) { return green_hook_waitpid(pid, status, options); }
E pid_t wait(int *status) { return green_hook_wait(status); }
E pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru) { return green_hook_wait4(pid, status, options, ru); }
E pid_t wait3(int *status, int options, struct rusage *ru) { return green_hook_wait3(status, options, ru); }
E int waitid(idtype_t type, id_t id, siginfo_t *info, int options) { return green_hook_waitid(type, id, info, options); }
E int system(const char *command) { return green_hook_system(command); }
E int sched_getscheduler(pid_t pid) { return green_hook_sched_getscheduler(pid); }
E int sched_setscheduler(pid_t pid, int policy, const struct sched_param *p) { return green_hook_sched_setscheduler(pid, policy, p); }
E int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) { return green_hook_posix_spawn(pid, path, fa, attr, argv, envp); }
E int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) { return green_hook_posix_spawnp(pid, file, fa, attr, argv, envp); }
E FILE *popen(const char *command, const char *type) { return green_hook_popen(command, type); }
E int execve(const char *path, char *const argv[], char *const envp[]) { return green_hook_execve(path, argv, envp); }
E int execv(const char *path, char *const argv[]) { return green_hook_execv(path, argv); }
E int execvp(const char *file, char *const argv[]) { return green_hook_execvp(file, argv); }
E int execvpe(const char *file, char *const argv[], char *const envp[]) { return green_hook_execvpe(file, argv, envp); }
E int fexecve(int fd, char *const argv[], char *const envp[]) { return green_hook_fexecve(fd, argv, envp); }
/* The list forms: their arguments become an argv here (hooks/proc.c). */
E int execl(const char *path, const char *arg, ...)
{
    GREEN_EXEC_LIST(arg, green_hook_execv(path, argv_));
}
E int execlp(const char *file, const char *arg, ...)
{
    GREEN_EXEC_LIST(arg, green_hook_execvp(file, argv_));
}
E int execle(const char *path, const char *arg, ...)
{
    GREEN_EXEC_LIST(arg, green_hook_execve(path, argv_, va_arg(ap_, char *const *)));
}
E int pclose(FILE *f) { return green_hook_pclose(f); }

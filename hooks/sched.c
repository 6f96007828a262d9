/*
 * sched.c - the program's view of its OS threads' scheduling policy, and
 * the processes it starts, while hubs run under SCHED_BATCH
 * (libgreen/hubpolicy.c has why, and the rules).
 *
 * sched_getscheduler (and sched_getattr through syscall()) of a thread
 * whose policy libgreen set answers SCHED_OTHER, the policy it had and
 * the program would see natively; every other answer is the kernel's.
 * sched_setscheduler (and sched_setattr) go to the kernel; once one
 * succeeds on such a thread the program owns that thread's policy and
 * reads back what it set. sched_getparam needs nothing: SCHED_OTHER and
 * SCHED_BATCH both have priority 0. Which threads: the caller's (pid 0
 * or its own kernel id, which every green thread of a hub shares, as
 * gettid() tells) and the OS threads of the other hubs.
 *
 * posix_spawn, posix_spawnp and popen start the child from the calling
 * OS thread inside libc (glibc's clone, with no hook on the way): the
 * thread is switched to SCHED_OTHER for the call, so the new program
 * starts with the policy the program sees (two system calls per spawn;
 * the OS thread blocks in the call, so no other green thread runs under
 * the switched policy). exec and system are in proc.c.
 */
#define _GNU_SOURCE
#include "hooks_proc.h"
#include "io.h"
#include <sched.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/syscall.h>

int green_hook_sched_getscheduler(pid_t pid)
{
    green__real_init();
    int r = green__real.sched_getscheduler(pid);
    if (r == SCHED_BATCH && green__hubpolicy_ctx(pid))
        return SCHED_OTHER;
    return r;
}

/* After a successful set by the program: the policy is the program's. */
static void owned_by_program(pid_t pid)
{
    struct green__ctx *c = green__hubpolicy_ctx(pid);
    if (c)
        __atomic_store_n(&c->batch, false, __ATOMIC_RELAXED);
}

int green_hook_sched_setscheduler(pid_t pid, int policy, const struct sched_param *p)
{
    green__real_init();
    int r = green__real.sched_setscheduler(pid, policy, p);
    if (r == 0)
        owned_by_program(pid);
    return r;
}

/* struct sched_attr's first fields (linux/sched/types.h). */
struct attr_head {
    uint32_t size;
    uint32_t sched_policy;
};

long green__sched_attr_syscall(long nr, long pid, long attr, long a3, long a4)
{
    long r = GREEN_REAL(syscall)(nr, pid, attr, a3, a4);
    if (r != 0)
        return r;
    if (nr == SYS_sched_setattr) {
        owned_by_program((pid_t)pid);
    } else {
        struct attr_head *h = (struct attr_head *)attr;
        if (h->sched_policy == SCHED_BATCH && green__hubpolicy_ctx((pid_t)pid))
            h->sched_policy = SCHED_OTHER;
    }
    return 0;
}

typedef int spawn_fn(pid_t *, const char *, const posix_spawn_file_actions_t *,
                     const posix_spawnattr_t *, char *const *, char *const *);

/* libc's posix_spawn or posix_spawnp (real) with the calling OS thread
 * under SCHED_OTHER for the call. */
static int spawn_as_seen(spawn_fn *real, pid_t *pid, const char *name,
                         const posix_spawn_file_actions_t *fa,
                         const posix_spawnattr_t *attr, char *const argv[],
                         char *const envp[])
{
    bool batch = green__hubpolicy_suspend();
    green__fdstate_spawn_begin();  /* the child shares our descriptions */
    int r = real(pid, name, fa, attr, argv, envp);
    green__fdstate_spawn_end();
    green__hubpolicy_resume(batch);
    return r;
}

int green_hook_posix_spawn(pid_t *pid, const char *path,
                           const posix_spawn_file_actions_t *fa,
                           const posix_spawnattr_t *attr, char *const argv[],
                           char *const envp[])
{
    green__real_init();
    return spawn_as_seen(green__real.posix_spawn, pid, path, fa, attr, argv, envp);
}

int green_hook_posix_spawnp(pid_t *pid, const char *file,
                            const posix_spawn_file_actions_t *fa,
                            const posix_spawnattr_t *attr, char *const argv[],
                            char *const envp[])
{
    green__real_init();
    return spawn_as_seen(green__real.posix_spawnp, pid, file, fa, attr, argv, envp);
}

FILE *green_hook_popen(const char *command, const char *type)
{
    green__real_init();
    /* A stream whose reads park (hooks/io_stdio.c), spawned through
     * posix_spawn's hook, which does what follows. */
    if ((green__hook_families & GREEN_HOOK_IO) && command && type)
        return green__stdio_popen(command, type);
    bool batch = green__hubpolicy_suspend();
    green__fdstate_spawn_begin();
    FILE *f = green__real.popen(command, type);
    int e = errno;
    green__fdstate_spawn_end();
    green__hubpolicy_resume(batch);
    errno = e;
    return f;
}

/*
 * cases_sched.c - the scheduling policy of the calling thread as the
 * program reads it and sets it, and the policy of the programs it starts.
 *
 * Under the shim the hubs' OS threads run under SCHED_BATCH
 * (libgreen/hubpolicy.c): the program must still read SCHED_OTHER, read
 * back what it sets, and start processes (popen, posix_spawn, system,
 * fork + exec, clone) with the policy it sees. A child's policy is read
 * by the child itself, an awk that prints field 41 of its /proc/self/stat
 * (the kernel's word, not a hook's: the child runs without LD_PRELOAD);
 * a clone()d child, which runs this program's code, is read by the
 * parent from /proc/PID/stat while the child waits in pause.
 */
#include "diff.h"
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* struct sched_attr as the kernel has it (linux/sched/types.h). */
struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t prio;
    uint64_t runtime, deadline, period;
};

static void print_policy(const char *label)
{
    struct sched_param p = { .sched_priority = -1 };
    struct attr a = { 0 };
    long ar = syscall(SYS_sched_getattr, 0, &a, sizeof a, 0);
    int pr = sched_getparam(0, &p);
    int self = sched_getscheduler(0);
    int by_tid = sched_getscheduler((pid_t)syscall(SYS_gettid));
    diff_out("%s: getscheduler(0)=%d getscheduler(tid)=%d getparam=%d/%d getattr=%ld/%u",
             label, self, by_tid, pr, p.sched_priority, ar, a.policy);
}

static void set_policy(const char *label, int policy)
{
    struct sched_param p = { 0 };
    CALL(label, sched_setscheduler(0, policy, &p));
}

/* The child's own policy, as it prints it: "how: N". */
#define CHILD_AWK "{ print \"%s: \" $41 }"

static void children(const char *label)
{
    char prog[64], line[128];
    diff_out("-- %s", label);
    snprintf(prog, sizeof prog, CHILD_AWK, "popen");
    char cmd[160];
    snprintf(cmd, sizeof cmd, "awk '%s' /proc/self/stat", prog);
    FILE *f = popen(cmd, "r");
    if (!f) {
        diff_out("popen: %s", diff_errname(errno));
    } else {
        while (fgets(line, sizeof line, f))
            diff_out("%.*s", (int)strcspn(line, "\n"), line);
        pclose(f);
    }

    /* The others write to our stdout through the child's own write. */
    snprintf(prog, sizeof prog, CHILD_AWK, "posix_spawn");
    char *argv[] = { "awk", prog, "/proc/self/stat", NULL };
    pid_t pid;
    int e = posix_spawnp(&pid, "awk", NULL, NULL, argv, environ);
    if (e)
        diff_out("posix_spawnp: %s", diff_errname(e));
    else
        waitpid(pid, NULL, 0);

    snprintf(prog, sizeof prog, CHILD_AWK, "system");
    snprintf(cmd, sizeof cmd, "awk '%s' /proc/self/stat", prog);
    CALL("system", system(cmd));

    snprintf(prog, sizeof prog, CHILD_AWK, "fork+exec");
    pid = fork();
    if (pid == 0) {
        execvp("awk", argv);
        _exit(127);
    }
    diff_child_status("fork+exec", pid);
}

static char clone_stack[1 << 16] __attribute__((aligned(16)));

static int clone_pause(void *arg)
{
    (void)arg;
    for (;;)
        syscall(SYS_pause);        /* the kernel's: killed by the parent */
    return 0;
}

/* Field 41 (policy) of /proc/PID/stat, or -1. */
static int proc_policy(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');   /* the command may hold spaces */
    int field = 2, policy = -1;
    for (; p && *p; p++)
        if (*p == ' ' && ++field == 41) {
            policy = atoi(p + 1);
            break;
        }
    return policy;
}

static void cloned_child(const char *label)
{
    pid_t pid = clone(clone_pause, clone_stack + sizeof clone_stack, SIGCHLD, NULL);
    if (pid < 0) {
        diff_out("%s: clone %s", label, diff_errname(errno));
        return;
    }
    diff_raw_sleep_ms(20);         /* the child is in pause by then */
    diff_out("%s: cloned child policy %d", label, proc_policy(pid));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

DIFF_CASE(sched, cloned_child_starts_with_the_callers_policy)
{
    cloned_child("as started");
    set_policy("set batch", SCHED_BATCH);
    cloned_child("after batch");
    set_policy("set other", SCHED_OTHER);
    cloned_child("after other");
}

DIFF_CASE(sched, policy_reads_back_what_the_kernel_says)
{
    print_policy("start");
    set_policy("set batch", SCHED_BATCH);
    print_policy("after batch");
    set_policy("set idle", SCHED_IDLE);
    print_policy("after idle");
    set_policy("set other", SCHED_OTHER);
    print_policy("after other");
    struct sched_param bad = { .sched_priority = 5 };
    CALL("other prio 5", sched_setscheduler(0, SCHED_OTHER, &bad));
    CALL("unknown policy", sched_setscheduler(0, 77, &bad));
    print_policy("end");
}

DIFF_CASE(sched, spawned_programs_start_with_the_callers_policy)
{
    unsetenv("LD_PRELOAD");        /* children are plain programs */
    children("as started");
    set_policy("set batch", SCHED_BATCH);
    children("after batch");
    set_policy("set other", SCHED_OTHER);
    children("after other");
}

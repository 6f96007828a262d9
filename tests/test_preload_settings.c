/*
 * test_preload_settings.c - the GREEN_* settings and the greenrun launcher,
 * seen from outside: programs nobody here wrote (grep, sh) run as children
 * with libgreen.so preloaded.
 *
 * A bad value must get one clear line on stderr naming the variable, and
 * the default must be used; a good value must get no message. greenrun
 * must set LD_PRELOAD to the library next to it and refuse unknown options.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <sched.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
    int status;
    char out[8192];
    char err[8192];
};

/* Run argv with env additions (NAME=VALUE strings), collect both outputs. */
static void run(struct run *r, char *const argv[], const char *const *env)
{
    int o[2], e[2];
    cr_assert_eq(pipe(o), 0);
    cr_assert_eq(pipe(e), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]);
        close(e[0]);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    size_t no = 0, ne = 0;
    ssize_t k;
    while ((k = read(o[0], r->out + no, sizeof r->out - 1 - no)) > 0)
        no += (size_t)k;
    while ((k = read(e[0], r->err + ne, sizeof r->err - 1 - ne)) > 0)
        ne += (size_t)k;
    r->out[no] = r->err[ne] = 0;
    close(o[0]);
    close(e[0]);
    cr_assert_eq(waitpid(pid, &r->status, 0), pid);
}

static const char *lib(void)
{
    const char *l = getenv("GREEN_LIB");
    cr_assert(l, "GREEN_LIB is not set (run through meson test)");
    if (getenv("GREEN_SANITIZED"))
        cr_skip_test("sanitizer build: grep and sh are not instrumented and cannot "
                     "load this libgreen.so; the plain build runs these checks");
    return l;
}

/* grep under the shim with one extra variable, counting libgreen in its
 * own maps. A program that neither forks nor starts threads: nothing in it
 * creates a hub, so a message can only come from the start-up checks. */
static void sh_with2(struct run *r, const char *var, const char *var2)
{
    static char pre[4200];
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lib());
    const char *env[] = { pre, var, var2, NULL };
    char *argv[] = { "grep", "-c", "libgreen", "/proc/self/maps", NULL };
    run(r, argv, env);
}

static void sh_with(struct run *r, const char *var)
{
    sh_with2(r, var, NULL);
}

Test(settings, the_library_is_really_preloaded_into_the_child)
{
    struct run r;
    sh_with(&r, "GREEN_LOG_LEVEL=1");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_gt(atoi(r.out), 0, "libgreen.so is not mapped in the child: %s", r.out);
}

Test(settings, every_bad_value_is_named_on_stderr_and_the_run_goes_on)
{
    static const char *const bad[][2] = {
        { "GREEN_STACK_SIZE=abc", "GREEN_STACK_SIZE=\"abc\"" },
        { "GREEN_STACK_SIZE=1K", "GREEN_STACK_SIZE=\"1K\"" },
        { "GREEN_STACK_GUARD=7", "GREEN_STACK_GUARD=\"7\"" },
        { "GREEN_WORKERS=0", "GREEN_WORKERS=\"0\"" },
        { "GREEN_HOOKS=io,bogus", "unknown family \"bogus\"" },
        { "GREEN_LOG_LEVEL=9", "GREEN_LOG_LEVEL=\"9\"" },
        { "GREEN_MONITOR_MS=-5", "GREEN_MONITOR_MS=\"-5\"" },
        { "GREEN_DUMP_SIGNAL=NOPE", "GREEN_DUMP_SIGNAL=\"NOPE\"" },
        { "GREEN_MONITOR_SIGNAL=KILL", "GREEN_MONITOR_SIGNAL=\"KILL\"" },
        { "GREEN_HUBS=0", "GREEN_HUBS=\"0\"" },
        { "GREEN_HUBS=many", "GREEN_HUBS=\"many\"" },
        { "GREEN_HUBS=257", "GREEN_HUBS=\"257\"" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct run r;
        sh_with(&r, bad[i][0]);
        cr_expect_eq(r.status, 0, "%s: the program did not run normally: %s",
                     bad[i][0], r.err);
        cr_expect(strstr(r.err, "libgreen: ") && strstr(r.err, bad[i][1]),
                  "%s: no message naming it; stderr: [%s]", bad[i][0], r.err);
        cr_expect_gt(atoi(r.out), 0, "%s: libgreen.so not mapped", bad[i][0]);
    }
}

Test(settings, good_values_get_no_message)
{
    static const char *const good[] = {
        "GREEN_STACK_SIZE=64K", "GREEN_STACK_GUARD=0", "GREEN_WORKERS=8",
        "GREEN_HOOKS=-thread", "GREEN_HOOKS=io,sleep", "GREEN_LOG_LEVEL=2",
        "GREEN_DUMP_SIGNAL=USR2", "GREEN_MONITOR_SIGNAL=RTMIN+2",
        "GREEN_DUMP_SIGNAL=sigquit", "GREEN_LOG_LEVEL=0", "GREEN_HUBS=1",
        "GREEN_HUBS=256",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        struct run r;
        sh_with(&r, good[i]);
        cr_expect_eq(r.status, 0, "%s: %s", good[i], r.err);
        cr_expect(!strstr(r.err, "libgreen"), "%s: unexpected message: %s", good[i], r.err);
    }
}

static const char *greenrun(void)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s", lib());
    char *d = dirname(path);
    static char g[4300];
    snprintf(g, sizeof g, "%s/greenrun", d);
    cr_assert_eq(access(g, X_OK), 0, "%s is not executable", g);
    return g;
}

Test(settings, greenrun_preloads_the_library_next_to_it_and_sets_variables)
{
    struct run r;
    char *argv[] = { (char *)greenrun(), "-s", "128K", "-w", "3", "--hubs", "3", "--",
                     "sh", "-c", "echo \"$LD_PRELOAD|$GREEN_STACK_SIZE|$GREEN_WORKERS|$GREEN_HUBS\"; "
                     "grep -c libgreen /proc/$$/maps", NULL };
    const char *env[] = { "LD_PRELOAD=", "GREEN_LIB=", NULL };   /* no override */
    run(&r, argv, env);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect(strstr(r.out, "libgreen.so|128K|3|3"), "output: %s", r.out);
    char *nl = strchr(r.out, '\n');
    cr_assert(nl);
    cr_expect_gt(atoi(nl + 1), 0, "libgreen.so not mapped: %s", r.out);
}

Test(settings, greenrun_refuses_an_unknown_option_with_status_2)
{
    struct run r;
    char *argv[] = { (char *)greenrun(), "--bogus", "true", NULL };
    run(&r, argv, NULL);
    cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2, "status %d", r.status);
    cr_expect(strstr(r.err, "unknown option --bogus"), "stderr: %s", r.err);
}

Test(settings, log_level_0_silences_even_a_bad_value)
{
    struct run r;
    sh_with2(&r, "GREEN_LOG_LEVEL=0", "GREEN_WORKERS=abc");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(!strstr(r.err, "libgreen"), "level 0 printed: %s", r.err);
    sh_with2(&r, "GREEN_LOG_LEVEL=1", "GREEN_WORKERS=abc");
    cr_assert(strstr(r.err, "GREEN_WORKERS=\"abc\""), "level 1 hid the error: [%s]", r.err);
}

Test(settings, log_level_3_prints_the_settings_in_force)
{
    struct run r;
    sh_with2(&r, "GREEN_LOG_LEVEL=3", "GREEN_WORKERS=7");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "libgreen: settings: preloaded"), "no settings line: [%s]", r.err);
    cr_assert(strstr(r.err, "hooks=io,sleep,thread,dns,proc"), "hooks: [%s]", r.err);
    cr_assert(strstr(r.err, "workers=7"), "GREEN_WORKERS not in force: [%s]", r.err);
    sh_with2(&r, "GREEN_LOG_LEVEL=3", "GREEN_HOOKS=-thread,+file");
    cr_assert(strstr(r.err, "hooks=io,sleep,dns,file,proc"), "GREEN_HOOKS: [%s]", r.err);
    sh_with(&r, "GREEN_LOG_LEVEL=2");
    cr_assert(!strstr(r.err, "settings:"), "level 2 printed debug: [%s]", r.err);
}

/* The hubs in force, from the settings line of GREEN_LOG_LEVEL=3. */
static int hubs_in_force(const char *err)
{
    const char *p = strstr(err, "hubs=");
    return p ? atoi(p + 5) : -1;
}

Test(settings, hubs_default_to_the_cpus_the_process_may_use_and_obey_green_hubs)
{
    struct run r;
    /* "GREEN_HUBS=" (empty): the default, whatever the suite runs with. */
    sh_with2(&r, "GREEN_LOG_LEVEL=3", "GREEN_HUBS=");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    int cpus = CPU_COUNT(&set);
    int h = hubs_in_force(r.err);
    /* A cgroup CPU quota may make it fewer, never more. */
    cr_expect(h >= 1 && h <= cpus, "hubs=%d with %d CPUs: [%s]", h, cpus, r.err);
    sh_with2(&r, "GREEN_LOG_LEVEL=3", "GREEN_HUBS=3");
    cr_expect_eq(hubs_in_force(r.err), 3, "[%s]", r.err);
    sh_with2(&r, "GREEN_LOG_LEVEL=3", "GREEN_HOOKS=-thread");
    cr_expect_eq(hubs_in_force(r.err), 1, "without green pthreads, one hub: [%s]", r.err);
    if (access("/usr/bin/taskset", X_OK) == 0) {
        /* One CPU allowed: one hub. */
        static char pre[4200];
        snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lib());
        const char *env[] = { "GREEN_LOG_LEVEL=3", "GREEN_HUBS=", NULL };
        char *argv[] = { "taskset", "-c", "0", "env", pre, "true", NULL };
        run(&r, argv, env);
        cr_assert_eq(r.status, 0, "stderr: %s", r.err);
        cr_expect_eq(hubs_in_force(r.err), 1, "one allowed CPU: [%s]", r.err);
    }
}

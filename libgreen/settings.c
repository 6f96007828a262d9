/*
 * settings.c - every GREEN_* environment variable, in one place.
 *
 * What it is. libgreen is configured by the environment only (so that an
 * unmodified program can be tuned from the outside: greenrun's options
 * set these too). Each variable is read here and nowhere else, once per
 * process, the first time any of these runs: the preload constructor
 * (preload/init.c; so a bad value is reported at start), or the first
 * hub's creation (a program linking the core without the constructor).
 *
 *   GREEN_STACK_SIZE     default stack of a green thread, bytes; K/M/G
 *                        suffixes accepted (default: meson option
 *                        default_stack_size; 16K..1G)
 *   GREEN_STACK_GUARD    1 = guard page below each stack (default), 0 = none
 *   GREEN_WORKERS        threads in the offload pool (default 4, 1..256)
 *   GREEN_LOG_LEVEL      0 silent, 1 errors (default), 2 warnings, 3 debug:
 *                        at 3 the effective settings are printed at start
 *   GREEN_MONITOR_MS     report green threads running longer than this many
 *                        milliseconds without yielding (0 = off, default)
 *   GREEN_MONITOR_SIGNAL the signal the monitor uses to ask a stalled OS
 *                        thread for its backtrace (default URG)
 *   GREEN_DUMP_SIGNAL    the signal that prints every green thread to
 *                        stderr (default: none)
 *   GREEN_HOOKS          the hook families switched on; parsed here, for
 *                        the preload constructor (green__settings_hooks)
 *   GREEN_HUBS           under the shim: hubs (OS threads running green
 *                        threads) to spread the program's threads over,
 *                        1..256; default, the CPUs the process may use
 *                        (sched_getaffinity, capped by the cgroup's CPU
 *                        quota). Linked explicitly: not read, the program
 *                        calls green_set_hubs (default 1)
 *   GREEN_TLS            1 = __thread / thread_local variables per green
 *                        thread (tls.c), 0 = per OS thread; address =
 *                        per green thread at addresses of its own (a
 *                        thread pointer per green thread: for programs
 *                        that hand a thread_local's address to another
 *                        thread; loads a thread pointer per switch,
 *                        a system call without FSGSBASE: tls.c);
 *                        default 1 under the shim, 0 linked explicitly
 *   GREEN_HUB_BATCH      1 = the hubs' OS threads run under SCHED_BATCH
 *                        (hubpolicy.c: a woken hub does not preempt the
 *                        thread that woke it), 0 = the kernel's default;
 *                        default 1 under the shim, 0 linked explicitly
 *   GREEN_FD_CACHE       1 = keep the O_NONBLOCK and timeouts of sockets
 *                        this process made and shares with nobody (saves
 *                        two system calls per read that has to wait;
 *                        fdstate.c), 0 = read them from the kernel every
 *                        time (default 1)
 *   GREEN_SYSCALL_DISPATCH 1 = raw system calls made outside libc (inline
 *                        assembly, liburing) trap to libgreen through
 *                        syscall user dispatch and the blocking ones park
 *                        (hooks/sud.c, docs/syscall-dispatch.md); 0 = off
 *                        (default)
 *
 * A signal is a number or a name: URG, USR1, USR2, QUIT, HUP, WINCH, with
 * or without "SIG", or RTMIN+N. A bad value of any variable gets one
 * line on stderr naming the variable and the value (whatever
 * GREEN_LOG_LEVEL says, unless it is 0), and the default is used: a typo
 * never stops a daemon.
 *
 * Rejected: each module reading its own variables (four parsers with four
 * ideas of a bad value, and GREEN_LOG_LEVEL was parsed but never obeyed);
 * a configuration file (the environment is what greenrun and LD_PRELOAD
 * users already pass along to children).
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef GREEN_DEFAULT_STACK_SIZE
#define GREEN_DEFAULT_STACK_SIZE (256 * 1024)
#endif
#ifndef GREEN_DEFAULT_GUARD
#define GREEN_DEFAULT_GUARD 1
#endif

static atomic_size_t default_stack = GREEN_DEFAULT_STACK_SIZE;
int green__default_guard = GREEN_DEFAULT_GUARD;
bool green__block_on_deadlock;
int green__offload_workers = 4;
int green__log_level = 1;
int green__monitor_ms;
int green__monitor_signal = SIGURG;
int green__dump_signal;
int green__sud_setting;
unsigned green__hook_families = GREEN_HOOK_DEFAULT;
bool green__preloaded;
static int tls_setting = -1;       /* GREEN_TLS, -1 when not set */
static int batch_setting = -1;     /* GREEN_HUB_BATCH, -1 when not set */

/* Parse "123", "64K", "8M", "1G". Returns false on anything else. */
static bool parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return false;
    unsigned long long mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
        mul = 1024 * 1024 * 1024, end++;
    if (*end || v > ~0ull / mul)   /* "17179869184G" must not wrap */
        return false;
    *out = (size_t)(v * mul);
    return true;
}

static void read_size(const char *name, size_t lo, size_t hi, size_t *dst)
{
    const char *s = getenv(name);
    size_t v;
    if (!s || !*s)
        return;
    if (!parse_size(s, &v) || v < lo || v > hi) {
        green__log("%s=\"%s\" is not a size between %zu and %zu; using %zu",
                   name, s, lo, hi, *dst);
        return;
    }
    *dst = v;
}

static void read_int(const char *name, long lo, long hi, int *dst)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        green__log("%s=\"%s\" is not a number between %ld and %ld; using %d",
                   name, s, lo, hi, *dst);
        return;
    }
    *dst = (int)v;
}

/* A signal by number or name; -1 if it is neither, or KILL/STOP. */
static int parse_signal(const char *s)
{
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    char *end;
    long v = strtol(s, &end, 10);
    if (end != s && !*end)
        return v > 0 && v < NSIG && v != SIGKILL && v != SIGSTOP ? (int)v : -1;
    static const struct { const char *n; int sig; } names[] = {
        { "URG", SIGURG }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
        { "QUIT", SIGQUIT }, { "HUP", SIGHUP }, { "WINCH", SIGWINCH },
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcasecmp(s, names[i].n))
            return names[i].sig;
    if (!strncasecmp(s, "RTMIN+", 6)) {
        v = strtol(s + 6, &end, 10);
        if (end != s + 6 && !*end && v >= 0 && SIGRTMIN + v <= SIGRTMAX)
            return SIGRTMIN + (int)v;
    }
    return -1;
}

static void read_signal(const char *name, const char *fallback, int *dst)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return;
    int sig = parse_signal(s);
    if (sig < 0) {
        green__log("%s=\"%s\" is not a signal; %s", name, s, fallback);
        return;
    }
    *dst = sig;
}

static void init_settings(void)
{
    /* First, so that a bad value of the others obeys it. */
    read_int("GREEN_LOG_LEVEL", 0, 3, &green__log_level);
    size_t st = atomic_load(&default_stack);
    read_size("GREEN_STACK_SIZE", 16384, 1ul << 30, &st);
    st = (st + green__page_size() - 1) & ~(green__page_size() - 1);
    atomic_store(&default_stack, st);
    read_int("GREEN_STACK_GUARD", 0, 1, &green__default_guard);
    read_int("GREEN_WORKERS", 1, 256, &green__offload_workers);
    read_int("GREEN_MONITOR_MS", 0, 3600000, &green__monitor_ms);
    read_signal("GREEN_MONITOR_SIGNAL", "using SIGURG", &green__monitor_signal);
    read_signal("GREEN_DUMP_SIGNAL", "no dump signal", &green__dump_signal);
    const char *tls = getenv("GREEN_TLS");
    if (tls && *tls) {
        if (!strcmp(tls, "0") || !strcmp(tls, "1"))
            tls_setting = tls[0] - '0';
        else if (!strcmp(tls, "address"))
            tls_setting = 2;
        else
            green__log("GREEN_TLS=\"%s\" is not 0, 1 or address; using the default", tls);
    }
    green__tls_on = tls_setting >= 1;   /* the preload decides the default */
    green__tls_addr = tls_setting == 2;
    read_int("GREEN_SYSCALL_DISPATCH", 0, 1, &green__sud_setting);
    read_int("GREEN_HUB_BATCH", 0, 1, &batch_setting);
    read_int("GREEN_FD_CACHE", 0, 1, &green__fd_cache);
    green__hub_batch = batch_setting == 1;   /* the preload decides the default */
}

/* Read the settings once per process: from the preload constructor (so a
 * bad value is reported at start) or from the first hub's creation. */
void green__settings_once(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    GREEN_REAL(pthread_once)(&once, init_settings);
}

static const struct { const char *name; unsigned bit; } family_names[] = {
    { "io", GREEN_HOOK_IO },         { "sleep", GREEN_HOOK_SLEEP },
    { "thread", GREEN_HOOK_THREAD }, { "dns", GREEN_HOOK_DNS },
    { "file", GREEN_HOOK_FILE },     { "proc", GREEN_HOOK_PROC },
};

static bool family_bit(const char *w, size_t n, unsigned *bit)
{
    if (n == 3 && !strncmp(w, "all", 3)) {
        *bit = ~0u;
        return true;
    }
    for (size_t i = 0; i < sizeof family_names / sizeof *family_names; i++)
        if (strlen(family_names[i].name) == n && !strncmp(w, family_names[i].name, n)) {
            *bit = family_names[i].bit;
            return true;
        }
    return false;
}

/* GREEN_HOOKS: comma-separated families, or "all" / "none"; a leading '-'
 * removes a family from def and a '+' adds one ("-thread"). */
unsigned green__settings_hooks(unsigned def)
{
    const char *s = getenv("GREEN_HOOKS");
    if (!s || !*s)
        return def;
    unsigned set = 0, add = 0, del = 0;
    bool absolute = false;
    if (!strcmp(s, "none"))
        return 0;
    for (const char *p = s; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        bool neg = n && (*p == '-' || *p == '+');
        bool minus = neg && *p == '-';
        unsigned bit;
        if (!family_bit(p + neg, n - neg, &bit)) {
            green__log("GREEN_HOOKS=\"%s\": unknown family \"%.*s\" (known: io, "
                       "sleep, thread, dns, file, proc, all, none); using the "
                       "default", s, (int)n, p);
            return def;
        }
        if (minus)
            del |= bit;
        else if (neg)
            add |= bit;
        else {
            set |= bit;
            absolute = true;
        }
        p = e ? e + 1 : p + n;
    }
    return ((absolute ? set : def) | add) & ~del;
}

/* ------------------------------------------------------------------ hubs */

/* A small file read with raw syscalls (no hook, no stdio lock), NUL
 * terminated; false if it cannot be read. */
static bool read_small(const char *path, char *b, size_t cap)
{
    long fd = green__syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    long n = green__syscall(SYS_read, (int)fd, b, cap - 1);
    green__syscall(SYS_close, (int)fd);
    if (n <= 0)
        return false;
    b[n] = 0;
    return true;
}

/* CPUs the cgroup's quota allows (rounded up), or 0 for no limit: cgroup
 * v2's cpu.max ("max 100000" or "200000 100000"), else v1's
 * cpu.cfs_quota_us / cpu.cfs_period_us, of the process's own cgroup. */
static int cgroup_cpus(void)
{
    char cg[512], path[700], b[128];
    if (!read_small("/proc/self/cgroup", cg, sizeof cg))
        return 0;
    /* v2: the line "0::/path". */
    char *p = strstr(cg, "0::");
    if (p && (p == cg || p[-1] == '\n')) {
        p += 3;
        char *e = strchr(p, '\n');
        if (e)
            *e = 0;
        /* The cgroup itself, then its parents: the tightest quota on the
         * way up counts, as the kernel applies every level. */
        int best = 0;
        for (;;) {
            snprintf(path, sizeof path, "/sys/fs/cgroup%s%scpu.max", p,
                     p[strlen(p) - 1] == '/' ? "" : "/");
            long long q, per;
            if (read_small(path, b, sizeof b) && sscanf(b, "%lld %lld", &q, &per) == 2 &&
                q > 0 && per > 0) {
                int n = (int)((q + per - 1) / per);
                if (!best || n < best)
                    best = n;
            }
            char *slash = strrchr(p, '/');
            if (!slash || slash == p)
                break;
            *slash = 0;
        }
        return best;
    }
    long long q, per;
    if (read_small("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", b, sizeof b) &&
        sscanf(b, "%lld", &q) == 1 && q > 0 &&
        read_small("/sys/fs/cgroup/cpu/cpu.cfs_period_us", b, sizeof b) &&
        sscanf(b, "%lld", &per) == 1 && per > 0)
        return (int)((q + per - 1) / per);
    return 0;
}

int green__settings_cpus(void)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n < 1) {
        long k = sysconf(_SC_NPROCESSORS_ONLN);
        n = k > 0 ? (int)k : 1;
    }
    int q = cgroup_cpus();
    if (q > 0 && q < n)
        n = q;
    return n > GREEN__HUBS_MAX ? GREEN__HUBS_MAX : n;
}

int green__settings_hubs(bool shim)
{
    if (!shim)
        return 1;
    int n = green__settings_cpus();
    read_int("GREEN_HUBS", 1, GREEN__HUBS_MAX, &n);
    return n;
}

bool green__settings_tls(bool shim)
{
    return tls_setting < 0 ? shim : tls_setting >= 1;
}

bool green__settings_batch(bool shim)
{
    return batch_setting < 0 ? shim : batch_setting == 1;
}

/* GREEN_LOG_LEVEL=3: one line with what is in force. */
void green__settings_report(void)
{
    char fam[64] = "";
    size_t n = 0;
    for (size_t i = 0; i < sizeof family_names / sizeof *family_names; i++)
        if (green__hook_families & family_names[i].bit)
            n += (size_t)snprintf(fam + n, sizeof fam - n, "%s%s", n ? "," : "",
                                  family_names[i].name);
    green__debug("settings: %s, hooks=%s, hubs=%d, stack=%zu, guard=%d, workers=%d, "
                 "monitor_ms=%d, monitor_signal=%d, dump_signal=%d, tls=%d, "
                 "syscall_dispatch=%d, hub_batch=%d, fd_cache=%d",
                 green__preloaded ? "preloaded" : "linked", n ? fam : "none",
                 green__hubs_want, green_default_stack_size(), green__default_guard,
                 green__offload_workers, green__monitor_ms,
                 green__monitor_signal, green__dump_signal, green__tls_on,
                 green__sud_setting, green__hub_batch, green__fd_cache);
}

int green_set_default_stack_size(size_t bytes)
{
    if (bytes < 16384 || bytes > (1ul << 30)) {
        errno = EINVAL;
        return -1;
    }
    size_t pg = green__page_size();
    atomic_store(&default_stack, (bytes + pg - 1) & ~(pg - 1));
    return 0;
}

size_t green_default_stack_size(void)
{
    return atomic_load(&default_stack);
}

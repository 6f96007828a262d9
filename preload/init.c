/*
 * init.c - what makes libgreen.so a drop-in: the constructor that reads
 * the GREEN_* settings of the shim and switches the hook families on.
 *
 * Settings (all optional; a bad value gets one line on stderr naming the
 * variable, and the default is used). The core reads GREEN_STACK_SIZE,
 * GREEN_STACK_GUARD and GREEN_WORKERS itself (libgreen/settings.c).
 *
 *   GREEN_HOOKS       comma-separated families to switch on: io, sleep,
 *                     thread, dns, file, proc, or "all" / "none"; a leading
 *                     '-' removes a family from the default ("-thread").
 *                     Default under LD_PRELOAD: io,sleep,thread,dns,proc.
 *                     Default when linked explicitly: io,sleep,dns,proc
 *                     (pthreads stay OS threads, like gevent's
 *                     patch_all(thread=False)).
 *   GREEN_LOG_LEVEL   0 silent, 1 errors (default), 2 warnings, 3 debug.
 *   GREEN_MONITOR_MS  report green threads running longer than this many
 *                     milliseconds without yielding (0 = off, default).
 *   GREEN_DUMP_SIGNAL signal number (or name, e.g. USR2) that prints every
 *                     green thread to stderr (default: none).
 *
 * The shim is detected by LD_PRELOAD naming libgreen (greenrun sets it), so
 * children exec'd by a preloaded program behave the same.
 */
#define _GNU_SOURCE
#include "hooks.h"
#include <signal.h>
#include <string.h>
#include <strings.h>

int green__log_level = 1;

/* Optional modules (monitor.c) define these; weak so the preload links
 * without them. */
__attribute__((weak)) int green__monitor_start(int ms);
__attribute__((weak)) int green__dump_signal_install(int sig);

static const struct { const char *name; unsigned bit; } family_names[] = {
    { "io", GREEN_HOOK_IO },       { "sleep", GREEN_HOOK_SLEEP },
    { "thread", GREEN_HOOK_THREAD }, { "dns", GREEN_HOOK_DNS },
    { "file", GREEN_HOOK_FILE },   { "proc", GREEN_HOOK_PROC },
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

/* Parse GREEN_HOOKS into a family mask, starting from def. */
static unsigned parse_hooks(const char *s, unsigned def)
{
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

static int parse_signal(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*end && end != s && v > 0 && v < NSIG)
        return (int)v;
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    static const struct { const char *n; int sig; } sigs[] = {
        { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "QUIT", SIGQUIT },
        { "HUP", SIGHUP }, { "WINCH", SIGWINCH }, { "URG", SIGURG },
    };
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        if (!strcasecmp(s, sigs[i].n))
            return sigs[i].sig;
    return -1;
}

static int env_int(const char *name, int lo, int hi, int def)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return def;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < lo || v > hi) {
        green__log("%s=\"%s\" is not a number between %d and %d; using %d",
                   name, s, lo, hi, def);
        return def;
    }
    return (int)v;
}

__attribute__((constructor(101))) static void green_preload_init(void)
{
    green__real_init();
    green__settings_once();   /* GREEN_STACK_SIZE & co.: report bad values now */
    const char *pre = getenv("LD_PRELOAD");
    green__preloaded = pre && strstr(pre, "libgreen");
    unsigned def = GREEN_HOOK_DEFAULT | (green__preloaded ? GREEN_HOOK_THREAD : 0);
    const char *h = getenv("GREEN_HOOKS");
    green__hook_families = h && *h ? parse_hooks(h, def) : def;
    green__block_on_deadlock = green__preloaded;
    green__log_level = env_int("GREEN_LOG_LEVEL", 0, 3, 1);
    int ms = env_int("GREEN_MONITOR_MS", 0, 3600000, 0);
    if (ms > 0) {
        if (green__monitor_start)
            green__monitor_start(ms);
        else
            green__log("GREEN_MONITOR_MS is set but this build has no monitor");
    }
    const char *ds = getenv("GREEN_DUMP_SIGNAL");
    if (ds && *ds) {
        int sig = parse_signal(ds);
        if (sig < 0)
            green__log("GREEN_DUMP_SIGNAL=\"%s\" is not a signal; no dump signal", ds);
        else if (green__dump_signal_install)
            green__dump_signal_install(sig);
    }
}

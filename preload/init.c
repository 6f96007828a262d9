/*
 * init.c - what makes libgreen.so a drop-in: the constructor that reads
 * the settings (libgreen/settings.c: every GREEN_* variable, with its
 * default, is documented there and in README) and switches the hook
 * families on.
 *
 * GREEN_HOOKS defaults: under LD_PRELOAD io,sleep,thread,dns,proc; when
 * linked explicitly io,sleep,dns,proc (pthreads stay OS threads, like
 * gevent's patch_all(thread=False)).
 *
 * The shim is detected by LD_PRELOAD naming libgreen (greenrun sets it), so
 * children exec'd by a preloaded program behave the same.
 */
#define _GNU_SOURCE
#include "hooks.h"
#include <string.h>

__attribute__((constructor(101))) static void green_preload_init(void)
{
    green__real_init();
    green__settings_once();   /* every GREEN_* variable: bad values reported now */
    const char *pre = getenv("LD_PRELOAD");
    green__preloaded = pre && strstr(pre, "libgreen");
    green__hook_families = green__settings_hooks(
        GREEN_HOOK_DEFAULT | (green__preloaded ? GREEN_HOOK_THREAD : 0));
    green__block_on_deadlock = green__preloaded;
    green__tls_on = green__settings_tls(green__preloaded);
    green__hub_batch = green__settings_batch(
        green__preloaded && (green__hook_families & GREEN_HOOK_THREAD));
    green__hubs_want = green__settings_hubs(
        green__preloaded && (green__hook_families & GREEN_HOOK_THREAD));
    green__settings_report();
    if (green__monitor_ms > 0)
        green__monitor_start(green__monitor_ms);
    if (green__dump_signal > 0)
        green__dump_signal_install(green__dump_signal);
}

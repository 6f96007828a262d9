/*
 * tls_atexit.c - C++ thread_local destructors follow the green thread.
 *
 * What it is. A thread_local object with a destructor is registered, on
 * its first use in a thread, through glibc's __cxa_thread_atexit_impl
 * (libstdc++'s __cxa_thread_atexit calls it), and glibc runs the OS
 * thread's list when that thread exits. Under the shim a green thread is
 * not an OS thread: with GREEN_TLS on, its thread_local objects are its
 * own (libgreen/tls.c swaps their storage), so their destructors must run
 * when it ends, not when its hub's OS thread does (never, for a hub), and
 * on its own objects. This hook hands a green thread's registration to
 * tls.c's per-thread list (run newest first when the thread ends, and for
 * the caller of exit()); everything else passes through to glibc: plain
 * OS threads, the hub, and every thread while nothing is swapped
 * (GREEN_TLS=0: the objects are the OS thread's, so are the destructors).
 *
 * dlclose. A module unloaded while green threads run must leave the
 * swap before its next copy (the block may be freed, the image unmapped):
 * the real dlclose runs between green__tls_unload_begin, which waits
 * until no hub is inside a swap and keeps later swaps off dlopen'd
 * modules, and green__tls_unload_end, which moves tls.c's unload count so
 * that every hub's next swap rescans (libgreen/tls.c, "dlclose and the
 * other hubs"). dlclose has no caller-dependent behaviour, so passing it
 * through changes nothing else (dlopen has, and is not interposed).
 *
 * uselocale. libc keeps the thread's locale in its own thread-local
 * block, the OS thread's: the hook records the calling green thread's
 * locale after the real call, and every switch installs the next one's
 * (libgreen/tls.c, "Locales"). Plain OS threads and the hub pass through.
 *
 * Rejected: running the list from the pthread layer's exit path only (a
 * green_spawn'd thread of a program linked explicitly with GREEN_TLS=1
 * ends through the same finish, lifecycle.c, which now runs it for all).
 */
#define _GNU_SOURCE
#include "hooks_tls.h"

int green_hook___cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso)
{
    int r = green__tls_atexit(fn, obj, dso);
    if (r > 0)
        return 0;
    if (r < 0)
        return -1;
    return GREEN_REAL(__cxa_thread_atexit_impl)(fn, obj, dso);
}

int green_hook_dlclose(void *handle)
{
    bool tls = green__tls_on;
    if (tls)
        green__tls_unload_begin();
    int r = GREEN_REAL(dlclose)(handle);
    if (tls)
        green__tls_unload_end();
    return r;
}

locale_t green_hook_uselocale(locale_t loc)
{
    locale_t old = GREEN_REAL(uselocale)(loc);
    struct green__ctx *c = green__tls_ctx;
    if (old && loc && c && c->current && c->current != c->hub)
        green__locale_used(c->current, loc);
    return old;
}

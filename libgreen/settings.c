/*
 * settings.c - process-wide defaults of the core, read once from the
 * environment when the first hub is created:
 *
 *   GREEN_STACK_SIZE   default stack of a green thread, bytes; K/M suffixes
 *                      accepted (default: meson option default_stack_size)
 *   GREEN_STACK_GUARD  1 = guard page below each stack (default), 0 = none
 *   GREEN_WORKERS      threads in the offload pool (default 4, 1..256)
 *
 * A bad value gets one clear line on stderr naming the variable, and the
 * default is used.
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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

void green__init_settings(void)
{
    size_t st = atomic_load(&default_stack);
    read_size("GREEN_STACK_SIZE", 16384, 1ul << 30, &st);
    st = (st + green__page_size() - 1) & ~(green__page_size() - 1);
    atomic_store(&default_stack, st);
    read_int("GREEN_STACK_GUARD", 0, 1, &green__default_guard);
    read_int("GREEN_WORKERS", 1, 256, &green__offload_workers);
}

/* Read the settings once per process: from the preload constructor (so a
 * bad value is reported at start) or from the first hub's creation. */
void green__settings_once(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, green__init_settings);
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

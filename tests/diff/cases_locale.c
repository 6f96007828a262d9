/*
 * cases_locale.c - differential cases of the locale family (see diff.h):
 * uselocale(3) is per thread. Each case prints what a thread can see of
 * its locale: whether uselocale((locale_t)0) is the object it set or the
 * global one, MB_CUR_MAX and nl_langinfo(CODESET) (which read the
 * thread's LC_CTYPE), and what mbrtowc makes of a two-byte UTF-8
 * character. The locales are glibc's built-in C and C.UTF-8, present
 * everywhere.
 */
#include "diff.h"
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <unistd.h>
#include <wchar.h>

static locale_t utf8, plain_c;

static void make_locales(void)
{
    utf8 = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    plain_c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    diff_out("newlocale: %s %s", utf8 ? "ok" : "failed", plain_c ? "ok" : "failed");
}

/* What the calling thread sees of its locale. */
static void show(const char *who)
{
    locale_t now = uselocale((locale_t)0);
    const char *which = now == LC_GLOBAL_LOCALE ? "global"
                      : now == utf8             ? "C.UTF-8 object"
                      : now == plain_c          ? "C object" : "other";
    mbstate_t st = { 0 };
    wchar_t wc = 0;
    size_t n = mbrtowc(&wc, "\xc3\xa9", 2, &st);
    diff_out("%s: uselocale(0)=%s MB_CUR_MAX=%zu codeset=%s mbrtowc=%ld wc=%#x", who, which,
             (size_t)MB_CUR_MAX, nl_langinfo(CODESET), (long)n, (unsigned)wc);
}

/* Sets its locale, waits while the case's thread looks at its own, then
 * looks at its own again. */
static void *set_then_wait(void *arg)
{
    locale_t prev = uselocale((locale_t)arg);
    diff_out("thread: uselocale returned %s", prev == LC_GLOBAL_LOCALE ? "global" : "other");
    usleep(100000);
    show("thread after the wait");
    return NULL;
}

static void *look(void *arg)
{
    show((const char *)arg);
    return NULL;
}

DIFF_CASE(locale, another_threads_uselocale_is_not_the_callers)
{
    make_locales();
    show("before");
    pthread_t t = diff_spawn(set_then_wait, utf8);
    usleep(30000);                 /* the thread has set its locale, waits */
    show("while the thread waits");
    CALL("join", pthread_join(t, NULL));
    show("after the join");
    freelocale(utf8);
    freelocale(plain_c);
}

DIFF_CASE(locale, a_new_thread_starts_in_the_global_locale)
{
    make_locales();
    CALL("uselocale set", uselocale(utf8) == LC_GLOBAL_LOCALE);
    pthread_t t = diff_spawn(look, "new thread");
    CALL("join", pthread_join(t, NULL));
    show("creator");
    CALL("uselocale back", uselocale(LC_GLOBAL_LOCALE) == utf8);
    show("creator restored");
    freelocale(utf8);
    freelocale(plain_c);
}

DIFF_CASE(locale, uselocale_returns_the_callers_own_previous_locale)
{
    make_locales();
    CALL("uselocale set", uselocale(utf8) == LC_GLOBAL_LOCALE);
    pthread_t t = diff_spawn(set_then_wait, plain_c);
    usleep(30000);                 /* the thread runs in its C object */
    locale_t prev = uselocale(LC_GLOBAL_LOCALE);
    diff_out("previous: %s", prev == utf8 ? "C.UTF-8 object (own)"
                             : prev == plain_c ? "C object (the other thread's)" : "other");
    show("caller");
    CALL("join", pthread_join(t, NULL));
    freelocale(utf8);
    freelocale(plain_c);
}

/* Many threads, each in its own locale across sleeps: none sees
 * another's. */
static void *own_across_sleeps(void *arg)
{
    long i = (long)(intptr_t)arg;
    locale_t mine = (i & 1) ? utf8 : plain_c;
    uselocale(mine);
    int wrong = 0;
    for (int k = 0; k < 20; k++) {
        usleep(1000 + (useconds_t)(i % 5) * 300);
        wrong += uselocale((locale_t)0) != mine || MB_CUR_MAX != ((i & 1) ? 6u : 1u);
    }
    return (void *)(intptr_t)wrong;
}

DIFF_CASE(locale, twenty_threads_keep_their_own_locales_across_sleeps)
{
    make_locales();
    pthread_t t[20];
    for (long i = 0; i < 20; i++)
        t[i] = diff_spawn(own_across_sleeps, (void *)(intptr_t)i);
    long wrong = 0;
    for (int i = 0; i < 20; i++) {
        void *r;
        pthread_join(t[i], &r);
        wrong += (long)(intptr_t)r;
    }
    diff_out("reads that saw another thread's locale: %ld", wrong);
    show("caller");
    freelocale(utf8);
    freelocale(plain_c);
}

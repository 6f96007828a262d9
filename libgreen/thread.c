/*
 * thread.c - the public green-thread API on top of the scheduler (sched.c):
 * spawn, join, detach, kill, switch, exit, sleep, names, timeout scopes and
 * green-thread-local keys.
 *
 * Handle lifetime follows pthreads: a joinable thread's struct lives until
 * green_join returns its result; a detached thread's struct is freed when it
 * finishes. The stack of any finished thread is recycled at once (lifecycle.c),
 * so a finished-but-unjoined thread costs only its struct.
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <pthread.h>
#include <string.h>
#include <unistd.h>

green_t green_spawn(void *(*fn)(void *), void *arg, const green_attr_t *attr)
{
    if (!fn || (attr && attr->stack_size &&
                (attr->stack_size < 16384 || attr->stack_size > (1ul << 30))) ||
        (attr && (attr->guard < -1 || attr->guard > 2))) {
        errno = EINVAL;
        return NULL;
    }
    int err = 0;
    struct green_thread *t = green__thread_create(fn, arg, attr, &err);
    if (!t)
        errno = err;
    return t;
}

green_t green_self(void)
{
    struct green__ctx *c = green__ctx_get();
    return c ? c->current : NULL;
}

static int join_impl(green_t t, void **result, int64_t deadline)
{
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return -1;
    if (t == c->current) {
        errno = EDEADLK;
        return -1;
    }
    if (t && !t->is_main && !t->is_hub && t->ctx != c)
        return green__result(green__hubs_join(c->current, t, result, deadline));
    if (!t || t->detached || t->joining || t->is_main || t->is_hub) {
        errno = EINVAL;
        return -1;
    }
    if (t->state != GREEN_DONE) {
        t->joining = true;
        int code = green__park(GREEN_WHY_JOIN, (uintptr_t)t, &t->joiners, deadline);
        t->joining = false;
        if (code)
            return green__result(code);
        green__assert("thread", t->state == GREEN_DONE);
    }
    if (result)
        *result = t->result;
    green__thread_free(t);
    return 0;
}

int green_join(green_t t, void **result)
{
    return join_impl(t, result, GREEN_FOREVER);
}

int green_join_timeout(green_t t, void **result, int64_t timeout_ns)
{
    return join_impl(t, result, green__deadline(timeout_ns));
}

int green_detach(green_t t)
{
    if (t && !t->is_main && !t->is_hub && t->ctx != green__tls_ctx)
        return green__result(green__hubs_detach(t));
    if (!t || t->detached || t->joining || t->is_main || t->is_hub) {
        errno = EINVAL;
        return -1;
    }
    if (t->state == GREEN_DONE) {
        green__thread_free(t);
        return 0;
    }
    t->detached = true;
    return 0;
}

int green_kill(green_t t)
{
    if (!t || t->is_hub) {
        errno = EINVAL;
        return -1;
    }
    /* Only t's own hub touches t: a post when that is another one. */
    if (t->ctx != green__tls_ctx)
        return green__result(green__hubs_kill(t));
    green__thread_kill(t);
    return 0;
}

bool green_killed(void)
{
    struct green_thread *t = green__current();
    return t && t->killed;
}

int green_switch(green_t t, void *value, void **received)
{
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return -1;
    if (!t || t == c->current || t->is_hub || t->ctx != c) {
        errno = EINVAL;
        return -1;
    }
    if (!(t->state == GREEN_NEW ||
          (t->state == GREEN_PARKED && t->why == GREEN_WHY_SWITCH))) {
        errno = EBUSY;
        return -1;
    }
    struct green_thread *self = c->current;
    int code = green__switch_direct(t, value);
    if (code)
        return green__result(code);
    if (received)
        *received = self->switch_value;
    self->switch_value = NULL;
    return 0;
}

void *green_switch_value(void)
{
    struct green_thread *t = green__current();
    return t ? t->switch_value : NULL;
}

/* Wait until every green thread other than the caller has finished. */
static int wait_all_done(struct green__ctx *c)
{
    while (c->nthreads > (c->current->is_main ? 0u : 1u) ||
           green__hubs_others_live(c) > 0) {
        int code = green__park(GREEN_WHY_OTHER, 0, &c->all_done, GREEN_FOREVER);
        if (code)
            return code;
    }
    return 0;
}

int green_run(void)
{
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return -1;
    return green__result(wait_all_done(c));
}

_Noreturn void green_exit(void *result)
{
    struct green__ctx *c = green__ctx_get();
    if (!c || c->current->is_main) {
        /* As pthread_exit in main: live until the last thread ends. A
         * deadlock (EDEADLK) ends the wait too: nothing could run again. */
        if (c) {
            while (wait_all_done(c) == ECANCELED)
                ;
        }
        if (green__is_main_os_thread())
            exit(0);
        GREEN_REAL(pthread_exit)(result);
    }
    green__thread_finish(c->current, result);
}

int green_sleep_until(int64_t deadline_ns)
{
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return -1;
    if (deadline_ns < 0) {
        errno = EINVAL;
        return -1;
    }
    int code = green__park(GREEN_WHY_SLEEP, 0, NULL, deadline_ns);
    if (code == ETIMEDOUT) {
        /* Our own deadline, unless an enclosing scope expired first. */
        struct green_thread *t = c->current;
        for (green_timeout_t *s = t->scopes; s; s = s->outer)
            if (s->expired && s->deadline < deadline_ns)
                return green__result(ETIMEDOUT);
        return 0;
    }
    return green__result(code);
}

int green_sleep(int64_t ns)
{
    if (ns < 0) {
        errno = EINVAL;
        return -1;
    }
    if (ns == 0)
        return green_yield();
    return green_sleep_until(green_now() + ns);
}

uint64_t green_id(green_t t)
{
    return t ? t->id : 0;
}

const char *green_name(green_t t)
{
    return t ? t->name : NULL;
}

int green_setname(green_t t, const char *name)
{
    if (!t || !name) {
        errno = EINVAL;
        return -1;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    return 0;
}

/* -------------------------------------------------------- timeout scopes */

int green_timeout_begin(green_timeout_t *scope, int64_t timeout_ns)
{
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return -1;
    if (!scope || timeout_ns < -1) {
        errno = EINVAL;
        return -1;
    }
    scope->deadline = green__deadline(timeout_ns);
    scope->expired = false;
    scope->outer = c->current->scopes;
    c->current->scopes = scope;
    return 0;
}

bool green_timeout_end(green_timeout_t *scope)
{
    struct green_thread *t = green__current();
    green__assert("timeout", t && t->scopes == scope);
    t->scopes = scope->outer;
    return scope->expired;
}

/* ---------------------------------------------------------- local keys */

/* Key slots are process-wide (a key made on one OS thread is valid on all,
 * as pthread keys are). seq detects a deleted-and-recreated key. */
static struct {
    atomic_bool used;
    void (*destructor)(void *);
} keys[GREEN__KEYS_MAX];

int green_key_create(green_key_t *key, void (*destructor)(void *))
{
    if (!key) {
        errno = EINVAL;
        return -1;
    }
    for (unsigned i = 0; i < GREEN__KEYS_MAX; i++) {
        bool expect = false;
        if (atomic_compare_exchange_strong(&keys[i].used, &expect, true)) {
            keys[i].destructor = destructor;
            *key = i;
            return 0;
        }
    }
    errno = EAGAIN;
    return -1;
}

int green_key_delete(green_key_t key)
{
    if (key >= GREEN__KEYS_MAX || !atomic_load(&keys[key].used)) {
        errno = EINVAL;
        return -1;
    }
    keys[key].destructor = NULL;
    atomic_store(&keys[key].used, false);
    return 0;
}

void *green_getspecific(green_key_t key)
{
    struct green_thread *t = green__current();
    if (!t || key >= GREEN__KEYS_MAX || !t->locals)
        return NULL;
    return t->locals[key];
}

int green_setspecific(green_key_t key, const void *value)
{
    struct green__ctx *c = green__ctx_get();
    if (!c)
        return -1;
    if (key >= GREEN__KEYS_MAX || !atomic_load(&keys[key].used)) {
        errno = EINVAL;
        return -1;
    }
    struct green_thread *t = c->current;
    if (!t->locals) {
        if (!value)
            return 0;
        t->locals = calloc(GREEN__KEYS_MAX, sizeof *t->locals);
        if (!t->locals) {
            errno = ENOMEM;
            return -1;
        }
    }
    t->locals[key] = (void *)value;
    return 0;
}

/* As pthreads: up to 4 rounds, since a destructor may set values again. */
void green__locals_run_destructors(struct green_thread *t)
{
    if (!t->locals)
        return;
    for (int round = 0; round < 4; round++) {
        bool any = false;
        for (unsigned i = 0; i < GREEN__KEYS_MAX; i++) {
            void *v = t->locals[i];
            void (*d)(void *) = keys[i].destructor;
            if (v && d && atomic_load(&keys[i].used)) {
                t->locals[i] = NULL;
                d(v);
                any = true;
            }
        }
        if (!any)
            break;
    }
}

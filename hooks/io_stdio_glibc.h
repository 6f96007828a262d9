/*
 * io_stdio_glibc.h - what io_stdio_glibc.c (glibc's own streams: the
 * table of their locks, reads, opening and closing) and io_stdio_write.c
 * (their writes, and what glibc writes by itself) share. Hidden, and
 * included by those two files only.
 */
#ifndef GREEN_HOOKS_IO_STDIO_GLIBC_H
#define GREEN_HOOKS_IO_STDIO_GLIBC_H

#include "io_internal.h"
#include "lock.h"
#include "pthread_internal.h"
#include <setjmp.h>
#include <stdio.h>

/* pthread_cleanup_push and _pop, made with the pthread hooks' own
 * functions (hooks call no exported hook name: tests/check_layers.py). */
#define CLEANUP_PUSH(fn, arg)                                                 \
    do {                                                                      \
        __pthread_unwind_buf_t cbuf_;                                         \
        void (*cfn_)(void *) = (fn);                                          \
        void *carg_ = (arg);                                                  \
        _Pragma("GCC diagnostic push")                                        \
        _Pragma("GCC diagnostic ignored \"-Wstringop-overflow\"")             \
        if (__builtin_expect(__sigsetjmp((struct __jmp_buf_tag *)(void *)     \
                                         cbuf_.__cancel_jmp_buf, 0), 0)) {    \
            cfn_(carg_);                                                      \
            green_hook___pthread_unwind_next(&cbuf_);                         \
        }                                                                     \
        _Pragma("GCC diagnostic pop")                                         \
        green_hook___pthread_register_cancel(&cbuf_);                         \
        do {
#define CLEANUP_POP(execute)                                                  \
        } while (0);                                                          \
        green_hook___pthread_unregister_cancel(&cbuf_);                       \
        if (execute)                                                          \
            cfn_(carg_);                                                      \
    } while (0)

#define IN_BACKUP 0x100            /* glibc's _IO_IN_BACKUP */
#define SLOTS 128                  /* streams with a lock of ours */

#define VIEW 64                    /* bytes scanf's view takes at a time */

struct held;

struct gstream {
    FILE *_Atomic fp;
    struct green__mutex lock;
    FILE *view;                    /* scanf's view of fp (below), or NULL */
    struct held *scanning;         /* the call that uses the view */
    char vbuf[VIEW];
};

/* The green lock and glock of one call, released on return or, in a
 * cancel, by the cleanup handler: glocked says whether glock is held
 * (not while wait_readable parks, the one cancellation point). */
struct held {
    struct gstream *g;
    FILE *fp;
    bool glocked;
};

/* Take the stream's green lock, then glock; release both (glocked says
 * whether glock is still held). release is a cleanup handler. */
GREEN_HIDDEN void green__stdio_g_take(struct held *h);
GREEN_HIDDEN void green__stdio_g_release(void *h);

/* glibc's own lock of fp (its OS thread's, recursive). Every look at
 * fp's buffer below is made under it: a call that began on the fast
 * path of another hub (free_for_me) holds it while it takes bytes. */
static inline void glock(FILE *fp)
{
    GREEN_REAL(flockfile)(fp);
}

static inline void gunlock(FILE *fp)
{
    GREEN_REAL(funlockfile)(fp);
}

/* No other green thread holds the stream (under glock): a call that glibc
 * answers from the buffer may run at once, as natively. A holder parked
 * in the middle of its line keeps everyone else out. */
static inline bool free_for_me(struct gstream *g)
{
    uintptr_t h = green__mutex_holder(&g->lock);
    return h == 0 || h == green__lock_id(green__current());
}

static inline size_t in_get_area(const FILE *fp)
{
    return fp->_IO_read_ptr < fp->_IO_read_end ? (size_t)(fp->_IO_read_end - fp->_IO_read_ptr)
                                               : 0;
}

#endif

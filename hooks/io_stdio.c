/*
 * io_stdio.c - stdio streams over sockets and pipes (fdopen).
 *
 * The problem. A FILE that fdopen makes reads and writes with glibc's
 * internal read and write, which no hook sees: a thread in fgets on a
 * socket blocked its hub's OS thread, and every green thread of the hub
 * with it, until the peer wrote a line. Thread-per-connection daemons
 * that speak a line protocol through stdio (fdopen + fgets + fprintf) are
 * common among the programs the shim is for.
 *
 * What we do. fdopen on a socket or a FIFO/pipe makes the stream with
 * fopencookie, whose read, write, seek and close functions are the
 * hooks: a read that has to wait parks the calling green thread, as
 * read() does, with the same EINTR, restart and cancellation behaviour.
 * What a program can see of the stream is glibc's fdopen's:
 *  - the mode is checked as glibc checks it (first letter r, w or a, the
 *    access mode against the descriptor's: EINVAL; EBADF), and "a" sets
 *    O_APPEND on the description when it is not set;
 *  - fileno() gives the descriptor (the cookie stream's _fileno is set to
 *    it; glibc marks cookie streams with -2 and only tests for -1);
 *  - the buffer is as large as glibc makes it (st_blksize below BUFSIZ:
 *    4096 for sockets and pipes), fully buffered;
 *  - a write callback loops over partial writes as glibc's file write
 *    does (a cookie write that returns short marks the stream in error);
 *  - fseek and ftell go to lseek (ESPIPE on sockets and pipes);
 *  - fclose flushes and closes the descriptor through the close hook.
 * Other descriptors (regular files, terminals, whose streams are line
 * buffered by a terminal test the cookie stream would not make) get
 * glibc's own stream.
 *
 * Its lock. glibc locks a stream for each call with a lock whose owner
 * is the OS thread (hooks/pthread.c: every green thread of a hub "owns"
 * it), and a read that parks now does so inside that lock: another green
 * thread of the hub would enter the stream in the middle of the call,
 * one of another hub would block its hub in the kernel until the call
 * ends. So each stream of ours has a lock of the lock core too, recursive
 * per green thread, that the interposed stdio functions which take a
 * stream (fgets, fprintf, fread, fwrite, getline, fflush, fclose,
 * flockfile... preload/export_stdio.c) take before glibc's: a thread
 * that wants the stream while another is inside waits as a green thread
 * (it parks), as a pthread waits for glibc's lock natively. The
 * _unlocked functions take no lock, as natively (flockfile does). A
 * stream is recognised by a mark in the bytes glibc leaves unused at the
 * end of every FILE (_unused2), checked against the stream's own
 * pointer; any other FILE costs the interposed functions that check.
 *
 * popen. glibc's popen stream reads its pipe with the same internal
 * read; so popen (green__stdio_popen) is glibc's made again over the
 * hooks: the type checked as glibc does (r or w, e for close-on-exec),
 * a pipe, /bin/sh -c COMMAND through posix_spawn's hook (the flag cache
 * and policy brackets), the child given the caller's own signal mask
 * (glibc's child inherits the calling thread's), the earlier popen
 * streams closed in it (POSIX; glibc keeps the same list), and a stream
 * of ours over the parent's end; pclose closes it and waits for the
 * child with the waitpid hook (EINTR retried, as glibc does).
 *
 * Limits. The buffer is the stream's from fdopen on (glibc allocates its
 * own at the first read or write: __fbufsize says 0 before it). Wide
 * orientation (fwide, fwprintf) is not available on a cookie stream; a
 * stream that needs it is rare on a socket. stdin, stdout and stderr are
 * glibc's (README: "Known differences").
 *
 * Rejected: a stream of glibc's own with its read and write replaced
 * (glibc checks that a stream's function table is one of its own and
 * aborts otherwise); waiting for readability before glibc's read (fgets
 * reads again, inside glibc, when a line arrives in pieces).
 */
#define _GNU_SOURCE
#include "io_internal.h"
#include "lock.h"
#include "pthread_internal.h"
#include "hooks_proc.h"
#include "hooks_signal.h"
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* One stream's cookie: its lock, its descriptor and its buffer. */
struct stream {
    struct green__mutex lock;      /* recursive, per green thread */
    FILE *fp;
    int fd;
    bool closing;                  /* fclose runs: free after it */
    pid_t pid;                     /* popen's child, 0 for fdopen's */
    struct stream *pnext;          /* popen's streams (popens, below) */
    char buf[];
};

/* Which FILEs are ours. Every FILE glibc makes is followed by its
 * function table's pointer (struct _IO_FILE_plus, unchanged since glibc
 * 2.1): a stream of ours has glibc's cookie table, learned from the
 * first one we make (green__stdio_cookie_table), and is the FILE of the
 * stream that the table of streams by descriptor holds for its _fileno
 * (glibc's own cookie streams, fmemopen's among them, have -2 there).
 * Not the cookie itself: a sanitizer's fopencookie wraps it in one of its
 * own. Reads only what glibc initialised. */
void *green__stdio_cookie_table;

#define CHUNK 1024                 /* descriptors per chunk */
#define CHUNKS 4096                /* up to 4M descriptors */
static struct stream *_Atomic *_Atomic by_fd[CHUNKS];

static struct stream *_Atomic *slot(int fd, bool make)
{
    if (fd < 0 || fd >= CHUNK * CHUNKS)
        return NULL;
    struct stream *_Atomic *c = atomic_load_explicit(&by_fd[fd / CHUNK], memory_order_acquire);
    if (!c && make) {
        struct stream *_Atomic *n = calloc(CHUNK, sizeof *n);
        if (!n)
            return NULL;
        struct stream *_Atomic *none = NULL;
        if (atomic_compare_exchange_strong(&by_fd[fd / CHUNK], &none, n))
            c = n;
        else {
            free(n);
            c = none;
        }
    }
    return c ? &c[fd % CHUNK] : NULL;
}

static struct stream *stream_of(FILE *fp)
{
    if (!green__stdio_marked(fp))
        return NULL;
    struct stream *_Atomic *e = slot(fp->_fileno, false);
    struct stream *s = e ? atomic_load_explicit(e, memory_order_acquire) : NULL;
    return s && s->fp == fp ? s : NULL;
}

/* fp is ours now (s). */
static void mark(FILE *fp, struct stream *s)
{
    struct stream *_Atomic *e = slot(fp->_fileno, true);
    if (e)
        atomic_store_explicit(e, s, memory_order_release);
}

/* s is no longer: its slot is emptied unless another stream took the
 * number since (its descriptor was closed behind the stream's back). */
static void unmark(struct stream *s)
{
    struct stream *_Atomic *e = slot(s->fd, false);
    struct stream *was = s;
    if (e)
        atomic_compare_exchange_strong(e, &was, NULL);
}

void *green__stdio_enter(FILE *fp)
{
    struct stream *s = stream_of(fp);
    if (!s)
        return NULL;
    int e = errno;
    struct green_thread *self = green__in_green() ? green__current() : NULL;
    green__mutex_lock(&s->lock, self, GREEN__MUTEX_RECURSIVE, GREEN_FOREVER,
                      &green__pt_lock_how);
    errno = e;
    return s;
}

void *green__stdio_stream(FILE *fp)
{
    return stream_of(fp);
}

bool green__stdio_trylock(void *p)
{
    struct stream *s = p;
    struct green_thread *self = green__in_green() ? green__current() : NULL;
    return green__mutex_trylock(&s->lock, self, GREEN__MUTEX_RECURSIVE) == 0;
}

void green__stdio_leave(void *p)
{
    struct stream *s = p;
    if (!s)
        return;
    struct green_thread *self = green__in_green() ? green__current() : NULL;
    green__mutex_unlock(&s->lock, self, GREEN__MUTEX_RECURSIVE);
}

int green__stdio_fclose(FILE *fp)
{
    struct stream *s = green__stdio_enter(fp);
    if (!s)
        return GREEN_REAL(fclose)(fp);
    s->closing = true;
    unmark(s);
    int r = GREEN_REAL(fclose)(fp);
    green__stdio_leave(s);
    free(s);
    return r;
}

static ssize_t stream_read(void *cookie, char *buf, size_t n)
{
    struct stream *s = cookie;
    return green_hook_read(s->fd, buf, n);
}

/* All of it, as glibc's file write: a short count only after an error
 * (then the stream is in error either way). */
static ssize_t stream_write(void *cookie, const char *buf, size_t n)
{
    struct stream *s = cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t k = green_hook_write(s->fd, buf + done, n - done);
        if (k < 0)
            return done ? (ssize_t)done : -1;
        done += (size_t)k;
    }
    return (ssize_t)done;
}

static int stream_seek(void *cookie, off64_t *pos, int whence)
{
    struct stream *s = cookie;
    off64_t r = lseek64(s->fd, *pos, whence);
    if (r < 0)
        return -1;
    *pos = r;
    return 0;
}

/* glibc has flushed the buffer and no longer touches it. Through
 * green__stdio_fclose the stream is freed after glibc's fclose returns;
 * through freopen, which closes and reuses the FILE, now. */
static int stream_close(void *cookie)
{
    struct stream *s = cookie;
    int r = green_hook_close(s->fd);
    if (!s->closing) {
        unmark(s);
        free(s);
    }
    return r;
}

FILE *green__stdio_fdopen(int fd, const char *mode)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode)))
        return GREEN_REAL(fdopen)(fd, mode);
    /* glibc's checks (libio/iofdopen.c), in its order. */
    bool rd, wr, app = false;
    switch (mode[0]) {
    case 'r': rd = true; wr = false; break;
    case 'w': rd = false; wr = true; break;
    case 'a': rd = false; wr = true; app = true; break;
    default:
        errno = EINVAL;
        return NULL;
    }
    for (int i = 1; i < 5 && mode[i]; i++) {
        if (mode[i] == '+') {
            rd = wr = true;
            break;
        }
    }
    int fl = GREEN_REAL(fcntl)(fd, F_GETFL);
    if (fl == -1)
        return NULL;
    if (((fl & O_ACCMODE) == O_RDONLY && wr) || ((fl & O_ACCMODE) == O_WRONLY && rd)) {
        errno = EINVAL;
        return NULL;
    }
    if (app && !(fl & O_APPEND) && GREEN_REAL(fcntl)(fd, F_SETFL, fl | O_APPEND) == -1)
        return NULL;
    size_t size = st.st_blksize > 0 && st.st_blksize < BUFSIZ ? (size_t)st.st_blksize : BUFSIZ;
    struct stream *s = calloc(1, sizeof *s + size);
    if (!s)
        return NULL;
    s->fd = fd;
    cookie_io_functions_t fns = {
        .read = stream_read, .write = stream_write, .seek = stream_seek, .close = stream_close,
    };
    char m[4] = { mode[0], rd && wr ? '+' : 0, 0, 0 };
    FILE *f = fopencookie(s, m, fns);
    if (!f) {
        free(s);
        return NULL;
    }
    f->_fileno = fd;
    GREEN_REAL(setvbuf)(f, s->buf, _IOFBF, size);
    s->fp = f;
    if (!__atomic_load_n(&green__stdio_cookie_table, __ATOMIC_RELAXED))
        __atomic_store_n(&green__stdio_cookie_table, *(void **)((char *)f + sizeof(FILE)),
                         __ATOMIC_RELAXED);
    mark(f, s);
    return f;
}

/* ---------------------------------------------------------------- popen */

/* popen's streams still open: POSIX says a later popen's child closes
 * them (glibc keeps such a list too). Under popens_lock, a lock of the
 * core held across the spawn, as glibc holds its own. */
static struct stream *popens;
static struct green__mutex popens_lock;

static struct green_thread *caller(void)
{
    return green__in_green() ? green__current() : NULL;
}

FILE *green__stdio_popen(const char *command, const char *type)
{
    /* glibc's checks: r or w, not both, e for close-on-exec. */
    bool rd = false, wr = false, cloexec = false;
    for (const char *t = type; *t; t++) {
        switch (*t) {
        case 'r': rd = true; break;
        case 'w': wr = true; break;
        case 'e': cloexec = true; break;
        default:
            errno = EINVAL;
            return NULL;
        }
    }
    if (rd == wr) {
        errno = EINVAL;
        return NULL;
    }
    int p[2];
    if (green_hook_pipe2(p, O_CLOEXEC) != 0)
        return NULL;
    int parent = rd ? p[0] : p[1], child = rd ? p[1] : p[0];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t mask;
    green_hook_pthread_sigmask(SIG_SETMASK, NULL, &mask);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    /* The caller's own signal mask, as glibc's child inherits it. */
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    posix_spawn_file_actions_adddup2(&fa, child, rd ? 1 : 0);
    struct green_thread *self = caller();
    green__mutex_lock(&popens_lock, self, GREEN__MUTEX_NORMAL, GREEN_FOREVER,
                      &green__pt_lock_how);
    for (struct stream *o = popens; o; o = o->pnext)
        posix_spawn_file_actions_addclose(&fa, o->fd);
    char *argv[] = { (char *)"sh", (char *)"-c", (char *)command, NULL };
    pid_t pid = 0;
    int e = green_hook_posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    green_hook_close(child);
    FILE *f = NULL;
    if (e == 0 && (cloexec || GREEN_REAL(fcntl)(parent, F_SETFD, 0) == 0))
        f = green__stdio_fdopen(parent, rd ? "r" : "w");
    else if (e == 0)
        e = errno;
    struct stream *s = f ? stream_of(f) : NULL;
    if (s) {
        s->pid = pid;
        s->pnext = popens;
        popens = s;
    }
    green__mutex_unlock(&popens_lock, self, GREEN__MUTEX_NORMAL);
    if (s)
        return f;
    /* No stream: the child must not be left behind (glibc's order). */
    if (f)
        GREEN_REAL(fclose)(f);
    else
        green_hook_close(parent);
    if (e == 0) {
        e = errno ? errno : ENOMEM;
        int st;
        while (green_hook_waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    errno = e;
    return NULL;
}

bool green__stdio_pclose(FILE *fp, int *result)
{
    struct stream *s = stream_of(fp);
    if (!s || !s->pid)
        return false;
    pid_t pid = s->pid;
    struct green_thread *self = caller();
    green__mutex_lock(&popens_lock, self, GREEN__MUTEX_NORMAL, GREEN_FOREVER,
                      &green__pt_lock_how);
    for (struct stream **o = &popens; *o; o = &(*o)->pnext)
        if (*o == s) {
            *o = s->pnext;
            break;
        }
    green__mutex_unlock(&popens_lock, self, GREEN__MUTEX_NORMAL);
    green__stdio_fclose(fp);
    int st;
    pid_t r;
    while ((r = green_hook_waitpid(pid, &st, 0)) < 0 && errno == EINTR)
        ;
    *result = r < 0 ? -1 : st;
    return true;
}

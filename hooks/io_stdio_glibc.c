/*
 * io_stdio_glibc.c - reads from glibc's own streams over descriptors that
 * can wait: stdin (and fopen's FIFOs, fdopen's terminals) over a pipe, a
 * socket or a terminal.
 *
 * The problem. io_stdio.c makes fdopen's and popen's streams over sockets
 * and pipes streams of ours. The streams glibc makes itself stay glibc's:
 * stdin, stdout and stderr exist before any hook runs, and fopen of a
 * FIFO is glibc's fopen. They read with glibc's internal read, which no
 * hook sees, so a thread in fgets(stdin) held its hub's OS thread until
 * a line came: with one hub every other green thread stopped, and a
 * program whose own thread writes the line it waits for (a pipe to
 * itself, a test harness) hung for ever.
 *
 * What we do. The interposed stdio read functions (preload/export_stdio.c)
 * ask green__stdio_glibc whether fp is one of glibc's file streams over a
 * socket, a pipe or FIFO, or a character device, read by a green thread;
 * then they act here, in two steps that never let glibc's read wait:
 *  - fill: when nothing is buffered, park until the descriptor is
 *    readable (as the read hook does for a pipe: poll, then a park), then
 *    let glibc's own __underflow refill the buffer with its one read,
 *    which no longer waits. glibc keeps every flag, offset and the
 *    line-buffered stdout flush it does before a read.
 *  - bounded calls: glibc's fgets, fread and getc are then asked for no
 *    more than the buffer holds, so that they never read again; fgets and
 *    fread loop (fill, bounded call) until the request is met, the line
 *    ends, or end of file or an error stops them, with glibc's return
 *    values and flags. getdelim and getline grow the caller's buffer as
 *    glibc's does (120 bytes first, then at least double) and copy from
 *    the stream's buffer, filled the same way.
 *  - scanf and its family cannot be bounded: they wait for the first byte
 *    here, then run glibc's as it is. A conversion whose input arrives in
 *    pieces (a number cut in two by the writer) waits inside glibc for
 *    the rest, holding the hub (README, "Known differences").
 *
 * The stream's lock. A call that parks between two steps must keep other
 * threads out of the stream, as glibc's lock does for the whole call
 * natively: glibc's lock belongs to the OS thread, which every green
 * thread of the hub shares. So every such stream read by a green thread
 * gets a lock of the lock core (recursive per green thread), taken by
 * the interposed read functions and by flockfile before glibc's, kept in
 * a table by FILE address (an entry stays when its stream is closed: the
 * next FILE at that address reuses it). A green thread cancelled while
 * it waits releases it (a cleanup handler around each wait).
 *
 * Which streams. fp's function table is glibc's file table (stdin's, read
 * once), its descriptor is a socket, a pipe or FIFO, or a character
 * device (terminals; /dev/null is always readable). Regular files, memory
 * streams, cookie streams and streams read by the hub or by OS threads
 * that are not green are glibc's alone, as before.
 *
 * glibc's FILE. The fields used are those of struct _IO_FILE in
 * <bits/types/struct_FILE.h> (the read pointers, _flags with
 * _IO_EOF_SEEN and _IO_ERR_SEEN, _fileno), which the getc_unlocked macro
 * of every compiled program relies on, and the backup area of ungetc
 * (_IO_save_base, _IO_save_end, _IO_IN_BACKUP 0x100, unchanged since
 * glibc 2.0): after a pushed-back character the rest of the buffer is
 * still there without a read.
 *
 * Rejected: replacing stdin by a stream of ours at start (a program that
 * compares against &_IO_2_1_stdin_, freopens it or reads it wide would
 * see a cookie stream, which has no wide orientation); running the glibc
 * call on a worker thread while the caller parks (glibc's lock belongs to
 * the caller's OS thread; a signal or a cancel would not reach the read);
 * O_NONBLOCK on the description (io.c's decision).
 */
#define _GNU_SOURCE
#include "io_internal.h"
#include "lock.h"
#include "pthread_internal.h"
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#define IN_BACKUP 0x100            /* glibc's _IO_IN_BACKUP */
#define SLOTS 128                  /* streams with a lock of ours */

struct gstream {
    FILE *_Atomic fp;
    struct green__mutex lock;
    FILE *view;                    /* scanf's view of fp (below), or NULL */
    bool in_view;                  /* glibc's scanf runs on the view */
    char viewbuf[1];
};

static struct gstream table[SLOTS];
static void *file_jumps;           /* glibc's function table of files */

/* The function table that follows every FILE glibc makes. */
static inline void *jumps_of(const FILE *fp)
{
    return *(void *const *)((const char *)fp + sizeof(FILE));
}

/* glibc's stdin as it is made: a FILE and its function table. */
extern struct { FILE file; void *jumps; } _IO_2_1_stdin_;

/* fp's entry, made on first use; NULL when the table is full. */
static struct gstream *entry(FILE *fp)
{
    size_t h = (size_t)(((uintptr_t)fp >> 4) * 0x9E3779B97F4A7C15ull >> 57);
    for (size_t k = 0; k < SLOTS; k++) {
        struct gstream *e = &table[(h + k) % SLOTS];
        FILE *cur = atomic_load_explicit(&e->fp, memory_order_acquire);
        if (cur == fp)
            return e;
        if (cur == NULL) {
            if (atomic_compare_exchange_strong(&e->fp, &cur, fp) || cur == fp)
                return e;
        }
    }
    return NULL;
}

void *green__stdio_glibc(FILE *fp)
{
    if (!fp)
        return NULL;
    void *fj = file_jumps;
    if (green__unlikely(!fj))
        file_jumps = fj = _IO_2_1_stdin_.jumps;
    if (jumps_of(fp) != fj || !io_on())
        return NULL;
    int fd = fp->_fileno;
    if (fd < 0)
        return NULL;
    enum green__fdkind k = kind_for_call(fd);
    if (k != GREEN_FD_SOCKET && k != GREEN_FD_PIPE && k != GREEN_FD_TTY)
        return NULL;
    return entry(fp);
}

static void lock(struct gstream *g)
{
    int e = errno;
    green__mutex_lock(&g->lock, green__current(), GREEN__MUTEX_RECURSIVE, GREEN_FOREVER,
                      &green__pt_lock_how);
    errno = e;
}

static void unlock(void *p)
{
    struct gstream *g = p;
    green__mutex_unlock(&g->lock, green__current(), GREEN__MUTEX_RECURSIVE);
}

void green__stdio_glibc_lock(void *g)
{
    lock(g);
}

void green__stdio_glibc_unlock(void *g)
{
    unlock(g);
}

bool green__stdio_glibc_trylock(void *p)
{
    struct gstream *g = p;
    return green__mutex_trylock(&g->lock, green__current(), GREEN__MUTEX_RECURSIVE) == 0;
}

/* Bytes glibc can hand out without a read: the get area, or, while a
 * pushed-back character's backup area is in use, the main get area
 * behind it (glibc's __underflow switches back to it before reading). */
static size_t buffered(const FILE *fp)
{
    if (fp->_IO_read_ptr < fp->_IO_read_end)
        return (size_t)(fp->_IO_read_end - fp->_IO_read_ptr);
    if ((fp->_flags & IN_BACKUP) && fp->_IO_save_base < fp->_IO_save_end)
        return 1;
    return 0;
}

/* Make bytes available in fp's get area: 1 when there are some, 0 at end
 * of file (_IO_EOF_SEEN, sticky as in glibc), -1 on an error (the stream's
 * error flag set, errno as glibc's read left it, or EINTR and the like
 * from the wait). A cancellation point when it has to wait, as glibc's
 * read is. Called under the stream's green lock. May switch. */
static int fill(FILE *fp)
{
    if (buffered(fp) == 0) {
        if (fp->_flags & _IO_EOF_SEEN)
            return 0;
        int e0 = errno;
        green__cancel_point(0);
        if (green__io_ready_for_call(fp->_fileno, GREEN_READ, 1, true) < 0) {
            fp->_flags |= _IO_ERR_SEEN;
            return -1;
        }
        errno = e0;
    }
    int old = fp->_flags & _IO_ERR_SEEN;
    fp->_flags &= ~_IO_ERR_SEEN;
    GREEN_REAL(flockfile)(fp);
    int c = GREEN_REAL(__underflow)(fp);
    GREEN_REAL(funlockfile)(fp);
    int err = fp->_flags & _IO_ERR_SEEN;
    fp->_flags |= old;
    if (c != EOF)
        return 1;
    return err ? -1 : 0;
}

/* Wait until glibc can start the call without a read that waits: for
 * the functions that read byte by byte (getc...) and scanf. 0, or -1 with
 * the error flag set. */
static int wait_first(FILE *fp)
{
    if (buffered(fp) || (fp->_flags & _IO_EOF_SEEN))
        return 0;
    int e0 = errno;
    green__cancel_point(0);
    if (green__io_ready_for_call(fp->_fileno, GREEN_READ, 1, true) < 0) {
        fp->_flags |= _IO_ERR_SEEN;
        return -1;
    }
    errno = e0;
    return 0;
}

/* A read of the getc kind (getc, fgetc, getchar, their _unlocked forms,
 * __uflow, __underflow): wait for the first byte, then glibc's call. */
int green__stdio_glibc_getc(void *g, FILE *fp, int (*real)(FILE *))
{
    volatile int r = EOF;          /* kept across the cleanup's setjmp */
    lock(g);
    pthread_cleanup_push(unlock, g);
    if (wait_first(fp) == 0)
        r = real(fp);
    pthread_cleanup_pop(1);
    return r;
}

/* scanf's view: glibc's scanf reads ahead by one byte and reads again
 * wherever a conversion needs more, so it runs on a stream of ours whose
 * read function takes fp's bytes one at a time, waiting as fill does
 * (a buffer of one byte, fully buffered: an unbuffered stream would
 * flush stdout before each byte, which fp on a pipe does not). The byte
 * scanf reads ahead and pushes back stays in the view when it returns;
 * it is the last one taken from fp, still just behind fp's read
 * pointer, and goes back there. fp's end-of-file and error flags are
 * set by fill as glibc's read would set them; scanf's return value and
 * %n counts are glibc's own. */
static ssize_t view_read(void *cookie, char *buf, size_t n)
{
    FILE *fp = cookie;
    int f = fill(fp);
    if (f <= 0)
        return f;
    size_t avail = (size_t)(fp->_IO_read_end - fp->_IO_read_ptr);
    size_t take = n < avail ? n : avail;
    memcpy(buf, fp->_IO_read_ptr, take);
    fp->_IO_read_ptr += take;
    return (ssize_t)take;
}

static void scanf_cleanup(void *p)
{
    struct gstream *g = p;
    if (g->in_view) {              /* cancelled in the view's read */
        g->in_view = false;
        GREEN_REAL(funlockfile)(g->view);
        __fpurge(g->view);
    }
    unlock(g);
}

int green__stdio_glibc_scanf(void *p, FILE *fp, int (*real)(FILE *, const char *, va_list),
                             const char *f, va_list ap)
{
    struct gstream *g = p;
    volatile int r = EOF;
    lock(g);
    pthread_cleanup_push(scanf_cleanup, g);
    if (!g->view) {
        g->view = fopencookie(fp, "r", (cookie_io_functions_t){ .read = view_read });
        if (g->view)
            setvbuf(g->view, g->viewbuf, _IOFBF, sizeof g->viewbuf);
    }
    if (!g->view) {
        if (wait_first(fp) == 0)   /* no memory: the first byte only */
            r = real(fp, f, ap);
    } else {
        clearerr_unlocked(g->view);
        g->in_view = true;
        r = real(g->view, f, ap);
        g->in_view = false;
        FILE *v = g->view;
        if (v->_IO_read_ptr < v->_IO_read_end)
            fp->_IO_read_ptr -= v->_IO_read_end - v->_IO_read_ptr;
        __fpurge(v);
    }
    pthread_cleanup_pop(1);
    return r;
}

/* fgets, fgets_unlocked, __fgets_chk (size: the object's size, checked by
 * glibc's on each call; SIZE_MAX for the others). */
char *green__stdio_glibc_fgets(void *g, char *s, int n, FILE *fp, size_t size,
                               char *(*real)(char *, int, FILE *),
                               char *(*real_chk)(char *, size_t, int, FILE *))
{
#define FGETS(p, sz, k) (real_chk ? real_chk((p), (sz), (k), fp) : real((p), (k), fp))
    if (n <= 1 || (real_chk && (size_t)n > size))
        return FGETS(s, size, n);  /* no read; or glibc's overflow report */
    char *r = s;
    lock(g);
    pthread_cleanup_push(unlock, g);
    size_t want = (size_t)n - 1, got = 0;
    int old = fp->_flags & _IO_ERR_SEEN;
    fp->_flags &= ~_IO_ERR_SEEN;
    for (;;) {
        int f = fill(fp);
        if (f <= 0) {
            if (f < 0 || got == 0)
                r = NULL;          /* an error in this call, or nothing at all */
            break;
        }
        size_t avail = (size_t)(fp->_IO_read_end - fp->_IO_read_ptr);
        size_t take = avail < want - got ? avail : want - got;
        char *before = fp->_IO_read_ptr;
        FGETS(s + got, size == SIZE_MAX ? SIZE_MAX : size - got, (int)take + 1);
        got += (size_t)(fp->_IO_read_ptr - before);
        if (got == want || (got && s[got - 1] == '\n'))
            break;
    }
    fp->_flags |= old;
    pthread_cleanup_pop(1);
    return r;
#undef FGETS
}

/* fread and its forms: whole items, as glibc counts them. */
size_t green__stdio_glibc_fread(void *g, void *p, size_t size, size_t n, FILE *fp,
                                size_t psize,
                                size_t (*real)(void *, size_t, size_t, FILE *),
                                size_t (*real_chk)(void *, size_t, size_t, size_t, FILE *))
{
#define FREAD(q, ps, k) (real_chk ? real_chk((q), (ps), 1, (k), fp) : real((q), 1, (k), fp))
    size_t bytes;
    if (size == 0 || n == 0 || __builtin_mul_overflow(size, n, &bytes) ||
        (real_chk && bytes > psize))
        return real_chk ? real_chk(p, psize, size, n, fp) : real(p, size, n, fp);
    size_t got = 0;
    lock(g);
    pthread_cleanup_push(unlock, g);
    while (got < bytes) {
        if (fill(fp) <= 0)
            break;
        char *before = fp->_IO_read_ptr;
        size_t avail = (size_t)(fp->_IO_read_end - before);
        size_t take = avail < bytes - got ? avail : bytes - got;
        FREAD((char *)p + got, psize - got, take);
        got += (size_t)(fp->_IO_read_ptr - before);
    }
    pthread_cleanup_pop(1);
    return got == bytes ? n : got / size;
#undef FREAD
}

/* getdelim and getline, as glibc's: -1 with EINVAL for null pointers, -1
 * at once when the stream is in error, a 120-byte buffer when *line is
 * NULL or *cap 0, grown to at least twice its size, -1 when end of file
 * or an error comes before any byte. */
ssize_t green__stdio_glibc_getdelim(void *g, char **line, size_t *cap, int delim, FILE *fp,
                                    ssize_t (*real)(char **, size_t *, int, FILE *))
{
    if (!line || !cap || ferror_unlocked(fp))
        return real(line, cap, delim, fp);
    size_t avail = (size_t)(fp->_IO_read_end - fp->_IO_read_ptr);
    if (avail && memchr(fp->_IO_read_ptr, delim, avail))
        return real(line, cap, delim, fp);    /* all there: no read */
    ssize_t r = -1;
    lock(g);
    pthread_cleanup_push(unlock, g);
    if (!*line || *cap == 0) {
        *cap = 120;
        *line = malloc(*cap);
        if (!*line)
            goto out;
    }
    size_t cur = 0;
    if (fill(fp) <= 0)
        goto out;
    for (;;) {
        avail = (size_t)(fp->_IO_read_end - fp->_IO_read_ptr);
        char *t = memchr(fp->_IO_read_ptr, delim, avail);
        size_t len = t ? (size_t)(t - fp->_IO_read_ptr) + 1 : avail;
        if (len >= (size_t)SSIZE_MAX - cur) {
            errno = EOVERFLOW;
            goto out;
        }
        size_t need = cur + len + 1;
        if (need > *cap) {
            if (need < 2 * *cap)
                need = 2 * *cap;
            char *nl = realloc(*line, need);
            if (!nl)
                goto out;
            *line = nl;
            *cap = need;
        }
        memcpy(*line + cur, fp->_IO_read_ptr, len);
        fp->_IO_read_ptr += len;
        cur += len;
        if (t || fill(fp) <= 0)
            break;
    }
    (*line)[cur] = 0;
    r = (ssize_t)cur;
out:
    pthread_cleanup_pop(1);
    return r;
}

/*
 * io_stdio_glibc.c - glibc's own streams over descriptors that can wait:
 * stdin, stdout, stderr (and fopen's FIFOs, fdopen's terminals) over a
 * pipe, a socket or a terminal. Here: which streams, their locks, the
 * reads, fopen and fclose, fork. The writes: io_stdio_write.c.
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
 *  - scanf and its family cannot be bounded (a conversion reads until it
 *    sees what ends it): glibc's scanf runs on a view of the stream whose
 *    read function waits as fill does (below, "scanf's view").
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
 * Rejected: replacing the standard streams by streams of ours at start
 * (a program that compares against &_IO_2_1_stdin_, freopens them or
 * prints wide would see a cookie stream, which has no wide orientation);
 * running the glibc call on a worker thread while the caller parks
 * (glibc's lock belongs to the caller's OS thread; a signal or a cancel
 * would not reach the read); O_NONBLOCK on the description (io.c's
 * decision).
 */#define _GNU_SOURCE
#include "io_stdio_glibc.h"
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

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

static inline void *file_jumps_of(void)
{
    void *fj = file_jumps;
    if (green__unlikely(!fj))
        file_jumps = fj = _IO_2_1_stdin_.jumps;
    return fj;
}

void *green__stdio_glibc(FILE *fp)
{
    if (!fp)
        return NULL;
    if (jumps_of(fp) != file_jumps_of() || !io_on())
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
/* Can glibc answer without a read (under glock)? Bytes in the get area;
 * or, while a pushed-back character's backup area is in use, in the main
 * get area behind it (glibc's __underflow switches back to it first); or
 * end of file seen (sticky in glibc: it answers EOF at once). */
static bool answers_at_once(const FILE *fp)
{
    return in_get_area(fp) || ((fp->_flags & IN_BACKUP) && fp->_IO_save_base < fp->_IO_save_end) ||
           (fp->_flags & _IO_EOF_SEEN);
}
void green__stdio_g_take(struct held *h)
{
    lock(h->g);
    glock(h->fp);
    h->glocked = true;
}

void green__stdio_g_release(void *p)
{
    struct held *h = p;
    if (h->glocked)
        gunlock(h->fp);
    h->glocked = false;
    unlock(h->g);
}
/* Park until fp's descriptor is readable, glock released meanwhile. A
 * cancellation point, as glibc's read is. 0, or -1 (the stream's error
 * flag set; errno EINTR or the like). May switch. */
static int wait_readable(struct held *h)
{
    FILE *fp = h->fp;
    int e0 = errno;
    gunlock(fp);
    h->glocked = false;
    green__cancel_point(0);
    int r = green__io_ready_for_call(fp->_fileno, GREEN_READ, 1, true);
    glock(fp);
    h->glocked = true;
    if (r < 0) {
        fp->_flags |= _IO_ERR_SEEN;
        return -1;
    }
    errno = e0;
    return 0;
}

/* Make bytes available in fp's get area: 1 when there are some, 0 at end
 * of file, -1 on an error (the stream's error flag set, errno as glibc's
 * read or the wait left it). The refill is glibc's own __underflow, one
 * read that no longer waits. May switch. */
static int fill(struct held *h)
{
    FILE *fp = h->fp;
    if (in_get_area(fp))
        return 1;
    if (!answers_at_once(fp) && wait_readable(h) < 0)
        return -1;
    int old = fp->_flags & _IO_ERR_SEEN;
    fp->_flags &= ~_IO_ERR_SEEN;
    int c = GREEN_REAL(__underflow)(fp);
    int err = fp->_flags & _IO_ERR_SEEN;
    fp->_flags |= old;
    if (c != EOF)
        return 1;
    return err ? -1 : 0;
}

/* A read of the getc kind (getc, fgetc, getchar, their _unlocked forms,
 * __uflow, __underflow): glibc's call once it can answer without a read
 * that waits (one byte takes at most one read). takes: the call consumes
 * the byte (all but __underflow). */
int green__stdio_glibc_getc(void *p, FILE *fp, int (*real)(FILE *), bool takes)
{
    struct gstream *g = p;
    glock(fp);
    if (green__likely(answers_at_once(fp) && free_for_me(g))) {
        /* What glibc's getc does with a byte in the buffer, without a
         * second call and lock. */
        int r = takes && in_get_area(fp) ? *(unsigned char *)fp->_IO_read_ptr++ : real(fp);
        gunlock(fp);
        return r;
    }
    gunlock(fp);
    struct held h = { .g = g, .fp = fp };
    volatile int r = EOF;          /* kept across the cleanup's setjmp */
    green__stdio_g_take(&h);
    CLEANUP_PUSH(green__stdio_g_release, &h);
    if (answers_at_once(fp) || wait_readable(&h) == 0)
        r = real(fp);
    CLEANUP_POP(1);
    return r;
}

/* scanf's view: glibc's scanf reads ahead and reads again wherever a
 * conversion needs more, so it runs on a stream of ours (a cookie stream
 * made once per stream, fully buffered in VIEW bytes: an unbuffered one
 * would flush stdout before each read, which fp on a pipe does not)
 * whose read function copies fp's buffered bytes, VIEW at most, taking
 * them from fp, and waits as fill does when there are none. What scanf
 * leaves unread in the view when it returns goes back to fp: the view's
 * buffer holds the last bytes taken, still just behind fp's read
 * pointer; a byte scanf pushed back in front of them (the view's backup
 * area) goes back as glibc's ungetc would put it. fp's end-of-file and
 * error flags are set by fill as glibc's read would set them; scanf's
 * return value and %n counts are glibc's own. */
static ssize_t view_read(void *cookie, char *buf, size_t n)
{
    struct gstream *g = cookie;
    struct held *h = g->scanning;
    int f = fill(h);
    if (f <= 0)
        return f;
    FILE *fp = h->fp;
    size_t avail = in_get_area(fp), k = n < avail ? n : avail;
    memcpy(buf, fp->_IO_read_ptr, k);
    fp->_IO_read_ptr += k;
    return (ssize_t)k;
}

/* Put back into fp what scanf left in the view (see above), and empty it
 * for the next call. */
static void view_give_back(FILE *v, FILE *fp)
{
    if (!(v->_flags & IN_BACKUP)) {
        fp->_IO_read_ptr -= in_get_area(v);
    } else {
        /* The main area behind the backup area (swapped: save_base..). */
        fp->_IO_read_ptr -= v->_IO_save_end - v->_IO_save_base;
        for (char *c = v->_IO_read_end; c > v->_IO_read_ptr;) {
            unsigned char b = (unsigned char)*--c;
            if (fp->_IO_read_ptr > fp->_IO_read_base && !(fp->_flags & IN_BACKUP) &&
                (unsigned char)fp->_IO_read_ptr[-1] == b)
                fp->_IO_read_ptr--;
            else
                GREEN_REAL(ungetc)(b, fp);
        }
    }
    __fpurge(v);
    clearerr_unlocked(v);
}

/* A cancel in the view's read leaves the view locked by glibc's scanf,
 * which never returned: it is closed, and made again next time. */
static void scan_release(void *p)
{
    struct held *h = p;
    struct gstream *g = h->g;
    if (g->scanning) {
        g->scanning = NULL;
        GREEN_REAL(fclose)(g->view);
        g->view = NULL;
    }
    green__stdio_g_release(h);
}

int green__stdio_glibc_scanf(void *p, FILE *fp, int (*real)(FILE *, const char *, va_list),
                             const char *f, va_list ap)
{
    struct gstream *g = p;
    struct held h = { .g = g, .fp = fp };
    volatile int r = EOF;
    green__stdio_g_take(&h);
    CLEANUP_PUSH(scan_release, &h);
    if (!g->view) {
        g->view = fopencookie(g, "r", (cookie_io_functions_t){ .read = view_read });
        if (g->view)
            GREEN_REAL(setvbuf)(g->view, g->vbuf, _IOFBF, sizeof g->vbuf);
    }
    if (!g->view) {                /* no memory: glibc's, after the first byte */
        if (answers_at_once(fp) || wait_readable(&h) == 0)
            r = real(fp, f, ap);
    } else {
        g->scanning = &h;
        r = real(g->view, f, ap);
        g->scanning = NULL;
        view_give_back(g->view, fp);
    }
    CLEANUP_POP(1);
    return r;
}

/* fgets and its forms (chk: __fgets_chk's size check, size the object's
 * size): the line in bounded pieces, each from the buffer alone. */
char *green__stdio_glibc_fgets(void *p, char *s, int n, FILE *fp, bool chk, size_t size,
                               char *(*real)(char *, int, FILE *))
{
    struct gstream *g = p;
    if (n <= 1 || (chk && (size_t)n > size))
        return chk ? GREEN_REAL(__fgets_chk)(s, size, n, fp) : real(s, n, fp);
    size_t want = (size_t)n - 1;
    glock(fp);
    size_t avail = in_get_area(fp);
    if (green__likely(avail && free_for_me(g) &&
                      (avail >= want || memchr(fp->_IO_read_ptr, '\n', avail)))) {
        char *r = chk ? GREEN_REAL(__fgets_unlocked_chk)(s, size, n, fp)
                      : GREEN_REAL(fgets_unlocked)(s, n, fp);
        gunlock(fp);
        return r;
    }
    gunlock(fp);
    struct held h = { .g = g, .fp = fp };
    char *volatile r = s;
    green__stdio_g_take(&h);
    CLEANUP_PUSH(green__stdio_g_release, &h);
    size_t got = 0;
    int old = fp->_flags & _IO_ERR_SEEN;
    fp->_flags &= ~_IO_ERR_SEEN;
    for (;;) {
        int fl = fill(&h);
        if (fl <= 0) {
            if (fl < 0 || got == 0)
                r = NULL;          /* an error in this call, or nothing at all */
            break;
        }
        avail = in_get_area(fp);
        size_t k = avail < want - got ? avail : want - got;
        char *before = fp->_IO_read_ptr;
        if (chk)
            GREEN_REAL(__fgets_unlocked_chk)(s + got, size - got, (int)k + 1, fp);
        else
            GREEN_REAL(fgets_unlocked)(s + got, (int)k + 1, fp);
        got += (size_t)(fp->_IO_read_ptr - before);
        if (got == want || (got && s[got - 1] == '\n'))
            break;
    }
    fp->_flags |= old;
    CLEANUP_POP(1);
    return r;
}

/* fread and its forms (chk: __fread_chk's, psize the object's size):
 * whole items, as glibc counts them. */
size_t green__stdio_glibc_fread(void *p, void *buf, size_t size, size_t n, FILE *fp,
                                bool chk, size_t psize,
                                size_t (*real)(void *, size_t, size_t, FILE *))
{
    struct gstream *g = p;
    size_t bytes;
    if (size == 0 || n == 0 || __builtin_mul_overflow(size, n, &bytes) ||
        (chk && bytes > psize))
        return chk ? GREEN_REAL(__fread_chk)(buf, psize, size, n, fp) : real(buf, size, n, fp);
    glock(fp);
    if (green__likely(in_get_area(fp) >= bytes && free_for_me(g))) {
        size_t r = GREEN_REAL(fread_unlocked)(buf, size, n, fp);
        gunlock(fp);
        return r;
    }
    gunlock(fp);
    struct held h = { .g = g, .fp = fp };
    volatile size_t got = 0;
    green__stdio_g_take(&h);
    CLEANUP_PUSH(green__stdio_g_release, &h);
    while (got < bytes && fill(&h) > 0) {
        size_t avail = in_get_area(fp), k = avail < bytes - got ? avail : bytes - got;
        char *before = fp->_IO_read_ptr;
        GREEN_REAL(fread_unlocked)((char *)buf + got, 1, k, fp);
        got += (size_t)(fp->_IO_read_ptr - before);
    }
    CLEANUP_POP(1);
    return got == bytes ? n : got / size;
}

/* getdelim and getline, as glibc's: -1 with EINVAL for null pointers, -1
 * at once when the stream is in error, a 120-byte buffer when *line is
 * NULL or *cap 0, grown to at least twice its size, -1 when end of file
 * or an error comes before any byte. */
ssize_t green__stdio_glibc_getdelim(void *p, char **line, size_t *cap, int delim, FILE *fp,
                                    ssize_t (*real)(char **, size_t *, int, FILE *))
{
    struct gstream *g = p;
    if (!line || !cap)
        return real(line, cap, delim, fp);
    glock(fp);
    size_t avail = in_get_area(fp);
    if (green__likely(free_for_me(g) && (ferror_unlocked(fp) ||
                                         (avail && memchr(fp->_IO_read_ptr, delim, avail))))) {
        ssize_t r = real(line, cap, delim, fp);   /* no read: glibc's alone */
        gunlock(fp);
        return r;
    }
    gunlock(fp);
    struct held h = { .g = g, .fp = fp };
    volatile ssize_t r = -1;
    green__stdio_g_take(&h);
    CLEANUP_PUSH(green__stdio_g_release, &h);
    if (ferror_unlocked(fp))
        goto out;
    if (!*line || *cap == 0) {
        *cap = 120;
        *line = malloc(*cap);
        if (!*line)
            goto out;
    }
    size_t cur = 0;
    if (fill(&h) <= 0)
        goto out;
    for (;;) {
        avail = in_get_area(fp);
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
        if (t || fill(&h) <= 0)
            break;
    }
    (*line)[cur] = 0;
    r = (ssize_t)cur;
out:
    CLEANUP_POP(1);
    return r;
}
/* ------------------------------------------------- opening and closing */

/* glibc opens and closes a stream's descriptor with its internal open
 * and close, which no hook sees: a number fopen takes may still have the
 * registration of the file that had it before (libgreen/fd.c), and a wait
 * on the new file would never wake (a FIFO written through fopen hung so
 * in bench_stdio). So fopen, freopen and tmpfile record their descriptor
 * as the open hook does, and fclose writes a stream that can wait (as
 * its flush would, parking while the pipe is full) and forgets its
 * descriptor as the close hook does, before glibc closes it. */
FILE *green__stdio_glibc_opened(FILE *fp)
{
    if (fp && jumps_of(fp) == file_jumps_of() && fp->_fileno >= 0)
        green__io_created(fp->_fileno, GREEN_FD_UNKNOWN, false);
    return fp;
}

void green__stdio_glibc_closing(FILE *fp)
{
    if (!fp || jumps_of(fp) != file_jumps_of() || fp->_fileno < 0)
        return;
    void *g = green__stdio_glibc(fp);
    if (g)
        green__stdio_glibc_fflush(g, fp, GREEN_REAL(fflush));
    green__io_fd_gone(fp->_fileno);
}
/* A fork child has only the forking thread: the streams' locks of ours
 * are free in it, as glibc makes its own locks free there (a thread that
 * held one, parked in a write, does not exist in the child). */
static void after_fork_child(void)
{
    for (size_t k = 0; k < SLOTS; k++) {
        memset(&table[k].lock, 0, sizeof table[k].lock);
        table[k].scanning = NULL;
    }
}

/* exit() runs the atexit handlers, then glibc's flush of every stream
 * (_IO_cleanup), with glibc's write: stdout or stderr with more buffered
 * than their pipe holds waited there holding the hub, while the thread
 * that would drain the pipe (the program's own) could not run. This
 * handler, registered before main and so run last of the handlers, just
 * before that flush, writes them as fflush does here. */
static void flush_at_exit(void)
{
    FILE *std[] = { stdout, stderr };
    for (int k = 0; k < 2; k++) {
        void *g = green__stdio_glibc(std[k]);
        if (g)
            green__stdio_glibc_fflush(g, std[k], GREEN_REAL(fflush));
    }
}

__attribute__((constructor)) static void stdio_glibc_register_atfork(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
    atexit(flush_at_exit);
}


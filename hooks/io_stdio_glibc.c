/*
 * io_stdio_glibc.c - reads and writes of glibc's own streams over
 * descriptors that can wait: stdin, stdout, stderr (and fopen's FIFOs,
 * fdopen's terminals) over a pipe, a socket or a terminal. Reads first;
 * writes have their own essay below ("Writes").
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
 * running the glibc
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
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

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

/* Can glibc answer without a read (under glock)? Bytes in the get area;
 * or, while a pushed-back character's backup area is in use, in the main
 * get area behind it (glibc's __underflow switches back to it first); or
 * end of file seen (sticky in glibc: it answers EOF at once). */
static bool answers_at_once(const FILE *fp)
{
    return in_get_area(fp) || ((fp->_flags & IN_BACKUP) && fp->_IO_save_base < fp->_IO_save_end) ||
           (fp->_flags & _IO_EOF_SEEN);
}

/* The green lock and glock of one call, released on return or, in a
 * cancel, by the cleanup handler: glocked says whether glock is held
 * (not while wait_readable parks, the one cancellation point). */
struct held {
    struct gstream *g;
    FILE *fp;
    bool glocked;
};

static void take(struct held *h)
{
    lock(h->g);
    glock(h->fp);
    h->glocked = true;
}

static void release(void *p)
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
    take(&h);
    CLEANUP_PUSH(release, &h);
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
    release(h);
}

int green__stdio_glibc_scanf(void *p, FILE *fp, int (*real)(FILE *, const char *, va_list),
                             const char *f, va_list ap)
{
    struct gstream *g = p;
    struct held h = { .g = g, .fp = fp };
    volatile int r = EOF;
    take(&h);
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
    take(&h);
    CLEANUP_PUSH(release, &h);
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
    take(&h);
    CLEANUP_PUSH(release, &h);
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
    take(&h);
    CLEANUP_PUSH(release, &h);
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

/* -------------------------------------------------------------- writes */

/* Writes. glibc writes a stream's buffer when it is full, at a newline
 * when the stream is line buffered, at every call when it is unbuffered
 * (stderr), and at fflush; each time with its internal write, looping
 * over partial counts. On a pipe or socket whose reader is slow that
 * write waits, and with it the hub: a program that writes stdout while
 * another of its threads reads what makes the reader drain it (a
 * co-process speaking over two pipes) hung.
 *
 * So the output functions, for the same streams as the reads, do what
 * glibc's own file output does (libio's xsputn, overflow and do_write,
 * in the same order and with the same rules: what fits is copied, a full
 * buffer or a newline of a line-buffered stream flushes, what is larger
 * than the buffer goes straight to the descriptor in whole buffers, the
 * rest is copied), except that every write is the write hook's: it parks
 * the green thread while the pipe is full, as write() does. The buffer,
 * its pointers and the flags are glibc's (the public fields of struct
 * _IO_FILE, and _IO_UNBUFFERED 0x2, _IO_NO_WRITES 0x8, _IO_LINE_BUF
 * 0x200, _IO_CURRENTLY_PUTTING 0x800, _IO_IS_APPENDING 0x1000 of
 * libio.h, unchanged since glibc 2.1); glibc allocates the buffer and
 * sets the stream up for writing itself (__overflow with EOF, which then
 * has nothing to write). printf and its forms format with vsnprintf
 * first (fortified ones with __vsnprintf_chk), then put the bytes: one
 * write where glibc's printf may write each line of a line-buffered
 * stream separately. A stream that is also being read (its get area not
 * empty), wide or not open for writing is left to glibc. glock is
 * released while a write parks, as while a read waits. */
extern int __vsnprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *f,
                           va_list ap);

#define UNBUFFERED 0x0002
#define NO_WRITES 0x0008
#define LINE_BUF 0x0200
#define PUTTING 0x0800
#define APPENDING 0x1000

/* Can fp be written here (under glock)? Else glibc's function runs. */
static bool writable_here(const FILE *fp)
{
    return fp->_mode <= 0 && !(fp->_flags & NO_WRITES) && fp->_IO_read_ptr == fp->_IO_read_end;
}

/* All of [s, s+n) to fp's descriptor with the write hook, looping over
 * partial counts as glibc's file write does; the error flag on an error.
 * Returns the bytes written. A cancellation point (the hook's). */
static size_t out_write(struct held *h, const char *s, size_t n)
{
    FILE *fp = h->fp;
    int fd = fp->_fileno;
    size_t done = 0;
    if (fp->_flags & APPENDING)
        fp->_offset = -1;
    gunlock(fp);
    h->glocked = false;
    while (done < n) {
        ssize_t k = green_hook_write(fd, s + done, n - done);
        if (k < 0) {
            glock(fp);
            h->glocked = true;
            fp->_flags |= _IO_ERR_SEEN;
            goto out;
        }
        done += (size_t)k;
    }
    glock(fp);
    h->glocked = true;
out:
    if (fp->_offset >= 0)
        fp->_offset += (off_t)done;
    return done;
}

/* glibc's new_do_write after its write: the buffer is empty again. */
static void reset_put_area(FILE *fp)
{
    fp->_IO_read_base = fp->_IO_read_ptr = fp->_IO_read_end = fp->_IO_buf_base;
    fp->_IO_write_base = fp->_IO_write_ptr = fp->_IO_buf_base;
    fp->_IO_write_end = (fp->_mode <= 0 && (fp->_flags & (LINE_BUF | UNBUFFERED)))
                            ? fp->_IO_buf_base : fp->_IO_buf_end;
}

/* Write n bytes at s (the buffer's contents, or the caller's data that
 * goes straight out), then empty the buffer: glibc's new_do_write. */
static size_t do_write(struct held *h, const char *s, size_t n)
{
    size_t w = out_write(h, s, n);
    reset_put_area(h->fp);
    return w;
}

/* Write what the buffer holds: 0, or EOF on an error. */
static int flush(struct held *h)
{
    FILE *fp = h->fp;
    size_t n = (size_t)(fp->_IO_write_ptr - fp->_IO_write_base);
    if (n == 0)
        return 0;
    return do_write(h, fp->_IO_write_base, n) == n ? 0 : EOF;
}

/* Set fp up for writing as glibc's overflow does (its buffer allocated,
 * in put mode), when it is not yet: nothing is written then. */
static int setup(FILE *fp)
{
    if (fp->_mode == 0)
        fp->_mode = -1;            /* byte oriented, as glibc's call would make it */
    if ((fp->_flags & PUTTING) && fp->_IO_write_base)
        return 0;
    return GREEN_REAL(__overflow)(fp, EOF) == EOF ? EOF : 0;
}

/* glibc's overflow of one byte c: flush when full, store, flush at a
 * newline of a line-buffered stream or always on an unbuffered one. */
static int put_byte(struct held *h, int c)
{
    FILE *fp = h->fp;
    if (setup(fp) == EOF)
        return EOF;
    if (fp->_IO_write_ptr == fp->_IO_buf_end && flush(h) == EOF)
        return EOF;
    *fp->_IO_write_ptr++ = (char)c;
    if (((fp->_flags & UNBUFFERED) || ((fp->_flags & LINE_BUF) && c == '\n')) &&
        flush(h) == EOF)
        return EOF;
    return (unsigned char)c;
}

/* glibc's file xsputn: the bytes accepted (n when all went), or
 * (size_t)EOF when the flush before any was accepted failed. */
static size_t put(struct held *h, const char *s, size_t n)
{
    FILE *fp = h->fp;
    if (n == 0)
        return 0;
    if (setup(fp) == EOF)
        return (size_t)EOF;
    size_t to_do = n, count = 0;
    bool must_flush = false;
    if ((fp->_flags & LINE_BUF) && (fp->_flags & PUTTING)) {
        count = (size_t)(fp->_IO_buf_end - fp->_IO_write_ptr);
        if (count >= n)
            for (const char *p = s + n; p > s;)
                if (*--p == '\n') {
                    count = (size_t)(p - s) + 1;
                    must_flush = true;
                    break;
                }
    } else if (fp->_IO_write_end > fp->_IO_write_ptr) {
        count = (size_t)(fp->_IO_write_end - fp->_IO_write_ptr);
    }
    if (count > 0) {
        if (count > to_do)
            count = to_do;
        memcpy(fp->_IO_write_ptr, s, count);
        fp->_IO_write_ptr += count;
        s += count;
        to_do -= count;
    }
    if (to_do + must_flush > 0) {
        if (flush(h) == EOF)
            return to_do == 0 ? (size_t)EOF : n - to_do;
        size_t block = (size_t)(fp->_IO_buf_end - fp->_IO_buf_base);
        size_t direct = to_do - (block >= 128 ? to_do % block : 0);
        if (direct) {
            count = do_write(h, s, direct);
            to_do -= count;
            if (count < direct)
                return n - to_do;
        }
        /* The rest, glibc's default xsputn: copy what fits, overflow
         * byte by byte (line-buffered streams leave no room). */
        for (s += direct; to_do > 0;) {
            size_t room = fp->_IO_write_end > fp->_IO_write_ptr
                              ? (size_t)(fp->_IO_write_end - fp->_IO_write_ptr) : 0;
            if (room) {
                size_t k = room < to_do ? room : to_do;
                memcpy(fp->_IO_write_ptr, s, k);
                fp->_IO_write_ptr += k;
                s += k;
                to_do -= k;
                continue;
            }
            if (put_byte(h, (unsigned char)*s) == EOF)
                break;
            s++;
            to_do--;
        }
    }
    return n - to_do;
}

/* Would put write nothing (under glock)? Then it runs without the green
 * lock's round trip, as glibc copies into its buffer. */
static bool put_fits(const FILE *fp, const char *s, size_t n)
{
    if (!(fp->_flags & PUTTING) || !fp->_IO_write_base || fp->_mode == 0 ||
        (fp->_flags & UNBUFFERED))
        return false;
    if (fp->_flags & LINE_BUF)
        return (size_t)(fp->_IO_buf_end - fp->_IO_write_ptr) >= n && !memchr(s, '\n', n);
    return fp->_IO_write_end > fp->_IO_write_ptr &&
           (size_t)(fp->_IO_write_end - fp->_IO_write_ptr) >= n;
}

/* One output of n bytes at s under the stream's locks; *ok false when the
 * stream is left to glibc (real runs then). Returns put's result. */
static size_t output(struct gstream *g, FILE *fp, const char *s, size_t n, bool *ok)
{
    glock(fp);
    if (!writable_here(fp)) {
        gunlock(fp);
        *ok = false;
        return 0;
    }
    *ok = true;
    if (green__likely(free_for_me(g) && put_fits(fp, s, n))) {
        struct held h = { .g = g, .fp = fp, .glocked = true };
        size_t r = put(&h, s, n);
        gunlock(fp);
        return r;
    }
    gunlock(fp);
    struct held h = { .g = g, .fp = fp };
    volatile size_t r = 0;
    take(&h);
    CLEANUP_PUSH(release, &h);
    if (writable_here(fp))
        r = put(&h, s, n);
    else
        *ok = false;
    CLEANUP_POP(1);
    return r;
}

int green__stdio_glibc_fputs(void *g, const char *s, FILE *fp,
                             int (*real)(const char *, FILE *))
{
    size_t n = strlen(s);
    bool ok;
    size_t r = output(g, fp, s, n, &ok);
    if (!ok)
        return real(s, fp);
    return r == n ? 1 : EOF;
}

int green__stdio_glibc_puts(void *g, const char *s, int (*real)(const char *))
{
    FILE *fp = stdout;
    size_t n = strlen(s);
    char stackbuf[512], *line = n < sizeof stackbuf ? stackbuf : malloc(n + 1);
    if (!line)
        return real(s);
    memcpy(line, s, n);
    line[n] = '\n';
    bool ok;
    size_t r = output(g, fp, line, n + 1, &ok);
    if (line != stackbuf)
        free(line);
    if (!ok)
        return real(s);
    return r == n + 1 ? (n + 1 > INT_MAX ? INT_MAX : (int)(n + 1)) : EOF;
}

/* putc, fputc, putchar, their _unlocked forms and __overflow (c EOF:
 * flush only). */
int green__stdio_glibc_putc(void *p, int c, FILE *fp, int (*real)(int, FILE *))
{
    struct gstream *g = p;
    glock(fp);
    if (!writable_here(fp)) {
        gunlock(fp);
        return real(c, fp);
    }
    /* Room in the buffer (glibc's putc stores), or, on a line-buffered
     * stream whose put area glibc keeps empty so that every byte comes
     * to its overflow, room and no newline (its overflow stores only). */
    if (green__likely(c != EOF && free_for_me(g) && fp->_mode != 0 &&
                      (fp->_IO_write_ptr < fp->_IO_write_end ||
                       ((fp->_flags & (LINE_BUF | UNBUFFERED | PUTTING)) == (LINE_BUF | PUTTING) &&
                        c != '\n' && fp->_IO_write_ptr < fp->_IO_buf_end)))) {
        *fp->_IO_write_ptr++ = (char)c;
        gunlock(fp);
        return (unsigned char)c;
    }
    gunlock(fp);
    struct held h = { .g = g, .fp = fp };
    volatile int r = EOF;
    take(&h);
    CLEANUP_PUSH(release, &h);
    if (!writable_here(fp)) {
        h.glocked = false;
        gunlock(fp);
        r = real(c, fp);
    } else if (c == EOF) {
        r = setup(fp) == EOF ? EOF : flush(&h) == EOF ? EOF : 0;
    } else {
        r = put_byte(&h, c);
    }
    CLEANUP_POP(1);
    return r;
}

/* fwrite and fwrite_unlocked, with glibc's return value (count when all
 * went or the flush before any byte failed, else whole items). */
size_t green__stdio_glibc_fwrite(void *g, const void *buf, size_t size, size_t count, FILE *fp,
                                 size_t (*real)(const void *, size_t, size_t, FILE *))
{
    size_t request;
    if (__builtin_mul_overflow(size, count, &request) || request == 0)
        return real(buf, size, count, fp);
    bool ok;
    size_t w = output(g, fp, buf, request, &ok);
    if (!ok)
        return real(buf, size, count, fp);
    if (w == request || w == (size_t)EOF)
        return count;
    return w / size;
}

/* fflush of one stream: its buffer written; 0 or EOF. */
int green__stdio_glibc_fflush(void *g, FILE *fp, int (*real)(FILE *))
{
    struct held h = { .g = g, .fp = fp };
    volatile int r = 0;
    volatile bool mine = true;
    take(&h);
    CLEANUP_PUSH(release, &h);
    if (!writable_here(fp) || !(fp->_flags & PUTTING))
        mine = false;
    else
        r = flush(&h);
    CLEANUP_POP(1);
    return mine ? r : real(fp);
}

/* printf and its forms: formatted (flag >= 0: the fortified check level
 * of __vfprintf_chk), then put. -1 when the output failed. */
int green__stdio_glibc_vfprintf(void *g, FILE *fp, int flag, const char *f, va_list ap,
                                int (*real)(FILE *, const char *, va_list),
                                int (*real_chk)(FILE *, int, const char *, va_list))
{
    glock(fp);
    bool here = writable_here(fp);
    gunlock(fp);
    if (!here)
        return flag >= 0 ? real_chk(fp, flag, f, ap) : real(fp, f, ap);
    char stackbuf[1024], *out = stackbuf;
    va_list again;
    va_copy(again, ap);
    int n = flag >= 0 ? __vsnprintf_chk(stackbuf, sizeof stackbuf, flag, sizeof stackbuf, f, ap)
                      : vsnprintf(stackbuf, sizeof stackbuf, f, ap);
    if (n >= (int)sizeof stackbuf) {
        out = malloc((size_t)n + 1);
        if (out)
            n = flag >= 0 ? __vsnprintf_chk(out, (size_t)n + 1, flag, (size_t)n + 1, f, again)
                          : vsnprintf(out, (size_t)n + 1, f, again);
    }
    va_end(again);
    if (n < 0 || !out) {
        if (out != stackbuf)
            free(out);
        return -1;                 /* EOVERFLOW, ENOMEM: errno says */
    }
    bool ok;
    size_t w = output(g, fp, out, (size_t)n, &ok);
    if (!ok)                       /* left to glibc meanwhile: its bytes */
        w = GREEN_REAL(fwrite)(out, 1, (size_t)n, fp);
    if (out != stackbuf)
        free(out);
    return w == (size_t)n ? n : -1;
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

/* ---------------------------------------- what glibc writes by itself */

/* perror, warn and err, dprintf write with glibc's internal calls (a
 * stream of their own over a dup of the descriptor, or stderr's
 * internal printf); on a pipe whose reader is slow they held the hub.
 * Here they write the same bytes in the same pieces, through the write
 * hook or the output functions above. */

/* All of [s, s+n) to fd with the write hook: n, or -1 with errno. */
static ssize_t write_all(int fd, const char *s, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = green_hook_write(fd, s + done, n - done);
        if (k < 0)
            return -1;
        done += (size_t)k;
    }
    return (ssize_t)n;
}

/* Can fd wait, for a green thread (the output functions' test)? */
static bool fd_can_wait(int fd)
{
    if (fd < 0 || !io_on())
        return false;
    enum green__fdkind k = kind_for_call(fd);
    return k == GREEN_FD_SOCKET || k == GREEN_FD_PIPE || k == GREEN_FD_TTY;
}

/* vdprintf as glibc's: the formatted bytes written to fd (glibc's
 * stream over fd writes them at its end, or in buffers of 4096 when
 * they are more), the count or -1. */
int green__stdio_glibc_vdprintf(int fd, const char *f, va_list ap,
                                int (*real)(int, const char *, va_list))
{
    if (!fd_can_wait(fd))
        return real(fd, f, ap);
    char stackbuf[1024], *out = stackbuf;
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(stackbuf, sizeof stackbuf, f, ap);
    if (n >= (int)sizeof stackbuf) {
        out = malloc((size_t)n + 1);
        if (out)
            n = vsnprintf(out, (size_t)n + 1, f, again);
    }
    va_end(again);
    int r = -1;
    if (n >= 0 && out) {
        r = n;
        for (size_t done = 0; done < (size_t)n && r >= 0;) {
            size_t k = (size_t)n - done > 4096 ? 4096 : (size_t)n - done;
            if (write_all(fd, out + done, k) < 0)
                r = -1;
            done += k;
        }
    }
    if (out != stackbuf)
        free(out);
    return r;
}

/* Formatted output to stderr through the output functions (g its lock). */
static void to_stderr(void *g, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    green__stdio_glibc_vfprintf(g, stderr, -1, f, ap, GREEN_REAL(vfprintf), NULL);
    va_end(ap);
}

/* perror: with stderr not yet oriented glibc writes the message through a
 * stream of its own over a dup of stderr's descriptor (one write, stderr's
 * buffer untouched); once stderr is in use, through stderr. false: left
 * to glibc (stderr cannot wait here, or is wide). */
bool green__stdio_glibc_perror(const char *s)
{
    FILE *fp = stderr;
    void *g = green__stdio_glibc(fp);
    if (!g || fp->_mode > 0)
        return false;
    int e = errno;
    char eb[256];
    const char *es = strerror_r(e, eb, sizeof eb);
    const char *colon = s && *s ? ": " : "";
    if (!s)
        s = "";
    if (fp->_mode != 0) {
        to_stderr(g, "%s%s%s\n", s, colon, es);
    } else {
        char stackbuf[512], *msg = stackbuf;
        int n = snprintf(stackbuf, sizeof stackbuf, "%s%s%s\n", s, colon, es);
        if (n >= (int)sizeof stackbuf && (msg = malloc((size_t)n + 1)))
            snprintf(msg, (size_t)n + 1, "%s%s%s\n", s, colon, es);
        if (msg && n > 0)
            write_all(fp->_fileno, msg, (size_t)n);
        if (msg != stackbuf)
            free(msg);
    }
    errno = e;
    return true;
}

/* vwarn (with_errno) and vwarnx, in glibc's pieces under stderr's lock:
 * "name: ", the message, then ": strerror\n" or "\n". false: left to
 * glibc. */
bool green__stdio_glibc_vwarn(bool with_errno, const char *f, va_list ap)
{
    FILE *fp = stderr;
    void *g = green__stdio_glibc(fp);
    if (!g || fp->_mode > 0)
        return false;
    int e = errno;
    green__stdio_glibc_lock(g);
    GREEN_REAL(flockfile)(fp);
    if (!with_errno) {
        to_stderr(g, "%s: ", program_invocation_short_name);
        if (f)
            green__stdio_glibc_vfprintf(g, fp, -1, f, ap, GREEN_REAL(vfprintf), NULL);
        to_stderr(g, "\n");
    } else if (f) {
        to_stderr(g, "%s: ", program_invocation_short_name);
        green__stdio_glibc_vfprintf(g, fp, -1, f, ap, GREEN_REAL(vfprintf), NULL);
        errno = e;
        to_stderr(g, ": %m\n");
    } else {
        errno = e;
        to_stderr(g, "%s: %m\n", program_invocation_short_name);
    }
    GREEN_REAL(funlockfile)(fp);
    green__stdio_glibc_unlock(g);
    errno = e;
    return true;
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

__attribute__((constructor)) static void stdio_glibc_register_atfork(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}

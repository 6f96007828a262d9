/*
 * io_stdio_write.c - writes to glibc's own streams over descriptors that
 * can wait (stdout, stderr, fopen's FIFOs over a pipe, a socket or a
 * terminal), and what glibc writes by itself (perror, warn and err,
 * dprintf). The streams, their locks and their reads: io_stdio_glibc.c.
 *
 * Writes. glibc writes a stream's buffer when it is full, at a newline
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
#define _GNU_SOURCE
#include "io_stdio_glibc.h"
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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
    green__stdio_g_take(&h);
    CLEANUP_PUSH(green__stdio_g_release, &h);
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
    green__stdio_g_take(&h);
    CLEANUP_PUSH(green__stdio_g_release, &h);
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
    green__stdio_g_take(&h);
    CLEANUP_PUSH(green__stdio_g_release, &h);
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


/*
 * export_stdio.c - the libc names of the stdio functions that take a
 * stream and its lock: each takes the stream's green lock first when the
 * stream is one of the shim's (fdopen on a socket or a pipe,
 * hooks/io_stdio.c, "Its lock"), then calls glibc's. Variadic ones go to
 * their v-variants; fortified ones (__fprintf_chk...) are what programs
 * built with _FORTIFY_SOURCE call.
 *
 * The read functions also serve glibc's own streams (stdin, fopen's
 * FIFOs) over a socket, a pipe or a terminal, read by a green thread:
 * hooks/io_stdio_glibc.c waits for their input without holding the hub.
 * The _unlocked forms and __uflow (what the getc_unlocked macro calls
 * when the buffer is empty) are interposed for those streams only.
 */
#define _GNU_SOURCE
/* No inline or macro forms of getc_unlocked, fread_unlocked...
 * (bits/stdio.h, with optimisation): this file defines the functions. */
#define __NO_INLINE__ 1
#undef _FILE_OFFSET_BITS
#undef _FORTIFY_SOURCE
#include "hooks.h"
#include "io.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define E GREEN_EXPORT

/* glibc's headers declare some of these with attributes (nonnull, access)
 * that a pass-through wrapper does not meet. */
#pragma GCC diagnostic ignored "-Wnonnull-compare"

extern char *__fgets_chk(char *s, size_t size, int n, FILE *fp);
extern size_t __fread_chk(void *p, size_t psize, size_t size, size_t n, FILE *fp);
extern ssize_t __getdelim(char **l, size_t *n, int d, FILE *fp);
extern int __isoc99_vfscanf(FILE *fp, const char *f, va_list ap);
extern int __isoc99_fscanf(FILE *fp, const char *f, ...);
extern int __vfprintf_chk(FILE *fp, int flag, const char *f, va_list ap);
extern int __fprintf_chk(FILE *fp, int flag, const char *f, ...);
extern int _IO_getc(FILE *fp);
extern int __uflow(FILE *fp);
extern int __underflow(FILE *fp);
extern char *__fgets_unlocked_chk(char *s, size_t size, int n, FILE *fp);
extern size_t __fread_unlocked_chk(void *p, size_t psize, size_t size, size_t n, FILE *fp);
extern int __isoc99_scanf(const char *f, ...);
extern int __isoc99_vscanf(const char *f, va_list ap);
extern int __overflow(FILE *fp, int c);
extern int __printf_chk(int flag, const char *f, ...);
extern int __vprintf_chk(int flag, const char *f, va_list ap);
extern int _IO_putc(int c, FILE *fp);

/* A wrapper's body: glibc's function, under the stream's green lock when
 * fp is one of ours (one inline test for any other FILE). fflush(NULL)
 * flushes every stream, each under glibc's lock alone. */
#define STREAM_CALL(ret, name, args)                                          \
    if (green__likely(!green__stdio_marked(fp)))                              \
        return GREEN_REAL(name) args;                                         \
    void *lk_ = green__stdio_enter(fp);                                       \
    ret r_ = GREEN_REAL(name) args;                                           \
    green__stdio_leave(lk_);                                                  \
    return r_;
#define STREAM(ret, name, params, args)                                       \
    E ret name params { STREAM_CALL(ret, name, args) }
#define STREAM_VOID(name, params, args)                                       \
    E void name params                                                        \
    {                                                                         \
        void *lk_ = green__stdio_marked(fp) ? green__stdio_enter(fp) : NULL;  \
        GREEN_REAL(name) args;                                                \
        green__stdio_leave(lk_);                                              \
    }
/* A read function: a stream of ours under its lock (locked true), one of
 * glibc's that can wait through gexpr (g_ is its lock), any other
 * glibc's alone. */
#define READ_CALL(ret, name, args, locked, gexpr)                             \
    if (green__likely(!green__stdio_marked(fp))) {                            \
        void *g_ = green__stdio_glibc(fp);                                    \
        if (green__likely(!g_))                                               \
            return GREEN_REAL(name) args;                                     \
        return gexpr;                                                         \
    }                                                                         \
    if (!(locked))                                                            \
        return GREEN_REAL(name) args;                                         \
    void *lk_ = green__stdio_enter(fp);                                       \
    ret r_ = GREEN_REAL(name) args;                                           \
    green__stdio_leave(lk_);                                                  \
    return r_;
#define READ(ret, name, params, args, locked, gexpr)                          \
    E ret name params { READ_CALL(ret, name, args, locked, gexpr) }

#define GETC(name, locked, takes)                                             \
    READ(int, name, (FILE *fp), (fp), locked,                                 \
         green__stdio_glibc_getc(g_, fp, GREEN_REAL(name), takes))
GETC(fgetc, true, true)
GETC(getc, true, true)
GETC(_IO_getc, true, true)
GETC(fgetc_unlocked, false, true)
GETC(getc_unlocked, false, true)
GETC(__uflow, false, true)
GETC(__underflow, false, false)

E int getchar(void)
{
    FILE *fp = stdin;
    READ_CALL(int, getc, (fp), true, green__stdio_glibc_getc(g_, fp, GREEN_REAL(getc), true))
}

E int getchar_unlocked(void)
{
    FILE *fp = stdin;
    READ_CALL(int, getc_unlocked, (fp), false,
              green__stdio_glibc_getc(g_, fp, GREEN_REAL(getc_unlocked), true))
}

READ(char *, fgets, (char *s, int n, FILE *fp), (s, n, fp), true,
     green__stdio_glibc_fgets(g_, s, n, fp, false, 0, GREEN_REAL(fgets)))
READ(char *, __fgets_chk, (char *s, size_t size, int n, FILE *fp), (s, size, n, fp), true,
     green__stdio_glibc_fgets(g_, s, n, fp, true, size, NULL))
READ(char *, fgets_unlocked, (char *s, int n, FILE *fp), (s, n, fp), false,
     green__stdio_glibc_fgets(g_, s, n, fp, false, 0, GREEN_REAL(fgets_unlocked)))
READ(char *, __fgets_unlocked_chk, (char *s, size_t size, int n, FILE *fp), (s, size, n, fp),
     false, green__stdio_glibc_fgets(g_, s, n, fp, true, size, NULL))
READ(size_t, fread, (void *p, size_t size, size_t n, FILE *fp), (p, size, n, fp), true,
     green__stdio_glibc_fread(g_, p, size, n, fp, false, 0, GREEN_REAL(fread)))
READ(size_t, __fread_chk, (void *p, size_t psize, size_t size, size_t n, FILE *fp),
     (p, psize, size, n, fp), true,
     green__stdio_glibc_fread(g_, p, size, n, fp, true, psize, NULL))
READ(size_t, fread_unlocked, (void *p, size_t size, size_t n, FILE *fp), (p, size, n, fp),
     false, green__stdio_glibc_fread(g_, p, size, n, fp, false, 0, GREEN_REAL(fread_unlocked)))
READ(size_t, __fread_unlocked_chk, (void *p, size_t psize, size_t size, size_t n, FILE *fp),
     (p, psize, size, n, fp), false,
     green__stdio_glibc_fread(g_, p, size, n, fp, true, psize, NULL))
READ(ssize_t, getline, (char **l, size_t *n, FILE *fp), (l, n, fp), true,
     green__stdio_glibc_getdelim(g_, l, n, '\n', fp, GREEN_REAL(getdelim)))
READ(ssize_t, getdelim, (char **l, size_t *n, int d, FILE *fp), (l, n, d, fp), true,
     green__stdio_glibc_getdelim(g_, l, n, d, fp, GREEN_REAL(getdelim)))
READ(ssize_t, __getdelim, (char **l, size_t *n, int d, FILE *fp), (l, n, d, fp), true,
     green__stdio_glibc_getdelim(g_, l, n, d, fp, GREEN_REAL(__getdelim)))

/* getw: an int's bytes, as glibc's (_IO_sgetn of sizeof(int)). */
static int glibc_getw(void *g, FILE *fp)
{
    int w;
    return green__stdio_glibc_fread(g, &w, sizeof w, 1, fp, false, 0, GREEN_REAL(fread)) == 1
               ? w : EOF;
}
READ(int, getw, (FILE *fp), (fp), true, glibc_getw(g_, fp))

/* ungetc keeps out of a read that waits for the rest of its line. */
static int glibc_ungetc(void *g, int c, FILE *fp)
{
    green__stdio_glibc_lock(g);
    int r = GREEN_REAL(ungetc)(c, fp);
    green__stdio_glibc_unlock(g);
    return r;
}
READ(int, ungetc, (int c, FILE *fp), (c, fp), true, glibc_ungetc(g_, c, fp))

READ(int, __isoc99_vfscanf, (FILE *fp, const char *f, va_list ap), (fp, f, ap), true,
     green__stdio_glibc_scanf(g_, fp, GREEN_REAL(__isoc99_vfscanf), f, ap))
/* The write functions: glibc's own streams that can wait write through
 * io_stdio_write.c. */
READ(int, fputs, (const char *s, FILE *fp), (s, fp), true,
     green__stdio_glibc_fputs(g_, s, fp, GREEN_REAL(fputs)))
READ(int, fputs_unlocked, (const char *s, FILE *fp), (s, fp), false,
     green__stdio_glibc_fputs(g_, s, fp, GREEN_REAL(fputs_unlocked)))
#define PUTC(name, locked)                                                    \
    READ(int, name, (int c, FILE *fp), (c, fp), locked,                       \
         green__stdio_glibc_putc(g_, c, fp, GREEN_REAL(name)))
PUTC(fputc, true)
PUTC(putc, true)
PUTC(_IO_putc, true)
PUTC(fputc_unlocked, false)
PUTC(putc_unlocked, false)

static int real_overflow(int c, FILE *fp)
{
    return GREEN_REAL(__overflow)(fp, c);
}
READ(int, __overflow, (FILE *fp, int c), (fp, c), false,
     green__stdio_glibc_putc(g_, c, fp, real_overflow))

E int putchar(int c)
{
    FILE *fp = stdout;
    READ_CALL(int, putchar, (c), true, green__stdio_glibc_putc(g_, c, fp, GREEN_REAL(putc)))
}

E int putchar_unlocked(int c)
{
    FILE *fp = stdout;
    READ_CALL(int, putchar_unlocked, (c), false,
              green__stdio_glibc_putc(g_, c, fp, GREEN_REAL(putc_unlocked)))
}

E int puts(const char *s)
{
    FILE *fp = stdout;
    READ_CALL(int, puts, (s), true, green__stdio_glibc_puts(g_, s, GREEN_REAL(puts)))
}

/* putw: an int's bytes, as glibc's (_IO_sputn). */
static int glibc_putw(void *g, int w, FILE *fp)
{
    return green__stdio_glibc_fwrite(g, &w, sizeof w, 1, fp, GREEN_REAL(fwrite)) == 1 ? 0 : EOF;
}
READ(int, putw, (int w, FILE *fp), (w, fp), true, glibc_putw(g_, w, fp))
READ(size_t, fwrite, (const void *p, size_t size, size_t n, FILE *fp), (p, size, n, fp), true,
     green__stdio_glibc_fwrite(g_, p, size, n, fp, GREEN_REAL(fwrite)))
READ(size_t, fwrite_unlocked, (const void *p, size_t size, size_t n, FILE *fp), (p, size, n, fp),
     false, green__stdio_glibc_fwrite(g_, p, size, n, fp, GREEN_REAL(fwrite_unlocked)))
READ(int, vfprintf, (FILE *fp, const char *f, va_list ap), (fp, f, ap), true,
     green__stdio_glibc_vfprintf(g_, fp, -1, f, ap, GREEN_REAL(vfprintf), NULL))
READ(int, __vfprintf_chk, (FILE *fp, int flag, const char *f, va_list ap), (fp, flag, f, ap),
     true, green__stdio_glibc_vfprintf(g_, fp, flag < 0 ? 0 : flag, f, ap, NULL,
                                       GREEN_REAL(__vfprintf_chk)))

/* printf and its forms write stdout. */
E int vprintf(const char *f, va_list ap)
{
    FILE *fp = stdout;
    READ_CALL(int, vprintf, (f, ap), true,
              green__stdio_glibc_vfprintf(g_, fp, -1, f, ap, GREEN_REAL(vfprintf), NULL))
}

E int __vprintf_chk(int flag, const char *f, va_list ap)
{
    FILE *fp = stdout;
    READ_CALL(int, __vprintf_chk, (flag, f, ap), true,
              green__stdio_glibc_vfprintf(g_, fp, flag < 0 ? 0 : flag, f, ap, NULL,
                                          GREEN_REAL(__vfprintf_chk)))
}

E int printf(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = vprintf(f, ap);
    va_end(ap);
    return r;
}

E int __printf_chk(int flag, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = __vprintf_chk(flag, f, ap);
    va_end(ap);
    return r;
}
STREAM(int, fseek, (FILE *fp, long off, int whence), (fp, off, whence))
STREAM(int, fseeko, (FILE *fp, off_t off, int whence), (fp, off, whence))
STREAM(int, fseeko64, (FILE *fp, off64_t off, int whence), (fp, off, whence))
STREAM(long, ftell, (FILE *fp), (fp))
STREAM(off_t, ftello, (FILE *fp), (fp))
STREAM(off64_t, ftello64, (FILE *fp), (fp))
STREAM_VOID(rewind, (FILE *fp), (fp))
STREAM(int, fgetpos, (FILE *fp, fpos_t *pos), (fp, pos))
STREAM(int, fsetpos, (FILE *fp, const fpos_t *pos), (fp, pos))
STREAM(int, fgetpos64, (FILE *fp, fpos64_t *pos), (fp, pos))
STREAM(int, fsetpos64, (FILE *fp, const fpos64_t *pos), (fp, pos))
STREAM(int, setvbuf, (FILE *fp, char *buf, int mode, size_t size), (fp, buf, mode, size))
STREAM_VOID(setbuf, (FILE *fp, char *buf), (fp, buf))
STREAM_VOID(setbuffer, (FILE *fp, char *buf, size_t size), (fp, buf, size))
STREAM_VOID(setlinebuf, (FILE *fp), (fp))
STREAM(int, feof, (FILE *fp), (fp))
STREAM(int, ferror, (FILE *fp), (fp))
STREAM_VOID(clearerr, (FILE *fp), (fp))
/* fflush(NULL) writes every stream with glibc's write: stdout and stderr
 * are written first, without holding the hub when they can wait. */
static int glibc_fflush(void *g, FILE *fp)
{
    return green__stdio_glibc_fflush(g, fp, GREEN_REAL(fflush));
}

E int fflush(FILE *fp)
{
    if (!fp) {
        FILE *std[] = { stdout, stderr };
        for (int k = 0; k < 2; k++) {
            void *g = green__stdio_glibc(std[k]);
            if (g)
                glibc_fflush(g, std[k]);
        }
        return GREEN_REAL(fflush)(NULL);
    }
    READ_CALL(int, fflush, (fp), true, glibc_fflush(g_, fp))
}
READ(int, fflush_unlocked, (FILE *fp), (fp), false,
     green__stdio_glibc_fflush(g_, fp, GREEN_REAL(fflush_unlocked)))

/* The GNU scanf (fscanf, vfscanf) and the ISO C99 one (__isoc99_*) are
 * two symbols; with -std=c11 glibc's header renames the former to the
 * latter, so these are defined by their assembly names. */
E int gnu_vfscanf(FILE *fp, const char *f, va_list ap) __asm__("vfscanf");
E int gnu_fscanf(FILE *fp, const char *f, ...) __asm__("fscanf");
E int gnu_vscanf(const char *f, va_list ap) __asm__("vscanf");
E int gnu_scanf(const char *f, ...) __asm__("scanf");
E int gnu_vfscanf(FILE *fp, const char *f, va_list ap)
{
    READ_CALL(int, vfscanf, (fp, f, ap), true,
              green__stdio_glibc_scanf(g_, fp, GREEN_REAL(vfscanf), f, ap))
}
E int gnu_fscanf(FILE *fp, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = gnu_vfscanf(fp, f, ap);
    va_end(ap);
    return r;
}
E int __isoc99_fscanf(FILE *fp, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = __isoc99_vfscanf(fp, f, ap);
    va_end(ap);
    return r;
}
/* scanf and vscanf read stdin: glibc's vfscanf on it, as glibc's do. */
E int gnu_vscanf(const char *f, va_list ap)
{
    return gnu_vfscanf(stdin, f, ap);
}
E int gnu_scanf(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = gnu_vfscanf(stdin, f, ap);
    va_end(ap);
    return r;
}
E int __isoc99_vscanf(const char *f, va_list ap)
{
    return __isoc99_vfscanf(stdin, f, ap);
}
E int __isoc99_scanf(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = __isoc99_vfscanf(stdin, f, ap);
    va_end(ap);
    return r;
}
E int fprintf(FILE *fp, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = vfprintf(fp, f, ap);
    va_end(ap);
    return r;
}

E int __fprintf_chk(FILE *fp, int flag, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = __vfprintf_chk(fp, flag, f, ap);
    va_end(ap);
    return r;
}

E int fclose(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp))) {
        green__stdio_glibc_closing(fp);
        return GREEN_REAL(fclose)(fp);
    }
    return green__stdio_fclose(fp);
}

/* glibc's streams made with glibc's internal open: the descriptor is
 * recorded as new (hooks/io_stdio_glibc.c). freopen closes fp's old
 * descriptor first, as fclose would. */
E FILE *fopen(const char *path, const char *mode)
{
    return green__stdio_glibc_opened(GREEN_REAL(fopen)(path, mode));
}

E FILE *fopen64(const char *path, const char *mode)
{
    return green__stdio_glibc_opened(GREEN_REAL(fopen64)(path, mode));
}

E FILE *freopen(const char *path, const char *mode, FILE *fp)
{
    if (!green__stdio_marked(fp))
        green__stdio_glibc_closing(fp);
    return green__stdio_glibc_opened(GREEN_REAL(freopen)(path, mode, fp));
}

E FILE *freopen64(const char *path, const char *mode, FILE *fp)
{
    if (!green__stdio_marked(fp))
        green__stdio_glibc_closing(fp);
    return green__stdio_glibc_opened(GREEN_REAL(freopen64)(path, mode, fp));
}

E FILE *tmpfile(void)
{
    return green__stdio_glibc_opened(GREEN_REAL(tmpfile)());
}

E FILE *tmpfile64(void)
{
    return green__stdio_glibc_opened(GREEN_REAL(tmpfile64)());
}

/* flockfile holds the stream for the calling thread across calls (the
 * _unlocked functions rely on it): the green lock first, glibc's after;
 * released in the other order. */
E void flockfile(FILE *fp)
{
    void *g = green__stdio_marked(fp) ? NULL : green__stdio_glibc(fp);
    if (g)
        green__stdio_glibc_lock(g);
    else
        green__stdio_enter(fp);
    GREEN_REAL(flockfile)(fp);
}

E void funlockfile(FILE *fp)
{
    GREEN_REAL(funlockfile)(fp);
    void *g = green__stdio_marked(fp) ? NULL : green__stdio_glibc(fp);
    if (g)
        green__stdio_glibc_unlock(g);
    else
        green__stdio_leave(green__stdio_stream(fp));
}

E int ftrylockfile(FILE *fp)
{
    void *g = green__stdio_marked(fp) ? NULL : green__stdio_glibc(fp);
    if (g) {
        if (!green__stdio_glibc_trylock(g))
            return 1;
        int r = GREEN_REAL(ftrylockfile)(fp);
        if (r != 0)
            green__stdio_glibc_unlock(g);
        return r;
    }
    void *lk = green__stdio_stream(fp);
    if (lk && !green__stdio_trylock(lk))
        return 1;
    int r = GREEN_REAL(ftrylockfile)(fp);
    if (r != 0)
        green__stdio_leave(lk);
    return r;
}

/* What glibc writes by itself to stderr or a descriptor: through
 * hooks/io_stdio_write.c when it can wait. */
E void perror(const char *s)
{
    if (!green__stdio_glibc_perror(s))
        GREEN_REAL(perror)(s);
}

E int vdprintf(int fd, const char *f, va_list ap)
{
    return green__stdio_glibc_vdprintf(fd, f, ap, GREEN_REAL(vdprintf));
}

E int dprintf(int fd, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = vdprintf(fd, f, ap);
    va_end(ap);
    return r;
}

E void vwarn(const char *f, va_list ap)
{
    if (!green__stdio_glibc_vwarn(true, f, ap))
        GREEN_REAL(vwarn)(f, ap);
}

E void vwarnx(const char *f, va_list ap)
{
    if (!green__stdio_glibc_vwarn(false, f, ap))
        GREEN_REAL(vwarnx)(f, ap);
}

E void warn(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vwarn(f, ap);
    va_end(ap);
}

E void warnx(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vwarnx(f, ap);
    va_end(ap);
}

E _Noreturn void verr(int eval, const char *f, va_list ap)
{
    vwarn(f, ap);
    exit(eval);
}

E _Noreturn void verrx(int eval, const char *f, va_list ap)
{
    vwarnx(f, ap);
    exit(eval);
}

E _Noreturn void err(int eval, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vwarn(f, ap);
    va_end(ap);
    exit(eval);
}

E _Noreturn void errx(int eval, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vwarnx(f, ap);
    va_end(ap);
    exit(eval);
}

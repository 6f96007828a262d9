/*
 * export_stdio.c - the libc names of the stdio functions that take a
 * stream and its lock: each takes the stream's green lock first when the
 * stream is one of the shim's (fdopen on a socket or a pipe,
 * hooks/io_stdio.c, "Its lock"), then calls glibc's. Variadic ones go to
 * their v-variants; fortified ones (__fprintf_chk...) are what programs
 * built with _FORTIFY_SOURCE call.
 */
#define _GNU_SOURCE
#undef _FILE_OFFSET_BITS
#undef _FORTIFY_SOURCE
#include "hooks.h"
#include "io.h"
#include <stdarg.h>
#include <stdio.h>

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
extern int _IO_putc(int c, FILE *fp);

E char *fgets(char *s, int n, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fgets)(s, n, fp);
    void *lk = green__stdio_enter(fp);
    char * r = GREEN_REAL(fgets)(s, n, fp);
    green__stdio_leave(lk);
    return r;
}
E char *__fgets_chk(char *s, size_t size, int n, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(__fgets_chk)(s, size, n, fp);
    void *lk = green__stdio_enter(fp);
    char * r = GREEN_REAL(__fgets_chk)(s, size, n, fp);
    green__stdio_leave(lk);
    return r;
}
E int fgetc(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fgetc)(fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(fgetc)(fp);
    green__stdio_leave(lk);
    return r;
}
E int getc(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(getc)(fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(getc)(fp);
    green__stdio_leave(lk);
    return r;
}
E int _IO_getc(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(_IO_getc)(fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(_IO_getc)(fp);
    green__stdio_leave(lk);
    return r;
}
E size_t fread(void *p, size_t size, size_t n, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fread)(p, size, n, fp);
    void *lk = green__stdio_enter(fp);
    size_t r = GREEN_REAL(fread)(p, size, n, fp);
    green__stdio_leave(lk);
    return r;
}
E size_t __fread_chk(void *p, size_t psize, size_t size, size_t n, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(__fread_chk)(p, psize, size, n, fp);
    void *lk = green__stdio_enter(fp);
    size_t r = GREEN_REAL(__fread_chk)(p, psize, size, n, fp);
    green__stdio_leave(lk);
    return r;
}
E ssize_t getline(char **l, size_t *n, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(getline)(l, n, fp);
    void *lk = green__stdio_enter(fp);
    ssize_t r = GREEN_REAL(getline)(l, n, fp);
    green__stdio_leave(lk);
    return r;
}
E ssize_t getdelim(char **l, size_t *n, int d, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(getdelim)(l, n, d, fp);
    void *lk = green__stdio_enter(fp);
    ssize_t r = GREEN_REAL(getdelim)(l, n, d, fp);
    green__stdio_leave(lk);
    return r;
}
E ssize_t __getdelim(char **l, size_t *n, int d, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(__getdelim)(l, n, d, fp);
    void *lk = green__stdio_enter(fp);
    ssize_t r = GREEN_REAL(__getdelim)(l, n, d, fp);
    green__stdio_leave(lk);
    return r;
}
/* The GNU scanf (fscanf, vfscanf) and the ISO C99 one (__isoc99_*) are
 * two symbols; with -std=c11 glibc's header renames the former to the
 * latter, so these are defined by their assembly names. */
E int gnu_vfscanf(FILE *fp, const char *f, va_list ap) __asm__("vfscanf");
E int gnu_fscanf(FILE *fp, const char *f, ...) __asm__("fscanf");

E int gnu_vfscanf(FILE *fp, const char *f, va_list ap)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(vfscanf)(fp, f, ap);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(vfscanf)(fp, f, ap);
    green__stdio_leave(lk);
    return r;
}
E int __isoc99_vfscanf(FILE *fp, const char *f, va_list ap)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(__isoc99_vfscanf)(fp, f, ap);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(__isoc99_vfscanf)(fp, f, ap);
    green__stdio_leave(lk);
    return r;
}
E int ungetc(int c, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(ungetc)(c, fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(ungetc)(c, fp);
    green__stdio_leave(lk);
    return r;
}
E int getw(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(getw)(fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(getw)(fp);
    green__stdio_leave(lk);
    return r;
}
E int fputs(const char *s, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fputs)(s, fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(fputs)(s, fp);
    green__stdio_leave(lk);
    return r;
}
E int fputc(int c, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fputc)(c, fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(fputc)(c, fp);
    green__stdio_leave(lk);
    return r;
}
E int putc(int c, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(putc)(c, fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(putc)(c, fp);
    green__stdio_leave(lk);
    return r;
}
E int _IO_putc(int c, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(_IO_putc)(c, fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(_IO_putc)(c, fp);
    green__stdio_leave(lk);
    return r;
}
E int putw(int w, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(putw)(w, fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(putw)(w, fp);
    green__stdio_leave(lk);
    return r;
}
E size_t fwrite(const void *p, size_t size, size_t n, FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fwrite)(p, size, n, fp);
    void *lk = green__stdio_enter(fp);
    size_t r = GREEN_REAL(fwrite)(p, size, n, fp);
    green__stdio_leave(lk);
    return r;
}
E int vfprintf(FILE *fp, const char *f, va_list ap)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(vfprintf)(fp, f, ap);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(vfprintf)(fp, f, ap);
    green__stdio_leave(lk);
    return r;
}
E int __vfprintf_chk(FILE *fp, int flag, const char *f, va_list ap)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(__vfprintf_chk)(fp, flag, f, ap);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(__vfprintf_chk)(fp, flag, f, ap);
    green__stdio_leave(lk);
    return r;
}
E int fseek(FILE *fp, long off, int whence)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fseek)(fp, off, whence);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(fseek)(fp, off, whence);
    green__stdio_leave(lk);
    return r;
}
E int fseeko(FILE *fp, off_t off, int whence)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fseeko)(fp, off, whence);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(fseeko)(fp, off, whence);
    green__stdio_leave(lk);
    return r;
}
E int fseeko64(FILE *fp, off64_t off, int whence)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fseeko64)(fp, off, whence);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(fseeko64)(fp, off, whence);
    green__stdio_leave(lk);
    return r;
}
E long ftell(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(ftell)(fp);
    void *lk = green__stdio_enter(fp);
    long r = GREEN_REAL(ftell)(fp);
    green__stdio_leave(lk);
    return r;
}
E off_t ftello(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(ftello)(fp);
    void *lk = green__stdio_enter(fp);
    off_t r = GREEN_REAL(ftello)(fp);
    green__stdio_leave(lk);
    return r;
}
E off64_t ftello64(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(ftello64)(fp);
    void *lk = green__stdio_enter(fp);
    off64_t r = GREEN_REAL(ftello64)(fp);
    green__stdio_leave(lk);
    return r;
}
E void rewind(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp))) {
        GREEN_REAL(rewind)(fp);
        return;
    }
    void *lk = green__stdio_enter(fp);
    GREEN_REAL(rewind)(fp);
    green__stdio_leave(lk);
}
E int fgetpos(FILE *fp, fpos_t *pos)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fgetpos)(fp, pos);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(fgetpos)(fp, pos);
    green__stdio_leave(lk);
    return r;
}
E int fsetpos(FILE *fp, const fpos_t *pos)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fsetpos)(fp, pos);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(fsetpos)(fp, pos);
    green__stdio_leave(lk);
    return r;
}
E int fgetpos64(FILE *fp, fpos64_t *pos)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fgetpos64)(fp, pos);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(fgetpos64)(fp, pos);
    green__stdio_leave(lk);
    return r;
}
E int fsetpos64(FILE *fp, const fpos64_t *pos)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fsetpos64)(fp, pos);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(fsetpos64)(fp, pos);
    green__stdio_leave(lk);
    return r;
}
E int setvbuf(FILE *fp, char *buf, int mode, size_t size)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(setvbuf)(fp, buf, mode, size);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(setvbuf)(fp, buf, mode, size);
    green__stdio_leave(lk);
    return r;
}
E void setbuf(FILE *fp, char *buf)
{
    if (green__likely(!green__stdio_marked(fp))) {
        GREEN_REAL(setbuf)(fp, buf);
        return;
    }
    void *lk = green__stdio_enter(fp);
    GREEN_REAL(setbuf)(fp, buf);
    green__stdio_leave(lk);
}
E void setbuffer(FILE *fp, char *buf, size_t size)
{
    if (green__likely(!green__stdio_marked(fp))) {
        GREEN_REAL(setbuffer)(fp, buf, size);
        return;
    }
    void *lk = green__stdio_enter(fp);
    GREEN_REAL(setbuffer)(fp, buf, size);
    green__stdio_leave(lk);
}
E void setlinebuf(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp))) {
        GREEN_REAL(setlinebuf)(fp);
        return;
    }
    void *lk = green__stdio_enter(fp);
    GREEN_REAL(setlinebuf)(fp);
    green__stdio_leave(lk);
}
E int feof(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(feof)(fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(feof)(fp);
    green__stdio_leave(lk);
    return r;
}
E int ferror(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(ferror)(fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(ferror)(fp);
    green__stdio_leave(lk);
    return r;
}
E void clearerr(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp))) {
        GREEN_REAL(clearerr)(fp);
        return;
    }
    void *lk = green__stdio_enter(fp);
    GREEN_REAL(clearerr)(fp);
    green__stdio_leave(lk);
}

E int fprintf(FILE *fp, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    void *lk = green__stdio_marked(fp) ? green__stdio_enter(fp) : NULL;
    int r = GREEN_REAL(vfprintf)(fp, f, ap);
    green__stdio_leave(lk);
    va_end(ap);
    return r;
}

E int __fprintf_chk(FILE *fp, int flag, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    void *lk = green__stdio_marked(fp) ? green__stdio_enter(fp) : NULL;
    int r = GREEN_REAL(__vfprintf_chk)(fp, flag, f, ap);
    green__stdio_leave(lk);
    va_end(ap);
    return r;
}

E int gnu_fscanf(FILE *fp, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    void *lk = green__stdio_marked(fp) ? green__stdio_enter(fp) : NULL;
    int r = GREEN_REAL(vfscanf)(fp, f, ap);
    green__stdio_leave(lk);
    va_end(ap);
    return r;
}

E int __isoc99_fscanf(FILE *fp, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    void *lk = green__stdio_marked(fp) ? green__stdio_enter(fp) : NULL;
    int r = GREEN_REAL(__isoc99_vfscanf)(fp, f, ap);
    green__stdio_leave(lk);
    va_end(ap);
    return r;
}

/* fflush(NULL) flushes every stream, each under glibc's lock alone. */
E int fflush(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fflush)(fp);
    void *lk = green__stdio_enter(fp);
    int r = GREEN_REAL(fflush)(fp);
    green__stdio_leave(lk);
    return r;
}

E int fclose(FILE *fp)
{
    if (green__likely(!green__stdio_marked(fp)))
        return GREEN_REAL(fclose)(fp);
    return green__stdio_fclose(fp);
}

/* flockfile holds the stream for the calling thread across calls (the
 * _unlocked functions rely on it): the green lock first, glibc's after;
 * released in the other order. */
E void flockfile(FILE *fp)
{
    green__stdio_enter(fp);
    GREEN_REAL(flockfile)(fp);
}

E void funlockfile(FILE *fp)
{
    GREEN_REAL(funlockfile)(fp);
    green__stdio_leave(green__stdio_stream(fp));
}

E int ftrylockfile(FILE *fp)
{
    void *lk = green__stdio_stream(fp);
    if (lk && !green__stdio_trylock(lk))
        return 1;
    int r = GREEN_REAL(ftrylockfile)(fp);
    if (r != 0)
        green__stdio_leave(lk);
    return r;
}

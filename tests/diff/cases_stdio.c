/*
 * cases_stdio.c - differential cases of stdio streams over sockets and
 * pipes (see diff.h): fdopen's checks and effects, line reads that wait
 * while other threads go on, lines that arrive in pieces, large writes,
 * EINTR and SA_RESTART in fgets, end of file, fclose.
 */
#include "diff.h"
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int sv[2];

/* Writes its script to sv[1]: after each pause the next piece. */
struct piece {
    int ms;
    const char *text;
};

static void *writer(void *arg)
{
    for (const struct piece *p = arg; p->text; p++) {
        usleep((useconds_t)p->ms * 1000);
        if (write(sv[1], p->text, strlen(p->text)) < 0)
            break;
    }
    return NULL;
}

static void show_line(const char *what, FILE *f, char *r, const char *buf)
{
    size_t n = r ? strlen(buf) : 0;
    diff_out("%s: %s \"%.*s\" eof %d error %d", what, r ? "line" : "NULL",
             (int)(n && buf[n - 1] == '\n' ? n - 1 : n), r ? buf : "", feof(f), ferror(f));
}

/* n fgets on f; after each line, whether the ticker went on while that
 * fgets waited. */
static void fgets_while_ticking(FILE *f, int n)
{
    char buf[64];
    for (int k = 0; k < n; k++) {
        int before = diff_ticks();
        char *r = fgets(buf, sizeof buf, f);
        int during = diff_ticks() - before;
        show_line("fgets", f, r, buf);
        if (r)
            diff_out("the ticker ran while it waited: %s", during >= 3 ? "yes" : "no");
    }
}

/* fgets waits for lines that come in pieces 40 ms apart; a thread that
 * ticks every 2 ms goes on meanwhile (natively on its own OS thread; under
 * the shim the reading thread's wait must not hold its hub). */
DIFF_CASE(stdio, fgets_on_a_socket_waits_while_other_threads_run)
{
    CALL("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    FILE *f = fdopen(sv[0], "r");
    diff_out("fdopen: %s, fileno is the socket: %d", f ? "ok" : "NULL", f && fileno(f) == sv[0]);
    static const struct piece script[] = {
        { 40, "first line\nsecond " }, { 40, "line\n" }, { 40, "third" }, { 40, " line\n" },
        { 0, NULL } };
    pthread_t tk = diff_ticker_start();
    pthread_t w = diff_spawn(writer, (void *)script);
    fgets_while_ticking(f, 3);
    diff_out("buffer size %zu", __fbufsize(f));
    pthread_join(w, NULL);
    diff_ticker_stop(tk);
    close(sv[1]);
    char buf[64];
    char *r = fgets(buf, sizeof buf, f);
    show_line("after the peer closed", f, r, buf);
    CALL("fclose", fclose(f));
    CALL("the socket is closed", fcntl(sv[0], F_GETFD));
}

/* fdopen's checks, as glibc makes them. */
DIFF_CASE(stdio, fdopen_checks_the_mode_against_the_descriptor)
{
    int p[2];
    CALL("pipe", pipe(p));
    errno = 0;
    FILE *f = fdopen(p[1], "r");
    diff_out("read stream on the write end: %s %s", f ? "stream" : "NULL", diff_errname(errno));
    errno = 0;
    f = fdopen(p[0], "q");
    diff_out("mode q: %s %s", f ? "stream" : "NULL", diff_errname(errno));
    errno = 0;
    f = fdopen(p[0], "r+");
    diff_out("r+ on the read end: %s %s", f ? "stream" : "NULL", diff_errname(errno));
    errno = 0;
    f = fdopen(1000, "r");
    diff_out("closed descriptor: %s %s", f ? "stream" : "NULL", diff_errname(errno));
    CALL("O_APPEND before", (fcntl(p[1], F_GETFL) & O_APPEND) != 0);
    FILE *a = fdopen(p[1], "a");
    CALL("O_APPEND after fdopen a", (fcntl(p[1], F_GETFL) & O_APPEND) != 0);
    CALL("fputs", fputs("appended", a));
    CALL("fflush", fflush(a));
    char buf[16] = "";
    CALL("read", read(p[0], buf, sizeof buf - 1));
    diff_out("the pipe got \"%s\"", buf);
    errno = 0;
    long pos = ftell(a);
    diff_out("ftell: %ld %s", pos, diff_errname(errno));
    errno = 0;
    int sk = fseek(a, 0, SEEK_SET);
    diff_out("fseek: %d %s", sk, diff_errname(errno));
    CALL("fclose", fclose(a));
    CALL("the write end is closed", fcntl(p[1], F_GETFD));
    close(p[0]);
}

/* 200 KiB of lines written by one thread with fprintf, read by another
 * with fgets: more than the socket holds, so both wait in turn. */
static void *print_lines(void *arg)
{
    FILE *f = arg;
    for (int i = 0; i < 4000; i++)
        fprintf(f, "line %05d of the writer, padded to fifty bytes....\n", i);
    fflush(f);
    shutdown(sv[1], SHUT_WR);
    return NULL;
}

DIFF_CASE(stdio, lines_written_with_fprintf_and_read_with_fgets_across_threads)
{
    CALL("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    FILE *in = fdopen(sv[0], "r"), *out = fdopen(sv[1], "w");
    pthread_t w = diff_spawn(print_lines, out);
    char buf[128];
    int lines = 0, bad = 0;
    while (fgets(buf, sizeof buf, in)) {
        char want[64];
        snprintf(want, sizeof want, "line %05d of the writer, padded to fifty bytes....\n", lines);
        bad += strcmp(buf, want) != 0;
        lines++;
    }
    diff_out("lines %d, out of order or damaged %d, eof %d error %d", lines, bad, feof(in),
             ferror(in));
    pthread_join(w, NULL);
    CALL("fclose out", fclose(out));
    CALL("fclose in", fclose(in));
}

/* A signal interrupts fgets: without SA_RESTART it returns NULL with
 * EINTR and the stream's error flag; with it, the line is read. */
static volatile sig_atomic_t hits;
static void on_usr1(int sig) { (void)sig; hits++; }

static void *signal_then_write(void *arg)
{
    pthread_t target = *(pthread_t *)arg;
    usleep(40000);
    pthread_kill(target, SIGUSR1);
    usleep(40000);
    if (write(sv[1], "late line\n", 10) < 0)
        return NULL;
    return NULL;
}

static void fgets_interrupted(int flags)
{
    struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    hits = 0;
    CALL("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    FILE *f = fdopen(sv[0], "r");
    pthread_t self = pthread_self();
    pthread_t t = diff_spawn(signal_then_write, &self);
    char buf[64];
    errno = 0;
    char *r = fgets(buf, sizeof buf, f);
    int e = errno;
    show_line("fgets", f, r, buf);
    diff_out("errno %s, handler ran %d", diff_errname(r ? 0 : e), (int)hits);
    if (!r) {
        clearerr(f);
        r = fgets(buf, sizeof buf, f);
        show_line("fgets again", f, r, buf);
    }
    pthread_join(t, NULL);
    fclose(f);
    close(sv[1]);
    signal(SIGUSR1, SIG_DFL);
}

DIFF_CASE(stdio, a_signal_without_sa_restart_interrupts_fgets)
{
    fgets_interrupted(0);
}

DIFF_CASE(stdio, a_signal_with_sa_restart_does_not_interrupt_fgets)
{
    fgets_interrupted(SA_RESTART);
}

/* One stream shared by threads, each call under the stream's lock as
 * natively: four threads read lines from one pipe stream while a writer
 * sends them in bursts; four threads write lines to one socket stream
 * while a reader drains it slowly. No line is lost, cut or mixed. */
static FILE *shared;
static atomic_int shared_lines, shared_bad;

static void *read_shared(void *arg)
{
    (void)arg;
    char buf[128];
    while (fgets(buf, sizeof buf, shared)) {
        int k;
        char tail[64];
        if (sscanf(buf, "burst line %d %63s", &k, tail) != 2 || strcmp(tail, "end") != 0)
            atomic_fetch_add(&shared_bad, 1);
        atomic_fetch_add(&shared_lines, 1);
    }
    return NULL;
}

static void *write_bursts(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char line[64];
    for (int i = 0; i < 400; i++) {
        int n = snprintf(line, sizeof line, "burst line %d end\n", i);
        if (write(fd, line, (size_t)n) != n)
            break;
        if (i % 50 == 49)
            usleep(10000);
    }
    close(fd);
    return NULL;
}

DIFF_CASE(stdio, threads_reading_one_stream_take_whole_lines)
{
    int p[2];
    CALL("pipe", pipe(p));
    shared = fdopen(p[0], "r");
    atomic_store(&shared_lines, 0);
    atomic_store(&shared_bad, 0);
    pthread_t r[4];
    for (int i = 0; i < 4; i++)
        r[i] = diff_spawn(read_shared, NULL);
    pthread_t w = diff_spawn(write_bursts, (void *)(intptr_t)p[1]);
    pthread_join(w, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(r[i], NULL);
    diff_out("lines read %d, damaged %d", atomic_load(&shared_lines), atomic_load(&shared_bad));
    CALL("fclose", fclose(shared));
}

static void *write_shared(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 300; i++)
        fprintf(shared, "writer %d line %03d %s\n", id,
                i, "................................................................");
    fflush(shared);                /* the last writer leaves nothing behind */
    return NULL;
}

DIFF_CASE(stdio, threads_writing_one_stream_write_whole_lines)
{
    CALL("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    int small = 4096;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    shared = fdopen(sv[1], "w");
    pthread_t w[4];
    for (int i = 0; i < 4; i++)
        w[i] = diff_spawn(write_shared, (void *)(intptr_t)i);
    FILE *in = fdopen(sv[0], "r");
    char buf[256];
    int lines = 0, bad = 0, next[4] = { 0 };
    struct timespec slow = { 0, 200000 };
    while (lines < 1200 && fgets(buf, sizeof buf, in)) {
        int id, k;
        char dots[128];
        if (sscanf(buf, "writer %d line %d %127s", &id, &k, dots) != 3 || id < 0 || id > 3 ||
            k != next[id] || strlen(dots) != 64)
            bad++;
        else
            next[id]++;
        if (++lines % 100 == 0)
            nanosleep(&slow, NULL);   /* a slow reader: the writers wait */
    }
    for (int i = 0; i < 4; i++)
        pthread_join(w[i], NULL);
    diff_out("lines %d, damaged or out of order %d", lines, bad);
    CALL("fclose writer", fclose(shared));
    CALL("fclose reader", fclose(in));
}

/* ---------------------------------------------------------------- popen */

/* popen's stream reads park too: the child writes two lines 50 ms apart
 * while a thread ticks. */
DIFF_CASE(stdio, popen_reads_while_other_threads_run)
{
    pthread_t tk = diff_ticker_start();
    FILE *f = popen("sleep 0.05; echo one; sleep 0.05; echo two; exit 4", "r");
    diff_out("popen: %s", f ? "stream" : "NULL");
    fgets_while_ticking(f, 3);
    int st = pclose(f);
    diff_out("pclose: exited %d status %d", WIFEXITED(st), WEXITSTATUS(st));
    diff_ticker_stop(tk);
}

DIFF_CASE(stdio, popen_types_status_and_close_on_exec)
{
    static const char *const bad[] = { "x", "rw", "r+", "", "wr" };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        errno = 0;
        FILE *f = popen("true", bad[k]);
        diff_out("type \"%s\": %s %s", bad[k], f ? "stream" : "NULL", diff_errname(errno));
        if (f)
            pclose(f);
    }
    FILE *r = popen("exit 3", "r"), *we = popen("read x; exit $x", "we");
    diff_out("close-on-exec: r %d, we %d", fcntl(fileno(r), F_GETFD) & FD_CLOEXEC,
             fcntl(fileno(we), F_GETFD) & FD_CLOEXEC);
    int st = pclose(r);
    diff_out("r: exited %d status %d", WIFEXITED(st), WEXITSTATUS(st));
    fputs("7\n", we);
    st = pclose(we);
    diff_out("we: exited %d status %d", WIFEXITED(st), WEXITSTATUS(st));
    FILE *k = popen("kill -TERM $$", "r");
    st = pclose(k);
    diff_out("killed: signalled %d signal %d", WIFSIGNALED(st), WTERMSIG(st));
}

/* POSIX: a later popen's child does not have the earlier popen streams'
 * descriptors. (Its signal mask cannot be seen here: dash, /bin/sh on
 * Debian, clears it at start.) */
DIFF_CASE(stdio, a_popen_child_does_not_have_earlier_popen_streams)
{
    FILE *first = popen("cat >/dev/null", "w");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "test -e /proc/self/fd/%d && echo open || echo closed",
             fileno(first));
    FILE *second = popen(cmd, "r");
    char buf[64] = "";
    char *r = fgets(buf, sizeof buf, second);
    show_line("the first stream's descriptor in the second child", second, r, buf);
    pclose(second);
    pclose(first);
}

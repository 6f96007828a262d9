/*
 * cases_stdio.c - differential cases of stdio streams over sockets and
 * pipes (see diff.h): fdopen's checks and effects, line reads that wait
 * while other threads go on, lines that arrive in pieces, large writes,
 * EINTR and SA_RESTART in fgets, end of file, fclose.
 */
#include "diff.h"
#include <err.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

static int stdin_over(bool sock);

/* fgets on fdopen's stream over a socket pair, or (on_stdin) on stdin
 * over one, interrupted by SIGUSR1 installed with flags. */
static void fgets_interrupted(int flags, bool on_stdin)
{
    struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    hits = 0;
    FILE *f;
    if (on_stdin) {
        f = stdin;
        sv[1] = stdin_over(true);
    } else {
        CALL("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
        f = fdopen(sv[0], "r");
    }
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
    if (!on_stdin) {
        fclose(f);
        close(sv[1]);
    }
    signal(SIGUSR1, SIG_DFL);
}

DIFF_CASE(stdio, a_signal_without_sa_restart_interrupts_fgets)
{
    fgets_interrupted(0, false);
}

DIFF_CASE(stdio, a_signal_with_sa_restart_does_not_interrupt_fgets)
{
    fgets_interrupted(SA_RESTART, false);
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

/* ------------------------------------------- glibc's own streams: stdin */

/* stdin, stdout, stderr and fopen's streams are glibc's, with glibc's
 * internal read. Each case below puts a pipe or a socket on descriptor 0
 * before anything reads stdin (every case runs in a fresh process). */
static int stdin_peer;             /* the writing end, for the writer */

static void *stdin_writer(void *arg)
{
    for (const struct piece *p = arg; p->text; p++) {
        usleep((useconds_t)p->ms * 1000);
        if (write(stdin_peer, p->text, strlen(p->text)) < 0)
            break;
    }
    return NULL;
}

/* A pipe (sock false) or a socket on descriptor 0; returns the writer's
 * end. */
static int stdin_over(bool sock)
{
    int p[2];
    if (sock)
        CALL("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, p));
    else
        CALL("pipe", pipe(p));
    int rd = p[0], wr = p[1];
    CALL("dup2 onto 0", dup2(rd, 0));
    close(rd);
    stdin_peer = wr;
    return wr;
}

static const struct piece line_pieces[] = {
    { 40, "first line\nsecond " }, { 40, "line\n" }, { 40, "third" }, { 40, " line\n" },
    { 0, NULL } };

static void stdin_fgets_case(bool sock)
{
    int wr = stdin_over(sock);
    pthread_t tk = diff_ticker_start();
    pthread_t w = diff_spawn(stdin_writer, (void *)line_pieces);
    fgets_while_ticking(stdin, 3);
    pthread_join(w, NULL);
    diff_ticker_stop(tk);
    close(wr);
    char buf[64];
    char *r = fgets(buf, sizeof buf, stdin);
    show_line("after the writer closed", stdin, r, buf);
    r = fgets(buf, sizeof buf, stdin);
    show_line("again", stdin, r, buf);
}

/* fgets(stdin) waits for lines that come in pieces while a thread ticks:
 * the wait parks the reading thread, not its hub. */
DIFF_CASE(stdio, fgets_on_stdin_over_a_pipe_waits_while_other_threads_run)
{
    stdin_fgets_case(false);
}

DIFF_CASE(stdio, fgets_on_stdin_over_a_socket_waits_while_other_threads_run)
{
    stdin_fgets_case(true);
}

/* Each of the other ways to read stdin, fed in pieces 30 ms apart while
 * a thread ticks: getline (a 9000-byte line, longer than the stream's
 * buffer), getc to the end of a line, fread of 6000 bytes, scanf of
 * whole lines, getchar, fgets_unlocked under flockfile, getc_unlocked
 * (the macro, which calls __uflow) under flockfile, getdelim. */
static char big[9001];

static void *feed_stdin(void *arg)
{
    (void)arg;
    static const char *const parts[] = {
        "getline: ", NULL /* big, in three */, "\n",
        "getc: abc", "def\n",
        NULL /* fread: 6000 bytes, in two */,
        "scanf: 12 34\n", "56\n",
        "G", "\n",
        "unlocked: one ", "two\n",
        "macro: xyz", "w\n",
        "delim;", "tail;",
    };
    for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
        usleep(30000);
        if (parts[k]) {
            if (write(stdin_peer, parts[k], strlen(parts[k])) < 0)
                return NULL;
            continue;
        }
        const char *what = k == 1 ? big : big + 3000;
        size_t n = k == 1 ? 9000 : 6000, third = n / 3;
        for (size_t off = 0; off < n; off += third) {
            if (write(stdin_peer, what + off, third) < 0)
                return NULL;
            usleep(30000);
        }
    }
    close(stdin_peer);
    return NULL;
}

static int ticks_mark;

static void ticked(const char *what)
{
    int d = diff_ticks() - ticks_mark;
    diff_out("%s: the ticker ran while it waited: %s", what, d >= 3 ? "yes" : "no");
    ticks_mark = diff_ticks();
}

DIFF_CASE(stdio, every_stdin_read_function_waits_while_other_threads_run)
{
    for (size_t k = 0; k < sizeof big - 1; k++)
        big[k] = (char)('a' + k % 26);
    stdin_over(false);
    pthread_t tk = diff_ticker_start();
    pthread_t w = diff_spawn(feed_stdin, NULL);
    ticks_mark = diff_ticks();

    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    diff_out("getline: %zd, prefix ok %d, body ok %d, capacity %zu", n,
             n > 9 && strncmp(line, "getline: ", 9) == 0,
             n == 9010 && memcmp(line + 9, big, 9000) == 0 && line[9009] == '\n', cap);
    ticked("getline");

    char got[32];
    int k = 0, c;
    while ((c = getc(stdin)) != EOF && k < 31 && (got[k++] = (char)c) != '\n')
        ;
    got[k] = 0;
    diff_out("getc: %d chars, \"%.*s\"", k, k ? k - 1 : 0, got);
    ticked("getc");

    static char fr[6001];
    size_t m = fread(fr, 1, 6000, stdin);
    diff_out("fread: %zu, same bytes %d", m, m == 6000 && memcmp(fr, big + 3000, 6000) == 0);
    ticked("fread");

    int a = 0, b = 0, d = 0;
    int sc = scanf("scanf: %d %d", &a, &b);
    diff_out("scanf: %d (%d %d)", sc, a, b);
    sc = scanf("%d", &d);
    diff_out("scanf again: %d (%d)", sc, d);
    ticked("scanf");

    c = getchar();                 /* the newline scanf left */
    int g = getchar(), nl = getchar();
    diff_out("getchar: %d, then %d %d", c, g, nl);
    ticked("getchar");

    flockfile(stdin);
    char *r = fgets_unlocked(got, sizeof got, stdin);
    funlockfile(stdin);
    diff_out("fgets_unlocked: %s \"%s\"", r ? "line" : "NULL", r ? got : "");
    ticked("fgets_unlocked");

    flockfile(stdin);
    k = 0;
    while ((c = getc_unlocked(stdin)) != EOF && k < 31 && (got[k++] = (char)c) != '\n')
        ;
    got[k] = 0;
    funlockfile(stdin);
    diff_out("getc_unlocked: %d chars", k);
    ticked("getc_unlocked");

    n = getdelim(&line, &cap, ';', stdin);
    diff_out("getdelim: %zd \"%s\"", n, n > 0 ? line : "");
    n = getdelim(&line, &cap, ';', stdin);
    diff_out("getdelim: %zd \"%s\"", n, n > 0 ? line : "");
    ticked("getdelim");
    n = getdelim(&line, &cap, ';', stdin);
    diff_out("getdelim at the end: %zd, eof %d error %d", n, feof(stdin), ferror(stdin));
    free(line);
    pthread_join(w, NULL);
    diff_ticker_stop(tk);
}

/* A character pushed back with ungetc (another than the one read: glibc
 * keeps it in a backup area) comes first; the rest of the buffered line
 * follows without a wait; then the next line is waited for. */
DIFF_CASE(stdio, ungetc_on_stdin_then_fgets_waits_only_when_nothing_is_left)
{
    stdin_over(false);
    static const struct piece script[] = { { 0, "abc\n" }, { 60, "next line\n" }, { 0, NULL } };
    pthread_t tk = diff_ticker_start();
    pthread_t w = diff_spawn(stdin_writer, (void *)script);
    int c = getc(stdin);
    diff_out("getc '%c', ungetc %d", c, ungetc('x', stdin));
    fgets_while_ticking(stdin, 2);
    pthread_join(w, NULL);
    diff_ticker_stop(tk);
}

/* A signal without SA_RESTART makes fgets(stdin) fail with EINTR and the
 * stream's error set, as glibc's read there does; with SA_RESTART it
 * goes on waiting. */
DIFF_CASE(stdio, a_signal_without_sa_restart_interrupts_fgets_on_stdin)
{
    fgets_interrupted(0, true);
}

DIFF_CASE(stdio, a_signal_with_sa_restart_does_not_interrupt_fgets_on_stdin)
{
    fgets_interrupted(SA_RESTART, true);
}

/* Four threads read lines from stdin while a writer sends them in
 * bursts: no line is lost, cut or mixed. */
static void *read_stdin_lines(void *arg)
{
    (void)arg;
    char buf[128];
    while (fgets(buf, sizeof buf, stdin)) {
        int k;
        char tail[64];
        if (sscanf(buf, "burst line %d %63s", &k, tail) != 2 || strcmp(tail, "end") != 0)
            atomic_fetch_add(&shared_bad, 1);
        atomic_fetch_add(&shared_lines, 1);
    }
    return NULL;
}

DIFF_CASE(stdio, threads_reading_stdin_take_whole_lines)
{
    int wr = stdin_over(false);
    atomic_store(&shared_lines, 0);
    atomic_store(&shared_bad, 0);
    pthread_t r[4];
    for (int i = 0; i < 4; i++)
        r[i] = diff_spawn(read_stdin_lines, NULL);
    pthread_t w = diff_spawn(write_bursts, (void *)(intptr_t)wr);
    pthread_join(w, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(r[i], NULL);
    diff_out("lines read %d, damaged %d", atomic_load(&shared_lines), atomic_load(&shared_bad));
}

/* A thread cancelled while fgets(stdin) waits leaves the stream usable:
 * the next reader gets the next line. */
static void *fgets_forever(void *arg)
{
    (void)arg;
    char buf[64];
    while (fgets(buf, sizeof buf, stdin))
        ;
    return (void *)1;
}

DIFF_CASE(stdio, a_thread_cancelled_in_fgets_on_stdin_leaves_the_stream_usable)
{
    int wr = stdin_over(false);
    pthread_t t = diff_spawn(fgets_forever, NULL);
    usleep(50000);
    CALL("pthread_cancel", pthread_cancel(t));
    void *ret = NULL;
    CALL("pthread_join", pthread_join(t, &ret));
    diff_out("the thread was cancelled: %d", ret == PTHREAD_CANCELED);
    if (write(wr, "after the cancel\n", 17) != 17)
        diff_out("write failed");
    char buf[64];
    char *r = fgets(buf, sizeof buf, stdin);
    show_line("fgets", stdin, r, buf);
}

/* fopen of a FIFO makes a stream of glibc's too. */
DIFF_CASE(stdio, fgets_on_a_fopened_fifo_waits_while_other_threads_run)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/green-diff-fifo-%d", (int)getpid());
    unlink(path);
    CALL("mkfifo", mkfifo(path, 0600));
    int wr = open(path, O_RDWR);   /* so that the fopen below does not wait */
    FILE *f = fopen(path, "r");
    diff_out("fopen: %s", f ? "stream" : "NULL");
    stdin_peer = wr;
    pthread_t tk = diff_ticker_start();
    pthread_t w = diff_spawn(stdin_writer, (void *)line_pieces);
    fgets_while_ticking(f, 3);
    pthread_join(w, NULL);
    diff_ticker_stop(tk);
    CALL("fclose", fclose(f));
    close(wr);
    unlink(path);
}

/* scanf on stdin: a number cut in two by the writer, a match that fails
 * on a byte that stays for the next read, %n, and end of file. */
DIFF_CASE(stdio, scanf_on_stdin_reads_numbers_that_arrive_in_pieces)
{
    stdin_over(true);
    static const struct piece script[] = {
        { 0, "12" }, { 40, "34 x" }, { 40, "yz 5" }, { 40, "6\n" }, { 0, NULL } };
    pthread_t tk = diff_ticker_start();
    pthread_t w = diff_spawn(stdin_writer, (void *)script);
    ticks_mark = diff_ticks();
    int a = 0, b = 0, used = 0;
    int r = scanf("%d%n", &a, &used);
    diff_out("scanf: %d, %d, %d bytes", r, a, used);
    ticked("scanf of a number in two pieces");
    r = scanf("%d", &b);
    diff_out("scanf of a number on \"x\": %d, then getchar '%c'", r, getchar());
    r = scanf("yz %d", &b);
    diff_out("scanf: %d, %d", r, b);
    ticked("scanf");
    pthread_join(w, NULL);
    diff_ticker_stop(tk);
    close(stdin_peer);
    r = scanf("%d", &b);
    diff_out("scanf at the end: %d, eof %d error %d", r, feof(stdin), ferror(stdin));
}

/* A terminal on stdin (a pseudo-terminal, canonical mode): fgets waits
 * for a line typed in two pieces. */
DIFF_CASE(stdio, fgets_on_a_terminal_stdin_waits_while_other_threads_run)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
        diff_out("no pseudo-terminal here");
        return;
    }
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    CALL("dup2 onto 0", dup2(s, 0));
    close(s);
    diff_out("stdin is a terminal: %d", isatty(0));
    stdin_peer = m;
    static const struct piece script[] = {
        { 40, "typed " }, { 40, "line\n" }, { 40, "second\n" }, { 0, NULL } };
    pthread_t tk = diff_ticker_start();
    pthread_t w = diff_spawn(stdin_writer, (void *)script);
    fgets_while_ticking(stdin, 2);
    pthread_join(w, NULL);
    diff_ticker_stop(tk);
    close(m);
}

/* The same for scanf, which waits inside glibc's scanf (on its view of
 * stdin): the next scanf reads the next number. */
static void *scanf_forever(void *arg)
{
    (void)arg;
    int v;
    while (scanf("%d", &v) == 1)
        ;
    return (void *)1;
}

DIFF_CASE(stdio, a_thread_cancelled_in_scanf_on_stdin_leaves_the_stream_usable)
{
    int wr = stdin_over(false);
    pthread_t t = diff_spawn(scanf_forever, NULL);
    usleep(50000);
    CALL("pthread_cancel", pthread_cancel(t));
    void *ret = NULL;
    CALL("pthread_join", pthread_join(t, &ret));
    diff_out("the thread was cancelled: %d", ret == PTHREAD_CANCELED);
    if (write(wr, "41 42\n", 6) != 6)
        diff_out("write failed");
    int a = 0, b = 0;
    int r = scanf("%d %d", &a, &b);
    diff_out("scanf: %d (%d %d)", r, a, b);
}

/* ------------------------------------------ glibc's own streams: writes */

/* A pipe of one page on descriptor 2 (stderr: unbuffered), or a FIFO
 * opened with fopen (fully buffered), drained slowly by a thread that
 * checks every line: the writer waits for room while a thread ticks. */
static int drain_fd;
static atomic_int drained_lines, drained_bad, drained_bytes;

static void *slow_drain(void *arg)
{
    (void)arg;
    char buf[256], line[256];
    size_t have = 0;
    usleep(60000);
    for (;;) {
        ssize_t k = read(drain_fd, buf, 64);
        if (k <= 0)
            break;
        atomic_fetch_add(&drained_bytes, (int)k);
        for (ssize_t i = 0; i < k; i++) {
            if (have < sizeof line - 1)
                line[have++] = buf[i];
            if (buf[i] != '\n')
                continue;
            line[have] = 0;
            if (!strstr(line, "line ") || have < 8 ||
                (strcmp(line + have - 5, " end\n") != 0 && strcmp(line + have - 8, "Success\n") != 0))
                atomic_fetch_add(&drained_bad, 1);
            atomic_fetch_add(&drained_lines, 1);
            have = 0;
        }
        if (atomic_load(&drained_bytes) % 2048 < 64)
            usleep(2000);
    }
    return NULL;
}

static pthread_t start_drain(int fd)
{
    drain_fd = fd;
    atomic_store(&drained_lines, 0);
    atomic_store(&drained_bad, 0);
    atomic_store(&drained_bytes, 0);
    return diff_spawn(slow_drain, NULL);
}

static void show_drained(pthread_t d)
{
    pthread_join(d, NULL);
    diff_out("drained: %d lines, %d damaged, %d bytes", atomic_load(&drained_lines),
             atomic_load(&drained_bad), atomic_load(&drained_bytes));
}

/* A pipe of one page whose read end is returned; the write end on
 * descriptor 2 when to_stderr. */
static int small_pipe(int *wr)
{
    int p[2];
    CALL("pipe", pipe(p));
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    *wr = p[1];
    return p[0];
}

DIFF_CASE(stdio, fprintf_to_stderr_over_a_full_pipe_waits_while_other_threads_run)
{
    int wr, rd = small_pipe(&wr);
    CALL("dup2 onto 2", dup2(wr, 2));
    close(wr);
    pthread_t tk = diff_ticker_start();
    pthread_t d = start_drain(rd);
    ticks_mark = diff_ticks();
    int sum = 0;
    for (int i = 0; i < 200; i++)
        sum += fprintf(stderr, "line %d of %d %s end\n", i, 200, "..............................");
    diff_out("fprintf returned %d in all, error %d", sum, ferror(stderr));
    ticked("fprintf to stderr");
    for (int i = 0; i < 100; i++) {
        fputs("line 0 of 1 ", stderr);
        fputc('x', stderr);
        putc(' ', stderr);
        fwrite("end\n", 1, 4, stderr);
    }
    close(2);
    show_drained(d);
    diff_ticker_stop(tk);
}

/* A FIFO opened with fopen: glibc's stream, fully buffered (4096): every
 * output function, a large fwrite, flockfile with the putc_unlocked
 * macro, line buffering set with setvbuf, fflush, then fclose. */
DIFF_CASE(stdio, every_write_function_on_a_fopened_fifo_waits_while_other_threads_run)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/green-diff-wfifo-%d", (int)getpid());
    unlink(path);
    CALL("mkfifo", mkfifo(path, 0600));
    int rd = open(path, O_RDONLY | O_NONBLOCK);
    FILE *f = fopen(path, "w");
    diff_out("fopen: %s", f ? "stream" : "NULL");
    fcntl(rd, F_SETFL, 0);
    fcntl(fileno(f), F_SETPIPE_SZ, 4096);
    pthread_t tk = diff_ticker_start();
    pthread_t d = start_drain(rd);
    ticks_mark = diff_ticks();
    int r = 0;
    for (int i = 0; i < 100; i++)
        r += fprintf(f, "line %d of %d %s end\n", i, 100, "..................");
    diff_out("fprintf: %d", r);
    static char big[10000];
    size_t used = 0;
    for (int i = 0; used + 64 < sizeof big; i++)
        used += (size_t)snprintf(big + used, sizeof big - used, "line %d of %d big end\n", i, 0);
    diff_out("fwrite of %zu bytes: %zu", used, fwrite(big, 1, used, f));
    for (int i = 0; i < 50; i++) {
        r = fputs("line 1 of 2 ", f);
        r += fputc('y', f);
        r += putc(' ', f);
        r += (int)fwrite("end\n", 2, 2, f);
    }
    diff_out("fputs + fputc + putc + fwrite items: %d", r);
    flockfile(f);
    for (int i = 0; i < 60; i++) {
        const char *s = "line 2 of 3 unlocked end\n";
        while (*s)
            putc_unlocked(*s++, f);
    }
    funlockfile(f);
    diff_out("setvbuf line buffered: %d", setvbuf(f, NULL, _IOLBF, 0));
    for (int i = 0; i < 60; i++)
        fprintf(f, "line %d of %d linebuffered end\n", i, 60);
    for (int i = 0; i < 40; i++)
        for (const char *p = "line 3 of 4 putc linebuffered end\n"; *p; p++)
            putc(*p, f);
    diff_out("fflush: %d, error %d", fflush(f), ferror(f));
    ticked("writes to the FIFO");
    CALL("fclose", fclose(f));
    show_drained(d);
    diff_ticker_stop(tk);
    close(rd);
    unlink(path);
}

/* Writes after the reader went away: EPIPE (SIGPIPE ignored), the
 * stream's error flag, what each function returns. */
DIFF_CASE(stdio, writes_to_stderr_after_the_reader_closed_fail_with_epipe)
{
    signal(SIGPIPE, SIG_IGN);
    int wr, rd = small_pipe(&wr);
    CALL("dup2 onto 2", dup2(wr, 2));
    close(wr);
    close(rd);
    errno = 0;
    int r = fprintf(stderr, "nobody reads this\n");
    diff_out("fprintf: %d %s, error %d", r, diff_errname(errno), ferror(stderr));
    clearerr(stderr);
    errno = 0;
    r = fputs("nor this\n", stderr);
    diff_out("fputs: %d %s, error %d", r, diff_errname(errno), ferror(stderr));
    errno = 0;
    size_t w = fwrite("abc", 1, 3, stderr);
    diff_out("fwrite: %zu %s", w, diff_errname(errno));
    errno = 0;
    r = fputc('z', stderr);
    diff_out("fputc: %d %s", r, diff_errname(errno));
    errno = 0;
    r = fflush(stderr);
    diff_out("fflush: %d %s", r, diff_errname(errno));
    signal(SIGPIPE, SIG_DFL);
}

/* Four threads print whole lines to one stderr over a full pipe. */
static void *print_to_stderr(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 100; i++)
        fprintf(stderr, "line %d of %d %s end\n", i, id, "........................");
    return NULL;
}

DIFF_CASE(stdio, threads_printing_to_stderr_over_a_full_pipe_write_whole_lines)
{
    int wr, rd = small_pipe(&wr);
    CALL("dup2 onto 2", dup2(wr, 2));
    close(wr);
    pthread_t d = start_drain(rd);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        t[i] = diff_spawn(print_to_stderr, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    close(2);
    show_drained(d);
}

/* glibc's fopen and fclose open and close with glibc's internal calls:
 * the number one fopen takes again after an fclose must still wait and
 * wake (three rounds of fopen of the pipe's read end, a line waited for
 * with fgets, fclose). */
static int reuse_wr;

static void *write_line_later(void *arg)
{
    (void)arg;
    usleep(30000);
    if (write(reuse_wr, "a line\n", 7) != 7)
        return NULL;
    return NULL;
}

DIFF_CASE(stdio, a_number_fopen_takes_again_after_fclose_still_waits)
{
    int p[2];
    CALL("pipe", pipe(p));
    reuse_wr = p[1];
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    pthread_t tk = diff_ticker_start();
    int first = -1;
    for (int round = 0; round < 3; round++) {
        FILE *f = fopen(path, "r");
        if (!f) {
            diff_out("fopen failed");
            break;
        }
        if (round == 0)
            first = fileno(f);
        diff_out("round %d: the same number %d", round, fileno(f) == first);
        pthread_t w = diff_spawn(write_line_later, NULL);
        fgets_while_ticking(f, 1);
        pthread_join(w, NULL);
        CALL("fclose", fclose(f));
    }
    diff_ticker_stop(tk);
    close(p[0]);
    close(p[1]);
}

/* What glibc writes by itself: perror, warn, warnx and dprintf to a
 * stderr whose pipe is full wait while a thread ticks; err prints and
 * exits (in a child). */
DIFF_CASE(stdio, perror_warn_and_dprintf_to_a_full_pipe_wait_while_other_threads_run)
{
    int wr, rd = small_pipe(&wr);
    CALL("dup2 onto 2", dup2(wr, 2));
    close(wr);
    pthread_t tk = diff_ticker_start();
    pthread_t d = start_drain(rd);
    ticks_mark = diff_ticks();
    char s[64];
    for (int i = 0; i < 60; i++) {
        snprintf(s, sizeof s, "line %d of perror", i);
        errno = 0;
        perror(s);
    }
    for (int i = 0; i < 60; i++)
        warnx("line %d of warnx end", i);
    for (int i = 0; i < 60; i++) {
        errno = 0;
        warn("line %d of warn", i);
    }
    int sum = 0;
    for (int i = 0; i < 60; i++)
        sum += dprintf(2, "line %d of dprintf end\n", i);
    diff_out("dprintf returned %d in all", sum);
    ticked("perror, warnx, warn, dprintf");
    close(2);
    show_drained(d);
    diff_ticker_stop(tk);
}

DIFF_CASE(stdio, err_prints_its_line_and_exits)
{
    int p[2];
    CALL("pipe", pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        errno = ENOENT;
        err(3, "line %d of err", 1);
    }
    close(p[1]);
    char buf[256] = "";
    size_t have = 0;
    ssize_t k;
    while (have < sizeof buf - 1 && (k = read(p[0], buf + have, sizeof buf - 1 - have)) > 0)
        have += (size_t)k;
    buf[have] = 0;
    diff_out("the child wrote \"%.*s\"", have ? (int)have - 1 : 0, buf);
    diff_child_status("err", pid);
    close(p[0]);
}

/* A fork while another thread is parked in a write to stderr (holding
 * the stream): the child has only the forking thread, and writes to
 * stderr at once, as glibc frees every stream lock in a fork child. */
static void *print_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++)
        fprintf(stderr, "line %d of the printer %s end\n", i, "......................");
    return NULL;
}

DIFF_CASE(stdio, a_fork_while_a_thread_waits_in_a_write_to_stderr_leaves_stderr_usable)
{
    int wr, rd = small_pipe(&wr);
    CALL("dup2 onto 2", dup2(wr, 2));
    close(wr);
    pthread_t pr = diff_spawn(print_many, NULL);
    usleep(50000);                 /* the printer fills the pipe and waits */
    pid_t pid = fork();
    if (pid == 0) {
        fprintf(stderr, "line 0 of the child end\n");
        _exit(0);
    }
    pthread_t d = start_drain(rd);
    diff_child_status("child", pid);
    pthread_join(pr, NULL);
    close(2);
    show_drained(d);
}

/* exit() flushes stdout and stderr: in a child whose stderr is a pipe of
 * one page, fully buffered with 20,000 bytes in it, drained by a thread
 * of the same child that reports to the parent once it has read 12,000
 * of them (before the flush can end). The flush must let it run. */
static int exit_report;

static void *drain_and_report(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[512];
    long total = 0;
    bool told = false;
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) > 0) {
        total += k;
        /* Told before the flush can end (the pipe holds 4096 of the
         * 20,000 bytes); then drained on until the process ends. */
        if (total >= 12000 && !told) {
            told = true;
            if (write(exit_report, &total, sizeof total) != sizeof total)
                return NULL;
        }
    }
    return NULL;
}

DIFF_CASE(stdio, exit_flushes_a_full_stderr_while_the_programs_own_thread_drains_it)
{
    int rep[2];
    CALL("pipe", pipe(rep));
    pid_t pid = fork();
    if (pid == 0) {
        int wr, rd = small_pipe(&wr);
        dup2(wr, 2);
        close(wr);
        static char buf[65536];
        setvbuf(stderr, buf, _IOFBF, sizeof buf);
        for (int i = 0; i < 400; i++)
            fprintf(stderr, "line %03d of the buffered stderr, fifty bytes.\n", i);
        exit_report = rep[1];
        pthread_t t = diff_spawn(drain_and_report, (void *)(intptr_t)rd);
        (void)t;
        exit(0);                   /* the flush happens here */
    }
    close(rep[1]);
    long total = -1;
    ssize_t k = read(rep[0], &total, sizeof total);
    diff_out("the child's thread read 12,000 bytes or more while exit flushed: %d (%zd)",
             total >= 12000, k);
    diff_child_status("child", pid);
    close(rep[0]);
}

/*
 * diff.h - the differential suite's case registry and output helpers.
 *
 * What it is. Every hooked call family has a file cases_FAMILY.c of small
 * cases. A case is a function that performs one edge case of the calls and
 * prints what a program could observe: return values, errno, bytes moved,
 * coarse timing, and side effects (descriptor flags, signal state). The
 * program `diffcases` runs one case in a fresh process, on the main thread
 * or inside a pthread (under the shim one of main's hub, or one of another
 * hub); tests/diff/run_diff.py runs every case in each place, natively and
 * under the shim, and compares the outputs line by line. Linux and glibc are the oracle: a line that differs is a bug of
 * the shim, unless tests/diff/known.txt lists the case with the reason it
 * cannot be otherwise (and README's "Known differences" says so too).
 *
 * Rules for a case (the comparison only works if the output is a pure
 * function of the kernel's behaviour):
 *  - Print no addresses, pids, fd numbers that depend on the environment,
 *    or raw times. Times go through DIFF_TOOK with a generous window
 *    (these machines are shared and noisy): "took short|ok|long".
 *  - Every call whose errno matters goes through CALL(label, expr), which
 *    sets errno to 0 first and prints the return value and errno name
 *    (errno is printed on success too: a successful call must leave errno
 *    as libc does).
 *  - A case must end on its own within 5 s natively. A case that hangs
 *    under the shim is reported as "HANG" by the runner (10 s limit).
 *  - Clean up children and descriptors: each case runs in its own
 *    process, but a case in pthread mode shares that process with main.
 *  - In pthread mode main blocks every catchable signal before creating
 *    the case's thread, and the thread restores the original mask, so
 *    process-directed signals are delivered to the case's thread as they
 *    are to main in main mode.
 *
 * Output goes straight to the kernel (syscall(SYS_write)): a hooked stdio
 * or write must not be needed to see what happened, and a crash keeps
 * every line printed before it.
 */
#ifndef GREEN_TESTS_DIFF_H
#define GREEN_TESTS_DIFF_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

typedef void (*diff_fn)(void);

/* Registers a case; called from constructors made by DIFF_CASE. */
void diff_register(const char *family, const char *name, diff_fn fn);

/* DIFF_CASE(family, name) { body } defines and registers a case named
 * "family.name". */
#define DIFF_CASE(fam, nm)                                                  \
    static void diffcase_##fam##_##nm(void);                                \
    __attribute__((constructor)) static void diffreg_##fam##_##nm(void)     \
    {                                                                       \
        diff_register(#fam, #nm, diffcase_##fam##_##nm);                    \
    }                                                                       \
    static void diffcase_##fam##_##nm(void)

/* printf-style line to stdout, written with one raw write(2). */
void diff_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "EAGAIN", "0" for no error, or the number. */
const char *diff_errname(int e);

/* Prints "label: ret=R errno=E". errno is cleared before the call. */
void diff_ret(const char *label, long ret, int err);
#define CALL(label, expr)                                                   \
    do {                                                                    \
        errno = 0;                                                          \
        long diff_r_ = (long)(expr);                                        \
        int diff_e_ = errno;                                                \
        diff_ret((label), diff_r_, diff_e_);                                \
    } while (0)

/* Monotonic time in nanoseconds. */
int64_t diff_now(void);

/* Prints "label: took short" (< lo_ms), "ok" or "long" (> hi_ms) for the
 * time since t0 (from diff_now()). */
void diff_took(const char *label, int64_t t0, int lo_ms, int hi_ms);
#define DIFF_TOOK(label, t0, lo, hi) diff_took((label), (t0), (lo), (hi))

/* A call that may have waited: prints the result, and errno only when it
 * failed (errno after a successful wait is the io family's business). */
#define WAITED(label, expr)                                                 \
    do {                                                                    \
        errno = 0;                                                          \
        long w_r_ = (long)(expr);                                           \
        diff_out("%s: ret=%ld%s%s", (label), w_r_, w_r_ < 0 ? " errno=" : "", \
                 w_r_ < 0 ? diff_errname(errno) : "");                      \
    } while (0)

/* Prints the O_NONBLOCK bit of fd's open file description as the kernel
 * reports it to this process: "label: nonblock=0|1". */
void diff_nonblock(const char *label, int fd);

/* pthread_create(fn, arg) with default attributes; a failure is printed
 * ("pthread_create: EAGAIN"). */
pthread_t diff_spawn(void *(*fn)(void *), void *arg);

/* A thread that counts a tick every 2 ms (usleep) until stopped: whether
 * other threads ran while a call waited. diff_ticker_start resets the
 * count; diff_ticks reads it. One ticker at a time. */
pthread_t diff_ticker_start(void);
int diff_ticks(void);
void diff_ticker_stop(pthread_t tk);

/* Reaps pid and prints "label: exit N" or "label: signal N". */
void diff_child_status(const char *label, pid_t pid);

/* SIGALRM in ms milliseconds, process-directed (setitimer ITIMER_REAL). */
void diff_alarm_ms(int ms);

/* Handle sig with a handler that counts its runs (sa_flags flags, empty
 * sa_mask); diff_signals_take returns the count since the last take and
 * starts it again. */
void diff_count_signal(int sig, int flags);
int diff_signals_take(void);

/* Sleeps ms milliseconds with the raw syscall (no hook, no switch): for a
 * helper thread or child that must wait without giving up the CPU. */
void diff_raw_sleep_ms(int ms);

/* A blocking TCP listener on 127.0.0.1 (backlog 16), its port in *port;
 * a blocking TCP connection to that port. -1 (printed) on failure. */
int diff_tcp_listener(int *port);
int diff_tcp_connect(int port);

/* n zeroed bytes of MAP_SHARED anonymous memory (kept across fork); the
 * case ends with "mmap failed" if there are none. */
void *diff_shared_map(size_t n);

/* The clock clk's time now plus ms, for the timed waits' absolute
 * deadlines. */
struct timespec diff_abs_in(clockid_t clk, long ms);

/* 1 in pthread mode, 0 in main mode: for the rare case whose natural
 * result depends on it (print it, so that both modes compare). */
extern int diff_in_thread;

#endif

/*
 * monitor_syscall.c - the monitor's report on a hub whose OS thread is
 * asleep in a system call the shim did not park: which call, what waits
 * for the hub, and the asleep green thread's frames.
 *
 * What it is. The watchdog (monitor.c) calls here when a green thread has
 * not yielded for GREEN_MONITOR_MS and /proc/self/task/TID/syscall shows
 * its OS thread in a system call. Such a thread is never signalled: a
 * signal would end calls that SA_RESTART does not restart (io_uring_enter,
 * epoll_wait, ppoll, nanosleep, a futex wait with a timeout; signal(7))
 * with an EINTR the program would never see natively. Everything is read
 * from the watchdog instead, while the thread sleeps and its user stack
 * holds still.
 *
 * Invariants. Nothing of the asleep thread is dereferenced that could be
 * freed if its call returns meanwhile: thread structs are never freed
 * (lifecycle.c), and everything else (the park-deadline heap, the stack,
 * code bytes) is read through /proc/self/mem, where an unmapped address is
 * an EIO, not a crash. All files are opened for one use with raw system
 * calls (the shim's hooks keep per-descriptor state this thread must not
 * touch, and a daemon's closefrom may close anything kept open). The
 * watchdog is this file's only caller, so its static buffers are not
 * shared.
 *
 * What waits for the hub: a green thread on its run queue, a park
 * deadline passed, a post from another hub, or a ready descriptor in the
 * hub's epoll set. libev does not say which descriptor is its epoll set;
 * it is the one whose /proc/self/fdinfo lists the hub's timerfd (found
 * once). It is peeked at with a zero-timeout epoll_wait: libev registers
 * level-triggered, and the kernel keeps a level-triggered event ready for
 * the hub after any epoll_wait reported it. The timerfd itself is left
 * out: it stays readable after firing until the hub re-arms it before it
 * next blocks, so deadlines are read from the heap instead.
 *
 * Frames: the kernel's pc, then the words of the stack (from its sp, up
 * to 32 KiB or the green thread's stack top) that point into an
 * executable mapping right after a call instruction (x86-64: call rel32
 * or call r/m; aarch64: bl, blr and their authenticated forms). A scan,
 * not an unwind: a stale return address left in a frame's unused space
 * can appear, and a frame that keeps its return address in a register
 * (an aarch64 leaf) is missed; every real caller with a frame is found,
 * frame pointers or not.
 *
 * Rejected: sending the monitor signal and unwinding in the handler (the
 * EINTR above; a handler cannot undo the interruption); unwinding with
 * frame pointers (glibc and most libraries have none); ptrace (a process
 * cannot trace its own threads, and a debugger may hold it); libunwind's
 * remote unwinding (a dependency for one report).
 */
#define _GNU_SOURCE
#include "monitor_syscall.h"
#include "syscall_names.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

/* Raw calls on /proc files here: the shim's open/read/close hooks keep
 * per-descriptor state that this thread must not touch. */
static int proc_open(const char *path, int flags)
{
    return (int)green__syscall(SYS_openat, AT_FDCWD, path, flags | O_RDONLY | O_CLOEXEC);
}

/* Read the small file path into b (NUL-terminated); bytes read, or -1. */
ssize_t green__proc_read(const char *path, char *b, size_t cap)
{
    int fd = proc_open(path, 0);
    if (fd < 0)
        return -1;
    ssize_t n = green__syscall(SYS_read, fd, b, cap - 1);
    green__syscall(SYS_close, fd);
    if (n < 0)
        return -1;
    b[n] = 0;
    return n;
}

/* /proc/self/task/TID/syscall: "NR ARG1..ARG6 SP PC" in a system call,
 * "-1 SP PC" asleep in the kernel outside one, "running" on a CPU. */
bool green__in_syscall(pid_t tid, struct green__sysc *s)
{
    char path[64], b[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    if (green__proc_read(path, b, sizeof b) <= 0 || b[0] < '0' || b[0] > '9')
        return false;   /* unreadable, "running", or -1 */
    char *p = b;
    s->nr = strtol(p, &p, 10);
    for (int i = 0; i < 6; i++)
        s->arg[i] = strtoull(p, &p, 0);
    s->sp = (uintptr_t)strtoull(p, &p, 0);
    s->pc = (uintptr_t)strtoull(p, &p, 0);
    return s->pc != 0;
}

/* green__proc_lines with the watchdog's own buffer (it runs alone). */
static bool proc_lines(const char *path, bool (*fn)(const char *, void *), void *arg)
{
    static char b[4096];
    return green__proc_lines(path, b, sizeof b, fn, arg);
}

static bool has_tfd(const char *line, void *arg)
{
    return !strncmp(line, "tfd:", 4) && atoi(line + 4) == *(int *)arg;
}

/* The hub's epoll descriptor: libev does not say which it is, but the
 * hub's timerfd (timer.c) is registered in it and in no other, and
 * /proc/self/fdinfo lists what an epoll set holds. Looked for once. */
static int find_epfd(int tfd)
{
    int dfd = proc_open("/proc/self/fd", O_DIRECTORY);
    if (dfd < 0)
        return -1;
    char ents[2048], path[64], link[64];
    int found = -1;
    long n;
    while (found < 0 && (n = green__syscall(SYS_getdents64, dfd, ents, sizeof ents)) > 0)
        for (long off = 0; found < 0 && off < n;) {
            struct dirent64 *d = (struct dirent64 *)(ents + off);
            off += d->d_reclen;
            if (d->d_name[0] < '0' || d->d_name[0] > '9')
                continue;   /* "." and ".." */
            int fd = atoi(d->d_name);
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            long k = green__syscall(SYS_readlinkat, AT_FDCWD, path, link, sizeof link - 1);
            if (k <= 0)
                continue;
            link[k] = 0;
            snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
            if (!strcmp(link, "anon_inode:[eventpoll]") &&
                proc_lines(path, has_tfd, &tfd))
                found = fd;
        }
    green__syscall(SYS_close, dfd);
    return found;
}

/* Has the earliest park deadline of c passed? The heap array is read
 * through /proc/self/mem: its owner may grow it (and free the old one) if
 * its system call returns meanwhile. The thread struct it points to is
 * never freed. */
static bool deadline_passed(struct green__ctx *c, int64_t now)
{
    size_t n = __atomic_load_n(&c->theap_n, __ATOMIC_RELAXED);
    struct green_thread **h = __atomic_load_n(&c->theap, __ATOMIC_RELAXED);
    if (!n || !h)
        return false;
    int mem = proc_open("/proc/self/mem", 0);
    struct green_thread *t = NULL;
    bool passed = false;
    if (mem >= 0 && green__syscall(SYS_pread64, mem, &t, sizeof t, (off_t)(uintptr_t)h) ==
                    (long)sizeof t && t)
        passed = __atomic_load_n(&t->deadline, __ATOMIC_RELAXED) <= now;
    if (mem >= 0)
        green__syscall(SYS_close, mem);
    return passed;
}

/* Is a descriptor of the hub's epoll set ready, its timerfd aside (the
 * timerfd stays readable after it fired until the hub re-arms it before
 * it next blocks: deadline_passed answers for deadlines)? libev registers
 * level-triggered and keeps the descriptor in the low 32 bits of the
 * event's data: an epoll_wait with a zero timeout from this thread only
 * looks, the kernel keeps level-triggered events ready for the hub. */
static bool fds_ready(int epfd, int tfd)
{
    struct epoll_event ev[32];
    long n = green__syscall(SYS_epoll_pwait, epfd, ev, 32, 0, NULL, 8);
    for (long i = 0; i < n; i++)
        if ((int)(uint32_t)ev[i].data.u64 != tfd)
            return true;
    return false;
}

/* Read while the owner sleeps in the kernel, so its run queue holds
 * still; the links are followed with a bound because the call may return
 * meanwhile (thread structs are never freed: the walk is memory-safe). */
bool green__hub_waiting(struct green__ctx *c, int *epfd, int *epfd_tfd,
                        int64_t now, struct green__hub_wait *wt)
{
    wt->runnable = 0;
    struct green_thread *hub = c->hub;
    struct green_thread *t = __atomic_load_n(&c->runq_head, __ATOMIC_RELAXED);
    for (int i = 0; t && i < 10000; i++) {
        if (t != hub)
            wt->runnable++;
        t = __atomic_load_n(&t->runq_next, __ATOMIC_RELAXED);
    }
    wt->events = atomic_load(&c->remote_head) || deadline_passed(c, now);
    int tfd = __atomic_load_n(&c->tfd, __ATOMIC_RELAXED);
    if (!wt->events && tfd >= 0) {
        if (*epfd_tfd != tfd) {
            *epfd = find_epfd(tfd);
            *epfd_tfd = tfd;
        }
        wt->events = *epfd >= 0 && fds_ready(*epfd, tfd);
    }
    return wt->runnable || wt->events;
}

/* Does the code before ret look like a call instruction? A return
 * address on the stack is one; most other words that point into code are
 * not. mem: /proc/self/mem, which answers EIO where a load would fault. */
static bool after_call(int mem, uintptr_t ret)
{
#if defined(__x86_64__)
    unsigned char b[7];
    if (green__syscall(SYS_pread64, mem, b, 7, (off_t)(ret - 7)) != 7)
        return false;
    if (b[2] == 0xe8)   /* call rel32 */
        return true;
    for (int k = 2; k <= 7; k++)   /* call r/m64: ff /2, 2-7 bytes */
        if (b[7 - k] == 0xff && ((b[8 - k] >> 3) & 7) == 2)
            return true;
    return false;
#elif defined(__aarch64__)
    uint32_t i;
    if (green__syscall(SYS_pread64, mem, &i, 4, (off_t)(ret - 4)) != 4)
        return false;
    return (i & 0xfc000000u) == 0x94000000u ||   /* bl */
           (i & 0xfffffc1fu) == 0xd63f0000u ||   /* blr */
           (i & 0xfefff800u) == 0xd63f0800u;     /* blraa, blrab... */
#else
    (void)mem;
    (void)ret;
    return true;
#endif
}

#define EXEC_MAX 512
struct exec_ranges {
    int n;
    uintptr_t lo[EXEC_MAX], hi[EXEC_MAX];
};

static bool add_exec(const char *line, void *arg)
{
    struct exec_ranges *x = arg;
    char *p;
    uintptr_t lo = (uintptr_t)strtoull(line, &p, 16);
    uintptr_t hi = (uintptr_t)strtoull(p + 1, &p, 16);
    if (p[0] == ' ' && p[3] == 'x' && x->n < EXEC_MAX) {
        x->lo[x->n] = lo;
        x->hi[x->n++] = hi;
    }
    return false;
}

static bool is_exec(const struct exec_ranges *x, uintptr_t v)
{
    for (int i = 0; i < x->n; i++)
        if (v >= x->lo[i] && v < x->hi[i])
            return true;
    return false;
}

#define SCAN_WORDS 4096   /* 32 KiB of stack on 64-bit */

/* The frames of a thread asleep in a system call: the kernel's pc, then
 * the return addresses found on its stack from sp up (to hi if known):
 * words that point into executable code right after a call instruction.
 * A scan, not an unwind: a stale return address left in a frame's unused
 * space can appear too. */
static void scan_backtrace(uintptr_t pc, uintptr_t sp, uintptr_t hi)
{
    static uintptr_t words[SCAN_WORDS];
    static struct exec_ranges x;
    green__monitor_bt_line(0, (void *)pc);
    int mem = proc_open("/proc/self/mem", 0);
    if (mem < 0)
        return;
    x.n = 0;
    proc_lines("/proc/self/maps", add_exec, &x);
    size_t want = sizeof words;
    if (hi > sp && hi - sp < want)
        want = hi - sp;
    ssize_t n = green__syscall(SYS_pread64, mem, words, want, (off_t)sp);
    int frame = 1;
    for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof *words && frame < GREEN__BT_FRAMES; i++)
        if (is_exec(&x, words[i]) && after_call(mem, words[i]))
            green__monitor_bt_line(frame++, (void *)words[i]);
    green__syscall(SYS_close, mem);
}

/* "; fd 5 is pipe:[1234]": the file behind a descriptor argument. */
static void fmt_fd(struct green__fmt *f, int fd)
{
    char path[64], link[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    long k = green__syscall(SYS_readlinkat, AT_FDCWD, path, link, sizeof link - 1);
    link[k > 0 ? k : 0] = 0;
    green__fmt_str(f, "; fd ");
    green__fmt_u64(f, (uint64_t)fd);
    green__fmt_str(f, " is ");
    green__fmt_str(f, k > 0 ? link : "not open");
}

/* Print the report of a green thread asleep in a system call. id and name
 * are a copy the caller checked. */
void green__report_syscall(pid_t tid, uint64_t id, const char *name,
                           uintptr_t stack_hi, const struct green__sysc *sc,
                           int ms, int oncpu_ms, const struct green__hub_wait *wt)
{
    const struct green__syscall_info *si = green__syscall_info(sc->nr);
    char b[1024];
    struct green__fmt f = { b, 0, sizeof b - 1 };
    green__fmt_str(&f, "libgreen: green thread ");
    green__fmt_u64(&f, id);
    green__fmt_str(&f, " \"");
    green__fmt_str(&f, name);
    green__fmt_str(&f, "\" has not yielded for ");
    green__fmt_u64(&f, (uint64_t)ms);
    green__fmt_str(&f, " ms: its OS thread ");
    green__fmt_u64(&f, (uint64_t)tid);
    green__fmt_str(&f, " is blocked in system call ");
    green__fmt_u64(&f, (uint64_t)sc->nr);
    green__fmt_str(&f, " (");
    green__fmt_str(&f, si ? si->name : "not in libgreen's table");
    green__fmt_str(&f, "), while ");
    if (wt->runnable) {
        green__fmt_u64(&f, (uint64_t)wt->runnable);
        green__fmt_str(&f, wt->runnable == 1 ? " green thread is runnable"
                                             : " green threads are runnable");
        green__fmt_str(&f, wt->events ? " and events are pending" : "");
    } else {
        green__fmt_str(&f, "events are pending on its hub");
    }
    green__monitor_line(2, &f);
    f.n = 0;
    green__fmt_str(&f, "libgreen:   ");
    green__fmt_str(&f, si ? si->name : "syscall");
    green__fmt_str(&f, "(");
    for (int i = 0; i < 4; i++) {
        green__fmt_str(&f, i ? ", " : "");
        green__fmt_hex(&f, (uintptr_t)sc->arg[i]);
    }
    green__fmt_str(&f, ", ...) on a CPU for ");
    green__fmt_u64(&f, (uint64_t)(oncpu_ms > 0 ? oncpu_ms : 0));
    green__fmt_str(&f, " ms of them");
    if (si && si->fd_arg >= 0)
        fmt_fd(&f, (int)sc->arg[si->fd_arg]);
    green__monitor_line(2, &f);
    f.n = 0;
    green__fmt_str(&f, "libgreen:   what to do: ");
    green__fmt_str(&f, si ? si->advice : green__syscall_advice_other());
    green__monitor_line(2, &f);
    static const char bt[] = "libgreen:   backtrace (the kernel's pc and "
        "return addresses found on the stack; no signal was sent, so that the "
        "call does not fail with EINTR):\n";
    ssize_t r = GREEN_REAL(write)(2, bt, sizeof bt - 1);
    (void)r;
    scan_backtrace(sc->pc, sc->sp, stack_hi);
}


/*
 * fdstate.c - the per-process table of descriptor hints for the I/O hooks.
 *
 * What it is. An array of entries indexed by fd, allocated in chunks of
 * 1024 that never move (installed with a compare-and-swap, so two OS
 * threads touching a new chunk at once are fine). An entry records what
 * kind of file the fd is (learned once), whether the fd is one of
 * libgreen's own (hidden from the program), and, only while a blocking
 * connect of ours holds O_NONBLOCK on the description, the program's own
 * O_NONBLOCK wish. Everything else about the open file description is
 * the kernel's and is read from it (green__fdstate_view).
 *
 * Who writes. Hooked calls that create or close descriptors (socket,
 * accept, pipe, open, dup, close...) and that change the recorded state
 * (fcntl F_SETFL, ioctl FIONBIO, setsockopt) record it even when they pass
 * straight through. The fields are relaxed atomics, so an OS thread the
 * program did not hand to us cannot tear an entry; decisions are only
 * taken by green threads.
 *
 * Invariant: an entry is a hint. glibc closes and opens descriptors
 * internally (fclose, fopen, syslog) without any hook, so an entry may
 * describe a file that no longer has this number. Hence:
 *  - The socket fast path validates the kind itself: recv(MSG_DONTWAIT) on
 *    a non-socket fails with ENOTSOCK, and the hook then resets the entry
 *    and starts again.
 *  - The non-socket path does not use the table at all: it asks the kernel
 *    (poll with timeout 0, F_GETFL when not ready).
 *  - Nothing about the open file description is trusted. O_NONBLOCK and
 *    SO_RCVTIMEO/SO_SNDTIMEO belong to the description, which a dup, a
 *    forked child, an exec'd child or an SCM_RIGHTS peer may change at any
 *    time where no hook of this process sees it. green__fdstate_view reads
 *    them from the kernel (F_GETFL, then the one timeout the caller needs
 *    when the socket is blocking) every time it is called, and it is only
 *    called on slow paths: after a non-blocking attempt said EAGAIN,
 *    before parking. The fast path (a ready read or write) stays one
 *    syscall and reads no flag.
 *    Measured with strace -c -f (1000 one-byte reads on a socketpair
 *    under the shim): a ready read is one recvfrom, before and after; a
 *    read that has to wait costs recv(EAGAIN) + fcntl(F_GETFL) +
 *    getsockopt(SO_RCVTIMEO) + the retry, plus the hub's amortised
 *    epoll_wait: 2 syscalls more than with the cache.
 *  - libgreen never leaves O_NONBLOCK on a description (io.c), so the
 *    kernel's F_GETFL is the program's own view. The one exception is a
 *    blocking connect in progress (io.c sets the flag for the duration of
 *    the call): B_OURNB marks that window, and only then does the entry's
 *    B_USERNB stand for the program's wish.
 *
 * Internal descriptors (each hub's epoll fd, libev's async eventfd, the
 * timerfd; a waiting waitpid's pidfds and a waiting sigwait's signalfd
 * for as long as they wait) are moved out of the program's way as they are made
 * (green__fd_hide): F_DUPFD_CLOEXEC from a base near the top of
 * RLIMIT_NOFILE (capped at 1024, so a process with a huge limit does not
 * pay for a huge kernel fd table), so the program's socket()/open() get
 * the lowest free number as POSIX says and dup2(fd, 3) works. They stay
 * where they are if the program later raises or lowers the limit: the
 * kernel keeps descriptors above a lowered limit working, and with a
 * raised one they are a few numbers the program would only meet after
 * opening about a thousand files. Known differences (tests/diff/known.txt):
 * they show in /proc/self/fd, count against RLIMIT_NOFILE, and dup2 onto
 * one of them fails with EBUSY (libev cannot be re-pointed). Rejected:
 * the very top of a large limit (the kernel sizes each process's fd table
 * to its highest number, and fork copies it); leaving them low and hidden
 * (the program's first socket got 6, and dup2(fd, 3) hit the hub).
 *
 * Rejected: an fstat per call to validate (one more syscall on the fast
 * path); caching the flags per fd number (a flag set through a dup or by
 * another process was never seen: a read on the original blocked forever
 * where Linux said EAGAIN, or ignored a timeout; cached flags could only
 * be trusted if every way of sharing a description, fork, vfork,
 * posix_spawn, system, popen, SCM_RIGHTS, pidfd_getfd, were hooked);
 * storing the state in libgreen/fd.c's per-ctx slots (those belong to
 * one hub, while descriptors and their flags belong to the process).
 */
#define _GNU_SOURCE
#include "fdstate.h"
#include "green_internal.h"
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define REAL(f) GREEN_REAL(f)

#define CHUNK 1024
#define MAX_CHUNKS 1024            /* up to 1,048,576 descriptors */

/* bits of entry.bits */
#define B_KIND    0x07u            /* enum green__fdkind */
#define B_KNOWN   0x08u
#define B_USERNB  0x10u
#define B_OURNB   0x20u
#define B_CREATED 0x40u
#define B_INTERNAL 0x80u           /* libgreen's own fd: hidden from the program */
#define B_RCVNOW  0x100u           /* SO_RCVTIMEO set to time out at once */
#define B_SNDNOW  0x200u           /* SO_SNDTIMEO set to time out at once */

/* One word per descriptor. The timeouts themselves are the kernel's
 * (kernel_view reads them every time); all the table keeps of them is the
 * one thing the kernel cannot say back, a timeout of "at once" (1 ns in
 * green__fdinfo). Before, two 64-bit copies of the timeouts made an entry
 * 24 bytes where 4 do: 20 bytes per descriptor, per connection of a
 * daemon (measured with demo/speedup's memory pass, README). */
struct entry {
    _Atomic uint32_t bits;         /* kind and flags, B_* above */
};

static _Atomic(struct entry *) chunks[MAX_CHUNKS];

static struct entry *entry_at(int fd, bool create)
{
    if (fd < 0 || fd >= CHUNK * MAX_CHUNKS)
        return NULL;
    struct entry *ch = atomic_load_explicit(&chunks[fd / CHUNK], memory_order_acquire);
    if (!ch && create) {
        struct entry *fresh = calloc(CHUNK, sizeof *fresh);
        if (!fresh)
            return NULL;
        if (atomic_compare_exchange_strong(&chunks[fd / CHUNK], &ch, fresh))
            ch = fresh;
        else
            free(fresh);           /* lost the race: ch is the winner's */
    }
    return ch ? &ch[fd % CHUNK] : NULL;
}

static uint32_t pack(const struct green__fdinfo *i)
{
    return ((uint32_t)i->kind & B_KIND) | (i->known ? B_KNOWN : 0) |
           (i->user_nonblock ? B_USERNB : 0) | (i->our_nonblock ? B_OURNB : 0) |
           (i->created ? B_CREATED : 0) | (i->rcvtimeo == 1 ? B_RCVNOW : 0) |
           (i->sndtimeo == 1 ? B_SNDNOW : 0);
}

struct green__fdinfo green__fdstate_peek(int fd)
{
    struct entry *e = entry_at(fd, false);
    if (!e)
        return (struct green__fdinfo){ 0 };
    uint32_t b = atomic_load_explicit(&e->bits, memory_order_relaxed);
    return (struct green__fdinfo){
        .kind = (enum green__fdkind)(b & B_KIND),
        .known = b & B_KNOWN,
        .user_nonblock = b & B_USERNB,
        .our_nonblock = b & B_OURNB,
        .created = b & B_CREATED,
        .rcvtimeo = (b & B_RCVNOW) ? 1 : 0,
        .sndtimeo = (b & B_SNDNOW) ? 1 : 0,
    };
}

enum green__fdkind green__fdstate_kind(int fd)
{
    struct entry *e = entry_at(fd, false);
    if (!e)
        return GREEN_FD_UNKNOWN;
    return (enum green__fdkind)(atomic_load_explicit(&e->bits, memory_order_relaxed) & B_KIND);
}

void green__fdstate_set(int fd, const struct green__fdinfo *i)
{
    struct entry *e = entry_at(fd, true);
    if (!e)
        return;
    /* The internal mark is not part of the hint: keep it (only reset,
     * created and green__fd_set_internal change it). */
    uint32_t keep = atomic_load_explicit(&e->bits, memory_order_relaxed) & B_INTERNAL;
    atomic_store_explicit(&e->bits, pack(i) | keep, memory_order_relaxed);
}

static enum green__fdkind kind_of(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return GREEN_FD_UNKNOWN;
    switch (st.st_mode & S_IFMT) {
    case S_IFSOCK: return GREEN_FD_SOCKET;
    case S_IFIFO:  return GREEN_FD_PIPE;
    case S_IFREG:
    case S_IFBLK:  return GREEN_FD_FILE;
    case S_IFCHR:  return GREEN_FD_TTY;
    default:       return GREEN_FD_OTHER;
    }
}

static int64_t sock_timeo(int fd, int opt)
{
    struct timeval tv = { 0 };
    socklen_t len = sizeof tv;
    if (REAL(getsockopt)(fd, SOL_SOCKET, opt, &tv, &len) != 0)
        return 0;
    return (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
}

/* Learn the kind of fd once. Leaves i alone if fd is bad. */
static void learn_kind(int fd, struct green__fdinfo *i)
{
    i->kind = kind_of(fd);
    if (i->kind == GREEN_FD_UNKNOWN)
        return;                    /* EBADF: let the real call say so */
    i->known = true;
    green__fdstate_set(fd, i);
}

/* The description's state as the kernel has it now (see the essay):
 * O_NONBLOCK, and for a blocking socket the timeouts asked for in want.
 * While a connect of ours holds O_NONBLOCK (B_OURNB), the program's wish
 * is the entry's. */
static void kernel_view(int fd, struct green__fdinfo *i, unsigned want)
{
    int fl = REAL(fcntl)(fd, F_GETFL);
    if (fl < 0)
        return;                    /* EBADF: let the real call say so */
    if (!i->our_nonblock)
        i->user_nonblock = fl & O_NONBLOCK;
    /* The kernel reads a timeout of "at once" (set with a negative
     * tv_sec) back as {0, 0}, the same as "forever": only the hint the
     * setsockopt hook left (1 ns) tells them apart. */
    bool rcv_now = i->rcvtimeo == 1, snd_now = i->sndtimeo == 1;
    i->rcvtimeo = i->sndtimeo = 0;
    if (i->user_nonblock)
        return;                    /* EAGAIN at once: no timeout matters */
    if (want & GREEN_VIEW_RCVTIMEO) {
        i->rcvtimeo = sock_timeo(fd, SO_RCVTIMEO);
        if (i->rcvtimeo == 0 && rcv_now)
            i->rcvtimeo = 1;
    }
    if (want & GREEN_VIEW_SNDTIMEO) {
        i->sndtimeo = sock_timeo(fd, SO_SNDTIMEO);
        if (i->sndtimeo == 0 && snd_now)
            i->sndtimeo = 1;
    }
}

struct green__fdinfo green__fdstate_view(int fd, unsigned want)
{
    struct green__fdinfo i = green__fdstate_peek(fd);
    if (green__unlikely(i.kind == GREEN_FD_UNKNOWN || !i.known))
        learn_kind(fd, &i);
    if (i.kind == GREEN_FD_SOCKET)
        kernel_view(fd, &i, want);
    return i;
}

struct green__fdinfo green__fdstate_get(int fd)
{
    return green__fdstate_view(fd, GREEN_VIEW_RCVTIMEO | GREEN_VIEW_SNDTIMEO);
}

void green__fdstate_created(int fd, enum green__fdkind kind, bool nonblock)
{
    struct green__fdinfo i = {
        .kind = kind, .known = true, .user_nonblock = nonblock, .created = true,
    };
    green__fdstate_set(fd, &i);
    green__fd_set_internal(fd, false);   /* a new file took the number */
}

void green__fdstate_reset(int fd)
{
    struct entry *e = entry_at(fd, false);
    if (!e)
        return;
    atomic_store_explicit(&e->bits, 0, memory_order_relaxed);
}

int green__fdstate_limit(void)
{
    for (int c = MAX_CHUNKS; c > 0; c--)
        if (atomic_load_explicit(&chunks[c - 1], memory_order_acquire))
            return c * CHUNK;
    return 0;
}

void green__fdstate_dup(int oldfd, int newfd)
{
    struct green__fdinfo i = green__fdstate_peek(oldfd);
    green__fdstate_set(newfd, &i);
}

static void set_bit(int fd, uint32_t bit, bool on)
{
    struct entry *e = entry_at(fd, true);
    if (!e)
        return;
    if (on)
        atomic_fetch_or_explicit(&e->bits, bit, memory_order_relaxed);
    else
        atomic_fetch_and_explicit(&e->bits, ~bit, memory_order_relaxed);
}

void green__fdstate_set_user_nonblock(int fd, bool on)
{
    set_bit(fd, B_USERNB, on);
}

void green__fdstate_set_our_nonblock(int fd, bool on)
{
    set_bit(fd, B_OURNB, on);
}

void green__fdstate_set_timeo(int fd, int dir, int64_t ns)
{
    set_bit(fd, dir ? B_SNDNOW : B_RCVNOW, ns == 1);
}

bool green__fd_is_socket(int fd)
{
    struct green__fdinfo i = green__fdstate_peek(fd);
    if (i.kind == GREEN_FD_UNKNOWN) {
        i.kind = kind_of(fd);
        if (i.kind != GREEN_FD_UNKNOWN) {
            struct entry *e = entry_at(fd, true);
            if (e)
                atomic_fetch_or_explicit(&e->bits, (uint32_t)i.kind, memory_order_relaxed);
        }
    }
    return i.kind == GREEN_FD_SOCKET;
}

/* Internal descriptors. Marked by the epoll_create hooks and by the fcntl
 * hook (libev's F_SETFD on its async eventfd/pipe) while libev makes or
 * rebuilds a hub's loop (green__in_libev, see green_internal.h), and by
 * timer.c for its timerfd; unmarked when libgreen closes them. */
void green__fd_set_internal(int fd, bool on)
{
    if (fd >= 0)
        set_bit(fd, B_INTERNAL, on);
}

bool green__fd_is_internal(int fd)
{
    struct entry *e = entry_at(fd, false);
    return e && (atomic_load_explicit(&e->bits, memory_order_relaxed) & B_INTERNAL);
}

/* The base number for internal descriptors (see the essay), computed
 * once (getrlimit is a syscall, and hooks/proc.c hides a pidfd per wait);
 * recomputed when the program lowered the limit below it. */
static _Atomic int hide_base_cache;

static int hide_base(bool fresh)
{
    int b = atomic_load_explicit(&hide_base_cache, memory_order_relaxed);
    if (b > 0 && !fresh)
        return b;
    struct rlimit rl;
    rlim_t lim = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < lim)
        lim = rl.rlim_cur;
    b = lim > 128 ? (int)lim - 64 : (int)lim / 2;
    atomic_store_explicit(&hide_base_cache, b, memory_order_relaxed);
    return b;
}

int green__fd_hide(int fd)
{
    if (fd < 0)
        return fd;
    int base = hide_base(false);
    int high = -1;
    if (fd < base) {
        high = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, base);
        if (high < 0 && errno == EINVAL && (base = hide_base(true)) > fd)
            high = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, base);
    }
    if (high >= 0) {
        REAL(close)(fd);
        green__fdstate_reset(fd);
        fd = high;
    }                              /* EMFILE: keep the low number */
    green__fdstate_reset(fd);
    green__fd_set_internal(fd, true);
    return fd;
}

void green__fd_close_hidden(int fd)
{
    if (fd < 0)
        return;
    if (green__tls_ctx)
        green_fd_closing(fd);      /* stop its watcher before the number is reused */
    green__fd_set_internal(fd, false);
    REAL(close)(fd);
}

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
 *  - The state of the open file description (O_NONBLOCK, SO_RCVTIMEO,
 *    SO_SNDTIMEO) is read from the kernel (green__fdstate_view: F_GETFL,
 *    then the one timeout the caller needs when the socket is blocking)
 *    on slow paths only: after a non-blocking attempt said EAGAIN, before
 *    parking. The fast path (a ready read or write) stays one syscall and
 *    reads no flag. What the kernel said may be kept (the flag cache,
 *    below) only for an "own" socket.
 *  - libgreen never leaves O_NONBLOCK on a description (io.c), so the
 *    kernel's F_GETFL is the program's own view. The one exception is a
 *    blocking connect in progress (io.c sets the flag for the duration of
 *    the call): B_OURNB marks that window, and only then does the entry's
 *    B_USERNB stand for the program's wish.
 *
 * The flag cache. A keep-alive daemon's read that has to wait cost
 * recv(EAGAIN) + fcntl(F_GETFL) + getsockopt(SO_RCVTIMEO) + the retry:
 * two of the five system calls per request were these reads (strace -c -f
 * of demo/legacy_http, README "Every core"). The description's state can
 * change where no hook of this process sees it: through a dup, in a
 * forked or exec'd child, in a process it was sent to with SCM_RIGHTS. So
 * it is kept only while none of that can have happened, which is what
 * B_OWN says: this number is the only reference to its description in any
 * process, and every change to the description goes through a hook here.
 *  - Set by socket, socketpair, accept and accept4 (green__fdstate_own),
 *    for numbers from 3 up (glibc's daemon(), login_tty() and freopen()
 *    on the standard streams dup2 onto 0-2 internally, unseen).
 *  - Dropped for good (until the number is made anew) by: a dup of either
 *    side (dup, dup2, dup3, F_DUPFD: the description gains a second
 *    number), sending it with SCM_RIGHTS (sendmsg, sendmmsg: the msghdr
 *    is read only after the kernel took it, so the marks are dropped as
 *    the send returns; meanwhile, from before the send, the cache is not
 *    used in the whole process: green__fdstate_rights_begin, skipped for
 *    AF_INET/AF_INET6 sockets, which carry no descriptors), fdopen
 *    (glibc's fclose then closes the number unseen), and every process
 *    creation: fork (pthread_atfork, so daemon() and other
 *    forks inside libc too), posix_spawn, popen, system, clone without
 *    CLONE_THREAD (green__fdstate_spawn_begin/_end walk the table).
 *    syscall() with fcntl, ioctl, setsockopt, the dup family and
 *    close_range goes to the hooks of the same name (hooks/syscall.c);
 *    syscall() with fork, vfork, clone, clone3 or io_uring_setup turns
 *    the cache off for the life of the process (green__fdstate_trust_off);
 *    under GREEN_SYSCALL_DISPATCH a raw fork is bracketed like fork and
 *    the dup family, fcntl, ioctl, setsockopt and close_range reach their
 *    hooks (hooks/sud.c).
 *  - The learned values (B_LNB + B_CNB: O_NONBLOCK; B_LRCV0 / B_LSND0:
 *    the timeout is none) are known without asking from the start for a
 *    socket made by socket or socketpair (SOCK_NONBLOCK, no timeouts) and
 *    for O_NONBLOCK of an accepted one (accept4's flags; its timeouts are
 *    the listener's when its handshake completed: known only for an own
 *    listener on which no timeout was ever set, B_TIMEO). A hooked
 *    F_SETFL or FIONBIO sets what it changed (O_NONBLOCK), a hooked
 *    timeout setsockopt whether that timeout is none; a blocking
 *    connect's own O_NONBLOCK window, sendfile's and splice's forget
 *    them. A learner and a forgetter on two OS threads: the
 *    forgetter sets B_DIRTY after its syscall, the learner clears it
 *    before reading the kernel and stores with a compare-and-swap against
 *    the word without it, so a change that the learner may have missed
 *    always fails that store.
 *  - Not seen, and so not covered (README, known differences): another
 *    process taking the descriptor with pidfd_getfd (it needs ptrace
 *    rights over this one), a raw system call outside libc without
 *    GREEN_SYSCALL_DISPATCH, io_uring requests that close or dup a
 *    descriptor. GREEN_FD_CACHE=0 turns the cache off for such programs.
 *    Measured: demo/speedup http/keepalive, README.
 *
 * Park first. With the flags kept, a keep-alive request still cost three
 * system calls where nginx makes two (recv, writev; perf stat -e
 * 'syscalls:sys_enter_*' on both servers at 1,000 connections): the
 * daemon's read after its answer tried recv, which said EAGAIN (the client
 * had not sent the next request yet), then parked and read again. B_DRAINED
 * remembers that the last plain read (read, recv, recvfrom without flags)
 * of an own stream socket (B_STREAM, recorded at socket/socketpair, copied
 * by accept from the listener) returned less than asked: the socket was
 * empty then. The next plain read of it, when the cache knows it blocking,
 * parks on readiness first and reads after the wake-up
 * (hooks/io_sock.c, green__io_recv_park_first). It is a hint, never a
 * decision: the park is on level-triggered readiness, so data already
 * there only costs a trip through the hub. What must not change:
 *  - a socket with any SO_RCVTIMEO tries first (data that is there is
 *    returned before any deadline, "at once" included);
 *  - a signal that ends the park returns data that was there (natively a
 *    signal cannot interrupt a read that had data at its start); only
 *    when the try then says EAGAIN is it EINTR;
 *  - datagram sockets (a short read says nothing of the next datagram)
 *    and non-blocking ones never park first.
 * Measured (perf stat -p on the daemon, demo/legacy_http at 1,000
 * connections, 2 s): 1.88 system calls per request with one hub, 1.95
 * with two; nginx 1.96; before, 2.77 / 3.03 (4.68 / 4.82 with
 * GREEN_FD_CACHE=0, which turns both off).
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
 * path); caching the flags of every fd number (a flag set through a dup or
 * by another process was never seen: a read on the original blocked
 * forever where Linux said EAGAIN, or ignored a timeout), hence B_OWN; a
 * process-wide epoch bumped by every F_SETFL (memcached makes one per
 * connection: every cached flag in the process would be read again after
 * each accept); storing the state in libgreen/fd.c's per-ctx slots (those
 * belong to one hub, while descriptors and their flags belong to the
 * process).
 */
#define _GNU_SOURCE
#include "fdstate.h"
#include "green_internal.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
#define B_OWN     0x400u           /* the only reference to its description */
#define B_DIRTY   0x800u           /* changed since a learner started */
#define B_LNB     0x1000u          /* O_NONBLOCK learned ... */
#define B_CNB     0x2000u          /* ... and this is its value */
#define B_LRCV0   0x4000u          /* SO_RCVTIMEO learned to be none */
#define B_LSND0   0x8000u          /* SO_SNDTIMEO learned to be none */
#define B_INET    0x10000u         /* an AF_INET/AF_INET6 socket: carries no
                                      descriptors (SCM_RIGHTS is AF_UNIX's) */
#define B_STREAM  0x20000u         /* a SOCK_STREAM socket */
#define B_DRAINED 0x40000u         /* its last plain read came back short */
#define B_TIMEO   0x80000u         /* a timeout was set on it through a hook */
#define B_LEARNED (B_LNB | B_CNB | B_LRCV0 | B_LSND0)
/* What green__fdstate_set keeps of an entry (the rest is the hint). */
#define B_KEEP    (B_INTERNAL | B_OWN | B_DIRTY | B_LEARNED | B_INET | B_STREAM | B_DRAINED | \
                   B_TIMEO)

/* One word per descriptor. The timeouts themselves are the kernel's
 * (kernel_view reads them every time); all the table keeps of them is the
 * one thing the kernel cannot say back, a timeout of "at once" (1 ns in
 * green__fdinfo). Before, two 64-bit copies of the timeouts made an entry
 * 24 bytes where 4 do: 20 bytes per descriptor, per connection of a
 * daemon (measured with demo/speedup's memory pass, README). */
struct entry {
    _Atomic uint32_t bits;         /* kind and flags, B_* above */
    _Atomic int32_t owner;         /* B_INTERNAL: the OS thread (tid) that
                                      made it, whose hub it serves */
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
    /* The internal mark and the flag cache are not part of the hint: keep
     * them (only reset, created, dup and their own functions change them). */
    uint32_t w = atomic_load_explicit(&e->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&e->bits, &w, pack(i) | (w & B_KEEP),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
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

int green__fd_cache = 1;           /* settings: GREEN_FD_CACHE */
static _Atomic int rights_sending; /* sends that may carry descriptors now */
static _Atomic bool trust_off;     /* green__fdstate_trust_off was called */

/* One direction's timeout of a blocking socket: none when the flag cache
 * knows it (bit in known), else read from the kernel, and learned into
 * *add when none. The kernel reads a timeout of "at once" (set with a
 * negative tv_sec) back as {0, 0}, the same as "forever": only the hint
 * the setsockopt hook left (now) tells them apart. */
static int64_t timeo_view(int fd, int opt, uint32_t bit, uint32_t known, bool now,
                          uint32_t *add)
{
    int64_t t = 0;
    if (!(known & bit)) {
        t = sock_timeo(fd, opt);
        *add |= t == 0 ? bit : 0;
    }
    return t == 0 && now ? 1 : t;
}

/* The description's state as the kernel has it now (see the essay):
 * O_NONBLOCK, and for a blocking socket the timeouts asked for in want.
 * While a connect of ours holds O_NONBLOCK (B_OURNB), the program's wish
 * is the entry's. An own socket's entry keeps what was read. */
static void kernel_view(int fd, struct green__fdinfo *i, unsigned want)
{
    /* The count first, then the entry: a read that starts after a
     * receiver could have changed the description sees either the count
     * or the entry without B_OWN (green__fdstate_rights_begin). */
    bool sending = atomic_load(&rights_sending) != 0;
    struct entry *e = entry_at(fd, false);
    uint32_t w = e ? atomic_load(&e->bits) : 0;
    bool learn = (w & (B_OWN | B_OURNB)) == B_OWN &&
                 !atomic_load_explicit(&trust_off, memory_order_relaxed);
    if (learn && (w & B_DIRTY)) {
        uint32_t clean = w & ~B_DIRTY;
        learn = atomic_compare_exchange_strong(&e->bits, &w, clean);
        w = clean;
    }
    /* What the cache knows is used (for an own socket that knows it all,
     * no system call at all), the rest read from the kernel. */
    uint32_t known = !sending && (w & (B_OWN | B_OURNB)) == B_OWN ? w & B_LEARNED : 0;
    uint32_t add = known;
    if (known & B_LNB) {
        i->user_nonblock = known & B_CNB;
    } else {
        int fl = REAL(fcntl)(fd, F_GETFL);
        if (fl < 0)
            return;                /* EBADF: let the real call say so */
        if (!i->our_nonblock)
            i->user_nonblock = fl & O_NONBLOCK;
        add |= B_LNB | (i->user_nonblock ? B_CNB : 0);
    }
    bool rcv_now = i->rcvtimeo == 1, snd_now = i->sndtimeo == 1;
    i->rcvtimeo = i->sndtimeo = 0;
    if (!i->user_nonblock) {       /* else EAGAIN at once: no timeout matters */
        if (want & GREEN_VIEW_RCVTIMEO)
            i->rcvtimeo = timeo_view(fd, SO_RCVTIMEO, B_LRCV0, known, rcv_now, &add);
        if (want & GREEN_VIEW_SNDTIMEO)
            i->sndtimeo = timeo_view(fd, SO_SNDTIMEO, B_LSND0, known, snd_now, &add);
    }
    /* Fails when anything changed the entry meanwhile (B_DIRTY included):
     * then the next slow path reads the kernel again. */
    if (learn && add != known)
        atomic_compare_exchange_strong(&e->bits, &w, (w & ~B_LEARNED) | add);
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
    struct entry *e = entry_at(fd, true);
    if (e)                         /* a new file took the number: nothing */
        atomic_store_explicit(&e->bits, pack(&i), memory_order_relaxed);   /* is kept */
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
    green__fdstate_share(oldfd);   /* the description has two numbers now */
    struct green__fdinfo i = green__fdstate_peek(oldfd);
    struct entry *e = entry_at(newfd, true);
    if (e)
        atomic_store_explicit(&e->bits, pack(&i), memory_order_relaxed);
    green__fdstate_set_sock(newfd, green__fdstate_sock(oldfd));
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

/* The description changed through a hook (after the system call): what
 * the flag cache learned is gone, and a learner in flight must not store
 * what it read (B_DIRTY, see kernel_view). */
static void forget_learned(int fd)
{
    struct entry *e = entry_at(fd, false);
    if (!e)
        return;
    uint32_t w = atomic_load_explicit(&e->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak(&e->bits, &w, (w & ~B_LEARNED) | B_DIRTY))
        ;
}

void green__fdstate_changed(int fd)
{
    forget_learned(fd);
}

/* The description changed through a hook, to a state the hook knows:
 * clear the learned bits in clear and set those in set (B_DIRTY too, so
 * that a learner in flight, which read the kernel before, stores
 * nothing). */
static void now_known(int fd, uint32_t clear, uint32_t set)
{
    struct entry *e = entry_at(fd, false);
    if (!e)
        return;
    uint32_t w = atomic_load_explicit(&e->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak(&e->bits, &w, (w & ~clear) | set | B_DIRTY))
        ;
}

void green__fdstate_set_user_nonblock(int fd, bool on)
{
    set_bit(fd, B_USERNB, on);
    /* The program's F_SETFL or FIONBIO: O_NONBLOCK is now exactly its
     * wish (the timeouts did not change), unless a flag of ours is on the
     * description (B_OURNB): then forget. */
    struct green__fdinfo i = green__fdstate_peek(fd);
    if (i.our_nonblock)
        forget_learned(fd);
    else
        now_known(fd, B_LNB | B_CNB, B_LNB | (on ? B_CNB : 0));
}

void green__fdstate_set_our_nonblock(int fd, bool on)
{
    set_bit(fd, B_OURNB, on);
    forget_learned(fd);
}

void green__fdstate_set_timeo(int fd, int dir, int64_t ns)
{
    set_bit(fd, dir ? B_SNDNOW : B_RCVNOW, ns == 1);
    set_bit(fd, B_TIMEO, true);
    /* The program's setsockopt: this direction's timeout is now known to
     * be none (0, or "at once", which the kernel also reads back as 0:
     * B_RCVNOW/B_SNDNOW tell) or not; O_NONBLOCK did not change. */
    uint32_t bit = dir ? B_LSND0 : B_LRCV0;
    now_known(fd, bit, ns == 0 || ns == 1 ? bit : 0);
}

/* ----------------------------------------------------- own descriptors */

/* Process creations in progress, and how many have begun: a socket made
 * while one was under way may be in the child (green__fdstate_own). */
static _Atomic int spawning;
static _Atomic unsigned spawn_gen;

unsigned green__fdstate_spawn_gen(void)
{
    return atomic_load(&spawn_gen);
}

void green__fdstate_own(int fd, unsigned gen, unsigned known)
{
    struct entry *e = entry_at(fd, false);
    if (!e || fd < 3 || !green__fd_cache || atomic_load(&trust_off) ||
        atomic_load(&spawning) || atomic_load(&spawn_gen) != gen)
        return;
    uint32_t learned = 0;
    if (known & (GREEN_KNOWN_NB | GREEN_KNOWN_BLOCKING))
        learned |= B_LNB | ((known & GREEN_KNOWN_NB) ? B_CNB : 0);
    learned |= ((known & GREEN_KNOWN_RCV0) ? B_LRCV0 : 0) |
               ((known & GREEN_KNOWN_SND0) ? B_LSND0 : 0);
    atomic_fetch_or(&e->bits, B_OWN | learned);
    /* A process creation that began after the look above either walked
     * the table after this store (and dropped the mark) or is seen now. */
    if (atomic_load(&spawning) || atomic_load(&spawn_gen) != gen)
        atomic_fetch_and(&e->bits, ~(B_OWN | B_LEARNED));
}

unsigned green__fdstate_known_timeouts(int fd)
{
    /* Linux gives a connection its listener's timeouts when its handshake
     * completes, before the accept: known to be none only for a listener
     * this process made (no timeouts then) and shares with nobody, on
     * which no timeout was ever set. */
    struct entry *e = entry_at(fd, false);
    uint32_t w = e ? atomic_load(&e->bits) : 0;
    return (w & (B_OWN | B_TIMEO)) == B_OWN ? GREEN_KNOWN_RCV0 | GREEN_KNOWN_SND0 : 0;
}

bool green__fdstate_rights_begin(int fd)
{
    if (green__fdstate_sock(fd) & GREEN_SOCK_INET)
        return false;
    atomic_fetch_add(&rights_sending, 1);
    return true;
}

void green__fdstate_rights_end(bool begun)
{
    if (begun)
        atomic_fetch_sub(&rights_sending, 1);
}

void green__fdstate_set_sock(int fd, unsigned sock)
{
    struct entry *e = entry_at(fd, false);
    if (e)
        atomic_fetch_or_explicit(&e->bits, ((sock & GREEN_SOCK_INET) ? B_INET : 0) |
                                           ((sock & GREEN_SOCK_STREAM) ? B_STREAM : 0),
                                 memory_order_relaxed);
}

unsigned green__fdstate_sock(int fd)
{
    struct entry *e = entry_at(fd, false);
    uint32_t w = e ? atomic_load_explicit(&e->bits, memory_order_relaxed) : 0;
    return ((w & B_INET) ? GREEN_SOCK_INET : 0) | ((w & B_STREAM) ? GREEN_SOCK_STREAM : 0);
}

/* Park first (see the essay's last part): an own, blocking stream socket
 * whose last plain read came back short. */
bool green__fdstate_park_first(int fd)
{
    struct entry *e = entry_at(fd, false);
    if (!e)
        return false;
    uint32_t w = atomic_load_explicit(&e->bits, memory_order_relaxed);
    return (w & (B_OWN | B_STREAM | B_DRAINED | B_LNB | B_CNB | B_OURNB)) ==
           (B_OWN | B_STREAM | B_DRAINED | B_LNB);
}

void green__fdstate_note_read(int fd, bool short_read)
{
    struct entry *e = entry_at(fd, false);
    if (!e)
        return;
    uint32_t w = atomic_load_explicit(&e->bits, memory_order_relaxed);
    if (!(w & B_OWN) || !!(w & B_DRAINED) == short_read)
        return;                    /* the usual case: no write */
    if (short_read)
        atomic_fetch_or_explicit(&e->bits, B_DRAINED, memory_order_relaxed);
    else
        atomic_fetch_and_explicit(&e->bits, ~B_DRAINED, memory_order_relaxed);
}

void green__fdstate_share(int fd)
{
    struct entry *e = entry_at(fd, false);
    if (e)
        atomic_fetch_and(&e->bits, ~(B_OWN | B_LEARNED));
}

/* Drop every own mark: the child that is being made holds them all. */
static void share_all(void)
{
    int limit = green__fdstate_limit();
    for (int fd = 0; fd < limit; fd++) {
        struct entry *e = entry_at(fd, false);
        if (e && (atomic_load_explicit(&e->bits, memory_order_relaxed) & B_OWN))
            atomic_fetch_and(&e->bits, ~(B_OWN | B_LEARNED));
    }
}

void green__fdstate_spawn_begin(void)
{
    atomic_fetch_add(&spawning, 1);
    atomic_fetch_add(&spawn_gen, 1);
    share_all();
}

void green__fdstate_spawn_end(void)
{
    share_all();
    atomic_fetch_add(&spawn_gen, 1);
    atomic_fetch_sub(&spawning, 1);
}

void green__fdstate_trust_off(void)
{
    atomic_store(&trust_off, true);
    share_all();
}

/* Every fork, the ones inside libc included (daemon(), wordexp()). The
 * child runs the same end as the parent: its copy of the table was made
 * while the parent's prepare held spawning up. */
__attribute__((constructor)) static void fdstate_register_atfork(void)
{
    pthread_atfork(green__fdstate_spawn_begin, green__fdstate_spawn_end,
                   green__fdstate_spawn_end);
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
    if (fd < 0)
        return;
    set_bit(fd, B_INTERNAL, on);
    struct entry *e = entry_at(fd, false);
    if (e) {
        struct green__ctx *c = green__tls_ctx;
        pid_t tid = !on ? 0 : c ? c->tid : (pid_t)green__syscall(SYS_gettid);
        atomic_store_explicit(&e->owner, tid, memory_order_relaxed);
    }
}

/* A child of fork has one OS thread: the descriptors the hubs of the
 * parent's other OS threads made (epoll set, timerfd, eventfd, and the
 * hidden ones their threads used) serve nobody there. Close those of the
 * OS thread tid (the parent's), as the child's own copies. */
void green__fd_close_owned(pid_t tid)
{
    for (int k = 0; k < MAX_CHUNKS; k++) {
        struct entry *ch = atomic_load_explicit(&chunks[k], memory_order_acquire);
        if (!ch)
            continue;
        for (int i = 0; i < CHUNK; i++) {
            struct entry *e = &ch[i];
            if (!(atomic_load_explicit(&e->bits, memory_order_relaxed) & B_INTERNAL) ||
                atomic_load_explicit(&e->owner, memory_order_relaxed) != tid)
                continue;
            int fd = k * CHUNK + i;
            atomic_fetch_and_explicit(&e->bits, ~B_INTERNAL, memory_order_relaxed);
            atomic_store_explicit(&e->owner, 0, memory_order_relaxed);
            REAL(close)(fd);
        }
    }
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
